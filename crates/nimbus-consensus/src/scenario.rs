//! Building a replication run from scenario parameters, and what it
//! reports.
//!
//! Keys:
//! - `[cluster]`: `replicas` (5), `faults_tolerated` (f, 1), `network`
//!   (`lan` | `wan`), `link_us` ([20, 80]: one-way delay between replicas,
//!   uniform), `client_link_us` ([20, 80]), `nic_gbps` (10; 0: unlimited),
//!   `disk_mb_s` (2000; 0: no disk model, records durable at once),
//!   `fsync_us` (50), `tick_ms` (10: re-send timer). A WAN: `regions`
//!   (each replica's region, from 0), `region_one_way_ms` (a square table:
//!   one-way delay between regions, the diagonal within one) and
//!   `jitter_us` (100); clients sit in their first replica's region.
//! - `[workload]`: `kind` (`ycsb` | `uniform`). YCSB: `core` (`a`..`f`,
//!   the built-in copy of YCSB's core workload) or `file` (a YCSB property
//!   file; when absent, `core` stands in and the results say so),
//!   `records` (the load phase; the workload's `recordcount` by default),
//!   `value_bytes` (the workload's `fieldcount × fieldlength` by default).
//!   Uniform: `keys` (1000) and `value_bytes` (1000), gets, puts and
//!   read-modify-writes in equal shares. Both: `clients` (64 closed-loop
//!   clients), `ops_per_client` (100), `think_us` (0), `client_timeout_ms`
//!   (1000: then a client retries with the next replica), `horizon_s` (600).
//! - `[faults]` (optional): `crashes` (crash events at uniform times, each
//!   of a random replica; one that would put more than f down is skipped;
//!   f), `crash_window_ms` (1000),
//!   `restart_ms` ([min, max] downtime; absent: crash-stop), `loss`,
//!   `duplicate`, `partitions`, `partition_ms` ([5, 50]), `slow_disks`,
//!   `slow_disk_factor` (10).
//! - `[checks]`: `linearizability` (true: the client history is checked),
//!   `read_back` (true: after the workload the network heals and every key
//!   written is read back, so a lost acknowledged write shows).

use std::path::Path;

use nimbus_sim::estimate::{Estimate, bytes, count, product, saturating};
use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Series, Table};
use nimbus_sim::params::{MAX_DURATION_NS, ParamError, Params, Value, round_to_u64};

use crate::linearizability::{self, Verdict};
use crate::policy::{self, Env};
use crate::twin::{self, DiskModel, Outcome, ProtocolChoice, TwinConfig, Wan};
use crate::ycsb::Workload;

/// Why a scenario cannot be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A key is missing, mistyped or unknown.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A YCSB file is malformed.
    #[error(transparent)]
    Ycsb(#[from] crate::ycsb::YcsbError),
    /// The settings cannot work.
    #[error("{0}")]
    Invalid(String),
}

const CLUSTER_KEYS: &[&str] = &[
    "replicas",
    "faults_tolerated",
    "network",
    "link_us",
    "client_link_us",
    "nic_gbps",
    "disk_mb_s",
    "fsync_us",
    "tick_ms",
    "regions",
    "region_one_way_ms",
    "jitter_us",
];
const WORKLOAD_KEYS: &[&str] = &[
    "kind",
    "core",
    "file",
    "records",
    "keys",
    "value_bytes",
    "clients",
    "ops_per_client",
    "think_us",
    "client_timeout_ms",
    "horizon_s",
];
const FAULT_KEYS: &[&str] = &[
    "crashes",
    "crash_window_ms",
    "restart_ms",
    "loss",
    "duplicate",
    "partitions",
    "partition_ms",
    "slow_disks",
    "slow_disk_factor",
];
const CHECK_KEYS: &[&str] = &["linearizability", "read_back"];

