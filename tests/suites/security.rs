//! TLS and SASL against a real broker (`scripts/kafka.sh start --security`): produce and fetch
//! through every protocol and mechanism, and the failures users meet (wrong password, unknown
//! CA, wrong host name, TLS to a plaintext port), each a typed error, quickly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::BytesMut;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{
    SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol, TlsConfig, TokenFuture,
    TokenProvider,
};
use kafkit::io::cluster::{Cluster, ClusterConfig};
use kafkit::io::connection::{Connection, ConnectionConfig};
use kafkit::state::sasl::oauthbearer::OAuthBearerToken;
use kafkit::Error;
use kafkit_tests::{kafka_secure, unique_name, SecureKafka, SASL_PASSWORD, SASL_USER};
use kafkit_wire::record::{BatchBuilder, BatchOptions, BatchReader, RecordRef};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Unsecured JWTs (`alg: none`) as Kafka's default OAUTHBEARER validator accepts them, each
/// valid for `lifetime`; counts how often it was asked.
#[derive(Debug)]
struct UnsecuredJwt {
    lifetime: Duration,
    calls: AtomicUsize,
}

impl UnsecuredJwt {
    fn new(lifetime: Duration) -> Arc<Self> {
        Arc::new(UnsecuredJwt {
            lifetime,
            calls: AtomicUsize::new(0),
        })
    }
}

impl TokenProvider for UnsecuredJwt {
    fn token(&self) -> TokenFuture<'_> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|e| e.to_string())?;
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
            let claims = format!(
                r#"{{"sub":"{SASL_USER}","iat":{},"exp":{:.3}}}"#,
                now.as_secs(),
                (now + self.lifetime).as_secs_f64()
            );
            let payload = URL_SAFE_NO_PAD.encode(claims);
            Ok(OAuthBearerToken::new(format!("{header}.{payload}.")))
        })
    }
}

fn tls(k: &SecureKafka) -> TlsConfig {
    TlsConfig::new().ca_file(&k.ca_pem)
}

fn sasl(mechanism: SaslMechanism, password: &str) -> SaslConfig {
    if mechanism == SaslMechanism::OAuthBearer {
        SaslConfig::oauthbearer(UnsecuredJwt::new(Duration::from_secs(3600)))
    } else {
        SaslConfig::with_password(mechanism, SASL_USER, password)
    }
}

fn cluster_config(bootstrap: &str, security: SecurityConfig) -> ClusterConfig {
    let mut config = ClusterConfig::new(bootstrap);
    config.connection.security = security;
    config
}

/// Creates a topic, produces one record to it and fetches it back, all through `security`.
async fn produce_and_fetch(bootstrap: &str, security: SecurityConfig) -> Result<(), Error> {
    let cluster = Cluster::connect(cluster_config(bootstrap, security)).await?;
    let admin = Admin::from_cluster(cluster.clone());
    let topic = unique_name("security");
    admin
        .create_topics_if_missing(&[NewTopic::new(&topic, 1, 1)])
        .await?;
    cluster.refresh_metadata(Some(&[topic.as_str()])).await?;
    let (leader, topic_id) = {
        let metadata = cluster.metadata();
        let leader = metadata.leader(&topic, 0).map(|b| b.node_id);
        let id = metadata.topic(&topic).map(|t| t.topic_id);
        (leader.expect("a leader"), id.expect("the topic"))
    };
    let conn = cluster.connection(leader).await?;

    let value = format!("hello over {topic}");
    let mut buf = BytesMut::new();
    let mut batch = BatchBuilder::new(&mut buf, 0);
    batch
        .append(&RecordRef::new(0, Some(b"k"), Some(value.as_bytes())))
        .expect("append");
    batch
        .finish(&BatchOptions::default(), &mut Vec::new())
        .expect("finish");
    let name = TopicName(StrBytes::from_string(topic.clone()));
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name.clone())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(buf.freeze()))])]);
    let response = conn
        .send(&produce, conn.version(ApiKey::Produce)?, TIMEOUT)
        .await?;
    let partition = &response.responses[0].partition_responses[0];
    Error::check(ApiKey::Produce, partition.error_code, None)?;
    let offset = partition.base_offset;

    let version = conn.version(ApiKey::Fetch)?;
    let mut fetch_topic = FetchTopic::default().with_partitions(vec![FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_current_leader_epoch(-1)
        .with_last_fetched_epoch(-1)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(1 << 20)]);
    if version >= 13 {
        fetch_topic.topic_id = uuid::Uuid::from_bytes(topic_id);
    } else {
        fetch_topic.topic = name;
    }
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_topic]);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "the record did not come back");
        let response = conn.send(&fetch, version, TIMEOUT).await?;
        let partition = &response.responses[0].partitions[0];
        Error::check(ApiKey::Fetch, partition.error_code, None)?;
        let Some(records) = partition.records.clone() else {
            continue;
        };
        for batch in BatchReader::new(records) {
            let batch = batch.expect("a valid batch");
            if let Some(record) = batch.records().iter().find(|r| r.offset == offset) {
                assert_eq!(record.value.as_deref(), Some(value.as_bytes()));
                cluster.close();
                return Ok(());
            }
        }
    }
}

