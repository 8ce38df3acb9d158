//! The datacenter replay: tasks of CPU-usage fragments placed on hosts by
//! a filter/weigher scheduler, host power from utilisation, energy and
//! carbon integrated exactly over the piecewise-constant result. It follows
//! OpenDC's compute simulation (github.com/atlarge-research/opendc,
//! `ComputeService`, `FilterScheduler`, `SimCpu`, `SimPowerSource`):
//!
//! - The run starts at the first submission; every host draws power from
//!   then until the last task ends.
//! - Submitted tasks wait in one FIFO queue. The head is placed on a host
//!   that passes the filters (free cores ≥ the task's cores, free memory ≥
//!   its memory; no over-commitment) with the highest weight; when no host
//!   fits, the queue waits (head-of-line blocking) until a task ends. A task
//!   larger than every host is terminated and counted, as OpenDC does.
//! - A running task replays its fragments back to back; each lasts its
//!   duration whatever CPU it gets (OpenDC's default `NoDelay` scaling).
//! - A host's demand is the sum of its tasks' current fragment usages; its
//!   utilisation is min(demand / capacity, 1) and its power the topology's
//!   power model at that utilisation.
//! - Energy = ∫ power dt and carbon = ∫ power · intensity dt, split exactly
//!   at every change of power, of intensity and at each hour.
//!
//! Deviations from OpenDC: the candidate hosts are all hosts in topology
//! order, ties going to the lowest index (OpenDC weighs the used hosts plus
//! one empty host per type, in its own sorted order, and accumulates
//! weights across calls); the placement therefore agrees where the weigher
//! has a strict maximum. Memory sizes are compared as given (OpenDC
//! divides a task's `mem_capacity` by 1000; [`Job::memory_mb`] does the
//! same when built from an OpenDC file). Utilisation samples (the figure
//! OpenDC's host table averages) are taken from time 0 every sample
//! interval, before the events of that instant, as OpenDC's exporter does.

use std::collections::VecDeque;

use nimbus_sim::queue::EventQueue;
use nimbus_sim::rng::RngStreams;
use nimbus_sim::time::SimTime;

use crate::intensity::Intensity;
use crate::topology::HostSpec;

/// One task to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id in the trace.
    pub id: String,
    /// When it is submitted, ms since 1970-01-01.
    pub submit_ms: i64,
    /// Cores it reserves.
    pub cores: u32,
    /// Memory it reserves, MB.
    pub memory_mb: f64,
    /// Its fragments: indices into [`Workload::fragments`].
    pub fragments: std::ops::Range<usize>,
}

/// Tasks and their fragments (duration ms, CPU usage MHz), in submission
/// order (ties in file order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workload {
    /// Tasks by submission time.
    pub jobs: Vec<Job>,
    /// (duration ms, usage MHz) of every fragment, grouped by task.
    pub fragments: Vec<(u64, f64)>,
}

impl Workload {
    /// From an OpenDC trace: fragments grouped by task in file order, a gap
    /// between a task's fragments becoming a fragment of zero usage, and
    /// memory divided by 1000 as OpenDC's loader does (`mem_capacity` is in
    /// KB in OpenDC's files).
    pub fn from_opendc(trace: &nimbus_trace::opendc::Workload) -> Result<Workload, String> {
        let n = trace.tasks.len();
        let mut per_task: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, f) in trace.fragments.iter().enumerate() {
            per_task[f.task].push(i);
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| trace.tasks[i].submit_ms);
        let mut jobs = Vec::with_capacity(n);
        let mut fragments = Vec::with_capacity(trace.fragments.len());
        for i in order {
            let t = &trace.tasks[i];
            let first = fragments.len();
            let mut at = t.submit_ms;
            for &fi in &per_task[i] {
                let f = &trace.fragments[fi];
                if f.start_ms > at {
                    fragments.push(((f.start_ms - at) as u64, 0.0));
                }
                fragments.push((f.duration_ms.max(0) as u64, f.cpu_usage_mhz));
                at = at.max(f.start_ms) + f.duration_ms.max(0);
            }
            if t.cpu_count == 0 {
                return Err(format!("task `{}` asks for 0 cores", t.id));
            }
            jobs.push(Job {
                id: t.id.clone(),
                submit_ms: t.submit_ms,
                cores: t.cpu_count,
                memory_mb: (t.mem_capacity_mb / 1000.0).round(),
                fragments: first..fragments.len(),
            });
        }
        Ok(Workload { jobs, fragments })
    }

    /// ms a job runs (the sum of its fragments).
    pub fn run_ms(&self, job: &Job) -> u64 {
        self.fragments[job.fragments.clone()].iter().map(|f| f.0).sum()
    }
}

/// How the scheduler weighs the hosts that fit (OpenDC's prefab policies
/// by their weigher, plus the classic bin-packing rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The first host that fits.
    FirstFit,
    /// Most free memory (OpenDC `Mem`: spreads).
    Mem,
    /// Least free memory (OpenDC `MemInv`: packs).
    MemInv,
    /// Fewest tasks (OpenDC `ActiveServers`).
    ActiveServers,
    /// Most tasks (OpenDC `ActiveServersInv`).
    ActiveServersInv,
    /// Most free cores.
    WorstFit,
    /// Fewest free cores.
    BestFit,
    /// A host that fits, uniformly at random from the seed.
    Random,
    /// The fitting host where the task costs least: the grid intensity now
    /// times the energy it adds (dynamic power over its run, plus idle
    /// power when it wakes a powered-off host), plus its embodied charge
    /// (`Config::embodied_rate` × cores × run time). With no embodied
    /// rate this is the operational-only metric.
    LowestCost,
}

impl Placement {
    /// Names used in scenarios.
    pub const NAMES: [&'static str; 8] =
        ["first-fit", "mem", "mem-inv", "active-servers", "active-servers-inv", "worst-fit", "best-fit", "random"];

    /// By name.
    pub fn from_name(name: &str) -> Option<Placement> {
        let all = [
            Placement::FirstFit,
            Placement::Mem,
            Placement::MemInv,
            Placement::ActiveServers,
            Placement::ActiveServersInv,
            Placement::WorstFit,
            Placement::BestFit,
            Placement::Random,
        ];
        Placement::NAMES.iter().position(|n| *n == name).map(|i| all[i])
    }
}

/// How a deferring task chooses when to start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShiftRule {
    /// OpenDC's `Timeshift`: wait while the intensity is above the
    /// `quantile` of the last `window_h` hourly values.
    Quantile,
    /// Let's Wait Awhile's and GAIA's lowest window: at submission, pick
    /// the start (now, or a change of intensity within the slack) whose run
    /// has the lowest forecast carbon, and wait for it. The forecast is the
    /// trace itself with a relative Gaussian error of this σ per value
    /// (0: perfect, as in Let's Wait Awhile's main evaluation), drawn
    /// from the run's seed.
    LowestWindow {
        /// σ of the relative forecast error.
        forecast_error: f64,
    },
}

/// Deferral of tasks to low-carbon hours (OpenDC's `Timeshift` policy,
/// after Let's Wait Awhile): a task with slack waits while the intensity is
/// above the `quantile` of the last `window_h` hourly values, until its
/// slack runs out; or, by [`ShiftRule::LowestWindow`], until the start
/// of its lowest-carbon window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeShift {
    /// Which rule.
    pub rule: ShiftRule,
    /// The quantile below which intensity counts as low (OpenDC: 0.2–0.35).
    pub quantile: f64,
    /// Hours of history the quantile is taken over (OpenDC: 168).
    pub window_h: usize,
    /// How long a task may wait past its submission, as a multiple of its
    /// run time (OpenDC's `deferAll` deadline: 3 × duration from
    /// submission, i.e. 2 × of slack).
    pub slack_factor: f64,
}

