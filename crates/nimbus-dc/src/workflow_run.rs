//! Workflows (DAGs of tasks exchanging data items) on a heterogeneous
//! system of multicore resources and a network: the execution model of
//! DSLab's DAG simulator (`dslab-dag`, commit a6c155e), so that plans made
//! here can be checked against its makespans on the `dslab-dags` files.
//!
//! - **Resources**: the system file's, plus a `master` (speed 1, one core,
//!   no memory) that runs two zero-work tasks DSLab adds: `input`, which
//!   produces the workflow's input items, and `output`, which reads every
//!   item no task reads. Workflow tasks may not run on the master.
//! - **Compute**: a task on `c` cores of a resource of speed `s` takes
//!   flops / s / speed-up(c); it holds its cores and memory meanwhile.
//! - **Data** (DSLab's `direct` mode): when a task ends, each output item
//!   is sent to every consumer placed on another resource, once per
//!   consumer (two consumers on one resource cause two transfers, as in
//!   DSLab); a task starts once all its inputs are on its resource.
//! - **Network**: a transfer waits the latency, then moves at the
//!   bandwidth (`ConstantBandwidth`) or at an equal share of one bandwidth
//!   with every transfer in flight (`SharedBandwidth`). Topology-aware
//!   networks are refused (DSLab itself fails on them with a master node).
//! - **Plans** (a static scheduler's output, see [`crate::heft`]): tasks
//!   with their resource and cores, in the order of planned start. Each
//!   core runs its tasks in plan order: a task starts when it heads the
//!   queue of every core it was given, those cores are free, its memory
//!   fits and its inputs are present. [`run_greedy`] instead asks DSLab's
//!   greedy `SimpleScheduler` at the start and after every task, and
//!   queues each decision on all cores of its resource.
//!
//! Time is integer nanoseconds; durations are rounded to the nearest
//! nanosecond, so makespans can differ from DSLab's floating-point ones
//! by a few nanoseconds per task on the critical path. Ties between events
//! at one instant are broken by creation order (DSLab's rule too), though
//! DSLab creates a few intermediate events per step that this does not.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use nimbus_sim::{EventQueue, SimDuration, SimTime};
use nimbus_trace::workflow::{CoresDependency, DataItem, Network, Resource, System, Task, Workflow};

/// The network model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Net {
    /// Latency, then size / bandwidth.
    Constant {
        /// MB/s.
        bandwidth: f64,
        /// Seconds.
        latency_s: f64,
    },
    /// Latency, then a fair share of one bandwidth.
    Shared {
        /// MB/s.
        bandwidth: f64,
        /// Seconds.
        latency_s: f64,
    },
}

impl Net {
    /// The bandwidth between two different resources, MB/s.
    pub fn bandwidth(&self) -> f64 {
        match *self {
            Net::Constant { bandwidth, .. } | Net::Shared { bandwidth, .. } => bandwidth,
        }
    }

    fn latency_s(&self) -> f64 {
        match *self {
            Net::Constant { latency_s, .. } | Net::Shared { latency_s, .. } => latency_s,
        }
    }
}

/// A workflow on a system, ready to plan and run.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Resources: the system's, then the master.
    pub resources: Vec<Resource>,
    /// The network.
    pub net: Net,
    /// Tasks: the workflow's, then `input` and `output` where needed
    /// (from index [`Instance::added`] on; they run on the master only).
    pub tasks: Vec<Task>,
    /// Items, their producers and consumers including the added tasks.
    pub items: Vec<DataItem>,
    /// The first added task (the workflow's task count).
    pub added: usize,
}

/// Why a workflow cannot run on a system.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// A network model this runtime does not have.
    #[error("the {0} network model is not supported here (ConstantBandwidth and SharedBandwidth are)")]
    UnsupportedNetwork(&'static str),
    /// A task no resource can hold.
    #[error("task `{task}` needs {cores} cores and {memory_mb} MB, more than any resource has")]
    TooBig {
        /// The task.
        task: String,
        /// Its cores.
        cores: u32,
        /// Its memory.
        memory_mb: u64,
    },
    /// A plan that does not place every task once on a resource it fits.
    #[error("invalid plan: {0}")]
    Plan(String),
    /// A workflow whose tasks depend on each other in a cycle.
    #[error("the workflow has a cycle through task `{0}`")]
    Cyclic(String),
}

