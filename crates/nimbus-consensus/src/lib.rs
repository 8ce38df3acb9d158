//! Replication for real: the pieces every protocol of this crate shares.
//!
//! - [`erasure`]: Reed–Solomon coding of values into shards with a
//!   BLAKE3 digest each (the coder does not detect corruption), for Racos;
//! - [`kv`]: the replicated key-value state machine, with client sessions
//!   so that a retried request is applied once and answered again;
//! - [`ycsb`]: YCSB's core workloads A–F (operation mixes, Zipfian,
//!   latest, uniform and hotspot keys, value sizes), read from YCSB's
//!   property files or built in;
//! - [`linearizability`]: a checker for key-value histories (Wing–Gong
//!   search with Lowe's memoisation, partitioned per key);
//! - [`rabia`]: Rabia as a sans-IO state machine (proposal exchange,
//!   randomized binary consensus with a common coin, NULL slots);
//! - [`racos`]: Racos, erasure-coded values whose descriptors Rabia
//!   orders;
//! - [`leader`]: the leader-based baselines in steady state (Multi-Paxos
//!   full copy, RS-Paxos-style erasure coding);
//! - [`protocol`]: the sans-IO interface every protocol implements
//!   (messages, ticks and durable records in, effects out);
//! - [`twin`]: a seeded simulation of replicas, clients, networks, disks,
//!   crashes and restarts that drives a protocol and measures it;
//! - [`workload`]: what a client does (the same for the twin and the
//!   loopback service), with values that carry unique ids;
//! - [`wire`]: a binary encoding of messages, commands and replies that
//!   rejects garbage with an error, for real wires and disks;
//! - [`policy`] and [`scenario`]: the protocols a scenario compares and
//!   the scenario keys, runs and metrics of the `consensus` domain.

pub mod erasure;
pub mod kv;
pub mod leader;
pub mod linearizability;
pub mod policy;
pub mod protocol;
pub mod rabia;
pub mod racos;
pub mod scenario;
pub mod twin;
pub mod wire;
pub mod workload;
pub mod ycsb;
