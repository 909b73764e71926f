//! The consumer against a real broker: assign and read back everything a producer wrote
//! (every codec) in order, exactly once; seeks (offset, beginning, end, timestamp); pause and
//! resume (a paused partition keeps its buffered records); lag; `auto.offset.reset`; offset
//! queries (`beginning_offsets`, `end_offsets`, `offsets_for_times`, a waiting `position`,
//! `committed` of an assigned consumer); `assign` and `subscribe` refused while the other is in
//! force; a corrupt batch through the proxy (reported on every poll until a seek);
//! `read_committed` over transactions written by the Java client; large fetch responses (pooled
//! receive buffers) byte-exact.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{Compression, ConsumerConfig, ProducerConfig};
use kafkit::consumer::{ConsumeError, Consumer, ConsumerRecord, TimestampType};
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::TopicPartition;
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
            .map(|i| (i % 3, format!("{}-{i}", codec.name()), None))
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
        assert_eq!(c.current_position(tp), Some(500));
        assert_eq!(c.lag(tp), Some(0));
    }
    c.close(Duration::from_secs(5)).await.expect("close");
    assert!(matches!(
        c.poll(Duration::ZERO).await,
        Err(ConsumeError::Closed)
    ));
}

/// Fetch responses above 128 KiB are read into pooled receive buffers (`io::frame_pool`): their
/// records arrive byte-exact, so does every small frame read after one on the same
/// connection, and a buffer handed back and refilled does not disturb the records still held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_fetch_responses_arrive_byte_exact() {
    let t = topic("consumer-large", 3).await;
    // Large records of distinct content (the index spelled out along the whole value) between
    // small ones, so responses vary from a few bytes to ~1 MiB per partition.
    let large = |i: usize| format!("{i:07}|").repeat(300_000 / 8);
    let records: Vec<(i32, String, Option<i64>)> = (0..24)
        .map(|i| {
            let v = if i % 2 == 0 {
                large(i)
            } else {
                format!("small-{i}")
            };
            ((i % 3) as i32, v, None)
        })
        .collect();
    produce(Compression::None, &t, &records).await;
    let sent_at =
        |partition: i32, offset: usize| records.iter().filter(|s| s.0 == partition).nth(offset);
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(t.clone(), p)).collect();
    // Twice: once keeping every record to the end, once dropping each poll's records before
    // the next (their buffers go back to the pool and take later responses).
    for keep in [true, false] {
        let c = consumer(&[("auto.offset.reset", "earliest")]).await;
        c.assign(tps.clone()).unwrap();
        let deadline = Instant::now() + WAIT;
        let mut held = Vec::new();
        let mut next: BTreeMap<i32, usize> = BTreeMap::new();
        let mut seen = 0;
        while seen < records.len() {
            assert!(Instant::now() < deadline, "only {seen} records came");
            let polled = c.poll(Duration::from_millis(200)).await.unwrap();
            for r in &polled {
                let k = next.entry(r.partition).or_default();
                let expected = sent_at(r.partition, *k).expect("no more records than sent");
                assert_eq!(r.offset, *k as i64, "partition {}", r.partition);
                assert!(
                    value(r) == expected.1,
                    "partition {} offset {}",
                    r.partition,
                    r.offset
                );
                *k += 1;
                seen += 1;
            }
            if keep {
                held.extend(polled);
            }
        }
        for r in &held {
            // Still intact after every later response was read.
            let sent = sent_at(r.partition, r.offset as usize).expect("sent");
            assert!(
                value(r) == sent.1,
                "held record {}:{}",
                r.partition,
                r.offset
            );
        }
        c.close(Duration::from_secs(5)).await.expect("close");
    }
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
    assert_eq!(c.current_position(&tp), Some(50));
    produce(Compression::None, &t, &[(0, "after-end".into(), None)]).await;
    let got = take(&c, 1).await;
    assert_eq!((got[0].offset, value(&got[0]).as_str()), (50, "after-end"));

    // Seeking a partition that is not assigned is a typed error.
    let other = TopicPartition::new(t.clone(), 7);
    assert!(matches!(
        c.seek(&other, 0),
        Err(ConsumeError::NotAssigned { partition: 7, .. })
    ));
    c.close(Duration::from_secs(5)).await.expect("close");
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
        assert_eq!(c.current_position(&tp), Some(first), "timestamp {ts}");
        let got = take(&c, 1).await;
        assert_eq!(got[0].offset, first);
        assert!(got[0].timestamp >= ts);
        assert_eq!(got[0].timestamp, base + 10 * first);
    }
    // After the last record: the end of the log.
    c.seek_to_timestamp(&[(tp.clone(), base + 10_000)])
        .await
        .unwrap();
    assert_eq!(c.current_position(&tp), Some(40));
    c.close(Duration::from_secs(5)).await.expect("close");
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
    assert_eq!(c.current_position(&p1), Some(0));

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
    c.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_partition_keeps_its_buffered_records_for_resume() {
    let t = topic("consumer-pause-buffer", 1).await;
    let records: Vec<_> = (0..10).map(|i| (0, format!("v{i}"), None)).collect();
    produce(Compression::None, &t, &records).await;
    let tp = TopicPartition::new(t.clone(), 0);
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let c = consumer_at(
        &proxy.bootstrap(),
        &[("auto.offset.reset", "earliest"), ("max.poll.records", "1")],
    )
    .await;
    c.assign([tp.clone()]).unwrap();
    // The first Fetch brings all ten; one is handed out, nine stay buffered.
    let first = take(&c, 1).await;
    assert_eq!(first[0].offset, 0);
    c.pause(std::slice::from_ref(&tp)).unwrap();
    assert_quiet(&c, Duration::from_millis(300)).await;
    // With the brokers out of reach, only the buffer can hand the rest out after resume.
    proxy.control().stall();
    c.resume(std::slice::from_ref(&tp)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rest = Vec::new();
    while rest.len() < 9 && Instant::now() < deadline {
        rest.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    proxy.control().resume();
    assert_eq!(
        rest.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (1..10).collect::<Vec<_>>(),
        "the buffered records after resume, without fetching them again"
    );
    assert_eq!(c.current_position(&tp), Some(10));
    c.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_queries_position_and_committed_of_an_assigned_consumer() {
    let t = topic("consumer-offsets", 2).await;
    let base = 1_600_000_000_000i64;
    let mut records: Vec<_> = (0..10)
        .map(|i| (0, format!("v{i}"), Some(base + 10 * i64::from(i))))
        .collect();
    records.extend((0..5).map(|i| (1, format!("w{i}"), None)));
    produce(Compression::Lz4, &t, &records).await;
    let (p0, p1) = (
        TopicPartition::new(t.clone(), 0),
        TopicPartition::new(t.clone(), 1),
    );
    let both = [p0.clone(), p1.clone()];
    let group = unique_name("consumer-offsets-group");
    let c = consumer(&[
        ("auto.offset.reset", "latest"),
        ("group.id", group.as_str()),
        ("allow.auto.create.topics", "false"),
    ])
    .await;
    // Any partition, assigned or not.
    let begin = c.beginning_offsets(&both, WAIT).await.unwrap();
    assert_eq!(begin, BTreeMap::from([(p0.clone(), 0), (p1.clone(), 0)]));
    let end = c.end_offsets(&both, WAIT).await.unwrap();
    assert_eq!(end, BTreeMap::from([(p0.clone(), 10), (p1.clone(), 5)]));
    let far = base + 100 * 365 * 24 * 3_600_000;
    let found = c
        .offsets_for_times(&[(p0.clone(), base + 25), (p1.clone(), far)], WAIT)
        .await
        .unwrap();
    let at = found[&p0].expect("a record at or after base + 25");
    assert_eq!((at.offset, at.timestamp), (3, base + 30));
    assert_eq!(found[&p1], None, "no record that late");
    // -1 and -2 mean "end" and "beginning" to ListOffsets: refused, as Java does.
    for ts in [-1, -2] {
        assert!(matches!(
            c.offsets_for_times(&[(p0.clone(), ts)], WAIT).await,
            Err(ConsumeError::NegativeTimestamp { timestamp, .. }) if timestamp == ts
        ));
    }

    // position waits for the pending auto.offset.reset lookup, without a poll.
    assert!(matches!(
        c.position(&p0, WAIT).await,
        Err(ConsumeError::NotAssigned { .. })
    ));
    c.assign(both.clone()).unwrap();
    assert_eq!(c.position(&p0, WAIT).await.unwrap(), 10);
    c.seek_to_beginning(std::slice::from_ref(&p1)).unwrap();
    assert_eq!(c.position(&p1, WAIT).await.unwrap(), 0);

    // committed of a consumer that assigned its partitions by hand (OffsetFetch through the
    // coordinator, group-less).
    let none = c.committed_with_timeout(&both, WAIT).await.unwrap();
    assert!(none.values().all(Option::is_none), "{none:?}");
    c.seek(&p0, 4).unwrap();
    c.commit_sync().await.unwrap();
    let committed = c.committed_with_timeout(&both, WAIT).await.unwrap();
    assert_eq!(committed[&p0].as_ref().map(|o| o.offset), Some(4));
    assert_eq!(committed[&p1].as_ref().map(|o| o.offset), Some(0));

    // A topic that does not exist: nothing to ask, a timeout after the given time.
    let missing = TopicPartition::new(unique_name("consumer-offsets-missing"), 0);
    let started = Instant::now();
    match c.end_offsets(&[missing], Duration::from_secs(2)).await {
        Err(ConsumeError::Timeout { operation, .. }) => assert_eq!(operation, "end_offsets"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    c.close(Duration::from_secs(5)).await.expect("close");

    // auto.offset.reset=none and nothing committed: position reports it.
    let strict = consumer(&[("auto.offset.reset", "none")]).await;
    strict.assign([p0.clone()]).unwrap();
    assert!(matches!(
        strict.position(&p0, WAIT).await,
        Err(ConsumeError::NoOffset { .. })
    ));
    strict.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_and_subscribe_do_not_mix() {
    let t = topic("consumer-mix", 1).await;
    let tp = TopicPartition::new(t.clone(), 0);
    let group = unique_name("consumer-mix-group");
    let c = consumer(&[
        ("group.id", group.as_str()),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
    ])
    .await;
    c.subscribe([t.clone()]).await.unwrap();
    match c.assign([tp.clone()]) {
        Err(ConsumeError::SubscriptionConflict { operation, .. }) => {
            assert_eq!(operation, "assign")
        }
        other => panic!("assign while subscribed: {other:?}"),
    }
    c.unsubscribe().await.unwrap();
    c.assign([tp.clone()]).unwrap();
    match c.subscribe([t.clone()]).await {
        Err(ConsumeError::SubscriptionConflict { operation, .. }) => {
            assert_eq!(operation, "subscribe")
        }
        other => panic!("subscribe while assigned: {other:?}"),
    }
    assert_eq!(
        c.assignment(),
        vec![tp.clone()],
        "the refused call changed nothing"
    );
    // unsubscribe drops a manual assignment too (as Java), then subscribing works.
    c.unsubscribe().await.unwrap();
    assert!(c.assignment().is_empty());
    c.subscribe([t.clone()]).await.unwrap();
    c.close(Duration::from_secs(5)).await.expect("close");
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
    assert_eq!(latest.current_position(&tp), Some(5));
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
    assert_eq!(none.current_position(&tp), Some(1_000));
    none.seek(&tp, 3).unwrap();
    assert_eq!(take(&none, 3).await[0].offset, 3);
    for c in [earliest, latest, none] {
        c.close(Duration::from_secs(5)).await.expect("close");
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
    // Java's rule: every poll reports it again until the application seeks; the partition
    // stays at the bad offset meanwhile.
    for _ in 0..3 {
        match c.poll(Duration::from_millis(200)).await {
            Err(ConsumeError::Corrupt { offset: 0, .. }) => {}
            other => panic!("expected the corrupt batch again, got {other:?}"),
        }
    }
    assert_eq!(c.current_position(&tp), Some(0));
    assert_eq!(proxy.control().stats().fetch_records_corrupted, 1);
    c.seek(&tp, 5).unwrap();
    let got = take(&c, 10).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (5..15).collect::<Vec<_>>()
    );
    assert_eq!(value(&got[0]), "b1-0");
    c.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_batch_with_check_crcs_false_is_handed_out_as_its_bytes_are() {
    let t = topic("consumer-nocrc", 1).await;
    for b in 0..3 {
        let records: Vec<_> = (0..5).map(|i| (0, format!("b{b}-{i}"), None)).collect();
        produce(Compression::None, &t, &records).await;
    }
    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let tp = TopicPartition::new(t.clone(), 0);
    let c = consumer_at(
        &proxy.bootstrap(),
        &[("auto.offset.reset", "earliest"), ("check.crcs", "false")],
    )
    .await;
    // The first batch (offsets 0-4) comes back with its last byte flipped: the last byte of
    // offset 4's header value. Without the check it decodes, that byte different.
    proxy.control().corrupt_fetch_records(&t, 0);
    c.assign([tp.clone()]).unwrap();
    let got = take(&c, 15).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..15).collect::<Vec<_>>()
    );
    assert_eq!(proxy.control().stats().fetch_records_corrupted, 1);
    assert_eq!(value(&got[0]), "b0-0");
    assert_eq!(value(&got[5]), "b1-0");
    c.close(Duration::from_secs(5)).await.expect("close");
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
    c.close(Duration::from_secs(5)).await.expect("close");
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
    assert_eq!(committed.current_position(&tp), Some(18));
    assert_eq!(committed.lag(&tp), Some(0));
    // Every transaction is complete: the last stable offset is the log end.
    let ends = committed
        .end_offsets(std::slice::from_ref(&tp), WAIT)
        .await
        .unwrap();
    assert_eq!(ends[&tp], 18);

    let uncommitted = consumer(&[("auto.offset.reset", "earliest")]).await;
    uncommitted.assign([tp.clone()]).unwrap();
    let got = take(&uncommitted, 15).await;
    assert_quiet(&uncommitted, Duration::from_millis(700)).await;
    assert_eq!(values(&got), expect(&["c1", "a", "c2"]));
    assert_eq!(uncommitted.current_position(&tp), Some(18));
    for c in [committed, uncommitted] {
        c.close(Duration::from_secs(5)).await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_offsets_stop_before_an_open_transaction_with_read_committed() {
    use std::io::{BufRead, BufReader};
    let t = topic("consumer-lso", 1).await;
    let tp = TopicPartition::new(t.clone(), 0);
    let id = unique_name("kafkit-txn");
    let mut java =
        kafkit_tests::java::start("TxnWriter", &[&kafka().bootstrap, &t, &id, "open"], true);
    // Read the writer's output on a thread of its own: "open" once the fourth transaction's
    // records are written and it is still open.
    let stdout = java.child.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let opened = tokio::task::spawn_blocking(move || loop {
        match seen.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line == "open" => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    })
    .await
    .unwrap();
    let stdin = java.child.stdin.take();
    if !opened {
        panic!("the Java transaction writer never opened its transaction");
    }
    // 15 records and 3 markers complete (0..18), then 5 records of the open transaction.
    let committed = consumer(&[("isolation.level", "read_committed")]).await;
    let uncommitted = consumer(&[]).await;
    let lso = committed
        .end_offsets(std::slice::from_ref(&tp), WAIT)
        .await
        .unwrap();
    let hw = uncommitted
        .end_offsets(std::slice::from_ref(&tp), WAIT)
        .await
        .unwrap();
    drop(stdin); // the writer aborts the open transaction and ends
    assert_eq!(lso[&tp], 18, "read_committed: the last stable offset");
    assert_eq!(hw[&tp], 23, "read_uncommitted: the high watermark");
    // Once aborted (its marker at 23), the two agree again.
    let status = tokio::task::spawn_blocking(move || java.wait(Duration::from_secs(120)))
        .await
        .unwrap();
    let printed = reader.join().unwrap();
    assert!(
        status.success() && printed.contains("done"),
        "{status}: {printed}"
    );
    let lso = committed
        .end_offsets(std::slice::from_ref(&tp), WAIT)
        .await
        .unwrap();
    assert_eq!(lso[&tp], 24);
    for c in [committed, uncommitted] {
        c.close(Duration::from_secs(5)).await.expect("close");
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
    c.close(Duration::from_secs(5)).await.expect("close");
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
    c.close(Duration::from_secs(5)).await.expect("close");
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
    let c = consumer(&[("auto.offset.reset", "earliest")]).await;
    c.assign([TopicPartition::new(t.clone(), 0)]).unwrap();
    // Nothing on the topic yet: this recv is certainly waiting (its fetch in flight or parked
    // at the broker) when the timeout drops it, however loaded the machine is. The ones below
    // are cancelled too whenever the next record is not buffered yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.recv())
            .await
            .is_err(),
        "a record from an empty topic"
    );
    let mut cancelled = 1;
    let records: Vec<_> = (0..300).map(|i| (0, format!("v{i}"), None)).collect();
    produce(Compression::Zstd, &t, &records).await;
    let deadline = Instant::now() + WAIT;
    let mut offsets = Vec::new();
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
    c.close(Duration::from_secs(5)).await.expect("close");
}
