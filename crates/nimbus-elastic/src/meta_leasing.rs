//! Meta's dynamic idle-resource leasing (SoCC'24, "Meta-Leasing"): lend
//! the part of each service's reservation its owner will not need, with
//! owner safety set by a forecast quantile.
//!
//! Mechanism, on the model of [`crate::leasing`]: at the start of each
//! lease epoch, for each owner,
//!   safe idle = reservation − the q-quantile forecast of the owner's peak
//!   usage over the epoch − the disaster-recovery buffer,
//! and that much is leased (revoked when the owner needs it). The
//! q-quantile of the epoch's peak is a point forecast (a `nimbus-forecast`
//! model, `snaive24` by default: seasonal naive over a day of hourly
//! usage; fitted on the last `window_h` hours) plus the q-quantile of the errors of the same
//! forecast on the owner's past epochs (split-conformal calibration: the
//! error of an epoch is its realised peak minus its forecast peak). Until
//! `min_epochs` past errors exist nothing is leased. If the errors were
//! exchangeable, the owner's usage would exceed the forecast in at most
//! 1 − q of epochs, so the share of short owner-hours stays below 1 − q.
//!
//! Baseline: static reservations (nothing leased). Claims: ≈25% smaller
//! physical footprint at Meta's scale (here: the footprint saving on the
//! model's owners and lessees, which depends on how much lessees want);
//! owner-shortage probability ≤ 1 − q; leased core-hours rise as q falls.
//!
//! Modelled: owners, lessees and revocation are the model's; the
//! forecaster and its calibration are real. The paper's forecaster is not
//! public; the conformal quantile is this project's reading of "a
//! high-quantile forecast". Lessee classes with their own availability SLOs
//! are one class per run here (a run at a lower q is the class that
//! accepts more revocations).

use std::collections::BTreeMap;

use nimbus_forecast::Forecaster;
use nimbus_sim::params::{ParamError, Params};

use crate::leasing::{Epoch, Leaser};

/// The leaser.
pub struct MetaLeasing {
    quantile: f64,
    model: Box<dyn Forecaster>,
    window_h: f64,
    min_epochs: usize,
    /// Per owner: the forecast peak of the current epoch and where it
    /// started, and the past errors.
    state: BTreeMap<usize, OwnerState>,
    failures: u64,
    first_failure: Option<String>,
}

#[derive(Default)]
struct OwnerState {
    pending: Option<(usize, usize, f64)>,
    errors: Vec<f64>,
}

impl MetaLeasing {
    /// The q-quantile of `errors` (the ⌈q(n+1)⌉-th smallest, the
    /// split-conformal rank; `None` when q is too high for n).
    fn conformal(errors: &[f64], q: f64) -> Option<f64> {
        let n = errors.len();
        let rank = (q * (n as f64 + 1.0)).ceil();
        if rank > n as f64 || n == 0 {
            return None;
        }
        let mut sorted = errors.to_vec();
        sorted.sort_by(f64::total_cmp);
        let i = (rank as usize).max(1) - 1;
        Some(sorted[i])
    }
}

impl Leaser for MetaLeasing {
    fn lend(&mut self, epoch: &Epoch<'_>) -> f64 {
        let now = epoch.history.len();
        let state = self.state.entry(epoch.owner).or_default();
        // Score the epoch that just ended.
        if let Some((start, steps, forecast_peak)) = state.pending.take()
            && start + steps <= now
        {
            let realised = epoch.history[start..start + steps].iter().copied().fold(f64::MIN, f64::max);
            state.errors.push(realised - forecast_peak);
        }
        let window = nimbus_sim::params::round_to_u64(self.window_h * 3600.0 / epoch.step_s.max(1) as f64)
            .and_then(|w| usize::try_from(w).ok())
            .unwrap_or(usize::MAX)
            .min(now);
        let history = &epoch.history[now - window..];
        if history.len() < self.model.min_history() || epoch.steps == 0 {
            return 0.0;
        }
        let peak = match self.model.forecast(history, epoch.steps) {
            Ok(f) => f.point.iter().copied().fold(f64::MIN, f64::max),
            Err(e) => {
                self.failures += 1;
                self.first_failure.get_or_insert_with(|| e.to_string());
                return 0.0;
            }
        };
        state.pending = Some((now, epoch.steps, peak));
        if state.errors.len() < self.min_epochs {
            return 0.0;
        }
        let Some(margin) = Self::conformal(&state.errors, self.quantile) else { return 0.0 };
        (epoch.reservation - (peak + margin) - epoch.dr_cores).max(0.0)
    }

    fn notes(&self) -> Vec<String> {
        match &self.first_failure {
            Some(e) => vec![format!("{} forecasts failed (nothing leased for them); first: {e}", self.failures)],
            None => Vec::new(),
        }
    }
}

/// Builds the leaser: `quantile` (0.95), `model` (`snaive24`), `window_h`
/// (336), `min_epochs` (20).
pub fn build(params: &Params) -> Result<MetaLeasing, ParamError> {
    let spec = params.str("model")?.unwrap_or("snaive24");
    let model = nimbus_forecast::models::parse(spec).map_err(|e| params.error("model", e.to_string()))?;
    Ok(MetaLeasing {
        quantile: params.f64_in("quantile", 0.95, 0.5..=0.9999)?,
        model,
        window_h: params.f64_in("window_h", 336.0, 1.0..=100_000.0)?,
        min_epochs: params.usize_in("min_epochs", 20, 1..=100_000)?,
        state: BTreeMap::new(),
        failures: 0,
        first_failure: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leasing::{Pool, StaticReservation, run, synthetic_owners};

    fn leaser(q: f64) -> MetaLeasing {
        let mut p = Params::new("policy", None);
        p.set_path("quantile", nimbus_sim::params::Param { value: nimbus_sim::params::Value::Float(q), span: None })
            .expect("settable");
        build(&p).expect("valid")
    }

    #[test]
    fn conformal_rank_by_hand() {
        let e = [5.0, 1.0, 3.0, 2.0, 4.0];
        // q = 0.5, n = 5: rank ⌈3⌉ = 3 → 3.
        assert_eq!(MetaLeasing::conformal(&e, 0.5), Some(3.0));
        // q = 0.8: rank ⌈4.8⌉ = 5 → 5; q = 0.9: rank 6 > 5 → none.
        assert_eq!(MetaLeasing::conformal(&e, 0.8), Some(5.0));
        assert_eq!(MetaLeasing::conformal(&e, 0.9), None);
    }

    #[test]
    fn shortage_stays_below_one_minus_q_and_leasing_grows_as_q_falls() {
        let owners = synthetic_owners(12, 10.0, 3);
        let pool = Pool {
            reservation_headroom: 0.2,
            dr_buffer: 0.1,
            history_steps: 4 * 168,
            lease_steps: 6,
            lessee_demand: 0.5,
        };
        let stat = run(&owners, &pool, &mut StaticReservation, 1);
        let mut leased = Vec::new();
        for q in [0.99, 0.95, 0.8] {
            let out = run(&owners, &pool, &mut leaser(q), 1);
            let m = |n: &str| out.metric(n).expect(n);
            assert!(m("owner_shortage_pct") <= 100.0 * (1.0 - q), "q {q}: {}", m("owner_shortage_pct"));
            assert!(m("footprint_core_h") < stat.metric("footprint_core_h").expect("metric"));
            leased.push(m("leased_core_h"));
        }
        assert!(leased[0] < leased[1] && leased[1] < leased[2], "{leased:?}");
    }
}
