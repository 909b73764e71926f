//! The consumer against a real broker: assign and read back everything a producer wrote
//! (every codec) in order, exactly once; seeks (offset, beginning, end, timestamp); pause and
//! resume; lag; `auto.offset.reset`; a corrupt batch through the proxy; `read_committed` over
//! transactions written by the Java client.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{Compression, ConsumerConfig, ProducerConfig};
use kafkit::consumer::{ConsumeError, Consumer, ConsumerRecord, TimestampType};
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::state::group::TopicPartition;
use kafkit_tests::proxy::ProxyCluster;
use kafkit_tests::{kafka, unique_name};

const WAIT: Duration = Duration::from_secs(60);

async fn consumer_at(bootstrap: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut props = vec![
        ("bootstrap.servers", bootstrap),
        ("fetch.max.wait.ms", "100"),
    ];
    props.extend_from_slice(extra);
    let config = ConsumerConfig::from_properties(props).unwrap();
    Consumer::new(config).await.unwrap()
}

async fn consumer(extra: &[(&str, &str)]) -> Consumer {
    consumer_at(&kafka().bootstrap, extra).await
}

async fn topic(prefix: &str, partitions: i32) -> String {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let name = unique_name(prefix);
    admin
        .create_topics(&[NewTopic::new(&name, partitions, 1)])
        .await
        .unwrap();
    admin.cluster().close();
    name
}

async fn producer(compression: Compression) -> Producer {
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.clone()])
        .compression(compression)
        .build()
        .unwrap();
    Producer::new(config).await.unwrap()
}

