//! Accepting inbound `/weft/sync/1` streams into a queue that holds a burst.
//!
//! `libp2p-stream` hands each accepted stream over through a channel with
//! one slot per protocol and drops the stream that finds the slot taken. A
//! node that reconnects to a peer it shares a thousand contexts with opens
//! dozens of streams at once (directory requests, then a session per
//! context), and most of them were reset on arrival: the opener waited out
//! a retry delay and tried again, so a catch-up ran about three sessions per
//! context. This behaviour answers only the inbound side of the protocol
//! (outbound streams still go through `libp2p-stream`'s control, which no
//! longer registers the protocol) and puts every negotiated stream straight
//! into the node's bounded queue of [`crate::INCOMING_STREAMS_MAX`].
//!
//! Guarantees: a stream is dropped (reset, so its opener learns at once)
//! only when that queue is full or the node stopped reading it, and each
//! drop is counted in [`crate::NetStats::incoming_streams_dropped`]. The
//! behaviour emits no events and never keeps a connection alive by itself.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{DeniedUpgrade, ReadyUpgrade};
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
    SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::mpsc;

use crate::handle::{Counters, StreamTimeouts};
use crate::{FramedStream, SYNC_PROTOCOL};

/// Where accepted streams go, shared by every connection's handler.
#[derive(Clone)]
pub(crate) struct StreamInbox {
    pub(crate) queue: mpsc::Sender<FramedStream>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) timeouts: StreamTimeouts,
}

impl StreamInbox {
    /// Queue `stream`, or drop (reset) it and count the drop.
    fn deliver(&self, peer: PeerId, stream: libp2p::Stream) {
        let framed = FramedStream::new(stream, peer, self.timeouts.read, self.timeouts.write);
        if self.queue.try_send(framed).is_err() {
            self.counters.incoming_streams_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The inbound half of `/weft/sync/1`.
pub(crate) struct SyncInbound {
    inbox: StreamInbox,
}

impl SyncInbound {
    pub(crate) fn new(inbox: StreamInbox) -> SyncInbound {
        SyncInbound { inbox }
    }

    fn handler(&self, peer: PeerId) -> SyncInboundHandler {
        SyncInboundHandler { peer, inbox: self.inbox.clone() }
    }
}

impl NetworkBehaviour for SyncInbound {
    type ConnectionHandler = SyncInboundHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _connection: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn on_swarm_event(&mut self, _event: FromSwarm) {}

    fn on_connection_handler_event(&mut self, _peer: PeerId, _connection: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// One connection's side of [`SyncInbound`]: offers the protocol to the
/// remote and delivers what it negotiates.
pub(crate) struct SyncInboundHandler {
    peer: PeerId,
    inbox: StreamInbox,
}

impl ConnectionHandler for SyncInboundHandler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(StreamProtocol::new(SYNC_PROTOCOL)), ())
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        match event {}
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>) {
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol: stream, .. }) = event {
            self.inbox.deliver(self.peer, stream);
        }
    }
}
