//! A scenario from file to results: every point of a `[sweep]` (or one
//! shard of them) run, claims checked, result files written; and shards
//! merged back into the files an unsharded run writes. The CLI's `run` and
//! `merge` and the Python package both go through here, so a sweep run
//! from a notebook, on Ray or by the CLI gives the same bytes.

use std::path::{Path, PathBuf};

use nimbus_lab::scenario::Overrides;
use nimbus_lab::stats::Summary;
use nimbus_lab::{LabResult, Limits, PolicySpec, RunRecord, Scenario, Shard, Sweep, run_selected};

use crate::files::{Manifest, SweepPoint, write_results, write_sweep_summary};
use crate::shards::{ShardFile, read_shard, write_shard};

/// What to run.
pub struct RunPlan<'a> {
    /// The scenario file.
    pub path: &'a Path,
    /// `--seeds` and `--set`.
    pub overrides: &'a Overrides,
    /// The scenario loaded from `path` with `overrides`.
    pub sweep: Sweep,
    /// Worker threads (rayon's default when `None`).
    pub jobs: Option<usize>,
    /// Memory and event limits.
    pub limits: &'a Limits,
    /// Only this shard of the runs.
    pub shard: Option<Shard>,
    /// Where the result (or shard) files go; `None`: nowhere, the results
    /// stay in memory.
    pub out: Option<PathBuf>,
    /// The project commit recorded in manifests and shard files.
    pub commit: String,
    /// Policies built by the caller, compared beside the scenario's own at
    /// every point (not in shards: their runs could not be merged from the
    /// scenario file alone).
    pub external: Vec<PolicySpec>,
    /// Keep every point's whole result (not only its summaries).
    pub keep_results: bool,
}

/// What a sweep keeps of a point: its settings, its directory's name and
/// `(policy, metric, summary)` of every metric.
pub type PointSummaries = (Vec<(String, String)>, String, Vec<(String, String, Summary)>);

/// A finished run or merge.
pub struct Outcome {
    /// The sweep (a plain scenario is a sweep of one point).
    pub sweep: Sweep,
    /// Policy labels, in order (the scenario's, then the caller's).
    pub labels: Vec<String>,
    /// Every point's summaries (sweeps only).
    pub points: Vec<PointSummaries>,
    /// A plain run's result, or every point's with `keep_results`.
    pub results: Vec<LabResult>,
    /// Where the files went.
    pub dir: Option<PathBuf>,
}

/// A shard's runs, written or in memory.
pub struct ShardOutcome {
    /// The shard file's content.
    pub file: ShardFile,
    /// Where it was written.
    pub path: Option<PathBuf>,
}

/// What [`run`] produced.
pub enum Finished {
    /// Every run: results.
    Results(Box<Outcome>),
    /// One shard's runs.
    Shard(Box<ShardOutcome>),
}

/// Progress reports: the fraction of the whole plan and a short message.
pub type OnProgress<'a> = dyn Fn(f64, String) + Sync + 'a;

/// `results/<scenario>/<hash>`.
pub fn default_dir(sweep: &Sweep) -> PathBuf {
    let hash = if sweep.is_sweep() { sweep.hash } else { sweep.first.content_hash };
    PathBuf::from("results").join(&sweep.first.name).join(format!("{hash:016x}"))
}

