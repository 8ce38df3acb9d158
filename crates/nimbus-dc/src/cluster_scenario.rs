//! The task-cluster model's scenario keys (`[cluster] kind = "nodes"`).
//!
//! - `[cluster]`: `nodes` (100), `slots` per node (8), `rtt_us` (500: a
//!   scheduler-node round trip).
//! - `[workload]`, `kind`:
//!   - `bag` (the embedded default): `jobs` (5,000) of independent tasks;
//!     tasks per job from a discrete Pareto (`task_skew` 1.2, at most
//!     `max_tasks` 1,000: most jobs have one to a few tasks, a few have
//!     hundreds), each job's median task time log-normal around
//!     `median_task_s` (10, σ = 1) and its tasks log-normal around that
//!     (σ = 0.3);
//!   - `gaia` (`path`: a GAIA job trace such as `gaia-job-traces/pai-100k.csv`;
//!     a job of `cpus` cores for `length` hours becomes `cpus` tasks of that
//!     length, at most `max_tasks`; the first `jobs` jobs);
//!   - `opendc` (`path`: an OpenDC workload directory such as
//!     `opendc-traces/surf_week`; a task of `cpu_count` cores becomes a job
//!     of that many one-slot tasks; the first `jobs`).
//!
//!   Every kind takes `utilization` (0.9): arrivals form a Poisson stream
//!   (synthetic) or keep the trace's gaps, scaled so that offered work is
//!   that share of the cluster. A missing file falls back to `bag`, and
//!   the results say so. Each seed draws its own synthetic jobs.

use std::path::PathBuf;

use nimbus_sim::params::Params;
use nimbus_sim::rng::RngStreams;
use nimbus_sim::time::{SimDuration, SimTime};

use crate::cluster::{BagJob, Nodes};
use crate::scenario::ScenarioError;

/// How jobs are made.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Synthetic bags of tasks, drawn per seed.
    Bag {
        /// Jobs.
        jobs: usize,
        /// Pareto shape of tasks per job.
        skew: f64,
        /// Most tasks in a job.
        max_tasks: usize,
        /// Median task time, s.
        median_s: f64,
    },
    /// Jobs from a trace (arrival offsets in ns, task durations).
    Trace(Vec<(u64, Vec<SimDuration>)>),
}

/// A prepared task-cluster scenario.
#[derive(Debug, Clone)]
pub struct TaskScenario {
    /// The cluster.
    pub nodes: Nodes,
    /// Where jobs come from.
    pub source: Source,
    /// Offered load.
    pub utilization: f64,
}

const MAX_JOBS: usize = 10_000_000;

/// Most tasks a trace may expand into (each costs its duration and queue
/// entries; 5·10^7 is a few GB).
const MAX_TRACE_TASKS: u64 = 50_000_000;

fn check_tasks(total: u64, path: &std::path::Path) -> Result<(), ScenarioError> {
    if total > MAX_TRACE_TASKS {
        return Err(ScenarioError::Invalid(format!(
            "{}: the jobs expand into {total} tasks; at most {MAX_TRACE_TASKS} (lower `jobs` or `max_tasks`)",
            path.display()
        )));
    }
    Ok(())
}

impl TaskScenario {
    /// Reads `[cluster]` (kind nodes) and `[workload]`.
    pub fn from_params(w: &Params, c: &Params, fallbacks: &mut Vec<String>) -> Result<TaskScenario, ScenarioError> {
        c.finish(&["kind", "nodes", "slots", "rtt_us"])?;
        let nodes = Nodes {
            count: c.usize_in("nodes", 100, 1..=1_000_000)?,
            slots: c.u32_in("slots", 8, 1..=4096)?,
            rtt: SimDuration::from_secs_f64(c.f64_in("rtt_us", 500.0, 0.0..=1e9)? / 1e6),
        };
        let kind = w.choice_or("kind", &["bag", "gaia", "opendc"], "bag")?;
        let mut keys = vec!["kind", "jobs", "utilization", "max_tasks", "task_skew", "median_task_s"];
        if kind != "bag" {
            keys.push("path");
        }
        w.finish(&keys)?;
        let jobs = w.usize_in("jobs", 5000, 1..=MAX_JOBS)?;
        let max_tasks = w.usize_in("max_tasks", 1000, 1..=1_000_000)?;
        let bag = Source::Bag {
            jobs,
            skew: w.f64_in("task_skew", 1.2, 0.1..=10.0)?,
            max_tasks,
            median_s: w.f64_in("median_task_s", 10.0, 1e-6..=1e7)?,
        };
        let source = if kind == "bag" {
            bag
        } else {
            let path = PathBuf::from(w.required_str("path")?);
            if !path.exists() {
                fallbacks.push(format!("{} is absent: synthetic bags of tasks stand in", path.display()));
                bag
            } else if kind == "gaia" {
                let read = nimbus_trace::gaia::read_jobs(nimbus_trace::Source::file(&path))?;
                let total: u64 = read.iter().take(jobs).map(|j| (j.cpus as u64).clamp(1, max_tasks as u64)).sum();
                check_tasks(total, &path)?;
                let out = read
                    .iter()
                    .take(jobs)
                    .enumerate()
                    .map(|(i, j)| {
                        let at = nimbus_sim::params::round_to_u64(j.arrival_h * 3.6e12).ok_or_else(|| {
                            ScenarioError::Invalid(format!(
                                "{}: job {i}: arrival {} h is out of range",
                                path.display(),
                                j.arrival_h
                            ))
                        })?;
                        let k = (j.cpus as usize).clamp(1, max_tasks);
                        Ok((at, vec![SimDuration::from_secs_f64(j.length_h * 3600.0); k]))
                    })
                    .collect::<Result<_, ScenarioError>>()?;
                Source::Trace(out)
            } else {
                let file = path.join("tasks.parquet");
                let tasks = nimbus_trace::opendc::read_tasks_file(nimbus_trace::Source::file(&file))?;
                let total: u64 = tasks.iter().take(jobs).map(|t| (t.cpu_count as u64).clamp(1, max_tasks as u64)).sum();
                check_tasks(total, &file)?;
                let first = tasks.iter().map(|t| t.submit_ms).min().unwrap_or(0);
                let out = tasks
                    .iter()
                    .take(jobs)
                    .map(|t| {
                        let at =
                            u64::try_from(t.submit_ms.saturating_sub(first)).unwrap_or(0).saturating_mul(1_000_000);
                        let k = (t.cpu_count as usize).clamp(1, max_tasks);
                        let ms = u64::try_from(t.duration_ms).map_err(|_| {
                            ScenarioError::Invalid(format!(
                                "{}: task `{}` has a negative duration ({} ms)",
                                file.display(),
                                nimbus_trace::input::quote(&t.id),
                                t.duration_ms
                            ))
                        })?;
                        Ok((at, vec![SimDuration::from_nanos(ms.saturating_mul(1_000_000)); k]))
                    })
                    .collect::<Result<_, ScenarioError>>()?;
                Source::Trace(out)
            }
        };
        if let Source::Trace(jobs) = &source
            && jobs.iter().all(|(_, t)| t.iter().all(|d| d.as_nanos() == 0))
        {
            return Err(ScenarioError::Invalid("the trace's jobs have no work (every duration is 0)".into()));
        }
        Ok(TaskScenario { nodes, source, utilization: w.f64_in("utilization", 0.9, 0.01..=2.0)? })
    }

