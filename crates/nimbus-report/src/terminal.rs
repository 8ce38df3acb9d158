//! Plain-text tables for the terminal (and the Markdown report).

use nimbus_lab::LabResult;
use nimbus_lab::claims::{ClaimResult, Verdict};

use crate::format::{mean_ci, number};

fn looks_numeric(cell: &str) -> bool {
    cell.chars().next().is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '–' | '+' | '.'))
}

/// Columns a text column may be abbreviated down to when a table must fit.
const MIN_TEXT_COLUMN: usize = 12;

fn column_widths(header: &[String], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(header.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    widths
}

fn numeric_columns(columns: usize, rows: &[Vec<String>]) -> Vec<bool> {
    (0..columns).map(|i| !rows.is_empty() && rows.iter().all(|r| r.get(i).is_none_or(|c| looks_numeric(c)))).collect()
}

fn table_width(widths: &[usize]) -> usize {
    widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)
}

/// `cell` cut to `width` characters, its last one `…` when cut.
fn abbreviate(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_string();
    }
    let mut out: String = cell.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// [`render`] within `width` columns (none: as wide as it needs). A
/// matrix (every column after the first numeric: metrics × policies) wraps
/// into blocks of columns, each repeating the first, which is abbreviated
/// with `…` only if it and one more column would not fit. Other tables
/// abbreviate their text columns, widest first, down to 12 characters (or
/// their header).
pub fn render_fitted(header: &[String], rows: &[Vec<String>], width: Option<usize>) -> String {
    let Some(width) = width else { return render(header, rows) };
    let mut widths = column_widths(header, rows);
    if table_width(&widths) <= width || header.is_empty() {
        return render(header, rows);
    }
    let numeric = numeric_columns(header.len(), rows);
    let floor = |i: usize| MIN_TEXT_COLUMN.max(header[i].chars().count());
    let matrix = widths.len() > 2 && numeric[1..].iter().all(|&n| n);
    if matrix {
        let widest = widths[1..].iter().copied().max().unwrap_or(0);
        if !numeric[0] && widths[0] + 2 + widest > width {
            widths[0] = width.saturating_sub(2 + widest).max(floor(0)).min(widths[0]);
        }
    } else {
        loop {
            let excess = table_width(&widths).saturating_sub(width);
            let widest =
                (0..widths.len()).filter(|&i| !numeric[i] && widths[i] > floor(i)).max_by_key(|&i| (widths[i], i));
            let Some(i) = widest.filter(|_| excess > 0) else { break };
            widths[i] = widths[i].saturating_sub(excess).max(floor(i));
        }
    }
    let cut = |cells: &[String]| -> Vec<String> {
        cells.iter().enumerate().map(|(i, c)| abbreviate(c, widths.get(i).copied().unwrap_or(usize::MAX))).collect()
    };
    let (header, rows): (Vec<String>, Vec<Vec<String>>) = (cut(header), rows.iter().map(|r| cut(r)).collect());
    if !matrix {
        return render(&header, &rows);
    }
    // Blocks of columns after the first, each as many as fit beside it.
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    let mut used = widths[0];
    for i in 1..widths.len() {
        match blocks.last_mut() {
            Some(block) if used + 2 + widths[i] <= width => block.push(i),
            _ => {
                blocks.push(vec![i]);
                used = widths[0];
            }
        }
        used += 2 + widths[i];
    }
    let pick = |cells: &[String], block: &[usize]| -> Vec<String> {
        std::iter::once(0).chain(block.iter().copied()).map(|i| cells.get(i).cloned().unwrap_or_default()).collect()
    };
    blocks
        .iter()
        .map(|block| render(&pick(&header, block), &rows.iter().map(|r| pick(r, block)).collect::<Vec<_>>()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lays out rows of cells as an aligned table with a header rule; columns
/// whose cells are all numbers are right-aligned, the others left-aligned.
pub fn render(header: &[String], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let widths = column_widths(header, rows);
    let numeric = numeric_columns(columns, rows);
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i] - c.chars().count();
                if numeric[i] { format!("{}{c}", " ".repeat(pad)) } else { format!("{c}{}", " ".repeat(pad)) }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(header);
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// Metrics (rows) × policies (columns), mean ± 95% CI across seeds; the
/// scenario's chosen metrics first, in their order; within `width`
/// columns when given ([`render_fitted`]).
pub fn comparison_table(result: &LabResult, policies: &[String], chosen: &[String], width: Option<usize>) -> String {
    let all = result.metric_names();
    let mut metrics: Vec<String> = chosen.iter().filter(|m| all.contains(m)).cloned().collect();
    if metrics.is_empty() {
        metrics = all;
    }
    let mut header = vec!["metric".to_string()];
    header.extend(policies.iter().cloned());
    let rows: Vec<Vec<String>> = metrics
        .iter()
        .map(|m| {
            let mut row = vec![m.clone()];
            for p in policies {
                let s = result.summary(p, m);
                row.push(mean_ci(s.mean, s.ci95));
            }
            row
        })
        .collect();
    render_fitted(&header, &rows, width)
}

/// A claim's cells: its source, metric, comparison, the paper's figure,
/// ours and the verdict.
pub(crate) fn claim_cells(c: &ClaimResult) -> Vec<String> {
    let claim = &c.claim;
    let (comparison, paper, ours) = match (&claim.baseline, c.ours_ratio) {
        (Some(b), Some(ratio)) => (
            format!("{} / {}", claim.subject, b),
            claim.paper_ratio.map_or("–".into(), |r| format!("ratio {}", number(r))),
            format!("ratio {}", number(ratio)),
        ),
        _ => (
            claim.subject.clone(),
            claim.paper_value.or(claim.threshold).map_or("–".into(), number),
            mean_ci(c.ours.mean, c.ours.ci95),
        ),
    };
    let verdict = match &c.verdict {
        Verdict::NotComparable(why) => format!("not comparable ({why})"),
        v => v.label().to_string(),
    };
    vec![claim.source.clone(), claim.metric.clone(), comparison, paper, ours, verdict]
}

/// The claims table's header.
pub(crate) const CLAIM_COLUMNS: [&str; 6] = ["claim", "metric", "comparison", "paper", "ours", "verdict"];

/// One row per claim: the paper's figure beside ours and the verdict;
/// within `width` columns when given ([`render_fitted`]).
pub fn claims_table(result: &LabResult, width: Option<usize>) -> String {
    if result.claims.is_empty() {
        return String::new();
    }
    let header: Vec<String> = CLAIM_COLUMNS.iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = result.claims.iter().map(claim_cells).collect();
    render_fitted(&header, &rows, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_columns() {
        let header = vec!["metric".to_string(), "a".to_string()];
        let rows = vec![vec!["x".to_string(), "1.5".to_string()], vec!["longer".to_string(), "10".to_string()]];
        let text = render(&header, &rows);
        assert_eq!(text, "metric    a\n------  ---\nx       1.5\nlonger   10\n");
        let text = render(&header, &[vec!["x".to_string(), "abc".to_string()]]);
        assert_eq!(text, "metric  a\n------  ---\nx       abc\n");
    }

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    /// A long text column is cut to fit, with `…`; numbers are never cut.
    #[test]
    fn abbreviates_text_to_fit() {
        let header = strings(&["claim", "ours"]);
        let rows = vec![strings(&["a claim far longer than the terminal allows", "1.25"])];
        let text = render_fitted(&header, &rows, Some(24));
        assert_eq!(text, "claim               ours\n------------------  ----\na claim far longe…  1.25\n");
        assert!(text.lines().all(|l| l.chars().count() <= 24), "{text}");
        assert_eq!(render_fitted(&header, &rows, None), render(&header, &rows));
        assert_eq!(render_fitted(&header, &rows, Some(200)), render(&header, &rows));
    }

    /// Too many numeric columns wrap into blocks that repeat the first.
    #[test]
    fn wraps_columns_into_blocks() {
        let header = strings(&["metric", "policy-a", "policy-b", "policy-c"]);
        let rows = vec![strings(&["a_metric_name_of_twenty", "1.5 ± 0.1", "2.5 ± 0.2", "3.5 ± 0.3"])];
        let text = render_fitted(&header, &rows, Some(46));
        assert!(text.lines().all(|l| l.chars().count() <= 46), "{text}");
        assert!(!text.contains('…'), "{text}");
        let blocks: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(blocks.len(), 2, "{text}");
        assert!(blocks.iter().all(|b| b.starts_with("metric")), "{text}");
        for cell in ["1.5 ± 0.1", "2.5 ± 0.2", "3.5 ± 0.3"] {
            assert_eq!(text.matches(cell).count(), 1, "{text}");
        }
        // Too narrow for the names beside one column: they are cut.
        let text = render_fitted(&header, &rows, Some(30));
        assert!(text.lines().all(|l| l.chars().count() <= 30), "{text}");
        assert!(text.contains("a_metric_name_of_t…") && text.split("\n\n").count() == 3, "{text}");
    }
}
