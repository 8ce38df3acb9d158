//! `nimbus bench`: throughput of the kernel and of whole scenarios, reported
//! as ratios against a baseline measured in the same process where one
//! exists (these machines are shared and noisy).

#![allow(clippy::disallowed_methods)] // benchmarks measure wall-clock time by design

use std::time::Instant;

use nimbus_sim::queue::{hold_model, hold_model_binary_heap};

/// Runs the named benchmark(s).
pub fn run(what: &str, quick: bool) -> Result<(), String> {
    match what {
        "kernel" => kernel(quick),
        "gavel" => gavel(quick),
        "sia" => scheduler("scenarios/gpu/sia-philly.toml", "Sia's ILP at 64 GPUs (goal: median <= 50 ms)"),
        "hops" => scheduler("scenarios/gpu/hops-512.toml", "Hops' ILP at 512 GPUs (goal: <= 1 s)"),
        "llm" => serving(),
        "faas" => serverless(quick),
        "all" => {
            kernel(quick)?;
            gavel(quick)?;
            scheduler("scenarios/gpu/sia-philly.toml", "Sia's ILP at 64 GPUs (goal: median <= 50 ms)")?;
            scheduler("scenarios/gpu/hops-512.toml", "Hops' ILP at 512 GPUs (goal: <= 1 s)")?;
            serving()?;
            serverless(quick)
        }
        other => Err(format!("unknown benchmark {other:?}; available: kernel, gavel, sia, hops, llm, faas, all")),
    }
}

/// Decision times of every policy of a scenario on its first seed.
fn scheduler(path: &str, title: &str) -> Result<(), String> {
    time_policies(
        path,
        &Default::default(),
        title,
        |_| true,
        |label, output, wall| {
            let timing = |name: &str| output.timings.iter().find(|m| m.name == name).map_or(f64::NAN, |m| m.value);
            outln!(
                "  {label:<10} run {wall:>6.2} s  decisions: p50 {:>8.3} ms  p99 {:>8.2} ms  max {:>8.1} ms  ({} rounds)",
                timing("decision_ms_p50"),
                timing("decision_ms_p99"),
                timing("decision_ms_max"),
                output.metric("rounds").unwrap_or(f64::NAN)
            );
        },
    )
}

/// Loads a scenario, prints `title` and its data substitutions, and runs
/// each policy that `keep` accepts once on the scenario's first seed,
/// handing each output and its wall time to `report`.
fn time_policies(
    path: &str,
    overrides: &nimbus_lab::scenario::Overrides,
    title: &str,
    keep: impl Fn(&str) -> bool,
    mut report: impl FnMut(&str, &nimbus_sim::output::RunOutput, f64),
) -> Result<(), String> {
    let path = std::path::Path::new(path);
    let scenario = nimbus_lab::Scenario::load(path, overrides).map_err(|e| e.to_string())?;
    let seed = scenario.seeds[0];
    outln!("{title}: {} (seed {seed}), one run per policy", path.display());
    for f in scenario.prepared.fallbacks() {
        outln!("note: {f}");
    }
    for policy in scenario.policies.iter().filter(|p| keep(&p.label)) {
        let t = Instant::now();
        let output = scenario.prepared.run(&policy.name, &policy.params, seed, &mut |_| {})?;
        report(&policy.label, &output, t.elapsed().as_secs_f64());
    }
    Ok(())
}

fn kernel(quick: bool) -> Result<(), String> {
    outln!("kernel: hold model (pop an event, schedule its successor after an exponential hold)");
    outln!("{:>10}  {:>12}  {:>12}  {:>8}", "pending", "nimbus M/s", "binheap M/s", "ratio");
    let events: u64 = if quick { 1_000_000 } else { 5_000_000 };
    for pending in [1_000usize, 100_000, 1_000_000] {
        let (ours, base) =
            (measure(|| hold_model(pending, events, 1)), measure(|| hold_model_binary_heap(pending, events, 1)));
        let (ours_rate, base_rate) = (events as f64 / ours / 1e6, events as f64 / base / 1e6);
        outln!("{pending:>10}  {ours_rate:>12.2}  {base_rate:>12.2}  {:>8.2}", ours_rate / base_rate);
    }
    outln!("(same model as ../shared/bench/simpy_hold.py; SimPy does about 0.3 M events/s on these machines)");
    Ok(())
}

