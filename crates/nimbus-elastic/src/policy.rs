//! The autoscalers people use today, and the registry.
//!
//! - **Kubernetes HPA** (`hpa`; kubernetes.io, "Horizontal Pod
//!   Autoscaling", autoscaling/v2 defaults): every 15 s, desired =
//!   ⌈current × utilization / target⌉ (target 0.7 by default), no change
//!   while |utilization/target − 1| ≤ 0.1; not-ready workers count as idle
//!   when scaling up; scale-up limited per 15 s to max(+4 workers, +100%);
//!   scale-down to the highest recommendation of the last 300 s
//!   (stabilization window), at most −100% per 15 s. The metric is the
//!   workers' busy fraction (CPU utilization).
//! - **Target tracking** (`target-tracking`; AWS Application Auto Scaling):
//!   the same proportional rule on 1-minute averages, scale-out after 3
//!   consecutive minutes above the target, scale-in after 15 consecutive
//!   minutes below 90% of it (the alarms AWS creates), with a 300-s
//!   scale-in cool-down.
//! - **Scheduled** (`scheduled`): for each hour of the day, the workers
//!   that served the highest rate seen in that hour over the last `days`
//!   days, times `headroom`; before a full day of history, the highest
//!   rate seen so far times `headroom`.
//! - **Static peak** (`static`): the workers for the highest rate of the
//!   whole run (an oracle of the peak; the cost bound of never scaling)
//!   times `headroom`.
//! - **Kale** (`kale`): see [`crate::kale`].

use std::collections::VecDeque;

use nimbus_sim::params::{ParamError, Params};

use crate::engine::{Autoscaler, Observation};

/// How a policy is built: parameters, the peak rate of the run (for
/// `static`), and the run's seed.
pub struct Build<'a> {
    /// Policy parameters.
    pub params: &'a Params,
    /// Highest arrival rate of the run.
    pub peak_rate: f64,
    /// Seed.
    pub seed: u64,
}

/// How a policy is constructed, by the model it runs on.
pub enum Builder {
    /// An online-training autoscaler ([`crate::engine`]).
    Training(fn(&Build<'_>) -> Result<Box<dyn Autoscaler>, ParamError>),
    /// A controller of on-demand and burstable instances ([`crate::burstable`]).
    Burstable(fn(&Params) -> Result<Box<dyn crate::burstable::Controller>, ParamError>),
    /// A leaser of reserved capacity ([`crate::leasing`]).
    Leasing(fn(&Params) -> Result<Box<dyn crate::leasing::Leaser>, ParamError>),
}

impl Builder {
    /// The `[cluster] kind` the policy runs on.
    pub fn model(&self) -> &'static str {
        match self {
            Builder::Training(_) => "training",
            Builder::Burstable(_) => "burstable",
            Builder::Leasing(_) => "leasing",
        }
    }
}

/// A registry entry.
pub struct PolicyInfo {
    /// Name in scenarios.
    pub name: &'static str,
    /// `paper` or `baseline`.
    pub kind: &'static str,
    /// Where it comes from.
    pub source: &'static str,
    /// One line.
    pub summary: &'static str,
    /// `modelled`, or `modelled (real forecaster)`.
    pub fidelity: &'static str,
    /// Parameters it accepts.
    pub params: &'static [&'static str],
    /// Constructor.
    pub build: Builder,
}

