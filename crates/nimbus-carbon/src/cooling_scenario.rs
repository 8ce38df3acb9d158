//! The `cooling` model of a carbon scenario: InferCool's thermal-aware
//! placement against thermal-agnostic placement ([`crate::infercool`]).
//!
//! Keys of `[datacenter]` (`kind = "cooling"`): `weather_temp` and
//! `weather_rh` (hourly files with one column per site, such as GreenDCC's
//! `weather_2023_hourly_localtime_{temp_c,rh_pct}.csv`; local time, which
//! this model may use as it joins them with nothing in UTC), `site`
//! (`US-TEX-ERCO`), `hours` (all), `gpus` (8), `slices` (7), `services`
//! (12), `zipf` (1.1), `fill` (0.75 of the slices run an instance),
//! `peak_utilization` (0.9), `r_c_per_w` (0.1), `c_j_per_c` (1,000),
//! `limit_c` (65), `setpoint_c` (25: the fixed supply at which
//! temperatures are reported), `max_supply_c` (40), `approach_c` (5), `free_cop` (25),
//! `carnot_fraction` (0.5). Absent weather → a synthetic mild year, said so.
//! Every policy takes `routing` (`even`, or `headroom`: InferCool's
//! request routing by thermal headroom, [`infercool::Routing`]).

use std::path::Path;

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::{Better, Metric, RunOutput, Series};
use nimbus_sim::params::Params;

use crate::infercool::{self, CoolingSetup, Placement, Routing};
use crate::scenario::ScenarioError;

/// A prepared cooling scenario.
#[derive(Debug, Clone)]
pub struct CoolingScenario {
    setup: CoolingSetup,
    weather: Vec<(f64, f64)>,
    fallbacks: Vec<String>,
}

const METRICS: &[&str] = &[
    "max_gpu_temp_c",
    "mean_hottest_gpu_c",
    "cooling_energy_kwh",
    "it_energy_kwh",
    "cooling_overhead_pct",
    "free_cooling_h",
    "mean_supply_c",
];

