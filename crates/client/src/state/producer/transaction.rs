//! [`TransactionState`]: the transactional producer's state machine (transactions v1, KIP-98),
//! without I/O.
//!
//! ```text
//! Uninitialized ─init─▶ Initializing ─InitProducerId ok─▶ Ready ─begin─▶ InTransaction
//!      InTransaction ─commit─▶ Committing ─EndTxn ok─▶ Ready
//!      InTransaction / AbortableError ─abort─▶ Aborting ─EndTxn ok─▶ Ready
//!      InTransaction / Committing ─a send or add fails─▶ AbortableError (commit refused)
//!      any ─fenced / fatal─▶ FatalError (terminal: only close)
//! ```
//!
//! Partitions enter the transaction as records are appended to them ([`note_partition`]);
//! the sender asks for them with AddPartitionsToTxn ([`poll_add_partitions`]) and sends a
//! partition's batches only once the coordinator added it ([`can_send`]). EndTxn is sent only
//! when nothing of the transaction is queued or in flight ([`end_txn_due`]).
//!
//! An AddPartitionsToTxn that failed without an answer (timed out, connection lost) may have
//! been applied: its partitions are *in doubt*. An abort does not end locally while any are:
//! it sends them again until the coordinator answers, then EndTxn(abort) — else the
//! coordinator could hold a transaction the client thinks ended, time it out with an epoch
//! bump and fence the producer at its next call (as the Java client re-sends such a request
//! before its EndTxn).
//!
//! [`note_partition`]: TransactionState::note_partition
//! [`poll_add_partitions`]: TransactionState::poll_add_partitions
//! [`can_send`]: TransactionState::can_send
//! [`end_txn_due`]: TransactionState::end_txn_due

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use super::batch::TopicPartition;
use crate::error::Error;
use crate::producer::{ProduceError, TransactionError};

/// The AddPartitionsToTxn retry backoff after CONCURRENT_TRANSACTIONS while no partition is
/// in the transaction yet (the previous transaction's markers are still being written), when
/// shorter than `retry.backoff.ms`: the Java client's `ADD_PARTITIONS_RETRY_BACKOFF_MS`, so
/// the first records of a transaction begun right after the last one ended do not wait a
/// whole backoff (and expire under a short `delivery.timeout.ms`).
pub(crate) const CONCURRENT_ADD_BACKOFF: Duration = Duration::from_millis(20);

/// Where the transactional producer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionPhase {
    /// `init_transactions` not called yet.
    Uninitialized,
    /// `init_transactions` under way (or timed out: call it again).
    Initializing,
    /// No transaction open.
    Ready,
    /// `begin_transaction` called: sends belong to the transaction.
    InTransaction,
    /// `commit_transaction` under way (or timed out: call it again).
    Committing,
    /// `abort_transaction` under way (or timed out: call it again).
    Aborting,
    /// The transaction cannot commit any more: abort it.
    AbortableError,
    /// Only close is left.
    FatalError,
}

/// What a transactional request's failure calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnErrorClass {
    /// The coordinator moved or its connection failed: look it up again and retry.
    Rediscover,
    /// Retry after a backoff (`CONCURRENT_TRANSACTIONS`, coordinator loading, timeouts).
    Retry,
    /// The transaction must be aborted.
    Abortable,
    /// Another producer took over the transactional id.
    Fenced,
    /// The producer cannot continue.
    Fatal,
}

