//! Momentum SGD on host vectors.
//!
//! `v ← μ·v + g; w ← w − η·v` (PyTorch's form, no dampening), element by
//! element in a fixed order, so a step is bit-reproducible.

use crate::net::{Network, check_lengths};
use crate::{NnError, Tensors};

/// Momentum SGD with its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    /// Learning rate η.
    pub lr: f32,
    /// Momentum μ (0 for plain SGD).
    pub momentum: f32,
    /// Velocity per parameter (the optimiser state checkpoints carry).
    pub velocity: Tensors,
}

impl Sgd {
    /// A fresh optimiser for `net` (zero velocity).
    pub fn new(net: &Network, lr: f32, momentum: f32) -> Sgd {
        Sgd { lr, momentum, velocity: net.params().iter().map(|p| vec![0.0; p.len()]).collect() }
    }

    /// Applies one step of gradient `grads` to `net`.
    pub fn step(&mut self, net: &mut Network, grads: &[Vec<f32>]) -> Result<(), NnError> {
        check_lengths(net.params(), grads, "gradients")?;
        check_lengths(net.params(), &self.velocity, "velocity")?;
        let mut values = net.values()?;
        for ((w, v), g) in values.iter_mut().zip(&mut self.velocity).zip(grads) {
            for ((w, v), g) in w.iter_mut().zip(v.iter_mut()).zip(g) {
                *v = self.momentum * *v + g;
                *w -= self.lr * *v;
            }
        }
        net.set_values(&values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Arch;

    /// Two steps by hand: w = 1, g = 0.5 then 0.25, η = 0.1, μ = 0.9.
    #[test]
    fn momentum_matches_hand_computation() {
        let mut net = Network::new(&Arch::Mlp { hidden: vec![1] }, 28, 1).expect("net");
        let mut values = net.values().expect("values");
        for v in &mut values {
            v.iter_mut().for_each(|x| *x = 1.0);
        }
        net.set_values(&values).expect("set");
        let mut opt = Sgd::new(&net, 0.1, 0.9);
        let grads = |g: f32| net_grads(&values, g);
        opt.step(&mut net, &grads(0.5)).expect("step 1");
        // v = 0.5, w = 1 − 0.05 = 0.95
        assert!((net.values().expect("v")[0][0] - 0.95).abs() < 1e-6);
        opt.step(&mut net, &grads(0.25)).expect("step 2");
        // v = 0.45 + 0.25 = 0.7, w = 0.95 − 0.07 = 0.88
        assert!((net.values().expect("v")[0][0] - 0.88).abs() < 1e-6);
        assert!((opt.velocity[0][0] - 0.7).abs() < 1e-6);
    }

    fn net_grads(values: &Tensors, g: f32) -> Tensors {
        values.iter().map(|v| vec![g; v.len()]).collect()
    }
}
