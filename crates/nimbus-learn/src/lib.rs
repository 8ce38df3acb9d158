//! Learning pieces the domains share, written here rather than taken from
//! an ML crate: what the domains need is small (least squares, CART trees,
//! forests, cross-fitting and causal estimators on a few features and up
//! to ~10^5 rows), it must be deterministic under a seed, and the ML
//! crates that fit (smartcore, linfa) bring tens of seconds of cold build
//! and their own random-number handling.
//!
//! - [`Matrix`]: rows of features, row-major;
//! - [`linear`]: ridge regression (Cholesky on the normal equations);
//! - [`tree`]: CART regression trees and random forests;
//! - [`causal`]: cross-fitting, double machine learning (the R-learner
//!   with a linear effect), an honest causal forest, and the T-learner.
//!
//! Invariants: every random choice comes from a [`nimbus_sim::rng::SimRng`]
//! passed in; no hash-order dependence; no panics on finite input (NaN
//! features are the caller's to refuse).

pub mod causal;
pub mod linear;
pub mod tree;

/// A dense row-major matrix of features.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Values, `rows × cols`, row-major.
    pub data: Vec<f64>,
    /// Number of columns (features).
    pub cols: usize,
}

impl Matrix {
    /// A matrix from rows of equal length.
    pub fn from_rows(rows: &[Vec<f64>]) -> Matrix {
        let cols = rows.first().map_or(0, Vec::len);
        Matrix { data: rows.iter().flat_map(|r| r.iter().copied()).collect(), cols }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.cols).unwrap_or(0)
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Value at (`i`, `j`).
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }
}

/// `k` folds of `n` indices, shuffled by `rng`: fold `f` holds the
/// indices `i` with `order[i] % k == f`.
pub fn folds(n: usize, k: usize, rng: &mut nimbus_sim::rng::SimRng) -> Vec<Vec<usize>> {
    let k = k.max(1);
    let mut idx: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut idx);
    let mut out = vec![Vec::with_capacity(n / k + 1); k];
    for (pos, i) in idx.into_iter().enumerate() {
        out[pos % k].push(i);
    }
    for f in &mut out {
        f.sort_unstable();
    }
    out
}
