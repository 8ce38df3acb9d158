//! A web service on on-demand and burstable cloud instances: the model
//! AutoBurst ([`crate::autoburst`]) and its baselines run on.
//!
//! - **Instances** (AWS us-east-1 Linux on-demand prices, per-second
//!   billing from the start request to the stop): on-demand `m5.large`
//!   ($0.096/h) and the 2-vCPU burstables `t3.micro` ($0.0104/h, baseline
//!   10% per vCPU), `t3.small` ($0.0208/h, 20%), `t3.medium` ($0.0416/h,
//!   20%) and `t3.large` ($0.0832/h, 30%). Every instance of a kind serves
//!   the same rate at 100% CPU (requests/s, by default fitted to the
//!   throughput table: see [`ThroughputTable::fitted_rates`]); a started
//!   instance serves after `start_delay_s`.
//! - **CPU credits** (the T-family rules in standard mode): a running
//!   burstable earns vCPUs × baseline × 60 credits an hour, one credit is
//!   one vCPU-minute at 100%, CPU above the baseline spends credits, the
//!   balance is capped at 24 hours of earnings and never goes below zero:
//!   with an empty balance the instance runs at its baseline. Each second
//!   an instance may use CPU up to baseline + 60·balance/vCPUs, so the
//!   balance cannot go negative within a second. Credits persist while an
//!   instance is stopped (AWS keeps them for 7 days; the model keeps them).
//! - **Load balancing**: nginx weighted least connections as AutoBurst
//!   patches it (pick the server minimising (conns+1)/weight). In the fluid
//!   model each second, the arrivals are split so that (N_i + 1)/w_i is
//!   equal across the servers that receive any, where N_i = ρ_i/(1−ρ_i)
//!   is the mean number in an M/M/1 processor-sharing server at
//!   utilisation ρ_i: λ_i = c_i(1 − 1/(L·w_i)) for the L that makes the
//!   rates sum to the arrivals (closed form on the active set, the
//!   largest weights first). Capacity c_i is what the instance can serve
//!   in the second after its backlog. When arrivals exceed every server's
//!   capacity, each serves at capacity and the excess queues in proportion
//!   to the weights.
//! - **Queues and latency**: each instance keeps a fluid backlog (requests
//!   it could not serve); a request's latency is backlog/capacity plus the
//!   M/M/1-PS response time 1/(c − λ) (bounded at 50/c under overload).
//!   The SLO is on the mean latency of each 5-s window (AutoBurst's).
//!   Requests of a stopped instance's backlog are sent again the next
//!   second; nothing is dropped: arrived = served + queued.
//! - **Controllers** are asked every `estimator_period_s` for how many
//!   on-demand and burstable instances to run, and (AutoBurst) every
//!   `optimizer_period_s` to set weights from the last window's latency.
//!   Removed burstables drain: they keep serving until their balance is
//!   below 0.1 credits, as AutoBurst's controller does, then stop.
//!
//! Baselines: **on-demand-only autoscaling** (every 30 s, ⌈arrivals ×
//! 1.1 / 0.8 / on-demand rate⌉ instances: the same headroom AutoBurst
//! plans with; scale-in to the highest recommendation of the last 300 s)
//! and **burstable-only** (the same rule with burstables alone, equal
//! weights: what the credits do without control).
//!
//! Modelled, not measured: the M/M/1 latency curve and the linear per-
//! instance rates stand in for MediaWiki; only the throughput table is a
//! measurement.

use std::collections::VecDeque;
use std::sync::Arc;

use nimbus_sim::output::{Better, Metric, RunOutput, Series};
use nimbus_trace::grid::Grid;

use crate::demand::Demand;

/// An instance type.
#[derive(Debug, PartialEq)]
pub struct InstanceType {
    /// AWS name.
    pub name: &'static str,
    /// vCPUs.
    pub vcpus: f64,
    /// US dollars per hour (us-east-1, Linux, on demand).
    pub usd_per_hour: f64,
    /// Baseline CPU share per vCPU for burstables; `None` for on-demand.
    pub baseline: Option<f64>,
}

impl InstanceType {
    /// Credits earned per second while running.
    pub fn credits_per_s(&self) -> f64 {
        self.vcpus * self.baseline.unwrap_or(0.0) / 60.0
    }

    /// The balance cap: 24 hours of earnings.
    pub fn max_credits(&self) -> f64 {
        self.credits_per_s() * 86_400.0
    }
}

/// The instance types a scenario may name.
pub static INSTANCE_TYPES: &[InstanceType] = &[
    InstanceType { name: "m5.large", vcpus: 2.0, usd_per_hour: 0.096, baseline: None },
    InstanceType { name: "t3.micro", vcpus: 2.0, usd_per_hour: 0.0104, baseline: Some(0.10) },
    InstanceType { name: "t3.small", vcpus: 2.0, usd_per_hour: 0.0208, baseline: Some(0.20) },
    InstanceType { name: "t3.medium", vcpus: 2.0, usd_per_hour: 0.0416, baseline: Some(0.20) },
    InstanceType { name: "t3.large", vcpus: 2.0, usd_per_hour: 0.0832, baseline: Some(0.30) },
];

