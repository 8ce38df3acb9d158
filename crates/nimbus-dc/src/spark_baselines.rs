//! The schedulers MC-WSCPT is compared with in a Spark-imitating simulator
//! (carbon-autoscaling-tail.md §6.4; Decima's heuristic baselines).
//!
//! - `fifo`: Spark's default FIFO: the earliest job's runnable stages
//!   first, no executor caps.
//! - `fair`: Decima's dynamic partition: every unfinished job may hold
//!   ⌈executors ÷ jobs⌉ executors, jobs served in arrival order; executors
//!   beyond the caps stay idle, as in Decima's agent.
//! - `weighted-fair`: the same with caps in proportion to the jobs' weights.
//! - `size-fair`: Decima's weighted fair heuristics: caps in proportion to
//!   each job's remaining work raised to `alpha` (1: Decima's "naive
//!   weighted fair"; its "opt. weighted fair" tunes alpha on the workload:
//!   the default −1 favours small jobs; `tpch-stream` also runs the best
//!   alpha of a sweep on its own stream).
//! - `sjf-cp`: Decima's SJF-CP: the job with the least remaining work
//!   first, and within a job the stage with the longest remaining critical
//!   path.

use crate::spark::{Grant, JobView, Plan, Scheduler, View};

/// Grants for the runnable stages of `jobs` (positions in `view.jobs`), in
/// that job order; within a job, stages by `stage_order`. Without executor
/// caps the list stops once its stages could absorb every idle executor
/// (the rest could not receive one).
pub(crate) fn grants_in_job_order(
    view: &View<'_>,
    jobs: &[usize],
    stage_order: impl Fn(&JobView<'_>) -> Vec<usize>,
    limit: impl Fn(&JobView<'_>, usize) -> u32,
    capped: bool,
) -> Vec<Grant> {
    let mut grants = Vec::new();
    let mut absorbed = 0u64;
    for &j in jobs {
        if !capped && absorbed >= u64::from(view.idle) {
            break;
        }
        let job = &view.jobs[j];
        for s in stage_order(job) {
            let limit = limit(job, s);
            let st = job.stages[s];
            absorbed += u64::from(st.unlaunched.min(limit.saturating_sub(st.running)));
            grants.push(Grant { job: j, stage: s, limit });
        }
    }
    grants
}

/// Runnable stages of a job, longest remaining critical path first (ties:
/// lower index).
pub(crate) fn by_rank(job: &JobView<'_>) -> Vec<usize> {
    let rank = job.remaining_ranks();
    let mut stages: Vec<usize> = job.runnable().collect();
    stages.sort_by(|&a, &b| rank[b].total_cmp(&rank[a]).then(a.cmp(&b)));
    stages
}

fn ascending(job: &JobView<'_>) -> Vec<usize> {
    job.runnable().collect()
}

/// Spark's FIFO.
#[derive(Debug, Default)]
pub struct Fifo;

impl Scheduler for Fifo {
    fn plan(&mut self, view: &View<'_>) -> Plan {
        let order: Vec<usize> = (0..view.jobs.len()).collect();
        Plan {
            grants: grants_in_job_order(view, &order, ascending, |_, _| u32::MAX, false),
            job_caps: None,
            work_conserving: false,
        }
    }
}

/// Executor caps in proportion to `shares`, each at least 1, rounded up
/// (Decima's ⌈executors ÷ jobs⌉ when the shares are equal).
pub(crate) fn proportional_caps(executors: u32, shares: &[f64]) -> Vec<u32> {
    let total: f64 = shares.iter().filter(|s| s.is_finite() && **s > 0.0).sum();
    shares
        .iter()
        .map(|&s| {
            if total <= 0.0 || !s.is_finite() || s <= 0.0 {
                return 1;
            }
            let cap = (f64::from(executors) * s / total).ceil();
            if cap >= f64::from(u32::MAX) { u32::MAX } else { (cap as u32).max(1) }
        })
        .collect()
}

/// Decima's dynamic partition, optionally weighted.
#[derive(Debug, Default)]
pub struct Fair {
    /// Caps in proportion to job weights.
    pub weighted: bool,
}

impl Scheduler for Fair {
    fn plan(&mut self, view: &View<'_>) -> Plan {
        let shares: Vec<f64> = view.jobs.iter().map(|j| if self.weighted { j.weight } else { 1.0 }).collect();
        let order: Vec<usize> = (0..view.jobs.len()).collect();
        Plan {
            grants: grants_in_job_order(view, &order, ascending, |_, _| u32::MAX, true),
            job_caps: Some(proportional_caps(view.executors, &shares)),
            work_conserving: false,
        }
    }
}

/// Decima's weighted fair: caps ∝ remaining work^`alpha`, arrival order.
#[derive(Debug)]
pub struct SizeFair {
    /// Exponent of the remaining work.
    pub alpha: f64,
}

impl Scheduler for SizeFair {
    fn plan(&mut self, view: &View<'_>) -> Plan {
        let shares: Vec<f64> = view.jobs.iter().map(|j| j.remaining_work_ms().max(1.0).powf(self.alpha)).collect();
        let order: Vec<usize> = (0..view.jobs.len()).collect();
        Plan {
            grants: grants_in_job_order(view, &order, ascending, |_, _| u32::MAX, true),
            job_caps: Some(proportional_caps(view.executors, &shares)),
            work_conserving: false,
        }
    }
}

/// Shortest remaining work first, critical path within a job.
#[derive(Debug, Default)]
pub struct SjfCp;

impl Scheduler for SjfCp {
    fn plan(&mut self, view: &View<'_>) -> Plan {
        let work: Vec<f64> = view.jobs.iter().map(JobView::remaining_work_ms).collect();
        let mut order: Vec<usize> = (0..view.jobs.len()).collect();
        order.sort_by(|&a, &b| work[a].total_cmp(&work[b]).then(a.cmp(&b)));
        Plan {
            grants: grants_in_job_order(view, &order, by_rank, |_, _| u32::MAX, false),
            job_caps: None,
            work_conserving: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_round_up_and_never_vanish() {
        assert_eq!(proportional_caps(100, &[1.0, 1.0, 1.0]), vec![34, 34, 34]);
        assert_eq!(proportional_caps(10, &[3.0, 1.0]), vec![8, 3]);
        assert_eq!(proportional_caps(10, &[0.0, 1.0]), vec![1, 10]);
        assert_eq!(proportional_caps(10, &[f64::NAN]), vec![1]);
    }
}