/// Every policy.
pub static REGISTRY: &[PolicyInfo] = &[
    PolicyInfo {
        name: "hpa",
        kind: "baseline",
        source: "Kubernetes Horizontal Pod Autoscaler (autoscaling/v2 defaults)",
        summary: "proportional on utilization, 10% tolerance, 300-s scale-down stabilization, rate limits",
        params: &["target", "shuffle"],
        fidelity: "modelled",
        build: Builder::Training(hpa),
    },
    PolicyInfo {
        name: "target-tracking",
        kind: "baseline",
        source: "AWS Application Auto Scaling target tracking",
        summary: "proportional on 1-min utilization; out after 3 min above target, in after 15 min below 90%",
        params: &["target", "shuffle"],
        fidelity: "modelled",
        build: Builder::Training(target_tracking),
    },
    PolicyInfo {
        name: "scheduled",
        kind: "baseline",
        source: "time-of-day (cron) scaling",
        summary: "per hour of day, the workers for the highest rate seen in that hour over the last days",
        params: &["days", "headroom", "shuffle"],
        fidelity: "modelled",
        build: Builder::Training(scheduled),
    },
    PolicyInfo {
        name: "static",
        kind: "baseline",
        source: "static peak provisioning",
        summary: "the workers for the run's peak rate, all the time",
        params: &["headroom", "shuffle"],
        fidelity: "modelled",
        build: Builder::Training(static_peak),
    },
    PolicyInfo {
        name: "kale",
        kind: "paper",
        source: "Kale, SoCC'24 (elastic GPUs for online training)",
        summary: "forecast-driven (q-quantile) stabilized worker sizing on a concave throughput curve, data shuffling",
        params: &[
            "model",
            "quantile",
            "forecast_step_s",
            "window_h",
            "refit_h",
            "drain_s",
            "confirm",
            "cooldown_s",
            "forecast_error",
            "shuffle",
        ],
        fidelity: "modelled (real forecaster)",
        build: Builder::Training(crate::kale::build),
    },
    PolicyInfo {
        name: "on-demand-only",
        kind: "baseline",
        source: "on-demand-only autoscaling (AutoBurst SoCC'24 baseline)",
        summary: "every 30 s, on-demand instances for arrivals × 1.1 / 0.8; 300-s scale-in stabilization",
        fidelity: "modelled",
        params: &[],
        build: Builder::Burstable(|_| Ok(Box::new(crate::burstable::OnDemandOnly::new()))),
    },
    PolicyInfo {
        name: "burstable-only",
        kind: "baseline",
        source: "burstable instances sized like on-demand ones, no credit control",
        summary: "every 30 s, burstables for arrivals × 1.1 / 0.8 at full burst; equal weights",
        fidelity: "modelled",
        params: &["burstable"],
        build: Builder::Burstable(|p| {
            Ok(Box::new(crate::burstable::BurstableOnly::new(crate::autoburst::burstable_param(p)?)))
        }),
    },
    PolicyInfo {
        name: "autoburst",
        kind: "paper",
        source: "AutoBurst, SoCC'24 (autoscaling burstable instances for latency SLOs)",
        summary: "credit PD loop sizes on-demand + table-sized burstables; latency PD loop sets burstable weights",
        fidelity: "modelled (artifact's controller)",
        params: &["burstable", "setpoint"],
        build: Builder::Burstable(|p| Ok(Box::new(crate::autoburst::build(p)?))),
    },
    PolicyInfo {
        name: "static-reservation",
        kind: "baseline",
        source: "static reservations (Meta-Leasing SoCC'24 baseline)",
        summary: "owners keep their whole reservation; lessees run on dedicated machines",
        fidelity: "modelled",
        params: &[],
        build: Builder::Leasing(|_| Ok(Box::new(crate::leasing::StaticReservation))),
    },
    PolicyInfo {
        name: "meta-leasing",
        kind: "paper",
        source: "Meta's dynamic idle-resource leasing, SoCC'24",
        summary: "lend reservation − conformal q-quantile forecast of the epoch's peak − DR buffer; revoke on need",
        fidelity: "modelled (real forecaster)",
        params: &["quantile", "model", "window_h", "min_epochs"],
        build: Builder::Leasing(|p| Ok(Box::new(crate::meta_leasing::build(p)?))),
    },
];

/// Finds a policy.
pub fn find(name: &str) -> Option<&'static PolicyInfo> {
    REGISTRY.iter().find(|p| p.name == name)
}

fn shuffle(p: &Params, default: bool) -> Result<bool, ParamError> {
    p.bool_or("shuffle", default)
}

/// The Kubernetes HPA.
pub struct Hpa {
    target: f64,
    shuffle: bool,
    /// (time, recommendation) of the last 300 s.
    recommendations: VecDeque<(u64, u32)>,
}