impl Instance {
    /// Adds the master and DSLab's input and output tasks; refuses a
    /// cyclic workflow and a task no resource can hold.
    pub fn new(workflow: &Workflow, system: &System) -> Result<Instance, RunError> {
        let net = match system.network {
            Network::ConstantBandwidth { bandwidth, latency_us } => {
                Net::Constant { bandwidth, latency_s: latency_us * 1e-6 }
            }
            Network::SharedBandwidth { bandwidth, latency_us } => {
                Net::Shared { bandwidth, latency_s: latency_us * 1e-6 }
            }
            Network::TopologyAware { .. } => return Err(RunError::UnsupportedNetwork("TopologyAware")),
        };
        let mut resources = system.resources.clone();
        resources.push(Resource { name: "master".into(), speed: 1.0, cores: 1, memory_mb: 0 });
        let workers = &resources[..resources.len() - 1];
        if let Some(t) = workflow
            .tasks
            .iter()
            .find(|t| !workers.iter().any(|r| r.cores >= t.min_cores && r.memory_mb >= t.memory_mb))
        {
            return Err(RunError::TooBig { task: t.name.clone(), cores: t.min_cores, memory_mb: t.memory_mb });
        }
        let mut tasks = workflow.tasks.clone();
        let mut items = workflow.data.clone();
        let added = tasks.len();
        let inputs: Vec<usize> = (0..items.len()).filter(|&i| items[i].producer.is_none()).collect();
        let outputs: Vec<usize> = (0..items.len()).filter(|&i| items[i].consumers.is_empty()).collect();
        if !inputs.is_empty() {
            let id = tasks.len();
            tasks.push(Task::single_core("input", 0.0));
            for &i in &inputs {
                items[i].producer = Some(id);
                tasks[id].outputs.push(i);
            }
        }
        if !outputs.is_empty() {
            let id = tasks.len();
            tasks.push(Task::single_core("output", 0.0));
            for &i in &outputs {
                items[i].consumers.push(id);
                tasks[id].inputs.push(i);
            }
        }
        let inst = Instance { resources, net, tasks, items, added };
        if let Err(stuck) = nimbus_trace::dag::topological_order(&inst.children()) {
            return Err(RunError::Cyclic(inst.tasks[stuck[0]].name.clone()));
        }
        Ok(inst)
    }

    /// The master's index.
    pub fn master(&self) -> usize {
        self.resources.len() - 1
    }

    /// Whether `task` may run on `resource`.
    pub fn allowed(&self, task: usize, resource: usize) -> bool {
        (task >= self.added) == (resource == self.master())
    }

    /// Each task's children (through the items it writes), ascending.
    pub fn children(&self) -> Vec<Vec<usize>> {
        self.tasks
            .iter()
            .map(|t| {
                let mut c: Vec<usize> =
                    t.outputs.iter().flat_map(|&i| self.items[i].consumers.iter().copied()).collect();
                c.sort_unstable();
                c.dedup();
                c
            })
            .collect()
    }

    /// Seconds `task` computes on `resource` with its fewest cores.
    pub fn compute_s(&self, task: usize, resource: usize) -> f64 {
        let t = &self.tasks[task];
        t.flops / self.resources[resource].speed / speedup(t.cores_dependency, t.min_cores)
    }
}

/// Speed-up on `cores` cores (DSLab's `CoresDependency`).
pub fn speedup(dependency: CoresDependency, cores: u32) -> f64 {
    let c = f64::from(cores);
    match dependency {
        CoresDependency::Linear => c,
        CoresDependency::LinearWithFixed(fixed) => 1.0 / (fixed + (1.0 - fixed) / c),
    }
}

