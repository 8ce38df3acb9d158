//! The replicated key-value state machine.
//!
//! Every replica applies the same decided commands in the same order; a
//! command carries its client's id and sequence number, and the store
//! keeps each client's last sequence number and reply, so a request that a
//! client retried (after a timeout, to another replica) and that was
//! decided twice is applied once and answered with the same reply
//! (exactly-once semantics). Sequence numbers of one client must grow; an
//! older one than the last applied is answered `Stale`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A value's bytes, shared: a batch broadcast to four replicas, or held by
/// five replicas of one process (the twin), is one buffer.
pub type Value = Arc<[u8]>;

/// A client's operation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Command {
    /// Read a key.
    Get {
        /// Key.
        key: String,
    },
    /// Write a key (YCSB's update and insert).
    Put {
        /// Key.
        key: String,
        /// Value.
        value: Value,
    },
    /// Read up to `count` keys from `start` in key order.
    Scan {
        /// First key.
        start: String,
        /// Most keys returned.
        count: usize,
    },
    /// Write a key and return its previous value (YCSB's
    /// read-modify-write as one atomic step).
    ReadModifyWrite {
        /// Key.
        key: String,
        /// New value.
        value: Value,
    },
}

impl Command {
    /// The single key it touches (`None` for a scan).
    pub fn key(&self) -> Option<&str> {
        match self {
            Command::Get { key } | Command::Put { key, .. } | Command::ReadModifyWrite { key, .. } => Some(key),
            Command::Scan { .. } => None,
        }
    }

    /// Bytes it carries (for network and disk accounting).
    pub fn payload_bytes(&self) -> usize {
        match self {
            Command::Get { key } => key.len(),
            Command::Put { key, value } | Command::ReadModifyWrite { key, value } => key.len() + value.len(),
            Command::Scan { start, .. } => start.len() + 8,
        }
    }
}

/// A command from a client session (ordered by client, then sequence
/// number).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    /// Client (session) id.
    pub client: u64,
    /// The client's sequence number, growing by request.
    pub seq: u64,
    /// What to do.
    pub command: Command,
}

/// The state machine's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A read's value (`None`: absent).
    Value(Option<Value>),
    /// A write was applied.
    Written,
    /// A scan's keys and values.
    Range(Vec<(String, Value)>),
    /// A read-modify-write's previous value.
    Previous(Option<Value>),
    /// The request is older than the client's last applied one.
    Stale,
    /// The replica cannot do this (e.g. a command its protocol does not
    /// support); nothing was applied.
    Refused(String),
}

impl Reply {
    /// Bytes on the wire to the client: 16 bytes of ids and status, and
    /// any value it returns.
    pub fn wire_bytes(&self) -> usize {
        16 + match self {
            Reply::Value(Some(v)) | Reply::Previous(Some(v)) => v.len(),
            Reply::Range(rows) => rows.iter().map(|(k, v)| k.len() + v.len() + 8).sum(),
            Reply::Refused(why) => why.len(),
            _ => 0,
        }
    }
}

/// Client ids from here on have no session: their requests are applied
/// every time they are decided and no reply is recorded (replicas use them
/// for idempotent reads of their own, which may be several at once).
pub const SESSIONLESS: u64 = u64::MAX - (1 << 20);

