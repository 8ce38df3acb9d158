//! The networks: an MLP and a small CNN, their forward passes in candle
//! and their gradients from candle's autodiff.
//!
//! Weights follow PyTorch's layout (`[out, in]` for a linear layer,
//! `[out, in, kh, kw]` for a convolution) and its default initialisation
//! bound, `U(−1/√fan_in, 1/√fan_in)`, drawn from the run's seeded stream.

use candle_core::{Device, Tensor, Var};
use nimbus_sim::rng::RngStreams;

use crate::data::Dataset;
use crate::{NnError, Tensors};

/// A network's architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arch {
    /// Fully connected layers of these widths with ReLU between them, then
    /// ten logits.
    Mlp {
        /// Hidden widths, input side first.
        hidden: Vec<usize>,
    },
    /// LeNet-like: 5 × 5 convolution to 16 channels, ReLU, 2 × 2 max-pool,
    /// 5 × 5 convolution to 32 channels, ReLU, 2 × 2 max-pool, a 128-wide
    /// fully connected layer, ReLU, ten logits (80,202 parameters on
    /// 28 × 28 inputs).
    Cnn,
}

impl Arch {
    /// The default MLP, 784–256–128–10 (235,146 parameters).
    pub fn mlp() -> Arch {
        Arch::Mlp { hidden: vec![256, 128] }
    }

    /// Parses `mlp`, `mlp-<w>x<w>…` (hidden widths) or `cnn`.
    pub fn parse(text: &str) -> Result<Arch, String> {
        match text {
            "mlp" => Ok(Arch::mlp()),
            "cnn" => Ok(Arch::Cnn),
            _ => {
                let widths = text.strip_prefix("mlp-").ok_or_else(|| {
                    format!("unknown network `{}`; available: mlp, mlp-<w>x<w>… (hidden widths), cnn", quote(text))
                })?;
                let hidden = widths
                    .split('x')
                    .map(|w| w.parse::<usize>().ok().filter(|w| (1..=4096).contains(w)))
                    .collect::<Option<Vec<_>>>()
                    .filter(|h| (1..=8).contains(&h.len()))
                    .ok_or_else(|| {
                        format!("network `{}`: hidden widths must be 1 to 8 numbers of 1–4,096", quote(text))
                    })?;
                Ok(Arch::Mlp { hidden })
            }
        }
    }

    /// Its name as [`Arch::parse`] reads it.
    pub fn name(&self) -> String {
        match self {
            Arch::Cnn => "cnn".into(),
            Arch::Mlp { hidden } if *hidden == [256, 128] => "mlp".into(),
            Arch::Mlp { hidden } => {
                format!("mlp-{}", hidden.iter().map(usize::to_string).collect::<Vec<_>>().join("x"))
            }
        }
    }

    /// Parameter names and shapes for `side × side` inputs, in order.
    pub fn shapes(&self, side: usize) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut dense = |name: &str, fan_in: usize, width: usize| {
            out.push((format!("{name}.weight"), vec![width, fan_in]));
            out.push((format!("{name}.bias"), vec![width]));
        };
        match self {
            Arch::Mlp { hidden } => {
                let mut fan_in = side * side;
                for (i, &w) in hidden.iter().enumerate() {
                    dense(&format!("fc{}", i + 1), fan_in, w);
                    fan_in = w;
                }
                dense("out", fan_in, 10);
            }
            Arch::Cnn => {
                let after = ((side - 4) / 2 - 4) / 2;
                out.push(("conv1.weight".into(), vec![16, 1, 5, 5]));
                out.push(("conv1.bias".into(), vec![16]));
                out.push(("conv2.weight".into(), vec![32, 16, 5, 5]));
                out.push(("conv2.bias".into(), vec![32]));
                let mut dense = |name: &str, fan_in: usize, width: usize| {
                    out.push((format!("{name}.weight"), vec![width, fan_in]));
                    out.push((format!("{name}.bias"), vec![width]));
                };
                dense("fc1", 32 * after * after, 128);
                dense("out", 128, 10);
            }
        }
        out
    }
}