/// Finds an instance type by name, saying which exist otherwise.
pub fn instance_type(name: &str, burstable: bool) -> Result<&'static InstanceType, String> {
    INSTANCE_TYPES.iter().find(|t| t.name == name && t.baseline.is_some() == burstable).ok_or_else(|| {
        let names: Vec<&str> =
            INSTANCE_TYPES.iter().filter(|t| t.baseline.is_some() == burstable).map(|t| t.name).collect();
        format!(
            "unknown {} instance type {name:?}; available: {}",
            if burstable { "burstable" } else { "on-demand" },
            names.join(", ")
        )
    })
}

/// AutoBurst's measured MediaWiki throughput table (requests/s by on-demand
/// rows × burstable columns, −1 not measured), from the artifact's
/// `src/throughput.csv` (github.com/shyamjesal/AutoBurst, commit 3f74aac):
/// the embedded default when `../shared/data/autoburst-throughput` is
/// absent.
pub const ARTIFACT_TABLE: &str = "ond,5,7,9,11,13,15\n0,140,192,250,301,359,421\n5,314,372,419,480,543,596\n\
7,381,432,508,558,609,-1\n9,444,509,569,622,-1,-1\n11,510,583,624,-1,-1,-1\n13,586,635,-1,-1,-1,-1\n15,657,-1,-1,-1,-1,-1\n";

/// The throughput table filled to every integer count between its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputTable {
    /// The measurements.
    pub grid: Grid,
    /// `filled[o − first row][b − first column]`: measured or interpolated
    /// requests/s; `None` outside the measured hull.
    filled: Vec<Vec<Option<f64>>>,
}

impl ThroughputTable {
    /// Fills the grid as AutoBurst's `fillUpThroughputTable` does: linear
    /// interpolation on a triangulation of the measured cells. Each
    /// rectangle between adjacent measured labels is split along its
    /// anti-diagonal; a cell takes the plane through its triangle's
    /// corners when all three are measured. Cells outside (the corner
    /// AutoBurst never measured) stay empty, as SciPy's `griddata` leaves
    /// them NaN, and the lookup skips them. Inside fully measured
    /// rectangles the diagonal may differ from `griddata`'s Delaunay choice
    /// (both are linear interpolations of the same four numbers).
    pub fn new(grid: Grid) -> ThroughputTable {
        let (r0, r1) = (grid.rows[0], *grid.rows.last().expect("rows"));
        let (c0, c1) = (grid.columns[0], *grid.columns.last().expect("columns"));
        let bracket = |labels: &[u32], x: u32| -> (usize, usize, f64) {
            match labels.binary_search(&x) {
                Ok(i) => (i, i, 0.0),
                Err(i) => (i - 1, i, f64::from(x - labels[i - 1]) / f64::from(labels[i] - labels[i - 1])),
            }
        };
        let mut filled = Vec::new();
        for o in r0..=r1 {
            let (ra, rb, x) = bracket(&grid.rows, o);
            let mut row = Vec::new();
            for b in c0..=c1 {
                let (ca, cb, y) = bracket(&grid.columns, b);
                let at = |r: usize, c: usize| grid.cells[r][c];
                let value = if x + y <= 1.0 {
                    match (at(ra, ca), at(rb, ca), at(ra, cb)) {
                        (Some(f00), Some(f10), Some(f01)) => Some(f00 + x * (f10 - f00) + y * (f01 - f00)),
                        _ => None,
                    }
                } else {
                    match (at(rb, cb), at(ra, cb), at(rb, ca)) {
                        (Some(f11), Some(f01), Some(f10)) => {
                            Some(f11 + (1.0 - x) * (f01 - f11) + (1.0 - y) * (f10 - f11))
                        }
                        _ => None,
                    }
                };
                row.push(value);
            }
            filled.push(row);
        }
        ThroughputTable { grid, filled }
    }

    /// The table of the AutoBurst artifact.
    pub fn artifact() -> ThroughputTable {
        let grid = nimbus_trace::grid::read_grid(nimbus_trace::Source::bytes(
            std::path::Path::new("autoburst-throughput (embedded)"),
            ARTIFACT_TABLE.as_bytes(),
        ))
        .expect("the embedded table is valid");
        ThroughputTable::new(grid)
    }

    /// Requests/s of `on_demand` and `burstable` instances, where the table
    /// has a value.
    pub fn throughput(&self, on_demand: u32, burstable: u32) -> Option<f64> {
        let o = on_demand.checked_sub(self.grid.rows[0])?;
        let b = burstable.checked_sub(self.grid.columns[0])?;
        *self.filled.get(usize::try_from(o).ok()?)?.get(usize::try_from(b).ok()?)?
    }

    /// The most on-demand instances the table has a row for.
    pub fn max_on_demand(&self) -> u32 {
        *self.grid.rows.last().expect("rows")
    }

