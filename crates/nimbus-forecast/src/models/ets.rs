//! AutoETS and MSTL, from `augurs` (Grafana, MIT/Apache-2.0).
//!
//! - AutoETS: non-seasonal ETS (error, trend, damping chosen by AICc; FPP3
//!   §8.6), a port of the R `forecast` package's `ets` (seasonal ETS is not
//!   implemented in augurs; seasonal series go through MSTL).
//! - MSTL (Bandara, Hyndman & Bergmeir 2021): STL decompositions for each
//!   period in turn; the seasonal parts are repeated from the last period
//!   and the trend plus remainder is forecast with AutoETS.
//!
//! Quantiles come from the models' Gaussian prediction intervals at levels
//! 20/40/60/80%: the interval ends at level L are the (1 ∓ L)/2 quantiles.

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;

use crate::forecast::{Fitted, Forecast, ForecastError, Forecaster};

/// Non-seasonal AutoETS.
#[derive(Debug, Clone, Copy)]
pub struct Ets;

/// MSTL with an AutoETS trend.
#[derive(Debug, Clone)]
pub struct Mstl {
    /// Season lengths, shortest first.
    pub periods: Vec<usize>,
}

struct FittedAugurs<P: Predict> {
    model: P,
}

fn quantiles_from<P: Predict>(model: &P, horizon: usize) -> Forecast {
    let mut point = vec![f64::NAN; horizon];
    let mut quantiles: [Vec<f64>; 9] = std::array::from_fn(|_| vec![f64::NAN; horizon]);
    for (i, level) in [(0usize, 0.8), (1, 0.6), (2, 0.4), (3, 0.2)] {
        if let Ok(f) = model.predict(horizon, level) {
            point.clone_from(&f.point);
            if let Some(intervals) = f.intervals {
                quantiles[i].clone_from(&intervals.lower);
                quantiles[8 - i].clone_from(&intervals.upper);
            }
        }
    }
    quantiles[4].clone_from(&point);
    // Where a model gave no interval, fall back to the point.
    for q in &mut quantiles {
        for (v, p) in q.iter_mut().zip(&point) {
            if !v.is_finite() {
                *v = *p;
            }
        }
    }
    let mut forecast = Forecast { point, quantiles };
    forecast.sort_quantiles();
    forecast
}

impl<P: Predict> Fitted for FittedAugurs<P> {
    fn predict(&self, horizon: usize) -> Forecast {
        quantiles_from(&self.model, horizon)
    }
}

fn fit_error(model: &str, e: impl std::fmt::Display) -> ForecastError {
    ForecastError::Fit { model: model.to_string(), message: e.to_string() }
}

impl Forecaster for Ets {
    fn name(&self) -> String {
        "autoets".into()
    }
    fn min_history(&self) -> usize {
        4
    }
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let model = AutoETS::non_seasonal().fit(history).map_err(|e| fit_error("autoets", e))?;
        Ok(Box::new(FittedAugurs { model }))
    }
}

impl Forecaster for Mstl {
    fn name(&self) -> String {
        let periods: Vec<String> = self.periods.iter().map(ToString::to_string).collect();
        format!("mstl({})", periods.join(","))
    }
    fn min_history(&self) -> usize {
        // Each period must fit twice in the history.
        2 * self.periods.iter().copied().max().unwrap_or(1) + 1
    }
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let trend = AutoETS::non_seasonal().into_trend_model();
        let model = MSTLModel::new(self.periods.clone(), trend).fit(history).map_err(|e| fit_error(&self.name(), e))?;
        Ok(Box::new(FittedAugurs { model }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ets_follows_a_level() {
        let y: Vec<f64> = (0..60).map(|t| 50.0 + if t % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let f = Ets.forecast(&y, 4).expect("accepted");
        assert!(f.point.iter().all(|v| (v - 50.0).abs() < 1.5), "{:?}", f.point);
        assert!(f.quantiles[0][0] < f.point[0] && f.point[0] < f.quantiles[8][0]);
    }

    #[test]
    fn mstl_repeats_a_daily_shape() {
        let y: Vec<f64> =
            (0..24 * 14).map(|t| 100.0 + 20.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()).collect();
        let f = Mstl { periods: vec![24] }.forecast(&y, 24).expect("accepted");
        for (h, v) in f.point.iter().enumerate() {
            let truth = 100.0 + 20.0 * (h as f64 / 24.0 * std::f64::consts::TAU).sin();
            assert!((v - truth).abs() < 2.0, "step {h}: {v} vs {truth}");
        }
        assert!(Mstl { periods: vec![168] }.forecast(&y, 24).is_err());
    }
}
