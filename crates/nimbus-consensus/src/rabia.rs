//! Rabia (Pan et al., SOSP'21): leaderless state-machine replication with
//! randomized binary consensus, as a sans-IO state machine: messages in,
//! messages and effects out; no clocks, sockets or threads inside.
//!
//! Mechanism, per log slot:
//! 1. A replica that receives client requests batches them (a new batch
//!    whenever its previous one is decided, up to `max_batch` requests)
//!    and forwards the batch to every replica; each keeps batches in a
//!    queue ordered by (proxy timestamp, proxy, batch number), so correct
//!    replicas tend to have the same head.
//! 2. Proposal exchange: each replica broadcasts the id of its head (or
//!    nothing) and waits for n − f proposals. Fast path: an id proposed
//!    by ⌊n/2⌋ + f + 1 replicas is decided at once (every other replica
//!    then sees a majority for it, so all start the binary consensus in
//!    state 1). Otherwise an id proposed by a majority (⌊n/2⌋ + 1) sets
//!    the state to 1, else 0.
//! 3. Randomized binary consensus in phases: round 1 exchanges states; a
//!    majority for a bit makes it the vote, else "?". Round 2 exchanges
//!    votes; f + 1 matching votes decide that bit; otherwise a replica
//!    adopts a non-"?" vote it saw or, when all were "?", a common coin
//!    (a hash of the slot and phase, the same at every replica).
//! 4. Decision 1 commits the majority batch; 0 is a NULL slot. Deciders
//!    broadcast the decision, so replicas still in the slot adopt it.
//!
//! Consensus messages carry batch ids (24 bytes), never bodies: a body
//! crosses the network once per replica, in its proxy's forward, so a
//! write of V bytes costs (n − 1)·V of traffic and n·V of disk. A replica
//! that must commit or propose a batch whose body it lacks (a forward was
//! lost, or its proxy crashed mid-broadcast) asks a holder for it; a
//! majority proposed it, so at least one live replica holds it.
//!
//! States and votes of 1 carry the majority id, and a coin of 1 is taken
//! only by a replica that knows it, so every replica in state 1 knows what
//! 1 commits (a liveness bug the fault schedules of `tests/fault_schedules.rs`
//! found, where a crash loses undelivered messages).
//!
//! Durability and recovery: a replica persists every body it holds and its
//! own proposal, states and votes before sending them (write-ahead, see
//! [`crate::protocol`]); a restarted replica takes them back, so it never
//! contradicts what it said before the crash, and it relearns decisions
//! from the others: a replica behind (it hears of slots two past its own,
//! or of any later slot at a tick) asks one replica for the decisions from
//! its next slot, which answers with up to 64 decided slots and their
//! bodies, or with a snapshot of its store once those bodies are no longer
//! kept (`retain_bytes` of the latest). Decisions themselves are not
//! persisted: they are fixed by the votes, and relearnt.
//!
//! Replicas apply committed requests in slot order to a [`KvStore`]; the
//! replica that took a request from its client answers it. A retried
//! request is applied once (client sessions).
//!
//! Deviations: one batch per slot and no pipelining of slots (as Rabia);
//! the fast path follows the project's protocol notes; lost messages are
//! recovered by `tick`, which re-sends the current slot's messages, and
//! replicas ahead answer messages of decided slots with the decision.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::kv::{KvStore, Reply, Request, Value};
use crate::protocol::HEADER_BYTES;

pub use crate::protocol::ReplicaId;

/// A batch's identity; its order is the queues' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId {
    /// Proxy timestamp (ns of its clock).
    pub ts: u64,
    /// Replica that formed the batch and answers its clients.
    pub proxy: ReplicaId,
    /// The proxy's batch number.
    pub batch: u64,
}

impl BatchId {
    /// Bytes of an id on the wire.
    pub const BYTES: usize = 24;

    /// (proxy, batch number): unique per batch.
    pub fn pair(&self) -> (u64, u64) {
        (self.proxy as u64, self.batch)
    }
}

/// A proxy's batch of client requests; the unit a slot commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Its identity.
    pub id: BatchId,
    /// The requests, in order.
    pub requests: Vec<Request>,
}

impl Batch {
    /// Bytes on the wire: the id, then 16 bytes of ids and the command's
    /// key and value per request.
    pub fn wire_bytes(&self) -> usize {
        BatchId::BYTES + self.requests.iter().map(|r| 16 + r.command.payload_bytes()).sum::<usize>()
    }
}

