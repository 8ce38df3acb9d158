//! The run matrix: every policy × seed of a scenario.

use std::sync::Mutex;

use nimbus_sim::output::RunOutput;
use rayon::prelude::*;

use crate::budget::{self, Limits};
use crate::claims::{self, ClaimResult};
use crate::scenario::{LabError, Scenario};
use crate::stats::Summary;

/// One finished run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Policy label.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// What it produced.
    pub output: RunOutput,
}

/// Everything a scenario's runs showed.
#[derive(Debug, Clone)]
pub struct LabResult {
    /// Runs ordered by (policy in scenario order, seed in scenario order).
    pub runs: Vec<RunRecord>,
    /// Claims with verdicts, in scenario order.
    pub claims: Vec<ClaimResult>,
    /// Data substitutions the domain made.
    pub fallbacks: Vec<String>,
}

impl LabResult {
    /// Per-seed values of `metric` for policy `label`, in seed order (NaN
    /// where a run lacks it).
    pub fn values(&self, label: &str, metric: &str) -> Vec<f64> {
        self.runs.iter().filter(|r| r.policy == label).map(|r| r.output.metric(metric).unwrap_or(f64::NAN)).collect()
    }

    /// Summary across seeds of `metric` for `label`.
    pub fn summary(&self, label: &str, metric: &str) -> Summary {
        Summary::of(&self.values(label, metric))
    }

    /// Metric names in first-seen order.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for run in &self.runs {
            for m in &run.output.metrics {
                if !names.contains(&m.name) {
                    names.push(m.name.clone());
                }
            }
        }
        names
    }
}

/// Progress of a scenario's runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Fraction of all simulated work done, in [0, 1].
    pub fraction: f64,
    /// Runs finished.
    pub finished: usize,
    /// Runs in total.
    pub total: usize,
}

/// Runs every policy × seed (in parallel on `threads` threads, or rayon's
/// default), then checks the claims; refuses first, with the reason, a
/// scenario whose runs would exceed this machine's default [`Limits`].
pub fn run_scenario(
    scenario: &Scenario,
    threads: Option<usize>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<LabResult, LabError> {
    run_scenario_within(scenario, threads, &Limits::for_this_machine(), progress)
}

/// [`run_scenario`] under explicit limits.
pub fn run_scenario_within(
    scenario: &Scenario,
    threads: Option<usize>,
    limits: &Limits,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<LabResult, LabError> {
    let runs = run_selected(scenario, &|_| true, threads, limits, progress)?;
    Ok(assemble(scenario, runs, scenario.prepared.fallbacks()))
}

/// The scenario's (policy index, seed) pairs in canonical order: policies
/// in file order, each with every seed in order.
pub fn pairs(scenario: &Scenario) -> Vec<(usize, u64)> {
    scenario.policies.iter().enumerate().flat_map(|(i, _)| scenario.seeds.iter().map(move |s| (i, *s))).collect()
}

/// Runs the pairs of [`pairs`] whose index `selected` accepts, in
/// parallel; records come back in canonical order.
pub fn run_selected(
    scenario: &Scenario,
    selected: &(dyn Fn(usize) -> bool + Sync),
    threads: Option<usize>,
    limits: &Limits,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<RunRecord>, LabError> {
    let workers = threads.unwrap_or_else(rayon::current_num_threads);
    budget::check(scenario, workers, limits)?;
    let pairs: Vec<(usize, u64)> =
        pairs(scenario).into_iter().enumerate().filter(|(i, _)| selected(*i)).map(|(_, p)| p).collect();
    let total = pairs.len();
    let fractions = Mutex::new(vec![0.0f64; total]);
    let finished = Mutex::new(0usize);
    let report = |index: usize, fraction: f64, done: bool| {
        let sum = {
            let mut f = fractions.lock().expect("progress lock");
            f[index] = fraction;
            f.iter().sum::<f64>()
        };
        let finished = {
            let mut n = finished.lock().expect("progress lock");
            if done {
                *n += 1;
            }
            *n
        };
        progress(Progress { fraction: sum / total as f64, finished, total });
    };
    let declared = scenario.prepared.metric_names();
    let work = || {
        pairs
            .par_iter()
            .enumerate()
            .map(|(index, (policy_index, seed))| {
                let spec = &scenario.policies[*policy_index];
                let mut on_progress = |f: f64| report(index, f.clamp(0.0, 1.0), false);
                let output = match &spec.external {
                    Some(external) => scenario.prepared.run_external(external, *seed, &mut on_progress),
                    None => scenario.prepared.run(&spec.name, &spec.params, *seed, &mut on_progress),
                }
                .map_err(|message| LabError::Run {
                    path: scenario.path.clone(),
                    policy: spec.label.clone(),
                    seed: *seed,
                    message,
                })?;
                // A domain must report only the metrics it declares, or
                // scenarios could not be checked against them at load time.
                if let Some(m) = output.metrics.iter().find(|m| !declared.contains(&m.name)) {
                    return Err(LabError::Run {
                        path: scenario.path.clone(),
                        policy: spec.label.clone(),
                        seed: *seed,
                        message: format!(
                            "internal error: metric {:?} is not among the domain's declared metrics",
                            m.name
                        ),
                    });
                }
                report(index, 1.0, true);
                Ok(RunRecord { policy: spec.label.clone(), seed: *seed, output })
            })
            .collect::<Result<Vec<_>, LabError>>()
    };
    let runs = match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .map_err(|e| LabError::Domain {
                path: scenario.path.clone(),
                message: format!("cannot start threads: {e}"),
            })?
            .install(work)?,
        None => work()?,
    };
    Ok(runs)
}

/// The result of `runs` (in canonical order) of `scenario`: its claims
/// checked against them.
pub fn assemble(scenario: &Scenario, runs: Vec<RunRecord>, fallbacks: Vec<String>) -> LabResult {
    let mut result = LabResult { runs, claims: Vec::new(), fallbacks };
    result.claims = scenario
        .claims
        .iter()
        .map(|c| claims::check(c, |label| result.values(label, &c.metric), &result.fallbacks))
        .collect();
    result
}
