//! Exponential smoothing for levels and intermittent demand: SES, Croston,
//! TSB and ADIDA.
//!
//! - SES: ℓ₀ = y₀, ŷₜ₊₁ = α yₜ + (1 − α) ŷₜ (FPP3 §8.1), α chosen by
//!   Brent's bounded search on the in-sample squared one-step errors.
//! - Croston (classic): SES with α = 0.1 separately on the non-zero demand
//!   sizes and on the intervals between them; forecast = size / interval.
//! - TSB (Teunter, Syntetos & Babai 2011): SES on the demand sizes and on
//!   the 0/1 occurrence indicator; forecast = probability × size.
//! - ADIDA (Nikolopoulos et al. 2011): sum the series over blocks as long as
//!   the mean inter-demand interval, forecast the block sums with SES
//!   (α in [0.1, 0.3]), and spread the forecast evenly over the block.
//!
//! These choices (α = 0.1 for Croston, ADIDA's bounds, blocks counted from
//! the start of the history, the mean interval rounded half to even) follow
//! `statsforecast` 2.x so that point forecasts can be compared with it.
//! The models give a flat point forecast; their quantiles are Gaussian with
//! σ the RMS deviation of the history from that level (the spread of a
//! stationary intermittent series around its mean), clamped at zero when
//! the history is non-negative.

use super::baseline::flat;
use crate::forecast::{Fitted, ForecastError, Forecaster, rms};
use crate::optimize::brent;

/// SES one-step forecast after `x` and the in-sample sum of squared errors.
pub(crate) fn ses(x: &[f64], alpha: f64) -> (f64, f64) {
    let Some(&first) = x.first() else { return (0.0, 0.0) };
    let mut fitted = first;
    let mut sse = 0.0;
    for w in x.windows(2) {
        fitted = alpha * w[0] + (1.0 - alpha) * fitted;
        sse += (w[1] - fitted).powi(2);
    }
    let last = x[x.len() - 1];
    (alpha * last + (1.0 - alpha) * fitted, sse)
}

/// SES with α minimising the in-sample squared error within `[lo, hi]`
/// (Brent's bounded search, as statsforecast's `minimize_scalar`): the
/// level, α and the squared error at α.
pub(crate) fn ses_optimized(x: &[f64], lo: f64, hi: f64) -> (f64, f64, f64) {
    let alpha = brent(lo, hi, |a| ses(x, a).1);
    let (level, sse) = ses(x, alpha);
    (level, alpha, sse)
}

/// Simple exponential smoothing with an optimised α in [0.01, 0.99].
#[derive(Debug, Clone, Copy)]
pub struct Ses;

impl Forecaster for Ses {
    fn name(&self) -> String {
        "ses".into()
    }
    fn min_history(&self) -> usize {
        2
    }
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        // One-step residuals at the chosen α; σ_h = σ √(1 + (h−1)α²).
        let (level, alpha, sse) = ses_optimized(history, 0.01, 0.99);
        let sigma = (sse / (history.len() - 1) as f64).sqrt();
        Ok(Box::new(FittedSes { level, alpha, sigma }))
    }
}

struct FittedSes {
    level: f64,
    alpha: f64,
    sigma: f64,
}

impl Fitted for FittedSes {
    fn predict(&self, horizon: usize) -> crate::Forecast {
        let sigma: Vec<f64> =
            (0..horizon).map(|h| self.sigma * (1.0 + h as f64 * self.alpha * self.alpha).sqrt()).collect();
        crate::Forecast::gaussian(vec![self.level; horizon], &sigma)
    }
}

fn demand_and_intervals(y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut sizes = Vec::new();
    let mut intervals = Vec::new();
    let mut previous = 0usize;
    for (i, &v) in y.iter().enumerate() {
        if v != 0.0 {
            sizes.push(v);
            intervals.push((i + 1 - previous) as f64);
            previous = i + 1;
        }
    }
    (sizes, intervals)
}

fn spread(y: &[f64], level: f64) -> f64 {
    rms(y.iter().map(|v| v - level))
}

/// Croston's method, classic variant (α = 0.1 for sizes and intervals).
#[derive(Debug, Clone, Copy)]
pub struct Croston;