/// Classifies the failure of a transactional request (InitProducerId, AddPartitionsToTxn,
/// AddOffsetsToTxn, TxnOffsetCommit, EndTxn) as the Java client does.
///
/// ```
/// use kafka_protocol::error::ResponseError;
/// use kafka_protocol::messages::ApiKey;
/// use kafkit::state::producer::transaction::{classify, TxnErrorClass};
/// use kafkit::Error;
///
/// let broker = |code| Error::Broker { api: ApiKey::EndTxn, code, message: None };
/// assert_eq!(classify(&broker(ResponseError::ConcurrentTransactions)), TxnErrorClass::Retry);
/// assert_eq!(classify(&broker(ResponseError::NotCoordinator)), TxnErrorClass::Rediscover);
/// assert_eq!(classify(&broker(ResponseError::ProducerFenced)), TxnErrorClass::Fenced);
/// ```
pub fn classify(error: &Error) -> TxnErrorClass {
    match error {
        Error::Broker { code, .. } => classify_code(*code),
        Error::UnknownBroker { .. } => TxnErrorClass::Rediscover,
        e if e.is_retriable() || e.is_outcome_unknown() => TxnErrorClass::Rediscover,
        _ => TxnErrorClass::Fatal,
    }
}

/// [`classify`] for a broker error code.
pub fn classify_code(code: ResponseError) -> TxnErrorClass {
    use ResponseError as E;
    match code {
        E::NotCoordinator | E::CoordinatorNotAvailable | E::RequestTimedOut => {
            TxnErrorClass::Rediscover
        }
        E::ConcurrentTransactions | E::CoordinatorLoadInProgress | E::UnknownTopicOrPartition => {
            TxnErrorClass::Retry
        }
        E::ProducerFenced | E::InvalidProducerEpoch => TxnErrorClass::Fenced,
        E::TopicAuthorizationFailed
        | E::GroupAuthorizationFailed
        | E::OperationNotAttempted
        | E::TransactionAbortable
        | E::UnknownMemberId
        | E::IllegalGeneration
        | E::FencedInstanceId
        | E::RebalanceInProgress
        | E::StaleMemberEpoch
        | E::InvalidProducerIdMapping
        | E::UnknownProducerId => TxnErrorClass::Abortable,
        code if code.is_retriable() => TxnErrorClass::Retry,
        _ => TxnErrorClass::Fatal,
    }
}

/// How a failed transactional call ends, after the state took note of it: a call that ran
/// out of time is [`TransactionError::Timeout`] (the state is as it was: call again), else the
/// error's class decides between abortable and fatal. Used by `producer/transaction.rs` and the
/// simulation's copy of its calls.
pub(crate) fn call_error(
    error: Error,
    timed_out: bool,
    operation: &'static str,
    after: Duration,
) -> TransactionError {
    if timed_out {
        return TransactionError::Timeout { operation, after };
    }
    match classify(&error) {
        TxnErrorClass::Abortable => TransactionError::abortable(error),
        _ => TransactionError::fatal(error),
    }
}

/// Whether AddPartitionsToTxn answers say the coordinator moved (a partition answered
/// NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE): its cached address must be looked up again
/// before the partitions are asked for again. AddPartitionsToTxn v1–3 has no top-level error,
/// so the move shows only per partition; asking the same broker again never succeeds (found
/// by the simulation, `sim::producer::transactions_coordinator_moves`: every commit after a
/// coordinator move stalled until its records expired).
///
/// ```
/// use kafka_protocol::error::ResponseError;
/// use kafkit::state::producer::transaction::add_partitions_lookup_again;
/// use kafkit::state::producer::TopicPartition;
///
/// let tp = TopicPartition::new("orders", 0);
/// assert!(add_partitions_lookup_again(&[(tp.clone(), Some(ResponseError::NotCoordinator))]));
/// assert!(!add_partitions_lookup_again(&[(tp.clone(), Some(ResponseError::ConcurrentTransactions))]));
/// assert!(!add_partitions_lookup_again(&[(tp, None)]));
/// ```
pub fn add_partitions_lookup_again(answers: &[(TopicPartition, Option<ResponseError>)]) -> bool {
    answers
        .iter()
        .any(|(_, code)| code.is_some_and(|c| classify_code(c) == TxnErrorClass::Rediscover))
}

