//! CART trees and random forests.
//!
//! One builder grows every tree: each row carries three sums (for a
//! regression tree y, y² and 1; for a causal tree ỹ·ã, ã² and 1, see
//! [`crate::causal`]), a split's gain and a leaf's value are functions of
//! the sums on each side, and split points are found by sorting a node's
//! rows on each of `mtry` randomly chosen features and scanning prefix
//! sums. Ties in a feature never split apart.

use nimbus_sim::rng::SimRng;

use crate::Matrix;

/// Per-row sums a criterion works on.
pub type Stats = [f64; 3];

/// How a tree chooses splits and values.
pub trait Criterion {
    /// The gain of splitting a node into sides with sums `l` and `r`
    /// (larger is better); `None` when the split is not allowed.
    fn gain(&self, l: &Stats, r: &Stats) -> Option<f64>;
    /// The gain of leaving a node with sums `s` whole (a split must beat it).
    fn unsplit(&self, s: &Stats) -> f64;
    /// The value of a leaf with sums `s`.
    fn value(&self, s: &Stats) -> f64;
}

/// Variance reduction: rows carry (y, y², 1).
#[derive(Debug, Clone, Copy)]
pub struct SquaredError;

impl Criterion for SquaredError {
    fn gain(&self, l: &Stats, r: &Stats) -> Option<f64> {
        Some(l[0] * l[0] / l[2] + r[0] * r[0] / r[2])
    }

    fn unsplit(&self, s: &Stats) -> f64 {
        if s[2] > 0.0 { s[0] * s[0] / s[2] } else { 0.0 }
    }

    fn value(&self, s: &Stats) -> f64 {
        if s[2] > 0.0 { s[0] / s[2] } else { 0.0 }
    }
}

/// Growth limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeParams {
    /// Deepest level (the root is 0).
    pub max_depth: usize,
    /// Fewest rows in a leaf.
    pub min_leaf: usize,
    /// Features tried at each split (all when 0 or above the count).
    pub mtry: usize,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams { max_depth: 10, min_leaf: 5, mtry: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Leaf(f64),
    Split { feature: usize, threshold: f64, left: usize, right: usize },
}

/// A fitted tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// Grows a tree on rows `idx` of `x` with per-row `stats`.
    pub fn grow(
        x: &Matrix,
        stats: &[Stats],
        idx: &[usize],
        criterion: &dyn Criterion,
        params: &TreeParams,
        rng: &mut SimRng,
    ) -> Tree {
        let mut tree = Tree { nodes: Vec::new() };
        let mut rows = idx.to_vec();
        tree.build(x, stats, &mut rows, 0, criterion, params, rng);
        tree
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        x: &Matrix,
        stats: &[Stats],
        rows: &mut [usize],
        depth: usize,
        criterion: &dyn Criterion,
        params: &TreeParams,
        rng: &mut SimRng,
    ) -> usize {
        let total = sum(stats, rows);
        let id = self.nodes.len();
        self.nodes.push(Node::Leaf(criterion.value(&total)));
        if depth >= params.max_depth || rows.len() < 2 * params.min_leaf.max(1) {
            return id;
        }
        let d = x.cols;
        let mut features: Vec<usize> = (0..d).collect();
        rng.shuffle(&mut features);
        let mtry = if params.mtry == 0 || params.mtry > d { d } else { params.mtry };
        let parent_gain = criterion.unsplit(&total);
        let mut best: Option<(f64, usize, f64)> = None;
        let mut sorted = rows.to_vec();
        for &f in &features[..mtry] {
            sorted.sort_by(|&a, &b| x.at(a, f).total_cmp(&x.at(b, f)).then(a.cmp(&b)));
            let mut left = [0.0; 3];
            for k in 0..sorted.len() - 1 {
                let s = &stats[sorted[k]];
                left[0] += s[0];
                left[1] += s[1];
                left[2] += s[2];
                let n_left = k + 1;
                let (v, next) = (x.at(sorted[k], f), x.at(sorted[k + 1], f));
                if n_left < params.min_leaf || sorted.len() - n_left < params.min_leaf || v == next {
                    continue;
                }
                let right = [total[0] - left[0], total[1] - left[1], total[2] - left[2]];
                if let Some(g) = criterion.gain(&left, &right)
                    && g > parent_gain + 1e-12
                    && best.is_none_or(|(bg, _, _)| g > bg)
                {
                    best = Some((g, f, (v + next) / 2.0));
                }
            }
        }
        let Some((_, feature, threshold)) = best else { return id };
        // Partition rows: left those at or below the threshold.
        let mut l = 0;
        for i in 0..rows.len() {
            if x.at(rows[i], feature) <= threshold {
                rows.swap(l, i);
                l += 1;
            }
        }
        let (left_rows, right_rows) = rows.split_at_mut(l);
        let left = self.build(x, stats, left_rows, depth + 1, criterion, params, rng);
        let right = self.build(x, stats, right_rows, depth + 1, criterion, params, rng);
        self.nodes[id] = Node::Split { feature, threshold, left, right };
        id
    }

    /// The leaf a row falls in (its node index).
    pub fn leaf(&self, row: &[f64]) -> usize {
        let mut i = 0;
        while let Node::Split { feature, threshold, left, right } = &self.nodes[i] {
            i = if row[*feature] <= *threshold { *left } else { *right };
        }
        i
    }

    /// The value of the leaf a row falls in.
    pub fn predict(&self, row: &[f64]) -> f64 {
        match self.nodes[self.leaf(row)] {
            Node::Leaf(v) => v,
            Node::Split { .. } => f64::NAN,
        }
    }

    /// Replaces each leaf's value by `value(leaf index)` (honest
    /// estimation on other rows).
    pub fn revalue(&mut self, mut value: impl FnMut(usize) -> f64) {
        for i in 0..self.nodes.len() {
            if let Node::Leaf(_) = self.nodes[i] {
                self.nodes[i] = Node::Leaf(value(i));
            }
        }
    }

    /// Number of leaves.
    pub fn leaves(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n, Node::Leaf(_))).count()
    }
}

