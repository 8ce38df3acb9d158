"""statsforecast's speed on the series of `nimbus bench forecast`, for the
ratio that benchmark prints. Run once, outside the build:

    cargo run --release -p nimbus-cli -- bench forecast   # writes the series
    python3 -m venv /tmp/sfenv && /tmp/sfenv/bin/pip install statsforecast
    /tmp/sfenv/bin/python crates/nimbus-forecast/tests/reference/statsforecast_bench.py \
        target/bench-forecast/series.csv > crates/nimbus-forecast/tests/reference/statsforecast_bench.json

Same protocol as the benchmark: 30 origins a day apart at the end of each
series, a 24-step horizon, each fit on the 672 values before its origin,
one thread. The slow models run on the first series only (SERIES below);
rates are series per second either way.
"""
import csv
import datetime
import json
import sys
import time
import warnings

import numpy as np
import statsforecast
from statsforecast.models import (
    ADIDA,
    MSTL,
    TSB,
    AutoARIMA,
    AutoETS,
    CrostonClassic,
    Naive,
    SeasonalNaive,
    SimpleExponentialSmoothingOptimized,
    Theta,
    WindowAverage,
)

warnings.filterwarnings("ignore")
ORIGINS, HORIZON, WINDOW = 30, 24, 672
MODELS = {
    "naive": (Naive, 200),
    "snaive24": (lambda: SeasonalNaive(season_length=24), 200),
    "ma24": (lambda: WindowAverage(window_size=24), 200),
    "ses": (SimpleExponentialSmoothingOptimized, 200),
    "croston": (CrostonClassic, 200),
    "tsb": (lambda: TSB(alpha_d=0.1, alpha_p=0.1), 200),
    "adida": (ADIDA, 200),
    "theta24": (lambda: Theta(season_length=24), 40),
    "autoets": (lambda: AutoETS(season_length=1), 40),
    "mstl": (lambda: MSTL(season_length=[24, 168], trend_forecaster=AutoETS(model="ZZN")), 12),
    "autoarima": (lambda: AutoARIMA(season_length=1), 8),
}

series = {}
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f):
        series.setdefault(row["unique_id"], []).append(float(row["y"]))
names = list(series)
out = {
    "generator": "crates/nimbus-forecast/tests/reference/statsforecast_bench.py",
    "statsforecast": statsforecast.__version__,
    "numpy": np.__version__,
    "python": sys.version.split()[0],
    "measured": datetime.date.today().isoformat(),
    "origins": ORIGINS,
    "horizon": HORIZON,
    "window": WINDOW,
    "models": {},
}
for key, (make, count) in MODELS.items():
    chosen = [np.array(series[n]) for n in names[:count]]
    make().fit(chosen[0][:WINDOW]).predict(HORIZON)  # compile (numba) outside the timing
    started = time.perf_counter()
    for y in chosen:
        last = len(y) - HORIZON
        for k in range(ORIGINS):
            origin = last - (ORIGINS - 1 - k) * HORIZON
            make().fit(y[origin - WINDOW : origin]).predict(HORIZON)
    wall = time.perf_counter() - started
    out["models"][key] = {"series": len(chosen), "seconds": wall, "series_per_s": len(chosen) / wall}
    print(key, out["models"][key], file=sys.stderr)
json.dump(out, sys.stdout, indent=1)
print()
