//! Building a run from scenario parameters: the cluster, the workload and
//! the engine settings, loaded once and shared by every (policy, seed) run.
//!
//! Keys (under the scenario's tables):
//! - `[[cluster.servers]]`: `gpu` (type name as the workload's throughput
//!   table spells it), `count` (servers), `gpus_per_server`, and either
//!   `speed` (default 1.0) or `speed_min`/`speed_max` (a per-server factor
//!   drawn uniformly once per seed, from the `server-speed` stream).
//!   `profile` names the type's measured profiles in Sia-style data (`aws`,
//!   `dgx-ext`, `rtx`) when it differs from `gpu`.
//! - `[workload]`: `kind` = `gavel-generator` | `gavel-trace` |
//!   `sia-workload`.
//!   - Gavel kinds: `throughputs` (a Gavel throughput JSON; the fitted
//!     synthetic table when absent or when the file is missing, which the
//!     results then say), and `jobs_per_hour`, `multi_gpu`,
//!     `multi_priority`, `measure = [first, end)` job ids, `max_jobs`
//!     (generator) or `path` (trace).
//!   - `sia-workload`: `path` to a Sia/Pollux workload CSV, where `{seed}`
//!     is replaced by the run's seed (so seeds 1–8 run workloads 1–8),
//!     `traces`, the directory of application profiles, and `calibration`:
//!     `reference` (default; the reference simulator's per-application
//!     slowdown factors) or `none` (profiled speed).
//!
//! Relative paths are resolved against the working directory.
//! - `[engine]`: `round_s` (override the policy's), `max_hours`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use nimbus_sim::estimate::{Estimate, product, saturating};
use nimbus_sim::output::RunOutput;
use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::{RngStreams, SimDuration, SimTime};
use nimbus_trace::TraceError;
use nimbus_trace::gavel::{self, GavelJob, ThroughputTable};
use nimbus_trace::sia::{self, WorkloadJob};

use crate::cluster::{Cluster, GpuType, Server};
use crate::engine::{self, Arrivals, EngineConfig, JobSource, StopRule};
use crate::goodput::{Application, Batch, SiaJob};
use crate::job::{Job, JobId, Work};
use crate::policy::{self, BatchMode, Policy, PolicyEnv};

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
    profile: Option<String>,
    count: u32,
    gpus_per_server: u32,
    speed: (f64, f64),
}

#[derive(Debug, Clone)]
enum WorkloadSpec {
    GavelGenerator {
        options: gavel::GeneratorOptions,
        measure: Option<(usize, usize)>,
        max_jobs: Option<usize>,
        table: Arc<ThroughputTable>,
    },
    GavelTrace {
        jobs: Arc<Vec<GavelJob>>,
        table: Arc<ThroughputTable>,
    },
    Sia {
        workloads: BTreeMap<u64, Arc<Vec<WorkloadJob>>>,
        apps: BTreeMap<String, Arc<Application>>,
    },
}

/// A prepared GPU scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    groups: Vec<ServerGroup>,
    workload: WorkloadSpec,
    engine: EngineConfig,
    fallbacks: Vec<String>,
}

/// A path from a scenario: relative paths are relative to the working
/// directory (where users run `nimbus` from, normally the repository root).
fn resolve(path: &str) -> PathBuf {
    PathBuf::from(path)
}

/// The most jobs the Gavel generator may be asked for.
pub const MAX_GENERATED_JOBS: usize = 10_000_000;

impl Scenario {
    /// The metrics a run of this scenario reports.
    pub fn metric_names(&self) -> Vec<String> {
        crate::metrics::METRICS.iter().map(|m| m.to_string()).collect()
    }

