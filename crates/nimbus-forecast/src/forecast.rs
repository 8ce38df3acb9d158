//! The forecaster trait and what a forecast is.

/// The quantile levels every forecast carries.
pub const QUANTILES: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Standard-normal quantiles at [`QUANTILES`].
const Z: [f64; 9] = [
    -1.281_551_565_544_600_4,
    -0.841_621_233_572_914_3,
    -0.524_400_512_708_040_7,
    -0.253_347_103_135_799_7,
    0.0,
    0.253_347_103_135_799_7,
    0.524_400_512_708_040_7,
    0.841_621_233_572_914_3,
    1.281_551_565_544_600_4,
];

/// The standard-normal quantile of a level in [`QUANTILES`] (for building
/// Gaussian intervals from another model's output).
pub fn z_of(level_index: usize) -> f64 {
    Z.get(level_index).copied().unwrap_or(f64::NAN)
}

/// A forecast over a horizon: point values and quantiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Point forecast per step.
    pub point: Vec<f64>,
    /// `quantiles[i][h]`: the [`QUANTILES`]`[i]` quantile at step `h`.
    pub quantiles: [Vec<f64>; 9],
}

impl Forecast {
    /// Gaussian quantiles around `point` with standard deviation `sigma[h]`.
    pub fn gaussian(point: Vec<f64>, sigma: &[f64]) -> Forecast {
        let quantiles = std::array::from_fn(|i| point.iter().zip(sigma).map(|(p, s)| p + Z[i] * s).collect());
        Forecast { point, quantiles }
    }

    /// The quantile at `q`, interpolated linearly between the stored levels
    /// (and held flat outside 0.1…0.9).
    pub fn quantile(&self, q: f64, step: usize) -> f64 {
        let at = |i: usize| self.quantiles[i].get(step).copied().unwrap_or(f64::NAN);
        if q <= QUANTILES[0] {
            return at(0);
        }
        if q >= QUANTILES[8] {
            return at(8);
        }
        let position = (q - 0.1) / 0.1;
        let below = position.floor();
        let i = (below as usize).min(7);
        let w = position - below;
        at(i) * (1.0 - w) + at(i + 1) * w
    }

    /// Clamps point and quantiles at zero (for series that cannot be
    /// negative) and sorts each step's quantiles so they never cross.
    pub fn clamp_non_negative(&mut self) {
        for v in self.point.iter_mut().chain(self.quantiles.iter_mut().flatten()) {
            *v = v.max(0.0);
        }
        self.sort_quantiles();
    }

    /// Makes each step's quantiles non-decreasing in the level.
    pub fn sort_quantiles(&mut self) {
        for h in 0..self.point.len() {
            let mut column: Vec<f64> = self.quantiles.iter().map(|q| q[h]).collect();
            column.sort_by(f64::total_cmp);
            for (q, v) in self.quantiles.iter_mut().zip(column) {
                q[h] = v;
            }
        }
    }

    /// Steps in the forecast.
    pub fn len(&self) -> usize {
        self.point.len()
    }

    /// Whether the forecast has no steps.
    pub fn is_empty(&self) -> bool {
        self.point.is_empty()
    }
}

/// Why a model could not forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// The history is shorter than the model needs.
    #[error("{model} needs at least {needed} observations, got {got}")]
    TooShort {
        /// The model.
        model: String,
        /// What it needs.
        needed: usize,
        /// What it got.
        got: usize,
    },
    /// A history value is NaN or infinite.
    #[error("observation {index} is {value}; forecasters need finite values (fill or drop gaps first)")]
    NotFinite {
        /// Position in the history.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The horizon is zero or too long.
    #[error("horizon {0} is not allowed (1 to {max})", max = crate::forecast::MAX_HORIZON)]
    Horizon(usize),
    /// The model name is unknown.
    #[error("unknown model `{name}`; available: {available}")]
    UnknownModel {
        /// What was asked for.
        name: String,
        /// What exists.
        available: String,
    },
    /// The model's own fitting failed.
    #[error("{model}: {message}")]
    Fit {
        /// The model.
        model: String,
        /// What went wrong.
        message: String,
    },
}

/// The longest horizon any forecaster is asked for (a year of hours).
pub const MAX_HORIZON: usize = 8_784;

/// A model that can be fitted to a history.
pub trait Forecaster: Send + Sync {
    /// The model's spec name (e.g. `snaive24`).
    fn name(&self) -> String;

    /// The fewest observations it can fit.
    fn min_history(&self) -> usize;

