//! QLM (SoCC'24): queue management for SLO-oriented LLM serving.
//!
//! Paper: "Queue Management for SLO-Oriented Large Language Model Serving"
//! (Patke et al., SoCC'24); public code QLM-project/QLM.
//!
//! Mechanism, as modelled here:
//! - Waiting requests are kept in **request groups** keyed by (model, SLO
//!   class), FIFO inside; a group takes at most `group_size` requests and
//!   is closed once a request of it has been pulled.
//! - Each replica has a **virtual queue** (VQ) of groups. A new group goes
//!   to the VQ where it would finish soonest by the estimator among those
//!   whose replica holds (or will hold) its model; to one needing a model
//!   load only when no other would meet the group's objective and that one
//!   would (`placement = "rwt"`, the load-balancing and model-swapping
//!   LSOs across heterogeneous GPUs), or to a uniformly random VQ
//!   (`"random"`, the public code's choice).
//! - The **request-waiting-time estimator** walks a VQ: each group adds
//!   `n·μ/Θ` (`n` requests, `μ` mean output tokens of its model learned
//!   online from completions, `Θ` the replica's output tokens/s for that
//!   model, see below) and a model load when it needs a different model than the
//!   group before it. `estimator = "mean"` is the public code's form;
//!   `"percentile"` treats output lengths as random and plans on the
//!   `percentile` of `N(Σn·μ/Θ, Σn·σ²/Θ²)`.
//! - **Violation check** on every arrival: if a group's estimated start
//!   exceeds its head request's remaining slack, the VQ is **reordered**:
//!   by earliest due time (`reorder = "edf"`, the default) or by a MILP
//!   over every VQ at once (`"milp"`: groups to (replica, slot), model-load
//!   transitions between adjacent slots, minimising total tardiness; warm
//!   started from EDF so it is never worse by its own objective, and EDF is
//!   used when there are more than `milp_max_groups` groups).
//! - **Request pulling with back-pressure**: a replica takes the head
//!   request of its VQ's head group only while it has fewer than
//!   `pull_limit` requests and the KV blocks to admit what it holds.
//! - **Eviction**: when the head request does not fit and a running
//!   request is due more than `evict_margin_s` later, that request is
//!   preempted by recomputation and waits behind the urgent one (the
//!   replica's queue is in due order).
//! - **Model swapping**: when the head group needs a model other than the
//!   loaded one, the replica stops pulling, drains, and loads the model
//!   (weights / load bandwidth + a fixed start-up).
//! - `Θ` is what each replica measures per model (output tokens per busy
//!   second), standing for the public code's per-model profiled
//!   throughput; for a model a replica has not run yet, another replica's
//!   measurement scaled by the engine's ratio of the two, or at first the
//!   engine's decode throughput at a full batch.
//!
//! Deviations: the public code floors SLOs to 100 s for group keys and
//! remaining time; here remaining time is exact. Its MILP references
//! undefined names, so its runs use EDF; ours solves. Eviction always
//! recomputes (no KV swap). Baselines: FCFS (vLLM) and EDF at the replica
//! queue, behind a least-outstanding router.

use std::collections::{BTreeMap, VecDeque};

use nimbus_sim::SimRng;
use nimbus_sim::output::{Better, Metric};
use nimbus_solve::{Model, Sense, SolveOptions};

use crate::engine::{Dispatcher, World};
use crate::request::{ReqId, RequestState};

/// How the waiting time of queued work is estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Estimator {
    /// Mean output length only.
    Mean,
    /// Normal approximation at this many standard deviations.
    Percentile(f64),
}

/// How a violated VQ is reordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reorder {
    /// Earliest due time first.
    Edf,
    /// The assignment MILP over all VQs (EDF above `max_groups`).
    Milp {
        /// Largest number of groups given to the solver.
        max_groups: usize,
    },
}

/// Where a new group goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The VQ where it would finish soonest.
    Rwt,
    /// A uniformly random eligible VQ.
    Random,
}

