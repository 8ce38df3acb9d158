//! The call-graph model: hand-worked disciplines on one service, and
//! conservation of calls across tiers under every discipline.

use nimbus_dc::callgraph::{self, Discipline, Graph, Load};
use nimbus_sim::rng::RngStreams;
use nimbus_sim::time::{SimDuration, SimTime};
use proptest::prelude::*;

fn one_service() -> Graph {
    Graph { services: vec![1], cores: 1, fanout: (1, 1), net: SimDuration::ZERO }
}

fn fixed_work(ms: f64, requests: usize) -> Load {
    Load { requests, rate: 1.0, arrival_cv: 1.0, work_mean_s: ms / 1000.0, work_sigma: 0.0 }
}

fn responses(d: Discipline) -> (f64, f64) {
    // Two requests of 10 ms on one core, at 0 and 1 ms.
    let arrivals = [SimTime::ZERO, SimTime::from_nanos(1_000_000)];
    let mut rng = RngStreams::new(1).stream("t");
    let (out, counts) =
        callgraph::run_arrivals(&one_service(), &fixed_work(10.0, 2), &arrivals, d, &mut rng, &mut |_| {});
    assert_eq!(counts.issued, counts.answered);
    (out.metric("response_ms_mean").expect("metric"), out.metric("response_ms_p50").expect("metric"))
}

#[test]
fn disciplines_on_one_core_by_hand() {
    // (Times agree to within the nanoseconds a completion is rounded up.)
    // FCFS: 0-10 and 10-20 ms: responses 10 and 19.
    let (mean, _) = responses(Discipline::Fcfs);
    assert!((mean - 14.5).abs() < 1e-4, "{mean}");
    // PS: alone for 1 ms, then half a core each: the first ends at 19 ms,
    // the second (1 ms left) at 20 ms: responses 19 and 19.
    let (mean, _) = responses(Discipline::ProcessorSharing);
    assert!((mean - 19.0).abs() < 1e-4, "{mean}");
    // Oldest first, strict: as FCFS here (the older request came first).
    let (mean, _) = responses(Discipline::OldestFirst { degree: 1 });
    assert!((mean - 14.5).abs() < 1e-4, "{mean}");
    let (mean, _) = responses(Discipline::OldestFirstNonPreemptive);
    assert!((mean - 14.5).abs() < 1e-4, "{mean}");
    // Oldest first with degree 2 on one core: both share, as PS.
    let (mean, _) = responses(Discipline::OldestFirst { degree: 2 });
    assert!((mean - 19.0).abs() < 1e-4, "{mean}");
}

