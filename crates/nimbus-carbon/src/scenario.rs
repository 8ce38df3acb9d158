//! Building a carbon run from scenario parameters.
//!
//! `[datacenter] kind` picks the model: `replay` (the default, below),
//! `fleet` (SunkCarbon: [`crate::fleet_scenario`]), `cdn` (CDN-Shifter:
//! [`crate::cdn_scenario`]), `cooling` (InferCool:
//! [`crate::cooling_scenario`]) or `modular` (SkyBox:
//! [`crate::skybox_scenario`]). Each policy runs on one model.
//!
//! Replay keys:
//! - `[workload]`, `kind`:
//!   - `opendc` (`path`: an OpenDC workload directory such as
//!     `opendc-traces/surf_week`; absent → synthetic, and the results say
//!     so);
//!   - `synthetic` (the embedded default): `tasks` (2,000) over `days` (7),
//!     arrivals following the day, run times log-normal (median 1 h), 1–8
//!     cores, 5-minute fragments of varying usage; each seed draws its own;
//!   - `vms`: VMs running cloudlets, as CloudSim's scenario files describe
//!     them ([`crate::vm_workload`]): `vms` (40,000), `vm_cores` (4),
//!     `vm_memory_mb` (2,000), `vm_mips` (1,000), `cloudlets` (50,000),
//!     `cloudlet_cores` (2), `cloudlet_mi` (10,000), CloudSim Plus'
//!     placement stress case.
//! - `[datacenter]`: `topology` (an OpenDC topology JSON; absent or unset →
//!   inline hosts: `hosts` 277, `cores` 16, `core_mhz` 2100, `memory_mb`
//!   100,000, `power` `sqrt`, `idle_w` 32, `max_w` 180, as OpenDC's SURF
//!   topology), `carbon` (a carbon-intensity file; overrides the
//!   topology's power source; absent → a synthetic diurnal trace, said
//!   so), `carbon_column` (which column; zone columns of wide files),
//!   `pue` (1.0), `sample_h` (1: the utilisation samples and series),
//!   `failures` (an OpenDC failure trace, Parquet or CSV, such as
//!   `opendc-demo/failure_traces/Facebook_user_reported.parquet`: hosts
//!   fail as [`datacenter::FailureModel`] describes; absent file → no
//!   failures, said so), `failure_repeat` (true), `failure_start_point`
//!   (0: the share of the trace skipped, then wrapped round, as OpenDC's
//!   `startPoint`), `max_failures` (10), and OpenDC's checkpointing:
//!   `checkpoint_interval_s` (off unless set), `checkpoint_duration_s`
//!   (1), `checkpoint_scaling` (1) ([`datacenter::Checkpoint`]).
//!
//! Policies are placements ([`REGISTRY`]); each also accepts `carbon` and
//! `carbon_column` (the same datacenter on another grid) so one scenario
//! can compare locations, and `failures` (another failure trace, or
//! `"none"`). A policy's file that is absent falls back to the
//! datacenter's, and the run's notes say so.

use std::path::{Path, PathBuf};

use nimbus_model::power::{PowerExtras, PowerModel};
use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Series, Table};
use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::rng::RngStreams;

use crate::datacenter::{self, Config, Job, Outcome, Placement, ShiftRule, TimeShift, Workload};
use crate::intensity::Intensity;
use crate::topology::{self, Topology};
use crate::vm_workload::VmSpec;

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
    /// Where it comes from.
    pub source: &'static str,
    /// One line.
    pub summary: &'static str,
    /// `modelled`, `validated`.
    pub fidelity: &'static str,
    /// Parameters it accepts.
    pub params: &'static [&'static str],
    /// The `[datacenter] kind` it runs on: `replay`, `fleet`, `cdn`,
    /// `cooling` or `modular`.
    pub model: &'static str,
}

const LOCATION: &[&str] = &["carbon", "carbon_column", "failures"];
const SHIFT: &[&str] = &["carbon", "carbon_column", "failures", "quantile", "window_h", "slack_factor"];
const LOWEST_WINDOW: &[&str] = &["carbon", "carbon_column", "failures", "slack_factor", "forecast_error"];

