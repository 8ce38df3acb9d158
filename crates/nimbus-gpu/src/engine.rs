//! The round-based engine: admits arrivals, asks the policy for a round's
//! assignments, applies them (restart penalties, progress, completions) and
//! advances simulated time.
//!
//! Semantics, per round starting at `now`:
//! 1. Jobs that arrived at or before `now` are admitted; a job that no GPU
//!    type of the cluster can ever run is recorded as `unschedulable` and
//!    never queued.
//! 2. The policy returns assignments; the engine checks them (each job at
//!    most once, each server's capacity never exceeded) and panics on a
//!    violation, which is a policy bug, not an input error.
//! 3. A job whose placement differs from its previous round's pays its
//!    restart penalty (dead time) before progressing again (Sia's
//!    reallocation cost; zero for Gavel-style jobs).
//! 4. Step-based jobs run the whole steps that fit in the round; adaptive
//!    jobs progress continuously. A job finishes at the exact moment its
//!    work is done.
//! 5. The round ends after the round length, or when its last job stops for
//!    policies with [`RoundEnd::LatestFinish`] (Gavel). If no job runs, time
//!    jumps to the next arrival.
//!
//! Every run is bounded: by simulated time, by a round count, and by a
//! starvation guard (rounds in which nothing runs and nothing can arrive);
//! jobs left when a bound is hit are reported `unfinished`.

use nimbus_sim::stats::TimeSeries;
use nimbus_sim::{EventQueue, SimDuration, SimTime};

use crate::cluster::{Cluster, FreeGpus, Placement};
use crate::job::{Job, JobId, JobState, Outcome, Work};
use crate::policy::{Policy, RanJob, RoundContext, RoundEnd};

/// A lazily generated stream of jobs (continuous experiments).
pub trait JobSource {
    /// The next job, given its id; `None` when the stream ends.
    fn next_job(&mut self, id: JobId) -> Result<Option<Job>, String>;
}

/// Where a run's jobs come from.
pub enum Arrivals {
    /// A fixed list, sorted by arrival time.
    Fixed(Vec<Job>),
    /// A generator, asked for the next job when the previous one arrives.
    Generated(Box<dyn JobSource>),
}

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRule {
    /// When every job has completed (or is unschedulable).
    AllJobs,
    /// When every job in the measurement window has completed (continuous
    /// experiments, where arrivals never stop).
    MeasuredJobs,
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// When to stop.
    pub stop: StopRule,
    /// Round length override, seconds (`None`: the policy's).
    pub round_s: Option<f64>,
    /// Simulated-time bound.
    pub max_time: SimDuration,
    /// Round-count bound.
    pub max_rounds: u64,
    /// Consecutive rounds in which no job progresses and no arrival is
    /// pending after which the run stops (the remaining jobs are stuck:
    /// never scheduled, or only on placements where they cannot run).
    pub starvation_rounds: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            stop: StopRule::AllJobs,
            round_s: None,
            max_time: SimDuration::from_secs(10 * 365 * 24 * 3600),
            max_rounds: 5_000_000,
            starvation_rounds: 1000,
        }
    }
}

/// Per-round aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundStat {
    /// Round start.
    pub start: SimTime,
    /// Round end.
    pub end: SimTime,
    /// GPUs allocated.
    pub busy_gpus: u32,
    /// Active jobs.
    pub active_jobs: u32,
    /// Active jobs without GPUs this round.
    pub waiting_jobs: u32,
    /// Idle GPUs while jobs wait (0 when none waits).
    pub fragmented_gpus: u32,
    /// Wall-clock seconds the policy took to decide.
    pub decision_s: f64,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The stop rule was met.
    Done,
    /// The simulated-time bound was hit.
    TimeBound,
    /// The round bound was hit.
    RoundBound,
    /// Jobs remained that made no progress for many rounds and no arrivals remained.
    Starved,
}

/// Everything the engine recorded.
#[derive(Debug)]
pub struct EngineResult {
    /// All jobs that arrived, by id.
    pub jobs: Vec<Job>,
    /// Their final states.
    pub states: Vec<JobState>,
    /// Per-round aggregates.
    pub rounds: Vec<RoundStat>,
    /// Busy-GPU fraction at each round start.
    pub utilization: TimeSeries,
    /// Simulated time at the end.
    pub end: SimTime,
    /// Why it ended.
    pub reason: EndReason,
}

