//! Commands, their output and their error messages.

use std::process::Command;

use crate::{fixture, nimbus, repo_root, temp_dir, text};

#[test]
fn run_prints_table_claims_and_writes_results() {
    let out = temp_dir("run");
    let result = nimbus(&["run", &fixture("small.toml"), "--out", out.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("metric"), "{stdout}");
    assert!(stdout.contains("jct_h_mean") && stdout.contains("gavel_las") && stdout.contains("tiresias"), "{stdout}");
    assert!(stdout.contains("Claims") && stdout.contains("test: LAS is not slower than FIFO"), "{stdout}");
    for file in [
        "summary.json",
        "runs.csv",
        "report.md",
        "manifest.json",
        "timings.json",
        "jct_cdf.svg",
        "utilization.svg",
        "jobs_fifo_seed1.csv",
        "jobs_gavel_las_seed2.csv",
        "jobs_tiresias_seed1.csv",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let jobs = std::fs::read_to_string(out.join("jobs_fifo_seed1.csv")).expect("csv");
    assert!(jobs.starts_with("job_id,name,job_type,gpus_requested,arrival_s"), "{jobs}");
    assert_eq!(jobs.lines().count(), 31, "one row per generated job plus the header");
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("json");
    assert!(summary.contains("\"verdict\""));
    let svg = std::fs::read_to_string(out.join("jct_cdf.svg")).expect("svg");
    assert!(svg.contains("job completion time (h)") && svg.contains(">fifo</text>"));
}

#[test]
fn unschedulable_job_is_recorded_not_fatal() {
    let out = temp_dir("oversized");
    let result = nimbus(&["run", &fixture("trace.toml"), "--out", out.to_str().expect("utf-8"), "--quiet"]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stdout}{stderr}");
    let jobs = std::fs::read_to_string(out.join("jobs_fifo_seed0.csv")).expect("csv");
    let outcomes: Vec<&str> = jobs.lines().skip(1).map(|l| l.split(',').nth(14).unwrap_or("")).collect();
    assert_eq!(outcomes, ["completed", "unschedulable", "completed"], "{jobs}");
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("json");
    assert!(summary.contains("can never run on this cluster"), "{summary}");
}

#[test]
fn unknown_policy_lists_available_ones() {
    let result = nimbus(&["run", &fixture("unknown_policy.toml")]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("unknown gpu policy \"shortest_job_magic\""), "{stderr}");
    assert!(stderr.contains("gavel_las") && stderr.contains("fifo"), "{stderr}");
}

#[test]
fn misspelt_key_names_file_line_and_accepted_keys() {
    let result = nimbus(&["run", &fixture("typo.toml")]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("typo.toml:11:"), "{stderr}");
    assert!(stderr.contains("key `workload.jobs_per_hr`: unknown key"), "{stderr}");
    assert!(stderr.contains("jobs_per_hour"), "{stderr}");
}

#[test]
fn wrong_value_type_names_the_key() {
    let result = nimbus(&["run", &fixture("bad_value.toml")]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("bad_value.toml:7:"), "{stderr}");
    assert!(stderr.contains("key `cluster.servers[0].count`: expected a non-negative integer, found -3"), "{stderr}");
}

#[test]
fn malformed_trace_rows_report_line_and_column() {
    let result = nimbus(&["trace", "gavel-trace", &fixture("negative_steps.trace")]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("negative_steps.trace:2:6 (`total_steps`)"), "{stderr}");
    assert!(stderr.contains("expected a positive number, found `-5`"), "{stderr}");

    let result = nimbus(&["trace", "gavel-trace", &fixture("short_row.trace")]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("short_row.trace:1") && stderr.contains("expected 7, 10 or 12"), "{stderr}");

    let ok = nimbus(&["trace", "gavel-trace", &fixture("oversized.trace")]);
    assert!(ok.status.success());
    assert!(text(&ok).0.contains("3 records, all valid"));
}

#[test]
fn a_scenario_with_a_bad_trace_fails_cleanly() {
    let out = temp_dir("bad-trace");
    let result = nimbus(&[
        "run",
        &fixture("trace.toml"),
        "--set",
        &format!("workload.path=\"{}\"", fixture("negative_steps.trace")),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("negative_steps.trace:2:6"), "{stderr}");
}

#[test]
fn missing_scenario_file_is_an_error() {
    let result = nimbus(&["run", "scenarios/does-not-exist.toml"]);
    assert!(!result.status.success());
    assert!(text(&result).1.contains("does-not-exist.toml: cannot read"));
}

#[test]
fn list_and_show() {
    let result = nimbus(&["list"]);
    let (stdout, _) = text(&result);
    assert!(result.status.success());
    assert!(stdout.contains("domain gpu") && stdout.contains("gavel_las") && stdout.contains("validated"), "{stdout}");
    assert!(stdout.contains("scenarios/gpu/gavel-continuous.toml"), "{stdout}");

    let result = nimbus(&["show", "tiresias"]);
    let (stdout, _) = text(&result);
    assert!(result.status.success());
    assert!(stdout.contains("thresholds_gpu_s"), "{stdout}");

    let result = nimbus(&["show", &fixture("small.toml")]);
    let (stdout, _) = text(&result);
    assert!(result.status.success());
    assert!(stdout.contains("policy      tiresias (tiresias; sets thresholds_gpu_s)"), "{stdout}");

    assert!(!nimbus(&["show", "nonsense"]).status.success());
    assert!(!nimbus(&["list", "quantum"]).status.success());
}

#[test]
fn set_overrides_and_bad_overrides() {
    let out = temp_dir("set");
    let result = nimbus(&[
        "run",
        &fixture("small.toml"),
        "--seeds",
        "3",
        "--set",
        "workload.max_jobs=12",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{:?}", text(&result));
    let jobs = std::fs::read_to_string(out.join("jobs_fifo_seed3.csv")).expect("csv");
    assert_eq!(jobs.lines().count(), 13);

    let result = nimbus(&["run", &fixture("small.toml"), "--set", "nonsense"]);
    assert!(!result.status.success());
    assert!(text(&result).1.contains("expected KEY=VALUE"));
}

/// Without the public profiles, the Sia scenario runs on synthetic
/// stand-ins and says so: a warning, a note, and claims that are "not
/// comparable" rather than checked against the paper.
#[test]
fn synthetic_fallback_is_announced_and_claims_not_comparable() {
    let out = temp_dir("fallback");
    let result = nimbus(&[
        "run",
        "scenarios/gpu/sia-philly.toml",
        "--seeds",
        "1",
        "--set",
        "workload.traces=\"target/no-such-dir\"",
        "--set",
        "workload.path=\"target/no-such-dir/workload-{seed}.csv\"",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("warning: application profiles target/no-such-dir not found"), "{stderr}");
    assert!(stdout.contains("not comparable (ran on synthetic stand-in data"), "{stdout}");
    assert!(!stdout.contains(" holds\n") && !stdout.contains("does not hold"), "{stdout}");
    let jobs = std::fs::read_to_string(out.join("jobs_sia_seed1.csv")).expect("csv");
    assert_eq!(jobs.lines().count(), 161);
}

#[test]
fn llm_run_writes_requests_and_plots() {
    let out = temp_dir("llm");
    let result = nimbus(&["run", &fixture("llm_small.toml"), "--out", out.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("ttft_s_p50") && stdout.contains("sarathi") && stdout.contains("qlm"), "{stdout}");
    for file in ["requests_vllm_seed1.csv", "requests_qlm_seed2.csv", "ttft_cdf.svg", "kv_used.svg", "report.md"] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let requests = std::fs::read_to_string(out.join("requests_vllm_seed1.csv")).expect("csv");
    assert!(requests.starts_with("request,class,model,replica,arrival_s,prompt_tokens,output_tokens"), "{requests}");
    // Every generated request has a row, served or not.
    let rows: Vec<&str> = requests.lines().skip(1).collect();
    assert!(rows.len() > 100, "{} rows", rows.len());
    assert!(rows.iter().all(|r| r.ends_with(",completed")), "{requests}");
}

#[test]
fn llm_unknown_model_names_the_key_and_the_known_models() {
    let result = nimbus(&["run", &fixture("llm_bad_model.toml")]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("llm_bad_model.toml:12:"), "{stderr}");
    assert!(stderr.contains("unknown model `llama-9-900b`") && stderr.contains("llama-3-8b"), "{stderr}");
}

#[test]
fn llm_missing_trace_falls_back_and_claims_are_not_compared() {
    let out = temp_dir("llm-fallback");
    let result = nimbus(&["run", &fixture("llm_missing_trace.toml"), "--out", out.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("target/no-such-dir/conv.csv is absent"), "{stderr}");
    assert!(stdout.contains("not comparable"), "{stdout}");
}

/// MoEsaic's scenario runs without shared data (ShareGPT lengths fall back
/// to their stand-in); asking for more deployments than fit says how many do.
#[test]
fn moesaic_counts_instances_and_refuses_what_does_not_fit() {
    let out = temp_dir("moesaic");
    let result = nimbus(&[
        "run",
        "scenarios/llm/moesaic.toml",
        "--seeds",
        "1",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{:?}", text(&result));
    let runs = std::fs::read_to_string(out.join("runs.csv")).expect("runs");
    assert!(runs.contains("moesaic,1,") && runs.contains("dedicated,1,"), "{runs}");
    let result = nimbus(&["run", "scenarios/llm/moesaic.toml", "--seeds", "1", "--set", "moe.instances=8"]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(
        stderr.contains("8 deployments of mixtral-8x7b sharing experts do not fit") && stderr.contains("at most 6"),
        "{stderr}"
    );
}

#[test]
fn faas_run_writes_apps_invocations_and_memory() {
    let out = temp_dir("faas");
    let result = nimbus(&["run", &fixture("faas_small.toml"), "--out", out.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("app_cold_start_pct_p75") && stdout.contains("hybrid") && stdout.contains("faascache"));
    for file in ["apps_hybrid_seed1.csv", "invocations_fixed-10_seed2.csv", "memory.svg"] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let apps = std::fs::read_to_string(out.join("apps_faascache_seed1.csv")).expect("csv");
    assert!(apps.starts_with("app,mem_mb,invocations,cold_starts,cold_start_pct,wasted_mb_s"), "{apps}");
    assert_eq!(apps.lines().count(), 41);
}

/// Several days of the Azure 2019 format, streamed a day at a time: a
/// function first seen on day 2 joins, and day 2's invocations arrive a day
/// later than day 1's.
#[test]
fn faas_azure2019_days_are_streamed_in_order() {
    let dir = temp_dir("faas-days");
    let header: String = std::iter::once("HashOwner,HashApp,HashFunction,Trigger".to_string())
        .chain((1..=1440).map(|m| m.to_string()))
        .collect::<Vec<_>>()
        .join(",");
    let row = |owner_app_fn: &str, trigger: &str, counts: &[(usize, u32)]| {
        let mut minutes = vec![0u32; 1440];
        for &(m, n) in counts {
            minutes[m - 1] = n;
        }
        let minutes: Vec<String> = minutes.iter().map(u32::to_string).collect();
        format!("{owner_app_fn},{trigger},{}", minutes.join(","))
    };
    let day1 = format!("{header}\n{}\n", row("o,a,f1", "http", &[(1, 1), (1440, 2)]));
    let day2 = format!("{header}\n{}\n{}\n", row("o,a,f1", "http", &[(1, 3)]), row("o,b,f2", "timer", &[(10, 1)]));
    std::fs::write(dir.join("d01.csv"), day1).expect("write");
    std::fs::write(dir.join("d02.csv"), day2).expect("write");
    let scenario = format!(
        "name = \"days\"\ndomain = \"faas\"\nseeds = [1]\n[workload]\nkind = \"azure2019\"\ninvocations = [{:?}, {:?}]\n[[policy]]\nname = \"fixed\"\n",
        dir.join("d01.csv").to_str().expect("utf-8"),
        dir.join("d02.csv").to_str().expect("utf-8"),
    );
    std::fs::write(dir.join("days.toml"), scenario).expect("write");
    let out = dir.join("out");
    let result =
        nimbus(&["run", dir.join("days.toml").to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let invocations = std::fs::read_to_string(out.join("invocations_fixed_seed1.csv")).expect("csv");
    let arrivals: Vec<(String, f64)> = invocations
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].parse::<f64>().expect("arrival"))
        })
        .collect();
    assert_eq!(arrivals.len(), 7, "{invocations}");
    let day2: Vec<&(String, f64)> = arrivals.iter().filter(|a| a.1 >= 86_400.0).collect();
    assert_eq!(day2.len(), 4);
    assert!(day2.iter().any(|a| a.0 == "f2" && (86_940.0..87_000.0).contains(&a.1)), "{day2:?}");
    assert_eq!(arrivals.iter().filter(|a| (86_340.0..86_400.0).contains(&a.1)).count(), 2);
}

#[test]
fn faas_unknown_trigger_names_file_line_and_column() {
    let header: String = std::iter::once("HashOwner,HashApp,HashFunction,Trigger".to_string())
        .chain((1..=1440).map(|m| m.to_string()))
        .collect::<Vec<_>>()
        .join(",");
    let row = format!("o,a,f,pigeon,{}", vec!["1"; 1440].join(","));
    let path = crate::repo_root().join("target/faas-fixture-invocations.csv");
    std::fs::write(&path, format!("{header}\n{row}\n")).expect("write fixture");
    let result = nimbus(&["run", &fixture("faas_bad_trigger.toml")]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(
        stderr.contains("faas-fixture-invocations.csv:2:4") && stderr.contains("unknown trigger `pigeon`"),
        "{stderr}"
    );
}

#[test]
fn consensus_run_writes_replicas_plots_and_checks() {
    let out = temp_dir("consensus");
    let result = nimbus(&["run", &fixture("consensus_small.toml"), "--out", out.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    for word in ["throughput_ops_s", "racos", "rabia", "rs-paxos", "multi-paxos", "linearizable", "Claims"] {
        assert!(stdout.contains(word), "{word} missing: {stdout}");
    }
    assert!(stdout.contains("test: Racos sends fewer bytes") && stdout.contains("holds"), "{stdout}");
    for file in ["replicas_racos_seed1.csv", "replicas_multi-paxos_seed2.csv", "throughput.svg", "latency_cdf.svg"] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let replicas = std::fs::read_to_string(out.join("replicas_rabia_seed1.csv")).expect("csv");
    assert!(replicas.starts_with("replica,alive,messages,bytes_sent,disk_bytes,nic_busy_pct,disk_busy_pct"));
    assert_eq!(replicas.lines().count(), 6, "{replicas}");
    // Every run is checked and linearizable, and every operation answered.
    let runs = std::fs::read_to_string(out.join("runs.csv")).expect("csv");
    let header: Vec<&str> = runs.lines().next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    for line in runs.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[col("linearizable")], "1", "{line}");
        assert_eq!(cells[col("ops_completed")], "320", "{line}");
    }
}

#[test]
fn consensus_refuses_leader_baselines_under_faults_and_bad_keys() {
    let result = nimbus(&["run", &fixture("consensus_leader_faults.toml")]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("consensus_leader_faults.toml:") && stderr.contains("without [faults]"), "{stderr}");

    let result = nimbus(&["run", &fixture("consensus_small.toml"), "--set", "cluster.replica=3"]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("cluster.replica") && stderr.contains("accepted keys here") && stderr.contains("replicas"));

    let result = nimbus(&["run", &fixture("consensus_small.toml"), "--set", "cluster.faults_tolerated=3"]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("tolerate at most 2 crashes"), "{stderr}");

    let result = nimbus(&["run", &fixture("consensus_small.toml"), "--set", "workload.core=\"z\""]);
    assert!(!result.status.success());
    assert!(text(&result).1.contains("workload.core"), "{:?}", text(&result));
}

/// `nimbus forecast` on a study: a leaderboard, checks, and result files
/// that pandas reads (one header, one row per cell, no missing columns).
#[test]
fn forecast_study_prints_a_leaderboard_and_writes_files() {
    let out = temp_dir("forecast-study");
    let result = nimbus(&[
        "forecast",
        "scenarios/forecast/synthetic.toml",
        "--origins",
        "3",
        "--models",
        "naive,snaive24,mstl,croston,tsb,autoets",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    for expected in
        ["MASE", "cover 80%", "mstl(24,168)", "MASE by family", "synthetic-intermittent (4)", "Checks", "holds"]
    {
        assert!(stdout.contains(expected), "missing {expected:?} in\n{stdout}");
    }
    let mut reader = csv::Reader::from_path(out.join("cells.csv")).expect("cells.csv");
    let columns = reader.headers().expect("header").len();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a CSV row")).collect();
    // 12 series × 6 models × 3 origins, each row as wide as the header.
    assert_eq!(rows.len(), 12 * 6 * 3);
    assert!(rows.iter().all(|r| r.len() == columns));
    assert!(rows.iter().any(|r| &r[2] == "mstl(24,168)"));
    for file in [
        "leaderboard.csv",
        "forecasts.csv",
        "summary.json",
        "report.md",
        "timings.json",
        "plots/synthetic-flat-flat-0.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(summary["checks"].as_array().expect("checks").len(), 3);
    // `nimbus run` on a forecast study does the same.
    let again = temp_dir("forecast-run");
    let result = nimbus(&[
        "run",
        "scenarios/forecast/synthetic.toml",
        "--set",
        "settings.origins=2",
        "--quiet",
        "--out",
        again.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{result:?}");
    assert!(again.join("cells.csv").is_file());
}

/// Ad-hoc series on the command line, without a study file.
#[test]
fn forecast_ad_hoc_series() {
    let dir = temp_dir("forecast-adhoc");
    let csv = dir.join("load.csv");
    let mut text_csv = String::from("time,load\n");
    for h in 0..24 * 10 {
        text_csv.push_str(&format!("2024-03-{:02} {:02}:00,{}\n", 1 + h / 24, h % 24, 10 + (h % 24)));
    }
    std::fs::write(&csv, text_csv).expect("csv");
    let spec = format!("csv:{}#load", csv.display());
    assert_seasonal_naive_is_exact(&spec, "120", &dir.join("out"), "2024-03-10 23:00 UTC");
}

/// Runs naive and seasonal naive on one ad-hoc series of a perfect daily
/// pattern: seasonal naive must be exact, and the last forecast must end at
/// `last_time`.
fn assert_seasonal_naive_is_exact(spec: &str, window: &str, out: &std::path::Path, last_time: &str) {
    let result = nimbus(&[
        "forecast",
        "--series",
        spec,
        "--models",
        "naive,snaive24",
        "--origins",
        "3",
        "--window",
        window,
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    let line = stdout.lines().find(|l| l.contains("snaive24")).expect("snaive24 row");
    assert!(line.contains(" 0 "), "a daily pattern is exact for seasonal naive: {line}");
    let forecasts = std::fs::read_to_string(out.join("forecasts.csv")).expect("forecasts");
    assert!(forecasts.contains(last_time), "{forecasts}");
}

/// Redset-style query events (exported to CSV) become hourly counts or
/// scanned-byte sums.
#[test]
fn forecast_on_redset_events() {
    let dir = temp_dir("forecast-redset");
    let csv = dir.join("redset.csv");
    let mut rows = String::from("instance_id,query_id,arrival_timestamp,mbytes_scanned,query_type\n");
    let mut id = 0;
    for hour in 0..24 * 12 {
        // Busy in the day, quiet at night.
        let queries = if (8..20).contains(&(hour % 24)) { 3 } else { 1 };
        for q in 0..queries {
            id += 1;
            rows.push_str(&format!(
                "7,{id},2024-03-{:02} {:02}:{:02}:05.250,{},select\n",
                1 + hour / 24,
                hour % 24,
                q * 10,
                if q == 0 { "" } else { "40.5" }
            ));
        }
    }
    std::fs::write(&csv, rows).expect("csv");
    for spec in [format!("redset:{}", csv.display()), format!("redset:{}#mbytes_scanned", csv.display())] {
        let out = dir.join(if spec.ends_with("scanned") { "bytes" } else { "counts" });
        assert_seasonal_naive_is_exact(&spec, "168", &out, "2024-03-12 23:00 UTC");
    }
}

/// The same query events as Parquet, as Redset publishes them: a
/// millisecond timestamp column and nullable scanned bytes.
#[cfg(feature = "parquet")]
#[test]
fn forecast_on_redset_parquet() {
    use nimbus_trace::columnar::{Values, write_columns};
    let dir = temp_dir("forecast-redset-parquet");
    let (mut times, mut bytes) = (Vec::new(), Vec::new());
    // 2024-03-01 00:00:05.250 UTC.
    let start_ms = 1_709_251_205_250i64;
    for hour in 0..24 * 12i64 {
        let queries = if (8..20).contains(&(hour % 24)) { 3 } else { 1 };
        for q in 0..queries {
            times.push(Some(start_ms + hour * 3_600_000 + q * 600_000));
            bytes.push(if q == 0 { None } else { Some(40.5) });
        }
    }
    let file =
        write_columns(&[("arrival_timestamp", &Values::TimeMs(times)), ("mbytes_scanned", &Values::Float(bytes))])
            .expect("parquet");
    let path = dir.join("redset.parquet");
    std::fs::write(&path, file).expect("write");
    for spec in [format!("redset:{}", path.display()), format!("redset:{}#mbytes_scanned", path.display())] {
        let out = dir.join(if spec.ends_with("scanned") { "bytes" } else { "counts" });
        assert_seasonal_naive_is_exact(&spec, "168", &out, "2024-03-12 23:00 UTC");
    }
    let result = nimbus(&["trace", "redset", path.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{}", text(&result).1);
}

/// An OpenDC workload directory (Parquet tasks and fragments) becomes the
/// hourly CPU usage of the cluster; a fragment file that names an unknown
/// task is refused with its row.
#[cfg(feature = "parquet")]
#[test]
fn forecast_on_an_opendc_workload() {
    use nimbus_trace::columnar::{Values, write_columns};
    let dir = temp_dir("forecast-opendc");
    let workload = dir.join("week");
    std::fs::create_dir_all(&workload).expect("dir");
    // One task per day, 2024-03-01 on, each with 24 one-hour fragments whose
    // usage follows the hour of the day.
    let days = 10i64;
    let start_ms = 1_709_251_200_000i64;
    let tasks = write_columns(&[
        ("id", &Values::Int((0..days).map(Some).collect())),
        ("submission_time", &Values::Int((0..days).map(|d| Some(start_ms + d * 86_400_000)).collect())),
        ("duration", &Values::Int(vec![Some(86_400_000); days as usize])),
        ("cpu_count", &Values::Int(vec![Some(4); days as usize])),
        ("cpu_capacity", &Values::Float(vec![Some(8400.0); days as usize])),
        ("mem_capacity", &Values::Int(vec![Some(4096); days as usize])),
    ])
    .expect("tasks");
    let ids: Vec<Option<i64>> = (0..days).flat_map(|d| std::iter::repeat_n(Some(d), 24)).collect();
    let usage: Vec<Option<f64>> = (0..days * 24).map(|h| Some(100.0 + 50.0 * (h % 24) as f64)).collect();
    let fragments = write_columns(&[
        ("id", &Values::Int(ids.clone())),
        ("duration", &Values::Int(vec![Some(3_600_000); ids.len()])),
        ("cpu_usage", &Values::Float(usage)),
    ])
    .expect("fragments");
    std::fs::write(workload.join("tasks.parquet"), &tasks).expect("write");
    std::fs::write(workload.join("fragments.parquet"), &fragments).expect("write");
    let spec = format!("opendc:{}", workload.display());
    assert_seasonal_naive_is_exact(&spec, "120", &dir.join("out"), "2024-03-10 23:00 UTC");
    let result = nimbus(&["trace", "opendc-tasks", workload.join("tasks.parquet").to_str().expect("utf-8")]);
    assert!(result.status.success(), "{}", text(&result).1);

    let mut bad_ids = ids;
    bad_ids[30] = Some(99);
    let bad = write_columns(&[
        ("id", &Values::Int(bad_ids.clone())),
        ("duration", &Values::Int(vec![Some(3_600_000); bad_ids.len()])),
        ("cpu_usage", &Values::Float(vec![Some(1.0); bad_ids.len()])),
    ])
    .expect("fragments");
    std::fs::write(workload.join("fragments.parquet"), &bad).expect("write");
    let result = nimbus(&["forecast", "--series", &spec, "--models", "naive", "--origins", "1"]);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(
        stderr.contains("fragments.parquet") && stderr.contains("row 31, column `id`: no task has id `99`"),
        "{stderr}"
    );
}

/// Model lists split at commas outside parentheses.
#[test]
fn forecast_models_with_parameter_lists() {
    let result = nimbus(&[
        "forecast",
        "--series",
        "synthetic:diurnal",
        "--models",
        "mstl(24,168), linear(24),global-linear(24,168)",
        "--origins",
        "2",
    ]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    for model in ["mstl(24,168)", "linear(24)", "global-linear"] {
        assert!(stdout.contains(model), "{model} missing:\n{stdout}");
    }
}

/// `nimbus list forecast` lists the models a study can name.
#[test]
fn list_forecast_shows_the_models() {
    let result = nimbus(&["list", "forecast"]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    for expected in ["autoarima", "mstl", "croston", "scenarios/forecast/study.toml"] {
        assert!(stdout.contains(expected), "missing {expected} in\n{stdout}");
    }
}

/// `nimbus chain` end to end: a small real chain under both orders, each
/// row with every request answered and the twin beside it.
#[test]
fn the_real_call_chain_runs_beside_the_twin() {
    let dir = temp_dir("chain");
    let csv = dir.join("chain.csv");
    let result = nimbus(&[
        "chain",
        "--tiers",
        "1,2",
        "--requests",
        "300",
        "--load",
        "0.5",
        "--csv",
        csv.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    assert!(stdout.contains("oldest-first") && stdout.contains("twin rps"), "{stdout}");
    let rows = std::fs::read_to_string(&csv).expect("csv");
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 3, "{rows}");
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!((f[10], f[11], f[12]), ("300", "0", "false"), "{line}");
        let (real, twin): (f64, f64) = (f[2].parse().expect("real mean"), f[6].parse().expect("twin mean"));
        assert!(real > 0.0 && twin > 0.0, "{line}");
    }
}

/// A run may start from a saved checkpoint (`[workload] init`); one of
/// another network is refused by name before anything runs.
#[test]
fn train_starts_from_a_checkpoint_of_the_same_network() {
    use nimbus_nn::net::{Arch, Network};
    use nimbus_nn::optim::Sgd;
    let dir = temp_dir("train-init");
    let path = dir.join("start.safetensors");
    let net = Network::new(&Arch::Mlp { hidden: vec![32] }, 28, 7).expect("net");
    let opt = Sgd::new(&net, 0.05, 0.9);
    std::fs::write(&path, nimbus_nn::checkpoint::save(&net, &opt, 0).expect("save")).expect("write");
    let init = format!("workload.init=\"{}\"", path.display());
    let out = dir.join("out");
    let common = [
        "run",
        "scenarios/train/inshrinkerator.toml",
        "--seeds",
        "1",
        "--quiet",
        "--set",
        "workload.data=\"/nonexistent/mnist\"",
        "--set",
        "workload.epochs=1",
        "--set",
        "workload.train_images=600",
        "--set",
        "workload.validation=100",
        "--set",
        &init,
        "--out",
        out.to_str().expect("utf-8"),
    ];
    let mut ok = common.to_vec();
    ok.extend(["--set", "workload.network=\"mlp-32\""]);
    let result = nimbus(&ok);
    assert!(result.status.success(), "{result:?}");
    let mut wrong = common.to_vec();
    wrong.extend(["--set", "workload.network=\"mlp-64\""]);
    let result = nimbus(&wrong);
    let (_, stderr) = text(&result);
    assert!(!result.status.success());
    assert!(stderr.contains("start.safetensors") && stderr.contains("holds mlp-32"), "{stderr}");
}

/// The plans study runs end to end and picks a plan per instance.
#[test]
fn train_plans_pick_a_fitting_plan_per_instance() {
    let out = temp_dir("train-plans");
    let result = nimbus(&["run", "scenarios/train/nxd.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{result:?}");
    let runs = std::fs::read_to_string(out.join("runs.csv")).expect("runs.csv");
    assert!(
        runs.contains("nxd")
            && runs.contains("megatron-p4d")
            && runs.lines().next().unwrap_or("").contains("tokens_per_s"),
        "{runs}"
    );
}

/// A headless browser: `NIMBUS_CHROMIUM`, or Debian's `chromium`.
fn chromium() -> Option<std::path::PathBuf> {
    let named = std::env::var_os("NIMBUS_CHROMIUM").map(std::path::PathBuf::from);
    named
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(std::path::PathBuf::from))
        .find(|p| p.is_file())
}

/// `report.html` renders in headless Chromium without console messages,
/// and shows the comparison, every claim and the plot.
#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: no Chromium (apt-get install chromium, or set NIMBUS_CHROMIUM)");
        return;
    };
    let out = temp_dir("html");
    let result = nimbus(&[
        "run",
        "scenarios/train/paragan.toml",
        "--quiet",
        "--seeds",
        "1,2",
        "--set",
        "workload.cores=[8, 64]",
        "--set",
        "workload.iterations=100",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{result:?}");
    let page = out.join("report.html").canonicalize().expect("report.html");
    let profile = out.join("chromium-profile");
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push(format!("file://{}", page.display()));
        Command::new(&browser).args(&args).current_dir(&out).output().expect("chromium runs")
    };
    let dom = run(&["--dump-dom"]);
    let (html, log) = text(&dom);
    assert!(dom.status.success(), "{log}");
    assert!(!log.contains(":CONSOLE"), "console messages: {log}");
    assert!(html.contains("<table class=\"comparison\">") && html.contains("<svg"), "{html}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    let claims = summary["claims"].as_array().expect("claims");
    assert!(!claims.is_empty());
    for claim in claims {
        let source = claim["source"].as_str().expect("source").replace('&', "&amp;").replace('<', "&lt;");
        let verdict = claim["verdict"].as_str().expect("verdict");
        assert!(html.contains(&source) && html.contains(verdict), "{source} / {verdict} missing");
    }
    let shot = run(&["--screenshot"]);
    assert!(shot.status.success(), "{:?}", text(&shot).1);
    let png = std::fs::metadata(out.join("screenshot.png")).expect("screenshot.png").len();
    assert!(png > 20_000, "a {png}-byte screenshot");
}

/// Tables fit `COLUMNS`: the comparison wraps into blocks, the claims are
/// abbreviated; without it (a pipe), lines run as wide as they need.
#[test]
fn tables_fit_the_terminal_width() {
    let args = [
        "run",
        "scenarios/train/paragan.toml",
        "--seeds",
        "1",
        "--set",
        "workload.cores=[8]",
        "--set",
        "workload.iterations=20",
    ];
    let out = temp_dir("columns");
    let mut with_out: Vec<&str> = args.to_vec();
    with_out.extend(["--out", out.to_str().expect("utf-8")]);
    let narrow = Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(&with_out)
        .env("COLUMNS", "80")
        .current_dir(repo_root())
        .output()
        .expect("runs");
    assert!(narrow.status.success(), "{narrow:?}");
    let (stdout, _) = text(&narrow);
    assert!(stdout.lines().all(|l| l.chars().count() <= 80), "{stdout}");
    assert!(stdout.contains('…') && stdout.matches("metric ").count() >= 2, "{stdout}");
    let wide = nimbus(&with_out);
    let (stdout, _) = text(&wide);
    assert!(stdout.lines().any(|l| l.chars().count() > 120) && !stdout.contains('…'), "{stdout}");
}

/// The GAN study runs end to end: one row per core count, efficiency 100%
/// at the smallest, and asynchrony never slower than synchronous coupling
/// with everything else equal.
#[test]
fn train_gan_scales_and_asynchrony_helps() {
    let out = temp_dir("train-gan");
    let result = nimbus(&[
        "run",
        "scenarios/train/paragan.toml",
        "--quiet",
        "--seeds",
        "1",
        "--set",
        "workload.cores=[8, 128]",
        "--set",
        "workload.iterations=300",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{result:?}");
    let scales = std::fs::read_to_string(out.join("scales_paragan_seed1.csv")).expect("scales");
    let rows: Vec<&str> = scales.lines().collect();
    assert_eq!(rows.len(), 3, "{scales}");
    assert!(rows[1].starts_with("8,64,") && rows[1].split(',').nth(5) == Some("100"), "{scales}");
    let runs = std::fs::read_to_string(out.join("runs.csv")).expect("runs.csv");
    let images = |label: &str| -> f64 {
        let line = runs.lines().find(|l| l.starts_with(&format!("{label},"))).expect("label");
        line.split(',').nth(2).and_then(|v| v.parse().ok()).expect("images_per_s")
    };
    assert!(images("paragan") > images("paragan-sync"), "{runs}");
}

/// The pushdown study runs end to end: one row per grid case, and HAPI's
/// chosen splits are never slower than no pushdown by more than its miss.
#[test]
fn train_pushdown_covers_the_grid() {
    let out = temp_dir("train-hapi");
    let result = nimbus(&["run", "scenarios/train/hapi.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{result:?}");
    let cases = std::fs::read_to_string(out.join("cases_hapi_seed1.csv")).expect("cases");
    assert_eq!(cases.lines().count(), 1 + 160, "{cases}");
}