/// A prepared replication scenario.
#[derive(Debug)]
pub struct Scenario {
    twin: TwinConfig,
    env: Env,
    check_linearizability: bool,
    fallbacks: Vec<String>,
}

/// `[min, max]` durations in a unit of `unit_ns` nanoseconds, as whole ns.
#[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // user input: checked conversions only
fn range(p: &Params, key: &str, default: (f64, f64), unit_ns: f64) -> Result<(u64, u64), ParamError> {
    let (lo, hi) = match p.f64_list(key)? {
        None => default,
        Some(list) => match list[..] {
            [lo, hi] if lo >= 0.0 && hi >= lo => (lo, hi),
            _ => return Err(p.error(key, "expected [min, max] with 0 <= min <= max")),
        },
    };
    let ns = |x: f64| -> Result<u64, ParamError> {
        round_to_u64(x * unit_ns)
            .filter(|v| *v <= MAX_DURATION_NS)
            .ok_or_else(|| p.error(key, format!("{x} is longer than the longest simulated span")))
    };
    Ok((ns(lo)?, ns(hi)?))
}

fn probability(p: &Params, key: &str) -> Result<f64, ParamError> {
    let x = p.non_negative_f64_or(key, 0.0)?;
    if x >= 1.0 {
        return Err(p.error(key, "must be a probability below 1"));
    }
    Ok(x)
}

