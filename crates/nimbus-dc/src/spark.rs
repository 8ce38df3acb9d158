//! A Spark-imitating simulator of DAG jobs on a pool of executors, in the
//! manner of Decima's (Mao et al., SIGCOMM'19), which MC-WSCPT's authors
//! also evaluate on.
//!
//! Jobs arrive (some at time 0, then a stream); a job's stage becomes
//! runnable when its parents finish. Executors run one task at a time. An
//! executor assigned to a job it is not attached to first moves (the moving
//! delay, 2 s by default, Decima's); its first task in the job draws a
//! fresh (warm-up) duration. When a task ends the executor takes the next
//! task of the same stage while the stage has tasks, its limit allows and
//! the job is within its executor cap; otherwise it goes idle and the
//! scheduler decides. Task durations come from [`crate::job::Durations`]
//! at the job's current executor count (busy and moving executors).
//!
//! A [`Scheduler`] is asked for a [`Plan`] whenever executors are idle and
//! something changed (an arrival, a stage or job finishing, an executor
//! released): an ordered list of (job, stage, parallelism limit) grants and
//! optional per-job executor caps. Idle executors fill the grants in order,
//! preferring one already attached to the job (no move) and, among those,
//! one that ran the stage's previous task. A work-conserving plan then gives
//! any executor still idle to the grants regardless of the caps.
//!
//! Deviations from Decima's simulator: an idle executor stays attached to
//! its job (a later task there needs no move) but no longer counts towards
//! the job's executor count; plans come on state changes rather than per
//! executor; time is integer nanoseconds.

use std::sync::Arc;

use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Table};
use nimbus_sim::queue::EventQueue;
use nimbus_sim::rng::SimRng;
use nimbus_sim::time::{SimDuration, SimTime};

use crate::job::{JobSpec, Wave};

/// The executor pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Executors (Decima: 100).
    pub executors: u32,
    /// Time to move an executor to another job, ms (Decima: 2,000).
    pub moving_delay_ms: f64,
    /// Added to a first-wave duration when a stage has no fresh durations, ms
    /// (Decima: 1,000).
    pub warmup_delay_ms: f64,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster { executors: 100, moving_delay_ms: 2000.0, warmup_delay_ms: 1000.0 }
    }
}

/// One job of a run.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Arrival time.
    pub at: SimTime,
    /// The job.
    pub spec: Arc<JobSpec>,
    /// Weight (1 for unweighted streams).
    pub weight: f64,
}

/// Progress of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageState {
    /// Tasks not yet given to an executor.
    pub unlaunched: u32,
    /// Tasks running, or waiting for their executor to move.
    pub running: u32,
    /// Tasks finished.
    pub done: u32,
    /// Parents not yet finished.
    pub parents_left: u32,
}

impl StageState {
    /// Whether a task of the stage can start now.
    pub fn runnable(&self) -> bool {
        self.parents_left == 0 && self.unlaunched > 0
    }

    /// Whether every task has finished.
    pub fn finished(&self) -> bool {
        self.unlaunched == 0 && self.running == 0
    }
}

/// What a scheduler sees of one active job.
#[derive(Debug)]
pub struct JobView<'a> {
    /// Submission index (stable across plans).
    pub id: usize,
    /// The job.
    pub spec: &'a JobSpec,
    /// Expected duration of each stage run at full width, ms.
    pub stage_ms: &'a [f64],
    /// Weight.
    pub weight: f64,
    /// Arrival.
    pub arrival: SimTime,
    /// Stage progress.
    pub stages: &'a [StageState],
    /// Executors busy on or moving to the job.
    pub executors: u32,
}

