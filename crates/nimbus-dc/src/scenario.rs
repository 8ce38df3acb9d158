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
//!
//! `[cluster] kind` picks the model: `executors` (the default: the
//! Spark-imitating DAG model above, [`crate::spark`]), `nodes` (a task
//! cluster with per-node queues, [`crate::cluster`]; keys in
//! [`crate::cluster_scenario`]) or `services` (requests through tiers of
//! microservices, [`crate::callgraph`]; keys in
//! [`crate::callgraph_scenario`]) or `colocation` (interference episodes
//! on a shared server, [`crate::interference`]; `[workload] episodes`,
//! 500) or `mitigation` (Deoxys' unhealthy-node events, [`crate::deoxys`];
//! `[workload] train` 20,000 logged events, `test` 5,000, `trees` 100 per
//! forest) or `workflow` (workflows of tasks and data items on a
//! heterogeneous system, [`crate::workflow_run`]; keys in
//! [`crate::workflow_scenario`]). Each policy runs on one model.

use std::path::PathBuf;
use std::sync::Arc;

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::{Better, Metric, RunOutput};
use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::rng::RngStreams;
use nimbus_sim::time::SimTime;

use crate::callgraph::{self, Discipline};
use crate::callgraph_scenario::ServiceScenario;
use crate::cluster::{self, ClusterScheduler};
use crate::cluster_baselines::{self, KubeDefault, Sparrow};
use crate::cluster_scenario::TaskScenario;
use crate::deoxys::{self, Choice, Policy as MitigationPolicy, Study};
use crate::ins::Ins;
use crate::interference::{self, Controller, Parties};
use crate::job::{JobSpec, synthetic_queries};
use crate::mc_wscpt::{self, McWscpt};
use crate::murmuration::{self, Murmuration};
use crate::spark::{self, Cluster, Scheduler, Submission};
use crate::spark_baselines::{Fair, Fifo, SizeFair, SjfCp};
use crate::tailclipper;
use crate::workflow_scenario::{self, WorkflowPolicy, WorkflowScenario};

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
    build: Builder,
}

/// How a policy is built, by the model it runs on.
#[derive(Clone, Copy)]
enum Builder {
    Spark(fn(&Params) -> Result<Box<dyn Scheduler>, ParamError>),
    Tasks(fn(&Params) -> Result<Box<dyn ClusterScheduler>, ParamError>),
    Services(fn(&Params) -> Result<Discipline, ParamError>),
    Colocation(fn(&Params) -> Result<MakeController, ParamError>),
    Mitigation(fn(&Params) -> Result<MitigationPolicy, ParamError>),
    Workflow(fn(&Params) -> Result<WorkflowPolicy, ParamError>),
}

/// Makes a fresh controller for each interference episode.
type MakeController = fn() -> Box<dyn Controller>;

impl Builder {
    fn model(self) -> &'static str {
        match self {
            Builder::Spark(_) => "executors",
            Builder::Tasks(_) => "nodes",
            Builder::Services(_) => "services",
            Builder::Colocation(_) => "colocation",
            Builder::Mitigation(_) => "mitigation",
            Builder::Workflow(_) => "workflow",
        }
    }
}

