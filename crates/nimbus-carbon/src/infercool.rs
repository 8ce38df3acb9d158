//! InferCool: "Enhancing AI Inference Cooling through Transparent,
//! Non-Intrusive Task Reassignment" (SoCC'24), the cooling side.
//!
//! **Mechanism.** MIG slicing decouples which GPU an inference instance
//! runs on from the application, so instances can be placed to balance
//! GPU power, which lowers the hottest GPU's temperature without touching
//! the cooling plant. A cooler hottest GPU lets the plant supply warmer
//! coolant, which raises the chiller's efficiency or allows free cooling.
//!
//! **Model (inferred; only comparisons are meaningful).**
//! - Each GPU is a first-order RC node, C·dT/dt = P − (T − T_supply)/R,
//!   stepped exactly (T → T_ss + (T − T_ss)·e^(−Δt/RC)) every minute;
//!   P = P_idle + Σ over its slices of (P_max − P_idle)/slices ×
//!   utilisation (A100: 63 W idle, 400 W busy, Splitwise's constants).
//! - Services with Zipf popularity each run replicas on MIG slices; load
//!   follows a daily cycle and splits evenly over a service's replicas.
//! - Temperatures are reported at the plant's fixed set-point (the paper's
//!   testbed keeps its cooling unchanged): the hottest GPU's temperature is
//!   where placement shows.
//! - The cooling energy is that of a plant that uses the headroom: each
//!   hour it supplies the warmest coolant that keeps the hottest GPU at its
//!   limit in steady state, capped at a warm-water maximum:
//!   T_supply = min(T_max_supply, T_limit − R·max_i P_i).
//! - Heat is rejected by free cooling (pumps and fans, a fixed COP) when
//!   the outside wet-bulb temperature plus an approach is at most the
//!   supply temperature, else by a chiller at a fraction of the Carnot COP
//!   for lifting from T_supply − 5 °C to wet-bulb + approach + 5 °C.
//!   Wet-bulb from temperature and humidity by Stull's formula (2011).
//!
//! **Placements:** `bin-packing` (fill GPU 0's slices first: the
//! thermal-agnostic default that concentrates load), `round-robin`
//! (instance k on GPU k mod N), `infercool` (each instance, heaviest
//! first, on the GPU with the lowest predicted power that has a free
//! slice).
//!
//! **Routing:** `even` (a service's load splits evenly over its replicas)
//! or `headroom` (InferCool's request routing weighted by thermal
//! headroom: each hour of the day, an LP splits every service's load over
//! its replicas to minimise the hottest GPU's power, each replica at most
//! at `peak_utilization`, the busiest an evenly routed replica gets, so
//! no replica runs busier, and no request slower, than at the even
//! split's daily peak; inferred formulation).

/// The GPUs, the plant and the load.
#[derive(Debug, Clone, PartialEq)]
pub struct CoolingSetup {
    /// GPUs.
    pub gpus: usize,
    /// MIG slices per GPU.
    pub slices: usize,
    /// Watts idle.
    pub idle_w: f64,
    /// Watts with every slice busy.
    pub max_w: f64,
    /// Thermal resistance to the coolant, °C per W.
    pub r_c_per_w: f64,
    /// Heat capacity, J per °C.
    pub c_j_per_c: f64,
    /// Hottest allowed GPU temperature, °C.
    pub limit_c: f64,
    /// The plant's fixed supply set-point, °C (for the temperatures).
    pub setpoint_c: f64,
    /// Warmest supply the plant delivers, °C.
    pub max_supply_c: f64,
    /// Cooling-tower approach, °C.
    pub approach_c: f64,
    /// COP of free cooling (pumps and fans only).
    pub free_cop: f64,
    /// The chiller's fraction of the Carnot COP.
    pub carnot_fraction: f64,
    /// Load of each service at the daily peak, in fully busy slices.
    pub service_load: Vec<f64>,
    /// Replicas (slices) of each service.
    pub replicas: Vec<usize>,
}

