//! Per-invocation, per-app and per-run results.

use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Series, Table};
use nimbus_sim::stats::quantile;

use crate::engine::RunResult;
use crate::workload::{App, Function};

/// Every metric [`output`] reports.
pub const METRICS: &[&str] = &[
    "app_cold_start_pct_p75",
    "cold_start_pct",
    "wasted_memory_gb_s",
    "loaded_memory_gb_s",
    "memory_gb_mean",
    "memory_gb_peak",
    "latency_ms_p50",
    "latency_ms_p99",
    "cold_start_ms_mean",
    "instance_start_ms_mean",
    "exec_ms_mean",
    "scale_ups",
    "invocations",
    "cold_starts",
    "dropped",
    "evictions",
    "prewarms",
    "deferred",
    "tolerance_misses",
    "start_delay_ms_p99",
];

/// Reported when some app loads an ML model (InstaInfer).
pub const MODEL_METRICS: &[&str] = &["model_load_ms_mean", "model_load_ms_p99", "preloads", "offloads"];

/// Reported when the scenario has an `[energy]` table.
pub const ENERGY_METRICS: &[&str] = &[
    "energy_kwh",
    "carbon_kg",
    "embodied_carbon_kg",
    "energy_unattributed_pct_shapley",
    "energy_unattributed_pct_cpu",
];

/// An app-level run's metrics (the per-app ones) and its `apps` table.
pub fn app_level_output(specs: &[crate::applevel::AppSpec], totals: &[crate::applevel::AppTotals]) -> RunOutput {
    let invocations: u64 = totals.iter().map(|a| a.invocations).sum();
    let cold: u64 = totals.iter().map(|a| a.cold).sum();
    let wasted: f64 = totals.iter().map(|a| a.wasted_mb_s).sum();
    let per_app_cold: Vec<f64> =
        totals.iter().filter(|a| a.invocations > 0).map(|a| 100.0 * a.cold as f64 / a.invocations as f64).collect();
    let pct = if invocations == 0 { f64::NAN } else { 100.0 * cold as f64 / invocations as f64 };
    let metrics = vec![
        Metric::new("app_cold_start_pct_p75", quantile(&per_app_cold, 0.75), Better::Lower),
        Metric::new("cold_start_pct", pct, Better::Lower),
        Metric::new("wasted_memory_gb_s", wasted / 1024.0, Better::Lower),
        Metric::new("invocations", invocations as f64, Better::Neither),
        Metric::new("cold_starts", cold as f64, Better::Lower),
    ];
    let rows = specs
        .iter()
        .zip(totals)
        .enumerate()
        .map(|(i, (spec, t))| {
            vec![
                Cell::Int(i as i64),
                Cell::Int(i64::from(spec.mem_mb)),
                Cell::Int(t.invocations as i64),
                Cell::Int(t.cold as i64),
                Cell::Float(t.wasted_mb_s / 1024.0),
                Cell::Int(t.exact as i64),
            ]
        })
        .collect();
    let table = Table {
        name: "apps".into(),
        columns: ["app", "mem_mb", "invocations", "cold_starts", "wasted_memory_gb_s", "processed_individually"]
            .map(String::from)
            .to_vec(),
        rows,
    };
    RunOutput { metrics, tables: vec![table], ..RunOutput::default() }
}

