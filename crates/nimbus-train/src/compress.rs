//! Gradient exchange for data-parallel steps: the uncompressed all-reduce,
//! GComp ([`crate::gcomp`]) and the compressors it is compared with, each
//! as an [`Aggregator`] that turns the workers' gradients into the step's
//! gradient and reports what went over the network.
//!
//! Two shapes of exchange:
//! - **all-reduce** (summable payloads): FP32, FP16 (values rounded to
//!   half precision before and after the sum), random-k with indices drawn
//!   from a stream every worker shares (so only values travel), and
//!   PowerSGD (its `P` and `Q` factors are all-reduced, as in Vogels et
//!   al., NeurIPS'19);
//! - **all-gather** (per-worker encodings that cannot be summed in flight):
//!   GComp, top-k (index and value pairs), QSGD and scaled signSGD. Every
//!   worker decodes every other worker's bytes and averages, in worker
//!   order.
//!
//! Error feedback (Karimireddy et al., ICML'19) — each worker adds what it
//! failed to send last time before compressing — is on for top-k,
//! random-k, PowerSGD and signSGD, as their papers run them. Byte counts
//! are those of the real encodings.

use nimbus_nn::Tensors;
use nimbus_sim::rng::{RngStreams, SimRng};

use crate::gcomp::{GcompConfig, GcompDecoder, GcompEncoder};

/// A corrupt encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes do not decode.
    #[error("{0}")]
    Corrupt(String),
}

/// One worker's gradient encoder (stateful across steps).
pub trait Encoder: Send {
    /// Encodes the worker's gradients, one vector per tensor.
    fn encode(&mut self, grads: &[Vec<f32>]) -> Vec<u8>;
}

/// The decoder of one sender's encodings (stateful across steps).
pub trait Decoder: Send {
    /// Decodes one encoding.
    fn decode(&mut self, bytes: &[u8]) -> Result<Tensors, CodecError>;
}

/// How a step's payload crosses the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collective {
    /// Summed in flight (ring or tree all-reduce).
    AllReduce,
    /// Every worker receives every other worker's payload.
    AllGather,
}

/// What one step sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    /// The collective that carries it.
    pub collective: Collective,
    /// Payload bytes per worker (mean over workers).
    pub payload_bytes: f64,
    /// The uncompressed FP32 gradient's bytes.
    pub raw_bytes: u64,
}

/// Turns workers' gradients into the step's gradient.
pub trait Aggregator: Send {
    /// Aggregates one step.
    fn aggregate(&mut self, workers: &[Tensors]) -> Result<(Tensors, Traffic), CodecError>;
}

fn raw_bytes(t: &[Vec<f32>]) -> u64 {
    4 * t.iter().map(|v| v.len() as u64).sum::<u64>()
}

/// Settings of each exchange, by name.
#[derive(Debug, Clone, PartialEq)]
pub enum Exchange {
    /// Uncompressed FP32 all-reduce.
    Fp32,
    /// FP16 all-reduce.
    Fp16,
    /// GComp.
    Gcomp(GcompConfig),
    /// The largest `ratio` of entries by magnitude, with error feedback.
    TopK {
        /// Fraction of each tensor's entries sent.
        ratio: f64,
    },
    /// A shared random `ratio` of entries, with error feedback.
    RandomK {
        /// Fraction of each tensor's entries sent.
        ratio: f64,
    },
    /// QSGD with `2^bits − 1` levels and stochastic rounding.
    Qsgd {
        /// Bits per level index (1–8).
        bits: u32,
    },
    /// PowerSGD of rank `rank`, with error feedback.
    PowerSgd {
        /// Rank of the factors.
        rank: usize,
    },
    /// Signs scaled by the mean magnitude, with error feedback.
    SignSgd,
}

