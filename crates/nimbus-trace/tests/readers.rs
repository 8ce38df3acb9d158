//! Readers on the real public files (when `../shared/data` is present) and
//! on malformed inputs (always).

use std::path::{Path, PathBuf};

use nimbus_trace::{TraceError, alibaba, gavel, philly, sia, tiresias};

fn shared(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("NOTICE: ../shared/data/{relative} is absent; skipping this check");
        None
    }
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nimbus-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

fn message(err: TraceError) -> String {
    err.to_string()
}

#[test]
fn gavel_files_parse_completely() {
    if let Some(path) = shared("gavel/simulation_throughputs.json") {
        let table = gavel::ThroughputTable::read(&path).expect("valid table");
        assert_eq!(table.worker_types(), ["k80", "p100", "v100"]);
        assert_eq!(table.by_worker["v100"].len(), 83);
        let v100 = table.isolated("v100", "ResNet-18 (batch size 16)", 1).expect("entry");
        assert!((v100 - 32.353384328946916).abs() < 1e-12);
        // Every template of the generator has a single-GPU entry on every type.
        for t in gavel::JOB_TEMPLATES {
            for w in ["k80", "p100", "v100"] {
                assert!(table.isolated(w, t.model, 1).is_some(), "{} on {w}", t.model);
            }
        }
    }
    if let Some(dir) = shared("gavel/traces/msr/seed=0") {
        let mut total = 0;
        for entry in std::fs::read_dir(dir).expect("dir") {
            total += gavel::read_trace(&entry.expect("entry").path()).expect("valid trace").len();
        }
        assert!(total > 1000, "{total}");
    }
    if let Some(path) = shared("gavel/traces/physical_cluster/artifact_evaluation.trace") {
        let jobs = gavel::read_trace(&path).expect("valid");
        assert!(!jobs.is_empty() && jobs.iter().all(|j| j.total_steps > 0.0));
    }
    if let Some(path) = shared("gavel/philly_job_distribution.csv") {
        assert_eq!(philly::read_gavel_distribution(&path).expect("valid").len(), 33_192);
    }
}

/// The synthetic table keeps each family's speed on V100 within a factor of
/// two of the real table, and its GPU ordering (which type is fastest) for
/// most templates.
#[test]
fn synthetic_gavel_table_tracks_the_real_one() {
    let Some(path) = shared("gavel/simulation_throughputs.json") else { return };
    let real = gavel::ThroughputTable::read(&path).expect("valid");
    let synthetic = gavel::ThroughputTable::synthetic();
    let mut same_fastest = 0;
    for t in gavel::JOB_TEMPLATES {
        let r = real.isolated("v100", t.model, 1).expect("real");
        let s = synthetic.isolated("v100", t.model, 1).expect("synthetic");
        assert!(s / r > 0.5 && s / r < 2.0, "{}: synthetic {s} vs real {r}", t.model);
        let fastest = |table: &gavel::ThroughputTable| {
            ["k80", "p100", "v100"].into_iter().max_by(|a, b| {
                table.isolated(a, t.model, 1).partial_cmp(&table.isolated(b, t.model, 1)).expect("numbers")
            })
        };
        if fastest(&real) == fastest(&synthetic) {
            same_fastest += 1;
        }
    }
    assert!(same_fastest >= 20, "{same_fastest} of 26 templates keep their fastest GPU type");
}

#[test]
fn sia_files_parse_completely() {
    if let Some(dir) = shared("sia/workloads/philly") {
        for i in 1..=8 {
            let jobs = sia::read_workload(&dir.join(format!("workload-{i}.csv"))).expect("valid");
            assert_eq!(jobs.len(), 160);
        }
    }
    if let Some(dir) = shared("sia/traces") {
        for app in ["cifar10", "imagenet", "bert", "deepspeech2", "yolov3", "ncf"] {
            for cluster in [Some("aws"), Some("dgx-ext"), Some("rtx"), None] {
                let profile = sia::read_app_profile(&dir, app, cluster).expect("valid profile");
                assert!(!profile.placements.is_empty() && !profile.validation.is_empty(), "{app} {cluster:?}");
            }
        }
        assert_eq!(philly::read_sia_jobs(&dir.join("philly.csv")).expect("valid").len(), 82_247); // 82,249 lines: a header, the records and a blank last line
    }
}

