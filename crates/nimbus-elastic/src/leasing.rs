//! Reserved capacity, its owners' usage, and lessees of what is idle: the
//! model Meta's dynamic idle-resource leasing ([`crate::meta_leasing`])
//! runs on.
//!
//! - **Owners** are services with a reservation: R = the peak of their
//!   usage over the first `history_weeks` × (1 + `reservation_headroom`)
//!   (growth and peak buffer), in cores. A disaster-recovery buffer of
//!   `dr_buffer` × R is never leased (capacity a region needs when another
//!   fails). Usage is a series per owner (hourly by default): a file's
//!   numeric columns, or the synthetic generator below.
//! - **Leasing** happens in epochs of `lease_h` hours: at the start of
//!   each, a leaser says how many cores of each owner's reservation it
//!   lends for the epoch. Lessees (offline work that wants `lessee_demand`
//!   × the total reservation, with ±10% hourly noise) use leased cores
//!   first and dedicated machines for the rest.
//! - **Revocation**: in any hour where an owner's usage exceeds what the
//!   lease left it (R − leased), the owner was short for that hour (the
//!   lease was wrong) and the lease shrinks to what the owner leaves free
//!   for the rest of the epoch: one revocation.
//! - **Footprint**: the physical core-hours: every owner's reservation
//!   plus the dedicated core-hours the lessees needed. Static reservations
//!   (`static`) lease nothing: the baseline.
//!
//! Metrics cover the hours after `history_weeks` (held out from the
//! reservation sizing); owner-shortage is the share of owner-hours in
//! which leasing left an owner short; lessee availability the share of
//! granted lease core-hours not revoked.
//!
//! Synthetic owners (per seed): a base level log-normal around 200 cores,
//! a daily cycle of amplitude 20–60% peaking at a random hour, weekends at
//! 70–100%, growth of 0–2% a week, AR(1) noise (σ 5%), and spikes of 1.3–
//! 1.6× for 1–3 hours at 0.2% of hours. Modelled: the magnitudes are
//! illustrative, not fitted to a published trace.

use nimbus_sim::output::{Better, Metric, RunOutput, Series};
use nimbus_sim::rng::RngStreams;

/// Owners' usage, cores per step.
#[derive(Debug, Clone, PartialEq)]
pub struct Owners {
    /// Seconds per step.
    pub step_s: u64,
    /// Owner names.
    pub names: Vec<String>,
    /// `usage[k][t]`: cores owner k uses in step t.
    pub usage: Vec<Vec<f64>>,
}

impl Owners {
    /// Steps in the series.
    pub fn steps(&self) -> usize {
        self.usage.first().map_or(0, Vec::len)
    }
}

/// Synthetic owners (see the module docs).
pub fn synthetic_owners(count: usize, weeks: f64, seed: u64) -> Owners {
    let hours = nimbus_sim::params::round_to_u64((weeks * 168.0).ceil())
        .and_then(|h| usize::try_from(h).ok())
        .unwrap_or(1)
        .max(1);
    let streams = RngStreams::new(seed);
    let mut usage = Vec::with_capacity(count);
    for k in 0..count {
        let mut rng = streams.stream(&format!("elastic/owner/{k}"));
        let base = 200.0 * rng.lognormal(0.0, 0.5);
        let amplitude = rng.uniform_range(0.2, 0.6);
        let peak_hour = rng.uniform_range(0.0, 24.0);
        let weekend = rng.uniform_range(0.7, 1.0);
        let growth = rng.uniform_range(0.0, 0.02);
        let (mut noise, mut spike_left, mut spike) = (0.0f64, 0usize, 1.0);
        let series = (0..hours)
            .map(|h| {
                let hour = (h % 24) as f64;
                let cycle = 1.0 + amplitude * ((hour - peak_hour) / 24.0 * std::f64::consts::TAU).cos();
                let day = if (h / 24) % 7 >= 5 { weekend } else { 1.0 };
                let trend = 1.0 + growth * h as f64 / 168.0;
                noise = 0.7 * noise + rng.normal(0.0, 0.05 * (1.0f64 - 0.49).sqrt());
                if spike_left == 0 && rng.bernoulli(0.002) {
                    spike_left = 1 + rng.index(3);
                    spike = rng.uniform_range(1.3, 1.6);
                }
                let s = if spike_left > 0 {
                    spike_left -= 1;
                    spike
                } else {
                    1.0
                };
                (base * cycle * day * trend * (1.0 + noise) * s).max(0.0)
            })
            .collect();
        usage.push(series);
    }
    Owners { step_s: 3600, names: (0..count).map(|k| format!("owner-{k}")).collect(), usage }
}

/// The reserved cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Reservation growth/peak buffer over the history peak.
    pub reservation_headroom: f64,
    /// Share of each reservation kept for disaster recovery.
    pub dr_buffer: f64,
    /// Steps used to size reservations; metrics start after them.
    pub history_steps: usize,
    /// Steps per lease epoch.
    pub lease_steps: usize,
    /// Lessee demand as a share of the total reservation.
    pub lessee_demand: f64,
}

