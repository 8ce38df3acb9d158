//! Building a train run from scenario parameters.
//!
//! `[workload] kind = "gradients"` (the default): real data-parallel
//! training whose gradients pass through each policy's exchange, priced on
//! a cluster by the step cost model ([`crate::step`]).
//!
//! Keys:
//! - `[workload]`: `data` (the MNIST t10k directory,
//!   `../shared/data/mnist-t10k`; absent → synthetic digits, and the
//!   results say so), `network` (`cnn`; `mlp`, `mlp-<w>x<w>…`), `workers`
//!   (4), `batch` (64, the global batch), `epochs` (2), `lr` (0.05),
//!   `momentum` (0.9), `train_images` (all 8,000 of the split; fewer for
//!   quick runs).
//! - `[cluster]` (the cost model): `model` (`resnet50`: the model whose
//!   step is priced with the ratio the exchange achieved on the real
//!   gradients), `device` (`a100`), `per_node` (1; the data-parallel group
//!   is `workers` devices), `nic_gbit` (10), `intra_gbps` (300),
//!   `latency_us` (10, per hop), `micro_batch` (32 samples per device),
//!   `algorithm` (`ring` or `tree`), `efficiency` (0.5).
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
use crate::gcomp::GcompConfig;
use crate::models::{self, ModelTable};
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
    build: fn(&Params) -> Result<Exchange, ParamError>,
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
        build: |p| {
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
        },
    },
    PolicyInfo {
        name: "fp32",
        kind: "baseline",
        fidelity: "real",
        source: "uncompressed data-parallel training (FP32 ring all-reduce)",
        summary: "the exact mean of the workers' FP32 gradients",
        params: COMMON,
        build: |_| Ok(Exchange::Fp32),
    },
    PolicyInfo {
        name: "fp16",
        kind: "baseline",
        fidelity: "real",
        source: "half-precision gradient all-reduce",
        summary: "gradients rounded to FP16 before and after the sum; half the bytes",
        params: COMMON,
        build: |_| Ok(Exchange::Fp16),
    },
    PolicyInfo {
        name: "top-k",
        kind: "baseline",
        fidelity: "real",
        source: "top-k sparsification with error feedback (Stich et al., NeurIPS'18; Lin et al., ICLR'18)",
        summary: "each worker sends the largest `ratio` of its accumulated gradient as index-value pairs, keeps the rest; all-gathered",
        params: &["lr", "codec_gbps", "ratio"],
        build: |p| Ok(Exchange::TopK { ratio: p.f64_in("ratio", 0.01, 1e-6..=1.0)? }),
    },
    PolicyInfo {
        name: "random-k",
        kind: "baseline",
        fidelity: "real",
        source: "random-k sparsification with error feedback (Stich et al., NeurIPS'18)",
        summary: "a random `ratio` of entries, the same on every worker, all-reduced; the rest kept for later",
        params: &["lr", "codec_gbps", "ratio"],
        build: |p| Ok(Exchange::RandomK { ratio: p.f64_in("ratio", 0.1, 1e-6..=1.0)? }),
    },
    PolicyInfo {
        name: "qsgd",
        kind: "baseline",
        fidelity: "real",
        source: "QSGD (Alistarh et al., NeurIPS'17), fixed-width levels instead of Elias coding",
        summary: "each entry as sign and one of 2^bits - 1 levels of the tensor's norm, rounded stochastically; all-gathered",
        params: &["lr", "codec_gbps", "bits"],
        build: |p| Ok(Exchange::Qsgd { bits: p.u32_in("bits", 4, 1..=8)? }),
    },
    PolicyInfo {
        name: "powersgd",
        kind: "baseline",
        fidelity: "real",
        source: "PowerSGD (Vogels, Karimireddy and Jaggi, NeurIPS'19)",
        summary: "rank-r factors of each weight matrix by one warm-started power iteration, all-reduced, with error feedback; vectors sent whole",
        params: &["lr", "codec_gbps", "rank"],
        build: |p| Ok(Exchange::PowerSgd { rank: p.usize_in("rank", 2, 1..=64)? }),
    },
    PolicyInfo {
        name: "signsgd",
        kind: "baseline",
        fidelity: "real",
        source: "scaled signSGD with error feedback (EF-SignSGD, Karimireddy et al., ICML'19)",
        summary: "one sign bit per entry times the tensor's mean magnitude, with error feedback; all-gathered",
        params: COMMON,
        build: |_| Ok(Exchange::SignSgd),
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
    study: GradientStudy,
    fallbacks: Vec<String>,
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
        w.choice_or("kind", &["gradients"], "gradients")?;
        w.finish(&["kind", "data", "network", "workers", "batch", "epochs", "lr", "momentum", "train_images"])?;
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
        ])?;
        let mut fallbacks = Vec::new();
        let dir = PathBuf::from(w.str("data")?.unwrap_or(MNIST_DIR));
        let mut split = data::mnist_or_synthetic(Path::new(&dir), 1)?;
        if let Origin::Synthetic(why) = &split.origin {
            fallbacks.push(why.clone());
        }
        let train_images = w.usize_in("train_images", split.train.len(), 1..=split.train.len().max(1))?;
        split.train = split.train.slice(0..train_images);
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
        let spec = RunSpec {
            arch,
            workers,
            batch,
            epochs: w.u32_in("epochs", 2, 1..=1000)?,
            lr: w.f64_in("lr", 0.05, 1e-6..=10.0)? as f32,
            momentum: w.f64_in("momentum", 0.9, 0.0..=0.999)? as f32,
        };
        let model_name = c.str("model")?.unwrap_or("resnet50");
        let model = models::model(model_name).ok_or_else(|| {
            c.error("model", format!("unknown model `{model_name}`; available: {}", models::MODELS.join(", ")))
        })?;
        let device_name = c.str("device")?.unwrap_or("a100");
        let device = step::accelerator(device_name).ok_or_else(|| {
            c.error(
                "device",
                format!(
                    "unknown device `{device_name}`; available: trn1, {}",
                    nimbus_model::hardware::gpu_names().join(", ")
                ),
            )
        })?;
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
        };
        let options = Options {
            efficiency: c.f64_in("efficiency", 0.5, 0.01..=1.0)?,
            algorithm: match c.choice_or("algorithm", &["ring", "tree"], "ring")? {
                "tree" => Algorithm::Tree,
                _ => Algorithm::Ring,
            },
            ..Options::default()
        };
        let micro_batch = c.u32_in("micro_batch", 32, 1..=1 << 20)?;
        Ok(Scenario { study: GradientStudy { split, spec, model, cluster, micro_batch, options }, fallbacks })
    }

    /// Checks a policy and its parameters.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        let info = find(policy)?;
        params.finish(info.params)?;
        (info.build)(params)?;
        params.f64_in("lr", 0.05, 1e-6..=10.0)?;
        params.f64_in("codec_gbps", 1.0, 1e-6..=1e6)?;
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
        let info = find(policy)?;
        params.finish(info.params)?;
        let exchange = (info.build)(params)?;
        let s = &self.study;
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
        let cost = step::step_cost(&s.model, &s.cluster, &plan, &options)
            .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        let ms = |x: f64| x * 1e3;
        let mut out = RunOutput::default();
        let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
        out.metrics = vec![
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
        ];
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
        out.series.push(Series {
            name: "accuracy".into(),
            x_label: "epoch".into(),
            y_label: "test accuracy (%)".into(),
            points: result.accuracy_by_epoch.iter().enumerate().map(|(i, a)| ((i + 1) as f64, 100.0 * a)).collect(),
        });
        Ok(out)
    }

    /// Data substitutions made while preparing.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        METRICS.iter().map(|m| m.to_string()).collect()
    }

    /// What one run needs.
    pub fn estimate(&self, policy: &str, params: &Params) -> Result<Estimate, ScenarioError> {
        self.check(policy, params)?;
        let s = &self.study;
        let side = s.split.train.rows;
        let params_n: u64 =
            s.spec.arch.shapes(side).iter().map(|(_, shape)| shape.iter().product::<usize>() as u64).sum();
        let mut e = Estimate::default();
        // Parameters, velocity, each worker's gradient and residual.
        e.memory("parameters, optimiser state and worker gradients", params_n * 4 * (3 + 2 * s.spec.workers as u64));
        e.memory("training and test images", (s.split.train.inputs.len() + s.split.test.inputs.len()) as u64 * 4);
        let steps = (s.split.train.len() / s.spec.batch) as u64 * u64::from(s.spec.epochs);
        e.events("training steps × workers", steps * s.spec.workers as u64);
        Ok(e)
    }
}
