//! The `run`, `list`, `show` and `trace` commands.

use std::path::{Path, PathBuf};

use nimbus_lab::domain::REGISTRY;
use nimbus_lab::scenario::Overrides;
use nimbus_lab::{Limits, Scenario, Shard, Sweep};
use nimbus_report::format::mean_ci;
use nimbus_report::pipeline::{self, Finished, Outcome, RunPlan};
use nimbus_report::{claims_table, comparison_table, render_fitted};

use crate::DelayedProgress;

/// `--jobs` beyond this many threads per core only adds memory and
/// contention (runs are CPU-bound).
const MAX_JOBS_PER_CORE: usize = 4;

/// What `nimbus run` was asked.
pub struct RunRequest<'a> {
    /// The scenario file.
    pub path: &'a Path,
    /// `--seeds`.
    pub seeds: Option<Vec<u64>>,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--set` items.
    pub set: &'a [String],
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// `--max-memory`, `--max-events`.
    pub limits: &'a Limits,
    /// `--quiet`.
    pub quiet: bool,
    /// `--shard i/n`.
    pub shard: Option<Shard>,
}

/// `--set KEY=VALUE` items as overrides.
fn parse_overrides(seeds: Option<Vec<u64>>, set: &[String]) -> Result<Overrides, String> {
    let mut overrides = Overrides { seeds, set: Vec::new() };
    for item in set {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("--set {item:?}: expected KEY=VALUE, e.g. workload.jobs_per_hour=3"))?;
        overrides.set.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(overrides)
}

/// `nimbus run`: one scenario, every point of a `[sweep]`, or one shard of
/// either.
pub fn run(req: RunRequest<'_>) -> Result<(), String> {
    let quiet = req.quiet;
    let overrides = parse_overrides(req.seeds.clone(), req.set)?;
    let jobs = match req.jobs {
        None => None,
        Some(0) => return Err("--jobs 0: at least one worker thread is needed".into()),
        Some(n) => {
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
            let cap = MAX_JOBS_PER_CORE * cores;
            if n > cap && !quiet {
                eprintln!("warning: --jobs {n}: capped at {cap} ({MAX_JOBS_PER_CORE} per core on {cores} cores)");
            }
            Some(n.min(cap))
        }
    };
    let sweep = Sweep::load(req.path, &overrides).map_err(|e| e.to_string())?;
    let first = &sweep.first;
    if !quiet {
        let points = if sweep.is_sweep() { format!(" at {} sweep points", sweep.points.len()) } else { String::new() };
        let shard = req.shard.map_or(String::new(), |s| format!(" (shard {} of {})", s.index, s.count));
        eprintln!(
            "{}: {} polic{} × {} seed{}{points} on domain `{}`{shard}",
            first.name,
            first.policies.len(),
            if first.policies.len() == 1 { "y" } else { "ies" },
            first.seeds.len(),
            if first.seeds.len() == 1 { "" } else { "s" },
            first.domain.name()
        );
        for f in first.prepared.fallbacks() {
            eprintln!("warning: {f}");
        }
    }
    let dir = req.out.unwrap_or_else(|| pipeline::default_dir(&sweep));
    let bar = DelayedProgress::new(1000);
    let on_progress = |fraction: f64, message: String| {
        if !quiet {
            bar.update((fraction * 1000.0) as u64, message);
        }
    };
    let plan = RunPlan {
        path: req.path,
        overrides: &overrides,
        sweep,
        jobs,
        limits: req.limits,
        shard: req.shard,
        out: Some(dir),
        commit: pipeline::commit_of_scenario(req.path),
        external: Vec::new(),
        keep_results: false,
    };
    let finished = pipeline::run(plan, &on_progress);
    bar.finish();
    match finished? {
        Finished::Shard(shard) => {
            if !quiet {
                let file = &shard.file;
                outln!(
                    "shard {} of {}: {} of {} runs in {}",
                    file.shard.index,
                    file.shard.count,
                    file.runs.len(),
                    file.total_runs,
                    shard.path.as_deref().map(Path::display).map_or(String::new(), |p| p.to_string())
                );
            }
            Ok(())
        }
        Finished::Results(outcome) => {
            if !quiet {
                print_outcome(&outcome);
            }
            Ok(())
        }
    }
}

/// Prints a run's or a sweep's tables.
fn print_outcome(outcome: &Outcome) {
    let sweep = &outcome.sweep;
    let first = &sweep.first;
    let labels = &outcome.labels;
    let dir = outcome.dir.as_deref().unwrap_or(Path::new("."));
    let width = crate::terminal_width();
    if sweep.is_sweep() {
        // One row per point and policy: the settings and the chosen metrics' means.
        let mut metrics: Vec<String> = first.metrics.clone();
        if metrics.is_empty() {
            let mut seen = Vec::new();
            for (_, _, summaries) in &outcome.points {
                for (_, m, _) in summaries {
                    if !seen.contains(m) {
                        seen.push(m.clone());
                    }
                }
            }
            metrics = seen.into_iter().take(4).collect();
        }
        let mut header: Vec<String> = sweep.keys.clone();
        header.push("policy".into());
        header.extend(metrics.iter().cloned());
        let mut rows = Vec::new();
        for (settings, _, summaries) in &outcome.points {
            for label in labels {
                let mut row: Vec<String> = settings.iter().map(|(_, v)| v.clone()).collect();
                row.push(label.clone());
                row.extend(metrics.iter().map(|m| {
                    summaries
                        .iter()
                        .find(|(l, name, _)| l == label && name == m)
                        .map_or("–".to_string(), |(_, _, s)| mean_ci(s.mean, s.ci95))
                }));
                rows.push(row);
            }
        }
        outln!(
            "\n{} sweep ({} points × {} runs; mean ± 95% CI across seeds)\n",
            first.name,
            sweep.points.len(),
            sweep.runs_per_point()
        );
        out!("{}", render_fitted(&header, &rows, width));
        print_notes_and_results(&[], dir);
        return;
    }
    let Some(result) = outcome.results.first() else { return };
    outln!("\n{} ({} runs; mean ± 95% CI across seeds)\n", first.name, sweep.runs_per_point());
    out!("{}", comparison_table(result, labels, &first.metrics, width));
    let claims = claims_table(result, width);
    if !claims.is_empty() {
        outln!("\nClaims\n");
        out!("{claims}");
    }
    let mut notes: Vec<String> = Vec::new();
    for run in &result.runs {
        for n in &run.output.notes {
            let line = format!("{} seed {}: {n}", run.policy, run.seed);
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
    }
    print_notes_and_results(&notes, dir);
}

/// `nimbus merge`: shard files of one sweep into its result files, equal
/// to an unsharded run's.
pub fn merge(inputs: &[PathBuf], out: Option<PathBuf>, quiet: bool) -> Result<(), String> {
    let outcome = pipeline::merge(inputs, out)?;
    if !quiet {
        print_outcome(&outcome);
    }
    Ok(())
}

/// The closing lines of a run's report: its notes, then where the result
/// files are.
pub fn print_notes_and_results(notes: &[String], dir: &Path) {
    if !notes.is_empty() {
        outln!("\nNotes");
        for n in notes {
            outln!("- {n}");
        }
    }
    outln!("\nResults: {}", dir.display());
}

/// `nimbus list`.
pub fn list(only: Option<&str>) -> Result<(), String> {
    if let Some(name) = only
        && nimbus_lab::domain::find(name).is_none()
        && name != "forecast"
    {
        return Err(format!(
            "unknown domain {name:?}; available: {}, forecast",
            nimbus_lab::domain::names().join(", ")
        ));
    }
    for domain in REGISTRY.iter().filter(|d| only.is_none_or(|n| d.name() == n)) {
        outln!("domain {} — {}\n", domain.name(), domain.summary());
        let policies = domain.policies();
        let header: Vec<String> = ["policy", "kind", "fidelity", "source"].iter().map(|s| s.to_string()).collect();
        let rows: Vec<Vec<String>> = policies
            .iter()
            .map(|p| vec![p.name.to_string(), p.kind.to_string(), p.fidelity.to_string(), p.source.to_string()])
            .collect();
        out!("{}", nimbus_report::terminal::render(&header, &rows));
        outln!();
    }
    if only.is_none_or(|n| n == "forecast") {
        outln!("forecast — forecasting models for `nimbus forecast` studies and the policies that forecast\n");
        let header: Vec<String> = ["model", "what"].iter().map(|s| s.to_string()).collect();
        let rows: Vec<Vec<String>> = nimbus_forecast::models::AVAILABLE
            .iter()
            .map(|(name, what)| vec![name.to_string(), what.to_string()])
            .collect();
        out!("{}", nimbus_report::terminal::render(&header, &rows));
        outln!();
    }
    let scenarios: Vec<PathBuf> = find_scenarios(Path::new("scenarios"))
        .into_iter()
        .filter(|s| only.is_none_or(|n| domain_of(s) == Some(n.to_string())))
        .collect();
    if !scenarios.is_empty() {
        outln!("scenarios");
        for s in scenarios {
            outln!("  {}", s.display());
        }
    }
    Ok(())
}

/// Whether `path` is a forecast study (`domain = "forecast"`).
pub fn is_forecast_study(path: &Path) -> bool {
    domain_of(path).as_deref() == Some("forecast")
}

/// The `domain = "..."` of a scenario file, read without preparing it.
fn domain_of(path: &Path) -> Option<String> {
    let text = nimbus_lab::scenario::read_scenario_text(path).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "domain").then(|| value.trim().trim_matches('"').to_string())
    })
}

fn find_scenarios(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            found.extend(find_scenarios(&p));
        } else if p.extension().is_some_and(|e| e == "toml") {
            found.push(p);
        }
    }
    found
}

/// `nimbus show`.
pub fn show(what: &str) -> Result<(), String> {
    let path = Path::new(what);
    if path.exists() {
        let scenario = Scenario::load(path, &Overrides::default()).map_err(|e| e.to_string())?;
        outln!("scenario    {}", scenario.name);
        outln!("file        {}", scenario.path.display());
        outln!("domain      {}", scenario.domain.name());
        if !scenario.description.is_empty() {
            outln!("about       {}", scenario.description);
        }
        outln!("seeds       {:?}", scenario.seeds);
        for p in &scenario.policies {
            let params: Vec<&str> = p.params.keys().collect();
            if params.is_empty() {
                outln!("policy      {} ({})", p.label, p.name);
            } else {
                outln!("policy      {} ({}; sets {})", p.label, p.name, params.join(", "));
            }
        }
        for c in &scenario.claims {
            outln!(
                "claim       {}: {} of {}{}",
                c.source,
                c.metric,
                c.subject,
                c.baseline.as_ref().map(|b| format!(" vs {b}")).unwrap_or_default()
            );
        }
        for f in scenario.prepared.fallbacks() {
            outln!("data        {f}");
        }
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let unlimited = Limits { memory_bytes: u64::MAX, events_per_run: u64::MAX };
        let budget = nimbus_lab::budget::check(&scenario, workers, &unlimited).map_err(|e| e.to_string())?;
        outln!(
            "needs       about {} of memory ({} run{} at once), at most {:.2e} events per run",
            nimbus_sim::estimate::bytes(budget.memory_bytes),
            budget.concurrent,
            if budget.concurrent == 1 { "" } else { "s" },
            budget.events_max as f64
        );
        return Ok(());
    }
    for domain in REGISTRY {
        if let Some(p) = domain.policies().into_iter().find(|p| p.name == what) {
            outln!("policy      {} (domain {})", p.name, domain.name());
            outln!("kind        {}", p.kind);
            outln!("fidelity    {}", p.fidelity);
            outln!("source      {}", p.source);
            outln!("what        {}", p.summary);
            outln!("parameters  {}", if p.params.is_empty() { "none".to_string() } else { p.params.join(", ") });
            return Ok(());
        }
    }
    Err(format!("{what:?} is neither a scenario file nor a policy name (see `nimbus list`)"))
}

/// `nimbus trace`.
pub fn trace(format: &str, path: &Path) -> Result<(), String> {
    use nimbus_trace::formats::{FORMATS, check};
    let count = check(format, nimbus_trace::Source::file(path))
        .ok_or_else(|| format!("unknown trace format {format:?}; available: {}", FORMATS.join(", ")))?
        .map_err(|e| e.to_string())?;
    outln!("{}: {count} records, all valid ({format})", path.display());
    Ok(())
}

/// `nimbus export-azure2019`: the synthetic serverless workload as Azure
/// Functions 2019 day files.
pub fn export_azure2019(apps: u32, days: u32, seed: u64, cold_start_ms: f64, out: &Path) -> Result<(), String> {
    use nimbus_faas::applevel;
    use nimbus_trace::faas::{write_azure2019_durations, write_azure2019_invocations, write_azure2019_memory};
    if !(cold_start_ms.is_finite() && cold_start_ms > 0.0) {
        return Err(format!("--cold-start-ms {cold_start_ms}: expected a positive number of milliseconds"));
    }
    let (specs, triggers) = applevel::synthetic_specs(apps as usize, cold_start_ms, seed);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |name: String, body: &dyn Fn(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>| {
        let path = out.join(name);
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut writer = std::io::BufWriter::new(file);
        body(&mut writer)
            .and_then(|()| std::io::Write::flush(&mut writer))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut total = 0u64;
    applevel::azure2019_days(&specs, &triggers, days * 1440, seed, |d, invocations, durations, memory| {
        let day = d + 1;
        total += invocations.iter().flat_map(|r| &r.per_minute).map(|&c| u64::from(c)).sum::<u64>();
        write(format!("invocations_per_function_md.anon.d{day:02}.csv"), &|w| {
            write_azure2019_invocations(w, invocations)
        })?;
        write(format!("function_durations_percentiles.anon.d{day:02}.csv"), &|w| {
            write_azure2019_durations(w, durations)
        })?;
        write(format!("app_memory_percentiles.anon.d{day:02}.csv"), &|w| write_azure2019_memory(w, memory))
    })?;
    outln!("{apps} apps x {days} days ({total} invocations, seed {seed}) written to {}", out.display());
    Ok(())
}
