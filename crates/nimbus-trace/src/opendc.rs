//! OpenDC workload traces: tasks and their CPU-usage fragments (SURF
//! Lisa/Snellius, Bitbrains GWA-T-12, OpenDC's synthetic scaling inputs).
//!
//! Two layouts exist, both Parquet, both read from a directory:
//! - **current** (`tasks.parquet` + `fragments.parquet`): a task has an
//!   integer `id`, `submission_time` (ms since 1970), `duration` (ms),
//!   `cpu_count`, `cpu_capacity` (MHz) and `mem_capacity` (MB); its
//!   fragments `{id, duration, cpu_usage}` carry no time: they run back to
//!   back from the task's start, in file order, as OpenDC replays them.
//! - **legacy** (`meta.parquet` + `trace.parquet`, e.g. `bitbrains-small`):
//!   a VM has a text `id`, `start_time` and `stop_time` (timestamps),
//!   `cpu_count`, `cpu_capacity`, `mem_capacity`; each sample
//!   `{id, timestamp, duration, cpu_count, cpu_usage}` covers the `duration`
//!   ms that end at `timestamp` (in `bitbrains-small` a VM's first sample
//!   is stamped one duration after its `start_time` and its last at its
//!   `stop_time`). Missing samples stay gaps: no usage there, as in OpenDC.
//!
//! Every fragment must belong to a task of the file; durations must not be
//! negative and usages must be finite and not negative; an error names the
//! file, the row and the field. [`cpu_usage`] turns a workload into regular
//! series of CPU demand (MHz averaged per step), in total or per task,
//! spreading each fragment over the steps it overlaps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::TraceError;
use crate::columnar::{self, Values};
use crate::input::{Source, quote};
use crate::series::{MAX_POINTS, Series};

/// One task (or VM).
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Its id as text (integers are written in decimal).
    pub id: String,
    /// When it was submitted (or started), ms since 1970-01-01.
    pub submit_ms: i64,
    /// How long it runs, ms (legacy: stop − start).
    pub duration_ms: i64,
    /// Cores it asks for.
    pub cpu_count: u32,
    /// Total CPU capacity it asks for, MHz.
    pub cpu_capacity_mhz: f64,
    /// Memory it asks for, MB.
    pub mem_capacity_mb: f64,
}

/// A stretch of constant CPU usage of one task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fragment {
    /// Index of its task in [`Workload::tasks`].
    pub task: usize,
    /// When it starts, ms since 1970-01-01.
    pub start_ms: i64,
    /// How long it lasts, ms.
    pub duration_ms: i64,
    /// CPU usage over it, MHz.
    pub cpu_usage_mhz: f64,
}

/// Tasks and their fragments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workload {
    /// Tasks in file order.
    pub tasks: Vec<Task>,
    /// Fragments in file order.
    pub fragments: Vec<Fragment>,
}

/// The files of a workload directory, current layout first.
const LAYOUTS: [(&str, &str); 2] = [("tasks.parquet", "fragments.parquet"), ("meta.parquet", "trace.parquet")];

/// Whether `dir` holds an OpenDC workload in either layout.
pub fn is_workload_dir(dir: &Path) -> bool {
    LAYOUTS.iter().any(|(t, f)| dir.join(t).is_file() && dir.join(f).is_file())
}

/// Reads the workload in directory `dir`.
pub fn read_workload(dir: &Path) -> Result<Workload, TraceError> {
    for (tasks, fragments) in LAYOUTS {
        let (t, f) = (dir.join(tasks), dir.join(fragments));
        if t.is_file() && f.is_file() {
            return read_files(Source::file(&t), Source::file(&f));
        }
    }
    Err(TraceError::file(
        dir,
        "is not an OpenDC workload directory: expected tasks.parquet and fragments.parquet (or the legacy meta.parquet and trace.parquet)",
    ))
}

/// Reads a workload from its task and fragment files; the layout follows
/// the task file's columns.
pub fn read_files(tasks: Source<'_>, fragments: Source<'_>) -> Result<Workload, TraceError> {
    let (tasks_read, legacy) = read_tasks_and_layout(tasks)?;
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, t) in tasks_read.iter().enumerate() {
        if index.insert(t.id.as_str(), i).is_some() {
            return Err(row_error(tasks, i, "id", format!("task id `{}` appears twice", quote(&t.id))));
        }
    }
    let fragments_read = if legacy {
        read_legacy_fragments(fragments, &index)?
    } else {
        read_fragments(fragments, &index, &tasks_read)?
    };
    Ok(Workload { tasks: tasks_read, fragments: fragments_read })
}

