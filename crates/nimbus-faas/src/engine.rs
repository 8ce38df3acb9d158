//! The serverless platform and its event loop.
//!
//! Hosts (invokers) have memory; sandboxes hold one app, run up to the
//! platform's `concurrency` invocations at a time (1 by default, as in
//! OpenWhisk) and occupy their app's memory from creation to unloading. An
//! invocation joins a busy sandbox of its app with a free slot, else runs
//! warm in an idle one, else cold in a new one (the cold start's components
//! add to its latency). Under Knative's autoscaler (policy `knative`) pods
//! are started and removed by the autoscaler instead, and an invocation
//! without a free slot queues at the activator. A new sandbox goes to
//! a host chosen by the balancer; when no host has room, idle sandboxes are
//! evicted by the policy's priority, host by host in probe order; when even
//! that fails, the invocation waits (FIFO) and is dropped, with the reason,
//! after `max_wait`.
//!
//! Balancers: OpenWhisk's (home invoker `hash(app) mod N`, then steps of a
//! size coprime with N, so every host is probed once) and least-loaded
//! (most free memory first).
//!
//! Which of an app's idle sandboxes a warm invocation reuses is a platform
//! parameter ([`ReuseOrder`]), since it decides which sandboxes age out
//! under a keep-alive window: reusing the most recently idled one (the
//! default) lets the others expire, reusing the least recently idled one
//! renews every sandbox in turn. What platforms do: OpenWhisk's invoker
//! takes an arbitrary matching warm container (`ContainerPool.schedule`:
//! the first match in a hash-ordered map of idle containers, in effect
//! random) and evicts the least recently used; Serverless in the Wild
//! (ATC'20) models one sandbox per app, so the order never arises there;
//! FaasCache's simulator keeps an app's containers in one list and reuses
//! the first idle one it finds.

use std::collections::{BTreeSet, VecDeque};

use nimbus_sim::{EventQueue, RngStreams, SimDuration, SimRng, SimTime};

use crate::kpa::{Kpa, KpaConfig};
use crate::policy::{AfterExecution, KeepAlive, PreloadPlan};
use crate::workload::{App, Function, Invocation, Source};

/// How new sandboxes are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balancer {
    /// OpenWhisk's hashed home invoker with co-prime stepping.
    OpenWhisk,
    /// The host with the most free memory.
    LeastLoaded,
}

/// Which idle sandbox of an app a warm invocation reuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseOrder {
    /// The one idle the shortest time (a stack).
    MostRecent,
    /// The one idle the longest time (a queue).
    LeastRecent,
    /// One chosen uniformly at random (the run's `reuse` random stream).
    Random,
}

/// Platform settings.
#[derive(Debug, Clone)]
pub struct Platform {
    /// Memory of each host, MB.
    pub host_mem_mb: Vec<u64>,
    /// Placement.
    pub balancer: Balancer,
    /// Which idle sandbox a warm invocation reuses.
    pub reuse: ReuseOrder,
    /// Invocations one sandbox runs at once (1: OpenWhisk; Knative's
    /// container concurrency).
    pub concurrency: u32,
    /// Longest an invocation waits for memory before it is dropped.
    pub max_wait: SimDuration,
    /// Stop at this time; later arrivals are not generated.
    pub horizon: SimTime,
    /// Keep one record per invocation up to this many (aggregates always).
    pub record_limit: usize,
    /// Verify memory accounting after every event (tests).
    pub check_invariants: bool,
    /// Energy and carbon accounting, when wanted.
    pub energy: Option<crate::energy::EnergyConfig>,
    /// Slow-down of a restored sandbox's first execution (lazy page
    /// faults), as a fraction: 0.95 is REAP's +95%.
    pub first_run_penalty: f64,
    /// Whether a model stays in the sandbox after the handler returns
    /// (`false`: stateless handlers that load it on every invocation
    /// unless it was pre-loaded, InstaInfer's setting).
    pub models_stay_loaded: bool,
}

/// A total order on priorities as integers (for ordered sets).
fn order_key(priority: f64) -> u64 {
    let bits = priority.to_bits();
    if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
}

/// FNV-1a, for the home-invoker hash (stable across platforms and runs).
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// OpenWhisk's probe order for an app hash over `n` hosts: the home
/// invoker, then steps of a size coprime with `n`.
pub fn probe_order(hash: u64, n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let steps: Vec<usize> = (1..=n).filter(|&s| gcd(s, n) == 1).collect();
    let step = steps[(hash / n as u64) as usize % steps.len()];
    let home = (hash % n as u64) as usize;
    (0..n).map(|i| (home + i * step) % n).collect()
}

#[derive(Debug, Clone)]
struct Sandbox {
    app: u32,
    host: u32,
    mem_mb: u32,
    /// `Some(since)` when idle.
    idle_since: Option<SimTime>,
    priority: f64,
    /// Invocations it has run.
    hits: u64,
    created: SimTime,
    /// When it is unloaded if still idle.
    expire_at: Option<SimTime>,
    /// The time of its pending expiry event, if any (one at a time, so
    /// the event queue stays O(sandboxes) however many executions end).
    timer_at: Option<SimTime>,
    /// The invocations running (at most the platform's concurrency).
    running: Vec<Running>,
    /// Started by the autoscaler and not ready yet (until `ready_at`); it
    /// serves nothing meanwhile.
    starting: bool,
    /// When its start-up (cold start or scale-up) is over: an invocation
    /// joining it earlier waits until then.
    ready_at: SimTime,
    /// `Some(t)`: its app's model is in memory from `t` (loading until then).
    model_ready: Option<SimTime>,
    /// Added to a running microVM as a memory block (Faascale), not
    /// restored as a sandbox of its own.
    scaled_up: bool,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    /// Identifies it among its sandbox's runs.
    seq: u64,
    function: u32,
    arrival: SimTime,
    start: SimTime,
    cold: bool,
    cold_ms: f64,
    model_ms: f64,
    scale_up: bool,
    exec_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// (sandbox slot, run sequence number)
    Done(u32, u64),
    /// (sandbox slot, slot epoch)
    Expire(u32, u32),
    /// (app, generation, keep-alive ns)
    Prewarm(u32, u32, u64),
    /// A deferred invocation's tolerance ran out: (app, sequence number).
    Deferred(u32, u64),
    /// Pre-load an idle sandbox's model: (slot, epoch, start of its idle period, ns).
    Preload(u32, u32, u64),
    /// Drop a pre-loaded, unused model: (slot, epoch, start of its idle period, ns).
    Offload(u32, u32, u64),
    /// An autoscaler-started pod is ready: (slot, epoch).
    PodReady(u32, u32),
    /// The autoscaler's periodic decision.
    Tick,
}

