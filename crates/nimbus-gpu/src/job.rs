//! Training jobs: what they need, how fast they progress, and their state.
//!
//! A job is a fixed amount of work and a throughput model that says how fast
//! a placement makes progress on it:
//!
//! - [`Work::Steps`] is Gavel's style: a job type trained at a fixed scale
//!   factor (GPU count) for a number of steps, with measured isolated
//!   throughput (steps/s) per GPU type.
//! - [`Work::Adaptive`] is Sia's and Pollux's style: an application whose
//!   GPU count and batch size the scheduler may change; progress is measured
//!   in statistical-efficiency-weighted examples and its rate comes from a
//!   [`GoodputModel`].

use std::fmt;
use std::sync::Arc;

use nimbus_sim::{SimDuration, SimTime};

use crate::cluster::{Cluster, GpuTypeId, Placement};

/// Index of a job in the run's job list (arrival order).
pub type JobId = usize;

/// How a job's progress rate depends on its placement, for adaptive jobs.
pub trait GoodputModel: fmt::Debug + Send + Sync {
    /// Work units per second on GPU type `gpu_type` with `shape[i]` GPUs on
    /// the i-th server of the placement, when `progress` work units are done
    /// (statistical efficiency changes as training advances). Zero when the
    /// placement is not usable (e.g. more GPUs than the batch size allows).
    fn rate(&self, gpu_type: GpuTypeId, shape: &[u32], progress: f64) -> f64;

    /// Examples per second (raw throughput, without statistical
    /// efficiency) in the same situation; defaults to [`rate`](Self::rate).
    fn throughput(&self, gpu_type: GpuTypeId, shape: &[u32], progress: f64) -> f64 {
        self.rate(gpu_type, shape, progress)
    }

    /// The smallest and largest GPU counts the job can use.
    fn gpu_range(&self) -> (u32, u32);

    /// The next progress value at which the rate may change (an epoch
    /// boundary); the engine integrates progress piecewise between them.
    fn next_boundary(&self, _progress: f64) -> f64 {
        f64::INFINITY
    }
}

/// GPUs per server when `gpus` GPUs fill servers of `per_server` GPUs in
/// order (whole servers first): the canonical shape of a configuration.
pub fn canonical_shape(gpus: u32, per_server: u32) -> Vec<u32> {
    let per_server = per_server.max(1);
    let mut shape = vec![per_server; (gpus / per_server) as usize];
    if !gpus.is_multiple_of(per_server) {
        shape.push(gpus % per_server);
    }
    shape
}

/// The work of a job and its throughput model.
#[derive(Debug, Clone)]
pub enum Work {
    /// A fixed scale factor and steps; `isolated[t]` is steps/s on GPU type
    /// `t` (0: cannot run there).
    Steps {
        /// Job type (a key of the throughput table).
        job_type: String,
        /// GPUs per run.
        scale_factor: u32,
        /// Isolated throughput per cluster GPU type, steps/s.
        isolated: Vec<f64>,
    },
    /// An adaptive (elastic) job.
    Adaptive {
        /// Application name.
        application: String,
        /// GPUs the user asked for (what non-adaptive policies give it).
        requested_gpus: u32,
        /// Its goodput model.
        model: Arc<dyn GoodputModel>,
    },
}

/// A job as submitted.
#[derive(Debug, Clone)]
pub struct Job {
    /// Index in arrival order.
    pub id: JobId,
    /// Name from the trace (or `job-<id>`).
    pub name: String,
    /// Submission time.
    pub arrival: SimTime,
    /// Total work (steps, or efficiency-weighted examples).
    pub work_total: f64,
    /// Priority weight (1 for normal jobs).
    pub priority_weight: f64,
    /// Seconds of lost time each time the job is (re)started on new GPUs.
    pub restart_penalty_s: f64,
    /// Whether the job belongs to the measurement window.
    pub measured: bool,
    /// Work and throughput model.
    pub work: Work,
}

impl Job {
    /// GPUs the job asks for (its scale factor, or the user's request for
    /// adaptive jobs).
    pub fn requested_gpus(&self) -> u32 {
        match &self.work {
            Work::Steps { scale_factor, .. } => *scale_factor,
            Work::Adaptive { requested_gpus, .. } => *requested_gpus,
        }
    }

    /// A label for the job's kind of model (job type or application).
    pub fn kind_label(&self) -> &str {
        match &self.work {
            Work::Steps { job_type, .. } => job_type,
            Work::Adaptive { application, .. } => application,
        }
    }

    /// Work units per second on GPU type `gpu_type` with `shape[i]` GPUs on
    /// the i-th server, at nominal server speed, given `progress` done.
    pub fn rate_on(&self, gpu_type: GpuTypeId, shape: &[u32], progress: f64) -> f64 {
        match &self.work {
            Work::Steps { scale_factor, isolated, .. } => {
                if shape.iter().sum::<u32>() == *scale_factor {
                    isolated[gpu_type]
                } else {
                    0.0
                }
            }
            Work::Adaptive { model, .. } => model.rate(gpu_type, shape, progress),
        }
    }

    /// Raw throughput (examples or steps per second) on a shape at nominal
    /// speed: what a throughput-based scheduler such as Hops measures.
    pub fn throughput_on(&self, gpu_type: GpuTypeId, shape: &[u32], progress: f64) -> f64 {
        match &self.work {
            Work::Steps { .. } => self.rate_on(gpu_type, shape, progress),
            Work::Adaptive { model, .. } => model.throughput(gpu_type, shape, progress),
        }
    }

