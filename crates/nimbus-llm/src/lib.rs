//! The LLM-serving domain of the twin.
//!
//! An iteration-level, discrete-event model of LLM inference serving in the
//! shape of Vidur: replicas of (model, GPU type, tensor parallelism) run
//! continuous batches over a paged KV cache; replica schedulers (vLLM,
//! Sarathi-Serve, Orca) choose each iteration's batch; global routers or a
//! queue manager (QLM) feed replicas; each iteration's time comes from an
//! execution-time model ([`exec`]).

pub mod calibration;
pub mod engine;
pub mod exec;
pub mod metrics;
pub mod model;
pub mod moesaic;
pub mod policy;
pub mod qlm;
pub mod replica;
pub mod request;
pub mod router;
pub mod scenario;
pub mod workload;
