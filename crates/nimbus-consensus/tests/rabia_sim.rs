//! Rabia under seeded fault schedules in a small deterministic simulation:
//! random message delays (so reordering), up to f replicas crashing at
//! random times (their undelivered messages are lost), clients that retry
//! with another replica after a timeout.
//! Every schedule must give agreeing logs, equal stores on replicas that
//! applied the same slots, a linearizable client history, and (liveness)
//! every client finishing within the time bound. A replica that commits
//! without consensus (a deliberately broken variant) is caught.

use nimbus_consensus::kv::{Command, Reply, Request};
use nimbus_consensus::linearizability::{Action, Operation, Verdict, check};
use nimbus_consensus::rabia::{Effect, Message, Replica};
use nimbus_sim::{EventQueue, RngStreams, SimDuration, SimRng, SimTime};

#[derive(Debug, Clone)]
enum Event {
    Deliver { to: usize, from: usize, message: Message },
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

struct Outcome {
    history: Vec<Operation>,
    finished: bool,
    logs_agree: bool,
    stores_agree: bool,
}

fn value_id(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8-byte values"))
}

fn run(seed: u64, n: usize, f: usize, clients: usize, ops: u32, decide_at: Option<usize>) -> Outcome {
    let rngs = RngStreams::new(seed);
    let mut net: SimRng = rngs.stream("net");
    let mut work: SimRng = rngs.stream("clients");
    let mut faults: SimRng = rngs.stream("faults");
    let mut replicas: Vec<Replica> = (0..n)
        .map(|i| match decide_at {
            Some(votes) => Replica::with_unsafe_decision_threshold(i, n, f, votes),
            None => Replica::new(i, n, f),
        })
        .map(|r| r.expect("valid configuration"))
        .collect();
    let mut alive = vec![true; n];
    let mut q: EventQueue<Event> = EventQueue::new();
    let crashes = faults.index(f + 1);
    for _ in 0..crashes {
        let r = faults.index(n);
        q.schedule(SimTime::from_nanos(faults.below(20_000_000)), Event::Crash(r));
    }
    let mut cs: Vec<Client> = (0..clients)
        .map(|c| Client { seq: 0, ops_left: ops, target: c % n, attempt: 0, call: 0, command: None })
        .collect();
    for c in 0..clients {
        q.schedule(SimTime::from_nanos(work.below(1_000_000)), Event::ClientSend { client: c });
    }
    for r in 0..n {
        q.schedule(SimTime::from_nanos(10_000_000 + r as u64), Event::Tick(r));
    }
    let mut history = Vec::new();
    let mut next_value = 1u64;
    let limit = SimTime::from_nanos(2_000_000_000);
    let deliver = |q: &mut EventQueue<Event>, net: &mut SimRng, now: SimTime, from: usize, effects: Vec<Effect>| {
        for e in effects {
            match e {
                Effect::Send(to, message) => {
                    let at = now + SimDuration::from_nanos(50_000 + net.below(450_000));
                    q.schedule(at, Event::Deliver { to, from, message });
                }
                Effect::Broadcast(message) => {
                    for to in (0..n).filter(|&t| t != from) {
                        let at = now + SimDuration::from_nanos(50_000 + net.below(450_000));
                        q.schedule(at, Event::Deliver { to, from, message: message.clone() });
                    }
                }
                Effect::Reply { client, seq, reply } => {
                    let at = now + SimDuration::from_nanos(50_000 + net.below(100_000));
                    q.schedule(at, Event::Reply { client: client as usize, seq, reply });
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
                    q.schedule(now + SimDuration::from_nanos(10_000_000), Event::Tick(r));
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
                if alive[to] && alive[from] {
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
                    let key = format!("k{}", work.index(3));
                    let value = next_value.to_le_bytes().to_vec();
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
                    now + SimDuration::from_nanos(20_000_000),
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
                    (command, reply) => panic!("{command:?} answered with {reply:?}"),
                };
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
    for a in 0..n {
        for b in a + 1..n {
            let (la, lb) = (replicas[a].log(), replicas[b].log());
            logs_agree &= la.iter().all(|(slot, v)| lb.get(slot).is_none_or(|w| w == v));
            if la.len() == lb.len() {
                stores_agree &= replicas[a].store().digest() == replicas[b].store().digest();
            }
        }
    }
    if !finished && decide_at.is_none() {
        eprintln!("alive {alive:?}");
        for r in &replicas {
            eprintln!("{}", r.summary());
        }
    }
    Outcome { history, finished, logs_agree, stores_agree }
}

/// 10,000 schedules by default (about 10 s); `NIMBUS_SCHEDULES` sets more.
#[test]
fn rabia_is_safe_and_live_under_seeded_fault_schedules() {
    let schedules = std::env::var("NIMBUS_SCHEDULES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000u64);
    for seed in std::env::var("NIMBUS_FIRST_SCHEDULE").ok().and_then(|s| s.parse().ok()).unwrap_or(0u64)..schedules {
        let (n, f) = [(3, 1), (5, 2)][seed as usize % 2];
        let o = run(seed, n, f, 4, 12, None);
        assert!(o.logs_agree, "seed {seed}: replicas decided different requests in a slot");
        assert!(o.stores_agree, "seed {seed}: replicas that applied the same slots differ");
        assert!(o.finished, "seed {seed}: a client did not finish within the time bound");
        assert_eq!(check(&o.history, None, 5_000_000), Verdict::Linearizable, "seed {seed}");
    }
}

#[test]
fn impossible_configurations_are_errors() {
    assert!(Replica::new(0, 4, 2).is_err());
    assert!(Replica::new(3, 3, 1).is_err());
    assert!(Replica::new(2, 3, 1).is_ok());
}

/// The checks bite: deciding on a single vote instead of f + 1 breaks
/// agreement in some schedules, and the same checks report it.
#[test]
fn a_replica_deciding_on_too_few_votes_is_caught() {
    let caught = (0..2_000u64).find(|&seed| {
        let o = run(seed, 5, 2, 4, 12, Some(1));
        !o.logs_agree || !o.stores_agree || check(&o.history, None, 5_000_000) != Verdict::Linearizable
    });
    assert!(caught.is_some(), "no schedule exposed the broken decision rule");
    eprintln!("broken variant caught at seed {}", caught.expect("found"));
}
