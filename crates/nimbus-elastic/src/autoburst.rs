//! AutoBurst (Hasan, Zhu and Urgaonkar, SoCC'24): autoscaling a web
//! service over on-demand and burstable instances for a mean-latency SLO.
//!
//! Mechanism, as the public artifact (github.com/shyamjesal/AutoBurst,
//! `src/autoBurst.py`, `src/autoBurstController.py`, config defaults) does
//! it, on the model of [`crate::burstable`]:
//! - **Resource estimator**, every 30 s: e = desiredCredit (60) − the
//!   credit balance of the running and draining burstables; out = 0.01·e +
//!   0.2·Δe, clamped to ±1 and accumulated; each integer crossing of the
//!   accumulator adds or removes one on-demand instance (at most the
//!   stopped ones, never below zero). The burstables are then the fewest
//!   whose table throughput with those on-demand instances reaches the
//!   target arrival × 1.1 / 0.8 (`findNumberOfBurstable` on the filled
//!   throughput table; the largest column when none does).
//! - **Latency optimizer**, every 5 s: a PD step (P = 1, D = 2) on the
//!   error of the last window's mean latency against the SLO moves the
//!   burstables' weight in log10 space within [log 100, log 1000]; on-
//!   demand instances keep weight 1000; the burstable with the lowest
//!   balance gets one less; draining burstables get 10^(w + 0.1), so they
//!   spend their credits before they stop.
//! - Scale-in drains the lowest-balance burstables; scale-out resumes the
//!   draining ones with the most credits first, at weight 100.
//!
//! Deviations:
//! - The latency error is in seconds (the artifact subtracts its SLO from
//!   a k6 latency reading in k6's unit, which its code does not fix). With
//!   the error relative to the SLO instead, P = 1 and D = 2 swing the
//!   weights between their bounds every 5 s on this model, whose latency
//!   answers a weight change within one window.
//! - `setpoint` (default 1, the artifact) is the latency the optimizer aims
//!   at as a fraction of the SLO. Aiming at the SLO itself holds the window
//!   means around it, so about half the windows miss it; an operator who
//!   needs the SLO in 95% of windows aims lower (the scenario runs 0.7).
//! - The on-demand count is bounded by the table's largest row (the
//!   artifact's pool holds 15); weights are reals (nginx takes integers;
//!   the ±1 of the lowest-balance burstable is kept).
//! - The artifact's latency signal is k6's p95 over the last 3 s; the
//!   model gives the request-weighted mean of the last 5-s window.
//!
//! Baselines (in [`crate::burstable`]): on-demand-only autoscaling with the
//! same 1.1/0.8 headroom, and burstables alone. The paper's other baseline,
//! its prior state of the art for burstables, is not modelled.

use std::collections::VecDeque;

use nimbus_sim::params::{ParamError, Params};

use crate::burstable::{Controller, HEADROOM, Instance, InstanceType, Kind, Plan, State, View};

/// AutoBurst's controller.
pub struct AutoBurst {
    high: f64,
    low: f64,
    p: f64,
    d: f64,
    p_credit: f64,
    d_credit: f64,
    desired_credit: f64,
    log_weight: f64,
    errors: VecDeque<f64>,
    diffs: VecDeque<f64>,
    accumulator: f64,
    burstable: Option<&'static InstanceType>,
    /// The latency the optimizer aims at, as a fraction of the SLO.
    pub setpoint: f64,
}

impl AutoBurst {
    /// The artifact's configuration: H 1000, L 100, P 1, D 2, P_m 0.01,
    /// D_m 0.2, desired credit 60, initial weight 100.
    pub fn new(burstable: Option<&'static InstanceType>) -> Self {
        AutoBurst {
            high: 1000.0,
            low: 100.0,
            p: 1.0,
            d: 2.0,
            p_credit: 0.01,
            d_credit: 0.2,
            desired_credit: 60.0,
            log_weight: 100f64.log10(),
            errors: VecDeque::new(),
            diffs: VecDeque::new(),
            accumulator: 0.0,
            burstable,
            setpoint: 1.0,
        }
    }

    /// The PD output on the last two values of `history`.
    fn pd(history: &VecDeque<f64>, p: f64, d: f64) -> f64 {
        match (history.back(), history.len()) {
            (Some(&last), 1) => p * last,
            (Some(&last), _) => p * last + d * (last - history[history.len() - 2]),
            (None, _) => 0.0,
        }
    }