/// Builds the aggregator for `workers` workers and tensors of these shapes;
/// `seed` feeds stochastic rounding and shared index draws.
pub fn aggregator(exchange: &Exchange, shapes: &[Vec<usize>], workers: usize, seed: u64) -> Box<dyn Aggregator> {
    let lens: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
    let streams = RngStreams::new(seed);
    match exchange {
        Exchange::Fp32 => Box::new(AllReduce { half: false }),
        Exchange::Fp16 => Box::new(AllReduce { half: true }),
        Exchange::Gcomp(config) => Box::new(Gather::new(
            (0..workers)
                .map(|_| {
                    (
                        Box::new(GcompEncoder::new(config.clone(), lens.len())) as Box<dyn Encoder>,
                        Box::new(GcompDecoder::new(config.clone(), lens.clone())) as Box<dyn Decoder>,
                    )
                })
                .collect(),
        )),
        Exchange::TopK { ratio } => Box::new(Gather::new(
            (0..workers)
                .map(|_| {
                    (
                        Box::new(TopK::new(*ratio, &lens)) as Box<dyn Encoder>,
                        Box::new(SparseDecoder { lens: lens.clone() }) as Box<dyn Decoder>,
                    )
                })
                .collect(),
        )),
        Exchange::RandomK { ratio } => Box::new(RandomK::new(*ratio, &lens, workers, streams.stream("randk/indices"))),
        Exchange::Qsgd { bits } => Box::new(Gather::new(
            (0..workers)
                .map(|w| {
                    (
                        Box::new(Qsgd { bits: *bits, rng: streams.stream(&format!("qsgd/{w}")) }) as Box<dyn Encoder>,
                        Box::new(LevelDecoder { name: "qsgd", bits: *bits, lens: lens.clone() }) as Box<dyn Decoder>,
                    )
                })
                .collect(),
        )),
        Exchange::PowerSgd { rank } => Box::new(PowerSgd::new(*rank, shapes, workers, streams.stream("powersgd/q"))),
        Exchange::SignSgd => Box::new(Gather::new(
            (0..workers)
                .map(|_| {
                    (
                        Box::new(SignSgd { residual: zeros(&lens) }) as Box<dyn Encoder>,
                        Box::new(LevelDecoder { name: "signsgd", bits: 0, lens: lens.clone() }) as Box<dyn Decoder>,
                    )
                })
                .collect(),
        )),
    }
}

fn zeros(lens: &[usize]) -> Tensors {
    lens.iter().map(|&n| vec![0.0; n]).collect()
}

/// FP32 or FP16 all-reduce.
struct AllReduce {
    half: bool,
}

