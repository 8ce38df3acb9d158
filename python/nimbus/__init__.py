"""Nimbus from Python: the SoCC'24 systems and their baselines on the cloud twin.

    import nimbus
    result = nimbus.run("scenarios/gpu/gavel-continuous.toml", seeds=[1, 2])
    result.summary            # pandas DataFrame: policy, metric, mean, ci95, n
    result.tables["jobs"]     # per-job rows of every run, with policy and seed

Scenarios run in the same pipeline as ``nimbus run`` (the same files when
``out=`` is given, byte for byte). Tables arrive as Arrow columns, so the
DataFrames hold the same types and nulls as the run's Parquet files.

Policies written in Python (``policies={"label": Class}``) run inside the
twin beside the scenario's own: serverless keep-alive in ``faas`` scenarios,
GPU-cluster scheduling in ``gpu`` scenarios. See ``help(nimbus.run)``.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from . import _nimbus
from ._nimbus import Job, NimbusError

__all__ = [
    "Job",
    "NimbusError",
    "Result",
    "domains",
    "merge",
    "policies",
    "run",
    "run_shard",
    "scenarios",
    "__version__",
]

__version__ = _nimbus.__version__


def _arrow_table(raw: Mapping[str, Any]):
    """Builds a pyarrow Table from the native module's typed columns."""
    import pyarrow as pa

    types = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
    rows = raw["rows"]
    arrays = []
    for kind, data in zip(raw["kinds"], raw["data"]):
        if kind in ("int64", "float64"):
            values, validity, nulls = data
            buffers = [None if validity is None else pa.py_buffer(validity), pa.py_buffer(values)]
            arrays.append(pa.Array.from_buffers(types[kind], rows, buffers, null_count=nulls))
        else:
            arrays.append(pa.array(data, type=types[kind]))
    return pa.Table.from_arrays(arrays, names=list(raw["columns"]))


def _frame(raw: Mapping[str, Any], kind: str):
    table = _arrow_table(raw)
    if kind == "arrow":
        return table
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if kind == "pandas":
        return table.to_pandas()
    raise ValueError(f"frame={kind!r}: expected 'pandas', 'polars' or 'arrow'")


@dataclass
class Result:
    """What a scenario's runs showed.

    Every table has one row per run (``runs``), per policy and metric
    (``summary``), per claim (``claims``), per plotted point (``series``) or
    per entity of every run (``tables[name]``: jobs, invocations, apps, ...),
    led by the sweep's settings when the scenario has a ``[sweep]``.
    """

    scenario: str
    domain: str
    description: str
    seeds: list
    policies: list
    sweep_keys: list
    points: int
    dir: Optional[str]
    runs: Any
    summary: Any
    claims: Any
    series: Any
    tables: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    fallbacks: list = field(default_factory=list)

    def metric(self, name: str):
        """The summary rows of one metric, indexed by policy (and sweep settings)."""
        s = self.summary
        rows = s[s["metric"] == name]
        index = [*self.sweep_keys, "policy"]
        return rows.set_index(index)[["mean", "ci95", "n"]]

    def __repr__(self) -> str:
        tables = ", ".join(sorted(self.tables)) or "none"
        return (
            f"<nimbus.Result {self.scenario} ({self.domain}): {len(self.policies)} policies × "
            f"{len(self.seeds)} seeds × {self.points} point(s); tables: {tables}>"
        )


def _settings(set: Optional[Mapping[str, Any]]) -> Optional[list]:
    """``{"workload.jobs_per_hour": 3}`` as the CLI's ``--set`` pairs (values as TOML)."""
    if set is None:
        return None
    pairs = []
    for key, value in set.items():
        pairs.append((str(key), _toml_value(value)))
    return pairs


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"set: {value!r} is not a TOML value (bool, number, string or list of them)")


def _seeds(seeds: Optional[Iterable[int]]) -> Optional[list]:
    if seeds is None:
        return None
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise TypeError(f"seeds: {s!r} is not a non-negative integer")
        out.append(s)
    return out


