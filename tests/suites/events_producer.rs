//! kafkit-events' publishing side against a real broker and a real schema registry
//! (Apicurio, Confluent-compatible API): typed Avro and JSON events read back with the raw
//! consumer (headers, key, framing, payload), batches, stats, refusals before sending, the
//! registry down, and the topic catalogue created at start-up.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafkit::admin::{Admin, NewTopic, OffsetSpec};
use kafkit::consumer::{Consumer, ConsumerRecord};
use kafkit::TopicPartition;
use kafkit_events::catalog::data::{data_ingestion, DataIngestion, IngestionStatus};
use kafkit_events::catalog::employee::{employee_created, Employee};
use kafkit_events::catalog::inspection::{inspection_created, InspectionEvent};
use kafkit_events::catalog::workflow::{
    workflow_event, EventSource, WorkflowEvent, WorkflowEventType,
};
use kafkit_events::config::{EventsConfig, EventsConfigBuilder};
use kafkit_events::format::{AvroCodec, EventCodec, JsonCodec, SerdeConfig};
use kafkit_events::producer::EventProducer;
use kafkit_events::registry::SchemaRegistry;
use kafkit_events::topics::{catalogue, ensure_topics, EnsureOptions, TopicSpec, TopicsError};
use kafkit_events::{Event, EventsError};
use kafkit_tests::{kafka, registry, unique_name};

const SERVICE: &str = "events-producer-suite";
const VERSION: &str = "9.9.9";

fn config() -> EventsConfigBuilder {
    EventsConfig::builder()
        .bootstrap_servers(&kafka().bootstrap)
        .service_name(SERVICE)
        .service_version(VERSION)
        .schema_registry_url(&registry().url)
        .set("linger.ms", "5")
        .unwrap()
}

async fn producer() -> EventProducer {
    EventProducer::new(&config().build().unwrap())
        .await
        .unwrap()
}

async fn topic(prefix: &str, partitions: i32) -> String {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let name = unique_name(prefix);
    admin
        .create_topics(&[NewTopic::new(&name, partitions, 1)])
        .await
        .unwrap();
    admin.cluster().close();
    name
}

/// Reads every record of `topic` (all partitions) until `expected` are in.
async fn read(topic: &str, partitions: i32, expected: usize) -> Vec<ConsumerRecord> {
    let config = kafkit::config::ConsumerConfig::from_properties([(
        "bootstrap.servers",
        kafka().bootstrap.as_str(),
    )])
    .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    let parts: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(parts.clone()).unwrap();
    for p in &parts {
        consumer.seek(p, 0).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} records came back",
            out.len()
        );
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    consumer.close(Duration::from_secs(5)).await.expect("close");
    out
}

async fn end_offset(topic: &str) -> i64 {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let offsets = admin
        .list_offsets(topic, &[0], OffsetSpec::Latest)
        .await
        .unwrap();
    admin.cluster().close();
    offsets[0].offset
}