fn read_site(path: &Path, site: &str) -> Result<Vec<f64>, ScenarioError> {
    let source = nimbus_trace::Source::file(path);
    let header = nimbus_trace::series::columns(source)?;
    if !header.iter().any(|h| h == site) {
        return Err(ScenarioError::Invalid(format!(
            "{}: no column `{site}` (unknown site); columns: {}",
            path.display(),
            header.iter().skip(1).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let series = nimbus_trace::series::read_column(source, site)?;
    if let Some(i) = series.first_missing() {
        return Err(ScenarioError::Invalid(format!(
            "{}: `{site}` has no value at position {i} (a missing hour or empty cell; {} missing); fill the gaps first",
            path.display(),
            series.missing()
        )));
    }
    if series.step_s != 3600 {
        return Err(ScenarioError::Invalid(format!(
            "{}: steps of {} s; hourly weather is expected",
            path.display(),
            series.step_s
        )));
    }
    Ok(series.values)
}

impl CoolingScenario {
    /// Reads `[datacenter]`.
    pub fn from_params(w: &Params, d: &Params) -> Result<CoolingScenario, ScenarioError> {
        w.finish(&[])?;
        d.finish(&[
            "kind",
            "weather_temp",
            "weather_rh",
            "site",
            "hours",
            "gpus",
            "slices",
            "services",
            "zipf",
            "fill",
            "peak_utilization",
            "r_c_per_w",
            "c_j_per_c",
            "limit_c",
            "setpoint_c",
            "max_supply_c",
            "approach_c",
            "free_cop",
            "carnot_fraction",
        ])?;
        let mut fallbacks = Vec::new();
        let site = d.str("site")?.unwrap_or("US-TEX-ERCO");
        let weather = match (d.str("weather_temp")?, d.str("weather_rh")?) {
            (Some(t), Some(h)) if Path::new(t).is_file() && Path::new(h).is_file() => {
                let temp = read_site(Path::new(t), site)?;
                let rh = read_site(Path::new(h), site)?;
                if temp.len() != rh.len() {
                    return Err(ScenarioError::Invalid(format!(
                        "{t} has {} hours and {h} {}: give both for the same hours",
                        temp.len(),
                        rh.len()
                    )));
                }
                if let Some((i, v)) = rh.iter().enumerate().find(|(_, v)| !(0.0..=100.0).contains(*v)) {
                    return Err(ScenarioError::Invalid(format!(
                        "{h}: relative humidity {v}% at hour {i} is outside 0-100"
                    )));
                }
                temp.into_iter().zip(rh).collect()
            }
            _ => {
                fallbacks
                    .push("the weather files are absent: a synthetic mild year (10 ± 12 °C, 70% RH) stands in".into());
                (0..8760)
                    .map(|h| {
                        let season = (2.0 * std::f64::consts::PI * h as f64 / 8760.0).cos();
                        let day = (2.0 * std::f64::consts::PI * ((h % 24) as f64 - 15.0) / 24.0).cos();
                        (10.0 - 12.0 * season + 5.0 * day, 70.0)
                    })
                    .collect::<Vec<_>>()
            }
        };
        let hours = d.usize_in("hours", weather.len(), 1..=weather.len().max(1))?;
        let gpus = d.usize_in("gpus", 8, 1..=10_000)?;
        let slices = d.usize_in("slices", 7, 1..=7)?;
        let services = d.usize_in("services", 12, 1..=10_000)?;
        if services > gpus * slices {
            return Err(ScenarioError::Param(
                d.error("services", format!("{services} services for {} slices", gpus * slices)),
            ));
        }
        let mut setup = CoolingSetup::zipf(
            gpus,
            slices,
            services,
            d.f64_in("zipf", 1.1, 0.0..=5.0)?,
            d.f64_in("fill", 0.75, 0.01..=1.0)?,
            d.f64_in("peak_utilization", 0.9, 0.0..=1.0)?,
        );
        setup.r_c_per_w = d.f64_in("r_c_per_w", 0.1, 1e-4..=10.0)?;
        setup.c_j_per_c = d.f64_in("c_j_per_c", 1000.0, 1.0..=1e7)?;
        setup.limit_c = d.f64_in("limit_c", 65.0, 20.0..=120.0)?;
        setup.setpoint_c = d.f64_in("setpoint_c", 25.0, 0.0..=80.0)?;
        setup.max_supply_c = d.f64_in("max_supply_c", 40.0, 0.0..=80.0)?;
        setup.approach_c = d.f64_in("approach_c", 5.0, 0.0..=30.0)?;
        setup.free_cop = d.f64_in("free_cop", 25.0, 1.0..=200.0)?;
        setup.carnot_fraction = d.f64_in("carnot_fraction", 0.5, 0.01..=1.0)?;
        Ok(CoolingScenario { setup, weather: weather.into_iter().take(hours).collect(), fallbacks })
    }

    fn placement(policy: &str) -> Placement {
        match policy {
            "bin-packing" => Placement::BinPacking,
            "round-robin" => Placement::RoundRobin,
            _ => Placement::InferCool,
        }
    }

    fn routing(params: &Params) -> Result<Routing, ScenarioError> {
        Ok(match params.choice_or("routing", &["even", "headroom"], "even")? {
            "headroom" => Routing::Headroom,
            _ => Routing::Even,
        })
    }

    /// Checks a policy's `routing`.
    pub fn check(&self, _policy: &str, params: &Params) -> Result<(), ScenarioError> {
        Self::routing(params).map(|_| ())
    }

    /// Runs one placement.
    pub fn run(&self, policy: &str, params: &Params) -> Result<RunOutput, ScenarioError> {
        let o = infercool::run_routed(
            &self.setup,
            Self::placement(policy),
            Self::routing(params)?,
            &self.weather,
            self.setup.max_supply_c,
        )
        .map_err(ScenarioError::Invalid)?;
        let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
        let metrics = vec![
            m("max_gpu_temp_c", o.max_temp_c, Better::Lower),
            m("mean_hottest_gpu_c", o.mean_hottest_c, Better::Lower),
            m("cooling_energy_kwh", o.cooling_kwh, Better::Lower),
            m("it_energy_kwh", o.it_kwh, Better::Neither),
            m("cooling_overhead_pct", 100.0 * o.cooling_kwh / o.it_kwh, Better::Lower),
            m("free_cooling_h", o.free_cooling_h as f64, Better::Higher),
            m("mean_supply_c", o.mean_supply_c, Better::Higher),
        ];
        let series = vec![
            Series {
                name: "hottest_gpu_c".into(),
                x_label: "hour".into(),
                y_label: "hottest GPU at the set-point, steady state (°C)".into(),
                points: o.hourly.iter().enumerate().map(|(h, v)| (h as f64, v.0)).collect(),
            },
            Series {
                name: "supply_c".into(),
                x_label: "hour".into(),
                y_label: "coolant supply the headroom allows (°C)".into(),
                points: o.hourly.iter().enumerate().map(|(h, v)| (h as f64, v.1)).collect(),
            },
        ];
        Ok(RunOutput { metrics, tables: Vec::new(), series, timings: Vec::new(), notes: Vec::new() })
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        METRICS.iter().map(|m| m.to_string()).collect()
    }

    /// What one run needs: a minute step per GPU per hour.
    pub fn estimate(&self) -> Estimate {
        let mut e = Estimate::default();
        e.memory("weather and hourly results", (self.weather.len() as u64).saturating_mul(40));
        e.events("GPU-minutes", (self.weather.len() as u64).saturating_mul(60).saturating_mul(self.setup.gpus as u64));
        e
    }
}