/// The project commit of the checkout holding `dir`, for manifests
/// (`unknown` outside a git checkout).
pub fn commit_of(dir: &Path) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The commit of the checkout holding the scenario file.
pub fn commit_of_scenario(path: &Path) -> String {
    commit_of(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
}

/// Point `k`'s scenario, with the caller's policies added: the sweep's
/// first, or one prepared for the point and dropped after it.
enum PointScenario<'a> {
    First(&'a Scenario),
    Loaded(Box<Scenario>),
}

impl<'a> PointScenario<'a> {
    fn of(sweep: &'a Sweep, k: usize, external: &[PolicySpec]) -> Result<Self, String> {
        if k == 0 {
            Ok(PointScenario::First(&sweep.first))
        } else {
            let mut scenario = sweep.scenario(k).map_err(|e| e.to_string())?;
            scenario.policies.extend(external.iter().cloned());
            Ok(PointScenario::Loaded(Box::new(scenario)))
        }
    }

    fn get(&self) -> &Scenario {
        match self {
            PointScenario::First(s) => s,
            PointScenario::Loaded(s) => s,
        }
    }
}

/// Adds the caller's policies to the sweep's first point, refusing a label
/// that is taken or a policy for another domain.
fn add_external(sweep: &mut Sweep, external: &[PolicySpec]) -> Result<(), String> {
    let domain = sweep.first.domain.name();
    for spec in external {
        if sweep.first.policies.iter().any(|p| p.label == spec.label) {
            return Err(format!("policy label {:?} is taken in {}; choose another", spec.label, sweep.first.name));
        }
        if let Some(e) = &spec.external
            && e.domain() != domain
        {
            return Err(format!(
                "policy {:?} is a {} policy, but {} is a `{domain}` scenario",
                spec.label,
                e.domain(),
                sweep.first.name
            ));
        }
        sweep.first.policies.push(spec.clone());
    }
    Ok(())
}

/// Runs a scenario (every point of its sweep, or one shard of them).
pub fn run(plan: RunPlan<'_>, progress: &OnProgress<'_>) -> Result<Finished, String> {
    let mut sweep = plan.sweep;
    if plan.shard.is_some() && !plan.external.is_empty() {
        return Err("policies defined outside the scenario file cannot run in shards: name them in the scenario, or run without shards".into());
    }
    add_external(&mut sweep, &plan.external)?;
    let per_point = sweep.first.policies.len() * sweep.first.seeds.len();
    let selected = |point: usize| move |i: usize| plan.shard.is_none_or(|s| s.takes(point * per_point + i));
    let points = sweep.points.len();
    let mut collected = Collected::default();
    let mut records: Vec<(usize, usize, RunRecord)> = Vec::new();
    let mut fallbacks = Vec::new();
    for k in 0..points {
        let point = PointScenario::of(&sweep, k, &plan.external)?;
        let scenario = point.get();
        let on_progress = |p: nimbus_lab::matrix::Progress| {
            let fraction = (k as f64 + p.fraction) / points as f64;
            let what = if points > 1 { format!("point {}/{points}: ", k + 1) } else { String::new() };
            progress(fraction, format!("{what}{}/{} runs", p.finished, p.total));
        };
        let runs =
            run_selected(scenario, &selected(k), plan.jobs, plan.limits, &on_progress).map_err(|e| e.to_string())?;
        if plan.shard.is_some() {
            let indices: Vec<usize> = (0..per_point).filter(|&i| selected(k)(i)).collect();
            records.extend(indices.into_iter().zip(runs).map(|(i, r)| (k * per_point + i, k, r)));
            fallbacks.push(scenario.prepared.fallbacks());
        } else {
            let fallbacks = scenario.prepared.fallbacks();
            collected.point(
                &sweep,
                k,
                scenario,
                runs,
                fallbacks,
                &plan.commit,
                plan.out.as_deref(),
                plan.keep_results,
            )?;
        }
    }
    if let Some(shard) = plan.shard {
        let file = ShardFile {
            scenario_path: plan.path.display().to_string(),
            scenario_text: sweep.text.clone(),
            set: plan.overrides.set.clone(),
            seeds: plan.overrides.seeds.clone(),
            hash: sweep.hash,
            commit: plan.commit,
            version: env!("CARGO_PKG_VERSION").to_string(),
            shard,
            total_runs: sweep.total_runs(),
            fallbacks,
            runs: records,
        };
        let path = match &plan.out {
            Some(dir) => Some(write_shard(dir, &file).map_err(|e| e.to_string())?),
            None => None,
        };
        return Ok(Finished::Shard(Box::new(ShardOutcome { file, path })));
    }
    collected.finish(sweep, plan.out).map(|o| Finished::Results(Box::new(o)))
}

/// Results gathered point by point.
#[derive(Default)]
struct Collected {
    points: Vec<PointSummaries>,
    results: Vec<LabResult>,
}

impl Collected {
    /// Checks point `k`'s claims on `runs`, writes its result files (into
    /// `dir`, or `dir/point-<k>` in a sweep) and keeps its summaries.
    #[allow(clippy::too_many_arguments)]
    fn point(
        &mut self,
        sweep: &Sweep,
        k: usize,
        scenario: &Scenario,
        runs: Vec<RunRecord>,
        fallbacks: Vec<String>,
        commit: &str,
        dir: Option<&Path>,
        keep: bool,
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
            if let Some(dir) = dir {
                write_results(dir, &manifest, &result).map_err(|e| e.to_string())?;
            }
            self.results.push(result);
            return Ok(());
        }
        let name = format!("point-{k}");
        if let Some(dir) = dir {
            write_results(&dir.join(&name), &manifest, &result).map_err(|e| e.to_string())?;
        }
        let mut summaries = Vec::new();
        for p in &scenario.policies {
            for m in result.metric_names() {
                let s = result.summary(&p.label, &m);
                summaries.push((p.label.clone(), m, s));
            }
        }
        self.points.push((sweep.points[k].clone(), name, summaries));
        if keep {
            self.results.push(result);
        }
        Ok(())
    }

    /// Writes a sweep's summary files.
    fn finish(self, sweep: Sweep, dir: Option<PathBuf>) -> Result<Outcome, String> {
        if sweep.is_sweep()
            && let Some(dir) = &dir
        {
            let points: Vec<SweepPoint<'_>> = self
                .points
                .iter()
                .map(|(settings, name, summaries)| SweepPoint { settings, dir: name.clone(), summaries })
                .collect();
            write_sweep_summary(dir, &sweep.keys, &points).map_err(|e| e.to_string())?;
        }
        let labels = sweep.first.policies.iter().map(|p| p.label.clone()).collect();
        Ok(Outcome { sweep, labels, points: self.points, results: self.results, dir })
    }
}

/// Merges shard files of one sweep into its result files in `out` (the
/// default directory when `None`), equal to an unsharded run's.
pub fn merge(inputs: &[PathBuf], out: Option<PathBuf>) -> Result<Outcome, String> {
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
    let mut by_index: Vec<Option<(usize, RunRecord)>> = vec![None; first.total_runs];
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
    let mut collected = Collected::default();
    for k in 0..sweep.points.len() {
        let point = PointScenario::of(&sweep, k, &[])?;
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
        collected.point(&sweep, k, scenario, runs, fallbacks, &first.commit, Some(&dir), false)?;
    }
    collected.finish(sweep, Some(dir))
}
