//! The cluster's connection management against the real broker, through the fault proxy:
//! reconnect backoff, idle close, graceful shutdown, metadata recovery (rebootstrap).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, MetadataRequest};
use kafkit::config::MetadataRecoveryStrategy;
use kafkit::io::cluster::{Cluster, ClusterConfig};
use kafkit::io::connection::{Connection, ConnectionConfig};
use kafkit::Error;
use kafkit_tests::kafka;
use kafkit_tests::proxy::{Proxy, ProxyCluster, ProxyControl, ProxyStats};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn cluster(bootstrap: &str, change: impl FnOnce(&mut ClusterConfig)) -> Cluster {
    let mut config = ClusterConfig::new(bootstrap);
    config.request_timeout = TIMEOUT;
    config.connection.connect_timeout = Duration::from_secs(5);
    change(&mut config);
    tokio::time::timeout(TIMEOUT, Cluster::connect(config))
        .await
        .expect("connect in time")
        .expect("connect through the proxy")
}

async fn wait(proxy: &ProxyControl, what: &str, condition: impl Fn(&ProxyStats) -> bool) {
    assert!(
        proxy.wait_for(Duration::from_secs(10), condition).await,
        "timed out waiting for {what}: {:?}",
        proxy.stats()
    );
}

/// The one broker's node id.
fn node(cluster: &Cluster) -> i32 {
    cluster
        .metadata()
        .brokers()
        .map(|b| b.node_id)
        .next()
        .expect("a broker")
}

async fn metadata(conn: &Connection) -> Result<(), Error> {
    let version = conn.version(ApiKey::Metadata)?;
    conn.send(
        &MetadataRequest::default().with_topics(Some(vec![])),
        version,
        TIMEOUT,
    )
    .await
    .map(|_| ())
}

