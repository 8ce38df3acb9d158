//! The serverless platform: analytic cross-check, hand cases, invariants.

use nimbus_faas::engine::{self, Balancer, Platform, ReuseOrder, RunResult, probe_order};
use nimbus_faas::policy;
use nimbus_faas::workload::{
    App, ColdStart, ExecTime, Function, Invocation, ListSource, ModelArtifact, Pattern, PatternSource,
};
use nimbus_sim::params::{Param, Params, Value};
use nimbus_sim::{RngStreams, SimDuration, SimTime};
use proptest::prelude::*;

fn platform(hosts: usize, mem_mb: u64) -> Platform {
    Platform {
        host_mem_mb: vec![mem_mb; hosts],
        balancer: Balancer::OpenWhisk,
        reuse: ReuseOrder::MostRecent,
        concurrency: 1,
        max_wait: SimDuration::from_secs(60),
        horizon: SimTime::MAX,
        record_limit: 1_000_000,
        check_invariants: true,
        models_stay_loaded: false,
        first_run_penalty: 0.0,
        energy: None,
    }
}

fn app(name: &str, mem_mb: u32, cold_ms: f64) -> App {
    App { name: name.into(), mem_mb, cold: ColdStart::split(cold_ms), model: None }
}

fn function(app: u32, exec_ms: f64) -> Function {
    Function { name: format!("f{app}"), app, exec: ExecTime::Fixed(exec_ms), trigger: "http" }
}

fn policy_from(name: &str, settings: &[(&str, Value)]) -> Box<dyn policy::KeepAlive> {
    let mut p = Params::new("policy", None);
    for (k, v) in settings {
        p.insert(*k, Param { value: v.clone(), span: None });
    }
    (policy::find(name).expect("registered").build)(&p).expect("valid")
}

fn at_s(s: f64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs_f64(s)
}

/// One function, Poisson arrivals at rate λ, fixed keep-alive T, executions
/// far shorter than T: a cold start happens when the gap exceeds T, with
/// probability exp(−λT).
#[test]
fn cold_start_probability_matches_exp_minus_lambda_t() {
    for (rate_per_min, keep_min) in [(1.0, 1.0), (0.5, 2.0), (2.0, 0.25)] {
        let apps = vec![app("a", 128, 0.0)];
        let functions = vec![function(0, 0.01)];
        let n = 100_000.0;
        let end = at_s(n / rate_per_min * 60.0);
        let mut source =
            PatternSource::new(vec![Pattern::Poisson(rate_per_min / 60.0)], end, RngStreams::new(7).stream("a"));
        let mut keep = policy_from("fixed", &[("keep_alive_min", Value::Float(keep_min))]);
        let mut p = platform(1, 1024);
        p.check_invariants = false;
        p.record_limit = 0;
        let r = engine::run(&apps, &functions, &p, &mut source, keep.as_mut(), RngStreams::new(7).stream("x"), |_| {});
        let measured = r.apps[0].cold as f64 / r.apps[0].invocations as f64;
        let expected = (-rate_per_min * keep_min).exp();
        eprintln!(
            "λT = {}: {} invocations, cold fraction {measured:.4} vs exp(-λT) {expected:.4}",
            rate_per_min * keep_min,
            r.apps[0].invocations
        );
        assert!((measured / expected - 1.0).abs() < 0.02, "λT = {}: {measured} vs {expected}", rate_per_min * keep_min);
    }
}

fn run_list(
    apps: &[App],
    functions: &[Function],
    p: &Platform,
    list: Vec<Invocation>,
    keep: &mut dyn policy::KeepAlive,
) -> RunResult {
    let mut source = ListSource::new(list);
    engine::run(apps, functions, p, &mut source, keep, RngStreams::new(1).stream("x"), |_| {})
}