/// Every placement policy.
pub static REGISTRY: &[PolicyInfo] = &[
    PolicyInfo {
        name: "mem",
        kind: "baseline",
        source: "OpenDC prefab `Mem` (FilterScheduler: VCpu and RAM filters, RAM weigher)",
        summary: "the fitting host with the most free memory (spreads tasks)",
        fidelity: "validated (OpenDC demo energy and carbon)",
        params: LOCATION,
        model: "replay",
    },
    PolicyInfo {
        name: "mem-inv",
        kind: "baseline",
        source: "OpenDC prefab `MemInv`",
        summary: "the fitting host with the least free memory (packs tasks)",
        fidelity: "modelled",
        params: LOCATION,
        model: "replay",
    },
    PolicyInfo {
        name: "active-servers",
        kind: "baseline",
        source: "OpenDC prefab `ActiveServers`",
        summary: "the fitting host running the fewest tasks",
        fidelity: "modelled",
        params: LOCATION,
        model: "replay",
    },
    PolicyInfo {
        name: "active-servers-inv",
        kind: "baseline",
        source: "OpenDC prefab `ActiveServersInv`",
        summary: "the fitting host running the most tasks",
        fidelity: "modelled",
        params: LOCATION,
        model: "replay",
    },
    PolicyInfo {
        name: "first-fit",
        kind: "baseline",
        source: "bin packing (CloudSim Plus FirstFit)",
        summary: "the first host in topology order that fits",
        fidelity: "modelled",
        params: LOCATION,
        model: "replay",
    },
    PolicyInfo {
        name: "worst-fit",
        kind: "baseline",
        source: "bin packing (CloudSim Plus WorstFit)",
        summary: "the fitting host with the most free cores",
        fidelity: "modelled",
        params: LOCATION,
        model: "replay",
    },
    PolicyInfo {
        name: "best-fit",
        kind: "baseline",
        source: "bin packing (CloudSim Plus BestFit)",
        summary: "the fitting host with the fewest free cores",
        fidelity: "modelled",
        params: LOCATION,
        model: "replay",
    },
    PolicyInfo {
        name: "random",
        kind: "baseline",
        source: "OpenDC prefab `Random`",
        summary: "a fitting host uniformly at random (seeded)",
        fidelity: "modelled",
        params: LOCATION,
        model: "replay",
    },
    PolicyInfo {
        name: "timeshift",
        kind: "baseline",
        source: "OpenDC prefab `Timeshift`; Wiesner et al., Let's Wait Awhile (Middleware'21)",
        summary: "`mem` placement; a task waits while intensity is above the `quantile` (0.2) of the last `window_h` (168) hours, at most `slack_factor` (2) × its run time",
        fidelity: "modelled",
        params: SHIFT,
        model: "replay",
    },
    PolicyInfo {
        name: "lowest-window",
        kind: "baseline",
        source: "Wiesner et al., Let's Wait Awhile (Middleware'21); Hanafy et al., GAIA (ASPLOS'24): the lowest-carbon window",
        summary: "`mem` placement; at submission each task picks the start within `slack_factor` (2) × its run time whose run has the lowest forecast carbon, and waits for it; forecast = the trace with a relative error of σ `forecast_error` (0: perfect)",
        fidelity: "modelled",
        params: LOWEST_WINDOW,
        model: "replay",
    },
    PolicyInfo {
        name: "operational",
        kind: "baseline",
        source: "SunkCarbon (SoCC'24): the operational-only metric",
        summary: "each job where the energy it adds × intensity is lowest (`placer` greedy or ilp)",
        fidelity: "modelled",
        params: PLACER,
        model: "fleet",
    },
    PolicyInfo {
        name: "sci",
        kind: "baseline",
        source: "Green Software Foundation SCI; SunkCarbon (SoCC'24)",
        summary: "operational cost + embodied × time share of the lifetime × share of the server's cores",
        fidelity: "modelled",
        params: PLACER,
        model: "fleet",
    },
    PolicyInfo {
        name: "core-hour",
        kind: "baseline",
        source: "per-core-hour amortisation; SunkCarbon (SoCC'24)",
        summary: "operational cost + embodied ÷ (lifetime × cores × `expected_utilization`, 0.5) per core-hour",
        fidelity: "modelled",
        params: CORE_HOUR,
        model: "fleet",
    },
    PolicyInfo {
        name: "sunk-carbon-sweep",
        kind: "paper",
        source: "SunkCarbon (SoCC'24): where embodied-inclusive metrics raise the real footprint",
        summary: "operational vs `metric` (sci) greedy placement over a grid of efficiency gaps, new-server embodied carbon, lifetimes, utilisations and intensities on two generations like the fleet's first",
        fidelity: "modelled",
        params: SWEEP,
        model: "fleet",
    },
    PolicyInfo {
        name: "latency-optimal",
        kind: "baseline",
        source: "CDN-Shifter's baseline: every user region served at its nearest site",
        summary: "no shifting; each site sized for its users' peak",
        fidelity: "modelled",
        params: &["region", "solar_fraction", "solar_on"],
        model: "cdn",
    },
    PolicyInfo {
        name: "cdn-shifter",
        kind: "paper",
        source: "CDN-Shifter (SoCC'24)",
        summary: "hourly LP routing demand to low-carbon sites within `delta_ms` (60) of added RTT; weekly capacity shifting on forecast intensity with `capacity_shifting = true` (`move_cost_kg` 50 per server)",
        fidelity: "modelled",
        params: CDN,
        model: "cdn",
    },
    PolicyInfo {
        name: "bin-packing",
        kind: "baseline",
        source: "InferCool's baseline: thermal-agnostic placement that fills one GPU's MIG slices before the next",
        summary: "instances on GPU 0's slices first, then GPU 1's, …",
        fidelity: "modelled",
        params: &["routing"],
        model: "cooling",
    },
    PolicyInfo {
        name: "round-robin",
        kind: "baseline",
        source: "thermal-agnostic round-robin placement",
        summary: "instance k on GPU k mod N",
        fidelity: "modelled",
        params: &["routing"],
        model: "cooling",
    },
    PolicyInfo {
        name: "infercool",
        kind: "paper",
        source: "InferCool (SoCC'24)",
        summary: "instances, heaviest first, on the GPU with the lowest predicted power that has a free MIG slice; the plant then supplies the warmest coolant the hottest GPU allows; `routing = \"headroom\"` also splits each service's requests to minimise the hottest GPU's power (any placement takes it)",
        fidelity: "modelled",
        params: &["routing"],
        model: "cooling",
    },
    PolicyInfo {
        name: "single-farm",
        kind: "baseline",
        source: "SkyBox's baseline: one modular datacenter at one farm",
        summary: "all capacity at `farm` (the first farm when unset), run by the same rolling MIP",
        fidelity: "modelled",
        params: SINGLE_FARM,
        model: "modular",
    },
    PolicyInfo {
        name: "best-cv",
        kind: "baseline",
        source: "SkyBox's baseline: colocation with the farm of the lowest CV alone",
        summary: "all capacity at the steadiest farm over the history, run by the same rolling MIP",
        fidelity: "modelled",
        params: crate::skybox_scenario::CONTROLLER_KEYS,
        model: "modular",
    },
    PolicyInfo {
        name: "skybox",
        kind: "paper",
        source: "SkyBox (SoCC'24)",
        summary: "`min_farms` (2) to `farms` (3) farms of CV ≤ `max_cv` (2), pairwise correlation ≤ `max_correlation` (0.3), lowest combined CV; VMs placed and migrated by a rolling MIP on forecast output (`forecaster` linear, `horizon_h` 24, `replan_h` 6)",
        fidelity: "modelled",
        params: SKYBOX,
        model: "modular",
    },
];