fn header<'a>(record: &'a ConsumerRecord, name: &str) -> &'a str {
    record
        .header(name)
        .map(|v| std::str::from_utf8(v).expect("UTF-8 header"))
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test]
async fn avro_events_carry_cloudevents_headers_and_confluent_framing() {
    let topic = topic("events-avro", 1).await;
    let producer = producer().await;
    let event = data_ingestion("prices", 10, 1_000, "s3://b/p", IngestionStatus::Partial)
        .map(|d| d.with_metadata("source", "external_api"))
        .with_correlation_id("corr-1")
        .with_user_context(Some("u-1"), Some("t-1"));
    let id = event.envelope.id.clone();
    let data = event.data.clone();
    let at = producer.publish_to(&topic, event).await.unwrap();
    assert_eq!(
        (at.topic.as_ref(), at.partition, at.offset),
        (topic.as_str(), 0, 0)
    );

    let records = read(&topic, 1, 1).await;
    let record = &records[0];
    assert_eq!(
        record.key.as_deref(),
        Some(&b"prices"[..]),
        "key = entity id"
    );
    assert_eq!(header(record, "ce_specversion"), "1.0");
    assert_eq!(header(record, "ce_id"), id);
    assert_eq!(header(record, "ce_type"), "data.ingestion");
    assert_eq!(
        header(record, "ce_source"),
        SERVICE,
        "source filled from the config"
    );
    assert_eq!(header(record, "ce_sourceversion"), VERSION);
    assert_eq!(header(record, "ce_correlationid"), "corr-1");
    assert_eq!(header(record, "ce_authid"), "u-1");
    assert_eq!(header(record, "ce_tenantid"), "t-1");
    assert_eq!(header(record, "content-type"), "application/avro");
    assert!(header(record, "ce_time").ends_with('Z'));

    // Confluent framing: magic 0, then the id the registry has for `<topic>-value`.
    let value = record.value.as_deref().expect("a value");
    assert_eq!(value[0], 0, "magic byte");
    let id_in_frame = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    let registry = SchemaRegistry::new(kafkit_events::registry::RegistryConfig::new([registry()
        .url
        .clone()]))
    .unwrap();
    let latest = registry.latest(&format!("{topic}-value")).await.unwrap();
    assert_eq!(id_in_frame, latest.id);

    let codec = AvroCodec::new(registry, SerdeConfig::default()).unwrap();
    let back: Event<DataIngestion> = codec.decode(record).await.unwrap();
    assert_eq!(back.data, data);
    assert_eq!(back.envelope.id, id);
    producer.close().await.unwrap();
}

