"""What a policy written in Python costs per decision, against the same policy in Rust.

    python3 python/benchmarks/policy_overhead.py [--days 1.0] [--jobs 2000]

Runs two scenarios twice on one thread, once with the built-in policy and
once with a Python class that decides exactly the same (the results are
checked equal), and reports the wall time of each, the Python calls made and
the overhead per call: (t_python - t_rust) / calls.
- serverless keep-alive: fixed 10-minute keep-alive on a synthetic Azure-like
  workload (`after_execution` once per invocation);
- GPU scheduling: FIFO on Gavel's generator (`schedule` once per round, with
  every active job as a `nimbus.Job`).
"""

import argparse
import os
import tempfile
import time

import nimbus

FAAS = """
name = "overhead-faas"
domain = "faas"
seeds = [1]
[platform]
hosts = 8
host_memory_gb = 256
[workload]
kind = "synthetic"
apps = 200
days = {days}
cold_start_ms = 1000
[[policy]]
name = "fixed"
label = "{label}"
"""

GPU = """
name = "overhead-gpu"
domain = "gpu"
seeds = [1]
[cluster]
[[cluster.servers]]
gpu = "v100"
count = 4
gpus_per_server = 4
[[cluster.servers]]
gpu = "k80"
count = 4
gpus_per_server = 4
[workload]
kind = "gavel-generator"
jobs_per_hour = 4.0
multi_gpu = true
max_jobs = {jobs}
[[policy]]
name = "fifo"
label = "{label}"
"""


class Fixed:
    calls = 0

    def after_execution(self, app, now_s):
        Fixed.calls += 1
        return 600.0


class Fifo:
    calls = 0
    jobs_seen = 0

    def schedule(self, now_s, jobs):
        Fifo.calls += 1
        Fifo.jobs_seen += len(jobs)
        return [j.id for j in jobs]


def timed(path, **kw):
    start = time.perf_counter()
    result = nimbus.run(path, jobs=1, **kw)
    return result, time.perf_counter() - start


def compare(name, text, cls, builtin_label):
    with tempfile.TemporaryDirectory() as tmp:
        rust_path = os.path.join(tmp, "rust.toml")
        with open(rust_path, "w") as f:
            f.write(text.format(label=builtin_label))
        rust, t_rust = timed(rust_path)
        py_path = os.path.join(tmp, "py.toml")
        # The Python policy runs beside a built-in one in the same file;
        # its own time is the difference of the two runs.
        with open(py_path, "w") as f:
            f.write(text.format(label=builtin_label))
        both, t_both = timed(py_path, policies={"python": cls})
    a = both.runs[both.runs.policy == "python"].drop(columns="policy").reset_index(drop=True)
    b = rust.runs.drop(columns="policy").reset_index(drop=True)
    same = a.equals(b)
    t_py = t_both - t_rust
    calls = cls.calls
    per_call_us = (t_py - t_rust) / calls * 1e6 if calls else float("nan")
    print(f"{name}: rust {t_rust:.2f} s, python {t_py:.2f} s, {calls:,} calls, "
          f"overhead {per_call_us:.2f} µs per call; results identical: {same}")
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    ok = compare("keep-alive (faas)", FAAS.replace("{days}", str(args.days)), Fixed, "fixed-10")
    ok &= compare("scheduling (gpu)", GPU.replace("{jobs}", str(args.jobs)), Fifo, "fifo")
    if Fifo.calls:
        print(f"  gpu: {Fifo.jobs_seen / Fifo.calls:.1f} active jobs per round on average")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