    /// Reads the `cluster`, `workload` and `engine` tables of a scenario,
    /// loading the data the given seeds need.
    #[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // user input: checked conversions only
    pub fn from_params(root: &Params, seeds: &[u64]) -> Result<Self, ScenarioError> {
        let cluster =
            root.table("cluster")?.ok_or_else(|| root.error("cluster", "is required: the servers of the cluster"))?;
        let mut groups = Vec::new();
        for server in cluster.tables("servers")? {
            let gpu = server.required_str("gpu")?.to_string();
            let profile = server.str("profile")?.map(str::to_string);
            server.require("count")?;
            let count = server.u32_in("count", 1, 1..=100_000)?;
            let gpus_per_server = server.u32_in("gpus_per_server", 1, 1..=64)?;
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
            server.finish(&["gpu", "profile", "count", "gpus_per_server", "speed", "speed_min", "speed_max"])?;
            groups.push(ServerGroup { gpu, profile, count, gpus_per_server, speed });
        }
        if groups.is_empty() {
            return Err(cluster.error("servers", "is required: at least one [[cluster.servers]] group").into());
        }
        cluster.finish(&["servers"])?;

        let workload =
            root.table("workload")?.ok_or_else(|| root.error("workload", "is required: where the jobs come from"))?;
        let kind =
            workload.choice_or("kind", &["gavel-generator", "gavel-trace", "sia-workload"], "gavel-generator")?;
        let mut fallbacks = Vec::new();
        let spec = match kind {
            "gavel-generator" | "gavel-trace" => {
                let table = Arc::new(Self::throughput_table(workload, &mut fallbacks)?);
                let workers = table.worker_types();
                for g in &groups {
                    if !workers.contains(&g.gpu) {
                        return Err(ScenarioError::Invalid(format!(
                            "cluster GPU type `{}` is not in the throughput table ({}); available: {}",
                            g.gpu,
                            table.origin,
                            workers.join(", ")
                        )));
                    }
                }
                if kind == "gavel-generator" {
                    Self::gavel_generator(workload, table)?
                } else {
                    let path = resolve(workload.required_str("path")?);
                    let jobs = gavel::read_trace(&path)?;
                    if jobs.is_empty() {
                        return Err(TraceError::file(&path, "the trace has no jobs").into());
                    }
                    WorkloadSpec::GavelTrace { jobs: Arc::new(jobs), table }
                }
            }
            _ => Self::sia_workload(workload, &groups, seeds, &mut fallbacks)?,
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
            "traces",
            "calibration",
        ])?;

        let mut engine = EngineConfig {
            stop: match &spec {
                WorkloadSpec::GavelGenerator { measure: Some(_), .. } => StopRule::MeasuredJobs,
                _ => StopRule::AllJobs,
            },
            ..EngineConfig::default()
        };
        if let Some(e) = root.table("engine")? {
            if e.contains("round_s") {
                let ns = e.duration_ns_or("round_s", 360.0, 1e9, true)?;
                if ns < 1_000_000 {
                    return Err(e.error("round_s", "a round must last at least 1 ms").into());
                }
                engine.round_s = Some(ns as f64 / 1e9);
            }
            if e.contains("max_hours") {
                engine.max_time = SimDuration::from_nanos(e.duration_ns_or("max_hours", 1.0, 3600e9, true)?);
            }
            e.finish(&["round_s", "max_hours"])?;
        }

