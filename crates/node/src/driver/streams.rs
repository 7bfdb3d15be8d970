//! Stream tasks: each `/weft/sync/1` stream is served by its own tasks, so a
//! slow peer never blocks the driver.
//!
//! A session stream has a reader (frames → [`Internal::Frame`], then one
//! [`Internal::Closed`] when the stream ends for any reason) and a writer
//! (drains a bounded outbox the driver fills with `try_send`; a full outbox
//! ends the session instead of blocking the driver). Inbound streams first
//! say what they are with a [`StreamHello`]: a session of a context, a join
//! request or a directory request, each of the last two answered with one
//! frame and closed.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::debug;
use weft_membership::{JoinBinding, JoinProof};
use weft_net::{FramedReader, FramedWriter, IncomingStreams, NetHandle, PeerId as NetPeer};
use weft_sync::{PeerId as SyncPeer, SessionId};

use crate::command::{Internal, JoinRequest, Outbound};
use crate::events::Counters;
use crate::wire::{DirectoryReply, JoinChallenge, JoinHello, JoinReply, NODE_WIRE_VERSION, StreamHello};

/// Frames waiting for one stream's writer (a burst of pages plus control).
pub(crate) const SESSION_OUTBOX_MAX: usize = 64;

/// Inbound streams served at once (sessions, joins, directory asks).
pub(crate) const INBOUND_STREAMS_MAX: usize = 256;

/// The largest first frame read from a stream whose peer has proven
/// nothing yet (a hello, a join request with its invitation, an accept).
pub(crate) const HELLO_BYTES_MAX: usize = 16 * 1024;

/// The largest join proof frame read (a key and a signature: 96 bytes).
pub(crate) const JOIN_PROOF_BYTES_MAX: usize = 256;

/// Bytes of a frame's length prefix, counted in the wire figures.
const FRAME_PREFIX_BYTES: u64 = 4;

/// What an opened session's writer waits for before it sends anything
/// but the hello: the driver's word that the responder proved membership.
pub(crate) type Proven = oneshot::Receiver<()>;

/// Open a session stream we start and say hello. The responder's first
/// frame (its `SyncAccept`) goes to the driver, and our frames wait until
/// the driver found it good (`proven`): nothing of the context reaches a
/// node that cannot prove it speaks for a member.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open_session(
    net: NetHandle,
    peer: NetPeer,
    session: SessionId,
    hello: StreamHello,
    frames: mpsc::Receiver<Outbound>,
    proven: Proven,
    internal: mpsc::Sender<Internal>,
    counters: Arc<Counters>,
) {
    let stream = match net.open_stream(peer).await {
        Ok(stream) => stream,
        Err(error) => {
            debug!(%peer, %error, "opening a sync stream failed");
            let _ = internal.send(Internal::Closed { peer, session }).await;
            return;
        }
    };
    let (mut reader, mut writer) = stream.split();
    let hello = hello.encode();
    if writer.send(&hello).await.is_err() {
        let _ = internal.send(Internal::Closed { peer, session }).await;
        return;
    }
    count_sent(&counters, hello.len());
    let accept = match reader.recv_at_most(HELLO_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            debug!(%peer, %error, "the responder sent no accept");
            let _ = internal.send(Internal::Closed { peer, session }).await;
            return;
        }
    };
    count_received(&counters, accept.len());
    if internal.send(Internal::SessionAccept { peer, session, bytes: accept }).await.is_err() {
        return;
    }
    let writer_counters = counters.clone();
    tokio::spawn(async move {
        // Dropped unproven: the stream closes having carried only the hello.
        if proven.await.is_ok() {
            write_frames(writer, frames, writer_counters).await;
        } else {
            let _ = writer.close().await;
        }
    });
    read_frames(reader, peer, session, &internal, &counters).await;
    let _ = internal.send(Internal::Closed { peer, session }).await;
}

