//! Loopback ports for daemons that are killed and restarted on the same
//! ports.
//!
//! Port 0 is not good enough here. The kernel answers `bind(0)` from its
//! ephemeral range, the range it also takes the local port of every
//! outgoing connection from. Once such a port is released, any connection
//! the harness, the proxy or a daemon opens may take it, and the daemon
//! restarted on it then fails to bind and exits (a CI run died of this).
//! Ports below the ephemeral range are never given to outgoing
//! connections, so a port found free there stays free while nobody else
//! binds it explicitly.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Lowest port handed out (clear of the well-known and most registered
/// services).
const LOWEST: u32 = 10_000;
/// Linux's default ephemeral range, used when the kernel's cannot be read.
const DEFAULT_EPHEMERAL: (u32, u32) = (32_768, 60_999);

/// A loopback TCP port that is free now and outside the ephemeral range;
/// a port from the kernel (`bind(0)`) if the range leaves no room.
pub fn free_port() -> std::io::Result<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = ephemeral_range();
    // The free stretch: below the range, else above it.
    let (start, span) = match (low.saturating_sub(LOWEST), 65_535u32.saturating_sub(high)) {
        (below, _) if below >= 1_000 => (LOWEST, below),
        (_, above) if above >= 1_000 => (high + 1, above),
        _ => return any_port(),
    };
    // A per-process starting point, so two harnesses (or test binaries)
    // probing at once rarely try the same ports.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let offset = std::process::id().wrapping_mul(7_919).wrapping_add(nanos);
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = start + offset.wrapping_add(step.wrapping_mul(104_729)) % span;
        let Ok(port) = u16::try_from(port) else { continue };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    any_port()
}

fn any_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The kernel's ephemeral port range (Linux), else the default.
fn ephemeral_range() -> (u32, u32) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = text.split_whitespace().filter_map(|n| n.parse::<u32>().ok());
    match (bounds.next(), bounds.next()) {
        (Some(low), Some(high)) if low <= high && high <= 65_535 => (low, high),
        _ => DEFAULT_EPHEMERAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_distinct_and_outside_the_ephemeral_range() {
        let (low, high) = ephemeral_range();
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        for port in &ports {
            assert!(u32::from(*port) < low || u32::from(*port) > high, "{port} is in {low}..={high}");
            assert!(TcpListener::bind(("127.0.0.1", *port)).is_ok());
        }
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
    }
}