/// Runs `policy` on `cluster` with `arrivals` until the stop rule or a bound.
pub fn run(
    cluster: &Cluster,
    arrivals: Arrivals,
    policy: &mut dyn Policy,
    config: &EngineConfig,
    mut on_progress: impl FnMut(SimTime),
) -> Result<EngineResult, String> {
    let round_s = config.round_s.unwrap_or_else(|| policy.round_s());
    assert!(round_s > 0.0, "round length must be positive");
    let round = SimDuration::from_secs_f64(round_s);
    let round_end_rule = policy.round_end();
    let total_gpus = cluster.total_gpus();

    let mut queue: EventQueue<Job> = EventQueue::new();
    let mut source: Option<Box<dyn JobSource>> = None;
    let mut next_id: JobId = 0;
    match arrivals {
        Arrivals::Fixed(list) => {
            for (i, mut job) in list.into_iter().enumerate() {
                job.id = i;
                queue.schedule(job.arrival, job);
                next_id = i + 1;
            }
        }
        Arrivals::Generated(mut generator) => {
            if let Some(job) = generator.next_job(0)? {
                queue.schedule(job.arrival, job);
                next_id = 1;
            }
            source = Some(generator);
        }
    }

    let mut jobs: Vec<Job> = Vec::new();
    let mut states: Vec<JobState> = Vec::new();
    let mut active: Vec<JobId> = Vec::new();
    let mut rounds: Vec<RoundStat> = Vec::new();
    let mut utilization = TimeSeries::new();
    let mut measured_left: usize = 0;
    // Measurement windows are contiguous in arrival order: once a job after
    // the window has arrived (or nothing more can arrive), the window is
    // complete and the run may stop when its jobs are done.
    let mut seen_measured = false;
    let mut passed_window = false;
    let mut now = SimTime::ZERO;
    let mut idle_rounds = 0u64;
    let reason;

    loop {
        // 1. Admit arrivals.
        while let Some(at) = queue.peek_time() {
            if at > now {
                break;
            }
            let (_, job) = queue.pop().expect("peeked");
            assert_eq!(job.id, jobs.len(), "jobs arrive in id order");
            let id = job.id;
            let mut state = JobState::default();
            if job.measured {
                seen_measured = true;
            } else if seen_measured {
                passed_window = true;
            }
            if job.schedulable_on(cluster) {
                active.push(id);
                policy.on_arrival(&job, now);
                if job.measured {
                    measured_left += 1;
                }
            } else {
                state.outcome = Outcome::Unschedulable;
            }
            jobs.push(job);
            states.push(state);
            if let Some(generator) = source.as_mut()
                && let Some(next) = generator.next_job(next_id)?
            {
                // A job generated while admitting may have arrived during the
                // round that just ended: admit it now, keeping its true
                // arrival time for its metrics.
                let at = next.arrival.max(now);
                queue.schedule(at, next);
                next_id += 1;
            }
        }

        let stop = match config.stop {
            StopRule::AllJobs => active.is_empty() && queue.is_empty(),
            StopRule::MeasuredJobs => measured_left == 0 && seen_measured && (passed_window || queue.is_empty()),
        };
        if stop {
            reason = EndReason::Done;
            break;
        }
        if now.since(SimTime::ZERO) >= config.max_time {
            reason = EndReason::TimeBound;
            break;
        }
        if rounds.len() as u64 >= config.max_rounds {
            reason = EndReason::RoundBound;
            break;
        }
        if active.is_empty() {
            match queue.peek_time() {
                Some(at) => {
                    now = at;
                    continue;
                }
                None => {
                    reason = EndReason::Done;
                    break;
                }
            }
        }

        // 2. Decide.
        let ctx = RoundContext { now, round_s, cluster, jobs: &jobs, states: &states, active: &active };
        #[allow(clippy::disallowed_methods)] // decision time is a reported wall-clock measurement
        let started = std::time::Instant::now();
        let assignments = policy.schedule(&ctx);
        let decision_s = started.elapsed().as_secs_f64();
        if let Some(failure) = policy.failure() {
            return Err(failure);
        }

        let mut free = FreeGpus::all(cluster);
        let mut assigned = vec![false; jobs.len()];
        let mut is_active = vec![false; jobs.len()];
        for &j in &active {
            is_active[j] = true;
        }
        for a in &assignments {
            assert!(is_active.get(a.job) == Some(&true), "policy assigned job {} which is not active", a.job);
            assert!(!assigned[a.job], "policy assigned job {} twice", a.job);
            assert!(!a.placement.is_empty(), "policy assigned job {} no GPUs", a.job);
            let first = a.placement.gpu_type(cluster);
            assert!(
                a.placement.parts().iter().all(|(s, _)| Some(cluster.servers[*s].gpu_type) == first),
                "placement of job {} mixes GPU types",
                a.job
            );
            free.take(&a.placement); // panics if capacity would be exceeded
            assigned[a.job] = true;
        }

        // 3–4. Restart penalties and progress.
        let mut ran: Vec<RanJob> = Vec::with_capacity(assignments.len());
        let mut latest_stop = 0.0f64;
        for a in &assignments {
            let job = &jobs[a.job];
            let state = &mut states[a.job];
            if state.placement.as_ref() != Some(&a.placement) {
                state.pending_restart_s = job.restart_penalty_s;
                if state.first_start.is_some() {
                    state.restarts += 1;
                }
            }
            if state.first_start.is_none() {
                state.first_start = Some(now);
            }
            let dead = state.pending_restart_s.min(round_s);
            let available = round_s - dead;
            let (work, stop_s, completed) = advance(job, cluster, &a.placement, state.work_done, available);
            let stop_s = dead + stop_s;
            latest_stop = latest_stop.max(stop_s);
            ran.push(RanJob {
                job: a.job,
                gpu_type: a.placement.gpu_type(cluster).expect("non-empty"),
                placement: a.placement.clone(),
                seconds: stop_s,
                work,
                completed,
            });
        }

        // 5. When does the round end?
        let pending = queue.peek_time();
        let end = if ran.is_empty() {
            match (round_end_rule, pending) {
                (RoundEnd::LatestFinish, Some(at)) => at,
                (RoundEnd::Fixed, Some(at)) => at.min(now + round),
                (_, None) => now + round,
            }
        } else {
            match round_end_rule {
                RoundEnd::Fixed => now + round,
                RoundEnd::LatestFinish => {
                    let end = now + SimDuration::from_secs_f64(latest_stop);
                    if end > now { end } else { now + round }
                }
            }
        };
        let span_s = end.since(now).as_secs_f64();
        // A round in which no job progresses and nothing can arrive cannot
        // change anything unless the policy's choice changes: count them.
        let progressed = ran.iter().any(|r| r.work > 0.0 || r.completed);
        if !progressed && pending.is_none() {
            idle_rounds += 1;
        } else {
            idle_rounds = 0;
        }

        // Apply.
        let busy: u32 = assignments.iter().map(|a| a.placement.gpus()).sum();
        let waiting = active.len() as u32 - assignments.len() as u32;
        for &j in &active {
            states[j].contention_integral += active.len() as f64 * span_s;
            if !assigned[j] {
                states[j].placement = None;
            }
        }
        let mut completed_now = Vec::new();
        for r in &ran {
            let state = &mut states[r.job];
            let held_s = if r.completed { r.seconds } else { span_s };
            state.work_done += r.work;
            state.gpu_seconds += f64::from(r.placement.gpus()) * held_s;
            state.run_seconds += held_s;
            state.pending_restart_s = (state.pending_restart_s - r.seconds.min(round_s)).max(0.0);
            state.placement = Some(r.placement.clone());
            if r.completed {
                state.work_done = jobs[r.job].work_total;
                state.finish = Some(now + SimDuration::from_secs_f64(r.seconds));
                state.outcome = Outcome::Completed;
                state.placement = None;
                completed_now.push(r.job);
            }
        }
        rounds.push(RoundStat {
            start: now,
            end,
            busy_gpus: busy,
            active_jobs: active.len() as u32,
            waiting_jobs: waiting,
            fragmented_gpus: if waiting > 0 { total_gpus - busy } else { 0 },
            decision_s,
        });
        utilization.push(now, f64::from(busy) / f64::from(total_gpus.max(1)));

        let ctx = RoundContext { now, round_s, cluster, jobs: &jobs, states: &states, active: &active };
        policy.on_round_end(&ctx, &ran, end);
        for &j in &completed_now {
            policy.on_completion(j, end);
            if jobs[j].measured {
                measured_left -= 1;
            }
        }
        active.retain(|j| states[*j].outcome == Outcome::Unfinished);
        now = end;
        on_progress(now);
        if idle_rounds >= config.starvation_rounds {
            reason = EndReason::Starved;
            break;
        }
    }

    Ok(EngineResult { jobs, states, rounds, utilization, end: now, reason })
}

