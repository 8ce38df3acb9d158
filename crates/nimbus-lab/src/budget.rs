//! The resource budget of a scenario: before any run starts, every
//! (policy, seed) run's estimate (memory, events) is checked against the
//! limits, and a scenario that would exhaust the machine or run for days is
//! refused with the terms that dominate and what to change.

use nimbus_sim::estimate::{Estimate, bytes};
use nimbus_sim::params::Params;

use crate::scenario::{LabError, Scenario};

/// The default share of physical memory a scenario may plan to use.
pub const DEFAULT_MEMORY_SHARE: f64 = 0.5;

/// The default cap on one run's events (about a day of CPU at the twin's
/// usual one to a few million events per second).
pub const DEFAULT_MAX_EVENTS: u64 = 100_000_000_000;

/// What a scenario may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory for the runs that execute at once plus the outputs held
    /// until the results are written, bytes.
    pub memory_bytes: u64,
    /// Events of any one run.
    pub events_per_run: u64,
}

impl Limits {
    /// Half of this machine's physical memory (8 GiB where it cannot be
    /// read) and [`DEFAULT_MAX_EVENTS`].
    pub fn for_this_machine() -> Self {
        let physical = physical_memory_bytes().unwrap_or(16 << 30);
        let memory_bytes = nimbus_sim::estimate::saturating(physical as f64 * DEFAULT_MEMORY_SHARE);
        Limits { memory_bytes, events_per_run: DEFAULT_MAX_EVENTS }
    }
}

/// `MemTotal` of `/proc/meminfo`, bytes.
pub fn physical_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// A scenario's planned use: the peak of the runs that can execute at once
/// and the outputs kept until the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Peak memory, bytes.
    pub memory_bytes: u64,
    /// The most events of one run.
    pub events_max: u64,
    /// Runs that execute at once.
    pub concurrent: usize,
}

/// Estimates every run of `scenario` with `threads` runs at once and
/// checks the limits.
pub fn check(scenario: &Scenario, threads: usize, limits: &Limits) -> Result<Budget, LabError> {
    let refuse = |message: String| LabError::Budget { path: scenario.path.clone(), message };
    let mut per_policy: Vec<(&str, Estimate)> = Vec::new();
    for spec in &scenario.policies {
        let (name, params) = match &spec.external {
            Some(external) => (external.estimated_as(), &Params::default()),
            None => (spec.name.as_str(), &spec.params),
        };
        let e = scenario.prepared.estimate(name, params).map_err(|message| LabError::Run {
            path: scenario.path.clone(),
            policy: spec.label.clone(),
            seed: scenario.seeds[0],
            message,
        })?;
        if e.events > limits.events_per_run {
            return Err(refuse(format!(
                "a run of policy `{}` would process about {:.2e} events ({}), more than the {:.0e} allowed \
                 (--max-events): it would run for hours or days. Shorten the workload, or raise --max-events",
                spec.label,
                e.events as f64,
                e.describe_events(),
                limits.events_per_run as f64
            )));
        }
        per_policy.push((spec.label.as_str(), e));
    }
    let seeds = scenario.seeds.len();
    let runs = per_policy.len() * seeds;
    let concurrent = threads.clamp(1, runs.max(1));
    // The largest runs may execute together.
    let mut peaks: Vec<u64> = per_policy.iter().flat_map(|(_, e)| std::iter::repeat_n(e.memory_bytes, seeds)).collect();
    peaks.sort_unstable_by(|a, b| b.cmp(a));
    let working = peaks.iter().take(concurrent).fold(0u64, |acc, m| acc.saturating_add(*m));
    let outputs =
        per_policy.iter().fold(0u64, |acc, (_, e)| acc.saturating_add(e.output_bytes.saturating_mul(seeds as u64)));
    let memory = working.saturating_add(outputs);
    let events_max = per_policy.iter().map(|(_, e)| e.events).max().unwrap_or(0);
    if memory > limits.memory_bytes {
        let (label, largest) = per_policy.iter().max_by_key(|(_, e)| e.memory_bytes).expect("at least one policy");
        return Err(refuse(format!(
            "this scenario would need about {} of memory, more than the {} allowed (--max-memory): \
             {concurrent} run{} at once, the largest (policy `{label}`) about {} ({}), plus {} of results held \
             until they are written. Make the workload smaller, run fewer at once (--jobs 1), or raise --max-memory",
            bytes(memory),
            bytes(limits.memory_bytes),
            if concurrent == 1 { "" } else { "s" },
            bytes(largest.memory_bytes),
            largest.describe_memory(),
            bytes(outputs),
        )));
    }
    Ok(Budget { memory_bytes: memory, events_max, concurrent })
}
