//! The Theta method as the Standard Theta Model (STM) of Fiorucci et al.
//! (2016, "Models for optimising the theta method and their relationship
//! to state space models"), with θ = 2: simple exponential smoothing plus
//! half the slope of the linear trend fitted to the history.
//!
//! State after step t: level ℓₜ = α yₜ + (1 − α) ℓₜ₋₁; the one-step
//! forecast μₜ₊₁ = ℓₜ + (1 − 1/θ)[(1 − α)ᵗ Aₙ + (1 − (1 − α)ᵗ⁺¹)/α · Bₙ],
//! with Aₙ, Bₙ the intercept and slope of least squares on t = 1..n. ℓ₀ and
//! α ∈ [0.1, 0.99] minimise the in-sample squared one-step errors (after a
//! three-step burn-in) by Nelder–Mead from ℓ₀ = y₀/2, α = 0.5.
//!
//! Seasonal series (period m ≥ 4, n ≥ 2m, lag-m autocorrelation significant
//! at 90% under Bartlett's formula) are first adjusted by a classical
//! decomposition: multiplicative when the history is positive and no index
//! falls below 0.01, otherwise additive; the forecast is re-seasonalised
//! with the last period's indices. This follows `statsforecast`'s `Theta`.
//! Intervals are Gaussian with σ of the one-step residuals growing as SES's,
//! σ√(1 + (h−1)α²) (statsforecast simulates paths instead).

use crate::forecast::{Fitted, Forecast, ForecastError, Forecaster};
use crate::optimize::nelder_mead;

/// The Standard Theta Model with optional seasonal adjustment.
#[derive(Debug, Clone, Copy)]
pub struct Theta {
    /// Season length (1 for none).
    pub period: usize,
}

#[derive(Clone, Copy)]
struct Trend {
    a: f64,
    b: f64,
}

const THETA: f64 = 2.0;

fn mu(level: f64, trend: Trend, alpha: f64, i: usize) -> f64 {
    // (1 − α)^i is 0 long before i leaves the i32 range.
    let i = i32::try_from(i).unwrap_or(i32::MAX - 1);
    level
        + (1.0 - 1.0 / THETA) * ((1.0 - alpha).powi(i) * trend.a + (1.0 - (1.0 - alpha).powi(i + 1)) / alpha * trend.b)
}

/// Runs the model over `y`; returns the final level and the one-step
/// errors (the first is zero).
fn run(y: &[f64], trend: Trend, initial: f64, alpha: f64) -> (f64, Vec<f64>) {
    let mut level = alpha * y[0] + (1.0 - alpha) * initial;
    let mut errors = vec![0.0; y.len()];
    for (i, &v) in y.iter().enumerate().skip(1) {
        errors[i] = v - mu(level, trend, alpha, i);
        level = alpha * v + (1.0 - alpha) * level;
    }
    (level, errors)
}

fn linear_trend(y: &[f64]) -> Trend {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let weighted = y.iter().enumerate().map(|(i, v)| (i + 1) as f64 * v).sum::<f64>() / n;
    let b = if y.len() > 1 { 6.0 * (2.0 * weighted - (1.0 + n) * mean) / (n * n - 1.0) } else { 0.0 };
    Trend { a: mean - (n + 1.0) * b / 2.0, b }
}

fn mse_after_burn_in(errors: &[f64]) -> f64 {
    let tail = &errors[3.min(errors.len())..];
    if tail.is_empty() { 0.0 } else { tail.iter().map(|e| e * e).sum::<f64>() / tail.len() as f64 }
}

/// Autocorrelation of `y` at `lag` (biased estimator, as statsmodels).
fn acf(y: &[f64], lag: usize) -> f64 {
    let n = y.len();
    let mean = y.iter().sum::<f64>() / n as f64;
    let denominator: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    if denominator == 0.0 || lag >= n {
        return 0.0;
    }
    (0..n - lag).map(|t| (y[t] - mean) * (y[t + lag] - mean)).sum::<f64>() / denominator
}

/// Whether the lag-m autocorrelation is significant at 90% (one-sided
/// z = 1.645 with Bartlett's standard error).
fn seasonal(y: &[f64], m: usize) -> bool {
    if m < 4 || y.len() < 2 * m {
        return false;
    }
    let r: Vec<f64> = (1..=m).map(|k| acf(y, k)).collect();
    let stat = ((1.0 + 2.0 * r[..m - 1].iter().map(|v| v * v).sum::<f64>()) / y.len() as f64).sqrt();
    r[m - 1].abs() / stat > 1.644_853_626_951_472_2
}

/// Classical decomposition's seasonal indices (one per position in the
/// period), centred moving-average trend.
fn seasonal_indices(y: &[f64], m: usize, multiplicative: bool) -> Vec<f64> {
    let n = y.len();
    // Centred moving average: m terms for odd m, 2×m for even m.
    let weights: Vec<f64> = if m.is_multiple_of(2) {
        let mut w = vec![1.0 / m as f64; m + 1];
        w[0] = 0.5 / m as f64;
        w[m] = 0.5 / m as f64;
        w
    } else {
        vec![1.0 / m as f64; m]
    };
    let half = weights.len() / 2;
    let mut sums = vec![0.0; m];
    let mut counts = vec![0usize; m];
    for t in half..n.saturating_sub(half) {
        let trend: f64 = weights.iter().enumerate().map(|(j, w)| w * y[t + j - half]).sum();
        let detrended = if multiplicative { y[t] / trend } else { y[t] - trend };
        if detrended.is_finite() {
            sums[t % m] += detrended;
            counts[t % m] += 1;
        }
    }
    let mut indices: Vec<f64> =
        sums.iter().zip(&counts).map(|(s, &c)| if c > 0 { s / c as f64 } else { f64::NAN }).collect();
    let mean = indices.iter().sum::<f64>() / m as f64;
    for v in &mut indices {
        if multiplicative {
            *v /= mean;
        } else {
            *v -= mean;
        }
    }
    indices
}

