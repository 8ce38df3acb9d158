//! Tiresias: discretized two-dimensional least-attained-service (2D-LAS).
//!
//! Source: Gu, Chowdhury, Shin, Zhu, Jeon, Qian, Liu, Guo, "Tiresias: A GPU
//! Cluster Manager for Distributed Deep Learning", NSDI 2019
//! (`SymbioticLab/Tiresias`, `simulator/`). A baseline in Sia's and Pollux's
//! evaluations.
//!
//! Mechanism: a job's attained service is GPUs × time it has held them.
//! Thresholds split jobs into K priority queues (one threshold, 3,600 GPU·s,
//! gives two queues by default); queue 0 (least service) is served first and
//! jobs within a queue in arrival order. The policy needs no job-duration
//! knowledge. Placement is consolidated (fewest servers), and a job keeps its
//! GPUs when they are still free.
//!
//! Starvation: a job whose time waiting since it last ran exceeds
//! `promote_ratio` times its total running time is moved back to queue 0
//! (the reference's "starvation limit"; the exact knob is unverified).
//!
//! Not ported: the Gittins-index variant (needs the GPU-time distribution of
//! `yarn-gput*.csv`) and Tiresias' profile-guided placement.

use std::collections::BTreeMap;

use nimbus_sim::SimTime;
use nimbus_sim::params::{ParamError, Params};

use crate::job::JobId;

use super::{Assignment, Fidelity, Policy, PolicyEnv, PolicyInfo, PolicyKind, RanJob, RoundContext, place_in_order};

/// Registry entry.
pub const INFO: PolicyInfo = PolicyInfo {
    name: "tiresias",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Modelled,
    source: "Gu et al., Tiresias, NSDI 2019 (SymbioticLab/Tiresias)",
    summary: "discretized 2D least-attained-service queues with starvation promotion",
    params: &["round_s", "thresholds_gpu_s", "promote_ratio"],
    build,
};

fn build(params: &Params, _env: &PolicyEnv) -> Result<Box<dyn Policy>, ParamError> {
    let round_s = params.f64_in("round_s", 360.0, 1e-3..=1e7)?;
    let mut thresholds = params.f64_list("thresholds_gpu_s")?.unwrap_or_else(|| vec![3600.0]);
    if thresholds.iter().any(|t| *t <= 0.0) {
        return Err(params.error("thresholds_gpu_s", "thresholds must be positive GPU-seconds"));
    }
    thresholds.sort_by(f64::total_cmp);
    let promote_ratio = params.positive_f64_or("promote_ratio", 8.0)?;
    params.finish(INFO.params)?;
    Ok(Box::new(Tiresias { round_s, thresholds, promote_ratio, last_ran: BTreeMap::new() }))
}

/// The Tiresias 2D-LAS policy.
pub struct Tiresias {
    round_s: f64,
    thresholds: Vec<f64>,
    promote_ratio: f64,
    last_ran: BTreeMap<JobId, SimTime>,
}

impl Tiresias {
    fn queue_of(&self, ctx: &RoundContext<'_>, job: JobId) -> usize {
        let state = &ctx.states[job];
        let since = self.last_ran.get(&job).copied().unwrap_or(ctx.jobs[job].arrival);
        let waiting_s = ctx.now.saturating_since(since).as_secs_f64();
        if state.run_seconds > 0.0 && waiting_s > self.promote_ratio * state.run_seconds {
            return 0;
        }
        self.thresholds.iter().filter(|t| state.attained_service() >= **t).count()
    }
}

impl Policy for Tiresias {
    fn round_s(&self) -> f64 {
        self.round_s
    }

    fn schedule(&mut self, ctx: &RoundContext<'_>) -> Vec<Assignment> {
        let order = ctx.active_sorted_by(|j| self.queue_of(ctx, j));
        place_in_order(ctx, &order)
    }

    fn on_round_end(&mut self, _ctx: &RoundContext<'_>, ran: &[RanJob], end: SimTime) {
        for r in ran {
            self.last_ran.insert(r.job, end);
        }
    }

    fn on_completion(&mut self, job: JobId, _now: SimTime) {
        self.last_ran.remove(&job);
    }
}
