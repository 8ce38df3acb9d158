//! Per-request and per-run results of a serving run.

use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Series, Table};
use nimbus_sim::stats::quantile_sorted;

use crate::engine::{Fleet, RunResult};
use crate::request::RequestState;

/// Whether a request met every objective of its class.
pub fn slo_met(r: &RequestState, fleet: &Fleet) -> bool {
    let class = &fleet.classes[r.spec.class as usize];
    let (Some(done), Some(first)) = (r.completion, r.first_token) else { return false };
    let ttft = first.since(r.spec.arrival).as_secs_f64();
    let e2e = done.since(r.spec.arrival).as_secs_f64();
    class.ttft_s.is_none_or(|t| ttft <= t)
        && class.tbt_ms.is_none_or(|t| r.tbt_mean_s() * 1e3 <= t)
        && class.deadline_s.is_none_or(|t| e2e <= t)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn q(v: &[f64], p: f64) -> f64 {
    if v.is_empty() { f64::NAN } else { quantile_sorted(v, p) }
}

/// A CDF series of sorted values, thinned to at most ~200 points.
fn cdf(name: &str, x_label: &str, values: &[f64]) -> Series {
    let n = values.len();
    let step = (n / 200).max(1);
    let mut points: Vec<(f64, f64)> =
        values.iter().enumerate().step_by(step).map(|(i, &v)| (v, (i + 1) as f64 / n as f64)).collect();
    if let Some(&last) = values.last()
        && points.last().is_some_and(|p| p.1 < 1.0)
    {
        points.push((last, 1.0));
    }
    Series { name: name.into(), x_label: x_label.into(), y_label: "fraction of requests".into(), points }
}

/// The metrics [`output`] reports before the per-class SLO attainments
/// (`slo_attainment_<class>`, present when a scenario defines more than one
/// class).
pub const METRICS_FIRST: &[&str] = &[
    "ttft_s_p50",
    "ttft_s_p90",
    "ttft_s_p99",
    "tbt_ms_p50",
    "tbt_ms_p90",
    "tbt_ms_p99",
    "tbt_mean_ms_p50",
    "e2e_s_p50",
    "e2e_s_p90",
    "e2e_s_p99",
    "slo_attainment",
];

/// The metrics [`output`] reports after the per-class SLO attainments.
pub const METRICS_LAST: &[&str] = &[
    "throughput_rps",
    "tokens_per_s",
    "gpu_busy",
    "kv_used_mean",
    "cost_usd_per_1k_tokens",
    "preemptions",
    "swaps",
    "model_loads",
    "gpus",
    "instances_per_gpu",
    "requests_completed",
    "requests_unfinished",
    "requests_rejected",
    "iterations",
    "request_iterations",
];

/// The run's metrics, per-request table and series.
pub fn output(fleet: &Fleet, result: &RunResult) -> RunOutput {
    let reqs = &result.requests;
    let first_arrival = reqs.first().map_or(0.0, |r| r.spec.arrival.as_secs_f64());
    let end = result.end.as_secs_f64();
    let span = (end - first_arrival).max(1e-9);
    let completed: Vec<&RequestState> = reqs.iter().filter(|r| r.completion.is_some()).collect();
    let rejected = reqs.iter().filter(|r| r.rejected.is_some()).count();
    let unfinished = reqs.len() - completed.len() - rejected;
    let ttft =
        sorted(reqs.iter().filter_map(|r| r.first_token.map(|t| t.since(r.spec.arrival).as_secs_f64())).collect());
    let e2e =
        sorted(completed.iter().filter_map(|r| r.completion.map(|t| t.since(r.spec.arrival).as_secs_f64())).collect());
    let tbt_mean = sorted(completed.iter().filter(|r| r.spec.output > 1).map(|r| r.tbt_mean_s() * 1e3).collect());
    // Every gap between tokens, weighted by its count.
    let mut gaps: Vec<(u64, u32)> = reqs.iter().flat_map(|r| r.gaps.iter().copied()).collect();
    gaps.sort_unstable();
    let total_gaps: u64 = gaps.iter().map(|g| g.1 as u64).sum();
    let gap_q = |p: f64| -> f64 {
        if total_gaps == 0 {
            return f64::NAN;
        }
        let rank = ((p * total_gaps as f64).ceil() as u64).clamp(1, total_gaps);
        let mut seen = 0u64;
        for &(g, n) in &gaps {
            seen += n as u64;
            if seen >= rank {
                return g as f64 / 1e6;
            }
        }
        f64::NAN
    };
    let tokens: f64 = reqs.iter().map(|r| r.generated as f64).sum();
    let gpus: f64 = fleet.groups.iter().map(|g| (g.count * g.tp) as f64).sum();
    let busy_gpu_s: f64 = result.busy_s.iter().map(|&(g, s)| s * fleet.groups[g].tp as f64).sum();
    let usd_per_h: f64 = fleet.groups.iter().map(|g| g.gpu_hour_usd * (g.count * g.tp) as f64).sum();
    let attainment = |class: Option<usize>| -> f64 {
        let pool: Vec<&RequestState> =
            reqs.iter().filter(|r| class.is_none_or(|c| r.spec.class as usize == c)).collect();
        if pool.is_empty() {
            return f64::NAN;
        }
        pool.iter().filter(|r| slo_met(r, fleet)).count() as f64 / pool.len() as f64
    };

    let mut metrics = vec![
        Metric::new("ttft_s_p50", q(&ttft, 0.5), Better::Lower),
        Metric::new("ttft_s_p90", q(&ttft, 0.9), Better::Lower),
        Metric::new("ttft_s_p99", q(&ttft, 0.99), Better::Lower),
        Metric::new("tbt_ms_p50", gap_q(0.5), Better::Lower),
        Metric::new("tbt_ms_p90", gap_q(0.9), Better::Lower),
        Metric::new("tbt_ms_p99", gap_q(0.99), Better::Lower),
        Metric::new("tbt_mean_ms_p50", q(&tbt_mean, 0.5), Better::Lower),
        Metric::new("e2e_s_p50", q(&e2e, 0.5), Better::Lower),
        Metric::new("e2e_s_p90", q(&e2e, 0.9), Better::Lower),
        Metric::new("e2e_s_p99", q(&e2e, 0.99), Better::Lower),
        Metric::new("slo_attainment", attainment(None), Better::Higher),
    ];
    if fleet.classes.len() > 1 {
        for (c, class) in fleet.classes.iter().enumerate() {
            metrics.push(Metric::new(format!("slo_attainment_{}", class.name), attainment(Some(c)), Better::Higher));
        }
    }
    metrics.extend([
        Metric::new("throughput_rps", completed.len() as f64 / span, Better::Higher),
        Metric::new("tokens_per_s", tokens / span, Better::Higher),
        Metric::new("gpu_busy", busy_gpu_s / (gpus * span), Better::Neither),
        Metric::new("kv_used_mean", result.kv_used.mean(result.end), Better::Neither),
        Metric::new("cost_usd_per_1k_tokens", usd_per_h * span / 3600.0 / (tokens / 1000.0), Better::Lower),
        Metric::new("preemptions", reqs.iter().map(|r| r.preemptions as f64).sum(), Better::Lower),
        Metric::new("swaps", reqs.iter().map(|r| r.swaps as f64).sum(), Better::Lower),
        Metric::new("model_loads", result.model_loads as f64, Better::Neither),
        Metric::new("gpus", gpus, Better::Neither),
        Metric::new(
            "instances_per_gpu",
            fleet.groups.iter().map(|g| (g.count * g.instances_per_replica) as f64).sum::<f64>() / gpus,
            Better::Higher,
        ),
        Metric::new("requests_completed", completed.len() as f64, Better::Neither),
        Metric::new("requests_unfinished", unfinished as f64, Better::Neither),
        Metric::new("requests_rejected", rejected as f64, Better::Neither),
        Metric::new("iterations", result.iterations as f64, Better::Neither),
        Metric::new("request_iterations", result.request_iterations as f64, Better::Neither),
    ]);

    let columns = [
        "request",
        "class",
        "model",
        "replica",
        "arrival_s",
        "prompt_tokens",
        "output_tokens",
        "generated_tokens",
        "scheduled_s",
        "first_token_s",
        "completion_s",
        "ttft_s",
        "tbt_mean_ms",
        "tbt_p99_ms",
        "e2e_s",
        "preemptions",
        "swaps",
        "slo_met",
        "outcome",
    ];
    let opt = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Float);
    let rows = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let arrival = r.spec.arrival.as_secs_f64();
            let first = r.first_token.map(|t| t.as_secs_f64());
            let done = r.completion.map(|t| t.as_secs_f64());
            let outcome = match (r.rejected, r.completion) {
                (Some(why), _) => format!("rejected: {why}"),
                (None, Some(_)) => "completed".to_string(),
                (None, None) => "unfinished".to_string(),
            };
            vec![
                Cell::Int(i as i64),
                Cell::Str(fleet.classes[r.spec.class as usize].name.clone()),
                Cell::Str(fleet.models[r.spec.model as usize].clone()),
                r.replica.map_or(Cell::Empty, |x| Cell::Int(x as i64)),
                Cell::Float(arrival),
                Cell::Int(r.spec.prompt as i64),
                Cell::Int(r.spec.output as i64),
                Cell::Int(r.generated as i64),
                opt(r.scheduled.map(|t| t.as_secs_f64())),
                opt(first),
                opt(done),
                opt(first.map(|f| f - arrival)),
                opt((!r.gaps.is_empty()).then(|| r.tbt_mean_s() * 1e3)),
                opt((!r.gaps.is_empty()).then(|| r.tbt_quantile_s(0.99) * 1e3)),
                opt(done.map(|d| d - arrival)),
                Cell::Int(r.preemptions as i64),
                Cell::Int(r.swaps as i64),
                Cell::Bool(slo_met(r, fleet)),
                Cell::Str(outcome),
            ]
        })
        .collect();
    let mut notes = Vec::new();
    if rejected > 0 {
        let mut reasons: Vec<&str> = reqs.iter().filter_map(|r| r.rejected).collect();
        reasons.sort_unstable();
        reasons.dedup();
        notes.push(format!(
            "{rejected} of {} requests rejected ({}); counted as SLO misses",
            reqs.len(),
            reasons.join("; ")
        ));
    }
    if unfinished > 0 {
        notes.push(format!("{unfinished} requests unfinished at the horizon; counted as SLO misses"));
    }
    RunOutput {
        metrics,
        tables: vec![Table { name: "requests".into(), columns: columns.iter().map(|c| c.to_string()).collect(), rows }],
        series: vec![
            cdf("ttft_cdf", "TTFT (s)", &ttft),
            cdf("tbt_mean_cdf", "mean TBT per request (ms)", &tbt_mean),
            Series {
                name: "kv_used".into(),
                x_label: "time (s)".into(),
                y_label: "KV blocks in use (fraction)".into(),
                points: result.kv_series.clone(),
            },
        ],
        timings: Vec::new(),
        notes,
    }
}
