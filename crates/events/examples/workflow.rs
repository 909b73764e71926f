//! The workflow event producer guide's flow: an orchestrator's runs reported as validated
//! `workflow.event`s (JSON, checked against `schemas/workflow_event.schema.json` before they
//! are sent; topic `workflow-events`, key the workflow id so a workflow's events stay in
//! order). Each run follows the guide's lifecycle — triggered → started → task started /
//! completed (or failed) → completed or failed — and every event is `caused_by` the one
//! before it: the causation id names the previous event, the correlation id (the trigger's
//! id) ties the whole run together. A consumer then reads the runs back and checks the chains.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 cargo run -p kafkit-events --example workflow
//! ```
//! (JSON only: no schema registry needed.)

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::BoxError;
use kafkit_events::catalog::workflow::{
    workflow_event, EventSource, WorkflowEvent, WorkflowEventMetadata, WorkflowEventPayload,
    WorkflowEventType as Type,
};
use kafkit_events::consumer::{EventConsumer, RecordContext};
use kafkit_events::error::EventsError;
use kafkit_events::producer::EventProducer;
use kafkit_events::Event;
use serde_json::{json, Map, Value};

/// The events read back, by correlation id (one run each), with their offsets.
type Seen = BTreeMap<String, Vec<(i64, Event<WorkflowEvent>)>>;

const DAG: &str = "daily_prices_dag";

fn data(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// One run of the DAG: its events, each caused by the one before. `fail_at` names the task
/// that fails (the run then fails), if any.
fn run_events(run_id: &str, fail_at: Option<&str>) -> Result<Vec<Event<WorkflowEvent>>, BoxError> {
    let event = |event_type, source, payload: Value| -> Result<Event<WorkflowEvent>, BoxError> {
        Ok(workflow_event(
            event_type,
            source,
            DAG,
            run_id,
            data(payload),
            "dev",
        )?)
    };
    // Triggered from the API, run by Airflow.
    let mut events = vec![event(
        Type::WorkflowTriggered,
        EventSource::Fastapi,
        json!({"triggered_by": "api"}),
    )?];
    chain(
        &mut events,
        event(Type::WorkflowStarted, EventSource::Airflow, json!({}))?,
    );
    for task in ["extract", "transform", "load"] {
        chain(
            &mut events,
            event(
                Type::TaskStarted,
                EventSource::Airflow,
                json!({"task": task}),
            )?,
        );
        if fail_at == Some(task) {
            let error = json!({"task": task, "error": "upstream table locked", "try_number": 1});
            chain(
                &mut events,
                event(Type::TaskFailed, EventSource::Airflow, error)?,
            );
            chain(
                &mut events,
                event(
                    Type::WorkflowFailed,
                    EventSource::Airflow,
                    json!({"failed_task": task}),
                )?,
            );
            return Ok(events);
        }
        chain(
            &mut events,
            event(
                Type::TaskCompleted,
                EventSource::Airflow,
                json!({"task": task}),
            )?,
        );
    }
    chain(
        &mut events,
        event(
            Type::WorkflowCompleted,
            EventSource::Airflow,
            json!({"status": "success"}),
        )?,
    );
    Ok(events)
}

/// Appends `event`, caused by the last event of the run.
fn chain(events: &mut Vec<Event<WorkflowEvent>>, event: Event<WorkflowEvent>) {
    let event = match events.last() {
        Some(cause) => event.caused_by(cause),
        None => event,
    };
    events.push(event);
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    common::bounded("workflow", Duration::from_secs(60), run()).await
}

async fn run() -> Result<(), BoxError> {
    let config = common::config("workflow-orchestrator")?;
    let admin = common::ensure(&config, &["workflow-events"]).await?;
    admin.close(Duration::from_secs(5)).await;
    let producer = EventProducer::new(&config).await?;

    // Validation, twice. The helper refuses blank ids before an event exists…
    match workflow_event(
        Type::WorkflowStarted,
        EventSource::Cli,
        DAG,
        " ",
        Map::new(),
        "dev",
    ) {
        Err(e) => println!("refused by workflow_event: {e}"),
        Ok(_) => return Err("a blank run id was accepted".into()),
    }
    // …and the JSON Schema is checked before anything is sent, whatever built the event.
    let hand_made = Event::new(WorkflowEvent {
        event_type: Type::WorkflowStarted,
        source: EventSource::Manual,
        workflow_id: String::new(),
        workflow_run_id: "run_0".into(),
        payload: WorkflowEventPayload::default(),
        metadata: WorkflowEventMetadata {
            environment: "dev".into(),
        },
    });
    match producer.publish(hand_made).await {
        Err(e @ EventsError::SchemaValidation { .. }) => {
            println!("refused by the JSON Schema: {e}")
        }
        other => return Err(format!("expected a schema refusal, got {other:?}").into()),
    }

    // Two runs: one succeeds, one fails in its `transform` task.
    let stamp = common::unique("run");
    let runs = [
        (format!("{stamp}-a"), None),
        (format!("{stamp}-b"), Some("transform")),
    ];
    let mut correlations = Vec::new();
    let mut published = 0;
    for (run_id, fail_at) in &runs {
        let events = run_events(run_id, *fail_at)?;
        correlations.push(events[0].envelope.id.clone());
        for event in events {
            // The guide's `publish_event(event, timeout=30)`: a typed error instead of `False`.
            producer
                .publish_timeout(event, Duration::from_secs(30))
                .await?;
            published += 1;
        }
    }
    producer.close().await?;
    println!("published {published} events of 2 runs of {DAG}");

    // Read the runs back (a group of our own, from the beginning; other runs' events ignored)
    // and check each chain: the first event starts it, every other names its predecessor.
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let consumer = EventConsumer::builder(&config, &common::unique("workflow-audit"))
        .topics(["workflow-events"])
        .set("auto.offset.reset", "earliest")
        .on::<WorkflowEvent, _, _>({
            let (seen, correlations) = (seen.clone(), correlations.clone());
            move |event: Event<WorkflowEvent>, ctx: RecordContext| {
                let correlation = event
                    .envelope
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| event.envelope.id.clone());
                if correlations.contains(&correlation) {
                    if let Ok(mut seen) = seen.lock() {
                        seen.entry(correlation)
                            .or_default()
                            .push((ctx.offset, event));
                    }
                }
                async { Ok(()) }
            }
        })
        .build()
        .await?;
    let count = || {
        seen.lock()
            .map_or(0, |s| s.values().map(Vec::len).sum::<usize>())
    };
    common::run_until(
        consumer,
        "the runs' events",
        Duration::from_secs(30),
        |_| count() >= published,
    )
    .await?;

    let seen = seen.lock().map_err(|_| "poisoned")?;
    for correlation in &correlations {
        let mut events = seen.get(correlation).cloned().unwrap_or_default();
        events.sort_by_key(|(offset, _)| *offset);
        let run = events
            .first()
            .map_or("?", |(_, e)| e.data.workflow_run_id.as_str());
        println!("run {run} (correlation id {correlation}):");
        let mut previous: Option<&str> = None;
        for (offset, event) in &events {
            let task = event
                .data
                .payload
                .data
                .get("task")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = format!("{:?}", event.data.event_type);
            println!("  @{offset:<4} {kind:<18} {task:<10} {}", event.envelope.id);
            if event.envelope.causation_id.as_deref() != previous {
                return Err(format!("{} is not caused by {previous:?}", event.envelope.id).into());
            }
            previous = Some(&event.envelope.id);
        }
    }
    println!(
        "both chains intact: every event caused by the one before, one correlation id per run"
    );
    Ok(())
}
