//! Rendering a forecast study: the leaderboard, per-family and check
//! tables, and result files.
//!
//! Files written into the output directory:
//! - `cells.csv`: one row per (series, model, origin) with every metric, or
//!   the model's error.
//! - `leaderboard.csv`: one row per (scope, model, metric): mean, 95% CI
//!   half-width across origins, values, failures; scope `all` or a family.
//! - `forecasts.csv`: the forecast at the last origin, per series, model
//!   and step: actual, point, quantiles 0.1…0.9.
//! - `cells.parquet`, `leaderboard.parquet`, `forecasts.parquet`: the
//!   same tables as Parquet, columns typed from their text (with the
//!   `parquet` feature).
//! - `summary.json`: settings, series (with notes), leaderboard, checks.
//! - `plots/<family>-<series>.svg`: history, actuals and each model's last
//!   forecast, with the best model's 80% interval (at most 24 series).
//! - `report.md`: the tables in Markdown.
//! - `timings.json`: fit and predict wall time per (series, model), the
//!   only file that differs run to run.

use std::path::{Path, PathBuf};

use nimbus_forecast::QUANTILES;
use nimbus_forecast::metrics::NAMES;
use nimbus_lab::forecast_study::{Study, StudyResult, time_of};
use serde_json::{Value, json};

use crate::files::{WriteError, file_name_part, float_cell, number as json_number, pretty, write, write_csv};
use crate::format::{mean_ci, number};
use crate::svg::{Line, line_chart};
use crate::terminal::render_fitted;

/// Metrics shown in the terminal leaderboard, with their headers.
/// (MAE is left out: averaged across series of different scales it means
/// little; it is in the files and the checks.)
const SHOWN: [(usize, &str); 7] =
    [(1, "MASE"), (2, "sMAPE %"), (3, "WQL"), (4, "cover 80%"), (5, "under-prov"), (6, "unmet"), (7, "idle")];

fn all_series(result: &StudyResult) -> Vec<usize> {
    (0..result.series.len()).collect()
}

fn families(result: &StudyResult) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, s) in result.series.iter().enumerate() {
        match out.iter_mut().find(|(f, _)| *f == s.family) {
            Some((_, v)) => v.push(i),
            None => out.push((s.family.clone(), vec![i])),
        }
    }
    out
}

/// Model indices ordered by mean MASE over `series` (undefined last, then
/// by name for ties).
fn ranked(result: &StudyResult, series: &[usize]) -> Vec<usize> {
    let e = &result.evaluation;
    let mut order: Vec<(f64, usize)> =
        (0..e.models.len()).map(|m| (e.aggregate(m, series, 1).summary.mean, m)).collect();
    order.sort_by(|a, b| {
        let key = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
        key(a.0).total_cmp(&key(b.0)).then(e.models[a.1].cmp(&e.models[b.1]))
    });
    order.into_iter().map(|(_, m)| m).collect()
}

fn mean_fit_ms(result: &StudyResult, model: usize) -> f64 {
    let e = &result.evaluation;
    let n = result.series.len();
    let total: f64 = (0..n).map(|s| e.costs[s * e.models.len() + model]).map(|c| c.fit_s + c.predict_s).sum();
    total / (n * e.settings.origins) as f64 * 1e3
}

/// Models ranked by MASE over every series, mean ± 95% CI across origins;
/// with `cost`, the mean fit + predict wall time per origin (which differs
/// run to run, so files leave it out).
pub fn leaderboard(result: &StudyResult, cost: bool, width: Option<usize>) -> String {
    let e = &result.evaluation;
    let series = all_series(result);
    let mut header = vec!["#".to_string(), "model".to_string()];
    header.extend(SHOWN.iter().map(|(_, h)| h.to_string()));
    if cost {
        header.push("ms/fit".into());
    }
    header.push("failed".into());
    let rows: Vec<Vec<String>> = ranked(result, &series)
        .into_iter()
        .enumerate()
        .map(|(rank, m)| {
            let mut row = vec![(rank + 1).to_string(), e.models[m].clone()];
            let mut failed = 0;
            for (metric, _) in SHOWN {
                let a = e.aggregate(m, &series, metric);
                failed = a.failed;
                row.push(mean_ci(a.summary.mean, a.summary.ci95));
            }
            if cost {
                row.push(number(mean_fit_ms(result, m)));
            }
            row.push(failed.to_string());
            row
        })
        .collect();
    render_fitted(&header, &rows, width)
}

/// MASE per family (columns) for every model (rows, in leaderboard order).
pub fn family_table(result: &StudyResult, width: Option<usize>) -> String {
    let e = &result.evaluation;
    let fams = families(result);
    let mut header = vec!["model".to_string()];
    header.extend(fams.iter().map(|(f, v)| format!("{f} ({})", v.len())));
    let rows: Vec<Vec<String>> = ranked(result, &all_series(result))
        .into_iter()
        .map(|m| {
            let mut row = vec![e.models[m].clone()];
            for (_, members) in &fams {
                let a = e.aggregate(m, members, 1).summary;
                row.push(mean_ci(a.mean, a.ci95));
            }
            row
        })
        .collect();
    render_fitted(&header, &rows, width)
}

