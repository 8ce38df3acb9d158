//! Microservice call graphs: requests that fan out across tiers of
//! services, each service a pool of cores with its own scheduling
//! discipline.
//!
//! A request enters a random service of tier 0. Every call runs its own
//! work at its service, then calls `fanout` services of the next tier in
//! parallel (a fan-out drawn per call, uniform between the bounds), and
//! answers its caller when all of them have answered (fan-in); a call of
//! the last tier answers as soon as its work is done. Every hop takes
//! `net` one way. A request's response time runs from its arrival to its
//! root call's answer.
//!
//! A service shares its `cores` among the calls it holds by a
//! [`Discipline`]: the calls allowed to run are the first `width` by the
//! discipline's key, and they share the cores equally (each at most one
//! core). Per-tier FCFS is width = cores keyed by arrival at the service
//! (non-preemptive, since earlier arrivals never come later); processor
//! sharing (CFS-like) is every call at an equal share; TailClipper keys
//! by the request's arrival at the ingress, carried along the chain.

use std::collections::BTreeMap;

use nimbus_sim::output::{Better, Metric, RunOutput, Series};
use nimbus_sim::queue::EventQueue;
use nimbus_sim::rng::SimRng;
use nimbus_sim::time::{SimDuration, SimTime};

/// How a service orders and shares its cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discipline {
    /// First come first served at each service, non-preemptive.
    Fcfs,
    /// Processor sharing among every call present.
    ProcessorSharing,
    /// Oldest request (ingress timestamp) first; the `degree` × cores
    /// oldest calls share the cores (1: strict priority, preemptive).
    OldestFirst {
        /// Limited processor sharing degree.
        degree: u32,
    },
    /// Oldest request first without preemption: a call that got a core
    /// keeps it until its work is done (the loopback RPC chain's worker
    /// pools, which cannot preempt).
    OldestFirstNonPreemptive,
}

/// The call graph and the services.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Services per tier (top first).
    pub services: Vec<usize>,
    /// Cores per service.
    pub cores: u32,
    /// Fan-out bounds (inclusive) of a call to the next tier.
    pub fanout: (u32, u32),
    /// One-way network delay per hop.
    pub net: SimDuration,
}

impl Graph {
    /// Expected calls per request at each tier.
    pub fn calls_per_tier(&self) -> Vec<f64> {
        let mean_fanout = f64::from(self.fanout.0 + self.fanout.1) / 2.0;
        (0..self.services.len()).map(|t| mean_fanout.powi(i32::try_from(t).unwrap_or(i32::MAX))).collect()
    }
}

/// How calls' work and requests' arrivals are drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Requests.
    pub requests: usize,
    /// Mean requests per second.
    pub rate: f64,
    /// Coefficient of variation of the gaps (1: Poisson; above 1: Gamma).
    pub arrival_cv: f64,
    /// Mean work of a call, s.
    pub work_mean_s: f64,
    /// σ of the work's log-normal (heavy tail).
    pub work_sigma: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Arrive(usize),
    /// A call reaches its service.
    Reach(usize),
    /// The service's earliest running call may be done (valid if the
    /// version matches).
    Check {
        service: usize,
        version: u64,
    },
    /// A child's answer reaches its parent call.
    Answer(usize),
}

struct Call {
    request: usize,
    tier: usize,
    parent: Option<usize>,
    service: usize,
    work_left: f64,
    waiting_children: u32,
    /// Arrival at the service (FCFS key).
    arrived: SimTime,
    /// Its scripted call, if the run is scripted.
    node: usize,
}

#[derive(Default)]
struct Service {
    /// Calls present: key → call.
    calls: BTreeMap<(u64, u64), usize>,
    /// When the running calls' work was last brought up to date.
    last_update: SimTime,
    version: u64,
}

/// Counters for the conservation checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallCounts {
    /// Calls issued per tier.
    pub issued: Vec<u64>,
    /// Calls answered per tier.
    pub answered: Vec<u64>,
}

/// Runs `load` over `graph` with `discipline` at every service; requests
/// arriving after `horizon_fraction` of the arrivals are not measured
/// (they keep the system loaded while the last measured ones finish).
pub fn run(
    graph: &Graph,
    load: &Load,
    discipline: Discipline,
    rng: &mut SimRng,
    progress: &mut dyn FnMut(f64),
) -> (RunOutput, CallCounts) {
    let arrivals = arrivals(load, rng);
    run_arrivals(graph, load, &arrivals, discipline, rng, progress)
}

