//! Result files of a scenario run.
//!
//! Layout of the output directory:
//! - `summary.json`: scenario, policies, per-policy metric summaries (mean,
//!   95% CI, per-seed values), claims with verdicts, notes.
//! - `runs.csv`: one row per (policy, seed) with every metric.
//! - `<table>_<policy>_seed<seed>.csv`: per-entity rows (e.g. one per job).
//! - `runs.parquet` and `<table>_<policy>_seed<seed>.parquet`: the same
//!   tables as Parquet with typed columns (with the `parquet` feature, on
//!   by default in the CLI).
//! - `<series>.svg`: one plot per series (first seed), one line per policy.
//! - `report.md`: the comparison and claims tables in Markdown, and notes.
//! - `report.html`: a self-contained page of the same, with the plots
//!   inline and the manifest.
//! - `manifest.json`: what produced the results (commit, scenario hash, seeds,
//!   versions), so that seed + commit replays them.
//! - `timings.json`: wall-clock measurements (not reproducible by nature).
//!
//! NaN values are written as empty CSV cells and JSON `null`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use nimbus_lab::LabResult;
use nimbus_lab::claims::Verdict;
use nimbus_sim::output::Cell;
use serde_json::{Map, Value, json};

use crate::svg::{Line, line_chart};
use crate::terminal::{claims_table, comparison_table};

/// Why result files could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot write: {source}", path.display())]
pub struct WriteError {
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

/// What produced a set of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub scenario_path: String,
    /// Domain.
    pub domain: String,
    /// Description.
    pub description: String,
    /// Hash of the scenario text and overrides.
    pub scenario_hash: u64,
    /// Seeds run.
    pub seeds: Vec<u64>,
    /// `(label, registry name)` of each policy.
    pub policies: Vec<(String, String)>,
    /// Metrics the scenario shows first.
    pub metrics: Vec<String>,
    /// Project commit (or `unknown`).
    pub commit: String,
    /// Nimbus version.
    pub version: String,
}