#[tokio::test]
async fn a_refused_broker_is_retried_with_backoff_not_in_a_storm() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let cluster = cluster(&proxy.bootstrap(), |_| {}).await;
    let node = node(&cluster);
    metadata(&cluster.connection(node).await.unwrap())
        .await
        .unwrap();

    proxy.set_refuse(true);
    proxy.cut_all();
    wait(&proxy, "the cut connections to close", |s| {
        s.live_connections == 0
    })
    .await;
    let refused_before = proxy.stats().connections_refused;

    // A caller that asks every 5 ms for 3 s: the broker is tried only as the backoff allows
    // (50, 100, 200, 400, 800 ms, then ~1 s: about 7 attempts), every other call fails at once.
    let started = Instant::now();
    let (mut calls, mut backoffs) = (0u32, 0u32);
    while started.elapsed() < Duration::from_secs(3) {
        calls += 1;
        let asked = Instant::now();
        let err = cluster.connection(node).await.unwrap_err();
        assert!(err.is_retriable(), "{err:?}");
        if let Error::Backoff {
            until, failures, ..
        } = &err
        {
            assert!(!err.is_outcome_unknown(), "{err:?}");
            backoffs += 1;
            assert!(*failures >= 1);
            assert!(*until > asked);
            assert!(asked.elapsed() < Duration::from_millis(50), "not at once");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let attempts = proxy.stats().connections_refused - refused_before;
    assert!(
        (3..=12).contains(&attempts),
        "{attempts} attempts in 3 s ({calls} calls, {backoffs} backoffs)"
    );
    assert!(backoffs > calls / 2, "{backoffs} of {calls}");

    // Accepted again: the first attempt after the backoff (≤ 1 s) reconnects.
    proxy.set_refuse(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    let conn = loop {
        match cluster.connection(node).await {
            Ok(conn) => break conn,
            Err(Error::Backoff { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("{err:?}"),
        }
    };
    metadata(&conn).await.unwrap();

    // Success reset the schedule: the next failure is the first one again (≈ 50 ms).
    proxy.set_refuse(true);
    proxy.cut_all();
    wait(&proxy, "the cut connections to close", |s| {
        s.live_connections == 0
    })
    .await;
    let err = cluster.connection(node).await.unwrap_err();
    assert!(!matches!(err, Error::Backoff { .. }), "{err:?}");
    match cluster.connection(node).await.unwrap_err() {
        Error::Backoff {
            failures, until, ..
        } => {
            assert_eq!(failures, 1);
            assert!(until <= Instant::now() + Duration::from_millis(60));
        }
        other => panic!("{other:?}"),
    }
    proxy.set_refuse(false);
    cluster.shutdown(Instant::now() + TIMEOUT).await;
}

#[tokio::test]
async fn bootstrap_skips_a_backing_off_address() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let cluster = cluster(&proxy.bootstrap(), |_| {}).await;
    proxy.set_refuse(true);
    proxy.cut_all();
    wait(&proxy, "the cut connections to close", |s| {
        s.live_connections == 0
    })
    .await;
    let before = proxy.stats().connections_refused;
    let first = cluster.any_connection().await.unwrap_err();
    assert!(first.is_retriable(), "{first:?}");
    // Right after, every candidate is backing off: no new attempt, a typed error at once.
    let second = cluster.any_connection().await.unwrap_err();
    assert!(matches!(second, Error::Backoff { .. }), "{second:?}");
    assert_eq!(proxy.stats().connections_refused - before, 1);
    proxy.set_refuse(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.any_connection().await.unwrap();
    cluster.close();
}

#[tokio::test]
async fn idle_connections_close_and_the_next_request_reconnects() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let cluster = cluster(&proxy.bootstrap(), |c| {
        c.connections_max_idle = Some(Duration::from_millis(300));
    })
    .await;
    assert!(cluster.is_sweeping());
    let node = node(&cluster);
    let conn = cluster.connection(node).await.unwrap();
    metadata(&conn).await.unwrap();
    let accepted = proxy.stats().connections_accepted;
    assert!(proxy.stats().live_connections >= 1);

    // Unused for 300 ms: the sweep (every 150 ms) closes it, and the bootstrap one too.
    let idle_since = Instant::now();
    wait(&proxy, "the idle connections to close", |s| {
        s.live_connections == 0
    })
    .await;
    assert!(idle_since.elapsed() >= Duration::from_millis(250));
    assert!(conn.is_closed());
    // A holder of the closed connection gets a typed, retriable error; nothing was sent.
    let err = metadata(&conn).await.unwrap_err();
    assert!(matches!(err, Error::IdleClosed { .. }), "{err:?}");
    assert!(err.is_retriable() && !err.is_outcome_unknown());

    // The next request through the cluster reconnects transparently.
    let conn = cluster.connection(node).await.unwrap();
    metadata(&conn).await.unwrap();
    assert!(proxy.stats().connections_accepted > accepted);

    // A request outstanding longer than the idle limit keeps its connection open.
    proxy.delay_responses(Duration::from_millis(800));
    metadata(&conn).await.unwrap();
    assert!(!conn.is_closed());
    proxy.delay_responses(Duration::ZERO);
    cluster.shutdown(Instant::now() + TIMEOUT).await;
    assert!(!cluster.is_sweeping());
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight_then_refuses() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let cluster = cluster(&proxy.bootstrap(), |_| {}).await;
    let node = node(&cluster);
    let conn = cluster.connection(node).await.unwrap();
    metadata(&conn).await.unwrap();
    let before = proxy.stats().requests_of(ApiKey::Metadata);

    proxy.delay_responses(Duration::from_millis(500));
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { metadata(&conn).await })
        })
        .collect();
    wait(&proxy, "the requests to reach the proxy", |s| {
        s.requests_of(ApiKey::Metadata) >= before + 5
    })
    .await;
    assert_eq!(conn.in_flight(), 5);

    let started = Instant::now();
    cluster.shutdown(Instant::now() + TIMEOUT).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    for request in in_flight {
        request.await.unwrap().unwrap();
    }
    assert!(conn.is_closed() && conn.is_terminated());
    assert!(!cluster.is_sweeping());

    let err = metadata(&conn).await.unwrap_err();
    assert!(
        matches!(err, Error::ShutDown { broker: Some(_) }),
        "{err:?}"
    );
    assert!(!err.is_retriable() && !err.is_outcome_unknown());
    let err = cluster.connection(node).await.unwrap_err();
    assert!(matches!(err, Error::ShutDown { broker: None }), "{err:?}");
    let err = cluster.any_connection().await.unwrap_err();
    assert!(matches!(err, Error::ShutDown { broker: None }), "{err:?}");
    wait(&proxy, "the sockets to close", |s| s.live_connections == 0).await;
}

