//! `nimbus kv`: run a replica of the loopback key-value service, or
//! benchmark a cluster (one already running, or replicas this command
//! starts on loopback and stops at the end).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{Args, Subcommand};
use nimbus_consensus::linearizability::Verdict;
use nimbus_consensus::ycsb::Workload;
use nimbus_kv::bench::{self, BenchConfig, BenchReport};
use nimbus_kv::client::ClientConfig;
use nimbus_kv::cluster::{LocalCluster, TOKEN_ENV};
use nimbus_kv::server::{self, Limits, ReplicaConfig, ServiceProtocol};

use crate::DelayedProgress;

/// `nimbus kv` subcommands.
#[derive(Subcommand)]
pub enum KvCommand {
    /// Run one replica (until killed). Binds its address from --peers (127.0.0.1 unless you list another).
    Serve(ServeArgs),
    /// Closed-loop benchmark: start replicas on loopback (--spawn) or use running ones (--peers), then check the history.
    Bench(BenchArgs),
}

/// Settings every replica of a cluster shares.
#[derive(Args)]
pub struct ProtocolArgs {
    /// rabia (full copies) or racos (erasure-coded values ordered by Rabia).
    #[arg(long, default_value = "rabia")]
    protocol: String,
    /// Racos' data shards per value (default n − 2f).
    #[arg(long)]
    data_shards: Option<usize>,
    /// Crashes tolerated (default ⌊(n − 1)/2⌋).
    #[arg(long)]
    f: Option<usize>,
}

/// `nimbus kv serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// This replica's number, 0..n.
    #[arg(long)]
    id: usize,
    /// Every replica's address in order, comma-separated (e.g. 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002).
    #[arg(long, value_delimiter = ',', required = true)]
    peers: Vec<String>,
    #[command(flatten)]
    protocol: ProtocolArgs,
    /// Where the replica's durable log lives.
    #[arg(long)]
    data_dir: PathBuf,
    /// The cluster's shared token (default: the NIMBUS_KV_TOKEN environment variable).
    #[arg(long)]
    token: Option<String>,
    /// Longest value a client may write, bytes (at most 32 MiB).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(8..=32 << 20))]
    max_value_bytes: u64,
    /// The protocol's timer (re-sends), ms.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    tick_ms: u64,
    /// Exit when standard input closes (set by the process that started this replica, so it dies with it).
    #[arg(long, hide = true)]
    exit_with_parent: bool,
    /// With --exit-with-parent: remove this directory on the way out (a temporary cluster's).
    #[arg(long, hide = true, requires = "exit_with_parent")]
    remove_on_exit: Option<PathBuf>,
}

/// `nimbus kv bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Start this many replicas on loopback for the run (default 3 unless --peers is given).
    #[arg(long)]
    spawn: Option<usize>,
    /// Use a running cluster at these addresses instead, comma-separated.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    #[command(flatten)]
    protocol: ProtocolArgs,
    /// The cluster's token (default: NIMBUS_KV_TOKEN, or a fresh one for --spawn).
    #[arg(long)]
    token: Option<String>,
    /// Closed-loop clients (1 to 10,000).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    clients: u64,
    /// Operations per client.
    #[arg(long, default_value_t = 200)]
    ops: u32,
    /// Clients stop issuing operations after this many seconds.
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    max_seconds: f64,
    /// Keys of the uniform get/put/read-modify-write workload (1 to 10,000,000).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    keys: u64,
    /// A YCSB workload instead: a letter a–f, or a YCSB property file.
    #[arg(long)]
    workload: Option<String>,
    /// Bytes per written value (8 to 32 MiB; the replicas refuse more than their --max-value-bytes).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(8..=32 << 20))]
    value_bytes: u64,
    /// Seeds the clients' choices of operations and keys.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With --spawn: kill this replica (SIGKILL) during the run.
    #[arg(long)]
    kill: Option<usize>,
    /// ... this many ms after the first operation is answered.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    kill_after_ms: u64,
    /// ... and start it again from its durable log this many ms after the kill.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    restart_after_ms: Option<u64>,
    /// Skip the read-back of every key written.
    #[arg(long)]
    no_read_back: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// With --spawn: keep the replicas' logs and output here (default: a temporary directory, removed after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Runs a `nimbus kv` subcommand.
