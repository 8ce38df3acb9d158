//! Property tests of the engine's invariants under every policy, on random
//! clusters and workloads:
//! - GPUs per server are never over-allocated (checked independently of the
//!   engine's own assertion, by a wrapper around the policy);
//! - every job ends exactly once as completed, unfinished or unschedulable,
//!   and completed jobs did all their work after they arrived;
//! - simulated time never goes backwards.

use nimbus_gpu::cluster::{Cluster, GpuType, Server};
use nimbus_gpu::engine::{self, Arrivals, EndReason, EngineConfig};
use nimbus_gpu::job::{Job, JobId, Outcome, Work};
use nimbus_gpu::policy::{Assignment, Policy, PolicyEnv, REGISTRY, RanJob, RoundContext, RoundEnd};
use nimbus_sim::params::Params;
use nimbus_sim::{SimDuration, SimTime};
use proptest::prelude::*;

/// Delegates to a policy and checks every round's assignments.
struct Checked {
    inner: Box<dyn Policy>,
    capacity: Vec<u32>,
    last_now: SimTime,
}

impl Policy for Checked {
    fn round_s(&self) -> f64 {
        self.inner.round_s()
    }
    fn round_end(&self) -> RoundEnd {
        self.inner.round_end()
    }
    fn on_arrival(&mut self, job: &Job, now: SimTime) {
        self.inner.on_arrival(job, now);
    }
    fn schedule(&mut self, ctx: &RoundContext<'_>) -> Vec<Assignment> {
        assert!(ctx.now >= self.last_now, "time went backwards");
        self.last_now = ctx.now;
        let out = self.inner.schedule(ctx);
        let mut used = vec![0u32; self.capacity.len()];
        let mut seen = std::collections::BTreeSet::new();
        for a in &out {
            assert!(seen.insert(a.job), "job {} assigned twice", a.job);
            for (server, gpus) in a.placement.parts() {
                used[*server] += gpus;
            }
        }
        for (u, c) in used.iter().zip(&self.capacity) {
            assert!(u <= c, "server over-allocated: {u} > {c}");
        }
        out
    }
    fn on_round_end(&mut self, ctx: &RoundContext<'_>, ran: &[RanJob], end: SimTime) {
        assert!(end >= ctx.now);
        self.inner.on_round_end(ctx, ran, end);
    }
    fn on_completion(&mut self, job: JobId, now: SimTime) {
        self.inner.on_completion(job, now);
    }
}

fn cluster_strategy() -> impl Strategy<Value = Cluster> {
    proptest::collection::vec((0usize..3, 1u32..9, 80u32..=100), 1..7).prop_map(|groups| {
        let names = ["v100", "p100", "k80"];
        let gpu_types = names
            .iter()
            .enumerate()
            .map(|(i, n)| GpuType {
                name: n.to_string(),
                fp32_tflops: Some(15.0 - 5.0 * i as f64),
                intra_node_gbps: 16.0,
                inter_node_gbit: 25.0,
                profile: None,
            })
            .collect();
        let servers = groups
            .iter()
            .enumerate()
            .map(|(id, (t, gpus, speed))| Server { id, gpu_type: *t, gpus: *gpus, speed: f64::from(*speed) / 100.0 })
            .collect();
        Cluster { gpu_types, servers }
    })
}

fn jobs_strategy() -> impl Strategy<Value = Vec<Job>> {
    let job = (
        0u64..20_000,
        prop_oneof![Just(1u32), Just(2), Just(4), Just(8)],
        10.0f64..5000.0,
        proptest::collection::vec(prop_oneof![Just(0.0), 0.05f64..3.0], 3),
    );
    proptest::collection::vec(job, 1..20).prop_map(|raw| {
        let mut jobs: Vec<Job> = raw
            .into_iter()
            .map(|(arrival, sf, steps, isolated)| Job {
                id: 0,
                name: String::new(),
                arrival: SimTime::from_secs(arrival),
                work_total: steps,
                priority_weight: 1.0,
                restart_penalty_s: 0.0,
                measured: false,
                work: Work::Steps { job_type: "t".into(), scale_factor: sf, isolated },
            })
            .collect();
        jobs.sort_by_key(|j| j.arrival);
        for (i, j) in jobs.iter_mut().enumerate() {
            j.id = i;
            j.name = format!("job-{i}");
        }
        jobs
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e69_6d62_7573),
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_invariants_hold_for_every_policy(cluster in cluster_strategy(), jobs in jobs_strategy(), policy_index in 0..REGISTRY.len()) {
        let info = &REGISTRY[policy_index];
        let env = PolicyEnv { seed: 3, cluster: cluster.clone() };
        let inner = (info.build)(&Params::new("policy", None), &env).expect("defaults are valid");
        let capacity = cluster.servers.iter().map(|s| s.gpus).collect();
        let mut policy = Checked { inner, capacity, last_now: SimTime::ZERO };
        let config = EngineConfig { max_time: SimDuration::from_secs(200 * 24 * 3600), ..EngineConfig::default() };
        let n = jobs.len();
        let result = engine::run(&cluster, Arrivals::Fixed(jobs.clone()), &mut policy, &config, |_| {}).expect("runs");

        prop_assert_eq!(result.jobs.len(), n);
        let mut last_end = SimTime::ZERO;
        for r in &result.rounds {
            prop_assert!(r.start <= r.end && r.start >= last_end);
            prop_assert!(r.busy_gpus <= cluster.total_gpus());
            last_end = r.end;
        }
        for (job, state) in result.jobs.iter().zip(&result.states) {
            let schedulable = job.schedulable_on(&cluster);
            match state.outcome {
                Outcome::Completed => {
                    let finish = state.finish.expect("completed jobs have a finish time");
                    prop_assert!(finish >= job.arrival);
                    prop_assert!((state.work_done - job.work_total).abs() < 1e-9);
                    prop_assert!(schedulable);
                }
                Outcome::Unschedulable => prop_assert!(!schedulable),
                Outcome::Unfinished => prop_assert!(schedulable && result.reason != EndReason::Done, "{:?}", result.reason),
            }
        }
    }
}
