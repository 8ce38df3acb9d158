//! A real, small microservice call chain on loopback: the "real
//! mini-variant" of TailClipper (SoCC'24) beside the twin's call-graph
//! model (`nimbus-dc::callgraph`).
//!
//! Tiers of services, each a TCP listener on 127.0.0.1 with a pool of
//! worker threads ([`service`]). A request enters a random service of tier
//! 0; every call does its work there, then calls services of the next
//! tier in parallel and answers when all have answered. Calls carry the
//! request's ingress timestamp; a service orders waiting calls first come
//! first served or oldest request first by that stamp ([`Order`]), which
//! is TailClipper's mechanism (without its limited processor sharing: a
//! worker thread cannot be preempted).
//!
//! The load generator is open-loop and bounded: requests (whole call
//! trees, [`wire::Call`]) are drawn from a seed before the run, so both
//! orders serve the same requests; each is sent at its arrival time from
//! a thread that sleeps until then, and response times run from that
//! intended time (a late send counts against the chain, not the
//! generator). At most `max_outstanding` requests are in flight: past it
//! the generator stops and the report says the chain was overloaded.
//!
//! Every connection begins with the chain's random token; frames are
//! length-checked before they are read; everything listens on 127.0.0.1
//! only.

pub mod service;
pub mod wire;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_sim::rng::{RngStreams, SimRng};

pub use service::Order;
use service::{Clients, Service, Shared};
use wire::Call;

/// A chain and its load.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainConfig {
    /// Services per tier, top first.
    pub tiers: Vec<usize>,
    /// Worker threads per service.
    pub workers: u32,
    /// Fan-out bounds (inclusive) of a call to the next tier.
    pub fanout: (u32, u32),
    /// Mean work of a call, ms (log-normal).
    pub work_mean_ms: f64,
    /// σ of the work's log-normal.
    pub work_sigma: f64,
    /// Mean requests per second (Poisson).
    pub rate_rps: f64,
    /// Requests.
    pub requests: usize,
    /// Seed of the requests.
    pub seed: u64,
    /// How services order waiting calls.
    pub order: Order,
    /// Most requests in flight before the generator gives up.
    pub max_outstanding: usize,
    /// A request unanswered this long is lost.
    pub timeout: Duration,
}

/// Why a chain could not run.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A configuration value out of range.
    #[error("{0}")]
    Config(String),
    /// The runtime or a listener could not start.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Most services, workers and requests a chain accepts.
const MAX_SERVICES: usize = 256;
const MAX_WORKERS: u32 = 256;
const MAX_THREADS: usize = 4096;
const MAX_REQUESTS: usize = 10_000_000;

impl ChainConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), ChainError> {
        let bad = |m: String| Err(ChainError::Config(m));
        let services: usize = self.tiers.iter().sum();
        if self.tiers.is_empty()
            || self.tiers.contains(&0)
            || services > MAX_SERVICES
            || self.tiers.len() > wire::MAX_DEPTH
        {
            return bad(format!("tiers must be 1 to 16 non-empty tiers of at most {MAX_SERVICES} services in all"));
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return bad(format!("workers must be 1 to {MAX_WORKERS}"));
        }
        // Every worker is an OS thread.
        if services.saturating_mul(self.workers as usize) > MAX_THREADS {
            return bad(format!("services x workers must be at most {MAX_THREADS} threads"));
        }
        if self.fanout.0 > self.fanout.1 || self.fanout.1 > 64 {
            return bad("fan-out bounds must satisfy min <= max <= 64".into());
        }
        // The largest tree must fit one frame.
        let most_calls: f64 = (0..self.tiers.len()).map(|t| f64::from(self.fanout.1).powi(t as i32)).sum();
        if most_calls > wire::MAX_CALLS as f64 {
            return bad(format!("a request could have more than {} calls", wire::MAX_CALLS));
        }
        if !(self.work_mean_ms > 0.0 && self.work_mean_ms <= 1000.0 && (0.0..=3.0).contains(&self.work_sigma)) {
            return bad("work_mean_ms must be in (0, 1000] and work_sigma in [0, 3]".into());
        }
        if !(self.rate_rps > 0.0 && self.rate_rps <= 1e6) || self.requests == 0 || self.requests > MAX_REQUESTS {
            return bad(format!("rate must be in (0, 10^6] requests/s and requests 1 to {MAX_REQUESTS}"));
        }
        if self.max_outstanding == 0 || self.timeout.is_zero() {
            return bad("max_outstanding and timeout must be positive".into());
        }
        Ok(())
    }

    /// Expected calls per request at each tier.
    pub fn calls_per_tier(&self) -> Vec<f64> {
        let mean = f64::from(self.fanout.0 + self.fanout.1) / 2.0;
        (0..self.tiers.len()).map(|t| mean.powi(i32::try_from(t).unwrap_or(i32::MAX))).collect()
    }

    /// Utilisation of the busiest tier's workers at `rate_rps`.
    pub fn load(&self) -> f64 {
        self.calls_per_tier()
            .iter()
            .zip(&self.tiers)
            .map(|(&k, &n)| self.rate_rps * k * self.work_mean_ms * 1e-3 / (n as f64 * f64::from(self.workers)))
            .fold(0.0, f64::max)
    }

    /// The rate that loads the busiest tier to `load`.
    pub fn rate_for_load(&self, load: f64) -> f64 {
        let at_one = ChainConfig { rate_rps: 1.0, ..self.clone() }.load();
        load / at_one
    }
}

