//! Naive, seasonal naive and window average: the baselines every study
//! starts from.
//!
//! Intervals are Gaussian with σ from the in-sample one-step residuals
//! (FPP3 §5.5): Naive σ√h, SeasonalNaive σ√(⌊(h−1)/m⌋+1), WindowAverage σ
//! at every step (the mean model's σ√(1+1/k)).

use crate::forecast::{Fitted, Forecast, ForecastError, Forecaster, rms};

/// The last value, repeated.
#[derive(Debug, Clone, Copy)]
pub struct Naive;

/// The value one season earlier, repeated season by season.
#[derive(Debug, Clone, Copy)]
pub struct SeasonalNaive {
    /// Season length in steps.
    pub period: usize,
}

/// The mean of the last `window` values.
#[derive(Debug, Clone, Copy)]
pub struct WindowAverage {
    /// Values averaged.
    pub window: usize,
}

struct FittedSeasonal {
    last_season: Vec<f64>,
    sigma: f64,
}

impl Fitted for FittedSeasonal {
    fn predict(&self, horizon: usize) -> Forecast {
        let m = self.last_season.len();
        let point = (0..horizon).map(|h| self.last_season[h % m]).collect();
        let sigma: Vec<f64> = (0..horizon).map(|h| self.sigma * (((h / m) + 1) as f64).sqrt()).collect();
        Forecast::gaussian(point, &sigma)
    }
}

fn seasonal_fit(history: &[f64], m: usize) -> Box<dyn Fitted> {
    let sigma = rms(history.windows(m + 1).map(|w| w[m] - w[0]));
    let sigma = if sigma.is_nan() { 0.0 } else { sigma };
    Box::new(FittedSeasonal { last_season: history[history.len() - m..].to_vec(), sigma })
}

impl Forecaster for Naive {
    fn name(&self) -> String {
        "naive".into()
    }
    fn min_history(&self) -> usize {
        1
    }
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        Ok(seasonal_fit(history, 1))
    }
}

impl Forecaster for SeasonalNaive {
    fn name(&self) -> String {
        format!("snaive{}", self.period)
    }
    fn min_history(&self) -> usize {
        self.period
    }
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        Ok(seasonal_fit(history, self.period.max(1)))
    }
}

struct FittedFlat {
    level: f64,
    sigma: f64,
}

impl Fitted for FittedFlat {
    fn predict(&self, horizon: usize) -> Forecast {
        Forecast::gaussian(vec![self.level; horizon], &vec![self.sigma; horizon])
    }
}

/// A flat forecast at `level` with a constant σ (intermittent-demand
/// models and the window average).
pub(crate) fn flat(level: f64, sigma: f64) -> Box<dyn Fitted> {
    Box::new(FittedFlat { level, sigma: if sigma.is_finite() { sigma } else { 0.0 } })
}

impl Forecaster for WindowAverage {
    fn name(&self) -> String {
        format!("ma{}", self.window)
    }
    fn min_history(&self) -> usize {
        self.window
    }
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let k = self.window.max(1);
        let level = history[history.len() - k..].iter().sum::<f64>() / k as f64;
        // One-step residuals of the rolling mean, with a running window sum
        // (one pass, not one sum per window).
        let mut sum: f64 = history[..k.min(history.len())].iter().sum();
        let residuals = (k..history.len()).map(|t| {
            let residual = history[t] - sum / k as f64;
            sum += history[t] - history[t - k];
            residual
        });
        let sigma = rms(residuals);
        Ok(flat(level, sigma))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let f = Naive.forecast(&y, 3).expect("accepted");
        assert_eq!(f.point, vec![6.0; 3]);
        // Differences all 1: σ = 1, σ_3 = √3.
        assert!((f.quantiles[8][2] - (6.0 + 1.281_551_565_544_600_4 * 3f64.sqrt())).abs() < 1e-12);
        let f = SeasonalNaive { period: 2 }.forecast(&y, 5).expect("accepted");
        assert_eq!(f.point, vec![5.0, 6.0, 5.0, 6.0, 5.0]);
        let f = WindowAverage { window: 3 }.forecast(&y, 2).expect("accepted");
        assert_eq!(f.point, vec![5.0, 5.0]);
        assert!(WindowAverage { window: 7 }.forecast(&y, 1).is_err());
    }
}
