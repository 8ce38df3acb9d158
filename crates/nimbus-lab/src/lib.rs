//! The laboratory: what a scenario asks for and what its runs show.
//!
//! - [`scenario`]: a scenario file (TOML) → a typed [`Scenario`] with every
//!   key's position kept for error messages.
//! - [`domain`]: the registry through which the CLI reaches domains; each
//!   domain prepares a scenario once and runs (policy, seed) pairs.
//! - [`matrix`]: runs every policy × seed of a scenario, in parallel across
//!   runs (each run is single-threaded and independent).
//! - [`stats`]: means and 95% confidence intervals across seeds, paired
//!   per-seed ratios between policies.
//! - [`budget`]: every run's memory and events estimated before any
//!   starts, checked against the machine's limits.
//! - [`claims`]: a paper's claim checked against the runs, with a verdict
//!   that can fail: `holds`, `does not hold` or `not comparable`.
//! - [`sweep`]: `[sweep]` grids of settings, and shards of a sweep's runs.
//! - [`external`]: policies built by an embedding program (the Python
//!   package) instead of a domain's registry.
//!
//! Architecture invariants:
//! - The lab knows domains only through [`domain::REGISTRY`]; it never
//!   inspects a domain's metrics beyond their names and values.
//! - Nothing here prints; progress goes through a callback and results are
//!   values the report crate renders.
//! - Results are deterministic: runs are ordered by (policy, seed) whatever
//!   order they finish in.

// The lab reads scenario files: only checked conversions.
#![warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

pub mod budget;
pub mod claims;
pub mod domain;
pub mod external;
pub mod forecast_study;
pub mod matrix;
pub mod scenario;
pub mod stats;
pub mod sweep;
mod toml_params;

pub use budget::Limits;
pub use claims::{Claim, Expect, Verdict};
pub use external::ExternalPolicy;
pub use matrix::{LabResult, RunRecord, assemble, run_scenario, run_scenario_within, run_selected};
pub use scenario::{LabError, PolicySpec, Scenario};
pub use sweep::{Shard, Sweep};
