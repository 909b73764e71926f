//! kafkit-events' exactly-once mode on a real broker (and the real registry for Avro outputs):
//! outputs published by handlers inside the record's transaction, read back `read_committed`
//! exactly once per input — on the happy path, through a dead letter and an aborted
//! transaction, and across an instance dropped mid-transaction and replaced; the mode refused
//! without a `transactional.id`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::{Consumer, ConsumerRecord};
use kafkit::producer::Producer;
use kafkit::TopicPartition;
use kafkit_events::config::EventsConfig;
use kafkit_events::consume::read_dead_letter;
use kafkit_events::consumer::{
    EventConsumer, EventConsumerBuilder, HandlerError, ProcessingGuarantee, RecordContext,
};
use kafkit_events::format::{EventCodec, JsonCodec, SerdeConfig};
use kafkit_events::typed::AvroSchemaSource;
use kafkit_events::{Event, EventPayload, EventsError};
use kafkit_tests::{kafka, registry, unique_name};
use serde::{Deserialize, Serialize};

/// An input event (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Order {
    id: u64,
}

impl EventPayload for Order {
    const EVENT_TYPE: &'static str = "test.eos.order";
    fn key(&self) -> Option<String> {
        Some(format!("o{}", self.id))
    }
}

/// An output event (JSON), padded on demand (to make a record the output topic refuses).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Invoice {
    id: u64,
    pad: String,
}

impl EventPayload for Invoice {
    const EVENT_TYPE: &'static str = "test.eos.invoice";
}

/// An output event in Avro, through the registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Receipt {
    id: i64,
}

impl EventPayload for Receipt {
    const EVENT_TYPE: &'static str = "test.eos.receipt";
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(
            r#"{"type":"record","name":"Receipt","namespace":"test.eos",
                "fields":[{"name":"id","type":"long"}]}"#,
        ))
    }
}

const WAIT: Duration = Duration::from_secs(60);

async fn admin() -> Admin {
    Admin::connect(&kafka().bootstrap).await.unwrap()
}

async fn topic(prefix: &str, partitions: i32, configs: &[(&str, &str)]) -> String {
    let name = unique_name(prefix);
    let mut topic = NewTopic::new(&name, partitions, 1);
    for (k, v) in configs {
        topic = topic.config(*k, *v);
    }
    admin().await.create_topics(&[topic]).await.unwrap();
    name
}

/// JSON `Order`s with ids `ids`, each to partition `id % partitions`.
async fn send_orders(topic: &str, partitions: i32, ids: std::ops::Range<u64>) {
    let codec = JsonCodec::new(SerdeConfig::default());
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.as_str()])
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    let mut deliveries = Vec::new();
    for id in ids {
        let event = Event::new(Order { id }).with_source("eos-test", None);
        let mut record = codec
            .encode(topic, &event)
            .await
            .unwrap()
            .into_record(topic);
        record.partition = Some((id % partitions as u64) as i32);
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close(Duration::from_secs(5)).await.unwrap();
}

fn config(avro: bool) -> EventsConfig {
    let mut builder = EventsConfig::builder()
        .bootstrap_servers(&kafka().bootstrap)
        .service_name("eos-test")
        .set("auto.offset.reset", "earliest")
        .unwrap()
        // A member dropped without leaving is replaced within seconds.
        .set_consumer("session.timeout.ms", "6000")
        .unwrap();
    if avro {
        builder = builder.schema_registry_url(&registry().url);
    }
    builder.build().unwrap()
}

fn builder(config: &EventsConfig, topic: &str, group: &str) -> EventConsumerBuilder {
    EventConsumer::builder(config, group)
        .topics([topic])
        .guarantee(ProcessingGuarantee::ExactlyOnce)
        .transactional_id(format!("{group}-txn"))
        .configure(|s| {
            s.max_retries = 2;
            s.initial_backoff = Duration::from_millis(50);
            s.max_backoff = Duration::from_millis(200);
            s.shutdown_timeout = Duration::from_secs(10);
        })
}

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

