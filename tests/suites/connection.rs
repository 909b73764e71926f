//! The pipelined broker connection against a real broker, and against peers that misbehave.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, MetadataRequest};
use kafkit::io::connection::{Connection, ConnectionConfig};
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
