//! Rolling-origin evaluation: every model on every series at the same
//! origins, scored with [`crate::metrics`].
//!
//! Origins are `stride` steps apart and the last one leaves exactly
//! `horizon` steps of the series after it; each model sees only the
//! `window` values before an origin (a sliding window, as a capacity
//! planner that keeps four weeks of telemetry would). Forecasts of a series
//! whose values are all non-negative are clamped at zero. A model that
//! fails at an origin is recorded with its error, never dropped.

use crate::forecast::{Clock, Forecast, ForecastError, Forecaster, GlobalFitted, MAX_HORIZON, Window, check_horizon};
use crate::metrics::{self, Scores};

/// Harness settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Forecast origins per series.
    pub origins: usize,
    /// Steps forecast at each origin.
    pub horizon: usize,
    /// History length given to the model at each origin.
    pub window: usize,
    /// Steps between consecutive origins.
    pub stride: usize,
    /// Season used to scale MASE (24 for hourly series).
    pub season: usize,
    /// Quantile at which capacity is provisioned.
    pub capacity_quantile: f64,
}

impl Default for Settings {
    /// 30 origins a day apart, a 24-step horizon, a 28-day window of hours.
    fn default() -> Self {
        Settings { origins: 30, horizon: 24, window: 672, stride: 24, season: 24, capacity_quantile: 0.9 }
    }
}

/// Why an evaluation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvaluateError {
    /// A setting is out of range.
    #[error("{0}")]
    Setting(String),
    /// A series is too short for the settings.
    #[error(
        "series `{series}` has {len} values; {origins} origins {stride} apart with a {window}-value window and a \
         {horizon}-step horizon need {needed} (use fewer origins or a shorter window)"
    )]
    TooShort {
        /// The series.
        series: String,
        /// Its length.
        len: usize,
        /// Values needed.
        needed: usize,
        /// Settings that set the need.
        origins: usize,
        /// ″
        stride: usize,
        /// ″
        window: usize,
        /// ″
        horizon: usize,
    },
    /// A value the evaluation uses is missing or not finite.
    #[error("series `{series}` has no usable value at position {position} ({value}); fill gaps first")]
    Missing {
        /// The series.
        series: String,
        /// 0-based position.
        position: usize,
        /// The value found.
        value: f64,
    },
}

/// A series to evaluate on.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Name shown in reports.
    pub name: String,
    /// The values.
    pub values: Vec<f64>,
    /// When they fall (calendar terms of global models).
    pub clock: Clock,
}

/// One model at one origin of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Index into [`Evaluation::series`].
    pub series: usize,
    /// Index into [`Evaluation::models`].
    pub model: usize,
    /// Origin number (0 = earliest).
    pub origin: usize,
    /// Position of the origin in the series (the first forecast step).
    pub position: usize,
    /// Scores, or why the model failed.
    pub outcome: Result<Scores, ForecastError>,
}

/// Wall time spent fitting and predicting one model on one series, summed
/// over origins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Seconds fitting.
    pub fit_s: f64,
    /// Seconds predicting.
    pub predict_s: f64,
}

/// Everything an evaluation produced.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Settings used.
    pub settings: Settings,
    /// Series names.
    pub series: Vec<String>,
    /// Model names.
    pub models: Vec<String>,
    /// Series-major, then model, then origin.
    pub cells: Vec<Cell>,
    /// `costs[series * models + model]`.
    pub costs: Vec<Cost>,
    /// The forecast at the last origin, `last[series * models + model]`
    /// (`None` if the model failed there).
    pub last: Vec<Option<Forecast>>,
}

