//! A binary encoding of the protocols' messages and the store's commands
//! and replies, for drivers that put them on a real wire or disk (the
//! loopback service).
//!
//! Little-endian integers, length-prefixed strings and byte strings, one
//! tag byte per enum variant. Decoding never trusts a length: every length
//! is checked against the bytes that remain before anything is allocated,
//! so garbage gives a [`WireError`] (with the byte offset), never a panic
//! or a huge allocation.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::erasure::Shard;
use crate::kv::{Command, KvStore, Reply, Request, Value};
use crate::rabia::{self, Batch, BatchId, Snapshot};
use crate::racos;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} at byte {offset}: {problem}")]
pub struct WireError {
    /// What was being read.
    pub what: &'static str,
    /// Byte offset in the input.
    pub offset: usize,
    /// What was wrong.
    pub problem: String,
}

/// A cursor over bytes being decoded.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    /// An error at the current offset.
    pub fn error(&self, what: &'static str, problem: impl Into<String>) -> WireError {
        WireError { what, offset: self.at, problem: problem.into() }
    }

    /// An error about what was read from byte `offset` on.
    pub fn error_at(&self, offset: usize, what: &'static str, problem: impl Into<String>) -> WireError {
        WireError { what, offset, problem: problem.into() }
    }

    /// The offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// The next `len` bytes.
    pub fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if len > self.remaining() {
            return Err(self.error(what, format!("needs {len} bytes, {} remain", self.remaining())));
        }
        let out = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }

    /// A little-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }

    /// A little-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }

    /// A bool (0 or 1).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.error(what, format!("a bool is 0 or 1, found {other}"))),
        }
    }

    /// A u32 count of items each at least `min_item_bytes` long, checked
    /// against what remains.
    pub fn count(&mut self, min_item_bytes: usize, what: &'static str) -> Result<usize, WireError> {
        let count = self.u32(what)? as usize;
        if count.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(
                self.error(what, format!("{count} items cannot fit in the {} bytes that remain", self.remaining()))
            );
        }
        Ok(count)
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self, what: &'static str) -> Result<String, WireError> {
        let at = self.at;
        let bytes = self.bytes(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError { what, offset: at, problem: "not UTF-8".into() })
    }

    /// Fails unless every byte was read.
    pub fn finish(&self, what: &'static str) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(self.error(what, format!("{extra} bytes after the end"))),
        }
    }
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

/// Something with a binary encoding.
pub trait Wire: Sized {
    /// Appends its encoding.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one from `r`.
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError>;

    /// Its encoding, alone.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one from `bytes` (trailing bytes are an error).
    fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish("message")?;
        Ok(v)
    }
}

fn value(r: &mut Reader<'_>, what: &'static str) -> Result<Value, WireError> {
    Ok(Value::from(r.bytes(what)?))
}

fn option<T>(out: &mut Vec<u8>, v: &Option<T>, mut put: impl FnMut(&mut Vec<u8>, &T)) {
    match v {
        None => out.push(0),
        Some(x) => {
            out.push(1);
            put(out, x);
        }
    }
}

fn read_option<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, WireError>,
) -> Result<Option<T>, WireError> {
    Ok(if r.bool(what)? { Some(read(r)?) } else { None })
}

/// Tags of [`Command`] on the wire.
pub mod command_tag {
    /// Get.
    pub const GET: u8 = 0;
    /// Put.
    pub const PUT: u8 = 1;
    /// Scan.
    pub const SCAN: u8 = 2;
    /// Read-modify-write.
    pub const READ_MODIFY_WRITE: u8 = 3;
}

impl Wire for Command {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::Get { key } => {
                out.push(command_tag::GET);
                put_bytes(out, key.as_bytes());
            }
            Command::Put { key, value } => {
                out.push(command_tag::PUT);
                put_bytes(out, key.as_bytes());
                put_bytes(out, value);
            }
            Command::Scan { start, count } => {
                out.push(command_tag::SCAN);
                put_bytes(out, start.as_bytes());
                put_u64(out, *count as u64);
            }
            Command::ReadModifyWrite { key, value } => {
                out.push(command_tag::READ_MODIFY_WRITE);
                put_bytes(out, key.as_bytes());
                put_bytes(out, value);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let tag = r.u8("command")?;
        Ok(match tag {
            command_tag::GET => Command::Get { key: r.string("key")? },
            command_tag::PUT => Command::Put { key: r.string("key")?, value: value(r, "value")? },
            command_tag::SCAN => {
                let start = r.string("key")?;
                let count = usize::try_from(r.u64("scan count")?).unwrap_or(usize::MAX);
                Command::Scan { start, count }
            }
            command_tag::READ_MODIFY_WRITE => {
                Command::ReadModifyWrite { key: r.string("key")?, value: value(r, "value")? }
            }
            other => {
                return Err(
                    r.error("command", format!("unknown command {other} (0 get, 1 put, 2 scan, 3 read-modify-write)"))
                );
            }
        })
    }
}