/// Produces `records` (partition, value, timestamp) and waits for every acknowledgement.
async fn produce(compression: Compression, topic: &str, records: &[(i32, String, Option<i64>)]) {
    let producer = producer(compression).await;
    let mut acks = Vec::new();
    for (partition, value, ts) in records {
        let mut r = ProducerRecord::new(topic)
            .partition(*partition)
            .key(format!("k-{value}"))
            .value(value.clone())
            .header("h", Some("v"));
        if let Some(ts) = ts {
            r = r.timestamp(*ts);
        }
        acks.push(producer.send(r).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// Polls until `n` records came in (fails after `WAIT`).
async fn take(consumer: &Consumer, n: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records came",
            out.len()
        );
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    out
}

/// Asserts nothing more arrives within `quiet`.
async fn assert_quiet(consumer: &Consumer, quiet: Duration) {
    let got = consumer.poll(quiet).await.unwrap();
    assert!(
        got.is_empty(),
        "unexpected records: {:?}",
        got.iter().map(|r| r.offset).collect::<Vec<_>>()
    );
}

fn value(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_back_every_codec_in_order_exactly_once() {
    let t = topic("consumer-codecs", 3).await;
    let mut sent = Vec::new();
    for codec in Compression::ALL {
        let records: Vec<(i32, String, Option<i64>)> = (0..300)
            .map(|i| (i % 3, format!("{}-{i}", codec.as_str()), None))
            .collect();
        produce(codec, &t, &records).await;
        sent.extend(records);
    }
    let c = consumer(&[
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", "100"),
    ])
    .await;
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(t.clone(), p)).collect();
    c.assign(tps.clone()).unwrap();
    let got = take(&c, sent.len()).await;
    assert_quiet(&c, Duration::from_millis(500)).await;

    let mut per_partition: BTreeMap<i32, Vec<&ConsumerRecord>> = BTreeMap::new();
    for r in &got {
        assert_eq!(&*r.topic, t);
        assert_eq!(r.timestamp_type, TimestampType::CreateTime);
        assert_eq!(r.key.as_deref(), Some(format!("k-{}", value(r)).as_bytes()));
        assert_eq!(r.header("h").map(|v| v.as_ref()), Some(&b"v"[..]));
        assert!(r.leader_epoch.is_some());
        per_partition.entry(r.partition).or_default().push(r);
    }
    for (p, records) in &per_partition {
        // Offsets 0, 1, 2, … in order: nothing lost, nothing twice.
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {p}");
        // Values in the order they were sent to that partition.
        let values: Vec<String> = records.iter().map(|r| value(r)).collect();
        let sent_here: Vec<String> = sent
            .iter()
            .filter(|s| s.0 == *p)
            .map(|s| s.1.clone())
            .collect();
        assert_eq!(values, sent_here, "partition {p}");
    }
    for tp in &tps {
        assert_eq!(c.position(tp), Some(500));
        assert_eq!(c.lag(tp), Some(0));
    }
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
    assert!(matches!(
        c.poll(Duration::ZERO).await,
        Err(ConsumeError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_to_offset_beginning_and_end() {
    let t = topic("consumer-seek", 1).await;
    let records: Vec<_> = (0..50).map(|i| (0, format!("v{i}"), None)).collect();
    produce(Compression::Lz4, &t, &records).await;
    let tp = TopicPartition::new(t.clone(), 0);
    let c = consumer(&[("auto.offset.reset", "earliest")]).await;
    c.assign([tp.clone()]).unwrap();

    c.seek(&tp, 42).unwrap();
    let got = take(&c, 8).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (42..50).collect::<Vec<_>>()
    );
    assert_eq!(value(&got[0]), "v42");

    c.seek_to_beginning(std::slice::from_ref(&tp)).unwrap();
    let got = take(&c, 50).await;
    assert_eq!(got[0].offset, 0);
    assert_eq!(got.len(), 50);

    c.seek_to_end(std::slice::from_ref(&tp)).unwrap();
    assert_quiet(&c, Duration::from_millis(700)).await;
    assert_eq!(c.position(&tp), Some(50));
    produce(Compression::None, &t, &[(0, "after-end".into(), None)]).await;
    let got = take(&c, 1).await;
    assert_eq!((got[0].offset, value(&got[0]).as_str()), (50, "after-end"));

    // Seeking a partition that is not assigned is a typed error.
    let other = TopicPartition::new(t.clone(), 7);
    assert!(matches!(
        c.seek(&other, 0),
        Err(ConsumeError::NotAssigned { partition: 7, .. })
    ));
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_to_timestamp_returns_the_first_record_at_or_after_it() {
    let t = topic("consumer-ts", 1).await;
    let base = 1_700_000_000_000_i64;
    // Timestamps 0, 10, 20, … ms after `base`, two codecs so that batches differ.
    let records: Vec<_> = (0..40)
        .map(|i| (0, format!("v{i}"), Some(base + 10 * i)))
        .collect();
    produce(Compression::None, &t, &records[..20]).await;
    produce(Compression::Zstd, &t, &records[20..]).await;
    let tp = TopicPartition::new(t.clone(), 0);
    let c = consumer(&[("auto.offset.reset", "latest")]).await;
    c.assign([tp.clone()]).unwrap();

    for (ts, first) in [
        (base + 95, 10),
        (base + 100, 10),
        (base, 0),
        (base + 250, 25),
        (base - 5, 0),
    ] {
        c.seek_to_timestamp(&[(tp.clone(), ts)]).await.unwrap();
        assert_eq!(c.position(&tp), Some(first), "timestamp {ts}");
        let got = take(&c, 1).await;
        assert_eq!(got[0].offset, first);
        assert!(got[0].timestamp >= ts);
        assert_eq!(got[0].timestamp, base + 10 * first);
    }
    // After the last record: the end of the log.
    c.seek_to_timestamp(&[(tp.clone(), base + 10_000)])
        .await
        .unwrap();
    assert_eq!(c.position(&tp), Some(40));
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_lag() {
    let t = topic("consumer-pause", 2).await;
    let records: Vec<_> = (0..20).map(|i| (i % 2, format!("v{i}"), None)).collect();
    produce(Compression::Snappy, &t, &records).await;
    let (p0, p1) = (
        TopicPartition::new(t.clone(), 0),
        TopicPartition::new(t.clone(), 1),
    );
    let c = consumer(&[("auto.offset.reset", "earliest")]).await;
    c.assign([p0.clone(), p1.clone()]).unwrap();
    c.pause(std::slice::from_ref(&p1)).unwrap();
    assert_eq!(c.paused(), vec![p1.clone()]);

    let got = take(&c, 10).await;
    assert!(got.iter().all(|r| r.partition == 0));
    assert_quiet(&c, Duration::from_millis(700)).await;
    assert_eq!(c.lag(&p0), Some(0));
    assert_eq!(c.position(&p1), Some(0));

    c.resume(std::slice::from_ref(&p1)).unwrap();
    assert!(c.paused().is_empty());
    let got = take(&c, 10).await;
    assert!(got.iter().all(|r| r.partition == 1));
    assert_eq!(c.lag(&p1), Some(0));

    // Lag grows with records written after the position.
    produce(
        Compression::None,
        &t,
        &[(0, "x".into(), None), (0, "y".into(), None)],
    )
    .await;
    c.pause(std::slice::from_ref(&p0)).unwrap();
    c.seek(&p0, 8).unwrap(); // re-read the last two old ones later
    c.resume(std::slice::from_ref(&p0)).unwrap();
    let got = take(&c, 4).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![8, 9, 10, 11]
    );
    assert_eq!(c.lag(&p0), Some(0));
    // After a seek back, the lag counts from the new position to the last high watermark.
    c.seek(&p0, 9).unwrap();
    assert_eq!(c.lag(&p0), Some(3));
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_offset_reset_earliest_latest_none() {
    let t = topic("consumer-reset", 1).await;
    let records: Vec<_> = (0..5).map(|i| (0, format!("v{i}"), None)).collect();
    produce(Compression::None, &t, &records).await;
    let tp = TopicPartition::new(t.clone(), 0);

    let earliest = consumer(&[("auto.offset.reset", "earliest")]).await;
    earliest.assign([tp.clone()]).unwrap();
    assert_eq!(take(&earliest, 5).await[0].offset, 0);
    // Out of range (past the end) with earliest: back to the start.
    earliest.seek(&tp, 1_000).unwrap();
    let got = take(&earliest, 5).await;
    assert_eq!(got[0].offset, 0);

    let latest = consumer(&[("auto.offset.reset", "latest")]).await;
    latest.assign([tp.clone()]).unwrap();
    assert_quiet(&latest, Duration::from_millis(700)).await;
    assert_eq!(latest.position(&tp), Some(5));
    produce(Compression::None, &t, &[(0, "new".into(), None)]).await;
    let got = take(&latest, 1).await;
    assert_eq!((got[0].offset, value(&got[0]).as_str()), (5, "new"));

    let none = consumer(&[("auto.offset.reset", "none")]).await;
    none.assign([tp.clone()]).unwrap();
    match none.poll(Duration::from_secs(5)).await {
        Err(ConsumeError::NoOffset { topic, partition }) => {
            assert_eq!((&*topic, partition), (t.as_str(), 0))
        }
        other => panic!("expected NoOffset, got {other:?}"),
    }
    none.seek(&tp, 1_000).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match none.poll(Duration::from_millis(200)).await {
            Err(ConsumeError::OffsetOutOfRange {
                offset, partition, ..
            }) => {
                assert_eq!((offset, partition), (1_000, 0));
                break;
            }
            Ok(r) if r.is_empty() && Instant::now() < deadline => continue,
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
    }
    assert_eq!(none.position(&tp), Some(1_000));
    none.seek(&tp, 3).unwrap();
    assert_eq!(take(&none, 3).await[0].offset, 3);
    for c in [earliest, latest, none] {
        c.close(Instant::now() + Duration::from_secs(5))
            .await
            .expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_batch_is_a_typed_error_and_seeking_past_it_works() {
    let t = topic("consumer-corrupt", 1).await;
    // One batch per produce call: three batches of 5 records.
    for b in 0..3 {
        let records: Vec<_> = (0..5).map(|i| (0, format!("b{b}-{i}"), None)).collect();
        produce(Compression::None, &t, &records).await;
    }
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let tp = TopicPartition::new(t.clone(), 0);
    let c = consumer_at(&proxy.bootstrap(), &[("auto.offset.reset", "earliest")]).await;
    // The first fetch that carries records comes back with its first batch (offsets 0-4)
    // flipped; records before the bad batch would be returned first, there are none here.
    proxy.control().corrupt_fetch_records(&t, 0);
    c.assign([tp.clone()]).unwrap();
    let deadline = Instant::now() + WAIT;
    let err = loop {
        match c.poll(Duration::from_millis(200)).await {
            Ok(r) if r.is_empty() && Instant::now() < deadline => continue,
            Ok(r) => panic!(
                "records from a corrupt fetch: {:?}",
                r.iter().map(|r| r.offset).collect::<Vec<_>>()
            ),
            Err(e) => break e,
        }
    };
    match &err {
        ConsumeError::Corrupt {
            topic,
            partition,
            offset,
            ..
        } => {
            assert_eq!((&**topic, *partition, *offset), (t.as_str(), 0, 0), "{err}");
            assert!(err.to_string().contains("CRC"), "{err}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(proxy.control().stats().fetch_records_corrupted, 1);
    // The partition stays at the bad offset until the application seeks.
    assert_quiet(&c, Duration::from_millis(700)).await;
    assert_eq!(c.position(&tp), Some(0));
    c.seek(&tp, 5).unwrap();
    let got = take(&c, 10).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (5..15).collect::<Vec<_>>()
    );
    assert_eq!(value(&got[0]), "b1-0");
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_yields_records_in_order() {
    use futures::StreamExt;
    let t = topic("consumer-stream", 1).await;
    let records: Vec<_> = (0..30).map(|i| (0, format!("v{i}"), None)).collect();
    produce(Compression::Gzip, &t, &records).await;
    let tp = TopicPartition::new(t.clone(), 0);
    let c = consumer(&[("auto.offset.reset", "earliest")]).await;
    c.assign([tp]).unwrap();
    let got: Vec<_> = tokio::time::timeout(WAIT, c.stream().take(30).collect::<Vec<_>>())
        .await
        .unwrap();
    let offsets: Vec<i64> = got.into_iter().map(|r| r.unwrap().offset).collect();
    assert_eq!(offsets, (0..30).collect::<Vec<_>>());
    let one = tokio::time::timeout(Duration::from_millis(500), c.recv()).await;
    assert!(one.is_err(), "a record after the end: {one:?}");
    let seen: HashSet<i64> = offsets.into_iter().collect();
    assert_eq!(seen.len(), 30);
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
}

/// Compiles `tests/java/TxnWriter.java` with `javac` against the Kafka jars and runs it:
/// committed, aborted, committed transactions into partition 0 of `topic`. Panics (the test
/// fails, loudly) when Java or the jars are missing.
fn write_java_transactions(topic: &str) {
    let id = unique_name("kafkit-txn");
    kafkit_tests::java::run(
        "TxnWriter",
        &[&kafka().bootstrap, topic, &id],
        Duration::from_secs(120),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_skips_aborted_java_transactions() {
    let t = topic("consumer-txn", 1).await;
    let writer_topic = t.clone();
    tokio::task::spawn_blocking(move || write_java_transactions(&writer_topic))
        .await
        .unwrap();
    let tp = TopicPartition::new(t.clone(), 0);
    let values = |records: &[ConsumerRecord]| records.iter().map(value).collect::<Vec<_>>();
    let expect = |prefixes: &[&str]| {
        prefixes
            .iter()
            .flat_map(|p| (0..5).map(move |i| format!("{p}-{i}")))
            .collect::<Vec<_>>()
    };

    let committed = consumer(&[
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
    ])
    .await;
    committed.assign([tp.clone()]).unwrap();
    let got = take(&committed, 10).await;
    assert_quiet(&committed, Duration::from_millis(700)).await;
    assert_eq!(values(&got), expect(&["c1", "c2"]));
    // c1 at 0-4, its commit marker at 5, the aborted five at 6-10, the abort marker at 11.
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..5).chain(12..17).collect::<Vec<_>>());
    // Past the last marker; no control record ever surfaced.
    assert_eq!(committed.position(&tp), Some(18));
    assert_eq!(committed.lag(&tp), Some(0));

    let uncommitted = consumer(&[("auto.offset.reset", "earliest")]).await;
    uncommitted.assign([tp.clone()]).unwrap();
    let got = take(&uncommitted, 15).await;
    assert_quiet(&uncommitted, Duration::from_millis(700)).await;
    assert_eq!(values(&got), expect(&["c1", "a", "c2"]));
    assert_eq!(uncommitted.position(&tp), Some(18));
    for c in [committed, uncommitted] {
        c.close(Instant::now() + Duration::from_secs(5))
            .await
            .expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_lost_fetches_lose_and_duplicate_nothing() {
    use kafka_protocol::messages::ApiKey;
    use kafkit_tests::proxy::LostResponse;
    let t = topic("consumer-cuts", 2).await;
    let records: Vec<_> = (0..3000)
        .map(|i| (i % 2, format!("{i:0>200}"), None))
        .collect();
    produce(Compression::Lz4, &t, &records).await;
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let c = consumer_at(
        &proxy.bootstrap(),
        &[
            ("auto.offset.reset", "earliest"),
            // Small fetches: many round trips to break.
            ("max.partition.fetch.bytes", "4096"),
            ("fetch.max.bytes", "8192"),
            ("request.timeout.ms", "2000"),
            ("max.poll.records", "50"),
        ],
    )
    .await;
    c.assign((0..2).map(|p| TopicPartition::new(t.clone(), p)))
        .unwrap();
    let control = proxy.control();
    let deadline = Instant::now() + WAIT;
    let mut got: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut total = 0;
    let mut faults = 0;
    while total < records.len() {
        assert!(
            Instant::now() < deadline,
            "only {total} of {} records came",
            records.len()
        );
        let batch = c.poll(Duration::from_millis(200)).await.unwrap();
        for r in &batch {
            got.entry(r.partition).or_default().push(r.offset);
        }
        total += batch.len();
        // A fault about every 400 records: a cut, a lost response (cut), a blackholed one.
        if total / 400 > faults {
            faults += 1;
            match faults % 3 {
                0 => control.cut_all(),
                1 => control.drop_response_of(ApiKey::Fetch, 1, LostResponse::Cut),
                _ => control.drop_response_of(ApiKey::Fetch, 1, LostResponse::Blackhole),
            }
        }
    }
    assert_quiet(&c, Duration::from_millis(500)).await;
    assert!(faults >= 6, "only {faults} faults injected");
    assert!(
        control.stats().responses_dropped >= 2,
        "{:?}",
        control.stats()
    );
    for (p, offsets) in &got {
        assert_eq!(offsets, &(0..1500).collect::<Vec<i64>>(), "partition {p}");
    }
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_cluster_outlives_the_consumer() {
    let t = topic("consumer-shared", 1).await;
    produce(Compression::None, &t, &[(0, "one".into(), None)]).await;
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", kafka().bootstrap.as_str()),
        ("auto.offset.reset", "earliest"),
    ])
    .unwrap();
    let c = Consumer::with_cluster(config, admin.cluster().clone());
    c.assign([TopicPartition::new(t.clone(), 0)]).unwrap();
    assert_eq!(value(&take(&c, 1).await[0]), "one");
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
    drop(c);
    // The admin client's connections are still usable.
    admin
        .cluster()
        .refresh_metadata(Some(&[t.as_str()]))
        .await
        .unwrap();
    admin.cluster().close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_is_cancel_safe() {
    let t = topic("consumer-cancel", 1).await;
    let records: Vec<_> = (0..300).map(|i| (0, format!("v{i}"), None)).collect();
    produce(Compression::Zstd, &t, &records).await;
    let c = consumer(&[("auto.offset.reset", "earliest")]).await;
    c.assign([TopicPartition::new(t.clone(), 0)]).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut offsets = Vec::new();
    let mut cancelled = 0;
    while offsets.len() < 300 {
        assert!(Instant::now() < deadline, "only {} records", offsets.len());
        // Most of these time out while waiting: the dropped future must lose nothing.
        match tokio::time::timeout(Duration::from_micros(200), c.recv()).await {
            Ok(record) => offsets.push(record.unwrap().offset),
            Err(_) => cancelled += 1,
        }
    }
    assert!(
        cancelled > 0,
        "no recv was cancelled: the test proves nothing"
    );
    assert_eq!(offsets, (0..300).collect::<Vec<i64>>());
    c.close(Instant::now() + Duration::from_secs(5))
        .await
        .expect("close");
}
