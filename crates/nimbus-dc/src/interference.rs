//! Co-location interference: a latency-critical (LC) application sharing a
//! server with a batch job, under a documented parametric model, and the
//! controllers that resize its resources to hold its p99 latency target.
//!
//! Real cache partitioning, memory-bandwidth allocation and performance
//! counters are not available here, so the model is parametric and its
//! parameters are invented (documented below), as carbon-autoscaling-tail.md
//! §6.3 prescribes.
//!
//! **Server**: 16 cores, 20 LLC ways, 10 memory-bandwidth units (10% of
//! peak each), 9 frequency levels (1.2 to 2.4 GHz). The LC app holds an
//! allocation; the batch job holds the rest (frequency is per core and
//! costs the batch job nothing).
//!
//! **App** (nine profiles after the TailBench applications PARTIES and INS
//! evaluate; their numbers are ours): base service time `s0` at 2.4 GHz
//! with its working set in cache and ample bandwidth; compute-bound share
//! φ (scales with 1/frequency); cache need `W` ways with sensitivity κc
//! (service time × (1 + κc · shortfall/W)); bandwidth need `B` units with
//! sensitivity κm; and its load λ (requests/s).
//!
//! **Contention** (the injected interference) takes a share x of one
//! resource from the app: cores (a CPU hog on its hyperthreads), LLC ways
//! (a cache thrasher), bandwidth (a streaming job) or frequency (a power
//! cap). With effective resources the service time is
//! s = s0 · (φ·fmax/f + 1 − φ) · (1 + κc·short_c) · (1 + κm·short_m) and,
//! with ρ = λ·s/cores, p99 = s · (1 + 4.6·ρ / (cores·(1 − ρ))) (an M/M/c
//! tail approximation; ρ ≥ 0.98 counts as 50× the service time). The
//! measured p99 carries 5% log-normal noise.
//!
//! **Episodes**: an app runs at its nominal allocation (meeting its target,
//! 1.3× the nominal p99), contention on one random resource arrives with x
//! uniform in [0.3, 0.6], and the controller acts every 500 ms until the
//! target holds again (at most 60 intervals). Resolution costs the batch
//! job what the app took.

use nimbus_sim::output::{Better, Metric, RunOutput};
use nimbus_sim::rng::SimRng;

/// A resource a controller can resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// Cores.
    Cores,
    /// LLC ways.
    Llc,
    /// Memory-bandwidth units.
    Bandwidth,
    /// Frequency level.
    Frequency,
}

/// Every resource, in PARTIES' order of trial.
pub const RESOURCES: [Resource; 4] = [Resource::Cores, Resource::Llc, Resource::Bandwidth, Resource::Frequency];

impl Resource {
    /// Units the server has.
    pub fn total(self) -> u32 {
        match self {
            Resource::Cores => 16,
            Resource::Llc => 20,
            Resource::Bandwidth => 10,
            Resource::Frequency => 8,
        }
    }

    /// Name in results.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cores => "cores",
            Resource::Llc => "llc",
            Resource::Bandwidth => "bandwidth",
            Resource::Frequency => "frequency",
        }
    }
}

/// An LC application's profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Name.
    pub name: &'static str,
    /// Service time at 2.4 GHz with enough cache and bandwidth, ms.
    pub s0_ms: f64,
    /// Compute-bound share.
    pub phi: f64,
    /// LLC ways the working set needs.
    pub ways: f64,
    /// Cache sensitivity.
    pub kappa_c: f64,
    /// Bandwidth units it needs.
    pub bandwidth: f64,
    /// Bandwidth sensitivity.
    pub kappa_m: f64,
    /// Load, requests per second.
    pub rate: f64,
}

