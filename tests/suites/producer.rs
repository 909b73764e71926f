//! The producer against a real broker: every record exactly once, in order, where its
//! delivery report says; typed errors; close and unreachable brokers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{Acks, Compression, ProducerConfig, ProducerConfigBuilder};
use kafkit::producer::{DeliveryFuture, ProduceError, Producer, ProducerRecord};
use kafkit::state::murmur2::partition_for_key;
use kafkit::Error;
use kafkit_tests::verify::fetch_one;
use kafkit_tests::{kafka, unique_name};
use kafkit_wire::record::BatchReader;

const PARTITIONS: i32 = 6;

fn config() -> ProducerConfigBuilder {
    ProducerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.clone()])
        .linger(Duration::from_millis(5))
}

async fn topic(admin: &Admin, prefix: &str) -> String {
    let name = unique_name(prefix);
    admin
        .create_topics(&[NewTopic::new(&name, PARTITIONS, 1)])
        .await
        .unwrap();
    name
}

/// A record as read back: (offset, key, value).
type Read = (i64, Option<Bytes>, Option<Bytes>);

/// Reads every partition of `topic` from offset 0 until `expected` records are in.
async fn read_all(admin: &Admin, topic: &str, expected: usize) -> HashMap<i32, Vec<Read>> {
    let cluster = admin.cluster();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out: HashMap<i32, Vec<Read>> = HashMap::new();
    let mut next: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    loop {
        let total: usize = out.values().map(Vec::len).sum();
        if total >= expected {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "only {total} of {expected} records came back"
        );
        cluster.refresh_metadata(Some(&[topic])).await.unwrap();
        for p in 0..PARTITIONS {
            let (leader, topic_id) = {
                let m = cluster.metadata();
                (
                    m.leader(topic, p).map(|b| b.node_id),
                    m.topic(topic).map(|t| t.topic_id),
                )
            };
            let (Some(leader), Some(topic_id)) = (leader, topic_id) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue; // a new topic's leaders are not known yet
            };
            let conn = cluster.connection(leader).await.unwrap();
            let version = conn.version(ApiKey::Fetch).unwrap();
            let request = fetch_one(topic, topic_id, p, next[&p], version, 100);
            let response = conn
                .send(&request, version, Duration::from_secs(30))
                .await
                .unwrap();
            for part in response.responses.iter().flat_map(|t| &t.partitions) {
                if let Err(err) = Error::check(ApiKey::Fetch, part.error_code, None) {
                    assert!(err.is_retriable(), "{err}");
                    continue; // a new partition's leader is not ready yet
                }
                let Some(records) = part.records.clone() else {
                    continue;
                };
                for batch in BatchReader::new(records) {
                    for r in batch.unwrap().records() {
                        let pos = next.get_mut(&p).unwrap();
                        if r.offset < *pos {
                            continue;
                        }
                        *pos = r.offset + 1;
                        out.entry(p)
                            .or_default()
                            .push((r.offset, r.key.clone(), r.value.clone()));
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn every_record_once_in_order_where_reported_for_every_codec() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = topic(&admin, "producer-codecs").await;
    const PER_CODEC: usize = 1_000;
    let mut sent: Vec<(String, Option<String>, DeliveryFuture)> = Vec::new();
    for codec in Compression::ALL {
        let producer = Producer::new(config().compression(codec).build().unwrap())
            .await
            .unwrap();
        for i in 0..PER_CODEC {
            let value = format!("{}-{i}", codec.name());
            let key = (i % 3 != 0).then(|| format!("key-{}", i % 97));
            let mut record = ProducerRecord::new(&topic).value(value.clone());
            if let Some(k) = &key {
                record = record.key(k.clone());
            }
            sent.push((value, key, producer.send(record).await.unwrap()));
        }
        producer.flush().await.unwrap();
        let m = producer.metrics();
        assert_eq!(m.records_sent, PER_CODEC as u64, "{m:?}");
        producer.close(Duration::from_secs(30)).await.unwrap();
    }
    let mut reported: HashMap<String, (i32, i64, Option<String>)> = HashMap::new();
    for (value, key, delivery) in sent {
        let md = delivery.await.unwrap();
        assert_eq!(&*md.topic, topic.as_str());
        if let Some(k) = &key {
            let expect = partition_for_key(k.as_bytes(), PARTITIONS as u32).unwrap();
            assert_eq!(md.partition as u32, expect, "key {k}");
        }
        assert!(reported
            .insert(value, (md.partition, md.offset, key))
            .is_none());
    }
    let total = PER_CODEC * Compression::ALL.len();
    let log = read_all(&admin, &topic, total).await;
    let mut seen = 0;
    for (p, records) in &log {
        let mut last_index: HashMap<String, usize> = HashMap::new();
        for (offset, key, value) in records {
            let value = String::from_utf8(value.clone().unwrap().to_vec()).unwrap();
            let (rp, ro, rk) = reported.remove(&value).expect("read once, and sent");
            assert_eq!((rp, ro), (*p, *offset), "{value} reported elsewhere");
            assert_eq!(rk.as_deref().map(str::as_bytes), key.as_deref());
            // Append order per partition: within a codec, i increases.
            let (codec, i) = value.rsplit_once('-').unwrap();
            let i: usize = i.parse().unwrap();
            if let Some(prev) = last_index.insert(codec.to_owned(), i) {
                assert!(prev < i, "partition {p}: {codec} {prev} before {i}");
            }
            seen += 1;
        }
    }
    assert_eq!(seen, total);
    assert!(reported.is_empty(), "{} records never read", reported.len());
}

#[tokio::test]
async fn acks_0_and_1_and_no_idempotence_deliver() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    for (acks, idempotent) in [
        (Acks::None, false),
        (Acks::Leader, false),
        (Acks::All, false),
    ] {
        let topic = topic(&admin, "producer-acks").await;
        // acks=0 gives no guarantee: a write before the new partitions' leaders are ready is
        // lost without a word. One acknowledged record per partition first.
        let warm_up = Producer::new(config().build().unwrap()).await.unwrap();
        for p in 0..PARTITIONS {
            let record = ProducerRecord::new(&topic).partition(p).value("warm-up");
            warm_up.send(record).await.unwrap().await.unwrap();
        }
        warm_up.close(Duration::from_secs(10)).await.unwrap();
        let producer = Producer::new(
            config()
                .acks(acks)
                .enable_idempotence(idempotent)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..300 {
            let record = ProducerRecord::new(&topic)
                .key(format!("k{i}"))
                .value(format!("{i}"));
            deliveries.push(producer.send(record).await.unwrap());
        }
        producer.flush().await.unwrap();
        for d in deliveries {
            let md = d.await.unwrap();
            if acks == Acks::None {
                assert_eq!(md.offset, -1);
            } else {
                assert!(md.offset >= 0);
            }
        }
        let log = read_all(&admin, &topic, 300 + PARTITIONS as usize).await;
        let values: usize = log.values().map(Vec::len).sum();
        assert_eq!(values, 300 + PARTITIONS as usize, "{acks:?}");
        producer.close(Duration::from_secs(10)).await.unwrap();
    }
}

#[tokio::test]
async fn oversize_record_is_refused_with_a_typed_error() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = topic(&admin, "producer-oversize").await;
    let producer = Producer::new(config().max_request_size(100_000).build().unwrap())
        .await
        .unwrap();
    let big = ProducerRecord::new(&topic).value(vec![0u8; 200_000]);
    let err = producer.send(big).await.unwrap_err();
    assert!(
        matches!(err, ProduceError::RecordTooLarge { .. }),
        "{err:?}"
    );
    // A record above batch.size but within max.request.size goes alone.
    let ok = ProducerRecord::new(&topic).value(vec![1u8; 50_000]);
    producer.send(ok).await.unwrap().await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// A negative timestamp is refused at `send` and `try_send` (as the Java client's
/// `ProducerRecord` refuses it); 0 is a timestamp like any other, and the broker keeps it.
#[tokio::test]
async fn negative_timestamp_is_refused_with_a_typed_error() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = topic(&admin, "producer-timestamp").await;
    let producer = Producer::new(config().build().unwrap()).await.unwrap();
    for timestamp in [-1, i64::MIN] {
        let record = || ProducerRecord::new(&topic).value("v").timestamp(timestamp);
        let err = producer.send(record()).await.unwrap_err();
        assert!(
            matches!(err, ProduceError::InvalidTimestamp { timestamp: t } if t == timestamp),
            "{err:?}"
        );
        let err = producer.try_send(record()).unwrap_err();
        assert!(
            matches!(err, ProduceError::InvalidTimestamp { .. }),
            "{err:?}"
        );
    }
    let zero = ProducerRecord::new(&topic)
        .value("v")
        .timestamp(0)
        .partition(0);
    let written = producer.send(zero).await.unwrap().await.unwrap();
    assert_eq!(written.timestamp, 0);
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// A topic the broker cannot create fails after `max.block.ms`. The broker creates any
/// missing topic with a legal name (`auto.create.topics.enable` is on, Kafka's default, and the
/// producer asks, as Java's does: see `startup.rs`), so this one's name is illegal.
#[tokio::test]
async fn unknown_topic_fails_after_max_block() {
    let producer = Producer::new(
        config()
            .max_block(Duration::from_millis(1_500))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let err = producer
        .send(ProducerRecord::new(format!("{}!", unique_name("producer-missing"))).value("v"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProduceError::UnknownTopic { .. }), "{err:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1_400) && waited < Duration::from_secs(10));
    producer.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn close_gives_every_pending_record_an_outcome() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = topic(&admin, "producer-close").await;
    let producer = Producer::new(config().linger(Duration::from_secs(30)).build().unwrap())
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..500 {
        let record = ProducerRecord::new(&topic).value(format!("{i}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    let other = producer.clone();
    producer.close(Duration::from_secs(20)).await.unwrap();
    for d in deliveries {
        // Closing sends what is queued (linger is ignored): all written.
        assert!(tokio::time::timeout(Duration::from_secs(5), d)
            .await
            .unwrap()
            .is_ok());
    }
    let err = other
        .send(ProducerRecord::new(&topic).value("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProduceError::Closed), "{err:?}");

    // Dropping the producer with records queued: each gets `Closed` (or was written).
    let producer = Producer::new(config().linger(Duration::from_secs(30)).build().unwrap())
        .await
        .unwrap();
    let pending = producer
        .send(ProducerRecord::new(&topic).value("dropped"))
        .await
        .unwrap();
    drop(producer);
    let outcome = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap();
    assert!(matches!(outcome, Err(ProduceError::Closed)), "{outcome:?}");
}

#[tokio::test]
async fn no_broker_reachable_fails_new_without_hanging() {
    // A port nobody listens on; and an address that swallows SYNs (bounded by max.block).
    for bootstrap in ["127.0.0.1:1", "10.255.255.1:9092"] {
        let config = ProducerConfig::builder()
            .bootstrap_servers([bootstrap])
            .max_block(Duration::from_secs(2))
            .build()
            .unwrap();
        let started = Instant::now();
        let result = Producer::new(config).await;
        assert!(result.is_err(), "{bootstrap}");
        assert!(started.elapsed() < Duration::from_secs(5), "{bootstrap}");
    }
}

#[tokio::test]
async fn full_buffer_fails_try_send_at_once_and_send_after_max_block() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = topic(&admin, "producer-buffer").await;
    let producer = Producer::new(
        config()
            .linger(Duration::from_secs(30))
            .batch_size(1_000_000)
            .buffer_memory(20_000)
            .max_block(Duration::from_millis(500))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    // try_send never waits for metadata: the first send learns it.
    let first = ProducerRecord::new(&topic)
        .partition(0)
        .value(vec![7u8; 1_000]);
    let mut accepted = vec![producer.send(first).await.unwrap()];
    let full = loop {
        let record = ProducerRecord::new(&topic)
            .partition(0)
            .value(vec![7u8; 1_000]);
        match producer.try_send(record) {
            Ok(d) => accepted.push(d),
            Err(err) => break err,
        }
        assert!(accepted.len() < 100, "buffer.memory not enforced");
    };
    assert!(
        matches!(full, ProduceError::BufferExhausted { .. }),
        "{full:?}"
    );
    assert!(!accepted.is_empty());
    assert!(producer.metrics().buffer_used > 15_000);
    let started = Instant::now();
    let record = ProducerRecord::new(&topic)
        .partition(0)
        .value(vec![7u8; 1_000]);
    let err = producer.send(record).await.unwrap_err();
    assert!(
        matches!(err, ProduceError::BufferExhausted { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(450));
    // Flushing frees the memory.
    producer.flush().await.unwrap();
    for d in accepted {
        d.await.unwrap();
    }
    assert_eq!(producer.metrics().buffer_used, 0);
    let record = ProducerRecord::new(&topic).partition(0).value("after");
    producer.try_send(record).unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn headers_timestamps_nulls_and_explicit_partitions_round_trip() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = topic(&admin, "producer-fields").await;
    let producer = Producer::new(config().build().unwrap()).await.unwrap();
    let record = ProducerRecord::new(&topic)
        .partition(4)
        .key("k")
        .timestamp(1_700_000_000_123)
        .header("trace-id", Some("abc"))
        .header("empty", None::<Bytes>);
    let md = producer.send(record).await.unwrap().await.unwrap();
    assert_eq!((md.partition, md.timestamp), (4, 1_700_000_000_123));
    // A tombstone: key, no value.
    let tombstone = ProducerRecord::new(&topic).partition(4).key("k");
    let md2 = producer.send(tombstone).await.unwrap().await.unwrap();
    assert_eq!(md2.offset, md.offset + 1);
    let err = producer
        .send(ProducerRecord::new(&topic).partition(PARTITIONS).value("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProduceError::InvalidPartition {
                partition: 6,
                partition_count: 6,
                ..
            }
        ),
        "{err:?}"
    );
    producer.close(Duration::from_secs(10)).await.unwrap();

    // Read back with headers, through the raw reader.
    let cluster = admin.cluster();
    cluster.refresh_metadata(Some(&[&topic])).await.unwrap();
    let leader = cluster
        .metadata()
        .leader(&topic, 4)
        .map(|b| b.node_id)
        .unwrap();
    let topic_id = cluster
        .metadata()
        .topic(&topic)
        .map(|t| t.topic_id)
        .unwrap();
    let conn = cluster.connection(leader).await.unwrap();
    let version = conn.version(ApiKey::Fetch).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < 2 && Instant::now() < deadline {
        let request = fetch_one(&topic, topic_id, 4, read.len() as i64, version, 100);
        let response = conn
            .send(&request, version, Duration::from_secs(30))
            .await
            .unwrap();
        if let Some(records) = response.responses[0].partitions[0].records.clone() {
            for batch in BatchReader::new(records) {
                for r in batch.unwrap().records() {
                    if r.offset == read.len() as i64 {
                        read.push(r.clone());
                    }
                }
            }
        }
    }
    assert_eq!(read.len(), 2);
    let first = &read[0];
    assert_eq!(first.timestamp, 1_700_000_000_123);
    assert_eq!(first.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(first.value, None);
    let headers: Vec<(&[u8], Option<&[u8]>)> = first
        .headers
        .iter()
        .map(|h| (&h.key[..], h.value.as_deref()))
        .collect();
    assert_eq!(
        headers,
        [(&b"trace-id"[..], Some(&b"abc"[..])), (&b"empty"[..], None)]
    );
    assert_eq!(
        (read[1].key.as_deref(), read[1].value.as_deref()),
        (Some(&b"k"[..]), None)
    );
}

/// A topic with `message.timestamp.type=LogAppendTime`: every record reports the broker's
/// append time of its batch (not the create time it was sent with) and its own offset; on a
/// create-time topic the same records keep their own create times.
#[tokio::test]
async fn each_record_reports_its_offset_and_the_log_append_time_of_its_batch() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let appended = unique_name("producer-append-time");
    admin
        .create_topics(&[
            NewTopic::new(&appended, 1, 1).config("message.timestamp.type", "LogAppendTime")
        ])
        .await
        .unwrap();
    let created = topic(&admin, "producer-create-time").await;
    let producer = Producer::new(config().linger(Duration::from_millis(50)).build().unwrap())
        .await
        .unwrap();
    let sent_at = 1_700_000_000_000i64;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut futures = Vec::new();
    for topic in [&appended, &created] {
        for i in 0..20i64 {
            let record = ProducerRecord::new(topic.as_str())
                .partition(0)
                .timestamp(sent_at + i)
                .value(format!("v{i}"));
            futures.push(producer.send(record).await.unwrap());
        }
    }
    let mut reports = Vec::new();
    for f in futures {
        reports.push(f.await.unwrap());
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    let (appended_md, created_md) = reports.split_at(20);
    for (i, md) in appended_md.iter().enumerate() {
        assert_eq!(md.offset, i as i64);
        // The broker's clock (this machine's), not the 2023 create time sent.
        assert!(
            md.timestamp >= before - 1_000,
            "record {i}: {} vs {before}",
            md.timestamp
        );
    }
    for (i, md) in created_md.iter().enumerate() {
        assert_eq!((md.offset, md.timestamp), (i as i64, sent_at + i as i64));
    }
}

/// `partitioner.availability.timeout.ms` is accepted and, with a healthy broker, changes
/// nothing: keyless records (small batches, so the sticky partition moves often) all get a
/// delivery result and are all in the log.
#[tokio::test]
async fn a_partitioner_availability_timeout_is_applied_and_loses_nothing() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = topic(&admin, "producer-availability").await;
    let producer = Producer::new(
        config()
            .batch_size(200)
            .partitioner_availability_timeout(Duration::from_millis(50))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..300 {
        let record = ProducerRecord::new(&topic).value(format!("value-{i}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    let mut partitions = std::collections::HashSet::new();
    for d in deliveries {
        let md = d.await.unwrap();
        assert!(md.offset >= 0);
        partitions.insert(md.partition);
    }
    assert!(
        partitions.len() > 1,
        "sticky partition never moved: {partitions:?}"
    );
    let log = read_all(&admin, &topic, 300).await;
    assert_eq!(log.values().map(Vec::len).sum::<usize>(), 300);
    producer.close(Duration::from_secs(10)).await.unwrap();
}
