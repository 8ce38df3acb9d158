//! Results as typed columns for Arrow.
//!
//! A table crosses into Python as `{"columns": [...], "kinds": [...],
//! "data": [...]}`. Integer and float columns travel as little-endian
//! value buffers with an Arrow validity bitmap (LSB first), which the
//! Python half wraps with `pyarrow.Array.from_buffers` without copying or
//! parsing; booleans and text travel as lists. Column types and nulls are
//! those of the Parquet result files (`nimbus_report::columns`), so a
//! DataFrame from `nimbus.run` equals the one read from the run's Parquet.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use nimbus_lab::LabResult;
use nimbus_report::columnar::cell_of_text;
use nimbus_report::columns::{ColumnKind, column_kind, text_of};
use nimbus_report::pipeline::Outcome;
use nimbus_sim::output::Cell;

/// A table being built: column names and rows of cells.
#[derive(Default)]
struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Rows {
    /// The index of column `name`, added (null in earlier rows) if new.
    fn column(&mut self, name: &str) -> usize {
        if let Some(i) = self.columns.iter().position(|c| c == name) {
            return i;
        }
        self.columns.push(name.to_string());
        for row in &mut self.rows {
            row.push(Cell::Empty);
        }
        self.columns.len() - 1
    }

    /// Appends a row given as `(column, cell)` pairs; absent columns are null.
    fn push_named(&mut self, cells: Vec<(&str, Cell)>) {
        let indices: Vec<usize> = cells.iter().map(|(name, _)| self.column(name)).collect();
        let mut row = vec![Cell::Empty; self.columns.len()];
        for (i, (_, cell)) in indices.into_iter().zip(cells) {
            row[i] = cell;
        }
        self.rows.push(row);
    }

    fn push(&mut self, row: Vec<Cell>) {
        let mut row = row;
        row.resize(self.columns.len(), Cell::Empty);
        self.rows.push(row);
    }
}

/// A TOML value's text (a sweep setting) as a cell: strings unquoted.
fn setting_cell(text: &str) -> Cell {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => Cell::Str(inner.to_string()),
        None => cell_of_text(text),
    }
}

fn float(v: f64) -> Cell {
    Cell::Float(v)
}

fn optional(v: Option<f64>) -> Cell {
    v.map_or(Cell::Empty, Cell::Float)
}

fn text(s: &str) -> Cell {
    Cell::Str(s.to_string())
}

/// Converts rows into the column dictionary.
fn to_python<'py>(py: Python<'py>, table: &Rows) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let kinds = PyList::empty(py);
    let data = PyList::empty(py);
    let n = table.rows.len();
    for c in 0..table.columns.len() {
        let cells = table.rows.iter().map(|r| r.get(c).unwrap_or(&Cell::Empty));
        let kind = column_kind(&table.rows, c);
        match kind {
            ColumnKind::Int | ColumnKind::Double => {
                let mut values = Vec::with_capacity(n * 8);
                let mut validity = vec![0u8; n.div_ceil(8)];
                let mut nulls = 0usize;
                for (i, cell) in cells.enumerate() {
                    let valid = match (kind, cell) {
                        (ColumnKind::Int, Cell::Int(v)) => {
                            values.extend_from_slice(&v.to_le_bytes());
                            true
                        }
                        (ColumnKind::Double, Cell::Int(v)) => {
                            values.extend_from_slice(&(*v as f64).to_le_bytes());
                            true
                        }
                        (ColumnKind::Double, Cell::Float(v)) if v.is_finite() => {
                            values.extend_from_slice(&v.to_le_bytes());
                            true
                        }
                        _ => {
                            values.extend_from_slice(&[0u8; 8]);
                            false
                        }
                    };
                    if valid {
                        validity[i / 8] |= 1 << (i % 8);
                    } else {
                        nulls += 1;
                    }
                }
                let validity = if nulls == 0 { None } else { Some(PyBytes::new(py, &validity)) };
                data.append((PyBytes::new(py, &values), validity, nulls))?;
            }
            ColumnKind::Bool => {
                let values: Vec<Option<bool>> =
                    cells.map(|c| if let Cell::Bool(b) = c { Some(*b) } else { None }).collect();
                data.append(values)?;
            }
            ColumnKind::Text => {
                let values: Vec<Option<String>> = cells.map(text_of).collect();
                data.append(values)?;
            }
        }
        kinds.append(match kind {
            ColumnKind::Int => "int64",
            ColumnKind::Bool => "bool",
            ColumnKind::Double => "float64",
            ColumnKind::Text => "string",
        })?;
    }
    dict.set_item("columns", table.columns.clone())?;
    dict.set_item("kinds", kinds)?;
    dict.set_item("data", data)?;
    dict.set_item("rows", n)?;
    Ok(dict)
}

