//! Rendering a scenario's results: the terminal comparison table, result
//! files (`summary.json`, per-entity CSV and Parquet, `report.md`,
//! `report.html`, `manifest.json`, `timings.json`) and SVG plots; and the
//! [`pipeline`] from a scenario file to those files, shared by the CLI and
//! the Python package (runs, shards, merges).
//!
//! Architecture invariants:
//! - Pure rendering: functions return strings or write inside the output
//!   directory they are given, never anywhere else; nothing prints.
//! - Deterministic: the same results give byte-identical files, except
//!   `timings.json`, which holds wall-clock measurements by design.

#[cfg(feature = "parquet")]
pub mod columnar;
pub mod columns;
pub mod files;
pub mod forecast;
pub mod format;
pub mod html;
pub mod pipeline;
pub mod shards;
pub mod svg;
pub mod terminal;

pub use files::{Manifest, SweepPoint, write_results, write_sweep_summary};
pub use terminal::{claims_table, comparison_table, render_fitted};