/// A replica's store and where its log stands, for a replica too far
/// behind to be sent the decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The first slot not in the store.
    pub next: u64,
    /// The store after every slot before `next`.
    pub store: KvStore,
}

/// Protocol messages (and durable records: `Forward`, `Proposal`,
/// `State`, `Vote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A batch's body, from its proxy or from a holder asked for it.
    Forward(Arc<Batch>),
    /// Send me this batch's body.
    Need {
        /// The batch.
        id: BatchId,
    },
    /// A slot's proposal (`None`: nothing pending).
    Proposal {
        /// Slot.
        slot: u64,
        /// Proposed batch.
        value: Option<BatchId>,
    },
    /// Round 1 of a phase.
    State {
        /// Slot.
        slot: u64,
        /// Phase, from 1.
        phase: u32,
        /// The sender's bit.
        bit: bool,
        /// With bit 1, the majority batch it stands for.
        value: Option<BatchId>,
    },
    /// Round 2 of a phase.
    Vote {
        /// Slot.
        slot: u64,
        /// Phase.
        phase: u32,
        /// The vote (`None`: "?").
        vote: Option<bool>,
        /// With vote 1, the majority batch it stands for.
        value: Option<BatchId>,
    },
    /// A slot's decision.
    Decided {
        /// Slot.
        slot: u64,
        /// The committed batch (`None`: NULL slot).
        value: Option<BatchId>,
    },
    /// I am behind: send me the decisions from this slot.
    Behind {
        /// The sender's next slot.
        next: u64,
    },
    /// A store to adopt.
    Snapshot(Arc<Snapshot>),
}

impl Message {
    /// Bytes on the wire: a header plus any id, body or store it carries.
    pub fn wire_bytes(&self) -> usize {
        let id = |v: &Option<BatchId>| if v.is_some() { BatchId::BYTES } else { 0 };
        HEADER_BYTES
            + match self {
                Message::Forward(b) => b.wire_bytes(),
                Message::Need { .. } => BatchId::BYTES,
                Message::Proposal { value, .. }
                | Message::State { value, .. }
                | Message::Vote { value, .. }
                | Message::Decided { value, .. } => id(value),
                Message::Behind { .. } => 8,
                Message::Snapshot(s) => 8 + s.store.bytes(),
            }
    }

    /// The slot it concerns, if any.
    fn slot(&self) -> Option<u64> {
        match self {
            Message::Proposal { slot, .. }
            | Message::State { slot, .. }
            | Message::Vote { slot, .. }
            | Message::Decided { slot, .. } => Some(*slot),
            _ => None,
        }
    }
}

/// Rabia's effects.
pub type Effect = crate::protocol::Effect<Message>;

/// Tunable parts of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RabiaConfig {
    /// Most requests per batch.
    pub max_batch: usize,
    /// Decide at once on ⌊n/2⌋ + f + 1 equal proposals.
    pub fast_path: bool,
    /// Bytes of the latest committed bodies kept to bring lagging
    /// replicas up to date; one further behind gets a snapshot.
    pub retain_bytes: usize,
}

impl Default for RabiaConfig {
    fn default() -> Self {
        RabiaConfig { max_batch: 64, fast_path: true, retain_bytes: 64 << 20 }
    }
}

/// Most decided slots one answer to `Behind` carries.
const CATCH_UP_SLOTS: u64 = 64;

#[derive(Debug, Default)]
struct Slot {
    proposals: BTreeMap<ReplicaId, Option<BatchId>>,
    proposed: bool,
    /// The majority batch, once seen.
    majority: Option<BatchId>,
    phase: u32,
    states: BTreeMap<u32, BTreeMap<ReplicaId, bool>>,
    votes: BTreeMap<u32, BTreeMap<ReplicaId, Option<bool>>>,
    voted: BTreeSet<u32>,
    decided: Option<bool>,
    /// A replica that sent the decision or proposed the majority batch
    /// (asked first for a missing body).
    holder: Option<ReplicaId>,
    /// The missing body was asked for.
    asked: bool,
}