/// Shows user text inside a message, shortened and with control characters
/// escaped.
fn quote(text: &str) -> String {
    let short: String = text.chars().take(60).collect();
    let escaped = short.escape_debug().to_string();
    if text.chars().count() > 60 { format!("{escaped}…") } else { escaped }
}

/// One parameter tensor.
#[derive(Debug)]
pub struct Param {
    /// Name (`conv1.weight`, `fc2.bias`, …), as in checkpoints.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    var: Var,
}

impl Param {
    /// Elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A network with its parameters.
#[derive(Debug)]
pub struct Network {
    arch: Arch,
    side: usize,
    params: Vec<Param>,
}

/// A batch's loss and the parameters' gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// Mean cross-entropy over the batch.
    pub loss: f32,
    /// One gradient per parameter, in order.
    pub grads: Tensors,
}

impl Network {
    /// A fresh network for `side × side` inputs, its weights drawn from
    /// `seed`.
    pub fn new(arch: &Arch, side: usize, seed: u64) -> Result<Network, NnError> {
        if side < 16 && *arch == Arch::Cnn {
            return Err(NnError::Invalid(format!("the CNN needs inputs of at least 16 × 16, not {side} × {side}")));
        }
        let mut rng = RngStreams::new(seed).stream("nn/init");
        let shapes = arch.shapes(side);
        let mut params = Vec::with_capacity(shapes.len());
        let mut fan_in = 1;
        for (name, shape) in shapes {
            // A bias takes the bound of the weight before it.
            if name.ends_with(".weight") {
                fan_in = shape[1..].iter().product::<usize>();
            }
            let bound = 1.0 / (fan_in as f64).sqrt();
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|_| rng.uniform_range(-bound, bound) as f32).collect();
            let var = Var::from_tensor(&Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?)?;
            params.push(Param { name, shape, var });
        }
        Ok(Network { arch: arch.clone(), side, params })
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// Input side.
    pub fn side(&self) -> usize {
        self.side
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Parameters in all.
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(Param::len).sum()
    }

    /// The logits of a batch of images (`[n, side·side]` normalised pixels).
    fn forward(&self, x: &Tensor) -> Result<Tensor, NnError> {
        let p = |i: usize| self.params[i].var.as_tensor();
        let dense =
            |x: &Tensor, i: usize| -> Result<Tensor, NnError> { Ok(x.matmul(&p(i).t()?)?.broadcast_add(p(i + 1))?) };
        match &self.arch {
            Arch::Mlp { hidden } => {
                let mut h = x.clone();
                for i in 0..hidden.len() {
                    h = dense(&h, 2 * i)?.relu()?;
                }
                dense(&h, 2 * hidden.len())
            }
            Arch::Cnn => {
                let n = x.dim(0)?;
                let conv = |x: &Tensor, i: usize| -> Result<Tensor, NnError> {
                    let bias = p(i + 1).reshape((1, (), 1, 1))?;
                    Ok(x.conv2d(p(i), 0, 1, 1, 1)?.broadcast_add(&bias)?.relu()?).and_then(|h| max_pool2(&h))
                };
                let h = x.reshape((n, 1, self.side, self.side))?;
                let h = conv(&conv(&h, 0)?, 2)?;
                let h = dense(&h.flatten_from(1)?, 4)?.relu()?;
                dense(&h, 6)
            }
        }
    }

    fn batch_tensors(&self, data: &Dataset) -> Result<(Tensor, Tensor), NnError> {
        if data.rows != self.side || data.cols != self.side {
            return Err(NnError::Invalid(format!(
                "images are {} × {}; the network takes {} × {}",
                data.rows, data.cols, self.side, self.side
            )));
        }
        if data.is_empty() {
            return Err(NnError::Invalid("an empty batch".into()));
        }
        let x = Tensor::from_slice(&data.inputs, (data.len(), data.pixels()), &Device::Cpu)?;
        let y = Tensor::from_slice(&data.labels, data.len(), &Device::Cpu)?;
        Ok((x, y))
    }

