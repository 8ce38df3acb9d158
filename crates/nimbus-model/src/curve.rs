//! Curves through measured points.

/// Piecewise-linear interpolation over points sorted by x; clamped below
/// the first point, extended along the last segment above the last.
pub fn interpolate(points: impl Iterator<Item = (f64, f64)> + Clone, x: f64) -> f64 {
    let mut previous: Option<(f64, f64)> = None;
    let mut last_two = (None, None);
    for (px, py) in points {
        if x <= px {
            return match previous {
                None => py,
                Some((qx, qy)) => qy + (py - qy) * (x - qx) / (px - qx),
            };
        }
        previous = Some((px, py));
        last_two = (last_two.1, Some((px, py)));
    }
    match last_two {
        (Some((ax, ay)), Some((bx, by))) if bx > ax => (by + (by - ay) * (x - bx) / (bx - ax)).max(0.0),
        (_, Some((_, by))) => by,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_clamps_and_extrapolates() {
        let pts = [(1.0, 10.0), (3.0, 30.0), (4.0, 50.0)];
        let f = |x: f64| interpolate(pts.iter().copied(), x);
        assert_eq!(f(0.0), 10.0);
        assert_eq!(f(2.0), 20.0);
        assert_eq!(f(3.5), 40.0);
        assert_eq!(f(5.0), 70.0);
        assert_eq!(interpolate(std::iter::empty(), 1.0), 0.0);
    }
}