/// The checks with their verdicts.
pub fn checks_table(result: &StudyResult, width: Option<usize>) -> String {
    if result.checks.is_empty() {
        return String::new();
    }
    let header: Vec<String> =
        ["check", "metric", "model", "baseline", "ratio", "verdict"].iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = result
        .checks
        .iter()
        .map(|v| {
            let c = &v.check;
            let expected = match c.within {
                None => "lower".to_string(),
                Some(t) => format!("within {}%", number(t * 100.0)),
            };
            vec![
                c.name.clone(),
                format!("{} ({expected})", NAMES[c.metric]),
                format!("{} {}", c.model, number(v.model_mean)),
                format!("{} {}", c.baseline, number(v.baseline_mean)),
                number(v.model_mean / v.baseline_mean),
                match v.holds {
                    Some(true) => "holds".into(),
                    Some(false) => "does not hold".into(),
                    None => "not comparable".into(),
                },
            ]
        })
        .collect();
    render_fitted(&header, &rows, width)
}

/// [`write_csv`] with `&str` headers and owned rows, and its Parquet copy
/// (columns typed from their text) beside it with the `parquet` feature.
fn csv_rows(
    written: &mut Vec<PathBuf>,
    path: &Path,
    header: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<(), WriteError> {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    #[cfg(feature = "parquet")]
    {
        let cells: Vec<Vec<nimbus_sim::output::Cell>> =
            rows.iter().map(|r| r.iter().map(|c| crate::columnar::cell_of_text(c)).collect()).collect();
        written.push(crate::columnar::write_parquet(&path.with_extension("parquet"), &header, &cells)?);
    }
    written.push(write_csv(path, &header, rows.into_iter())?);
    Ok(())
}

/// Writes every result file into `dir` and returns the paths written.
pub fn write_study_results(
    dir: &Path,
    study: &Study,
    result: &StudyResult,
    commit: &str,
) -> Result<Vec<PathBuf>, WriteError> {
    let mkdir = |d: &Path| std::fs::create_dir_all(d).map_err(|source| WriteError { path: d.to_path_buf(), source });
    mkdir(dir)?;
    let e = &result.evaluation;
    let mut written = Vec::new();

    let mut header: Vec<&str> = vec!["family", "series", "model", "origin", "origin_time", "position"];
    header.extend(NAMES);
    header.push("error");
    let mut rows = Vec::new();
    for c in &e.cells {
        let s = &result.series[c.series];
        let mut row = vec![
            s.family.clone(),
            s.name.clone(),
            e.models[c.model].clone(),
            c.origin.to_string(),
            time_of(s, c.position),
            c.position.to_string(),
        ];
        match &c.outcome {
            Ok(scores) => {
                row.extend(scores.values().iter().map(|v| float_cell(*v)));
                row.push(String::new());
            }
            Err(err) => {
                row.extend(NAMES.iter().map(|_| String::new()));
                row.push(err.to_string());
            }
        }
        rows.push(row);
    }
    csv_rows(&mut written, &dir.join("cells.csv"), &header, rows)?;

    let mut scopes = vec![("all".to_string(), all_series(result))];
    scopes.extend(families(result));
    let mut board_rows = Vec::new();
    let mut board_json = Vec::new();
    for (scope, members) in &scopes {
        for m in 0..e.models.len() {
            for (metric, name) in NAMES.iter().enumerate() {
                let a = e.aggregate(m, members, metric);
                board_rows.push(vec![
                    scope.clone(),
                    e.models[m].clone(),
                    name.to_string(),
                    float_cell(a.summary.mean),
                    float_cell(a.summary.ci95),
                    a.summary.n.to_string(),
                    a.failed.to_string(),
                ]);
                board_json.push(json!({
                    "scope": scope, "model": e.models[m], "metric": name,
                    "mean": json_number(a.summary.mean), "ci95": json_number(a.summary.ci95),
                    "n": a.summary.n, "failed": a.failed,
                }));
            }
        }
    }
    csv_rows(
        &mut written,
        &dir.join("leaderboard.csv"),
        &["scope", "model", "metric", "mean", "ci95", "n", "failed"],
        board_rows,
    )?;

    let mut header: Vec<String> =
        ["family", "series", "model", "step", "time", "actual", "point"].iter().map(|s| s.to_string()).collect();
    header.extend(QUANTILES.iter().map(|q| format!("q{:02}", (q * 100.0).round())));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut rows = Vec::new();
    for (si, s) in result.series.iter().enumerate() {
        let position = s.values.len() - e.settings.horizon;
        for (m, model) in e.models.iter().enumerate() {
            let Some(f) = &e.last[si * e.models.len() + m] else { continue };
            for h in 0..f.len() {
                let mut row = vec![
                    s.family.clone(),
                    s.name.clone(),
                    model.clone(),
                    (h + 1).to_string(),
                    time_of(s, position + h),
                    float_cell(s.values[position + h]),
                    float_cell(f.point[h]),
                ];
                row.extend(f.quantiles.iter().map(|q| float_cell(q[h])));
                rows.push(row);
            }
        }
    }
    csv_rows(&mut written, &dir.join("forecasts.csv"), &header_refs, rows)?;

    let plots = dir.join("plots");
    mkdir(&plots)?;
    for (si, s) in result.series.iter().enumerate().take(24) {
        let horizon = e.settings.horizon;
        let position = s.values.len() - horizon;
        let start = position.saturating_sub(3 * horizon);
        let x = |i: usize| i as f64 - position as f64;
        let mut lines = vec![Line {
            label: "actual".into(),
            points: (start..s.values.len()).map(|i| (x(i), s.values[i])).collect(),
        }];
        let best = ranked(result, &[si]).first().copied();
        for (m, model) in e.models.iter().enumerate() {
            if let Some(f) = &e.last[si * e.models.len() + m] {
                lines.push(Line {
                    label: model.clone(),
                    points: (0..f.len()).map(|h| (h as f64, f.point[h])).collect(),
                });
            }
        }
        if let Some(b) = best
            && let Some(f) = &e.last[si * e.models.len() + b]
        {
            for (i, label) in [(0usize, "q0.1"), (8, "q0.9")] {
                lines.push(Line {
                    label: format!("{} {label}", e.models[b]),
                    points: (0..f.len()).map(|h| (h as f64, f.quantiles[i][h])).collect(),
                });
            }
        }
        let title = format!("{}/{} — last origin ({})", s.family, s.name, time_of(s, position));
        let svg = line_chart(&title, "steps from origin", &s.name, &lines);
        written
            .push(write(&plots.join(format!("{}-{}.svg", file_name_part(&s.family), file_name_part(&s.name))), &svg)?);
    }

    let series_json: Vec<Value> = result
        .series
        .iter()
        .map(|s| {
            json!({"family": s.family, "name": s.name, "step_s": s.step_s, "values": s.values.len(),
                   "start": time_of(s, 0), "notes": s.notes})
        })
        .collect();
    let checks_json: Vec<Value> = result
        .checks
        .iter()
        .map(|v| {
            json!({"name": v.check.name, "metric": NAMES[v.check.metric], "model": v.check.model,
                   "baseline": v.check.baseline, "series": v.check.series,
                   "tolerance": v.check.within, "model_mean": json_number(v.model_mean),
                   "baseline_mean": json_number(v.baseline_mean), "holds": v.holds})
        })
        .collect();
    let st = &e.settings;
    let summary = json!({
        "study": study.name, "file": study.path.display().to_string(), "description": study.description,
        "commit": commit, "version": env!("CARGO_PKG_VERSION"),
        "settings": {"origins": st.origins, "horizon": st.horizon, "window": st.window, "stride": st.stride,
                     "season": st.season, "capacity_quantile": st.capacity_quantile},
        "models": e.models, "series": series_json, "leaderboard": board_json, "checks": checks_json,
    });
    written.push(write(&dir.join("summary.json"), &pretty(&summary))?);

    let mut timings = Vec::new();
    for (si, s) in result.series.iter().enumerate() {
        for (m, model) in e.models.iter().enumerate() {
            let c = e.costs[si * e.models.len() + m];
            timings.push(json!({"family": s.family, "series": s.name, "model": model, "fit_s": c.fit_s, "predict_s": c.predict_s}));
        }
    }
    written.push(write(&dir.join("timings.json"), &pretty(&Value::Array(timings)))?);

    let mut md = format!("# {}\n\n{}\n\n", study.name, study.description);
    md.push_str(&format!(
        "{} series, {} origins each ({}-step horizon, {}-value window); mean ± 95% CI across origins.\n\n",
        result.series.len(),
        st.origins,
        st.horizon,
        st.window
    ));
    md.push_str("## Leaderboard\n\n```\n");
    md.push_str(&leaderboard(result, false, None));
    md.push_str("```\n\n## MASE by family\n\n```\n");
    md.push_str(&family_table(result, None));
    md.push_str("```\n");
    let checks = checks_table(result, None);
    if !checks.is_empty() {
        md.push_str("\n## Checks\n\n```\n");
        md.push_str(&checks);
        md.push_str("```\n");
    }
    written.push(write(&dir.join("report.md"), &md)?);
    Ok(written)
}
