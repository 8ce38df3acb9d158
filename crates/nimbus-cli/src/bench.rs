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
        "faas" => serverless(quick, false),
        "faas-50k" => serverless(quick, true),
        "faas-azure" => azure_scale(quick),
        "snapshot" => snapshots(quick),
        "consensus" => consensus(quick),
        "forecast" => forecast(quick),
        "elastic" => elastic(quick),
        "carbon" => carbon(),
        "dc" => dc(quick),
        "train" => train(quick),
        "storage" => storage(quick),
        "all" => {
            kernel(quick)?;
            gavel(quick)?;
            scheduler("scenarios/gpu/sia-philly.toml", "Sia's ILP at 64 GPUs (goal: median <= 50 ms)")?;
            scheduler("scenarios/gpu/hops-512.toml", "Hops' ILP at 512 GPUs (goal: <= 1 s)")?;
            serving()?;
            serverless(quick, false)?;
            snapshots(quick)?;
            consensus(quick)?;
            forecast(quick)?;
            elastic(quick)?;
            carbon()?;
            dc(quick)?;
            train(quick)?;
            storage(quick)
        }
        other => Err(format!(
            "unknown benchmark {other:?}; available: kernel, gavel, sia, hops, llm, faas, faas-50k, faas-azure, snapshot, consensus, forecast, elastic, carbon, dc, train, storage, all"
        )),
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

/// The serverless engine on the synthetic Azure-2019-like workload:
/// invocations per wall second and peak memory, under fixed keep-alive and
/// the hybrid histogram (`full`: the hybrid histogram alone on 50,000 apps;
/// 14 days unless `quick`, then one day).
fn serverless(quick: bool, full: bool) -> Result<(), String> {
    use nimbus_lab::scenario::Overrides;
    let path = "scenarios/faas/sitw-pareto.toml";
    let (apps, days, hosts) = match (full, quick) {
        (true, false) => (50_000, 14.0, 512),
        (true, true) => (50_000, 1.0, 512),
        (false, true) => (1_000, 1.0, 64),
        (false, false) => (5_000, 1.0, 64),
    };
    let overrides = Overrides {
        seeds: Some(vec![1]),
        set: vec![
            ("workload.apps".into(), apps.to_string()),
            ("workload.days".into(), format!("{days:.1}")),
            ("platform.hosts".into(), hosts.to_string()),
        ],
    };
    outln!("faas: synthetic Azure-2019-like workload, {apps} apps x {days} days, {hosts} hosts of 256 GB");
    let keep = |label: &str| label == "hybrid-4h" || (!full && label == "fixed-10");
    time_policies(path, &overrides, "faas", keep, |label, output, wall| {
        let invocations = output.metric("invocations").unwrap_or(f64::NAN);
        outln!(
            "  {label:<10} {wall:>7.2} s wall  {invocations:>14.0} invocations  {:>6.2} M invocations/s  peak RSS {:.0} MB",
            invocations / wall / 1e6,
            peak_rss_mb()
        );
    })
}

/// Serverless in the Wild's seven policies on the Azure-scale synthetic
/// workload under the app-level engine (aggregated per minute), then, on a
/// one-day subset, the aggregated engine against the exact one (every
/// invocation) and the platform engine: time and agreement.
fn azure_scale(quick: bool) -> Result<(), String> {
    use nimbus_lab::scenario::Overrides;
    let path = "scenarios/faas/sitw-azure-scale.toml";
    let (apps, days) = if quick { (5_000, 1.0) } else { (50_000, 14.0) };
    let set = |apps: usize, days: f64, extra: &[(&str, &str)]| {
        let mut set =
            vec![("workload.apps".to_string(), apps.to_string()), ("workload.days".into(), format!("{days:.1}"))];
        set.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Overrides { seeds: Some(vec![1]), set }
    };
    outln!("faas-azure: {apps} synthetic Azure-2019-like apps x {days} days, app-level engine, aggregated per minute");
    let started = Instant::now();
    let mut total_invocations = 0.0;
    time_policies(
        path,
        &set(apps, days, &[]),
        "faas-azure",
        |_| true,
        |label, output, wall| {
            let invocations = output.metric("invocations").unwrap_or(f64::NAN);
            total_invocations += invocations;
            outln!(
                "  {label:<10} {wall:>7.2} s wall  {invocations:>16.0} invocations  {:>8.0} M invocations/s  cold {:.4}%  peak RSS {:.0} MB",
                invocations / wall / 1e6,
                output.metric("cold_start_pct").unwrap_or(f64::NAN),
                peak_rss_mb()
            );
        },
    )?;
    let wall = started.elapsed().as_secs_f64();
    outln!(
        "  all seven: {wall:.1} s ({:.0} M invocations/s; goal: <= 120 s for 50,000 apps x 14 days on 2 cores)",
        total_invocations / wall / 1e6
    );
    // Agreement and speed on one day of a subset: exact app-level engine,
    // aggregated, and the platform engine (hosts, concurrency) for scale.
    let sub = if quick { 1_000 } else { 5_000 };
    outln!("faas-azure: {sub} apps x 1 day, hybrid-4h and fixed-10: aggregated vs exact (every invocation)");
    // (label, wall s, cold-start %, idle memory GB·s, invocations) per policy.
    type Measured = Vec<(String, f64, f64, f64, f64)>;
    let measure = |extra: &[(&str, &str)]| -> Result<Measured, String> {
        let scenario =
            nimbus_lab::Scenario::load(std::path::Path::new(path), &set(sub, 1.0, extra)).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for policy in scenario.policies.iter().filter(|p| p.label == "hybrid-4h" || p.label == "fixed-10") {
            let t = Instant::now();
            let out = scenario.prepared.run(&policy.name, &policy.params, 1, &mut |_| {})?;
            let m = |name: &str| out.metric(name).unwrap_or(f64::NAN);
            rows.push((
                policy.label.clone(),
                t.elapsed().as_secs_f64(),
                m("cold_start_pct"),
                m("wasted_memory_gb_s"),
                m("invocations"),
            ));
        }
        Ok(rows)
    };
    let aggregated = measure(&[])?;
    let exact = measure(&[("platform.aggregate", "false")])?;
    for ((label, t_agg, cold_agg, mem_agg, inv), (_, t_exact, cold_exact, mem_exact, _)) in
        aggregated.iter().zip(&exact)
    {
        outln!(
            "  {label:<10} exact {t_exact:>6.2} s, aggregated {t_agg:>6.2} s ({:.1}x); {inv:.0} invocations; cold {cold_exact:.4}% vs {cold_agg:.4}% (diff {:+.4} points); idle memory {:+.2}%",
            t_exact / t_agg,
            cold_agg - cold_exact,
            100.0 * (mem_agg / mem_exact - 1.0)
        );
    }
    // The platform engine (hosts, concurrency) on a smaller day, for scale.
    let small = if quick { 200 } else { 1_000 };
    let scenario_at = |apps: usize, extra: &[(&str, &str)]| {
        nimbus_lab::Scenario::load(std::path::Path::new(path), &set(apps, 1.0, extra)).map_err(|e| e.to_string())
    };
    let platform = scenario_at(
        small,
        &[
            ("platform.engine", "\"platform\""),
            ("platform.hosts", "64"),
            ("platform.host_memory_gb", "256"),
            ("platform.record_limit", "0"),
        ],
    )?;
    let app_level = scenario_at(small, &[])?;
    outln!("faas-azure: {small} apps x 1 day, hybrid-4h: platform engine against the app-level engine");
    for policy in platform.policies.iter().filter(|p| p.label == "hybrid-4h") {
        let t = Instant::now();
        let out = platform.prepared.run(&policy.name, &policy.params, 1, &mut |_| {})?;
        let t_platform = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ours = app_level.prepared.run(&policy.name, &policy.params, 1, &mut |_| {})?;
        let t_app = t.elapsed().as_secs_f64();
        let m = |o: &nimbus_sim::output::RunOutput, name: &str| o.metric(name).unwrap_or(f64::NAN);
        outln!(
            "  platform {t_platform:.2} s ({:.2} M invocations/s), app-level {t_app:.3} s ({:.0}x); cold {:.4}% vs {:.4}% (the platform engine adds concurrency: busy apps start extra sandboxes)",
            m(&out, "invocations") / t_platform / 1e6,
            t_platform / t_app,
            m(&out, "cold_start_pct"),
            m(&ours, "cold_start_pct")
        );
    }
    Ok(())
}

