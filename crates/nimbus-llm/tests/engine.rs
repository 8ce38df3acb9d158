//! The serving engine on hand-computed cases and under random workloads.

use std::sync::Arc;

use nimbus_llm::engine::{self, Deployment, Dispatcher, Fleet, ReplicaGroup, RunResult};
use nimbus_llm::exec::{BatchShape, ExecTimeModel};
use nimbus_llm::qlm::{Qlm, QlmConfig, Reorder};
use nimbus_llm::replica::{Preemption, QueueOrder, SchedulerConfig, SchedulerKind};
use nimbus_llm::request::{ClassSpec, RequestSpec};
use nimbus_llm::router::{Router, RouterKind};
use nimbus_sim::{RngStreams, SimDuration, SimTime};
use proptest::prelude::*;

/// Every iteration takes `base + per_token · T` ms.
#[derive(Debug)]
struct Linear {
    base_ms: f64,
    per_token_ms: f64,
}

impl ExecTimeModel for Linear {
    fn iteration_s(&self, b: &BatchShape) -> f64 {
        (self.base_ms + self.per_token_ms * b.tokens() as f64) / 1e3
    }
    fn describe(&self) -> String {
        "linear".into()
    }
}

fn fleet(kind: SchedulerKind, blocks: u32, replicas: u32, preemption: Preemption) -> Fleet {
    let deployment = Deployment {
        exec: Arc::new(Linear { base_ms: 10.0, per_token_ms: 0.0 }),
        total_blocks: blocks,
        max_seq_len: 4096,
        kv_bytes_per_token: 1e5,
        load_s: 2.0,
        decode_tokens_per_s: 1000.0,
    };
    Fleet {
        groups: vec![ReplicaGroup {
            gpu: "test".into(),
            count: replicas,
            tp: 1,
            initial_model: Some(0),
            deployments: vec![Some(deployment)],
            gpu_hour_usd: 1.0,
            pinned_instance: None,
            instances_per_replica: 1,
        }],
        models: vec!["m".into()],
        classes: vec![ClassSpec { name: "c".into(), ttft_s: Some(1.0), tbt_ms: None, deadline_s: None }],
        scheduler: SchedulerConfig {
            kind,
            max_seqs: 64,
            block_tokens: 16,
            watermark: 0.0,
            preemption,
            order: QueueOrder::Fcfs,
        },
        pcie_bandwidth: 1e10,
        horizon: SimTime::MAX,
        check_invariants: true,
    }
}

fn at_ms(ms: u64) -> SimTime {
    SimTime::ZERO + SimDuration::from_nanos(ms * 1_000_000)
}

fn req(ms: u64, prompt: u32, output: u32) -> RequestSpec {
    RequestSpec { arrival: at_ms(ms), prompt, output, model: 0, class: 0, instance: 0 }
}

fn run(fleet: &Fleet, specs: &[RequestSpec]) -> RunResult {
    let mut router = Router::new(RouterKind::RoundRobin, 1, RngStreams::new(0).stream("router"));
    engine::run(fleet, specs, &mut router, |_| {})
}

/// An iteration still running when the horizon cuts the run counts only up
/// to the end: busy time never exceeds the span (it used to count whole,
/// so a long last iteration reported GPUs busy more than all the time).
#[test]
fn busy_time_stops_at_the_end_of_the_run() {
    let mut f = fleet(SchedulerKind::Vllm { max_tokens: 4096 }, 400, 1, Preemption::Recompute);
    f.groups[0].deployments[0].as_mut().expect("deployment").exec =
        Arc::new(Linear { base_ms: 60_000.0, per_token_ms: 0.0 });
    f.horizon = at_ms(10_000);
    let result = run(&f, &[req(0, 10, 5), req(5_000, 10, 5)]);
    let busy: f64 = result.busy_s.iter().map(|b| b.1).sum();
    assert!(busy <= result.end.as_secs_f64() + 1e-9, "busy {busy} s in a run of {} s", result.end);
    let output = nimbus_llm::metrics::output(&f, &result);
    let gpu_busy = output.metric("gpu_busy").expect("reported");
    assert!(gpu_busy.is_nan() || gpu_busy <= 1.0 + 1e-9, "{gpu_busy}");
}

#[test]
fn one_request_by_hand() {
    // Prefill (first token) then two decodes, 10 ms each.
    let f = fleet(SchedulerKind::Vllm { max_tokens: 4096 }, 100, 1, Preemption::Recompute);
    let result = run(&f, &[req(5, 100, 3)]);
    let r = &result.requests[0];
    assert_eq!(r.first_token, Some(at_ms(15)));
    assert_eq!(r.completion, Some(at_ms(35)));
    assert_eq!(r.gaps, vec![(10_000_000, 2)]);
    assert_eq!(result.iterations, 3);
    assert_eq!(result.request_iterations, 3);
}