impl JobView<'_> {
    /// Stages with a task that can start now, ascending.
    pub fn runnable(&self) -> impl Iterator<Item = usize> + '_ {
        self.stages.iter().enumerate().filter(|(_, s)| s.runnable()).map(|(i, _)| i)
    }

    /// Each stage's remaining critical path (ms): its own unfinished share
    /// of its expected time plus the longest such path through its children.
    pub fn remaining_ranks(&self) -> Vec<f64> {
        let mut rank = vec![0.0; self.stages.len()];
        for &s in self.spec.topo_order.iter().rev() {
            let st = &self.stages[s];
            let tasks = f64::from(self.spec.stages[s].tasks.max(1));
            let own = self.stage_ms[s] * f64::from(st.unlaunched + st.running) / tasks;
            let below = self.spec.stages[s].children.iter().map(|&c| rank[c]).fold(0.0, f64::max);
            rank[s] = own + below;
        }
        rank
    }

    /// The job's remaining critical-path time, ms.
    pub fn remaining_cp_ms(&self) -> f64 {
        self.remaining_ranks().into_iter().fold(0.0, f64::max)
    }

    /// Remaining work at the rough task duration, executor-ms.
    pub fn remaining_work_ms(&self) -> f64 {
        self.stages
            .iter()
            .zip(&self.spec.stages)
            .map(|(st, sp)| f64::from(st.unlaunched + st.running) * sp.durations.rough_ms)
            .sum()
    }
}

/// What a scheduler sees.
#[derive(Debug)]
pub struct View<'a> {
    /// Now.
    pub now: SimTime,
    /// Executors in the cluster.
    pub executors: u32,
    /// Executors idle now.
    pub idle: u32,
    /// Active jobs, in arrival order.
    pub jobs: Vec<JobView<'a>>,
}

/// Permission for a stage to hold up to `limit` executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Position of the job in [`View::jobs`].
    pub job: usize,
    /// Stage index.
    pub stage: usize,
    /// Most tasks of the stage running at once.
    pub limit: u32,
}

/// A scheduler's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Grants in priority order.
    pub grants: Vec<Grant>,
    /// Executor caps per job (by position in [`View::jobs`]); `None`: none.
    pub job_caps: Option<Vec<u32>>,
    /// Whether executors left idle after the capped pass go to the grants
    /// regardless of the caps.
    pub work_conserving: bool,
}

/// A scheduling policy.
pub trait Scheduler {
    /// Decides how idle executors are used.
    fn plan(&mut self, view: &View<'_>) -> Plan;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Arrive(usize),
    Moved(usize),
    TaskDone(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExecState {
    Idle,
    Moving,
    Busy,
}

#[derive(Debug, Clone, Copy)]
struct Executor {
    job: Option<usize>,
    stage: Option<usize>,
    /// Whether the next task is its first in the job.
    fresh: bool,
    state: ExecState,
}

struct JobState {
    stages: Vec<StageState>,
    limits: Vec<u32>,
    executors: u32,
    cap: u32,
    unfinished_stages: usize,
    finish: Option<SimTime>,
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Tasks run.
    pub tasks: u64,
    /// Executor moves between jobs.
    pub moves: u64,
    /// Plans asked of the scheduler.
    pub plans: u64,
    /// Events processed.
    pub events: u64,
}

/// One task as it ran (kept only when asked for: [`run_logged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRecord {
    /// Submission index.
    pub job: usize,
    /// Stage.
    pub stage: usize,
    /// Executor.
    pub executor: usize,
    /// Start (after any move).
    pub start: SimTime,
    /// End.
    pub end: SimTime,
}

/// The state of a run; [`run`] drives it.
struct Sim<'a> {
    cluster: &'a Cluster,
    subs: &'a [Submission],
    stage_ms: Vec<Vec<f64>>,
    jobs: Vec<Option<JobState>>,
    active: Vec<usize>,
    executors: Vec<Executor>,
    idle: Vec<usize>,
    queue: EventQueue<Event>,
    rng: SimRng,
    dirty: bool,
    busy_ns: u128,
    counters: Counters,
    log: Option<Vec<TaskRecord>>,
}

fn ms(d: f64) -> SimDuration {
    SimDuration::from_secs_f64(d / 1000.0)
}

impl Sim<'_> {
    fn arrive(&mut self, id: usize) {
        let spec = &self.subs[id].spec;
        let stages = spec
            .stages
            .iter()
            .map(|s| StageState {
                unlaunched: s.tasks,
                running: 0,
                done: 0,
                parents_left: u32::try_from(s.parents.len()).unwrap_or(u32::MAX),
            })
            .collect();
        self.jobs[id] = Some(JobState {
            stages,
            limits: vec![u32::MAX; spec.stages.len()],
            executors: 0,
            cap: u32::MAX,
            unfinished_stages: spec.stages.len(),
            finish: None,
        });
        self.active.push(id);
        self.dirty = true;
    }