    fn remember(history: &mut VecDeque<f64>, value: f64) {
        history.push_back(value);
        while history.len() > 3 {
            history.pop_front();
        }
    }
}

impl Controller for AutoBurst {
    fn estimator_period_s(&self) -> u64 {
        30
    }

    fn optimizer_period_s(&self) -> Option<u64> {
        Some(5)
    }

    fn burstable_type(&self) -> Option<&'static InstanceType> {
        self.burstable
    }

    fn plan(&mut self, view: &View<'_>, fleet: &[Instance]) -> Plan {
        let table = &view.service.table;
        let target = view.arrival_rate * HEADROOM;
        let credits: f64 = fleet
            .iter()
            .filter(|i| i.kind == Kind::Burstable && matches!(i.state, State::Running | State::Draining))
            .map(|i| i.credits)
            .sum();
        Self::remember(&mut self.diffs, self.desired_credit - credits);
        let out = Self::pd(&self.diffs, self.p_credit, self.d_credit).clamp(-1.0, 1.0);
        self.accumulator += out;
        let mut change: i64 = 0;
        while self.accumulator >= 1.0 {
            change += 1;
            self.accumulator -= 1.0;
        }
        while self.accumulator <= -1.0 {
            change -= 1;
            self.accumulator += 1.0;
        }
        let limit = table.max_on_demand().min(view.service.max_on_demand);
        let current = fleet
            .iter()
            .filter(|i| i.kind == Kind::OnDemand && matches!(i.state, State::Running | State::Starting(_)))
            .count();
        let current = i64::try_from(current).unwrap_or(i64::MAX);
        let unused = i64::from(limit) - current;
        let on_demand = (current + change.min(unused)).clamp(0, i64::from(limit));
        let on_demand = u32::try_from(on_demand).unwrap_or(0);
        let burstable = table.burstables_for(on_demand, target).unwrap_or(0).min(view.service.max_burstable);
        Plan { on_demand, burstable }
    }

    fn optimize(&mut self, view: &View<'_>, fleet: &mut [Instance]) {
        let Some(latency) = view.latency_s else { return };
        let aim = view.service.slo_s * self.setpoint;
        Self::remember(&mut self.errors, latency - aim);
        let out = Self::pd(&self.errors, self.p, self.d);
        self.log_weight = (self.log_weight + out).clamp(self.low.log10(), self.high.log10());
        let lowest = fleet
            .iter()
            .filter(|i| i.kind == Kind::Burstable && i.state == State::Running)
            .map(|i| i.credits)
            .fold(f64::INFINITY, f64::min);
        let weight = 10f64.powf(self.log_weight);
        let draining = 10f64.powf(self.log_weight + 0.1).clamp(self.low, self.high);
        for i in fleet.iter_mut() {
            match (i.kind, i.state) {
                (Kind::OnDemand, _) => i.weight = self.high,
                (Kind::Burstable, State::Running) => {
                    let w = if i.credits == lowest { weight - 1.0 } else { weight };
                    i.weight = w.clamp(self.low, self.high);
                }
                (Kind::Burstable, State::Draining) => i.weight = draining,
                _ => {}
            }
        }
    }

    fn new_weight(&self, kind: Kind, _fleet: &[Instance]) -> f64 {
        match kind {
            Kind::OnDemand => self.high,
            Kind::Burstable => self.low,
        }
    }
}

/// Builds AutoBurst from its parameters (`burstable`: an instance type;
/// `setpoint`: the optimizer's aim as a fraction of the SLO).
pub fn build(params: &Params) -> Result<AutoBurst, ParamError> {
    let mut a = AutoBurst::new(burstable_param(params)?);
    a.setpoint = params.f64_in("setpoint", 1.0, 0.05..=2.0)?;
    Ok(a)
}