impl Scenario {
    /// Reads `cluster`, `workload`, `faults` and `checks`.
    #[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // user input: checked conversions only
    pub fn from_params(root: &Params) -> Result<Self, ScenarioError> {
        let empty = Params::new("cluster", None);
        let c = root.table("cluster")?.unwrap_or(&empty);
        let n = c.usize_in("replicas", 5, 1..=64)?;
        let f = c.usize_in("faults_tolerated", 1, 0..=63)?;
        if n <= 2 * f {
            return Err(c
                .error("faults_tolerated", format!("n = {n} replicas tolerate at most {} crashes", (n - 1) / 2))
                .into());
        }
        let mut twin = TwinConfig::small(n, f);
        twin.link_ns = range(c, "link_us", (20.0, 80.0), 1e3)?;
        twin.client_link_ns = range(c, "client_link_us", (20.0, 80.0), 1e3)?;
        let gbps = c.non_negative_f64_or("nic_gbps", 10.0)?;
        twin.nic_bytes_per_s = (gbps > 0.0).then_some(gbps * 1e9 / 8.0);
        let disk_mb_s = c.non_negative_f64_or("disk_mb_s", 2000.0)?;
        let fsync_ns = c.duration_ns_or("fsync_us", 50.0, 1e3, false)?;
        twin.disk = (disk_mb_s > 0.0).then_some(DiskModel { bytes_per_s: disk_mb_s * 1e6, fsync_ns });
        twin.tick_ns = c.duration_ns_or("tick_ms", 10.0, 1e6, true)?;
        if c.choice_or("network", &["lan", "wan"], "lan")? == "wan" {
            let regions =
                c.u64_list("regions")?.ok_or_else(|| c.error("regions", "a WAN needs each replica's region"))?;
            if regions.len() != n {
                return Err(c.error("regions", format!("lists {} regions for {n} replicas", regions.len())).into());
            }
            if let Some(r) = regions.iter().find(|r| **r >= 64) {
                return Err(c.error("regions", format!("region {r}: regions are numbered 0..64")).into());
            }
            let regions: Vec<usize> = regions.iter().map(|r| usize::try_from(*r).unwrap_or(usize::MAX)).collect();
            let count = regions.iter().max().map_or(0, |m| m + 1);
            let table = c.require("region_one_way_ms")?;
            let Value::List(rows) = &table.value else {
                return Err(c.error("region_one_way_ms", "expected a list of lists of milliseconds").into());
            };
            let mut one_way = Vec::new();
            for row in rows {
                let Value::List(cells) = &row.value else {
                    return Err(c.error("region_one_way_ms", "expected a list of lists of milliseconds").into());
                };
                let mut out = Vec::new();
                for cell in cells {
                    let ms = match cell.value {
                        Value::Float(x) if (0.0..=1e6).contains(&x) => x,
                        Value::Int(i) if (0..=1_000_000).contains(&i) => i as f64,
                        _ => {
                            return Err(c
                                .error("region_one_way_ms", "delays must be numbers of milliseconds in 0..=1000000")
                                .into());
                        }
                    };
                    out.push(round_to_u64(ms * 1e6).unwrap_or(0));
                }
                one_way.push(out);
            }
            if one_way.len() < count || one_way.iter().any(|r| r.len() != one_way.len()) {
                return Err(c
                    .error("region_one_way_ms", format!("must be a square table covering the {count} regions used"))
                    .into());
            }
            let jitter_ns = c.duration_ns_or("jitter_us", 100.0, 1e3, false)?;
            twin.wan = Some(Wan { regions, one_way_ns: one_way, jitter_ns });
        }
        c.finish(CLUSTER_KEYS)?;

        let mut fallbacks = Vec::new();
        let w = root.table("workload")?.ok_or_else(|| root.error("workload", "is required"))?;
        let kind = w.choice_or("kind", &["ycsb", "uniform"], "ycsb")?;
        let mut scans = false;
        match kind {
            "ycsb" => {
                let letter = w.choice_or("core", &["a", "b", "c", "d", "e", "f"], "a")?;
                let core = Workload::core(letter.chars().next().unwrap_or('a')).expect("a listed letter");
                let mut workload = match w.str("file")? {
                    Some(file) if Path::new(file).exists() => Workload::read(Path::new(file))?,
                    Some(file) => {
                        fallbacks.push(format!("{file} is absent: YCSB's core workload {letter} (built in) stands in"));
                        core
                    }
                    None => core,
                };
                workload.records = w.u64_in("records", workload.records, 1..=1_000_000)?;
                // The first 8 bytes of a value carry the write's id.
                twin.value_bytes = w.usize_in("value_bytes", workload.record_bytes(), 8..=(16 << 20))?;
                scans = workload.mix[3] > 0.0;
                twin.ycsb = Some(workload);
            }
            _ => {
                twin.keys = w.usize_in("keys", 1000, 1..=10_000_000)?;
                twin.value_bytes = w.usize_in("value_bytes", 1000, 8..=(16 << 20))?;
            }
        }
        if !(8..=(16 << 20)).contains(&twin.value_bytes) {
            return Err(w
                .error("value_bytes", "must be in 8..=16777216 (the first 8 bytes carry the write's id)")
                .into());
        }
        twin.clients = w.usize_in("clients", 64, 1..=100_000)?;
        twin.ops_per_client = w.u32_in("ops_per_client", 100, 0..=20_000_000)?;
        if twin.clients as u64 * u64::from(twin.ops_per_client) > 20_000_000 {
            return Err(w
                .error(
                    "ops_per_client",
                    format!(
                        "{} clients × {} operations is more than 20,000,000 operations in all",
                        twin.clients, twin.ops_per_client
                    ),
                )
                .into());
        }
        twin.think_ns = w.duration_ns_or("think_us", 0.0, 1e3, false)?;
        twin.client_timeout_ns = w.duration_ns_or("client_timeout_ms", 1000.0, 1e6, true)?;
        twin.horizon_ns = w.duration_ns_or("horizon_s", 600.0, 1e9, true)?;
        if twin.horizon_ns > 1_000_000 * 1_000_000_000 {
            return Err(w.error("horizon_s", "must be at most 1000000 s").into());
        }
        w.finish(WORKLOAD_KEYS)?;

        twin.max_crashes = 0;
        let faults = match root.table("faults")? {
            None => false,
            Some(x) => {
                twin.max_crashes = x.usize_in("crashes", f, 0..=10_000)?;
                twin.exact_crashes = true;
                twin.crash_window_ns = x.duration_ns_or("crash_window_ms", 1000.0, 1e6, true)?;
                if x.contains("restart_ms") {
                    twin.restart_ns = Some(range(x, "restart_ms", (0.0, 0.0), 1e6)?);
                }
                twin.loss = probability(x, "loss")?;
                twin.duplicate = probability(x, "duplicate")?;
                twin.partitions = x.usize_in("partitions", 0, 0..=1000)?;
                twin.partition_ns = range(x, "partition_ms", (5.0, 50.0), 1e6)?;
                twin.slow_disks = x.usize_in("slow_disks", 0, 0..=n)?;
                twin.slow_disk_factor = x.f64_in("slow_disk_factor", 10.0, 1.0..=1e6)?;
                x.finish(FAULT_KEYS)?;
                twin.max_crashes > 0 || twin.loss > 0.0 || twin.duplicate > 0.0 || twin.partitions > 0
            }
        };
        let (check_linearizability, read_back) = match root.table("checks")? {
            None => (true, true),
            Some(k) => {
                let pair = (k.bool_or("linearizability", true)?, k.bool_or("read_back", true)?);
                k.finish(CHECK_KEYS)?;
                pair
            }
        };
        twin.read_back = read_back;
        Ok(Scenario { twin, env: Env { n, f, faults, scans }, check_linearizability, fallbacks })
    }

