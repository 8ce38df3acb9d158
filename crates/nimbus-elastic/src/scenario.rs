//! Building an elastic run from scenario parameters.
//!
//! Keys:
//! - `[workload]`, `kind`:
//!   - `synthetic` (the embedded default): `days` (30), `peak_rate`
//!     (samples/s, 20,000), `bursts_per_day` (2): see [`crate::demand`];
//!     each seed draws its own series (noise and burst times), and every
//!     policy of a seed sees the same one.
//!   - `csv`: `path`, `column` (a timestamped CSV, e.g. Lucid's
//!     `cluster_throughput.csv` and `submit_job_all`), `peak_rate`,
//!     `repeat` (1: the series back to back that many times).
//!   - `gaia`: `path` (a GAIA job trace: hourly arrivals), `peak_rate`,
//!     `repeat`.
//!
//!   A missing file falls back to the synthetic series, and the results
//!   say so.
//! - `[cluster]`, `kind` picks the model: `training` (the default: an
//!   online-training job, [`crate::engine`]), `burstable` (a web service
//!   on on-demand and burstable instances, [`crate::burstable`]) or
//!   `leasing` (reserved capacity and lessees, [`crate::leasing`]).
//!
//! Training `[cluster]`: `worker_rate` (a, samples/s of one worker, 1,000),
//!   `contention` (b, 0.002), `min_workers` (1), `max_workers` (200),
//!   `scale_up_delay_s` (120), `restart_downtime_s` (60), `partitions`
//!   (64), `partition_skew` (Zipf exponent, 0.5), `slo_lag_s` (freshness
//!   SLO, 300), `warmup_days` (2: left out of the metrics).
//!
//! Burstable: `[workload]` as above (synthetic defaults: 7 days, peak 480
//! requests/s); `[cluster]`: `on_demand_type` (`m5.large`),
//! `burstable_type` (`t3.large`), `table` (a throughput-grid file;
//! AutoBurst's measured table when absent or unset), `on_demand_rate` and
//! `burstable_rate` (requests/s; fitted to the table), `max_on_demand`
//! (30), `max_burstable` (15), `start_delay_s` (120), `slo_ms` (200),
//! `initial_credits` (0), `warmup_days` (1).
//!
//! Leasing: `[workload]`, `kind`: `synthetic` (`owners` 20, `weeks` 8;
//! each seed draws its owners), `csv` (`path`: every numeric column is an
//! owner's usage in cores; absent → synthetic) or `opendc` (`path`: an
//! OpenDC workload directory such as Bitbrains; each task (VM) is an owner,
//! its usage in cores = MHz used ÷ its MHz per core, averaged per `step_s`,
//! default 3600; absent → synthetic); `[cluster]`:
//! `reservation_headroom` (0.2), `dr_buffer` (0.1), `history_weeks` (4:
//! reservations sized on them, metrics after), `lease_h` (6),
//! `lessee_demand` (0.5 of the total reservation).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::RunOutput;
use nimbus_sim::params::{ParamError, Params};

use crate::burstable::{self, Service, ThroughputTable};
use crate::demand::{self, Demand};
use crate::engine::{self, Cluster, Throughput};
use crate::leasing::{self, Owners, Pool};
use crate::policy::{self, Build, Builder};

/// Why a scenario cannot be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A key is missing, mistyped or unknown.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A data file is malformed.
    #[error(transparent)]
    Trace(#[from] nimbus_trace::TraceError),
    /// The settings cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// The model a scenario runs.
#[derive(Debug, Clone)]
enum Model {
    Training(Cluster),
    Burstable(Service),
    Leasing { owners: Owners, synthetic: Option<(usize, f64)>, pool: Pool },
}

/// A prepared elastic scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The demand of a file (every seed), or of seed 1 when synthetic
    /// (training and burstable models; empty for leasing).
    pub demand: Demand,
    /// Synthetic demand settings (days, peak rate, bursts per day): each
    /// run draws its series from its seed.
    synthetic: Option<(f64, f64, f64)>,
    model: Model,
    fallbacks: Vec<String>,
}

/// The longest run accepted (a year of seconds).
const MAX_DAYS: f64 = 366.0;

