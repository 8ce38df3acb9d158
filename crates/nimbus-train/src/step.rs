//! The training-step cost model: how long one optimiser step of a model
//! takes on a cluster under a parallelism plan, and whether it fits in
//! device memory.
//!
//! - **Compute**: a roofline per layer, `max(FLOPs / (peak × efficiency),
//!   bytes / HBM bandwidth)`, forward once, backward at twice the forward
//!   (plus one more forward under activation checkpointing). Tensor
//!   parallelism divides every layer but the element-wise ones.
//! - **Pipeline**: layers split into `pp` contiguous stages of balanced
//!   FLOPs; 1F1B over `m` micro-batches takes `(m + pp − 1)` times the
//!   slowest stage's micro-batch time, plus the activation hand-offs.
//! - **Tensor parallelism**: Megatron's two all-reduces per block (one
//!   after attention, one after the MLP), forward and backward, of the
//!   block's output, inside the node.
//! - **Data parallelism**: the gradients of a device's shard cross the
//!   data-parallel group by ring or tree all-reduce (ZeRO-1: a
//!   reduce-scatter and an all-gather of the same volume), or by
//!   all-gather for codecs whose payloads cannot be summed; a codec's
//!   ratio shrinks the payload and its encode/decode rate adds time.
//!   A fraction `overlap` of that time may hide under the backward pass.
//! - **Collectives** are α–β: a ring all-reduce of `S` bytes over `p`
//!   members costs `2(p−1)α + 2(p−1)/p · S/B`; a (double binary) tree
//!   `2⌈log₂p⌉α + 2S/B`; an all-gather of `S` per member `(p−1)α + (p−1)S/B`.
//!   A group inside one node uses the device link; one that spans nodes
//!   uses each device's share of its node's NIC.
//! - **Memory**: BF16 weights and gradients, FP32 master weights and Adam
//!   moments (16 bytes per parameter; ZeRO-1 divides the 12 optimiser
//!   bytes by `dp`), plus the activations of the micro-batches in flight
//!   (`pp` under 1F1B; only layer outputs under checkpointing).
//!
//! What is modelled, not measured: efficiency (default 0.5 of peak) is an
//! assumption, not a calibration; collectives ignore congestion and NCCL's
//! protocol switches.

use crate::compress::Collective;
use crate::models::{LayerKind, ModelTable};

/// An accelerator's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Accelerator {
    /// Name.
    pub name: &'static str,
    /// Dense BF16/FP16 peak, TFLOP/s.
    pub bf16_tflops: f64,
    /// Device memory, GiB.
    pub memory_gib: f64,
    /// Memory bandwidth, GB/s.
    pub hbm_gbps: f64,
    /// Where the figures come from.
    pub source: &'static str,
}

/// Trainium (trn1), per chip.
pub const TRAINIUM: Accelerator = Accelerator {
    name: "trn1",
    bf16_tflops: 190.0,
    memory_gib: 32.0,
    hbm_gbps: 880.0,
    source: "AWS Neuron documentation, Trainium architecture: 190 FP16/BF16 TFLOPS, 32 GiB at 820 GiB/s per chip",
};

/// One TensorCore of a Cloud TPU v3 chip (a chip has two).
pub const TPU_V3_CORE: Accelerator = Accelerator {
    name: "tpu-v3",
    bf16_tflops: 61.5,
    memory_gib: 16.0,
    hbm_gbps: 450.0,
    source: "Google Cloud TPU system architecture: TPU v3 chip 123 bf16 TFLOPS, 32 GiB HBM at 900 GB/s, two TensorCores; halved per core",
};

/// Accelerators [`accelerator`] knows besides the GPU catalog's.
pub const NON_GPU: &[&str] = &["trn1", "tpu-v3"];

/// Accelerator by name: `trn1`, `tpu-v3` (per core) or a GPU of the
/// catalog in `nimbus-model`.
pub fn accelerator(name: &str) -> Option<Accelerator> {
    match name {
        "trn1" | "trainium" => return Some(TRAINIUM),
        "tpu-v3" => return Some(TPU_V3_CORE),
        _ => {}
    }
    nimbus_model::hardware::gpu(name).map(|g| Accelerator {
        name: g.name,
        bf16_tflops: g.fp16_tflops,
        memory_gib: g.memory_gib,
        hbm_gbps: g.memory_bandwidth_gbps,
        source: g.source,
    })
}

