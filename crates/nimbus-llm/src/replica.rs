//! A serving replica: its paged KV cache, its queues and the replica
//! schedulers that form each iteration's batch.
//!
//! Schedulers (as in Vidur's replica schedulers, after each system's
//! public description):
//! - **vLLM** (v0, prefill-first): admit waiting requests in order while
//!   their whole prompt fits the free KV blocks above a watermark, the
//!   batch's padded prompt tokens (`n · max prompt`) stay within the token
//!   budget and the running requests within the batch cap; run that
//!   prefill-only batch. Only when none is admitted run one decode step of
//!   every running request. Out of blocks, preempt the newest running
//!   request.
//! - **Sarathi-Serve**: one token budget per iteration (the chunk size),
//!   filled by every running decode, then continuing partial prefills,
//!   then new requests as prefill chunks; admission and preemption as vLLM.
//! - **Orca**: iteration-level batching without paging: an admitted
//!   request reserves blocks for the model's longest sequence; each
//!   iteration runs whole prefills of new requests beside every decode.
//!
//! Preemption frees the victim's blocks and puts it at the head of the
//! waiting queue: by recomputation (its KV is rebuilt by a prefill of its
//! prompt and generated tokens) or by swapping (its KV goes to host memory
//! over PCIe and comes back before new admissions, the transfer adding to
//! the iteration that moves it).

use std::collections::VecDeque;

use nimbus_sim::SimTime;

use crate::exec::{BatchShape, SharedExec};
use crate::request::{ReqId, RequestState};

/// Which replica scheduler forms batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SchedulerKind {
    /// vLLM v0: prefill-first.
    Vllm {
        /// Token budget of a prefill batch (padded).
        max_tokens: u32,
    },
    /// Sarathi-Serve: chunked prefill within a token budget.
    Sarathi {
        /// Tokens per iteration.
        chunk: u32,
    },
    /// Orca: reserve the longest sequence on admission.
    Orca,
}

/// How a replica frees KV blocks when it runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preemption {
    /// Drop the KV; rebuild it later by a prefill.
    Recompute,
    /// Move the KV to host memory and back.
    Swap,
}

/// Order of a replica's waiting queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOrder {
    /// Arrival order.
    Fcfs,
    /// Earliest due time first.
    Edf,
}

/// Settings shared by a replica's scheduler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerConfig {
    /// Batch formation.
    pub kind: SchedulerKind,
    /// Most requests holding KV at once.
    pub max_seqs: u32,
    /// Tokens per KV block.
    pub block_tokens: u32,
    /// Free blocks kept back at admission, as a fraction of all blocks.
    pub watermark: f64,
    /// Preemption mode.
    pub preemption: Preemption,
    /// Order of the waiting queue.
    pub order: QueueOrder,
}

/// One request's part of an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A prefill chunk of this many tokens.
    Prefill(u32),
    /// One decode token.
    Decode,
}

/// A replica's in-flight iteration.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Requests and their steps.
    pub steps: Vec<(ReqId, Step)>,
    /// Aggregated shape.
    pub shape: BatchShape,
    /// Bytes moved between host and GPU memory by swaps in this iteration.
    pub swap_bytes: f64,
}

