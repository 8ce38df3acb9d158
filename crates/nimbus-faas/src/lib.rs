//! The serverless domain of the twin: function invocations on
//! memory-bounded hosts, sandboxes with cold starts, and the keep-alive,
//! pre-warming and eviction policies that decide which sandboxes stay
//! loaded.

pub mod applevel;
pub mod dfaas;
pub mod energy;
pub mod engine;
pub mod faascale;
pub mod faasmeter;
pub mod instainfer;
pub mod kpa;
pub mod metrics;
pub mod policy;
pub mod scenario;
pub mod snapipeline;
pub mod snapshot;
pub mod workload;
