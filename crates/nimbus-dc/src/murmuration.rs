//! Murmuration: "Scheduling for Reduced Tail Task Latencies in Highly
//! Utilized Datacenters" (SoCC'24).
//!
//! Mechanism (carbon-autoscaling-tail.md §6.1; the implementation details
//! are inferred):
//! - Several scheduler instances (`instances`, 4) share the jobs
//!   (round-robin). Each keeps an estimate of when every slot of every
//!   node frees up: its own placements enter its estimate at once, the
//!   others' only when the instances gossip (every `gossip_ms`, 100): each
//!   then refreshes the nodes others placed on from the nodes' projected
//!   queues (running tasks' ends plus queued tasks' known durations).
//! - **Start-time alignment**: a job's k tasks go to the k slots its
//!   instance expects to free earliest, longest task to the earliest slot,
//!   so the tasks start as close together as the cluster allows and the
//!   last one finishes as early as possible.
//! - **Reservation with late-binding fallback**: a task is queued at its
//!   node only if the node's projected start is no later than expected
//!   plus `slack_ms` (50); otherwise the node refuses it and the instance
//!   falls back to late binding for it (Sparrow-style reservations on
//!   `fallback_probes` (2) random nodes).
//! - **Reordering** (`reorder`, off by default): nodes serve their queue
//!   smallest job (total work) first instead of in arrival order, a
//!   shortest-remaining-first order fixed when the job arrives.
//!
//! Baselines (`cluster_baselines`): the Kubernetes default scheduler and
//! Sparrow's batch sampling with late binding.
//!
//! Modelled: a DES of nodes, queues and messages (half a round trip each
//! way); task durations are known exactly to the instances. Deviations:
//! a node is refreshed only when no task is in flight to it (else at a
//! later gossip); reordered queues are still projected in arrival order;
//! gossip refreshes every instance at once.

use std::collections::BTreeSet;

use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::time::{SimDuration, SimTime};

use crate::cluster::{ClusterScheduler, Ctx, PendingTasks, QueueOrder};
use crate::cluster_baselines::sample_nodes;

/// Parameters `murmuration` accepts.
pub const PARAMS: &[&str] = &["instances", "gossip_ms", "slack_ms", "fallback_probes", "reorder"];

/// One instance's estimate of the cluster.
#[derive(Debug, Clone)]
struct Estimate {
    /// Per node, when each slot frees up (ascending).
    slots: Vec<Vec<SimTime>>,
    /// (earliest slot, tie-break rank, node).
    index: BTreeSet<(SimTime, u64, usize)>,
    rank: Vec<u64>,
    /// Nodes others placed on since this instance's last refresh.
    stale: Vec<bool>,
    stale_list: Vec<usize>,
}

impl Estimate {
    fn set(&mut self, node: usize, slots: Vec<SimTime>) {
        if let Some(&first) = self.slots[node].first() {
            self.index.remove(&(first, self.rank[node], node));
        }
        if let Some(&first) = slots.first() {
            self.index.insert((first, self.rank[node], node));
        }
        self.slots[node] = slots;
    }

    /// Takes the earliest slot: (node, expected start).
    fn take(&mut self, now: SimTime, duration: SimDuration) -> Option<(usize, SimTime)> {
        let &(first, _, node) = self.index.first()?;
        let start = first.max(now);
        let mut slots = std::mem::take(&mut self.slots[node]);
        self.index.remove(&(first, self.rank[node], node));
        slots.remove(0);
        let end = start + duration;
        let at = slots.partition_point(|&t| t <= end);
        slots.insert(at, end);
        self.index.insert((slots[0], self.rank[node], node));
        self.slots[node] = slots;
        Some((node, start))
    }
}

/// The Murmuration scheduling layer.
#[derive(Debug)]
pub struct Murmuration {
    instances: usize,
    gossip: SimDuration,
    slack: SimDuration,
    fallback_probes: usize,
    reorder: bool,
    estimates: Vec<Estimate>,
    next_instance: usize,
    fallback: PendingTasks,
    gossip_rounds: u64,
    ticking: bool,
    /// When the last task sent to each node lands there: a node is
    /// refreshed only once nothing is in flight to it, so that no refresh
    /// misses a task.
    landing: Vec<SimTime>,
}

impl Murmuration {
    /// Reads `instances` (4), `gossip_ms` (100), `slack_ms` (50),
    /// `fallback_probes` (2), `reorder` (false).
    pub fn from_params(p: &Params) -> Result<Murmuration, ParamError> {
        p.finish(PARAMS)?;
        Ok(Murmuration {
            instances: p.usize_in("instances", 4, 1..=1024)?,
            gossip: SimDuration::from_secs_f64(p.f64_in("gossip_ms", 100.0, 0.001..=3.6e6)? / 1000.0),
            slack: SimDuration::from_secs_f64(p.f64_in("slack_ms", 50.0, 0.0..=3.6e6)? / 1000.0),
            fallback_probes: p.usize_in("fallback_probes", 2, 1..=100)?,
            reorder: p.bool_or("reorder", false)?,
            estimates: Vec::new(),
            next_instance: 0,
            fallback: PendingTasks::default(),
            gossip_rounds: 0,
            ticking: false,
            landing: Vec::new(),
        })
    }

