//! Knative's Pod Autoscaler (KPA): the decision it takes every 2 s.
//!
//! Observed concurrency is averaged over a stable window (60 s) and a panic
//! window (6 s, 10% of it). Each tick:
//! - `stable = ⌈avg_stable / target⌉`, `panic = ⌈avg_panic / target⌉`;
//! - both are bounded by the rate limits: at most `ready × 1000` and at least
//!   `⌊ready / 2⌋` instances (scale-up and scale-down rates 1000 and 2);
//! - panic mode starts when `panic / ready ≥ 2` and, while in it, the
//!   autoscaler follows the panic figure and never scales down; it ends
//!   after a full stable window without a new trigger.
//!
//! In the platform (policy `knative`): each app with traffic or pods has an
//! autoscaler; every tick it observes the app's concurrency (invocations
//! running plus those queued at the activator), decides, starts pods (each
//! a cold start that serves nothing until ready) or removes the
//! longest-idle pods. An invocation takes a free slot (the platform's
//! `concurrency` per pod), else queues at the activator for one; an app
//! with no pod scales from zero on the invocation itself. Pods stay until
//! the autoscaler removes them. Deviations: concurrency is sampled once
//! per tick rather than each second; no scale-to-zero grace period beyond
//! the stable window; the activator queue is unbounded (invocations still
//! queued at the end are reported dropped).

use std::collections::VecDeque;

use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::{SimDuration, SimTime};

use crate::policy::{AfterExecution, KeepAlive};

/// KPA settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KpaConfig {
    /// Target concurrency per instance (100 × 70% by default).
    pub target: f64,
    /// Stable window.
    pub stable_window: SimDuration,
    /// Panic window.
    pub panic_window: SimDuration,
    /// Ratio of panic desire to ready instances that starts panic mode.
    pub panic_threshold: f64,
    /// Most scale-up per decision, × ready.
    pub max_scale_up_rate: f64,
    /// Most scale-down per decision, ÷ ready.
    pub max_scale_down_rate: f64,
    /// Time between decisions.
    pub tick: SimDuration,
}

impl Default for KpaConfig {
    fn default() -> Self {
        KpaConfig {
            target: 70.0,
            stable_window: SimDuration::from_secs(60),
            panic_window: SimDuration::from_secs(6),
            panic_threshold: 2.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            tick: SimDuration::from_secs(2),
        }
    }
}

/// The autoscaler's state.
#[derive(Debug, Clone)]
pub struct Kpa {
    config: KpaConfig,
    samples: VecDeque<(SimTime, f64)>,
    panic_since: Option<SimTime>,
    last_trigger: Option<SimTime>,
    panic_floor: u32,
}

impl Kpa {
    /// A fresh autoscaler.
    pub fn new(config: KpaConfig) -> Self {
        Kpa { config, samples: VecDeque::new(), panic_since: None, last_trigger: None, panic_floor: 0 }
    }

    /// Records the concurrency observed at `at`.
    pub fn observe(&mut self, at: SimTime, concurrency: f64) {
        self.samples.push_back((at, concurrency));
        let horizon =
            at.saturating_since(SimTime::ZERO).as_nanos().saturating_sub(self.config.stable_window.as_nanos());
        while self.samples.front().is_some_and(|s| s.0.as_nanos() < horizon) {
            self.samples.pop_front();
        }
    }

    fn average(&self, now: SimTime, window: SimDuration) -> f64 {
        let from = now.as_nanos().saturating_sub(window.as_nanos());
        let values: Vec<f64> = self.samples.iter().filter(|s| s.0.as_nanos() >= from).map(|s| s.1).collect();
        if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
    }

    /// Whether nothing was observed in the last stable window and it is not
    /// panicking (the app can be forgotten).
    pub fn idle(&self, now: SimTime) -> bool {
        self.panic_since.is_none() && self.average(now, self.config.stable_window) == 0.0
    }

    /// Whether the autoscaler is in panic mode.
    pub fn panicking(&self) -> bool {
        self.panic_since.is_some()
    }