/// The run's metrics, tables and series.
pub fn output(apps: &[App], functions: &[Function], result: &RunResult) -> RunOutput {
    let invocations: u64 = result.apps.iter().map(|a| a.invocations).sum();
    let cold: u64 = result.apps.iter().map(|a| a.cold).sum();
    let dropped: u64 = result.apps.iter().map(|a| a.dropped).sum();
    let wasted: f64 = result.apps.iter().map(|a| a.wasted_mb_s).sum();
    let loaded: f64 = result.apps.iter().map(|a| a.loaded_mb_s).sum();
    let per_app_cold: Vec<f64> = result
        .apps
        .iter()
        .filter(|a| a.invocations > 0)
        .map(|a| 100.0 * a.cold as f64 / a.invocations as f64)
        .collect();
    let span = result.end.as_secs_f64().max(1e-9);
    let ms = |us: u64| us as f64 / 1e3;
    let pct = |n: u64, d: u64| if d == 0 { f64::NAN } else { 100.0 * n as f64 / d as f64 };
    let mut metrics = vec![
        Metric::new("app_cold_start_pct_p75", quantile(&per_app_cold, 0.75), Better::Lower),
        Metric::new("cold_start_pct", pct(cold, invocations), Better::Lower),
        Metric::new("wasted_memory_gb_s", wasted / 1024.0, Better::Lower),
        Metric::new("loaded_memory_gb_s", loaded / 1024.0, Better::Lower),
        Metric::new("memory_gb_mean", loaded / 1024.0 / span, Better::Lower),
        Metric::new("memory_gb_peak", result.peak_mb as f64 / 1024.0, Better::Lower),
        Metric::new("latency_ms_p50", ms(result.latency_us.quantile(0.5)), Better::Lower),
        Metric::new("latency_ms_p99", ms(result.latency_us.quantile(0.99)), Better::Lower),
        Metric::new(
            "cold_start_ms_mean",
            if result.cold_us.count() == 0 { 0.0 } else { result.cold_us.mean() / 1e3 },
            Better::Lower,
        ),
        Metric::new(
            "instance_start_ms_mean",
            if result.instance_start_us.count() == 0 { 0.0 } else { result.instance_start_us.mean() / 1e3 },
            Better::Lower,
        ),
        Metric::new(
            "exec_ms_mean",
            if result.exec_us.count() == 0 { 0.0 } else { result.exec_us.mean() / 1e3 },
            Better::Lower,
        ),
        Metric::new("scale_ups", result.scale_ups as f64, Better::Neither),
        Metric::new("invocations", invocations as f64, Better::Neither),
        Metric::new("cold_starts", cold as f64, Better::Lower),
        Metric::new("dropped", dropped as f64, Better::Lower),
        Metric::new("evictions", result.evictions as f64, Better::Neither),
        Metric::new("prewarms", result.prewarms as f64, Better::Neither),
        Metric::new("deferred", result.deferred as f64, Better::Neither),
        Metric::new("tolerance_misses", result.tolerance_misses as f64, Better::Lower),
        Metric::new("start_delay_ms_p99", ms(result.start_delay_us.quantile(0.99)), Better::Lower),
    ];
    if apps.iter().any(|a| a.model.is_some()) {
        let h = &result.model_load_us;
        let mean = if h.count() == 0 { 0.0 } else { h.mean() / 1e3 };
        metrics.extend([
            Metric::new("model_load_ms_mean", mean, Better::Lower),
            Metric::new("model_load_ms_p99", ms(h.quantile(0.99)), Better::Lower),
            Metric::new("preloads", result.preloads as f64, Better::Neither),
            Metric::new("offloads", result.offloads as f64, Better::Neither),
        ]);
    }
    if let Some(e) = &result.energy {
        let joules: f64 = e.host_joules.iter().sum();
        metrics.extend([
            Metric::new("energy_kwh", joules / 3.6e6, Better::Lower),
            Metric::new("carbon_kg", (e.operational_g + e.embodied_g) / 1e3, Better::Lower),
            Metric::new("embodied_carbon_kg", e.embodied_g / 1e3, Better::Lower),
            Metric::new("energy_unattributed_pct_shapley", 100.0 * e.unattributed_joules[0] / joules, Better::Neither),
            Metric::new("energy_unattributed_pct_cpu", 100.0 * e.unattributed_joules[1] / joules, Better::Neither),
        ]);
    }
    let app_rows = apps
        .iter()
        .zip(&result.apps)
        .enumerate()
        .map(|(i, (app, s))| {
            let mut row = vec![
                Cell::Str(app.name.clone()),
                Cell::Int(i64::from(app.mem_mb)),
                Cell::Int(s.invocations as i64),
                Cell::Int(s.cold as i64),
                if s.invocations > 0 { Cell::Float(pct(s.cold, s.invocations)) } else { Cell::Empty },
                Cell::Float(s.wasted_mb_s),
                Cell::Float(s.loaded_mb_s),
                Cell::Int(s.dropped as i64),
            ];
            if let Some(e) = &result.energy {
                let a = e.apps[i];
                row.extend(a.joules.iter().map(|j| Cell::Float(*j)));
                row.extend(a.carbon_g.iter().map(|g| Cell::Float(*g)));
            }
            row
        })
        .collect();
    let mut app_columns: Vec<String> =
        ["app", "mem_mb", "invocations", "cold_starts", "cold_start_pct", "wasted_mb_s", "loaded_mb_s", "dropped"]
            .iter()
            .map(|c| c.to_string())
            .collect();
    if result.energy.is_some() {
        app_columns.extend(crate::energy::METHODS.iter().map(|m| format!("energy_j_{m}")));
        app_columns.extend(crate::energy::METHODS.iter().map(|m| format!("carbon_g_{m}")));
    }
    let mut tables = vec![Table { name: "apps".into(), columns: app_columns, rows: app_rows }];
    if !result.records.is_empty() {
        let rows = result
            .records
            .iter()
            .map(|r| {
                let f = &functions[r.function as usize];
                vec![
                    Cell::Str(f.name.clone()),
                    Cell::Str(apps[f.app as usize].name.clone()),
                    Cell::Float(r.arrival.as_secs_f64()),
                    Cell::Float(r.start.as_secs_f64()),
                    Cell::Float(r.end.as_secs_f64()),
                    Cell::Bool(r.cold),
                    Cell::Bool(r.scale_up),
                    Cell::Float(r.cold_ms),
                    Cell::Float(r.model_ms),
                    Cell::Float(r.end.since(r.arrival).as_secs_f64() * 1e3),
                ]
            })
            .collect();
        tables.push(Table {
            name: "invocations".into(),
            columns: [
                "function",
                "app",
                "arrival_s",
                "start_s",
                "end_s",
                "cold",
                "scale_up",
                "cold_start_ms",
                "model_load_ms",
                "latency_ms",
            ]
            .iter()
            .map(|c| c.to_string())
            .collect(),
            rows,
        });
    }
    let mut notes = Vec::new();
    if result.records_truncated && !result.records.is_empty() {
        notes.push(format!(
            "the invocations table holds the first {} completions; metrics cover all {invocations}",
            result.records.len()
        ));
    }
    for (why, n) in &result.dropped {
        notes.push(format!("{n} invocations dropped: {why}"));
    }
    RunOutput {
        metrics,
        tables,
        series: vec![Series {
            name: "memory".into(),
            x_label: "time (s)".into(),
            y_label: "loaded sandbox memory (MB)".into(),
            points: result.memory_series.clone(),
        }],
        timings: Vec::new(),
        notes,
    }
}