fn sum(stats: &[Stats], rows: &[usize]) -> Stats {
    let mut s = [0.0; 3];
    for &r in rows {
        s[0] += stats[r][0];
        s[1] += stats[r][1];
        s[2] += stats[r][2];
    }
    s
}

/// A random forest of regression trees on bootstrap samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    trees: Vec<Tree>,
}

impl Forest {
    /// Fits `trees` trees to `y` on rows `idx` of `x`.
    pub fn fit(x: &Matrix, y: &[f64], idx: &[usize], trees: usize, params: &TreeParams, rng: &mut SimRng) -> Forest {
        let stats: Vec<Stats> = y.iter().map(|&v| [v, v * v, 1.0]).collect();
        let trees = (0..trees.max(1))
            .map(|_| {
                // No rows: a single leaf predicting 0.
                let sample: Vec<usize> = if idx.is_empty() {
                    Vec::new()
                } else {
                    (0..idx.len()).map(|_| idx[rng.index(idx.len())]).collect()
                };
                Tree::grow(x, &stats, &sample, &SquaredError, params, rng)
            })
            .collect();
        Forest { trees }
    }

    /// The mean of the trees' predictions.
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.trees.iter().map(|t| t.predict(row)).sum::<f64>() / self.trees.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stump_finds_the_step() {
        // y = 0 for x < 5, 10 for x >= 5.
        let x = Matrix::from_rows(&(0..10).map(|i| vec![f64::from(i)]).collect::<Vec<_>>());
        let y: Vec<f64> = (0..10).map(|i| if i < 5 { 0.0 } else { 10.0 }).collect();
        let stats: Vec<Stats> = y.iter().map(|&v| [v, v * v, 1.0]).collect();
        let idx: Vec<usize> = (0..10).collect();
        let mut rng = nimbus_sim::rng::RngStreams::new(1).stream("t");
        let p = TreeParams { max_depth: 1, min_leaf: 1, mtry: 0 };
        let t = Tree::grow(&x, &stats, &idx, &SquaredError, &p, &mut rng);
        assert_eq!(t.leaves(), 2);
        assert_eq!(t.predict(&[4.0]), 0.0);
        assert_eq!(t.predict(&[4.6]), 10.0);
        // A constant target does not split.
        let flat: Vec<Stats> = (0..10).map(|_| [1.0, 1.0, 1.0]).collect();
        assert_eq!(Tree::grow(&x, &flat, &idx, &SquaredError, &p, &mut rng).leaves(), 1);
    }

    #[test]
    fn a_forest_without_rows_predicts_zero() {
        let x = Matrix::from_rows(&[vec![1.0]]);
        let mut rng = nimbus_sim::rng::RngStreams::new(1).stream("t");
        let f = Forest::fit(&x, &[5.0], &[], 3, &TreeParams::default(), &mut rng);
        assert_eq!(f.predict(&[1.0]), 0.0);
    }

    #[test]
    fn a_forest_fits_a_smooth_function() {
        let mut rng = nimbus_sim::rng::RngStreams::new(2).stream("t");
        let rows: Vec<Vec<f64>> = (0..2000).map(|_| vec![rng.uniform_range(-2.0, 2.0), rng.uniform()]).collect();
        let y: Vec<f64> = rows.iter().map(|r| r[0] * r[0] + 0.1 * rng.normal(0.0, 1.0)).collect();
        let x = Matrix::from_rows(&rows);
        let idx: Vec<usize> = (0..rows.len()).collect();
        let f = Forest::fit(&x, &y, &idx, 30, &TreeParams::default(), &mut rng);
        for v in [-1.5, 0.0, 1.0] {
            assert!((f.predict(&[v, 0.5]) - v * v).abs() < 0.15, "{v}: {}", f.predict(&[v, 0.5]));
        }
    }
}