impl CoolingSetup {
    /// `services` services with Zipf(`zipf`) popularity sharing
    /// `fill` × all slices at `peak` utilisation; replicas in proportion to
    /// popularity (at least one each).
    pub fn zipf(gpus: usize, slices: usize, services: usize, zipf: f64, fill: f64, peak: f64) -> CoolingSetup {
        let weights: Vec<f64> = (1..=services).map(|k| 1.0 / (k as f64).powf(zipf)).collect();
        let total: f64 = weights.iter().sum();
        let instances = ((gpus * slices) as f64 * fill).round().max(services as f64) as usize;
        let mut replicas: Vec<usize> =
            weights.iter().map(|w| ((w / total) * instances as f64).floor().max(1.0) as usize).collect();
        // Hand out what rounding left, most popular first, within the slices.
        let mut k = 0;
        while replicas.iter().sum::<usize>() < instances.min(gpus * slices) {
            replicas[k % services] += 1;
            k += 1;
        }
        let busy = instances as f64 * peak;
        CoolingSetup {
            gpus,
            slices,
            idle_w: 63.0,
            max_w: 400.0,
            r_c_per_w: 0.1,
            c_j_per_c: 1000.0,
            limit_c: 65.0,
            setpoint_c: 25.0,
            max_supply_c: 40.0,
            approach_c: 5.0,
            free_cop: 25.0,
            carnot_fraction: 0.5,
            service_load: weights.iter().map(|w| w / total * busy).collect(),
            replicas,
        }
    }
}

/// How instances are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Fill GPU 0 first.
    BinPacking,
    /// Instance k on GPU k mod N.
    RoundRobin,
    /// Heaviest first on the least-loaded GPU with a free slice.
    InferCool,
}

/// How a service's requests are split over its replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Evenly.
    Even,
    /// To minimise the hottest GPU's power (InferCool's routing by
    /// thermal headroom).
    Headroom,
}

/// Each instance's utilisation at load factor `cycle` under `routing`
/// (instances listed service by service, on GPUs `gpu_of`).
pub fn route(
    setup: &CoolingSetup,
    gpu_of: &[usize],
    routing: Routing,
    cycle: f64,
    max_utilization: f64,
) -> Result<Vec<f64>, String> {
    let service_of: Vec<usize> =
        setup.replicas.iter().enumerate().flat_map(|(s, &r)| std::iter::repeat_n(s, r)).collect();
    let even: Vec<f64> =
        service_of.iter().map(|&s| (setup.service_load[s] / setup.replicas[s] as f64 * cycle).min(1.0)).collect();
    if routing == Routing::Even {
        return Ok(even);
    }
    use nimbus_solve::{Model, Sense, SolveOptions};
    let per_slice_w = (setup.max_w - setup.idle_w) / setup.slices as f64;
    let mut m = Model::new();
    let hottest = m.continuous(0.0, f64::INFINITY);
    m.objective_term(hottest, 1.0);
    // No replica above the cap, unless the even split already is (then
    // the even split's level is the cap for it).
    let x: Vec<_> = even.iter().map(|&e| m.continuous(0.0, max_utilization.max(e))).collect();
    for s in 0..setup.replicas.len() {
        let terms: Vec<_> = (0..x.len()).filter(|&k| service_of[k] == s).map(|k| (x[k], 1.0)).collect();
        let demand: f64 = (0..x.len()).filter(|&k| service_of[k] == s).map(|k| even[k]).sum();
        m.eq(terms, demand);
    }
    for g in 0..setup.gpus {
        let mut terms: Vec<_> = (0..x.len()).filter(|&k| gpu_of[k] == g).map(|k| (x[k], per_slice_w)).collect();
        terms.push((hottest, -1.0));
        m.le(terms, -setup.idle_w);
    }
    let solution = m.solve(Sense::Minimise, &SolveOptions::default()).map_err(|e| format!("routing LP: {e}"))?;
    Ok(x.iter().map(|&v| solution.value(v).clamp(0.0, 1.0)).collect())
}

