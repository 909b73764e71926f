//! The quickstart, the whole flow of kafkit-events in one run:
//!
//! 1. publish typed events: two data-ingestion and a service-health event as Avro (through
//!    the schema registry), a workflow event as JSON (checked against its JSON Schema);
//! 2. handle them in a consumer group with [`EventConsumer`]: one typed handler per event
//!    type, offsets committed only after a record was handled (at-least-once);
//! 3. one handler fails on purpose for one event: it is retried 3 times (100 ms backoff),
//!    then dead-lettered to `data-ingestion.dlq`, and the other events go on;
//! 4. read that dead letter back and print its `kafka_dlt-*` details, then the producer's and
//!    the consumer's stats and the group's committed offsets; stop gracefully.
//!
//! Run it with `bash scripts/quickstart.sh`, which starts a local broker and a local schema
//! registry when `KAFKA_BOOTSTRAP_SERVERS` / `SCHEMA_REGISTRY_URL` name none. Configuration
//! comes from the environment (`EventsConfig::from_env`: the in-house SDKs' variables). The
//! whole run ends within a minute, or fails saying what it was waiting for.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::BoxError;
use kafkit::admin::Admin;
use kafkit::producer::RecordMetadata;
use kafkit_events::catalog::data::{data_ingestion, DataIngestion, IngestionStatus};
use kafkit_events::catalog::system::{service_health, HealthStatus, ServiceHealth};
use kafkit_events::catalog::workflow::{
    workflow_event, EventSource, WorkflowEvent, WorkflowEventType,
};
use kafkit_events::consume::read_dead_letter;
use kafkit_events::consumer::{EventConsumer, HandlerError, RecordContext};
use kafkit_events::producer::EventProducer;
use kafkit_events::topics::{ensure_topics, EnsureOptions, TopicSpec};
use kafkit_events::{Event, EventPayload};

/// The whole run's budget (CI runs the quickstart; it must never hang).
const RUN_BUDGET: Duration = Duration::from_secs(55);
/// The dataset whose ingestion event our handler refuses.
const QUARANTINED: &str = "quarantined_feed";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let started = Instant::now();
    match tokio::time::timeout(RUN_BUDGET, run(started)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "quickstart: not done after {} s (is the broker at KAFKA_BOOTSTRAP_SERVERS up?)",
            RUN_BUDGET.as_secs()
        )
        .into()),
    }
}

