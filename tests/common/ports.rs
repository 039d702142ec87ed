//! Loopback ports for servers the tests start themselves.
//!
//! A port from `bind(127.0.0.1:0)` lies in the kernel's ephemeral range, the range every
//! outgoing connection (the agent's, Kafka's, the test's own clients) also draws from. Between
//! the probe and the server's own `bind` one of those connections can take it; a CI run saw
//! exactly that ("Bind on TCP/IP port … Address already in use"). So ports come from below the
//! ephemeral range, where only listeners live, chosen at random so that tests running at the
//! same time rarely pick the same one; the scratch servers also retry on a lost race.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Lowest port handed out.
const FIRST: u16 = 20_000;
/// One past the highest: stays under Linux's default `ip_local_port_range` (32768–60999).
const END: u16 = 32_000;

/// A loopback port outside the ephemeral range that nothing listens on right now.
pub fn free_port() -> u16 {
    let end = ephemeral_start().clamp(FIRST + 1_000, END);
    loop {
        // RandomState is seeded afresh per instance: a cheap random number without a crate.
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let port = FIRST + (h.finish() % u64::from(end - FIRST)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The first port of the ephemeral range (where free ports must not come from).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Whether a server's log says it lost the race for its port.
pub fn lost_port_race(log: &str) -> bool {
    log.contains("Address already in use")
}
