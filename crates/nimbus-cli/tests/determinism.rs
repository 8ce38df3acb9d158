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

/// Runs `nimbus run <args>` with 1 and 3 worker threads and asserts that
/// the named result files are byte-identical.
fn assert_identical_across_thread_counts(label: &str, args: &[&str], files: &[&str]) {
    let a = temp_dir(&format!("det-{label}-a"));
    let b = temp_dir(&format!("det-{label}-b"));
    for (dir, jobs) in [(&a, "1"), (&b, "3")] {
        let mut all: Vec<&str> = vec!["run"];
        all.extend_from_slice(args);
        all.extend(["--quiet", "--jobs", jobs, "--out", dir.to_str().expect("utf-8")]);
        let result = nimbus(&all);
        assert!(result.status.success(), "{result:?}");
    }
    for name in files {
        let left = std::fs::read(a.join(name)).expect("file a");
        let right = std::fs::read(b.join(name)).expect("file b");
        assert!(left == right, "{name} differs between thread counts");
    }
}

/// The elastic policies (Sia, Hops) share memoised goodput tables across
/// threads; their results must not depend on how runs are scheduled either.
/// Runs on the synthetic stand-ins so that it needs no shared data.
#[test]
fn elastic_policies_are_deterministic_across_thread_counts() {
    assert_identical_across_thread_counts(
        "hops",
        &[
            "scenarios/gpu/hops-64.toml",
            "--seeds",
            "1,2",
            "--set",
            "workload.traces=\"target/no-such-dir\"",
            "--set",
            "workload.path=\"target/no-such-dir/w-{seed}.csv\"",
        ],
        &["summary.json", "runs.csv", "jobs_hops_seed1.csv", "jobs_sia_seed2.csv", "jobs_gavel_seed1.csv"],
    );
}

/// The LLM domain (routers, QLM's random placement stream, synthetic
/// arrivals) is byte-identical across runs and thread counts.
#[test]
fn llm_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "llm",
        &[&fixture("llm_small.toml")],
        &["summary.json", "runs.csv", "requests_vllm_seed1.csv", "requests_qlm_seed2.csv", "ttft_cdf.svg"],
    );
}

/// The serverless domain (synthetic apps, streamed arrivals, sampled
/// execution times) is byte-identical across runs and thread counts.
#[test]
fn faas_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "faas",
        &[&fixture("faas_small.toml")],
        &["summary.json", "runs.csv", "apps_hybrid_seed1.csv", "invocations_faascache_seed2.csv", "memory.svg"],
    );
}

/// The replication domain (seeded delays, YCSB keys, real coding) is
/// byte-identical across runs and thread counts.
#[test]
fn consensus_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "consensus",
        &[&fixture("consensus_small.toml")],
        &["summary.json", "runs.csv", "replicas_racos_seed1.csv", "replicas_rs-paxos_seed2.csv", "throughput.svg"],
    );
}

/// A forecast study's files (all but the wall-clock timings) are
/// byte-identical whatever the number of threads evaluating it.
#[test]
fn forecast_results_are_byte_identical_across_thread_counts() {
    let a = temp_dir("det-forecast-a");
    let b = temp_dir("det-forecast-b");
    for (dir, threads) in [(&a, "1"), (&b, "3")] {
        let result = std::process::Command::new(env!("CARGO_BIN_EXE_nimbus"))
            .args(["forecast", "scenarios/forecast/synthetic.toml", "--origins", "4", "--quiet", "--out"])
            .arg(dir)
            .env("RAYON_NUM_THREADS", threads)
            .current_dir(crate::repo_root())
            .output()
            .expect("runs");
        assert!(result.status.success(), "{result:?}");
    }
    for name in [
        "cells.csv",
        "leaderboard.csv",
        "forecasts.csv",
        "summary.json",
        "report.md",
        "plots/synthetic-diurnal-diurnal-0.svg",
    ] {
        let left = std::fs::read(a.join(name)).expect("file a");
        let right = std::fs::read(b.join(name)).expect("file b");
        assert!(left == right, "{name} differs between thread counts");
    }
}

