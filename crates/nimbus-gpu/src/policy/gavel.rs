//! Gavel: heterogeneity-aware scheduling policies as optimization problems,
//! realised by a round-based priority mechanism.
//!
//! Source: Narayanan, Santhanam, Kazhamiaka, Phanishayee, Zaharia,
//! "Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning
//! Workloads", OSDI 2020; reference simulator `stanford-futuredata/gavel`
//! (`scheduler/scheduler.py`, `scheduler/policies/*.py`). Gavel is a
//! baseline of Sia (SOSP'23) and Hops (SoCC'24).
//!
//! Mechanism (ported from the reference simulator):
//! - An *allocation* `X[j][w]` (fraction of time job `j` should spend on GPU
//!   type `w`) is computed by an LP. It is recomputed when jobs arrive or
//!   complete, but at most once every `reset_interval_s` (1,920 s) after the
//!   first reset.
//! - At each reset the time each job received on each type is compared with
//!   what the allocation promised, and the difference accumulates in a
//!   per-(job, type) *deficit*; received times restart at half a round.
//! - Every round (360 s), each (job, type) gets priority `X / fraction of the
//!   type's time received since the reset` (`1e9·X` if the type has no time
//!   yet). Types are visited fastest first for heterogeneity-aware policies
//!   and in a freshly shuffled order for agnostic ones; within a type, jobs
//!   are taken by decreasing (priority, deficit, X), greedily while their
//!   scale factor fits.
//! - Placement keeps a job on its previous GPUs when they are all still free
//!   (lease extension) and otherwise fills servers in id order with a strided
//!   pointer, largest scale factors first.
//! - A round ends when its last job stops (jobs run the whole steps that fit
//!   in 360 s); there is no preemption or checkpoint cost.
//!
//! Policies (the `*_perf` variants see per-type throughputs; the others
//! treat every type as equally fast):
//! - `gavel_las` / `gavel_las_agnostic` (`max_min_fairness_perf` /
//!   `max_min_fairness`): maximise `min_j Σ_w T_jw·X_jw·sf_j / (w_j·T_j^iso)`
//!   subject to `Σ_w X_jw ≤ 1`, `Σ_j sf_j·X_jw ≤ N_w`, `X ≥ 0`, where `T^iso`
//!   is the throughput under the agnostic allocation.
//! - `gavel_ftf` / `gavel_ftf_agnostic` (finish-time fairness, Themis' metric):
//!   minimise `max_j ρ_j`, `ρ_j = (t_j + R_j / Σ_w T_jw X_jw) / (t_j + R_j / T_j^eq)`
//!   with `t_j` the time since arrival, `R_j` the remaining steps and `T^eq`
//!   the throughput on an equal `1/n` share of every type.
//! - `gavel_max_sum_throughput` (`max_sum_throughput_perf`): maximise
//!   `Σ_j Σ_w T_jw·X_jw` (raw steps/s, as the reference objective).
//!
//! Modelled vs real: the mechanism is an exact port; LPs are solved with
//! Clarabel (interior point) where the reference used ECOS (interior point),
//! so when the optimum is not unique both return a point in the interior of
//! the optimal face rather than an arbitrary vertex.
//!
//! Deviations:
//! - FTF is solved exactly by bisection on ρ over LP feasibility problems
//!   (the reference uses cvxpy's `inv_pos`); the final allocation is the
//!   interior-point solution at the optimal ρ.
//! - Time a job received in a round is measured from the moment it was
//!   dispatched; the reference measures it from the previous round's end,
//!   which over-counts the first round after an idle period.
//! - Space sharing (`*_packed` policies) and Gavel's FIFO/Gandiva/AlloX
//!   policies are not ported.
//! - On clusters whose GPU types are not Gavel's `v100/p100/k80`, types are
//!   ordered by catalog FP32 peak.

use std::collections::BTreeMap;

use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::{PyRandom, SimTime};
use nimbus_solve::{Model, Sense, SolveOptions, Var};

use crate::cluster::{Cluster, GpuTypeId, Placement, ServerId};
use crate::job::{Job, JobId, Work};

use super::{Assignment, Fidelity, Policy, PolicyEnv, PolicyInfo, PolicyKind, RanJob, RoundContext, RoundEnd};

const SOURCE: &str = "Narayanan et al., Gavel, OSDI 2020 (stanford-futuredata/gavel)";
const PARAMS: &[&str] = &["round_s", "reset_interval_s"];

