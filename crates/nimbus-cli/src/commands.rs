//! The `run`, `list`, `show` and `trace` commands.

use std::path::{Path, PathBuf};

use nimbus_lab::domain::REGISTRY;
use nimbus_lab::matrix::Progress;
use nimbus_lab::scenario::Overrides;
use nimbus_lab::stats::Summary;
use nimbus_lab::{LabResult, Limits, Scenario, Shard, Sweep, run_selected};
use nimbus_report::format::mean_ci;
use nimbus_report::shards::{ShardFile, read_shard, write_shard};
use nimbus_report::{
    Manifest, SweepPoint, claims_table, comparison_table, render_fitted, write_results, write_sweep_summary,
};

use crate::{DelayedProgress, commit_of};

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
    let per_point = sweep.runs_per_point();
    let selected = |point: usize| move |i: usize| req.shard.is_none_or(|s| s.takes(point * per_point + i));
    let commit = commit_of(req.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")));
    let dir = req.out.unwrap_or_else(|| default_dir(&sweep));
    let bar = DelayedProgress::new(1000);
    let mut records: Vec<(usize, usize, nimbus_lab::RunRecord)> = Vec::new();
    let mut fallbacks = Vec::new();
    let mut outcome = Outcome::default();
    let points = sweep.points.len();
    for k in 0..points {
        let point = PointScenario::of(&sweep, k)?;
        let scenario = point.get();
        let on_progress = |p: Progress| {
            if !quiet {
                let fraction = (k as f64 + p.fraction) / points as f64;
                let what = if points > 1 { format!("point {}/{points}: ", k + 1) } else { String::new() };
                bar.update((fraction * 1000.0) as u64, format!("{what}{}/{} runs", p.finished, p.total));
            }
        };
        let runs = run_selected(scenario, &selected(k), jobs, req.limits, &on_progress).map_err(|e| e.to_string())?;
        if req.shard.is_some() {
            let indices: Vec<usize> = (0..per_point).filter(|&i| selected(k)(i)).collect();
            records.extend(indices.into_iter().zip(runs).map(|(i, r)| (k * per_point + i, k, r)));
            fallbacks.push(scenario.prepared.fallbacks());
        } else {
            finish_point(&sweep, k, scenario, runs, scenario.prepared.fallbacks(), &commit, &dir, &mut outcome)?;
        }
    }
    bar.finish();
    if let Some(shard) = req.shard {
        let file = ShardFile {
            scenario_path: req.path.display().to_string(),
            scenario_text: sweep.text.clone(),
            set: overrides.set.clone(),
            seeds: overrides.seeds.clone(),
            hash: sweep.hash,
            commit,
            version: env!("CARGO_PKG_VERSION").to_string(),
            shard,
            total_runs: sweep.total_runs(),
            fallbacks,
            runs: records,
        };
        let written = write_shard(&dir, &file).map_err(|e| e.to_string())?;
        if !quiet {
            outln!(
                "shard {} of {}: {} of {} runs in {}",
                shard.index,
                shard.count,
                file.runs.len(),
                file.total_runs,
                written.display()
            );
        }
        return Ok(());
    }
    finish(&sweep, outcome, &dir, quiet)
}

/// Point `k`'s scenario: the sweep's first, or one prepared for the
/// point and dropped after it.
enum PointScenario<'a> {
    First(&'a Scenario),
    Loaded(Box<Scenario>),
}

impl<'a> PointScenario<'a> {
    fn of(sweep: &'a Sweep, k: usize) -> Result<Self, String> {
        if k == 0 {
            Ok(PointScenario::First(&sweep.first))
        } else {
            sweep.scenario(k).map(|s| PointScenario::Loaded(Box::new(s))).map_err(|e| e.to_string())
        }
    }

    fn get(&self) -> &Scenario {
        match self {
            PointScenario::First(s) => s,
            PointScenario::Loaded(s) => s,
        }
    }
}