    /// AutoBurst's `findNumberOfBurstable`: the fewest burstables whose
    /// throughput with `on_demand` instances reaches `target`, the largest
    /// column when none does; `None` when the table has no such row.
    pub fn burstables_for(&self, on_demand: u32, target: f64) -> Option<u32> {
        let row = self.filled.get(usize::try_from(on_demand.checked_sub(self.grid.rows[0])?).ok()?)?;
        let first = self.grid.columns[0];
        let found = row.iter().enumerate().find(|(_, v)| v.is_some_and(|v| v >= target));
        Some(match found {
            Some((i, _)) => first + u32::try_from(i).unwrap_or(0),
            None => *self.grid.columns.last().expect("columns"),
        })
    }

    /// Per-instance rates (requests/s of an on-demand and of a bursting
    /// burstable instance) by least squares through the origin on the
    /// measured cells: throughput ≈ α·on-demand + β·burstable.
    pub fn fitted_rates(&self) -> (f64, f64) {
        let (mut oo, mut ob, mut bb, mut ot, mut bt) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (r, row) in self.grid.cells.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if let Some(t) = cell {
                    let (o, b) = (f64::from(self.grid.rows[r]), f64::from(self.grid.columns[c]));
                    oo += o * o;
                    ob += o * b;
                    bb += b * b;
                    ot += o * t;
                    bt += b * t;
                }
            }
        }
        let det = oo * bb - ob * ob;
        if det.abs() < 1e-12 {
            // One kind only: all throughput on the burstables.
            return (0.0, if bb > 0.0 { bt / bb } else { 0.0 });
        }
        ((ot * bb - bt * ob) / det, (oo * bt - ob * ot) / det)
    }
}

/// The service and its cloud.
#[derive(Debug, Clone)]
pub struct Service {
    /// On-demand instance type.
    pub on_demand: &'static InstanceType,
    /// Burstable instance type (a policy may choose another).
    pub burstable: &'static InstanceType,
    /// Requests/s an on-demand instance serves.
    pub on_demand_rate: f64,
    /// Requests/s a burstable serves at 100% CPU.
    pub burstable_rate: f64,
    /// Pool of on-demand instances.
    pub max_on_demand: u32,
    /// Pool of burstables.
    pub max_burstable: u32,
    /// Seconds from a start request to serving.
    pub start_delay_s: u64,
    /// Mean-latency SLO per 5-s window, seconds.
    pub slo_s: f64,
    /// Balance of every burstable at the start.
    pub initial_credits: f64,
    /// Seconds left out of the metrics at the start.
    pub warmup_s: u64,
    /// The throughput table.
    pub table: Arc<ThroughputTable>,
}

/// Kind of instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular.
    OnDemand,
    /// T-family.
    Burstable,
}

/// Lifecycle of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not billed, not serving.
    Stopped,
    /// Billed, serving from the given second.
    Starting(u64),
    /// Billed and serving.
    Running,
    /// A burstable being removed: serving until its credits are spent.
    Draining,
}

/// One instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Kind.
    pub kind: Kind,
    /// Lifecycle state.
    pub state: State,
    /// CPU-credit balance (burstables).
    pub credits: f64,
    /// Load-balancer weight (≥ 1).
    pub weight: f64,
    /// Requests waiting.
    pub(crate) backlog: f64,
}

impl Instance {
    /// Serving requests now.
    pub fn serving(&self) -> bool {
        matches!(self.state, State::Running | State::Draining)
    }

    /// Billed now.
    pub fn billed(&self) -> bool {
        self.state != State::Stopped
    }
}

/// How many instances of each kind a controller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// On-demand instances.
    pub on_demand: u32,
    /// Burstables.
    pub burstable: u32,
}

/// What a controller sees at a decision.
#[derive(Debug)]
pub struct View<'a> {
    /// Seconds since the start.
    pub now_s: u64,
    /// Mean arrivals/s over the last estimator period.
    pub arrival_rate: f64,
    /// Request-weighted mean latency of the last 5-s window, seconds
    /// (`None` without requests).
    pub latency_s: Option<f64>,
    /// The service.
    pub service: &'a Service,
}

