//! Request trees and the frames that carry them.
//!
//! A request is a tree of calls: each call names its service, the work it
//! does there (µs) and the calls it makes to the next tier once that work
//! is done. The load generator draws whole trees (so both disciplines see
//! the same requests) and each call carries its subtree; services keep no
//! state about requests beyond the calls they hold.
//!
//! A frame is a little-endian u32 length and that many bytes: a tag and a
//! body. A connection opens with [`Frame::Hello`] carrying the chain's
//! token; then the caller sends [`Frame::Call`]s and the service answers
//! each with a [`Frame::Reply`] of the same id. Lengths are checked
//! against [`MAX_FRAME`] before any body is read, and a body that does not
//! decode to exactly its length is an error.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest frame accepted, bytes.
pub const MAX_FRAME: usize = 64 << 10;
/// Most calls in one tree (a frame holds at most this many anyway).
pub const MAX_CALLS: usize = 4096;
/// Deepest tree accepted.
pub const MAX_DEPTH: usize = 16;

/// One call of a request tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The service it goes to (global index).
    pub service: u16,
    /// Work at that service, µs.
    pub work_us: u32,
    /// Calls it makes to the next tier when its work is done.
    pub children: Vec<Call>,
}

impl Call {
    /// Calls in the tree.
    pub fn size(&self) -> usize {
        1 + self.children.iter().map(Call::size).sum::<usize>()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.service.to_le_bytes());
        out.extend_from_slice(&self.work_us.to_le_bytes());
        let n = u16::try_from(self.children.len()).expect("fan-out fits u16");
        out.extend_from_slice(&n.to_le_bytes());
        for c in &self.children {
            c.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>, depth: usize, budget: &mut usize) -> Result<Call, WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::Malformed("a call tree deeper than 16"));
        }
        if *budget == 0 {
            return Err(WireError::Malformed("a call tree of more than 4096 calls"));
        }
        *budget -= 1;
        let service = u16::from_le_bytes(r.take()?);
        let work_us = u32::from_le_bytes(r.take()?);
        let n = u16::from_le_bytes(r.take()?);
        let mut children = Vec::with_capacity(usize::from(n).min(64));
        for _ in 0..n {
            children.push(Call::decode(r, depth + 1, budget)?);
        }
        Ok(Call { service, work_us, children })
    }
}

/// A frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// First frame of a connection.
    Hello {
        /// The chain's shared token.
        token: [u8; 16],
    },
    /// A call: do `call.work_us` at this service, make `call.children`,
    /// answer when all have answered.
    Call {
        /// Caller's id for the answer.
        id: u64,
        /// The request's arrival at the ingress, ns since the chain's
        /// epoch (TailClipper's propagated timestamp).
        origin_ns: u64,
        /// The call and its subtree.
        call: Call,
    },
    /// Call `id` is done.
    Reply {
        /// Its id.
        id: u64,
    },
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// A length over the limit.
    #[error("a frame of {0} bytes, over the {MAX_FRAME}-byte limit")]
    TooLong(usize),
    /// A body that does not decode.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (head, rest) = self.bytes.split_at_checked(N).ok_or(WireError::Malformed("the frame ends early"))?;
        self.bytes = rest;
        Ok(head.try_into().expect("split at N"))
    }
}

impl Frame {
    /// The frame with its length prefix.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0; 4];
        match self {
            Frame::Hello { token } => {
                out.push(0);
                out.extend_from_slice(token);
            }
            Frame::Call { id, origin_ns, call } => {
                out.push(1);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&origin_ns.to_le_bytes());
                call.encode(&mut out);
            }
            Frame::Reply { id } => {
                out.push(2);
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        let len = u32::try_from(out.len() - 4).expect("frames are small");
        out[..4].copy_from_slice(&len.to_le_bytes());
        out
    }

    /// Decodes a body (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<Frame, WireError> {
        let mut r = Reader { bytes: body };
        let [tag] = r.take()?;
        let frame = match tag {
            0 => Frame::Hello { token: r.take()? },
            1 => {
                let id = u64::from_le_bytes(r.take()?);
                let origin_ns = u64::from_le_bytes(r.take()?);
                let mut budget = MAX_CALLS;
                Frame::Call { id, origin_ns, call: Call::decode(&mut r, 0, &mut budget)? }
            }
            2 => Frame::Reply { id: u64::from_le_bytes(r.take()?) },
            _ => return Err(WireError::Malformed("an unknown tag")),
        };
        if !r.bytes.is_empty() {
            return Err(WireError::Malformed("bytes after the frame's body"));
        }
        Ok(frame)
    }

    /// Reads one frame; `Ok(None)` at a clean end of the connection.
    pub async fn read(stream: &mut (impl AsyncRead + Unpin)) -> Result<Option<Frame>, WireError> {
        let mut len = [0u8; 4];
        match stream.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(WireError::TooLong(len));
        }
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await?;
        Frame::decode(&body).map(Some)
    }

    /// Writes one frame.
    pub async fn write(&self, stream: &mut (impl AsyncWrite + Unpin)) -> Result<(), WireError> {
        stream.write_all(&self.encode()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Call {
        let leaf = |s| Call { service: s, work_us: 7, children: vec![] };
        Call {
            service: 0,
            work_us: 1000,
            children: vec![leaf(1), Call { service: 2, work_us: 3, children: vec![leaf(3)] }],
        }
    }

    #[test]
    fn frames_round_trip() {
        for f in [
            Frame::Hello { token: [9; 16] },
            Frame::Call { id: 42, origin_ns: 123_456_789, call: tree() },
            Frame::Reply { id: u64::MAX },
        ] {
            let bytes = f.encode();
            assert_eq!(u32::from_le_bytes(bytes[..4].try_into().expect("4")) as usize, bytes.len() - 4);
            assert_eq!(Frame::decode(&bytes[4..]).expect("decodes"), f);
        }
        assert_eq!(tree().size(), 4);
    }

    #[test]
    fn damaged_frames_are_errors() {
        let bytes = Frame::Call { id: 1, origin_ns: 2, call: tree() }.encode();
        for cut in 5..bytes.len() {
            assert!(Frame::decode(&bytes[4..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes[4..].to_vec();
        extra.push(0);
        assert!(Frame::decode(&extra).is_err());
        assert!(Frame::decode(&[7]).is_err());
        // A chain 17 deep, and a fan-out claiming more calls than are sent.
        let mut deep = Call { service: 0, work_us: 0, children: vec![] };
        for _ in 0..17 {
            deep = Call { service: 0, work_us: 0, children: vec![deep] };
        }
        let bytes = Frame::Call { id: 1, origin_ns: 0, call: deep }.encode();
        assert!(matches!(Frame::decode(&bytes[4..]), Err(WireError::Malformed(_))));
        let mut body = vec![1];
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert!(Frame::decode(&body).is_err());
    }

    #[tokio::test]
    async fn long_frames_are_refused_before_reading() {
        let mut bytes = ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec();
        bytes.push(2);
        let mut stream = &bytes[..];
        assert!(matches!(Frame::read(&mut stream).await, Err(WireError::TooLong(_))));
        let mut empty: &[u8] = &[];
        assert!(Frame::read(&mut empty).await.expect("clean end").is_none());
    }
}
