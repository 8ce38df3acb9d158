//! Leader-based baselines in steady state: Multi-Paxos with full copies
//! and RS-Paxos/CRaft-style erasure coding, as sans-IO state machines.
//!
//! Mechanism: replica 0 is the leader. A replica that receives a client
//! request forwards it to the leader; the leader gives it the next slot and
//! sends `Accept` to every follower — the whole request (full copy), or the
//! request's descriptor with that follower's Reed–Solomon shard of the
//! value (erasure-coded). A follower stores what it got and answers
//! `Accepted`; the leader commits a slot once a quorum accepted (a
//! majority for full copy; ⌈(n + data) / 2⌉ for erasure coding, so any two
//! quorums share `data` shards, as RS-Paxos requires), applies committed
//! slots in order, answers the client and tells the followers to apply.
//! The leader keeps whole values, so it serves reads itself in log order.
//!
//! Deviations: steady state only — no leader election, view change or
//! recovery, so these baselines run without crashes, loss or partitions;
//! slots are pipelined without a window.

use std::collections::BTreeMap;

use crate::erasure::{self, Shard};
use crate::kv::{Command, KvStore, Request, Value};
use crate::protocol::{Effect, HEADER_BYTES, Protocol, ReplicaId};
use crate::rabia::ConfigError;

/// Messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A client request for the leader.
    Forward {
        /// The request.
        request: Request,
        /// Replica that answers the client.
        proxy: ReplicaId,
    },
    /// Store this slot's request (or its descriptor and your shard).
    Accept {
        /// Slot.
        slot: u64,
        /// The request, with the value left out when coded.
        request: Request,
        /// This follower's shard, when coded.
        shard: Option<Shard>,
    },
    /// The slot is stored.
    Accepted {
        /// Slot.
        slot: u64,
    },
    /// Apply slots up to this one.
    Commit {
        /// Highest committed slot.
        upto: u64,
    },
    /// The answer, for the proxy to pass on.
    Answer {
        /// Client.
        client: u64,
        /// Sequence number.
        seq: u64,
        /// Answer.
        reply: crate::kv::Reply,
    },
}

/// A steady-state leader-based replica.
#[derive(Debug)]
pub struct Leader {
    me: ReplicaId,
    n: usize,
    /// `Some(data)`: erasure-coded with `data` data shards.
    coded: Option<usize>,
    quorum: usize,
    next_slot: u64,
    /// Leader: per slot, the request, its descriptor, who accepted, its proxy.
    slots: BTreeMap<u64, (Request, Request, Vec<bool>, ReplicaId)>,
    /// Follower: stored requests (descriptor) and shards.
    stored: BTreeMap<u64, (Request, Option<Shard>)>,
    applied: u64,
    committed: u64,
    /// Follower: the highest slot the leader said is committed.
    commit_upto: Option<u64>,
    kv: KvStore,
    /// The store of descriptors (values replaced by their lengths) that
    /// every replica of the coded variant holds alike.
    descriptors: KvStore,
    log: BTreeMap<u64, Option<(u64, u64)>>,
}

impl Leader {
    /// Replica `me` of `n` tolerating `f` crashes; `coded`: erasure coding
    /// with that many data shards.
    pub fn new(me: ReplicaId, n: usize, f: usize, coded: Option<usize>) -> Result<Self, ConfigError> {
        if n <= 2 * f || me >= n || coded.is_some_and(|k| k == 0 || k >= n) {
            return Err(ConfigError { n, f, me });
        }
        let quorum = match coded {
            None => n / 2 + 1,
            Some(k) => (n + k).div_ceil(2),
        };
        if quorum > n - f {
            // A quorum must survive f crashes.
            return Err(ConfigError { n, f, me });
        }
        Ok(Leader {
            me,
            n,
            coded,
            quorum,
            next_slot: 0,
            slots: BTreeMap::new(),
            stored: BTreeMap::new(),
            applied: 0,
            committed: 0,
            commit_upto: None,
            kv: KvStore::new(),
            descriptors: KvStore::new(),
            log: BTreeMap::new(),
        })
    }

    fn propose(&mut self, request: Request, proxy: ReplicaId, out: &mut Vec<Effect<Message>>) {
        let slot = self.next_slot;
        self.next_slot += 1;
        let value = match &request.command {
            Command::Put { value, .. } | Command::ReadModifyWrite { value, .. } => Some(value.clone()),
            _ => None,
        };
        let shards = match (self.coded, &value) {
            (Some(k), Some(v)) => erasure::encode(v, k, self.n - k).ok().map(|e| e.shards),
            _ => None,
        };
        let descriptor = descriptor_of(&request);
        for to in (0..self.n).filter(|&r| r != self.me) {
            let (request, shard) = match &shards {
                Some(shards) => (descriptor.clone(), Some(shards[to].clone())),
                None => (request.clone(), None),
            };
            out.push(Effect::Send(to, Message::Accept { slot, request, shard }));
        }
        // The leader's own copy is durable before anything it sends next.
        out.push(Effect::Persist(Message::Accept { slot, request: request.clone(), shard: None }));
        let mut accepted = vec![false; self.n];
        accepted[self.me] = true;
        self.slots.insert(slot, (request, descriptor, accepted, proxy));
        self.try_commit(out);
    }