/// Every record of `topic` a `read_committed` reader sees: read until at least `count` came
/// (within WAIT), then on for another second (a duplicate would show up).
async fn read_committed(topic: &str, partitions: i32, count: usize) -> Vec<ConsumerRecord> {
    read(topic, partitions, count, "read_committed").await
}

async fn read(topic: &str, partitions: i32, count: usize, isolation: &str) -> Vec<ConsumerRecord> {
    let config = ConsumerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.as_str()])
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("isolation.level", isolation)
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
    let linger = Instant::now() + Duration::from_secs(1);
    while Instant::now() < linger {
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    consumer.close(Duration::from_secs(5)).await.expect("close");
    out
}

/// The ids of JSON `Invoice` records, counted.
async fn invoice_ids(records: &[ConsumerRecord]) -> BTreeMap<u64, usize> {
    let codec = JsonCodec::new(SerdeConfig::default());
    let mut ids = BTreeMap::new();
    for r in records {
        let event: Event<Invoice> = codec.decode(r).await.unwrap();
        *ids.entry(event.data.id).or_default() += 1;
    }
    ids
}

fn once_each(ids: impl IntoIterator<Item = u64>) -> BTreeMap<u64, usize> {
    ids.into_iter().map(|id| (id, 1)).collect()
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

/// Handler outputs through the registry (Avro) and the default settings otherwise: a
/// `read_committed` reader sees exactly one output per input, and the group's offsets are at
/// the input's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_input_has_exactly_one_committed_output() {
    const N: u64 = 30;
    let input = topic("eos-in", 3, &[]).await;
    let output = topic("eos-out", 2, &[]).await;
    let group = unique_name("eos-g");
    send_orders(&input, 3, 0..N).await;
    let config = config(true);
    let out = output.clone();
    let consumer = EventConsumer::builder(&config, &group)
        .topics([input.as_str()])
        .guarantee(ProcessingGuarantee::ExactlyOnce)
        .transactional_id(format!("{group}-txn"))
        .on::<Order, _, _>(move |e: Event<Order>, ctx: RecordContext| {
            let out = out.clone();
            async move {
                let receipt = Event::new(Receipt {
                    id: e.data.id as i64,
                })
                .caused_by(&e);
                ctx.publish_to(&out, receipt).await?;
                Ok::<(), HandlerError>(())
            }
        })
        .build()
        .await
        .unwrap();
    assert_eq!(consumer.guarantee(), ProcessingGuarantee::ExactlyOnce);
    assert!(consumer.client().is_none());
    let (consumer, run) = start(consumer);
    wait_until("every input handled", || consumer.stats().processed >= N).await;
    let records = read_committed(&output, 2, N as usize).await;
    let registry = config.schema_registry().unwrap().unwrap();
    let codec = kafkit_events::format::AvroCodec::new(registry, SerdeConfig::default()).unwrap();
    let mut ids = BTreeMap::new();
    for r in &records {
        let event: Event<Receipt> = codec.decode(r).await.unwrap();
        assert_eq!(
            event.envelope.source, "eos-test",
            "the service is the source"
        );
        assert!(event.envelope.causation_id.is_some(), "caused by its input");
        *ids.entry(event.data.id as u64).or_default() += 1;
    }
    assert_eq!(ids, once_each(0..N), "one committed output per input");
    let stats = consumer.stats();
    assert!(stats.transactions_committed >= 1, "{stats:?}");
    assert_eq!(stats.transactions_aborted, 0, "{stats:?}");
    stop(&consumer, run).await;
    let offsets = committed(&group).await;
    for p in 0..3 {
        assert_eq!(
            offsets.get(&TopicPartition::new(&input, p)),
            Some(&10),
            "partition {p} committed at its end: {offsets:?}"
        );
    }
}