impl Wire for Request {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.client);
        put_u64(out, self.seq);
        self.command.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Request { client: r.u64("client")?, seq: r.u64("sequence number")?, command: Command::decode(r)? })
    }
}

impl Wire for Reply {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Value(v) => {
                out.push(0);
                option(out, v, |o, v| put_bytes(o, v));
            }
            Reply::Written => out.push(1),
            Reply::Range(rows) => {
                out.push(2);
                put_count(out, rows.len());
                for (k, v) in rows {
                    put_bytes(out, k.as_bytes());
                    put_bytes(out, v);
                }
            }
            Reply::Previous(v) => {
                out.push(3);
                option(out, v, |o, v| put_bytes(o, v));
            }
            Reply::Stale => out.push(4),
            Reply::Refused(why) => {
                out.push(5);
                put_bytes(out, why.as_bytes());
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(match r.u8("reply")? {
            0 => Reply::Value(read_option(r, "value", |r| value(r, "value"))?),
            1 => Reply::Written,
            2 => {
                let count = r.count(8, "range")?;
                let mut rows = Vec::with_capacity(count);
                for _ in 0..count {
                    rows.push((r.string("key")?, value(r, "value")?));
                }
                Reply::Range(rows)
            }
            3 => Reply::Previous(read_option(r, "value", |r| value(r, "value"))?),
            4 => Reply::Stale,
            5 => Reply::Refused(r.string("refusal")?),
            other => return Err(r.error("reply", format!("unknown reply {other}"))),
        })
    }
}

impl Wire for KvStore {
    fn encode(&self, out: &mut Vec<u8>) {
        put_count(out, self.data.len());
        for (k, v) in &self.data {
            put_bytes(out, k.as_bytes());
            put_bytes(out, v);
        }
        put_count(out, self.sessions.len());
        for (client, (seq, reply)) in &self.sessions {
            put_u64(out, *client);
            put_u64(out, *seq);
            reply.encode(out);
        }
        put_count(out, self.sessionless.len());
        for (client, seq) in &self.sessionless {
            put_u64(out, *client);
            put_u64(out, *seq);
        }
        put_u64(out, self.applied);
    }

    /// Entries come in increasing order, each once (as encoded): a
    /// repeated or out-of-order entry is an error, not silently merged.
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let mut store = KvStore::new();
        for _ in 0..r.count(8, "store")? {
            let at = r.position();
            let key = r.string("key")?;
            if store.data.last_key_value().is_some_and(|(last, _)| *last >= key) {
                return Err(r.error_at(at, "key", "keys out of order or repeated"));
            }
            store.data.insert(key, value(r, "value")?);
        }
        for _ in 0..r.count(17, "sessions")? {
            let at = r.position();
            let client = r.u64("client")?;
            if store.sessions.last_key_value().is_some_and(|(last, _)| *last >= client) {
                return Err(r.error_at(at, "client", "sessions out of order or repeated"));
            }
            store.sessions.insert(client, (r.u64("sequence number")?, Reply::decode(r)?));
        }
        let mut sessionless = BTreeSet::new();
        for _ in 0..r.count(16, "session-less requests")? {
            let at = r.position();
            let pair = (r.u64("client")?, r.u64("sequence number")?);
            if sessionless.last().is_some_and(|last| *last >= pair) {
                return Err(r.error_at(at, "client", "session-less requests out of order or repeated"));
            }
            sessionless.insert(pair);
        }
        store.sessionless = sessionless;
        store.applied = r.u64("applied")?;
        Ok(store)
    }
}

impl Wire for BatchId {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.ts);
        put_u64(out, self.proxy as u64);
        put_u64(out, self.batch);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let ts = r.u64("batch id")?;
        let proxy = usize::try_from(r.u64("batch id")?).map_err(|_| r.error("batch id", "proxy out of range"))?;
        Ok(BatchId { ts, proxy, batch: r.u64("batch id")? })
    }
}

fn put_id(out: &mut Vec<u8>, id: &Option<BatchId>) {
    option(out, id, |o, id| id.encode(o));
}