/// The machines: identical nodes of identical devices.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The device.
    pub device: Accelerator,
    /// Devices per node.
    pub per_node: u32,
    /// Nodes.
    pub nodes: u32,
    /// Device-to-device bandwidth inside a node, GB/s per direction.
    pub intra_gbps: f64,
    /// Network bandwidth per node, Gbit/s.
    pub nic_gbit: f64,
    /// Latency per collective hop inside a node, µs.
    pub intra_latency_us: f64,
    /// Latency per collective hop across nodes, µs.
    pub inter_latency_us: f64,
    /// Measured all-reduce medians by (members, devices per node) — Vidur's
    /// NCCL profiles (`vidur-profiles/profiling/network/*/all_reduce.csv`)
    /// — used instead of the α–β ring or tree where the group's shape is
    /// in the table.
    pub nccl: Option<std::sync::Arc<nimbus_trace::llm::CollectiveTimes>>,
}

impl Cluster {
    /// Devices in all.
    pub fn devices(&self) -> u32 {
        self.per_node * self.nodes
    }
}

/// All-reduce algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ring.
    Ring,
    /// Double binary tree.
    Tree,
    /// Two-dimensional torus (TPU pods): a ring reduce-scatter along rows,
    /// a ring all-reduce of the row's shard along columns, a ring
    /// all-gather along rows.
    Torus,
}

/// A parallelism plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Data-parallel replicas.
    pub dp: u32,
    /// Tensor-parallel degree (inside a node).
    pub tp: u32,
    /// Pipeline stages.
    pub pp: u32,
    /// Micro-batches per step per replica.
    pub microbatches: u32,
    /// Samples per micro-batch.
    pub micro_batch: u32,
    /// ZeRO stage 1 (optimiser state sharded over `dp`).
    pub zero1: bool,
    /// Activation checkpointing (recompute the forward in the backward).
    pub checkpointing: bool,
}

impl Plan {
    /// Samples per step across the cluster.
    pub fn global_batch(&self) -> u64 {
        u64::from(self.dp) * u64::from(self.microbatches) * u64::from(self.micro_batch)
    }
}

/// How gradients travel between data-parallel replicas.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientExchange {
    /// Payload bytes over FP32 gradient bytes.
    pub ratio: f64,
    /// The collective.
    pub collective: Collective,
    /// Encoding rate, GB/s of FP32 gradient (∞ for none).
    pub encode_gbps: f64,
    /// Decoding rate, GB/s of FP32 gradient (∞ for none).
    pub decode_gbps: f64,
}

impl GradientExchange {
    /// Uncompressed FP32 all-reduce.
    pub fn fp32() -> GradientExchange {
        GradientExchange {
            ratio: 1.0,
            collective: Collective::AllReduce,
            encode_gbps: f64::INFINITY,
            decode_gbps: f64::INFINITY,
        }
    }
}

/// Settings that are not the plan's.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Fraction of peak FLOP/s the kernels reach.
    pub efficiency: f64,
    /// Bytes per activation and weight value in compute (2 for BF16).
    pub compute_bytes: f64,
    /// Bytes per gradient value before any codec (4 for FP32 gradients).
    pub gradient_bytes: f64,
    /// All-reduce algorithm.
    pub algorithm: Algorithm,
    /// Fraction of data-parallel communication hidden under the backward.
    pub overlap: f64,
    /// The gradient exchange.
    pub exchange: GradientExchange,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            efficiency: 0.5,
            compute_bytes: 2.0,
            gradient_bytes: 4.0,
            algorithm: Algorithm::Ring,
            overlap: 0.0,
            exchange: GradientExchange::fp32(),
        }
    }
}

/// One step's cost.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCost {
    /// Forward and backward compute including the pipeline's bubble, s.
    pub compute_s: f64,
    /// Tensor-parallel all-reduces, s.
    pub tp_comm_s: f64,
    /// Pipeline activation hand-offs, s.
    pub pp_comm_s: f64,
    /// Exposed data-parallel gradient exchange, s.
    pub dp_comm_s: f64,
    /// Encoding and decoding, s.
    pub codec_s: f64,
    /// The step, s.
    pub total_s: f64,
    /// Peak memory per device, GiB.
    pub memory_gib: f64,
    /// Whether it fits in device memory.
    pub fits: bool,
}

