//! CQRS: a read model rebuilt by replaying the event log from a point in time. The write side
//! publishes employee events (`employee.created` / `.updated` / `.deleted`, JSON, topic
//! `employees.events`); the read side — the projection "headcount per department" — keeps no
//! state of its own: it is rebuilt from the topic whenever needed, by asking the broker which
//! offset each partition had at a timestamp (ListOffsets, Java's `offsetsForTimes`),
//! seeking there (`Consumer::seek_to_timestamp`) and folding every event up to the end of
//! the log as it was when the replay started.
//!
//! Here the replay starts at the time this run began, so employees of earlier runs (and the
//! `employee_bus` example's) stay out of the projection; a service would replay from its
//! last snapshot's time, or from the beginning.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 cargo run -p kafkit-events --example cqrs_replay
//! ```
//! (JSON only: no schema registry needed.)

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::BoxError;
use kafkit::admin::OffsetSpec;
use kafkit::consumer::{Consumer, ConsumerRecord};
use kafkit::TopicPartition;
use kafkit_events::catalog::employee::{
    employee_created, employee_deleted, employee_updated, Employee, EmployeeCreated,
    EmployeeDeleted, EmployeeUpdated,
};
use kafkit_events::format::{EventCodec, JsonCodec};
use kafkit_events::producer::EventProducer;
use kafkit_events::EventPayload;

const TOPIC: &str = "employees.events";

/// The read model: employees per department, and where each employee is.
#[derive(Default)]
struct Headcount {
    by_department: BTreeMap<String, i64>,
    department_of: HashMap<String, String>,
}

impl Headcount {
    fn hire(&mut self, e: &Employee) {
        let department = e.department.clone().unwrap_or_else(|| "(none)".into());
        *self.by_department.entry(department.clone()).or_default() += 1;
        self.department_of.insert(e.employee_id.clone(), department);
    }

    fn leave(&mut self, employee_id: &str) {
        if let Some(department) = self.department_of.remove(employee_id) {
            if let Some(n) = self.by_department.get_mut(&department) {
                *n -= 1;
            }
        }
    }

    fn update(&mut self, e: &Employee) {
        self.leave(&e.employee_id);
        self.hire(e);
    }
}

