//! Racos (SoCC'24): "Improving Erasure Coding State Machine Replication
//! using Leaderless Consensus" — erasure-coded values over Rabia, as a
//! sans-IO state machine.
//!
//! Mechanism (inferred from the abstract and the RS-Paxos/CRaft lineage):
//! the replica that receives a write (its proxy) Reed–Solomon-encodes the
//! value into `data + parity = n` shards and sends shard i to replica i,
//! which persists it and acknowledges; Rabia orders only a small
//! descriptor (the write's id and length) in place of the value, so each
//! write costs (n − 1)·V/data of traffic and n·V/data of disk instead of
//! (n − 1)·V and n·V, and encoding and egress are spread over every
//! replica, with no leader NIC in the path. The write is acknowledged once
//! the descriptor is decided and `data + f` replicas stored their shard
//! (enough to rebuild it after f crashes). A read goes through Rabia like
//! any command (its linearization point); its proxy then decodes the
//! value it returned from `data` intact shards, fetched from the next
//! `data − 1` replicas (from all at a tick, if some do not answer), or
//! finds it in a cache of values by write id. Write ids never name two
//! values, so the cache is never stale. A read-modify-write does both.
//!
//! Shards of overwritten values are freed once a byte budget of them is
//! spent; a get that finds its value's shards gone (it was decided before
//! the overwrite and fetched late) runs again through Rabia, a later
//! linearization point inside its interval.
//!
//! Needs `data + f ≤ n − f` (e.g. n = 5, f = 1, RS(3, 2)). Baseline:
//! full-copy Rabia ([`crate::rabia`]). Deviations: a read-modify-write
//! cannot be run again, so one whose old value's shards were freed before
//! its proxy fetched them (its proxy fell a garbage budget behind) is not
//! answered; the proxy re-sends shard
//! stores and fetches on `tick` until answered; every command, not only
//! writes, goes through consensus; scans are refused (they would return
//! descriptors; YCSB workload E is not run on Racos); values preloaded
//! before a run (YCSB's load phase) are coded by every replica alike.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::erasure::{self, Shard};
use crate::kv::{self, Command, Reply, Request, Value};
use crate::protocol::{Effect, HEADER_BYTES, Protocol, ReplicaId};
use crate::rabia::{self, ConfigError, RabiaConfig};

/// A write's identity: its client and sequence number.
pub type WriteId = (u64, u64);

/// Racos messages: Rabia's, plus shard traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Rabia's ordering of descriptors.
    Rabia(rabia::Message),
    /// Store your shard of a write (also the durable record of a shard).
    Store {
        /// The write.
        write: WriteId,
        /// This replica's shard.
        shard: Shard,
    },
    /// A shard is stored.
    Stored {
        /// The write.
        write: WriteId,
    },
    /// Send me your shard of a write.
    Fetch {
        /// The write.
        write: WriteId,
    },
    /// A shard (`None`: not held).
    Fetched {
        /// The write.
        write: WriteId,
        /// The shard.
        shard: Option<Shard>,
    },
    /// A durable record only: the replica's incarnation, so the ids of its
    /// own retried reads never repeat across restarts.
    Epoch(u64),
}

/// A descriptor's bytes in the replicated store: the write id and length.
fn descriptor(write: WriteId, len: usize) -> Vec<u8> {
    let mut d = Vec::with_capacity(24);
    d.extend_from_slice(&write.0.to_le_bytes());
    d.extend_from_slice(&write.1.to_le_bytes());
    d.extend_from_slice(&(len as u64).to_le_bytes());
    d
}

fn parse_descriptor(d: &[u8]) -> Option<(WriteId, usize)> {
    let word = |i: usize| d.get(i * 8..i * 8 + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    Some(((word(0)?, word(1)?), word(2)? as usize))
}

/// The write id of a value loaded before the run: no client, a hash of
/// the key.
fn preload_id(key: &str) -> WriteId {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in key.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (u64::MAX, h)
}

/// Racos settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RacosConfig {
    /// Data shards per value (parity shards: n − data).
    pub data: usize,
    /// Bytes of whole values a proxy keeps by write id (0: none).
    pub cache_bytes: usize,
    /// Bytes of shards of overwritten values kept before they are freed
    /// (reads decided before the overwrite may still fetch them; a read
    /// that finds them gone is run again).
    pub garbage_bytes: usize,
    /// The ordering layer's settings.
    pub rabia: RabiaConfig,
    /// Deliberately unsafe: acknowledge a write once its descriptor is
    /// decided, before `data + f` shards are stored (tests show the
    /// checks catch it). Never use it otherwise.
    pub unsafe_ack_before_stored: bool,
}

