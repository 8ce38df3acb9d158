//! The scheduling-policy interface and the registry of policies.
//!
//! One trait per decision (Blox's split): each round the engine asks the
//! policy for [`Assignment`]s — which jobs run on which GPUs for the coming
//! round — and reports back what ran. Policies keep whatever state they need
//! (allocations, deficits, estimators) between rounds. A new policy is one
//! new file in this directory and one line in [`REGISTRY`].
//!
//! Invariant: a policy never sees the future; it reads only jobs that have
//! arrived and the cluster's state at the start of the round.

use nimbus_sim::SimTime;
use nimbus_sim::params::{ParamError, Params};

use crate::cluster::{Cluster, FreeGpus, GpuTypeId, Placement};
use crate::job::{Job, JobId, JobState};

pub mod fifo;
pub mod gavel;
pub mod hops;
pub mod placement;
pub mod sia;
pub mod srtf;
pub mod tiresias;

/// What a policy sees at the start of a round.
pub struct RoundContext<'a> {
    /// Start of the round.
    pub now: SimTime,
    /// Nominal round length, seconds.
    pub round_s: f64,
    /// The cluster.
    pub cluster: &'a Cluster,
    /// Every job of the run, by id (only `active` ones have arrived).
    pub jobs: &'a [Job],
    /// Engine state of every job, by id.
    pub states: &'a [JobState],
    /// Jobs that have arrived, are unfinished and can run on this cluster,
    /// in arrival order.
    pub active: &'a [JobId],
}

impl RoundContext<'_> {
    /// The placement a job held in the previous round, if it ran.
    pub fn previous(&self, job: JobId) -> Option<&Placement> {
        self.states[job].placement.as_ref()
    }

    /// Active jobs sorted by a key (stable: ties keep arrival order).
    pub fn active_sorted_by<K: PartialOrd>(&self, mut key: impl FnMut(JobId) -> K) -> Vec<JobId> {
        let mut keyed: Vec<(K, JobId)> = self.active.iter().map(|&j| (key(j), j)).collect();
        keyed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        keyed.into_iter().map(|(_, j)| j).collect()
    }
}

/// One job's GPUs for the coming round.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The job.
    pub job: JobId,
    /// Its GPUs (all of one type).
    pub placement: Placement,
}

/// One job's share of a finished round.
#[derive(Debug, Clone, PartialEq)]
pub struct RanJob {
    /// The job.
    pub job: JobId,
    /// GPU type it ran on.
    pub gpu_type: GpuTypeId,
    /// Its placement.
    pub placement: Placement,
    /// Seconds from the round start until it stopped (finished or the round ended).
    pub seconds: f64,
    /// Work done in the round.
    pub work: f64,
    /// Whether it finished in this round.
    pub completed: bool,
}

/// How the engine decides when a round ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundEnd {
    /// Rounds last exactly the round length.
    Fixed,
    /// A round ends when its last job stops: jobs run whole steps that fit in
    /// the round length, so the round ends slightly before it (Gavel).
    LatestFinish,
}

/// A scheduling policy.
pub trait Policy: Send {
    /// Round length in seconds.
    fn round_s(&self) -> f64;

    /// How rounds end (default: fixed length).
    fn round_end(&self) -> RoundEnd {
        RoundEnd::Fixed
    }

    /// How elastic jobs set their batch size under this policy: the user's
    /// total (default), chosen for goodput (Sia, Pollux), or the user's
    /// per-GPU batch (Hops).
    fn batch_mode(&self) -> BatchMode {
        BatchMode::User
    }

    /// A job arrived (called before the round that first sees it).
    fn on_arrival(&mut self, _job: &Job, _now: SimTime) {}

    /// The jobs to run in the coming round and their GPUs.
    fn schedule(&mut self, ctx: &RoundContext<'_>) -> Vec<Assignment>;

    /// What ran in the round that just ended (completions included).
    fn on_round_end(&mut self, _ctx: &RoundContext<'_>, _ran: &[RanJob], _end: SimTime) {}

    /// A job finished (after `on_round_end`).
    fn on_completion(&mut self, _job: JobId, _now: SimTime) {}

    /// Why a policy implemented outside Rust (a Python class) failed: it
    /// raised, or returned an invalid decision. The engine checks after
    /// every decision and stops the run with this message.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// How elastic jobs set their batch size (see [`Policy::batch_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// The user's total batch size at the user's GPU count.
    User,
    /// Chosen per placement and epoch for the best goodput.
    Adaptive,
    /// The user's per-GPU batch size, whatever the GPU count.
    PerGpu,
}

/// Whether a policy is a SoCC'24 paper's system or a baseline it was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// The system of a SoCC'24 paper.
    Paper,
    /// A baseline.
    Baseline,
}

/// How faithfully a policy follows its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fidelity {
    /// A port of the reference mechanism.
    Modelled,
    /// Checked against published numbers within a stated tolerance.
    Validated,
}

/// Constructor of a policy from its parameters and environment.
pub type BuildFn = fn(&Params, &PolicyEnv) -> Result<Box<dyn Policy>, ParamError>;

/// Registry entry of a policy.
pub struct PolicyInfo {
    /// Name used in scenarios.
    pub name: &'static str,
    /// Paper system or baseline.
    pub kind: PolicyKind,
    /// Fidelity.
    pub fidelity: Fidelity,
    /// Citation of the source.
    pub source: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Accepted parameters.
    pub params: &'static [&'static str],
    /// Builds the policy from its parameters and the run seed.
    pub build: BuildFn,
}

/// What policies may need at construction beyond their parameters.
#[derive(Debug, Clone)]
pub struct PolicyEnv {
    /// The run's seed.
    pub seed: u64,
    /// The cluster.
    pub cluster: Cluster,
}

/// Every GPU-domain policy, by name.
pub static REGISTRY: &[PolicyInfo] = &[
    fifo::INFO,
    srtf::INFO,
    tiresias::INFO,
    gavel::INFO_LAS,
    gavel::INFO_LAS_AGNOSTIC,
    gavel::INFO_FTF,
    gavel::INFO_FTF_AGNOSTIC,
    gavel::INFO_MAX_SUM_THROUGHPUT,
    sia::INFO,
    hops::INFO,
];

/// Looks a policy up by name.
pub fn find(name: &str) -> Option<&'static PolicyInfo> {
    REGISTRY.iter().find(|p| p.name == name)
}

/// Greedy placement of `jobs` in order onto `free`, using each job's
/// requested GPU count on the fastest GPU type that fits it (consolidated
/// placement: fewest servers). Shared by the simple priority policies.
pub fn place_in_order(ctx: &RoundContext<'_>, order: &[JobId]) -> Vec<Assignment> {
    let mut free = FreeGpus::all(ctx.cluster);
    let types = ctx.cluster.types_fastest_first();
    let mut out = Vec::new();
    for &job in order {
        let spec = &ctx.jobs[job];
        let gpus = spec.requested_gpus();
        // Keep the previous placement when it is still free (no restart).
        if let Some(prev) = ctx.previous(job)
            && prev.gpus() == gpus
            && free.fits(prev)
        {
            free.take(prev);
            out.push(Assignment { job, placement: prev.clone() });
            continue;
        }
        for &t in &types {
            if spec.rate_packed(ctx.cluster, t, gpus, ctx.states[job].work_done) <= 0.0 {
                continue;
            }
            if let Some(p) = placement::consolidated(ctx.cluster, &free, t, gpus) {
                free.take(&p);
                out.push(Assignment { job, placement: p });
                break;
            }
        }
    }
    out
}