/// The optional `burstable` instance-type parameter.
pub fn burstable_param(params: &Params) -> Result<Option<&'static InstanceType>, ParamError> {
    match params.str("burstable")? {
        None => Ok(None),
        Some(name) => crate::burstable::instance_type(name, true).map(Some).map_err(|e| params.error("burstable", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::burstable::tests::service;
    use crate::burstable::{OnDemandOnly, run};
    use crate::demand::{self, Demand};
    use proptest::prelude::*;

    #[test]
    fn the_estimator_adds_on_demand_when_credits_run_low() {
        let s = service();
        let mut a = AutoBurst::new(None);
        let view = View { now_s: 30, arrival_rate: 200.0, latency_s: None, service: &s };
        // No burstables at all: e = 60 → out 0.6, no crossing yet.
        let plan = a.plan(&view, &[]);
        assert_eq!(plan.on_demand, 0);
        // Target 275 on row 0: 140, 166, 192, 221, 250, 275.5 → 10.
        assert_eq!(plan.burstable, 10);
        // Second step: 0.6 + 0.6 crosses 1 → one on-demand instance.
        assert_eq!(a.plan(&view, &[]).on_demand, 1);
    }

    #[test]
    fn the_optimizer_moves_weights_in_log_space() {
        let s = service();
        let mut a = AutoBurst::new(None);
        let mut fleet = vec![
            Instance { kind: Kind::Burstable, state: State::Running, credits: 5.0, weight: 100.0, ..blank() },
            Instance { kind: Kind::Burstable, state: State::Running, credits: 9.0, weight: 100.0, ..blank() },
            Instance { kind: Kind::OnDemand, state: State::Running, credits: 0.0, weight: 1.0, ..blank() },
        ];
        // Latency 0.1 s over the SLO: log weight 2 + 0.1 → 125.9.
        let view = View { now_s: 5, arrival_rate: 100.0, latency_s: Some(0.3), service: &s };
        a.optimize(&view, &mut fleet);
        let w = 10f64.powf(2.1);
        assert!((fleet[1].weight - w).abs() < 1e-9, "{}", fleet[1].weight);
        assert!((fleet[0].weight - (w - 1.0)).abs() < 1e-9, "the lowest balance gets one less");
        assert_eq!(fleet[2].weight, 1000.0);
        // Same error again: P·0.1 + D·0 → 2.2.
        a.optimize(&view, &mut fleet);
        assert!((fleet[1].weight - 10f64.powf(2.2)).abs() < 1e-9);
        // Far over: capped at 1000; draining burstables get 10^(w+0.1)
        // within the bounds.
        fleet[0].state = State::Draining;
        let late = View { latency_s: Some(5.0), ..view };
        a.optimize(&late, &mut fleet);
        // The one running burstable now has the lowest balance: 1000 − 1.
        assert_eq!(fleet[1].weight, 999.0);
        assert_eq!(fleet[0].weight, 1000.0);
    }

    fn blank() -> Instance {
        crate::burstable::tests::blank_instance()
    }

    #[test]
    fn autoburst_meets_the_slo_on_a_diurnal_day_and_credits_stay_non_negative() {
        let s = crate::burstable::Service { warmup_s: 86_400, ..service() };
        let d = demand::synthetic(3.0, 480.0, 2.0, 1);
        let mut a = AutoBurst::new(None);
        a.setpoint = 0.7;
        let auto = run(&d, &s, &mut a, &mut |_| {});
        let ond = run(&d, &s, &mut OnDemandOnly::new(), &mut |_| {});
        let m = |o: &nimbus_sim::output::RunOutput, n: &str| o.metric(n).expect(n);
        assert!(m(&auto, "slo_met_pct") >= 95.0, "{}", m(&auto, "slo_met_pct"));
        assert!(m(&auto, "credits_min") >= 0.0);
        assert!(m(&auto, "burstable_hours") > 0.0);
        assert!(m(&ond, "slo_met_pct") >= 95.0, "{}", m(&ond, "slo_met_pct"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever the demand, balances stay within [0, cap] and every
        /// request is served or still queued.
        #[test]
        fn credits_never_go_negative(rates in proptest::collection::vec(0.0f64..900.0, 1..12), credits in 0.0f64..900.0) {
            let s = crate::burstable::Service { initial_credits: credits, start_delay_s: 30, ..service() };
            let d = Demand { step_s: 600, rates };
            let out = run(&d, &s, &mut AutoBurst::new(None), &mut |_| {});
            let min = out.metric("credits_min").expect("metric");
            prop_assert!(min.is_nan() || min >= 0.0, "{}", min);
            prop_assert_eq!(out.metric("credits_overdraft").expect("metric"), 0.0);
            let arrived = out.metric("arrived_mrequests").expect("metric") * 1e6;
            let served = out.metric("served_pct").expect("metric") / 100.0 * arrived;
            let queued = out.metric("unserved_requests_end").expect("metric");
            prop_assert!((served + queued - arrived).abs() <= 1e-6 * arrived.max(1.0), "{} + {} vs {}", served, queued, arrived);
        }
    }
}