impl RacosConfig {
    /// `data` data shards, a 32 MiB cache, Rabia's defaults.
    pub fn new(data: usize) -> Self {
        RacosConfig {
            data,
            cache_bytes: 32 << 20,
            garbage_bytes: 16 << 20,
            rabia: RabiaConfig::default(),
            unsafe_ack_before_stored: false,
        }
    }
}

#[derive(Debug)]
struct Pending {
    /// The decided reply, once Rabia answered.
    decided: Option<Reply>,
    /// The write this request makes, its shards, and who stored theirs.
    write: Option<(WriteId, Vec<Shard>, Vec<bool>)>,
    /// The value read.
    read: Option<Read>,
    /// Ticks since it arrived (what is still in flight at the first tick is
    /// not re-sent).
    ticks: u32,
    /// The client request it answers (itself, or the one a retried read
    /// stands for).
    answer_as: (u64, u64),
    /// A get's key (to run it again when its shards are gone).
    get: Option<String>,
}

#[derive(Debug)]
struct Read {
    write: WriteId,
    len: usize,
    shards: BTreeMap<u16, Shard>,
    /// Replicas known not to hold a shard.
    missing: BTreeSet<ReplicaId>,
    /// Replicas asked so far, in ring order after this one.
    asked: usize,
}

/// One Racos replica.
#[derive(Debug)]
pub struct Racos {
    core: rabia::Replica,
    me: ReplicaId,
    n: usize,
    f: usize,
    config: RacosConfig,
    shards: BTreeMap<WriteId, Shard>,
    pending: BTreeMap<(u64, u64), Pending>,
    cache: BTreeMap<WriteId, Value>,
    cache_order: VecDeque<WriteId>,
    cache_used: usize,
    /// Shards of overwritten values, oldest first, and their bytes.
    garbage: VecDeque<(WriteId, usize)>,
    garbage_used: usize,
    /// Sequence numbers of this proxy's own retried reads, and its
    /// incarnation (their high bits).
    retries: u64,
    epoch: u64,
}

impl Racos {
    /// Replica `me` of `n`, tolerating `f` crashes, with values coded into
    /// `data` data shards and `n − data` parity shards.
    pub fn new(me: ReplicaId, n: usize, f: usize, data: usize) -> Result<Self, ConfigError> {
        Self::with_config(me, n, f, RacosConfig::new(data))
    }

    /// Replica `me` of `n` with the given settings.
    pub fn with_config(me: ReplicaId, n: usize, f: usize, config: RacosConfig) -> Result<Self, ConfigError> {
        let mut core = rabia::Replica::with_config(me, n, f, config.rabia)?;
        core.track_overwritten();
        let data = config.data;
        if data == 0 || data + 2 * f > n || data >= n {
            return Err(ConfigError { n, f, me });
        }
        Ok(Racos {
            core,
            me,
            n,
            f,
            config,
            shards: BTreeMap::new(),
            pending: BTreeMap::new(),
            cache: BTreeMap::new(),
            cache_order: VecDeque::new(),
            cache_used: 0,
            garbage: VecDeque::new(),
            garbage_used: 0,
            retries: 0,
            epoch: 0,
        })
    }

    fn wrap(effects: Vec<rabia::Effect>) -> Vec<Effect<Message>> {
        effects
            .into_iter()
            .map(|e| match e {
                Effect::Send(to, m) => Effect::Send(to, Message::Rabia(m)),
                Effect::Broadcast(m) => Effect::Broadcast(Message::Rabia(m)),
                Effect::Persist(m) => Effect::Persist(Message::Rabia(m)),
                Effect::Reply { client, seq, reply } => Effect::Reply { client, seq, reply },
            })
            .collect()
    }

    fn remember(&mut self, write: WriteId, value: &Value) {
        if value.len() > self.config.cache_bytes || self.cache.contains_key(&write) {
            return;
        }
        while self.cache_used + value.len() > self.config.cache_bytes {
            let Some(old) = self.cache_order.pop_front() else { break };
            if let Some(v) = self.cache.remove(&old) {
                self.cache_used -= v.len();
            }
        }
        self.cache_used += value.len();
        self.cache.insert(write, value.clone());
        self.cache_order.push_back(write);
    }

    /// The id of this proxy's next retried read: a session-less client
    /// of its own, unique across its incarnations.
    fn next_retry(&mut self) -> (u64, u64) {
        self.retries += 1;
        (kv::SESSIONLESS + self.me as u64, self.epoch << 40 | self.retries)
    }

