//! Publishing counters: totals, per event type and per topic (the seeds' `get_stats()` /
//! `get_metrics()`), and the same through the `metrics` facade with OpenTelemetry names.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kafkit::producer::Topic;

/// Counts for one event type or topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events acknowledged by the broker.
    pub sent: u64,
    /// Events that failed (encoding, validation, delivery).
    pub failed: u64,
    /// Bytes of the acknowledged events (key, value and headers).
    pub bytes: u64,
}

/// A snapshot of an [`EventProducer`](super::EventProducer)'s counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Events acknowledged by the broker (`messages_sent`, `delivered`).
    pub messages_sent: u64,
    /// Events that failed (`messages_failed`, `errors`).
    pub messages_failed: u64,
    /// Bytes acknowledged (`total_bytes_sent`).
    pub total_bytes_sent: u64,
    /// Whether the producer is started and not closed.
    pub is_started: bool,
    /// Counts by event type (`ce_type`).
    pub by_event_type: BTreeMap<String, Counts>,
    /// Counts by topic.
    pub by_topic: BTreeMap<String, Counts>,
}

impl ProducerStats {
    /// `delivered` in the platform producer library's naming.
    pub fn delivered(&self) -> u64 {
        self.messages_sent
    }

    /// `errors` in the platform producer library's naming.
    pub fn errors(&self) -> u64 {
        self.messages_failed
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    sent: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    started: AtomicBool,
    /// One lock per event for all three tables.
    tables: Mutex<Tables>,
    metrics: bool,
}

/// One row per (event type, topic), aggregated per type and per topic when read: one lookup
/// per event, and none (no hashing) when it has the previous event's type and topic.
#[derive(Debug, Default)]
struct Tables {
    rows: Vec<Row>,
    index: HashMap<(&'static str, Topic), usize>,
    /// The row of the last event recorded.
    last: usize,
}

#[derive(Debug)]
struct Row {
    event_type: &'static str,
    topic: Topic,
    counts: Counts,
    /// The `metrics` handles, registered on the first success (when metrics are on).
    sent_handles: Option<SentHandles>,
}

#[derive(Clone)]
pub(crate) struct SentHandles {
    duration: metrics::Histogram,
    sent: metrics::Counter,
}

impl std::fmt::Debug for SentHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentHandles")
    }
}

impl StatsRecorder {
    pub(crate) fn new(metrics: bool) -> Self {
        StatsRecorder {
            metrics,
            started: AtomicBool::new(true),
            ..Default::default()
        }
    }

