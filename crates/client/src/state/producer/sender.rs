//! [`SenderState`]: the producer's whole decision state — queues, sequences, requests in
//! flight — driven by the I/O layer and by tests without sockets.
//!
//! Call order, each with the current time:
//! 1. [`SenderState::append`] for every record handed to `send`;
//! 2. [`SenderState::poll_init_producer_id`]: when `Some`, run InitProducerId and report it
//!    with [`SenderState::handle_producer_id`];
//! 3. [`SenderState::expire`] then [`SenderState::poll_requests`]: Produce requests to write,
//!    in the returned order per node, and when to call again;
//! 4. [`SenderState::handle_result`] for each request's response or failure, in any order
//!    (results are applied in send order per node);
//! 5. [`SenderState::take_completions_into`] after each step: every record's outcome, exactly
//!    once — written batches whole ([`Completion::Written`]), failures record by record
//!    ([`SenderState::take_outcomes`] gives the same one per record).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafkit_wire::compression::Compression;

use super::accumulator::{Accumulator, AccumulatorConfig, Appended};
use super::batch::{BufferedRecord, Completion, Outcome, ProducerBatch, TopicPartition};
use super::idempotence::Idempotence;
use super::node_latency::NodeLatency;
use super::transaction::TransactionState;
use crate::error::Error;
use crate::producer::ProduceError;
use crate::state::backoff::ExponentialBackoff;
use crate::state::rng::RandomSource;

#[cfg(test)]
mod invariants;
mod response;

/// Settings of the sender state (from `ProducerConfig`).
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Batching and expiry.
    pub accumulator: AccumulatorConfig,
    /// `enable.idempotence`.
    pub idempotent: bool,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `retries`.
    pub retries: u32,
    /// `retry.backoff.ms` / `retry.backoff.max.ms`.
    pub retry_backoff: ExponentialBackoff,
    /// `compression.type`.
    pub compression: Compression,
    /// `compression.<codec>.level` for that codec (`None`: the codec's default).
    pub compression_level: Option<i32>,
}

/// One Produce request to write to `node`.
#[derive(Debug, Clone)]
pub struct ProduceRequestPlan {
    /// Identifies the request in [`SenderState::handle_result`].
    pub id: u64,
    /// The leader it goes to.
    pub node: i32,
    /// Encoded batches, at most one per partition.
    pub batches: Vec<(TopicPartition, Bytes)>,
}

/// A partition's answer in a Produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionResponse {
    /// Written at `base_offset` (-1 when unknown); `log_append_time` -1 unless the topic
    /// uses LogAppendTime.
    Written {
        /// Offset of the first record.
        base_offset: i64,
        /// Broker timestamp, or -1.
        log_append_time: i64,
    },
    /// Refused.
    Refused {
        /// The error.
        code: ResponseError,
        /// The broker's message.
        message: Option<String>,
    },
}

/// The result of one request: per-partition answers, or the request failed as a whole.
pub type RequestResult = Result<Vec<(TopicPartition, PartitionResponse)>, Error>;

/// What [`SenderState::poll_requests`] produced.
#[derive(Debug, Default)]
pub struct Transmit {
    /// Requests to write, in order.
    pub requests: Vec<ProduceRequestPlan>,
    /// When to call again at the latest (linger, backoff, expiry).
    pub next_check: Option<Instant>,
    /// Topics whose metadata should be refreshed.
    pub unknown_leaders: BTreeSet<Arc<str>>,
}

/// Counters kept by the state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SenderStats {
    /// Records acknowledged.
    pub records_sent: u64,
    /// Encoded bytes acknowledged.
    pub bytes_sent: u64,
    /// Records that failed.
    pub records_failed: u64,
    /// Batches sent (attempts included).
    pub batches_sent: u64,
    /// Batches put back for a retry.
    pub retries: u64,
    /// Epoch bumps asked for.
    pub epoch_bumps: u64,
    /// Records that expired (`delivery.timeout.ms`) before any request carried them: not
    /// written.
    pub records_expired_unsent: u64,
    /// Records that expired after a request carried them: outcome unknown.
    pub records_expired_unknown: u64,
    /// Times a batch refused as too large was split (`MESSAGE_TOO_LARGE`,
    /// `RECORD_LIST_TOO_LARGE`).
    pub batch_splits: u64,
}