    /// Mean cross-entropy of `logits` against labels `y`.
    fn cross_entropy(logits: &Tensor, y: &Tensor) -> Result<Tensor, NnError> {
        let max = logits.max_keepdim(1)?.detach();
        let shifted = logits.broadcast_sub(&max)?;
        let log_sum = shifted.exp()?.sum_keepdim(1)?.log()?;
        let log_p = shifted.broadcast_sub(&log_sum)?;
        Ok(log_p.gather(&y.unsqueeze(1)?, 1)?.neg()?.mean_all()?)
    }

    /// The batch's mean loss and every parameter's gradient.
    pub fn gradients(&self, batch: &Dataset) -> Result<Gradients, NnError> {
        let (x, y) = self.batch_tensors(batch)?;
        let loss = Self::cross_entropy(&self.forward(&x)?, &y)?;
        let store = loss.backward()?;
        let grads = self
            .params
            .iter()
            .map(|p| match store.get(p.var.as_tensor()) {
                Some(g) => Ok(g.flatten_all()?.to_vec1::<f32>()?),
                None => Ok(vec![0.0; p.len()]),
            })
            .collect::<Result<Tensors, NnError>>()?;
        Ok(Gradients { loss: loss.to_scalar::<f32>()?, grads })
    }

    /// Each image's cross-entropy loss (no gradients), in batches of 500.
    pub fn sample_losses(&self, data: &Dataset) -> Result<Vec<f32>, NnError> {
        let mut out = Vec::with_capacity(data.len());
        let mut start = 0;
        while start < data.len() {
            let end = (start + 500).min(data.len());
            let (x, y) = self.batch_tensors(&data.slice(start..end))?;
            let logits = self.forward(&x)?;
            let max = logits.max_keepdim(1)?;
            let shifted = logits.broadcast_sub(&max)?;
            let log_p = shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(1)?.log()?)?;
            out.extend(log_p.gather(&y.unsqueeze(1)?, 1)?.neg()?.flatten_all()?.to_vec1::<f32>()?);
            start = end;
        }
        Ok(out)
    }

    /// Mean loss and accuracy (fraction correct) over `data`, in batches of
    /// 500.
    pub fn evaluate(&self, data: &Dataset) -> Result<Evaluation, NnError> {
        let (mut loss, mut correct) = (0f64, 0usize);
        let mut start = 0;
        while start < data.len() {
            let end = (start + 500).min(data.len());
            let (x, y) = self.batch_tensors(&data.slice(start..end))?;
            let logits = self.forward(&x)?;
            let batch_loss = Self::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
            loss += f64::from(batch_loss) * (end - start) as f64;
            let predicted = logits.argmax(1)?.to_vec1::<u32>()?;
            correct += predicted.iter().zip(&data.labels[start..end]).filter(|(p, l)| p == l).count();
            start = end;
        }
        let n = data.len().max(1) as f64;
        Ok(Evaluation { loss: loss / n, accuracy: correct as f64 / n })
    }

    /// Parameter values as host vectors.
    pub fn values(&self) -> Result<Tensors, NnError> {
        self.params.iter().map(|p| Ok(p.var.as_tensor().flatten_all()?.to_vec1::<f32>()?)).collect()
    }

    /// Replaces every parameter's values; lengths must match.
    pub fn set_values(&mut self, values: &[Vec<f32>]) -> Result<(), NnError> {
        check_lengths(&self.params, values, "values")?;
        for (p, v) in self.params.iter().zip(values) {
            p.var.set(&Tensor::from_slice(v, p.shape.as_slice(), &Device::Cpu)?)?;
        }
        Ok(())
    }
}

/// 2 × 2 max-pooling with stride 2 by a reshape and two max reductions.
/// candle 0.9.2's own `max_pool2d` backward multiplies the gradient by the
/// window's share of maxima (¼ for one maximum) where it should divide by
/// their count, so every gradient below a pool came out 4× too small (16×
/// below two); the reductions' gradient goes to the maximum unscaled, which
/// `gradients_match_finite_differences` checks.
fn max_pool2(x: &Tensor) -> Result<Tensor, NnError> {
    let (n, c, h, w) = x.dims4()?;
    Ok(x.reshape((n, c, h / 2, 2, w / 2, 2))?.max(5)?.max(3)?)
}

