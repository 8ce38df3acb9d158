//! Building a train run from scenario parameters.
//!
//! `[workload] kind` picks the study:
//! - `gradients` (the default): real data-parallel training whose
//!   gradients pass through each policy's exchange, priced on a cluster by
//!   the step cost model ([`crate::step`]); policies `gcomp` and the
//!   gradient baselines;
//! - `checkpoints`: real training with a compressed checkpoint after every
//!   epoch and, by default, a restore from it ([`crate::restores`]);
//!   policies `inshrinkerator`, `uniform8-delta`, `zstd`, `uncompressed`.
//!   Keys: `data`, `network` (`mlp`), `batch` (64), `epochs` (10), `lr`,
//!   `momentum`, `train_images`, `validation` (1,000 training images held
//!   out for the codec's validation loss), `restore` (true); no
//!   `[cluster]`. Metrics: `accuracy_pct`, `test_loss`, `compression_x`
//!   (mean of raw ÷ compressed over the checkpoints), `compression_x_max`,
//!   `checkpoint_kb_mean`, `restores`.
//! - `gan`: data-parallel BigGAN training simulated over core counts
//!   ([`crate::paragan`]); policies `paragan` and `sync-gan`, each taking
//!   `staleness`, `pipeline` (`adaptive`, `static`), `layout` (`aware`,
//!   `default`), `threads`, `prefetch`, `detect_s`, `headroom`,
//!   `max_prefetch`. `[workload]`: `model` (`biggan-128`; 256, 512), `ch`
//!   (96), `batch_per_core` (8; weak scaling) or `global_batch` (strong),
//!   `n_dis` (2), `cores` ([8, 32, 128, 512, 1024]), `iterations` (1,000),
//!   `warmup`, `train_images`. `[cluster]`: `device` (`tpu-v3`),
//!   `efficiency` (0.5), `tile` (128 on TPUs), `cores_per_host` (8),
//!   `link_gbps` (80), `latency_us` (5), `algorithm` (`torus`), `jitter`
//!   (0.03); host I/O `image_kb` (110), `request_images` (32),
//!   `latency_ms` (30), `connection_mb_s` (100), `decode_ms` (4),
//!   `nic_gbit` (32), `vcpus` (96); congestion `normal_mean_s` (120),
//!   `congested_mean_s` (10; 0 turns it off), `congested_latency_x` (10),
//!   `congested_bandwidth_x` (0.25). Metrics at the largest count:
//!   `images_per_s`, `iteration_ms`, `scaling_efficiency_pct` (against the
//!   smallest count), `input_stall_pct`, `sync_wait_pct`, `mxu_fill_pct`,
//!   `hours_to_train`, `cores`; a `scales` table per run.
//!
//! Gradient-study keys:
//! - `[workload]`: `data` (the MNIST t10k directory,
//!   `../shared/data/mnist-t10k`; absent → synthetic digits, and the
//!   results say so), `network` (`cnn`; `mlp`, `mlp-<w>x<w>…`), `workers`
//!   (4), `batch` (64, the global batch), `epochs` (2), `lr` (0.05),
//!   `momentum` (0.9), `train_images` (all 8,000 of the split; fewer for
//!   quick runs), `init` (a checkpoint to start from, safetensors as
//!   `nimbus_nn::checkpoint` writes them; both studies).
//! - `[cluster]` (the cost model): `model` (`resnet50`: the model whose
//!   step is priced with the ratio the exchange achieved on the real
//!   gradients), `device` (`a100`), `per_node` (1; the data-parallel group
//!   is `workers` devices), `nic_gbit` (10), `intra_gbps` (300),
//!   `latency_us` (10, per hop), `micro_batch` (32 samples per device),
//!   `algorithm` (`ring` or `tree`), `efficiency` (0.5), `nccl` (a Vidur
//!   `all_reduce.csv` of measured NCCL times, used where the group's shape
//!   is in it; absent → the α–β model, and the results say so).
//!
//! Every policy × seed trains from the same initial weights and epoch order
//! for that seed, so runs pair.
//!
//! Metrics: `accuracy_pct`, `test_loss`, `train_loss`, `volume_pct`
//! (payload ÷ FP32 gradient), `payload_kb_per_step` (per worker),
//! `zero_pct` and `exponent_entropy_bits` of the workers' raw gradients,
//! `step_ms`, `comm_ms`, `codec_ms` and `compute_ms` of the priced step,
//! `steps`.

use std::path::{Path, PathBuf};

use nimbus_nn::data::{self, Origin, Split};
use nimbus_nn::net::Arch;
use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Series, Table};
use nimbus_sim::params::{ParamError, Params};

use crate::compress::Exchange;
use crate::experiment::{RunSpec, train};
use crate::fedcase::{self, CachePolicy, CaseSpec, Selection};
use crate::gcomp::GcompConfig;
use crate::hapi::{self, Chooser, Tiers};
use crate::inshrinkerator::{CheckpointCodec, InshrinkSettings, Inshrinkerator, Lossless, Uniform8Delta};
use crate::models::{self, ModelTable};
use crate::nxd::{self, Instance};
use crate::pack::{self, Aggregation, FlSpec};
use crate::paragan::{self, Batch, Fabric, HostIo, Job, Layout, Pipeline};
use crate::restores::{self, RestoreSpec};
use crate::step::{self, Algorithm, Cluster, GradientExchange, Options, Plan};

/// Why a scenario cannot be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A key is missing, mistyped or unknown.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// Training or a data file failed.
    #[error(transparent)]
    Nn(#[from] nimbus_nn::NnError),
    /// The settings cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// A policy of the registry.
pub struct PolicyInfo {
    /// Name in scenarios.
    pub name: &'static str,
    /// `paper` or `baseline`.
    pub kind: &'static str,
    /// `real`, `modelled`, …
    pub fidelity: &'static str,
    /// Where it comes from.
    pub source: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Accepted parameters.
    pub params: &'static [&'static str],
    build: Builder,
}

/// A restoring pair: the compressor and a fresh restorer.
pub type CodecPair = (Box<dyn CheckpointCodec>, Box<dyn CheckpointCodec>);

/// How a policy is built, by the study it runs in.
#[derive(Clone, Copy)]
enum Builder {
    Gradients(fn(&Params) -> Result<Exchange, ParamError>),
    Checkpoints(fn(&Params) -> Result<CodecPair, ParamError>),
    Plans(fn(&Params) -> Result<(Instance, f64), ParamError>),
    Pushdown(fn(&Params) -> Result<Chooser, ParamError>),
    Federated(fn(&Params) -> Result<Aggregation, ParamError>),
    Caching(fn(&Params) -> Result<(CachePolicy, Selection), ParamError>),
    Gan(fn(&Params) -> Result<paragan::Policy, ParamError>),
}

impl PolicyInfo {
    /// The study it runs in (`gradients` or `checkpoints`).
    pub fn study(&self) -> &'static str {
        match self.build {
            Builder::Gradients(_) => "gradients",
            Builder::Checkpoints(_) => "checkpoints",
            Builder::Plans(_) => "plans",
            Builder::Pushdown(_) => "pushdown",
            Builder::Federated(_) => "federated",
            Builder::Caching(_) => "caching",
            Builder::Gan(_) => "gan",
        }
    }
}

impl Builder {
    /// Builds the policy to check its parameters.
    fn check(self, p: &Params) -> Result<(), ParamError> {
        match self {
            Builder::Gradients(build) => build(p).map(|_| ()),
            Builder::Checkpoints(build) => build(p).map(|_| ()),
            Builder::Plans(build) => build(p).map(|_| ()),
            Builder::Pushdown(build) => build(p).map(|_| ()),
            Builder::Federated(build) => build(p).map(|_| ()),
            Builder::Caching(build) => build(p).map(|_| ()),
            Builder::Gan(build) => build(p).map(|_| ()),
        }
    }
}

/// A GAN-training policy: `staleness` (0 is synchronous G/D coupling),
/// the input pipeline and the layout, with the given defaults.
fn gan_policy(p: &Params, staleness: u32, adaptive: bool, layout: Layout) -> Result<paragan::Policy, ParamError> {
    let pipeline = p.choice_or("pipeline", &["adaptive", "static"], if adaptive { "adaptive" } else { "static" })?;
    let adaptive = pipeline == "adaptive";
    let default_layout = if layout == Layout::Aware { "aware" } else { "default" };
    let layout = match p.choice_or("layout", &["aware", "default"], default_layout)? {
        "aware" => Layout::Aware,
        _ => Layout::Default,
    };
    let prefetch = p.u32_in("prefetch", 2, 1..=10_000)?;
    Ok(paragan::Policy {
        staleness: p.u32_in("staleness", staleness, 0..=1000)?,
        pipeline: Pipeline {
            adaptive,
            threads: p.u32_in("threads", 8, 1..=100_000)?,
            prefetch,
            detect_s: p.f64_in("detect_s", 1.0, 0.0..=3600.0)?,
            headroom: p.f64_in("headroom", 1.25, 1.0..=100.0)?,
            max_prefetch: p.u32_in("max_prefetch", 64, prefetch..=100_000)?,
        },
        layout,
    })
}

