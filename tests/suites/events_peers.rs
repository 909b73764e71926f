//! kafkit-events against another implementation of the Confluent serdes: Python's
//! confluent-kafka (`AvroSerializer`, `JSONSerializer`, `AvroDeserializer`, from PyPI through
//! `scripts/python-peers.sh`), on the real broker and the same real registry (Apicurio).
//! Python's bytes decode in kafkit (into an evolved reader struct for Avro), and kafkit's Avro
//! bytes decode in Python.

use std::process::Command;
use std::time::Duration;

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::{Consumer, ConsumerRecord};
use kafkit::producer::Producer;
use kafkit::TopicPartition;
use kafkit_events::envelope::Event;
use kafkit_events::format::{AvroCodec, EventCodec, JsonCodec, SerdeConfig};
use kafkit_events::registry::{RegistryConfig, SchemaRegistry};
use kafkit_events::typed::{AvroSchemaSource, EventPayload};
use kafkit_tests::{kafka, registry, repo_root, unique_name};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(60);

/// Python writes `kafkit.peers.PeerPayment {id, amount, note}`; kafkit reads it with this
/// evolved schema (one more field, with a default), so the writer's schema is resolved to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PeerPayment {
    id: String,
    amount: i64,
    note: String,
    currency: String,
}

const READER_AVSC: &str = r#"{"type":"record","name":"PeerPayment","namespace":"kafkit.peers",
  "fields":[{"name":"id","type":"string"},{"name":"amount","type":"long"},
  {"name":"note","type":"string"},{"name":"currency","type":"string","default":"EUR"}]}"#;

impl EventPayload for PeerPayment {
    const EVENT_TYPE: &'static str = "kafkit.peers.payment";
    fn key(&self) -> Option<String> {
        Some(self.id.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(READER_AVSC))
    }
}

/// The JSON peer's payload (no `currency`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PeerJson {
    id: String,
    amount: i64,
    note: String,
}

impl EventPayload for PeerJson {
    const EVENT_TYPE: &'static str = "kafkit.peers.payment.json";
}

/// Runs one peer command, bounded: the peer's own waits have deadlines (60 s), and coreutils'
/// `timeout` kills it if something it calls never answers (the venv's first install is ~30 s).
fn python(args: &[&str]) -> String {
    let script = repo_root().join("scripts/python-peers.sh");
    let output = Command::new("timeout")
        .args(["--kill-after=10", "300", "bash"])
        .arg(&script)
        .arg("run")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "python peer {args:?} failed: {}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn registry_client() -> SchemaRegistry {
    SchemaRegistry::new(RegistryConfig::new([registry().url.clone()])).unwrap()
}

async fn topic(prefix: &str) -> String {
    let name = unique_name(prefix);
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    admin
        .create_topics(&[NewTopic::new(&name, 1, 1)])
        .await
        .unwrap();
    admin.cluster().close();
    name
}

async fn read(topic: &str, n: usize) -> Vec<ConsumerRecord> {
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", kafka().bootstrap.as_str()),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    consumer
        .assign([TopicPartition::new(topic.to_owned(), 0)])
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        while got.len() < n {
            got.push(consumer.recv().await.unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("read {} of {n} records", got.len()));
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn python_avro_decodes_in_kafkit_into_an_evolved_struct() {
    let topic = topic("peer-py-avro").await;
    let (bootstrap, url) = (kafka().bootstrap.clone(), registry().url.clone());
    let t = topic.clone();
    tokio::task::spawn_blocking(move || python(&["produce-avro", &bootstrap, &url, &t, "5"]))
        .await
        .unwrap();
    let codec = AvroCodec::new(registry_client(), SerdeConfig::default()).unwrap();
    let records = read(&topic, 5).await;
    for (i, record) in records.iter().enumerate() {
        let value = record.value.as_ref().unwrap();
        assert_eq!(value[0], 0, "Confluent magic byte");
        let event: Event<PeerPayment> = codec.decode(record).await.unwrap();
        assert_eq!(
            event.data,
            PeerPayment {
                id: format!("peer-{i}"),
                amount: i as i64 * 10,
                note: "from python".into(),
                currency: "EUR".into(),
            }
        );
        assert_eq!(event.key().as_deref(), Some(format!("peer-{i}").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_json_decodes_in_kafkit() {
    let topic = topic("peer-py-json").await;
    let (bootstrap, url) = (kafka().bootstrap.clone(), registry().url.clone());
    let t = topic.clone();
    tokio::task::spawn_blocking(move || python(&["produce-json", &bootstrap, &url, &t, "3"]))
        .await
        .unwrap();
    // The JSON serializer registered its schema under the topic's value subject.
    let latest = registry_client()
        .latest(&format!("{topic}-value"))
        .await
        .unwrap();
    let codec = JsonCodec::new(SerdeConfig::default());
    for (i, record) in read(&topic, 3).await.iter().enumerate() {
        let value = record.value.as_ref().unwrap();
        assert_eq!(value[0], 0, "Confluent magic byte");
        assert_eq!(
            u32::from_be_bytes([value[1], value[2], value[3], value[4]]),
            latest.id
        );
        let event: Event<PeerJson> = codec.decode(record).await.unwrap();
        assert_eq!(
            event.data,
            PeerJson {
                id: format!("peer-{i}"),
                amount: i as i64 * 10,
                note: "from python".into(),
            }
        );
    }
}

/// What kafkit writes for Python (the schema Python's deserializer fetches by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct KafkitPayment {
    id: String,
    amount: i64,
    note: String,
}

impl EventPayload for KafkitPayment {
    const EVENT_TYPE: &'static str = "kafkit.peers.payment";
    fn key(&self) -> Option<String> {
        Some(self.id.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(
            r#"{"type":"record","name":"PeerPayment","namespace":"kafkit.peers","fields":[
            {"name":"id","type":"string"},{"name":"amount","type":"long"},{"name":"note","type":"string"}]}"#,
        ))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kafkit_avro_decodes_in_python() {
    let topic = topic("peer-kafkit-avro").await;
    let codec = AvroCodec::new(registry_client(), SerdeConfig::default()).unwrap();
    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([kafka().bootstrap.clone()])
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let mut acks = Vec::new();
    for i in 0..4i64 {
        let event = Event::new(KafkitPayment {
            id: format!("k-{i}"),
            amount: i * 7,
            note: "from kafkit".into(),
        })
        .with_source("kafkit-tests", None);
        let encoded = codec.encode(&topic, &event).await.unwrap();
        acks.push(
            producer
                .send(encoded.into_record(topic.as_str()))
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();

    let (bootstrap, url) = (kafka().bootstrap.clone(), registry().url.clone());
    let t = topic.clone();
    let out =
        tokio::task::spawn_blocking(move || python(&["consume-avro", &bootstrap, &url, &t, "4"]))
            .await
            .unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{out}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["key"], format!("k-{i}"));
        assert_eq!(
            line["value"],
            serde_json::json!({"id": format!("k-{i}"), "amount": i as i64 * 7, "note": "from kafkit"})
        );
    }
}
