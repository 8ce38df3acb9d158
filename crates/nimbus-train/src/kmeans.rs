//! Optimal one-dimensional k-means by dynamic programming.
//!
//! With the values sorted, an optimal clustering is a split into `k`
//! contiguous runs; `D[j][i]`, the least squared error of the first `i`
//! values in `j` runs, is `min_m D[j−1][m] + SSE(m, i)`. The error of a run
//! comes from prefix sums in O(1), and the best `m` is monotone in `i`, so
//! each level is solved by divide and conquer in O(n log n) (as
//! Ckmeans.1d.dp does): O(k · n log n) for every `k` up to `kmax` at once.
//! The result is exact, not a Lloyd-style local optimum.

/// The solved levels for one set of values.
#[derive(Debug, Clone)]
pub struct KMeans1d {
    sorted: Vec<f64>,
    sum: Vec<f64>,
    sum2: Vec<f64>,
    /// `start[j][i]`: where the last of `j + 1` runs over the first `i`
    /// values begins.
    start: Vec<Vec<u32>>,
}

impl KMeans1d {
    /// Solves every level up to `kmax` for `values` (any order).
    pub fn new(values: &[f32], kmax: usize) -> KMeans1d {
        let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mut sum = Vec::with_capacity(n + 1);
        let mut sum2 = Vec::with_capacity(n + 1);
        sum.push(0.0);
        sum2.push(0.0);
        for &v in &sorted {
            sum.push(sum.last().copied().unwrap_or(0.0) + v);
            sum2.push(sum2.last().copied().unwrap_or(0.0) + v * v);
        }
        let mut km = KMeans1d { sorted, sum, sum2, start: Vec::new() };
        let kmax = kmax.clamp(1, n.max(1));
        if n == 0 {
            return km;
        }
        let mut prev: Vec<f64> = (0..=n).map(|i| km.sse(0, i)).collect();
        km.start.push(vec![0; n + 1]);
        for j in 1..kmax {
            let mut cur = vec![f64::INFINITY; n + 1];
            let mut start = vec![0u32; n + 1];
            // Ends i from j + 1 (each run non-empty); starts m from j.
            km.level(&prev, &mut cur, &mut start, j + 1, n, j, n - 1);
            km.start.push(start);
            prev = cur;
        }
        km
    }

    /// Squared error of sorted values `m..i`.
    #[inline]
    fn sse(&self, m: usize, i: usize) -> f64 {
        if i <= m {
            return 0.0;
        }
        let (s, s2, c) = (self.sum[i] - self.sum[m], self.sum2[i] - self.sum2[m], (i - m) as f64);
        (s2 - s * s / c).max(0.0)
    }

    /// Fills `cur[lo..=hi]` with the best split point in `opt_lo..=opt_hi`.
    #[allow(clippy::too_many_arguments)]
    fn level(
        &self,
        prev: &[f64],
        cur: &mut [f64],
        start: &mut [u32],
        lo: usize,
        hi: usize,
        opt_lo: usize,
        opt_hi: usize,
    ) {
        if lo > hi {
            return;
        }
        let mid = (lo + hi) / 2;
        let (mut best, mut best_m) = (f64::INFINITY, opt_lo);
        let last = opt_hi.min(mid - 1);
        for (m, &before) in prev.iter().enumerate().take(last + 1).skip(opt_lo) {
            let c = before + self.sse(m, mid);
            if c < best {
                (best, best_m) = (c, m);
            }
        }
        cur[mid] = best;
        start[mid] = best_m as u32;
        if mid > lo {
            self.level(prev, cur, start, lo, mid - 1, opt_lo, best_m);
        }
        self.level(prev, cur, start, mid + 1, hi, best_m, opt_hi);
    }