/// Why a plan cannot run on a cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The plan's device count differs from the cluster's.
    #[error("dp {dp} × tp {tp} × pp {pp} = {need} devices; the cluster has {have}")]
    Devices {
        /// Data-parallel degree.
        dp: u32,
        /// Tensor-parallel degree.
        tp: u32,
        /// Pipeline degree.
        pp: u32,
        /// Devices the plan needs.
        need: u64,
        /// Devices in the cluster.
        have: u32,
    },
    /// Tensor parallelism must stay inside a node.
    #[error("tensor parallelism {tp} exceeds {per_node} devices per node")]
    TensorSpansNodes {
        /// Tensor-parallel degree.
        tp: u32,
        /// Devices per node.
        per_node: u32,
    },
    /// More stages than layers, or a zero degree.
    #[error("{0}")]
    Shape(String),
}

/// α–β time of a collective of `bytes` per member over `members` on links
/// of `gbps` GB/s and `latency_us` per hop.
pub fn collective_s(
    kind: Collective,
    algorithm: Algorithm,
    bytes: f64,
    members: u32,
    gbps: f64,
    latency_us: f64,
) -> f64 {
    if members <= 1 {
        return 0.0;
    }
    let p = f64::from(members);
    let (alpha, beta) = (latency_us * 1e-6, 1.0 / (gbps * 1e9));
    match (kind, algorithm) {
        (Collective::AllReduce, Algorithm::Ring) => 2.0 * (p - 1.0) * alpha + 2.0 * (p - 1.0) / p * bytes * beta,
        (Collective::AllReduce, Algorithm::Tree) => 2.0 * p.log2().ceil() * alpha + 2.0 * bytes * beta,
        (Collective::AllReduce, Algorithm::Torus) => {
            let (rows, cols) = torus_shape(members);
            let ring = |n: f64, s: f64| 2.0 * (n - 1.0) * alpha + 2.0 * (n - 1.0) / n * s * beta;
            ring(rows, bytes) + ring(cols, bytes / rows)
        }
        (Collective::AllGather, _) => (p - 1.0) * alpha + (p - 1.0) * bytes * beta,
    }
}

/// The most nearly square `rows × cols` factorisation of `members` with
/// `rows ≤ cols` (a prime count is one ring).
fn torus_shape(members: u32) -> (f64, f64) {
    let mut rows = (f64::from(members).sqrt() as u32).max(1);
    while !members.is_multiple_of(rows) {
        rows -= 1;
    }
    (f64::from(rows), f64::from(members / rows))
}

/// An all-reduce of `bytes` over `members` devices, `per_node` of them in
/// each node: the measured table's interpolation where it has that shape,
/// else the α–β model.
fn allreduce_s(
    cluster: &Cluster,
    algorithm: Algorithm,
    bytes: f64,
    members: u32,
    per_node: u32,
    link: (f64, f64),
) -> f64 {
    if members <= 1 {
        return 0.0;
    }
    if let Some(points) = cluster.nccl.as_ref().and_then(|t| t.get(&(members, per_node))) {
        return nimbus_model::curve::interpolate(points.iter().map(|&(b, ms)| (b as f64, ms)), bytes) / 1e3;
    }
    collective_s(Collective::AllReduce, algorithm, bytes, members, link.0, link.1)
}

/// Splits layer FLOPs into `stages` contiguous non-empty groups of
/// near-equal sums (`stages` ≤ layers): the first index of each stage.
/// Stage `k` starts at the first layer whose preceding FLOPs reach `k/stages`
/// of the total, kept at least one layer after the previous start and
/// early enough to leave a layer for every later stage.
fn stage_starts(flops: &[f64], stages: usize) -> Vec<usize> {
    let n = flops.len();
    let mut before = Vec::with_capacity(n + 1);
    before.push(0.0);
    for f in flops {
        before.push(before.last().copied().unwrap_or(0.0) + f);
    }
    let total = before[n];
    let mut starts = vec![0];
    for k in 1..stages {
        let target = total * k as f64 / stages as f64;
        let (lo, hi) = (starts[k - 1] + 1, n - (stages - k));
        let mut i = lo;
        while i < hi && before[i] < target {
            i += 1;
        }
        starts.push(i);
    }
    starts
}

