//! The world every domain shares: units and a hardware catalog with cited
//! figures.
//!
//! Architecture invariants:
//! - Plain data and pure functions only; no simulation state, no I/O.
//! - Every number in the catalog carries its source (a vendor datasheet or a
//!   paper); a figure without a source does not belong here.
//! - Domain crates depend on this crate, never the reverse.

pub mod curve;
pub mod energy;
pub mod flash;
pub mod hardware;
pub mod power;
pub mod units;

pub use hardware::{GpuSpec, Interconnect, NicSpec, gpu, gpu_names};