/// Replica settings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replica {me} of {n} tolerating {f} crashes: the protocol needs n >= 2f + 1 and an id below n")]
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
    config: RabiaConfig,
    /// Bodies of pending batches and of the latest committed ones.
    bodies: BTreeMap<BatchId, Arc<Batch>>,
    /// Committed bodies kept, oldest first: (slot, batch, bytes).
    retained: VecDeque<(u64, BatchId, usize)>,
    retained_bytes: usize,
    /// Pending batches whose body is here, in proposal order.
    queue: BTreeSet<BatchId>,
    /// Bodies a proposal named and this replica lacks, with the proposer.
    requested: BTreeMap<BatchId, ReplicaId>,
    slots: BTreeMap<u64, Slot>,
    /// Client requests not yet in a batch.
    pending: Vec<Request>,
    next_batch: u64,
    /// Latest time a client request brought (batch timestamps).
    clock: u64,
    /// Matching votes that decide (f + 1).
    decide_at: usize,
    /// The next slot to decide and apply.
    next: u64,
    log: BTreeMap<u64, Option<BatchId>>,
    /// Bodies of committed slots from here on are kept.
    retained_from: u64,
    kv: KvStore,
    /// The highest slot any message named.
    seen: u64,
    /// The slot this replica last asked the decisions from.
    asked_from: Option<u64>,
    /// Rotates the replica asked.
    ask_turn: usize,
}

impl Replica {
    /// Replica `me` of `n`, tolerating `f` crashes (n ≥ 2f + 1), with the
    /// default settings.
    pub fn new(me: ReplicaId, n: usize, f: usize) -> Result<Self, ConfigError> {
        Self::with_config(me, n, f, RabiaConfig::default())
    }

    /// Replica `me` of `n` with the given settings.
    pub fn with_config(me: ReplicaId, n: usize, f: usize, config: RabiaConfig) -> Result<Self, ConfigError> {
        if n <= 2 * f || me >= n || config.max_batch == 0 {
            return Err(ConfigError { n, f, me });
        }
        Ok(Replica {
            me,
            n,
            f,
            config,
            bodies: BTreeMap::new(),
            retained: VecDeque::new(),
            retained_bytes: 0,
            queue: BTreeSet::new(),
            requested: BTreeMap::new(),
            slots: BTreeMap::new(),
            pending: Vec::new(),
            next_batch: 0,
            clock: 0,
            decide_at: f + 1,
            next: 0,
            log: BTreeMap::new(),
            retained_from: 0,
            kv: KvStore::new(),
            seen: 0,
            asked_from: None,
            ask_turn: 0,
        })
    }

    /// A deliberately unsafe replica that decides on `votes` matching votes
    /// instead of f + 1 (and takes no fast path), so tests can show that
    /// the safety checks catch a broken protocol. Never use it otherwise.
    pub fn with_unsafe_decision_threshold(
        me: ReplicaId,
        n: usize,
        f: usize,
        votes: usize,
    ) -> Result<Self, ConfigError> {
        let config = RabiaConfig { fast_path: false, ..RabiaConfig::default() };
        Ok(Replica { decide_at: votes.max(1), ..Self::with_config(me, n, f, config)? })
    }

    /// The decided log so far (slot → batch or NULL).
    pub fn log(&self) -> &BTreeMap<u64, Option<BatchId>> {
        &self.log
    }

    /// The next slot to decide (slots applied).
    pub fn next_slot(&self) -> u64 {
        self.next
    }

    /// A one-line summary of where it stands (for failure reports).
    pub fn summary(&self) -> String {
        let s = self.slots.get(&self.next);
        format!(
            "replica {}: next slot {} (seen {}), {} queued, {} pending, proposals {}, phase {}, decided {:?}, majority {:?}, body {}",
            self.me,
            self.next,
            self.seen,
            self.queue.len(),
            self.pending.len(),
            s.map_or(0, |s| s.proposals.len()),
            s.map_or(0, |s| s.phase),
            s.and_then(|s| s.decided),
            s.and_then(|s| s.majority).map(|m| m.pair()),
            s.and_then(|s| s.majority).is_some_and(|m| self.bodies.contains_key(&m)),
        )
    }

    /// The replicated store.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    /// Starts keeping the values that applied writes replace.
    pub fn track_overwritten(&mut self) {
        self.kv.track_overwritten();
    }

    /// The values replaced by writes applied since the last call.
    pub fn take_overwritten(&mut self) -> Vec<Value> {
        self.kv.take_overwritten()
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
        if self.kv.is_applied(request.client, request.seq) {
            // A retry of a request already applied: the session's reply.
            let reply = self.kv.apply(&request);
            return vec![Effect::Reply { client: request.client, seq: request.seq, reply }];
        }
        if !self.pending.iter().any(|r| (r.client, r.seq) == (request.client, request.seq)) {
            self.pending.push(request);
        }
        let mut out = Vec::new();
        self.flush(&mut out);
        self.advance(&mut out);
        out
    }