/// Most leasing owners.
const MAX_OWNERS: usize = 10_000;

type SyntheticDemand = Option<(f64, f64, f64)>;

/// Reads the `[workload]` of the training and burstable models.
fn read_demand(
    w: &Params,
    default_days: f64,
    default_peak: f64,
    fallbacks: &mut Vec<String>,
) -> Result<(Demand, SyntheticDemand), ScenarioError> {
    let kind = w.choice_or("kind", &["synthetic", "csv", "gaia"], "synthetic")?;
    let peak_rate = w.f64_in("peak_rate", default_peak, 1e-6..=1e12)?;
    let synthetic = |w: &Params| -> Result<(Demand, SyntheticDemand), ParamError> {
        let days = w.f64_in("days", default_days, 1.0 / 24.0..=MAX_DAYS)?;
        let bursts = w.f64_in("bursts_per_day", 2.0, 0.0..=100.0)?;
        Ok((demand::synthetic(days, peak_rate, bursts, 1), Some((days, peak_rate, bursts))))
    };
    if kind == "synthetic" {
        w.finish(&["kind", "days", "peak_rate", "bursts_per_day"])?;
        return Ok(synthetic(w)?);
    }
    w.finish(&["kind", "path", "column", "peak_rate", "repeat", "days", "bursts_per_day"])?;
    let path = PathBuf::from(w.required_str("path")?);
    let repeat = w.usize_in("repeat", 1, 1..=1000)?;
    if !path.exists() {
        fallbacks.push(format!("{} is absent: the synthetic diurnal series with bursts stands in", path.display()));
        return Ok(synthetic(w)?);
    }
    let series = if kind == "csv" {
        let column = w.required_str("column")?;
        nimbus_trace::series::read_column(nimbus_trace::Source::file(&path), column)?
    } else {
        nimbus_trace::series::read_arrival_counts(nimbus_trace::Source::file(&path), 1.0)?
    };
    if let Some(i) = series.first_missing() {
        return Err(ScenarioError::Invalid(format!(
            "{}: series `{}` has a gap at position {i} ({} missing values); fill it first",
            path.display(),
            series.name,
            series.missing()
        )));
    }
    let values: Vec<f64> = series.values.iter().map(|v| v.max(0.0)).collect();
    let total = values.len().saturating_mul(repeat);
    let days = total as f64 * series.step_s as f64 / 86_400.0;
    if days > MAX_DAYS {
        return Err(ScenarioError::Invalid(format!(
            "{}: {days:.0} days of demand; at most {MAX_DAYS}",
            path.display()
        )));
    }
    let rates: Vec<f64> = values.iter().copied().cycle().take(total).collect();
    Ok((Demand { step_s: series.step_s, rates }.scaled_to_peak(peak_rate), None))
}

fn warmup(c: &Params, default_days: f64, duration_s: u64) -> Result<u64, ScenarioError> {
    let warmup_days = c.f64_in("warmup_days", default_days, 0.0..=MAX_DAYS)?;
    let warmup_s = nimbus_sim::params::round_to_u64(warmup_days * 86_400.0).unwrap_or(0);
    if warmup_s >= duration_s {
        return Err(ScenarioError::Invalid(format!(
            "[cluster] warmup_days ({warmup_days}) covers the whole demand ({:.2} days)",
            duration_s as f64 / 86_400.0
        )));
    }
    Ok(warmup_s)
}

fn training_cluster(c: &Params, demand: &Demand) -> Result<Cluster, ScenarioError> {
    c.finish(&[
        "kind",
        "worker_rate",
        "contention",
        "min_workers",
        "max_workers",
        "scale_up_delay_s",
        "restart_downtime_s",
        "partitions",
        "partition_skew",
        "slo_lag_s",
        "warmup_days",
    ])?;
    let min_workers = c.u32_in("min_workers", 1, 0..=1_000_000)?;
    let max_workers = c.u32_in("max_workers", 200, 1..=1_000_000)?;
    if min_workers > max_workers {
        return Err(ScenarioError::Invalid(format!(
            "[cluster] min_workers ({min_workers}) is above max_workers ({max_workers})"
        )));
    }
    let warmup_s = warmup(c, 2.0, demand.duration_s())?;
    Ok(Cluster {
        throughput: Throughput {
            per_worker: c.f64_in("worker_rate", 1000.0, 1e-6..=1e12)?,
            contention: c.f64_in("contention", 0.002, 0.0..=10.0)?,
        },
        min_workers,
        max_workers,
        scale_up_delay_s: c.u64_in("scale_up_delay_s", 120, 0..=86_400)?,
        restart_downtime_s: c.u64_in("restart_downtime_s", 60, 0..=86_400)?,
        partitions: Cluster::zipf_partitions(
            c.usize_in("partitions", 64, 1..=100_000)?,
            c.f64_in("partition_skew", 0.5, 0.0..=5.0)?,
        ),
        slo_lag_s: c.f64_in("slo_lag_s", 300.0, 1.0..=86_400.0)?,
        warmup_s,
    })
}

