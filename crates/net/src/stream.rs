//! `/weft/sync/1` streams carrying u32-BE length-prefixed frames.
//!
//! Guarantees, matching `weft_primitives::encoding` (docs/design.md decision 4):
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
//!
//! A [`FramedStream`] can be split into a [`FramedReader`] and a
//! [`FramedWriter`] that live on different tasks (a sync session is full
//! duplex: pages one way, acknowledgements the other). Both halves run the
//! same frame code as the whole stream, so every guarantee above holds for
//! each half. The underlying stream is closed for sending by
//! [`FramedWriter::close`] and released when both halves are dropped.

use std::time::Duration;

use libp2p::futures::io::{ReadHalf, WriteHalf};
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
        send_frame(&mut self.stream, payload, self.write_timeout).await
    }

    /// Receive one frame's payload.
    pub async fn recv(&mut self) -> Result<Vec<u8>, NetError> {
        recv_frame(&mut self.stream, self.read_timeout, FRAME_BYTES_MAX).await
    }

    /// Close the sending side (the peer's next `recv` sees
    /// [`NetError::StreamClosed`]) and drop the stream.
    pub async fn close(mut self) -> Result<(), NetError> {
        close_writer(&mut self.stream, self.write_timeout).await
    }

    /// Split into a receiving and a sending half, usable from two tasks at
    /// once, each keeping this stream's frame limit and timeouts.
    pub fn split(self) -> (FramedReader, FramedWriter) {
        let (read, write) = AsyncReadExt::split(self.stream);
        let reader = FramedReader { read, peer: self.peer, read_timeout: self.read_timeout };
        let writer = FramedWriter { write, peer: self.peer, write_timeout: self.write_timeout };
        (reader, writer)
    }

    /// The raw libp2p stream, for callers that frame differently.
    pub fn into_inner(self) -> Stream {
        self.stream
    }
}

/// The receiving half of a split [`FramedStream`].
pub struct FramedReader {
    read: ReadHalf<Stream>,
    peer: PeerId,
    read_timeout: Duration,
}

impl std::fmt::Debug for FramedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedReader").field("peer", &self.peer).finish_non_exhaustive()
    }
}

impl FramedReader {
    /// The peer at the other end.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Receive one frame's payload, as [`FramedStream::recv`].
    pub async fn recv(&mut self) -> Result<Vec<u8>, NetError> {
        recv_frame(&mut self.read, self.read_timeout, FRAME_BYTES_MAX).await
    }

    /// Receive one frame of at most `max` bytes (capped at
    /// [`FRAME_BYTES_MAX`]): for a first frame from a peer not yet
    /// authenticated, so a stranger's hello costs little. A larger announced
    /// length is [`NetError::FrameTooLarge`] before anything is allocated.
    pub async fn recv_at_most(&mut self, max: usize) -> Result<Vec<u8>, NetError> {
        recv_frame(&mut self.read, self.read_timeout, max.min(FRAME_BYTES_MAX)).await
    }
}

/// The sending half of a split [`FramedStream`].
pub struct FramedWriter {
    write: WriteHalf<Stream>,
    peer: PeerId,
    write_timeout: Duration,
}

impl std::fmt::Debug for FramedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedWriter").field("peer", &self.peer).finish_non_exhaustive()
    }
}

impl FramedWriter {
    /// The peer at the other end.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Send one frame carrying `payload`, as [`FramedStream::send`].
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), NetError> {
        send_frame(&mut self.write, payload, self.write_timeout).await
    }

    /// Close the sending side: the peer's next `recv` sees
    /// [`NetError::StreamClosed`]. The [`FramedReader`] keeps receiving
    /// until the peer closes its side.
    pub async fn close(mut self) -> Result<(), NetError> {
        close_writer(&mut self.write, self.write_timeout).await
    }
}

/// Write one frame within `timeout`: the length prefix, then the payload.
async fn send_frame<W: AsyncWrite + Unpin>(writer: &mut W, payload: &[u8], timeout: Duration) -> Result<(), NetError> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(NetError::FrameTooLarge { len: payload.len(), max: FRAME_BYTES_MAX });
    }
    // The check above keeps the length within u32.
    let header = (payload.len() as u32).to_be_bytes();
    let write = async {
        // Header and payload are written separately so an 8 MiB payload
        // is not copied into a new buffer.
        writer.write_all(&header).await?;
        writer.write_all(payload).await?;
        writer.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(result) => result.map_err(|e| NetError::Io(e.to_string())),
        Err(_) => Err(NetError::Timeout { what: "stream write", after: timeout }),
    }
}

/// Read one whole frame within `timeout`.
async fn recv_frame<R: AsyncRead + Unpin>(reader: &mut R, timeout: Duration, max: usize) -> Result<Vec<u8>, NetError> {
    match tokio::time::timeout(timeout, read_frame(reader, max)).await {
        Ok(result) => result,
        Err(_) => Err(NetError::Timeout { what: "stream read", after: timeout }),
    }
}

/// Close the sending side within `timeout`.
async fn close_writer<W: AsyncWrite + Unpin>(writer: &mut W, timeout: Duration) -> Result<(), NetError> {
    match tokio::time::timeout(timeout, writer.close()).await {
        Ok(result) => result.map_err(|e| NetError::Io(e.to_string())),
        Err(_) => Err(NetError::Timeout { what: "stream close", after: timeout }),
    }
}

