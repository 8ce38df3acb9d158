//! DFaaS (SoCC'24): "Is It Time To Put Cold Starts In The Deep Freeze?"
//!
//! Mechanism: most functions are not latency-sensitive, so users annotate
//! each with a delay tolerance and the platform may queue, batch, checkpoint
//! or migrate its executions until the deadline, packing work onto fewer
//! warm instances. Modelled here: invocations of tolerant triggers
//! (everything but `http`, inferred from the paper's argument that most
//! functions are not user-facing) that find no idle sandbox wait for one of
//! their app's busy sandboxes instead of cold-starting a new one, and start
//! cold only when their tolerance (less the cold start) runs out; keep-alive
//! is fixed, as in `fixed`.
//!
//! Baseline: immediate execution (`fixed`). Deviations: batching,
//! checkpointing and migration of deferred work are not modelled; the
//! tolerance is one value for all tolerant triggers.

use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::{SimDuration, SimTime};

use crate::policy::{AfterExecution, KeepAlive};

/// Deferral with fixed keep-alive.
pub struct Dfaas {
    keep: SimDuration,
    tolerance: SimDuration,
}

impl KeepAlive for Dfaas {
    fn after_execution(&mut self, _app: u32, _now: SimTime) -> AfterExecution {
        AfterExecution::KeepFor(self.keep)
    }

    fn tolerance(&self, trigger: &str) -> SimDuration {
        if trigger == "http" { SimDuration::ZERO } else { self.tolerance }
    }
}

/// Builds the policy from `keep_alive_min` (10) and `tolerance_s` (300).
pub fn build(p: &Params) -> Result<Box<dyn KeepAlive>, ParamError> {
    let keep = SimDuration::from_nanos(p.duration_ns_or("keep_alive_min", 10.0, 60e9, true)?);
    let tolerance = SimDuration::from_nanos(p.duration_ns_or("tolerance_s", 300.0, 1e9, false)?);
    p.finish(&[])?;
    Ok(Box::new(Dfaas { keep, tolerance }))
}
