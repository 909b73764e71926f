//! Writes dead letters: the dead-letter topic created when missing (with the source topic's
//! partition count and replication, so the original partition can be kept), then the record
//! sent and its acknowledgement awaited. A failed write is reported to the processing state,
//! which retries it; the source offset is committed only after the acknowledgement.

use std::collections::HashMap;
use std::sync::Arc;

use kafkit::admin::{Admin, NewTopic};
use kafkit::producer::{Producer, ProducerRecord};
use tokio::sync::Mutex;

/// The dead-letter side of an [`EventConsumer`](super::EventConsumer).
pub(crate) struct DeadLetterWriter {
    /// At-least-once: the dead-letter producer. Exactly-once: none (dead letters go through
    /// the transaction's sink; this writer only makes the topics).
    producer: Option<Producer>,
    admin: Admin,
    suffix: String,
    /// Partition counts of dead-letter topics known to exist.
    known: Mutex<HashMap<String, i32>>,
}

impl DeadLetterWriter {
    pub(crate) fn new(producer: Option<Producer>, admin: Admin, suffix: String) -> Arc<Self> {
        Arc::new(DeadLetterWriter {
            producer,
            admin,
            suffix,
            known: Mutex::new(HashMap::new()),
        })
    }

    /// The dead-letter topic of `source`.
    pub(crate) fn topic_of(&self, source: &str) -> String {
        format!("{source}{}", self.suffix)
    }

    /// The dead-letter topic's partition count, creating the topic (as many partitions as
    /// `source`, same replication) when missing.
    pub(crate) async fn ensure(&self, source: &str) -> Result<i32, String> {
        let dlq = self.topic_of(source);
        let mut known = self.known.lock().await;
        if let Some(n) = known.get(&dlq) {
            return Ok(*n);
        }
        let partitions = match self.admin.describe_topics(&[dlq.as_str()]).await {
            Ok(info) => info.first().map_or(0, |t| t.partitions.len() as i32),
            Err(_) => {
                let info = self
                    .admin
                    .describe_topics(&[source])
                    .await
                    .map_err(|e| format!("describe {source}: {e}"))?;
                let (partitions, replication) = info.first().map_or((1, 1), |t| {
                    let rf = t.partitions.first().map_or(1, |p| p.replicas.len().max(1));
                    (t.partitions.len().max(1) as i32, rf as i16)
                });
                self.admin
                    .create_topics_if_missing(&[NewTopic::new(&dlq, partitions, replication)])
                    .await
                    .map_err(|e| format!("create {dlq}: {e}"))?;
                tracing::info!(topic = %dlq, partitions, "dead-letter topic created");
                partitions
            }
        };
        if partitions > 0 {
            known.insert(dlq, partitions);
        }
        Ok(partitions)
    }

    /// Sends `record` and waits for its acknowledgement.
    pub(crate) async fn send(&self, record: ProducerRecord) -> Result<(), String> {
        let Some(producer) = &self.producer else {
            return Err("dead letter not sent: no dead-letter producer".to_owned());
        };
        let delivery = producer
            .send(record)
            .await
            .map_err(|e| format!("dead letter not sent: {e}"))?;
        delivery
            .await
            .map(|_| ())
            .map_err(|e| format!("dead letter not acknowledged: {e}"))
    }

    /// Flushes and closes the producer.
    pub(crate) async fn close(&self, timeout: std::time::Duration) {
        if let Some(producer) = &self.producer {
            let _ = producer.close(timeout).await;
        }
    }
}
