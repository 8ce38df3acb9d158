//! Faascale (SoCC'24): "Scaling MicroVM Vertically for Serverless
//! Computing with Memory Elasticity".
//!
//! Mechanism: instead of starting a new microVM (restored from a
//! snapshot) for each concurrent instance of a function, Faascale grows
//! the function's running microVM by a memory block bound to the new
//! instance, pre-populated so the instance does not fault its memory in
//! lazily, and shrinks it by returning the block when the instance goes.
//!
//! In the twin (policy `faascale`, keep-alive fixed as in `fixed`): the
//! first instance of an app on a host is a cold start (a new microVM);
//! while the app has a microVM on a host with room, a further instance is
//! a scale-up costing `process_ms` plus `populate_ms_per_gb` × its memory,
//! not a cold start; its block is released when it expires. A sandbox
//! restored from a snapshot runs its first execution slower by the
//! platform's `first_run_penalty` (REAP measured +95% for
//! snapshot-started functions); a pre-populated scale-up does not.
//! Baseline: horizontal scaling (`fixed`, every instance a microVM).
//! Deviations: scale-ups only on a host that already runs the app's
//! microVM and has free memory (no eviction for them); the balloon and
//! virtio-mem baselines of the memory-scaling comparison are not
//! modelled; block hot-plug cost is a bandwidth figure (inferred), not
//! measured.
//!
//! Below, the paper's feasibility analysis on Azure 2019-style per-minute
//! counts.
//!
//! For one function with `c[m]` invocations in minute `m` and mean
//! execution time `d`, the instances busy in that minute are
//! `n[m] = ⌈c[m]·d / 60 s⌉`. With keep-alive of `w` minutes:
//! - horizontal scaling (one microVM per instance) cold-starts every
//!   instance above the most it kept alive: `max(0, n[m] − max(n[m−w..m−1]))`;
//! - vertical scaling (one microVM grown and shrunk in memory blocks)
//!   cold-starts only when it had nothing alive: `n[m] > 0` and
//!   `max(n[m−w..m−1]) = 0`.
//!

use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::{SimDuration, SimTime};

use crate::policy::{AfterExecution, KeepAlive, VerticalScaling};

/// Fixed keep-alive with vertical scaling.
pub struct Faascale {
    keep: SimDuration,
    scaling: VerticalScaling,
}

impl KeepAlive for Faascale {
    fn after_execution(&mut self, _app: u32, _now: SimTime) -> AfterExecution {
        AfterExecution::KeepFor(self.keep)
    }

    fn vertical(&self) -> Option<VerticalScaling> {
        Some(self.scaling)
    }
}

/// Builds the policy from `keep_alive_min` (10), `populate_ms_per_gb`
/// (100: about 10 GB/s of page population, inferred) and `process_ms` (5,
/// inferred).
pub fn build(p: &Params) -> Result<Box<dyn KeepAlive>, ParamError> {
    let keep = SimDuration::from_nanos(p.duration_ns_or("keep_alive_min", 10.0, 60e9, true)?);
    let populate_ms_per_gb = p.non_negative_f64_or("populate_ms_per_gb", 100.0)?;
    let process_ms = p.non_negative_f64_or("process_ms", 5.0)?;
    p.finish(&[])?;
    Ok(Box::new(Faascale { keep, scaling: VerticalScaling { populate_ms_per_gb, process_ms } }))
}

/// Instances busy in each minute.
pub fn instances_per_minute(counts: &[u32], mean_exec_ms: f64) -> Vec<u64> {
    counts.iter().map(|&c| (f64::from(c) * mean_exec_ms / 60_000.0).ceil().max(0.0) as u64).collect()
}

/// (horizontal, vertical) cold starts with keep-alive of `window` minutes.
pub fn cold_starts(instances: &[u64], window: usize) -> (u64, u64) {
    let (mut horizontal, mut vertical) = (0u64, 0u64);
    for (m, &need) in instances.iter().enumerate() {
        let alive = instances[m.saturating_sub(window)..m].iter().copied().max().unwrap_or(0);
        horizontal += need.saturating_sub(alive);
        if need > 0 && alive == 0 {
            vertical += 1;
        }
    }
    (horizontal, vertical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_starts_by_hand() {
        // 2 instances, idle, 3, 1, idle x3, 2 with a 1-minute window.
        let n = [2, 0, 3, 1, 0, 0, 0, 2];
        // Horizontal: 2 (m0) + 3 (m2, nothing alive at m1) + 0 + 0 + 2 (m7).
        // Vertical: m0, m2, m7.
        assert_eq!(cold_starts(&n, 1), (7, 3));
        // A 2-minute window keeps m0's instances through m2: 2 + 1 + 2.
        assert_eq!(cold_starts(&n, 2), (5, 2));
        assert_eq!(instances_per_minute(&[5, 0, 61], 1000.0), vec![1, 0, 2]);
    }
}
