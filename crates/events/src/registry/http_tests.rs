//! The HTTP backend against a loopback server written here, answering canned responses:
//! retries, typed auth errors, auth headers, an unreachable registry, URL failover.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A loopback HTTP server answering its canned `(status, body)` responses in order (the last
/// one repeats), recording each request's head and body.
struct Canned {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn serve(responses: Vec<(u16, &'static str)>) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((mut socket, _)) = listener.accept().await {
            let (status, body) = responses[n.min(responses.len() - 1)];
            n += 1;
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then Content-Length bytes of body (bounded: test input).
            loop {
                let read = match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                request.extend_from_slice(&buf[..read]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length || request.len() > 1 << 20 {
                        break;
                    }
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&request).to_string());
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    Canned { url, seen }
}

impl Canned {
    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A URL where nothing listens (a port bound, then released).
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn fast(urls: Vec<String>) -> RegistryConfig {
    RegistryConfig {
        retry_backoff: Duration::from_millis(10),
        retry_max_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(10),
        ..RegistryConfig::new(urls)
    }
}

const SCHEMA_7: &str = r#"{"schema":"{\"type\":\"string\"}"}"#;

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = serve(vec![
        (503, r#"{"error_code":50301,"message":"busy"}"#),
        (200, SCHEMA_7),
    ])
    .await;
    let registry = SchemaRegistry::new(fast(vec![server.url.clone()])).unwrap();
    let found = registry.schema_by_id(7).await.unwrap();
    assert_eq!(found.id, 7);
    assert_eq!(found.schema.schema_type, SchemaType::Avro);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(registry.stats().requests, 2);
    let head = &server.requests()[0];
    assert!(head.starts_with("GET /schemas/ids/7 "), "{head}");
    assert!(head.to_ascii_lowercase().contains(
        "accept: application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
    ));
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let server = serve(vec![(500, r#"{"error_code":50001,"message":"broken"}"#)]).await;
    let config = RegistryConfig {
        max_retries: 2,
        ..fast(vec![server.url.clone()])
    };
    let err = SchemaRegistry::new(config)
        .unwrap()
        .schema_by_id(1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Http {
                status: 500,
                code: Some(50001),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retriable());
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn unauthorized_and_forbidden_are_typed_and_not_retried() {
    let server = serve(vec![(401, r#"{"error_code":401,"message":"who?"}"#)]).await;
    let err = SchemaRegistry::new(fast(vec![server.url.clone()]))
        .unwrap()
        .latest("s")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(!err.is_retriable());
    assert_eq!(server.requests().len(), 1);

    let server = serve(vec![(403, r#"{"error_code":40301,"message":"no"}"#)]).await;
    let err = SchemaRegistry::new(fast(vec![server.url.clone()]))
        .unwrap()
        .register("s", &Schema::avro(r#""string""#))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn conflict_and_invalid_are_typed() {
    let server = serve(vec![(
        409,
        r#"{"error_code":409,"message":"incompatible"}"#,
    )])
    .await;
    let err = SchemaRegistry::new(fast(vec![server.url.clone()]))
        .unwrap()
        .register("a/b", &Schema::json("{}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Incompatible { ref subject, .. } if subject == "a/b"),
        "{err:?}"
    );
    let request = &server.requests()[0];
    assert!(
        request.starts_with("POST /subjects/a%2Fb/versions "),
        "{request}"
    );
    assert!(request
        .to_ascii_lowercase()
        .contains("content-type: application/vnd.schemaregistry.v1+json"));
    assert!(request.contains(r#""schemaType":"JSON""#), "{request}");

    let server = serve(vec![(
        422,
        r#"{"error_code":42201,"message":"bad schema"}"#,
    )])
    .await;
    let err = SchemaRegistry::new(fast(vec![server.url.clone()]))
        .unwrap()
        .register("s", &Schema::avro("{"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Invalid { code: 42201, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn basic_and_bearer_headers_are_sent() {
    let server = serve(vec![(200, r#"{"id":3}"#)]).await;
    let config = RegistryConfig::from_properties([
        ("schema.registry.url", server.url.as_str()),
        ("basic.auth.credentials.source", "USER_INFO"),
        ("basic.auth.user.info", "alice:secret"),
    ])
    .unwrap();
    assert!(!format!("{config:?}").contains("secret"));
    let registry = SchemaRegistry::new(config).unwrap();
    assert!(!format!("{registry:?}").contains("secret"));
    registry
        .register("s", &Schema::avro(r#""string""#))
        .await
        .unwrap();
    // base64("alice:secret")
    assert!(server.requests()[0]
        .to_ascii_lowercase()
        .contains("authorization: basic ywxpy2u6c2vjcmv0"));

    let server = serve(vec![(200, r#"{"id":3}"#)]).await;
    let config = RegistryConfig::from_properties([
        ("schema.registry.url", server.url.as_str()),
        ("bearer.auth.credentials.source", "STATIC_TOKEN"),
        ("bearer.auth.token", "t0ken"),
    ])
    .unwrap();
    SchemaRegistry::new(config)
        .unwrap()
        .register("s", &Schema::avro(r#""string""#))
        .await
        .unwrap();
    assert!(
        server.requests()[0].contains("authorization: Bearer t0ken")
            || server.requests()[0].contains("Authorization: Bearer t0ken")
    );

    // User info in the URL becomes basic auth.
    let server = serve(vec![(200, r#"{"id":3}"#)]).await;
    let url = server.url.replace("http://", "http://bob:pw@");
    SchemaRegistry::new(fast(vec![url]))
        .unwrap()
        .register("s", &Schema::avro(r#""string""#))
        .await
        .unwrap();
    // base64("bob:pw")
    assert!(server.requests()[0]
        .to_ascii_lowercase()
        .contains("authorization: basic ym9ionb3"));
}

#[tokio::test]
async fn unreachable_within_the_deadline() {
    let config = RegistryConfig {
        max_retries: 100,
        retry_backoff: Duration::from_millis(100),
        retry_max_backoff: Duration::from_millis(400),
        deadline: Duration::from_secs(2),
        ..RegistryConfig::new([dead_url().await, dead_url().await])
    };
    let registry = SchemaRegistry::new(config).unwrap();
    let start = Instant::now();
    let err = registry.schema_by_id(1).await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(err.is_retriable());
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    // Retried (both URLs per round), not given up at once.
    assert!(registry.stats().requests > 2, "{:?}", registry.stats());
}

#[tokio::test]
async fn second_url_used_when_the_first_is_dead() {
    let server = serve(vec![(200, r#"{"compatibilityLevel":"FULL"}"#)]).await;
    let registry = SchemaRegistry::new(fast(vec![dead_url().await, server.url.clone()])).unwrap();
    assert_eq!(
        registry.compatibility(None).await.unwrap(),
        Compatibility::Full
    );
    assert_eq!(server.requests().len(), 1);
    assert!(server.requests()[0].starts_with("GET /config "));
}

#[tokio::test]
async fn hostile_bodies_are_typed_errors() {
    let server = serve(vec![(200, r#"{"schema": 12}"#)]).await;
    let err = SchemaRegistry::new(fast(vec![server.url.clone()]))
        .unwrap()
        .schema_by_id(1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidResponse { .. }),
        "{err:?}"
    );
    let server = serve(vec![(200, r#"{"schema":"x","schemaType":"XML"}"#)]).await;
    let err = SchemaRegistry::new(fast(vec![server.url.clone()]))
        .unwrap()
        .schema_by_id(1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidResponse { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_silent_registry_is_bounded_by_the_request_timeout_and_deadline() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = RegistryConfig {
        request_timeout: Duration::from_millis(300),
        deadline: Duration::from_millis(1500),
        max_retries: 50,
        ..fast(vec![url])
    };
    let registry = SchemaRegistry::new(config).unwrap();
    let start = Instant::now();
    let err = registry.latest("s").await.unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err:?}");
    assert!(err.is_retriable());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(registry.stats().requests >= 2, "{:?}", registry.stats());
}

#[test]
fn a_missing_ca_file_is_a_config_error() {
    let config = RegistryConfig {
        ca_location: Some("/nonexistent/ca.pem".into()),
        ..RegistryConfig::new(["https://127.0.0.1:1"])
    };
    let err = SchemaRegistry::new(config).unwrap_err();
    assert!(matches!(err, RegistryError::Config { .. }), "{err:?}");
}
