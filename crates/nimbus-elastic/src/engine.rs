//! The fluid model: one-second ticks of arrivals, capacity and lag.
//!
//! - Capacity of n ready workers: thr(n) = a·n / (1 + b·n) samples/s, a
//!   concave curve (parameter-server contention; Kale's worker estimator
//!   fits this form), times a balance factor: samples arrive on
//!   `partitions` whose shares follow a Zipf law; without shuffling each
//!   worker reads whole partitions (assigned largest first to the least
//!   loaded worker), so the busiest worker limits the job to
//!   thr(n)·(1/n)/max-load; with shuffling (Kale) the load is even.
//! - Scaling: new workers become ready `scale_up_delay_s` after they are
//!   requested (and are billed from the request); removing workers is
//!   immediate. Any change of the ready set restarts the job: nothing is
//!   served for `restart_downtime_s`.
//! - Lag: lag(t+1) = max(0, lag + arrivals − served). Freshness = lag /
//!   current arrival rate (seconds of data behind); a minute whose
//!   freshness exceeds the SLO is a violation minute.
//! - The autoscaler is asked every `period_s()` seconds with what a
//!   controller could observe (no future demand).
//!
//! Metrics exclude the first `warmup_s` (forecasters need history), but
//! the simulation runs from zero for every policy alike; `served_pct`,
//! `arrived_msamples` and `unserved_samples_end` cover the whole run
//! (arrived = served + unserved).

use nimbus_sim::output::{Better, Metric, RunOutput, Series};

use crate::demand::Demand;

/// Workers' combined throughput as a function of their number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// a: samples/s of one worker without contention.
    pub per_worker: f64,
    /// b: contention (thr(n) → a/b as n grows).
    pub contention: f64,
}

impl Throughput {
    /// thr(n).
    pub fn rate(&self, n: u32) -> f64 {
        let n = f64::from(n);
        self.per_worker * n / (1.0 + self.contention * n)
    }

    /// The fewest workers, up to `max`, whose throughput reaches `rate`.
    pub fn workers_for(&self, rate: f64, max: u32) -> u32 {
        if rate.is_nan() || rate <= 0.0 {
            return 0;
        }
        // thr(n) ≥ r ⇔ n ≥ r / (a − b·r) when a > b·r.
        let denominator = self.per_worker - self.contention * rate;
        if denominator <= 0.0 {
            return max;
        }
        let n = (rate / denominator - 1e-9).ceil();
        if n >= f64::from(max) { max } else { (n as u32).max(1) }
    }
}

/// The infrastructure of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Throughput curve.
    pub throughput: Throughput,
    /// Fewest workers.
    pub min_workers: u32,
    /// Most workers.
    pub max_workers: u32,
    /// Seconds from request to ready.
    pub scale_up_delay_s: u64,
    /// Seconds the job stops when its ready set changes.
    pub restart_downtime_s: u64,
    /// Partition shares (sum 1), largest first.
    pub partitions: Vec<f64>,
    /// Freshness SLO, seconds.
    pub slo_lag_s: f64,
    /// Seconds excluded from the metrics at the start.
    pub warmup_s: u64,
}

impl Cluster {
    /// Zipf shares of `count` partitions with exponent `skew`.
    pub fn zipf_partitions(count: usize, skew: f64) -> Vec<f64> {
        let weights: Vec<f64> = (1..=count.max(1)).map(|i| 1.0 / (i as f64).powf(skew)).collect();
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }

    /// The busiest worker's share when `n` workers read whole partitions
    /// (each, largest first, to the least loaded worker). O(P log n) with a
    /// heap of worker loads; with at least as many workers as partitions
    /// each partition has its own worker.
    pub fn max_load(&self, n: u32) -> f64 {
        use std::cmp::Reverse;
        if n == 0 {
            return 1.0;
        }
        let largest = self.partitions.first().copied().unwrap_or(1.0);
        let workers = usize::try_from(n).unwrap_or(usize::MAX);
        if workers >= self.partitions.len() {
            return largest;
        }
        // Loads as integer-ordered keys: shares are non-negative, so their
        // bit patterns order as the values do; ties go to the lower index.
        let mut heap: std::collections::BinaryHeap<Reverse<(u64, usize)>> =
            (0..workers).map(|i| Reverse((0f64.to_bits(), i))).collect();
        let mut max: f64 = 0.0;
        for share in &self.partitions {
            let Some(Reverse((load, i))) = heap.pop() else { break };
            let load = f64::from_bits(load) + share;
            max = max.max(load);
            heap.push(Reverse((load.to_bits(), i)));
        }
        max
    }

