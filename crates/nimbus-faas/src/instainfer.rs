//! InstaInfer (SoCC'24): "Pre-Warming is Not Enough: Accelerating
//! Serverless Inference With Opportunistic Pre-Loading".
//!
//! Mechanism: pre-warming readies a sandbox's runtime, but an inference
//! handler still loads its model on the invocation path. InstaInfer loads
//! the model into idle warm sandboxes ahead of the next invocation, in
//! windows from a per-function Poisson model: λ = w / (sum of the last w
//! inter-arrival times), w ≥ 5 chosen by the least squared one-step-ahead
//! error over the recent gaps; pre-load T1 = −ln(1 − 0.05)/λ and off-load
//! T2 = −ln(1 − 0.85)/λ after the last execution; the model rides inside
//! the sandbox's memory within a 2,047 MB per-sandbox budget. Invocations
//! are routed to an idle sandbox that already holds the model. Keep-alive
//! and pre-warming are the hybrid histogram policy's (`hybrid`), so cold
//! starts are the same as under it; only the model-loading component of
//! latency changes.
//!
//! Baseline: the same pre-warming without pre-loading (`hybrid`).
//! Modelled: windows, budget, routing and load times (from InstaInfer's
//! model table). Deviations: a sandbox pre-loads only its own app's model
//! (the paper bin-packs several functions' models worst-fit into shared
//! idle containers and evicts lower-saving ones); with fewer than five
//! observed inter-arrival times the model is pre-loaded at once and kept
//! (inferred); the evaluation window of the w search is the last five gaps
//! (inferred); windows are measured from the end of the last execution.

use std::collections::VecDeque;

use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::{SimDuration, SimTime};

use crate::policy::{AfterExecution, Hybrid, KeepAlive, PreloadPlan};

/// The largest Poisson window considered.
const MAX_WINDOW: usize = 20;
/// Gaps used to score each window.
const SCORED: usize = 5;

/// Arrival rate (per second) from inter-arrival gaps in time order (s):
/// the window w ≥ 5 whose mean best predicted each of the last few gaps
/// from the w before it. `None` with fewer than five gaps.
pub fn poisson_rate(gaps: &[f64]) -> Option<f64> {
    let n = gaps.len();
    if n < 5 {
        return None;
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let mut best = (f64::INFINITY, 5usize);
    for w in 5..=MAX_WINDOW.min(n - 1) {
        let scored = SCORED.min(n - w);
        let error: f64 =
            (n - scored..n).map(|j| (gaps[j] - mean(&gaps[j - w..j])).powi(2)).sum::<f64>() / scored as f64;
        if error < best.0 {
            best = (error, w);
        }
    }
    let w = best.1.min(n);
    let total: f64 = gaps[n - w..].iter().sum();
    (total > 0.0).then(|| w as f64 / total)
}

/// Hybrid pre-warming plus model pre-loading.
pub struct InstaInfer {
    inner: Hybrid,
    p_load: f64,
    p_offload: f64,
    budget_mb: u32,
    gaps: Vec<VecDeque<f64>>,
    last_arrival: Vec<Option<SimTime>>,
}

impl KeepAlive for InstaInfer {
    fn on_arrival(&mut self, app: u32, now: SimTime, idle: Option<SimDuration>) {
        let a = app as usize;
        if self.gaps.len() <= a {
            self.gaps.resize(a + 1, VecDeque::new());
            self.last_arrival.resize(a + 1, None);
        }
        if let Some(last) = self.last_arrival[a] {
            let gaps = &mut self.gaps[a];
            if gaps.len() == MAX_WINDOW + SCORED {
                gaps.pop_front();
            }
            gaps.push_back(now.since(last).as_secs_f64());
        }
        self.last_arrival[a] = Some(now);
        self.inner.on_arrival(app, now, idle);
    }

    fn after_execution(&mut self, app: u32, now: SimTime) -> AfterExecution {
        self.inner.after_execution(app, now)
    }

    fn preload(&mut self, app: u32, _now: SimTime) -> Option<PreloadPlan> {
        let gaps: &[f64] = self.gaps.get_mut(app as usize).map_or(&[], |g| g.make_contiguous());
        let plan = match poisson_rate(gaps) {
            None => PreloadPlan { after: SimDuration::ZERO, offload_after: None, budget_mb: self.budget_mb },
            Some(rate) => PreloadPlan {
                after: SimDuration::from_secs_f64(-(1.0 - self.p_load).ln() / rate),
                offload_after: Some(SimDuration::from_secs_f64(-(1.0 - self.p_offload).ln() / rate)),
                budget_mb: self.budget_mb,
            },
        };
        Some(plan)
    }
}

/// Builds the policy: the hybrid policy's keys plus `p_load` (0.05),
/// `p_offload` (0.85) and `budget_mb` (2,047).
pub fn build(p: &Params) -> Result<Box<dyn KeepAlive>, ParamError> {
    let inner = crate::policy::hybrid_from(p)?;
    let p_load = p.non_negative_f64_or("p_load", 0.05)?;
    let p_offload = p.non_negative_f64_or("p_offload", 0.85)?;
    if p_load >= 1.0 || p_offload >= 1.0 || p_offload <= p_load {
        return Err(p.error("p_offload", "needs 0 <= p_load < p_offload < 1"));
    }
    let budget_mb = p.u32_in("budget_mb", 2047, 0..=1 << 20)?;
    p.finish(&[])?;
    Ok(Box::new(InstaInfer { inner, p_load, p_offload, budget_mb, gaps: Vec::new(), last_arrival: Vec::new() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_windows_by_hand() {
        assert_eq!(poisson_rate(&[1.0; 4]), None);
        // Five gaps of 2 s: w = 5, λ = 0.5/s.
        assert!((poisson_rate(&[2.0; 5]).expect("five gaps") - 0.5).abs() < 1e-12);
        // A regime change: 20 gaps of 10 s, then 6 of 1 s. Short windows
        // track the change better, so λ is close to 1/s, not 1/10 s.
        let mut gaps = vec![10.0; 20];
        gaps.extend([1.0; 6]);
        let rate = poisson_rate(&gaps).expect("26 gaps");
        assert!((rate - 1.0).abs() < 1e-12, "{rate}");
        // T1 and T2 at λ = 0.5/s: 0.1026 s and 3.794 s.
        let mut policy = InstaInfer {
            inner: crate::policy::hybrid_from(&Params::new("policy", None)).expect("defaults"),
            p_load: 0.05,
            p_offload: 0.85,
            budget_mb: 2047,
            gaps: vec![VecDeque::from(vec![2.0; 5])],
            last_arrival: vec![None],
        };
        let plan = policy.preload(0, SimTime::ZERO).expect("always a plan");
        assert!((plan.after.as_secs_f64() - 0.102_586).abs() < 1e-5);
        assert!((plan.offload_after.expect("λ known").as_secs_f64() - 3.794_240).abs() < 1e-5);
    }
}
