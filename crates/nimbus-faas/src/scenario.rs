//! Building a serverless run from scenario parameters.
//!
//! Keys:
//! - `[platform]`: `hosts` (1), `host_memory_gb` (64), `balancer`
//!   (`openwhisk` | `least-loaded`), `reuse` (`most-recent` | `least-recent`
//!   | `random`: which idle sandbox of an app a warm invocation takes; see
//!   [`crate::engine::ReuseOrder`]), `engine` (`platform`, the default, or
//!   `app-level`: Serverless in the Wild's per-app model, no hosts, see
//!   [`crate::applevel`]; with `aggregate` (true) per-minute aggregation,
//!   false: every invocation; `synthetic` and `azure2019` workloads (an
//!   app's functions summed per minute, their execution times mixed by
//!   invocations), and only the per-app metrics: cold starts, idle
//!   memory, invocations),
//!   `concurrency` (1: invocations one
//!   sandbox runs at once), `max_wait_s` (60: an invocation that
//!   cannot get memory for this long is dropped), `horizon_h`,
//!   `record_limit` (rows of the per-invocation table; 100,000; 0: none),
//!   `models_stay_loaded` (false: handlers load their model on every
//!   invocation unless it was pre-loaded), `first_run_penalty` (0: the
//!   slow-down of a sandbox's first execution after a snapshot restore;
//!   REAP measured 0.95).
//! - `[workload]`, `kind`:
//!   - `iluvatar`: `trace` and `metadata` (Ilúvatar's Azure-derived
//!     sample): each function its own app; warm time, cold-start overhead
//!     (cold − warm) and memory from the metadata; `repeat` replays the
//!     trace back to back that many times.
//!   - `azure2019`: `invocations` (one file of the Azure Functions 2019
//!     trace, or a list of consecutive days, streamed a day at a time),
//!     `durations` and `memory` (a file or a list; optional; the first row
//!     of a function or app wins); per-minute counts expanded at seeded
//!     uniform offsets; execution times drawn from each function's
//!     percentiles (1 s where a function has none); app memory from the
//!     memory files (`default_mem_mb` where an app has none);
//!     `cold_start_ms` (1,000).
//!   - `azure2021`: `path`; execution times drawn from each function's
//!     observed durations; `default_mem_mb`, `cold_start_ms`.
//!   - `synthetic`: `apps`, `days`, `cold_start_ms`: the generator fitted
//!     to the Azure 2019 marginals (the embedded default).
//!   - `poisson`: one app, `rate_per_s`, `exec_ms`, `mem_mb`,
//!     `cold_start_ms`, `duration_s` (the analytic cross-check).
//!
//!   Any kind: `models` (InstaInfer's model table) with `model_functions`
//!   (8): that many apps, chosen with `model_seed` (1), each load one model
//!   of the table in turn on their invocation path (the inferred mapping
//!   of InstaInfer's evaluation onto a trace without models); when the
//!   table is absent, models of log-normal load time (median 1 s) and size
//!   (median 1 GB) stand in, and the results say so.
//!
//! - `[energy]` (optional; its presence turns accounting on): `idle_w`,
//!   `max_w` (host power, 90/300 W), `cores` (32), `mem_w_per_gb` (0.375:
//!   DRAM in use, inferred from DDR4 RDIMMs at about 3 W per 8 GB),
//!   `ci_g_per_kwh` (400; also the stand-in when `ci_file` is absent)
//!   or `ci_file` (an Electricity Maps hourly file, cycled from the run's
//!   start), `embodied_kg`, `manufacturing_ratio`, `lifetime_years` (Dell
//!   PowerEdge C6420 by default).
//!
//! A missing trace file falls back to the synthetic generator with the
//! same number of apps, and the results say so.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use nimbus_sim::estimate::{Estimate, count, product, saturating};
use nimbus_sim::output::RunOutput;
use nimbus_sim::params::{ParamError, Params, round_to_u64};
use nimbus_sim::{RngStreams, SimDuration, SimTime};
use nimbus_trace::{TraceError, faas};

use crate::applevel;
use crate::energy::{CarbonIntensity, EnergyConfig};
use crate::engine::{self, Balancer, Platform, ReuseOrder};
use crate::policy::{self, KeepAlive};
use crate::workload::{
    self, App, ColdStart, DaysSource, ExecTime, Function, Invocation, ListSource, ModelArtifact, Pattern,
    PatternSource, Source,
};
use nimbus_model::energy::{Embodied, LinearPower};

/// Why a scenario cannot be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A key is missing, mistyped or unknown.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A data file is malformed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The settings cannot work.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
enum Arrivals {
    List(Arc<Vec<Invocation>>),
    /// Azure 2019 day files, streamed; functions keyed by (owner, app, function).
    /// The last field: invocations in all the files, and the busiest
    /// minute's.
    Days(Vec<PathBuf>, Arc<BTreeMap<(String, String, String), u32>>, (u64, u64)),
    Synthetic {
        days: f64,
        cold_ms: f64,
        apps: usize,
    },
    Poisson {
        rate: f64,
        duration_s: f64,
    },
    /// The app-level engine's apps read from a trace, the span in minutes
    /// and the invocations.
    AppSpecs(Arc<Vec<applevel::AppSpec>>, u32, u64),
}

