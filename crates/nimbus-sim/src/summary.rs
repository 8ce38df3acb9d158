//! Means with 95% confidence intervals (Student's t), shared by the lab
//! (across seeds) and the forecast harness (across origins).

/// Two-sided 97.5% quantiles of Student's t for 1–30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// The 97.5% quantile of Student's t with `df` degrees of freedom (exact
/// table to 30, then interpolated in 1/df towards the normal 1.960).
pub fn t_975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T_975[df - 1],
        _ => {
            // Between df = 30 (2.042) and infinity (1.960), linear in 1/df.
            1.960 + (2.042 - 1.960) * 30.0 / df as f64
        }
    }
}

/// A sample's mean and the half-width of its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Values that were defined (not NaN).
    pub n: usize,
    /// Their mean (NaN when none).
    pub mean: f64,
    /// Half-width of the 95% CI (NaN with fewer than two values).
    pub ci95: f64,
}

impl Summary {
    /// Summarises the defined (non-NaN) values.
    pub fn of(values: &[f64]) -> Summary {
        let defined: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        let n = defined.len();
        if n == 0 {
            return Summary { n, mean: f64::NAN, ci95: f64::NAN };
        }
        let mean = defined.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Summary { n, mean, ci95: f64::NAN };
        }
        let var = defined.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Summary { n, mean, ci95: t_975(n - 1) * (var / n as f64).sqrt() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_by_hand() {
        // Mean 2, sample sd 1, n = 3: CI = 4.303 · 1/√3.
        let s = Summary::of(&[1.0, 2.0, 3.0]);
        assert_eq!(s.n, 3);
        assert_eq!(s.mean, 2.0);
        assert!((s.ci95 - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        let single = Summary::of(&[5.0, f64::NAN]);
        assert_eq!((single.n, single.mean), (1, 5.0));
        assert!(single.ci95.is_nan());
        assert!(Summary::of(&[]).mean.is_nan());
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(30), 2.042);
        assert!((t_975(1_000_000) - 1.960).abs() < 1e-3);
        assert!(t_975(60) < 2.042 && t_975(60) > 1.96);
    }
}