/// Reads a task file alone, in either layout (for checking a file whole).
pub fn read_tasks_file(source: Source<'_>) -> Result<Vec<Task>, TraceError> {
    read_tasks_and_layout(source).map(|(tasks, _)| tasks)
}

/// The tasks, and whether the file is in the legacy layout (it has a
/// `start_time` column).
fn read_tasks_and_layout(source: Source<'_>) -> Result<(Vec<Task>, bool), TraceError> {
    if columnar::column_names(source)?.iter().any(|n| n == "start_time") {
        Ok((read_legacy_tasks(source)?, true))
    } else {
        Ok((read_tasks(source)?, false))
    }
}

fn row_error(source: Source<'_>, row: usize, column: &str, message: impl std::fmt::Display) -> TraceError {
    TraceError::file(source.name(), format!("row {}, column `{column}`: {message}", row + 1))
}

/// Typed access to the columns of one file, with errors at their row.
struct Table<'a> {
    source: Source<'a>,
    names: Vec<&'a str>,
    columns: Vec<Values>,
}

impl<'a> Table<'a> {
    fn read(source: Source<'a>, names: &[&'a str]) -> Result<Self, TraceError> {
        let columns = columnar::read_columns(source, names)?;
        Ok(Table { source, names: names.to_vec(), columns })
    }

    fn rows(&self) -> usize {
        self.columns.first().map_or(0, Values::len)
    }

    fn error(&self, row: usize, c: usize, message: impl std::fmt::Display) -> TraceError {
        row_error(self.source, row, self.names[c], message)
    }

    fn id(&self, row: usize, c: usize) -> Result<String, TraceError> {
        match &self.columns[c] {
            Values::Int(v) => v[row].map(|x| x.to_string()),
            Values::Text(v) => v[row].clone(),
            other => {
                return Err(self.error(
                    row,
                    c,
                    format!("expected an integer or text id, the column is {}", other.kind()),
                ));
            }
        }
        .ok_or_else(|| self.error(row, c, "is empty"))
    }

    fn time_ms(&self, row: usize, c: usize) -> Result<i64, TraceError> {
        match &self.columns[c] {
            Values::Int(v) | Values::TimeMs(v) => v[row].ok_or_else(|| self.error(row, c, "is empty")),
            other => Err(self.error(row, c, format!("expected a time in ms, the column is {}", other.kind()))),
        }
    }

    fn duration_ms(&self, row: usize, c: usize) -> Result<i64, TraceError> {
        let d = self.time_ms(row, c)?;
        if d < 0 {
            return Err(self.error(row, c, format!("a duration must not be negative, found {d}")));
        }
        Ok(d)
    }

    fn non_negative(&self, row: usize, c: usize) -> Result<f64, TraceError> {
        let x = self.columns[c].number(row).ok_or_else(|| self.error(row, c, "is empty or not a number"))?;
        if !(x.is_finite() && x >= 0.0) {
            return Err(self.error(row, c, format!("expected a finite number ≥ 0, found {x}")));
        }
        Ok(x)
    }

    fn count(&self, row: usize, c: usize) -> Result<u32, TraceError> {
        let x = self.non_negative(row, c)?;
        if x.fract() != 0.0 || x > f64::from(u32::MAX) {
            return Err(self.error(row, c, format!("expected a whole number of cores, found {x}")));
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked just above
        Ok(x as u32)
    }
}

/// One failure of an OpenDC failure trace (`failure_traces/*.parquet`):
/// after `interval_ms` (counted from the end of the previous failure), a
/// share `intensity` of the hosts fails for `duration_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failure {
    /// Wait before this failure, ms.
    pub interval_ms: u64,
    /// How long the hosts stay down, ms.
    pub duration_ms: u64,
    /// Share of the hosts that fail, in (0, 1].
    pub intensity: f64,
}

const FAILURE_COLUMNS: [&str; 3] = ["failure_interval", "failure_duration", "failure_intensity"];

