//! A learned model: ridge regression on lags and calendar (Fourier) terms,
//! forecasting recursively.
//!
//! Features at step t: an intercept; the values at lags 1, 2, 3, one
//! period and one long period back (24 and 168 for hourly series), where
//! the history is at least four times the lag; and sin/cos pairs of the
//! first two harmonics of each period, at the step's position in the
//! history. Coefficients minimise squared one-step error plus λ‖β‖² (λ =
//! 1e-6 × the trace of XᵀX, intercept unpenalised), solved by Cholesky.
//! Forecasts feed their own predictions back as lags, each held within the
//! history's range widened by that range on both sides (a fit with an
//! explosive lag polynomial, which a spike in the history can produce,
//! would otherwise run away over a long horizon). Quantiles are
//! Gaussian, σ the one-step residual RMS growing as √h (the random-walk
//! bound; recursive errors accumulate at most that fast for a stable fit).
//!
//! The model is fitted per series (a local model); `global-linear`
//! ([`super::global`]) learns one model across many series.

use crate::forecast::{Fitted, Forecast, ForecastError, Forecaster, rms};

/// Ridge regression on lags and Fourier terms.
#[derive(Debug, Clone)]
pub struct LinearLags {
    /// Periods for seasonal lags and Fourier terms (e.g. 24 and 168).
    pub periods: Vec<usize>,
}

struct Design {
    lags: Vec<usize>,
    periods: Vec<usize>,
}

impl Design {
    fn width(&self) -> usize {
        1 + self.lags.len() + 4 * self.periods.len()
    }

    /// Features for predicting position `t` from `values` (which holds at
    /// least `t` earlier values).
    fn row(&self, values: &[f64], t: usize, out: &mut Vec<f64>) {
        out.clear();
        out.push(1.0);
        for &lag in &self.lags {
            out.push(values[t - lag]);
        }
        for &p in &self.periods {
            for k in 1..=2 {
                let angle = std::f64::consts::TAU * k as f64 * (t % p) as f64 / p as f64;
                out.push(angle.sin());
                out.push(angle.cos());
            }
        }
    }
}

/// Solves the symmetric positive-definite system `a x = b` (row-major
/// `n × n`) by Cholesky; `None` if `a` is not positive definite.
pub(crate) fn cholesky_solve(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    Some(x)
}

struct FittedLinear {
    design: Design,
    beta: Vec<f64>,
    history: Vec<f64>,
    sigma: f64,
}

impl Fitted for FittedLinear {
    fn predict(&self, horizon: usize) -> Forecast {
        let mut values = self.history.clone();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut row = Vec::with_capacity(self.design.width());
        let mut point = Vec::with_capacity(horizon);
        for _ in 0..horizon {
            let t = values.len();
            self.design.row(&values, t, &mut row);
            let v = row.iter().zip(&self.beta).map(|(x, b)| x * b).sum::<f64>().clamp(lo - (hi - lo), hi + (hi - lo));
            values.push(v);
            point.push(v);
        }
        let sigma: Vec<f64> = (0..horizon).map(|h| self.sigma * ((h + 1) as f64).sqrt()).collect();
        Forecast::gaussian(point, &sigma)
    }
}

impl Forecaster for LinearLags {
    fn name(&self) -> String {
        super::with_periods("linear", &self.periods)
    }
    fn min_history(&self) -> usize {
        24
    }
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let n = history.len();
        let mut lags: Vec<usize> = vec![1, 2, 3];
        lags.extend(self.periods.iter().copied());
        lags.retain(|&lag| lag >= 1 && 4 * lag <= n);
        lags.dedup();
        let periods: Vec<usize> = self.periods.iter().copied().filter(|&p| p >= 2 && 2 * p <= n).collect();
        let design = Design { lags, periods };
        let width = design.width();
        let start = design.lags.iter().copied().max().unwrap_or(0);
        let mut xtx = vec![0.0; width * width];
        let mut xty = vec![0.0; width];
        let mut row = Vec::with_capacity(width);
        for t in start..n {
            design.row(history, t, &mut row);
            for i in 0..width {
                xty[i] += row[i] * history[t];
                for j in 0..width {
                    xtx[i * width + j] += row[i] * row[j];
                }
            }
        }
        let trace: f64 = (0..width).map(|i| xtx[i * width + i]).sum();
        let lambda = 1e-6 * trace.max(1e-12);
        for i in 1..width {
            xtx[i * width + i] += lambda;
        }
        let beta = cholesky_solve(&xtx, &xty, width).ok_or_else(|| ForecastError::Fit {
            model: "linear".into(),
            message: "the regression is degenerate (constant history?)".into(),
        })?;
        let sigma = rms((start..n).map(|t| {
            design.row(history, t, &mut row);
            history[t] - row.iter().zip(&beta).map(|(x, b)| x * b).sum::<f64>()
        }));
        Ok(Box::new(FittedLinear {
            design,
            beta,
            history: history.to_vec(),
            sigma: if sigma.is_finite() { sigma } else { 0.0 },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_by_hand() {
        // [[4, 2], [2, 3]] x = [2, 1] → x = [0.5, 0].
        let x = cholesky_solve(&[4.0, 2.0, 2.0, 3.0], &[2.0, 1.0], 2).expect("accepted");
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        assert!(cholesky_solve(&[0.0, 0.0, 0.0, 0.0], &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn a_spike_cannot_make_the_recursion_run_away() {
        let mut y: Vec<f64> = (0..24 * 30).map(|t| 10.0 + ((t * 7919) % 13) as f64 * 0.01).collect();
        y[24 * 30 - 2] = 1e5;
        let f = LinearLags { periods: vec![24, 168] }.forecast(&y, 500).expect("accepted");
        let (lo, hi) = (10.0, 1e5);
        assert!(f.point.iter().all(|v| *v >= lo - (hi - lo) && *v <= hi + (hi - lo)));
    }

    #[test]
    fn learns_a_seasonal_ar_series() {
        let y: Vec<f64> =
            (0..24 * 20).map(|t| 50.0 + 10.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).cos()).collect();
        let f = LinearLags { periods: vec![24] }.forecast(&y, 24).expect("accepted");
        for (h, v) in f.point.iter().enumerate() {
            let truth = 50.0 + 10.0 * (h as f64 / 24.0 * std::f64::consts::TAU).cos();
            assert!((v - truth).abs() < 0.5, "step {h}: {v} vs {truth}");
        }
    }
}