#[tokio::test]
async fn sasl_plaintext_every_mechanism() {
    let k = kafka_secure();
    for mechanism in [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ] {
        let security = SecurityConfig::new(SecurityProtocol::SaslPlaintext)
            .sasl(sasl(mechanism, SASL_PASSWORD));
        produce_and_fetch(&k.sasl_plaintext, security)
            .await
            .unwrap_or_else(|e| panic!("SASL_PLAINTEXT {mechanism}: {e}"));
    }
}

#[tokio::test]
async fn sasl_ssl_every_mechanism() {
    let k = kafka_secure();
    for mechanism in [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ] {
        let security = SecurityConfig::new(SecurityProtocol::SaslSsl)
            .sasl(sasl(mechanism, SASL_PASSWORD))
            .tls(tls(k));
        produce_and_fetch(&k.sasl_ssl, security)
            .await
            .unwrap_or_else(|e| panic!("SASL_SSL {mechanism}: {e}"));
    }
}

#[tokio::test]
async fn ssl_with_a_client_certificate() {
    let k = kafka_secure();
    let mut tls = tls(k);
    match (&k.client_cert, &k.client_key) {
        (Some(cert), Some(key)) => tls = tls.client_certificate(cert, key),
        _ => eprintln!("no client certificate (openssl missing): SSL without mTLS"),
    }
    produce_and_fetch(&k.ssl, SecurityConfig::new(SecurityProtocol::Ssl).tls(tls))
        .await
        .unwrap_or_else(|e| panic!("SSL: {e}"));
}

#[tokio::test]
async fn ssl_by_property_names() {
    let k = kafka_secure();
    let mut props = vec![
        ("bootstrap.servers", k.sasl_ssl.clone()),
        ("security.protocol", "SASL_SSL".to_owned()),
        ("sasl.mechanism", "SCRAM-SHA-512".to_owned()),
        ("sasl.username", SASL_USER.to_owned()),
        ("sasl.password", SASL_PASSWORD.to_owned()),
        ("ssl.ca.location", k.ca_pem.display().to_string()),
        ("ssl.endpoint.identification.algorithm", "https".to_owned()),
    ];
    let config = kafkit::config::ProducerConfig::from_properties(
        props.iter().map(|(k, v)| (*k, v.as_str())),
    )
    .expect("valid properties");
    assert!(!format!("{config:?}").contains(SASL_PASSWORD));
    let cluster = ClusterConfig::from_client_config(config.client());
    assert!(!format!("{cluster:?}").contains(SASL_PASSWORD));
    produce_and_fetch(&k.sasl_ssl, cluster.connection.security)
        .await
        .expect("SASL_SSL from properties");
    props.push(("sasl.mechanism", "GSSAPI".to_owned()));
    assert!(kafkit::config::ProducerConfig::from_properties(
        props.iter().map(|(k, v)| (*k, v.as_str()))
    )
    .is_err());
}