/// What a run is given.
#[derive(Debug, Clone)]
pub struct Config<'a> {
    /// Every host, expanded.
    pub hosts: Vec<&'a HostSpec>,
    /// The weigher.
    pub placement: Placement,
    /// Grid intensity (absent: carbon is not accounted).
    pub intensity: Option<&'a Intensity>,
    /// Power at the meter ÷ IT power.
    pub pue: f64,
    /// Deferral to low-carbon hours, if any.
    pub time_shift: Option<TimeShift>,
    /// The run's seed (the `random` placement).
    pub seed: u64,
    /// Interval of the utilisation samples and series, ms.
    pub sample_ms: u64,
    /// Hosts draw nothing while they run no task (OpenDC's zero-idle
    /// decorator; a fleet that powers idle servers off).
    pub power_off_idle: bool,
    /// `LowestCost`: embodied carbon charged per core per ms, per host (g).
    pub embodied_rate: Vec<f64>,
    /// Restricts each task (by index in [`Workload::jobs`]) to a set of
    /// hosts given by an id per host (`host_group`): task j may run only on
    /// hosts whose group is `assigned[j]` (an offline plan).
    pub assigned: Option<(Vec<usize>, Vec<usize>)>,
    /// Host failures injected from a trace, if any.
    pub failures: Option<&'a FailureModel>,
}

/// OpenDC's trace-based failure model: failure k comes `interval_ms` after
/// failure k − 1 has ended (OpenDC's injector waits out each failure
/// before the next interval), takes round(hosts × `intensity`) hosts
/// chosen at random (seeded) down for `duration_ms`, and starts over at the
/// trace's top when `repeat`. A failed host keeps drawing idle power and
/// takes no task; its tasks lose their progress (no checkpointing) and
/// go back to the front of the queue, until a task has failed
/// `max_failures` times (OpenDC's default 10), when it is terminated.
/// Injection stops when every task has completed or been terminated.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureModel {
    /// The failures, in order.
    pub failures: Vec<nimbus_trace::opendc::Failure>,
    /// Start over at the end.
    pub repeat: bool,
    /// Failures after which a task is terminated.
    pub max_failures: u32,
    /// Periodic snapshots, if any: a failed task resumes from its last.
    pub checkpoint: Option<Checkpoint>,
}

/// OpenDC's checkpointing: a running task takes a snapshot `interval_ms`
/// after it starts and after each snapshot ends (the interval multiplied
/// by `scaling` after each); a snapshot pauses the task's progress for
/// `duration_ms` at the CPU demand of its busiest fragment. After a
/// failure the task restarts where its last completed snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checkpoint {
    /// Wall time between snapshots, ms.
    pub interval_ms: u64,
    /// How long a snapshot pauses the task, ms.
    pub duration_ms: u64,
    /// Factor on the interval after each snapshot (OpenDC's
    /// `intervalScaling`; 1: fixed).
    pub scaling: f64,
}

/// One task's fate.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// Index into [`Workload::jobs`].
    pub job: usize,
    /// Host it ran on (none: terminated).
    pub host: Option<usize>,
    /// ms since the run's start.
    pub submit_ms: u64,
    /// ms since the run's start.
    pub start_ms: u64,
    /// ms since the run's start.
    pub end_ms: u64,
}

/// One sample interval of the run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Interval {
    /// IT energy, J.
    pub energy_j: f64,
    /// Carbon at the meter, g.
    pub carbon_g: f64,
    /// Mean intensity weighted by time, gCO2/kWh.
    pub intensity_ms: f64,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// First submission, ms since 1970.
    pub start_ms: i64,
    /// Duration of the run, ms (to the last task's end).
    pub duration_ms: u64,
    /// IT energy (the hosts), J.
    pub energy_j: f64,
    /// Energy per host, J (sums to `energy_j`).
    pub host_energy_j: Vec<f64>,
    /// Operational carbon at the meter (IT × PUE), g.
    pub carbon_g: f64,
    /// IT energy above the hosts' idle power, J (what placement and
    /// deferral move; idle power is drawn regardless).
    pub dynamic_energy_j: f64,
    /// Carbon of the dynamic energy, g.
    pub dynamic_carbon_g: f64,
    /// Highest IT power, W.
    pub peak_power_w: f64,
    /// Time-weighted mean host utilisation.
    pub mean_utilization: f64,
    /// Mean of the hosts' utilisation sampled every `sample_ms` (OpenDC's
    /// host-table average).
    pub mean_sampled_utilization: f64,
    /// Tasks, in [`Workload::jobs`] order.
    pub tasks: Vec<TaskRecord>,
    /// Tasks larger than every host (never run).
    pub terminated: usize,
    /// Runs of tasks cut short by a host failure.
    pub interruptions: u64,
    /// Tasks terminated after `max_failures` failures.
    pub failed_out: usize,
    /// Core-ms of work lost to failures (cores × time run before the
    /// failure).
    pub lost_core_ms: f64,
    /// Failures injected.
    pub failures_injected: u64,
    /// Per sample interval from the start.
    pub intervals: Vec<Interval>,
    /// Events processed.
    pub events: u64,
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Submit(usize),
    /// Task, and the run it belongs to (a failure starts a new run).
    FragmentEnd(usize, u32),
    /// A deferred task's slack ran out or the hour turned.
    Recheck,
    /// Failure k of the trace starts.
    Fail(usize),
    /// The hosts of failure `victims[i]` recover.
    Recover(usize),
    /// A task's snapshot starts (task, run).
    Snapshot(usize, u32),
    /// A task's snapshot is complete (task, run).
    SnapshotEnd(usize, u32),
}

struct Host {
    /// Failures holding the host down (0: up).
    down: u32,
    capacity_mhz: f64,
    cores_free: u32,
    memory_free: f64,
    tasks: u32,
    demand_mhz: f64,
    watts: f64,
    utilization: f64,
    energy_j: f64,
    since_ms: u64,
}

struct Running {
    host: usize,
    fragment: usize,
    usage: f64,
    /// Progress into the fragment when the current stretch began, ms.
    offset_ms: u64,
    /// When the current stretch of progress began (ms since the start).
    stretch_start: u64,
    /// Snapshots taken in this run.
    snapshots: u32,
}

