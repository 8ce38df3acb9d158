//! A closed-loop benchmark against a running cluster: clients that each
//! issue one operation at a time (the twin's client scenario, from
//! [`nimbus_consensus::workload`]), bounded by a count and a time, then a
//! read-back of every key written, and the history checked for
//! linearizability. An acknowledged write that a replica lost shows up as
//! a stale read-back (a violation) or a read-back that never completes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nimbus_consensus::kv::{Command, Reply};
use nimbus_consensus::linearizability::{self, Action, Operation, Verdict};
use nimbus_consensus::workload::{make_value, next_command, pending, record};
use nimbus_consensus::ycsb;
use nimbus_sim::RngStreams;
use nimbus_sim::stats::Histogram;
use tokio::time::Instant;

use crate::client::{ClientConfig, ClientError, KvClient};

/// A benchmark's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// How clients reach the cluster.
    pub client: ClientConfig,
    /// Closed-loop clients.
    pub clients: usize,
    /// Operations per client.
    pub ops_per_client: u32,
    /// Clients stop issuing operations after this long.
    pub max_duration: Duration,
    /// One operation gives up (and is recorded unanswered) after this long.
    pub op_deadline: Duration,
    /// Keys of the uniform get/put/read-modify-write workload.
    pub keys: usize,
    /// Bytes per written value (at least 8).
    pub value_bytes: usize,
    /// A YCSB workload instead (its records are loaded first, by puts).
    pub ycsb: Option<ycsb::Workload>,
    /// Seeds the clients' operation choices.
    pub seed: u64,
    /// Read back every key written at the end.
    pub read_back: bool,
    /// Session ids used are this and up (distinct per run, so a rerun
    /// against the same cluster does not look like stale retries).
    pub first_client_id: u64,
    /// Prefixed to every key the run touches: a key space of its own, so
    /// what earlier runs left in a live cluster is not in its history (a
    /// read of such a value would look like a read of a value never
    /// written). Empty for the bare keys.
    pub key_space: String,
}

/// `command` on the run's own key space.
fn in_key_space(command: Command, space: &str) -> Command {
    if space.is_empty() {
        return command;
    }
    match command {
        Command::Get { key } => Command::Get { key: format!("{space}{key}") },
        Command::Put { key, value } => Command::Put { key: format!("{space}{key}"), value },
        Command::Scan { start, count } => Command::Scan { start: format!("{space}{start}"), count },
        Command::ReadModifyWrite { key, value } => Command::ReadModifyWrite { key: format!("{space}{key}"), value },
    }
}

/// What a benchmark measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Workload operations answered.
    pub completed: u64,
    /// Of them, refused by the replicas (e.g. a scan on Racos).
    pub refused: u64,
    /// Workload operations that got no answer before their deadline.
    pub unanswered: u64,
    /// From the first workload call to the last answer.
    pub elapsed: Duration,
    /// Latency of answered workload operations, µs.
    pub latency_us: Histogram,
    /// The history (load phase, workload, read-back).
    pub history: Vec<Operation>,
    /// Read-back reads answered, and issued.
    pub read_back: (u64, u64),
    /// The linearizability checker's verdict on the history.
    pub verdict: Verdict,
    /// The first few failures, as text.
    pub errors: Vec<String>,
}

impl BenchReport {
    /// Answered workload operations per wall-clock second.
    pub fn throughput(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.completed as f64 / s } else { 0.0 }
    }
}

struct ClientResult {
    history: Vec<Operation>,
    latencies_us: Vec<u64>,
    completed: u64,
    refused: u64,
    unanswered: u64,
    last_answer_ns: u64,
    errors: Vec<String>,
}

