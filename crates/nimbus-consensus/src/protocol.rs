//! What every replication protocol of this crate offers its drivers (the
//! twin and the loopback service): a sans-IO state machine that takes
//! client requests, messages and timer ticks and returns effects.
//!
//! Durability is an effect too: [`Effect::Persist`] asks the driver to
//! write a record to stable storage, and a driver releases nothing the
//! replica emits after it (messages, replies) before the record is durable
//! (write-ahead). A replica that crashes and restarts is a fresh replica
//! given its durable records ([`Protocol::recover`]); whatever else it
//! held is gone.

use std::collections::BTreeMap;

use crate::kv::{Request, Value};

/// Bytes of every message's header (sender, type, slot or ids) in the
/// protocols' wire-size accounting.
pub const HEADER_BYTES: usize = 24;

/// A replica id, 0..n.
pub type ReplicaId = usize;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<M> {
    /// Send to one replica.
    Send(ReplicaId, M),
    /// Send to every other replica.
    Broadcast(M),
    /// Answer a client.
    Reply {
        /// Client.
        client: u64,
        /// Its sequence number.
        seq: u64,
        /// The answer.
        reply: crate::kv::Reply,
    },
    /// Write this record to stable storage; effects emitted after it wait
    /// until it is durable. Its size is the record's wire size.
    Persist(M),
}

/// A replica of a replication protocol.
pub trait Protocol {
    /// Its messages (and durable records).
    type Message: Clone + std::fmt::Debug;
    /// A client's request arrives at this replica at time `now` (ns).
    fn on_client(&mut self, request: Request, now: u64) -> Vec<Effect<Self::Message>>;
    /// A message from replica `from`.
    fn on_message(&mut self, from: ReplicaId, message: Self::Message) -> Vec<Effect<Self::Message>>;
    /// The replica's timer fired (re-sends).
    fn tick(&mut self) -> Vec<Effect<Self::Message>>;
    /// A restarted replica (fresh from its constructor) takes back the
    /// records it persisted before it crashed, in the order it wrote them.
    fn recover(&mut self, durable: Vec<Self::Message>) -> Vec<Effect<Self::Message>>;
    /// Loads a record before the run into these replicas (all of them, or
    /// one that restarts), as their copy of a value written before the
    /// history starts (YCSB's load phase); work the replicas share (coding
    /// a value) is done once.
    fn preload(replicas: &mut [Self], key: &str, value: &Value)
    where
        Self: Sized;
    /// Bytes a message takes on the wire (and a record on disk).
    fn wire_bytes(message: &Self::Message) -> usize;
    /// Each decided slot's batch or request as an id pair, `None` for a
    /// no-op; slots learnt only through a snapshot are absent.
    fn decisions(&self) -> BTreeMap<u64, Option<(u64, u64)>>;
    /// Slots applied to the store (replicas that applied as many hold the
    /// same store).
    fn applied_slots(&self) -> u64;
    /// A digest of the replicated state.
    fn state_digest(&self) -> u64;
    /// A one-line summary of where it stands.
    fn summary(&self) -> String;
}
