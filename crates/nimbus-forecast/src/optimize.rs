//! Small deterministic optimisers for fitting smoothing parameters.

/// Minimises `f` on `[lo, hi]` by Brent's method (golden-section steps with
/// parabolic interpolation, the bounded scalar search of scipy's
/// `fminbound`, which statsforecast uses for SES) to an absolute tolerance
/// of 1e-6 (at most 100 evaluations). On a smooth unimodal `f` it needs a
/// third of golden-section's evaluations.
pub fn brent(lo: f64, hi: f64, mut f: impl FnMut(f64) -> f64) -> f64 {
    const GOLDEN: f64 = 0.381_966_011_250_105_1; // (3 − √5) / 2
    const TOLERANCE: f64 = 1e-6;
    let (mut a, mut b) = (lo, hi);
    let mut x = a + GOLDEN * (b - a);
    let (mut w, mut v) = (x, x);
    let mut fx = f(x);
    let (mut fw, mut fv) = (fx, fx);
    let (mut d, mut e) = (0.0f64, 0.0f64);
    for _ in 0..100 {
        let middle = 0.5 * (a + b);
        let tol1 = 1.5e-8 * x.abs() + TOLERANCE / 3.0;
        let tol2 = 2.0 * tol1;
        if (x - middle).abs() <= tol2 - 0.5 * (b - a) {
            break;
        }
        let mut golden = true;
        if e.abs() > tol1 {
            // Parabola through x, w, v.
            let r = (x - w) * (fx - fv);
            let mut q = (x - v) * (fx - fw);
            let mut p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            }
            q = q.abs();
            let previous = e;
            e = d;
            if p.abs() < (0.5 * q * previous).abs() && p > q * (a - x) && p < q * (b - x) {
                d = p / q;
                let u = x + d;
                if u - a < tol2 || b - u < tol2 {
                    d = if middle >= x { tol1 } else { -tol1 };
                }
                golden = false;
            }
        }
        if golden {
            e = if x >= middle { a - x } else { b - x };
            d = GOLDEN * e;
        }
        let u = if d.abs() >= tol1 {
            x + d
        } else if d > 0.0 {
            x + tol1
        } else {
            x - tol1
        };
        let fu = f(u);
        if fu <= fx {
            if u >= x {
                a = x;
            } else {
                b = x;
            }
            (v, fv, w, fw, x, fx) = (w, fw, x, fx, u, fu);
        } else {
            if u < x {
                a = u;
            } else {
                b = u;
            }
            if fu <= fw || w == x {
                (v, fv, w, fw) = (w, fw, u, fu);
            } else if fu <= fv || v == x || v == w {
                (v, fv) = (u, fu);
            }
        }
    }
    x
}

/// Minimises `f` by Nelder–Mead from `start` with initial steps `step`,
/// keeping every point inside `[lower, upper]` (by clamping); stops after
/// `max_evaluations`, when the simplex's values agree to 1e-10 relative, or
/// when its points agree to 1e-9 relative.
pub fn nelder_mead(
    start: &[f64],
    step: &[f64],
    lower: &[f64],
    upper: &[f64],
    max_evaluations: usize,
    mut f: impl FnMut(&[f64]) -> f64,
) -> Vec<f64> {
    let n = start.len();
    let clamp = |x: &mut Vec<f64>| {
        for ((v, lo), hi) in x.iter_mut().zip(lower).zip(upper) {
            *v = v.clamp(*lo, *hi);
        }
    };
    let mut evaluations = 0usize;
    let mut eval = |x: &[f64], evaluations: &mut usize| {
        *evaluations += 1;
        let v = f(x);
        if v.is_nan() { f64::INFINITY } else { v }
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    let mut first = start.to_vec();
    clamp(&mut first);
    let v = eval(&first, &mut evaluations);
    simplex.push((first.clone(), v));
    for i in 0..n {
        let mut x = first.clone();
        x[i] += step[i];
        if x[i] > upper[i] {
            x[i] = first[i] - step[i];
        }
        clamp(&mut x);
        let v = eval(&x, &mut evaluations);
        simplex.push((x, v));
    }
    while evaluations < max_evaluations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() <= 1e-10 * (best.abs() + 1e-20) {
            break;
        }
        // Or when the simplex has shrunk to a point (1e-9 in every
        // coordinate, relative to its size): further steps move nothing.
        let spread = simplex[1..]
            .iter()
            .flat_map(|(x, _)| x.iter().zip(&simplex[0].0).map(|(a, b)| (a - b).abs() / (1.0 + b.abs())))
            .fold(0.0, f64::max);
        if spread < 1e-9 {
            break;
        }
        let centroid: Vec<f64> =
            (0..n).map(|j| simplex[..n].iter().map(|(x, _)| x[j]).sum::<f64>() / n as f64).collect();
        let towards = |t: f64| -> Vec<f64> {
            let mut x: Vec<f64> = centroid.iter().zip(&simplex[n].0).map(|(c, w)| c + t * (c - w)).collect();
            clamp(&mut x);
            x
        };
        let reflected = towards(1.0);
        let fr = eval(&reflected, &mut evaluations);
        if fr < simplex[0].1 {
            let expanded = towards(2.0);
            let fe = eval(&expanded, &mut evaluations);
            simplex[n] = if fe < fr { (expanded, fe) } else { (reflected, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let contracted = if fr < simplex[n].1 { towards(0.5) } else { towards(-0.5) };
            let fc = eval(&contracted, &mut evaluations);
            if fc < fr.min(simplex[n].1) {
                simplex[n] = (contracted, fc);
            } else {
                let best = simplex[0].0.clone();
                for point in simplex.iter_mut().skip(1) {
                    let mut x: Vec<f64> = best.iter().zip(&point.0).map(|(b, p)| b + 0.5 * (p - b)).collect();
                    clamp(&mut x);
                    let v = eval(&x, &mut evaluations);
                    *point = (x, v);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brent_finds_minima_in_few_evaluations() {
        let mut calls = 0;
        let x = brent(0.0, 1.0, |x| {
            calls += 1;
            (x - 0.3) * (x - 0.3)
        });
        assert!((x - 0.3).abs() < 1e-5, "{x}");
        assert!(calls < 15, "{calls} evaluations");
        // At the boundary when the minimum is outside.
        let x = brent(0.1, 0.3, |x| (x - 0.9).powi(2));
        assert!((x - 0.3).abs() < 1e-5, "{x}");
        let x = brent(0.01, 0.99, |x| (x - 0.01).abs().sqrt() + (x - 0.5).powi(4));
        assert!(x < 0.02, "{x}");
    }

    #[test]
    fn nelder_mead_finds_rosenbrock_minimum() {
        let x = nelder_mead(&[-1.0, 1.0], &[0.5, 0.5], &[-5.0, -5.0], &[5.0, 5.0], 5_000, |x| {
            (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2)
        });
        assert!((x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 1e-3, "{x:?}");
        // Bounds hold.
        let x = nelder_mead(&[0.5], &[0.1], &[0.1], &[0.99], 500, |x| -x[0]);
        assert!((x[0] - 0.99).abs() < 1e-9);
    }
}
