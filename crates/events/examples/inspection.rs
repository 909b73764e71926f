//! The chip-quality inspection stream (the streaming platform's producer and analytics
//! consumer): several event types on one topic, `chip-quality.inspection.events`, each
//! routed to its handler by its `ce_type` header — only the routed type is decoded:
//!
//! - `chip_quality.inspection` (the catalogue's `InspectionEvent`, Avro through the registry:
//!   created / completed / failed, keyed by inspection id);
//! - `chip_quality.defect_alert` (a JSON type of this example) for the line's pager;
//! - `chip_quality.station_maintenance` (JSON, no handler of its own): the default handler.
//!
//! Failures, as the seed's `consume_with_retry` and DLQ promise: storing one inspection's
//! result fails once (retried, then it succeeds); the pager refuses one alert every time
//! (retried 3 times, then dead-lettered); one inspection names an unknown station, which no
//! retry can fix (not retriable: dead-lettered at once). Dead letters go to
//! `chip-quality.inspection.events.dlq` with the original record and `kafka_dlt-*` headers.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 SCHEMA_REGISTRY_URL=http://127.0.0.1:8081 \
//!   cargo run -p kafkit-events --example inspection
//! ```

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::BoxError;
use kafkit_events::catalog::inspection::{
    inspection_completed, inspection_created, inspection_failed, Defect, InspectionEvent,
    InspectionEventType,
};
use kafkit_events::consume::read_dead_letter;
use kafkit_events::consumer::{EventConsumer, HandlerError, RecordContext, UnhandledRecord};
use kafkit_events::producer::EventProducer;
use kafkit_events::{Event, EventPayload};
use serde::{Deserialize, Serialize};

const TOPIC: &str = "chip-quality.inspection.events";
const KNOWN_STATIONS: [&str; 2] = ["A1", "B2"];

/// A defect serious enough to page the line (JSON; same topic as the inspections).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DefectAlert {
    inspection_id: String,
    chip_id: String,
    severity: String,
}

impl EventPayload for DefectAlert {
    const EVENT_TYPE: &'static str = "chip_quality.defect_alert";
    fn default_topic() -> Option<&'static str> {
        Some(TOPIC)
    }
    fn key(&self) -> Option<String> {
        Some(self.inspection_id.clone())
    }
}

/// A station's maintenance window (JSON; nobody here handles it: the default handler).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StationMaintenance {
    station: String,
    minutes: u32,
}

impl EventPayload for StationMaintenance {
    const EVENT_TYPE: &'static str = "chip_quality.station_maintenance";
    fn default_topic() -> Option<&'static str> {
        Some(TOPIC)
    }
    fn key(&self) -> Option<String> {
        Some(self.station.clone())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    common::bounded("inspection", Duration::from_secs(60), run()).await
}