pub fn run(command: KvCommand) -> Result<(), String> {
    match command {
        KvCommand::Serve(args) => serve(args),
        KvCommand::Bench(args) => bench_command(args),
    }
}

fn parse_addrs(list: &[String]) -> Result<Vec<SocketAddr>, String> {
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            a.trim()
                .parse::<SocketAddr>()
                .map_err(|e| format!("--peers entry {} ({a:?}): {e}; expected IP:PORT", i + 1))
        })
        .collect()
}

/// A number of seconds for a flag: finite, in 0..=86,400 (a day).
fn seconds(text: &str) -> Result<f64, String> {
    let v: f64 = text.trim().parse().map_err(|_| format!("expected a number of seconds, found {text:?}"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("expected seconds in 0..=86400, found {text}"));
    }
    Ok(v)
}

fn choose_protocol(args: &ProtocolArgs, n: usize) -> Result<(ServiceProtocol, usize), String> {
    let f = args.f.unwrap_or(n.saturating_sub(1) / 2);
    if n < 2 * f + 1 {
        return Err(format!("{n} replicas cannot tolerate f = {f} crashes (needs n ≥ 2f + 1)"));
    }
    let protocol = match args.protocol.as_str() {
        "rabia" => ServiceProtocol::Rabia,
        "racos" => ServiceProtocol::Racos { data: args.data_shards.unwrap_or(n - 2 * f).max(1) },
        other => {
            return Err(format!(
                "unknown protocol {other:?}; the service runs rabia or racos (the leader-based baselines have no leader election yet, so they run only in the twin)"
            ));
        }
    };
    Ok((protocol, f))
}

fn token_from(arg: Option<String>) -> Option<String> {
    arg.or_else(|| std::env::var(TOKEN_ENV).ok()).filter(|t| !t.is_empty())
}

fn serve(args: ServeArgs) -> Result<(), String> {
    if args.exit_with_parent {
        nimbus_kv::cluster::exit_with_parent(args.remove_on_exit.clone())
            .map_err(|e| format!("watching the parent process: {e}"))?;
    }
    let peers = parse_addrs(&args.peers)?;
    let (protocol, f) = choose_protocol(&args.protocol, peers.len())?;
    let token = token_from(args.token).ok_or_else(|| format!("no cluster token: give --token or set {TOKEN_ENV}"))?;
    let config = ReplicaConfig {
        id: args.id,
        peers,
        f,
        token,
        protocol,
        data_dir: args.data_dir,
        tick: Duration::from_millis(args.tick_ms),
        limits: Limits {
            value_bytes: usize::try_from(args.max_value_bytes).unwrap_or(usize::MAX),
            client_frame_bytes: usize::try_from(args.max_value_bytes).unwrap_or(usize::MAX) + (1 << 20),
            ..Limits::default()
        },
    };
    server::serve(config).map_err(|e| e.to_string())
}

/// A token nobody can guess from outside this process.
fn fresh_token() -> String {
    let mut h = blake3::Hasher::new();
    h.update(&std::process::id().to_le_bytes());
    #[allow(clippy::disallowed_methods)] // a secret, not a result: wall time is entropy here
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(format!("{:p}", &h).as_bytes());
    h.finalize().to_hex()[..32].to_string()
}

fn workload(spec: &str) -> Result<Workload, String> {
    let mut letters = spec.chars();
    if let (Some(letter), None) = (letters.next(), letters.next())
        && let Some(w) = Workload::core(letter.to_ascii_lowercase())
    {
        return Ok(w);
    }
    Workload::read(Path::new(spec)).map_err(|e| format!("--workload {spec}: {e} (or give a letter a–f)"))
}

