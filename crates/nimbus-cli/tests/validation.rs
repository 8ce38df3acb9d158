//! Validation against published numbers. These tests need `../shared/data`
//! (the public traces); without it they print a notice and pass vacuously.

use crate::{nimbus, shared_data, temp_dir, text};

fn summary_value(summary: &str, policy: &str, metric: &str) -> f64 {
    let json_start = summary.find(&format!("\"{policy}\": {{")).expect("policy in summary");
    let section = &summary[json_start..];
    let metric_start = section.find(&format!("\"{metric}\": {{")).expect("metric in summary");
    let section = &section[metric_start..];
    let mean_start = section.find("\"mean\": ").expect("mean") + "\"mean\": ".len();
    let end = section[mean_start..].find([',', '\n']).expect("end of number");
    section[mean_start..mean_start + end].trim().parse().expect("a number")
}

/// Gavel OSDI'20, continuous single-GPU experiment at 2.0 jobs/h on
/// 36 K80 + 36 P100 + 36 V100, average JCT of jobs 4000–5000:
/// LAS (heterogeneity-aware) 16.95 h, agnostic LAS 23.47 h. Tolerance 15%.
#[test]
fn gavel_continuous_matches_published_jct() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the Gavel validation test");
        return;
    }
    let out = temp_dir("gavel-validation");
    let result =
        nimbus(&["run", "scenarios/gpu/gavel-continuous.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{:?}", text(&result));
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    let las = summary_value(&summary, "gavel_las", "jct_h_mean");
    let agnostic = summary_value(&summary, "gavel_las_agnostic", "jct_h_mean");
    eprintln!("Gavel LAS: ours {las:.2} h vs paper 16.95 h; agnostic: ours {agnostic:.2} h vs paper 23.47 h");
    assert!((las - 16.95).abs() <= 0.15 * 16.95, "LAS {las} h not within 15% of 16.95 h");
    assert!((agnostic - 23.47).abs() <= 0.15 * 23.47, "agnostic LAS {agnostic} h not within 15% of 23.47 h");
    assert!(!summary.contains("\"verdict\": \"does not hold\""), "{summary}");
    // Pinned before the allocation LPs were memoised (a memo may only skip
    // solves, never change an allocation): the JCTs stay these bits.
    assert_eq!(las, 17.020470996078988, "LAS JCT changed");
    assert_eq!(agnostic, 23.683736832669485, "agnostic LAS JCT changed");
}

