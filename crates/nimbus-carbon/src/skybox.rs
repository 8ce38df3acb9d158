//! SkyBox (SoCC'24, "Exploring the Efficiency of Renewable Energy-based
//! Modular Data Centers at Scale"): modular datacenters placed at renewable
//! farms, the farms chosen so that their outputs complement each other, and
//! VMs placed and migrated across the sites on forecast output.
//!
//! **Mechanism**, in the paper's three steps:
//! 1. *Farm qualification*: each farm's hourly output is ranked by its
//!    coefficient of variation (σ/μ over a history window); farms above
//!    `max_cv` are left out ([`coefficient_of_variation`]).
//! 2. *Subgraph identification*: qualified farms are the nodes of a
//!    complementarity graph whose edges join farms with Pearson
//!    correlation at most `max_correlation`; among the complete subgraphs
//!    (cliques) of `min_farms` to `farms` members (2 to 3 by default), the
//!    one whose combined output (members normalised to equal mean output,
//!    then averaged) has the lowest CV is chosen ([`select`]). The paper names the step, not its
//!    algorithm: the exhaustive clique search and the CV objective are
//!    inferred. Enumeration is in farm order, so ties resolve the same way
//!    on every run.
//! 3. *Placement and migration*: one modular datacenter per chosen farm,
//!    the capacity split evenly. Every `replan_h` hours a rolling-horizon
//!    MIP over `horizon_h` hours × sites ([`run`]) places VMs
//!    (integers) to minimise backup (non-renewable) energy plus a penalty
//!    per VM moved and a larger one per VM-hour evicted, under each site's
//!    forecast renewable output plus a capped backup feed. Forecasts come
//!    from `nimbus-forecast` (the paper's predictor is "learning-based";
//!    the default here is the ridge lag model `linear`), or from the
//!    actual future (`oracle`, an upper bound). The plan then meets the
//!    actual output: a site that cannot power its planned VMs sends the
//!    excess to sites with spare renewable power, then spare backup, and
//!    evicts the rest ([`execute_hour`]).
//!
//! **Baselines**: a single farm of the same total capacity (any farm named
//! in the scenario) and the farm with the best CV alone, both run by the
//! same controller, so only the deployment differs.
//!
//! **Modelled, not real**: the paper uses farm-level power traces that are
//! not public; zone-level solar and wind production (ENTSO-E via Let's
//! Wait Awhile, 2020) or zone renewable shares (GreenDCC) stand in, which
//! smooths each "farm" over a country. VM demand is a count of equal VMs
//! per hour, each drawing `vm_w` at the facility, known to the planner for
//! the horizon (forecasting demand is out of scope here). A migration is
//! instantaneous and costs `migration_kwh` in the objective only.
//! Evictions are counted as VMs stopped for lack of power; they resume when
//! power returns.

use nimbus_forecast::forecast::Forecaster;
use nimbus_solve::{Model, Sense, SolveOptions, Var};

/// Mean of a series (0 when empty).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

/// σ/μ with the population σ; infinite when the mean is not positive (a
/// farm that produces nothing is never qualified).
pub fn coefficient_of_variation(values: &[f64]) -> f64 {
    let m = mean(values);
    if m <= 0.0 || values.is_empty() {
        return f64::INFINITY;
    }
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len() as f64;
    var.sqrt() / m
}

/// Pearson correlation; 0 when either series is constant.
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (ma, mb) = (mean(&a[..n]), mean(&b[..n]));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (x, y) = (a[i] - ma, b[i] - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    if saa <= 0.0 || sbb <= 0.0 { 0.0 } else { sab / (saa * sbb).sqrt() }
}

/// The combined output of farms each scaled to the same mean (1 / members),
/// so that every set of farms delivers the same energy on average.
pub fn combined(members: &[&[f64]]) -> Vec<f64> {
    let n = members.iter().map(|m| m.len()).min().unwrap_or(0);
    let mut out = vec![0.0; n];
    for m in members {
        let scale = 1.0 / (mean(&m[..n]) * members.len() as f64);
        for (o, v) in out.iter_mut().zip(m.iter()) {
            *o += v * scale;
        }
    }
    out
}