    /// Capacity of `n` ready workers (samples/s), with or without shuffling.
    pub fn capacity(&self, n: u32, shuffled: bool) -> f64 {
        let thr = self.throughput.rate(n);
        if shuffled || n == 0 {
            return thr;
        }
        let balance = (1.0 / f64::from(n)) / self.max_load(n);
        thr * balance.min(1.0)
    }
}

/// What an autoscaler sees when it is asked.
#[derive(Debug)]
pub struct Observation<'a> {
    /// Seconds since the start.
    pub now_s: u64,
    /// Ready workers.
    pub ready: u32,
    /// Requested, not yet ready.
    pub pending: u32,
    /// Mean busy fraction of all requested workers over the last period
    /// (not-ready workers, and every worker while the job restarts, count
    /// as idle, as the Kubernetes HPA assumes for pods that are not ready).
    pub utilization: f64,
    /// Samples waiting.
    pub lag: f64,
    /// Mean arrival rate over the last period.
    pub arrival_rate: f64,
    /// Mean arrival rate of every finished minute so far.
    pub minute_rates: &'a [f64],
    /// The cluster.
    pub cluster: &'a Cluster,
}

/// An autoscaler.
pub trait Autoscaler {
    /// Seconds between decisions.
    fn period_s(&self) -> u64;
    /// The number of workers wanted (clamped by the engine to the
    /// cluster's bounds).
    fn decide(&mut self, obs: &Observation<'_>) -> u32;
    /// Whether the job rebalances samples across workers.
    fn shuffles(&self) -> bool {
        false
    }
    /// Facts for the results (forecast failures, fallbacks).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

struct Pending {
    ready_at: u64,
    count: u32,
}

/// Runs `policy` on `demand` over `cluster`, reporting progress in [0, 1].
pub fn run(
    demand: &Demand,
    cluster: &Cluster,
    policy: &mut dyn Autoscaler,
    progress: &mut dyn FnMut(f64),
) -> RunOutput {
    let duration = demand.duration_s();
    let shuffled = policy.shuffles();
    let period = policy.period_s().max(1);
    let max = cluster.max_workers.max(1);
    let mut ready = cluster.throughput.workers_for(demand.rate_at(0), max).clamp(cluster.min_workers, max);
    let mut pending: Vec<Pending> = Vec::new();
    let mut downtime_until = 0u64;
    let mut lag = 0.0f64;
    // Per-period accumulators.
    let (mut period_busy, mut period_requested, mut period_arrivals) = (0.0, 0.0, 0.0);
    // Per-minute accumulators.
    let mut minute_rates: Vec<f64> = Vec::with_capacity(usize::try_from(duration / 60 + 1).unwrap_or(0));
    let mut minute_arrivals = 0.0;
    // Totals after warm-up.
    let (mut worker_s, mut lag_integral, mut downtime_s) = (0.0, 0.0, 0u64);
    // Over the whole run (conservation: arrived = served + lag at the end).
    let (mut arrived, mut served_total) = (0.0, 0.0);
    let (mut minutes, mut violation_minutes, mut actions) = (0u64, 0u64, 0u64);
    let mut freshness: Vec<f64> = Vec::new();
    let mut series_capacity = Vec::new();
    let mut series_demand = Vec::new();
    let mut series_workers = Vec::new();
    let mut series_lag = Vec::new();
    let mut last_progress = 0u64;
    // Capacity and even-load throughput of the current ready set, cached
    // (the partition balance is a greedy assignment).
    let mut cached: Option<(u32, f64, f64)> = None;
    let mut pending_count: u32 = 0;
    for t in 0..duration {
        // Workers becoming ready restart the job.
        if pending.first().is_some_and(|p| p.ready_at <= t) {
            let before = ready;
            pending.retain(|p| {
                if p.ready_at <= t {
                    ready += p.count;
                    false
                } else {
                    true
                }
            });
            pending_count = pending.iter().map(|p| p.count).sum();
            if ready != before && cluster.restart_downtime_s > 0 {
                downtime_until = downtime_until.max(t + cluster.restart_downtime_s);
            }
        }
        let (full, potential) = match cached {
            Some((n, c, p)) if n == ready => (c, p),
            _ => {
                let c = cluster.capacity(ready, shuffled);
                let p = cluster.throughput.rate(ready);
                cached = Some((ready, c, p));
                (c, p)
            }
        };
        let down = t < downtime_until;
        let capacity = if down { 0.0 } else { full };
        let rate = demand.rate_at(t);
        let served = (lag + rate).min(capacity);
        lag = (lag + rate - served).max(0.0);
        let requested = ready + pending_count;
        // Mean busy fraction of the ready workers: the work done over what
        // they could do if the load were even (with uneven partitions the
        // bottleneck worker is saturated while the others idle).
        let busy = if potential > 0.0 && !down { served / potential } else { 0.0 };
        period_busy += busy * f64::from(ready);
        period_requested += f64::from(requested);
        period_arrivals += rate;
        minute_arrivals += rate;
        let counted = t >= cluster.warmup_s;
        arrived += rate;
        served_total += served;
        if counted {
            worker_s += f64::from(requested);
            lag_integral += lag;
            downtime_s += u64::from(down);
        }
        if (t + 1) % 60 == 0 {
            let minute_rate = minute_arrivals / 60.0;
            minute_rates.push(minute_rate);
            minute_arrivals = 0.0;
            if counted {
                let fresh = if lag <= 0.0 { 0.0 } else { lag / minute_rate.max(1e-9) };
                freshness.push(fresh);
                minutes += 1;
                violation_minutes += u64::from(fresh > cluster.slo_lag_s);
            }
            if (t + 1) % 600 == 0 {
                let hour = (t + 1) as f64 / 3600.0;
                series_capacity.push((hour, full));
                series_demand.push((hour, minute_rate));
                series_workers.push((hour, f64::from(requested)));
                series_lag.push((hour, freshness.last().copied().unwrap_or(0.0)));
            }
        }
        if (t + 1) % period == 0 {
            let obs = Observation {
                now_s: t + 1,
                ready,
                pending: requested - ready,
                utilization: if period_requested > 0.0 { period_busy / period_requested } else { 0.0 },
                lag,
                arrival_rate: period_arrivals / period as f64,
                minute_rates: &minute_rates,
                cluster,
            };
            let desired = policy.decide(&obs).clamp(cluster.min_workers, max);
            (period_busy, period_requested, period_arrivals) = (0.0, 0.0, 0.0);
            if desired > requested {
                pending.push(Pending { ready_at: t + 1 + cluster.scale_up_delay_s, count: desired - requested });
                pending_count += desired - requested;
                actions += u64::from(counted);
            } else if desired < requested {
                // Cancel pending requests first (newest first), then stop
                // ready workers.
                let mut remove = requested - desired;
                while remove > 0 {
                    let Some(last) = pending.last_mut() else { break };
                    let take = last.count.min(remove);
                    last.count -= take;
                    remove -= take;
                    if last.count == 0 {
                        pending.pop();
                    }
                }
                pending_count = pending.iter().map(|p| p.count).sum();
                if remove > 0 {
                    ready -= remove.min(ready);
                    if cluster.restart_downtime_s > 0 {
                        downtime_until = downtime_until.max(t + 1 + cluster.restart_downtime_s);
                    }
                }
                actions += u64::from(counted);
            }
        }
        if t - last_progress >= 86_400 {
            last_progress = t;
            progress(t as f64 / duration.max(1) as f64);
        }
    }
    progress(1.0);
    let measured_s = duration.saturating_sub(cluster.warmup_s).max(1) as f64;
    freshness.sort_by(f64::total_cmp);
    let quantile = |q: f64| -> f64 {
        if freshness.is_empty() {
            return f64::NAN;
        }
        let i = ((q * freshness.len() as f64).ceil() as usize).clamp(1, freshness.len()) - 1;
        freshness[i]
    };
    let mut out = RunOutput::default();
    let mut metric = |name: &str, value: f64, better: Better| out.metrics.push(Metric::new(name, value, better));
    metric("worker_hours", worker_s / 3600.0, Better::Lower);
    metric("workers_mean", worker_s / measured_s, Better::Lower);
    metric("accumulated_lag_msample_h", lag_integral / 3600.0 / 1e6, Better::Lower);
    metric("lag_samples_mean", lag_integral / measured_s, Better::Lower);
    metric("freshness_s_p99", quantile(0.99), Better::Lower);
    metric("freshness_s_max", quantile(1.0), Better::Lower);
    metric(
        "slo_violation_pct",
        if minutes > 0 { 100.0 * violation_minutes as f64 / minutes as f64 } else { f64::NAN },
        Better::Lower,
    );
    metric("slo_violation_min", violation_minutes as f64, Better::Lower);
    metric("downtime_s", downtime_s as f64, Better::Lower);
    metric("downtime_pct", 100.0 * downtime_s as f64 / measured_s, Better::Lower);
    metric("scale_actions", actions as f64, Better::Neither);
    metric("served_pct", if arrived > 0.0 { 100.0 * served_total / arrived } else { f64::NAN }, Better::Higher);
    metric("unserved_samples_end", lag, Better::Lower);
    metric("arrived_msamples", arrived / 1e6, Better::Neither);
    for (name, y_label, points) in [
        ("capacity", "capacity (samples/s)", series_capacity),
        ("demand", "arrivals (samples/s, minute mean)", series_demand),
        ("workers", "workers requested", series_workers),
        ("freshness", "lag (s of data)", series_lag),
    ] {
        out.series.push(Series { name: name.into(), x_label: "time (h)".into(), y_label: y_label.into(), points });
    }
    out.notes.extend(policy.notes());
    out
}

/// The metric names [`run`] reports.
pub const METRICS: &[&str] = &[
    "worker_hours",
    "workers_mean",
    "accumulated_lag_msample_h",
    "lag_samples_mean",
    "freshness_s_p99",
    "freshness_s_max",
    "slo_violation_pct",
    "slo_violation_min",
    "downtime_s",
    "downtime_pct",
    "scale_actions",
    "served_pct",
    "unserved_samples_end",
    "arrived_msamples",
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    struct Fixed(u32);
    impl Autoscaler for Fixed {
        fn period_s(&self) -> u64 {
            60
        }
        fn decide(&mut self, _: &Observation<'_>) -> u32 {
            self.0
        }
    }

    /// One worker of 10 samples/s, no contention, delays or imbalance.
    pub(crate) fn cluster() -> Cluster {
        Cluster {
            throughput: Throughput { per_worker: 10.0, contention: 0.0 },
            min_workers: 1,
            max_workers: 100,
            scale_up_delay_s: 0,
            restart_downtime_s: 0,
            partitions: vec![1.0],
            slo_lag_s: 60.0,
            warmup_s: 0,
        }
    }

    #[test]
    fn throughput_curve_by_hand() {
        let t = Throughput { per_worker: 10.0, contention: 0.05 };
        // thr(10) = 100 / 1.5.
        assert!((t.rate(10) - 100.0 / 1.5).abs() < 1e-12);
        // 50 samples/s: n ≥ 50 / (10 − 2.5) = 6.67 → 7.
        assert_eq!(t.workers_for(50.0, 100), 7);
        assert!(t.rate(7) >= 50.0 && t.rate(6) < 50.0);
        // Beyond the asymptote a/b = 200: the maximum.
        assert_eq!(t.workers_for(250.0, 100), 100);
        assert_eq!(t.workers_for(0.0, 100), 0);
    }

    #[test]
    fn lag_builds_and_drains_by_hand() {
        // 1 worker of 10/s; 15/s for 60 s then 5/s for 60 s.
        let demand = Demand { step_s: 60, rates: vec![15.0, 5.0] };
        let mut c = cluster();
        c.min_workers = 1;
        c.max_workers = 1;
        let out = run(&demand, &c, &mut Fixed(1), &mut |_| {});
        // Lag grows 5/s for 60 s (300), then drains 5/s: 0 after 60 s.
        assert_eq!(out.metric("unserved_samples_end"), Some(0.0));
        assert_eq!(out.metric("served_pct"), Some(100.0));
        // Accumulated lag: Σ 5t over 60 s plus Σ (300 − 5t): 2·5·(1+…+60) − 300.
        let expected = (2.0 * 5.0 * (60.0 * 61.0 / 2.0) - 300.0) / 3600.0 / 1e6;
        assert!((out.metric("accumulated_lag_msample_h").expect("metric") - expected).abs() < 1e-15);
        assert_eq!(out.metric("worker_hours"), Some(120.0 / 3600.0));
    }

    #[test]
    fn scale_up_delay_and_restart_downtime() {
        let demand = Demand { step_s: 60, rates: vec![10.0; 10] };
        let mut c = cluster();
        c.scale_up_delay_s = 30;
        c.restart_downtime_s = 20;
        // Starts with 1 worker; asked at 60 s for 2: ready at 90 s, job down
        // 90..110.
        let out = run(&demand, &c, &mut Fixed(2), &mut |_| {});
        assert_eq!(out.metric("downtime_s"), Some(20.0));
        assert_eq!(out.metric("scale_actions"), Some(1.0));
        // Billed from the request: 60 s × 1 + 540 s × 2.
        assert!((out.metric("worker_hours").expect("metric") - (60.0 + 540.0 * 2.0) / 3600.0).abs() < 1e-12);
    }

    #[test]
    fn unshuffled_partitions_limit_capacity() {
        let mut c = cluster();
        c.partitions = Cluster::zipf_partitions(4, 1.0);
        // Shares 12/25, 6/25, 4/25, 3/25: with 2 workers, 12 to the first,
        // then 6, 4 and 3 to the second (always the less loaded): 13/25.
        assert!((c.max_load(2) - 13.0 / 25.0).abs() < 1e-12);
        assert!((c.capacity(2, false) - 20.0 * 0.5 / (13.0 / 25.0)).abs() < 1e-9);
        assert_eq!(c.capacity(2, true), 20.0);
        // More workers than partitions: the largest partition is the limit.
        assert!((c.capacity(8, false) - 80.0 * (1.0 / 8.0) / (12.0 / 25.0)).abs() < 1e-9);
    }

    /// Decisions from a list, cycled.
    struct Scripted(Vec<u32>, usize);
    impl Autoscaler for Scripted {
        fn period_s(&self) -> u64 {
            37
        }
        fn decide(&mut self, _: &Observation<'_>) -> u32 {
            self.1 += 1;
            self.0[self.1 % self.0.len()]
        }
    }

    proptest::proptest! {
        /// Whatever the demand and the decisions: every sample is served or
        /// still queued, and the workers stay within the bounds.
        #[test]
        fn samples_are_conserved(
            rates in proptest::collection::vec(0.0f64..500.0, 1..40),
            decisions in proptest::collection::vec(0u32..60, 1..20),
            delay in 0u64..200,
            downtime in 0u64..120,
            skew in 0.0f64..2.0,
        ) {
            let mut c = cluster();
            c.max_workers = 50;
            c.scale_up_delay_s = delay;
            c.restart_downtime_s = downtime;
            c.partitions = Cluster::zipf_partitions(8, skew);
            let demand = Demand { step_s: 60, rates };
            let out = run(&demand, &c, &mut Scripted(decisions, 0), &mut |_| {});
            let arrived = out.metric("arrived_msamples").expect("metric") * 1e6;
            let served = out.metric("served_pct").expect("metric") / 100.0 * arrived;
            let queued = out.metric("unserved_samples_end").expect("metric");
            proptest::prop_assert!(queued >= 0.0);
            if arrived > 0.0 {
                proptest::prop_assert!((served + queued - arrived).abs() <= 1e-9 * arrived);
            }
            let workers = out.series.iter().find(|s| s.name == "workers").expect("series");
            proptest::prop_assert!(workers.points.iter().all(|(_, w)| *w >= 0.0 && *w <= 50.0));
        }
    }
}