fn burstable_service(c: &Params, demand: &Demand, fallbacks: &mut Vec<String>) -> Result<Service, ScenarioError> {
    c.finish(&[
        "kind",
        "on_demand_type",
        "burstable_type",
        "table",
        "on_demand_rate",
        "burstable_rate",
        "max_on_demand",
        "max_burstable",
        "start_delay_s",
        "slo_ms",
        "initial_credits",
        "warmup_days",
    ])?;
    let kind = |key: &str, default: &str, burstable: bool| {
        let name = c.str(key)?.unwrap_or(default);
        burstable::instance_type(name, burstable).map_err(|e| c.error(key, e))
    };
    let on_demand = kind("on_demand_type", "m5.large", false)?;
    let burstable = kind("burstable_type", "t3.large", true)?;
    let table = match c.str("table")? {
        None => ThroughputTable::artifact(),
        Some(path) if !Path::new(path).exists() => {
            fallbacks.push(format!("{path} is absent: AutoBurst's measured table (embedded) stands in"));
            ThroughputTable::artifact()
        }
        Some(path) => ThroughputTable::new(nimbus_trace::grid::read_grid(nimbus_trace::Source::file(Path::new(path)))?),
    };
    let (fit_on_demand, fit_burstable) = table.fitted_rates();
    let rate = |key: &str, fitted: f64| -> Result<f64, ScenarioError> {
        match c.f64(key)? {
            Some(_) => Ok(c.f64_in(key, fitted, 1e-6..=1e9)?),
            None if fitted > 0.0 => Ok(fitted),
            None => Err(ScenarioError::Invalid(format!(
                "[cluster] {key}: the throughput table does not determine it (fitted {fitted:.3}); set it"
            ))),
        }
    };
    Ok(Service {
        on_demand,
        burstable,
        on_demand_rate: rate("on_demand_rate", fit_on_demand)?,
        burstable_rate: rate("burstable_rate", fit_burstable)?,
        max_on_demand: c.u32_in("max_on_demand", 30, 1..=100_000)?,
        max_burstable: c.u32_in("max_burstable", 15, 0..=100_000)?,
        start_delay_s: c.u64_in("start_delay_s", 120, 0..=86_400)?,
        slo_s: c.f64_in("slo_ms", 200.0, 1e-3..=1e7)? / 1000.0,
        initial_credits: c.f64_in("initial_credits", 0.0, 0.0..=1e9)?,
        warmup_s: warmup(c, 1.0, demand.duration_s())?,
        table: Arc::new(table),
    })
}

