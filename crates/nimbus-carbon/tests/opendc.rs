//! Cross-check against the results OpenDC's own repository expects for its
//! bundled demo inputs (`opendc-sdk-runner` `DemoExperimentsTest`, commit
//! 691036d): the SURF week (6,295 tasks, 2.32 M fragments) on the SURFsara
//! topologies with OpenDC's default `Mem` placement. Skips with a notice
//! when ../shared/data is absent.

use std::path::{Path, PathBuf};

use nimbus_carbon::datacenter::{self, Config, Outcome, Placement, Workload};
use nimbus_carbon::intensity::Intensity;
use nimbus_carbon::topology;

fn demo() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/opendc-demo");
    if dir.join("workload_traces/surf_week/tasks.parquet").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

fn replay(dir: &Path, workload: &Workload, topology_file: &str) -> Outcome {
    let topo = topology::read(&dir.join("topologies").join(topology_file)).expect("ok");
    let trace = topo.carbon_trace().expect("ok").map(|p| Intensity::read(p, None).expect("ok"));
    let config = Config { intensity: trace.as_ref(), ..Config::new(topo.expand(), Placement::Mem) };
    let out = datacenter::run(workload, &config).expect("ok");
    let per_host: f64 = out.host_energy_j.iter().sum();
    assert!(
        (per_host - out.energy_j).abs() < 1e-6 * out.energy_j,
        "energy is conserved: {per_host} vs {}",
        out.energy_j
    );
    out
}

#[test]
fn surf_week_matches_opendc_demo_results() {
    let Some(dir) = demo() else { return };
    let trace = nimbus_trace::opendc::read_workload(&dir.join("workload_traces/surf_week")).expect("ok");
    let workload = Workload::from_opendc(&trace).expect("ok");

    // Demo 1: 279 hosts, linear power: all tasks complete, 1.21125541e10 J
    // (OpenDC asserts ±1e6 J).
    let linear = replay(&dir, &workload, "surfsara_linear_NL_279.json");
    eprintln!("linear NL 279: energy {:.1} J (OpenDC 1.21125541e10)", linear.energy_j);
    assert_eq!(linear.tasks.len(), 6295);
    assert_eq!(linear.terminated, 0);
    assert!((linear.energy_j - 1.21125541e10).abs() < 1e6, "{}", linear.energy_j);

    // Demo 2: the same datacenter (sqrt power) in four grids: equal energy,
    // carbon AU > NL > AT > BE, AU 1,845,750.9 g and BE 816,302.9 g (±100).
    let carbon: Vec<(f64, f64)> = ["AT", "AU", "BE", "NL"]
        .iter()
        .map(|zone| {
            let o = replay(&dir, &workload, &format!("surfsara_sqrt_{zone}.json"));
            eprintln!("sqrt {zone}: energy {:.1} J, carbon {:.1} g", o.energy_j, o.carbon_g);
            (o.energy_j, o.carbon_g)
        })
        .collect();
    assert!(carbon.iter().all(|c| (c.0 - carbon[0].0).abs() < 1.0), "location changes carbon, not energy");
    let [at, au, be, nl] = [carbon[0].1, carbon[1].1, carbon[2].1, carbon[3].1];
    assert!(au > nl && nl > at && at > be);
    assert!((au - 1_845_750.9).abs() < 100.0, "{au}");
    assert!((be - 816_302.9).abs() < 100.0, "{be}");

    // Demo 3: more hosts, more energy and lower mean sampled utilisation:
    // 100 hosts near 0.6164, 279 near 0.2664 (±1e-3).
    let sized: Vec<Outcome> =
        [100, 150, 200, 279].iter().map(|n| replay(&dir, &workload, &format!("surfsara_linear_NL_{n}.json"))).collect();
    for (n, o) in [100, 150, 200, 279].iter().zip(&sized) {
        eprintln!(
            "linear {n} hosts: energy {:.4e} J, sampled utilisation {:.4}, makespan {:.2} h",
            o.energy_j,
            o.mean_sampled_utilization,
            o.duration_ms as f64 / 3.6e6
        );
        assert_eq!(o.terminated, 0);
    }
    assert!(sized.windows(2).all(|w| w[1].energy_j > w[0].energy_j));
    assert!(sized.windows(2).all(|w| w[1].mean_sampled_utilization < w[0].mean_sampled_utilization));
    assert!((sized[0].mean_sampled_utilization - 0.6164).abs() < 1e-3, "{}", sized[0].mean_sampled_utilization);
    assert!((sized[3].mean_sampled_utilization - 0.2664).abs() < 1e-3, "{}", sized[3].mean_sampled_utilization);
}

/// Demo 4: each of OpenDC's user-reported outage traces terminates tasks
/// and leaves some uncompleted; every task either completes or is
/// terminated; the baseline completes all (OpenDC's assertions, which
/// state no numbers).
#[test]
fn failure_traces_terminate_tasks_as_opendc_demo_4_expects() {
    use nimbus_carbon::datacenter::FailureModel;
    let Some(dir) = demo() else { return };
    let trace = nimbus_trace::opendc::read_workload(&dir.join("workload_traces/surf_week")).expect("ok");
    let workload = Workload::from_opendc(&trace).expect("ok");
    let topo = topology::read(&dir.join("topologies/surfsara_linear_NL_279.json")).expect("ok");
    for name in ["Facebook", "Instagram", "Netflix"] {
        let path = dir.join(format!("failure_traces/{name}_user_reported.parquet"));
        let failures = nimbus_trace::opendc::read_failures(nimbus_trace::Source::file(&path)).expect("reads");
        let model = FailureModel { failures, repeat: true, max_failures: 10, checkpoint: None };
        let config = Config { failures: Some(&model), ..Config::new(topo.expand(), Placement::Mem) };
        let out = datacenter::run(&workload, &config).expect("ok");
        let completed = out.tasks.iter().filter(|t| t.host.is_some()).count();
        eprintln!(
            "{name}: {completed} completed, {} terminated after 10 failures, {} interruptions, {} failures",
            out.failed_out, out.interruptions, out.failures_injected
        );
        assert!(out.failed_out > 0, "{name}: failures terminate tasks");
        assert!(completed < 6295, "{name}: some tasks are not completed");
        assert_eq!(completed + out.failed_out + out.terminated, 6295, "{name}: every task completes or is terminated");
        let per_host: f64 = out.host_energy_j.iter().sum();
        assert!((per_host - out.energy_j).abs() < 1e-6 * out.energy_j, "{name}: energy is conserved");
    }
}
