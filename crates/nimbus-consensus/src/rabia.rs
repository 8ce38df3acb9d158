//! Rabia (Pan et al., SOSP'21): leaderless state-machine replication with
//! randomized binary consensus, as a sans-IO state machine: messages in,
//! messages and effects out; no clocks, sockets or threads inside.
//!
//! Mechanism, per log slot:
//! 1. A replica that receives client requests batches them (a new batch
//!    whenever its previous one is decided, up to 64 requests) and forwards
//!    the batch to every replica; each keeps batches in a queue ordered by
//!    (proxy timestamp, proxy, batch number), so correct replicas tend to
//!    have the same head; a batch seen only in a proposal joins the queue.
//! 2. Proposal exchange: each replica broadcasts its head (or nothing) and
//!    waits for n − f proposals. A request proposed by a majority
//!    (⌊n/2⌋ + 1) sets its state to 1, else 0.
//! 3. Randomized binary consensus in phases: round 1 exchanges states; a
//!    majority for a bit makes it the vote, else "?". Round 2 exchanges
//!    votes; f + 1 matching votes decide that bit; otherwise a replica
//!    adopts a non-"?" vote it saw or, when all were "?", a common coin
//!    (a hash of the slot and phase, the same at every replica).
//! 4. Decision 1 commits the majority batch; 0 is a NULL slot. Deciders
//!    broadcast the decision with the request, so replicas still in the
//!    slot (or behind) adopt it.
//!
//! States and votes of 1 carry the majority request, and a coin of 1 is
//! taken only by a replica that knows it, so every replica in state 1
//! knows what 1 commits: a decision of 1 never waits for a request that
//! only crashed replicas saw (a liveness bug the fault schedules of
//! `tests/rabia_sim.rs` found, where a crash loses undelivered messages).
//!
//! Replicas apply committed requests in slot order to a [`KvStore`]; the
//! replica that took a request from its client answers it. A retried
//! request is applied once (client sessions).
//!
//! Deviations: no fast path (every slot runs at least one consensus
//! phase); one batch per slot and no pipelining of slots; crash-stop
//! replicas (recovery from durable state is
//! not written yet); lost messages are recovered by `tick`, which re-sends
//! the current slot's messages, and replicas ahead answer messages of
//! decided slots with the decision.

use std::collections::{BTreeMap, BTreeSet};

use crate::kv::{KvStore, Request};

pub use crate::protocol::ReplicaId;

/// A proxy's batch of client requests with its timestamp, which orders
/// the queues; the unit a slot commits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tagged {
    /// Proxy timestamp (ns of its clock).
    pub ts: u64,
    /// Replica that formed the batch and answers its clients.
    pub proxy: ReplicaId,
    /// The proxy's batch number.
    pub batch: u64,
    /// The requests, in order.
    pub requests: Vec<Request>,
}

impl Tagged {
    /// The batch's identity.
    pub fn id(&self) -> (u64, u64) {
        (self.proxy as u64, self.batch)
    }
}

/// Protocol messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A client request forwarded by its proxy.
    Forward(Tagged),
    /// A slot's proposal (`None`: nothing pending).
    Proposal {
        /// Slot.
        slot: u64,
        /// Proposed request.
        value: Option<Tagged>,
    },
    /// Round 1 of a phase.
    State {
        /// Slot.
        slot: u64,
        /// Phase, from 1.
        phase: u32,
        /// The sender's bit.
        bit: bool,
        /// With bit 1, the majority request it stands for.
        value: Option<Tagged>,
    },
    /// Round 2 of a phase.
    Vote {
        /// Slot.
        slot: u64,
        /// Phase.
        phase: u32,
        /// The vote (`None`: "?").
        vote: Option<bool>,
        /// With vote 1, the majority request it stands for.
        value: Option<Tagged>,
    },
    /// A slot's decision, with its request.
    Decided {
        /// Slot.
        slot: u64,
        /// The committed request (`None`: NULL slot).
        value: Option<Tagged>,
    },
}

impl Message {
    /// Bytes on the wire: a header plus any batch it carries (24 bytes of
    /// batch identifiers, then 16 bytes of ids and the command's key and
    /// value per request).
    pub fn wire_bytes(&self) -> usize {
        let request = |t: Option<&Tagged>| {
            t.map_or(0, |t| 24 + t.requests.iter().map(|r| 16 + r.command.payload_bytes()).sum::<usize>())
        };
        crate::protocol::HEADER_BYTES
            + match self {
                Message::Forward(t) => request(Some(t)),
                Message::Proposal { value, .. }
                | Message::State { value, .. }
                | Message::Vote { value, .. }
                | Message::Decided { value, .. } => request(value.as_ref()),
            }
    }
}

