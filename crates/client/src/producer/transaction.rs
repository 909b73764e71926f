//! The transactional producer's calls (`init_transactions`, `begin_transaction`,
//! `send_offsets_to_transaction`, `commit_transaction`, `abort_transaction`); the coordinator
//! and the requests are in `transaction_coordinator.rs`. Transactions v1 (KIP-98/447) or v2
//! (KIP-890): see `DESIGN.md` ("How a transaction flows"). The decisions live in
//! [`TransactionState`](crate::state::producer::TransactionState).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ProducerId};
use tracing::{debug, info};

use super::transaction_coordinator::{
    end_txn_request, init_producer_id_request, txn_offset_commit_request, END_TXN_V1_MAX,
    END_TXN_V2_MIN, TXN_OFFSET_COMMIT_V1_MAX,
};
pub(crate) use super::transaction_coordinator::{TxnCoordinator, PRODUCE_V1_MAX};
use super::{Producer, TransactionError};
use crate::error::Error;
use crate::io::coordinator::Coordinators;
use crate::state::group::{OffsetAndMetadata, TopicPartition as GroupPartition};
use crate::state::producer::transaction::{call_error, classify, TxnErrorClass};
use crate::state::producer::TransactionPhase;

/// A consumer's group membership, for committing its offsets inside a transaction
/// (`Consumer::group_metadata`). The coordinator refuses the commit when the generation is
/// stale (KIP-447), so a zombie member cannot commit.
///
/// ```
/// use kafkit::producer::ConsumerGroupMetadata;
///
/// let standalone = ConsumerGroupMetadata::new("copier");
/// assert_eq!(standalone.generation_id, -1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The classic generation id or the KIP-848 member epoch (-1: not a member).
    pub generation_id: i32,
    /// The member id ("" when not a member).
    pub member_id: String,
    /// `group.instance.id` (static membership).
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// The metadata of a group the caller is not a member of (generation -1).
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

impl Producer {
    fn txn(&self) -> Result<&TxnCoordinator, TransactionError> {
        if self.handle.shared.stopped.load(Ordering::Acquire) {
            return Err(TransactionError::Closed);
        }
        self.handle
            .txn
            .as_deref()
            .ok_or(TransactionError::NotTransactional)
    }

    /// Applies `f` to the transaction state.
    fn with_txn<T>(
        &self,
        f: impl FnOnce(&mut crate::state::producer::TransactionState) -> T,
    ) -> Result<T, TransactionError> {
        let mut state = self.handle.shared.lock();
        let txn = state
            .transaction_mut()
            .ok_or(TransactionError::NotTransactional)?;
        Ok(f(txn))
    }

    /// The state's error after a failed call (fenced, fatal), or `fallback`.
    fn txn_error(&self, fallback: TransactionError) -> TransactionError {
        let state = self.handle.shared.lock();
        state
            .transaction()
            .and_then(|t| t.fatal_error().cloned())
            .unwrap_or(fallback)
    }

    /// The transaction protocol in use: `Some(2)` for transactions v2 (KIP-890: Kafka 4.x with
    /// `transaction.version` 2), `Some(1)` otherwise; `None` before `init_transactions` or
    /// without a `transactional.id`.
    pub fn transaction_version(&self) -> Option<u8> {
        let state = self.handle.shared.lock();
        let t = state.transaction()?;
        match t.phase() {
            TransactionPhase::Uninitialized | TransactionPhase::Initializing => None,
            _ => Some(if t.is_v2() { 2 } else { 1 }),
        }
    }

    /// The producer's transaction phase (`None` when it has no `transactional.id`).
    pub fn transaction_phase(&self) -> Option<TransactionPhase> {
        self.handle.shared.lock().transaction().map(|t| t.phase())
    }

