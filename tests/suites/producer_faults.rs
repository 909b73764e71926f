//! The idempotent producer under faults: every record is written exactly once, in send order
//! per partition, and every delivery report is a success.
//!
//! * A broker pause (SIGSTOP, then SIGCONT): requests time out (their outcome unknown), the
//!   connection is dropped, batches are resent with the same sequences. Uses a broker of its
//!   own, since it freezes it.
//! * Through the loopback proxy (every connection of the producer goes through it): all
//!   connections cut several times mid-stream; and the "written but the ack was lost" case,
//!   whose run without idempotence must show duplicates (proof that the check can fail).
//!
//! Records carry their id in the value; the topic is read back independently with raw Fetch
//! requests and checked by [`kafkit_tests::verify`].

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;
use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{Acks, ProducerConfig};
use kafkit::producer::{DeliveryFuture, ProduceError, Producer, ProducerRecord};
use kafkit_tests::proxy::{LostResponse, ProxyCluster};
use kafkit_tests::{kafka, repo_root, start_broker, unique_name, verify};

fn signal(dir: &std::path::Path, what: &str) -> bool {
    let status = Command::new("bash")
        .arg(repo_root().join("scripts/kafka.sh"))
        .arg(what)
        .arg(dir)
        .arg("1")
        .status()
        .unwrap();
    status.success()
}

/// Thaws the frozen broker when dropped, so that a failing test leaves no broker stopped.
struct Thaw<'a>(&'a std::path::Path, bool);

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        if self.1 {
            signal(self.0, "thaw");
        }
    }
}