    /// Fits the model to `history`; the caller has checked the history
    /// with [`check_history`].
    fn fit_checked(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError>;

    /// Fits the model to `history` (finite values, at least
    /// [`Forecaster::min_history`] of them).
    fn fit(&self, history: &[f64]) -> Result<Box<dyn Fitted>, ForecastError> {
        check_history(history, self.min_history(), &self.name())?;
        self.fit_checked(history)
    }

    /// Fits and predicts in one call.
    fn forecast(&self, history: &[f64], horizon: usize) -> Result<Forecast, ForecastError> {
        check_horizon(horizon)?;
        let fitted = self.fit(history)?;
        Ok(fitted.predict(horizon))
    }

    /// For a global model (one set of parameters learned across many
    /// series): trains on `windows` (each checked with [`check_history`])
    /// and returns what forecasts any of them. `None` for local models,
    /// which [`Forecaster::fit`] one series at a time.
    fn train_global(&self, _windows: &[Window<'_>]) -> Option<Result<Box<dyn GlobalFitted>, ForecastError>> {
        None
    }

    /// Whether [`Forecaster::train_global`] trains (the harness then trains
    /// once per origin across all series).
    fn is_global(&self) -> bool {
        false
    }
}

/// When a series' values fall: the time of the first, and the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Seconds since 1970-01-01 UTC of the first value (0 when unknown:
    /// calendar terms then count from the first value).
    pub start_unix_s: i64,
    /// Seconds between values.
    pub step_s: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { start_unix_s: 0, step_s: 3600 }
    }
}

impl Clock {
    /// The clock of the values from position `offset` on.
    pub fn shifted(self, offset: usize) -> Clock {
        let step = i64::try_from(self.step_s).unwrap_or(i64::MAX);
        let by = i64::try_from(offset).unwrap_or(i64::MAX).saturating_mul(step);
        Clock { start_unix_s: self.start_unix_s.saturating_add(by), ..self }
    }

    /// Seconds since 1970 of position `index`.
    pub fn time_of(self, index: usize) -> i64 {
        self.shifted(index).start_unix_s
    }
}

/// A history with its clock, for global models.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// The values (finite).
    pub values: &'a [f64],
    /// When they fall.
    pub clock: Clock,
}

/// A trained global model.
pub trait GlobalFitted: Send + Sync {
    /// Forecasts `horizon` steps after `window` (1 ≤ horizon ≤
    /// [`MAX_HORIZON`]).
    fn predict(&self, window: Window<'_>, horizon: usize) -> Result<Forecast, ForecastError>;
}

/// A fitted model.
pub trait Fitted {
    /// Forecasts `horizon` steps after the history (1 ≤ horizon ≤
    /// [`MAX_HORIZON`], checked by the caller).
    fn predict(&self, horizon: usize) -> Forecast;
}

/// Checks a history is long enough and finite.
pub fn check_history(history: &[f64], needed: usize, model: &str) -> Result<(), ForecastError> {
    if let Some((index, &value)) = history.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ForecastError::NotFinite { index, value });
    }
    if history.len() < needed.max(1) {
        return Err(ForecastError::TooShort { model: model.to_string(), needed: needed.max(1), got: history.len() });
    }
    Ok(())
}

/// Checks a horizon is within 1..=[`MAX_HORIZON`].
pub fn check_horizon(horizon: usize) -> Result<(), ForecastError> {
    if horizon == 0 || horizon > MAX_HORIZON {
        return Err(ForecastError::Horizon(horizon));
    }
    Ok(())
}

/// Root mean square of the defined values (NaN when none).
pub(crate) fn rms(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        if v.is_finite() {
            sum += v * v;
            n += 1;
        }
    }
    if n == 0 { f64::NAN } else { (sum / n as f64).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_quantiles_and_interpolation() {
        let f = Forecast::gaussian(vec![10.0, 10.0], &[1.0, 2.0]);
        assert_eq!(f.quantile(0.5, 0), 10.0);
        assert!((f.quantile(0.9, 1) - (10.0 + 2.0 * 1.281_551_565_544_600_4)).abs() < 1e-12);
        let mid = f.quantile(0.85, 0);
        let expected = 10.0 + 0.5 * (0.841_621_233_572_914_3 + 1.281_551_565_544_600_4);
        assert!((mid - expected).abs() < 1e-12);
        assert_eq!(f.quantile(0.99, 0), f.quantile(0.9, 0));
    }

    #[test]
    fn clamping_keeps_quantiles_ordered() {
        let mut f = Forecast::gaussian(vec![0.5], &[1.0]);
        f.clamp_non_negative();
        assert_eq!(f.quantiles[0][0], 0.0);
        assert!(f.quantiles.windows(2).all(|w| w[0][0] <= w[1][0]));
    }

    #[test]
    fn history_checks() {
        assert!(matches!(check_history(&[1.0, f64::NAN], 1, "m"), Err(ForecastError::NotFinite { index: 1, .. })));
        assert!(matches!(check_history(&[1.0], 2, "m"), Err(ForecastError::TooShort { needed: 2, got: 1, .. })));
        assert!(check_horizon(0).is_err() && check_horizon(MAX_HORIZON + 1).is_err() && check_horizon(24).is_ok());
    }
}