/// A JSON number, or `null` when not finite.
pub(crate) fn number(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// `label` with anything but letters, digits, `-` and `_` replaced by `-`.
pub(crate) fn file_name_part(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

/// Writes `contents` to `path`.
pub(crate) fn write(path: &Path, contents: &str) -> Result<PathBuf, WriteError> {
    std::fs::write(path, contents).map_err(|source| WriteError { path: path.to_path_buf(), source })?;
    Ok(path.to_path_buf())
}

/// A float as a CSV cell (empty when not finite).
pub(crate) fn float_cell(v: f64) -> String {
    if v.is_finite() { v.to_string() } else { String::new() }
}

pub(crate) fn csv_cell(cell: &Cell) -> String {
    match cell {
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => float_cell(*f),
        Cell::Empty => String::new(),
        Cell::Str(s) => s.clone(),
        Cell::Bool(b) => b.to_string(),
    }
}

/// Writes a CSV file with a header row.
pub(crate) fn write_csv(
    path: &Path,
    header: &[String],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<PathBuf, WriteError> {
    let io_err = |e: csv::Error| WriteError { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) };
    let mut writer = csv::Writer::from_path(path).map_err(io_err)?;
    writer.write_record(header).map_err(io_err)?;
    for row in rows {
        writer.write_record(&row).map_err(io_err)?;
    }
    writer.flush().map_err(|source| WriteError { path: path.to_path_buf(), source })?;
    Ok(path.to_path_buf())
}

/// Writes every result file into `dir` (created if needed) and returns the
/// paths written.
pub fn write_results(dir: &Path, manifest: &Manifest, result: &LabResult) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError { path: dir.to_path_buf(), source })?;
    let mut written = Vec::new();
    let labels: Vec<String> = manifest.policies.iter().map(|(l, _)| l.clone()).collect();
    let metric_names = result.metric_names();

    // summary.json
    let mut metrics = Map::new();
    for label in &labels {
        let mut per_metric = Map::new();
        for m in &metric_names {
            let values = result.values(label, m);
            let s = result.summary(label, m);
            per_metric.insert(
                m.clone(),
                json!({
                    "mean": number(s.mean),
                    "ci95": number(s.ci95),
                    "n": s.n,
                    "per_seed": values.iter().map(|v| number(*v)).collect::<Vec<_>>(),
                }),
            );
        }
        metrics.insert(label.clone(), Value::Object(per_metric));
    }
    let claims: Vec<Value> = result
        .claims
        .iter()
        .map(|c| {
            json!({
                "source": c.claim.source,
                "metric": c.claim.metric,
                "subject": c.claim.subject,
                "baseline": c.claim.baseline,
                "paper_value": c.claim.paper_value,
                "paper_ratio": c.claim.paper_ratio,
                "ours_mean": number(c.ours.mean),
                "ours_ci95": number(c.ours.ci95),
                "ours_baseline_mean": c.ours_baseline.map(|b| number(b.mean)),
                "ours_ratio": c.ours_ratio.map(number),
                "paired_ratio_mean": c.paired.map(|p| number(p.mean)),
                "paired_ratio_ci95": c.paired.map(|p| number(p.ci95)),
                "verdict": c.verdict.label(),
                "reason": match &c.verdict { Verdict::NotComparable(why) => Some(why.clone()), _ => None },
            })
        })
        .collect();
    let notes: Vec<Value> = result
        .runs
        .iter()
        .filter(|r| !r.output.notes.is_empty())
        .map(|r| json!({"policy": r.policy, "seed": r.seed, "notes": r.output.notes}))
        .collect();
    let summary = json!({
        "scenario": manifest.scenario,
        "domain": manifest.domain,
        "description": manifest.description,
        "seeds": manifest.seeds,
        "policies": manifest.policies.iter().map(|(l, n)| json!({"label": l, "policy": n})).collect::<Vec<_>>(),
        "metrics": metrics,
        "claims": claims,
        "notes": notes,
        "fallbacks": result.fallbacks,
    });
    written.push(write(&dir.join("summary.json"), &pretty(&summary))?);

    // runs.csv
    let mut header = vec!["policy".to_string(), "seed".to_string()];
    header.extend(metric_names.iter().cloned());
    let rows = result.runs.iter().map(|r| {
        let mut row = vec![r.policy.clone(), r.seed.to_string()];
        row.extend(
            metric_names
                .iter()
                .map(|m| r.output.metric(m).filter(|v| v.is_finite()).map_or(String::new(), |v| v.to_string())),
        );
        row
    });
    written.push(write_csv(&dir.join("runs.csv"), &header, rows)?);
    #[cfg(feature = "parquet")]
    {
        let rows: Vec<Vec<Cell>> = result
            .runs
            .iter()
            .map(|r| {
                let mut row = vec![Cell::Str(r.policy.clone()), Cell::Int(r.seed as i64)];
                row.extend(metric_names.iter().map(|m| r.output.metric(m).map_or(Cell::Empty, Cell::Float)));
                row
            })
            .collect();
        written.push(crate::columnar::write_parquet(&dir.join("runs.parquet"), &header, &rows)?);
    }

    // Per-entity tables.
    let mut entity_files = Vec::new();
    for run in &result.runs {
        for table in &run.output.tables {
            let stem = format!("{}_{}_seed{}", file_name_part(&table.name), file_name_part(&run.policy), run.seed);
            let rows = table.rows.iter().map(|row| row.iter().map(csv_cell).collect());
            written.push(write_csv(&dir.join(format!("{stem}.csv")), &table.columns, rows)?);
            entity_files.push(format!("{stem}.csv"));
            #[cfg(feature = "parquet")]
            {
                let path = dir.join(format!("{stem}.parquet"));
                written.push(crate::columnar::write_parquet(&path, &table.columns, &table.rows)?);
                entity_files.push(format!("{stem}.parquet"));
            }
        }
    }

    // Plots: each series of the first seed, one line per policy.
    let first_seed = manifest.seeds.first().copied().unwrap_or(0);
    let mut series_names: Vec<String> = Vec::new();
    for run in &result.runs {
        for s in &run.output.series {
            if !series_names.contains(&s.name) {
                series_names.push(s.name.clone());
            }
        }
    }
    let mut plots = Vec::new();
    for name in &series_names {
        let mut lines = Vec::new();
        let mut labels_xy = (String::new(), String::new());
        for run in result.runs.iter().filter(|r| r.seed == first_seed) {
            if let Some(s) = run.output.series.iter().find(|s| &s.name == name) {
                labels_xy = (s.x_label.clone(), s.y_label.clone());
                lines.push(Line { label: run.policy.clone(), points: s.points.clone() });
            }
        }
        let title = format!("{} — {} (seed {first_seed})", manifest.scenario, name.replace('_', " "));
        let file = format!("{}.svg", file_name_part(name));
        let svg = line_chart(&title, &labels_xy.0, &labels_xy.1, &lines);
        written.push(write(&dir.join(&file), &svg)?);
        plots.push((file, svg));
    }

    // report.md
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", manifest.scenario);
    if !manifest.description.is_empty() {
        let _ = writeln!(md, "{}\n", manifest.description);
    }
    let _ = writeln!(
        md,
        "Domain `{}`; seeds {:?}; scenario `{}`.\n",
        manifest.domain, manifest.seeds, manifest.scenario_path
    );
    let _ = writeln!(
        md,
        "## Comparison (mean ± 95% CI across seeds)\n\n```text\n{}```\n",
        comparison_table(result, &labels, &manifest.metrics, None)
    );
    let claims_text = claims_table(result, None);
    if !claims_text.is_empty() {
        let _ = writeln!(md, "## Claims\n\n```text\n{claims_text}```\n");
    }
    if !result.fallbacks.is_empty() || !notes.is_empty() {
        let _ = writeln!(md, "## Notes\n");
        for f in &result.fallbacks {
            let _ = writeln!(md, "- data: {f}");
        }
        for run in result.runs.iter().filter(|r| !r.output.notes.is_empty()) {
            for n in &run.output.notes {
                let _ = writeln!(md, "- {} seed {}: {n}", run.policy, run.seed);
            }
        }
        md.push('\n');
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "## Plots\n");
        for (p, _) in &plots {
            let _ = writeln!(md, "![{p}]({p})");
        }
    }
    written.push(write(&dir.join("report.md"), &md)?);
    written.push(write(&dir.join("report.html"), &crate::html::report_html(manifest, result, &plots, &entity_files))?);

    // manifest.json
    let manifest_json = json!({
        "scenario": manifest.scenario,
        "scenario_path": manifest.scenario_path,
        "scenario_hash": format!("{:016x}", manifest.scenario_hash),
        "domain": manifest.domain,
        "seeds": manifest.seeds,
        "policies": manifest.policies.iter().map(|(l, n)| json!({"label": l, "policy": n})).collect::<Vec<_>>(),
        "commit": manifest.commit,
        "nimbus_version": manifest.version,
        "replay": format!("nimbus run {} --seeds {}", manifest.scenario_path, manifest.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
    });
    written.push(write(&dir.join("manifest.json"), &pretty(&manifest_json))?);

    // timings.json
    let timings: Vec<Value> = result
        .runs
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("policy".into(), json!(r.policy));
            m.insert("seed".into(), json!(r.seed));
            for t in &r.output.timings {
                m.insert(t.name.clone(), number(t.value));
            }
            Value::Object(m)
        })
        .collect();
    written.push(write(&dir.join("timings.json"), &pretty(&Value::Array(timings)))?);
    Ok(written)
}

