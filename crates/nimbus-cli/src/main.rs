//! `nimbus`: the command-line face of the project.
//!
//! Glue only: argument parsing, progress display and error rendering. The
//! work lives in the library crates. This is the only crate that prints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{Parser, Subcommand};

/// `print!` that ends the program quietly when stdout is closed (e.g. piped
/// into `head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => { $crate::emit(&format!($($arg)*)) };
}

/// `println!` with the same behaviour as [`out!`].
macro_rules! outln {
    () => { $crate::emit("\n") };
    ($($arg:tt)*) => { $crate::emit(&format!("{}\n", format_args!($($arg)*))) };
}

mod bench;
mod chain;
mod commands;
mod forecast;
mod kv;

/// Writes to stdout; a closed pipe ends the program with success, any other
/// write error with failure.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Which published technique helps your cluster, on your trace?
#[derive(Parser)]
#[command(name = "nimbus", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: every policy × seed, a comparison table, claims, result files.
    Run {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Seeds to run instead of the scenario's, comma-separated (e.g. 0,1,2).
        #[arg(long, value_delimiter = ',')]
        seeds: Option<Vec<u64>>,
        /// Output directory (default: results/<scenario>/<run id>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a scenario key, e.g. --set workload.jobs_per_hour=3 (value in TOML syntax).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Worker threads for running policies and seeds in parallel (default: all cores; at most 4 per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Refuse the scenario if its runs would need more memory than this (e.g. 12G, 512M; default: half of physical memory).
        #[arg(long, value_parser = nimbus_sim::estimate::parse_bytes)]
        max_memory: Option<u64>,
        /// Refuse the scenario if a run would process more events than this (default 1e11).
        #[arg(long, value_parser = events)]
        max_events: Option<u64>,
        /// Print only errors.
        #[arg(long)]
        quiet: bool,
        /// Run only shard I of N (e.g. 0/3) of the runs (points × policies × seeds) and write
        /// shard-I-of-N.json for `nimbus merge`.
        #[arg(long, value_name = "I/N", value_parser = nimbus_lab::Shard::parse)]
        shard: Option<nimbus_lab::Shard>,
    },
    /// Merge shard files (or directories holding one each) of one run into its result files.
    Merge {
        /// Shard files, or directories each holding one.
        shards: Vec<PathBuf>,
        /// Output directory (default: results/<scenario>/<run id>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print only errors.
        #[arg(long)]
        quiet: bool,
    },
    /// List domains, their policies (kind, fidelity, source) and the scenarios under ./scenarios.
    List {
        /// Only this domain.
        domain: Option<String>,
    },
    /// Show a scenario's settings, or a policy's description and parameters.
    Show {
        /// A scenario file or a policy name.
        what: String,
    },
    /// Check a trace file: parse every row and report the first problem.
    Trace {
        /// Format: gavel-trace, gavel-throughputs, sia-workload, sia-placements, sia-scalability,
        /// sia-validation, philly-gavel, philly-sia, alibaba-nodes, alibaba-pods, tiresias-jobs,
        /// tiresias-shape, tiresias-gpu-time, azure-llm, vidur-trace, llm-lengths, mooncake, splitwise-perf,
        /// vidur-mlp, vidur-collective, distserve, azure2019-invocations, azure2019-durations,
        /// azure2019-memory, azure2021, iluvatar-trace, iluvatar-metadata, instainfer-models, hourly-carbon,
        /// series-csv, gaia-arrivals, azure2019-per-minute, redset-csv, throughput-grid, redset, parquet,
        /// opendc-tasks, gaia-jobs, act-yaml, opendc-failures, decima-tpch, wfcommons, pegasus-dax, daggen-dot, dslab-yaml, dslab-system, idx (MNIST, gzip or not). series-csv, redset and opendc-failures read Parquet files too.
        format: String,
        /// The file.
        path: PathBuf,
    },
    /// Benchmarks: forecast (rolling-origin evaluation of the statistical forecasters, series/s), elastic (30 days of each elastic model per policy: training, burstable, leasing), kernel (event queue), gavel (continuous experiment), sia and hops (scheduler decision times), llm (serving engine), faas (serverless engine; faas-50k: 50,000 apps for 14 days, or one day with --quick), snapshot (Snapipeline vs serial restore, real), consensus (the Rabia twin), carbon (the SURF-week replay: events/s, memory; a year of CDN-Shifter LPs; CloudSim Plus' placement stress case), dc (a stream of 1,010 TPC-H DAGs, about a million tasks, per scheduler: tasks/s; 1.1 M tasks on a 1,000-node task cluster; a call graph: calls/s; the real loopback call chain beside the twin), or all.
    Bench {
        /// What to measure.
        #[arg(default_value = "all")]
        what: String,
        /// Smaller sizes (for a quick look).
        #[arg(long)]
        quick: bool,
    },
    /// Write the synthetic serverless workload (the generator fitted to the Azure Functions 2019 marginals) as Azure
    /// 2019 day files: invocations_per_function_md.anon.dNN.csv, function_durations_percentiles.anon.dNN.csv and
    /// app_memory_percentiles.anon.dNN.csv, for other simulators; the per-minute counts are those the app-level
    /// engine runs.
    ExportAzure2019 {
        /// Apps (one function each; at most 100,000: a day of counts is held in memory, 5.8 KB per app).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        apps: u32,
        /// Days (whole days; at most 30).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=30))]
        days: u32,
        /// Seed (the scenario seed whose workload is written).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Median cold-start latency of the generated apps, ms (not in the files; it sets the generator's draws).
        #[arg(long, default_value_t = 1000.0)]
        cold_start_ms: f64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// TailClipper's real loopback call chain (tiers of services on 127.0.0.1, worker pools ordered FCFS or oldest
    /// request first by the propagated ingress timestamp), each order beside the twin on the same requests.
    Chain(chain::ChainArgs),
    /// Evaluate forecasters on series by rolling origin: a leaderboard (mean ± 95% CI across origins), checks,
    /// and result files (CSV, JSON, SVG). Give a study file (scenarios/forecast/*.toml) and/or --series.
    Forecast {
        /// Study file (TOML with domain = "forecast").
        study: Option<PathBuf>,
        /// Add a series: FORMAT:PATH[#COLUMN,...] with FORMAT csv, gaia or azure2019, or synthetic:KIND
        /// (diurnal, bursty, intermittent, flat); redset:PATH[#mbytes_scanned] counts (or sums) Redset queries per hour;
        /// opendc:DIR[#per-task] is the hourly CPU usage of an OpenDC workload (SURF, Bitbrains). csv and redset files
        /// may be Parquet. Repeatable.
        #[arg(long = "series", value_name = "SPEC")]
        series: Vec<String>,
        /// Models to evaluate instead of the study's, comma-separated (e.g. naive,snaive24,mstl(24,168),theta24;
        /// commas inside parentheses belong to the model).
        #[arg(long)]
        models: Option<String>,
        /// Forecast origins per series (default 30).
        #[arg(long)]
        origins: Option<usize>,
        /// Steps forecast at each origin (default 24).
        #[arg(long)]
        horizon: Option<usize>,
        /// History values given to each fit (default 672: four weeks of hours).
        #[arg(long)]
        window: Option<usize>,
        /// Steps between origins (default: the horizon).
        #[arg(long)]
        stride: Option<usize>,
        /// Season that scales MASE (default 24).
        #[arg(long)]
        season: Option<usize>,
        /// Quantile at which capacity is provisioned for the scaling metrics (default 0.9).
        #[arg(long)]
        quantile: Option<f64>,
        /// Override a study key, e.g. --set settings.origins=10 (value in TOML syntax).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output directory (default: results/forecast/<study>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print only errors.
        #[arg(long)]
        quiet: bool,
    },
    /// The loopback key-value service: replicas of Rabia or Racos over TCP, and a benchmark against them.
    Kv {
        #[command(subcommand)]
        command: kv::KvCommand,
    },
}

