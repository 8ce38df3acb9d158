//! The registry of serving policies: a replica scheduler, a waiting-queue
//! order and a dispatcher (a router or QLM), with their parameters.

use nimbus_sim::params::{ParamError, Params};

use crate::qlm::{Estimator, Placement, QlmConfig, Reorder};
use crate::replica::{QueueOrder, SchedulerKind};
use crate::router::RouterKind;

/// Paper system or baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A SoCC'24 system.
    Paper,
    /// A baseline it compares against.
    Baseline,
}

/// What feeds the replicas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DispatchSpec {
    /// A router at arrival.
    Router(RouterKind),
    /// QLM's virtual queues.
    Qlm(QlmConfig),
}

/// How MoE deployments (the scenario's `[moe]`) are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoeMode {
    /// Not a MoE comparison: one deployment per replica.
    None,
    /// MoEsaic: every deployment on each replica, experts shared.
    Shared,
    /// One replica (full copy) per deployment.
    Dedicated,
}

/// A built policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicySpec {
    /// Replica scheduler.
    pub scheduler: SchedulerKind,
    /// Waiting-queue order.
    pub order: QueueOrder,
    /// Dispatch.
    pub dispatch: DispatchSpec,
    /// MoE placement.
    pub moe: MoeMode,
}

/// A registry entry.
pub struct PolicyInfo {
    /// Name in scenarios.
    pub name: &'static str,
    /// Paper or baseline.
    pub kind: PolicyKind,
    /// Citation.
    pub source: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Accepted parameters.
    pub params: &'static [&'static str],
    /// Builds it.
    pub build: fn(&Params) -> Result<PolicySpec, ParamError>,
}

const SCHEDULERS: [&str; 3] = ["vllm", "sarathi", "orca"];

fn scheduler(params: &Params, default: &str) -> Result<SchedulerKind, ParamError> {
    let name = params.choice_or("scheduler", &SCHEDULERS, default)?;
    let max_tokens = params.u32_in("max_tokens", 4096, 1..=1 << 20)?;
    let chunk = params.u32_in("chunk", 512, 1..=1 << 20)?;
    Ok(match name {
        "sarathi" => SchedulerKind::Sarathi { chunk },
        "orca" => SchedulerKind::Orca,
        _ => SchedulerKind::Vllm { max_tokens },
    })
}

fn router(params: &Params) -> Result<RouterKind, ParamError> {
    let name = params.choice_or("router", &RouterKind::NAMES, "lor")?;
    Ok(RouterKind::parse(name).unwrap_or(RouterKind::LeastOutstanding))
}

fn routed(params: &Params, default_scheduler: &str, order: QueueOrder) -> Result<PolicySpec, ParamError> {
    let spec = PolicySpec {
        scheduler: scheduler(params, default_scheduler)?,
        order,
        dispatch: DispatchSpec::Router(router(params)?),
        moe: MoeMode::None,
    };
    params.finish(&["scheduler", "max_tokens", "chunk", "router"])?;
    Ok(spec)
}

fn qlm(params: &Params) -> Result<PolicySpec, ParamError> {
    let scheduler = scheduler(params, "vllm")?;
    let estimator = match params.choice_or("estimator", &["mean", "percentile"], "mean")? {
        "percentile" => {
            let p = params.f64_or("percentile", 0.9)?;
            if !(0.5..1.0).contains(&p) {
                return Err(params.error("percentile", "must be in [0.5, 1)"));
            }
            Estimator::Percentile(normal_quantile(p))
        }
        _ => Estimator::Mean,
    };
    let reorder = match params.choice_or("reorder", &["edf", "milp"], "edf")? {
        "milp" => Reorder::Milp { max_groups: params.usize_in("milp_max_groups", 8, 2..=32)? },
        _ => Reorder::Edf,
    };
    let placement = match params.choice_or("placement", &["rwt", "random"], "rwt")? {
        "random" => Placement::Random,
        _ => Placement::Rwt,
    };
    let config = QlmConfig {
        estimator,
        reorder,
        placement,
        group_size: params.usize_in("group_size", 16, 1..=1_000_000)?,
        pull_limit: params.usize_in("pull_limit", 0, 0..=1_000_000)?,
        prior_output_mean: params.f64_in("prior_output_tokens", 100.0, 1e-3..=1e7)?,
        evict: params.bool_or("evict", true)?,
        evict_margin_s: params.f64_in("evict_margin_s", 60.0, 0.0..=1e9)?,
    };
    params.finish(&[
        "scheduler",
        "max_tokens",
        "chunk",
        "estimator",
        "percentile",
        "reorder",
        "milp_max_groups",
        "placement",
        "group_size",
        "pull_limit",
        "prior_output_tokens",
        "evict",
        "evict_margin_s",
    ])?;
    Ok(PolicySpec { scheduler, order: QueueOrder::Edf, dispatch: DispatchSpec::Qlm(config), moe: MoeMode::None })
}

