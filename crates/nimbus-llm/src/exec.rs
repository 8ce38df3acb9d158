//! Per-iteration execution time: one trait, three models.
//!
//! An iteration runs a batch of prefill chunks (`c_i` new tokens after `k_i`
//! cached ones) and decodes (context `l_j`) through every layer of a replica
//! sharded over `tp` GPUs by tensor parallelism:
//!
//! `t = L·[t_gemm(T) + t_small(T) + t_attn + 2·t_allreduce(T·d·2 B)] + t_head + t_fixed + n·t_request`
//!
//! with `T = Σc_i + #decodes` and `n` the requests in the batch.
//! - [`Roofline`]: every term from the device's peak FLOP/s and memory
//!   bandwidth, each scaled by an efficiency η (`max(bytes/(η_b·BW),
//!   flops/(η_c·F))`).
//! - [`ProfileTable`]: `t_gemm` and `t_small` interpolated from measured
//!   per-operator times (Vidur's `mlp.csv`), attention from the roofline
//!   (no attention profiles are public), all-reduce from measured NCCL
//!   tables or the analytic model.
//! - [`FittedPoly`]: DistServe's fitted closed forms
//!   (`prefill = a + b·Σlen + c·Σlen²`, `decode = a + b·Σctx + c·B`).
//!
//! Fixed per-iteration and per-request overheads (kernel launches, the
//! scheduler's CPU time) are parameters: they cannot be derived from a
//! roofline, and are calibrated against measurements
//! ([`crate::calibration`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use nimbus_trace::llm::{DistServeFit, OperatorTimes};

use crate::model::{FP16_BYTES, ModelSpec};

/// A GPU as the execution models see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Catalog name.
    pub name: String,
    /// Dense fp16 tensor FLOP/s.
    pub peak_flops: f64,
    /// Memory bandwidth, bytes/s.
    pub bandwidth: f64,
    /// Memory, bytes.
    pub memory_bytes: f64,
}

impl Device {
    /// The device of a GPU in `nimbus_model`'s catalog.
    pub fn from_catalog(name: &str) -> Option<Self> {
        nimbus_model::gpu(name).map(|g| Device {
            name: g.name.to_string(),
            peak_flops: g.fp16_tflops * 1e12,
            bandwidth: g.memory_bandwidth_gbps * 1e9,
            memory_bytes: g.memory_gib * 1024.0 * 1024.0 * 1024.0,
        })
    }
}

/// What one iteration computes, aggregated over its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchShape {
    /// Requests with a prefill chunk.
    pub prefill_requests: u32,
    /// Σ c_i: new prompt tokens.
    pub prefill_tokens: u64,
    /// Σ c_i·(k_i + c_i/2): query-key pairs of causal prefill attention.
    pub prefill_pairs: f64,
    /// Σ c_i²: DistServe's quadratic prefill term.
    pub prefill_square: f64,
    /// Requests decoding one token.
    pub decode_requests: u32,
    /// Σ l_j: context tokens the decodes attend to.
    pub decode_context: u64,
    /// Distinct model instances with requests in the batch (several only
    /// on replicas that host instances sharing experts).
    pub instances: u32,
}

impl BatchShape {
    /// Adds a prefill chunk of `chunk` tokens after `cached` ones.
    pub fn add_prefill(&mut self, chunk: u32, cached: u32) {
        let c = chunk as f64;
        self.prefill_requests += 1;
        self.prefill_tokens += chunk as u64;
        self.prefill_pairs += c * (cached as f64 + c / 2.0);
        self.prefill_square += c * c;
    }

    /// Adds a decode attending to `context` tokens.
    pub fn add_decode(&mut self, context: u32) {
        self.decode_requests += 1;
        self.decode_context += context as u64;
    }

    /// Tokens through the GEMMs (T).
    pub fn tokens(&self) -> u64 {
        self.prefill_tokens + self.decode_requests as u64
    }

    /// Requests in the batch.
    pub fn requests(&self) -> u32 {
        self.prefill_requests + self.decode_requests
    }

    /// Nothing to run.
    pub fn is_empty(&self) -> bool {
        self.requests() == 0
    }
}

