//! Building a dc run from scenario parameters.
//!
//! Keys:
//! - `[workload]`, `kind`:
//!   - `tpch` (`path`: Decima's `tpch_dags.json`; unset → the synthetic
//!     stand-in; a missing file → the stand-in, and the results say so);
//!   - `synthetic` (the embedded default): 22 query shapes at seven sizes,
//!     calibrated on the TPC-H tables ([`crate::job::synthetic_queries`]).
//!
//!   Both take `sizes` (input sizes drawn from, e.g. `["2g", "100g"]`; all
//!   by default), `initial_jobs` (10, there at time 0), `jobs` (100, then
//!   arriving as a Poisson stream), `interarrival_s` (25, Decima's
//!   default), `weighted` (false; true draws each job's weight uniformly
//!   from 1 to `max_weight`, 5). Each seed draws its own stream; every
//!   policy of a seed runs the same one.
//! - `[cluster]`: `executors` (100), `moving_delay_ms` (2,000),
//!   `warmup_delay_ms` (1,000): Decima's defaults.

use std::path::PathBuf;
use std::sync::Arc;

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::{Better, Metric, RunOutput};
use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::rng::RngStreams;
use nimbus_sim::time::SimTime;

use crate::job::{JobSpec, synthetic_queries};
use crate::mc_wscpt::{self, McWscpt};
use crate::spark::{self, Cluster, Scheduler, Submission};
use crate::spark_baselines::{Fair, Fifo, SjfCp};

/// Why a scenario cannot be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A key is missing, mistyped or unknown.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A data file is malformed.
    #[error(transparent)]
    Trace(#[from] nimbus_trace::TraceError),
    /// The settings or data cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// A policy of the registry.
pub struct PolicyInfo {
    /// Name in scenarios.
    pub name: &'static str,
    /// `paper` or `baseline`.
    pub kind: &'static str,
    /// `modelled`, `validated`, …
    pub fidelity: &'static str,
    /// Where it comes from.
    pub source: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Accepted parameters.
    pub params: &'static [&'static str],
    build: fn(&Params) -> Result<Box<dyn Scheduler>, ParamError>,
}

/// Every dc policy.
pub static REGISTRY: &[PolicyInfo] = &[
    PolicyInfo {
        name: "mc-wscpt",
        kind: "paper",
        fidelity: "modelled",
        source: "Cloud-native Workflow Scheduling using a Hybrid Priority Rule, Dynamic Resource Allocation, and Dynamic Task Partition (SoCC'24)",
        summary: "hybrid maximum-children / weighted-shortest-critical-path rule switched by queue size, executors per job in proportion to weight x critical path (DRA), stage parallelism from a fitted a/k + b*k curve (DTP)",
        params: mc_wscpt::PARAMS,
        build: |p| Ok(Box::new(McWscpt::from_params(p)?)),
    },
    PolicyInfo {
        name: "fifo",
        kind: "baseline",
        fidelity: "modelled",
        source: "Spark's FIFO scheduler (Decima's baseline)",
        summary: "the earliest job's runnable stages first, no executor caps",
        params: &[],
        build: |p| {
            p.finish(&[])?;
            Ok(Box::new(Fifo))
        },
    },
    PolicyInfo {
        name: "fair",
        kind: "baseline",
        fidelity: "modelled",
        source: "Decima's dynamic partition (Mao et al., SIGCOMM'19)",
        summary: "each unfinished job may hold ceil(executors / jobs) executors; arrival order",
        params: &[],
        build: |p| {
            p.finish(&[])?;
            Ok(Box::new(Fair { weighted: false }))
        },
    },
    PolicyInfo {
        name: "weighted-fair",
        kind: "baseline",
        fidelity: "modelled",
        source: "weighted fair sharing (Spark's fair scheduler with pool weights)",
        summary: "executor caps in proportion to job weights; arrival order",
        params: &[],
        build: |p| {
            p.finish(&[])?;
            Ok(Box::new(Fair { weighted: true }))
        },
    },
    PolicyInfo {
        name: "sjf-cp",
        kind: "baseline",
        fidelity: "modelled",
        source: "Decima's SJF-CP baseline (Mao et al., SIGCOMM'19)",
        summary: "the job with the least remaining work first; within it, the stage on the longest remaining critical path",
        params: &[],
        build: |p| {
            p.finish(&[])?;
            Ok(Box::new(SjfCp))
        },
    },
];

/// The policy named `name`.
pub fn find(name: &str) -> Option<&'static PolicyInfo> {
    REGISTRY.iter().find(|p| p.name == name)
}

/// How each seed's stream of jobs is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Jobs present at time 0.
    pub initial_jobs: usize,
    /// Jobs arriving afterwards.
    pub jobs: usize,
    /// Mean time between arrivals, s.
    pub interarrival_s: f64,
    /// Largest weight (1: unweighted).
    pub max_weight: u32,
}