/// One input fails for good after publishing (its output dropped, its dead letter committed
/// in the transaction); another's first attempt publishes a normal output and then one the
/// topic refuses as too large, which aborts the transaction (the normal one is in the log,
/// aborted: `read_uncommitted` sees it) and the batch is handled again: `read_committed` shows
/// every other input's output exactly once and one dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_outputs_stay_invisible_and_every_input_counts_once() {
    const N: u64 = 20;
    const FAILS: u64 = 5;
    const TOO_LARGE: u64 = 12;
    let input = topic("eos-in", 1, &[]).await;
    let output = topic("eos-out", 1, &[("max.message.bytes", "16384")]).await;
    let group = unique_name("eos-g");
    send_orders(&input, 1, 0..N).await;
    let config = config(false);
    let out = output.clone();
    let first_large = Arc::new(AtomicBool::new(true));
    let consumer = builder(&config, &input, &group)
        .on::<Order, _, _>(move |e: Event<Order>, ctx: RecordContext| {
            let out = out.clone();
            let first_large = first_large.clone();
            async move {
                let id = e.data.id;
                if id == TOO_LARGE && first_large.swap(false, Ordering::SeqCst) {
                    // A normal output, then one the topic refuses: the first reaches the log
                    // in the transaction the second aborts.
                    let pad = String::new();
                    ctx.publish_to(&out, Event::new(Invoice { id, pad }))
                        .await?;
                    let pad = "x".repeat(64 * 1024);
                    ctx.publish_to(&out, Event::new(Invoice { id, pad }))
                        .await?;
                    return Ok(());
                }
                let pad = String::new();
                ctx.publish_to(&out, Event::new(Invoice { id, pad }))
                    .await?;
                if id == FAILS {
                    return Err(HandlerError::not_retriable_msg("order refused"));
                }
                Ok(())
            }
        })
        .build()
        .await
        .unwrap();
    let (consumer, run) = start(consumer);
    wait_until("every input committed", || {
        let s = consumer.stats();
        s.dead_lettered >= 1 && s.processed >= N && s.transactions_aborted >= 1
    })
    .await;
    let records = read_committed(&output, 1, (N - 1) as usize).await;
    for r in &records {
        assert!(
            r.value.as_ref().is_some_and(|v| v.len() < 1024),
            "no large output"
        );
    }
    assert_eq!(
        invoice_ids(&records).await,
        once_each((0..N).filter(|id| *id != FAILS)),
        "every other input's output exactly once"
    );
    // The aborted transaction's outputs are in the log: a read_uncommitted reader sees them.
    let uncommitted = read(&output, 1, records.len() + 1, "read_uncommitted").await;
    assert!(
        uncommitted.len() > records.len(),
        "aborted outputs in the log: {} read_uncommitted, {} read_committed",
        uncommitted.len(),
        records.len()
    );
    let dead = read_committed(&format!("{input}.dlq"), 1, 1).await;
    assert_eq!(dead.len(), 1, "one committed dead letter");
    let info = read_dead_letter(&dead[0].headers).unwrap();
    assert_eq!(info.original_offset, Some(FAILS as i64));
    assert_eq!(
        info.attempts,
        Some(1),
        "not retriable: dead-lettered at once"
    );
    let stats = consumer.stats();
    assert!(stats.transactions_aborted >= 1, "{stats:?}");
    assert_eq!(stats.dead_lettered, 1, "counted once committed: {stats:?}");
    stop(&consumer, run).await;
    assert_eq!(
        committed(&group).await.get(&TopicPartition::new(&input, 0)),
        Some(&(N as i64))
    );
}