#[test]
fn fixed_keep_alive_by_hand() {
    let apps = vec![app("a", 100, 500.0)];
    let functions = vec![function(0, 1000.0)];
    let list = [0.0, 300.0, 1200.0].iter().map(|&s| Invocation { at: at_s(s), function: 0 }).collect();
    let mut keep = policy_from("fixed", &[("keep_alive_min", Value::Float(10.0))]);
    let r = run_list(&apps, &functions, &platform(1, 1024), list, keep.as_mut());
    let cold: Vec<bool> = r.records.iter().map(|x| x.cold).collect();
    // 0 s cold (ends 1.5 s); 300 s warm; 1200 s: idle 899 s > 600 s, cold.
    assert_eq!(cold, [true, false, true]);
    assert_eq!(r.records[0].end, at_s(1.5));
    // Idle memory: 298.5 s, then 600 s until the expiry at 901.5 s; the
    // trace ends with the last execution at 1201.5 s.
    let wasted = r.apps[0].wasted_mb_s;
    assert!((wasted - 100.0 * (298.5 + 600.0)).abs() < 1e-6, "{wasted}");
    assert_eq!(r.end, at_s(1201.5));
}

/// Reuse order by hand: two sandboxes after a burst, then one invocation
/// every 250 s under a 10-minute keep-alive. Reusing the most recent keeps
/// one sandbox busy and lets the other expire at 601.5 s, so the second
/// burst starts one cold; reusing the least recent renews both in turn
/// (each is idle 499 s at most), so the second burst is all warm, at the
/// cost of idle memory.
#[test]
fn reuse_order_by_hand() {
    let apps = vec![app("a", 100, 500.0)];
    let functions = vec![function(0, 1000.0)];
    let times = [0.0, 0.1, 250.0, 500.0, 750.0, 1000.0, 1000.1];
    let run = |reuse: ReuseOrder| {
        let list = times.iter().map(|&s| Invocation { at: at_s(s), function: 0 }).collect();
        let mut keep = policy_from("fixed", &[("keep_alive_min", Value::Float(10.0))]);
        let p = Platform { reuse, ..platform(1, 1024) };
        run_list(&apps, &functions, &p, list, keep.as_mut())
    };
    let cold = |r: &RunResult| r.records.iter().map(|x| x.cold).collect::<Vec<_>>();
    let recent = run(ReuseOrder::MostRecent);
    assert_eq!(cold(&recent), [true, true, false, false, false, false, true]);
    let oldest = run(ReuseOrder::LeastRecent);
    assert_eq!(cold(&oldest), [true, true, false, false, false, false, false]);
    assert!(oldest.apps[0].wasted_mb_s > recent.apps[0].wasted_mb_s);
    // Random reuse is one of the two at each step, and repeatable.
    let random = run(ReuseOrder::Random);
    assert_eq!(cold(&random)[..5], [true, true, false, false, false]);
    assert_eq!(random.records, run(ReuseOrder::Random).records);
}

