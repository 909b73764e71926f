//! The employee events bus of the seeds, consuming side: typed handlers per event type in a
//! consumer group, a handler that keeps failing (retried with backoff, then dead-lettered to
//! `employees.events.dlq`), commits after handling, stats printed, graceful stop.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 cargo run -p kafkit-events --example employee_bus
//! ```
//! Configuration comes from the environment (`EventsConfig::from_env`). Employee events are
//! JSON (no schema registry needed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic};
use kafkit_events::catalog::employee::{
    employee_created, employee_deleted, Employee, EmployeeCreated, EmployeeDeleted,
};
use kafkit_events::config::EventsConfig;
use kafkit_events::consumer::{EventConsumer, HandlerError, RecordContext};
use kafkit_events::producer::EventProducer;
use kafkit_events::Event;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TOPIC: &str = "employees.events";

fn employee(id: &str) -> Employee {
    Employee {
        employee_id: id.to_owned(),
        email: format!("{id}@example.com"),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        department: Some("Engineering".into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let config = EventsConfig::from_env()?;
    let bootstrap: Vec<String> = config
        .producer()
        .client()
        .bootstrap_servers()
        .iter()
        .map(|b| b.to_string())
        .collect();
    let bootstrap = bootstrap.join(",");
    Admin::connect(&bootstrap)
        .await?
        .create_topics_if_missing(&[NewTopic::new(TOPIC, 3, 1)])
        .await?;

    // Publish: three hires, and the departure of one employee our handler cannot process.
    let producer = EventProducer::new(&config).await?;
    for id in ["emp_1", "emp_2", "emp_3"] {
        producer
            .publish(employee_created(employee(id), "hr-service", "1.0.0"))
            .await?;
    }
    producer
        .publish(employee_deleted(
            employee("emp_locked"),
            "hr-service",
            "1.0.0",
        ))
        .await?;
    producer.close().await?;

    let handled = Arc::new(AtomicU64::new(0));
    let (h1, h2) = (handled.clone(), handled.clone());
    let group = format!("hr-projections-{}", std::process::id());
    let consumer = EventConsumer::builder(&config, &group)
        .topics([TOPIC])
        .set("auto.offset.reset", "earliest")
        .configure(|s| {
            s.initial_backoff = Duration::from_millis(200);
            s.max_backoff = Duration::from_secs(2);
        })
        .on::<EmployeeCreated, _, _>(move |event: Event<EmployeeCreated>, ctx: RecordContext| {
            let handled = h1.clone();
            async move {
                println!(
                    "welcome {} ({}-{}@{}, event {})",
                    event.data.0.email, ctx.topic, ctx.partition, ctx.offset, event.envelope.id
                );
                handled.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .on::<EmployeeDeleted, _, _>(move |event: Event<EmployeeDeleted>, ctx: RecordContext| {
            let handled = h2.clone();
            async move {
                handled.fetch_add(1, Ordering::Relaxed);
                // A transient-looking failure that never clears: retried, then dead-lettered.
                Err(HandlerError::retriable_msg(format!(
                    "payroll system refuses {} (attempt {})",
                    event.data.0.employee_id, ctx.attempt
                )))
            }
        })
        .build()
        .await?;
    let consumer = Arc::new(consumer);
    let runner = consumer.clone();
    let run = tokio::spawn(async move { runner.run().await });

    let deadline = Instant::now() + Duration::from_secs(60);
    while consumer.stats().processed < 3 || consumer.stats().dead_lettered < 1 {
        if Instant::now() > deadline {
            eprintln!("gave up waiting (are the events on {TOPIC}?)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consumer.shutdown_handle().shutdown();
    run.await??;
    let stats = consumer.stats();
    println!(
        "consumed {}, processed {}, failed attempts {}, retried {}, dead-lettered {} (to {TOPIC}.dlq), {} bytes",
        stats.consumed, stats.processed, stats.failed, stats.retried, stats.dead_lettered, stats.bytes
    );
    println!("handler calls: {}", handled.load(Ordering::Relaxed));
    Ok(())
}
