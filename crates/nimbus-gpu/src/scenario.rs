//! Building a run from scenario parameters: the cluster, the workload and
//! the engine settings, loaded once and shared by every (policy, seed) run.
//!
//! Keys (under the scenario's tables):
//! - `[[cluster.servers]]`: `gpu` (type name as the workload's throughput
//!   table spells it), `count` (servers), `gpus_per_server`, and either
//!   `speed` (default 1.0) or `speed_min`/`speed_max` (a per-server factor
//!   drawn uniformly once per seed, from the `server-speed` stream).
//! - `[workload]`: `kind` = `gavel-generator` | `gavel-trace`, with
//!   `throughputs` (a Gavel throughput JSON; the fitted synthetic table when
//!   absent or when the file is missing, which the results then say), and
//!   per kind: `jobs_per_hour`, `multi_gpu`, `multi_priority`,
//!   `measure = [first, end)` job ids, `max_jobs` (generator); `path`
//!   (trace). Relative paths are resolved against the working directory.
//! - `[engine]`: `round_s` (override the policy's), `max_hours`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nimbus_sim::output::RunOutput;
use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::{RngStreams, SimDuration, SimTime};
use nimbus_trace::TraceError;
use nimbus_trace::gavel::{self, GavelJob, ThroughputTable};

use crate::cluster::{Cluster, GpuType, Server};
use crate::engine::{self, Arrivals, EngineConfig, JobSource, StopRule};
use crate::job::{Job, JobId, Work};
use crate::policy::{self, PolicyEnv};

/// Why a scenario cannot be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A key is missing, mistyped or unknown.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A trace or data file is malformed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The combination of settings cannot work.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
struct ServerGroup {
    gpu: String,
    count: u32,
    gpus_per_server: u32,
    speed: (f64, f64),
}

#[derive(Debug, Clone)]
enum WorkloadSpec {
    GavelGenerator { options: gavel::GeneratorOptions, measure: Option<(usize, usize)>, max_jobs: Option<usize> },
    GavelTrace { jobs: Arc<Vec<GavelJob>> },
}

/// A prepared GPU scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    groups: Vec<ServerGroup>,
    workload: WorkloadSpec,
    table: Arc<ThroughputTable>,
    engine: EngineConfig,
    fallbacks: Vec<String>,
}

fn resolve(path: &str) -> PathBuf {
    PathBuf::from(path)
}

