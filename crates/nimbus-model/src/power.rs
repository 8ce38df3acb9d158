//! Server power as a function of CPU utilisation: the models OpenDC offers
//! (most adapted from CloudSim and GreenCloud), facility overhead (PUE),
//! and exact energy over piecewise-constant utilisation.
//!
//! With u the utilisation clamped to [0, 1], P_idle and P_max in watts:
//! - `constant`: P;
//! - `linear`, `sqrt`, `square`, `cubic`: P_idle + (P_max − P_idle)·f(u)
//!   with f(u) = u, √u, u², u³;
//! - `mse` (Fan et al., ISCA'07): P_idle + (P_max − P_idle)·(2u − u^r),
//!   r the calibration exponent;
//! - `asymptotic` (GreenCloud): P_idle + (P_max − P_idle)/2·(1 + u −
//!   e^(−u/a)), or with DVFS u³ in place of u in both terms;
//! - `interpolated`: linear interpolation over power levels at u = 0, 0.1,
//!   …, 1 (SPECpower tables; exactly 11 levels).
//!
//! OpenDC does not clamp u in its `mse` and `asymptotic` models; here every
//! model clamps, so a host over 100% draws its full-load power (OpenDC's
//! CPU reports utilisation already capped at 1, so the two agree there).

/// A power model.
#[derive(Debug, Clone, PartialEq)]
pub enum PowerModel {
    /// The same power at every load.
    #[allow(missing_docs)]
    Constant { watts: f64 },
    /// Linear in utilisation.
    #[allow(missing_docs)]
    Linear { idle_w: f64, max_w: f64 },
    /// Square root of utilisation (a concave curve: most power at low load).
    #[allow(missing_docs)]
    Sqrt { idle_w: f64, max_w: f64 },
    /// Square of utilisation.
    #[allow(missing_docs)]
    Square { idle_w: f64, max_w: f64 },
    /// Cube of utilisation.
    #[allow(missing_docs)]
    Cubic { idle_w: f64, max_w: f64 },
    /// Fan et al.'s fitted curve with calibration exponent `r`.
    #[allow(missing_docs)]
    Mse { idle_w: f64, max_w: f64, r: f64 },
    /// GreenCloud's asymptotic curve; `asym_util` is the utilisation beyond
    /// which power is close to linear.
    #[allow(missing_docs)]
    Asymptotic { idle_w: f64, max_w: f64, asym_util: f64, dvfs: bool },
    /// Watts at u = 0, 0.1, …, 1.
    #[allow(missing_docs)]
    Interpolated { levels: [f64; 11] },
}

/// Names accepted by [`PowerModel::from_parts`].
pub const MODEL_NAMES: [&str; 8] =
    ["constant", "linear", "sqrt", "square", "cubic", "mse", "asymptotic", "interpolated"];

