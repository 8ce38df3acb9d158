//! A task cluster: nodes with slots and per-node queues, jobs as bags of
//! tasks, and schedulers that talk to nodes by messages.
//!
//! Nodes run one task per slot. A task or a reservation sent to a node
//! arrives half a round trip later and waits in the node's queue, in
//! arrival order or, when the scheduler asks for reordering, smallest job
//! (total work) first. A reservation at the head of a queue holds a free
//! slot and asks its scheduler for a task (late binding); the answer, a
//! task of the job or "none left", comes a round trip later. A bound task
//! (a central scheduler's decision) goes straight to a free slot.
//!
//! A job's completion time (JCT) is its last task's end minus its arrival;
//! its tail wait is the latest start among its tasks minus its arrival.
//! Task durations are known to the schedulers that use estimates.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Table};
use nimbus_sim::queue::EventQueue;
use nimbus_sim::rng::SimRng;
use nimbus_sim::time::{SimDuration, SimTime};

/// One job: tasks that may run in parallel.
#[derive(Debug, Clone, PartialEq)]
pub struct BagJob {
    /// Arrival.
    pub at: SimTime,
    /// Task durations.
    pub tasks: Vec<SimDuration>,
}

impl BagJob {
    /// Total work, ns.
    pub fn work_ns(&self) -> u64 {
        self.tasks.iter().map(|d| d.as_nanos()).fold(0u64, u64::saturating_add)
    }
}

/// The nodes and the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Nodes {
    /// Number of nodes.
    pub count: usize,
    /// Slots (cores) per node.
    pub slots: u32,
    /// Round-trip time between a scheduler and a node.
    pub rtt: SimDuration,
}

impl Nodes {
    /// One way of a scheduler-node round trip.
    pub fn half_rtt(&self) -> SimDuration {
        SimDuration::from_nanos(self.rtt.as_nanos() / 2)
    }
}

/// The order of a node's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOrder {
    /// Arrival order.
    Fifo,
    /// Smallest job (total work) first, then arrival.
    SmallestJobFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Task { job: usize, task: usize },
    Reservation { job: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    /// Smaller first.
    priority: u64,
    seq: u64,
    entry: EntryKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EntryKey {
    job: usize,
    /// `usize::MAX` for a reservation.
    task: usize,
}

impl EntryKey {
    fn of(e: Entry) -> Self {
        match e {
            Entry::Task { job, task } => EntryKey { job, task },
            Entry::Reservation { job } => EntryKey { job, task: usize::MAX },
        }
    }

    fn entry(self) -> Entry {
        if self.task == usize::MAX {
            Entry::Reservation { job: self.job }
        } else {
            Entry::Task { job: self.job, task: self.task }
        }
    }
}

struct Node {
    free: u32,
    /// Slots held by reservations waiting for their scheduler's answer.
    held: u32,
    queue: BinaryHeap<Reverse<Queued>>,
    /// End times of the running tasks (for the FIFO projection).
    running: Vec<SimTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Arrive(usize),
    Deliver { node: usize, job: usize, task: usize, expected: Option<SimTime> },
    Bind { node: usize, job: usize, task: usize },
    TaskEnd { node: usize, job: usize, end_index: usize },
    AskTask { node: usize, job: usize },
    Answer { node: usize, job: usize, task: Option<usize> },
    Bounce { job: usize, task: usize },
    Tick,
}

/// What a scheduler may do and see.
pub struct Ctx<'a> {
    now: SimTime,
    nodes: &'a [Node],
    spec: &'a Nodes,
    jobs: &'a [BagJob],
    queue: &'a mut EventQueue<Event>,
    counters: &'a mut Counters,
    /// The scheduler's random stream.
    pub rng: &'a mut SimRng,
    reserved: &'a mut [u32],
}

