//! Host names to sockets: resolve afresh on every connection attempt, then try the addresses
//! one after the other ([`AddressWalk`]) until one accepts (`client.dns.lookup=
//! use_all_dns_ips`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::net::{TcpSocket, TcpStream};
use tracing::debug;

use super::connection::ConnectionConfig;
use crate::state::dns::AddressWalk;

/// How broker host names become addresses: the system resolver (`getaddrinfo`, asked again on
/// every connection attempt), except for names pinned to addresses with [`Resolver::pin`] (for
/// tests: a name with several addresses, or one that moves, on one machine), and names under
/// `.invalid`, which fail at once without asking the DNS (RFC 6761 §6.4: they never resolve).
/// Clones share their pins.
///
/// ```
/// use kafkit::io::dns::Resolver;
///
/// let resolver = Resolver::system()
///     .with_host("kafka.test", ["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()]);
/// let shared = resolver.clone();
/// shared.pin("kafka.test", ["127.0.0.1".parse().unwrap()]); // the name moved
/// assert!(format!("{resolver:?}").contains("[127.0.0.1]"));
/// ```
#[derive(Clone, Default)]
pub struct Resolver {
    pinned: Arc<RwLock<HashMap<String, Vec<IpAddr>>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("pinned", &*self.read())
            .finish()
    }
}

impl Resolver {
    /// The system resolver, nothing pinned (the default).
    pub fn system() -> Resolver {
        Resolver::default()
    }

    /// [`Resolver::pin`], as a builder.
    pub fn with_host(self, host: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.pin(host, addresses);
        self
    }

    /// From now on resolves `host` (compared without regard to case) to `addresses`, in this
    /// order, instead of asking the system; for this resolver and every clone of it.
    pub fn pin(&self, host: &str, addresses: impl IntoIterator<Item = IpAddr>) {
        let addresses = addresses.into_iter().collect();
        self.pinned
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(host.to_ascii_lowercase(), addresses);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<IpAddr>>> {
        self.pinned
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The addresses of `broker` (`host:port` or `[ipv6]:port`), in the resolver's order.
    pub async fn resolve(&self, broker: &str) -> io::Result<Vec<SocketAddr>> {
        if let Some((host, port)) = split_host_port(broker) {
            let pinned = self.read();
            if let Some(ips) = pinned.get(&host.to_ascii_lowercase()) {
                return Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
            }
            if is_invalid_tld(host) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} is under .invalid, which never resolves (RFC 6761)"),
                ));
            }
        }
        Ok(tokio::net::lookup_host(broker).await?.collect())
    }
}

/// Whether `host` is `invalid` or under it (a trailing dot allowed, any case).
fn is_invalid_tld(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let Some(tld) = host.rsplit('.').next() else {
        return false;
    };
    tld.eq_ignore_ascii_case("invalid")
}

/// `host:port` or `[ipv6]:port` into its parts.
fn split_host_port(broker: &str) -> Option<(&str, u16)> {
    let (host, port) = broker.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?))
}

/// Resolves `broker` and connects to the first of its addresses that accepts, trying each in
/// turn with its share of the time left before `deadline`, with the socket buffer sizes of
/// `config` set on each socket before it connects. Fails with the lookup's error, or with
/// every address's failure when none accepts.
pub(crate) async fn connect_tcp(
    broker: &str,
    config: &ConnectionConfig,
    deadline: Instant,
) -> io::Result<TcpStream> {
    let addresses = config.resolver.resolve(broker).await?;
    let now = Instant::now();
    let mut walk = AddressWalk::new(addresses, now, deadline.saturating_duration_since(now));
    if walk.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{broker} resolves to no address"),
        ));
    }
    let mut failures: Vec<(SocketAddr, io::Error)> = Vec::new();
    while let Some((address, give_up)) = walk.next(Instant::now()) {
        let attempt = tokio::time::timeout_at(give_up.into(), connect_one(address, config)).await;
        let err = match attempt {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(err)) => err,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        };
        debug!(broker, %address, error = %err, "address did not accept; trying the next");
        failures.push((address, err));
    }
    Err(combine(broker, failures))
}