fn read_id(r: &mut Reader<'_>) -> Result<Option<BatchId>, WireError> {
    read_option(r, "batch id", BatchId::decode)
}

impl Wire for rabia::Message {
    fn encode(&self, out: &mut Vec<u8>) {
        use rabia::Message as M;
        match self {
            M::Forward(batch) => {
                out.push(0);
                batch.id.encode(out);
                put_count(out, batch.requests.len());
                for request in &batch.requests {
                    request.encode(out);
                }
            }
            M::Need { id } => {
                out.push(1);
                id.encode(out);
            }
            M::Proposal { slot, value } => {
                out.push(2);
                put_u64(out, *slot);
                put_id(out, value);
            }
            M::State { slot, phase, bit, value } => {
                out.push(3);
                put_u64(out, *slot);
                out.extend_from_slice(&phase.to_le_bytes());
                out.push(u8::from(*bit));
                put_id(out, value);
            }
            M::Vote { slot, phase, vote, value } => {
                out.push(4);
                put_u64(out, *slot);
                out.extend_from_slice(&phase.to_le_bytes());
                out.push(match vote {
                    None => 2,
                    Some(b) => u8::from(*b),
                });
                put_id(out, value);
            }
            M::Decided { slot, value } => {
                out.push(5);
                put_u64(out, *slot);
                put_id(out, value);
            }
            M::Behind { next } => {
                out.push(6);
                put_u64(out, *next);
            }
            M::Snapshot(snapshot) => {
                out.push(7);
                put_u64(out, snapshot.next);
                snapshot.store.encode(out);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        use rabia::Message as M;
        Ok(match r.u8("Rabia message")? {
            0 => {
                let id = BatchId::decode(r)?;
                let count = r.count(17, "batch")?;
                let mut requests = Vec::with_capacity(count);
                for _ in 0..count {
                    requests.push(Request::decode(r)?);
                }
                M::Forward(Arc::new(Batch { id, requests }))
            }
            1 => M::Need { id: BatchId::decode(r)? },
            2 => M::Proposal { slot: r.u64("slot")?, value: read_id(r)? },
            3 => M::State { slot: r.u64("slot")?, phase: r.u32("phase")?, bit: r.bool("bit")?, value: read_id(r)? },
            4 => {
                let slot = r.u64("slot")?;
                let phase = r.u32("phase")?;
                let vote = match r.u8("vote")? {
                    0 => Some(false),
                    1 => Some(true),
                    2 => None,
                    other => return Err(r.error("vote", format!("a vote is 0, 1 or 2 (?), found {other}"))),
                };
                M::Vote { slot, phase, vote, value: read_id(r)? }
            }
            5 => M::Decided { slot: r.u64("slot")?, value: read_id(r)? },
            6 => M::Behind { next: r.u64("slot")? },
            7 => {
                let next = r.u64("slot")?;
                M::Snapshot(Arc::new(Snapshot { next, store: KvStore::decode(r)? }))
            }
            other => return Err(r.error("Rabia message", format!("unknown message type {other}"))),
        })
    }
}

impl Wire for Shard {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.index.to_le_bytes());
        put_bytes(out, &self.bytes);
        out.extend_from_slice(&self.digest);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let index = r.u16("shard")?;
        let bytes = r.bytes("shard")?.to_vec();
        let digest = r.take(32, "shard digest")?.try_into().expect("32 bytes");
        Ok(Shard { index, bytes, digest })
    }
}

fn put_write(out: &mut Vec<u8>, write: &racos::WriteId) {
    put_u64(out, write.0);
    put_u64(out, write.1);
}

fn read_write(r: &mut Reader<'_>) -> Result<racos::WriteId, WireError> {
    Ok((r.u64("write id")?, r.u64("write id")?))
}