impl Ctx<'_> {
    /// Now.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The cluster.
    pub fn nodes(&self) -> &Nodes {
        self.spec
    }

    /// The jobs (arrival and task durations).
    pub fn jobs(&self) -> &[BagJob] {
        self.jobs
    }

    /// When each slot of `node` would free up if its queue ran in arrival
    /// order with the durations known, ascending. Queued reservations count
    /// as nothing; a slot held for a scheduler's answer frees a round trip
    /// from now.
    pub fn projected_slots(&self, node: usize) -> Vec<SimTime> {
        project(&self.nodes[node], self.spec, self.now, self.jobs)
    }

    /// Sends task `task` of `job` to `node`'s queue; with `expected`, the
    /// node refuses it (it comes back to [`ClusterScheduler::on_bounce`])
    /// when its projected start is later than that.
    pub fn send_task(&mut self, node: usize, job: usize, task: usize, expected: Option<SimTime>) {
        self.counters.messages += 1;
        self.queue.schedule(self.now + self.spec.half_rtt(), Event::Deliver { node, job, task, expected });
    }

    /// Places a reservation for `job` in `node`'s queue.
    pub fn send_reservation(&mut self, node: usize, job: usize) {
        self.counters.messages += 1;
        self.counters.reservations += 1;
        self.queue
            .schedule(self.now + self.spec.half_rtt(), Event::Deliver { node, job, task: usize::MAX, expected: None });
    }

    /// Binds a task to a free slot of `node` (the slot is promised now).
    pub fn bind(&mut self, node: usize, job: usize, task: usize) {
        self.reserved[node] += 1;
        self.counters.messages += 1;
        self.queue.schedule(self.now + self.spec.half_rtt(), Event::Bind { node, job, task });
    }

    /// Asks for [`ClusterScheduler::on_tick`] at `at`.
    pub fn tick_at(&mut self, at: SimTime) {
        self.queue.schedule(at.max(self.now), Event::Tick);
    }
}

fn project(node: &Node, spec: &Nodes, now: SimTime, jobs: &[BagJob]) -> Vec<SimTime> {
    let mut free: Vec<SimTime> = node.running.iter().copied().filter(|&t| t != SimTime::MAX).collect();
    free.extend(std::iter::repeat_n(now + spec.rtt, node.held as usize));
    free.extend(std::iter::repeat_n(now, (spec.slots as usize).saturating_sub(free.len())));
    let mut heap: BinaryHeap<Reverse<SimTime>> = free.into_iter().map(Reverse).collect();
    let mut queued: Vec<&Queued> = node.queue.iter().map(|Reverse(q)| q).collect();
    queued.sort();
    for q in queued {
        if let Entry::Task { job, task } = q.entry.entry()
            && let Some(Reverse(t)) = heap.pop()
        {
            heap.push(Reverse(t.max(now) + jobs[job].tasks[task]));
        }
    }
    let mut out: Vec<SimTime> = heap.into_iter().map(|Reverse(t)| t.max(now)).collect();
    out.sort();
    out
}

