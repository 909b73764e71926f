//! The fault-injection proxy in front of the real broker: every client connection goes through
//! it, and each fault does what it says.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeClusterRequest, FetchRequest, FindCoordinatorRequest,
    MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafkit::admin::{Admin, NewTopic, OffsetSpec};
use kafkit::io::cluster::{Cluster, ClusterConfig};
use kafkit::io::connection::Connection;
use kafkit::Error;
use kafkit_tests::proxy::{LostResponse, Proxy, ProxyCluster, ProxyControl};
use kafkit_tests::{kafka, unique_name};

/// A client through `bootstrap` whose requests time out after `request_timeout`.
async fn admin(bootstrap: &str, request_timeout: Duration) -> Admin {
    let mut config = ClusterConfig::new(bootstrap);
    config.request_timeout = request_timeout;
    config.connection.connect_timeout = Duration::from_secs(5);
    Admin::from_cluster(
        Cluster::connect(config)
            .await
            .expect("connect through the proxy"),
    )
}

fn listener_addresses(proxy: &ProxyCluster) -> BTreeSet<String> {
    proxy.listeners().values().map(|a| a.to_string()).collect()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

async fn create_topic(admin: &Admin, partitions: i32) -> String {
    let topic = unique_name("proxy");
    admin
        .create_topics(&[NewTopic::new(&topic, partitions, 1)])
        .await
        .expect("create a topic through the proxy");
    topic
}

/// A connection to the leader of `topic`-0.
async fn leader(admin: &Admin, topic: &str) -> Connection {
    admin
        .cluster()
        .refresh_metadata(Some(&[topic]))
        .await
        .unwrap();
    let leader = admin
        .cluster()
        .metadata()
        .leader(topic, 0)
        .map(|b| b.node_id)
        .expect("a leader");
    admin.cluster().connection(leader).await.unwrap()
}

/// One uncompressed v2 batch with one record.
fn batch(value: &'static [u8]) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::from_static(value)),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Produces `value` to `topic`-0 with acks=all, without idempotence.
async fn produce(conn: &Connection, topic: &str, value: &'static [u8]) -> Result<(), Error> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(value)))])]);
    let version = conn.version(ApiKey::Produce)?;
    let response = conn
        .send(&request, version, Duration::from_secs(10))
        .await?;
    for t in &response.responses {
        for p in &t.partition_responses {
            Error::check(ApiKey::Produce, p.error_code, None)?;
        }
    }
    Ok(())
}

async fn latest_offset(admin: &Admin, topic: &str) -> i64 {
    admin
        .list_offsets(topic, &[0], OffsetSpec::Latest)
        .await
        .unwrap()[0]
        .offset
}

/// Waits for the counters, failing the test with `what` when they do not get there in 10 s.
async fn wait(
    control: &ProxyControl,
    what: &str,
    condition: impl Fn(&kafkit_tests::proxy::ProxyStats) -> bool,
) {
    assert!(
        control.wait_for(Duration::from_secs(10), condition).await,
        "timed out waiting for {what}: {:?}",
        control.stats()
    );
}

#[tokio::test]
async fn clients_learn_only_proxy_addresses_and_work() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let ours = listener_addresses(&proxy);
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(15)).await;

    let brokers = admin.describe_cluster().await.unwrap();
    assert!(!brokers.is_empty());
    // One listener per broker, none of them a real broker's address.
    assert_eq!(ours.len(), brokers.len(), "{ours:?} for {brokers:?}");
    for real in kafka().bootstrap.split(',') {
        assert!(!ours.contains(real.trim()), "{real} is a real broker");
    }
    for b in &brokers {
        assert_eq!(
            proxy.listener(b.node_id).map(|a| a.to_string()),
            Some(b.address())
        );
        assert!(
            ours.contains(&b.address()),
            "{} is not a proxy listener: {ours:?}",
            b.address()
        );
    }

    // Enough partitions to have one led by every broker (each asked through its listener).
    let partitions: Vec<i32> = (0..2 * brokers.len() as i32).collect();
    let topic = create_topic(&admin, partitions.len() as i32).await;
    let described = admin.describe_topics(&[&topic]).await.unwrap();
    assert_eq!(described[0].partitions.len(), partitions.len());
    let offsets = admin
        .list_offsets(&topic, &partitions, OffsetSpec::Latest)
        .await
        .unwrap();
    assert!(offsets.iter().all(|o| o.offset == 0), "{offsets:?}");
    // Every broker leads some partition, and was reached through its own listener.
    let leaders: BTreeSet<String> = described[0]
        .partitions
        .iter()
        .filter_map(|p| p.leader)
        .filter_map(|id| admin.cluster().metadata().broker(id).map(|b| b.address()))
        .collect();
    let accepted = proxy.stats().accepted_by_listener;
    for leader in &leaders {
        let addr: SocketAddr = leader.parse().unwrap();
        assert!(
            accepted.get(&addr).copied().unwrap_or(0) >= 1,
            "{leader}: {accepted:?}"
        );
    }

    // DescribeCluster and FindCoordinator name brokers too.
    let conn = admin.cluster().any_connection().await.unwrap();
    let version = conn.version(ApiKey::DescribeCluster).unwrap();
    let cluster = conn
        .send(
            &DescribeClusterRequest::default(),
            version,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(!cluster.brokers.is_empty());
    for b in &cluster.brokers {
        let address = format!("{}:{}", b.host.as_str(), b.port);
        assert!(ours.contains(&address), "DescribeCluster: {address}");
    }
    let version = conn.version(ApiKey::FindCoordinator).unwrap();
    let group = unique_name("proxy-group");
    let request = if version >= 4 {
        FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![StrBytes::from_string(group.clone())])
    } else {
        FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.clone()))
    };
    // The coordinator may need a moment while __consumer_offsets is created.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = conn
            .send(&request, version, Duration::from_secs(10))
            .await
            .unwrap();
        let (code, address) = match found.coordinators.first() {
            Some(c) => (c.error_code, format!("{}:{}", c.host.as_str(), c.port)),
            None => (
                found.error_code,
                format!("{}:{}", found.host.as_str(), found.port),
            ),
        };
        if code == 0 {
            assert!(ours.contains(&address), "FindCoordinator: {address}");
            break;
        }
        assert!(Instant::now() < deadline, "no coordinator: error {code}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let stats = proxy.stats();
    assert_eq!(stats.rewrite_failures, 0, "{stats:?}");
    assert!(stats.responses_rewritten >= 3, "{stats:?}");
    assert!(stats.requests_of(ApiKey::Metadata) >= 1);
    assert!(stats.requests_of(ApiKey::CreateTopics) == 1);
    assert!(stats.connections_accepted >= 1);
    assert!(stats.bytes_to_broker > 0 && stats.bytes_to_client > 0);
    admin.delete_topics(&[&topic]).await.unwrap();
}