/// InstaInfer by hand: one inference app (model load 500 ms, execution
/// 100 ms, cold start 1 s).
#[test]
fn instainfer_preloaded_models_skip_the_load_until_offloaded() {
    let apps = vec![App { model: Some(ModelArtifact { load_ms: 500.0, size_mb: 600 }), ..app("ml", 1024, 1000.0) }];
    let functions = vec![function(0, 100.0)];
    let at = |times: &[f64]| times.iter().map(|&s| Invocation { at: at_s(s), function: 0 }).collect::<Vec<_>>();
    let regular: Vec<f64> = (0..=6).map(|k| 10.0 * k as f64).collect();
    let loads = |r: &RunResult| r.records.iter().map(|x| x.model_ms).collect::<Vec<_>>();
    // Pre-warming alone: the stateless handler loads the model every time.
    let mut hybrid = policy_from("hybrid", &[]);
    let r = run_list(&apps, &functions, &platform(1, 4096), at(&regular), hybrid.as_mut());
    assert_eq!(loads(&r), vec![500.0; 7]);
    assert_eq!(r.records[1].end, at_s(10.6));
    // InstaInfer: loaded once, then held between invocations.
    let mut insta = policy_from("instainfer", &[]);
    let r = run_list(&apps, &functions, &platform(1, 4096), at(&regular), insta.as_mut());
    assert_eq!(loads(&r), [500.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(r.records[1].end, at_s(10.1));
    let cold: Vec<bool> = r.records.iter().map(|x| x.cold).collect();
    assert_eq!(cold, [true, false, false, false, false, false, false]);
    // After six gaps of 10 s, λ = 0.1/s: the model is dropped
    // −ln(0.15)/λ = 19.0 s after the last execution (60.1 s), so an
    // arrival at 200 s loads it again; one at 75 s does not.
    let mut later = regular.clone();
    later.extend([75.0, 200.0]);
    let r = run_list(&apps, &functions, &platform(1, 4096), at(&later), policy_from("instainfer", &[]).as_mut());
    assert_eq!(loads(&r)[7..], [0.0, 500.0]);
    assert_eq!(r.offloads, 1);
    assert_eq!(r.model_load_us.count(), 9);
    // Every 3 minutes with a 5-minute histogram: the hybrid policy unloads
    // after each execution and pre-warms 1.8 minutes later; InstaInfer
    // loads the model into the pre-warmed sandbox, so no invocation after
    // the first waits for it, and cold starts are the hybrid policy's.
    let every3: Vec<f64> = (0..10).map(|k| 180.0 * k as f64).collect();
    let settings = [("range_min", Value::Int(5)), ("min_samples", Value::Int(1))];
    let base = run_list(&apps, &functions, &platform(1, 4096), at(&every3), policy_from("hybrid", &settings).as_mut());
    let r = run_list(&apps, &functions, &platform(1, 4096), at(&every3), policy_from("instainfer", &settings).as_mut());
    assert!(base.prewarms >= 7 && r.prewarms == base.prewarms, "{} {}", base.prewarms, r.prewarms);
    assert_eq!(r.preloads, r.prewarms);
    assert!(loads(&r)[1..].iter().all(|&ms| ms == 0.0), "{:?}", loads(&r));
    assert_eq!(loads(&base), vec![500.0; 10]);
    let colds = |r: &RunResult| r.records.iter().filter(|x| x.cold).count();
    assert_eq!(colds(&r), colds(&base));
    // A model larger than the per-sandbox budget is never held.
    let mut small = policy_from("instainfer", &[("budget_mb", Value::Int(512))]);
    let r = run_list(&apps, &functions, &platform(1, 4096), at(&regular), small.as_mut());
    assert_eq!(loads(&r), vec![500.0; 7]);
}

/// Faascale by hand: three overlapping invocations of one app (512 MB,
/// cold start 1 s, execution 1 s, first run after a restore +95%), then a
/// warm one.
#[test]
fn faascale_scales_a_running_microvm_instead_of_starting_new_ones() {
    let apps = vec![app("a", 512, 1000.0)];
    let functions = vec![function(0, 1000.0)];
    let list = || [0.0, 0.1, 0.2, 5.0].iter().map(|&s| Invocation { at: at_s(s), function: 0 }).collect();
    let mut p = platform(1, 4096);
    p.first_run_penalty = 0.95;
    let r = run_list(&apps, &functions, &p, list(), policy_from("fixed", &[]).as_mut());
    let flags = |r: &RunResult| {
        let mut by_arrival = r.records.clone();
        by_arrival.sort_by_key(|x| x.arrival);
        by_arrival.iter().map(|x| (x.cold, x.scale_up)).collect::<Vec<_>>()
    };
    assert_eq!(flags(&r), [(true, false), (true, false), (true, false), (false, false)]);
    // (Histogram means hold 3 significant digits.)
    let close = |a: f64, b: f64| (a / b - 1.0).abs() < 2e-3;
    assert!(close(r.instance_start_us.mean() / 1e3, 1000.0));
    assert!(close(r.exec_us.mean() / 1e3, (3.0 * 1950.0 + 1000.0) / 4.0));
    // Vertical: one microVM cold-starts; the others are blocks of 512 MB
    // pre-populated at 100 ms/GB plus 5 ms, and run without the penalty.
    let r = run_list(&apps, &functions, &p, list(), policy_from("faascale", &[]).as_mut());
    assert_eq!(flags(&r), [(true, false), (false, true), (false, true), (false, false)]);
    assert_eq!(r.scale_ups, 2);
    assert!(r.records.iter().filter(|x| x.scale_up).all(|x| x.cold_ms == 55.0));
    assert!(close(r.instance_start_us.mean() / 1e3, (1000.0 + 55.0 + 55.0) / 3.0));
    assert!(close(r.exec_us.mean() / 1e3, (1950.0 + 3.0 * 1000.0) / 4.0));
    // No room on the microVM's host: a new microVM elsewhere, cold.
    let r = run_list(&apps, &functions, &platform(2, 600), list(), policy_from("faascale", &[]).as_mut());
    assert_eq!(r.scale_ups, 0);
    assert_eq!(r.records.iter().filter(|x| x.cold).count(), 2);
}

/// Two invocations at a time per sandbox: the second and third arrivals
/// join running sandboxes (the second waits for its sandbox's cold start
/// to end), the fourth needs a new one.
#[test]
fn concurrent_invocations_share_a_sandbox_up_to_its_concurrency() {
    let apps = vec![app("a", 256, 1000.0)];
    let functions = vec![function(0, 2000.0)];
    let list = [0.0, 0.5, 3.5, 3.6, 3.7].iter().map(|&s| Invocation { at: at_s(s), function: 0 }).collect();
    let mut p = platform(1, 4096);
    p.concurrency = 2;
    let r = run_list(&apps, &functions, &p, list, policy_from("fixed", &[]).as_mut());
    let mut runs = r.records.clone();
    runs.sort_by_key(|x| x.arrival);
    let view: Vec<(bool, f64, f64)> =
        runs.iter().map(|x| (x.cold, x.start.as_secs_f64(), x.end.as_secs_f64())).collect();
    // 0 s: cold, runs 1-3 s; 0.5 s joins it, starts at 1 s (ready), ends
    // 3 s; 3.5 s: idle sandbox, warm; 3.6 s joins it; 3.7 s: full, cold.
    assert_eq!(view, [(true, 1.0, 3.0), (false, 1.0, 3.0), (false, 3.5, 5.5), (false, 3.6, 5.6), (true, 4.7, 6.7)]);
}

/// Knative: a pod takes many invocations; scale from zero on the first;
/// under sustained load the autoscaler adds pods and invocations queue at
/// the activator rather than cold-starting each.
#[test]
fn knative_scales_pods_with_observed_concurrency() {
    let apps = vec![app("a", 256, 1000.0)];
    let functions = vec![function(0, 1000.0)];
    let mut p = platform(1, 64 * 1024);
    p.concurrency = 10;
    let list = [0.0, 0.1, 0.2].iter().map(|&s| Invocation { at: at_s(s), function: 0 }).collect();
    let r = run_list(&apps, &functions, &p, list, policy_from("knative", &[]).as_mut());
    let mut runs = r.records.clone();
    runs.sort_by_key(|x| x.arrival);
    let view: Vec<(bool, f64)> = runs.iter().map(|x| (x.cold, x.start.as_secs_f64())).collect();
    assert_eq!(view, [(true, 1.0), (false, 1.0), (false, 1.0)]);
    // 20 invocations a second for a minute, one at a time per pod, target
    // 1: at least the 20 pods the load needs, and at most a few times more
    // (invocations queued while the first pods start inflate the panic
    // window, and panic mode never scales down); every invocation served.
    p.concurrency = 1;
    let list: Vec<Invocation> = (0..1200).map(|k| Invocation { at: at_s(k as f64 * 0.05), function: 0 }).collect();
    let r = run_list(&apps, &functions, &p, list, policy_from("knative", &[("target", Value::Float(1.0))]).as_mut());
    assert_eq!(r.apps[0].invocations, 1200);
    let pods = r.peak_mb / 256;
    assert!((20..=80).contains(&pods), "{pods} pods at the peak");
    // Cold starts are pod starts that invocations waited for, far fewer
    // than invocations.
    assert!(r.apps[0].cold >= 1 && r.apps[0].cold < 60, "{}", r.apps[0].cold);
}

#[test]
fn full_memory_evicts_idle_sandboxes_or_makes_invocations_wait() {
    // Two apps of 600 MB on a 1,000 MB host.
    let apps = vec![app("a", 600, 0.0), app("b", 600, 0.0)];
    let functions = vec![function(0, 1000.0), function(1, 1000.0)];
    let list = vec![
        Invocation { at: at_s(0.0), function: 0 },
        Invocation { at: at_s(0.5), function: 1 }, // waits for a's execution to end, then evicts it
        Invocation { at: at_s(5.0), function: 0 }, // evicts b's idle sandbox
    ];
    let mut keep = policy_from("faascache", &[]);
    let r = run_list(&apps, &functions, &platform(1, 1000), list, keep.as_mut());
    assert_eq!(r.records.len(), 3);
    assert_eq!(r.evictions, 2);
    let b = r.records.iter().find(|x| x.function == 1).expect("b ran");
    assert_eq!(b.start, at_s(1.0));
}

#[test]
fn probe_order_visits_every_host_once() {
    for n in 1..40 {
        for hash in [0u64, 7, 12_345, u64::MAX] {
            let mut order = probe_order(hash, n);
            order.sort_unstable();
            assert_eq!(order, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e69_6d62_7573),
        ..ProptestConfig::default()
    })]

    /// Under every policy and random load on small hosts: memory is never
    /// over-committed (checked after every event), and every invocation
    /// completes once or is dropped; cold + warm = completed.
    #[test]
    fn every_invocation_is_accounted_for(
        which in 0usize..9,
        concurrency in 1u32..4,
        hosts in 1usize..4,
        host_mb in 300u64..3000,
        mems in prop::collection::vec(50u32..800, 1..6),
        list in prop::collection::vec((0u64..600_000, 0usize..6, 1u32..5_000), 1..80),
    ) {
        let model = |i: usize| i.is_multiple_of(2).then_some(ModelArtifact { load_ms: 250.0, size_mb: 100 });
        let apps: Vec<App> =
            mems.iter().enumerate().map(|(i, &m)| App { model: model(i), ..app(&format!("a{i}"), m, 300.0) }).collect();
        let functions: Vec<Function> = (0..apps.len() as u32)
            .map(|a| Function { trigger: if a % 2 == 0 { "http" } else { "timer" }, ..function(a, 100.0) })
            .collect();
        let invocations: Vec<Invocation> = list
            .iter()
            .map(|&(ms, f, _)| Invocation { at: SimTime::ZERO + SimDuration::from_nanos(ms * 1_000_000), function: (f % apps.len()) as u32 })
            .collect();
        let total = invocations.len() as u64;
        let mut keep = match which {
            0 => policy_from("fixed", &[("keep_alive_min", Value::Float(1.0))]),
            1 => policy_from("hybrid", &[("range_min", Value::Int(5)), ("min_samples", Value::Int(1))]),
            2 => policy_from("faascache", &[]),
            3 => policy_from("faascache", &[("variant", Value::Str("lru".into()))]),
            5 => policy_from("dfaas", &[("tolerance_s", Value::Float(1.0))]),
            6 => policy_from("instainfer", &[("range_min", Value::Int(5)), ("min_samples", Value::Int(1))]),
            7 => policy_from("faascale", &[("keep_alive_min", Value::Float(1.0))]),
            8 => policy_from("knative", &[("target", Value::Float(1.0))]),
            _ => policy_from("faascache", &[("variant", Value::Str("size".into()))]),
        };
        let mut p = platform(hosts, host_mb);
        p.balancer = if which % 2 == 0 { Balancer::OpenWhisk } else { Balancer::LeastLoaded };
        p.max_wait = SimDuration::from_secs(2);
        p.concurrency = concurrency;
        let r = run_list(&apps, &functions, &p, invocations, keep.as_mut());
        let completed: u64 = r.apps.iter().map(|a| a.invocations).sum();
        let dropped: u64 = r.apps.iter().map(|a| a.dropped).sum();
        prop_assert_eq!(completed + dropped, total);
        prop_assert_eq!(r.arrivals, total);
        let cold: u64 = r.apps.iter().map(|a| a.cold).sum();
        prop_assert_eq!(cold as usize, r.records.iter().filter(|x| x.cold).count());
        prop_assert_eq!(r.records.len() as u64, completed);
        for a in &r.apps {
            prop_assert!(a.wasted_mb_s <= a.loaded_mb_s + 1e-6);
        }
    }
}

fn energy_config(cores: u32) -> nimbus_faas::energy::EnergyConfig {
    nimbus_faas::energy::EnergyConfig {
        power: nimbus_model::energy::LinearPower { idle_w: 100.0, max_w: 300.0 },
        embodied: nimbus_model::energy::Embodied::SERVER,
        cores,
        mem_w_per_gb: 0.0,
        intensity: nimbus_faas::energy::CarbonIntensity::Constant(360.0),
    }
}

#[test]
fn energy_attribution_by_hand() {
    // Two apps on a 2-core host; keep-alive 1 min. a runs 0-10 s, b runs
    // 5-15 s; the trace ends when b's execution does.
    let apps = vec![app("a", 100, 0.0), app("b", 300, 0.0)];
    let functions = vec![function(0, 10_000.0), function(1, 10_000.0)];
    let list = vec![Invocation { at: at_s(0.0), function: 0 }, Invocation { at: at_s(5.0), function: 1 }];
    let mut keep = policy_from("fixed", &[("keep_alive_min", Value::Float(1.0))]);
    let mut p = platform(1, 4096);
    p.energy = Some(energy_config(2));
    let r = run_list(&apps, &functions, &p, list, keep.as_mut());
    let e = r.energy.expect("accounted");
    // Host: 15 s of idle (100 W) + 20 s of one busy core (100 W each).
    let total = 15.0 * 100.0 + 20.0 * 100.0;
    assert!((e.host_joules[0] - total).abs() < 1e-6, "{}", e.host_joules[0]);
    // Shapley: a alone 0-5 s; idle split equally 5-15 s; each pays its own
    // 10 s of dynamic power.
    assert!((e.apps[0].joules[0] - 2000.0).abs() < 1e-6 && (e.apps[1].joules[0] - 1500.0).abs() < 1e-6, "{:?}", e.apps);
    // CPU-only leaves idle power unattributed; memory splits it 1:3.
    assert!((e.apps[0].joules[1] - 1000.0).abs() < 1e-6 && (e.unattributed_joules[1] - 1500.0).abs() < 1e-6);
    assert!((e.apps[0].joules[2] - 1750.0).abs() < 1e-6, "{}", e.apps[0].joules[2]);
    // 360 g/kWh = 1e-4 g/J, plus embodied carbon.
    let carbon: f64 = e.apps.iter().map(|x| x.carbon_g[0]).sum();
    assert!((carbon - (total * 1e-4 + e.embodied_g)).abs() < 1e-9);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e69_6d62_7573),
        ..ProptestConfig::default()
    })]

    /// Under any load, including oversubscribed cores (sampled Shapley),
    /// every method's attributed energy plus its unattributed part equals
    /// the hosts' total.
    #[test]
    fn attributed_energy_sums_to_host_energy(
        cores in 1u32..4,
        hosts in 1usize..3,
        list in prop::collection::vec((0u64..300_000, 0usize..14), 1..60),
    ) {
        let apps: Vec<App> = (0..14).map(|i| app(&format!("a{i}"), 64 + 32 * i, 200.0)).collect();
        let functions: Vec<Function> = (0..14u32).map(|a| function(a, 5_000.0)).collect();
        let invocations: Vec<Invocation> = list
            .iter()
            .map(|&(ms, f)| Invocation { at: SimTime::ZERO + SimDuration::from_nanos(ms * 1_000_000), function: f as u32 })
            .collect();
        let mut keep = policy_from("fixed", &[("keep_alive_min", Value::Float(1.0))]);
        let mut p = platform(hosts, 8192);
        let mut config = energy_config(cores);
        config.mem_w_per_gb = 0.375;
        p.energy = Some(config);
        let r = run_list(&apps, &functions, &p, invocations, keep.as_mut());
        let e = r.energy.expect("accounted");
        let total: f64 = e.host_joules.iter().sum();
        for m in 0..3 {
            let attributed: f64 = e.apps.iter().map(|a| a.joules[m]).sum();
            prop_assert!((attributed + e.unattributed_joules[m] - total).abs() <= 1e-6 * total.max(1.0), "method {}", m);
        }
    }
}

