//! SunkCarbon: "The Sunk Carbon Fallacy: Rethinking Carbon Footprint
//! Metrics for Effective Carbon-Aware Scheduling" (SoCC'24).
//!
//! **Argument.** The embodied carbon of servers already deployed is sunk:
//! it was emitted when they were made and does not change with where a job
//! runs. A scheduler that charges each job a share of embodied carbon
//! (SCI-style amortisation, or per core-hour) sees new servers, with more
//! embodied carbon, as dearer, and steers work onto older, less efficient
//! ones; the fleet's real footprint — operational carbon plus a constant
//! embodied term — then grows. What drives the extra cost: the efficiency
//! gap between generations, the size and lifetime of the embodied term,
//! utilisation (how often the choice binds) and the grid's intensity.
//!
//! **Mechanism here.** A fleet of server generations (cores, linear power
//! from idle to full load, embodied carbon and lifetime, e.g. from
//! Boavizta) runs batch jobs (GAIA traces or synthetic) on the
//! [`crate::datacenter`] replay. Placers, parameterised by the metric:
//! - `greedy`: each arriving job goes to the fitting server where it costs
//!   least now: intensity × the energy it adds (+ idle power if it wakes a
//!   powered-off server) + the metric's embodied charge;
//! - `ilp`: an offline plan over the whole job set: one generation per
//!   job, minimising the metric's summed cost under each generation's core
//!   capacity per time slot (a job holds its cores in every slot it
//!   touches; jobs start on arrival; a slot may overflow at a prohibitive
//!   cost), then replayed with each job held to its planned generation,
//!   where it may still wait if the generation's servers are fragmented.
//!
//! Metrics: `operational` (no embodied charge), `sci` (SCI: embodied × time
//! share of the lifetime × share of the server's cores), `core-hour`
//! (embodied spread over the core-hours the server is expected to sell:
//! lifetime × cores × an expected utilisation).
//!
//! The real footprint of a run is its operational carbon (idle power of
//! powered-on servers included) plus the fleet's embodied carbon amortised
//! over the workload's span, which no placement changes.
//!
//! **Modelled, inferred:** no public code; power is linear per server;
//! the ILP counts capacity per generation and slot, not per server, and
//! needs an always-on fleet; it stops at 5,000 branch-and-bound nodes; the
//! paper's case study and its exact sweep ranges are not reproduced, the
//! sweep's axes follow its list of factors. The abstract gives no numbers.

use nimbus_model::power::PowerModel;
use nimbus_solve::{Model, Sense, SolveOptions};

use crate::datacenter::{self, Config, Job, Placement, Workload};
use crate::intensity::Intensity;
use crate::topology::HostSpec;

/// One server generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Name.
    pub name: String,
    /// Servers of it.
    pub count: u32,
    /// Cores per server.
    pub cores: u32,
    /// Watts idle.
    pub idle_w: f64,
    /// Watts at full load.
    pub max_w: f64,
    /// Embodied (manufacturing) carbon per server, kg.
    pub embodied_kg: f64,
    /// Years of service.
    pub lifetime_years: f64,
}

const MS_PER_YEAR: f64 = 365.25 * 86_400_000.0;

impl Generation {
    /// Embodied carbon amortised per server-ms, g.
    fn embodied_g_per_ms(&self) -> f64 {
        self.embodied_kg * 1000.0 / (self.lifetime_years * MS_PER_YEAR)
    }

    /// Dynamic watts per fully used core.
    pub fn dynamic_w_per_core(&self) -> f64 {
        (self.max_w - self.idle_w) / self.cores as f64
    }
}

/// How a job is charged for embodied carbon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// None: only the energy it adds.
    Operational,
    /// SCI: embodied × (time / lifetime) × (cores / server cores).
    Sci,
    /// Per core-hour sold: embodied / (lifetime × cores × expected
    /// utilisation).
    CoreHour {
        /// The share of core-hours the operator expects to sell.
        expected_utilization: f64,
    },
}

