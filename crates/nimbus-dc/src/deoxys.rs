//! Deoxys: "A Causal Inference Engine for Unhealthy Node Mitigation in
//! Large-scale Cloud Infrastructure" (SoCC'24).
//!
//! Mechanism (carbon-autoscaling-tail.md §6.5): unhealthy-node events with
//! node signals x, a mitigation a (0: reboot in place; 1: live-migrate the
//! VMs, then repair) and an outcome y (VM downtime, minutes). The logged
//! actions follow a legacy rule with operator noise, so they are
//! confounded. Deoxys estimates the individual effect τ(x) = E[y | x, 1] −
//! E[y | x, 0] by **double machine learning** (cross-fitted forest
//! nuisances, residual-on-residual fit) and an **honest causal forest**
//! (`nimbus-learn`), then picks the action with the lower predicted
//! downtime; **action overriding** migrates only when the gain beats the
//! migration's resource cost (`cost`, minutes), and the **policy
//! fallback** returns to the legacy rule where the forest cannot tell the
//! two actions apart: where τ̂ ± z·se (se: the spread of its trees'
//! estimates over √trees, optimistic since trees are correlated) contains
//! the decision boundary −cost.
//!
//! Baselines: the legacy rule; a naive T-learner (one forest per action).
//! The oracle (true τ) bounds them all.
//!
//! Real computation on synthetic data (Microsoft's incident data are
//! private). The generator's forms and numbers are ours: six standard
//! normal signals (hardware-error score x0, node age x1, CPU load x2,
//! memory pressure x3, VM count x4, prior incidents x5); downtime under
//! reboot 12 + 3·x0 + 2·x3 + 1.5·x4 + 1·x5 minutes; migration's effect
//! τ(x) = −6 + 4·x4 − 2·x2 + 3·[x0 > 1] (it helps on average, hurts nodes
//! with many VMs); noise N(0, (2 + 1.5·|x3|)²); the logged action is
//! migrate with probability σ(1.5·x0 + 0.8·x4 − 0.5), the legacy rule the
//! same score's sign. An interruption is an event whose downtime exceeds
//! 10 minutes.

use nimbus_learn::Matrix;
use nimbus_learn::causal::{CausalForest, LinearCate, TLearner, cross_fit, residuals};
use nimbus_learn::tree::TreeParams;
use nimbus_sim::output::{Better, Metric, RunOutput};
use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::rng::SimRng;

/// Features per event.
pub const FEATURES: usize = 6;

/// One event with both potential outcomes (for evaluation).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Signals.
    pub x: [f64; FEATURES],
    /// Downtime if rebooted, minutes.
    pub y0: f64,
    /// Downtime if migrated, minutes.
    pub y1: f64,
    /// The logged action.
    pub logged: u8,
}

/// True effect of migrating.
pub fn true_effect(x: &[f64]) -> f64 {
    -6.0 + 4.0 * x[4] - 2.0 * x[2] + if x[0] > 1.0 { 3.0 } else { 0.0 }
}

fn legacy_score(x: &[f64]) -> f64 {
    1.5 * x[0] + 0.8 * x[4] - 0.5
}

/// The legacy rule's action.
pub fn legacy(x: &[f64]) -> u8 {
    u8::from(legacy_score(x) > 0.0)
}

/// `n` events.
pub fn generate(n: usize, rng: &mut SimRng) -> Vec<Event> {
    (0..n)
        .map(|_| {
            let mut x = [0.0; FEATURES];
            for v in &mut x {
                *v = rng.normal(0.0, 1.0);
            }
            let base = 12.0 + 3.0 * x[0] + 2.0 * x[3] + 1.5 * x[4] + x[5];
            let noise = rng.normal(0.0, 2.0 + 1.5 * x[3].abs());
            let p = 1.0 / (1.0 + (-legacy_score(&x)).exp());
            let logged = u8::from(rng.bernoulli(p));
            Event { x, y0: base + noise, y1: base + true_effect(&x) + noise, logged }
        })
        .collect()
}

/// Which estimator a policy uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    /// The legacy rule.
    Legacy,
    /// The true effect.
    Oracle,
    /// One forest per action.
    TLearner,
    /// Double machine learning with a linear effect.
    Dml,
    /// The honest causal forest, with fallback where its trees disagree.
    Forest {
        /// Fall back to the legacy rule where uncertain.
        fallback: bool,
    },
}

/// A policy's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Estimator.
    pub choice: Choice,
    /// Migration's resource cost, minutes of downtime it must save.
    pub cost: f64,
    /// Half-width of the interval in standard errors.
    pub z: f64,
}

/// Parameters `deoxys` accepts.
pub const PARAMS: &[&str] = &["estimator", "fallback", "cost", "z"];

impl Policy {
    /// `deoxys`: `estimator` (forest | dml), `fallback` (true), `cost`
    /// (0.5), `z` (1.96).
    pub fn deoxys(p: &Params) -> Result<Policy, ParamError> {
        p.finish(PARAMS)?;
        let choice = match p.choice_or("estimator", &["forest", "dml"], "forest")? {
            "dml" => Choice::Dml,
            _ => Choice::Forest { fallback: p.bool_or("fallback", true)? },
        };
        Ok(Policy { choice, cost: p.f64_in("cost", 0.5, 0.0..=1e6)?, z: p.f64_in("z", 1.96, 0.0..=100.0)? })
    }

    /// A baseline without parameters.
    pub fn baseline(choice: Choice) -> Policy {
        Policy { choice, cost: 0.0, z: 1.96 }
    }
}

/// Data sizes and model sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Study {
    /// Logged events to learn from.
    pub train: usize,
    /// Events to evaluate on.
    pub test: usize,
    /// Trees per forest.
    pub trees: usize,
}