/// A prepared serverless scenario.
#[derive(Debug)]
pub struct Scenario {
    platform: Platform,
    /// `Some` under the app-level engine (`[platform] engine = "app-level"`).
    app_level: Option<applevel::Mode>,
    apps: Arc<Vec<App>>,
    functions: Arc<Vec<Function>>,
    arrivals: Arrivals,
    fallbacks: Vec<String>,
    models: Option<ModelAssignment>,
    /// The synthetic workload's total arrival rate (per second), computed
    /// once for the estimates of every policy.
    synthetic_rate: std::sync::OnceLock<f64>,
}

/// Which apps load which model.
#[derive(Debug, Clone)]
struct ModelAssignment {
    table: Vec<ModelArtifact>,
    count: usize,
    seed: u64,
}

impl ModelAssignment {
    /// Gives `count` apps, chosen by a seeded shuffle, one model each
    /// from the table in turn.
    fn apply(&self, apps: &mut [App]) {
        let mut order: Vec<usize> = (0..apps.len()).collect();
        RngStreams::new(self.seed).stream("model-apps").shuffle(&mut order);
        for (k, &a) in order.iter().take(self.count).enumerate() {
            apps[a].model = Some(self.table[k % self.table.len()]);
        }
    }
}

fn resolve(path: &str) -> PathBuf {
    PathBuf::from(path)
}

/// The largest memory an app may ask for, MB (1 TiB).
const MAX_MEM_MB: u32 = 1 << 20;

/// The most rows the per-invocation table may be asked to keep (each row
/// is held in memory until the run ends).
pub const MAX_RECORD_LIMIT: usize = 10_000_000;

/// The most invocations a trace read into memory (Ilúvatar, Azure 2021)
/// may hold after repeats.
pub const MAX_LISTED_INVOCATIONS: usize = 100_000_000;

/// An app's memory from a trace, checked: a whole number of MB in
/// 1..=[`MAX_MEM_MB`] (at least 1 after rounding).
#[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // trace input: checked conversions only
fn mem_mb(mb: f64, file: &str, app: &str) -> Result<u32, ScenarioError> {
    round_to_u64(mb.max(1.0)).and_then(|m| u32::try_from(m).ok()).filter(|m| *m <= MAX_MEM_MB).ok_or_else(|| {
        ScenarioError::Invalid(format!(
            "{file}: app `{}` asks for {} MB; at most {MAX_MEM_MB} MB is accepted",
            nimbus_trace::input::quote(app),
            nimbus_sim::params::number(mb)
        ))
    })
}

/// An index into apps, functions or models, as the engine's 32-bit id.
fn index_u32(i: usize) -> Result<u32, ScenarioError> {
    u32::try_from(i).map_err(|_| ScenarioError::Invalid(format!("more than {} apps or functions", u32::MAX)))
}