#[tokio::test]
async fn single_broker_proxy_rewrites_to_itself() {
    let first = kafka().bootstrap.split(',').next().unwrap();
    let upstream: SocketAddr = first.parse().expect("the harness gives ip:port");
    let proxy = Proxy::start(upstream).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(15)).await;
    let brokers = admin.describe_cluster().await.unwrap();
    assert!(
        brokers.iter().all(|b| b.address() == proxy.bootstrap()),
        "{brokers:?}"
    );
    if brokers.len() > 1 {
        // Every node now points at one broker: requests for partitions led by the others
        // would be refused. `ProxyCluster` is the proxy for that case.
        eprintln!(
            "single-broker proxy in front of {} brokers: rewriting checked only",
            brokers.len()
        );
        return;
    }
    let topic = create_topic(&admin, 1).await;
    assert_eq!(latest_offset(&admin, &topic).await, 0);
    assert_eq!(proxy.stats().rewrite_failures, 0);
}

#[tokio::test]
async fn cut_all_fails_in_flight_requests_and_the_next_call_reconnects() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(15)).await;
    let conn = admin.cluster().any_connection().await.unwrap();
    let before = proxy.stats();

    // A request held in the proxy is in flight when the connection is cut.
    proxy.stall();
    let in_flight = {
        let conn = conn.clone();
        tokio::spawn(async move {
            let version = conn.version(ApiKey::Metadata)?;
            conn.send(
                &MetadataRequest::default().with_topics(Some(vec![])),
                version,
                Duration::from_secs(15),
            )
            .await
        })
    };
    wait(&proxy, "the request to reach the proxy", |s| {
        s.requests_of(ApiKey::Metadata) > before.requests_of(ApiKey::Metadata)
    })
    .await;
    proxy.cut_all();
    let err = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the cut fails the request at once")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, Error::ConnectionClosed { .. } | Error::Io { .. }),
        "{err:?}"
    );
    assert!(err.is_retriable() && err.is_outcome_unknown(), "{err:?}");
    assert!(conn.is_closed());
    wait(&proxy, "the cut connections to close", |s| {
        s.live_connections == 0
    })
    .await;
    proxy.resume();

    // The next call opens a new connection through the proxy.
    admin.describe_cluster().await.unwrap();
    assert!(proxy.stats().connections_accepted > before.connections_accepted);
}

