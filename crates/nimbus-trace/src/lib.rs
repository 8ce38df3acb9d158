//! Readers, validators and synthetic generators for public trace formats.
//!
//! Each format has one module that turns a file into plain typed records and
//! rejects malformed input with a [`TraceError`] naming the file, the line,
//! the column and what was expected. Nothing here knows how a domain
//! simulates the records; domains convert them into their own entities.
//!
//! Synthetic generators are calibrated on the public traces (the calibration
//! is stated next to each parameter) and are the embedded defaults, so every
//! scenario runs on a fresh clone without `../shared/data`.
//!
//! Architecture invariants:
//! - Depends only on `nimbus-sim` (for random streams); no domain crate.
//! - Never panics on file contents; every rejected row says where and why.
//! - Readers never drop a row silently: a row is returned or an error is.

// Readers turn file text into numbers: only checked conversions.
#![warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

pub mod act;
pub mod alibaba;
pub mod columnar;
pub mod dag;
pub mod error;
pub mod faas;
pub mod formats;
pub mod gaia;
pub mod gavel;
pub mod grid;
pub mod idx;
pub mod input;
pub mod llm;
pub mod opendc;
pub mod philly;
pub mod series;
pub mod sia;
pub mod tiresias;
pub mod tpch;
pub mod workflow;
pub mod yaml;

pub use error::TraceError;
pub use input::Source;