const SINGLE_FARM: &[&str] = &["farm", "forecaster", "horizon_h", "replan_h", "migration_kwh", "eviction_kwh"];
const SKYBOX: &[&str] = &[
    "farms",
    "min_farms",
    "max_cv",
    "max_correlation",
    "forecaster",
    "horizon_h",
    "replan_h",
    "migration_kwh",
    "eviction_kwh",
];

const PLACER: &[&str] = &["placer", "slot_h"];
const CORE_HOUR: &[&str] = &["placer", "slot_h", "expected_utilization"];
const CDN: &[&str] =
    &["delta_ms", "capacity_shifting", "move_cost_kg", "price_weight", "region", "solar_fraction", "solar_on"];
const SWEEP: &[&str] = &["metric", "gaps", "new_embodied_kg", "lifetimes", "utilizations", "intensities", "days"];

/// Metrics every run reports.
pub const METRICS: &[&str] = &[
    "energy_kwh",
    "facility_energy_kwh",
    "carbon_kg",
    "intensity_g_per_kwh",
    "dynamic_energy_kwh",
    "dynamic_carbon_kg",
    "dynamic_intensity_g_per_kwh",
    "makespan_h",
    "wait_s_mean",
    "wait_s_p99",
    "tasks_completed",
    "tasks_terminated",
    "hosts_used",
    "failures_injected",
    "task_interruptions",
    "tasks_failed_out",
    "lost_core_h",
    "mean_utilization",
    "mean_sampled_utilization",
    "peak_power_kw",
    "events",
];

/// Where tasks come from.
#[derive(Debug, Clone)]
enum Tasks {
    File(Workload),
    Synthetic { tasks: usize, days: f64 },
    Vms(VmSpec),
}

/// A prepared carbon scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    model: Model,
}

#[derive(Debug, Clone)]
enum Model {
    Replay(Replay),
    Fleet(crate::fleet_scenario::FleetScenario),
    Cdn(crate::cdn_scenario::CdnScenario),
    Cooling(crate::cooling_scenario::CoolingScenario),
    Modular(crate::skybox_scenario::ModularScenario),
}

/// The datacenter replay's settings.
#[derive(Debug, Clone)]
struct Replay {
    tasks: Tasks,
    topology: Topology,
    intensity: Intensity,
    carbon_column: Option<String>,
    pue: f64,
    sample_ms: u64,
    failures: Option<datacenter::FailureModel>,
    failure_settings: FailureSettings,
    fallbacks: Vec<String>,
}

/// How a failure trace is replayed (`[datacenter]` keys).
#[derive(Debug, Clone, Copy)]
struct FailureSettings {
    repeat: bool,
    start_point: f64,
    max_failures: u32,
    checkpoint: Option<datacenter::Checkpoint>,
}

impl FailureSettings {
    /// Reads a failure trace, rotated to OpenDC's start point.
    fn load(&self, path: &Path) -> Result<datacenter::FailureModel, ScenarioError> {
        let mut failures = nimbus_trace::opendc::read_failures(nimbus_trace::Source::file(path))?;
        let k = ((failures.len() as f64 * self.start_point) as usize).min(failures.len());
        failures.rotate_left(k);
        Ok(datacenter::FailureModel {
            failures,
            repeat: self.repeat,
            max_failures: self.max_failures,
            checkpoint: self.checkpoint,
        })
    }
}

