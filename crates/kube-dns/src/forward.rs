//! Forwarding to upstream resolvers over UDP or TCP (the protocol the client
//! used, as CoreDNS's `forward` does by default), trying each upstream in turn
//! with a per-try timeout.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The largest UDP reply we accept from an upstream.
const MAX_UDP_REPLY: usize = 65535;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no usable upstream resolvers")]
    NoUpstreams,
    #[error("upstream {upstream}: {source}")]
    Exchange {
        upstream: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("upstream {upstream} timed out")]
    Timeout { upstream: SocketAddr },
}

pub type Result<T, E = ForwardError> = std::result::Result<T, E>;

/// The upstream resolvers.
#[derive(Debug)]
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
    next: AtomicUsize,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, timeout: Duration) -> Self {
        Self {
            upstreams,
            timeout,
            next: AtomicUsize::new(0),
        }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Sends the wire-format `query` to the upstreams (starting at a rotating
    /// one, skipping those `skip` refuses) until one answers; the first answer is
    /// returned as is, whatever its rcode.
    pub async fn forward(
        &self,
        query: &[u8],
        tcp: bool,
        skip: impl Fn(SocketAddr) -> bool,
    ) -> Result<Message> {
        let id = query
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .unwrap_or_default();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last_error = ForwardError::NoUpstreams;
        for i in 0..self.upstreams.len() {
            let upstream = self.upstreams[(start + i) % self.upstreams.len()];
            if skip(upstream) {
                continue;
            }
            let exchange = async {
                if tcp {
                    exchange_tcp(upstream, query).await
                } else {
                    exchange_udp(upstream, query, id).await
                }
            };
            match tokio::time::timeout(self.timeout, exchange).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(source)) => {
                    tracing::debug!(%upstream, "forwarding failed: {source}");
                    last_error = ForwardError::Exchange { upstream, source };
                }
                Err(_) => {
                    tracing::debug!(%upstream, "forwarding timed out");
                    last_error = ForwardError::Timeout { upstream };
                }
            }
        }
        Err(last_error)
    }
}

fn decode(reply: &[u8]) -> io::Result<Message> {
    Message::from_vec(reply).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

async fn exchange_udp(upstream: SocketAddr, query: &[u8], id: u16) -> io::Result<Message> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP_REPLY];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Ignore strays (late replies, spoofing attempts): only our id, as a response.
        match decode(&buf[..n]) {
            Ok(reply)
                if reply.metadata.id == id
                    && reply.metadata.message_type == MessageType::Response =>
            {
                return Ok(reply)
            }
            Ok(_) => continue,
            Err(err) => tracing::debug!(%upstream, "undecodable reply: {err}"),
        }
    }
}

async fn exchange_tcp(upstream: SocketAddr, query: &[u8]) -> io::Result<Message> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too large"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut reply = vec![0u8; usize::from(len)];
    stream.read_exact(&mut reply).await?;
    decode(&reply)
}

/// Whether forwarding to `upstream` would reach this server itself: same port
/// and an address we listen on (the bind address, or, bound to the wildcard, any
/// local address — tested by binding to it). systemd-resolved's 127.0.0.53 stub is
/// a different socket and allowed.
pub fn is_self(upstream: SocketAddr, listen: SocketAddr) -> bool {
    if upstream.port() != listen.port() {
        return false;
    }
    if upstream.ip() == listen.ip() {
        return true;
    }
    if !listen.ip().is_unspecified() || upstream.ip() == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)) {
        return false;
    }
    std::net::UdpSocket::bind((upstream.ip(), 0)).is_ok()
}

/// `upstreams` without those that point back at `listen`, with a warning for each.
pub fn without_self(upstreams: Vec<SocketAddr>, listen: SocketAddr) -> Vec<SocketAddr> {
    upstreams
        .into_iter()
        .filter(|upstream| {
            let own = is_self(*upstream, listen);
            if own {
                tracing::warn!(%upstream, "refusing to forward to ourselves; upstream ignored");
            }
            !own
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_detection() {
        let any: SocketAddr = "0.0.0.0:53".parse().unwrap();
        assert!(is_self("127.0.0.1:53".parse().unwrap(), any));
        assert!(!is_self("127.0.0.1:5353".parse().unwrap(), any));
        assert!(!is_self("127.0.0.53:53".parse().unwrap(), any));
        // TEST-NET-1 is never a local address.
        assert!(!is_self("192.0.2.1:53".parse().unwrap(), any));
        let specific: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        assert!(is_self("127.0.0.1:5300".parse().unwrap(), specific));
        assert!(!is_self("127.0.0.2:5300".parse().unwrap(), specific));
        assert_eq!(
            without_self(
                vec![
                    "127.0.0.1:5300".parse().unwrap(),
                    "192.0.2.1:53".parse().unwrap()
                ],
                specific
            ),
            vec!["192.0.2.1:53".parse::<SocketAddr>().unwrap()]
        );
    }

    #[tokio::test]
    async fn no_upstreams_fails() {
        let f = Forwarder::new(Vec::new(), Duration::from_millis(100));
        assert!(matches!(
            f.forward(&[0, 1, 2], false, |_| false).await,
            Err(ForwardError::NoUpstreams)
        ));
    }
}
