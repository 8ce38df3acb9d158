//! A deterministic twin of a replicated key-value service: replicas of any
//! [`Protocol`], closed-loop clients that retry with another replica after
//! a timeout, and a network and disks that fail in seeded ways.
//!
//! Modelled:
//! - **links**: a random delay per message (so messages reorder), uniform
//!   in `link_ns` on a LAN, or per pair of regions on a WAN; loss,
//!   duplication, and partitions that cut one replica off for a while;
//! - **NICs**: each replica's egress serialises its messages (to replicas
//!   and clients) one after another at a bandwidth, before the link delay;
//!   ingress is not modelled;
//! - **disks**: a replica's [`Effect::Persist`] records are written in
//!   order at a bandwidth and made durable by fsyncs with group commit
//!   (records written while an fsync runs share the next one); nothing the
//!   replica emits after a record leaves before it is durable
//!   (write-ahead); some disks are slower, in bandwidth and fsync, by a
//!   factor;
//! - **crashes**: up to f replicas down at once; a crash loses what its
//!   replica had not put on the wire and what was not yet durable; with
//!   `restart_ns` a crashed replica comes back after a downtime as a fresh
//!   replica given its durable records ([`Protocol::recover`]).
//!
//! Clients issue one operation at a time: gets, puts and read-modify-writes
//! of uniform keys, or a YCSB workload after its load phase (the loaded
//! records are every replica's durable state and the history's first
//! writes). With `read_back`, once every client is done the network heals
//! and the clients read back every key written: a read that cannot
//! complete (a value nobody can rebuild) keeps the run from finishing, and
//! a stale one fails the linearizability check, so a lost acknowledged
//! write is caught either way.
//!
//! Everything is seeded: the same configuration and seed give the same run.
//! A run returns the clients' history (for [`crate::linearizability`]),
//! whether every replica's log agrees and whether replicas that applied the
//! same slots hold the same store, whether every client finished within
//! the horizon, and metrics: operations, latency, messages, bytes, disk
//! bytes and NIC and disk busy time per replica.

use std::collections::{BTreeMap, BTreeSet};

use nimbus_sim::stats::Histogram;
use nimbus_sim::{EventQueue, RngStreams, SimDuration, SimRng, SimTime};

use crate::kv::{Command, Reply, Request};
use crate::linearizability::{Action, Operation};
use crate::protocol::{Effect, Protocol, ReplicaId};
use crate::rabia::{ConfigError, RabiaConfig, Replica};
use crate::racos::{Racos, RacosConfig};
use crate::workload::{make_value, next_command, pending, record};
use crate::ycsb;

/// A disk: sequential write bandwidth and the latency of an fsync.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskModel {
    /// Bytes per second.
    pub bytes_per_s: f64,
    /// An fsync takes this many ns (records written while one runs share
    /// the next).
    pub fsync_ns: u64,
}

/// Replicas spread over regions: one-way delays between regions.
#[derive(Debug, Clone, PartialEq)]
pub struct Wan {
    /// Each replica's region.
    pub regions: Vec<usize>,
    /// One-way delay from region a to region b, ns (the diagonal is the
    /// delay within a region).
    pub one_way_ns: Vec<Vec<u64>>,
    /// Each delay is lengthened by a uniform jitter in [0, this), ns.
    pub jitter_ns: u64,
}