    fn init(&mut self, ctx: &mut Ctx<'_>) {
        if !self.estimates.is_empty() {
            return;
        }
        let n = ctx.nodes().count;
        self.landing = vec![SimTime::ZERO; n];
        let idle = vec![ctx.now(); ctx.nodes().slots as usize];
        for _ in 0..self.instances {
            let mut order: Vec<usize> = (0..n).collect();
            ctx.rng.shuffle(&mut order);
            let mut rank = vec![0u64; n];
            for (r, &node) in order.iter().enumerate() {
                rank[node] = r as u64;
            }
            let index = (0..n).map(|i| (ctx.now(), rank[i], i)).collect();
            self.estimates.push(Estimate {
                slots: vec![idle.clone(); n],
                index,
                rank,
                stale: vec![false; n],
                stale_list: Vec::new(),
            });
        }
    }

    /// Marks `node` for refresh at the next gossip in every instance but
    /// `except`.
    fn mark_stale(&mut self, node: usize, except: Option<usize>) {
        for (i, est) in self.estimates.iter_mut().enumerate() {
            if Some(i) != except && !est.stale[node] {
                est.stale[node] = true;
                est.stale_list.push(node);
            }
        }
    }

    /// Asks for the next gossip round (rounds fall on multiples of the
    /// period; a round with nothing to refresh changes nothing, so none is
    /// simulated then).
    fn wake(&mut self, ctx: &mut Ctx<'_>) {
        if self.ticking || self.estimates.iter().all(|e| e.stale_list.is_empty()) {
            return;
        }
        self.ticking = true;
        let period = self.gossip.as_nanos().max(1);
        let next = (ctx.now().as_nanos() / period).saturating_add(1).saturating_mul(period);
        ctx.tick_at(SimTime::from_nanos(next));
    }

    fn gossip(&mut self, ctx: &mut Ctx<'_>) {
        self.gossip_rounds += 1;
        let now = ctx.now();
        for est in &mut self.estimates {
            let mut later = Vec::new();
            for node in std::mem::take(&mut est.stale_list) {
                if self.landing[node] > now {
                    later.push(node);
                    continue;
                }
                est.stale[node] = false;
                est.set(node, ctx.projected_slots(node));
            }
            est.stale_list = later;
        }
    }
}

impl ClusterScheduler for Murmuration {
    fn queue_order(&self) -> QueueOrder {
        if self.reorder { QueueOrder::SmallestJobFirst } else { QueueOrder::Fifo }
    }

    fn on_arrival(&mut self, job: usize, ctx: &mut Ctx<'_>) {
        self.init(ctx);
        let instance = self.next_instance;
        self.next_instance = (self.next_instance + 1) % self.instances;
        let tasks = ctx.jobs()[job].tasks.clone();
        let mut order: Vec<usize> = (0..tasks.len()).collect();
        order.sort_by(|&a, &b| tasks[b].cmp(&tasks[a]).then(a.cmp(&b)));
        let now = ctx.now();
        for t in order {
            let Some((node, start)) = self.estimates[instance].take(now, tasks[t]) else { continue };
            self.mark_stale(node, Some(instance));
            self.landing[node] = self.landing[node].max(now + ctx.nodes().rtt);
            ctx.send_task(node, job, t, Some(start + self.slack));
        }
        self.wake(ctx);
    }

    fn on_bounce(&mut self, job: usize, task: usize, ctx: &mut Ctx<'_>) {
        self.fallback.push(job, task);
        let n = ctx.nodes().count;
        for node in sample_nodes(n, self.fallback_probes, ctx.rng) {
            ctx.send_reservation(node, job);
        }
    }

    fn on_ask(&mut self, node: usize, job: usize, ctx: &mut Ctx<'_>) -> Option<usize> {
        let task = self.fallback.next(job);
        if task.is_some() {
            // A late-bound task is news to every instance.
            self.landing[node] = self.landing[node].max(ctx.now() + ctx.nodes().rtt);
            self.mark_stale(node, None);
            self.wake(ctx);
        }
        task
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.ticking = false;
        self.gossip(ctx);
        self.wake(ctx);
    }

    fn counters(&self) -> Vec<(&'static str, f64)> {
        vec![("gossip_rounds", self.gossip_rounds as f64)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_hands_out_the_earliest_slots() {
        let t = SimTime::from_secs;
        let mut e = Estimate {
            slots: vec![vec![t(5), t(9)], vec![t(1), t(2)]],
            index: BTreeSet::new(),
            rank: vec![0, 1],
            stale: vec![false; 2],
            stale_list: Vec::new(),
        };
        e.index = [(t(5), 0, 0), (t(1), 1, 1)].into_iter().collect();
        // Node 1's slots at 1 s (a 3-s task: busy until 4 s) and 2 s (a 1-s
        // task: free again at 3 s), then 3 s and 4 s, then 4 s again; at
        // 5 s node 0 ties with node 1 and wins on rank.
        assert_eq!(e.take(t(0), SimDuration::from_secs(3)), Some((1, t(1))));
        assert_eq!(e.take(t(0), SimDuration::from_secs(1)), Some((1, t(2))));
        assert_eq!(e.slots[1], vec![t(3), t(4)]);
        assert_eq!(e.take(t(0), SimDuration::from_secs(1)), Some((1, t(3))));
        assert_eq!(e.take(t(0), SimDuration::from_secs(1)), Some((1, t(4))));
        assert_eq!(e.take(t(0), SimDuration::from_secs(1)), Some((1, t(4))));
        assert_eq!(e.slots[1], vec![t(5), t(5)]);
        assert_eq!(e.take(t(0), SimDuration::from_secs(1)), Some((0, t(5))));
        // A time in the past starts now.
        assert_eq!(e.take(t(7), SimDuration::from_secs(1)), Some((1, t(7))));
    }
}