impl Metric {
    /// Embodied grams charged per core-ms on `g`.
    pub fn rate(&self, g: &Generation) -> f64 {
        match *self {
            Metric::Operational => 0.0,
            Metric::Sci => g.embodied_g_per_ms() / g.cores as f64,
            Metric::CoreHour { expected_utilization } => {
                g.embodied_g_per_ms() / (g.cores as f64 * expected_utilization.max(1e-9))
            }
        }
    }
}

/// How jobs are placed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placer {
    /// At arrival, where the job costs least now.
    Greedy,
    /// An offline plan (one generation per job) over slots of `slot_ms`.
    Ilp {
        /// Capacity slot, ms.
        slot_ms: u64,
    },
}

/// A batch job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchJob {
    /// Arrival, ms since 1970.
    pub arrival_ms: i64,
    /// Run time, ms.
    pub run_ms: u64,
    /// Cores.
    pub cores: u32,
}

/// A run's footprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    /// Operational carbon, g (idle power of powered-on servers included).
    pub operational_g: f64,
    /// The fleet's embodied carbon over the workload's span, g (sunk: the
    /// same for every placement).
    pub embodied_g: f64,
    /// Operational + embodied: the real footprint, g.
    pub total_g: f64,
    /// What the metric charged the jobs for embodied carbon, g.
    pub charged_embodied_g: f64,
    /// IT energy, J.
    pub energy_j: f64,
    /// Core-ms run on each generation.
    pub core_ms: Vec<f64>,
    /// Mean wait from arrival to start, ms.
    pub mean_wait_ms: f64,
    /// Jobs larger than every server (never run).
    pub terminated: usize,
    /// Status of the ILP plan (empty for greedy).
    pub plan: String,
}

/// Runs `jobs` on `fleet` under `metric` and `placer`; `utilization` is the
/// share of its cores a job keeps busy.
pub fn run(
    fleet: &[Generation],
    jobs: &[BatchJob],
    metric: Metric,
    placer: Placer,
    intensity: &Intensity,
    utilization: f64,
    power_off_idle: bool,
) -> Result<Footprint, String> {
    if fleet.is_empty() || fleet.iter().all(|g| g.count == 0) {
        return Err("the fleet has no servers".into());
    }
    if jobs.is_empty() {
        return Err("no jobs".into());
    }
    let specs: Vec<HostSpec> = fleet
        .iter()
        .map(|g| HostSpec {
            name: g.name.clone(),
            count: g.count,
            cores: g.cores,
            core_mhz: 1000.0,
            memory_mb: 0.0,
            power: PowerModel::Linear { idle_w: g.idle_w, max_w: g.max_w },
        })
        .collect();
    let mut hosts = Vec::new();
    let mut group = Vec::new();
    let mut rate = Vec::new();
    for (gi, (g, spec)) in fleet.iter().zip(&specs).enumerate() {
        for _ in 0..g.count {
            hosts.push(spec);
            group.push(gi);
            rate.push(metric.rate(g));
        }
    }
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| jobs[i].arrival_ms);
    let workload = Workload {
        jobs: order
            .iter()
            .enumerate()
            .map(|(k, &i)| Job {
                id: format!("j{i}"),
                submit_ms: jobs[i].arrival_ms,
                cores: jobs[i].cores,
                memory_mb: 0.0,
                fragments: k..k + 1,
            })
            .collect(),
        fragments: order
            .iter()
            .map(|&i| (jobs[i].run_ms, jobs[i].cores as f64 * 1000.0 * utilization.clamp(0.0, 1.0)))
            .collect(),
    };
    let (assigned, plan) = match placer {
        Placer::Greedy => (None, String::new()),
        Placer::Ilp { slot_ms } => {
            if power_off_idle {
                return Err("the ILP placer plans an always-on fleet; power_off_idle is not modelled there".into());
            }
            let (plan, status) = plan_generations(fleet, &workload, metric, intensity, utilization, slot_ms)?;
            (Some((group.clone(), plan)), status)
        }
    };
    let config = Config {
        intensity: Some(intensity),
        power_off_idle,
        embodied_rate: rate.clone(),
        assigned,
        ..Config::new(hosts, Placement::LowestCost)
    };
    let out = datacenter::run(&workload, &config)?;
    let start = workload.jobs.iter().map(|j| j.submit_ms).min().unwrap_or(0);
    let end = workload.jobs.iter().map(|j| j.submit_ms + workload.run_ms(j) as i64).max().unwrap_or(start);
    let span_ms = (end - start).max(0) as f64;
    let embodied_g: f64 = fleet.iter().map(|g| g.count as f64 * g.embodied_g_per_ms() * span_ms).sum();
    let mut core_ms = vec![0.0; fleet.len()];
    let mut charged = 0.0;
    let mut waits = 0.0;
    let mut ran = 0usize;
    for t in &out.tasks {
        if let Some(h) = t.host {
            let cms = workload.jobs[t.job].cores as f64 * (t.end_ms - t.start_ms) as f64;
            core_ms[group[h]] += cms;
            charged += rate[h] * cms;
            waits += (t.start_ms - t.submit_ms) as f64;
            ran += 1;
        }
    }
    Ok(Footprint {
        operational_g: out.carbon_g,
        embodied_g,
        total_g: out.carbon_g + embodied_g,
        charged_embodied_g: charged,
        energy_j: out.energy_j,
        core_ms,
        mean_wait_ms: if ran > 0 { waits / ran as f64 } else { f64::NAN },
        terminated: out.terminated,
        plan,
    })
}

