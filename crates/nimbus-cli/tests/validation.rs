//! Validation against published numbers. These tests need `../shared/data`
//! (the public traces); without it they print a notice and pass vacuously.

use crate::{nimbus, shared_data, temp_dir, text};

fn summary_value(summary: &str, policy: &str, metric: &str) -> f64 {
    let json_start = summary.find(&format!("\"{policy}\": {{")).expect("policy in summary");
    let section = &summary[json_start..];
    let metric_start = section.find(&format!("\"{metric}\": {{")).expect("metric in summary");
    let section = &section[metric_start..];
    let mean_start = section.find("\"mean\": ").expect("mean") + "\"mean\": ".len();
    let end = section[mean_start..].find([',', '\n']).expect("end of number");
    section[mean_start..mean_start + end].trim().parse().expect("a number")
}

/// Gavel OSDI'20, continuous single-GPU experiment at 2.0 jobs/h on
/// 36 K80 + 36 P100 + 36 V100, average JCT of jobs 4000–5000:
/// LAS (heterogeneity-aware) 16.95 h, agnostic LAS 23.47 h. Tolerance 15%.
#[test]
fn gavel_continuous_matches_published_jct() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the Gavel validation test");
        return;
    }
    let out = temp_dir("gavel-validation");
    let result =
        nimbus(&["run", "scenarios/gpu/gavel-continuous.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{:?}", text(&result));
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    let las = summary_value(&summary, "gavel_las", "jct_h_mean");
    let agnostic = summary_value(&summary, "gavel_las_agnostic", "jct_h_mean");
    eprintln!("Gavel LAS: ours {las:.2} h vs paper 16.95 h; agnostic: ours {agnostic:.2} h vs paper 23.47 h");
    assert!((las - 16.95).abs() <= 0.15 * 16.95, "LAS {las} h not within 15% of 16.95 h");
    assert!((agnostic - 23.47).abs() <= 0.15 * 23.47, "agnostic LAS {agnostic} h not within 15% of 23.47 h");
    assert!(!summary.contains("\"verdict\": \"does not hold\""), "{summary}");
}
