//! Free TCP ports for test servers.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, OnceLock};

/// Ports are drawn from below Linux's default ephemeral range (32768-60999), so
/// that outgoing connections of other processes never take a port between the
/// moment we hand it out and the moment the server binds it. The range also
/// stays clear of the well-known Kubernetes ports (2379, 6443, 8080, 10250, ...)
/// and of the NodePort range (30000-32767).
const PORT_RANGE: std::ops::Range<u16> = 20000..30000;

/// Returns a TCP port that is free on every local address right now and that
/// this process has not handed out before.
///
/// nextest runs every test in its own process, so the process-wide memory alone
/// cannot prevent two tests from picking the same port; a random start in a
/// 10000-port range makes that unlikely, and the helpers that start servers
/// retry with new ports when a bind fails anyway.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    let mut handed_out = handed_out
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());

    let span = PORT_RANGE.end - PORT_RANGE.start;
    let start = (random_u64() % u64::from(span)) as u16;
    for offset in 0..span {
        let port = PORT_RANGE.start + (start + offset) % span;
        if !handed_out.contains(&port) && is_free(port) {
            handed_out.insert(port);
            return port;
        }
    }
    // Every port in the range is taken or handed out: fall back to the kernel.
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .unwrap_or_else(|err| panic!("cannot bind 127.0.0.1:0: {err}"));
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Binding the wildcard address fails when anything listens on the port on
/// any local address.
fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// A random number from std alone: `RandomState` is seeded from the OS.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        for port in ports {
            assert!(
                PORT_RANGE.contains(&port),
                "port {port} outside {PORT_RANGE:?}"
            );
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .unwrap_or_else(|err| panic!("port {port} not bindable: {err}"));
        }
    }

    #[test]
    fn a_listening_port_is_not_handed_out() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let taken = listener.local_addr().expect("addr").port();
        assert!(!is_free(taken));
        for _ in 0..100 {
            assert_ne!(free_port(), taken);
        }
    }
}