/// Faascale's feasibility analysis on the Azure 2019 fixtures: vertical
/// scaling never cold-starts more than horizontal, for 1-, 10- and 60-minute
/// windows (needs ../shared/data).
#[test]
fn faascale_vertical_cold_starts_never_exceed_horizontal() {
    use nimbus_faas::faascale::{cold_starts, instances_per_minute};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/invitro-trace-examples");
    if !dir.exists() {
        eprintln!("NOTICE: ../shared/data/invitro-trace-examples is absent; skipping this check");
        return;
    }
    let rows = nimbus_trace::faas::read_azure2019_invocations(&dir.join("invocations.csv")).expect("valid");
    let durations = nimbus_trace::faas::read_azure2019_durations(&dir.join("durations.csv")).expect("valid");
    for row in &rows {
        let d = durations.iter().find(|d| d.function == row.function).map_or(1000.0, |d| d.average_ms);
        let n = instances_per_minute(&row.per_minute, d);
        for window in [1, 10, 60] {
            let (h, v) = cold_starts(&n, window);
            assert!(v <= h, "{}: window {window}: vertical {v} > horizontal {h}", row.function);
        }
    }
    // By hand: the first function runs 5 invocations of 100 ms in each of
    // the day's first 230 minutes and none after (one instance while
    // active): one cold start either way.
    let first = &rows[0];
    assert!(first.per_minute[..230].iter().all(|&c| c == 5) && first.per_minute[230..].iter().all(|&c| c == 0));
    let n = instances_per_minute(&first.per_minute, 100.0);
    assert_eq!(cold_starts(&n, 1), (1, 1));
    assert_eq!(cold_starts(&n, 60), (1, 1));
}

