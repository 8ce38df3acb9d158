//! Data-parallel training with simulated workers.
//!
//! Each step takes the next `batch` images of the epoch's shuffled order
//! and gives worker `w` the `w`-th of `workers` equal shares. Every worker
//! computes its share's mean-loss gradient on the same parameters; the
//! reduction hook turns the workers' gradients into the step's gradient.
//! With [`mean`] — the exact all-reduce, summed in worker order and divided
//! by the worker count — the step equals a single worker's step on the
//! whole batch up to float rounding. A gradient codec replaces the hook:
//! it encodes each worker's gradient, decodes what the others would
//! receive, and averages that.

use nimbus_sim::rng::{RngStreams, SimRng};

use crate::data::Dataset;
use crate::net::{Network, check_lengths};
use crate::optim::Sgd;
use crate::{NnError, Tensors};

/// The exact all-reduce average of the workers' gradients.
pub fn mean(workers: &[Tensors]) -> Tensors {
    let Some(first) = workers.first() else { return Vec::new() };
    let scale = 1.0 / workers.len() as f32;
    let mut out: Tensors = first.iter().map(|t| vec![0.0; t.len()]).collect();
    for grads in workers {
        for (acc, g) in out.iter_mut().zip(grads) {
            for (a, x) in acc.iter_mut().zip(g) {
                *a += x;
            }
        }
    }
    for acc in &mut out {
        acc.iter_mut().for_each(|a| *a *= scale);
    }
    out
}

/// Data-parallel training settings and the epoch order's random stream.
#[derive(Debug)]
pub struct Trainer {
    workers: usize,
    batch: usize,
    order: SimRng,
    steps: u64,
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// Steps taken.
    pub steps: u64,
    /// Mean training loss over the epoch's steps (workers' mean).
    pub loss: f64,
}

/// The reduction a step uses: step number (from 0 over the whole run) and
/// each worker's gradients, in worker order, to the step's gradient.
pub type Reduce<'a> = dyn FnMut(u64, &[Tensors]) -> Result<Tensors, NnError> + 'a;

impl Trainer {
    /// `workers` workers sharing global batches of `batch` images; the
    /// epoch order is drawn from `seed`.
    pub fn new(workers: usize, batch: usize, seed: u64) -> Result<Trainer, NnError> {
        if workers == 0 || batch == 0 || !batch.is_multiple_of(workers) {
            return Err(NnError::Invalid(format!(
                "a global batch of {batch} does not split evenly over {workers} workers"
            )));
        }
        Ok(Trainer { workers, batch, order: RngStreams::new(seed).stream("nn/order"), steps: 0 })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One epoch over `data` in a fresh shuffled order; images left over
    /// after the last full batch wait for the next epoch's order.
    pub fn epoch(
        &mut self,
        net: &mut Network,
        opt: &mut Sgd,
        data: &Dataset,
        reduce: &mut Reduce<'_>,
    ) -> Result<EpochReport, NnError> {
        if data.len() < self.batch {
            return Err(NnError::Invalid(format!(
                "{} training images are fewer than one batch of {}",
                data.len(),
                self.batch
            )));
        }
        let mut order: Vec<usize> = (0..data.len()).collect();
        self.order.shuffle(&mut order);
        let share = self.batch / self.workers;
        let (mut steps, mut loss) = (0u64, 0f64);
        for batch in order.chunks_exact(self.batch) {
            let mut worker_grads = Vec::with_capacity(self.workers);
            let mut worker_loss = 0f64;
            for part in batch.chunks_exact(share) {
                let g = net.gradients(&data.select(part))?;
                worker_loss += f64::from(g.loss);
                worker_grads.push(g.grads);
            }
            let step = reduce(self.steps, &worker_grads)?;
            check_lengths(net.params(), &step, "reduced gradients")?;
            opt.step(net, &step)?;
            self.steps += 1;
            steps += 1;
            loss += worker_loss / self.workers as f64;
        }
        Ok(EpochReport { steps, loss: loss / steps.max(1) as f64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;
    use crate::net::Arch;

    #[test]
    fn mean_is_the_elementwise_average() {
        let a = vec![vec![1.0, 2.0], vec![3.0]];
        let b = vec![vec![3.0, -2.0], vec![5.0]];
        assert_eq!(mean(&[a, b]), vec![vec![2.0, 0.0], vec![4.0]]);
    }

    /// Four workers with the exact mean take the same step as one worker
    /// on the whole batch (up to float rounding of the two summation
    /// orders).
    #[test]
    fn workers_with_exact_mean_equal_one_worker() {
        let data = synthetic(64, 0, 2).train;
        let run = |workers: usize| {
            let mut net = Network::new(&Arch::Mlp { hidden: vec![32] }, 28, 9).expect("net");
            let mut opt = Sgd::new(&net, 0.1, 0.9);
            let mut trainer = Trainer::new(workers, 32, 4).expect("trainer");
            trainer.epoch(&mut net, &mut opt, &data, &mut |_, g| Ok(mean(g))).expect("epoch");
            net.values().expect("values")
        };
        let (one, four) = (run(1), run(4));
        let worst = one.iter().flatten().zip(four.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "largest difference {worst}");
    }

    #[test]
    fn training_is_byte_identical_per_seed_and_learns() {
        let split = synthetic(1_000, 300, 4);
        let run = |seed: u64| {
            let mut net = Network::new(&Arch::Mlp { hidden: vec![64] }, 28, seed).expect("net");
            let mut opt = Sgd::new(&net, 0.05, 0.9);
            let mut trainer = Trainer::new(2, 50, seed).expect("trainer");
            for _ in 0..3 {
                trainer.epoch(&mut net, &mut opt, &split.train, &mut |_, g| Ok(mean(g))).expect("epoch");
            }
            (net.values().expect("values"), net.evaluate(&split.test).expect("eval"))
        };
        let (a, b) = (run(1), run(1));
        assert_eq!(
            a.0.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.0.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(a.1, b.1);
        assert!(a.1.accuracy > 0.8, "accuracy {}", a.1.accuracy);
        assert_ne!(a.0, run(2).0);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Trainer::new(3, 64, 1).is_err());
        assert!(Trainer::new(0, 64, 1).is_err());
        let mut net = Network::new(&Arch::Mlp { hidden: vec![4] }, 28, 1).expect("net");
        let mut opt = Sgd::new(&net, 0.1, 0.0);
        let mut t = Trainer::new(1, 64, 1).expect("trainer");
        let small = synthetic(10, 0, 1).train;
        assert!(t.epoch(&mut net, &mut opt, &small, &mut |_, g| Ok(mean(g))).is_err());
        let data = synthetic(64, 0, 1).train;
        let e = t.epoch(&mut net, &mut opt, &data, &mut |_, _| Ok(vec![vec![0.0]])).expect_err("shape");
        assert!(e.to_string().contains("reduced gradients"), "{e}");
    }
}