/// Predicts iteration times.
pub trait ExecTimeModel: Send + Sync + std::fmt::Debug {
    /// Seconds one iteration of `batch` takes.
    fn iteration_s(&self, batch: &BatchShape) -> f64;
    /// One line for reports.
    fn describe(&self) -> String;
}

/// Default GEMM launch time, µs (the same profiles at TP 8, where each
/// GEMM is small).
pub const GEMM_LAUNCH_US: f64 = 5.0;

/// Efficiencies and overheads of a roofline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RooflineParams {
    /// Fraction of peak memory bandwidth reached.
    pub eta_bandwidth: f64,
    /// Fraction of peak FLOP/s reached.
    pub eta_compute: f64,
    /// Fixed time per iteration, ms.
    pub iteration_overhead_ms: f64,
    /// Time per request in the batch, ms.
    pub request_overhead_ms: f64,
    /// Exponent p of the smooth roof `(mem^p + comp^p)^(1/p)` of linear
    /// layers: near the memory-to-compute knee a kernel is limited by both
    /// (p → ∞ is the sharp `max`).
    pub knee_sharpness: f64,
    /// Fixed time per GEMM kernel (four per layer), µs.
    pub gemm_launch_us: f64,
    /// Fraction of peak memory bandwidth the element-wise kernels (layer
    /// norms, rotary embedding, activation, residual adds) reach: unfused,
    /// they stream far below the GEMMs' η_b.
    pub eta_elementwise: f64,
    /// Fixed time per element-wise kernel (six per layer), µs.
    pub elementwise_launch_us: f64,
}

impl RooflineParams {
    /// Defaults of a device: the GEMM roofline (η_b, η_c and the knee
    /// exponent) and the element-wise kernels fitted to Vidur's profiles on
    /// A100 and H100 ([`crate::calibration::fit_gemm_efficiency`] and
    /// [`crate::calibration::fit_elementwise`], checked in
    /// `tests/calibration.rs`); the A100 fit elsewhere.
    pub fn for_device(device: &str) -> Self {
        let fit = if device.starts_with("h100") { &H100_FIT } else { &A100_FIT };
        RooflineParams {
            eta_bandwidth: fit.eta_bandwidth,
            eta_compute: fit.eta_compute,
            knee_sharpness: fit.knee_sharpness,
            eta_elementwise: fit.eta_elementwise,
            elementwise_launch_us: fit.elementwise_launch_us,
            ..Self::default()
        }
    }
}

/// What the profiles fix of a device's roofline.
struct DeviceFit {
    eta_bandwidth: f64,
    eta_compute: f64,
    knee_sharpness: f64,
    eta_elementwise: f64,
    elementwise_launch_us: f64,
}

/// A100-80GB: 5,680 GEMM and element-wise points of four Llama models at TP 1–8.
const A100_FIT: DeviceFit = DeviceFit {
    eta_bandwidth: 0.80,
    eta_compute: 0.72,
    knee_sharpness: 1.5,
    eta_elementwise: 0.56,
    elementwise_launch_us: 2.5,
};
/// H100: 2,072 points of two Llama-2 models at TP 1–8.
const H100_FIT: DeviceFit = DeviceFit {
    eta_bandwidth: 0.95,
    eta_compute: 0.73,
    knee_sharpness: 1.25,
    eta_elementwise: 0.64,
    elementwise_launch_us: 2.2,
};

impl Default for RooflineParams {
    /// The A100 fit; no overheads, as Vidur's default.
    fn default() -> Self {
        RooflineParams {
            eta_bandwidth: A100_FIT.eta_bandwidth,
            eta_compute: A100_FIT.eta_compute,
            iteration_overhead_ms: 0.0,
            request_overhead_ms: 0.0,
            knee_sharpness: A100_FIT.knee_sharpness,
            gemm_launch_us: GEMM_LAUNCH_US,
            eta_elementwise: A100_FIT.eta_elementwise,
            elementwise_launch_us: A100_FIT.elementwise_launch_us,
        }
    }
}

/// Tensor-parallel all-reduce time.
#[derive(Debug, Clone, PartialEq)]
pub enum AllReduce {
    /// Ring all-reduce: `latency + 2(n−1)/n · bytes / bus_bandwidth`.
    Analytic {
        /// Fixed time per collective, s.
        latency_s: f64,
        /// Bus bandwidth, bytes/s.
        bus_bandwidth: f64,
    },
    /// Measured medians (bytes, ms), interpolated; beyond the last point
    /// extrapolated along the last segment.
    Table(Vec<(u64, f64)>),
}