fn to_half(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

impl Aggregator for AllReduce {
    fn aggregate(&mut self, workers: &[Tensors]) -> Result<(Tensors, Traffic), CodecError> {
        let raw = raw_bytes(&workers[0]);
        let mut mean = if self.half {
            let rounded: Vec<Tensors> =
                workers.iter().map(|w| w.iter().map(|t| t.iter().map(|&x| to_half(x)).collect()).collect()).collect();
            nimbus_nn::parallel::mean(&rounded)
        } else {
            nimbus_nn::parallel::mean(workers)
        };
        if self.half {
            mean.iter_mut().flatten().for_each(|x| *x = to_half(*x));
        }
        let payload = if self.half { raw as f64 / 2.0 } else { raw as f64 };
        Ok((mean, Traffic { collective: Collective::AllReduce, payload_bytes: payload, raw_bytes: raw }))
    }
}

/// All-gather of per-worker encodings: worker `w` encodes with its own
/// encoder; everyone decodes `w`'s bytes with `w`'s decoder (receivers hold
/// identical decoder state, so one copy stands for them all).
struct Gather {
    pairs: Vec<(Box<dyn Encoder>, Box<dyn Decoder>)>,
}

impl Gather {
    fn new(pairs: Vec<(Box<dyn Encoder>, Box<dyn Decoder>)>) -> Gather {
        Gather { pairs }
    }
}

impl Aggregator for Gather {
    fn aggregate(&mut self, workers: &[Tensors]) -> Result<(Tensors, Traffic), CodecError> {
        let raw = raw_bytes(&workers[0]);
        let mut decoded = Vec::with_capacity(workers.len());
        let mut sent = 0u64;
        for ((enc, dec), grads) in self.pairs.iter_mut().zip(workers) {
            let bytes = enc.encode(grads);
            sent += bytes.len() as u64;
            decoded.push(dec.decode(&bytes)?);
        }
        let payload = sent as f64 / workers.len() as f64;
        Ok((
            nimbus_nn::parallel::mean(&decoded),
            Traffic { collective: Collective::AllGather, payload_bytes: payload, raw_bytes: raw },
        ))
    }
}

/// Top-k with error feedback: `(u32 index, f32 value)` pairs per tensor,
/// after a u32 count.
struct TopK {
    ratio: f64,
    residual: Tensors,
}

impl TopK {
    fn new(ratio: f64, lens: &[usize]) -> TopK {
        TopK { ratio, residual: zeros(lens) }
    }
}

/// Entries kept of a tensor of `n`.
fn kept(ratio: f64, n: usize) -> usize {
    if n == 0 { 0 } else { ((ratio * n as f64).ceil() as usize).clamp(1, n) }
}

impl Encoder for TopK {
    fn encode(&mut self, grads: &[Vec<f32>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (r, g) in self.residual.iter_mut().zip(grads) {
            for (r, x) in r.iter_mut().zip(g) {
                *r += x;
            }
            let k = kept(self.ratio, r.len());
            let mut order: Vec<u32> = (0..r.len() as u32).collect();
            // Largest magnitude first; ties by index, so the choice is
            // deterministic.
            let by_size = |a: &u32, b: &u32| r[*b as usize].abs().total_cmp(&r[*a as usize].abs()).then(a.cmp(b));
            if k < order.len() {
                order.select_nth_unstable_by(k, by_size);
            }
            let mut chosen = order[..k].to_vec();
            chosen.sort_unstable();
            out.extend_from_slice(&(k as u32).to_le_bytes());
            for i in chosen {
                let v = std::mem::take(&mut r[i as usize]);
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }
}

/// Reads `(index, value)` pairs.
struct SparseDecoder {
    lens: Vec<usize>,
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], CodecError> {
    if bytes.len() < n {
        return Err(CodecError::Corrupt(format!("{what}: truncated")));
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn take_u32(bytes: &mut &[u8], what: &str) -> Result<u32, CodecError> {
    let b = take(bytes, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn finish(bytes: &[u8], what: &str) -> Result<(), CodecError> {
    if bytes.is_empty() { Ok(()) } else { Err(CodecError::Corrupt(format!("{what}: {} trailing bytes", bytes.len()))) }
}

impl Decoder for SparseDecoder {
    fn decode(&mut self, mut bytes: &[u8]) -> Result<Tensors, CodecError> {
        let mut out = zeros(&self.lens);
        for (t, dense) in out.iter_mut().enumerate() {
            let k = take_u32(&mut bytes, "top-k")? as usize;
            if k > dense.len() {
                return Err(CodecError::Corrupt(format!("top-k: {k} entries for tensor {t} of {}", dense.len())));
            }
            for _ in 0..k {
                let i = take_u32(&mut bytes, "top-k")? as usize;
                let v = f32::from_bits(take_u32(&mut bytes, "top-k")?);
                *dense
                    .get_mut(i)
                    .ok_or_else(|| CodecError::Corrupt(format!("top-k: index {i} outside tensor {t}")))? = v;
            }
        }
        finish(bytes, "top-k")?;
        Ok(out)
    }
}

/// Random-k with shared indices and error feedback; the chosen values are
/// all-reduced.
struct RandomK {
    ratio: f64,
    residual: Vec<Tensors>,
    rng: SimRng,
}

impl RandomK {
    fn new(ratio: f64, lens: &[usize], workers: usize, rng: SimRng) -> RandomK {
        RandomK { ratio, residual: (0..workers).map(|_| zeros(lens)).collect(), rng }
    }
}

impl Aggregator for RandomK {
    fn aggregate(&mut self, workers: &[Tensors]) -> Result<(Tensors, Traffic), CodecError> {
        let raw = raw_bytes(&workers[0]);
        let mut out: Tensors = workers[0].iter().map(|t| vec![0.0; t.len()]).collect();
        let scale = 1.0 / workers.len() as f32;
        let mut sent = 0u64;
        for (t, dense) in out.iter_mut().enumerate() {
            let n = dense.len();
            let k = kept(self.ratio, n);
            // k distinct indices by a partial Fisher–Yates shuffle.
            let mut idx: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = i + self.rng.below((n - i) as u64) as usize;
                idx.swap(i, j);
            }
            let chosen = &idx[..k];
            sent += 4 * k as u64;
            for (residual, grads) in self.residual.iter_mut().zip(workers) {
                let r = &mut residual[t];
                for (r, x) in r.iter_mut().zip(&grads[t]) {
                    *r += x;
                }
                for &i in chosen {
                    dense[i] += std::mem::take(&mut r[i]);
                }
            }
            for &i in chosen {
                dense[i] *= scale;
            }
        }
        Ok((out, Traffic { collective: Collective::AllReduce, payload_bytes: sent as f64, raw_bytes: raw }))
    }
}

/// QSGD (Alistarh et al., NeurIPS'17) with `s = 2^bits − 1` levels: per
/// tensor its L2 norm (f32), then per entry a sign bit and a `bits`-bit
/// level, rounded stochastically so the decoded value is unbiased.
/// Deviation: fixed-width levels instead of Elias coding.
struct Qsgd {
    bits: u32,
    rng: SimRng,
}

impl Encoder for Qsgd {
    fn encode(&mut self, grads: &[Vec<f32>]) -> Vec<u8> {
        let s = f64::from((1u32 << self.bits) - 1);
        let mut w = crate::bits::BitWriter::new();
        for g in grads {
            let norm = g.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt() as f32;
            w.write(norm.to_bits(), 32);
            for &x in g {
                let level = if norm > 0.0 {
                    let scaled = f64::from(x.abs()) / f64::from(norm) * s;
                    let low = scaled.floor();
                    let up = self.rng.uniform() < scaled - low;
                    (low as u32 + u32::from(up)).min(s as u32)
                } else {
                    0
                };
                w.write(u32::from(x.is_sign_negative()), 1);
                w.write(level, self.bits);
            }
        }
        w.finish()
    }
}

/// Reads what [`Qsgd`] and [`SignSgd`] write: per tensor an f32 scale,
/// then per entry a sign bit and `bits` bits of level; an entry is
/// `scale · level / (2^bits − 1)`, or `scale` itself when `bits` is 0.
struct LevelDecoder {
    name: &'static str,
    bits: u32,
    lens: Vec<usize>,
}

impl Decoder for LevelDecoder {
    fn decode(&mut self, bytes: &[u8]) -> Result<Tensors, CodecError> {
        let name = self.name;
        let truncated = |_| CodecError::Corrupt(format!("{name}: truncated"));
        let top = ((1u32 << self.bits) - 1).max(1) as f32;
        let mut r = crate::bits::BitReader::new(bytes);
        let mut out = Vec::with_capacity(self.lens.len());
        for &n in &self.lens {
            let scale = f32::from_bits(r.read(32).map_err(truncated)?);
            let mut t = Vec::with_capacity(n);
            for _ in 0..n {
                let neg = r.read(1).map_err(truncated)? == 1;
                let v = if self.bits == 0 { scale } else { scale * r.read(self.bits).map_err(truncated)? as f32 / top };
                t.push(if neg { -v } else { v });
            }
            out.push(t);
        }
        if r.remaining() >= 8 {
            return Err(CodecError::Corrupt(format!("{name}: trailing bytes")));
        }
        Ok(out)
    }
}

/// Scaled signSGD with error feedback (Karimireddy et al., ICML'19): per
/// tensor the mean magnitude (f32), then one sign bit per entry.
struct SignSgd {
    residual: Tensors,
}

impl Encoder for SignSgd {
    fn encode(&mut self, grads: &[Vec<f32>]) -> Vec<u8> {
        let mut w = crate::bits::BitWriter::new();
        for (r, g) in self.residual.iter_mut().zip(grads) {
            for (r, x) in r.iter_mut().zip(g) {
                *r += x;
            }
            let scale = (r.iter().map(|x| f64::from(x.abs())).sum::<f64>() / r.len().max(1) as f64) as f32;
            w.write(scale.to_bits(), 32);
            for x in r.iter_mut() {
                let neg = x.is_sign_negative();
                w.write(u32::from(neg), 1);
                *x -= if neg { -scale } else { scale };
            }
        }
        w.finish()
    }
}

/// PowerSGD (Vogels, Karimireddy and Jaggi, NeurIPS'19), rank `r`, one
/// power iteration per step with `Q` warm-started from the previous step,
/// error feedback per worker. Tensors with more than one axis are viewed
/// as `rows × rest`; vectors (biases) are all-reduced uncompressed.
struct PowerSgd {
    rank: usize,
    shapes: Vec<(usize, usize, bool)>,
    q: Vec<Vec<f64>>,
    residual: Vec<Tensors>,
}

impl PowerSgd {
    fn new(rank: usize, shapes: &[Vec<usize>], workers: usize, mut rng: SimRng) -> PowerSgd {
        let dims: Vec<(usize, usize, bool)> = shapes
            .iter()
            .map(|s| {
                let rows = s.first().copied().unwrap_or(1);
                let n: usize = s.iter().product();
                let cols = n / rows.max(1);
                (rows, cols, s.len() > 1 && rank < rows.min(cols))
            })
            .collect();
        let q = dims
            .iter()
            .map(
                |&(_, cols, low_rank)| {
                    if low_rank { (0..cols * rank).map(|_| rng.normal(0.0, 1.0)).collect() } else { Vec::new() }
                },
            )
            .collect();
        let lens: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
        PowerSgd { rank, shapes: dims, q, residual: (0..workers).map(|_| zeros(&lens)).collect() }
    }
}

/// Orthonormalises the `r` columns of the `rows × r` row-major matrix in
/// place (modified Gram–Schmidt; a vanishing column becomes zero).
fn orthonormalise(p: &mut [f64], rows: usize, r: usize) {
    for j in 0..r {
        for k in 0..j {
            let dot: f64 = (0..rows).map(|i| p[i * r + j] * p[i * r + k]).sum();
            for i in 0..rows {
                p[i * r + j] -= dot * p[i * r + k];
            }
        }
        let norm = (0..rows).map(|i| p[i * r + j] * p[i * r + j]).sum::<f64>().sqrt();
        for i in 0..rows {
            p[i * r + j] = if norm > 1e-30 { p[i * r + j] / norm } else { 0.0 };
        }
    }
}

/// The workers' mean of `M_w · by` (`by`: `cols × r`, giving `rows × r`),
/// or of `M_wᵀ · by` with `transposed` (`by`: `rows × r`, giving
/// `cols × r`), for tensor `t` of each worker's residual viewed as a
/// `rows × cols` matrix.
fn mean_product(
    residuals: &[Tensors],
    t: usize,
    (rows, cols): (usize, usize),
    by: &[f64],
    r: usize,
    transposed: bool,
) -> Vec<f64> {
    let mut out = vec![0f64; if transposed { cols } else { rows } * r];
    for residual in residuals {
        let m = &residual[t];
        for i in 0..rows {
            for c in 0..cols {
                let v = f64::from(m[i * cols + c]);
                let (into, from) = if transposed { (c, i) } else { (i, c) };
                for j in 0..r {
                    out[into * r + j] += v * by[from * r + j];
                }
            }
        }
    }
    let w = residuals.len().max(1) as f64;
    out.iter_mut().for_each(|x| *x /= w);
    out
}

impl Aggregator for PowerSgd {
    fn aggregate(&mut self, workers: &[Tensors]) -> Result<(Tensors, Traffic), CodecError> {
        let raw = raw_bytes(&workers[0]);
        let w = workers.len() as f64;
        let r = self.rank;
        let mut out = Vec::with_capacity(self.shapes.len());
        let mut sent = 0u64;
        for (t, &(rows, cols, low_rank)) in self.shapes.iter().enumerate() {
            for (residual, grads) in self.residual.iter_mut().zip(workers) {
                for (m, x) in residual[t].iter_mut().zip(&grads[t]) {
                    *m += x;
                }
            }
            if !low_rank {
                // All-reduce the tensor itself; nothing is left over.
                let mut mean = vec![0f32; rows * cols];
                for residual in &mut self.residual {
                    for (a, m) in mean.iter_mut().zip(residual[t].iter_mut()) {
                        *a += std::mem::take(m);
                    }
                }
                mean.iter_mut().for_each(|a| *a /= w as f32);
                sent += 4 * (rows * cols) as u64;
                out.push(mean);
                continue;
            }
            let q = &self.q[t];
            // P = mean_w(M_w Q), all-reduced, then orthonormalised.
            let mut p = mean_product(&self.residual, t, (rows, cols), q, r, false);
            orthonormalise(&mut p, rows, r);
            // Q = mean_w(M_wᵀ P), all-reduced.
            let q_new = mean_product(&self.residual, t, (rows, cols), &p, r, true);
            sent += 4 * ((rows + cols) * r) as u64;
            // The step's gradient P Qᵀ; each worker keeps M_w − P Qᵀ.
            let approx: Vec<f32> = (0..rows * cols)
                .map(|k| {
                    let (i, c) = (k / cols, k % cols);
                    (0..r).map(|j| p[i * r + j] * q_new[c * r + j]).sum::<f64>() as f32
                })
                .collect();
            for residual in &mut self.residual {
                for (m, a) in residual[t].iter_mut().zip(&approx) {
                    *m -= a;
                }
            }
            self.q[t] = q_new;
            out.push(approx);
        }
        Ok((out, Traffic { collective: Collective::AllReduce, payload_bytes: sent as f64, raw_bytes: raw }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers() -> Vec<Tensors> {
        vec![vec![vec![1.0, -2.0, 0.5, 0.0], vec![0.25]], vec![vec![3.0, 2.0, -0.5, 1.0], vec![-0.75]]]
    }

    fn shapes() -> Vec<Vec<usize>> {
        vec![vec![2, 2], vec![1]]
    }

    #[test]
    fn fp32_is_the_exact_mean_and_fp16_is_close() {
        let (g, t) = aggregator(&Exchange::Fp32, &shapes(), 2, 1).aggregate(&workers()).expect("fp32");
        assert_eq!(g, vec![vec![2.0, 0.0, 0.0, 0.5], vec![-0.25]]);
        assert_eq!((t.payload_bytes, t.raw_bytes, t.collective), (20.0, 20, Collective::AllReduce));
        let (h, t) = aggregator(&Exchange::Fp16, &shapes(), 2, 1).aggregate(&workers()).expect("fp16");
        assert_eq!(h, g, "these values are exact in half precision");
        assert_eq!(t.payload_bytes, 10.0);
    }

    /// Top-k at ratio 0.25 sends one entry per tensor; error feedback sends
    /// the rest later, so over steps every gradient unit arrives.
    #[test]
    fn top_k_sends_largest_and_keeps_the_rest() {
        let mut agg = aggregator(&Exchange::TopK { ratio: 0.25 }, &shapes(), 2, 1);
        let (g, t) = agg.aggregate(&workers()).expect("topk");
        // Worker 0 sends -2.0 (index 1) and 0.25; worker 1 sends 3.0 (index 0) and -0.75.
        assert_eq!(g, vec![vec![1.5, -1.0, 0.0, 0.0], vec![-0.25]]);
        assert_eq!(t.collective, Collective::AllGather);
        assert_eq!(t.payload_bytes, (4.0 + 8.0) * 2.0);
        // Zero gradients afterwards: the residuals drain, every unit sent once.
        let zero = vec![vec![vec![0.0; 4], vec![0.0]]; 2];
        let mut total = g.clone();
        for _ in 0..4 {
            let (g, _) = agg.aggregate(&zero).expect("drain");
            for (a, b) in total.iter_mut().flatten().zip(g.iter().flatten()) {
                *a += b;
            }
        }
        assert_eq!(total, vec![vec![2.0, 0.0, 0.0, 0.5], vec![-0.25]]);
    }

    #[test]
    fn random_k_and_power_sgd_conserve_the_gradient_with_feedback() {
        for exchange in [Exchange::RandomK { ratio: 0.5 }, Exchange::PowerSgd { rank: 1 }, Exchange::SignSgd] {
            let shapes = vec![vec![4, 3], vec![3]];
            let ws: Vec<Tensors> = (0..3)
                .map(|w| {
                    vec![(0..12).map(|i| ((i * 7 + w * 3) % 11) as f32 - 5.0).collect(), vec![w as f32, 1.0, -1.0]]
                })
                .collect();
            let exact = nimbus_nn::parallel::mean(&ws);
            let mut agg = aggregator(&exchange, &shapes, 3, 5);
            let (first, _) = agg.aggregate(&ws).expect("first");
            let zero = vec![vec![vec![0.0; 12], vec![0.0; 3]]; 3];
            let mut total = first;
            for _ in 0..400 {
                let (g, _) = agg.aggregate(&zero).expect("drain");
                for (a, b) in total.iter_mut().flatten().zip(g.iter().flatten()) {
                    *a += b;
                }
            }
            let worst =
                total.iter().flatten().zip(exact.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 0.05, "{exchange:?}: residual {worst}");
        }
    }

    #[test]
    fn qsgd_is_unbiased_and_bounded() {
        let shapes = vec![vec![64]];
        let g: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut agg = aggregator(&Exchange::Qsgd { bits: 2 }, &shapes, 1, 3);
        let mut sum = vec![0f64; 64];
        let rounds = 10_000;
        for _ in 0..rounds {
            let (d, t) = agg.aggregate(&[vec![g.clone()]]).expect("qsgd");
            assert_eq!(t.payload_bytes, 4.0 + (64.0 * 3.0) / 8.0);
            for (s, x) in sum.iter_mut().zip(&d[0]) {
                *s += f64::from(*x);
            }
        }
        for (s, x) in sum.iter().zip(&g) {
            assert!((s / f64::from(rounds) - f64::from(*x)).abs() < 0.05, "{} vs {x}", s / f64::from(rounds));
        }
    }

    #[test]
    fn sparse_and_quantised_decoders_refuse_corrupt_input() {
        let mut sparse = SparseDecoder { lens: vec![4] };
        assert!(sparse.decode(&[9, 0, 0, 0]).is_err(), "count above the tensor");
        assert!(sparse.decode(&[1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]).is_err(), "index outside");
        assert!(sparse.decode(&[0, 0, 0, 0, 1]).is_err(), "trailing");
        assert!(LevelDecoder { name: "qsgd", bits: 4, lens: vec![3] }.decode(&[0, 0]).is_err());
        assert!(LevelDecoder { name: "signsgd", bits: 0, lens: vec![3] }.decode(&[0; 9]).is_err());
    }
}