/// QLM's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QlmConfig {
    /// Waiting-time estimator.
    pub estimator: Estimator,
    /// Reordering.
    pub reorder: Reorder,
    /// Group placement.
    pub placement: Placement,
    /// Requests per group.
    pub group_size: usize,
    /// Most requests a replica holds (0: the scheduler's `max_seqs`).
    pub pull_limit: usize,
    /// Output tokens assumed before a model has completions.
    pub prior_output_mean: f64,
    /// Evict running requests due more than `evict_margin_s` after an
    /// urgent head request that does not fit.
    pub evict: bool,
    /// See `evict`.
    pub evict_margin_s: f64,
}

impl Default for QlmConfig {
    fn default() -> Self {
        QlmConfig {
            estimator: Estimator::Mean,
            reorder: Reorder::Edf,
            placement: Placement::Rwt,
            group_size: 16,
            pull_limit: 0,
            prior_output_mean: 100.0,
            evict: true,
            evict_margin_s: 60.0,
        }
    }
}

#[derive(Debug, Clone)]
struct Group {
    model: u16,
    requests: VecDeque<ReqId>,
    closed: bool,
}

/// Running mean and variance (Welford).
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }
}

/// The QLM dispatcher.
pub struct Qlm {
    config: QlmConfig,
    groups: Vec<Group>,
    vqs: Vec<Vec<usize>>,
    open: BTreeMap<(u16, u16), usize>,
    outputs: Vec<Moments>,
    rng: SimRng,
    predicted_wait_s: Vec<Option<f64>>,
    /// Measured output tokens per busy second, by (replica, model).
    throughput: BTreeMap<(u32, u16), f64>,
    reorders: u64,
    milp_solves: u64,
    evictions: u64,
}

impl Qlm {
    /// A queue manager for `replicas` replicas, `models` models and
    /// `requests` requests.
    pub fn new(config: QlmConfig, replicas: usize, models: usize, requests: usize, rng: SimRng) -> Self {
        Qlm {
            config,
            groups: Vec::new(),
            vqs: vec![Vec::new(); replicas],
            open: BTreeMap::new(),
            outputs: vec![Moments::default(); models],
            rng,
            predicted_wait_s: vec![None; requests],
            throughput: BTreeMap::new(),
            reorders: 0,
            milp_solves: 0,
            evictions: 0,
        }
    }

    /// (mean, variance) of output tokens of a model.
    fn output_moments(&self, model: u16) -> (f64, f64) {
        let m = self.outputs[model as usize];
        if m.n < 10.0 {
            let mean = self.config.prior_output_mean;
            (mean, mean * mean)
        } else {
            (m.mean, m.m2 / (m.n - 1.0))
        }
    }

    /// Seconds of work of `n` requests of `model` on a replica: (mean, variance).
    fn work(&self, world: &World, replica: u32, model: u16, n: usize) -> Option<(f64, f64)> {
        let d = world.deployment(replica, model)?;
        let (mu, var) = self.output_moments(model);
        let theta = self.theta(world, replica, model, d.decode_tokens_per_s).max(1e-9);
        Some((n as f64 * mu / theta, n as f64 * var / (theta * theta)))
    }

    /// Output tokens/s of `model` on `replica`: measured there; else
    /// measured on another replica and scaled by the engine's ratio of the
    /// two; else the engine's full-batch decode throughput.
    fn theta(&self, world: &World, replica: u32, model: u16, engine_estimate: f64) -> f64 {
        if let Some(&t) = self.throughput.get(&(replica, model)) {
            return t;
        }
        for (&(other, m), &t) in &self.throughput {
            if m == model
                && let Some(d) = world.deployment(other, model)
            {
                return t * engine_estimate / d.decode_tokens_per_s.max(1e-9);
            }
        }
        engine_estimate
    }

    fn estimate(&self, mean: f64, var: f64) -> f64 {
        match self.config.estimator {
            Estimator::Mean => mean,
            Estimator::Percentile(z) => mean + z * var.sqrt(),
        }
    }