/// Nine profiles named after the TailBench applications (invented
/// parameters: compute-, cache- and memory-bound mixes).
pub const PROFILES: [Profile; 9] = [
    Profile {
        name: "memcached",
        s0_ms: 0.10,
        phi: 0.5,
        ways: 6.0,
        kappa_c: 1.0,
        bandwidth: 3.0,
        kappa_m: 0.8,
        rate: 30_000.0,
    },
    Profile {
        name: "xapian",
        s0_ms: 2.0,
        phi: 0.8,
        ways: 8.0,
        kappa_c: 1.2,
        bandwidth: 2.0,
        kappa_m: 0.4,
        rate: 1_500.0,
    },
    Profile {
        name: "moses",
        s0_ms: 5.0,
        phi: 0.6,
        ways: 10.0,
        kappa_c: 1.5,
        bandwidth: 4.0,
        kappa_m: 1.0,
        rate: 600.0,
    },
    Profile {
        name: "sphinx",
        s0_ms: 20.0,
        phi: 0.9,
        ways: 4.0,
        kappa_c: 0.5,
        bandwidth: 2.0,
        kappa_m: 0.3,
        rate: 150.0,
    },
    Profile {
        name: "img-dnn",
        s0_ms: 3.0,
        phi: 0.9,
        ways: 5.0,
        kappa_c: 0.6,
        bandwidth: 3.0,
        kappa_m: 0.5,
        rate: 1_000.0,
    },
    Profile {
        name: "masstree",
        s0_ms: 0.4,
        phi: 0.4,
        ways: 9.0,
        kappa_c: 1.8,
        bandwidth: 4.0,
        kappa_m: 1.2,
        rate: 7_000.0,
    },
    Profile {
        name: "silo",
        s0_ms: 0.3,
        phi: 0.5,
        ways: 7.0,
        kappa_c: 1.4,
        bandwidth: 3.0,
        kappa_m: 0.9,
        rate: 9_000.0,
    },
    Profile {
        name: "specjbb",
        s0_ms: 1.0,
        phi: 0.6,
        ways: 8.0,
        kappa_c: 1.0,
        bandwidth: 5.0,
        kappa_m: 1.5,
        rate: 3_000.0,
    },
    Profile {
        name: "nginx",
        s0_ms: 0.2,
        phi: 0.7,
        ways: 3.0,
        kappa_c: 0.7,
        bandwidth: 2.0,
        kappa_m: 0.6,
        rate: 20_000.0,
    },
];

/// An allocation: units of each resource (frequency as a level 0..=8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Cores.
    pub cores: u32,
    /// LLC ways.
    pub llc: u32,
    /// Bandwidth units.
    pub bandwidth: u32,
    /// Frequency level (1.2 GHz + 0.15 GHz per level).
    pub frequency: u32,
}

impl Allocation {
    /// Units of `r`.
    pub fn get(&self, r: Resource) -> u32 {
        match r {
            Resource::Cores => self.cores,
            Resource::Llc => self.llc,
            Resource::Bandwidth => self.bandwidth,
            Resource::Frequency => self.frequency,
        }
    }

    /// Sets units of `r`.
    pub fn set(&mut self, r: Resource, v: u32) {
        match r {
            Resource::Cores => self.cores = v,
            Resource::Llc => self.llc = v,
            Resource::Bandwidth => self.bandwidth = v,
            Resource::Frequency => self.frequency = v,
        }
    }

    /// Units the batch job is left (cores, LLC, bandwidth), as a share.
    pub fn batch_share(&self) -> f64 {
        let left = |r: Resource| f64::from(r.total() - self.get(r).min(r.total())) / f64::from(r.total());
        (left(Resource::Cores) + left(Resource::Llc) + left(Resource::Bandwidth)) / 3.0
    }
}

/// Injected contention: share `x` of `resource` taken from the app.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contention {
    /// Which resource.
    pub resource: Resource,
    /// Share taken, 0 to 1.
    pub x: f64,
}

/// Each stage of a request's execution path, ms (the quantities INS's
/// interference-sensitive path exposes): compute at the core's frequency,
/// cache-miss stalls, memory stalls, and queueing for a core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Path {
    /// Compute, ms.
    pub compute: f64,
    /// Cache-miss stalls, ms.
    pub cache: f64,
    /// Memory-bandwidth stalls, ms.
    pub memory: f64,
    /// Waiting for a core, ms.
    pub queueing: f64,
}

impl Path {
    /// The p99 latency this path gives, ms.
    pub fn p99(&self) -> f64 {
        self.compute + self.cache + self.memory + self.queueing
    }
}

/// The app's request path with `alloc` under `contention`.
pub fn path(p: &Profile, alloc: &Allocation, contention: Option<Contention>) -> Path {
    let take = |r: Resource| contention.filter(|c| c.resource == r).map_or(0.0, |c| c.x);
    let cores = (f64::from(alloc.cores) * (1.0 - take(Resource::Cores))).max(0.25);
    let ways = f64::from(alloc.llc) * (1.0 - take(Resource::Llc));
    let bw = f64::from(alloc.bandwidth) * (1.0 - take(Resource::Bandwidth));
    let ghz = (1.2 + 0.15 * f64::from(alloc.frequency)) * (1.0 - take(Resource::Frequency));
    let compute = p.s0_ms * (p.phi * 2.4 / ghz.max(0.1) + 1.0 - p.phi);
    let cache_short = ((p.ways - ways) / p.ways).max(0.0);
    let mem_short = ((p.bandwidth - bw) / p.bandwidth).max(0.0);
    let cache = compute * p.kappa_c * cache_short;
    let memory = (compute + cache) * p.kappa_m * mem_short;
    let s = compute + cache + memory;
    let rho = p.rate * s / 1000.0 / cores;
    let queueing = if rho >= 0.98 { 49.0 * s } else { s * 4.6 * rho / (cores * (1.0 - rho)) };
    Path { compute, cache, memory, queueing }
}