impl Scenario {
    /// Reads `platform` and `workload`.
    #[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // user input: checked conversions only
    pub fn from_params(root: &Params) -> Result<Self, ScenarioError> {
        let empty = Params::new("platform", None);
        let p = root.table("platform")?.unwrap_or(&empty);
        let hosts = p.usize_in("hosts", 1, 1..=100_000)?;
        let host_gb = p.f64_in("host_memory_gb", 64.0, 0.001..=1_048_576.0)?;
        let host_mb = round_to_u64(host_gb * 1024.0).unwrap_or(1).max(1);
        let balancer = match p.choice_or("balancer", &["openwhisk", "least-loaded"], "openwhisk")? {
            "least-loaded" => Balancer::LeastLoaded,
            _ => Balancer::OpenWhisk,
        };
        let reuse = match p.choice_or("reuse", &["most-recent", "least-recent", "random"], "most-recent")? {
            "least-recent" => ReuseOrder::LeastRecent,
            "random" => ReuseOrder::Random,
            _ => ReuseOrder::MostRecent,
        };
        // `aggregate` is read under either engine (the platform engine
        // ignores it), so one file switches engines with one `--set`.
        let aggregate = p.bool_or("aggregate", true)?;
        let app_level = match p.choice_or("engine", &["platform", "app-level"], "platform")? {
            "app-level" => Some(if aggregate { applevel::Mode::Aggregated } else { applevel::Mode::Exact }),
            _ => None,
        };
        let max_wait = SimDuration::from_nanos(p.duration_ns_or("max_wait_s", 60.0, 1e9, false)?);
        let concurrency = p.u32_in("concurrency", 1, 1..=10_000)?;
        let horizon = SimDuration::from_nanos(p.duration_ns_or("horizon_h", 24.0 * 15.0, 3600e9, true)?);
        let record_limit = p.usize_in("record_limit", 100_000, 0..=MAX_RECORD_LIMIT)?;
        let models_stay_loaded = p.bool_or("models_stay_loaded", false)?;
        let first_run_penalty = p.non_negative_f64_or("first_run_penalty", 0.0)?;
        p.finish(&[])?;
        let mut fallbacks = Vec::new();
        let energy = match root.table("energy")? {
            None => None,
            Some(e) => {
                let idle_w = e.non_negative_f64_or("idle_w", LinearPower::SERVER.idle_w)?;
                let max_w = e.positive_f64_or("max_w", LinearPower::SERVER.max_w)?;
                if max_w < idle_w {
                    return Err(e.error("max_w", "must be at least idle_w").into());
                }
                let cores = e.u32_in("cores", 32, 1..=4096)?;
                let constant = e.non_negative_f64_or("ci_g_per_kwh", 400.0)?;
                let intensity = match e.str("ci_file")? {
                    Some(file) if resolve(file).exists() => {
                        let hours = faas::read_hourly_carbon_intensity(&resolve(file))?;
                        if hours.is_empty() {
                            return Err(e.error("ci_file", format!("{file} holds no hours")).into());
                        }
                        CarbonIntensity::Hourly(hours)
                    }
                    Some(file) => {
                        fallbacks.push(format!("{file} is absent: a constant {constant} gCO2e/kWh stands in"));
                        CarbonIntensity::Constant(constant)
                    }
                    None => CarbonIntensity::Constant(constant),
                };
                let embodied = Embodied {
                    gwp_total_kg: e.non_negative_f64_or("embodied_kg", Embodied::SERVER.gwp_total_kg)?,
                    manufacturing_ratio: e
                        .non_negative_f64_or("manufacturing_ratio", Embodied::SERVER.manufacturing_ratio)?,
                    lifetime_years: e.positive_f64_or("lifetime_years", Embodied::SERVER.lifetime_years)?,
                };
                let mem_w_per_gb = e.non_negative_f64_or("mem_w_per_gb", 0.375)?;
                e.finish(&[])?;
                Some(EnergyConfig { power: LinearPower { idle_w, max_w }, embodied, cores, mem_w_per_gb, intensity })
            }
        };
        let platform = Platform {
            host_mem_mb: vec![host_mb; hosts],
            balancer,
            reuse,
            concurrency,
            max_wait,
            horizon: SimTime::ZERO + horizon,
            record_limit,
            check_invariants: false,
            energy,
            models_stay_loaded,
            first_run_penalty,
        };

        let w = root.table("workload")?.ok_or_else(|| root.error("workload", "is required"))?;
        let kind = w.choice_or("kind", &["iluvatar", "azure2019", "azure2021", "synthetic", "poisson"], "synthetic")?;
        let cold_ms = w.non_negative_f64_or("cold_start_ms", 1000.0)?;
        let default_mem = w.u32_in("default_mem_mb", 256, 1..=MAX_MEM_MB)?;
        let synthetic_apps = w.usize_in("apps", 1000, 1..=1_000_000)?;
        let days = w.f64_in("days", 1.0, 1e-6..=30.0)?;
        let fallback = |what: &str, fallbacks: &mut Vec<String>| {
            fallbacks.push(format!(
                "{what} is absent: the synthetic Azure-2019-like workload stands in ({synthetic_apps} apps, {days} days)"
            ));
            Arrivals::Synthetic { days, cold_ms, apps: synthetic_apps }
        };
        let models = match w.str("models")? {
            None => None,
            Some(path) => {
                let count = w.usize_in("model_functions", 8, 0..=1_000_000)?;
                let seed = w.u64_or("model_seed", 1)?;
                Some(ModelAssignment { table: model_table(path, count, seed, &mut fallbacks)?, count, seed })
            }
        };
        let (apps, functions, arrivals) = match kind {
            "iluvatar" => {
                let trace = w.required_str("trace")?.to_string();
                let metadata = w.required_str("metadata")?.to_string();
                let repeat = w.usize_in("repeat", 1, 1..=10_000)?;
                if resolve(&trace).exists() && resolve(&metadata).exists() {
                    let meta = faas::read_iluvatar_metadata(&resolve(&metadata))?;
                    let rows = faas::read_iluvatar_trace(&resolve(&trace))?;
                    let index: BTreeMap<&str, usize> =
                        meta.iter().enumerate().map(|(i, m)| (m.function.as_str(), i)).collect();
                    let apps: Vec<App> = meta
                        .iter()
                        .map(|m| {
                            Ok(App {
                                name: m.function.clone(),
                                mem_mb: mem_mb(m.mem_mb, &metadata, &m.function)?,
                                cold: ColdStart::split((m.cold_ms - m.warm_ms).max(0.0)),
                                model: None,
                            })
                        })
                        .collect::<Result<_, ScenarioError>>()?;
                    if rows.len().saturating_mul(repeat) > MAX_LISTED_INVOCATIONS {
                        return Err(w
                            .error(
                                "repeat",
                                format!(
                                    "{} invocations × {repeat} repeats is more than the {MAX_LISTED_INVOCATIONS} a listed trace may hold",
                                    rows.len()
                                ),
                            )
                            .into());
                    }
                    let functions: Vec<Function> = meta
                        .iter()
                        .enumerate()
                        .map(|(i, m)| {
                            Ok(Function {
                                name: m.function.clone(),
                                app: index_u32(i)?,
                                exec: ExecTime::Fixed(m.warm_ms),
                                trigger: "http",
                            })
                        })
                        .collect::<Result<_, ScenarioError>>()?;
                    let span_ms = rows.iter().map(|r| r.1).fold(0.0, f64::max) + 1.0;
                    let mut list = Vec::with_capacity(rows.len() * repeat);
                    for k in 0..repeat {
                        for (line, (name, ms)) in rows.iter().enumerate() {
                            let f = *index.get(name.as_str()).ok_or_else(|| {
                                ScenarioError::Invalid(format!(
                                    "{trace}:{}: function `{name}` is not in {metadata}",
                                    line + 2
                                ))
                            })?;
                            let at = SimTime::ZERO + SimDuration::from_secs_f64((k as f64 * span_ms + ms) / 1e3);
                            list.push(Invocation { at, function: index_u32(f)? });
                        }
                    }
                    (apps, functions, Arrivals::List(Arc::new(list)))
                } else {
                    (Vec::new(), Vec::new(), fallback(&trace, &mut fallbacks))
                }
            }
            "azure2019" => {
                w.require("invocations")?;
                let inv: Vec<String> =
                    w.str_or_list("invocations")?.unwrap_or_default().iter().map(|x| x.to_string()).collect();
                let dur: Vec<String> =
                    w.str_or_list("durations")?.unwrap_or_default().iter().map(|x| x.to_string()).collect();
                let mem: Vec<String> =
                    w.str_or_list("memory")?.unwrap_or_default().iter().map(|x| x.to_string()).collect();
                if inv.is_empty() {
                    return Err(w.error("invocations", "needs at least one file").into());
                }
                match inv.iter().find(|f| !resolve(f).exists()) {
                    None if app_level.is_some() => azure2019_app_specs(&inv, &dur, &mem, default_mem)?,
                    None => azure2019(&inv, &dur, &mem, default_mem, cold_ms)?,
                    Some(missing) => (Vec::new(), Vec::new(), fallback(missing, &mut fallbacks)),
                }
            }
            "azure2021" => {
                let path = w.required_str("path")?.to_string();
                if resolve(&path).exists() {
                    azure2021(&path, default_mem, cold_ms)?
                } else {
                    (Vec::new(), Vec::new(), fallback(&path, &mut fallbacks))
                }
            }
            "poisson" => {
                let rate = w.positive_f64_or("rate_per_s", 1.0)?;
                let exec_ms = w.non_negative_f64_or("exec_ms", 10.0)?;
                let mem = w.u32_in("mem_mb", 128, 1..=MAX_MEM_MB)?;
                let duration_s = w.duration_ns_or("duration_s", 3600.0, 1e9, true)? as f64 / 1e9;
                let apps =
                    vec![App { name: "app0".into(), mem_mb: mem.max(1), cold: ColdStart::split(cold_ms), model: None }];
                let functions =
                    vec![Function { name: "f0".into(), app: 0, exec: ExecTime::Fixed(exec_ms), trigger: "http" }];
                (apps, functions, Arrivals::Poisson { rate, duration_s })
            }
            _ => (Vec::new(), Vec::new(), Arrivals::Synthetic { days, cold_ms, apps: synthetic_apps }),
        };
        w.finish(&[])?;
        if app_level.is_some() && !matches!(arrivals, Arrivals::Synthetic { .. } | Arrivals::AppSpecs(..)) {
            return Err(ScenarioError::Invalid(
                "[platform] engine = \"app-level\" runs per-minute counts: workload.kind = \"synthetic\" or \"azure2019\"".into(),
            ));
        }
        Ok(Scenario {
            platform,
            app_level,
            apps: Arc::new(apps),
            functions: Arc::new(functions),
            arrivals,
            fallbacks,
            models,
            synthetic_rate: std::sync::OnceLock::new(),
        })
    }