/// A first instance handles part of the input, then hangs inside a transaction with outputs
/// sent and is dropped (no close, no abort: a crashed process); a second with the same group
/// and `transactional.id` fences it and finishes: every input's output exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_instance_finishes_without_duplicates() {
    const N: u64 = 40;
    const HANGS: u64 = 30;
    let input = topic("eos-in", 2, &[]).await;
    let output = topic("eos-out", 2, &[]).await;
    let group = unique_name("eos-g");
    let config = config(false);
    let handler = |hang: bool, out: String| {
        move |e: Event<Order>, ctx: RecordContext| {
            let out = out.clone();
            async move {
                let id = e.data.id;
                ctx.publish_to(
                    &out,
                    Event::new(Invoice {
                        id,
                        pad: String::new(),
                    }),
                )
                .await?;
                if hang && id == HANGS {
                    std::future::pending::<()>().await;
                }
                Ok::<(), HandlerError>(())
            }
        }
    };
    send_orders(&input, 2, 0..20).await;
    let first = builder(&config, &input, &group)
        .on::<Order, _, _>(handler(true, output.clone()))
        .build()
        .await
        .unwrap();
    let (first, run) = start(first);
    wait_until("the first half committed", || {
        let s = first.stats();
        s.processed >= 20 && s.transactions_committed >= 1
    })
    .await;
    send_orders(&input, 2, 20..N).await;
    // Partition 0 stops at 30 (its 32..38 wait behind it); partition 1 goes to its end.
    wait_until("the second half handled up to the hang", || {
        first.stats().processed >= N - 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(first.stats().transactions_committed >= 1);
    run.abort();
    let _ = run.await;
    drop(first);

    let second = builder(&config, &input, &group)
        .on::<Order, _, _>(handler(false, output.clone()))
        .build()
        .await
        .unwrap();
    let (second, run) = start(second);
    let records = read_committed(&output, 2, N as usize).await;
    assert_eq!(
        invoice_ids(&records).await,
        once_each(0..N),
        "every input's output exactly once"
    );
    stop(&second, run).await;
    let offsets = committed(&group).await;
    assert_eq!(offsets.get(&TopicPartition::new(&input, 0)), Some(&20));
    assert_eq!(offsets.get(&TopicPartition::new(&input, 1)), Some(&20));
}

/// Exactly-once needs a `transactional.id`; settings it cannot honour are refused by name.
#[tokio::test]
async fn the_mode_is_refused_without_a_transactional_id() {
    let config = config(false);
    let on = |e: Event<Order>, _c: RecordContext| async move {
        let _ = e;
        Ok::<(), HandlerError>(())
    };
    let err = EventConsumer::builder(&config, "any")
        .topics(["any"])
        .guarantee(ProcessingGuarantee::ExactlyOnce)
        .on::<Order, _, _>(on)
        .build()
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, EventsError::Configuration { setting, .. } if setting == "transactional.id"),
        "{err:?}"
    );
    // At-least-once with a transactional.id: its dead-letter producer would send outside
    // transactions.
    let err = EventConsumer::builder(&config, "any")
        .topics(["any"])
        .transactional_id("t-1")
        .on::<Order, _, _>(on)
        .build()
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, EventsError::Configuration { setting, .. } if setting == "transactional.id"),
        "{err:?}"
    );
    // One transaction per polled batch: a commit count does not apply.
    let err = builder(&config, "any", "any")
        .configure(|s| s.commit_every_n = 1)
        .on::<Order, _, _>(on)
        .build()
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("commit_every_n"), "{err}");
    // Retry waits that cannot fit in the transaction.
    let err = builder(&config, "any", "any")
        .configure(|s| {
            s.max_retries = 10;
            s.initial_backoff = Duration::from_secs(1);
            s.max_backoff = Duration::from_secs(32);
        })
        .on::<Order, _, _>(on)
        .build()
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("events.max.retries"), "{err}");
    // Reading input of aborted transactions is refused.
    let err = builder(&config, "any", "any")
        .set("isolation.level", "read_uncommitted")
        .on::<Order, _, _>(on)
        .build()
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("isolation.level"), "{err}");
}