/// FunctionBench's functions (names as in Ilúvatar's benchmark file); the
/// synthetic images are named after them.
const FUNCTIONBENCH: [&str; 12] = [
    "float_operation",
    "cnn_image_classification",
    "json_dumps_loads",
    "image_processing",
    "dd",
    "lin_pack",
    "chameleon",
    "model_training",
    "pyaes",
    "gzip_compression",
    "hello",
    "video_processing",
];

/// Snapipeline against a CRIU-style serial restore, for real: snapshot
/// bytes for all functions, and each function's time to first response
/// (median of repeats), with every restore checked byte for byte.
fn snapshots(quick: bool) -> Result<(), String> {
    use nimbus_faas::snapipeline::{Dedup, Store};
    use nimbus_faas::snapshot::{Composition, CompressedImage, Execution, Restored, SnapshotError, synthetic_images};
    use std::time::Duration;
    let mib = if quick { 16 } else { 64 };
    let repeats = if quick { 3 } else { 5 };
    let chunk_pages = 16;
    let t0 = Instant::now();
    let (files, images) = synthetic_images(&FUNCTIONBENCH, mib * 256, Composition::PYTHON, 1);
    outln!(
        "snapshot: {} synthetic Python-runtime images of {mib} MiB ({} library files, {:.0} MiB), LZ4 chunks of {chunk_pages} pages; built in {:.1} s",
        images.len(),
        files.files.len(),
        files.files.iter().map(|f| f.1.len()).sum::<usize>() as f64 / 1048576.0,
        t0.elapsed().as_secs_f64()
    );
    let criu: Vec<CompressedImage> = images.iter().map(|i| CompressedImage::new(i, chunk_pages)).collect();
    let criu_bytes: u64 = criu.iter().map(CompressedImage::stored_bytes).sum();
    let raw: u64 = images.iter().map(|i| i.bytes.len() as u64).sum();
    let memory = |dedup: Dedup| {
        let mut store = Store::new(chunk_pages, dedup);
        let snaps: Vec<_> = images.iter().map(|i| store.add(i, &files)).collect();
        let table: u64 = snaps.iter().map(|s| s.table_bytes()).sum();
        (store.stored_bytes() + table, store, snaps)
    };
    let (content_only, _, _) = memory(Dedup { file_pages: false, content: true });
    let (total, store, snaps) = memory(Dedup { file_pages: true, content: true });
    let mb = |b: u64| b as f64 / 1048576.0;
    outln!("  memory: raw {:.0} MiB, CRIU-style compressed {:.0} MiB", mb(raw), mb(criu_bytes));
    outln!(
        "          content dedup {:.0} MiB ({:+.1}%), + file-page references {:.0} MiB ({:+.1}% vs CRIU-style; paper: up to -28%)",
        mb(content_only),
        100.0 * (content_only as f64 / criu_bytes as f64 - 1.0),
        mb(total),
        100.0 * (total as f64 / criu_bytes as f64 - 1.0)
    );
    let census = snaps.iter().fold((0, 0, 0), |a, s| {
        let c = s.census();
        (a.0 + c.0, a.1 + c.1, a.2 + c.2)
    });
    outln!(
        "          pages: {} zero, {} file references, {} stored by content in {:.0} MiB of chunks",
        census.0,
        census.1,
        census.2,
        mb(store.stored_bytes())
    );
    let mut serial_ms = Vec::new();
    let mut dedup_ms = Vec::new();
    let mut pipelined_ms = Vec::new();
    let mut pipelined_done_ms = Vec::new();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for ((image, snap), criu) in images.iter().zip(&snaps).zip(&criu) {
        let expected = Execution::expected(image);
        // One timed restore, checked byte for byte: (time to first
        // response, whole restore done), ms.
        type Restore<'a> = &'a dyn Fn(&(dyn Fn() -> Duration + Sync)) -> Result<Restored, SnapshotError>;
        let timed = |how: &str, restore: Restore| -> Result<(f64, f64), String> {
            let start = Instant::now();
            let r = restore(&|| start.elapsed()).map_err(|e| e.to_string())?;
            if r.bytes != image.bytes || r.digest != expected {
                return Err(format!("{how} restore of {} is not byte-identical", image.name));
            }
            Ok((r.first_response.as_secs_f64() * 1e3, r.restore_done.as_secs_f64() * 1e3))
        };
        let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            a.push(timed("serial", &|clock| criu.restore(&image.hot, clock))?.0);
            b.push(timed("dedup serial", &|clock| store.restore_serial(snap, &files, &image.hot, clock))?.0);
            let (first, done) =
                timed("pipelined", &|clock| store.restore_pipelined(snap, &files, &image.hot, 32, clock))?;
            c.push(first);
            d.push(done);
        }
        serial_ms.push(median(a));
        dedup_ms.push(median(b));
        pipelined_ms.push(median(c));
        pipelined_done_ms.push(median(d));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    outln!("  time to first response, mean over functions of the median of {repeats} (every restore byte-identical):");
    outln!("    CRIU-style serial      {:>8.2} ms", mean(&serial_ms));
    outln!(
        "    dedup, serial          {:>8.2} ms ({:+.1}%)",
        mean(&dedup_ms),
        100.0 * (mean(&dedup_ms) / mean(&serial_ms) - 1.0)
    );
    outln!(
        "    Snapipeline pipelined  {:>8.2} ms ({:+.1}% vs CRIU-style; paper: -53% end-to-end on average); whole restore done at {:.2} ms",
        mean(&pipelined_ms),
        100.0 * (mean(&pipelined_ms) / mean(&serial_ms) - 1.0),
        mean(&pipelined_done_ms)
    );
    captured_python_images(chunk_pages);
    Ok(())
}