/// A controller of the service.
pub trait Controller {
    /// Seconds between plans.
    fn estimator_period_s(&self) -> u64 {
        30
    }
    /// Seconds between weight updates (`None`: weights never change).
    fn optimizer_period_s(&self) -> Option<u64> {
        None
    }
    /// The burstable type it runs (`None`: the service's).
    fn burstable_type(&self) -> Option<&'static InstanceType> {
        None
    }
    /// How many instances to run.
    fn plan(&mut self, view: &View<'_>, fleet: &[Instance]) -> Plan;
    /// Sets weights from the last window's latency.
    fn optimize(&mut self, _view: &View<'_>, _fleet: &mut [Instance]) {}
    /// Weight of a newly started or resumed instance.
    fn new_weight(&self, _kind: Kind, _fleet: &[Instance]) -> f64 {
        1.0
    }
}

/// Splits `arrivals` over servers with capacities `capacity` and weights
/// `weight` as weighted least connections does in the fluid limit (see the
/// module docs); writes the rates into `out`.
pub fn least_connections(capacity: &[f64], weight: &[f64], arrivals: f64, order: &mut Vec<usize>, out: &mut [f64]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    if arrivals <= 0.0 || capacity.is_empty() {
        return;
    }
    let total: f64 = capacity.iter().sum();
    if arrivals >= total {
        let weights: f64 = weight.iter().sum();
        for i in 0..capacity.len() {
            out[i] = capacity[i] + (arrivals - total) * weight[i] / weights;
        }
        return;
    }
    order.clear();
    order.extend((0..capacity.len()).filter(|&i| capacity[i] > 0.0));
    order.sort_by(|&a, &b| weight[b].total_cmp(&weight[a]).then(a.cmp(&b)));
    let (mut sum_c, mut sum_cw) = (0.0, 0.0);
    let mut level = f64::INFINITY;
    let mut active = order.len();
    for (k, &i) in order.iter().enumerate() {
        sum_c += capacity[i];
        sum_cw += capacity[i] / weight[i];
        if sum_c > arrivals {
            let l = sum_cw / (sum_c - arrivals);
            if order.get(k + 1).is_none_or(|&next| l * weight[next] <= 1.0) {
                level = l;
                active = k + 1;
                break;
            }
        }
    }
    for &i in &order[..active] {
        out[i] = (capacity[i] * (1.0 - 1.0 / (level * weight[i]))).max(0.0);
    }
    // Rounding: put any residue on the largest-weight server.
    let assigned: f64 = out.iter().sum();
    if let Some(&first) = order.first() {
        out[first] += arrivals - assigned;
    }
}

/// Applies `plan` to the fleet as AutoBurst's controller does.
fn apply(
    plan: Plan,
    fleet: &mut [Instance],
    now: u64,
    service: &Service,
    controller: &dyn Controller,
    carry: &mut f64,
) {
    let active = |fleet: &[Instance], kind: Kind| {
        fleet.iter().filter(|i| i.kind == kind && matches!(i.state, State::Running | State::Starting(_))).count()
    };
    for kind in [Kind::OnDemand, Kind::Burstable] {
        let want = usize::try_from(if kind == Kind::OnDemand { plan.on_demand } else { plan.burstable }).unwrap_or(0);
        let mut have = active(fleet, kind);
        if want > have {
            // Resume draining burstables first (most credits first), then
            // start stopped instances in pool order.
            let mut draining: Vec<usize> =
                (0..fleet.len()).filter(|&i| fleet[i].kind == kind && fleet[i].state == State::Draining).collect();
            draining.sort_by(|&a, &b| fleet[b].credits.total_cmp(&fleet[a].credits).then(a.cmp(&b)));
            for i in draining.into_iter().take(want - have) {
                fleet[i].state = State::Running;
                fleet[i].weight = controller.new_weight(kind, fleet);
                have += 1;
            }
            for i in 0..fleet.len() {
                if have >= want {
                    break;
                }
                if fleet[i].kind == kind && fleet[i].state == State::Stopped {
                    fleet[i].state = State::Starting(now + service.start_delay_s);
                    fleet[i].weight = controller.new_weight(kind, fleet);
                    have += 1;
                }
            }
        } else if want < have {
            // Cancel starting instances first (newest pool slot first).
            for i in (0..fleet.len()).rev() {
                if have > want && fleet[i].kind == kind && matches!(fleet[i].state, State::Starting(_)) {
                    fleet[i].state = State::Stopped;
                    have -= 1;
                }
            }
            let mut running: Vec<usize> =
                (0..fleet.len()).filter(|&i| fleet[i].kind == kind && fleet[i].state == State::Running).collect();
            // Burstables: the lowest balances drain; on-demand: the oldest
            // pool slots stop.
            if kind == Kind::Burstable {
                running.sort_by(|&a, &b| fleet[a].credits.total_cmp(&fleet[b].credits).then(a.cmp(&b)));
            }
            for i in running.into_iter().take(have - want) {
                if kind == Kind::Burstable {
                    fleet[i].state = State::Draining;
                } else {
                    stop(&mut fleet[i], carry);
                }
            }
        }
    }
}

fn stop(instance: &mut Instance, carry: &mut f64) {
    instance.state = State::Stopped;
    *carry += instance.backlog;
    instance.backlog = 0.0;
}

/// The metric names [`run`] reports.
pub const METRICS: &[&str] = &[
    "cost_usd",
    "on_demand_hours",
    "burstable_hours",
    "slo_met_pct",
    "latency_ms_mean",
    "latency_ms_p99_window",
    "credits_min",
    "credits_overdraft",
    "credits_mean",
    "scale_actions",
    "served_pct",
    "unserved_requests_end",
    "arrived_mrequests",
];

/// Runs `controller` on `demand` over `service`.
pub fn run(
    demand: &Demand,
    service: &Service,
    controller: &mut dyn Controller,
    progress: &mut dyn FnMut(f64),
) -> RunOutput {
    let burstable_type = controller.burstable_type().unwrap_or(service.burstable);
    let baseline = burstable_type.baseline.unwrap_or(1.0);
    let (earn, cap) = (burstable_type.credits_per_s(), burstable_type.max_credits());
    let spend_per_cpu = burstable_type.vcpus / 60.0;
    let mut fleet: Vec<Instance> = (0..service.max_on_demand)
        .map(|_| Kind::OnDemand)
        .chain((0..service.max_burstable).map(|_| Kind::Burstable))
        .map(|kind| Instance {
            kind,
            state: State::Stopped,
            credits: if kind == Kind::Burstable { service.initial_credits.min(cap) } else { 0.0 },
            weight: 1.0,
            backlog: 0.0,
        })
        .collect();
    let duration = demand.duration_s();
    let estimator = controller.estimator_period_s().max(1);
    let optimizer = controller.optimizer_period_s().map(|p| p.max(1));
    // The first plan starts its instances ready (the run begins warm).
    let first = View { now_s: 0, arrival_rate: demand.rate_at(0), latency_s: None, service };
    let plan = controller.plan(&first, &fleet);
    let mut carry = 0.0;
    apply(plan, &mut fleet, 0, service, controller, &mut carry);
    for i in &mut fleet {
        if matches!(i.state, State::Starting(_)) {
            i.state = State::Running;
        }
    }
    let (mut capacity, mut weight, mut rate, mut index) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut order, mut spare) = (Vec::new(), Vec::new());
    let (mut window_latency, mut window_requests, mut window_s) = (0.0, 0.0, 0u64);
    let mut last_latency: Option<f64> = None;
    let mut period_arrivals = 0.0;
    let mut window_means: Vec<f64> = Vec::new();
    let (mut windows, mut windows_met) = (0u64, 0u64);
    let (mut cost, mut on_demand_s, mut burstable_s) = (0.0, 0.0, 0.0);
    let (mut latency_sum, mut latency_requests) = (0.0, 0.0);
    let (mut credits_min, mut credits_sum, mut credits_samples) = (f64::INFINITY, 0.0, 0u64);
    let (mut arrived, mut served_total, mut actions) = (0.0, 0.0, 0u64);
    let mut overdraft = 0.0;
    let mut series: [Vec<(f64, f64)>; 6] = Default::default();
    let (mut bucket_arrivals, mut bucket_latency, mut bucket_requests) = (0.0, 0.0, 0.0);
    let mut last_progress = 0u64;
    for t in 0..duration {
        let counted = t >= service.warmup_s;
        // Starts and drained stops, then the capacities of the serving
        // instances this second (one pass).
        capacity.clear();
        weight.clear();
        index.clear();
        for (k, i) in fleet.iter_mut().enumerate() {
            if let State::Starting(at) = i.state
                && at <= t
            {
                i.state = State::Running;
            }
            if i.state == State::Draining && i.credits < 0.1 {
                stop(i, &mut carry);
            }
            if !i.serving() {
                continue;
            }
            let full = match i.kind {
                Kind::OnDemand => service.on_demand_rate,
                Kind::Burstable => service.burstable_rate * (baseline + i.credits / spend_per_cpu).min(1.0),
            };
            capacity.push(full);
            weight.push(i.weight.max(1.0));
            index.push(k);
        }
        let offered = demand.rate_at(t);
        arrived += offered;
        period_arrivals += offered;
        bucket_arrivals += offered;
        let arrivals = offered + std::mem::take(&mut carry);
        spare.clear();
        spare.extend(index.iter().zip(&capacity).map(|(&k, &c)| (c - fleet[k].backlog).max(0.0)));
        rate.resize(capacity.len(), 0.0);
        if capacity.is_empty() {
            // Nothing serves: the requests wait for the next second.
            carry += arrivals;
        } else {
            least_connections(&spare, &weight, arrivals, &mut order, &mut rate);
        }
        for (j, &k) in index.iter().enumerate() {
            let i = &mut fleet[k];
            let c = capacity[j];
            let served = (i.backlog + rate[j]).min(c);
            i.backlog += rate[j] - served;
            served_total += served;
            if rate[j] > 0.0 {
                let latency = i.backlog / c + 1.0 / (spare[j] - rate[j]).max(0.02 * c);
                window_latency += rate[j] * latency;
                window_requests += rate[j];
                bucket_latency += rate[j] * latency;
                bucket_requests += rate[j];
                if counted {
                    latency_sum += rate[j] * latency;
                    latency_requests += rate[j];
                }
            }
            if i.kind == Kind::Burstable {
                let cpu = served / service.burstable_rate;
                let next = i.credits + earn - spend_per_cpu * cpu;
                // The CPU limit above keeps this ≥ 0 up to rounding; any
                // real overdraft is reported, not hidden by the clamp.
                if next < -1e-9 {
                    overdraft -= next;
                }
                i.credits = next.clamp(0.0, cap);
            }
        }
        // Stopped burstables keep their balance; billing and credits.
        if counted {
            let mut balance = 0.0;
            for i in fleet.iter().filter(|i| i.billed()) {
                match i.kind {
                    Kind::OnDemand => {
                        on_demand_s += 1.0;
                        cost += service.on_demand.usd_per_hour / 3600.0;
                    }
                    Kind::Burstable => {
                        burstable_s += 1.0;
                        cost += burstable_type.usd_per_hour / 3600.0;
                        credits_min = credits_min.min(i.credits);
                        balance += i.credits;
                    }
                }
            }
            credits_sum += balance;
            credits_samples += 1;
        }
        window_s += 1;
        if window_s == 5 {
            last_latency = (window_requests > 0.0).then(|| window_latency / window_requests);
            if let (true, Some(l)) = (counted, last_latency) {
                windows += 1;
                windows_met += u64::from(l <= service.slo_s);
                window_means.push(l);
            }
            (window_latency, window_requests, window_s) = (0.0, 0.0, 0);
        }
        let now = t + 1;
        if optimizer.is_some_and(|p| now % p == 0) {
            let view =
                View { now_s: now, arrival_rate: period_arrivals / estimator as f64, latency_s: last_latency, service };
            controller.optimize(&view, &mut fleet);
        }
        if now % estimator == 0 {
            let view =
                View { now_s: now, arrival_rate: period_arrivals / estimator as f64, latency_s: last_latency, service };
            let before: Vec<State> = fleet.iter().map(|i| i.state).collect();
            let plan = controller.plan(&view, &fleet);
            apply(plan, &mut fleet, now, service, controller, &mut carry);
            if counted && fleet.iter().zip(&before).any(|(i, s)| i.state != *s) {
                actions += 1;
            }
            period_arrivals = 0.0;
        }
        if now % 600 == 0 {
            let hour = now as f64 / 3600.0;
            let serving_capacity: f64 = capacity.iter().sum();
            let count = |kind: Kind| fleet.iter().filter(|i| i.kind == kind && i.billed()).count() as f64;
            let credits: f64 =
                fleet.iter().filter(|i| i.kind == Kind::Burstable && i.billed()).map(|i| i.credits).sum();
            let latency_ms = if bucket_requests > 0.0 { 1000.0 * bucket_latency / bucket_requests } else { 0.0 };
            for (s, y) in series.iter_mut().zip([
                bucket_arrivals / 600.0,
                serving_capacity,
                count(Kind::OnDemand),
                count(Kind::Burstable),
                credits,
                latency_ms,
            ]) {
                s.push((hour, y));
            }
            (bucket_arrivals, bucket_latency, bucket_requests) = (0.0, 0.0, 0.0);
        }
        if t - last_progress >= 86_400 {
            last_progress = t;
            progress(t as f64 / duration.max(1) as f64);
        }
    }
    progress(1.0);
    window_means.sort_by(f64::total_cmp);
    let p99 = if window_means.is_empty() {
        f64::NAN
    } else {
        let i = ((0.99 * window_means.len() as f64).ceil() as usize).clamp(1, window_means.len()) - 1;
        window_means[i]
    };
    let queued: f64 = fleet.iter().map(|i| i.backlog).sum::<f64>() + carry;
    let mut out = RunOutput::default();
    let mut metric = |name: &str, value: f64, better: Better| out.metrics.push(Metric::new(name, value, better));
    metric("cost_usd", cost, Better::Lower);
    metric("on_demand_hours", on_demand_s / 3600.0, Better::Lower);
    metric("burstable_hours", burstable_s / 3600.0, Better::Neither);
    metric(
        "slo_met_pct",
        if windows > 0 { 100.0 * windows_met as f64 / windows as f64 } else { f64::NAN },
        Better::Higher,
    );
    metric(
        "latency_ms_mean",
        if latency_requests > 0.0 { 1000.0 * latency_sum / latency_requests } else { f64::NAN },
        Better::Lower,
    );
    metric("latency_ms_p99_window", 1000.0 * p99, Better::Lower);
    metric("credits_min", if credits_min.is_finite() { credits_min } else { f64::NAN }, Better::Neither);
    metric("credits_overdraft", overdraft, Better::Lower);
    metric(
        "credits_mean",
        if credits_samples > 0 { credits_sum / credits_samples as f64 } else { 0.0 },
        Better::Neither,
    );
    metric("scale_actions", actions as f64, Better::Neither);
    metric("served_pct", if arrived > 0.0 { 100.0 * served_total / arrived } else { f64::NAN }, Better::Higher);
    metric("unserved_requests_end", queued, Better::Lower);
    metric("arrived_mrequests", arrived / 1e6, Better::Neither);
    let [demand_s, capacity_s, on_demand_series, burstable_series, credits_series, latency_series] = series;
    for (name, y_label, points) in [
        ("demand", "arrivals (requests/s, 10-min mean)", demand_s),
        ("capacity", "capacity (requests/s at current credits)", capacity_s),
        ("on_demand", "on-demand instances", on_demand_series),
        ("burstable", "burstable instances", burstable_series),
        ("credits", "CPU credits (all burstables)", credits_series),
        ("latency", "mean latency (ms, 10 min)", latency_series),
    ] {
        out.series.push(Series { name: name.into(), x_label: "time (h)".into(), y_label: y_label.into(), points });
    }
    out
}