impl PolicyInfo {
    /// The model it runs on (`executors`, `nodes`, `services`,
    /// `colocation`, `mitigation` or `workflow`).
    pub fn model(&self) -> &'static str {
        self.build.model()
    }
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
        build: Builder::Spark(|p| Ok(Box::new(McWscpt::from_params(p)?))),
    },
    PolicyInfo {
        name: "fifo",
        kind: "baseline",
        fidelity: "modelled",
        source: "Spark's FIFO scheduler (Decima's baseline)",
        summary: "the earliest job's runnable stages first, no executor caps",
        params: &[],
        build: Builder::Spark(|p| {
            p.finish(&[])?;
            Ok(Box::new(Fifo))
        }),
    },
    PolicyInfo {
        name: "fair",
        kind: "baseline",
        fidelity: "modelled",
        source: "Decima's dynamic partition (Mao et al., SIGCOMM'19)",
        summary: "each unfinished job may hold ceil(executors / jobs) executors; arrival order",
        params: &[],
        build: Builder::Spark(|p| {
            p.finish(&[])?;
            Ok(Box::new(Fair { weighted: false }))
        }),
    },
    PolicyInfo {
        name: "weighted-fair",
        kind: "baseline",
        fidelity: "modelled",
        source: "weighted fair sharing (Spark's fair scheduler with pool weights)",
        summary: "executor caps in proportion to job weights; arrival order",
        params: &[],
        build: Builder::Spark(|p| {
            p.finish(&[])?;
            Ok(Box::new(Fair { weighted: true }))
        }),
    },
    PolicyInfo {
        name: "size-fair",
        kind: "baseline",
        fidelity: "modelled",
        source: "Decima's weighted fair heuristics (Mao et al., SIGCOMM'19)",
        summary: "executor caps in proportion to remaining work^alpha (1: naive weighted fair; opt. weighted fair tunes alpha; default -1, small jobs favoured); arrival order",
        params: &["alpha"],
        build: Builder::Spark(|p| {
            p.finish(&["alpha"])?;
            Ok(Box::new(SizeFair { alpha: p.f64_in("alpha", -1.0, -4.0..=4.0)? }))
        }),
    },
    PolicyInfo {
        name: "sjf-cp",
        kind: "baseline",
        fidelity: "modelled",
        source: "Decima's SJF-CP baseline (Mao et al., SIGCOMM'19)",
        summary: "the job with the least remaining work first; within it, the stage on the longest remaining critical path",
        params: &[],
        build: Builder::Spark(|p| {
            p.finish(&[])?;
            Ok(Box::new(SjfCp))
        }),
    },
    PolicyInfo {
        name: "murmuration",
        kind: "paper",
        fidelity: "modelled",
        source: "Scheduling for Reduced Tail Task Latencies in Highly Utilized Datacenters (SoCC'24)",
        summary: "scheduler instances with gossiped slot estimates place a job's tasks on the slots expected to free earliest (start-time alignment), reserve them, fall back to late binding on conflict; optional smallest-job-first queues",
        params: murmuration::PARAMS,
        build: Builder::Tasks(|p| Ok(Box::new(Murmuration::from_params(p)?))),
    },
    PolicyInfo {
        name: "k8s-default",
        kind: "baseline",
        fidelity: "modelled",
        source: "the Kubernetes default scheduler (kube-scheduler: filter, LeastAllocated/BalancedAllocation scores, FIFO by priority)",
        summary: "one central scheduler binds pods one at a time to the node with the most free slots; pods wait centrally when nothing fits",
        params: cluster_baselines::K8S_PARAMS,
        build: Builder::Tasks(|p| Ok(Box::new(KubeDefault::from_params(p)?))),
    },
    PolicyInfo {
        name: "sparrow",
        kind: "baseline",
        fidelity: "modelled",
        source: "Sparrow (Ousterhout et al., SOSP'13): batch sampling with late binding",
        summary: "reservations on d x k random nodes per job; a node reaching one asks for the job's next task",
        params: cluster_baselines::SPARROW_PARAMS,
        build: Builder::Tasks(|p| Ok(Box::new(Sparrow::from_params(p)?))),
    },
    PolicyInfo {
        name: "tailclipper",
        kind: "paper",
        fidelity: "modelled",
        source: "TailClipper: Reducing Tail Response Time of Distributed Services Through System-Wide Scheduling (SoCC'24)",
        summary: "every service runs the oldest request (ingress timestamp carried along the call chain) first, the degree x cores oldest calls sharing the cores",
        params: tailclipper::PARAMS,
        build: Builder::Services(tailclipper::from_params),
    },
    PolicyInfo {
        name: "fcfs",
        kind: "baseline",
        fidelity: "modelled",
        source: "per-tier first come first served (a thread pool per service)",
        summary: "each service runs calls in arrival order, one per core, to completion",
        params: &[],
        build: Builder::Services(|p| {
            p.finish(&[])?;
            Ok(Discipline::Fcfs)
        }),
    },
    PolicyInfo {
        name: "ps",
        kind: "baseline",
        fidelity: "modelled",
        source: "processor sharing (Linux CFS-like fair sharing of a service's cores)",
        summary: "each service shares its cores equally among every call it holds",
        params: &[],
        build: Builder::Services(|p| {
            p.finish(&[])?;
            Ok(Discipline::ProcessorSharing)
        }),
    },
    PolicyInfo {
        name: "ins",
        kind: "paper",
        fidelity: "modelled",
        source: "INS: Identifying and Mitigating Performance Interference in Clouds via Interference-Sensitive Paths (SoCC'24)",
        summary: "names the resource behind the request-path stage that inflated most over isolation, then grows that resource in one targeted step",
        params: &[],
        build: Builder::Colocation(|p| {
            p.finish(&[])?;
            Ok(|| Box::new(Ins))
        }),
    },
    PolicyInfo {
        name: "parties",
        kind: "baseline",
        fidelity: "modelled",
        source: "PARTIES (Chen et al., ASPLOS'19)",
        summary: "every 500 ms one more unit of the resource under trial; keep what lowered p99, revert what did not and try the next (cores, LLC, bandwidth, frequency)",
        params: &[],
        build: Builder::Colocation(|p| {
            p.finish(&[])?;
            Ok(|| Box::<Parties>::default())
        }),
    },
    PolicyInfo {
        name: "deoxys",
        kind: "paper",
        fidelity: "real computation on synthetic data",
        source: "Deoxys: A Causal Inference Engine for Unhealthy Node Mitigation in Large-scale Cloud Infrastructure (SoCC'24)",
        summary: "double machine learning and an honest causal forest estimate each event's effect of migrating vs rebooting; the lower predicted downtime wins if it beats the migration's cost; the legacy rule where the forest is unsure",
        params: deoxys::PARAMS,
        build: Builder::Mitigation(MitigationPolicy::deoxys),
    },
    PolicyInfo {
        name: "legacy",
        kind: "baseline",
        fidelity: "modelled",
        source: "the legacy rule-based mitigation (Deoxys' baseline)",
        summary: "migrate when the hardware-error and VM-count score is positive, else reboot",
        params: &[],
        build: Builder::Mitigation(|p| {
            p.finish(&[])?;
            Ok(MitigationPolicy::baseline(Choice::Legacy))
        }),
    },
    PolicyInfo {
        name: "t-learner",
        kind: "baseline",
        fidelity: "real computation on synthetic data",
        source: "the naive T-learner (one random forest per action)",
        summary: "predicts each action's downtime with its own forest and takes the lower",
        params: &[],
        build: Builder::Mitigation(|p| {
            p.finish(&[])?;
            Ok(MitigationPolicy::baseline(Choice::TLearner))
        }),
    },
    PolicyInfo {
        name: "oracle-mitigation",
        kind: "baseline",
        fidelity: "modelled",
        source: "the true effect (a bound, not a policy one could run)",
        summary: "migrates exactly where migration lowers the expected downtime",
        params: &[],
        build: Builder::Mitigation(|p| {
            p.finish(&[])?;
            Ok(MitigationPolicy::baseline(Choice::Oracle))
        }),
    },
    PolicyInfo {
        name: "heft",
        kind: "baseline",
        fidelity: "validated",
        source: "HEFT (Topcuoglu, Hariri and Wu, IEEE TPDS 2002), as DSLab's HeftScheduler plans it",
        summary: "tasks by upward rank; each to the resource and core gap giving the earliest finish; a static plan each core runs in order (makespans equal DSLab's on its 152 file pairs)",
        params: &[],
        build: Builder::Workflow(workflow_scenario::heft_policy),
    },
    PolicyInfo {
        name: "greedy",
        kind: "baseline",
        fidelity: "validated",
        source: "DSLab's SimpleScheduler",
        summary: "whenever a task ends, ready tasks in order to the first resource with free cores and memory, as many cores as they use (makespans equal DSLab's on its 152 file pairs)",
        params: &[],
        build: Builder::Workflow(workflow_scenario::greedy_policy),
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

/// The model a scenario runs.
#[derive(Debug, Clone)]
pub enum Model {
    /// DAG jobs on executors.
    Spark(SparkScenario),
    /// Bags of tasks on nodes.
    Tasks(TaskScenario),
    /// Requests through tiers of services.
    Services(ServiceScenario),
    /// Interference episodes on a shared server: the number of episodes.
    Colocation(usize),
    /// Unhealthy-node mitigation learned from logged events.
    Mitigation(Study),
    /// Workflows on a heterogeneous system.
    Workflow(WorkflowScenario),
}

/// A prepared dc scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The model and its settings.
    pub model: Model,
    fallbacks: Vec<String>,
}