/// Reads leasing owners.
fn read_owners(w: &Params, fallbacks: &mut Vec<String>) -> Result<(Owners, Option<(usize, f64)>), ScenarioError> {
    let kind = w.choice_or("kind", &["synthetic", "csv", "opendc"], "synthetic")?;
    // `owners` and `weeks` size the synthetic stand-in of a missing file;
    // `step_s` is how an OpenDC workload is averaged.
    match kind {
        "opendc" => w.finish(&["kind", "owners", "weeks", "path", "step_s"])?,
        "csv" => w.finish(&["kind", "owners", "weeks", "path"])?,
        _ => w.finish(&["kind", "owners", "weeks"])?,
    }
    let count = w.usize_in("owners", 20, 1..=MAX_OWNERS)?;
    let weeks = w.f64_in("weeks", 8.0, 1.0 / 168.0..=MAX_DAYS / 7.0)?;
    if kind != "synthetic" {
        let path = PathBuf::from(w.required_str("path")?);
        if path.exists() {
            let columns = if kind == "csv" {
                nimbus_trace::series::read_numeric_columns(nimbus_trace::Source::file(&path))?
            } else {
                opendc_owners(&path, w.u64_in("step_s", 3600, 60..=86_400)?)?
            };
            if columns.is_empty() {
                return Err(ScenarioError::Invalid(format!("{}: no numeric column (owner usage)", path.display())));
            }
            if columns.len() > MAX_OWNERS {
                return Err(ScenarioError::Invalid(format!(
                    "{}: {} owners; at most {MAX_OWNERS}",
                    path.display(),
                    columns.len()
                )));
            }
            for s in &columns {
                if let Some(i) = s.first_missing() {
                    return Err(ScenarioError::Invalid(format!(
                        "{}: owner `{}` has a gap at position {i}; fill it first",
                        path.display(),
                        s.name
                    )));
                }
                if let Some(v) = s.values.iter().find(|v| **v < 0.0) {
                    return Err(ScenarioError::Invalid(format!(
                        "{}: owner `{}` has negative usage ({v})",
                        path.display(),
                        s.name
                    )));
                }
            }
            let step_s = columns[0].step_s;
            let owners = Owners {
                step_s,
                names: columns.iter().map(|s| s.name.clone()).collect(),
                usage: columns.into_iter().map(|s| s.values).collect(),
            };
            return Ok((owners, None));
        }
        fallbacks.push(format!("{} is absent: synthetic owners stand in", path.display()));
    }
    Ok((leasing::synthetic_owners(count, weeks, 1), Some((count, weeks))))
}

/// Each task of an OpenDC workload as an owner: usage in cores.
fn opendc_owners(dir: &Path, step_s: u64) -> Result<Vec<nimbus_trace::series::Series>, ScenarioError> {
    use nimbus_trace::opendc;
    let workload = opendc::read_workload(dir)?;
    let mut series = opendc::cpu_usage(&workload, step_s, true, "")
        .map_err(|m| ScenarioError::Invalid(format!("{}: {m}", dir.display())))?;
    let tasks: std::collections::BTreeMap<&str, &opendc::Task> =
        workload.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    for s in &mut series {
        let Some(task) = tasks.get(s.name.as_str()) else { continue };
        let per_core = task.cpu_capacity_mhz / f64::from(task.cpu_count.max(1));
        if per_core.is_nan() || per_core <= 0.0 {
            return Err(ScenarioError::Invalid(format!(
                "{}: task `{}` has no CPU capacity, so its usage cannot be read as cores",
                dir.display(),
                s.name
            )));
        }
        for v in &mut s.values {
            *v /= per_core;
        }
    }
    Ok(series)
}

fn leasing_pool(c: &Params, owners: &Owners) -> Result<Pool, ScenarioError> {
    c.finish(&["kind", "reservation_headroom", "dr_buffer", "history_weeks", "lease_h", "lessee_demand"])?;
    let steps_of = |hours: f64| -> usize {
        nimbus_sim::params::round_to_u64(hours * 3600.0 / owners.step_s.max(1) as f64)
            .and_then(|s| usize::try_from(s).ok())
            .unwrap_or(usize::MAX)
    };
    let history_weeks = c.f64_in("history_weeks", 4.0, 0.0..=MAX_DAYS / 7.0)?;
    let history_steps = steps_of(history_weeks * 168.0).max(1);
    if history_steps >= owners.steps() {
        return Err(ScenarioError::Invalid(format!(
            "[cluster] history_weeks ({history_weeks}) covers the whole usage series ({:.2} weeks)",
            owners.steps() as f64 * owners.step_s as f64 / 604_800.0
        )));
    }
    Ok(Pool {
        reservation_headroom: c.f64_in("reservation_headroom", 0.2, 0.0..=10.0)?,
        dr_buffer: c.fraction_or("dr_buffer", 0.1)?,
        history_steps,
        lease_steps: steps_of(c.f64_in("lease_h", 6.0, 1e-3..=8760.0)?).max(1),
        lessee_demand: c.f64_in("lessee_demand", 0.5, 0.0..=100.0)?,
    })
}