impl Scenario {
    /// Reads the `cluster`, `workload` and `engine` tables of a scenario.
    pub fn from_params(root: &Params) -> Result<Self, ScenarioError> {
        let cluster =
            root.table("cluster")?.ok_or_else(|| root.error("cluster", "is required: the servers of the cluster"))?;
        let mut groups = Vec::new();
        for server in cluster.tables("servers")? {
            let gpu = server.required_str("gpu")?.to_string();
            let count = server.u64("count")?.ok_or_else(|| server.error("count", "is required but missing"))?;
            let gpus_per_server = server.u64_or("gpus_per_server", 1)?;
            if count == 0 || gpus_per_server == 0 {
                return Err(server.error("count", "servers and GPUs per server must be at least 1").into());
            }
            if count > 100_000 || gpus_per_server > 64 {
                return Err(server.error("count", "at most 100,000 servers of at most 64 GPUs per group").into());
            }
            let speed = match (server.f64("speed_min")?, server.f64("speed_max")?) {
                (Some(lo), Some(hi)) if 0.0 < lo && lo <= hi => (lo, hi),
                (None, None) => {
                    let s = server.positive_f64_or("speed", 1.0)?;
                    (s, s)
                }
                _ => {
                    return Err(server
                        .error("speed_min", "give both speed_min and speed_max, with 0 < speed_min <= speed_max")
                        .into());
                }
            };
            server.finish(&["gpu", "count", "gpus_per_server", "speed", "speed_min", "speed_max"])?;
            groups.push(ServerGroup { gpu, count: count as u32, gpus_per_server: gpus_per_server as u32, speed });
        }
        if groups.is_empty() {
            return Err(cluster.error("servers", "is required: at least one [[cluster.servers]] group").into());
        }
        cluster.finish(&["servers"])?;

        let workload =
            root.table("workload")?.ok_or_else(|| root.error("workload", "is required: where the jobs come from"))?;
        let kind = workload.choice_or("kind", &["gavel-generator", "gavel-trace"], "gavel-generator")?;
        let mut fallbacks = Vec::new();
        let table = match workload.str("throughputs")? {
            Some(path) => {
                let path = resolve(path);
                if path.exists() {
                    ThroughputTable::read(&path)?
                } else {
                    fallbacks.push(format!(
                        "throughput table {} not found; used the synthetic table fitted to Gavel's",
                        path.display()
                    ));
                    ThroughputTable::synthetic()
                }
            }
            None => ThroughputTable::synthetic(),
        };
        let spec = match kind {
            "gavel-generator" => {
                let options = gavel::GeneratorOptions {
                    jobs_per_hour: workload.positive_f64_or("jobs_per_hour", 2.0)?,
                    multi_gpu: workload.bool_or("multi_gpu", false)?,
                    multi_priority: workload.bool_or("multi_priority", false)?,
                    fixed_duration_s: workload.f64("fixed_duration_s")?,
                };
                let measure = match workload.u64_list("measure")? {
                    Some(v) if v.len() == 2 && v[0] < v[1] => Some((v[0] as usize, v[1] as usize)),
                    Some(_) => {
                        return Err(workload.error("measure", "expected [first, end) job ids with first < end").into());
                    }
                    None => None,
                };
                let max_jobs = workload.u64("max_jobs")?.map(|n| n as usize);
                if measure.is_none() && max_jobs.is_none() {
                    return Err(workload
                        .error(
                            "max_jobs",
                            "a generated workload needs `max_jobs` or a `measure` window, or it never ends",
                        )
                        .into());
                }
                if let (Some((_, end)), Some(max)) = (measure, max_jobs)
                    && end > max
                {
                    return Err(workload
                        .error("measure", format!("the window ends at job {end} but only {max} jobs are generated"))
                        .into());
                }
                WorkloadSpec::GavelGenerator { options, measure, max_jobs }
            }
            _ => {
                let path = resolve(workload.required_str("path")?);
                let jobs = gavel::read_trace(&path)?;
                if jobs.is_empty() {
                    return Err(TraceError::file(&path, "the trace has no jobs").into());
                }
                WorkloadSpec::GavelTrace { jobs: Arc::new(jobs) }
            }
        };
        workload.finish(&[
            "kind",
            "throughputs",
            "jobs_per_hour",
            "multi_gpu",
            "multi_priority",
            "fixed_duration_s",
            "measure",
            "max_jobs",
            "path",
        ])?;

        let mut engine = EngineConfig {
            stop: match &spec {
                WorkloadSpec::GavelGenerator { measure: Some(_), .. } => StopRule::MeasuredJobs,
                _ => StopRule::AllJobs,
            },
            ..EngineConfig::default()
        };
        if let Some(e) = root.table("engine")? {
            if let Some(r) = e.f64("round_s")? {
                if r <= 0.0 {
                    return Err(e.error("round_s", "expected a positive number of seconds").into());
                }
                engine.round_s = Some(r);
            }
            if let Some(h) = e.f64("max_hours")? {
                if h <= 0.0 {
                    return Err(e.error("max_hours", "expected a positive number of hours").into());
                }
                engine.max_time = SimDuration::from_secs_f64(h * 3600.0);
            }
            e.finish(&["round_s", "max_hours"])?;
        }

        let scenario = Scenario { groups, workload: spec, table: Arc::new(table), engine, fallbacks };
        // Every cluster GPU type must exist in the throughput table.
        let workers = scenario.table.worker_types();
        for g in &scenario.groups {
            if !workers.contains(&g.gpu) {
                return Err(ScenarioError::Invalid(format!(
                    "cluster GPU type `{}` is not in the throughput table ({}); available: {}",
                    g.gpu,
                    scenario.table.origin,
                    workers.join(", ")
                )));
            }
        }
        Ok(scenario)
    }

    /// Data substitutions made while preparing (e.g. a synthetic stand-in
    /// for a missing file); results built on them are not comparable with
    /// published numbers.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// The cluster for one seed (server speeds are drawn per seed).
    pub fn cluster(&self, seed: u64) -> Cluster {
        let mut rng = RngStreams::new(seed).stream("server-speed");
        let mut gpu_types: Vec<GpuType> = Vec::new();
        let mut servers = Vec::new();
        for g in &self.groups {
            let type_id = match gpu_types.iter().position(|t| t.name == g.gpu) {
                Some(i) => i,
                None => {
                    let spec = nimbus_model::gpu(&g.gpu);
                    gpu_types.push(GpuType {
                        name: g.gpu.clone(),
                        fp32_tflops: spec.map(|s| s.fp32_tflops),
                        intra_node_gbps: nimbus_model::hardware::PCIE3_X16.bandwidth_gbps,
                        inter_node_gbit: nimbus_model::hardware::NIC_25GBE.line_rate_gbit,
                    });
                    gpu_types.len() - 1
                }
            };
            for _ in 0..g.count {
                let speed = if g.speed.0 == g.speed.1 { g.speed.0 } else { rng.uniform_range(g.speed.0, g.speed.1) };
                servers.push(Server { id: servers.len(), gpu_type: type_id, gpus: g.gpus_per_server, speed });
            }
        }
        Cluster { gpu_types, servers }
    }

