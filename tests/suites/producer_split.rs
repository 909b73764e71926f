//! Batches too large for the topic: a broker refuses a batch above the topic's
//! `max.message.bytes` with `MESSAGE_TOO_LARGE`; the producer splits it and sends the pieces in
//! order (Java's behaviour), so every record is written once, in order, where its delivery report
//! says — idempotent or not, and inside a transaction. A record too large on its own still fails
//! with `MESSAGE_TOO_LARGE`, alone.

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::producer::{ProduceError, Producer, ProducerRecord};
use kafkit::state::group::TopicPartition;
use kafkit_tests::verify::{read_back, value_of, verify, Sent};
use kafkit_tests::{kafka, unique_name};

const PARTITIONS: i32 = 2;
/// The topic's `max.message.bytes`: a batch of a few hundred small records is above it.
const MAX_MESSAGE_BYTES: &str = "2048";
const WAIT: Duration = Duration::from_secs(60);

async fn small_topic(prefix: &str) -> String {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let name = unique_name(prefix);
    let topic = NewTopic::new(&name, PARTITIONS, 1).config("max.message.bytes", MAX_MESSAGE_BYTES);
    admin.create_topics(&[topic]).await.unwrap();
    admin.cluster().close();
    name
}

/// Sends records `ids` round-robin over the partitions; linger is long, so each partition's
/// records wait in one batch until the flush.
async fn send_ids(producer: &Producer, topic: &str, ids: std::ops::Range<u64>) -> Vec<Sent> {
    let mut pending = Vec::new();
    for id in ids {
        let partition = i32::try_from(id % PARTITIONS as u64).unwrap();
        let record = ProducerRecord::new(topic)
            .partition(partition)
            .value(value_of(id));
        pending.push((id, producer.send(record).await.unwrap()));
    }
    producer.flush().await.unwrap();
    let mut sent = Vec::new();
    for (id, delivery) in pending {
        let md = delivery
            .await
            .unwrap_or_else(|e| panic!("record {id}: {e}"));
        sent.push(Sent {
            id,
            partition: md.partition,
            offset: Some(md.offset),
        });
    }
    sent
}

#[tokio::test]
async fn a_batch_above_max_message_bytes_is_split_every_record_once_in_order() {
    for idempotent in [true, false] {
        let topic = small_topic("split").await;
        let config = ProducerConfig::builder()
            .bootstrap_servers([kafka().bootstrap.clone()])
            .enable_idempotence(idempotent)
            .batch_size(256 * 1024)
            .linger(Duration::from_secs(30))
            .build()
            .unwrap();
        let producer = Producer::new(config).await.unwrap();
        let sent = send_ids(&producer, &topic, 0..3_000).await;
        let metrics = producer.metrics();
        assert!(
            metrics.batch_splits >= 2,
            "idempotent {idempotent}: {metrics:?}"
        );
        assert_eq!(metrics.records_sent, 3_000);
        assert_eq!(metrics.records_failed, 0);
        assert_eq!(metrics.epoch_bumps, 0, "a split is not a sequence error");
        producer.close(Duration::from_secs(10)).await.unwrap();
        let log = read_back(&kafka().bootstrap, &topic, PARTITIONS, &sent, WAIT).await;
        verify(&sent, &log).assert_exact();
    }
}

#[tokio::test]
async fn a_record_alone_above_max_message_bytes_fails_with_message_too_large() {
    let topic = small_topic("split-single").await;
    // Default settings (idempotent), long linger so the three records share a batch.
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.clone()])
        .linger(Duration::from_secs(30))
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    let send = |value: String| {
        let record = ProducerRecord::new(&topic).partition(0).value(value);
        producer.send(record)
    };
    let first = send(value_of(1)).await.unwrap();
    let big = send("9".repeat(4_000)).await.unwrap();
    let last = send(value_of(2)).await.unwrap();
    producer.flush().await.unwrap();
    let first = first.await.unwrap();
    let err = big.await.unwrap_err();
    assert!(
        matches!(
            err,
            ProduceError::Broker {
                code: ResponseError::MessageTooLarge,
                ..
            }
        ),
        "{err:?}"
    );
    let last = last.await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
    let sent = [(1, first), (2, last)].map(|(id, md)| Sent {
        id,
        partition: md.partition,
        offset: Some(md.offset),
    });
    let log = read_back(&kafka().bootstrap, &topic, 1, &sent, WAIT).await;
    verify(&sent, &log).assert_exact();
}

/// Split pieces stay in their transaction: an aborted transaction's pieces are invisible to a
/// `read_committed` reader, a committed one's all visible, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_pieces_stay_in_their_transaction() {
    let topic = small_topic("split-txn").await;
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.clone()])
        .transactional_id(unique_name("split-txn"))
        .batch_size(256 * 1024)
        .linger(Duration::from_secs(30))
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    producer.init_transactions(WAIT).await.unwrap();
    producer.begin_transaction().unwrap();
    let aborted = send_ids(&producer, &topic, 0..1_000).await;
    assert_eq!(aborted.len(), 1_000);
    producer.abort_transaction(WAIT).await.unwrap();
    producer.begin_transaction().unwrap();
    let committed = send_ids(&producer, &topic, 1_000..2_000).await;
    producer.commit_transaction(WAIT).await.unwrap();
    assert!(
        producer.metrics().batch_splits >= 4,
        "{:?}",
        producer.metrics()
    );
    producer.close(Duration::from_secs(10)).await.unwrap();

    let read = read_committed(&topic, committed.len()).await;
    let mut expected: Vec<Vec<u64>> = vec![Vec::new(); PARTITIONS as usize];
    for s in &committed {
        expected[s.partition as usize].push(s.id);
    }
    assert_eq!(
        read, expected,
        "the committed records, in order, and nothing aborted"
    );
}

/// Every partition of `topic` read with `read_committed` until `at_least` records are in and
/// every partition is caught up: record ids per partition, in log order.
async fn read_committed(topic: &str, at_least: usize) -> Vec<Vec<u64>> {
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", kafka().bootstrap.as_str()),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.to_owned(), p))
        .collect();
    consumer.assign(tps.clone()).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut out = vec![Vec::new(); PARTITIONS as usize];
    loop {
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            let id = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
            out[r.partition as usize].push(id.parse::<u64>().unwrap());
        }
        let read: usize = out.iter().map(Vec::len).sum();
        if read >= at_least && tps.iter().all(|tp| consumer.lag(tp) == Some(0)) {
            break;
        }
        assert!(Instant::now() < deadline, "read {read} of {at_least}");
    }
    consumer.close(Duration::from_secs(5)).await.unwrap();
    out
}
