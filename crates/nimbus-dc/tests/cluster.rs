//! Invariants of the task cluster under every scheduler, and hand-worked
//! cases: every task runs exactly once, after its job arrived, no node runs
//! more tasks than it has slots, every job finishes, and a seed gives
//! identical results.

use nimbus_dc::cluster::{self, BagJob, ClusterScheduler, Nodes};
use nimbus_dc::cluster_baselines::{KubeDefault, Sparrow};
use nimbus_dc::murmuration::Murmuration;
use nimbus_sim::params::{Param, Params, Value};
use nimbus_sim::rng::RngStreams;
use nimbus_sim::time::{SimDuration, SimTime};
use proptest::prelude::*;

fn params(pairs: &[(&str, Value)]) -> Params {
    let mut p = Params::new("policy", None);
    for (k, v) in pairs {
        p.set_path(k, Param { value: v.clone(), span: None }).expect("settable");
    }
    p
}

fn schedulers() -> Vec<(&'static str, Box<dyn ClusterScheduler>)> {
    let none = Params::new("policy", None);
    vec![
        ("k8s", Box::new(KubeDefault::from_params(&none).expect("defaults"))),
        ("k8s-fast", Box::new(KubeDefault::from_params(&params(&[("decision_ms", Value::Int(0))])).expect("valid"))),
        ("sparrow", Box::new(Sparrow::from_params(&none).expect("defaults"))),
        ("murmuration", Box::new(Murmuration::from_params(&none).expect("defaults"))),
        (
            "murmuration-reorder-1",
            Box::new(
                Murmuration::from_params(&params(&[
                    ("reorder", Value::Bool(true)),
                    ("instances", Value::Int(3)),
                    ("gossip_ms", Value::Int(7)),
                    ("slack_ms", Value::Int(0)),
                ]))
                .expect("valid"),
            ),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn every_task_runs_once_within_the_slots(
        jobs in prop::collection::vec((0u64..4_000, prop::collection::vec(1u64..3_000, 1..12)), 1..25),
        nodes in 1usize..6,
        slots in 1u32..4,
        rtt_us in 0u64..3_000,
        seed in 0u64..1_000,
    ) {
        let mut t = 0;
        let jobs: Vec<BagJob> = jobs
            .iter()
            .map(|(gap, tasks)| {
                t += gap;
                BagJob {
                    at: SimTime::from_nanos(t * 1_000_000),
                    tasks: tasks.iter().map(|ms| SimDuration::from_nanos(ms * 1_000_000)).collect(),
                }
            })
            .collect();
        let spec = Nodes { count: nodes, slots, rtt: SimDuration::from_nanos(rtt_us * 1_000) };
        for (name, mut scheduler) in schedulers() {
            let (out, log) = cluster::run_logged(&spec, &jobs, scheduler.as_mut(), RngStreams::new(seed).stream("s"));
            prop_assert!(out.notes.is_empty(), "{name}: {:?}", out.notes);
            prop_assert_eq!(out.metric("jobs_finished"), Some(jobs.len() as f64), "{}", name);
            let mut seen = std::collections::BTreeSet::new();
            for r in &log {
                prop_assert!(seen.insert((r.job, r.task)), "{name}: task {:?} ran twice", (r.job, r.task));
                prop_assert!(r.start >= jobs[r.job].at, "{name}: a task started before its job arrived");
                prop_assert_eq!(r.end, r.start + jobs[r.job].tasks[r.task], "{}", name);
            }
            let total: usize = jobs.iter().map(|j| j.tasks.len()).sum();
            prop_assert_eq!(seen.len(), total, "{}: tasks lost", name);
            for node in 0..nodes {
                // Sweep starts (+1) and ends (-1); ends first at equal times.
                let mut edges: Vec<(SimTime, i32)> = log
                    .iter()
                    .filter(|r| r.node == node)
                    .flat_map(|r| [(r.start, 1), (r.end, -1)])
                    .collect();
                edges.sort();
                let mut running = 0;
                for (_, d) in edges {
                    running += d;
                    prop_assert!(running <= slots as i32, "{name}: node {node} over-committed");
                }
            }
            let again = schedulers().into_iter().find(|(n, _)| *n == name).map(|(_, s)| s);
            let mut again = again.expect("listed");
            let rerun = cluster::run(&spec, &jobs, again.as_mut(), RngStreams::new(seed).stream("s"), &mut |_| {});
            prop_assert_eq!(&rerun, &out, "{}", name);
        }
    }
}

fn one_job(tasks_s: &[u64]) -> Vec<BagJob> {
    vec![BagJob { at: SimTime::ZERO, tasks: tasks_s.iter().map(|&s| SimDuration::from_secs(s)).collect() }]
}

#[test]
fn kubernetes_binds_in_order_and_waits_for_a_slot() {
    // One node of two slots, no network delay, no binding limit: tasks of
    // 3 s and 2 s start at 0, the 1-s task when the 2-s one ends.
    let spec = Nodes { count: 1, slots: 2, rtt: SimDuration::ZERO };
    let mut k8s = KubeDefault::from_params(&params(&[("decision_ms", Value::Int(0))])).expect("valid");
    let (out, log) = cluster::run_logged(&spec, &one_job(&[3, 2, 1]), &mut k8s, RngStreams::new(1).stream("s"));
    assert_eq!(out.metric("jct_s_mean"), Some(3.0));
    assert_eq!(out.metric("tail_wait_s_mean"), Some(2.0));
    assert_eq!(log.iter().find(|r| r.task == 2).map(|r| r.start), Some(SimTime::from_secs(2)));
    // At 50 bindings/s the second task binds 20 ms late, the third waits
    // for the first free slot (2.02 s).
    let mut k8s = KubeDefault::from_params(&Params::new("policy", None)).expect("defaults");
    let (out, _) = cluster::run_logged(&spec, &one_job(&[3, 2, 1]), &mut k8s, RngStreams::new(1).stream("s"));
    assert!((out.metric("tail_wait_s_mean").expect("metric") - 2.02).abs() < 1e-9);
}

#[test]
fn murmuration_aligns_a_job_on_the_earliest_slots() {
    // Two one-slot nodes: the 3-s and 2-s tasks start at once on both, the
    // 1-s task waits for the slot free earliest (2 s): JCT 3 s, no bounce.
    let spec = Nodes { count: 2, slots: 1, rtt: SimDuration::ZERO };
    let mut m = Murmuration::from_params(&params(&[("instances", Value::Int(1))])).expect("valid");
    let (out, log) = cluster::run_logged(&spec, &one_job(&[3, 2, 1]), &mut m, RngStreams::new(1).stream("s"));
    assert_eq!(out.metric("jct_s_mean"), Some(3.0));
    assert_eq!(out.metric("bounces"), Some(0.0));
    let short = log.iter().find(|r| r.task == 2).expect("ran");
    let medium = log.iter().find(|r| r.task == 1).expect("ran");
    assert_eq!((short.node, short.start), (medium.node, SimTime::from_secs(2)));
}

#[test]
fn sparrow_late_binding_gives_tasks_to_the_first_free_slots() {
    // Two one-slot nodes, 4 reservations for 2 tasks; each node asks,
    // gets a task (longest first); the spare reservations are cancelled.
    let spec = Nodes { count: 2, slots: 1, rtt: SimDuration::from_nanos(2_000_000) };
    let mut s = Sparrow::from_params(&Params::new("policy", None)).expect("defaults");
    let (out, log) = cluster::run_logged(&spec, &one_job(&[3, 1]), &mut s, RngStreams::new(1).stream("s"));
    assert_eq!(out.metric("reservations"), Some(4.0));
    // Reservation lands at 1 ms, the answer at 3 ms: the 3-s task ends at 3.003 s.
    let long = log.iter().find(|r| r.task == 0).expect("ran");
    assert_eq!(long.start, SimTime::from_nanos(3_000_000));
    assert!((out.metric("jct_s_mean").expect("metric") - 3.003).abs() < 1e-9);
}