    /// Gives task of (`job`, `stage`) to executor `e`, moving it if needed.
    fn launch(&mut self, e: usize, job: usize, stage: usize, counted: bool) {
        let now = self.queue.now();
        let Some(state) = self.jobs[job].as_mut() else { return };
        state.stages[stage].unlaunched -= 1;
        state.stages[stage].running += 1;
        if !counted {
            state.executors += 1;
        }
        let ex = &mut self.executors[e];
        if ex.job != Some(job) {
            ex.job = Some(job);
            ex.stage = Some(stage);
            ex.fresh = true;
            ex.state = ExecState::Moving;
            self.counters.moves += 1;
            self.queue.schedule(now + ms(self.cluster.moving_delay_ms), Event::Moved(e));
        } else {
            let wave = if ex.fresh {
                Wave::Fresh
            } else if ex.stage == Some(stage) {
                Wave::Rest
            } else {
                Wave::First
            };
            ex.stage = Some(stage);
            self.start(e, wave);
        }
    }

    fn start(&mut self, e: usize, wave: Wave) {
        let now = self.queue.now();
        let ex = &mut self.executors[e];
        let (Some(job), Some(stage)) = (ex.job, ex.stage) else { return };
        ex.fresh = false;
        ex.state = ExecState::Busy;
        let count = self.jobs[job].as_ref().map_or(1, |j| j.executors.max(1));
        let d = self.subs[job].spec.stages[stage].durations.sample(
            count,
            wave,
            self.cluster.warmup_delay_ms,
            &mut self.rng,
        );
        let d = ms(d);
        self.busy_ns += u128::from(d.as_nanos());
        self.counters.tasks += 1;
        if let Some(log) = self.log.as_mut() {
            log.push(TaskRecord { job, stage, executor: e, start: now, end: now + d });
        }
        self.queue.schedule(now + d, Event::TaskDone(e));
    }

    fn task_done(&mut self, e: usize) {
        let now = self.queue.now();
        let ex = self.executors[e];
        let (Some(job), Some(stage)) = (ex.job, ex.stage) else { return };
        let spec = Arc::clone(&self.subs[job].spec);
        let Some(state) = self.jobs[job].as_mut() else { return };
        let st = &mut state.stages[stage];
        st.running -= 1;
        st.done += 1;
        if st.finished() {
            state.unfinished_stages -= 1;
            for &c in &spec.stages[stage].children {
                state.stages[c].parents_left -= 1;
            }
            self.dirty = true;
            if state.unfinished_stages == 0 {
                state.finish = Some(now);
                self.active.retain(|&j| j != job);
            }
        }
        let st = state.stages[stage];
        if st.unlaunched > 0 && state.executors <= state.cap && st.running < state.limits[stage] {
            self.launch(e, job, stage, true);
        } else {
            state.executors -= 1;
            self.executors[e].state = ExecState::Idle;
            self.idle.push(e);
            self.dirty = true;
        }
    }