/// The elastic domain (Kale's seeded forecast error, every autoscaler) is
/// byte-identical across runs and thread counts.
#[test]
fn elastic_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "elastic",
        &["scenarios/elastic/kale-diurnal.toml", "--seeds", "1,2", "--set", "workload.days=4"],
        &["summary.json", "runs.csv", "capacity.svg", "freshness.svg"],
    );
}

/// AutoBurst and its baselines on the burstable model, and the leasing
/// model, are byte-identical across runs and thread counts.
#[test]
fn burstable_and_leasing_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "burstable",
        &["scenarios/elastic/autoburst-diurnal.toml", "--seeds", "1,2", "--set", "workload.days=2"],
        &["summary.json", "runs.csv", "credits.svg", "latency.svg"],
    );
    assert_identical_across_thread_counts(
        "leasing",
        &["scenarios/elastic/meta-leasing.toml", "--seeds", "1,2"],
        &["summary.json", "runs.csv", "owner_capacity.svg"],
    );
}

/// The carbon domain's five models (the replay, the SunkCarbon fleet with
/// its sweep, CDN-Shifter's LPs, InferCool's cooling, SkyBox's modular
/// sites) are byte-identical across runs and thread counts.
#[test]
fn carbon_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "carbon-placement",
        &["scenarios/carbon/placement.toml", "--seeds", "1,2"],
        &["summary.json", "runs.csv"],
    );
    assert_identical_across_thread_counts(
        "carbon-fleet",
        &["crates/nimbus-cli/tests/fixtures/carbon_fleet_small.toml"],
        &["summary.json", "runs.csv", "sweep_sweep_seed1.csv"],
    );
    assert_identical_across_thread_counts(
        "carbon-cooling",
        &["scenarios/carbon/infercool.toml", "--set", "datacenter.hours=720"],
        &["summary.json", "runs.csv"],
    );
    assert_identical_across_thread_counts(
        "carbon-cdn",
        &["scenarios/carbon/cdn-shifter.toml", "--set", "datacenter.hours=48"],
        &["summary.json", "runs.csv"],
    );
    assert_identical_across_thread_counts(
        "carbon-cdn-solar",
        &["scenarios/carbon/cdn-shifter-solar.toml", "--set", "datacenter.hours=48"],
        &["summary.json", "runs.csv"],
    );
    assert_identical_across_thread_counts(
        "carbon-cloudsim",
        &[
            "scenarios/carbon/cloudsim-stress.toml",
            "--set",
            "workload.vms=2000",
            "--set",
            "workload.cloudlets=2500",
            "--set",
            "datacenter.hosts=1200",
        ],
        &["summary.json", "runs.csv"],
    );
    assert_identical_across_thread_counts(
        "carbon-modular",
        &["scenarios/carbon/skybox.toml", "--set", "datacenter.days=14"],
        &["summary.json", "runs.csv"],
    );
}

/// The dc domain's runs (MC-WSCPT and the Spark baselines) are
/// byte-identical across runs and thread counts.
#[test]
fn dc_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "dc-tpch",
        &["scenarios/dc/tpch-weighted.toml", "--seeds", "1,2", "--set", "workload.jobs=30"],
        &["summary.json", "runs.csv"],
    );
}

/// The task cluster's schedulers (Murmuration's gossip and fallbacks,
/// Sparrow's probes, Kubernetes' tie-breaks) are byte-identical across
/// runs and thread counts.
#[test]
fn dc_cluster_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "dc-cluster",
        &["scenarios/dc/murmuration.toml", "--seeds", "1,2", "--set", "workload.jobs=3000"],
        &["summary.json", "runs.csv"],
    );
}

/// The call-graph model (FCFS, PS, TailClipper) is byte-identical across
/// runs and thread counts.
#[test]
fn dc_callgraph_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "dc-services",
        &["scenarios/dc/tailclipper.toml", "--seeds", "1,2", "--set", "workload.requests=3000"],
        &["summary.json", "runs.csv"],
    );
}

/// The interference episodes (INS, PARTIES) are byte-identical across runs
/// and thread counts.
#[test]
fn dc_colocation_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "dc-colocation",
        &["scenarios/dc/ins-parties.toml", "--seeds", "1,2", "--set", "workload.episodes=100"],
        &["summary.json", "runs.csv"],
    );
}

