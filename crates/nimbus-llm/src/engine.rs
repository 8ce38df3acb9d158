//! The discrete-event loop: arrivals, iterations and model loads on a
//! fleet of replicas, fed by a dispatcher (a router or a queue manager).

use std::sync::Arc;

use nimbus_sim::stats::TimeWeighted;
use nimbus_sim::{EventQueue, SimDuration, SimTime};

use crate::exec::SharedExec;
use crate::replica::{self, Replica, SchedulerConfig};
use crate::request::{ClassSpec, ReqId, RequestSpec, RequestState};

/// A model as one replica group would run it.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Execution-time model.
    pub exec: SharedExec,
    /// KV blocks that fit beside the weights.
    pub total_blocks: u32,
    /// Longest sequence.
    pub max_seq_len: u32,
    /// KV bytes per token, whole replica.
    pub kv_bytes_per_token: f64,
    /// Seconds to load the weights.
    pub load_s: f64,
    /// Decode tokens per second at a full batch (for estimators).
    pub decode_tokens_per_s: f64,
}

/// A group of identical replicas.
#[derive(Debug, Clone)]
pub struct ReplicaGroup {
    /// GPU type name.
    pub gpu: String,
    /// Replicas.
    pub count: u32,
    /// GPUs per replica.
    pub tp: u32,
    /// Model loaded at start (index), if any.
    pub initial_model: Option<u16>,
    /// By model index: how this group runs it (`None`: it does not fit).
    pub deployments: Vec<Option<Deployment>>,
    /// Price per GPU-hour, $.
    pub gpu_hour_usd: f64,
    /// With `Some(n)`, replica k of the group serves only instance `k % n`
    /// of its model (dedicated deployments); `None`: every instance.
    pub pinned_instance: Option<u16>,
    /// Model instances each replica hosts (several when they share experts).
    pub instances_per_replica: u32,
}

/// Everything a run needs besides its dispatcher.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Replica groups.
    pub groups: Vec<ReplicaGroup>,
    /// Model names by index.
    pub models: Vec<String>,
    /// Request classes.
    pub classes: Vec<ClassSpec>,
    /// Scheduler settings of every replica.
    pub scheduler: SchedulerConfig,
    /// Host-GPU bandwidth per GPU for swaps, bytes/s.
    pub pcie_bandwidth: f64,
    /// Stop simulating at this time (requests left are reported unfinished).
    pub horizon: SimTime,
    /// Verify the replicas' accounting after every scheduling decision
    /// (for tests; panics on a violation).
    pub check_invariants: bool,
}

/// The mutable world a dispatcher acts on.
pub struct World<'a> {
    /// Current time.
    pub now: SimTime,
    /// Replicas.
    pub replicas: Vec<Replica>,
    /// Every request of the run.
    pub requests: Vec<RequestState>,
    /// The fleet.
    pub fleet: &'a Fleet,
    /// Model loads started.
    pub model_loads: u32,
    events: EventQueue<Event>,
}

impl World<'_> {
    /// How `replica`'s group runs `model`, if it can.
    pub fn deployment(&self, replica: u32, model: u16) -> Option<&Deployment> {
        self.fleet.groups[self.replicas[replica as usize].group].deployments[model as usize].as_ref()
    }

    /// Places a request in a replica's waiting queue.
    pub fn enqueue(&mut self, replica: u32, id: ReqId) {
        self.requests[id as usize].replica = Some(replica);
        let r = &mut self.replicas[replica as usize];
        r.enqueue(id, &self.requests);
    }

    /// Starts loading `model` on an empty replica; it takes work again when
    /// the load completes.
    pub fn start_load(&mut self, replica: u32, model: u16) {
        let Some(d) = self.deployment(replica, model).cloned() else { return };
        let r = &mut self.replicas[replica as usize];
        debug_assert!(r.is_empty());
        install(r, model, &d);
        let until = self.now + SimDuration::from_secs_f64(d.load_s);
        r.loading_until = Some(until);
        self.model_loads += 1;
        self.events.schedule(until, Event::LoadDone(replica));
    }
}

fn install(r: &mut Replica, model: u16, d: &Deployment) {
    r.served_tokens = 0;
    r.busy_s = 0.0;
    r.model = Some(model);
    r.exec = Some(Arc::clone(&d.exec));
    r.total_blocks = d.total_blocks;
    r.free_blocks = d.total_blocks;
    r.max_seq_len = d.max_seq_len;
    r.kv_bytes_per_token = d.kv_bytes_per_token;
}