/// The tables of a run or sweep: one row set across every kept point, each
/// row led by the point's settings (none without `[sweep]`).
pub fn outcome<'py>(py: Python<'py>, outcome: &Outcome) -> PyResult<Bound<'py, PyDict>> {
    let sweep = &outcome.sweep;
    let first = &sweep.first;
    let keys = &sweep.keys;
    let lead = |point: usize| -> Vec<(&str, Cell)> {
        sweep
            .points
            .get(point)
            .map_or_else(Vec::new, |settings| settings.iter().map(|(k, v)| (k.as_str(), setting_cell(v))).collect())
    };
    let mut runs = Rows::default();
    let mut summary = Rows::default();
    let mut claims = Rows::default();
    let mut series = Rows::default();
    let mut entities: Vec<(String, Rows)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut fallbacks: Vec<String> = Vec::new();
    for (point, result) in outcome.results.iter().enumerate() {
        add_point(
            point,
            result,
            &lead,
            &outcome.labels,
            &mut runs,
            &mut summary,
            &mut claims,
            &mut series,
            &mut entities,
        );
        for f in &result.fallbacks {
            if !fallbacks.contains(f) {
                fallbacks.push(f.clone());
            }
        }
        for run in &result.runs {
            for n in &run.output.notes {
                let line = format!("{} seed {}: {n}", run.policy, run.seed);
                if !notes.contains(&line) {
                    notes.push(line);
                }
            }
        }
    }
    let dict = PyDict::new(py);
    dict.set_item("scenario", &first.name)?;
    dict.set_item("path", first.path.display().to_string())?;
    dict.set_item("domain", first.domain.name())?;
    dict.set_item("description", &first.description)?;
    dict.set_item("seeds", first.seeds.clone())?;
    dict.set_item("policies", outcome.labels.clone())?;
    dict.set_item("sweep_keys", keys.clone())?;
    dict.set_item("points", sweep.points.len())?;
    dict.set_item("dir", outcome.dir.as_ref().map(|d| d.display().to_string()))?;
    dict.set_item("runs", to_python(py, &runs)?)?;
    dict.set_item("summary", to_python(py, &summary)?)?;
    dict.set_item("claims", to_python(py, &claims)?)?;
    dict.set_item("series", to_python(py, &series)?)?;
    let tables = PyDict::new(py);
    for (name, rows) in &entities {
        tables.set_item(name, to_python(py, rows)?)?;
    }
    dict.set_item("tables", tables)?;
    dict.set_item("notes", notes)?;
    dict.set_item("fallbacks", fallbacks)?;
    Ok(dict)
}

/// Adds one point's rows to every table.
#[allow(clippy::too_many_arguments)]
fn add_point<'a>(
    point: usize,
    result: &LabResult,
    lead: &dyn Fn(usize) -> Vec<(&'a str, Cell)>,
    labels: &[String],
    runs: &mut Rows,
    summary: &mut Rows,
    claims: &mut Rows,
    series: &mut Rows,
    entities: &mut Vec<(String, Rows)>,
) {
    let metrics = result.metric_names();
    for run in &result.runs {
        let mut row = lead(point);
        row.push(("policy", text(&run.policy)));
        row.push(("seed", Cell::Int(run.seed as i64)));
        for m in &metrics {
            row.push((m.as_str(), run.output.metric(m).map_or(Cell::Empty, float)));
        }
        runs.push_named(row);
        for t in &run.output.tables {
            let index = match entities.iter().position(|(n, _)| n == &t.name) {
                Some(i) => i,
                None => {
                    entities.push((t.name.clone(), Rows::default()));
                    entities.len() - 1
                }
            };
            let table = &mut entities[index].1;
            let mut lead_cells = lead(point);
            lead_cells.push(("policy", text(&run.policy)));
            lead_cells.push(("seed", Cell::Int(run.seed as i64)));
            // Resolve the columns once per run, then push rows positionally.
            let positions: Vec<usize> = lead_cells
                .iter()
                .map(|(name, _)| *name)
                .chain(t.columns.iter().map(String::as_str))
                .map(|name| table.column(name))
                .collect();
            for r in &t.rows {
                let mut row = vec![Cell::Empty; table.columns.len()];
                for (cell, &at) in lead_cells.iter().map(|(_, c)| c).chain(r.iter()).zip(&positions) {
                    row[at] = cell.clone();
                }
                table.push(row);
            }
        }
        for s in &run.output.series {
            for &(x, y) in &s.points {
                let mut row = lead(point);
                row.push(("policy", text(&run.policy)));
                row.push(("seed", Cell::Int(run.seed as i64)));
                row.push(("series", text(&s.name)));
                row.push(("x", float(x)));
                row.push(("y", float(y)));
                series.push_named(row);
            }
        }
    }
    for label in labels {
        for m in &metrics {
            let s = result.summary(label, m);
            let mut row = lead(point);
            row.push(("policy", text(label)));
            row.push(("metric", text(m)));
            row.push(("mean", float(s.mean)));
            row.push(("ci95", float(s.ci95)));
            row.push(("n", Cell::Int(s.n as i64)));
            summary.push_named(row);
        }
    }
    for c in &result.claims {
        let mut row = lead(point);
        row.push(("source", text(&c.claim.source)));
        row.push(("metric", text(&c.claim.metric)));
        row.push(("subject", text(&c.claim.subject)));
        row.push(("baseline", c.claim.baseline.as_deref().map_or(Cell::Empty, text)));
        row.push(("paper_value", optional(c.claim.paper_value)));
        row.push(("paper_ratio", optional(c.claim.paper_ratio)));
        row.push(("ours_mean", float(c.ours.mean)));
        row.push(("ours_ci95", float(c.ours.ci95)));
        row.push(("ours_baseline_mean", optional(c.ours_baseline.map(|b| b.mean))));
        row.push(("ours_ratio", optional(c.ours_ratio)));
        row.push(("paired_ratio_mean", optional(c.paired.map(|p| p.mean))));
        row.push(("paired_ratio_ci95", optional(c.paired.map(|p| p.ci95))));
        row.push(("verdict", text(c.verdict.label())));
        let reason = match &c.verdict {
            nimbus_lab::Verdict::NotComparable(why) => text(why),
            _ => Cell::Empty,
        };
        row.push(("reason", reason));
        claims.push_named(row);
    }
}