/// Parameters of the GAN policies.
const GAN_PARAMS: &[&str] =
    &["staleness", "pipeline", "layout", "threads", "prefetch", "detect_s", "headroom", "max_prefetch"];

/// An instance's policy: the instance, with the efficiency and (for
/// Trainium) NeuronLink bandwidth a scenario may override.
fn instance_policy(p: &Params, instance: Instance) -> Result<(Instance, f64), ParamError> {
    p.finish(&["efficiency", "intra_gbps"])?;
    let efficiency = p.f64_in("efficiency", 0.5, 0.01..=1.0)?;
    let intra_gbps = p.f64_in("intra_gbps", instance.intra_gbps, 0.001..=1e5)?;
    Ok((Instance { intra_gbps, ..instance }, efficiency))
}

/// Parameters every exchange accepts: a learning rate of its own and the
/// codec's rate for the cost model.
const COMMON: &[&str] = &["lr", "codec_gbps"];

/// Every train policy.
pub static REGISTRY: &[PolicyInfo] = &[
    PolicyInfo {
        name: "gcomp",
        kind: "paper",
        fidelity: "real",
        source: "Near-Lossless Gradient Compression for Data-Parallel Distributed DNN Training (GComp, SoCC'24)",
        summary: "FP32 gradients split into sign, Huffman-coded exponent (codebooks reused across steps) and a mantissa kept to 16, 12, 8, 4 or 0 bits by exponent band; exact zeros pruned with a bitmap; all-gathered",
        params: &["lr", "codec_gbps", "mantissa_bits", "band_width", "reuse_codebooks"],
        build: Builder::Gradients(|p| {
            let d = GcompConfig::default();
            let mantissa_bits = match p.u64_list("mantissa_bits")? {
                Some(bits) => bits
                    .iter()
                    .map(|&b| u8::try_from(b).ok().filter(|b| *b <= 23))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| p.error("mantissa_bits", "each entry must be 0-23"))?,
                None => d.mantissa_bits,
            };
            let config = GcompConfig {
                mantissa_bits,
                band_width: p.u32_in("band_width", u32::from(d.band_width), 1..=64)? as u8,
                reuse_codebooks: p.bool_or("reuse_codebooks", d.reuse_codebooks)?,
            };
            config.validate().map_err(|e| p.error("mantissa_bits", e))?;
            Ok(Exchange::Gcomp(config))
        }),
    },
    PolicyInfo {
        name: "fp32",
        kind: "baseline",
        fidelity: "real",
        source: "uncompressed data-parallel training (FP32 ring all-reduce)",
        summary: "the exact mean of the workers' FP32 gradients",
        params: COMMON,
        build: Builder::Gradients(|_| Ok(Exchange::Fp32)),
    },
    PolicyInfo {
        name: "fp16",
        kind: "baseline",
        fidelity: "real",
        source: "half-precision gradient all-reduce",
        summary: "gradients rounded to FP16 before and after the sum; half the bytes",
        params: COMMON,
        build: Builder::Gradients(|_| Ok(Exchange::Fp16)),
    },
    PolicyInfo {
        name: "top-k",
        kind: "baseline",
        fidelity: "real",
        source: "top-k sparsification with error feedback (Stich et al., NeurIPS'18; Lin et al., ICLR'18)",
        summary: "each worker sends the largest `ratio` of its accumulated gradient as index-value pairs, keeps the rest; all-gathered",
        params: &["lr", "codec_gbps", "ratio"],
        build: Builder::Gradients(|p| Ok(Exchange::TopK { ratio: p.f64_in("ratio", 0.01, 1e-6..=1.0)? })),
    },
    PolicyInfo {
        name: "random-k",
        kind: "baseline",
        fidelity: "real",
        source: "random-k sparsification with error feedback (Stich et al., NeurIPS'18)",
        summary: "a random `ratio` of entries, the same on every worker, all-reduced; the rest kept for later",
        params: &["lr", "codec_gbps", "ratio"],
        build: Builder::Gradients(|p| Ok(Exchange::RandomK { ratio: p.f64_in("ratio", 0.1, 1e-6..=1.0)? })),
    },
    PolicyInfo {
        name: "qsgd",
        kind: "baseline",
        fidelity: "real",
        source: "QSGD (Alistarh et al., NeurIPS'17), fixed-width levels instead of Elias coding",
        summary: "each entry as sign and one of 2^bits - 1 levels of the tensor's norm, rounded stochastically; all-gathered",
        params: &["lr", "codec_gbps", "bits"],
        build: Builder::Gradients(|p| Ok(Exchange::Qsgd { bits: p.u32_in("bits", 4, 1..=8)? })),
    },
    PolicyInfo {
        name: "powersgd",
        kind: "baseline",
        fidelity: "real",
        source: "PowerSGD (Vogels, Karimireddy and Jaggi, NeurIPS'19)",
        summary: "rank-r factors of each weight matrix by one warm-started power iteration, all-reduced, with error feedback; vectors sent whole",
        params: &["lr", "codec_gbps", "rank"],
        build: Builder::Gradients(|p| Ok(Exchange::PowerSgd { rank: p.usize_in("rank", 2, 1..=64)? })),
    },
    PolicyInfo {
        name: "signsgd",
        kind: "baseline",
        fidelity: "real",
        source: "scaled signSGD with error feedback (EF-SignSGD, Karimireddy et al., ICML'19)",
        summary: "one sign bit per entry times the tensor's mean magnitude, with error feedback; all-gathered",
        params: COMMON,
        build: Builder::Gradients(|_| Ok(Exchange::SignSgd)),
    },
    PolicyInfo {
        name: "inshrinkerator",
        kind: "paper",
        fidelity: "real",
        source: "Inshrinkerator: Compressing Deep Learning Training Checkpoints via Dynamic Quantization (SoCC'24)",
        summary: "per checkpoint, a budgeted search over (centres, pruned, full-precision) by validation loss; saliency-ranked pruning and FP32 keeping, exact 1-D k-means centres for the rest; symbols delta-coded against the previous checkpoint, zstd",
        params: &["budget", "tolerance", "buckets", "prune", "full"],
        build: Builder::Checkpoints(|p| {
            let d = InshrinkSettings::default();
            let usizes = |key: &str, default: Vec<usize>| -> Result<Vec<usize>, ParamError> {
                Ok(match p.u64_list(key)? {
                    Some(v) => v.iter().map(|&x| usize::try_from(x).unwrap_or(usize::MAX)).collect(),
                    None => default,
                })
            };
            let settings = InshrinkSettings {
                buckets: usizes("buckets", d.buckets)?,
                prune: p.f64_list("prune")?.unwrap_or(d.prune),
                full: p.f64_list("full")?.unwrap_or(d.full),
                budget: p.usize_in("budget", d.budget, 1..=1000)?,
                tolerance: p.f64_in("tolerance", d.tolerance, 0.0..=10.0)?,
            };
            settings.validate().map_err(|e| p.error("buckets", e))?;
            Ok((Box::new(Inshrinkerator::new(settings.clone())), Box::new(Inshrinkerator::new(settings))))
        }),
    },
    PolicyInfo {
        name: "uniform8-delta",
        kind: "baseline",
        fidelity: "real",
        source: "Check-N-Run-style lossy checkpoints (Eisenman et al., NSDI'22): uniform 8-bit quantisation with deltas",
        summary: "each tensor to 256 uniform levels between its min and max; bytes differenced against the previous checkpoint; zstd",
        params: &[],
        build: Builder::Checkpoints(|_| Ok((Box::new(Uniform8Delta::default()), Box::new(Uniform8Delta::default())))),
    },
    PolicyInfo {
        name: "zstd",
        kind: "baseline",
        fidelity: "real",
        source: "lossless zstd (level 3) of the raw FP32 checkpoint",
        summary: "parameters and momentum as FP32 bytes through zstd",
        params: &["level"],
        build: Builder::Checkpoints(|p| {
            let level = Some(p.u32_in("level", 3, 1..=22)? as i32);
            Ok((Box::new(Lossless { zstd_level: level }), Box::new(Lossless { zstd_level: level })))
        }),
    },
    PolicyInfo {
        name: "uncompressed",
        kind: "baseline",
        fidelity: "real",
        source: "plain FP32 checkpoints",
        summary: "parameters and momentum as FP32 bytes",
        params: &[],
        build: Builder::Checkpoints(|_| {
            Ok((Box::new(Lossless { zstd_level: None }), Box::new(Lossless { zstd_level: None })))
        }),
    },
    PolicyInfo {
        name: "nxd",
        kind: "paper",
        fidelity: "modelled",
        source: "Distributed Training of Large Language Models on AWS Trainium (NxD, SoCC'24)",
        summary: "the fastest tensor/pipeline/data-parallel plan with ZeRO-1 and activation checkpointing that fits, on trn1.32xlarge nodes (16 Trainium chips each)",
        params: &["efficiency", "intra_gbps"],
        build: Builder::Plans(|p| instance_policy(p, nxd::trn1_32xlarge())),
    },
    PolicyInfo {
        name: "megatron-p4d",
        kind: "baseline",
        fidelity: "modelled",
        source: "the same plan search on p4d.24xlarge (8 x A100 40 GB; NxD's baseline)",
        summary: "the fastest tensor/pipeline/data-parallel plan with ZeRO-1 and activation checkpointing that fits, on p4d.24xlarge nodes",
        params: &["efficiency", "intra_gbps"],
        build: Builder::Plans(|p| {
            let instance = nxd::p4d_24xlarge().map_err(|e| p.error("efficiency", e))?;
            instance_policy(p, instance)
        }),
    },
    PolicyInfo {
        name: "paragan",
        kind: "paper",
        fidelity: "modelled",
        source: "ParaGAN: A Scalable Distributed Training Framework for Generative Adversarial Networks (SoCC'24)",
        summary: "asynchronous G/D updates (the discriminator trains on generator samples up to one version old), a congestion-aware input pipeline that re-sizes its reader threads, and a layout that folds filter taps into the matrix unit's contraction where that pads less",
        params: GAN_PARAMS,
        build: Builder::Gan(|p| gan_policy(p, 1, true, Layout::Aware)),
    },
    PolicyInfo {
        name: "sync-gan",
        kind: "baseline",
        fidelity: "modelled",
        source: "synchronous data-parallel GAN training (BigGAN's setup): each phase waits for the previous all-reduce; fixed reader threads and prefetch; features padded per filter tap",
        summary: "synchronous G/D coupling, a static input pipeline and the default layout",
        params: GAN_PARAMS,
        build: Builder::Gan(|p| gan_policy(p, 0, false, Layout::Default)),
    },
    PolicyInfo {
        name: "hapi",
        kind: "paper",
        fidelity: "modelled",
        source: "Accelerating Transfer Learning with Near-Data Computation on Cloud Object Stores (HAPI, SoCC'24)",
        summary: "splits the frozen feature extractor at the block boundary minimising the pipelined max(storage, transfer, compute) time from the layer table; storage sub-batches sized to its memory",
        params: &[],
        build: Builder::Pushdown(|p| {
            p.finish(&[])?;
            Ok(Chooser::Hapi)
        }),
    },
    PolicyInfo {
        name: "no-pushdown",
        kind: "baseline",
        fidelity: "modelled",
        source: "transfer learning on a disaggregated store without pushdown (HAPI's baseline)",
        summary: "the store ships JPEGs; the compute tier decodes them and runs the whole model",
        params: &[],
        build: Builder::Pushdown(|p| {
            p.finish(&[])?;
            Ok(Chooser::None)
        }),
    },
    PolicyInfo {
        name: "all-frozen",
        kind: "baseline",
        fidelity: "modelled",
        source: "a fixed split: every frozen layer at the store (HAPI's fixed-split baselines)",
        summary: "the store runs the whole feature extractor and ships its output",
        params: &[],
        build: Builder::Pushdown(|p| {
            p.finish(&[])?;
            Ok(Chooser::AllFrozen)
        }),
    },
    PolicyInfo {
        name: "half-split",
        kind: "baseline",
        fidelity: "modelled",
        source: "a fixed split: the block boundary nearest half the frozen FLOPs",
        summary: "the store runs the first half of the feature extractor's work",
        params: &[],
        build: Builder::Pushdown(|p| {
            p.finish(&[])?;
            Ok(Chooser::Half)
        }),
    },
    PolicyInfo {
        name: "pack",
        kind: "paper",
        fidelity: "real",
        source: "Pack: Towards Communication-Efficient Homomorphic Encryption in Federated Learning (SoCC'24)",
        summary: "FedAvg whose updates are clipped at the clients' largest 99.9th percentile, quantised to `bits` bits, packed several per CKKS slot with guard bits, summed encrypted, rounded back to integers and unpacked",
        params: &["bits"],
        build: Builder::Federated(|p| Ok(Aggregation::Pack { bits: p.u32_in("bits", 8, 1..=16)? })),
    },
    PolicyInfo {
        name: "ckks",
        kind: "baseline",
        fidelity: "real",
        source: "vanilla CKKS aggregation (one update value per slot; Pack's baseline)",
        summary: "each update value in its own CKKS slot at scale 2^40, summed encrypted",
        params: &[],
        build: Builder::Federated(|p| {
            p.finish(&[])?;
            Ok(Aggregation::Ckks)
        }),
    },
    PolicyInfo {
        name: "fedavg",
        kind: "baseline",
        fidelity: "real",
        source: "plaintext federated averaging (McMahan et al., AISTATS'17)",
        summary: "FP32 updates averaged in the clear",
        params: &[],
        build: Builder::Federated(|p| {
            p.finish(&[])?;
            Ok(Aggregation::Plaintext)
        }),
    },
    PolicyInfo {
        name: "fedcase",
        kind: "paper",
        fidelity: "real learning, modelled clock",
        source: "FedCaSe: Enhancing Federated Learning with Heterogeneity-aware Caching and Scheduling (SoCC'24)",
        summary: "clients cache their most important samples (loss rank x read frequency, with a ghost cache); the server picks clients by Oort's utility with cache-aware expected round times",
        params: &[],
        build: Builder::Caching(|p| {
            p.finish(&[])?;
            Ok((CachePolicy::Importance, Selection::CacheAware))
        }),
    },
    PolicyInfo {
        name: "oort-lru",
        kind: "baseline",
        fidelity: "real learning, modelled clock",
        source: "Oort (Lai et al., OSDI'21) selection with LRU sample caches",
        summary: "Oort's statistical utility with its duration penalty, unaware of caches; LRU caches",
        params: &[],
        build: Builder::Caching(|p| {
            p.finish(&[])?;
            Ok((CachePolicy::Lru, Selection::Oort))
        }),
    },
    PolicyInfo {
        name: "random-lru",
        kind: "baseline",
        fidelity: "real learning, modelled clock",
        source: "FedAvg's random client selection with LRU sample caches",
        summary: "clients drawn uniformly each round; LRU caches",
        params: &[],
        build: Builder::Caching(|p| {
            p.finish(&[])?;
            Ok((CachePolicy::Lru, Selection::Random))
        }),
    },
    PolicyInfo {
        name: "random-importance",
        kind: "baseline",
        fidelity: "real learning, modelled clock",
        source: "FedCaSe's cache alone (an ablation)",
        summary: "clients drawn uniformly each round; importance x frequency caches",
        params: &[],
        build: Builder::Caching(|p| {
            p.finish(&[])?;
            Ok((CachePolicy::Importance, Selection::Random))
        }),
    },
];

