//! SASL through a real `Connection` against a fake broker on 127.0.0.1 that speaks just enough
//! Kafka (ApiVersions, SaslHandshake, SaslAuthenticate): a SCRAM server that does not know the
//! password (a man in the middle) must fail the connection with a typed authentication error,
//! and a broker that does not enable the mechanism must say which ones it does.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafkit::config::{SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol};
use kafkit::io::connection::{Connection, ConnectionConfig};
use kafkit::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn read_request(socket: &mut TcpStream) -> (RequestHeader, i16, Bytes) {
    let size = socket.read_i32().await.expect("size");
    let mut frame = vec![0u8; usize::try_from(size).expect("size")];
    socket.read_exact(&mut frame).await.expect("frame");
    let mut buf = Bytes::from(frame);
    let api = ApiKey::try_from(i16::from_be_bytes([buf[0], buf[1]])).expect("api key");
    let version = i16::from_be_bytes([buf[2], buf[3]]);
    let header = RequestHeader::decode(&mut buf, api.request_header_version(version)).expect("hdr");
    (header, version, buf)
}

async fn respond<R: Encodable>(socket: &mut TcpStream, header: &RequestHeader, body: &R) {
    let api = ApiKey::try_from(header.request_api_key).expect("api key");
    let version = header.request_api_version;
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, api.response_header_version(version))
        .expect("encode header");
    body.encode(&mut buf, version).expect("encode body");
    let mut frame = BytesMut::new();
    frame.put_i32(i32::try_from(buf.len()).expect("len"));
    frame.put(buf);
    socket.write_all(&frame).await.expect("write");
}

/// ApiVersions, then SaslHandshake answered with `mechanisms` (an error if the client's is
/// not among them); whether the client may go on to SaslAuthenticate.
async fn serve_until_authenticate(socket: &mut TcpStream, mechanisms: &[&str]) -> bool {
    let (header, _, _) = read_request(socket).await;
    assert_eq!(header.request_api_key, ApiKey::ApiVersions as i16);
    let range = |key: ApiKey, max| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(0)
            .with_max_version(max)
    };
    let versions = ApiVersionsResponse::default().with_api_keys(vec![
        range(ApiKey::ApiVersions, 3),
        range(ApiKey::SaslHandshake, 1),
        range(ApiKey::SaslAuthenticate, 2),
        range(ApiKey::Metadata, 12),
    ]);
    respond(socket, &header, &versions).await;
    let (header, _, mut body) = read_request(socket).await;
    assert_eq!(header.request_api_key, ApiKey::SaslHandshake as i16);
    let wanted = kafka_protocol::messages::SaslHandshakeRequest::decode(&mut body, 1)
        .expect("handshake")
        .mechanism;
    let enabled = mechanisms.iter().any(|m| *m == wanted.as_str());
    let response = SaslHandshakeResponse::default()
        .with_error_code(if enabled { 0 } else { 33 })
        .with_mechanisms(
            mechanisms
                .iter()
                .map(|m| StrBytes::from_string((*m).to_owned()))
                .collect(),
        );
    respond(socket, &header, &response).await;
    enabled
}

fn scram_config(port: u16) -> (String, ConnectionConfig) {
    let security = SecurityConfig::new(SecurityProtocol::SaslPlaintext).sasl(
        SaslConfig::with_password(SaslMechanism::ScramSha256, "alice", "alice-secret"),
    );
    (
        format!("127.0.0.1:{port}"),
        ConnectionConfig {
            security,
            connect_timeout: Duration::from_secs(10),
            ..ConnectionConfig::default()
        },
    )
}

#[tokio::test]
async fn a_scram_server_that_cannot_prove_the_password_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        assert!(serve_until_authenticate(&mut socket, &["SCRAM-SHA-256"]).await);
        // client-first → server-first with our own salt.
        let (header, version, mut body) = read_request(&mut socket).await;
        let first = SaslAuthenticateRequest::decode(&mut body, version).expect("auth");
        let first = String::from_utf8(first.auth_bytes.to_vec()).expect("utf8");
        let nonce = first.split_once(",r=").expect("nonce").1.to_owned();
        let server_first = format!("r={nonce}mitm,s={},i=4096", B64.encode(b"salt-salt"));
        let response = SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from(server_first))
            .with_session_lifetime_ms(0);
        respond(&mut socket, &header, &response).await;
        // client-final → a server signature made without the password.
        let (header, _, _) = read_request(&mut socket).await;
        let forged = format!("v={}", B64.encode([7u8; 32]));
        let response = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(forged));
        respond(&mut socket, &header, &response).await;
        // The client must close the connection now.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest)).await;
        assert!(rest.is_empty(), "client kept talking");
    });
    let (broker, config) = scram_config(port);
    let err = Connection::connect(&broker, &config)
        .await
        .expect_err("a forged server signature must fail");
    match &err {
        Error::Authentication {
            mechanism, message, ..
        } => {
            assert_eq!(mechanism, "SCRAM-SHA-256");
            assert!(message.contains("signature"), "{message}");
        }
        other => panic!("expected Authentication, got {other:?}"),
    }
    assert!(!err.is_retriable());
    server.await.expect("fake broker");
}

#[tokio::test]
async fn a_mechanism_the_broker_does_not_enable_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        assert!(!serve_until_authenticate(&mut socket, &["PLAIN", "OAUTHBEARER"]).await);
    });
    let (broker, config) = scram_config(port);
    let err = Connection::connect(&broker, &config)
        .await
        .expect_err("an unsupported mechanism must fail");
    let text = err.to_string();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(text.contains("PLAIN, OAUTHBEARER"), "{text}");
    server.await.expect("fake broker");
}