/// The cost of one step of `model` on `cluster` under `plan`.
pub fn step_cost(model: &ModelTable, cluster: &Cluster, plan: &Plan, opts: &Options) -> Result<StepCost, PlanError> {
    if plan.dp == 0 || plan.tp == 0 || plan.pp == 0 || plan.microbatches == 0 || plan.micro_batch == 0 {
        return Err(PlanError::Shape("every degree and batch size must be at least 1".into()));
    }
    let need = u64::from(plan.dp) * u64::from(plan.tp) * u64::from(plan.pp);
    if need != u64::from(cluster.devices()) {
        return Err(PlanError::Devices { dp: plan.dp, tp: plan.tp, pp: plan.pp, need, have: cluster.devices() });
    }
    if plan.tp > cluster.per_node {
        return Err(PlanError::TensorSpansNodes { tp: plan.tp, per_node: cluster.per_node });
    }
    if plan.pp as usize > model.layers.len() {
        return Err(PlanError::Shape(format!("{} stages for {} layers", plan.pp, model.layers.len())));
    }
    let dev = &cluster.device;
    let (tp, mb) = (f64::from(plan.tp), f64::from(plan.micro_batch));
    let bytes = opts.compute_bytes;
    let peak = dev.bf16_tflops * 1e12 * opts.efficiency;
    let hbm = dev.hbm_gbps * 1e9;
    // Forward time of each layer for one micro-batch on one device.
    let layer_s: Vec<f64> = model
        .layers
        .iter()
        .map(|l| {
            let split = if l.kind == LayerKind::Elementwise { 1.0 } else { tp };
            let flops = l.flops * mb / split;
            let traffic = (l.params as f64 / split + 2.0 * l.activations as f64 * mb / split) * bytes;
            (flops / peak).max(traffic / hbm)
        })
        .collect();
    let starts = stage_starts(&model.layers.iter().map(|l| l.flops).collect::<Vec<_>>(), plan.pp as usize);
    let mut bounds = starts.clone();
    bounds.push(model.layers.len());
    let passes = if plan.checkpointing { 4.0 } else { 3.0 };
    let stage_s = bounds.windows(2).map(|w| layer_s[w[0]..w[1]].iter().sum::<f64>() * passes).fold(0.0, f64::max);
    let m = f64::from(plan.microbatches);
    let compute_s = (m + f64::from(plan.pp) - 1.0) * stage_s;
    let inter_per_device_gbps = cluster.nic_gbit / 8.0 / f64::from(cluster.per_node);
    // Tensor parallel: two all-reduces per block forward and backward, of
    // the dense layers' outputs, inside the node, per micro-batch.
    let tp_comm_s = if plan.tp > 1 {
        model
            .layers
            .iter()
            .filter(|l| l.kind == LayerKind::Dense && !l.name.starts_with("lm_head"))
            .map(|l| {
                let out = l.output as f64 * mb * bytes;
                let link = (cluster.intra_gbps, cluster.intra_latency_us);
                2.0 * allreduce_s(cluster, Algorithm::Ring, out, plan.tp, plan.tp, link)
            })
            .sum::<f64>()
            * m
            / f64::from(plan.pp)
    } else {
        0.0
    };
    // Pipeline: each stage boundary's output, forward and back, per
    // micro-batch; stages share a node while tp × pp fits in one.
    let pp_comm_s = if plan.pp > 1 {
        let crosses = plan.tp * plan.pp > cluster.per_node;
        let gbps = if crosses { inter_per_device_gbps } else { cluster.intra_gbps };
        let boundary = starts[1..].iter().map(|&s| model.layers[s - 1].output as f64).fold(0.0, f64::max);
        2.0 * m * boundary * mb * bytes / tp / (gbps * 1e9)
    } else {
        0.0
    };
    // Data parallel: the shard's gradients over the dp group.
    let shard_params = model.params() as f64 / tp / f64::from(plan.pp);
    let raw = shard_params * opts.gradient_bytes;
    let ex = &opts.exchange;
    let payload = raw * ex.ratio;
    let spans_nodes = plan.dp > 1 && u64::from(plan.tp * plan.pp) * u64::from(plan.dp) > u64::from(cluster.per_node);
    let (gbps, latency) = if spans_nodes {
        (inter_per_device_gbps, cluster.inter_latency_us)
    } else {
        (cluster.intra_gbps, cluster.intra_latency_us)
    };
    // The table's shapes are whole groups: dp alone (tp = pp = 1).
    let dp_raw_s = match ex.collective {
        Collective::AllReduce if plan.tp * plan.pp == 1 => {
            allreduce_s(cluster, opts.algorithm, payload, plan.dp, plan.dp.min(cluster.per_node), (gbps, latency))
        }
        kind => collective_s(kind, opts.algorithm, payload, plan.dp, gbps, latency),
    };
    let backward_s = compute_s * (passes - 1.0) / passes;
    let dp_comm_s = dp_raw_s - (opts.overlap.clamp(0.0, 1.0) * dp_raw_s).min(backward_s);
    let codec_s = if plan.dp > 1 && ex.ratio < 1.0 {
        let decoded = match ex.collective {
            Collective::AllGather => f64::from(plan.dp - 1) * raw,
            Collective::AllReduce => raw,
        };
        raw / (ex.encode_gbps * 1e9) + decoded / (ex.decode_gbps * 1e9)
    } else {
        0.0
    };
    // Memory per device.
    let optimiser = 12.0 / if plan.zero1 { f64::from(plan.dp) } else { 1.0 };
    let state = shard_params * (4.0 + optimiser);
    let stage_layers = |s: usize| bounds[s]..bounds[s + 1];
    let activations = (0..plan.pp as usize)
        .map(|s| {
            model.layers[stage_layers(s)]
                .iter()
                .map(|l| {
                    let kept = if plan.checkpointing { l.output } else { l.activations };
                    kept as f64 / if l.kind == LayerKind::Elementwise { 1.0 } else { tp }
                })
                .sum::<f64>()
        })
        .fold(0.0, f64::max)
        * mb
        * bytes
        * f64::from(plan.pp.min(plan.microbatches));
    let memory_gib = (state + activations) / f64::from(1u32 << 30);
    let total_s = compute_s + tp_comm_s + pp_comm_s + dp_comm_s + codec_s;
    Ok(StepCost {
        compute_s,
        tp_comm_s,
        pp_comm_s,
        dp_comm_s,
        codec_s,
        total_s,
        memory_gib,
        fits: memory_gib <= dev.memory_gib,
    })
}

