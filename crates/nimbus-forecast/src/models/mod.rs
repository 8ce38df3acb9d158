//! The models, by spec name.

pub mod arima;
pub mod baseline;
pub mod ets;
pub mod global;
pub mod intermittent;
pub mod linear;
pub mod theta;

use crate::forecast::{ForecastError, Forecaster};

/// The model specs [`parse`] accepts, with what each is.
pub const AVAILABLE: &[(&str, &str)] = &[
    ("naive", "last value"),
    ("snaive<m>", "value one season of m steps earlier (snaive24, snaive168)"),
    ("ma<k>", "mean of the last k values (ma24)"),
    ("ses", "simple exponential smoothing, optimised alpha"),
    ("autoets", "non-seasonal ETS chosen by AICc (augurs)"),
    ("mstl", "MSTL with periods 24 and 168 and an AutoETS trend (augurs); mstl(24) for one period"),
    ("theta", "standard theta model; theta<m> with seasonal adjustment (theta24)"),
    ("croston", "Croston's method, classic (alpha 0.1)"),
    ("tsb", "Teunter-Syntetos-Babai (alphas 0.1, 0.1); tsb(a_size,a_prob)"),
    ("adida", "aggregate-disaggregate intermittent demand approach"),
    ("arima(p,d,q)", "ARIMA fitted by conditional sum of squares (arima(1,0,1))"),
    ("autoarima", "ARIMA with d by KPSS and p, q in 0..=3 by AICc"),
    ("linear", "ridge regression on lags 1,2,3,24,168 and daily/weekly Fourier terms; linear(p,...) for other periods"),
    (
        "global-linear",
        "one ridge regression across all series: standardised lags 1,2,3,24,48,168,336 and time-of-day/week terms; global-linear(p,...) for other periods",
    ),
];

/// The default set for a study on hourly series.
pub const DEFAULT_SET: &[&str] = &[
    "naive",
    "snaive24",
    "snaive168",
    "ma24",
    "ses",
    "autoets",
    "mstl",
    "theta24",
    "croston",
    "tsb",
    "adida",
    "linear",
    "global-linear",
];

fn unknown(name: &str) -> ForecastError {
    ForecastError::UnknownModel {
        name: name.to_string(),
        available: AVAILABLE.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
    }
}

fn positive(text: &str, name: &str) -> Result<usize, ForecastError> {
    match text.parse::<usize>() {
        Ok(v) if (1..=100_000).contains(&v) => Ok(v),
        _ => Err(unknown(name)),
    }
}

/// A lag model's spec name: `base` for the hourly default periods (24,
/// 168), `base(p,…)` otherwise.
pub(crate) fn with_periods(base: &str, periods: &[usize]) -> String {
    if periods == [24, 168] {
        base.to_string()
    } else {
        let list: Vec<String> = periods.iter().map(usize::to_string).collect();
        format!("{base}({})", list.join(","))
    }
}

/// `24,168` → sorted, distinct periods.
fn period_list(list: &str, spec: &str) -> Result<Vec<usize>, ForecastError> {
    let mut periods = list.split(',').map(|p| positive(p.trim(), spec)).collect::<Result<Vec<_>, _>>()?;
    periods.sort_unstable();
    periods.dedup();
    Ok(periods)
}

fn alpha(text: &str, name: &str) -> Result<f64, ForecastError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(unknown(name)),
    }
}

/// The model a spec names (case-insensitive).
pub fn parse(spec: &str) -> Result<Box<dyn Forecaster>, ForecastError> {
    let name = spec.trim().to_ascii_lowercase();
    let model: Box<dyn Forecaster> = match name.as_str() {
        "naive" => Box::new(baseline::Naive),
        "ses" => Box::new(intermittent::Ses),
        "autoets" | "ets" => Box::new(ets::Ets),
        "mstl" => Box::new(ets::Mstl { periods: vec![24, 168] }),
        "theta" => Box::new(theta::Theta { period: 1 }),
        "croston" => Box::new(intermittent::Croston),
        "tsb" => Box::new(intermittent::Tsb { alpha_size: 0.1, alpha_probability: 0.1 }),
        "adida" => Box::new(intermittent::Adida),
        "linear" => Box::new(linear::LinearLags { periods: vec![24, 168] }),
        "autoarima" | "arima" => Box::new(arima::AutoArima),
        "global-linear" => Box::new(global::GlobalLinear { periods: vec![24, 168] }),
        _ => {
            if let Some(m) = name.strip_prefix("snaive") {
                Box::new(baseline::SeasonalNaive { period: positive(m, spec)? })
            } else if let Some(k) = name.strip_prefix("ma") {
                Box::new(baseline::WindowAverage { window: positive(k, spec)? })
            } else if let Some(m) = name.strip_prefix("theta") {
                Box::new(theta::Theta { period: positive(m, spec)? })
            } else if let Some(list) = name.strip_prefix("mstl(").and_then(|s| s.strip_suffix(')')) {
                let mut periods = list.split(',').map(|p| positive(p.trim(), spec)).collect::<Result<Vec<_>, _>>()?;
                periods.sort_unstable();
                periods.dedup();
                if periods.iter().any(|&p| p < 2) {
                    return Err(unknown(spec));
                }
                Box::new(ets::Mstl { periods })
            } else if let Some(list) = name.strip_prefix("global-linear(").and_then(|s| s.strip_suffix(')')) {
                Box::new(global::GlobalLinear { periods: period_list(list, spec)? })
            } else if let Some(list) = name.strip_prefix("linear(").and_then(|s| s.strip_suffix(')')) {
                Box::new(linear::LinearLags { periods: period_list(list, spec)? })
            } else if let Some(list) = name.strip_prefix("arima(").and_then(|s| s.strip_suffix(')')) {
                let orders = list.split(',').map(|v| v.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>();
                match orders.as_deref() {
                    Ok([p, d, q]) if *p <= 10 && *d <= 2 && *q <= 10 => Box::new(arima::Arima { p: *p, d: *d, q: *q }),
                    _ => return Err(unknown(spec)),
                }
            } else if let Some(list) = name.strip_prefix("tsb(").and_then(|s| s.strip_suffix(')')) {
                let (a, b) = list.split_once(',').ok_or_else(|| unknown(spec))?;
                Box::new(intermittent::Tsb { alpha_size: alpha(a, spec)?, alpha_probability: alpha(b, spec)? })
            } else {
                return Err(unknown(spec));
            }
        }
    };
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_names_round_trip() {
        for spec in DEFAULT_SET {
            let model = parse(spec).expect("accepted");
            let again = parse(&model.name()).expect("accepted");
            assert_eq!(model.name(), again.name());
        }
        for bad in [
            "",
            "snaive",
            "snaive0",
            "ma-1",
            "mstl()",
            "mstl(1)",
            "tsb(0,1)",
            "prophet",
            "theta99999999999",
            "arima(1,3,1)",
            "arima(1,1)",
        ] {
            let Err(e) = parse(bad) else { panic!("{bad} accepted") };
            let e = e.to_string();
            assert!(e.contains("available: naive"), "{bad}: {e}");
        }
    }
}
