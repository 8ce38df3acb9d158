"""Reference point forecasts from Nixtla's statsforecast, for
crates/nimbus-forecast/tests/statsforecast.rs.

Run once, outside the build, in a virtual environment:

    python3 -m venv /tmp/sfenv && /tmp/sfenv/bin/pip install statsforecast
    /tmp/sfenv/bin/python statsforecast_reference.py > statsforecast.json

The series are synthetic (seeded numpy), stored in the output beside the
forecasts, so the test needs nothing else.
"""
import json
import sys

import numpy as np
import statsforecast
from statsforecast.models import (
    ADIDA,
    TSB,
    AutoETS,
    CrostonClassic,
    Naive,
    SeasonalNaive,
    SimpleExponentialSmoothingOptimized,
    Theta,
    WindowAverage,
)

H = 24
rng = np.random.default_rng(20261206)
t = np.arange(24 * 14)
series = {
    "daily": 100 + 30 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 5, t.size),
    "trend": 50 + 0.8 * np.arange(120) + rng.normal(0, 4, 120),
    "random_walk": 200 + np.cumsum(rng.normal(0, 3, 200)),
    "level_shift": np.concatenate([rng.normal(40, 2, 90), rng.normal(70, 2, 60)]),
    "counts": rng.poisson(0.6, 300).astype(float),
    "sparse": (rng.random(200) < 0.1) * np.round(rng.lognormal(2, 0.5, 200)),
}
models = {
    "naive": lambda: Naive(),
    "snaive24": lambda: SeasonalNaive(season_length=24),
    "ma24": lambda: WindowAverage(window_size=24),
    "ses": lambda: SimpleExponentialSmoothingOptimized(),
    "autoets": lambda: AutoETS(season_length=1),
    "theta": lambda: Theta(season_length=1),
    "theta24": lambda: Theta(season_length=24),
    "croston": lambda: CrostonClassic(),
    "tsb": lambda: TSB(alpha_d=0.1, alpha_p=0.1),
    "adida": lambda: ADIDA(),
}
out = {
    "generator": "crates/nimbus-forecast/tests/reference/statsforecast_reference.py",
    "statsforecast": statsforecast.__version__,
    "numpy": np.__version__,
    "python": sys.version.split()[0],
    "horizon": H,
    "series": [],
}
for name, y in series.items():
    y = np.round(y.astype(float), 6)
    forecasts = {}
    for key, make in models.items():
        try:
            forecasts[key] = [float(v) for v in make().fit(y).predict(H)["mean"]]
        except Exception as e:  # recorded, not hidden
            forecasts[key] = str(e)
    out["series"].append({"name": name, "values": [float(v) for v in y], "forecasts": forecasts})
json.dump(out, sys.stdout, indent=1)
print()
