//! GPU clusters for deep-learning training: a round-based twin of a
//! heterogeneous cluster and the scheduling policies of Gavel, Sia, Tiresias,
//! Hops and their baselines.
//!
//! Layout: [`cluster`] (servers, GPU types, placements), [`job`] (work and
//! throughput models), [`engine`] (rounds, progress, restarts, bounds),
//! [`policy`] (the policy trait, registry and one file per system),
//! [`metrics`] (JCT, wait, fragmentation, latency ratio, fairness),
//! [`scenario`] (building clusters and workloads from scenario parameters).
//!
//! Architecture invariants:
//! - No dependency on any other domain crate, on the lab or on a file format
//!   for configuration (scenarios arrive as `nimbus_sim::params::Params`).
//! - GPUs per server are never over-allocated (the engine asserts it every
//!   round); every job ends completed, unfinished or unschedulable.
//! - Deterministic: the same scenario, policy and seed give identical
//!   results (wall-clock decision times are reported apart as timings).

pub mod cluster;
pub mod engine;
pub mod goodput;
pub mod job;
pub mod metrics;
pub mod policy;
pub mod scenario;
pub mod synthetic;