    /// Runs one policy with one seed.
    pub fn run(
        &self,
        policy_name: &str,
        policy_params: &Params,
        seed: u64,
        on_progress: impl FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let info = policy::find(policy_name).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "unknown GPU policy `{policy_name}`; available: {}",
                policy::REGISTRY.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let cluster = self.cluster(seed);
        let env = PolicyEnv { seed, cluster: cluster.clone() };
        let mut policy = (info.build)(policy_params, &env)?;
        let types: Vec<String> = cluster.gpu_types.iter().map(|t| t.name.clone()).collect();
        let arrivals = match &self.workload {
            WorkloadSpec::GavelGenerator { options, measure, max_jobs } => Arrivals::Generated(Box::new(GavelSource {
                generator: gavel::Generator::new(seed, options.clone()),
                table: Arc::clone(&self.table),
                types,
                measure: *measure,
                max_jobs: *max_jobs,
            })),
            WorkloadSpec::GavelTrace { jobs } => {
                let mut list: Vec<Job> = jobs
                    .iter()
                    .enumerate()
                    .map(|(i, j)| steps_job(i, j, &self.table, &types, true))
                    .collect::<Result<_, _>>()
                    .map_err(ScenarioError::Invalid)?;
                list.sort_by_key(|j| j.arrival);
                Arrivals::Fixed(list)
            }
        };
        let (total_s, mut progress) = (self.expected_span_s(), on_progress);
        let result = engine::run(&cluster, arrivals, policy.as_mut(), &self.engine, |t: SimTime| {
            progress((t.as_secs_f64() / total_s).min(1.0));
        })
        .map_err(ScenarioError::Invalid)?;
        let mut output = crate::metrics::output(&cluster, &result);
        output.notes.extend(self.fallbacks.iter().cloned());
        Ok(output)
    }

    /// A rough simulated span for progress reporting.
    fn expected_span_s(&self) -> f64 {
        match &self.workload {
            WorkloadSpec::GavelGenerator { options, measure, max_jobs } => {
                let jobs = measure.map(|m| m.1).or(*max_jobs).unwrap_or(1000) as f64;
                (jobs / options.jobs_per_hour * 3600.0).max(1.0)
            }
            WorkloadSpec::GavelTrace { jobs } => jobs.last().map_or(1.0, |j| j.arrival_s.max(1.0) * 1.5),
        }
    }
}

fn steps_job(
    id: JobId,
    job: &GavelJob,
    table: &ThroughputTable,
    types: &[String],
    measured: bool,
) -> Result<Job, String> {
    let isolated =
        types.iter().map(|t| table.isolated(t, &job.job_type, job.scale_factor).unwrap_or(0.0)).collect::<Vec<_>>();
    if isolated.iter().all(|v| *v <= 0.0)
        && !table.by_worker.values().any(|m| m.contains_key(&(job.job_type.clone(), job.scale_factor)))
    {
        return Err(format!(
            "job {id}: job type ('{}', {}) is not in the throughput table ({})",
            job.job_type, job.scale_factor, table.origin
        ));
    }
    Ok(Job {
        id,
        name: format!("job-{id}"),
        arrival: SimTime::from_secs_f64(job.arrival_s),
        work_total: job.total_steps,
        priority_weight: job.priority_weight,
        restart_penalty_s: 0.0,
        measured,
        work: Work::Steps { job_type: job.job_type.clone(), scale_factor: job.scale_factor, isolated },
    })
}

struct GavelSource {
    generator: gavel::Generator,
    table: Arc<ThroughputTable>,
    types: Vec<String>,
    measure: Option<(usize, usize)>,
    max_jobs: Option<usize>,
}

impl JobSource for GavelSource {
    fn next_job(&mut self, id: JobId) -> Result<Option<Job>, String> {
        if self.max_jobs.is_some_and(|m| id >= m) {
            return Ok(None);
        }
        let job = self.generator.next_job(&self.table)?;
        let measured = self.measure.is_some_and(|(a, b)| (a..b).contains(&id));
        steps_job(id, &job, &self.table, &self.types, measured).map(Some)
    }
}

/// A path relative to the working directory, for messages.
pub fn display_path(path: &Path) -> String {
    path.display().to_string()
}
