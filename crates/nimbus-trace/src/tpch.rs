//! Decima's TPC-H job DAGs (`decima-tpch/tpch_dags.json`).
//!
//! The file is one JSON object keyed by `<size>/q<N>` (e.g. `10g/q2`):
//! `adj` is the stage adjacency matrix (row = parent, column = child, 0 or
//! 1), and `stages` maps each stage index to three tables keyed by the
//! number of executors the job held when the durations were measured:
//! `first_wave`, `rest_wave` and `fresh_durations`, each a list of task
//! durations in milliseconds. The values are those of decima-sim's
//! `spark_env/tpch` numpy files (commit c010dd7), converted unchanged.
//!
//! A stage's task count is the first wave plus the rest wave at the
//! smallest executor count; for all but one stage of the 154 jobs every
//! executor count agrees (TPC-H q15's stage 6 lists one or two tasks
//! depending on the count; the smallest count, the first key of Decima's
//! tables, gives two).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::TraceError;
use crate::input::{Source, quote, read_document};

/// Largest file accepted (the shared file is 9.9 MB).
const MAX_DOCUMENT_BYTES: u64 = 256 << 20;
/// Most stages in one job.
const MAX_STAGES: usize = 10_000;
/// Most tasks in one stage.
const MAX_TASKS: usize = 1_000_000;

/// Task durations (ms) measured with a given number of executors, ascending
/// by executor count.
pub type DurationTable = Vec<(u32, Vec<f64>)>;

/// One stage of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Number of tasks.
    pub tasks: usize,
    /// Durations of the first wave of tasks (fresh executors included).
    pub first_wave: DurationTable,
    /// Durations of later waves.
    pub rest_wave: DurationTable,
    /// Durations of first-wave tasks that ran on an executor new to the job.
    pub fresh: DurationTable,
}

/// One job DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `<size>/q<N>`.
    pub name: String,
    /// Input size (`2g`, `100g`, …), the part before the slash.
    pub size: String,
    /// Children of each stage (ascending).
    pub children: Vec<Vec<usize>>,
    /// Stages by index.
    pub stages: Vec<Stage>,
}