    /// Forms a batch of the pending requests unless one of this proxy's
    /// batches is still undecided (so requests arriving meanwhile batch up).
    fn flush(&mut self, out: &mut Vec<Effect>) {
        if self.pending.is_empty() || self.queue.iter().any(|id| id.proxy == self.me) {
            return;
        }
        let take = self.pending.len().min(self.config.max_batch);
        let requests: Vec<Request> = self.pending.drain(..take).collect();
        let id = BatchId { ts: self.clock, proxy: self.me, batch: self.next_batch };
        self.next_batch += 1;
        let batch = Arc::new(Batch { id, requests });
        out.push(Effect::Persist(Message::Forward(batch.clone())));
        out.push(Effect::Broadcast(Message::Forward(batch.clone())));
        self.bodies.insert(id, batch);
        self.queue.insert(id);
    }

    /// Keeps a body if some request of it is not applied yet; whether it
    /// is new here.
    fn keep_body(&mut self, batch: Arc<Batch>) -> bool {
        let id = batch.id;
        self.requested.remove(&id);
        if self.bodies.contains_key(&id) || batch.requests.iter().all(|r| self.kv.is_applied(r.client, r.seq)) {
            return false;
        }
        self.bodies.insert(id, batch);
        self.queue.insert(id);
        true
    }

    /// Notes a slot some message named; a replica two slots behind asks
    /// the sender for the decisions.
    fn note_slot(&mut self, slot: u64, from: ReplicaId, out: &mut Vec<Effect>) {
        self.seen = self.seen.max(slot);
        if slot >= self.next + 2 && self.asked_from != Some(self.next) {
            self.asked_from = Some(self.next);
            out.push(Effect::Send(from, Message::Behind { next: self.next }));
        }
    }

    /// A message from replica `from`.
    pub fn on_message(&mut self, from: ReplicaId, message: Message) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Some(slot) = message.slot() {
            self.note_slot(slot, from, &mut out);
        }
        match message {
            Message::Forward(batch) => {
                if self.keep_body(batch.clone()) {
                    out.push(Effect::Persist(Message::Forward(batch)));
                }
            }
            Message::Need { id } => {
                if let Some(b) = self.bodies.get(&id) {
                    out.push(Effect::Send(from, Message::Forward(b.clone())));
                }
            }
            Message::Decided { slot, value } => {
                if slot >= self.next {
                    let s = self.slots.entry(slot).or_default();
                    // Adopt it, or learn the batch of our own decision 1,
                    // and pass it on (its sender may crash before everyone
                    // has it).
                    if s.decided.is_none() || (s.decided == Some(true) && s.majority.is_none() && value.is_some()) {
                        s.decided = Some(value.is_some());
                        if value.is_some() {
                            s.majority = value;
                            s.holder = Some(from);
                        }
                        out.push(Effect::Broadcast(Message::Decided { slot, value }));
                    }
                }
            }
            Message::Proposal { slot, value } => {
                if slot < self.next {
                    self.decision_for(from, slot, &mut out);
                } else {
                    // A proposed batch this replica has not got: its forward
                    // may still be on the way, or lost (its proxy crashed
                    // mid-broadcast); the next tick asks the proposer, so
                    // the heads converge.
                    if let Some(id) = value
                        && !self.bodies.contains_key(&id)
                    {
                        self.requested.entry(id).or_insert(from);
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
                    self.decision_for(from, slot, &mut out);
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
                    self.decision_for(from, slot, &mut out);
                }
            }
            Message::Behind { next } => self.catch_up(from, next, &mut out),
            Message::Snapshot(snapshot) => self.adopt(&snapshot, &mut out),
        }
        self.advance(&mut out);
        out
    }

    /// Tells a replica that is behind how `slot` was decided.
    fn decision_for(&self, to: ReplicaId, slot: u64, out: &mut Vec<Effect>) {
        match self.log.get(&slot) {
            Some(&value) => out.push(Effect::Send(to, Message::Decided { slot, value })),
            None => self.send_snapshot(to, out),
        }
    }

    fn send_snapshot(&self, to: ReplicaId, out: &mut Vec<Effect>) {
        let snapshot = Snapshot { next: self.next, store: self.kv.clone() };
        out.push(Effect::Send(to, Message::Snapshot(Arc::new(snapshot))));
    }

