//! A client of the service: one session (client id), one request at a
//! time, retried with the same sequence number at the next replica after
//! a timeout or a lost connection, so that a request is applied once
//! however often it is sent (the store's client sessions).

use std::net::SocketAddr;
use std::time::Duration;

use nimbus_consensus::kv::{Command, Reply};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use crate::frame::{Frame, Role, read_frame, write_frame};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A replica said what was wrong (a wrong token, a malformed frame).
    #[error("replica {addr} answered: {message}")]
    Refused {
        /// The replica.
        addr: SocketAddr,
        /// Its error.
        message: String,
    },
    /// No replica answered before the deadline.
    #[error("no answer before the deadline ({attempts} attempts; last: {last})")]
    TimedOut {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// Settings of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The replicas, in replica order.
    pub replicas: Vec<SocketAddr>,
    /// The cluster's token.
    pub token: String,
    /// Wait this long for an answer before trying the next replica.
    pub attempt_timeout: Duration,
    /// Longest frame accepted from a replica, bytes.
    pub frame_limit: usize,
}

struct Connection {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

/// One client session.
pub struct KvClient {
    config: ClientConfig,
    id: u64,
    seq: u64,
    target: usize,
    connection: Option<Connection>,
}

impl KvClient {
    /// Session `id` (distinct per client; below the store's session-less
    /// ids), first talking to replica `first`.
    pub fn new(config: ClientConfig, id: u64, first: usize) -> Self {
        let target = first % config.replicas.len().max(1);
        KvClient { config, id, seq: 0, target, connection: None }
    }

    /// The replica it talks to now.
    pub fn target(&self) -> usize {
        self.target
    }

    async fn connect(&mut self) -> Result<&mut Connection, String> {
        if self.connection.is_none() {
            let addr = self.config.replicas[self.target];
            let stream = tokio::time::timeout(self.config.attempt_timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| format!("connecting to {addr} timed out"))?
                .map_err(|e| format!("connecting to {addr}: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (read, mut write) = stream.into_split();
            let hello = Frame::Hello { token: self.config.token.clone(), role: Role::Client(self.id) };
            write_frame(&mut write, &hello.encode()).await.map_err(|e| format!("{addr}: {e}"))?;
            self.connection = Some(Connection { read: BufReader::new(read), write });
        }
        self.connection.as_mut().ok_or_else(|| "not connected".to_string())
    }

    fn next_replica(&mut self) {
        self.connection = None;
        self.target = (self.target + 1) % self.config.replicas.len();
    }

    /// Runs `command` as the session's next request, retrying at the next
    /// replica until `deadline`.
    pub async fn call(&mut self, command: Command, deadline: Instant) -> Result<Reply, ClientError> {
        self.seq += 1;
        let request = Frame::Request { seq: self.seq, command }.encode();
        let mut attempts = 0;
        let mut last = String::from("none");
        while Instant::now() < deadline {
            attempts += 1;
            match self.attempt(&request, deadline).await {
                Ok(reply) => return Ok(reply),
                Err(Failure::Refused(message)) => {
                    let addr = self.config.replicas[self.target];
                    self.next_replica();
                    return Err(ClientError::Refused { addr, message });
                }
                Err(Failure::Retry(why)) => {
                    last = why;
                    self.next_replica();
                    tokio::time::sleep(
                        Duration::from_millis(20).min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
            }
        }
        Err(ClientError::TimedOut { attempts, last })
    }

    async fn attempt(&mut self, request: &[u8], deadline: Instant) -> Result<Reply, Failure> {
        let seq = self.seq;
        let limit = self.config.frame_limit;
        let wait = self.config.attempt_timeout.min(deadline.saturating_duration_since(Instant::now()));
        let addr = self.config.replicas[self.target];
        let connection = self.connect().await.map_err(Failure::Retry)?;
        write_frame(&mut connection.write, request).await.map_err(|e| Failure::Retry(format!("{addr}: {e}")))?;
        connection.write.flush().await.map_err(|e| Failure::Retry(format!("{addr}: {e}")))?;
        let answer = async {
            loop {
                let body = read_frame(&mut connection.read, limit)
                    .await
                    .map_err(|e| Failure::Retry(format!("{addr}: {e}")))?;
                match Frame::decode(&body) {
                    Ok(Frame::Reply { seq: s, reply }) if s == seq => return Ok(reply),
                    // An answer to an earlier attempt of an earlier request.
                    Ok(Frame::Reply { .. }) => {}
                    Ok(Frame::Error { message }) => return Err(Failure::Refused(message)),
                    Ok(other) => return Err(Failure::Refused(format!("unexpected frame {other:?}"))),
                    Err(e) => return Err(Failure::Refused(format!("malformed reply: {e}"))),
                }
            }
        };
        tokio::time::timeout(wait, answer)
            .await
            .map_err(|_| Failure::Retry(format!("{addr} did not answer within {wait:?}")))?
    }

    /// Asks replica `replica` where it stands: (slots applied, store
    /// digest, summary).
    pub async fn status(&mut self, replica: usize) -> Result<(u64, u64, String), ClientError> {
        self.connection = None;
        self.target = replica % self.config.replicas.len();
        let addr = self.config.replicas[self.target];
        let timed_out = |last: String| ClientError::TimedOut { attempts: 1, last };
        let limit = self.config.frame_limit;
        let wait = self.config.attempt_timeout;
        let connection = self.connect().await.map_err(timed_out)?;
        write_frame(&mut connection.write, &Frame::Status.encode()).await.map_err(|e| timed_out(e.to_string()))?;
        connection.write.flush().await.map_err(|e| timed_out(e.to_string()))?;
        let body = tokio::time::timeout(wait, read_frame(&mut connection.read, limit))
            .await
            .map_err(|_| timed_out(format!("{addr} did not answer")))?
            .map_err(|e| timed_out(e.to_string()))?;
        self.connection = None;
        match Frame::decode(&body) {
            Ok(Frame::StatusReply { applied, digest, summary }) => Ok((applied, digest, summary)),
            Ok(Frame::Error { message }) => Err(ClientError::Refused { addr, message }),
            other => Err(ClientError::Refused { addr, message: format!("unexpected answer {other:?}") }),
        }
    }
}

enum Failure {
    Retry(String),
    Refused(String),
}
