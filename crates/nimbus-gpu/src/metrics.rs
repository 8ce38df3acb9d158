//! The GPU domain's metrics, defined once.
//!
//! Over the *measured* jobs (all jobs unless the scenario sets a
//! measurement window) that completed:
//! - JCT = finish − arrival; mean, p50 and p99 (linear interpolation).
//! - Wait = JCT − time holding GPUs (queueing and preemption).
//! - Makespan = last measured finish − first measured arrival.
//! - GPU-hours per job = GPU-seconds allocated (restart dead time included) / 3600.
//! - Latency ratio (Hops) = wait / expected solo runtime, where the solo
//!   runtime is the capacity-weighted mean over GPU types of the job's run
//!   time at its requested GPU count; the maximum over jobs is reported.
//! - Finish-time fairness ρ (Themis) = JCT / T_iso, with T_iso the job's
//!   solo runtime stretched to an equal share of the cluster:
//!   `solo × max(1, n̄ · gpus / N)`, where n̄ is the time-averaged number of
//!   active jobs during the job's life and N the cluster's GPUs; the maximum
//!   (worst) ρ is reported.
//!
//! Over all rounds:
//! - Utilization = time-weighted busy GPUs / total GPUs, from the first
//!   arrival to the end of the run.
//! - Fragmented GPUs per round (Hops' "fragments") = GPUs left idle in a
//!   round while at least one active job holds no GPUs, averaged over rounds
//!   (rounds in which no job waits count as zero).
//! - Decision time = wall-clock time of the policy's `schedule` call; it is a
//!   timing, reported apart from the deterministic results.

use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Series, Table};
use nimbus_sim::stats::{mean, quantile};

use crate::cluster::Cluster;
use crate::engine::{EndReason, EngineResult};
use crate::job::Outcome;

/// Every metric [`output`] reports, for checking scenario metric names
/// when a scenario is loaded.
pub const METRICS: &[&str] = &[
    "jct_h_mean",
    "jct_h_p50",
    "jct_h_p99",
    "makespan_h",
    "wait_h_mean",
    "gpu_hours_per_job",
    "utilization",
    "fragmented_gpus_per_round",
    "latency_ratio_max",
    "ftf_rho_max",
    "restarts_per_job",
    "jobs_measured_completed",
    "jobs_completed",
    "jobs_unfinished",
    "jobs_unschedulable",
    "rounds",
];