/// A replica of one model on `tp` GPUs.
#[derive(Debug)]
pub struct Replica {
    /// Index in the run.
    pub id: u32,
    /// Index of its group in the scenario.
    pub group: usize,
    /// GPUs.
    pub tp: u32,
    /// The model loaded (index), if any.
    pub model: Option<u16>,
    /// Execution model of the loaded model.
    pub exec: Option<SharedExec>,
    /// KV blocks of the loaded model.
    pub total_blocks: u32,
    /// Free blocks.
    pub free_blocks: u32,
    /// Maximum sequence length of the loaded model.
    pub max_seq_len: u32,
    /// KV bytes per token of the loaded model (whole replica).
    pub kv_bytes_per_token: f64,
    /// Requests waiting for admission.
    pub waiting: VecDeque<ReqId>,
    /// Requests holding KV, in admission order.
    pub running: Vec<ReqId>,
    /// Requests whose KV is in host memory.
    pub swapped: VecDeque<ReqId>,
    /// The iteration in flight.
    pub batch: Option<Batch>,
    /// Loading a model until this time.
    pub loading_until: Option<SimTime>,
    /// Scheduler settings.
    pub config: SchedulerConfig,
    /// The only model instance it serves, if pinned (dedicated MoE
    /// deployments).
    pub instance: Option<u16>,
    /// Output tokens produced since the current model was loaded.
    pub served_tokens: u64,
    /// Seconds of iterations since the current model was loaded.
    pub busy_s: f64,
}

impl Replica {
    /// Blocks to hold `tokens` tokens.
    pub fn blocks_for(&self, tokens: u32) -> u32 {
        tokens.div_ceil(self.config.block_tokens)
    }

    fn watermark_blocks(&self) -> u32 {
        (self.config.watermark * self.total_blocks as f64).ceil() as u32
    }

    /// Requests on the replica (waiting, running or swapped).
    pub fn outstanding(&self) -> usize {
        self.waiting.len() + self.running.len() + self.swapped.len()
    }