/// Every metric a gradient run reports.
pub const METRICS: &[&str] = &[
    "accuracy_pct",
    "test_loss",
    "train_loss",
    "volume_pct",
    "payload_kb_per_step",
    "zero_pct",
    "exponent_entropy_bits",
    "step_ms",
    "comm_ms",
    "codec_ms",
    "compute_ms",
    "steps",
];

/// Every metric a checkpoint run reports.
pub const CHECKPOINT_METRICS: &[&str] =
    &["accuracy_pct", "test_loss", "compression_x", "compression_x_max", "checkpoint_kb_mean", "restores"];

/// The checkpoint study's settings.
#[derive(Debug, Clone)]
pub struct CheckpointStudy {
    /// The data.
    pub split: Split,
    /// Training and restore settings.
    pub spec: RestoreSpec,
}

/// The study a scenario runs.
#[derive(Debug, Clone)]
pub enum Study {
    /// Gradient exchange during data-parallel training.
    Gradients(Box<GradientStudy>),
    /// Compressed checkpoints through restores.
    Checkpoints(Box<CheckpointStudy>),
    /// Parallelism plans on instances.
    Plans(Box<PlanStudy>),
    /// Split points of transfer learning over a grid of tiers.
    Pushdown(Box<PushdownStudy>),
    /// Federated averaging with encrypted aggregation.
    Federated(Box<FederatedStudy>),
    /// Federated training with client caches and selection.
    Caching(Box<CachingStudy>),
    /// Data-parallel GAN training over core counts.
    Gan(Box<GanStudy>),
}

/// Every metric a GAN run reports.
pub const GAN_METRICS: &[&str] = &[
    "images_per_s",
    "iteration_ms",
    "scaling_efficiency_pct",
    "input_stall_pct",
    "sync_wait_pct",
    "mxu_fill_pct",
    "hours_to_train",
    "cores",
];

/// The GAN study's settings.
#[derive(Debug, Clone)]
pub struct GanStudy {
    /// The job, the machines and the simulation length.
    pub setting: paragan::Setting,
    /// Core counts, ascending; efficiency is against the first.
    pub cores: Vec<u32>,
    /// Images to train on for `hours_to_train`.
    pub train_images: f64,
}

/// Every metric a caching run reports.
pub const CACHING_METRICS: &[&str] =
    &["time_to_target_s", "accuracy_pct", "hit_rate_pct", "total_time_s", "distinct_clients"];

/// The caching study's settings.
#[derive(Debug, Clone)]
pub struct CachingStudy {
    /// The data.
    pub split: Split,
    /// The run's settings.
    pub spec: CaseSpec,
}

