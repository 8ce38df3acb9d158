//! Column types of the tabular results, shared by the Parquet files and
//! the Python package's Arrow tables: a column's type is the narrowest that
//! holds every cell; empty cells and non-finite floats are nulls.

use nimbus_sim::output::Cell;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Every cell an integer.
    Int,
    /// Every cell a boolean.
    Bool,
    /// Every cell a number.
    Double,
    /// Anything else: UTF-8 text.
    Text,
}

/// The type of column `column` of `rows` (nulls do not count).
pub fn column_kind(rows: &[Vec<Cell>], column: usize) -> ColumnKind {
    let cells = || rows.iter().filter_map(|r| r.get(column)).filter(|c| !matches!(c, Cell::Empty));
    if cells().all(|c| matches!(c, Cell::Int(_))) {
        ColumnKind::Int
    } else if cells().all(|c| matches!(c, Cell::Bool(_))) {
        ColumnKind::Bool
    } else if cells().all(|c| matches!(c, Cell::Int(_) | Cell::Float(_))) {
        ColumnKind::Double
    } else {
        ColumnKind::Text
    }
}

/// A cell as its CSV text, or none for a null (empty or non-finite).
pub fn text_of(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Empty => None,
        Cell::Float(f) if !f.is_finite() => None,
        c => Some(crate::files::csv_cell(c)),
    }
}