/// Request-iterations sum batch sizes: without chunking or preemption each
/// request is in one prefill and `output − 1` decodes, 3 + 3 here however
/// the two are batched, while iterations count batches.
#[test]
fn request_iterations_sum_batch_sizes() {
    let f = fleet(SchedulerKind::Vllm { max_tokens: 4096 }, 100, 1, Preemption::Recompute);
    let result = run(&f, &[req(5, 100, 3), req(5, 50, 3)]);
    assert_eq!(result.request_iterations, 6);
    assert!(result.iterations < 6, "{} iterations: the two shared none", result.iterations);
}

#[test]
fn vllm_prefills_arrivals_together_before_decoding() {
    let f = fleet(SchedulerKind::Vllm { max_tokens: 4096 }, 100, 1, Preemption::Recompute);
    // The second arrives while the first prefills; it is prefilled next,
    // stalling the first's decode by one iteration.
    let result = run(&f, &[req(0, 100, 3), req(5, 100, 3)]);
    let (a, b) = (&result.requests[0], &result.requests[1]);
    assert_eq!(a.first_token, Some(at_ms(10)));
    assert_eq!(b.first_token, Some(at_ms(20)));
    assert_eq!(a.gaps.first(), Some(&(20_000_000, 1)));
    assert_eq!(a.completion, Some(at_ms(40)));
    assert_eq!(b.completion, Some(at_ms(40)));
}

#[test]
fn sarathi_chunks_long_prompts_and_keeps_decodes_going() {
    let f = fleet(SchedulerKind::Sarathi { chunk: 512 }, 1000, 1, Preemption::Recompute);
    let result = run(&f, &[req(0, 10, 5), req(1, 1200, 2)]);
    let (short, long) = (&result.requests[0], &result.requests[1]);
    // The long prompt needs three chunks (511 + 511 + 178 with a decode
    // of the short request beside each): its first token comes after the
    // third chunk, while the short request never stalls.
    assert_eq!(short.first_token, Some(at_ms(10)));
    assert_eq!(short.gaps, vec![(10_000_000, 4)]);
    assert_eq!(long.first_token, Some(at_ms(40)));
}

#[test]
fn newest_running_request_is_preempted() {
    // 20 blocks of 16 tokens: three requests of 96-token prompts (6 blocks
    // each) fit, but their decodes outgrow the cache.
    let f = fleet(SchedulerKind::Vllm { max_tokens: 4096 }, 20, 1, Preemption::Recompute);
    let result = run(&f, &[req(0, 96, 40), req(0, 96, 40), req(0, 96, 40)]);
    assert!(result.requests.iter().all(|r| r.completion.is_some()));
    assert_eq!(result.requests[0].preemptions, 0);
    assert_eq!(result.requests[1].preemptions, 0);
    assert!(result.requests[2].preemptions > 0);
}

#[test]
fn swapped_requests_keep_their_kv() {
    let f = fleet(SchedulerKind::Vllm { max_tokens: 4096 }, 20, 1, Preemption::Swap);
    let result = run(&f, &[req(0, 96, 40), req(0, 96, 40), req(0, 96, 40)]);
    assert!(result.requests.iter().all(|r| r.completion.is_some()));
    assert_eq!(result.requests.iter().map(|r| r.preemptions).sum::<u32>(), 0);
    assert!(result.requests[2].swaps > 0);
}

#[test]
fn requests_that_can_never_fit_are_rejected_not_dropped() {
    let f = fleet(SchedulerKind::Vllm { max_tokens: 4096 }, 10, 1, Preemption::Recompute);
    let result = run(&f, &[req(0, 500, 10), req(0, 20, 2)]);
    assert_eq!(result.requests[0].rejected, Some("larger than a replica's KV cache"));
    assert!(result.requests[1].completion.is_some());
}

