//! An HTTP service that audits itself (the platform producer library's Flask/Express
//! integration, in axum): a middleware — a tower layer around every route — publishes an
//! `audit.api_call` event per request (method, endpoint, status, latency, sizes, user from
//! `X-User-ID`, caller's address), and a timer publishes `system.service_health` events
//! (latency and error rate of the last interval). Requests never wait for Kafka: the
//! middleware hands the event to a bounded queue that one task publishes from (a full queue
//! drops the event and counts it, rather than slowing the service down).
//!
//! The example starts the service on 127.0.0.1 (a free port), calls it a few times with a
//! plain HTTP client, stops it gracefully and prints what was published.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 SCHEMA_REGISTRY_URL=http://127.0.0.1:8081 \
//!   cargo run -p kafkit-events --example api_audit
//! ```

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use axum::extract::{ConnectInfo, MatchedPath, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use common::BoxError;
use kafkit_events::catalog::audit::{api_call, ApiCall};
use kafkit_events::catalog::system::{service_health, HealthStatus};
use kafkit_events::producer::EventProducer;
use kafkit_events::Event;
use tokio::sync::{mpsc, watch};

const SERVICE: &str = "orders-api";
const NAMESPACE: &str = "data-platform";

/// What the audit middleware shares: the queue to the publisher, and the counters the health
/// timer reads.
#[derive(Clone)]
struct Audit {
    queue: mpsc::Sender<Event<ApiCall>>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    server_errors: AtomicU64,
    latency_us: AtomicU64,
    dropped: AtomicU64,
}

/// The middleware: times the request, lets the route answer, then queues the API-call event.
async fn audit(
    State(audit): State<Audit>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    // The route's template (`/api/reports/{id}`), not the raw path: one endpoint, one series.
    let endpoint = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    let user = request
        .headers()
        .get("x-user-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_size = request.body().size_hint().exact().unwrap_or(0);

    let response = next.run(request).await;

    let latency = started.elapsed();
    let status = response.status();
    let response_size = response.body().size_hint().exact().unwrap_or(0);
    let counters = &audit.counters;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters.latency_us.fetch_add(
        u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    if status.is_server_error() {
        counters.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    let event = api_call(
        user.as_deref(),
        Some(peer.ip()),
        SERVICE,
        endpoint,
        method,
        status.as_u16(),
        latency,
    )
    .map(|call| {
        call.with_sizes(
            i64::try_from(request_size).unwrap_or(i64::MAX),
            i64::try_from(response_size).unwrap_or(i64::MAX),
        )
    });
    if audit.queue.try_send(event).is_err() {
        counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
    response
}

// The service's routes.
async fn get_data() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"success"}"#,
    )
}

async fn create_order(body: String) -> impl IntoResponse {
    (
        StatusCode::CREATED,
        format!(r#"{{"accepted":{}}}"#, body.len()),
    )
}

async fn get_report(Path(id): Path<u32>) -> impl IntoResponse {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("report {id}: report store unavailable"),
    )
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    common::bounded("api_audit", Duration::from_secs(60), run()).await
}

async fn run() -> Result<(), BoxError> {
    let config = common::config(SERVICE)?;
    let admin = common::ensure(&config, &["audit-api-calls", "system-health"]).await?;
    admin.close(Duration::from_secs(5)).await;
    let producer = Arc::new(EventProducer::new(&config).await?);

    // The publisher: one task draining the audit queue (bounded: 1,000 events).
    let (queue, mut queued) = mpsc::channel::<Event<ApiCall>>(1_000);
    let publisher = tokio::spawn({
        let producer = producer.clone();
        async move {
            while let Some(event) = queued.recv().await {
                let (method, endpoint) = (event.data.method.clone(), event.data.endpoint.clone());
                match producer.publish(event).await {
                    Ok(at) => println!(
                        "  audit: {method} {endpoint} → {}-{}@{}",
                        at.topic, at.partition, at.offset
                    ),
                    Err(e) => eprintln!("  audit: {method} {endpoint} not published: {e}"),
                }
            }
        }
    });
    let counters = Arc::new(Counters::default());

    // The health timer: every 500 ms, the last interval's mean latency and error rate.
    let (stop, mut stopped) = watch::channel(false);
    let health = tokio::spawn({
        let (producer, counters) = (producer.clone(), counters.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.tick().await;
            let (mut last_requests, mut last_errors, mut last_latency) = (0, 0, 0);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let requests = counters.requests.load(Ordering::Relaxed);
                let errors = counters.server_errors.load(Ordering::Relaxed);
                let latency = counters.latency_us.load(Ordering::Relaxed);
                let n = requests - last_requests;
                let error_rate = if n == 0 {
                    0.0
                } else {
                    (errors - last_errors) as f64 / n as f64
                };
                let mean =
                    Duration::from_micros((latency - last_latency).checked_div(n).unwrap_or(0));
                let status = if errors == last_errors {
                    HealthStatus::Healthy
                } else if error_rate < 0.5 {
                    HealthStatus::Degraded
                } else {
                    HealthStatus::Unhealthy
                };
                (last_requests, last_errors, last_latency) = (requests, errors, latency);
                let event = service_health(SERVICE, NAMESPACE, status, mean, error_rate);
                match producer.publish(event).await {
                    Ok(at) => println!(
                        "  health: {status:?}, {n} requests, error rate {error_rate:.2} → {}-{}@{}",
                        at.topic, at.partition, at.offset
                    ),
                    Err(e) => eprintln!("  health: not published: {e}"),
                }
            }
        }
    });

    // The service: routes, the audit middleware around all of them, a free port on loopback.
    let app = Router::new()
        .route("/api/data", get(get_data))
        .route("/api/orders", post(create_order))
        .route("/api/reports/{id}", get(get_report))
        .layer(middleware::from_fn_with_state(
            Audit {
                queue,
                counters: counters.clone(),
            },
            audit,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (shutdown, shutdown_signal) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = shutdown_signal.await;
        })
        .await
    });
    println!("{SERVICE} listening on http://{addr}");

    // Call it: a plain HTTP client (reqwest; kafkit-events builds it without a bundled TLS
    // provider, so it is given rustls with graviola even for plain HTTP).
    let client = http_client()?;
    let base = format!("http://{addr}");
    let calls = [
        ("GET", "/api/data", Some("user-123")),
        ("POST", "/api/orders", Some("user-123")),
        ("GET", "/api/data", Some("user-456")),
        ("GET", "/api/reports/42", Some("user-456")),
        ("GET", "/api/unknown", None),
        ("GET", "/api/data", None),
    ];
    for (i, (method, path, user)) in calls.iter().enumerate() {
        let url = format!("{base}{path}");
        let mut request = match *method {
            "POST" => client.post(&url).body(r#"{"sku":"A-1","qty":2}"#),
            _ => client.get(&url),
        };
        if let Some(user) = user {
            request = request.header("X-User-ID", *user);
        }
        let response = request.send().await?;
        println!(
            "{method} {path} as {} → {}",
            user.unwrap_or("anonymous"),
            response.status()
        );
        if i == 2 {
            // Let the health timer report between the calls.
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Stop: the server (gracefully; the middleware's queue closes with it), the health timer,
    // then the publisher once its queue is drained.
    let _ = shutdown.send(());
    server.await??;
    let _ = stop.send(true);
    health.await?;
    publisher.await?;
    producer.flush(Duration::from_secs(10)).await?;
    let stats = producer.stats();
    println!(
        "published: {} API-call events, {} health events ({} failed, {} dropped on a full queue)",
        stats
            .by_event_type
            .get("audit.api_call")
            .map_or(0, |c| c.sent),
        stats
            .by_event_type
            .get("system.service_health")
            .map_or(0, |c| c.sent),
        stats.messages_failed,
        counters.dropped.load(Ordering::Relaxed)
    );
    let audited = stats
        .by_event_type
        .get("audit.api_call")
        .map_or(0, |c| c.sent);
    if audited != calls.len() as u64 {
        return Err(format!("{audited} API-call events for {} calls", calls.len()).into());
    }
    match Arc::try_unwrap(producer) {
        Ok(producer) => producer.close().await?,
        Err(_) => return Err("the producer is still shared".into()),
    }
    Ok(())
}

/// reqwest with rustls over graviola (kafkit's TLS settings; no certificates needed here).
fn http_client() -> Result<reqwest::Client, BoxError> {
    let mut tls = kafkit::config::TlsConfig::new();
    if rustls::crypto::CryptoProvider::get_default().is_none()
        && kafkit::tls::graviola_cpu_supported()
    {
        tls = tls.crypto_provider(Arc::new(rustls_graviola::default_provider()));
    }
    let tls = kafkit::tls::client_config(&tls)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .build()?)
}