/// A key-value store with client sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvStore {
    pub(crate) data: BTreeMap<String, Value>,
    pub(crate) sessions: BTreeMap<u64, (u64, Reply)>,
    /// Session-less requests applied (so a batch is not run twice).
    pub(crate) sessionless: BTreeSet<(u64, u64)>,
    pub(crate) applied: u64,
    /// Values replaced by writes since the last `take_overwritten`, when
    /// tracked (Racos frees the shards of overwritten values).
    overwritten: Option<Vec<Value>>,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `request` once: a duplicate of the client's last request
    /// gets the recorded reply without effect.
    pub fn apply(&mut self, request: &Request) -> Reply {
        let sessionless = request.client >= SESSIONLESS;
        if let Some((seq, reply)) = self.sessions.get(&request.client).filter(|_| !sessionless) {
            if request.seq == *seq {
                return reply.clone();
            }
            if request.seq < *seq {
                return Reply::Stale;
            }
        }
        let reply = match &request.command {
            Command::Get { key } => Reply::Value(self.data.get(key).cloned()),
            Command::Put { key, value } => {
                let old = self.data.insert(key.clone(), value.clone());
                if let (Some(list), Some(old)) = (self.overwritten.as_mut(), old) {
                    list.push(old);
                }
                Reply::Written
            }
            Command::Scan { start, count } => Reply::Range(
                self.data.range(start.clone()..).take(*count).map(|(k, v)| (k.clone(), v.clone())).collect(),
            ),
            Command::ReadModifyWrite { key, value } => {
                let old = self.data.insert(key.clone(), value.clone());
                if let (Some(list), Some(old)) = (self.overwritten.as_mut(), &old) {
                    list.push(old.clone());
                }
                Reply::Previous(old)
            }
        };
        self.applied += 1;
        if sessionless {
            self.sessionless.insert((request.client, request.seq));
        } else {
            self.sessions.insert(request.client, (request.seq, reply.clone()));
        }
        reply
    }

    /// Starts keeping the values that writes replace.
    pub fn track_overwritten(&mut self) {
        self.overwritten.get_or_insert_with(Vec::new);
    }

    /// The values replaced since the last call (when tracked).
    pub fn take_overwritten(&mut self) -> Vec<Value> {
        self.overwritten.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Whether the client's request `seq` (or a later one) was applied:
    /// sequence numbers of one client grow, one request at a time.
    pub fn is_applied(&self, client: u64, seq: u64) -> bool {
        if client >= SESSIONLESS {
            return self.sessionless.contains(&(client, seq));
        }
        self.sessions.get(&client).is_some_and(|(last, _)| *last >= seq)
    }

    /// Sets a key without a client (the records a workload loads before
    /// it runs).
    pub fn preload(&mut self, key: String, value: Value) {
        self.data.insert(key, value);
    }

    /// Replaces the data and sessions with a snapshot's, keeping whether
    /// overwrites are tracked.
    pub fn restore(&mut self, snapshot: &KvStore) {
        let tracked = self.overwritten.is_some();
        *self = KvStore { overwritten: tracked.then(Vec::new), ..snapshot.clone() };
    }

    /// Bytes the store holds (keys, values and sessions), as a snapshot
    /// of it would carry.
    pub fn bytes(&self) -> usize {
        let reply = |r: &Reply| match r {
            Reply::Value(Some(v)) | Reply::Previous(Some(v)) => v.len(),
            Reply::Range(rows) => rows.iter().map(|(k, v)| k.len() + v.len()).sum(),
            _ => 0,
        };
        self.data.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>()
            + self.sessions.values().map(|(_, r)| 24 + reply(r)).sum::<usize>()
    }

    /// Commands applied (duplicates excluded).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(|v| &v[..])
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A digest of the data (BLAKE3 over keys and values, in key order,
    /// each with its length), to compare replicas.
    pub fn digest(&self) -> u64 {
        let mut h = blake3::Hasher::new();
        for (k, v) in &self.data {
            h.update(&(k.len() as u64).to_le_bytes());
            h.update(k.as_bytes());
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v);
        }
        u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(client: u64, seq: u64, key: &str, value: &[u8]) -> Request {
        Request { client, seq, command: Command::Put { key: key.into(), value: value.into() } }
    }

    #[test]
    fn retried_requests_apply_once_and_get_the_same_reply() {
        let mut kv = KvStore::new();
        let rmw = |seq, v: &[u8]| Request {
            client: 7,
            seq,
            command: Command::ReadModifyWrite { key: "k".into(), value: v.into() },
        };
        assert_eq!(kv.apply(&put(1, 1, "k", b"a")), Reply::Written);
        assert_eq!(kv.apply(&rmw(1, b"b")), Reply::Previous(Some(b"a"[..].into())));
        assert!(kv.is_applied(7, 1) && !kv.is_applied(7, 2));
        // The same request decided again (a retry): same reply, no effect.
        assert_eq!(kv.apply(&rmw(1, b"b")), Reply::Previous(Some(b"a"[..].into())));
        assert_eq!(kv.applied(), 2);
        assert_eq!(kv.get("k"), Some(&b"b"[..]));
        // An older request of the client is refused.
        assert_eq!(kv.apply(&rmw(0, b"c")), Reply::Stale);
        assert_eq!(kv.get("k"), Some(&b"b"[..]));
    }

    #[test]
    fn scans_read_in_key_order_and_replicas_agree() {
        let mut a = KvStore::new();
        let mut b = KvStore::new();
        for (i, key) in ["user3", "user1", "user2"].iter().enumerate() {
            a.apply(&put(1, i as u64 + 1, key, key.as_bytes()));
            b.apply(&put(1, i as u64 + 1, key, key.as_bytes()));
        }
        let scan = Request { client: 2, seq: 1, command: Command::Scan { start: "user15".into(), count: 5 } };
        let Reply::Range(rows) = a.apply(&scan) else { panic!("a scan returns a range") };
        assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["user2", "user3"]);
        assert_eq!(a.digest(), b.digest());
        b.apply(&put(1, 9, "user1", b"changed"));
        assert_ne!(a.digest(), b.digest());
    }
}