        Ok(Scenario { groups, workload: spec, engine, fallbacks })
    }

    fn throughput_table(workload: &Params, fallbacks: &mut Vec<String>) -> Result<ThroughputTable, ScenarioError> {
        Ok(match workload.str("throughputs")? {
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
        })
    }

    fn gavel_generator(workload: &Params, table: Arc<ThroughputTable>) -> Result<WorkloadSpec, ScenarioError> {
        let options = gavel::GeneratorOptions {
            jobs_per_hour: workload.positive_f64_or("jobs_per_hour", 2.0)?,
            multi_gpu: workload.bool_or("multi_gpu", false)?,
            multi_priority: workload.bool_or("multi_priority", false)?,
            fixed_duration_s: match workload.contains("fixed_duration_s") {
                true => Some(workload.f64_in("fixed_duration_s", 1.0, 1e-3..=1e10)?),
                false => None,
            },
        };
        let measure = match workload.u64_list("measure")? {
            Some(v) if v.len() == 2 && v[0] < v[1] && v[1] <= MAX_GENERATED_JOBS as u64 => {
                Some((usize::try_from(v[0]).unwrap_or(0), usize::try_from(v[1]).unwrap_or(MAX_GENERATED_JOBS)))
            }
            Some(_) => {
                return Err(workload
                    .error("measure", format!("expected [first, end) job ids with first < end <= {MAX_GENERATED_JOBS}"))
                    .into());
            }
            None => None,
        };
        let max_jobs = match workload.contains("max_jobs") {
            true => Some(workload.usize_in("max_jobs", 1, 1..=MAX_GENERATED_JOBS)?),
            false => None,
        };
        if measure.is_none() && max_jobs.is_none() {
            return Err(workload
                .error("max_jobs", "a generated workload needs `max_jobs` or a `measure` window, or it never ends")
                .into());
        }
        if let (Some((_, end)), Some(max)) = (measure, max_jobs)
            && end > max
        {
            return Err(workload
                .error("measure", format!("the window ends at job {end} but only {max} jobs are generated"))
                .into());
        }
        Ok(WorkloadSpec::GavelGenerator { options, measure, max_jobs, table })
    }

    fn sia_workload(
        workload: &Params,
        groups: &[ServerGroup],
        seeds: &[u64],
        fallbacks: &mut Vec<String>,
    ) -> Result<WorkloadSpec, ScenarioError> {
        let template = workload.required_str("path")?;
        let traces = resolve(workload.required_str("traces")?);
        let calibrated = workload.choice_or("calibration", &["reference", "none"], "reference")? == "reference";
        let mut profiles: Vec<String> = Vec::new();
        for g in groups {
            let name = g.profile.clone().unwrap_or_else(|| g.gpu.clone());
            if !profiles.contains(&name) {
                profiles.push(name);
            }
        }
        let mut workloads = BTreeMap::new();
        let mut needed: Vec<String> = Vec::new();
        let synthetic = !traces.is_dir();
        for &seed in seeds {
            let path = resolve(&template.replace("{seed}", &seed.to_string()));
            let jobs = if path.exists() || !synthetic {
                sia::read_workload(&path)?
            } else {
                crate::synthetic::sia_workload(seed)
            };
            if jobs.is_empty() {
                return Err(TraceError::file(&path, "the workload has no jobs").into());
            }
            for j in &jobs {
                if !needed.contains(&j.application) {
                    needed.push(j.application.clone());
                }
            }
            workloads.insert(seed, Arc::new(jobs));
        }
        if synthetic {
            fallbacks.push(format!(
                "application profiles {} not found; used synthetic profiles and workloads calibrated to Sia's",
                traces.display()
            ));
        }
        let mut apps = BTreeMap::new();
        for app in needed {
            let loaded = if synthetic {
                crate::synthetic::sia_application(&app, &profiles, calibrated)
                    .ok_or_else(|| ScenarioError::Invalid(format!("no synthetic profile for application `{app}`")))?
            } else {
                Application::load(&traces, &app, &profiles, calibrated)?
            };
            apps.insert(app, Arc::new(loaded));
        }
        Ok(WorkloadSpec::Sia { workloads, apps })
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
                        profile: g.profile.clone(),
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
        let env = PolicyEnv { seed, cluster: self.cluster(seed) };
        let policy = (info.build)(policy_params, &env)?;
        self.run_with(policy, seed, on_progress)
    }

    /// Runs one seed under a policy built by the caller (a policy written
    /// outside the registry, such as a Python class).
    pub fn run_with(
        &self,
        mut policy: Box<dyn Policy>,
        seed: u64,
        on_progress: impl FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let cluster = self.cluster(seed);
        let types: Vec<String> = cluster.gpu_types.iter().map(|t| t.name.clone()).collect();
        let arrivals = match &self.workload {
            WorkloadSpec::GavelGenerator { options, measure, max_jobs, table } => {
                Arrivals::Generated(Box::new(GavelSource {
                    generator: gavel::Generator::new(seed, options.clone()),
                    table: Arc::clone(table),
                    types,
                    measure: *measure,
                    max_jobs: *max_jobs,
                }))
            }
            WorkloadSpec::GavelTrace { jobs, table } => {
                let mut list: Vec<Job> = jobs
                    .iter()
                    .enumerate()
                    .map(|(i, j)| steps_job(i, j, table, &types, true))
                    .collect::<Result<_, _>>()
                    .map_err(ScenarioError::Invalid)?;
                list.sort_by_key(|j| j.arrival);
                Arrivals::Fixed(list)
            }
            WorkloadSpec::Sia { workloads, apps } => {
                let jobs = workloads.get(&seed).ok_or_else(|| {
                    ScenarioError::Invalid(format!(
                        "seed {seed} was not prepared; prepared seeds: {:?}",
                        workloads.keys()
                    ))
                })?;
                Arrivals::Fixed(sia_jobs(jobs, apps, policy.batch_mode()))
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

    /// What one run of `policy_name` needs: memory for its jobs, rounds
    /// and per-job output; events are rounds (each round's cost grows
    /// with the jobs present, which the memory term covers).
    pub fn estimate(&self, policy_name: &str, policy_params: &Params) -> Result<Estimate, ScenarioError> {
        let info = policy::find(policy_name)
            .ok_or_else(|| ScenarioError::Invalid(format!("unknown GPU policy `{policy_name}`")))?;
        let env = PolicyEnv { seed: 0, cluster: self.cluster(0) };
        let round_s = self.engine.round_s.unwrap_or((info.build)(policy_params, &env)?.round_s()).max(1e-3);
        let jobs = match &self.workload {
            WorkloadSpec::GavelGenerator { measure, max_jobs, .. } => {
                // With a measurement window, arrivals go on until the
                // window's jobs finish: allow twice the window.
                max_jobs.map_or_else(|| measure.map_or(0, |m| m.1.saturating_mul(2)), |m| m) as u64
            }
            WorkloadSpec::GavelTrace { jobs, .. } => jobs.len() as u64,
            WorkloadSpec::Sia { workloads, .. } => workloads.values().map(|w| w.len()).max().unwrap_or(0) as u64,
        };
        let span_rounds = saturating(self.expected_span_s() * 4.0 / round_s);
        let rounds =
            span_rounds.min(self.engine.max_rounds).min(saturating(self.engine.max_time.as_secs_f64() / round_s));
        let gpus: u64 = self.groups.iter().map(|g| u64::from(g.count) * u64::from(g.gpus_per_server)).sum();
        let mut e = Estimate::default();
        e.memory("base", 32 << 20);
        e.memory(format!("{jobs} jobs"), product(&[jobs, 4096]));
        e.memory(format!("{rounds} rounds of statistics"), product(&[rounds, 64]));
        e.memory(format!("{gpus} GPUs"), product(&[gpus, 256]));
        e.output_bytes = product(&[jobs, 1024]).saturating_add(1 << 20);
        e.events(format!("{rounds} rounds of {round_s} s"), rounds);
        e.events(format!("{jobs} job arrivals"), jobs);
        Ok(e)
    }

    /// A rough simulated span for progress reporting.
    fn expected_span_s(&self) -> f64 {
        match &self.workload {
            WorkloadSpec::GavelGenerator { options, measure, max_jobs, .. } => {
                let jobs = measure.map(|m| m.1).or(*max_jobs).unwrap_or(1000) as f64;
                (jobs / options.jobs_per_hour * 3600.0).max(1.0)
            }
            WorkloadSpec::GavelTrace { jobs, .. } => jobs.last().map_or(1.0, |j| j.arrival_s.max(1.0) * 1.5),
            WorkloadSpec::Sia { workloads, .. } => {
                let last =
                    workloads.values().filter_map(|w| w.iter().map(|j| j.time_s).reduce(f64::max)).fold(0.0, f64::max);
                (last * 1.5).max(3600.0)
            }
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

/// Jobs of a Sia/Pollux workload, sorted by submission time, with the batch
/// mode the policy asks for.
fn sia_jobs(rows: &[WorkloadJob], apps: &BTreeMap<String, Arc<Application>>, mode: BatchMode) -> Vec<Job> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|a, b| rows[*a].time_s.total_cmp(&rows[*b].time_s));
    order
        .into_iter()
        .enumerate()
        .map(|(id, i)| {
            let row = &rows[i];
            let app = Arc::clone(&apps[&row.application]);
            let max_gpus = (app.max_batch_size / app.local_bsz_range(0).map_or(1, |r| r.0).max(1)).clamp(1, 64);
            let batch = match mode {
                BatchMode::User => Batch::Fixed(row.batch_size),
                BatchMode::Adaptive => Batch::Adaptive,
                BatchMode::PerGpu => Batch::PerGpu(row.batch_size.div_ceil(row.num_replicas.max(1))),
            };
            Job {
                id,
                name: row.name.clone(),
                arrival: SimTime::from_secs_f64(row.time_s),
                work_total: app.total_progress(),
                priority_weight: 1.0,
                restart_penalty_s: app.constants.restart_s,
                measured: true,
                work: Work::Adaptive {
                    application: row.application.clone(),
                    requested_gpus: row.num_replicas,
                    model: Arc::new(SiaJob { app, batch, max_gpus }),
                },
            }
        })
        .collect()
}