/// The chosen farms.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Farm indices, ascending.
    pub members: Vec<usize>,
    /// CV of their combined output over the history.
    pub cv: f64,
    /// Each farm's CV over the history (all farms).
    pub farm_cv: Vec<f64>,
    /// Sets examined.
    pub candidates: usize,
}

/// The most sets [`select`] examines before refusing.
pub const MAX_CANDIDATES: u64 = 200_000;

fn binomial(n: usize, k: usize) -> u64 {
    let mut c: u64 = 1;
    for i in 0..k.min(n) {
        c = c.saturating_mul((n - i) as u64) / (i as u64 + 1);
    }
    c
}

/// Chooses `sizes.start()` to `sizes.end()` farms: qualified (CV ≤
/// `max_cv`), pairwise correlation ≤ `max_correlation`, and the lowest
/// combined CV among such sets (the smaller set on a tie).
pub fn select(
    history: &[Vec<f64>],
    sizes: std::ops::RangeInclusive<usize>,
    max_cv: f64,
    max_correlation: f64,
) -> Result<Selection, String> {
    let mut best: Option<Selection> = None;
    let mut last_error = String::from("no set size asked for");
    let mut candidates = 0;
    for size in sizes {
        match select_size(history, size, max_cv, max_correlation) {
            Ok(s) => {
                candidates += s.candidates;
                if best.as_ref().is_none_or(|b| s.cv < b.cv) {
                    best = Some(s);
                }
            }
            Err(e) => last_error = e,
        }
    }
    best.map(|b| Selection { candidates, ..b }).ok_or(last_error)
}

/// [`select`] for one set size.
fn select_size(history: &[Vec<f64>], size: usize, max_cv: f64, max_correlation: f64) -> Result<Selection, String> {
    if size == 0 {
        return Err("a set needs at least one farm".into());
    }
    let farm_cv: Vec<f64> = history.iter().map(|h| coefficient_of_variation(h)).collect();
    let qualified: Vec<usize> = (0..history.len()).filter(|&f| farm_cv[f] <= max_cv).collect();
    if qualified.len() < size {
        return Err(format!(
            "{} of {} farms have a CV at most {max_cv} (`max_cv`); {size} are needed",
            qualified.len(),
            history.len()
        ));
    }
    if binomial(qualified.len(), size) > MAX_CANDIDATES {
        return Err(format!(
            "{} qualified farms in sets of {size} make more than {MAX_CANDIDATES} candidate sets; lower `max_cv` or the set size",
            qualified.len()
        ));
    }
    let q = qualified.len();
    let mut complements = vec![vec![false; q]; q];
    for i in 0..q {
        for j in i + 1..q {
            let ok = correlation(&history[qualified[i]], &history[qualified[j]]) <= max_correlation;
            complements[i][j] = ok;
            complements[j][i] = ok;
        }
    }
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut candidates = 0usize;
    let mut stack: Vec<usize> = Vec::with_capacity(size);
    // Depth-first over cliques in index order; extends only with farms
    // joined to every member so far.
    fn extend(
        next: usize,
        size: usize,
        stack: &mut Vec<usize>,
        complements: &[Vec<bool>],
        visit: &mut dyn FnMut(&[usize]),
    ) {
        if stack.len() == size {
            visit(stack);
            return;
        }
        for c in next..complements.len() {
            if stack.iter().all(|&m| complements[m][c]) {
                stack.push(c);
                extend(c + 1, size, stack, complements, visit);
                stack.pop();
            }
        }
    }
    extend(0, size, &mut stack, &complements, &mut |set: &[usize]| {
        candidates += 1;
        let members: Vec<&[f64]> = set.iter().map(|&i| history[qualified[i]].as_slice()).collect();
        let cv = coefficient_of_variation(&combined(&members));
        if best.as_ref().is_none_or(|(b, _)| cv < *b) {
            best = Some((cv, set.iter().map(|&i| qualified[i]).collect()));
        }
    });
    match best {
        Some((cv, members)) => Ok(Selection { members, cv, farm_cv, candidates }),
        None => Err(format!(
            "no {size} qualified farms are pairwise correlated at most {max_correlation} (`max_correlation`); raise it or ask for fewer farms"
        )),
    }
}

