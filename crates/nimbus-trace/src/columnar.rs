//! Parquet files, read column by column into plain vectors.
//!
//! OpenDC's workload and carbon traces, SURF's and Bitbrains' CPU-usage
//! fragments and Amazon Redset are published as Parquet. This module reads
//! named columns of such a file into [`Values`]: integers, floats, text and
//! timestamps (normalised to milliseconds since 1970-01-01), with `None`
//! where the file has a null. Nothing is converted silently: a column of a
//! type this module does not read (nested, boolean, fixed-length bytes) is
//! an error naming it.
//!
//! Reading goes through the `parquet` crate's column readers (no Arrow),
//! with snappy, zstd and gzip pages. That crate is not hardened against
//! every corrupt file: a panic inside it becomes an error naming the file,
//! and a file whose metadata claims more than [`MAX_ROWS`] rows or
//! [`MAX_COLUMN_BYTES`] of uncompressed data in one column chunk is refused
//! before any page is decoded.
//!
//! Built without the `parquet` feature, every function here returns an
//! error that says so.

use crate::TraceError;
use crate::input::Source;

/// The most rows a file may claim.
pub const MAX_ROWS: i64 = 100_000_000;

/// The most uncompressed bytes one column chunk may claim.
pub const MAX_COLUMN_BYTES: i64 = 1 << 30;

/// One column's values, in file order; `None` for a null.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// INT32 and INT64 columns that are not timestamps.
    Int(Vec<Option<i64>>),
    /// FLOAT and DOUBLE columns.
    Float(Vec<Option<f64>>),
    /// UTF-8 BYTE_ARRAY columns.
    Text(Vec<Option<String>>),
    /// Timestamps (INT64 with a timestamp type, or INT96), in milliseconds
    /// since 1970-01-01 UTC (or local time, when the file says the values
    /// are not adjusted to UTC).
    TimeMs(Vec<Option<i64>>),
}

impl Values {
    /// How many values (nulls included).
    pub fn len(&self) -> usize {
        match self {
            Values::Int(v) | Values::TimeMs(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What kind of column it is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Values::Int(_) => "integer",
            Values::Float(_) => "float",
            Values::Text(_) => "text",
            Values::TimeMs(_) => "timestamp",
        }
    }

    /// Value `i` as a number (integers and timestamps widened), `None` for
    /// a null, text, or an index past the end.
    pub fn number(&self, i: usize) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)] // trace integers are far below 2^53
            Values::Int(v) | Values::TimeMs(v) => v.get(i).copied().flatten().map(|x| x as f64),
            Values::Float(v) => v.get(i).copied().flatten(),
            Values::Text(_) => None,
        }
    }
}

/// Whether the source starts with Parquet's magic bytes `PAR1`.
pub fn is_parquet(source: Source<'_>) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    source.open().is_ok_and(|mut r| r.read_exact(&mut magic).is_ok()) && &magic == b"PAR1"
}

/// The file's top-level column names, in order.
pub fn column_names(source: Source<'_>) -> Result<Vec<String>, TraceError> {
    imp::column_names(source)
}

/// The file's row count (from its metadata).
pub fn row_count(source: Source<'_>) -> Result<usize, TraceError> {
    imp::row_count(source)
}

/// Reads the columns `names` whole, in the order asked. A name the file
/// does not have is an error that lists the columns it has.
pub fn read_columns(source: Source<'_>, names: &[&str]) -> Result<Vec<Values>, TraceError> {
    imp::read_columns(source, names)
}

/// Writes `columns` (name, values; all the same length) as one Parquet
/// row group with snappy pages: optional INT64, DOUBLE, UTF-8 and
/// millisecond-timestamp columns. For result files, tests and fuzz seeds.
pub fn write_columns(columns: &[(&str, &Values)]) -> Result<Vec<u8>, String> {
    imp::write_columns(columns)
}

