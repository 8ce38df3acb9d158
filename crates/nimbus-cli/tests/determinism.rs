//! The same scenario and seeds give byte-identical result files.

use crate::{fixture, nimbus, temp_dir};

#[test]
fn results_are_byte_identical_across_runs() {
    let a = temp_dir("det-a");
    let b = temp_dir("det-b");
    for (dir, jobs) in [(&a, "1"), (&b, "2")] {
        let result =
            nimbus(&["run", &fixture("small.toml"), "--quiet", "--jobs", jobs, "--out", dir.to_str().expect("utf-8")]);
        assert!(result.status.success(), "{result:?}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&a)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() > 8, "{names:?}");
    for name in names {
        if name == "timings.json" {
            continue; // wall-clock measurements, by design
        }
        let left = std::fs::read(a.join(&name)).expect("file a");
        let right = std::fs::read(b.join(&name)).expect("file b");
        assert!(left == right, "{name} differs between runs");
    }
}

/// The elastic policies (Sia, Hops) share memoised goodput tables across
/// threads; their results must not depend on how runs are scheduled either.
/// Runs on the synthetic stand-ins so that it needs no shared data.
#[test]
fn elastic_policies_are_deterministic_across_thread_counts() {
    let a = temp_dir("det-hops-a");
    let b = temp_dir("det-hops-b");
    for (dir, jobs) in [(&a, "1"), (&b, "3")] {
        let result = nimbus(&[
            "run",
            "scenarios/gpu/hops-64.toml",
            "--seeds",
            "1,2",
            "--set",
            "workload.traces=\"target/no-such-dir\"",
            "--set",
            "workload.path=\"target/no-such-dir/w-{seed}.csv\"",
            "--quiet",
            "--jobs",
            jobs,
            "--out",
            dir.to_str().expect("utf-8"),
        ]);
        assert!(result.status.success(), "{result:?}");
    }
    for name in ["summary.json", "runs.csv", "jobs_hops_seed1.csv", "jobs_sia_seed2.csv", "jobs_gavel_seed1.csv"] {
        let left = std::fs::read(a.join(name)).expect("file a");
        let right = std::fs::read(b.join(name)).expect("file b");
        assert!(left == right, "{name} differs between thread counts");
    }
}

/// The LLM domain (routers, QLM's random placement stream, synthetic
/// arrivals) is byte-identical across runs and thread counts.
#[test]
fn llm_results_are_byte_identical_across_thread_counts() {
    let a = temp_dir("det-llm-a");
    let b = temp_dir("det-llm-b");
    for (dir, jobs) in [(&a, "1"), (&b, "3")] {
        let result = nimbus(&[
            "run",
            &fixture("llm_small.toml"),
            "--quiet",
            "--jobs",
            jobs,
            "--out",
            dir.to_str().expect("utf-8"),
        ]);
        assert!(result.status.success(), "{result:?}");
    }
    for name in ["summary.json", "runs.csv", "requests_vllm_seed1.csv", "requests_qlm_seed2.csv", "ttft_cdf.svg"] {
        let left = std::fs::read(a.join(name)).expect("file a");
        let right = std::fs::read(b.join(name)).expect("file b");
        assert!(left == right, "{name} differs between thread counts");
    }
}

/// The serverless domain (synthetic apps, streamed arrivals, sampled
/// execution times) is byte-identical across runs and thread counts.
#[test]
fn faas_results_are_byte_identical_across_thread_counts() {
    let a = temp_dir("det-faas-a");
    let b = temp_dir("det-faas-b");
    for (dir, jobs) in [(&a, "1"), (&b, "3")] {
        let result = nimbus(&[
            "run",
            &fixture("faas_small.toml"),
            "--quiet",
            "--jobs",
            jobs,
            "--out",
            dir.to_str().expect("utf-8"),
        ]);
        assert!(result.status.success(), "{result:?}");
    }
    for name in ["summary.json", "runs.csv", "apps_hybrid_seed1.csv", "invocations_faascache_seed2.csv", "memory.svg"] {
        let left = std::fs::read(a.join(name)).expect("file a");
        let right = std::fs::read(b.join(name)).expect("file b");
        assert!(left == right, "{name} differs between thread counts");
    }
}
