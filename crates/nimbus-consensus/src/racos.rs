//! Racos (SoCC'24): "Improving Erasure Coding State Machine Replication
//! using Leaderless Consensus" — erasure-coded values over Rabia, as a
//! sans-IO state machine.
//!
//! Mechanism (inferred from the abstract and the RS-Paxos/CRaft lineage):
//! the replica that receives a write (its proxy) Reed–Solomon-encodes the
//! value into `data + parity = n` shards and sends shard i to replica i;
//! Rabia orders only a small descriptor (the write's id and length) in
//! place of the value, so no replica's NIC carries every value n − 1 times;
//! the write is acknowledged once the descriptor is decided and `data + f`
//! replicas stored their shard (enough to rebuild it after f crashes). A
//! read goes through Rabia like any command (its linearization point), and
//! its proxy then gathers `data` intact shards of the write it returned
//! and decodes. A read-modify-write does both. Shards of a write never
//! change, so a read after its decision may fetch them at leisure.
//!
//! Needs `data + f ≤ n − f` (e.g. n = 5, f = 1, RS(3, 2)). Baseline:
//! full-copy Rabia ([`crate::rabia`]). Deviations: shards are kept forever
//! (no garbage collection of overwritten values); the proxy re-sends shard
//! stores and fetches on `tick` until answered; every command, not only
//! writes, goes through consensus.

use std::collections::BTreeMap;

use crate::erasure::{self, Shard};
use crate::kv::{Command, Reply, Request};
use crate::protocol::{Effect, HEADER_BYTES, Protocol, ReplicaId};
use crate::rabia::{self, ConfigError};

/// A write's identity: its client and sequence number.
pub type WriteId = (u64, u64);

/// Racos messages: Rabia's, plus shard traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Rabia's ordering of descriptors.
    Rabia(rabia::Message),
    /// Store your shard of a write.
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

#[derive(Debug)]
struct Pending {
    /// The decided reply, once Rabia answered.
    decided: Option<Reply>,
    /// The write this request makes, its shards, and who stored theirs.
    write: Option<(WriteId, Vec<Shard>, Vec<bool>)>,
    /// The value read: (write, length, shards gathered).
    read: Option<(WriteId, usize, BTreeMap<u16, Shard>)>,
}

/// One Racos replica.
#[derive(Debug)]
pub struct Racos {
    core: rabia::Replica,
    me: ReplicaId,
    n: usize,
    f: usize,
    data: usize,
    shards: BTreeMap<WriteId, Shard>,
    pending: BTreeMap<(u64, u64), Pending>,
}

impl Racos {
    /// Replica `me` of `n`, tolerating `f` crashes, with values coded into
    /// `data` data shards and `n − data` parity shards.
    pub fn new(me: ReplicaId, n: usize, f: usize, data: usize) -> Result<Self, ConfigError> {
        let core = rabia::Replica::new(me, n, f)?;
        if data == 0 || data + 2 * f > n || data >= n {
            return Err(ConfigError { n, f, me });
        }
        Ok(Racos { core, me, n, f, data, shards: BTreeMap::new(), pending: BTreeMap::new() })
    }

    fn wrap(effects: Vec<rabia::Effect>) -> Vec<Effect<Message>> {
        effects
            .into_iter()
            .map(|e| match e {
                Effect::Send(to, m) => Effect::Send(to, Message::Rabia(m)),
                Effect::Broadcast(m) => Effect::Broadcast(Message::Rabia(m)),
                Effect::Reply { client, seq, reply } => Effect::Reply { client, seq, reply },
            })
            .collect()
    }

