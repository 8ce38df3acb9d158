//! In-run statistics: latency histograms, time-weighted averages, sampled
//! time series, and exact order statistics of small samples.
//!
//! Cross-run statistics (confidence intervals across seeds, paired
//! comparisons) live in `nimbus-lab`; this module only summarises one run.

use crate::time::SimTime;

/// A latency histogram with 3 significant digits (HDR), for distributions
/// too large to keep every sample of.
#[derive(Debug, Clone)]
pub struct Histogram {
    inner: hdrhistogram::Histogram<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram that grows to fit any `u64` value.
    pub fn new() -> Self {
        let inner = hdrhistogram::Histogram::new(3).expect("3 significant figures is valid");
        Histogram { inner }
    }

    /// Records one value (e.g. nanoseconds).
    pub fn record(&mut self, value: u64) {
        // `record` grows the histogram to fit; saturate only if growth fails.
        if self.inner.record(value).is_err() {
            self.inner.saturating_record(value);
        }
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// The mean of recorded values (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.inner.is_empty() { 0.0 } else { self.inner.mean() }
    }

    /// The value at quantile `q` in `[0, 1]` (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        self.inner.value_at_quantile(q)
    }

    /// The largest recorded value.
    pub fn max(&self) -> u64 {
        self.inner.max()
    }
}

/// The time-weighted average of a piecewise-constant quantity, such as busy
/// GPUs or queue length.
#[derive(Debug, Clone)]
pub struct TimeWeighted {
    start: SimTime,
    last_change: SimTime,
    value: f64,
    integral: f64,
    max: f64,
}

impl TimeWeighted {
    /// Starts tracking at `start` with an initial value.
    pub fn new(start: SimTime, value: f64) -> Self {
        TimeWeighted { start, last_change: start, value, integral: 0.0, max: value }
    }

    /// The quantity changes to `value` at time `at` (which must not precede
    /// the previous change).
    pub fn set(&mut self, at: SimTime, value: f64) {
        self.integral += self.value * at.since(self.last_change).as_secs_f64();
        self.last_change = at;
        self.value = value;
        self.max = self.max.max(value);
    }

    /// The current value.
    pub fn current(&self) -> f64 {
        self.value
    }

    /// The integral of the quantity from the start to `until` (value × seconds).
    pub fn integral(&self, until: SimTime) -> f64 {
        self.integral + self.value * until.saturating_since(self.last_change).as_secs_f64()
    }

    /// The time-weighted mean from the start to `until` (0 for an empty span).
    pub fn mean(&self, until: SimTime) -> f64 {
        let span = until.saturating_since(self.start).as_secs_f64();
        if span <= 0.0 { self.value } else { self.integral(until) / span }
    }

    /// The largest value seen.
    pub fn max(&self) -> f64 {
        self.max
    }
}

/// A sampled time series for plots: `(time, value)` points in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeSeries {
    points: Vec<(SimTime, f64)>,
}

impl TimeSeries {
    /// An empty series.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a point; a point at the same time as the last one replaces it.
    ///
    /// # Panics
    /// If `at` precedes the last point (time never goes backwards).
    pub fn push(&mut self, at: SimTime, value: f64) {
        if let Some(last) = self.points.last_mut() {
            assert!(at >= last.0, "time series point at {at} precedes {}", last.0);
            if last.0 == at {
                last.1 = value;
                return;
            }
        }
        self.points.push((at, value));
    }

    /// The points, in time order.
    pub fn points(&self) -> &[(SimTime, f64)] {
        &self.points
    }

    /// At most `max_points` points, keeping the first and last and evenly
    /// spaced ones between (for plotting long runs).
    pub fn downsampled(&self, max_points: usize) -> Vec<(SimTime, f64)> {
        let n = self.points.len();
        if n <= max_points || max_points < 2 {
            return self.points.clone();
        }
        (0..max_points).map(|i| self.points[i * (n - 1) / (max_points - 1)]).collect()
    }
}

/// The arithmetic mean (NaN for an empty sample).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The sample standard deviation (n − 1 denominator; 0 for fewer than two values).
pub fn std_dev(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (values.len() - 1) as f64).sqrt()
}

/// The `q`-quantile (`q` in `[0, 1]`) with linear interpolation between order
/// statistics (the default of NumPy's `percentile`); NaN for an empty sample.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// [`quantile`] on an already sorted sample.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lower = pos.floor() as usize;
    let upper = pos.ceil() as usize;
    let frac = pos - lower as f64;
    sorted[lower] + (sorted[upper] - sorted[lower]) * frac
}

/// The standard normal distribution's `p`-quantile (Acklam's rational
/// approximation, relative error below 1.2e-9); ±infinity at 0 and 1.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_weighted_mean_by_hand() {
        // 2 for 10 s, then 4 for 30 s: (20 + 120) / 40 = 3.5.
        let mut tw = TimeWeighted::new(SimTime::ZERO, 2.0);
        tw.set(SimTime::from_secs(10), 4.0);
        assert_eq!(tw.mean(SimTime::from_secs(40)), 3.5);
        assert_eq!(tw.integral(SimTime::from_secs(40)), 140.0);
        assert_eq!(tw.max(), 4.0);
    }

    #[test]
    fn normal_quantiles_match_tables() {
        // Φ⁻¹ from standard tables.
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.01, -2.326_347_874_040_841),
            (0.001, -3.090_232_306_167_813),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}: {}", normal_quantile(p));
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert!(normal_quantile(f64::NAN).is_nan());
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert!((quantile(&v, 0.99) - 3.97).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn mean_and_std_dev_by_hand() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&v), 5.0);
        assert!((std_dev(&v) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn histogram_quantiles_within_precision() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 1000);
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.002, "{p99}");
    }

    #[test]
    fn series_downsampling_keeps_ends() {
        let mut s = TimeSeries::new();
        for i in 0..100 {
            s.push(SimTime::from_secs(i), i as f64);
        }
        s.push(SimTime::from_secs(99), -1.0);
        let d = s.downsampled(10);
        assert_eq!(d.len(), 10);
        assert_eq!(d[0].1, 0.0);
        assert_eq!(d[9].1, -1.0);
    }
}