    pub(crate) fn set_started(&self, started: bool) {
        self.started.store(started, Ordering::Release);
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// One event's outcome: `Ok(bytes)` acknowledged, `Err(error_type)` failed.
    pub(crate) fn record(
        &self,
        event_type: &'static str,
        topic: &Topic,
        outcome: Result<usize, &'static str>,
        elapsed: Duration,
    ) {
        let apply = |c: &mut Counts| match outcome {
            Ok(bytes) => {
                c.sent += 1;
                c.bytes += bytes as u64;
            }
            Err(_) => c.failed += 1,
        };
        match outcome {
            Ok(bytes) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Each update is a few counter bumps: a poisoned lock still guards consistent tables.
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let row = tables.row(event_type, topic);
        apply(&mut row.counts);
        if self.metrics {
            match outcome {
                Ok(_) => {
                    let handles = row
                        .sent_handles
                        .get_or_insert_with(|| SentHandles::new(event_type, topic))
                        .clone();
                    drop(tables);
                    handles.duration.record(elapsed.as_secs_f64());
                    handles.sent.increment(1);
                }
                Err(error) => {
                    drop(tables);
                    emit(event_type, topic, Some(error), elapsed);
                }
            }
        }
    }

    /// The `metrics` handles of delivered events of (`event_type`, `topic`), when metrics
    /// are on: for [`add_sent`](Self::add_sent) and a duration per event, with one lock for
    /// a whole batch.
    pub(crate) fn sent_handles(
        &self,
        event_type: &'static str,
        topic: &Topic,
    ) -> Option<SentHandles> {
        if !self.metrics {
            return None;
        }
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let row = tables.row(event_type, topic);
        Some(
            row.sent_handles
                .get_or_insert_with(|| SentHandles::new(event_type, topic))
                .clone(),
        )
    }

    /// Counts `sent` (its `sent` and `bytes`) delivered events of (`event_type`, `topic`) at
    /// once; their durations went to `handles` one by one.
    pub(crate) fn add_sent(
        &self,
        event_type: &'static str,
        topic: &Topic,
        sent: Counts,
        handles: Option<&SentHandles>,
    ) {
        if sent.sent == 0 {
            return;
        }
        self.sent.fetch_add(sent.sent, Ordering::Relaxed);
        self.bytes.fetch_add(sent.bytes, Ordering::Relaxed);
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.row(event_type, topic).counts.add(sent);
        drop(tables);
        if let Some(handles) = handles {
            handles.sent.increment(sent.sent);
        }
    }

    pub(crate) fn snapshot(&self) -> ProducerStats {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_event_type: BTreeMap<String, Counts> = BTreeMap::new();
        let mut by_topic: BTreeMap<String, Counts> = BTreeMap::new();
        for row in &tables.rows {
            by_event_type
                .entry(row.event_type.to_owned())
                .or_default()
                .add(row.counts);
            by_topic
                .entry(row.topic.as_str().to_owned())
                .or_default()
                .add(row.counts);
        }
        drop(tables);
        ProducerStats {
            messages_sent: self.sent.load(Ordering::Relaxed),
            messages_failed: self.failed.load(Ordering::Relaxed),
            total_bytes_sent: self.bytes.load(Ordering::Relaxed),
            is_started: self.is_started(),
            by_event_type,
            by_topic,
        }
    }
}

/// OpenTelemetry messaging metrics (semantic conventions, Development status):
/// `messaging.client.sent.messages` (counter) and `messaging.client.operation.duration`
/// (histogram, seconds), with `messaging.system`, `messaging.operation.name`,
/// `messaging.destination.name`, `cloudevents.event_type` and, on failure, `error.type`.
impl Tables {
    /// The row of (`event_type`, `topic`), made on first use.
    fn row(&mut self, event_type: &'static str, topic: &Topic) -> &mut Row {
        let same = |r: &Row| r.event_type == event_type && r.topic.as_str() == topic.as_str();
        if !self.rows.get(self.last).is_some_and(same) {
            self.last = match self.index.get(&(event_type, topic.clone())) {
                Some(&i) => i,
                None => {
                    self.rows.push(Row {
                        event_type,
                        topic: topic.clone(),
                        counts: Counts::default(),
                        sent_handles: None,
                    });
                    let i = self.rows.len() - 1;
                    self.index.insert((event_type, topic.clone()), i);
                    i
                }
            };
        }
        &mut self.rows[self.last]
    }
}

impl SentHandles {
    /// One delivered event's publish duration.
    pub(crate) fn record_duration(&self, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
    }

    fn new(event_type: &'static str, topic: &Topic) -> Self {
        let labels = labels(event_type, topic, None);
        SentHandles {
            duration: metrics::histogram!("messaging.client.operation.duration", labels.iter()),
            sent: metrics::counter!("messaging.client.sent.messages", labels.iter()),
        }
    }
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.bytes += other.bytes;
    }
}

fn labels(
    event_type: &'static str,
    topic: &Topic,
    error: Option<&'static str>,
) -> Vec<metrics::Label> {
    let mut labels = vec![
        metrics::Label::new("messaging.system", "kafka"),
        metrics::Label::new("messaging.operation.name", "send"),
        metrics::Label::new(
            "messaging.destination.name",
            metrics::SharedString::from(topic.as_arc().clone()),
        ),
        metrics::Label::new("cloudevents.event_type", event_type),
    ];
    if let Some(error) = error {
        labels.push(metrics::Label::new("error.type", error));
    }
    labels
}

/// A failed send (rare: labels built each time).
fn emit(event_type: &'static str, topic: &Topic, error: Option<&'static str>, elapsed: Duration) {
    let labels = labels(event_type, topic, error);
    metrics::histogram!("messaging.client.operation.duration", labels.iter())
        .record(elapsed.as_secs_f64());
    metrics::counter!("messaging.client.sent.messages", labels).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_type_and_topic() {
        let stats = StatsRecorder::new(false);
        let (t1, t2) = (Topic::from("t1"), Topic::from("t2"));
        stats.record("a", &t1, Ok(10), Duration::ZERO);
        stats.record("a", &t2, Ok(5), Duration::ZERO);
        stats.record("b", &t1, Err("timeout"), Duration::ZERO);
        let s = stats.snapshot();
        assert_eq!(
            (s.messages_sent, s.messages_failed, s.total_bytes_sent),
            (2, 1, 15)
        );
        assert_eq!(
            s.by_event_type["a"],
            Counts {
                sent: 2,
                failed: 0,
                bytes: 15
            }
        );
        assert_eq!(
            s.by_topic["t1"],
            Counts {
                sent: 1,
                failed: 1,
                bytes: 10
            }
        );
        assert!(s.is_started);
        assert_eq!((s.delivered(), s.errors()), (2, 1));
    }
}
