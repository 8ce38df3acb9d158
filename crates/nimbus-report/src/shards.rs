//! Shard files: what `nimbus run --shard i/n` leaves for `nimbus merge`.
//!
//! `shard-<i>-of-<n>.json` holds the scenario's text and command-line
//! changes (so a merge needs neither the file nor the shard machines'
//! checkouts), the sweep's hash, the commit, the data fallbacks of every
//! point, and each run's complete output under its global index. Floats
//! are written as the shortest text that reads back to the same `f64`, so
//! merged files equal an unsharded run's byte for byte.

use std::path::{Path, PathBuf};

use nimbus_lab::{RunRecord, Shard};
use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Series, Table};
use serde_json::{Value, json};

use crate::files::{WriteError, pretty, write};

/// Format version of shard files.
pub const SHARD_FORMAT: u64 = 1;

/// One shard's file.
#[derive(Debug, Clone)]
pub struct ShardFile {
    /// The scenario file as given on the command line.
    pub scenario_path: String,
    /// Its text.
    pub scenario_text: String,
    /// `--set` changes.
    pub set: Vec<(String, String)>,
    /// `--seeds`, if given.
    pub seeds: Option<Vec<u64>>,
    /// The sweep's hash.
    pub hash: u64,
    /// Project commit.
    pub commit: String,
    /// Nimbus version.
    pub version: String,
    /// Which shard of how many.
    pub shard: Shard,
    /// Runs in the whole sweep.
    pub total_runs: usize,
    /// Data fallbacks per point.
    pub fallbacks: Vec<Vec<String>>,
    /// `(global index, point, run)`.
    pub runs: Vec<(usize, usize, RunRecord)>,
}

/// A float as Rust's shortest round-tripping text (`NaN`, `inf` included),
/// parsed back with Rust's correctly rounded parser: no JSON number
/// reader's rounding is involved.
fn float(v: f64) -> Value {
    json!(format!("{v:?}"))
}

fn read_float(v: &Value) -> Result<f64, String> {
    let text = v.as_str().ok_or_else(|| format!("expected a number as text, found {v}"))?;
    text.parse::<f64>().map_err(|_| format!("{text:?} is not a number"))
}

fn cell(c: &Cell) -> Value {
    match c {
        Cell::Int(i) => json!({ "i": i }),
        Cell::Float(f) => json!({ "f": float(*f) }),
        Cell::Str(s) => json!(s),
        Cell::Bool(b) => json!(b),
        Cell::Empty => Value::Null,
    }
}

fn read_cell(v: &Value) -> Result<Cell, String> {
    Ok(match v {
        Value::Null => Cell::Empty,
        Value::Bool(b) => Cell::Bool(*b),
        Value::String(s) => Cell::Str(s.clone()),
        Value::Object(o) if o.len() == 1 && o.contains_key("i") => {
            Cell::Int(o["i"].as_i64().ok_or_else(|| format!("cell {v}: not an integer"))?)
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("f") => Cell::Float(read_float(&o["f"])?),
        other => return Err(format!("unknown cell {other}")),
    })
}

fn better(b: Better) -> &'static str {
    match b {
        Better::Lower => "lower",
        Better::Higher => "higher",
        Better::Neither => "neither",
    }
}

fn metric(m: &Metric) -> Value {
    json!({ "name": m.name, "value": float(m.value), "better": better(m.better) })
}

