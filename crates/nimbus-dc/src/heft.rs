//! HEFT (Topcuoglu, Hariri and Wu, "Performance-effective and
//! low-complexity task scheduling for heterogeneous computing", IEEE TPDS
//! 2002), the static list scheduler workflow papers compare with, in the
//! form of DSLab's `HeftScheduler` (commit a6c155e) so that its makespans
//! on the `dslab-dags` files can be checked against DSLab's.
//!
//! - **Ranks** (upward): a task's rank is its work × the mean time per
//!   Gflop over the worker resources, plus the largest of its children's
//!   ranks plus the item's size × the mean time per MB over all ordered
//!   pairs of resources (the master included, pairs of a resource with
//!   itself counting 0).
//! - **Placement**, tasks by decreasing rank (ties in task order): on each
//!   resource the task may use, the earliest start at or after its inputs'
//!   arrival (each parent's planned finish, plus size / bandwidth when on
//!   another resource; latency is left out, as in DSLab) at which enough
//!   cores are idle for the whole run (insertion into gaps) and the
//!   resource's memory holds it; the resource of the earliest finish wins
//!   (the first in file order on ties).
//! - The plan lists tasks by planned start; [`crate::workflow_run::run`]
//!   executes it (each core in plan order).
//!
//! Deviation: DSLab keeps memory use in a treap whose answer for a
//! zero-length window at an interval's boundary is 0; here such a window
//! sees the use strictly around that instant (only zero-work tasks that
//! need memory can tell).

use crate::workflow_run::{Instance, Placement, speedup};

/// Mean seconds per Gflop over the worker resources (DSLab divides by the
/// resources other than the master).
pub fn mean_flop_time(inst: &Instance) -> f64 {
    let workers = &inst.resources[..inst.master()];
    workers.iter().map(|r| 1.0 / r.speed).sum::<f64>() / workers.len() as f64
}

/// Mean seconds per MB over all ordered pairs of resources, a resource
/// with itself counting 0.
pub fn mean_net_time(inst: &Instance) -> f64 {
    let n = inst.resources.len();
    let per_mb = 1.0 / inst.net.bandwidth();
    (0..n).map(|a| (0..n).map(|b| if a == b { 0.0 } else { per_mb }).sum::<f64>()).sum::<f64>() / (n as f64).powi(2)
}

/// Upward ranks.
pub fn ranks(inst: &Instance) -> Vec<f64> {
    let (flop, net) = (mean_flop_time(inst), mean_net_time(inst));
    let children = inst.children();
    let order = nimbus_trace::dag::topological_order(&children).expect("an instance's DAG is acyclic");
    let mut rank = vec![0.0; inst.tasks.len()];
    for &v in order.iter().rev() {
        let mut r: f64 = 0.0;
        for &i in &inst.tasks[v].outputs {
            let item = &inst.items[i];
            for &c in &item.consumers {
                r = r.max(rank[c] + item.size_mb * net);
            }
        }
        rank[v] = r + inst.tasks[v].flops * flop;
    }
    rank
}

/// A planned run on a core: start, finish, task (ordered in that order).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    start: f64,
    finish: f64,
    task: usize,
}

impl Slot {
    fn cmp(&self, other: &Slot) -> std::cmp::Ordering {
        self.start.total_cmp(&other.start).then(self.finish.total_cmp(&other.finish)).then(self.task.cmp(&other.task))
    }
}

/// Memory planned on a resource over time.
#[derive(Debug, Default)]
struct MemoryUse {
    spans: Vec<(f64, f64, u64)>,
    total: u64,
}

impl MemoryUse {
    fn add(&mut self, start: f64, finish: f64, mb: u64) {
        if mb > 0 && finish > start {
            self.spans.push((start, finish, mb));
            self.total += mb;
        }
    }

    /// Whether `mb` more fits under `cap` throughout [start, finish).
    fn fits(&self, start: f64, finish: f64, mb: u64, cap: u64) -> bool {
        if self.total.saturating_add(mb) <= cap {
            return true;
        }
        let at = |p: f64, strict: bool| -> u64 {
            self.spans.iter().filter(|&&(s, f, _)| if strict { s < p } else { s <= p } && p < f).map(|s| s.2).sum()
        };
        let peak = if finish > start {
            self.spans
                .iter()
                .map(|s| s.0)
                .filter(|&s| s > start && s < finish)
                .map(|p| at(p, false))
                .fold(at(start, false), u64::max)
        } else {
            at(start, true)
        };
        peak.saturating_add(mb) <= cap
    }
}