/// Imports of Python processes standing in for FunctionBench functions
/// after start-up (the real images' memory comparison).
const PYTHON_IMPORTS: [&str; 6] = [
    "json",
    "gzip, zlib",
    "hashlib, hmac, base64",
    "decimal, fractions, statistics",
    "xml.etree.ElementTree, html.parser",
    "sqlite3, csv, datetime",
];

/// Snapshot memory of real processes: Python interpreters that imported
/// different modules, captured from `/proc/<pid>/mem` while they sleep.
/// Skipped with a notice where `python3` or `/proc` access is missing.
fn captured_python_images(chunk_pages: usize) {
    use nimbus_faas::snapipeline::{Dedup, Store};
    use nimbus_faas::snapshot::{CompressedImage, FileSet, capture_process};
    use std::io::BufRead;
    let mut files = FileSet::default();
    let mut images = Vec::new();
    for imports in PYTHON_IMPORTS {
        let script = format!("import {imports}, sys, time; print('ready', flush=True); time.sleep(60)");
        let child =
            std::process::Command::new("python3").args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn();
        let Ok(mut child) = child else {
            outln!("  real images: python3 is not available; skipped");
            return;
        };
        let ready = child.stdout.take().and_then(|out| std::io::BufReader::new(out).lines().next()).is_some();
        let image = if ready {
            capture_process(child.id(), &mut files)
        } else {
            Err(nimbus_faas::snapshot::SnapshotError::Io("no start-up".into()))
        };
        let _ = child.kill();
        let _ = child.wait();
        match image {
            Ok(image) => images.push(image),
            Err(e) => {
                outln!("  real images: cannot capture a python3 process ({e}); skipped");
                return;
            }
        }
    }
    let raw: u64 = images.iter().map(|i| i.bytes.len() as u64).sum();
    let criu: u64 = images.iter().map(|i| CompressedImage::new(i, chunk_pages).stored_bytes()).sum();
    let stored = |dedup: Dedup| {
        let mut store = Store::new(chunk_pages, dedup);
        let tables: u64 = images.iter().map(|i| store.add(i, &files).table_bytes()).sum();
        store.stored_bytes() + tables
    };
    let content = stored(Dedup { file_pages: false, content: true });
    let all = stored(Dedup { file_pages: true, content: true });
    let mb = |b: u64| b as f64 / 1048576.0;
    outln!(
        "  real images: {} python3 processes, {:.0} MiB raw (file-mapped {:.0}%), CRIU-style {:.1} MiB, content dedup {:.1} MiB ({:+.1}%), + file pages {:.1} MiB ({:+.1}%)",
        images.len(),
        mb(raw),
        100.0 * images.iter().map(|i| i.backing.iter().filter(|b| b.is_some()).count()).sum::<usize>() as f64
            / (raw as f64 / nimbus_faas::snapshot::PAGE as f64),
        mb(criu),
        mb(content),
        100.0 * (content as f64 / criu as f64 - 1.0),
        mb(all),
        100.0 * (all as f64 / criu as f64 - 1.0)
    );
}