    /// Work already on the replica (held requests) and its model.
    fn backlog(&self, world: &World, replica: u32) -> (f64, f64, Option<u16>) {
        let r = &world.replicas[replica as usize];
        let held = r.outstanding();
        let (mean, var) = match r.model {
            Some(m) if held > 0 => self.work(world, replica, m, held).unwrap_or((0.0, 0.0)),
            _ => (0.0, 0.0),
        };
        let loading = r.loading_until.map_or(0.0, |t| t.saturating_since(world.now).as_secs_f64());
        (mean + loading, var, r.model)
    }

    /// Estimated start of each group of a VQ (s from now), in order.
    fn starts(&self, world: &World, replica: u32) -> Vec<f64> {
        let (mut mean, mut var, mut model) = self.backlog(world, replica);
        let mut out = Vec::with_capacity(self.vqs[replica as usize].len());
        for &g in &self.vqs[replica as usize] {
            let group = &self.groups[g];
            if model != Some(group.model) {
                mean += world.deployment(replica, group.model).map_or(f64::INFINITY, |d| d.load_s);
                model = Some(group.model);
            }
            out.push(self.estimate(mean, var));
            let (m, v) = self.work(world, replica, group.model, group.requests.len()).unwrap_or((f64::INFINITY, 0.0));
            mean += m;
            var += v;
        }
        out
    }

    fn slack_s(&self, world: &World, group: usize) -> f64 {
        self.groups[group].requests.front().map_or(f64::INFINITY, |&r| {
            let due = world.requests[r as usize].due;
            if due == nimbus_sim::SimTime::MAX { f64::INFINITY } else { due.saturating_since(world.now).as_secs_f64() }
        })
    }

    fn due(&self, world: &World, group: usize) -> nimbus_sim::SimTime {
        self.groups[group].requests.front().map_or(nimbus_sim::SimTime::MAX, |&r| world.requests[r as usize].due)
    }

    fn violated(&self, world: &World, replica: u32) -> bool {
        self.starts(world, replica).iter().zip(&self.vqs[replica as usize]).any(|(s, &g)| *s > self.slack_s(world, g))
    }