#[derive(Debug)]
struct InFlight<D> {
    node: i32,
    batches: Vec<(ProducerBatch<D>, usize)>,
}

/// The producer's decision state. `D` is a record's delivery handle.
#[derive(Debug)]
pub struct SenderState<D> {
    config: SenderConfig,
    accumulator: Accumulator<D>,
    idempotence: Idempotence,
    in_flight: HashMap<u64, InFlight<D>>,
    node_requests: HashMap<i32, VecDeque<u64>>,
    parked: HashMap<u64, RequestResult>,
    partition_in_flight: HashMap<TopicPartition, usize>,
    /// Partitions with a piece of a split batch, or a resent batch of an idempotent producer,
    /// in flight: nothing else of theirs is sent.
    splitting: HashSet<TopicPartition>,
    /// The send-order positions (`Sequence::order`) of each partition's batches in flight.
    in_flight_orders: HashMap<TopicPartition, BTreeSet<u64>>,
    outstanding: BTreeSet<u64>,
    next_request_id: u64,
    /// What was decided since the last `take_*`: failures record by record, successes
    /// batch by batch.
    completions: Vec<Completion<D>>,
    flushing: usize,
    closing: bool,
    metadata_stale: bool,
    stats: SenderStats,
    scratch: Vec<u8>,
    /// The transaction state of a transactional producer.
    transaction: Option<TransactionState>,
    /// When each leader last had work waiting and last made progress.
    node_latency: NodeLatency,
}

impl<D> SenderState<D> {
    /// A state with nothing queued and (if idempotent) no producer id yet.
    pub fn new(config: SenderConfig) -> Self {
        SenderState {
            accumulator: Accumulator::new(config.accumulator),
            idempotence: Idempotence::new(config.idempotent),
            config,
            in_flight: HashMap::new(),
            node_requests: HashMap::new(),
            parked: HashMap::new(),
            partition_in_flight: HashMap::new(),
            splitting: HashSet::new(),
            in_flight_orders: HashMap::new(),
            outstanding: BTreeSet::new(),
            next_request_id: 0,
            completions: Vec::new(),
            flushing: 0,
            closing: false,
            metadata_stale: false,
            stats: SenderStats::default(),
            scratch: Vec::new(),
            transaction: None,
            node_latency: NodeLatency::default(),
        }
    }

    /// Makes the state transactional (`transactional.id` = `id`): records are accepted only
    /// inside a transaction, a partition's batches are sent only once it was added to the
    /// transaction, batches carry the transactional flag, and the producer id comes from
    /// `init_transactions` (never from [`poll_init_producer_id`](Self::poll_init_producer_id)).
    pub fn enable_transactions(&mut self, id: impl Into<String>) {
        self.transaction = Some(TransactionState::new(id));
    }

    /// The transaction state, if transactional.
    pub fn transaction(&self) -> Option<&TransactionState> {
        self.transaction.as_ref()
    }

    /// The transaction state, if transactional (the producer's transactional calls drive it).
    pub fn transaction_mut(&mut self) -> Option<&mut TransactionState> {
        self.transaction.as_mut()
    }

    /// The partitions to add to the transaction now (one AddPartitionsToTxn), with the
    /// producer id and epoch to send.
    pub fn poll_add_partitions(
        &mut self,
        now: Instant,
    ) -> Option<((i64, i16), Vec<TopicPartition>)> {
        let pair = self.idempotence.producer_id();
        let partitions = self.transaction.as_mut()?.poll_add_partitions(now)?;
        Some((pair, partitions))
    }

    /// Whether an epoch bump is wanted (a transactional producer bumps after its abort).
    pub fn needs_epoch_bump(&self) -> bool {
        self.idempotence.needs_producer_id()
    }

    fn check_transaction(&mut self, tp: &TopicPartition) -> Result<(), ProduceError> {
        if let Some(t) = &mut self.transaction {
            t.check_send()?;
            t.note_partition(tp);
        }
        Ok(())
    }