/// `load.requests` arrival times: Gamma gaps with mean 1/`rate` and the
/// asked-for CV (shape 1: exponential).
pub fn arrivals(load: &Load, rng: &mut SimRng) -> Vec<SimTime> {
    let shape = if load.arrival_cv > 0.0 { 1.0 / (load.arrival_cv * load.arrival_cv) } else { 1e9 };
    let mut t = 0.0;
    (0..load.requests)
        .map(|_| {
            t += rng.gamma(shape, 1.0 / (load.rate * shape));
            SimTime::from_secs_f64(t)
        })
        .collect()
}

/// A call of a scripted request (see [`run_scripted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedCall {
    /// Its service (global index, tiers in order).
    pub service: usize,
    /// Its work, s.
    pub work_s: f64,
    /// The calls it makes next (indices into the same slice), one tier
    /// down.
    pub children: Vec<usize>,
}

/// [`run_arrivals`] on given requests instead of drawn ones: request `i`
/// arrives at `arrivals[i]` and is the tree rooted at `calls[roots[i]]`
/// (so a run can replay exactly what another system served).
/// `load.work_*` is ignored. Fails on a tree that leaves its tiers.
pub fn run_scripted(
    graph: &Graph,
    load: &Load,
    arrivals: &[SimTime],
    roots: &[usize],
    calls: &[ScriptedCall],
    discipline: Discipline,
) -> Result<(RunOutput, CallCounts), String> {
    let first: Vec<usize> = graph.services.iter().scan(0, |acc, &n| Some(std::mem::replace(acc, *acc + n))).collect();
    let in_tier = |c: usize, tier: usize| {
        tier < graph.services.len()
            && calls[c].service >= first[tier]
            && calls[c].service < first[tier] + graph.services[tier]
            && calls[c].work_s.is_finite()
            && calls[c].work_s >= 0.0
    };
    if roots.len() != arrivals.len() {
        return Err("one root per arrival".into());
    }
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for &r in roots {
        stack.push((r, 0));
        while let Some((c, tier)) = stack.pop() {
            if c >= calls.len()
                || !in_tier(c, tier)
                || (tier + 1 == graph.services.len() && !calls[c].children.is_empty())
            {
                return Err(format!("scripted call {c} is not a call of tier {tier}"));
            }
            stack.extend(calls[c].children.iter().map(|&k| (k, tier + 1)));
        }
    }
    // Nothing is drawn in a scripted run.
    let mut rng = nimbus_sim::rng::RngStreams::new(0).stream("unused");
    Ok(simulate(graph, load, arrivals, discipline, &mut rng, Some((roots, calls)), &mut |_| {}))
}

/// [`run`] with the requests' arrival times given (ascending).
pub fn run_arrivals(
    graph: &Graph,
    load: &Load,
    arrivals: &[SimTime],
    discipline: Discipline,
    rng: &mut SimRng,
    progress: &mut dyn FnMut(f64),
) -> (RunOutput, CallCounts) {
    simulate(graph, load, arrivals, discipline, rng, None, progress)
}