/// The offline plan: a generation per job minimising the metric's cost at
/// the intensity of its arrival, under fluid core capacity per slot.
fn plan_generations(
    fleet: &[Generation],
    workload: &Workload,
    metric: Metric,
    intensity: &Intensity,
    utilization: f64,
    slot_ms: u64,
) -> Result<(Vec<usize>, String), String> {
    if slot_ms == 0 {
        return Err("the ILP slot must be above 0 ms".into());
    }
    if workload.jobs.len() * fleet.len() > 20_000 {
        return Err(format!(
            "the ILP placer takes at most 20,000 job × generation pairs ({} jobs × {} generations); use greedy or a shorter window",
            workload.jobs.len(),
            fleet.len()
        ));
    }
    let start = workload.jobs.iter().map(|j| j.submit_ms).min().unwrap_or(0);
    let mut model = Model::new();
    let mut vars: Vec<Vec<Option<nimbus_solve::Var>>> = Vec::with_capacity(workload.jobs.len());
    let mut slots: std::collections::BTreeMap<(usize, u64), Vec<(nimbus_solve::Var, f64)>> = Default::default();
    for j in &workload.jobs {
        let run_ms = workload.run_ms(j);
        let ci = intensity.at(j.submit_ms).map_or(0.0, |v| v.0);
        let mut row = Vec::with_capacity(fleet.len());
        let mut any = false;
        for (gi, g) in fleet.iter().enumerate() {
            if j.cores > g.cores || g.count == 0 {
                row.push(None);
                continue;
            }
            any = true;
            let x = model.binary();
            let dynamic_j = g.dynamic_w_per_core() * j.cores as f64 * utilization * run_ms as f64 * 1e-3;
            let cost = ci * dynamic_j / 3.6e6 + metric.rate(g) * j.cores as f64 * run_ms as f64;
            model.objective_term(x, cost);
            let from = (j.submit_ms - start) as u64;
            let to = from + run_ms;
            let mut k = from / slot_ms;
            // A job holds its cores in every slot it touches (conservative:
            // whatever the order within a slot, the plan fits).
            while k * slot_ms < to.max(from + 1) {
                slots.entry((gi, k)).or_default().push((x, j.cores as f64));
                k += 1;
            }
            row.push(Some(x));
        }
        if any {
            model.eq(row.iter().flatten().map(|&x| (x, 1.0)).collect(), 1.0);
        }
        vars.push(row);
    }
    // Capacity per generation and slot; a slot may overflow (those jobs
    // queue in the replay) at a cost above any placement's, so a plan
    // always exists and overflows only where capacity truly runs out.
    let overflow_cost = 1e3 * fleet.iter().map(|g| g.dynamic_w_per_core() + metric.rate(g) * 3.6e9).fold(1.0, f64::max);
    for ((gi, _), mut terms) in slots {
        let g = &fleet[gi];
        let over = model.continuous(0.0, f64::INFINITY);
        model.objective_term(over, overflow_cost);
        terms.push((over, -1.0));
        model.le(terms, g.count as f64 * g.cores as f64);
    }
    let solution = model
        .solve(Sense::Minimise, &SolveOptions { node_limit: Some(5_000), mip_gap: 1e-6 })
        .map_err(|e| format!("the ILP placer found no plan: {e}"))?;
    let plan = vars
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .filter_map(|(gi, x)| x.map(|x| (gi, solution.value(x))))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(usize::MAX, |(gi, _)| gi)
        })
        .collect();
    Ok((plan, format!("{:?}", solution.status())))
}