/// The replication twin on `scenarios/consensus/racos-lan-64k.toml`
/// (five replicas, YCSB-A, 256 clients, 10 GbE): simulated operations per
/// wall second of each protocol (the twin's speed, against full-copy
/// Rabia's in the same process), then the same cluster with values from 1
/// to 64 KiB: simulated throughput and Racos' ratios to Rabia and RS-Paxos.
fn consensus(quick: bool) -> Result<(), String> {
    use nimbus_lab::scenario::Overrides;
    let path = "scenarios/consensus/racos-lan-64k.toml";
    let ops = if quick { "20" } else { "100" };
    let mut overrides = Overrides { seeds: None, set: vec![("workload.ops_per_client".into(), ops.into())] };
    let mut walls = Vec::new();
    time_policies(
        path,
        &overrides,
        "consensus: the twin's speed",
        |_| true,
        |label, output, wall| {
            let completed = output.metric("ops_completed").unwrap_or(0.0);
            walls.push((label.to_string(), wall));
            outln!(
                "  {label:<12} {completed:>7.0} operations in {wall:>6.2} s wall: {:>8.0} simulated operations per wall second ({:>6.0} simulated ops/s, p50 {:.2} ms)",
                completed / wall,
                output.metric("throughput_ops_s").unwrap_or(f64::NAN),
                output.metric("latency_ms_p50").unwrap_or(f64::NAN),
            );
        },
    )?;
    if let Some((_, rabia)) = walls.iter().find(|(l, _)| l == "rabia") {
        let ratios: Vec<String> = walls.iter().map(|(l, w)| format!("{l} {:.2}x", w / rabia)).collect();
        outln!("  wall time against rabia's: {}", ratios.join(", "));
    }
    outln!("consensus: value size sweep on the same cluster (seed 1; simulated throughput, ops/s)");
    outln!(
        "  {:>8} {:>9} {:>9} {:>9} {:>11} {:>13} {:>16}",
        "value",
        "racos",
        "rabia",
        "rs-paxos",
        "multi-paxos",
        "racos/rabia",
        "racos/rs-paxos"
    );
    for bytes in [1024u64, 4096, 16384, 65536] {
        overrides.set =
            vec![("workload.ops_per_client".into(), ops.into()), ("workload.value_bytes".into(), bytes.to_string())];
        let scenario = nimbus_lab::Scenario::load(std::path::Path::new(path), &overrides).map_err(|e| e.to_string())?;
        let mut speeds = Vec::new();
        for policy in &scenario.policies {
            let output = scenario.prepared.run(&policy.name, &policy.params, 1, &mut |_| {})?;
            speeds.push((policy.label.clone(), output.metric("throughput_ops_s").unwrap_or(f64::NAN)));
        }
        let of = |name: &str| speeds.iter().find(|(l, _)| l == name).map_or(f64::NAN, |s| s.1);
        outln!(
            "  {:>6} K {:>9.0} {:>9.0} {:>9.0} {:>11.0} {:>12.2}x {:>15.2}x",
            bytes / 1024,
            of("racos"),
            of("rabia"),
            of("rs-paxos"),
            of("multi-paxos"),
            of("racos") / of("rabia"),
            of("racos") / of("rs-paxos")
        );
    }
    outln!(
        "  (paper: Racos up to 2.26x leader-based erasure-coded SMR; protocol notes: Racos/Rabia ~1x at 1 KB, 2-3x NIC-bound)"
    );
    Ok(())
}

/// Models in the forecast benchmark (the statistical ones) and how many
/// series each runs on by default (the slow ones on the first few: rates
/// are per series either way; the statsforecast reference uses the same
/// counts).
const FORECAST_MODELS: [(&str, usize); 11] = [
    ("naive", 200),
    ("snaive24", 200),
    ("ma24", 200),
    ("ses", 200),
    ("croston", 200),
    ("tsb", 200),
    ("adida", 200),
    ("theta24", 40),
    ("autoets", 40),
    ("mstl", 12),
    ("autoarima", 8),
];