impl AllReduce {
    /// The analytic default of a device: NVLink/NVSwitch bus bandwidths in
    /// the range NCCL reaches on 8-GPU nodes (about 140 GB/s on A100 and
    /// 300 GB/s on H100, from Vidur's measured tables); PCIe elsewhere.
    pub fn default_for(device: &str) -> Self {
        let bus_gbps = if device.starts_with("h100") {
            300.0
        } else if device.starts_with("a100") {
            140.0
        } else {
            20.0
        };
        AllReduce::Analytic { latency_s: 30e-6, bus_bandwidth: bus_gbps * 1e9 }
    }

    /// Seconds to all-reduce `bytes` across `workers` GPUs.
    pub fn time_s(&self, bytes: f64, workers: u32) -> f64 {
        if workers <= 1 {
            return 0.0;
        }
        match self {
            AllReduce::Analytic { latency_s, bus_bandwidth } => {
                let n = workers as f64;
                latency_s + 2.0 * (n - 1.0) / n * bytes / bus_bandwidth
            }
            AllReduce::Table(points) => {
                nimbus_model::curve::interpolate(points.iter().map(|&(b, ms)| (b as f64, ms)), bytes) / 1e3
            }
        }
    }
}

/// The roofline model of one replica.
#[derive(Debug, Clone)]
pub struct Roofline {
    model: ModelSpec,
    device: Device,
    tp: u32,
    params: RooflineParams,
    allreduce: AllReduce,
}

impl Roofline {
    /// A replica of `model` on `tp` GPUs of `device`.
    pub fn new(model: ModelSpec, device: Device, tp: u32, params: RooflineParams, allreduce: AllReduce) -> Self {
        Roofline { model, device, tp: tp.max(1), params, allreduce }
    }

    /// Its parameters.
    pub fn params(&self) -> RooflineParams {
        self.params
    }

    fn memory_s(&self, bytes: f64) -> f64 {
        bytes / (self.params.eta_bandwidth * self.device.bandwidth)
    }

    fn compute_s(&self, flops: f64) -> f64 {
        flops / (self.params.eta_compute * self.device.peak_flops)
    }

    /// Linear layers of one layer for `tokens` tokens on one GPU: the
    /// weights each token touches are read once; 2 FLOPs per parameter per
    /// token. For mixtures of experts, the expected number of distinct
    /// experts that `tokens` uniformly routed tokens hit are read.
    pub fn gemm_layer_s(&self, tokens: u64) -> f64 {
        if tokens == 0 {
            return 0.0;
        }
        let m = &self.model;
        let tp = self.tp as f64;
        let experts_read = if m.experts <= 1 {
            1.0
        } else {
            let miss = 1.0 - m.experts_per_token as f64 / m.experts as f64;
            m.experts as f64 * (1.0 - miss.powf(tokens as f64))
        };
        let weights = (m.attention_params_per_layer() + experts_read * m.expert_params()) / tp;
        let flops = 2.0 * m.active_params_per_layer() / tp * tokens as f64;
        self.roof(self.memory_s(weights * FP16_BYTES), self.compute_s(flops)) + 4.0 * self.params.gemm_launch_us / 1e6
    }

    /// The model.
    pub fn model(&self) -> &ModelSpec {
        &self.model
    }

    /// GPUs.
    pub fn tp(&self) -> u32 {
        self.tp
    }

    /// Seconds of a kernel moving `bytes` and computing `flops` on one GPU.
    pub fn kernel_s(&self, bytes: f64, flops: f64) -> f64 {
        self.roof(self.memory_s(bytes), self.compute_s(flops))
    }

    /// Everything of an iteration but the linear layers: attention, layer
    /// norms, all-reduces, the LM head and the overheads.
    pub fn non_gemm_s(&self, batch: &BatchShape) -> f64 {
        let t = batch.tokens();
        let layer = self.small_layer_s(t) + self.attention_layer_s(batch) + self.allreduce_layer_s(t);
        self.model.layers as f64 * layer + self.head_s(batch.requests()) + self.overheads_s(batch)
    }