/// Rabia's effects.
pub type Effect = crate::protocol::Effect<Message>;

#[derive(Debug, Default)]
struct Slot {
    proposals: BTreeMap<ReplicaId, Option<Tagged>>,
    proposed: bool,
    /// The majority request, once seen.
    majority: Option<Tagged>,
    phase: u32,
    states: BTreeMap<u32, BTreeMap<ReplicaId, bool>>,
    votes: BTreeMap<u32, BTreeMap<ReplicaId, Option<bool>>>,
    voted: BTreeSet<u32>,
    decided: Option<bool>,
}

/// Replica settings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replica {me} of {n} tolerating {f} crashes: Rabia needs n >= 2f + 1 and an id below n")]
pub struct ConfigError {
    /// Replicas.
    pub n: usize,
    /// Crashes tolerated.
    pub f: usize,
    /// This replica's id.
    pub me: ReplicaId,
}

/// One Rabia replica.
#[derive(Debug)]
pub struct Replica {
    me: ReplicaId,
    n: usize,
    f: usize,
    queue: BTreeSet<Tagged>,
    /// Requests already committed (client, seq), so late forwards are not queued.
    committed: BTreeSet<(u64, u64)>,
    slots: BTreeMap<u64, Slot>,
    /// Client requests not yet in a batch.
    pending: Vec<Request>,
    /// Most requests per batch.
    max_batch: usize,
    next_batch: u64,
    /// Latest time a client request brought (batch timestamps).
    clock: u64,
    /// Matching votes that decide (f + 1).
    decide_at: usize,
    /// The next slot to decide and apply.
    next: u64,
    log: BTreeMap<u64, Option<Tagged>>,
    kv: KvStore,
}

impl Replica {
    /// Replica `me` of `n`, tolerating `f` crashes (n ≥ 2f + 1).
    pub fn new(me: ReplicaId, n: usize, f: usize) -> Result<Self, ConfigError> {
        if n <= 2 * f || me >= n {
            return Err(ConfigError { n, f, me });
        }
        Ok(Replica {
            me,
            n,
            f,
            queue: BTreeSet::new(),
            committed: BTreeSet::new(),
            slots: BTreeMap::new(),
            pending: Vec::new(),
            max_batch: 64,
            next_batch: 0,
            clock: 0,
            decide_at: f + 1,
            next: 0,
            log: BTreeMap::new(),
            kv: KvStore::new(),
        })
    }

    /// A deliberately unsafe replica that decides on `votes` matching votes
    /// instead of f + 1, so tests can show that the safety checks catch a
    /// broken protocol. Never use it otherwise.
    pub fn with_unsafe_decision_threshold(
        me: ReplicaId,
        n: usize,
        f: usize,
        votes: usize,
    ) -> Result<Self, ConfigError> {
        Ok(Replica { decide_at: votes.max(1), ..Self::new(me, n, f)? })
    }

    /// The decided log so far (slot → request or NULL).
    pub fn log(&self) -> &BTreeMap<u64, Option<Tagged>> {
        &self.log
    }

    /// A one-line summary of where it stands (for failure reports).
    pub fn summary(&self) -> String {
        let s = self.slots.get(&self.next);
        format!(
            "replica {}: next slot {}, {} queued, proposals {}, phase {}, decided {:?}, majority known {}",
            self.me,
            self.next,
            self.queue.len(),
            s.map_or(0, |s| s.proposals.len()),
            s.map_or(0, |s| s.phase),
            s.and_then(|s| s.decided),
            s.is_some_and(|s| s.majority.is_some())
        )
    }