    /// The twin configuration every policy runs on.
    pub fn twin(&self) -> &TwinConfig {
        &self.twin
    }

    /// What one run of protocol `name` needs: memory from the values it
    /// stores, carries and retains, events from its messages and ticks.
    pub fn estimate(&self, name: &str, params: &Params) -> Result<Estimate, ScenarioError> {
        let info = policy::find(name).ok_or_else(|| unknown(name))?;
        let choice = (info.build)(params, &self.env)?;
        let t = &self.twin;
        let n = t.n as u64;
        let v = t.value_bytes as u64;
        let clients = t.clients as u64;
        let ops = product(&[clients, u64::from(t.ops_per_client)]);
        // Writes per operation and the keys they can touch; a YCSB run
        // loads every record first.
        let (write_share, keys, loaded) = match &t.ycsb {
            Some(w) => {
                let total: f64 = w.mix.iter().sum();
                let writes = (w.mix[1] + w.mix[2] + w.mix[4]) / total.max(f64::MIN_POSITIVE);
                let inserts = saturating(ops as f64 * w.mix[2] / total.max(f64::MIN_POSITIVE));
                (writes, w.records.saturating_add(inserts), w.records)
            }
            None => (2.0 / 3.0, t.keys as u64, 0),
        };
        let writes = saturating(ops as f64 * write_share);
        let live = keys.min(loaded.saturating_add(writes));
        // The twin shares a full-copy value between replicas; a coded
        // protocol keeps one shard per replica.
        let (copies, retained) = match choice {
            ProtocolChoice::Rabia(c) => (1.0, product(&[n, c.retain_bytes as u64])),
            ProtocolChoice::Racos(c) => (
                n as f64 / c.data.max(1) as f64,
                product(&[n, (c.cache_bytes + c.garbage_bytes + c.rabia.retain_bytes) as u64]),
            ),
            ProtocolChoice::Leader { coded: Some(k) } => (n as f64 / k.max(1) as f64, 0),
            ProtocolChoice::Leader { coded: None } => (1.0, 0),
        };
        let mut e = Estimate::default();
        e.memory("base", 32 << 20);
        e.memory(
            format!("stored values ({live} keys × {} × {copies:.2} copies)", bytes(v)),
            saturating(live as f64 * v as f64 * copies),
        );
        e.memory(
            format!("values in flight ({clients} clients × {} × {} messages)", bytes(v), n + 2),
            product(&[clients, v, n + 2]),
        );
        e.memory("retained batches, caches and freed shards", retained);
        if t.restart_ns.is_some() {
            e.memory(
                format!("durable records kept for restarts ({writes} writes × {})", bytes(v)),
                saturating(writes as f64 * v as f64 * copies),
            );
        }
        e.memory(format!("client history ({ops} operations)"), product(&[ops.saturating_add(loaded), 160]));
        e.output_bytes = product(&[n, 256]).saturating_add(64 << 10);
        e.events(
            format!("messages ({} operations × about {} per operation)", count(ops), 8 * n * n + 16),
            product(&[ops, 8 * n * n + 16]),
        );
        e.events("re-send ticks until the horizon", product(&[n, t.horizon_ns / t.tick_ns.max(1)]));
        Ok(e)
    }

