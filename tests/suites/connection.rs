//! The pipelined broker connection against a real broker, and against peers that misbehave.

use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, MetadataRequest};
use kafkit::io::cluster::{Cluster, ClusterConfig};
use kafkit::io::connection::{Connection, ConnectionConfig};
use kafkit::io::dns::Resolver;
use kafkit::Error;
use kafkit_tests::kafka;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(30);

fn first_broker() -> String {
    kafka()
        .bootstrap
        .split(',')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn negotiates_versions_and_answers_metadata() {
    let conn = Connection::connect(&first_broker(), &ConnectionConfig::default())
        .await
        .unwrap();
    let version = conn.version(ApiKey::Metadata).unwrap();
    assert!(
        version >= 12,
        "Kafka 4.x speaks Metadata v12+, negotiated {version}"
    );
    let metadata = conn
        .send(&MetadataRequest::default(), version, TIMEOUT)
        .await
        .unwrap();
    assert!(!metadata.brokers.is_empty());
    let advertised: Vec<String> = metadata
        .brokers
        .iter()
        .map(|b| format!("{}:{}", b.host.as_str(), b.port))
        .collect();
    assert!(
        kafka()
            .bootstrap
            .split(',')
            .any(|a| advertised.contains(&a.to_owned())),
        "{advertised:?} vs {}",
        kafka().bootstrap
    );
}

#[tokio::test]
async fn pipelines_many_requests_on_one_connection() {
    let conn = Connection::connect(&first_broker(), &ConnectionConfig::default())
        .await
        .unwrap();
    let version = conn.version(ApiKey::Metadata).unwrap();
    let request = MetadataRequest::default();
    let answers =
        futures::future::join_all((0..200).map(|_| conn.send(&request, version, TIMEOUT))).await;
    assert_eq!(answers.len(), 200);
    for answer in answers {
        assert!(!answer.unwrap().brokers.is_empty());
    }
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn refused_connection_is_a_typed_error() {
    // Bind, learn the port, close: nothing listens there now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = Connection::connect(&addr, &ConnectionConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retriable());
}

#[tokio::test]
async fn silent_peer_times_out_instead_of_hanging() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        // Read the request, never answer.
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut sink)).await;
    });
    let config = ConnectionConfig {
        connect_timeout: Duration::from_millis(300),
        ..ConnectionConfig::default()
    };
    let started = std::time::Instant::now();
    let err = Connection::connect(&addr, &config).await.unwrap_err();
    assert!(matches!(err, Error::ConnectTimeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    peer.abort();
}

#[tokio::test]
async fn oversize_frame_from_peer_is_refused_before_allocating() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut size = [0u8; 4];
        socket.read_exact(&mut size).await.unwrap();
        let mut request = vec![0u8; u32::from_be_bytes(size) as usize];
        socket.read_exact(&mut request).await.unwrap();
        // Claim a 2 GiB response.
        socket
            .write_all(&0x7fff_fff0_i32.to_be_bytes())
            .await
            .unwrap();
        let _ = socket.write_all(&request[4..8]).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let err = Connection::connect(&addr, &ConnectionConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Frame { .. }), "{err:?}");
    peer.abort();
}

#[tokio::test]
async fn garbage_response_is_a_typed_error_not_a_crash() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut size = [0u8; 4];
        socket.read_exact(&mut size).await.unwrap();
        let mut request = vec![0u8; u32::from_be_bytes(size) as usize];
        socket.read_exact(&mut request).await.unwrap();
        // The right correlation id, then an ApiVersions body claiming 2^31-1 entries.
        let mut frame = Vec::new();
        frame.extend_from_slice(&request[4..8]);
        frame.extend_from_slice(&[0, 0, 0x7f, 0xff, 0xff, 0xff]);
        socket
            .write_all(&(frame.len() as i32).to_be_bytes())
            .await
            .unwrap();
        socket.write_all(&frame).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let err = Connection::connect(&addr, &ConnectionConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    peer.abort();
}

/// The broker's port (it listens on 127.0.0.1 only).
fn broker_port() -> u16 {
    let broker = first_broker();
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    assert_eq!(host, "127.0.0.1", "the test broker listens on 127.0.0.1");
    port.parse().expect("a port")
}

#[tokio::test]
async fn a_host_name_whose_first_addresses_refuse_connects_through_the_next() {
    // As `localhost` on a dual-stack machine (::1, then 127.0.0.1) with the broker on IPv4
    // only; this machine's /etc/hosts gives 127.0.0.1 alone, so the name is pinned. Nothing
    // listens on ::1 or 127.0.0.2 at the broker's port: both refuse at once.
    let port = broker_port();
    let resolver = Resolver::system().with_host(
        "dual-stack.kafkit.test",
        [
            "::1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ],
    );
    // Default settings otherwise (client.dns.lookup=use_all_dns_ips is the only mode).
    let mut config = ClusterConfig::new(&format!("dual-stack.kafkit.test:{port}"));
    config.connection.resolver = resolver;
    let started = Instant::now();
    let cluster = Cluster::connect(config)
        .await
        .expect("bootstrap through 127.0.0.1");
    // No reconnect backoff was needed: the one attempt walked to the address that accepts.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let node = cluster
        .metadata()
        .brokers()
        .next()
        .map(|b| b.node_id)
        .expect("a broker");
    let conn = cluster
        .connection(node)
        .await
        .expect("the broker by its advertised address");
    assert!(!conn.is_closed());
    cluster.close();
}

#[tokio::test]
async fn the_host_name_is_resolved_again_on_every_attempt() {
    // A name that points nowhere useful at first, then (the DNS record changed) at the broker:
    // the bootstrap retries resolve it again and find the broker, never reusing the address
    // that failed.
    let port = broker_port();
    let resolver =
        Resolver::system().with_host("moving.kafkit.test", ["127.0.0.2".parse().unwrap()]);
    let mut config = ClusterConfig::new(&format!("moving.kafkit.test:{port}"));
    config.connection.resolver = resolver.clone();
    config.bootstrap_timeout = Duration::from_secs(20);
    let connecting = tokio::spawn(Cluster::connect(config));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !connecting.is_finished(),
        "127.0.0.2 refuses: still retrying"
    );
    resolver.pin("moving.kafkit.test", ["127.0.0.1".parse().unwrap()]);
    let cluster = tokio::time::timeout(Duration::from_secs(15), connecting)
        .await
        .expect("connects once the name moves")
        .expect("task")
        .expect("cluster");
    cluster.close();
}

#[tokio::test]
async fn localhost_through_the_system_resolver() {
    let conn = Connection::connect(
        &format!("localhost:{}", broker_port()),
        &ConnectionConfig::default(),
    )
    .await
    .expect("localhost resolves to the broker's address");
    assert!(conn.version(ApiKey::Metadata).is_ok());
    conn.close();
}

#[tokio::test]
async fn resolve_canonical_bootstrap_servers_only_is_refused_naming_it() {
    let err = kafkit::ProducerConfig::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        (
            "client.dns.lookup",
            "resolve_canonical_bootstrap_servers_only",
        ),
    ])
    .unwrap_err();
    assert_eq!(err.key(), "client.dns.lookup");
    assert!(
        err.to_string()
            .contains("resolve_canonical_bootstrap_servers_only"),
        "{err}"
    );
    assert!(kafkit::ProducerConfig::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("client.dns.lookup", "use_all_dns_ips"),
    ])
    .is_ok());
}
