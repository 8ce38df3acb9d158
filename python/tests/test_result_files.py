"""Nimbus' result files read back with the tools users open them in.

Runs the `nimbus` binary (NIMBUS_BIN, else $CARGO_TARGET_DIR/release/nimbus,
else target/release/nimbus; build it with `cargo build --release`) on small
scenarios and reads every Parquet file with pyarrow (and pandas when
present), checking it against the CSV written beside it. Skips, saying so,
without pyarrow: `python3 -m pip install pyarrow pytest`.
"""

import csv
import math

import pytest
from conftest import run_cli

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (python3 -m pip install pyarrow)")


def run(tmp_path, *args):
    return run_cli(tmp_path / "out", *args)


def same_cell(text, value):
    if text == "":
        return value is None or (isinstance(value, float) and math.isnan(value))
    if isinstance(value, bool):
        return text == str(value).lower()
    if isinstance(value, int):
        return int(text) == value
    if isinstance(value, float):
        # The CSV holds the shortest text that reads back to the same double.
        return float(text) == value
    return text == value


def check_against_csv(parquet_path):
    table = pq.read_table(parquet_path)
    with open(parquet_path.with_suffix(".csv"), newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert table.column_names == header, parquet_path
    assert table.num_rows == len(body), parquet_path
    columns = table.to_pydict()
    for i, row in enumerate(body):
        for name, text in zip(header, row):
            assert same_cell(text, columns[name][i]), (parquet_path.name, i, name, text, columns[name][i])
    return table


def test_train_run_parquet_matches_csv(tmp_path):
    out = run(tmp_path, "run", "scenarios/train/paragan.toml", "--seeds", "1,2",
              "--set", "workload.cores=[8, 64]", "--set", "workload.iterations=50")
    files = sorted(out.glob("*.parquet"))
    assert any(f.name == "runs.parquet" for f in files) and len(files) > 2
    for f in files:
        check_against_csv(f)
    runs = pq.read_table(out / "runs.parquet")
    assert str(runs.schema.field("policy").type) == "string"
    assert str(runs.schema.field("seed").type) == "int64"
    assert str(runs.schema.field("images_per_s").type) == "double"
    scales = pq.read_table(out / "scales_paragan_seed1.parquet")
    assert scales.column("cores").to_pylist() == [8, 64]


def test_sweep_summary_and_pandas(tmp_path):
    scenario = tmp_path / "sweep.toml"
    scenario.write_text(
        'name = "s"\ndomain = "train"\nseeds = [1]\n[workload]\nkind = "gan"\ncores = [8]\niterations = 20\n'
        '[sweep]\n"cluster.jitter" = [0.0, 0.1]\n[[policy]]\nname = "paragan"\n'
    )
    out = run(tmp_path, "run", str(scenario))
    table = check_against_csv(out / "sweep.parquet")
    assert set(table.column("point").to_pylist()) == {0, 1}
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_parquet(out / "point-1" / "runs.parquet")
    assert list(frame["policy"]) == ["paragan"]