fn find(name: &str, model: &str) -> Result<&'static PolicyInfo, ScenarioError> {
    REGISTRY.iter().find(|p| p.name == name && p.model == model).ok_or_else(|| {
        ScenarioError::Invalid(format!(
            "unknown carbon policy {name:?} for a `{model}` datacenter; available: {}",
            REGISTRY.iter().filter(|p| p.model == model).map(|p| p.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

pub(crate) fn read_intensity(path: &Path, column: Option<&str>) -> Result<Intensity, ScenarioError> {
    Intensity::read(path, column).map_err(ScenarioError::Invalid)
}

impl Scenario {
    /// Reads `[workload]` and `[datacenter]` (`kind`: `replay`, the
    /// default, or `fleet`).
    pub fn from_params(root: &Params) -> Result<Scenario, ScenarioError> {
        let empty = Params::new("workload", None);
        let w = root.table("workload")?.unwrap_or(&empty);
        let empty_dc = Params::new("datacenter", None);
        let d = root.table("datacenter")?.unwrap_or(&empty_dc);
        let model = match d.choice_or("kind", &["replay", "fleet", "cdn", "cooling", "modular"], "replay")? {
            "modular" => Model::Modular(crate::skybox_scenario::ModularScenario::from_params(w, d)?),
            "cooling" => Model::Cooling(crate::cooling_scenario::CoolingScenario::from_params(w, d)?),
            "fleet" => Model::Fleet(crate::fleet_scenario::FleetScenario::from_params(w, d)?),
            "cdn" => Model::Cdn(crate::cdn_scenario::CdnScenario::from_params(w, d)?),
            _ => Model::Replay(Replay::from_params(w, d)?),
        };
        Ok(Scenario { model })
    }

    fn model_name(&self) -> &'static str {
        match self.model {
            Model::Replay(_) => "replay",
            Model::Fleet(_) => "fleet",
            Model::Cdn(_) => "cdn",
            Model::Cooling(_) => "cooling",
            Model::Modular(_) => "modular",
        }
    }

    /// Checks `policy` and its parameters.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        let info = find(policy, self.model_name())?;
        params.finish(info.params)?;
        match &self.model {
            Model::Replay(_) if is_shift(policy) => time_shift(policy, params).map(|_| ()),
            Model::Replay(_) => Ok(()),
            Model::Fleet(f) => f.check(policy, params),
            Model::Cdn(c) => c.check(policy, params),
            Model::Cooling(c) => c.check(policy, params),
            Model::Modular(m) => m.check(policy, params),
        }
    }

    /// Runs one policy with one seed.
    pub fn run(
        &self,
        policy: &str,
        params: &Params,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        self.check(policy, params)?;
        let out = match &self.model {
            Model::Replay(r) => r.run(policy, params, seed)?,
            Model::Fleet(f) => f.run(policy, params, seed)?,
            Model::Cdn(c) => c.run(policy, params)?,
            Model::Cooling(c) => c.run(policy, params)?,
            Model::Modular(m) => m.run(policy, params, seed, progress)?,
        };
        progress(1.0);
        Ok(out)
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        match &self.model {
            Model::Replay(r) => &r.fallbacks,
            Model::Fleet(f) => f.fallbacks(),
            Model::Cdn(c) => c.fallbacks(),
            Model::Cooling(c) => c.fallbacks(),
            Model::Modular(m) => m.fallbacks(),
        }
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        match &self.model {
            Model::Replay(_) => METRICS.iter().map(|m| m.to_string()).collect(),
            Model::Fleet(f) => f.metric_names(),
            Model::Cdn(c) => c.metric_names(),
            Model::Cooling(c) => c.metric_names(),
            Model::Modular(m) => m.metric_names(),
        }
    }

    /// What one run needs.
    pub fn estimate(&self, policy: &str, params: &Params) -> Result<Estimate, ScenarioError> {
        match &self.model {
            Model::Replay(r) => Ok(r.estimate()),
            Model::Fleet(f) => f.estimate(policy, params),
            Model::Cdn(c) => Ok(c.estimate()),
            Model::Cooling(c) => Ok(c.estimate()),
            Model::Modular(m) => Ok(m.estimate()),
        }
    }
}

impl Replay {
    fn from_params(w: &Params, d: &Params) -> Result<Replay, ScenarioError> {
        let mut fallbacks = Vec::new();
        let synthetic = |w: &Params| -> Result<Tasks, ParamError> {
            Ok(Tasks::Synthetic {
                tasks: w.usize_in("tasks", 2000, 1..=1_000_000)?,
                days: w.f64_in("days", 7.0, 0.1..=366.0)?,
            })
        };
        let tasks = match w.choice_or("kind", &["synthetic", "opendc", "vms"], "synthetic")? {
            "synthetic" => {
                w.finish(&["kind", "tasks", "days"])?;
                synthetic(w)?
            }
            "vms" => {
                w.finish(&[
                    "kind",
                    "vms",
                    "vm_cores",
                    "vm_memory_mb",
                    "vm_mips",
                    "cloudlets",
                    "cloudlet_cores",
                    "cloudlet_mi",
                ])?;
                let base = VmSpec::CLOUDSIM_STRESS;
                let spec = VmSpec {
                    vms: w.u32_in("vms", base.vms, 1..=10_000_000)?,
                    vm_cores: w.u32_in("vm_cores", base.vm_cores, 1..=100_000)?,
                    vm_memory_mb: w.f64_in("vm_memory_mb", base.vm_memory_mb, 0.0..=1e12)?,
                    vm_mips: w.f64_in("vm_mips", base.vm_mips, 1e-3..=1e9)?,
                    cloudlets: w.u32_in("cloudlets", base.cloudlets, 0..=10_000_000)?,
                    cloudlet_cores: w.u32_in("cloudlet_cores", base.cloudlet_cores, 1..=100_000)?,
                    cloudlet_mi: w.f64_in("cloudlet_mi", base.cloudlet_mi, 1e-3..=1e15)?,
                };
                spec.check().map_err(|e| ScenarioError::Param(w.error("cloudlet_cores", e)))?;
                Tasks::Vms(spec)
            }
            _ => {
                w.finish(&["kind", "path", "tasks", "days"])?;
                let path = PathBuf::from(w.required_str("path")?);
                if path.exists() {
                    // A directory that is not a workload is an error, not a fallback.
                    let trace = nimbus_trace::opendc::read_workload(&path)?;
                    let workload = Workload::from_opendc(&trace)
                        .map_err(|e| ScenarioError::Invalid(format!("{}: {e}", path.display())))?;
                    Tasks::File(workload)
                } else {
                    fallbacks.push(format!("{} is absent: a synthetic week of tasks stands in", path.display()));
                    synthetic(w)?
                }
            }
        };
        d.finish(&[
            "kind",
            "topology",
            "carbon",
            "carbon_column",
            "pue",
            "sample_h",
            "hosts",
            "cores",
            "core_mhz",
            "memory_mb",
            "power",
            "idle_w",
            "max_w",
            "failures",
            "failure_repeat",
            "failure_start_point",
            "max_failures",
            "checkpoint_interval_s",
            "checkpoint_duration_s",
            "checkpoint_scaling",
        ])?;
        let failure_settings = FailureSettings {
            repeat: d.bool_or("failure_repeat", true)?,
            start_point: d.f64_in("failure_start_point", 0.0, 0.0..=0.999_999)?,
            max_failures: d.u32_in("max_failures", 10, 1..=1_000_000)?,
            checkpoint: match d.f64("checkpoint_interval_s")? {
                None => {
                    for key in ["checkpoint_duration_s", "checkpoint_scaling"] {
                        if d.contains(key) {
                            return Err(ScenarioError::Param(d.error(key, "is set without `checkpoint_interval_s`")));
                        }
                    }
                    None
                }
                Some(_) => Some(datacenter::Checkpoint {
                    interval_ms: (d.f64_in("checkpoint_interval_s", 60.0, 0.001..=1e9)? * 1e3).round() as u64,
                    duration_ms: (d.f64_in("checkpoint_duration_s", 1.0, 0.0..=1e9)? * 1e3).round() as u64,
                    scaling: d.f64_in("checkpoint_scaling", 1.0, 1.0..=100.0)?,
                }),
            },
        };
        let failures = match d.str("failures")? {
            Some(path) if Path::new(path).is_file() => Some(failure_settings.load(Path::new(path))?),
            Some(path) => {
                fallbacks.push(format!("{path} is absent: no failures are injected"));
                None
            }
            None => None,
        };
        let inline = || -> Result<Topology, ScenarioError> {
            let power = PowerModel::from_parts(
                d.choice_or("power", &nimbus_model::power::MODEL_NAMES, "sqrt")?,
                Some(d.f64_in("max_w", 180.0, 0.0..=1e6)?),
                Some(d.f64_in("idle_w", 32.0, 0.0..=1e6)?),
                Some(d.f64_in("max_w", 180.0, 0.0..=1e6)?),
                &PowerExtras::default(),
            )
            .map_err(|e| ScenarioError::Param(d.error("power", e)))?;
            Ok(Topology::uniform(
                d.u32_in("hosts", 277, 1..=topology::MAX_HOSTS as u32)?,
                d.u32_in("cores", 16, 1..=100_000)?,
                d.f64_in("core_mhz", 2100.0, 1.0..=1e6)?,
                d.f64_in("memory_mb", 100_000.0, 0.0..=1e12)?,
                power,
            ))
        };
        let topology = match d.str("topology")? {
            Some(path) if Path::new(path).is_file() => {
                for key in ["hosts", "cores", "core_mhz", "memory_mb", "power", "idle_w", "max_w"] {
                    if d.contains(key) {
                        return Err(ScenarioError::Param(
                            d.error(key, "is set together with `topology`; the topology file defines the hosts"),
                        ));
                    }
                }
                topology::read(Path::new(path)).map_err(ScenarioError::Invalid)?
            }
            Some(path) => {
                fallbacks.push(format!(
                    "{path} is absent: OpenDC's SURF topology (277 × 16 cores, sqrt 32–180 W) stands in"
                ));
                inline()?
            }
            None => inline()?,
        };
        let carbon_column = d.str("carbon_column")?.map(str::to_string);
        let carbon_path = match d.str("carbon")? {
            Some(p) => Some(PathBuf::from(p)),
            None => topology.carbon_trace().map_err(ScenarioError::Invalid)?.map(Path::to_path_buf),
        };
        let intensity = match carbon_path {
            Some(p) if p.is_file() => read_intensity(&p, carbon_column.as_deref())?,
            other => {
                fallbacks.push(match other {
                    Some(p) => {
                        format!("{} is absent: a synthetic diurnal intensity (mean 300 g/kWh) stands in", p.display())
                    }
                    None => "no carbon trace given: a synthetic diurnal intensity (mean 300 g/kWh) stands in".into(),
                });
                // From the midnight a week before the first submission (the
                // time-shift window's history), for 400 days.
                let first = match &tasks {
                    Tasks::File(w) => w.jobs.iter().map(|j| j.submit_ms).min().unwrap_or(0),
                    Tasks::Synthetic { .. } | Tasks::Vms(_) => SYNTHETIC_START_MS,
                };
                let midnight = first.div_euclid(86_400_000) * 86_400_000 - 7 * 86_400_000;
                Intensity::diurnal(midnight, 400, 300.0, 0.4)
            }
        };
        let sample_h = d.f64_in("sample_h", 1.0, 1.0 / 60.0..=24.0 * 7.0)?;
        Ok(Replay {
            tasks,
            topology,
            intensity,
            carbon_column,
            pue: d.f64_in("pue", 1.0, 1.0..=5.0)?,
            sample_ms: nimbus_sim::params::round_to_u64(sample_h * 3.6e6).unwrap_or(3_600_000).max(1),
            failures,
            failure_settings,
            fallbacks,
        })
    }

    fn run(&self, policy: &str, params: &Params, seed: u64) -> Result<RunOutput, ScenarioError> {
        let drawn;
        let workload = match &self.tasks {
            Tasks::File(w) => w,
            Tasks::Synthetic { tasks, days } => {
                drawn = synthetic_workload(*tasks, *days, seed);
                &drawn
            }
            Tasks::Vms(spec) => {
                drawn = crate::vm_workload::workload(spec, seed, SYNTHETIC_START_MS).map_err(ScenarioError::Invalid)?;
                &drawn
            }
        };
        let local;
        let mut notes = Vec::new();
        let column = params.str("carbon_column")?.map(str::to_string).or_else(|| self.carbon_column.clone());
        let intensity = match params.str("carbon")? {
            // A scenario written for ../shared still runs without it.
            Some(p) if !Path::new(p).exists() => {
                notes.push(format!("{p} is absent: the datacenter's intensity stands in"));
                &self.intensity
            }
            Some(p) => {
                local = read_intensity(Path::new(p), column.as_deref())?;
                &local
            }
            None => &self.intensity,
        };
        let own_failures;
        let failures = match params.str("failures")? {
            Some("none") => None,
            Some(p) if !Path::new(p).exists() => {
                notes.push(format!("{p} is absent: no failures are injected"));
                None
            }
            Some(p) => {
                own_failures = self.failure_settings.load(Path::new(p))?;
                Some(&own_failures)
            }
            None => self.failures.as_ref(),
        };
        let placement = Placement::from_name(if is_shift(policy) { "mem" } else { policy })
            .ok_or_else(|| ScenarioError::Invalid(format!("no placement for policy {policy}")))?;
        let config = Config {
            intensity: Some(intensity),
            pue: self.pue,
            time_shift: if is_shift(policy) { Some(time_shift(policy, params)?) } else { None },
            seed,
            sample_ms: self.sample_ms,
            failures,
            ..Config::new(self.topology.expand(), placement)
        };
        let out = datacenter::run(workload, &config).map_err(ScenarioError::Invalid)?;
        let mut output = self.output(workload, &out);
        output.notes.extend(notes);
        Ok(output)
    }

    fn output(&self, workload: &Workload, out: &Outcome) -> RunOutput {
        let kwh = out.energy_j / 3.6e6;
        let completed: Vec<&datacenter::TaskRecord> = out.tasks.iter().filter(|t| t.host.is_some()).collect();
        let mut waits: Vec<f64> = completed.iter().map(|t| (t.start_ms - t.submit_ms) as f64 / 1e3).collect();
        waits.sort_by(f64::total_cmp);
        let mean_wait = if waits.is_empty() { f64::NAN } else { waits.iter().sum::<f64>() / waits.len() as f64 };
        let p99 = if waits.is_empty() { f64::NAN } else { waits[((waits.len() - 1) as f64 * 0.99).round() as usize] };
        let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
        let metrics = vec![
            m("energy_kwh", kwh, Better::Lower),
            m("facility_energy_kwh", kwh * self.pue, Better::Lower),
            m("carbon_kg", out.carbon_g / 1e3, Better::Lower),
            m("intensity_g_per_kwh", if kwh > 0.0 { out.carbon_g / (kwh * self.pue) } else { f64::NAN }, Better::Lower),
            m("dynamic_energy_kwh", out.dynamic_energy_j / 3.6e6, Better::Lower),
            m("dynamic_carbon_kg", out.dynamic_carbon_g / 1e3, Better::Lower),
            m(
                "dynamic_intensity_g_per_kwh",
                if out.dynamic_energy_j > 0.0 {
                    out.dynamic_carbon_g / (out.dynamic_energy_j / 3.6e6 * self.pue)
                } else {
                    f64::NAN
                },
                Better::Lower,
            ),
            m("makespan_h", out.duration_ms as f64 / 3.6e6, Better::Lower),
            m("wait_s_mean", mean_wait, Better::Lower),
            m("wait_s_p99", p99, Better::Lower),
            m("tasks_completed", completed.len() as f64, Better::Higher),
            m("tasks_terminated", out.terminated as f64, Better::Lower),
            m("hosts_used", hosts_used(out) as f64, Better::Neither),
            m("failures_injected", out.failures_injected as f64, Better::Neither),
            m("task_interruptions", out.interruptions as f64, Better::Lower),
            m("tasks_failed_out", out.failed_out as f64, Better::Lower),
            m("lost_core_h", out.lost_core_ms / 3.6e6, Better::Lower),
            m("mean_utilization", out.mean_utilization, Better::Neither),
            m("mean_sampled_utilization", out.mean_sampled_utilization, Better::Neither),
            m("peak_power_kw", out.peak_power_w / 1e3, Better::Lower),
            m("events", out.events as f64, Better::Neither),
        ];
        let hours = self.sample_ms as f64 / 3.6e6;
        let series = vec![
            Series {
                name: "power_kw".into(),
                x_label: "time (h)".into(),
                y_label: "IT power (kW)".into(),
                points: out
                    .intervals
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64 * hours, v.energy_j / (self.sample_ms as f64 * 1e-3) / 1e3))
                    .collect(),
            },
            Series {
                name: "carbon_kg".into(),
                x_label: "time (h)".into(),
                y_label: "carbon per interval (kg CO2)".into(),
                points: out.intervals.iter().enumerate().map(|(i, v)| (i as f64 * hours, v.carbon_g / 1e3)).collect(),
            },
            Series {
                name: "intensity_g_per_kwh".into(),
                x_label: "time (h)".into(),
                y_label: "grid intensity (gCO2/kWh)".into(),
                points: out
                    .intervals
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64 * hours, v.intensity_ms / self.sample_ms as f64))
                    .collect(),
            },
        ];
        let rows = out
            .tasks
            .iter()
            .map(|t| {
                let j: &Job = &workload.jobs[t.job];
                vec![
                    Cell::Str(j.id.clone()),
                    t.host.map_or(Cell::Empty, |h| Cell::Int(h as i64)),
                    Cell::Int(j.cores as i64),
                    Cell::Float(t.submit_ms as f64 / 1e3),
                    Cell::Float(t.start_ms as f64 / 1e3),
                    Cell::Float(t.end_ms as f64 / 1e3),
                    Cell::Float((t.start_ms - t.submit_ms) as f64 / 1e3),
                ]
            })
            .collect();
        let tasks = Table {
            name: "tasks".into(),
            columns: ["task", "host", "cores", "submit_s", "start_s", "end_s", "wait_s"].map(String::from).to_vec(),
            rows,
        };
        let mut notes = Vec::new();
        if out.terminated > 0 {
            notes.push(format!("{} tasks were larger than every host and never ran", out.terminated));
        }
        RunOutput { metrics, tables: vec![tasks], series, timings: Vec::new(), notes }
    }

    /// What one run needs: the fragments (16 bytes each), the tasks and
    /// hosts; one event per fragment and per task.
    fn estimate(&self) -> Estimate {
        let (tasks, fragments) = match &self.tasks {
            Tasks::File(w) => (w.jobs.len() as u64, w.fragments.len() as u64),
            Tasks::Synthetic { tasks, days } => {
                (*tasks as u64, (*tasks as u64).saturating_mul(12 * 24).min((days * 288.0) as u64 * *tasks as u64))
            }
            Tasks::Vms(spec) => {
                let batches = u64::from(spec.cloudlets.div_ceil(spec.slots().max(1))).max(u64::from(spec.vms));
                (u64::from(spec.vms), batches)
            }
        };
        let mut e = Estimate::default();
        e.memory("fragments", fragments.saturating_mul(16));
        e.memory("tasks", tasks.saturating_mul(160));
        e.memory("hosts", self.topology.host_count().saturating_mul(96));
        e.events("fragments and submissions", fragments.saturating_add(tasks));
        e
    }
}