#[test]
fn alibaba_and_tiresias_files_parse_completely() {
    if let Some(path) = shared("alibaba-gpu-v2023/openb_node_list_all_node.csv") {
        let nodes = alibaba::read_nodes(&path).expect("valid");
        assert_eq!(nodes.len(), 1523);
        assert_eq!(nodes.iter().filter(|n| n.gpus > 0).count(), 1213);
    }
    if let Some(path) = shared("alibaba-gpu-v2023/openb_pod_list_default.csv") {
        let pods = alibaba::read_pods(&path).expect("valid");
        assert_eq!(pods.len(), 8152);
        assert!(pods.iter().any(|p| p.gpu_milli > 0 && p.gpu_milli < 1000));
    }
    if let Some(path) = shared("tiresias/60_job.csv") {
        assert_eq!(tiresias::read_jobs(&path).expect("valid").len(), 60);
    }
    if let Some(path) = shared("tiresias/n32g4.csv") {
        let shape = tiresias::read_cluster_shape(&path).expect("valid");
        assert_eq!((shape.nodes_per_switch, shape.gpus_per_node), (32, 4));
    }
}

#[test]
fn malformed_inputs_say_where_and_what() {
    let path =
        temp_file("w.csv", "name,time,application,num_replicas,batch_size\na,0,cifar10,2,128\nb,abc,cifar10,2,128\n");
    let err = message(sia::read_workload(&path).expect_err("bad time"));
    assert!(err.ends_with("w.csv:3:2 (`time`): expected a number, found `abc`"), "{err}");

    let path = temp_file("m.csv", "name,time,application\na,0,cifar10\n");
    let err = message(sia::read_workload(&path).expect_err("missing column"));
    assert!(err.contains("missing column `num_replicas`"), "{err}");

    let path = temp_file("r.csv", "name,time,application,num_replicas,batch_size\na,0,cifar10,0,128\n");
    let err = message(sia::read_workload(&path).expect_err("zero replicas"));
    assert!(err.contains(":2:4 (`num_replicas`): expected a positive integer"), "{err}");

    let path = temp_file("p.csv", "placement,local_bsz,step_time,sync_time\n2x,32,0.1,0.01\n");
    let err = message(sia::read_placements(&path).expect_err("bad placement"));
    assert!(err.contains("expected digits 1-9"), "{err}");

    let path = temp_file(
        "pods.csv",
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\np,1,1,1,1000,,LS,Running,10,5,10\n",
    );
    let err = message(alibaba::read_pods(&path).expect_err("deletion before creation"));
    assert!(err.contains("precedes creation time"), "{err}");

    let path = temp_file("t.json", "{\"v100\": {\"('A3C', 1)\": {\"null\": -1}}}");
    let err = message(gavel::ThroughputTable::read(&path).expect_err("negative throughput"));
    assert!(err.contains("negative or non-finite"), "{err}");

    let path = temp_file("bad.json", "{\"v100\": ");
    let err = message(gavel::ThroughputTable::read(&path).expect_err("truncated JSON"));
    assert!(err.contains("invalid JSON"), "{err}");

    let missing = Path::new("/nonexistent/nimbus/trace.csv");
    assert!(message(sia::read_workload(missing).expect_err("missing file")).contains("cannot read"));
}

fn mean_median(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values.iter().sum::<f64>() / values.len() as f64, nimbus_sim::stats::quantile_sorted(values, 0.5))
}