    /// Queues a record for `tp`.
    pub fn append(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        record: BufferedRecord<D>,
    ) -> Result<Appended, ProduceError> {
        if self.closing {
            return Err(ProduceError::Closed);
        }
        self.check_transaction(tp)?;
        let appended = self.accumulator.append(now, tp, record)?;
        if appended.new_batch {
            self.outstanding.insert(appended.batch_id);
        }
        Ok(appended)
    }

    /// Queues a record for `tp` whose delivery handle is made once its place is known (see
    /// [`Accumulator::append_with`]).
    pub fn append_with(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        record: BufferedRecord<()>,
        delivery: impl FnOnce(Option<&D>, usize) -> D,
    ) -> Result<Appended, ProduceError> {
        if self.closing {
            return Err(ProduceError::Closed);
        }
        self.check_transaction(tp)?;
        let appended = self.accumulator.append_with(now, tp, record, delivery)?;
        if appended.new_batch {
            self.outstanding.insert(appended.batch_id);
        }
        Ok(appended)
    }

    /// The InitProducerId to run now, as (current producer id, current epoch) — (-1, -1) the
    /// first time, the current pair for an epoch bump (KIP-360). Only once nothing is in flight.
    pub fn poll_init_producer_id(&self) -> Option<(i64, i16)> {
        (self.transaction.is_none()
            && self.idempotence.needs_producer_id()
            && self.in_flight.is_empty())
        .then(|| self.idempotence.producer_id())
    }

    /// Installs the producer id and epoch InitProducerId returned. The partitions whose
    /// sequence state was unresolved (the reason for an epoch bump) restart at sequence 0 and
    /// their queued batches are re-sequenced when drained; the others keep their epoch and
    /// sequences, so a batch whose response was lost is resent as it was (and deduplicated),
    /// never written twice. A new producer id, or a transactional producer's bump, restarts
    /// every partition.
    pub fn handle_producer_id(&mut self, producer_id: i64, producer_epoch: i16) {
        if self.transaction.is_some() {
            // After an abort the broker fences the old epoch everywhere.
            self.idempotence.request_epoch_bump();
        }
        self.idempotence
            .set_producer_id(producer_id, producer_epoch);
        let idempotence = &self.idempotence;
        self.accumulator.clear_sequences_where(|tp, sequence| {
            idempotence.partition_producer(tp)
                != Some((sequence.producer_id, sequence.producer_epoch))
        });
    }

    /// An InitProducerId failed for good. After a failed epoch bump the producer asks for a
    /// new producer id instead (returns `true`); a first InitProducerId failing for good fails
    /// everything with `error` (returns `false`).
    pub fn handle_producer_id_error(&mut self, error: &ProduceError) -> bool {
        if self.idempotence.producer_id().0 >= 0 {
            self.idempotence.forget_producer_id();
            true
        } else {
            self.abort(error);
            false
        }
    }

    /// The producer id and epoch in use.
    pub fn producer_id(&self) -> (i64, i16) {
        self.idempotence.producer_id()
    }

    /// The next sequence of `tp`.
    pub fn next_sequence(&self, tp: &TopicPartition) -> i32 {
        self.idempotence.next_sequence(tp)
    }

    /// Sets the next sequence of `tp` (tests).
    pub fn set_next_sequence(&mut self, tp: &TopicPartition, next_sequence: i32) {
        self.idempotence.set_next_sequence(tp, next_sequence);
    }

    /// Fails batches whose `delivery.timeout.ms` passed while queued, with
    /// [`ProduceError::DeliveryTimeout`] saying whether a request ever carried them (`sent`:
    /// outcome unknown) or not (not written). Batches in flight wait for their result.
    pub fn expire(&mut self, now: Instant) {
        let after = self.config.accumulator.delivery_timeout;
        for batch in self.accumulator.expire(now) {
            let sent = batch.sent;
            let records = batch.record_count() as u64;
            let counter = if sent {
                &mut self.stats.records_expired_unknown
            } else {
                &mut self.stats.records_expired_unsent
            };
            *counter = counter.saturating_add(records);
            let error = ProduceError::DeliveryTimeout {
                topic: batch.tp.topic.clone(),
                partition: batch.tp.partition,
                after,
                sent,
            };
            self.fail(batch, &error);
        }
    }