fn moe(params: &Params, mode: MoeMode) -> Result<PolicySpec, ParamError> {
    let spec = PolicySpec {
        scheduler: scheduler(params, "vllm")?,
        order: QueueOrder::Fcfs,
        dispatch: DispatchSpec::Router(router(params)?),
        moe: mode,
    };
    params.finish(&["scheduler", "max_tokens", "chunk", "router"])?;
    Ok(spec)
}

/// The standard normal quantile (Acklam's rational approximation, relative
/// error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Every policy.
pub static REGISTRY: &[PolicyInfo] = &[
    PolicyInfo {
        name: "vllm",
        kind: PolicyKind::Baseline,
        source: "Kwon et al., SOSP'23 (vLLM v0 scheduler, as in Vidur)",
        summary: "prefill-first FCFS continuous batching over paged KV; newest request preempted",
        params: &["router", "max_tokens"],
        build: |p| routed(p, "vllm", QueueOrder::Fcfs),
    },
    PolicyInfo {
        name: "sarathi",
        kind: PolicyKind::Baseline,
        source: "Agrawal et al., OSDI'24 (Sarathi-Serve)",
        summary: "stall-free batching: decodes first, then chunked prefills within a token budget",
        params: &["router", "chunk"],
        build: |p| routed(p, "sarathi", QueueOrder::Fcfs),
    },
    PolicyInfo {
        name: "orca",
        kind: PolicyKind::Baseline,
        source: "Yu et al., OSDI'22 (Orca)",
        summary: "iteration-level batching; each request reserves KV for the longest sequence",
        params: &["router"],
        build: |p| routed(p, "orca", QueueOrder::Fcfs),
    },
    PolicyInfo {
        name: "edf",
        kind: PolicyKind::Baseline,
        source: "QLM SoCC'24 baseline",
        summary: "replica waiting queues in earliest-due order behind a router",
        params: &["scheduler", "router", "max_tokens", "chunk"],
        build: |p| routed(p, "vllm", QueueOrder::Edf),
    },
    PolicyInfo {
        name: "qlm",
        kind: PolicyKind::Paper,
        source: "Patke et al., SoCC'24 (QLM)",
        summary: "request groups in virtual queues, waiting-time estimates, EDF/MILP reordering, pulling, model swaps",
        params: &[
            "scheduler",
            "estimator",
            "percentile",
            "reorder",
            "milp_max_groups",
            "placement",
            "group_size",
            "pull_limit",
            "prior_output_tokens",
            "evict",
            "evict_margin_s",
        ],
        build: qlm,
    },
    PolicyInfo {
        name: "moesaic",
        kind: PolicyKind::Paper,
        source: "MoEsaic, SoCC'24",
        summary: "all MoE deployments on each replica, identical experts stored once and batched across deployments",
        params: &["scheduler", "router"],
        build: |p| moe(p, MoeMode::Shared),
    },
    PolicyInfo {
        name: "dedicated",
        kind: PolicyKind::Baseline,
        source: "MoEsaic SoCC'24 baseline",
        summary: "one replica with a full copy of the MoE model per deployment",
        params: &["scheduler", "router"],
        build: |p| moe(p, MoeMode::Dedicated),
    },
];

/// Finds a policy.
pub fn find(name: &str) -> Option<&'static PolicyInfo> {
    REGISTRY.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_by_table() {
        for (p, z) in [(0.5, 0.0), (0.9, 1.281_551_565_5), (0.99, 2.326_347_874), (0.01, -2.326_347_874)] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}");
        }
    }
}