/// Loader checks against the statistics published with the traces.
#[test]
fn llm_traces_match_their_published_statistics() {
    use nimbus_trace::llm;
    if let Some(path) = shared("azure-llm-2023/AzureLLMInferenceTrace_conv.csv") {
        let r = llm::read_azure(&path).expect("valid");
        assert_eq!(r.len(), 19_366);
        let rate = r.len() as f64 / r.iter().map(|x| x.arrival_s).fold(0.0, f64::max);
        assert!((rate - 5.53).abs() < 0.1, "{rate}");
        let (mean, median) = mean_median(&mut r.iter().map(|x| f64::from(x.prompt_tokens)).collect::<Vec<_>>());
        assert!((mean - 1155.0).abs() < 2.0 && (median - 1020.0).abs() < 2.0, "{mean} {median}");
        let (mean, median) = mean_median(&mut r.iter().map(|x| f64::from(x.output_tokens)).collect::<Vec<_>>());
        assert!((mean - 211.0).abs() < 2.0 && (median - 129.0).abs() < 2.0, "{mean} {median}");
    }
    if let Some(path) = shared("azure-llm-2023/AzureLLMInferenceTrace_code.csv") {
        let r = llm::read_azure(&path).expect("valid");
        assert_eq!(r.len(), 8_819);
        let (mean, median) = mean_median(&mut r.iter().map(|x| f64::from(x.prompt_tokens)).collect::<Vec<_>>());
        assert!((mean - 2048.0).abs() < 2.0 && (median - 1469.0).abs() < 2.0, "{mean} {median}");
    }
    if let Some(path) = shared("sharegpt-lengths/sharegpt_8k_filtered_stats_llama2_tokenizer.csv") {
        let r = llm::read_lengths(&path).expect("valid");
        assert_eq!(r.len(), 30_731);
    }
    if let Some(path) = shared("mooncake-traces/conversation_trace.jsonl") {
        let r = llm::read_mooncake(&path).expect("valid");
        assert_eq!(r.len(), 12_031);
        assert!(r.iter().all(|x| !x.prefix_blocks.is_empty()));
    }
    if let Some(path) = shared("splitwise-perfmodel/perf_model.csv") {
        let rows = llm::read_splitwise(&path).expect("valid");
        let tp8 = |hw: &'static str| {
            move |r: &llm::SplitwiseRow| r.model == "llama2-70b" && r.hardware == hw && r.tensor_parallel == 8
        };
        let prompt = llm::splitwise_median(
            &rows,
            |r| tp8("a100-80gb")(r) && r.prompt_size == 512 && r.batch_size == 1,
            |r| r.prompt_ms,
        );
        let decode1 = llm::splitwise_median(&rows, |r| tp8("a100-80gb")(r) && r.batch_size == 1, |r| r.token_ms);
        let decode64 = llm::splitwise_median(&rows, |r| tp8("h100-80gb")(r) && r.batch_size == 64, |r| r.token_ms);
        assert!(
            (prompt - 93.0).abs() < 0.1 && (decode1 - 45.0).abs() < 0.1 && (decode64 - 50.2).abs() < 0.1,
            "{prompt} {decode1} {decode64}"
        );
    }
    if let Some(path) = shared("distserve-perfmodel/profiler-a100-80g.distserve.json") {
        let fits = llm::read_distserve(&path).expect("valid");
        assert!(fits["facebook/opt-13b"].contains_key(&1));
    }
    if let Some(path) = shared("vidur-profiles/profiling/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv") {
        let ops = llm::read_vidur_mlp(&path).expect("valid");
        let tp1 = &ops[&1];
        let gemm = |t: u32| {
            ["attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj"].iter().map(|o| tp1[&t][*o]).sum::<f64>()
        };
        // The reference notes quote 0.266 ms and 7.49 ms (medians: 0.266 and 7.40).
        assert!((gemm(1) - 0.266).abs() < 0.01 && (gemm(4096) - 7.49).abs() < 0.15, "{} {}", gemm(1), gemm(4096));
    }
    if let Some(path) = shared("vidur-profiles/profiling/network/a100_dgx/all_reduce.csv") {
        let times = llm::read_vidur_collective(&path).expect("valid");
        let eight = &times[&(8, 8)];
        let at = |bytes: u64| eight.iter().find(|p| p.0 == bytes).map(|p| p.1);
        // 16 MiB across 8 GPUs of one node: two repeated rows, 0.274 and 0.275 ms.
        assert_eq!(at(16_777_216), Some(0.274));
        assert!(eight.windows(2).all(|w| w[0].0 < w[1].0));
    }
}

