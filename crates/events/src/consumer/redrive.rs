//! Redrive: dead letters re-published to the topic (and, when kept, the partition) they came
//! from, error headers stripped, original key, value and headers byte for byte.
//!
//! The dead-letter topic is read from the redrive group's committed offsets (or the
//! beginning) up to its end as of the start, and the offsets are committed after every
//! re-published record is acknowledged: running a redrive twice does not re-publish twice.

use std::collections::BTreeMap;
use std::time::Duration;

use kafkit::admin::{Admin, OffsetSpec};
use kafkit::config::ConsumerConfig;
use kafkit::consumer::Consumer;
use kafkit::producer::Producer;
use kafkit::{OffsetAndMetadata, TopicPartition};
use tokio::time::Instant;

use crate::config::EventsConfig;
use crate::consume::dead_letter::redrive_record;
use crate::error::EventsError;
use crate::producer::errors::from_produce;

/// How a redrive runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedriveOptions {
    /// The group whose committed offsets mark what was redriven (default
    /// `<dead-letter topic>.redrive`).
    pub group_id: Option<String>,
    /// Give up (with what was done committed) after this long. Default 60 s.
    pub timeout: Duration,
    /// Redrive at most this many records (default: all up to the end).
    pub max_records: Option<u64>,
}

impl Default for RedriveOptions {
    fn default() -> Self {
        RedriveOptions {
            group_id: None,
            timeout: Duration::from_secs(60),
            max_records: None,
        }
    }
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedriveReport {
    /// Dead letters re-published (acknowledged).
    pub redriven: u64,
    /// Records skipped because they carry no original topic (not a dead letter).
    pub skipped: u64,
    /// Whether the end of the dead-letter topic (as of the start) was reached.
    pub complete: bool,
}

fn consumer_err(context: &str) -> impl FnOnce(kafkit::Error) -> EventsError + '_ {
    move |source| EventsError::Consumer {
        context: context.to_owned(),
        source,
    }
}

/// Re-publishes the dead letters of `dead_letter_topic` to their original topics.
///
/// `config` gives the brokers, security and producer settings; the consumer reads with the
/// redrive group.
pub async fn redrive(
    config: &EventsConfig,
    dead_letter_topic: &str,
    options: RedriveOptions,
) -> Result<RedriveReport, EventsError> {
    let deadline = Instant::now() + options.timeout;
    let group = options
        .group_id
        .clone()
        .unwrap_or_else(|| format!("{dead_letter_topic}.redrive"));
    let consumer: ConsumerConfig = config
        .consumer_builder()
        .clone()
        .group_id(&group)
        .enable_auto_commit(false)
        .set("auto.offset.reset", "earliest")
        .and_then(|b| b.build())
        .map_err(|e| EventsError::configuration("redrive consumer", e.to_string()))?;
    let admin = Admin::from_client_config(consumer.client())
        .await
        .map_err(consumer_err("connecting the admin client"))?;
    let info = admin
        .describe_topics(&[dead_letter_topic])
        .await
        .map_err(consumer_err("describing the dead-letter topic"))?;
    let partitions: Vec<i32> = info
        .first()
        .map(|t| t.partitions.iter().map(|p| p.partition).collect())
        .unwrap_or_default();
    let ends: BTreeMap<i32, i64> = admin
        .list_offsets(dead_letter_topic, &partitions, OffsetSpec::Latest)
        .await
        .map_err(consumer_err("listing the dead-letter topic's end offsets"))?
        .into_iter()
        .map(|o| (o.partition, o.offset))
        .collect();
    let source = Consumer::new(consumer)
        .await
        .map_err(consumer_err("connecting the redrive consumer"))?;
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .map(|p| TopicPartition::new(dead_letter_topic, *p))
        .collect();
    let committed = source
        .committed(&tps)
        .await
        .map_err(|source| EventsError::Consume {
            context: "reading the redrive group's offsets".to_owned(),
            source,
        })?;
    let assign = source.assign(tps.clone());
    let mut positions: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for tp in &tps {
        let start = committed.get(tp).cloned().flatten().map(|o| o.offset);
        if let Some(offset) = start {
            let _ = source.seek(tp, offset);
            positions.insert(tp.clone(), offset);
        } else {
            positions.insert(tp.clone(), 0);
        }
    }
    drop(assign);
    let out = Producer::new(config.producer().clone())
        .await
        .map_err(|source| EventsError::Producer {
            topic: dead_letter_topic.to_owned(),
            source,
        })?;
    let mut report = RedriveReport::default();
    let done = |positions: &BTreeMap<TopicPartition, i64>| {
        positions
            .iter()
            .all(|(tp, pos)| *pos >= ends.get(&tp.partition).copied().unwrap_or(0))
    };
    let limit_hit = |r: &RedriveReport| options.max_records.is_some_and(|m| r.redriven >= m);
    while !done(&positions) && !limit_hit(&report) && Instant::now() < deadline {
        let records = source
            .poll(Duration::from_millis(200))
            .await
            .map_err(|source| EventsError::Consume {
                context: "reading dead letters".to_owned(),
                source,
            })?;
        for record in records {
            let end = ends.get(&record.partition).copied().unwrap_or(0);
            if record.offset >= end || limit_hit(&report) {
                continue;
            }
            let tp = TopicPartition::new(dead_letter_topic, record.partition);
            match redrive_record(&record) {
                Ok(pr) => {
                    let topic = pr.topic.to_string();
                    let produce_err = |e| from_produce(&topic, "dead letter", e);
                    let delivery = out.send(pr).await.map_err(produce_err)?;
                    delivery.await.map_err(produce_err)?;
                    report.redriven += 1;
                }
                Err(e) => {
                    tracing::warn!(offset = record.offset, error = %e, "not a dead letter; skipped");
                    report.skipped += 1;
                }
            }
            positions.insert(tp, record.offset + 1);
        }
    }
    report.complete = done(&positions);
    let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = positions
        .iter()
        .map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o)))
        .collect();
    source
        .commit_offsets_sync(&offsets)
        .await
        .map_err(|source| EventsError::Consume {
            context: "committing the redriven offsets".to_owned(),
            source,
        })?;
    let _ = out.close(Duration::from_secs(5)).await;
    if let Err(e) = source.close(Duration::from_secs(5)).await {
        tracing::warn!(error = %e, "closing the redrive consumer failed");
    }
    Ok(report)
}