fn ns_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Runs the benchmark; `progress` hears the count of answered workload
/// operations now and then.
pub async fn run(config: &BenchConfig, progress: Arc<AtomicU64>) -> BenchReport {
    let start = Instant::now();
    let mut history = Vec::new();
    let mut errors = Vec::new();
    let n = config.client.replicas.len().max(1);
    let value_bytes = config.value_bytes.max(8);

    // YCSB's load phase, by one client, before the clock of the workload.
    if let Some(w) = &config.ycsb {
        let mut loader = KvClient::new(config.client.clone(), config.first_client_id, 0);
        for i in 0..w.records {
            let key = format!("{}{}", config.key_space, ycsb::key(i));
            let command = Command::Put { key: key.clone(), value: make_value(i + 1, value_bytes) };
            let call = ns_since(start);
            match loader.call(command, Instant::now() + config.op_deadline).await {
                Ok(Reply::Written) => {
                    history.push(Operation { key, call, ret: Some(ns_since(start)), action: Action::Write(i + 1) })
                }
                other => {
                    errors.push(format!("loading {key}: {other:?}"));
                    history.push(Operation { key, call, ret: None, action: Action::Write(i + 1) });
                }
            }
        }
    }

    let workload_start = ns_since(start);
    let stop_issuing = Instant::now() + config.max_duration;
    let streams = RngStreams::new(config.seed);
    let mut tasks = Vec::new();
    for c in 0..config.clients {
        let mut client = KvClient::new(config.client.clone(), config.first_client_id + 1 + c as u64, c % n);
        let mut rng = streams.stream(&format!("client-{c}"));
        let mut generator =
            config.ycsb.clone().map(|w| ycsb::Generator::new(w, streams.stream(&format!("ycsb-{c}"))).without_values());
        let (ops, keys, op_deadline) = (config.ops_per_client, config.keys, config.op_deadline);
        let key_space = config.key_space.clone();
        let progress = progress.clone();
        // Value ids: the load phase uses 1..=records; client c uses its own
        // range, so every written value is unique.
        let mut next_value = (c as u64 + 1) << 40;
        tasks.push(tokio::spawn(async move {
            let mut out = ClientResult {
                history: Vec::new(),
                latencies_us: Vec::new(),
                completed: 0,
                refused: 0,
                unanswered: 0,
                last_answer_ns: 0,
                errors: Vec::new(),
            };
            for _ in 0..ops {
                if Instant::now() >= stop_issuing {
                    break;
                }
                let command = in_key_space(
                    next_command(keys, value_bytes, &mut generator, &mut rng, &mut next_value),
                    &key_space,
                );
                let call = ns_since(start);
                match client.call(command.clone(), Instant::now() + op_deadline).await {
                    Ok(reply) => {
                        let ret = ns_since(start);
                        out.latencies_us.push((ret - call) / 1_000);
                        out.completed += 1;
                        out.last_answer_ns = ret;
                        if matches!(reply, Reply::Refused(_)) {
                            out.refused += 1;
                        }
                        out.history.extend(record(command, reply, call, ret));
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        out.unanswered += 1;
                        out.history.extend(pending(&command, call));
                        if out.errors.len() < 3 {
                            out.errors.push(format!("client {c}: {e}"));
                        }
                        if matches!(e, ClientError::Refused { .. }) && e.to_string().contains("wrong token") {
                            break;
                        }
                    }
                }
            }
            out
        }));
    }
    let mut latency_us = Histogram::new();
    let (mut completed, mut refused, mut unanswered, mut last) = (0, 0, 0, workload_start);
    for task in tasks {
        match task.await {
            Ok(r) => {
                history.extend(r.history);
                for l in r.latencies_us {
                    latency_us.record(l);
                }
                completed += r.completed;
                refused += r.refused;
                unanswered += r.unanswered;
                last = last.max(r.last_answer_ns);
                errors.extend(r.errors);
            }
            Err(e) => errors.push(format!("a client task failed: {e}")),
        }
    }
    let elapsed = Duration::from_nanos(last.saturating_sub(workload_start));

    let mut read_back = (0, 0);
    if config.read_back {
        let written: BTreeSet<String> = history
            .iter()
            .filter(|o| matches!(o.action, Action::Write(_) | Action::ReadWrite(..)))
            .map(|o| o.key.clone())
            .collect();
        let mut reader = KvClient::new(config.client.clone(), config.first_client_id + 1 + config.clients as u64, 0);
        for key in written {
            read_back.1 += 1;
            let call = ns_since(start);
            match reader.call(Command::Get { key: key.clone() }, Instant::now() + config.op_deadline).await {
                Ok(reply) => {
                    read_back.0 += 1;
                    history.extend(record(Command::Get { key }, reply, call, ns_since(start)));
                }
                Err(e) => errors.push(format!("reading back {key}: {e}")),
            }
        }
    }
    let verdict = linearizability::check(&history, None, 5_000_000);
    errors.truncate(12);
    BenchReport { completed, refused, unanswered, elapsed, latency_us, history, read_back, verdict, errors }
}

/// [`run`] on a runtime of its own (for callers without one).
pub fn run_blocking(config: &BenchConfig, progress: Arc<AtomicU64>) -> std::io::Result<BenchReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    Ok(runtime.block_on(run(config, progress)))
}

/// Asks every replica where it stands until those that answer have
/// applied the same slots (or `wait` passes); returns each replica's
/// (applied, digest), `None` for one that does not answer.
pub async fn settle(client: &ClientConfig, wait: Duration) -> Vec<Option<(u64, u64)>> {
    let deadline = Instant::now() + wait;
    let mut asker = KvClient::new(client.clone(), nimbus_consensus::kv::SESSIONLESS - 1, 0);
    loop {
        let mut states = Vec::new();
        for r in 0..client.replicas.len() {
            states.push(asker.status(r).await.ok().map(|(applied, digest, _)| (applied, digest)));
        }
        let applied: BTreeSet<u64> = states.iter().flatten().map(|s| s.0).collect();
        if applied.len() <= 1 || Instant::now() >= deadline {
            return states;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