    /// Takes Rabia's replies to this proxy's requests and turns each into
    /// shard work; passes the rest on.
    fn absorb(&mut self, effects: Vec<rabia::Effect>, out: &mut Vec<Effect<Message>>) {
        for e in Self::wrap(effects) {
            match e {
                Effect::Reply { client, seq, reply } if self.pending.contains_key(&(client, seq)) => {
                    let p = self.pending.get_mut(&(client, seq)).expect("checked");
                    let old = match &reply {
                        Reply::Value(Some(d)) | Reply::Previous(Some(d)) => parse_descriptor(d),
                        _ => None,
                    };
                    if let Some((write, len)) = old {
                        p.read = Some((write, len, BTreeMap::new()));
                        out.push(Effect::Broadcast(Message::Fetch { write }));
                        if let Some(s) = self.shards.get(&write) {
                            p.read.as_mut().expect("set").2.insert(s.index, s.clone());
                        }
                    }
                    p.decided = Some(reply);
                    self.finish(client, seq, out);
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
    fn finish(&mut self, client: u64, seq: u64, out: &mut Vec<Effect<Message>>) {
        let Some(p) = self.pending.get(&(client, seq)) else { return };
        let Some(decided) = &p.decided else { return };
        if let Some((_, _, stored)) = &p.write
            && stored.iter().filter(|s| **s).count() < self.data + self.f
        {
            return;
        }
        let value = match &p.read {
            None => None,
            Some((_, len, shards)) => {
                let shards: Vec<Shard> = shards.values().cloned().collect();
                match erasure::decode(*len, self.data, self.n - self.data, &shards) {
                    Ok(v) => Some(v),
                    Err(_) => return, // more shards to come
                }
            }
        };
        let reply = match (decided, value) {
            (Reply::Value(_), Some(v)) => Reply::Value(Some(v)),
            (Reply::Previous(_), Some(v)) => Reply::Previous(Some(v)),
            (other, _) => other.clone(),
        };
        self.pending.remove(&(client, seq));
        out.push(Effect::Reply { client, seq, reply });
    }

    fn store_own(&mut self, write: WriteId, shard: Shard) {
        self.shards.entry(write).or_insert(shard);
    }
}

impl Protocol for Racos {
    type Message = Message;

    fn on_client(&mut self, request: Request, now: u64) -> Vec<Effect<Message>> {
        let mut out = Vec::new();
        let key = (request.client, request.seq);
        let mut pending = Pending { decided: None, write: None, read: None };
        let rmw = matches!(request.command, Command::ReadModifyWrite { .. });
        let command = match request.command {
            Command::Put { key: k, value } | Command::ReadModifyWrite { key: k, value } => {
                let Ok(coded) = erasure::encode(&value, self.data, self.n - self.data) else {
                    return out;
                };
                let mut stored = vec![false; self.n];
                for (i, shard) in coded.shards.iter().enumerate() {
                    if i == self.me {
                        self.store_own(key, shard.clone());
                        stored[i] = true;
                    } else {
                        out.push(Effect::Send(i, Message::Store { write: key, shard: shard.clone() }));
                    }
                }
                pending.write = Some((key, coded.shards, stored));
                let value = descriptor(key, value.len());
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
                    self.store_own(write, shard);
                    out.push(Effect::Send(from, Message::Stored { write }));
                }
            }
            Message::Stored { write } => {
                if let Some(p) = self.pending.get_mut(&write)
                    && let Some((_, _, stored)) = p.write.as_mut()
                {
                    stored[from] = true;
                    self.finish(write.0, write.1, &mut out);
                }
            }
            Message::Fetch { write } => {
                out.push(Effect::Send(from, Message::Fetched { write, shard: self.shards.get(&write).cloned() }));
            }
            Message::Fetched { write, shard: Some(shard) } => {
                let waiting: Vec<(u64, u64)> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| p.read.as_ref().is_some_and(|r| r.0 == write))
                    .map(|(k, _)| *k)
                    .collect();
                for k in waiting {
                    if let Some((_, _, shards)) = self.pending.get_mut(&k).and_then(|p| p.read.as_mut()) {
                        shards.insert(shard.index, shard.clone());
                    }
                    self.finish(k.0, k.1, &mut out);
                }
            }
            Message::Fetched { shard: None, .. } => {}
        }
        out
    }

    fn tick(&mut self) -> Vec<Effect<Message>> {
        let mut out = Self::wrap(self.core.tick());
        for p in self.pending.values() {
            if let Some((write, shards, stored)) = &p.write {
                for (i, shard) in shards.iter().enumerate() {
                    if !stored[i] {
                        out.push(Effect::Send(i, Message::Store { write: *write, shard: shard.clone() }));
                    }
                }
            }
            if let Some((write, _, _)) = &p.read {
                out.push(Effect::Broadcast(Message::Fetch { write: *write }));
            }
        }
        out
    }

    fn wire_bytes(message: &Message) -> usize {
        match message {
            Message::Rabia(m) => m.wire_bytes(),
            Message::Store { shard, .. } | Message::Fetched { shard: Some(shard), .. } => {
                HEADER_BYTES + 34 + shard.bytes.len()
            }
            Message::Stored { .. } | Message::Fetch { .. } | Message::Fetched { shard: None, .. } => HEADER_BYTES,
        }
    }

    fn decisions(&self) -> BTreeMap<u64, Option<(u64, u64)>> {
        self.core.decisions()
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
}
