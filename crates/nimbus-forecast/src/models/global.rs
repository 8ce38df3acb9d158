//! A learned global model: one ridge regression over lag and calendar
//! features, trained across many series at once.
//!
//! Global models (one set of parameters for a whole collection of series)
//! are what the Forecast-study and later forecasting practice found to
//! scale: a series too short or too noisy to fit alone borrows the shape
//! of the others. This is the linear member of that family; the neural
//! ones (DeepAR, N-BEATS) are not built.
//!
//! Each window is standardised by its own mean and standard deviation, so
//! series of any scale pool. Features at step t: an intercept; the
//! standardised values at lags 1, 2, 3 and one and two seasonal periods
//! back (24 and 168 for hourly series; a lag is used when every window is
//! at least four times as long); and calendar terms, sin/cos of the first
//! two harmonics of the time of day and of the time of week, from each
//! series' own clock (UTC; from the first value when the clock is unknown).
//! Coefficients minimise squared one-step error plus λ‖β‖² with λ = 10⁻³
//! per training row (the intercept unpenalised), solved by Cholesky.
//! Forecasts are recursive; each predicted value is held within the
//! window's range widened by that range on both sides, so an unstable
//! recursion cannot run away. Quantiles are Gaussian, σ the one-step
//! residual RMS of the shared coefficients on the series' own window (so a
//! calm series gets narrow intervals and a noisy one wide ones) growing as
//! √h.
//!
//! A window with no variation does not train; it is forecast as its
//! constant value.

use super::linear::cholesky_solve;
use crate::forecast::{
    Clock, Fitted, Forecast, ForecastError, Forecaster, GlobalFitted, Window, check_history, check_horizon, rms,
};

/// The global ridge model (`global-linear`).
#[derive(Debug, Clone)]
pub struct GlobalLinear {
    /// Seasonal lag periods in steps (24 and 168 for hourly series).
    pub periods: Vec<usize>,
}

const DAY_S: i64 = 86_400;
const WEEK_S: i64 = 7 * DAY_S;
/// 1970-01-01 was a Thursday: this shift puts Monday 00:00 at phase 0.
const MONDAY_SHIFT_S: i64 = 3 * DAY_S;

struct Design {
    lags: Vec<usize>,
}

impl Design {
    fn width(&self) -> usize {
        1 + self.lags.len() + 8
    }

    /// Features for position `t` of `z` (standardised values, at least `t`
    /// of them) at time `time` (seconds since 1970).
    fn row(&self, z: &[f64], t: usize, time: i64, out: &mut Vec<f64>) {
        out.clear();
        out.push(1.0);
        for &lag in &self.lags {
            out.push(z[t - lag]);
        }
        #[allow(clippy::cast_precision_loss)] // phases of a day or week
        for (period, shift) in [(DAY_S, 0), (WEEK_S, MONDAY_SHIFT_S)] {
            let phase = (time + shift).rem_euclid(period) as f64 / period as f64;
            for k in 1..=2 {
                let angle = std::f64::consts::TAU * f64::from(k) * phase;
                out.push(angle.sin());
                out.push(angle.cos());
            }
        }
    }
}

/// Mean and standard deviation; `None` when the values do not vary.
fn standardisation(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    (sd.is_finite() && sd > 1e-12 * (mean.abs() + 1.0)).then_some((mean, sd))
}

/// The trained model.
struct Trained {
    design: Design,
    beta: Vec<f64>,
}

impl Trained {
    fn predict(&self, window: Window<'_>, horizon: usize) -> Forecast {
        let values = window.values;
        let Some((mean, sd)) = standardisation(values) else {
            let level = values.last().copied().unwrap_or(0.0);
            return Forecast::gaussian(vec![level; horizon], &vec![0.0; horizon]);
        };
        let mut z: Vec<f64> = values.iter().map(|v| (v - mean) / sd).collect();
        let lo = z.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (floor, ceiling) = (lo - (hi - lo), hi + (hi - lo));
        let mut row = Vec::with_capacity(self.design.width());
        let start = self.design.lags.iter().copied().max().unwrap_or(0);
        let residuals = (start..z.len()).map(|t| {
            self.design.row(&z, t, window.clock.time_of(t), &mut row);
            z[t] - row.iter().zip(&self.beta).map(|(x, b)| x * b).sum::<f64>()
        });
        let sigma_z = rms(residuals);
        let sigma_z = if sigma_z.is_finite() { sigma_z } else { 0.0 };
        let mut point = Vec::with_capacity(horizon);
        for _ in 0..horizon {
            let t = z.len();
            self.design.row(&z, t, window.clock.time_of(t), &mut row);
            let next = row.iter().zip(&self.beta).map(|(x, b)| x * b).sum::<f64>().clamp(floor, ceiling);
            z.push(next);
            point.push(mean + sd * next);
        }
        #[allow(clippy::cast_precision_loss)] // horizons are small
        let sigma: Vec<f64> = (0..horizon).map(|h| sigma_z * sd * ((h + 1) as f64).sqrt()).collect();
        Forecast::gaussian(point, &sigma)
    }
}

impl GlobalFitted for Trained {
    fn predict(&self, window: Window<'_>, horizon: usize) -> Result<Forecast, ForecastError> {
        check_horizon(horizon)?;
        check_history(window.values, 1, "global-linear")?;
        Ok(Trained::predict(self, window, horizon))
    }
}