/// The Spark-imitating model's settings.
#[derive(Debug, Clone)]
pub struct SparkScenario {
    /// The jobs drawn from.
    pub queries: Vec<Arc<JobSpec>>,
    /// The stream.
    pub stream: Stream,
    /// The executors.
    pub cluster: Cluster,
    /// Share of stages (more than five tasks) where DTP's parallelism lies
    /// within one data point of the empirical minimiser, %.
    pub dtp_within_one_step_pct: f64,
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
        let mut fallbacks = Vec::new();
        let model = match c.choice_or(
            "kind",
            &["executors", "nodes", "services", "colocation", "mitigation", "workflow"],
            "executors",
        )? {
            "workflow" => Model::Workflow(WorkflowScenario::from_params(w, c, &mut fallbacks)?),
            "mitigation" => {
                c.finish(&["kind"])?;
                w.finish(&["train", "test", "trees"])?;
                Model::Mitigation(Study {
                    train: w.usize_in("train", 20_000, 100..=2_000_000)?,
                    test: w.usize_in("test", 5_000, 10..=2_000_000)?,
                    trees: w.usize_in("trees", 100, 1..=5_000)?,
                })
            }
            "colocation" => {
                c.finish(&["kind"])?;
                w.finish(&["episodes"])?;
                Model::Colocation(w.usize_in("episodes", 500, 1..=10_000_000)?)
            }
            "nodes" => Model::Tasks(TaskScenario::from_params(w, c, &mut fallbacks)?),
            "services" => Model::Services(ServiceScenario::from_params(w, c)?),
            _ => Model::Spark(SparkScenario::from_params(w, c, &mut fallbacks)?),
        };
        Ok(Scenario { model, fallbacks })
    }
}

