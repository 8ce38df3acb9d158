//! Sia: heterogeneity- and adaptivity-aware scheduling by a per-round
//! configuration ILP over goodput.
//!
//! Source: Jayaram Subramanya, Arfeen, Lin, Qiao, Liu, Xing, Ganger, "Sia:
//! Heterogeneity-aware, goodput-optimized ML-cluster scheduling", SOSP 2023;
//! reference simulator `siasosp23/artifacts` (`sia-simulator/sia.py`). Sia
//! is a baseline of Hops (SoCC'24); its own baselines are Pollux, Gavel,
//! Shockwave and Themis.
//!
//! Mechanism, every 60-second round:
//! - *Configurations* per GPU type with R GPUs per server: 1, 2, 4, … GPUs
//!   below R on one server, then 1, 2, … whole servers up to 64 GPUs.
//! - *Goodput matrix*: each job's goodput (throughput × statistical
//!   efficiency at its best batch size) in every configuration it may use.
//!   A job may use at most twice the GPUs it has run with on a type (and 1
//!   GPU on a type it has never run on, valued like its cheapest known
//!   configuration): Sia explores scale-ups gradually. Each row is divided
//!   by its smallest valid entry.
//! - *Restart damping*: entries other than the job's current configuration
//!   are multiplied by `r = max(age − restarts·penalty, 0) / (age + penalty)`
//!   (1 while the job is younger than its penalty), so frequent
//!   reallocation is discouraged.
//! - *ILP*: with `A = round(G^p, 2)` (capped at 3000) and binary `X`,
//!   minimise `Σ A·X + λ_n·(jobs − ΣX)` for `p < 0` (maximise for `p > 0`)
//!   subject to one configuration per job and each type's GPU capacity.
//!   Jobs in the middle of a checkpoint-restore keep their configuration.
//!   Defaults: `p = −0.5`, `λ_n = 1.1` (Sia's `simulator_config.py`).
//! - *Placement*: jobs whose configuration did not change keep their GPUs;
//!   others take whole servers for whole-server configurations and the
//!   tightest server for the rest, largest jobs first.
//!
//! Modelled vs real: the goodput Sia's ILP sees is the job's true goodput
//! (see [`crate::goodput`]); the reference estimates it from profiles fitted
//! online (Pollux's throughput model), so our Sia has perfect knowledge of
//! every configuration it is allowed to explore. The ILP is solved exactly
//! by microlp (node-limited) where the reference uses CBC with a 1e-4 gap.
//! Configurations whose objective coefficient cannot improve the objective
//! are dropped before solving (they can never be chosen).

use std::collections::BTreeMap;

use nimbus_sim::SimTime;
use nimbus_sim::params::{ParamError, Params};
use nimbus_solve::{Model, Sense, SolveOptions, Var};

use crate::cluster::{Cluster, FreeGpus, GpuTypeId, Placement, ServerId};
use crate::job::{JobId, canonical_shape};

use super::{Assignment, Fidelity, Policy, PolicyEnv, PolicyInfo, PolicyKind, RanJob, RoundContext};

/// Registry entry.
pub const INFO: PolicyInfo = PolicyInfo {
    name: "sia",
    kind: PolicyKind::Baseline,
    fidelity: Fidelity::Validated,
    source: "Jayaram Subramanya et al., Sia, SOSP 2023 (siasosp23/artifacts)",
    summary: "goodput-based configuration ILP with adaptive batch sizes and restart damping",
    params: &["round_s", "p", "lambda_n", "node_limit"],
    build,
};

fn build(params: &Params, env: &PolicyEnv) -> Result<Box<dyn Policy>, ParamError> {
    let round_s = params.f64_in("round_s", 60.0, 1e-3..=1e7)?;
    let p = params.f64_or("p", -0.5)?;
    if p == 0.0 {
        return Err(params.error("p", "p must be non-zero (negative: fairness, positive: efficiency)"));
    }
    let lambda_n = params.f64_or("lambda_n", 1.1)?;
    let node_limit = params.u64_in("node_limit", 5000, 1..=1_000_000_000)?;
    params.finish(INFO.params)?;
    Ok(Box::new(Sia::new(&env.cluster, round_s, p, lambda_n, node_limit)))
}

/// Goodput entries at or below this count as "no allocation possible".
const ZERO_ALLOC_GAIN: f64 = 1e-4;