    /// An idle executor for (`job`, `stage`): one that ran the stage's last
    /// task, else one attached to the job, else the first idle.
    fn pick_idle(&mut self, job: usize, stage: usize) -> Option<usize> {
        let mut best: Option<(usize, u8)> = None;
        for (i, &e) in self.idle.iter().enumerate() {
            let ex = &self.executors[e];
            let score = match (ex.job == Some(job), ex.stage == Some(stage)) {
                (true, true) => 2,
                (true, false) => 1,
                _ => 0,
            };
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
                if score == 2 {
                    break;
                }
            }
        }
        best.map(|(i, _)| self.idle.remove(i))
    }

    fn dispatch(&mut self, scheduler: &mut dyn Scheduler) {
        if !self.dirty || self.idle.is_empty() || self.active.is_empty() {
            return;
        }
        self.dirty = false;
        let plan = {
            let jobs: Vec<JobView<'_>> = self
                .active
                .iter()
                .filter_map(|&id| {
                    let s = self.jobs[id].as_ref()?;
                    Some(JobView {
                        id,
                        spec: &self.subs[id].spec,
                        stage_ms: &self.stage_ms[id],
                        weight: self.subs[id].weight,
                        arrival: self.subs[id].at,
                        stages: &s.stages,
                        executors: s.executors,
                    })
                })
                .collect();
            if !jobs.iter().any(|j| j.runnable().next().is_some()) {
                return;
            }
            let view = View {
                now: self.queue.now(),
                executors: self.cluster.executors,
                idle: u32::try_from(self.idle.len()).unwrap_or(u32::MAX),
                jobs,
            };
            scheduler.plan(&view)
        };
        self.counters.plans += 1;
        let ids: Vec<usize> = self.active.clone();
        for (pos, &id) in ids.iter().enumerate() {
            if let Some(s) = self.jobs[id].as_mut() {
                s.cap = plan.job_caps.as_ref().and_then(|c| c.get(pos).copied()).unwrap_or(u32::MAX).max(1);
            }
        }
        for capped in [true, false] {
            if !capped && !plan.work_conserving {
                break;
            }
            for g in &plan.grants {
                let Some(&id) = ids.get(g.job) else { continue };
                loop {
                    if self.idle.is_empty() {
                        return;
                    }
                    let Some(s) = self.jobs[id].as_mut() else { break };
                    let Some(st) = s.stages.get(g.stage).copied() else { break };
                    s.limits[g.stage] = g.limit.max(1);
                    if !st.runnable() || st.running >= g.limit.max(1) || (capped && s.executors >= s.cap) {
                        break;
                    }
                    let Some(e) = self.pick_idle(id, g.stage) else { break };
                    self.launch(e, id, g.stage, false);
                }
            }
        }
    }
}

/// Runs `subs` (sorted by arrival) on `cluster` under `scheduler`.
/// `progress` receives the finished fraction of jobs.
pub fn run(
    cluster: &Cluster,
    subs: &[Submission],
    scheduler: &mut dyn Scheduler,
    rng: SimRng,
    progress: &mut dyn FnMut(f64),
) -> RunOutput {
    simulate(cluster, subs, scheduler, rng, progress, false).0
}

/// [`run`], also returning every task as it ran (for checks and plots).
pub fn run_logged(
    cluster: &Cluster,
    subs: &[Submission],
    scheduler: &mut dyn Scheduler,
    rng: SimRng,
) -> (RunOutput, Vec<TaskRecord>) {
    let (out, log) = simulate(cluster, subs, scheduler, rng, &mut |_| {}, true);
    (out, log.unwrap_or_default())
}

fn simulate(
    cluster: &Cluster,
    subs: &[Submission],
    scheduler: &mut dyn Scheduler,
    rng: SimRng,
    progress: &mut dyn FnMut(f64),
    logged: bool,
) -> (RunOutput, Option<Vec<TaskRecord>>) {
    let mut sim = Sim {
        cluster,
        subs,
        stage_ms: subs.iter().map(|s| s.spec.stage_times_ms(cluster.executors)).collect(),
        jobs: (0..subs.len()).map(|_| None).collect(),
        active: Vec::new(),
        executors: vec![
            Executor { job: None, stage: None, fresh: true, state: ExecState::Idle };
            cluster.executors as usize
        ],
        idle: (0..cluster.executors as usize).collect(),
        queue: EventQueue::with_capacity(cluster.executors as usize + subs.len()),
        rng,
        dirty: false,
        busy_ns: 0,
        counters: Counters::default(),
        log: logged.then(Vec::new),
    };
    for (i, s) in subs.iter().enumerate() {
        sim.queue.schedule(s.at, Event::Arrive(i));
    }
    let mut finished = 0usize;
    while let Some((t, ev)) = sim.queue.pop() {
        sim.counters.events += 1;
        match ev {
            Event::Arrive(i) => sim.arrive(i),
            Event::Moved(e) => sim.start(e, Wave::Fresh),
            Event::TaskDone(e) => {
                let before = sim.active.len();
                sim.task_done(e);
                if sim.active.len() < before {
                    finished += 1;
                    if finished.is_multiple_of(64) {
                        progress(finished as f64 / subs.len().max(1) as f64);
                    }
                }
            }
        }
        if sim.queue.peek_time() != Some(t) {
            sim.dispatch(scheduler);
        }
    }
    progress(1.0);
    let out = report(&sim);
    (out, sim.log)
}