/// One task of a static plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The task.
    pub task: usize,
    /// Its resource.
    pub resource: usize,
    /// The cores it was given (indices within the resource).
    pub cores: Vec<u32>,
    /// Planned start and finish, seconds (the planner's estimate).
    pub start_s: f64,
    /// Planned finish.
    pub finish_s: f64,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Time of the last event (DSLab's reported makespan).
    pub makespan: SimTime,
    /// Each task's start and end.
    pub spans: Vec<(SimTime, SimTime)>,
    /// Each task's resource and the cores it ran on.
    pub placement: Vec<(usize, Vec<u32>)>,
    /// Data transfers made.
    pub transfers: u64,
    /// MB moved.
    pub moved_mb: f64,
}

enum Event {
    TaskDone(usize),
    /// A transfer's latency is over: it starts moving data.
    TransferMoving(usize),
    /// A constant-bandwidth transfer is done.
    TransferDone(usize),
    /// The shared link's next completion, valid for this generation.
    SharedDone(u64),
}

struct Transfer {
    item: usize,
    to: usize,
}

/// Fair sharing of one bandwidth by virtual work (MB each transfer has
/// been offered since the link was last idle), as DSLab's model does.
struct SharedLink {
    bandwidth: f64,
    /// (finish work, transfer) in flight.
    active: BTreeSet<(OrdF64, usize)>,
    work: f64,
    last: SimTime,
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF64(f64);
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl SharedLink {
    fn per_transfer(&self) -> f64 {
        self.bandwidth / self.active.len().max(1) as f64
    }

    fn advance(&mut self, now: SimTime) {
        if !self.active.is_empty() {
            self.work += now.since(self.last).as_secs_f64() * self.per_transfer();
        }
        self.last = now;
    }

    /// The next completion's time, bumping the generation.
    fn next(&mut self, now: SimTime) -> Option<(SimTime, u64)> {
        self.generation += 1;
        let &(OrdF64(finish), _) = self.active.first()?;
        Some((now + seconds((finish - self.work).max(0.0) / self.per_transfer()), self.generation))
    }
}

/// A scheduling decision: run `task` on `resource` with `need` cores,
/// taken from `cores` (the planned ones, or all of the resource's).
struct Action {
    task: usize,
    resource: usize,
    need: u32,
    cores: Vec<u32>,
}

/// Who decides.
enum Mode<'a> {
    /// A static plan, all actions at time 0.
    Static(&'a [Placement]),
    /// DSLab's `SimpleScheduler`, called at the start and after every task
    /// ends.
    Greedy,
}

struct Runtime<'a> {
    inst: &'a Instance,
    greedy: bool,
    events: EventQueue<Event>,
    actions: Vec<Action>,
    started: Vec<bool>,
    /// Per resource, per core: action indices in the order given.
    queues: Vec<Vec<VecDeque<usize>>>,
    free_cores: Vec<BTreeSet<u32>>,
    free_memory: Vec<u64>,
    /// Each task's resource once decided (`usize::MAX` before).
    location: Vec<usize>,
    /// The cores each task runs or ran on.
    ran_on: Vec<Vec<u32>>,
    /// `present[r * items + i]`: item i is on resource r.
    present: Vec<bool>,
    /// Where each item was produced.
    produced_at: Vec<Option<usize>>,
    /// Inputs produced so far, per task, and the tasks all of whose
    /// inputs are produced but that are not yet scheduled.
    inputs_ready: Vec<usize>,
    ready: BTreeSet<usize>,
    transfers: Vec<Transfer>,
    link: Option<SharedLink>,
    spans: Vec<(SimTime, SimTime)>,
    last_event: SimTime,
    moved_mb: f64,
}

/// Runs a static plan to completion.
pub fn run(inst: &Instance, plan: &[Placement]) -> Result<RunResult, RunError> {
    check_plan(inst, plan)?;
    simulate(inst, Mode::Static(plan))
}

/// Runs the workflow under DSLab's `SimpleScheduler`: whenever the run
/// starts or a task ends, every ready task not yet placed (in task order)
/// goes to the first resource with enough cores and memory not held by
/// running tasks, taking as many of its free cores as it can use; its
/// inputs are sent there at once.
pub fn run_greedy(inst: &Instance) -> Result<RunResult, RunError> {
    simulate(inst, Mode::Greedy)
}

