//! kafkit-events' consuming side on a real broker: typed handlers in a group with retries,
//! dead letters (read back raw and by `kcat`), commits only past handled records, poison pills,
//! panics, a slow partition beside fast ones, bounded buffering, graceful shutdown, refusals
//! (exactly-once mode itself: `events_eos.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::{Consumer, ConsumerRecord};
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::TopicPartition;
use kafkit_events::config::EventsConfig;
use kafkit_events::consume::{dead_letter, read_dead_letter};
use kafkit_events::consumer::{
    redrive, EventConsumer, EventConsumerBuilder, Handler, HandlerError, HandlerFuture,
    ProcessingGuarantee, RecordContext, RedriveOptions,
};
use kafkit_events::format::{EventCodec, JsonCodec, SerdeConfig};
use kafkit_events::producer::EventProducer;
use kafkit_events::typed::AvroSchemaSource;
use kafkit_events::{Event, EventPayload, EventsError};
use kafkit_tests::{kafka, registry, unique_name};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Ping {
    n: u64,
    fail: bool,
}

impl EventPayload for Ping {
    const EVENT_TYPE: &'static str = "test.consumer.ping";
    fn key(&self) -> Option<String> {
        Some(format!("k{}", self.n))
    }
}

const WAIT: Duration = Duration::from_secs(60);

async fn admin() -> Admin {
    Admin::connect(&kafka().bootstrap).await.unwrap()
}

async fn topic(partitions: i32) -> String {
    let name = unique_name("evcons");
    admin()
        .await
        .create_topics(&[NewTopic::new(&name, partitions, 1)])
        .await
        .unwrap();
    name
}

async fn producer() -> Producer {
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.as_str()])
        .build()
        .unwrap();
    Producer::new(config).await.unwrap()
}

/// JSON-encoded `Ping`s to `partition`; returns the records as sent.
async fn send_pings(topic: &str, partition: i32, pings: &[Ping]) -> Vec<ProducerRecord> {
    let codec = JsonCodec::new(SerdeConfig::default());
    let producer = producer().await;
    let mut sent = Vec::new();
    for ping in pings {
        let encoded = codec
            .encode(
                topic,
                &Event::new(ping.clone()).with_source("evcons-test", None),
            )
            .await
            .unwrap();
        let mut record = encoded.into_record(topic);
        record.partition = Some(partition);
        sent.push(record.clone());
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close(Duration::from_secs(5)).await.unwrap();
    sent
}

async fn send_raw(topic: &str, partition: i32, headers: Vec<(&str, &[u8])>, value: &[u8]) {
    let producer = producer().await;
    let mut record = ProducerRecord::new(topic.to_owned());
    record.partition = Some(partition);
    record.value = Some(Bytes::copy_from_slice(value));
    record.headers = headers
        .into_iter()
        .map(|(k, v)| (k.to_owned().into(), Some(Bytes::copy_from_slice(v))))
        .collect();
    producer.send(record).await.unwrap().await.unwrap();
    producer.close(Duration::from_secs(5)).await.unwrap();
}

fn pings(range: std::ops::Range<u64>, failing: &[u64]) -> Vec<Ping> {
    range
        .map(|n| Ping {
            n,
            fail: failing.contains(&n),
        })
        .collect()
}

fn builder(topic: &str, group: &str) -> EventConsumerBuilder {
    let config = EventsConfig::builder()
        .bootstrap_servers(&kafka().bootstrap)
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .build()
        .unwrap();
    EventConsumer::builder(&config, group)
        .topics([topic])
        .configure(|s| {
            s.max_retries = 3;
            s.initial_backoff = Duration::from_millis(100);
            s.max_backoff = Duration::from_millis(800);
            s.commit_interval = Duration::from_millis(100);
            s.commit_every_n = 1;
            s.shutdown_timeout = Duration::from_secs(10);
        })
}

/// Runs `consumer` in a task; returns it with its join handle.
fn start(
    consumer: EventConsumer,
) -> (
    Arc<EventConsumer>,
    tokio::task::JoinHandle<Result<(), EventsError>>,
) {
    let consumer = Arc::new(consumer);
    let c = consumer.clone();
    (consumer, tokio::spawn(async move { c.run().await }))
}

async fn stop(consumer: &EventConsumer, run: tokio::task::JoinHandle<Result<(), EventsError>>) {
    consumer.shutdown_handle().shutdown();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("run() stops within its deadline")
        .unwrap()
        .unwrap();
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record of `topic` (all partitions from the beginning) up to `count`, within WAIT.
async fn read_all(topic: &str, partitions: i32, count: usize) -> Vec<ConsumerRecord> {
    let config = ConsumerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.as_str()])
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .build()
        .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    consumer
        .assign((0..partitions).map(|p| TopicPartition::new(topic, p)))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    consumer.close(Duration::from_secs(5)).await.expect("close");
    out
}