/// The transactional producer's state.
#[derive(Debug)]
pub struct TransactionState {
    transactional_id: String,
    phase: TransactionPhase,
    /// Partitions the coordinator added to the open transaction.
    added: HashSet<TopicPartition>,
    /// Partitions with appended records, not asked for yet.
    pending: BTreeSet<TopicPartition>,
    /// Partitions in the AddPartitionsToTxn in flight.
    adding: Vec<TopicPartition>,
    /// Partitions whose AddPartitionsToTxn failed without an answer: the coordinator may have
    /// added them. Cleared by an answer for them.
    in_doubt: BTreeSet<TopicPartition>,
    add_not_before: Option<Instant>,
    /// Offsets were added (AddOffsetsToTxn) to the open transaction.
    offsets_added: bool,
    /// The group of an AddOffsetsToTxn that failed without an answer (v1): the coordinator
    /// may have added the group's offsets partition. An abort sends it again first.
    offsets_in_doubt: Option<String>,
    /// EndTxn was sent for the closing transaction (its outcome may be unknown).
    end_txn_sent: bool,
    /// The first failure of the open transaction.
    abortable: Option<ProduceError>,
    /// Why the producer cannot continue.
    fatal: Option<TransactionError>,
    /// Transactions v2 (KIP-890): Produce adds partitions itself, EndTxn bumps the epoch.
    v2: bool,
    /// A batch of the open transaction was drained into a Produce request (v2: the broker may
    /// have added its partition).
    produced: bool,
}

impl TransactionState {
    /// The state of a producer with `transactional.id` `id`, not initialized.
    pub fn new(id: impl Into<String>) -> Self {
        TransactionState {
            transactional_id: id.into(),
            phase: TransactionPhase::Uninitialized,
            added: HashSet::new(),
            pending: BTreeSet::new(),
            adding: Vec::new(),
            in_doubt: BTreeSet::new(),
            add_not_before: None,
            offsets_added: false,
            offsets_in_doubt: None,
            end_txn_sent: false,
            abortable: None,
            fatal: None,
            v2: false,
            produced: false,
        }
    }

    /// Chooses the protocol (at `init_transactions`): transactions v2 (KIP-890) when the
    /// cluster finalized `transaction.version` ≥ 2 and the broker speaks Produce v12, EndTxn
    /// v5 and TxnOffsetCommit v5; v1 otherwise.
    pub fn set_v2(&mut self, v2: bool) {
        self.v2 = v2;
    }

    /// Whether transactions v2 (KIP-890) are in use.
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// A batch of the open transaction was drained into a Produce request.
    pub fn batch_drained(&mut self) {
        self.produced = true;
    }

    /// The `transactional.id`.
    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// The current phase.
    pub fn phase(&self) -> TransactionPhase {
        self.phase
    }

    fn invalid(&self, operation: &'static str) -> TransactionError {
        if let Some(fatal) = &self.fatal {
            return fatal.clone();
        }
        TransactionError::InvalidState {
            operation,
            state: self.phase,
        }
    }

    /// `init_transactions` starts (or starts again after a timeout).
    pub fn start_init(&mut self) -> Result<(), TransactionError> {
        match self.phase {
            TransactionPhase::Uninitialized | TransactionPhase::Initializing => {
                self.phase = TransactionPhase::Initializing;
                Ok(())
            }
            _ => Err(self.invalid("init_transactions")),
        }
    }