/// One allocation option: `gpus` GPUs of a type over `nodes` servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// GPU type.
    pub gpu_type: GpuTypeId,
    /// Servers.
    pub nodes: u32,
    /// GPUs.
    pub gpus: u32,
    /// GPUs per server of the type.
    pub per_server: u32,
}

impl Config {
    fn shape(&self) -> Vec<u32> {
        canonical_shape(self.gpus, self.per_server)
    }
}

/// Sia's configurations for every type of `cluster`.
pub fn configurations(cluster: &Cluster) -> Vec<Config> {
    let mut out = Vec::new();
    for t in 0..cluster.gpu_types.len() {
        let per_server = cluster.max_gpus_per_server(t);
        let servers = cluster.servers_of_type(t).filter(|s| s.gpus == per_server).count() as u32;
        if per_server == 0 {
            continue;
        }
        let mut g = 1;
        while g < per_server {
            out.push(Config { gpu_type: t, nodes: 1, gpus: g, per_server });
            g *= 2;
        }
        // Whole servers, up to 64 GPUs (the reference's largest configuration).
        for n in (1..=servers).take_while(|n| n * per_server <= 64) {
            out.push(Config { gpu_type: t, nodes: n, gpus: n * per_server, per_server });
        }
    }
    out
}

/// The restart penalty Sia's policy assumes per application (seconds;
/// `get_restart_penalty` in the reference, which differs from the
/// simulated checkpoint-restore times).
fn assumed_restart_penalty_s(application: &str) -> f64 {
    match application {
        a if a.contains("deepspeech") => 25.0,
        a if a.contains("imagenet") => 250.0,
        a if a.contains("cifar") => 30.0,
        a if a.contains("bert") => 120.0,
        a if a.contains("yolov3") => 45.0,
        _ => 30.0,
    }
}

/// The Sia policy.
pub struct Sia {
    round_s: f64,
    p: f64,
    lambda_n: f64,
    node_limit: u64,
    configs: Vec<Config>,
    /// Configuration each job held in the last round.
    current: BTreeMap<JobId, usize>,
    /// Largest GPU count each job has run with, per type.
    explored: BTreeMap<JobId, Vec<u32>>,
}

impl Sia {
    /// A Sia policy for `cluster`.
    pub fn new(cluster: &Cluster, round_s: f64, p: f64, lambda_n: f64, node_limit: u64) -> Self {
        Sia {
            round_s,
            p,
            lambda_n,
            node_limit,
            configs: configurations(cluster),
            current: BTreeMap::new(),
            explored: BTreeMap::new(),
        }
    }

    /// The normalised, damped goodput row of one job (ZERO_ALLOC_GAIN where
    /// the configuration is not allowed).
    fn goodput_row(&self, ctx: &RoundContext<'_>, job: JobId) -> Vec<f64> {
        let spec = &ctx.jobs[job];
        let state = &ctx.states[job];
        let n_types = ctx.cluster.gpu_types.len();
        let explored = self.explored.get(&job).cloned().unwrap_or_else(|| vec![0; n_types]);
        let max_gpus = match &spec.work {
            crate::job::Work::Adaptive { model, .. } => model.gpu_range().1,
            crate::job::Work::Steps { scale_factor, .. } => *scale_factor,
        };
        let mut row = vec![0.0; self.configs.len()];
        let mut min_known = f64::INFINITY;
        for (i, c) in self.configs.iter().enumerate() {
            let ran = explored[c.gpu_type];
            let allowed = (2 * ran).clamp(1, 64).min(max_gpus);
            if c.gpus > allowed {
                continue;
            }
            if ran > 0 {
                let g = spec.rate_on(c.gpu_type, &c.shape(), state.work_done);
                if g > 0.0 {
                    row[i] = g;
                    min_known = min_known.min(g);
                }
            }
        }
        let scale = if min_known.is_finite() { 1.0 / min_known } else { 1.0 };
        for (i, c) in self.configs.iter().enumerate() {
            if explored[c.gpu_type] > 0 {
                row[i] *= scale;
            } else if c.gpus == 1 {
                row[i] = 1.0; // an unexplored type: one GPU, valued like the cheapest known option
            }
        }
        // Restart damping of every configuration but the current one.
        let penalty = assumed_restart_penalty_s(spec.kind_label());
        let age = ctx.now.saturating_since(spec.arrival).as_secs_f64();
        let damping =
            if age < penalty { 1.0 } else { (age - f64::from(state.restarts) * penalty).max(0.0) / (age + penalty) };
        let current = self.current.get(&job).copied();
        for (i, g) in row.iter_mut().enumerate() {
            if Some(i) != current {
                *g *= damping;
            }
            if *g <= ZERO_ALLOC_GAIN {
                *g = ZERO_ALLOC_GAIN;
            }
        }
        row
    }