/// Accept inbound streams until the network stops, serving at most
/// [`INBOUND_STREAMS_MAX`] at once. Beyond that, streams wait in the
/// network's queue for a slot (and only a full queue resets them): a
/// reconnect's burst of sessions is served late rather than refused and
/// retried after a back-off.
pub(crate) async fn accept_streams(
    mut incoming: IncomingStreams,
    internal: mpsc::Sender<Internal>,
    counters: Arc<Counters>,
) {
    let slots = Arc::new(Semaphore::new(INBOUND_STREAMS_MAX));
    while let Some(stream) = incoming.next().await {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let internal = internal.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            serve_inbound(stream, internal, counters).await;
            drop(slot);
        });
    }
}

async fn serve_inbound(stream: weft_net::FramedStream, internal: mpsc::Sender<Internal>, counters: Arc<Counters>) {
    let peer = stream.peer();
    let (mut reader, mut writer) = stream.split();
    // Nobody is authenticated yet: the first frame is a hello, and small.
    let Ok(first) = reader.recv_at_most(HELLO_BYTES_MAX).await else { return };
    count_received(&counters, first.len());
    match StreamHello::decode(&first) {
        Ok(StreamHello::Sync { version, context, n, member, signature }) => {
            let Some(opener) = weft_net::peer_public_key(&peer).map(|key| SyncPeer(key.0)) else { return };
            if version != NODE_WIRE_VERSION {
                debug!(%peer, version, "sync stream of an unknown wire version: closed");
                return;
            }
            let session = SessionId { opener, n };
            let (outbox, frames) = mpsc::channel(SESSION_OUTBOX_MAX);
            let (verdict, served) = oneshot::channel();
            let report = Internal::InboundSession { context, peer, session, member, signature, outbox, verdict };
            if internal.send(report).await.is_err() {
                return;
            }
            // Nothing more is read from a stream whose hello was refused.
            if served.await != Ok(true) {
                return;
            }
            serve_session(reader, writer, peer, session, frames, internal, counters).await;
        }
        Ok(StreamHello::Join(hello)) => {
            let Some(answer) = answer_join(&mut reader, &mut writer, peer, *hello, &internal, &counters).await else {
                return;
            };
            let answer = answer.encode();
            if writer.send(&answer).await.is_ok() {
                count_sent(&counters, answer.len());
            }
            let _ = writer.close().await;
        }
        Ok(StreamHello::Directory { version, context, n, member, signature }) => {
            if version != NODE_WIRE_VERSION {
                debug!(%peer, version, "directory request of an unknown wire version: closed");
                return;
            }
            let (reply, answer) = oneshot::channel();
            let request = Internal::DirectoryRequest { peer, context, n, member, signature, reply };
            if internal.send(request).await.is_err() {
                return;
            }
            let Ok(directory) = answer.await else { return };
            let directory = directory.encode();
            if writer.send(&directory).await.is_ok() {
                count_sent(&counters, directory.len());
            }
            let _ = writer.close().await;
        }
        Err(error) => debug!(%peer, %error, "malformed stream hello: closed"),
    }
}

/// The inviter's side of a join exchange after the joiner's hello: send a
/// fresh challenge, read the joiner's proof (small, one frame), and let the
/// driver decide. `None`: the joiner went away or sent garbage, and gets
/// nothing more.
async fn answer_join(
    reader: &mut FramedReader,
    writer: &mut FramedWriter,
    peer: NetPeer,
    hello: JoinHello,
    internal: &mpsc::Sender<Internal>,
    counters: &Counters,
) -> Option<JoinReply> {
    if hello.version != NODE_WIRE_VERSION {
        return Some(JoinReply::Refused { reason: format!("join wire version {} unsupported", hello.version) });
    }
    let joiner_node = weft_net::peer_public_key(&peer)?.0;
    let mut challenge = [0u8; 32];
    if getrandom::fill(&mut challenge).is_err() {
        return Some(JoinReply::Refused { reason: "the inviter's node has no randomness".into() });
    }
    let frame = JoinChallenge { challenge }.encode();
    writer.send(&frame).await.ok()?;
    count_sent(counters, frame.len());
    let proof = reader.recv_at_most(JOIN_PROOF_BYTES_MAX).await.ok()?;
    count_received(counters, proof.len());
    let Ok(proof) = JoinProof::decode(&proof) else {
        debug!(%peer, "malformed join proof: closed");
        return None;
    };
    // The inviter's node named in the invitation: the driver refuses the
    // exchange unless that is us.
    let binding = JoinBinding { challenge, joiner_node, inviter_node: hello.invitation.inviter_node };
    let request = Box::new(JoinRequest { invitation: hello.invitation, proof, binding });
    let (reply, answer) = oneshot::channel();
    let stopping = || JoinReply::Refused { reason: "the node is stopping".into() };
    Some(match internal.send(Internal::JoinRequest { peer, request, reply }).await {
        Ok(()) => answer.await.unwrap_or_else(|_| stopping()),
        Err(_) => stopping(),
    })
}