impl Forecaster for Croston {
    fn name(&self) -> String {
        "croston".into()
    }
    fn min_history(&self) -> usize {
        1
    }
    fn fit_checked(&self, y: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let (sizes, intervals) = demand_and_intervals(y);
        if sizes.is_empty() {
            // No demand at all: the last value (zero), as the naive model.
            return Ok(flat(y[y.len() - 1], 0.0));
        }
        let (size, _) = ses(&sizes, 0.1);
        let (interval, _) = ses(&intervals, 0.1);
        let level = if interval != 0.0 { size / interval } else { size };
        Ok(flat(level, spread(y, level)))
    }
}

/// Teunter–Syntetos–Babai: smoothed occurrence probability × smoothed size.
#[derive(Debug, Clone, Copy)]
pub struct Tsb {
    /// Smoothing of the demand sizes.
    pub alpha_size: f64,
    /// Smoothing of the occurrence indicator.
    pub alpha_probability: f64,
}

impl Forecaster for Tsb {
    fn name(&self) -> String {
        if self.alpha_size == 0.1 && self.alpha_probability == 0.1 {
            "tsb".into()
        } else {
            format!("tsb({},{})", self.alpha_size, self.alpha_probability)
        }
    }
    fn min_history(&self) -> usize {
        1
    }
    fn fit_checked(&self, y: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let (sizes, _) = demand_and_intervals(y);
        if sizes.is_empty() {
            return Ok(flat(0.0, 0.0));
        }
        let occurrence: Vec<f64> = y.iter().map(|&v| if v != 0.0 { 1.0 } else { 0.0 }).collect();
        let (probability, _) = ses(&occurrence, self.alpha_probability);
        let (size, _) = ses(&sizes, self.alpha_size);
        let level = probability * size;
        Ok(flat(level, spread(y, level)))
    }
}

/// Aggregate–disaggregate intermittent demand approach.
#[derive(Debug, Clone, Copy)]
pub struct Adida;

impl Forecaster for Adida {
    fn name(&self) -> String {
        "adida".into()
    }
    fn min_history(&self) -> usize {
        1
    }
    fn fit_checked(&self, y: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let (sizes, intervals) = demand_and_intervals(y);
        if sizes.is_empty() {
            return Ok(flat(0.0, 0.0));
        }
        let mean_interval = intervals.iter().sum::<f64>() / intervals.len() as f64;
        // At least 1 and at most the history (one block).
        let level = mean_interval.round_ties_even().clamp(1.0, y.len() as f64);
        let block = nimbus_sim::params::round_to_u64(level).and_then(|b| usize::try_from(b).ok()).unwrap_or(1).max(1);
        let sums: Vec<f64> = y.chunks_exact(block).map(|c| c.iter().sum()).collect();
        let (sum_forecast, _, _) = ses_optimized(&sums, 0.1, 0.3);
        let level = sum_forecast / block as f64;
        Ok(flat(level, spread(y, level)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ses_by_hand() {
        // α = 0.5 on [2, 4, 6]: fitted 2, 2·.5+2·.5 = 2 → 3 → forecast .5·6 + .5·3 = 4.5.
        let (f, sse) = ses(&[2.0, 4.0, 6.0], 0.5);
        assert_eq!(f, 4.5);
        // Errors: y1 − 2 = 2, y2 − 3 = 3.
        assert_eq!(sse, 13.0);
    }

    #[test]
    fn croston_by_hand() {
        // Demands 3 (after 2 steps) and 5 (after 3 more).
        let y = [0.0, 3.0, 0.0, 0.0, 5.0];
        // Sizes SES(0.1): fitted 3 → 0.1·5 + 0.9·3 = 3.2.
        // Intervals [2, 3]: 0.1·3 + 0.9·2 = 2.1.
        let f = Croston.forecast(&y, 2).expect("accepted");
        assert!((f.point[0] - 3.2 / 2.1).abs() < 1e-12);
        assert_eq!(Croston.forecast(&[0.0, 0.0], 1).expect("accepted").point, vec![0.0]);
    }

    #[test]
    fn tsb_and_adida_by_hand() {
        let y = [0.0, 2.0, 0.0, 2.0];
        // Occurrence [0,1,0,1] with α .1: 0 → 0 → .1 → .09 → .1·1 + .9·.09 = .181.
        let f = Tsb { alpha_size: 0.1, alpha_probability: 0.1 }.forecast(&y, 1).expect("accepted");
        assert!((f.point[0] - 0.181 * 2.0).abs() < 1e-12);
        // Intervals [2, 2] → blocks of 2: sums [2, 2] → SES 2 → 1 per step.
        let f = Adida.forecast(&y, 3).expect("accepted");
        assert!((f.point[0] - 1.0).abs() < 1e-12);
        assert_eq!(f.point.len(), 3);
    }
}
