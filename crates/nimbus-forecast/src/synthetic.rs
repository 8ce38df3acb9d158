//! Seeded synthetic hourly series, so that studies, tests and benchmarks
//! run without `../shared/data`. Shapes are chosen to exercise what
//! separates forecasters on real cloud series (Forecast-study's list):
//! daily and weekly seasonality, level shifts, bursts, intermittency.
//!
//! - `diurnal`: level 100, a daily cycle of ±30% and a weekly one of ±10%
//!   (weekends lower), AR(1) noise (φ = 0.7, σ = 4), and one level shift
//!   of ±15% at a random point.
//! - `bursty`: `diurnal` with 2× bursts lasting 2–6 hours, about one every
//!   two days (the load Kale and AutoBurst are tested on).
//! - `intermittent`: Poisson counts with a mean of 0.4 per hour that
//!   follows the daily cycle (most hours empty, like GAIA's job arrivals).
//! - `flat`: level 50 with white noise σ = 2 (where seasonal naive should
//!   not lose to anything much).

use nimbus_sim::rng::{RngStreams, SimRng};

/// The kinds [`generate`] knows.
pub const KINDS: &[&str] = &["diurnal", "bursty", "intermittent", "flat"];

fn daily(t: usize) -> f64 {
    ((t % 24) as f64 / 24.0 * std::f64::consts::TAU - std::f64::consts::FRAC_PI_2).sin()
}

fn weekly(t: usize) -> f64 {
    // Days 5 and 6 of each week are the weekend.
    if (t / 24) % 7 >= 5 { -1.0 } else { 0.4 }
}

fn poisson(rng: &mut SimRng, mean: f64) -> f64 {
    // Count unit-rate arrivals before `mean` (means here are small).
    let mut count = 0.0;
    let mut elapsed = rng.exponential(1.0);
    while elapsed < mean && count < 1e6 {
        count += 1.0;
        elapsed += rng.exponential(1.0);
    }
    count
}

fn diurnal(rng: &mut SimRng, length: usize) -> Vec<f64> {
    let shift_at = rng.index(length.max(1));
    let shift = if rng.bernoulli(0.5) { 1.15 } else { 0.85 };
    let mut noise = 0.0;
    (0..length)
        .map(|t| {
            noise = 0.7 * noise + rng.normal(0.0, 4.0);
            let level = if t >= shift_at { 100.0 * shift } else { 100.0 };
            (level * (1.0 + 0.3 * daily(t) + 0.1 * weekly(t)) + noise).max(0.0)
        })
        .collect()
}

/// `count` series of `kind`, each `length` hours, from `seed` (series `i`
/// uses its own stream, so adding series does not change earlier ones).
/// `None` for an unknown kind.
pub fn generate(kind: &str, count: usize, length: usize, seed: u64) -> Option<Vec<Vec<f64>>> {
    if !KINDS.contains(&kind) {
        return None;
    }
    let streams = RngStreams::new(seed);
    Some(
        (0..count)
            .map(|i| {
                let mut rng = streams.stream(&format!("synthetic/{kind}/{i}"));
                match kind {
                    "diurnal" => diurnal(&mut rng, length),
                    "bursty" => {
                        let mut values = diurnal(&mut rng, length);
                        let mut t = 0;
                        while t < length {
                            t += 12 + rng.index(72);
                            let duration = 2 + rng.index(5);
                            for v in values.iter_mut().skip(t).take(duration) {
                                *v *= 2.0;
                            }
                            t += duration;
                        }
                        values
                    }
                    "intermittent" => (0..length).map(|t| poisson(&mut rng, 0.4 * (1.0 + 0.8 * daily(t)))).collect(),
                    _ => (0..length).map(|_| 50.0 + rng.normal(0.0, 2.0)).collect(),
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let a = generate("diurnal", 2, 24 * 14, 7).expect("known kind");
        assert_eq!(a, generate("diurnal", 2, 24 * 14, 7).expect("known kind"));
        assert_ne!(a[0], a[1]);
        // Series 0 does not depend on how many are generated.
        assert_eq!(a[0], generate("diurnal", 1, 24 * 14, 7).expect("known kind")[0]);
        let counts = &generate("intermittent", 1, 24 * 100, 1).expect("known kind")[0];
        let zeros = counts.iter().filter(|v| **v == 0.0).count() as f64 / counts.len() as f64;
        assert!((0.55..0.8).contains(&zeros), "{zeros}");
        let mean = counts.iter().sum::<f64>() / counts.len() as f64;
        assert!((mean - 0.4).abs() < 0.05, "{mean}");
        assert!(generate("bursty", 1, 100, 1).expect("known kind")[0].iter().all(|v| *v >= 0.0));
        assert!(generate("weekly", 1, 10, 1).is_none());
    }
}