/// One point of the fallacy sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// Dynamic watts per core, old ÷ new.
    pub efficiency_gap: f64,
    /// Embodied carbon of a new server, kg.
    pub new_embodied_kg: f64,
    /// Lifetime of both generations, years.
    pub lifetime_years: f64,
    /// Offered load ÷ fleet cores.
    pub utilization: f64,
    /// Grid intensity, gCO2/kWh.
    pub intensity: f64,
    /// Real footprint under the operational metric, g.
    pub operational_total_g: f64,
    /// Real footprint under the embodied-inclusive metric, g.
    pub embodied_total_g: f64,
}

impl SweepPoint {
    /// How much more the embodied-inclusive metric emits, % of the
    /// operational metric's footprint.
    pub fn fallacy_pct(&self) -> f64 {
        100.0 * (self.embodied_total_g / self.operational_total_g - 1.0)
    }
}

/// Jobs that offer `utilization` × `cores` of load over `days` days:
/// Poisson arrivals, log-normal run times (median 1 h), 1–8 cores.
pub fn synthetic_jobs(cores: u32, utilization: f64, days: f64, seed: u64) -> Vec<BatchJob> {
    let mut rng = nimbus_sim::rng::RngStreams::new(seed).stream("sunk-carbon-jobs");
    let span_ms = days * 86_400_000.0;
    // Mean core-ms of a job: E[cores] = 3.75 (1, 2, 4, 8); E[run] =
    // e^(μ + σ²/2) h.
    let mean_run_ms = 3.6e6 * (0.8f64 * 0.8 / 2.0).exp();
    let rate_per_ms = utilization * cores as f64 / (3.75 * mean_run_ms);
    let mut jobs = Vec::new();
    let mut t = rng.exponential(rate_per_ms);
    while t < span_ms {
        let run_ms = rng.lognormal(3.6e6f64.ln(), 0.8).clamp(60_000.0, 30.0 * 86_400_000.0) as u64;
        jobs.push(BatchJob { arrival_ms: t as i64, run_ms, cores: [1, 2, 4, 8][(rng.next_u64() % 4) as usize] });
        t += rng.exponential(rate_per_ms);
    }
    jobs
}

/// The axes of the sweep.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SweepGrid {
    /// Dynamic watts per core, old ÷ new (≥ 1).
    pub gaps: Vec<f64>,
    /// Embodied carbon of a new server, kg.
    pub new_embodied_kg: Vec<f64>,
    /// Lifetimes of both generations, years.
    pub lifetimes: Vec<f64>,
    /// Offered load ÷ fleet cores.
    pub utilizations: Vec<f64>,
    /// Constant grid intensities, gCO2/kWh.
    pub intensities: Vec<f64>,
}