    fn sendable(&self, batch: &ProducerBatch<D>) -> bool {
        sendable(
            &self.idempotence,
            self.transaction.as_ref(),
            &self.partition_in_flight,
            &self.splitting,
            &self.in_flight_orders,
            self.config.max_in_flight,
            batch,
        )
    }

    /// The Produce requests to write now (at most `max.in.flight` per node in flight).
    pub fn poll_requests(
        &mut self,
        now: Instant,
        leader: &dyn Fn(&TopicPartition) -> Option<i32>,
    ) -> Transmit {
        if let Some(error) = self.transaction.as_ref().and_then(|t| t.fail_queued_with()) {
            // The transaction aborts (or the producer is fenced): what was never drained is
            // failed rather than sent.
            for batch in self.accumulator.take_all() {
                self.fail(batch, &error);
            }
        }
        let flush = self.flushing > 0 || self.closing;
        let check = {
            let sendable = |b: &ProducerBatch<D>| self.sendable(b);
            self.accumulator.ready(now, flush, leader, &sendable)
        };
        let mut transmit = Transmit {
            requests: Vec::new(),
            next_check: check.next_check,
            unknown_leaders: check.unknown_leaders,
        };
        // A leader with requests in flight has work waiting too (its answer).
        for (node, requests) in &self.node_requests {
            if !requests.is_empty() {
                self.node_latency.record_ready(*node, now);
            }
        }
        for node in check.nodes {
            self.node_latency.record_ready(node, now);
            let busy = self.node_requests.get(&node).map_or(0, VecDeque::len);
            if busy >= self.config.max_in_flight {
                continue;
            }
            let batches = {
                let (idempotence, in_flight) = (&self.idempotence, &self.partition_in_flight);
                let (txn, splitting) = (self.transaction.as_ref(), &self.splitting);
                let orders = &self.in_flight_orders;
                let max = self.config.max_in_flight;
                let check = |b: &ProducerBatch<D>| {
                    sendable(idempotence, txn, in_flight, splitting, orders, max, b)
                };
                self.accumulator.drain(now, node, leader, &check)
            };
            if batches.is_empty() {
                continue;
            }
            self.node_latency.record_progress(node, now);
            if let Some(plan) = self.start_request(node, batches) {
                transmit.requests.push(plan);
            }
        }
        transmit
    }

    fn start_request(
        &mut self,
        node: i32,
        batches: Vec<ProducerBatch<D>>,
    ) -> Option<ProduceRequestPlan> {
        let id = self.next_request_id;
        let mut plan = ProduceRequestPlan {
            id,
            node,
            batches: Vec::with_capacity(batches.len()),
        };
        let mut sent = Vec::with_capacity(batches.len());
        for mut batch in batches {
            if batch.sequence.is_none() {
                if !self.partition_in_flight.contains_key(&batch.tp) {
                    // Nothing of it in flight or sequenced: it may move to the current epoch.
                    self.idempotence.adopt_current_epoch(&batch.tp);
                }
                batch.sequence = self.idempotence.assign(&batch.tp, batch.record_count());
            }
            let transactional = match &mut self.transaction {
                Some(t) => {
                    t.batch_drained();
                    true
                }
                None => false,
            };
            match batch.encode(
                self.config.compression,
                self.config.compression_level,
                transactional,
                &mut self.scratch,
            ) {
                Ok(bytes) => {
                    // A resent batch of an idempotent producer (sent alone, like a piece) is
                    // also the only one of its partition in flight until it is answered: the
                    // broker recognises a duplicate among the producer's last 5 batches only,
                    // so later batches written meanwhile could push an earlier attempt of it
                    // out of that window, and the resend would be refused as out of order
                    // although it was written (found by the simulation, `sim::producer`).
                    let resent = batch.attempts > 0 && self.idempotence.enabled();
                    batch.attempts = batch.attempts.saturating_add(1);
                    batch.retry_at = None;
                    *self
                        .partition_in_flight
                        .entry(batch.tp.clone())
                        .or_default() += 1;
                    if batch.is_split() || resent {
                        self.splitting.insert(batch.tp.clone());
                    }
                    if let Some(sequence) = batch.sequence {
                        self.in_flight_orders
                            .entry(batch.tp.clone())
                            .or_default()
                            .insert(sequence.order);
                    }
                    plan.batches.push((batch.tp.clone(), bytes.clone()));
                    sent.push((batch, bytes.len()));
                }
                Err(error) => self.fail(batch, &error),
            }
        }
        if sent.is_empty() {
            return None;
        }
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.stats.batches_sent = self.stats.batches_sent.saturating_add(sent.len() as u64);
        self.in_flight.insert(
            id,
            InFlight {
                node,
                batches: sent,
            },
        );
        self.node_requests.entry(node).or_default().push_back(id);
        Some(plan)
    }