#[test]
fn the_stamp_travels_down_the_chain() {
    // Two tiers, one service each, one core, fan-out 1, 10 ms per call.
    // Request A arrives at 0, B at 5 ms. A's tier-0 call ends at 10, its
    // tier-1 call runs 10-20. B's tier-0 call runs 10-20, its tier-1 call
    // arrives at 20 and runs 20-30 under every discipline. Now C arrives
    // at 11 ms: its tier-0 call waits behind B's (FCFS and oldest-first
    // alike) and runs 20-30, its tier-1 call 30-40.
    let graph = Graph { services: vec![1, 1], cores: 1, fanout: (1, 1), net: SimDuration::ZERO };
    let arrivals = [SimTime::ZERO, SimTime::from_nanos(5_000_000), SimTime::from_nanos(11_000_000)];
    for d in [Discipline::Fcfs, Discipline::OldestFirst { degree: 1 }] {
        let mut rng = RngStreams::new(1).stream("t");
        let (out, counts) = callgraph::run_arrivals(&graph, &fixed_work(10.0, 3), &arrivals, d, &mut rng, &mut |_| {});
        assert_eq!(counts.issued, vec![3, 3]);
        // Responses 20, 25, 29 ms.
        let mean = out.metric("response_ms_mean").expect("metric");
        assert!((mean - (20.0 + 25.0 + 29.0) / 3.0).abs() < 1e-4, "{d:?}: {mean}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_call_is_answered_once(
        services in prop::collection::vec(1usize..4, 1..4),
        cores in 1u32..3,
        fanout in (1u32..3, 0u32..3),
        requests in 20usize..200,
        load in 0.3f64..1.3,
        sigma in 0.0f64..2.0,
        seed in 0u64..1_000,
    ) {
        let graph = Graph { services, cores, fanout: (fanout.0, fanout.0 + fanout.1), net: SimDuration::from_nanos(50_000) };
        let per_request = graph
            .services
            .iter()
            .zip(graph.calls_per_tier())
            .map(|(&n, k)| k / n as f64 * 1e-3 / f64::from(cores))
            .fold(0.0, f64::max);
        let load = Load { requests, rate: load / per_request, arrival_cv: 1.5, work_mean_s: 1e-3, work_sigma: sigma };
        for d in [
            Discipline::Fcfs,
            Discipline::ProcessorSharing,
            Discipline::OldestFirst { degree: 1 },
            Discipline::OldestFirst { degree: 2 },
            Discipline::OldestFirstNonPreemptive,
        ] {
            let mut rng = RngStreams::new(seed).stream("t");
            let (out, counts) = callgraph::run(&graph, &load, d, &mut rng, &mut |_| {});
            prop_assert!(out.notes.is_empty(), "{d:?}: {:?}", out.notes);
            prop_assert_eq!(&counts.issued, &counts.answered, "{:?}", d);
            prop_assert_eq!(counts.issued[0], requests as u64);
            for t in 1..counts.issued.len() {
                let (lo, hi) = (u64::from(graph.fanout.0), u64::from(graph.fanout.1));
                prop_assert!(counts.issued[t] >= counts.issued[t - 1] * lo && counts.issued[t] <= counts.issued[t - 1] * hi);
            }
            let mut again = RngStreams::new(seed).stream("t");
            prop_assert_eq!(callgraph::run(&graph, &load, d, &mut again, &mut |_| {}).0, out);
        }
    }
}

#[test]
fn scripted_requests_replay_given_trees() {
    use nimbus_dc::callgraph::ScriptedCall;
    // Two tiers (one service, then two), one core each, no network.
    // Request 0 (at 0): 4 ms at the top, then 1 ms on service 1 and 3 ms
    // on service 2: top 0-4, children 4-5 and 4-7, answered at 7.
    // Request 1 (at 1 ms): 2 ms at the top (4-6, behind request 0), then
    // 1 ms on service 1 (6-7): answered at 7, response 6 ms.
    let graph = Graph { services: vec![1, 2], cores: 1, fanout: (1, 2), net: SimDuration::ZERO };
    let call = |service, ms: f64, children: Vec<usize>| ScriptedCall { service, work_s: ms / 1e3, children };
    let calls = vec![
        call(0, 4.0, vec![1, 2]),
        call(1, 1.0, vec![]),
        call(2, 3.0, vec![]),
        call(0, 2.0, vec![4]),
        call(1, 1.0, vec![]),
    ];
    let arrivals = [SimTime::ZERO, SimTime::from_nanos(1_000_000)];
    let load = fixed_work(1.0, 2);
    let (out, counts) =
        callgraph::run_scripted(&graph, &load, &arrivals, &[0, 3], &calls, Discipline::Fcfs).expect("a valid script");
    assert_eq!((counts.issued.clone(), counts.answered), (vec![2, 3], vec![2, 3]));
    let mean = out.metric("response_ms_mean").expect("metric");
    assert!((mean - (7.0 + 6.0) / 2.0).abs() < 1e-4, "{mean}");
    // A call outside its tier, or a leaf tier that fans out, is refused.
    let mut wrong = calls.clone();
    wrong[1].service = 0;
    assert!(callgraph::run_scripted(&graph, &load, &arrivals, &[0, 3], &wrong, Discipline::Fcfs).is_err());
    let mut deep = calls.clone();
    deep[4].children = vec![1];
    assert!(callgraph::run_scripted(&graph, &load, &arrivals, &[0, 3], &deep, Discipline::Fcfs).is_err());
    assert!(callgraph::run_scripted(&graph, &load, &arrivals, &[0], &calls, Discipline::Fcfs).is_err());
}