fn report(sim: &Sim<'_>) -> RunOutput {
    let mut out = RunOutput::default();
    let start = sim.subs.iter().map(|s| s.at).min().unwrap_or(SimTime::ZERO);
    let mut jcts = Vec::new();
    let (mut weighted, mut weights) = (0.0, 0.0);
    let mut end = start;
    let mut rows = Vec::with_capacity(sim.subs.len());
    let mut unfinished = 0;
    for (id, sub) in sim.subs.iter().enumerate() {
        let finish = sim.jobs[id].as_ref().and_then(|j| j.finish);
        let jct = finish.map(|f| f.saturating_since(sub.at).as_secs_f64());
        if let (Some(f), Some(j)) = (finish, jct) {
            end = end.max(f);
            jcts.push(j);
            weighted += sub.weight * j;
            weights += sub.weight;
        } else {
            unfinished += 1;
        }
        rows.push(vec![
            Cell::Int(i64::try_from(id).unwrap_or(i64::MAX)),
            Cell::Str(sub.spec.name.clone()),
            Cell::Float(sub.weight),
            Cell::Float(sub.at.as_secs_f64()),
            finish.map_or(Cell::Empty, |f| Cell::Float(f.as_secs_f64())),
            jct.map_or(Cell::Empty, Cell::Float),
            Cell::Int(i64::try_from(sub.spec.tasks()).unwrap_or(i64::MAX)),
        ]);
    }
    if unfinished > 0 {
        out.notes.push(format!(
            "{unfinished} of {} jobs never finished: the scheduler left runnable work without executors",
            sim.subs.len()
        ));
    }
    let makespan = end.saturating_since(start).as_secs_f64();
    let mean_jct = nimbus_sim::stats::mean(&jcts);
    let q = |p: f64| nimbus_sim::stats::quantile(&jcts, p);
    let capacity_ns = f64::from(sim.cluster.executors) * makespan * 1e9;
    let m = |name: &str, value: f64, better: Better| Metric::new(name, value, better);
    out.metrics = vec![
        m("jobs", sim.subs.len() as f64, Better::Neither),
        m("jobs_finished", jcts.len() as f64, Better::Higher),
        m("jct_s_mean", mean_jct, Better::Lower),
        m("jct_s_p50", q(0.5), Better::Lower),
        m("jct_s_p90", q(0.9), Better::Lower),
        m("jct_s_p99", q(0.99), Better::Lower),
        m("makespan_s", makespan, Better::Lower),
        m("jct_plus_makespan_s", mean_jct + makespan, Better::Lower),
        m("weighted_jct_s_mean", if weights > 0.0 { weighted / weights } else { f64::NAN }, Better::Lower),
        m(
            "executor_utilization",
            if capacity_ns > 0.0 { sim.busy_ns as f64 / capacity_ns } else { f64::NAN },
            Better::Neither,
        ),
        m("tasks", sim.counters.tasks as f64, Better::Neither),
        m("moves", sim.counters.moves as f64, Better::Lower),
        m("plans", sim.counters.plans as f64, Better::Neither),
    ];
    out.tables.push(Table {
        name: "jobs".into(),
        columns: ["job", "name", "weight", "arrival_s", "finish_s", "jct_s", "tasks"].map(String::from).to_vec(),
        rows,
    });
    out
}

/// Every metric [`run`] reports.
pub const METRICS: &[&str] = &[
    "jobs",
    "jobs_finished",
    "jct_s_mean",
    "jct_s_p50",
    "jct_s_p90",
    "jct_s_p99",
    "makespan_s",
    "jct_plus_makespan_s",
    "weighted_jct_s_mean",
    "executor_utilization",
    "tasks",
    "moves",
    "plans",
];