    fn place(&mut self, world: &World, model: u16, slack: f64) -> Option<u32> {
        let eligible: Vec<u32> =
            world.replicas.iter().filter(|r| world.deployment(r.id, model).is_some()).map(|r| r.id).collect();
        if eligible.is_empty() {
            return None;
        }
        Some(match self.config.placement {
            Placement::Random => eligible[self.rng.index(eligible.len())],
            Placement::Rwt => {
                // (estimated end, needs a model load, replica) per VQ.
                let mut options = Vec::with_capacity(eligible.len());
                for &r in &eligible {
                    let starts = self.starts(world, r);
                    let (mut end, last_model) = match self.vqs[r as usize].last() {
                        Some(&g) => {
                            let group = &self.groups[g];
                            let w = self.work(world, r, group.model, group.requests.len()).map_or(0.0, |w| w.0);
                            (starts.last().copied().unwrap_or(0.0) + w, Some(group.model))
                        }
                        None => {
                            let (m, _, model) = self.backlog(world, r);
                            (m, model)
                        }
                    };
                    let load = last_model != Some(model);
                    if load {
                        end += world.deployment(r, model).map_or(f64::INFINITY, |d| d.load_s);
                    }
                    end += self.work(world, r, model, 1).map_or(f64::INFINITY, |w| w.0);
                    options.push((end, load, r));
                }
                let best = |swap_ok: bool| {
                    options.iter().filter(|o| swap_ok || !o.1).min_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)))
                };
                // Swap models only when no replica holding the model would
                // meet the group's objective and a swap would.
                match (best(false), best(true)) {
                    (Some(keep), Some(any)) if keep.0 > slack && any.0 <= slack => any.2,
                    (Some(keep), _) => keep.2,
                    (None, Some(any)) => any.2,
                    (None, None) => eligible[0],
                }
            }
        })
    }

    fn reorder(&mut self, world: &World, replica: u32) {
        self.reorders += 1;
        if let Reorder::Milp { max_groups } = self.config.reorder {
            let total: usize = self.vqs.iter().map(Vec::len).sum();
            if (2..=max_groups).contains(&total) && self.solve_milp(world) {
                return;
            }
        }
        let mut vq = std::mem::take(&mut self.vqs[replica as usize]);
        vq.sort_by_key(|&g| (self.due(world, g), g));
        self.vqs[replica as usize] = vq;
    }

    /// Pulls requests into `replica` while it has room; loads the head
    /// group's model when the replica is empty and runs another.
    fn pull(&mut self, replica: u32, world: &mut World) {
        let limit =
            if self.config.pull_limit == 0 { world.fleet.scheduler.max_seqs as usize } else { self.config.pull_limit };
        loop {
            let vq = &mut self.vqs[replica as usize];
            while let Some(&g) = vq.first() {
                if self.groups[g].requests.is_empty() {
                    vq.remove(0);
                    self.open.retain(|_, open| *open != g);
                } else {
                    break;
                }
            }
            let Some(&g) = self.vqs[replica as usize].first() else { return };
            let r = &world.replicas[replica as usize];
            if r.loading_until.is_some() {
                return;
            }
            let model = self.groups[g].model;
            if r.model != Some(model) {
                if r.is_empty() {
                    world.start_load(replica, model);
                }
                return;
            }
            let Some(&id) = self.groups[g].requests.front() else { return };
            let waiting_blocks: u32 = r.waiting.iter().map(|&w| r.admission_blocks(&world.requests[w as usize])).sum();
            let need = waiting_blocks + r.admission_blocks(&world.requests[id as usize]);
            let full = r.outstanding() >= limit || (!r.waiting.is_empty() && need > r.free_blocks);
            if full {
                // Eviction: an urgent head request displaces the running
                // request due latest; it then waits ahead of it.
                let due = world.requests[id as usize].due;
                let margin = nimbus_sim::SimDuration::from_secs_f64(self.config.evict_margin_s);
                let r = &mut world.replicas[replica as usize];
                if self.config.evict && r.evict_for(due, margin, &mut world.requests).is_some() {
                    self.evictions += 1;
                    self.groups[g].requests.pop_front();
                    self.groups[g].closed = true;
                    world.enqueue(replica, id);
                }
                return;
            }
            self.groups[g].requests.pop_front();
            self.groups[g].closed = true;
            world.enqueue(replica, id);
        }
    }

    /// The MILP of the public code's design: returns false (keeping the
    /// current order) when the solver fails.
    fn solve_milp(&mut self, world: &World) -> bool {
        self.milp_solves += 1;
        let replicas: Vec<u32> = (0..self.vqs.len() as u32).collect();
        let groups: Vec<usize> = self.vqs.iter().flatten().copied().collect();
        let n = groups.len();
        // Work of each group on each replica (None: cannot run there).
        let work: Vec<Vec<Option<f64>>> = groups
            .iter()
            .map(|&g| {
                let group = &self.groups[g];
                replicas
                    .iter()
                    .map(|&r| self.work(world, r, group.model, group.requests.len()).map(|(m, v)| self.estimate(m, v)))
                    .collect()
            })
            .collect();
        let deadlines: Vec<f64> = groups.iter().map(|&g| self.slack_s(world, g).min(1e7)).collect();
        let mut model = Model::new();
        let big = 1e7;
        let mut x: BTreeMap<(usize, usize, usize), nimbus_solve::Var> = BTreeMap::new();
        for (gi, w) in work.iter().enumerate() {
            for (ri, wr) in w.iter().enumerate() {
                if wr.is_some() {
                    for s in 0..n {
                        x.insert((gi, ri, s), model.binary());
                    }
                }
            }
        }
        let completion: Vec<Vec<nimbus_solve::Var>> =
            replicas.iter().map(|_| (0..n).map(|_| model.continuous(0.0, big)).collect()).collect();
        let tardiness: Vec<nimbus_solve::Var> = (0..n).map(|_| model.continuous(0.0, big)).collect();
        for gi in 0..n {
            let terms: Vec<_> = x.iter().filter(|(k, _)| k.0 == gi).map(|(_, v)| (*v, 1.0)).collect();
            model.eq(terms, 1.0);
        }
        for ri in 0..replicas.len() {
            for s in 0..n {
                let here: Vec<_> = x.iter().filter(|(k, _)| k.1 == ri && k.2 == s).map(|(_, v)| (*v, 1.0)).collect();
                model.le(here.clone(), 1.0);
                if s + 1 < n {
                    let mut terms = here;
                    terms.extend(x.iter().filter(|(k, _)| k.1 == ri && k.2 == s + 1).map(|(_, v)| (*v, -1.0)));
                    model.ge(terms, 0.0);
                }
            }
            let (base, _, current) = self.backlog(world, ri as u32);
            for s in 0..n {
                // C[r,s] ≥ C[r,s−1] + Σ_g W·x + load time on a model change.
                let mut terms = vec![(completion[ri][s], 1.0)];
                let mut rhs = 0.0;
                if s == 0 {
                    rhs = base;
                } else {
                    terms.push((completion[ri][s - 1], -1.0));
                }
                for gi in 0..n {
                    if let (Some(w), Some(&v)) = (work[gi][ri], x.get(&(gi, ri, s))) {
                        let mut cost = w;
                        if s == 0 && current != Some(self.groups[groups[gi]].model) {
                            cost +=
                                world.deployment(ri as u32, self.groups[groups[gi]].model).map_or(0.0, |d| d.load_s);
                        }
                        terms.push((v, -cost));
                    }
                }
                model.ge(terms, rhs);
                if s > 0 {
                    // A load between adjacent slots holding different models.
                    for gi in 0..n {
                        for gj in 0..n {
                            let (mi, mj) = (self.groups[groups[gi]].model, self.groups[groups[gj]].model);
                            if gi == gj || mi == mj {
                                continue;
                            }
                            if let (Some(&a), Some(&b)) = (x.get(&(gi, ri, s)), x.get(&(gj, ri, s - 1))) {
                                let load = world.deployment(ri as u32, mi).map_or(0.0, |d| d.load_s);
                                // C[r,s] − C[r,s−1] ≥ load·(x_a + x_b − 1) + W·x_a
                                let w = work[gi][ri].unwrap_or(0.0);
                                model.ge(
                                    vec![
                                        (completion[ri][s], 1.0),
                                        (completion[ri][s - 1], -1.0),
                                        (a, -(load + w)),
                                        (b, -load),
                                    ],
                                    -load,
                                );
                            }
                        }
                    }
                }
                for gi in 0..n {
                    if let Some(&v) = x.get(&(gi, ri, s)) {
                        // T_g ≥ C[r,s] − D_g − M(1 − x)
                        model
                            .ge(vec![(tardiness[gi], 1.0), (completion[ri][s], -1.0), (v, -big)], -deadlines[gi] - big);
                    }
                }
            }
        }
        for &t in &tardiness {
            model.objective_term(t, 1.0);
        }
        for row in &completion {
            for &c in row {
                model.objective_term(c, 1e-6);
            }
        }
        // Warm start: every VQ in EDF order, on the replica it is on.
        let mut start = vec![0.0; model.num_vars()];
        for (ri, vq) in self.vqs.iter().enumerate() {
            let mut order = vq.clone();
            order.sort_by_key(|&g| (self.due(world, g), g));
            let (base, _, current) = self.backlog(world, ri as u32);
            let (mut clock, mut loaded) = (base, current);
            for s in 0..n {
                if let Some(&g) = order.get(s) {
                    let gi = groups.iter().position(|&x| x == g).unwrap_or(0);
                    let m = self.groups[g].model;
                    if loaded != Some(m) {
                        clock += world.deployment(ri as u32, m).map_or(0.0, |d| d.load_s);
                        loaded = Some(m);
                    }
                    clock += work[gi][ri].unwrap_or(0.0);
                    if let Some(v) = x.get(&(gi, ri, s)) {
                        start[v.index()] = 1.0;
                    }
                    start[tardiness[gi].index()] = (clock - deadlines[gi]).max(0.0);
                }
                start[completion[ri][s].index()] = clock;
            }
        }
        let options = SolveOptions { node_limit: Some(300), mip_gap: 1e-3 };
        let Ok(solution) = model.solve_from(Sense::Minimise, &options, &start) else { return false };
        let mut placed: Vec<Vec<(usize, usize)>> = vec![Vec::new(); replicas.len()];
        for (&(gi, ri, s), &v) in &x {
            if solution.value(v) > 0.5 {
                placed[ri].push((s, groups[gi]));
            }
        }
        if placed.iter().map(Vec::len).sum::<usize>() != n {
            return false;
        }
        for (ri, mut slots) in placed.into_iter().enumerate() {
            slots.sort_unstable();
            self.vqs[ri] = slots.into_iter().map(|(_, g)| g).collect();
        }
        true
    }
}