/// Work done on `placement` in `available` seconds starting from `done`,
/// the seconds used, and whether the job finished. Step-based jobs run whole
/// steps only; adaptive jobs progress continuously, with their rate
/// re-evaluated at each change point (epoch boundary).
fn advance(job: &Job, cluster: &Cluster, placement: &Placement, done: f64, available: f64) -> (f64, f64, bool) {
    let remaining = (job.work_total - done).max(0.0);
    if let Work::Steps { .. } = job.work {
        return whole_steps(job.rate(cluster, placement, done), remaining, available);
    }
    let mut progress = done;
    let mut used = 0.0;
    // Bounded: each pass reaches a boundary, the end of the work or of the time.
    for _ in 0..10_000 {
        let left = available - used;
        if left <= 0.0 {
            break;
        }
        let rate = job.rate(cluster, placement, progress);
        if rate <= 0.0 {
            return (progress - done, available, false);
        }
        let boundary = job.next_boundary(progress).min(job.work_total);
        let boundary = if boundary > progress { boundary } else { job.work_total };
        let to_boundary = (boundary - progress) / rate;
        if to_boundary <= left {
            used += to_boundary;
            progress = boundary;
            if progress >= job.work_total {
                return (job.work_total - done, used, true);
            }
        } else {
            progress += rate * left;
            used = available;
        }
    }
    (progress - done, available.max(used), false)
}