#[test]
fn serverless_fixtures_parse_completely() {
    use nimbus_trace::faas;
    if let Some(path) = shared("invitro-trace-examples/invocations.csv") {
        let rows = faas::read_azure2019_invocations(&path).expect("valid");
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.per_minute.len() == 1440));
        assert!(rows.iter().any(|r| r.trigger == faas::Trigger::Timer));
        assert_eq!(rows[0].per_minute[0], 5);
    }
    if let Some(path) = shared("invitro-trace-examples/durations.csv") {
        let rows = faas::read_azure2019_durations(&path).expect("valid");
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].percentiles_ms[3], 100.0);
    }
    if let Some(path) = shared("invitro-trace-examples/memory.csv") {
        let rows = faas::read_azure2019_memory(&path).expect("valid");
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].average_mb, 120.0);
    }
    if let Some(path) = shared("invitro-trace-examples/Azure2021_200.csv") {
        assert_eq!(faas::read_azure2021(&path).expect("valid").len(), 199);
    }
    if let Some(path) = shared("iluvatar-azure-sample/trace.csv") {
        let rows = faas::read_iluvatar_trace(&path).expect("valid");
        assert_eq!(rows.len(), 11_868);
        let mut names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 21);
    }
    if let Some(path) = shared("iluvatar-azure-sample/metadata-trace.csv") {
        assert_eq!(faas::read_iluvatar_metadata(&path).expect("valid").len(), 21);
    }
    if let Some(path) = shared("instainfer-models/models.csv") {
        let models = faas::read_instainfer_models(&path).expect("valid");
        assert_eq!(models.len(), 8);
        assert_eq!((models[0].model.as_str(), models[0].load_ms, models[0].size_mb), ("ResNet18", 210.0, 649.0));
    }
    if let Some(path) = shared("em-hourly-ci/ES_2022_hourly.csv") {
        let hours = faas::read_hourly_carbon_intensity(&path).expect("valid");
        assert_eq!(hours.len(), 8760);
        assert_eq!(hours[0], 175.54);
    }
}

#[test]
fn malformed_serverless_rows_say_where_and_what() {
    use nimbus_trace::faas;
    let header: String = std::iter::once("HashOwner,HashApp,HashFunction,Trigger".to_string())
        .chain((1..=1440).map(|m| m.to_string()))
        .collect::<Vec<_>>()
        .join(",");
    let minutes = |v: &str| vec![v; 1440].join(",");
    let path = temp_file("inv_trigger.csv", &format!("{header}\no,a,f,carrier-pigeon,{}\n", minutes("0")));
    let err = message(faas::read_azure2019_invocations(&path).expect_err("unknown trigger"));
    assert!(err.contains(":2:4") && err.contains("unknown trigger `carrier-pigeon`"), "{err}");
    let path = temp_file("inv_negative.csv", &format!("{header}\no,a,f,http,-3,{}\n", vec!["0"; 1439].join(",")));
    let err = message(faas::read_azure2019_invocations(&path).expect_err("negative"));
    assert!(err.contains(":2:5") && err.contains("(`1`)"), "{err}");
    let path = temp_file("inv_short.csv", &format!("{header}\no,a,f,http,1,2\n"));
    let err = message(faas::read_azure2019_invocations(&path).expect_err("short row"));
    assert!(err.contains(":2") && err.contains("columns"), "{err}");
    let path = temp_file("meta_bad.csv", "func_name,cold_dur_ms,warm_dur_ms,mem_mb,mean_iat\nf,10,5,0,100\n");
    let err = message(faas::read_iluvatar_metadata(&path).expect_err("zero memory"));
    assert!(err.contains(":2:4") && err.contains("mem_mb"), "{err}");
    let path = temp_file(
        "models_bad.csv",
        "action,model,model_loading_latency_ms,model_size_mb\np1,ResNet,210,649\np2,VGG,slow,1648\n",
    );
    let err = message(faas::read_instainfer_models(&path).expect_err("non-numeric latency"));
    assert!(err.contains(":3:3") && err.contains("model_loading_latency_ms"), "{err}");
}