    /// The response to request `id`, or why it failed (connection lost, timeout). Results are
    /// applied in the order the requests were sent to their node: an early arrival waits.
    pub fn handle_result(&mut self, now: Instant, id: u64, result: RequestResult) {
        let Some(node) = self.in_flight.get(&id).map(|r| r.node) else {
            return;
        };
        if result.is_ok() {
            // The broker answered: it makes progress.
            self.node_latency.record_progress(node, now);
        }
        self.parked.insert(id, result);
        while let Some(head) = self
            .node_requests
            .get(&node)
            .and_then(|q| q.front().copied())
        {
            let Some(result) = self.parked.remove(&head) else {
                break;
            };
            if let Some(q) = self.node_requests.get_mut(&node) {
                q.pop_front();
            }
            if let Some(request) = self.in_flight.remove(&head) {
                self.apply(now, request, result);
            }
        }
        self.node_requests.retain(|_, q| !q.is_empty());
    }
    /// Every record outcome decided since the last call, one per record, in the order
    /// decided.
    pub fn take_outcomes(&mut self) -> Vec<Outcome<D>> {
        std::mem::take(&mut self.completions)
            .into_iter()
            .flat_map(Completion::into_outcomes)
            .collect()
    }

    /// What was decided since the last call, written batches whole (see [`BatchWritten`]).
    pub fn take_completions(&mut self) -> Vec<Completion<D>> {
        std::mem::take(&mut self.completions)
    }

    /// Like [`take_completions`](SenderState::take_completions),
    /// into `out` (appended), keeping both buffers' capacity when `out` comes in empty: the
    /// I/O loop reuses its buffers.
    pub fn take_completions_into(&mut self, out: &mut Vec<Completion<D>>) {
        if out.is_empty() {
            std::mem::swap(&mut self.completions, out);
        } else {
            out.append(&mut self.completions);
        }
    }

    /// Whether a request failed in a way that calls for fresh metadata (and clears it).
    pub fn take_metadata_stale(&mut self) -> bool {
        std::mem::take(&mut self.metadata_stale)
    }

    /// A flush starts: every batch is ready regardless of `linger.ms` until `end_flush`.
    pub fn begin_flush(&mut self) -> u64 {
        self.flushing = self.flushing.saturating_add(1);
        self.accumulator_next_batch_id()
    }

    fn accumulator_next_batch_id(&self) -> u64 {
        self.outstanding.last().map_or(0, |id| id.saturating_add(1))
    }

    /// A flush ended.
    pub fn end_flush(&mut self) {
        self.flushing = self.flushing.saturating_sub(1);
    }

    /// Whether every batch created before `marker` (from `begin_flush`) is done.
    pub fn flushed(&self, marker: u64) -> bool {
        self.outstanding.first().is_none_or(|id| *id >= marker)
    }

    /// Close starts: no more appends, every batch ready now.
    pub fn close(&mut self) {
        self.closing = true;
    }

    /// Whether `close` was called.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Fails everything queued or in flight with `error` (close timed out, producer dropped).
    pub fn abort(&mut self, error: &ProduceError) {
        self.closing = true;
        for batch in self.accumulator.take_all() {
            self.fail(batch, error);
        }
        self.node_requests.clear();
        self.parked.clear();
        self.partition_in_flight.clear();
        self.splitting.clear();
        self.in_flight_orders.clear();
        let requests: Vec<InFlight<D>> = self.in_flight.drain().map(|(_, r)| r).collect();
        for request in requests {
            for (batch, _) in request.batches {
                self.fail(batch, error);
            }
        }
    }

