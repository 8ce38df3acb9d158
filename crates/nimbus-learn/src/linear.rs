//! Ridge regression: minimise Σ wᵢ (yᵢ − xᵢ·β)² + λ‖β‖² by Cholesky on the
//! normal equations (features are few; rows many).

use crate::Matrix;

/// A fitted linear model (no implicit intercept: add a column of ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Coefficients, one per column.
    pub beta: Vec<f64>,
}

impl Linear {
    /// Fits `y ≈ x·β` with ridge penalty `lambda` (≥ 0) and optional
    /// weights; `None` when the system is singular even with the penalty.
    pub fn fit(x: &Matrix, y: &[f64], weights: Option<&[f64]>, lambda: f64) -> Option<Linear> {
        let d = x.cols;
        let mut a = vec![0.0; d * d];
        let mut b = vec![0.0; d];
        for i in 0..x.rows() {
            let w = weights.map_or(1.0, |w| w[i]);
            let r = x.row(i);
            for p in 0..d {
                b[p] += w * r[p] * y[i];
                for q in 0..=p {
                    a[p * d + q] += w * r[p] * r[q];
                }
            }
        }
        for p in 0..d {
            a[p * d + p] += lambda;
            for q in 0..p {
                a[q * d + p] = a[p * d + q];
            }
        }
        cholesky_solve(&mut a, &mut b, d)?;
        Some(Linear { beta: b })
    }

    /// The prediction for one row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.beta.iter().zip(row).map(|(b, x)| b * x).sum()
    }
}

/// Solves `a·x = b` in place (`a` symmetric positive definite, `d × d`);
/// `None` if it is not.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], d: usize) -> Option<()> {
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        if s <= 1e-12 || !s.is_finite() {
            return None;
        }
        let l = s.sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    // Forward then backward substitution.
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * d + k] * b[k];
        }
        b[i] = s / a[i * d + i];
    }
    for i in (0..d).rev() {
        let mut s = b[i];
        for k in i + 1..d {
            s -= a[k * d + i] * b[k];
        }
        b[i] = s / a[i * d + i];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_line_and_refuses_a_singular_system() {
        // y = 2 + 3x on x = 0..5.
        let x = Matrix::from_rows(&(0..5).map(|i| vec![1.0, f64::from(i)]).collect::<Vec<_>>());
        let y: Vec<f64> = (0..5).map(|i| 2.0 + 3.0 * f64::from(i)).collect();
        let m = Linear::fit(&x, &y, None, 0.0).expect("regular");
        assert!((m.beta[0] - 2.0).abs() < 1e-9 && (m.beta[1] - 3.0).abs() < 1e-9, "{:?}", m.beta);
        // Two identical columns: singular without a penalty, fine with one.
        let x = Matrix::from_rows(&(0..5).map(|i| vec![f64::from(i), f64::from(i)]).collect::<Vec<_>>());
        assert!(Linear::fit(&x, &y, None, 0.0).is_none());
        let m = Linear::fit(&x, &y, None, 1e-6).expect("penalised");
        assert!((m.beta[0] - m.beta[1]).abs() < 1e-6);
    }
}
