//! The `fleet` model of a carbon scenario: batch jobs on server
//! generations, placed by a carbon metric ([`crate::sunk_carbon`]).
//!
//! Keys:
//! - `[workload]`, `kind`: `gaia` (`path`: a GAIA job trace; `start_day`
//!   (0) and `days` (7) pick the window; absent file → synthetic, said
//!   so) or `synthetic` (`utilization` (0.5) of the fleet's cores offered
//!   over `days` (7); each seed draws its own). Job hour 0 of the window
//!   is the first hour of the carbon trace (plus `[datacenter]
//!   carbon_offset_days`).
//! - `[datacenter]`, `kind = "fleet"`: `carbon`, `carbon_column`,
//!   `carbon_offset_days` (0), `embodied` (the Boavizta CSV; absent → the
//!   figures of [`crate::embodied::KNOWN`], said so), `power_off_idle`
//!   (false), `job_utilization` (1.0: the share of its cores a job keeps
//!   busy), and `[[datacenter.generation]]` tables: `name`, `count`,
//!   `cores`, `idle_w`, `max_w`, and either `boavizta` (a row name: embodied
//!   carbon = gwp_total × manufacturing share, and its lifetime), `act` (an
//!   ACT bill of materials such as `act_models/boms/dellr740.yaml`: the
//!   silicon's embodied carbon by [`crate::act`], with ACT's tables from
//!   `[datacenter] act_models`, by default the BOM directory's
//!   `../models`; and `lifetime_years`, 4) or `embodied_kg` and
//!   `lifetime_years`.

use std::path::{Path, PathBuf};

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::{Better, Cell, Metric as OutMetric, RunOutput, Table};
use nimbus_sim::params::Params;

use crate::act;
use crate::embodied;
use crate::intensity::Intensity;
use crate::scenario::{ScenarioError, read_intensity};
use crate::sunk_carbon::{self, BatchJob, Generation, Metric, Placer, SweepGrid};

/// A prepared fleet scenario.
#[derive(Debug, Clone)]
pub struct FleetScenario {
    jobs: Option<Vec<BatchJob>>,
    synthetic: (f64, f64),
    /// Where job hour 0 falls, ms since 1970.
    origin_ms: i64,
    generations: Vec<Generation>,
    intensity: Intensity,
    job_utilization: f64,
    power_off_idle: bool,
    fallbacks: Vec<String>,
}

/// Metrics of a placement run.
const RUN_METRICS: &[&str] = &[
    "total_carbon_kg",
    "operational_carbon_kg",
    "embodied_sunk_kg",
    "charged_embodied_kg",
    "metric_carbon_kg",
    "energy_kwh",
    "wait_s_mean",
    "jobs_terminated",
];

/// Metrics of the sweep.
const SWEEP_METRICS: &[&str] = &["fallacy_points_pct", "fallacy_pct_max", "fallacy_pct_mean", "sweep_points"];

/// A generation's power and size keys, with its embodied carbon.
fn generation(g: &Params, name: String, embodied_kg: f64, lifetime_years: f64) -> Result<Generation, ScenarioError> {
    let idle_w = g.f64_in("idle_w", 100.0, 0.0..=1e6)?;
    let max_w = g.f64_in("max_w", 300.0, 0.0..=1e6)?;
    if idle_w > max_w {
        return Err(ScenarioError::Param(g.error("idle_w", format!("{idle_w} W is above max_w ({max_w} W)"))));
    }
    Ok(Generation {
        name,
        count: g.u32_in("count", 10, 0..=100_000)?,
        cores: g.u32_in("cores", 32, 1..=100_000)?,
        idle_w,
        max_w,
        embodied_kg,
        lifetime_years,
    })
}

