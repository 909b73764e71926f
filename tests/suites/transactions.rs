//! The transactional producer against real brokers (Kafka 4.x and 3.9.1, transactions v1):
//! committed transactions are visible to `read_committed` readers (kafkit's and the Java
//! consumer), aborted ones only to `read_uncommitted`; a second producer with the same
//! `transactional.id` fences the first; a transaction left open by a dropped producer is
//! aborted by the next `init_transactions`; offsets sent to a transaction are committed only
//! when it commits.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::producer::{ProduceError, Producer, ProducerRecord, TransactionError};
use kafkit::state::group::{OffsetAndMetadata, TopicPartition};
use kafkit_tests::proxy::{LostResponse, ProxyCluster};
use kafkit_tests::{kafka, unique_name, verify};

const WAIT: Duration = Duration::from_secs(60);
const CALL: Duration = Duration::from_secs(30);

/// The Kafka 3.9.1 broker of this process (`KAFKIT_KAFKA39_BOOTSTRAP` when one is running).
fn kafka_39() -> &'static str {
    static KAFKA: OnceLock<String> = OnceLock::new();
    KAFKA.get_or_init(|| match std::env::var("KAFKIT_KAFKA39_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => b.trim().to_owned(),
        _ => kafkit_tests::start_broker_version("3.9.1", 1).bootstrap,
    })
}

/// A test of `body(bootstrap, protocol)` against the suite's Kafka 4.x broker (transactions
/// v2), and one against Kafka 3.9.1 (v1).
macro_rules! on_4x_and_39 {
    ($body:ident: $latest:ident, $v39:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $latest() {
            $body(&kafka().bootstrap, 2).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $v39() {
            $body(kafka_39(), 1).await;
        }
    };
}

on_4x_and_39!(commit_and_abort: committed_visible_aborted_invisible_to_kafkit_and_java, committed_visible_aborted_invisible_on_kafka_39);
on_4x_and_39!(zombie_is_fenced: a_second_producer_with_the_same_id_fences_the_first, a_second_producer_with_the_same_id_fences_the_first_on_kafka_39);
on_4x_and_39!(a_failed_send_makes_the_transaction_abort_only: a_failed_send_makes_the_transaction_abort_only_then_abort_recovers, a_failed_send_makes_the_transaction_abort_only_on_kafka_39);
on_4x_and_39!(read_back_steps_over_markers: verify_read_back_steps_over_transaction_markers, verify_read_back_steps_over_transaction_markers_on_kafka_39);
on_4x_and_39!(hanging_transaction_aborted_by_admin: admin_finds_a_hanging_transaction_and_aborts_it, admin_finds_a_hanging_transaction_and_aborts_it_on_kafka_39);

async fn txn_producer(bootstrap: &str, id: &str) -> Producer {
    txn_producer_with(bootstrap, id, None).await
}

/// A transactional producer, initialized; `transaction.timeout.ms` when given.
async fn txn_producer_with(bootstrap: &str, id: &str, timeout: Option<Duration>) -> Producer {
    let mut builder = ProducerConfig::builder()
        .bootstrap_servers([bootstrap.to_owned()])
        .transactional_id(id)
        .linger(Duration::from_millis(5));
    if let Some(timeout) = timeout {
        builder = builder.transaction_timeout(timeout);
    }
    let config = builder.build().expect("config");
    let producer = Producer::new(config).await.expect("producer");
    producer
        // A fresh broker creates __transaction_state (50 partitions) on the first call.
        .init_transactions(WAIT)
        .await
        .expect("init_transactions");
    producer
}

/// `kafkit_tests::verify::read_back` on a topic whose last batch in each partition is a
/// transaction marker (a committed transaction, then an aborted one): it reads every
/// partition to its high watermark, markers included, and returns every data record
/// (read_uncommitted: the aborted ones too), instead of fetching the marker again until its
/// deadline.
async fn read_back_steps_over_markers(bootstrap: &str, _protocol: u8) {
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-read-back", 2).await;
    let producer = txn_producer(bootstrap, &unique_name("txn-rb")).await;
    let mut sent = Vec::new();
    for (ids, commit) in [(0..6_u64, true), (6..12, false)] {
        producer.begin_transaction().expect("begin");
        let mut acks = Vec::new();
        for id in ids {
            let partition = i32::try_from(id % 2).unwrap();
            let record = ProducerRecord::new(topic.as_str())
                .partition(partition)
                .value(verify::value_of(id));
            acks.push(producer.send(record).await.expect("send"));
            sent.push(verify::Sent {
                id,
                partition,
                offset: None,
            });
        }
        for ack in acks {
            ack.await.expect("delivery");
        }
        if commit {
            producer.commit_transaction(CALL).await.expect("commit");
        } else {
            producer.abort_transaction(CALL).await.expect("abort");
        }
    }
    producer.close(CALL).await.expect("close");
    // Before read_back stepped over control batches it re-fetched the final marker until
    // its own deadline (120 s here); 40 s is far more than reading 14 batches takes.
    let log = tokio::time::timeout(
        Duration::from_secs(40),
        verify::read_back(bootstrap, &topic, 2, &sent, Duration::from_secs(120)),
    )
    .await
    .expect("read_back stuck on a transaction marker");
    verify::verify(&sent, &log).assert_exact();
}

/// Sends `values` round-robin over `partitions` and waits for every acknowledgement.
async fn send_all(producer: &Producer, topic: &str, partitions: i32, values: &[String]) {
    let mut acks = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let p = i32::try_from(i).unwrap() % partitions;
        let record = ProducerRecord::new(topic)
            .partition(p)
            .key("k")
            .value(v.clone());
        acks.push(producer.send(record).await.expect("send"));
    }
    for ack in acks {
        ack.await.expect("delivery");
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Everything kafkit reads from `topic` at `isolation`, sorted: at least `at_least` records
/// (a commit returns before its markers are written, so the last stable offset may lag for a
/// moment), up to the end it sees (the last stable offset for `read_committed`), and nothing
/// more within 500 ms.
async fn kafkit_read(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
    at_least: usize,
) -> Vec<String> {
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", isolation),
        ("fetch.max.wait.ms", "100"),
    ])
    .expect("config");
    let consumer = Consumer::new(config).await.expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic.to_owned(), p))
        .collect();
    consumer.assign(tps.clone()).expect("assign");
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        for r in consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
        {
            out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
        // Caught up: every partition's position is known and its lag (to the high watermark,
        // or the last stable offset when read_committed) is zero.
        if out.len() >= at_least && tps.iter().all(|tp| consumer.lag(tp) == Some(0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{isolation} read of {topic} not caught up: {out:?}"
        );
    }
    // Nothing more arrives.
    let late = consumer
        .poll(Duration::from_millis(500))
        .await
        .expect("poll");
    assert!(late.is_empty(), "records after the end: {}", late.len());
    consumer.close(Duration::from_secs(5)).await.expect("close");
    out.sort();
    out
}

