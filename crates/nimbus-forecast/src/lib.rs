//! Forecasting for capacity decisions: real models on real series.
//!
//! - [`Forecaster`]: fit on a history, predict a horizon as a point forecast
//!   and the quantiles 0.1…0.9 ([`Forecast`]). Models are named by a short
//!   spec (`naive`, `snaive24`, `ma24`, `ses`, `autoets`, `mstl`, `theta`,
//!   `croston`, `tsb`, `adida`, `linear`, `global-linear`; [`models::parse`]).
//!   A global model ([`Forecaster::is_global`]) learns one set of
//!   parameters across many series; the harness trains it once per origin.
//! - [`metrics`]: MASE, sMAPE, MAE, weighted quantile loss, interval
//!   coverage, and scaling-aware metrics (under-provisioned steps and
//!   over-provisioning when capacity is set at a forecast quantile).
//! - [`evaluate`]: the rolling-origin harness (origins, horizon, window),
//!   with fit and predict time per series.
//!
//! Statistical models follow the definitions of Hyndman & Athanasopoulos,
//! *Forecasting: Principles and Practice* (3rd ed.), and, where a choice is
//! left open (initial states, parameter bounds, what a model does on a
//! constant series), the behaviour of Nixtla's `statsforecast`, against
//! whose point forecasts they are checked (`tests/statsforecast.rs`).
//! AutoETS and MSTL come from `augurs` (Grafana; MIT/Apache-2.0).
//!
//! Architecture invariants: below every domain (domains and the CLI depend
//! on it, never the reverse); no randomness and no wall clock in a forecast,
//! so forecasts are byte-identical run to run (the harness measures fit and
//! predict time beside them, and only there); bad input (too short, NaN,
//! infinite values, a zero horizon) is an error, never a panic.

pub mod evaluate;
pub mod forecast;
pub mod metrics;
pub mod models;
mod optimize;
pub mod synthetic;

pub use forecast::{Clock, Fitted, Forecast, ForecastError, Forecaster, GlobalFitted, QUANTILES, Window};