/// The GPU of every instance, instances listed service by service.
pub fn place(setup: &CoolingSetup, placement: Placement) -> Result<Vec<usize>, String> {
    let instances: Vec<(usize, f64)> = setup
        .replicas
        .iter()
        .enumerate()
        .flat_map(|(s, &r)| std::iter::repeat_n((s, setup.service_load[s] / r as f64), r))
        .collect();
    if instances.len() > setup.gpus * setup.slices {
        return Err(format!("{} instances for {} slices", instances.len(), setup.gpus * setup.slices));
    }
    let mut gpu_of = vec![0; instances.len()];
    match placement {
        Placement::BinPacking => {
            for (k, g) in gpu_of.iter_mut().enumerate() {
                *g = k / setup.slices;
            }
        }
        Placement::RoundRobin => {
            for (k, g) in gpu_of.iter_mut().enumerate() {
                *g = k % setup.gpus;
            }
        }
        Placement::InferCool => {
            let mut order: Vec<usize> = (0..instances.len()).collect();
            order.sort_by(|&a, &b| instances[b].1.total_cmp(&instances[a].1).then(a.cmp(&b)));
            let mut load = vec![0.0f64; setup.gpus];
            let mut used = vec![0usize; setup.gpus];
            for k in order {
                let g = (0..setup.gpus)
                    .filter(|&g| used[g] < setup.slices)
                    .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
                    .ok_or("no free slice")?;
                load[g] += instances[k].1;
                used[g] += 1;
                gpu_of[k] = g;
            }
        }
    }
    Ok(gpu_of)
}

/// Wet-bulb temperature (°C) from air temperature (°C) and relative
/// humidity (%), Stull (2011), valid for 5–99% humidity and −20–50 °C.
pub fn wet_bulb_c(t: f64, rh: f64) -> f64 {
    let rh = rh.clamp(5.0, 99.0);
    t * (0.151977 * (rh + 8.313659).sqrt()).atan() + (t + rh).atan() - (rh - 1.676331).atan()
        + 0.00391838 * rh.powf(1.5) * (0.023101 * rh).atan()
        - 4.686035
}

/// The plant's COP at supply `supply_c` and wet-bulb `wet_bulb_c`, and
/// whether it is free cooling.
pub fn cop(setup: &CoolingSetup, supply_c: f64, wet_bulb_c: f64) -> (f64, bool) {
    let tower = wet_bulb_c + setup.approach_c;
    if tower <= supply_c {
        return (setup.free_cop, true);
    }
    let evaporator = supply_c - 5.0 + 273.15;
    let condenser = tower + 5.0 + 273.15;
    let lift = (condenser - evaporator).max(2.0);
    ((setup.carnot_fraction * evaporator / lift).min(setup.free_cop), false)
}

/// A run's results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CoolingOutcome {
    /// Hottest GPU temperature over the run at the fixed set-point, °C.
    pub max_temp_c: f64,
    /// Mean over hours of the hottest GPU's steady-state temperature at the
    /// set-point, °C.
    pub mean_hottest_c: f64,
    /// GPU energy, kWh.
    pub it_kwh: f64,
    /// Cooling energy, kWh.
    pub cooling_kwh: f64,
    /// Hours on free cooling.
    pub free_cooling_h: usize,
    /// Mean supply temperature the headroom allows, °C.
    pub mean_supply_c: f64,
    /// Per hour: hottest GPU temperature at the set-point (°C), allowed
    /// supply (°C), cooling kWh.
    pub hourly: Vec<(f64, f64, f64)>,
}

/// Runs `placement` over the hours of `weather` ((°C, % RH) per hour);
/// load follows a daily cycle from 0.3 to 1 of the peak, highest at 20:00.
pub fn run(setup: &CoolingSetup, placement: Placement, weather: &[(f64, f64)]) -> Result<CoolingOutcome, String> {
    run_routed(setup, placement, Routing::Even, weather, setup.max_supply_c)
}

/// As [`run`] with another warm-water cap on the supply temperature.
pub fn run_with_supply_cap(
    setup: &CoolingSetup,
    placement: Placement,
    weather: &[(f64, f64)],
    max_supply_c: f64,
) -> Result<CoolingOutcome, String> {
    run_routed(setup, placement, Routing::Even, weather, max_supply_c)
}

/// The peak utilisation an evenly routed replica reaches (the cap of
/// [`Routing::Headroom`]).
pub fn even_peak_utilization(setup: &CoolingSetup) -> f64 {
    setup.service_load.iter().zip(&setup.replicas).map(|(l, &r)| (l / r as f64).min(1.0)).fold(0.0, f64::max)
}