/// One error for every address that failed: the only one as it is, or a list keeping the
/// last one's kind.
fn combine(broker: &str, mut failures: Vec<(SocketAddr, io::Error)>) -> io::Error {
    if failures.len() <= 1 {
        return match failures.pop() {
            Some((_, err)) => err,
            None => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no time left to connect to {broker}"),
            ),
        };
    }
    let kind = failures
        .last()
        .map_or(io::ErrorKind::Other, |(_, e)| e.kind());
    let list: Vec<String> = failures
        .iter()
        .map(|(address, err)| format!("{address}: {err}"))
        .collect();
    io::Error::new(
        kind,
        format!("no address of {broker} accepted ({})", list.join("; ")),
    )
}

async fn connect_one(address: SocketAddr, config: &ConnectionConfig) -> io::Result<TcpStream> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(bytes) = config.send_buffer_bytes {
        socket.set_send_buffer_size(bytes)?;
    }
    if let Some(bytes) = config.receive_buffer_bytes {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.connect(address).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// The sizes a socket connected with `send`/`receive` buffer settings ends up with.
    async fn sizes(send: Option<u32>, receive: Option<u32>) -> (u32, u32) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let config = ConnectionConfig {
            send_buffer_bytes: send,
            receive_buffer_bytes: receive,
            ..ConnectionConfig::default()
        };
        let stream = connect_tcp(&address, &config, soon()).await.unwrap();
        let socket = TcpSocket::from_std_stream(stream.into_std().unwrap());
        (
            socket.send_buffer_size().unwrap(),
            socket.recv_buffer_size().unwrap(),
        )
    }

    #[tokio::test]
    async fn socket_buffer_sizes_are_applied_before_connecting() {
        let (small_send, small_receive) = sizes(Some(16 * 1024), Some(16 * 1024)).await;
        let (large_send, large_receive) = sizes(Some(128 * 1024), Some(128 * 1024)).await;
        // The kernel may round (Linux doubles the value for its bookkeeping), but it keeps the
        // order and never gives less than asked.
        assert!(
            small_send >= 16 * 1024 && small_send < large_send,
            "{small_send} {large_send}"
        );
        assert!(
            small_receive >= 16 * 1024 && small_receive < large_receive,
            "{small_receive} {large_receive}"
        );
        let (os_send, _) = sizes(None, None).await;
        assert!(os_send > 0);
    }

    #[tokio::test]
    async fn an_unresolvable_broker_is_an_error() {
        let config = ConnectionConfig::default();
        assert!(connect_tcp("no-such-host.invalid:9092", &config, soon())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn every_address_is_tried_until_one_accepts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Nothing listens on 127.0.0.2 or ::1 at that port: both refuse.
        let config = ConnectionConfig {
            resolver: Resolver::system().with_host(
                "Kafka.Test",
                [
                    "127.0.0.2".parse().unwrap(),
                    "::1".parse().unwrap(),
                    "127.0.0.1".parse().unwrap(),
                ],
            ),
            ..ConnectionConfig::default()
        };
        let stream = connect_tcp(&format!("kafka.test:{port}"), &config, soon())
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
        // None accepting: every failure is named.
        drop((stream, listener));
        let err = connect_tcp(&format!("kafka.test:{port}"), &config, soon())
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&format!("127.0.0.2:{port}")), "{message}");
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    }

    #[tokio::test]
    async fn invalid_names_fail_without_a_lookup_unless_pinned() {
        assert!(is_invalid_tld("kafka.invalid"));
        assert!(is_invalid_tld("Kafka.INVALID."));
        assert!(is_invalid_tld("invalid"));
        assert!(!is_invalid_tld("invalid.example"));
        assert!(!is_invalid_tld("kafka.invalidx"));
        let resolver = Resolver::system();
        let err = resolver.resolve("kafka.invalid:9092").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("kafka.invalid"), "{err}");
        resolver.pin("kafka.invalid", ["127.0.0.1".parse().unwrap()]);
        assert_eq!(
            resolver.resolve("kafka.invalid:9092").await.unwrap(),
            ["127.0.0.1:9092".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("kafka:9092"), Some(("kafka", 9092)));
        assert_eq!(split_host_port("[::1]:9093"), Some(("::1", 9093)));
        assert_eq!(split_host_port("kafka"), None);
        assert_eq!(split_host_port("kafka:x"), None);
    }
}