    fn solve(&self, ctx: &RoundContext<'_>) -> BTreeMap<JobId, usize> {
        let minimise = self.p < 0.0;
        let mut model = Model::new();
        let mut vars: Vec<(JobId, usize, Var)> = Vec::new();
        let mut per_job: BTreeMap<JobId, Vec<Var>> = BTreeMap::new();
        let mut per_type: Vec<Vec<(Var, f64)>> = vec![Vec::new(); ctx.cluster.gpu_types.len()];
        for &job in ctx.active {
            let row = self.goodput_row(ctx, job);
            let forced = if ctx.states[job].pending_restart_s > 0.0 { self.current.get(&job).copied() } else { None };
            for (i, g) in row.iter().enumerate() {
                let a = (g.powf(self.p) * 100.0).round() / 100.0;
                let a = a.min(3000.0);
                let coef = a - self.lambda_n;
                let useful = if minimise { coef < 0.0 } else { a + self.lambda_n.abs() > 0.0 && *g > ZERO_ALLOC_GAIN };
                if !useful && forced != Some(i) {
                    continue;
                }
                let x = model.binary();
                model.objective_term(x, if minimise { coef } else { a + self.lambda_n.abs() });
                if forced == Some(i) {
                    model.eq(vec![(x, 1.0)], 1.0);
                }
                vars.push((job, i, x));
                per_job.entry(job).or_default().push(x);
                per_type[self.configs[i].gpu_type].push((x, f64::from(self.configs[i].gpus)));
            }
        }
        for xs in per_job.values() {
            model.le(xs.iter().map(|x| (*x, 1.0)).collect(), 1.0);
        }
        for (t, terms) in per_type.into_iter().enumerate() {
            if !terms.is_empty() {
                model.le(terms, f64::from(ctx.cluster.gpus_of_type(t)));
            }
        }
        if vars.is_empty() {
            return BTreeMap::new();
        }
        let options = SolveOptions { node_limit: Some(self.node_limit), mip_gap: 1e-4 };
        let sense = if minimise { Sense::Minimise } else { Sense::Maximise };
        match model.solve(sense, &options) {
            Ok(solution) => vars
                .iter()
                .filter(|(_, _, x)| solution.value(*x) > 0.5)
                .map(|(job, config, _)| (*job, *config))
                .collect(),
            // Only reachable if forced configurations no longer fit; run nothing new.
            Err(_) => BTreeMap::new(),
        }
    }

    /// Places chosen configurations: unchanged ones keep their GPUs, then
    /// whole-server configurations take empty servers and the rest the
    /// tightest server with room, largest first.
    fn place(&self, ctx: &RoundContext<'_>, chosen: &BTreeMap<JobId, usize>) -> Vec<Assignment> {
        let mut free = FreeGpus::all(ctx.cluster);
        let mut out = Vec::new();
        let mut pending: Vec<(JobId, usize)> = Vec::new();
        for (&job, &c) in chosen {
            let config = &self.configs[c];
            match ctx.previous(job) {
                Some(prev)
                    if self.current.get(&job) == Some(&c)
                        && prev.gpus() == config.gpus
                        && prev.gpu_type(ctx.cluster) == Some(config.gpu_type)
                        && free.fits(prev) =>
                {
                    free.take(prev);
                    out.push(Assignment { job, placement: prev.clone() });
                }
                _ => pending.push((job, c)),
            }
        }
        pending.sort_by(|a, b| self.configs[b.1].gpus.cmp(&self.configs[a.1].gpus).then(a.0.cmp(&b.0)));
        for (job, c) in pending {
            let config = self.configs[c];
            if let Some(placement) = place_config(ctx.cluster, &free, &config) {
                free.take(&placement);
                out.push(Assignment { job, placement });
            }
        }
        out
    }
}

