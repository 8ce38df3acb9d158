//! What every replication protocol of this crate offers its drivers (the
//! twin, and later the loopback service): a sans-IO state machine that
//! takes client requests, messages and timer ticks and returns effects.

use std::collections::BTreeMap;

use crate::kv::{Reply, Request};

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
        reply: Reply,
    },
}

/// A replica of a replication protocol.
pub trait Protocol {
    /// Its messages.
    type Message: Clone + std::fmt::Debug;
    /// A client's request arrives at this replica at time `now` (ns).
    fn on_client(&mut self, request: Request, now: u64) -> Vec<Effect<Self::Message>>;
    /// A message from replica `from`.
    fn on_message(&mut self, from: ReplicaId, message: Self::Message) -> Vec<Effect<Self::Message>>;
    /// The replica's timer fired (re-sends).
    fn tick(&mut self) -> Vec<Effect<Self::Message>>;
    /// Bytes a message takes on the wire.
    fn wire_bytes(message: &Self::Message) -> usize;
    /// Each decided slot's request as (client, seq), `None` for a no-op.
    fn decisions(&self) -> BTreeMap<u64, Option<(u64, u64)>>;
    /// A digest of the replicated state.
    fn state_digest(&self) -> u64;
    /// A one-line summary of where it stands.
    fn summary(&self) -> String;
}