    /// What one run of `policy_name` needs: memory for apps, sandboxes,
    /// waiting invocations and per-invocation rows; events from the
    /// invocations (and the autoscaler's ticks).
    pub fn estimate(&self, policy_name: &str, params: &Params) -> Result<Estimate, ScenarioError> {
        let info = policy::find(policy_name)
            .ok_or_else(|| ScenarioError::Invalid(format!("unknown faas policy `{policy_name}`")))?;
        let keep_alive = (info.build)(params)?;
        if let (Some(_), Arrivals::Synthetic { days, apps, .. }) = (self.app_level, &self.arrivals) {
            // Per app: a few hundred bytes; policy state (the hybrid
            // histogram: at most a week of one-minute bins) lives only for
            // the chunks of apps in progress. Events are the non-empty
            // app-minutes, at most every minute of every app.
            let apps = *apps as u64;
            let minutes = saturating(days * 1440.0);
            let in_flight = (rayon::current_num_threads() as u64).saturating_mul(applevel::CHUNK as u64);
            let mut e = Estimate::default();
            e.memory("base", 32 << 20);
            e.memory(format!("{apps} apps: specs and totals"), product(&[apps, 512]));
            e.memory(format!("policy state of {in_flight} apps in progress"), product(&[in_flight, 4 * 10_080]));
            e.output_bytes = product(&[apps, 256]).saturating_add(1 << 20);
            e.events(format!("at most {} app-minutes", count(product(&[apps, minutes]))), product(&[apps, minutes]));
            return Ok(e);
        }
        if let Arrivals::AppSpecs(specs, minutes, invocations) = &self.arrivals {
            // The counts are in memory already; each run adds its totals.
            let apps = specs.len() as u64;
            let non_empty: u64 = specs
                .iter()
                .map(|s| match &s.arrivals {
                    applevel::Arrivals::Counts(c) => c.len() as u64,
                    _ => 0,
                })
                .sum();
            let mut e = Estimate::default();
            e.memory("base", 32 << 20);
            e.memory(format!("{apps} apps' totals"), product(&[apps, 64]));
            e.output_bytes = product(&[apps, 256]).saturating_add(1 << 20);
            e.events(
                format!(
                    "{} non-empty app-minutes of {} invocations over {minutes} minutes",
                    count(non_empty),
                    count(*invocations)
                ),
                non_empty,
            );
            return Ok(e);
        }
        // Invocations, the peak arrival rate (per second) and the span (s).
        let (invocations, peak_rate, span_s, apps) = match &self.arrivals {
            Arrivals::List(list) => {
                let span = list.iter().map(|i| i.at.as_secs_f64()).fold(0.0, f64::max).max(1.0);
                (list.len() as u64, list.len() as f64, span, self.apps.len() as u64)
            }
            Arrivals::Days(days, _, (total, busiest)) => {
                (*total, *busiest as f64 / 60.0, days.len() as f64 * 86_400.0, self.apps.len() as u64)
            }
            Arrivals::Poisson { rate, duration_s } => {
                (saturating(rate * duration_s * 1.01 + 10.0), *rate, *duration_s, 1)
            }
            Arrivals::AppSpecs(..) => (0, 0.0, 0.0, 0),
            Arrivals::Synthetic { days, cold_ms, apps } => {
                let rate = *self.synthetic_rate.get_or_init(|| {
                    let (_, _, patterns) =
                        workload::synthetic(*apps, *cold_ms, &mut RngStreams::new(0).stream("synthetic-apps"));
                    patterns
                        .iter()
                        .map(|p| match p {
                            Pattern::Poisson(r) => *r,
                            Pattern::Timer { period_s, .. } => 1.0 / period_s.max(1e-9),
                        })
                        .sum()
                });
                let span = days * 86_400.0;
                // The generator draws per seed; allow a fifth more.
                (saturating(rate * span * 1.2 + 10.0), rate, span, *apps as u64)
            }
        };
        let span_s = span_s.min(self.platform.horizon.as_secs_f64());
        let host_mb: u64 = self.platform.host_mem_mb.iter().fold(0u64, |a, m| a.saturating_add(*m));
        let smallest_app_mb = u64::from(self.apps.iter().map(|a| a.mem_mb).min().unwrap_or(1).max(1));
        let sandboxes = (host_mb / smallest_app_mb).min(invocations).saturating_add(apps);
        let waiting = saturating(peak_rate * self.platform.max_wait.as_secs_f64()).min(invocations);
        let rows = (self.platform.record_limit as u64).min(invocations);
        let mut e = Estimate::default();
        e.memory("base", 32 << 20);
        e.memory(format!("{apps} apps and their functions"), product(&[apps, 2048]));
        e.memory(format!("up to {sandboxes} sandboxes"), product(&[sandboxes, 512]));
        e.memory(format!("up to {} waiting invocations", count(waiting)), product(&[waiting, 64]));
        e.memory(format!("{rows} per-invocation rows"), product(&[rows, 160]));
        if let Arrivals::Days(..) = self.arrivals {
            e.memory(
                "one day of per-minute counts and one minute expanded",
                product(&[apps, 1440 * 8]).saturating_add(16 << 20),
            );
        }
        e.output_bytes = product(&[rows, 128]).saturating_add(product(&[apps, 256]));
        e.events(
            format!("{} invocations (arrival, start, end, expiry)", count(invocations)),
            product(&[invocations, 4]),
        );
        if let Some(kpa) = keep_alive.autoscaler() {
            let ticks = saturating(span_s / kpa.tick.as_secs_f64().max(1e-9));
            e.events(format!("{} autoscaler ticks over {apps} apps", count(ticks)), product(&[ticks, apps.max(1)]));
        }
        Ok(e)
    }