impl PowerModel {
    /// Builds a model by name from its parameters (`power` for constant,
    /// `levels` for interpolated); errors say what is wrong.
    pub fn from_parts(
        name: &str,
        power_w: Option<f64>,
        idle_w: Option<f64>,
        max_w: Option<f64>,
        extra: &PowerExtras,
    ) -> Result<PowerModel, String> {
        let need = |v: Option<f64>, what: &str| -> Result<f64, String> {
            let v = v.ok_or_else(|| format!("power model `{name}` needs {what}"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(format!("power model `{name}`: {what} must be a finite number ≥ 0, not {v}"));
            }
            Ok(v)
        };
        let pair = || -> Result<(f64, f64), String> {
            let (idle, max) = (need(idle_w, "an idle power")?, need(max_w, "a maximum power")?);
            if idle > max {
                return Err(format!("power model `{name}`: idle power {idle} W is above maximum power {max} W"));
            }
            Ok((idle, max))
        };
        Ok(match name {
            "constant" => PowerModel::Constant { watts: need(power_w, "a power")? },
            "linear" => pair().map(|(idle_w, max_w)| PowerModel::Linear { idle_w, max_w })?,
            "sqrt" => pair().map(|(idle_w, max_w)| PowerModel::Sqrt { idle_w, max_w })?,
            "square" => pair().map(|(idle_w, max_w)| PowerModel::Square { idle_w, max_w })?,
            "cubic" => pair().map(|(idle_w, max_w)| PowerModel::Cubic { idle_w, max_w })?,
            "mse" => {
                let (idle_w, max_w) = pair()?;
                let r = extra.calibration_factor.unwrap_or(1.0);
                if !(r.is_finite() && r > 0.0) {
                    return Err(format!("power model `mse`: calibration factor must be > 0, not {r}"));
                }
                PowerModel::Mse { idle_w, max_w, r }
            }
            "asymptotic" => {
                let (idle_w, max_w) = pair()?;
                let asym_util = extra.asym_util.unwrap_or(0.3);
                if !(asym_util.is_finite() && asym_util > 0.0 && asym_util <= 1.0) {
                    return Err(format!("power model `asymptotic`: asymUtil must lie in (0, 1], not {asym_util}"));
                }
                PowerModel::Asymptotic { idle_w, max_w, asym_util, dvfs: extra.dvfs.unwrap_or(false) }
            }
            "interpolated" => {
                let levels = extra.levels.as_ref().ok_or("power model `interpolated` needs 11 power levels")?;
                let levels: [f64; 11] = levels.as_slice().try_into().map_err(|_| {
                    format!("power model `interpolated` needs 11 power levels (u = 0, 0.1, …, 1), not {}", levels.len())
                })?;
                if let Some(bad) = levels.iter().find(|v| !v.is_finite() || **v < 0.0) {
                    return Err(format!("power model `interpolated`: level {bad} is not a finite number ≥ 0"));
                }
                PowerModel::Interpolated { levels }
            }
            other => {
                return Err(format!("unknown power model `{other}`; known: {}", MODEL_NAMES.join(", ")));
            }
        })
    }

    /// Watts at utilisation `u` (clamped to [0, 1]; NaN counts as idle).
    pub fn watts(&self, u: f64) -> f64 {
        let u = if u.is_nan() { 0.0 } else { u.clamp(0.0, 1.0) };
        let span = |idle: f64, max: f64, f: f64| idle + (max - idle) * f;
        match *self {
            PowerModel::Constant { watts } => watts,
            PowerModel::Linear { idle_w, max_w } => span(idle_w, max_w, u),
            PowerModel::Sqrt { idle_w, max_w } => span(idle_w, max_w, u.sqrt()),
            PowerModel::Square { idle_w, max_w } => span(idle_w, max_w, u * u),
            PowerModel::Cubic { idle_w, max_w } => span(idle_w, max_w, u * u * u),
            PowerModel::Mse { idle_w, max_w, r } => span(idle_w, max_w, 2.0 * u - u.powf(r)),
            PowerModel::Asymptotic { idle_w, max_w, asym_util, dvfs } => {
                let x = if dvfs { u * u * u } else { u };
                idle_w + (max_w - idle_w) / 2.0 * (1.0 + x - (-x / asym_util).exp())
            }
            PowerModel::Interpolated { levels } => {
                let x = u * 10.0;
                let lo = (x.floor() as usize).min(10);
                let hi = (x.ceil() as usize).min(10);
                levels[lo] + (levels[hi] - levels[lo]) * (x - lo as f64)
            }
        }
    }

    /// Watts with no load.
    pub fn idle_watts(&self) -> f64 {
        self.watts(0.0)
    }

    /// Joules drawn at constant utilisation `u` for `ms` milliseconds.
    pub fn energy_j(&self, u: f64, ms: u64) -> f64 {
        self.watts(u) * ms as f64 * 1e-3
    }
}

/// Optional parameters of some models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PowerExtras {
    /// `mse`: the calibration exponent r (1 by default).
    pub calibration_factor: Option<f64>,
    /// `asymptotic`: the asymptotic utilisation (0.3 by default).
    pub asym_util: Option<f64>,
    /// `asymptotic`: whether DVFS is on (off by default).
    pub dvfs: Option<bool>,
    /// `interpolated`: the 11 power levels.
    pub levels: Option<Vec<f64>>,
}

/// Facility overhead: power at the meter = IT power × PUE.
#[derive(Debug, Clone, PartialEq)]
pub enum Pue {
    /// The same ratio at all times.
    Constant(f64),
    /// Rises linearly with the outside temperature above a free-cooling
    /// threshold: `base` up to `free_cooling_c`, plus `per_degree` for each
    /// °C above it (inferred shape; chillers run harder in heat).
    #[allow(missing_docs)]
    Temperature { base: f64, free_cooling_c: f64, per_degree: f64 },
}

impl Pue {
    /// The ratio at outside temperature `outside_c` (ignored when constant).
    pub fn ratio(&self, outside_c: f64) -> f64 {
        match *self {
            Pue::Constant(r) => r,
            Pue::Temperature { base, free_cooling_c, per_degree } => {
                base + per_degree * (outside_c - free_cooling_c).max(0.0)
            }
        }
    }
}