impl Settings {
    /// Checks every setting is in range.
    pub fn check(&self) -> Result<(), EvaluateError> {
        let bad = |m: String| Err(EvaluateError::Setting(m));
        if !(1..=10_000).contains(&self.origins) {
            return bad(format!("origins must be 1 to 10000, not {}", self.origins));
        }
        if check_horizon(self.horizon).is_err() {
            return bad(format!("horizon must be 1 to {MAX_HORIZON} steps, not {}", self.horizon));
        }
        if !(1..=10_000_000).contains(&self.window) {
            return bad(format!("window must be 1 to 10000000 values, not {}", self.window));
        }
        if !(1..=1_000_000).contains(&self.stride) {
            return bad(format!("stride must be 1 to 1000000 steps, not {}", self.stride));
        }
        if !(1..=100_000).contains(&self.season) {
            return bad(format!("season must be 1 to 100000 steps, not {}", self.season));
        }
        if !(self.capacity_quantile > 0.0 && self.capacity_quantile < 1.0) {
            return bad(format!("capacity quantile must be between 0 and 1, not {}", self.capacity_quantile));
        }
        Ok(())
    }

    /// Values a series needs: the window before the first origin and every
    /// origin's horizon.
    pub fn needed(&self) -> usize {
        self.window.saturating_add((self.origins - 1).saturating_mul(self.stride)).saturating_add(self.horizon)
    }

    /// Positions of the origins in a series of `len` values.
    pub fn positions(&self, len: usize) -> Vec<usize> {
        let last = len - self.horizon;
        (0..self.origins).map(|k| last - (self.origins - 1 - k) * self.stride).collect()
    }
}

/// Checks the inputs against the settings without running anything.
pub fn check(inputs: &[Input], settings: &Settings) -> Result<(), EvaluateError> {
    settings.check()?;
    let needed = settings.needed();
    for input in inputs {
        if input.values.len() < needed {
            return Err(EvaluateError::TooShort {
                series: input.name.clone(),
                len: input.values.len(),
                needed,
                origins: settings.origins,
                stride: settings.stride,
                window: settings.window,
                horizon: settings.horizon,
            });
        }
        let first = input.values.len() - needed;
        if let Some((offset, &value)) = input.values[first..].iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(EvaluateError::Missing { series: input.name.clone(), position: first + offset, value });
        }
    }
    Ok(())
}

/// A global model trained at each origin: the model (or why training
/// failed) and the seconds it took.
type Trained = Vec<(Result<Box<dyn GlobalFitted>, ForecastError>, f64)>;

/// Trains a global model once per origin on every series' window there.
fn train_per_origin(inputs: &[Input], model: &dyn Forecaster, settings: &Settings) -> Trained {
    use rayon::prelude::*;
    let positions: Vec<Vec<usize>> = inputs.iter().map(|i| settings.positions(i.values.len())).collect();
    (0..settings.origins)
        .into_par_iter()
        .map(|k| {
            let windows: Vec<Window<'_>> = inputs
                .iter()
                .zip(&positions)
                .map(|(input, p)| {
                    let start = p[k] - settings.window;
                    Window { values: &input.values[start..p[k]], clock: input.clock.shifted(start) }
                })
                .collect();
            #[allow(clippy::disallowed_methods)] // training cost is reported beside the scores
            let started = std::time::Instant::now();
            let trained = model.train_global(&windows).unwrap_or_else(|| {
                Err(ForecastError::Fit { model: model.name(), message: "is not a global model".into() })
            });
            (trained, started.elapsed().as_secs_f64())
        })
        .collect()
}