const HPA_SYNC_S: u64 = 15;
const HPA_TOLERANCE: f64 = 0.1;
const HPA_DOWN_WINDOW_S: u64 = 300;

impl Autoscaler for Hpa {
    fn period_s(&self) -> u64 {
        HPA_SYNC_S
    }

    fn decide(&mut self, obs: &Observation<'_>) -> u32 {
        let current = obs.ready + obs.pending;
        let ratio = obs.utilization / self.target;
        let raw = if (ratio - 1.0).abs() <= HPA_TOLERANCE || current == 0 {
            current
        } else {
            let v = (f64::from(current) * ratio).ceil();
            if v >= f64::from(u32::MAX) { u32::MAX } else { v as u32 }
        };
        self.recommendations.push_back((obs.now_s, raw));
        while self.recommendations.front().is_some_and(|(t, _)| t + HPA_DOWN_WINDOW_S < obs.now_s) {
            self.recommendations.pop_front();
        }
        if raw > current {
            // Scale-up: no stabilization; at most max(+4, +100%) per sync.
            let limit = current.saturating_add(4).max(current.saturating_mul(2));
            raw.min(limit)
        } else {
            // Scale-down: the highest recommendation in the window.
            let stabilized = self.recommendations.iter().map(|(_, r)| *r).max().unwrap_or(raw);
            stabilized.min(current)
        }
    }

    fn shuffles(&self) -> bool {
        self.shuffle
    }
}

fn hpa(b: &Build<'_>) -> Result<Box<dyn Autoscaler>, ParamError> {
    let p = b.params;
    let target = p.f64_in("target", 0.7, 0.05..=1.0)?;
    Ok(Box::new(Hpa { target, shuffle: shuffle(p, false)?, recommendations: VecDeque::new() }))
}

/// AWS-style target tracking.
pub struct TargetTracking {
    target: f64,
    shuffle: bool,
    above: u32,
    below: u32,
    last_scale_in_s: Option<u64>,
}

impl Autoscaler for TargetTracking {
    fn period_s(&self) -> u64 {
        60
    }

    fn decide(&mut self, obs: &Observation<'_>) -> u32 {
        let current = obs.ready + obs.pending;
        let proportional = |u: f64| -> u32 {
            let v = (f64::from(current.max(1)) * u / self.target).ceil();
            if v >= f64::from(u32::MAX) { u32::MAX } else { v as u32 }
        };
        if obs.utilization > self.target {
            self.above += 1;
            self.below = 0;
        } else if obs.utilization < 0.9 * self.target {
            self.below += 1;
            self.above = 0;
        } else {
            self.above = 0;
            self.below = 0;
        }
        if self.above >= 3 {
            self.above = 0;
            return proportional(obs.utilization).max(current);
        }
        let cooled = self.last_scale_in_s.is_none_or(|t| obs.now_s >= t + 300);
        if self.below >= 15 && cooled {
            self.below = 0;
            self.last_scale_in_s = Some(obs.now_s);
            return proportional(obs.utilization).min(current);
        }
        current
    }

    fn shuffles(&self) -> bool {
        self.shuffle
    }
}

fn target_tracking(b: &Build<'_>) -> Result<Box<dyn Autoscaler>, ParamError> {
    let p = b.params;
    Ok(Box::new(TargetTracking {
        target: p.f64_in("target", 0.7, 0.05..=1.0)?,
        shuffle: shuffle(p, false)?,
        above: 0,
        below: 0,
        last_scale_in_s: None,
    }))
}

/// Time-of-day scaling from the previous days' peaks.
pub struct Scheduled {
    days: usize,
    headroom: f64,
    shuffle: bool,
}

impl Autoscaler for Scheduled {
    fn period_s(&self) -> u64 {
        300
    }