/// A modular datacenter at one farm.
#[derive(Debug, Clone)]
pub struct Site {
    /// The farm's name.
    pub name: String,
    /// VM slots.
    pub capacity_vms: u32,
    /// Non-renewable feed available at any hour (kW).
    pub backup_kw: f64,
    /// The farm's actual output over the whole timeline (kW per hour).
    pub renewable_kw: Vec<f64>,
}

/// Where the planner's view of renewable output comes from.
pub enum Predictor {
    /// The actual future output (an upper bound on any forecaster).
    Oracle,
    /// A forecaster fitted each replan to the site's last `history_h` hours.
    Model(Box<dyn Forecaster>),
}

/// How the sites are run.
pub struct Controller {
    /// Hours the MIP looks ahead.
    pub horizon_h: usize,
    /// Hours between plans (≤ `horizon_h`).
    pub replan_h: usize,
    /// Hours of output each forecast is fitted on.
    pub history_h: usize,
    /// The planner's renewable view.
    pub predictor: Predictor,
    /// Objective cost of moving one VM, in kWh of backup energy.
    pub migration_kwh: f64,
    /// Objective cost of one evicted VM-hour, in kWh of backup energy.
    pub eviction_kwh: f64,
    /// Branch-and-bound node limit per MIP.
    pub node_limit: u64,
}

/// One executed hour.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Hour {
    /// VMs demanded.
    pub demand: u32,
    /// VMs running.
    pub served: u32,
    /// Renewable output of all sites (kW).
    pub renewable_kw: f64,
    /// Renewable power used (kW).
    pub renewable_used_kw: f64,
    /// Backup power drawn (kW).
    pub backup_kw: f64,
    /// VMs moved between sites at the start of the hour.
    pub migrations: u32,
    /// VMs stopped for lack of power at the start of the hour.
    pub evictions: u32,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// Every evaluated hour.
    pub hours: Vec<Hour>,
    /// MIPs solved.
    pub solves: usize,
    /// MIPs that stopped at the node limit (best incumbent used).
    pub node_limited: usize,
    /// Σ |forecast − actual| renewable output over the executed hours, kWh.
    pub forecast_abs_error_kwh: f64,
}

impl Outcome {
    /// Backup energy (kWh).
    pub fn backup_kwh(&self) -> f64 {
        self.hours.iter().map(|h| h.backup_kw).sum()
    }
    /// Renewable energy used (kWh).
    pub fn renewable_used_kwh(&self) -> f64 {
        self.hours.iter().map(|h| h.renewable_used_kw).sum()
    }
    /// Renewable energy produced but not used (kWh).
    pub fn curtailed_kwh(&self) -> f64 {
        self.hours.iter().map(|h| h.renewable_kw - h.renewable_used_kw).sum()
    }
    /// VM moves.
    pub fn migrations(&self) -> u64 {
        self.hours.iter().map(|h| u64::from(h.migrations)).sum()
    }
    /// VM evictions.
    pub fn evictions(&self) -> u64 {
        self.hours.iter().map(|h| u64::from(h.evictions)).sum()
    }
    /// VM-hours demanded but not run.
    pub fn evicted_vm_h(&self) -> u64 {
        self.hours.iter().map(|h| u64::from(h.demand - h.served)).sum()
    }
    /// The forecasts' absolute error over the executed hours, as a share of
    /// the actual output (%).
    pub fn forecast_error_pct(&self) -> f64 {
        let actual: f64 = self.hours.iter().map(|h| h.renewable_kw).sum();
        if actual > 0.0 { 100.0 * self.forecast_abs_error_kwh / actual } else { 0.0 }
    }
}

