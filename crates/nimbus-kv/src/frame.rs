//! Frames on the service's TCP connections.
//!
//! A frame is a little-endian u32 length, then that many bytes: a tag
//! byte and the body. A connection starts with a [`Frame::Hello`] naming
//! its role (a client, or a replica of the cluster) and the cluster's
//! shared token; a replica's connection then carries protocol messages
//! ([`PEER_TAG`], then the protocol's own encoding), a client's carries
//! requests and gets replies, errors and status.
//!
//! A frame longer than the receiver's limit is refused before it is read
//! (the length is all that is trusted, and memory is taken only as bytes
//! arrive), and a body that does not decode is an error with the byte where
//! decoding stopped.

use nimbus_consensus::kv::{Command, Reply};
use nimbus_consensus::wire::{Reader, Wire, WireError, put_bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The tag of a frame that carries a protocol message between replicas.
pub const PEER_TAG: u8 = 5;

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A client session with this id.
    Client(u64),
    /// Replica number this of the cluster.
    Replica(usize),
}

/// A frame, other than a protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The first frame of every connection.
    Hello {
        /// The cluster's shared token.
        token: String,
        /// Who is connecting.
        role: Role,
    },
    /// A client's request (its session is the connection's client id).
    Request {
        /// The client's sequence number (grows by one per new request; a
        /// retry repeats it).
        seq: u64,
        /// What to do.
        command: Command,
    },
    /// The answer to request `seq`.
    Reply {
        /// Sequence number.
        seq: u64,
        /// Answer.
        reply: Reply,
    },
    /// What was wrong with the last frame; the server may close after it.
    Error {
        /// A sentence.
        message: String,
    },
    /// Ask where the replica stands.
    Status,
    /// Where the replica stands.
    StatusReply {
        /// Slots applied to its store.
        applied: u64,
        /// Digest of its store.
        digest: u64,
        /// A line about its state.
        summary: String,
    },
}

impl Frame {
    /// The frame's body (tag and fields).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Frame::Hello { token, role } => {
                out.push(1);
                put_bytes(&mut out, token.as_bytes());
                let (kind, id) = match role {
                    Role::Client(id) => (0, *id),
                    Role::Replica(id) => (1, *id as u64),
                };
                out.push(kind);
                out.extend_from_slice(&id.to_le_bytes());
            }
            Frame::Request { seq, command } => {
                out.push(2);
                out.extend_from_slice(&seq.to_le_bytes());
                command.encode(&mut out);
            }
            Frame::Reply { seq, reply } => {
                out.push(3);
                out.extend_from_slice(&seq.to_le_bytes());
                reply.encode(&mut out);
            }
            Frame::Error { message } => {
                out.push(4);
                put_bytes(&mut out, message.as_bytes());
            }
            Frame::Status => out.push(6),
            Frame::StatusReply { applied, digest, summary } => {
                out.push(7);
                out.extend_from_slice(&applied.to_le_bytes());
                out.extend_from_slice(&digest.to_le_bytes());
                put_bytes(&mut out, summary.as_bytes());
            }
        }
        out
    }

    /// Decodes a frame's body.
    pub fn decode(body: &[u8]) -> Result<Frame, WireError> {
        let mut r = Reader::new(body);
        let frame = match r.u8("frame")? {
            1 => {
                let token = r.string("token")?;
                let kind = r.u8("role")?;
                let id = r.u64("id")?;
                let role = match kind {
                    0 => Role::Client(id),
                    1 => Role::Replica(usize::try_from(id).map_err(|_| r.error("role", "replica id out of range"))?),
                    other => return Err(r.error("role", format!("a role is 0 (client) or 1 (replica), found {other}"))),
                };
                Frame::Hello { token, role }
            }
            2 => Frame::Request { seq: r.u64("sequence number")?, command: Command::decode(&mut r)? },
            3 => Frame::Reply { seq: r.u64("sequence number")?, reply: Reply::decode(&mut r)? },
            4 => Frame::Error { message: r.string("error")? },
            6 => Frame::Status,
            7 => Frame::StatusReply {
                applied: r.u64("applied")?,
                digest: r.u64("digest")?,
                summary: r.string("summary")?,
            },
            PEER_TAG => return Err(r.error("frame", "a protocol message on a connection that is not a replica's")),
            other => {
                return Err(r.error(
                    "frame",
                    format!(
                        "unknown frame type {other} (1 hello, 2 request, 3 reply, 4 error, 6 status, 7 status reply)"
                    ),
                ));
            }
        };
        r.finish("frame")?;
        Ok(frame)
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix exceeds the limit.
    #[error("a frame of {len} bytes exceeds the limit of {limit} bytes")]
    Oversize {
        /// Announced length.
        len: usize,
        /// The receiver's limit.
        limit: usize,
    },
    /// A frame of no bytes.
    #[error("an empty frame")]
    Empty,
}

/// Reads one frame's body, refusing one longer than `limit` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(FrameError::Oversize { len, limit });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    // Grow the buffer as bytes arrive rather than trusting the length: a
    // peer that announces a large frame and sends nothing holds no memory.
    let mut body = Vec::with_capacity(len.min(64 << 10));
    let got = reader.take(len as u64).read_to_end(&mut body).await?;
    if got < len {
        return Err(FrameError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the frame was cut short")));
    }
    Ok(body)
}

/// Writes one frame (not flushed).
pub async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a frame over 4 GiB"))?;
    writer.write_all(&len.to_le_bytes()).await?;
    writer.write_all(body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_is_an_error() {
        let frames = [
            Frame::Hello { token: "secret".into(), role: Role::Client(7) },
            Frame::Hello { token: String::new(), role: Role::Replica(2) },
            Frame::Request { seq: 3, command: Command::Put { key: "k".into(), value: b"v"[..].into() } },
            Frame::Reply { seq: 3, reply: Reply::Written },
            Frame::Error { message: "no".into() },
            Frame::Status,
            Frame::StatusReply { applied: 4, digest: 5, summary: "ok".into() },
        ];
        for f in frames {
            assert_eq!(Frame::decode(&f.encode()).expect("decodes"), f);
        }
        let err = Frame::decode(b"GET / HTTP/1.1").expect_err("not a frame");
        assert!(err.to_string().contains("unknown frame type 71"), "{err}");
        assert!(
            Frame::decode(&[2, 1, 0, 0, 0, 0, 0, 0, 0, 42])
                .expect_err("bad command")
                .to_string()
                .contains("unknown command 42")
        );
    }

    #[tokio::test]
    async fn an_oversize_length_is_refused_before_reading() {
        let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0x7f, 1, 2, 3];
        let err = read_frame(&mut bytes, 1 << 20).await.expect_err("too long");
        assert!(matches!(err, FrameError::Oversize { len: 0x7fff_ffff, limit: 1_048_576 }), "{err}");
    }
}