    fn decide(&mut self, obs: &Observation<'_>) -> u32 {
        let rates = obs.minute_rates;
        let minute = rates.len();
        let peak = if minute < 1440 {
            rates.iter().copied().fold(obs.arrival_rate, f64::max)
        } else {
            // This hour of the day (and the next, so that the workers are
            // ready when it starts) over the last `days` days.
            let hour = (minute / 60) % 24;
            let mut peak: f64 = 0.0;
            for d in 1..=self.days {
                for h in [hour, (hour + 1) % 24] {
                    let day_start = (minute / 1440).checked_sub(d).map(|day| day * 1440);
                    if let Some(start) = day_start {
                        let from = start + h * 60;
                        if let Some(slice) = rates.get(from..(from + 60).min(rates.len())) {
                            peak = slice.iter().copied().fold(peak, f64::max);
                        }
                    }
                }
            }
            peak
        };
        obs.cluster.throughput.workers_for(peak * self.headroom, obs.cluster.max_workers)
    }

    fn shuffles(&self) -> bool {
        self.shuffle
    }
}

fn scheduled(b: &Build<'_>) -> Result<Box<dyn Autoscaler>, ParamError> {
    let p = b.params;
    Ok(Box::new(Scheduled {
        days: p.usize_in("days", 7, 1..=365)?,
        headroom: p.f64_in("headroom", 1.1, 1.0..=10.0)?,
        shuffle: shuffle(p, false)?,
    }))
}

/// The run's peak, all the time.
pub struct StaticPeak {
    rate: f64,
    shuffle: bool,
}

impl Autoscaler for StaticPeak {
    fn period_s(&self) -> u64 {
        3600
    }

    fn decide(&mut self, obs: &Observation<'_>) -> u32 {
        obs.cluster.throughput.workers_for(self.rate, obs.cluster.max_workers)
    }

    fn shuffles(&self) -> bool {
        self.shuffle
    }
}

fn static_peak(b: &Build<'_>) -> Result<Box<dyn Autoscaler>, ParamError> {
    let p = b.params;
    let headroom = p.f64_in("headroom", 1.0, 1.0..=10.0)?;
    Ok(Box::new(StaticPeak { rate: b.peak_rate * headroom, shuffle: shuffle(p, false)? }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Cluster;
    use crate::engine::tests::cluster;

    fn obs<'a>(c: &'a Cluster, now_s: u64, ready: u32, utilization: f64) -> Observation<'a> {
        Observation {
            now_s,
            ready,
            pending: 0,
            utilization,
            lag: 0.0,
            arrival_rate: 0.0,
            minute_rates: &[],
            cluster: c,
        }
    }

    #[test]
    fn hpa_as_documented() {
        let c = cluster();
        let mut h = Hpa { target: 0.5, shuffle: false, recommendations: VecDeque::new() };
        // Within tolerance: 0.54 / 0.5 = 1.08.
        assert_eq!(h.decide(&obs(&c, 15, 10, 0.54)), 10);
        // 10 × 0.9/0.5 = 18.
        assert_eq!(h.decide(&obs(&c, 30, 10, 0.9)), 18);
        // Rate limit: 2 workers at 100% of a 0.1 target want 20; at most
        // max(2 + 4, 4) = 6.
        let mut h2 = Hpa { target: 0.1, shuffle: false, recommendations: VecDeque::new() };
        assert_eq!(h2.decide(&obs(&c, 15, 2, 1.0)), 6);
        // Scale-down waits for the 300-s window: the 18 recommended at 30 s
        // holds until 330 s.
        assert_eq!(h.decide(&obs(&c, 45, 18, 0.1)), 18);
        assert_eq!(h.decide(&obs(&c, 330, 18, 0.1)), 18);
        assert_eq!(h.decide(&obs(&c, 345, 18, 0.1)), 4);
    }

    #[test]
    fn target_tracking_waits_for_its_alarms() {
        let c = cluster();
        let mut t = TargetTracking { target: 0.5, shuffle: false, above: 0, below: 0, last_scale_in_s: None };
        assert_eq!(t.decide(&obs(&c, 60, 10, 1.0)), 10);
        assert_eq!(t.decide(&obs(&c, 120, 10, 1.0)), 10);
        assert_eq!(t.decide(&obs(&c, 180, 10, 1.0)), 20);
        for m in 0..14 {
            assert_eq!(t.decide(&obs(&c, 240 + 60 * m, 20, 0.1)), 20);
        }
        assert_eq!(t.decide(&obs(&c, 1140, 20, 0.1)), 4);
    }
}
