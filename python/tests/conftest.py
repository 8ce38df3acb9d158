"""Shared helpers of the Python tests: the repository, the CLI binary, result trees."""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = pathlib.Path(__file__).resolve().parent / "scenarios"


def nimbus_bin():
    """NIMBUS_BIN, else $CARGO_TARGET_DIR/release/nimbus, else target/release/nimbus."""
    named = os.environ.get("NIMBUS_BIN")
    if named:
        return pathlib.Path(named)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "release" / "nimbus"


def run_cli(out, *args):
    """Runs `nimbus <args> --quiet --out <out>` in the repository; skips without the binary."""
    binary = nimbus_bin()
    if not binary.is_file():
        pytest.skip(f"{binary} is missing: run cargo build --release first")
    subprocess.run([str(binary), *args, "--quiet", "--out", str(out)], cwd=REPO, check=True)
    return out


def files(directory):
    """Every file under `directory`, relative, sorted."""
    directory = pathlib.Path(directory)
    return sorted(p.relative_to(directory) for p in directory.rglob("*") if p.is_file())


def assert_same_tree(a, b):
    """Two result trees hold the same files with the same bytes (but timings.json, wall-clock by nature)."""
    fa, fb = files(a), files(b)
    assert fa == fb, "different files"
    for f in fa:
        if f.name == "timings.json":
            continue
        assert (pathlib.Path(a) / f).read_bytes() == (pathlib.Path(b) / f).read_bytes(), f"{f} differs"