    /// InitProducerId answered: no transaction is open.
    pub fn init_done(&mut self) {
        if self.phase != TransactionPhase::FatalError {
            self.phase = TransactionPhase::Ready;
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.added.clear();
        self.pending.clear();
        self.adding.clear();
        self.in_doubt.clear();
        self.add_not_before = None;
        self.offsets_added = false;
        self.offsets_in_doubt = None;
        self.end_txn_sent = false;
        self.abortable = None;
        self.produced = false;
    }

    /// `begin_transaction`.
    pub fn begin(&mut self) -> Result<(), TransactionError> {
        match self.phase {
            TransactionPhase::Ready => {
                self.clear();
                self.phase = TransactionPhase::InTransaction;
                Ok(())
            }
            _ => Err(self.invalid("begin_transaction")),
        }
    }

    /// Whether a record may be appended now: only inside a transaction.
    pub fn check_send(&self) -> Result<(), ProduceError> {
        match self.phase {
            TransactionPhase::InTransaction => Ok(()),
            TransactionPhase::AbortableError => {
                Err(ProduceError::Transaction(Box::new(self.abortable_error())))
            }
            _ => Err(ProduceError::Transaction(Box::new(self.invalid("send")))),
        }
    }

    /// A record was appended to `tp`: it joins the transaction (asked for at the next
    /// [`poll_add_partitions`](Self::poll_add_partitions)) unless it already has.
    /// With transactions v2 the partition is in at once: its first Produce adds it.
    pub fn note_partition(&mut self, tp: &TopicPartition) {
        if self.v2 {
            if !self.added.contains(tp) {
                self.added.insert(tp.clone());
            }
            return;
        }
        if !self.added.contains(tp) && !self.pending.contains(tp) && !self.adding.contains(tp) {
            self.pending.insert(tp.clone());
        }
    }

    /// Whether batches of `tp` may be sent: the coordinator added it to the open transaction,
    /// which is still meant to commit.
    pub fn can_send(&self, tp: &TopicPartition) -> bool {
        matches!(
            self.phase,
            TransactionPhase::InTransaction | TransactionPhase::Committing
        ) && self.added.contains(tp)
    }

    /// Whether partitions still pending are asked for: while the transaction may commit, and
    /// while aborting (then only partitions in doubt are pending: see
    /// [`begin_abort`](Self::begin_abort)).
    fn adds_wanted(&self) -> bool {
        matches!(
            self.phase,
            TransactionPhase::InTransaction
                | TransactionPhase::Committing
                | TransactionPhase::Aborting
        )
    }

    /// The partitions to add now with one AddPartitionsToTxn (none while one is in flight,
    /// during a backoff, or when the transaction will not commit; while aborting, only those
    /// whose earlier AddPartitionsToTxn is in doubt).
    pub fn poll_add_partitions(&mut self, now: Instant) -> Option<Vec<TopicPartition>> {
        if !self.adds_wanted() || !self.adding.is_empty() || self.pending.is_empty() {
            return None;
        }
        if self.add_not_before.is_some_and(|at| now < at) {
            return None;
        }
        self.adding = std::mem::take(&mut self.pending).into_iter().collect();
        Some(self.adding.clone())
    }

    /// When a delayed AddPartitionsToTxn is due: `None` when
    /// [`poll_add_partitions`](Self::poll_add_partitions) would not ask for one then either
    /// (the transaction will not commit), so the sender loop does not wake for it in a loop
    /// (found by the simulation, `sim::producer`: an AddPartitionsToTxn that timed out during
    /// an abort left a past due time that spun the loop until the abort ended).
    pub fn next_add_at(&self) -> Option<Instant> {
        (self.adds_wanted() && !self.pending.is_empty() && self.adding.is_empty())
            .then_some(self.add_not_before)
            .flatten()
    }

    /// Whether an AddPartitionsToTxn is in flight.
    pub fn adding_partitions(&self) -> bool {
        !self.adding.is_empty()
    }

    /// Whether every AddPartitionsToTxn this transaction needs has been answered: none in
    /// flight and none pending that will be sent. `end_transaction` waits for it before it
    /// decides between EndTxn and ending locally ([`needs_end_txn`](Self::needs_end_txn)):
    /// while aborting, partitions in doubt are sent again and must be answered first.
    pub fn adds_settled(&self) -> bool {
        self.adding.is_empty() && (self.pending.is_empty() || !self.adds_wanted())
    }

    /// Partitions whose AddPartitionsToTxn failed without an answer (tests).
    pub fn partitions_in_doubt(&self) -> impl Iterator<Item = &TopicPartition> {
        self.in_doubt.iter()
    }

    /// The AddPartitionsToTxn answer: per-partition errors (`None`: added), or the request's
    /// failure. Retriable failures go back to pending after `backoff` (at most
    /// 20 ms, `CONCURRENT_ADD_BACKOFF`, after CONCURRENT_TRANSACTIONS with no partition
    /// added yet).
    pub fn handle_add_partitions(
        &mut self,
        now: Instant,
        result: Result<Vec<(TopicPartition, Option<ResponseError>)>, Error>,
        backoff: Duration,
    ) {
        let adding = std::mem::take(&mut self.adding);
        let answers = match result {
            Ok(answers) => answers,
            Err(error) => {
                match classify(&error) {
                    TxnErrorClass::Rediscover | TxnErrorClass::Retry => {
                        // No answer: the request may have reached the coordinator.
                        self.in_doubt.extend(adding.iter().cloned());
                        self.retry_add(now, adding, backoff)
                    }
                    TxnErrorClass::Fenced => self.fenced(error_code(&error)),
                    TxnErrorClass::Abortable => self.abortable(ProduceError::Client(error)),
                    TxnErrorClass::Fatal => self.fatal(TransactionError::fatal(error)),
                }
                return;
            }
        };
        let mut retry = Vec::new();
        let mut concurrent = false;
        for tp in adding {
            let code = answers
                .iter()
                .find(|(t, _)| *t == tp)
                .map_or(Some(ResponseError::UnknownServerError), |(_, c)| *c);
            let Some(code) = code else {
                self.in_doubt.remove(&tp);
                self.added.insert(tp);
                continue;
            };
            concurrent |= code == ResponseError::ConcurrentTransactions;
            match classify_code(code) {
                // Not added by this request; one in doubt stays so (an earlier one may have
                // been applied) and is asked for again.
                TxnErrorClass::Rediscover | TxnErrorClass::Retry => retry.push(tp),
                // Refused (the coordinator checks every partition of a request before adding
                // any, so an earlier request for it was refused too): no longer in doubt.
                // OPERATION_NOT_ATTEMPTED: a sibling partition failed, this one was not tried.
                TxnErrorClass::Abortable if code == ResponseError::OperationNotAttempted => {
                    self.in_doubt.remove(&tp);
                }
                TxnErrorClass::Abortable => {
                    self.in_doubt.remove(&tp);
                    self.abortable(ProduceError::Broker {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        code,
                        message: Some("AddPartitionsToTxn".to_owned()),
                    })
                }
                TxnErrorClass::Fenced => self.fenced(Some(code)),
                TxnErrorClass::Fatal => {
                    self.fatal(TransactionError::Fatal(Box::new(ProduceError::Broker {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        code,
                        message: Some("AddPartitionsToTxn".to_owned()),
                    })))
                }
            }
        }
        if retry.is_empty() {
            self.add_not_before = None;
        } else if concurrent && self.added.is_empty() {
            self.retry_add(now, retry, backoff.min(CONCURRENT_ADD_BACKOFF));
        } else {
            self.retry_add(now, retry, backoff);
        }
    }

    fn retry_add(&mut self, now: Instant, partitions: Vec<TopicPartition>, backoff: Duration) {
        self.add_not_before = Some(now + backoff);
        self.pending.extend(partitions);
        self.keep_only_doubtful_adds();
    }

    /// Aborting: a partition never added needs no AddPartitionsToTxn any more; one in doubt
    /// is asked for again so that EndTxn(abort) closes whatever the coordinator holds.
    fn keep_only_doubtful_adds(&mut self) {
        if self.phase == TransactionPhase::Aborting {
            let in_doubt = &self.in_doubt;
            self.pending.retain(|tp| in_doubt.contains(tp));
        }
    }

    /// `send_offsets_to_transaction` may run now.
    pub fn check_send_offsets(&self) -> Result<(), TransactionError> {
        match self.phase {
            TransactionPhase::InTransaction => Ok(()),
            TransactionPhase::AbortableError => Err(self.abortable_error()),
            _ => Err(self.invalid("send_offsets_to_transaction")),
        }
    }

    /// AddOffsetsToTxn succeeded: the transaction has something to end even without records.
    pub fn offsets_added(&mut self) {
        self.offsets_added = true;
        self.offsets_in_doubt = None;
    }

    /// AddOffsetsToTxn for `group` failed without an answer (timed out, connection lost):
    /// the coordinator may have added the group. An abort asks again before it decides
    /// between EndTxn and ending locally ([`offsets_in_doubt`](Self::offsets_in_doubt)).
    pub fn offsets_outcome_unknown(&mut self, group: &str) {
        if !self.offsets_added {
            self.offsets_in_doubt = Some(group.to_owned());
        }
    }

    /// The group whose AddOffsetsToTxn is in doubt, while aborting: the driver sends it
    /// again, then reports [`offsets_added`](Self::offsets_added) or
    /// [`offsets_refused`](Self::offsets_refused).
    pub fn offsets_in_doubt(&self) -> Option<&str> {
        match self.phase {
            TransactionPhase::Aborting => self.offsets_in_doubt.as_deref(),
            _ => None,
        }
    }

    /// The coordinator refused the AddOffsetsToTxn asked again (not added): nothing is in
    /// doubt any more.
    pub fn offsets_refused(&mut self) {
        self.offsets_in_doubt = None;
    }

    /// `commit_transaction` starts (or starts again after a timeout).
    pub fn begin_commit(&mut self) -> Result<(), TransactionError> {
        match self.phase {
            TransactionPhase::InTransaction | TransactionPhase::Committing => {
                self.phase = TransactionPhase::Committing;
                Ok(())
            }
            TransactionPhase::AbortableError => Err(self.abortable_error()),
            _ => Err(self.invalid("commit_transaction")),
        }
    }

    /// `abort_transaction` starts (or starts again after a timeout). A commit whose EndTxn was
    /// already sent cannot turn into an abort (its outcome may be a commit): retry the commit.
    /// Partitions not asked for yet are dropped; those in doubt stay pending (sent again).
    pub fn begin_abort(&mut self) -> Result<(), TransactionError> {
        match self.phase {
            TransactionPhase::InTransaction
            | TransactionPhase::AbortableError
            | TransactionPhase::Aborting => {}
            TransactionPhase::Committing if !self.end_txn_sent => {}
            _ => return Err(self.invalid("abort_transaction")),
        }
        self.phase = TransactionPhase::Aborting;
        self.keep_only_doubtful_adds();
        Ok(())
    }

    /// Why queued (never drained) batches must fail now instead of being sent: the
    /// transaction is aborting, must abort, or the producer is fenced.
    pub fn fail_queued_with(&self) -> Option<ProduceError> {
        match self.phase {
            TransactionPhase::Aborting => Some(ProduceError::Transaction(Box::new(
                TransactionError::Abortable {
                    cause: Box::new(self.abortable.clone().unwrap_or(ProduceError::Aborted)),
                },
            ))),
            TransactionPhase::AbortableError => {
                Some(ProduceError::Transaction(Box::new(self.abortable_error())))
            }
            TransactionPhase::FatalError => self
                .fatal
                .clone()
                .map(|f| ProduceError::Transaction(Box::new(f))),
            _ => None,
        }
    }

    /// EndTxn to send now, if any: `Some(true)` commit, `Some(false)` abort — only once nothing
    /// of the transaction is queued or in flight (`idle`) and every AddPartitionsToTxn is
    /// settled ([`adds_settled`](Self::adds_settled)).
    /// `None` also when the transaction is empty: see [`needs_end_txn`](Self::needs_end_txn).
    pub fn end_txn_due(&self, idle: bool) -> Option<bool> {
        if !idle || !self.adds_settled() {
            return None;
        }
        match self.phase {
            TransactionPhase::Committing => Some(true),
            TransactionPhase::Aborting => Some(false),
            _ => None,
        }
    }

    /// Whether the coordinator knows of the transaction (a partition or offsets were added):
    /// an empty transaction ends locally, without EndTxn.
    pub fn needs_end_txn(&self) -> bool {
        if self.v2 {
            // v2: partitions are added by their Produce; appended but never drained is nothing.
            return self.offsets_added || self.produced || self.end_txn_sent;
        }
        self.offsets_added || !self.added.is_empty() || self.end_txn_sent
    }

    /// EndTxn is about to be sent.
    pub fn end_txn_sending(&mut self) {
        self.end_txn_sent = true;
    }

    /// EndTxn answered (or the transaction was empty): `Ok` ends the transaction. A failure is
    /// classified: retriable ones are returned for the caller to retry, fenced and fatal ones
    /// end the producer, an abortable one fails a commit.
    pub fn handle_end_txn(&mut self, result: Result<(), Error>) -> Result<(), TxnErrorClass> {
        match result {
            Ok(()) => {
                if matches!(
                    self.phase,
                    TransactionPhase::Committing | TransactionPhase::Aborting
                ) {
                    self.phase = TransactionPhase::Ready;
                    self.clear();
                }
                Ok(())
            }
            Err(error) => {
                let class = classify(&error);
                match class {
                    TxnErrorClass::Rediscover | TxnErrorClass::Retry => {}
                    TxnErrorClass::Fenced => self.fenced(error_code(&error)),
                    TxnErrorClass::Abortable if self.phase == TransactionPhase::Committing => {
                        self.end_txn_sent = false;
                        self.abortable(ProduceError::Client(error));
                    }
                    TxnErrorClass::Abortable | TxnErrorClass::Fatal => {
                        self.fatal(TransactionError::fatal(error));
                    }
                }
                Err(class)
            }
        }
    }

    /// A failure inside the transaction (a batch failed, offsets could not be added): it can
    /// no longer commit. The first cause is kept.
    pub fn abortable(&mut self, cause: ProduceError) {
        match self.phase {
            TransactionPhase::InTransaction | TransactionPhase::Committing => {
                self.phase = TransactionPhase::AbortableError;
                self.abortable = Some(cause);
            }
            // Already abortable (that phase is set only with its cause, which stays until
            // `clear` ends the transaction: the first cause is kept), or nothing to spoil.
            _ => {}
        }
    }

    /// The producer was fenced (a newer producer with the same transactional id): terminal.
    pub fn fenced(&mut self, code: Option<ResponseError>) {
        self.fatal(TransactionError::Fenced {
            transactional_id: self.transactional_id.clone(),
            code: code.unwrap_or(ResponseError::ProducerFenced),
        });
    }

    /// A fatal error: terminal, the first one is kept.
    pub fn fatal(&mut self, error: TransactionError) {
        if self.fatal.is_none() {
            self.fatal = Some(error);
        }
        self.phase = TransactionPhase::FatalError;
    }

    /// The fatal error, if any.
    pub fn fatal_error(&self) -> Option<&TransactionError> {
        self.fatal.as_ref()
    }

    /// The abortable error of the open transaction.
    pub fn abortable_error(&self) -> TransactionError {
        match &self.abortable {
            Some(cause) => TransactionError::Abortable {
                cause: Box::new(cause.clone()),
            },
            None => self.invalid("commit_transaction"),
        }
    }

    /// A batch of the transaction failed with `error`: fenced and authorization errors are
    /// fatal, anything else makes the transaction abortable. Failures caused by the abort
    /// itself change nothing.
    pub fn batch_failed(&mut self, error: &ProduceError) {
        match error {
            ProduceError::Transaction(_) => {}
            ProduceError::Broker { code, .. } => match classify_code(*code) {
                TxnErrorClass::Fenced => self.fenced(Some(*code)),
                _ if *code == ResponseError::TransactionalIdAuthorizationFailed => {
                    self.fatal(TransactionError::Fatal(Box::new(error.clone())));
                }
                _ => self.abortable(error.clone()),
            },
            _ => self.abortable(error.clone()),
        }
    }

    /// The partitions added to the open transaction (tests).
    pub fn added_partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.added.iter()
    }
}

fn error_code(error: &Error) -> Option<ResponseError> {
    match error {
        Error::Broker { code, .. } => Some(*code),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