/// The requests of a configuration: arrival offsets and call trees.
pub fn draw(config: &ChainConfig) -> (Vec<Duration>, Vec<Call>) {
    let streams = RngStreams::new(config.seed);
    let (mut gaps, mut shapes) = (streams.stream("arrivals"), streams.stream("calls"));
    let mu = (config.work_mean_ms * 1e-3).ln() - config.work_sigma * config.work_sigma / 2.0;
    let first: Vec<usize> = config
        .tiers
        .iter()
        .scan(0, |acc, &n| {
            let f = *acc;
            *acc += n;
            Some(f)
        })
        .collect();
    fn tree(c: &ChainConfig, first: &[usize], tier: usize, mu: f64, rng: &mut SimRng) -> Call {
        let service = u16::try_from(first[tier] + rng.index(c.tiers[tier])).expect("at most 256 services");
        let work_s = if c.work_sigma > 0.0 { rng.lognormal(mu, c.work_sigma) } else { c.work_mean_ms * 1e-3 };
        let work_us =
            nimbus_sim::params::round_to_u64(work_s * 1e6).map_or(u32::MAX, |w| u32::try_from(w).unwrap_or(u32::MAX));
        let mut children = Vec::new();
        if tier + 1 < c.tiers.len() {
            let k =
                c.fanout.0 + u32::try_from(rng.below(u64::from(c.fanout.1 - c.fanout.0 + 1))).expect("fan-out fits");
            for _ in 0..k {
                children.push(tree(c, first, tier + 1, mu, rng));
            }
        }
        Call { service, work_us, children }
    }
    let mut t = 0.0;
    let mut arrivals = Vec::with_capacity(config.requests);
    let mut trees = Vec::with_capacity(config.requests);
    for _ in 0..config.requests {
        t += gaps.exponential(config.rate_rps);
        arrivals.push(Duration::from_secs_f64(t));
        trees.push(tree(config, &first, 0, mu, &mut shapes));
    }
    (arrivals, trees)
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainReport {
    /// Requests generated (fewer than asked when overloaded).
    pub sent: usize,
    /// Requests answered.
    pub answered: usize,
    /// Requests in the measured window (5% warm-up and the last 10% left
    /// out, as in the twin).
    pub measured: usize,
    /// Response time, ms, over the measured requests.
    pub response_ms_mean: f64,
    /// Median.
    pub response_ms_p50: f64,
    /// 99th percentile.
    pub response_ms_p99: f64,
    /// 99.9th percentile.
    pub response_ms_p999: f64,
    /// Answers per second while the measured requests arrived.
    pub throughput_rps: f64,
    /// The offered rate.
    pub offered_rps: f64,
    /// Whether the generator stopped at `max_outstanding`.
    pub overloaded: bool,
    /// Requests lost (timed out or failed).
    pub lost: usize,
    /// Calls per tier in the requests sent.
    pub calls_issued: Vec<u64>,
    /// Calls answered per tier.
    pub calls_answered: Vec<u64>,
    /// Median one-way time of a hop (half the round trip of a zero-work
    /// call, queue hand-offs included), µs.
    pub hop_us: f64,
    /// Mean time a hold overran its work (sleep granularity), µs.
    pub overshoot_us: f64,
    /// Wall time of the load phase, s.
    pub wall_s: f64,
}

fn token() -> [u8; 16] {
    // RandomState is seeded from the OS: two of its hashes make a token
    // another local process cannot guess.
    let mut out = [0u8; 16];
    for half in out.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x6e69_6d62_7573);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// Runs the chain: starts its services, measures a hop, sends the
/// requests, and stops everything.
pub fn run(config: &ChainConfig) -> Result<ChainReport, ChainError> {
    config.validate()?;
    let (arrivals, trees) = draw(config);
    let services_n: usize = config.tiers.iter().sum();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let shared = Arc::new(Shared {
        token: token(),
        answered: (0..services_n).map(|_| AtomicU64::new(0)).collect(),
        overshoot_ns: AtomicU64::new(0),
        holds: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        addrs: Mutex::new(Vec::new()),
    });
    let handle = runtime.handle().clone();
    let outcome = runtime.block_on(async {
        let mut services = Vec::with_capacity(services_n);
        for index in 0..services_n {
            services.push(Service::start(index, config.workers, config.order, shared.clone(), handle.clone()).await?);
        }
        *shared.addrs.lock().expect("addrs lock") = services.iter().map(|s| s.addr).collect();
        let ingress = Arc::new(Clients::new(shared.clone()));
        let hop_us = measure_hop(&ingress, services_n - 1).await;
        let before: Vec<u64> = shared.answered.iter().map(|a| a.load(Ordering::Relaxed)).collect();
        let (holds0, over0) = (shared.holds.load(Ordering::Relaxed), shared.overshoot_ns.load(Ordering::Relaxed));
        let load = send_all(config, &arrivals, &trees, &ingress).await;
        let answered: Vec<u64> =
            shared.answered.iter().zip(&before).map(|(a, b)| a.load(Ordering::Relaxed) - b).collect();
        let holds = shared.holds.load(Ordering::Relaxed) - holds0;
        let over = shared.overshoot_ns.load(Ordering::Relaxed) - over0;
        let overshoot_us = if holds == 0 { 0.0 } else { over as f64 / holds as f64 / 1e3 };
        Ok::<_, ChainError>((services, hop_us, load, answered, overshoot_us))
    });
    // Dropping the services (here, or inside the block on an error) stops
    // and joins their workers before the runtime goes.
    let (services, hop_us, load, answered, overshoot_us) = outcome?;
    drop(services);
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(report(config, &arrivals, &trees, load, &answered, hop_us, overshoot_us))
}

/// Half the median round trip of 200 zero-work calls to a service of
/// the last tier (no children), µs.
#[allow(clippy::disallowed_methods)] // a real round trip is timed on the wall clock
async fn measure_hop(ingress: &Arc<Clients>, service: usize) -> f64 {
    let service = u16::try_from(service).expect("at most 256 services");
    let mut rtts = Vec::with_capacity(200);
    for _ in 0..200 {
        let start = Instant::now();
        let ok = ingress.call(0, Call { service, work_us: 0, children: vec![] }).await;
        if matches!(ok, Ok(true)) {
            rtts.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    rtts.sort_by(f64::total_cmp);
    rtts.get(rtts.len() / 2).map_or(f64::NAN, |m| m / 2.0)
}

struct Load {
    /// Completion offset from the epoch, per request sent.
    done: Vec<Option<Duration>>,
    sent: usize,
    overloaded: bool,
    wall_s: f64,
}

#[allow(clippy::disallowed_methods)] // a real generator sends on the wall clock
async fn send_all(config: &ChainConfig, arrivals: &[Duration], trees: &[Call], ingress: &Arc<Clients>) -> Load {
    let epoch = Instant::now() + Duration::from_millis(20);
    let done: Arc<Mutex<Vec<Option<Duration>>>> = Arc::new(Mutex::new(vec![None; arrivals.len()]));
    let outstanding = Arc::new(AtomicUsize::new(0));
    let overloaded = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let generator = {
        let (arrivals, outstanding, overloaded) = (arrivals.to_vec(), outstanding.clone(), overloaded.clone());
        let max = config.max_outstanding;
        std::thread::spawn(move || {
            for (i, &at) in arrivals.iter().enumerate() {
                let target = epoch + at;
                let now = Instant::now();
                if target > now {
                    std::thread::sleep(target - now);
                }
                if outstanding.load(Ordering::Relaxed) >= max {
                    overloaded.store(true, Ordering::Relaxed);
                    return;
                }
                outstanding.fetch_add(1, Ordering::Relaxed);
                if tx.send(i).is_err() {
                    return;
                }
            }
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0;
    while let Some(i) = rx.recv().await {
        sent += 1;
        let origin_ns = u64::try_from(arrivals[i].as_nanos()).unwrap_or(u64::MAX);
        let call = ingress.call(origin_ns, trees[i].clone());
        let (done, outstanding, timeout) = (done.clone(), outstanding.clone(), config.timeout);
        tasks.spawn(async move {
            if let Ok(Ok(true)) = tokio::time::timeout(timeout, call).await {
                done.lock().expect("done lock")[i] = Some(epoch.elapsed());
            }
            outstanding.fetch_sub(1, Ordering::Relaxed);
        });
    }
    while tasks.join_next().await.is_some() {}
    let wall_s = epoch.elapsed().as_secs_f64();
    // The generator has returned: its channel is closed.
    let _ = generator.join();
    let done = std::mem::take(&mut *done.lock().expect("done lock"));
    Load { done, sent, overloaded: overloaded.load(Ordering::Relaxed), wall_s }
}

fn report(
    config: &ChainConfig,
    arrivals: &[Duration],
    trees: &[Call],
    load: Load,
    answered_by_service: &[u64],
    hop_us: f64,
    overshoot_us: f64,
) -> ChainReport {
    let n = load.sent;
    let (lo, hi) = (n / 20, n - n / 10);
    let mut rt: Vec<f64> =
        (lo..hi).filter_map(|i| load.done[i].map(|d| d.saturating_sub(arrivals[i]).as_secs_f64() * 1e3)).collect();
    rt.sort_by(f64::total_cmp);
    let q = |p: f64| nimbus_sim::stats::quantile_sorted(&rt, p);
    let (a, b) = (arrivals.get(lo).copied(), hi.checked_sub(1).and_then(|i| arrivals.get(i)).copied());
    let throughput_rps = match (a, b) {
        (Some(a), Some(b)) if b > a => {
            load.done.iter().flatten().filter(|&&d| d >= a && d <= b).count() as f64 / (b - a).as_secs_f64()
        }
        _ => f64::NAN,
    };
    let mut calls_issued = vec![0u64; config.tiers.len()];
    fn count(c: &Call, tier: usize, out: &mut [u64]) {
        out[tier] += 1;
        for k in &c.children {
            count(k, tier + 1, out);
        }
    }
    for t in &trees[..n] {
        count(t, 0, &mut calls_issued);
    }
    let mut calls_answered = vec![0u64; config.tiers.len()];
    let mut service = 0;
    for (tier, &k) in config.tiers.iter().enumerate() {
        calls_answered[tier] = answered_by_service[service..service + k].iter().sum();
        service += k;
    }
    let answered = load.done[..n].iter().flatten().count();
    ChainReport {
        sent: n,
        answered,
        measured: rt.len(),
        response_ms_mean: nimbus_sim::stats::mean(&rt),
        response_ms_p50: q(0.5),
        response_ms_p99: q(0.99),
        response_ms_p999: q(0.999),
        throughput_rps,
        offered_rps: config.rate_rps,
        overloaded: load.overloaded,
        lost: n - answered,
        calls_issued,
        calls_answered,
        hop_us,
        overshoot_us,
        wall_s: load.wall_s,
    }
}
