//! Causal effect estimators on observational data: outcome `y`, binary
//! treatment `a`, features `x`.
//!
//! - [`cross_fit`]: the nuisances m(x) = E[y | x] and e(x) = E[a | x] by
//!   random forests, each row predicted by forests trained on the other
//!   folds (cross-fitting, as double machine learning requires);
//! - [`LinearCate`]: double machine learning's residual-on-residual final
//!   stage with a linear effect, τ(x) = θ·[1, x] (the R-learner): ỹ ≈
//!   ã·τ(x) by least squares, ỹ = y − m̂, ã = a − ê;
//! - [`CausalForest`]: honest trees on the same residuals (in the manner of
//!   generalized random forests): each tree takes half the rows, grows on
//!   one half with splits that maximise the difference of the children's
//!   effects (n_L·n_R·(τ_L − τ_R)², τ = Σỹã / Σã²), and sets each leaf's
//!   effect from the other half; the spread of the trees' estimates at x
//!   measures the uncertainty (not a calibrated interval);
//! - [`TLearner`]: one forest per arm, τ̂ = μ̂₁ − μ̂₀ (the naive baseline).

use nimbus_sim::rng::SimRng;

use crate::linear::Linear;
use crate::tree::{Criterion, Forest, Stats, Tree, TreeParams};
use crate::{Matrix, folds};

/// Cross-fitted m̂(xᵢ) and ê(xᵢ) (clipped to [0.02, 0.98]).
pub fn cross_fit(
    x: &Matrix,
    a: &[f64],
    y: &[f64],
    k: usize,
    trees: usize,
    params: &TreeParams,
    rng: &mut SimRng,
) -> (Vec<f64>, Vec<f64>) {
    let n = x.rows();
    let parts = folds(n, k.max(2), rng);
    let (mut m, mut e) = (vec![0.0; n], vec![0.0; n]);
    for (f, held) in parts.iter().enumerate() {
        let train: Vec<usize> =
            parts.iter().enumerate().filter(|(g, _)| *g != f).flat_map(|(_, p)| p.iter().copied()).collect();
        let fy = Forest::fit(x, y, &train, trees, params, rng);
        let fa = Forest::fit(x, a, &train, trees, params, rng);
        for &i in held {
            m[i] = fy.predict(x.row(i));
            e[i] = fa.predict(x.row(i)).clamp(0.02, 0.98);
        }
    }
    (m, e)
}

/// Residuals ỹ = y − m̂ and ã = a − ê.
pub fn residuals(a: &[f64], y: &[f64], m: &[f64], e: &[f64]) -> (Vec<f64>, Vec<f64>) {
    (y.iter().zip(m).map(|(y, m)| y - m).collect(), a.iter().zip(e).map(|(a, e)| a - e).collect())
}

/// A linear effect τ(x) = θ·[1, x] fitted on residuals.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearCate {
    model: Linear,
}

impl LinearCate {
    /// Fits ỹ ≈ ã·θ·[1, x] (ridge 1e-6); `None` if degenerate.
    pub fn fit(x: &Matrix, ry: &[f64], ra: &[f64]) -> Option<LinearCate> {
        let rows: Vec<Vec<f64>> =
            (0..x.rows()).map(|i| std::iter::once(ra[i]).chain(x.row(i).iter().map(|v| ra[i] * v)).collect()).collect();
        Linear::fit(&Matrix::from_rows(&rows), ry, None, 1e-6).map(|model| LinearCate { model })
    }

    /// τ̂(x).
    pub fn effect(&self, row: &[f64]) -> f64 {
        let basis: Vec<f64> = std::iter::once(1.0).chain(row.iter().copied()).collect();
        self.model.predict(&basis)
    }
}

/// Splits on effect heterogeneity; rows carry (ỹ·ã, ã², 1).
struct Heterogeneity {
    /// Least Σã² on each side (the effect is undefined without variation
    /// in treatment).
    min_weight: f64,
}

impl Criterion for Heterogeneity {
    fn gain(&self, l: &Stats, r: &Stats) -> Option<f64> {
        if l[1] < self.min_weight || r[1] < self.min_weight {
            return None;
        }
        let d = l[0] / l[1] - r[0] / r[1];
        Some(l[2] * r[2] * d * d)
    }

    fn unsplit(&self, _: &Stats) -> f64 {
        0.0
    }

    fn value(&self, s: &Stats) -> f64 {
        if s[1] > 0.0 { s[0] / s[1] } else { 0.0 }
    }
}

/// An honest causal forest.
#[derive(Debug, Clone, PartialEq)]
pub struct CausalForest {
    trees: Vec<Tree>,
}

