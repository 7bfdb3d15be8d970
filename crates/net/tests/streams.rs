//! `/weft/sync/1` framed streams over real loopback sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Transport, config, node, start};
use libp2p::futures::AsyncWriteExt;
use weft_net::{NetError, NetEvent};
use weft_primitives::encoding::FRAME_BYTES_MAX;

async fn frames_round_trip(transport: Transport) {
    let a = node(1, transport).await;
    let b = node(2, transport).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let mut incoming = b.net.incoming_streams().unwrap();
    assert!(matches!(b.net.incoming_streams(), Err(NetError::IncomingStreamsTaken)));

    let echo = tokio::spawn(async move {
        let mut stream = incoming.next().await.expect("an inbound stream");
        let mut echoed = 0;
        loop {
            match stream.recv().await {
                Ok(frame) => {
                    stream.send(&frame).await.expect("echo");
                    echoed += 1;
                }
                Err(NetError::StreamClosed) => return (stream.peer(), echoed),
                Err(other) => panic!("echo side: {other}"),
            }
        }
    });

    let mut stream = a.net.open_stream(b.peer()).await.expect("open");
    assert_eq!(stream.peer(), b.peer());
    let largest: Vec<u8> = (0..FRAME_BYTES_MAX - 1).map(|i| (i % 251) as u8).collect();
    let frames: Vec<Vec<u8>> = vec![b"hello".to_vec(), Vec::new(), largest, b"bye".to_vec()];
    for frame in &frames {
        stream.send(frame).await.unwrap();
        assert_eq!(&stream.recv().await.unwrap(), frame);
    }
    stream.close().await.unwrap();
    let (seen_peer, echoed) = echo.await.unwrap();
    assert_eq!((seen_peer, echoed), (a.peer(), frames.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_round_trip_over_tcp_up_to_the_limit() {
    frames_round_trip(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_round_trip_over_quic_up_to_the_limit() {
    frames_round_trip(Transport::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_more_than_the_limit_is_refused() {
    let a = node(3, Transport::Tcp).await;
    let b = node(4, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let _incoming = b.net.incoming_streams().unwrap();
    let mut stream = a.net.open_stream(b.peer()).await.unwrap();
    let err = stream.send(&vec![0; FRAME_BYTES_MAX + 1]).await.unwrap_err();
    assert!(matches!(err, NetError::FrameTooLarge { .. }), "{err}");
}

/// Send `bytes` raw on a fresh stream from a to b, close, and return what
/// b's framed `recv` makes of them.
async fn receive_raw(transport: Transport, seeds: (u8, u8), bytes: Vec<u8>) -> Result<Vec<u8>, NetError> {
    let a = node(seeds.0, transport).await;
    let b = node(seeds.1, transport).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let mut incoming = b.net.incoming_streams().unwrap();
    // What a broken peer would send: raw bytes on the unframed stream.
    let mut raw = a.net.open_stream(b.peer()).await.unwrap().into_inner();
    raw.write_all(&bytes).await.unwrap();
    raw.close().await.unwrap();
    let mut stream = incoming.next().await.unwrap();
    stream.recv().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_length_prefix_is_an_error() {
    let mut bytes = ((FRAME_BYTES_MAX + 1) as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[7; 16]);
    let err = receive_raw(Transport::Tcp, (5, 6), bytes).await.unwrap_err();
    assert!(matches!(err, NetError::FrameTooLarge { len, .. } if len == FRAME_BYTES_MAX + 1), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frame_is_an_error() {
    let mut bytes = 100u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[7; 10]);
    let err = receive_raw(Transport::Quic, (7, 8), bytes).await.unwrap_err();
    assert!(matches!(err, NetError::TruncatedFrame { announced: 100, received: 10 }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_times_out_the_read() {
    let a = node(9, Transport::Tcp).await;
    let mut b_config = config(10, Transport::Tcp);
    b_config.stream_read_timeout = Duration::from_millis(200);
    let b = start(b_config, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let mut incoming = b.net.incoming_streams().unwrap();
    let mut opened = a.net.open_stream(b.peer()).await.unwrap();
    // One empty frame, then silence with the stream left open.
    opened.send(&[]).await.unwrap();
    let mut stream = incoming.next().await.unwrap();
    assert_eq!(stream.recv().await.unwrap(), b"");
    let err = stream.recv().await.unwrap_err();
    assert!(matches!(err, NetError::Timeout { what: "stream read", .. }), "{err}");
    drop(opened);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_stream_to_an_unknown_peer_fails() {
    let a = node(11, Transport::Tcp).await;
    let stranger = weft_net::peer_id_from_seed(&[200; 32]).unwrap();
    assert!(a.net.open_stream(stranger).await.is_err());
}

/// Inbound streams nobody accepts queue up to the bound; the rest are
/// refused (and counted when the refusal happens at that queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_incoming_queue_refuses_and_counts() {
    let a = node(12, Transport::Tcp).await;
    let b = node(13, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let opened = weft_net::INCOMING_STREAMS_MAX + 32;
    let mut open = Vec::new();
    for _ in 0..opened {
        let mut stream = a.net.open_stream(b.peer()).await.unwrap();
        // A first frame makes sure the stream reaches the other side; a
        // refused stream may already be reset, so the send may fail.
        let _ = stream.send(b"x").await;
        open.push(stream);
    }
    common::eventually("b refuses some of the overflow", || async { b.net.stats().incoming_streams_dropped > 0 }).await;
    let mut incoming = b.net.incoming_streams().unwrap();
    let mut waiting = Vec::new();
    while let Some(stream) = incoming.try_next() {
        waiting.push(stream);
    }
    assert!(waiting.len() <= weft_net::INCOMING_STREAMS_MAX, "{} streams waited", waiting.len());
    assert!(waiting.len() as u64 + b.net.stats().incoming_streams_dropped <= opened as u64);
    assert_eq!(waiting[0].recv().await.unwrap(), b"x");
}

/// A peer opening as many streams at once as it may (a reconnect that
/// asks for many contexts' directories) has every one of them accepted:
/// none is reset on arrival while the node has not yet taken the previous
/// one out. Each stream carries one frame there and one back, and the node
/// takes none out until every stream's frame was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_streams_opened_at_once_is_accepted_whole() {
    let a = node(14, Transport::Tcp).await;
    let b = node(15, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let burst = weft_net::STREAM_OPENS_IN_FLIGHT_MAX;
    let opens = (0..burst).map(|i| {
        let net = a.net.clone();
        let to = b.peer();
        async move {
            let mut stream = net.open_stream(to).await?;
            stream.send(&[i as u8]).await?;
            Ok::<_, NetError>(stream)
        }
    });
    let opened: Vec<_> = libp2p::futures::future::join_all(opens).await;
    let mut incoming = b.net.incoming_streams().unwrap();
    let echo = tokio::spawn(async move {
        let mut served = 0;
        while served < burst {
            let Some(mut stream) = incoming.next().await else { break };
            let Ok(frame) = stream.recv().await else { continue };
            if stream.send(&frame).await.is_ok() {
                served += 1;
            }
        }
        served
    });
    let mut answered = 0;
    for (i, stream) in opened.into_iter().enumerate() {
        let Ok(mut stream) = stream else { continue };
        if let Ok(Ok(frame)) = tokio::time::timeout(Duration::from_secs(10), stream.recv()).await {
            assert_eq!(frame, [i as u8], "each stream answers its own frame");
            answered += 1;
        }
    }
    assert_eq!(b.net.stats().incoming_streams_dropped, 0);
    assert_eq!(answered, burst, "streams answered out of a burst of {burst}");
    assert_eq!(echo.await.unwrap(), burst);
}

/// Receive frames on `reader` until the peer closes its side; anything but
/// a clean close between frames fails the test.
async fn receive_until_closed(mut reader: weft_net::FramedReader) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    loop {
        match reader.recv().await {
            Ok(frame) => frames.push(frame),
            Err(NetError::StreamClosed) => return frames,
            Err(other) => panic!("reader of {}: {other}", reader.peer()),
        }
    }
}

/// Send every frame on `writer`, then close it.
async fn send_then_close(mut writer: weft_net::FramedWriter, frames: Vec<Vec<u8>>) {
    for frame in &frames {
        writer.send(frame).await.expect("send on a split writer");
    }
    writer.close().await.expect("close a split writer");
}

/// Both ends split their stream and send and receive at once, each half on
/// its own task. Each direction carries far more than the transport's
/// flow-control window, so each writer repeatedly waits for the other
/// side's reader while its own reader keeps going. The side that finishes
/// sending first closes its writer while its reader keeps receiving (half
/// close), and each reader ends with `StreamClosed` once the other side's
/// writer closes, after every frame arrived in order.
async fn split_halves_send_and_receive_concurrently(transport: Transport, seeds: (u8, u8)) {
    let a = node(seeds.0, transport).await;
    let b = node(seeds.1, transport).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let mut incoming = b.net.incoming_streams().unwrap();

    // 16 MiB each way: a in few large frames, b in many smaller ones.
    let a_frames: Vec<Vec<u8>> = (0..16u8).map(|i| vec![i; 1024 * 1024]).collect();
    let b_frames: Vec<Vec<u8>> = (0..256u32).map(|i| i.to_be_bytes().repeat(16 * 1024 + i as usize)).collect();

    let (a_reader, a_writer) = a.net.open_stream(b.peer()).await.unwrap().split();
    // The stream reaches b with its first frame, sent by a's writer task.
    let a_sends = tokio::spawn(send_then_close(a_writer, a_frames.clone()));
    let a_receives = tokio::spawn(receive_until_closed(a_reader));

    let (b_reader, b_writer) = incoming.next().await.expect("an inbound stream").split();
    assert_eq!((b_reader.peer(), b_writer.peer()), (a.peer(), a.peer()));
    let b_sends = tokio::spawn(send_then_close(b_writer, b_frames.clone()));
    let b_receives = tokio::spawn(receive_until_closed(b_reader));

    a_sends.await.unwrap();
    b_sends.await.unwrap();
    assert!(b_receives.await.unwrap() == a_frames, "b received a's frames in order");
    assert!(a_receives.await.unwrap() == b_frames, "a received b's frames in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_send_and_receive_concurrently_over_tcp() {
    split_halves_send_and_receive_concurrently(Transport::Tcp, (21, 22)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_send_and_receive_concurrently_over_quic() {
    split_halves_send_and_receive_concurrently(Transport::Quic, (23, 24)).await;
}

/// The halves keep the whole stream's rules: the frame limit on send, the
/// read timeout per frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_keep_the_frame_limit_and_the_read_timeout() {
    let a = node(25, Transport::Tcp).await;
    let mut b_config = config(26, Transport::Tcp);
    b_config.stream_read_timeout = Duration::from_millis(200);
    let b = start(b_config, Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let mut incoming = b.net.incoming_streams().unwrap();
    let (_a_reader, mut a_writer) = a.net.open_stream(b.peer()).await.unwrap().split();
    let err = a_writer.send(&vec![0; FRAME_BYTES_MAX + 1]).await.unwrap_err();
    assert!(matches!(err, NetError::FrameTooLarge { .. }), "{err}");
    a_writer.send(b"only").await.unwrap();
    let (mut b_reader, _b_writer) = incoming.next().await.unwrap().split();
    assert_eq!(b_reader.recv().await.unwrap(), b"only");
    let err = b_reader.recv().await.unwrap_err();
    assert!(matches!(err, NetError::Timeout { what: "stream read", .. }), "{err}");
}

/// Disconnecting a peer closes its connections: both sides see it gone, an
/// open stream fails at once rather than waiting for its timeout, and a
/// second disconnect reports the peer was not connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_a_peer_closes_its_connections_and_streams() {
    // No Kademlia: nothing redials the peer behind the test's back.
    let quiet = |seed| {
        let mut c = config(seed, Transport::Tcp);
        c.kademlia = false;
        c.stream_read_timeout = common::LIVENESS * 2;
        c
    };
    let mut a = start(quiet(27), Transport::Tcp).await;
    let mut b = start(quiet(28), Transport::Tcp).await;
    a.net.dial(b.addr.clone()).await.unwrap();
    let mut incoming = b.net.incoming_streams().unwrap();
    let mut opened = a.net.open_stream(b.peer()).await.unwrap();
    opened.send(b"before").await.unwrap();
    let mut accepted = incoming.next().await.unwrap();
    assert_eq!(accepted.recv().await.unwrap(), b"before");

    let (a_peer, b_peer) = (a.peer(), b.peer());
    assert!(a.net.disconnect(b_peer).await.unwrap(), "b was connected");
    a.wait_for("a loses b", |e| matches!(e, NetEvent::PeerDisconnected { peer } if *peer == b_peer).then_some(()))
        .await;
    b.wait_for("b loses a", |e| matches!(e, NetEvent::PeerDisconnected { peer } if *peer == a_peer).then_some(()))
        .await;
    assert!(a.net.peers().await.unwrap().is_empty());
    assert!(b.net.peers().await.unwrap().is_empty());

    // Read timeouts are longer than the liveness bound: an error within it
    // comes from the closed connection, not from a timeout.
    let read = tokio::time::timeout(common::LIVENESS, accepted.recv()).await.expect("b's read ends");
    assert!(read.is_err() && !matches!(read, Err(NetError::Timeout { .. })), "{read:?}");
    let read = tokio::time::timeout(common::LIVENESS, opened.recv()).await.expect("a's read ends");
    assert!(read.is_err() && !matches!(read, Err(NetError::Timeout { .. })), "{read:?}");

    assert!(!a.net.disconnect(b_peer).await.unwrap(), "b is no longer connected");
}
