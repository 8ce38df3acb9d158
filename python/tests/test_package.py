"""The `nimbus` Python package: runs, DataFrames, Python policies, shards and bad input.

Needs the package installed (`python3 -m pip install ./python`); skips,
saying so, without it. The CLI comparisons also need the `nimbus` binary
(`cargo build --release`).
"""

import pathlib
import sys

import pytest
from conftest import REPO, SCENARIOS, assert_same_tree, run_cli

nimbus = pytest.importorskip("nimbus", reason="the nimbus package is not installed (python3 -m pip install ./python)")
pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")

GPU_SMALL = REPO / "crates/nimbus-cli/tests/fixtures/small.toml"
FAAS_SMALL = REPO / "crates/nimbus-cli/tests/fixtures/faas_small.toml"
LLM_SMALL = REPO / "crates/nimbus-cli/tests/fixtures/llm_small.toml"
SWEEP = SCENARIOS / "gan-sweep.toml"


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    """Scenario paths and their data resolve from the repository, as for the CLI."""
    monkeypatch.chdir(REPO)


def rel(path):
    return str(pathlib.Path(path).relative_to(REPO))


class PyFifo:
    """FIFO in Python: the active jobs in arrival order."""

    def __init__(self):
        self.rounds = 0

    def schedule(self, now_s, jobs):
        self.rounds += 1
        return [j.id for j in jobs]


class PyTenMinutes:
    """Fixed keep-alive of ten minutes in Python."""

    def after_execution(self, app, now_s):
        return 600.0


# --- runs and DataFrames ---------------------------------------------------


def test_run_returns_dataframes_with_typed_columns():
    r = nimbus.run(rel(GPU_SMALL), seeds=[1, 2])
    assert r.domain == "gpu" and r.policies == ["fifo", "gavel_las", "tiresias"]
    assert list(r.runs.columns[:2]) == ["policy", "seed"]
    assert len(r.runs) == 6
    assert str(r.runs["seed"].dtype) == "int64"
    assert str(r.runs["jct_h_mean"].dtype) == "float64"
    jobs = r.tables["jobs"]
    assert set(jobs["policy"]) == {"fifo", "gavel_las", "tiresias"}
    assert set(jobs["seed"]) == {1, 2}
    # The summary's mean is the mean of the per-seed runs.
    fifo = r.runs[r.runs.policy == "fifo"]["jct_h_mean"].mean()
    assert r.metric("jct_h_mean").loc["fifo", "mean"] == pytest.approx(fifo, rel=1e-12)
    # The fixture's one claim (LAS not slower than FIFO) is judged on these runs.
    las, fifo = (r.runs[r.runs.policy == p]["jct_h_mean"].mean() for p in ("gavel_las", "fifo"))
    assert len(r.claims) == 1 and r.claims["ours_mean"][0] == pytest.approx(las, rel=1e-12)
    assert r.claims["ours_baseline_mean"][0] == pytest.approx(fifo, rel=1e-12)
    assert r.claims["verdict"][0] in ("holds", "does not hold")


def test_frames_equal_the_parquet_files_and_out_equals_the_cli(tmp_path):
    ours = tmp_path / "py"
    r = nimbus.run(rel(GPU_SMALL), out=ours)
    assert pathlib.Path(r.dir) == ours
    runs = pq.read_table(ours / "runs.parquet").to_pandas()
    pd.testing.assert_frame_equal(r.runs, runs)
    for seed in (1, 2):
        on_disk = pq.read_table(ours / f"jobs_fifo_seed{seed}.parquet").to_pandas()
        ours_rows = r.tables["jobs"]
        ours_rows = ours_rows[(ours_rows.policy == "fifo") & (ours_rows.seed == seed)]
        ours_rows = ours_rows.drop(columns=["policy", "seed"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours_rows, on_disk)
    cli = run_cli(tmp_path / "cli", "run", rel(GPU_SMALL))
    assert_same_tree(ours, cli)


def test_polars_and_arrow_frames():
    r = nimbus.run(rel(GPU_SMALL), seeds=[1], frame="arrow")
    assert r.runs.num_rows == 3
    pl = pytest.importorskip("polars", reason="polars is not installed")
    r = nimbus.run(rel(GPU_SMALL), seeds=[1], frame="polars")
    assert isinstance(r.runs, pl.DataFrame)


def test_runs_are_deterministic():
    a = nimbus.run(rel(FAAS_SMALL), seeds=[3], policies={"py": PyTenMinutes})
    b = nimbus.run(rel(FAAS_SMALL), seeds=[3], policies={"py": PyTenMinutes}, jobs=1)
    pd.testing.assert_frame_equal(a.runs, b.runs)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])


