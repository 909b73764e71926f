//! The quickstart: publish typed service-health events to Kafka and read them back.
//!
//! Run it with `bash scripts/quickstart.sh`, which starts a local broker when
//! `KAFKA_BOOTSTRAP_SERVERS` names none. Until the producer and consumer of `kafkit-client` land,
//! this example speaks Produce and Fetch itself over a `Connection`, with record batches from
//! `kafkit-wire`: the same pieces those will use.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafkit_client::admin::{Admin, NewTopic};
use kafkit_client::Error;
use kafkit_wire::compression::Compression;
use kafkit_wire::record::{BatchBuilder, BatchOptions, BatchReader, HeaderRef, RecordRef};
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

    let base_offset = publish(&admin, &events).await?;
    println!(
        "published {} events to {TOPIC} at offsets {base_offset}..",
        events.len()
    );

    let read = read_back(&admin, base_offset, events.len()).await?;
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

/// Writes the events as one lz4-compressed batch to partition 0 (acks=all); returns the offset
/// of the first.
async fn publish(admin: &Admin, events: &[ServiceHealth]) -> Result<i64, BoxError> {
    let values: Vec<Vec<u8>> = events
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()?;
    let headers = [HeaderRef::new(b"event-type", Some(b"service.health.v1"))];
    let mut buf = BytesMut::new();
    let mut batch = BatchBuilder::new(&mut buf, 0);
    for (event, value) in events.iter().zip(&values) {
        batch.append(
            &RecordRef::new(
                event.observed_at_ms,
                Some(event.service.as_bytes()),
                Some(value),
            )
            .with_headers(&headers),
        )?;
    }
    let options = BatchOptions {
        compression: Compression::Lz4,
        ..BatchOptions::default()
    };
    batch.finish(&options, &mut Vec::new())?;

    let leader = leader_of_partition_0(admin)?;
    let conn = admin.cluster().connection(leader).await?;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(TIMEOUT.as_millis() as i32)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(buf.freeze()))])]);
    let response = conn
        .send(&request, conn.version(ApiKey::Produce)?, TIMEOUT)
        .await?;
    let partition = response
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or("empty produce response")?;
    Error::check(
        ApiKey::Produce,
        partition.error_code,
        partition.error_message.as_deref(),
    )?;
    Ok(partition.base_offset)
}

/// Fetches partition 0 from `offset` until `count` events are in, or the timeout passes.
async fn read_back(
    admin: &Admin,
    mut offset: i64,
    count: usize,
) -> Result<Vec<(i64, ServiceHealth)>, BoxError> {
    let leader = leader_of_partition_0(admin)?;
    let conn = admin.cluster().connection(leader).await?;
    let version = conn.version(ApiKey::Fetch)?;
    let topic_id = admin
        .cluster()
        .metadata()
        .topic(TOPIC)
        .map(|t| t.topic_id)
        .ok_or("topic vanished")?;
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    while out.len() < count {
        if Instant::now() > deadline {
            return Err(format!("only {} of {count} events came back", out.len()).into());
        }
        let mut topic = FetchTopic::default().with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(offset)
            .with_current_leader_epoch(-1)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(1 << 20)]);
        if version >= 13 {
            topic.topic_id = uuid::Uuid::from_bytes(topic_id);
        } else {
            topic.topic = TopicName(StrBytes::from_static_str(TOPIC));
        }
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![topic]);
        let response = conn.send(&request, version, TIMEOUT).await?;
        Error::check(ApiKey::Fetch, response.error_code, None)?;
        for partition in response.responses.iter().flat_map(|t| &t.partitions) {
            Error::check(ApiKey::Fetch, partition.error_code, None)?;
            let Some(records) = partition.records.clone() else {
                continue;
            };
            for batch in BatchReader::new(records) {
                for record in batch?.records() {
                    if record.offset < offset {
                        continue; // a batch starts before the offset asked for
                    }
                    let value = record.value.as_deref().ok_or("tombstone in the topic")?;
                    out.push((record.offset, serde_json::from_slice(value)?));
                    offset = record.offset + 1;
                }
            }
        }
    }
    out.truncate(count);
    Ok(out)
}

fn leader_of_partition_0(admin: &Admin) -> Result<i32, BoxError> {
    admin
        .cluster()
        .metadata()
        .leader(TOPIC, 0)
        .map(|b| b.node_id)
        .ok_or_else(|| "no leader for partition 0".into())
}