/// Everything the Java consumer reads from `topic` at `isolation` (`tests/java/TxnReader.java`,
/// compiled at test time), sorted. Panics when Java or the jars are missing.
fn java_read(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let stdout = kafkit_tests::java::run(
        "TxnReader",
        &[bootstrap, topic, isolation],
        Duration::from_secs(120),
    );
    let mut read: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("value="))
        .map(str::to_owned)
        .collect();
    read.sort();
    read
}

/// The producer epochs of the data batches of partition 0 of `topic`, in log order, each run
/// of equal epochs once (raw Fetch, so the batch headers are seen).
async fn data_batch_epochs(bootstrap: &str, topic: &str) -> Vec<i16> {
    use kafka_protocol::messages::ApiKey;
    use kafkit_wire::record::BatchReader;
    let admin = kafkit::admin::Admin::connect(bootstrap)
        .await
        .expect("admin");
    let cluster = admin.cluster();
    cluster
        .refresh_metadata(Some(&[topic]))
        .await
        .expect("metadata");
    let (leader, topic_id) = {
        let m = cluster.metadata();
        (
            m.leader(topic, 0).map(|b| b.node_id).expect("leader"),
            m.topic(topic).map(|t| t.topic_id).expect("topic id"),
        )
    };
    let conn = cluster.connection(leader).await.expect("connection");
    let version = conn.version(ApiKey::Fetch).expect("fetch version");
    let request = kafkit_tests::verify::fetch_one(topic, topic_id, 0, 0, version, 50);
    let response = conn
        .send(&request, version, Duration::from_secs(10))
        .await
        .expect("fetch");
    let mut epochs: Vec<i16> = Vec::new();
    for part in response.responses.iter().flat_map(|t| &t.partitions) {
        for batch in BatchReader::new(part.records.clone().unwrap_or_default()) {
            let batch = batch.expect("batch");
            if batch.is_control() {
                continue;
            }
            assert!(
                batch.header.attributes.transactional,
                "a non-transactional batch"
            );
            if epochs.last() != Some(&batch.header.producer_epoch) {
                epochs.push(batch.header.producer_epoch);
            }
        }
    }
    cluster.close();
    epochs
}

/// Commits a transaction of `values(prefix, n)` over `partitions`, closes `producer`, and checks
/// that a `read_committed` read of `topic` holds exactly those records.
async fn commit_then_read_only_these(
    producer: &Producer,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    prefix: &str,
) {
    producer.begin_transaction().expect("begin");
    let kept = values(prefix, 5);
    send_all(producer, topic, partitions, &kept).await;
    producer.commit_transaction(CALL).await.expect("commit");
    producer.close(CALL).await.expect("close");
    assert_eq!(
        kafkit_read(bootstrap, topic, partitions, "read_committed", kept.len()).await,
        sorted(&[kept])
    );
}

fn sorted(parts: &[Vec<String>]) -> Vec<String> {
    let mut all: Vec<String> = parts.concat();
    all.sort();
    all
}