    /// The replicated store.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    /// The common coin of a slot's phase: the same bit at every replica.
    pub fn coin(slot: u64, phase: u32) -> bool {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in slot.to_le_bytes().into_iter().chain(phase.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h >> 63 == 1
    }

    /// A client's request arrives at this replica at time `now`.
    pub fn on_client(&mut self, request: Request, now: u64) -> Vec<Effect> {
        self.clock = self.clock.max(now);
        if self.committed.contains(&(request.client, request.seq)) {
            // A retry of a request already applied: the session's reply.
            let reply = self.kv.apply(&request);
            return vec![Effect::Reply { client: request.client, seq: request.seq, reply }];
        }
        self.pending.push(request);
        let mut out = Vec::new();
        self.flush(&mut out);
        self.advance(&mut out);
        out
    }

    /// Forms a batch of the pending requests unless one of this proxy's
    /// batches is still undecided (so requests arriving meanwhile batch up).
    fn flush(&mut self, out: &mut Vec<Effect>) {
        if self.pending.is_empty() || self.queue.iter().any(|t| t.proxy == self.me) {
            return;
        }
        let take = self.pending.len().min(self.max_batch);
        let requests: Vec<Request> = self.pending.drain(..take).collect();
        let tagged = Tagged { ts: self.clock, proxy: self.me, batch: self.next_batch, requests };
        self.next_batch += 1;
        out.push(Effect::Broadcast(Message::Forward(tagged.clone())));
        self.enqueue(tagged);
    }

    fn enqueue(&mut self, t: Tagged) {
        if t.requests.iter().any(|r| !self.committed.contains(&(r.client, r.seq))) {
            self.queue.insert(t);
        }
    }

    /// A message from replica `from`.
    pub fn on_message(&mut self, from: ReplicaId, message: Message) -> Vec<Effect> {
        let mut out = Vec::new();
        match message {
            Message::Forward(t) => self.enqueue(t),
            Message::Decided { slot, value } => {
                if slot >= self.next {
                    let s = self.slots.entry(slot).or_default();
                    // Adopt it, or learn the request of our own decision 1,
                    // and pass it on (its sender may crash before everyone
                    // has it).
                    if s.decided.is_none_or(|bit| bit == value.is_some())
                        && (s.decided.is_none() || s.majority.is_none())
                    {
                        s.decided = Some(value.is_some());
                        s.majority = value.clone();
                        out.push(Effect::Broadcast(Message::Decided { slot, value }));
                    }
                }
            }
            Message::Proposal { slot, value } => {
                if slot < self.next {
                    out.push(self.decision_for(from, slot));
                } else {
                    // A proposed request this replica never got forwarded
                    // (its proxy crashed mid-broadcast) joins the queue, so
                    // the heads converge.
                    if let Some(t) = &value {
                        self.enqueue(t.clone());
                    }
                    self.slots.entry(slot).or_default().proposals.insert(from, value);
                }
            }
            Message::State { slot, phase, bit, value } => {
                if slot >= self.next {
                    let s = self.slots.entry(slot).or_default();
                    if s.majority.is_none() {
                        s.majority = value;
                    }
                    s.states.entry(phase).or_default().insert(from, bit);
                } else {
                    out.push(self.decision_for(from, slot));
                }
            }
            Message::Vote { slot, phase, vote, value } => {
                if slot >= self.next {
                    let s = self.slots.entry(slot).or_default();
                    if s.majority.is_none() {
                        s.majority = value;
                    }
                    s.votes.entry(phase).or_default().insert(from, vote);
                } else {
                    out.push(self.decision_for(from, slot));
                }
            }
        }
        self.advance(&mut out);
        out
    }

    /// Tells a replica that is behind how `slot` was decided.
    fn decision_for(&self, to: ReplicaId, slot: u64) -> Effect {
        Effect::Send(to, Message::Decided { slot, value: self.log.get(&slot).cloned().flatten() })
    }

    /// Re-sends the current slot's own messages (for lost messages and
    /// replicas that fell behind; drivers call it on a timer).
    pub fn tick(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        let slot = self.next;
        if let Some(s) = self.slots.get(&slot) {
            if let Some(p) = s.proposals.get(&self.me) {
                out.push(Effect::Broadcast(Message::Proposal { slot, value: p.clone() }));
            }
            // Every phase's own state and vote: a replica still in an
            // earlier phase needs those.
            for (&phase, states) in &s.states {
                if let Some(&bit) = states.get(&self.me) {
                    let value = s.majority.clone().filter(|_| bit);
                    out.push(Effect::Broadcast(Message::State { slot, phase, bit, value }));
                }
            }
            for (&phase, votes) in &s.votes {
                if let Some(&vote) = votes.get(&self.me) {
                    let value = s.majority.clone().filter(|_| vote == Some(true));
                    out.push(Effect::Broadcast(Message::Vote { slot, phase, vote, value }));
                }
            }
        }
        out
    }

    /// Runs the current slot as far as the messages received allow.
    fn advance(&mut self, out: &mut Vec<Effect>) {
        loop {
            let slot = self.next;
            let quorum = self.n - self.f;
            let majority = self.n / 2 + 1;
            let head = self.queue.iter().next().cloned();
            let me = self.me;
            let s = self.slots.entry(slot).or_default();
            // A decision known (ours or adopted) with its request: apply.
            if let Some(bit) = s.decided
                && (!bit || s.majority.is_some())
            {
                let value = if bit { s.majority.clone() } else { None };
                self.commit(slot, value, out);
                continue;
            }
            // Propose once there is something to propose or others did.
            if !s.proposed && (head.is_some() || !s.proposals.is_empty()) {
                s.proposed = true;
                s.proposals.insert(me, head.clone());
                out.push(Effect::Broadcast(Message::Proposal { slot, value: head }));
            }
            // Late proposals may reveal the majority request.
            if s.majority.is_none() {
                let mut counts: BTreeMap<&Tagged, usize> = BTreeMap::new();
                for v in s.proposals.values().flatten() {
                    *counts.entry(v).or_default() += 1;
                }
                if let Some((v, _)) = counts.into_iter().find(|(_, c)| *c >= majority) {
                    s.majority = Some(v.clone());
                }
            }
            if s.decided.is_some() {
                return; // decided 1, waiting to learn the request
            }
            if s.phase == 0 {
                if s.proposals.len() < quorum {
                    return;
                }
                s.phase = 1;
                let bit = s.majority.is_some();
                s.states.entry(1).or_default().insert(me, bit);
                let value = s.majority.clone().filter(|_| bit);
                out.push(Effect::Broadcast(Message::State { slot, phase: 1, bit, value }));
            }
            let phase = s.phase;
            // Round 1 → vote.
            if !s.voted.contains(&phase) {
                let states = s.states.get(&phase).map_or(0, BTreeMap::len);
                if states < quorum {
                    return;
                }
                let ones = s.states[&phase].values().filter(|b| **b).count();
                let zeros = states - ones;
                let vote = if ones >= majority {
                    Some(true)
                } else if zeros >= majority {
                    Some(false)
                } else {
                    None
                };
                s.voted.insert(phase);
                s.votes.entry(phase).or_default().insert(me, vote);
                let value = s.majority.clone().filter(|_| vote == Some(true));
                out.push(Effect::Broadcast(Message::Vote { slot, phase, vote, value }));
            }
            // Round 2 → decide, or the next phase.
            let votes = s.votes.get(&phase).map_or(0, BTreeMap::len);
            if votes < quorum {
                return;
            }
            let ones = s.votes[&phase].values().filter(|v| **v == Some(true)).count();
            let zeros = s.votes[&phase].values().filter(|v| **v == Some(false)).count();
            if ones >= self.decide_at || zeros >= self.decide_at {
                let bit = ones >= self.decide_at;
                s.decided = Some(bit);
                if !bit || s.majority.is_some() {
                    let value = if bit { s.majority.clone() } else { None };
                    out.push(Effect::Broadcast(Message::Decided { slot, value }));
                }
                continue;
            }
            // Adopt a vote seen (its message carried the request), else the
            // coin; a coin of 1 counts only with the request known, so
            // every replica in state 1 knows what 1 commits (any choice is
            // safe here: with only "?" votes seen, nobody decided).
            let bit = if ones > 0 {
                true
            } else if zeros > 0 {
                false
            } else {
                Self::coin(slot, phase) && s.majority.is_some()
            };
            s.phase = phase + 1;
            s.states.entry(phase + 1).or_default().insert(me, bit);
            let value = s.majority.clone().filter(|_| bit);
            out.push(Effect::Broadcast(Message::State { slot, phase: phase + 1, bit, value }));
        }
    }

    fn commit(&mut self, slot: u64, value: Option<Tagged>, out: &mut Vec<Effect>) {
        self.slots.remove(&slot);
        if let Some(t) = &value {
            self.queue.remove(t);
            for r in &t.requests {
                // A retried request may be in two batches: the session
                // applies it once and answers the copy with the same reply.
                self.committed.insert((r.client, r.seq));
                let reply = self.kv.apply(r);
                if t.proxy == self.me {
                    out.push(Effect::Reply { client: r.client, seq: r.seq, reply });
                }
            }
            // Batches whose every request is now applied leave the queue.
            let stale: Vec<Tagged> = self
                .queue
                .iter()
                .filter(|q| q.requests.iter().all(|r| self.committed.contains(&(r.client, r.seq))))
                .cloned()
                .collect();
            for q in stale {
                self.queue.remove(&q);
            }
        }
        self.log.insert(slot, value);
        self.next = slot + 1;
        self.flush(out);
    }
}

impl crate::protocol::Protocol for Replica {
    type Message = Message;

    fn on_client(&mut self, request: Request, now: u64) -> Vec<Effect> {
        Replica::on_client(self, request, now)
    }

    fn on_message(&mut self, from: ReplicaId, message: Message) -> Vec<Effect> {
        Replica::on_message(self, from, message)
    }

    fn tick(&mut self) -> Vec<Effect> {
        Replica::tick(self)
    }

    fn wire_bytes(message: &Message) -> usize {
        message.wire_bytes()
    }

    fn decisions(&self) -> BTreeMap<u64, Option<(u64, u64)>> {
        self.log.iter().map(|(&slot, v)| (slot, v.as_ref().map(Tagged::id))).collect()
    }

    fn state_digest(&self) -> u64 {
        self.kv.digest()
    }

    fn summary(&self) -> String {
        Replica::summary(self)
    }
}
