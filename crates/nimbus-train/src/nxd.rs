//! NxD (SoCC'24, "Distributed Training of Large Language Models on AWS
//! Trainium"), modelled: the Neuron Distributed Training library's
//! parallelism choices — tensor, pipeline and data parallelism, ZeRO-1,
//! activation checkpointing — searched by the step cost model
//! ([`crate::step`]) on trn1.32xlarge nodes, against the same search on
//! p4d.24xlarge (8 × A100 40 GB; Megatron-style) at the same node count.
//!
//! The planner tries every plan of [`crate::step::plans`] and keeps the
//! fastest that fits in device memory; the run reports its step time,
//! tokens per second, model FLOPs utilisation and the dollars per million
//! tokens at on-demand prices.
//!
//! What is modelled, not measured: both devices reach the same fraction
//! of their peak (`efficiency`, 0.5 unless set per policy), so the ratio
//! of the two instances is mostly the ratio of their peaks (16 × 190 =
//! 3,040 against 8 × 312 = 2,496 BF16 TFLOP/s), bent by memory (32 GiB
//! per Trainium chip against 40 GiB per A100), links and the plan each
//! allows. NeuronLink-v2's per-device bandwidth is not published in the
//! Neuron documentation; 192 GB/s per direction is an assumption (a
//! parameter). Prices are us-east-1 on-demand list prices (unverified;
//! mechanisms.md): $21.50/h and $32.77/h.

use crate::models::ModelTable;
use crate::step::{Accelerator, Cluster, Options, Plan, StepCost, TRAINIUM, plans, step_cost};

/// An instance type.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Name.
    pub name: &'static str,
    /// Its accelerator.
    pub device: Accelerator,
    /// Accelerators per instance.
    pub devices: u32,
    /// Device-to-device bandwidth inside the instance, GB/s per direction.
    pub intra_gbps: f64,
    /// Network (EFA) per instance, Gbit/s.
    pub nic_gbit: f64,
    /// On-demand price, $/h.
    pub price_per_hour: f64,
    /// Where the figures come from.
    pub source: &'static str,
}

/// trn1.32xlarge.
pub fn trn1_32xlarge() -> Instance {
    Instance {
        name: "trn1.32xlarge",
        device: TRAINIUM,
        devices: 16,
        intra_gbps: 192.0,
        nic_gbit: 800.0,
        price_per_hour: 21.50,
        source: "AWS Neuron documentation (16 Trainium chips, 512 GiB, EFA 800 Gbps); NeuronLink-v2 bandwidth assumed; on-demand price unverified",
    }
}

/// p4d.24xlarge.
pub fn p4d_24xlarge() -> Result<Instance, String> {
    let a100 = crate::step::accelerator("a100").ok_or("the catalog lacks the A100")?;
    Ok(Instance {
        name: "p4d.24xlarge",
        device: a100,
        devices: 8,
        intra_gbps: 300.0,
        nic_gbit: 400.0,
        price_per_hour: 32.77,
        source: "AWS p4d.24xlarge: 8 x A100 40 GB on NVSwitch (600 GB/s bidirectional per GPU), EFA 400 Gbps; on-demand price unverified",
    })
}

/// The cluster of `nodes` such instances.
pub fn cluster(instance: &Instance, nodes: u32) -> Cluster {
    Cluster {
        device: instance.device.clone(),
        per_node: instance.devices,
        nodes,
        intra_gbps: instance.intra_gbps,
        nic_gbit: instance.nic_gbit,
        intra_latency_us: 5.0,
        inter_latency_us: 15.0,
        nccl: None,
    }
}

/// The planner's pick.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The plan.
    pub plan: Plan,
    /// Its cost.
    pub cost: StepCost,
    /// Plans evaluated.
    pub evaluated: usize,
    /// Of which fit in memory.
    pub fitting: usize,
}

/// The fastest plan that fits, or `None` when none does.
pub fn best_plan(
    model: &ModelTable,
    cluster: &Cluster,
    global_batch: u32,
    micro_batch: u32,
    opts: &Options,
) -> Option<Choice> {
    let candidates = plans(cluster, global_batch, micro_batch);
    let mut best: Option<(Plan, StepCost)> = None;
    let mut fitting = 0;
    for plan in &candidates {
        let Ok(cost) = step_cost(model, cluster, plan, opts) else { continue };
        if !cost.fits {
            continue;
        }
        fitting += 1;
        if best.as_ref().is_none_or(|(_, b)| cost.total_s < b.total_s) {
            best = Some((plan.clone(), cost));
        }
    }
    best.map(|(plan, cost)| Choice { plan, cost, evaluated: candidates.len(), fitting })
}

/// Model FLOPs utilisation of a step: forward and backward FLOPs (3× the
/// forward; recomputation not counted) over the cluster's peak-seconds.
pub fn mfu(model: &ModelTable, global_batch: u32, step_s: f64, cluster: &Cluster) -> f64 {
    let flops = 3.0 * model.flops() * f64::from(global_batch);
    flops / (step_s * f64::from(cluster.devices()) * cluster.device.bf16_tflops * 1e12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::model;

    /// The cost arithmetic of mechanisms.md: a 1.246× speed-up at
    /// $21.50 against $32.77 an hour saves 1 − (21.50/32.77)/1.246 ≈ 47%.
    #[test]
    fn price_arithmetic() {
        let (t, p) = (trn1_32xlarge(), p4d_24xlarge().expect("p4d"));
        let saving = 1.0 - (t.price_per_hour / p.price_per_hour) / 1.246;
        assert!((saving - 0.473).abs() < 0.001, "{saving}");
    }

    #[test]
    fn the_planner_finds_a_fitting_plan_and_shards_large_models() {
        let m = model("llama2-7b").expect("model");
        for instance in [trn1_32xlarge(), p4d_24xlarge().expect("p4d")] {
            let c = cluster(&instance, 4);
            let choice = best_plan(&m, &c, 256, 1, &Options::default()).expect("a plan fits");
            assert!(choice.cost.fits && choice.fitting <= choice.evaluated);
            // 7B parameters at 16 bytes each cannot sit on one device.
            assert!(choice.plan.tp * choice.plan.pp > 1 || choice.plan.zero1, "{:?}", choice.plan);
            let u = mfu(&m, 256, choice.cost.total_s, &c);
            assert!(u > 0.0 && u <= 0.5 + 1e-9, "{} mfu {u}", instance.name);
        }
        // GPT-3 175B on one trn1 node does not fit at all.
        let big = model("gpt3-175b").expect("model");
        assert!(best_plan(&big, &cluster(&trn1_32xlarge(), 1), 16, 1, &Options::default()).is_none());
    }
}
