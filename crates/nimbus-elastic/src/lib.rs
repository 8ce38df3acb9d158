//! Elastic capacity: autoscalers deciding how many workers serve a demand
//! that changes over the day, on a fluid model in integer seconds.
//!
//! - [`demand`]: the arrival rate over time, from a public series (scaled
//!   to a peak rate) or a seeded synthetic diurnal series with bursts.
//! - [`engine`]: one-second ticks; workers ask for a scale-up delay before
//!   they serve, a restart stops the whole job for a downtime (parameter-
//!   server jobs restart when their worker set changes); arrivals beyond
//!   capacity wait in a lag queue, lag(t+1) = max(0, lag + arrivals −
//!   served); uneven partitions limit what unshuffled workers serve.
//! - [`policy`]: the autoscalers people use today, as documented: the
//!   Kubernetes HPA, target tracking, scheduled (time-of-day) scaling and
//!   static peak provisioning, behind one trait.
//! - [`kale`]: Kale (SoCC'24): forecast-driven, stabilized worker sizing
//!   from a fitted concave throughput curve, with data shuffling.
//! - [`burstable`]: a web service on on-demand and burstable instances
//!   (CPU credits, weighted least connections, per-instance queues);
//!   [`autoburst`]: AutoBurst (SoCC'24) on it.
//! - [`leasing`]: owners' reservations and usage, lessees of idle cores,
//!   revocation; [`meta_leasing`]: Meta's idle-resource leasing (SoCC'24).
//! - [`scenario`]: scenario keys → a run (`[cluster] kind` picks the
//!   model); metrics with units in their names.
//!
//! Architecture invariants: no other domain crate and no lab; integer
//! simulated time; every random draw from a named stream of the run's
//! seed; workers are never negative and every arriving sample is either
//! served or still queued at the end (asserted by the engine's tests).

pub mod autoburst;
pub mod burstable;
pub mod demand;
pub mod engine;
pub mod kale;
pub mod leasing;
pub mod meta_leasing;
pub mod policy;
pub mod scenario;
