//! Calibrating the roofline against public measurements.
//!
//! Splitwise's `perf_model.csv` measured Llama-2-70B under vLLM on DGX
//! A100-80GB and H100 nodes: the prompt time of one request and the
//! per-token decode time of batches of 1–64 requests, for prompts and
//! outputs of 128–8192 tokens. A roofline alone predicts 8–12 ms per
//! decode step where 30–45 ms were measured: the rest is kernel launches,
//! the scheduler's CPU time and synchronisation, which no roofline derives.
//!
//! [`fit_splitwise`] fits three constants per (GPU, TP): a fixed
//! per-iteration overhead, a per-request overhead and the compute
//! efficiency η_c (memory efficiency stays at the device's default,
//! [`RooflineParams::for_device`]). It minimises
//! the squared *relative* error over the medians of every decode cell and
//! of the single-request prompt cells of 512 tokens and more, where
//! prefill is compute-bound and η_c is identifiable. Shorter prompts are
//! reported but not fitted: at 128–256 tokens vLLM spends about 20 ms more
//! on a prompt than on a decode step, which no constant of this form
//! captures.

use std::collections::BTreeMap;

use nimbus_sim::stats::quantile;
use nimbus_trace::llm::SplitwiseRow;

use crate::exec::{
    AllReduce, BatchShape, Device, ELEMENTWISE_KERNELS, ExecTimeModel, Roofline, RooflineParams,
    elementwise_values_per_token,
};
use crate::model::{FP16_BYTES, ModelSpec};

/// One measured cell and the calibrated prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    /// `decode` or `prompt`.
    pub kind: &'static str,
    /// Prompt tokens.
    pub prompt: u32,
    /// Requests in the batch.
    pub batch: u32,
    /// Output tokens (decode cells).
    pub output: u32,
    /// Median measured ms (per token for decode).
    pub measured_ms: f64,
    /// Predicted ms.
    pub predicted_ms: f64,
    /// Whether the cell was in the fit.
    pub fitted: bool,
}

impl Residual {
    /// Relative error of the prediction.
    pub fn relative_error(&self) -> f64 {
        self.predicted_ms / self.measured_ms - 1.0
    }
}

/// A calibrated roofline and its fit.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The fitted parameters.
    pub params: RooflineParams,
    /// Every cell.
    pub residuals: Vec<Residual>,
}

impl Calibration {
    /// The cell of a kind, prompt, batch and (for decode) output length.
    pub fn cell(&self, kind: &str, prompt: u32, batch: u32, output: Option<u32>) -> Option<&Residual> {
        self.residuals
            .iter()
            .find(|r| r.kind == kind && r.prompt == prompt && r.batch == batch && output.is_none_or(|o| o == r.output))
    }

    /// Median over output lengths of the measured and predicted decode
    /// times at one (prompt, batch): the figure Splitwise's table reports.
    pub fn decode_median(&self, prompt: u32, batch: u32) -> Option<(f64, f64)> {
        let cells: Vec<&Residual> =
            self.residuals.iter().filter(|r| r.kind == "decode" && r.prompt == prompt && r.batch == batch).collect();
        if cells.is_empty() {
            return None;
        }
        let measured: Vec<f64> = cells.iter().map(|r| r.measured_ms).collect();
        let predicted: Vec<f64> = cells.iter().map(|r| r.predicted_ms).collect();
        Some((quantile(&measured, 0.5), quantile(&predicted, 0.5)))
    }
}

/// The shape of one measured cell.
struct Cell {
    kind: &'static str,
    prompt: u32,
    batch: u32,
    output: u32,
    measured_ms: f64,
    shape: BatchShape,
    fitted: bool,
}