    /// The smooth roof of a kernel's memory and compute times.
    fn roof(&self, memory: f64, compute: f64) -> f64 {
        let p = self.params.knee_sharpness;
        if !p.is_finite() {
            return memory.max(compute);
        }
        let top = memory.max(compute);
        if top <= 0.0 {
            return 0.0;
        }
        top * ((memory / top).powf(p) + (compute / top).powf(p)).powf(1.0 / p)
    }

    /// Layer norms, rotary embedding, activation and residual adds of one
    /// layer on one GPU: six memory-bound kernels, each reading and writing
    /// its activations once ([`elementwise_values_per_token`]), at the
    /// element-wise efficiency.
    pub fn small_layer_s(&self, tokens: u64) -> f64 {
        if tokens == 0 {
            return 0.0;
        }
        let bytes = tokens as f64 * elementwise_values_per_token(&self.model, self.tp) * FP16_BYTES;
        ELEMENTWISE_KERNELS * self.params.elementwise_launch_us / 1e6
            + bytes / (self.params.eta_elementwise * self.device.bandwidth)
    }

    /// Attention of one layer on one GPU: decodes read their KV cache;
    /// prefills are compute-bound.
    pub fn attention_layer_s(&self, batch: &BatchShape) -> f64 {
        let m = &self.model;
        let tp = self.tp as f64;
        let kv_per_token = 2.0 * (m.kv_heads * m.head_dim()) as f64 * FP16_BYTES / tp;
        let decode = self.memory_s(batch.decode_context as f64 * kv_per_token);
        let prefill = self.compute_s(4.0 * batch.prefill_pairs * (m.heads * m.head_dim()) as f64 / tp);
        decode + prefill
    }

    /// The LM head, run for one token per request.
    fn head_s(&self, requests: u32) -> f64 {
        let params = self.model.vocab as f64 * self.model.hidden as f64 / self.tp as f64;
        self.roof(self.memory_s(params * FP16_BYTES), self.compute_s(2.0 * params * requests as f64))
    }

    fn overheads_s(&self, batch: &BatchShape) -> f64 {
        (self.params.iteration_overhead_ms + self.params.request_overhead_ms * batch.requests() as f64) / 1e3
    }

    fn allreduce_layer_s(&self, tokens: u64) -> f64 {
        2.0 * self.allreduce.time_s(tokens as f64 * self.model.hidden as f64 * FP16_BYTES, self.tp)
    }
}

impl ExecTimeModel for Roofline {
    fn iteration_s(&self, batch: &BatchShape) -> f64 {
        if batch.is_empty() {
            return 0.0;
        }
        let t = batch.tokens();
        let layer =
            self.gemm_layer_s(t) + self.small_layer_s(t) + self.attention_layer_s(batch) + self.allreduce_layer_s(t);
        self.model.layers as f64 * layer + self.head_s(batch.requests()) + self.overheads_s(batch)
    }

    fn describe(&self) -> String {
        format!(
            "roofline {} on {}x{} (eta {:.2}/{:.2}, overhead {:.2} ms + {:.3} ms/request)",
            self.model.name,
            self.tp,
            self.device.name,
            self.params.eta_bandwidth,
            self.params.eta_compute,
            self.params.iteration_overhead_ms,
            self.params.request_overhead_ms
        )
    }
}

/// Element-wise kernels per layer: two layer norms, the rotary embedding,
/// the activation and two residual adds.
pub const ELEMENTWISE_KERNELS: f64 = 6.0;

/// fp16 values the element-wise kernels of one layer read and write per
/// token on one of `tp` GPUs: a layer norm reads and writes d; a residual
/// add reads 2d and writes d; the rotary embedding rewrites the queries and
/// keys (sharded); the activation reads the gate and up projections and
/// writes their product (2f + f, sharded; f + f without a gate), for each
/// expert a token is routed to.
pub fn elementwise_values_per_token(model: &ModelSpec, tp: u32) -> f64 {
    let d = model.hidden as f64;
    let tp = tp.max(1) as f64;
    let norms = 2.0 * 2.0 * d;
    let adds = 2.0 * 3.0 * d;
    let rope = 2.0 * ((model.heads + model.kv_heads) * model.head_dim()) as f64 / tp;
    let act_values = if model.gated_mlp { 3.0 } else { 2.0 };
    let act = act_values * model.ffn as f64 * model.experts_per_token as f64 / tp;
    norms + adds + rope + act
}