/// Committed, aborted, committed: `read_committed` readers see the two committed ones,
/// `read_uncommitted` all three.
async fn commit_and_abort(bootstrap: &str, protocol: u8) {
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-commit-abort", 2).await;
    let producer = txn_producer(bootstrap, &unique_name("txn-ca")).await;
    // Kafka 4.x clusters finalize transaction.version 2 (KIP-890); 3.9 has only v1.
    assert_eq!(producer.transaction_version(), Some(protocol));
    let (c1, a, c2) = (values("c1", 6), values("a", 6), values("c2", 6));

    producer.begin_transaction().expect("begin");
    send_all(&producer, &topic, 2, &c1).await;
    producer.commit_transaction(CALL).await.expect("commit");

    producer.begin_transaction().expect("begin");
    send_all(&producer, &topic, 2, &a).await;
    producer.abort_transaction(CALL).await.expect("abort");

    producer.begin_transaction().expect("begin");
    // Not awaited before the commit: the commit flushes them first.
    let mut acks = Vec::new();
    for (i, v) in c2.iter().enumerate() {
        let p = i32::try_from(i).unwrap() % 2;
        let record = ProducerRecord::new(topic.as_str())
            .partition(p)
            .value(v.clone());
        acks.push(producer.send(record).await.expect("send"));
    }
    producer.commit_transaction(CALL).await.expect("commit");
    for ack in acks {
        assert!(ack.await.is_ok(), "a committed record failed");
    }
    producer.close(CALL).await.expect("close");

    // v2 bumps the epoch at every transaction end (KIP-890); v1 keeps it.
    let epochs = data_batch_epochs(bootstrap, &topic).await;
    if protocol == 2 {
        assert_eq!(epochs.len(), 3, "one epoch per transaction: {epochs:?}");
        assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    } else {
        assert_eq!(
            epochs.len(),
            1,
            "one epoch for every transaction: {epochs:?}"
        );
    }
    let committed = sorted(&[c1.clone(), c2.clone()]);
    let everything = sorted(&[c1, a, c2]);
    assert_eq!(
        kafkit_read(bootstrap, &topic, 2, "read_committed", committed.len()).await,
        committed
    );
    assert_eq!(
        kafkit_read(bootstrap, &topic, 2, "read_uncommitted", everything.len()).await,
        everything
    );
    {
        let (b, t) = (bootstrap.to_owned(), topic.clone());
        let java_committed =
            tokio::task::spawn_blocking(move || java_read(&b, &t, "read_committed"))
                .await
                .unwrap();
        assert_eq!(java_committed, committed);
        let (b, t) = (bootstrap.to_owned(), topic.clone());
        let java_all = tokio::task::spawn_blocking(move || java_read(&b, &t, "read_uncommitted"))
            .await
            .unwrap();
        assert_eq!(java_all, everything);
    }
}

/// A second producer with the same `transactional.id` fences the first: the first's next call
/// fails fatally (fenced), and nothing it wrote in its open transaction becomes visible.
async fn zombie_is_fenced(bootstrap: &str, _protocol: u8) {
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-fence", 2).await;
    let id = unique_name("txn-fence");
    let zombie = txn_producer(bootstrap, &id).await;
    zombie.begin_transaction().expect("begin");
    send_all(&zombie, &topic, 2, &values("zombie", 4)).await;

    let successor = txn_producer(bootstrap, &id).await;

    // The zombie keeps writing to a partition already in its transaction: refused.
    let late = zombie
        .send(
            ProducerRecord::new(topic.as_str())
                .partition(0)
                .value("zombie-late"),
        )
        .await;
    if let Ok(delivery) = late {
        let outcome = tokio::time::timeout(WAIT, delivery)
            .await
            .expect("an outcome");
        assert!(outcome.is_err(), "a fenced producer's record was written");
    }
    let commit = zombie.commit_transaction(CALL).await;
    match commit {
        Err(e @ TransactionError::Fenced { .. }) => assert!(e.is_fatal()),
        other => panic!("the zombie's commit must be fenced, got {other:?}"),
    }
    // Fatal is terminal: every later call fails the same way.
    assert!(matches!(
        zombie.begin_transaction(),
        Err(TransactionError::Fenced { .. })
    ));
    assert!(matches!(
        zombie.abort_transaction(CALL).await,
        Err(TransactionError::Fenced { .. })
    ));
    match zombie
        .send(ProducerRecord::new(topic.as_str()).value("x"))
        .await
    {
        Err(ProduceError::Transaction(e)) => assert!(e.is_fatal(), "{e}"),
        Err(other) => panic!("expected the fenced error, got {other}"),
        Ok(_) => panic!("a fenced producer accepted a record"),
    }
    zombie.close(CALL).await.expect("close");

    commit_then_read_only_these(&successor, bootstrap, &topic, 2, "successor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_open_is_aborted_by_the_next_init() {
    let bootstrap = &kafka().bootstrap;
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-open", 1).await;
    let id = unique_name("txn-open");
    let crashed = txn_producer(bootstrap, &id).await;
    crashed.begin_transaction().expect("begin");
    send_all(&crashed, &topic, 1, &values("open", 5)).await;
    // Gone without committing or aborting.
    drop(crashed);

    let next = txn_producer(bootstrap, &id).await;
    // The read_committed reader gets past the open transaction (its abort marker) at once,
    // without waiting for transaction.timeout.ms (60 s).
    let started = Instant::now();
    commit_then_read_only_these(&next, bootstrap, &topic, 1, "next").await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        kafkit_read(bootstrap, &topic, 1, "read_uncommitted", 10)
            .await
            .len(),
        10
    );
}

