//! The error type of every trace reader.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::input::{Source, csv_error, csv_reader, quote};

/// Where in a file a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number (0 when the problem concerns the whole file).
    pub line: u64,
    /// 1-based column (field number in delimited files; 0 when unknown).
    pub column: u64,
    /// The column's name, when the format names it.
    pub field: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, " (`{field}`)")?;
        }
        Ok(())
    }
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A row or value is malformed.
    #[error("{location}: {message}")]
    Parse {
        /// Where.
        location: Location,
        /// What was expected and what was found.
        message: String,
    },
}

impl TraceError {
    /// A parse error at `path:line:column`.
    pub fn parse(path: &Path, line: u64, column: u64, field: Option<&str>, message: impl Into<String>) -> Self {
        TraceError::Parse {
            // A field name comes from the input: quoted (bounded, escaped) like
            // every other echo.
            location: Location { path: path.to_path_buf(), line, column, field: field.map(quote) },
            message: message.into(),
        }
    }

    /// A problem with the file as a whole.
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self::parse(path, 0, 0, None, message)
    }

    /// The I/O error of opening or reading `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TraceError::Io { path: path.to_path_buf(), source }
    }
}

/// Typed access to the fields of one delimited row, with errors that say
/// where the bad value is and what was expected.
pub struct Fields<'a> {
    path: &'a Path,
    line: u64,
    names: &'a [&'a str],
    values: Vec<&'a str>,
    /// 0-based file column of each value (defaults to the value's index).
    columns: Vec<usize>,
}

impl<'a> Fields<'a> {
    /// Wraps the values of row `line` of `path`; `names` labels the columns.
    pub fn new(path: &'a Path, line: u64, names: &'a [&'a str], values: Vec<&'a str>) -> Self {
        let columns = (0..values.len()).collect();
        Fields { path, line, names, values, columns }
    }

    /// The row's line number.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Checks the row has exactly the expected number of columns.
    pub fn expect_len(&self) -> Result<(), TraceError> {
        if self.values.len() != self.names.len() {
            return Err(TraceError::parse(
                self.path,
                self.line,
                0,
                None,
                format!(
                    "expected {} columns ({}), found {}",
                    self.names.len(),
                    self.names.join(", "),
                    self.values.len()
                ),
            ));
        }
        Ok(())
    }

    fn error(&self, index: usize, message: String) -> TraceError {
        let column = self.columns.get(index).copied().unwrap_or(index) as u64 + 1;
        TraceError::parse(self.path, self.line, column, self.names.get(index).copied(), message)
    }

    /// The raw text of column `index`.
    pub fn text(&self, index: usize) -> Result<&'a str, TraceError> {
        self.values.get(index).copied().ok_or_else(|| self.error(index, "missing value".into()))
    }

    /// A finite float.
    pub fn f64(&self, index: usize) -> Result<f64, TraceError> {
        let text = self.text(index)?.trim();
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(index, format!("expected a number, found `{}`", quote(text)))),
        }
    }

    /// A finite float that is not negative.
    pub fn non_negative_f64(&self, index: usize) -> Result<f64, TraceError> {
        let v = self.f64(index)?;
        if v < 0.0 {
            return Err(self
                .error(index, format!("expected a non-negative number, found `{}`", quote(self.text(index)?.trim()))));
        }
        Ok(v)
    }

    /// A finite float strictly greater than zero.
    pub fn positive_f64(&self, index: usize) -> Result<f64, TraceError> {
        let v = self.f64(index)?;
        if v <= 0.0 {
            return Err(
                self.error(index, format!("expected a positive number, found `{}`", quote(self.text(index)?.trim())))
            );
        }
        Ok(v)
    }

    /// A non-negative integer (written as an integer or an integral float
    /// such as `4.0`).
    pub fn u64(&self, index: usize) -> Result<u64, TraceError> {
        let text = self.text(index)?.trim();
        if let Ok(v) = text.parse::<u64>() {
            return Ok(v);
        }
        match text.parse::<f64>() {
            Ok(v)
                if v.fract() == 0.0
                    && v < 9.0e15
                    && let Some(n) = nimbus_sim::params::round_to_u64(v) =>
            {
                Ok(n)
            }
            _ => Err(self.error(index, format!("expected a non-negative integer, found `{}`", quote(text)))),
        }
    }

    /// A positive integer.
    pub fn positive_u64(&self, index: usize) -> Result<u64, TraceError> {
        let v = self.u64(index)?;
        if v == 0 {
            return Err(self.error(index, "expected a positive integer, found `0`".into()));
        }
        Ok(v)
    }

    /// A non-empty string.
    pub fn non_empty(&self, index: usize) -> Result<&'a str, TraceError> {
        let text = self.text(index)?;
        if text.trim().is_empty() {
            return Err(self.error(index, "expected a non-empty value".into()));
        }
        Ok(text)
    }

    /// An error about column `index` with a custom message.
    pub fn invalid(&self, index: usize, message: impl Into<String>) -> TraceError {
        self.error(index, message.into())
    }
}

/// Reads a comma-separated file with a header row, checking the header
/// contains `required` columns, and calls `row` with each record's fields
/// arranged in `required` order.
pub fn read_csv_with_header<'a, T>(
    source: impl Into<Source<'a>>,
    required: &[&str],
    mut row: impl FnMut(&Fields<'_>) -> Result<T, TraceError>,
) -> Result<Vec<T>, TraceError> {
    let mut out = Vec::new();
    for_each_csv_row(source, required, |fields| {
        out.push(row(fields)?);
        Ok(())
    })?;
    Ok(out)
}

/// [`read_csv_with_header`] without collecting: `row` sees one record at a
/// time (for files too large to hold).
pub fn for_each_csv_row<'a>(
    source: impl Into<Source<'a>>,
    required: &[&str],
    mut row: impl FnMut(&Fields<'_>) -> Result<(), TraceError>,
) -> Result<(), TraceError> {
    let source = source.into();
    let path = source.name();
    let mut reader = csv_reader(source, true)?;
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_error(path, &mut reader, e)),
    };
    // The first column of each name (a day of Azure 2019 has 1,444).
    let mut index: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        index.entry(h.trim()).or_insert(i);
    }
    let mut positions = Vec::with_capacity(required.len());
    for name in required {
        match index.get(name).copied() {
            Some(p) => positions.push(p),
            None => {
                return Err(TraceError::parse(
                    path,
                    1,
                    0,
                    None,
                    format!(
                        "missing column `{}`; expected columns {}, found {}",
                        quote(name),
                        quote(&required.join(",")),
                        quote(&headers.iter().collect::<Vec<_>>().join(","))
                    ),
                ));
            }
        }
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, &mut reader, e)),
        }
        let offset = record.position().map_or(0, csv::Position::byte);
        let line = reader.get_mut().record_line(offset);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue; // blank line
        }
        if record.len() != headers.len() {
            return Err(TraceError::parse(
                path,
                line,
                0,
                None,
                format!("expected {} columns as in the header, found {}", headers.len(), record.len()),
            ));
        }
        let values: Vec<&str> = positions.iter().map(|&p| record.get(p).unwrap_or("")).collect();
        let mut fields = Fields::new(path, line, required, values);
        fields.columns.clone_from(&positions);
        row(&fields)?;
    }
    Ok(())
}
