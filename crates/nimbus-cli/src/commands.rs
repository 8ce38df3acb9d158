//! The `run`, `list`, `show` and `trace` commands.

use std::path::{Path, PathBuf};

use nimbus_lab::domain::REGISTRY;
use nimbus_lab::matrix::Progress;
use nimbus_lab::scenario::Overrides;
use nimbus_lab::{Limits, Scenario, run_scenario_within};
use nimbus_report::{Manifest, claims_table, comparison_table, write_results};

use crate::{DelayedProgress, commit_of};

/// `--jobs` beyond this many threads per core only adds memory and
/// contention (runs are CPU-bound).
const MAX_JOBS_PER_CORE: usize = 4;

/// `nimbus run`.
pub fn run(
    path: &Path,
    seeds: Option<Vec<u64>>,
    out: Option<PathBuf>,
    set: &[String],
    jobs: Option<usize>,
    limits: &Limits,
    quiet: bool,
) -> Result<(), String> {
    let mut overrides = Overrides { seeds, set: Vec::new() };
    for item in set {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("--set {item:?}: expected KEY=VALUE, e.g. workload.jobs_per_hour=3"))?;
        overrides.set.push((k.trim().to_string(), v.trim().to_string()));
    }
    let jobs = match jobs {
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
    let scenario = Scenario::load(path, &overrides).map_err(|e| e.to_string())?;
    let total = scenario.policies.len() * scenario.seeds.len();
    if !quiet {
        eprintln!(
            "{}: {} polic{} × {} seed{} on domain `{}`",
            scenario.name,
            scenario.policies.len(),
            if scenario.policies.len() == 1 { "y" } else { "ies" },
            scenario.seeds.len(),
            if scenario.seeds.len() == 1 { "" } else { "s" },
            scenario.domain.name()
        );
        for f in scenario.prepared.fallbacks() {
            eprintln!("warning: {f}");
        }
    }
    let bar = DelayedProgress::new(1000);
    let on_progress = |p: Progress| {
        if !quiet {
            bar.update((p.fraction * 1000.0) as u64, format!("{}/{} runs", p.finished, p.total));
        }
    };
    let result = run_scenario_within(&scenario, jobs, limits, &on_progress).map_err(|e| e.to_string())?;
    bar.finish();

    let labels: Vec<String> = scenario.policies.iter().map(|p| p.label.clone()).collect();
    let dir = out.unwrap_or_else(|| {
        PathBuf::from("results").join(&scenario.name).join(format!("{:016x}", scenario.content_hash))
    });
    let manifest = Manifest {
        scenario: scenario.name.clone(),
        scenario_path: scenario.path.display().to_string(),
        domain: scenario.domain.name().to_string(),
        description: scenario.description.clone(),
        scenario_hash: scenario.content_hash,
        seeds: scenario.seeds.clone(),
        policies: scenario.policies.iter().map(|p| (p.label.clone(), p.name.clone())).collect(),
        metrics: scenario.metrics.clone(),
        commit: commit_of(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    write_results(&dir, &manifest, &result).map_err(|e| e.to_string())?;
    if !quiet {
        outln!("\n{} ({} runs; mean ± 95% CI across seeds)\n", scenario.name, total);
        let width = crate::terminal_width();
        out!("{}", comparison_table(&result, &labels, &scenario.metrics, width));
        let claims = claims_table(&result, width);
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
        print_notes_and_results(&notes, &dir);
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