fn read_metric(v: &Value) -> Result<Metric, String> {
    let better = match str_of(v, "better")? {
        "lower" => Better::Lower,
        "higher" => Better::Higher,
        "neither" => Better::Neither,
        other => return Err(format!("unknown direction {other:?}")),
    };
    Ok(Metric { name: str_of(v, "name")?.to_string(), value: read_float(field(v, "value")?)?, better })
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("missing `{key}`"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    field(v, key)?.as_str().ok_or_else(|| format!("`{key}` is not a string"))
}

fn u64_of(v: &Value, key: &str) -> Result<u64, String> {
    field(v, key)?.as_u64().ok_or_else(|| format!("`{key}` is not a count"))
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    field(v, key)?.as_array().ok_or_else(|| format!("`{key}` is not a list"))
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, String> {
    array(v, key)?
        .iter()
        .map(|s| s.as_str().map(str::to_string).ok_or_else(|| format!("`{key}` holds a non-string")))
        .collect()
}

fn output(o: &RunOutput) -> Value {
    json!({
        "metrics": o.metrics.iter().map(metric).collect::<Vec<_>>(),
        "tables": o.tables.iter().map(|t| json!({
            "name": t.name,
            "columns": t.columns,
            "rows": t.rows.iter().map(|r| r.iter().map(cell).collect::<Vec<_>>()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "series": o.series.iter().map(|s| json!({
            "name": s.name,
            "x_label": s.x_label,
            "y_label": s.y_label,
            "points": s.points.iter().map(|(x, y)| json!([float(*x), float(*y)])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "timings": o.timings.iter().map(metric).collect::<Vec<_>>(),
        "notes": o.notes,
    })
}

fn read_output(v: &Value) -> Result<RunOutput, String> {
    let tables = array(v, "tables")?
        .iter()
        .map(|t| {
            let columns = strings(t, "columns")?;
            let rows = array(t, "rows")?
                .iter()
                .map(|r| {
                    let cells = r
                        .as_array()
                        .ok_or("a row is not a list")?
                        .iter()
                        .map(read_cell)
                        .collect::<Result<Vec<_>, _>>()?;
                    if cells.len() != columns.len() {
                        return Err(format!("a row of {} cells under {} columns", cells.len(), columns.len()));
                    }
                    Ok(cells)
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Table { name: str_of(t, "name")?.to_string(), columns, rows })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let series = array(v, "series")?
        .iter()
        .map(|s| {
            let points = array(s, "points")?
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([x, y]) => Ok((read_float(x)?, read_float(y)?)),
                    _ => Err(format!("point {p} is not [x, y]")),
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Series {
                name: str_of(s, "name")?.to_string(),
                x_label: str_of(s, "x_label")?.to_string(),
                y_label: str_of(s, "y_label")?.to_string(),
                points,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(RunOutput {
        metrics: array(v, "metrics")?.iter().map(read_metric).collect::<Result<_, _>>()?,
        tables,
        series,
        timings: array(v, "timings")?.iter().map(read_metric).collect::<Result<_, _>>()?,
        notes: strings(v, "notes")?,
    })
}

/// The file name of shard `index` of `count`.
pub fn shard_file_name(index: usize, count: usize) -> String {
    format!("shard-{index}-of-{count}.json")
}

/// Writes `shard` into `dir` (created if needed).
pub fn write_shard(dir: &Path, shard: &ShardFile) -> Result<PathBuf, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError { path: dir.to_path_buf(), source })?;
    write(&dir.join(shard_file_name(shard.shard.index, shard.shard.count)), &shard_json(shard))
}

/// A shard file's text.
pub fn shard_json(shard: &ShardFile) -> String {
    let doc = json!({
        "format": SHARD_FORMAT,
        "scenario_path": shard.scenario_path,
        "scenario_text": shard.scenario_text,
        "set": shard.set.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "seeds": shard.seeds,
        "hash": format!("{:016x}", shard.hash),
        "commit": shard.commit,
        "nimbus_version": shard.version,
        "shard": shard.shard.index,
        "shards": shard.shard.count,
        "total_runs": shard.total_runs,
        "fallbacks": shard.fallbacks,
        "runs": shard.runs.iter().map(|(global, point, r)| json!({
            "index": global,
            "point": point,
            "policy": r.policy,
            "seed": r.seed,
            "output": output(&r.output),
        })).collect::<Vec<_>>(),
    });
    pretty(&doc)
}

/// The largest shard file read.
pub const MAX_SHARD_BYTES: u64 = 4 << 30;

/// Reads a shard file: `path` is the file or a directory holding exactly
/// one shard file.
pub fn read_shard(path: &Path) -> Result<ShardFile, String> {
    let file = if path.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("shard-") && n.ends_with(".json"))
            })
            .collect();
        found.sort();
        match found.len() {
            1 => found.remove(0),
            0 => return Err(format!("{}: no shard-*.json file in it", path.display())),
            n => return Err(format!("{}: {n} shard files in it; name each file", path.display())),
        }
    } else {
        path.to_path_buf()
    };
    let fail = |what: String| format!("{}: {what}", file.display());
    let len = std::fs::metadata(&file).map_err(|e| fail(e.to_string()))?.len();
    if len > MAX_SHARD_BYTES {
        return Err(fail(format!("{len} bytes is more than a shard file may hold")));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| fail(e.to_string()))?;
    parse_shard(&text).map_err(fail)
}

/// Parses a shard file's text.
pub fn parse_shard(text: &str) -> Result<ShardFile, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not a shard file: {e}"))?;
    let format = u64_of(&v, "format")?;
    if format != SHARD_FORMAT {
        return Err(format!("shard format {format}; this nimbus reads format {SHARD_FORMAT}"));
    }
    let to_usize = |key: &str| -> Result<usize, String> {
        usize::try_from(u64_of(&v, key)?).map_err(|_| format!("`{key}` is too large"))
    };
    let set = array(&v, "set")?
        .iter()
        .map(|p| match p.as_array().map(Vec::as_slice) {
            Some([Value::String(k), Value::String(val)]) => Ok((k.clone(), val.clone())),
            _ => Err("`set` holds a non-pair".to_string()),
        })
        .collect::<Result<Vec<_>, String>>()?;
    let seeds = match field(&v, "seeds")? {
        Value::Null => None,
        s => Some(
            s.as_array()
                .ok_or("`seeds` is not a list")?
                .iter()
                .map(|x| x.as_u64().ok_or("a seed is not a count"))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let fallbacks = array(&v, "fallbacks")?
        .iter()
        .map(|f| {
            f.as_array()
                .ok_or("`fallbacks` holds a non-list")?
                .iter()
                .map(|s| s.as_str().map(str::to_string).ok_or("a fallback is not text"))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shard = Shard::new(to_usize("shard")?, to_usize("shards")?)?;
    let total_runs = to_usize("total_runs")?;
    let runs = array(&v, "runs")?
        .iter()
        .map(|r| {
            let index = usize::try_from(u64_of(r, "index")?).map_err(|_| "run index too large")?;
            if index >= total_runs || !shard.takes(index) {
                return Err(format!(
                    "run {index} is not one of shard {} of {}'s {total_runs} runs",
                    shard.index, shard.count
                ));
            }
            let point = usize::try_from(u64_of(r, "point")?).map_err(|_| "point too large")?;
            let record = RunRecord {
                policy: str_of(r, "policy")?.to_string(),
                seed: u64_of(r, "seed")?,
                output: read_output(field(r, "output")?).map_err(|e| format!("run {index}: {e}"))?,
            };
            Ok((index, point, record))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let hash = u64::from_str_radix(str_of(&v, "hash")?, 16).map_err(|_| "`hash` is not hexadecimal")?;
    Ok(ShardFile {
        scenario_path: str_of(&v, "scenario_path")?.to_string(),
        scenario_text: str_of(&v, "scenario_text")?.to_string(),
        set,
        seeds,
        hash,
        commit: str_of(&v, "commit")?.to_string(),
        version: str_of(&v, "nimbus_version")?.to_string(),
        shard,
        total_runs,
        fallbacks,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of cell, NaN and infinities, and awkward floats come back
    /// exactly.
    #[test]
    fn outputs_round_trip_exactly() {
        let out = RunOutput {
            metrics: vec![
                Metric::new("a", 0.1 + 0.2, Better::Lower),
                Metric::new("b", f64::NAN, Better::Higher),
                Metric::new("c", 1e-300, Better::Neither),
            ],
            tables: vec![Table {
                name: "t".into(),
                columns: vec!["x".into(), "y".into(), "z".into(), "w".into(), "v".into()],
                rows: vec![vec![
                    Cell::Int(-7),
                    Cell::Float(f64::INFINITY),
                    Cell::Str("NaN".into()),
                    Cell::Bool(true),
                    Cell::Empty,
                ]],
            }],
            series: vec![Series {
                name: "s".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                points: vec![(1.0, 2.5), (f64::MAX, f64::NEG_INFINITY)],
            }],
            timings: vec![Metric::new("ms", 3.25, Better::Neither)],
            notes: vec!["a note".into()],
        };
        let back = read_output(&output(&out)).expect("reads");
        assert_eq!(format!("{back:?}"), format!("{out:?}"));
        assert!(back.metrics[1].value.is_nan());
        assert_eq!(back.metrics[0].value.to_bits(), (0.1f64 + 0.2).to_bits());
    }
}