/// Ask `peer` for its directory of `context` (our request numbered `n`)
/// and report the answer.
pub(crate) async fn request_directory(
    net: NetHandle,
    peer: NetPeer,
    context: weft_primitives::Hash,
    n: u64,
    hello: StreamHello,
    internal: mpsc::Sender<Internal>,
    counters: Arc<Counters>,
) {
    let answer = match exchange_directory(&net, peer, hello, &counters).await {
        Ok(answer) => answer,
        Err(error) => {
            debug!(%peer, %error, "no directory answer");
            let _ = internal.send(Internal::DirectoryFailed { peer, context }).await;
            return;
        }
    };
    match DirectoryReply::decode(&answer) {
        Ok(reply) => {
            Counters::bump(&counters.directories_received, 1);
            let _ = internal.send(Internal::Directory { peer, context, n, reply }).await;
        }
        Err(error) => debug!(%peer, %error, "malformed directory answer"),
    }
}

/// Send a directory hello to `peer` and read its one answer.
async fn exchange_directory(
    net: &NetHandle,
    peer: NetPeer,
    hello: StreamHello,
    counters: &Counters,
) -> Result<Vec<u8>, String> {
    let mut stream = net.open_stream(peer).await.map_err(|error| format!("opening the stream: {error}"))?;
    let hello = hello.encode();
    stream.send(&hello).await.map_err(|error| format!("sending the hello: {error}"))?;
    count_sent(counters, hello.len());
    let answer = stream.recv().await.map_err(|error| format!("reading the answer: {error}"))?;
    count_received(counters, answer.len());
    let _ = stream.close().await;
    Ok(answer)
}

async fn serve_session(
    reader: FramedReader,
    writer: FramedWriter,
    peer: NetPeer,
    session: SessionId,
    frames: mpsc::Receiver<Outbound>,
    internal: mpsc::Sender<Internal>,
    counters: Arc<Counters>,
) {
    // The writer lives until the driver drops or closes the outbox.
    tokio::spawn(write_frames(writer, frames, counters.clone()));
    read_frames(reader, peer, session, &internal, &counters).await;
    let _ = internal.send(Internal::Closed { peer, session }).await;
}

async fn read_frames(
    mut reader: FramedReader,
    peer: NetPeer,
    session: SessionId,
    internal: &mpsc::Sender<Internal>,
    counters: &Counters,
) {
    loop {
        match reader.recv().await {
            Ok(bytes) => {
                count_received(counters, bytes.len());
                if internal.send(Internal::Frame { peer, session, bytes }).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                debug!(%peer, ?session, %error, "sync stream ended");
                return;
            }
        }
    }
}

async fn write_frames(mut writer: FramedWriter, mut frames: mpsc::Receiver<Outbound>, counters: Arc<Counters>) {
    while let Some(outbound) = frames.recv().await {
        match outbound {
            Outbound::Frame(bytes) => {
                if writer.send(&bytes).await.is_err() {
                    return;
                }
                count_sent(&counters, bytes.len());
            }
            Outbound::Close => break,
        }
    }
    let _ = writer.close().await;
}

fn count_sent(counters: &Counters, len: usize) {
    Counters::bump(&counters.sync_frames_sent, 1);
    Counters::bump(&counters.sync_bytes_sent, len as u64 + FRAME_PREFIX_BYTES);
}

fn count_received(counters: &Counters, len: usize) {
    Counters::bump(&counters.sync_frames_received, 1);
    Counters::bump(&counters.sync_bytes_received, len as u64 + FRAME_PREFIX_BYTES);
}