    fn try_commit(&mut self, out: &mut Vec<Effect<Message>>) {
        let before = self.committed;
        while let Some((request, descriptor, accepted, proxy)) = self.slots.get(&self.committed) {
            if accepted.iter().filter(|a| **a).count() < self.quorum {
                break;
            }
            let reply = self.kv.apply(request);
            self.descriptors.apply(descriptor);
            self.log.insert(self.committed, Some((request.client, request.seq)));
            let (client, seq, proxy) = (request.client, request.seq, *proxy);
            if proxy == self.me {
                out.push(Effect::Reply { client, seq, reply });
            } else {
                out.push(Effect::Send(proxy, Message::Answer { client, seq, reply }));
            }
            self.slots.remove(&self.committed);
            self.committed += 1;
        }
        if self.committed > before {
            out.push(Effect::Broadcast(Message::Commit { upto: self.committed - 1 }));
        }
    }
}

/// A request with any written value replaced by its length (8 bytes).
fn descriptor_of(request: &Request) -> Request {
    let mut d = request.clone();
    if let Command::Put { value, .. } | Command::ReadModifyWrite { value, .. } = &mut d.command {
        *value = (value.len() as u64).to_le_bytes().to_vec().into();
    }
    d
}

impl Leader {
    /// Follower: applies stored slots the leader committed, in order.
    fn apply_committed(&mut self) {
        let Some(upto) = self.commit_upto else { return };
        while self.applied <= upto {
            let Some((request, _)) = self.stored.get(&self.applied) else { break };
            if self.coded.is_none() {
                self.kv.apply(request);
                self.descriptors.apply(&descriptor_of(request));
            } else {
                self.descriptors.apply(request); // already a descriptor
            }
            self.log.insert(self.applied, Some((request.client, request.seq)));
            // Steady state: an applied slot is not needed again (there is
            // no failover to replay it).
            self.stored.remove(&self.applied);
            self.applied += 1;
        }
    }
}

impl Protocol for Leader {
    type Message = Message;

    fn on_client(&mut self, request: Request, _now: u64) -> Vec<Effect<Message>> {
        let mut out = Vec::new();
        if self.me == 0 {
            self.propose(request, self.me, &mut out);
        } else {
            out.push(Effect::Send(0, Message::Forward { request, proxy: self.me }));
        }
        out
    }

    fn on_message(&mut self, from: ReplicaId, message: Message) -> Vec<Effect<Message>> {
        let mut out = Vec::new();
        match message {
            Message::Forward { request, proxy } => {
                if self.me == 0 {
                    self.propose(request, proxy, &mut out);
                }
            }
            Message::Accept { slot, request, shard } => {
                let record = Message::Accept { slot, request: request.clone(), shard: shard.clone() };
                self.stored.insert(slot, (request, shard));
                out.push(Effect::Persist(record));
                out.push(Effect::Send(from, Message::Accepted { slot }));
                self.apply_committed();
            }
            Message::Accepted { slot } => {
                if let Some((_, _, accepted, _)) = self.slots.get_mut(&slot) {
                    accepted[from] = true;
                }
                self.try_commit(&mut out);
            }
            Message::Commit { upto } => {
                self.commit_upto = self.commit_upto.max(Some(upto));
                self.apply_committed();
            }
            Message::Answer { client, seq, reply } => out.push(Effect::Reply { client, seq, reply }),
        }
        out
    }

    fn tick(&mut self) -> Vec<Effect<Message>> {
        Vec::new()
    }

    /// Steady state only: a follower takes back the slots it stored; the
    /// leader's log is not rebuilt (there is no failover to use it).
    fn recover(&mut self, durable: Vec<Message>) -> Vec<Effect<Message>> {
        for record in durable {
            if let Message::Accept { slot, request, shard } = record
                && self.me != 0
            {
                self.stored.insert(slot, (request, shard));
            }
        }
        Vec::new()
    }

    fn preload(replicas: &mut [Self], key: &str, value: &Value) {
        let d: Value = (value.len() as u64).to_le_bytes().to_vec().into();
        for r in replicas {
            r.kv.preload(key.to_string(), value.clone());
            r.descriptors.preload(key.to_string(), d.clone());
        }
    }

    fn wire_bytes(message: &Message) -> usize {
        HEADER_BYTES
            + match message {
                Message::Forward { request, .. } => 40 + request.command.payload_bytes(),
                Message::Accept { request, shard, .. } => {
                    40 + request.command.payload_bytes() + shard.as_ref().map_or(0, |s| 34 + s.bytes.len())
                }
                Message::Accepted { .. } | Message::Commit { .. } => 8,
                Message::Answer { reply, .. } => match reply {
                    crate::kv::Reply::Value(Some(v)) | crate::kv::Reply::Previous(Some(v)) => v.len(),
                    _ => 8,
                },
            }
    }

    fn decisions(&self) -> BTreeMap<u64, Option<(u64, u64)>> {
        self.log.clone()
    }

    fn applied_slots(&self) -> u64 {
        if self.me == 0 { self.committed } else { self.applied }
    }

    fn state_digest(&self) -> u64 {
        // Followers of the coded variant hold shards, not values: compare
        // the descriptor stores every replica keeps.
        self.descriptors.digest()
    }

    fn summary(&self) -> String {
        format!("leader-based replica {}: {} committed, {} applied", self.me, self.committed, self.applied)
    }
}
