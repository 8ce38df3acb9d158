//! `nimbus chain`: the real loopback call chain (`nimbus-rpc`) under FCFS
//! and oldest-first worker pools, each beside the twin's prediction
//! (`nimbus-dc::callgraph`) on the very requests the chain served, with
//! the measured hop time as network delay and each hold lengthened by the
//! measured sleep overrun.

use std::path::PathBuf;

use clap::Args;
use nimbus_dc::callgraph::{self, Discipline, Graph, Load, ScriptedCall};
use nimbus_rpc::{ChainConfig, ChainReport, Order};
use nimbus_sim::time::{SimDuration, SimTime};

/// The chain's shape, its load and what to compare.
#[derive(Args, Debug, Clone)]
pub struct ChainArgs {
    /// Services per tier, top first, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,8")]
    pub tiers: Vec<usize>,
    /// Worker threads per service.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Fewest calls a call makes to the next tier.
    #[arg(long, default_value_t = 2)]
    pub fanout_min: u32,
    /// Most calls a call makes to the next tier.
    #[arg(long, default_value_t = 6)]
    pub fanout_max: u32,
    /// Mean work of a call, ms (log-normal; held by a sleeping worker).
    #[arg(long, default_value_t = 2.0)]
    pub work_ms: f64,
    /// σ of the work's log-normal.
    #[arg(long, default_value_t = 1.5)]
    pub sigma: f64,
    /// Load of the busiest tier's workers (sets the Poisson rate).
    #[arg(long, default_value_t = 0.85)]
    pub load: f64,
    /// Requests per order.
    #[arg(long, default_value_t = 6_000)]
    pub requests: usize,
    /// Seed of the requests.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// fcfs, oldest-first or both.
    #[arg(long, default_value = "both")]
    pub order: String,
    /// Also write the rows as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

impl Default for ChainArgs {
    fn default() -> Self {
        ChainArgs {
            tiers: vec![1, 2, 8],
            workers: 2,
            fanout_min: 2,
            fanout_max: 6,
            work_ms: 2.0,
            sigma: 1.5,
            load: 0.85,
            requests: 6_000,
            seed: 1,
            order: "both".into(),
            csv: None,
        }
    }
}

fn script(call: &nimbus_rpc::wire::Call, extra_s: f64, out: &mut Vec<ScriptedCall>) -> usize {
    let id = out.len();
    out.push(ScriptedCall {
        service: usize::from(call.service),
        work_s: f64::from(call.work_us) * 1e-6 + extra_s,
        children: Vec::new(),
    });
    let children = call.children.iter().map(|c| script(c, extra_s, out)).collect();
    out[id].children = children;
    id
}

/// The twin on the requests `real` served (the first `real.sent` of
/// `requests`, the configuration's draw).
fn twin(
    config: &ChainConfig,
    requests: &(Vec<std::time::Duration>, Vec<nimbus_rpc::wire::Call>),
    real: &ChainReport,
    discipline: Discipline,
) -> Result<nimbus_sim::output::RunOutput, String> {
    let graph = Graph {
        services: config.tiers.clone(),
        cores: config.workers,
        fanout: config.fanout,
        net: SimDuration::from_secs_f64(real.hop_us * 1e-6),
    };
    let load = Load {
        requests: real.sent,
        rate: config.rate_rps,
        arrival_cv: 1.0,
        work_mean_s: config.work_mean_ms * 1e-3,
        work_sigma: config.work_sigma,
    };
    let (arrivals, trees) = requests;
    let arrivals: Vec<SimTime> = arrivals[..real.sent]
        .iter()
        .map(|d| SimTime::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
        .collect();
    let mut calls = Vec::new();
    let roots: Vec<usize> =
        trees[..real.sent].iter().map(|t| script(t, real.overshoot_us * 1e-6, &mut calls)).collect();
    Ok(callgraph::run_scripted(&graph, &load, &arrivals, &roots, &calls, discipline)?.0)
}

/// Runs the chain under the asked orders and prints each beside the twin.
pub fn run(args: &ChainArgs) -> Result<(), String> {
    if !(args.load > 0.0 && args.load <= 2.0) {
        return Err(format!("--load {} must be in (0, 2]", args.load));
    }
    let orders: Vec<(&str, Order, Discipline)> = match args.order.as_str() {
        "fcfs" => vec![("fcfs", Order::Fcfs, Discipline::Fcfs)],
        "oldest-first" => vec![("oldest-first", Order::OldestFirst, Discipline::OldestFirstNonPreemptive)],
        "both" => vec![
            ("fcfs", Order::Fcfs, Discipline::Fcfs),
            ("oldest-first", Order::OldestFirst, Discipline::OldestFirstNonPreemptive),
        ],
        other => return Err(format!("--order {other:?}: fcfs, oldest-first or both")),
    };
    let mut config = ChainConfig {
        tiers: args.tiers.clone(),
        workers: args.workers,
        fanout: (args.fanout_min, args.fanout_max),
        work_mean_ms: args.work_ms,
        work_sigma: args.sigma,
        rate_rps: 1.0,
        requests: args.requests,
        seed: args.seed,
        order: Order::Fcfs,
        max_outstanding: 20_000,
        timeout: std::time::Duration::from_secs(30),
    };
    config.validate().map_err(|e| e.to_string())?;
    config.rate_rps = config.rate_for_load(args.load);
    outln!(
        "a real call chain on 127.0.0.1: tiers of {:?} services x {} worker threads, fan-out {}-{}, work log-normal mean {} ms sigma {} held by sleeping, {} requests at {:.0}/s = {:.0}% load on the busiest tier; twin: the same requests, the measured hop as network delay, each hold lengthened by the measured overrun",
        config.tiers,
        config.workers,
        config.fanout.0,
        config.fanout.1,
        config.work_mean_ms,
        config.work_sigma,
        config.requests,
        config.rate_rps,
        args.load * 100.0
    );
    outln!(
        "  {:<14} {:>9} {:>9} {:>9} {:>9}   {:>9} {:>9} {:>9}   {:>7} {:>9}",
        "order",
        "real rps",
        "mean ms",
        "p99 ms",
        "p99.9 ms",
        "twin rps",
        "mean ms",
        "p99 ms",
        "hop us",
        "overrun"
    );
    let mut csv = String::from(
        "order,real_rps,real_mean_ms,real_p99_ms,real_p999_ms,twin_rps,twin_mean_ms,twin_p99_ms,hop_us,overrun_us,sent,lost,overloaded\n",
    );
    // Both orders serve these same requests (the chain draws them from the
    // same seed).
    let requests = nimbus_rpc::draw(&config);
    for (label, order, discipline) in orders {
        config.order = order;
        let real = nimbus_rpc::run(&config).map_err(|e| format!("the loopback chain: {e}"))?;
        if real.overloaded || real.lost > 0 {
            outln!("  {label}: the chain fell behind ({} lost, generator stopped: {})", real.lost, real.overloaded);
        }
        let twin = twin(&config, &requests, &real, discipline)?;
        let m = |name: &str| twin.metric(name).unwrap_or(f64::NAN);
        // real rps, mean, p99, p99.9; twin rps, mean, p99; hop; overrun.
        let row = [
            real.throughput_rps,
            real.response_ms_mean,
            real.response_ms_p99,
            real.response_ms_p999,
            m("throughput_rps"),
            m("response_ms_mean"),
            m("response_ms_p99"),
            real.hop_us,
            real.overshoot_us,
        ];
        outln!(
            "  {label:<14} {:>9.0} {:>9.2} {:>9.2} {:>9.2}   {:>9.0} {:>9.2} {:>9.2}   {:>7.0} {:>6.0} us",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            row[8]
        );
        let values: Vec<String> = row.iter().map(f64::to_string).collect();
        csv.push_str(&format!("{label},{},{},{},{}\n", values.join(","), real.sent, real.lost, real.overloaded));
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, csv).map_err(|e| format!("{}: {e}", path.display()))?;
        outln!("Rows: {}", path.display());
    }
    Ok(())
}