/// Every metric a federated run reports.
pub const FEDERATED_METRICS: &[&str] =
    &["accuracy_pct", "upload_kb_per_round", "ciphertexts_per_round", "lanes_per_slot", "clipped_pct", "noisy_slots"];

/// The federated study's settings.
#[derive(Debug, Clone)]
pub struct FederatedStudy {
    /// The data.
    pub split: Split,
    /// The run's settings.
    pub spec: FlSpec,
}

/// Every metric a pushdown run reports.
pub const PUSHDOWN_METRICS: &[&str] =
    &["iteration_s_mean", "speedup_gmean", "speedup_max", "within_5pct_pct", "best_pct", "cases"];

/// The pushdown study's settings: every model × bandwidth × storage
/// compute × storage memory case.
#[derive(Debug, Clone)]
pub struct PushdownStudy {
    /// Models.
    pub models: Vec<ModelTable>,
    /// Link bandwidths, Gbit/s.
    pub bandwidths_gbit: Vec<f64>,
    /// Storage compute, GFLOP/s.
    pub storage_gflops: Vec<f64>,
    /// Storage memory, GB.
    pub storage_memory_gb: Vec<f64>,
    /// Images per iteration.
    pub batch: u64,
    /// Everything else about the tiers.
    pub tiers: Tiers,
}

/// Every metric a plans run reports.
pub const PLAN_METRICS: &[&str] = &[
    "step_s",
    "samples_per_s",
    "tokens_per_s",
    "mfu_pct",
    "usd_per_m_tokens",
    "usd_per_step",
    "memory_gib",
    "dp",
    "tp",
    "pp",
    "zero1",
    "checkpointing",
    "plans_fitting",
];

/// The plans study's settings.
#[derive(Debug, Clone)]
pub struct PlanStudy {
    /// The model.
    pub model: ModelTable,
    /// Instances.
    pub nodes: u32,
    /// Samples (sequences) per step.
    pub global_batch: u32,
    /// Samples per micro-batch.
    pub micro_batch: u32,
}

/// The gradient study's settings.
#[derive(Debug, Clone)]
pub struct GradientStudy {
    /// The data.
    pub split: Split,
    /// Training settings (the learning rate a policy may override).
    pub spec: RunSpec,
    /// The priced model.
    pub model: ModelTable,
    /// The priced cluster.
    pub cluster: Cluster,
    /// Samples per device per step on it.
    pub micro_batch: u32,
    /// Cost-model options (exchange filled per run).
    pub options: Options,
}

/// A prepared train scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    study: Study,
    fallbacks: Vec<String>,
}

/// The data a study trains on: MNIST from `[workload] data` or the
/// synthetic stand-in, cut to `train_images`.
fn load_split(w: &Params, fallbacks: &mut Vec<String>) -> Result<Split, ScenarioError> {
    let dir = PathBuf::from(w.str("data")?.unwrap_or(MNIST_DIR));
    let mut split = data::mnist_or_synthetic(Path::new(&dir), 1)?;
    if let Origin::Synthetic(why) = &split.origin {
        fallbacks.push(why.clone());
    }
    let train_images = w.usize_in("train_images", split.train.len(), 1..=split.train.len().max(1))?;
    split.train = split.train.slice(0..train_images);
    Ok(split)
}

/// `[workload] kind = "federated"`.
fn federated_study(w: &Params, c: &Params, fallbacks: &mut Vec<String>) -> Result<FederatedStudy, ScenarioError> {
    w.finish(&[
        "kind",
        "data",
        "network",
        "train_images",
        "clients",
        "rounds",
        "local_epochs",
        "batch",
        "lr",
        "non_iid",
    ])?;
    c.finish(&["ring"])?;
    let split = load_split(w, fallbacks)?;
    let arch = Arch::parse(w.str("network")?.unwrap_or("mlp-64")).map_err(|e| w.error("network", e))?;
    let clients = w.usize_in("clients", 10, 1..=1000)?;
    let batch = w.usize_in("batch", 32, 1..=4096)?;
    if split.train.len() < 2 * clients * batch {
        return Err(w
            .error(
                "clients",
                format!(
                    "{} training images are too few for {clients} clients with local batches of {batch}",
                    split.train.len()
                ),
            )
            .into());
    }
    let ring = c.u64_in("ring", 8192, 16..=65_536)? as usize;
    if !ring.is_power_of_two() {
        return Err(c.error("ring", format!("{ring} is not a power of two")).into());
    }
    Ok(FederatedStudy {
        spec: FlSpec {
            arch,
            clients,
            rounds: w.u32_in("rounds", 10, 1..=10_000)?,
            local_epochs: w.u32_in("local_epochs", 1, 1..=1000)?,
            batch,
            lr: w.f64_in("lr", 0.05, 1e-6..=10.0)? as f32,
            non_iid: w.bool_or("non_iid", false)?,
            ring,
        },
        split,
    })
}

/// `[workload] kind = "caching"`.
fn caching_study(w: &Params, c: &Params, fallbacks: &mut Vec<String>) -> Result<CachingStudy, ScenarioError> {
    w.finish(&[
        "kind",
        "data",
        "network",
        "train_images",
        "clients",
        "per_round",
        "rounds",
        "batch",
        "lr",
        "wss",
        "target",
    ])?;
    c.finish(&["compute_ms", "read_ms", "upload_s", "sigma"])?;
    let split = load_split(w, fallbacks)?;
    let arch = Arch::parse(w.str("network")?.unwrap_or("mlp-32")).map_err(|e| w.error("network", e))?;
    let clients = w.usize_in("clients", 100, 1..=10_000)?;
    if split.train.len() < 2 * clients {
        return Err(w
            .error("clients", format!("{} training images are too few for {clients} clients", split.train.len()))
            .into());
    }
    let per_round = w.usize_in("per_round", 10, 1..=clients)?;
    Ok(CachingStudy {
        spec: CaseSpec {
            arch,
            clients,
            per_round,
            rounds: w.u32_in("rounds", 60, 1..=100_000)?,
            batch: w.usize_in("batch", 16, 1..=4096)?,
            lr: w.f64_in("lr", 0.05, 1e-6..=10.0)? as f32,
            wss: w.f64_in("wss", 0.3, 0.0..=1.0)?,
            target: w.f64_in("target", 0.8, 0.0..=1.0)?,
            compute_ms: c.f64_in("compute_ms", 2.0, 0.0..=1e6)?,
            read_ms: c.f64_in("read_ms", 10.0, 0.0..=1e6)?,
            upload_s: c.f64_in("upload_s", 2.0, 0.0..=1e6)?,
            sigma: c.f64_in("sigma", 0.8, 0.0..=4.0)?,
        },
        split,
    })
}

/// `[cluster] device`: an accelerator by name.
fn parse_device(c: &Params, default: &str) -> Result<step::Accelerator, ParamError> {
    let name = c.str("device")?.unwrap_or(default);
    step::accelerator(name).ok_or_else(|| {
        c.error(
            "device",
            format!(
                "unknown device `{name}`; available: {}, {}",
                step::NON_GPU.join(", "),
                nimbus_model::hardware::gpu_names().join(", ")
            ),
        )
    })
}

/// `[cluster] algorithm`.
fn parse_algorithm(c: &Params, default: &str) -> Result<Algorithm, ParamError> {
    Ok(match c.choice_or("algorithm", &["ring", "tree", "torus"], default)? {
        "tree" => Algorithm::Tree,
        "torus" => Algorithm::Torus,
        _ => Algorithm::Ring,
    })
}