/// One (series, model) pair's cells, cost and last forecast; `global` is
/// the model trained per origin when it is a global one (its training time
/// is shared equally among the series).
fn run_pair(
    series: usize,
    model_index: usize,
    input: &Input,
    model: &dyn Forecaster,
    settings: &Settings,
    global: Option<(&Trained, usize)>,
) -> (Vec<Cell>, Cost, Option<Forecast>) {
    let values = &input.values;
    // Over the part evaluated (a gap before it is NaN, and says nothing).
    let non_negative = values[values.len() - settings.needed()..].iter().all(|v| *v >= 0.0);
    let mut cells = Vec::with_capacity(settings.origins);
    let mut cost = Cost { fit_s: 0.0, predict_s: 0.0 };
    let mut last = None;
    for (origin, position) in settings.positions(values.len()).into_iter().enumerate() {
        let start = position - settings.window;
        let history = &values[start..position];
        let actual = &values[position..position + settings.horizon];
        #[allow(clippy::disallowed_methods)] // fit and predict cost are reported beside the scores
        let started = std::time::Instant::now();
        let predicted = match global {
            None => model.fit(history).map(|fitted| {
                let fit_s = started.elapsed().as_secs_f64();
                cost.fit_s += fit_s;
                (fitted.predict(settings.horizon), started.elapsed().as_secs_f64() - fit_s)
            }),
            Some((trained, series_count)) => {
                #[allow(clippy::cast_precision_loss)] // series counts are small
                let share = trained[origin].1 / series_count.max(1) as f64;
                cost.fit_s += share;
                match &trained[origin].0 {
                    Ok(t) => t
                        .predict(Window { values: history, clock: input.clock.shifted(start) }, settings.horizon)
                        .map(|f| (f, started.elapsed().as_secs_f64())),
                    Err(e) => Err(e.clone()),
                }
            }
        };
        let outcome = predicted.map(|(mut forecast, predict_s)| {
            cost.predict_s += predict_s;
            if non_negative {
                forecast.clamp_non_negative();
            }
            forecast
        });
        let outcome = outcome.and_then(|forecast| {
            if let Some(bad) = forecast.point.iter().find(|v| !v.is_finite()) {
                return Err(ForecastError::Fit { model: model.name(), message: format!("forecast value {bad}") });
            }
            let scores = metrics::score(actual, &forecast, history, settings.season, settings.capacity_quantile);
            if origin + 1 == settings.origins {
                last = Some(forecast);
            }
            Ok(scores)
        });
        cells.push(Cell { series, model: model_index, origin, position, outcome });
    }
    (cells, cost, last)
}

/// Evaluates every model on every series (pairs run in parallel; results
/// are in a fixed order and, but for the costs, identical run to run).
/// A global model is trained once per origin on every series' window
/// there, then forecasts each series from its own window.
pub fn evaluate(
    inputs: &[Input],
    models: &[Box<dyn Forecaster>],
    settings: &Settings,
) -> Result<Evaluation, EvaluateError> {
    use rayon::prelude::*;
    check(inputs, settings)?;
    let trained: Vec<Option<Trained>> =
        models.iter().map(|m| m.is_global().then(|| train_per_origin(inputs, m.as_ref(), settings))).collect();
    let pairs: Vec<(usize, usize)> = (0..inputs.len()).flat_map(|s| (0..models.len()).map(move |m| (s, m))).collect();
    let results: Vec<(Vec<Cell>, Cost, Option<Forecast>)> = pairs
        .par_iter()
        .map(|&(s, m)| {
            let global = trained[m].as_ref().map(|t| (t, inputs.len()));
            run_pair(s, m, &inputs[s], models[m].as_ref(), settings, global)
        })
        .collect();
    let mut evaluation = Evaluation {
        settings: *settings,
        series: inputs.iter().map(|i| i.name.clone()).collect(),
        models: models.iter().map(|m| m.name()).collect(),
        cells: Vec::with_capacity(pairs.len() * settings.origins),
        costs: Vec::with_capacity(pairs.len()),
        last: Vec::with_capacity(pairs.len()),
    };
    for (cells, cost, last) in results {
        evaluation.cells.extend(cells);
        evaluation.costs.push(cost);
        evaluation.last.push(last);
    }
    Ok(evaluation)
}

/// Mean ± 95% CI of one metric for one model, over the given series'
/// origins (failed cells and undefined values are left out and counted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    /// The summary over defined values.
    pub summary: nimbus_sim::summary::Summary,
    /// Cells where the model failed.
    pub failed: usize,
}

