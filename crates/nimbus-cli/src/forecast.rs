//! `nimbus forecast`: a forecast study's leaderboard and result files.

use std::path::{Path, PathBuf};

use nimbus_lab::forecast_study::{self, Study, StudyOverrides};
use nimbus_report::forecast::{checks_table, family_table, leaderboard, write_study_results};

use nimbus_report::pipeline::commit_of;

/// What `nimbus forecast` was given.
pub struct Request {
    /// A study file, or none for an ad-hoc study.
    pub study: Option<PathBuf>,
    /// Overrides and ad-hoc series.
    pub overrides: StudyOverrides,
    /// Output directory.
    pub out: Option<PathBuf>,
    /// Print only errors.
    pub quiet: bool,
}

/// Runs a forecast study.
pub fn run(request: Request) -> Result<(), String> {
    let study = match &request.study {
        Some(path) => Study::load(path, &request.overrides),
        None => Study::ad_hoc(&request.overrides),
    }
    .map_err(|e| e.to_string())?;
    let series = forecast_study::load_series(&study).map_err(|e| e.to_string())?;
    if !request.quiet {
        eprintln!(
            "{}: {} model{} × {} series × {} origins",
            study.name,
            study.models.len(),
            if study.models.len() == 1 { "" } else { "s" },
            series.len(),
            study.settings.origins
        );
    }
    let result = forecast_study::run(&study, series).map_err(|e| e.to_string())?;
    let dir = request.out.clone().unwrap_or_else(|| PathBuf::from("results").join("forecast").join(&study.name));
    let commit = commit_of(
        request.study.as_deref().and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")),
    );
    write_study_results(&dir, &study, &result, &commit).map_err(|e| e.to_string())?;
    if !request.quiet {
        let st = &study.settings;
        outln!(
            "\n{} ({} series; {} origins {} steps apart, {}-step horizon, {}-value window; mean ± 95% CI across origins)\n",
            study.name,
            result.series.len(),
            st.origins,
            st.stride,
            st.horizon,
            st.window
        );
        let width = crate::terminal_width();
        out!("{}", leaderboard(&result, true, width));
        let families: std::collections::BTreeSet<&str> = result.series.iter().map(|s| s.family.as_str()).collect();
        if families.len() > 1 {
            outln!("\nMASE by family (series)\n");
            out!("{}", family_table(&result, width));
        }
        let checks = checks_table(&result, width);
        if !checks.is_empty() {
            outln!("\nChecks\n");
            out!("{checks}");
        }
        let notes: Vec<String> = result
            .series
            .iter()
            .flat_map(|s| s.notes.iter().map(move |n| format!("{}/{}: {n}", s.family, s.name)))
            .collect();
        crate::commands::print_notes_and_results(&notes, &dir);
    }
    Ok(())
}
