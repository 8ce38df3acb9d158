"""A scenario's runs (every point of its ``[sweep]``) as Ray tasks, one per shard.

    import nimbus.ray
    out = nimbus.ray.run_sweep("scenarios/train/paragan.toml", shards=8, out="results/paragan")

Each task runs ``nimbus.run_shard`` on a Ray worker and returns its shard
file's bytes; the driver writes them and merges them with ``nimbus.merge``,
so the result files equal an unsharded ``nimbus run`` byte for byte (the
merge refuses shards of different scenarios, settings or builds).

Workers run in the driver's working directory, so, as with the Slurm and
Kubernetes templates under ``deploy/``, every node needs the repository (the
scenario file and the same build of Nimbus) and ``../shared`` at the same
paths; on one machine that is always so.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import nimbus


def _shard_task(cwd: str, scenario: str, index: int, count: int, seeds, settings, threads):
    """Runs one shard in a temporary directory and returns (file name, bytes)."""
    os.chdir(cwd)
    with tempfile.TemporaryDirectory(prefix="nimbus-shard-") as tmp:
        path = nimbus.run_shard(scenario, index, count, tmp, seeds=seeds, set=settings, jobs=threads)
        return os.path.basename(path), Path(path).read_bytes()


def run_sweep(
    scenario: "str | os.PathLike[str]",
    shards: int,
    out: "str | os.PathLike[str]",
    seeds: Optional[Iterable[int]] = None,
    set: Optional[Mapping[str, Any]] = None,
    cpus_per_shard: int = 1,
    address: Optional[str] = None,
    shard_dir: "str | os.PathLike[str] | None" = None,
) -> str:
    """Runs a scenario's runs as ``shards`` Ray tasks and merges them into ``out``.

    - ``cpus_per_shard``: CPUs Ray reserves for each task, and the shard's
      worker threads.
    - ``address``: the Ray cluster to join (``ray.init(address=...)``) when Ray
      is not initialised yet; ``None`` starts a local instance, which is shut
      down again afterwards.
    - ``shard_dir``: where the shard files are kept (default: a temporary
      directory, removed after the merge).

    Returns ``out``. Raises :class:`nimbus.NimbusError` when a shard or the
    merge fails, and Ray's ``RayTaskError`` when a task dies.
    """
    import ray

    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards={shards!r}: expected a positive integer")
    if isinstance(cpus_per_shard, bool) or not isinstance(cpus_per_shard, int) or cpus_per_shard < 1:
        raise ValueError(f"cpus_per_shard={cpus_per_shard!r}: expected a positive integer")
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        # Checked here, so a bad seed or setting fails before any task starts.
        seeds = nimbus._seeds(seeds)
        nimbus._settings(set)
        settings = None if set is None else dict(set)
        task = ray.remote(num_cpus=cpus_per_shard)(_shard_task)
        pending = [
            task.remote(os.getcwd(), os.fspath(scenario), i, shards, seeds, settings, cpus_per_shard)
            for i in range(shards)
        ]
        files = ray.get(pending)
    finally:
        if started:
            ray.shutdown()
    if shard_dir is not None:
        return _merge(files, Path(shard_dir), out)
    with tempfile.TemporaryDirectory(prefix="nimbus-shards-") as tmp:
        return _merge(files, Path(tmp), out)


def _merge(files, directory: Path, out) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files:
        path = directory / name
        path.write_bytes(data)
        paths.append(path)
    return nimbus.merge(paths, out)