/// Reads an OpenDC failure trace: Parquet (as OpenDC ships them) or CSV
/// with the same columns. Intervals and durations must not be negative,
/// intensities must lie in (0, 1] (OpenDC's own checks).
pub fn read_failures(source: Source<'_>) -> Result<Vec<Failure>, TraceError> {
    let check = |interval: i64, duration: i64, intensity: f64| -> Result<Failure, String> {
        if interval < 0 || duration < 0 {
            return Err(format!("interval {interval} ms and duration {duration} ms must not be negative"));
        }
        if !(intensity > 0.0 && intensity <= 1.0) {
            return Err(format!("failure_intensity {intensity} is not in (0, 1]"));
        }
        #[allow(clippy::cast_sign_loss)] // checked just above
        Ok(Failure { interval_ms: interval as u64, duration_ms: duration as u64, intensity })
    };
    if columnar::is_parquet(source) {
        let t = Table::read(source, &FAILURE_COLUMNS)?;
        return (0..t.rows())
            .map(|r| {
                let intensity = t.columns[2].number(r).ok_or_else(|| t.error(r, 2, "is empty or not a number"))?;
                check(t.time_ms(r, 0)?, t.time_ms(r, 1)?, intensity).map_err(|m| row_error(source, r, "failure", m))
            })
            .collect();
    }
    let mut out = Vec::new();
    crate::error::for_each_csv_row(source, &FAILURE_COLUMNS, |f| {
        let whole = |i: usize| -> Result<i64, TraceError> {
            let v = f.f64(i)?;
            if v.fract() != 0.0 || v.abs() > 9.0e15 {
                return Err(f.invalid(i, format!("expected whole milliseconds, found {v}")));
            }
            if v < 0.0 {
                return Err(f.invalid(i, format!("must not be negative, found {v} ms")));
            }
            #[allow(clippy::cast_possible_truncation)] // whole and in range, checked above
            Ok(v as i64)
        };
        let failure = check(whole(0)?, whole(1)?, f.f64(2)?).map_err(|m| f.invalid(2, m))?;
        out.push(failure);
        Ok(())
    })?;
    Ok(out)
}

const TASK_COLUMNS: [&str; 6] = ["id", "submission_time", "duration", "cpu_count", "cpu_capacity", "mem_capacity"];

fn read_tasks(source: Source<'_>) -> Result<Vec<Task>, TraceError> {
    let t = Table::read(source, &TASK_COLUMNS)?;
    (0..t.rows())
        .map(|r| {
            Ok(Task {
                id: t.id(r, 0)?,
                submit_ms: t.time_ms(r, 1)?,
                duration_ms: t.duration_ms(r, 2)?,
                cpu_count: t.count(r, 3)?,
                cpu_capacity_mhz: t.non_negative(r, 4)?,
                mem_capacity_mb: t.non_negative(r, 5)?,
            })
        })
        .collect()
}

const LEGACY_TASK_COLUMNS: [&str; 6] = ["id", "start_time", "stop_time", "cpu_count", "cpu_capacity", "mem_capacity"];

fn read_legacy_tasks(source: Source<'_>) -> Result<Vec<Task>, TraceError> {
    let t = Table::read(source, &LEGACY_TASK_COLUMNS)?;
    (0..t.rows())
        .map(|r| {
            let start = t.time_ms(r, 1)?;
            let stop = t.time_ms(r, 2)?;
            if stop < start {
                return Err(t.error(r, 2, "stops before it starts"));
            }
            Ok(Task {
                id: t.id(r, 0)?,
                submit_ms: start,
                duration_ms: stop - start,
                cpu_count: t.count(r, 3)?,
                cpu_capacity_mhz: t.non_negative(r, 4)?,
                mem_capacity_mb: t.non_negative(r, 5)?,
            })
        })
        .collect()
}

fn task_of(t: &Table<'_>, r: usize, index: &BTreeMap<&str, usize>) -> Result<usize, TraceError> {
    let id = t.id(r, 0)?;
    index.get(id.as_str()).copied().ok_or_else(|| t.error(r, 0, format!("no task has id `{}`", quote(&id))))
}

fn read_fragments(
    source: Source<'_>,
    index: &BTreeMap<&str, usize>,
    tasks: &[Task],
) -> Result<Vec<Fragment>, TraceError> {
    let t = Table::read(source, &["id", "duration", "cpu_usage"])?;
    // Each task's fragments run back to back from its submission.
    let mut next_start: Vec<i64> = tasks.iter().map(|t| t.submit_ms).collect();
    (0..t.rows())
        .map(|r| {
            let task = task_of(&t, r, index)?;
            let duration_ms = t.duration_ms(r, 1)?;
            let start_ms = next_start[task];
            next_start[task] =
                start_ms.checked_add(duration_ms).ok_or_else(|| t.error(r, 1, "the task's fragments overflow time"))?;
            Ok(Fragment { task, start_ms, duration_ms, cpu_usage_mhz: t.non_negative(r, 2)? })
        })
        .collect()
}