/// As [`run_with_supply_cap`] with `routing`.
pub fn run_routed(
    setup: &CoolingSetup,
    placement: Placement,
    routing: Routing,
    weather: &[(f64, f64)],
    max_supply_c: f64,
) -> Result<CoolingOutcome, String> {
    if weather.is_empty() {
        return Err("no hours of weather".into());
    }
    let gpu_of = place(setup, placement)?;
    let per_slice_w = (setup.max_w - setup.idle_w) / setup.slices as f64;
    // The load depends on the hour of the day only: one split per hour.
    let cap = even_peak_utilization(setup);
    let by_hour: Vec<Vec<f64>> = (0..24)
        .map(|h| {
            let cycle = 0.3 + 0.7 * (1.0 + (2.0 * std::f64::consts::PI * (h as f64 - 20.0) / 24.0).cos()) / 2.0;
            route(setup, &gpu_of, routing, cycle, cap)
        })
        .collect::<Result<_, _>>()?;
    let tau_s = setup.r_c_per_w * setup.c_j_per_c;
    let decay = (-60.0 / tau_s).exp();
    let mut temps = vec![f64::NAN; setup.gpus];
    let mut out = CoolingOutcome { max_temp_c: f64::NEG_INFINITY, ..CoolingOutcome::default() };
    for (h, &(outside_c, rh)) in weather.iter().enumerate() {
        let mut power = vec![setup.idle_w; setup.gpus];
        for (k, &g) in gpu_of.iter().enumerate() {
            power[g] += per_slice_w * by_hour[h % 24][k];
        }
        let hottest_rise = power.iter().map(|p| setup.r_c_per_w * p).fold(0.0, f64::max);
        let supply = (setup.limit_c - hottest_rise).min(max_supply_c);
        // An hour of minutes at the set-point, each GPU stepped exactly.
        for (g, t) in temps.iter_mut().enumerate() {
            let steady = setup.setpoint_c + setup.r_c_per_w * power[g];
            if t.is_nan() {
                *t = steady;
            }
            for _ in 0..60 {
                *t = steady + (*t - steady) * decay;
                out.max_temp_c = out.max_temp_c.max(*t);
            }
        }
        let heat_kwh: f64 = power.iter().sum::<f64>() / 1000.0;
        let (cop, free) = cop(setup, supply, wet_bulb_c(outside_c, rh));
        let cooling = heat_kwh / cop;
        out.it_kwh += heat_kwh;
        out.cooling_kwh += cooling;
        out.free_cooling_h += usize::from(free);
        out.mean_supply_c += supply;
        out.mean_hottest_c += setup.setpoint_c + hottest_rise;
        out.hourly.push((setup.setpoint_c + hottest_rise, supply, cooling));
    }
    let hours = weather.len() as f64;
    out.mean_supply_c /= hours;
    out.mean_hottest_c /= hours;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> CoolingSetup {
        CoolingSetup::zipf(8, 7, 12, 1.1, 0.75, 0.9)
    }

    #[test]
    fn balancing_lowers_the_hottest_gpu_at_equal_power() {
        let s = setup();
        let weather = vec![(20.0, 60.0); 48];
        let packed = run(&s, Placement::BinPacking, &weather).expect("runs");
        let balanced = run(&s, Placement::InferCool, &weather).expect("runs");
        assert!((packed.it_kwh - balanced.it_kwh).abs() < 1e-9, "equal power");
        assert!(balanced.max_temp_c < packed.max_temp_c - 1.0, "{} vs {}", balanced.max_temp_c, packed.max_temp_c);
        assert!(balanced.cooling_kwh <= packed.cooling_kwh);
    }

    #[test]
    fn cooling_energy_falls_as_warmer_supply_is_allowed() {
        let s = setup();
        let mut last = f64::INFINITY;
        for supply in [20.0, 25.0, 30.0, 35.0, 40.0] {
            let (cop, _) = cop(&s, supply, 22.0);
            let energy = 100.0 / cop;
            assert!(energy <= last + 1e-12, "monotone: {energy} after {last} at {supply} °C");
            last = energy;
        }
        // Wet-bulb 22 °C + 5 °C approach: free cooling from 27 °C supply.
        assert!(cop(&s, 27.0, 22.0).1 && !cop(&s, 26.9, 22.0).1);
    }

    #[test]
    fn free_cooling_hours_rise_with_the_supply_temperature() {
        let s = setup();
        // A year of a mild climate: 10 ± 12 °C over the year, ± 5 °C by day.
        let weather: Vec<(f64, f64)> = (0..8760)
            .map(|h| {
                let day = (2.0 * std::f64::consts::PI * h as f64 / 8760.0).cos();
                let hour = (2.0 * std::f64::consts::PI * ((h % 24) as f64 - 15.0) / 24.0).cos();
                (10.0 - 12.0 * day + 5.0 * hour, 70.0)
            })
            .collect();
        let mut last = 0;
        for cap in [20.0, 25.0, 30.0, 35.0] {
            let o = run_with_supply_cap(&s, Placement::InferCool, &weather, cap).expect("runs");
            assert!(o.free_cooling_h >= last, "{} after {last} at {cap} °C", o.free_cooling_h);
            last = o.free_cooling_h;
        }
        assert!(last > 0);
    }

    #[test]
    fn stull_wet_bulb_by_hand() {
        // Stull (2011): 20 °C at 50% RH gives 13.7 °C.
        assert!((wet_bulb_c(20.0, 50.0) - 13.7).abs() < 0.1, "{}", wet_bulb_c(20.0, 50.0));
        assert!(wet_bulb_c(30.0, 99.0) > 29.0);
    }

    #[test]
    fn routing_by_headroom_keeps_the_load_and_cools_the_hottest_gpu() {
        let s = setup();
        let cap = even_peak_utilization(&s);
        for placement in [Placement::BinPacking, Placement::InferCool] {
            let gpu_of = place(&s, placement).expect("places");
            let even = route(&s, &gpu_of, Routing::Even, 1.0, cap).expect("routes");
            let routed = route(&s, &gpu_of, Routing::Headroom, 1.0, cap).expect("routes");
            // Each service's load is served whole; no replica above the cap.
            let mut k = 0;
            for &r in &s.replicas {
                let (a, b): (f64, f64) = (even[k..k + r].iter().sum(), routed[k..k + r].iter().sum());
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
                k += r;
            }
            assert!(routed.iter().all(|&u| u <= cap + 1e-6));
            let hottest = |u: &[f64]| {
                let mut p = vec![0.0; s.gpus];
                for (k, &g) in gpu_of.iter().enumerate() {
                    p[g] += u[k];
                }
                p.into_iter().fold(0.0, f64::max)
            };
            assert!(hottest(&routed) <= hottest(&even) + 1e-6, "{placement:?}");
        }
        // At the daily peak the thermal-agnostic packing has replicas to
        // unload: routing lowers its hottest GPU strictly.
        let gpu_of = place(&s, Placement::BinPacking).expect("places");
        let total = |u: &[f64], g: usize| (0..u.len()).filter(|&k| gpu_of[k] == g).map(|k| u[k]).sum::<f64>();
        let even = route(&s, &gpu_of, Routing::Even, 1.0, cap).expect("routes");
        let routed = route(&s, &gpu_of, Routing::Headroom, 1.0, cap).expect("routes");
        let max = |u: &[f64]| (0..s.gpus).map(|g| total(u, g)).fold(0.0, f64::max);
        assert!(max(&routed) < max(&even) - 0.01, "{} vs {}", max(&routed), max(&even));
    }

    #[test]
    fn placements_use_every_instance_once() {
        let s = setup();
        let total: usize = s.replicas.iter().sum();
        assert_eq!(total, 42);
        for p in [Placement::BinPacking, Placement::RoundRobin, Placement::InferCool] {
            let g = place(&s, p).expect("places");
            assert_eq!(g.len(), total);
            for gpu in 0..8 {
                assert!(g.iter().filter(|&&x| x == gpu).count() <= 7, "{p:?}");
            }
        }
    }
}