/// The width tables are fitted to: `COLUMNS` when set, else the terminal's
/// when standard output is one, else none (a file or pipe gets every
/// column at full width).
pub(crate) fn terminal_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()) {
        return (columns > 0).then_some(columns.max(40));
    }
    console::Term::stdout().size_checked().map(|(_, columns)| usize::from(columns).max(40))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { scenario, seeds, out, set, jobs, max_memory, max_events, quiet, shard }
            if commands::is_forecast_study(&scenario) =>
        {
            if seeds.is_some() || jobs.is_some() || max_memory.is_some() || max_events.is_some() || shard.is_some() {
                eprintln!(
                    "warning: --seeds, --jobs, --max-memory, --max-events and --shard do not apply to a forecast study"
                );
            }
            forecast_request(Some(scenario), Vec::new(), None, &[], &set, out, quiet).and_then(forecast::run)
        }
        Command::Run { scenario, seeds, out, set, jobs, max_memory, max_events, quiet, shard } => {
            let mut limits = nimbus_lab::Limits::for_this_machine();
            limits.memory_bytes = max_memory.unwrap_or(limits.memory_bytes);
            limits.events_per_run = max_events.unwrap_or(limits.events_per_run);
            commands::run(commands::RunRequest {
                path: &scenario,
                seeds,
                out,
                set: &set,
                jobs,
                limits: &limits,
                quiet,
                shard,
            })
        }
        Command::Merge { shards, out, quiet } => commands::merge(&shards, out, quiet),
        Command::List { domain } => commands::list(domain.as_deref()),
        Command::Show { what } => commands::show(&what),
        Command::Trace { format, path } => commands::trace(&format, &path),
        Command::Bench { what, quick } => bench::run(&what, quick),
        Command::ExportAzure2019 { apps, days, seed, cold_start_ms, out } => {
            commands::export_azure2019(apps, days, seed, cold_start_ms, &out)
        }
        Command::Kv { command } => kv::run(command),
        Command::Chain(args) => chain::run(&args),
        Command::Forecast {
            study,
            series,
            models,
            origins,
            horizon,
            window,
            stride,
            season,
            quantile,
            set,
            out,
            quiet,
        } => {
            let settings = [
                ("origins", origins.map(|v| v.to_string())),
                ("horizon", horizon.map(|v| v.to_string())),
                ("window", window.map(|v| v.to_string())),
                ("stride", stride.map(|v| v.to_string())),
                ("season", season.map(|v| v.to_string())),
                ("capacity_quantile", quantile.map(|v| if v.is_finite() { format!("{v:?}") } else { "nan".into() })),
            ];
            forecast_request(study, series, models, &settings, &set, out, quiet).and_then(forecast::run)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Splits `a,b(1,2),c` at the commas outside parentheses.
fn split_top_level(list: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0usize;
    for c in list.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(item) = items.last_mut() {
            item.push(c);
        }
    }
    items.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Builds a forecast request from the command line (flags become
/// `settings.*` overrides, so they are range-checked like the file's).
fn forecast_request(
    study: Option<PathBuf>,
    series: Vec<String>,
    models: Option<String>,
    settings: &[(&str, Option<String>)],
    set: &[String],
    out: Option<PathBuf>,
    quiet: bool,
) -> Result<forecast::Request, String> {
    let models = models.map(|list| split_top_level(&list));
    let mut overrides = nimbus_lab::forecast_study::StudyOverrides { set: Vec::new(), models, series };
    for item in set {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("--set {item:?}: expected KEY=VALUE, e.g. settings.origins=10"))?;
        overrides.set.push((k.trim().to_string(), v.trim().to_string()));
    }
    for (key, value) in settings {
        if let Some(v) = value {
            let flag = if *key == "capacity_quantile" { "quantile".to_string() } else { key.to_string() };
            let bad = match *key {
                "capacity_quantile" => !v.parse::<f64>().is_ok_and(|q| q > 0.0 && q < 1.0),
                _ => v == "0",
            };
            if bad {
                let expected = if *key == "capacity_quantile" { "a number between 0 and 1" } else { "at least 1" };
                return Err(format!("--{flag} {v}: expected {expected}"));
            }
            overrides.set.push((format!("settings.{key}"), v.clone()));
        }
    }
    Ok(forecast::Request { study, overrides, out, quiet })
}

/// An event count for a flag: a whole number, written plainly or as `1e9`.
fn events(text: &str) -> Result<u64, String> {
    let v: f64 = text.trim().parse().map_err(|_| format!("expected a number of events, found {text:?}"))?;
    if !(v >= 1.0 && v.fract() == 0.0) {
        return Err(format!("expected a whole number of events of at least 1, found {text:?}"));
    }
    nimbus_sim::params::round_to_u64(v).ok_or_else(|| format!("{text} events is more than can be counted"))
}

/// A progress bar that appears only when a run lasts longer than a second
/// and stderr is a terminal.
pub struct DelayedProgress {
    bar: indicatif::ProgressBar,
    #[allow(clippy::disallowed_methods)] // wall-clock delay before showing a progress bar
    started: std::time::Instant,
    shown: Mutex<bool>,
}

impl DelayedProgress {
    /// A hidden bar of `len` steps.
    pub fn new(len: u64) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::hidden());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}%  {msg}  [{elapsed_precise}, eta {eta}]")
        {
            bar.set_style(style);
        }
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        DelayedProgress { bar, started, shown: Mutex::new(false) }
    }

    /// Sets the position and message, showing the bar after a second.
    pub fn update(&self, position: u64, message: String) {
        if let Ok(mut shown) = self.shown.lock()
            && !*shown
            && self.started.elapsed().as_secs_f64() > 1.0
        {
            self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            *shown = true;
        }
        self.bar.set_position(position);
        self.bar.set_message(message);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