impl SweepGrid {
    /// Points in the grid.
    pub fn points(&self) -> usize {
        [&self.gaps, &self.new_embodied_kg, &self.lifetimes, &self.utilizations, &self.intensities]
            .iter()
            .map(|v| v.len())
            .product()
    }
}

/// Operational vs embodied-inclusive (`metric`) greedy placement over a
/// grid of the paper's factors, on an old and a new generation of equal
/// size: the old one has `old`'s power and embodied carbon; the new one
/// its dynamic power per core divided by the gap and the grid's embodied
/// carbon; synthetic jobs over `days` days.
pub fn sweep(old: &Generation, grid: &SweepGrid, metric: Metric, days: f64) -> Result<Vec<SweepPoint>, String> {
    let SweepGrid { gaps, new_embodied_kg, lifetimes, utilizations, intensities } = grid;
    let mut points = Vec::new();
    let cores = old.cores * old.count * 2;
    for &utilization in utilizations {
        let jobs = synthetic_jobs(cores, utilization, days, 1);
        for &gap in gaps {
            for &embodied in new_embodied_kg {
                for &lifetime in lifetimes {
                    for &ci in intensities {
                        let old = Generation { lifetime_years: lifetime, ..old.clone() };
                        let new = Generation {
                            name: "new".into(),
                            max_w: old.idle_w + (old.max_w - old.idle_w) / gap,
                            embodied_kg: embodied,
                            ..old.clone()
                        };
                        let fleet = [old, new];
                        let days_ci = (days * 3.0).ceil() as usize + 60;
                        let trace = Intensity {
                            name: format!("constant {ci}"),
                            start_ms: 0,
                            step_ms: 86_400_000,
                            values: vec![ci; days_ci],
                        };
                        let op = run(&fleet, &jobs, Metric::Operational, Placer::Greedy, &trace, 1.0, false)?;
                        let emb = run(&fleet, &jobs, metric, Placer::Greedy, &trace, 1.0, false)?;
                        points.push(SweepPoint {
                            efficiency_gap: gap,
                            new_embodied_kg: embodied,
                            lifetime_years: lifetime,
                            utilization,
                            intensity: ci,
                            operational_total_g: op.total_g,
                            embodied_total_g: emb.total_g,
                        });
                    }
                }
            }
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(ci: f64) -> Intensity {
        Intensity { name: "c".into(), start_ms: 0, step_ms: 86_400_000, values: vec![ci; 30] }
    }

    /// An old server (40 W dynamic per core, 500 kg) and a new one (20 W,
    /// `embodied` kg), 4 cores each, 4-year lives; one 4-core, 10-hour job.
    fn pair(embodied: f64) -> Vec<Generation> {
        let g = |name: &str, max_w: f64, kg: f64| Generation {
            name: name.into(),
            count: 1,
            cores: 4,
            idle_w: 100.0,
            max_w,
            embodied_kg: kg,
            lifetime_years: 4.0,
        };
        vec![g("old", 260.0, 500.0), g("new", 180.0, embodied)]
    }

    #[test]
    fn the_exact_inequality_by_hand() {
        let job = [BatchJob { arrival_ms: 0, run_ms: 36_000_000, cores: 4 }];
        // Dynamic power gap: 160 − 80 = 80 W → 0.8 kWh over 10 h. SCI rate
        // gap over the job: (E_new − 500) kg × 10 h / 4 years.
        let ci = 300.0;
        let hours_per_life = 4.0 * 365.25 * 24.0;
        let operational_gap_g = 0.8 * ci; // 240 g
        // Threshold: (E_new − 500)·1000·10/hours_per_life = 240 → E_new.
        let threshold = 500.0 + operational_gap_g * hours_per_life / 10_000.0;
        for (embodied, strict) in [(threshold * 0.9, false), (threshold * 1.1, true)] {
            let fleet = pair(embodied);
            let op = run(&fleet, &job, Metric::Operational, Placer::Greedy, &constant(ci), 1.0, false).expect("runs");
            let sci = run(&fleet, &job, Metric::Sci, Placer::Greedy, &constant(ci), 1.0, false).expect("runs");
            assert_eq!(op.core_ms[1], 4.0 * 36e6, "operational-only picks the efficient server");
            assert!(op.total_g <= sci.total_g + 1e-9, "operational-only never emits more");
            if strict {
                assert_eq!(sci.core_ms[0], 4.0 * 36e6, "SCI picks the old server above the threshold");
                assert!(
                    (sci.total_g - op.total_g - operational_gap_g).abs() < 1e-6,
                    "{} vs {}",
                    sci.total_g,
                    op.total_g
                );
            } else {
                assert_eq!(sci.core_ms[1], 4.0 * 36e6, "below it both pick the new server");
                assert!((sci.total_g - op.total_g).abs() < 1e-9);
            }
            // Idle power of both always-on servers (200 W for 10 h) is in
            // every footprint.
            let idle_g = 2.0 * ci;
            assert!(op.operational_g >= idle_g + 0.8 * ci - 1e-9);
        }
    }

    #[test]
    fn ilp_plans_are_optimal_for_their_metric_and_respect_capacity() {
        // Two old and one new server; five 4-core jobs at once for 2 h:
        // only one fits on the new server at a time.
        let mut fleet = pair(800.0);
        fleet[0].count = 4;
        let jobs: Vec<BatchJob> =
            (0..5).map(|i| BatchJob { arrival_ms: i * 1000, run_ms: 7_200_000, cores: 4 }).collect();
        let ci = constant(300.0);
        let greedy = run(&fleet, &jobs, Metric::Operational, Placer::Greedy, &ci, 1.0, false).expect("runs");
        let ilp =
            run(&fleet, &jobs, Metric::Operational, Placer::Ilp { slot_ms: 3_600_000 }, &ci, 1.0, false).expect("runs");
        assert_eq!(ilp.core_ms[1], 4.0 * 7_200_000.0, "one job on the new server");
        assert!((ilp.total_g - greedy.total_g).abs() < 1e-6, "greedy is optimal on this instance");
        assert_eq!(ilp.mean_wait_ms, 0.0);
        assert!(run(&fleet, &jobs, Metric::Sci, Placer::Ilp { slot_ms: 0 }, &ci, 1.0, false).is_err());
    }

    #[test]
    fn sweep_finds_the_fallacy_only_where_embodied_outweighs_efficiency() {
        let old = Generation {
            name: "old".into(),
            count: 4,
            cores: 16,
            idle_w: 100.0,
            max_w: 300.0,
            embodied_kg: 1000.0,
            lifetime_years: 4.0,
        };
        let grid = SweepGrid {
            gaps: vec![1.0, 2.0],
            new_embodied_kg: vec![1000.0, 5000.0],
            lifetimes: vec![4.0],
            utilizations: vec![0.4],
            intensities: vec![50.0, 600.0],
        };
        let points = sweep(&old, &grid, Metric::Sci, 3.0).expect("sweeps");
        assert_eq!(points.len(), 8);
        for p in &points {
            // Greedy placement is not optimal, so packing noise of a few
            // hundredths of a percent goes either way.
            assert!(p.fallacy_pct() >= -0.1, "embodied-inclusive never clearly beats operational: {p:?}");
            if p.efficiency_gap == 1.0 || p.new_embodied_kg == 1000.0 {
                assert!(p.fallacy_pct().abs() < 1e-9, "no trade-off, no fallacy: {p:?}");
            }
        }
        let costly = points
            .iter()
            .find(|p| p.efficiency_gap == 2.0 && p.new_embodied_kg == 5000.0 && p.intensity == 600.0)
            .expect("point");
        assert!(costly.fallacy_pct() > 0.0, "{costly:?}");
    }
}