/// Exact energy of a piecewise-constant utilisation: `steps` are
/// (duration ms, utilisation) pairs; joules.
pub fn energy_of_steps(model: &PowerModel, steps: &[(u64, f64)]) -> f64 {
    steps.iter().map(|&(ms, u)| model.energy_j(u, ms)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str) -> PowerModel {
        let extra = PowerExtras {
            calibration_factor: Some(1.4),
            asym_util: Some(0.3),
            dvfs: Some(false),
            levels: Some((0..=10).map(|i| 100.0 + 10.0 * i as f64 * i as f64).collect()),
        };
        PowerModel::from_parts(name, Some(250.0), Some(32.0), Some(180.0), &extra).expect("ok")
    }

    #[test]
    fn every_model_by_hand() {
        assert_eq!(model("constant").watts(0.7), 250.0);
        assert_eq!(model("linear").watts(0.25), 32.0 + 148.0 * 0.25);
        assert_eq!(model("sqrt").watts(0.25), 32.0 + 148.0 * 0.5);
        assert_eq!(model("square").watts(0.5), 32.0 + 148.0 * 0.25);
        assert_eq!(model("cubic").watts(0.5), 32.0 + 148.0 * 0.125);
        let mse = 32.0 + 148.0 * (1.0 - 0.5f64.powf(1.4));
        assert!((model("mse").watts(0.5) - mse).abs() < 1e-12);
        let asym = 32.0 + 74.0 * (1.5 - (-0.5f64 / 0.3).exp());
        assert!((model("asymptotic").watts(0.5) - asym).abs() < 1e-12);
        // Levels 100 + 10·i²: between i = 2 (140) and 3 (190) at u = 0.25.
        assert!((model("interpolated").watts(0.25) - 165.0).abs() < 1e-9);
        assert_eq!(model("interpolated").watts(1.0), 1100.0);
    }

    #[test]
    fn curves_span_idle_to_max_and_clamp() {
        for name in ["linear", "sqrt", "square", "cubic", "mse"] {
            let m = model(name);
            assert!((m.watts(0.0) - 32.0).abs() < 1e-12, "{name}");
            assert!((m.watts(1.0) - 180.0).abs() < 1e-12, "{name}");
            assert_eq!(m.watts(1.7), m.watts(1.0), "{name} clamps above 1");
            assert_eq!(m.watts(-0.3), m.watts(0.0), "{name} clamps below 0");
            assert_eq!(m.watts(f64::NAN), m.watts(0.0));
            let mut last = 0.0;
            for i in 0..=100 {
                let w = m.watts(i as f64 / 100.0);
                assert!(w >= last - 1e-12, "{name} is monotone");
                last = w;
            }
        }
    }

    #[test]
    fn bad_parts_are_refused_with_reasons() {
        let none = PowerExtras::default();
        let e = PowerModel::from_parts("quadratic", None, Some(1.0), Some(2.0), &none).expect_err("an error");
        assert!(e.contains("unknown power model `quadratic`") && e.contains("sqrt"), "{e}");
        let e = PowerModel::from_parts("linear", None, Some(200.0), Some(100.0), &none).expect_err("an error");
        assert!(e.contains("above maximum"), "{e}");
        let e = PowerModel::from_parts("sqrt", None, None, Some(100.0), &none).expect_err("an error");
        assert!(e.contains("idle power"), "{e}");
        let e = PowerModel::from_parts("linear", None, Some(-1.0), Some(100.0), &none).expect_err("an error");
        assert!(e.contains("≥ 0"), "{e}");
        let short = PowerExtras { levels: Some(vec![1.0; 5]), ..PowerExtras::default() };
        let e = PowerModel::from_parts("interpolated", None, None, None, &short).expect_err("an error");
        assert!(e.contains("11 power levels") && e.contains("not 5"), "{e}");
    }

    #[test]
    fn energy_integrates_steps_exactly() {
        let m = model("linear");
        // An hour idle and an hour at full load: 32 Wh + 180 Wh.
        let j = energy_of_steps(&m, &[(3_600_000, 0.0), (3_600_000, 1.0)]);
        assert!((j - 212.0 * 3600.0).abs() < 1e-6);
        assert_eq!(Pue::Constant(1.2).ratio(40.0), 1.2);
        let pue = Pue::Temperature { base: 1.1, free_cooling_c: 18.0, per_degree: 0.01 };
        assert_eq!(pue.ratio(10.0), 1.1);
        assert!((pue.ratio(28.0) - 1.2).abs() < 1e-12);
    }
}