/// Deoxys' estimators (forests, cross-fitting, the causal forest) are
/// byte-identical across runs and thread counts.
#[test]
fn dc_mitigation_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "dc-mitigation",
        &["scenarios/dc/deoxys.toml", "--seeds", "1", "--set", "workload.train=1500", "--set", "workload.trees=8"],
        &["summary.json", "runs.csv"],
    );
}

/// The workflow runtime (HEFT, the greedy scheduler) on synthetic DAGs is
/// byte-identical across runs and thread counts.
#[test]
fn dc_workflow_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "dc-workflow",
        &[
            "scenarios/dc/workflows.toml",
            "--seeds",
            "1,2",
            "--set",
            "workload.dags=[]",
            "--set",
            "cluster.system=\"../shared/data/dslab-dags/systems/cluster-het-4-32cores-shared.yaml\"",
        ],
        &["summary.json", "runs.csv"],
    );
}

/// Real training through every gradient exchange (synthetic digits, a
/// small MLP, one short epoch) is byte-identical across runs and thread
/// counts: the codecs, the workers' reduction and candle's kernels.
#[test]
fn train_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "train",
        &[
            "scenarios/train/gcomp.toml",
            "--seeds",
            "1,2",
            "--set",
            "workload.data=\"/nonexistent/mnist\"",
            "--set",
            "workload.network=\"mlp-32\"",
            "--set",
            "workload.epochs=1",
            "--set",
            "workload.train_images=1024",
        ],
        &["summary.json", "runs.csv", "epochs_gcomp_seed1.csv", "epochs_powersgd_seed2.csv"],
    );
}

/// Compressed checkpoints through restores (synthetic digits, a small MLP)
/// are byte-identical across runs and thread counts.
#[test]
fn train_checkpoint_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "train-checkpoints",
        &[
            "scenarios/train/inshrinkerator.toml",
            "--seeds",
            "1,2",
            "--set",
            "workload.data=\"/nonexistent/mnist\"",
            "--set",
            "workload.network=\"mlp-32\"",
            "--set",
            "workload.epochs=3",
            "--set",
            "workload.train_images=1500",
            "--set",
            "workload.validation=300",
        ],
        &["summary.json", "runs.csv", "checkpoints_inshrinkerator_seed2.csv"],
    );
}

/// Encrypted federated averaging (CKKS keys, encryption noise, stochastic
/// quantisation) is byte-identical across runs and thread counts.
#[test]
fn train_federated_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "train-federated",
        &[
            "scenarios/train/pack-noniid.toml",
            "--seeds",
            "1,2",
            "--set",
            "workload.data=\"/nonexistent/mnist\"",
            "--set",
            "workload.network=\"mlp-16\"",
            "--set",
            "workload.rounds=2",
            "--set",
            "workload.train_images=1280",
            "--set",
            "cluster.ring=1024",
        ],
        &["summary.json", "runs.csv"],
    );
}

/// Client caches and selection over real federated training are
/// byte-identical across runs and thread counts.
#[test]
fn train_caching_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "train-caching",
        &[
            "scenarios/train/fedcase.toml",
            "--seeds",
            "1,2",
            "--set",
            "workload.data=\"/nonexistent/mnist\"",
            "--set",
            "workload.network=\"mlp-16\"",
            "--set",
            "workload.rounds=5",
            "--set",
            "workload.clients=40",
            "--set",
            "workload.target=0.3",
        ],
        &["summary.json", "runs.csv"],
    );
}

/// The GAN-training simulation (per-core jitter, per-host congestion) is
/// byte-identical across runs and thread counts.
#[test]
fn train_gan_results_are_byte_identical_across_thread_counts() {
    assert_identical_across_thread_counts(
        "train-gan",
        &[
            "scenarios/train/paragan.toml",
            "--seeds",
            "1,2",
            "--set",
            "workload.cores=[8, 64]",
            "--set",
            "workload.iterations=200",
        ],
        &[
            "summary.json",
            "runs.csv",
            "scales_paragan_seed2.csv",
            "runs.parquet",
            "scales_paragan_seed2.parquet",
            "report.html",
        ],
    );
}