impl FleetScenario {
    /// Reads the fleet keys.
    pub fn from_params(w: &Params, d: &Params) -> Result<FleetScenario, ScenarioError> {
        let mut fallbacks = Vec::new();
        d.finish(&[
            "kind",
            "carbon",
            "carbon_column",
            "carbon_offset_days",
            "embodied",
            "act_models",
            "power_off_idle",
            "job_utilization",
            "generation",
        ])?;
        let generation_tables = d.tables("generation")?;
        if generation_tables.is_empty() {
            return Err(ScenarioError::Param(
                d.error("generation", "a fleet needs at least one [[datacenter.generation]]"),
            ));
        }
        let boavizta = match d.str("embodied")? {
            Some(p) if Path::new(p).is_file() => {
                let (rows, _) = embodied::read_boavizta(Path::new(p)).map_err(ScenarioError::Invalid)?;
                Some(rows)
            }
            Some(p) => {
                fallbacks
                    .push(format!("{p} is absent: the Boavizta figures built in (crate::embodied::KNOWN) stand in"));
                None
            }
            None => None,
        };
        let mut generations = Vec::new();
        for g in generation_tables {
            g.finish(&[
                "name",
                "count",
                "cores",
                "idle_w",
                "max_w",
                "boavizta",
                "act",
                "embodied_kg",
                "lifetime_years",
            ])?;
            let name = g.required_str("name")?.to_string();
            if let Some(bom) = g.str("act")? {
                for key in ["embodied_kg", "boavizta"] {
                    if g.contains(key) {
                        return Err(ScenarioError::Param(g.error(key, "is set together with `act`, which gives it")));
                    }
                }
                let bom = Path::new(bom);
                let models = match d.str("act_models")? {
                    Some(dir) => PathBuf::from(dir),
                    None => bom.parent().unwrap_or(Path::new(".")).join("../models"),
                };
                // The BOM first: its own errors name its lines.
                let doc = nimbus_trace::act::read(nimbus_trace::Source::file(bom))?;
                let model = act::ActModel::load(&models).map_err(|e| ScenarioError::Param(g.error("act", e)))?;
                let items = model
                    .bom_of(&doc)
                    .map_err(|e| ScenarioError::Param(g.error("act", format!("{}: {e}", bom.display()))))?;
                let embodied_kg = act::total_kg(&items, "");
                generations.push(generation(g, name, embodied_kg, g.f64_in("lifetime_years", 4.0, 0.1..=50.0)?)?);
                continue;
            }
            let (embodied_kg, lifetime_years) = match g.str("boavizta")? {
                Some(row) => {
                    for key in ["embodied_kg", "lifetime_years"] {
                        if g.contains(key) {
                            return Err(ScenarioError::Param(
                                g.error(key, "is set together with `boavizta`, which gives it"),
                            ));
                        }
                    }
                    let footprint = match &boavizta {
                        Some(rows) => embodied::find(rows, row).map_err(|e| ScenarioError::Param(g.error("boavizta", e)))?.clone(),
                        None => embodied::known(row).ok_or_else(|| {
                            ScenarioError::Param(g.error(
                                "boavizta",
                                format!(
                                    "`{row}` is not among the built-in rows ({}); give `[datacenter] embodied` the Boavizta file",
                                    embodied::KNOWN.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
                                ),
                            ))
                        })?,
                    };
                    (footprint.embodied_kg(), footprint.lifetime_years)
                }
                None => (g.f64_in("embodied_kg", 0.0, 0.0..=1e7)?, g.f64_in("lifetime_years", 4.0, 0.1..=50.0)?),
            };
            generations.push(generation(g, name, embodied_kg, lifetime_years)?);
        }
        let carbon_path = d.str("carbon")?.map(PathBuf::from);
        let offset_days = d.f64_in("carbon_offset_days", 0.0, 0.0..=3660.0)?;
        let intensity = match carbon_path {
            Some(p) if p.is_file() => read_intensity(&p, d.str("carbon_column")?)?,
            other => {
                fallbacks.push(match other {
                    Some(p) => {
                        format!("{} is absent: a synthetic diurnal intensity (mean 300 g/kWh) stands in", p.display())
                    }
                    None => "no carbon trace given: a synthetic diurnal intensity (mean 300 g/kWh) stands in".into(),
                });
                Intensity::diurnal(1_640_995_200_000, 400, 300.0, 0.4)
            }
        };
        let origin_ms =
            intensity.start_ms + nimbus_sim::params::round_to_u64(offset_days * 86_400_000.0).unwrap_or(0) as i64;
        let kind = w.choice_or("kind", &["synthetic", "gaia"], "synthetic")?;
        let days = w.f64_in("days", 7.0, 1.0 / 24.0..=366.0)?;
        let utilization = w.f64_in("utilization", 0.5, 0.001..=10.0)?;
        let jobs = if kind == "gaia" {
            w.finish(&["kind", "path", "start_day", "days", "utilization"])?;
            let path = PathBuf::from(w.required_str("path")?);
            if path.is_file() {
                let start_h = w.f64_in("start_day", 0.0, 0.0..=3660.0)? * 24.0;
                let all = nimbus_trace::gaia::read_jobs(nimbus_trace::Source::file(&path))?;
                let jobs: Vec<BatchJob> = all
                    .iter()
                    .filter(|j| j.arrival_h >= start_h && j.arrival_h < start_h + days * 24.0)
                    .map(|j| BatchJob {
                        arrival_ms: origin_ms + ((j.arrival_h - start_h) * 3.6e6).round() as i64,
                        run_ms: (j.length_h * 3.6e6).round().max(1.0) as u64,
                        cores: j.cpus,
                    })
                    .collect();
                if jobs.is_empty() {
                    return Err(ScenarioError::Invalid(format!(
                        "{}: no job arrives in days {} to {}",
                        path.display(),
                        start_h / 24.0,
                        start_h / 24.0 + days
                    )));
                }
                Some(jobs)
            } else {
                fallbacks.push(format!("{} is absent: synthetic jobs stand in", path.display()));
                None
            }
        } else {
            w.finish(&["kind", "days", "utilization"])?;
            None
        };
        let end_ms = origin_ms + (days * 86_400_000.0) as i64;
        if end_ms > intensity.end_ms() {
            return Err(ScenarioError::Invalid(format!(
                "{} ends before the jobs' window does (offset {offset_days} days + {days} days)",
                intensity.name
            )));
        }
        Ok(FleetScenario {
            jobs,
            synthetic: (utilization, days),
            origin_ms,
            generations,
            intensity,
            job_utilization: d.f64_in("job_utilization", 1.0, 0.0..=1.0)?,
            power_off_idle: d.bool_or("power_off_idle", false)?,
            fallbacks,
        })
    }