/// Operators of Vidur's `mlp.csv` that are GEMMs.
pub const GEMM_OPERATORS: [&str; 4] = ["attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj"];
/// Operators of `mlp.csv` that are element-wise, with how often a layer
/// runs each (two residual adds).
pub const SMALL_OPERATORS: [(&str, f64); 5] =
    [("input_layernorm", 1.0), ("attn_rope", 1.0), ("post_attention_layernorm", 1.0), ("mlp_act", 1.0), ("add", 2.0)];

/// Measured linear-layer times plus roofline attention.
///
/// Beyond the largest profiled token count the tables are extended along
/// the roofline, scaled to the profiles' top points: the last segment of a
/// noisy table can slope downwards (Vidur's Llama-2-7B on A100 measures
/// 7.455 ms at 4,064 tokens and 7.399 ms at 4,096), which linear
/// extrapolation would carry to 0.5 ms at 8,000 tokens.
#[derive(Debug, Clone)]
pub struct ProfileTable {
    /// (num_tokens, gemm ms, small ms), sorted.
    points: Arc<Vec<(f64, f64, f64)>>,
    /// Median of measured/roofline over the top profiled points, for the
    /// GEMMs and the element-wise kernels.
    beyond: (f64, f64),
    roofline: Roofline,
    label: String,
}

/// Profiled points whose measured/roofline ratio extends a table.
const EXTENSION_POINTS: usize = 8;

impl ProfileTable {
    /// Builds from one TP degree's operator times; `roofline` supplies
    /// attention, all-reduce, the head and the overheads.
    pub fn new(times: &OperatorTimes, roofline: Roofline, label: impl Into<String>) -> Result<Self, String> {
        let mut points = Vec::with_capacity(times.len());
        for (&tokens, ops) in times {
            let mut gemm = 0.0;
            for op in GEMM_OPERATORS {
                gemm += ops.get(op).ok_or_else(|| format!("operator `{op}` missing at num_tokens={tokens}"))?;
            }
            let small = SMALL_OPERATORS.iter().map(|(op, n)| ops.get(*op).copied().unwrap_or(0.0) * n).sum::<f64>();
            points.push((tokens as f64, gemm, small));
        }
        if points.is_empty() {
            return Err("no operator times".to_string());
        }
        let top = &points[points.len().saturating_sub(EXTENSION_POINTS)..];
        let ratio = |measured: &dyn Fn(&(f64, f64, f64)) -> f64, model: &dyn Fn(u64) -> f64| {
            let ratios: Vec<f64> = top
                .iter()
                .map(|p| (measured(p), model(p.0 as u64) * 1e3))
                .filter(|&(m, r)| m > 0.0 && r > 0.0)
                .map(|(m, r)| m / r)
                .collect();
            if ratios.is_empty() { 1.0 } else { nimbus_sim::stats::quantile(&ratios, 0.5) }
        };
        let beyond = (ratio(&|p| p.1, &|t| roofline.gemm_layer_s(t)), ratio(&|p| p.2, &|t| roofline.small_layer_s(t)));
        Ok(ProfileTable { points: Arc::new(points), beyond, roofline, label: label.into() })
    }

    fn largest_profiled(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }

    /// Interpolated linear-layer time of one layer, s.
    pub fn gemm_layer_s(&self, tokens: u64) -> f64 {
        if tokens as f64 > self.largest_profiled() {
            return self.beyond.0 * self.roofline.gemm_layer_s(tokens);
        }
        nimbus_model::curve::interpolate(self.points.iter().map(|p| (p.0, p.1)), tokens as f64) / 1e3
    }

    /// Interpolated element-wise time of one layer, s.
    pub fn small_layer_s(&self, tokens: u64) -> f64 {
        if tokens as f64 > self.largest_profiled() {
            return self.beyond.1 * self.roofline.small_layer_s(tokens);
        }
        nimbus_model::curve::interpolate(self.points.iter().map(|p| (p.0, p.2)), tokens as f64) / 1e3
    }
}

