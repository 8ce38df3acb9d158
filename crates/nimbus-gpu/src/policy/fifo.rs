//! FIFO: first come, first served, with backfilling.
//!
//! The classic baseline of every scheduler in this domain (YARN-CS in
//! Tiresias' evaluation, FIFO in Gavel's). Each round, jobs are considered in
//! arrival order and placed greedily on the fastest GPU type with room; a job
//! that does not fit is skipped so that smaller later jobs may use the idle
//! GPUs (backfilling). A job keeps its GPUs while it runs, since earlier jobs
//! are always considered first.

use nimbus_sim::params::{ParamError, Params};

use super::{Assignment, Fidelity, Policy, PolicyEnv, PolicyInfo, PolicyKind, RoundContext, place_in_order};

/// Registry entry.
pub const INFO: PolicyInfo = PolicyInfo {
    name: "fifo",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Modelled,
    source: "first-come first-served (YARN capacity scheduler style), as in Gavel and Tiresias",
    summary: "arrival order, greedy placement on the fastest type with room, backfilling",
    params: &["round_s"],
    build,
};

fn build(params: &Params, _env: &PolicyEnv) -> Result<Box<dyn Policy>, ParamError> {
    let round_s = params.f64_in("round_s", 360.0, 1e-3..=1e7)?;
    params.finish(INFO.params)?;
    Ok(Box::new(Fifo { round_s }))
}

/// The FIFO policy.
pub struct Fifo {
    round_s: f64,
}

impl Policy for Fifo {
    fn round_s(&self) -> f64 {
        self.round_s
    }

    fn schedule(&mut self, ctx: &RoundContext<'_>) -> Vec<Assignment> {
        place_in_order(ctx, ctx.active)
    }
}
