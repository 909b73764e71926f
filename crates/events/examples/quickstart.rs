//! The quickstart: publish typed service-health events to Kafka and read them back.
//!
//! Run it with `bash scripts/quickstart.sh`, which starts a local broker when
//! `KAFKA_BOOTSTRAP_SERVERS` names none. It publishes with `kafkit::producer::Producer`
//! (lz4, idempotent, acks=all) and reads back with `kafkit::consumer::Consumer`
//! (manual assignment, a seek to the first published offset).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{Compression, ConsumerConfig, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::state::group::TopicPartition;
use serde::{Deserialize, Serialize};

const TOPIC: &str = "kafkit.quickstart.service-health";
const TIMEOUT: Duration = Duration::from_secs(30);

/// A typed domain event: one service's health as observed by a probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ServiceHealth {
    event_id: String,
    service: String,
    status: Status,
    latency_ms: u32,
    observed_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Healthy,
    Degraded,
    Down,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .map_err(|_| "set KAFKA_BOOTSTRAP_SERVERS (scripts/quickstart.sh starts a broker)")?;
    let admin = Admin::connect(&bootstrap).await?;
    admin
        .create_topics_if_missing(&[NewTopic::new(TOPIC, 1, 1)])
        .await?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let run = format!("{:x}", now);
    let events: Vec<ServiceHealth> = [
        ("billing", Status::Healthy, 12),
        ("search", Status::Degraded, 480),
        ("auth", Status::Healthy, 7),
        ("ingest", Status::Down, 0),
        ("reports", Status::Healthy, 35),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (service, status, latency_ms))| ServiceHealth {
        event_id: format!("{run}-{i}"),
        service: service.to_owned(),
        status,
        latency_ms,
        observed_at_ms: now + i as i64,
    })
    .collect();

    admin.cluster().close();
    let base_offset = publish(&bootstrap, &events).await?;
    println!(
        "published {} events to {TOPIC} at offsets {base_offset}..",
        events.len()
    );

    let read = read_back(&bootstrap, base_offset, events.len()).await?;
    for (offset, event) in &read {
        println!(
            "  offset {offset}: {} is {:?} ({} ms)",
            event.service, event.status, event.latency_ms
        );
    }
    let read: Vec<ServiceHealth> = read.into_iter().map(|(_, e)| e).collect();
    if read != events {
        return Err(format!("read back {read:?}, expected {events:?}").into());
    }
    println!("read back all {} events, in order and intact", events.len());
    Ok(())
}

/// Publishes the events to partition 0 (lz4, acks=all, idempotent) with an event-type header;
/// returns the offset of the first.
async fn publish(bootstrap: &str, events: &[ServiceHealth]) -> Result<i64, BoxError> {
    let config = ProducerConfig::builder()
        .bootstrap_servers([bootstrap])
        .compression(Compression::Lz4)
        .build()?;
    let producer = Producer::new(config).await?;
    let mut deliveries = Vec::with_capacity(events.len());
    for event in events {
        let record = ProducerRecord::new(TOPIC)
            .partition(0)
            .key(event.service.clone())
            .value(serde_json::to_vec(event)?)
            .timestamp(event.observed_at_ms)
            .header("event-type", Some("service.health.v1"));
        deliveries.push(producer.send(record).await?);
    }
    let mut first = None;
    for delivery in deliveries {
        let written = delivery.await?;
        first.get_or_insert(written.offset);
    }
    producer.close(TIMEOUT).await?;
    first.ok_or_else(|| "nothing published".into())
}

/// Consumes partition 0 from `offset` until `count` events are in, or the timeout passes.
async fn read_back(
    bootstrap: &str,
    offset: i64,
    count: usize,
) -> Result<Vec<(i64, ServiceHealth)>, BoxError> {
    let config = ConsumerConfig::from_properties([("bootstrap.servers", bootstrap)])?;
    let consumer = Consumer::new(config).await?;
    let partition = TopicPartition::new(TOPIC, 0);
    consumer.assign([partition.clone()])?;
    consumer.seek(&partition, offset)?;
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        if Instant::now() > deadline {
            return Err(format!("only {} of {count} events came back", out.len()).into());
        }
        for record in consumer.poll(Duration::from_millis(200)).await? {
            if record.header("event-type").map(|v| v.as_ref()) != Some(&b"service.health.v1"[..]) {
                return Err(
                    format!("offset {}: not a service.health.v1 event", record.offset).into(),
                );
            }
            let value = record.value.as_deref().ok_or("tombstone in the topic")?;
            out.push((record.offset, serde_json::from_slice(value)?));
        }
    }
    consumer
        .close(Instant::now() + Duration::from_secs(5))
        .await;
    out.truncate(count);
    Ok(out)
}