fn cells(rows: &[SplitwiseRow], model: &str, hardware: &str, tp: u32) -> Vec<Cell> {
    // (prompt, batch, output) → (prompt times, token times)
    type Samples = (Vec<f64>, Vec<f64>);
    let mut groups: BTreeMap<(u32, u32, u32), Samples> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.model == model && r.hardware == hardware && r.tensor_parallel == tp) {
        let g = groups.entry((r.prompt_size, r.batch_size, r.token_size)).or_default();
        g.0.push(r.prompt_ms);
        g.1.push(r.token_ms);
    }
    let mut out = Vec::new();
    let mut prompts: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for (&(prompt, batch, output), (prompt_ms, token_ms)) in &groups {
        // Decode: `batch` requests whose context grows from `prompt` to
        // `prompt + output`; the mid-point stands for the run.
        let mut shape = BatchShape::default();
        for _ in 0..batch {
            shape.add_decode(prompt + output / 2);
        }
        out.push(Cell {
            kind: "decode",
            prompt,
            batch,
            output,
            measured_ms: quantile(token_ms, 0.5),
            shape,
            fitted: true,
        });
        if batch == 1 {
            prompts.entry(prompt).or_default().extend(prompt_ms);
        }
    }
    for (prompt, times) in prompts {
        let mut shape = BatchShape::default();
        shape.add_prefill(prompt, 0);
        out.push(Cell {
            kind: "prompt",
            prompt,
            batch: 1,
            output: 0,
            measured_ms: quantile(&times, 0.5),
            shape,
            fitted: prompt >= 512,
        });
    }
    out
}

/// Fits overheads and η_c of a roofline of `model` on `tp` GPUs of
/// `device` to Splitwise's measurements of (`splitwise_model`,
/// `hardware`, `tp`). `None` when the file has no such cells.
pub fn fit_splitwise(
    rows: &[SplitwiseRow],
    splitwise_model: &str,
    hardware: &str,
    model: &ModelSpec,
    device: &Device,
    tp: u32,
    allreduce: &AllReduce,
) -> Option<Calibration> {
    let cells = cells(rows, splitwise_model, hardware, tp);
    if !cells.iter().any(|c| c.fitted) {
        return None;
    }
    let base = RooflineParams::for_device(&device.name);
    let mut best: Option<(f64, RooflineParams)> = None;
    for step in 0..=80 {
        let eta_compute = 0.2 + 0.01 * step as f64;
        let params = RooflineParams { eta_compute, ..base };
        let roof = Roofline::new(model.clone(), device.clone(), tp, params, allreduce.clone());
        // Weighted least squares of (measured − roofline) on (1, requests)
        // with weights 1/measured²: minimises the relative error.
        let (mut s11, mut s1n, mut snn, mut s1y, mut sny) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let fitted: Vec<(f64, f64, f64)> = cells
            .iter()
            .filter(|c| c.fitted)
            .map(|c| (c.measured_ms, roof.iteration_s(&c.shape) * 1e3, c.shape.requests() as f64))
            .collect();
        for &(m, p, n) in &fitted {
            let w = 1.0 / (m * m);
            let y = m - p;
            s11 += w;
            s1n += w * n;
            snn += w * n * n;
            s1y += w * y;
            sny += w * n * y;
        }
        let det = s11 * snn - s1n * s1n;
        if det.abs() < 1e-18 {
            continue;
        }
        let mut per_request = (s11 * sny - s1n * s1y) / det;
        let mut fixed = (snn * s1y - s1n * sny) / det;
        if per_request < 0.0 {
            per_request = 0.0;
            fixed = s1y / s11;
        }
        let fixed = fixed.max(0.0);
        let error: f64 = fitted.iter().map(|&(m, p, n)| ((p + fixed + per_request * n) / m - 1.0).powi(2)).sum();
        if best.as_ref().is_none_or(|(e, _)| error < *e) {
            best = Some((
                error,
                RooflineParams { eta_compute, iteration_overhead_ms: fixed, request_overhead_ms: per_request, ..base },
            ));
        }
    }
    let (_, params) = best?;
    let roof = Roofline::new(model.clone(), device.clone(), tp, params, allreduce.clone());
    let residuals = cells
        .iter()
        .map(|c| Residual {
            kind: c.kind,
            prompt: c.prompt,
            batch: c.batch,
            output: c.output,
            measured_ms: c.measured_ms,
            predicted_ms: roof.iteration_s(&c.shape) * 1e3,
            fitted: c.fitted,
        })
        .collect();
    Some(Calibration { params, residuals })
}