struct Adjustment {
    /// Index of each position in the period, aligned so that position
    /// `t % m` belongs to history step `t`.
    indices: Vec<f64>,
    multiplicative: bool,
    /// History length (where the forecast's first step falls in the period).
    n: usize,
}

struct FittedTheta {
    level: f64,
    trend: Trend,
    alpha: f64,
    n: usize,
    sigma: f64,
    adjustment: Option<Adjustment>,
}

impl Fitted for FittedTheta {
    fn predict(&self, horizon: usize) -> Forecast {
        let mut point = Vec::with_capacity(horizon);
        let mut level = self.level;
        for i in 0..horizon {
            let m = mu(level, self.trend, self.alpha, self.n + i);
            level = self.alpha * m + (1.0 - self.alpha) * level;
            point.push(m);
        }
        let sigma: Vec<f64> =
            (0..horizon).map(|h| self.sigma * (1.0 + h as f64 * self.alpha * self.alpha).sqrt()).collect();
        let mut forecast = Forecast::gaussian(point, &sigma);
        if let Some(adj) = &self.adjustment {
            let m = adj.indices.len();
            for h in 0..horizon {
                let index = adj.indices[(adj.n + h) % m];
                for v in std::iter::once(&mut forecast.point[h]).chain(forecast.quantiles.iter_mut().map(|q| &mut q[h]))
                {
                    *v = if adj.multiplicative { *v * index } else { *v + index };
                }
            }
            forecast.sort_quantiles();
        }
        forecast
    }
}

impl Forecaster for Theta {
    fn name(&self) -> String {
        if self.period <= 1 { "theta".into() } else { format!("theta{}", self.period) }
    }
    fn min_history(&self) -> usize {
        4
    }
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let m = self.period.max(1);
        let mut adjustment = None;
        let mut y = history.to_vec();
        if seasonal(history, m) {
            let positive = history.iter().all(|v| *v > 0.0);
            let mut multiplicative = positive;
            let mut indices = seasonal_indices(history, m, multiplicative);
            if multiplicative && indices.iter().any(|v| *v < 0.01 || !v.is_finite()) {
                multiplicative = false;
                indices = seasonal_indices(history, m, false);
            }
            if indices.iter().all(|v| v.is_finite()) {
                for (t, v) in y.iter_mut().enumerate() {
                    let index = indices[t % m];
                    *v = if multiplicative { *v / index } else { *v - index };
                }
                adjustment = Some(Adjustment { indices, multiplicative, n: history.len() });
            }
        }
        let trend = linear_trend(&y);
        let objective = |p: &[f64]| mse_after_burn_in(&run(&y, trend, p[0], p[1]).1);
        let scale = y.iter().map(|v| v.abs()).sum::<f64>() / y.len() as f64;
        let best = nelder_mead(
            &[y[0] / 2.0, 0.5],
            &[scale.max(1e-6) * 0.1, 0.1],
            &[-1e10, 0.1],
            &[1e10, 0.99],
            2_000,
            objective,
        );
        let (initial, alpha) = (best[0], best[1]);
        let (level, errors) = run(&y, trend, initial, alpha);
        let tail = &errors[3.min(errors.len())..];
        let sigma = if tail.len() > 1 {
            let mean = tail.iter().sum::<f64>() / tail.len() as f64;
            (tail.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (tail.len() - 1) as f64).sqrt()
        } else {
            0.0
        };
        Ok(Box::new(FittedTheta { level, trend, alpha, n: y.len(), sigma, adjustment }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_gets_half_its_slope() {
        // θ = 2 keeps half the fitted drift: on y = t, α → 0.99 and the
        // forecast rises by 0.5 a step (statsforecast 2.1.1 gives
        // 40.494949…, 40.994949…, 41.494949… on the same input).
        let y: Vec<f64> = (1..=40).map(f64::from).collect();
        let f = Theta { period: 1 }.forecast(&y, 3).expect("accepted");
        for (h, v) in f.point.iter().enumerate() {
            assert!((v - (40.494_949_494_949_5 + 0.5 * h as f64)).abs() < 1e-6, "{:?}", f.point);
        }
    }

    #[test]
    fn seasonality_is_detected_and_restored() {
        let y: Vec<f64> = (0..96).map(|t| 10.0 + if t % 4 == 0 { 5.0 } else { 0.0 }).collect();
        assert!(seasonal(&y, 4));
        let f = Theta { period: 4 }.forecast(&y, 8).expect("accepted");
        // Step 0 is position 96 % 4 = 0: the peak.
        assert!(f.point[0] > f.point[1] + 3.0, "{:?}", f.point);
        assert!(f.point[4] > f.point[5] + 3.0);
        let trend = linear_trend(&[1.0, 2.0, 3.0]);
        assert!((trend.a - 0.0).abs() < 1e-12 && (trend.b - 1.0).abs() < 1e-12);
    }
}
