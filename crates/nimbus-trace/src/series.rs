//! Regularly sampled series for forecasting: carbon intensity, electricity
//! prices, renewable shares, cluster submission counts, job arrivals,
//! function invocations.
//!
//! Four shapes cover the public files:
//! - [`read_columns`] / [`read_column`]: a timestamp in the first column
//!   and value columns by name, read in one pass (Electricity Maps hourly
//!   files, the GreenDCC wide files, Let's Wait Awhile, OpenDC's carbon
//!   CSVs, Lucid's `cluster_throughput.csv`).
//! - [`read_arrival_counts`]: one row per arrival (GAIA job traces, hours
//!   since the start), counted per step.
//! - [`azure2019_per_minute`]: the Azure Functions 2019 invocation counts,
//!   summed over functions, one value per minute.
//! - [`read_event_aggregates`]: one row per event with a UTC timestamp
//!   (Redset's `arrival_timestamp`, Parquet or CSV), counted or summed per
//!   step.
//!
//! [`read_columns`] and [`read_event_aggregates`] read Parquet files too
//! (OpenDC's carbon traces, Redset), recognised by their magic bytes; there
//! a position is a row number. CPU usage of OpenDC workloads (SURF,
//! Bitbrains) comes from [`crate::opendc::cpu_usage`].
//!
//! Missing data is never invented or dropped silently: a gap in the
//! timestamps or an empty cell becomes a NaN in [`Series::values`], and
//! [`Series::missing`] counts them, so the caller decides (the forecast
//! harness refuses series with missing values unless asked to interpolate,
//! and says where the first gap is). Timestamps that go backwards, repeat or
//! fall between steps are errors at their line.

use std::path::Path;

use crate::TraceError;
use crate::columnar;
use crate::error::{Fields, for_each_csv_row};
use crate::input::{Source, quote};

/// At most this many points per series (ten years of minutes): a
/// timestamp far in the future would otherwise allocate a huge gap.
pub const MAX_POINTS: usize = 5_300_000;

/// A regularly sampled series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// What it is (the column name, or the file's stem).
    pub name: String,
    /// Seconds since 1970-01-01 UTC of the first value (0 when the file has
    /// only relative times).
    pub start_unix_s: i64,
    /// Seconds between values.
    pub step_s: u64,
    /// The values; NaN where the file has no value.
    pub values: Vec<f64>,
}

impl Series {
    /// Values that are missing (NaN).
    pub fn missing(&self) -> usize {
        self.values.iter().filter(|v| v.is_nan()).count()
    }

    /// Index of the first missing value.
    pub fn first_missing(&self) -> Option<usize> {
        self.values.iter().position(|v| v.is_nan())
    }