struct Replay<'a> {
    workload: &'a Workload,
    config: &'a Config<'a>,
    specs: Vec<&'a HostSpec>,
    hosts: Vec<Host>,
    max_cores: u32,
    max_memory: f64,
    start_ms: i64,
    // Datacenter totals, integrated up to `last_ms`.
    last_ms: u64,
    total_watts: f64,
    total_utilization: f64,
    energy_j: f64,
    carbon_g: f64,
    idle_watts: f64,
    dynamic_energy_j: f64,
    dynamic_carbon_g: f64,
    utilization_ms: f64,
    peak_w: f64,
    next_sample_ms: u64,
    samples: u64,
    sampled_utilization: f64,
    intervals: Vec<Interval>,
    running: Vec<Option<Running>>,
    records: Vec<TaskRecord>,
    queue: VecDeque<usize>,
    terminated: usize,
    events: EventQueue<Event>,
    rng: nimbus_sim::rng::SimRng,
    outside_trace: Option<i64>,
    /// The earliest pending recheck of deferred tasks (u64::MAX: none).
    recheck_at: u64,
    /// `LowestWindow`: each task's chosen start (ms since the run's start).
    planned_start: Vec<Option<u64>>,
    /// `LowestWindow`: the forecast trace and its running integral
    /// (value × ms) at each value's start.
    forecast: Option<(Intensity, Vec<f64>)>,
    /// Tasks neither completed nor terminated.
    remaining: usize,
    /// Each task's current run (a failure starts a new one).
    generation: Vec<u32>,
    /// Failures each task has suffered.
    failures_of: Vec<u32>,
    /// The hosts each injected failure took down.
    victims: Vec<Vec<usize>>,
    failure_rng: nimbus_sim::rng::SimRng,
    /// Where each task resumes after a failure: (fragment, ms into it).
    saved: Vec<(usize, u64)>,
    /// When each task's last snapshot completed (or its run started).
    saved_at: Vec<u64>,
    /// The position a snapshot in progress records.
    snapshotting: Vec<(usize, u64)>,
    interruptions: u64,
    failed_out: usize,
    lost_core_ms: f64,
}

impl<'a> Config<'a> {
    /// `placement` on `hosts`, and nothing else: no carbon accounting,
    /// PUE 1, no deferral, seed 1, hourly samples, idle hosts on, no
    /// embodied charge, no plan, no failures. Fields are public: set what
    /// differs.
    pub fn new(hosts: Vec<&'a HostSpec>, placement: Placement) -> Config<'a> {
        Config {
            hosts,
            placement,
            intensity: None,
            pue: 1.0,
            time_shift: None,
            seed: 1,
            sample_ms: 3_600_000,
            power_off_idle: false,
            embodied_rate: Vec::new(),
            assigned: None,
            failures: None,
        }
    }
}

/// Runs `workload` on `config`.
pub fn run(workload: &Workload, config: &Config<'_>) -> Result<Outcome, String> {
    if config.hosts.is_empty() {
        return Err("no hosts".into());
    }
    if config.sample_ms == 0 {
        return Err("the sample interval must be above 0 ms".into());
    }
    if let Some(f) = config.failures
        && f.repeat
        && !f.failures.is_empty()
        && f.failures.iter().all(|x| x.interval_ms == 0 && x.duration_ms == 0)
    {
        return Err("a repeating failure trace whose intervals and durations are all 0 never lets time pass".into());
    }
    let start_ms = workload.jobs.iter().map(|j| j.submit_ms).min().unwrap_or(0);
    let hosts: Vec<Host> = config
        .hosts
        .iter()
        .map(|h| Host {
            down: 0,
            capacity_mhz: h.capacity_mhz(),
            cores_free: h.cores,
            memory_free: h.memory_mb,
            tasks: 0,
            demand_mhz: 0.0,
            watts: if config.power_off_idle { 0.0 } else { h.power.watts(0.0) },
            utilization: 0.0,
            energy_j: 0.0,
            since_ms: 0,
        })
        .collect();
    let total_watts = hosts.iter().map(|h| h.watts).sum();
    let mut replay = Replay {
        workload,
        config,
        specs: config.hosts.clone(),
        max_cores: config.hosts.iter().map(|h| h.cores).max().unwrap_or(0),
        max_memory: config.hosts.iter().map(|h| h.memory_mb).fold(0.0, f64::max),
        hosts,
        start_ms,
        last_ms: 0,
        total_watts,
        total_utilization: 0.0,
        energy_j: 0.0,
        carbon_g: 0.0,
        idle_watts: total_watts,
        dynamic_energy_j: 0.0,
        dynamic_carbon_g: 0.0,
        utilization_ms: 0.0,
        peak_w: total_watts,
        next_sample_ms: 0,
        samples: 0,
        sampled_utilization: 0.0,
        intervals: Vec::new(),
        running: (0..workload.jobs.len()).map(|_| None).collect(),
        records: workload
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| TaskRecord {
                job: i,
                host: None,
                submit_ms: (j.submit_ms - start_ms) as u64,
                start_ms: 0,
                end_ms: 0,
            })
            .collect(),
        queue: VecDeque::new(),
        terminated: 0,
        events: EventQueue::with_capacity(workload.jobs.len() + 16),
        rng: RngStreams::new(config.seed).stream("placement"),
        outside_trace: None,
        recheck_at: u64::MAX,
        planned_start: vec![None; workload.jobs.len()],
        forecast: match (config.time_shift, config.intensity) {
            (Some(TimeShift { rule: ShiftRule::LowestWindow { forecast_error }, .. }), Some(trace)) => {
                let mut noise = RngStreams::new(config.seed).stream("forecast-error");
                let mut f = trace.clone();
                if forecast_error > 0.0 {
                    for v in &mut f.values {
                        *v = (*v * (1.0 + noise.normal(0.0, forecast_error))).max(0.0);
                    }
                }
                let mut prefix = Vec::with_capacity(f.values.len() + 1);
                let mut sum = 0.0;
                prefix.push(0.0);
                for v in &f.values {
                    sum += v * f.step_ms as f64;
                    prefix.push(sum);
                }
                Some((f, prefix))
            }
            _ => None,
        },
        remaining: workload.jobs.len(),
        generation: vec![0; workload.jobs.len()],
        failures_of: vec![0; workload.jobs.len()],
        victims: Vec::new(),
        failure_rng: RngStreams::new(config.seed).stream("failures"),
        saved: workload.jobs.iter().map(|j| (j.fragments.start, 0)).collect(),
        saved_at: vec![0; workload.jobs.len()],
        snapshotting: vec![(0, 0); workload.jobs.len()],
        interruptions: 0,
        failed_out: 0,
        lost_core_ms: 0.0,
    };
    for (i, j) in workload.jobs.iter().enumerate() {
        replay.events.schedule(ms_time((j.submit_ms - start_ms) as u64), Event::Submit(i));
    }
    if let Some(first) = config.failures.and_then(|f| f.failures.first()) {
        replay.events.schedule(ms_time(first.interval_ms), Event::Fail(0));
    }
    let mut count = 0u64;
    let mut failures_injected = 0u64;
    while let Some((at, event)) = replay.events.pop() {
        // Failures after the last task has ended change nothing (OpenDC
        // stops its injector there); they must not stretch the run.
        if replay.remaining == 0 && matches!(event, Event::Fail(_) | Event::Recover(_)) {
            continue;
        }
        // Events of a run a failure (or a snapshot) has superseded.
        if let Event::FragmentEnd(i, generation) | Event::Snapshot(i, generation) | Event::SnapshotEnd(i, generation) =
            event
            && replay.generation[i] != generation
        {
            continue;
        }
        // A snapshot due after its task has ended.
        if let Event::Snapshot(i, _) | Event::SnapshotEnd(i, _) = event
            && replay.running[i].is_none()
        {
            continue;
        }
        count += 1;
        let now = at.as_nanos() / 1_000_000;
        replay.advance(now);
        match event {
            Event::Submit(i) => {
                replay.queue.push_back(i);
                replay.schedule(now);
            }
            Event::FragmentEnd(i, _) => replay.next_fragment(i, now),
            Event::Recheck => {
                if now >= replay.recheck_at {
                    replay.recheck_at = u64::MAX;
                }
                replay.schedule(now);
            }
            Event::Fail(k) => {
                failures_injected += 1;
                replay.fail(k, now);
            }
            Event::Recover(i) => {
                for h in std::mem::take(&mut replay.victims[i]) {
                    replay.hosts[h].down -= 1;
                }
                replay.schedule(now);
            }
            Event::Snapshot(i, _) => replay.snapshot(i, now),
            Event::SnapshotEnd(i, _) => replay.snapshot_end(i, now),
        }
    }
    if let Some(ms) = replay.outside_trace {
        let trace = config.intensity.expect("only with a trace");
        let end = start_ms + replay.last_ms as i64;
        return Err(trace.covers(ms.min(start_ms), end.max(ms + 1)).err().unwrap_or_default());
    }
    let duration_ms = replay.last_ms;
    let hosts = replay.hosts.len() as f64;
    let mut host_energy_j = Vec::with_capacity(replay.hosts.len());
    for h in &mut replay.hosts {
        h.energy_j += h.watts * (duration_ms - h.since_ms) as f64 * 1e-3;
        host_energy_j.push(h.energy_j);
    }
    Ok(Outcome {
        start_ms,
        duration_ms,
        energy_j: replay.energy_j,
        host_energy_j,
        carbon_g: replay.carbon_g,
        dynamic_energy_j: replay.dynamic_energy_j,
        dynamic_carbon_g: replay.dynamic_carbon_g,
        peak_power_w: replay.peak_w,
        mean_utilization: if duration_ms > 0 { replay.utilization_ms / (hosts * duration_ms as f64) } else { 0.0 },
        mean_sampled_utilization: if replay.samples > 0 {
            replay.sampled_utilization / (replay.samples as f64 * hosts)
        } else {
            f64::NAN
        },
        tasks: replay.records,
        terminated: replay.terminated,
        interruptions: replay.interruptions,
        failed_out: replay.failed_out,
        lost_core_ms: replay.lost_core_ms,
        failures_injected,
        intervals: replay.intervals,
        events: count,
    })
}