/// Every plan for `cluster` with tensor parallelism a power of two within a
/// node, pipeline depths dividing the rest, the global batch held at
/// `global_batch` samples in micro-batches of `micro_batch`, each with and
/// without ZeRO-1 and checkpointing.
pub fn plans(cluster: &Cluster, global_batch: u32, micro_batch: u32) -> Vec<Plan> {
    let devices = cluster.devices();
    let mut out = Vec::new();
    let mut tp = 1;
    while tp <= cluster.per_node {
        if devices.is_multiple_of(tp) {
            for pp in (1..=devices / tp).filter(|pp| (devices / tp).is_multiple_of(*pp)) {
                let dp = devices / tp / pp;
                let per_replica = global_batch / dp;
                if per_replica == 0 || !per_replica.is_multiple_of(micro_batch) {
                    continue;
                }
                for zero1 in [false, true] {
                    for checkpointing in [false, true] {
                        out.push(Plan {
                            dp,
                            tp,
                            pp,
                            microbatches: per_replica / micro_batch,
                            micro_batch,
                            zero1,
                            checkpointing,
                        });
                    }
                }
            }
        }
        tp *= 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::model;

    fn cluster(nodes: u32) -> Cluster {
        Cluster {
            device: accelerator("a100").expect("a100"),
            per_node: 8,
            nodes,
            intra_gbps: 300.0,
            nic_gbit: 400.0,
            intra_latency_us: 5.0,
            inter_latency_us: 10.0,
            nccl: None,
        }
    }

    /// Ring all-reduce of 1 GB over 4 members at 10 GB/s, no latency:
    /// 2 × 3/4 × 0.1 s = 0.15 s; a tree 0.2 s; an all-gather of 1 GB each
    /// 0.3 s.
    #[test]
    fn collectives_by_hand() {
        let s = |k, a| collective_s(k, a, 1e9, 4, 10.0, 0.0);
        assert!((s(Collective::AllReduce, Algorithm::Ring) - 0.15).abs() < 1e-12);
        assert!((s(Collective::AllReduce, Algorithm::Tree) - 0.2).abs() < 1e-12);
        // A 2 × 2 torus moves what the ring does: 2 × 1/2 × 0.1 + 2 × 1/2 × 0.05.
        assert!((s(Collective::AllReduce, Algorithm::Torus) - 0.15).abs() < 1e-12);
        // Latency only: 16 members as 4 × 4 take 2 × 3 + 2 × 3 hops, a ring 2 × 15.
        let hops = |a| collective_s(Collective::AllReduce, a, 0.0, 16, 10.0, 1.0) / 1e-6;
        assert!((hops(Algorithm::Torus) - 12.0).abs() < 1e-9 && (hops(Algorithm::Ring) - 30.0).abs() < 1e-9);
        // A prime count is one ring.
        let p = |a| collective_s(Collective::AllReduce, a, 1e9, 7, 10.0, 1.0);
        assert!((p(Algorithm::Torus) - p(Algorithm::Ring)).abs() < 1e-15);
        assert!((s(Collective::AllGather, Algorithm::Ring) - 0.3).abs() < 1e-12);
        assert_eq!(collective_s(Collective::AllReduce, Algorithm::Ring, 1e9, 1, 10.0, 5.0), 0.0);
        // Latency: 2 × 3 hops × 5 µs.
        let lat = collective_s(Collective::AllReduce, Algorithm::Ring, 0.0, 4, 10.0, 5.0);
        assert!((lat - 30e-6).abs() < 1e-15);
    }

    /// ResNet-50, one A100, batch 32: 3 × 8.2 GFLOPs × 32 at 156 TFLOP/s
    /// ≈ 5 ms of compute, nothing else.
    #[test]
    fn single_device_is_compute_only() {
        let m = model("resnet50").expect("model");
        let mut c = cluster(1);
        c.per_node = 1;
        let plan = Plan { dp: 1, tp: 1, pp: 1, microbatches: 1, micro_batch: 32, zero1: false, checkpointing: false };
        let cost = step_cost(&m, &c, &plan, &Options::default()).expect("cost");
        let flops_bound = 3.0 * m.flops() * 32.0 / 156e12;
        assert!(cost.compute_s >= flops_bound && cost.compute_s < 2.0 * flops_bound, "{cost:?}");
        assert_eq!(cost.total_s, cost.compute_s);
        assert!(cost.fits);
    }

    #[test]
    fn compression_shrinks_the_exchange_and_all_gather_scales_worse() {
        let m = model("vgg16").expect("model");
        let c = Cluster { nic_gbit: 10.0, per_node: 1, nodes: 8, ..cluster(8) };
        let plan = Plan { dp: 8, tp: 1, pp: 1, microbatches: 1, micro_batch: 32, zero1: false, checkpointing: false };
        let base = step_cost(&m, &c, &plan, &Options::default()).expect("fp32");
        let gathered = |ratio: f64| {
            let opts = Options {
                exchange: GradientExchange {
                    ratio,
                    collective: Collective::AllGather,
                    encode_gbps: f64::INFINITY,
                    decode_gbps: f64::INFINITY,
                },
                ..Options::default()
            };
            step_cost(&m, &c, &plan, &opts).expect("codec")
        };
        // At a third of the volume, all-gather over 8 still moves 7/3 of
        // the gradient per device against the ring's 7/4.
        assert!(gathered(1.0 / 3.0).dp_comm_s > base.dp_comm_s);
        assert!(gathered(0.1).dp_comm_s < base.dp_comm_s);
    }

    #[test]
    fn plans_cover_the_cluster_and_bad_plans_are_refused() {
        let m = model("gpt3-6.7b").expect("model");
        let c = cluster(2);
        let all = plans(&c, 256, 1);
        assert!(!all.is_empty());
        for p in &all {
            assert_eq!(p.dp * p.tp * p.pp, 16);
            assert_eq!(p.global_batch(), 256);
            step_cost(&m, &c, p, &Options::default()).expect("valid");
        }
        let bad = Plan { dp: 3, tp: 1, pp: 1, microbatches: 1, micro_batch: 1, zero1: false, checkpointing: false };
        assert!(matches!(step_cost(&m, &c, &bad, &Options::default()), Err(PlanError::Devices { .. })));
        let wide = Plan { dp: 1, tp: 16, pp: 1, ..bad.clone() };
        assert!(matches!(step_cost(&m, &c, &wide, &Options::default()), Err(PlanError::TensorSpansNodes { .. })));
        // GPT-3 6.7B without sharding does not fit one 40 GB A100 per replica.
        let dp_only = Plan { dp: 16, tp: 1, pp: 1, microbatches: 16, micro_batch: 1, ..bad };
        assert!(!step_cost(&m, &c, &dp_only, &Options::default()).expect("cost").fits);
    }

    proptest::proptest! {
        #[test]
        fn stages_are_contiguous_and_non_empty(flops in proptest::collection::vec(0.0f64..1e9, 1..120), stages in 1usize..130) {
            let stages = stages.min(flops.len());
            let starts = stage_starts(&flops, stages);
            proptest::prop_assert_eq!(starts.len(), stages);
            proptest::prop_assert_eq!(starts[0], 0);
            proptest::prop_assert!(starts.windows(2).all(|w| w[0] < w[1]));
            proptest::prop_assert!(*starts.last().unwrap_or(&0) < flops.len());
        }
    }

    /// Vidur's measured NCCL all-reduce on 8 A100s (DGX) beside the α–β
    /// ring at NVLink3's 300 GB/s: the table replaces the ring where it
    /// has the group's shape (skipped without ../shared/data).
    #[test]
    fn measured_nccl_tables_replace_the_ring() {
        let path = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/vidur-profiles/profiling/network/a100_dgx/all_reduce.csv"
        ));
        if !path.is_file() {
            eprintln!("skipped: {} is absent", path.display());
            return;
        }
        let table = nimbus_trace::llm::read_vidur_collective(path).expect("table");
        let c = Cluster { nodes: 1, nccl: Some(std::sync::Arc::new(table)), ..cluster(1) };
        for mib in [1.0f64, 16.0, 64.0] {
            let bytes = mib * 1048576.0;
            let ring = collective_s(Collective::AllReduce, Algorithm::Ring, bytes, 8, 300.0, 5.0);
            let measured = allreduce_s(&c, Algorithm::Ring, bytes, 8, 8, (300.0, 5.0));
            eprintln!(
                "8 x A100 all-reduce of {mib} MiB: ring model {:.3} ms, NCCL measured {:.3} ms",
                ring * 1e3,
                measured * 1e3
            );
            assert!(measured > 0.0 && (0.3..3.0).contains(&(ring / measured)), "{ring} vs {measured}");
        }
        // A shape the table lacks falls back to the model.
        assert_eq!(
            allreduce_s(&c, Algorithm::Ring, 1e6, 3, 3, (300.0, 5.0)),
            collective_s(Collective::AllReduce, Algorithm::Ring, 1e6, 3, 300.0, 5.0)
        );
    }

    #[test]
    fn zero1_and_checkpointing_trade_memory_for_time() {
        let m = model("gpt3-6.7b").expect("model");
        let c = cluster(2);
        let base = Plan { dp: 2, tp: 8, pp: 1, microbatches: 8, micro_batch: 1, zero1: false, checkpointing: false };
        let cost = |p: &Plan| step_cost(&m, &c, p, &Options::default()).expect("cost");
        let z = cost(&Plan { zero1: true, ..base.clone() });
        let k = cost(&Plan { checkpointing: true, ..base.clone() });
        let b = cost(&base);
        assert!(z.memory_gib < b.memory_gib && (z.total_s - b.total_s).abs() < 1e-12);
        assert!(k.memory_gib < b.memory_gib && k.compute_s > b.compute_s);
    }
}