/// `[workload] kind = "gan"`.
fn gan_study(w: &Params, c: &Params) -> Result<GanStudy, ScenarioError> {
    w.finish(&[
        "kind",
        "model",
        "ch",
        "batch_per_core",
        "global_batch",
        "n_dis",
        "cores",
        "iterations",
        "warmup",
        "train_images",
    ])?;
    c.finish(&[
        "device",
        "efficiency",
        "tile",
        "cores_per_host",
        "link_gbps",
        "latency_us",
        "algorithm",
        "jitter",
        "image_kb",
        "request_images",
        "latency_ms",
        "connection_mb_s",
        "decode_ms",
        "nic_gbit",
        "vcpus",
        "normal_mean_s",
        "congested_mean_s",
        "congested_latency_x",
        "congested_bandwidth_x",
    ])?;
    let name = w.str("model")?.unwrap_or("biggan-128");
    let resolution = name.strip_prefix("biggan-").and_then(|r| r.parse::<u32>().ok());
    let ch = w.u64_in("ch", 96, 8..=1024)?;
    let gan = resolution.and_then(|r| paragan::biggan(r, ch)).ok_or_else(|| {
        w.error("model", format!("unknown GAN `{name}`; available: biggan-128, biggan-256, biggan-512"))
    })?;
    let batch = match (w.get("batch_per_core"), w.get("global_batch")) {
        (Some(_), Some(_)) => {
            return Err(w
                .error("global_batch", "give batch_per_core (weak scaling) or global_batch (strong), not both")
                .into());
        }
        (_, Some(_)) => Batch::Global(w.u32_in("global_batch", 2048, 1..=1 << 24)?),
        _ => Batch::PerCore(w.u32_in("batch_per_core", 8, 1..=1 << 16)?),
    };
    let mut cores: Vec<u32> = match w.u64_list("cores")? {
        Some(list) => list
            .iter()
            .map(|&n| u32::try_from(n).ok().filter(|n| (1..=65_536).contains(n)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| w.error("cores", "core counts must lie in 1..=65536"))?,
        None => vec![8, 32, 128, 512, 1024],
    };
    if cores.is_empty() || cores.len() > 64 {
        return Err(w.error("cores", "needs 1 to 64 core counts").into());
    }
    cores.sort_unstable();
    cores.dedup();
    if let Batch::Global(b) = batch
        && let Some(&n) = cores.iter().find(|&&n| n > b)
    {
        return Err(w.error("cores", format!("{n} cores exceed the global batch of {b} images")).into());
    }
    let iterations = w.u32_in("iterations", 1000, 1..=1_000_000)?;
    let warmup = w.u32_in("warmup", (iterations / 10).min(50), 0..=iterations - 1)?;
    let total_work = cores.iter().map(|&n| u64::from(n)).sum::<u64>() * u64::from(iterations);
    if total_work > 2_000_000_000 {
        return Err(w
            .error(
                "iterations",
                format!(
                    "{iterations} iterations over these core counts are {total_work} core-iterations; the limit is 2e9"
                ),
            )
            .into());
    }
    let device = parse_device(c, "tpu-v3")?;
    let default_tile = if device.name.starts_with("tpu") { 128 } else { 1 };
    let io = HostIo {
        image_bytes: c.f64_in("image_kb", 110.0, 0.001..=1e6)? * 1e3,
        request_images: c.f64_in("request_images", 32.0, 1.0..=1e6)?,
        latency_s: c.f64_in("latency_ms", 30.0, 0.0..=1e6)? / 1e3,
        connection_bps: c.f64_in("connection_mb_s", 100.0, 0.001..=1e6)? * 1e6,
        decode_s: c.f64_in("decode_ms", 4.0, 0.0..=1e6)? / 1e3,
        nic_bps: c.f64_in("nic_gbit", 32.0, 0.001..=1e5)? * 1e9 / 8.0,
        vcpus: c.u32_in("vcpus", 96, 1..=100_000)?,
        normal_mean_s: c.f64_in("normal_mean_s", 120.0, 0.1..=1e9)?,
        congested_mean_s: match c.f64_in("congested_mean_s", 10.0, 0.0..=1e9)? {
            x if x > 0.0 && x < 0.1 => {
                return Err(c.error("congested_mean_s", "is 0 (no congestion) or at least 0.1 s").into());
            }
            x => x,
        },
        congested_latency_x: c.f64_in("congested_latency_x", 10.0, 1.0..=1e4)?,
        congested_bandwidth_x: c.f64_in("congested_bandwidth_x", 0.25, 1e-4..=1.0)?,
    };
    let setting = paragan::Setting {
        fabric: Fabric {
            core: paragan::Core::new(
                &device,
                c.f64_in("efficiency", 0.5, 0.01..=1.0)?,
                c.u64_in("tile", default_tile, 1..=4096)?,
            ),
            cores_per_host: c.u32_in("cores_per_host", 8, 1..=4096)?,
            link_gbps: c.f64_in("link_gbps", 80.0, 0.001..=1e5)?,
            latency_us: c.f64_in("latency_us", 5.0, 0.0..=1e6)?,
            algorithm: parse_algorithm(c, "torus")?,
            jitter: c.f64_in("jitter", 0.03, 0.0..=2.0)?,
        },
        job: Job { gan, batch, n_dis: w.u32_in("n_dis", 2, 1..=100)? },
        io,
        iterations,
        warmup,
    };
    Ok(GanStudy { setting, cores, train_images: w.f64_in("train_images", 2048.0 * 150_000.0, 1.0..=1e15)? })
}

/// One GAN-study run: the policy at every core count.
fn run_gan(s: &GanStudy, policy: &paragan::Policy, seed: u64, progress: &mut dyn FnMut(f64)) -> RunOutput {
    let mut results = Vec::with_capacity(s.cores.len());
    for (i, &n) in s.cores.iter().enumerate() {
        results.push(paragan::simulate(&s.setting, policy, n, seed));
        progress((i + 1) as f64 / s.cores.len() as f64);
    }
    let base = &results[0];
    let job = &s.setting.job;
    let efficiency = |r: &paragan::ScaleResult| {
        (base.iteration_s / r.iteration_s) * (job.global(r.cores) / job.global(base.cores))
            / (f64::from(r.cores) / f64::from(base.cores))
    };
    let top = results.last().expect("at least one core count");
    let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
    let pct = |x: f64| 100.0 * x;
    RunOutput {
        metrics: vec![
            m("images_per_s", top.images_per_s, Better::Higher),
            m("iteration_ms", top.iteration_s * 1e3, Better::Lower),
            m("scaling_efficiency_pct", pct(efficiency(top)), Better::Higher),
            m("input_stall_pct", pct(top.stall), Better::Lower),
            m("sync_wait_pct", pct(top.sync_wait), Better::Lower),
            m("mxu_fill_pct", pct(top.fill), Better::Higher),
            m("hours_to_train", s.train_images / top.images_per_s / 3600.0, Better::Lower),
            m("cores", f64::from(top.cores), Better::Neither),
        ],
        tables: vec![Table {
            name: "scales".into(),
            columns: [
                "cores",
                "global_batch",
                "iteration_ms",
                "compute_ms",
                "images_per_s",
                "scaling_efficiency_pct",
                "input_stall_pct",
                "sync_wait_pct",
            ]
            .iter()
            .map(|c| c.to_string())
            .collect(),
            rows: results
                .iter()
                .map(|r| {
                    vec![
                        Cell::Int(i64::from(r.cores)),
                        Cell::Float(job.global(r.cores)),
                        Cell::Float(r.iteration_s * 1e3),
                        Cell::Float(r.compute_s * 1e3),
                        Cell::Float(r.images_per_s),
                        Cell::Float(pct(efficiency(r))),
                        Cell::Float(pct(r.stall)),
                        Cell::Float(pct(r.sync_wait)),
                    ]
                })
                .collect(),
        }],
        series: vec![Series {
            name: "scaling_efficiency".into(),
            x_label: "cores".into(),
            y_label: "scaling efficiency (%)".into(),
            points: results.iter().map(|r| (f64::from(r.cores), pct(efficiency(r)))).collect(),
        }],
        ..RunOutput::default()
    }
}

/// `[workload] kind = "pushdown"`.
fn pushdown_study(w: &Params, c: &Params) -> Result<PushdownStudy, ScenarioError> {
    w.finish(&["kind", "models", "batch"])?;
    c.finish(&[
        "bandwidths_gbit",
        "storage_gflops",
        "storage_memory_gb",
        "storage_cores",
        "compute_gflops",
        "compute_cores",
        "decode_ms",
        "jpeg_bytes",
        "activation_bytes",
        "request_ms",
        "half_batch",
    ])?;
    let names = w.str_or_list("models")?.unwrap_or_else(|| vec!["resnet18", "resnet50", "vgg16", "vit-b16"]);
    let models = names
        .iter()
        .map(|n| {
            models::model(n).filter(|m| m.tokens_per_sample.is_none() && !m.layers.is_empty()).ok_or_else(|| {
                w.error(
                    "models",
                    format!("unknown image model `{n}`; available: resnet18, resnet50, vgg16, vit-b16, cnn, mlp"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let list = |key: &str, default: &[f64]| -> Result<Vec<f64>, ScenarioError> {
        let v = c.f64_list(key)?.unwrap_or_else(|| default.to_vec());
        if v.is_empty() || v.len() > 1000 || v.iter().any(|x| !x.is_finite() || *x <= 0.0) {
            return Err(c.error(key, "needs 1 to 1,000 positive numbers").into());
        }
        Ok(v)
    };
    let d = Tiers::default();
    Ok(PushdownStudy {
        models,
        bandwidths_gbit: list("bandwidths_gbit", &[1.0, 2.0, 5.0, 10.0, 25.0])?,
        storage_gflops: list("storage_gflops", &[100.0, 500.0, 2_000.0, 8_000.0])?,
        storage_memory_gb: list("storage_memory_gb", &[2.0, 8.0])?,
        batch: w.u64_in("batch", 256, 1..=1 << 20)?,
        tiers: Tiers {
            storage_cores: c.f64_in("storage_cores", d.storage_cores, 0.01..=1e6)?,
            compute_gflops: c.f64_in("compute_gflops", d.compute_gflops, 0.01..=1e9)?,
            compute_cores: c.f64_in("compute_cores", d.compute_cores, 0.01..=1e6)?,
            decode_ms: c.f64_in("decode_ms", d.decode_ms, 0.0..=1e6)?,
            jpeg_bytes: c.f64_in("jpeg_bytes", d.jpeg_bytes, 1.0..=1e9)?,
            activation_bytes: c.f64_in("activation_bytes", d.activation_bytes, 0.5..=8.0)?,
            request_ms: c.f64_in("request_ms", d.request_ms, 0.0..=1e6)?,
            half_batch: c.f64_in("half_batch", d.half_batch, 0.0..=1e6)?,
            ..d
        },
    })
}

/// One pushdown-study run: the chooser over every case of the grid, each
/// case's evaluated time beside the evaluated optimum and no pushdown.
fn run_pushdown(s: &PushdownStudy, chooser: Chooser) -> RunOutput {
    let mut rows = Vec::new();
    let (mut sum, mut log_speedup, mut best_speedup) = (0.0, 0.0, 0f64);
    let (mut within, mut best_hits, mut n) = (0u32, 0u32, 0u32);
    for model in &s.models {
        for &bw in &s.bandwidths_gbit {
            for &gflops in &s.storage_gflops {
                for &mem in &s.storage_memory_gb {
                    let tiers =
                        Tiers { bandwidth_gbit: bw, storage_gflops: gflops, storage_memory_gb: mem, ..s.tiers.clone() };
                    let split = hapi::choose(model, &tiers, s.batch, chooser);
                    let t = hapi::split_time(model, &tiers, s.batch, split, false);
                    let best = hapi::best_split(model, &tiers, s.batch);
                    let none = hapi::split_time(model, &tiers, s.batch, 0, false).iteration_s();
                    let (ours, opt) = (t.iteration_s(), best.iteration_s());
                    sum += ours;
                    log_speedup += (none / ours).ln();
                    best_speedup = best_speedup.max(none / ours);
                    within += u32::from(ours <= 1.05 * opt);
                    best_hits += u32::from(ours <= opt * (1.0 + 1e-12));
                    n += 1;
                    rows.push(vec![
                        Cell::Str(model.name.clone()),
                        Cell::Float(bw),
                        Cell::Float(gflops),
                        Cell::Float(mem),
                        Cell::Int(split as i64),
                        Cell::Str(if split == 0 { "none".into() } else { model.layers[split - 1].name.clone() }),
                        Cell::Int(t.sub_batch as i64),
                        Cell::Float(ours),
                        Cell::Float(opt),
                        Cell::Int(best.split as i64),
                        Cell::Float(none),
                    ]);
                }
            }
        }
    }
    let nf = f64::from(n.max(1));
    let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
    RunOutput {
        metrics: vec![
            m("iteration_s_mean", sum / nf, Better::Lower),
            m("speedup_gmean", (log_speedup / nf).exp(), Better::Higher),
            m("speedup_max", best_speedup, Better::Higher),
            m("within_5pct_pct", 100.0 * f64::from(within) / nf, Better::Higher),
            m("best_pct", 100.0 * f64::from(best_hits) / nf, Better::Higher),
            m("cases", f64::from(n), Better::Neither),
        ],
        tables: vec![Table {
            name: "cases".into(),
            columns: [
                "model",
                "bandwidth_gbit",
                "storage_gflops",
                "storage_memory_gb",
                "split",
                "split_after",
                "storage_sub_batch",
                "iteration_s",
                "best_iteration_s",
                "best_split",
                "no_pushdown_s",
            ]
            .iter()
            .map(|c| c.to_string())
            .collect(),
            rows,
        }],
        ..RunOutput::default()
    }
}

/// Largest checkpoint `[workload] init` may name.
const MAX_CHECKPOINT_BYTES: u64 = 1 << 30;

/// `[workload] init`: a Nimbus safetensors checkpoint to start from, read
/// once, bounded in size, and decoded once to check that it holds `arch`
/// for `side × side` inputs (so a mismatch fails before any run).
fn load_init(w: &Params, arch: &Arch, side: usize) -> Result<Option<std::sync::Arc<Vec<u8>>>, ScenarioError> {
    let Some(path) = w.str("init")? else { return Ok(None) };
    let fail = |what: String| ScenarioError::Invalid(format!("{path}: {what}"));
    let len = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?.len();
    if len > MAX_CHECKPOINT_BYTES {
        return Err(fail(format!("{len} bytes is larger than the {MAX_CHECKPOINT_BYTES}-byte limit")));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    crate::experiment::start(arch, side, 0, 0.1, 0.0, Some(&bytes)).map_err(|e| fail(e.to_string()))?;
    Ok(Some(std::sync::Arc::new(bytes)))
}

/// `[workload] kind = "checkpoints"`.
fn checkpoint_study(w: &Params, c: &Params, fallbacks: &mut Vec<String>) -> Result<CheckpointStudy, ScenarioError> {
    w.finish(&[
        "kind",
        "data",
        "network",
        "batch",
        "epochs",
        "lr",
        "momentum",
        "train_images",
        "validation",
        "restore",
        "init",
    ])?;
    c.finish(&[])?;
    let split = load_split(w, fallbacks)?;
    let arch = Arch::parse(w.str("network")?.unwrap_or("mlp")).map_err(|e| w.error("network", e))?;
    let batch = w.usize_in("batch", 64, 1..=4096)?;
    let validation = w.usize_in("validation", 1_000, 0..=split.train.len())?;
    if batch + validation > split.train.len() {
        return Err(w
            .error(
                "validation",
                format!(
                    "{validation} held-out images and a batch of {batch} exceed the {} training images",
                    split.train.len()
                ),
            )
            .into());
    }
    let init = load_init(w, &arch, split.train.rows)?;
    let spec = RestoreSpec {
        arch,
        epochs: w.u32_in("epochs", 10, 1..=1000)?,
        batch,
        lr: w.f64_in("lr", 0.05, 1e-6..=10.0)? as f32,
        momentum: w.f64_in("momentum", 0.9, 0.0..=0.999)? as f32,
        validation,
        restore: w.bool_or("restore", true)?,
        init,
    };
    Ok(CheckpointStudy { split, spec })
}

/// `[workload] kind = "gradients"`.
fn gradient_study(w: &Params, c: &Params, fallbacks: &mut Vec<String>) -> Result<GradientStudy, ScenarioError> {
    w.finish(&["kind", "data", "network", "workers", "batch", "epochs", "lr", "momentum", "train_images", "init"])?;
    c.finish(&[
        "model",
        "device",
        "per_node",
        "nic_gbit",
        "intra_gbps",
        "latency_us",
        "micro_batch",
        "algorithm",
        "efficiency",
        "nccl",
    ])?;
    let split = load_split(w, fallbacks)?;
    let arch = Arch::parse(w.str("network")?.unwrap_or("cnn")).map_err(|e| w.error("network", e))?;
    let workers = w.usize_in("workers", 4, 1..=64)?;
    let batch = w.usize_in("batch", 64, 1..=4096)?;
    if !batch.is_multiple_of(workers) {
        return Err(w.error("batch", format!("a batch of {batch} does not split over {workers} workers")).into());
    }
    if batch > split.train.len() {
        return Err(w
            .error("batch", format!("a batch of {batch} exceeds the {} training images", split.train.len()))
            .into());
    }
    let init = load_init(w, &arch, split.train.rows)?;
    let spec = RunSpec {
        arch,
        workers,
        batch,
        epochs: w.u32_in("epochs", 2, 1..=1000)?,
        lr: w.f64_in("lr", 0.05, 1e-6..=10.0)? as f32,
        momentum: w.f64_in("momentum", 0.9, 0.0..=0.999)? as f32,
        init,
    };
    let model_name = c.str("model")?.unwrap_or("resnet50");
    let model = models::model(model_name).ok_or_else(|| {
        c.error("model", format!("unknown model `{model_name}`; available: {}", models::MODELS.join(", ")))
    })?;
    let device = parse_device(c, "a100")?;
    let per_node = c.u32_in("per_node", 1, 1..=64)?;
    let workers32 = workers as u32;
    if !workers32.is_multiple_of(per_node) {
        return Err(c.error("per_node", format!("{workers} workers do not fill nodes of {per_node}")).into());
    }
    let latency = c.f64_in("latency_us", 10.0, 0.0..=1e6)?;
    let cluster = Cluster {
        device,
        per_node,
        nodes: workers32 / per_node,
        intra_gbps: c.f64_in("intra_gbps", 300.0, 0.001..=1e5)?,
        nic_gbit: c.f64_in("nic_gbit", 10.0, 0.001..=1e5)?,
        intra_latency_us: latency,
        inter_latency_us: latency,
        nccl: match c.str("nccl")? {
            Some(p) if Path::new(p).is_file() => Some(std::sync::Arc::new(
                nimbus_trace::llm::read_vidur_collective(Path::new(p))
                    .map_err(|e| ScenarioError::Invalid(e.to_string()))?,
            )),
            Some(p) => {
                fallbacks.push(format!("{p} is absent: all-reduce times use the alpha-beta model"));
                None
            }
            None => None,
        },
    };
    let options = Options {
        efficiency: c.f64_in("efficiency", 0.5, 0.01..=1.0)?,
        algorithm: parse_algorithm(c, "ring")?,
        ..Options::default()
    };
    let micro_batch = c.u32_in("micro_batch", 32, 1..=1 << 20)?;
    Ok(GradientStudy { split, spec, model, cluster, micro_batch, options })
}

fn find(policy: &str) -> Result<&'static PolicyInfo, ScenarioError> {
    REGISTRY.iter().find(|p| p.name == policy).ok_or_else(|| {
        ScenarioError::Invalid(format!(
            "unknown train policy {policy:?}; available: {}",
            REGISTRY.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// The default MNIST directory.
pub const MNIST_DIR: &str = "../shared/data/mnist-t10k";

impl Scenario {
    /// Reads `[workload]` and `[cluster]`.
    pub fn from_params(root: &Params) -> Result<Scenario, ScenarioError> {
        let empty_w = Params::new("workload", None);
        let w = root.table("workload")?.unwrap_or(&empty_w);
        let empty_c = Params::new("cluster", None);
        let c = root.table("cluster")?.unwrap_or(&empty_c);
        let mut fallbacks = Vec::new();
        let study = match w.choice_or(
            "kind",
            &["gradients", "checkpoints", "plans", "pushdown", "federated", "caching", "gan"],
            "gradients",
        )? {
            "federated" => Study::Federated(Box::new(federated_study(w, c, &mut fallbacks)?)),
            "caching" => Study::Caching(Box::new(caching_study(w, c, &mut fallbacks)?)),
            "pushdown" => Study::Pushdown(Box::new(pushdown_study(w, c)?)),
            "gan" => Study::Gan(Box::new(gan_study(w, c)?)),
            "plans" => {
                w.finish(&["kind", "model", "nodes", "global_batch", "micro_batch"])?;
                c.finish(&[])?;
                let name = w.str("model")?.unwrap_or("llama2-7b");
                let model = models::model(name).ok_or_else(|| {
                    w.error("model", format!("unknown model `{name}`; available: {}", models::MODELS.join(", ")))
                })?;
                Study::Plans(Box::new(PlanStudy {
                    model,
                    nodes: w.u32_in("nodes", 4, 1..=4096)?,
                    global_batch: w.u32_in("global_batch", 1024, 1..=1 << 24)?,
                    micro_batch: w.u32_in("micro_batch", 1, 1..=1 << 16)?,
                }))
            }
            "checkpoints" => Study::Checkpoints(Box::new(checkpoint_study(w, c, &mut fallbacks)?)),
            _ => Study::Gradients(Box::new(gradient_study(w, c, &mut fallbacks)?)),
        };
        Ok(Scenario { study, fallbacks })
    }

    /// The policy, if it runs in this scenario's study.
    fn policy(&self, policy: &str) -> Result<&'static PolicyInfo, ScenarioError> {
        let info = find(policy)?;
        let wanted = match self.study {
            Study::Gradients(_) => "gradients",
            Study::Checkpoints(_) => "checkpoints",
            Study::Plans(_) => "plans",
            Study::Pushdown(_) => "pushdown",
            Study::Federated(_) => "federated",
            Study::Caching(_) => "caching",
            Study::Gan(_) => "gan",
        };
        if info.study() != wanted {
            return Err(ScenarioError::Invalid(format!(
                "policy {policy:?} runs in a `{}` study; this scenario's `[workload] kind` is `{wanted}` (its policies: {})",
                info.study(),
                REGISTRY.iter().filter(|p| p.study() == wanted).map(|p| p.name).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(info)
    }

    /// Checks a policy and its parameters.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        let info = self.policy(policy)?;
        params.finish(info.params)?;
        info.build.check(params)?;
        if let Builder::Gradients(_) = info.build {
            params.f64_in("lr", 0.05, 1e-6..=10.0)?;
            params.f64_in("codec_gbps", 1.0, 1e-6..=1e6)?;
        }
        Ok(())
    }

    /// Runs one policy with one seed.
    pub fn run(
        &self,
        policy: &str,
        params: &Params,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let info = self.policy(policy)?;
        params.finish(info.params)?;
        match (&self.study, info.build) {
            (Study::Gradients(s), Builder::Gradients(build)) => {
                run_gradients(s, build(params)?, params, seed, progress)
            }
            (Study::Checkpoints(s), Builder::Checkpoints(build)) => {
                let (mut compressor, mut restorer) = build(params)?;
                let r = restores::run(&s.split, &s.spec, compressor.as_mut(), restorer.as_mut(), seed, progress)?;
                let best = r.checkpoint_bytes.iter().map(|&b| r.raw_bytes as f64 / b.max(1) as f64).fold(0.0, f64::max);
                let mean_kb =
                    r.checkpoint_bytes.iter().sum::<u64>() as f64 / r.checkpoint_bytes.len().max(1) as f64 / 1e3;
                let mut out = RunOutput {
                    metrics: vec![
                        Metric::new("accuracy_pct", 100.0 * r.accuracy(), Better::Higher),
                        Metric::new("test_loss", r.test_loss, Better::Lower),
                        Metric::new("compression_x", r.ratio(), Better::Higher),
                        Metric::new("compression_x_max", best, Better::Higher),
                        Metric::new("checkpoint_kb_mean", mean_kb, Better::Lower),
                        Metric::new("restores", f64::from(r.restores), Better::Neither),
                    ],
                    ..RunOutput::default()
                };
                out.tables.push(Table {
                    name: "checkpoints".into(),
                    columns: vec![
                        "epoch".into(),
                        "accuracy_pct".into(),
                        "checkpoint_kb".into(),
                        "compression_x".into(),
                    ],
                    rows: r
                        .accuracy_by_epoch
                        .iter()
                        .zip(&r.checkpoint_bytes)
                        .enumerate()
                        .map(|(i, (a, b))| {
                            vec![
                                Cell::Int(i as i64 + 1),
                                Cell::Float(100.0 * a),
                                Cell::Float(*b as f64 / 1e3),
                                Cell::Float(r.raw_bytes as f64 / (*b).max(1) as f64),
                            ]
                        })
                        .collect(),
                });
                out.series.push(accuracy_series(&r.accuracy_by_epoch));
                Ok(out)
            }
            (Study::Plans(s), Builder::Plans(build)) => {
                let (instance, efficiency) = build(params)?;
                run_plans(s, &instance, efficiency)
            }
            (Study::Pushdown(s), Builder::Pushdown(build)) => Ok(run_pushdown(s, build(params)?)),
            (Study::Gan(s), Builder::Gan(build)) => Ok(run_gan(s, &build(params)?, seed, progress)),
            (Study::Caching(s), Builder::Caching(build)) => {
                let (cache, selection) = build(params)?;
                let r = fedcase::run(&s.split, &s.spec, cache, selection, seed, progress)?;
                let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
                Ok(RunOutput {
                    metrics: vec![
                        m("time_to_target_s", r.time_to_target_s, Better::Lower),
                        m("accuracy_pct", 100.0 * r.accuracy(), Better::Higher),
                        m("hit_rate_pct", 100.0 * r.hit_rate, Better::Higher),
                        m("total_time_s", r.curve.last().map_or(0.0, |c| c.0), Better::Lower),
                        m("distinct_clients", r.distinct_clients as f64, Better::Neither),
                    ],
                    series: vec![Series {
                        name: "time_to_accuracy".into(),
                        x_label: "simulated time (s)".into(),
                        y_label: "test accuracy (%)".into(),
                        points: r.curve.iter().map(|&(t, a)| (t, 100.0 * a)).collect(),
                    }],
                    notes: if r.time_to_target_s.is_nan() {
                        vec![format!("the target accuracy {:.1}% was not reached", 100.0 * s.spec.target)]
                    } else {
                        Vec::new()
                    },
                    ..RunOutput::default()
                })
            }
            (Study::Federated(s), Builder::Federated(build)) => {
                let r = pack::run(&s.split, &s.spec, build(params)?, seed, progress)?;
                let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
                Ok(RunOutput {
                    metrics: vec![
                        m("accuracy_pct", 100.0 * r.accuracy(), Better::Higher),
                        m("upload_kb_per_round", r.upload_bytes as f64 / 1e3, Better::Lower),
                        m("ciphertexts_per_round", r.ciphertexts as f64, Better::Lower),
                        m("lanes_per_slot", f64::from(r.lanes), Better::Neither),
                        m("clipped_pct", 100.0 * r.clipped, Better::Neither),
                        m("noisy_slots", r.noisy_slots as f64, Better::Lower),
                    ],
                    series: vec![Series {
                        name: "accuracy".into(),
                        x_label: "round".into(),
                        y_label: "test accuracy (%)".into(),
                        points: r
                            .accuracy_by_round
                            .iter()
                            .enumerate()
                            .map(|(i, a)| ((i + 1) as f64, 100.0 * a))
                            .collect(),
                    }],
                    ..RunOutput::default()
                })
            }
            _ => Err(ScenarioError::Invalid(format!("policy {policy:?} does not run in this study"))),
        }
    }

    /// Data substitutions made while preparing.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        let names = match self.study {
            Study::Gradients(_) => METRICS,
            Study::Checkpoints(_) => CHECKPOINT_METRICS,
            Study::Plans(_) => PLAN_METRICS,
            Study::Pushdown(_) => PUSHDOWN_METRICS,
            Study::Federated(_) => FEDERATED_METRICS,
            Study::Caching(_) => CACHING_METRICS,
            Study::Gan(_) => GAN_METRICS,
        };
        names.iter().map(|m| m.to_string()).collect()
    }

    /// What one run needs.
    pub fn estimate(&self, policy: &str, params: &Params) -> Result<Estimate, ScenarioError> {
        self.check(policy, params)?;
        if let Study::Pushdown(p) = &self.study {
            let cases =
                (p.models.len() * p.bandwidths_gbit.len() * p.storage_gflops.len() * p.storage_memory_gb.len()) as u64;
            let mut e = Estimate::default();
            e.memory("one row per case", cases * 200 + (1 << 20));
            e.events("split evaluations", cases * 64);
            return Ok(e);
        }
        if let Study::Gan(g) = &self.study {
            let core_iterations = g.cores.iter().map(|&n| u64::from(n)).sum::<u64>() * u64::from(g.setting.iterations);
            let mut e = Estimate::default();
            e.memory(
                "per-core clocks and per-host batches",
                g.cores.iter().map(|&n| u64::from(n) * 64).sum::<u64>() + (1 << 20),
            );
            e.events("core phases", core_iterations * u64::from(g.setting.job.n_dis + 1));
            // Storage congestion flips per host over the simulated span (at
            // least the compute and all-reduces of every iteration).
            let io = &g.setting.io;
            if io.congested_mean_s > 0.0 {
                let flips: f64 = g
                    .cores
                    .iter()
                    .map(|&n| {
                        let (phases, _) = paragan::phases(&g.setting.job, &g.setting.fabric, n, paragan::Layout::Aware);
                        let span: f64 = phases.iter().map(|p| p.compute_s + p.allreduce_s).sum::<f64>()
                            * f64::from(g.setting.iterations);
                        let hosts = f64::from(n.div_ceil(g.setting.fabric.cores_per_host.max(1)));
                        hosts * 2.0 * span / (io.normal_mean_s + io.congested_mean_s)
                    })
                    .sum();
                e.events("storage congestion changes (all hosts)", flips.min(u64::MAX as f64) as u64);
            }
            return Ok(e);
        }
        if let Study::Plans(p) = &self.study {
            let mut e = Estimate::default();
            e.memory("the layer table and the plans", 64 * p.model.layers.len() as u64 + (1 << 20));
            e.events("step costs (one per plan)", 4 * u64::from(p.nodes).max(1) * 64);
            return Ok(e);
        }
        let (split, arch, copies, steps) = match &self.study {
            Study::Gradients(s) => {
                let steps = (s.split.train.len() / s.spec.batch) as u64 * u64::from(s.spec.epochs);
                // Parameters, velocity, each worker's gradient and residual.
                (&s.split, &s.spec.arch, 3 + 2 * s.spec.workers as u64, steps * s.spec.workers as u64)
            }
            Study::Checkpoints(s) => {
                let steps = (s.split.train.len() / s.spec.batch) as u64 * u64::from(s.spec.epochs);
                // Parameters, velocity, the restorer's copies and the codec's symbols.
                (&s.split, &s.spec.arch, 8, steps)
            }
            Study::Federated(s) => {
                let per_round = (s.split.train.len() / s.spec.batch.max(1)) as u64 * u64::from(s.spec.local_epochs);
                // Global, local and one update per client, and the ciphertext sums.
                (&s.split, &s.spec.arch, 4 + s.spec.clients as u64 + 32, per_round * u64::from(s.spec.rounds))
            }
            Study::Caching(s) => {
                let per_round = (s.split.train.len() / s.spec.clients.max(1) / s.spec.batch.max(1)) as u64;
                (
                    &s.split,
                    &s.spec.arch,
                    4 + s.spec.per_round as u64,
                    per_round * (s.spec.per_round * s.spec.rounds as usize) as u64,
                )
            }
            Study::Plans(_) | Study::Pushdown(_) | Study::Gan(_) => return Ok(Estimate::default()),
        };
        let side = split.train.rows;
        let params_n: u64 = arch.shapes(side).iter().map(|(_, shape)| shape.iter().product::<usize>() as u64).sum();
        let mut e = Estimate::default();
        e.memory("parameters, optimiser state and their copies", params_n * 4 * copies);
        e.memory("training and test images", (split.train.inputs.len() + split.test.inputs.len()) as u64 * 4);
        e.events("training steps (x workers)", steps);
        Ok(e)
    }
}

fn accuracy_series(by_epoch: &[f64]) -> Series {
    Series {
        name: "accuracy".into(),
        x_label: "epoch".into(),
        y_label: "test accuracy (%)".into(),
        points: by_epoch.iter().enumerate().map(|(i, a)| ((i + 1) as f64, 100.0 * a)).collect(),
    }
}

/// One gradient-study run.
fn run_gradients(
    s: &GradientStudy,
    exchange: Exchange,
    params: &Params,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<RunOutput, ScenarioError> {
    let mut spec = s.spec.clone();
    if let Some(lr) = params.f64("lr")? {
        spec.lr = params.f64_in("lr", lr, 1e-6..=10.0)? as f32;
    }
    let codec_gbps = params.f64_in("codec_gbps", f64::INFINITY, 1e-6..=f64::INFINITY)?;
    let result = train(&s.split, &spec, &exchange, seed, progress)?;
    let plan = Plan {
        dp: s.cluster.devices(),
        tp: 1,
        pp: 1,
        microbatches: 1,
        micro_batch: s.micro_batch,
        zero1: false,
        checkpointing: false,
    };
    let options = Options {
        exchange: GradientExchange {
            ratio: result.volume_ratio(),
            collective: result.collective,
            encode_gbps: codec_gbps,
            decode_gbps: codec_gbps,
        },
        ..s.options.clone()
    };
    let cost =
        step::step_cost(&s.model, &s.cluster, &plan, &options).map_err(|e| ScenarioError::Invalid(e.to_string()))?;
    let ms = |x: f64| x * 1e3;
    let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
    let mut out = RunOutput {
        metrics: vec![
            m("accuracy_pct", 100.0 * result.accuracy(), Better::Higher),
            m("test_loss", result.test_loss, Better::Lower),
            m("train_loss", result.train_loss, Better::Lower),
            m("volume_pct", 100.0 * result.volume_ratio(), Better::Lower),
            m("payload_kb_per_step", result.payload_bytes / 1e3, Better::Lower),
            m("zero_pct", 100.0 * result.zero_fraction, Better::Neither),
            m("exponent_entropy_bits", result.exponent_entropy, Better::Neither),
            m("step_ms", ms(cost.total_s), Better::Lower),
            m("comm_ms", ms(cost.dp_comm_s), Better::Lower),
            m("codec_ms", ms(cost.codec_s), Better::Lower),
            m("compute_ms", ms(cost.compute_s), Better::Neither),
            m("steps", result.steps as f64, Better::Neither),
        ],
        ..RunOutput::default()
    };
    out.tables.push(Table {
        name: "epochs".into(),
        columns: vec!["epoch".into(), "accuracy_pct".into()],
        rows: result
            .accuracy_by_epoch
            .iter()
            .enumerate()
            .map(|(i, a)| vec![Cell::Int(i as i64 + 1), Cell::Float(100.0 * a)])
            .collect(),
    });
    out.series.push(accuracy_series(&result.accuracy_by_epoch));
    Ok(out)
}

/// One plans-study run: the planner on `nodes` instances.
fn run_plans(s: &PlanStudy, instance: &Instance, efficiency: f64) -> Result<RunOutput, ScenarioError> {
    let cluster = nxd::cluster(instance, s.nodes);
    let opts = Options { efficiency, ..Options::default() };
    let Some(choice) = nxd::best_plan(&s.model, &cluster, s.global_batch, s.micro_batch, &opts) else {
        return Err(ScenarioError::Invalid(format!(
            "no plan of {} fits on {} x {} with a global batch of {} in micro-batches of {}",
            s.model.name, s.nodes, instance.name, s.global_batch, s.micro_batch
        )));
    };
    let step = choice.cost.total_s;
    let samples = f64::from(s.global_batch) / step;
    let tokens = s.model.tokens_per_sample.map_or(f64::NAN, |t| samples * t as f64);
    let usd_per_step = instance.price_per_hour * f64::from(s.nodes) * step / 3600.0;
    let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    Ok(RunOutput {
        metrics: vec![
            m("step_s", step, Better::Lower),
            m("samples_per_s", samples, Better::Higher),
            m("tokens_per_s", tokens, Better::Higher),
            m("mfu_pct", 100.0 * nxd::mfu(&s.model, s.global_batch, step, &cluster), Better::Higher),
            m("usd_per_m_tokens", usd_per_step / (tokens * step) * 1e6, Better::Lower),
            m("usd_per_step", usd_per_step, Better::Lower),
            m("memory_gib", choice.cost.memory_gib, Better::Neither),
            m("dp", f64::from(choice.plan.dp), Better::Neither),
            m("tp", f64::from(choice.plan.tp), Better::Neither),
            m("pp", f64::from(choice.plan.pp), Better::Neither),
            m("zero1", flag(choice.plan.zero1), Better::Neither),
            m("checkpointing", flag(choice.plan.checkpointing), Better::Neither),
            m("plans_fitting", choice.fitting as f64, Better::Neither),
        ],
        ..RunOutput::default()
    })
}