async fn run(started: Instant) -> Result<(), BoxError> {
    // Settings from the environment (`SERVICE_NAME` defaults to `kafkit-quickstart`).
    let config = common::config("kafkit-quickstart")?;
    if config.registry().is_none() {
        return Err("set SCHEMA_REGISTRY_URL (scripts/quickstart.sh starts a registry)".into());
    }
    // Every event of this run carries this correlation id: the handlers ignore events of
    // earlier runs against the same broker.
    let run_id = common::unique("quickstart");

    step("1. topics, as the topic catalogue declares them");
    let admin = Admin::connect(&common::bootstrap(&config)).await?;
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
        "   created {:?}, already there {:?}",
        report.created, report.existing
    );

    step("2. publish typed events");
    let producer = EventProducer::new(&config).await?;
    let ingestion = data_ingestion(
        "commodity_prices",
        10_000,
        1_024_000,
        "s3://bucket/data/commodity_prices.parquet",
        IngestionStatus::Success,
    )
    .map(|d| d.with_metadata("source", "external_api"))
    .with_correlation_id(&run_id);
    let quarantined = data_ingestion(
        QUARANTINED,
        42,
        4_200,
        "s3://bucket/data/quarantined_feed.csv",
        IngestionStatus::Partial,
    )
    .map(|d| d.with_format("csv"))
    .with_correlation_id(&run_id);
    let health = service_health(
        "billing",
        "data-platform",
        HealthStatus::Degraded,
        Duration::from_millis(480),
        0.02,
    )
    .caused_by(&ingestion);
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
    let quarantined_id = quarantined.envelope.id.clone();

    let published = [
        ("data.ingestion (Avro)", producer.publish(ingestion).await?),
        (
            "data.ingestion (Avro)",
            producer.publish(quarantined).await?,
        ),
        (
            "system.service_health (Avro)",
            producer.publish(health).await?,
        ),
        ("workflow.event (JSON)", producer.publish(workflow).await?),
    ];
    for (what, at) in &published {
        println!("   {what:<29} → {}", at_str(at));
    }
    let quarantined_at = published[1].1.clone();

    step("3. handle them in a consumer group with typed handlers");
    let handled = Arc::new(AtomicU64::new(0));
    let group = format!("{run_id}-handlers");
    let consumer = EventConsumer::builder(&config, &group)
        .topics(
            [
                DataIngestion::default_topic(),
                ServiceHealth::default_topic(),
                WorkflowEvent::default_topic(),
            ]
            .into_iter()
            .flatten(),
        )
        .set("auto.offset.reset", "earliest")
        // Retry a failing handler 3 times, 100 ms apart at most, before dead-lettering (the
        // defaults, 3 retries from 1 s up to 32 s, suit a service better than a demo).
        .configure(|s| {
            s.max_retries = 3;
            s.initial_backoff = Duration::from_millis(100);
            s.max_backoff = Duration::from_millis(100);
            s.shutdown_timeout = Duration::from_secs(10);
        })
        .on::<DataIngestion, _, _>({
            let (handled, run_id) = (handled.clone(), run_id.clone());
            move |event: Event<DataIngestion>, ctx: RecordContext| {
                let (handled, ours) = (handled.clone(), from_run(&ctx, &run_id));
                async move {
                    if !ours {
                        return Ok(());
                    }
                    if event.data.dataset_name == QUARANTINED {
                        println!(
                            "   ✗ data.ingestion {} refused (attempt {})",
                            event.data.dataset_name, ctx.attempt
                        );
                        return Err(HandlerError::retriable_msg(format!(
                            "warehouse refuses dataset {QUARANTINED}: quarantined"
                        ))
                        .with_class("quickstart.QuarantinedDataset"));
                    }
                    println!(
                        "   ✓ data.ingestion {}: {} records at {} ({})\n{}",
                        event.data.dataset_name,
                        event.data.record_count,
                        event.data.location,
                        at_ctx(&ctx),
                        headers_of(&ctx)
                    );
                    handled.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            }
        })
        .on::<ServiceHealth, _, _>({
            let (handled, run_id) = (handled.clone(), run_id.clone());
            move |event: Event<ServiceHealth>, ctx: RecordContext| {
                let (handled, ours) = (handled.clone(), from_run(&ctx, &run_id));
                async move {
                    if ours {
                        println!(
                            "   ✓ system.service_health {} is {:?} ({} ms), caused by {} ({})",
                            event.data.service_name,
                            event.data.health_status,
                            event.data.latency_ms,
                            event.envelope.causation_id.as_deref().unwrap_or("-"),
                            at_ctx(&ctx)
                        );
                        handled.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            }
        })
        .on::<WorkflowEvent, _, _>({
            let (handled, run_id) = (handled.clone(), run_id.clone());
            move |event: Event<WorkflowEvent>, ctx: RecordContext| {
                let (handled, ours) = (handled.clone(), from_run(&ctx, &run_id));
                async move {
                    if ours {
                        println!(
                            "   ✓ workflow.event {:?} of {} run {} with {} ({})",
                            event.data.event_type,
                            event.data.workflow_id,
                            event.data.workflow_run_id,
                            serde_json::Value::Object(event.data.payload.data.clone()),
                            at_ctx(&ctx)
                        );
                        handled.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            }
        })
        .build()
        .await?;
    // Run it until our 3 good events are handled and the bad one is dead-lettered, then stop
    // gracefully: running handlers finish, what was handled is committed, the member leaves
    // the group.
    let consumer = common::run_until(
        consumer,
        "3 events handled and 1 dead letter",
        Duration::from_secs(40),
        |consumer| handled.load(Ordering::Relaxed) >= 3 && consumer.stats().dead_lettered >= 1,
    )
    .await?;

    step("4. the dead letter");
    let dead_letter_topic = format!("{}.dlq", quarantined_at.topic);
    let record = common::find_dead_letter(
        &config,
        &dead_letter_topic,
        quarantined_at.partition,
        &quarantined_id,
    )
    .await?;
    let info = read_dead_letter(&record.headers)?;
    println!(
        "   {dead_letter_topic}-{}@{} (key {:?}): the original record, byte for byte, plus",
        record.partition,
        record.offset,
        record.key.as_deref().map(String::from_utf8_lossy)
    );
    println!(
        "   kafka_dlt-original-topic/partition/offset = {} / {} / {}",
        info.original_topic,
        opt(info.original_partition),
        opt(info.original_offset)
    );
    println!(
        "   kafka_dlt-exception-fqcn                  = {}",
        info.exception_class.as_deref().unwrap_or("-")
    );
    println!(
        "   kafka_dlt-exception-message               = {}",
        info.exception_message.as_deref().unwrap_or("-")
    );
    println!(
        "   kafka_dlt-consumer-group                  = {}",
        info.group.as_deref().unwrap_or("-")
    );
    println!(
        "   kafka_dlt-attempts                        = {}",
        opt(info.attempts)
    );
    println!(
        "   (re-publish dead letters to their topic with the `redrive` example: \
         cargo run -p kafkit-events --example redrive -- {dead_letter_topic})"
    );

    step("5. stats");
    producer.flush(Duration::from_secs(10)).await?;
    let p = producer.stats();
    println!(
        "   producer: sent {}, failed {}, {} bytes; by type {:?}",
        p.messages_sent,
        p.messages_failed,
        p.total_bytes_sent,
        p.by_event_type
            .iter()
            .map(|(t, c)| (t.as_str(), c.sent))
            .collect::<Vec<_>>()
    );
    producer.close().await?;
    let c = consumer.stats();
    println!(
        "   consumer: consumed {}, processed {}, failed attempts {}, retried {}, \
         dead-lettered {}, {} bytes, running {}",
        c.consumed, c.processed, c.failed, c.retried, c.dead_lettered, c.bytes, c.running
    );
    if c.consumed > 4 {
        println!(
            "   ({} of those records were from earlier runs on these topics: handled as no-ops)",
            c.consumed - 4
        );
    }
    let committed = admin.list_group_offsets(&group).await?;
    let committed: Vec<String> = committed
        .iter()
        .filter_map(|(tp, at)| {
            at.as_ref()
                .map(|at| format!("{}-{}@{}", tp.topic, tp.partition, at.offset))
        })
        .collect();
    println!(
        "   committed by group {group} (after handling): {}",
        committed.join(", ")
    );
    admin.close(Duration::from_secs(5)).await;

    println!(
        "\ndone in {:.1} s: 4 events published, 3 handled, 1 retried 3 times then dead-lettered",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn step(title: &str) {
    println!("\n{title}");
}

/// Whether the record belongs to this run (`caused_by` passes the correlation id on).
fn from_run(ctx: &RecordContext, run_id: &str) -> bool {
    ctx.envelope
        .as_ref()
        .is_some_and(|e| e.correlation_id.as_deref() == Some(run_id))
}

fn at_str(at: &RecordMetadata) -> String {
    format!("{}-{}@{}", at.topic, at.partition, at.offset)
}

fn at_ctx(ctx: &RecordContext) -> String {
    format!("{}-{}@{}", ctx.topic, ctx.partition, ctx.offset)
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The record's headers, one per line (the CloudEvents attributes travel as `ce_*` headers).
fn headers_of(ctx: &RecordContext) -> String {
    ctx.headers
        .iter()
        .map(|h| {
            let value = h.value.as_deref().map(String::from_utf8_lossy);
            format!(
                "       {} = {}",
                String::from_utf8_lossy(&h.key),
                value.unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