fn ms_time(ms: u64) -> SimTime {
    SimTime::from_nanos(ms.saturating_mul(1_000_000))
}

impl Replay<'_> {
    /// Integrates the datacenter's power up to `now` (ms since the start),
    /// split at sample boundaries and intensity changes.
    fn advance(&mut self, now: u64) {
        while self.next_sample_ms <= now {
            // A sample sees the state in force just before its instant.
            let s = self.next_sample_ms;
            self.integrate(s);
            self.samples += 1;
            self.sampled_utilization += self.total_utilization;
            self.next_sample_ms += self.config.sample_ms;
        }
        self.integrate(now);
    }

    fn integrate(&mut self, now: u64) {
        while self.last_ms < now {
            let bin = (self.last_ms / self.config.sample_ms) as usize;
            let bin_end = (bin as u64 + 1) * self.config.sample_ms;
            let mut until = now.min(bin_end);
            let mut ci = 0.0;
            if let Some(trace) = self.config.intensity {
                let abs = self.start_ms + self.last_ms as i64;
                match trace.at(abs) {
                    Some((value, next)) => {
                        ci = value;
                        until = until.min((next - self.start_ms) as u64);
                    }
                    None => {
                        self.outside_trace.get_or_insert(abs);
                    }
                }
            }
            let dt = (until - self.last_ms) as f64;
            let joules = self.total_watts * dt * 1e-3;
            let carbon = ci * joules * self.config.pue / 3.6e6;
            self.energy_j += joules;
            self.carbon_g += carbon;
            let dynamic = (self.total_watts - self.idle_watts).max(0.0) * dt * 1e-3;
            self.dynamic_energy_j += dynamic;
            self.dynamic_carbon_g += ci * dynamic * self.config.pue / 3.6e6;
            self.utilization_ms += self.total_utilization * dt;
            if self.intervals.len() <= bin {
                self.intervals.resize(bin + 1, Interval::default());
            }
            let slot = &mut self.intervals[bin];
            slot.energy_j += joules;
            slot.carbon_g += carbon;
            slot.intensity_ms += ci * dt;
            self.last_ms = until;
        }
    }

    /// Sets host `h`'s demand at `now` (the datacenter is integrated to now).
    fn set_demand(&mut self, h: usize, demand: f64, now: u64) {
        let host = &mut self.hosts[h];
        host.energy_j += host.watts * (now - host.since_ms) as f64 * 1e-3;
        host.since_ms = now;
        // No float residue once the host is empty.
        host.demand_mhz = if host.tasks == 0 { 0.0 } else { demand.max(0.0) };
        let utilization = (host.demand_mhz / host.capacity_mhz).min(1.0);
        let watts =
            if self.config.power_off_idle && host.tasks == 0 { 0.0 } else { self.specs[h].power.watts(utilization) };
        self.total_watts += watts - host.watts;
        self.total_utilization += utilization - host.utilization;
        host.watts = watts;
        host.utilization = utilization;
        self.peak_w = self.peak_w.max(self.total_watts);
    }

    fn fits(&self, h: usize, job: usize) -> bool {
        let j = &self.workload.jobs[job];
        let host = &self.hosts[h];
        if let Some((groups, assigned)) = &self.config.assigned
            && groups[h] != assigned[job]
        {
            return false;
        }
        host.down == 0 && host.cores_free >= j.cores && host.memory_free >= j.memory_mb
    }

    /// A task's run time (ms) and mean CPU usage over it (MHz).
    fn run_and_usage(&self, job: usize) -> (f64, f64) {
        let j = &self.workload.jobs[job];
        let run_ms = self.workload.run_ms(j) as f64;
        let fragments = &self.workload.fragments[j.fragments.clone()];
        let usage = if run_ms > 0.0 { fragments.iter().map(|f| f.0 as f64 * f.1).sum::<f64>() / run_ms } else { 0.0 };
        (run_ms, usage)
    }

    /// What task `job` (run time `run_ms`, mean usage `usage`, held against
    /// the host's current demand) would cost on host `h` now
    /// (`LowestCost`), g.
    fn cost(&self, h: usize, job: usize, ci: f64, (run_ms, usage): (f64, f64)) -> f64 {
        let j = &self.workload.jobs[job];
        let host = &self.hosts[h];
        let power = &self.specs[h].power;
        let before = if self.config.power_off_idle && host.tasks == 0 { 0.0 } else { power.watts(host.utilization) };
        let after = power.watts(((host.demand_mhz + usage) / host.capacity_mhz).min(1.0));
        let operational = ci * (after - before) * run_ms * 1e-3 / 3.6e6;
        let embodied = self.config.embodied_rate.get(h).copied().unwrap_or(0.0) * j.cores as f64 * run_ms;
        operational + embodied
    }

    fn pick(&mut self, job: usize) -> Option<usize> {
        let placement = self.config.placement;
        if placement == Placement::Random {
            let fitting: Vec<usize> = (0..self.hosts.len()).filter(|&h| self.fits(h, job)).collect();
            if fitting.is_empty() {
                return None;
            }
            let k = (self.rng.next_u64() % fitting.len() as u64) as usize;
            return Some(fitting[k]);
        }
        let ci = match (placement, self.config.intensity) {
            (Placement::LowestCost, Some(trace)) => trace.at(self.start_ms + self.last_ms as i64).map_or(0.0, |v| v.0),
            _ => 0.0,
        };
        // Once per task, not once per host.
        let shape = if placement == Placement::LowestCost { self.run_and_usage(job) } else { (0.0, 0.0) };
        let mut best: Option<(usize, f64)> = None;
        for h in 0..self.hosts.len() {
            if !self.fits(h, job) {
                continue;
            }
            let host = &self.hosts[h];
            let weight = match placement {
                Placement::FirstFit => return Some(h),
                Placement::Mem => host.memory_free,
                Placement::MemInv => -host.memory_free,
                Placement::ActiveServers => -(host.tasks as f64),
                Placement::ActiveServersInv => host.tasks as f64,
                Placement::WorstFit => host.cores_free as f64,
                Placement::BestFit => -(host.cores_free as f64),
                Placement::LowestCost => -self.cost(h, job, ci, shape),
                Placement::Random => unreachable!("handled above"),
            };
            if best.is_none_or(|(_, w)| weight > w) {
                best = Some((h, weight));
            }
        }
        best.map(|(h, _)| h)
    }

    /// Whether the queue head should wait for cleaner power.
    /// `LowestWindow`: the start within the slack whose run has the least
    /// forecast carbon (the earliest on a tie; a start whose run leaves
    /// the trace is not a candidate).
    fn lowest_window(&self, job: usize, deadline: u64) -> u64 {
        let Some((f, prefix)) = &self.forecast else { return 0 };
        let submit = self.records[job].submit_ms;
        let run = self.workload.run_ms(&self.workload.jobs[job]) as i64;
        // ∫ intensity from the trace's start to `t` (ms since 1970).
        let integral = |t: i64| -> Option<f64> {
            if t < f.start_ms || t > f.end_ms() {
                return None;
            }
            let i = ((t - f.start_ms) / f.step_ms).min(f.values.len() as i64 - 1).max(0) as usize;
            Some(prefix[i] + f.values[i] * (t - f.start_ms - i as i64 * f.step_ms) as f64)
        };
        let cost = |s: u64| {
            let a = self.start_ms + s as i64;
            Some(integral(a + run)? - integral(a)?)
        };
        let mut best = (submit, cost(submit).unwrap_or(f64::INFINITY));
        let first = self.start_ms + submit as i64;
        let mut boundary = f.start_ms + ((first - f.start_ms).div_euclid(f.step_ms) + 1) * f.step_ms;
        while boundary - self.start_ms <= deadline as i64 {
            let s = (boundary - self.start_ms) as u64;
            match cost(s) {
                Some(c) if c < best.1 => best = (s, c),
                None => break,
                _ => {}
            }
            boundary += f.step_ms;
        }
        best.0
    }

    fn defer(&mut self, job: usize, now: u64) -> bool {
        let (Some(shift), Some(trace)) = (self.config.time_shift, self.config.intensity) else { return false };
        let j = &self.workload.jobs[job];
        let run = self.workload.run_ms(j) as f64;
        let deadline = self.records[job].submit_ms + (run * shift.slack_factor).round() as u64;
        if now >= deadline {
            return false;
        }
        if let ShiftRule::LowestWindow { .. } = shift.rule {
            let planned = match self.planned_start[job] {
                Some(p) => p,
                None => {
                    let p = self.lowest_window(job, deadline);
                    self.planned_start[job] = Some(p);
                    p
                }
            };
            if now >= planned {
                return false;
            }
            if planned < self.recheck_at || self.recheck_at <= now {
                self.recheck_at = planned;
                self.events.schedule(ms_time(planned), Event::Recheck);
            }
            return true;
        }
        let abs = self.start_ms + now as i64;
        let Some((current, next)) = trace.at(abs) else { return false };
        let hour = 3_600_000i64;
        let mut window: Vec<f64> =
            (1..=shift.window_h as i64).filter_map(|k| trace.at(abs - k * hour).map(|(v, _)| v)).collect();
        if window.is_empty() {
            return false;
        }
        window.sort_by(f64::total_cmp);
        let threshold = window[((window.len() - 1) as f64 * shift.quantile).round() as usize];
        if current <= threshold {
            return false;
        }
        // Look again when the intensity next changes or the slack ends.
        let wake = ((next - self.start_ms) as u64).min(deadline).max(now + 1);
        // One pending recheck serves every deferred task.
        if wake < self.recheck_at || self.recheck_at <= now {
            self.recheck_at = wake;
            self.events.schedule(ms_time(wake), Event::Recheck);
        }
        true
    }

    /// Places queued tasks in order until the head does not fit.
    fn schedule(&mut self, now: u64) {
        let mut deferred = VecDeque::new();
        while let Some(&job) = self.queue.front() {
            let j = &self.workload.jobs[job];
            if j.cores > self.max_cores || j.memory_mb > self.max_memory {
                self.queue.pop_front();
                self.terminated += 1;
                self.remaining -= 1;
                let r = &mut self.records[job];
                r.start_ms = now;
                r.end_ms = now;
                continue;
            }
            if self.defer(job, now) {
                // Deferred tasks step aside; the others keep their order.
                self.queue.pop_front();
                deferred.push_back(job);
                continue;
            }
            let Some(h) = self.pick(job) else { break };
            self.queue.pop_front();
            self.start(job, h, now);
        }
        // Deferred tasks rejoin ahead of the rest, in their order.
        while let Some(job) = deferred.pop_back() {
            self.queue.push_front(job);
        }
    }

    fn start(&mut self, job: usize, h: usize, now: u64) {
        let j = &self.workload.jobs[job];
        let host = &mut self.hosts[h];
        host.cores_free -= j.cores;
        host.memory_free -= j.memory_mb;
        host.tasks += 1;
        let r = &mut self.records[job];
        r.host = Some(h);
        r.start_ms = now;
        // From the start, or from the last snapshot of an earlier run.
        let (fragment, offset_ms) = self.saved[job];
        self.saved_at[job] = now;
        self.running[job] =
            Some(Running { host: h, fragment, usage: 0.0, offset_ms, stretch_start: now, snapshots: 0 });
        self.enter_fragment(job, now);
        if let Some(c) = self.config.failures.and_then(|f| f.checkpoint) {
            self.events
                .schedule(ms_time(now.saturating_add(c.interval_ms)), Event::Snapshot(job, self.generation[job]));
        }
    }

    /// A snapshot starts: progress pauses at the busiest fragment's demand.
    fn snapshot(&mut self, job: usize, now: u64) {
        let Some(c) = self.config.failures.and_then(|f| f.checkpoint) else { return };
        let peak =
            self.workload.fragments[self.workload.jobs[job].fragments.clone()].iter().map(|f| f.1).fold(0.0, f64::max);
        let Some(run) = self.running[job].as_mut() else { return };
        self.snapshotting[job] = (run.fragment, run.offset_ms + (now - run.stretch_start));
        let (h, old) = (run.host, run.usage);
        run.usage = peak;
        // The pending fragment end no longer holds.
        self.generation[job] = self.generation[job].wrapping_add(1);
        let demand = self.hosts[h].demand_mhz - old + peak;
        self.set_demand(h, demand, now);
        self.events.schedule(ms_time(now + c.duration_ms), Event::SnapshotEnd(job, self.generation[job]));
    }

    /// A snapshot completes: it is saved and progress resumes.
    fn snapshot_end(&mut self, job: usize, now: u64) {
        let Some(c) = self.config.failures.and_then(|f| f.checkpoint) else { return };
        let (fragment, offset_ms) = self.snapshotting[job];
        self.saved[job] = (fragment, offset_ms);
        self.saved_at[job] = now;
        let Some(run) = self.running[job].as_mut() else { return };
        run.fragment = fragment;
        run.offset_ms = offset_ms;
        run.snapshots += 1;
        // Saturates (f64 → u64) for a scaled interval past any run's end.
        let next = (c.interval_ms as f64 * c.scaling.powf(f64::from(run.snapshots))).round() as u64;
        self.enter_fragment(job, now);
        if self.running[job].is_some() {
            self.events.schedule(ms_time(now.saturating_add(next.max(1))), Event::Snapshot(job, self.generation[job]));
        }
    }

    /// Starts the task's current fragment, skipping empty ones; ends the
    /// task after its last.
    fn enter_fragment(&mut self, job: usize, now: u64) {
        let end = self.workload.jobs[job].fragments.end;
        let run = self.running[job].as_mut().expect("running");
        while run.fragment < end && self.workload.fragments[run.fragment].0 == 0 {
            run.fragment += 1;
        }
        let (h, old) = (run.host, run.usage);
        if run.fragment == end {
            self.running[job] = None;
            let j = &self.workload.jobs[job];
            let host = &mut self.hosts[h];
            host.cores_free += j.cores;
            host.memory_free += j.memory_mb;
            host.tasks -= 1;
            let demand = host.demand_mhz - old;
            self.set_demand(h, demand, now);
            self.records[job].end_ms = now;
            self.remaining -= 1;
            self.schedule(now);
            return;
        }
        let (ms, usage) = self.workload.fragments[run.fragment];
        run.usage = usage;
        run.stretch_start = now;
        let left = ms - run.offset_ms.min(ms);
        let demand = self.hosts[h].demand_mhz - old + usage;
        self.set_demand(h, demand, now);
        self.events.schedule(ms_time(now + left), Event::FragmentEnd(job, self.generation[job]));
    }

    /// Injects failure `k`: picks its victims, kills their tasks, and
    /// schedules the recovery and the next failure.
    fn fail(&mut self, k: usize, now: u64) {
        let model = self.config.failures.expect("failure events come from a model");
        let failure = model.failures[k];
        let n = self.hosts.len();
        let count = ((n as f64 * failure.intensity).round() as usize).min(n);
        // A seeded partial Fisher–Yates shuffle.
        let mut order: Vec<usize> = (0..n).collect();
        for i in 0..count {
            let pick = i + (self.failure_rng.next_u64() % (n - i) as u64) as usize;
            order.swap(i, pick);
        }
        let mut victims = order[..count].to_vec();
        victims.sort_unstable();
        for &h in &victims {
            self.hosts[h].down += 1;
        }
        let hit: Vec<usize> = (0..self.running.len())
            .filter(|&job| self.running[job].as_ref().is_some_and(|r| self.hosts[r.host].down > 0))
            .collect();
        let mut requeue = Vec::new();
        for job in hit {
            if self.kill(job, now, model.max_failures) {
                requeue.push(job);
            }
        }
        // Back to the front of the queue, in task order.
        for &job in requeue.iter().rev() {
            self.queue.push_front(job);
        }
        let id = self.victims.len();
        self.victims.push(victims);
        let recovered = now.saturating_add(failure.duration_ms);
        self.events.schedule(ms_time(recovered), Event::Recover(id));
        let next = if k + 1 < model.failures.len() {
            Some(k + 1)
        } else if model.repeat {
            Some(0)
        } else {
            None
        };
        if let Some(next) = next {
            let at = recovered.saturating_add(model.failures[next].interval_ms);
            self.events.schedule(ms_time(at), Event::Fail(next));
        }
        self.schedule(now);
    }

    /// Stops a running task whose host failed: its progress is lost.
    /// Returns whether it goes back to the queue (else it is terminated).
    fn kill(&mut self, job: usize, now: u64, max_failures: u32) -> bool {
        let Some(run) = self.running[job].take() else { return false };
        let j = &self.workload.jobs[job];
        let host = &mut self.hosts[run.host];
        host.cores_free += j.cores;
        host.memory_free += j.memory_mb;
        host.tasks -= 1;
        let demand = host.demand_mhz - run.usage;
        self.set_demand(run.host, demand, now);
        self.generation[job] = self.generation[job].wrapping_add(1);
        self.interruptions += 1;
        // Work since the run started or its last snapshot completed.
        self.lost_core_ms += (now - self.saved_at[job]) as f64 * f64::from(j.cores);
        self.failures_of[job] += 1;
        if self.failures_of[job] >= max_failures {
            let r = &mut self.records[job];
            r.host = None;
            r.end_ms = now;
            self.failed_out += 1;
            self.remaining -= 1;
            return false;
        }
        true
    }

    fn next_fragment(&mut self, job: usize, now: u64) {
        if let Some(run) = self.running[job].as_mut() {
            run.fragment += 1;
            run.offset_ms = 0;
            self.enter_fragment(job, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_model::power::PowerModel;

    fn host(cores: u32, power: PowerModel) -> HostSpec {
        HostSpec { name: "h".into(), count: 1, cores, core_mhz: 1000.0, memory_mb: 1000.0, power }
    }

    fn job(id: &str, submit_ms: i64, cores: u32, fragments: std::ops::Range<usize>) -> Job {
        Job { id: id.into(), submit_ms, cores, memory_mb: 100.0, fragments }
    }

    fn config<'a>(hosts: Vec<&'a HostSpec>, placement: Placement) -> Config<'a> {
        Config::new(hosts, placement)
    }

    #[test]
    fn energy_of_two_tasks_by_hand() {
        let linear = PowerModel::Linear { idle_w: 100.0, max_w: 200.0 };
        let h = host(4, linear);
        // Task a: 1 h at 2,000 MHz then 1 h at 4,000 MHz; task b from 30
        // min: 1 h at 1,000 MHz. Capacity 4,000 MHz.
        let w = Workload {
            jobs: vec![job("a", 0, 2, 0..2), job("b", 1_800_000, 2, 2..3)],
            fragments: vec![(3_600_000, 2000.0), (3_600_000, 4000.0), (3_600_000, 1000.0)],
        };
        let out = run(&w, &config(vec![&h], Placement::FirstFit)).expect("ok");
        // u: 0.5 for 30 min, 0.75 for 30 min, 1 (capped from 1.25) for 30
        // min, 1 for 30 min → W: 150, 175, 200, 200 for 0.5 h each.
        let expected_wh = 0.5 * (150.0 + 175.0 + 200.0 + 200.0);
        assert!((out.energy_j / 3600.0 - expected_wh).abs() < 1e-9, "{}", out.energy_j / 3600.0);
        assert_eq!(out.duration_ms, 7_200_000);
        assert!((out.host_energy_j[0] - out.energy_j).abs() < 1e-6, "energy is conserved per host");
        assert_eq!(out.tasks[1].start_ms, 1_800_000);
        assert_eq!(out.tasks[1].end_ms, 5_400_000);
        assert_eq!(out.peak_power_w, 200.0);
        // Two hourly intervals, each with its own energy.
        assert_eq!(out.intervals.len(), 2);
        assert!((out.intervals[0].energy_j / 3600.0 - 0.5 * (150.0 + 175.0)).abs() < 1e-9);
        assert!((out.mean_utilization - (0.5 + 0.75 + 1.0 + 1.0) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn queue_waits_for_cores_and_big_tasks_are_terminated() {
        let h = host(4, PowerModel::Constant { watts: 10.0 });
        let w = Workload {
            jobs: vec![job("a", 0, 4, 0..1), job("b", 0, 2, 1..2), job("huge", 10, 8, 2..3)],
            fragments: vec![(1000, 1.0), (500, 1.0), (500, 1.0)],
        };
        let out = run(&w, &config(vec![&h], Placement::Mem)).expect("ok");
        assert_eq!(out.tasks[1].start_ms, 1000, "b waits for a's cores");
        assert_eq!(out.tasks[1].end_ms, 1500);
        assert_eq!(out.terminated, 1);
        assert_eq!(out.tasks[2].host, None);
        assert!((out.energy_j - 10.0 * 1.5).abs() < 1e-12);
    }

    #[test]
    fn placements_spread_or_pack() {
        let sqrt = PowerModel::Sqrt { idle_w: 0.0, max_w: 100.0 };
        let hosts = [host(4, sqrt.clone()), host(4, sqrt.clone())];
        let w = Workload {
            jobs: vec![job("a", 0, 1, 0..1), job("b", 0, 1, 1..2)],
            fragments: vec![(1000, 1000.0), (1000, 1000.0)],
        };
        let spread = run(&w, &config(hosts.iter().collect(), Placement::Mem)).expect("ok");
        let packed = run(&w, &config(hosts.iter().collect(), Placement::MemInv)).expect("ok");
        assert_eq!((spread.tasks[0].host, spread.tasks[1].host), (Some(0), Some(1)));
        assert_eq!((packed.tasks[0].host, packed.tasks[1].host), (Some(0), Some(0)));
        // Concave power: two hosts at 25% draw more than one at 50%.
        assert!((spread.energy_j - 2.0 * 100.0 * 0.5).abs() < 1e-9);
        assert!((packed.energy_j - 100.0 * 0.5f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn carbon_follows_the_hourly_intensity() {
        let h = host(1, PowerModel::Constant { watts: 1000.0 });
        let w = Workload { jobs: vec![job("a", 1_800_000, 1, 0..1)], fragments: vec![(3_600_000, 1.0)] };
        let ci = Intensity { name: "t".into(), start_ms: 0, step_ms: 3_600_000, values: vec![100.0, 300.0] };
        let mut c = config(vec![&h], Placement::FirstFit);
        c.intensity = Some(&ci);
        c.pue = 1.5;
        let out = run(&w, &c).expect("ok");
        // 0.5 kWh at 100 and 0.5 kWh at 300, times PUE 1.5.
        assert!((out.carbon_g - 1.5 * (50.0 + 150.0)).abs() < 1e-9, "{}", out.carbon_g);
        let short = Intensity { values: vec![100.0], ..ci.clone() };
        c.intensity = Some(&short);
        let e = run(&w, &c).expect_err("an error");
        assert!(e.contains("covers") && e.contains("the run spans"), "{e}");
    }

    #[test]
    fn time_shift_waits_for_a_low_hour_within_slack() {
        let h = host(1, PowerModel::Linear { idle_w: 0.0, max_w: 1000.0 });
        // A day of history, then hours 24.. at 500, 100, 500.
        let mut values = vec![300.0; 24];
        values.extend([500.0, 100.0, 500.0, 500.0]);
        let ci = Intensity { name: "t".into(), start_ms: 0, step_ms: 3_600_000, values };
        let w = Workload { jobs: vec![job("a", 24 * 3_600_000, 1, 0..1)], fragments: vec![(3_600_000, 1000.0)] };
        let mut c = config(vec![&h], Placement::FirstFit);
        c.intensity = Some(&ci);
        c.time_shift = Some(TimeShift { rule: ShiftRule::Quantile, quantile: 0.2, window_h: 24, slack_factor: 2.0 });
        let out = run(&w, &c).expect("ok");
        assert_eq!(out.tasks[0].start_ms, 3_600_000, "waits one hour for the 100 g hour");
        assert!((out.carbon_g - 100.0).abs() < 1e-9);
        // Without slack it runs at once.
        c.time_shift = Some(TimeShift { rule: ShiftRule::Quantile, quantile: 0.2, window_h: 24, slack_factor: 0.0 });
        assert_eq!(run(&w, &c).expect("ok").tasks[0].start_ms, 0);
    }

    /// OpenDC's `FailuresAndCheckpointingTest` (opendc-sdk-runner, commit
    /// 691036d): one host of 1 core at 2,000 MHz, linear 100–200 W; one
    /// task of 10 minutes at 1,000 MHz (150 W); failures of the whole
    /// host, without checkpointing.
    fn failure_case(failures: &[(u64, u64)], repeat: bool) -> Outcome {
        let mut h = host(1, PowerModel::Linear { idle_w: 100.0, max_w: 200.0 });
        h.core_mhz = 2000.0;
        let w = Workload { jobs: vec![job("a", 0, 1, 0..1)], fragments: vec![(600_000, 1000.0)] };
        let model = FailureModel {
            failures: failures
                .iter()
                .map(|&(interval_min, duration_min)| nimbus_trace::opendc::Failure {
                    interval_ms: interval_min * 60_000,
                    duration_ms: duration_min * 60_000,
                    intensity: 1.0,
                })
                .collect(),
            repeat,
            max_failures: 10,
            checkpoint: None,
        };
        let mut c = config(vec![&h], Placement::FirstFit);
        c.failures = Some(&model);
        run(&w, &c).expect("runs")
    }

    #[test]
    fn failures_match_opendc_expectations() {
        // Test 1: a failure after 5 min for 5 min; the task reruns whole.
        let o = failure_case(&[(5, 5)], false);
        assert_eq!(o.duration_ms, 20 * 60_000);
        assert_eq!(o.energy_j, 15.0 * 60.0 * 150.0 + 5.0 * 60.0 * 100.0);
        assert_eq!((o.interruptions, o.failed_out, o.tasks[0].start_ms), (1, 0, 10 * 60_000));
        assert_eq!(o.lost_core_ms, 5.0 * 60_000.0);
        // Test 2: the failure comes after the task has ended.
        let o = failure_case(&[(500, 5)], false);
        assert_eq!((o.duration_ms, o.energy_j, o.interruptions), (10 * 60_000, 600.0 * 150.0, 0));
        // Test 3: failures at 5 (for 5 min) and 7 min after the recovery
        // (for 10 min): 22 min busy, 15 min down, done at 37 min.
        let o = failure_case(&[(5, 5), (7, 10)], false);
        assert_eq!(o.duration_ms, 37 * 60_000);
        assert_eq!(o.energy_j, 22.0 * 60.0 * 150.0 + 15.0 * 60.0 * 100.0);
        // Test 4: the failure repeats every 10 min, so no run finishes; the
        // task is terminated at its 10th failure, at 95 min.
        let o = failure_case(&[(5, 5)], true);
        assert_eq!(o.duration_ms, 95 * 60_000);
        assert_eq!(o.energy_j, 10.0 * 300.0 * 150.0 + 9.0 * 300.0 * 100.0);
        assert_eq!((o.failed_out, o.tasks[0].host, o.failures_injected), (1, None, 10));
        // Energy per host still sums to the total.
        assert!((o.host_energy_j.iter().sum::<f64>() - o.energy_j).abs() < 1e-6);
    }

    /// OpenDC's checkpointing cases (the same test class): one failure
    /// after 5 min for 5 min; snapshots every minute taking 1 s.
    fn checkpoint_case(fragments: &[(u64, f64)], scaling: f64) -> Outcome {
        checkpoint_case_repeating(fragments, scaling, false)
    }

    fn checkpoint_case_repeating(fragments: &[(u64, f64)], scaling: f64, repeat: bool) -> Outcome {
        let mut h = host(1, PowerModel::Linear { idle_w: 100.0, max_w: 200.0 });
        h.core_mhz = 2000.0;
        let w = Workload { jobs: vec![job("a", 0, 1, 0..fragments.len())], fragments: fragments.to_vec() };
        let model = FailureModel {
            failures: vec![nimbus_trace::opendc::Failure {
                interval_ms: 300_000,
                duration_ms: 300_000,
                intensity: 1.0,
            }],
            repeat: false,
            max_failures: 10,
            checkpoint: Some(Checkpoint { interval_ms: 60_000, duration_ms: 1_000, scaling }),
        };
        let model = FailureModel { repeat, ..model };
        let mut c = config(vec![&h], Placement::FirstFit);
        c.failures = Some(&model);
        run(&w, &c).expect("runs")
    }

    #[test]
    fn checkpoints_match_opendc_expectations() {
        let ten = 600_000;
        // Test 1: 9 snapshots of 1 s, 56 s of work lost since the last.
        let o = checkpoint_case(&[(ten, 1000.0)], 1.0);
        assert_eq!(o.duration_ms, (600 + 300 + 9 + 56) * 1000);
        assert_eq!(o.energy_j, 600.0 * 150.0 + 300.0 * 100.0 + 9.0 * 150.0 + 56.0 * 150.0);
        // Test 2: a busier first fragment; a snapshot draws what the busiest
        // fragment does (200 W); the lost work was at 200 W.
        let o = checkpoint_case(&[(ten, 2000.0), (ten, 1000.0)], 1.0);
        assert_eq!(o.duration_ms, (1200 + 300 + 19 + 56) * 1000);
        assert_eq!(o.energy_j, 600.0 * 200.0 + 600.0 * 150.0 + 300.0 * 100.0 + 19.0 * 200.0 + 56.0 * 200.0);
        // Test 3: the fragments reversed: the lost work was at 150 W.
        let o = checkpoint_case(&[(ten, 1000.0), (ten, 2000.0)], 1.0);
        assert_eq!(o.duration_ms, (1200 + 300 + 19 + 56) * 1000);
        assert_eq!(o.energy_j, 600.0 * 200.0 + 600.0 * 150.0 + 300.0 * 100.0 + 19.0 * 200.0 + 56.0 * 150.0);
        // Test 4: intervals growing 1.5× after each snapshot: 18 s added.
        let o = checkpoint_case(&[(ten, 1000.0)], 1.5);
        assert_eq!(o.duration_ms, (600 + 300 + 4 + 14) * 1000);
        assert_eq!(o.energy_j, 600.0 * 150.0 + 300.0 * 100.0 + 4.0 * 150.0 + 14.0 * 150.0);
        assert!((o.host_energy_j.iter().sum::<f64>() - o.energy_j).abs() < 1e-6);
        // Test 6: the failure repeats every 10 min; each run keeps 4 min of
        // work; the third finishes at 22 min 1 s.
        let o = checkpoint_case_repeating(&[(ten, 1000.0)], 1.0, true);
        assert_eq!(o.duration_ms, 22 * 60_000 + 1_000);
        assert_eq!(o.energy_j, 300.0 * 150.0 + 300.0 * 100.0 + 300.0 * 150.0 + 300.0 * 100.0 + 121.0 * 150.0);
        assert_eq!((o.interruptions, o.failed_out), (2, 0));
    }

    #[test]
    fn a_failure_moves_tasks_to_the_hosts_that_remain() {
        // Two hosts; half of them fail at 1 min for an hour: the task on
        // the failed host restarts at once on the other (it has a free core).
        let h = host(2, PowerModel::Linear { idle_w: 0.0, max_w: 100.0 });
        let hosts = vec![&h, &h];
        let w = Workload {
            jobs: vec![job("a", 0, 1, 0..1), job("b", 0, 1, 1..2)],
            fragments: vec![(600_000, 500.0), (600_000, 500.0)],
        };
        let model = FailureModel {
            failures: vec![nimbus_trace::opendc::Failure {
                interval_ms: 60_000,
                duration_ms: 3_600_000,
                intensity: 0.5,
            }],
            repeat: false,
            max_failures: 10,
            checkpoint: None,
        };
        let mut c = config(hosts, Placement::WorstFit);
        c.failures = Some(&model);
        let o = run(&w, &c).expect("runs");
        assert_eq!(o.interruptions, 1);
        let moved = o.tasks.iter().find(|t| t.start_ms == 60_000).expect("one task restarted at 1 min");
        assert_eq!(moved.end_ms, 660_000);
        assert_eq!(o.duration_ms, 660_000, "the recovery after the last task does not stretch the run");
        assert_eq!(run(&w, &c).expect("runs"), o, "the victims are drawn from the seed");
    }

    #[test]
    fn lowest_window_starts_where_the_run_is_cleanest() {
        let h = host(1, PowerModel::Linear { idle_w: 0.0, max_w: 1000.0 });
        // Hours 0.. at 300, 100, 50, 400, 20, 20: a 2-h task submitted at
        // 0 with slack 2 × 2 h may start at 0..4 h. Windows: 400, 150, 450,
        // 420, 40 → hour 4 (40 g·h/kWh × 1 kW: 40 g).
        let values = vec![300.0, 100.0, 50.0, 400.0, 20.0, 20.0, 500.0, 500.0];
        let ci = Intensity { name: "t".into(), start_ms: 0, step_ms: 3_600_000, values };
        let w = Workload { jobs: vec![job("a", 0, 1, 0..1)], fragments: vec![(7_200_000, 1000.0)] };
        let mut c = config(vec![&h], Placement::FirstFit);
        c.intensity = Some(&ci);
        let rule = ShiftRule::LowestWindow { forecast_error: 0.0 };
        c.time_shift = Some(TimeShift { rule, quantile: 0.2, window_h: 24, slack_factor: 2.0 });
        let out = run(&w, &c).expect("ok");
        assert_eq!(out.tasks[0].start_ms, 4 * 3_600_000);
        assert!((out.carbon_g - 40.0).abs() < 1e-9, "{}", out.carbon_g);
        // Slack of 1.5 × 2 h: starts 0..3 h → hour 1 (150 g).
        c.time_shift = Some(TimeShift { rule, quantile: 0.2, window_h: 24, slack_factor: 1.5 });
        let out = run(&w, &c).expect("ok");
        assert_eq!(out.tasks[0].start_ms, 3_600_000);
        assert!((out.carbon_g - 150.0).abs() < 1e-9);
        // A forecast with large errors may choose worse, never outside the slack.
        c.time_shift = Some(TimeShift {
            rule: ShiftRule::LowestWindow { forecast_error: 0.5 },
            quantile: 0.2,
            window_h: 24,
            slack_factor: 1.5,
        });
        let out = run(&w, &c).expect("ok");
        assert!(out.tasks[0].start_ms <= 3 * 3_600_000 && out.carbon_g >= 150.0 - 1e-9);
    }
}
