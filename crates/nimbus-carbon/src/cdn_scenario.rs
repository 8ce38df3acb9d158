//! The `cdn` model of a carbon scenario: CDN-Shifter against
//! latency-optimal serving ([`crate::cdn_shifter`]).
//!
//! Keys of `[datacenter]` (`kind = "cdn"`): `latency` (the GCP RTT matrix
//! labelled by zone), `carbon` (a wide hourly intensity file, one column
//! per zone, such as `ci_2022_hourly_123zones_lca.csv`), `prices`
//! (optional wide hourly USD/MWh), `region` (`us`, `europe` or `world`;
//! each policy may name another), `idle_w` (100), `peak_w` (300), `pue`
//! (1.2), `headroom` (1.5: each site sized for its users' peak × this),
//! `hours` (8,760). Absent files → eight synthetic sites, said so.
//!
//! Every policy takes `solar_fraction` (0) and `solar_on` (`site`):
//! solar panels behind every site's meter whose peak is that share of the
//! site's full facility power, on a clear-sky day
//! ([`cdn_shifter::solar_kwh`]), or (`grid`) solar added to every site's
//! zone supplying that share of its electricity at local noon
//! ([`cdn_shifter::Sites::with_grid_solar`]). `solar_saving_t` is what the
//! solar saves under the policy (the same run without it, minus this one),
//! the figure CDN-Shifter's added-solar claims compare.
//!
//! Every run also routes latency-optimally on the same sites and hours and
//! reports its saving against that.

use std::path::Path;

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::{Better, Metric, RunOutput, Series};
use nimbus_sim::params::Params;

use crate::cdn_shifter::{self, Edge, Shifting, Sites};
use crate::scenario::ScenarioError;

/// A prepared CDN scenario.
#[derive(Debug, Clone)]
pub struct CdnScenario {
    world: Sites,
    region: String,
    edge: Edge,
    hours: usize,
    prices_given: bool,
    fallbacks: Vec<String>,
}

const METRICS: &[&str] = &[
    "carbon_t",
    "baseline_carbon_t",
    "carbon_saving_pct",
    "added_rtt_ms",
    "energy_mwh",
    "cost_kusd",
    "servers_moved",
    "solar_mwh",
    "solar_saving_t",
    "sites",
    "lps",
];

const REGIONS: [&str; 3] = ["us", "europe", "world"];

impl CdnScenario {
    /// Reads `[datacenter]`.
    pub fn from_params(w: &Params, d: &Params) -> Result<CdnScenario, ScenarioError> {
        w.finish(&[])?;
        d.finish(&["kind", "latency", "carbon", "prices", "region", "idle_w", "peak_w", "pue", "headroom", "hours"])?;
        let mut fallbacks = Vec::new();
        let latency = d.str("latency")?;
        let carbon = d.str("carbon")?;
        let world = match (latency, carbon) {
            (Some(l), Some(c)) if Path::new(l).is_file() && Path::new(c).is_file() => {
                let prices = d.str("prices")?.map(Path::new).filter(|p| {
                    let present = p.is_file();
                    if !present {
                        fallbacks.push(format!("{} is absent: costs are not reported", p.display()));
                    }
                    present
                });
                Sites::read(Path::new(l), Path::new(c), prices, "world").map_err(ScenarioError::Invalid)?
            }
            _ => {
                fallbacks.push(
                    "the latency matrix or intensity file is absent: eight synthetic sites (US and Europe) stand in"
                        .into(),
                );
                Sites::synthetic()
            }
        };
        let region = d.choice_or("region", &REGIONS, "world")?.to_string();
        world.subset(&region).map_err(ScenarioError::Invalid)?;
        let idle_w = d.f64_in("idle_w", 100.0, 0.0..=1e5)?;
        let peak_w = d.f64_in("peak_w", 300.0, 0.0..=1e5)?;
        if idle_w > peak_w {
            return Err(ScenarioError::Param(d.error("idle_w", format!("{idle_w} W is above peak_w ({peak_w} W)"))));
        }
        Ok(CdnScenario {
            prices_given: d.contains("prices"),
            hours: d.usize_in("hours", 8760, 1..=world.hours().max(1))?,
            world,
            region,
            edge: Edge {
                idle_w,
                peak_w,
                per_server: 1.0,
                pue: d.f64_in("pue", 1.2, 1.0..=5.0)?,
                headroom: d.f64_in("headroom", 1.5, 1.0..=100.0)?,
            },
            fallbacks,
        })
    }

    /// Where `solar_fraction` adds panels: `site` (behind each site's
    /// meter) or `grid` (to each site's zone).
    fn solar_on_grid(p: &Params) -> Result<bool, ScenarioError> {
        Ok(p.choice_or("solar_on", &["site", "grid"], "site")? == "grid")
    }

