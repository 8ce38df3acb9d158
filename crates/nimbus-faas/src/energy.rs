//! Energy and carbon of invocations (FaasMeter, SoCC'24; the Hidden Carbon
//! methodology study, SoCC'24).
//!
//! Each host draws `idle + (max − idle)·u + m·GB` watts at utilisation `u`
//! (running invocations / cores, capped at 1) with `GB` of sandboxes loaded
//! (`m` W/GB of DRAM kept in use), and carries embodied carbon amortised
//! over its life. Between any two changes of a host's state, the
//! energy and embodied carbon of that interval are attributed to the apps
//! with sandboxes on it, three ways, side by side:
//! - `shapley` (FaasMeter): the Shapley value of the game "energy the host
//!   would draw if only these apps were on it", so idle power and embodied
//!   carbon are shared equally by the apps present (including those only
//!   kept alive) and dynamic power by their running invocations; exact.
//! - `cpu`: dynamic power by running invocations only; idle power and
//!   embodied carbon are left unattributed (CPU-time-only accounting).
//! - `memory`: dynamic power by running invocations; idle power and
//!   embodied carbon by loaded sandbox memory.
//!
//! Memory power goes to the app holding the memory (Shapley and memory) or
//! stays unattributed (CPU-only). Carbon = energy × the grid's hourly
//! intensity + embodied. Energy of an interval with no app on a host is
//! unattributed under every method. Deviation: FaasMeter disaggregates
//! measured full-system power with a Kalman filter; here power is
//! modelled, so attribution is exact.

use std::collections::BTreeMap;

use nimbus_model::energy::{Embodied, LinearPower, shapley};
use nimbus_sim::SimTime;

/// Grid carbon intensity over time.
#[derive(Debug, Clone, PartialEq)]
pub enum CarbonIntensity {
    /// The same every hour, gCO2e/kWh.
    Constant(f64),
    /// One value per hour from the start of the run, cycling.
    Hourly(Vec<f64>),
}

impl CarbonIntensity {
    /// gCO2e/kWh at `t`.
    pub fn at(&self, t: SimTime) -> f64 {
        match self {
            CarbonIntensity::Constant(v) => *v,
            CarbonIntensity::Hourly(values) => {
                let hour = (t.as_secs_f64() / 3600.0).floor() as usize;
                values.get(hour % values.len().max(1)).copied().unwrap_or(0.0)
            }
        }
    }
}

/// Energy settings of a platform.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyConfig {
    /// Host power model.
    pub power: LinearPower,
    /// Host embodied carbon.
    pub embodied: Embodied,
    /// Cores per host (one per running invocation).
    pub cores: u32,
    /// Watts per GB of loaded sandbox memory.
    pub mem_w_per_gb: f64,
    /// Grid intensity.
    pub intensity: CarbonIntensity,
}

/// What one app was charged, by method.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AppEnergy {
    /// Joules: Shapley, CPU-only, memory.
    pub joules: [f64; 3],
    /// Grams CO2e (operational + embodied), same order.
    pub carbon_g: [f64; 3],
}

/// The attribution methods, in [`AppEnergy`]'s order.
pub const METHODS: [&str; 3] = ["shapley", "cpu", "memory"];

#[derive(Debug, Clone, Default)]
struct HostState {
    last: SimTime,
    /// app → running invocations.
    running: BTreeMap<u32, u32>,
    /// app → (sandboxes, MB).
    loaded: BTreeMap<u32, (u32, u64)>,
}

/// Integrates and attributes energy as hosts change state.
#[derive(Debug)]
pub struct Accountant {
    config: EnergyConfig,
    hosts: Vec<HostState>,
    /// Per app.
    pub apps: Vec<AppEnergy>,
    /// Joules drawn by each host.
    pub host_joules: Vec<f64>,
    /// Joules attributed to nobody, by method.
    pub unattributed_joules: [f64; 3],
    /// Operational grams CO2e of all hosts.
    pub operational_g: f64,
    /// Embodied grams CO2e of all hosts.
    pub embodied_g: f64,
}

impl Accountant {
    /// An accountant for `hosts` hosts and `apps` apps.
    pub fn new(config: EnergyConfig, hosts: usize, apps: usize) -> Self {
        Accountant {
            config,
            hosts: vec![HostState::default(); hosts],
            apps: vec![AppEnergy::default(); apps],
            host_joules: vec![0.0; hosts],
            unattributed_joules: [0.0; 3],
            operational_g: 0.0,
            embodied_g: 0.0,
        }
    }