fn simulate(
    graph: &Graph,
    load: &Load,
    arrivals: &[SimTime],
    discipline: Discipline,
    rng: &mut SimRng,
    script: Option<(&[usize], &[ScriptedCall])>,
    progress: &mut dyn FnMut(f64),
) -> (RunOutput, CallCounts) {
    let tiers = graph.services.len();
    let first_service: Vec<usize> = graph
        .services
        .iter()
        .scan(0, |acc, &n| {
            let f = *acc;
            *acc += n;
            Some(f)
        })
        .collect();
    let total_services: usize = graph.services.iter().sum();
    let mut services: Vec<Service> = (0..total_services).map(|_| Service::default()).collect();
    let mut calls: Vec<Call> = Vec::new();
    let mut free_calls: Vec<usize> = Vec::new();
    let mut queue: EventQueue<Event> = EventQueue::new();
    for (i, &at) in arrivals.iter().enumerate() {
        queue.schedule(at, Event::Arrive(i));
    }
    let mut done: Vec<Option<SimTime>> = vec![None; arrivals.len()];
    let mut counts = CallCounts { issued: vec![0; tiers], answered: vec![0; tiers] };
    let mut seq = 0u64;
    let mut finished = 0usize;
    let cores = f64::from(graph.cores);
    let width = |n: usize| -> usize {
        match discipline {
            Discipline::Fcfs | Discipline::OldestFirstNonPreemptive => graph.cores as usize,
            Discipline::ProcessorSharing => n,
            Discipline::OldestFirst { degree } => (graph.cores as usize).saturating_mul(degree.max(1) as usize),
        }
    };
    // The log-normal's μ that gives the asked-for mean.
    let work_mu = load.work_mean_s.ln() - load.work_sigma * load.work_sigma / 2.0;

    // Brings a service's running calls up to `now`.
    fn advance(s: &mut Service, calls: &mut [Call], now: SimTime, width: usize, cores: f64) {
        let dt = now.saturating_since(s.last_update).as_secs_f64();
        s.last_update = now;
        if dt <= 0.0 {
            return;
        }
        let running = s.calls.len().min(width);
        let rate = if running == 0 { 0.0 } else { (cores / running as f64).min(1.0) };
        for (_, &c) in s.calls.iter().take(width) {
            calls[c].work_left = (calls[c].work_left - rate * dt).max(0.0);
        }
    }

    // Re-keys the calls that just got a core to (0, ·) so that no call
    // arriving later, however old its request, displaces them.
    fn pin_running(s: &mut Service, width: usize, seq: &mut u64) {
        let newly: Vec<(u64, u64)> = s.calls.keys().take(width).filter(|k| k.0 != 0).copied().collect();
        for k in newly {
            let c = s.calls.remove(&k).expect("a present call");
            *seq += 1;
            s.calls.insert((0, *seq), c);
        }
    }

    // Schedules the next completion check of a service.
    fn reschedule(
        s: &mut Service,
        service: usize,
        calls: &[Call],
        queue: &mut EventQueue<Event>,
        now: SimTime,
        width: usize,
        cores: f64,
    ) {
        s.version += 1;
        let running = s.calls.len().min(width);
        if running == 0 {
            return;
        }
        let rate = (cores / running as f64).min(1.0);
        let least = s.calls.iter().take(width).map(|(_, &c)| calls[c].work_left).fold(f64::INFINITY, f64::min);
        // Round up so the check never comes before the work is done.
        let dt = SimDuration::from_nanos((least / rate * 1e9).ceil() as u64);
        queue.schedule(now + dt, Event::Check { service, version: s.version });
    }

    let issue = |calls: &mut Vec<Call>,
                 free_calls: &mut Vec<usize>,
                 queue: &mut EventQueue<Event>,
                 rng: &mut SimRng,
                 counts: &mut CallCounts,
                 request: usize,
                 tier: usize,
                 parent: Option<usize>,
                 at: SimTime,
                 node: usize| {
        let (service, work) = match script {
            Some((_, nodes)) => (nodes[node].service, nodes[node].work_s),
            None => {
                let service = first_service[tier] + rng.index(graph.services[tier]);
                (service, rng.lognormal(work_mu, load.work_sigma))
            }
        };
        let call = Call { request, tier, parent, service, work_left: work, waiting_children: 0, arrived: at, node };
        let id = match free_calls.pop() {
            Some(id) => {
                calls[id] = call;
                id
            }
            None => {
                calls.push(call);
                calls.len() - 1
            }
        };
        counts.issued[tier] += 1;
        queue.schedule(at, Event::Reach(id));
    };

    while let Some((now, ev)) = queue.pop() {
        match ev {
            Event::Arrive(r) => {
                let node = script.map_or(usize::MAX, |(roots, _)| roots[r]);
                issue(&mut calls, &mut free_calls, &mut queue, rng, &mut counts, r, 0, None, now, node);
            }
            Event::Reach(c) => {
                let sid = calls[c].service;
                let s = &mut services[sid];
                let w = width(s.calls.len() + 1);
                advance(s, &mut calls, now, width(s.calls.len()), cores);
                seq += 1;
                let key = match discipline {
                    Discipline::Fcfs | Discipline::ProcessorSharing => (calls[c].arrived.as_nanos(), seq),
                    Discipline::OldestFirst { .. } => (arrivals[calls[c].request].as_nanos(), seq),
                    // Waiting calls after every running one (pinned at 0).
                    Discipline::OldestFirstNonPreemptive => (arrivals[calls[c].request].as_nanos() + 1, seq),
                };
                calls[c].arrived = now;
                s.calls.insert(key, c);
                if discipline == Discipline::OldestFirstNonPreemptive {
                    pin_running(s, w, &mut seq);
                }
                reschedule(s, sid, &calls, &mut queue, now, w, cores);
            }
            Event::Check { service: sid, version } => {
                let s = &mut services[sid];
                if s.version != version {
                    continue;
                }
                let w = width(s.calls.len());
                advance(s, &mut calls, now, w, cores);
                // Every running call whose work is done leaves.
                let finished_here: Vec<((u64, u64), usize)> = s
                    .calls
                    .iter()
                    .take(w)
                    .filter(|(_, c)| calls[**c].work_left <= 1e-12)
                    .map(|(&k, &c)| (k, c))
                    .collect();
                for (k, _) in &finished_here {
                    s.calls.remove(k);
                }
                if discipline == Discipline::OldestFirstNonPreemptive {
                    pin_running(s, width(s.calls.len()), &mut seq);
                }
                reschedule(s, sid, &calls, &mut queue, now, width(s.calls.len()), cores);
                for (_, c) in finished_here {
                    let tier = calls[c].tier;
                    let children: Vec<usize> = match script {
                        Some((_, nodes)) => nodes[calls[c].node].children.clone(),
                        None if tier + 1 < tiers => {
                            let k = graph.fanout.0 + rng.below(u64::from(graph.fanout.1 - graph.fanout.0 + 1)) as u32;
                            vec![usize::MAX; k as usize]
                        }
                        None => Vec::new(),
                    };
                    if children.is_empty() {
                        queue.schedule(now + graph.net, Event::Answer(c));
                        continue;
                    }
                    calls[c].waiting_children = u32::try_from(children.len()).expect("fan-out fits u32");
                    let request = calls[c].request;
                    for node in children {
                        issue(
                            &mut calls,
                            &mut free_calls,
                            &mut queue,
                            rng,
                            &mut counts,
                            request,
                            tier + 1,
                            Some(c),
                            now + graph.net,
                            node,
                        );
                    }
                }
            }
            Event::Answer(c) => {
                // Call `c` is complete: tell its parent (or finish the request).
                let tier = calls[c].tier;
                counts.answered[tier] += 1;
                let request = calls[c].request;
                let parent = calls[c].parent;
                free_calls.push(c);
                match parent {
                    None => {
                        done[request] = Some(now);
                        finished += 1;
                        if finished.is_multiple_of(4096) {
                            progress(finished as f64 / arrivals.len().max(1) as f64);
                        }
                    }
                    Some(p) => {
                        calls[p].waiting_children -= 1;
                        if calls[p].waiting_children == 0 {
                            queue.schedule(now + graph.net, Event::Answer(p));
                        }
                    }
                }
            }
        }
    }
    progress(1.0);
    (report(load, arrivals, &done), counts)
}