#[tokio::test]
async fn a_lost_create_topics_response_hides_a_topic_that_exists() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(15)).await;
    let topic = unique_name("proxy-lost");

    // The broker creates it but the answer is lost with its connection: the call asks again
    // (a retriable failure) and hears that the topic exists, as Java's AdminClient does.
    proxy.drop_response_of(ApiKey::CreateTopics, 1, LostResponse::Cut);
    let err = admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap_err();
    assert_eq!(proxy.stats().responses_dropped, 1);
    assert!(
        matches!(
            err,
            Error::Broker {
                code: ResponseError::TopicAlreadyExists,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(proxy.stats().requests_of(ApiKey::CreateTopics), 2);
    // The variant that accepts an existing topic is the safe one to retry.
    proxy.drop_response_of(ApiKey::CreateTopics, 1, LostResponse::Cut);
    admin
        .create_topics_if_missing(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();
    admin.delete_topics(&[&topic]).await.unwrap();
}

#[tokio::test]
async fn a_blackholed_response_times_out() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(10)).await;
    // The call's deadline (default.api.timeout.ms) cuts the request timeout.
    let hasty = admin
        .clone()
        .with_default_api_timeout(Duration::from_secs(2));
    let topic = unique_name("proxy-blackhole");

    proxy.drop_response_of(ApiKey::CreateTopics, 1, LostResponse::Blackhole);
    let started = Instant::now();
    let err = hasty
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap_err();
    match &err {
        Error::AdminTimeout { last, .. } => {
            assert!(matches!(**last, Error::RequestTimedOut { .. }), "{err:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_outcome_unknown(), "{err:?}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1_900), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    admin
        .create_topics_if_missing(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();
    assert_eq!(admin.describe_topics(&[&topic]).await.unwrap().len(), 1);
    admin.delete_topics(&[&topic]).await.unwrap();
}

#[tokio::test]
async fn a_lost_produce_ack_duplicates_records_without_idempotence() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(15)).await;
    let topic = create_topic(&admin, 1).await;

    let conn = leader(&admin, &topic).await;
    proxy.drop_response_of(ApiKey::Produce, 1, LostResponse::Cut);
    let err = produce(&conn, &topic, b"once").await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    // The retry a non-idempotent producer would make: the broker now holds the record twice.
    let conn = leader(&admin, &topic).await;
    produce(&conn, &topic, b"once").await.unwrap();
    assert_eq!(latest_offset(&admin, &topic).await, 2);
    admin.delete_topics(&[&topic]).await.unwrap();
}

#[tokio::test]
async fn stalled_traffic_times_requests_out_and_resume_recovers() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_millis(1500)).await;
    admin.describe_cluster().await.unwrap();

    proxy.stall();
    // An admin call retries until default.api.timeout.ms: short here, so the first request
    // timeout ends it.
    let hasty = admin
        .clone()
        .with_default_api_timeout(Duration::from_millis(1500));
    let err = hasty.describe_cluster().await.unwrap_err();
    match &err {
        Error::AdminTimeout { last, .. } => {
            assert!(matches!(**last, Error::RequestTimedOut { .. }), "{err:?}");
            assert!(last.is_retriable());
        }
        other => panic!("{other:?}"),
    }
    proxy.resume();
    admin.describe_cluster().await.unwrap();
}

