//! The schema registry client against a real registry (Apicurio Registry 3.x, ccompat API):
//! register, idempotence, lookup, by id (cached, single-flight), latest and by version,
//! compatibility levels and BACKWARD evolution, typed not-found errors.

use std::time::Duration;

use kafkit_events::registry::{
    Compatibility, Missing, RegistryConfig, RegistryError, Schema, SchemaRegistry,
};
use kafkit_tests::{registry, unique_name};

const V1: &str = r#"{
  "type": "record", "name": "Inspection", "namespace": "kafkit.test",
  "doc": "An inspection (pretty-printed: Apicurio returns it compacted)",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "score", "type": "int"}
  ]
}"#;
/// V1 plus a field with a default: BACKWARD compatible.
const V2: &str = r#"{"type":"record","name":"Inspection","namespace":"kafkit.test","fields":[
  {"name":"id","type":"string"},{"name":"score","type":"int"},
  {"name":"inspector","type":"string","default":"unknown"}]}"#;
/// `score` changed from int to string: incompatible.
const V3_BAD: &str = r#"{"type":"record","name":"Inspection","namespace":"kafkit.test","fields":[
  {"name":"id","type":"string"},{"name":"score","type":"string"},
  {"name":"inspector","type":"string","default":"unknown"}]}"#;
/// A new field without a default: a reader of this cannot read V2's data.
const V3_NO_DEFAULT: &str = r#"{"type":"record","name":"Inspection","namespace":"kafkit.test","fields":[
  {"name":"id","type":"string"},{"name":"score","type":"int"},
  {"name":"inspector","type":"string","default":"unknown"},{"name":"site","type":"string"}]}"#;

fn client() -> SchemaRegistry {
    let config = RegistryConfig::from_properties([
        ("schema.registry.url", registry().url.as_str()),
        ("schema.registry.deadline.ms", "30000"),
    ])
    .expect("config");
    SchemaRegistry::new(config).expect("client")
}

#[tokio::test]
async fn register_is_idempotent_and_lookup_finds_it() {
    let registry = client();
    let subject = unique_name("reg-idem") + "-value";
    let schema = Schema::avro(V1);
    let id = registry.register(&subject, &schema).await.unwrap();
    // A fresh client (no cache) registering the same schema gets the same id.
    let again = client().register(&subject, &schema).await.unwrap();
    assert_eq!(again, id);
    let found = client().lookup(&subject, &schema).await.unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.version, Some(1));
    assert_eq!(found.subject.as_deref(), Some(subject.as_str()));
    // The registry returns the schema compacted: equal in canonical form, not in text.
    let by_id = registry.schema_by_id(id).await.unwrap();
    assert!(by_id.schema.same_as(&schema));
    assert_eq!(by_id.schema.canonical(), schema.canonical());
    // Lookup of a schema the subject does not have is a typed not-found.
    let err = client()
        .lookup(&subject, &Schema::avro(V2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NotFound {
                missing: Missing::Schema,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn schema_by_id_is_cached() {
    let subject = unique_name("reg-cache") + "-value";
    let id = client()
        .register(&subject, &Schema::avro(V1))
        .await
        .unwrap();
    let registry = client();
    let first = registry.schema_by_id(id).await.unwrap();
    let requests = registry.stats().requests;
    assert_eq!(requests, 1);
    let second = registry.schema_by_id(id).await.unwrap();
    assert_eq!(
        registry.stats().requests,
        requests,
        "the second call made a request"
    );
    assert!(std::sync::Arc::ptr_eq(&first, &second));
    assert!(registry.stats().cache_hits >= 1);
}

#[tokio::test]
async fn concurrent_misses_of_one_id_make_one_request() {
    let subject = unique_name("reg-flight") + "-value";
    let id = client()
        .register(&subject, &Schema::avro(V1))
        .await
        .unwrap();
    let registry = client();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let registry = registry.clone();
        tasks.push(tokio::spawn(async move { registry.schema_by_id(id).await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().id, id);
    }
    assert_eq!(registry.stats().requests, 1);
}

#[tokio::test]
async fn backward_evolution_and_versions() {
    let registry = client();
    let subject = unique_name("reg-evolve") + "-value";
    let id1 = registry
        .register(&subject, &Schema::avro(V1))
        .await
        .unwrap();
    registry
        .set_compatibility(Some(&subject), Compatibility::Backward)
        .await
        .unwrap();
    assert_eq!(
        registry.compatibility(Some(&subject)).await.unwrap(),
        Compatibility::Backward
    );

    // A field added with a default passes and registers as version 2.
    assert!(registry
        .test_compatibility(&subject, &Schema::avro(V2))
        .await
        .unwrap());
    let id2 = registry
        .register(&subject, &Schema::avro(V2))
        .await
        .unwrap();
    assert_ne!(id1, id2);
    let latest = registry.latest(&subject).await.unwrap();
    assert_eq!((latest.id, latest.version), (id2, Some(2)));
    let v1 = registry.version(&subject, 1).await.unwrap();
    assert_eq!((v1.id, v1.version), (id1, Some(1)));
    assert!(v1.schema.same_as(&Schema::avro(V1)));

    // A type change and a new field without a default are both refused, with the typed error.
    for bad in [V3_BAD, V3_NO_DEFAULT] {
        assert!(!registry
            .test_compatibility(&subject, &Schema::avro(bad))
            .await
            .unwrap());
        let err = registry
            .register(&subject, &Schema::avro(bad))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::Incompatible { subject: ref s, .. } if *s == subject),
            "{err:?}"
        );
        assert!(!err.is_retriable());
    }
    assert_eq!(registry.latest(&subject).await.unwrap().version, Some(2));

    // With NONE the same change is accepted.
    registry
        .set_compatibility(Some(&subject), Compatibility::None)
        .await
        .unwrap();
    assert_eq!(
        registry.compatibility(Some(&subject)).await.unwrap(),
        Compatibility::None
    );
    registry
        .register(&subject, &Schema::avro(V3_BAD))
        .await
        .unwrap();
    assert_eq!(registry.latest(&subject).await.unwrap().version, Some(3));
}

#[tokio::test]
async fn global_compatibility_reads() {
    // Read only: other suites share this registry.
    let level = client().compatibility(None).await.unwrap();
    let subject = unique_name("reg-global");
    // A subject without its own level reports the global one.
    assert_eq!(client().compatibility(Some(&subject)).await.unwrap(), level);
}

#[tokio::test]
async fn not_found_is_typed() {
    let registry = client();
    let subject = unique_name("reg-missing") + "-value";
    let err = registry.latest(&subject).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NotFound {
                missing: Missing::Subject,
                ..
            }
        ),
        "{err:?}"
    );
    let err = registry.schema_by_id(2_000_000_000).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NotFound {
                missing: Missing::Schema,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retriable());
    registry
        .register(&subject, &Schema::avro(V1))
        .await
        .unwrap();
    let err = registry.version(&subject, 7).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NotFound {
                missing: Missing::Version,
                ..
            }
        ),
        "{err:?}"
    );
    // A failed fetch is not cached: asking again asks the registry again.
    let before = registry.stats().requests;
    assert!(registry.schema_by_id(2_000_000_000).await.is_err());
    assert_eq!(registry.stats().requests, before + 1);
}

