//! Plain-text tables for the terminal (and the Markdown report).

use nimbus_lab::LabResult;
use nimbus_lab::claims::Verdict;

use crate::format::{mean_ci, number};

fn looks_numeric(cell: &str) -> bool {
    cell.chars().next().is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '–' | '+' | '.'))
}

/// Lays out rows of cells as an aligned table with a header rule; columns
/// whose cells are all numbers are right-aligned, the others left-aligned.
pub fn render(header: &[String], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..columns)
        .map(|i| !rows.is_empty() && rows.iter().all(|r| r.get(i).is_none_or(|c| looks_numeric(c))))
        .collect();
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
/// scenario's chosen metrics first, in their order.
pub fn comparison_table(result: &LabResult, policies: &[String], chosen: &[String]) -> String {
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
    render(&header, &rows)
}

/// One row per claim: the paper's figure beside ours and the verdict.
pub fn claims_table(result: &LabResult) -> String {
    if result.claims.is_empty() {
        return String::new();
    }
    let header: Vec<String> =
        ["claim", "metric", "comparison", "paper", "ours", "verdict"].iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = result
        .claims
        .iter()
        .map(|c| {
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
        })
        .collect();
    render(&header, &rows)
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
}