/// Regression: the CSV parser places a record after the `\r` of a CRLF, so
/// errors in CRLF files (two shipped public traces are CRLF) pointed one line
/// too early.
#[test]
fn crlf_lf_and_mixed_files_report_the_same_line() {
    use nimbus_trace::{Source, llm};
    let lf =
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n\n2023-11-16 18:15:50.99,abc,109\n";
    let crlf = lf.replace('\n', "\r\n");
    let mixed =
        "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.68,374,44\n\r\n2023-11-16 18:15:50.99,abc,109";
    for text in [lf, crlf.as_str(), mixed] {
        let err = message(llm::read_azure(Source::bytes(Path::new("t.csv"), text.as_bytes())).expect_err("bad row"));
        assert!(err.starts_with("t.csv:4:2 (`ContextTokens`)"), "{err:?} for {text:?}");
    }
    let trace = "a\tc\tn\t0\t100\t0\t1\nb\tc\tn\t0\t100\t0\t0\n";
    for text in [trace.to_string(), trace.replace('\n', "\r\n")] {
        let err =
            message(gavel::read_trace(Source::bytes(Path::new("g.trace"), text.as_bytes())).expect_err("zero steps"));
        assert!(err.starts_with("g.trace:2:"), "{err:?}");
    }
}

/// Regression: a huge first line was echoed whole into the message.
#[test]
fn long_lines_are_refused_and_never_echoed_whole() {
    use nimbus_trace::{Source, input::MAX_LINE_BYTES, llm};
    let header = format!("TIMESTAMP,{}\n", "x".repeat(100_000));
    let err = message(llm::read_azure(Source::bytes(Path::new("h.csv"), header.as_bytes())).expect_err("no columns"));
    assert!(err.len() < 600, "{} bytes: {}", err.len(), &err[..300]);
    let huge = "y".repeat(MAX_LINE_BYTES + 1);
    let err = message(llm::read_azure(Source::bytes(Path::new("h.csv"), huge.as_bytes())).expect_err("too long"));
    assert!(err.starts_with("h.csv:1: line longer than"), "{}", &err[..200.min(err.len())]);
    let err = message(llm::read_mooncake(Source::bytes(Path::new("m.jsonl"), huge.as_bytes())).expect_err("too long"));
    assert!(err.starts_with("m.jsonl:1: line longer than"), "{}", &err[..200.min(err.len())]);
}

#[cfg(feature = "parquet")]
#[test]
fn opendc_workloads_read_whole() {
    use nimbus_trace::opendc;
    for (dir, tasks, fragments) in
        [("surf_week", 6_295, 2_323_475), ("bitbrains-small", 50, 276_979), ("task_scaling_100K", 100_000, 100_000)]
    {
        let Some(path) = shared(&format!("opendc-traces/{dir}")) else { continue };
        let w = opendc::read_workload(&path).expect("reads");
        assert_eq!((w.tasks.len(), w.fragments.len()), (tasks, fragments), "{dir}");
        // Each task's fragments start at its start and fill its duration
        // (current layout) or its start..stop window (legacy layout; a few
        // samples are missing in Bitbrains).
        let mut covered = vec![0i64; w.tasks.len()];
        let mut first = vec![i64::MAX; w.tasks.len()];
        for f in &w.fragments {
            covered[f.task] += f.duration_ms;
            first[f.task] = first[f.task].min(f.start_ms);
        }
        let mismatched =
            w.tasks.iter().zip(&covered).filter(|(t, c)| (t.duration_ms - **c).abs() > t.duration_ms / 100).count();
        let late = w.tasks.iter().zip(&first).filter(|(t, f)| **f != i64::MAX && **f != t.submit_ms).count();
        eprintln!(
            "{dir}: tasks whose fragments miss their duration by > 1%: {mismatched}; first fragment not at start: {late}"
        );
        assert_eq!((mismatched, late), (0, 0), "{dir}");
        let total = opendc::cpu_usage(&w, 3600, false, dir).expect("series");
        assert!(total[0].values.iter().all(|v| v.is_finite() && *v >= 0.0));
        eprintln!(
            "{dir}: {} hourly values, mean {:.0} MHz",
            total[0].values.len(),
            total[0].values.iter().sum::<f64>() / total[0].values.len() as f64
        );
    }
}