impl Evaluation {
    /// The cells of one model on one series.
    pub fn cells_of(&self, series: usize, model: usize) -> &[Cell] {
        let per_pair = self.settings.origins;
        let start = (series * self.models.len() + model) * per_pair;
        &self.cells[start..start + per_pair]
    }

    /// Metric `metric` (index into [`metrics::NAMES`]) of `model`, over the
    /// origins of the series in `series`.
    pub fn aggregate(&self, model: usize, series: &[usize], metric: usize) -> Aggregate {
        let mut values = Vec::new();
        let mut failed = 0;
        for &s in series {
            for cell in self.cells_of(s, model) {
                match &cell.outcome {
                    Ok(scores) => values.push(scores.values()[metric]),
                    Err(_) => failed += 1,
                }
            }
        }
        Aggregate { summary: nimbus_sim::summary::Summary::of(&values), failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models;

    fn seasonal(n: usize) -> Vec<f64> {
        (0..n).map(|t| 100.0 + 30.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin() + (t % 7) as f64).collect()
    }

    #[test]
    fn origins_are_placed_from_the_end() {
        let s = Settings { origins: 3, horizon: 2, window: 4, stride: 5, season: 1, capacity_quantile: 0.9 };
        assert_eq!(s.needed(), 4 + 10 + 2);
        assert_eq!(s.positions(16), vec![4, 9, 14]);
        assert_eq!(s.positions(20), vec![8, 13, 18]);
    }

    #[test]
    fn short_and_gappy_series_are_refused_with_reasons() {
        let s = Settings { origins: 2, horizon: 3, window: 10, stride: 3, season: 1, capacity_quantile: 0.9 };
        let short = Input { name: "s".into(), values: vec![1.0; 15], clock: Clock::default() };
        let e = check(&[short], &s).expect_err("refused").to_string();
        assert!(e.contains("has 15 values") && e.contains("need 16"), "{e}");
        let mut values = vec![1.0; 20];
        values[10] = f64::NAN;
        let e =
            check(&[Input { name: "g".into(), values, clock: Clock::default() }], &s).expect_err("refused").to_string();
        assert!(e.contains("position 10"), "{e}");
        // A gap before the part used is fine.
        let mut values = vec![1.0; 20];
        values[2] = f64::NAN;
        assert!(check(&[Input { name: "g".into(), values, clock: Clock::default() }], &s).is_ok());
        assert!(Settings { capacity_quantile: 1.0, ..s }.check().is_err());
        assert!(Settings { origins: 0, ..s }.check().is_err());
    }

    #[test]
    fn every_cell_is_accounted_for_and_results_repeat() {
        let settings =
            Settings { origins: 5, horizon: 24, window: 24 * 14, stride: 24, season: 24, capacity_quantile: 0.9 };
        let inputs = vec![
            Input { name: "a".into(), values: seasonal(24 * 20), clock: Clock::default() },
            Input {
                name: "b".into(),
                values: seasonal(24 * 21).iter().map(|v| v * 2.0).collect(),
                clock: Clock::default(),
            },
        ];
        let models: Vec<_> = ["naive", "snaive24", "mstl(24)", "theta24", "croston"]
            .iter()
            .map(|m| models::parse(m).expect("accepted"))
            .collect();
        let a = evaluate(&inputs, &models, &settings).expect("accepted");
        assert_eq!(a.cells.len(), 2 * 5 * 5);
        let b = evaluate(&inputs, &models, &settings).expect("accepted");
        assert_eq!(a.cells, b.cells);
        assert_eq!(a.last, b.last);
        // On a clean daily pattern the seasonal models beat naive.
        let mase = |m: usize| a.aggregate(m, &[0, 1], 1).summary.mean;
        assert!(
            mase(1) < mase(0) && mase(2) < mase(0) && mase(3) < mase(0),
            "{} {} {} {}",
            mase(0),
            mase(1),
            mase(2),
            mase(3)
        );
    }
}