impl CausalForest {
    /// Fits `trees` honest trees on residuals `ry`, `ra`.
    pub fn fit(
        x: &Matrix,
        ry: &[f64],
        ra: &[f64],
        trees: usize,
        params: &TreeParams,
        rng: &mut SimRng,
    ) -> CausalForest {
        let n = x.rows();
        let stats: Vec<Stats> = (0..n).map(|i| [ry[i] * ra[i], ra[i] * ra[i], 1.0]).collect();
        let criterion = Heterogeneity { min_weight: (params.min_leaf as f64 * 0.05).max(0.5) };
        let mut out = Vec::with_capacity(trees.max(1));
        for _ in 0..trees.max(1) {
            let mut idx: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut idx);
            let half = n / 2;
            let (grow, estimate) = idx[..half].split_at(half / 2);
            let mut tree = Tree::grow(x, &stats, grow, &criterion, params, rng);
            // Honest leaves: effects from rows the tree did not see.
            let mut sums: std::collections::BTreeMap<usize, Stats> = std::collections::BTreeMap::new();
            let mut all = [0.0; 3];
            for &i in estimate {
                let s = sums.entry(tree.leaf(x.row(i))).or_insert([0.0; 3]);
                for k in 0..3 {
                    s[k] += stats[i][k];
                    all[k] += stats[i][k];
                }
            }
            let overall = criterion.value(&all);
            tree.revalue(|leaf| match sums.get(&leaf) {
                Some(s) if s[2] >= 3.0 && s[1] >= criterion.min_weight => s[0] / s[1],
                _ => overall,
            });
            out.push(tree);
        }
        CausalForest { trees: out }
    }

    /// τ̂(x) and the standard deviation of the trees' estimates.
    pub fn effect(&self, row: &[f64]) -> (f64, f64) {
        let v: Vec<f64> = self.trees.iter().map(|t| t.predict(row)).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() / (v.len().max(2) - 1) as f64;
        (mean, var.sqrt())
    }
}

/// One forest per arm.
#[derive(Debug, Clone, PartialEq)]
pub struct TLearner {
    control: Forest,
    treated: Forest,
}

impl TLearner {
    /// Fits μ₀ on untreated rows and μ₁ on treated rows.
    pub fn fit(x: &Matrix, a: &[f64], y: &[f64], trees: usize, params: &TreeParams, rng: &mut SimRng) -> TLearner {
        let (t, c): (Vec<usize>, Vec<usize>) = (0..x.rows()).partition(|&i| a[i] > 0.5);
        TLearner {
            control: Forest::fit(x, y, &c, trees, params, rng),
            treated: Forest::fit(x, y, &t, trees, params, rng),
        }
    }

    /// τ̂(x) = μ̂₁(x) − μ̂₀(x).
    pub fn effect(&self, row: &[f64]) -> f64 {
        self.treated.predict(row) - self.control.predict(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A confounded design: treatment more likely where the baseline is
    /// high; effect τ(x) = 2·x₀ (known).
    fn design(n: usize, rng: &mut SimRng) -> (Matrix, Vec<f64>, Vec<f64>) {
        let mut rows = Vec::with_capacity(n);
        let (mut a, mut y) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let x0 = rng.uniform_range(-1.0, 1.0);
            let x1 = rng.uniform_range(-1.0, 1.0);
            let p = 1.0 / (1.0 + (-2.0 * x1).exp());
            let t = if rng.bernoulli(p) { 1.0 } else { 0.0 };
            y.push(3.0 * x1 + t * 2.0 * x0 + 0.3 * rng.normal(0.0, 1.0));
            a.push(t);
            rows.push(vec![x0, x1]);
        }
        (Matrix::from_rows(&rows), a, y)
    }

    #[test]
    fn dml_recovers_a_linear_effect_under_confounding() {
        let mut rng = nimbus_sim::rng::RngStreams::new(3).stream("t");
        let (x, a, y) = design(3000, &mut rng);
        let p = TreeParams { max_depth: 8, min_leaf: 10, mtry: 0 };
        let (m, e) = cross_fit(&x, &a, &y, 2, 30, &p, &mut rng);
        let (ry, ra) = residuals(&a, &y, &m, &e);
        let cate = LinearCate::fit(&x, &ry, &ra).expect("regular");
        for x0 in [-0.8, 0.0, 0.8] {
            assert!((cate.effect(&[x0, 0.0]) - 2.0 * x0).abs() < 0.3, "{x0}: {}", cate.effect(&[x0, 0.0]));
        }
        let forest = CausalForest::fit(&x, &ry, &ra, 100, &p, &mut rng);
        let (lo, _) = forest.effect(&[-0.8, 0.0]);
        let (hi, sd) = forest.effect(&[0.8, 0.0]);
        assert!(lo < -0.8 && hi > 0.8 && sd.is_finite(), "{lo} {hi}");
    }
}