/// Runs hour `t` of the plan against the actual output: `planned[s]` VMs
/// wanted at site `s`, `placed[s]` running before the hour (updated).
/// Returns the hour, given `renewable[s]` (kW) and `demand`.
pub fn execute_hour(
    sites: &[Site],
    vm_kw: f64,
    renewable: &[f64],
    planned: &[u32],
    placed: &mut [u32],
    demand: u32,
    evicted_before: u32,
) -> Hour {
    let n = sites.len();
    // What each site can power this hour: renewable first, then backup.
    let powered: Vec<u32> = (0..n)
        .map(|s| {
            let by_power = ((renewable[s] + sites[s].backup_kw) / vm_kw + 1e-9).floor();
            (by_power.max(0.0) as u32).min(sites[s].capacity_vms)
        })
        .collect();
    let renewable_slots = |s: usize, hosted: u32| -> u32 {
        let free = ((renewable[s] / vm_kw + 1e-9).floor().max(0.0) as u32).min(sites[s].capacity_vms);
        free.saturating_sub(hosted)
    };
    let mut hosted: Vec<u32> = (0..n).map(|s| planned[s].min(powered[s])).collect();
    let mut total: u32 = hosted.iter().sum();
    // The plan may host more than demanded when demand fell short of the
    // plan's view: trim from the sites on backup first.
    while total > demand {
        let s = (0..n)
            .filter(|&s| hosted[s] > 0)
            .max_by(|&a, &b| {
                let over = |s: usize| f64::from(hosted[s]) * vm_kw - renewable[s];
                over(a).total_cmp(&over(b)).then(b.cmp(&a))
            })
            .expect("some site hosts VMs");
        let cut = (total - demand).min(hosted[s]);
        hosted[s] -= cut;
        total -= cut;
    }
    // The rest go where renewable power is spare, then where backup is.
    for pass in 0..2 {
        while total < demand {
            let room = |s: usize| {
                if pass == 0 { renewable_slots(s, hosted[s]) } else { powered[s].saturating_sub(hosted[s]) }
            };
            let Some(s) = (0..n).filter(|&s| room(s) > 0).max_by(|&a, &b| room(a).cmp(&room(b)).then(b.cmp(&a))) else {
                break;
            };
            let add = room(s).min(demand - total);
            hosted[s] += add;
            total += add;
        }
    }
    let mut hour = Hour { demand, served: total, ..Hour::default() };
    let before: u32 = placed.iter().sum();
    let arrivals: u32 = (0..n).map(|s| hosted[s].saturating_sub(placed[s])).sum();
    hour.migrations = arrivals.saturating_sub(total.saturating_sub(before));
    hour.evictions = (demand - total).saturating_sub(evicted_before);
    for s in 0..n {
        let load = f64::from(hosted[s]) * vm_kw;
        let used = load.min(renewable[s]);
        hour.renewable_kw += renewable[s];
        hour.renewable_used_kw += used;
        hour.backup_kw += load - used;
    }
    placed.copy_from_slice(&hosted);
    hour
}

/// Forecast output of every site for `horizon` hours from hour `t`, each
/// held within 0 and the site's peak output (`peaks`).
fn predict(
    sites: &[Site],
    peaks: &[f64],
    controller: &Controller,
    t: usize,
    horizon: usize,
) -> Result<Vec<Vec<f64>>, String> {
    sites
        .iter()
        .zip(peaks)
        .map(|(site, &cap)| {
            let mut view = match &controller.predictor {
                Predictor::Oracle => site.renewable_kw[t..t + horizon].to_vec(),
                Predictor::Model(model) => {
                    let history = &site.renewable_kw[t.saturating_sub(controller.history_h)..t];
                    model.forecast(history, horizon).map_err(|e| format!("{}: {e}", site.name))?.point
                }
            };
            for v in &mut view {
                *v = v.clamp(0.0, cap);
            }
            Ok(view)
        })
        .collect()
}