#[tokio::test]
async fn json_events_round_trip_and_several_types_share_a_topic() {
    let topic = topic("events-json", 1).await;
    let producer = producer().await;
    let data = serde_json::json!({"status": "success", "count": 100});
    let workflow = workflow_event(
        WorkflowEventType::WorkflowCompleted,
        EventSource::Airflow,
        "dag-1",
        "run-1",
        data.as_object().cloned().unwrap_or_default(),
        "dev",
    )
    .unwrap();
    let expected = workflow.data.clone();
    producer.publish_to(&topic, workflow).await.unwrap();
    // An Avro type on the same topic (several types per topic, as the inspection seed does).
    let inspection = inspection_created("I-1", "B-1", "C-1", "visual", [("station", "A1")]);
    let inspection_data = inspection.data.clone();
    producer.publish_to(&topic, inspection).await.unwrap();

    let records = read(&topic, 1, 2).await;
    assert_eq!(header(&records[0], "content-type"), "application/json");
    assert_eq!(header(&records[0], "ce_type"), "workflow.event");
    assert_eq!(records[0].key.as_deref(), Some(&b"dag-1"[..]));
    let json: serde_json::Value =
        serde_json::from_slice(records[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(json["payload"]["data"]["count"], 100);
    let back: Event<WorkflowEvent> = JsonCodec::new(SerdeConfig::default())
        .decode(&records[0])
        .await
        .unwrap();
    assert_eq!(back.data, expected);

    assert_eq!(header(&records[1], "ce_type"), "chip_quality.inspection");
    let registry = SchemaRegistry::new(kafkit_events::registry::RegistryConfig::new([registry()
        .url
        .clone()]))
    .unwrap();
    let back: Event<InspectionEvent> = AvroCodec::new(registry, SerdeConfig::default())
        .unwrap()
        .decode(&records[1])
        .await
        .unwrap();
    assert_eq!(back.data, inspection_data);
    producer.close().await.unwrap();
}

#[tokio::test]
async fn publish_batch_gives_one_outcome_per_event_in_per_key_order() {
    const PARTITIONS: i32 = 6;
    let topic = topic("events-batch", PARTITIONS).await;
    let producer = producer().await;
    let events: Vec<_> = (0..60)
        .map(|i| {
            data_ingestion(
                format!("dataset-{i}"),
                i,
                i * 10,
                "s3://b/p",
                IngestionStatus::Success,
            )
        })
        .collect();
    let ids: Vec<String> = events.iter().map(|e| e.envelope.id.clone()).collect();
    // Keyed by a function (five keys), not by the payload's own key.
    let outcomes = producer
        .publish_batch_to(&topic, events, |e| {
            Some(format!("key-{}", e.data.record_count % 5))
        })
        .await;
    assert_eq!(outcomes.len(), 60);
    let mut per_key: HashMap<String, Vec<(i32, i64)>> = HashMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let at = outcome.as_ref().expect("delivered");
        per_key
            .entry(format!("key-{}", i % 5))
            .or_default()
            .push((at.partition, at.offset));
    }
    for (key, places) in &per_key {
        assert!(
            places.iter().all(|(p, _)| *p == places[0].0),
            "{key}: one partition"
        );
        assert!(
            places.windows(2).all(|w| w[0].1 < w[1].1),
            "{key}: offsets in the order given: {places:?}"
        );
    }
    // Read back: per partition, the ids come in the order they were given.
    let records = read(&topic, PARTITIONS, 60).await;
    let mut by_key: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    for r in &records {
        by_key
            .entry(r.key.as_deref().unwrap().to_vec())
            .or_default()
            .push(header(r, "ce_id").to_owned());
    }
    for k in 0..5 {
        let expected: Vec<String> = (0..60)
            .filter(|i| i % 5 == k)
            .map(|i| ids[i].clone())
            .collect();
        assert_eq!(by_key[format!("key-{k}").as_bytes()], expected);
    }
    let stats = producer.stats();
    assert_eq!(stats.messages_sent, 60);
    assert_eq!(stats.by_topic[&topic].sent, 60);
    producer.close().await.unwrap();
}

#[tokio::test]
async fn stats_count_sent_failed_and_bytes_per_type_and_topic() {
    let topic = topic("events-stats", 1).await;
    let producer = producer().await;
    assert!(producer.is_started());
    for i in 0..3 {
        let e = data_ingestion(format!("d{i}"), 1, 1, "s3://x", IngestionStatus::Success);
        producer.publish_to(&topic, e).await.unwrap();
    }
    let employee = Employee {
        employee_id: "e-1".into(),
        email: "a@b.c".into(),
        first_name: "A".into(),
        last_name: "B".into(),
        department: None,
    };
    producer
        .publish_to(&topic, employee_created(employee.clone(), "hr", "1"))
        .await
        .unwrap();
    let bad = Employee {
        email: "no-at-sign".into(),
        ..employee
    };
    assert!(producer
        .publish_to(&topic, employee_created(bad, "hr", "1"))
        .await
        .is_err());
    let stats = producer.stats();
    assert_eq!((stats.messages_sent, stats.messages_failed), (4, 1));
    assert!(stats.total_bytes_sent > 4 * 20, "{stats:?}");
    assert_eq!(stats.by_event_type["data.ingestion"].sent, 3);
    assert_eq!(stats.by_event_type["employee.created"].sent, 1);
    assert_eq!(stats.by_event_type["employee.created"].failed, 1);
    assert_eq!(stats.by_topic[&topic].sent, 4);
    assert_eq!(stats.by_topic[&topic].failed, 1);
    let bytes: u64 = stats.by_event_type.values().map(|c| c.bytes).sum();
    assert_eq!(bytes, stats.total_bytes_sent);
    producer.close().await.unwrap();
    assert!(!producer.is_started());
    assert!(!producer.stats().is_started);
}

#[tokio::test]
async fn a_json_event_failing_its_schema_is_refused_before_it_is_sent() {
    let topic = topic("events-invalid", 1).await;
    let producer = producer().await;
    let bad = employee_created(
        Employee {
            employee_id: "e-1".into(),
            email: "not an address".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            department: None,
        },
        "hr",
        "1",
    );
    let err = producer.publish_to(&topic, bad).await.unwrap_err();
    match &err {
        EventsError::SchemaValidation { issues, .. } => {
            assert!(issues.iter().any(|i| i.instance_path == "/email"), "{err}");
        }
        other => panic!("expected a schema validation error, got {other:?}"),
    }
    assert!(!err.is_retriable());
    producer.flush(Duration::from_secs(10)).await.unwrap();
    assert_eq!(end_offset(&topic).await, 0, "nothing on the topic");
    producer.close().await.unwrap();
}

#[tokio::test]
async fn registry_down_is_a_typed_error_within_the_deadline() {
    let topic = topic("events-noregistry", 1).await;
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = EventsConfig::builder()
        .bootstrap_servers(&kafka().bootstrap)
        .service_name(SERVICE)
        .set("schema.registry.url", &format!("http://127.0.0.1:{port}"))
        .unwrap()
        .set("schema.registry.deadline.ms", "3000")
        .unwrap()
        .set("retries.wait.ms", "100")
        .unwrap()
        .build()
        .unwrap();
    let producer = EventProducer::new(&config).await.unwrap();
    let started = Instant::now();
    let event = data_ingestion("d", 1, 1, "s3://x", IngestionStatus::Success);
    let err = producer.publish_to(&topic, event).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, EventsError::Registry { .. }),
        "expected a registry error, got {err:?}"
    );
    assert!(
        err.is_retriable(),
        "an unreachable registry may come back: {err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(producer.stats().messages_failed, 1);
    assert_eq!(end_offset(&topic).await, 0, "nothing on the topic");
    producer.close().await.unwrap();
}