/// The nominal allocation of an app: frequency at the top, the cache and
/// bandwidth it needs, and the fewest cores keeping ρ ≤ 0.6.
pub fn nominal(p: &Profile) -> Allocation {
    let mut a = Allocation { cores: 1, llc: p.ways.ceil() as u32, bandwidth: p.bandwidth.ceil() as u32, frequency: 8 };
    while a.cores < Resource::Cores.total() {
        let s = path(p, &a, None);
        let service = s.compute + s.cache + s.memory;
        if p.rate * service / 1000.0 / f64::from(a.cores) <= 0.6 {
            break;
        }
        a.cores += 1;
    }
    a
}

/// What a controller sees each interval and may change.
pub struct Observation<'a> {
    /// The app.
    pub profile: &'a Profile,
    /// Measured p99, ms (noisy).
    pub p99: f64,
    /// Target, ms.
    pub target: f64,
    /// The path's stages as measured (noisy), ms.
    pub path: Path,
    /// The same stages measured in isolation at the nominal allocation
    /// (INS's calibration), ms.
    pub isolated: Path,
}

/// A resizing controller.
pub trait Controller {
    /// Called every interval while the target is violated; returns the new
    /// allocation and the resource it blames (if it names one).
    fn act(&mut self, obs: &Observation<'_>, alloc: Allocation) -> (Allocation, Option<Resource>);
}

/// PARTIES (Chen et al., ASPLOS'19), as carbon-autoscaling-tail.md §6.3
/// describes it: each 500-ms interval, an app below target gets one more
/// unit of the resource under trial; a change that lowered its p99 is kept
/// and the same resource tried again, one that did not is reverted and the
/// next resource tried (cores, LLC ways, memory bandwidth, frequency).
/// PARTIES also downsizes apps with ample slack; episodes here end when the
/// target holds again, so that half is not modelled. Memory capacity and
/// disk bandwidth, which PARTIES also tries, are not in the model.
#[derive(Debug, Default)]
pub struct Parties {
    trial: usize,
    last: Option<(Resource, f64)>,
}

impl Controller for Parties {
    fn act(&mut self, obs: &Observation<'_>, mut alloc: Allocation) -> (Allocation, Option<Resource>) {
        if let Some((r, before)) = self.last.take()
            && obs.p99 >= before * 0.98
        {
            // No help: revert and try the next resource.
            alloc.set(r, alloc.get(r) - 1);
            self.trial = (self.trial + 1) % RESOURCES.len();
            return (alloc, None);
        }
        for _ in 0..RESOURCES.len() {
            let r = RESOURCES[self.trial];
            if alloc.get(r) < r.total() {
                alloc.set(r, alloc.get(r) + 1);
                self.last = Some((r, obs.p99));
                return (alloc, None);
            }
            self.trial = (self.trial + 1) % RESOURCES.len();
        }
        (alloc, None)
    }
}

/// The outcome of one episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    /// The injected resource.
    pub injected: Resource,
    /// The controller's first diagnosis, if it names one.
    pub named: Option<Resource>,
    /// Intervals with the target violated.
    pub steps: u32,
    /// Whether the target held again within the limit.
    pub resolved: bool,
    /// Share of cores, LLC and bandwidth left to the batch job at the end.
    pub batch_share: f64,
}

/// Most intervals an episode may take.
pub const MAX_STEPS: u32 = 60;

/// Runs one episode of `profile` under `contention`.
pub fn episode(
    profile: &Profile,
    contention: Contention,
    controller: &mut dyn Controller,
    rng: &mut SimRng,
) -> Episode {
    let mut alloc = nominal(profile);
    let isolated = path(profile, &alloc, None);
    let target = 1.3 * isolated.p99();
    let noisy = |v: f64, rng: &mut SimRng| v * rng.lognormal(0.0, 0.05);
    let mut named = None;
    let mut steps = 0;
    let mut resolved = false;
    while steps < MAX_STEPS {
        let truth = path(profile, &alloc, Some(contention));
        let measured = Path {
            compute: noisy(truth.compute, rng),
            cache: noisy(truth.cache, rng),
            memory: noisy(truth.memory, rng),
            queueing: noisy(truth.queueing, rng),
        };
        let p99 = noisy(truth.p99(), rng);
        if p99 <= target {
            resolved = true;
            break;
        }
        steps += 1;
        let obs = Observation { profile, p99, target, path: measured, isolated };
        let (next, blamed) = controller.act(&obs, alloc);
        if named.is_none() {
            named = blamed;
        }
        alloc = next;
    }
    Episode { injected: contention.resource, named, steps, resolved, batch_share: alloc.batch_share() }
}