/// A scheduling layer of a task cluster.
pub trait ClusterScheduler {
    /// How nodes order their queues.
    fn queue_order(&self) -> QueueOrder {
        QueueOrder::Fifo
    }
    /// Job `job` arrives.
    fn on_arrival(&mut self, job: usize, ctx: &mut Ctx<'_>);
    /// `node`, holding a slot for a reservation of `job`, asks for a task.
    fn on_ask(&mut self, _node: usize, _job: usize, _ctx: &mut Ctx<'_>) -> Option<usize> {
        None
    }
    /// A node refused task `task` of `job` (its queue was longer than
    /// expected).
    fn on_bounce(&mut self, _job: usize, _task: usize, _ctx: &mut Ctx<'_>) {}
    /// A slot of `node` freed up.
    fn on_slot_free(&mut self, _node: usize, _ctx: &mut Ctx<'_>) {}
    /// A tick asked for with [`Ctx::tick_at`].
    fn on_tick(&mut self, _ctx: &mut Ctx<'_>) {}
    /// Counters of its own for the results (name, value).
    fn counters(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}

/// Message counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Scheduler-node messages.
    pub messages: u64,
    /// Reservations placed.
    pub reservations: u64,
    /// Tasks refused by nodes.
    pub bounces: u64,
    /// Events processed.
    pub events: u64,
}

struct JobProgress {
    started: u32,
    ended: u32,
    last_start: SimTime,
    finish: SimTime,
    busy_ns: u128,
}

/// One task as it ran (kept only when asked for: [`run_logged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRun {
    /// Job index.
    pub job: usize,
    /// Task index within the job.
    pub task: usize,
    /// Node.
    pub node: usize,
    /// Start.
    pub start: SimTime,
    /// End.
    pub end: SimTime,
}

/// Runs `jobs` (sorted by arrival) on `nodes`.
pub fn run(
    nodes_spec: &Nodes,
    jobs: &[BagJob],
    scheduler: &mut dyn ClusterScheduler,
    rng: SimRng,
    progress: &mut dyn FnMut(f64),
) -> RunOutput {
    simulate(nodes_spec, jobs, scheduler, rng, progress, None)
}

/// [`run`], also returning every task as it ran.
pub fn run_logged(
    nodes_spec: &Nodes,
    jobs: &[BagJob],
    scheduler: &mut dyn ClusterScheduler,
    rng: SimRng,
) -> (RunOutput, Vec<TaskRun>) {
    let mut log = Vec::new();
    let out = simulate(nodes_spec, jobs, scheduler, rng, &mut |_| {}, Some(&mut log));
    (out, log)
}

fn simulate(
    nodes_spec: &Nodes,
    jobs: &[BagJob],
    scheduler: &mut dyn ClusterScheduler,
    mut rng: SimRng,
    progress: &mut dyn FnMut(f64),
    mut log: Option<&mut Vec<TaskRun>>,
) -> RunOutput {
    let order = scheduler.queue_order();
    let mut nodes: Vec<Node> = (0..nodes_spec.count)
        .map(|_| Node { free: nodes_spec.slots, held: 0, queue: BinaryHeap::new(), running: Vec::new() })
        .collect();
    let mut reserved = vec![0u32; nodes_spec.count];
    let mut queue: EventQueue<Event> = EventQueue::with_capacity(jobs.len().min(1 << 20));
    let mut counters = Counters::default();
    let mut prog: Vec<JobProgress> = jobs
        .iter()
        .map(|_| JobProgress { started: 0, ended: 0, last_start: SimTime::ZERO, finish: SimTime::ZERO, busy_ns: 0 })
        .collect();
    let work: Vec<u64> = jobs.iter().map(BagJob::work_ns).collect();
    for (i, j) in jobs.iter().enumerate() {
        queue.schedule(j.at, Event::Arrive(i));
    }
    let total_tasks: u64 = jobs.iter().map(|j| j.tasks.len() as u64).sum();
    let mut ended_tasks = 0u64;
    let mut seq = 0u64;
    let mut finished_jobs = 0usize;

    macro_rules! ctx {
        ($now:expr) => {
            Ctx {
                now: $now,
                nodes: &nodes,
                spec: nodes_spec,
                jobs,
                queue: &mut queue,
                counters: &mut counters,
                rng: &mut rng,
                reserved: &mut reserved,
            }
        };
    }

    // Starts queued work on `node`'s free slots.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        node_idx: usize,
        nodes: &mut [Node],
        jobs: &[BagJob],
        queue: &mut EventQueue<Event>,
        prog: &mut [JobProgress],
        counters: &mut Counters,
        half_rtt: SimDuration,
        reserved: &[u32],
        log: &mut Option<&mut Vec<TaskRun>>,
    ) {
        let now = queue.now();
        let node = &mut nodes[node_idx];
        while node.free > reserved[node_idx] {
            let Some(Reverse(q)) = node.queue.pop() else { break };
            node.free -= 1;
            match q.entry.entry() {
                Entry::Task { job, task } => start_task(node_idx, node, job, task, jobs, queue, prog, now, log),
                Entry::Reservation { job } => {
                    node.held += 1;
                    counters.messages += 1;
                    queue.schedule(now + half_rtt, Event::AskTask { node: node_idx, job });
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_task(
        node_idx: usize,
        node: &mut Node,
        job: usize,
        task: usize,
        jobs: &[BagJob],
        queue: &mut EventQueue<Event>,
        prog: &mut [JobProgress],
        now: SimTime,
        log: &mut Option<&mut Vec<TaskRun>>,
    ) {
        let d = jobs[job].tasks[task];
        let end = now + d;
        if let Some(log) = log.as_deref_mut() {
            log.push(TaskRun { job, task, node: node_idx, start: now, end });
        }
        let end_index = match node.running.iter().position(|&t| t == SimTime::MAX) {
            Some(i) => {
                node.running[i] = end;
                i
            }
            None => {
                node.running.push(end);
                node.running.len() - 1
            }
        };
        let p = &mut prog[job];
        p.started += 1;
        p.last_start = p.last_start.max(now);
        p.busy_ns += u128::from(d.as_nanos());
        queue.schedule(end, Event::TaskEnd { node: node_idx, job, end_index });
    }

    while let Some((now, ev)) = queue.pop() {
        counters.events += 1;
        match ev {
            Event::Arrive(j) => scheduler.on_arrival(j, &mut ctx!(now)),
            Event::Deliver { node, job, task, expected } => {
                if let Some(exp) = expected {
                    let slots = project(&nodes[node], nodes_spec, now, jobs);
                    if slots.first().is_some_and(|&s| s > exp) {
                        counters.bounces += 1;
                        counters.messages += 1;
                        queue.schedule(now + nodes_spec.half_rtt(), Event::Bounce { job, task });
                        continue;
                    }
                }
                let entry = if task == usize::MAX { Entry::Reservation { job } } else { Entry::Task { job, task } };
                let priority = match order {
                    QueueOrder::Fifo => 0,
                    QueueOrder::SmallestJobFirst => work[job],
                };
                seq += 1;
                nodes[node].queue.push(Reverse(Queued { priority, seq, entry: EntryKey::of(entry) }));
                dispatch(
                    node,
                    &mut nodes,
                    jobs,
                    &mut queue,
                    &mut prog,
                    &mut counters,
                    nodes_spec.half_rtt(),
                    &reserved,
                    &mut log,
                );
            }
            Event::Bind { node, job, task } => {
                reserved[node] -= 1;
                let n = &mut nodes[node];
                // The slot was promised at the decision.
                n.free -= 1;
                start_task(node, n, job, task, jobs, &mut queue, &mut prog, now, &mut log);
            }
            Event::TaskEnd { node, job, end_index } => {
                nodes[node].running[end_index] = SimTime::MAX;
                nodes[node].free += 1;
                let p = &mut prog[job];
                p.ended += 1;
                p.finish = p.finish.max(now);
                ended_tasks += 1;
                if p.ended as usize == jobs[job].tasks.len() {
                    finished_jobs += 1;
                    if finished_jobs.is_multiple_of(256) {
                        progress(ended_tasks as f64 / total_tasks.max(1) as f64);
                    }
                }
                dispatch(
                    node,
                    &mut nodes,
                    jobs,
                    &mut queue,
                    &mut prog,
                    &mut counters,
                    nodes_spec.half_rtt(),
                    &reserved,
                    &mut log,
                );
                scheduler.on_slot_free(node, &mut ctx!(now));
            }
            Event::AskTask { node, job } => {
                let task = scheduler.on_ask(node, job, &mut ctx!(now));
                counters.messages += 1;
                queue.schedule(now + nodes_spec.half_rtt(), Event::Answer { node, job, task });
            }
            Event::Answer { node, job, task } => {
                let n = &mut nodes[node];
                n.held -= 1;
                match task {
                    Some(t) => start_task(node, n, job, t, jobs, &mut queue, &mut prog, now, &mut log),
                    None => {
                        n.free += 1;
                        dispatch(
                            node,
                            &mut nodes,
                            jobs,
                            &mut queue,
                            &mut prog,
                            &mut counters,
                            nodes_spec.half_rtt(),
                            &reserved,
                            &mut log,
                        );
                        scheduler.on_slot_free(node, &mut ctx!(now));
                    }
                }
            }
            Event::Bounce { job, task } => scheduler.on_bounce(job, task, &mut ctx!(now)),
            Event::Tick => scheduler.on_tick(&mut ctx!(now)),
        }
    }
    progress(1.0);
    report(nodes_spec, jobs, &prog, &counters, scheduler.counters())
}

fn report(
    nodes: &Nodes,
    jobs: &[BagJob],
    prog: &[JobProgress],
    counters: &Counters,
    extra: Vec<(&'static str, f64)>,
) -> RunOutput {
    let mut out = RunOutput::default();
    let (mut jct, mut tail) = (Vec::new(), Vec::new());
    let mut rows = Vec::with_capacity(jobs.len());
    let start = jobs.iter().map(|j| j.at).min().unwrap_or(SimTime::ZERO);
    let mut end = start;
    let mut busy: u128 = 0;
    let mut unfinished = 0usize;
    for (i, (j, p)) in jobs.iter().zip(prog).enumerate() {
        busy += p.busy_ns;
        let done = p.ended as usize == j.tasks.len();
        if done {
            end = end.max(p.finish);
            jct.push(p.finish.saturating_since(j.at).as_secs_f64());
            tail.push(p.last_start.saturating_since(j.at).as_secs_f64());
        } else {
            unfinished += 1;
        }
        rows.push(vec![
            Cell::Int(i64::try_from(i).unwrap_or(i64::MAX)),
            Cell::Float(j.at.as_secs_f64()),
            Cell::Int(i64::try_from(j.tasks.len()).unwrap_or(i64::MAX)),
            Cell::Float(j.work_ns() as f64 / 1e9),
            if done { Cell::Float(p.finish.saturating_since(j.at).as_secs_f64()) } else { Cell::Empty },
            if done { Cell::Float(p.last_start.saturating_since(j.at).as_secs_f64()) } else { Cell::Empty },
        ]);
    }
    if unfinished > 0 {
        out.notes.push(format!("{unfinished} of {} jobs never finished", jobs.len()));
    }
    let span = end.saturating_since(start).as_secs_f64();
    let capacity = span * nodes.count as f64 * f64::from(nodes.slots);
    let q = |v: &[f64], p: f64| nimbus_sim::stats::quantile(v, p);
    let m = |n: &str, v: f64, b: Better| Metric::new(n, v, b);
    let tasks: u64 = jobs.iter().map(|j| j.tasks.len() as u64).sum();
    out.metrics = vec![
        m("jobs", jobs.len() as f64, Better::Neither),
        m("jobs_finished", jct.len() as f64, Better::Higher),
        m("tasks", tasks as f64, Better::Neither),
        m("jct_s_mean", nimbus_sim::stats::mean(&jct), Better::Lower),
        m("jct_s_p50", q(&jct, 0.5), Better::Lower),
        m("jct_s_p99", q(&jct, 0.99), Better::Lower),
        m("tail_wait_s_mean", nimbus_sim::stats::mean(&tail), Better::Lower),
        m("tail_wait_s_p99", q(&tail, 0.99), Better::Lower),
        m("makespan_s", span, Better::Lower),
        m("utilization", if capacity > 0.0 { busy as f64 / 1e9 / capacity } else { f64::NAN }, Better::Neither),
        m("messages", counters.messages as f64, Better::Lower),
        m("reservations", counters.reservations as f64, Better::Neither),
        m("bounces", counters.bounces as f64, Better::Lower),
        m("events", counters.events as f64, Better::Neither),
    ];
    for (name, v) in extra {
        out.metrics.push(m(name, v, Better::Neither));
    }
    out.tables.push(Table {
        name: "jobs".into(),
        columns: ["job", "arrival_s", "tasks", "work_s", "jct_s", "tail_wait_s"].map(String::from).to_vec(),
        rows,
    });
    out
}

/// Every metric [`run`] reports (schedulers may add their own counters).
pub const METRICS: &[&str] = &[
    "jobs",
    "jobs_finished",
    "tasks",
    "jct_s_mean",
    "jct_s_p50",
    "jct_s_p99",
    "tail_wait_s_mean",
    "tail_wait_s_p99",
    "makespan_s",
    "utilization",
    "messages",
    "reservations",
    "bounces",
    "events",
];

/// A queue of a job's tasks not yet given out, longest first.
#[derive(Debug, Clone, Default)]
pub struct PendingTasks {
    by_job: std::collections::BTreeMap<usize, VecDeque<usize>>,
}

impl PendingTasks {
    /// Adds every task of `job`, longest first.
    pub fn add(&mut self, job: usize, durations: &[SimDuration]) {
        let mut order: Vec<usize> = (0..durations.len()).collect();
        order.sort_by(|&a, &b| durations[b].cmp(&durations[a]).then(a.cmp(&b)));
        self.by_job.insert(job, order.into());
    }

    /// Adds one task back.
    pub fn push(&mut self, job: usize, task: usize) {
        self.by_job.entry(job).or_default().push_back(task);
    }

    /// The next task of `job`, if any.
    pub fn next(&mut self, job: usize) -> Option<usize> {
        let q = self.by_job.get_mut(&job)?;
        let t = q.pop_front();
        if q.is_empty() {
            self.by_job.remove(&job);
        }
        t
    }
}