/// A twin configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TwinConfig {
    /// Replicas.
    pub n: usize,
    /// Crashes tolerated (n ≥ 2f + 1).
    pub f: usize,
    /// Crash events in a run: uniform in 0..=this (crash-stop: at most f).
    pub max_crashes: usize,
    /// Exactly `max_crashes` crash events instead (a crash of a replica
    /// while f are down is skipped).
    pub exact_crashes: bool,
    /// Crashes happen at uniform times in [0, this), ns.
    pub crash_window_ns: u64,
    /// A crashed replica restarts after a downtime uniform in [min, max)
    /// ns, from its durable records (`None`: crash-stop).
    pub restart_ns: Option<(u64, u64)>,
    /// Closed-loop clients.
    pub clients: usize,
    /// Operations each client issues, one at a time.
    pub ops_per_client: u32,
    /// Keys (`k0`, `k1`, ...) of the uniform workload: each operation a
    /// get, put or read-modify-write of a uniform key.
    pub keys: usize,
    /// A YCSB workload instead (its records are loaded before the run,
    /// each of `value_bytes`).
    pub ycsb: Option<ycsb::Workload>,
    /// Replica-to-replica delay, uniform in [min, max) ns (a LAN).
    pub link_ns: (u64, u64),
    /// Regions and their delays (overrides `link_ns` between replicas; a
    /// client sits in its first replica's region).
    pub wan: Option<Wan>,
    /// Replica-to-client delay, uniform in [min, max) ns.
    pub client_link_ns: (u64, u64),
    /// A client waits up to this long between operations, ns (uniform).
    pub think_ns: u64,
    /// A client retries with the next replica after this long, ns.
    pub client_timeout_ns: u64,
    /// Replicas' timer (re-sends), ns.
    pub tick_ns: u64,
    /// The run stops at this simulated time, ns.
    pub horizon_ns: u64,
    /// `Some(v)`: a deliberately unsafe Rabia deciding on `v` votes.
    pub decide_at: Option<usize>,
    /// Probability that a message (between replicas, or a reply to a
    /// client) is lost.
    pub loss: f64,
    /// Probability that a message between replicas is delivered twice.
    pub duplicate: f64,
    /// Network partitions: each cuts one random replica off from the others
    /// for a time uniform in `partition_ns`, starting in the crash window.
    pub partitions: usize,
    /// Length of a partition, uniform in [min, max) ns.
    pub partition_ns: (u64, u64),
    /// Bytes per written value (at least 8: a unique id, then padding).
    pub value_bytes: usize,
    /// Each replica's NIC, bytes per second (`None`: unlimited).
    pub nic_bytes_per_s: Option<f64>,
    /// Each replica's disk (`None`: records are durable at once).
    pub disk: Option<DiskModel>,
    /// Replicas (chosen per seed) whose disk is `slow_disk_factor` times
    /// slower for the whole run.
    pub slow_disks: usize,
    /// How much slower a slow disk is.
    pub slow_disk_factor: f64,
    /// After the workload, heal the network and read every key written.
    pub read_back: bool,
}

impl TwinConfig {
    /// A LAN-like default: n = 3, f = 1, 4 clients of 12 operations on 3
    /// keys, 50–500 µs links, crashes in the first 20 ms, a 2-s horizon.
    pub fn small(n: usize, f: usize) -> Self {
        TwinConfig {
            n,
            f,
            max_crashes: f,
            exact_crashes: false,
            crash_window_ns: 20_000_000,
            restart_ns: None,
            clients: 4,
            ops_per_client: 12,
            keys: 3,
            ycsb: None,
            link_ns: (50_000, 500_000),
            wan: None,
            client_link_ns: (50_000, 150_000),
            think_ns: 200_000,
            client_timeout_ns: 20_000_000,
            tick_ns: 10_000_000,
            horizon_ns: 2_000_000_000,
            decide_at: None,
            loss: 0.0,
            duplicate: 0.0,
            partitions: 0,
            partition_ns: (5_000_000, 50_000_000),
            value_bytes: 8,
            nic_bytes_per_s: None,
            disk: None,
            slow_disks: 0,
            slow_disk_factor: 10.0,
            read_back: false,
        }
    }
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Client operations (loaded records first; unanswered writes included
    /// as pending).
    pub history: Vec<Operation>,
    /// Every client finished within the horizon (read-back included).
    pub finished: bool,
    /// No two replicas decided different requests in one slot.
    pub logs_agree: bool,
    /// Replicas that applied the same number of slots hold the same store.
    pub stores_agree: bool,
    /// Workload operations answered (read-back not included).
    pub completed: u64,
    /// Read-back reads answered, and issued.
    pub read_back: (u64, u64),
    /// Simulated time of the first operation's call, ns.
    pub start_ns: u64,
    /// Simulated time of the last workload answer, ns.
    pub end_ns: u64,
    /// Client-observed latency of workload operations, µs.
    pub latency_us: Histogram,
    /// Each workload answer's time, ns (for throughput over time).
    pub answers_ns: Vec<u64>,
    /// Messages each replica sent during the workload (these counters
    /// leave out the read-back).
    pub messages_sent: Vec<u64>,
    /// Bytes each replica sent to replicas and clients.
    pub bytes_sent: Vec<u64>,
    /// Bytes each replica persisted.
    pub disk_bytes: Vec<u64>,
    /// Time each replica's NIC spent sending between `start_ns` and
    /// `end_ns` (never more than that span).
    pub nic_busy_ns: Vec<u64>,
    /// Time each replica's disk spent writing or syncing between `start_ns`
    /// and `end_ns` (overlapping writes and syncs count once).
    pub disk_busy_ns: Vec<u64>,
    /// Crashes and restarts that happened.
    pub crashes: u32,
    /// Restarts that happened.
    pub restarts: u32,
    /// Which replicas were alive at the end.
    pub alive: Vec<bool>,
    /// Where each replica stood, when a client did not finish.
    pub summaries: Vec<String>,
}

impl Outcome {
    /// Workload operations per simulated second.
    pub fn throughput(&self) -> f64 {
        let span = self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9;
        if span > 0.0 { self.completed as f64 / span } else { 0.0 }
    }
}

/// Which protocol the replicas run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProtocolChoice {
    /// Full-copy Rabia.
    Rabia(RabiaConfig),
    /// Racos over Rabia.
    Racos(RacosConfig),
    /// The steady-state leader-based baseline (`coded`: erasure coding
    /// with that many data shards).
    Leader {
        /// Data shards, or full copies.
        coded: Option<usize>,
    },
}