#[test]
fn qlm_milp_is_no_worse_than_edf_on_a_small_instance() {
    // Two models on two replicas that each serve one at start: the MILP
    // and EDF reorder the same arrivals; the MILP's tardiness is no worse.
    let mut f = fleet(SchedulerKind::Vllm { max_tokens: 4096 }, 400, 2, Preemption::Recompute);
    f.models.push("n".into());
    let d = f.groups[0].deployments[0].clone();
    f.groups[0].deployments.push(d);
    f.classes.push(ClassSpec { name: "batch".into(), ttft_s: None, tbt_ms: None, deadline_s: Some(30.0) });
    let mut specs = Vec::new();
    for i in 0..12u64 {
        let mut s = req(i * 50, 64, 60);
        s.model = (i % 2) as u16;
        s.class = ((i / 3) % 2) as u16;
        specs.push(s);
    }
    let mut results = Vec::new();
    for reorder in [Reorder::Edf, Reorder::Milp { max_groups: 8 }] {
        let config = QlmConfig { reorder, group_size: 2, pull_limit: 2, ..QlmConfig::default() };
        let mut qlm = Qlm::new(config, 2, 2, specs.len(), RngStreams::new(0).stream("qlm"));
        let result = engine::run(&f, &specs, &mut qlm, |_| {});
        assert!(result.requests.iter().all(|r| r.completion.is_some()));
        let report = qlm.report(&result.requests);
        let solves = report.iter().find(|m| m.name == "qlm_milp_solves").map_or(0.0, |m| m.value);
        assert_eq!(solves > 0.0, matches!(reorder, Reorder::Milp { .. }), "{reorder:?}: {solves} solves");
        results.push(result);
    }
    let late = |r: &RunResult| -> f64 {
        r.requests
            .iter()
            .map(|q| {
                let done = q.completion.expect("completed").as_secs_f64();
                (done - q.due.as_secs_f64().min(1e9)).max(0.0)
            })
            .sum()
    };
    let (edf, milp) = (late(&results[0]), late(&results[1]));
    println!("tardiness: edf {edf:.3} s, milp {milp:.3} s");
    assert!(milp <= edf, "milp {milp} > edf {edf}");
}

fn scheduler_strategy() -> impl Strategy<Value = SchedulerKind> {
    prop_oneof![
        (16u32..2048).prop_map(|t| SchedulerKind::Vllm { max_tokens: t }),
        (8u32..1024).prop_map(|c| SchedulerKind::Sarathi { chunk: c }),
        Just(SchedulerKind::Orca),
    ]
}

proptest! {
    // A fixed seed keeps CI reproducible; 3,000 cases pass locally.
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e69_6d62_7573),
        ..ProptestConfig::default()
    })]

    /// Under any scheduler, preemption mode and random load on a small
    /// cache: the accounting invariants hold after every decision, every
    /// request ends completed (with all its tokens) or rejected, and time
    /// never runs backwards for a request.
    #[test]
    fn every_request_is_accounted_for(
        kind in scheduler_strategy(),
        swap in any::<bool>(),
        blocks in 40u32..400,
        replicas in 1u32..3,
        qlm in any::<bool>(),
        reqs in prop::collection::vec((0u64..5_000, 1u32..600, 1u32..200, 0u16..2, 0u16..2), 1..60),
    ) {
        let preemption = if swap { Preemption::Swap } else { Preemption::Recompute };
        let mut f = fleet(kind, blocks, replicas, preemption);
        f.groups[0].deployments[0].as_mut().expect("deployment").max_seq_len = 1024;
        // A second model that no replica holds at start: routers reject
        // its requests, QLM loads it.
        f.models.push("n".into());
        let d = f.groups[0].deployments[0].clone();
        f.groups[0].deployments.push(d);
        f.classes.push(ClassSpec { name: "batch".into(), ttft_s: None, tbt_ms: None, deadline_s: Some(100.0) });
        let mut specs: Vec<RequestSpec> = reqs
            .iter()
            .map(|&(t, p, o, model, class)| RequestSpec { model, class, ..req(t, p, o) })
            .collect();
        specs.sort_by_key(|s| s.arrival);
        let result = if qlm {
            let config = QlmConfig { group_size: 3, pull_limit: 4, ..QlmConfig::default() };
            let mut q = Qlm::new(config, replicas as usize, 2, specs.len(), RngStreams::new(1).stream("qlm"));
            engine::run(&f, &specs, &mut q, |_| {})
        } else {
            run(&f, &specs)
        };
        if qlm {
            // QLM loads the second model instead of turning requests away.
            prop_assert!(result.requests.iter().all(|r| r.rejected != Some("no replica serves the model")));
        }
        for r in &result.requests {
            match (r.rejected, r.completion) {
                (Some(_), None) => {}
                (None, Some(done)) => {
                    prop_assert_eq!(r.generated, r.spec.output);
                    let first = r.first_token.expect("a first token");
                    prop_assert!(r.spec.arrival < first && first <= done);
                    let gaps: u64 = r.gaps.iter().map(|g| g.1 as u64).sum();
                    prop_assert_eq!(gaps, r.spec.output as u64 - 1);
                    prop_assert_eq!(r.blocks, 0);
                }
                other => prop_assert!(false, "request neither completed nor rejected: {:?}", other),
            }
        }
    }
}