fn read_legacy_fragments(source: Source<'_>, index: &BTreeMap<&str, usize>) -> Result<Vec<Fragment>, TraceError> {
    let t = Table::read(source, &["id", "timestamp", "duration", "cpu_usage"])?;
    (0..t.rows())
        .map(|r| {
            let duration_ms = t.duration_ms(r, 2)?;
            let end_ms = t.time_ms(r, 1)?;
            Ok(Fragment {
                task: task_of(&t, r, index)?,
                start_ms: end_ms
                    .checked_sub(duration_ms)
                    .ok_or_else(|| t.error(r, 1, "starts before time can be told"))?,
                duration_ms,
                cpu_usage_mhz: t.non_negative(r, 3)?,
            })
        })
        .collect()
}

/// CPU demand as regular series of `step_s`-second means (MHz): one series
/// named `name` for the whole workload, or with `per_task` one per task
/// that has fragments (named by task id, in task order). Every series runs
/// on the same grid, from the step of the earliest fragment to the step of
/// the latest end; a fragment contributes to each step in proportion to
/// its overlap with it.
pub fn cpu_usage(workload: &Workload, step_s: u64, per_task: bool, name: &str) -> Result<Vec<Series>, String> {
    let step_ms = i64::try_from(step_s).ok().and_then(|s| s.checked_mul(1000)).filter(|&s| s > 0);
    let Some(step_ms) = step_ms else {
        return Err(format!("the step must be between 1 s and {} s, not {step_s}", i64::MAX / 1000));
    };
    let live = workload.fragments.iter().filter(|f| f.duration_ms > 0);
    let first = live.clone().map(|f| f.start_ms).min().ok_or("the workload has no fragment of positive duration")?;
    let last = live.map(|f| f.start_ms.saturating_add(f.duration_ms)).max().unwrap_or(first);
    let origin = first.div_euclid(step_ms);
    let steps = usize::try_from((last - 1).div_euclid(step_ms) - origin + 1).unwrap_or(usize::MAX);
    let series_count = if per_task { workload.tasks.len() } else { 1 };
    if steps > MAX_POINTS || steps.saturating_mul(series_count) > 4 * MAX_POINTS {
        return Err(format!("{series_count} series of {steps} steps of {step_s} s is more than this reader builds"));
    }
    let mut sums = vec![vec![0.0f64; if per_task { 0 } else { steps }]; series_count];
    let mut used = vec![false; series_count];
    #[allow(clippy::cast_precision_loss)] // ms spans far below 2^53
    for f in workload.fragments.iter().filter(|f| f.duration_ms > 0) {
        let k = if per_task { f.task } else { 0 };
        if sums[k].is_empty() {
            sums[k] = vec![0.0; steps];
        }
        used[k] = true;
        let (start, end) = (f.start_ms, f.start_ms.saturating_add(f.duration_ms));
        let mut s = start.div_euclid(step_ms);
        while s * step_ms < end {
            let overlap = end.min((s + 1) * step_ms) - start.max(s * step_ms);
            let i = usize::try_from(s - origin).unwrap_or(0);
            sums[k][i] += f.cpu_usage_mhz * overlap as f64 / step_ms as f64;
            s += 1;
        }
    }
    Ok(sums
        .into_iter()
        .zip(used)
        .enumerate()
        .filter(|(_, (_, used))| *used)
        .map(|(k, (values, _))| Series {
            name: if per_task { workload.tasks[k].id.clone() } else { name.to_string() },
            start_unix_s: origin * step_ms / 1000,
            step_s,
            values,
        })
        .collect())
}

/// A workload directory's name for its total series (`surf_week-cpu`).
pub fn series_name(dir: &Path) -> String {
    let stem = dir.file_name().map_or_else(|| PathBuf::from("opendc"), PathBuf::from);
    format!("{}-cpu", stem.display())
}

#[cfg(all(test, feature = "parquet"))]
mod tests {
    use super::*;

    fn current(tasks: &[(i64, i64, i64)], fragments: &[(i64, i64, f64)]) -> (Vec<u8>, Vec<u8>) {
        let n = tasks.len();
        let t = columnar::write_columns(&[
            ("id", &Values::Int(tasks.iter().map(|t| Some(t.0)).collect())),
            ("submission_time", &Values::Int(tasks.iter().map(|t| Some(t.1)).collect())),
            ("duration", &Values::Int(tasks.iter().map(|t| Some(t.2)).collect())),
            ("cpu_count", &Values::Int(vec![Some(2); n])),
            ("cpu_capacity", &Values::Float(vec![Some(4200.0); n])),
            ("mem_capacity", &Values::Int(vec![Some(1024); n])),
        ])
        .expect("tasks");
        let f = columnar::write_columns(&[
            ("id", &Values::Int(fragments.iter().map(|f| Some(f.0)).collect())),
            ("duration", &Values::Int(fragments.iter().map(|f| Some(f.1)).collect())),
            ("cpu_usage", &Values::Float(fragments.iter().map(|f| Some(f.2)).collect())),
        ])
        .expect("fragments");
        (t, f)
    }

