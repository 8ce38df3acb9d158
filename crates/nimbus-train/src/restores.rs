//! Training through failures: a checkpoint after every epoch, compressed
//! by a checkpoint codec, and (with `restore`) training resumed from what
//! a fresh restorer reads back, as after a failure. Lossy codecs thus
//! inject their error at every restore; the run reports the accuracy that
//! survives, and the bytes each checkpoint took.

use nimbus_nn::NnError;
use nimbus_nn::data::Split;
use nimbus_nn::net::{Arch, Network};
use nimbus_nn::optim::Sgd;
use nimbus_nn::parallel::{Trainer, mean};

use crate::inshrinkerator::CheckpointCodec;

/// A run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreSpec {
    /// The network.
    pub arch: Arch,
    /// Epochs (one checkpoint after each).
    pub epochs: u32,
    /// Global batch.
    pub batch: usize,
    /// Learning rate.
    pub lr: f32,
    /// Momentum.
    pub momentum: f32,
    /// Training images held out for the codec's validation loss.
    pub validation: usize,
    /// Resume from the restored checkpoint after each one.
    pub restore: bool,
    /// A checkpoint to start from (see [`crate::experiment::start`]).
    pub init: Option<std::sync::Arc<Vec<u8>>>,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreResult {
    /// Test accuracy after each epoch (after the restore).
    pub accuracy_by_epoch: Vec<f64>,
    /// Bytes of each checkpoint.
    pub checkpoint_bytes: Vec<u64>,
    /// FP32 bytes of parameters and momentum.
    pub raw_bytes: u64,
    /// Restores performed.
    pub restores: u32,
    /// Final test loss.
    pub test_loss: f64,
}

impl RestoreResult {
    /// Final test accuracy.
    pub fn accuracy(&self) -> f64 {
        self.accuracy_by_epoch.last().copied().unwrap_or(0.0)
    }

    /// Mean compression ratio over the checkpoints (raw ÷ bytes).
    pub fn ratio(&self) -> f64 {
        let n = self.checkpoint_bytes.len().max(1) as f64;
        self.checkpoint_bytes.iter().map(|&b| self.raw_bytes as f64 / b.max(1) as f64).sum::<f64>() / n
    }

    /// Total raw bytes over total compressed bytes.
    pub fn overall_ratio(&self) -> f64 {
        let total: u64 = self.checkpoint_bytes.iter().sum();
        (self.raw_bytes * self.checkpoint_bytes.len() as u64) as f64 / total.max(1) as f64
    }
}

/// Trains with a checkpoint after each epoch through `compressor`, resuming
/// from `restorer`'s read-back when `spec.restore`.
pub fn run(
    split: &Split,
    spec: &RestoreSpec,
    compressor: &mut dyn CheckpointCodec,
    restorer: &mut dyn CheckpointCodec,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<RestoreResult, NnError> {
    let held = spec.validation.min(split.train.len().saturating_sub(spec.batch));
    let train = split.train.slice(0..split.train.len() - held);
    let validation = split.train.slice(split.train.len() - held..split.train.len());
    let validation = if validation.is_empty() { split.test.slice(0..split.test.len().min(500)) } else { validation };
    let side = split.train.rows;
    let (mut net, mut opt) = crate::experiment::start(
        &spec.arch,
        side,
        seed,
        spec.lr,
        spec.momentum,
        spec.init.as_deref().map(Vec::as_slice),
    )?;
    let mut trainer = Trainer::new(1, spec.batch, seed)?;
    let raw_bytes = 2 * 4 * net.parameter_count() as u64;
    let mut result = RestoreResult {
        accuracy_by_epoch: Vec::new(),
        checkpoint_bytes: Vec::new(),
        raw_bytes,
        restores: 0,
        test_loss: 0.0,
    };
    for epoch in 0..spec.epochs {
        trainer.epoch(&mut net, &mut opt, &train, &mut |_, g| Ok(mean(g)))?;
        let bytes = compressor.compress(&mut net, &opt, &validation)?;
        result.checkpoint_bytes.push(bytes.len() as u64);
        if spec.restore {
            let mut fresh = Network::new(&spec.arch, side, seed ^ 0x5eed)?;
            let mut fresh_opt = Sgd::new(&fresh, spec.lr, spec.momentum);
            restorer.restore(&bytes, &mut fresh, &mut fresh_opt)?;
            net = fresh;
            opt = fresh_opt;
            result.restores += 1;
        }
        let eval = net.evaluate(&split.test)?;
        result.accuracy_by_epoch.push(eval.accuracy);
        result.test_loss = eval.loss;
        progress(f64::from(epoch + 1) / f64::from(spec.epochs));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inshrinkerator::{InshrinkSettings, Inshrinkerator, Lossless};
    use nimbus_nn::data::synthetic;

    fn spec(restore: bool) -> RestoreSpec {
        RestoreSpec {
            arch: Arch::Mlp { hidden: vec![32] },
            epochs: 3,
            batch: 50,
            lr: 0.05,
            momentum: 0.9,
            validation: 200,
            restore,
            init: None,
        }
    }

    /// Restoring from a lossless checkpoint changes nothing; from
    /// Inshrinkerator's, training continues and learns.
    #[test]
    fn lossless_restores_are_invisible_and_lossy_ones_survive() {
        let split = synthetic(1_200, 300, 5);
        let plain = |restore| {
            run(
                &split,
                &spec(restore),
                &mut Lossless { zstd_level: None },
                &mut Lossless { zstd_level: None },
                1,
                &mut |_| {},
            )
            .expect("run")
        };
        let (with, without) = (plain(true), plain(false));
        assert_eq!(with.accuracy_by_epoch, without.accuracy_by_epoch);
        assert_eq!((with.restores, without.restores), (3, 0));
        assert_eq!(with.ratio(), 1.0);
        let ins = run(
            &split,
            &spec(true),
            &mut Inshrinkerator::new(InshrinkSettings::default()),
            &mut Inshrinkerator::new(InshrinkSettings::default()),
            1,
            &mut |_| {},
        )
        .expect("inshrinkerator");
        assert!(ins.ratio() > 5.0, "ratio {}", ins.ratio());
        assert!(ins.accuracy() > without.accuracy() - 0.03, "{} vs {}", ins.accuracy(), without.accuracy());
    }
}
