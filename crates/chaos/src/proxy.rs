//! The fault proxy: a userspace TCP proxy in front of every daemon's swarm
//! port (`tc netem` and iptables are not available on the machines this
//! runs on).
//!
//! Each daemon listens on its own loopback port and *announces* its
//! proxy's port instead, so every connection another node makes to it
//! passes through [`FaultProxy`]. The proxy knows which node a connection
//! comes from by its source port: libp2p's TCP transport dials from its
//! listen port (port reuse), so a connection from node `j` arrives from
//! `127.0.0.1:<j's listen port>`. A connection from an unknown port (a
//! dial that could not reuse its port) is counted and only suffers the
//! faults that need no source: stalls of its destination, delays, drops.
//!
//! Faults ([`Faults`]), changed at any time through [`FaultProxy::set`]:
//! - **partition**: nodes in different groups cannot connect; existing
//!   connections between them are cut at once;
//! - **stall**: no byte moves to or from a stalled node (connections stay
//!   open, as with a hung peer or a full link);
//! - **delay**: every chunk waits this long before it is forwarded;
//! - **drop**: each chunk has this chance (per mille) of cutting its
//!   connection (TCP carries no loss: a flaky link shows as resets);
//! - **duplicate**: each accepted connection has this chance of a twin that
//!   replays its first bytes to the daemon (a duplicated connection attempt
//!   with the same Noise handshake).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes read at once from either side.
const CHUNK_BYTES_MAX: usize = 16 * 1024;
/// How often a stalled pump looks whether the stall ended.
const STALL_POLL: Duration = Duration::from_millis(50);
/// How long a duplicated connection is kept before it is dropped.
const DUPLICATE_HOLD: Duration = Duration::from_secs(5);

/// The faults in force (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Partition group of each node; nodes in different groups are cut
    /// apart. Empty: no partition.
    pub groups: Vec<u8>,
    /// Nodes whose traffic does not move.
    pub stalled: BTreeSet<usize>,
    /// Delay added to every chunk.
    pub delay_ms: u64,
    /// Chance per chunk (‰) that its connection is cut.
    pub drop_per_mille: u32,
    /// Chance per accepted connection (‰) of a duplicate.
    pub duplicate_per_mille: u32,
}

impl Faults {
    fn apart(&self, a: usize, b: usize) -> bool {
        match (self.groups.get(a), self.groups.get(b)) {
            (Some(x), Some(y)) => x != y,
            _ => false,
        }
    }
}

/// What the proxy did, for the summary.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections whose source node could not be told.
    pub unattributed: AtomicU64,
    /// Connections refused or cut by a partition.
    pub partitioned: AtomicU64,
    /// Connections cut by the drop fault.
    pub dropped: AtomicU64,
    /// Duplicate connections made.
    pub duplicated: AtomicU64,
    /// Bytes forwarded.
    pub bytes: AtomicU64,
}

struct Connection {
    from: Option<usize>,
    to: usize,
    cut: watch::Sender<bool>,
}

struct Shared {
    /// Each node's own listen port, to tell where a connection comes from.
    node_ports: Vec<u16>,
    faults: Mutex<Faults>,
    connections: Mutex<HashMap<u64, Connection>>,
    next_connection: AtomicU64,
    counters: ProxyCounters,
    seed: u64,
}

/// One proxy port per node, all sharing one fault state.
#[derive(Clone)]
pub struct FaultProxy {
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Proxies for nodes whose daemons listen on `node_ports`: one listener
    /// per node on a free loopback port. Returns the proxy and each node's
    /// proxy port (the one it must announce).
    pub async fn start(node_ports: Vec<u16>, seed: u64) -> std::io::Result<(FaultProxy, Vec<u16>)> {
        let shared = Arc::new(Shared {
            node_ports: node_ports.clone(),
            faults: Mutex::new(Faults::default()),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            counters: ProxyCounters::default(),
            seed,
        });
        let proxy = FaultProxy { shared };
        let mut proxy_ports = Vec::with_capacity(node_ports.len());
        for (to, port) in node_ports.iter().enumerate() {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            proxy_ports.push(listener.local_addr()?.port());
            tokio::spawn(proxy.clone().accept(listener, to, *port));
        }
        Ok((proxy, proxy_ports))
    }

