//! Invariants of the Spark-imitating simulator under every scheduler, on
//! random DAG jobs: no executor runs two tasks at once, every task of a
//! stage runs exactly once and only after all its parents' tasks ended,
//! every job finishes, and a seed gives identical results.

use std::sync::Arc;

use nimbus_dc::job::{DATA_POINTS, Durations, JobSpec};
use nimbus_dc::mc_wscpt::{McWscpt, Rule};
use nimbus_dc::spark::{self, Cluster, Scheduler, Submission};
use nimbus_dc::spark_baselines::{Fair, Fifo, SjfCp};
use nimbus_sim::rng::RngStreams;
use nimbus_sim::time::SimTime;
use proptest::prelude::*;

fn job(name: usize, shape: &[(u32, u8, u16)]) -> JobSpec {
    // Stage i's parent is stage (i * p) % i for a drawn p (none for stage 0).
    let n = shape.len();
    let mut children = vec![Vec::new(); n];
    let mut stages = Vec::with_capacity(n);
    for (i, &(tasks, parent_pick, ms)) in shape.iter().enumerate() {
        if i > 0 {
            children[usize::from(parent_pick) % i].push(i);
        }
        let first: Vec<(u32, Vec<f64>)> =
            DATA_POINTS.iter().map(|&p| (p, vec![f64::from(ms) + f64::from(p)])).collect();
        let empty: Vec<(u32, Vec<f64>)> = DATA_POINTS.iter().map(|&p| (p, vec![])).collect();
        stages.push((tasks, Durations::from_tables(&first, &first, &empty)));
    }
    JobSpec::new(format!("j{name}"), stages, children).expect("a tree is acyclic")
}

fn schedulers() -> Vec<(&'static str, Box<dyn Scheduler>)> {
    vec![
        ("fifo", Box::new(Fifo)),
        ("fair", Box::new(Fair { weighted: false })),
        ("weighted-fair", Box::new(Fair { weighted: true })),
        ("sjf-cp", Box::new(SjfCp)),
        ("mc-wscpt", Box::new(McWscpt::new(Rule::Hybrid, 2, true, true))),
        ("mc", Box::new(McWscpt::new(Rule::Mc, 2, false, true))),
        ("wscpt", Box::new(McWscpt::new(Rule::Wscpt, 2, true, false))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_task_runs_once_after_its_parents(
        shapes in prop::collection::vec(prop::collection::vec((1u32..12, any::<u8>(), 1u16..400), 1..6), 1..6),
        gaps in prop::collection::vec(0u64..3_000, 6),
        weights in prop::collection::vec(1u8..5, 6),
        executors in 1u32..9,
        seed in 0u64..1_000,
    ) {
        let subs: Vec<Submission> = shapes.iter().enumerate().scan(0u64, |t, (i, s)| {
            *t += gaps[i];
            Some(Submission { at: SimTime::from_nanos(*t * 1_000_000), spec: Arc::new(job(i, s)), weight: f64::from(weights[i]) })
        }).collect();
        let cluster = Cluster { executors, moving_delay_ms: 20.0, warmup_delay_ms: 10.0 };
        for (name, mut scheduler) in schedulers() {
            let rng = RngStreams::new(seed).stream("durations");
            let (out, log) = spark::run_logged(&cluster, &subs, scheduler.as_mut(), rng);
            prop_assert!(out.notes.is_empty(), "{name}: {:?}", out.notes);
            prop_assert_eq!(out.metric("jobs_finished"), Some(subs.len() as f64), "{}", name);
            // Exactly the stage's tasks ran, after every parent task ended.
            for (j, sub) in subs.iter().enumerate() {
                for (s, stage) in sub.spec.stages.iter().enumerate() {
                    let runs: Vec<_> = log.iter().filter(|r| r.job == j && r.stage == s).collect();
                    prop_assert_eq!(runs.len(), stage.tasks as usize, "{} job {} stage {}", name, j, s);
                    let first_start = runs.iter().map(|r| r.start).min().expect("tasks ran");
                    prop_assert!(first_start >= sub.at, "{name}: started before arrival");
                    for &p in &stage.parents {
                        let parent_end = log.iter().filter(|r| r.job == j && r.stage == p).map(|r| r.end).max().expect("parent ran");
                        prop_assert!(first_start >= parent_end, "{name}: job {j} stage {s} before parent {p}");
                    }
                }
            }
            // No executor over-committed: its tasks do not overlap.
            for e in 0..executors as usize {
                let mut runs: Vec<_> = log.iter().filter(|r| r.executor == e).map(|r| (r.start, r.end)).collect();
                runs.sort();
                for w in runs.windows(2) {
                    prop_assert!(w[1].0 >= w[0].1, "{name}: executor {e} overlaps {:?}", w);
                }
            }
            // Determinism: the same seed gives the same output.
            let (_, mut again) = schedulers().into_iter().find(|(n, _)| *n == name).expect("listed");
            let rerun = spark::run(&cluster, &subs, again.as_mut(), RngStreams::new(seed).stream("durations"), &mut |_| {});
            prop_assert_eq!(&rerun, &out, "{}", name);
        }
    }
}

#[test]
fn a_single_chain_on_one_executor_takes_the_sum_of_its_tasks() {
    // Two stages of two tasks, 100 ms + executors each (one executor: the
    // 5-executor data point, 105 ms); the first task also waits for the
    // executor to move (20 ms) and its fresh table is empty, so it takes
    // the first-wave time plus the 10 ms warm-up.
    let spec = Arc::new(job(0, &[(2, 0, 100), (2, 0, 100)]));
    let subs = vec![Submission { at: SimTime::ZERO, spec, weight: 1.0 }];
    let cluster = Cluster { executors: 1, moving_delay_ms: 20.0, warmup_delay_ms: 10.0 };
    let out = spark::run(&cluster, &subs, &mut Fifo, RngStreams::new(1).stream("d"), &mut |_| {});
    let expected_s = (20.0 + 115.0 + 3.0 * 105.0) / 1000.0;
    let jct = out.metric("jct_s_mean").expect("metric");
    assert!((jct - expected_s).abs() < 1e-9, "{jct} vs {expected_s}");
    assert_eq!(out.metric("moves"), Some(1.0));
    assert_eq!(out.metric("tasks"), Some(4.0));
}