impl Wire for racos::Message {
    fn encode(&self, out: &mut Vec<u8>) {
        use racos::Message as M;
        match self {
            M::Rabia(m) => {
                out.push(0);
                m.encode(out);
            }
            M::Store { write, shard } => {
                out.push(1);
                put_write(out, write);
                shard.encode(out);
            }
            M::Stored { write } => {
                out.push(2);
                put_write(out, write);
            }
            M::Fetch { write } => {
                out.push(3);
                put_write(out, write);
            }
            M::Fetched { write, shard } => {
                out.push(4);
                put_write(out, write);
                option(out, shard, |o, s| s.encode(o));
            }
            M::Epoch(epoch) => {
                out.push(5);
                put_u64(out, *epoch);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        use racos::Message as M;
        Ok(match r.u8("Racos message")? {
            0 => M::Rabia(rabia::Message::decode(r)?),
            1 => M::Store { write: read_write(r)?, shard: Shard::decode(r)? },
            2 => M::Stored { write: read_write(r)? },
            3 => M::Fetch { write: read_write(r)? },
            4 => M::Fetched { write: read_write(r)?, shard: read_option(r, "shard", Shard::decode)? },
            5 => M::Epoch(r.u64("epoch")?),
            other => return Err(r.error("Racos message", format!("unknown message type {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(client: u64, seq: u64, command: Command) -> Request {
        Request { client, seq, command }
    }

    fn every_message() -> Vec<racos::Message> {
        let id = BatchId { ts: 5, proxy: 2, batch: 9 };
        let batch = Batch {
            id,
            requests: vec![
                request(1, 1, Command::Get { key: "k".into() }),
                request(1, 2, Command::Put { key: "k".into(), value: b"v1"[..].into() }),
                request(2, 1, Command::Scan { start: "a".into(), count: 3 }),
                request(3, 4, Command::ReadModifyWrite { key: "é".into(), value: Value::from(&[0u8; 0][..]) }),
            ],
        };
        let mut store = KvStore::new();
        for r in &batch.requests {
            store.apply(r);
        }
        store.apply(&request(crate::kv::SESSIONLESS + 3, 7, Command::Get { key: "k".into() }));
        let shard = crate::erasure::encode(b"a value of some bytes", 2, 1).expect("codes").shards.remove(1);
        let rabia = vec![
            rabia::Message::Forward(Arc::new(batch)),
            rabia::Message::Need { id },
            rabia::Message::Proposal { slot: 3, value: None },
            rabia::Message::Proposal { slot: 3, value: Some(id) },
            rabia::Message::State { slot: 4, phase: 2, bit: true, value: Some(id) },
            rabia::Message::Vote { slot: 4, phase: 1, vote: None, value: None },
            rabia::Message::Vote { slot: 4, phase: 1, vote: Some(false), value: None },
            rabia::Message::Decided { slot: 8, value: Some(id) },
            rabia::Message::Behind { next: 11 },
            rabia::Message::Snapshot(Arc::new(Snapshot { next: 12, store })),
        ];
        let mut all: Vec<racos::Message> = rabia.into_iter().map(racos::Message::Rabia).collect();
        all.extend([
            racos::Message::Store { write: (1, 2), shard: shard.clone() },
            racos::Message::Stored { write: (1, 2) },
            racos::Message::Fetch { write: (3, 4) },
            racos::Message::Fetched { write: (3, 4), shard: Some(shard) },
            racos::Message::Fetched { write: (3, 4), shard: None },
            racos::Message::Epoch(6),
        ]);
        all
    }

    #[test]
    fn every_message_and_reply_round_trips() {
        for m in every_message() {
            assert_eq!(racos::Message::from_bytes(&m.to_bytes()).expect("decodes"), m);
            if let racos::Message::Rabia(inner) = &m {
                assert_eq!(&rabia::Message::from_bytes(&inner.to_bytes()).expect("decodes"), inner);
            }
        }
        let replies = [
            Reply::Value(None),
            Reply::Value(Some(b"x"[..].into())),
            Reply::Written,
            Reply::Range(vec![("a".into(), b"1"[..].into()), ("b".into(), b"22"[..].into())]),
            Reply::Previous(Some(b"p"[..].into())),
            Reply::Stale,
            Reply::Refused("scans are not supported".into()),
        ];
        for reply in replies {
            assert_eq!(Reply::from_bytes(&reply.to_bytes()).expect("decodes"), reply);
        }
    }

    #[test]
    fn truncated_and_corrupted_bytes_give_errors_not_panics() {
        for m in every_message() {
            let bytes = m.to_bytes();
            for cut in 0..bytes.len() {
                assert!(racos::Message::from_bytes(&bytes[..cut]).is_err(), "a prefix of {cut} bytes decoded");
            }
            // Flipping any byte either fails or decodes to something (never
            // panics or allocates without bound).
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0xff;
                let _ = racos::Message::from_bytes(&bad);
            }
        }
        let err = Command::from_bytes(&[9]).expect_err("tag 9 is no command");
        assert!(err.to_string().contains("unknown command 9"), "{err}");
        // A length far beyond the input is refused before allocating.
        let mut huge = vec![command_tag::PUT];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Command::from_bytes(&huge).expect_err("too long").to_string().contains("remain"));
    }
}
