//! The loopback key-value service: the protocols of `nimbus-consensus`
//! (Rabia, Racos) for real, as replica processes over TCP, with the same
//! sans-IO state machines the twin drives.
//!
//! - [`frame`]: frames on the wire (hello with the cluster token, client
//!   requests and replies, errors, status, protocol messages) with size
//!   limits;
//! - [`server`]: one replica process (tokio for sockets, one thread for
//!   the protocol, a write-ahead log with group commit and recovery);
//! - [`client`]: a client session that retries at the next replica with
//!   the same sequence number;
//! - [`bench`]: a closed-loop benchmark whose history is checked for
//!   linearizability after a read-back of every key written;
//! - [`cluster`]: replica processes on loopback, for the benchmark command
//!   and the tests, with kill and restart.
//!
//! Unlike the rest of Nimbus this crate runs on wall time and real
//! sockets: results vary from run to run; the checks (linearizability,
//! replicas agree) must hold on every run.

pub mod bench;
pub mod client;
pub mod cluster;
pub mod frame;
pub mod server;