/// Every `period` seconds, the instances for the rate × headroom, the
/// highest recommendation of the last `stabilization_s` kept (scale-in
/// stabilization).
struct Recommendations {
    recent: VecDeque<u32>,
    keep: usize,
}

impl Recommendations {
    fn new(period_s: u64, stabilization_s: u64) -> Self {
        Recommendations {
            recent: VecDeque::new(),
            keep: usize::try_from(stabilization_s / period_s.max(1)).unwrap_or(1).max(1),
        }
    }

    fn push(&mut self, n: u32) -> u32 {
        self.recent.push_back(n);
        while self.recent.len() > self.keep {
            self.recent.pop_front();
        }
        self.recent.iter().copied().max().unwrap_or(n)
    }
}

/// AutoBurst's headroom on the measured arrival rate: a potential increase
/// of 10% at a desired load of 80%.
pub const HEADROOM: f64 = 1.1 / 0.8;

fn instances_for(rate: f64, per_instance: f64, max: u32) -> u32 {
    if per_instance <= 0.0 || rate.is_nan() || rate <= 0.0 {
        return 1;
    }
    let n = (rate / per_instance - 1e-9).ceil();
    if n >= f64::from(max) { max } else { (n as u32).max(1) }
}

/// On-demand-only autoscaling.
pub struct OnDemandOnly {
    recommendations: Recommendations,
}