/// Rolling-origin evaluation (30 origins, 24-step horizon, 672-value
/// window) of every statistical model on synthetic hourly series, one
/// thread, as series per second; beside statsforecast's rate on the first
/// series of the same set, when its reference file is there
/// (`crates/nimbus-forecast/tests/reference/statsforecast_bench.py`).
/// `NIMBUS_BENCH_SERIES=N` runs every model on N series; `quick` on a tenth
/// of the default counts.
fn forecast(quick: bool) -> Result<(), String> {
    use nimbus_forecast::evaluate::{Input, Settings, evaluate};
    let fixed: Option<usize> = match std::env::var("NIMBUS_BENCH_SERIES") {
        Ok(v) => Some(v.parse().map_err(|_| format!("NIMBUS_BENCH_SERIES={v:?}: expected a number of series"))?),
        Err(_) => None,
    };
    let count_for = |default: usize| -> usize {
        let n = fixed.unwrap_or(if quick { default.div_ceil(10) } else { default });
        n.clamp(4, 100_000)
    };
    let count = FORECAST_MODELS.iter().map(|(_, n)| count_for(*n)).max().unwrap_or(4);
    let settings = Settings::default();
    let length = settings.needed();
    let kinds = nimbus_forecast::synthetic::KINDS;
    let generated: Vec<Vec<Vec<f64>>> = kinds
        .iter()
        .enumerate()
        .map(|(k, kind)| {
            let n = count / kinds.len() + usize::from(k < count % kinds.len());
            nimbus_forecast::synthetic::generate(kind, n, length, 42).unwrap_or_default()
        })
        .collect();
    // Kinds interleaved, so that any prefix of the set has every kind.
    let mut inputs = Vec::with_capacity(count);
    for i in 0..count.div_ceil(kinds.len()) {
        for (kind, series) in kinds.iter().zip(&generated) {
            if let Some(values) = series.get(i) {
                inputs.push(Input { name: format!("{kind}-{i}"), values: values.clone(), clock: Default::default() });
            }
        }
    }
    let dir = std::path::Path::new("target/bench-forecast");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut csv = String::from("unique_id,ds,y\n");
    for input in &inputs {
        for (t, v) in input.values.iter().enumerate() {
            csv.push_str(&format!("{},{t},{v}\n", input.name));
        }
    }
    let series_file = dir.join("series.csv");
    std::fs::write(&series_file, csv).map_err(|e| format!("{}: {e}", series_file.display()))?;
    let reference: Option<serde_json::Value> =
        std::fs::read_to_string("crates/nimbus-forecast/tests/reference/statsforecast_bench.json")
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
    outln!(
        "forecast: up to {count} synthetic hourly series ({}), {} origins, {}-step horizon, {}-value window; one thread",
        kinds.join(", "),
        settings.origins,
        settings.horizon,
        settings.window
    );
    outln!("  series written to {} (for the statsforecast reference script)", series_file.display());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().map_err(|e| e.to_string())?;
    for (spec, default) in FORECAST_MODELS {
        let model = nimbus_forecast::models::parse(spec).map_err(|e| e.to_string())?;
        let name = model.name();
        let models = vec![model];
        let count = count_for(default);
        let started = Instant::now();
        let evaluation = pool.install(|| evaluate(&inputs[..count], &models, &settings)).map_err(|e| e.to_string())?;
        let wall = started.elapsed().as_secs_f64();
        let failed = evaluation.cells.iter().filter(|c| c.outcome.is_err()).count();
        let rate = count as f64 / wall;
        let theirs = reference
            .as_ref()
            .and_then(|r| r["models"][spec]["series_per_s"].as_f64())
            .map(|t| format!("  statsforecast {t:>9.2} series/s  ratio {:>7.1}x", rate / t))
            .unwrap_or_default();
        outln!(
            "  {name:<14} {count:>5} series {wall:>7.2} s  {rate:>9.2} series/s  {:>8.3} ms/fit  failed {failed}{theirs}",
            wall / (count * settings.origins) as f64 * 1e3
        );
    }
    if let Some(r) = &reference {
        outln!(
            "  statsforecast {} (numpy {}, python {}) on the first series of the same set, measured {}",
            r["statsforecast"].as_str().unwrap_or("?"),
            r["numpy"].as_str().unwrap_or("?"),
            r["python"].as_str().unwrap_or("?"),
            r["measured"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// The elastic models, 30 days each (7 with `quick`), first seed, each
/// policy: the training engine on `kale-diurnal` (one-second ticks), the
/// burstable model on `autoburst-diurnal` (one-second ticks, per-instance
/// credits and queues) and the leasing model on `meta-leasing` (hourly
/// owners, 6-h leases).
fn elastic(quick: bool) -> Result<(), String> {
    use nimbus_lab::scenario::Overrides;
    let days = if quick { 7 } else { 30 };
    let ticks = f64::from(days) * 86_400.0;
    let per_tick = |label: &str, output: &nimbus_sim::output::RunOutput, wall: f64| {
        outln!(
            "  {label:<22} {wall:>6.2} s wall  {:>7.1} M ticks/s  {:>6} scale actions  (goal for 30 days: <= 1 s)",
            ticks / wall / 1e6,
            output.metric("scale_actions").unwrap_or(f64::NAN)
        );
    };
    let overrides = Overrides { seeds: Some(vec![1]), set: vec![("workload.days".into(), days.to_string())] };
    time_policies("scenarios/elastic/kale-diurnal.toml", &overrides, "elastic (training)", |_| true, per_tick)?;
    time_policies("scenarios/elastic/autoburst-diurnal.toml", &overrides, "elastic (burstable)", |_| true, per_tick)?;
    // 30 days of usage after the 4 weeks that size the reservations.
    let weeks = 4.0 + f64::from(days) / 7.0;
    let overrides = Overrides { seeds: Some(vec![1]), set: vec![("workload.weeks".into(), format!("{weeks}"))] };
    time_policies(
        "scenarios/elastic/meta-leasing.toml",
        &overrides,
        "elastic (leasing)",
        |_| true,
        |label, output, wall| {
            outln!(
                "  {label:<22} {wall:>6.3} s wall  {:>9} leased core-h  {:>5} revocations  (20 owners, {days} days after 4 weeks of history)",
                output.metric("leased_core_h").map_or("-".into(), |v| format!("{v:.0}")),
                output.metric("revocations").unwrap_or(f64::NAN)
            );
        },
    )
}

/// The OpenDC-compatible replay of the SURF week (2.32 M fragments on 277
/// hosts): wall time of one run after loading, events per second and peak
/// memory of the process (loading included); a year of CDN-Shifter's
/// hourly routing LPs on the world's sites; and CloudSim Plus' VM-placement
/// stress case under first-fit, worst-fit and best-fit.
fn carbon() -> Result<(), String> {
    use nimbus_lab::scenario::Overrides;
    let overrides = Overrides { seeds: Some(vec![1]), set: Vec::new() };
    time_policies(
        "scenarios/carbon/cdn-shifter.toml",
        &overrides,
        "carbon (CDN-Shifter, a year of hourly LPs; the latency-optimal baseline is routed in the same run)",
        |label| label == "shift-60ms-world",
        |label, output, wall| {
            outln!(
                "  {label:<18} {wall:>6.2} s wall  {:>5.0} LPs over {:.0} sites  {:>6.2} ms per LP  (goal: a year in <= 60 s)",
                output.metric("lps").unwrap_or(f64::NAN),
                output.metric("sites").unwrap_or(f64::NAN),
                wall * 1e3 / output.metric("lps").unwrap_or(f64::NAN)
            );
        },
    )?;
    // CloudSim Plus' published times for the same case, on a dual-core
    // i7-4558U (docs/performance.md of its repository, 4.3.4 and 4.3.5).
    let published = |label: &str| match label {
        "first-fit" => "1.3-2.4 min",
        "worst-fit" => "14.8-15.7 min",
        _ => "15.2-15.7 min",
    };
    time_policies(
        "scenarios/carbon/cloudsim-stress.toml",
        &overrides,
        "carbon (CloudSim Plus' placement stress case: 20,000 hosts, 40,000 VMs, 50,000 cloudlets)",
        |_| true,
        |label, output, wall| {
            outln!(
                "  {label:<10} {wall:>6.2} s wall  {:>6.0} VMs placed  {:>6.0} hosts used  {:>3.0} failed  (CloudSim Plus: {})",
                output.metric("tasks_completed").unwrap_or(f64::NAN),
                output.metric("hosts_used").unwrap_or(f64::NAN),
                output.metric("tasks_terminated").unwrap_or(f64::NAN),
                published(label)
            );
        },
    )?;
    time_policies(
        "scenarios/carbon/opendc-surf-week.toml",
        &overrides,
        "carbon (SURF-week replay)",
        |label| label == "mem-NL",
        |label, output, wall| {
            let events = output.metric("events").unwrap_or(f64::NAN);
            outln!(
                "  {label:<14} {wall:>6.2} s wall  {:>6.1} M events/s  {:>5.0} MB peak RSS  (goal: <= 5 s)",
                events / wall / 1e6,
                peak_rss_mb()
            );
        },
    )
}

/// A stream of 1,000 TPC-H DAGs (about a million tasks) per dc policy
/// (200 with --quick), tasks/s, FIFO the baseline of the ratios; then a
/// task cluster of 1,000 nodes with about a million tasks (Murmuration's
/// "a million tasks in minutes"; goal: seconds); then the call-graph model
/// (calls/s); then the real loopback call chain beside the twin.
fn dc(quick: bool) -> Result<(), String> {
    use nimbus_lab::scenario::Overrides;
    let jobs = if quick { 200 } else { 1000 };
    let overrides = Overrides { seeds: Some(vec![1]), set: vec![("workload.jobs".into(), jobs.to_string())] };
    let mut fifo_rate = f64::NAN;
    time_policies(
        "scenarios/dc/tpch-stream.toml",
        &overrides,
        &format!("dc (a Poisson stream of {} TPC-H DAGs, 100 executors)", jobs + 10),
        |_| true,
        |label, output, wall| {
            let tasks = output.metric("tasks").unwrap_or(f64::NAN);
            let rate = tasks / wall;
            if label == "fifo" {
                fifo_rate = rate;
            }
            outln!(
                "  {label:<14} {wall:>6.2} s wall  {:>8.0} tasks  {:>6.2} M tasks/s  {:>6.0} plans  x{:.2} FIFO's rate  (goal: 10^6 tasks in seconds)",
                tasks,
                rate / 1e6,
                output.metric("plans").unwrap_or(f64::NAN),
                rate / fifo_rate
            );
        },
    )?;
    let jobs = if quick { 50_000 } else { 250_000 };
    let overrides = Overrides {
        seeds: Some(vec![1]),
        set: vec![("workload.jobs".into(), jobs.to_string()), ("cluster.nodes".into(), "1000".into())],
    };
    time_policies(
        "scenarios/dc/murmuration.toml",
        &overrides,
        &format!("dc (a task cluster of 1,000 nodes x 8 slots, {jobs} jobs at 90% load)"),
        |_| true,
        |label, output, wall| {
            let tasks = output.metric("tasks").unwrap_or(f64::NAN);
            outln!(
                "  {label:<20} {wall:>6.2} s wall  {:>8.0} tasks  {:>6.2} M tasks/s  {:>9.0} events  {:>6.0} MB peak RSS",
                tasks,
                tasks / wall / 1e6,
                output.metric("events").unwrap_or(f64::NAN),
                peak_rss_mb()
            );
        },
    )?;
    let requests = if quick { 20_000 } else { 100_000 };
    let overrides = Overrides { seeds: Some(vec![1]), set: vec![("workload.requests".into(), requests.to_string())] };
    time_policies(
        "scenarios/dc/tailclipper.toml",
        &overrides,
        &format!("dc (a call graph of 62 services, {requests} requests of about 31 calls at 90% load)"),
        |_| true,
        |label, _output, wall| {
            let calls = requests as f64 * 31.0;
            outln!("  {label:<20} {wall:>6.2} s wall  {:>6.2} M calls/s", calls / wall / 1e6);
        },
    )?;
    rpc_chain(quick)
}

/// The real loopback call chain beside the twin (`nimbus chain`'s
/// defaults; fewer requests with --quick).
fn rpc_chain(quick: bool) -> Result<(), String> {
    let args = crate::chain::ChainArgs { requests: if quick { 2_000 } else { 6_000 }, ..Default::default() };
    crate::chain::run(&args)
}

/// Gradients of real training: the CNN for one epoch (a quarter with
/// --quick) on MNIST t10k (synthetic digits without it), four workers;
/// worker 0's gradients of every tenth step.
fn real_gradients(quick: bool) -> Result<(Vec<nimbus_nn::Tensors>, String), String> {
    use nimbus_nn::data::{Origin, mnist_or_synthetic};
    use nimbus_nn::net::{Arch, Network};
    use nimbus_nn::optim::Sgd;
    use nimbus_nn::parallel::{Trainer, mean};
    let mut split =
        mnist_or_synthetic(std::path::Path::new(nimbus_train::scenario::MNIST_DIR), 1).map_err(|e| e.to_string())?;
    if quick {
        split.train = split.train.slice(0..2_000);
    }
    let origin = match &split.origin {
        Origin::Mnist => "MNIST t10k".to_string(),
        Origin::Synthetic(why) => why.clone(),
    };
    let mut net = Network::new(&Arch::Cnn, 28, 1).map_err(|e| e.to_string())?;
    let mut opt = Sgd::new(&net, 0.05, 0.9);
    let mut trainer = Trainer::new(4, 64, 1).map_err(|e| e.to_string())?;
    let mut kept = Vec::new();
    trainer
        .epoch(&mut net, &mut opt, &split.train, &mut |step, workers| {
            if step % 10 == 0 {
                kept.push(workers[0].clone());
            }
            Ok(mean(workers))
        })
        .map_err(|e| e.to_string())?;
    Ok((kept, origin))
}

fn train(quick: bool) -> Result<(), String> {
    use nimbus_train::compress::{Decoder, Encoder};
    use nimbus_train::gcomp::{GcompConfig, GcompDecoder, GcompEncoder};
    let (steps, origin) = real_gradients(quick)?;
    let lens: Vec<usize> = steps[0].iter().map(Vec::len).collect();
    let raw: Vec<Vec<u8>> = steps.iter().map(|t| t.iter().flatten().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let total: usize = raw.iter().map(Vec::len).sum();
    let gb = total as f64 / 1e9;
    outln!(
        "train: codecs on {} real CNN gradients ({} values each, {origin}), {:.1} MB in all; best of 3, one core",
        steps.len(),
        lens.iter().sum::<usize>(),
        total as f64 / 1e6
    );
    outln!("  {:<26} {:>9} {:>12} {:>12}", "codec", "ratio", "encode GB/s", "decode GB/s");
    let report = |name: &str, bytes: usize, enc: f64, dec: f64| {
        outln!("  {name:<26} {:>9.3} {:>12.3} {:>12.3}", total as f64 / bytes as f64, gb / enc, gb / dec);
    };
    for (name, config) in [
        ("gcomp (16,12,8,4,0 / 3)", GcompConfig::default()),
        ("gcomp lossless mantissa", GcompConfig { mantissa_bits: vec![23], band_width: 1, reuse_codebooks: true }),
    ] {
        let encode_all = || {
            let mut enc = GcompEncoder::new(config.clone(), lens.len());
            steps.iter().map(|g| enc.encode(g)).collect::<Vec<_>>()
        };
        let encoded = encode_all();
        let bytes: usize = encoded.iter().map(Vec::len).sum();
        let enc_s = measure(encode_all);
        let dec_s = measure(|| {
            let mut dec = GcompDecoder::new(config.clone(), lens.clone());
            encoded.iter().map(|b| dec.decode(b).map(|t| t.len()).unwrap_or(0)).sum::<usize>()
        });
        report(name, bytes, enc_s, dec_s);
    }
    let zstd_all = || raw.iter().map(|r| zstd::bulk::compress(r, 3).unwrap_or_default()).collect::<Vec<_>>();
    let z = zstd_all();
    let z_dec = measure(|| {
        z.iter().zip(&raw).map(|(c, r)| zstd::bulk::decompress(c, r.len()).map(|d| d.len()).unwrap_or(0)).sum::<usize>()
    });
    report("zstd level 3 (lossless)", z.iter().map(Vec::len).sum(), measure(zstd_all), z_dec);
    let lz4_all = || raw.iter().map(|r| lz4_flex::compress_prepend_size(r)).collect::<Vec<_>>();
    let l = lz4_all();
    let l_dec = measure(|| {
        l.iter().map(|c| lz4_flex::decompress_size_prepended(c).map(|d| d.len()).unwrap_or(0)).sum::<usize>()
    });
    report("lz4 (lossless)", l.iter().map(Vec::len).sum(), measure(lz4_all), l_dec);
    checkpoint_codecs(quick)?;
    encrypted_aggregation()?;
    cost_model_sweep()
}

/// One round of encrypted aggregation: ten clients' updates of the
/// 784-64-10 MLP (50,890 values) under vanilla CKKS and Pack (N = 8,192).
fn encrypted_aggregation() -> Result<(), String> {
    use nimbus_train::ckks::Ckks;
    use nimbus_train::pack::{Aggregation, aggregate};
    let ckks = Ckks::new(8192)?;
    let streams = nimbus_sim::rng::RngStreams::new(1);
    let keys = ckks.keygen(&mut streams.stream("keys"));
    let mut draw = streams.stream("updates");
    let updates: Vec<Vec<f32>> =
        (0..10).map(|_| (0..50_890).map(|_| draw.normal(0.0, 0.01) as f32).collect()).collect();
    outln!("train: one round of encrypted aggregation, 10 clients x 50,890 values, CKKS N = 8,192; best of 3");
    for (name, agg) in [("vanilla CKKS", Aggregation::Ckks), ("Pack, 8 bits", Aggregation::Pack { bits: 8 })] {
        let mut result = None;
        let wall = measure(|| {
            let mut rng = streams.stream("encryption");
            result = Some(aggregate(&updates, agg, &ckks, &keys, &mut rng));
        });
        let r = result.ok_or("no result")?;
        outln!(
            "  {name:<14} {:>8.0} ms per round  {:>3} ciphertexts per client ({:.0} KB)",
            wall * 1e3,
            r.ciphertexts,
            r.upload_bytes as f64 / 1e3
        );
    }
    Ok(())
}

/// Compress and restore time per checkpoint of the MLP after two epochs
/// (one with --quick), for each checkpoint codec: the second checkpoint of
/// a chain, so delta coding applies.
fn checkpoint_codecs(quick: bool) -> Result<(), String> {
    use nimbus_nn::data::mnist_or_synthetic;
    use nimbus_nn::net::{Arch, Network};
    use nimbus_nn::optim::Sgd;
    use nimbus_nn::parallel::{Trainer, mean};
    use nimbus_train::inshrinkerator::{CheckpointCodec, InshrinkSettings, Inshrinkerator, Lossless, Uniform8Delta};
    let split =
        mnist_or_synthetic(std::path::Path::new(nimbus_train::scenario::MNIST_DIR), 1).map_err(|e| e.to_string())?;
    let train = split.train.slice(0..7_000);
    let validation = split.train.slice(7_000..8_000);
    let mut net = Network::new(&Arch::mlp(), 28, 1).map_err(|e| e.to_string())?;
    let mut opt = Sgd::new(&net, 0.05, 0.9);
    let mut trainer = Trainer::new(1, 64, 1).map_err(|e| e.to_string())?;
    let epochs = if quick { 1 } else { 2 };
    let mut states = Vec::new();
    for _ in 0..epochs {
        trainer.epoch(&mut net, &mut opt, &train, &mut |_, g| Ok(mean(g))).map_err(|e| e.to_string())?;
        states.push((net.values().map_err(|e| e.to_string())?, opt.velocity.clone()));
    }
    let raw = 2 * 4 * net.parameter_count();
    outln!(
        "train: checkpoint codecs on the MLP ({} parameters + momentum, {:.2} MB raw) after {epochs} epoch(s); best of 3",
        net.parameter_count(),
        raw as f64 / 1e6
    );
    outln!("  {:<18} {:>9} {:>13} {:>13}", "codec", "ratio", "compress ms", "restore ms");
    type Make = fn() -> Box<dyn CheckpointCodec>;
    let codecs: [(&str, Make); 4] = [
        ("inshrinkerator", || Box::new(Inshrinkerator::new(InshrinkSettings::default()))),
        ("uniform8-delta", || Box::new(Uniform8Delta::default())),
        ("zstd level 3", || Box::new(Lossless { zstd_level: Some(3) })),
        ("uncompressed", || Box::new(Lossless { zstd_level: None })),
    ];
    for (name, make) in codecs {
        // The chain up to the last state, then the last checkpoint timed.
        let chain = |codec: &mut Box<dyn CheckpointCodec>, net: &mut Network| -> Result<Vec<Vec<u8>>, String> {
            let mut out = Vec::new();
            for (values, velocity) in &states {
                net.set_values(values).map_err(|e| e.to_string())?;
                let o = Sgd { lr: 0.05, momentum: 0.9, velocity: velocity.clone() };
                out.push(codec.compress(net, &o, &validation).map_err(|e| e.to_string())?);
            }
            Ok(out)
        };
        let mut encoded = Vec::new();
        let compress_s = measure(|| {
            let mut codec = make();
            encoded = chain(&mut codec, &mut net).unwrap_or_default();
        }) / states.len() as f64;
        let Some(last) = encoded.last() else { return Err(format!("{name}: compression failed")) };
        let ratio = raw as f64 / last.len() as f64;
        let restore_s = measure(|| {
            let mut restorer = make();
            let mut target = Network::new(&Arch::mlp(), 28, 2).expect("the MLP builds");
            let mut topt = Sgd::new(&target, 0.05, 0.9);
            encoded.iter().all(|b| restorer.restore(b, &mut target, &mut topt).is_ok())
        }) / states.len() as f64;
        outln!("  {name:<18} {ratio:>9.2} {:>13.1} {:>13.2}", compress_s * 1e3, restore_s * 1e3);
    }
    Ok(())
}

/// 1,000 step costs over parallelism plans (goal: <= 1 s).
fn cost_model_sweep() -> Result<(), String> {
    use nimbus_train::step::{Cluster, Options, accelerator, plans, step_cost};
    let model = nimbus_train::models::model("gpt3-6.7b").ok_or("no model")?;
    let cluster = Cluster {
        device: accelerator("a100").ok_or("no a100")?,
        per_node: 8,
        nodes: 8,
        intra_gbps: 300.0,
        nic_gbit: 400.0,
        intra_latency_us: 5.0,
        inter_latency_us: 10.0,
        nccl: None,
    };
    let all = plans(&cluster, 512, 1);
    let opts = Options::default();
    let mut evaluated = 0usize;
    let mut best = f64::INFINITY;
    let wall = measure(|| {
        evaluated = 0;
        for p in all.iter().cycle().take(1000) {
            if let Ok(c) = step_cost(&model, &cluster, p, &opts) {
                evaluated += 1;
                if c.fits {
                    best = best.min(c.total_s);
                }
            }
        }
    });
    outln!(
        "train: cost model, GPT-3 6.7B on 8 x 8 A100, {} plans cycled to 1,000 step costs ({evaluated} valid): {:.2} ms (goal: <= 1 s); fastest plan that fits {:.2} s/step",
        all.len(),
        wall * 1e3,
        best
    );
    Ok(())
}

/// The flash device model: a 1-TB QLC drive (16 KiB pages, 4 MiB blocks,
/// 7% spare) filled sequentially, then a day of one drive-write of 4 KiB
/// random writes (uniform, and 90% to a tenth of the pages), under greedy
/// and cost-benefit GC: host page writes per second, write amplification
/// and the lifespan at that daily rate. The fill is the baseline (no GC).
fn storage(quick: bool) -> Result<(), String> {
    use nimbus_storage::flash::{Flash, FlashConfig, Victim};
    let capacity: u64 = if quick { 1 << 36 } else { 1 << 40 };
    let qlc = nimbus_storage::flash::cell_type("qlc").ok_or("no QLC cell type")?;
    outln!(
        "storage: flash FTL, {} GiB QLC ({} P/E cycles), 7% spare, a sequential fill then one drive-write of random pages",
        capacity >> 30,
        qlc.pe_cycles
    );
    for (traffic, hot) in [("uniform", false), ("90/10 hot/cold", true)] {
        for victim in [Victim::Greedy, Victim::CostBenefit] {
            let mut config = FlashConfig::with_capacity(capacity, 0.07, qlc.pe_cycles);
            config.victim = victim;
            let mut flash = Flash::new(config).map_err(|e| e.to_string())?;
            let pages = flash.logical_pages();
            let t = Instant::now();
            for p in 0..pages {
                flash.write(p).map_err(|e| e.to_string())?;
            }
            let fill = t.elapsed().as_secs_f64();
            let before = flash.stats();
            let mut rng = nimbus_sim::RngStreams::new(1).stream("writes");
            let tenth = pages / 10;
            let t = Instant::now();
            for _ in 0..pages {
                let p = if hot && rng.uniform() < 0.9 {
                    rng.below(tenth)
                } else if hot {
                    tenth + rng.below(pages - tenth)
                } else {
                    rng.below(pages)
                };
                flash.write(p).map_err(|e| e.to_string())?;
            }
            let day = t.elapsed().as_secs_f64();
            let after = flash.stats();
            let waf = (after.host_writes - before.host_writes + after.gc_writes - before.gc_writes) as f64
                / (after.host_writes - before.host_writes) as f64;
            // Lifespan at one drive-write per day: the budget over this
            // day's erases.
            let erases = (after.erases - before.erases).max(1) as f64;
            let budget = f64::from(flash.config().blocks) * f64::from(qlc.pe_cycles);
            outln!(
                "  {traffic:<15} {victim:<12} {:>6.1} M host writes/s (fill {:>6.1} M/s)  write amplification {waf:>5.2}  lifespan {:>6.1} years at 1 drive-write/day",
                pages as f64 / day / 1e6,
                pages as f64 / fill / 1e6,
                budget / erases / 365.0,
                victim = format!("{victim:?}")
            );
        }
    }
    Ok(())
}
