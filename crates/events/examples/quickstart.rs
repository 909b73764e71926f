//! The quickstart: publish typed events — Avro through the schema registry and JSON — read
//! them back decoded, and show their CloudEvents headers and the producer's stats.
//!
//! Run it with `bash scripts/quickstart.sh`, which starts a local broker and a local schema
//! registry when `KAFKA_BOOTSTRAP_SERVERS` / `SCHEMA_REGISTRY_URL` name none. Configuration
//! comes from the environment (`EventsConfig::from_env`: the in-house SDKs' variables).
//! Events are published with `EventProducer`; they are read back with a plain
//! `kafkit::consumer::Consumer` and decoded with the codecs (handlers come with #12).

use std::time::{Duration, Instant};

use kafkit::admin::Admin;
use kafkit::consumer::{Consumer, ConsumerRecord};
use kafkit::producer::RecordMetadata;
use kafkit::TopicPartition;
use kafkit_events::catalog::data::{data_ingestion, DataIngestion, IngestionStatus};
use kafkit_events::catalog::system::{service_health, HealthStatus, ServiceHealth};
use kafkit_events::catalog::workflow::{
    workflow_event, EventSource, WorkflowEvent, WorkflowEventType,
};
use kafkit_events::config::EventsConfig;
use kafkit_events::format::{AvroCodec, EventCodec, JsonCodec};
use kafkit_events::producer::EventProducer;
use kafkit_events::topics::{ensure_topics, EnsureOptions, TopicSpec};
use kafkit_events::{Event, EventPayload};