/// `results/<scenario>/<hash>`.
fn default_dir(sweep: &Sweep) -> PathBuf {
    let hash = if sweep.is_sweep() { sweep.hash } else { sweep.first.content_hash };
    PathBuf::from("results").join(&sweep.first.name).join(format!("{hash:016x}"))
}

/// What a sweep keeps of a point: its settings, its directory's name and
/// `(policy, metric, summary)` of every metric.
type PointSummaries = (Vec<(String, String)>, String, Vec<(String, String, Summary)>);

/// What is kept of a run's points once their files are written: a plain
/// run's whole result (for the terminal), a sweep's summaries.
#[derive(Default)]
struct Outcome {
    single: Option<LabResult>,
    points: Vec<PointSummaries>,
}

/// Checks point `k`'s claims on `runs`, writes its result files (into
/// `dir`, or `dir/point-<k>` in a sweep) and keeps what [`finish`] needs.
#[allow(clippy::too_many_arguments)]
fn finish_point(
    sweep: &Sweep,
    k: usize,
    scenario: &Scenario,
    runs: Vec<nimbus_lab::RunRecord>,
    fallbacks: Vec<String>,
    commit: &str,
    dir: &Path,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let result = nimbus_lab::assemble(scenario, runs, fallbacks);
    let manifest = Manifest {
        scenario: scenario.name.clone(),
        scenario_path: scenario.path.display().to_string(),
        domain: scenario.domain.name().to_string(),
        description: scenario.description.clone(),
        scenario_hash: scenario.content_hash,
        seeds: scenario.seeds.clone(),
        policies: scenario.policies.iter().map(|p| (p.label.clone(), p.name.clone())).collect(),
        metrics: scenario.metrics.clone(),
        commit: commit.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if !sweep.is_sweep() {
        write_results(dir, &manifest, &result).map_err(|e| e.to_string())?;
        outcome.single = Some(result);
        return Ok(());
    }
    let name = format!("point-{k}");
    write_results(&dir.join(&name), &manifest, &result).map_err(|e| e.to_string())?;
    let mut summaries = Vec::new();
    for p in &scenario.policies {
        for m in result.metric_names() {
            let s = result.summary(&p.label, &m);
            summaries.push((p.label.clone(), m, s));
        }
    }
    outcome.points.push((sweep.points[k].clone(), name, summaries));
    Ok(())
}

/// Writes a sweep's summary and prints the run's or the sweep's tables.
fn finish(sweep: &Sweep, outcome: Outcome, dir: &Path, quiet: bool) -> Result<(), String> {
    let first = &sweep.first;
    let labels: Vec<String> = first.policies.iter().map(|p| p.label.clone()).collect();
    if sweep.is_sweep() {
        let points: Vec<SweepPoint<'_>> = outcome
            .points
            .iter()
            .map(|(settings, name, summaries)| SweepPoint { settings, dir: name.clone(), summaries })
            .collect();
        write_sweep_summary(dir, &sweep.keys, &points).map_err(|e| e.to_string())?;
    }
    if quiet {
        return Ok(());
    }
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
            for label in &labels {
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
        return Ok(());
    }
    let Some(result) = &outcome.single else { return Ok(()) };
    outln!("\n{} ({} runs; mean ± 95% CI across seeds)\n", first.name, sweep.runs_per_point());
    out!("{}", comparison_table(result, &labels, &first.metrics, width));
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
    Ok(())
}

/// `nimbus merge`: shard files of one sweep into its result files, equal
/// to an unsharded run's.
pub fn merge(inputs: &[PathBuf], out: Option<PathBuf>, quiet: bool) -> Result<(), String> {
    if inputs.is_empty() {
        return Err("nimbus merge: name the shard files or directories".into());
    }
    let shards = inputs.iter().map(|p| read_shard(p)).collect::<Result<Vec<_>, _>>()?;
    let first = &shards[0];
    let name = |i: usize| inputs[i].display().to_string();
    for (i, s) in shards.iter().enumerate().skip(1) {
        if s.hash != first.hash || s.scenario_text != first.scenario_text {
            return Err(format!(
                "{} and {} are shards of different scenarios or settings ({:016x} vs {:016x}); merge shards of one run",
                name(0),
                name(i),
                first.hash,
                s.hash
            ));
        }
        if s.commit != first.commit || s.version != first.version {
            return Err(format!(
                "{} and {} come from different builds (commit {} vs {}); rerun the shards on one commit",
                name(0),
                name(i),
                first.commit,
                s.commit
            ));
        }
        if s.shard.count != first.shard.count || s.total_runs != first.total_runs {
            return Err(format!(
                "{} is shard {} of {}, {} of {}",
                name(0),
                first.shard.index,
                first.shard.count,
                name(i),
                s.shard.count
            ));
        }
        if s.fallbacks != first.fallbacks {
            return Err(format!("{} and {} ran on different data (their fallbacks differ)", name(0), name(i)));
        }
    }
    // Every shard once; the count is at most the inputs, or one is missing.
    let count = first.shard.count;
    if count > shards.len() {
        let given: Vec<usize> = shards.iter().map(|s| s.shard.index).collect();
        let missing = (0..count).find(|i| !given.contains(i)).unwrap_or(0);
        return Err(format!("shard {missing} of {count} is missing; merge needs every shard"));
    }
    let mut seen = vec![None; count];
    for (i, s) in shards.iter().enumerate() {
        if let Some(j) = seen[s.shard.index].replace(i) {
            return Err(format!("shard {} of {count} is given twice: {} and {}", s.shard.index, name(j), name(i)));
        }
    }
    let overrides = Overrides { seeds: first.seeds.clone(), set: first.set.clone() };
    let path = PathBuf::from(&first.scenario_path);
    let sweep = Sweep::from_text(&path, &first.scenario_text, &overrides).map_err(|e| e.to_string())?;
    if sweep.hash != first.hash || sweep.total_runs() != first.total_runs {
        return Err(format!(
            "the shards' scenario hashes to {:016x} with {} runs here, not {:016x} with {}; merge with the build that ran them",
            sweep.hash,
            sweep.total_runs(),
            first.hash,
            first.total_runs
        ));
    }
    let mut by_index: Vec<Option<(usize, nimbus_lab::RunRecord)>> = vec![None; first.total_runs];
    for s in &shards {
        for (global, point, record) in &s.runs {
            let slot = by_index
                .get_mut(*global)
                .ok_or_else(|| format!("run {global} lies outside the sweep's {} runs", first.total_runs))?;
            if slot.is_some() {
                return Err(format!("run {global} is in two shards"));
            }
            *slot = Some((*point, record.clone()));
        }
    }
    let per_point = sweep.runs_per_point();
    let dir = out.unwrap_or_else(|| default_dir(&sweep));
    let mut outcome = Outcome::default();
    for k in 0..sweep.points.len() {
        let point = PointScenario::of(&sweep, k)?;
        let scenario = point.get();
        let expected = nimbus_lab::matrix::pairs(scenario);
        let mut runs = Vec::with_capacity(per_point);
        for (i, (policy, seed)) in expected.iter().enumerate() {
            let global = k * per_point + i;
            let Some((p, record)) = by_index[global].take() else {
                return Err(format!("run {global} (point {k}) is in no shard"));
            };
            let label = &scenario.policies[*policy].label;
            if p != k || &record.policy != label || record.seed != *seed {
                return Err(format!(
                    "run {global} holds {} seed {} at point {p}; the scenario expects {label} seed {seed} at point {k}",
                    record.policy, record.seed
                ));
            }
            runs.push(record);
        }
        let fallbacks = first.fallbacks.get(k).cloned().unwrap_or_default();
        finish_point(&sweep, k, scenario, runs, fallbacks, &first.commit, &dir, &mut outcome)?;
    }
    finish(&sweep, outcome, &dir, quiet)
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