/// Feeds replicas with requests.
pub trait Dispatcher {
    /// A request arrived; returns the replicas that may now have work.
    fn on_arrival(&mut self, id: ReqId, world: &mut World) -> Vec<u32>;
    /// `replica` finished an iteration or a load and may take more work.
    fn on_ready(&mut self, _replica: u32, _world: &mut World) {}
    /// A request completed.
    fn on_complete(&mut self, _id: ReqId, _world: &mut World) {}
    /// Metrics of the dispatcher itself, after the run.
    fn report(&self, _requests: &[RequestState]) -> Vec<nimbus_sim::output::Metric> {
        Vec::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    BatchEnd(u32),
    LoadDone(u32),
}

/// What a run leaves behind.
#[derive(Debug)]
pub struct RunResult {
    /// Every request with its timeline.
    pub requests: Vec<RequestState>,
    /// Per replica: (group, busy seconds).
    pub busy_s: Vec<(usize, f64)>,
    /// Time-weighted fraction of all KV blocks in use.
    pub kv_used: TimeWeighted,
    /// KV fraction in use over time (s, fraction), sampled every iteration end.
    pub kv_series: Vec<(f64, f64)>,
    /// End of the run.
    pub end: SimTime,
    /// Model loads after the start.
    pub model_loads: u32,
    /// Iterations run.
    pub iterations: u64,
    /// Σ over iterations of the requests in the batch (prefill chunks and
    /// decodes): the work unit Vidur's and the papers' per-request
    /// iteration counts use.
    pub request_iterations: u64,
}

/// Panics when a replica's block or batch accounting is off.
fn check(r: &Replica, requests: &[RequestState]) {
    let held: u32 = r.running.iter().map(|&id| requests[id as usize].blocks).sum();
    assert!(r.free_blocks <= r.total_blocks, "replica {}: {} free of {}", r.id, r.free_blocks, r.total_blocks);
    assert_eq!(held + r.free_blocks, r.total_blocks, "replica {}: blocks held + free != total", r.id);
    assert!(r.running.len() as u32 <= r.config.max_seqs, "replica {}: more running than max_seqs", r.id);
    for &id in r.waiting.iter().chain(&r.swapped) {
        assert_eq!(requests[id as usize].blocks, 0, "replica {}: queued request {id} holds blocks", r.id);
    }
    for &id in &r.running {
        let q = &requests[id as usize];
        assert!(q.blocks >= r.blocks_for(q.computed), "request {id} has KV without blocks");
    }
}

/// Why no replica of the fleet could ever serve a request, if so.
fn admissible(fleet: &Fleet, spec: &RequestSpec) -> Result<(), &'static str> {
    let tokens = spec.prompt + spec.output;
    let mut reason = "no replica group can hold the model";
    for group in &fleet.groups {
        let Some(d) = &group.deployments[spec.model as usize] else { continue };
        if tokens > d.max_seq_len {
            reason = "longer than the model's context";
            continue;
        }
        let watermark = (fleet.scheduler.watermark * d.total_blocks as f64).ceil() as u32;
        // Orca reserves the longest sequence for every request.
        let reserved = match fleet.scheduler.kind {
            crate::replica::SchedulerKind::Orca => d.max_seq_len,
            _ => tokens,
        };
        if reserved.div_ceil(fleet.scheduler.block_tokens) + watermark > d.total_blocks {
            reason = "larger than a replica's KV cache";
            continue;
        }
        return Ok(());
    }
    Err(reason)
}