/// `gavel_las`: heterogeneity-aware max-min fairness (LAS).
pub const INFO_LAS: PolicyInfo = PolicyInfo {
    name: "gavel_las",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Validated,
    source: SOURCE,
    summary: "heterogeneity-aware max-min fairness (max_min_fairness_perf) via Gavel's round mechanism",
    params: PARAMS,
    build: |p, env| build(p, env, Objective::MaxMinFairness { perf: true }),
};
/// `gavel_las_agnostic`: heterogeneity-agnostic max-min fairness.
pub const INFO_LAS_AGNOSTIC: PolicyInfo = PolicyInfo {
    name: "gavel_las_agnostic",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Validated,
    source: SOURCE,
    summary: "heterogeneity-agnostic max-min fairness (max_min_fairness) via Gavel's round mechanism",
    params: PARAMS,
    build: |p, env| build(p, env, Objective::MaxMinFairness { perf: false }),
};
/// `gavel_ftf`: heterogeneity-aware finish-time fairness.
pub const INFO_FTF: PolicyInfo = PolicyInfo {
    name: "gavel_ftf",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Modelled,
    source: SOURCE,
    summary: "heterogeneity-aware finish-time fairness (Themis' rho) via Gavel's round mechanism",
    params: PARAMS,
    build: |p, env| build(p, env, Objective::FinishTimeFairness { perf: true }),
};
/// `gavel_ftf_agnostic`: heterogeneity-agnostic finish-time fairness.
pub const INFO_FTF_AGNOSTIC: PolicyInfo = PolicyInfo {
    name: "gavel_ftf_agnostic",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Modelled,
    source: SOURCE,
    summary: "heterogeneity-agnostic finish-time fairness via Gavel's round mechanism",
    params: PARAMS,
    build: |p, env| build(p, env, Objective::FinishTimeFairness { perf: false }),
};
/// `gavel_max_sum_throughput`: maximise total throughput.
pub const INFO_MAX_SUM_THROUGHPUT: PolicyInfo = PolicyInfo {
    name: "gavel_max_sum_throughput",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Validated,
    source: SOURCE,
    summary: "maximise the sum of job throughputs (max_sum_throughput_perf) via Gavel's round mechanism",
    params: PARAMS,
    build: |p, env| build(p, env, Objective::MaxSumThroughput),
};

fn build(params: &Params, env: &PolicyEnv, objective: Objective) -> Result<Box<dyn Policy>, ParamError> {
    let round_s = params.f64_in("round_s", 360.0, 1e-3..=1e7)?;
    let reset_interval_s = params.non_negative_f64_or("reset_interval_s", 1920.0)?;
    params.finish(PARAMS)?;
    Ok(Box::new(Gavel::new(&env.cluster, env.seed, objective, round_s, reset_interval_s)))
}

/// The allocation objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Max-min fairness (LAS).
    MaxMinFairness {
        /// Heterogeneity-aware (`_perf`).
        perf: bool,
    },
    /// Finish-time fairness.
    FinishTimeFairness {
        /// Heterogeneity-aware (`_perf`).
        perf: bool,
    },
    /// Max sum of throughputs (always heterogeneity-aware).
    MaxSumThroughput,
}

impl Objective {
    fn is_perf(self) -> bool {
        match self {
            Objective::MaxMinFairness { perf } | Objective::FinishTimeFairness { perf } => perf,
            Objective::MaxSumThroughput => true,
        }
    }
}

/// Per-job bookkeeping of the mechanism, per GPU type.
#[derive(Debug, Clone)]
struct JobBook {
    priority: Vec<f64>,
    deficit: Vec<f64>,
    time_so_far: Vec<f64>,
}

/// Gavel's scheduler state.
pub struct Gavel {
    objective: Objective,
    round_s: f64,
    reset_interval_s: f64,
    shuffler: PyRandom,
    /// GPU types in Gavel's visiting order (before any shuffle).
    type_order: Vec<GpuTypeId>,
    /// GPU ids of each server, by type: `servers_by_type[t]` lists
    /// `(server, [gpu ids])` in server order.
    servers_by_type: Vec<Vec<(ServerId, Vec<usize>)>>,
    gpu_server: Vec<ServerId>,
    allocation: BTreeMap<JobId, Vec<f64>>,
    books: BTreeMap<JobId, JobBook>,
    worker_time_so_far: Vec<f64>,
    last_reset_s: f64,
    need_update: bool,
    current: BTreeMap<JobId, (GpuTypeId, Vec<usize>)>,
    memo: LpMemo,
}

