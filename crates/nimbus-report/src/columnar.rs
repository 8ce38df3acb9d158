//! Parquet copies of the tabular result files (`runs.parquet` and one per
//! per-entity table), for pandas, polars and Arrow readers.
//!
//! A column's type is the narrowest that holds every cell: INT64 when all
//! are integers, BOOLEAN when all are booleans, DOUBLE when all are
//! numbers, else a UTF-8 string; empty cells and non-finite floats are
//! nulls. One row group, zstd pages, a fixed `created_by`: the same table
//! gives the same bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nimbus_sim::output::Cell;
use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::Type;

use crate::columns::{ColumnKind as Kind, column_kind as kind_of, text_of};
use crate::files::WriteError;

/// A CSV cell's text as a typed cell: an integer, a finite number, `true`
/// or `false`, empty, or else the text.
pub fn cell_of_text(text: &str) -> Cell {
    if text.is_empty() {
        Cell::Empty
    } else if let Ok(i) = text.parse::<i64>() {
        Cell::Int(i)
    } else if let Some(f) = text.parse::<f64>().ok().filter(|f| f.is_finite()) {
        Cell::Float(f)
    } else if let Ok(b) = text.parse::<bool>() {
        Cell::Bool(b)
    } else {
        Cell::Str(text.to_string())
    }
}

/// Writes one column: each cell's value, or a null where `value` gives none.
fn write_column<T: DataType>(
    column: &mut SerializedColumnWriter<'_>,
    cells: &[&Cell],
    value: impl Fn(&Cell) -> Option<T::T>,
) -> parquet::errors::Result<()> {
    let mut values = Vec::with_capacity(cells.len());
    let mut levels = Vec::with_capacity(cells.len());
    for cell in cells {
        let v = value(cell);
        levels.push(i16::from(v.is_some()));
        values.extend(v);
    }
    column.typed::<T>().write_batch(&values, Some(&levels), None).map(|_| ())
}

/// Writes `rows` under `columns` to `path` as Parquet.
pub fn write_parquet(path: &Path, columns: &[String], rows: &[Vec<Cell>]) -> Result<PathBuf, WriteError> {
    let fail = |e: parquet::errors::ParquetError| WriteError {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    };
    let kinds: Vec<Kind> = (0..columns.len()).map(|i| kind_of(rows, i)).collect();
    let fields = columns
        .iter()
        .zip(&kinds)
        .map(|(name, kind)| {
            let builder = match kind {
                Kind::Int => Type::primitive_type_builder(name, PhysicalType::INT64),
                Kind::Bool => Type::primitive_type_builder(name, PhysicalType::BOOLEAN),
                Kind::Double => Type::primitive_type_builder(name, PhysicalType::DOUBLE),
                Kind::Text => Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
                    .with_logical_type(Some(LogicalType::String)),
            };
            builder.with_repetition(Repetition::OPTIONAL).build().map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let schema = Arc::new(Type::group_type_builder("nimbus").with_fields(fields).build().map_err(fail)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_created_by(format!("nimbus {}", env!("CARGO_PKG_VERSION")))
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build(),
    );
    let file = std::fs::File::create(path).map_err(|source| WriteError { path: path.to_path_buf(), source })?;
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(fail)?;
    let mut group = writer.next_row_group().map_err(fail)?;
    let mut index = 0;
    while let Some(mut column) = group.next_column().map_err(fail)? {
        let cells: Vec<&Cell> = rows.iter().map(|r| r.get(index).unwrap_or(&Cell::Empty)).collect();
        match kinds[index] {
            Kind::Int => write_column::<Int64Type>(&mut column, &cells, |c| match c {
                Cell::Int(i) => Some(*i),
                _ => None,
            }),
            Kind::Bool => write_column::<BoolType>(&mut column, &cells, |c| match c {
                Cell::Bool(b) => Some(*b),
                _ => None,
            }),
            Kind::Double => write_column::<DoubleType>(&mut column, &cells, |c| match c {
                Cell::Int(i) => Some(*i as f64),
                Cell::Float(f) if f.is_finite() => Some(*f),
                _ => None,
            }),
            Kind::Text => write_column::<ByteArrayType>(&mut column, &cells, |c| {
                text_of(c).map(|s| ByteArray::from(s.into_bytes()))
            }),
        }
        .map_err(fail)?;
        column.close().map_err(fail)?;
        index += 1;
    }
    group.close().map_err(fail)?;
    writer.close().map_err(fail)?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    #[test]
    fn text_cells_take_their_type() {
        assert_eq!(cell_of_text("12"), Cell::Int(12));
        assert_eq!(cell_of_text("1.5e3"), Cell::Float(1500.0));
        assert_eq!(cell_of_text("NaN"), Cell::Str("NaN".into()));
        assert_eq!(cell_of_text("true"), Cell::Bool(true));
        assert_eq!(cell_of_text(""), Cell::Empty);
        assert_eq!(cell_of_text("arima"), Cell::Str("arima".into()));
    }

    /// Every type and nulls round-trip through the crate's own reader, and
    /// the same table gives the same bytes.
    #[test]
    fn round_trips_types_and_nulls() {
        let dir = std::env::temp_dir().join(format!("nimbus-columnar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("t.parquet");
        let columns: Vec<String> = ["id", "x", "name", "ok", "mixed"].iter().map(|s| s.to_string()).collect();
        let rows = vec![
            vec![Cell::Int(1), Cell::Float(1.5), Cell::Str("a".into()), Cell::Bool(true), Cell::Int(3)],
            vec![Cell::Int(2), Cell::Float(f64::NAN), Cell::Empty, Cell::Bool(false), Cell::Str("b".into())],
            vec![Cell::Empty, Cell::Int(4), Cell::Str("c".into()), Cell::Empty, Cell::Float(0.5)],
        ];
        write_parquet(&path, &columns, &rows).expect("writes");
        let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("opens")).expect("reads");
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
        let got: Vec<Vec<Field>> = reader
            .get_row_iter(None)
            .expect("rows")
            .map(|r| r.expect("row").get_column_iter().map(|(_, f)| f.clone()).collect())
            .collect();
        assert_eq!(
            got[0],
            vec![Field::Long(1), Field::Double(1.5), Field::Str("a".into()), Field::Bool(true), Field::Str("3".into())]
        );
        assert_eq!(got[1], vec![Field::Long(2), Field::Null, Field::Null, Field::Bool(false), Field::Str("b".into())]);
        assert_eq!(
            got[2],
            vec![Field::Null, Field::Double(4.0), Field::Str("c".into()), Field::Null, Field::Str("0.5".into())]
        );
        let first = std::fs::read(&path).expect("bytes");
        write_parquet(&path, &columns, &rows).expect("writes again");
        assert_eq!(first, std::fs::read(&path).expect("bytes"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
