//! Real small-scale neural-network training on the CPU, shared by the
//! domains whose mechanisms act on real tensors (gradient codecs,
//! checkpoint compression, encrypted federated averaging).
//!
//! - [`data`]: MNIST (`../shared/data/mnist-t10k`, split 8,000 train /
//!   2,000 test in file order) or a synthetic digit set that stands in
//!   without `../shared`.
//! - [`net`]: an MLP and a small CNN over candle tensors, with real
//!   gradients from candle's reverse-mode autodiff; parameters are
//!   initialised from the run's seeded streams, never from candle's
//!   unseeded generator.
//! - [`optim`]: momentum SGD whose update runs on host vectors in a fixed
//!   order.
//! - [`parallel`]: data-parallel workers simulated in one process: each
//!   worker takes its share of the global batch, and a reduction hook (by
//!   default the exact mean, in worker order) turns the workers'
//!   gradients into the step's gradient. Codecs sit in that hook.
//! - [`checkpoint`]: parameters and optimiser state as safetensors bytes,
//!   with shape and name checks on restore.
//!
//! Determinism: candle's CPU matrix products split work across threads by
//! output block, never along the summed dimension, so a step's result
//! does not depend on the thread count; every reduction the crate itself
//! performs runs in a fixed order. Tests assert byte-identical training
//! per seed.

pub mod checkpoint;
pub mod data;
pub mod net;
pub mod optim;
pub mod parallel;

/// Why training, evaluation or a checkpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// The tensor library refused an operation (a bug or an impossible
    /// shape).
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A checkpoint is corrupt or does not fit the network.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Settings or data cannot work (an empty data set, a batch that does
    /// not split across the workers, a gradient of the wrong shape).
    #[error("{0}")]
    Invalid(String),
    /// A data file is malformed.
    #[error(transparent)]
    Trace(#[from] nimbus_trace::TraceError),
}

/// A list of tensors as host vectors, one per parameter in the network's
/// order (gradients, parameter values, optimiser state).
pub type Tensors = Vec<Vec<f32>>;
