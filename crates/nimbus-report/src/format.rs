//! Number formatting shared by tables and reports.

/// A number with about four significant digits, without exponent for
/// everyday magnitudes; NaN prints as `–`.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        return "–".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else if a >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// `mean ± ci` (just the mean when the interval is undefined).
pub fn mean_ci(mean: f64, ci: f64) -> String {
    if ci.is_nan() { number(mean) } else { format!("{} ± {}", number(mean), number(ci)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(number(16.9512), "16.95");
        assert_eq!(number(0.59), "0.5900");
        assert_eq!(number(1234.6), "1235");
        assert_eq!(number(f64::NAN), "–");
        assert_eq!(number(2.5e7), "2.500e7");
        assert_eq!(mean_ci(1.0, f64::NAN), "1.000");
        assert_eq!(mean_ci(1.0, 0.25), "1.000 ± 0.2500");
    }
}
