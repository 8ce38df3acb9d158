//! Grid carbon intensity over time (gCO2/kWh), piecewise constant: each
//! value holds from its timestamp until the next, as OpenDC's carbon model
//! steps through its trace.
//!
//! Read from any timestamped series file [`nimbus_trace::series`] reads:
//! OpenDC's carbon Parquet and CSV files (`timestamp`, `carbon_intensity`),
//! Electricity Maps hourly files (`Carbon Intensity gCO₂eq/kWh (LCA)` or
//! `(direct)`), the GreenDCC wide files (one column per zone). A gap, an
//! empty cell or a negative value is an error that names the file and the
//! time, never filled in silently.

use std::path::Path;

use nimbus_trace::series::{Series, format_utc};

/// A carbon-intensity trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Intensity {
    /// What it is (file and column).
    pub name: String,
    /// ms since 1970-01-01 UTC of the first value.
    pub start_ms: i64,
    /// ms between values.
    pub step_ms: i64,
    /// gCO2/kWh.
    pub values: Vec<f64>,
}

/// The column names tried, in order, when a scenario names none.
pub const DEFAULT_COLUMNS: [&str; 3] =
    ["carbon_intensity", "Carbon Intensity gCO₂eq/kWh (LCA)", "Carbon Intensity gCO₂eq/kWh (direct)"];

impl Intensity {
    /// Checks a series: no gaps, no negative or non-finite values.
    pub fn from_series(series: Series, origin: &str) -> Result<Intensity, String> {
        if series.values.is_empty() {
            return Err(format!("{origin}: no carbon-intensity values"));
        }
        let step_ms = series.step_s as i64 * 1000;
        let start_ms = series.start_unix_s * 1000;
        for (i, v) in series.values.iter().enumerate() {
            let at = format_utc(series.start_unix_s + i as i64 * series.step_s as i64);
            if v.is_nan() {
                let missing = series.missing();
                return Err(format!(
                    "{origin}: no carbon intensity at {at} (a missing hour or empty cell; {missing} missing in all); fill the gaps first"
                ));
            }
            if !v.is_finite() || *v < 0.0 {
                return Err(format!("{origin}: carbon intensity {v} gCO2/kWh at {at} is negative or not finite"));
            }
        }
        Ok(Intensity { name: format!("{origin} [{}]", series.name), start_ms, step_ms, values: series.values })
    }

    /// Reads `column` (or the first of [`DEFAULT_COLUMNS`] present) of a
    /// timestamped series file.
    pub fn read(path: &Path, column: Option<&str>) -> Result<Intensity, String> {
        let source = nimbus_trace::Source::file(path);
        let origin = path.display().to_string();
        let header = nimbus_trace::series::columns(source).map_err(|e| e.to_string())?;
        let column = match column {
            Some(c) => {
                if !header.iter().any(|h| h == c) {
                    return Err(format!("{origin}: no column `{c}` (unknown zone?); columns: {}", list(&header)));
                }
                c.to_string()
            }
            None => DEFAULT_COLUMNS
                .iter()
                .find(|c| header.iter().any(|h| h == *c))
                .map(|c| c.to_string())
                .ok_or_else(|| format!("{origin}: no carbon-intensity column; name one of: {}", list(&header)))?,
        };
        let series = nimbus_trace::series::read_column(source, &column).map_err(|e| e.to_string())?;
        Intensity::from_series(series, &origin)
    }