/// One invocation's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// Function.
    pub function: u32,
    /// Arrival.
    pub arrival: SimTime,
    /// When it started executing (after any cold start and wait).
    pub start: SimTime,
    /// Completion.
    pub end: SimTime,
    /// Whether it needed a new sandbox.
    pub cold: bool,
    /// Cold-start latency, ms (0 when warm; the scale-up latency for a
    /// scale-up).
    pub cold_ms: f64,
    /// Started as a memory block added to a running microVM (Faascale).
    pub scale_up: bool,
    /// Model-loading latency on the invocation path, ms.
    pub model_ms: f64,
}

/// Per-app totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppStats {
    /// Invocations that completed.
    pub invocations: u64,
    /// Of which cold.
    pub cold: u64,
    /// Dropped (no memory within `max_wait`, or unserved at the end).
    pub dropped: u64,
    /// MB·s of loaded, idle sandboxes.
    pub wasted_mb_s: f64,
    /// MB·s of loaded sandboxes (idle or busy).
    pub loaded_mb_s: f64,
}

/// What a run leaves behind.
#[derive(Debug)]
pub struct RunResult {
    /// Per app.
    pub apps: Vec<AppStats>,
    /// Per invocation, up to the record limit.
    pub records: Vec<Record>,
    /// Whether records were truncated at the limit.
    pub records_truncated: bool,
    /// Latencies (arrival to completion) of every completed invocation, µs.
    pub latency_us: nimbus_sim::stats::Histogram,
    /// Cold-start latencies, µs.
    pub cold_us: nimbus_sim::stats::Histogram,
    /// Arrival to start of execution, µs.
    pub start_delay_us: nimbus_sim::stats::Histogram,
    /// Deferrable invocations that started later than their tolerance.
    pub tolerance_misses: u64,
    /// Loaded memory, MB, sampled once per simulated minute: (s, MB).
    pub memory_series: Vec<(f64, f64)>,
    /// Peak loaded memory, MB.
    pub peak_mb: u64,
    /// Invocations that arrived.
    pub arrivals: u64,
    /// Dropped invocations and why.
    pub dropped: Vec<(&'static str, u64)>,
    /// Evictions for memory.
    pub evictions: u64,
    /// Sandboxes loaded by pre-warming.
    pub prewarms: u64,
    /// Invocations deferred (DFaaS).
    pub deferred: u64,
    /// Model-loading latency of invocations of apps with a model, µs.
    pub model_load_us: nimbus_sim::stats::Histogram,
    /// Models pre-loaded into idle sandboxes.
    pub preloads: u64,
    /// Pre-loaded models dropped unused.
    pub offloads: u64,
    /// Instances started by growing a running microVM (Faascale).
    pub scale_ups: u64,
    /// Latencies of instance starts (cold starts and scale-ups), µs.
    pub instance_start_us: nimbus_sim::stats::Histogram,
    /// Execution times, µs.
    pub exec_us: nimbus_sim::stats::Histogram,
    /// End of the run.
    pub end: SimTime,
    /// Energy and carbon, when accounted.
    pub energy: Option<crate::energy::Accountant>,
}

struct Engine<'a> {
    apps: &'a [App],
    functions: &'a [Function],
    platform: &'a Platform,
    policy: &'a mut dyn KeepAlive,
    exec_rng: SimRng,
    reuse_rng: SimRng,
    used_mb: Vec<u64>,
    sandboxes: Vec<Option<Sandbox>>,
    free_slots: Vec<u32>,
    idle_by_app: Vec<Vec<u32>>,
    /// Busy sandboxes per app with room for another invocation.
    spare_by_app: Vec<Vec<u32>>,
    /// Knative: per app, the autoscaler, pods starting, and invocations
    /// queued at the activator for a free slot.
    autoscaler: Option<KpaConfig>,
    kpa: Vec<Option<Kpa>>,
    kpa_active: BTreeSet<u32>,
    tick_pending: bool,
    starting_by_app: Vec<u32>,
    activator_by_app: Vec<VecDeque<Invocation>>,
    activator_count: usize,
    next_run: u64,
    /// Idle sandboxes per host by (eviction key, id): the first is evicted first.
    idle_by_host: Vec<BTreeSet<(u64, u32)>>,
    idle_mb_by_host: Vec<u64>,
    sandboxes_by_app: Vec<u32>,
    /// Per app, (host, sandboxes there): where its microVMs run.
    hosts_by_app: Vec<Vec<(u32, u32)>>,
    /// Incremented each time a slot is reused, so stale timers are ignored.
    slot_epoch: Vec<u32>,
    /// Invocations run by each app's current sandboxes.
    hits_by_app: Vec<u64>,
    last_end: Vec<Option<SimTime>>,
    busy_by_app: Vec<u32>,
    busy_total: u64,
    prewarm_gen: Vec<u32>,
    probes: Vec<Vec<usize>>,
    /// Invocations waiting for memory, FIFO, by sequence number.
    waiting: VecDeque<(u64, Invocation)>,
    /// The same, per app.
    waiting_by_app: Vec<VecDeque<(u64, Invocation)>>,
    /// Sequence numbers served out of order (by their app's sandbox).
    taken: BTreeSet<u64>,
    waiting_count: usize,
    next_seq: u64,
    /// Deferred invocations per app (DFaaS), by sequence number.
    deferred_by_app: Vec<VecDeque<(u64, Invocation)>>,
    deferred_count: usize,
    events: EventQueue<Event>,
    now: SimTime,
    stats: Vec<AppStats>,
    result: RunResult,
    dropped_wait: u64,
    loaded_mb: u64,
    energy: Option<crate::energy::Accountant>,
}