fn place_config(cluster: &Cluster, free: &FreeGpus, config: &Config) -> Option<Placement> {
    if free.of_type(cluster, config.gpu_type) < config.gpus {
        return None;
    }
    let servers: Vec<(ServerId, u32, u32)> =
        cluster.servers_of_type(config.gpu_type).map(|s| (s.id, s.gpus, free.on(s.id))).collect();
    let mut parts = Vec::new();
    let mut left = config.gpus;
    if config.gpus >= config.per_server {
        for &(id, size, f) in &servers {
            if left >= size && f == size {
                parts.push((id, size));
                left -= size;
            }
        }
    } else if let Some(&(id, _, _)) = servers.iter().filter(|(_, _, f)| *f >= left).min_by_key(|(id, _, f)| (*f, *id)) {
        return Some(Placement::new(vec![(id, left)]));
    }
    // Whatever is left goes anywhere with room, fullest servers first.
    let mut rest: Vec<(ServerId, u32)> = servers
        .iter()
        .map(|(id, _, f)| (*id, *f - parts.iter().find(|(p, _)| p == id).map_or(0, |(_, g)| *g)))
        .filter(|(_, f)| *f > 0)
        .collect();
    rest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (id, f) in rest {
        if left == 0 {
            break;
        }
        let take = f.min(left);
        parts.push((id, take));
        left -= take;
    }
    (left == 0).then(|| Placement::new(parts))
}

impl Policy for Sia {
    fn round_s(&self) -> f64 {
        self.round_s
    }

    fn batch_mode(&self) -> super::BatchMode {
        super::BatchMode::Adaptive
    }

    fn schedule(&mut self, ctx: &RoundContext<'_>) -> Vec<Assignment> {
        let chosen = self.solve(ctx);
        let assignments = self.place(ctx, &chosen);
        self.current = assignments.iter().filter_map(|a| chosen.get(&a.job).map(|c| (a.job, *c))).collect();
        assignments
    }

    fn on_round_end(&mut self, ctx: &RoundContext<'_>, ran: &[RanJob], _end: SimTime) {
        let n_types = ctx.cluster.gpu_types.len();
        for r in ran {
            let explored = self.explored.entry(r.job).or_insert_with(|| vec![0; n_types]);
            explored[r.gpu_type] = explored[r.gpu_type].max(r.placement.gpus());
        }
    }

    fn on_completion(&mut self, job: JobId, _now: SimTime) {
        self.current.remove(&job);
        self.explored.remove(&job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{GpuType, Server};

    fn sia_cluster() -> Cluster {
        let t = |name: &str| GpuType {
            name: name.into(),
            fp32_tflops: None,
            intra_node_gbps: 16.0,
            inter_node_gbit: 25.0,
            profile: None,
        };
        let mut servers = Vec::new();
        for (ty, count, gpus) in [(0usize, 6u32, 4u32), (1, 2, 8), (2, 3, 8)] {
            for _ in 0..count {
                servers.push(Server { id: servers.len(), gpu_type: ty, gpus, speed: 1.0 });
            }
        }
        Cluster { gpu_types: vec![t("aws"), t("dgx-ext"), t("rtx")], servers }
    }

    /// Sia's configuration sets (CONFIGS_4GPU / CONFIGS_8GPU limited to the
    /// servers present) for its default 64-GPU cluster.
    #[test]
    fn configurations_match_the_reference() {
        let configs = configurations(&sia_cluster());
        let of = |t: usize| configs.iter().filter(|c| c.gpu_type == t).map(|c| (c.nodes, c.gpus)).collect::<Vec<_>>();
        assert_eq!(of(0), [(1, 1), (1, 2), (1, 4), (2, 8), (3, 12), (4, 16), (5, 20), (6, 24)]);
        assert_eq!(of(1), [(1, 1), (1, 2), (1, 4), (1, 8), (2, 16)]);
        assert_eq!(of(2), [(1, 1), (1, 2), (1, 4), (1, 8), (2, 16), (3, 24)]);
    }

    #[test]
    fn placement_uses_whole_servers_and_tight_fits() {
        let c = sia_cluster();
        let mut free = FreeGpus::all(&c);
        free.take(&Placement::new(vec![(0, 3)]));
        let two_nodes = Config { gpu_type: 0, nodes: 2, gpus: 8, per_server: 4 };
        assert_eq!(place_config(&c, &free, &two_nodes), Some(Placement::new(vec![(1, 4), (2, 4)])));
        let one = Config { gpu_type: 0, nodes: 1, gpus: 1, per_server: 4 };
        assert_eq!(place_config(&c, &free, &one), Some(Placement::new(vec![(0, 1)])));
        let too_big = Config { gpu_type: 1, nodes: 3, gpus: 24, per_server: 8 };
        assert_eq!(place_config(&c, &free, &too_big), None);
    }
}