    /// Gets the producer id of `transactional.id` (InitProducerId), which fences every older
    /// producer with the same id and completes (commits or aborts) the transaction a previous
    /// incarnation left open. Call once, before the first `begin_transaction`; a
    /// [`TransactionError::Timeout`] may be retried with the same call.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use kafkit::config::ProducerConfig;
    /// use kafkit::producer::{Producer, ProducerRecord};
    ///
    /// let config = ProducerConfig::builder()
    ///     .bootstrap_servers(["127.0.0.1:9092"])
    ///     .transactional_id("order-copier-1")
    ///     .build()?;
    /// let producer = Producer::new(config).await?;
    /// producer.init_transactions(Duration::from_secs(30)).await?;
    /// producer.begin_transaction()?;
    /// producer.send(ProducerRecord::new("orders").value("{}")).await?;
    /// producer.commit_transaction(Duration::from_secs(30)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn init_transactions(&self, timeout: Duration) -> Result<(), TransactionError> {
        let txn = self.txn()?;
        self.with_txn(|t| t.start_init())??;
        let deadline = Instant::now() + timeout;
        let pair = self
            .init_producer_id(txn, (-1, -1), deadline, "init_transactions", timeout)
            .await?;
        let v2 = txn.supports_v2(deadline).await;
        txn.v2.store(v2, Ordering::Release);
        self.with_txn(|t| t.set_v2(v2))?;
        let protocol = if v2 { "v2 (KIP-890)" } else { "v1" };
        debug!(transactional_id = %txn.id, protocol, "transaction protocol chosen");
        info!(transactional_id = %txn.id, producer_id = pair.0, epoch = pair.1, protocol,
              "transactional producer ready");
        Ok(())
    }

    /// InitProducerId with the transactional id; installs the answer and ends any transaction.
    async fn init_producer_id(
        &self,
        txn: &TxnCoordinator,
        current: (i64, i16),
        deadline: Instant,
        operation: &'static str,
        after: Duration,
    ) -> Result<(i64, i16), TransactionError> {
        let request =
            init_producer_id_request(&txn.id, self.handle.config.transaction_timeout(), current);
        let result = txn
            .call(deadline, |conn, timeout| {
                let request = request.clone();
                async move {
                    let version = conn.version(ApiKey::InitProducerId)?;
                    let request = if version < 3 {
                        request
                            .with_producer_id(ProducerId(-1))
                            .with_producer_epoch(-1)
                    } else {
                        request
                    };
                    let response = conn.send(&request, version, timeout).await?;
                    Error::check(ApiKey::InitProducerId, response.error_code, None)?;
                    Ok((response.producer_id.0, response.producer_epoch))
                }
            })
            .await;
        match result {
            Ok((id, epoch)) => {
                let mut state = self.handle.shared.lock();
                state.handle_producer_id(id, epoch);
                if let Some(t) = state.transaction_mut() {
                    t.init_done();
                }
                drop(state);
                self.handle.shared.wake.notify_one();
                Ok((id, epoch))
            }
            Err((error, timed_out)) => {
                if !timed_out {
                    self.with_txn(|t| match classify(&error) {
                        TxnErrorClass::Fenced => t.fenced(error_code(&error)),
                        _ => t.fatal(TransactionError::fatal(error.clone())),
                    })?;
                }
                Err(self.txn_error(call_error(error, timed_out, operation, after)))
            }
        }
    }

    /// Starts a transaction: every record sent until `commit_transaction` or
    /// `abort_transaction` belongs to it. Local (no request).
    pub fn begin_transaction(&self) -> Result<(), TransactionError> {
        self.txn()?;
        self.with_txn(|t| t.begin())?
    }

    /// Commits `offsets` of the consumer group `group` (from `Consumer::group_metadata`) as
    /// part of the open transaction (AddOffsetsToTxn, then TxnOffsetCommit to the group
    /// coordinator with the generation, member id and group instance id: KIP-447): they
    /// become the group's committed offsets only if the transaction commits. Waits up to
    /// `max.block.ms`.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &BTreeMap<GroupPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), TransactionError> {
        const OP: &str = "send_offsets_to_transaction";
        let txn = self.txn()?;
        self.with_txn(|t| t.check_send_offsets())??;
        let (pair, v2) = {
            let state = self.handle.shared.lock();
            let v2 = state.transaction().is_some_and(|t| t.is_v2());
            (state.producer_id(), v2)
        };
        let after = self.handle.config.max_block();
        let deadline = Instant::now() + after;
        if !v2 {
            // v2: TxnOffsetCommit v5 adds the group to the transaction itself.
            let added = txn.add_offsets(pair, &group.group_id, deadline).await;
            if let Err((error, timed_out)) = added {
                if timed_out {
                    // Maybe applied: an abort must ask again (see `settle_offsets_in_doubt`).
                    self.with_txn(|t| t.offsets_outcome_unknown(&group.group_id))?;
                }
                return Err(self.fail_call(error, timed_out, OP, after));
            }
        }
        let max_version = if v2 {
            i16::MAX
        } else {
            TXN_OFFSET_COMMIT_V1_MAX
        };
        self.with_txn(|t| t.offsets_added())?;
        let request = txn_offset_commit_request(&txn.id, pair, offsets, group);
        let coordinators = Coordinators::new(self.handle.cluster.clone());
        let committed = coordinators
            .call(&group.group_id, deadline, |_node, conn| {
                let request = request.clone();
                async move {
                    let version = conn.version(ApiKey::TxnOffsetCommit)?.min(max_version);
                    let timeout = conn_timeout(deadline);
                    let response = conn.send(&request, version, timeout).await?;
                    let first = response
                        .topics
                        .iter()
                        .flat_map(|t| t.partitions.iter())
                        .find(|p| p.error_code != 0);
                    match first {
                        Some(p) => Error::check(ApiKey::TxnOffsetCommit, p.error_code, None),
                        None => Ok(()),
                    }
                }
            })
            .await;
        match committed {
            Ok(()) => Ok(()),
            Err(error) => {
                let timed_out =
                    deadline <= Instant::now() && classify(&error) != TxnErrorClass::Fatal;
                Err(self.fail_call(error, timed_out, OP, after))
            }
        }
    }

    /// Notes a failed call inside the transaction in the state and returns its error.
    fn fail_call(
        &self,
        error: Error,
        timed_out: bool,
        operation: &'static str,
        after: Duration,
    ) -> TransactionError {
        if !timed_out {
            let _ = self.with_txn(|t| match classify(&error) {
                TxnErrorClass::Fenced => t.fenced(error_code(&error)),
                TxnErrorClass::Abortable => t.abortable(super::ProduceError::Client(error.clone())),
                _ => t.fatal(TransactionError::fatal(error.clone())),
            });
        }
        self.txn_error(call_error(error, timed_out, operation, after))
    }

    /// Sends everything the transaction holds (flush), then commits it (EndTxn) once nothing is
    /// in flight. Fails with [`TransactionError::Abortable`] naming the first failure when a
    /// record of the transaction failed (abort it then), with
    /// [`TransactionError::Timeout`] when `timeout` passed (call it again, or abort if the
    /// commit was not sent yet), or fatally when fenced.
    pub async fn commit_transaction(&self, timeout: Duration) -> Result<(), TransactionError> {
        self.end_transaction(true, timeout).await
    }

    /// Aborts the open transaction: records not sent yet fail with
    /// [`ProduceError::Transaction`](super::ProduceError::Transaction), the ones in flight are
    /// awaited, then EndTxn(abort) — or, after a failed send left the partition sequences
    /// unresolved, InitProducerId with the current producer id and epoch, which aborts and
    /// bumps the epoch (KIP-360). `read_committed` consumers never see the transaction's
    /// records.
    pub async fn abort_transaction(&self, timeout: Duration) -> Result<(), TransactionError> {
        self.end_transaction(false, timeout).await
    }

    async fn end_transaction(
        &self,
        commit: bool,
        timeout: Duration,
    ) -> Result<(), TransactionError> {
        let operation = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        let txn = self.txn()?;
        let deadline = Instant::now() + timeout;
        let shared = &self.handle.shared;
        let marker = {
            let mut state = shared.lock();
            let t = state
                .transaction_mut()
                .ok_or(TransactionError::NotTransactional)?;
            if commit {
                t.begin_commit()?;
            } else {
                t.begin_abort()?;
            }
            state.begin_flush()
        };
        shared.wake.notify_one();
        // Commit: everything sent and acknowledged. Abort: what was queued fails, what is in
        // flight is awaited.
        let drained = loop {
            let progress = shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let state = shared.lock();
                // Nothing queued or in flight, and every AddPartitionsToTxn answered (one
                // landing after EndTxn would open a new transaction on the coordinator; one in
                // doubt may have opened one that only EndTxn closes).
                let settled = state.transaction().is_none_or(|t| t.adds_settled());
                if state.flushed(marker) && state.requests_in_flight() == 0 && settled {
                    break true;
                }
                if shared.stopped.load(Ordering::Acquire) {
                    drop(state);
                    shared.lock().end_flush();
                    return Err(TransactionError::Closed);
                }
            }
            let tick = Instant::now() + Duration::from_millis(100);
            if tokio::time::timeout_at(deadline.min(tick).into(), progress)
                .await
                .is_err()
                && Instant::now() >= deadline
            {
                break false;
            }
        };
        let v2 = {
            let mut state = shared.lock();
            state.end_flush();
            state.transaction().is_some_and(|t| t.is_v2())
        };
        if drained && !commit {
            self.settle_offsets_in_doubt(txn, deadline, operation, timeout)
                .await?;
        }
        let due = {
            let mut state = shared.lock();
            if !drained {
                return Err(TransactionError::Timeout {
                    operation,
                    after: timeout,
                });
            }
            let bump = state.needs_epoch_bump();
            let pair = state.producer_id();
            let t = state
                .transaction_mut()
                .ok_or(TransactionError::NotTransactional)?;
            // v2: EndTxn bumps the epoch anyway.
            let bump = bump && !v2;
            match t.phase() {
                TransactionPhase::Committing | TransactionPhase::Aborting => {}
                TransactionPhase::AbortableError => return Err(t.abortable_error()),
                _ => {
                    return Err(t.fatal_error().cloned().unwrap_or(
                        TransactionError::InvalidState {
                            operation,
                            state: t.phase(),
                        },
                    ))
                }
            }
            let bump = !commit && bump;
            if !t.needs_end_txn() && !bump {
                t.handle_end_txn(Ok(())).ok();
                None
            } else {
                let end_txn = t.needs_end_txn();
                if end_txn {
                    t.end_txn_sending();
                }
                Some((pair, end_txn, bump))
            }
        };
        let Some((pair, end_txn, bump)) = due else {
            debug!(transactional_id = %txn.id, commit, "empty transaction ended locally");
            return Ok(());
        };
        if !end_txn {
            return self
                .bump_after_abort(txn, pair, deadline, operation, timeout)
                .await;
        }
        let request = end_txn_request(&txn.id, pair, commit);
        let result = txn
            .call(deadline, |conn, timeout| {
                let request = request.clone();
                async move {
                    let max = if v2 { i16::MAX } else { END_TXN_V1_MAX };
                    let version = conn.version(ApiKey::EndTxn)?.min(max);
                    let response = conn.send(&request, version, timeout).await?;
                    Error::check(ApiKey::EndTxn, response.error_code, None)?;
                    // v5 (transactions v2): the producer id and the bumped epoch to go on with.
                    Ok((version >= END_TXN_V2_MIN)
                        .then_some((response.producer_id.0, response.producer_epoch)))
                }
            })
            .await;
        let outcome = {
            let mut state = shared.lock();
            if let Ok(Some((id, epoch))) = &result {
                if *id >= 0 && *epoch >= 0 {
                    debug!(transactional_id = %txn.id, producer_id = id, epoch, "epoch bumped by EndTxn");
                    state.handle_producer_id(*id, *epoch);
                }
            }
            let t = state
                .transaction_mut()
                .ok_or(TransactionError::NotTransactional)?;
            match result {
                // v1 after a failed send: the partition sequences are unresolved, so the epoch
                // is bumped (below) before the transaction counts as ended.
                Ok(_) if bump => Ok(()),
                Ok(_) => t
                    .handle_end_txn(Ok(()))
                    .map_err(|_| TransactionError::Closed),
                Err((error, true)) => {
                    let _ = error;
                    Err(TransactionError::Timeout {
                        operation,
                        after: timeout,
                    })
                }
                Err((error, false)) => {
                    let _ = t.handle_end_txn(Err(error.clone()));
                    Err(match t.phase() {
                        TransactionPhase::AbortableError => t.abortable_error(),
                        _ => t
                            .fatal_error()
                            .cloned()
                            .unwrap_or_else(|| TransactionError::fatal(error)),
                    })
                }
            }
        };
        shared.wake.notify_one();
        outcome?;
        if bump {
            return self
                .bump_after_abort(txn, pair, deadline, operation, timeout)
                .await;
        }
        debug!(transactional_id = %txn.id, commit, "transaction ended");
        Ok(())
    }

    /// An abort after an AddOffsetsToTxn that failed without an answer: asks again, so that
    /// the abort either knows the coordinator holds nothing (ends locally) or ends with
    /// EndTxn(abort). Ending locally over an AddOffsetsToTxn that was in fact applied leaves
    /// the coordinator a transaction that times out with an epoch bump, fencing this
    /// producer at its next call (the Java client likewise re-sends such a request before
    /// its EndTxn).
    async fn settle_offsets_in_doubt(
        &self,
        txn: &TxnCoordinator,
        deadline: Instant,
        operation: &'static str,
        timeout: Duration,
    ) -> Result<(), TransactionError> {
        let (group, pair) = {
            let state = self.handle.shared.lock();
            let group = state
                .transaction()
                .and_then(|t| t.offsets_in_doubt().map(str::to_owned));
            (group, state.producer_id())
        };
        let Some(group) = group else {
            return Ok(());
        };
        debug!(transactional_id = %txn.id, group = %group, "AddOffsetsToTxn in doubt: asked again before the abort");
        match txn.add_offsets(pair, &group, deadline).await {
            Ok(()) => self.with_txn(|t| t.offsets_added()),
            Err((_, true)) => Err(TransactionError::Timeout {
                operation,
                after: timeout,
            }),
            Err((error, false)) => match classify(&error) {
                TxnErrorClass::Fenced | TxnErrorClass::Fatal => {
                    Err(self.fail_call(error, false, operation, timeout))
                }
                // Refused as a whole: the lost request was refused too.
                _ => self.with_txn(|t| t.offsets_refused()),
            },
        }
    }

    /// Transactions v1, after an abort whose transaction had a failed send: InitProducerId
    /// with the current producer id and epoch bumps the epoch (KIP-360) and restarts every
    /// partition's sequence; the abort ends with it. On a timeout the producer stays aborting
    /// (the abort may be called again: the coordinator answers a repeated EndTxn(abort)).
    async fn bump_after_abort(
        &self,
        txn: &TxnCoordinator,
        pair: (i64, i16),
        deadline: Instant,
        operation: &'static str,
        timeout: Duration,
    ) -> Result<(), TransactionError> {
        debug!(transactional_id = %txn.id, "transaction aborted; bumping the epoch (sequences unresolved)");
        self.init_producer_id(txn, pair, deadline, operation, timeout)
            .await?;
        Ok(())
    }
}

fn conn_timeout(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

fn error_code(error: &Error) -> Option<ResponseError> {
    match error {
        Error::Broker { code, .. } => Some(*code),
        _ => None,
    }
}