    /// Put `faults` in force; connections a new partition separates are cut.
    pub fn set(&self, faults: Faults) {
        let mut cut = 0;
        {
            let connections = self.shared.connections.lock().unwrap_or_else(PoisonError::into_inner);
            for connection in connections.values() {
                if connection.from.is_some_and(|from| faults.apart(from, connection.to)) {
                    let _ = connection.cut.send(true);
                    cut += 1;
                }
            }
        }
        self.shared.counters.partitioned.fetch_add(cut, Ordering::Relaxed);
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The counters.
    pub fn counters(&self) -> &ProxyCounters {
        &self.shared.counters
    }

    async fn accept(self, listener: TcpListener, to: usize, upstream_port: u16) {
        loop {
            let Ok((client, source)) = listener.accept().await else { continue };
            let _ = client.set_nodelay(true);
            tokio::spawn(self.clone().serve(client, source, to, upstream_port));
        }
    }

    async fn serve(self, client: TcpStream, source: SocketAddr, to: usize, upstream_port: u16) {
        let counters = &self.shared.counters;
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let from = self.shared.node_ports.iter().position(|port| *port == source.port());
        if from.is_none() {
            counters.unattributed.fetch_add(1, Ordering::Relaxed);
        }
        let (duplicate, id) = {
            let faults = self.faults();
            if from.is_some_and(|from| faults.apart(from, to)) {
                counters.partitioned.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let id = self.shared.next_connection.fetch_add(1, Ordering::Relaxed);
            let mut rng = SmallRng::seed_from_u64(self.shared.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            (rng.random_range(0..1000) < faults.duplicate_per_mille, id)
        };
        let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else { return };
        let _ = upstream.set_nodelay(true);
        let (cut_tx, cut_rx) = watch::channel(false);
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Connection { from, to, cut: cut_tx.clone() });
        let (client_read, client_write) = client.into_split();
        let (upstream_read, upstream_write) = upstream.into_split();
        let replay = duplicate.then_some(upstream_port);
        let forward = self.clone().pump(client_read, upstream_write, from, to, id, cut_rx.clone(), replay);
        let backward = self.clone().pump(upstream_read, client_write, from, to, id ^ u64::MAX, cut_rx, None);
        tokio::join!(forward, backward);
        self.shared.connections.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// Move bytes one way until either side closes or the connection is cut.
    #[allow(clippy::too_many_arguments)]
    async fn pump(
        self,
        mut from_side: tokio::net::tcp::OwnedReadHalf,
        mut to_side: tokio::net::tcp::OwnedWriteHalf,
        from: Option<usize>,
        to: usize,
        stream_seed: u64,
        mut cut: watch::Receiver<bool>,
        mut replay_first_chunk_to: Option<u16>,
    ) {
        let mut rng = SmallRng::seed_from_u64(self.shared.seed ^ stream_seed);
        let mut buffer = vec![0u8; CHUNK_BYTES_MAX];
        loop {
            let read = tokio::select! {
                read = from_side.read(&mut buffer) => read,
                _ = cut.wait_for(|cut| *cut) => break,
            };
            let n = match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(port) = replay_first_chunk_to.take() {
                self.shared.counters.duplicated.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(replay(port, buffer[..n].to_vec()));
            }
            // Stalls hold the bytes; delay and drop apply to each chunk.
            loop {
                let faults = self.faults();
                let stalled = faults.stalled.contains(&to) || from.is_some_and(|f| faults.stalled.contains(&f));
                if !stalled {
                    if faults.delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
                    }
                    if rng.random_range(0..1000) < faults.drop_per_mille {
                        self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(STALL_POLL) => {}
                    _ = cut.wait_for(|cut| *cut) => return,
                }
            }
            if to_side.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            self.shared.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        let _ = to_side.shutdown().await;
    }
}

/// A duplicate connection: replay `first` to the daemon, read what it
/// answers, and drop it after a while.
async fn replay(port: u16, first: Vec<u8>) {
    let Ok(mut twin) = TcpStream::connect(("127.0.0.1", port)).await else { return };
    if twin.write_all(&first).await.is_err() {
        return;
    }
    let mut sink = vec![0u8; CHUNK_BYTES_MAX];
    let _ = tokio::time::timeout(DUPLICATE_HOLD, async {
        while let Ok(n) = twin.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server standing in for a daemon; returns its port.
    async fn echo() -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        port
    }

    /// A client bound to `port` (as a daemon dialing from its listen port).
    async fn dial_from(port: u16, to: u16) -> std::io::Result<TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        socket.connect(SocketAddr::from(([127, 0, 0, 1], to))).await
    }

    async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(bytes).await?;
        let mut back = vec![0u8; bytes.len()];
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut back))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        Ok(back)
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn bytes_pass_and_the_source_node_is_told_by_its_port() {
        let daemon = echo().await;
        let node_port = free_port();
        let (proxy, ports) = FaultProxy::start(vec![daemon, node_port], 1).await.unwrap();
        let mut client = dial_from(node_port, ports[0]).await.unwrap();
        assert_eq!(round_trip(&mut client, b"hello").await.unwrap(), b"hello");
        assert_eq!(proxy.counters().unattributed.load(Ordering::Relaxed), 0);
        assert_eq!(proxy.counters().bytes.load(Ordering::Relaxed), 10);
    }

    #[tokio::test]
    async fn a_partition_cuts_open_connections_and_refuses_new_ones_until_it_heals() {
        let daemon = echo().await;
        let node_port = free_port();
        let (proxy, ports) = FaultProxy::start(vec![daemon, node_port], 1).await.unwrap();
        let mut client = dial_from(node_port, ports[0]).await.unwrap();
        assert_eq!(round_trip(&mut client, b"before").await.unwrap(), b"before");

        proxy.set(Faults { groups: vec![0, 1], ..Faults::default() });
        assert!(round_trip(&mut client, b"during").await.is_err(), "the open connection is cut");
        drop(client);
        let mut refused = dial_from(node_port, ports[0]).await.unwrap();
        assert!(round_trip(&mut refused, b"new").await.is_err(), "a new one is refused");
        assert!(proxy.counters().partitioned.load(Ordering::Relaxed) >= 2);

        proxy.set(Faults::default());
        drop(refused);
        let mut healed = dial_from(node_port, ports[0]).await.unwrap();
        assert_eq!(round_trip(&mut healed, b"after").await.unwrap(), b"after");
    }

    #[tokio::test]
    async fn a_stall_holds_bytes_until_it_ends() {
        let daemon = echo().await;
        let (proxy, ports) = FaultProxy::start(vec![daemon], 1).await.unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", ports[0])).await.unwrap();
        assert_eq!(round_trip(&mut client, b"a").await.unwrap(), b"a");
        proxy.set(Faults { stalled: BTreeSet::from([0]), ..Faults::default() });
        client.write_all(b"held").await.unwrap();
        let mut back = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(300), client.read_exact(&mut back)).await;
        assert!(early.is_err(), "nothing arrives while stalled");
        proxy.set(Faults::default());
        tokio::time::timeout(Duration::from_secs(2), client.read_exact(&mut back)).await.unwrap().unwrap();
        assert_eq!(&back, b"held");
    }

    #[tokio::test]
    async fn drops_cut_connections() {
        let daemon = echo().await;
        let (proxy, ports) = FaultProxy::start(vec![daemon], 1).await.unwrap();
        proxy.set(Faults { drop_per_mille: 1000, ..Faults::default() });
        let mut client = TcpStream::connect(("127.0.0.1", ports[0])).await.unwrap();
        assert!(round_trip(&mut client, b"x").await.is_err());
        assert_eq!(proxy.counters().dropped.load(Ordering::Relaxed), 1);
    }
}