impl Gavel {
    /// A Gavel scheduler for `cluster`, with the reference's seed-derived
    /// worker-type shuffler (`random.Random(seed + 5)`).
    pub fn new(cluster: &Cluster, seed: u64, objective: Objective, round_s: f64, reset_interval_s: f64) -> Self {
        let reference = ["v100", "p100", "k80"];
        let names: Vec<&str> = cluster.gpu_types.iter().map(|t| t.name.as_str()).collect();
        let type_order = if names.iter().all(|n| reference.contains(n)) {
            reference.iter().filter_map(|r| cluster.type_id(r)).collect()
        } else {
            cluster.types_fastest_first()
        };
        let mut servers_by_type = vec![Vec::new(); cluster.gpu_types.len()];
        let mut gpu_server = Vec::new();
        for server in &cluster.servers {
            let ids: Vec<usize> = (0..server.gpus as usize).map(|i| gpu_server.len() + i).collect();
            gpu_server.extend(std::iter::repeat_n(server.id, server.gpus as usize));
            servers_by_type[server.gpu_type].push((server.id, ids));
        }
        Gavel {
            objective,
            round_s,
            reset_interval_s,
            shuffler: PyRandom::new(seed + 5),
            type_order,
            servers_by_type,
            gpu_server,
            allocation: BTreeMap::new(),
            books: BTreeMap::new(),
            worker_time_so_far: vec![0.0; cluster.gpu_types.len()],
            last_reset_s: 0.0,
            need_update: false,
            current: BTreeMap::new(),
            memo: LpMemo::default(),
        }
    }

    /// Throughput of a job on a type at its requested GPU count (packed
    /// placement; for adaptive jobs, at the progress they have reached).
    fn throughput(job: &Job, cluster: &Cluster, progress: f64, gpu_type: GpuTypeId) -> f64 {
        match &job.work {
            Work::Steps { isolated, .. } => isolated[gpu_type],
            Work::Adaptive { requested_gpus, .. } => {
                if cluster.gpus_of_type(gpu_type) < *requested_gpus {
                    0.0
                } else {
                    job.rate_packed(cluster, gpu_type, *requested_gpus, progress)
                }
            }
        }
    }

    fn update_priorities(&mut self, ctx: &RoundContext<'_>) {
        let now_s = ctx.now.as_secs_f64();
        let since_reset = now_s - self.last_reset_s;
        let interval_elapsed = since_reset >= self.reset_interval_s || self.last_reset_s == 0.0;
        if self.need_update && interval_elapsed {
            self.reset_time_run_so_far(now_s);
            self.allocation = self.compute_allocation(ctx);
            self.need_update = false;
        }
        for (job, book) in &mut self.books {
            let spec = &ctx.jobs[*job];
            for t in 0..book.priority.len() {
                let worker_time = self.worker_time_so_far[t];
                let fraction = if worker_time == 0.0 { 0.0 } else { book.time_so_far[t] / worker_time };
                book.priority[t] = match self.allocation.get(job) {
                    None => 0.0,
                    Some(x) => {
                        if x[t] == 0.0 || Self::throughput(spec, ctx.cluster, ctx.states[*job].work_done, t) == 0.0 {
                            0.0
                        } else if fraction > 0.0 {
                            x[t] / fraction
                        } else {
                            x[t] * 1e9
                        }
                    }
                };
            }
        }
    }

    fn reset_time_run_so_far(&mut self, now_s: f64) {
        let elapsed = now_s - self.last_reset_s;
        let half_round = self.round_s / 2.0;
        for t in 0..self.worker_time_so_far.len() {
            self.worker_time_so_far[t] = 0.0;
            for (job, book) in &mut self.books {
                let received = book.time_so_far[t] - half_round;
                let should = self.allocation.get(job).map_or(0.0, |x| x[t] * elapsed);
                book.deficit[t] += should - received;
                book.time_so_far[t] = half_round;
                self.worker_time_so_far[t] += half_round;
            }
        }
        self.last_reset_s = now_s;
    }