/// A prepared dc scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The jobs drawn from.
    pub queries: Vec<Arc<JobSpec>>,
    /// The stream.
    pub stream: Stream,
    /// The executors.
    pub cluster: Cluster,
    /// Share of stages (more than five tasks) where DTP's parallelism lies
    /// within one data point of the empirical minimiser, %.
    pub dtp_within_one_step_pct: f64,
    fallbacks: Vec<String>,
}

/// Most jobs in one stream.
const MAX_JOBS: usize = 1_000_000;

impl Scenario {
    /// Reads `[workload]` and `[cluster]`.
    pub fn from_params(root: &Params) -> Result<Scenario, ScenarioError> {
        let empty_w = Params::new("workload", None);
        let w = root.table("workload")?.unwrap_or(&empty_w);
        let empty_c = Params::new("cluster", None);
        let c = root.table("cluster")?.unwrap_or(&empty_c);
        let kind = w.choice_or("kind", &["synthetic", "tpch"], "synthetic")?;
        let common = ["kind", "sizes", "initial_jobs", "jobs", "interarrival_s", "weighted", "max_weight"];
        if kind == "tpch" {
            let mut keys = common.to_vec();
            keys.push("path");
            w.finish(&keys)?;
        } else {
            w.finish(&common)?;
        }
        let mut fallbacks = Vec::new();
        let mut queries = match (kind, w.str("path")?) {
            ("tpch", Some(path)) if PathBuf::from(path).exists() => {
                let read = nimbus_trace::tpch::read_queries(nimbus_trace::Source::file(&PathBuf::from(path)))?;
                read.iter()
                    .map(JobSpec::from_query)
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(ScenarioError::Invalid)?
            }
            ("tpch", Some(path)) => {
                fallbacks.push(format!("{path} is absent: synthetic TPC-H-like jobs stand in"));
                synthetic_queries(1)
            }
            _ => synthetic_queries(1),
        };
        if let Some(sizes) = w.str_or_list("sizes")? {
            let mut known: Vec<&str> = queries.iter().filter_map(|q| q.name.split_once('/').map(|(s, _)| s)).collect();
            // By size: 2g before 10g.
            let magnitude =
                |s: &str| s.trim_end_matches(|c: char| !c.is_ascii_digit()).parse::<u64>().unwrap_or(u64::MAX);
            known.sort_by(|a, b| magnitude(a).cmp(&magnitude(b)).then(a.cmp(b)));
            known.dedup();
            if let Some(bad) = sizes.iter().find(|s| !known.contains(s)) {
                return Err(ScenarioError::Param(
                    w.error("sizes", format!("no job of size {bad:?}; the workload has {}", known.join(", "))),
                ));
            }
            queries.retain(|q| q.name.split_once('/').is_some_and(|(s, _)| sizes.contains(&s)));
        }
        let weighted = w.bool_or("weighted", false)?;
        let max_weight = w.u32_in("max_weight", 5, 1..=1_000_000)?;
        let stream = Stream {
            initial_jobs: w.usize_in("initial_jobs", 10, 0..=MAX_JOBS)?,
            jobs: w.usize_in("jobs", 100, 0..=MAX_JOBS)?,
            interarrival_s: w.f64_in("interarrival_s", 25.0, 1e-3..=1e7)?,
            max_weight: if weighted { max_weight } else { 1 },
        };
        if stream.initial_jobs + stream.jobs == 0 {
            return Err(ScenarioError::Param(w.error("jobs", "the stream has no jobs (initial_jobs and jobs are 0)")));
        }
        c.finish(&["executors", "moving_delay_ms", "warmup_delay_ms"])?;
        let cluster = Cluster {
            executors: c.u32_in("executors", 100, 1..=1_000_000)?,
            moving_delay_ms: c.f64_in("moving_delay_ms", 2000.0, 0.0..=1e9)?,
            warmup_delay_ms: c.f64_in("warmup_delay_ms", 1000.0, 0.0..=1e9)?,
        };
        let dtp_within_one_step_pct = dtp_check(&queries);
        Ok(Scenario {
            queries: queries.into_iter().map(Arc::new).collect(),
            stream,
            cluster,
            dtp_within_one_step_pct,
            fallbacks,
        })
    }

    /// The jobs of seed `seed`, by arrival.
    pub fn submissions(&self, seed: u64) -> Vec<Submission> {
        let streams = RngStreams::new(seed);
        let mut pick = streams.stream("jobs");
        let mut gaps = streams.stream("arrivals");
        let mut weights = streams.stream("weights");
        let mut t = 0.0;
        let total = self.stream.initial_jobs + self.stream.jobs;
        let mut out = Vec::with_capacity(total);
        for i in 0..total {
            if i >= self.stream.initial_jobs {
                t += gaps.exponential(1.0 / self.stream.interarrival_s);
            }
            let spec = Arc::clone(&self.queries[pick.index(self.queries.len())]);
            let weight = 1.0 + weights.below(u64::from(self.stream.max_weight)) as f64;
            out.push(Submission { at: SimTime::from_secs_f64(t), spec, weight });
        }
        out
    }