    /// The metrics a run of this scenario reports.
    pub fn metric_names(&self) -> Vec<String> {
        METRICS.iter().filter(|m| self.check_linearizability || **m != "linearizable").map(|m| m.to_string()).collect()
    }

    /// Substitutions made while preparing.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Checks that a protocol exists and accepts its parameters.
    pub fn check(&self, name: &str, params: &Params) -> Result<(), ScenarioError> {
        let info = policy::find(name).ok_or_else(|| unknown(name))?;
        (info.build)(params, &self.env).map(|_| ()).map_err(Into::into)
    }

    /// Runs protocol `name` with `params` and `seed`.
    pub fn run(
        &self,
        name: &str,
        params: &Params,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let info = policy::find(name).ok_or_else(|| unknown(name))?;
        let choice = (info.build)(params, &self.env)?;
        let outcome = twin::run_observed(&self.twin, seed, choice, progress)
            .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        Ok(report(&self.twin, &outcome, self.check_linearizability))
    }
}

fn unknown(name: &str) -> ScenarioError {
    ScenarioError::Invalid(format!(
        "unknown consensus policy `{name}`; available: {}",
        policy::REGISTRY.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
    ))
}

/// Every metric [`report`] gives; `linearizable` only when the history is
/// checked.
pub const METRICS: &[&str] = &[
    "throughput_ops_s",
    "latency_ms_p50",
    "latency_ms_p99",
    "latency_ms_mean",
    "ops_completed",
    "net_kib_per_op",
    "busiest_nic_kib_per_op",
    "busiest_nic_utilization",
    "disk_kib_per_op",
    "busiest_disk_utilization",
    "messages_per_op",
    "finished",
    "logs_agree",
    "stores_agree",
    "read_back_unanswered",
    "linearizable",
];