    /// Whether nothing is queued or in flight.
    pub fn is_idle(&self) -> bool {
        self.accumulator.is_empty() && self.in_flight.is_empty()
    }

    /// Requests in flight.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Counters.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// The queues (tests, metrics).
    pub fn accumulator(&self) -> &Accumulator<D> {
        &self.accumulator
    }

    /// When each leader last had work waiting and last made progress; the producer skips
    /// the partitions of a stalled leader when choosing a new sticky partition
    /// (`partitioner.availability.timeout.ms`).
    pub fn node_latency(&self) -> &NodeLatency {
        &self.node_latency
    }

    /// Partition batches in flight.
    pub fn partition_in_flight(&self, tp: &TopicPartition) -> usize {
        self.partition_in_flight.get(tp).copied().unwrap_or(0)
    }

    /// Whether the settings allow sending and a retry of `tp` waits for its in-flight set to
    /// drain (tests).
    pub fn is_muted(&self, tp: &TopicPartition) -> bool {
        self.accumulator
            .batches(tp)
            .next()
            .is_some_and(|b| !self.sendable(b))
    }

    /// How long a retry of a batch sent `attempts` times waits.
    pub fn retry_backoff(&self, attempts: u32) -> Duration {
        self.config
            .retry_backoff
            .backoff(attempts.saturating_sub(1), &mut NoJitter)
    }
}

/// Whether a partition may send `batch` (its first queued batch) now: a producer id is known
/// and no epoch bump is pending, fewer than `max_in_flight` of its batches are in flight,
/// — the mute rule — a retry (or a piece of a split batch) waits until nothing of its
/// partition is in flight, so that batches are resent in sequence order, and nothing is sent
/// while a piece of a split batch is in flight (the rest of that batch comes first), and — the
/// first-batch rule — until the partition has an acknowledged batch under the current epoch,
/// only one batch is in flight (a broker that does not know the producer accepts any first
/// sequence, so a second pipelined batch could land before a first one that failed).
fn sendable<D>(
    idempotence: &Idempotence,
    transaction: Option<&TransactionState>,
    partition_in_flight: &HashMap<TopicPartition, usize>,
    splitting: &HashSet<TopicPartition>,
    in_flight_orders: &HashMap<TopicPartition, BTreeSet<u64>>,
    max_in_flight: usize,
    batch: &ProducerBatch<D>,
) -> bool {
    // A transactional batch goes only to a partition the coordinator added to the transaction.
    if transaction.is_some_and(|t| !t.can_send(&batch.tp)) {
        return false;
    }
    let n = partition_in_flight.get(&batch.tp).copied().unwrap_or(0);
    if n == 0 {
        return idempotence.can_send();
    }
    if splitting.contains(&batch.tp) {
        return false;
    }
    let is_retry = batch.attempts > 0 || batch.sequence.is_some() || batch.is_split();
    // The dedup window: the broker recognises a resend among the producer's last
    // `DEDUP_WINDOW` batches of the partition only, so no more than that may be written from
    // the oldest batch still unanswered on (a batch whose response hangs on a connection to
    // a former leader while later ones are acknowledged by the new one: its resend would be
    // refused as out of order although it was written; found by the simulation).
    let in_window = in_flight_orders
        .get(&batch.tp)
        .and_then(|o| o.first())
        .is_none_or(|oldest| idempotence.next_order(&batch.tp) < oldest + DEDUP_WINDOW);
    idempotence.can_send()
        && n < max_in_flight
        && !is_retry
        && idempotence.confirmed(&batch.tp)
        && in_window
}

/// How many of a producer's last batches per partition a Kafka broker remembers to recognise
/// a duplicate.
const DEDUP_WINDOW: u64 = 5;

/// Retry backoff without jitter: the state stays deterministic.
struct NoJitter;

impl RandomSource for NoJitter {
    fn next_u64(&mut self) -> u64 {
        1 << 63
    }
}
