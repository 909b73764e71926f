//! How a request's result changes the state: success, retry (same sequence), epoch bump, or
//! failure — the rules listed in `DESIGN.md` ("Invariants (producer)").

use std::time::Instant;

use kafka_protocol::error::ResponseError;

use super::{InFlight, NoJitter, PartitionResponse, RequestResult, SenderState};
use crate::error::Error;
use crate::producer::ProduceError;
use crate::state::producer::batch::{
    fail_records, BatchWritten, Completion, ProducerBatch, TopicPartition,
};

impl<D> SenderState<D> {
    pub(super) fn apply(&mut self, now: Instant, request: InFlight<D>, result: RequestResult) {
        for (batch, _) in &request.batches {
            // At most one batch of a partition sent alone (a piece of a split batch, a resent
            // batch) is in flight: this one.
            self.splitting.remove(&batch.tp);
            if let (Some(sequence), Some(orders)) =
                (batch.sequence, self.in_flight_orders.get_mut(&batch.tp))
            {
                orders.remove(&sequence.order);
                if orders.is_empty() {
                    self.in_flight_orders.remove(&batch.tp);
                }
            }
            if let Some(n) = self.partition_in_flight.get_mut(&batch.tp) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.partition_in_flight.remove(&batch.tp);
                }
            }
        }
        match result {
            Err(error) => {
                // Outcome unknown or not sent: either way the same sequence is resent; the
                // broker deduplicates a batch it already has.
                self.metadata_stale = true;
                // A leader missing from the broker list comes back with fresh metadata.
                let retriable = error.is_retriable()
                    || error.is_outcome_unknown()
                    || matches!(error, Error::UnknownBroker { .. });
                // A request that failed before it was written leaves the batch unsent.
                let maybe_written = error.is_outcome_unknown();
                for (mut batch, _) in request.batches {
                    batch.sent |= maybe_written;
                    let error = ProduceError::Client(error.clone());
                    if retriable {
                        self.retry(now, batch, error);
                    } else {
                        self.fail(batch, &error);
                    }
                }
            }
            Ok(mut answers) => {
                for (mut batch, bytes) in request.batches {
                    // The broker had the request: whatever it answered, the batch was sent.
                    batch.sent = true;
                    let answer = answers
                        .iter()
                        .position(|(tp, _)| *tp == batch.tp)
                        .map(|i| answers.swap_remove(i).1);
                    self.apply_partition(now, batch, bytes, answer);
                }
            }
        }
    }

    fn apply_partition(
        &mut self,
        now: Instant,
        batch: ProducerBatch<D>,
        bytes: usize,
        answer: Option<PartitionResponse>,
    ) {
        let (code, message) = match answer {
            Some(PartitionResponse::Written {
                base_offset,
                log_append_time,
            }) => return self.succeed(batch, bytes, base_offset, log_append_time),
            Some(PartitionResponse::Refused { code, message }) => (code, message),
            None => {
                // The broker did not answer for this partition: its outcome is unknown, so
                // the same sequence is resent.
                let error = ProduceError::Broker {
                    topic: batch.tp.topic.clone(),
                    partition: batch.tp.partition,
                    code: ResponseError::UnknownServerError,
                    message: Some("partition missing from the response".to_owned()),
                };
                return self.retry(now, batch, error);
            }
        };
        let error = ProduceError::Broker {
            topic: batch.tp.topic.clone(),
            partition: batch.tp.partition,
            code,
            message,
        };
        match code {
            // The broker has this batch from an earlier attempt.
            ResponseError::DuplicateSequenceNumber => self.succeed(batch, bytes, -1, -1),
            // Too large for the topic (`max.message.bytes`) or the log segment: sent again in
            // smaller pieces, under the same sequence numbers (as Java splits such a batch).
            ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge
                if batch.piece_len() > 1 =>
            {
                self.split(batch, &error);
            }
            // One record too large: it fails alone when others of its batch are still to send
            // (a piece of a split batch), else with its batch (`fail_piece` falls back to `fail`,
            // as these codes are not retriable).
            ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
                self.fail_piece(batch, &error);
            }
            // In a transaction these end it: fenced (fatal) or abortable (the epoch is bumped
            // after the abort, by the transactional InitProducerId).
            ResponseError::OutOfOrderSequenceNumber
            | ResponseError::UnknownProducerId
            | ResponseError::InvalidProducerEpoch
            | ResponseError::ProducerFenced
                if self.transaction.is_some() =>
            {
                self.fail(batch, &error);
            }
            // The leader checks a transactional batch's partition with the transaction
            // coordinator (KIP-890), which answers CONCURRENT_TRANSACTIONS while this producer's
            // previous transaction is still completing (its markers not all written). Nothing
            // was appended: the same sequence is resent after the backoff, as the Java client
            // does (its `ConcurrentTransactionsException` is retriable; kafka-protocol's table
            // says it is not). Failing the batch aborted every transaction begun right after a
            // commit.
            ResponseError::ConcurrentTransactions => self.retry(now, batch, error),
            ResponseError::OutOfOrderSequenceNumber
            | ResponseError::UnknownProducerId
            | ResponseError::InvalidProducerEpoch
                if self.idempotence.acked_after(&batch.tp, batch.sequence) =>
            {
                // A later batch of the partition is already in the log: resending this one
                // would reorder the partition. It fails (as in the Java client); the epoch
                // is bumped because its sequence is now unresolved.
                self.fail(batch, &error);
            }
            ResponseError::OutOfOrderSequenceNumber
                if self.has_unacked_predecessor(&batch.tp, batch.id) =>
            {
                // An earlier batch is being retried: this one follows it.
                self.retry(now, batch, error);
            }
            ResponseError::OutOfOrderSequenceNumber
            | ResponseError::UnknownProducerId
            | ResponseError::InvalidProducerEpoch
                if self.idempotence.enabled() =>
            {
                self.request_epoch_bump(&batch.tp);
                self.retry(now, batch, error);
            }
            code if code.is_retriable() => {
                self.metadata_stale = true;
                self.retry(now, batch, error);
            }
            _ => self.fail(batch, &error),
        }
    }

    fn has_unacked_predecessor(&self, tp: &TopicPartition, id: u64) -> bool {
        self.accumulator.has_sequenced_before(tp, id)
            || self
                .in_flight
                .values()
                .any(|r| r.batches.iter().any(|(b, _)| b.tp == *tp && b.id < id))
    }

    /// Asks for an epoch bump that restarts `tp`'s sequences (its state is unresolved).
    fn request_epoch_bump(&mut self, tp: &TopicPartition) {
        if self.idempotence.enabled() && self.idempotence.can_send() {
            self.stats.epoch_bumps = self.stats.epoch_bumps.saturating_add(1);
        }
        self.idempotence.request_epoch_bump_for(tp);
    }

    fn retry(&mut self, now: Instant, mut batch: ProducerBatch<D>, error: ProduceError) {
        if batch.attempts > self.config.retries {
            return self.fail(batch, &error);
        }
        let mut no_jitter = NoJitter;
        let backoff = self
            .config
            .retry_backoff
            .backoff(batch.attempts.saturating_sub(1), &mut no_jitter);
        batch.retry_at = Some(now + backoff);
        self.stats.retries = self.stats.retries.saturating_add(1);
        tracing::debug!(
            topic = %batch.tp.topic, partition = batch.tp.partition,
            attempts = batch.attempts, error = %error, "retrying batch"
        );
        self.accumulator.reenqueue(batch);
    }

    fn split(&mut self, mut batch: ProducerBatch<D>, error: &ProduceError) {
        let sent = batch.piece_len();
        if !batch.split(self.config.accumulator.batch_size) {
            return self.fail(batch, error);
        }
        self.stats.batch_splits = self.stats.batch_splits.saturating_add(1);
        tracing::warn!(
            topic = %batch.tp.topic, partition = batch.tp.partition, records = sent,
            next = batch.piece_len(), error = %error, "batch too large for the broker; splitting it"
        );
        // Back in its place, at once: its sequence (if any) is unchanged and covers every
        // record still in it, so the later batches of the partition keep theirs.
        self.accumulator.reenqueue(batch);
    }

    /// The one record of a split batch's piece was refused as too large: it fails alone and
    /// the rest of the batch goes on. Its sequence number is now a gap, so an idempotent
    /// producer bumps its epoch, as for any failed batch with a sequence (Java does the same
    /// outside transactions; a transaction becomes abortable).
    fn fail_piece(&mut self, mut batch: ProducerBatch<D>, error: &ProduceError) {
        let Some(records) = batch.take_piece() else {
            return self.fail(batch, error);
        };
        if batch.sequence.is_some() {
            self.request_epoch_bump(&batch.tp);
        }
        tracing::debug!(
            topic = %batch.tp.topic, partition = batch.tp.partition,
            records = records.len(), error = %error, "record failed"
        );
        if let Some(t) = &mut self.transaction {
            t.batch_failed(error);
        }
        self.stats.records_failed = self
            .stats
            .records_failed
            .saturating_add(records.len() as u64);
        self.completions
            .extend(fail_records(records, error).map(Completion::Record));
        self.accumulator.reenqueue(batch);
    }

    fn succeed(&mut self, mut batch: ProducerBatch<D>, bytes: usize, base: i64, append_time: i64) {
        self.idempotence.acked(&batch.tp, batch.sequence);
        if let Some(records) = batch.take_piece() {
            // A piece of a split batch: its records are done, the rest goes back in place.
            self.stats.records_sent = self.stats.records_sent.saturating_add(records.len() as u64);
            self.stats.bytes_sent = self.stats.bytes_sent.saturating_add(bytes as u64);
            self.completions.push(Completion::Written(BatchWritten {
                tp: batch.tp.clone(),
                records,
                base_offset: base,
                log_append_time: append_time,
            }));
            self.accumulator.reenqueue(batch);
            return;
        }
        self.outstanding.remove(&batch.id);
        self.stats.records_sent = self
            .stats
            .records_sent
            .saturating_add(batch.record_count() as u64);
        self.stats.bytes_sent = self.stats.bytes_sent.saturating_add(bytes as u64);
        self.completions
            .push(Completion::Written(batch.written(base, append_time)));
    }

    pub(super) fn fail(&mut self, batch: ProducerBatch<D>, error: &ProduceError) {
        if batch.sequence.is_some() {
            // Its sequence may or may not be in the log: the partition's sequence state is
            // unresolved. Later batches of the partition that have sequences (in flight, or
            // queued for a retry: they may be in the log already) resolve it first, resent as
            // they are: if this batch was written they are deduplicated or written in order
            // and no bump is needed; if not, the broker refuses them as out of order, which
            // bumps the epoch then, when nothing re-sequenced can be in the log (Java's
            // "unresolved sequence"). Bumping at once re-sequenced a later batch that was
            // already written: a duplicate (found by the simulation, `sim::producer`).
            let later = self.partition_in_flight.contains_key(&batch.tp)
                || self.accumulator.has_sequenced_before(&batch.tp, u64::MAX);
            if self.transaction.is_some() || !later {
                self.request_epoch_bump(&batch.tp);
            }
        }
        tracing::debug!(
            topic = %batch.tp.topic, partition = batch.tp.partition,
            records = batch.record_count(), error = %error, "batch failed"
        );
        if let Some(t) = &mut self.transaction {
            t.batch_failed(error);
        }
        self.outstanding.remove(&batch.id);
        self.stats.records_failed = self
            .stats
            .records_failed
            .saturating_add(batch.record_count() as u64);
        self.completions
            .extend(batch.fail(error).map(Completion::Record));
    }
}
