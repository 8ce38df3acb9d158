//! Workflows on systems: HEFT on the `dslab-dags` workflows and systems
//! against DSLab's own makespans (`tests/fixtures/dslab_makespans.csv`,
//! produced outside the repository as its `.md` says), and the runtime's
//! invariants on random workflows: every task runs once, after its
//! parents' data arrived; no core runs two tasks at once; memory is never
//! over-committed; a run is deterministic.

use std::path::{Path, PathBuf};

use nimbus_dc::heft;
use nimbus_dc::workflow_run::{Instance, run, run_greedy};
use nimbus_trace::workflow::{self, CoresDependency, DataItem, Network, Resource, System, Task, Workflow};
use proptest::prelude::*;

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/dslab-dags");
    dir.is_dir().then_some(dir)
}

/// Reads a workflow by its extension.
fn read_dag(path: &Path) -> Workflow {
    let read = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => workflow::read_wfcommons(path),
        Some("xml") => workflow::read_dax(path),
        Some("dot") => workflow::read_dot(path),
        Some("yaml") => workflow::read_dslab_yaml(path),
        other => panic!("unknown extension {other:?}"),
    };
    read.unwrap_or_else(|e| panic!("{e}"))
}

/// Our makespans beside DSLab's for one of its schedulers (`HEFT` or
/// `Simple`): (rows, rows equal to the printed 0.01 s, the others).
fn compare(dir: &Path, scheduler: &str) -> (usize, usize, Vec<String>) {
    let fixture =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dslab_makespans.csv"))
            .expect("fixture");
    let (mut rows, mut matched, mut report) = (0, 0, Vec::new());
    for line in fixture.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[2] != scheduler {
            continue;
        }
        rows += 1;
        let wf = read_dag(&dir.join("dags").join(f[0]));
        let sys = workflow::read_dslab_system(&dir.join("systems").join(format!("{}.yaml", f[1]))).expect("system");
        assert!(!matches!(sys.network, Network::TopologyAware { .. }));
        let inst = Instance::new(&wf, &sys).expect("instance");
        let result = if scheduler == "HEFT" { run(&inst, &heft::plan(&inst)) } else { run_greedy(&inst) };
        let ours = result.expect("runs").makespan.as_secs_f64();
        let theirs: f64 = f[3].parse().expect("number");
        if (ours - theirs).abs() <= 0.0051 {
            matched += 1;
        } else {
            report.push(format!("{} on {}: ours {ours:.3}, DSLab {theirs:.2}", f[0], f[1]));
        }
    }
    (rows, matched, report)
}

#[test]
fn heft_and_greedy_makespans_match_dslab() {
    let Some(dir) = shared() else {
        eprintln!("NOTICE: ../shared/data/dslab-dags is absent; skipping the DSLab cross-check");
        return;
    };
    for scheduler in ["HEFT", "Simple"] {
        let (rows, matched, report) = compare(&dir, scheduler);
        eprintln!("{scheduler}: {matched} of {rows} makespans equal DSLab's to the printed 0.01 s");
        for r in &report {
            eprintln!("  {r}");
        }
        assert_eq!(rows, 152);
        assert_eq!(matched, rows, "{scheduler}");
    }
}

/// A random workflow: task i reads items of up to three earlier tasks;
/// tasks 0 and 1 read workflow inputs.
fn random_workflow(shape: &[(u16, u8, u8, u8, u16)]) -> Workflow {
    let mut wf = Workflow::default();
    for (i, &(flops, cores, memory, parents, size)) in shape.iter().enumerate() {
        wf.tasks.push(Task {
            name: format!("t{i}"),
            flops: f64::from(flops),
            memory_mb: u64::from(memory % 60),
            min_cores: u32::from(cores % 3) + 1,
            max_cores: 3,
            cores_dependency: if i % 2 == 0 { CoresDependency::Linear } else { CoresDependency::LinearWithFixed(0.2) },
            inputs: Vec::new(),
            outputs: Vec::new(),
        });
        let mut sources: Vec<Option<usize>> = Vec::new();
        if i < 2 {
            sources.push(None);
        }
        for k in 0..usize::from(parents % 4) {
            if i > 0 {
                sources.push(Some((usize::from(size) + 7 * k) % i));
            }
        }
        sources.dedup();
        for (k, producer) in sources.into_iter().enumerate() {
            wf.data.push(DataItem {
                name: format!("d{i}_{k}"),
                size_mb: f64::from(size % 200) + k as f64,
                producer,
                consumers: vec![i],
            });
            let d = wf.data.len() - 1;
            if let Some(p) = producer {
                wf.tasks[p].outputs.push(d);
            }
            wf.tasks[i].inputs.push(d);
        }
    }
    wf
}