    /// Whether the replica has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.outstanding() == 0 && self.batch.is_none()
    }

    /// Whether it is free to start an iteration.
    pub fn is_idle(&self) -> bool {
        self.batch.is_none() && self.loading_until.is_none()
    }

    /// Blocks a waiting request needs to be admitted.
    pub fn admission_blocks(&self, r: &RequestState) -> u32 {
        match self.config.kind {
            SchedulerKind::Orca => self.blocks_for(self.max_seq_len),
            _ => self.blocks_for(r.prefill_target()),
        }
    }

    /// Puts a request in the waiting queue, in the queue's order.
    pub fn enqueue(&mut self, id: ReqId, requests: &[RequestState]) {
        match self.config.order {
            QueueOrder::Fcfs => self.waiting.push_back(id),
            QueueOrder::Edf => {
                let key = |r: ReqId| (requests[r as usize].due, r);
                let at = self.waiting.partition_point(|&w| key(w) <= key(id));
                self.waiting.insert(at, id);
            }
        }
    }

    fn allocate(&mut self, r: &mut RequestState, tokens: u32) -> bool {
        let need = self.blocks_for(tokens).saturating_sub(r.blocks);
        if need > self.free_blocks {
            return false;
        }
        self.free_blocks -= need;
        r.blocks += need;
        true
    }

    fn release(&mut self, r: &mut RequestState) {
        self.free_blocks += r.blocks;
        r.blocks = 0;
    }

    /// Frees a finished or preempted request's blocks and drops it from
    /// the running list.
    pub fn finish(&mut self, id: ReqId, requests: &mut [RequestState]) {
        self.release(&mut requests[id as usize]);
        self.running.retain(|&r| r != id);
    }

    /// Evicts the running request due latest, if it is due more than
    /// `margin` after `due`, by recomputation: its blocks are freed and it
    /// goes back to the waiting queue (QLM's eviction LSO). Returns it.
    pub fn evict_for(
        &mut self,
        due: SimTime,
        margin: nimbus_sim::SimDuration,
        requests: &mut [RequestState],
    ) -> Option<ReqId> {
        let batch: Vec<ReqId> = self.batch.as_ref().map_or(Vec::new(), |b| b.steps.iter().map(|s| s.0).collect());
        let (pos, &victim) = self
            .running
            .iter()
            .enumerate()
            .filter(|(_, id)| !batch.contains(id))
            .max_by_key(|(_, id)| (requests[**id as usize].due, **id))?;
        if requests[victim as usize].due <= due + margin {
            return None;
        }
        self.running.remove(pos);
        let r = &mut requests[victim as usize];
        self.free_blocks += r.blocks;
        r.blocks = 0;
        r.computed = 0;
        r.preemptions += 1;
        self.enqueue(victim, requests);
        Some(victim)
    }

    /// Preempts the newest running request; returns it and the bytes a
    /// swap moves.
    fn preempt_newest(&mut self, requests: &mut [RequestState]) -> Option<(ReqId, f64)> {
        let victim = self.running.pop()?;
        let r = &mut requests[victim as usize];
        self.free_blocks += r.blocks;
        r.blocks = 0;
        match self.config.preemption {
            Preemption::Recompute => {
                r.computed = 0;
                r.preemptions += 1;
                self.waiting.push_front(victim);
                Some((victim, 0.0))
            }
            Preemption::Swap => {
                r.swaps += 1;
                let bytes = r.computed as f64 * self.kv_bytes_per_token;
                self.swapped.push_front(victim);
                Some((victim, bytes))
            }
        }
    }

    /// Forms the next iteration, or `None` when there is nothing to run.
    pub fn schedule(&mut self, requests: &mut [RequestState], now: SimTime) -> Option<Batch> {
        let mut batch = Batch::default();
        self.swap_in(requests, &mut batch);
        match self.config.kind {
            SchedulerKind::Vllm { max_tokens } => {
                if self.swapped.is_empty() {
                    self.admit_prefills(requests, &mut batch, now, Some(max_tokens), None);
                }
                if batch.steps.is_empty() {
                    self.add_decodes(requests, &mut batch, u32::MAX);
                }
            }
            SchedulerKind::Sarathi { chunk } => {
                let mut budget = chunk;
                budget -= self.add_decodes(requests, &mut batch, budget);
                budget = self.continue_prefills(requests, &mut batch, budget);
                if self.swapped.is_empty() && budget > 0 {
                    self.admit_prefills(requests, &mut batch, now, None, Some(budget));
                }
            }
            SchedulerKind::Orca => {
                self.add_decodes(requests, &mut batch, u32::MAX);
                if self.swapped.is_empty() {
                    self.admit_prefills(requests, &mut batch, now, None, None);
                }
            }
        }
        if batch.steps.is_empty() {
            return None;
        }
        let mut seen = 0u128;
        for &(id, _) in &batch.steps {
            seen |= 1u128 << (requests[id as usize].spec.instance % 128);
        }
        batch.shape.instances = seen.count_ones();
        Some(batch)
    }

    /// Brings swapped requests back while their blocks fit.
    fn swap_in(&mut self, requests: &mut [RequestState], batch: &mut Batch) {
        while let Some(&id) = self.swapped.front() {
            if self.running.len() as u32 >= self.config.max_seqs {
                break;
            }
            let tokens = requests[id as usize].prefill_target();
            if self.free_blocks < self.blocks_for(tokens) + self.watermark_blocks() {
                break;
            }
            self.swapped.pop_front();
            let r = &mut requests[id as usize];
            self.allocate(r, tokens);
            batch.swap_bytes += r.computed as f64 * self.kv_bytes_per_token;
            self.running.push(id);
        }
    }

    /// Admits waiting requests in order as prefills; `padded_budget` is
    /// vLLM's `n · max prompt` bound, `chunk_budget` Sarathi's tokens left.
    fn admit_prefills(
        &mut self,
        requests: &mut [RequestState],
        batch: &mut Batch,
        now: SimTime,
        padded_budget: Option<u32>,
        mut chunk_budget: Option<u32>,
    ) {
        let mut longest = 0u32;
        let mut admitted = 0u32;
        while let Some(&id) = self.waiting.front() {
            if self.running.len() as u32 >= self.config.max_seqs || chunk_budget == Some(0) {
                break;
            }
            let target = requests[id as usize].prefill_target();
            if let Some(budget) = padded_budget {
                let padded = (admitted + 1) * longest.max(target);
                if admitted > 0 && padded > budget {
                    break;
                }
            }
            let need = self.admission_blocks(&requests[id as usize]);
            if self.free_blocks < need + self.watermark_blocks() {
                break;
            }
            self.waiting.pop_front();
            let r = &mut requests[id as usize];
            self.free_blocks -= need;
            r.blocks += need;
            r.scheduled.get_or_insert(now);
            let chunk = chunk_budget.map_or(target, |b| b.min(target - r.computed));
            if let Some(b) = chunk_budget.as_mut() {
                *b -= chunk;
            }
            batch.shape.add_prefill(chunk, r.computed);
            batch.steps.push((id, Step::Prefill(chunk)));
            self.running.push(id);
            longest = longest.max(target);
            admitted += 1;
        }
    }

    /// Adds continuing (chunked) prefills of running requests; returns the
    /// budget left.
    fn continue_prefills(&mut self, requests: &mut [RequestState], batch: &mut Batch, mut budget: u32) -> u32 {
        for &id in &self.running {
            if budget == 0 {
                break;
            }
            let r = &requests[id as usize];
            if !r.in_prefill() || batch.steps.iter().any(|s| s.0 == id) {
                continue;
            }
            let chunk = budget.min(r.prefill_target() - r.computed);
            batch.shape.add_prefill(chunk, r.computed);
            batch.steps.push((id, Step::Prefill(chunk)));
            budget -= chunk;
        }
        budget
    }

    /// Adds one decode step of running requests (at most `budget`),
    /// allocating each one's next block and preempting the newest running
    /// request when none is free; returns how many were added.
    fn add_decodes(&mut self, requests: &mut [RequestState], batch: &mut Batch, budget: u32) -> u32 {
        let mut added = 0u32;
        let mut i = 0;
        while i < self.running.len() && added < budget {
            let id = self.running[i];
            if requests[id as usize].in_prefill() {
                i += 1;
                continue;
            }
            let tokens = requests[id as usize].prefill_target();
            let mut kept = true;
            while !self.allocate(&mut requests[id as usize], tokens) {
                match self.preempt_newest(requests) {
                    Some((victim, bytes)) => {
                        batch.swap_bytes += bytes;
                        if let Some(pos) = batch.steps.iter().position(|s| s.0 == victim) {
                            let (_, step) = batch.steps.remove(pos);
                            debug_assert_eq!(step, Step::Decode);
                            added -= 1;
                            batch.shape = shape_of(&batch.steps, requests);
                        }
                        if victim == id {
                            kept = false;
                            break;
                        }
                    }
                    None => {
                        kept = false;
                        break;
                    }
                }
            }
            if !kept {
                break;
            }
            batch.shape.add_decode(tokens);
            batch.steps.push((id, Step::Decode));
            added += 1;
            i += 1;
        }
        added
    }
}

/// The shape of a list of steps.
fn shape_of(steps: &[(ReqId, Step)], requests: &[RequestState]) -> BatchShape {
    let mut shape = BatchShape::default();
    for &(id, step) in steps {
        let r = &requests[id as usize];
        match step {
            Step::Prefill(c) => shape.add_prefill(c, r.computed),
            Step::Decode => shape.add_decode(r.prefill_target()),
        }
    }
    shape
}

/// Applies a finished iteration's progress; returns the requests that
/// completed.
pub fn apply(batch: &Batch, requests: &mut [RequestState], now: SimTime) -> Vec<ReqId> {
    let mut done = Vec::new();
    for &(id, step) in &batch.steps {
        let r = &mut requests[id as usize];
        match step {
            Step::Prefill(c) => {
                r.computed += c;
                if r.computed >= r.prefill_target() {
                    r.generated += 1;
                    r.record_token(now);
                }
            }
            Step::Decode => {
                r.computed += 1;
                r.generated += 1;
                r.record_token(now);
            }
        }
        if r.is_done() {
            r.completion = Some(now);
            done.push(id);
        }
    }
    done
}