#[tokio::test]
async fn a_wrong_password_is_a_typed_authentication_error() {
    let k = kafka_secure();
    for (protocol, bootstrap) in [
        (SecurityProtocol::SaslPlaintext, &k.sasl_plaintext),
        (SecurityProtocol::SaslSsl, &k.sasl_ssl),
    ] {
        for mechanism in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ] {
            let security = SecurityConfig::new(protocol)
                .sasl(sasl(mechanism, "not-the-password"))
                .tls(tls(k));
            let started = Instant::now();
            let err = Cluster::connect(cluster_config(bootstrap, security))
                .await
                .expect_err("a wrong password must fail");
            match &err {
                Error::Authentication {
                    mechanism: m,
                    message,
                    ..
                } => {
                    assert_eq!(m, mechanism.name());
                    // The broker's own words come through.
                    assert!(
                        message.contains("Authentication failed"),
                        "{protocol} {mechanism}: {message}"
                    );
                }
                other => panic!("{protocol} {mechanism}: expected Authentication, got {other:?}"),
            }
            assert!(!err.is_retriable(), "no retry storm: {err}");
            assert!(!err.to_string().contains("not-the-password"));
            assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        }
    }
}

#[tokio::test]
async fn a_mechanism_the_listener_does_not_enable() {
    let k = kafka_secure();
    // The PLAINTEXT listener has no SASL: SaslHandshake is refused or the connection closes;
    // either way a typed error, fast.
    let security =
        SecurityConfig::new(SecurityProtocol::SaslPlaintext).sasl(sasl(SaslMechanism::Plain, "x"));
    let started = Instant::now();
    let err = Connection::connect(
        &k.kafka.bootstrap,
        &ConnectionConfig {
            security,
            ..ConnectionConfig::default()
        },
    )
    .await
    .expect_err("no SASL on a PLAINTEXT listener");
    assert!(
        matches!(err, Error::Authentication { .. } | Error::Io { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn connection_config(security: SecurityConfig) -> ConnectionConfig {
    ConnectionConfig {
        security,
        connect_timeout: Duration::from_secs(10),
        ..ConnectionConfig::default()
    }
}

fn tls_message(err: &Error) -> &str {
    match err {
        Error::Tls { message, .. } => message,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_ca_is_a_typed_tls_error() {
    let k = kafka_secure();
    // The webpki roots (the default) do not include the test CA.
    let security = SecurityConfig::new(SecurityProtocol::Ssl).tls(TlsConfig::new());
    let err = Connection::connect(&first(&k.ssl), &connection_config(security))
        .await
        .expect_err("an unknown CA must fail");
    let message = tls_message(&err);
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn a_wrong_host_name_is_a_typed_tls_error_unless_identification_is_off() {
    let k = kafka_secure();
    let mut wrong = tls(k);
    wrong.server_name = Some("kafka.wrong.example".to_owned());
    let security = SecurityConfig::new(SecurityProtocol::SaslSsl)
        .sasl(sasl(SaslMechanism::ScramSha256, SASL_PASSWORD))
        .tls(wrong.clone());
    let err = Connection::connect(&first(&k.sasl_ssl), &connection_config(security))
        .await
        .expect_err("a wrong host name must fail");
    let message = tls_message(&err);
    assert!(message.contains("not valid for name"), "{message}");

    // `ssl.endpoint.identification.algorithm=` (empty): the chain is still checked, the name
    // is not.
    wrong.verify_hostname = false;
    let security = SecurityConfig::new(SecurityProtocol::SaslSsl)
        .sasl(sasl(SaslMechanism::ScramSha256, SASL_PASSWORD))
        .tls(wrong);
    Connection::connect(&first(&k.sasl_ssl), &connection_config(security))
        .await
        .expect("hostname verification off");
}

#[tokio::test]
async fn tls_to_a_plaintext_port_fails_fast() {
    let k = kafka_secure();
    let security = SecurityConfig::new(SecurityProtocol::Ssl).tls(tls(k));
    let started = Instant::now();
    let err = Connection::connect(&first(&k.kafka.bootstrap), &connection_config(security))
        .await
        .expect_err("TLS to a plaintext port must fail");
    let message = tls_message(&err);
    assert!(message.contains("handshake"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dangerous_skip_verification_connects_to_any_certificate() {
    let k = kafka_secure();
    let security = SecurityConfig::new(SecurityProtocol::SaslSsl)
        .sasl(sasl(SaslMechanism::Plain, SASL_PASSWORD))
        .tls(TlsConfig::new().dangerous_skip_verification());
    Connection::connect(&first(&k.sasl_ssl), &connection_config(security))
        .await
        .expect("verification off");
}

/// KIP-368: tokens that expire within seconds; the broker limits the session to the token's
/// life, so the connection must re-authenticate (with a fresh token) to keep working.
#[tokio::test]
async fn oauthbearer_reauthenticates_before_the_session_expires() {
    let k = kafka_secure();
    let provider = UnsecuredJwt::new(Duration::from_secs(4));
    for (protocol, bootstrap) in [
        (SecurityProtocol::SaslPlaintext, &k.sasl_plaintext),
        (SecurityProtocol::SaslSsl, &k.sasl_ssl),
    ] {
        let before = provider.calls.load(Ordering::SeqCst);
        let security = SecurityConfig::new(protocol)
            .sasl(SaslConfig::oauthbearer(provider.clone()))
            .tls(tls(k));
        let conn = Connection::connect(&first(bootstrap), &connection_config(security))
            .await
            .expect("connect");
        let version = conn.version(ApiKey::Metadata).expect("metadata version");
        let until = Instant::now() + Duration::from_secs(11);
        let mut requests = 0;
        while Instant::now() < until {
            conn.send(&MetadataRequest::default(), version, TIMEOUT)
                .await
                .unwrap_or_else(|e| panic!("{protocol}: request {requests} failed: {e}"));
            requests += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let tokens = provider.calls.load(Ordering::SeqCst) - before;
        assert!(tokens >= 3, "{protocol}: only {tokens} tokens in 11 s");
        assert!(!conn.is_closed());
        conn.close();
    }
}

/// KIP-368 for SCRAM: the broker limits SCRAM-SHA-512 sessions to 5 s
/// (`connections.max.reauth.ms`); the connection re-authenticates and keeps working.
#[tokio::test]
async fn scram_reauthenticates_when_the_broker_limits_sessions() {
    let k = kafka_secure();
    let security = SecurityConfig::new(SecurityProtocol::SaslSsl)
        .sasl(sasl(SaslMechanism::ScramSha512, SASL_PASSWORD))
        .tls(tls(k));
    let conn = Connection::connect(&first(&k.sasl_ssl), &connection_config(security))
        .await
        .expect("connect");
    let version = conn.version(ApiKey::Metadata).expect("metadata version");
    let until = Instant::now() + Duration::from_secs(12);
    let mut requests = 0;
    while Instant::now() < until {
        conn.send(&MetadataRequest::default(), version, TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("request {requests} failed: {e}"));
        requests += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!conn.is_closed());
    conn.close();
}

fn first(list: &str) -> String {
    list.split(',').next().unwrap_or(list).trim().to_owned()
}

#[tokio::test]
async fn a_clients_connections_share_one_tls_configuration() {
    // One rustls configuration per client (files read once, one session cache): the
    // bootstrap, broker and coordinator connections all use the one made when the client
    // started. Connections made alone make their own.
    let k = kafka_secure();
    let mut tls = tls(k);
    if let (Some(cert), Some(key)) = (&k.client_cert, &k.client_key) {
        tls = tls.client_certificate(cert, key);
    }
    let security = SecurityConfig::new(SecurityProtocol::Ssl).tls(tls);
    let config_of = |c: &Connection| c.tls_config().expect("a TLS connection").clone();
    let alone = [
        Connection::connect(&first(&k.ssl), &connection_config(security.clone()))
            .await
            .expect("connect"),
        Connection::connect(&first(&k.ssl), &connection_config(security.clone()))
            .await
            .expect("connect"),
    ];
    assert!(!Arc::ptr_eq(&config_of(&alone[0]), &config_of(&alone[1])));
    let cluster = Cluster::connect(cluster_config(&k.ssl, security))
        .await
        .expect("bootstrap");
    let bootstrap = cluster
        .any_connection()
        .await
        .expect("bootstrap connection");
    let node = cluster
        .metadata()
        .brokers()
        .next()
        .map(|b| b.node_id)
        .expect("a broker");
    let broker = cluster.connection(node).await.expect("broker connection");
    let coordinator = cluster
        .coordinator_connection(node)
        .await
        .expect("coordinator connection");
    let shared = config_of(&bootstrap);
    for conn in [&broker, &coordinator] {
        assert!(Arc::ptr_eq(&config_of(conn), &shared));
    }
    assert!(!Arc::ptr_eq(&shared, &config_of(&alone[0])));
    cluster.close();
    for conn in alone {
        conn.close();
    }
}

/// `openssl pkcs8 -topk8 -v2 aes-256-cbc`: an encrypted copy of the test client key, in a
/// directory of its own; `None` without openssl or a client key.
fn encrypted_client_key(k: &SecureKafka, password: &str) -> Option<std::path::PathBuf> {
    let key = k.client_key.as_ref()?;
    let dir = std::env::temp_dir().join(unique_name("encrypted-key"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("client.enc.key");
    let status = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(key)
        .arg("-out")
        .arg(&out)
        .arg("-passout")
        .arg(format!("pass:{password}"))
        .status()
        .ok()?;
    assert!(status.success(), "openssl pkcs8 failed");
    let text = std::fs::read_to_string(&out).expect("encrypted key");
    assert!(text.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{text}");
    Some(out)
}

#[tokio::test]
async fn ssl_with_an_encrypted_client_key_by_property_names() {
    let k = kafka_secure();
    let password = "key-pass-4u";
    let (Some(cert), Some(encrypted)) = (&k.client_cert, encrypted_client_key(k, password)) else {
        eprintln!("no client certificate (openssl missing): skipped");
        return;
    };
    let props = |password: Option<&str>| {
        let mut props = vec![
            ("bootstrap.servers", k.ssl.clone()),
            ("security.protocol", "SSL".to_owned()),
            ("ssl.ca.location", k.ca_pem.display().to_string()),
            ("ssl.certificate.location", cert.display().to_string()),
            ("ssl.key.location", encrypted.display().to_string()),
        ];
        if let Some(password) = password {
            props.push(("ssl.key.password", password.to_owned()));
        }
        kafkit::config::ProducerConfig::from_properties(props.iter().map(|(k, v)| (*k, v.as_str())))
            .expect("valid properties")
    };
    let config = props(Some(password));
    assert!(!format!("{config:?}").contains(password));
    // The SSL listener requires the client certificate: this works only with the key decrypted.
    produce_and_fetch(
        &k.ssl,
        ClusterConfig::from_client_config(config.client())
            .connection
            .security,
    )
    .await
    .expect("SSL with the decrypted key");

    // A wrong password and a missing one: typed errors naming the setting, before connecting,
    // never showing the password.
    for (given, says) in [
        (Some("not-the-password"), "ssl.key.password"),
        (None, "set ssl.key.password"),
    ] {
        let config = props(given);
        let started = Instant::now();
        let Err(err) = kafkit::Producer::new(config).await else {
            panic!("the key cannot be read");
        };
        let message = tls_message(&err).to_owned();
        assert!(message.contains(says), "{message}");
        assert!(!message.contains("not-the-password"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let _ = std::fs::remove_dir_all(encrypted.parent().expect("its directory"));
}