/// VMs at site `s` in hour `h` of a start vector laid out as [`plan`]
/// creates its variables: per hour the evicted count, then per site VMs,
/// backup and arrivals.
fn start_vms(start: &[f64], sites: usize, h: usize, s: usize) -> u32 {
    start[h * (1 + 3 * sites) + 1 + 3 * s] as u32
}

/// The plan for `horizon` hours: VMs per site per hour.
fn plan(
    sites: &[Site],
    vm_kw: f64,
    view: &[Vec<f64>],
    demand: &[u32],
    placed: &[u32],
    controller: &Controller,
) -> Result<(Vec<Vec<u32>>, bool), String> {
    let (n, horizon) = (sites.len(), demand.len());
    let mut m = Model::new();
    let mut x: Vec<Vec<Var>> = vec![Vec::with_capacity(horizon); n];
    // The search starts from the greedy plan (VMs stay where the forecast
    // powers them, the rest go where renewable, then backup power is
    // spare), so the node limit never leaves it without a plan and the
    // MIP's plan is never worse on the forecast than the greedy one.
    let mut start = Vec::new();
    let mut greedy = placed.to_vec();
    let mut evicted_before = 0;
    for h in 0..horizon {
        let forecast: Vec<f64> = (0..n).map(|s| (view[s][h] - 1e-6).max(0.0)).collect();
        let wanted = greedy.clone();
        let hour = execute_hour(sites, vm_kw, &forecast, &wanted, &mut greedy, demand[h], evicted_before);
        evicted_before = hour.demand - hour.served;
        let evicted = m.continuous(0.0, f64::from(demand[h]));
        m.objective_term(evicted, controller.eviction_kwh);
        start.push(f64::from(evicted_before));
        let mut balance = vec![(evicted, 1.0)];
        for s in 0..n {
            let vms = m.integer(0.0, f64::from(sites[s].capacity_vms));
            let backup = m.continuous(0.0, sites[s].backup_kw);
            m.objective_term(backup, 1.0);
            let before = if h == 0 { placed[s] } else { start_vms(&start, n, h - 1, s) };
            start.push(f64::from(greedy[s]));
            start.push((f64::from(greedy[s]) * vm_kw - view[s][h]).clamp(0.0, sites[s].backup_kw));
            start.push(f64::from(greedy[s].saturating_sub(before)));
            // Power: VMs' draw within forecast renewable plus backup.
            m.le(vec![(vms, vm_kw), (backup, -1.0)], view[s][h]);
            // Arrivals at the site (moves, resumptions, new VMs).
            let arrivals = m.continuous(0.0, f64::INFINITY);
            m.objective_term(arrivals, controller.migration_kwh);
            match h {
                0 => m.ge(vec![(arrivals, 1.0), (vms, -1.0)], -f64::from(placed[s])),
                _ => m.ge(vec![(arrivals, 1.0), (vms, -1.0), (x[s][h - 1], 1.0)], 0.0),
            }
            balance.push((vms, 1.0));
            x[s].push(vms);
        }
        m.eq(balance, f64::from(demand[h]));
    }
    let options = SolveOptions { node_limit: Some(controller.node_limit), mip_gap: 1e-4 };
    let solution = m.solve_from(Sense::Minimise, &options, &start).map_err(|e| format!("placement MIP: {e}"))?;
    let limited = solution.status() == nimbus_solve::Status::NodeLimit;
    let vms = x.iter().map(|row| row.iter().map(|&v| solution.value(v).round().max(0.0) as u32).collect()).collect();
    Ok((vms, limited))
}