def test_set_overrides_like_the_cli():
    r = nimbus.run(rel(GPU_SMALL), seeds=[1], set={"workload.max_jobs": 10})
    assert r.tables["jobs"].groupby("policy").size().max() <= 10


def test_listings():
    names = [d["name"] for d in nimbus.domains()]
    assert {"gpu", "faas", "llm"} <= set(names)
    gpu = nimbus.policies("gpu")
    assert "gavel_las" in set(gpu["name"])
    found = nimbus.scenarios("scenarios")
    assert "gavel-continuous" in set(found["name"])
    with pytest.raises(nimbus.NimbusError, match="unknown domain"):
        nimbus.policies("nope")


# --- Python policies ---------------------------------------------------------


def same_runs(r, ours, builtin, ignore=()):
    runs = r.runs.set_index("seed")
    a = runs[runs.policy == ours].drop(columns=["policy", *ignore])
    b = runs[runs.policy == builtin].drop(columns=["policy", *ignore])
    pd.testing.assert_frame_equal(a, b)


def test_python_fifo_schedules_exactly_as_the_builtin_fifo():
    r = nimbus.run(rel(GPU_SMALL), policies={"py-fifo": PyFifo})
    assert r.policies[-1] == "py-fifo"
    same_runs(r, "py-fifo", "fifo")
    jobs = r.tables["jobs"]
    a = jobs[jobs.policy == "py-fifo"].drop(columns="policy").reset_index(drop=True)
    b = jobs[jobs.policy == "fifo"].drop(columns="policy").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_python_keep_alive_matches_the_builtin_fixed_policy():
    r = nimbus.run(rel(FAAS_SMALL), policies={"py-fixed-10": PyTenMinutes})
    same_runs(r, "py-fixed-10", "fixed-10")
    # A different decision changes the outcome: the test can fail.
    class Never:
        def after_execution(self, app, now_s):
            return 0.0

    r = nimbus.run(rel(FAAS_SMALL), seeds=[1], policies={"never": Never})
    cold = r.metric("cold_start_pct")["mean"]
    assert cold["never"] > cold["fixed-10"]


def test_python_keep_alive_in_the_app_level_engine():
    # Every invocation processed (no per-minute aggregation, which only
    # built-in policies take): the Python fixed policy decides exactly as
    # the built-in one.
    r = nimbus.run("scenarios/faas/sitw-azure-scale.toml", seeds=[2],
                   set={"workload.apps": 60, "workload.days": 0.5, "platform.aggregate": False},
                   policies={"py-fixed-10": PyTenMinutes})
    same_runs(r, "py-fixed-10", "fixed-10")
    assert len(r.tables["apps"]) == 60 * 8


def test_python_prewarm_and_until_evicted_decisions():
    class Mixed:
        def __init__(self):
            self.arrivals = 0

        def on_arrival(self, app, now_s, idle_s):
            assert idle_s is None or idle_s >= 0
            self.arrivals += 1

        def after_execution(self, app, now_s):
            if app % 3 == 0:
                return None
            if app % 3 == 1:
                return (60.0, 300.0)
            return 120

    r = nimbus.run(rel(FAAS_SMALL), seeds=[1], policies={"mixed": Mixed})
    runs = r.runs.set_index("policy")
    assert runs.loc["mixed", "prewarms"] > 0
    assert runs.loc["mixed", "invocations"] == runs.loc["fixed-10", "invocations"]