fn simulate(inst: &Instance, mode: Mode<'_>) -> Result<RunResult, RunError> {
    let link = match inst.net {
        Net::Shared { bandwidth, .. } => {
            Some(SharedLink { bandwidth, active: BTreeSet::new(), work: 0.0, last: SimTime::ZERO, generation: 0 })
        }
        Net::Constant { .. } => None,
    };
    let inputs_ready = vec![0; inst.tasks.len()];
    let ready: BTreeSet<usize> = (0..inst.tasks.len()).filter(|&t| inst.tasks[t].inputs.is_empty()).collect();
    let mut rt = Runtime {
        inst,
        greedy: matches!(mode, Mode::Greedy),
        events: EventQueue::new(),
        actions: Vec::new(),
        started: Vec::new(),
        queues: inst.resources.iter().map(|r| vec![VecDeque::new(); r.cores as usize]).collect(),
        free_cores: inst.resources.iter().map(|r| (0..r.cores).collect()).collect(),
        free_memory: inst.resources.iter().map(|r| r.memory_mb).collect(),
        location: vec![usize::MAX; inst.tasks.len()],
        ran_on: vec![Vec::new(); inst.tasks.len()],
        present: vec![false; inst.resources.len() * inst.items.len()],
        produced_at: vec![None; inst.items.len()],
        inputs_ready,
        ready,
        transfers: Vec::new(),
        link,
        spans: vec![(SimTime::ZERO, SimTime::ZERO); inst.tasks.len()],
        last_event: SimTime::ZERO,
        moved_mb: 0.0,
    };
    let first: Vec<Action> = match mode {
        Mode::Static(plan) => plan
            .iter()
            .map(|p| Action {
                task: p.task,
                resource: p.resource,
                need: inst.tasks[p.task].min_cores,
                cores: p.cores.clone(),
            })
            .collect(),
        Mode::Greedy => rt.greedy_actions(),
    };
    rt.process(first);
    while let Some((now, event)) = rt.events.pop() {
        rt.last_event = now;
        match event {
            Event::TaskDone(task) => rt.task_done(task),
            Event::TransferMoving(t) => match &mut rt.link {
                None => {
                    let size = inst.items[rt.transfers[t].item].size_mb;
                    rt.events.schedule_after(seconds(size / inst.net.bandwidth()), Event::TransferDone(t));
                }
                Some(link) => {
                    link.advance(now);
                    let size = inst.items[rt.transfers[t].item].size_mb;
                    link.active.insert((OrdF64(link.work + size), t));
                    if let Some((at, g)) = link.next(now) {
                        rt.events.schedule(at, Event::SharedDone(g));
                    }
                }
            },
            Event::TransferDone(t) => rt.arrived(t),
            Event::SharedDone(g) => {
                let link = rt.link.as_mut().expect("a shared link");
                if g != link.generation {
                    continue;
                }
                link.advance(now);
                let (_, t) = link.active.pop_first().expect("a transfer in flight");
                if let Some((at, g)) = link.next(now) {
                    rt.events.schedule(at, Event::SharedDone(g));
                }
                rt.arrived(t);
            }
        }
    }
    if let Some(k) = rt.started.iter().position(|s| !s) {
        return Err(RunError::Plan(format!(
            "task `{}` never started (its cores' queues deadlock)",
            inst.tasks[rt.actions[k].task].name
        )));
    }
    if let Some(t) = (0..inst.tasks.len()).find(|&t| rt.location[t] == usize::MAX) {
        return Err(RunError::Plan(format!("task `{}` was never scheduled", inst.tasks[t].name)));
    }
    Ok(RunResult {
        makespan: rt.last_event,
        placement: rt.location.iter().copied().zip(rt.ran_on).collect(),
        spans: rt.spans,
        transfers: rt.transfers.len() as u64,
        moved_mb: rt.moved_mb,
    })
}

fn seconds(s: f64) -> SimDuration {
    SimDuration::from_secs_f64(s)
}