impl Engine<'_> {
    fn account_memory(&mut self) {
        self.result.peak_mb = self.result.peak_mb.max(self.loaded_mb);
        let minute = (self.now.as_secs_f64() / 60.0).floor() * 60.0;
        if self.result.memory_series.last().is_none_or(|&(t, _)| t < minute) {
            self.result.memory_series.push((minute, self.loaded_mb as f64));
        }
    }

    fn new_sandbox(&mut self, app: u32, host: usize) -> u32 {
        let mem = self.apps[app as usize].mem_mb;
        if let Some(e) = self.energy.as_mut() {
            e.load(host, app, u64::from(mem), self.now);
        }
        self.sandboxes_by_app[app as usize] += 1;
        let on_hosts = &mut self.hosts_by_app[app as usize];
        match on_hosts.iter_mut().find(|h| h.0 == host as u32) {
            Some(h) => h.1 += 1,
            None => {
                on_hosts.push((host as u32, 1));
                on_hosts.sort_unstable();
            }
        }
        self.used_mb[host] += u64::from(mem);
        self.loaded_mb += u64::from(mem);
        let sandbox = Sandbox {
            app,
            host: host as u32,
            mem_mb: mem,
            idle_since: None,
            priority: 0.0,
            hits: 0,
            created: self.now,
            expire_at: None,
            timer_at: None,
            running: Vec::new(),
            starting: false,
            ready_at: self.now,
            model_ready: None,
            scaled_up: false,
        };
        match self.free_slots.pop() {
            Some(id) => {
                self.sandboxes[id as usize] = Some(sandbox);
                self.slot_epoch[id as usize] += 1;
                id
            }
            None => {
                self.sandboxes.push(Some(sandbox));
                self.slot_epoch.push(0);
                (self.sandboxes.len() - 1) as u32
            }
        }
    }

    /// Unloads a sandbox (idle or never used), charging its idle time.
    fn unload(&mut self, id: u32) {
        let Some(s) = self.sandboxes[id as usize].take() else { return };
        if let Some(e) = self.energy.as_mut() {
            e.unload(s.host as usize, s.app, u64::from(s.mem_mb), self.now);
        }
        let stats = &mut self.stats[s.app as usize];
        stats.loaded_mb_s += f64::from(s.mem_mb) * self.now.since(s.created).as_secs_f64();
        if let Some(since) = s.idle_since {
            stats.wasted_mb_s += f64::from(s.mem_mb) * self.now.since(since).as_secs_f64();
            self.idle_by_app[s.app as usize].retain(|&x| x != id);
            self.idle_by_host[s.host as usize].remove(&(order_key(s.priority), id));
            self.idle_mb_by_host[s.host as usize] -= u64::from(s.mem_mb);
        }
        self.sandboxes_by_app[s.app as usize] -= 1;
        if s.starting {
            self.starting_by_app[s.app as usize] -= 1;
        }
        let on_hosts = &mut self.hosts_by_app[s.app as usize];
        if let Some(i) = on_hosts.iter().position(|h| h.0 == s.host) {
            on_hosts[i].1 -= 1;
            if on_hosts[i].1 == 0 {
                on_hosts.remove(i);
            }
        }
        self.hits_by_app[s.app as usize] -= s.hits;
        self.used_mb[s.host as usize] -= u64::from(s.mem_mb);
        self.loaded_mb -= u64::from(s.mem_mb);
        self.free_slots.push(id);
    }

    fn host_order(&self, app: u32) -> Vec<usize> {
        match self.platform.balancer {
            Balancer::OpenWhisk => self.probes[app as usize].clone(),
            Balancer::LeastLoaded => {
                let mut order: Vec<usize> = (0..self.used_mb.len()).collect();
                order.sort_by_key(|&h| (std::cmp::Reverse(self.platform.host_mem_mb[h] - self.used_mb[h]), h));
                order
            }
        }
    }

    /// A host with room for `app`, evicting idle sandboxes if needed.
    fn place(&mut self, app: u32) -> Option<usize> {
        let mem = u64::from(self.apps[app as usize].mem_mb);
        let order = self.host_order(app);
        if let Some(&h) = order.iter().find(|&&h| self.platform.host_mem_mb[h] - self.used_mb[h] >= mem) {
            return Some(h);
        }
        for &h in &order {
            let free = self.platform.host_mem_mb[h] - self.used_mb[h];
            if free + self.idle_mb_by_host[h] < mem {
                continue;
            }
            while self.platform.host_mem_mb[h] - self.used_mb[h] < mem {
                let &(_, victim) = self.idle_by_host[h].first().expect("enough idle memory was counted");
                let Some(s) = self.sandboxes[victim as usize].as_ref() else { break };
                let (app, priority) = (s.app, s.priority);
                self.unload(victim);
                self.policy.on_evict(app, priority, self.sandboxes_by_app[app as usize] == 0);
                self.result.evictions += 1;
            }
            return Some(h);
        }
        None
    }

    /// Gives `app`'s idle sandboxes the priority the policy shares among
    /// an app's sandboxes.
    fn share_priority(&mut self, app: u32, priority: f64) {
        for i in 0..self.idle_by_app[app as usize].len() {
            let id = self.idle_by_app[app as usize][i];
            let Some(s) = self.sandboxes[id as usize].as_mut() else { continue };
            let host = s.host as usize;
            self.idle_by_host[host].remove(&(order_key(s.priority), id));
            s.priority = priority;
            self.idle_by_host[host].insert((order_key(priority), id));
        }
    }

    /// Starts `inv` if a sandbox is available or can be made; `false` when
    /// there is no memory.
    fn try_start(&mut self, inv: Invocation) -> bool {
        self.start_in(inv, false)
    }

    /// [`Self::try_start`]; `waited_for_pod`: it queued at the activator
    /// until a new pod was ready, so it counts as a cold start whose
    /// latency is its wait.
    fn start_in(&mut self, inv: Invocation, waited_for_pod: bool) -> bool {
        let f = &self.functions[inv.function as usize];
        let app = f.app;
        let spare = self.spare_by_app[app as usize].last().copied();
        let (id, cold, cold_ms) = match spare.or_else(|| self.take_idle(app)) {
            Some(id) if spare == Some(id) => (id, false, 0.0),
            Some(id) => {
                let s = self.sandboxes[id as usize].as_mut().expect("idle sandbox exists");
                let since = s.idle_since.take().expect("idle");
                s.expire_at = None;
                let idle = self.now.since(since).as_secs_f64();
                let (mem, host) = (s.mem_mb, s.host);
                self.stats[app as usize].wasted_mb_s += f64::from(mem) * idle;
                let key = (order_key(self.sandboxes[id as usize].as_ref().map_or(0.0, |s| s.priority)), id);
                self.idle_by_host[host as usize].remove(&key);
                self.idle_mb_by_host[host as usize] -= u64::from(mem);
                (id, false, 0.0)
            }
            None => match self.vertical_host(app) {
                Some((host, ms)) => {
                    let id = self.new_sandbox(app, host);
                    self.sandboxes[id as usize].as_mut().expect("new sandbox").scaled_up = true;
                    self.result.scale_ups += 1;
                    (id, false, ms)
                }
                None => {
                    let Some(host) = self.place(app) else { return false };
                    (self.new_sandbox(app, host), true, self.apps[app as usize].cold.total_ms())
                }
            },
        };
        let (first_run, scale_up) =
            self.sandboxes[id as usize].as_ref().map_or((false, false), |s| (s.hits == 0, s.scaled_up));
        // Joining a sandbox that is still starting waits for it.
        let ready = self.sandboxes[id as usize].as_ref().map_or(self.now, |s| s.ready_at.max(self.now));
        let ready = ready + SimDuration::from_secs_f64(cold_ms / 1e3);
        let model_ms = match (self.apps[app as usize].model, self.sandboxes[id as usize].as_ref()) {
            (Some(model), Some(s)) => match s.model_ready {
                Some(at) => at.since(ready.min(at)).as_secs_f64() * 1e3,
                None => model.load_ms,
            },
            _ => 0.0,
        };
        let mut exec_ms = f.exec.sample(&mut self.exec_rng).max(0.0);
        if first_run && !scale_up {
            exec_ms *= 1.0 + self.platform.first_run_penalty;
        }
        let mem = self.apps[app as usize].mem_mb;
        self.hits_by_app[app as usize] += 1;
        if let Some(s) = self.sandboxes[id as usize].as_mut() {
            s.hits += 1;
        }
        let freq = self.hits_by_app[app as usize];
        let priority = self.policy.priority_on_use(app, self.now, mem, self.apps[app as usize].cold.total_ms(), freq);
        let start = ready + SimDuration::from_secs_f64(model_ms / 1e3);
        let end = start + SimDuration::from_secs_f64(exec_ms / 1e3);
        if self.policy.shares_priority() {
            self.share_priority(app, priority);
        }
        let s = self.sandboxes[id as usize].as_mut().expect("sandbox exists");
        s.priority = priority;
        s.ready_at = s.ready_at.max(ready);
        if let Some(e) = self.energy.as_mut() {
            e.start(s.host as usize, app, self.now);
        }
        let scale_up = first_run && scale_up;
        let (cold, cold_ms) = if waited_for_pod && first_run {
            (true, self.now.since(inv.at).as_secs_f64() * 1e3)
        } else {
            (cold, cold_ms)
        };
        let seq = self.next_run;
        self.next_run += 1;
        s.running.push(Running {
            seq,
            function: inv.function,
            arrival: inv.at,
            start,
            cold,
            cold_ms,
            model_ms,
            scale_up,
            exec_ms,
        });
        s.model_ready = Some(s.model_ready.map_or(start, |t| t.min(start)));
        let (running, full) = (s.running.len(), s.running.len() >= self.platform.concurrency.max(1) as usize);
        let spare = &mut self.spare_by_app[app as usize];
        if full {
            if let Some(pos) = spare.iter().rposition(|&x| x == id) {
                spare.remove(pos);
            }
        } else if running == 1 {
            spare.push(id);
        }
        self.busy_by_app[app as usize] += 1;
        self.busy_total += 1;
        self.events.schedule(end, Event::Done(id, seq));
        true
    }

    fn drain_waiting(&mut self) {
        while let Some(&(seq, inv)) = self.waiting.front() {
            if self.taken.remove(&seq) {
                self.waiting.pop_front();
                continue;
            }
            if self.now.since(inv.at) > self.platform.max_wait {
                self.pop_waiting_front();
                self.drop_invocation(inv, true);
                continue;
            }
            if !self.try_start(inv) {
                break;
            }
            self.pop_waiting_front();
        }
    }

    fn pop_waiting_front(&mut self) {
        if let Some((seq, inv)) = self.waiting.pop_front() {
            let app = self.functions[inv.function as usize].app as usize;
            if self.waiting_by_app[app].front().is_some_and(|w| w.0 == seq) {
                self.waiting_by_app[app].pop_front();
            }
            self.waiting_count -= 1;
        }
    }

    fn push_waiting(&mut self, inv: Invocation) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let app = self.functions[inv.function as usize].app as usize;
        self.waiting.push_back((seq, inv));
        self.waiting_by_app[app].push_back((seq, inv));
        self.waiting_count += 1;
    }

    fn drop_invocation(&mut self, inv: Invocation, timed_out: bool) {
        let app = self.functions[inv.function as usize].app;
        self.stats[app as usize].dropped += 1;
        if timed_out {
            self.dropped_wait += 1;
        }
    }

    fn arrival(&mut self, inv: Invocation) {
        self.result.arrivals += 1;
        let app = self.functions[inv.function as usize].app as usize;
        let idle = match (self.busy_by_app[app], self.last_end[app]) {
            (0, Some(end)) => Some(self.now.since(end)),
            _ => None,
        };
        self.policy.on_arrival(app as u32, self.now, idle);
        // A new execution makes a new decision; a pending pre-warm is moot.
        self.prewarm_gen[app] += 1;
        let warm = !self.idle_by_app[app].is_empty() || !self.spare_by_app[app].is_empty();
        if self.autoscaler.is_some() {
            self.activate(app as u32);
            if !warm && self.sandboxes_by_app[app] > 0 {
                // Pods exist but are full or starting: queue at the activator.
                self.activator_by_app[app].push_back(inv);
                self.activator_count += 1;
                return;
            }
            // A free slot, or scale from zero.
            self.start_or_wait(inv);
            return;
        }
        let tolerance = self.policy.tolerance(self.functions[inv.function as usize].trigger);
        if !warm && tolerance > SimDuration::ZERO && self.busy_by_app[app] > 0 {
            // Wait for one of the app's running sandboxes; start cold when
            // the tolerance (less the cold start) runs out.
            let seq = self.next_seq;
            self.next_seq += 1;
            self.deferred_by_app[app].push_back((seq, inv));
            self.deferred_count += 1;
            let cold = SimDuration::from_secs_f64(self.apps[app].cold.total_ms() / 1e3);
            let latest = (inv.at + tolerance).since(SimTime::ZERO).as_nanos().saturating_sub(cold.as_nanos());
            let latest = SimTime::from_nanos(latest).max(self.now);
            self.result.deferred += 1;
            self.events.schedule(latest, Event::Deferred(app as u32, seq));
            return;
        }
        self.start_or_wait(inv);
    }

    /// Starts `inv` now if it can, else queues it for memory: a warm
    /// sandbox needs no memory and serves at once; a cold start waits
    /// behind earlier invocations waiting for memory.
    fn start_or_wait(&mut self, inv: Invocation) {
        let app = self.functions[inv.function as usize].app as usize;
        let may_start =
            !self.idle_by_app[app].is_empty() || !self.spare_by_app[app].is_empty() || self.waiting_count == 0;
        if !(may_start && self.try_start(inv)) {
            self.push_waiting(inv);
        }
    }

    /// A deferred invocation whose tolerance ran out starts now (cold, or
    /// waits for memory).
    fn deferred_due(&mut self, app: u32, seq: u64) {
        let queue = &mut self.deferred_by_app[app as usize];
        let Some(pos) = queue.iter().position(|d| d.0 == seq) else { return };
        let (_, inv) = queue.remove(pos).expect("position is valid");
        self.deferred_count -= 1;
        self.start_or_wait(inv);
    }

    fn done(&mut self, id: u32, seq: u64) {
        let (app, run, host, left, was_full) = {
            let s = self.sandboxes[id as usize].as_mut().expect("running sandbox");
            let was_full = s.running.len() >= self.platform.concurrency.max(1) as usize;
            let pos = s.running.iter().position(|r| r.seq == seq).expect("the run is on its sandbox");
            let run = s.running.swap_remove(pos);
            (s.app, run, s.host, s.running.len(), was_full)
        };
        // Room again: listed as spare while others still run, unlisted
        // when it falls idle.
        let spare = &mut self.spare_by_app[app as usize];
        if left == 0 {
            if let Some(pos) = spare.iter().rposition(|&x| x == id) {
                spare.remove(pos);
            }
        } else if was_full {
            spare.push(id);
        }
        if let Some(e) = self.energy.as_mut() {
            e.stop(host as usize, app, self.now);
        }
        let stats = &mut self.stats[app as usize];
        stats.invocations += 1;
        if run.cold {
            stats.cold += 1;
            self.result.cold_us.record((run.cold_ms * 1e3) as u64);
        }
        if run.cold || run.scale_up {
            self.result.instance_start_us.record((run.cold_ms * 1e3) as u64);
        }
        self.result.exec_us.record((run.exec_ms * 1e3) as u64);
        // Asked once per completion: whether the pre-loader holds the model
        // here, and when it loads or drops it if the sandbox falls idle.
        let preload = self.preload_plan(app);
        if self.apps[app as usize].model.is_some() {
            self.result.model_load_us.record((run.model_ms * 1e3) as u64);
            // A stateless handler frees its model when it returns, unless
            // the platform's pre-loader holds it (it would load it there
            // again anyway).
            if !self.platform.models_stay_loaded && preload.is_none() && left == 0 {
                self.sandboxes[id as usize].as_mut().expect("sandbox").model_ready = None;
            }
        }
        self.result.latency_us.record(self.now.since(run.arrival).as_nanos() / 1_000);
        let delay = run.start.since(run.arrival);
        self.result.start_delay_us.record(delay.as_nanos() / 1_000);
        let tolerance = self.policy.tolerance(self.functions[run.function as usize].trigger);
        if tolerance > SimDuration::ZERO && delay > tolerance + SimDuration::from_nanos(1_000_000) {
            self.result.tolerance_misses += 1;
        }
        if self.result.records.len() < self.platform.record_limit {
            self.result.records.push(Record {
                function: run.function,
                arrival: run.arrival,
                start: run.start,
                end: self.now,
                cold: run.cold,
                cold_ms: run.cold_ms,
                scale_up: run.scale_up,
                model_ms: run.model_ms,
            });
        } else if self.platform.record_limit > 0 {
            self.result.records_truncated = true;
        }
        self.busy_by_app[app as usize] -= 1;
        self.busy_total -= 1;
        self.last_end[app as usize] = Some(self.now);
        if left > 0 {
            // Still busy: the freed slot serves a waiting invocation of the
            // app, if any.
            if !self.waiting_by_app[app as usize].is_empty() {
                self.take_waiting(app);
            } else if let Some(inv) = self.activator_by_app[app as usize].pop_front() {
                self.activator_count -= 1;
                let started = self.try_start(inv);
                debug_assert!(started, "a spare slot of the app is available");
            } else if let Some((_, inv)) = self.deferred_by_app[app as usize].pop_front() {
                self.deferred_count -= 1;
                let started = self.try_start(inv);
                debug_assert!(started, "a spare slot of the app is available");
            }
            return;
        }
        // A waiting invocation of the same app takes the sandbox at once.
        if !self.waiting_by_app[app as usize].is_empty() {
            self.mark_idle(id);
            self.take_waiting(app);
            return;
        }
        // Then one queued at the activator (Knative), warm.
        if let Some(inv) = self.activator_by_app[app as usize].pop_front() {
            self.activator_count -= 1;
            self.mark_idle(id);
            let started = self.try_start(inv);
            debug_assert!(started, "an idle sandbox of the app is available");
            return;
        }
        // Then a deferred one (DFaaS), warm.
        if let Some((_, inv)) = self.deferred_by_app[app as usize].pop_front() {
            self.deferred_count -= 1;
            self.mark_idle(id);
            let started = self.try_start(inv);
            debug_assert!(started, "an idle sandbox of the app is available");
            return;
        }
        match self.policy.after_execution(app, self.now) {
            AfterExecution::KeepFor(keep) => {
                self.mark_idle(id);
                self.set_expiry(id, self.now + keep);
                self.plan_preload(id, preload);
            }
            AfterExecution::KeepUntilEvicted => {
                self.mark_idle(id);
                self.plan_preload(id, preload);
            }
            AfterExecution::Unload { prewarm_after, keep_for } => {
                self.mark_idle(id);
                self.unload(id);
                let generation = self.prewarm_gen[app as usize];
                self.events.schedule(self.now + prewarm_after, Event::Prewarm(app, generation, keep_for.as_nanos()));
            }
        }
        self.drain_waiting();
    }

    /// Knative: `app` has traffic or pods, so the autoscaler watches it.
    fn activate(&mut self, app: u32) {
        let Some(config) = self.autoscaler else { return };
        if self.kpa_active.insert(app) && self.kpa[app as usize].is_none() {
            self.kpa[app as usize] = Some(Kpa::new(config));
        }
        if !self.tick_pending {
            self.tick_pending = true;
            let tick = config.tick;
            let next = SimTime::from_nanos((self.now.as_nanos() / tick.as_nanos() + 1) * tick.as_nanos());
            self.events.schedule(next, Event::Tick);
        }
    }

    /// Knative: one autoscaler decision for every watched app.
    fn tick(&mut self) {
        self.tick_pending = false;
        let Some(config) = self.autoscaler else { return };
        let apps: Vec<u32> = self.kpa_active.iter().copied().collect();
        for app in apps {
            let a = app as usize;
            let concurrency = f64::from(self.busy_by_app[a]) + self.activator_by_app[a].len() as f64;
            let total = self.sandboxes_by_app[a];
            let ready = total - self.starting_by_app[a];
            let kpa = self.kpa[a].as_mut().expect("watched apps have an autoscaler");
            kpa.observe(self.now, concurrency);
            let desired = kpa.decide(self.now, ready);
            if desired > total {
                for _ in total..desired {
                    let Some(host) = self.place(app) else { break };
                    let id = self.new_sandbox(app, host);
                    let until = self.now + SimDuration::from_secs_f64(self.apps[a].cold.total_ms() / 1e3);
                    let s = self.sandboxes[id as usize].as_mut().expect("new pod");
                    s.starting = true;
                    s.ready_at = until;
                    self.starting_by_app[a] += 1;
                    self.events.schedule(until, Event::PodReady(id, self.slot_epoch[id as usize]));
                }
            } else if desired < total {
                // Scale down: the longest-idle pods go.
                for _ in desired..total {
                    let Some(&id) = self.idle_by_app[a].first() else { break };
                    self.unload(id);
                }
            }
            if self.sandboxes_by_app[a] == 0 && !self.activator_by_app[a].is_empty() {
                // Every pod is gone (or none could be placed): the head of
                // the queue scales the app from zero.
                let inv = self.activator_by_app[a].pop_front().expect("non-empty");
                self.activator_count -= 1;
                self.start_or_wait(inv);
            }
            let quiet = self.sandboxes_by_app[a] == 0 && self.busy_by_app[a] == 0 && concurrency == 0.0;
            if quiet && self.kpa[a].as_ref().is_some_and(|k| k.idle(self.now)) {
                self.kpa_active.remove(&app);
                self.kpa[a] = None;
            }
        }
        self.drain_waiting();
        if !self.kpa_active.is_empty() {
            self.tick_pending = true;
            self.events.schedule(self.now + config.tick, Event::Tick);
        }
    }

    /// Knative: an autoscaler-started pod is ready and serves the
    /// activator's queue.
    fn pod_ready(&mut self, id: u32, epoch: u32) {
        if self.slot_epoch[id as usize] != epoch {
            return;
        }
        let Some(s) = self.sandboxes[id as usize].as_mut() else { return };
        if !std::mem::take(&mut s.starting) {
            return;
        }
        let app = s.app;
        self.starting_by_app[app as usize] -= 1;
        self.mark_idle(id);
        let limit = self.platform.concurrency.max(1) as usize;
        for _ in 0..limit {
            let Some(inv) = self.activator_by_app[app as usize].pop_front() else { break };
            self.activator_count -= 1;
            let started = self.start_in(inv, true);
            debug_assert!(started, "the new pod has room");
        }
    }

    /// Starts the oldest invocation of `app` waiting for memory, now that
    /// one of the app's sandboxes has room for it.
    fn take_waiting(&mut self, app: u32) {
        let Some((seq, inv)) = self.waiting_by_app[app as usize].pop_front() else { return };
        // Served out of order: the global queue skips it later.
        if self.waiting.front().is_some_and(|w| w.0 == seq) {
            self.waiting.pop_front();
        } else {
            self.taken.insert(seq);
        }
        self.waiting_count -= 1;
        let started = self.try_start(inv);
        debug_assert!(started, "a sandbox of the app has room");
    }

    fn mark_idle(&mut self, id: u32) {
        let s = self.sandboxes[id as usize].as_mut().expect("sandbox");
        s.idle_since = Some(self.now);
        let (app, host) = (s.app, s.host);
        let (mem, priority) = (s.mem_mb, s.priority);
        self.idle_by_app[app as usize].push(id);
        self.idle_by_host[host as usize].insert((order_key(priority), id));
        self.idle_mb_by_host[host as usize] += u64::from(mem);
    }

    /// Unloads `id` at `at` if it is still idle then.
    fn set_expiry(&mut self, id: u32, at: SimTime) {
        let epoch = self.slot_epoch[id as usize];
        let Some(s) = self.sandboxes[id as usize].as_mut() else { return };
        s.expire_at = Some(at);
        if s.timer_at.is_none_or(|t| t > at) {
            s.timer_at = Some(at);
            self.events.schedule(at, Event::Expire(id, epoch));
        }
    }

    fn expire(&mut self, id: u32, epoch: u32) {
        if self.slot_epoch[id as usize] != epoch {
            return;
        }
        let now = self.now;
        let Some(s) = self.sandboxes[id as usize].as_mut() else { return };
        if s.timer_at != Some(now) {
            return; // superseded by an earlier timer that already ran
        }
        s.timer_at = None;
        match (s.idle_since, s.expire_at) {
            (Some(_), Some(at)) if at <= now => {
                self.unload(id);
                self.drain_waiting();
            }
            (Some(_), Some(at)) => {
                s.timer_at = Some(at);
                self.events.schedule(at, Event::Expire(id, epoch));
            }
            _ => {}
        }
    }

    fn prewarm(&mut self, app: u32, generation: u32, keep_ns: u64) {
        if self.prewarm_gen[app as usize] != generation || self.waiting_count > 0 {
            return;
        }
        let Some(host) = self.place(app) else { return };
        let id = self.new_sandbox(app, host);
        self.result.prewarms += 1;
        let mem = self.apps[app as usize].mem_mb;
        let cold = self.apps[app as usize].cold.total_ms();
        let freq = self.hits_by_app[app as usize];
        let priority = self.policy.priority_on_use(app, self.now, mem, cold, freq);
        let s = self.sandboxes[id as usize].as_mut().expect("new sandbox");
        s.priority = priority;
        self.mark_idle(id);
        self.set_expiry(id, self.now + SimDuration::from_nanos(keep_ns));
        let preload = self.preload_plan(app);
        self.plan_preload(id, preload);
    }

    /// Under vertical scaling, a host already running `app`'s microVM with
    /// room for another instance, and the scale-up latency.
    fn vertical_host(&self, app: u32) -> Option<(usize, f64)> {
        let scaling = self.policy.vertical()?;
        let mem = self.apps[app as usize].mem_mb;
        let host = self.hosts_by_app[app as usize]
            .iter()
            .map(|h| h.0 as usize)
            .find(|&h| self.platform.host_mem_mb[h] - self.used_mb[h] >= u64::from(mem))?;
        Some((host, scaling.scale_up_ms(mem)))
    }

    /// An idle sandbox of `app`: the most recently idle one that holds
    /// its model, else the one that finishes loading it first
    /// (InstaInfer's routing), else the most recently idle.
    fn take_idle(&mut self, app: u32) -> Option<u32> {
        let now = self.now;
        let idle = &mut self.idle_by_app[app as usize];
        if self.apps[app as usize].model.is_some() && idle.len() > 1 {
            let sandboxes = &self.sandboxes;
            let ready = |id: u32| sandboxes[id as usize].as_ref().and_then(|s| s.model_ready).map(|t| t.max(now));
            let best = (0..idle.len())
                .filter_map(|i| ready(idle[i]).map(|t| (t, usize::MAX - i)))
                .min()
                .map(|(_, key)| usize::MAX - key);
            if let Some(pos) = best {
                return Some(idle.remove(pos));
            }
        }
        match self.platform.reuse {
            ReuseOrder::MostRecent => idle.pop(),
            // Sandboxes join the list when they go idle: the first is the oldest.
            ReuseOrder::LeastRecent => (!idle.is_empty()).then(|| idle.remove(0)),
            ReuseOrder::Random => (!idle.is_empty()).then(|| {
                let i = self.reuse_rng.index(idle.len());
                idle.remove(i)
            }),
        }
    }

    /// The policy's pre-load plan for `app`'s model, if it has one that
    /// fits the per-sandbox budget.
    fn preload_plan(&mut self, app: u32) -> Option<PreloadPlan> {
        let model = self.apps[app as usize].model?;
        self.policy.preload(app, self.now).filter(|p| model.size_mb <= p.budget_mb)
    }

    /// Schedules idle sandbox `id`'s model load and off-load by `plan`.
    fn plan_preload(&mut self, id: u32, plan: Option<PreloadPlan>) {
        let Some(plan) = plan else { return };
        let Some(s) = self.sandboxes[id as usize].as_ref() else { return };
        let (app, since) = (s.app, s.idle_since.expect("idle"));
        let loaded = s.model_ready.is_some();
        let base = self.last_end[app as usize].unwrap_or(self.now);
        let load_at = (base + plan.after).max(self.now);
        let token = since.since(SimTime::ZERO).as_nanos();
        let epoch = self.slot_epoch[id as usize];
        if let Some(offload) = plan.offload_after {
            let offload_at = (base + offload).max(self.now);
            if !loaded && offload_at <= load_at {
                return;
            }
            self.events.schedule(offload_at, Event::Offload(id, epoch, token));
        }
        if !loaded {
            self.events.schedule(load_at, Event::Preload(id, epoch, token));
        }
    }

    /// The sandbox in `slot`, if it is the same one and still in the idle
    /// period that started at `token`.
    fn same_idle_period(&mut self, id: u32, epoch: u32, token: u64) -> Option<&mut Sandbox> {
        if self.slot_epoch[id as usize] != epoch {
            return None;
        }
        self.sandboxes[id as usize]
            .as_mut()
            .filter(|s| s.idle_since.is_some_and(|t| t.since(SimTime::ZERO).as_nanos() == token))
    }

    fn preload(&mut self, id: u32, epoch: u32, token: u64) {
        let now = self.now;
        let apps = self.apps;
        let Some(s) = self.same_idle_period(id, epoch, token) else { return };
        if s.model_ready.is_some() {
            return;
        }
        let Some(model) = apps[s.app as usize].model else { return };
        s.model_ready = Some(now + SimDuration::from_secs_f64(model.load_ms / 1e3));
        self.result.preloads += 1;
    }

    fn offload(&mut self, id: u32, epoch: u32, token: u64) {
        let Some(s) = self.same_idle_period(id, epoch, token) else { return };
        if s.model_ready.take().is_some() {
            self.result.offloads += 1;
        }
    }

    fn check(&self) {
        let mut used = vec![0u64; self.used_mb.len()];
        for s in self.sandboxes.iter().flatten() {
            used[s.host as usize] += u64::from(s.mem_mb);
        }
        for (h, (&u, &cap)) in self.used_mb.iter().zip(&self.platform.host_mem_mb).enumerate() {
            assert_eq!(u, used[h], "host {h}: memory accounting");
            assert!(u <= cap, "host {h}: {u} MB used of {cap} MB");
        }
        let limit = self.platform.concurrency.max(1) as usize;
        for (id, s) in self.sandboxes.iter().enumerate() {
            let Some(s) = s else { continue };
            assert!(s.running.len() <= limit, "sandbox {id} runs {} of {limit}", s.running.len());
            assert_eq!(s.idle_since.is_some(), s.running.is_empty() && !s.starting, "sandbox {id} idle");
            let spare = self.spare_by_app[s.app as usize].iter().filter(|&&x| x as usize == id).count();
            let expect = usize::from(!s.running.is_empty() && s.running.len() < limit);
            assert_eq!(spare, expect, "sandbox {id} listed as spare");
        }
        let idle = self.sandboxes.iter().flatten().filter(|s| s.idle_since.is_some()).count();
        let listed: usize = self.idle_by_app.iter().map(Vec::len).sum();
        assert_eq!(idle, listed, "idle sandboxes listed per app");
        let by_host: usize = self.idle_by_host.iter().map(BTreeSet::len).sum();
        assert_eq!(idle, by_host, "idle sandboxes listed per host");
        for (h, &mb) in self.idle_mb_by_host.iter().enumerate() {
            let idle_mb: u64 = self
                .sandboxes
                .iter()
                .flatten()
                .filter(|s| s.host as usize == h && s.idle_since.is_some())
                .map(|s| u64::from(s.mem_mb))
                .sum();
            assert_eq!(mb, idle_mb, "host {h}: idle memory");
        }
    }
}