    /// Work units per second on `gpus` GPUs of `gpu_type` packed onto as few
    /// servers as the cluster's servers of that type allow.
    pub fn rate_packed(&self, cluster: &Cluster, gpu_type: GpuTypeId, gpus: u32, progress: f64) -> f64 {
        self.rate_on(gpu_type, &canonical_shape(gpus, cluster.max_gpus_per_server(gpu_type)), progress)
    }

    /// Work units per second on a concrete placement (slowest server's speed
    /// applies).
    pub fn rate(&self, cluster: &Cluster, placement: &Placement, progress: f64) -> f64 {
        let Some(gpu_type) = placement.gpu_type(cluster) else { return 0.0 };
        let shape: Vec<u32> = placement.parts().iter().map(|(_, g)| *g).collect();
        self.rate_on(gpu_type, &shape, progress) * placement.min_speed(cluster)
    }

    /// The next progress value at which the job's rate may change.
    pub fn next_boundary(&self, progress: f64) -> f64 {
        match &self.work {
            Work::Steps { .. } => f64::INFINITY,
            Work::Adaptive { model, .. } => model.next_boundary(progress),
        }
    }

    /// Whether the job has any GPU type and count it could run on in `cluster`.
    pub fn schedulable_on(&self, cluster: &Cluster) -> bool {
        match &self.work {
            Work::Steps { scale_factor, isolated, .. } => {
                (0..cluster.gpu_types.len()).any(|t| isolated[t] > 0.0 && cluster.gpus_of_type(t) >= *scale_factor)
            }
            Work::Adaptive { model, .. } => {
                let (min, _) = model.gpu_range();
                (0..cluster.gpu_types.len()).any(|t| cluster.gpus_of_type(t) >= min)
            }
        }
    }

    /// Seconds the job would run alone on the cluster's GPU mix: the
    /// capacity-weighted average over GPU types of its run time at its
    /// requested GPU count (Hops' "expected solo runtime", the denominator of
    /// the latency ratio).
    pub fn solo_runtime_s(&self, cluster: &Cluster) -> f64 {
        let total = f64::from(cluster.total_gpus());
        let gpus = self.requested_gpus();
        let mut weighted = 0.0;
        let mut weight = 0.0;
        for t in 0..cluster.gpu_types.len() {
            let n = f64::from(cluster.gpus_of_type(t));
            let seconds = self.solo_seconds_on(cluster, t, gpus);
            if seconds.is_finite() && n > 0.0 {
                weighted += n / total * seconds;
                weight += n / total;
            }
        }
        if weight > 0.0 { weighted / weight } else { f64::INFINITY }
    }

    /// Seconds to do all the work alone on `gpus` packed GPUs of one type,
    /// integrating the rate between its change points (epochs).
    pub fn solo_seconds_on(&self, cluster: &Cluster, gpu_type: GpuTypeId, gpus: u32) -> f64 {
        let mut progress = 0.0;
        let mut seconds = 0.0;
        // Bounded: each step reaches the next boundary or the end.
        for _ in 0..100_000 {
            if progress >= self.work_total {
                return seconds;
            }
            let rate = self.rate_packed(cluster, gpu_type, gpus, progress);
            if rate <= 0.0 {
                return f64::INFINITY;
            }
            let until = self.next_boundary(progress).min(self.work_total);
            let until = if until > progress { until } else { self.work_total };
            seconds += (until - progress) / rate;
            progress = until;
        }
        f64::INFINITY
    }
}

/// Why a job left the system, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still waiting or running when the run ended.
    Unfinished,
    /// Finished all its work.
    Completed,
    /// Can never run on this cluster (e.g. needs more GPUs than it has).
    Unschedulable,
}

impl Outcome {
    /// Name used in result files.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Unfinished => "unfinished",
            Outcome::Completed => "completed",
            Outcome::Unschedulable => "unschedulable",
        }
    }
}

/// The engine's record of one job.
#[derive(Debug, Clone)]
pub struct JobState {
    /// Work done so far.
    pub work_done: f64,
    /// GPU-seconds allocated so far (including restart dead time).
    pub gpu_seconds: f64,
    /// Seconds with at least one GPU allocated.
    pub run_seconds: f64,
    /// When it first got GPUs.
    pub first_start: Option<SimTime>,
    /// When it finished.
    pub finish: Option<SimTime>,
    /// Its GPUs in the current (or last) round.
    pub placement: Option<Placement>,
    /// Times it was started on a different placement than before.
    pub restarts: u32,
    /// Restart dead time still to pay before it progresses again.
    pub pending_restart_s: f64,
    /// Outcome so far.
    pub outcome: Outcome,
    /// Integral of the number of active jobs over the job's lifetime (for
    /// finish-time fairness).
    pub contention_integral: f64,
}

impl Default for JobState {
    fn default() -> Self {
        JobState {
            work_done: 0.0,
            gpu_seconds: 0.0,
            run_seconds: 0.0,
            first_start: None,
            finish: None,
            placement: None,
            restarts: 0,
            pending_restart_s: 0.0,
            outcome: Outcome::Unfinished,
            contention_integral: 0.0,
        }
    }
}

impl JobState {
    /// Work left.
    pub fn remaining(&self, job: &Job) -> f64 {
        (job.work_total - self.work_done).max(0.0)
    }

    /// Attained service in GPU-seconds (Tiresias' 2D measure).
    pub fn attained_service(&self) -> f64 {
        self.gpu_seconds
    }

    /// Time since arrival without GPUs, as of `now`.
    pub fn wait(&self, job: &Job, now: SimTime) -> SimDuration {
        let age = now.saturating_since(job.arrival).as_secs_f64();
        SimDuration::from_secs_f64((age - self.run_seconds).max(0.0))
    }
}
