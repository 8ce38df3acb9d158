//! A measured two-way table: rows and columns labelled by counts, cells
//! numbers, `-1` where nothing was measured. AutoBurst's throughput table
//! (`autoburst-throughput/throughput.csv`) has this form: rows are
//! on-demand instance counts, columns burstable counts, cells sustainable
//! requests per second.
//!
//! ```text
//! ond,5,7,9
//! 0,140,192,250
//! 5,314,372,-1
//! ```
//!
//! Plain comma-separated numbers (no quoting). Row labels must rise, as
//! must column labels; every row has one cell per column; cells are ≥ 0 or
//! exactly −1; at least one cell is measured.

use crate::error::TraceError;
use crate::input::{Source, for_each_line, quote};

/// Most rows or columns accepted.
pub const MAX_LABELS: usize = 10_000;

/// The table.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Name of the row-label column (e.g. `ond`).
    pub row_name: String,
    /// Row labels, rising.
    pub rows: Vec<u32>,
    /// Column labels, rising.
    pub columns: Vec<u32>,
    /// `cells[r][c]`: the measurement, `None` where unmeasured (−1).
    pub cells: Vec<Vec<Option<f64>>>,
}

fn label(path: &std::path::Path, line: u64, column: u64, text: &str, what: &str) -> Result<u32, TraceError> {
    text.trim().parse::<u32>().map_err(|_| {
        TraceError::parse(
            path,
            line,
            column,
            None,
            format!("expected a {what} count (0, 1, …), found `{}`", quote(text.trim())),
        )
    })
}

/// Reads a grid.
pub fn read_grid(source: Source<'_>) -> Result<Grid, TraceError> {
    let path = source.name();
    let mut grid = Grid { row_name: String::new(), rows: Vec::new(), columns: Vec::new(), cells: Vec::new() };
    let mut header_seen = false;
    for_each_line(source, |line, text| {
        if text.trim().is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = text.split(',').collect();
        if !header_seen {
            header_seen = true;
            grid.row_name = fields[0].trim().to_string();
            if fields.len() < 2 {
                return Err(TraceError::parse(
                    path,
                    line,
                    1,
                    None,
                    "expected a row-label name and at least one column label",
                ));
            }
            if fields.len() - 1 > MAX_LABELS {
                return Err(TraceError::parse(path, line, 1, None, format!("more than {MAX_LABELS} columns")));
            }
            for (i, f) in fields.iter().enumerate().skip(1) {
                let value = label(path, line, i as u64 + 1, f, "column")?;
                if grid.columns.last().is_some_and(|&last| value <= last) {
                    return Err(TraceError::parse(path, line, i as u64 + 1, None, "column labels must rise"));
                }
                grid.columns.push(value);
            }
            return Ok(());
        }
        if fields.len() != grid.columns.len() + 1 {
            return Err(TraceError::parse(
                path,
                line,
                1,
                None,
                format!(
                    "expected {} fields (a row label and one per column), found {}",
                    grid.columns.len() + 1,
                    fields.len()
                ),
            ));
        }
        if grid.rows.len() >= MAX_LABELS {
            return Err(TraceError::parse(path, line, 1, None, format!("more than {MAX_LABELS} rows")));
        }
        let row = label(path, line, 1, fields[0], "row")?;
        if grid.rows.last().is_some_and(|&last| row <= last) {
            return Err(TraceError::parse(path, line, 1, None, "row labels must rise"));
        }
        let mut cells = Vec::with_capacity(grid.columns.len());
        for (i, f) in fields.iter().enumerate().skip(1) {
            let text = f.trim();
            let value =
                text.parse::<f64>().ok().filter(|v| v.is_finite() && (*v >= 0.0 || *v == -1.0)).ok_or_else(|| {
                    TraceError::parse(
                        path,
                        line,
                        i as u64 + 1,
                        None,
                        format!("expected a measurement ≥ 0 or -1 (not measured), found `{}`", quote(text)),
                    )
                })?;
            cells.push((value >= 0.0).then_some(value));
        }
        grid.rows.push(row);
        grid.cells.push(cells);
        Ok(())
    })?;
    if !header_seen {
        return Err(TraceError::parse(path, 0, 0, None, "empty file: expected a header row"));
    }
    if grid.cells.iter().flatten().all(Option::is_none) {
        return Err(TraceError::parse(path, 0, 0, None, "no measured cell (every cell is -1 or there are no rows)"));
    }
    Ok(grid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Grid, TraceError> {
        read_grid(Source::bytes(std::path::Path::new("t.csv"), text.as_bytes()))
    }

    #[test]
    fn reads_the_autoburst_form() {
        let g = read("ond,5,7\n0,140,192\n\n5,314,-1\n").expect("valid");
        assert_eq!(g.row_name, "ond");
        assert_eq!(g.rows, vec![0, 5]);
        assert_eq!(g.columns, vec![5, 7]);
        assert_eq!(g.cells, vec![vec![Some(140.0), Some(192.0)], vec![Some(314.0), None]]);
    }

    #[test]
    fn malformed_tables_say_where() {
        for (text, expected) in [
            ("", "empty file"),
            ("ond\n", "at least one column"),
            ("ond,5,x\n", "t.csv:1:3: expected a column count"),
            ("ond,7,5\n", "column labels must rise"),
            ("ond,5\n0,1,2\n", "expected 2 fields"),
            ("ond,5\n1,1\n0,2\n", "row labels must rise"),
            ("ond,5\n0,-2\n", "≥ 0 or -1"),
            ("ond,5\n0,NaN\n", "≥ 0 or -1"),
            ("ond,5\n0,-1\n", "no measured cell"),
        ] {
            let e = read(text).expect_err(text).to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }
}