impl OnDemandOnly {
    /// With a 300-s scale-in stabilization.
    pub fn new() -> Self {
        OnDemandOnly { recommendations: Recommendations::new(30, 300) }
    }
}

impl Default for OnDemandOnly {
    fn default() -> Self {
        Self::new()
    }
}

impl Controller for OnDemandOnly {
    fn plan(&mut self, view: &View<'_>, _fleet: &[Instance]) -> Plan {
        let s = view.service;
        let n = instances_for(view.arrival_rate * HEADROOM, s.on_demand_rate, s.max_on_demand);
        Plan { on_demand: self.recommendations.push(n), burstable: 0 }
    }
}

/// Burstables alone, sized like on-demand instances, equal weights.
pub struct BurstableOnly {
    recommendations: Recommendations,
    burstable: Option<&'static InstanceType>,
}

impl BurstableOnly {
    /// Runs `burstable` (or the service's type).
    pub fn new(burstable: Option<&'static InstanceType>) -> Self {
        BurstableOnly { recommendations: Recommendations::new(30, 300), burstable }
    }
}

impl Controller for BurstableOnly {
    fn burstable_type(&self) -> Option<&'static InstanceType> {
        self.burstable
    }

    fn plan(&mut self, view: &View<'_>, _fleet: &[Instance]) -> Plan {
        let s = view.service;
        let n = instances_for(view.arrival_rate * HEADROOM, s.burstable_rate, s.max_burstable);
        Plan { on_demand: 0, burstable: self.recommendations.push(n) }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn blank_instance() -> Instance {
        Instance { kind: Kind::OnDemand, state: State::Stopped, credits: 0.0, weight: 1.0, backlog: 0.0 }
    }

    pub(crate) fn service() -> Service {
        let table = ThroughputTable::artifact();
        let (on_demand_rate, burstable_rate) = table.fitted_rates();
        Service {
            on_demand: instance_type("m5.large", false).expect("known"),
            burstable: instance_type("t3.large", true).expect("known"),
            on_demand_rate,
            burstable_rate,
            max_on_demand: 30,
            max_burstable: 15,
            start_delay_s: 120,
            slo_s: 0.2,
            initial_credits: 0.0,
            warmup_s: 0,
            table: Arc::new(table),
        }
    }

    #[test]
    fn credit_rules_of_the_t_family() {
        let t3large = instance_type("t3.large", true).expect("known");
        // 2 vCPUs × 30% × 60 = 36 credits an hour, capped at 864.
        assert!((t3large.credits_per_s() * 3600.0 - 36.0).abs() < 1e-9);
        assert!((t3large.max_credits() - 864.0).abs() < 1e-9);
        let t3small = instance_type("t3.small", true).expect("known");
        assert!((t3small.credits_per_s() * 3600.0 - 24.0).abs() < 1e-9);
        assert!(instance_type("t3.large", false).expect_err("not on-demand").contains("available: m5.large"));
    }

    #[test]
    fn the_table_is_filled_by_linear_interpolation() {
        let t = ThroughputTable::artifact();
        // Measured cells are kept.
        assert_eq!(t.throughput(0, 5), Some(140.0));
        assert_eq!(t.throughput(15, 5), Some(657.0));
        // Between rows 0 and 5 at column 5: 140 + 2/5 × (314 − 140).
        assert!((t.throughput(2, 5).expect("inside") - (140.0 + 0.4 * 174.0)).abs() < 1e-9);
        // Between columns 5 and 7 on row 0: the midpoint.
        assert!((t.throughput(0, 6).expect("inside") - 166.0).abs() < 1e-9);
        // The unmeasured corner stays empty, as griddata leaves it NaN.
        assert_eq!(t.throughput(15, 7), None);
        assert_eq!(t.throughput(9, 15), None);
        // On the staircase's diagonal: (8, 12) on the plane of (7,11),
        // (9,11), (7,13): 558 + ½(622 − 558) + ½(609 − 558).
        assert!((t.throughput(8, 12).expect("on the hull") - (558.0 + 32.0 + 25.5)).abs() < 1e-9);
        assert_eq!(t.throughput(16, 5), None);
        assert_eq!(t.throughput(0, 4), None);
    }

    #[test]
    fn burstables_for_a_target_as_the_artifact_finds_them() {
        let t = ThroughputTable::artifact();
        // Row 0: 140, 166, 192, … the first ≥ 150 is column 6.
        assert_eq!(t.burstables_for(0, 150.0), Some(6));
        assert_eq!(t.burstables_for(0, 10.0), Some(5));
        // Row 15 has only column 5 measured; beyond it the largest column.
        assert_eq!(t.burstables_for(15, 700.0), Some(15));
        assert_eq!(t.burstables_for(16, 100.0), None);
        let (a, b) = t.fitted_rates();
        assert!(a > 30.0 && a < 40.0 && b > 20.0 && b < 35.0, "{a} {b}");
    }

    #[test]
    fn least_connections_by_hand() {
        let mut order = Vec::new();
        let mut out = vec![0.0; 2];
        // Equal weights and capacities: an even split.
        least_connections(&[10.0, 10.0], &[1.0, 1.0], 10.0, &mut order, &mut out);
        assert!((out[0] - 5.0).abs() < 1e-9 && (out[1] - 5.0).abs() < 1e-9, "{out:?}");
        // Weights 1000 and 100, capacity 10 each, 5 arrivals: only the
        // heavy server is active while L·100 ≤ 1; L = (10/1000)/(10 − 5)
        // = 0.002 → the light one gets nothing (0.2 ≤ 1).
        least_connections(&[10.0, 10.0], &[1000.0, 100.0], 5.0, &mut order, &mut out);
        assert!((out[0] - 5.0).abs() < 1e-9 && out[1] == 0.0, "{out:?}");
        // 19 arrivals: both active; the sum holds and the heavy one is
        // busier.
        least_connections(&[10.0, 10.0], &[1000.0, 100.0], 19.0, &mut order, &mut out);
        assert!((out[0] + out[1] - 19.0).abs() < 1e-9 && out[0] > out[1] && out[0] < 10.0, "{out:?}");
        // Overload: each at capacity, the excess by weight.
        least_connections(&[10.0, 10.0], &[3.0, 1.0], 24.0, &mut order, &mut out);
        assert!((out[0] - 13.0).abs() < 1e-9 && (out[1] - 11.0).abs() < 1e-9, "{out:?}");
    }

    #[test]
    fn on_demand_only_serves_a_steady_load_within_the_slo() {
        let s = service();
        let demand = Demand { step_s: 3600, rates: vec![200.0; 6] };
        let out = run(&demand, &s, &mut OnDemandOnly::new(), &mut |_| {});
        let m = |n: &str| out.metric(n).expect(n);
        // ⌈200 × 1.375 / rate⌉ instances, the whole run.
        let n = (200.0 * HEADROOM / s.on_demand_rate).ceil();
        assert!((m("on_demand_hours") - 6.0 * n).abs() < 1e-6, "{} vs {}", m("on_demand_hours"), 6.0 * n);
        assert!((m("cost_usd") - 6.0 * n * 0.096).abs() < 1e-6);
        assert_eq!(m("slo_met_pct"), 100.0);
        // M/M/1-PS at ρ = 200 / (n·rate): 1/(rate − 200/n).
        let expected = 1000.0 / (s.on_demand_rate - 200.0 / n);
        assert!((m("latency_ms_mean") - expected).abs() < 1e-6, "{} vs {expected}", m("latency_ms_mean"));
        assert!(m("credits_min").is_nan());
    }

    #[test]
    fn burstables_alone_run_out_of_credits_and_slow_down() {
        let s = service();
        // 10 h at 200 requests/s from empty balances: t3.large at 30%
        // baseline cannot sustain the ≈ 73% utilization it was sized for.
        let demand = Demand { step_s: 3600, rates: vec![200.0; 10] };
        let out = run(&demand, &s, &mut BurstableOnly::new(None), &mut |_| {});
        let m = |n: &str| out.metric(n).expect(n);
        assert!(m("slo_met_pct") < 50.0, "{}", m("slo_met_pct"));
        assert!(m("credits_min") >= 0.0);
        assert_eq!(m("credits_overdraft"), 0.0);
        let arrived = m("arrived_mrequests") * 1e6;
        let served = m("served_pct") / 100.0 * arrived;
        assert!((served + m("unserved_requests_end") - arrived).abs() < 1e-6 * arrived);
    }
}