impl ExecTimeModel for ProfileTable {
    fn iteration_s(&self, batch: &BatchShape) -> f64 {
        if batch.is_empty() {
            return 0.0;
        }
        let r = &self.roofline;
        let t = batch.tokens();
        let layer = self.gemm_layer_s(t) + self.small_layer_s(t) + r.attention_layer_s(batch) + r.allreduce_layer_s(t);
        r.model.layers as f64 * layer + r.head_s(batch.requests()) + r.overheads_s(batch)
    }

    fn describe(&self) -> String {
        format!("profile {} (attention by roofline, eta {:.2})", self.label, self.roofline.params.eta_bandwidth)
    }
}

/// DistServe's fitted iteration latencies (A100-80GB, OPT models).
#[derive(Debug, Clone)]
pub struct FittedPoly {
    fit: DistServeFit,
    label: String,
}

impl FittedPoly {
    /// From one (model, TP) entry of DistServe's profile.
    pub fn new(fit: DistServeFit, label: impl Into<String>) -> Self {
        FittedPoly { fit, label: label.into() }
    }

    /// Prefill part, ms: `a + b·Σlen + c·Σlen²`.
    pub fn prefill_ms(&self, batch: &BatchShape) -> f64 {
        let [a, b, c] = self.fit.prefill;
        a + b * batch.prefill_tokens as f64 + c * batch.prefill_square
    }

    /// Decode part, ms: `a + b·Σctx + c·B`, with the large-batch fit from
    /// the threshold on.
    pub fn decode_ms(&self, batch: &BatchShape) -> f64 {
        let [a, b, c] =
            if batch.decode_requests < self.fit.threshold { self.fit.decode_small } else { self.fit.decode_large };
        a + b * batch.decode_context as f64 + c * batch.decode_requests as f64
    }
}

impl ExecTimeModel for FittedPoly {
    /// DistServe never mixes phases in one iteration; a mixed batch
    /// (chunked prefill) is charged the sum of both forms.
    fn iteration_s(&self, batch: &BatchShape) -> f64 {
        let mut ms = 0.0;
        if batch.prefill_requests > 0 {
            ms += self.prefill_ms(batch);
        }
        if batch.decode_requests > 0 {
            ms += self.decode_ms(batch);
        }
        ms / 1e3
    }

    fn describe(&self) -> String {
        format!("fitted {}", self.label)
    }
}

/// Shared, thread-safe execution model.
pub type SharedExec = Arc<dyn ExecTimeModel>;

/// Sum of the GEMM medians of `mlp.csv` at each profiled token count,
/// for tests and calibration: `tokens → ms`.
pub fn profiled_gemm_ms(times: &OperatorTimes) -> BTreeMap<u32, f64> {
    times.iter().map(|(&t, ops)| (t, GEMM_OPERATORS.iter().filter_map(|op| ops.get(*op)).sum())).collect()
}