# --- bad input -----------------------------------------------------------------


def test_a_policy_that_raises_fails_its_run_with_the_traceback():
    class Broken:
        def after_execution(self, app, now_s):
            raise ZeroDivisionError("boom in the policy")

    with pytest.raises(nimbus.NimbusError, match=r"(?s)\"broken\".*after_execution.*ZeroDivisionError: boom in the policy"):
        nimbus.run(rel(FAAS_SMALL), seeds=[1], policies={"broken": Broken})

    class BrokenScheduler:
        def schedule(self, now_s, jobs):
            return [j.idd for j in jobs]

    with pytest.raises(nimbus.NimbusError, match=r"(?s)schedule at t = .*AttributeError"):
        nimbus.run(rel(GPU_SMALL), seeds=[1], policies={"broken": BrokenScheduler})


@pytest.mark.parametrize(
    "decision, message",
    [(-1.0, "returned -1.0"), ("ten", "returned 'ten'"), (float("nan"), "returned nan"), (True, "returned True"),
     ((1.0,), r"returned \(1.0,\)"), (1e12, "returned 1000000000000.0")],
)
def test_invalid_keep_alive_decisions_are_errors(decision, message):
    class Bad:
        def after_execution(self, app, now_s):
            return decision

    with pytest.raises(nimbus.NimbusError, match=message):
        nimbus.run(rel(FAAS_SMALL), seeds=[1], policies={"bad": Bad})


@pytest.mark.parametrize(
    "order, message",
    [(lambda jobs: [j.id for j in jobs] * 2, "twice"), (lambda jobs: [10_000], "job 10000, which is not active"),
     (lambda jobs: ["0"], "among the job ids"), (lambda jobs: 5, "expected a list of job ids"),
     (lambda jobs: [-1], "among the job ids")],
)
def test_invalid_schedules_are_errors(order, message):
    class Bad:
        def schedule(self, now_s, jobs):
            return order(jobs) if jobs else []

    with pytest.raises(nimbus.NimbusError, match=message):
        nimbus.run(rel(GPU_SMALL), seeds=[1], policies={"bad": Bad})


def test_policy_objects_are_checked_before_running():
    class NoMethod:
        pass

    with pytest.raises(nimbus.NimbusError, match="no method `after_execution`"):
        nimbus.run(rel(FAAS_SMALL), seeds=[1], policies={"x": NoMethod})
    with pytest.raises(nimbus.NimbusError, match="expected a class or other callable"):
        nimbus.run(rel(FAAS_SMALL), seeds=[1], policies={"x": 3})
    with pytest.raises(nimbus.NimbusError, match="label \"fifo\" is taken"):
        nimbus.run(rel(GPU_SMALL), seeds=[1], policies={"fifo": PyFifo})
    with pytest.raises(nimbus.NimbusError, match="`llm`"):
        nimbus.run(rel(LLM_SMALL), seeds=[1], policies={"x": PyFifo})

    class BadRound(PyFifo):
        round_s = -1

    with pytest.raises(nimbus.NimbusError, match="round_s"):
        nimbus.run(rel(GPU_SMALL), seeds=[1], policies={"x": BadRound})

    class RaisesInInit:
        def __init__(self):
            raise RuntimeError("cannot start")

    with pytest.raises(nimbus.NimbusError, match="(?s)creating the policy object raised.*cannot start"):
        nimbus.run(rel(GPU_SMALL), seeds=[1], policies={"x": RaisesInInit})


