//! The record accumulator: per-partition FIFO queues of batches waiting to be sent.
//!
//! Records are appended to the last (open) batch of their partition; a new batch is opened when
//! `batch.size` would be exceeded (a record larger than `batch.size` gets a batch of its own).
//! A partition is *ready* when its first batch is full, or `linger.ms` has passed since it
//! was opened, or it is a retry whose backoff has passed, or the producer is flushing or
//! closing. Draining a node takes at most one batch per partition per request.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{BufferedRecord, ProducerBatch, TopicPartition};
use crate::producer::ProduceError;

/// Accumulator settings (from `ProducerConfig`).
#[derive(Debug, Clone, Copy)]
pub struct AccumulatorConfig {
    /// `batch.size`.
    pub batch_size: usize,
    /// `linger.ms`.
    pub linger: Duration,
    /// `delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `max.request.size`.
    pub max_request_size: usize,
}

/// What [`Accumulator::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Whether the record opened a new batch.
    pub new_batch: bool,
    /// The id of the batch the record joined.
    pub batch_id: u64,
    /// Whether the partition now has a full batch (ready to send regardless of linger).
    pub batch_full: bool,
}

/// Which nodes have something to send, and when to look again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadyCheck {
    /// Leaders with at least one sendable batch.
    pub nodes: BTreeSet<i32>,
    /// The earliest time a waiting batch becomes ready (linger, backoff) or expires.
    pub next_check: Option<Instant>,
    /// Topics with a queued batch whose partition has no known leader.
    pub unknown_leaders: BTreeSet<Arc<str>>,
}