/// Reads every job of the file, in key order (`100g/q1`, `100g/q10`, …).
pub fn read_queries<'a>(source: impl Into<Source<'a>>) -> Result<Vec<Query>, TraceError> {
    let source = source.into();
    let path = source.name();
    let text = read_document(source, MAX_DOCUMENT_BYTES)?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| TraceError::parse(path, e.line() as u64, e.column() as u64, None, format!("invalid JSON: {e}")))?;
    let jobs =
        json.as_object().ok_or_else(|| TraceError::file(path, "expected a JSON object keyed by `<size>/q<N>`"))?;
    if jobs.is_empty() {
        return Err(TraceError::file(path, "no jobs"));
    }
    let mut out = Vec::with_capacity(jobs.len());
    for (name, job) in jobs {
        let fail = |m: String| TraceError::file(path, format!("job `{}`: {m}", quote(name)));
        let size = name
            .split_once('/')
            .map(|(s, _)| s.to_string())
            .ok_or_else(|| fail("expected a key `<size>/q<N>`".into()))?;
        let adj = job.get("adj").and_then(Value::as_array).ok_or_else(|| fail("no `adj` matrix".into()))?;
        let n = adj.len();
        if n == 0 || n > MAX_STAGES {
            return Err(fail(format!("{n} stages; expected 1 to {MAX_STAGES}")));
        }
        let mut children = vec![Vec::new(); n];
        for (i, row) in adj.iter().enumerate() {
            let row = row.as_array().filter(|r| r.len() == n).ok_or_else(|| {
                fail(format!("`adj` row {i} is not a list of {n} numbers (the matrix must be square)"))
            })?;
            for (j, v) in row.iter().enumerate() {
                match v.as_f64() {
                    Some(0.0) => {}
                    Some(1.0) => children[i].push(j),
                    _ => return Err(fail(format!("`adj`[{i}][{j}] is {}; expected 0 or 1", quote(&v.to_string())))),
                }
            }
        }
        if let Err(stuck) = crate::dag::topological_order(&children) {
            return Err(fail(format!("the stage graph has a cycle through stage {}", stuck[0])));
        }
        let stages_json =
            job.get("stages").and_then(Value::as_object).ok_or_else(|| fail("no `stages` object".into()))?;
        if stages_json.len() != n {
            return Err(fail(format!("{} stages listed, but `adj` has {n}", stages_json.len())));
        }
        let mut stages = Vec::with_capacity(n);
        for i in 0..n {
            let stage =
                stages_json.get(&i.to_string()).ok_or_else(|| fail(format!("stage {i} is missing from `stages`")))?;
            let table = |key: &str| -> Result<DurationTable, TraceError> {
                let obj = stage
                    .get(key)
                    .and_then(Value::as_object)
                    .ok_or_else(|| fail(format!("stage {i}: no `{key}` object")))?;
                let mut rows = BTreeMap::new();
                for (executors, list) in obj {
                    let e = executors.parse::<u32>().ok().filter(|&e| e > 0).ok_or_else(|| {
                        fail(format!("stage {i}: `{key}` key `{}` is not an executor count", quote(executors)))
                    })?;
                    let list = list.as_array().ok_or_else(|| fail(format!("stage {i}: `{key}`[{e}] is not a list")))?;
                    let mut durations = Vec::with_capacity(list.len());
                    for v in list {
                        match v.as_f64() {
                            Some(d) if d.is_finite() && d >= 0.0 => durations.push(d),
                            _ => {
                                return Err(fail(format!(
                                    "stage {i}: `{key}`[{e}] holds {}; durations are non-negative milliseconds",
                                    quote(&v.to_string())
                                )));
                            }
                        }
                    }
                    rows.insert(e, durations);
                }
                if rows.is_empty() {
                    return Err(fail(format!("stage {i}: `{key}` is empty")));
                }
                Ok(rows.into_iter().collect())
            };
            let first_wave = table("first_wave")?;
            let rest_wave = table("rest_wave")?;
            let fresh = table("fresh_durations")?;
            let (smallest, first) = &first_wave[0];
            let rest = rest_wave.iter().find(|(e, _)| e == smallest).map_or(0, |(_, d)| d.len());
            let tasks = first.len() + rest;
            if tasks == 0 || tasks > MAX_TASKS {
                return Err(fail(format!(
                    "stage {i}: {tasks} tasks at {smallest} executors; expected 1 to {MAX_TASKS}"
                )));
            }
            stages.push(Stage { tasks, first_wave, rest_wave, fresh });
        }
        out.push(Query { name: name.clone(), size, children, stages });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(text: &str) -> Result<Vec<Query>, TraceError> {
        read_queries(Source::bytes(Path::new("t.json"), text.as_bytes()))
    }

    const STAGE: &str = r#"{"first_wave": {"5": [10, 12], "2": [10, 11]}, "rest_wave": {"5": [], "2": []}, "fresh_durations": {"5": [12], "2": []}}"#;

    #[test]
    fn reads_a_two_stage_job() {
        let text = format!(r#"{{"2g/q1": {{"adj": [[0, 1], [0, 0]], "stages": {{"0": {STAGE}, "1": {STAGE}}}}}}}"#);
        let q = read(&text).expect("valid");
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].size, "2g");
        assert_eq!(q[0].children, vec![vec![1], vec![]]);
        assert_eq!(q[0].stages[0].tasks, 2);
        assert_eq!(q[0].stages[0].first_wave[0], (2, vec![10.0, 11.0]));
        assert_eq!(q[0].stages[1].fresh[1], (5, vec![12.0]));
    }

    #[test]
    fn bad_jobs_are_named() {
        let err = |text: &str| read(text).expect_err("refused").to_string();
        assert!(err("{\"a\": ").contains("t.json:1:"), "{}", err("{\"a\": "));
        let cyclic = format!(r#"{{"2g/q1": {{"adj": [[0, 1], [1, 0]], "stages": {{"0": {STAGE}, "1": {STAGE}}}}}}}"#);
        assert!(err(&cyclic).contains("cycle through stage 0"), "{}", err(&cyclic));
        let ragged = format!(r#"{{"2g/q1": {{"adj": [[0, 1], [0]], "stages": {{"0": {STAGE}, "1": {STAGE}}}}}}}"#);
        assert!(err(&ragged).contains("square"), "{}", err(&ragged));
        let missing = format!(r#"{{"2g/q1": {{"adj": [[0, 1], [0, 0]], "stages": {{"0": {STAGE}, "2": {STAGE}}}}}}}"#);
        assert!(err(&missing).contains("stage 1 is missing"), "{}", err(&missing));
        let negative = r#"{"2g/q1": {"adj": [[0]], "stages": {"0": {"first_wave": {"2": [-1]}, "rest_wave": {"2": []}, "fresh_durations": {"2": []}}}}}"#;
        assert!(err(negative).contains("non-negative"), "{}", err(negative));
        let unnamed = format!(r#"{{"q1": {{"adj": [[0]], "stages": {{"0": {STAGE}}}}}}}"#);
        assert!(err(&unnamed).contains("<size>/q<N>"), "{}", err(&unnamed));
    }
}