def test_bad_scenarios_and_settings_are_errors(tmp_path):
    with pytest.raises(nimbus.NimbusError, match="missing.toml"):
        nimbus.run("missing.toml")
    with pytest.raises(nimbus.NimbusError, match="workload.no_such_key"):
        nimbus.run(rel(GPU_SMALL), set={"workload.no_such_key": 1})
    with pytest.raises(TypeError, match="not a non-negative integer"):
        nimbus.run(rel(GPU_SMALL), seeds=[-1])
    with pytest.raises(TypeError, match="not a TOML value"):
        nimbus.run(rel(GPU_SMALL), set={"workload.max_jobs": object()})
    with pytest.raises(nimbus.NimbusError, match="shards are numbered 0 to 2"):
        nimbus.run_shard(rel(SWEEP), 3, 3, tmp_path)
    with pytest.raises(nimbus.NimbusError, match="shard count"):
        nimbus.run_shard(rel(SWEEP), 0, 0, tmp_path)
    with pytest.raises(nimbus.NimbusError, match="jobs=0"):
        nimbus.run(rel(GPU_SMALL), jobs=0)


# --- sweeps, shards and merges ---------------------------------------------------


def test_sweep_tables_lead_with_the_settings():
    r = nimbus.run(rel(SWEEP))
    assert r.points == 4 and r.sweep_keys == ["cluster.jitter", "workload.n_dis"]
    assert list(r.runs.columns[:4]) == ["cluster.jitter", "workload.n_dis", "policy", "seed"]
    assert len(r.runs) == 4 * 2 * 2
    assert sorted(set(zip(r.runs["cluster.jitter"], r.runs["workload.n_dis"]))) == [(0.0, 1), (0.0, 2), (0.05, 1), (0.05, 2)]
    assert len(r.claims) == 4


def test_three_shards_merge_into_the_unsharded_run(tmp_path):
    whole = tmp_path / "whole"
    nimbus.run(rel(SWEEP), out=whole)
    shards = [nimbus.run_shard(rel(SWEEP), i, 3, tmp_path / f"shard{i}") for i in range(3)]
    merged = tmp_path / "merged"
    assert nimbus.merge(shards, merged) == str(merged)
    assert_same_tree(whole, merged)
    # The CLI merges the package's shards to the same bytes.
    cli = run_cli(tmp_path / "cli", "merge", *shards)
    assert_same_tree(whole, cli)


def test_merge_refuses_mismatched_shards(tmp_path):
    a = nimbus.run_shard(rel(SWEEP), 0, 2, tmp_path / "a")
    b = nimbus.run_shard(rel(SWEEP), 1, 2, tmp_path / "b", seeds=[7])
    with pytest.raises(nimbus.NimbusError, match="different scenarios or settings"):
        nimbus.merge([a, b], tmp_path / "m")
    with pytest.raises(nimbus.NimbusError, match="shard 1 of 2 is missing"):
        nimbus.merge([a], tmp_path / "m")


def test_progress_reaches_a_callable_in_order_and_a_bar_on_stderr(capsys):
    seen = []
    nimbus.run(GPU_SMALL, seeds=[1, 2], progress=lambda fraction, message: seen.append((fraction, message)))
    fractions = [f for f, _ in seen]
    assert fractions, "the callable was called"
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert "runs" in seen[-1][1]
    nimbus.run(GPU_SMALL, seeds=[1], progress=True)
    err = capsys.readouterr().err
    assert "100.0%" in err and err.endswith("\n")
    nimbus.run(GPU_SMALL, seeds=[1], progress=False)
    assert capsys.readouterr().err == ""


def test_a_progress_callable_that_raises_does_not_stop_the_runs(monkeypatch):
    calls = []
    reported = []

    def broken(fraction, message):
        calls.append(fraction)
        raise RuntimeError("the progress display broke")

    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    result = nimbus.run(GPU_SMALL, seeds=[1, 2], progress=broken)
    assert len(calls) == 1, "not called again after it raised"
    assert [type(u.exc_value) for u in reported] == [RuntimeError]
    assert len(result.runs) > 0


def test_progress_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="progress"):
        nimbus.run(GPU_SMALL, seeds=[1], progress="yes")
