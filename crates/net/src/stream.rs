//! `/weft/sync/1` streams carrying u32-BE length-prefixed frames.
//!
//! Guarantees, matching `weft_primitives::encoding` (DESIGN.md decision 4):
//! - a frame's payload is at most [`FRAME_BYTES_MAX`] bytes, on send and on
//!   receive;
//! - a length prefix above the limit is an error ([`NetError::FrameTooLarge`])
//!   and nothing is allocated for it; the payload buffer grows with the bytes
//!   that actually arrive, never with what the peer announces;
//! - a stream that ends inside a frame is [`NetError::TruncatedFrame`]; one
//!   that ends between frames is [`NetError::StreamClosed`];
//! - every `recv` completes a whole frame within the configured read timeout
//!   and every `send` within the write timeout, so a silent or slow peer
//!   cannot hold a task forever.
//!
//! After any error the stream is in an unknown position and must be dropped.

use std::time::Duration;

use libp2p::futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, Stream};
use weft_primitives::encoding::{DecodeError, FRAME_BYTES_MAX, split_frame};

use crate::NetError;

/// The first allocation for a payload; larger payloads grow as bytes arrive.
const RECV_BUFFER_INITIAL_MAX: usize = 64 * 1024;

/// Bytes of the length prefix.
const FRAME_HEADER_BYTES: usize = 4;

/// One `/weft/sync/1` stream to or from a peer, framed.
pub struct FramedStream {
    stream: Stream,
    peer: PeerId,
    read_timeout: Duration,
    write_timeout: Duration,
}

impl std::fmt::Debug for FramedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedStream").field("peer", &self.peer).finish_non_exhaustive()
    }
}

impl FramedStream {
    pub(crate) fn new(stream: Stream, peer: PeerId, read_timeout: Duration, write_timeout: Duration) -> FramedStream {
        FramedStream { stream, peer, read_timeout, write_timeout }
    }

    /// The peer at the other end.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Send one frame carrying `payload`.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), NetError> {
        if payload.len() > FRAME_BYTES_MAX {
            return Err(NetError::FrameTooLarge { len: payload.len(), max: FRAME_BYTES_MAX });
        }
        // The check above keeps the length within u32.
        let header = (payload.len() as u32).to_be_bytes();
        let write = async {
            // Header and payload are written separately so an 8 MiB payload
            // is not copied into a new buffer.
            self.stream.write_all(&header).await?;
            self.stream.write_all(payload).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(result) => result.map_err(|e| NetError::Io(e.to_string())),
            Err(_) => Err(NetError::Timeout { what: "stream write", after: self.write_timeout }),
        }
    }

    /// Receive one frame's payload.
    pub async fn recv(&mut self) -> Result<Vec<u8>, NetError> {
        match tokio::time::timeout(self.read_timeout, read_frame(&mut self.stream)).await {
            Ok(result) => result,
            Err(_) => Err(NetError::Timeout { what: "stream read", after: self.read_timeout }),
        }
    }

    /// Close the sending side (the peer's next `recv` sees
    /// [`NetError::StreamClosed`]) and drop the stream.
    pub async fn close(mut self) -> Result<(), NetError> {
        match tokio::time::timeout(self.write_timeout, self.stream.close()).await {
            Ok(result) => result.map_err(|e| NetError::Io(e.to_string())),
            Err(_) => Err(NetError::Timeout { what: "stream close", after: self.write_timeout }),
        }
    }

    /// The raw libp2p stream, for callers that frame differently.
    pub fn into_inner(self) -> Stream {
        self.stream
    }
}

/// Read one frame: the length prefix, checked against the limit before any
/// allocation, then exactly that many payload bytes.
async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R) -> Result<Vec<u8>, NetError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let mut filled = 0;
    while filled < FRAME_HEADER_BYTES {
        let n = reader.read(&mut header[filled..]).await.map_err(|e| NetError::Io(e.to_string()))?;
        if n == 0 {
            return Err(match filled {
                0 => NetError::StreamClosed,
                _ => NetError::TruncatedFrame { announced: 0, received: filled },
            });
        }
        filled += n;
    }
    // The shared frame rule decides whether the announced length is allowed.
    let len = match split_frame(&header, FRAME_BYTES_MAX) {
        Err(DecodeError::FrameTooLarge { len, max }) => return Err(NetError::FrameTooLarge { len, max }),
        Err(other) => return Err(NetError::Io(other.to_string())),
        Ok(Some((payload, _))) => payload.len(),
        Ok(None) => u32::from_be_bytes(header) as usize,
    };
    let mut payload = Vec::with_capacity(len.min(RECV_BUFFER_INITIAL_MAX));
    let received =
        (&mut *reader).take(len as u64).read_to_end(&mut payload).await.map_err(|e| NetError::Io(e.to_string()))?;
    if received < len {
        return Err(NetError::TruncatedFrame { announced: len, received });
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::futures::io::Cursor;
    use weft_primitives::encoding::encode_frame;

    #[tokio::test]
    async fn frames_are_read_back_in_order() {
        let mut bytes = encode_frame(b"one").unwrap();
        bytes.extend(encode_frame(b"").unwrap());
        bytes.extend(encode_frame(&[9u8; 70_000]).unwrap());
        let mut reader = Cursor::new(bytes);
        assert_eq!(read_frame(&mut reader).await.unwrap(), b"one");
        assert_eq!(read_frame(&mut reader).await.unwrap(), b"");
        assert_eq!(read_frame(&mut reader).await.unwrap(), vec![9u8; 70_000]);
        assert!(matches!(read_frame(&mut reader).await, Err(NetError::StreamClosed)));
    }

    #[tokio::test]
    async fn oversize_length_prefix_is_refused() {
        let mut reader = Cursor::new(vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let err = read_frame(&mut reader).await.unwrap_err();
        assert!(
            matches!(err, NetError::FrameTooLarge { len, max } if len == u32::MAX as usize && max == FRAME_BYTES_MAX)
        );
        let just_over = ((FRAME_BYTES_MAX + 1) as u32).to_be_bytes().to_vec();
        assert!(matches!(read_frame(&mut Cursor::new(just_over)).await, Err(NetError::FrameTooLarge { .. })));
    }

    #[tokio::test]
    async fn truncated_payload_and_truncated_prefix_are_errors() {
        let frame = encode_frame(b"hello").unwrap();
        let err = read_frame(&mut Cursor::new(frame[..6].to_vec())).await.unwrap_err();
        assert!(matches!(err, NetError::TruncatedFrame { announced: 5, received: 2 }), "{err}");
        let err = read_frame(&mut Cursor::new(vec![0, 0])).await.unwrap_err();
        assert!(matches!(err, NetError::TruncatedFrame { announced: 0, received: 2 }), "{err}");
    }
}