/// Pretty JSON with a final newline.
pub(crate) fn pretty(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// One point of a sweep, for [`write_sweep_summary`].
pub struct SweepPoint<'a> {
    /// `(key, value as TOML)` settings.
    pub settings: &'a [(String, String)],
    /// Its directory's name under the sweep's (`point-<k>`).
    pub dir: String,
    /// `(policy, metric, summary across seeds)`.
    pub summaries: &'a [(String, String, nimbus_lab::stats::Summary)],
}

/// `sweep.csv` (and `sweep.parquet` with the `parquet` feature): one row
/// per (point, policy, metric) with the point's settings, mean, 95% CI and
/// seeds; returns the paths written.
pub fn write_sweep_summary(dir: &Path, keys: &[String], points: &[SweepPoint<'_>]) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError { path: dir.to_path_buf(), source })?;
    let mut header = vec!["point".to_string()];
    header.extend(keys.iter().cloned());
    header.extend(["policy", "metric", "mean", "ci95", "n", "results"].iter().map(|s| s.to_string()));
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    for (k, p) in points.iter().enumerate() {
        for (label, metric, s) in p.summaries {
            let mut row = vec![Cell::Int(k as i64)];
            row.extend(p.settings.iter().map(|(_, v)| Cell::Str(v.trim_matches('"').to_string())));
            row.extend([
                Cell::Str(label.clone()),
                Cell::Str(metric.clone()),
                Cell::Float(s.mean),
                Cell::Float(s.ci95),
                Cell::Int(s.n as i64),
                Cell::Str(p.dir.clone()),
            ]);
            rows.push(row);
        }
    }
    let csv = write_csv(&dir.join("sweep.csv"), &header, rows.iter().map(|r| r.iter().map(csv_cell).collect()))?;
    #[cfg(feature = "parquet")]
    let written = vec![csv, crate::columnar::write_parquet(&dir.join("sweep.parquet"), &header, &rows)?];
    #[cfg(not(feature = "parquet"))]
    let written = vec![csv];
    Ok(written)
}