#[tokio::test]
async fn json_schema_and_escaped_subjects() {
    let registry = client();
    // A subject with a slash travels as %2F.
    let subject = unique_name("reg/json") + "-value";
    let schema = Schema::json(
        r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"id":{"type":"string"}},"required":["id"]}"#,
    );
    let id = registry.register(&subject, &schema).await.unwrap();
    let found = client().schema_by_id(id).await.unwrap();
    assert_eq!(found.schema.schema_type, schema.schema_type);
    assert!(found.schema.same_as(&schema));
    let latest = registry.latest(&subject).await.unwrap();
    assert_eq!(latest.subject.as_deref(), Some(subject.as_str()));
}

#[tokio::test]
async fn latest_cache_ttl() {
    let config = RegistryConfig::from_properties([
        ("schema.registry.url", registry().url.as_str()),
        ("latest.cache.ttl.sec", "60"),
    ])
    .unwrap();
    let registry = SchemaRegistry::new(config).unwrap();
    let subject = unique_name("reg-ttl") + "-value";
    client()
        .register(&subject, &Schema::avro(V1))
        .await
        .unwrap();
    registry.latest(&subject).await.unwrap();
    let requests = registry.stats().requests;
    registry.latest(&subject).await.unwrap();
    assert_eq!(registry.stats().requests, requests);
    // Registering through this client forgets the cached latest.
    registry
        .register(&subject, &Schema::avro(V2))
        .await
        .unwrap();
    let latest = tokio::time::timeout(Duration::from_secs(30), registry.latest(&subject))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.version, Some(2));
}

/// A one-answer HTTPS registry on loopback (rustls with graviola, a throwaway CA made with the
/// openssl CLI): the client verifies it through `schema.registry.ssl.ca.location`, and refuses
/// it without that CA.
#[tokio::test]
async fn https_with_a_ca_file() {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let dir = std::env::temp_dir().join(unique_name("registry-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let sh = |script: &str| {
        let status = std::process::Command::new("bash")
            .arg("-ec")
            .arg(script)
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    };
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj /CN=kafkit-test-ca",
    );
    sh(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj /CN=localhost",
    );
    sh(
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext; \
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile ext",
    );

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let server =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls_graviola::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    let server = Arc::new(server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(conn) = rustls::ServerConnection::new(server.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if head.is_empty() {
                continue; // a refused handshake
            }
            let body = r#"{"compatibilityLevel":"FULL_TRANSITIVE"}"#;
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });

    let url = format!("https://localhost:{port}");
    let ca = dir.join("ca.pem");
    let trusted = SchemaRegistry::new(
        RegistryConfig::from_properties([
            ("schema.registry.url", url.as_str()),
            ("schema.registry.ssl.ca.location", ca.to_str().unwrap()),
            ("max.retries", "0"),
        ])
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        trusted.compatibility(None).await.unwrap(),
        Compatibility::FullTransitive
    );

    // The webpki roots do not know this CA: the handshake fails, typed as unreachable.
    let untrusted = SchemaRegistry::new(
        RegistryConfig::from_properties([
            ("schema.registry.url", url.as_str()),
            ("max.retries", "0"),
        ])
        .unwrap(),
    )
    .unwrap();
    let err = untrusted.compatibility(None).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