fn time_shift(policy: &str, params: &Params) -> Result<TimeShift, ScenarioError> {
    let rule = if policy == "lowest-window" {
        ShiftRule::LowestWindow { forecast_error: params.f64_in("forecast_error", 0.0, 0.0..=10.0)? }
    } else {
        ShiftRule::Quantile
    };
    Ok(TimeShift {
        rule,
        quantile: params.fraction_or("quantile", 0.2)?,
        window_h: params.usize_in("window_h", 168, 1..=8784)?,
        slack_factor: params.f64_in("slack_factor", 2.0, 0.0..=1000.0)?,
    })
}

/// Whether a policy defers tasks (`mem` placement plus a [`TimeShift`]).
fn is_shift(policy: &str) -> bool {
    matches!(policy, "timeshift" | "lowest-window")
}

/// Where the synthetic workload starts: 2022-01-03T00:00Z, a Monday.
const SYNTHETIC_START_MS: i64 = 1_641_168_000_000;

/// Hosts that ran at least one task.
fn hosts_used(out: &Outcome) -> usize {
    let mut used: Vec<usize> = out.tasks.iter().filter_map(|t| t.host).collect();
    used.sort_unstable();
    used.dedup();
    used.len()
}

/// A seeded synthetic workload: `tasks` tasks over `days` days from
/// 2022-01-03 (a Monday), arrivals twice as dense by day as by night, run
/// times log-normal (median 1 h, σ 1.2, 5 min to 3 days), 1, 2, 4 or 8
/// cores, and 5-minute fragments whose usage wanders around a per-task
/// mean (uniform 20–90% of the reserved cores).
pub fn synthetic_workload(tasks: usize, days: f64, seed: u64) -> Workload {
    let streams = RngStreams::new(seed);
    let mut rng = streams.stream("carbon-workload");
    let start_ms = SYNTHETIC_START_MS;
    let span_ms = days * 86_400_000.0;
    let mut submits: Vec<i64> = Vec::with_capacity(tasks);
    while submits.len() < tasks {
        let t = rng.uniform() * span_ms;
        let hour = (t / 3.6e6) % 24.0;
        let density = 0.5 + 0.5 * (((hour - 14.0) / 24.0 * 2.0 * std::f64::consts::PI).cos() + 1.0) / 2.0;
        if rng.uniform() < density {
            submits.push(start_ms + t as i64);
        }
    }
    submits.sort_unstable();
    let mut jobs = Vec::with_capacity(tasks);
    let mut fragments = Vec::new();
    const FRAGMENT_MS: u64 = 300_000;
    for (i, submit_ms) in submits.into_iter().enumerate() {
        let run_ms = (rng.lognormal((3.6e6f64).ln(), 1.2).clamp(300_000.0, 259_200_000.0) / FRAGMENT_MS as f64).ceil()
            as u64
            * FRAGMENT_MS;
        let cores = [1u32, 2, 4, 8][(rng.next_u64() % 4) as usize];
        let capacity = cores as f64 * 2100.0;
        let mean = rng.uniform_range(0.2, 0.9);
        let first = fragments.len();
        for _ in 0..run_ms / FRAGMENT_MS {
            let u = (mean + rng.normal(0.0, 0.1)).clamp(0.0, 1.0);
            fragments.push((FRAGMENT_MS, u * capacity));
        }
        jobs.push(Job {
            id: format!("t{i}"),
            submit_ms,
            cores,
            memory_mb: cores as f64 * 4000.0,
            fragments: first..fragments.len(),
        });
    }
    Workload { jobs, fragments }
}