/// One measured time of a group of a layer's operators (the four linear
/// layers, or the six element-wise kernels) at `tokens` tokens and `tp`
/// GPUs.
#[derive(Debug, Clone)]
pub struct ProfilePoint {
    /// The model.
    pub model: ModelSpec,
    /// Tensor parallelism.
    pub tp: u32,
    /// Tokens in the batch.
    pub tokens: u32,
    /// Measured ms (sum of the group's medians).
    pub measured_ms: f64,
}

/// Knee exponents the GEMM fit tries.
const KNEE_GRID: [f64; 7] = [1.0, 1.25, 1.5, 1.75, 2.0, 3.0, 4.0];

/// Fits a device's GEMM roofline to measured GEMM times: (η_b, η_c) on a
/// 0.01 grid and the knee exponent p from [`KNEE_GRID`], minimising the
/// squared log error with every doubling of the token count weighted
/// equally (the profiles sample long batches 30 times more densely than
/// decode-sized ones; unweighted, the fit trades decode accuracy for the
/// dense tail).
pub fn fit_gemm_efficiency(device: &Device, points: &[ProfilePoint]) -> Option<(f64, f64, f64)> {
    let octave = |tokens: u32| 32 - tokens.leading_zeros();
    let mut per_octave: BTreeMap<u32, f64> = BTreeMap::new();
    for p in points {
        *per_octave.entry(octave(p.tokens)).or_default() += 1.0;
    }
    let mut best: Option<(f64, (f64, f64, f64))> = None;
    for knee_sharpness in KNEE_GRID {
        for b in 0..=50 {
            for c in 0..=40 {
                let (eta_bandwidth, eta_compute) = (0.5 + 0.01 * b as f64, 0.5 + 0.01 * c as f64);
                let params = RooflineParams { eta_bandwidth, eta_compute, knee_sharpness, ..RooflineParams::default() };
                let error: f64 = points
                    .iter()
                    .filter(|p| p.measured_ms > 0.0)
                    .map(|p| {
                        let roof =
                            Roofline::new(p.model.clone(), device.clone(), p.tp, params, AllReduce::default_for(""));
                        (roof.gemm_layer_s(p.tokens as u64) * 1e3 / p.measured_ms).ln().powi(2)
                            / per_octave[&octave(p.tokens)]
                    })
                    .sum();
                if best.as_ref().is_none_or(|(e, _)| error < *e) {
                    best = Some((error, (eta_bandwidth, eta_compute, knee_sharpness)));
                }
            }
        }
    }
    best.map(|(_, fit)| fit)
}

/// Fits a device's element-wise efficiency and per-kernel launch time to
/// measured element-wise times ([`crate::exec::profiled_elementwise_ms`]):
/// the pair on a 0.01 × 0.1 µs grid minimising the summed squared log
/// error of [`Roofline::small_layer_s`].
pub fn fit_elementwise(device: &Device, points: &[ProfilePoint]) -> Option<(f64, f64)> {
    // Each point is `launch·k + values·c/η`: precompute `values` once.
    let values: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.measured_ms > 0.0)
        .map(|p| (p.tokens as f64 * elementwise_values_per_token(&p.model, p.tp) * FP16_BYTES, p.measured_ms / 1e3))
        .collect();
    let mut best: Option<(f64, (f64, f64))> = None;
    for e in 0..=80 {
        let eta = 0.2 + 0.01 * e as f64;
        for l in 0..=100 {
            let launch_us = 0.1 * l as f64;
            let error: f64 = values
                .iter()
                .map(|&(bytes, measured_s)| {
                    let predicted = ELEMENTWISE_KERNELS * launch_us / 1e6 + bytes / (eta * device.bandwidth);
                    (predicted / measured_s).ln().powi(2)
                })
                .sum();
            if best.as_ref().is_none_or(|(b, _)| error < *b) {
                best = Some((error, (eta, launch_us)));
            }
        }
    }
    best.map(|(_, fit)| fit)
}
