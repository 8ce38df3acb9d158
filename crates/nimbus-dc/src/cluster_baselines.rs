//! The schedulers Murmuration is compared with on a task cluster
//! (carbon-autoscaling-tail.md §6.1).
//!
//! - `k8s-default`: the Kubernetes default scheduler as its documentation
//!   describes it: one central scheduler takes pods from its queue in
//!   order (equal priorities, so FIFO), filters the nodes with a free slot,
//!   scores them with LeastAllocated (the most free slots) — with one
//!   resource BalancedAllocation scores every node alike — and binds the
//!   pod to the best, ties broken by a fixed random order of the nodes. A
//!   pod that fits nowhere waits at the head of the queue until a slot
//!   frees. Binding a pod is a call to the API server, and kube-scheduler's
//!   client is limited to 50 queries/s by default (its `clientConnection`
//!   `qps`; the burst of 100 is not modelled): one pod every `decision_ms`
//!   (20). Pods never queue at nodes.
//! - `sparrow`: Sparrow's batch sampling with late binding (Ousterhout et
//!   al., SOSP'13): for a job of k tasks, reservations on d·k randomly
//!   probed nodes (d = 2); a node whose queue reaches a reservation holds
//!   a slot and asks the job's scheduler for a task, which answers with the
//!   job's next task (longest first) or none. Schedulers share no state,
//!   so their number does not matter.

use std::collections::{BTreeSet, VecDeque};

use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::rng::SimRng;
use nimbus_sim::time::{SimDuration, SimTime};

use crate::cluster::{ClusterScheduler, Ctx, PendingTasks};

/// `count` distinct random nodes of `n` (all of them, repeated, when
/// `count` exceeds `n`).
pub(crate) fn sample_nodes(n: usize, count: usize, rng: &mut SimRng) -> Vec<usize> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let want = (count - out.len()).min(n);
        // Floyd's algorithm: `want` distinct values of 0..n.
        let mut chosen = BTreeSet::new();
        for j in n - want..n {
            let t = rng.index(j + 1);
            if !chosen.insert(t) {
                chosen.insert(j);
            }
        }
        let mut batch: Vec<usize> = chosen.into_iter().collect();
        rng.shuffle(&mut batch);
        out.extend(batch);
    }
    out
}

/// The Kubernetes default scheduler.
#[derive(Debug)]
pub struct KubeDefault {
    decision: SimDuration,
    queue: VecDeque<(usize, usize)>,
    /// (free slots, tie-break rank, node), kept in step with the cluster.
    index: BTreeSet<(u32, u64, usize)>,
    free: Vec<u32>,
    rank: Vec<u64>,
    busy_until: SimTime,
    ticking: bool,
}

/// Parameters `k8s-default` accepts.
pub const K8S_PARAMS: &[&str] = &["decision_ms"];

impl KubeDefault {
    /// Reads `decision_ms` (20: 50 bindings/s).
    pub fn from_params(p: &Params) -> Result<KubeDefault, ParamError> {
        p.finish(K8S_PARAMS)?;
        let decision = SimDuration::from_secs_f64(p.f64_in("decision_ms", 20.0, 0.0..=60_000.0)? / 1000.0);
        Ok(KubeDefault {
            decision,
            queue: VecDeque::new(),
            index: BTreeSet::new(),
            free: Vec::new(),
            rank: Vec::new(),
            busy_until: SimTime::ZERO,
            ticking: false,
        })
    }

    fn init(&mut self, ctx: &mut Ctx<'_>) {
        if !self.free.is_empty() {
            return;
        }
        let n = ctx.nodes().count;
        let slots = ctx.nodes().slots;
        let mut order: Vec<usize> = (0..n).collect();
        ctx.rng.shuffle(&mut order);
        self.rank = vec![0; n];
        for (r, &node) in order.iter().enumerate() {
            self.rank[node] = r as u64;
        }
        self.free = vec![slots; n];
        self.index = (0..n).map(|i| (slots, self.rank[i], i)).collect();
    }

    fn set_free(&mut self, node: usize, free: u32) {
        self.index.remove(&(self.free[node], self.rank[node], node));
        self.free[node] = free;
        self.index.insert((free, self.rank[node], node));
    }

    fn wake(&mut self, ctx: &mut Ctx<'_>) {
        if !self.ticking && !self.queue.is_empty() {
            self.ticking = true;
            ctx.tick_at(self.busy_until.max(ctx.now()));
        }
    }
}

impl ClusterScheduler for KubeDefault {
    fn on_arrival(&mut self, job: usize, ctx: &mut Ctx<'_>) {
        self.init(ctx);
        let k = ctx.jobs()[job].tasks.len();
        self.queue.extend((0..k).map(|t| (job, t)));
        self.wake(ctx);
    }

    fn on_slot_free(&mut self, node: usize, ctx: &mut Ctx<'_>) {
        if self.free.is_empty() {
            return;
        }
        self.set_free(node, self.free[node] + 1);
        self.wake(ctx);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.ticking = false;
        let Some(&(free, _, node)) = self.index.last() else { return };
        if free == 0 {
            // Nothing fits: the head waits for a slot (on_slot_free wakes us).
            return;
        }
        let Some((job, task)) = self.queue.pop_front() else { return };
        self.set_free(node, free - 1);
        ctx.bind(node, job, task);
        self.busy_until = ctx.now() + self.decision;
        self.wake(ctx);
    }
}

/// Sparrow's batch sampling with late binding.
#[derive(Debug, Default)]
pub struct Sparrow {
    probes: f64,
    pending: PendingTasks,
}

/// Parameters `sparrow` accepts.
pub const SPARROW_PARAMS: &[&str] = &["probe_ratio"];

impl Sparrow {
    /// Reads `probe_ratio` (d, 2).
    pub fn from_params(p: &Params) -> Result<Sparrow, ParamError> {
        p.finish(SPARROW_PARAMS)?;
        Ok(Sparrow { probes: p.f64_in("probe_ratio", 2.0, 1.0..=100.0)?, pending: PendingTasks::default() })
    }
}

impl ClusterScheduler for Sparrow {
    fn on_arrival(&mut self, job: usize, ctx: &mut Ctx<'_>) {
        let tasks = ctx.jobs()[job].tasks.clone();
        self.pending.add(job, &tasks);
        let count = (self.probes * tasks.len() as f64).ceil() as usize;
        let n = ctx.nodes().count;
        for node in sample_nodes(n, count, ctx.rng) {
            ctx.send_reservation(node, job);
        }
    }

    fn on_ask(&mut self, _node: usize, job: usize, _ctx: &mut Ctx<'_>) -> Option<usize> {
        self.pending.next(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_distinct_until_every_node_is_used() {
        let mut rng = nimbus_sim::rng::RngStreams::new(1).stream("t");
        let s = sample_nodes(10, 7, &mut rng);
        assert_eq!(s.iter().collect::<BTreeSet<_>>().len(), 7);
        let s = sample_nodes(4, 10, &mut rng);
        assert_eq!(s.len(), 10);
        for node in 0..4 {
            assert!(s.iter().filter(|&&x| x == node).count() >= 2);
        }
    }
}