/// What a leaser sees at an epoch for one owner.
#[derive(Debug)]
pub struct Epoch<'a> {
    /// Owner index.
    pub owner: usize,
    /// Usage up to now (exclusive).
    pub history: &'a [f64],
    /// The reservation, cores.
    pub reservation: f64,
    /// Cores never leased (disaster recovery).
    pub dr_cores: f64,
    /// Steps the lease lasts.
    pub steps: usize,
    /// Seconds per step.
    pub step_s: u64,
}

/// Decides how much of each reservation to lend.
pub trait Leaser {
    /// Cores of `epoch.owner`'s reservation to lend for the epoch.
    fn lend(&mut self, epoch: &Epoch<'_>) -> f64;
    /// Facts for the results.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Static reservations: nothing is leased.
pub struct StaticReservation;

impl Leaser for StaticReservation {
    fn lend(&mut self, _epoch: &Epoch<'_>) -> f64 {
        0.0
    }
}

/// The metric names [`run`] reports.
pub const METRICS: &[&str] = &[
    "footprint_core_h",
    "footprint_saving_pct",
    "leased_core_h",
    "lessee_served_core_h",
    "owner_shortage_pct",
    "revocations",
    "revoked_core_h",
    "lessee_availability_pct",
    "reservation_exceeded_pct",
    "owner_utilization_pct",
];

/// Runs `leaser` over `owners` in `pool`; `seed` draws the lessees' noise.
pub fn run(owners: &Owners, pool: &Pool, leaser: &mut dyn Leaser, seed: u64) -> RunOutput {
    let steps = owners.steps();
    let history = pool.history_steps.min(steps);
    let reservations: Vec<f64> = owners
        .usage
        .iter()
        .map(|u| u[..history].iter().copied().fold(0.0, f64::max) * (1.0 + pool.reservation_headroom))
        .collect();
    let reserved: f64 = reservations.iter().sum();
    let hours_per_step = owners.step_s as f64 / 3600.0;
    let mut rng = RngStreams::new(seed).stream("elastic/lessees");
    let mut leased = vec![0.0; owners.usage.len()];
    let (mut footprint, mut static_footprint, mut granted, mut served) = (0.0, 0.0, 0.0, 0.0);
    let (mut short, mut owner_steps, mut revocations, mut revoked, mut exceeded) = (0u64, 0u64, 0u64, 0.0, 0u64);
    let mut used_total = 0.0;
    let mut series: [Vec<(f64, f64)>; 3] = Default::default();
    let lease_steps = pool.lease_steps.max(1);
    for t in history..steps {
        if (t - history).is_multiple_of(lease_steps) {
            for (k, u) in owners.usage.iter().enumerate() {
                let epoch = Epoch {
                    owner: k,
                    history: &u[..t],
                    reservation: reservations[k],
                    dr_cores: pool.dr_buffer * reservations[k],
                    steps: lease_steps.min(steps - t),
                    step_s: owners.step_s,
                };
                let most = (reservations[k] - epoch.dr_cores).max(0.0);
                leased[k] = leaser.lend(&epoch).clamp(0.0, most);
                granted += leased[k] * epoch.steps as f64 * hours_per_step;
            }
        }
        let mut lendable_now = 0.0;
        let mut used_now = 0.0;
        for (k, u) in owners.usage.iter().enumerate() {
            let usage = u[t];
            owner_steps += 1;
            used_now += usage;
            exceeded += u64::from(usage > reservations[k]);
            let left = reservations[k] - leased[k];
            if leased[k] > 0.0 && usage > left {
                short += 1;
                revocations += 1;
                let keep = (reservations[k] - usage).max(0.0);
                // This hour and the rest of the epoch (which the end of
                // the series may cut short, as it cut the grant).
                let rest = (lease_steps - (t - history) % lease_steps).min(steps - t);
                revoked += (leased[k] - keep) * rest as f64 * hours_per_step;
                leased[k] = keep;
            }
            lendable_now += leased[k];
        }
        used_total += used_now;
        let demand = pool.lessee_demand * reserved * (1.0 + rng.uniform_range(-0.1, 0.1));
        let on_leases = demand.min(lendable_now);
        served += on_leases * hours_per_step;
        footprint += (reserved + demand - on_leases) * hours_per_step;
        static_footprint += (reserved + demand) * hours_per_step;
        if (t - history).is_multiple_of(6) {
            let hour = t as f64 * hours_per_step;
            series[0].push((hour, used_now));
            series[1].push((hour, reserved - lendable_now));
            series[2].push((hour, on_leases));
        }
    }
    let measured_hours = (steps - history) as f64 * hours_per_step;
    let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { f64::NAN };
    let mut out = RunOutput::default();
    let mut metric = |name: &str, value: f64, better: Better| out.metrics.push(Metric::new(name, value, better));
    metric("footprint_core_h", footprint, Better::Lower);
    metric("footprint_saving_pct", pct(static_footprint - footprint, static_footprint), Better::Higher);
    metric("leased_core_h", granted, Better::Higher);
    metric("lessee_served_core_h", served, Better::Higher);
    metric("owner_shortage_pct", pct(short as f64, owner_steps as f64), Better::Lower);
    metric("revocations", revocations as f64, Better::Lower);
    metric("revoked_core_h", revoked, Better::Lower);
    metric(
        "lessee_availability_pct",
        if granted > 0.0 { pct(granted - revoked, granted) } else { f64::NAN },
        Better::Higher,
    );
    metric("reservation_exceeded_pct", pct(exceeded as f64, owner_steps as f64), Better::Lower);
    metric("owner_utilization_pct", pct(used_total * hours_per_step, reserved * measured_hours), Better::Neither);
    let [usage_s, kept_s, leased_s] = series;
    for (name, y_label, points) in [
        ("owner_usage", "owners' usage (cores)", usage_s),
        ("owner_capacity", "reserved cores left to owners", kept_s),
        ("lessee_on_leases", "lessee cores on leases", leased_s),
    ] {
        out.series.push(Series { name: name.into(), x_label: "time (h)".into(), y_label: y_label.into(), points });
    }
    out.notes.extend(leaser.notes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        Pool { reservation_headroom: 0.0, dr_buffer: 0.0, history_steps: 2, lease_steps: 2, lessee_demand: 0.5 }
    }

    struct Fixed(f64);
    impl Leaser for Fixed {
        fn lend(&mut self, _: &Epoch<'_>) -> f64 {
            self.0
        }
    }

    #[test]
    fn static_reservations_lease_nothing() {
        let owners =
            Owners { step_s: 3600, names: vec!["a".into()], usage: vec![vec![10.0, 8.0, 6.0, 7.0, 9.0, 12.0]] };
        let out = run(&owners, &pool(), &mut StaticReservation, 1);
        let m = |n: &str| out.metric(n).expect(n);
        assert_eq!(m("leased_core_h"), 0.0);
        assert_eq!(m("footprint_saving_pct"), 0.0);
        assert_eq!(m("owner_shortage_pct"), 0.0);
        // R = 10 (history peak); hour 5 uses 12: over the reservation.
        assert_eq!(m("reservation_exceeded_pct"), 25.0);
    }

    #[test]
    fn revocation_by_hand() {
        // R = 10; lend 3 for epochs of 2 hours: usage 6, 7 | 9, 5.
        let owners = Owners { step_s: 3600, names: vec!["a".into()], usage: vec![vec![10.0, 8.0, 6.0, 7.0, 9.0, 5.0]] };
        let out = run(&owners, &pool(), &mut Fixed(3.0), 1);
        let m = |n: &str| out.metric(n).expect(n);
        // Hour 4 uses 9 > 10 − 3: short, revoked to 1 for hours 4 and 5.
        assert_eq!(m("revocations"), 1.0);
        assert_eq!(m("owner_shortage_pct"), 25.0);
        assert!((m("revoked_core_h") - 4.0).abs() < 1e-9);
        // Granted 3 cores × 2 hours × 2 epochs; 4 of the 12 revoked.
        assert!((m("leased_core_h") - 12.0).abs() < 1e-9, "{}", m("leased_core_h"));
        assert!((m("lessee_availability_pct") - 100.0 * 8.0 / 12.0).abs() < 1e-9);
        assert!(m("footprint_saving_pct") > 0.0);
    }

    #[test]
    fn a_revocation_in_a_cut_epoch_counts_only_the_hours_left() {
        // R = 10; epochs of 4 hours from hour 2, but the series ends at
        // hour 5: the epoch is granted for 3 hours (3 × 3 = 9 core-h).
        // Hour 3 uses 9 > 10 − 3: revoked to 1 for hours 3 and 4 only.
        let owners = Owners { step_s: 3600, names: vec!["a".into()], usage: vec![vec![10.0, 8.0, 6.0, 9.0, 5.0]] };
        let pool = Pool { lease_steps: 4, ..pool() };
        let out = run(&owners, &pool, &mut Fixed(3.0), 1);
        let m = |n: &str| out.metric(n).expect(n);
        assert!((m("leased_core_h") - 9.0).abs() < 1e-9, "{}", m("leased_core_h"));
        assert!((m("revoked_core_h") - 4.0).abs() < 1e-9, "{}", m("revoked_core_h"));
        assert!((m("lessee_availability_pct") - 100.0 * 5.0 / 9.0).abs() < 1e-9);
    }

    #[test]
    fn synthetic_owners_are_seeded_and_cyclic() {
        let a = synthetic_owners(3, 2.0, 7);
        assert_eq!(a, synthetic_owners(3, 2.0, 7));
        assert_ne!(a, synthetic_owners(3, 2.0, 8));
        assert_eq!(a.steps(), 336);
        assert!(a.usage.iter().flatten().all(|&u| u >= 0.0));
    }
}