/// Sum of the element-wise medians of `mlp.csv` (residual adds counted
/// twice) at each profiled token count: `tokens → ms`.
pub fn profiled_elementwise_ms(times: &OperatorTimes) -> BTreeMap<u32, f64> {
    times
        .iter()
        .map(|(&t, ops)| (t, SMALL_OPERATORS.iter().map(|(op, n)| ops.get(*op).copied().unwrap_or(0.0) * n).sum()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::model;

    fn a100() -> Device {
        Device::from_catalog("a100-80gb").expect("catalog")
    }

    #[test]
    fn roofline_decode_of_llama_7b_by_hand() {
        let m = model("llama-2-7b").expect("catalog").clone();
        let params = RooflineParams {
            eta_bandwidth: 1.0,
            eta_compute: 1.0,
            knee_sharpness: f64::INFINITY,
            gemm_launch_us: 0.0,
            ..Default::default()
        };
        let r = Roofline::new(m.clone(), a100(), 1, params, AllReduce::default_for("a100"));
        // One token: every weight of a layer read once at 2039 GB/s.
        let weights = (m.attention_params_per_layer() + m.expert_params()) * 2.0;
        assert!((r.gemm_layer_s(1) - weights / 2039e9).abs() < 1e-12);
        // 4096 tokens: compute-bound at 312 TFLOP/s.
        let flops = 2.0 * m.active_params_per_layer() * 4096.0;
        assert!((r.gemm_layer_s(4096) - flops / 312e12).abs() < 1e-12);
        // Decode attention reads 2·32·128·2 B = 16 KiB per context token per layer.
        let mut b = BatchShape::default();
        b.add_decode(1000);
        assert!((r.attention_layer_s(&b) - 1000.0 * 16384.0 / 2039e9).abs() < 1e-12);
    }

    /// Past its largest token count a table follows the roofline scaled by
    /// the median measured/roofline ratio of its top points, even where
    /// its last segment slopes downwards.
    #[test]
    fn profile_table_extends_along_the_scaled_roofline() {
        let m = model("llama-2-7b").expect("catalog").clone();
        let roof = Roofline::new(m, a100(), 1, RooflineParams::for_device("a100-80gb"), AllReduce::default_for("a100"));
        let mut times = OperatorTimes::new();
        for tokens in [1000u32, 2000, 3000, 4000] {
            // Measured GEMMs 1.1x the roofline, element-wise 2x; the last
            // point dips 2% below the trend.
            let dip = if tokens == 4000 { 0.98 } else { 1.0 };
            let gemm_ms = 1.1 * roof.gemm_layer_s(u64::from(tokens)) * 1e3 * dip;
            let small_ms = 2.0 * roof.small_layer_s(u64::from(tokens)) * 1e3;
            let mut ops: BTreeMap<String, f64> =
                GEMM_OPERATORS.iter().map(|op| (op.to_string(), gemm_ms / 4.0)).collect();
            ops.insert("input_layernorm".into(), small_ms);
            times.insert(tokens, ops);
        }
        let table = ProfileTable::new(&times, roof.clone(), "test").expect("table");
        let at = |t: u64| (table.gemm_layer_s(t), table.small_layer_s(t));
        // Inside the range: the measured points.
        assert!((at(4000).0 * 1e3 - 1.1 * 0.98 * roof.gemm_layer_s(4000) * 1e3).abs() < 1e-9);
        // Beyond: the median ratio (1.1 of four ratios 1.1, 1.1, 1.1, 1.078).
        assert!((at(8000).0 / roof.gemm_layer_s(8000) - 1.1).abs() < 1e-9);
        assert!((at(8000).1 / roof.small_layer_s(8000) - 2.0).abs() < 1e-9);
        assert!(at(8000).0 > 1.9 * at(4000).0);
    }

    #[test]
    fn batch_shape_aggregates() {
        let mut b = BatchShape::default();
        b.add_prefill(100, 50);
        b.add_decode(10);
        b.add_decode(30);
        assert_eq!(b.tokens(), 102);
        assert_eq!(b.requests(), 3);
        assert_eq!(b.decode_context, 40);
        assert_eq!(b.prefill_pairs, 100.0 * 100.0);
        assert_eq!(b.prefill_square, 10_000.0);
    }

    #[test]
    fn allreduce_is_free_on_one_gpu_and_grows_with_size() {
        let ar = AllReduce::default_for("a100");
        assert_eq!(ar.time_s(1e6, 1), 0.0);
        assert!(ar.time_s(1e8, 8) > ar.time_s(1e6, 8));
        let table = AllReduce::Table(vec![(1000, 0.01), (2000, 0.03)]);
        assert!((table.time_s(1500.0, 8) - 0.02e-3).abs() < 1e-12);
    }

    #[test]
    fn fitted_forms_by_hand() {
        let fit = DistServeFit {
            prefill: [10.0, 0.1, 0.001],
            decode_small: [5.0, 0.01, 0.5],
            decode_large: [1.0, 0.01, 1.0],
            threshold: 4,
        };
        let f = FittedPoly::new(fit, "test");
        let mut b = BatchShape::default();
        b.add_prefill(100, 0);
        assert!((f.iteration_s(&b) * 1e3 - (10.0 + 10.0 + 10.0)).abs() < 1e-9);
        let mut d = BatchShape::default();
        for _ in 0..4 {
            d.add_decode(100);
        }
        assert!((f.iteration_s(&d) * 1e3 - (1.0 + 4.0 + 4.0)).abs() < 1e-9);
    }
}