/// The earliest start ≥ `earliest` at which `need` cores are idle for
/// `length` and memory fits, and those cores (DSLab's
/// `find_earliest_slot`, with sorted vectors for its ordered sets).
fn earliest_slot(
    cores: &[Vec<Slot>],
    earliest: f64,
    length: f64,
    need: usize,
    fits: impl Fn(f64, f64) -> bool,
) -> (f64, Vec<u32>) {
    let key = Slot { start: earliest, finish: 0.0, task: 0 };
    // Cursor per core: the next slot not yet passed; `last` the one before.
    let mut next: Vec<usize> = cores
        .iter()
        .map(|slots| slots.partition_point(|s| s.cmp(&key) != std::cmp::Ordering::Greater).saturating_sub(1))
        .collect();
    let mut last: Vec<Option<Slot>> = vec![None; cores.len()];
    let mut at = earliest;
    loop {
        for (c, slots) in cores.iter().enumerate() {
            while next[c] < slots.len() && slots[next[c]].start <= at {
                last[c] = Some(slots[next[c]]);
                next[c] += 1;
            }
        }
        if fits(at, at + length) {
            let idle: Vec<u32> = (0..cores.len())
                .filter(|&c| {
                    last[c].is_none_or(|s| s.finish <= at)
                        && cores[c].get(next[c]).is_none_or(|s| s.start >= at + length)
                })
                .map(|c| u32::try_from(c).expect("cores fit u32"))
                .collect();
            if idle.len() >= need {
                return (at, idle.into_iter().take(need).collect());
            }
        }
        let following = last
            .iter()
            .flatten()
            .map(|s| s.finish)
            .chain(cores.iter().enumerate().filter_map(|(c, slots)| slots.get(next[c]).map(|s| s.finish)))
            .filter(|&t| t > at)
            .min_by(f64::total_cmp);
        match following {
            Some(t) => at = t,
            None => return (earliest, Vec::new()),
        }
    }
}

/// HEFT's plan for `inst`, by planned start.
pub fn plan(inst: &Instance) -> Vec<Placement> {
    let rank = ranks(inst);
    let mut order: Vec<usize> = (0..inst.tasks.len()).collect();
    order.sort_by(|&a, &b| rank[b].total_cmp(&rank[a]));
    let per_mb = 1.0 / inst.net.bandwidth();
    let mut slots: Vec<Vec<Vec<Slot>>> = inst.resources.iter().map(|r| vec![Vec::new(); r.cores as usize]).collect();
    let mut memory: Vec<MemoryUse> = inst.resources.iter().map(|_| MemoryUse::default()).collect();
    let mut finish = vec![0.0; inst.tasks.len()];
    let mut location: Vec<Option<usize>> = vec![None; inst.tasks.len()];
    let mut out: Vec<Placement> = Vec::with_capacity(inst.tasks.len());
    for task in order {
        let t = &inst.tasks[task];
        let mut best: Option<Placement> = None;
        for (r, res) in inst.resources.iter().enumerate() {
            if res.cores < t.min_cores || res.memory_mb < t.memory_mb || !inst.allowed(task, r) {
                continue;
            }
            let ready = t
                .inputs
                .iter()
                .filter_map(|&i| inst.items[i].producer.map(|p| (p, inst.items[i].size_mb)))
                .map(|(p, size)| match location[p] {
                    Some(at) if at == r => finish[p],
                    Some(_) => finish[p] + size * per_mb,
                    // A parent not yet placed (a rank tie) is ignored, as
                    // in DSLab.
                    None => 0.0,
                })
                .max_by(f64::total_cmp)
                .unwrap_or(0.0);
            let length = t.flops / res.speed / speedup(t.cores_dependency, t.min_cores);
            let (start, cores) = earliest_slot(&slots[r], ready, length, t.min_cores as usize, |a, b| {
                memory[r].fits(a, b, t.memory_mb, res.memory_mb)
            });
            assert!(cores.len() == t.min_cores as usize, "a resource with enough cores always has a slot");
            if best.as_ref().is_none_or(|b| b.finish_s > start + length) {
                best = Some(Placement { task, resource: r, cores, start_s: start, finish_s: start + length });
            }
        }
        let chosen = best.expect("Instance::new checked that some resource holds every task");
        let slot = Slot { start: chosen.start_s, finish: chosen.finish_s, task };
        for &c in &chosen.cores {
            let list = &mut slots[chosen.resource][c as usize];
            let at = list.partition_point(|s| s.cmp(&slot) == std::cmp::Ordering::Less);
            list.insert(at, slot);
        }
        memory[chosen.resource].add(chosen.start_s, chosen.finish_s, t.memory_mb);
        finish[task] = chosen.finish_s;
        location[task] = Some(chosen.resource);
        out.push(chosen);
    }
    out.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    out
}