    /// Frees the shards of values the store no longer holds, once the
    /// budget for them is spent.
    fn collect_garbage(&mut self) {
        for old in self.core.take_overwritten() {
            if let Some((write, _)) = parse_descriptor(&old)
                && let Some(shard) = self.shards.get(&write)
            {
                self.garbage_used += shard.bytes.len();
                self.garbage.push_back((write, shard.bytes.len()));
            }
        }
        while self.garbage_used > self.config.garbage_bytes {
            let Some((write, bytes)) = self.garbage.pop_front() else { break };
            self.shards.remove(&write);
            self.garbage_used -= bytes;
        }
    }

    /// Takes Rabia's replies to this proxy's requests and turns each into
    /// shard work; passes the rest on.
    fn absorb(&mut self, effects: Vec<rabia::Effect>, out: &mut Vec<Effect<Message>>) {
        self.collect_garbage();
        for e in Self::wrap(effects) {
            match e {
                Effect::Reply { client, seq, reply } if self.pending.contains_key(&(client, seq)) => {
                    let old = match &reply {
                        Reply::Value(Some(d)) | Reply::Previous(Some(d)) => parse_descriptor(d),
                        _ => None,
                    };
                    let cached = old.and_then(|(write, _)| self.cache.get(&write).cloned());
                    if let (Some((write, len)), None) = (old, &cached) {
                        let mut read = Read { write, len, shards: BTreeMap::new(), missing: BTreeSet::new(), asked: 0 };
                        match self.shards.get(&write) {
                            Some(s) => {
                                read.shards.insert(s.index, s.clone());
                            }
                            None => {
                                read.missing.insert(self.me);
                            }
                        }
                        // Ask the next replicas for the shards still needed.
                        let need = self.config.data.saturating_sub(read.shards.len());
                        for _ in 0..need {
                            read.asked += 1;
                            out.push(Effect::Send((self.me + read.asked) % self.n, Message::Fetch { write }));
                        }
                        self.pending.get_mut(&(client, seq)).expect("checked").read = Some(read);
                    }
                    self.pending.get_mut(&(client, seq)).expect("checked").decided = Some(match (reply, cached) {
                        (Reply::Value(_), Some(v)) => Reply::Value(Some(v)),
                        (Reply::Previous(_), Some(v)) => Reply::Previous(Some(v)),
                        (reply, _) => reply,
                    });
                    self.finish((client, seq), out);
                }
                // A second answer to a request already answered (it was in
                // two batches): its reply holds a descriptor, not a value.
                Effect::Reply { .. } => {}
                other => out.push(other),
            }
        }
    }

    /// Answers a pending request once its write is durable and its read
    /// decoded.
    fn finish(&mut self, key: (u64, u64), out: &mut Vec<Effect<Message>>) {
        let Some(p) = self.pending.get(&key) else { return };
        let Some(decided) = &p.decided else { return };
        if let Some((_, _, stored)) = &p.write
            && !self.config.unsafe_ack_before_stored
            && stored.iter().filter(|s| **s).count() < self.config.data + self.f
        {
            return;
        }
        let value = match &p.read {
            None => None,
            Some(read) if read.shards.len() < self.config.data => return, // more shards to come
            Some(read) => {
                match erasure::decode(read.len, self.config.data, self.n - self.config.data, read.shards.values()) {
                    Ok(v) => Some((read.write, Value::from(v))),
                    Err(_) => return, // more shards to come
                }
            }
        };
        let reply = match (decided, &value) {
            (Reply::Value(_), Some((_, v))) => Reply::Value(Some(v.clone())),
            (Reply::Previous(_), Some((_, v))) => Reply::Previous(Some(v.clone())),
            (other, _) => other.clone(),
        };
        let (client, seq) = p.answer_as;
        if let Some((write, v)) = value {
            self.remember(write, &v);
        }
        self.pending.remove(&key);
        out.push(Effect::Reply { client, seq, reply });
    }

    /// A replica does not hold `write`'s shard: ask the next one, and run
    /// a get again once too few replicas can hold it (its value was
    /// overwritten and freed after the get was decided).
    fn shard_missing(&mut self, from: ReplicaId, write: WriteId, out: &mut Vec<Effect<Message>>) {
        let keys: Vec<(u64, u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.read.as_ref().is_some_and(|r| r.write == write))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let Some(p) = self.pending.get_mut(&key) else { continue };
            let Some(read) = p.read.as_mut() else { continue };
            read.missing.insert(from);
            if self.n - read.missing.len() >= self.config.data {
                if read.asked + 1 < self.n {
                    read.asked += 1;
                    out.push(Effect::Send((self.me + read.asked) % self.n, Message::Fetch { write }));
                }
                continue;
            }
            let Some(get) = p.get.clone() else { continue };
            let answer_as = p.answer_as;
            self.pending.remove(&key);
            let retry = self.next_retry();
            let pending =
                Pending { decided: None, write: None, read: None, ticks: 0, answer_as, get: Some(get.clone()) };
            self.pending.insert(retry, pending);
            let request = Request { client: retry.0, seq: retry.1, command: Command::Get { key: get } };
            let effects = self.core.on_client(request, 0);
            self.absorb(effects, out);
        }
    }

    fn store_own(&mut self, write: WriteId, shard: Shard) -> bool {
        if self.shards.contains_key(&write) {
            return false;
        }
        self.shards.insert(write, shard);
        true
    }
}