#[test]
fn dfaas_defers_tolerant_invocations_to_a_busy_sandbox() {
    // One timer-triggered app whose executions take 10 s; the second
    // invocation arrives 2 s into the first.
    let apps = vec![app("a", 100, 1000.0)];
    let functions = vec![Function { trigger: "timer", ..function(0, 10_000.0) }];
    let list = || vec![Invocation { at: at_s(0.0), function: 0 }, Invocation { at: at_s(2.0), function: 0 }];
    // Immediate execution: two cold starts.
    let mut fixed = policy_from("fixed", &[]);
    let r = run_list(&apps, &functions, &platform(1, 1024), list(), fixed.as_mut());
    assert_eq!(r.apps[0].cold, 2);
    // A 60-s tolerance: the second waits for the first sandbox (warm at 11 s).
    let mut dfaas = policy_from("dfaas", &[("tolerance_s", Value::Float(60.0))]);
    let r = run_list(&apps, &functions, &platform(1, 1024), list(), dfaas.as_mut());
    assert_eq!((r.apps[0].cold, r.deferred, r.tolerance_misses), (1, 1, 0));
    assert_eq!(r.records[1].start, at_s(11.0));
    // A 5-s tolerance: it must start by 7 s, so it cold-starts at 6 s.
    let mut short = policy_from("dfaas", &[("tolerance_s", Value::Float(5.0))]);
    let r = run_list(&apps, &functions, &platform(1, 1024), list(), short.as_mut());
    assert_eq!((r.apps[0].cold, r.tolerance_misses), (2, 0));
    let second = r.records.iter().find(|x| x.arrival == at_s(2.0)).expect("ran");
    assert_eq!(second.start, at_s(7.0));
}