/// Runs `specs` (sorted by arrival) through the fleet.
pub fn run(
    fleet: &Fleet,
    specs: &[RequestSpec],
    dispatcher: &mut dyn Dispatcher,
    mut progress: impl FnMut(f64),
) -> RunResult {
    let mut replicas = Vec::new();
    for (g, group) in fleet.groups.iter().enumerate() {
        for k in 0..group.count {
            let mut r = Replica {
                id: replicas.len() as u32,
                group: g,
                tp: group.tp,
                model: None,
                exec: None,
                total_blocks: 0,
                free_blocks: 0,
                max_seq_len: 0,
                kv_bytes_per_token: 0.0,
                waiting: Default::default(),
                running: Vec::new(),
                swapped: Default::default(),
                batch: None,
                loading_until: None,
                config: fleet.scheduler,
                instance: group.pinned_instance.map(|n| (k % n.max(1) as u32) as u16),
                served_tokens: 0,
                busy_s: 0.0,
            };
            if let Some(m) = group.initial_model
                && let Some(d) = &group.deployments[m as usize]
            {
                install(&mut r, m, d);
            }
            replicas.push(r);
        }
    }
    let requests = specs
        .iter()
        .map(|s| {
            let mut r = RequestState::new(*s, fleet.classes[s.class as usize].due(s.arrival));
            r.rejected = admissible(fleet, s).err();
            r
        })
        .collect();
    let mut world = World { now: SimTime::ZERO, replicas, requests, fleet, model_loads: 0, events: EventQueue::new() };
    let total_blocks: f64 = world.replicas.iter().map(|r| r.total_blocks as f64).sum::<f64>().max(1.0);
    let mut used_blocks = 0.0f64;
    let mut kv_used = TimeWeighted::new(SimTime::ZERO, 0.0);
    let mut kv_series = Vec::new();
    let mut busy = vec![0.0f64; world.replicas.len()];
    // When each replica's latest iteration ends (one at a time per replica).
    let mut busy_until = vec![SimTime::ZERO; world.replicas.len()];
    let mut iterations = 0u64;
    let mut request_iterations = 0u64;
    let mut next = 0usize;
    let span = specs.last().map_or(1.0, |s| s.arrival.as_secs_f64().max(1.0));
    let mut last_progress = 0.0;
    loop {
        let arrival = specs.get(next).map(|s| s.arrival);
        let event = world.events.peek_time();
        let take_arrival = match (arrival, event) {
            (Some(a), Some(e)) => a <= e,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let at = if take_arrival { arrival } else { event }.unwrap_or(SimTime::MAX);
        if at > fleet.horizon {
            break;
        }
        world.now = at;
        let touched: Vec<u32> = if take_arrival {
            let id = next as ReqId;
            next += 1;
            let fraction = at.as_secs_f64() / span;
            if fraction - last_progress >= 0.01 {
                progress(fraction.min(1.0));
                last_progress = fraction;
            }
            if world.requests[id as usize].rejected.is_some() {
                continue;
            }
            dispatcher.on_arrival(id, &mut world)
        } else {
            let Some((_, ev)) = world.events.pop() else { break };
            match ev {
                Event::BatchEnd(rid) => {
                    let r = &mut world.replicas[rid as usize];
                    let Some(batch) = r.batch.take() else { continue };
                    let before: u64 = batch.steps.iter().map(|s| world.requests[s.0 as usize].generated as u64).sum();
                    let done = replica::apply(&batch, &mut world.requests, at);
                    let after: u64 = batch.steps.iter().map(|s| world.requests[s.0 as usize].generated as u64).sum();
                    world.replicas[rid as usize].served_tokens += after - before;
                    for id in done {
                        world.replicas[rid as usize].finish(id, &mut world.requests);
                        dispatcher.on_complete(id, &mut world);
                    }
                }
                Event::LoadDone(rid) => world.replicas[rid as usize].loading_until = None,
            }
            let rid = match ev {
                Event::BatchEnd(r) | Event::LoadDone(r) => r,
            };
            dispatcher.on_ready(rid, &mut world);
            vec![rid]
        };
        for rid in touched {
            let now = world.now;
            let r = &mut world.replicas[rid as usize];
            if !r.is_idle() {
                continue;
            }
            let Some(exec) = r.exec.clone() else { continue };
            let scheduled = r.schedule(&mut world.requests, now);
            if fleet.check_invariants {
                check(r, &world.requests);
            }
            if let Some(batch) = scheduled {
                let batch_requests = batch.shape.prefill_requests + batch.shape.decode_requests;
                let swap_s = batch.swap_bytes / (fleet.pcie_bandwidth * r.tp as f64);
                let seconds = exec.iteration_s(&batch.shape) + swap_s;
                let duration = SimDuration::from_nanos(SimDuration::from_secs_f64(seconds).as_nanos().max(1));
                busy[rid as usize] += duration.as_secs_f64();
                busy_until[rid as usize] = now + duration;
                r.busy_s += duration.as_secs_f64();
                r.batch = Some(batch);
                iterations += 1;
                request_iterations += u64::from(batch_requests);
                world.events.schedule(now + duration, Event::BatchEnd(rid));
            }
        }
        let used: f64 = world.replicas.iter().map(|r| (r.total_blocks - r.free_blocks) as f64).sum();
        if used != used_blocks {
            used_blocks = used;
            kv_used.set(world.now, used / total_blocks);
            if kv_series.last().is_none_or(|&(t, _): &(f64, f64)| world.now.as_secs_f64() - t >= 1.0) {
                kv_series.push((world.now.as_secs_f64(), used / total_blocks));
            }
        }
    }
    progress(1.0);
    let end = world.now;
    // An iteration still running when the run ends counts only up to the
    // end, so a replica's busy time never exceeds the span.
    for (b, until) in busy.iter_mut().zip(&busy_until) {
        *b -= until.since(end.min(*until)).as_secs_f64();
        *b = b.max(0.0);
    }
    let busy_s = world.replicas.iter().map(|r| (r.group, busy[r.id as usize])).collect();
    RunResult {
        requests: world.requests,
        busy_s,
        kv_used,
        kv_series,
        end,
        model_loads: world.model_loads,
        iterations,
        request_iterations,
    }
}