    /// The jobs of seed `seed`, by arrival, with arrivals scaled to the
    /// utilization.
    pub fn jobs(&self, seed: u64) -> Vec<BagJob> {
        let capacity = self.nodes.count as f64 * f64::from(self.nodes.slots);
        match &self.source {
            Source::Bag { jobs, skew, max_tasks, median_s } => {
                let streams = RngStreams::new(seed);
                let mut sizes = streams.stream("job-sizes");
                let mut times = streams.stream("task-times");
                let mut gaps = streams.stream("arrivals");
                let bags: Vec<Vec<SimDuration>> = (0..*jobs)
                    .map(|_| {
                        // Discrete Pareto: floor(U^(-1/a)).
                        let u = sizes.uniform().max(1e-12);
                        let k = (u.powf(-1.0 / skew).floor() as usize).clamp(1, *max_tasks);
                        let job_median = median_s * times.lognormal(0.0, 1.0);
                        (0..k).map(|_| SimDuration::from_secs_f64(job_median * times.lognormal(0.0, 0.3))).collect()
                    })
                    .collect();
                let mean_work = bags.iter().map(|b| b.iter().map(|d| d.as_secs_f64()).sum::<f64>()).sum::<f64>()
                    / bags.len().max(1) as f64;
                let rate = self.utilization * capacity / mean_work.max(1e-12);
                let mut t = 0.0;
                bags.into_iter()
                    .map(|tasks| {
                        t += gaps.exponential(rate);
                        BagJob { at: SimTime::from_secs_f64(t), tasks }
                    })
                    .collect()
            }
            Source::Trace(jobs) => {
                let mut sorted: Vec<&(u64, Vec<SimDuration>)> = jobs.iter().collect();
                sorted.sort_by_key(|(at, _)| *at);
                let first = sorted.first().map_or(0, |(at, _)| *at);
                let span = sorted.last().map_or(0, |(at, _)| *at - first) as f64 / 1e9;
                let work: f64 = sorted.iter().map(|(_, t)| t.iter().map(|d| d.as_secs_f64()).sum::<f64>()).sum();
                // Stretch or squeeze the gaps so offered work / capacity
                // over the arrival span is the utilization.
                let scale = if span > 0.0 { work / (self.utilization * capacity * span) } else { 0.0 };
                sorted
                    .into_iter()
                    .map(|(at, tasks)| BagJob {
                        at: SimTime::from_secs_f64((*at - first) as f64 / 1e9 * scale),
                        tasks: tasks.clone(),
                    })
                    .collect()
            }
        }
    }

    /// Mean tasks per job (for estimates).
    pub fn tasks_estimate(&self) -> u64 {
        match &self.source {
            Source::Bag { jobs, skew, max_tasks, .. } => {
                // E[floor(U^(-1/a))] capped, roughly a/(a-1) for a > 1.
                let per_job =
                    if *skew > 1.0 { (skew / (skew - 1.0)).min(*max_tasks as f64) } else { *max_tasks as f64 / 10.0 };
                (*jobs as f64 * per_job) as u64
            }
            Source::Trace(jobs) => jobs.iter().map(|(_, t)| t.len() as u64).sum(),
        }
    }
}
