//! One test per fixed bug, named after it.

use crate::{nimbus, temp_dir, text};

/// A measurement window must not end before all its jobs have arrived: with
/// sparse arrivals, the first window job can finish before the second
/// arrives (the run used to stop there).
#[test]
fn measurement_window_waits_for_all_its_jobs() {
    let out = temp_dir("window");
    let result = nimbus(&[
        "run",
        "crates/nimbus-cli/tests/fixtures/small.toml",
        "--seeds",
        "1",
        "--set",
        "workload.measure=[5, 25]",
        "--set",
        "workload.jobs_per_hour=0.5",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{:?}", text(&result));
    let runs = std::fs::read_to_string(out.join("runs.csv")).expect("runs");
    let header: Vec<&str> = runs.lines().next().expect("header").split(',').collect();
    let column = header.iter().position(|h| *h == "jobs_measured_completed").expect("column");
    for line in runs.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let completed: f64 = fields[column].parse().expect("number");
        // Every window job that can run on this cluster must have completed
        // (8-GPU jobs cannot: the largest GPU type has 4).
        let jobs = std::fs::read_to_string(out.join(format!("jobs_{}_seed1.csv", fields[0]))).expect("jobs");
        let runnable_in_window =
            jobs.lines().skip(1).filter(|l| l.ends_with(",true") && !l.contains(",unschedulable,")).count();
        assert!(runnable_in_window >= 15, "{jobs}");
        assert_eq!(completed, runnable_in_window as f64, "{line}");
    }
}

/// `--jobs 100000` panicked (a thread pool that size cannot start); it is
/// now capped at a few threads per core, with a warning.
#[test]
fn a_huge_jobs_count_is_capped_not_fatal() {
    let out = temp_dir("jobs-cap");
    let result = nimbus(&[
        "run",
        "crates/nimbus-cli/tests/fixtures/small.toml",
        "--seeds",
        "1",
        "--jobs",
        "100000",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("--jobs 100000: capped at"), "{stderr}");
}