fn check_plan(inst: &Instance, plan: &[Placement]) -> Result<(), RunError> {
    let mut seen = vec![false; inst.tasks.len()];
    for p in plan {
        let bad = |m: &str| Err(RunError::Plan(format!("task {}: {m}", p.task)));
        if p.task >= inst.tasks.len() || seen[p.task] {
            return bad("unknown or placed twice");
        }
        seen[p.task] = true;
        let t = &inst.tasks[p.task];
        if p.resource >= inst.resources.len() || !inst.allowed(p.task, p.resource) {
            return bad("not allowed on its resource");
        }
        let r = &inst.resources[p.resource];
        let distinct: BTreeSet<u32> = p.cores.iter().copied().collect();
        if p.cores.len() != t.min_cores as usize
            || distinct.len() != p.cores.len()
            || p.cores.iter().any(|&c| c >= r.cores)
        {
            return bad("wrong cores");
        }
        if t.memory_mb > r.memory_mb {
            return bad("does not fit the resource's memory");
        }
    }
    match seen.iter().position(|s| !s) {
        Some(t) => Err(RunError::Plan(format!("task `{}` is not placed", inst.tasks[t].name))),
        None => Ok(()),
    }
}

impl Runtime<'_> {
    /// DSLab's `process_actions`: serve every resource, then take the new
    /// actions in order (send the inputs already produced elsewhere,
    /// queue on the allowed cores, serve that resource).
    fn process(&mut self, new: Vec<Action>) {
        for r in 0..self.inst.resources.len() {
            self.serve(r);
        }
        for action in new {
            let (task, r) = (action.task, action.resource);
            self.location[task] = r;
            self.ready.remove(&task);
            for &i in &self.inst.tasks[task].inputs {
                if let Some(from) = self.produced_at[i].filter(|&from| from != r) {
                    self.send(i, from, r);
                }
            }
            let k = self.actions.len();
            for &c in &action.cores {
                self.queues[r][c as usize].push_back(k);
            }
            self.actions.push(action);
            self.started.push(false);
            self.serve(r);
        }
    }

    /// DSLab's `SimpleScheduler::schedule`.
    fn greedy_actions(&mut self) -> Vec<Action> {
        // Cores not held by running tasks: what the scheduler sees.
        let mut cores: Vec<u32> =
            self.free_cores.iter().map(|f| u32::try_from(f.len()).expect("cores fit u32")).collect();
        let mut memory = self.free_memory.clone();
        let mut out = Vec::new();
        for &task in &self.ready {
            let t = &self.inst.tasks[task];
            for (r, res) in self.inst.resources.iter().enumerate() {
                if !self.inst.allowed(task, r) || cores[r] < t.min_cores || memory[r] < t.memory_mb {
                    continue;
                }
                let take = cores[r].min(t.max_cores);
                cores[r] -= take;
                memory[r] -= t.memory_mb;
                out.push(Action { task, resource: r, need: take, cores: (0..res.cores).collect() });
                break;
            }
        }
        out
    }

    /// DSLab's `process_resource_queue`: start every action that heads
    /// the queues of enough free cores, has its memory and its inputs, in
    /// action order, until nothing more starts.
    fn serve(&mut self, r: usize) {
        let items = self.inst.items.len();
        loop {
            // Actions heading a free core's queue and able to start, with
            // those cores.
            let mut heads: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            for &core in &self.free_cores[r] {
                let queue = &mut self.queues[r][core as usize];
                while queue.front().is_some_and(|&k| self.started[k]) {
                    queue.pop_front();
                }
                let Some(&k) = queue.front() else { continue };
                let task = &self.inst.tasks[self.actions[k].task];
                if task.memory_mb > self.free_memory[r] {
                    continue;
                }
                if !task.inputs.iter().all(|&i| self.present[r * items + i]) {
                    continue;
                }
                heads.entry(k).or_default().push(core);
            }
            let mut started_any = false;
            for (k, mut cores) in heads {
                let (task, need) = (self.actions[k].task, self.actions[k].need);
                let memory = self.inst.tasks[task].memory_mb;
                cores.truncate(need as usize);
                if cores.len() < need as usize || memory > self.free_memory[r] {
                    continue;
                }
                for &c in &cores {
                    self.queues[r][c as usize].pop_front();
                    self.free_cores[r].remove(&c);
                }
                self.free_memory[r] -= memory;
                self.started[k] = true;
                let now = self.events.now();
                let t = &self.inst.tasks[task];
                let compute = t.flops / self.inst.resources[r].speed / speedup(t.cores_dependency, need);
                let end = now + seconds(compute);
                self.spans[task] = (now, end);
                self.ran_on[task] = cores;
                self.events.schedule(end, Event::TaskDone(task));
                started_any = true;
            }
            if !started_any {
                break;
            }
        }
    }

    fn send(&mut self, item: usize, from: usize, to: usize) {
        debug_assert!(self.present[from * self.inst.items.len() + item]);
        self.transfers.push(Transfer { item, to });
        self.moved_mb += self.inst.items[item].size_mb;
        let id = self.transfers.len() - 1;
        let at = self.events.now() + seconds(self.inst.net.latency_s());
        self.events.schedule(at, Event::TransferMoving(id));
    }

    fn task_done(&mut self, task: usize) {
        let r = self.location[task];
        self.free_cores[r].extend(self.ran_on[task].iter().copied());
        self.free_memory[r] += self.inst.tasks[task].memory_mb;
        let items = self.inst.items.len();
        for &i in &self.inst.tasks[task].outputs {
            for &c in &self.inst.items[i].consumers {
                self.inputs_ready[c] += 1;
                if self.inputs_ready[c] == self.inst.tasks[c].inputs.len() && self.location[c] == usize::MAX {
                    self.ready.insert(c);
                }
            }
        }
        for &i in &self.inst.tasks[task].outputs {
            self.present[r * items + i] = true;
            self.produced_at[i] = Some(r);
        }
        for &i in &self.inst.tasks[task].outputs {
            for &c in &self.inst.items[i].consumers {
                let to = self.location[c];
                if to != usize::MAX && to != r {
                    self.send(i, r, to);
                }
            }
        }
        let new = if self.greedy { self.greedy_actions() } else { Vec::new() };
        self.process(new);
    }

    fn arrived(&mut self, t: usize) {
        let Transfer { item, to } = self.transfers[t];
        self.present[to * self.inst.items.len() + item] = true;
        self.serve(to);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use nimbus_trace::input::Source;
    use nimbus_trace::workflow::{read_dslab_system, read_dslab_yaml};

    use super::*;
    use crate::heft;

    fn instance(dag: &str, network: &str) -> Instance {
        let wf = read_dslab_yaml(Source::bytes(Path::new("dag"), dag.as_bytes())).expect("dag");
        let sys = format!(
            "resources:\n  - name: a\n    speed: 10\n    cores: 1\n    memory: 100\n  - name: b\n    speed: 20\n    cores: 1\n    memory: 100\nnetwork:\n{network}"
        );
        let sys = read_dslab_system(Source::bytes(Path::new("sys"), sys.as_bytes())).expect("system");
        Instance::new(&wf, &sys).expect("instance")
    }

    const CHAIN: &str = "inputs:\n  - name: in\n    size: 100\ntasks:\n  - name: t1\n    flops: 100\n    inputs:\n      - in\n    outputs:\n      - name: o1\n        size: 50\n  - name: t2\n    flops: 200\n    inputs:\n      - o1\n    outputs:\n      - name: r\n        size: 0\n";

    #[test]
    fn a_chain_by_hand() {
        // Input on the master at 0; `in` reaches b after 100 MB / 100 MB/s
        // = 1 s (a: same, but b computes twice as fast); t1 on b 1-6 s; t2
        // stays on b (6-16 s; on a it would wait 0.5 s for o1 and run
        // 20 s); `r` (0 MB) goes back to the master; output at 16 s.
        let inst = instance(CHAIN, "  model: ConstantBandwidth\n  bandwidth: 100\n  latency: 0\n");
        assert_eq!(inst.tasks.len(), 4);
        assert_eq!((inst.tasks[2].name.as_str(), inst.tasks[3].name.as_str()), ("input", "output"));
        let plan = heft::plan(&inst);
        let on: Vec<(usize, usize)> = plan.iter().map(|p| (p.task, p.resource)).collect();
        assert_eq!(on, vec![(2, 2), (0, 1), (1, 1), (3, 2)]);
        assert_eq!(plan.iter().map(|p| p.finish_s).collect::<Vec<_>>(), vec![0.0, 6.0, 16.0, 16.0]);
        let r = run(&inst, &plan).expect("runs");
        assert_eq!(r.makespan, SimTime::from_secs(16));
        assert_eq!(r.spans[0], (SimTime::from_secs(1), SimTime::from_secs(6)));
        // Latency (1 ms) delays every transfer in the run but not in the
        // plan: `in` and `r` cross the network, o1 stays on b.
        let inst = instance(CHAIN, "  model: ConstantBandwidth\n  bandwidth: 100\n  latency: 1000\n");
        let plan = heft::plan(&inst);
        assert_eq!(plan.last().map(|p| p.finish_s), Some(16.0));
        assert_eq!(run(&inst, &plan).expect("runs").makespan, SimTime::from_nanos(16_002_000_000));
    }

    #[test]
    fn a_shared_link_halves_concurrent_transfers() {
        // Two 100 MB inputs of one task cross together: 1 s each alone,
        // 2 s when they share 100 MB/s. Then t runs 100 / 20 = 5 s on b.
        let dag = "inputs:\n  - name: x\n    size: 100\n  - name: y\n    size: 100\ntasks:\n  - name: t\n    flops: 100\n    inputs:\n      - x\n      - y\n    outputs: []\n";
        let constant = instance(dag, "  model: ConstantBandwidth\n  bandwidth: 100\n  latency: 0\n");
        let shared = instance(dag, "  model: SharedBandwidth\n  bandwidth: 100\n  latency: 0\n");
        let c = run(&constant, &heft::plan(&constant)).expect("runs");
        let s = run(&shared, &heft::plan(&shared)).expect("runs");
        assert_eq!((c.makespan, s.makespan), (SimTime::from_secs(6), SimTime::from_secs(7)));
        assert_eq!((c.transfers, s.moved_mb), (2, 200.0));
    }

    #[test]
    fn cyclic_and_oversized_workflows_are_refused() {
        let inst = instance(CHAIN, "  model: ConstantBandwidth\n  bandwidth: 100\n  latency: 0\n");
        let sys = System {
            resources: vec![nimbus_trace::workflow::Resource { name: "a".into(), speed: 1.0, cores: 1, memory_mb: 10 }],
            network: Network::ConstantBandwidth { bandwidth: 1.0, latency_us: 0.0 },
        };
        let mut wf = read_dslab_yaml(Source::bytes(Path::new("dag"), CHAIN.as_bytes())).expect("dag");
        assert!(Instance::new(&wf, &sys).is_ok());
        // t2's output feeds t1: a cycle the readers would refuse.
        let r = wf.tasks[1].outputs[0];
        wf.data[r].consumers.push(0);
        wf.tasks[0].inputs.push(r);
        assert!(matches!(Instance::new(&wf, &sys), Err(RunError::Cyclic(_))));
        let mut big = read_dslab_yaml(Source::bytes(Path::new("dag"), CHAIN.as_bytes())).expect("dag");
        big.tasks[0].memory_mb = 11;
        assert!(matches!(Instance::new(&big, &sys), Err(RunError::TooBig { .. })));
        assert_eq!(inst.children()[0], vec![1]);
    }

    #[test]
    fn bad_plans_are_refused() {
        let inst = instance(CHAIN, "  model: ConstantBandwidth\n  bandwidth: 100\n  latency: 0\n");
        let plan = heft::plan(&inst);
        assert!(run(&inst, &plan[1..]).is_err());
        let mut on_master = plan.clone();
        on_master[1].resource = inst.master();
        assert!(run(&inst, &on_master).is_err());
        let mut twice = plan.clone();
        twice[2].task = twice[1].task;
        assert!(run(&inst, &twice).is_err());
        let mut bad_core = plan;
        bad_core[1].cores = vec![3];
        assert!(run(&inst, &bad_core).is_err());
    }
}