const TIMEOUT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let config = EventsConfig::from_env_with(|name| match name {
        "SERVICE_NAME" => std::env::var(name)
            .ok()
            .or(Some("kafkit-quickstart".into())),
        _ => std::env::var(name).ok(),
    })?;
    if config.registry().is_none() {
        return Err("set SCHEMA_REGISTRY_URL (scripts/quickstart.sh starts a registry)".into());
    }
    let bootstrap = bootstrap(&config);

    // The topics these event types publish to, as the topic catalogue declares them
    // (replication clamped to the cluster's size).
    let admin = Admin::connect(&bootstrap).await?;
    let topics: Vec<TopicSpec> = [
        (DataIngestion::default_topic(), 12),
        (ServiceHealth::default_topic(), 3),
        (WorkflowEvent::default_topic(), 6),
    ]
    .into_iter()
    .filter_map(|(name, partitions)| name.map(|n| TopicSpec::new(n, partitions)))
    .collect();
    let report = ensure_topics(&admin, &topics, &EnsureOptions::default()).await?;
    println!(
        "topics: created {:?}, already there {:?}",
        report.created, report.existing
    );
    admin.close(Duration::from_secs(5)).await;

    let producer = EventProducer::new(&config).await?;

    // Avro, through the schema registry (Confluent wire format).
    let ingestion = data_ingestion(
        "commodity_prices",
        10_000,
        1_024_000,
        "s3://bucket/data/commodity_prices.parquet",
        IngestionStatus::Success,
    )
    .map(|d| d.with_metadata("source", "external_api"))
    .with_correlation_id("quickstart-run");
    let health = service_health(
        "billing",
        "data-platform",
        HealthStatus::Degraded,
        Duration::from_millis(480),
        0.02,
    )
    .caused_by(&ingestion);
    // JSON, validated against its JSON Schema before it is sent.
    let data = serde_json::json!({"status": "success", "count": 100});
    let workflow = workflow_event(
        WorkflowEventType::WorkflowCompleted,
        EventSource::Airflow,
        "example_dag",
        "run_123",
        data.as_object().cloned().unwrap_or_default(),
        "dev",
    )?
    .caused_by(&ingestion);

    let (ingestion_id, health_id, workflow_id) = (
        ingestion.envelope.id.clone(),
        health.envelope.id.clone(),
        workflow.envelope.id.clone(),
    );
    let at_ingestion = producer.publish(ingestion).await?;
    let at_health = producer.publish(health).await?;
    let at_workflow = producer.publish(workflow).await?;
    for (what, at) in [
        ("data.ingestion (Avro)", &at_ingestion),
        ("system.service_health (Avro)", &at_health),
        ("workflow.event (JSON)", &at_workflow),
    ] {
        println!(
            "published {what} to {}-{} at offset {}",
            at.topic, at.partition, at.offset
        );
    }

    // Read back with a plain consumer and decode with the codecs.
    let registry = config
        .schema_registry()?
        .ok_or("a registry is configured")?;
    let avro = AvroCodec::new(registry, config.serde().clone())?;
    let json = JsonCodec::new(config.serde().clone());
    let consumer = Consumer::new(config.consumer()?).await?;

    let record = read_one(&consumer, &at_ingestion).await?;
    show_headers(&record);
    let back: Event<DataIngestion> = avro.decode(&record).await?;
    check(&back.envelope.id, &ingestion_id)?;
    println!(
        "  decoded: {} records of {} ({:?}), metadata {:?}",
        back.data.record_count, back.data.dataset_name, back.data.status, back.data.metadata
    );

    let record = read_one(&consumer, &at_health).await?;
    show_headers(&record);
    let back: Event<ServiceHealth> = avro.decode(&record).await?;
    check(&back.envelope.id, &health_id)?;
    check(
        back.envelope.causation_id.as_deref().unwrap_or(""),
        &ingestion_id,
    )?;
    println!(
        "  decoded: {} is {:?} ({} ms), caused by {}",
        back.data.service_name,
        back.data.health_status,
        back.data.latency_ms,
        back.envelope.causation_id.as_deref().unwrap_or("-")
    );

    let record = read_one(&consumer, &at_workflow).await?;
    show_headers(&record);
    let back: Event<WorkflowEvent> = json.decode(&record).await?;
    check(&back.envelope.id, &workflow_id)?;
    println!(
        "  decoded: {:?} of {} run {} with {:?}",
        back.data.event_type,
        back.data.workflow_id,
        back.data.workflow_run_id,
        back.data.payload.data
    );
    consumer.close(Duration::from_secs(5)).await?;

    producer.flush(TIMEOUT).await?;
    let stats = producer.stats();
    println!(
        "stats: sent {}, failed {}, {} bytes; by type {:?}",
        stats.messages_sent,
        stats.messages_failed,
        stats.total_bytes_sent,
        stats
            .by_event_type
            .iter()
            .map(|(t, c)| (t.as_str(), c.sent))
            .collect::<Vec<_>>()
    );
    producer.close().await?;
    println!("read back all 3 events, decoded and intact");
    Ok(())
}

fn bootstrap(config: &EventsConfig) -> String {
    config
        .producer()
        .client()
        .bootstrap_servers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect::<Vec<_>>()
        .join(",")
}

fn check(got: &str, expected: &str) -> Result<(), BoxError> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("read back {got}, expected {expected}").into())
    }
}

/// The record `at` names, read with the plain consumer (assigned, seeked).
async fn read_one(consumer: &Consumer, at: &RecordMetadata) -> Result<ConsumerRecord, BoxError> {
    let partition = TopicPartition::new(at.topic.as_ref(), at.partition);
    consumer.assign([partition.clone()])?;
    consumer.seek(&partition, at.offset)?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "{}-{}@{} did not come back",
                at.topic, at.partition, at.offset
            )
            .into());
        }
        for record in consumer.poll(Duration::from_millis(200)).await? {
            if record.offset == at.offset {
                return Ok(record);
            }
        }
    }
}

fn show_headers(record: &ConsumerRecord) {
    println!(
        "{}-{}@{} key {:?}:",
        record.topic,
        record.partition,
        record.offset,
        record.key.as_deref().map(String::from_utf8_lossy)
    );
    for header in &record.headers {
        let value = header.value.as_deref().map(String::from_utf8_lossy);
        println!(
            "  {} = {}",
            String::from_utf8_lossy(&header.key),
            value.unwrap_or_default()
        );
    }
}