/// The DSLab workflows read into the task counts DSLab's own readers give
/// (printed by its dag-demo at commit a6c155e), and Decima's TPC-H file
/// into its 154 jobs.
#[test]
fn workflow_files_match_dslab_task_counts() {
    use nimbus_trace::Source;
    use nimbus_trace::workflow::{read_dax, read_dot, read_wfcommons};
    let cases: [(&str, usize); 6] = [
        ("1000genome-chameleon-16ch-250k-001.json", 656),
        ("epigenomics-chameleon-ilmn-2seq-50k-001.json", 515),
        ("montage-chameleon-dss-125d-001.json", 1066),
        ("cybershake-100.xml", 100),
        ("inspiral-100.xml", 100),
        ("daggen-100-0.25-0.9-0.3-2.dot", 102),
    ];
    for (file, tasks) in cases {
        let Some(path) = shared(&format!("dslab-dags/dags/{file}")) else { return };
        let wf = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => read_wfcommons(Source::file(&path)),
            Some("xml") => read_dax(Source::file(&path)),
            _ => read_dot(Source::file(&path)),
        }
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(wf.tasks.len(), tasks, "{file}");
        assert!(wf.tasks.iter().all(|t| t.flops.is_finite() && t.min_cores >= 1), "{file}");
    }
    if let Some(path) = shared("decima-tpch/tpch_dags.json") {
        let q = nimbus_trace::tpch::read_queries(nimbus_trace::Source::file(&path)).expect("reads");
        assert_eq!(q.len(), 154);
    }
}

/// The Azure 2019 writers' files read back to the same rows: the public
/// fixtures when present, and generated rows always.
#[test]
fn azure2019_files_written_read_back_equal() {
    use nimbus_trace::faas::{self, AppMemory, FunctionDurations, FunctionMinutes, Trigger};
    let mut minutes = FunctionMinutes {
        owner: "o1".into(),
        app: "a1".into(),
        function: "f1".into(),
        trigger: Trigger::Timer,
        per_minute: vec![0; 1440],
    };
    minutes.per_minute[0] = 3;
    minutes.per_minute[1439] = u32::MAX;
    let mut invocations =
        vec![minutes.clone(), FunctionMinutes { function: "f2".into(), trigger: Trigger::Http, ..minutes }];
    let mut durations = vec![FunctionDurations {
        owner: "o1".into(),
        app: "a1".into(),
        function: "f1".into(),
        average_ms: 2773.5,
        count: 1441,
        percentiles_ms: [3.3, 27.4, 327.1, 900.0, 2476.8, 29_548.0, 285_712.9],
    }];
    let mut memory = vec![AppMemory {
        owner: "o1".into(),
        app: "a1".into(),
        sample_count: 12,
        average_mb: 150.0,
        percentiles_mb: [150.0; 8],
    }];
    if let Some(path) = shared("invitro-trace-examples/invocations.csv") {
        invocations.extend(faas::read_azure2019_invocations(&path).expect("valid"));
    }
    if let Some(path) = shared("invitro-trace-examples/durations.csv") {
        durations.extend(faas::read_azure2019_durations(&path).expect("valid"));
    }
    if let Some(path) = shared("invitro-trace-examples/memory.csv") {
        memory.extend(faas::read_azure2019_memory(&path).expect("valid"));
    }
    let written = |name: &str, write: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut bytes = Vec::new();
        write(&mut bytes).expect("writes");
        temp_file(name, &String::from_utf8(bytes).expect("utf-8"))
    };
    let path = written("w-invocations.csv", &|out| faas::write_azure2019_invocations(out, &invocations));
    assert_eq!(faas::read_azure2019_invocations(&path).expect("reads"), invocations);
    let path = written("w-durations.csv", &|out| faas::write_azure2019_durations(out, &durations));
    assert_eq!(faas::read_azure2019_durations(&path).expect("reads"), durations);
    let path = written("w-memory.csv", &|out| faas::write_azure2019_memory(out, &memory));
    assert_eq!(faas::read_azure2019_memory(&path).expect("reads"), memory);
    // A row that is not a whole day is refused, not truncated.
    let mut short = invocations[0].clone();
    short.per_minute.pop();
    assert!(faas::write_azure2019_invocations(&mut Vec::new(), &[short]).is_err());
}
