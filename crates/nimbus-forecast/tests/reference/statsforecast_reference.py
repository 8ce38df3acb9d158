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
    ARIMA,
    AutoARIMA,
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
    # Point forecasts from CSS-ML fits (statsforecast's default). Its
    # method="CSS" returns the intercept as every forecast in 2.1.1, so the
    # CSS estimates are recorded as coefficients instead (below).
    "arima(1,0,1)": lambda: ARIMA(order=(1, 0, 1)),
    "arima(2,0,0)": lambda: ARIMA(order=(2, 0, 0)),
    "arima(0,1,1)": lambda: ARIMA(order=(0, 1, 1)),
    "arima(1,1,1)": lambda: ARIMA(order=(1, 1, 1)),
    "autoarima": lambda: AutoARIMA(season_length=1),
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
            model = make().fit(y)
            forecasts[key] = [float(v) for v in model.predict(H)["mean"]]
            if key == "autoarima":
                # (p, q, P, Q, m, d, D) in statsforecast's arma field.
                arma = model.model_["arma"]
                forecasts["autoarima_order"] = [int(arma[0]), int(arma[5]), int(arma[1])]
        except Exception as e:  # recorded, not hidden
            forecasts[key] = str(e)
    css = {}
    for order in [(1, 0, 1), (2, 0, 0), (0, 1, 1), (1, 1, 1)]:
        key = "arima({},{},{})".format(*order)
        try:
            coef = ARIMA(order=order, method="CSS").fit(y).model_["coef"]
            css[key] = {k: float(v) for k, v in coef.items()}
        except Exception as e:
            css[key] = str(e)
    out["series"].append(
        {"name": name, "values": [float(v) for v in y], "forecasts": forecasts, "css_coefficients": css}
    )
json.dump(out, sys.stdout, indent=1)
print()