#[tokio::test]
async fn delayed_responses_arrive_late() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(15)).await;
    admin.describe_cluster().await.unwrap();

    proxy.delay_responses(Duration::from_millis(1000));
    let started = Instant::now();
    admin.describe_cluster().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1000));

    proxy.delay_responses(Duration::ZERO);
    let started = Instant::now();
    admin.describe_cluster().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(1000));
}

#[tokio::test]
async fn refused_connections_fail_until_accepted_again() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(5)).await;
    admin.describe_cluster().await.unwrap();

    proxy.set_refuse(true);
    proxy.cut_all();
    wait(&proxy, "the cut connections to close", |s| {
        s.live_connections == 0
    })
    .await;
    // With a short default.api.timeout.ms the call gives up, naming the last refusal (or
    // the reconnect backoff it armed).
    let hasty = admin
        .clone()
        .with_default_api_timeout(Duration::from_secs(2));
    let err = hasty.describe_cluster().await.unwrap_err();
    match &err {
        Error::AdminTimeout { last, .. } => assert!(last.is_retriable(), "{err:?}"),
        other => panic!("{other:?}"),
    }
    assert!(proxy.stats().connections_refused >= 1);

    proxy.set_refuse(false);
    // The refused attempts armed the reconnect backoff (≤ reconnect.backoff.max.ms, 1 s):
    // the call waits it out (retry.backoff.ms) and reconnects.
    admin.describe_cluster().await.unwrap();
}

#[tokio::test]
async fn corrupted_fetch_records_fail_their_crc_once() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let admin = admin(&proxy.bootstrap(), Duration::from_secs(15)).await;
    let topic = create_topic(&admin, 1).await;
    let conn = leader(&admin, &topic).await;
    produce(&conn, &topic, b"precious").await.unwrap();
    let topic_id = admin.describe_topics(&[&topic]).await.unwrap()[0].topic_id;

    let version = conn.version(ApiKey::Fetch).unwrap();
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(&topic))
            .with_topic_id(uuid::Uuid::from_bytes(topic_id))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let records = |response: &kafka_protocol::messages::FetchResponse| {
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        p.records.clone().expect("records")
    };

    proxy.corrupt_fetch_records(&topic, 0);
    let response = conn
        .send(&request, version, Duration::from_secs(10))
        .await
        .unwrap();
    let err = RecordBatchDecoder::decode(&mut records(&response)).unwrap_err();
    assert!(err.to_string().contains("Cyclic redundancy check"), "{err}");
    assert_eq!(proxy.stats().fetch_records_corrupted, 1);

    // One-shot: the next fetch is clean.
    let response = conn
        .send(&request, version, Duration::from_secs(10))
        .await
        .unwrap();
    let set = RecordBatchDecoder::decode(&mut records(&response)).unwrap();
    assert_eq!(set.records[0].value.as_deref(), Some(&b"precious"[..]));
    admin.delete_topics(&[&topic]).await.unwrap();
}

#[tokio::test]
async fn dropping_the_proxy_closes_everything() {
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let bootstrap = proxy.bootstrap();
    let admin = admin(&bootstrap, Duration::from_secs(5)).await;
    let conn = admin.cluster().any_connection().await.unwrap();
    let control = proxy.control();
    drop(proxy);

    let deadline = Instant::now() + Duration::from_secs(5);
    while !conn.is_closed() {
        assert!(
            Instant::now() < deadline,
            "the connection outlived the proxy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for address in bootstrap.split(',') {
        assert!(
            tokio::net::TcpStream::connect(address).await.is_err(),
            "{address} still listens"
        );
    }
    wait(&control, "the connections to close", |s| {
        s.live_connections == 0
    })
    .await;
}
