//! `report.html`: one self-contained page per run — the comparison table
//! (the best mean of each metric with a direction in bold), the claims
//! with their verdicts, notes, the plots inlined as SVG, links to the
//! per-entity files and the manifest. No scripts, fonts or other files
//! are loaded, so the page opens offline and from a mail attachment.

use std::fmt::Write as _;

use nimbus_lab::LabResult;
use nimbus_lab::claims::Verdict;
use nimbus_sim::output::Better;

use crate::files::Manifest;
use crate::format::mean_ci;
use crate::svg::escape;
use crate::terminal::{CLAIM_COLUMNS, claim_cells};

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
.meta{color:#555}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}\
th,td{border:1px solid #ddd;padding:.25rem .55rem;vertical-align:top}th{background:#f4f4f4;text-align:left}\
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.best{font-weight:700}\
.verdict{font-weight:600;white-space:nowrap}.holds{color:#176b2c}.does-not-hold{color:#a31515}.not-comparable{color:#7a5a00}\
figure{margin:1rem 0}svg{max-width:100%;height:auto}code{background:#f4f4f4;padding:0 .2rem}";

/// The CSS class of a verdict.
fn verdict_class(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Holds => "holds",
        Verdict::DoesNotHold => "does-not-hold",
        Verdict::NotComparable(_) => "not-comparable",
    }
}

/// The direction of `metric` as the runs report it.
fn direction(result: &LabResult, metric: &str) -> Better {
    result
        .runs
        .iter()
        .find_map(|r| r.output.metrics.iter().find(|m| m.name == metric).map(|m| m.better))
        .unwrap_or(Better::Neither)
}

/// The page. `plots` are `(file name, SVG text)`; `files` the per-entity
/// files written beside it (one row per stem, a link per format).
pub fn report_html(manifest: &Manifest, result: &LabResult, plots: &[(String, String)], files: &[String]) -> String {
    let labels: Vec<&str> = manifest.policies.iter().map(|(l, _)| l.as_str()).collect();
    let mut h = String::new();
    let title = escape(&manifest.scenario);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title} — Nimbus report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    let _ = writeln!(
        h,
        "<p class=\"meta\">Domain <code>{}</code> · seeds {} · scenario <code>{}</code> · commit <code>{}</code></p>",
        escape(&manifest.domain),
        escape(&manifest.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        escape(&manifest.scenario_path),
        escape(&manifest.commit)
    );
    // The description's blank lines part paragraphs; its other line
    // breaks are the scenario file's wrapping.
    for paragraph in manifest.description.split("\n\n").map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")) {
        if !paragraph.is_empty() {
            let _ = writeln!(h, "<p class=\"description\">{}</p>", escape(&paragraph));
        }
    }

    // Comparison.
    let all = result.metric_names();
    let mut metrics: Vec<String> = manifest.metrics.iter().filter(|m| all.contains(m)).cloned().collect();
    if metrics.is_empty() {
        metrics = all;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"comparison\">Comparison</h2>\n<p class=\"meta\">Mean ± 95% confidence interval across seeds.</p>"
    );
    h.push_str("<table class=\"comparison\">\n<thead><tr><th>metric</th>");
    for l in &labels {
        let _ = write!(h, "<th>{}</th>", escape(l));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for m in &metrics {
        let means: Vec<f64> = labels.iter().map(|l| result.summary(l, m).mean).collect();
        let finite = means.iter().copied().filter(|v| v.is_finite());
        let best = match direction(result, m) {
            Better::Lower => finite.fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.min(v)))),
            Better::Higher => finite.fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.max(v)))),
            Better::Neither => None,
        };
        let _ = write!(h, "<tr><th>{}</th>", escape(m));
        for l in &labels {
            let s = result.summary(l, m);
            let class = if labels.len() > 1 && best == Some(s.mean) { "num best" } else { "num" };
            let _ = write!(h, "<td class=\"{class}\">{}</td>", escape(&mean_ci(s.mean, s.ci95)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");

    // Claims.
    if !result.claims.is_empty() {
        h.push_str("<h2 id=\"claims\">Claims</h2>\n<table class=\"claims\">\n<thead><tr>");
        for column in CLAIM_COLUMNS {
            let _ = write!(h, "<th>{column}</th>");
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for c in &result.claims {
            let cells = claim_cells(c);
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"verdict {}\">{}</td></tr>",
                escape(&cells[0]),
                escape(&cells[1]),
                escape(&cells[2]),
                escape(&cells[3]),
                escape(&cells[4]),
                verdict_class(&c.verdict),
                escape(&cells[5])
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }

    // Notes.
    let notes: Vec<String> = result
        .fallbacks
        .iter()
        .map(|f| format!("data: {f}"))
        .chain(
            result
                .runs
                .iter()
                .flat_map(|r| r.output.notes.iter().map(move |n| format!("{} seed {}: {n}", r.policy, r.seed))),
        )
        .collect();
    if !notes.is_empty() {
        h.push_str("<h2 id=\"notes\">Notes</h2>\n<ul>\n");
        for n in &notes {
            let _ = writeln!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>\n");
    }

    // Plots, inline.
    if !plots.is_empty() {
        h.push_str("<h2 id=\"plots\">Plots</h2>\n");
        for (file, svg) in plots {
            let _ = writeln!(
                h,
                "<figure>\n{svg}\n<figcaption><a href=\"{0}\">{0}</a></figcaption>\n</figure>",
                escape(file)
            );
        }
    }

    // Files and manifest.
    if !files.is_empty() {
        let mut stems: Vec<(&str, Vec<&str>)> = Vec::new();
        for f in files {
            let (stem, ext) = f.rsplit_once('.').unwrap_or((f.as_str(), ""));
            match stems.iter_mut().find(|(s, _)| *s == stem) {
                Some((_, exts)) => exts.push(ext),
                None => stems.push((stem, vec![ext])),
            }
        }
        h.push_str("<h2 id=\"files\">Per-entity tables</h2>\n<table class=\"files\">\n<tbody>\n");
        for (stem, exts) in &stems {
            let links: Vec<String> =
                exts.iter().map(|e| format!("<a href=\"{0}.{1}\">{1}</a>", escape(stem), escape(e))).collect();
            let _ = writeln!(h, "<tr><td><code>{}</code></td><td>{}</td></tr>", escape(stem), links.join(" · "));
        }
        h.push_str("</tbody>\n</table>\n");
    }
    let replay = format!(
        "nimbus run {} --seeds {}",
        manifest.scenario_path,
        manifest.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    );
    let _ = writeln!(h, "<h2 id=\"manifest\">Manifest</h2>\n<table class=\"manifest\">\n<tbody>");
    for (key, value) in [
        ("scenario", manifest.scenario.clone()),
        ("scenario file", manifest.scenario_path.clone()),
        ("scenario hash", format!("{:016x}", manifest.scenario_hash)),
        ("domain", manifest.domain.clone()),
        (
            "policies",
            manifest
                .policies
                .iter()
                .map(|(l, n)| if l == n { l.clone() } else { format!("{l} ({n})") })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("commit", manifest.commit.clone()),
        ("nimbus", manifest.version.clone()),
        ("replay", replay),
    ] {
        let _ = writeln!(h, "<tr><th>{key}</th><td><code>{}</code></td></tr>", escape(&value));
    }
    h.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    h
}