    /// Answers `Behind`: the decided slots from `from_slot` with their
    /// bodies, or a snapshot once those bodies are gone.
    fn catch_up(&self, to: ReplicaId, from_slot: u64, out: &mut Vec<Effect>) {
        if from_slot >= self.next {
            return;
        }
        if from_slot < self.retained_from || !self.log.contains_key(&from_slot) {
            self.send_snapshot(to, out);
            return;
        }
        for slot in from_slot..self.next.min(from_slot + CATCH_UP_SLOTS) {
            let Some(&value) = self.log.get(&slot) else { break };
            if let Some(body) = value.and_then(|id| self.bodies.get(&id)) {
                out.push(Effect::Send(to, Message::Forward(body.clone())));
            }
            out.push(Effect::Send(to, Message::Decided { slot, value }));
        }
    }

    /// Adopts a snapshot ahead of this replica.
    fn adopt(&mut self, snapshot: &Snapshot, out: &mut Vec<Effect>) {
        if snapshot.next <= self.next {
            return;
        }
        self.kv.restore(&snapshot.store);
        self.next = snapshot.next;
        self.retained_from = self.next;
        for (_, id, _) in self.retained.drain(..) {
            self.bodies.remove(&id);
        }
        self.retained_bytes = 0;
        self.slots = self.slots.split_off(&self.next);
        self.drop_applied(out);
        self.flush(out);
    }

    /// Pending batches whose every request is applied (through another
    /// proxy's batch, after a client retried) leave the queue, and so do
    /// unbatched requests; this proxy's own are answered from the session,
    /// since their batch will never commit to answer them.
    fn drop_applied(&mut self, out: &mut Vec<Effect>) {
        let kv = &self.kv;
        let done: Vec<BatchId> = self
            .queue
            .iter()
            .filter(|id| self.bodies[*id].requests.iter().all(|r| kv.is_applied(r.client, r.seq)))
            .copied()
            .collect();
        let mut answered = Vec::new();
        for id in done {
            self.queue.remove(&id);
            if let Some(body) = self.bodies.remove(&id)
                && id.proxy == self.me
            {
                answered.extend(body.requests.iter().cloned());
            }
        }
        let (applied, waiting) = self.pending.drain(..).partition(|r| self.kv.is_applied(r.client, r.seq));
        self.pending = waiting;
        answered.extend::<Vec<Request>>(applied);
        for r in answered {
            let reply = self.kv.apply(&r);
            if reply != Reply::Stale {
                out.push(Effect::Reply { client: r.client, seq: r.seq, reply });
            }
        }
    }

    /// Re-sends the current slot's own messages (for lost messages and
    /// replicas that fell behind), asks again for a missing body, and asks
    /// for the decisions when behind; drivers call it on a timer.
    pub fn tick(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        let slot = self.next;
        if let Some(s) = self.slots.get_mut(&slot) {
            if let Some(p) = s.proposals.get(&self.me) {
                out.push(Effect::Broadcast(Message::Proposal { slot, value: *p }));
            }
            // Every phase's own state and vote: a replica still in an
            // earlier phase needs those.
            for (&phase, states) in &s.states {
                if let Some(&bit) = states.get(&self.me) {
                    let value = s.majority.filter(|_| bit);
                    out.push(Effect::Broadcast(Message::State { slot, phase, bit, value }));
                }
            }
            for (&phase, votes) in &s.votes {
                if let Some(&vote) = votes.get(&self.me) {
                    let value = s.majority.filter(|_| vote == Some(true));
                    out.push(Effect::Broadcast(Message::Vote { slot, phase, vote, value }));
                }
            }
            // A decided batch still missing: ask a holder, then everyone.
            if let Some(id) = s.majority.filter(|id| s.decided == Some(true) && !self.bodies.contains_key(id)) {
                let ask = Message::Need { id };
                out.push(match s.holder {
                    Some(h) if h != self.me && !s.asked => Effect::Send(h, ask),
                    _ => Effect::Broadcast(ask),
                });
                s.asked = true;
            }
        }
        // Bodies named in proposals and still missing: ask the proposer.
        for (&id, &proposer) in &self.requested {
            out.push(Effect::Send(proposer, Message::Need { id }));
        }
        if self.seen > self.next {
            self.asked_from = Some(self.next);
            self.ask_turn += 1;
            let to = (self.me + self.ask_turn) % self.n;
            if to != self.me {
                out.push(Effect::Send(to, Message::Behind { next: self.next }));
            }
        }
        out
    }