/// Runs `source` on the platform under `policy`.
pub fn run(
    apps: &[App],
    functions: &[Function],
    platform: &Platform,
    source: &mut dyn Source,
    policy: &mut dyn KeepAlive,
    exec_rng: SimRng,
    mut progress: impl FnMut(f64),
) -> RunResult {
    let hosts = platform.host_mem_mb.len();
    let mut engine = Engine {
        apps,
        functions,
        platform,
        policy,
        // Seeded from the execution stream without drawing from it, so the
        // other orders' runs are unchanged.
        reuse_rng: RngStreams::new(exec_rng.clone().next_u64()).stream("reuse"),
        exec_rng,
        used_mb: vec![0; hosts],
        sandboxes: Vec::new(),
        free_slots: Vec::new(),
        idle_by_app: vec![Vec::new(); apps.len()],
        spare_by_app: vec![Vec::new(); apps.len()],
        autoscaler: None,
        kpa: vec![None; apps.len()],
        kpa_active: BTreeSet::new(),
        tick_pending: false,
        starting_by_app: vec![0; apps.len()],
        activator_by_app: vec![VecDeque::new(); apps.len()],
        activator_count: 0,
        next_run: 0,
        idle_by_host: vec![BTreeSet::new(); hosts],
        idle_mb_by_host: vec![0; hosts],
        sandboxes_by_app: vec![0; apps.len()],
        hosts_by_app: vec![Vec::new(); apps.len()],
        slot_epoch: Vec::new(),
        hits_by_app: vec![0; apps.len()],
        last_end: vec![None; apps.len()],
        busy_by_app: vec![0; apps.len()],
        busy_total: 0,
        prewarm_gen: vec![0; apps.len()],
        probes: apps.iter().map(|a| probe_order(fnv1a(&a.name), hosts)).collect(),
        waiting: VecDeque::new(),
        waiting_by_app: vec![VecDeque::new(); apps.len()],
        taken: BTreeSet::new(),
        waiting_count: 0,
        next_seq: 0,
        deferred_by_app: vec![VecDeque::new(); apps.len()],
        deferred_count: 0,
        events: EventQueue::new(),
        now: SimTime::ZERO,
        stats: vec![AppStats::default(); apps.len()],
        result: RunResult {
            apps: Vec::new(),
            records: Vec::new(),
            records_truncated: false,
            latency_us: nimbus_sim::stats::Histogram::new(),
            cold_us: nimbus_sim::stats::Histogram::new(),
            start_delay_us: nimbus_sim::stats::Histogram::new(),
            tolerance_misses: 0,
            memory_series: Vec::new(),
            peak_mb: 0,
            arrivals: 0,
            dropped: Vec::new(),
            evictions: 0,
            prewarms: 0,
            deferred: 0,
            model_load_us: nimbus_sim::stats::Histogram::new(),
            preloads: 0,
            offloads: 0,
            scale_ups: 0,
            instance_start_us: nimbus_sim::stats::Histogram::new(),
            exec_us: nimbus_sim::stats::Histogram::new(),
            end: SimTime::ZERO,
            energy: None,
        },
        dropped_wait: 0,
        loaded_mb: 0,
        energy: platform.energy.clone().map(|c| crate::energy::Accountant::new(c, hosts, apps.len())),
    };
    engine.autoscaler = engine.policy.autoscaler();
    let span = source.span().as_secs_f64().max(1.0);
    let mut next = source.next().filter(|i| i.at <= platform.horizon);
    let mut last_progress = 0.0;
    loop {
        // The trace is over once nothing arrives, runs or waits: what is
        // still loaded is unloaded now, so that every policy is measured
        // over the same span rather than until its last expiry.
        if next.is_none()
            && engine.busy_total == 0
            && engine.waiting_count == 0
            && engine.deferred_count == 0
            && engine.activator_count == 0
        {
            break;
        }
        let event_at = engine.events.peek_time();
        let take_arrival = match (next, event_at) {
            (Some(a), Some(e)) => a.at <= e,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_arrival {
            let inv = next.take().expect("checked");
            engine.now = inv.at;
            engine.arrival(inv);
            next = source.next().filter(|i| i.at <= platform.horizon);
            let fraction = inv.at.as_secs_f64() / span;
            if fraction - last_progress >= 0.01 {
                progress(fraction.min(1.0));
                last_progress = fraction;
            }
        } else {
            let Some((at, event)) = engine.events.pop() else { break };
            engine.now = at;
            match event {
                Event::Done(id, seq) => engine.done(id, seq),
                Event::Expire(id, epoch) => engine.expire(id, epoch),
                Event::Prewarm(app, generation, keep) => engine.prewarm(app, generation, keep),
                Event::Deferred(app, seq) => engine.deferred_due(app, seq),
                Event::Preload(id, epoch, token) => engine.preload(id, epoch, token),
                Event::Offload(id, epoch, token) => engine.offload(id, epoch, token),
                Event::PodReady(id, epoch) => engine.pod_ready(id, epoch),
                Event::Tick => engine.tick(),
            }
        }
        engine.account_memory();
        if platform.check_invariants {
            engine.check();
        }
    }
    // The end: what still waits is dropped; loaded sandboxes are unloaded
    // (their idle time counts up to the last event).
    let taken = std::mem::take(&mut engine.taken);
    let unserved: Vec<Invocation> =
        engine.waiting.drain(..).filter(|(seq, _)| !taken.contains(seq)).map(|(_, inv)| inv).collect();
    for inv in &unserved {
        engine.drop_invocation(*inv, false);
    }
    let queued: Vec<Invocation> = engine.activator_by_app.iter_mut().flat_map(|q| q.drain(..)).collect();
    for inv in &queued {
        engine.drop_invocation(*inv, false);
    }
    for id in 0..engine.sandboxes.len() as u32 {
        if engine.sandboxes[id as usize].is_some() {
            engine.unload(id);
        }
    }
    progress(1.0);
    if let Some(e) = engine.energy.as_mut() {
        e.finish(engine.now);
    }
    let mut result = engine.result;
    result.energy = engine.energy.take();
    result.end = engine.now;
    if engine.dropped_wait > 0 {
        result.dropped.push(("no memory within max_wait_s", engine.dropped_wait));
    }
    if !unserved.is_empty() {
        result.dropped.push(("still waiting for memory at the end", unserved.len() as u64));
    }
    if !queued.is_empty() {
        result.dropped.push(("still queued at the activator at the end", queued.len() as u64));
    }
    result.apps = engine.stats;
    result
}
