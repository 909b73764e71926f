//! Topics for the consumer and group suites: a fresh topic, and tagged records written to
//! every partition of it, so a reader can check what it saw against what was sent.

use std::collections::BTreeSet;
use std::time::Duration;

use kafkit::admin::{Admin, NewTopic};
use kafkit::config::ProducerConfig;
use kafkit::producer::{Producer, ProducerRecord};

use crate::unique_name;

/// Creates a topic named after `prefix` (see [`unique_name`]) with `partitions` partitions of
/// one replica each, on the cluster at `bootstrap`.
///
/// # Panics
/// When the topic cannot be created: the test cannot go on.
pub async fn topic(bootstrap: &str, prefix: &str, partitions: i32) -> String {
    let name = unique_name(prefix);
    let admin = Admin::connect(bootstrap).await.expect("admin connects");
    admin
        .create_topics(&[NewTopic::new(&name, partitions, 1)])
        .await
        .expect("topic created");
    name
}

/// Writes `count` records to each of the first `partitions` partitions of `topic`, values
/// `"{tag}-{partition}-{i}"`, with the idempotent producer (acks=all); returns the values
/// once every record is acknowledged.
///
/// # Panics
/// When a record is not acknowledged.
pub async fn produce_tagged(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    tag: &str,
    count: usize,
) -> BTreeSet<String> {
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .build()
        .expect("producer config");
    let producer = Producer::new(config).await.expect("producer starts");
    let mut sent = BTreeSet::new();
    let mut deliveries = Vec::new();
    for p in 0..partitions {
        for i in 0..count {
            let value = format!("{tag}-{p}-{i}");
            let record = ProducerRecord::new(topic).partition(p).value(value.clone());
            deliveries.push(producer.send(record).await.expect("record queued"));
            sent.insert(value);
        }
    }
    for d in deliveries {
        d.await.expect("record acknowledged");
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("producer closes");
    sent
}