/// The metrics QLM adds to a run's output.
pub const QLM_METRICS: &[&str] = &["rwt_error_median", "qlm_reorders", "qlm_milp_solves", "qlm_evictions"];

impl Dispatcher for Qlm {
    fn on_arrival(&mut self, id: ReqId, world: &mut World) -> Vec<u32> {
        let spec = world.requests[id as usize].spec;
        let key = (spec.model, spec.class);
        let open = self.open.get(&key).copied().filter(|&g| {
            let group = &self.groups[g];
            !group.closed && group.requests.len() < self.config.group_size
        });
        let (group, replica) = match open {
            Some(g) => (g, self.vqs.iter().position(|vq| vq.contains(&g)).map(|r| r as u32)),
            None => {
                let due = world.requests[id as usize].due;
                let slack = if due == nimbus_sim::SimTime::MAX {
                    f64::INFINITY
                } else {
                    due.saturating_since(world.now).as_secs_f64()
                };
                let Some(r) = self.place(world, spec.model, slack) else {
                    world.requests[id as usize].rejected = Some("no replica can hold the model");
                    return Vec::new();
                };
                let g = self.groups.len();
                self.groups.push(Group { model: spec.model, requests: VecDeque::new(), closed: false });
                self.vqs[r as usize].push(g);
                self.open.insert(key, g);
                (g, Some(r))
            }
        };
        let Some(replica) = replica else { return Vec::new() };
        self.groups[group].requests.push_back(id);
        if self.violated(world, replica) {
            self.reorder(world, replica);
        }
        if let Some(pos) = self.vqs[replica as usize].iter().position(|&g| g == group) {
            let starts = self.starts(world, replica);
            let ahead = self.groups[group].requests.len() - 1;
            let within = self.work(world, replica, spec.model, ahead).map_or(0.0, |w| self.estimate(w.0, w.1));
            self.predicted_wait_s[id as usize] = Some(starts[pos] + within);
        }
        let touched: Vec<u32> = (0..self.vqs.len() as u32).collect();
        for &r in &touched {
            self.pull(r, world);
        }
        touched
    }

