//! Real data-parallel training with one gradient exchange: the network
//! trains on the split for some epochs with simulated workers, every step's
//! gradients pass through the exchange, and the run reports test accuracy,
//! bytes sent and the gradients' statistics.

use nimbus_nn::data::Split;
use nimbus_nn::net::{Arch, Network};
use nimbus_nn::optim::Sgd;
use nimbus_nn::parallel::Trainer;
use nimbus_nn::{NnError, Tensors};

use crate::compress::{Collective, Exchange, aggregator};
use crate::huffman::entropy_bits;

/// A training run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The network.
    pub arch: Arch,
    /// Data-parallel workers.
    pub workers: usize,
    /// Global batch (split evenly over the workers).
    pub batch: usize,
    /// Epochs over the training set.
    pub epochs: u32,
    /// Learning rate.
    pub lr: f32,
    /// Momentum.
    pub momentum: f32,
    /// A checkpoint to start from (safetensors bytes of
    /// [`nimbus_nn::checkpoint::save`]) instead of fresh weights.
    pub init: Option<std::sync::Arc<Vec<u8>>>,
}

/// The network and optimiser a run starts from: fresh weights drawn from
/// `seed`, or `init`'s, which must be a checkpoint of `arch` for inputs of
/// `side`. The optimiser takes the run's learning rate and momentum and
/// the checkpoint's velocity.
pub fn start(
    arch: &Arch,
    side: usize,
    seed: u64,
    lr: f32,
    momentum: f32,
    init: Option<&[u8]>,
) -> Result<(Network, Sgd), NnError> {
    let Some(bytes) = init else {
        let net = Network::new(arch, side, seed)?;
        let opt = Sgd::new(&net, lr, momentum);
        return Ok((net, opt));
    };
    let c = nimbus_nn::checkpoint::load(bytes)?;
    if c.net.arch() != arch || c.net.side() != side {
        return Err(NnError::Checkpoint(format!(
            "the checkpoint holds {} for {} × {} inputs; the run trains {} on {side} × {side}",
            c.net.arch().name(),
            c.net.side(),
            c.net.side(),
            arch.name()
        )));
    }
    Ok((c.net, Sgd { lr, momentum, velocity: c.opt.velocity }))
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Test accuracy after each epoch.
    pub accuracy_by_epoch: Vec<f64>,
    /// Final test loss.
    pub test_loss: f64,
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Steps taken.
    pub steps: u64,
    /// Mean payload bytes per worker per step.
    pub payload_bytes: f64,
    /// FP32 gradient bytes per worker per step.
    pub raw_bytes: u64,
    /// The collective the exchange uses.
    pub collective: Collective,
    /// Fraction of exact zeros in the workers' gradients.
    pub zero_fraction: f64,
    /// Entropy of the non-zero gradients' exponent byte, bits.
    pub exponent_entropy: f64,
}

impl RunResult {
    /// Final test accuracy.
    pub fn accuracy(&self) -> f64 {
        self.accuracy_by_epoch.last().copied().unwrap_or(0.0)
    }

    /// Payload relative to FP32.
    pub fn volume_ratio(&self) -> f64 {
        self.payload_bytes / self.raw_bytes.max(1) as f64
    }
}

/// Trains `spec.arch` on `split` with `exchange`; `seed` draws the
/// initial weights, the epoch order and the codecs' random choices.
/// `progress` gets the fraction of epochs done.
pub fn train(
    split: &Split,
    spec: &RunSpec,
    exchange: &Exchange,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<RunResult, NnError> {
    let side = split.train.rows;
    let (mut net, mut opt) =
        start(&spec.arch, side, seed, spec.lr, spec.momentum, spec.init.as_deref().map(Vec::as_slice))?;
    let mut trainer = Trainer::new(spec.workers, spec.batch, seed)?;
    let shapes: Vec<Vec<usize>> = net.params().iter().map(|p| p.shape.clone()).collect();
    let mut agg = aggregator(exchange, &shapes, spec.workers, seed);
    let mut payload = 0f64;
    let mut raw = 0u64;
    let mut collective = Collective::AllReduce;
    let (mut zeros, mut elements) = (0u64, 0u64);
    let mut exponents = [0u64; 256];
    let mut accuracy = Vec::new();
    let mut last = None;
    for epoch in 0..spec.epochs {
        let report = trainer.epoch(&mut net, &mut opt, &split.train, &mut |_, workers: &[Tensors]| {
            for g in workers.iter().flatten().flatten() {
                let e = (g.to_bits() >> 23) as u8;
                if e == 0 {
                    zeros += 1;
                } else {
                    exponents[usize::from(e)] += 1;
                }
            }
            elements += workers.iter().flatten().map(|t| t.len() as u64).sum::<u64>();
            let (step, traffic) = agg.aggregate(workers).map_err(|e| NnError::Invalid(e.to_string()))?;
            payload += traffic.payload_bytes;
            raw = traffic.raw_bytes;
            collective = traffic.collective;
            Ok(step)
        })?;
        let eval = net.evaluate(&split.test)?;
        accuracy.push(eval.accuracy);
        last = Some((report.loss, eval.loss));
        progress(f64::from(epoch + 1) / f64::from(spec.epochs));
    }
    let (train_loss, test_loss) = last.unwrap_or((0.0, 0.0));
    let steps = trainer.steps();
    Ok(RunResult {
        accuracy_by_epoch: accuracy,
        test_loss,
        train_loss,
        steps,
        payload_bytes: payload / steps.max(1) as f64,
        raw_bytes: raw,
        collective,
        zero_fraction: zeros as f64 / elements.max(1) as f64,
        exponent_entropy: entropy_bits(&exponents),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcomp::GcompConfig;
    use nimbus_nn::data::synthetic;

    fn spec() -> RunSpec {
        RunSpec {
            arch: Arch::Mlp { hidden: vec![64] },
            workers: 2,
            batch: 50,
            epochs: 2,
            lr: 0.05,
            momentum: 0.9,
            init: None,
        }
    }

    #[test]
    fn gcomp_training_learns_sends_less_and_repeats() {
        let split = synthetic(1_000, 300, 2);
        let fp32 = train(&split, &spec(), &Exchange::Fp32, 1, &mut |_| {}).expect("fp32");
        let gcomp = train(&split, &spec(), &Exchange::Gcomp(GcompConfig::default()), 1, &mut |_| {}).expect("gcomp");
        assert_eq!(fp32.volume_ratio(), 1.0);
        assert!(gcomp.volume_ratio() < 0.6, "gcomp sends {:.3} of fp32", gcomp.volume_ratio());
        assert!(gcomp.accuracy() > 0.8 && (gcomp.accuracy() - fp32.accuracy()).abs() < 0.03);
        assert_eq!(
            gcomp,
            train(&split, &spec(), &Exchange::Gcomp(GcompConfig::default()), 1, &mut |_| {}).expect("again")
        );
        assert!(fp32.zero_fraction > 0.0 && fp32.exponent_entropy > 1.0);
    }
}
