//! Accuracy and scaling metrics of one forecast against what happened.
//!
//! - MAE and MASE (Hyndman & Koehler 2006): MAE scaled by the in-sample MAE
//!   of the seasonal naive forecast with the scaling season `m`.
//! - sMAPE in percent, 200|a − f| / (|a| + |f|), a step where both are zero
//!   counting zero.
//! - Weighted quantile loss over 0.1…0.9: the mean over levels of
//!   2 Σₕ ρ_q(aₕ − q̂ₕ) / Σₕ |aₕ| (ρ the pinball loss), as in GluonTS.
//! - Coverage of the 80% interval [q0.1, q0.9].
//! - Scaling: with capacity set at the q-quantile forecast, the share of
//!   steps under-provisioned (demand above capacity), the unmet demand and
//!   the idle capacity, both as fractions of total demand.

use crate::forecast::{Forecast, QUANTILES};

/// One forecast's scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Mean absolute error.
    pub mae: f64,
    /// MAE over the in-sample seasonal-naive MAE (NaN if that is zero).
    pub mase: f64,
    /// Symmetric mean absolute percentage error, percent.
    pub smape: f64,
    /// Weighted quantile loss (NaN when every actual is zero).
    pub wql: f64,
    /// Share of actuals inside the 80% interval.
    pub coverage_80: f64,
    /// Share of steps with demand above the capacity quantile.
    pub under_provisioned: f64,
    /// Demand above capacity over total demand (NaN when demand is zero).
    pub unmet_demand: f64,
    /// Capacity above demand over total demand (NaN when demand is zero).
    pub idle_capacity: f64,
}

/// Pinball loss of `forecast` at level `q` for `actual`.
pub fn pinball(actual: f64, forecast: f64, q: f64) -> f64 {
    let d = actual - forecast;
    if d >= 0.0 { q * d } else { (q - 1.0) * d }
}

/// The in-sample MAE of the seasonal naive forecast with season `m`
/// (falling back to m = 1 when the history is shorter than m + 1).
pub fn naive_scale(history: &[f64], m: usize) -> f64 {
    let m = if history.len() > m && m >= 1 { m } else { 1 };
    let n = history.len().saturating_sub(m);
    if n == 0 {
        return f64::NAN;
    }
    history.windows(m + 1).map(|w| (w[m] - w[0]).abs()).sum::<f64>() / n as f64
}

/// Scores `forecast` against `actual` (same length), scaling MASE by the
/// seasonal naive error of `history` with season `m`, and provisioning at
/// quantile `capacity_quantile`.
pub fn score(actual: &[f64], forecast: &Forecast, history: &[f64], m: usize, capacity_quantile: f64) -> Scores {
    let n = actual.len().min(forecast.len());
    let nf = n as f64;
    let point = &forecast.point[..n];
    let mae = actual.iter().zip(point).map(|(a, f)| (a - f).abs()).sum::<f64>() / nf;
    let scale = naive_scale(history, m);
    let mase = if scale > 0.0 { mae / scale } else { f64::NAN };
    let smape = actual
        .iter()
        .zip(point)
        .map(|(a, f)| {
            let d = a.abs() + f.abs();
            if d == 0.0 { 0.0 } else { 200.0 * (a - f).abs() / d }
        })
        .sum::<f64>()
        / nf;
    let total: f64 = actual[..n].iter().map(|a| a.abs()).sum();
    let wql = if total > 0.0 {
        QUANTILES
            .iter()
            .enumerate()
            .map(|(i, &q)| 2.0 * (0..n).map(|h| pinball(actual[h], forecast.quantiles[i][h], q)).sum::<f64>() / total)
            .sum::<f64>()
            / QUANTILES.len() as f64
    } else {
        f64::NAN
    };
    let covered =
        (0..n).filter(|&h| actual[h] >= forecast.quantiles[0][h] && actual[h] <= forecast.quantiles[8][h]).count();
    let (mut under_steps, mut unmet, mut idle) = (0usize, 0.0, 0.0);
    for (h, &a) in actual.iter().enumerate().take(n) {
        let capacity = forecast.quantile(capacity_quantile, h);
        if a > capacity {
            under_steps += 1;
            unmet += a - capacity;
        } else {
            idle += capacity - a;
        }
    }
    let demand: f64 = actual[..n].iter().sum();
    Scores {
        mae,
        mase,
        smape,
        wql,
        coverage_80: covered as f64 / nf,
        under_provisioned: under_steps as f64 / nf,
        unmet_demand: if demand > 0.0 { unmet / demand } else { f64::NAN },
        idle_capacity: if demand > 0.0 { idle / demand } else { f64::NAN },
    }
}

/// Metric names in the order [`Scores::values`] returns them.
pub const NAMES: [&str; 8] = [
    "mae",
    "mase",
    "smape_pct",
    "wql",
    "coverage_80",
    "under_provisioned_share",
    "unmet_demand_share",
    "idle_capacity_share",
];

impl Scores {
    /// The scores in [`NAMES`] order.
    pub fn values(&self) -> [f64; 8] {
        [
            self.mae,
            self.mase,
            self.smape,
            self.wql,
            self.coverage_80,
            self.under_provisioned,
            self.unmet_demand,
            self.idle_capacity,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let history = [1.0, 3.0, 2.0, 4.0];
        // Naive (m = 1) in-sample errors 2, 1, 2 → scale 5/3.
        assert!((naive_scale(&history, 1) - 5.0 / 3.0).abs() < 1e-12);
        // m = 2: |2−1|, |4−3| → 1.
        assert_eq!(naive_scale(&history, 2), 1.0);
        let f = Forecast::gaussian(vec![2.0, 2.0], &[1.0, 1.0]);
        let s = score(&[3.0, 2.0], &f, &history, 2, 0.5);
        assert_eq!(s.mae, 0.5);
        assert_eq!(s.mase, 0.5);
        // sMAPE: 200·1/5 and 0 → 20%.
        assert!((s.smape - 20.0).abs() < 1e-12);
        assert_eq!(s.coverage_80, 1.0);
        // Capacity at the median (2): step 0 short by 1, step 1 exact.
        assert_eq!(s.under_provisioned, 0.5);
        assert!((s.unmet_demand - 0.2).abs() < 1e-12);
        assert_eq!(s.idle_capacity, 0.0);
        // A perfect point forecast with zero spread has zero quantile loss.
        let exact = Forecast::gaussian(vec![3.0, 2.0], &[0.0, 0.0]);
        assert_eq!(score(&[3.0, 2.0], &exact, &history, 1, 0.9).wql, 0.0);
        assert_eq!(pinball(1.0, 0.0, 0.9), 0.9);
        assert!((pinball(0.0, 1.0, 0.9) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn zero_demand_is_undefined_not_infinite() {
        let f = Forecast::gaussian(vec![0.0], &[0.0]);
        let s = score(&[0.0], &f, &[0.0, 0.0], 1, 0.9);
        assert_eq!(s.smape, 0.0);
        assert!(s.wql.is_nan() && s.mase.is_nan() && s.unmet_demand.is_nan());
    }
}
