//! The `modular` model of a carbon scenario: SkyBox's modular datacenters
//! at renewable farms against single-farm deployments ([`crate::skybox`]).
//!
//! Keys of `[datacenter]` (`kind = "modular"`):
//! - `farms`: production files (a UTC timestamp column, then one column
//!   per source or zone; hourly or finer, averaged to hours), such as Let's
//!   Wait Awhile's `{fr,gb}_production.csv` or GreenDCC's
//!   `renewable_pct_hourly_utc_2021_2024.csv`. Every farm is named
//!   `<file prefix>:<column>` (`fr:Solar`). Absent files → six synthetic
//!   farms (three solar, three wind), said so.
//! - `farm_columns`: which columns are farms (`["Solar", "Wind Onshore",
//!   "Wind Offshore"]`; a file lacking some gives the others), or `"all"`.
//! - `start` (UTC date; the first hour after the history), `history_days`
//!   (28: the window CVs, correlations and forecasts learn from), `days`
//!   (28 evaluated).
//! - `vms` (1,000 slots over all sites, split evenly), `vm_w` (60 W per
//!   VM at the facility), `renewable_ratio` (1.5: each deployment's farms
//!   produce, over the evaluated days, this multiple of the mean demand's
//!   energy, split evenly across its farms: every deployment receives the
//!   same renewable energy and differs only in when it arrives), `backup_fraction` (0.5 of a site's
//!   full power can come from the grid or a generator), `backup_g_per_kwh`
//!   (450).
//!
//! Keys of `[workload]`: `kind` `synthetic` (the default: `load` 0.6 of the
//! slots, ±15% over the day, 3% noise per hour, drawn per seed) or `gaia`
//! (`path`: a GAIA job trace; cores running per hour from `start_day` (0),
//! scaled to a mean of `load` × `vms`, capped at `vms`; absent file →
//! synthetic, said so). Workload hour 0 is the first evaluated hour.

use std::path::Path;

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Series, Table};
use nimbus_sim::params::Params;
use nimbus_sim::rng::RngStreams;

use crate::scenario::ScenarioError;
use crate::skybox::{self, Controller, Predictor, Site};

/// A farm's hourly output.
#[derive(Debug, Clone)]
pub struct Farm {
    /// `<file prefix>:<column>`.
    pub name: String,
    /// Output per hour (the file's unit).
    pub output: Vec<f64>,
}

#[derive(Debug, Clone)]
enum Demand {
    Synthetic,
    /// Cores running per hour, from the window's first hour.
    Trace(Vec<f64>),
}

/// A prepared modular-datacenter scenario.
#[derive(Debug, Clone)]
pub struct ModularScenario {
    farms: Vec<Farm>,
    /// Index of the first evaluated hour in every farm's output.
    start: usize,
    history_h: usize,
    hours: usize,
    vms: u32,
    load: f64,
    vm_kw: f64,
    renewable_ratio: f64,
    backup_fraction: f64,
    backup_g_per_kwh: f64,
    demand: Demand,
    /// The farms are the synthetic stand-ins.
    synthetic: bool,
    fallbacks: Vec<String>,
}

const METRICS: &[&str] = &[
    "carbon_kg",
    "non_renewable_kwh",
    "renewable_share_pct",
    "curtailed_kwh",
    "evictions",
    "evicted_vm_h",
    "migrations",
    "combined_cv",
    "best_member_cv",
    "sites",
    "solves",
    "node_limited",
    "forecast_error_pct",
];

/// Keys every policy accepts: the controller.
pub const CONTROLLER_KEYS: &[&str] = &["forecaster", "horizon_h", "replan_h", "migration_kwh", "eviction_kwh"];

fn prefix(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("farm");
    stem.split('_').next().unwrap_or(stem).to_string()
}

