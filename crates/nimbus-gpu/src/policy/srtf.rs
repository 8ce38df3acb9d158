//! SRTF: shortest remaining time first, preemptive.
//!
//! An information-rich baseline (it knows each job's remaining work, which
//! real schedulers do not): each round, jobs are ordered by remaining time at
//! their requested GPU count on the fastest GPU type they can use, and placed
//! greedily in that order (backfilling past jobs that do not fit). A running
//! job is preempted when shorter jobs take its GPUs.

use nimbus_sim::params::{ParamError, Params};

use super::{Assignment, Fidelity, Policy, PolicyEnv, PolicyInfo, PolicyKind, RoundContext, place_in_order};

/// Registry entry.
pub const INFO: PolicyInfo = PolicyInfo {
    name: "srtf",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Modelled,
    source: "shortest remaining time first (Blox, Tiresias' SRTF baseline)",
    summary: "preemptive shortest remaining time first on the fastest usable GPU type",
    params: &["round_s"],
    build,
};

fn build(params: &Params, _env: &PolicyEnv) -> Result<Box<dyn Policy>, ParamError> {
    let round_s = params.f64_in("round_s", 360.0, 1e-3..=1e7)?;
    params.finish(INFO.params)?;
    Ok(Box::new(Srtf { round_s }))
}

/// The SRTF policy.
pub struct Srtf {
    round_s: f64,
}

impl Policy for Srtf {
    fn round_s(&self) -> f64 {
        self.round_s
    }

    fn schedule(&mut self, ctx: &RoundContext<'_>) -> Vec<Assignment> {
        let order = ctx.active_sorted_by(|j| {
            let job = &ctx.jobs[j];
            let state = &ctx.states[j];
            let gpus = job.requested_gpus();
            let best = (0..ctx.cluster.gpu_types.len())
                .filter(|t| ctx.cluster.gpus_of_type(*t) >= gpus)
                .map(|t| job.rate_packed(ctx.cluster, t, gpus, state.work_done))
                .fold(0.0, f64::max);
            if best > 0.0 { state.remaining(job) / best } else { f64::INFINITY }
        });
        place_in_order(ctx, &order)
    }
}
