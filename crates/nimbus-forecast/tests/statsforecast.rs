//! Point forecasts against Nixtla's statsforecast 2.1.1 on fixed series
//! (`tests/reference/statsforecast.json`, produced by the script beside it).
//!
//! Tolerances, as a fraction of the series' mean absolute value, on the
//! largest difference over the 24-step horizon:
//! - closed-form models (naive, seasonal naive, window average, Croston,
//!   TSB): 1e-9, i.e. equal up to rounding;
//! - models with fitted parameters (SES, ADIDA, Theta, AutoETS): 1e-4, since
//!   optimisers stop at different points of flat objectives (measured: at
//!   most 6.7e-5, Theta on the level-shift series; SES and ADIDA ≤ 1.2e-6;
//!   AutoETS from augurs ≤ 3e-14). The differences are printed by
//!   `cargo test -- --nocapture`.

use nimbus_forecast::models;
use serde_json::Value;

const EXACT: f64 = 1e-9;
const FITTED: f64 = 1e-4;

#[test]
fn point_forecasts_agree_with_statsforecast() {
    let text = include_str!("reference/statsforecast.json");
    let reference: Value = serde_json::from_str(text).expect("fixture is JSON");
    let horizon = usize::try_from(reference["horizon"].as_u64().expect("horizon")).expect("small");
    let mut failures = Vec::new();
    for series in reference["series"].as_array().expect("series") {
        let name = series["name"].as_str().expect("name");
        let values: Vec<f64> =
            series["values"].as_array().expect("values").iter().map(|v| v.as_f64().expect("number")).collect();
        let scale = values.iter().map(|v| v.abs()).sum::<f64>() / values.len() as f64;
        for (model, expected) in series["forecasts"].as_object().expect("forecasts") {
            let Some(expected) = expected.as_array() else {
                println!("{name:12} {model:9} statsforecast failed: {expected}");
                continue;
            };
            let expected: Vec<f64> = expected.iter().map(|v| v.as_f64().expect("number")).collect();
            let ours = models::parse(model).expect("model").forecast(&values, horizon).expect("forecast");
            let worst = ours.point.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
            let tolerance =
                if ["naive", "snaive24", "ma24", "croston", "tsb"].contains(&model.as_str()) { EXACT } else { FITTED };
            println!("{name:12} {model:9} max |diff| / scale = {worst:.2e} (tolerance {tolerance:.0e})");
            if worst > tolerance || !worst.is_finite() {
                failures.push(format!(
                    "{name}/{model}: {worst:.3e} > {tolerance:.0e}; ours {:?} vs {:?}",
                    &ours.point[..3],
                    &expected[..3]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