    /// Attributes host `h`'s interval up to `now`.
    pub fn advance(&mut self, h: usize, now: SimTime) {
        let state = &mut self.hosts[h];
        let dt = now.saturating_since(state.last).as_secs_f64();
        state.last = now;
        if dt <= 0.0 {
            return;
        }
        let cores = f64::from(self.config.cores.max(1));
        let power = self.config.power;
        let slope = power.max_w - power.idle_w;
        let total_run: u32 = state.running.values().sum();
        let u = (f64::from(total_run) / cores).min(1.0);
        let mem_w_per_mb = self.config.mem_w_per_gb / 1024.0;
        let memory_j: f64 = state.loaded.values().map(|&(_, mb)| mb as f64 * mem_w_per_mb * dt).sum();
        let joules = power.watts(u) * dt + memory_j;
        let ci = self.config.intensity.at(now);
        let g_per_j = ci / 3.6e6;
        let embodied = self.config.embodied.g_per_s() * dt;
        self.host_joules[h] += joules;
        self.operational_g += joules * g_per_j;
        self.embodied_g += embodied;
        let players: Vec<(u32, u32, u64)> = state
            .loaded
            .iter()
            .map(|(&app, &(_, mb))| (app, state.running.get(&app).copied().unwrap_or(0), mb))
            .collect();
        if players.is_empty() {
            for u in &mut self.unattributed_joules {
                *u += joules;
            }
            return;
        }
        let n = players.len();
        let idle_j = power.idle_w * dt;
        let dynamic_j = joules - idle_j - memory_j;
        // Shapley: idle power is a unanimity game (split equally among the
        // apps present) and memory power additive (each pays its own); the
        // dynamic term depends only on running apps. While no core is
        // oversubscribed it is additive too (closed form); when saturated it
        // is computed exactly over up to 8 running apps and split by running
        // invocations beyond (an approximation, to bound the cost per event).
        let runners: Vec<usize> = (0..n).filter(|&i| players[i].1 > 0).collect();
        let mut dynamic_share = vec![0.0; n];
        if total_run as f64 <= cores {
            for &i in &runners {
                dynamic_share[i] = slope * f64::from(players[i].1) / cores * dt;
            }
        } else if runners.len() <= 8 {
            let value = |members: u64| {
                let run: u32 =
                    (0..runners.len()).filter(|r| members >> r & 1 == 1).map(|r| players[runners[r]].1).sum();
                slope * (f64::from(run) / cores).min(1.0) * dt
            };
            for (r, phi) in shapley(runners.len(), value, 0, 0).into_iter().enumerate() {
                dynamic_share[runners[r]] = phi;
            }
        } else {
            for &i in &runners {
                dynamic_share[i] = dynamic_j * f64::from(players[i].1) / f64::from(total_run);
            }
        }
        let shapley_j: Vec<f64> = dynamic_share.iter().map(|d| idle_j / n as f64 + d).collect();
        let total_mb: u64 = players.iter().map(|p| p.2).sum::<u64>().max(1);
        let share_run = |k: u32| if total_run == 0 { 0.0 } else { f64::from(k) / f64::from(total_run) };
        let mut attributed = [0.0f64; 3];
        for (i, &(app, k, mb)) in players.iter().enumerate() {
            let mem_share = mb as f64 / total_mb as f64;
            let own_memory_j = mb as f64 * mem_w_per_mb * dt;
            let j = [
                shapley_j.get(i).copied().unwrap_or(0.0) + own_memory_j,
                dynamic_j * share_run(k),
                dynamic_j * share_run(k) + idle_j * mem_share + own_memory_j,
            ];
            let emb = [embodied / n as f64, 0.0, embodied * mem_share];
            let a = &mut self.apps[app as usize];
            for m in 0..3 {
                a.joules[m] += j[m];
                a.carbon_g[m] += j[m] * g_per_j + emb[m];
                attributed[m] += j[m];
            }
        }
        for (unattributed, attributed) in self.unattributed_joules.iter_mut().zip(attributed) {
            *unattributed += joules - attributed;
        }
    }

    /// An invocation of `app` starts running on host `h`.
    pub fn start(&mut self, h: usize, app: u32, now: SimTime) {
        self.advance(h, now);
        *self.hosts[h].running.entry(app).or_default() += 1;
    }

    /// An invocation of `app` stops running on host `h`.
    pub fn stop(&mut self, h: usize, app: u32, now: SimTime) {
        self.advance(h, now);
        let running = &mut self.hosts[h].running;
        if let Some(k) = running.get_mut(&app) {
            *k -= 1;
            if *k == 0 {
                running.remove(&app);
            }
        }
    }

    /// A sandbox of `app` (`mb`) is loaded on host `h`.
    pub fn load(&mut self, h: usize, app: u32, mb: u64, now: SimTime) {
        self.advance(h, now);
        let e = self.hosts[h].loaded.entry(app).or_default();
        e.0 += 1;
        e.1 += mb;
    }

    /// A sandbox of `app` (`mb`) is unloaded from host `h`.
    pub fn unload(&mut self, h: usize, app: u32, mb: u64, now: SimTime) {
        self.advance(h, now);
        let loaded = &mut self.hosts[h].loaded;
        if let Some(e) = loaded.get_mut(&app) {
            e.0 -= 1;
            e.1 -= mb;
            if e.0 == 0 {
                loaded.remove(&app);
            }
        }
    }

    /// Attributes every host up to `now`.
    pub fn finish(&mut self, now: SimTime) {
        for h in 0..self.hosts.len() {
            self.advance(h, now);
        }
    }
}