impl Protocol for Racos {
    type Message = Message;

    fn on_client(&mut self, request: Request, now: u64) -> Vec<Effect<Message>> {
        let mut out = Vec::new();
        let key = (request.client, request.seq);
        if matches!(request.command, Command::Scan { .. }) {
            let reply = Reply::Refused("Racos does not run scans (the store holds descriptors)".into());
            return vec![Effect::Reply { client: request.client, seq: request.seq, reply }];
        }
        if self.pending.contains_key(&key) {
            return out; // the same request again, still in progress here
        }
        let get = match &request.command {
            Command::Get { key } => Some(key.clone()),
            _ => None,
        };
        let mut pending = Pending { decided: None, write: None, read: None, ticks: 0, answer_as: key, get };
        let rmw = matches!(request.command, Command::ReadModifyWrite { .. });
        let command = match request.command {
            Command::Put { key: k, value } | Command::ReadModifyWrite { key: k, value } => {
                let data = self.config.data;
                let Ok(coded) = erasure::encode(&value, data, self.n - data) else {
                    let reply = Reply::Refused("the value cannot be coded".into());
                    return vec![Effect::Reply { client: request.client, seq: request.seq, reply }];
                };
                self.remember(key, &value);
                let mut stored = vec![false; self.n];
                for (i, shard) in coded.shards.iter().enumerate() {
                    if i == self.me {
                        if self.store_own(key, shard.clone()) {
                            out.push(Effect::Persist(Message::Store { write: key, shard: shard.clone() }));
                        }
                        stored[i] = true;
                    } else {
                        out.push(Effect::Send(i, Message::Store { write: key, shard: shard.clone() }));
                    }
                }
                pending.write = Some((key, coded.shards, stored));
                let value = descriptor(key, value.len()).into();
                if rmw { Command::ReadModifyWrite { key: k, value } } else { Command::Put { key: k, value } }
            }
            other => other,
        };
        self.pending.insert(key, pending);
        let effects = self.core.on_client(Request { client: request.client, seq: request.seq, command }, now);
        self.absorb(effects, &mut out);
        out
    }