/// Learns from logged events and evaluates `policy` on fresh ones.
pub fn run(study: &Study, policy: &Policy, rng: &mut SimRng) -> RunOutput {
    let train = generate(study.train, rng);
    let test = generate(study.test, rng);
    let x = Matrix::from_rows(&train.iter().map(|e| e.x.to_vec()).collect::<Vec<_>>());
    let a: Vec<f64> = train.iter().map(|e| f64::from(e.logged)).collect();
    let y: Vec<f64> = train.iter().map(|e| if e.logged == 1 { e.y1 } else { e.y0 }).collect();
    let params = TreeParams { max_depth: 10, min_leaf: 20, mtry: 4 };
    // The forest runs in every learned policy's study too, to mark the
    // uncertain region the same way for all.
    let needs_residuals = !matches!(policy.choice, Choice::Legacy | Choice::Oracle | Choice::TLearner);
    let (forest, dml) = if needs_residuals {
        let (m, e) = cross_fit(&x, &a, &y, 2, study.trees, &params, rng);
        let (ry, ra) = residuals(&a, &y, &m, &e);
        let forest = CausalForest::fit(&x, &ry, &ra, study.trees, &params, rng);
        let dml = LinearCate::fit(&x, &ry, &ra);
        (Some(forest), dml)
    } else {
        (None, None)
    };
    let t_learner =
        matches!(policy.choice, Choice::TLearner).then(|| TLearner::fit(&x, &a, &y, study.trees, &params, rng));
    let (mut downtime, mut regret, mut interrupted, mut migrated, mut fell_back) = (0.0, 0.0, 0u64, 0u64, 0u64);
    let (mut sq_err, mut estimated) = (0.0, 0u64);
    let (mut uncertain, mut uncertain_regret) = (0u64, 0.0);
    for ev in &test {
        let tau = true_effect(&ev.x);
        let estimate: Option<(f64, Option<f64>)> = match policy.choice {
            Choice::Legacy | Choice::Oracle => None,
            Choice::TLearner => t_learner.as_ref().map(|t| (t.effect(&ev.x), None)),
            Choice::Dml => dml.as_ref().map(|d| (d.effect(&ev.x), None)),
            Choice::Forest { .. } => forest.as_ref().map(|f| {
                let (mean, sd) = f.effect(&ev.x);
                (mean, Some(policy.z * sd / (study.trees.max(1) as f64).sqrt()))
            }),
        };
        let mut action = match (policy.choice, estimate) {
            (Choice::Oracle, _) => u8::from(tau < -policy.cost),
            (_, Some((t, _))) => u8::from(t < -policy.cost),
            _ => legacy(&ev.x),
        };
        if let Some((t, width)) = estimate {
            sq_err += (t - tau) * (t - tau);
            estimated += 1;
            let is_uncertain = width.is_some_and(|w| (t + policy.cost).abs() < w);
            if is_uncertain {
                uncertain += 1;
                if matches!(policy.choice, Choice::Forest { fallback: true }) {
                    action = legacy(&ev.x);
                    fell_back += 1;
                }
            }
        }
        let got = if action == 1 { ev.y1 } else { ev.y0 };
        let oracle_got = if tau < 0.0 { ev.y1 } else { ev.y0 };
        downtime += got;
        regret += got - oracle_got;
        if estimate.is_some_and(|(t, w)| w.is_some_and(|w| (t + policy.cost).abs() < w)) {
            uncertain_regret += got - oracle_got;
        }
        interrupted += u64::from(got > 10.0);
        migrated += u64::from(action);
    }
    let n = test.len().max(1) as f64;
    let m = |name: &str, v: f64, b: Better| Metric::new(name, v, b);
    let metrics = vec![
        m("events", test.len() as f64, Better::Neither),
        m("downtime_min_mean", downtime / n, Better::Lower),
        m("regret_min_mean", regret / n, Better::Lower),
        m("interruption_pct", 100.0 * interrupted as f64 / n, Better::Lower),
        m("migrate_pct", 100.0 * migrated as f64 / n, Better::Neither),
        m("pehe_min", if estimated > 0 { (sq_err / estimated as f64).sqrt() } else { f64::NAN }, Better::Lower),
        m("uncertain_pct", if forest.is_some() { 100.0 * uncertain as f64 / n } else { f64::NAN }, Better::Neither),
        m(
            "uncertain_regret_min_mean",
            if uncertain > 0 { uncertain_regret / uncertain as f64 } else { f64::NAN },
            Better::Lower,
        ),
        m("fallback_pct", 100.0 * fell_back as f64 / n, Better::Neither),
    ];
    RunOutput { metrics, ..RunOutput::default() }
}

/// Every metric [`run`] reports.
pub const METRICS: &[&str] = &[
    "events",
    "downtime_min_mean",
    "regret_min_mean",
    "interruption_pct",
    "migrate_pct",
    "pehe_min",
    "uncertain_pct",
    "uncertain_regret_min_mean",
    "fallback_pct",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_confounded_and_heterogeneous() {
        let mut rng = nimbus_sim::rng::RngStreams::new(1).stream("t");
        let ev = generate(20_000, &mut rng);
        // Migrated events differ from rebooted ones in their signals.
        let mean_x0 = |a: u8| {
            let v: Vec<f64> = ev.iter().filter(|e| e.logged == a).map(|e| e.x[0]).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(mean_x0(1) - mean_x0(0) > 0.8);
        // The effect changes sign across events.
        let helps = ev.iter().filter(|e| true_effect(&e.x) < 0.0).count();
        assert!(helps > 12_000 && helps < 19_000, "{helps}");
        // Both actions are logged everywhere the legacy rule runs.
        assert!(ev.iter().filter(|e| e.logged != legacy(&e.x)).count() > 2_000);
    }
}