/// No successor comes: the transaction coordinator aborts the open transaction once its
/// `transaction.timeout.ms` has passed (the broker looks every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, 10 s by default), so a
/// `read_committed` reader stuck behind it gets past without anyone's help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_open_is_aborted_by_the_coordinator_after_its_timeout() {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let bootstrap = &kafka().bootstrap;
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-timeout", 1).await;
    let id = unique_name("txn-timeout");
    let stalled = txn_producer_with(bootstrap, &id, Some(TIMEOUT)).await;
    stalled.begin_transaction().expect("begin");
    send_all(&stalled, &topic, 1, &values("open", 5)).await;
    let opened = Instant::now();
    // Records after the open transaction: read_committed cannot pass its first offset until
    // the transaction ends.
    let plain = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([bootstrap.clone()])
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    send_all(&plain, &topic, 1, &values("after", 5)).await;
    plain.close(CALL).await.unwrap();

    // `kafkit_read` waits for the five, then for the end: it returns only once the
    // coordinator's abort marker moved the last stable offset past everything.
    let read = kafkit_read(bootstrap, &topic, 1, "read_committed", 5).await;
    let took = opened.elapsed();
    assert_eq!(
        read,
        values("after", 5),
        "the open transaction's records are aborted"
    );
    assert!(
        took >= TIMEOUT,
        "the reader got past before the timeout ({took:?}): nothing proved"
    );
    // transaction.timeout.ms + one cleanup interval + slack for a loaded machine.
    assert!(took < Duration::from_secs(45), "blocked for {took:?}");
    // The stalled producer's transaction was aborted for it: its commit now fails.
    assert!(stalled.commit_transaction(CALL).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_are_committed_only_when_it_commits() {
    offsets_committed_with_the_transaction("classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_of_a_kip848_member_are_committed_only_when_the_transaction_commits() {
    offsets_committed_with_the_transaction("consumer").await;
}

/// `send_offsets_to_transaction` with a subscribed member's metadata (`group.protocol`
/// `protocol`: the classic generation or the KIP-848 member epoch).
async fn offsets_committed_with_the_transaction(protocol: &str) {
    let bootstrap = &kafka().bootstrap;
    let input = kafkit_tests::fill::topic(bootstrap, "txn-in", 1).await;
    let output = kafkit_tests::fill::topic(bootstrap, "txn-out", 1).await;
    {
        let plain = Producer::new(
            ProducerConfig::builder()
                .bootstrap_servers([bootstrap.clone()])
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
        send_all(&plain, &input, 1, &values("in", 10)).await;
        plain.close(CALL).await.unwrap();
    }
    let group = unique_name("txn-group");
    let consumer = Consumer::new(
        ConsumerConfig::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("fetch.max.wait.ms", "100"),
            ("group.protocol", protocol),
        ])
        .unwrap(),
    )
    .await
    .unwrap();
    consumer.subscribe([input.as_str()]).await.unwrap();
    let deadline = Instant::now() + WAIT;
    let mut read = Vec::new();
    while read.len() < 10 {
        assert!(
            Instant::now() < deadline,
            "only {} input records",
            read.len()
        );
        read.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    let metadata = consumer.group_metadata().expect("group metadata");
    assert_eq!(metadata.group_id, group);
    assert!(metadata.generation_id >= 1, "{metadata:?}");
    assert!(!metadata.member_id.is_empty());
    let tp = TopicPartition::new(input.clone(), 0);
    let offsets = |offset: i64| {
        let mut m = BTreeMap::new();
        m.insert(tp.clone(), OffsetAndMetadata::new(offset));
        m
    };
    let producer = txn_producer(bootstrap, &unique_name("txn-offsets")).await;

    // Aborted: neither the output nor the offsets.
    producer.begin_transaction().unwrap();
    send_all(&producer, &output, 1, &values("out-a", 5)).await;
    producer
        .send_offsets_to_transaction(&offsets(5), &metadata)
        .await
        .expect("send offsets");
    producer.abort_transaction(CALL).await.expect("abort");
    let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
    assert_eq!(committed.get(&tp).cloned().flatten(), None);

    // Committed: both.
    producer.begin_transaction().unwrap();
    send_all(&producer, &output, 1, &values("out-c", 10)).await;
    producer
        .send_offsets_to_transaction(&offsets(10), &metadata)
        .await
        .expect("send offsets");
    producer.commit_transaction(CALL).await.expect("commit");
    let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
    assert_eq!(
        committed.get(&tp).cloned().flatten().map(|o| o.offset),
        Some(10)
    );
    producer.close(CALL).await.unwrap();

    // A stale generation is refused (KIP-447): the transaction must abort.
    let stale = kafkit::producer::ConsumerGroupMetadata {
        generation_id: metadata.generation_id + 100,
        ..metadata.clone()
    };
    let producer = txn_producer(bootstrap, &unique_name("txn-stale")).await;
    producer.begin_transaction().unwrap();
    let refused = producer
        .send_offsets_to_transaction(&offsets(10), &stale)
        .await;
    assert!(
        matches!(&refused, Err(e) if e.is_abortable()),
        "a stale generation must make the transaction abortable: {refused:?}"
    );
    assert!(producer
        .commit_transaction(CALL)
        .await
        .is_err_and(|e| e.is_abortable()));
    producer.abort_transaction(CALL).await.expect("abort");
    producer.close(CALL).await.unwrap();
    consumer.close(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        kafkit_read(bootstrap, &output, 1, "read_committed", 10).await,
        sorted(&[values("out-c", 10)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_out_of_order_are_refused_typed() {
    let bootstrap = &kafka().bootstrap;
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-order", 1).await;
    let config = ProducerConfig::builder()
        .bootstrap_servers([bootstrap.clone()])
        .transactional_id(unique_name("txn-order"))
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    // Before init_transactions.
    assert!(matches!(
        producer.begin_transaction(),
        Err(TransactionError::InvalidState { .. })
    ));
    producer.init_transactions(WAIT).await.unwrap();
    // Outside a transaction.
    match producer
        .send(ProducerRecord::new(topic.as_str()).value("x"))
        .await
    {
        Err(ProduceError::Transaction(e)) => {
            assert!(matches!(*e, TransactionError::InvalidState { .. }), "{e}")
        }
        Err(other) => panic!("expected an invalid-state error, got {other}"),
        Ok(_) => panic!("a record outside a transaction was accepted"),
    }
    assert!(matches!(
        producer.commit_transaction(CALL).await,
        Err(TransactionError::InvalidState { .. })
    ));
    producer.begin_transaction().unwrap();
    assert!(matches!(
        producer.begin_transaction(),
        Err(TransactionError::InvalidState { .. })
    ));
    // An empty transaction ends without a request.
    producer.commit_transaction(CALL).await.unwrap();
    producer.close(CALL).await.unwrap();
    // Without a transactional.id.
    let plain = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([bootstrap.clone()])
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(matches!(
        plain.begin_transaction(),
        Err(TransactionError::NotTransactional)
    ));
    plain.close(CALL).await.unwrap();
}

/// A send the broker refuses inside a transaction (a record over the topic's
/// `max.message.bytes`) makes the transaction abort-only: commit fails naming the cause, abort
/// works (v1: by an epoch bump, the failed batch's sequence being unresolved; v2: EndTxn), and
/// the next transaction commits.
async fn a_failed_send_makes_the_transaction_abort_only(bootstrap: &str, _protocol: u8) {
    let admin = kafkit::admin::Admin::connect(bootstrap)
        .await
        .expect("admin");
    let topic = unique_name("txn-abortable");
    admin
        .create_topics(&[
            kafkit::admin::NewTopic::new(&topic, 1, 1).config("max.message.bytes", "2000")
        ])
        .await
        .expect("create topic");
    admin.cluster().close();
    let producer = txn_producer(bootstrap, &unique_name("txn-abortable")).await;
    producer.begin_transaction().expect("begin");
    send_all(&producer, &topic, 1, &values("before", 3)).await;
    let big = ProducerRecord::new(topic.as_str()).value(vec![b'x'; 10_000]);
    let delivery = producer.send(big).await.expect("queued");
    let failed = tokio::time::timeout(WAIT, delivery)
        .await
        .expect("an outcome");
    assert!(
        failed.is_err(),
        "a record over max.message.bytes was written"
    );
    match producer.commit_transaction(CALL).await {
        Err(TransactionError::Abortable { cause }) => {
            assert!(matches!(*cause, ProduceError::Broker { .. }), "{cause}")
        }
        other => panic!("the commit must be refused as abortable, got {other:?}"),
    }
    // Sends are refused until the abort.
    assert!(producer
        .send(ProducerRecord::new(topic.as_str()).value("refused"))
        .await
        .is_err());
    producer.abort_transaction(CALL).await.expect("abort");
    commit_then_read_only_these(&producer, bootstrap, &topic, 1, "after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_commit_leaves_the_producer_usable() {
    let bootstrap = &kafka().bootstrap;
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-timeout", 1).await;
    let producer = txn_producer(bootstrap, &unique_name("txn-timeout")).await;
    let queue = |prefix: &'static str| {
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            let mut acks = Vec::new();
            for v in values(prefix, 5) {
                let record = ProducerRecord::new(topic.as_str()).value(v);
                acks.push(producer.send(record).await.expect("send"));
            }
            acks
        }
    };
    // No time to flush: the commit times out, the transaction is still open (nothing sent
    // EndTxn), so it can be aborted.
    producer.begin_transaction().unwrap();
    let dropped = queue("dropped").await;
    match producer.commit_transaction(Duration::ZERO).await {
        Err(e @ TransactionError::Timeout { .. }) => assert!(e.is_retriable()),
        other => panic!("expected a timeout, got {other:?}"),
    }
    producer
        .abort_transaction(CALL)
        .await
        .expect("abort after a timed-out commit");
    for ack in dropped {
        // Aborted: either failed before being sent or written inside the aborted transaction.
        let _ = tokio::time::timeout(WAIT, ack).await.expect("an outcome");
    }
    // The same commit again, with time: it goes through.
    producer.begin_transaction().unwrap();
    let kept = queue("kept").await;
    assert!(matches!(
        producer.commit_transaction(Duration::ZERO).await,
        Err(TransactionError::Timeout { .. })
    ));
    producer
        .commit_transaction(CALL)
        .await
        .expect("commit retried");
    for ack in kept {
        ack.await.expect("a committed record");
    }
    producer.close(CALL).await.unwrap();
    assert_eq!(
        kafkit_read(bootstrap, &topic, 1, "read_committed", 5).await,
        sorted(&[values("kept", 5)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_lists_and_describes_an_open_transaction() {
    use kafkit::admin::{Admin, ListTransactionsFilter};
    let bootstrap = &kafka().bootstrap;
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-admin", 2).await;
    let id = unique_name("txn-admin");
    let producer = txn_producer(bootstrap, &id).await;
    producer.begin_transaction().unwrap();
    send_all(&producer, &topic, 2, &values("open", 4)).await;

    let admin = Admin::connect(bootstrap).await.expect("admin");
    let ongoing = ListTransactionsFilter {
        states: vec!["Ongoing".to_owned()],
        ..ListTransactionsFilter::default()
    };
    let listed = admin.list_transactions(&ongoing).await.expect("list");
    let mine = listed
        .iter()
        .find(|t| t.transactional_id == id)
        .unwrap_or_else(|| panic!("{id} not listed as ongoing: {listed:?}"));
    assert_eq!(mine.state, "Ongoing");
    let described = admin.describe_transactions(&[&id]).await.expect("describe");
    assert_eq!(described.len(), 1);
    let d = &described[0];
    assert_eq!(
        (d.state.as_str(), d.producer_id),
        ("Ongoing", mine.producer_id)
    );
    assert_eq!(d.timeout_ms, 60_000);
    assert!(d.start_time_ms > 0);
    assert_eq!(d.partitions.get(&topic), Some(&vec![0, 1]));

    producer.commit_transaction(CALL).await.expect("commit");
    // The commit returns once PrepareCommit is logged; the markers follow.
    let deadline = Instant::now() + WAIT;
    let completed = loop {
        let described = admin.describe_transactions(&[&id]).await.expect("describe");
        if described[0].state != "PrepareCommit" {
            break described.into_iter().next().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "still PrepareCommit after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(completed.state, "CompleteCommit");
    assert!(completed.partitions.is_empty());
    let listed = admin.list_transactions(&ongoing).await.expect("list");
    assert!(listed.iter().all(|t| t.transactional_id != id));
    // An unknown id is a typed broker error.
    assert!(admin
        .describe_transactions(&[&unique_name("txn-none")])
        .await
        .is_err());
    producer.close(CALL).await.unwrap();
    admin.cluster().close();
}

/// The read_committed end (last stable offset) of each partition, as a consumer sees it.
async fn last_stable_offsets(bootstrap: &str, tps: &[TopicPartition]) -> Vec<i64> {
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("isolation.level", "read_committed"),
    ])
    .expect("config");
    let consumer = Consumer::new(config).await.expect("consumer");
    let ends = consumer.end_offsets(tps, CALL).await.expect("end offsets");
    consumer.close(Duration::from_secs(5)).await.expect("close");
    tps.iter().map(|tp| ends[tp]).collect()
}

/// KIP-664's hanging-transaction tools: a producer gone without ending its transaction (and
/// a transaction timeout far beyond the test, so its coordinator will not end it meanwhile)
/// holds both partitions' last stable offset at its first offset, so a `read_committed`
/// reader sees none of the records written after it. `describe_producers` shows it with that
/// start offset; a marker with an older producer epoch is refused, typed; `abort_transaction`
/// (an abort marker from each partition's leader) moves the LSO to the end: the reader gets
/// the later records and none of the hanging ones, while the coordinator still calls the
/// transaction Ongoing (it was the admin's marker, not a timeout).
async fn hanging_transaction_aborted_by_admin(bootstrap: &str, _protocol: u8) {
    use kafkit::admin::{AbortTransactionSpec, Admin, TxnAdminError};
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-hanging", 2).await;
    let tps: Vec<TopicPartition> = (0..2)
        .map(|p| TopicPartition::new(topic.clone(), p))
        .collect();
    // Committed records first, so the hanging transaction does not start at offset 0.
    let before = kafkit_tests::fill::produce_tagged(bootstrap, &topic, 2, "before", 3).await;
    let id = unique_name("txn-hanging");
    // An earlier incarnation of the id, so that the hanging producer's epoch is above 0 and
    // one older than it can be tried.
    let first = txn_producer(bootstrap, &id).await;
    first.close(CALL).await.expect("close");
    let hanging = txn_producer_with(bootstrap, &id, Some(Duration::from_secs(600))).await;
    hanging.begin_transaction().expect("begin");
    send_all(&hanging, &topic, 2, &values("hanging", 6)).await;
    drop(hanging);
    let after = kafkit_tests::fill::produce_tagged(bootstrap, &topic, 2, "after", 4).await;

    // Blocked: the LSO is the transaction's first offset (3 on both partitions).
    assert_eq!(last_stable_offsets(bootstrap, &tps).await, [3, 3]);
    let visible = kafkit_read(bootstrap, &topic, 2, "read_committed", before.len()).await;
    assert_eq!(visible, before.iter().cloned().collect::<Vec<_>>());

    let admin = Admin::connect(bootstrap).await.expect("admin");
    let producers = admin
        .describe_producers(&tps)
        .await
        .expect("describe producers");
    assert_eq!(producers.len(), 2);
    let mut specs = Vec::new();
    for tp in &tps {
        let open: Vec<_> = producers[tp]
            .iter()
            .filter(|p| p.current_txn_start_offset.is_some())
            .collect();
        assert_eq!(open.len(), 1, "{tp:?}: {:?}", producers[tp]);
        assert_eq!(open[0].current_txn_start_offset, Some(3));
        assert_eq!(open[0].last_sequence, 2, "three records on each partition");
        assert!(open[0].last_timestamp_ms > 0);
        specs.push(open[0].abort_spec(tp).expect("an open transaction"));
    }
    // The idempotent producers of "before"/"after" are listed too, with nothing open.
    assert!(producers[&tps[0]].len() >= 2, "{:?}", producers[&tps[0]]);

    // A spec whose producer epoch is older than the partition's is refused, typed, and
    // changes nothing.
    assert!(specs[0].producer_epoch > 0, "{specs:?}");
    let mut stale = specs[0].clone();
    stale.producer_epoch -= 1;
    match admin.abort_transaction(&stale).await {
        Err(TxnAdminError::ProducerEpoch { partition, .. }) => assert_eq!(partition, tps[0]),
        other => panic!("expected ProducerEpoch, got {other:?}"),
    }
    assert_eq!(last_stable_offsets(bootstrap, &tps).await, [3, 3]);

    for spec in &specs {
        admin
            .abort_transaction(spec)
            .await
            .expect("abort_transaction");
    }
    // The LSO moves to the end (each abort marker takes one offset), the reader gets the
    // records written after the transaction and none of it.
    assert_eq!(last_stable_offsets(bootstrap, &tps).await, [11, 11]);
    let mut expected: Vec<String> = before.iter().chain(after.iter()).cloned().collect();
    expected.sort();
    assert_eq!(
        kafkit_read(bootstrap, &topic, 2, "read_committed", expected.len()).await,
        expected
    );
    assert_eq!(
        kafkit_read(bootstrap, &topic, 2, "read_uncommitted", 20)
            .await
            .len(),
        20
    );
    let producers = admin
        .describe_producers(&tps)
        .await
        .expect("describe producers");
    for tp in &tps {
        assert!(
            producers[tp]
                .iter()
                .all(|p| p.current_txn_start_offset.is_none()),
            "{tp:?}: {:?}",
            producers[tp]
        );
    }
    let described = admin.describe_transactions(&[&id]).await.expect("describe");
    assert_eq!(
        described[0].state, "Ongoing",
        "the coordinator did not end it"
    );

    // The partition now remembers the marker's coordinator epoch: an older one is fenced.
    let older = AbortTransactionSpec {
        coordinator_epoch: specs[1].coordinator_epoch - 1,
        ..specs[1].clone()
    };
    match admin.abort_transaction(&older).await {
        Err(TxnAdminError::CoordinatorFenced {
            partition,
            coordinator_epoch,
        }) => {
            assert_eq!(
                (partition, coordinator_epoch),
                (tps[1].clone(), older.coordinator_epoch)
            );
        }
        other => panic!("expected CoordinatorFenced, got {other:?}"),
    }
    admin.cluster().close();
}

/// A producer through `proxy` with a short `request.timeout.ms` and `max.block.ms` (a request
/// whose answer the proxy swallows fails fast), initialized.
async fn txn_producer_via(proxy: &ProxyCluster, id: &str) -> Producer {
    let config = ProducerConfig::builder()
        .bootstrap_servers([proxy.bootstrap()])
        .transactional_id(id)
        .linger(Duration::from_millis(5))
        .request_timeout(Duration::from_millis(1_500))
        .max_block(Duration::from_millis(2_500))
        .build()
        .expect("config");
    let producer = Producer::new(config).await.expect("producer");
    producer
        .init_transactions(WAIT)
        .await
        .expect("init_transactions");
    producer
}

/// The coordinator's state of transactional id `id` once it is no longer being completed
/// (PrepareAbort/PrepareCommit: markers still being written).
async fn settled_transaction_state(bootstrap: &str, id: &str) -> String {
    let admin = kafkit::admin::Admin::connect(bootstrap)
        .await
        .expect("admin");
    let deadline = Instant::now() + WAIT;
    loop {
        let described = admin.describe_transactions(&[id]).await.expect("describe");
        let state = described[0].state.clone();
        if !state.starts_with("Prepare") {
            return state;
        }
        assert!(Instant::now() < deadline, "still {state} after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Transactions v1: an AddPartitionsToTxn whose answer is lost (the request timed out) may
/// have been applied. The abort asks again and ends with EndTxn(abort): the coordinator holds
/// no open transaction afterwards. (Ending locally left it Ongoing, to be timed out with an
/// epoch bump that fences the producer if it idles that long; found by the simulation.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_after_a_lost_add_partitions_answer_closes_the_transaction_on_kafka_39() {
    let bootstrap = kafka_39();
    let topic = kafkit_tests::fill::topic(bootstrap, "txn-lost-add", 1).await;
    let proxy = ProxyCluster::start(bootstrap).await;
    let id = unique_name("txn-lost-add");
    let producer = txn_producer_via(&proxy, &id).await;
    producer.begin_transaction().unwrap();
    proxy.drop_response_of(ApiKey::AddPartitionsToTxn, 1, LostResponse::Blackhole);
    let delivery = producer
        .send(ProducerRecord::new(&topic).partition(0).value("lost-add"))
        .await
        .expect("send");
    let deadline = Instant::now() + WAIT;
    while proxy.stats().requests_of(ApiKey::AddPartitionsToTxn) == 0 {
        assert!(Instant::now() < deadline, "no AddPartitionsToTxn sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    producer.abort_transaction(CALL).await.expect("abort");
    assert!(delivery.await.is_err(), "an aborted record fails");
    assert!(
        proxy.stats().requests_of(ApiKey::AddPartitionsToTxn) >= 2,
        "the add in doubt was asked again"
    );
    assert_eq!(
        proxy.stats().requests_of(ApiKey::EndTxn),
        1,
        "then EndTxn(abort)"
    );
    assert_eq!(
        settled_transaction_state(bootstrap, &id).await,
        "CompleteAbort"
    );
    // The producer goes on (same epoch: nothing was fenced).
    producer.begin_transaction().unwrap();
    send_all(&producer, &topic, 1, &values("after", 2)).await;
    producer.commit_transaction(CALL).await.expect("commit");
    producer.close(CALL).await.unwrap();
}

/// Transactions v1: the same for AddOffsetsToTxn. `send_offsets_to_transaction` times out
/// with the answer lost; the abort asks again, then ends with EndTxn(abort).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_after_a_lost_add_offsets_answer_closes_the_transaction_on_kafka_39() {
    let bootstrap = kafka_39();
    let proxy = ProxyCluster::start(bootstrap).await;
    let id = unique_name("txn-lost-offsets");
    let producer = txn_producer_via(&proxy, &id).await;
    producer.begin_transaction().unwrap();
    // Both attempts within max.block.ms lose their answers (a rule counts from the request
    // after the previous rule's).
    proxy.drop_response_of(ApiKey::AddOffsetsToTxn, 1, LostResponse::Blackhole);
    proxy.drop_response_of(ApiKey::AddOffsetsToTxn, 1, LostResponse::Blackhole);
    let mut offsets = BTreeMap::new();
    offsets.insert(
        TopicPartition::new(unique_name("txn-lost-offsets-in"), 0),
        OffsetAndMetadata::new(1),
    );
    let group = kafkit::producer::ConsumerGroupMetadata::new(unique_name("txn-lost-offsets-g"));
    let sent = producer.send_offsets_to_transaction(&offsets, &group).await;
    assert!(
        matches!(&sent, Err(TransactionError::Timeout { .. })),
        "{sent:?}"
    );
    let asked = proxy.stats().requests_of(ApiKey::AddOffsetsToTxn);
    producer.abort_transaction(CALL).await.expect("abort");
    assert!(
        proxy.stats().requests_of(ApiKey::AddOffsetsToTxn) > asked,
        "the AddOffsetsToTxn in doubt was asked again"
    );
    assert_eq!(
        proxy.stats().requests_of(ApiKey::EndTxn),
        1,
        "then EndTxn(abort)"
    );
    assert_eq!(
        settled_transaction_state(bootstrap, &id).await,
        "CompleteAbort"
    );
    producer.close(CALL).await.unwrap();
}