/// Runs `episodes` episodes (random app, resource and share) with a fresh
/// controller from `make` each.
pub fn run(episodes: usize, make: &dyn Fn() -> Box<dyn Controller>, rng: &mut SimRng) -> RunOutput {
    let mut out = RunOutput::default();
    let (mut named, mut right, mut resolved) = (0u32, 0u32, 0u32);
    let mut steps = Vec::with_capacity(episodes);
    let mut share = Vec::with_capacity(episodes);
    for _ in 0..episodes {
        let p = &PROFILES[rng.index(PROFILES.len())];
        let resource = RESOURCES[rng.index(RESOURCES.len())];
        let x = rng.uniform_range(0.3, 0.6);
        let mut c = make();
        let e = episode(p, Contention { resource, x }, c.as_mut(), rng);
        if let Some(n) = e.named {
            named += 1;
            if n == e.injected {
                right += 1;
            }
        }
        if e.resolved {
            resolved += 1;
        }
        steps.push(f64::from(e.steps));
        share.push(e.batch_share);
    }
    let n = episodes.max(1) as f64;
    let m = |name: &str, v: f64, b: Better| Metric::new(name, v, b);
    out.metrics = vec![
        m("episodes", episodes as f64, Better::Neither),
        m(
            "identified_pct",
            if named > 0 { 100.0 * f64::from(right) / f64::from(named) } else { f64::NAN },
            Better::Higher,
        ),
        m("resolved_pct", 100.0 * f64::from(resolved) / n, Better::Higher),
        m("steps_mean", nimbus_sim::stats::mean(&steps), Better::Lower),
        m("steps_p90", nimbus_sim::stats::quantile(&steps, 0.9), Better::Lower),
        m("batch_share_mean", nimbus_sim::stats::mean(&share), Better::Higher),
    ];
    out
}

/// Every metric [`run`] reports.
pub const METRICS: &[&str] =
    &["episodes", "identified_pct", "resolved_pct", "steps_mean", "steps_p90", "batch_share_mean"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_allocations_meet_their_targets_and_contention_breaks_them() {
        for p in &PROFILES {
            let a = nominal(p);
            let base = path(p, &a, None).p99();
            assert!(base.is_finite() && a.cores < 16, "{}: {a:?}", p.name);
            for r in RESOURCES {
                let hit = path(p, &a, Some(Contention { resource: r, x: 0.6 })).p99();
                assert!(hit > base, "{} {}: {hit} vs {base}", p.name, r.name());
            }
        }
    }

    #[test]
    fn the_path_by_hand() {
        // sphinx at 1.2 GHz (level 0), 4 ways, 2 units, 4 cores: compute
        // 20 × (0.9 × 2 + 0.1) = 38 ms; no shortfall; ρ = 150 × 0.038 / 4
        // = 1.425 → saturated: queueing 49 × 38.
        let p = &PROFILES[3];
        let a = Allocation { cores: 4, llc: 4, bandwidth: 2, frequency: 0 };
        let s = path(p, &a, None);
        assert!((s.compute - 38.0).abs() < 1e-9 && s.cache == 0.0 && s.memory == 0.0);
        assert!((s.queueing - 49.0 * 38.0).abs() < 1e-9);
        // At 2.4 GHz with 8 cores: 20 ms, ρ = 0.375: queueing 20 × 4.6 ×
        // 0.375 / (8 × 0.625) = 6.9 ms.
        let a = Allocation { cores: 8, llc: 4, bandwidth: 2, frequency: 8 };
        let s = path(p, &a, None);
        assert!((s.queueing - 6.9).abs() < 1e-9, "{}", s.queueing);
    }

    #[test]
    fn parties_keeps_what_helps_and_reverts_what_does_not() {
        let p = &PROFILES[0];
        let isolated = path(p, &nominal(p), None);
        let obs = |p99: f64| Observation { profile: p, p99, target: 1.0, path: isolated, isolated };
        let mut c = Parties::default();
        let a0 = Allocation { cores: 4, llc: 6, bandwidth: 3, frequency: 8 };
        let (a1, _) = c.act(&obs(10.0), a0);
        assert_eq!(a1.cores, 5);
        // It helped: one more core.
        let (a2, _) = c.act(&obs(5.0), a1);
        assert_eq!(a2.cores, 6);
        // It did not: revert, then the next resource (LLC).
        let (a3, _) = c.act(&obs(5.0), a2);
        assert_eq!(a3.cores, 5);
        let (a4, _) = c.act(&obs(5.0), a3);
        assert_eq!((a4.cores, a4.llc), (5, 7));
    }
}