    fn on_message(&mut self, from: ReplicaId, message: Message) -> Vec<Effect<Message>> {
        let mut out = Vec::new();
        match message {
            Message::Rabia(m) => {
                let effects = self.core.on_message(from, m);
                self.absorb(effects, &mut out);
            }
            Message::Store { write, shard } => {
                if usize::from(shard.index) == self.me && shard.is_intact() {
                    if self.store_own(write, shard.clone()) {
                        out.push(Effect::Persist(Message::Store { write, shard }));
                    }
                    out.push(Effect::Send(from, Message::Stored { write }));
                }
            }
            Message::Stored { write } => {
                if let Some(p) = self.pending.get_mut(&write)
                    && let Some((_, _, stored)) = p.write.as_mut()
                {
                    stored[from] = true;
                    self.finish(write, &mut out);
                }
            }
            Message::Fetch { write } => {
                out.push(Effect::Send(from, Message::Fetched { write, shard: self.shards.get(&write).cloned() }));
            }
            Message::Fetched { write, shard: Some(shard) } => {
                let waiting: Vec<(u64, u64)> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| p.read.as_ref().is_some_and(|r| r.write == write))
                    .map(|(k, _)| *k)
                    .collect();
                for k in waiting {
                    if let Some(read) = self.pending.get_mut(&k).and_then(|p| p.read.as_mut()) {
                        read.shards.insert(shard.index, shard.clone());
                    }
                    self.finish(k, &mut out);
                }
            }
            Message::Fetched { write, shard: None } => self.shard_missing(from, write, &mut out),
            Message::Epoch(_) => {} // a record, never sent
        }
        out
    }

    fn tick(&mut self) -> Vec<Effect<Message>> {
        let effects = self.core.tick();
        let mut out = Vec::new();
        self.absorb(effects, &mut out);
        for p in self.pending.values_mut() {
            p.ticks += 1;
            if p.ticks < 2 {
                continue;
            }
            if let Some((write, shards, stored)) = &p.write {
                for (i, shard) in shards.iter().enumerate() {
                    if !stored[i] {
                        out.push(Effect::Send(i, Message::Store { write: *write, shard: shard.clone() }));
                    }
                }
            }
            if let Some(read) = &p.read
                && p.decided.is_some()
            {
                out.push(Effect::Broadcast(Message::Fetch { write: read.write }));
            }
        }
        out
    }

    fn recover(&mut self, durable: Vec<Message>) -> Vec<Effect<Message>> {
        let mut ordering = Vec::new();
        for record in durable {
            match record {
                Message::Rabia(m) => ordering.push(m),
                Message::Store { write, shard } => {
                    self.store_own(write, shard);
                }
                Message::Epoch(e) => self.epoch = self.epoch.max(e),
                _ => {}
            }
        }
        self.epoch += 1;
        let mut out = vec![Effect::Persist(Message::Epoch(self.epoch))];
        out.extend(Self::wrap(self.core.recover(ordering)));
        out
    }

    fn preload(replicas: &mut [Self], key: &str, value: &Value) {
        let Some(first) = replicas.first() else { return };
        let write = preload_id(key);
        let (data, n) = (first.config.data, first.n);
        let coded = erasure::encode(value, data, n - data).ok();
        let d: Value = descriptor(write, value.len()).into();
        for r in replicas {
            if let Some(coded) = &coded {
                r.shards.insert(write, coded.shards[r.me].clone());
            }
            r.core.preload(key, &d);
        }
    }

    fn wire_bytes(message: &Message) -> usize {
        match message {
            Message::Rabia(m) => m.wire_bytes(),
            Message::Store { shard, .. } | Message::Fetched { shard: Some(shard), .. } => {
                HEADER_BYTES + 34 + shard.bytes.len()
            }
            Message::Stored { .. } | Message::Fetch { .. } | Message::Fetched { shard: None, .. } => HEADER_BYTES,
            Message::Epoch(_) => HEADER_BYTES + 8,
        }
    }

    fn decisions(&self) -> BTreeMap<u64, Option<(u64, u64)>> {
        self.core.decisions()
    }

    fn applied_slots(&self) -> u64 {
        self.core.next_slot()
    }

    fn state_digest(&self) -> u64 {
        self.core.state_digest()
    }

    fn summary(&self) -> String {
        format!("{}; {} requests pending shards", self.core.summary(), self.pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_round_trip_and_settings_are_checked() {
        let d = descriptor((7, 9), 65_536);
        assert_eq!(parse_descriptor(&d), Some(((7, 9), 65_536)));
        assert_eq!(parse_descriptor(&d[..10]), None);
        assert!(Racos::new(0, 5, 1, 3).is_ok());
        // RS(3, 2) cannot survive two crashes: 3 + 2 > 5 − 2.
        assert!(Racos::new(0, 5, 2, 3).is_err());
        assert!(Racos::new(0, 3, 1, 1).is_ok());
    }

    #[test]
    fn a_write_sends_one_shard_per_replica_and_persists_its_own() {
        let mut r = Racos::new(0, 5, 1, 3).expect("valid");
        let value: Value = vec![3u8; 64 * 1024].into();
        let request = Request { client: 1, seq: 1, command: Command::Put { key: "k".into(), value } };
        let effects = r.on_client(request, 1);
        let stores: Vec<usize> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(to, m @ Message::Store { .. }) => {
                    assert_eq!(Racos::wire_bytes(m), HEADER_BYTES + 34 + erasure::shard_bytes(64 * 1024, 3));
                    Some(*to)
                }
                _ => None,
            })
            .collect();
        assert_eq!(stores, [1, 2, 3, 4]);
        assert!(matches!(effects[0], Effect::Persist(Message::Store { .. })));
        // The ordering layer's forward carries a 24-byte descriptor.
        let forward = effects
            .iter()
            .find_map(|e| match e {
                Effect::Broadcast(Message::Rabia(m @ rabia::Message::Forward(_))) => Some(m.wire_bytes()),
                _ => None,
            })
            .expect("a forward");
        assert_eq!(forward, HEADER_BYTES + 24 + 16 + 1 + 24);
        // Scans are refused, with the reason.
        let scan = Request { client: 2, seq: 1, command: Command::Scan { start: "a".into(), count: 2 } };
        assert!(matches!(&r.on_client(scan, 2)[..], [Effect::Reply { reply: Reply::Refused(_), .. }]));
    }
}