/// Sia SOSP'23 Table 3, Philly workloads 1–8 on the 64-GPU heterogeneous
/// cluster: Sia 0.6 h and Gavel 1.9 h average JCT (tolerance 25%), in the
/// setting where jobs progress at their profiled speed. With the artifact's
/// slowdown calibration the absolute JCTs are about 1.4x longer; there we
/// check only that Sia's advantage over Gavel keeps the published ratio
/// (0.316) within 25%.
#[test]
fn sia_philly_matches_published_jct() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the Sia validation test");
        return;
    }
    let out = temp_dir("sia-validation");
    let result = nimbus(&["run", "scenarios/gpu/sia-philly.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{:?}", text(&result));
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    let sia = summary_value(&summary, "sia", "jct_h_mean");
    let gavel = summary_value(&summary, "gavel", "jct_h_mean");
    eprintln!("Sia: ours {sia:.3} h vs paper 0.6 h; Gavel: ours {gavel:.3} h vs paper 1.9 h");
    assert!((sia - 0.6).abs() <= 0.25 * 0.6, "Sia {sia} h not within 25% of 0.6 h");
    assert!((gavel - 1.9).abs() <= 0.25 * 1.9, "Gavel {gavel} h not within 25% of 1.9 h");

    let calibrated = temp_dir("sia-validation-calibrated");
    let result = nimbus(&[
        "run",
        "scenarios/gpu/sia-philly-calibrated.toml",
        "--quiet",
        "--out",
        calibrated.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{:?}", text(&result));
    let summary = std::fs::read_to_string(calibrated.join("summary.json")).expect("summary");
    let ratio = summary_value(&summary, "sia", "jct_h_mean") / summary_value(&summary, "gavel", "jct_h_mean");
    eprintln!("Sia/Gavel with the artifact's calibration: ours {ratio:.3} vs paper 0.316");
    assert!((ratio - 0.316).abs() <= 0.25 * 0.316, "ratio {ratio} not within 25% of 0.316");
}

/// Hops (SoCC'24) on the stand-in clusters (Sia's GPU types with per-server
/// speeds, Philly-derived workloads): what our twin reproduces. Hops beats
/// Gavel on average JCT and on the maximum latency ratio (by more than 3x at
/// 64 GPUs and 10x at 512), and keeps fragmentation under one GPU per round
/// at 512 GPUs. Against Sia (with an exact goodput oracle and adaptive batch
/// sizes in our twin) the paper's advantage does not reproduce; the numbers
/// are printed, not asserted.
#[test]
fn hops_against_its_baselines() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the Hops validation test");
        return;
    }
    for (scenario, lr_factor) in [("scenarios/gpu/hops-64.toml", 3.0), ("scenarios/gpu/hops-512.toml", 10.0)] {
        let out = temp_dir(scenario.rsplit('/').next().expect("file name"));
        let result = nimbus(&["run", scenario, "--quiet", "--out", out.to_str().expect("utf-8")]);
        assert!(result.status.success(), "{:?}", text(&result));
        let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
        let value = |policy: &str, metric: &str| summary_value(&summary, policy, metric);
        let (hops_jct, sia_jct, gavel_jct) =
            (value("hops", "jct_h_mean"), value("sia", "jct_h_mean"), value("gavel", "jct_h_mean"));
        let (hops_lr, sia_lr, gavel_lr) = (
            value("hops", "latency_ratio_max"),
            value("sia", "latency_ratio_max"),
            value("gavel", "latency_ratio_max"),
        );
        let fragments = value("hops", "fragmented_gpus_per_round");
        eprintln!(
            "{scenario}: JCT hops {hops_jct:.3} h, sia {sia_jct:.3} h, gavel {gavel_jct:.3} h; max LR hops {hops_lr:.2}, sia {sia_lr:.2}, gavel {gavel_lr:.2}; hops fragments/round {fragments:.3}"
        );
        assert!(hops_jct < gavel_jct, "{scenario}: Hops JCT {hops_jct} not below Gavel's {gavel_jct}");
        assert!(
            hops_lr * lr_factor <= gavel_lr,
            "{scenario}: Hops max LR {hops_lr} not {lr_factor}x below Gavel's {gavel_lr}"
        );
        assert!(fragments < 1.0, "{scenario}: Hops leaves {fragments} GPUs fragmented per round");
    }
}