    /// The series over blocks of `factor` steps, summed (counts) or
    /// averaged (rates, levels). A block with a missing value is missing; a
    /// trailing partial block is left out and its length returned.
    pub fn aggregate(&self, factor: usize, sum: bool) -> (Series, usize) {
        let factor = factor.max(1);
        let divisor = if sum { 1.0 } else { factor as f64 };
        let values = self.values.chunks_exact(factor).map(|c| c.iter().sum::<f64>() / divisor).collect();
        let left_out = self.values.len() % factor;
        (Series { values, step_s: self.step_s.saturating_mul(factor as u64), ..self.clone() }, left_out)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM UTC` of `seconds` since 1970-01-01 (the inverse of
/// [`days_from_civil`], Howard Hinnant's civil-from-days).
pub fn format_utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60)
}

/// `text` without a trailing UTC designator (`Z` or `+00:00`).
fn without_utc_suffix(text: &str) -> &str {
    let text = text.trim();
    text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00")).unwrap_or(text)
}

/// Seconds since 1970-01-01 UTC of an event time: as
/// [`parse_utc_seconds`], but a fraction of a second is dropped (events are
/// counted per step of at least a second).
pub fn parse_utc_event_seconds(text: &str) -> Option<i64> {
    let text = without_utc_suffix(text);
    match text.rsplit_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) => {
            parse_utc_seconds(whole)
        }
        _ => parse_utc_seconds(text),
    }
}

/// Whole seconds since 1970-01-01 UTC of `YYYY-MM-DD[ T]HH:MM[:SS[.fff]]`,
/// optionally followed by `Z` or `+00:00` (other offsets are refused: the
/// files here are UTC). Fractions of a second must be zero.
pub fn parse_utc_seconds(text: &str) -> Option<i64> {
    let (date, time) = without_utc_suffix(text).split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) || d.next().is_some() {
        return None;
    }
    let mut t = time.split(':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: i64 = match t.next() {
        None => 0,
        Some(s) => {
            let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
            if !fraction.bytes().all(|b| b == b'0') {
                return None;
            }
            whole.parse().ok()?
        }
    };
    if t.next().is_some() || !(0..24).contains(&hour) || !(0..60).contains(&minute) || !(0..60).contains(&second) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The columns of a CSV file's header, or of a Parquet file (for listing
/// what can be read).
pub fn columns<'a>(source: impl Into<Source<'a>>) -> Result<Vec<String>, TraceError> {
    let source = source.into();
    if columnar::is_parquet(source) {
        return columnar::column_names(source);
    }
    // The CSV reader's own header record (a quoted name may span lines).
    let mut reader = crate::input::csv_reader(source, true)?;
    match reader.headers() {
        Ok(h) => Ok(h.iter().map(|s| s.trim().to_string()).collect()),
        Err(e) => Err(crate::input::csv_error(source.name(), &mut reader, e)),
    }
}

/// Reads column `value_column` of a CSV file whose first column is a UTC
/// timestamp, as a regular series (see [`read_columns`]).
pub fn read_column<'a>(source: impl Into<Source<'a>>, value_column: &str) -> Result<Series, TraceError> {
    let source = source.into();
    let mut all = read_columns(source, &[value_column])?;
    all.pop().ok_or_else(|| TraceError::file(source.name(), "no column read"))
}

/// Reads `value_columns` of a CSV file whose first column is a UTC
/// timestamp, in one pass, as regular series on the same grid. The step is
/// the smallest difference between consecutive timestamps; a larger
/// difference that is a multiple of it is a gap (NaN values), anything else
/// is an error. An empty cell (or `NaN`) is a missing value; other text that
/// is not a number is an error.
pub fn read_columns<'a>(source: impl Into<Source<'a>>, value_columns: &[&str]) -> Result<Vec<Series>, TraceError> {
    let source = source.into();
    let path = source.name();
    let header = columns(source)?;
    let time_column = time_column_of(path, &header, value_columns)?;
    if columnar::is_parquet(source) {
        return read_parquet_columns(source, &time_column, value_columns);
    }
    let mut required = vec![time_column.as_str()];
    required.extend_from_slice(value_columns);
    let mut times: Vec<(i64, u64)> = Vec::new();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); value_columns.len()];
    for_each_csv_row(source, &required, |f| {
        let time = timestamp(f)?;
        if let Some(&(previous, _)) = times.last()
            && time <= previous
        {
            return Err(f.invalid(0, "timestamps must increase; this one is not after the previous row's"));
        }
        if times.len() >= MAX_POINTS {
            return Err(f.invalid(0, format!("more than {MAX_POINTS} rows in one series")));
        }
        for (i, column) in values.iter_mut().enumerate() {
            let text = f.text(i + 1)?.trim();
            column.push(if text.is_empty() || text.eq_ignore_ascii_case("nan") { f64::NAN } else { f.f64(i + 1)? });
        }
        times.push((time, f.line()));
        Ok(())
    })?;
    let grid = Grid::of(path, &times)?;
    Ok(value_columns.iter().zip(values).map(|(name, v)| grid.place(name, &v)).collect())
}

/// The first column's name, once every value column is known to be another
/// column of the file.
fn time_column_of(path: &Path, header: &[String], value_columns: &[&str]) -> Result<String, TraceError> {
    let Some(time_column) = header.first().cloned() else {
        return Err(TraceError::parse(path, 1, 0, None, "empty file: expected a header row"));
    };
    if let Some(missing) = value_columns.iter().find(|c| **c == time_column || !header.iter().any(|h| h == *c)) {
        return Err(TraceError::parse(
            path,
            1,
            0,
            None,
            format!(
                "no value column `{}`; the columns after the timestamp `{}` are {}",
                quote(missing),
                quote(&time_column),
                quote(&header[1..].join(", "))
            ),
        ));
    }
    Ok(time_column)
}

/// [`read_columns`] on a Parquet file: the first column holds timestamps
/// (a timestamp type, or UTC text); positions in errors are row numbers.
fn read_parquet_columns(
    source: Source<'_>,
    time_column: &str,
    value_columns: &[&str],
) -> Result<Vec<Series>, TraceError> {
    let mut names = vec![time_column];
    names.extend_from_slice(value_columns);
    let read = columnar::read_columns(source, &names)?;
    parquet_series(source.name(), &names, &read)
}

/// Series from Parquet columns already read: `columns[0]` (named
/// `names[0]`) holds the timestamps, the others the values.
fn parquet_series(path: &Path, names: &[&str], columns: &[columnar::Values]) -> Result<Vec<Series>, TraceError> {
    let (time, values) = columns.split_first().ok_or_else(|| TraceError::file(path, "no time column"))?;
    let at = |row: usize, message: String| TraceError::parse(path, row as u64 + 1, 1, Some(names[0]), message);
    if time.len() > MAX_POINTS {
        return Err(TraceError::file(path, format!("more than {MAX_POINTS} rows in one series")));
    }
    let mut times: Vec<(i64, u64)> = Vec::with_capacity(time.len());
    for row in 0..time.len() {
        let t = parquet_time(time, row, false).map_err(|m| at(row, m))?;
        if let Some(&(previous, _)) = times.last()
            && t <= previous
        {
            return Err(at(row, "timestamps must increase; this one is not after the previous row's".into()));
        }
        times.push((t, row as u64 + 1));
    }
    let mut numbers = Vec::with_capacity(values.len());
    for (column, name) in values.iter().zip(&names[1..]) {
        if let columnar::Values::Text(_) = column {
            return Err(TraceError::file(path, format!("column `{}` holds text, not numbers", quote(name))));
        }
        numbers.push((0..column.len()).map(|row| column.number(row).unwrap_or(f64::NAN)).collect::<Vec<f64>>());
    }
    let grid = Grid::of(path, &times)?;
    Ok(names[1..].iter().zip(numbers).map(|(name, v)| grid.place(name, &v)).collect())
}

/// Seconds since 1970 of row `row` of a Parquet time column: a timestamp
/// type (floored to the second), or text in UTC (`event` accepts
/// fractional seconds).
fn parquet_time(column: &columnar::Values, row: usize, event: bool) -> Result<i64, String> {
    match column {
        columnar::Values::TimeMs(v) => v[row].map(|ms| ms.div_euclid(1000)).ok_or_else(|| "is empty".to_string()),
        columnar::Values::Text(v) => {
            let text = v[row].as_deref().ok_or("is empty")?;
            let parsed = if event { parse_utc_event_seconds(text) } else { parse_utc_seconds(text) };
            parsed.ok_or_else(|| {
                format!("expected a UTC time such as 2022-01-01 00:00:00, found `{}`", quote(text.trim()))
            })
        }
        other => Err(format!("expected timestamps, the column holds {} values", other.kind())),
    }
}

/// Every numeric column of a timestamped CSV file as a series (a column is
/// numeric when its first non-empty value parses as a number), for checking
/// a file whole.
pub fn read_numeric_columns(source: Source<'_>) -> Result<Vec<Series>, TraceError> {
    let header = columns(source)?;
    if columnar::is_parquet(source) {
        // Every column once; the text ones are left out.
        let names: Vec<&str> = header.iter().map(String::as_str).collect();
        if names.is_empty() {
            return Err(TraceError::file(source.name(), "no columns"));
        }
        let read = columnar::read_columns(source, &names)?;
        let (names, columns): (Vec<&str>, Vec<columnar::Values>) = names
            .into_iter()
            .zip(read)
            .enumerate()
            .filter(|(i, (_, v))| *i == 0 || !matches!(v, columnar::Values::Text(_)))
            .map(|(_, pair)| pair)
            .unzip();
        return parquet_series(source.name(), &names, &columns);
    }
    let mut numeric = vec![false; header.len()];
    let mut decided = vec![false; header.len()];
    let mut reader = crate::input::csv_reader(source, true)?;
    let mut record = csv::StringRecord::new();
    while decided.iter().skip(1).any(|d| !d) && reader.read_record(&mut record).unwrap_or(false) {
        for (i, field) in record.iter().enumerate().skip(1).take(header.len().saturating_sub(1)) {
            let field = field.trim();
            if !decided[i] && !field.is_empty() {
                decided[i] = true;
                numeric[i] = field.parse::<f64>().is_ok();
            }
        }
    }
    // With no numeric column the timestamps are still read, so that their
    // errors are reported.
    let names: Vec<&str> = header.iter().zip(&numeric).skip(1).filter(|(_, n)| **n).map(|(h, _)| h.as_str()).collect();
    read_columns(source, &names)
}

fn timestamp(f: &Fields<'_>) -> Result<i64, TraceError> {
    let text = f.non_empty(0)?;
    parse_utc_seconds(text).ok_or_else(|| {
        f.invalid(0, format!("expected a UTC time such as 2022-01-01 00:00:00, found `{}`", quote(text.trim())))
    })
}

/// The regular grid of a file's timestamps: where each row's values go.
struct Grid {
    start: i64,
    step_s: u64,
    /// Position of each row on the grid.
    positions: Vec<usize>,
}

impl Grid {
    fn of(path: &Path, times: &[(i64, u64)]) -> Result<Grid, TraceError> {
        let Some(&(start, _)) = times.first() else {
            return Err(TraceError::parse(path, 0, 0, None, "no data rows"));
        };
        let step = times.windows(2).map(|w| w[1].0 - w[0].0).min().unwrap_or(3600);
        let mut positions = Vec::with_capacity(times.len());
        for &(time, line) in times {
            let offset = time - start;
            if offset % step != 0 {
                return Err(TraceError::parse(
                    path,
                    line,
                    1,
                    None,
                    format!("timestamp is not on the series' {step}-second grid that starts at the first row"),
                ));
            }
            match usize::try_from(offset / step) {
                Ok(index) if index < MAX_POINTS => positions.push(index),
                _ => {
                    return Err(TraceError::parse(
                        path,
                        line,
                        1,
                        None,
                        format!("timestamp is more than {MAX_POINTS} steps of {step} s after the first row"),
                    ));
                }
            }
        }
        Ok(Grid { start, step_s: u64::try_from(step).unwrap_or(3600), positions })
    }

    /// One column's values (one per row) on the grid, NaN in the gaps.
    fn place(&self, name: &str, rows: &[f64]) -> Series {
        let mut values = vec![f64::NAN; self.positions.last().map_or(0, |p| p + 1)];
        for (&position, &v) in self.positions.iter().zip(rows) {
            values[position] = v;
        }
        Series { name: name.to_string(), start_unix_s: self.start, step_s: self.step_s, values }
    }
}

/// Counts arrivals per `step_hours` from a file with an `arrival_time`
/// column in hours since the start (the GAIA job traces). Arrivals must not
/// be negative; order does not matter. The series runs from hour 0 to the
/// step holding the last arrival.
pub fn read_arrival_counts<'a>(source: impl Into<Source<'a>>, step_hours: f64) -> Result<Series, TraceError> {
    let source = source.into();
    let path = source.name();
    if !(step_hours.is_finite() && step_hours > 0.0) {
        return Err(TraceError::file(
            path,
            format!("the counting step must be a positive number of hours, not {step_hours}"),
        ));
    }
    let mut counts: Vec<f64> = Vec::new();
    for_each_csv_row(source, &["arrival_time"], |f| {
        let hours = f.non_negative_f64(0)?;
        let bucket = nimbus_sim::params::round_to_u64((hours / step_hours).floor())
            .and_then(|b| usize::try_from(b).ok())
            .filter(|&b| b < MAX_POINTS)
            .ok_or_else(|| f.invalid(0, format!("arrival more than {MAX_POINTS} steps after hour 0")))?;
        if counts.len() <= bucket {
            counts.resize(bucket + 1, 0.0);
        }
        counts[bucket] += 1.0;
        Ok(())
    })?;
    if counts.is_empty() {
        return Err(TraceError::parse(path, 0, 0, None, "no arrivals"));
    }
    let step_s = nimbus_sim::params::round_to_u64(step_hours * 3600.0).filter(|&s| s > 0).unwrap_or(3600);
    let name = path.file_stem().map_or_else(|| "arrivals".to_string(), |s| s.to_string_lossy().into_owned());
    Ok(Series { name, start_unix_s: 0, step_s, values: counts })
}

/// Events of a CSV or Parquet file with a UTC timestamp column
/// `time_column`, counted (or, with `value_column`, that column summed) per
/// `step_s` seconds, from the step of the earliest event to the step of the
/// latest; order does not matter. For Amazon Redset (Parquet as published,
/// or exported to CSV): `arrival_timestamp` and, for bytes,
/// `mbytes_scanned`. An empty value (or null) in the value column counts as
/// zero (Redset leaves the bytes of queries that scan nothing empty); a
/// value that is not a non-negative number is an error.
pub fn read_event_aggregates<'a>(
    source: impl Into<Source<'a>>,
    time_column: &str,
    value_column: Option<&str>,
    step_s: u64,
) -> Result<Series, TraceError> {
    let source = source.into();
    let path = source.name();
    if step_s == 0 {
        return Err(TraceError::file(path, "the aggregation step must be at least one second"));
    }
    let mut buckets = Buckets { step: i64::try_from(step_s).unwrap_or(i64::MAX), step_s, sums: Default::default() };
    let mut columns = vec![time_column];
    columns.extend(value_column);
    if columnar::is_parquet(source) {
        let read = columnar::read_columns(source, &columns)?;
        let at = |row: usize, c: usize, message: String| {
            TraceError::parse(path, row as u64 + 1, c as u64 + 1, Some(columns[c]), message)
        };
        for row in 0..read[0].len() {
            let time = parquet_time(&read[0], row, true).map_err(|m| at(row, 0, m))?;
            let value = match read.get(1) {
                None => 1.0,
                Some(columnar::Values::Text(_)) => return Err(at(row, 1, "holds text, not numbers".into())),
                Some(v) => match v.number(row) {
                    None => 0.0,
                    Some(x) if x.is_finite() && x >= 0.0 => x,
                    Some(x) => return Err(at(row, 1, format!("expected a number ≥ 0, found {x}"))),
                },
            };
            buckets.add(time, value).map_err(|m| at(row, 0, m))?;
        }
    } else {
        for_each_csv_row(source, &columns, |f| {
            let text = f.non_empty(0)?;
            let time = parse_utc_event_seconds(text).ok_or_else(|| {
                f.invalid(
                    0,
                    format!("expected a UTC time such as 2024-03-01 00:00:05.123, found `{}`", quote(text.trim())),
                )
            })?;
            let value = match value_column {
                None => 1.0,
                Some(_) if f.text(1)?.trim().is_empty() => 0.0,
                Some(_) => f.non_negative_f64(1)?,
            };
            buckets.add(time, value).map_err(|m| f.invalid(0, m))
        })?;
    }
    let name = value_column.unwrap_or("events").to_string();
    buckets.finish(name).ok_or_else(|| TraceError::parse(path, 0, 0, None, "no events"))
}

/// Sums per step of events at arbitrary times.
struct Buckets {
    step: i64,
    step_s: u64,
    sums: std::collections::BTreeMap<i64, f64>,
}

impl Buckets {
    fn add(&mut self, time: i64, value: f64) -> Result<(), String> {
        let bucket = time.div_euclid(self.step);
        if let (Some((&first, _)), Some((&last, _))) = (self.sums.first_key_value(), self.sums.last_key_value()) {
            let span = last.max(bucket) - first.min(bucket);
            if usize::try_from(span).map_or(true, |s| s >= MAX_POINTS) {
                return Err(format!("events span more than {MAX_POINTS} steps of {} s", self.step_s));
            }
        }
        *self.sums.entry(bucket).or_insert(0.0) += value;
        Ok(())
    }

    fn finish(self, name: String) -> Option<Series> {
        let (&first, _) = self.sums.first_key_value()?;
        let (&last, _) = self.sums.last_key_value()?;
        let mut values = vec![0.0; usize::try_from(last - first + 1).unwrap_or(0)];
        for (bucket, v) in self.sums {
            if let Ok(i) = usize::try_from(bucket - first) {
                values[i] = v;
            }
        }
        Some(Series { name, start_unix_s: first * self.step, step_s: self.step_s, values })
    }
}

/// The invocations of every function in an Azure Functions 2019 day file,
/// summed per minute (1,440 values).
pub fn azure2019_per_minute<'a>(source: impl Into<Source<'a>>) -> Result<Series, TraceError> {
    let source = source.into();
    let path = source.name();
    let mut totals = vec![0.0f64; 1440];
    crate::faas::for_each_azure2019_invocation(source, |row| {
        for (total, count) in totals.iter_mut().zip(&row.per_minute) {
            *total += f64::from(*count);
        }
    })?;
    let name = path.file_stem().map_or_else(|| "invocations".to_string(), |s| s.to_string_lossy().into_owned());
    Ok(Series { name, start_unix_s: 0, step_s: 60, values: totals })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> (std::path::PathBuf, Vec<u8>) {
        (std::path::PathBuf::from("t.csv"), text.as_bytes().to_vec())
    }

    #[test]
    fn utc_timestamps() {
        assert_eq!(parse_utc_seconds("1970-01-01 00:00"), Some(0));
        assert_eq!(parse_utc_seconds("1970-01-02T01:00:30Z"), Some(86_400 + 3600 + 30));
        assert_eq!(parse_utc_seconds("2022-01-01 00:15:00.000"), Some(1_640_996_100));
        assert_eq!(parse_utc_seconds("2022-01-01 00:15:00.5"), None);
        assert_eq!(parse_utc_seconds("2022-13-01 00:00"), None);
        assert_eq!(parse_utc_seconds("2022-01-01 24:00"), None);
        assert_eq!(parse_utc_seconds("2022-01-01 00:00+02:00"), None);
        assert_eq!(parse_utc_seconds("yesterday"), None);
    }

    #[test]
    fn utc_formatting_inverts_parsing() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_640_996_100), "2022-01-01 00:15 UTC");
        for text in ["1999-12-31 23:59", "2024-02-29 12:00", "1900-03-01 00:00"] {
            let seconds = parse_utc_seconds(text).expect("valid");
            assert_eq!(format_utc(seconds), format!("{text} UTC"));
        }
    }

    #[test]
    fn several_columns_in_one_pass() {
        let (p, b) = bytes("time,a,b\n2022-01-01 00:00,1,10\n2022-01-01 01:00,2,\n2022-01-01 03:00,3,30\n");
        let both = read_columns(Source::bytes(&p, &b), &["b", "a"]).expect("reads");
        assert_eq!(both[0].name, "b");
        let shown = |s: &Series| s.values.iter().map(|v| if v.is_nan() { -1.0 } else { *v }).collect::<Vec<_>>();
        assert_eq!(shown(&both[0]), vec![10.0, -1.0, -1.0, 30.0]);
        assert_eq!(shown(&both[1]), vec![1.0, 2.0, -1.0, 3.0]);
        assert_eq!(both[1].step_s, 3600);
    }

    #[test]
    fn column_with_gap_and_empty_cell() {
        let (p, b) = bytes("time,a,b\n2022-01-01 00:00,1,x\n2022-01-01 01:00,,y\n2022-01-01 03:00,4,z\n");
        let s = read_column(Source::bytes(&p, &b), "a").expect("accepted");
        assert_eq!(s.step_s, 3600);
        assert_eq!(s.start_unix_s, 1_640_995_200);
        assert_eq!(s.values.len(), 4);
        assert_eq!(s.values[0], 1.0);
        assert!(s.values[1].is_nan() && s.values[2].is_nan());
        assert_eq!(s.values[3], 4.0);
        assert_eq!((s.missing(), s.first_missing()), (2, Some(1)));
    }

    #[test]
    fn column_errors_say_where() {
        let (p, b) = bytes("time,a\n2022-01-01 00:00,1\n2022-01-01 00:00,2\n");
        let e = read_column(Source::bytes(&p, &b), "a").expect_err("refused").to_string();
        assert!(e.contains("t.csv:3:1") && e.contains("increase"), "{e}");
        let (p, b) = bytes("time,a\n2022-01-01 00:00,1\n2022-01-01 00:30,2\n2022-01-01 01:45,3\n");
        let e = read_column(Source::bytes(&p, &b), "a").expect_err("refused").to_string();
        assert!(e.contains("t.csv:4") && e.contains("grid"), "{e}");
        let (p, b) = bytes("time,a\n2022-01-01 00:00,one\n");
        let e = read_column(Source::bytes(&p, &b), "a").expect_err("refused").to_string();
        assert!(e.contains("t.csv:2:2") && e.contains("`one`"), "{e}");
        let (p, b) = bytes("time,a\n2022-01-01 00:00,1\n");
        let e = read_column(Source::bytes(&p, &b), "b").expect_err("refused").to_string();
        assert!(e.contains("no value column `b`") && e.contains("a"), "{e}");
        let (p, b) = bytes("time,a\n2022-01-01 00:00,1\n2022-01-01 01:00,1\n3022-01-01 00:00,1\n");
        let e = read_column(Source::bytes(&p, &b), "a").expect_err("refused").to_string();
        assert!(e.contains("t.csv:4") && e.contains("steps"), "{e}");
    }

    #[test]
    fn arrivals_counted_per_hour() {
        let (p, b) = bytes("arrival_time,length,cpus\n0.0,1,1\n0.5,1,1\n2.25,1,1\n");
        let s = read_arrival_counts(Source::bytes(&p, &b), 1.0).expect("accepted");
        assert_eq!(s.values, vec![2.0, 0.0, 1.0]);
        assert_eq!(s.step_s, 3600);
        let (p, b) = bytes("arrival_time,length,cpus\n-1,1,1\n");
        assert!(
            read_arrival_counts(Source::bytes(&p, &b), 1.0).expect_err("refused").to_string().contains("t.csv:2:1")
        );
        let (p, b) = bytes("arrival_time,length,cpus\n1e300,1,1\n");
        assert!(read_arrival_counts(Source::bytes(&p, &b), 1.0).is_err());
    }

    #[test]
    fn events_counted_and_summed_per_hour() {
        let (p, b) = bytes(
            "query_id,arrival_timestamp,mbytes_scanned\n1,2024-03-01 00:10:00.5,10\n2,2024-03-01 02:59:59,5\n3,2024-03-01 00:00:00,\n",
        );
        let counts = read_event_aggregates(Source::bytes(&p, &b), "arrival_timestamp", None, 3600).expect("reads");
        assert_eq!(counts.values, vec![2.0, 0.0, 1.0]);
        assert_eq!(counts.start_unix_s, 1_709_251_200);
        let bytes_scanned =
            read_event_aggregates(Source::bytes(&p, &b), "arrival_timestamp", Some("mbytes_scanned"), 3600)
                .expect("reads");
        assert_eq!(bytes_scanned.values, vec![10.0, 0.0, 5.0]);
        let (p, b) = bytes("arrival_timestamp\n2024-03-01 00:10:00\n1024-03-01 00:10:00\n");
        let e = read_event_aggregates(Source::bytes(&p, &b), "arrival_timestamp", None, 1)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("t.csv:3") && e.contains("span"), "{e}");
        let (p, b) = bytes("arrival_timestamp\nsoon\n");
        let e = read_event_aggregates(Source::bytes(&p, &b), "arrival_timestamp", None, 60)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("t.csv:2:1") && e.contains("`soon`"), "{e}");
        assert_eq!(parse_utc_event_seconds("1970-01-01 00:00:01.999Z"), Some(1));
        assert_eq!(parse_utc_event_seconds("1970-01-01 00:00:01.x"), None);
    }

    #[test]
    fn aggregation() {
        let s = Series { name: "x".into(), start_unix_s: 0, step_s: 600, values: vec![1.0, 2.0, 3.0, 4.0, 5.0] };
        let (sum, left) = s.aggregate(2, true);
        assert_eq!((sum.values, sum.step_s, left), (vec![3.0, 7.0], 1200, 1));
        let (mean, _) = s.aggregate(2, false);
        assert_eq!(mean.values, vec![1.5, 3.5]);
    }

    #[cfg(feature = "parquet")]
    #[test]
    fn parquet_files_read_like_csv_ones() {
        use columnar::{Values, write_columns};
        // Hourly, with a gap at 02:00; a text column is not a series.
        let file = write_columns(&[
            ("timestamp", &Values::TimeMs(vec![Some(0), Some(3_600_000), Some(10_800_000)])),
            ("ci", &Values::Float(vec![Some(100.0), None, Some(80.0)])),
            ("zone", &Values::Text(vec![Some("BE".into()), Some("BE".into()), None])),
            ("count", &Values::Int(vec![Some(1), Some(2), Some(3)])),
        ])
        .expect("writes");
        let source = Source::bytes(Path::new("ci.parquet"), &file);
        let all = read_numeric_columns(source).expect("reads");
        assert_eq!(all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["ci", "count"]);
        assert_eq!(all[1].values[..2], [1.0, 2.0]);
        assert!(all[1].values[2].is_nan() && all[1].values[3] == 3.0);
        let ci = read_column(source, "ci").expect("reads");
        assert_eq!((ci.step_s, ci.start_unix_s, ci.missing()), (3600, 0, 2));
        let e = read_column(source, "zone").expect_err("text").to_string();
        assert!(e.contains("holds text"), "{e}");
        let e = read_column(source, "nope").expect_err("absent").to_string();
        assert!(e.contains("no value column `nope`"), "{e}");
        // Events: counted per hour, a null value counts as zero.
        let events = write_columns(&[
            ("arrival_timestamp", &Values::TimeMs(vec![Some(5_000), Some(7_000), Some(3_605_000)])),
            ("mbytes_scanned", &Values::Float(vec![Some(2.0), None, Some(4.0)])),
        ])
        .expect("writes");
        let source = Source::bytes(Path::new("redset.parquet"), &events);
        let counts = read_event_aggregates(source, "arrival_timestamp", None, 3600).expect("reads");
        assert_eq!(counts.values, [2.0, 1.0]);
        let bytes = read_event_aggregates(source, "arrival_timestamp", Some("mbytes_scanned"), 3600).expect("reads");
        assert_eq!(bytes.values, [2.0, 4.0]);
    }
}