/// The frames a peer that sends `bytes` and then closes the stream delivers
/// to [`FramedReader::recv_at_most`]`(max)`, in order, and the error that
/// ends them ([`NetError::StreamClosed`] right after a whole frame): the
/// stream decoder without a network, for `fuzz/fuzz_targets/frame.rs`.
#[doc(hidden)]
pub fn read_frames(bytes: &[u8], max: usize) -> (Vec<Vec<u8>>, NetError) {
    let mut reader = libp2p::futures::io::Cursor::new(bytes);
    let mut frames = Vec::new();
    loop {
        let read = std::pin::pin!(read_frame(&mut reader, max.min(FRAME_BYTES_MAX)));
        // Reading from memory never waits, so one poll finishes the frame.
        match read.poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(Ok(frame)) => frames.push(frame),
            std::task::Poll::Ready(Err(error)) => return (frames, error),
            std::task::Poll::Pending => return (frames, NetError::Io("an in-memory read waited".into())),
        }
    }
}

/// Read one frame: the length prefix, checked against `max` before any
/// allocation, then exactly that many payload bytes.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Vec<u8>, NetError> {
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
    let len = match split_frame(&header, max) {
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
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use weft_primitives::encoding::encode_frame;

    #[tokio::test]
    async fn frames_are_read_back_in_order() {
        let mut bytes = encode_frame(b"one").unwrap();
        bytes.extend(encode_frame(b"").unwrap());
        bytes.extend(encode_frame(&[9u8; 70_000]).unwrap());
        let mut reader = Cursor::new(bytes);
        assert_eq!(read_frame(&mut reader, FRAME_BYTES_MAX).await.unwrap(), b"one");
        assert_eq!(read_frame(&mut reader, FRAME_BYTES_MAX).await.unwrap(), b"");
        assert_eq!(read_frame(&mut reader, FRAME_BYTES_MAX).await.unwrap(), vec![9u8; 70_000]);
        assert!(matches!(read_frame(&mut reader, FRAME_BYTES_MAX).await, Err(NetError::StreamClosed)));
    }

    #[tokio::test]
    async fn oversize_length_prefix_is_refused() {
        let mut reader = Cursor::new(vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let err = read_frame(&mut reader, FRAME_BYTES_MAX).await.unwrap_err();
        assert!(
            matches!(err, NetError::FrameTooLarge { len, max } if len == u32::MAX as usize && max == FRAME_BYTES_MAX)
        );
        let just_over = ((FRAME_BYTES_MAX + 1) as u32).to_be_bytes().to_vec();
        assert!(matches!(
            read_frame(&mut Cursor::new(just_over), FRAME_BYTES_MAX).await,
            Err(NetError::FrameTooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn a_smaller_limit_refuses_a_larger_frame_before_reading_it() {
        let frame = encode_frame(&[1u8; 1000]).unwrap();
        let err = read_frame(&mut Cursor::new(frame.clone()), 999).await.unwrap_err();
        assert!(matches!(err, NetError::FrameTooLarge { len: 1000, max: 999 }), "{err:?}");
        assert_eq!(read_frame(&mut Cursor::new(frame), 1000).await.unwrap().len(), 1000);
    }

    /// A peer that never takes bytes (flow control never opens).
    struct NeverReady;

    impl AsyncWrite for NeverReady {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<std::io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn sent_frames_are_received_in_order() {
        let mut wire = Cursor::new(Vec::new());
        let timeout = Duration::from_secs(5);
        send_frame(&mut wire, b"one", timeout).await.unwrap();
        send_frame(&mut wire, b"", timeout).await.unwrap();
        wire.set_position(0);
        assert_eq!(recv_frame(&mut wire, timeout, FRAME_BYTES_MAX).await.unwrap(), b"one");
        assert_eq!(recv_frame(&mut wire, timeout, FRAME_BYTES_MAX).await.unwrap(), b"");
        assert!(matches!(recv_frame(&mut wire, timeout, FRAME_BYTES_MAX).await, Err(NetError::StreamClosed)));
    }

    #[tokio::test]
    async fn a_stuck_writer_times_out_the_send_and_the_close() {
        let after = Duration::from_millis(50);
        let err = send_frame(&mut NeverReady, b"x", after).await.unwrap_err();
        assert!(matches!(err, NetError::Timeout { what: "stream write", .. }), "{err}");
        let err = close_writer(&mut NeverReady, after).await.unwrap_err();
        assert!(matches!(err, NetError::Timeout { what: "stream close", .. }), "{err}");
    }

    #[test]
    fn read_frames_reads_what_a_peer_sent_then_how_it_ended() {
        let mut bytes = encode_frame(b"one").unwrap();
        bytes.extend(encode_frame(b"").unwrap());
        let (frames, end) = read_frames(&bytes, 16);
        assert_eq!(frames, [b"one".to_vec(), Vec::new()]);
        assert!(matches!(end, NetError::StreamClosed), "{end}");
        let (frames, end) = read_frames(&bytes[..5], 16);
        assert!(frames.is_empty());
        assert!(matches!(end, NetError::TruncatedFrame { announced: 3, received: 1 }), "{end}");
        let (_, end) = read_frames(&bytes, 2);
        assert!(matches!(end, NetError::FrameTooLarge { len: 3, max: 2 }), "{end}");
    }

    #[tokio::test]
    async fn truncated_payload_and_truncated_prefix_are_errors() {
        let frame = encode_frame(b"hello").unwrap();
        let err = read_frame(&mut Cursor::new(frame[..6].to_vec()), FRAME_BYTES_MAX).await.unwrap_err();
        assert!(matches!(err, NetError::TruncatedFrame { announced: 5, received: 2 }), "{err}");
        let err = read_frame(&mut Cursor::new(vec![0, 0]), FRAME_BYTES_MAX).await.unwrap_err();
        assert!(matches!(err, NetError::TruncatedFrame { announced: 0, received: 2 }), "{err}");
    }
}