    fn metric(policy: &str, params: &Params) -> Result<Metric, ScenarioError> {
        Ok(match policy {
            "operational" => Metric::Operational,
            "sci" => Metric::Sci,
            _ => Metric::CoreHour { expected_utilization: params.f64_in("expected_utilization", 0.5, 0.01..=1.0)? },
        })
    }

    fn placer(params: &Params) -> Result<Placer, ScenarioError> {
        Ok(match params.choice_or("placer", &["greedy", "ilp"], "greedy")? {
            "ilp" => Placer::Ilp {
                slot_ms: nimbus_sim::params::round_to_u64(params.f64_in("slot_h", 1.0, 0.01..=168.0)? * 3.6e6)
                    .unwrap_or(3_600_000),
            },
            _ => Placer::Greedy,
        })
    }

    /// Checks a policy's parameters.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        if policy == "sunk-carbon-sweep" {
            self.sweep_settings(params).map(|_| ())
        } else {
            Self::metric(policy, params)?;
            Self::placer(params).map(|_| ())
        }
    }

    fn jobs(&self, seed: u64) -> Vec<BatchJob> {
        match &self.jobs {
            Some(j) => j.clone(),
            None => {
                let cores: u32 = self.generations.iter().map(|g| g.cores * g.count).sum();
                let (utilization, days) = self.synthetic;
                let origin = self.origin_ms;
                sunk_carbon::synthetic_jobs(cores, utilization, days, seed)
                    .into_iter()
                    .map(|j| BatchJob { arrival_ms: j.arrival_ms + origin, ..j })
                    .collect()
            }
        }
    }

    /// Runs one policy.
    pub fn run(&self, policy: &str, params: &Params, seed: u64) -> Result<RunOutput, ScenarioError> {
        if policy == "sunk-carbon-sweep" {
            return self.sweep(params);
        }
        let metric = Self::metric(policy, params)?;
        let placer = Self::placer(params)?;
        let jobs = self.jobs(seed);
        let f = sunk_carbon::run(
            &self.generations,
            &jobs,
            metric,
            placer,
            &self.intensity,
            self.job_utilization,
            self.power_off_idle,
        )
        .map_err(ScenarioError::Invalid)?;
        let total_core_ms: f64 = f.core_ms.iter().sum();
        let m = |name: &str, value: f64, better: Better| OutMetric::new(name, value, better);
        let mut metrics = vec![
            m("total_carbon_kg", f.total_g / 1e3, Better::Lower),
            m("operational_carbon_kg", f.operational_g / 1e3, Better::Lower),
            m("embodied_sunk_kg", f.embodied_g / 1e3, Better::Neither),
            m("charged_embodied_kg", f.charged_embodied_g / 1e3, Better::Neither),
            m("metric_carbon_kg", (f.operational_g + f.charged_embodied_g) / 1e3, Better::Neither),
            m("energy_kwh", f.energy_j / 3.6e6, Better::Lower),
            m("wait_s_mean", f.mean_wait_ms / 1e3, Better::Lower),
            m("jobs_terminated", f.terminated as f64, Better::Lower),
        ];
        for (g, core_ms) in self.generations.iter().zip(&f.core_ms) {
            let share = if total_core_ms > 0.0 { 100.0 * core_ms / total_core_ms } else { f64::NAN };
            metrics.push(m(&format!("core_h_pct_{}", g.name), share, Better::Neither));
        }
        let mut notes = Vec::new();
        if f.terminated > 0 {
            notes.push(format!("{} jobs were larger than every server and never ran", f.terminated));
        }
        if !f.plan.is_empty() && f.plan != "Optimal" {
            notes.push(format!("the ILP plan ended {} (node limit): the best plan found was used", f.plan));
        }
        Ok(RunOutput { metrics, tables: Vec::new(), series: Vec::new(), timings: Vec::new(), notes })
    }

    fn sweep_settings(&self, p: &Params) -> Result<(Metric, SweepGrid, f64), ScenarioError> {
        let list = |key: &str, default: &[f64]| -> Result<Vec<f64>, ScenarioError> {
            let v = p.f64_list(key)?.unwrap_or_else(|| default.to_vec());
            if v.is_empty() || v.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(ScenarioError::Param(p.error(key, "must be a non-empty list of numbers ≥ 0")));
            }
            Ok(v)
        };
        let metric = match p.choice_or("metric", &["sci", "core-hour"], "sci")? {
            "sci" => Metric::Sci,
            _ => Metric::CoreHour { expected_utilization: 0.5 },
        };
        let gaps = list("gaps", &[1.0, 1.5, 2.0, 3.0])?;
        if gaps.iter().any(|g| *g < 1.0) {
            return Err(ScenarioError::Param(p.error("gaps", "efficiency gaps are ≥ 1 (old ÷ new dynamic power)")));
        }
        let grid = SweepGrid {
            gaps,
            new_embodied_kg: list("new_embodied_kg", &[500.0, 1500.0, 3000.0, 6000.0])?,
            lifetimes: list("lifetimes", &[3.0, 5.0, 7.0])?,
            utilizations: list("utilizations", &[0.2, 0.5, 0.8])?,
            intensities: list("intensities", &[25.0, 100.0, 300.0, 600.0])?,
        };
        if grid.lifetimes.iter().any(|l| *l <= 0.0) || grid.utilizations.iter().any(|u| *u <= 0.0) {
            return Err(ScenarioError::Param(p.error("lifetimes", "lifetimes and utilisations must be above 0")));
        }
        let points = grid.points();
        if points > 5000 {
            return Err(ScenarioError::Param(p.error("gaps", format!("{points} sweep points; at most 5,000"))));
        }
        Ok((metric, grid, p.f64_in("days", 3.0, 0.1..=60.0)?))
    }

    fn sweep(&self, params: &Params) -> Result<RunOutput, ScenarioError> {
        let (metric, grid, days) = self.sweep_settings(params)?;
        let points = sunk_carbon::sweep(&self.generations[0], &grid, metric, days).map_err(ScenarioError::Invalid)?;
        let fallacy: Vec<f64> = points.iter().map(|p| p.fallacy_pct()).collect();
        // Above 0.1%: packing differences within a generation move totals by
        // a few hundredths of a percent either way.
        let costly = fallacy.iter().filter(|f| **f > 0.1).count();
        let rows = points
            .iter()
            .map(|p| {
                vec![
                    Cell::Float(p.efficiency_gap),
                    Cell::Float(p.new_embodied_kg),
                    Cell::Float(p.lifetime_years),
                    Cell::Float(p.utilization),
                    Cell::Float(p.intensity),
                    Cell::Float(p.operational_total_g / 1e3),
                    Cell::Float(p.embodied_total_g / 1e3),
                    Cell::Float(p.fallacy_pct()),
                ]
            })
            .collect();
        let table = Table {
            name: "sweep".into(),
            columns: [
                "efficiency_gap",
                "new_embodied_kg",
                "lifetime_years",
                "utilization",
                "intensity_g_per_kwh",
                "operational_metric_total_kg",
                "embodied_metric_total_kg",
                "fallacy_pct",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        };
        let n = points.len().max(1) as f64;
        let m = |name: &str, value: f64| OutMetric::new(name, value, Better::Neither);
        Ok(RunOutput {
            metrics: vec![
                m("fallacy_points_pct", 100.0 * costly as f64 / n),
                m("fallacy_pct_max", fallacy.iter().copied().fold(0.0, f64::max)),
                m("fallacy_pct_mean", fallacy.iter().sum::<f64>() / n),
                m("sweep_points", points.len() as f64),
            ],
            tables: vec![table],
            series: Vec::new(),
            timings: Vec::new(),
            notes: Vec::new(),
        })
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run may report.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = RUN_METRICS.iter().chain(SWEEP_METRICS).map(|m| m.to_string()).collect();
        names.extend(self.generations.iter().map(|g| format!("core_h_pct_{}", g.name)));
        names
    }

    /// What one run needs.
    pub fn estimate(&self, policy: &str, params: &Params) -> Result<Estimate, ScenarioError> {
        let mut e = Estimate::default();
        let jobs = self.jobs.as_ref().map_or(20_000, Vec::len) as u64;
        let servers: u64 = self.generations.iter().map(|g| g.count as u64).sum();
        e.memory("jobs", jobs.saturating_mul(200));
        if policy == "sunk-carbon-sweep" {
            let (_, grid, _) = self.sweep_settings(params)?;
            let points = grid.points() as u64;
            e.events(
                "sweep runs × jobs × servers",
                points.saturating_mul(2).saturating_mul(jobs).saturating_mul(servers.max(1)),
            );
        } else {
            e.events("jobs × servers (placement)", jobs.saturating_mul(servers.max(1)).saturating_mul(2));
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Scenario, test_params as params};
    use nimbus_sim::params::{Param, Value};

    fn generation(name: &str, count: i64, idle: i64, max: i64, row: &str) -> Param {
        let mut t = Params::new("datacenter.generation", None);
        for (k, v) in [
            ("name", Value::Str(name.into())),
            ("count", Value::Int(count)),
            ("cores", Value::Int(32)),
            ("idle_w", Value::Int(idle)),
            ("max_w", Value::Int(max)),
            ("boavizta", Value::Str(row.into())),
        ] {
            t.insert(k, Param { value: v, span: None });
        }
        Param { value: Value::Table(t), span: None }
    }

    fn fleet() -> Params {
        let mut root = params(&[
            ("datacenter.kind", Value::Str("fleet".into())),
            ("workload.utilization", Value::Float(0.45)),
            ("workload.days", Value::Int(3)),
        ]);
        let old = generation("old", 6, 90, 350, "Dell PowerEdge R730");
        let new = generation("new", 4, 80, 280, "HP ProLiant DL345 Gen10 Plus server4");
        root.set_path("datacenter.generation", Param { value: Value::List(vec![old, new]), span: None })
            .expect("settable");
        root
    }

    fn tables(root: &Params) -> (&Params, &Params) {
        let table = |k: &str| root.table(k).expect("a table").expect("present");
        (table("workload"), table("datacenter"))
    }

    #[test]
    fn a_generation_takes_its_embodied_carbon_from_an_act_bill_of_materials() {
        let boms = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/embodied-carbon/act_models/boms");
        if !boms.join("dellr740.yaml").is_file() {
            eprintln!("skipped: {} is absent", boms.display());
            return;
        }
        let mut root = fleet();
        let mut t = Params::new("datacenter.generation", None);
        for (k, v) in [
            ("name", Value::Str("r740".into())),
            ("count", Value::Int(4)),
            ("act", Value::Str(boms.join("dellr740.yaml").display().to_string())),
            ("lifetime_years", Value::Int(5)),
        ] {
            t.insert(k, Param { value: v, span: None });
        }
        let old = generation("old", 6, 90, 350, "Dell PowerEdge R730");
        let gens = vec![old, Param { value: Value::Table(t.clone()), span: None }];
        root.set_path("datacenter.generation", Param { value: Value::List(gens), span: None }).expect("settable");
        let (w, d) = tables(&root);
        let f = FleetScenario::from_params(w, d).expect("valid");
        // ACT's silicon total for the R740 (tests in crate::act).
        assert!((f.generations[1].embodied_kg - 1523.07).abs() < 0.1, "{}", f.generations[1].embodied_kg);
        assert_eq!(f.generations[1].lifetime_years, 5.0);
        // `act` gives the embodied carbon: a second source is refused.
        t.insert("embodied_kg", Param { value: Value::Int(100), span: None });
        let gens = vec![Param { value: Value::Table(t), span: None }];
        root.set_path("datacenter.generation", Param { value: Value::List(gens), span: None }).expect("settable");
        let (w, d) = tables(&root);
        let e = FleetScenario::from_params(w, d).expect_err("refused").to_string();
        assert!(e.contains("embodied_kg") && e.contains("together with `act`"), "{e}");
    }

    #[test]
    fn synthetic_fleet_shows_the_fallacy_deterministically() {
        let s = Scenario::from_params(&fleet()).expect("valid");
        let none = Params::new("policy", None);
        let op = s.run("operational", &none, 2, &mut |_| {}).expect("runs");
        let sci = s.run("sci", &none, 2, &mut |_| {}).expect("runs");
        assert_eq!(sci, s.run("sci", &none, 2, &mut |_| {}).expect("runs"), "deterministic");
        let total = |o: &RunOutput| o.metric("total_carbon_kg").expect("metric");
        assert!(total(&op) < total(&sci), "{} vs {}", total(&op), total(&sci));
        assert_eq!(op.metric("embodied_sunk_kg"), sci.metric("embodied_sunk_kg"), "embodied is sunk");
        let new = |o: &RunOutput| o.metric("core_h_pct_new").expect("metric");
        assert!(new(&sci) < new(&op));
        assert!(s.fallbacks().iter().any(|f| f.contains("synthetic diurnal")));
    }

    #[test]
    fn bad_fleets_are_named() {
        let mut root = fleet();
        root.set_path("datacenter.pue", Param { value: Value::Float(1.2), span: None }).expect("settable");
        let e = Scenario::from_params(&root).expect_err("refused").to_string();
        assert!(e.contains("pue") && e.contains("unknown key"), "{e}");
        let root = params(&[("datacenter.kind", Value::Str("fleet".into()))]);
        let e = Scenario::from_params(&root).expect_err("refused").to_string();
        assert!(e.contains("generation"), "{e}");
        let s = Scenario::from_params(&fleet()).expect("valid");
        let e = s.check("mem", &Params::new("policy", None)).expect_err("refused").to_string();
        assert!(e.contains("`fleet` datacenter") && e.contains("operational"), "{e}");
        let gaps = params(&[("gaps", Value::List(vec![Param { value: Value::Float(0.5), span: None }]))]);
        assert!(s.check("sunk-carbon-sweep", &gaps).is_err());
    }
}