    fn on_ready(&mut self, replica: u32, world: &mut World) {
        let r = &world.replicas[replica as usize];
        if let Some(model) = r.model
            && r.served_tokens >= 500
            && r.busy_s > 0.0
        {
            self.throughput.insert((replica, model), r.served_tokens as f64 / r.busy_s);
        }
        self.pull(replica, world);
    }

    fn on_complete(&mut self, id: ReqId, world: &mut World) {
        let r = &world.requests[id as usize];
        self.outputs[r.spec.model as usize].push(r.spec.output as f64);
    }

    fn report(&self, requests: &[RequestState]) -> Vec<Metric> {
        let mut errors: Vec<f64> = requests
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let predicted = self.predicted_wait_s[i]?;
                let actual = r.scheduled?.since(r.spec.arrival).as_secs_f64();
                (actual >= 1.0).then(|| (predicted - actual).abs() / actual)
            })
            .collect();
        errors.sort_by(f64::total_cmp);
        let median = if errors.is_empty() { f64::NAN } else { errors[errors.len() / 2] };
        vec![
            Metric::new("rwt_error_median", median, Better::Lower),
            Metric::new("qlm_reorders", self.reorders as f64, Better::Neither),
            Metric::new("qlm_milp_solves", self.milp_solves as f64, Better::Neither),
            Metric::new("qlm_evictions", self.evictions as f64, Better::Neither),
        ]
    }
}