#[tokio::test]
async fn shutdown_deadline_fails_what_is_still_in_flight() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let cluster = cluster(&proxy.bootstrap(), |_| {}).await;
    let conn = cluster.connection(node(&cluster)).await.unwrap();
    metadata(&conn).await.unwrap();

    proxy.stall();
    let request = {
        let conn = conn.clone();
        tokio::spawn(async move { metadata(&conn).await })
    };
    let deadline = Instant::now() + Duration::from_millis(300);
    while conn.in_flight() == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    cluster.shutdown(deadline).await;
    // The deadline, plus at most the grace for the socket tasks.
    assert!(started.elapsed() < Duration::from_millis(1_500));
    let err = request.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed { .. }), "{err:?}");
    assert!(err.is_outcome_unknown());
    assert!(conn.is_terminated());
    proxy.resume();
    wait(&proxy, "the sockets to close", |s| s.live_connections == 0).await;
}

#[tokio::test]
async fn close_ends_the_socket_tasks_while_clones_live() {
    let broker = kafka().bootstrap.split(',').next().unwrap().to_owned();
    let conn = Connection::connect(&broker, &ConnectionConfig::default())
        .await
        .unwrap();
    let clone = conn.clone();
    metadata(&clone).await.unwrap();
    conn.close();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !clone.is_terminated() {
        assert!(Instant::now() < deadline, "socket tasks still running");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = metadata(&clone).await.unwrap_err();
    assert!(matches!(err, Error::ShutDown { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_waits_out_a_refusing_broker_without_a_storm() {
    use kafkit::admin::{Admin, NewTopic};
    use kafkit::config::ProducerConfig;
    use kafkit::producer::{Producer, ProducerRecord};

    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = kafkit_tests::unique_name("cluster-refuse");
    admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();
    let config = ProducerConfig::builder()
        .bootstrap_servers([proxy.bootstrap()])
        .linger(Duration::from_millis(1))
        .reconnect_backoff(Duration::from_millis(50))
        .reconnect_backoff_max(Duration::from_millis(500))
        .request_timeout(Duration::from_secs(10))
        .delivery_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).value("before"))
        .await
        .unwrap()
        .await
        .unwrap();

    proxy.set_refuse(true);
    proxy.cut_all();
    wait(&proxy, "the cut connections to close", |s| {
        s.live_connections == 0
    })
    .await;
    let refused_before = proxy.stats().connections_refused;
    let mut deliveries = Vec::new();
    for i in 0..20 {
        let record = ProducerRecord::new(&topic).value(format!("during-{i}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    // 2 s of a refusing broker, the backoff capped at 500 ms: about 7 attempts (per address
    // and path), not one per retry of every batch and metadata refresh.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = proxy.stats().connections_refused - refused_before;
    assert!((2..=16).contains(&attempts), "{attempts} attempts in 2 s");

    proxy.set_refuse(false);
    for delivery in deliveries {
        tokio::time::timeout(Duration::from_secs(20), delivery)
            .await
            .expect("delivered after the broker accepts again")
            .unwrap();
    }
    producer.close(TIMEOUT).await.unwrap();
    admin.delete_topics(&[&topic]).await.unwrap();
}

// Metadata recovery (KIP-899 / KIP-1102). The scenario: the client bootstraps through a plain
// TCP forwarder (a load balancer, say: it rewrites nothing) in front of a proxy `known`, which
// advertises itself, so the metadata names `known` as the broker. Then `known` stops
// answering and the forwarder is pointed at the real broker: only the bootstrap address can
// reach the cluster.

/// A plain TCP forwarder whose upstream can be switched; counts the connections it accepts.
/// Dropping it closes the listener and every connection.
struct Forwarder {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Forwarder {
    async fn start(upstream: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let upstream = Arc::new(Mutex::new(upstream));
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let upstream = upstream.clone();
            let accepted = accepted.clone();
            async move {
                // Owned by the accept loop: aborting it aborts every connection.
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((mut client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let to = *upstream.lock().unwrap_or_else(|p| p.into_inner());
                    connections.spawn(async move {
                        let connect = TcpStream::connect(to);
                        if let Ok(Ok(mut server)) = tokio::time::timeout(TIMEOUT, connect).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    while connections.try_join_next().is_some() {}
                }
            }
        });
        Forwarder {
            addr,
            upstream,
            accepted,
            task,
        }
    }

    /// Where connections accepted from now on go.
    fn switch(&self, to: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Recovery {
    /// The real broker.
    broker: SocketAddr,
    /// The broker as the metadata names it.
    known: Proxy,
    /// `bootstrap.servers`.
    bootstrap: Forwarder,
    cluster: Cluster,
}

/// A cluster bootstrapped through the forwarder, whose metadata names `known` only.
async fn recovery(change: impl FnOnce(&mut ClusterConfig)) -> Recovery {
    let broker = kafka()
        .bootstrap
        .split(',')
        .next()
        .and_then(|a| a.trim().to_socket_addrs().ok())
        .and_then(|mut addrs| addrs.next())
        .expect("the shared broker's address");
    let known = Proxy::start(broker).await;
    let bootstrap = Forwarder::start(known.addr()).await;
    let cluster = cluster(&bootstrap.addr.to_string(), change).await;
    assert_eq!(addresses(&cluster), [known.bootstrap()]);
    Recovery {
        broker,
        known,
        bootstrap,
        cluster,
    }
}

fn addresses(cluster: &Cluster) -> Vec<String> {
    cluster.metadata().brokers().map(|b| b.address()).collect()
}

/// Refreshes the metadata until it succeeds or `within` passes; the last error if it never did.
async fn refresh_until_ok(cluster: &Cluster, within: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + within;
    loop {
        let attempt = tokio::time::timeout(TIMEOUT, cluster.refresh_metadata(Some(&[]))).await;
        let err = match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => err,
            Err(_) => panic!("a metadata refresh outlived {TIMEOUT:?}"),
        };
        if Instant::now() >= deadline {
            return Err(err);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rebootstrap_finds_the_cluster_again_through_the_bootstrap_address() {
    // The strategy and trigger as users get them (rebootstrap, 300 s).
    let r = recovery(|_| {}).await;
    assert_eq!(
        r.cluster.config().metadata_recovery_strategy,
        MetadataRecoveryStrategy::Rebootstrap
    );
    let before = r.bootstrap.accepted();
    r.bootstrap.switch(r.broker);
    r.known.set_refuse(true);
    r.known.cut_all();
    refresh_until_ok(&r.cluster, Duration::from_secs(20))
        .await
        .expect("the bootstrap address reaches the cluster");
    assert!(r.bootstrap.accepted() > before, "no bootstrap connection");
    // The metadata now names the broker as it advertises itself.
    assert_eq!(addresses(&r.cluster), [r.broker.to_string()]);
}

#[tokio::test]
async fn with_strategy_none_the_bootstrap_address_is_not_used_again() {
    let r = recovery(|c| c.metadata_recovery_strategy = MetadataRecoveryStrategy::None).await;
    let before = r.bootstrap.accepted();
    r.bootstrap.switch(r.broker);
    r.known.set_refuse(true);
    r.known.cut_all();
    let err = refresh_until_ok(&r.cluster, Duration::from_secs(3))
        .await
        .expect_err("only the dead known broker is tried");
    assert!(err.is_retriable(), "{err:?}");
    assert_eq!(
        r.bootstrap.accepted(),
        before,
        "the bootstrap list was used"
    );
    assert!(
        r.known.stats().connections_refused > 0,
        "{:?}",
        r.known.stats()
    );
    assert_eq!(addresses(&r.cluster), [r.known.bootstrap()]);
}

#[tokio::test]
async fn rebootstrap_after_the_trigger_time_skips_a_silent_known_broker() {
    // `known` accepts connections but answers nothing: without the trigger, each refresh
    // would wait out a request timeout, then a 30 s connection setup to `known` again.
    let r = recovery(|c| {
        c.request_timeout = Duration::from_millis(1500);
        c.connection.connect_timeout = Duration::from_secs(30);
        c.connect_timeout_max = Duration::from_secs(30);
        c.metadata_recovery_rebootstrap_trigger = Duration::from_millis(500);
    })
    .await;
    let before = r.bootstrap.accepted();
    r.bootstrap.switch(r.broker);
    r.known.stall();
    let known_accepted = r.known.stats().connections_accepted;
    refresh_until_ok(&r.cluster, Duration::from_secs(8))
        .await
        .expect("rebootstrapped through the bootstrap address");
    r.known.resume();
    assert!(r.bootstrap.accepted() > before, "no bootstrap connection");
    // Straight to the bootstrap list: no new connection to the known broker.
    assert_eq!(r.known.stats().connections_accepted, known_accepted);
    assert_eq!(addresses(&r.cluster), [r.broker.to_string()]);
}

/// Whether the broker answers Metadata v13 (the first with a top-level error code).
async fn metadata_v13(cluster: &Cluster) -> bool {
    let conn = cluster.any_connection().await.expect("a connection");
    conn.version(ApiKey::Metadata).expect("Metadata") >= 13
}

#[tokio::test]
async fn rebootstrap_required_sends_the_client_to_the_bootstrap_list_at_once() {
    let r = recovery(|_| {}).await;
    if !metadata_v13(&r.cluster).await {
        eprintln!("skipped: the broker speaks Metadata below v13 (no top-level error code)");
        return;
    }
    let before = r.bootstrap.accepted();
    r.known.fail_metadata(129, 1);
    // One call: code 129, rebootstrap, the request again through the bootstrap address.
    tokio::time::timeout(TIMEOUT, r.cluster.refresh_metadata(Some(&[])))
        .await
        .expect("in time")
        .expect("answered after the rebootstrap");
    assert_eq!(r.known.stats().metadata_errors_injected, 1);
    assert_eq!(
        r.bootstrap.accepted(),
        before + 1,
        "not through the bootstrap list"
    );
}

#[tokio::test]
async fn rebootstrap_required_fails_the_refresh_with_strategy_none() {
    let r = recovery(|c| c.metadata_recovery_strategy = MetadataRecoveryStrategy::None).await;
    if !metadata_v13(&r.cluster).await {
        eprintln!("skipped: the broker speaks Metadata below v13 (no top-level error code)");
        return;
    }
    let before = r.bootstrap.accepted();
    r.known.fail_metadata(129, 1);
    let err = tokio::time::timeout(TIMEOUT, r.cluster.refresh_metadata(Some(&[])))
        .await
        .expect("in time")
        .expect_err("REBOOTSTRAP_REQUIRED");
    assert!(err.to_string().contains("RebootstrapRequired"), "{err}");
    assert_eq!(r.bootstrap.accepted(), before);
    // The next refresh goes on as before.
    tokio::time::timeout(TIMEOUT, r.cluster.refresh_metadata(Some(&[])))
        .await
        .expect("in time")
        .expect("answered");
}