/// A broker of the test's own (it is frozen), a 3-partition topic on it, and a producer with
/// a 2 s request timeout, connection setup timeout `setup` and `delivery` timeout.
async fn own_broker(
    prefix: &str,
    setup: Duration,
    delivery: Duration,
) -> (kafkit_tests::Kafka, String, Producer) {
    let kafka = start_broker(1);
    let admin = Admin::connect(&kafka.bootstrap).await.unwrap();
    let topic = unique_name(prefix);
    admin
        .create_topics(&[NewTopic::new(&topic, 3, 1)])
        .await
        .unwrap();
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka.bootstrap.clone()])
        .linger(Duration::from_millis(2))
        .batch_size(2_000)
        .request_timeout(Duration::from_secs(2))
        .socket_connection_setup_timeout(setup)
        .socket_connection_setup_timeout_max(setup)
        .delivery_timeout(delivery)
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    (kafka, topic, producer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_pause_loses_nothing_and_duplicates_nothing() {
    let (kafka, topic, producer) = own_broker(
        "producer-pause",
        Duration::from_secs(2),
        Duration::from_secs(120),
    )
    .await;
    let dir = kafka.state_dir.clone().unwrap();
    let started = Instant::now();
    let mut frozen = Thaw(&dir, false);
    let mut deliveries = Vec::new();
    for i in 0..3_000u64 {
        if i == 1_000 {
            assert!(signal(&dir, "freeze"), "kafka.sh freeze");
            frozen.1 = true;
        }
        if i == 2_000 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(signal(&dir, "thaw"), "kafka.sh thaw");
            frozen.1 = false;
        }
        let record = ProducerRecord::new(&topic)
            .key(format!("k{}", i % 30))
            .value(verify::value_of(i));
        deliveries.push((i, producer.send(record).await.unwrap()));
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(frozen);
    tokio::time::timeout(Duration::from_secs(45), producer.flush())
        .await
        .expect("flush within 45 s of the thaw")
        .unwrap();
    let metrics = producer.metrics();
    let mut sent = Vec::new();
    let mut by_partition: HashMap<i32, Vec<(i64, u64)>> = HashMap::new();
    for (i, d) in deliveries {
        let md = d.await.unwrap_or_else(|e| panic!("record {i}: {e}"));
        by_partition
            .entry(md.partition)
            .or_default()
            .push((md.offset, i));
        sent.push(verify::Sent {
            id: i,
            partition: md.partition,
            offset: Some(md.offset),
        });
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    // Offsets per partition are 0..n without gaps (nothing written twice, since every
    // reported offset is distinct and dense) and follow send order.
    for (p, mut written) in by_partition {
        written.sort_unstable();
        for (n, (offset, _)) in written.iter().enumerate() {
            assert_eq!(*offset, n as i64, "partition {p}: a gap or a duplicate");
        }
        assert!(
            written.windows(2).all(|w| w[0].1 < w[1].1),
            "partition {p} reordered"
        );
    }
    // And the log itself, read back independently.
    let log = verify::read_back(&kafka.bootstrap, &topic, 3, &sent, Duration::from_secs(30)).await;
    let verdict = verify::verify(&sent, &log);
    eprintln!(
        "pause: 3000 records in {:?}; {metrics:?}; {verdict:?}",
        started.elapsed()
    );
    kafka.stop();
    verdict.assert_exact();
}

/// Sends `n` records with the next ids (values carry the id), keeping their delivery futures.
async fn send_ids(
    producer: &Producer,
    topic: &str,
    next_id: &mut u64,
    n: u64,
    deliveries: &mut Vec<(u64, DeliveryFuture)>,
) {
    for _ in 0..n {
        let id = *next_id;
        *next_id += 1;
        let record = ProducerRecord::new(topic)
            .key(format!("k{}", id % 30))
            .value(verify::value_of(id));
        deliveries.push((id, producer.send(record).await.unwrap()));
    }
}

/// A delivery timeout says what it knows (issue #10, item 5): the broker is frozen while
/// records stream in, long enough for every record sent meanwhile to expire. Records that
/// were in requests when (or after) the freeze began may be in the log once it thaws
/// (`sent: true`, outcome unknown); records that never left the queue must not be
/// (`sent: false`); every record gets exactly one outcome, and the metrics count the two kinds
/// apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_timeouts_tell_never_sent_from_unknown() {
    let (kafka, topic, producer) = own_broker(
        "producer-expiry",
        Duration::from_secs(1),
        Duration::from_secs(5),
    )
    .await;
    let dir = kafka.state_dir.clone().unwrap();
    // Warm up: connections, producer id, metadata.
    let mut outcomes: Vec<(u64, Result<i32, ProduceError>)> = Vec::new();
    let mut deliveries = Vec::new();
    let mut next_id = 0u64;
    send_ids(&producer, &topic, &mut next_id, 100, &mut deliveries).await;
    producer.flush().await.unwrap();
    let mut frozen = Thaw(&dir, false);
    assert!(signal(&dir, "freeze"), "kafka.sh freeze");
    frozen.1 = true;
    // Records that go into requests on the open connection (written, never answered), then,
    // once the request timeout closed it, records no request can carry.
    for _ in 0..40 {
        send_ids(&producer, &topic, &mut next_id, 50, &mut deliveries).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every record of the freeze expires within delivery.timeout.ms (+ a request timeout).
    let all_done = async {
        for (id, d) in deliveries.drain(..) {
            outcomes.push((id, d.await.map(|md| md.partition)));
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all_done)
        .await
        .expect("every record has an outcome while the broker is frozen");
    let metrics = producer.metrics();
    assert!(signal(&dir, "thaw"), "kafka.sh thaw");
    frozen.1 = false;
    drop(frozen);
    assert_eq!(outcomes.len() as u64, next_id, "one outcome per record");
    let (mut ok, mut never_sent, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for (id, outcome) in &outcomes {
        match outcome {
            Ok(partition) => ok.push(verify::Sent {
                id: *id,
                partition: *partition,
                offset: None,
            }),
            Err(e @ ProduceError::DeliveryTimeout { sent: false, .. }) => {
                assert!(!e.is_outcome_unknown());
                never_sent.push(*id);
            }
            Err(e @ ProduceError::DeliveryTimeout { sent: true, .. }) => {
                assert!(e.is_outcome_unknown());
                unknown.push(*id);
            }
            Err(e) => panic!("record {id}: unexpected outcome {e}"),
        }
    }
    assert_eq!(metrics.records_expired_unsent, never_sent.len() as u64);
    assert_eq!(metrics.records_expired_unknown, unknown.len() as u64);
    assert!(
        !never_sent.is_empty(),
        "no record expired unsent: {metrics:?}"
    );
    assert!(
        !unknown.is_empty(),
        "no record expired in flight: {metrics:?}"
    );
    // The broker is back: later records go through (epoch bumped after the expiries).
    send_ids(&producer, &topic, &mut next_id, 100, &mut deliveries).await;
    tokio::time::timeout(Duration::from_secs(60), producer.flush())
        .await
        .expect("flush after the thaw")
        .unwrap();
    for (id, d) in deliveries.drain(..) {
        let md = d
            .await
            .unwrap_or_else(|e| panic!("record {id} after the thaw: {e}"));
        ok.push(verify::Sent {
            id,
            partition: md.partition,
            offset: None,
        });
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    let log = verify::read_back(&kafka.bootstrap, &topic, 3, &ok, Duration::from_secs(30)).await;
    let in_log: std::collections::HashSet<u64> =
        log.values().flatten().map(|(_, id)| *id).collect();
    let written_unknown = unknown.iter().filter(|id| in_log.contains(id)).count();
    eprintln!(
        "expiry: {} ok, {} never sent, {} unknown ({written_unknown} of them in the log); \
         {metrics:?}",
        ok.len(),
        never_sent.len(),
        unknown.len()
    );
    kafka.stop();
    let wrongly = never_sent.iter().filter(|id| in_log.contains(id)).count();
    assert_eq!(wrongly, 0, "records reported never sent are in the log");
    let missing = ok.iter().filter(|s| !in_log.contains(&s.id)).count();
    assert_eq!(missing, 0, "acknowledged records missing from the log");
}

// ---------------------------------------------------------------------------------------------
// Faults injected by the loopback proxy: every connection of the producer goes through it.
// ---------------------------------------------------------------------------------------------

const PARTITIONS: i32 = 6;

/// Sends `n` records (ids `0..n`, keyed over 60 keys) through `producer`, calling `fault(i)`
/// before record `i` and pausing briefly every 500 records so that the stream spans many
/// requests; then flushes and awaits every delivery report. Returns what was sent (partition
/// and offset from the reports) and the failed reports.
async fn stream(
    producer: &Producer,
    topic: &str,
    n: u64,
    mut fault: impl FnMut(u64),
) -> (Vec<verify::Sent>, Vec<(u64, String)>) {
    let mut deliveries = Vec::with_capacity(n as usize);
    for i in 0..n {
        fault(i);
        let record = ProducerRecord::new(topic)
            .key(format!("k{}", i % 60))
            .value(verify::value_of(i));
        deliveries.push((i, producer.send(record).await.unwrap()));
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tokio::time::timeout(Duration::from_secs(60), producer.flush())
        .await
        .expect("flush within 60 s")
        .unwrap();
    let mut sent = Vec::with_capacity(deliveries.len());
    let mut failed = Vec::new();
    for (id, d) in deliveries {
        match d.await {
            Ok(md) => sent.push(verify::Sent {
                id,
                partition: md.partition,
                offset: Some(md.offset),
            }),
            Err(e) => failed.push((id, e.to_string())),
        }
    }
    (sent, failed)
}

async fn proxied_topic(prefix: &str) -> (ProxyCluster, String) {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = unique_name(prefix);
    admin
        .create_topics(&[NewTopic::new(&topic, PARTITIONS, 1)])
        .await
        .unwrap();
    admin.cluster().close();
    (ProxyCluster::start(&kafka().bootstrap).await, topic)
}

fn proxied_config(proxy: &ProxyCluster, idempotent: bool) -> ProducerConfig {
    ProducerConfig::builder()
        .bootstrap_servers(proxy.bootstrap().split(','))
        .enable_idempotence(idempotent)
        .acks(Acks::All)
        .linger(Duration::from_millis(2))
        .batch_size(4_000)
        .retry_backoff(Duration::from_millis(20))
        .retry_backoff_max(Duration::from_millis(200))
        .request_timeout(Duration::from_secs(5))
        .delivery_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_during_sends_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let (proxy, topic) = proxied_topic("producer-cuts").await;
    let control = proxy.control();
    let producer = Producer::new(proxied_config(&proxy, true)).await.unwrap();
    const N: u64 = 20_000;
    let (sent, failed) = stream(&producer, &topic, N, |i| {
        if i > 0 && i % 3_000 == 0 {
            control.cut_all();
        }
    })
    .await;
    // One more cut with the last requests surely in flight is not guaranteed by timing; the
    // six cuts above land while the stream runs.
    let metrics = producer.metrics();
    producer.close(Duration::from_secs(10)).await.unwrap();
    assert!(failed.is_empty(), "failed deliveries: {failed:?}");
    let stats = control.stats();
    assert!(
        stats.connections_accepted >= 6,
        "the cuts forced reconnections: {stats:?}"
    );
    let log = verify::read_back(
        &kafka().bootstrap,
        &topic,
        PARTITIONS,
        &sent,
        Duration::from_secs(30),
    )
    .await;
    let verdict = verify::verify(&sent, &log);
    eprintln!(
        "cuts: {N} records in {:?}; {} connections; {} produce requests; {metrics:?}; {verdict:?}",
        started.elapsed(),
        stats.connections_accepted,
        stats.requests_of(ApiKey::Produce)
    );
    verdict.assert_exact();
}

/// Sends 20,000 records while the responses to (up to) eight Produce requests are lost (the broker
/// wrote those batches; the connection is closed before the client sees the ack).
async fn acks_lost_run(idempotent: bool) -> (verify::Verdict, Vec<(u64, String)>, u64) {
    let (proxy, topic) = proxied_topic("producer-acks-lost").await;
    let control = proxy.control();
    let producer = Producer::new(proxied_config(&proxy, idempotent))
        .await
        .unwrap();
    // Every 2,500 records, the response to the next Produce request is lost (a rule can be
    // used up by a request that a previous cut caught on its way, so a few may not count).
    let (sent, failed) = stream(&producer, &topic, 20_000, |i| {
        if i % 2_500 == 1_000 {
            control.drop_response_of(ApiKey::Produce, 1, LostResponse::Cut);
        }
    })
    .await;
    producer.close(Duration::from_secs(10)).await.unwrap();
    let dropped = control.stats().responses_dropped;
    let log = verify::read_back(
        &kafka().bootstrap,
        &topic,
        PARTITIONS,
        &sent,
        Duration::from_secs(30),
    )
    .await;
    (verify::verify(&sent, &log), failed, dropped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_lost_with_idempotence_duplicate_nothing() {
    let started = Instant::now();
    let (verdict, failed, dropped) = acks_lost_run(true).await;
    eprintln!(
        "acks lost, idempotent: {dropped} responses lost, {:?}; {verdict:?}",
        started.elapsed()
    );
    assert!(failed.is_empty(), "failed deliveries: {failed:?}");
    assert!(dropped >= 3, "only {dropped} responses were lost");
    verdict.assert_exact();
}

/// The same faults without idempotence: every lost ack makes the producer write its batches
/// again, so the log holds duplicates. Proof that the check above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_lost_without_idempotence_duplicate() {
    let started = Instant::now();
    let (verdict, failed, dropped) = acks_lost_run(false).await;
    eprintln!(
        "acks lost, not idempotent: {dropped} responses lost, {} failed, {:?}; {verdict:?}",
        failed.len(),
        started.elapsed()
    );
    assert!(dropped >= 3, "only {dropped} responses were lost");
    assert!(
        verdict.duplicated > 0,
        "no duplicates without idempotence: the check cannot fail? {verdict:?}"
    );
    assert!(!verdict.is_exact());
}

/// Responses held 20 ms (so that every cut catches requests in flight on several partitions)
/// and every connection cut every 1,000 records; the responses to three Produce requests are
/// blackholed on the way (their requests time out, the outcome unknown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frequent_cuts_slow_responses_and_timeouts_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let (proxy, topic) = proxied_topic("producer-storm").await;
    let control = proxy.control();
    control.delay_responses(Duration::from_millis(20));
    let config = ProducerConfig::builder()
        .bootstrap_servers(proxy.bootstrap().split(','))
        .linger(Duration::from_millis(2))
        .batch_size(4_000)
        .retry_backoff(Duration::from_millis(20))
        .retry_backoff_max(Duration::from_millis(200))
        .request_timeout(Duration::from_secs(2))
        .delivery_timeout(Duration::from_secs(50))
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    let (sent, failed) = stream(&producer, &topic, 20_000, |i| {
        if i > 0 && i % 1_000 == 0 {
            control.cut_all();
        }
        if i % 6_000 == 3_500 {
            control.drop_response_of(ApiKey::Produce, 1, LostResponse::Blackhole);
        }
    })
    .await;
    let metrics = producer.metrics();
    producer.close(Duration::from_secs(10)).await.unwrap();
    let stats = control.stats();
    assert!(failed.is_empty(), "failed deliveries: {failed:?}");
    let log = verify::read_back(
        &kafka().bootstrap,
        &topic,
        PARTITIONS,
        &sent,
        Duration::from_secs(30),
    )
    .await;
    let verdict = verify::verify(&sent, &log);
    eprintln!(
        "storm: 20000 records in {:?}; {} connections, {} produce requests, {} responses \
         blackholed; {metrics:?}; {verdict:?}",
        started.elapsed(),
        stats.connections_accepted,
        stats.requests_of(ApiKey::Produce),
        stats.responses_dropped
    );
    verdict.assert_exact();
}

/// `close` with responses still on their way (the proxy holds each back 300 ms): every record
/// gets its success, then the connections are shut down — once `close` returns, none is
/// left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_responses_then_shuts_every_connection() {
    let (proxy, topic) = proxied_topic("producer-close-shutdown").await;
    let control = proxy.control();
    let producer = Producer::new(proxied_config(&proxy, true)).await.unwrap();
    control.delay_responses(Duration::from_millis(300));
    let mut pending = Vec::new();
    for id in 0..200u64 {
        let record = ProducerRecord::new(&topic).value(verify::value_of(id));
        pending.push(producer.send(record).await.unwrap());
    }
    let started = Instant::now();
    producer.close(Duration::from_secs(30)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    for delivery in pending {
        delivery.await.unwrap();
    }
    let closed = control
        .wait_for(Duration::from_secs(5), |s| s.live_connections == 0)
        .await;
    assert!(closed, "connections left open: {:?}", control.stats());
    proxy.shutdown();
}