/// Whole steps at `rate` in `available` seconds: the work done, the seconds
/// used, and whether the job finished.
fn whole_steps(rate: f64, remaining: f64, available: f64) -> (f64, f64, bool) {
    if rate <= 0.0 || available <= 0.0 {
        return (0.0, available.max(0.0), false);
    }
    let possible = (rate * available).floor();
    if remaining <= possible { (remaining, remaining / rate, true) } else { (possible, possible / rate, false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_steps_per_round() {
        // 1.5 steps/s for 10 s: 15 steps in 10 s.
        assert_eq!(whole_steps(1.5, 100.0, 10.0), (15.0, 10.0, false));
        // 3.7 steps/s for 10 s: 37 whole steps take 10 s exactly.
        let (w, t, done) = whole_steps(3.7, 100.0, 10.0);
        assert_eq!((w, done), (37.0, false));
        assert!((t - 10.0).abs() < 1e-12);
        // 1.3 steps/s for 10 s: 13 steps take 10 s; 12.5 remaining finish at 9.615 s.
        let (w, t, done) = whole_steps(1.3, 12.5, 10.0);
        assert!(done && w == 12.5 && (t - 12.5 / 1.3).abs() < 1e-12);
        assert_eq!(whole_steps(0.0, 5.0, 10.0), (0.0, 10.0, false));
    }

    /// An adaptive job whose rate doubles at progress 10: from 0, at rate 1
    /// it reaches 10 after 10 s, then at rate 2 finishes 20 units at 15 s.
    #[test]
    fn adaptive_progress_integrates_across_boundaries() {
        #[derive(Debug)]
        struct TwoPhase;
        impl crate::job::GoodputModel for TwoPhase {
            fn rate(&self, _t: usize, _shape: &[u32], progress: f64) -> f64 {
                if progress < 10.0 { 1.0 } else { 2.0 }
            }
            fn gpu_range(&self) -> (u32, u32) {
                (1, 1)
            }
            fn next_boundary(&self, progress: f64) -> f64 {
                if progress < 10.0 { 10.0 } else { f64::INFINITY }
            }
        }
        let cluster = Cluster {
            gpu_types: vec![crate::cluster::GpuType {
                name: "x".into(),
                fp32_tflops: None,
                intra_node_gbps: 1.0,
                inter_node_gbit: 1.0,
                profile: None,
            }],
            servers: vec![crate::cluster::Server { id: 0, gpu_type: 0, gpus: 1, speed: 1.0 }],
        };
        let job = Job {
            id: 0,
            name: "j".into(),
            arrival: SimTime::ZERO,
            work_total: 20.0,
            priority_weight: 1.0,
            restart_penalty_s: 0.0,
            measured: true,
            work: Work::Adaptive { application: "toy".into(), requested_gpus: 1, model: std::sync::Arc::new(TwoPhase) },
        };
        let p = Placement::new(vec![(0, 1)]);
        assert_eq!(advance(&job, &cluster, &p, 0.0, 12.0), (14.0, 12.0, false));
        assert_eq!(advance(&job, &cluster, &p, 0.0, 100.0), (20.0, 15.0, true));
        assert_eq!(advance(&job, &cluster, &p, 14.0, 100.0), (6.0, 3.0, true));
    }
}
