"""Nimbus from Python in three steps (run from the repository root):

    python3 -m pip install ./python matplotlib
    python3 examples/quickstart.py [--out DIR]

1. Runs Gavel's continuous experiment and plots the CDF of job completion
   times from the per-job DataFrame (`jct_cdf.png`).
2. Defines a keep-alive policy in Python and compares it with the built-in
   fixed and hybrid-histogram policies of Serverless in the Wild on the same
   synthetic Azure-like workload.
3. Prints the comparison as a DataFrame.
"""

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import nimbus  # noqa: E402


class TwiceTheMeanIdle:
    """Keeps an app's idle sandbox for twice its mean idle time so far
    (10 minutes until it has one), between 1 minute and 2 hours."""

    def __init__(self):
        self.idle_sum = {}
        self.idle_count = {}

    def on_arrival(self, app, now_s, idle_s):
        if idle_s is not None:
            self.idle_sum[app] = self.idle_sum.get(app, 0.0) + idle_s
            self.idle_count[app] = self.idle_count.get(app, 0) + 1

    def after_execution(self, app, now_s):
        count = self.idle_count.get(app, 0)
        if count == 0:
            return 600.0
        return min(max(2.0 * self.idle_sum[app] / count, 60.0), 7200.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/quickstart", help="where the plot goes")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. A GPU-cluster scenario; the per-job table of every run is a DataFrame.
    gavel = nimbus.run("scenarios/gpu/gavel-continuous.toml")
    print(gavel)
    print(gavel.metric("jct_h_mean"), "\n")
    jobs = gavel.tables["jobs"]
    jobs = jobs[jobs["measured"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    for policy, group in jobs.groupby("policy"):
        jct = np.sort(group["jct_s"].dropna().to_numpy() / 3600.0)
        ax.plot(jct, np.arange(1, len(jct) + 1) / len(jct), label=policy)
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (h)")
    ax.set_ylabel("fraction of jobs")
    ax.set_title("Gavel continuous experiment, jobs 4000-5000")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "jct_cdf.png", dpi=120)
    print(f"CDF: {out / 'jct_cdf.png'}\n")

    # 2. A keep-alive policy in Python beside the paper's policies (a
    #    shorter, smaller workload than the scenario's 14 days).
    wild = nimbus.run(
        "scenarios/faas/sitw-pareto.toml",
        seeds=[1],
        set={"workload.days": 0.5, "workload.apps": 100},
        policies={"twice-mean-idle": TwiceTheMeanIdle},
    )

    # 3. The comparison, as a DataFrame.
    table = wild.summary.pivot(index="policy", columns="metric", values="mean")
    print(table[["app_cold_start_pct_p75", "cold_start_pct", "wasted_memory_gb_s"]].round(2))
    return gavel, wild


if __name__ == "__main__":
    main()