#[tokio::test]
async fn ensure_topics_creates_the_catalogue_and_checks_existing_topics() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let specs = catalogue();
    let first = ensure_topics(&admin, &specs, &EnsureOptions::default())
        .await
        .unwrap();
    // Another run (or test process) may have created them already: together, all of them.
    assert_eq!(first.created.len() + first.existing.len(), specs.len());
    let brokers = admin.describe_cluster().await.unwrap().len();
    if brokers < 3 {
        assert_eq!(
            first.clamped.len(),
            specs.len(),
            "replication clamped to {brokers}"
        );
    }
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let infos = admin.describe_topics(&names).await.unwrap();
    for (spec, info) in specs.iter().zip(&infos) {
        assert!(
            info.partitions.len() >= spec.partitions as usize,
            "{}",
            spec.name
        );
    }
    let configs = admin.describe_topic_configs(&names).await.unwrap();
    for (spec, configs) in specs.iter().zip(&configs) {
        for (key, value) in spec.configs(brokers) {
            assert_eq!(
                configs.get(&key),
                Some(value.as_str()),
                "{} {key}",
                spec.name
            );
        }
    }
    let again = ensure_topics(&admin, &specs, &EnsureOptions::default())
        .await
        .unwrap();
    assert!(again.created.is_empty());
    assert!(again.mismatches.is_empty(), "{:?}", again.mismatches);

    // An existing topic that differs: reported, refused when strict, fixed when asked.
    let name = unique_name("events-drift");
    admin
        .create_topics(&[NewTopic::new(&name, 2, 1).config("retention.ms", "3600000")])
        .await
        .unwrap();
    let spec = vec![TopicSpec::new(&name, 4)];
    let report = ensure_topics(&admin, &spec, &EnsureOptions::default())
        .await
        .unwrap();
    let settings: Vec<&str> = report
        .mismatches
        .iter()
        .map(|m| m.setting.as_str())
        .collect();
    assert!(settings.contains(&"partitions"), "{settings:?}");
    assert!(settings.contains(&"retention.ms"), "{settings:?}");
    let strict = EnsureOptions {
        strict: true,
        ..Default::default()
    };
    assert!(matches!(
        ensure_topics(&admin, &spec, &strict).await,
        Err(TopicsError::Mismatch(_))
    ));
    let fix = EnsureOptions {
        alter_configs: true,
        ..Default::default()
    };
    let report = ensure_topics(&admin, &spec, &fix).await.unwrap();
    let settings: Vec<&str> = report
        .mismatches
        .iter()
        .map(|m| m.setting.as_str())
        .collect();
    assert_eq!(settings, ["partitions"], "partitions are never changed");
    // The controller has committed the change when the alter returns; the broker that answers
    // DescribeConfigs applies it from the metadata log a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let configs = admin.describe_topic_configs(&[&name]).await.unwrap();
        let retention = configs[0].get("retention.ms").map(str::to_owned);
        if retention.as_deref() == Some("604800000") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention.ms still {retention:?} 30 s after the alter"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.cluster().close();
}
