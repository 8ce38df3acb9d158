//! A small deterministic twin of a replicated key-value service: Rabia
//! replicas, clients that retry with another replica after a timeout, a
//! network with random per-message delays (so messages reorder), and up to
//! f replicas crashing at random times (crash-stop; a crash also loses what
//! its replica had not put on the wire), and optionally message loss,
//! duplication and partitions that cut one replica off for a while.
//! Everything is seeded: the same configuration and seed give the same run.
//!
//! A run returns the clients' history (for [`crate::linearizability`]),
//! whether every replica's log agrees and whether replicas that applied the
//! same slots hold the same store, whether every client finished within
//! the horizon, and per-run metrics (operations, latency, messages and
//! bytes sent per replica). Modelled: message delay, loss, duplication and
//! partitions, and optionally each replica's NIC bandwidth; disks are not
//! yet.

use nimbus_sim::stats::Histogram;
use nimbus_sim::{EventQueue, RngStreams, SimDuration, SimRng, SimTime};

use crate::kv::{Command, Reply, Request};
use crate::linearizability::{Action, Operation};
use crate::protocol::{Effect, Protocol};
use crate::rabia::{ConfigError, Replica};

/// A twin configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwinConfig {
    /// Replicas.
    pub n: usize,
    /// Crashes tolerated (n ≥ 2f + 1).
    pub f: usize,
    /// Most replicas that crash in a run (at most f).
    pub max_crashes: usize,
    /// Crashes happen at uniform times in [0, this), ns.
    pub crash_window_ns: u64,
    /// Closed-loop clients.
    pub clients: usize,
    /// Operations each client issues, one at a time.
    pub ops_per_client: u32,
    /// Keys (`k0`, `k1`, ...), each operation a get, put or
    /// read-modify-write of a uniform key.
    pub keys: usize,
    /// Replica-to-replica delay, uniform in [min, max) ns.
    pub link_ns: (u64, u64),
    /// Replica-to-client delay, uniform in [min, max) ns.
    pub client_link_ns: (u64, u64),
    /// A client retries with the next replica after this long, ns.
    pub client_timeout_ns: u64,
    /// Replicas' timer (re-sends), ns.
    pub tick_ns: u64,
    /// The run stops at this simulated time, ns.
    pub horizon_ns: u64,
    /// `Some(v)`: a deliberately unsafe protocol deciding on `v` votes.
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
    /// Each replica's NIC, bytes per second (`None`: unlimited): a message
    /// occupies its sender's NIC for size ÷ bandwidth, in FIFO order, before
    /// its link delay starts.
    pub nic_bytes_per_s: Option<f64>,
}

impl TwinConfig {
    /// A LAN-like default: n = 3, f = 1, 4 clients of 12 operations on 3
    /// keys, 50–500 µs links, crashes in the first 20 ms, a 2-s horizon.
    pub fn small(n: usize, f: usize) -> Self {
        TwinConfig {
            n,
            f,
            max_crashes: f,
            crash_window_ns: 20_000_000,
            clients: 4,
            ops_per_client: 12,
            keys: 3,
            link_ns: (50_000, 500_000),
            client_link_ns: (50_000, 150_000),
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
        }
    }
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Client operations (unanswered writes included as pending).
    pub history: Vec<Operation>,
    /// Every client finished within the horizon.
    pub finished: bool,
    /// No two replicas decided different requests in one slot.
    pub logs_agree: bool,
    /// Replicas that applied the same number of slots hold the same store.
    pub stores_agree: bool,
    /// Operations answered.
    pub completed: u64,
    /// Simulated time of the last answer, ns.
    pub end_ns: u64,
    /// Client-observed latency, µs.
    pub latency_us: Histogram,
    /// Messages each replica sent.
    pub messages_sent: Vec<u64>,
    /// Bytes each replica sent (message sizes as [`Message::wire_bytes`]).
    pub bytes_sent: Vec<u64>,
    /// Which replicas were alive at the end.
    pub alive: Vec<bool>,
    /// Where each replica stood, when a client did not finish.
    pub summaries: Vec<String>,
}

#[derive(Debug, Clone)]
enum Event<M> {
    Deliver { to: usize, from: usize, message: M },
    ClientSend { client: usize },
    ClientTimeout { client: usize, attempt: u32 },
    Reply { client: usize, seq: u64, reply: Reply },
    Crash(usize),
    Tick(usize),
}

struct Client {
    seq: u64,
    ops_left: u32,
    target: usize,
    attempt: u32,
    call: u64,
    command: Option<Command>,
}

fn value_id(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8-byte values"))
}

/// Runs one seeded schedule of Rabia; an impossible configuration
/// (n < 2f + 1) is an error.
pub fn run(config: &TwinConfig, seed: u64) -> Result<Outcome, ConfigError> {
    let replicas = (0..config.n)
        .map(|i| match config.decide_at {
            Some(votes) => Replica::with_unsafe_decision_threshold(i, config.n, config.f, votes),
            None => Replica::new(i, config.n, config.f),
        })
        .collect::<Result<_, _>>()?;
    Ok(run_protocol(config, seed, replicas))
}