    /// A fresh replica takes back its durable records: bodies, and its own
    /// proposals, states and votes (so it never contradicts them).
    pub fn recover(&mut self, durable: Vec<Message>) -> Vec<Effect> {
        for record in durable {
            match record {
                Message::Forward(batch) => {
                    if batch.id.proxy == self.me {
                        self.next_batch = self.next_batch.max(batch.id.batch + 1);
                    }
                    self.keep_body(batch);
                }
                Message::Proposal { slot, value } => {
                    let s = self.slots.entry(slot).or_default();
                    s.proposed = true;
                    s.proposals.insert(self.me, value);
                    self.seen = self.seen.max(slot);
                }
                Message::State { slot, phase, bit, value } => {
                    let s = self.slots.entry(slot).or_default();
                    s.states.entry(phase).or_default().insert(self.me, bit);
                    s.phase = s.phase.max(phase);
                    s.majority = s.majority.or(value);
                    self.seen = self.seen.max(slot);
                }
                Message::Vote { slot, phase, vote, value } => {
                    let s = self.slots.entry(slot).or_default();
                    s.votes.entry(phase).or_default().insert(self.me, vote);
                    s.voted.insert(phase);
                    s.majority = s.majority.or(value);
                    self.seen = self.seen.max(slot);
                }
                _ => {}
            }
        }
        // Ask for the decisions right away.
        let to = (self.me + 1) % self.n;
        self.asked_from = Some(self.next);
        vec![Effect::Send(to, Message::Behind { next: self.next })]
    }

    /// Loads a record before the run.
    pub fn preload(&mut self, key: &str, value: &Value) {
        self.kv.preload(key.to_string(), value.clone());
    }

    /// Runs the current slot as far as the messages received allow.
    fn advance(&mut self, out: &mut Vec<Effect>) {
        loop {
            let slot = self.next;
            let quorum = self.n - self.f;
            let majority = self.n / 2 + 1;
            let head = self.queue.iter().next().copied();
            let me = self.me;
            let s = self.slots.entry(slot).or_default();
            // A decision known (ours or adopted) with its batch: apply.
            if let Some(bit) = s.decided {
                match s.majority.filter(|_| bit) {
                    None if bit => return, // decided 1, waiting to learn which batch
                    None => {
                        self.commit(slot, None, out);
                        continue;
                    }
                    Some(id) if self.bodies.contains_key(&id) => {
                        self.commit(slot, Some(id), out);
                        continue;
                    }
                    // Decided before its forward arrived: the next tick
                    // asks a holder, unless the forward comes first.
                    Some(_) => return,
                }
            }
            // Propose once there is something to propose or others did.
            if !s.proposed && (head.is_some() || !s.proposals.is_empty()) {
                s.proposed = true;
                s.proposals.insert(me, head);
                out.push(Effect::Persist(Message::Proposal { slot, value: head }));
                out.push(Effect::Broadcast(Message::Proposal { slot, value: head }));
            }
            // Late proposals may reveal the majority batch.
            let mut counts: BTreeMap<BatchId, usize> = BTreeMap::new();
            for v in s.proposals.values().flatten() {
                *counts.entry(*v).or_default() += 1;
            }
            let top = counts.iter().max_by_key(|(id, c)| (**c, std::cmp::Reverse(**id))).map(|(id, c)| (*id, *c));
            if s.majority.is_none()
                && let Some((id, c)) = top
                && c >= majority
            {
                s.majority = Some(id);
            }
            if s.phase == 0 {
                if s.proposals.len() < quorum {
                    return;
                }
                // Fast path: every other replica will see a majority for it.
                if self.config.fast_path
                    && let Some((id, c)) = top
                    && c > self.n / 2 + self.f
                {
                    s.decided = Some(true);
                    s.majority = Some(id);
                    s.holder = s.proposals.iter().find(|(r, v)| **v == Some(id) && **r != me).map(|(r, _)| *r);
                    out.push(Effect::Broadcast(Message::Decided { slot, value: Some(id) }));
                    continue;
                }
                s.phase = 1;
                let bit = s.majority.is_some();
                s.states.entry(1).or_default().insert(me, bit);
                let value = s.majority.filter(|_| bit);
                let state = Message::State { slot, phase: 1, bit, value };
                out.push(Effect::Persist(state.clone()));
                out.push(Effect::Broadcast(state));
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
                let value = s.majority.filter(|_| vote == Some(true));
                let message = Message::Vote { slot, phase, vote, value };
                out.push(Effect::Persist(message.clone()));
                out.push(Effect::Broadcast(message));
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
                if bit {
                    s.holder = s.proposals.iter().find(|(r, v)| **v == s.majority && **r != me).map(|(r, _)| *r);
                }
                if !bit || s.majority.is_some() {
                    let value = if bit { s.majority } else { None };
                    out.push(Effect::Broadcast(Message::Decided { slot, value }));
                }
                continue;
            }
            // Adopt a vote seen (its message carried the batch id), else
            // the coin; a coin of 1 counts only with the batch known, so
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
            let value = s.majority.filter(|_| bit);
            let state = Message::State { slot, phase: phase + 1, bit, value };
            out.push(Effect::Persist(state.clone()));
            out.push(Effect::Broadcast(state));
        }
    }