/// A run's metrics, per-replica table, series and notes.
pub fn report(config: &TwinConfig, o: &Outcome, check_linearizability: bool) -> RunOutput {
    let ops = o.completed.max(1) as f64;
    let span_ns = o.end_ns.saturating_sub(o.start_ns).max(1) as f64;
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    let total = |v: &[u64]| v.iter().sum::<u64>();
    let busiest = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let q = |x: f64| o.latency_us.quantile(x) as f64 / 1e3;
    let mut notes = Vec::new();
    let verdict = check_linearizability.then(|| linearizability::check(&o.history, None, 20_000_000));
    match &verdict {
        Some(Verdict::Violation { key, operations }) => {
            notes.push(format!("the history is NOT linearizable: key {key} ({} operations)", operations.len()))
        }
        Some(Verdict::Unknown { key }) => notes.push(format!("linearizability of key {key} was not decided")),
        _ => {}
    }
    if !o.logs_agree {
        notes.push("replicas decided different batches in one slot".into());
    }
    if !o.stores_agree {
        notes.push("replicas that applied the same slots hold different stores".into());
    }
    let planned = config.clients as u64 * u64::from(config.ops_per_client);
    if !o.finished {
        notes.push(format!(
            "not every client finished by the horizon: {} of {planned} operations answered, read-back {} of {}",
            o.completed, o.read_back.0, o.read_back.1
        ));
    }
    if o.crashes > 0 {
        notes.push(format!("{} crashes, {} restarts", o.crashes, o.restarts));
    }
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut metrics = vec![
        Metric::new("throughput_ops_s", o.throughput(), Better::Higher),
        Metric::new("latency_ms_p50", q(0.5), Better::Lower),
        Metric::new("latency_ms_p99", q(0.99), Better::Lower),
        Metric::new("latency_ms_mean", o.latency_us.mean() / 1e3, Better::Lower),
        Metric::new("ops_completed", o.completed as f64, Better::Neither),
        Metric::new("net_kib_per_op", kib(total(&o.bytes_sent)) / ops, Better::Lower),
        Metric::new("busiest_nic_kib_per_op", kib(busiest(&o.bytes_sent)) / ops, Better::Lower),
        Metric::new("busiest_nic_utilization", busiest(&o.nic_busy_ns) as f64 / span_ns, Better::Neither),
        Metric::new("disk_kib_per_op", kib(total(&o.disk_bytes)) / ops, Better::Lower),
        Metric::new("busiest_disk_utilization", busiest(&o.disk_busy_ns) as f64 / span_ns, Better::Neither),
        Metric::new("messages_per_op", total(&o.messages_sent) as f64 / ops, Better::Lower),
        Metric::new("finished", flag(o.finished), Better::Higher),
        Metric::new("logs_agree", flag(o.logs_agree), Better::Higher),
        Metric::new("stores_agree", flag(o.stores_agree), Better::Higher),
        Metric::new("read_back_unanswered", (o.read_back.1 - o.read_back.0) as f64, Better::Lower),
    ];
    if let Some(v) = &verdict {
        metrics.push(Metric::new("linearizable", flag(*v == Verdict::Linearizable), Better::Higher));
    }
    let replicas = Table {
        name: "replicas".into(),
        columns: ["replica", "alive", "messages", "bytes_sent", "disk_bytes", "nic_busy_pct", "disk_busy_pct"]
            .map(String::from)
            .to_vec(),
        rows: (0..config.n)
            .map(|r| {
                vec![
                    Cell::Int(r as i64),
                    Cell::Bool(o.alive[r]),
                    Cell::Int(o.messages_sent[r] as i64),
                    Cell::Int(o.bytes_sent[r] as i64),
                    Cell::Int(o.disk_bytes[r] as i64),
                    Cell::Float(100.0 * o.nic_busy_ns[r] as f64 / span_ns),
                    Cell::Float(100.0 * o.disk_busy_ns[r] as f64 / span_ns),
                ]
            })
            .collect(),
    };
    // Throughput over 50 windows of the run.
    let windows = 50u64;
    let width = (o.end_ns.saturating_sub(o.start_ns) / windows).max(1);
    let mut counts = vec![0u64; windows as usize];
    for &t in &o.answers_ns {
        let i = ((t.saturating_sub(o.start_ns)) / width).min(windows - 1) as usize;
        counts[i] += 1;
    }
    let throughput = Series {
        name: "throughput".into(),
        x_label: "time (s)".into(),
        y_label: "operations per second".into(),
        points: counts
            .iter()
            .enumerate()
            .map(|(i, &c)| ((o.start_ns + (i as u64 + 1) * width) as f64 / 1e9, c as f64 / (width as f64 / 1e9)))
            .collect(),
    };
    let latency_cdf = Series {
        name: "latency_cdf".into(),
        x_label: "latency (ms)".into(),
        y_label: "fraction of operations".into(),
        points: (1..=100).map(|i| (q(f64::from(i) / 100.0), f64::from(i) / 100.0)).collect(),
    };
    let series = if o.completed > 0 { vec![throughput, latency_cdf] } else { Vec::new() };
    RunOutput { metrics, tables: vec![replicas], series, timings: Vec::new(), notes }
}