/// Checks that `tensors` has one vector per parameter, each of the
/// parameter's length.
pub fn check_lengths(params: &[Param], tensors: &[Vec<f32>], what: &str) -> Result<(), NnError> {
    if tensors.len() != params.len() {
        return Err(NnError::Invalid(format!("{} {what} for {} parameters", tensors.len(), params.len())));
    }
    for (p, t) in params.iter().zip(tensors) {
        if t.len() != p.len() {
            return Err(NnError::Invalid(format!(
                "{what} for `{}` hold {} values; its shape {:?} needs {}",
                p.name,
                t.len(),
                p.shape,
                p.len()
            )));
        }
    }
    Ok(())
}

/// Loss and accuracy over a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;

    #[test]
    fn parameter_counts_match_the_documented_ones() {
        let mlp = Network::new(&Arch::mlp(), 28, 1).expect("mlp");
        assert_eq!(mlp.parameter_count(), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
        assert_eq!(mlp.parameter_count(), 235_146);
        let cnn = Network::new(&Arch::Cnn, 28, 1).expect("cnn");
        assert_eq!(cnn.parameter_count(), 80_202);
    }

    #[test]
    fn arch_names_round_trip_and_bad_names_are_refused() {
        for a in [Arch::mlp(), Arch::Cnn, Arch::Mlp { hidden: vec![64] }, Arch::Mlp { hidden: vec![32, 16] }] {
            assert_eq!(Arch::parse(&a.name()), Ok(a));
        }
        let e = Arch::parse("resnet\n").expect_err("unknown");
        assert!(e.contains("resnet\\n") && e.contains("available"), "{e}");
        assert!(Arch::parse("mlp-0").is_err() && Arch::parse("mlp-").is_err() && Arch::parse("mlp-99999").is_err());
    }

    /// The autodiff gradient of one weight agrees with a central finite
    /// difference of the loss.
    #[test]
    fn gradients_match_finite_differences() {
        let data = synthetic(8, 0, 3).train;
        for arch in [Arch::Mlp { hidden: vec![16] }, Arch::Cnn] {
            let mut net = Network::new(&arch, 28, 5).expect("net");
            let g = net.gradients(&data).expect("grads");
            let values = net.values().expect("values");
            // The largest-magnitude gradient of the first weight tensor.
            let (j, &gj) =
                g.grads[0].iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).expect("non-empty");
            let eps = 1e-2f32;
            let mut at = |delta: f32| {
                let mut v = values.clone();
                v[0][j] += delta;
                net.set_values(&v).expect("set");
                f64::from(net.gradients(&data).expect("loss").loss)
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
            let rel = (numeric - f64::from(gj)).abs() / f64::from(gj.abs()).max(1e-6);
            assert!(rel < 0.05, "{arch:?}: autodiff {gj}, numeric {numeric}");
        }
    }

    #[test]
    fn sample_losses_average_to_the_batch_loss() {
        let data = synthetic(37, 0, 2).train;
        let net = Network::new(&Arch::Mlp { hidden: vec![8] }, 28, 3).expect("net");
        let losses = net.sample_losses(&data).expect("losses");
        assert_eq!(losses.len(), 37);
        let mean = losses.iter().map(|&l| f64::from(l)).sum::<f64>() / 37.0;
        assert!((mean - net.evaluate(&data).expect("eval").loss).abs() < 1e-5);
    }

    #[test]
    fn wrong_shapes_are_refused_by_name() {
        let mut net = Network::new(&Arch::Mlp { hidden: vec![4] }, 28, 1).expect("net");
        let mut v = net.values().expect("values");
        v[1].pop();
        let e = net.set_values(&v).expect_err("short").to_string();
        assert!(e.contains("fc1.bias") && e.contains("3 values"), "{e}");
        let small = Dataset { rows: 8, cols: 8, inputs: vec![0.0; 64], labels: vec![1] };
        assert!(net.gradients(&small).expect_err("size").to_string().contains("8 × 8"));
        assert!(Network::new(&Arch::Cnn, 8, 1).is_err());
    }
}