    fn commit(&mut self, slot: u64, value: Option<BatchId>, out: &mut Vec<Effect>) {
        self.slots.remove(&slot);
        if let Some(id) = value {
            self.queue.remove(&id);
            let body = self.bodies[&id].clone();
            for r in &body.requests {
                // A retried request may be in two batches: the session
                // applies it once and answers the copy with the same reply.
                let reply = self.kv.apply(r);
                if id.proxy == self.me {
                    out.push(Effect::Reply { client: r.client, seq: r.seq, reply });
                }
            }
            self.drop_applied(out);
        }
        self.log.insert(slot, value);
        self.next = slot + 1;
        // Later proposals name again what is still missing.
        self.requested.clear();
        // Committed bodies are kept within the budget, newest first.
        if let Some(id) = value {
            let bytes = self.bodies.get(&id).map_or(0, |b| b.wire_bytes());
            self.retained.push_back((slot, id, bytes));
            self.retained_bytes += bytes;
        }
        while self.retained_bytes > self.config.retain_bytes {
            let Some((old_slot, old, bytes)) = self.retained.pop_front() else { break };
            self.bodies.remove(&old);
            self.retained_bytes -= bytes;
            self.retained_from = old_slot + 1;
        }
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

    fn recover(&mut self, durable: Vec<Message>) -> Vec<Effect> {
        Replica::recover(self, durable)
    }

    fn preload(replicas: &mut [Self], key: &str, value: &Value) {
        for r in replicas {
            Replica::preload(r, key, value);
        }
    }

    fn wire_bytes(message: &Message) -> usize {
        message.wire_bytes()
    }

    fn decisions(&self) -> BTreeMap<u64, Option<(u64, u64)>> {
        self.log.iter().map(|(&slot, v)| (slot, v.as_ref().map(BatchId::pair))).collect()
    }

    fn applied_slots(&self) -> u64 {
        self.next
    }

    fn state_digest(&self) -> u64 {
        self.kv.digest()
    }

    fn summary(&self) -> String {
        Replica::summary(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Command;

    fn put(client: u64, seq: u64, key: &str) -> Request {
        Request { client, seq, command: Command::Put { key: key.into(), value: vec![7u8; 1000].into() } }
    }

    /// Client replies (client, seq, reply) and each replica's records.
    type Settled = (Vec<(u64, u64, Reply)>, Vec<Vec<Message>>);

    /// Delivers every message until none is left, dropping those to
    /// `deaf` replicas; returns the client replies and each replica's
    /// persisted records.
    fn settle(
        replicas: &mut [Replica],
        mut inbox: Vec<(ReplicaId, ReplicaId, Message)>,
        deaf: &[ReplicaId],
    ) -> Settled {
        let mut replies = Vec::new();
        let n = replicas.len();
        let mut durable = vec![Vec::new(); n];
        let mut route = |from: ReplicaId, effects: Vec<Effect>, inbox: &mut Vec<(ReplicaId, ReplicaId, Message)>| {
            for e in effects {
                match e {
                    Effect::Send(to, m) => inbox.push((from, to, m)),
                    Effect::Broadcast(m) => inbox.extend((0..n).filter(|&t| t != from).map(|t| (from, t, m.clone()))),
                    Effect::Reply { client, seq, reply } => replies.push((client, seq, reply)),
                    Effect::Persist(m) => durable[from].push(m),
                }
            }
        };
        let mut steps = 0;
        while !inbox.is_empty() {
            let (from, to, m) = inbox.remove(0);
            if deaf.contains(&to) {
                continue;
            }
            let effects = replicas[to].on_message(from, m);
            route(to, effects, &mut inbox);
            steps += 1;
            assert!(steps < 100_000, "messages never settled");
        }
        (replies, durable)
    }

    fn broadcasts(from: ReplicaId, n: usize, effects: Vec<Effect>) -> Vec<(ReplicaId, ReplicaId, Message)> {
        effects
            .into_iter()
            .flat_map(|e| match e {
                Effect::Broadcast(m) => (0..n).filter(|&t| t != from).map(|t| (from, t, m.clone())).collect(),
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn a_batch_crosses_the_network_once_and_consensus_carries_ids() {
        let mut replicas: Vec<Replica> = (0..3).map(|i| Replica::new(i, 3, 1).expect("valid")).collect();
        let effects = replicas[0].on_client(put(1, 1, "k"), 5);
        // Persist the body, forward it, then the proposal (persisted first).
        assert!(matches!(effects[0], Effect::Persist(Message::Forward(_))));
        assert!(matches!(effects[1], Effect::Broadcast(Message::Forward(_))));
        let inbox = broadcasts(0, 3, effects);
        assert_eq!(inbox[0].2.wire_bytes(), HEADER_BYTES + 24 + 16 + 1 + 1000);
        let (replies, _) = settle(&mut replicas, inbox, &[]);
        assert_eq!(replies, vec![(1, 1, Reply::Written)]);
        for r in &replicas {
            assert_eq!(r.next_slot(), 1);
            assert_eq!(r.store().get("k").map(<[u8]>::len), Some(1000));
        }
        let proposal = Message::Proposal { slot: 0, value: Some(replicas[0].log()[&0].expect("batch")) };
        assert_eq!(proposal.wire_bytes(), HEADER_BYTES + 24);
    }

    #[test]
    fn a_far_behind_replica_gets_a_snapshot_and_a_near_one_the_decisions() {
        // Room for two 1,041-byte bodies.
        let config = RabiaConfig { retain_bytes: 2_100, ..RabiaConfig::default() };
        let mut replicas: Vec<Replica> =
            (0..3).map(|i| Replica::with_config(i, 3, 1, config).expect("valid")).collect();
        // Replica 2 hears nothing: 0 and 1 (a quorum of n - f = 2) decide
        // five slots.
        for seq in 1..=5 {
            let effects = replicas[0].on_client(put(1, seq, "k"), seq);
            settle(&mut replicas, broadcasts(0, 3, effects), &[2]);
        }
        assert_eq!((replicas[0].next_slot(), replicas[2].next_slot()), (5, 0));
        // Slot 4's body is still kept: decisions and bodies come back.
        let effects = replicas[0].on_message(2, Message::Behind { next: 4 });
        assert!(matches!(
            effects[..],
            [Effect::Send(2, Message::Forward(_)), Effect::Send(2, Message::Decided { slot: 4, .. })]
        ));
        // Slot 0's is not (two bodies are kept): a snapshot.
        let effects = replicas[0].on_message(2, Message::Behind { next: 0 });
        let [Effect::Send(2, Message::Snapshot(s))] = &effects[..] else { panic!("expected a snapshot: {effects:?}") };
        replicas[2].on_message(0, Message::Snapshot(s.clone()));
        assert_eq!(replicas[2].next_slot(), 5);
        assert_eq!(replicas[2].store().digest(), replicas[0].store().digest());
        // A retry of an applied request is answered from the session.
        let again = replicas[2].on_client(put(1, 5, "k"), 9);
        assert_eq!(again, vec![Effect::Reply { client: 1, seq: 5, reply: Reply::Written }]);
    }

    #[test]
    fn a_recovered_replica_keeps_its_votes_and_relearns_the_log() {
        let mut replicas: Vec<Replica> = (0..3).map(|i| Replica::new(i, 3, 1).expect("valid")).collect();
        let effects = replicas[0].on_client(put(1, 1, "k"), 1);
        let (_, durable) = settle(&mut replicas, broadcasts(0, 3, effects), &[]);
        // Replica 1 persisted the body and its own proposal for slot 0 (the
        // fast path needs no state or vote at n = 3... it needs all three
        // proposals, so with two it ran a phase: its state and vote too).
        let kinds: Vec<&str> = durable[1]
            .iter()
            .map(|m| match m {
                Message::Forward(_) => "forward",
                Message::Proposal { .. } => "proposal",
                Message::State { .. } => "state",
                Message::Vote { .. } => "vote",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds[..2], ["forward", "proposal"]);
        let mut restarted = Replica::new(1, 3, 1).expect("valid");
        let effects = restarted.recover(durable[1].clone());
        assert_eq!(effects, vec![Effect::Send(2, Message::Behind { next: 0 })]);
        // Its proposal for slot 0 is back: it does not propose again.
        assert!(restarted.slots[&0].proposed);
        let answer = replicas[2].on_message(1, Message::Behind { next: 0 });
        for e in answer {
            if let Effect::Send(1, m) = e {
                restarted.on_message(2, m);
            }
        }
        assert_eq!(restarted.next_slot(), 1);
        assert_eq!(restarted.store().digest(), replicas[2].store().digest());
    }
}