/// Scenario parameters from (dotted key, value) pairs, for tests.
#[cfg(test)]
pub(crate) fn test_params(pairs: &[(&str, nimbus_sim::params::Value)]) -> Params {
    let mut root = Params::new("", None);
    for (k, v) in pairs {
        root.set_path(k, nimbus_sim::params::Param { value: v.clone(), span: None }).expect("settable");
    }
    root
}

#[cfg(test)]
mod tests {
    use super::test_params as params;
    use super::*;
    use nimbus_sim::params::Value;

    #[test]
    fn synthetic_runs_are_deterministic_and_timeshift_cuts_carbon() {
        let root = params(&[
            ("workload.tasks", Value::Int(300)),
            ("workload.days", Value::Int(3)),
            ("datacenter.hosts", Value::Int(40)),
            ("datacenter.power", Value::Str("linear".into())),
            ("datacenter.idle_w", Value::Int(0)),
        ]);
        let s = Scenario::from_params(&root).expect("ok");
        let none = Params::new("policy", None);
        let a = s.run("mem", &none, 3, &mut |_| {}).expect("ok");
        let b = s.run("mem", &none, 3, &mut |_| {}).expect("ok");
        assert_eq!(a, b, "byte-identical per seed");
        let other = s.run("mem", &none, 4, &mut |_| {}).expect("ok");
        assert_ne!(a.metric("energy_kwh"), other.metric("energy_kwh"), "each seed draws its tasks");
        let shifted = s.run("timeshift", &none, 3, &mut |_| {}).expect("ok");
        let c = |o: &RunOutput| o.metric("intensity_g_per_kwh").expect("ok");
        assert!(
            c(&shifted) < 0.97 * c(&a),
            "deferral lowers the intensity of the energy used: {} vs {}",
            c(&shifted),
            c(&a)
        );
        let kg = |o: &RunOutput| o.metric("carbon_kg").expect("ok");
        assert!(kg(&shifted) < kg(&a), "and the carbon: {} vs {}", kg(&shifted), kg(&a));
        assert!(shifted.metric("wait_s_mean").expect("ok") > a.metric("wait_s_mean").expect("ok"));
        assert_eq!(a.metric("tasks_completed"), Some(300.0));
        assert!(s.fallbacks().iter().any(|n| n.contains("synthetic diurnal")));
    }