/// Sarathi-Serve OSDI'24 against vLLM on the Azure 2023 conversation
/// trace (Llama-2-7B, one A100-80GB, 0.75x the trace's rate): chunked
/// prefills lower the p99 time between tokens and raise the median TTFT.
#[test]
fn sarathi_lowers_tail_tbt_on_the_azure_conversation_trace() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the vLLM/Sarathi validation test");
        return;
    }
    let out = temp_dir("llm-sarathi");
    let result =
        nimbus(&["run", "scenarios/llm/vllm-vs-sarathi.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{:?}", text(&result));
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    let tbt = |p: &str| summary_value(&summary, p, "tbt_ms_p99");
    let ttft = |p: &str| summary_value(&summary, p, "ttft_s_p50");
    eprintln!(
        "p99 TBT vllm {:.0} ms, sarathi {:.0} ms; p50 TTFT vllm {:.3} s, sarathi {:.3} s",
        tbt("vllm"),
        tbt("sarathi"),
        ttft("vllm"),
        ttft("sarathi")
    );
    assert!(tbt("sarathi") < 0.5 * tbt("vllm"));
    assert!(ttft("sarathi") > ttft("vllm"));
    // Every request of the trace is served.
    assert_eq!(summary_value(&summary, "vllm", "requests_completed"), 19_366.0);
    // The default (`exec = "auto"`) runs Vidur's measured tables where
    // they exist, as here; the calibrated roofline in their place gives
    // nearly the same decode pace.
    assert!(summary.contains("Vidur's GEMM and element-wise profiles (exec = "), "{summary}");
    let roofline = temp_dir("llm-sarathi-roofline");
    let result = nimbus(&[
        "run",
        "scenarios/llm/vllm-vs-sarathi.toml",
        "--set",
        "engine.exec=\"roofline\"",
        "--quiet",
        "--out",
        roofline.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{:?}", text(&result));
    let with_roofline = std::fs::read_to_string(roofline.join("summary.json")).expect("summary");
    for policy in ["vllm", "sarathi"] {
        let roof = summary_value(&with_roofline, policy, "tbt_ms_p50");
        let prof = summary_value(&summary, policy, "tbt_ms_p50");
        eprintln!("{policy}: median TBT roofline {roof:.1} ms, profiles {prof:.1} ms");
        assert!((prof / roof - 1.0).abs() <= 0.10, "{policy}: {prof} vs {roof}");
    }
}

/// QLM SoCC'24 under overload (scenarios/llm/qlm-mixed.toml): interactive
/// SLO attainment at least 1.4x FCFS's, throughput at least 1.2x, batch
/// attainment within 10% of FCFS's.
#[test]
fn qlm_beats_fcfs_under_overload() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the QLM validation test");
        return;
    }
    let out = temp_dir("llm-qlm");
    let result = nimbus(&["run", "scenarios/llm/qlm-mixed.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{:?}", text(&result));
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    let v = |p: &str, m: &str| summary_value(&summary, p, m);
    let interactive = v("qlm", "slo_attainment_interactive") / v("fcfs", "slo_attainment_interactive");
    let throughput = v("qlm", "throughput_rps") / v("fcfs", "throughput_rps");
    let batch = v("qlm", "slo_attainment_batch") / v("fcfs", "slo_attainment_batch");
    eprintln!("QLM/FCFS: interactive attainment {interactive:.2}x, throughput {throughput:.2}x, batch {batch:.2}x");
    assert!(interactive >= 1.4 && throughput >= 1.2 && (batch - 1.0).abs() <= 0.1);
}

/// Serverless in the Wild's Pareto check on two days of the synthetic
/// Azure-2019-like workload (the scenario runs 14; CI time): every
/// hybrid-histogram point lies below the fixed keep-alive curve
/// (fewer app cold starts than fixed keep-alive interpolated at the same
/// idle memory). Runs on synthetic data; needs no shared data.
#[test]
fn hybrid_histogram_lies_below_the_fixed_keep_alive_curve() {
    let out = temp_dir("sitw");
    let result = nimbus(&[
        "run",
        "scenarios/faas/sitw-pareto.toml",
        "--seeds",
        "1",
        "--set",
        "workload.days=2",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(result.status.success(), "{result:?}");
    let runs = std::fs::read_to_string(out.join("runs.csv")).expect("runs");
    let header: Vec<&str> = runs.lines().next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (cold, waste) = (col("app_cold_start_pct_p75"), col("wasted_memory_gb_s"));
    let mut fixed = Vec::new();
    let mut hybrid = Vec::new();
    for line in runs.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let point = (f[waste].parse::<f64>().expect("waste"), f[cold].parse::<f64>().expect("cold"));
        if f[0].starts_with("fixed") { fixed.push(point) } else { hybrid.push(point) }
    }
    fixed.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!("fixed (idle GB·s, p75 app cold %): {fixed:?}\nhybrid: {hybrid:?}");
    for &(w, c) in &hybrid {
        // The fixed curve at the same idle memory (flat beyond its ends).
        let curve = match fixed.iter().position(|p| p.0 >= w) {
            Some(0) => fixed[0].1,
            Some(i) => {
                let (a, b) = (fixed[i - 1], fixed[i]);
                a.1 + (b.1 - a.1) * (w - a.0) / (b.0 - a.0)
            }
            None => fixed.last().expect("points").1,
        };
        assert!(c < curve, "hybrid ({w}, {c}) is not below the fixed curve ({curve})");
    }
}

/// The Ilúvatar sample (Azure 2019-derived, 11,868 invocations of 21
/// functions in 5 minutes) replayed 12 times: every invocation is completed
/// or reported dropped, under every policy.
#[test]
fn iluvatar_sample_accounts_for_every_invocation() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the Ilúvatar sample test");
        return;
    }
    let out = temp_dir("iluvatar");
    let result =
        nimbus(&["run", "scenarios/faas/iluvatar-sample.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert!(result.status.success(), "{:?}", text(&result));
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    for policy in ["fixed-10", "hybrid", "gdsf", "lru"] {
        let done = summary_value(&summary, policy, "invocations");
        let dropped = summary_value(&summary, policy, "dropped");
        assert_eq!(done + dropped, 12.0 * 11_868.0, "{policy}");
    }
}

/// The Forecast-study leaderboard on seven families of real series. The
/// study's checks may fail honestly (they are printed); what must hold is
/// that every family is evaluated, every model scores every cell, and the
/// files say which checks held.
#[test]
fn forecast_study_on_real_series() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the forecast-study test");
        return;
    }
    let out = temp_dir("forecast-real");
    let result = nimbus(&["forecast", "scenarios/forecast/study.toml", "--out", out.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    eprintln!("{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    let families: std::collections::BTreeSet<&str> =
        summary["series"].as_array().expect("series").iter().map(|s| s["family"].as_str().expect("family")).collect();
    assert!(families.len() >= 6, "{families:?}");
    for row in summary["leaderboard"].as_array().expect("leaderboard") {
        assert_eq!(row["failed"], 0, "{row}");
    }
    let checks = summary["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 5);
    assert!(checks.iter().all(|c| c["holds"].is_boolean()), "{checks:?}");
}

/// The CPU-usage study on OpenDC's Parquet traces (Bitbrains VMs one by
/// one and in total, the SURF week), at three origins.
#[cfg(feature = "parquet")]
#[test]
fn forecast_cpu_usage_on_opendc_traces() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the CPU-usage forecast test");
        return;
    }
    let out = temp_dir("forecast-cpu-usage");
    let result = nimbus(&[
        "forecast",
        "scenarios/forecast/cpu-usage.toml",
        "--origins",
        "3",
        "--models",
        "naive,snaive288,ma12,mstl(288),linear(288),global-linear(12,288)",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    eprintln!("{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    let series = summary["series"].as_array().expect("series");
    assert_eq!(series.len(), 52);
    assert_eq!(series.iter().filter(|s| s["family"] == "bitbrains-vm").count(), 50);
    for row in summary["leaderboard"].as_array().expect("leaderboard") {
        assert_eq!(row["failed"], 0, "{row}");
    }
    assert_eq!(summary["checks"].as_array().expect("checks").len(), 3);
}

/// Meta-Leasing with the 50 Bitbrains VMs as owners: leasing saves
/// footprint at every q, owner shortage stays below 1 − q, and the real
/// trace (not the synthetic stand-in) was read.
#[cfg(feature = "parquet")]
#[test]
fn meta_leasing_on_bitbrains_owners() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the Bitbrains leasing test");
        return;
    }
    let out = temp_dir("meta-leasing-bitbrains");
    let result = nimbus(&[
        "run",
        "scenarios/elastic/meta-leasing-bitbrains.toml",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let (_, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    assert!(!stderr.contains("synthetic owners stand in"), "{stderr}");
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    for (policy, q) in [("leasing-q0.95", 0.95), ("leasing-q0.9", 0.9), ("leasing-q0.8", 0.8)] {
        let saving = summary_value(&summary, policy, "footprint_saving_pct");
        let shortage = summary_value(&summary, policy, "owner_shortage_pct");
        eprintln!("{policy}: footprint saving {saving:.1}%, owner shortage {shortage:.3}%");
        assert!(saving > 0.0, "{policy}");
        assert!(shortage <= 100.0 * (1.0 - q), "{policy}: {shortage}%");
    }
}

/// MC-WSCPT on Decima's TPC-H jobs at high load: what docs/dc.md reports.
/// The hybrid with DRA and DTP cuts mean JCT + makespan by more than the
/// paper's 21% against Spark FIFO and SJF-CP, DRA matters, and Decima's
/// dynamic partition stays within 10% of it (the paper's margin over
/// other schedulers is not reproduced against that baseline).
#[test]
fn mc_wscpt_on_tpch_streams() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the TPC-H stream test");
        return;
    }
    let out = temp_dir("dc-tpch-stream");
    let result = nimbus(&["run", "scenarios/dc/tpch-stream.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    let (_, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    assert!(!stderr.contains("stand in"), "{stderr}");
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    let v = |p: &str| summary_value(&summary, p, "jct_plus_makespan_s");
    let hybrid = v("mc-wscpt");
    for (baseline, at_most) in [("fifo", 0.79), ("sjf-cp", 0.79), ("hybrid-no-dra", 0.79), ("fair", 1.0)] {
        let ratio = hybrid / v(baseline);
        eprintln!("mc-wscpt / {baseline}: {ratio:.3}");
        assert!(ratio <= at_most, "{baseline}: {ratio}");
    }
    assert!(hybrid / v("fair") > 0.9, "the fair baseline is no longer within 10%: update docs/dc.md");
    // Decima's weighted fair: its reported alpha (-1) hurts here; tuned
    // (0.5) it ties MC-WSCPT.
    assert!(v("size-fair") > v("fair") * 1.2, "size-fair {}", v("size-fair"));
    assert!((hybrid / v("size-fair-tuned") - 1.0).abs() < 0.05, "size-fair-tuned {}", v("size-fair-tuned"));
    let dtp = summary_value(&summary, "mc-wscpt", "dtp_within_one_step_pct");
    assert!((dtp - 74.56).abs() < 0.1, "DTP's check moved: {dtp}");
}

/// Murmuration on GAIA's PAI job stream at 90% load: what docs/dc.md
/// reports. Start-time alignment beats Sparrow's per-task late binding
/// on mean JCT and tail-task wait, ties the Kubernetes default (central
/// FIFO, which is all but ideal for hour-long tasks), and reordering
/// cuts the median JCT.
#[test]
fn murmuration_on_the_pai_stream() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the PAI stream test");
        return;
    }
    let out = temp_dir("dc-murmuration-pai");
    let result =
        nimbus(&["run", "scenarios/dc/murmuration-pai.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    let (_, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    assert!(!stderr.contains("stand in"), "{stderr}");
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    let v = |p: &str, m: &str| summary_value(&summary, p, m);
    let vs_sparrow = v("murmuration", "jct_s_mean") / v("sparrow", "jct_s_mean");
    let tail_vs_sparrow = v("murmuration", "tail_wait_s_mean") / v("sparrow", "tail_wait_s_mean");
    let vs_k8s = v("murmuration", "jct_s_mean") / v("k8s-default", "jct_s_mean");
    let reorder = v("murmuration-reorder", "jct_s_p50") / v("murmuration", "jct_s_p50");
    eprintln!(
        "murmuration / sparrow {vs_sparrow:.3}, tail wait {tail_vs_sparrow:.3}; / k8s {vs_k8s:.3}; reorder p50 {reorder:.3}"
    );
    assert!(vs_sparrow < 0.99 && tail_vs_sparrow < 0.9, "{vs_sparrow} {tail_vs_sparrow}");
    assert!((vs_k8s - 1.0).abs() < 0.02, "{vs_k8s}");
    assert!(reorder < 0.8, "{reorder}");
}

/// The `workflows` scenario end to end: every workflow's makespan under
/// HEFT and the greedy scheduler equals DSLab's own (the reference
/// fixture of nimbus-dc) on DSLab's four-node heterogeneous cluster.
#[test]
fn workflows_reproduce_dslab_makespans() {
    if shared_data().is_none() {
        eprintln!("NOTICE: ../shared/data is absent; skipping the DSLab workflow test");
        return;
    }
    let out = temp_dir("dc-workflows");
    let result = nimbus(&["run", "scenarios/dc/workflows.toml", "--quiet", "--out", out.to_str().expect("utf-8")]);
    let (_, stderr) = text(&result);
    assert!(result.status.success(), "{stderr}");
    assert!(!stderr.contains("stand in"), "{stderr}");
    let fixture =
        std::fs::read_to_string(crate::repo_root().join("crates/nimbus-dc/tests/fixtures/dslab_makespans.csv"))
            .expect("fixture");
    for (policy, scheduler) in [("heft", "HEFT"), ("greedy", "Simple")] {
        let table = std::fs::read_to_string(out.join(format!("workflows_{policy}_seed1.csv"))).expect("table");
        let mut checked = 0;
        for row in table.lines().skip(1) {
            let f: Vec<&str> = row.split(',').collect();
            let ours: f64 = f[2].parse().expect("makespan");
            let key = format!("{},cluster-het-4-32cores,{scheduler},", f[0]);
            let line = fixture.lines().find(|l| l.starts_with(&key)).expect("a fixture row");
            let theirs: f64 = line.rsplit(',').next().and_then(|v| v.parse().ok()).expect("a number");
            assert!((ours - theirs).abs() <= 0.0051, "{policy} on {}: {ours} vs DSLab {theirs}", f[0]);
            checked += 1;
        }
        assert_eq!(checked, 19, "{policy}");
    }
}