impl Scenario {
    /// Reads `[workload]` and `[cluster]`.
    pub fn from_params(root: &Params) -> Result<Scenario, ScenarioError> {
        let empty = Params::new("workload", None);
        let w = root.table("workload")?.unwrap_or(&empty);
        let empty_cluster = Params::new("cluster", None);
        let c = root.table("cluster")?.unwrap_or(&empty_cluster);
        let mut fallbacks = Vec::new();
        match c.choice_or("kind", &["training", "burstable", "leasing"], "training")? {
            "training" => {
                let (demand, synthetic) = read_demand(w, 30.0, 20_000.0, &mut fallbacks)?;
                let cluster = training_cluster(c, &demand)?;
                Ok(Scenario { demand, synthetic, model: Model::Training(cluster), fallbacks })
            }
            "burstable" => {
                let (demand, synthetic) = read_demand(w, 7.0, 480.0, &mut fallbacks)?;
                let service = burstable_service(c, &demand, &mut fallbacks)?;
                Ok(Scenario { demand, synthetic, model: Model::Burstable(service), fallbacks })
            }
            _ => {
                let (owners, synthetic) = read_owners(w, &mut fallbacks)?;
                let pool = leasing_pool(c, &owners)?;
                let demand = Demand { step_s: owners.step_s, rates: Vec::new() };
                Ok(Scenario { demand, synthetic: None, model: Model::Leasing { owners, synthetic, pool }, fallbacks })
            }
        }
    }