/// Runs the sites over `demand` (VMs per hour), from hour `start` of the
/// sites' timelines, re-planning every `replan_h` hours.
pub fn run(
    sites: &[Site],
    vm_kw: f64,
    demand: &[u32],
    start: usize,
    controller: &Controller,
    progress: &mut dyn FnMut(f64),
) -> Result<Outcome, String> {
    if sites.is_empty() {
        return Err("no sites".into());
    }
    if vm_kw.is_nan() || vm_kw <= 0.0 {
        return Err(format!("a VM's power must be positive, not {vm_kw} kW"));
    }
    if controller.replan_h == 0 || controller.replan_h > controller.horizon_h {
        return Err(format!("replan every 1 to {} hours (the horizon)", controller.horizon_h));
    }
    if let Some(s) = sites.iter().find(|s| s.renewable_kw.len() < start + demand.len()) {
        return Err(format!(
            "{}: {} hours of output, {} needed (start {start} + {} evaluated)",
            s.name,
            s.renewable_kw.len(),
            start + demand.len(),
            demand.len()
        ));
    }
    let mut out = Outcome::default();
    let mut placed = vec![0u32; sites.len()];
    let mut evicted = 0u32;
    let mut planned: Vec<Vec<u32>> = Vec::new();
    let mut view: Vec<Vec<f64>> = Vec::new();
    let peaks: Vec<f64> = sites.iter().map(|s| s.renewable_kw.iter().copied().fold(0.0, f64::max)).collect();
    for (i, &d) in demand.iter().enumerate() {
        let t = start + i;
        let step = i % controller.replan_h;
        if step == 0 {
            let horizon = controller.horizon_h.min(demand.len() - i);
            view = predict(sites, &peaks, controller, t, horizon)?;
            let (p, limited) = plan(sites, vm_kw, &view, &demand[i..i + horizon], &placed, controller)?;
            planned = p;
            out.solves += 1;
            out.node_limited += usize::from(limited);
            progress(i as f64 / demand.len() as f64);
        }
        let wanted: Vec<u32> = planned.iter().map(|row| row[step]).collect();
        let actual: Vec<f64> = sites.iter().map(|s| s.renewable_kw[t]).collect();
        out.forecast_abs_error_kwh += actual.iter().zip(&view).map(|(a, v)| (a - v[step]).abs()).sum::<f64>();
        let hour = execute_hour(sites, vm_kw, &actual, &wanted, &mut placed, d, evicted);
        evicted = hour.demand - hour.served;
        out.hours.push(hour);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cv_and_correlation_by_hand() {
        // Mean 2, population σ 1: CV 0.5.
        assert!((coefficient_of_variation(&[1.0, 3.0, 1.0, 3.0]) - 0.5).abs() < 1e-12);
        assert_eq!(coefficient_of_variation(&[0.0, 0.0]), f64::INFINITY);
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn opposite_farms_combine_to_a_flat_output() {
        // Day-only and night-only farms of different sizes: scaled to equal
        // means, their sum is flat (CV 0).
        let day: Vec<f64> = (0..48).map(|h| if h % 24 < 12 { 10.0 } else { 0.0 }).collect();
        let night: Vec<f64> = (0..48).map(|h| if h % 24 < 12 { 0.0 } else { 3.0 }).collect();
        let both = combined(&[&day, &night]);
        assert!(coefficient_of_variation(&both) < 1e-12);
        assert!((mean(&both) - 1.0).abs() < 1e-12);
    }

    fn farms() -> Vec<Vec<f64>> {
        let wave = |phase: f64, amp: f64| -> Vec<f64> {
            (0..96).map(|h| 1.0 + amp * (std::f64::consts::TAU * (h as f64 / 24.0 + phase)).sin()).collect()
        };
        vec![wave(0.0, 0.9), wave(0.0, 0.8), wave(0.5, 0.9), wave(0.25, 0.3), vec![0.0; 96]]
    }

    #[test]
    fn selection_picks_the_complementary_clique() {
        let f = farms();
        let one = select(&f, 1..=1, 2.0, 1.0).expect("selects");
        assert_eq!(one.members, vec![3], "the steadiest farm alone");
        let two = select(&f, 2..=2, 2.0, 0.0).expect("selects");
        // Farms 0 and 2 are in antiphase with equal swings: a flat sum.
        assert_eq!(two.members, vec![0, 2]);
        assert!(two.cv < 1e-9);
        for &m in &two.members {
            assert!(two.cv < two.farm_cv[m]);
        }
        // The empty farm never qualifies; correlated farms never pair.
        // Up to three farms: the flat pair beats any triple.
        assert_eq!(select(&f, 1..=3, 2.0, 0.0).expect("selects").members, vec![0, 2]);
        assert!(select(&f, 2..=2, 2.0, -1.1).expect_err("none").contains("max_correlation"));
        assert!(select(&f, 5..=5, 2.0, 1.0).expect_err("too few").contains("max_cv"));
        assert!(select(&f, 2..=2, 0.5, 1.0).expect_err("too few").contains("1 of 5"));
    }

    fn site(name: &str, output: Vec<f64>, capacity: u32, backup_kw: f64) -> Site {
        Site { name: name.into(), capacity_vms: capacity, backup_kw, renewable_kw: output }
    }

    #[test]
    fn an_hour_uses_renewable_then_backup_then_evicts() {
        // 1 kW per VM. Site A: 3 kW sun, 1 kW backup, 10 slots. Site B:
        // 2 kW sun, no backup. 8 VMs wanted, all planned at A.
        let sites = [site("a", vec![], 10, 1.0), site("b", vec![], 10, 0.0)];
        let mut placed = [8, 0];
        let hour = execute_hour(&sites, 1.0, &[3.0, 2.0], &[8, 0], &mut placed, 8, 0);
        // A powers 4 (3 renewable + 1 backup); B takes 2 on renewable; 2 evicted.
        assert_eq!(placed, [4, 2]);
        assert_eq!(hour.served, 6);
        assert_eq!(hour.evictions, 2);
        assert_eq!(hour.migrations, 2);
        assert!((hour.renewable_used_kw - 5.0).abs() < 1e-12);
        assert!((hour.backup_kw - 1.0).abs() < 1e-12);
        // The next hour A has power for all: the 2 evicted resume there and
        // B's 2 move back, as planned.
        let next = execute_hour(&sites, 1.0, &[9.0, 2.0], &[8, 0], &mut placed, 8, 2);
        assert_eq!((next.served, next.evictions, next.migrations), (8, 0, 2));
        assert_eq!(placed, [8, 0]);
        assert!((next.renewable_kw - next.renewable_used_kw - 3.0).abs() < 1e-12, "3 kW curtailed");
    }

    #[test]
    fn the_oracle_planner_shifts_vms_to_where_the_sun_is() {
        // Two sites in antiphase, each able to power all VMs at its peak.
        let day: Vec<f64> = (0..72).map(|h| if h % 24 < 12 { 12.0 } else { 0.0 }).collect();
        let night: Vec<f64> = (0..72).map(|h| if h % 24 < 12 { 0.0 } else { 12.0 }).collect();
        let sites = [site("day", day.clone(), 10, 10.0), site("night", night, 10, 10.0)];
        let controller = Controller {
            horizon_h: 12,
            replan_h: 6,
            history_h: 24,
            predictor: Predictor::Oracle,
            migration_kwh: 0.1,
            eviction_kwh: 10.0,
            node_limit: 10_000,
        };
        let demand = vec![10u32; 48];
        let out = run(&sites, 1.0, &demand, 24, &controller, &mut |_| {}).expect("runs");
        assert_eq!(out.backup_kwh(), 0.0, "every hour on renewable power");
        assert_eq!(out.forecast_error_pct(), 0.0, "the oracle knows the output");
        assert_eq!(out.evicted_vm_h(), 0);
        // Three switches of 10 VMs (hours 36, 48, 60); the first hour places them.
        assert_eq!(out.migrations(), 30);
        let alone = [site("day", day, 10, 10.0)];
        let single = run(&alone, 1.0, &demand, 24, &controller, &mut |_| {}).expect("runs");
        assert!((single.backup_kwh() - 240.0).abs() < 1e-9, "24 dark hours × 10 kW");
        assert_eq!(single.migrations(), 0);
    }
}