    #[test]
    fn vms_are_placed_first_fit_or_worst_fit_by_hand() {
        // 4 hosts of 8 cores; 5 VMs of 4 cores (the CloudSim stress case's
        // shapes, scaled down): first-fit and best-fit fill hosts 0, 0, 1,
        // 1, 2 (3 used); worst-fit takes the freest host, 0, 1, 2, 3, 0.
        let root = params(&[
            ("workload.kind", Value::Str("vms".into())),
            ("workload.vms", Value::Int(5)),
            ("workload.cloudlets", Value::Int(7)),
            ("datacenter.hosts", Value::Int(4)),
            ("datacenter.cores", Value::Int(8)),
            ("datacenter.core_mhz", Value::Int(50_000)),
            ("datacenter.memory_mb", Value::Int(1_000_000)),
        ]);
        let s = Scenario::from_params(&root).expect("ok");
        let none = Params::new("policy", None);
        let used = |policy: &str| s.run(policy, &none, 1, &mut |_| {}).expect("runs").metric("hosts_used");
        assert_eq!(used("first-fit"), Some(3.0));
        assert_eq!(used("best-fit"), Some(3.0));
        assert_eq!(used("worst-fit"), Some(4.0));
        let out = s.run("first-fit", &none, 1, &mut |_| {}).expect("runs");
        assert_eq!(out.metric("tasks_completed"), Some(5.0));
        // 7 cloudlets over 5 VMs: VMs 0 and 1 run two at once (2 slots
        // each), all for 10 s (10,000 MI at 1,000 MIPS).
        assert_eq!(out.metric("makespan_h"), Some(10.0 / 3600.0));
        let e = Scenario::from_params(&params(&[
            ("workload.kind", Value::Str("vms".into())),
            ("workload.cloudlet_cores", Value::Int(6)),
        ]))
        .expect_err("refused")
        .to_string();
        assert!(e.contains("workload.cloudlet_cores") && e.contains("needs 6 cores and a VM has 4"), "{e}");
    }

    #[test]
    fn bad_settings_are_named() {
        let e = Scenario::from_params(&params(&[("datacenter.power", Value::Str("quartic".into()))]))
            .expect_err("an error")
            .to_string();
        assert!(e.contains("quartic"), "{e}");
        let s = Scenario::from_params(&params(&[("workload.tasks", Value::Int(10))])).expect("ok");
        let e = s.check("greedy", &Params::new("policy", None)).expect_err("an error").to_string();
        assert!(e.contains("available: mem"), "{e}");
        let bad = params(&[("quantile", Value::Float(1.5))]);
        assert!(s.check("timeshift", &bad).is_err());
        let e = s.check("mem", &params(&[("quantile", Value::Float(0.5))])).expect_err("an error").to_string();
        assert!(e.contains("quantile"), "{e}");
    }
}