async fn committed(group: &str) -> BTreeMap<TopicPartition, i64> {
    admin()
        .await
        .list_group_offsets(group)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(tp, o)| o.map(|o| (tp, o.offset)))
        .collect()
}

fn header<'a>(record: &'a ConsumerRecord, name: &str) -> Option<&'a [u8]> {
    record.header(name).map(|b| b.as_ref())
}

type Seen = Arc<Mutex<Vec<(u64, u32, Instant)>>>;

/// A `Handler` (trait object) that records every event it gets.
struct Recorder(Seen);

impl Handler<Ping> for Recorder {
    fn handle<'a>(&'a self, event: Event<Ping>, ctx: RecordContext) -> HandlerFuture<'a> {
        Box::pin(async move {
            let now = Instant::now();
            self.0
                .lock()
                .unwrap()
                .push((event.data.n, ctx.attempt, now));
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_handler_is_retried_then_dead_lettered_and_the_partition_goes_on() {
    let topic = topic(1).await;
    let group = unique_name("evcons-g");
    let sent = send_pings(&topic, 0, &pings(0..6, &[2])).await;
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let consumer = builder(&topic, &group)
        .on::<Ping, _, _>(move |event: Event<Ping>, ctx: RecordContext| {
            let s = s.clone();
            async move {
                s.lock()
                    .unwrap()
                    .push((event.data.n, ctx.attempt, Instant::now()));
                if event.data.fail {
                    return Err(HandlerError::retriable_msg(format!(
                        "refusing {}",
                        event.data.n
                    )));
                }
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    wait_until("record 5 handled", || {
        seen.lock().unwrap().iter().any(|(n, _, _)| *n == 5)
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    // Exactly 1 + 3 attempts of the failing record, numbered 1..=4, each retry after its backoff.
    let attempts: Vec<(u32, Instant)> = seen
        .iter()
        .filter(|(n, _, _)| *n == 2)
        .map(|(_, a, t)| (*a, *t))
        .collect();
    assert_eq!(
        attempts.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1].1 - pair[0].1;
        // Full jitter: the wait before retry i+1 is at most min(800 ms, 100 ms · 2^i).
        let ceiling = Duration::from_millis((100u64 << i).min(800));
        assert!(
            gap <= ceiling + Duration::from_millis(1500),
            "retry {i}: {gap:?}"
        );
    }
    // Strict order in the partition, and nothing after 2 handled before 2 was given up.
    let order: Vec<u64> = seen.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(order, [0, 1, 2, 2, 2, 2, 3, 4, 5]);

    let dlq = format!("{topic}.dlq");
    let dead = read_all(&dlq, 1, 1).await;
    assert_eq!(dead.len(), 1, "one dead letter");
    let d = &dead[0];
    let original = &sent[2];
    assert_eq!(d.value, original.value, "original value byte for byte");
    assert_eq!(d.key, original.key);
    for (name, value) in &original.headers {
        assert_eq!(
            d.header(name).cloned(),
            value.clone(),
            "original header {name} kept"
        );
    }
    assert_eq!(
        header(d, dead_letter::ORIGINAL_TOPIC),
        Some(topic.as_bytes())
    );
    assert_eq!(
        header(d, dead_letter::ORIGINAL_PARTITION),
        Some(&0i32.to_be_bytes()[..])
    );
    assert_eq!(
        header(d, dead_letter::ORIGINAL_OFFSET),
        Some(&2i64.to_be_bytes()[..])
    );
    assert_eq!(
        header(d, dead_letter::ORIGINAL_CONSUMER_GROUP),
        Some(group.as_bytes())
    );
    for name in [
        dead_letter::ORIGINAL_TIMESTAMP,
        dead_letter::ORIGINAL_TIMESTAMP_TYPE,
        dead_letter::EXCEPTION_FQCN,
        dead_letter::EXCEPTION_MESSAGE,
        dead_letter::ATTEMPTS,
        dead_letter::FAILURE_TIMESTAMP,
    ] {
        assert!(d.header(name).is_some(), "{name} missing");
    }
    let info = read_dead_letter(&d.headers).unwrap();
    assert_eq!(info.attempts, Some(4));
    assert_eq!(info.original_offset, Some(2));
    assert!(info
        .exception_message
        .as_deref()
        .is_some_and(|m| m.contains("refusing 2")));

    // A peer tool reads the Spring headers.
    let out = std::process::Command::new("kcat")
        .args([
            "-C",
            "-b",
            &kafka().bootstrap,
            "-t",
            &dlq,
            "-o",
            "beginning",
            "-c",
            "1",
            "-e",
        ])
        .args(["-f", "%h"])
        .output()
        .expect("kcat runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kafka_dlt-original-topic="), "kcat: {text}");
    assert!(
        text.contains(&format!("kafka_dlt-original-consumer-group={group}")),
        "kcat: {text}"
    );
    assert!(
        text.contains("kafka_dlt-exception-message="),
        "kcat: {text}"
    );

    let stats = consumer.stats();
    assert_eq!(stats.dead_lettered, 1);
    assert_eq!(stats.retried, 3);
    assert_eq!(stats.failed, 4);
    assert_eq!(stats.processed, 5);
    assert!(stats.running);
    stop(&consumer, run).await;
    assert!(!consumer.stats().running);
    // Graceful stop committed everything handled.
    assert_eq!(
        committed(&group).await.get(&TopicPartition::new(&topic, 0)),
        Some(&6)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_committed_past_a_record_in_its_handler() {
    let topic = topic(1).await;
    let group = unique_name("evcons-g");
    send_pings(&topic, 0, &pings(0..6, &[])).await;
    let release = Arc::new(tokio::sync::Notify::new());
    let done = Arc::new(Mutex::new(Vec::new()));
    let (r, d) = (release.clone(), done.clone());
    let consumer = builder(&topic, &group)
        .on::<Ping, _, _>(move |event: Event<Ping>, _ctx: RecordContext| {
            let (r, d) = (r.clone(), d.clone());
            async move {
                if event.data.n == 3 {
                    r.notified().await;
                }
                d.lock().unwrap().push(event.data.n);
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    wait_until("0..3 handled", || done.lock().unwrap().len() == 3).await;
    let tp = TopicPartition::new(&topic, 0);
    // Several commit intervals pass with record 3 in its handler: the commit stays at 3.
    let deadline = Instant::now() + WAIT;
    while committed(&group).await.get(&tp) != Some(&3) {
        assert!(Instant::now() < deadline, "offset 3 never committed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(committed(&group).await.get(&tp), Some(&3));
    release.notify_one();
    let deadline = Instant::now() + WAIT;
    while committed(&group).await.get(&tp) != Some(&6) {
        assert!(Instant::now() < deadline, "offset 6 never committed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(*done.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    stop(&consumer, run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_pills_go_to_the_dead_letter_at_once_and_the_consumer_goes_on() {
    let topic = topic(1).await;
    let group = unique_name("evcons-g");
    let ce = |ct: &'static [u8]| {
        vec![
            ("ce_specversion", &b"1.0"[..]),
            ("ce_id", &b"poison-1"[..]),
            ("ce_source", &b"test"[..]),
            ("ce_type", Ping::EVENT_TYPE.as_bytes()),
            ("content-type", ct),
        ]
    };
    send_pings(&topic, 0, &pings(0..1, &[])).await;
    // Not JSON at all.
    send_raw(&topic, 0, ce(b"application/json"), b"{not json").await;
    // JSON of the wrong shape.
    send_raw(&topic, 0, ce(b"application/json"), br#"{"n":"seven"}"#).await;
    // Avro with a schema id no registry knows (and this consumer has no registry).
    send_raw(
        &topic,
        0,
        ce(b"application/avro"),
        &[0, 0, 0x0f, 0x42, 0x40, 2, 4],
    )
    .await;
    send_pings(&topic, 0, &pings(1..2, &[])).await;
    let seen: Seen = Arc::default();
    let consumer = builder(&topic, &group)
        .on_handler::<Ping>(Arc::new(Recorder(seen.clone())))
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    wait_until("both good records", || seen.lock().unwrap().len() == 2).await;
    let dead = read_all(&format!("{topic}.dlq"), 1, 3).await;
    assert_eq!(dead.len(), 3);
    assert_eq!(
        dead.iter()
            .map(|d| d.value.clone().unwrap())
            .collect::<Vec<_>>(),
        [
            Bytes::from_static(b"{not json"),
            Bytes::from_static(br#"{"n":"seven"}"#),
            Bytes::from_static(&[0, 0, 0x0f, 0x42, 0x40, 2, 4]),
        ]
    );
    for d in &dead {
        let info = read_dead_letter(&d.headers).unwrap();
        assert_eq!(info.attempts, Some(1), "no retry of a poison pill");
    }
    let stats = consumer.stats();
    assert_eq!(stats.retried, 0);
    assert_eq!(stats.dead_lettered, 3);
    stop(&consumer, run).await;
    assert_eq!(
        committed(&group).await.get(&TopicPartition::new(&topic, 0)),
        Some(&5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_failure_not_a_crash() {
    let topic = topic(1).await;
    let group = unique_name("evcons-g");
    send_pings(&topic, 0, &pings(0..3, &[1])).await;
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let consumer = builder(&topic, &group)
        .configure(|s| s.max_retries = 1)
        .on::<Ping, _, _>(move |event: Event<Ping>, ctx: RecordContext| {
            let s = s.clone();
            async move {
                s.lock()
                    .unwrap()
                    .push((event.data.n, ctx.attempt, Instant::now()));
                if event.data.fail {
                    panic!("boom on {}", event.data.n);
                }
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    wait_until("record 2 handled", || {
        seen.lock().unwrap().iter().any(|(n, _, _)| *n == 2)
    })
    .await;
    let dead = read_all(&format!("{topic}.dlq"), 1, 1).await;
    assert_eq!(dead.len(), 1);
    let info = read_dead_letter(&dead[0].headers).unwrap();
    assert_eq!(info.attempts, Some(2));
    assert!(
        info.exception_message
            .as_deref()
            .is_some_and(|m| m.contains("boom on 1")),
        "{info:?}"
    );
    assert!(!run.is_finished(), "the consumer still runs");
    stop(&consumer, run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_partition_does_not_stop_the_others() {
    let topic = topic(2).await;
    let group = unique_name("evcons-g");
    send_pings(&topic, 0, &pings(0..3, &[])).await;
    send_pings(&topic, 1, &pings(100..120, &[])).await;
    let release = Arc::new(tokio::sync::Notify::new());
    let seen: Seen = Arc::default();
    let (r, s) = (release.clone(), seen.clone());
    let consumer = builder(&topic, &group)
        .on::<Ping, _, _>(move |event: Event<Ping>, ctx: RecordContext| {
            let (r, s) = (r.clone(), s.clone());
            async move {
                if ctx.partition == 0 && event.data.n == 0 {
                    // Stalled far longer than the test's bound below, until released.
                    let _ = tokio::time::timeout(Duration::from_secs(120), r.notified()).await;
                }
                s.lock()
                    .unwrap()
                    .push((event.data.n, ctx.attempt, Instant::now()));
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    let started = Instant::now();
    wait_until("partition 1 handled", || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(n, _, _)| *n >= 100)
            .count()
            == 20
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        seen.lock().unwrap().iter().all(|(n, _, _)| *n >= 100),
        "partition 0 still stalled"
    );
    release.notify_one();
    wait_until("partition 0 handled", || seen.lock().unwrap().len() == 23).await;
    stop(&consumer, run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_bytes_stay_under_the_limit_with_a_stalled_handler() {
    let topic = topic(1).await;
    let group = unique_name("evcons-g");
    let producer = producer().await;
    let codec = JsonCodec::new(SerdeConfig::default());
    let mut one = 0;
    for n in 0..400u64 {
        let event = Event::new(Ping { n, fail: false }).with_source("evcons-test", None);
        let mut record = codec
            .encode(&topic, &event)
            .await
            .unwrap()
            .into_record(topic.clone());
        record.partition = Some(0);
        // Pad with a header so each record is about 1 KiB.
        record
            .headers
            .push(("pad".into(), Some(Bytes::from(vec![b'x'; 1000]))));
        one = record.value.as_ref().map_or(0, |v| v.len()) + 1100;
        drop(producer.send(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    let limit = 32 * 1024;
    let max_poll = 20;
    let release = Arc::new(tokio::sync::Notify::new());
    let r = release.clone();
    let consumer = builder(&topic, &group)
        .set("max.poll.records", &max_poll.to_string())
        .configure(|s| s.max_buffered_bytes_per_partition = limit)
        .on::<Ping, _, _>(move |_event: Event<Ping>, _ctx: RecordContext| {
            let r = r.clone();
            async move {
                let _ = tokio::time::timeout(Duration::from_secs(120), r.notified()).await;
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    wait_until("records buffered", || consumer.stats().buffered_bytes > 0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = consumer.stats();
    // The state pauses the partition once its queue reaches the limit; one poll's records may
    // land beyond it, never more.
    assert!(
        stats.max_buffered_bytes as usize <= limit + max_poll * one,
        "{} buffered with a limit of {limit}",
        stats.max_buffered_bytes
    );
    assert!(
        stats.consumed < 400,
        "fetching paused: {} consumed",
        stats.consumed
    );
    release.notify_waiters();
    consumer.shutdown_handle().shutdown();
    release.notify_waiters();
    let _ = tokio::time::timeout(WAIT, run).await.unwrap();
}

#[tokio::test]
async fn exactly_once_without_transactional_id_and_auto_commit_are_refused() {
    let err = builder("any", "any")
        .guarantee(ProcessingGuarantee::ExactlyOnce)
        .on::<Ping, _, _>(|_e: Event<Ping>, _c: RecordContext| async { Ok(()) })
        .build()
        .await
        .err()
        .unwrap();
    // Without a transactional.id (the suite events_eos runs the mode itself).
    assert!(matches!(err, EventsError::Configuration { .. }), "{err:?}");
    assert!(err.to_string().contains("transactional.id"), "{err}");
    // Auto-commit would commit records before their handler ran.
    let err = builder("any", "any")
        .set("enable.auto.commit", "true")
        .on::<Ping, _, _>(|_e: Event<Ping>, _c: RecordContext| async { Ok(()) })
        .build()
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("enable.auto.commit"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_republishes_dead_letters_once_without_error_headers() {
    let topic = topic(1).await;
    let group = unique_name("evcons-g");
    let sent = send_pings(&topic, 0, &pings(0..3, &[1])).await;
    let consumer = builder(&topic, &group)
        .configure(|s| s.max_retries = 0)
        .on::<Ping, _, _>(|event: Event<Ping>, _ctx: RecordContext| async move {
            if event.data.fail {
                return Err(HandlerError::not_retriable_msg("bad ping"));
            }
            Ok(())
        })
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    wait_until("dead letter", || consumer.stats().dead_lettered == 1).await;
    wait_until("all handled", || consumer.stats().processed == 2).await;
    stop(&consumer, run).await;

    let config = EventsConfig::builder()
        .bootstrap_servers(&kafka().bootstrap)
        .build()
        .unwrap();
    let dlq = format!("{topic}.dlq");
    let report = redrive(&config, &dlq, RedriveOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (report.redriven, report.skipped, report.complete),
        (1, 0, true)
    );
    let all = read_all(&topic, 1, 4).await;
    assert_eq!(all.len(), 4);
    let back = &all[3];
    assert_eq!(back.value, sent[1].value);
    assert_eq!(back.key, sent[1].key);
    assert!(
        back.headers
            .iter()
            .all(|h| !h.key.starts_with(b"kafka_dlt-")),
        "error headers stripped"
    );
    assert_eq!(
        back.header("ce_id").cloned(),
        sent[1]
            .headers
            .iter()
            .find(|(k, _)| k == "ce_id")
            .and_then(|(_, v)| v.clone())
    );
    // A second run finds nothing new.
    let again = redrive(&config, &dlq, RedriveOptions::default())
        .await
        .unwrap();
    assert_eq!(again.redriven, 0);
}

/// The consuming process of the crash test (run by the test below as a child process of this
/// test binary; ignored otherwise): handles `Ping`s, appending each `n` to a file, slowly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of crash_safety_every_event_handled_after_sigkill"]
async fn crash_safety_child() {
    let (Ok(topic), Ok(group), Ok(out)) = (
        std::env::var("EVCONS_CHILD_TOPIC"),
        std::env::var("EVCONS_CHILD_GROUP"),
        std::env::var("EVCONS_CHILD_OUT"),
    ) else {
        return;
    };
    let consumer = builder(&topic, &group)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .on::<Ping, _, _>(move |event: Event<Ping>, _ctx: RecordContext| {
            let out = out.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&out)?;
                file.write_all(format!("{}\n", event.data.n).as_bytes())?;
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    // Killed by the parent long before this.
    let _ = tokio::time::timeout(Duration::from_secs(180), consumer.run()).await;
}

fn handled_ns(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_safety_every_event_handled_after_sigkill() {
    let topic = topic(3).await;
    let group = unique_name("evcons-g");
    let total = 600u64;
    for p in 0..3 {
        let ns: Vec<Ping> = pings(0..total, &[])
            .into_iter()
            .filter(|ping| ping.n % 3 == p as u64)
            .collect();
        send_pings(&topic, p, &ns).await;
    }
    let out = std::env::temp_dir().join(format!("{group}.handled"));
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "crash_safety_child", "--nocapture"])
            .env("EVCONS_CHILD_TOPIC", &topic)
            .env("EVCONS_CHILD_GROUP", &group)
            .env("EVCONS_CHILD_OUT", &out)
            .env("KAFKA_BOOTSTRAP_SERVERS", &kafka().bootstrap)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = spawn();
    wait_until("the first process handles some", || {
        handled_ns(&out).len() >= 100
    })
    .await;
    first.kill().unwrap(); // SIGKILL: no commit, no leave
    let _ = first.wait();
    let before = handled_ns(&out).len();
    assert!(
        (before as u64) < total,
        "killed mid-stream ({before} handled)"
    );
    // Two members now: they share the partitions (a rebalance when the second joins).
    let mut a = spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut b = spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = loop {
        let seen: std::collections::BTreeSet<u64> = handled_ns(&out).into_iter().collect();
        let missing: Vec<u64> = (0..total).filter(|n| !seen.contains(n)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = a.kill();
    let _ = b.kill();
    let _ = (a.wait(), b.wait());
    // At least once: duplicates allowed (records handled but not committed before the kill),
    // gaps not.
    assert!(missing.is_empty(), "never handled: {missing:?}");
    let _ = std::fs::remove_file(&out);
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Shipment {
    id: String,
    qty: i32,
}

impl EventPayload for Shipment {
    const EVENT_TYPE: &'static str = "test.consumer.shipment";
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(
            r#"{"type":"record","name":"Shipment","namespace":"test.consumer",
                "fields":[{"name":"id","type":"string"},{"name":"qty","type":"int"}]}"#,
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_and_json_on_one_topic_and_an_unknown_schema_id_is_dead_lettered() {
    let topic = topic(1).await;
    let group = unique_name("evcons-g");
    let config = EventsConfig::builder()
        .bootstrap_servers(&kafka().bootstrap)
        .schema_registry_url(&registry().url)
        .service_name("evcons-test")
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .build()
        .unwrap();
    let producer = EventProducer::new(&config).await.unwrap();
    let ship = |id: &str| {
        Event::new(Shipment {
            id: id.to_owned(),
            qty: 2,
        })
    };
    producer.publish_to(&topic, ship("s-1")).await.unwrap();
    producer
        .publish_to(&topic, Event::new(Ping { n: 1, fail: false }))
        .await
        .unwrap();
    // Confluent framing with a schema id the registry does not have.
    let unknown = [0u8, 0x7f, 0xff, 0xff, 0x00, 2, b'x', 4];
    send_raw(
        &topic,
        0,
        vec![
            ("ce_specversion", &b"1.0"[..]),
            ("ce_id", &b"unknown-id-1"[..]),
            ("ce_source", &b"test"[..]),
            ("ce_type", Shipment::EVENT_TYPE.as_bytes()),
            ("content-type", &b"application/avro"[..]),
        ],
        &unknown,
    )
    .await;
    producer.publish_to(&topic, ship("s-2")).await.unwrap();
    producer.close().await.unwrap();

    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (s1, s2) = (seen.clone(), seen.clone());
    let consumer = EventConsumer::builder(&config, &group)
        .topics([topic.as_str()])
        .configure(|s| {
            s.initial_backoff = Duration::from_millis(50);
            s.max_backoff = Duration::from_millis(200);
            s.commit_interval = Duration::from_millis(100);
        })
        .on::<Shipment, _, _>(move |e: Event<Shipment>, _ctx: RecordContext| {
            let s = s1.clone();
            async move {
                s.lock().unwrap().push(e.data.id);
                Ok(())
            }
        })
        .on::<Ping, _, _>(move |e: Event<Ping>, _ctx: RecordContext| {
            let s = s2.clone();
            async move {
                s.lock().unwrap().push(format!("ping-{}", e.data.n));
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    wait_until("three events handled", || seen.lock().unwrap().len() == 3).await;
    assert_eq!(*seen.lock().unwrap(), ["s-1", "ping-1", "s-2"]);
    let dead = read_all(&format!("{topic}.dlq"), 1, 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(&unknown[..]));
    let info = read_dead_letter(&dead[0].headers).unwrap();
    assert_eq!((info.attempts, info.original_offset), (Some(1), Some(2)));
    stop(&consumer, run).await;
    assert_eq!(
        committed(&group).await.get(&TopicPartition::new(&topic, 0)),
        Some(&4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kip848_group_protocol_handles_and_commits() {
    let topic = topic(2).await;
    let group = unique_name("evcons-g");
    send_pings(&topic, 0, &pings(0..5, &[])).await;
    send_pings(&topic, 1, &pings(5..10, &[])).await;
    let seen: Seen = Arc::default();
    let consumer = builder(&topic, &group)
        .set("group.protocol", "consumer")
        .on_handler::<Ping>(Arc::new(Recorder(seen.clone())))
        .build()
        .await
        .unwrap();
    assert_eq!(
        consumer
            .client()
            .expect("at-least-once")
            .config()
            .group_protocol(),
        kafkit::config::GroupProtocol::Consumer
    );
    let (consumer, run) = start(consumer);
    wait_until("ten handled", || seen.lock().unwrap().len() == 10).await;
    stop(&consumer, run).await;
    let offsets = committed(&group).await;
    assert_eq!(offsets.get(&TopicPartition::new(&topic, 0)), Some(&5));
    assert_eq!(offsets.get(&TopicPartition::new(&topic, 1)), Some(&5));
}
