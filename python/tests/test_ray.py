"""Sweeps as Ray tasks: a local Ray instance started by the test runs three
shards; the merged files equal an unsharded run byte for byte.

Skips, saying so, without Ray (`python3 -m pip install ray`) or without the
nimbus package (`python3 -m pip install ./python`).
"""

import pytest
from conftest import REPO, SCENARIOS, assert_same_tree

nimbus = pytest.importorskip("nimbus", reason="the nimbus package is not installed (python3 -m pip install ./python)")
ray = pytest.importorskip("ray", reason="Ray is not installed (python3 -m pip install ray)")
import nimbus.ray  # noqa: E402

SWEEP = str((SCENARIOS / "gan-sweep.toml").relative_to(REPO))


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_shards_merge_into_the_unsharded_run(tmp_path, local_ray):
    whole = tmp_path / "whole"
    nimbus.run(SWEEP, out=whole)
    merged = tmp_path / "ray"
    kept = tmp_path / "shards"
    assert nimbus.ray.run_sweep(SWEEP, shards=3, out=merged, shard_dir=kept) == str(merged)
    assert sorted(p.name for p in kept.iterdir()) == [f"shard-{i}-of-3.json" for i in range(3)]
    assert_same_tree(whole, merged)


def test_ray_settings_reach_every_shard(tmp_path, local_ray):
    whole = tmp_path / "whole"
    nimbus.run(SWEEP, seeds=[5], set={"workload.iterations": 20}, out=whole)
    merged = tmp_path / "ray"
    nimbus.ray.run_sweep(SWEEP, shards=2, out=merged, seeds=[5], set={"workload.iterations": 20})
    assert_same_tree(whole, merged)


def test_ray_reports_a_failing_shard(tmp_path, local_ray):
    with pytest.raises(Exception, match="workload.no_such_key"):
        nimbus.ray.run_sweep(SWEEP, shards=2, out=tmp_path / "x", set={"workload.no_such_key": 1})
    with pytest.raises(ValueError, match="positive integer"):
        nimbus.ray.run_sweep(SWEEP, shards=0, out=tmp_path / "x")