#[derive(Debug, Clone)]
enum Event<M> {
    Deliver { to: usize, from: usize, incarnation: u32, on_wire: SimTime, message: M },
    Request { to: usize, request: Request },
    ClientSend { client: usize },
    ClientTimeout { client: usize, seq: u64, attempt: u32 },
    Reply { client: usize, from: usize, incarnation: u32, on_wire: SimTime, seq: u64, reply: Reply },
    Crash(usize),
    Restart(usize),
    Tick(usize, u32),
}

struct Client {
    seq: u64,
    ops_left: u32,
    target: usize,
    attempt: u32,
    call: u64,
    command: Option<Command>,
    /// Keys still to read back.
    read_back: Vec<String>,
    reading_back: bool,
}

impl Client {
    fn done(&self) -> bool {
        self.ops_left == 0 && self.command.is_none() && self.read_back.is_empty()
    }
}

/// Runs one seeded schedule of Rabia (or, with `decide_at`, its unsafe
/// variant); an impossible configuration (n < 2f + 1) is an error.
pub fn run(config: &TwinConfig, seed: u64) -> Result<Outcome, ConfigError> {
    match config.decide_at {
        Some(votes) => {
            let (n, f) = (config.n, config.f);
            Replica::with_unsafe_decision_threshold(0, n, f, votes)?;
            Ok(run_protocol(config, seed, |i| {
                Replica::with_unsafe_decision_threshold(i, n, f, votes).expect("checked")
            }))
        }
        None => run_with(config, seed, ProtocolChoice::Rabia(RabiaConfig::default())),
    }
}

/// Runs one seeded schedule of Racos with values coded into `data` data
/// shards.
pub fn run_racos(config: &TwinConfig, seed: u64, data: usize) -> Result<Outcome, ConfigError> {
    run_with(config, seed, ProtocolChoice::Racos(RacosConfig::new(data)))
}

/// Runs one seeded schedule of the steady-state leader-based baseline
/// (`coded`: erasure coding with that many data shards). It has no
/// failover: run it without crashes, loss or partitions.
pub fn run_leader(config: &TwinConfig, seed: u64, coded: Option<usize>) -> Result<Outcome, ConfigError> {
    run_with(config, seed, ProtocolChoice::Leader { coded })
}

/// Runs one seeded schedule of the chosen protocol.
pub fn run_with(config: &TwinConfig, seed: u64, choice: ProtocolChoice) -> Result<Outcome, ConfigError> {
    run_observed(config, seed, choice, &mut |_| {})
}

/// [`run_with`], reporting the fraction of workload operations answered.
pub fn run_observed(
    config: &TwinConfig,
    seed: u64,
    choice: ProtocolChoice,
    progress: &mut dyn FnMut(f64),
) -> Result<Outcome, ConfigError> {
    let (n, f) = (config.n, config.f);
    Ok(match choice {
        ProtocolChoice::Rabia(c) => {
            Replica::with_config(0, n, f, c)?;
            drive(config, seed, |i| Replica::with_config(i, n, f, c).expect("checked"), progress)
        }
        ProtocolChoice::Racos(c) => {
            Racos::with_config(0, n, f, c)?;
            drive(config, seed, |i| Racos::with_config(i, n, f, c).expect("checked"), progress)
        }
        ProtocolChoice::Leader { coded } => {
            crate::leader::Leader::new(0, n, f, coded)?;
            drive(config, seed, |i| crate::leader::Leader::new(i, n, f, coded).expect("checked"), progress)
        }
    })
}

/// The time a device (a NIC, a disk) works, as the union of the intervals
/// it works in: overlapping work (a disk writing while a sync runs) counts
/// once, so busy time within a window never exceeds the window and a
/// utilization cannot pass 1.
#[derive(Debug, Default)]
struct Busy {
    /// Busy time in intervals that ended by the latest query.
    settled: u64,
    /// Disjoint intervals `start → end` (ns) not yet settled.
    live: BTreeMap<u64, u64>,
}