#[cfg(feature = "parquet")]
fn missing_column(source: Source<'_>, name: &str, have: &[String]) -> TraceError {
    use crate::input::quote;
    TraceError::file(source.name(), format!("no column `{}`; the file has {}", quote(name), quote(&have.join(", "))))
}

#[cfg(feature = "parquet")]
mod imp {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as Physical};
    use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
    use parquet::data_type::DataType;
    use parquet::file::metadata::ParquetMetaData;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::{MAX_COLUMN_BYTES, MAX_ROWS, Values, missing_column};
    use crate::TraceError;
    use crate::input::Source;

    /// Values read per call into a column reader.
    const BATCH: usize = 64 * 1024;

    /// Runs `f` on an open reader; errors and panics inside the `parquet`
    /// crate become errors naming the file.
    fn with_reader<T>(
        source: Source<'_>,
        f: impl FnOnce(&dyn FileReader) -> Result<T, String>,
    ) -> Result<T, TraceError> {
        let name = source.name();
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<T, String> {
            let reader: Box<dyn FileReader> = match source.in_memory() {
                Some(bytes) => Box::new(
                    SerializedFileReader::new(bytes::Bytes::copy_from_slice(bytes)).map_err(|e| e.to_string())?,
                ),
                None => {
                    let file = std::fs::File::open(name).map_err(|e| e.to_string())?;
                    Box::new(SerializedFileReader::new(file).map_err(|e| e.to_string())?)
                }
            };
            check_limits(reader.metadata())?;
            f(reader.as_ref())
        }));
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(TraceError::file(name, format!("not a readable Parquet file: {message}"))),
            Err(_) => Err(TraceError::file(name, "not a readable Parquet file: its reader failed on corrupt data")),
        }
    }

    fn check_limits(metadata: &ParquetMetaData) -> Result<(), String> {
        let rows = metadata.file_metadata().num_rows();
        if !(0..=MAX_ROWS).contains(&rows) {
            return Err(format!("it claims {rows} rows; at most {MAX_ROWS} are read"));
        }
        for group in metadata.row_groups() {
            for column in group.columns() {
                let bytes = column.uncompressed_size();
                if !(0..=MAX_COLUMN_BYTES).contains(&bytes) {
                    return Err(format!(
                        "column `{}` claims {bytes} uncompressed bytes in one row group; at most {MAX_COLUMN_BYTES} are read",
                        column.column_path()
                    ));
                }
            }
        }
        Ok(())
    }

    fn top_level(metadata: &ParquetMetaData) -> Vec<String> {
        metadata
            .file_metadata()
            .schema_descr()
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    }

    pub(super) fn column_names(source: Source<'_>) -> Result<Vec<String>, TraceError> {
        with_reader(source, |r| Ok(top_level(r.metadata())))
    }

    pub(super) fn row_count(source: Source<'_>) -> Result<usize, TraceError> {
        with_reader(source, |r| Ok(usize::try_from(r.metadata().file_metadata().num_rows()).unwrap_or(0)))
    }

    /// How a column's physical values become [`Values`].
    #[derive(Clone, Copy)]
    enum Target {
        Int,
        Float,
        Text,
        /// Timestamp: divide the stored integer by this to get milliseconds.
        Time {
            per_ms: i64,
        },
        /// INT96 timestamps.
        Int96,
    }

    fn target(descr: &parquet::schema::types::ColumnDescriptor) -> Result<Target, String> {
        let time_unit = match descr.logical_type_ref() {
            Some(LogicalType::Timestamp(t)) => Some(match t.unit {
                TimeUnit::MILLIS => 1,
                TimeUnit::MICROS => 1_000,
                TimeUnit::NANOS => 1_000_000,
            }),
            _ => match descr.converted_type() {
                ConvertedType::TIMESTAMP_MILLIS => Some(1),
                ConvertedType::TIMESTAMP_MICROS => Some(1_000),
                _ => None,
            },
        };
        match (descr.physical_type(), time_unit) {
            (Physical::INT64, Some(per_ms)) => Ok(Target::Time { per_ms }),
            (Physical::INT32 | Physical::INT64, None) => Ok(Target::Int),
            (Physical::INT96, _) => Ok(Target::Int96),
            (Physical::FLOAT | Physical::DOUBLE, _) => Ok(Target::Float),
            (Physical::BYTE_ARRAY, _) => Ok(Target::Text),
            (other, _) => Err(format!("column `{}` is {other}, which is not read", descr.name())),
        }
    }

    pub(super) fn read_columns(source: Source<'_>, names: &[&str]) -> Result<Vec<Values>, TraceError> {
        let mut missing = None;
        let read = with_reader(source, |r| {
            let metadata = r.metadata();
            let schema = metadata.file_metadata().schema_descr();
            let mut indices = Vec::with_capacity(names.len());
            for name in names {
                let found = (0..schema.num_columns()).find(|&i| {
                    let c = schema.column(i);
                    c.path().parts().len() == 1 && c.name() == *name
                });
                match found {
                    Some(i) => indices.push(i),
                    None => {
                        missing = Some(((*name).to_string(), top_level(metadata)));
                        return Ok(Vec::new());
                    }
                }
            }
            let rows = usize::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
            let mut out = Vec::with_capacity(indices.len());
            for &i in &indices {
                let descr = schema.column(i);
                if descr.max_rep_level() > 0 {
                    return Err(format!("column `{}` is repeated (a list), which is not read", descr.name()));
                }
                let target = target(&descr)?;
                let mut values = match target {
                    Target::Int | Target::Time { .. } | Target::Int96 => Values::Int(Vec::with_capacity(rows)),
                    Target::Float => Values::Float(Vec::with_capacity(rows)),
                    Target::Text => Values::Text(Vec::with_capacity(rows)),
                };
                for g in 0..metadata.num_row_groups() {
                    let group = r.get_row_group(g).map_err(|e| e.to_string())?;
                    let reader = group.get_column_reader(i).map_err(|e| e.to_string())?;
                    append(reader, descr.max_def_level(), target, &mut values)
                        .map_err(|e| format!("column `{}`, row group {g}: {e}", descr.name()))?;
                }
                if let (Target::Time { .. } | Target::Int96, Values::Int(v)) = (target, &mut values) {
                    values = Values::TimeMs(std::mem::take(v));
                }
                if values.len() != rows {
                    return Err(format!(
                        "column `{}` has {} values for the file's {rows} rows",
                        descr.name(),
                        values.len()
                    ));
                }
                out.push(values);
            }
            Ok(out)
        })?;
        match missing {
            Some((name, have)) => Err(missing_column(source, &name, &have)),
            None => Ok(read),
        }
    }

    pub(super) fn write_columns(columns: &[(&str, &Values)]) -> Result<Vec<u8>, String> {
        use parquet::basic::{Compression, Repetition};
        use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::types::Type;

        let rows = columns.first().map_or(0, |(_, v)| v.len());
        if let Some((name, v)) = columns.iter().find(|(_, v)| v.len() != rows) {
            return Err(format!("column `{name}` has {} values, the first has {rows}", v.len()));
        }
        let fields = columns
            .iter()
            .map(|(name, values)| {
                let (physical, logical) = match values {
                    Values::Int(_) => (Physical::INT64, None),
                    Values::Float(_) => (Physical::DOUBLE, None),
                    Values::Text(_) => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                    Values::TimeMs(_) => (Physical::INT64, Some(LogicalType::timestamp(true, TimeUnit::MILLIS))),
                };
                Type::primitive_type_builder(name, physical)
                    .with_repetition(Repetition::OPTIONAL)
                    .with_logical_type(logical)
                    .build()
                    .map(std::sync::Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let schema = Type::group_type_builder("schema").with_fields(fields).build().map_err(|e| e.to_string())?;
        let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let mut out = Vec::new();
        let mut writer =
            SerializedFileWriter::new(&mut out, std::sync::Arc::new(schema), std::sync::Arc::new(properties))
                .map_err(|e| e.to_string())?;
        let mut group = writer.next_row_group().map_err(|e| e.to_string())?;
        for (_, values) in columns {
            let mut column = group.next_column().map_err(|e| e.to_string())?.ok_or("schema has fewer columns")?;
            fn split<T: Clone>(v: &[Option<T>]) -> (Vec<T>, Vec<i16>) {
                (v.iter().flatten().cloned().collect(), v.iter().map(|x| i16::from(x.is_some())).collect())
            }
            let written = match values {
                Values::Int(v) | Values::TimeMs(v) => {
                    let (data, defs) = split(v);
                    column.typed::<Int64Type>().write_batch(&data, Some(&defs), None)
                }
                Values::Float(v) => {
                    let (data, defs) = split(v);
                    column.typed::<DoubleType>().write_batch(&data, Some(&defs), None)
                }
                Values::Text(v) => {
                    let (data, defs) = split(v);
                    let data: Vec<ByteArray> = data.into_iter().map(|s| ByteArray::from(s.into_bytes())).collect();
                    column.typed::<ByteArrayType>().write_batch(&data, Some(&defs), None)
                }
            };
            written.map_err(|e| e.to_string())?;
            column.close().map_err(|e| e.to_string())?;
        }
        group.close().map_err(|e| e.to_string())?;
        writer.close().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Reads a whole column chunk, placing nulls where the definition
    /// levels say.
    fn append(reader: ColumnReader, max_def: i16, target: Target, out: &mut Values) -> Result<(), String> {
        match (reader, out) {
            (ColumnReader::Int32ColumnReader(r), Values::Int(v)) => drain(r, max_def, v, |x| Ok(i64::from(x))),
            (ColumnReader::Int64ColumnReader(r), Values::Int(v)) => {
                let per_ms = if let Target::Time { per_ms } = target { per_ms } else { 1 };
                drain(r, max_def, v, |x| Ok(x.div_euclid(per_ms)))
            }
            (ColumnReader::Int96ColumnReader(r), Values::Int(v)) => drain(r, max_def, v, |x| Ok(x.to_millis())),
            (ColumnReader::FloatColumnReader(r), Values::Float(v)) => drain(r, max_def, v, |x| Ok(f64::from(x))),
            (ColumnReader::DoubleColumnReader(r), Values::Float(v)) => drain(r, max_def, v, Ok),
            (ColumnReader::ByteArrayColumnReader(r), Values::Text(v)) => drain(r, max_def, v, |x| {
                x.as_utf8().map(str::to_string).map_err(|_| "a value is not UTF-8 text".to_string())
            }),
            _ => Err("its pages do not match its declared type".to_string()),
        }
    }

    fn drain<T: DataType, U>(
        mut reader: ColumnReaderImpl<T>,
        max_def: i16,
        out: &mut Vec<Option<U>>,
        convert: impl Fn(T::T) -> Result<U, String>,
    ) -> Result<(), String>
    where
        T::T: Clone,
    {
        let mut values: Vec<T::T> = Vec::new();
        let mut levels: Vec<i16> = Vec::new();
        loop {
            values.clear();
            levels.clear();
            let defs = (max_def > 0).then_some(&mut levels);
            let (records, read, _) = reader.read_records(BATCH, defs, None, &mut values).map_err(|e| e.to_string())?;
            if records == 0 {
                return Ok(());
            }
            if i64::try_from(out.len().saturating_add(records)).map_or(true, |n| n > MAX_ROWS) {
                return Err("more values than rows".to_string());
            }
            let mut next = values.drain(..read.min(values.len()));
            if max_def == 0 {
                for x in next.by_ref().take(records) {
                    out.push(Some(convert(x)?));
                }
            } else {
                for &level in levels.iter().take(records) {
                    if level == max_def {
                        let x = next.next().ok_or("fewer values than its definition levels say")?;
                        out.push(Some(convert(x)?));
                    } else {
                        out.push(None);
                    }
                }
            }
        }
    }
}

#[cfg(not(feature = "parquet"))]
mod imp {
    use super::Values;
    use crate::TraceError;
    use crate::input::Source;

    fn unsupported(source: Source<'_>) -> TraceError {
        TraceError::file(
            source.name(),
            "is a Parquet file, and this build has no Parquet reader (build with the `parquet` feature, on by default)",
        )
    }

    pub(super) fn column_names(source: Source<'_>) -> Result<Vec<String>, TraceError> {
        Err(unsupported(source))
    }

    pub(super) fn row_count(source: Source<'_>) -> Result<usize, TraceError> {
        Err(unsupported(source))
    }

    pub(super) fn read_columns(source: Source<'_>, _names: &[&str]) -> Result<Vec<Values>, TraceError> {
        Err(unsupported(source))
    }

    pub(super) fn write_columns(_columns: &[(&str, &Values)]) -> Result<Vec<u8>, String> {
        Err("this build has no Parquet writer (build with the `parquet` feature, on by default)".to_string())
    }
}

#[cfg(all(test, feature = "parquet"))]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn columns_round_trip_with_nulls() {
        let ids = Values::Text(vec![Some("a".into()), None, Some("ç".into())]);
        let times = Values::TimeMs(vec![Some(1_000), Some(-5), None]);
        let counts = Values::Int(vec![None, Some(7), Some(i64::MAX)]);
        let usage = Values::Float(vec![Some(1.5), Some(f64::NAN), None]);
        let bytes = write_columns(&[("id", &ids), ("t", &times), ("n", &counts), ("u", &usage)]).expect("writes");
        let source = Source::bytes(Path::new("x.parquet"), &bytes);
        assert!(is_parquet(source));
        assert_eq!(column_names(source).expect("names"), ["id", "t", "n", "u"]);
        assert_eq!(row_count(source).expect("rows"), 3);
        let read = read_columns(source, &["n", "id", "t"]).expect("reads");
        assert_eq!(read, vec![counts, ids, times]);
        let Values::Float(u) = &read_columns(source, &["u"]).expect("reads")[0] else { panic!("float") };
        assert_eq!(u[0], Some(1.5));
        assert!(u[1].is_some_and(f64::is_nan));
        assert_eq!(u[2], None);
    }

    #[test]
    fn a_missing_column_lists_the_columns() {
        let bytes = write_columns(&[("a", &Values::Int(vec![Some(1)]))]).expect("writes");
        let e = read_columns(Source::bytes(Path::new("x.parquet"), &bytes), &["b"]).expect_err("no b").to_string();
        assert!(e.contains("no column `b`") && e.contains("the file has a"), "{e}");
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors() {
        let bytes = write_columns(&[("a", &Values::Float(vec![Some(1.0); 1000]))]).expect("writes");
        for cut in [0, 4, 12, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
            let e = read_columns(Source::bytes(Path::new("x.parquet"), &bytes[..cut]), &["a"]);
            assert!(e.is_err(), "cut at {cut}");
        }
        // Every byte of the page area flipped in turn: an error or the
        // right row count, never a panic that escapes.
        for i in 4..bytes.len().min(200) {
            let mut broken = bytes.clone();
            broken[i] ^= 0x5a;
            if let Ok(v) = read_columns(Source::bytes(Path::new("x.parquet"), &broken), &["a"]) {
                assert_eq!(v[0].len(), 1000);
            }
        }
    }

    #[test]
    fn text_that_is_not_parquet_is_detected() {
        assert!(!is_parquet(Source::bytes(Path::new("x.csv"), b"time,value\n")));
        assert!(!is_parquet(Source::bytes(Path::new("x"), b"PA")));
    }
}