    /// The metrics a run of this scenario reports.
    pub fn metric_names(&self) -> Vec<String> {
        use crate::metrics::{ENERGY_METRICS, METRICS, MODEL_METRICS};
        let models = self.models.is_some() || self.apps.iter().any(|a| a.model.is_some());
        let energy = self.platform.energy.is_some();
        METRICS
            .iter()
            .chain(if models { MODEL_METRICS } else { &[] })
            .chain(if energy { ENERGY_METRICS } else { &[] })
            .map(|m| m.to_string())
            .collect()
    }

    /// Data substitutions made.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Runs one policy with one seed.
    pub fn run(
        &self,
        policy_name: &str,
        params: &Params,
        seed: u64,
        progress: impl FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let info = policy::find(policy_name).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "unknown faas policy `{policy_name}`; available: {}",
                policy::REGISTRY.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if let Some(mode) = self.app_level {
            refuse_host_bound((info.build)(params)?.as_ref())?;
            let build = || (info.build)(params).map_err(|e| e.to_string());
            return self.run_app_level(mode, seed, AppLevelPolicy::PerChunk(&build), progress);
        }
        let keep_alive = (info.build)(params)?;
        self.run_with(keep_alive, seed, progress)
    }

    /// The app-level engine's apps (the synthetic ones of `seed`, or the
    /// trace's) and the span in whole minutes.
    fn app_specs(&self, seed: u64) -> (Arc<Vec<applevel::AppSpec>>, u32) {
        match &self.arrivals {
            Arrivals::Synthetic { days, cold_ms, apps } => {
                let minutes = (days * 1440.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
                (Arc::new(applevel::synthetic_specs(*apps, *cold_ms, seed).0), minutes)
            }
            Arrivals::AppSpecs(specs, minutes, _) => (Arc::clone(specs), *minutes),
            _ => (Arc::new(Vec::new()), 0),
        }
    }

    /// Runs the app-level engine (module `applevel`).
    fn run_app_level(
        &self,
        mode: applevel::Mode,
        seed: u64,
        policy: AppLevelPolicy<'_>,
        mut progress: impl FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        if let AppLevelPolicy::One(keep) = &policy {
            refuse_host_bound(&**keep)?;
        }
        let (specs, minutes) = self.app_specs(seed);
        let total = specs.len().max(1) as f64;
        let totals = match policy {
            AppLevelPolicy::PerChunk(build) => {
                let done = std::sync::atomic::AtomicUsize::new(0);
                let on_chunk = |n: usize| {
                    done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                };
                let totals = applevel::run(&specs, minutes, seed, mode, build, &on_chunk);
                progress(done.load(std::sync::atomic::Ordering::Relaxed) as f64 / total);
                totals
            }
            AppLevelPolicy::One(keep) => applevel::run_serial(&specs, minutes, seed, mode, keep),
        }
        .map_err(ScenarioError::Invalid)?;
        let mut output = crate::metrics::app_level_output(&specs, &totals);
        output.notes.extend(self.fallbacks.iter().cloned());
        Ok(output)
    }

    /// Runs one seed under a keep-alive policy built by the caller (a
    /// policy written outside the registry, such as a Python class).
    pub fn run_with(
        &self,
        mut keep_alive: Box<dyn KeepAlive>,
        seed: u64,
        progress: impl FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        if let Some(mode) = self.app_level {
            return self.run_app_level(mode, seed, AppLevelPolicy::One(keep_alive.as_mut()), progress);
        }
        let rngs = RngStreams::new(seed);
        let (apps, functions, mut source): Prepared = match &self.arrivals {
            Arrivals::List(list) => {
                (Arc::clone(&self.apps), Arc::clone(&self.functions), Box::new(ListSource::new(list.to_vec())))
            }
            Arrivals::Days(days, index, _) => (
                Arc::clone(&self.apps),
                Arc::clone(&self.functions),
                Box::new(DaysSource::new(days.clone(), Arc::clone(index), rngs.stream("minutes"))),
            ),
            Arrivals::Poisson { rate, duration_s } => (
                Arc::clone(&self.apps),
                Arc::clone(&self.functions),
                Box::new(PatternSource::new(
                    vec![Pattern::Poisson(*rate)],
                    SimTime::ZERO + SimDuration::from_secs_f64(*duration_s),
                    rngs.stream("arrivals"),
                )),
            ),
            Arrivals::Synthetic { days, cold_ms, apps } => {
                let (a, f, patterns) = workload::synthetic(*apps, *cold_ms, &mut rngs.stream("synthetic-apps"));
                let end = SimTime::ZERO + SimDuration::from_secs_f64(days * 86_400.0);
                (Arc::new(a), Arc::new(f), Box::new(PatternSource::new(patterns, end, rngs.stream("arrivals"))))
            }
            Arrivals::AppSpecs(..) => {
                return Err(ScenarioError::Invalid("app-level apps reached the platform engine".into()));
            }
        };
        let apps = match &self.models {
            None => apps,
            Some(models) => {
                let mut with_models = apps.to_vec();
                models.apply(&mut with_models);
                Arc::new(with_models)
            }
        };
        let result = engine::run(
            &apps,
            &functions,
            &self.platform,
            source.as_mut(),
            keep_alive.as_mut(),
            rngs.stream("execution"),
            progress,
        );
        if let Some(failure) = keep_alive.failure() {
            return Err(ScenarioError::Invalid(failure));
        }
        let mut output = crate::metrics::output(&apps, &functions, &result);
        output.notes.extend(self.fallbacks.iter().cloned());
        output.notes.extend(source.notes());
        Ok(output)
    }
}

type Loaded = (Vec<App>, Vec<Function>, Arrivals);

/// Refuses, for the app-level engine, a policy that scales pods or
/// microVMs on hosts (Knative's autoscaler, Faascale): it has no hosts.
fn refuse_host_bound(keep: &dyn KeepAlive) -> Result<(), ScenarioError> {
    if keep.autoscaler().is_some() || keep.vertical().is_some() {
        return Err(ScenarioError::Invalid(
            "this policy scales pods or microVMs on hosts; the app-level engine has none: use engine = \"platform\""
                .into(),
        ));
    }
    Ok(())
}

/// The policy of an app-level run: rebuilt per chunk of apps (registry
/// policies, run in parallel), or one object for every app (an external
/// policy, run on one thread).
enum AppLevelPolicy<'a> {
    PerChunk(&'a applevel::PolicyFactory<'a>),
    One(&'a mut dyn KeepAlive),
}

/// InstaInfer's model table at `path`, or `count` synthetic models when
/// it is absent.
fn model_table(
    path: &str,
    count: usize,
    seed: u64,
    fallbacks: &mut Vec<String>,
) -> Result<Vec<ModelArtifact>, ScenarioError> {
    let mut rng = RngStreams::new(seed).stream("models");
    let table: Vec<ModelArtifact> = if resolve(path).exists() {
        faas::read_instainfer_models(&resolve(path))?
            .iter()
            .map(|m| Ok(ModelArtifact { load_ms: m.load_ms, size_mb: mem_mb(m.size_mb, path, &m.model)? }))
            .collect::<Result<_, ScenarioError>>()?
    } else {
        fallbacks.push(format!(
            "{path} is absent: {count} synthetic models (log-normal load time around 1 s, size around 1 GB) stand in"
        ));
        (0..count.max(1))
            .map(|_| ModelArtifact {
                load_ms: rng.lognormal(1000f64.ln(), 0.7),
                size_mb: round_to_u64(rng.lognormal(1024f64.ln(), 0.4))
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(1024),
            })
            .collect()
    };
    if table.is_empty() {
        return Err(ScenarioError::Invalid(format!("{path} holds no models")));
    }
    Ok(table)
}
/// The apps, functions and invocation source of one run.
type Prepared = (Arc<Vec<App>>, Arc<Vec<Function>>, Box<dyn Source>);

/// Azure 2019 apps' memory (MB) and functions' duration percentiles:
/// per app the first memory row, per function the first durations row,
/// over the files in order (missing files are skipped).
type Azure2019Tables = (BTreeMap<(String, String), f64>, BTreeMap<(String, String, String), [f64; 7]>);

fn azure2019_tables(durations: &[String], memory: &[String]) -> Result<Azure2019Tables, ScenarioError> {
    let mut app_mb: BTreeMap<(String, String), f64> = BTreeMap::new();
    for path in memory.iter().filter(|p| resolve(p).exists()) {
        for m in faas::read_azure2019_memory(&resolve(path))? {
            app_mb.entry((m.owner, m.app)).or_insert(m.average_mb);
        }
    }
    let mut exec: BTreeMap<(String, String, String), [f64; 7]> = BTreeMap::new();
    for path in durations.iter().filter(|p| resolve(p).exists()) {
        for d in faas::read_azure2019_durations(&resolve(path))? {
            exec.entry((d.owner, d.app, d.function)).or_insert(d.percentiles_ms);
        }
    }
    Ok((app_mb, exec))
}

/// Streams a day file's rows into `add`, stopping at its first error (the
/// reader's callback cannot fail: the error is kept and the rest of the
/// file skipped).
fn each_azure2019_row(
    path: &str,
    mut add: impl FnMut(faas::FunctionMinutes) -> Result<(), ScenarioError>,
) -> Result<(), ScenarioError> {
    let mut failure = None;
    faas::for_each_azure2019_invocation(&resolve(path), |row| {
        if failure.is_none()
            && let Err(e) = add(row)
        {
            failure = Some(e);
        }
    })?;
    failure.map_or(Ok(()), Err)
}

/// An app's memory from the memory files' rows (`default_mem` without one).
fn azure2019_app_mb(
    app_mb: &BTreeMap<(String, String), f64>,
    key: &(String, String),
    memory: &[String],
    default_mem: u32,
) -> Result<u32, ScenarioError> {
    match app_mb.get(key) {
        None => Ok(default_mem),
        Some(&mb) => mem_mb(mb, &memory.join(", "), &key.1),
    }
}

/// A function's execution time from its percentiles (1 s without).
fn azure2019_exec(percentiles: Option<&[f64; 7]>) -> ExecTime {
    percentiles.map_or(ExecTime::Fixed(1000.0), |p| {
        ExecTime::Quantiles(faas::DURATION_PERCENTILES.iter().copied().zip(p.iter().copied()).collect())
    })
}

fn azure2019(
    days: &[String],
    durations: &[String],
    memory: &[String],
    default_mem: u32,
    cold_ms: f64,
) -> Result<Loaded, ScenarioError> {
    let (app_mb, exec) = azure2019_tables(durations, memory)?;
    // One streaming pass over every day checks the files and lists the
    // functions; the counts are read again, a day at a time, during runs.
    let mut app_index: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut index: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    let mut apps = Vec::new();
    let mut functions = Vec::new();
    let (mut total, mut busiest) = (0u64, 0u64);
    for path in days {
        let mut per_minute: Vec<u64> = Vec::new();
        // One row: count its invocations, and list its app and function
        // the first time they appear.
        let add = |row: faas::FunctionMinutes| -> Result<(), ScenarioError> {
            if per_minute.len() < row.per_minute.len() {
                per_minute.resize(row.per_minute.len(), 0);
            }
            for (m, &n) in row.per_minute.iter().enumerate() {
                per_minute[m] = per_minute[m].saturating_add(u64::from(n));
            }
            let key = (row.owner.clone(), row.app.clone(), row.function.clone());
            if index.contains_key(&key) {
                return Ok(());
            }
            let app_key = (row.owner.clone(), row.app.clone());
            let app = match app_index.get(&app_key) {
                Some(&a) => a,
                None => {
                    let mb = azure2019_app_mb(&app_mb, &app_key, memory, default_mem)?;
                    let a = index_u32(apps.len())?;
                    apps.push(App { name: row.app.clone(), mem_mb: mb, cold: ColdStart::split(cold_ms), model: None });
                    app_index.insert(app_key, a);
                    a
                }
            };
            let exec = azure2019_exec(exec.get(&key));
            index.insert(key, index_u32(functions.len())?);
            functions.push(Function { name: row.function, app, exec, trigger: row.trigger.as_str() });
            Ok(())
        };
        each_azure2019_row(path, add)?;
        total = per_minute.iter().fold(total, |t, n| t.saturating_add(*n));
        busiest = busiest.max(per_minute.iter().copied().max().unwrap_or(0));
    }
    let days = days.iter().map(|d| resolve(d)).collect();
    Ok((apps, functions, Arrivals::Days(days, Arc::new(index), (total, busiest))))
}

/// The Azure 2019 day files as the app-level engine's apps, in order of
/// first appearance: each app's functions' counts summed per minute (day
/// `d`'s minute `m` is minute `1440·d + m`), its memory
/// (`default_mem` without a row), and an execution time that is its
/// functions' percentile distributions mixed by their invocations over the
/// files (a function's share is constant over time, not per minute).
fn azure2019_app_specs(
    days: &[String],
    durations: &[String],
    memory: &[String],
    default_mem: u32,
) -> Result<Loaded, ScenarioError> {
    let (app_mb, exec) = azure2019_tables(durations, memory)?;
    /// One app as read so far.
    struct TraceApp {
        key: (String, String),
        mem_mb: u32,
        /// (minute, invocations) of its non-empty minutes.
        counts: Vec<(u32, u32)>,
        /// Its functions' invocations over the files.
        functions: BTreeMap<String, u64>,
    }
    let mut app_index: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut apps: Vec<TraceApp> = Vec::new();
    let mut invocations = 0u64;
    let minutes = u32::try_from(days.len().saturating_mul(1440))
        .map_err(|_| ScenarioError::Invalid("too many day files".into()))?;
    for (d, path) in days.iter().enumerate() {
        // This day's per-minute counts of the apps seen in it.
        let mut day: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        let add = |row: faas::FunctionMinutes| -> Result<(), ScenarioError> {
            let app_key = (row.owner.clone(), row.app.clone());
            let app = match app_index.get(&app_key) {
                Some(&a) => a,
                None => {
                    let mem_mb = azure2019_app_mb(&app_mb, &app_key, memory, default_mem)?;
                    let a = index_u32(apps.len())? as usize;
                    app_index.insert(app_key.clone(), a);
                    apps.push(TraceApp { key: app_key, mem_mb, counts: Vec::new(), functions: BTreeMap::new() });
                    a
                }
            };
            let minutes = day.entry(app).or_insert_with(|| vec![0; 1440]);
            let mut total = 0u64;
            for (slot, &n) in minutes.iter_mut().zip(&row.per_minute) {
                *slot = slot.saturating_add(n);
                total += u64::from(n);
            }
            let function = apps[app].functions.entry(row.function).or_insert(0);
            *function = function.saturating_add(total);
            invocations = invocations.saturating_add(total);
            Ok(())
        };
        each_azure2019_row(path, add)?;
        // Below `minutes`, which fits in u32.
        let first = (d * 1440) as u32;
        for (app, per_minute) in day {
            apps[app]
                .counts
                .extend(per_minute.iter().enumerate().filter(|(_, c)| **c > 0).map(|(m, &c)| (first + m as u32, c)));
        }
    }
    let specs = apps
        .into_iter()
        .map(|app| {
            let (owner, name) = app.key;
            let parts = app
                .functions
                .into_iter()
                .map(|(function, n)| (n as f64, azure2019_exec(exec.get(&(owner.clone(), name.clone(), function)))))
                .collect();
            applevel::AppSpec {
                mem_mb: app.mem_mb,
                exec: ExecTime::mixture(parts),
                arrivals: applevel::Arrivals::Counts(app.counts.into()),
            }
        })
        .collect();
    Ok((Vec::new(), Vec::new(), Arrivals::AppSpecs(Arc::new(specs), minutes, invocations)))
}

fn azure2021(path: &str, default_mem: u32, cold_ms: f64) -> Result<Loaded, ScenarioError> {
    let rows = faas::read_azure2021(&resolve(path))?;
    if rows.len() > MAX_LISTED_INVOCATIONS {
        return Err(ScenarioError::Invalid(format!(
            "{path}: {} invocations; at most {MAX_LISTED_INVOCATIONS} are read into memory",
            rows.len()
        )));
    }
    let mut app_index: BTreeMap<String, u32> = BTreeMap::new();
    let mut fn_index: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut apps = Vec::new();
    let mut durations: Vec<Vec<f64>> = Vec::new();
    let mut functions = Vec::new();
    let mut list = Vec::with_capacity(rows.len());
    let t0 = rows.iter().map(|r| r.start_s).fold(f64::INFINITY, f64::min);
    for r in &rows {
        let app = *app_index.entry(r.app.clone()).or_insert_with(|| {
            apps.push(App { name: r.app.clone(), mem_mb: default_mem, cold: ColdStart::split(cold_ms), model: None });
            (apps.len() - 1) as u32
        });
        let f = *fn_index.entry((r.app.clone(), r.function.clone())).or_insert_with(|| {
            functions.push(Function { name: r.function.clone(), app, exec: ExecTime::Fixed(0.0), trigger: "http" });
            durations.push(Vec::new());
            (functions.len() - 1) as u32
        });
        durations[f as usize].push(r.duration_s * 1e3);
        list.push(Invocation { at: SimTime::ZERO + SimDuration::from_secs_f64(r.start_s - t0), function: f });
    }
    for (f, mut d) in functions.iter_mut().zip(durations) {
        d.sort_by(f64::total_cmp);
        let n = d.len();
        f.exec = if n == 1 {
            ExecTime::Fixed(d[0])
        } else {
            ExecTime::Quantiles(d.iter().enumerate().map(|(i, &v)| (i as f64 / (n - 1) as f64, v)).collect())
        };
    }
    Ok((apps, functions, Arrivals::List(Arc::new(list))))
}