/// Best of three wall-clock seconds.
fn measure<T>(mut f: impl FnMut() -> T) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn gavel(quick: bool) -> Result<(), String> {
    use nimbus_lab::scenario::Overrides;
    let mut overrides = Overrides { seeds: Some(vec![0]), set: Vec::new() };
    if quick {
        overrides.set.push(("workload.measure".into(), "[400, 500]".into()));
    }
    time_policies(
        "scenarios/gpu/gavel-continuous.toml",
        &overrides,
        "gavel",
        |_| true,
        |label, output, wall| {
            let jobs = output.metric("jobs_completed").unwrap_or(f64::NAN);
            let rounds = output.metric("rounds").unwrap_or(f64::NAN);
            outln!(
                "  {label:<22} {wall:>7.2} s wall  {jobs:>6} jobs  {rounds:>7} rounds  {:>8.0} jobs/s  decision p50 {:.3} ms",
                jobs / wall,
                output.timings.iter().find(|m| m.name == "decision_ms_p50").map_or(f64::NAN, |m| m.value)
            );
        },
    )
}

/// The serving engine: iterations and requests per wall second on the
/// Azure conversation trace (or its stand-in), one run per policy.
fn serving() -> Result<(), String> {
    let path = "scenarios/llm/vllm-vs-sarathi.toml";
    time_policies(
        path,
        &Default::default(),
        "llm",
        |_| true,
        |label, output, wall| {
            let iterations = output.metric("iterations").unwrap_or(f64::NAN);
            let requests = output.metric("requests_completed").unwrap_or(f64::NAN);
            let tokens: f64 = output
                .table("requests")
                .map(|t| {
                    let col = t.columns.iter().position(|c| c == "generated_tokens").unwrap_or(0);
                    t.rows
                        .iter()
                        .map(|r| match &r[col] {
                            nimbus_sim::output::Cell::Int(v) => *v as f64,
                            _ => 0.0,
                        })
                        .sum()
                })
                .unwrap_or(f64::NAN);
            outln!(
                "  {label:<10} {wall:>6.2} s wall  {iterations:>8} iterations ({:>6.2} M/s)  {requests:>6} requests  {:>6.1} M tokens/s",
                iterations / wall / 1e6,
                tokens / wall / 1e6
            );
        },
    )
}

/// Peak resident memory of this process, MB (Linux; NaN elsewhere).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The serverless engine under the hybrid histogram policy on the synthetic
/// Azure-2019-like workload: invocations per wall second and peak memory.
fn serverless(quick: bool) -> Result<(), String> {
    use nimbus_lab::scenario::Overrides;
    let path = "scenarios/faas/sitw-pareto.toml";
    let (apps, days) = if quick { (2_000, 1.0) } else { (10_000, 2.0) };
    let overrides = Overrides {
        seeds: Some(vec![1]),
        set: vec![
            ("workload.apps".into(), apps.to_string()),
            ("workload.days".into(), format!("{days:.1}")),
            ("platform.hosts".into(), "64".into()),
        ],
    };
    outln!("faas: synthetic Azure-2019-like workload, {apps} apps x {days} days, 64 hosts of 256 GB");
    let keep = |label: &str| label == "hybrid-4h" || label == "fixed-10";
    time_policies(path, &overrides, "faas", keep, |label, output, wall| {
        let invocations = output.metric("invocations").unwrap_or(f64::NAN);
        outln!(
            "  {label:<10} {wall:>7.2} s wall  {invocations:>12.0} invocations  {:>6.2} M invocations/s  peak RSS {:.0} MB",
            invocations / wall / 1e6,
            peak_rss_mb()
        );
    })
}