fn report(load: &Load, arrivals: &[SimTime], done: &[Option<SimTime>]) -> RunOutput {
    let mut out = RunOutput::default();
    // Measure the middle: skip the first 5% (warm-up) and the last 10%
    // (the system drains instead of staying loaded).
    let n = arrivals.len();
    let (lo, hi) = (n / 20, n - n / 10);
    let mut rt: Vec<f64> = Vec::with_capacity(hi.saturating_sub(lo));
    for i in lo..hi {
        if let Some(d) = done[i] {
            rt.push(d.saturating_since(arrivals[i]).as_secs_f64() * 1e3);
        }
    }
    if rt.len() < hi.saturating_sub(lo) {
        out.notes.push(format!("{} measured requests never finished", hi - lo - rt.len()));
    }
    // Throughput: answers per second while the measured requests arrive
    // (the offered rate while the system keeps up, what it sustains when
    // it does not).
    let (t0, t1) = (arrivals.get(lo).copied(), hi.checked_sub(1).and_then(|i| arrivals.get(i)).copied());
    let (answered, span) = match (t0, t1) {
        (Some(a), Some(b)) if b > a => {
            (done.iter().flatten().filter(|&&d| d >= a && d <= b).count(), b.saturating_since(a).as_secs_f64())
        }
        _ => (0, f64::NAN),
    };
    rt.sort_by(f64::total_cmp);
    let q = |p: f64| nimbus_sim::stats::quantile_sorted(&rt, p);
    let m = |name: &str, v: f64, b: Better| Metric::new(name, v, b);
    out.metrics = vec![
        m("requests", arrivals.len() as f64, Better::Neither),
        m("measured", rt.len() as f64, Better::Neither),
        m("response_ms_mean", nimbus_sim::stats::mean(&rt), Better::Lower),
        m("response_ms_p50", q(0.5), Better::Lower),
        m("response_ms_p99", q(0.99), Better::Lower),
        m("response_ms_p999", q(0.999), Better::Lower),
        m("throughput_rps", answered as f64 / span, Better::Higher),
        m("offered_rps", load.rate, Better::Neither),
    ];
    let mut cdf = Vec::new();
    for i in 0..=100 {
        let p = f64::from(i) / 100.0;
        cdf.push((q(p), p));
    }
    out.series.push(Series {
        name: "response_cdf".into(),
        x_label: "response time (ms)".into(),
        y_label: "fraction of requests".into(),
        points: cdf,
    });
    out
}

/// Every metric [`run`] reports.
pub const METRICS: &[&str] = &[
    "requests",
    "measured",
    "response_ms_mean",
    "response_ms_p50",
    "response_ms_p99",
    "response_ms_p999",
    "throughput_rps",
    "offered_rps",
];