impl GlobalLinear {
    fn train(&self, windows: &[Window<'_>]) -> Result<Trained, ForecastError> {
        let shortest = windows.iter().map(|w| w.values.len()).min().unwrap_or(0);
        let mut lags: Vec<usize> = vec![1, 2, 3];
        for &p in &self.periods {
            lags.extend([p, 2 * p]);
        }
        lags.retain(|&lag| lag >= 1 && 4 * lag <= shortest);
        lags.sort_unstable();
        lags.dedup();
        let design = Design { lags };
        let width = design.width();
        let start = design.lags.iter().copied().max().unwrap_or(0);
        let mut xtx = vec![0.0; width * width];
        let mut xty = vec![0.0; width];
        let mut row = Vec::with_capacity(width);
        let mut rows = 0usize;
        let standardised: Vec<Option<Vec<f64>>> = windows
            .iter()
            .map(|w| standardisation(w.values).map(|(m, s)| w.values.iter().map(|v| (v - m) / s).collect()))
            .collect();
        for (w, z) in windows.iter().zip(&standardised) {
            let Some(z) = z else { continue };
            for t in start..z.len() {
                design.row(z, t, w.clock.time_of(t), &mut row);
                for i in 0..width {
                    xty[i] += row[i] * z[t];
                    for j in 0..=i {
                        xtx[i * width + j] += row[i] * row[j];
                    }
                }
                rows += 1;
            }
        }
        if rows < 2 * width {
            return Err(ForecastError::Fit {
                model: self.name(),
                message: format!("{rows} training rows from windows that vary; at least {} needed", 2 * width),
            });
        }
        for i in 0..width {
            for j in 0..i {
                xtx[j * width + i] = xtx[i * width + j];
            }
        }
        #[allow(clippy::cast_precision_loss)] // row counts are far below 2^53
        let lambda = 1e-3 * rows as f64;
        for i in 1..width {
            xtx[i * width + i] += lambda;
        }
        let beta = cholesky_solve(&xtx, &xty, width)
            .ok_or_else(|| ForecastError::Fit { model: self.name(), message: "the regression is degenerate".into() })?;
        Ok(Trained { design, beta })
    }
}

/// A global model fitted to one series alone (outside the harness).
struct Alone {
    trained: Trained,
    history: Vec<f64>,
}

impl Fitted for Alone {
    fn predict(&self, horizon: usize) -> Forecast {
        self.trained.predict(Window { values: &self.history, clock: Clock::default() }, horizon)
    }
}

impl Forecaster for GlobalLinear {
    fn name(&self) -> String {
        super::with_periods("global-linear", &self.periods)
    }

    fn min_history(&self) -> usize {
        24
    }

    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        let trained = self.train(&[Window { values: history, clock: Clock::default() }])?;
        Ok(Box::new(Alone { trained, history: history.to_vec() }))
    }

    fn train_global(&self, windows: &[Window<'_>]) -> Option<Result<Box<dyn GlobalFitted>, ForecastError>> {
        let checked = windows.iter().try_for_each(|w| check_history(w.values, self.min_history(), &self.name()));
        Some(checked.and_then(|()| self.train(windows)).map(|t| Box::new(t) as Box<dyn GlobalFitted>))
    }

    fn is_global(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(len: usize, level: f64, amplitude: f64, start_unix_s: i64) -> Vec<f64> {
        (0..len)
            .map(|t| {
                let hour = (start_unix_s / 3600 + t as i64).rem_euclid(24) as f64;
                level + amplitude * (hour / 24.0 * std::f64::consts::TAU).cos()
            })
            .collect()
    }

    #[test]
    fn one_model_serves_series_of_any_scale_and_phase() {
        // Three series with the same daily shape in UTC, different levels,
        // amplitudes and start hours: one model forecasts all of them.
        let starts = [0i64, 5 * 3600, 13 * 3600];
        let series: Vec<Vec<f64>> = starts
            .iter()
            .zip([(10.0, 2.0), (1000.0, 300.0), (5.0, 0.5)])
            .map(|(&s, (l, a))| daily(24 * 30, l, a, s))
            .collect();
        let windows: Vec<Window<'_>> = series
            .iter()
            .zip(starts)
            .map(|(v, s)| Window { values: v, clock: Clock { start_unix_s: s, step_s: 3600 } })
            .collect();
        let model = GlobalLinear { periods: vec![24, 168] };
        let trained = model.train_global(&windows).expect("global").expect("trains");
        for ((w, &s), (level, amplitude)) in windows.iter().zip(&starts).zip([(10.0, 2.0), (1000.0, 300.0), (5.0, 0.5)])
        {
            let f = trained.predict(*w, 24).expect("predicts");
            let truth = daily(24 * 31, level, amplitude, s);
            for (h, v) in f.point.iter().enumerate() {
                assert!((v - truth[24 * 30 + h]).abs() < 0.02 * amplitude, "step {h}: {v} vs {}", truth[24 * 30 + h]);
            }
        }
    }

    #[test]
    fn constant_windows_are_forecast_flat_and_cannot_train_alone() {
        let flat = vec![3.0; 100];
        let model = GlobalLinear { periods: vec![24] };
        assert!(model.fit(&flat).is_err());
        let wavy = daily(100, 5.0, 1.0, 0);
        let windows =
            [Window { values: &flat, clock: Clock::default() }, Window { values: &wavy, clock: Clock::default() }];
        let trained = model.train_global(&windows).expect("global").expect("trains");
        assert_eq!(trained.predict(windows[0], 5).expect("predicts").point, vec![3.0; 5]);
    }

    #[test]
    fn a_spike_cannot_make_the_recursion_run_away() {
        let mut v = daily(24 * 10, 1.0, 0.1, 0);
        v[24 * 10 - 1] = 1e6;
        let f = GlobalLinear { periods: vec![24] }.forecast(&v, 200).expect("forecasts");
        let (lo, hi) = (0.9, 1e6);
        assert!(f.point.iter().all(|p| *p >= lo - (hi - lo) && *p <= hi + (hi - lo)));
    }
}
