//! The arrival rate over time.
//!
//! A demand is a rate (samples/s) per `step_s`, held constant within a
//! step. Sources: a column of a timestamped CSV file or GAIA arrival counts
//! (through `nimbus-trace::series`), scaled so that the largest value is
//! `peak_rate`; or the synthetic generator below.
//!
//! Synthetic (per minute): a daily cycle between 30% and 100% of the peak
//! of the day (sinusoidal, trough at 04:00), weekends at 80%, ±5% white
//! noise, and bursts that double the rate for 10–60 minutes, on average
//! `bursts_per_day` a day at seeded random times: the "diurnal series with
//! 2× bursts" of Kale's evaluation.

use nimbus_sim::rng::RngStreams;

/// Arrival rate per step.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// Seconds per value.
    pub step_s: u64,
    /// Samples per second in each step.
    pub rates: Vec<f64>,
}

impl Demand {
    /// Seconds covered.
    pub fn duration_s(&self) -> u64 {
        self.step_s.saturating_mul(self.rates.len() as u64)
    }

    /// The rate at second `t` (0 past the end).
    pub fn rate_at(&self, t: u64) -> f64 {
        usize::try_from(t / self.step_s.max(1)).ok().and_then(|i| self.rates.get(i)).copied().unwrap_or(0.0)
    }

    /// Rates averaged over blocks of `block_s` seconds (a multiple of the
    /// step), for forecasting at a coarser resolution.
    pub fn averaged(&self, block_s: u64) -> Vec<f64> {
        let factor = usize::try_from((block_s / self.step_s.max(1)).max(1)).unwrap_or(1);
        self.rates.chunks(factor).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect()
    }

    /// Scales the rates so that the largest is `peak` (all zero stays zero).
    pub fn scaled_to_peak(mut self, peak: f64) -> Demand {
        let max = self.rates.iter().copied().fold(0.0, f64::max);
        if max > 0.0 {
            for r in &mut self.rates {
                *r *= peak / max;
            }
        }
        self
    }
}

/// The synthetic diurnal demand with bursts, `days` long, peaking near
/// `peak_rate` (bursts reach twice the day's level).
pub fn synthetic(days: f64, peak_rate: f64, bursts_per_day: f64, seed: u64) -> Demand {
    let minutes = nimbus_sim::params::round_to_u64((days * 1440.0).ceil())
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(1)
        .max(1);
    let mut rng = RngStreams::new(seed).stream("elastic/demand");
    let mut rates = Vec::with_capacity(minutes);
    let mut burst_left = 0usize;
    let burst_probability = bursts_per_day / 1440.0;
    for m in 0..minutes {
        let hour = (m % 1440) as f64 / 60.0;
        // Trough at 04:00, peak at 16:00.
        let cycle = 0.65 - 0.35 * ((hour - 4.0) / 24.0 * std::f64::consts::TAU).cos();
        let weekend = if (m / 1440) % 7 >= 5 { 0.8 } else { 1.0 };
        if burst_left == 0 && rng.bernoulli(burst_probability.min(1.0)) {
            burst_left = 10 + rng.index(51);
        }
        let burst = if burst_left > 0 {
            burst_left -= 1;
            2.0
        } else {
            1.0
        };
        let noise = 1.0 + rng.uniform_range(-0.05, 0.05);
        rates.push((peak_rate / 2.0) * cycle * weekend * burst * noise);
    }
    Demand { step_s: 60, rates }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_scaling() {
        let d = Demand { step_s: 60, rates: vec![1.0, 3.0] }.scaled_to_peak(6.0);
        assert_eq!(d.rates, vec![2.0, 6.0]);
        assert_eq!(d.rate_at(59), 2.0);
        assert_eq!(d.rate_at(60), 6.0);
        assert_eq!(d.rate_at(120), 0.0);
        assert_eq!(d.duration_s(), 120);
        assert_eq!(d.averaged(120), vec![4.0]);
    }

    #[test]
    fn synthetic_has_a_daily_cycle_and_bursts() {
        let d = synthetic(7.0, 1000.0, 2.0, 1);
        assert_eq!(d.rates.len(), 7 * 1440);
        assert_eq!(d, synthetic(7.0, 1000.0, 2.0, 1));
        let at = |h: usize| d.rates[h * 60];
        assert!(at(16) > 2.0 * at(4), "{} vs {}", at(16), at(4));
        let max = d.rates.iter().copied().fold(0.0, f64::max);
        assert!(max > 700.0 && max <= 1100.0, "{max}");
    }
}