fn bench_command(args: BenchArgs) -> Result<(), String> {
    let program =
        std::env::current_exe().map_err(|e| format!("cannot find the nimbus program to start replicas: {e}"))?;
    let spawn = match (args.spawn, args.peers.is_empty()) {
        (Some(_), false) => return Err("give --spawn or --peers, not both".into()),
        (Some(n), true) => Some(n),
        (None, true) => Some(3),
        (None, false) => None,
    };
    if args.kill.is_some() && spawn.is_none() {
        return Err("--kill needs --spawn (this command kills only replicas it started)".into());
    }
    let ycsb = args.workload.as_deref().map(workload).transpose()?;
    let mut cluster = None;
    let (addrs, token, protocol) = match spawn {
        Some(n) => {
            if n == 0 || n > 15 {
                return Err(format!("--spawn {n}: start 1 to 15 replicas"));
            }
            let (protocol, f) = choose_protocol(&args.protocol, n)?;
            let token = token_from(args.token.clone()).unwrap_or_else(fresh_token);
            if let Some(k) = args.kill
                && k >= n
            {
                return Err(format!("--kill {k}: there are replicas 0..{n}"));
            }
            // In a directory of the user's, or a temporary one that goes
            // with the replicas however this command ends.
            let started = match &args.data_dir {
                Some(dir) => LocalCluster::start(&program, n, f, protocol, dir, &token)
                    .map_err(|e| format!("starting {n} replicas in {}: {e}", dir.display()))?,
                None => LocalCluster::start_temporary(&program, n, f, protocol, &token)
                    .map_err(|e| format!("starting {n} replicas in a temporary directory: {e}"))?,
            };
            let addrs = started.addrs.clone();
            cluster = Some(started);
            (addrs, token, Some(protocol))
        }
        None => {
            let addrs = parse_addrs(&args.peers)?;
            let token = token_from(args.token.clone())
                .ok_or_else(|| format!("no cluster token: give --token or set {TOKEN_ENV}"))?;
            (addrs, token, None)
        }
    };
    let config = BenchConfig {
        client: ClientConfig {
            replicas: addrs.clone(),
            token,
            attempt_timeout: Duration::from_millis(500),
            frame_limit: 64 << 20,
        },
        clients: usize::try_from(args.clients).unwrap_or(1),
        ops_per_client: args.ops,
        max_duration: Duration::from_secs_f64(args.max_seconds),
        op_deadline: Duration::from_secs(10),
        keys: usize::try_from(args.keys).unwrap_or(1),
        value_bytes: usize::try_from(args.value_bytes).unwrap_or(8),
        ycsb,
        seed: args.seed,
        read_back: !args.no_read_back,
        // Distinct sessions and keys per run against a long-lived cluster.
        first_client_id: u64::from(std::process::id()) << 24,
        key_space: format!("run-{}-", &fresh_token()[..12]),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let progress = Arc::new(AtomicU64::new(0));
    let total = config.clients as u64 * u64::from(config.ops_per_client);
    let bar = DelayedProgress::new(total);
    let cluster = Arc::new(std::sync::Mutex::new(cluster));
    let killed = Arc::new(AtomicU64::new(u64::MAX));
    let faults = Arc::new(std::sync::Mutex::new(Faults::default()));
    let report = runtime.block_on(async {
        let watcher = {
            let progress = progress.clone();
            tokio::spawn(async move {
                loop {
                    bar.update(progress.load(Ordering::Relaxed), "operations answered".into());
                    if progress.load(Ordering::Relaxed) >= total {
                        bar.finish();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let killer = args.kill.map(|k| {
            let cluster = cluster.clone();
            let killed = killed.clone();
            let progress = progress.clone();
            let faults = faults.clone();
            let after = Duration::from_millis(args.kill_after_ms);
            let restart_after = args.restart_after_ms.map(Duration::from_millis);
            tokio::spawn(async move {
                // The clock starts at the first answer, not at launch: on a
                // loaded machine the cluster may take longer than `after`
                // to answer at all, and a kill before any answer is not a
                // kill mid-run. A cluster that never answers is killed
                // after 30 s regardless.
                let launched = tokio::time::Instant::now();
                while progress.load(Ordering::Relaxed) == 0 && launched.elapsed() < Duration::from_secs(30) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                tokio::time::sleep(after).await;
                let at_kill = progress.load(Ordering::Relaxed);
                let c = cluster.clone();
                let done =
                    tokio::task::spawn_blocking(move || c.lock().ok().and_then(|mut c| c.as_mut().map(|c| c.kill(k))))
                        .await;
                if let Ok(Some(Ok(()))) = done {
                    killed.store(k as u64, Ordering::Relaxed);
                    faults.lock().map(|mut f| f.answered_at_kill = Some(at_kill)).ok();
                }
                if let Some(wait) = restart_after {
                    tokio::time::sleep(wait).await;
                    let at_restart = progress.load(Ordering::Relaxed);
                    let done = tokio::task::spawn_blocking(move || {
                        cluster.lock().ok().and_then(|mut c| c.as_mut().map(|c| c.restart(k)))
                    })
                    .await;
                    match done {
                        Ok(Some(Ok(()))) => {
                            faults.lock().map(|mut f| f.answered_at_restart = Some(at_restart)).ok();
                        }
                        other => {
                            faults.lock().map(|mut f| f.restart_error = Some(format!("{other:?}"))).ok();
                        }
                    }
                }
            })
        });
        // SIGINT or SIGTERM stops the run; the replicas and their
        // temporary directory go with the cluster below.
        let report = tokio::select! {
            report = bench::run(&config, progress.clone()) => report,
            signal = interrupted() => return Err(signal),
        };
        if let Some(k) = killer {
            let _ = k.await;
        }
        watcher.abort();
        let states = bench::settle(&config.client, Duration::from_secs(5)).await;
        Ok((report, states))
    });
    let (report, states) = match report {
        Ok(done) => done,
        Err(signal) => {
            if let Ok(mut c) = cluster.lock() {
                c.take();
            }
            return Err(format!("interrupted by {signal}; the replicas this command started are stopped"));
        }
    };
    let killed = match killed.load(Ordering::Relaxed) {
        u64::MAX => None,
        k => usize::try_from(k).ok(),
    };
    let faults = faults.lock().map(|f| f.clone()).unwrap_or_default();
    if let Some(e) = &faults.restart_error {
        return Err(format!("restarting replica {:?}: {e}", args.kill));
    }
    let outcome = Summary::new(&report, &states, killed, faults);
    print_report(&config, &args, protocol, &report, &outcome);
    if let Some(path) = &args.json {
        write_json(path, &config, protocol, &report, &outcome)?;
    }
    // Stop the replicas this command started (a temporary directory goes
    // with them).
    if let Ok(mut c) = cluster.lock() {
        c.take();
    }
    outcome.verdict()
}

/// Waits for SIGINT or SIGTERM and names it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        // Without handlers the default actions apply; the replicas still
        // exit when this process does.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// What the fault injection did, in answered operations.
#[derive(Debug, Clone, Default)]
struct Faults {
    answered_at_kill: Option<u64>,
    answered_at_restart: Option<u64>,
    restart_error: Option<String>,
}

/// The checks of a benchmark run.
struct Summary {
    faults: Faults,
    unanswered: u64,
    refused: u64,
    linearizable: Result<(), String>,
    lost_reads: u64,
    answered: usize,
    agree: bool,
    applied: Option<u64>,
    killed: Option<usize>,
}

impl Summary {
    fn new(report: &BenchReport, states: &[Option<(u64, u64)>], killed: Option<usize>, faults: Faults) -> Self {
        let linearizable = match &report.verdict {
            Verdict::Linearizable => Ok(()),
            Verdict::Violation { key, operations } => {
                Err(format!("not linearizable on key {key} ({} operations)", operations.len()))
            }
            Verdict::Unknown { key } => Err(format!("the check of key {key} ran out of steps (unknown)")),
        };
        let live: Vec<(u64, u64)> = states.iter().flatten().copied().collect();
        let agree = live.windows(2).all(|w| w[0] == w[1]);
        Summary {
            faults,
            unanswered: report.unanswered,
            refused: report.refused,
            linearizable,
            lost_reads: report.read_back.1 - report.read_back.0,
            answered: live.len(),
            agree,
            applied: live.first().map(|s| s.0),
            killed,
        }
    }

    fn verdict(&self) -> Result<(), String> {
        if self.unanswered > 0 || self.refused > 0 {
            return Err(format!(
                "{} operations went unanswered and {} were refused by the replicas",
                self.unanswered, self.refused
            ));
        }
        if let Err(e) = &self.linearizable {
            return Err(format!("the history is {e}"));
        }
        if self.lost_reads > 0 {
            return Err(format!("{} keys written could not be read back", self.lost_reads));
        }
        if !self.agree {
            return Err("replicas that answered hold different stores".into());
        }
        Ok(())
    }
}

fn describe_workload(config: &BenchConfig, args: &BenchArgs) -> String {
    match &args.workload {
        Some(w) => format!("YCSB {w}"),
        None => format!("uniform get/put/read-modify-write on {} keys", config.keys),
    }
}

fn print_report(
    config: &BenchConfig,
    args: &BenchArgs,
    protocol: Option<ServiceProtocol>,
    report: &BenchReport,
    s: &Summary,
) {
    let n = config.client.replicas.len();
    let protocol = protocol.map_or_else(|| "running cluster".to_string(), |p| p.name());
    outln!(
        "loopback kv benchmark: {n} replicas ({protocol}), {} clients × {} operations, {}, {}-byte values",
        config.clients,
        config.ops_per_client,
        describe_workload(config, args),
        config.value_bytes
    );
    let ms = |us: u64| us as f64 / 1_000.0;
    let rows = [
        (
            "operations answered",
            format!("{} ({} refused, {} unanswered)", report.completed, report.refused, report.unanswered),
        ),
        ("wall time", format!("{:.2} s", report.elapsed.as_secs_f64())),
        ("throughput", format!("{:.0} ops/s", report.throughput())),
        (
            "latency p50 / p99",
            format!(
                "{:.2} / {:.2} ms (mean {:.2}, max {:.2})",
                ms(report.latency_us.quantile(0.5)),
                ms(report.latency_us.quantile(0.99)),
                report.latency_us.mean() / 1_000.0,
                ms(report.latency_us.max())
            ),
        ),
        ("read-back", format!("{} of {} keys", report.read_back.0, report.read_back.1)),
        (
            "linearizable",
            match &s.linearizable {
                Ok(()) => format!("yes ({} operations checked)", report.history.len()),
                Err(e) => format!("NO: {e}"),
            },
        ),
        (
            "replicas agree",
            format!(
                "{} ({} of {n} answered; {} slots applied)",
                if s.agree { "yes" } else { "NO" },
                s.answered,
                s.applied.map_or("-".to_string(), |a| a.to_string())
            ),
        ),
        (
            "killed",
            s.killed.map_or_else(
                || "none".to_string(),
                |k| {
                    let mut text = format!(
                        "replica {k} after {} ms ({} operations answered by then)",
                        args.kill_after_ms,
                        s.faults.answered_at_kill.unwrap_or(0)
                    );
                    if let (Some(ms), Some(at)) = (args.restart_after_ms, s.faults.answered_at_restart) {
                        text += &format!("; restarted {ms} ms later ({at} answered by then)");
                    }
                    text
                },
            ),
        ),
    ];
    for (what, value) in rows {
        outln!("  {what:<22}{value}");
    }
    for e in &report.errors {
        outln!("  note: {e}");
    }
}

fn write_json(
    path: &Path,
    config: &BenchConfig,
    protocol: Option<ServiceProtocol>,
    report: &BenchReport,
    s: &Summary,
) -> Result<(), String> {
    let value = serde_json::json!({
        "replicas": config.client.replicas.len(),
        "protocol": protocol.map(|p| p.name()),
        "clients": config.clients,
        "ops_per_client": config.ops_per_client,
        "value_bytes": config.value_bytes,
        "completed": report.completed,
        "refused": report.refused,
        "unanswered": report.unanswered,
        "wall_s": report.elapsed.as_secs_f64(),
        "throughput_ops_s": report.throughput(),
        "latency_p50_ms": report.latency_us.quantile(0.5) as f64 / 1e3,
        "latency_p99_ms": report.latency_us.quantile(0.99) as f64 / 1e3,
        "latency_mean_ms": report.latency_us.mean() / 1e3,
        "read_back_answered": report.read_back.0,
        "read_back_issued": report.read_back.1,
        "linearizable": s.linearizable.is_ok(),
        "replicas_answered": s.answered,
        "replicas_agree": s.agree,
        "killed": s.killed,
        "answered_at_kill": s.faults.answered_at_kill,
        "answered_at_restart": s.faults.answered_at_restart,
        "errors": report.errors,
    });
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
}