/// Runs one seeded schedule of Racos with values coded into `data` data
/// shards.
pub fn run_racos(config: &TwinConfig, seed: u64, data: usize) -> Result<Outcome, ConfigError> {
    let replicas =
        (0..config.n).map(|i| crate::racos::Racos::new(i, config.n, config.f, data)).collect::<Result<_, _>>()?;
    Ok(run_protocol(config, seed, replicas))
}

/// Runs one seeded schedule of the steady-state leader-based baseline
/// (`coded`: erasure coding with that many data shards). It has no
/// failover: run it without crashes, loss or partitions.
pub fn run_leader(config: &TwinConfig, seed: u64, coded: Option<usize>) -> Result<Outcome, ConfigError> {
    let replicas =
        (0..config.n).map(|i| crate::leader::Leader::new(i, config.n, config.f, coded)).collect::<Result<_, _>>()?;
    Ok(run_protocol(config, seed, replicas))
}

/// Runs one seeded schedule of any protocol, given its `n` replicas.
pub fn run_protocol<P: Protocol>(config: &TwinConfig, seed: u64, mut replicas: Vec<P>) -> Outcome {
    let TwinConfig { n, f, clients, ops_per_client: ops, keys, .. } = *config;
    let delay =
        |net: &mut SimRng, (lo, hi): (u64, u64)| SimDuration::from_nanos(lo + net.below(hi.saturating_sub(lo).max(1)));
    let rngs = RngStreams::new(seed);
    let mut net: SimRng = rngs.stream("net");
    let mut work: SimRng = rngs.stream("clients");
    let mut faults: SimRng = rngs.stream("faults");
    let mut alive = vec![true; n];
    let mut q: EventQueue<Event<P::Message>> = EventQueue::new();
    let crashes = faults.index(config.max_crashes.min(f) + 1);
    for _ in 0..crashes {
        let r = faults.index(n);
        q.schedule(SimTime::from_nanos(faults.below(config.crash_window_ns.max(1))), Event::Crash(r));
    }
    let mut cs: Vec<Client> = (0..clients)
        .map(|c| Client { seq: 0, ops_left: ops, target: c % n, attempt: 0, call: 0, command: None })
        .collect();
    for c in 0..clients {
        q.schedule(SimTime::from_nanos(work.below(1_000_000)), Event::ClientSend { client: c });
    }
    for r in 0..n {
        q.schedule(SimTime::from_nanos(config.tick_ns + r as u64), Event::Tick(r));
    }
    let mut history = Vec::new();
    let mut next_value = 1u64;
    let limit = SimTime::from_nanos(config.horizon_ns);
    let mut latency_us = Histogram::new();
    let mut sent = vec![0u64; n];
    let mut sent_bytes = vec![0u64; n];
    let mut end = SimTime::ZERO;
    // Partitions: (start, end, the replica cut off).
    let partitions: Vec<(SimTime, SimTime, usize)> = (0..config.partitions)
        .map(|_| {
            let start = SimTime::from_nanos(faults.below(config.crash_window_ns.max(1)));
            (start, start + delay(&mut faults, config.partition_ns), faults.index(n))
        })
        .collect();
    let cut = |now: SimTime, a: usize, b: usize| {
        partitions.iter().any(|&(s, e, r)| s <= now && now < e && (a == r) != (b == r))
    };
    let link = config.link_ns;
    let client_link = config.client_link_ns;
    let (loss, duplicate) = (config.loss, config.duplicate);
    let mut nic_free = vec![SimTime::ZERO; n];
    let nic = config.nic_bytes_per_s.filter(|b| *b > 0.0);
    let mut deliver = |q: &mut EventQueue<Event<P::Message>>,
                       net: &mut SimRng,
                       now: SimTime,
                       from: usize,
                       effects: Vec<Effect<P::Message>>| {
        let mut send = |q: &mut EventQueue<Event<P::Message>>, net: &mut SimRng, to: usize, message: P::Message| {
            let bytes = P::wire_bytes(&message);
            sent[from] += 1;
            sent_bytes[from] += bytes as u64;
            // The sender's NIC serialises its messages one after another.
            let on_wire = match nic {
                Some(bandwidth) => {
                    let done = nic_free[from].max(now) + SimDuration::from_secs_f64(bytes as f64 / bandwidth);
                    nic_free[from] = done;
                    done
                }
                None => now,
            };
            if net.bernoulli(loss) {
                return;
            }
            if net.bernoulli(duplicate) {
                q.schedule(on_wire + delay(net, link), Event::Deliver { to, from, message: message.clone() });
            }
            q.schedule(on_wire + delay(net, link), Event::Deliver { to, from, message });
        };
        for e in effects {
            match e {
                Effect::Send(to, message) => send(q, net, to, message),
                Effect::Broadcast(message) => {
                    for to in (0..n).filter(|&t| t != from) {
                        send(q, net, to, message.clone());
                    }
                }
                Effect::Reply { client, seq, reply } => {
                    if !net.bernoulli(loss) {
                        q.schedule(now + delay(net, client_link), Event::Reply { client: client as usize, seq, reply });
                    }
                }
            }
        }
    };
    while let Some((now, event)) = q.pop() {
        if now > limit {
            break;
        }
        match event {
            Event::Tick(r) => {
                if alive[r] {
                    let effects = replicas[r].tick();
                    deliver(&mut q, &mut net, now, r, effects);
                    if !cs.iter().all(|c| c.ops_left == 0 && c.command.is_none()) {
                        q.schedule(now + SimDuration::from_nanos(config.tick_ns), Event::Tick(r));
                    }
                }
            }
            Event::Crash(r) => {
                let crashed = alive.iter().filter(|a| !**a).count();
                if alive[r] && crashed < f {
                    alive[r] = false;
                }
            }
            Event::Deliver { to, from, message } => {
                // A crash also loses what its replica had not yet put on
                // the wire: messages from a crashed sender are dropped.
                if alive[to] && alive[from] && !cut(now, from, to) {
                    let effects = replicas[to].on_message(from, message);
                    deliver(&mut q, &mut net, now, to, effects);
                }
            }
            Event::ClientSend { client } => {
                let c = &mut cs[client];
                if c.command.is_none() {
                    if c.ops_left == 0 {
                        continue;
                    }
                    c.ops_left -= 1;
                    c.seq += 1;
                    let key = format!("k{}", work.index(keys.max(1)));
                    let mut value = next_value.to_le_bytes().to_vec();
                    value.resize(config.value_bytes.max(8), 0xa5);
                    next_value += 1;
                    c.command = Some(match work.index(3) {
                        0 => Command::Get { key },
                        1 => Command::Put { key, value },
                        _ => Command::ReadModifyWrite { key, value },
                    });
                    c.call = now.as_nanos();
                    c.attempt = 0;
                }
                let request = Request { client: client as u64, seq: c.seq, command: c.command.clone().expect("set") };
                let target = c.target;
                q.schedule(
                    now + SimDuration::from_nanos(config.client_timeout_ns),
                    Event::ClientTimeout { client, attempt: c.attempt },
                );
                if alive[target] {
                    let effects = replicas[target].on_client(request, now.as_nanos());
                    deliver(&mut q, &mut net, now, target, effects);
                }
            }
            Event::ClientTimeout { client, attempt } => {
                let c = &mut cs[client];
                if c.command.is_some() && c.attempt == attempt {
                    c.attempt += 1;
                    c.target = (c.target + 1) % n;
                    q.schedule(now, Event::ClientSend { client });
                }
            }
            Event::Reply { client, seq, reply } => {
                let c = &mut cs[client];
                if c.seq != seq || c.command.is_none() {
                    continue; // a late duplicate
                }
                let command = c.command.take().expect("pending");
                let (key, action) = match (command, reply) {
                    (Command::Get { key }, Reply::Value(v)) => (key, Action::Read(v.as_deref().map(value_id))),
                    (Command::Put { key, value }, Reply::Written) => (key, Action::Write(value_id(&value))),
                    (Command::ReadModifyWrite { key, value }, Reply::Previous(old)) => {
                        (key, Action::ReadWrite(value_id(&value), old.as_deref().map(value_id)))
                    }
                    // A mismatched reply type is a protocol bug: record it as a
                    // read of an impossible value so the checker fails.
                    (command, _) => (command.key().unwrap_or("").to_string(), Action::Read(Some(u64::MAX))),
                };
                latency_us.record(now.since(SimTime::from_nanos(c.call)).as_nanos() / 1_000);
                end = end.max(now);
                history.push(Operation { key, call: c.call, ret: Some(now.as_nanos()), action });
                q.schedule(now + SimDuration::from_nanos(work.below(200_000)), Event::ClientSend { client });
            }
        }
    }
    let finished = cs.iter().all(|c| c.ops_left == 0 && c.command.is_none());
    // Unanswered operations may or may not have happened.
    for c in &cs {
        if let Some(command) = &c.command {
            let action = match command {
                Command::Get { .. } | Command::Scan { .. } => continue,
                Command::Put { value, .. } => Action::Write(value_id(value)),
                Command::ReadModifyWrite { value, .. } => Action::ReadWrite(value_id(value), None),
            };
            let key = command.key().expect("single key").to_string();
            history.push(Operation { key, call: c.call, ret: None, action });
        }
    }
    let mut logs_agree = true;
    let mut stores_agree = true;
    let logs: Vec<_> = replicas.iter().map(Protocol::decisions).collect();
    for a in 0..n {
        for b in a + 1..n {
            let (la, lb) = (&logs[a], &logs[b]);
            logs_agree &= la.iter().all(|(slot, v)| lb.get(slot).is_none_or(|w| w == v));
            if la.len() == lb.len() {
                stores_agree &= replicas[a].state_digest() == replicas[b].state_digest();
            }
        }
    }
    let summaries = if finished { Vec::new() } else { replicas.iter().map(Protocol::summary).collect() };
    let completed = latency_us.count();
    Outcome {
        history,
        finished,
        logs_agree,
        stores_agree,
        completed,
        end_ns: end.as_nanos(),
        latency_us,
        messages_sent: sent,
        bytes_sent: sent_bytes,
        alive,
        summaries,
    }
}