impl SparkScenario {
    fn from_params(w: &Params, c: &Params, fallbacks: &mut Vec<String>) -> Result<SparkScenario, ScenarioError> {
        let kind = w.choice_or("kind", &["synthetic", "tpch"], "synthetic")?;
        let common = ["kind", "sizes", "initial_jobs", "jobs", "interarrival_s", "weighted", "max_weight"];
        if kind == "tpch" {
            let mut keys = common.to_vec();
            keys.push("path");
            w.finish(&keys)?;
        } else {
            w.finish(&common)?;
        }
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
        c.finish(&["kind", "executors", "moving_delay_ms", "warmup_delay_ms"])?;
        let cluster = Cluster {
            executors: c.u32_in("executors", 100, 1..=1_000_000)?,
            moving_delay_ms: c.f64_in("moving_delay_ms", 2000.0, 0.0..=1e9)?,
            warmup_delay_ms: c.f64_in("warmup_delay_ms", 1000.0, 0.0..=1e9)?,
        };
        let dtp_within_one_step_pct = dtp_check(&queries);
        Ok(SparkScenario {
            queries: queries.into_iter().map(Arc::new).collect(),
            stream,
            cluster,
            dtp_within_one_step_pct,
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
}

impl Scenario {
    fn model_name(&self) -> &'static str {
        match self.model {
            Model::Spark(_) => "executors",
            Model::Tasks(_) => "nodes",
            Model::Services(_) => "services",
            Model::Colocation(_) => "colocation",
            Model::Mitigation(_) => "mitigation",
            Model::Workflow(_) => "workflow",
        }
    }

    fn find(&self, name: &str) -> Result<&'static PolicyInfo, ScenarioError> {
        let model = self.model_name();
        find(name).filter(|p| p.model() == model).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "unknown dc policy {name:?} for `[cluster] kind = \"{model}\"`; available: {}",
                REGISTRY.iter().filter(|p| p.model() == model).map(|p| p.name).collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Builds `policy` with `params` to check them.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        match self.find(policy)?.build {
            Builder::Spark(build) => build(params).map(|_| ())?,
            Builder::Tasks(build) => build(params).map(|_| ())?,
            Builder::Services(build) => build(params).map(|_| ())?,
            Builder::Colocation(build) => build(params).map(|_| ())?,
            Builder::Mitigation(build) => build(params).map(|_| ())?,
            Builder::Workflow(build) => build(params).map(|_| ())?,
        }
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
        let info = self.find(policy)?;
        match (&self.model, info.build) {
            (Model::Spark(s), Builder::Spark(build)) => {
                let mut scheduler = build(params)?;
                let subs = s.submissions(seed);
                let rng = RngStreams::new(seed).stream("durations");
                let mut out = spark::run(&s.cluster, &subs, scheduler.as_mut(), rng, progress);
                out.metrics.push(Metric::new("dtp_within_one_step_pct", s.dtp_within_one_step_pct, Better::Higher));
                Ok(out)
            }
            (Model::Tasks(t), Builder::Tasks(build)) => {
                let mut scheduler = build(params)?;
                let jobs = t.jobs(seed);
                let rng = RngStreams::new(seed).stream("scheduler");
                Ok(cluster::run(&t.nodes, &jobs, scheduler.as_mut(), rng, progress))
            }
            (Model::Services(sv), Builder::Services(build)) => {
                let discipline = build(params)?;
                let mut rng = RngStreams::new(seed).stream("requests");
                Ok(callgraph::run(&sv.graph, &sv.load, discipline, &mut rng, progress).0)
            }
            (Model::Colocation(episodes), Builder::Colocation(build)) => {
                let make = build(params)?;
                let mut rng = RngStreams::new(seed).stream("episodes");
                let out = interference::run(*episodes, &make, &mut rng);
                progress(1.0);
                Ok(out)
            }
            (Model::Mitigation(study), Builder::Mitigation(build)) => {
                let policy = build(params)?;
                let mut rng = RngStreams::new(seed).stream("events");
                let out = deoxys::run(study, &policy, &mut rng);
                progress(1.0);
                Ok(out)
            }
            (Model::Workflow(wf), Builder::Workflow(build)) => wf.run(build(params)?, seed, progress),
            _ => unreachable!("find() matched the policy to the model"),
        }
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        match self.model {
            Model::Spark(_) => {
                spark::METRICS.iter().chain(&["dtp_within_one_step_pct"]).map(|m| m.to_string()).collect()
            }
            Model::Tasks(_) => cluster::METRICS.iter().chain(&["gossip_rounds"]).map(|m| m.to_string()).collect(),
            Model::Services(_) => callgraph::METRICS.iter().map(|m| m.to_string()).collect(),
            Model::Colocation(_) => interference::METRICS.iter().map(|m| m.to_string()).collect(),
            Model::Mitigation(_) => deoxys::METRICS.iter().map(|m| m.to_string()).collect(),
            Model::Workflow(_) => workflow_scenario::METRICS.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// What one run needs: per-job state and two events per task.
    pub fn estimate(&self, policy: &str, params: &Params) -> Result<Estimate, ScenarioError> {
        let mut e = Estimate::default();
        match &self.model {
            Model::Spark(s) => {
                let jobs = (s.stream.initial_jobs + s.stream.jobs) as u64;
                let n = s.queries.len().max(1) as u64;
                let mean_tasks = s.queries.iter().map(|q| q.tasks()).sum::<u64>() / n;
                let mean_stages = s.queries.iter().map(|q| q.stages.len() as u64).sum::<u64>() / n;
                e.memory("job and stage state", jobs.saturating_mul(mean_stages.saturating_mul(40) + 200));
                e.events("task starts and ends", jobs.saturating_mul(mean_tasks).saturating_mul(2));
            }
            Model::Tasks(t) => {
                let tasks = t.tasks_estimate();
                let slots = (t.nodes.count as u64).saturating_mul(u64::from(t.nodes.slots));
                e.memory("jobs, tasks and queues", tasks.saturating_mul(48));
                e.memory("node slots", slots.saturating_mul(16));
                if policy == "murmuration" {
                    let instances = params.u64("instances").ok().flatten().unwrap_or(4);
                    e.memory("each instance's slot estimates", instances.saturating_mul(slots).saturating_mul(8));
                }
                e.events("deliveries, starts and ends", tasks.saturating_mul(4));
            }
            Model::Services(sv) => {
                let calls = sv.calls_estimate();
                e.memory("requests", (sv.load.requests as u64).saturating_mul(24));
                e.memory("calls in flight", calls.min(10_000_000).saturating_mul(64));
                e.events("reaches, checks and answers", calls.saturating_mul(4));
            }
            Model::Colocation(episodes) => {
                e.memory("per-episode results", (*episodes as u64).saturating_mul(16));
                e.events("control intervals", (*episodes as u64).saturating_mul(u64::from(interference::MAX_STEPS)));
            }
            Model::Workflow(wf) => {
                let tasks = wf.tasks_estimate();
                e.memory("tasks, items, plans and queues", tasks.saturating_mul(400));
                e.events("task ends and transfers", tasks.saturating_mul(6));
            }
            Model::Mitigation(study) => {
                let rows = (study.train + study.test) as u64;
                // Rows, per-tree node arrays (about a node per 10 rows).
                e.memory("events", rows.saturating_mul(80));
                e.memory(
                    "forests",
                    (study.trees as u64).saturating_mul(study.train as u64 / 10).saturating_mul(6 * 48),
                );
                e.events(
                    "tree-row visits",
                    (study.trees as u64).saturating_mul(study.train as u64).saturating_mul(6 * 40),
                );
            }
        }
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
        let scenario = Scenario::from_params(&params(&[("workload.jobs", Value::Int(20))])).expect("valid");
        assert!(scenario.fallbacks().is_empty());
        let Model::Spark(s) = &scenario.model else { panic!("the default model") };
        let a = s.submissions(3);
        let b = s.submissions(3);
        assert_eq!(a.len(), 30);
        assert!(a.iter().zip(&b).all(|(x, y)| x.at == y.at && x.spec.name == y.spec.name));
        assert!(a[..10].iter().all(|x| x.at == SimTime::ZERO));
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        let none = Params::new("policy", None);
        for p in REGISTRY.iter().filter(|p| p.model() == "executors") {
            let out = scenario.run(p.name, &none, 3, &mut |_| {}).expect("runs");
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
        let scenario = Scenario::from_params(&params(&[
            ("workload.sizes", Value::Str("2g".into())),
            ("workload.weighted", Value::Bool(true)),
            ("workload.max_weight", Value::Int(3)),
        ]))
        .expect("valid");
        let Model::Spark(s) = &scenario.model else { panic!("the default model") };
        assert_eq!(s.queries.len(), 22);
        let subs = s.submissions(1);
        assert!(subs.iter().all(|x| x.spec.name.starts_with("2g/") && (1.0..=3.0).contains(&x.weight)));
        assert!(subs.iter().any(|x| x.weight > 1.0));
        let e = scenario.check("mc-wscpt", &params(&[("threshold", Value::Int(-1))])).expect_err("negative");
        assert!(e.to_string().contains("threshold"), "{e}");
        let e = scenario.check("murmuration", &Params::new("policy", None)).expect_err("another model");
        assert!(e.to_string().contains("available: mc-wscpt, fifo"), "{e}");
    }
}
