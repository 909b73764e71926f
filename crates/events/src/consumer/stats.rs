//! The consumer's counters ([`ConsumerStats`], as the seeds show them) and the `metrics`
//! facade with OpenTelemetry's messaging names.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kafkit::TopicPartition;

/// A snapshot of an [`EventConsumer`](super::EventConsumer)'s counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Records received from the broker.
    pub consumed: u64,
    /// Records a handler handled without error (skipped records not counted).
    pub processed: u64,
    /// Records of a type with no handler and no default handler (acknowledged).
    pub skipped: u64,
    /// Handler attempts that failed (each attempt counts).
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Records written to a dead-letter topic.
    pub dead_lettered: u64,
    /// Bytes received (keys, values, headers).
    pub bytes: u64,
    /// Records held between the fetch and their handler (all partitions), in bytes.
    pub buffered_bytes: u64,
    /// The largest `buffered_bytes` seen.
    pub max_buffered_bytes: u64,
    /// Handlers running now.
    pub in_flight: u64,
    /// Lag per partition (log end − position), as of the last poll.
    pub lag: BTreeMap<TopicPartition, i64>,
    /// Whether `run` is running.
    pub running: bool,
    /// Exactly-once mode: transactions committed (each with its outputs, dead letters and
    /// offsets).
    pub transactions_committed: u64,
    /// Exactly-once mode: transactions aborted (their input is read and handled again).
    pub transactions_aborted: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    pub(crate) consumed: AtomicU64,
    pub(crate) processed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) buffered: AtomicUsize,
    pub(crate) max_buffered: AtomicUsize,
    pub(crate) in_flight: AtomicU64,
    pub(crate) running: AtomicBool,
    pub(crate) transactions_committed: AtomicU64,
    pub(crate) transactions_aborted: AtomicU64,
    pub(crate) lag: Mutex<BTreeMap<TopicPartition, i64>>,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl StatsCell {
    pub(crate) fn snapshot(&self) -> ConsumerStats {
        ConsumerStats {
            consumed: self.consumed.load(Ordering::Relaxed),
            processed: self.processed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            buffered_bytes: self.buffered.load(Ordering::Relaxed) as u64,
            max_buffered_bytes: self.max_buffered.load(Ordering::Relaxed) as u64,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            lag: self.lag.lock().map(|l| l.clone()).unwrap_or_default(),
            running: self.running.load(Ordering::Relaxed),
            transactions_committed: self.transactions_committed.load(Ordering::Relaxed),
            transactions_aborted: self.transactions_aborted.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn consumed(&self, topic: &str, group: &str, bytes: usize, metrics_on: bool) {
        bump(&self.consumed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if metrics_on {
            metrics::counter!("messaging.client.consumed.messages", &labels(topic, group))
                .increment(1);
        }
    }

    pub(crate) fn buffered(&self, bytes: usize) {
        self.buffered.store(bytes, Ordering::Relaxed);
        self.max_buffered.fetch_max(bytes, Ordering::Relaxed);
    }

    /// One handler attempt's end: `outcome` is handled (`true`), skipped (`false`) or the
    /// error class.
    pub(crate) fn processed(
        &self,
        topic: &str,
        group: &str,
        event_type: &str,
        elapsed: Duration,
        outcome: Result<bool, &str>,
        metrics_on: bool,
    ) {
        match outcome {
            Ok(true) => bump(&self.processed),
            Ok(false) => bump(&self.skipped),
            Err(_) => bump(&self.failed),
        }
        if metrics_on {
            let mut labels = labels(topic, group);
            labels.push(("messaging.operation.name", "process".to_owned()));
            labels.push(("cloudevents.event_type", event_type.to_owned()));
            if let Err(class) = outcome {
                labels.push(("error.type", class.to_owned()));
            }
            metrics::histogram!("messaging.process.duration", &labels)
                .record(elapsed.as_secs_f64());
        }
    }

    /// A retry scheduled (the attempt after a failure is dispatched).
    pub(crate) fn retried(&self, topic: &str, group: &str, metrics_on: bool) {
        bump(&self.retried);
        if metrics_on {
            metrics::counter!("messaging.process.retries", &labels(topic, group)).increment(1);
        }
    }

    /// A dead letter acknowledged (exactly-once: its transaction committed).
    pub(crate) fn dead_lettered(&self, topic: &str, group: &str, metrics_on: bool) {
        bump(&self.dead_lettered);
        if metrics_on {
            metrics::counter!("messaging.process.dead_letters", &labels(topic, group)).increment(1);
        }
    }
}

/// The labels every consumer metric carries (OpenTelemetry messaging attributes); the source
/// topic, also for dead letters.
fn labels(topic: &str, group: &str) -> Vec<(&'static str, String)> {
    vec![
        ("messaging.system", "kafka".to_owned()),
        ("messaging.destination.name", topic.to_owned()),
        ("messaging.consumer.group.name", group.to_owned()),
    ]
}