    /// ms since 1970 just after the last value's interval.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.step_ms * self.values.len() as i64
    }

    /// The value in force at `ms` (ms since 1970), and when the next value
    /// starts; `None` outside the trace.
    pub fn at(&self, ms: i64) -> Option<(f64, i64)> {
        if ms < self.start_ms || ms >= self.end_ms() {
            return None;
        }
        let i = (ms - self.start_ms) / self.step_ms;
        Some((self.values[i as usize], self.start_ms + (i + 1) * self.step_ms))
    }

    /// Whether the trace covers [from_ms, to_ms); if not, an error that
    /// says which span is missing.
    pub fn covers(&self, from_ms: i64, to_ms: i64) -> Result<(), String> {
        if from_ms >= self.start_ms && to_ms <= self.end_ms() {
            return Ok(());
        }
        let fmt = |ms: i64| format_utc(ms.div_euclid(1000));
        Err(format!(
            "{} covers {} to {}, but the run spans {} to {}",
            self.name,
            fmt(self.start_ms),
            fmt(self.end_ms()),
            fmt(from_ms),
            fmt(to_ms)
        ))
    }

    /// A synthetic diurnal trace (stand-in when no file is given):
    /// `mean`·(1 + `swing`·cos(2π(h − 3)/24)), lowest at 15:00 UTC when solar
    /// output peaks, for `days` days from `start_ms`.
    pub fn diurnal(start_ms: i64, days: u32, mean: f64, swing: f64) -> Intensity {
        let values = (0..days as usize * 24)
            .map(|h| mean * (1.0 + swing * (2.0 * std::f64::consts::PI * ((h % 24) as f64 - 3.0) / 24.0).cos()))
            .collect();
        Intensity { name: "synthetic diurnal intensity".into(), start_ms, step_ms: 3_600_000, values }
    }
}

fn list(header: &[String]) -> String {
    let shown: Vec<&str> = header.iter().take(12).map(String::as_str).collect();
    let more = header.len().saturating_sub(12);
    if more > 0 { format!("{}, … ({more} more)", shown.join(", ")) } else { shown.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_trace::Source;

    fn read_bytes(csv: &str, column: &str) -> Result<Intensity, String> {
        let series = nimbus_trace::series::read_column(Source::bytes(Path::new("ci.csv"), csv.as_bytes()), column)
            .map_err(|e| e.to_string())?;
        Intensity::from_series(series, "ci.csv")
    }

    #[test]
    fn steps_hold_until_the_next_value() {
        let ci = read_bytes(
            "timestamp,carbon_intensity\n2022-01-01T00:00:00Z,100\n2022-01-01T01:00:00Z,50\n",
            "carbon_intensity",
        )
        .expect("ok");
        let t0 = ci.start_ms;
        assert_eq!(ci.at(t0), Some((100.0, t0 + 3_600_000)));
        assert_eq!(ci.at(t0 + 3_599_999).expect("ok").0, 100.0);
        assert_eq!(ci.at(t0 + 3_600_000).expect("ok").0, 50.0);
        assert_eq!(ci.at(t0 + 7_200_000), None);
        assert_eq!(ci.at(t0 - 1), None);
        assert!(ci.covers(t0, t0 + 7_200_000).is_ok());
        let e = ci.covers(t0, t0 + 3 * 3_600_000).expect_err("an error");
        assert!(e.contains("to 2022-01-01 02:00 UTC, but the run spans") && e.contains("03:00"), "{e}");
    }

    #[test]
    fn gaps_and_negative_values_are_refused() {
        let gap = "timestamp,ci\n2022-01-01T00:00:00Z,100\n2022-01-01T01:00:00Z,50\n2022-01-01T03:00:00Z,70\n";
        let e = read_bytes(gap, "ci").expect_err("an error");
        assert!(e.contains("no carbon intensity at 2022-01-01 02:00 UTC") && e.contains("1 missing"), "{e}");
        let negative = "timestamp,ci\n2022-01-01T00:00:00Z,100\n2022-01-01T01:00:00Z,-5\n";
        let e = read_bytes(negative, "ci").expect_err("an error");
        assert!(e.contains("-5") && e.contains("negative") && e.contains("01:00 UTC"), "{e}");
    }

    #[test]
    fn diurnal_is_lowest_mid_afternoon() {
        let ci = Intensity::diurnal(0, 2, 300.0, 0.4);
        assert_eq!(ci.values.len(), 48);
        let min = ci.values.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(ci.values[15], min);
        assert!((ci.values[3] - 420.0).abs() < 1e-9);
    }
}