    fn read(t: &[u8], f: &[u8]) -> Result<Workload, TraceError> {
        read_files(Source::bytes(Path::new("tasks.parquet"), t), Source::bytes(Path::new("fragments.parquet"), f))
    }

    #[test]
    fn fragments_run_back_to_back_from_submission() {
        let (t, f) = current(
            &[(7, 60_000, 90_000), (9, 0, 30_000)],
            &[(7, 30_000, 100.0), (9, 30_000, 50.0), (7, 60_000, 300.0)],
        );
        let w = read(&t, &f).expect("reads");
        let starts: Vec<(usize, i64)> = w.fragments.iter().map(|f| (f.task, f.start_ms)).collect();
        assert_eq!(starts, [(0, 60_000), (1, 0), (0, 90_000)]);
        // 60-s steps: [0,60) has task 9 at 50 MHz for half the step = 25;
        // [60,120) has task 7 at 100 for 30 s then 300 for 30 s = 200;
        // [120,180) has 300 for 30 s = 150.
        let total = cpu_usage(&w, 60, false, "all").expect("series");
        assert_eq!(total[0].values, [25.0, 200.0, 150.0]);
        assert_eq!(total[0].start_unix_s, 0);
        let per = cpu_usage(&w, 60, true, "all").expect("series");
        assert_eq!(per.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["7", "9"]);
        assert_eq!(per[0].values, [0.0, 200.0, 150.0]);
        assert_eq!(per[1].values, [25.0, 0.0, 0.0]);
    }

    #[test]
    fn bad_rows_are_named() {
        let (t, f) = current(&[(1, 0, 10)], &[(2, 10, 1.0)]);
        let e = read(&t, &f).expect_err("unknown task").to_string();
        assert!(e.contains("row 1, column `id`: no task has id `2`"), "{e}");
        let (t, f) = current(&[(1, 0, 10)], &[(1, -10, 1.0)]);
        let e = read(&t, &f).expect_err("negative").to_string();
        assert!(e.contains("column `duration`") && e.contains("negative"), "{e}");
        let (t, f) = current(&[(1, 0, 10)], &[(1, 10, f64::NAN)]);
        assert!(read(&t, &f).expect_err("nan").to_string().contains("column `cpu_usage`"));
        let (t, f) = current(&[(1, 0, 10), (1, 5, 10)], &[]);
        assert!(read(&t, &f).expect_err("twice").to_string().contains("appears twice"));
        let (t, f) = current(&[(1, 0, 10)], &[]);
        let w = read(&t, &f).expect("reads");
        assert!(cpu_usage(&w, 60, false, "x").is_err());
        let e = read(&f, &t).expect_err("swapped").to_string();
        assert!(e.contains("no column `submission_time`"), "{e}");
    }

    #[test]
    fn legacy_samples_carry_their_own_time() {
        let meta = columnar::write_columns(&[
            ("id", &Values::Text(vec![Some("vm1".into())])),
            ("start_time", &Values::TimeMs(vec![Some(0)])),
            ("stop_time", &Values::TimeMs(vec![Some(600_000)])),
            ("cpu_count", &Values::Int(vec![Some(1)])),
            ("cpu_capacity", &Values::Float(vec![Some(2000.0)])),
            ("mem_capacity", &Values::Int(vec![Some(512)])),
        ])
        .expect("meta");
        let trace = columnar::write_columns(&[
            ("id", &Values::Text(vec![Some("vm1".into()), Some("vm1".into())])),
            ("timestamp", &Values::TimeMs(vec![Some(600_000), Some(300_000)])),
            ("duration", &Values::Int(vec![Some(300_000), Some(300_000)])),
            ("cpu_count", &Values::Int(vec![Some(1), Some(1)])),
            ("cpu_usage", &Values::Float(vec![Some(10.0), Some(30.0)])),
        ])
        .expect("trace");
        let w = read(&meta, &trace).expect("reads");
        assert_eq!(w.tasks[0].duration_ms, 600_000);
        let s = cpu_usage(&w, 300, false, "bb").expect("series");
        assert_eq!(s[0].values, [30.0, 10.0]);
        let hourly = cpu_usage(&w, 3600, false, "bb").expect("series");
        assert_eq!(hourly[0].values, [(30.0 + 10.0) / 12.0]);
    }
}