/// Builds the run's output from what the engine recorded.
pub fn output(cluster: &Cluster, result: &EngineResult) -> RunOutput {
    let total_gpus = f64::from(cluster.total_gpus());
    let any_window = result.jobs.iter().any(|j| j.measured);
    let measured = |id: usize| !any_window || result.jobs[id].measured;

    let mut jct_s = Vec::new();
    let mut wait_s = Vec::new();
    let mut gpu_h = Vec::new();
    let mut lr = Vec::new();
    let mut rho = Vec::new();
    let mut first_arrival = f64::INFINITY;
    let mut last_finish = 0.0f64;
    let mut restarts = Vec::new();
    let mut rows = Vec::with_capacity(result.jobs.len());
    let (mut completed, mut unfinished, mut unschedulable) = (0u32, 0u32, 0u32);

    for (job, state) in result.jobs.iter().zip(&result.states) {
        let arrival = job.arrival.as_secs_f64();
        let solo = job.solo_runtime_s(cluster);
        let (jct, wait, ratio, fairness) = match state.finish {
            Some(finish) => {
                let jct = finish.as_secs_f64() - arrival;
                let wait = (jct - state.run_seconds).max(0.0);
                let contention = if jct > 0.0 { state.contention_integral / jct } else { 1.0 };
                let share = (contention * f64::from(job.requested_gpus()) / total_gpus).max(1.0);
                (Some(jct), Some(wait), solo_ratio(wait, solo), solo_ratio(jct, solo * share))
            }
            None => (None, None, None, None),
        };
        match state.outcome {
            Outcome::Completed => completed += 1,
            Outcome::Unfinished => unfinished += 1,
            Outcome::Unschedulable => unschedulable += 1,
        }
        if state.outcome == Outcome::Completed && measured(job.id) {
            let jct = jct.expect("completed jobs have a finish");
            jct_s.push(jct);
            wait_s.push(wait.expect("with jct"));
            gpu_h.push(state.gpu_seconds / 3600.0);
            restarts.push(f64::from(state.restarts));
            if let Some(r) = ratio {
                lr.push(r);
            }
            if let Some(r) = fairness {
                rho.push(r);
            }
            first_arrival = first_arrival.min(arrival);
            last_finish = last_finish.max(arrival + jct);
        }
        let opt = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Float);
        rows.push(vec![
            Cell::Int(job.id as i64),
            Cell::Str(job.name.clone()),
            Cell::Str(job.kind_label().to_string()),
            Cell::Int(i64::from(job.requested_gpus())),
            Cell::Float(arrival),
            opt(state.first_start.map(|t| t.as_secs_f64())),
            opt(state.finish.map(|t| t.as_secs_f64())),
            opt(jct),
            opt(wait),
            Cell::Float(state.run_seconds),
            Cell::Float(state.gpu_seconds / 3600.0),
            Cell::Int(i64::from(state.restarts)),
            opt(ratio),
            opt(fairness),
            Cell::Str(state.outcome.as_str().to_string()),
            Cell::Bool(measured(job.id)),
        ]);
    }

    let start = result.jobs.first().map_or(0.0, |j| j.arrival.as_secs_f64());
    let end = result.end.as_secs_f64();
    let busy_gpu_s: f64 =
        result.rounds.iter().map(|r| f64::from(r.busy_gpus) * (r.end.as_secs_f64() - r.start.as_secs_f64())).sum();
    let utilization = if end > start { busy_gpu_s / (total_gpus * (end - start)) } else { f64::NAN };
    let fragments: Vec<f64> = result.rounds.iter().map(|r| f64::from(r.fragmented_gpus)).collect();
    let h = |s: f64| s / 3600.0;
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);

    let metrics = vec![
        Metric::new("jct_h_mean", h(mean(&jct_s)), Better::Lower),
        Metric::new("jct_h_p50", h(quantile(&jct_s, 0.5)), Better::Lower),
        Metric::new("jct_h_p99", h(quantile(&jct_s, 0.99)), Better::Lower),
        Metric::new(
            "makespan_h",
            if jct_s.is_empty() { f64::NAN } else { h(last_finish - first_arrival) },
            Better::Lower,
        ),
        Metric::new("wait_h_mean", h(mean(&wait_s)), Better::Lower),
        Metric::new("gpu_hours_per_job", mean(&gpu_h), Better::Lower),
        Metric::new("utilization", utilization, Better::Higher),
        Metric::new("fragmented_gpus_per_round", mean(&fragments), Better::Lower),
        Metric::new("latency_ratio_max", max(&lr), Better::Lower),
        Metric::new("ftf_rho_max", max(&rho), Better::Lower),
        Metric::new("restarts_per_job", mean(&restarts), Better::Lower),
        Metric::new("jobs_measured_completed", jct_s.len() as f64, Better::Neither),
        Metric::new("jobs_completed", f64::from(completed), Better::Neither),
        Metric::new("jobs_unfinished", f64::from(unfinished), Better::Neither),
        Metric::new("jobs_unschedulable", f64::from(unschedulable), Better::Neither),
        Metric::new("rounds", result.rounds.len() as f64, Better::Neither),
    ];

    let decisions_ms: Vec<f64> = result.rounds.iter().map(|r| r.decision_s * 1e3).collect();
    let timings = vec![
        Metric::new("decision_ms_mean", mean(&decisions_ms), Better::Lower),
        Metric::new("decision_ms_p50", quantile(&decisions_ms, 0.5), Better::Lower),
        Metric::new("decision_ms_p99", quantile(&decisions_ms, 0.99), Better::Lower),
        Metric::new("decision_ms_max", max(&decisions_ms), Better::Lower),
    ];

    let columns = [
        "job_id",
        "name",
        "job_type",
        "gpus_requested",
        "arrival_s",
        "first_start_s",
        "finish_s",
        "jct_s",
        "wait_s",
        "run_s",
        "gpu_hours",
        "restarts",
        "latency_ratio",
        "ftf_rho",
        "outcome",
        "measured",
    ];
    let jobs = Table { name: "jobs".into(), columns: columns.iter().map(|c| c.to_string()).collect(), rows };

    let utilization_series = Series {
        name: "utilization".into(),
        x_label: "time (h)".into(),
        y_label: "busy GPUs / total".into(),
        points: result.utilization.downsampled(2000).iter().map(|(t, v)| (t.as_hours_f64(), *v)).collect(),
    };
    let mut sorted_jct_h: Vec<f64> = jct_s.iter().map(|s| s / 3600.0).collect();
    sorted_jct_h.sort_by(f64::total_cmp);
    let n = sorted_jct_h.len();
    let step = n.div_ceil(400).max(1);
    let mut cdf: Vec<(f64, f64)> = (0..n).step_by(step).map(|i| (sorted_jct_h[i], (i + 1) as f64 / n as f64)).collect();
    if n > 0 && cdf.last().map(|p| p.1) != Some(1.0) {
        cdf.push((sorted_jct_h[n - 1], 1.0));
    }
    let jct_cdf = Series {
        name: "jct_cdf".into(),
        x_label: "job completion time (h)".into(),
        y_label: "fraction of measured jobs".into(),
        points: cdf,
    };
    let mut notes = Vec::new();
    match result.reason {
        EndReason::Done => {}
        EndReason::TimeBound => notes.push("the run hit its simulated-time bound; unfinished jobs remain".to_string()),
        EndReason::RoundBound => notes.push("the run hit its round bound; unfinished jobs remain".to_string()),
        EndReason::Starved => notes
            .push("the run stopped because no job made progress for many rounds and no arrivals remained".to_string()),
    }
    if unschedulable > 0 {
        notes.push(format!("{unschedulable} job(s) can never run on this cluster (recorded as unschedulable)"));
    }
    let unfinished_measured = result
        .jobs
        .iter()
        .zip(&result.states)
        .filter(|(j, s)| measured(j.id) && s.outcome == Outcome::Unfinished)
        .count();
    if unfinished_measured > 0 {
        notes.push(format!("{unfinished_measured} measured job(s) were still waiting or running when the run ended"));
    } else if unfinished > 0 && any_window {
        notes.push(format!(
            "{unfinished} job(s) outside the measurement window were still running when its last job completed (expected in a continuous experiment)"
        ));
    } else if unfinished > 0 {
        notes.push(format!("{unfinished} job(s) were still waiting or running when the run ended"));
    }
    RunOutput { metrics, tables: vec![jobs], series: vec![jct_cdf, utilization_series], timings, notes }
}

fn solo_ratio(numerator: f64, solo: f64) -> Option<f64> {
    (solo.is_finite() && solo > 0.0).then(|| numerator / solo)
}