    fn find(&self, name: &str) -> Result<&'static PolicyInfo, ScenarioError> {
        find(name).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "unknown dc policy {name:?}; available: {}",
                REGISTRY.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Builds `policy` with `params` to check them.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        (self.find(policy)?.build)(params)?;
        Ok(())
    }

    /// Runs one policy with one seed.
    pub fn run(
        &self,
        policy: &str,
        params: &Params,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let mut scheduler = (self.find(policy)?.build)(params)?;
        let subs = self.submissions(seed);
        let rng = RngStreams::new(seed).stream("durations");
        let mut out = spark::run(&self.cluster, &subs, scheduler.as_mut(), rng, progress);
        out.metrics.push(Metric::new("dtp_within_one_step_pct", self.dtp_within_one_step_pct, Better::Higher));
        Ok(out)
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        spark::METRICS.iter().chain(&["dtp_within_one_step_pct"]).map(|m| m.to_string()).collect()
    }

    /// What one run needs: per-job stage state and two events per task.
    pub fn estimate(&self, _policy: &str, _params: &Params) -> Result<Estimate, ScenarioError> {
        let jobs = (self.stream.initial_jobs + self.stream.jobs) as u64;
        let n = self.queries.len().max(1) as u64;
        let mean_tasks = self.queries.iter().map(|q| q.tasks()).sum::<u64>() / n;
        let mean_stages = self.queries.iter().map(|q| q.stages.len() as u64).sum::<u64>() / n;
        let mut e = Estimate::default();
        e.memory("job and stage state", jobs.saturating_mul(mean_stages.saturating_mul(40) + 200));
        e.events("task starts and ends", jobs.saturating_mul(mean_tasks).saturating_mul(2));
        Ok(e)
    }
}

/// DTP's check over every stage of more than five tasks, %.
fn dtp_check(queries: &[JobSpec]) -> f64 {
    let (mut hit, mut total) = (0u32, 0u32);
    for q in queries {
        for s in q.stages.iter().filter(|s| s.tasks > 5) {
            total += 1;
            if mc_wscpt::dtp_within_one_step(&s.durations, s.tasks) {
                hit += 1;
            }
        }
    }
    if total == 0 { f64::NAN } else { 100.0 * f64::from(hit) / f64::from(total) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_sim::params::{Param, Value};

    fn params(pairs: &[(&str, Value)]) -> Params {
        let mut root = Params::new("", None);
        for (k, v) in pairs {
            root.set_path(k, Param { value: v.clone(), span: None }).expect("settable");
        }
        root
    }

    #[test]
    fn the_embedded_default_runs_and_every_policy_sees_the_same_jobs() {
        let s = Scenario::from_params(&params(&[("workload.jobs", Value::Int(20))])).expect("valid");
        assert!(s.fallbacks().is_empty());
        let a = s.submissions(3);
        let b = s.submissions(3);
        assert_eq!(a.len(), 30);
        assert!(a.iter().zip(&b).all(|(x, y)| x.at == y.at && x.spec.name == y.spec.name));
        assert!(a[..10].iter().all(|x| x.at == SimTime::ZERO));
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        let none = Params::new("policy", None);
        for p in REGISTRY {
            let out = s.run(p.name, &none, 3, &mut |_| {}).expect("runs");
            assert_eq!(out.metric("jobs_finished"), Some(30.0), "{}", p.name);
            assert_eq!(out.metric("tasks"), Some(a.iter().map(|x| x.spec.tasks() as f64).sum()), "{}", p.name);
        }
    }

    #[test]
    fn a_missing_file_falls_back_and_says_so() {
        let s = Scenario::from_params(&params(&[
            ("workload.kind", Value::Str("tpch".into())),
            ("workload.path", Value::Str("/nonexistent/tpch_dags.json".into())),
        ]))
        .expect("valid");
        assert!(s.fallbacks()[0].contains("synthetic TPC-H-like jobs stand in"), "{:?}", s.fallbacks());
    }

    #[test]
    fn sizes_filter_and_weights_stay_in_range() {
        let s = Scenario::from_params(&params(&[
            ("workload.sizes", Value::Str("2g".into())),
            ("workload.weighted", Value::Bool(true)),
            ("workload.max_weight", Value::Int(3)),
        ]))
        .expect("valid");
        assert_eq!(s.queries.len(), 22);
        let subs = s.submissions(1);
        assert!(subs.iter().all(|x| x.spec.name.starts_with("2g/") && (1.0..=3.0).contains(&x.weight)));
        assert!(subs.iter().any(|x| x.weight > 1.0));
        let e = s.check("mc-wscpt", &params(&[("threshold", Value::Int(-1))])).expect_err("negative");
        assert!(e.to_string().contains("threshold"), "{e}");
    }
}