/// Reads the farms of one file, averaged to hours.
fn read_farms(path: &Path, columns: Option<&[&str]>) -> Result<(i64, Vec<Farm>), ScenarioError> {
    let source = nimbus_trace::Source::file(path);
    let header = nimbus_trace::series::columns(source)?;
    let chosen: Vec<&str> = match columns {
        Some(wanted) => wanted.iter().copied().filter(|c| header.iter().any(|h| h == c)).collect(),
        None => header.iter().skip(1).map(String::as_str).collect(),
    };
    if chosen.is_empty() {
        return Err(ScenarioError::Invalid(format!(
            "{}: none of the farm columns {} is in the file (columns: {}); set `farm_columns`",
            path.display(),
            columns.unwrap_or(&[]).join(", "),
            header.iter().skip(1).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let series = nimbus_trace::series::read_columns(source, &chosen)?;
    let mut start = None;
    let mut farms = Vec::new();
    for s in series {
        if s.step_s == 0 || 3600 % s.step_s != 0 {
            return Err(ScenarioError::Invalid(format!(
                "{}: steps of {} s; farm output must be hourly or finer (a step that divides an hour)",
                path.display(),
                s.step_s
            )));
        }
        if s.start_unix_s % 3600 != 0 {
            return Err(ScenarioError::Invalid(format!("{}: the first timestamp is not on the hour", path.display())));
        }
        if let Some((i, v)) = s.values.iter().enumerate().find(|(_, v)| !v.is_nan() && **v < 0.0) {
            return Err(ScenarioError::Invalid(format!(
                "{}: `{}` is negative ({v}) at {}; a farm's output cannot be",
                path.display(),
                s.name,
                nimbus_trace::series::format_utc(s.start_unix_s + s.step_s as i64 * i as i64)
            )));
        }
        start = Some(s.start_unix_s);
        let output = hourly_means(&s.values, (3600 / s.step_s) as usize);
        farms.push(Farm { name: format!("{}:{}", prefix(path), s.name), output });
    }
    Ok((start.unwrap_or(0), farms))
}

/// Means of the values present in each hour (`per_hour` steps); an hour
/// with none is missing (NaN). A file whose resolution changes (Let's Wait
/// Awhile's GB production goes from 30 to 15 minutes on 2020-10-31) reads
/// on the finer grid with the coarser part's in-between steps missing, and
/// its hours stay whole.
fn hourly_means(values: &[f64], per_hour: usize) -> Vec<f64> {
    values
        .chunks(per_hour.max(1))
        .map(|hour| {
            let present: Vec<f64> = hour.iter().copied().filter(|v| !v.is_nan()).collect();
            if present.is_empty() { f64::NAN } else { present.iter().sum::<f64>() / present.len() as f64 }
        })
        .collect()
}

/// Six seeded synthetic farms over `hours` from 2020-01-01: three solar
/// (a clear-sky day curve times daily cloudiness, shifted by longitude)
/// and three wind (a mean-reverting walk).
fn synthetic_farms(hours: usize) -> Vec<Farm> {
    let mut rng = RngStreams::new(1).stream("skybox-farms");
    let mut farms = Vec::new();
    for (k, shift) in [0i64, 1, 3].into_iter().enumerate() {
        let mut cloud = 1.0;
        let output = (0..hours)
            .map(|h| {
                if h % 24 == 0 {
                    cloud = rng.uniform_range(0.3, 1.0);
                }
                let local = ((h as i64 + shift).rem_euclid(24)) as f64;
                let sun = (std::f64::consts::PI * (local - 6.0) / 12.0).sin().max(0.0);
                100.0 * sun * cloud
            })
            .collect();
        farms.push(Farm { name: format!("synthetic:solar-{}", k + 1), output });
    }
    for k in 0..3 {
        let mut level: f64 = 0.5;
        let output = (0..hours)
            .map(|_| {
                level = (level + 0.1 * (0.5 - level) + rng.normal(0.0, 0.08)).clamp(0.0, 1.0);
                100.0 * level
            })
            .collect();
        farms.push(Farm { name: format!("synthetic:wind-{}", k + 1), output });
    }
    farms
}

/// Hourly cores running from the GAIA jobs, from hour `start_h`.
fn cores_per_hour(jobs: &[nimbus_trace::gaia::Job], start_h: f64, hours: usize) -> Vec<f64> {
    let mut delta = vec![0.0; hours + 1];
    for j in jobs {
        let (a, b) = (j.arrival_h - start_h, j.arrival_h + j.length_h - start_h);
        if b <= 0.0 || a >= hours as f64 {
            continue;
        }
        // A job counts for the hours it overlaps, by the share it overlaps.
        let (a, b) = (a.max(0.0), b.min(hours as f64));
        let mut t = a;
        while t < b {
            let h = t.floor() as usize;
            let end = ((h + 1) as f64).min(b);
            delta[h] += f64::from(j.cpus) * (end - t);
            t = end;
        }
    }
    delta.truncate(hours);
    delta
}

impl ModularScenario {
    /// Reads `[workload]` and `[datacenter]`.
    pub fn from_params(w: &Params, d: &Params) -> Result<ModularScenario, ScenarioError> {
        d.finish(&[
            "kind",
            "farms",
            "farm_columns",
            "start",
            "history_days",
            "days",
            "vms",
            "vm_w",
            "renewable_ratio",
            "backup_fraction",
            "backup_g_per_kwh",
        ])?;
        let mut fallbacks = Vec::new();
        let history_h = d.usize_in("history_days", 28, 1..=3660)? * 24;
        let hours = d.usize_in("days", 28, 1..=3660)? * 24;
        let columns: Option<Vec<&str>> = match d.str_or_list("farm_columns")? {
            Some(list) if list == ["all"] => None,
            Some(list) => Some(list),
            None => Some(vec!["Solar", "Wind Onshore", "Wind Offshore"]),
        };
        let files = d.str_or_list("farms")?.unwrap_or_default();
        let present: Vec<&str> = files.iter().copied().filter(|f| Path::new(f).is_file()).collect();
        let farms_synthetic = present.is_empty() || present.len() < files.len();
        let (farms, start) = if farms_synthetic {
            if !files.is_empty() {
                fallbacks.push(format!(
                    "{} absent: six synthetic farms (three solar, three wind) stand in",
                    files.iter().filter(|f| !Path::new(f).is_file()).copied().collect::<Vec<_>>().join(", ")
                ));
            } else {
                fallbacks.push("no `farms` files: six synthetic farms (three solar, three wind) stand in".into());
            }
            if let Some(start) = d.str("start")? {
                fallbacks
                    .push(format!("`start` ({start}) applies to the farm files; the synthetic farms start 2020-01-01"));
            }
            (synthetic_farms(history_h + hours), history_h)
        } else {
            // One clock: the overlap of every file's hours.
            let mut read = Vec::new();
            for f in &present {
                read.push(read_farms(Path::new(f), columns.as_deref())?);
            }
            let first = read.iter().map(|(s, _)| *s).max().unwrap_or(0);
            let mut farms = Vec::new();
            for (s, fs) in read {
                let skip = ((first - s) / 3600) as usize;
                for mut farm in fs {
                    farm.output.drain(..skip.min(farm.output.len()));
                    farms.push(farm);
                }
            }
            let len = farms.iter().map(|f| f.output.len()).min().unwrap_or(0);
            for f in &mut farms {
                f.output.truncate(len);
            }
            let start = match d.str("start")? {
                None => history_h,
                Some(text) => {
                    let t = nimbus_trace::series::parse_utc_seconds(&format!("{text} 00:00"))
                        .or_else(|| nimbus_trace::series::parse_utc_seconds(text))
                        .ok_or_else(|| d.error("start", format!("{text:?} is not a UTC date (YYYY-MM-DD)")))?;
                    if t < first + 3600 * history_h as i64 {
                        return Err(ScenarioError::Param(d.error(
                            "start",
                            format!(
                                "{text} leaves less than {} days of history after the farms' first common hour, {}",
                                history_h / 24,
                                nimbus_trace::series::format_utc(first)
                            ),
                        )));
                    }
                    ((t - first) / 3600) as usize
                }
            };
            if start + hours > len {
                return Err(ScenarioError::Invalid(format!(
                    "the farms share {len} hours from {}; {} days from {} do not fit",
                    nimbus_trace::series::format_utc(first),
                    hours / 24,
                    nimbus_trace::series::format_utc(first + 3600 * start as i64)
                )));
            }
            for f in &farms {
                if let Some(i) = f.output[start - history_h..start + hours].iter().position(|v| v.is_nan()) {
                    return Err(ScenarioError::Invalid(format!(
                        "farm `{}` has no value at {} (a missing hour or empty cell); fill the gaps first",
                        f.name,
                        nimbus_trace::series::format_utc(first + 3600 * (start - history_h + i) as i64)
                    )));
                }
            }
            (farms, start)
        };
        let vms = d.u32_in("vms", 1000, 1..=10_000_000)?;
        let load = w.f64_in("load", 0.6, 0.01..=1.0)?;
        let demand = match w.choice_or("kind", &["synthetic", "gaia"], "synthetic")? {
            "synthetic" => {
                w.finish(&["kind", "load"])?;
                Demand::Synthetic
            }
            _ => {
                w.finish(&["kind", "load", "path", "start_day"])?;
                let path = w.required_str("path")?;
                let start_day = w.f64_in("start_day", 0.0, 0.0..=3660.0)?;
                if Path::new(path).is_file() {
                    let jobs = nimbus_trace::gaia::read_jobs(nimbus_trace::Source::file(Path::new(path)))?;
                    let cores = cores_per_hour(&jobs, start_day * 24.0, hours);
                    if skybox::mean(&cores) <= 0.0 {
                        return Err(ScenarioError::Invalid(format!(
                            "{path}: no job runs in the {} days from day {start_day}",
                            hours / 24
                        )));
                    }
                    Demand::Trace(cores)
                } else {
                    fallbacks.push(format!("{path} is absent: the synthetic diurnal demand stands in"));
                    Demand::Synthetic
                }
            }
        };
        Ok(ModularScenario {
            farms,
            start,
            history_h,
            hours,
            vms,
            load,
            vm_kw: d.f64_in("vm_w", 60.0, 0.1..=1e5)? / 1000.0,
            renewable_ratio: d.f64_in("renewable_ratio", 1.5, 0.0..=100.0)?,
            backup_fraction: d.f64_in("backup_fraction", 0.5, 0.0..=10.0)?,
            backup_g_per_kwh: d.f64_in("backup_g_per_kwh", 450.0, 0.0..=5000.0)?,
            demand,
            synthetic: farms_synthetic,
            fallbacks,
        })
    }

    fn demand(&self, seed: u64) -> Vec<u32> {
        let target = self.load * f64::from(self.vms);
        match &self.demand {
            Demand::Trace(cores) => {
                let scale = target / skybox::mean(cores);
                cores.iter().map(|c| (c * scale).round().min(f64::from(self.vms)) as u32).collect()
            }
            Demand::Synthetic => {
                let mut rng = RngStreams::new(seed).stream("skybox-demand");
                (0..self.hours)
                    .map(|h| {
                        let day = (std::f64::consts::TAU * ((h % 24) as f64 - 14.0) / 24.0).cos();
                        let v = target * (1.0 + 0.15 * day) * (1.0 + rng.normal(0.0, 0.03));
                        v.round().clamp(0.0, f64::from(self.vms)) as u32
                    })
                    .collect()
            }
        }
    }

    fn history(&self, farm: usize) -> &[f64] {
        &self.farms[farm].output[self.start - self.history_h..self.start]
    }

    fn farm_index(&self, name: &str) -> Result<usize, ScenarioError> {
        self.farms.iter().position(|f| f.name == name).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "unknown farm {name:?}; farms: {}",
                self.farms.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The farms a policy deploys at, with the selection's CVs.
    fn deployment(&self, policy: &str, params: &Params) -> Result<skybox::Selection, ScenarioError> {
        let history: Vec<Vec<f64>> = (0..self.farms.len()).map(|f| self.history(f).to_vec()).collect();
        let invalid = ScenarioError::Invalid;
        match policy {
            "single-farm" => {
                let farm = match params.str("farm")? {
                    // A scenario written for the farm files still runs on
                    // the stand-ins (the run's note says which farm).
                    Some(_) if self.synthetic => 0,
                    Some(name) => self.farm_index(name)?,
                    None => 0,
                };
                let farm_cv: Vec<f64> = history.iter().map(|h| skybox::coefficient_of_variation(h)).collect();
                if !farm_cv[farm].is_finite() {
                    return Err(invalid(format!("farm `{}` produces nothing over the history", self.farms[farm].name)));
                }
                Ok(skybox::Selection { members: vec![farm], cv: farm_cv[farm], farm_cv, candidates: 1 })
            }
            "best-cv" => skybox::select(&history, 1..=1, f64::INFINITY, 1.0).map_err(invalid),
            _ => {
                let most = params.usize_in("farms", 3, 1..=6)?;
                let least = params.usize_in("min_farms", 2.min(most), 1..=most)?;
                skybox::select(
                    &history,
                    least..=most,
                    params.f64_in("max_cv", 2.0, 0.0..=100.0)?,
                    params.f64_in("max_correlation", 0.3, -1.0..=1.0)?,
                )
                .map_err(invalid)
            }
        }
    }

    fn controller(&self, params: &Params) -> Result<Controller, ScenarioError> {
        let horizon_h = params.usize_in("horizon_h", 24, 1..=168)?;
        let replan_h = params.usize_in("replan_h", 6, 1..=horizon_h)?;
        let predictor = match params.str("forecaster")?.unwrap_or("linear") {
            "oracle" => Predictor::Oracle,
            spec => Predictor::Model(
                nimbus_forecast::models::parse(spec)
                    .map_err(|e| ScenarioError::Param(params.error("forecaster", e.to_string())))?,
            ),
        };
        Ok(Controller {
            horizon_h,
            replan_h,
            history_h: self.history_h,
            predictor,
            migration_kwh: params.f64_in("migration_kwh", 0.5, 0.0..=1e6)?,
            eviction_kwh: params.f64_in("eviction_kwh", 10.0, 0.0..=1e9)?,
            node_limit: 2_000,
        })
    }

    /// Checks a policy's parameters.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        self.deployment(policy, params)?;
        self.controller(params).map(|_| ())
    }

    /// Runs one deployment.
    pub fn run(
        &self,
        policy: &str,
        params: &Params,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let selection = self.deployment(policy, params)?;
        let controller = self.controller(params)?;
        let demand = self.demand(seed);
        let k = selection.members.len() as u32;
        let mean_demand_kw = skybox::mean(&demand.iter().map(|&d| f64::from(d)).collect::<Vec<_>>()) * self.vm_kw;
        let sites: Vec<Site> = selection
            .members
            .iter()
            .enumerate()
            .map(|(i, &f)| -> Result<Site, ScenarioError> {
                // Even split; the first sites take the remainder slots.
                let capacity_vms = self.vms / k + u32::from((i as u32) < self.vms % k);
                // Sized on the evaluated hours: every deployment receives
                // the same renewable energy, and differs only in when.
                let evaluated_mean = skybox::mean(&self.farms[f].output[self.start..self.start + self.hours]);
                if evaluated_mean <= 0.0 {
                    return Err(ScenarioError::Invalid(format!(
                        "farm `{}` produces nothing over the evaluated days",
                        self.farms[f].name
                    )));
                }
                let scale = self.renewable_ratio * mean_demand_kw / f64::from(k) / evaluated_mean;
                Ok(Site {
                    name: self.farms[f].name.clone(),
                    capacity_vms,
                    backup_kw: self.backup_fraction * f64::from(capacity_vms) * self.vm_kw,
                    renewable_kw: self.farms[f].output[..self.start + self.hours].iter().map(|v| v * scale).collect(),
                })
            })
            .collect::<Result<_, _>>()?;
        let out = skybox::run(&sites, self.vm_kw, &demand, self.start, &controller, progress)
            .map_err(ScenarioError::Invalid)?;
        let backup = out.backup_kwh();
        let used = out.renewable_used_kwh();
        let best_member = selection.members.iter().map(|&m| selection.farm_cv[m]).fold(f64::INFINITY, f64::min);
        let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
        let metrics = vec![
            m("carbon_kg", backup * self.backup_g_per_kwh / 1000.0, Better::Lower),
            m("non_renewable_kwh", backup, Better::Lower),
            m("renewable_share_pct", 100.0 * used / (used + backup).max(f64::MIN_POSITIVE), Better::Higher),
            m("curtailed_kwh", out.curtailed_kwh(), Better::Neither),
            m("evictions", out.evictions() as f64, Better::Lower),
            m("evicted_vm_h", out.evicted_vm_h() as f64, Better::Lower),
            m("migrations", out.migrations() as f64, Better::Lower),
            m("combined_cv", selection.cv, Better::Lower),
            m("best_member_cv", best_member, Better::Lower),
            m("sites", f64::from(k), Better::Neither),
            m("solves", out.solves as f64, Better::Neither),
            m("node_limited", out.node_limited as f64, Better::Neither),
            m("forecast_error_pct", out.forecast_error_pct(), Better::Lower),
        ];
        let farms = Table {
            name: "farms".into(),
            columns: vec!["farm".into(), "history_cv".into(), "history_mean".into(), "deployed".into()],
            rows: self
                .farms
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    vec![
                        Cell::Str(f.name.clone()),
                        Cell::Float(selection.farm_cv[i]),
                        Cell::Float(skybox::mean(self.history(i))),
                        Cell::Bool(selection.members.contains(&i)),
                    ]
                })
                .collect(),
        };
        let hourly = |name: &str, label: &str, f: &dyn Fn(&skybox::Hour) -> f64| Series {
            name: name.into(),
            x_label: "hour".into(),
            y_label: label.into(),
            points: out.hours.iter().enumerate().map(|(h, v)| (h as f64, f(v))).collect(),
        };
        let series = vec![
            hourly("renewable_kw", "renewable output of the deployment's farms (kW)", &|h| h.renewable_kw),
            hourly("backup_kw", "non-renewable power drawn (kW)", &|h| h.backup_kw),
            hourly("served_vms", "VMs running", &|h| f64::from(h.served)),
        ];
        let notes = vec![format!(
            "deployed at {} (combined CV {:.3}; members' CVs {})",
            selection.members.iter().map(|&m| self.farms[m].name.as_str()).collect::<Vec<_>>().join(", "),
            selection.cv,
            selection.members.iter().map(|&m| format!("{:.3}", selection.farm_cv[m])).collect::<Vec<_>>().join(", ")
        )];
        Ok(RunOutput { metrics, tables: vec![farms], series, timings: Vec::new(), notes })
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        METRICS.iter().map(|m| m.to_string()).collect()
    }

    /// What one run needs.
    pub fn estimate(&self) -> Estimate {
        let mut e = Estimate::default();
        let farms = self.farms.len() as u64;
        e.memory("farm outputs", farms.saturating_mul((self.start + self.hours) as u64).saturating_mul(16));
        e.events("placement MIPs", (self.hours as u64).div_ceil(6));
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaia_jobs_count_by_their_overlap_with_each_hour() {
        let job = |arrival_h, length_h, cpus| nimbus_trace::gaia::Job { arrival_h, length_h, cpus };
        // Starts half-way through hour 1 (window from hour 10 of the trace),
        // runs 2 h on 4 cores: 2, 4, 2 core-hours in hours 1, 2, 3.
        let cores = cores_per_hour(&[job(11.5, 2.0, 4), job(0.0, 5.0, 8), job(40.0, 1.0, 1)], 10.0, 5);
        assert_eq!(cores, vec![0.0, 2.0, 4.0, 2.0, 0.0]);
    }

    #[test]
    fn hours_average_the_values_present() {
        let nan = f64::NAN;
        let hours = hourly_means(&[1.0, nan, 3.0, nan, 2.0, 2.0, 4.0, 4.0, nan, nan, nan, nan, 5.0], 4);
        assert_eq!(hours[..2], [2.0, 3.0]);
        assert!(hours[2].is_nan(), "an hour with no value stays missing");
        assert_eq!(hours[3], 5.0, "a trailing partial hour keeps what it has");
    }
}