    fn settings(&self, policy: &str, p: &Params) -> Result<(Shifting, String), ScenarioError> {
        let region = p.choice_or("region", &REGIONS, &self.region)?.to_string();
        let solar_fraction = p.f64_in("solar_fraction", 0.0, 0.0..=100.0)?;
        if policy == "latency-optimal" {
            return Ok((Shifting { delta_ms: None, price_weight: 0.0, move_cost_kg: None, solar_fraction }, region));
        }
        let shifting = Shifting {
            solar_fraction,
            delta_ms: Some(p.f64_in("delta_ms", 60.0, 0.0..=1000.0)?),
            price_weight: p.f64_in("price_weight", 0.0, 0.0..=1e6)?,
            move_cost_kg: if p.bool_or("capacity_shifting", false)? {
                Some(p.f64_in("move_cost_kg", 50.0, 0.0..=1e7)?)
            } else {
                if p.contains("move_cost_kg") {
                    return Err(ScenarioError::Param(
                        p.error("move_cost_kg", "is set without capacity_shifting = true"),
                    ));
                }
                None
            },
        };
        Ok((shifting, region))
    }

    /// Checks a policy's parameters.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        let (_, region) = self.settings(policy, params)?;
        self.world.subset(&region).map_err(ScenarioError::Invalid).map(|_| ())
    }

    /// Runs one policy.
    pub fn run(&self, policy: &str, params: &Params) -> Result<RunOutput, ScenarioError> {
        let (mut shifting, region) = self.settings(policy, params)?;
        let with_solar = shifting.solar_fraction > 0.0;
        let plain = self.world.subset(&region).map_err(ScenarioError::Invalid)?;
        let hours = Some(self.hours);
        let sites = if Self::solar_on_grid(params)? && with_solar {
            let greener = plain.with_grid_solar(shifting.solar_fraction);
            shifting.solar_fraction = 0.0;
            greener
        } else {
            plain.clone()
        };
        let o = cdn_shifter::run(&sites, &self.edge, &shifting, hours).map_err(ScenarioError::Invalid)?;
        // The baseline: latency-optimal serving with the same solar.
        let latency_optimal = Shifting { delta_ms: None, price_weight: 0.0, move_cost_kg: None, ..shifting };
        let base = cdn_shifter::run(&sites, &self.edge, &latency_optimal, hours).map_err(ScenarioError::Invalid)?;
        // What the solar saves under this policy: the same run without it.
        let solar_saving_g = if with_solar {
            let without = Shifting { solar_fraction: 0.0, ..shifting };
            cdn_shifter::run(&plain, &self.edge, &without, hours).map_err(ScenarioError::Invalid)?.carbon_g - o.carbon_g
        } else {
            0.0
        };
        let has_prices = sites.price.iter().all(Option::is_some);
        let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
        let metrics = vec![
            m("carbon_t", o.carbon_g / 1e6, Better::Lower),
            m("baseline_carbon_t", base.carbon_g / 1e6, Better::Neither),
            m("carbon_saving_pct", 100.0 * (1.0 - o.carbon_g / base.carbon_g), Better::Higher),
            m("added_rtt_ms", o.added_rtt_ms, Better::Lower),
            m("energy_mwh", o.energy_kwh / 1e3, Better::Lower),
            m("cost_kusd", if has_prices { o.cost_usd / 1e3 } else { f64::NAN }, Better::Lower),
            m("servers_moved", o.servers_moved, Better::Neither),
            m("solar_mwh", o.solar_kwh / 1e3, Better::Neither),
            m("solar_saving_t", solar_saving_g / 1e6, Better::Higher),
            m("sites", sites.names.len() as f64, Better::Neither),
            m("lps", o.lps as f64, Better::Neither),
        ];
        let series = vec![Series {
            name: "carbon_kg".into(),
            x_label: "hour".into(),
            y_label: "carbon per hour (kg CO2)".into(),
            points: o.hourly_g.iter().enumerate().map(|(t, g)| (t as f64, g / 1e3)).collect(),
        }];
        let mut notes: Vec<String> = sites
            .left_out
            .iter()
            .filter(|s| cdn_shifter::in_region(&region, s.split(':').next().unwrap_or("")))
            .map(|s| format!("site left out: {s}"))
            .collect();
        if self.prices_given && !has_prices {
            notes.push(format!("{region}: not every site has a price column; cost_kusd is not reported"));
        }
        Ok(RunOutput { metrics, tables: Vec::new(), series, timings: Vec::new(), notes })
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        METRICS.iter().map(|m| m.to_string()).collect()
    }

    /// What one run needs: an LP per hour over the allowed pairs.
    pub fn estimate(&self) -> Estimate {
        let n = self.world.names.len() as u64;
        let mut e = Estimate::default();
        e.memory("intensity and prices", n.saturating_mul(self.world.hours() as u64).saturating_mul(16));
        e.events("hourly LPs × pairs", (self.hours as u64).saturating_mul(n * n).saturating_mul(2));
        e
    }
}