    /// The optimal `k` centres (ascending) and the thresholds between them
    /// (a value belongs to the first centre whose upper threshold exceeds
    /// it), and the total squared error. `k` is capped at the levels
    /// solved.
    pub fn solve(&self, k: usize) -> Clustering {
        let n = self.sorted.len();
        if n == 0 {
            return Clustering { centres: Vec::new(), upper: Vec::new(), sse: 0.0 };
        }
        let k = k.clamp(1, self.start.len());
        let mut bounds = vec![n];
        let mut i = n;
        for j in (0..k).rev() {
            let m = if j == 0 { 0 } else { self.start[j][i] as usize };
            bounds.push(m);
            i = m;
        }
        bounds.reverse();
        let mut centres = Vec::with_capacity(k);
        let mut upper = Vec::with_capacity(k);
        let mut sse = 0.0;
        for w in bounds.windows(2) {
            let (m, i) = (w[0], w[1]);
            centres.push((self.sum[i] - self.sum[m]) / (i - m).max(1) as f64);
            upper.push(if i < n { self.sorted[i] } else { f64::INFINITY });
            sse += self.sse(m, i);
        }
        Clustering { centres, upper, sse }
    }
}

/// A solved clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Centres, ascending.
    pub centres: Vec<f64>,
    /// Each run's exclusive upper bound (the first value of the next run).
    pub upper: Vec<f64>,
    /// Total squared error.
    pub sse: f64,
}

impl Clustering {
    /// The run `v` falls in.
    pub fn assign(&self, v: f32) -> usize {
        let v = f64::from(v);
        self.upper.partition_point(|&u| u <= v).min(self.centres.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute force over every split of a few values.
    fn brute(values: &[f32], k: usize) -> f64 {
        let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let sse = |a: usize, b: usize| {
            let run = &sorted[a..b];
            let mean = run.iter().sum::<f64>() / run.len() as f64;
            run.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>()
        };
        fn go(n: usize, k: usize, from: usize, sse: &dyn Fn(usize, usize) -> f64) -> f64 {
            if k == 1 {
                return sse(from, n);
            }
            (from + 1..=n - (k - 1)).map(|m| sse(from, m) + go(n, k - 1, m, sse)).fold(f64::INFINITY, f64::min)
        }
        go(n, k.min(n), 0, &sse)
    }

    #[test]
    fn hand_computed_clusters() {
        let km = KMeans1d::new(&[1.0, 1.1, 5.0, 5.2, 9.0], 3);
        let c = km.solve(3);
        assert_eq!(c.centres.len(), 3);
        assert!((c.centres[0] - 1.05).abs() < 1e-6 && (c.centres[1] - 5.1).abs() < 1e-6 && c.centres[2] == 9.0);
        assert_eq!((c.assign(1.1), c.assign(5.0), c.assign(9.0), c.assign(100.0), c.assign(-3.0)), (0, 1, 2, 2, 0));
        assert!((c.sse - (0.005 + 0.02)).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn dynamic_programming_is_optimal(values in proptest::collection::vec(-10.0f32..10.0, 1..12), k in 1usize..5) {
            let km = KMeans1d::new(&values, 4);
            let ours = km.solve(k).sse;
            let best = brute(&values, k.min(4));
            prop_assert!((ours - best).abs() <= 1e-6 * (1.0 + best), "ours {} best {}", ours, best);
        }

        #[test]
        fn every_value_lands_in_its_run(values in proptest::collection::vec(-1.0f32..1.0, 1..300), k in 1usize..9) {
            let km = KMeans1d::new(&values, 8);
            let c = km.solve(k);
            for w in c.centres.windows(2) {
                prop_assert!(w[0] <= w[1]);
            }
            // An optimal clustering puts each value with its nearest
            // centre (ties allowed).
            for &v in &values {
                let a = c.assign(v);
                let d = (f64::from(v) - c.centres[a]).abs();
                let nearest = c.centres.iter().map(|m| (f64::from(v) - m).abs()).fold(f64::INFINITY, f64::min);
                prop_assert!(d <= nearest + 1e-9, "{} went to {} at {}, nearest {}", v, c.centres[a], d, nearest);
            }
        }
    }
}