def run(
    scenario: "str | os.PathLike[str]",
    seeds: Optional[Iterable[int]] = None,
    set: Optional[Mapping[str, Any]] = None,
    policies: Optional[Mapping[str, Callable[[], Any]]] = None,
    out: "str | os.PathLike[str] | None" = None,
    jobs: Optional[int] = None,
    frame: str = "pandas",
    progress: "bool | Callable[[float, str], Any] | None" = None,
) -> Result:
    """Runs every policy × seed of a scenario (and every point of its ``[sweep]``).

    - ``seeds``: seeds instead of the file's (``--seeds``).
    - ``set``: settings instead of the file's, ``{"workload.jobs_per_hour": 3}``
      (``--set``).
    - ``policies``: Python policies to compare beside the scenario's own,
      ``{"label": Class}``; Nimbus calls ``Class()`` once per run. In a ``faas``
      scenario a keep-alive policy: ``after_execution(app, now_s)`` returns the
      seconds an idle sandbox stays (a number), ``None`` (until evicted) or
      ``(prewarm_after_s, keep_for_s)``; ``on_arrival(app, now_s, idle_s)`` is
      optional. In a ``gpu`` scenario a scheduler: ``schedule(now_s, jobs)``
      returns the ids of the :class:`Job` objects in the order they get GPUs;
      ``round_s``, ``on_arrival(job)`` and ``on_completion(job_id, now_s)`` are
      optional.
    - ``out``: also write the CLI's result files there.
    - ``jobs``: worker threads (default: one per core).
    - ``frame``: ``"pandas"`` (default), ``"polars"`` or ``"arrow"``.
    - ``progress``: ``True`` draws a progress bar on stderr, ``False`` none;
      ``None`` (default) draws one when stderr is a terminal. A callable
      receives ``(fraction, message)`` instead, about every half percent of
      the runs; if it raises, Python reports the error and the runs go on.

    Raises :class:`NimbusError` when the scenario, a run or a policy fails.
    """
    with _reporter(progress) as report:
        raw = _nimbus.run(
            os.fspath(scenario),
            seeds=_seeds(seeds),
            set=_settings(set),
            jobs=jobs,
            out=None if out is None else os.fspath(out),
            policies=None if policies is None else list(policies.items()),
            progress=report,
        )
    return Result(
        scenario=raw["scenario"],
        domain=raw["domain"],
        description=raw["description"],
        seeds=list(raw["seeds"]),
        policies=list(raw["policies"]),
        sweep_keys=list(raw["sweep_keys"]),
        points=raw["points"],
        dir=raw["dir"],
        runs=_frame(raw["runs"], frame),
        summary=_frame(raw["summary"], frame),
        claims=_frame(raw["claims"], frame),
        series=_frame(raw["series"], frame),
        tables={name: _frame(t, frame) for name, t in raw["tables"].items()},
        notes=list(raw["notes"]),
        fallbacks=list(raw["fallbacks"]),
    )


def run_shard(
    scenario: "str | os.PathLike[str]",
    index: int,
    count: int,
    out: "str | os.PathLike[str]",
    seeds: Optional[Iterable[int]] = None,
    set: Optional[Mapping[str, Any]] = None,
    jobs: Optional[int] = None,
    progress: "bool | Callable[[float, str], Any] | None" = None,
) -> str:
    """Runs shard ``index`` of ``count`` of a scenario's runs (``nimbus run --shard``)
    and writes its shard file into ``out``; returns the file's path.
    ``progress`` as in :func:`run`."""
    with _reporter(progress) as report:
        return os.fspath(
            _nimbus.run_shard(
                os.fspath(scenario),
                index,
                count,
                os.fspath(out),
                seeds=_seeds(seeds),
                set=_settings(set),
                jobs=jobs,
                progress=report,
            )
        )


class _Bar:
    """A one-line progress bar on stderr, redrawn in place."""

    WIDTH = 30

    def __init__(self) -> None:
        self._drawn = False

    def __call__(self, fraction: float, message: str) -> None:
        filled = int(round(fraction * self.WIDTH))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        sys.stderr.write(f"\r[{bar}] {100 * fraction:5.1f}% {message}")
        sys.stderr.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _reporter:
    """What ``progress=`` asks for, as the callable the native module calls
    (or ``None``); a bar ends its line when the runs end, however they end."""

    def __init__(self, progress: "bool | Callable[[float, str], Any] | None") -> None:
        if progress is None:
            progress = sys.stderr.isatty()
        if progress is True:
            self.report: Any = _Bar()
        elif progress is False:
            self.report = None
        elif callable(progress):
            self.report = progress
        else:
            raise TypeError(f"progress must be True, False, None or a callable (fraction, message), not {progress!r}")

    def __enter__(self) -> Any:
        return self.report

    def __exit__(self, *exc: Any) -> None:
        if isinstance(self.report, _Bar):
            self.report.close()


def merge(shards: Sequence["str | os.PathLike[str]"], out: "str | os.PathLike[str]") -> str:
    """Merges shard files into the whole run's result files (``nimbus merge``);
    returns ``out``."""
    return os.fspath(_nimbus.merge([os.fspath(s) for s in shards], os.fspath(out)))


def domains() -> list:
    """Every domain: ``name``, ``summary`` and its ``policies``."""
    return _nimbus.domains()


def policies(domain: Optional[str] = None):
    """The policies of every domain (or one), as a pandas DataFrame."""
    import pandas as pd

    rows = []
    names = []
    for d in _nimbus.domains():
        names.append(d["name"])
        if domain is not None and d["name"] != domain:
            continue
        for p in d["policies"]:
            rows.append({"domain": d["name"], **{k: v for k, v in p.items() if k != "params"},
                         "params": ", ".join(p["params"])})
    if domain is not None and domain not in names:
        raise NimbusError(f"unknown domain {domain!r}; domains: {', '.join(names)}")
    return pd.DataFrame(rows, columns=["domain", "name", "kind", "fidelity", "source", "summary", "params"])


def scenarios(root: "str | os.PathLike[str]" = "scenarios"):
    """The scenario files under ``root`` (name, domain, description, path), as a pandas DataFrame."""
    import pandas as pd

    rows = []
    for path in sorted(Path(root).rglob("*.toml")):
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if "domain" not in doc:
            continue
        rows.append({
            "name": doc.get("name", path.stem),
            "domain": doc["domain"],
            "description": str(doc.get("description", "")).strip().split("\n")[0],
            "path": str(path),
        })
    return pd.DataFrame(rows, columns=["name", "domain", "description", "path"])