fn random_system(nodes: &[(u8, u8)], shared: bool, bandwidth: u16, latency: u16) -> System {
    let mut resources: Vec<Resource> = nodes
        .iter()
        .enumerate()
        .map(|(i, &(speed, cores))| Resource {
            name: format!("n{i}"),
            speed: f64::from(speed % 50) + 1.0,
            cores: u32::from(cores % 4) + 1,
            memory_mb: 100,
        })
        .collect();
    resources[0].cores = 3;
    let (bandwidth, latency_us) = (f64::from(bandwidth % 1000) + 10.0, f64::from(latency));
    let network = if shared {
        Network::SharedBandwidth { bandwidth, latency_us }
    } else {
        Network::ConstantBandwidth { bandwidth, latency_us }
    };
    System { resources, network }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn runs_start_tasks_after_their_inputs_without_overcommitting(
        shape in proptest::collection::vec((0u16..2000, any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>()), 1..40),
        nodes in proptest::collection::vec((any::<u8>(), any::<u8>()), 1..5),
        shared in any::<bool>(),
        bandwidth in any::<u16>(),
        latency in 0u16..5000,
    ) {
        let wf = random_workflow(&shape);
        let sys = random_system(&nodes, shared, bandwidth, latency);
        let inst = Instance::new(&wf, &sys).expect("every task fits node 0");
        let latency = nimbus_sim::time::SimDuration::from_secs_f64(f64::from(latency) * 1e-6);
        for greedy in [false, true] {
            let once = || if greedy { run_greedy(&inst) } else { run(&inst, &heft::plan(&inst)) };
            let result = once().expect("runs");
            prop_assert_eq!(&once().expect("again"), &result);
            for (t, task) in inst.tasks.iter().enumerate() {
                let (start, end) = result.spans[t];
                prop_assert!(end >= start && result.makespan >= end);
                let (r, cores) = &result.placement[t];
                prop_assert!(inst.allowed(t, *r) && cores.len() >= task.min_cores as usize && cores.len() <= task.max_cores.max(task.min_cores) as usize);
                for &i in &task.inputs {
                    let p = inst.items[i].producer.expect("the instance gives every item a producer");
                    let here = result.placement[p].0 == *r;
                    let arrival = if here { result.spans[p].1 } else { result.spans[p].1 + latency };
                    prop_assert!(start >= arrival, "task {} starts before its input from {} arrives", t, p);
                }
            }
            for (r, res) in inst.resources.iter().enumerate() {
                for core in 0..res.cores {
                    let mut spans: Vec<_> = (0..inst.tasks.len())
                        .filter(|&t| result.placement[t].0 == r && result.placement[t].1.contains(&core))
                        .map(|t| result.spans[t])
                        .collect();
                    spans.sort();
                    for w in spans.windows(2) {
                        prop_assert!(w[1].0 >= w[0].1, "core {} of {} runs two tasks at once", core, r);
                    }
                }
                for t in (0..inst.tasks.len()).filter(|&t| result.placement[t].0 == r) {
                    let at = result.spans[t].0;
                    let used: u64 = (0..inst.tasks.len())
                        .filter(|&q| result.placement[q].0 == r && result.spans[q].0 <= at && at < result.spans[q].1)
                        .map(|q| inst.tasks[q].memory_mb)
                        .sum();
                    prop_assert!(used <= res.memory_mb);
                }
            }
        }
    }
}