fn employee(id: &str, name: &str, department: &str) -> Employee {
    Employee {
        employee_id: id.to_owned(),
        email: format!("{id}@example.com"),
        first_name: name.to_owned(),
        last_name: "Example".to_owned(),
        department: Some(department.to_owned()),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    common::bounded("cqrs_replay", Duration::from_secs(60), run()).await
}

async fn run() -> Result<(), BoxError> {
    let config = common::config("hr-service")?;
    let admin = common::ensure(&config, &[TOPIC]).await?;

    // The point in time the projection is rebuilt from (ms since the epoch; record
    // timestamps are the producer's create time).
    let from_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;

    // 1. The write side: hires, a transfer, a departure.
    let producer = EventProducer::new(&config).await?;
    let tag = std::process::id();
    let id = |n: u32| format!("emp_{tag}_{n}");
    for (n, name, department) in [
        (1, "Ada", "Engineering"),
        (2, "Grace", "Engineering"),
        (3, "Katherine", "Sales"),
        (4, "Dorothy", "Sales"),
        (5, "Mary", "Finance"),
    ] {
        producer
            .publish(employee_created(
                employee(&id(n), name, department),
                "hr-service",
                "1.0.0",
            ))
            .await?;
    }
    producer
        .publish(employee_updated(
            employee(&id(2), "Grace", "Sales"),
            "hr-service",
            "1.0.0",
        ))
        .await?;
    producer
        .publish(employee_deleted(
            employee(&id(4), "Dorothy", "Sales"),
            "hr-service",
            "1.0.0",
        ))
        .await?;
    producer.close().await?;
    println!("published 7 employee events to {TOPIC} (5 hires, 1 transfer, 1 departure)");

    // 2. Where the replay starts and ends, per partition: the first offset at or after
    //    `from_ms` (-1: none yet) and the log end now.
    let partitions: Vec<i32> = admin
        .describe_topics(&[TOPIC])
        .await?
        .first()
        .map(|t| t.partitions.iter().map(|p| p.partition).collect())
        .unwrap_or_default();
    let starts = admin
        .list_offsets(TOPIC, &partitions, OffsetSpec::Timestamp(from_ms))
        .await?;
    let ends = admin
        .list_offsets(TOPIC, &partitions, OffsetSpec::Latest)
        .await?;
    admin.close(Duration::from_secs(5)).await;
    let end_of: HashMap<i32, i64> = ends.iter().map(|o| (o.partition, o.offset)).collect();
    let range: Vec<String> = starts
        .iter()
        .filter(|o| o.offset >= 0)
        .map(|o| format!("{}: {}..{}", o.partition, o.offset, end_of[&o.partition]))
        .collect();
    println!("replay from {from_ms} ms: partitions {}", range.join(", "));

    // 3. The replay: a plain consumer (no group: nothing to commit), every partition sought
    //    to the timestamp, read up to the ends noted above.
    let consumer = Consumer::new(config.consumer()?).await?;
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .map(|p| TopicPartition::new(TOPIC, *p))
        .collect();
    consumer.assign(tps.clone())?;
    let seek: Vec<(TopicPartition, i64)> = tps.iter().map(|tp| (tp.clone(), from_ms)).collect();
    consumer.seek_to_timestamp(&seek).await?;
    let codec = JsonCodec::new(config.serde().clone());
    let mut projection = Headcount::default();
    let mut applied = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tps.iter().any(|tp| {
        consumer.current_position(tp).unwrap_or(0) < end_of.get(&tp.partition).copied().unwrap_or(0)
    }) {
        if Instant::now() > deadline {
            return Err("the replay did not reach the log ends in 30 s".into());
        }
        for record in consumer.poll(Duration::from_millis(200)).await? {
            if record.offset >= end_of.get(&record.partition).copied().unwrap_or(0) {
                continue; // written after the replay started: the next rebuild's business
            }
            applied += apply(&codec, &record, &mut projection).await?;
        }
    }
    consumer.close(Duration::from_secs(5)).await?;

    println!("headcount per department, rebuilt from {applied} events:");
    for (department, n) in &projection.by_department {
        println!("  {department:<12} {n}");
    }
    let expected = [("Engineering", 1), ("Finance", 1), ("Sales", 2)];
    let got: Vec<(&str, i64)> = projection
        .by_department
        .iter()
        .map(|(d, n)| (d.as_str(), *n))
        .collect();
    if got != expected {
        return Err(format!("projection {got:?}, expected {expected:?}").into());
    }
    Ok(())
}

/// Folds one record into the projection, by its `ce_type`; returns 1 if it was an employee
/// event of the projection's, 0 for anything else on the topic.
async fn apply(
    codec: &JsonCodec,
    record: &ConsumerRecord,
    projection: &mut Headcount,
) -> Result<u32, BoxError> {
    let event_type = record
        .headers
        .iter()
        .find(|h| h.key.as_ref() == b"ce_type")
        .and_then(|h| h.value.as_deref())
        .unwrap_or_default();
    match event_type {
        t if t == EmployeeCreated::EVENT_TYPE.as_bytes() => {
            projection.hire(&codec.decode::<EmployeeCreated>(record).await?.data.0)
        }
        t if t == EmployeeUpdated::EVENT_TYPE.as_bytes() => {
            projection.update(&codec.decode::<EmployeeUpdated>(record).await?.data.0)
        }
        t if t == EmployeeDeleted::EVENT_TYPE.as_bytes() => projection.leave(
            &codec
                .decode::<EmployeeDeleted>(record)
                .await?
                .data
                .0
                .employee_id,
        ),
        _ => return Ok(0),
    }
    Ok(1)
}
