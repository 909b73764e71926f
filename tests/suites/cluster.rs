//! The cluster's connection management against the real broker, through the fault proxy:
//! reconnect backoff, idle close, graceful shutdown.

use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, MetadataRequest};
use kafkit::io::cluster::{Cluster, ClusterConfig};
use kafkit::io::connection::{Connection, ConnectionConfig};
use kafkit::Error;
use kafkit_tests::kafka;
use kafkit_tests::proxy::{ProxyCluster, ProxyControl, ProxyStats};

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