async fn run() -> Result<(), BoxError> {
    let config = common::config("inspection-service")?;
    let admin = common::ensure(&config, &[TOPIC]).await?;
    admin.close(Duration::from_secs(5)).await;
    // Handlers skip events of earlier runs against the same broker: this run's events carry
    // its id as their correlation id.
    let run_id = common::unique("inspection-run");
    let ins = |n: u32| format!("INS-{n:03}-{}", std::process::id());

    // 1. The producer side: `publish_inspection_created` / `_completed` and the rest.
    let producer = EventProducer::new(&config).await?;
    let scratch = Defect {
        defect_type: "scratch".into(),
        severity: "major".into(),
        confidence: 0.97,
        location: Some("die 4".into()),
    };
    let created = inspection_created(
        ins(1),
        "BATCH-001",
        "CHIP-001",
        "visual",
        [("station", "A1")],
    )
    .with_correlation_id(&run_id);
    let completed = inspection_completed(
        ins(1),
        "BATCH-001",
        "CHIP-001",
        "visual",
        0.82,
        vec![scratch],
    )
    .caused_by(&created);
    let flaky_store = inspection_completed(ins(2), "BATCH-001", "CHIP-002", "visual", 0.99, vec![])
        .with_correlation_id(&run_id);
    let unknown_station = inspection_created(
        ins(3),
        "BATCH-002",
        "CHIP-003",
        "x-ray",
        [("station", "Z9")],
    )
    .with_correlation_id(&run_id);
    let failed = inspection_failed(ins(4), "BATCH-002", "CHIP-004", "x-ray", "camera timeout")
        .with_correlation_id(&run_id);
    let alert = Event::new(DefectAlert {
        inspection_id: ins(1),
        chip_id: "CHIP-001".into(),
        severity: "major".into(),
    })
    .caused_by(&completed);
    let maintenance = Event::new(StationMaintenance {
        station: "B2".into(),
        minutes: 30,
    })
    .with_correlation_id(&run_id);
    let (alert_id, unknown_station_id) = (
        alert.envelope.id.clone(),
        unknown_station.envelope.id.clone(),
    );
    let mut placed = Vec::new();
    for event in [created, completed, flaky_store, unknown_station, failed] {
        placed.push(producer.publish(event).await?);
    }
    placed.push(producer.publish(alert).await?);
    placed.push(producer.publish(maintenance).await?);
    let (alert_partition, unknown_station_partition) = (placed[5].partition, placed[3].partition);
    let p = producer.stats();
    println!(
        "producer: messages_sent {}, messages_failed {}, total_bytes_sent {}, is_started {}",
        p.messages_sent, p.messages_failed, p.total_bytes_sent, p.is_started
    );
    producer.close().await?;

    // 2. The analytics consumer: one handler per type, a default handler, short retries.
    let ours = {
        let run_id = run_id.clone();
        move |ctx: &RecordContext| {
            ctx.envelope
                .as_ref()
                .and_then(|e| e.correlation_id.as_deref())
                == Some(run_id.as_str())
        }
    };
    let (ours1, ours2, ours3) = (ours.clone(), ours.clone(), ours);
    // Our records handled successfully (by a typed or the default handler).
    let handled = Arc::new(AtomicU64::new(0));
    let (handled1, handled3) = (handled.clone(), handled.clone());
    let consumer = EventConsumer::builder(&config, &common::unique("inspection-analytics"))
        .topics([TOPIC])
        .set("auto.offset.reset", "earliest")
        .configure(|s| {
            s.max_retries = 3;
            s.initial_backoff = Duration::from_millis(100);
            s.max_backoff = Duration::from_millis(400);
        })
        .on::<InspectionEvent, _, _>(move |event: Event<InspectionEvent>, ctx: RecordContext| {
            let (ours, handled) = (ours1(&ctx), handled1.clone());
            async move {
                if !ours {
                    return Ok(());
                }
                let i = &event.data;
                if let Some(station) = i.metadata.get("station") {
                    if !KNOWN_STATIONS.contains(&station.as_str()) {
                        println!(
                            "  ✗ {} from unknown station {station}: not retriable",
                            i.inspection_id
                        );
                        return Err(HandlerError::not_retriable_msg(format!(
                            "unknown station {station}"
                        ))
                        .with_class("inspection.UnknownStation"));
                    }
                }
                if i.event_type == InspectionEventType::InspectionCompleted
                    && i.defects.is_empty()
                    && ctx.attempt == 1
                {
                    println!(
                        "  ✗ {} result store busy (attempt 1): will retry",
                        i.inspection_id
                    );
                    return Err(HandlerError::retriable_msg("result store busy"));
                }
                let detail = match i.event_type {
                    InspectionEventType::InspectionCompleted => {
                        format!(
                            "score {:.2}, {} defect(s)",
                            i.quality_score.unwrap_or(0.0),
                            i.defects.len()
                        )
                    }
                    InspectionEventType::InspectionFailed => i.error.clone().unwrap_or_default(),
                    _ => format!("{} inspection of {}", i.inspection_type, i.chip_id),
                };
                println!(
                    "  ✓ {:?} {} (attempt {}, {}-{}@{}): {detail}",
                    i.event_type,
                    i.inspection_id,
                    ctx.attempt,
                    ctx.topic,
                    ctx.partition,
                    ctx.offset
                );
                handled.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .on::<DefectAlert, _, _>(move |event: Event<DefectAlert>, ctx: RecordContext| {
            let ours = ours2(&ctx);
            async move {
                if !ours {
                    return Ok(());
                }
                println!(
                    "  ✗ paging for {} on {}: pager unreachable (attempt {})",
                    event.data.severity, event.data.chip_id, ctx.attempt
                );
                Err(HandlerError::retriable_msg("pager unreachable")
                    .with_class("inspection.PagerDown"))
            }
        })
        .on_default(move |record: UnhandledRecord, ctx: RecordContext| {
            let (ours, handled) = (ours3(&ctx), handled3.clone());
            async move {
                if ours {
                    handled.fetch_add(1, Ordering::Relaxed);
                    println!(
                        "  · default handler: {} ({} bytes, not decoded)",
                        record.event_type.as_deref().unwrap_or("no ce_type"),
                        record.value.map_or(0, |v| v.len())
                    );
                }
                Ok(())
            }
        })
        .build()
        .await?;
    // Everything of ours is consumed once the two dead letters are written and the other
    // five records are handled (by their typed handler or the default handler).
    let consumer = common::run_until(
        consumer,
        "2 dead letters and 5 handled records",
        Duration::from_secs(40),
        |consumer| consumer.stats().dead_lettered >= 2 && handled.load(Ordering::Relaxed) >= 5,
    )
    .await?;
    let c = consumer.stats();
    println!(
        "consumer: messages_consumed {}, messages_processed {}, messages_failed {}, retried {}, \
         dead-lettered {}, total_bytes_consumed {}, is_running {}",
        c.consumed, c.processed, c.failed, c.retried, c.dead_lettered, c.bytes, c.running
    );

    // 3. The dead letters: the original record, and why it is there.
    let dlq = format!("{TOPIC}.dlq");
    for (event_id, partition) in [
        (alert_id, alert_partition),
        (unknown_station_id, unknown_station_partition),
    ] {
        let record = common::find_dead_letter(&config, &dlq, partition, &event_id).await?;
        let info = read_dead_letter(&record.headers)?;
        println!(
            "dead letter {dlq}-{}@{}: from {}-{}@{}, {} after {} attempt(s): {}",
            record.partition,
            record.offset,
            info.original_topic,
            info.original_partition.unwrap_or(-1),
            info.original_offset.unwrap_or(-1),
            info.exception_class.as_deref().unwrap_or("-"),
            info.attempts.unwrap_or(0),
            info.exception_message.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