    fn compute_allocation(&mut self, ctx: &RoundContext<'_>) -> BTreeMap<JobId, Vec<f64>> {
        let jobs: Vec<JobId> = self.books.keys().copied().collect();
        if jobs.is_empty() {
            return BTreeMap::new();
        }
        let n_types = self.worker_time_so_far.len();
        let perf = self.objective.is_perf();
        let throughputs: Vec<Vec<f64>> = jobs
            .iter()
            .map(|&j| {
                (0..n_types)
                    .map(|t| {
                        let real = Self::throughput(&ctx.jobs[j], ctx.cluster, ctx.states[j].work_done, t);
                        if perf {
                            real
                        } else if real > 0.0 {
                            1.0
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let input = LpInput {
            throughputs: &throughputs,
            real_throughputs: &jobs
                .iter()
                .map(|&j| {
                    (0..n_types)
                        .map(|t| Self::throughput(&ctx.jobs[j], ctx.cluster, ctx.states[j].work_done, t))
                        .collect()
                })
                .collect::<Vec<_>>(),
            scale_factors: &jobs.iter().map(|&j| f64::from(ctx.jobs[j].requested_gpus())).collect::<Vec<_>>(),
            weights: &jobs.iter().map(|&j| ctx.jobs[j].priority_weight).collect::<Vec<_>>(),
            capacity: &(0..n_types).map(|t| f64::from(ctx.cluster.gpus_of_type(t))).collect::<Vec<_>>(),
        };
        let x = match self.objective {
            Objective::MaxMinFairness { perf } => max_min_fairness_memo(&input, perf, &mut self.memo),
            Objective::FinishTimeFairness { .. } => {
                let elapsed: Vec<f64> =
                    jobs.iter().map(|&j| ctx.now.saturating_since(ctx.jobs[j].arrival).as_secs_f64()).collect();
                let remaining: Vec<f64> = jobs.iter().map(|&j| ctx.states[j].remaining(&ctx.jobs[j])).collect();
                finish_time_fairness(&input, &elapsed, &remaining)
            }
            Objective::MaxSumThroughput => max_sum_throughput(&input),
        };
        jobs.into_iter().zip(x).collect()
    }

    fn worker_types_this_round(&mut self) -> Vec<GpuTypeId> {
        let mut order = self.type_order.clone();
        if !self.objective.is_perf() {
            self.shuffler.shuffle(&mut order);
        }
        order
    }
}

impl Policy for Gavel {
    fn round_s(&self) -> f64 {
        self.round_s
    }

    fn round_end(&self) -> RoundEnd {
        RoundEnd::LatestFinish
    }

    fn schedule(&mut self, ctx: &RoundContext<'_>) -> Vec<Assignment> {
        // Jobs enter the mechanism's books when the engine first shows them
        // (the reference adds a job when the simulator reaches its arrival).
        let n_types = self.worker_time_so_far.len();
        for &j in ctx.active {
            self.books.entry(j).or_insert_with(|| {
                self.need_update = true;
                JobBook {
                    priority: vec![0.0; n_types],
                    deficit: vec![0.0; n_types],
                    time_so_far: vec![self.round_s / 2.0; n_types],
                }
            });
        }
        self.update_priorities(ctx);
        let types = self.worker_types_this_round();

        // Greedy selection by (priority, deficit, allocation), per type.
        let mut left: Vec<u32> = (0..n_types).map(|t| ctx.cluster.gpus_of_type(t)).collect();
        let mut chosen: Vec<Vec<(JobId, u32)>> = vec![Vec::new(); n_types];
        let mut scheduled = std::collections::BTreeSet::new();
        let mut queue: Vec<(JobId, GpuTypeId)> = Vec::new();
        for &t in &types {
            let mut entries: Vec<(JobId, f64, f64, f64)> = self
                .books
                .iter()
                .map(|(j, b)| (*j, b.priority[t], b.deficit[t], self.allocation.get(j).map_or(0.0, |x| x[t])))
                .collect();
            entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.total_cmp(&a.2)).then(b.3.total_cmp(&a.3)));
            queue.extend(entries.into_iter().map(|(j, ..)| (j, t)));
        }
        for (j, t) in queue {
            if left[t] == 0 || scheduled.contains(&j) {
                continue;
            }
            if Self::throughput(&ctx.jobs[j], ctx.cluster, ctx.states[j].work_done, t) <= 0.0 {
                continue;
            }
            let sf = ctx.jobs[j].requested_gpus();
            if sf > left[t] {
                continue;
            }
            left[t] -= sf;
            scheduled.insert(j);
            chosen[t].push((j, sf));
        }

        // Placement: lease extension, then strided fill, largest jobs first.
        let mut next: BTreeMap<JobId, (GpuTypeId, Vec<usize>)> = BTreeMap::new();
        for &t in &types {
            let mut jobs = chosen[t].clone();
            jobs.sort_by_key(|(_, sf)| std::cmp::Reverse(*sf)); // stable: keeps selection order within a size
            let mut servers: Vec<Vec<usize>> = self.servers_by_type[t].iter().map(|(_, ids)| ids.clone()).collect();
            let mut assigned = std::collections::BTreeSet::new();
            let mut pointer = 0usize;
            let mut sizes: Vec<u32> = jobs.iter().map(|(_, sf)| *sf).collect();
            sizes.dedup();
            for size in sizes {
                for &(j, sf) in jobs.iter().filter(|(_, sf)| *sf == size) {
                    let _ = sf;
                    if let Some((prev_type, prev_ids)) = self.current.get(&j)
                        && *prev_type == t
                        && prev_ids.iter().all(|g| !assigned.contains(g))
                    {
                        assigned.extend(prev_ids.iter().copied());
                        next.insert(j, (t, prev_ids.clone()));
                    }
                }
                for &(j, sf) in jobs.iter().filter(|(_, sf)| *sf == size) {
                    if !self.allocation.contains_key(&j) || next.contains_key(&j) {
                        continue;
                    }
                    let mut ids = Vec::with_capacity(sf as usize);
                    while ids.len() < sf as usize && pointer < servers.len() {
                        if servers[pointer].is_empty() {
                            pointer += 1;
                            continue;
                        }
                        let g = servers[pointer].remove(0);
                        if assigned.insert(g) {
                            ids.push(g);
                        }
                    }
                    if ids.len() == sf as usize {
                        next.insert(j, (t, ids));
                    } else {
                        // Cannot happen when the selection respected the
                        // type's capacity; leave the GPUs for others.
                        for g in ids {
                            assigned.remove(&g);
                        }
                    }
                }
            }
        }
        let assignments = next
            .iter()
            .map(|(j, (_, ids))| Assignment {
                job: *j,
                placement: Placement::new(ids.iter().map(|g| (self.gpu_server[*g], 1)).collect()),
            })
            .collect();
        self.current = next;
        assignments
    }

    fn on_round_end(&mut self, _ctx: &RoundContext<'_>, ran: &[RanJob], _end: SimTime) {
        for r in ran {
            if let Some(book) = self.books.get_mut(&r.job) {
                book.time_so_far[r.gpu_type] += r.seconds;
                self.worker_time_so_far[r.gpu_type] += r.seconds;
            }
        }
    }

    fn on_completion(&mut self, job: JobId, _now: SimTime) {
        self.books.remove(&job);
        self.current.remove(&job);
        self.need_update = true;
    }
}

/// Inputs shared by the allocation LPs; rows are jobs, columns GPU types.
pub struct LpInput<'a> {
    /// Throughputs the objective sees (all ones for agnostic policies).
    pub throughputs: &'a [Vec<f64>],
    /// Real throughputs (for normalisations).
    pub real_throughputs: &'a [Vec<f64>],
    /// GPUs per job.
    pub scale_factors: &'a [f64],
    /// Priority weights.
    pub weights: &'a [f64],
    /// GPUs per type.
    pub capacity: &'a [f64],
}

/// Variables `x[j][t]` with Gavel's base constraints:
/// `x ≥ 0`, `Σ_t x[j][t] ≤ 1`, `Σ_j sf_j x[j][t] ≤ N_t`.
fn base_model(input: &LpInput<'_>) -> (Model, Vec<Vec<Var>>) {
    let mut model = Model::new();
    let n_types = input.capacity.len();
    let x: Vec<Vec<Var>> = input
        .throughputs
        .iter()
        .map(|_| (0..n_types).map(|_| model.continuous(0.0, f64::INFINITY)).collect())
        .collect();
    for row in &x {
        model.le(row.iter().map(|v| (*v, 1.0)).collect(), 1.0);
    }
    for t in 0..n_types {
        model.le(x.iter().zip(input.scale_factors).map(|(row, sf)| (row[t], *sf)).collect(), input.capacity[t]);
    }
    (model, x)
}

fn extract(solution: &nimbus_solve::Solution, x: &[Vec<Var>]) -> Vec<Vec<f64>> {
    x.iter().map(|row| row.iter().map(|v| solution.value(*v).clamp(0.0, 1.0)).collect()).collect()
}

/// An allocation giving every job an equal share: the fallback when a solver
/// fails (these LPs are always feasible) and FTF's isolated baseline.
fn equal_share(input: &LpInput<'_>) -> Vec<Vec<f64>> {
    // Each job gets 1/n of every type's GPUs (in units of its scale factor),
    // scaled down so that its time fractions sum to at most 1.
    let n = input.throughputs.len() as f64;
    input
        .scale_factors
        .iter()
        .map(|sf| {
            let fractions: Vec<f64> = input.capacity.iter().map(|c| c / (n * sf)).collect();
            let total: f64 = fractions.iter().sum();
            let scale = if total > 1.0 { 1.0 / total } else { 1.0 };
            fractions.into_iter().map(|f| f * scale).collect()
        })
        .collect()
}

/// Solutions of earlier allocation LPs keyed by their exact inputs. The
/// solver is deterministic, so an LP seen before is answered with the same
/// bits without solving it again; the heterogeneity-agnostic max-min LP in
/// particular depends only on the jobs' scale factors, weights and runnable
/// types, which repeat across allocations.
#[derive(Debug, Default)]
pub struct LpMemo {
    solutions: BTreeMap<Vec<u64>, Vec<Vec<f64>>>,
}

/// Entries kept before the memo starts over (each holds one allocation).
const LP_MEMO_ENTRIES: usize = 256;

impl LpMemo {
    fn key(tag: u64, parts: &[&[f64]], rows: &[&[Vec<f64>]]) -> Vec<u64> {
        let mut key = vec![tag];
        for part in parts {
            key.push(part.len() as u64);
            key.extend(part.iter().map(|v| v.to_bits()));
        }
        for matrix in rows {
            key.push(matrix.len() as u64);
            for row in *matrix {
                key.push(row.len() as u64);
                key.extend(row.iter().map(|v| v.to_bits()));
            }
        }
        key
    }

    fn get_or(&mut self, key: Vec<u64>, solve: impl FnOnce(&mut Self) -> Vec<Vec<f64>>) -> Vec<Vec<f64>> {
        if let Some(x) = self.solutions.get(&key) {
            return x.clone();
        }
        let x = solve(self);
        if self.solutions.len() >= LP_MEMO_ENTRIES {
            self.solutions.clear();
        }
        self.solutions.insert(key, x.clone());
        x
    }
}

/// Max-min fairness (`max_min_fairness[_perf]`).
pub fn max_min_fairness(input: &LpInput<'_>, perf: bool) -> Vec<Vec<f64>> {
    max_min_fairness_memo(input, perf, &mut LpMemo::default())
}

/// [`max_min_fairness`] answering LPs seen before from `memo`.
pub fn max_min_fairness_memo(input: &LpInput<'_>, perf: bool, memo: &mut LpMemo) -> Vec<Vec<f64>> {
    // What the LP reads: the agnostic one never looks at real throughputs.
    let key = if perf {
        LpMemo::key(
            1,
            &[input.scale_factors, input.weights, input.capacity],
            &[input.throughputs, input.real_throughputs],
        )
    } else {
        LpMemo::key(0, &[input.scale_factors, input.weights, input.capacity], &[input.throughputs])
    };
    memo.get_or(key, |memo| solve_max_min_fairness(input, perf, memo))
}

fn solve_max_min_fairness(input: &LpInput<'_>, perf: bool, memo: &mut LpMemo) -> Vec<Vec<f64>> {
    let n_jobs = input.throughputs.len();
    let iso: Vec<f64> = if perf {
        // Normalise by the throughput under the agnostic allocation.
        let ones: Vec<Vec<f64>> = input
            .real_throughputs
            .iter()
            .map(|row| row.iter().map(|t| if *t > 0.0 { 1.0 } else { 0.0 }).collect())
            .collect();
        let agnostic = max_min_fairness_memo(&LpInput { throughputs: &ones, ..*input }, false, memo);
        (0..n_jobs)
            .map(|j| {
                let v: f64 = input.real_throughputs[j].iter().zip(&agnostic[j]).map(|(t, x)| t * x).sum();
                if v > 0.0 { v } else { 1.0 }
            })
            .collect()
    } else {
        vec![1.0; n_jobs]
    };
    let (mut model, x) = base_model(input);
    let z = model.continuous(f64::NEG_INFINITY, f64::INFINITY);
    for j in 0..n_jobs {
        let scale = input.scale_factors[j] / (input.weights[j] * iso[j]);
        let mut terms: Vec<(Var, f64)> =
            x[j].iter().zip(&input.throughputs[j]).filter(|(_, t)| **t > 0.0).map(|(v, t)| (*v, t * scale)).collect();
        terms.push((z, -1.0));
        model.ge(terms, 0.0);
    }
    model.objective_term(z, 1.0);
    match model.solve(Sense::Maximise, &SolveOptions::default()) {
        Ok(s) => extract(&s, &x),
        Err(_) => equal_share(input),
    }
}

/// Max sum of throughputs (`max_sum_throughput_perf`).
pub fn max_sum_throughput(input: &LpInput<'_>) -> Vec<Vec<f64>> {
    let (mut model, x) = base_model(input);
    for (row, tputs) in x.iter().zip(input.real_throughputs) {
        for (v, t) in row.iter().zip(tputs) {
            model.objective_term(*v, *t);
        }
    }
    match model.solve(Sense::Maximise, &SolveOptions::default()) {
        Ok(s) => extract(&s, &x),
        Err(_) => equal_share(input),
    }
}

/// Finish-time fairness: bisection on ρ over LP feasibility.
pub fn finish_time_fairness(input: &LpInput<'_>, elapsed_s: &[f64], remaining: &[f64]) -> Vec<Vec<f64>> {
    let n_jobs = input.throughputs.len();
    // Throughput on an equal 1/n share of every type.
    let share = equal_share_rates(input);
    let isolated_s: Vec<f64> = (0..n_jobs)
        .map(|j| elapsed_s[j] + if share[j] > 0.0 { remaining[j] / share[j] } else { f64::INFINITY })
        .collect();
    let feasible = |rho: f64, final_solve: bool| -> Option<Vec<Vec<f64>>> {
        let (mut model, x) = base_model(input);
        for j in 0..n_jobs {
            let budget = rho * isolated_s[j] - elapsed_s[j];
            if budget.is_nan() || budget <= 0.0 || budget.is_infinite() {
                if isolated_s[j].is_infinite() {
                    continue; // a job no share can run is unconstrained
                }
                return None;
            }
            let needed = remaining[j] / budget;
            let terms: Vec<(Var, f64)> =
                x[j].iter().zip(&input.throughputs[j]).filter(|(_, t)| **t > 0.0).map(|(v, t)| (*v, *t)).collect();
            if terms.is_empty() {
                return None;
            }
            model.ge(terms, needed);
        }
        let result = if final_solve {
            model.solve(Sense::Maximise, &SolveOptions::default())
        } else {
            model.solve_simplex(Sense::Maximise, &SolveOptions::default())
        };
        result.ok().map(|s| extract(&s, &x))
    };
    let mut lo = (0..n_jobs).map(|j| elapsed_s[j] / isolated_s[j]).filter(|r| r.is_finite()).fold(0.0, f64::max);
    let mut hi = lo.max(1.0);
    let mut found = false;
    for _ in 0..60 {
        if feasible(hi, false).is_some() {
            found = true;
            break;
        }
        lo = hi;
        hi *= 2.0;
    }
    if !found {
        return equal_share(input);
    }
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if feasible(mid, false).is_some() {
            hi = mid
        } else {
            lo = mid
        }
        if hi - lo <= 1e-6 * hi {
            break;
        }
    }
    feasible(hi * (1.0 + 1e-9), true).unwrap_or_else(|| equal_share(input))
}

/// Each job's throughput under [`equal_share`].
fn equal_share_rates(input: &LpInput<'_>) -> Vec<f64> {
    equal_share(input)
        .iter()
        .zip(input.throughputs)
        .map(|(x, tputs)| x.iter().zip(tputs).map(|(f, t)| f * t).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(t: &'a [Vec<f64>], sf: &'a [f64], w: &'a [f64], cap: &'a [f64]) -> LpInput<'a> {
        LpInput { throughputs: t, real_throughputs: t, scale_factors: sf, weights: w, capacity: cap }
    }

    /// Two jobs, one GPU of each of two types; job 0 runs 4× faster on type 0,
    /// job 1 equally on both. Agnostic shares are ½ of each type, so
    /// T^iso = (2.5, 1). Job 1 can never exceed 1 (its time sums to ≤ 1), so
    /// the optimum is min = 1: job 1 runs all the time and job 0 keeps a
    /// normalised throughput ≥ 1, i.e. 4·x00 + x01 ≥ 2.5, which forces job 0
    /// onto type 0 more than job 1.
    #[test]
    fn las_perf_puts_jobs_where_they_run_fastest() {
        let t = vec![vec![4.0, 1.0], vec![1.0, 1.0]];
        let x = max_min_fairness(&input(&t, &[1.0, 1.0], &[1.0, 1.0], &[1.0, 1.0]), true);
        assert!((x[1][0] + x[1][1] - 1.0).abs() < 1e-3, "{x:?}");
        assert!(4.0 * x[0][0] + x[0][1] >= 2.5 - 1e-3, "{x:?}");
        assert!(x[0][0] > x[1][0], "{x:?}");
    }

    /// Three single-GPU jobs on two GPUs of one type: each gets 2/3 of the time.
    #[test]
    fn las_agnostic_splits_evenly() {
        let t = vec![vec![1.0]; 3];
        let x = max_min_fairness(&input(&t, &[1.0; 3], &[1.0; 3], &[2.0]), false);
        for row in &x {
            assert!((row[0] - 2.0 / 3.0).abs() < 1e-4, "{x:?}");
        }
    }

    /// A 2-GPU job and a 1-GPU job on 2 GPUs: max-min on sf·x equalises
    /// 2·x0 = x1 with 2·x0 + x1 ≤ 2, so x0 = 1/2 and x1 = 1.
    #[test]
    fn las_accounts_for_scale_factors() {
        let t = vec![vec![1.0], vec![1.0]];
        let x = max_min_fairness(&input(&t, &[2.0, 1.0], &[1.0, 1.0], &[2.0]), false);
        assert!((x[0][0] - 0.5).abs() < 1e-4 && (x[1][0] - 1.0).abs() < 1e-4, "{x:?}");
    }

    /// The memo answers an LP it has seen with the solver's bits and keys on
    /// everything the LP reads: the agnostic LP ignores real throughputs, the
    /// heterogeneity-aware one does not.
    #[test]
    fn memo_returns_the_solvers_bits_and_keys_on_what_the_lp_reads() {
        let t = vec![vec![4.0, 1.0], vec![1.0, 1.0], vec![2.0, 0.0]];
        let (sf, w, cap) = ([1.0; 3], [1.0; 3], [1.0, 1.0]);
        let fresh = max_min_fairness(&input(&t, &sf, &w, &cap), true);
        let mut memo = LpMemo::default();
        let first = max_min_fairness_memo(&input(&t, &sf, &w, &cap), true, &mut memo);
        assert_eq!(memo.solutions.len(), 2, "the perf LP and the agnostic LP inside it");
        let again = max_min_fairness_memo(&input(&t, &sf, &w, &cap), true, &mut memo);
        let bits = |x: &[Vec<f64>]| x.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fresh), bits(&first));
        assert_eq!(bits(&first), bits(&again));
        assert_eq!(memo.solutions.len(), 2);
        // Other real throughputs with the same runnable types: the agnostic
        // LP is a hit, the aware one a new solve.
        let faster = vec![vec![8.0, 1.0], vec![1.0, 1.0], vec![2.0, 0.0]];
        let other = max_min_fairness_memo(&input(&faster, &sf, &w, &cap), true, &mut memo);
        assert_eq!(memo.solutions.len(), 3);
        assert_eq!(bits(&other), bits(&max_min_fairness(&input(&faster, &sf, &w, &cap), true)));
    }

    /// Max sum throughput gives the only GPU to the faster job.
    #[test]
    fn max_sum_throughput_prefers_fast_jobs() {
        let t = vec![vec![3.0], vec![1.0]];
        let x = max_sum_throughput(&input(&t, &[1.0, 1.0], &[1.0, 1.0], &[1.0]));
        assert!((x[0][0] - 1.0).abs() < 1e-4 && x[1][0] < 1e-4, "{x:?}");
    }

    /// FTF with the same heterogeneity: shares of ½ per type give T^eq =
    /// (2.5, 1) and, with 100 steps left and no time elapsed, ρ0 = 2.5 /
    /// (4·x00 + x01) and ρ1 = 1 / (x10 + x11). Job 1 cannot beat ρ = 1, so
    /// the optimum is max ρ = 1 with job 1 running all the time and job 0
    /// keeping 4·x00 + x01 ≥ 2.5.
    #[test]
    fn ftf_equalises_finish_time_ratios() {
        let t = vec![vec![4.0, 1.0], vec![1.0, 1.0]];
        let x = finish_time_fairness(&input(&t, &[1.0, 1.0], &[1.0, 1.0], &[1.0, 1.0]), &[0.0, 0.0], &[100.0, 100.0]);
        assert!((x[1][0] + x[1][1] - 1.0).abs() < 1e-3, "{x:?}");
        assert!(4.0 * x[0][0] + x[0][1] >= 2.5 - 1e-3, "{x:?}");
        for t in 0..2 {
            assert!(x[0][t] + x[1][t] <= 1.0 + 1e-6, "{x:?}");
        }
    }
}