impl Busy {
    /// Adds work over `[start, end)`; work is only ever added at or after
    /// the latest query's time.
    fn add(&mut self, start: SimTime, end: SimTime) {
        let (mut start, mut end) = (start.as_nanos(), end.as_nanos());
        if end <= start {
            return;
        }
        // Merge with every live interval that overlaps or touches it.
        let touching: Vec<(u64, u64)> =
            self.live.range(..=end).filter(|(_, e)| **e >= start).map(|(s, e)| (*s, *e)).collect();
        for (s, e) in touching {
            self.live.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.live.insert(start, end);
    }

    /// Busy time up to `now`; intervals over by then are settled.
    fn through(&mut self, now: SimTime) -> u64 {
        let now = now.as_nanos();
        while let Some(entry) = self.live.first_entry() {
            if *entry.get() > now {
                break;
            }
            let (s, e) = entry.remove_entry();
            self.settled += e - s;
        }
        self.settled + self.live.iter().map(|(s, e)| (*e).min(now).saturating_sub(*s)).sum::<u64>()
    }

    /// Drops work planned after `now` (the device's replica crashed).
    fn cut(&mut self, now: SimTime) {
        let now = now.as_nanos();
        let planned: Vec<u64> = self.live.iter().filter(|(_, e)| **e > now).map(|(s, _)| *s).collect();
        for s in planned {
            self.live.remove(&s);
            if s < now {
                self.live.insert(s, now);
            }
        }
    }
}

/// Per-replica resources and accounting.
struct Node<M> {
    alive: bool,
    incarnation: u32,
    /// When each incarnation crashed.
    crashed_at: Vec<Option<SimTime>>,
    nic_free: SimTime,
    /// The disk has written everything issued so far by then.
    disk_free: SimTime,
    /// The latest fsync scheduled: (start, end).
    sync: Option<(SimTime, SimTime)>,
    /// Nothing this replica emits leaves before this (its latest record
    /// is durable then).
    durable_at: SimTime,
    disk_slowdown: f64,
    /// (durable at, record), kept when replicas restart.
    records: Vec<(SimTime, M)>,
    sent: u64,
    bytes: u64,
    disk_bytes: u64,
    nic_busy: Busy,
    disk_busy: Busy,
}

/// Per-replica counters at one moment.
struct Counters {
    messages: Vec<u64>,
    bytes: Vec<u64>,
    disk_bytes: Vec<u64>,
    nic_busy: Vec<u64>,
    disk_busy: Vec<u64>,
}

/// Per-replica differences `at − before` (`at` alone without `before`).
fn since(at: &[u64], before: Option<&Vec<u64>>) -> Vec<u64> {
    at.iter().enumerate().map(|(i, v)| v.saturating_sub(before.and_then(|b| b.get(i)).copied().unwrap_or(0))).collect()
}

/// The counters at `now`; busy times are those up to `now`.
fn counters<M>(nodes: &mut [Node<M>], now: SimTime) -> Counters {
    Counters {
        messages: nodes.iter().map(|x| x.sent).collect(),
        bytes: nodes.iter().map(|x| x.bytes).collect(),
        disk_bytes: nodes.iter().map(|x| x.disk_bytes).collect(),
        nic_busy: nodes.iter_mut().map(|x| x.nic_busy.through(now)).collect(),
        disk_busy: nodes.iter_mut().map(|x| x.disk_busy.through(now)).collect(),
    }
}

impl<M> Node<M> {
    /// Writes a record of `bytes` issued at `now`; returns when it is
    /// durable. Group commit: a record written before the next scheduled
    /// fsync starts joins it; otherwise it gets its own, after the
    /// previous one ends.
    fn write(&mut self, now: SimTime, bytes: usize, disk: DiskModel) -> SimTime {
        let busy = SimDuration::from_secs_f64(bytes as f64 / disk.bytes_per_s * self.disk_slowdown);
        let begin = self.disk_free.max(now);
        self.disk_free = begin + busy;
        self.disk_busy.add(begin, self.disk_free);
        let written = self.disk_free;
        match self.sync {
            Some((start, end)) if written <= start => end,
            previous => {
                let fsync = SimDuration::from_nanos((disk.fsync_ns as f64 * self.disk_slowdown) as u64);
                let start = written.max(previous.map_or(SimTime::ZERO, |p| p.1));
                self.disk_busy.add(start, start + fsync);
                self.sync = Some((start, start + fsync));
                start + fsync
            }
        }
    }
}

/// Runs one seeded schedule of any protocol; `make(i)` builds replica i
/// (at the start and at each restart).
pub fn run_protocol<P: Protocol>(config: &TwinConfig, seed: u64, make: impl Fn(ReplicaId) -> P) -> Outcome {
    drive(config, seed, make, &mut |_| {})
}

fn drive<P: Protocol>(
    config: &TwinConfig,
    seed: u64,
    make: impl Fn(ReplicaId) -> P,
    progress: &mut dyn FnMut(f64),
) -> Outcome {
    let TwinConfig { n, f, clients, ops_per_client: ops, .. } = *config;
    let rngs = RngStreams::new(seed);
    let mut net: SimRng = rngs.stream("net");
    let mut work: SimRng = rngs.stream("clients");
    let mut faults: SimRng = rngs.stream("faults");
    let mut replicas: Vec<P> = (0..n).map(&make).collect();
    let mut q: EventQueue<Event<P::Message>> = EventQueue::new();
    let uniform = |rng: &mut SimRng, (lo, hi): (u64, u64)| lo + rng.below(hi.saturating_sub(lo).max(1));

    // Faults, drawn first so the workload does not shift them.
    let max_crashes = if config.restart_ns.is_some() { config.max_crashes } else { config.max_crashes.min(f) };
    let crashes = if config.exact_crashes { max_crashes } else { faults.index(max_crashes + 1) };
    for _ in 0..crashes {
        let r = faults.index(n);
        q.schedule(SimTime::from_nanos(faults.below(config.crash_window_ns.max(1))), Event::Crash(r));
    }
    let partitions: Vec<(SimTime, SimTime, usize)> = (0..config.partitions)
        .map(|_| {
            let start = SimTime::from_nanos(faults.below(config.crash_window_ns.max(1)));
            (start, start + SimDuration::from_nanos(uniform(&mut faults, config.partition_ns)), faults.index(n))
        })
        .collect();
    let mut slow: Vec<usize> = (0..n).collect();
    faults.shuffle(&mut slow);
    let mut nodes: Vec<Node<P::Message>> = (0..n)
        .map(|r| Node {
            alive: true,
            incarnation: 0,
            crashed_at: vec![None],
            nic_free: SimTime::ZERO,
            disk_free: SimTime::ZERO,
            sync: None,
            durable_at: SimTime::ZERO,
            disk_slowdown: if slow[..config.slow_disks.min(n)].contains(&r) {
                config.slow_disk_factor.max(1.0)
            } else {
                1.0
            },
            records: Vec::new(),
            sent: 0,
            bytes: 0,
            disk_bytes: 0,
            nic_busy: Busy::default(),
            disk_busy: Busy::default(),
        })
        .collect();
    let keep_records = config.restart_ns.is_some();

    // The workload and its load phase.
    let mut history = Vec::new();
    let mut next_value = 1u64;
    let mut generator = config.ycsb.clone().map(|w| ycsb::Generator::new(w, rngs.stream("ycsb")).without_values());
    let mut written: BTreeSet<String> = BTreeSet::new();
    if let Some(w) = &config.ycsb {
        for i in 0..w.records {
            let key = ycsb::key(i);
            let value = make_value(next_value, config.value_bytes);
            P::preload(&mut replicas, &key, &value);
            history.push(Operation { key: key.clone(), call: 0, ret: Some(0), action: Action::Write(next_value) });
            written.insert(key);
            next_value += 1;
        }
    }
    let mut cs: Vec<Client> = (0..clients)
        .map(|c| Client {
            seq: 0,
            ops_left: ops,
            target: c % n,
            attempt: 0,
            call: 0,
            command: None,
            read_back: Vec::new(),
            reading_back: false,
        })
        .collect();
    let home: Vec<usize> = (0..clients).map(|c| c % n).collect();
    for c in 0..clients {
        q.schedule(SimTime::from_nanos(1 + work.below(1_000_000)), Event::ClientSend { client: c });
    }
    for r in 0..n {
        q.schedule(SimTime::from_nanos(config.tick_ns + r as u64), Event::Tick(r, 0));
    }

    let limit = SimTime::from_nanos(config.horizon_ns);
    let mut latency_us = Histogram::new();
    let mut answers = Vec::new();
    let mut end = SimTime::ZERO;
    let mut start: Option<SimTime> = None;
    let mut healed = false;
    let mut workload_counters: Option<Counters> = None;
    // Busy time before the first operation is not the workload's.
    let mut busy_at_start: Option<Counters> = None;
    let mut read_back = (0u64, 0u64);
    let mut restarts = 0u32;
    let mut crash_count = 0u32;
    let wan = config.wan.as_ref().filter(|w| w.regions.len() == n);
    let region = |r: usize| wan.map_or(0, |w| w.regions[r]);
    // One-way delay between two replicas (or a client's home and a replica).
    let link = |net: &mut SimRng, a: usize, b: usize| match wan {
        Some(w) => {
            let base = w.one_way_ns.get(region(a)).and_then(|row| row.get(region(b))).copied().unwrap_or(0);
            SimDuration::from_nanos(base + net.below(w.jitter_ns.max(1)))
        }
        None => SimDuration::from_nanos(uniform(net, config.link_ns)),
    };
    let client_delay = |net: &mut SimRng, client: usize, replica: usize| {
        let hop = SimDuration::from_nanos(uniform(net, config.client_link_ns));
        if wan.is_some() && region(home[client]) != region(replica) {
            hop + link(net, home[client], replica)
        } else {
            hop
        }
    };
    let nic = config.nic_bytes_per_s.filter(|b| *b > 0.0);
    let disk = config.disk.filter(|d| d.bytes_per_s > 0.0);
    // A message on the wire at `on_wire`: lost, delivered, or twice.
    #[allow(clippy::too_many_arguments)]
    let send = |q: &mut EventQueue<Event<P::Message>>,
                net: &mut SimRng,
                lossy: bool,
                on_wire: SimTime,
                from: usize,
                incarnation: u32,
                to: usize,
                message: P::Message| {
        if lossy && net.bernoulli(config.loss) {
            return;
        }
        if lossy && net.bernoulli(config.duplicate) {
            let at = on_wire + link(net, from, to);
            q.schedule(at, Event::Deliver { to, from, incarnation, on_wire, message: message.clone() });
        }
        let at = on_wire + link(net, from, to);
        q.schedule(at, Event::Deliver { to, from, incarnation, on_wire, message });
    };

    // Applies a replica's effects at `now`, in order.
    let apply = |q: &mut EventQueue<Event<P::Message>>,
                 net: &mut SimRng,
                 nodes: &mut [Node<P::Message>],
                 healed: bool,
                 now: SimTime,
                 from: usize,
                 effects: Vec<Effect<P::Message>>| {
        let node = &mut nodes[from];
        let incarnation = node.incarnation;
        // Puts `bytes` on the sender's NIC once everything before is durable.
        let wire = |node: &mut Node<P::Message>, bytes: usize| {
            node.sent += 1;
            node.bytes += bytes as u64;
            let ready = now.max(node.durable_at);
            match nic {
                Some(bandwidth) => {
                    let busy = SimDuration::from_secs_f64(bytes as f64 / bandwidth);
                    let begin = node.nic_free.max(ready);
                    node.nic_free = begin + busy;
                    node.nic_busy.add(begin, node.nic_free);
                    node.nic_free
                }
                None => ready,
            }
        };
        let lossy = !healed;
        for e in effects {
            match e {
                Effect::Persist(record) => {
                    let bytes = P::wire_bytes(&record);
                    node.disk_bytes += bytes as u64;
                    let durable = match disk {
                        Some(d) => node.write(now, bytes, d),
                        None => now,
                    };
                    node.durable_at = node.durable_at.max(durable);
                    if keep_records {
                        node.records.push((durable, record));
                    }
                }
                Effect::Send(to, message) => {
                    let on_wire = wire(node, P::wire_bytes(&message));
                    send(q, net, lossy, on_wire, from, incarnation, to, message);
                }
                Effect::Broadcast(message) => {
                    for to in (0..n).filter(|&t| t != from) {
                        let on_wire = wire(node, P::wire_bytes(&message));
                        send(q, net, lossy, on_wire, from, incarnation, to, message.clone());
                    }
                }
                Effect::Reply { client, seq, reply } => {
                    let on_wire = wire(node, reply.wire_bytes());
                    let client = client as usize;
                    if client < clients && !(lossy && net.bernoulli(config.loss)) {
                        let at = on_wire + client_delay(net, client, from);
                        q.schedule(at, Event::Reply { client, from, incarnation, on_wire, seq, reply });
                    }
                }
            }
        }
    };
    // Whether a message put on the wire at `on_wire` by this incarnation
    // left before it crashed.
    let left = |nodes: &[Node<P::Message>], from: usize, incarnation: u32, on_wire: SimTime| {
        nodes[from].crashed_at.get(incarnation as usize).copied().flatten().is_none_or(|c| on_wire <= c)
    };
    let cut = |now: SimTime, a: usize, b: usize| {
        partitions.iter().any(|&(s, e, r)| s <= now && now < e && (a == r) != (b == r))
    };

    while let Some((now, event)) = q.pop() {
        if now > limit {
            break;
        }
        match event {
            Event::Tick(r, incarnation) => {
                if nodes[r].alive && nodes[r].incarnation == incarnation {
                    let effects = replicas[r].tick();
                    apply(&mut q, &mut net, &mut nodes, healed, now, r, effects);
                    if !cs.iter().all(Client::done) {
                        q.schedule(now + SimDuration::from_nanos(config.tick_ns), Event::Tick(r, incarnation));
                    }
                }
            }
            Event::Crash(r) => {
                let down = nodes.iter().filter(|x| !x.alive).count();
                if nodes[r].alive && down < f {
                    crash_count += 1;
                    let node = &mut nodes[r];
                    node.alive = false;
                    node.crashed_at[node.incarnation as usize] = Some(now);
                    // What was not yet durable is lost.
                    node.records.retain(|(at, _)| *at <= now);
                    node.nic_free = now;
                    node.disk_free = now;
                    node.nic_busy.cut(now);
                    node.disk_busy.cut(now);
                    node.sync = None;
                    node.durable_at = now;
                    if let Some(range) = config.restart_ns {
                        q.schedule(now + SimDuration::from_nanos(uniform(&mut faults, range)), Event::Restart(r));
                    }
                }
            }
            Event::Restart(r) => {
                restarts += 1;
                let node = &mut nodes[r];
                node.alive = true;
                node.incarnation += 1;
                node.crashed_at.push(None);
                let durable: Vec<P::Message> = node.records.iter().map(|(_, m)| m.clone()).collect();
                replicas[r] = make(r);
                if let Some(w) = &config.ycsb {
                    // The loaded records are on every replica's disk.
                    for i in 0..w.records {
                        P::preload(&mut replicas[r..=r], &ycsb::key(i), &make_value(i + 1, config.value_bytes));
                    }
                }
                let effects = replicas[r].recover(durable);
                apply(&mut q, &mut net, &mut nodes, healed, now, r, effects);
                let incarnation = nodes[r].incarnation;
                q.schedule(now + SimDuration::from_nanos(config.tick_ns), Event::Tick(r, incarnation));
            }
            Event::Deliver { to, from, incarnation, on_wire, message } => {
                if nodes[to].alive && left(&nodes, from, incarnation, on_wire) && (healed || !cut(now, from, to)) {
                    let effects = replicas[to].on_message(from, message);
                    apply(&mut q, &mut net, &mut nodes, healed, now, to, effects);
                }
            }
            Event::ClientSend { client } => {
                let c = &mut cs[client];
                if c.command.is_none() {
                    let key_op = if c.ops_left > 0 {
                        c.ops_left -= 1;
                        c.reading_back = false;
                        Some(next_command(config.keys, config.value_bytes, &mut generator, &mut work, &mut next_value))
                    } else if let Some(key) = c.read_back.pop() {
                        c.reading_back = true;
                        read_back.1 += 1;
                        Some(Command::Get { key })
                    } else {
                        None
                    };
                    let Some(command) = key_op else { continue };
                    if let Some(k) = command.key()
                        && !matches!(command, Command::Get { .. })
                    {
                        written.insert(k.to_string());
                    }
                    c.seq += 1;
                    c.command = Some(command);
                    c.call = now.as_nanos();
                    c.attempt = 0;
                    if start.is_none() {
                        busy_at_start = Some(counters(&mut nodes, now));
                    }
                    start = Some(start.map_or(now, |s| s.min(now)));
                }
                let request = Request { client: client as u64, seq: c.seq, command: c.command.clone().expect("set") };
                let target = c.target;
                q.schedule(
                    now + SimDuration::from_nanos(config.client_timeout_ns),
                    Event::ClientTimeout { client, seq: c.seq, attempt: c.attempt },
                );
                let arrive = now + client_delay(&mut net, client, target);
                if (!healed && net.bernoulli(config.loss)) || arrive > limit {
                    continue; // lost on the way; the client times out
                }
                q.schedule(arrive, Event::Request { to: target, request });
            }
            Event::Request { to, request } => {
                if nodes[to].alive {
                    let effects = replicas[to].on_client(request, now.as_nanos());
                    apply(&mut q, &mut net, &mut nodes, healed, now, to, effects);
                }
            }
            Event::ClientTimeout { client, seq, attempt } => {
                let c = &mut cs[client];
                // Only the timer of the operation still waiting, at its
                // latest attempt, counts.
                if c.command.is_some() && c.seq == seq && c.attempt == attempt {
                    c.attempt += 1;
                    c.target = (c.target + 1) % n;
                    q.schedule(now, Event::ClientSend { client });
                }
            }
            Event::Reply { client, from, incarnation, on_wire, seq, reply } => {
                if !left(&nodes, from, incarnation, on_wire) {
                    continue;
                }
                let c = &mut cs[client];
                if c.seq != seq || c.command.is_none() {
                    continue; // a late duplicate
                }
                let command = c.command.take().expect("pending");
                if let Some(op) = record(command, reply, c.call, now.as_nanos()) {
                    history.push(op);
                }
                if c.reading_back {
                    read_back.0 += 1;
                } else {
                    latency_us.record(now.since(SimTime::from_nanos(c.call)).as_nanos() / 1_000);
                    answers.push(now.as_nanos());
                    end = end.max(now);
                    if answers.len() % 4096 == 0 {
                        progress(answers.len() as f64 / (clients as f64 * f64::from(ops)).max(1.0));
                    }
                }
                q.schedule(
                    now + SimDuration::from_nanos(work.below(config.think_ns.max(1))),
                    Event::ClientSend { client },
                );
                // Everyone done with the workload: heal, then read back
                // (its traffic is not the workload's).
                if config.read_back && !healed && cs.iter().all(|c| c.ops_left == 0 && c.command.is_none()) {
                    healed = true;
                    workload_counters = Some(counters(&mut nodes, now));
                    for (i, key) in written.iter().enumerate() {
                        cs[i % clients].read_back.push(key.clone());
                    }
                    for (i, c) in cs.iter_mut().enumerate() {
                        c.read_back.reverse();
                        if i != client {
                            q.schedule(now, Event::ClientSend { client: i });
                        }
                    }
                }
            }
        }
    }
    let finished = cs.iter().all(Client::done) && (!config.read_back || healed);
    // Unanswered operations may or may not have happened.
    for c in &cs {
        if let Some(op) = c.command.as_ref().and_then(|command| pending(command, c.call)) {
            history.push(op);
        }
    }
    let mut logs_agree = true;
    let mut stores_agree = true;
    let logs: Vec<_> = replicas.iter().map(Protocol::decisions).collect();
    let digests: Vec<u64> = replicas.iter().map(Protocol::state_digest).collect();
    for a in 0..n {
        for b in a + 1..n {
            let (la, lb) = (&logs[a], &logs[b]);
            logs_agree &= la.iter().all(|(slot, v)| lb.get(slot).is_none_or(|w| w == v));
            if replicas[a].applied_slots() == replicas[b].applied_slots() {
                stores_agree &= digests[a] == digests[b];
            }
        }
    }
    let summaries = if finished { Vec::new() } else { replicas.iter().map(Protocol::summary).collect() };
    let completed = latency_us.count();
    let c = workload_counters.unwrap_or_else(|| counters(&mut nodes, end));
    Outcome {
        history,
        finished,
        logs_agree,
        stores_agree,
        completed,
        read_back,
        start_ns: start.map_or(0, SimTime::as_nanos),
        end_ns: end.as_nanos(),
        latency_us,
        answers_ns: answers,
        messages_sent: c.messages,
        bytes_sent: c.bytes,
        disk_bytes: c.disk_bytes,
        nic_busy_ns: since(&c.nic_busy, busy_at_start.as_ref().map(|b| &b.nic_busy)),
        disk_busy_ns: since(&c.disk_busy, busy_at_start.as_ref().map(|b| &b.disk_busy)),
        crashes: crash_count,
        restarts,
        alive: nodes.iter().map(|x| x.alive).collect(),
        summaries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ns: u64) -> SimTime {
        SimTime::from_nanos(ns)
    }

    #[test]
    fn busy_time_is_the_union_of_intervals() {
        let mut busy = Busy::default();
        busy.add(t(0), t(10));
        busy.add(t(5), t(20)); // overlaps: counts 10..20 once more
        busy.add(t(30), t(40));
        busy.add(t(20), t(25)); // touches the first
        assert_eq!(busy.through(t(3)), 3);
        assert_eq!(busy.through(t(25)), 25);
        assert_eq!(busy.through(t(35)), 30);
        busy.add(t(38), t(60));
        assert_eq!(busy.through(t(100)), 25 + 30);
        assert!(busy.live.is_empty(), "everything over by the query is settled");
    }

    #[test]
    fn a_crash_drops_planned_work() {
        let mut busy = Busy::default();
        busy.add(t(0), t(10));
        busy.add(t(10), t(50));
        busy.add(t(60), t(70));
        busy.cut(t(30));
        assert_eq!(busy.through(t(100)), 30);
    }
}