/// Per-partition queues of batches.
#[derive(Debug)]
pub struct Accumulator<D> {
    config: AccumulatorConfig,
    queues: BTreeMap<TopicPartition, VecDeque<ProducerBatch<D>>>,
    next_batch_id: u64,
    drain_start: usize,
    last_created: Option<Instant>,
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl<D> Accumulator<D> {
    /// An empty accumulator.
    pub fn new(config: AccumulatorConfig) -> Self {
        Accumulator {
            config,
            queues: BTreeMap::new(),
            next_batch_id: 0,
            drain_start: 0,
            last_created: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &AccumulatorConfig {
        &self.config
    }

    /// Appends `record` to `tp`'s open batch, or to a new one. Fails with
    /// [`ProduceError::RecordTooLarge`] (nothing queued) if the record cannot fit in a request.
    pub fn append(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        record: BufferedRecord<D>,
    ) -> Result<Appended, ProduceError> {
        let (record, delivery) = record.into_parts();
        self.append_with(now, tp, record, move |_, _| delivery)
    }

    /// Like [`append`](Accumulator::append), with the record's delivery handle made once its
    /// place is known: `delivery(previous, index)` gets the handle of the record before it in
    /// the same batch (`None`: it opens a new batch) and its index in the batch. Lets the I/O
    /// layer share one completion per batch. The record is encoded into its batch here: one
    /// the wire format cannot carry is refused with [`ProduceError::Encode`], nothing queued.
    pub fn append_with(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        record: BufferedRecord<()>,
        delivery: impl FnOnce(Option<&D>, usize) -> D,
    ) -> Result<Appended, ProduceError> {
        // The producer reserves exactly `max_size()`: no need to size the record again.
        let size = if record.reserved > 0 {
            record.reserved
        } else {
            record.max_size()
        };
        if size > self.config.max_request_size {
            return Err(ProduceError::RecordTooLarge {
                size,
                max: self.config.max_request_size,
            });
        }
        let batch_size = self.config.batch_size;
        // The partition's queue usually exists: look it up without cloning the key.
        if !self.queues.contains_key(tp) {
            self.queues.insert(tp.clone(), VecDeque::new());
        }
        let Some(queue) = self.queues.get_mut(tp) else {
            return Err(ProduceError::Closed); // just inserted: not reached
        };
        // Only a batch never sent is open: a retried batch keeps its records.
        let mut delivery = delivery;
        if let Some(open) = queue
            .back_mut()
            .filter(|b| b.attempts == 0 && b.sequence.is_none() && !b.full)
        {
            match open.append(&record, batch_size, delivery)? {
                Ok(()) => {
                    return Ok(Appended {
                        new_batch: false,
                        batch_id: open.id,
                        batch_full: open.full,
                    })
                }
                Err(unused) => delivery = unused,
            }
        }
        let id = self.next_batch_id;
        self.next_batch_id = self.next_batch_id.wrapping_add(1);
        // Creation times never go backwards in id order (two `send`s may read the clock in
        // one order and append in the other), so a queue is in creation order and `expire`
        // looks at its front only.
        let created = self.last_created.map_or(now, |last| last.max(now));
        self.last_created = Some(created);
        let mut batch = ProducerBatch::new(tp.clone(), id, created);
        // An empty batch takes any record: a record above batch.size gets a batch of its own.
        let refused = match batch.append(&record, batch_size, delivery) {
            Ok(Ok(())) => None,
            Err(error) => Some(error),
            Ok(Err(_)) => Some(ProduceError::Closed), // an empty batch takes any: not reached
        };
        if let Some(error) = refused {
            if queue.is_empty() {
                self.queues.remove(tp);
            }
            return Err(error);
        }
        let full = batch.full || !queue.is_empty();
        queue.push_back(batch);
        Ok(Appended {
            new_batch: true,
            batch_id: id,
            batch_full: full,
        })
    }

    /// Which leaders have a sendable batch at `now`. `leader` maps a partition to its leader;
    /// `sendable` says whether a partition may send its first batch now (not muted, room in
    /// flight); `flush` makes every batch ready regardless of `linger.ms`.
    pub fn ready(
        &self,
        now: Instant,
        flush: bool,
        leader: &dyn Fn(&TopicPartition) -> Option<i32>,
        sendable: &dyn Fn(&ProducerBatch<D>) -> bool,
    ) -> ReadyCheck {
        let mut check = ReadyCheck::default();
        for (tp, queue) in &self.queues {
            let Some(front) = queue.front() else {
                continue;
            };
            let expires = front.created + self.config.delivery_timeout;
            check.next_check = earliest(check.next_check, expires);
            let Some(node) = leader(tp) else {
                check.unknown_leaders.insert(tp.topic.clone());
                continue;
            };
            if !sendable(front) {
                continue; // a response will change that
            }
            if let Some(at) = front.retry_at.filter(|at| *at > now) {
                check.next_check = earliest(check.next_check, at);
                continue;
            }
            let linger_done = front.created + self.config.linger;
            if flush || queue.len() > 1 || front.full || front.attempts > 0 || linger_done <= now {
                check.nodes.insert(node);
            } else {
                check.next_check = earliest(check.next_check, linger_done);
            }
        }
        check
    }

    /// Takes the first batch of each sendable partition led by `node`, up to
    /// `max_request_size` bytes in all (at least one batch), starting from a rotating position
    /// so that no partition starves.
    pub fn drain(
        &mut self,
        now: Instant,
        node: i32,
        leader: &dyn Fn(&TopicPartition) -> Option<i32>,
        sendable: &dyn Fn(&ProducerBatch<D>) -> bool,
    ) -> Vec<ProducerBatch<D>> {
        let max = self.config.max_request_size;
        let count = self.queues.len();
        if count == 0 {
            return Vec::new();
        }
        let start = self.drain_start % count;
        self.drain_start = (start + 1) % count;
        let mut out: Vec<ProducerBatch<D>> = Vec::new();
        let mut total = 0usize;
        let keys: Vec<TopicPartition> = self
            .queues
            .keys()
            .skip(start)
            .chain(self.queues.keys().take(start))
            .cloned()
            .collect();
        for tp in keys {
            if leader(&tp) != Some(node) {
                continue;
            }
            let Some(queue) = self.queues.get_mut(&tp) else {
                continue;
            };
            let Some(front) = queue.front() else {
                continue;
            };
            if !sendable(front) || front.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            if !out.is_empty() && total.saturating_add(front.size()) > max {
                break;
            }
            if let Some(batch) = queue.pop_front() {
                total = total.saturating_add(batch.size());
                out.push(batch);
            }
        }
        self.queues.retain(|_, q| !q.is_empty());
        out
    }

    /// Puts a batch back for a retry, in its place: batches of a partition stay in creation
    /// order (= sequence order), so a retried batch goes before every later one.
    pub fn reenqueue(&mut self, batch: ProducerBatch<D>) {
        let queue = self.queues.entry(batch.tp.clone()).or_default();
        let at = queue
            .iter()
            .position(|b| b.id > batch.id)
            .unwrap_or(queue.len());
        queue.insert(at, batch);
    }

    /// Removes the batches whose `delivery.timeout.ms` has passed while queued.
    pub fn expire(&mut self, now: Instant) -> Vec<ProducerBatch<D>> {
        let timeout = self.config.delivery_timeout;
        let mut out = Vec::new();
        for queue in self.queues.values_mut() {
            // Batches of a partition are queued in creation order (a retry goes back in its
            // place, creation times are monotonic in id order): only the front can be the first to expire.
            if queue.front().is_some_and(|b| b.created + timeout <= now) {
                let (expired, kept): (VecDeque<_>, VecDeque<_>) =
                    queue.drain(..).partition(|b| b.created + timeout <= now);
                *queue = kept;
                out.extend(expired);
            }
        }
        self.queues.retain(|_, q| !q.is_empty());
        out
    }

    /// Forgets the sequence of every queued batch for which `forget(partition, sequence)` is
    /// true (after an epoch bump that restarts some partitions): they get new ones when
    /// drained, in queue order.
    pub fn clear_sequences_where(
        &mut self,
        forget: impl Fn(&TopicPartition, &super::batch::Sequence) -> bool,
    ) {
        for (tp, queue) in &mut self.queues {
            for batch in queue {
                if batch.sequence.is_some_and(|s| forget(tp, &s)) {
                    batch.sequence = None;
                }
            }
        }
    }

    /// Whether a batch of `tp` created before batch `id` is queued with a sequence (a retry
    /// of an earlier batch is pending).
    pub fn has_sequenced_before(&self, tp: &TopicPartition, id: u64) -> bool {
        self.queues
            .get(tp)
            .is_some_and(|q| q.iter().any(|b| b.id < id && b.sequence.is_some()))
    }

    /// Removes every queued batch.
    pub fn take_all(&mut self) -> Vec<ProducerBatch<D>> {
        std::mem::take(&mut self.queues)
            .into_values()
            .flatten()
            .collect()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queues.values().all(VecDeque::is_empty)
    }

    /// Queued batches of `tp`, first to last.
    pub fn batches(&self, tp: &TopicPartition) -> impl Iterator<Item = &ProducerBatch<D>> {
        self.queues.get(tp).into_iter().flatten()
    }

    /// `(partition, queued batches)` of every partition of `topic` with batches queued, in
    /// partition order: one range of the ordered queues (empty queues are removed), so the
    /// partitions with nothing queued cost nothing.
    pub fn queued_batches(&self, topic: &str) -> impl Iterator<Item = (i32, usize)> + '_ {
        let name: Arc<str> = Arc::from(topic);
        let range =
            TopicPartition::new(name.clone(), i32::MIN)..=TopicPartition::new(name, i32::MAX);
        self.queues
            .range(range)
            .map(|(tp, queue)| (tp.partition, queue.len()))
    }

    /// The ids of every queued batch (tests).
    #[cfg(test)]
    pub(crate) fn batch_ids(&self) -> Vec<u64> {
        self.queues.values().flatten().map(|b| b.id).collect()
    }
}
