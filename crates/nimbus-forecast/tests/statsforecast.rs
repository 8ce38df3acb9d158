//! Forecasts against Nixtla's statsforecast 2.1.1 on fixed series
//! (`tests/reference/statsforecast.json`, produced by the script beside it).
//!
//! Tolerances, as a fraction of the series' mean absolute value, on the
//! largest difference over the 24-step horizon:
//! - closed-form models (naive, seasonal naive, window average, Croston,
//!   TSB): 1e-9, i.e. equal up to rounding;
//! - models with fitted parameters (SES, ADIDA, Theta, AutoETS): 1e-4, since
//!   optimisers stop at different points of flat objectives (measured: at
//!   most 6.7e-5, Theta on the level-shift series; SES and ADIDA ≤ 1.2e-6;
//!   AutoETS from augurs ≤ 3e-14);
//! - ARIMA of fixed order: not asserted on forecasts. Ours is fitted by
//!   conditional sum of squares (CSS), the reference forecasts by CSS-ML
//!   (statsforecast's `method="CSS"` returns the intercept as every forecast
//!   in 2.1.1, so its CSS forecasts cannot serve). The estimators are
//!   compared instead by the objective they share
//!   ([`css_estimates_are_at_least_as_good`]); forecast differences are
//!   printed (pure MA models with d = 1 agree to 1e-6; near-unit-root and
//!   intermittent series differ by up to about half the scale).
//! - AutoARIMA: printed, not asserted: ours searches p, q ≤ 3 on a full grid
//!   with CSS fits, theirs stepwise with CSS-ML, and the orders chosen
//!   differ on most of these series.
//!
//! `cargo test -p nimbus-forecast --test statsforecast -- --nocapture`
//! prints every comparison.

use nimbus_forecast::models;
use nimbus_forecast::models::arima::{chosen_order, css_coefficients, css_objective};
use serde_json::Value;

const EXACT: f64 = 1e-9;
const FITTED: f64 = 1e-4;

fn reference() -> Value {
    serde_json::from_str(include_str!("reference/statsforecast.json")).expect("fixture is JSON")
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().expect("a list").iter().map(|x| x.as_f64().expect("a number")).collect()
}

#[test]
fn point_forecasts_agree_with_statsforecast() {
    let reference = reference();
    let horizon = usize::try_from(reference["horizon"].as_u64().expect("horizon")).expect("small");
    let mut failures = Vec::new();
    for series in reference["series"].as_array().expect("series") {
        let name = series["name"].as_str().expect("name");
        let values = numbers(&series["values"]);
        let scale = values.iter().map(|v| v.abs()).sum::<f64>() / values.len() as f64;
        for (model, expected) in series["forecasts"].as_object().expect("forecasts") {
            if model == "autoarima_order" {
                continue;
            }
            let Some(expected) = expected.as_array() else {
                println!("{name:12} {model:13} statsforecast failed: {expected}");
                continue;
            };
            let expected: Vec<f64> = expected.iter().map(|v| v.as_f64().expect("number")).collect();
            let ours = models::parse(model).expect("model").forecast(&values, horizon).expect("forecast");
            let worst = ours.point.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
            let tolerance = if ["naive", "snaive24", "ma24", "croston", "tsb"].contains(&model.as_str()) {
                Some(EXACT)
            } else if model.contains("arima") {
                None
            } else {
                Some(FITTED)
            };
            let extra = if model == "autoarima" {
                let theirs = numbers(&series["forecasts"]["autoarima_order"]);
                format!("; order ours {:?}, theirs {theirs:?}", chosen_order(&values).expect("an order"))
            } else {
                String::new()
            };
            match tolerance {
                Some(t) => println!("{name:12} {model:13} max |diff| / scale = {worst:.2e} (tolerance {t:.0e})"),
                None => println!("{name:12} {model:13} max |diff| / scale = {worst:.2e} (CSS vs CSS-ML){extra}"),
            }
            assert!(worst.is_finite(), "{name}/{model}: not finite");
            if let Some(t) = tolerance
                && worst > t
            {
                failures.push(format!(
                    "{name}/{model}: {worst:.3e} > {t:.0e}; ours {:?} vs {:?}",
                    &ours.point[..3],
                    &expected[..3]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Our conditional-sum-of-squares estimates reach an objective at least as
/// low as statsforecast's `method="CSS"` estimates of the same orders
/// (where theirs are stationary and invertible); on well-identified series
/// the coefficients are the same to four decimals (printed).
#[test]
fn css_estimates_are_at_least_as_good() {
    let reference = reference();
    let mut failures = Vec::new();
    for series in reference["series"].as_array().expect("series") {
        let name = series["name"].as_str().expect("name");
        let values = numbers(&series["values"]);
        for (key, coefficients) in series["css_coefficients"].as_object().expect("coefficients") {
            let orders: Vec<usize> = key
                .trim_start_matches("arima(")
                .trim_end_matches(')')
                .split(',')
                .map(|v| v.parse().expect("order"))
                .collect();
            let (p, d, q) = (orders[0], orders[1], orders[2]);
            let (phi, theta, mean) = css_coefficients(&values, p, d, q).expect("fits");
            let get = |k: String| coefficients[k.as_str()].as_f64().unwrap_or(0.0);
            let their_phi: Vec<f64> = (1..=p).map(|i| get(format!("ar{i}"))).collect();
            let their_theta: Vec<f64> = (1..=q).map(|i| get(format!("ma{i}"))).collect();
            let their_mean = if d == 0 { get("intercept".into()) } else { 0.0 };
            let ours_css = css_objective(&values, d, &phi, &theta, mean);
            let theirs_css = css_objective(&values, d, &their_phi, &their_theta, their_mean);
            println!(
                "{name:12} {key:13} CSS ours {ours_css:.6} theirs {theirs_css:.6}; φ {phi:.4?}/{their_phi:.4?} θ {theta:.4?}/{their_theta:.4?} μ {mean:.4}/{their_mean:.4}"
            );
            if ours_css > theirs_css * (1.0 + 1e-6) {
                failures.push(format!("{name}/{key}: our CSS {ours_css} above theirs {theirs_css}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