    /// The desired number of instances at `now` given `ready` instances.
    pub fn decide(&mut self, now: SimTime, ready: u32) -> u32 {
        let c = self.config;
        let bound = |desired: f64| -> u32 {
            let ready = f64::from(ready.max(1));
            let high = (ready * c.max_scale_up_rate).ceil();
            let low = (ready / c.max_scale_down_rate).floor();
            desired.clamp(low, high) as u32
        };
        let stable = bound((self.average(now, c.stable_window) / c.target).ceil());
        let panic = bound((self.average(now, c.panic_window) / c.target).ceil());
        if f64::from(panic) / f64::from(ready.max(1)) >= c.panic_threshold {
            if self.panic_since.is_none() {
                self.panic_since = Some(now);
                self.panic_floor = ready;
            }
            self.last_trigger = Some(now);
        } else if let Some(last) = self.last_trigger
            && self.panic_since.is_some()
            && now.saturating_since(last) >= c.stable_window
        {
            self.panic_since = None;
            self.panic_floor = 0;
        }
        if self.panicking() {
            // Never scale down while panicking.
            self.panic_floor = self.panic_floor.max(panic).max(ready);
            self.panic_floor
        } else {
            stable
        }
    }
}

/// Knative keep-alive: pods live until the autoscaler removes them.
pub struct Knative {
    config: KpaConfig,
}

impl KeepAlive for Knative {
    fn after_execution(&mut self, _app: u32, _now: SimTime) -> AfterExecution {
        AfterExecution::KeepUntilEvicted
    }

    fn autoscaler(&self) -> Option<KpaConfig> {
        Some(self.config)
    }
}

/// Builds the policy from `target` (70 concurrent invocations per pod:
/// Knative's 100 × 70% utilisation), `stable_window_s` (60),
/// `panic_window_s` (6), `panic_threshold` (2) and `tick_s` (2).
pub fn build(p: &Params) -> Result<Box<dyn KeepAlive>, ParamError> {
    let d = KpaConfig::default();
    let target = p.positive_f64_or("target", d.target)?;
    let duration = |key: &str, default: SimDuration| -> Result<SimDuration, ParamError> {
        Ok(SimDuration::from_nanos(p.duration_ns_or(key, default.as_secs_f64(), 1e9, true)?))
    };
    let stable = duration("stable_window_s", d.stable_window)?;
    let panic = duration("panic_window_s", d.panic_window)?;
    let panic_threshold = p.positive_f64_or("panic_threshold", d.panic_threshold)?;
    let tick = duration("tick_s", d.tick)?;
    if panic > stable || tick > stable {
        return Err(p.error("panic_window_s", "the panic window and the tick must not exceed the stable window"));
    }
    p.finish(&[])?;
    Ok(Box::new(Knative {
        config: KpaConfig { target, stable_window: stable, panic_window: panic, panic_threshold, tick, ..d },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SimTime {
        SimTime::from_secs(s)
    }

    #[test]
    fn stable_mode_follows_the_sixty_second_average() {
        let mut kpa = Kpa::new(KpaConfig::default());
        for s in (0..60).step_by(2) {
            kpa.observe(at(s), 210.0);
        }
        // 210 / 70 = 3 instances; no panic (6-s average is also 3x target,
        // but 3 / 3 ready < 2).
        assert_eq!(kpa.decide(at(60), 3), 3);
        assert!(!kpa.panicking());
    }

    #[test]
    fn panic_starts_at_twice_ready_holds_and_ends_after_a_stable_window() {
        let mut kpa = Kpa::new(KpaConfig::default());
        for s in (0..54).step_by(2) {
            kpa.observe(at(s), 70.0);
        }
        // A burst: the 6-s average reaches 420 -> 6 instances, 6 / 2 ready = 3x.
        for s in (54..60).step_by(2) {
            kpa.observe(at(s), 420.0);
        }
        assert_eq!(kpa.decide(at(60), 2), 6);
        assert!(kpa.panicking());
        // The burst ends; while panicking the count never drops.
        for s in (60..100).step_by(2) {
            kpa.observe(at(s), 70.0);
        }
        assert_eq!(kpa.decide(at(100), 6), 6);
        assert!(kpa.panicking());
        // A full stable window after the last trigger: back to stable mode.
        for s in (100..122).step_by(2) {
            kpa.observe(at(s), 70.0);
        }
        assert_eq!(kpa.decide(at(121), 6), 3, "bounded by the 2x scale-down rate");
        assert!(!kpa.panicking());
    }

    #[test]
    fn rate_limits_bound_each_decision() {
        let mut kpa = Kpa::new(KpaConfig::default());
        kpa.observe(at(0), 70.0 * 5_000.0);
        // From 1 ready instance, at most 1,000.
        assert_eq!(kpa.decide(at(0), 1), 1000);
        let mut idle = Kpa::new(KpaConfig::default());
        idle.observe(at(0), 0.0);
        // From 10 ready, at least 5.
        assert_eq!(idle.decide(at(0), 10), 5);
    }
}