    fn model_name(&self) -> &'static str {
        match self.model {
            Model::Training(_) => "training",
            Model::Burstable(_) => "burstable",
            Model::Leasing { .. } => "leasing",
        }
    }

    /// Builds `policy` with `params` to check them.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        let info = self.find(policy)?;
        params.finish(info.params)?;
        match info.build {
            Builder::Training(build) => {
                let peak_rate = self.demand.rates.iter().copied().fold(0.0, f64::max);
                build(&Build { params, peak_rate, seed: 0 }).map(|_| ())?;
            }
            Builder::Burstable(build) => build(params).map(|_| ())?,
            Builder::Leasing(build) => build(params).map(|_| ())?,
        }
        Ok(())
    }

    fn find(&self, name: &str) -> Result<&'static policy::PolicyInfo, ScenarioError> {
        let model = self.model_name();
        policy::find(name).filter(|p| p.build.model() == model).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "unknown elastic policy {name:?} for a `{model}` cluster; available: {}",
                policy::REGISTRY
                    .iter()
                    .filter(|p| p.build.model() == model)
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
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
        params.finish(info.params)?;
        let demand = match self.synthetic {
            Some((days, peak, bursts)) => demand::synthetic(days, peak, bursts, seed),
            None => self.demand.clone(),
        };
        match (&self.model, &info.build) {
            (Model::Training(cluster), Builder::Training(build)) => {
                let peak_rate = demand.rates.iter().copied().fold(0.0, f64::max);
                let mut autoscaler = build(&Build { params, peak_rate, seed })?;
                Ok(engine::run(&demand, cluster, autoscaler.as_mut(), progress))
            }
            (Model::Burstable(service), Builder::Burstable(build)) => {
                let mut controller = build(params)?;
                Ok(burstable::run(&demand, service, controller.as_mut(), progress))
            }
            (Model::Leasing { owners, synthetic, pool }, Builder::Leasing(build)) => {
                let drawn;
                let owners = match synthetic {
                    Some((count, weeks)) => {
                        drawn = leasing::synthetic_owners(*count, *weeks, seed);
                        &drawn
                    }
                    None => owners,
                };
                let mut leaser = build(params)?;
                let out = leasing::run(owners, pool, leaser.as_mut(), seed);
                progress(1.0);
                Ok(out)
            }
            _ => unreachable!("find() matched the policy to the model"),
        }
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        let names = match self.model {
            Model::Training(_) => engine::METRICS,
            Model::Burstable(_) => burstable::METRICS,
            Model::Leasing { .. } => leasing::METRICS,
        };
        names.iter().map(|m| m.to_string()).collect()
    }

    /// What one run needs: the demand, per-minute history and freshness
    /// samples (8 bytes each), and one event per simulated second (per
    /// instance for the burstable model, per owner-step for leasing).
    pub fn estimate(&self, _policy: &str, _params: &Params) -> Result<Estimate, ScenarioError> {
        let mut e = Estimate::default();
        match &self.model {
            Model::Leasing { owners, synthetic, .. } => {
                let (count, steps) = match synthetic {
                    Some((count, weeks)) => {
                        (*count as u64, nimbus_sim::params::round_to_u64(weeks * 168.0).unwrap_or(0))
                    }
                    None => (owners.usage.len() as u64, owners.steps() as u64),
                };
                e.memory("owner usage", count.saturating_mul(steps).saturating_mul(8));
                e.events("owner-steps", count.saturating_mul(steps));
            }
            model => {
                let seconds = self.demand.duration_s();
                let minutes = seconds / 60 + 1;
                e.memory("demand", (self.demand.rates.len() as u64).saturating_mul(8));
                e.memory("per-minute rates and freshness", minutes.saturating_mul(16));
                e.memory("forecast window", 1 << 20);
                let per_second = match model {
                    Model::Burstable(s) => u64::from(s.max_on_demand) + u64::from(s.max_burstable),
                    _ => 1,
                };
                e.events("simulated seconds", seconds.saturating_mul(per_second));
            }
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &[(&str, &str)]) -> Params {
        let mut root = Params::new("", None);
        for (k, v) in text {
            let value = if let Ok(i) = v.parse::<i64>() {
                nimbus_sim::params::Value::Int(i)
            } else if let Ok(x) = v.parse::<f64>() {
                nimbus_sim::params::Value::Float(x)
            } else {
                nimbus_sim::params::Value::Str((*v).to_string())
            };
            root.set_path(k, nimbus_sim::params::Param { value, span: None }).expect("settable");
        }
        root
    }

    #[test]
    fn kale_beats_hpa_on_a_bursty_diurnal_week() {
        let root = params(&[("workload.days", "7"), ("cluster.warmup_days", "3")]);
        let s = Scenario::from_params(&root).expect("valid");
        let none = Params::new("policy", None);
        let hpa = s.run("hpa", &none, 1, &mut |_| {}).expect("runs");
        let kale = s.run("kale", &none, 1, &mut |_| {}).expect("runs");
        let lag = |o: &RunOutput| o.metric("accumulated_lag_msample_h").expect("metric");
        assert!(lag(&kale) < lag(&hpa), "kale {} vs hpa {}", lag(&kale), lag(&hpa));
        // Every sample is served or still queued.
        for o in [&hpa, &kale] {
            let arrived = o.metric("arrived_msamples").expect("metric") * 1e6;
            let served = o.metric("served_pct").expect("metric") / 100.0 * arrived;
            let queued = o.metric("unserved_samples_end").expect("metric");
            assert!((served + queued - arrived).abs() <= 1e-9 * arrived, "{served} + {queued} vs {arrived}");
            assert!(o.metric("workers_mean").expect("metric") >= 0.0);
        }
        assert!(kale.notes.is_empty(), "{:?}", kale.notes);
    }

    #[test]
    fn bad_settings_are_named() {
        let e = Scenario::from_params(&params(&[("cluster.min_workers", "10"), ("cluster.max_workers", "5")]))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("min_workers (10) is above max_workers (5)"), "{e}");
        let e = Scenario::from_params(&params(&[("workload.days", "1"), ("cluster.warmup_days", "2")]))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("covers the whole demand"), "{e}");
        let s = Scenario::from_params(&params(&[("workload.days", "3")])).expect("valid");
        let e = s.check("vpa", &Params::new("policy", None)).expect_err("refused").to_string();
        assert!(e.contains("available: hpa"), "{e}");
        assert!(s.check("autoburst", &Params::new("policy", None)).is_err(), "autoburst needs a burstable cluster");
        let mut p = Params::new("policy", None);
        p.set_path(
            "model",
            nimbus_sim::params::Param { value: nimbus_sim::params::Value::Str("prophet".into()), span: None },
        )
        .expect("settable");
        assert!(s.check("kale", &p).expect_err("refused").to_string().contains("unknown model"));
    }
}
