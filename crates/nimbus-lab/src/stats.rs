//! Statistics across seeds: means with 95% confidence intervals (Student's
//! t) and paired per-seed ratios between two policies run on the same
//! workload instances.

pub use nimbus_sim::summary::{Summary, t_975};

/// Per-seed ratios `subject / baseline` (pairs where both are defined and
/// the baseline is non-zero), summarised.
pub fn paired_ratio(subject: &[f64], baseline: &[f64]) -> Summary {
    let ratios: Vec<f64> = subject
        .iter()
        .zip(baseline)
        .filter(|(s, b)| !s.is_nan() && !b.is_nan() && **b != 0.0)
        .map(|(s, b)| s / b)
        .collect();
    Summary::of(&ratios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_ratios_skip_undefined() {
        let s = paired_ratio(&[1.0, 2.0, f64::NAN], &[2.0, 4.0, 1.0]);
        assert_eq!((s.n, s.mean), (2, 0.5));
        assert_eq!(s.ci95, 0.0);
    }
}
