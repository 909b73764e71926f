//! Scripted and property tests of the transaction state, alone and inside the sender state:
//! virtual time, no sockets.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafkit_wire::record::BatchReader;
use proptest::prelude::*;

use super::*;
use crate::state::producer::tests::{config, leader, record, tp, LINGER};
use crate::state::producer::{PartitionResponse, SenderState};

const BACKOFF: Duration = Duration::from_millis(100);

fn broker(api: ApiKey, code: ResponseError) -> Error {
    Error::Broker {
        api,
        code,
        message: None,
    }
}

fn ready() -> TransactionState {
    let mut t = TransactionState::new("tx");
    t.start_init().unwrap();
    t.init_done();
    t
}

/// A transaction (offsets added, no record) whose EndTxn(commit) is in flight.
fn commit_sending() -> TransactionState {
    let mut t = ready();
    t.begin().unwrap();
    t.offsets_added();
    t.begin_commit().unwrap();
    t.end_txn_sending();
    t
}

#[test]
fn a_transaction_goes_ready_begin_add_commit_ready() {
    let now = Instant::now();
    let mut t = TransactionState::new("tx");
    assert!(matches!(
        t.begin(),
        Err(TransactionError::InvalidState {
            state: TransactionPhase::Uninitialized,
            ..
        })
    ));
    t.start_init().unwrap();
    assert_eq!(t.phase(), TransactionPhase::Initializing);
    t.init_done();
    assert!(t.check_send().is_err(), "no send outside a transaction");
    t.begin().unwrap();
    t.check_send().unwrap();
    t.note_partition(&tp(0));
    t.note_partition(&tp(1));
    t.note_partition(&tp(0));
    assert!(!t.can_send(&tp(0)));
    let adding = t.poll_add_partitions(now).unwrap();
    assert_eq!(adding, vec![tp(0), tp(1)]);
    // One AddPartitionsToTxn at a time; later partitions wait for the next.
    t.note_partition(&tp(2));
    assert!(t.poll_add_partitions(now).is_none());
    t.handle_add_partitions(now, Ok(vec![(tp(0), None), (tp(1), None)]), BACKOFF);
    assert!(t.can_send(&tp(0)) && t.can_send(&tp(1)) && !t.can_send(&tp(2)));
    assert_eq!(t.poll_add_partitions(now).unwrap(), vec![tp(2)]);
    t.handle_add_partitions(now, Ok(vec![(tp(2), None)]), BACKOFF);
    t.begin_commit().unwrap();
    assert!(
        t.can_send(&tp(2)),
        "a commit still sends what the transaction holds"
    );
    assert_eq!(
        t.end_txn_due(false),
        None,
        "no EndTxn with batches in flight"
    );
    assert_eq!(t.end_txn_due(true), Some(true));
    assert!(t.needs_end_txn());
    t.end_txn_sending();
    t.handle_end_txn(Ok(())).unwrap();
    assert_eq!(t.phase(), TransactionPhase::Ready);
    assert!(!t.can_send(&tp(0)), "partitions belong to one transaction");
    assert!(!t.needs_end_txn());
}

#[test]
fn a_failed_send_makes_commit_fail_with_the_first_cause_and_abort_recover() {
    let mut t = ready();
    t.begin().unwrap();
    let first = ProduceError::Broker {
        topic: "t".into(),
        partition: 0,
        code: ResponseError::MessageTooLarge,
        message: None,
    };
    t.batch_failed(&first);
    t.batch_failed(&ProduceError::Encode("second".into()));
    assert_eq!(t.phase(), TransactionPhase::AbortableError);
    match t.begin_commit() {
        Err(TransactionError::Abortable { cause }) => {
            assert!(matches!(
                *cause,
                ProduceError::Broker {
                    code: ResponseError::MessageTooLarge,
                    ..
                }
            ))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        t.check_send(),
        Err(ProduceError::Transaction(e)) if e.is_abortable()
    ));
    assert!(
        t.fail_queued_with().is_some(),
        "queued batches fail, not sent"
    );
    t.begin_abort().unwrap();
    assert_eq!(t.end_txn_due(true), Some(false));
    t.handle_end_txn(Ok(())).unwrap();
    assert_eq!(t.phase(), TransactionPhase::Ready);
    t.begin().unwrap();
    t.check_send().unwrap();
}

#[test]
fn fenced_is_terminal() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.poll_add_partitions(now).unwrap();
    t.handle_add_partitions(
        now,
        Ok(vec![(tp(0), Some(ResponseError::ProducerFenced))]),
        BACKOFF,
    );
    assert_eq!(t.phase(), TransactionPhase::FatalError);
    let fenced = |e: &TransactionError| matches!(e, TransactionError::Fenced { .. });
    assert!(t.begin_commit().is_err_and(|e| fenced(&e)));
    assert!(t.begin_abort().is_err_and(|e| fenced(&e)));
    assert!(t.begin().is_err_and(|e| fenced(&e)));
    assert!(t.start_init().is_err_and(|e| fenced(&e)));
    assert!(t.check_send_offsets().is_err_and(|e| fenced(&e)));
    assert!(matches!(t.check_send(), Err(ProduceError::Transaction(e)) if e.is_fatal()));
    // Nothing brings it back.
    t.init_done();
    let _ = t.handle_end_txn(Ok(()));
    t.abortable(ProduceError::Aborted);
    assert_eq!(t.phase(), TransactionPhase::FatalError);
}

#[test]
fn invalid_producer_epoch_on_a_transactional_call_is_fenced() {
    let mut t = commit_sending();
    let class = t.handle_end_txn(Err(broker(
        ApiKey::EndTxn,
        ResponseError::InvalidProducerEpoch,
    )));
    assert_eq!(class, Err(TxnErrorClass::Fenced));
    assert!(t.fatal_error().is_some_and(TransactionError::is_fatal));
}

#[test]
fn retriable_add_errors_wait_a_backoff_then_ask_again() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.note_partition(&tp(1));
    t.poll_add_partitions(now).unwrap();
    t.handle_add_partitions(
        now,
        Ok(vec![
            (tp(0), None),
            (tp(1), Some(ResponseError::ConcurrentTransactions)),
        ]),
        BACKOFF,
    );
    assert!(t.can_send(&tp(0)) && !t.can_send(&tp(1)));
    assert_eq!(t.next_add_at(), Some(now + BACKOFF));
    assert!(t.poll_add_partitions(now).is_none());
    assert_eq!(t.poll_add_partitions(now + BACKOFF).unwrap(), vec![tp(1)]);
    // The coordinator moved: the whole request again, later.
    t.handle_add_partitions(
        now + BACKOFF,
        Err(broker(
            ApiKey::AddPartitionsToTxn,
            ResponseError::NotCoordinator,
        )),
        BACKOFF,
    );
    assert_eq!(t.phase(), TransactionPhase::InTransaction);
    assert_eq!(
        t.poll_add_partitions(now + BACKOFF * 2).unwrap(),
        vec![tp(1)]
    );
    // An authorization failure: the transaction must abort.
    t.handle_add_partitions(
        now,
        Ok(vec![(tp(1), Some(ResponseError::TopicAuthorizationFailed))]),
        BACKOFF,
    );
    assert_eq!(t.phase(), TransactionPhase::AbortableError);
}

/// CONCURRENT_TRANSACTIONS for the first partitions of a transaction (the last one's markers
/// are being written) is asked again after the short backoff, as the Java client does; once a
/// partition is in, after the full one (found by the simulation: with
/// `delivery.timeout.ms` < `retry.backoff.ms`, a transaction begun right after a commit lost
/// its records to expiry).
#[test]
fn concurrent_transactions_on_the_first_add_retries_after_the_short_backoff() {
    let now = Instant::now();
    let concurrent = Some(ResponseError::ConcurrentTransactions);
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.poll_add_partitions(now).unwrap();
    t.handle_add_partitions(now, Ok(vec![(tp(0), concurrent)]), BACKOFF);
    assert_eq!(t.next_add_at(), Some(now + CONCURRENT_ADD_BACKOFF));
    assert!(t
        .poll_add_partitions(now + CONCURRENT_ADD_BACKOFF / 2)
        .is_none());
    let later = now + CONCURRENT_ADD_BACKOFF;
    assert_eq!(t.poll_add_partitions(later).unwrap(), vec![tp(0)]);
    t.handle_add_partitions(later, Ok(vec![(tp(0), None)]), BACKOFF);
    // Once a partition is in the transaction: the full backoff.
    t.note_partition(&tp(1));
    t.poll_add_partitions(later).unwrap();
    t.handle_add_partitions(later, Ok(vec![(tp(1), concurrent)]), BACKOFF);
    assert_eq!(t.next_add_at(), Some(later + BACKOFF));
    // Another retriable error on the first add: the full backoff too.
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.poll_add_partitions(now).unwrap();
    let loading = Some(ResponseError::CoordinatorLoadInProgress);
    t.handle_add_partitions(now, Ok(vec![(tp(0), loading)]), BACKOFF);
    assert_eq!(t.next_add_at(), Some(now + BACKOFF));
}

fn add_timed_out() -> Error {
    Error::RequestTimedOut {
        broker: "b".into(),
        api: ApiKey::AddPartitionsToTxn,
        after: BACKOFF,
    }
}

/// Partitions never asked for need no AddPartitionsToTxn once the transaction aborts: no
/// request and no wake-up time for one (a past wake-up time spun the sender loop until the
/// abort ended; found by the simulation, `sim::producer::transactions_timeouts_and_faults`).
#[test]
fn no_add_partitions_wake_up_while_aborting() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    assert!(t.poll_add_partitions(now).is_some());
    t.handle_add_partitions(
        now,
        Ok(vec![(tp(0), Some(ResponseError::ConcurrentTransactions))]),
        BACKOFF,
    );
    t.note_partition(&tp(1));
    t.begin_abort().unwrap();
    let later = now + BACKOFF * 2;
    assert!(
        t.poll_add_partitions(later).is_none(),
        "aborting: nothing in doubt, nothing to add"
    );
    assert_eq!(t.next_add_at(), None, "so nothing to wake up for");
    assert!(t.adds_settled());
    assert!(
        !t.needs_end_txn(),
        "the coordinator holds nothing: ends locally"
    );
}

/// An AddPartitionsToTxn that failed without an answer may have been applied: an abort sends
/// it again and ends with EndTxn once the coordinator answered, never locally (else the
/// coordinator holds a transaction open that times out with an epoch bump and fences the
/// idle producer; found by the simulation, `sim::producer::transactions_lost_adds_then_idle`).
#[test]
fn an_abort_resends_an_add_in_doubt_then_needs_end_txn() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.note_partition(&tp(1));
    assert_eq!(t.poll_add_partitions(now).unwrap(), vec![tp(0), tp(1)]);
    t.handle_add_partitions(now, Err(add_timed_out()), BACKOFF);
    assert_eq!(
        t.partitions_in_doubt().cloned().collect::<Vec<_>>(),
        vec![tp(0), tp(1)]
    );
    t.note_partition(&tp(2));
    t.begin_abort().unwrap();
    assert!(!t.adds_settled(), "the abort waits for the adds in doubt");
    assert_eq!(t.end_txn_due(true), None);
    assert!(t.poll_add_partitions(now).is_none(), "after the backoff");
    assert_eq!(t.next_add_at(), Some(now + BACKOFF));
    let later = now + BACKOFF;
    assert_eq!(
        t.poll_add_partitions(later).unwrap(),
        vec![tp(0), tp(1)],
        "partition 2 was never asked for: dropped"
    );
    // Lost again: still in doubt, asked for again.
    t.handle_add_partitions(later, Err(add_timed_out()), BACKOFF);
    assert!(!t.adds_settled());
    let later = later + BACKOFF;
    assert_eq!(t.poll_add_partitions(later).unwrap(), vec![tp(0), tp(1)]);
    // A retriable answer does not settle a partition in doubt (the lost request may have
    // been applied); an answer that adds it does.
    t.handle_add_partitions(
        later,
        Ok(vec![
            (tp(0), None),
            (tp(1), Some(ResponseError::ConcurrentTransactions)),
        ]),
        BACKOFF,
    );
    assert!(!t.adds_settled());
    let later = later + BACKOFF;
    assert_eq!(t.poll_add_partitions(later).unwrap(), vec![tp(1)]);
    t.handle_add_partitions(later, Ok(vec![(tp(1), None)]), BACKOFF);
    assert!(t.adds_settled());
    assert_eq!(t.partitions_in_doubt().count(), 0);
    assert_eq!(t.end_txn_due(true), Some(false));
    assert!(
        t.needs_end_txn(),
        "EndTxn(abort) closes what the coordinator added"
    );
    assert!(!t.can_send(&tp(0)), "aborting: nothing is produced");
}

/// A refusal settles a partition in doubt: the coordinator checks a request's partitions
/// before adding any, so the lost request was refused as well.
#[test]
fn a_refused_add_settles_a_partition_in_doubt() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.note_partition(&tp(1));
    t.poll_add_partitions(now).unwrap();
    t.handle_add_partitions(now, Err(add_timed_out()), BACKOFF);
    t.begin_abort().unwrap();
    t.poll_add_partitions(now + BACKOFF).unwrap();
    t.handle_add_partitions(
        now + BACKOFF,
        Ok(vec![
            (tp(0), Some(ResponseError::TopicAuthorizationFailed)),
            (tp(1), Some(ResponseError::OperationNotAttempted)),
        ]),
        BACKOFF,
    );
    assert!(t.adds_settled());
    assert!(!t.needs_end_txn());
}

/// AddPartitionsToTxn v1–3 reports a coordinator move per partition only: the caller must
/// look the coordinator up again (found by the simulation,
/// `sim::producer::transactions_coordinator_moves`), and the partitions are asked for again
/// after the backoff.
#[test]
fn a_per_partition_not_coordinator_means_look_the_coordinator_up_again() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.note_partition(&tp(1));
    assert!(t.poll_add_partitions(now).is_some());
    let answers = vec![
        (tp(0), Some(ResponseError::NotCoordinator)),
        (tp(1), Some(ResponseError::NotCoordinator)),
    ];
    assert!(add_partitions_lookup_again(&answers));
    t.handle_add_partitions(now, Ok(answers), BACKOFF);
    assert_eq!(t.phase(), TransactionPhase::InTransaction, "retriable");
    assert_eq!(
        t.poll_add_partitions(now + BACKOFF),
        Some(vec![tp(0), tp(1)])
    );
    for code in [
        ResponseError::CoordinatorNotAvailable,
        ResponseError::NotCoordinator,
    ] {
        assert!(add_partitions_lookup_again(&[
            (tp(0), None),
            (tp(1), Some(code))
        ]));
    }
    for code in [
        None,
        Some(ResponseError::ConcurrentTransactions),
        Some(ResponseError::CoordinatorLoadInProgress),
        Some(ResponseError::ProducerFenced),
    ] {
        assert!(!add_partitions_lookup_again(&[(tp(0), code)]));
    }
}

#[test]
fn a_commit_whose_end_txn_was_sent_cannot_turn_into_an_abort() {
    let mut t = ready();
    t.begin().unwrap();
    t.offsets_added();
    t.begin_commit().unwrap();
    // Timed out while flushing: abort is still possible.
    t.begin_abort().unwrap();
    t.handle_end_txn(Ok(())).unwrap();
    t.begin().unwrap();
    t.offsets_added();
    t.begin_commit().unwrap();
    t.end_txn_sending();
    assert!(matches!(
        t.begin_abort(),
        Err(TransactionError::InvalidState { .. })
    ));
    // Retrying the commit is.
    t.begin_commit().unwrap();
}

#[test]
fn an_empty_transaction_needs_no_end_txn() {
    let mut t = ready();
    t.begin().unwrap();
    t.begin_commit().unwrap();
    assert!(!t.needs_end_txn());
}

fn transactional_sender() -> SenderState<u64> {
    let mut s = SenderState::new(config(true, 1_000, 100_000));
    s.enable_transactions("tx");
    assert_eq!(
        s.poll_init_producer_id(),
        None,
        "the producer's init_transactions does it"
    );
    s.transaction_mut().unwrap().start_init().unwrap();
    s.handle_producer_id(7, 0);
    s.transaction_mut().unwrap().init_done();
    s
}

fn is_transactional(bytes: &Bytes) -> bool {
    BatchReader::new(bytes.clone())
        .next()
        .and_then(Result::ok)
        .is_some_and(|b| b.header.attributes.transactional)
}

#[test]
fn the_sender_sends_a_partition_only_once_it_was_added() {
    let t0 = Instant::now();
    let mut s = transactional_sender();
    assert!(matches!(
        s.append(t0, &tp(0), record(1, 10)),
        Err(ProduceError::Transaction(_))
    ));
    s.transaction_mut().unwrap().begin().unwrap();
    s.append(t0, &tp(0), record(2, 10)).unwrap();
    let later = t0 + LINGER * 10;
    assert!(s.poll_requests(later, &leader).requests.is_empty());
    let (pair, adding) = s.poll_add_partitions(later).unwrap();
    assert_eq!((pair, adding.clone()), ((7, 0), vec![tp(0)]));
    assert!(s.poll_requests(later, &leader).requests.is_empty());
    s.transaction_mut()
        .unwrap()
        .handle_add_partitions(later, Ok(vec![(tp(0), None)]), BACKOFF);
    let tx = s.poll_requests(later, &leader);
    assert_eq!(tx.requests.len(), 1);
    assert!(is_transactional(&tx.requests[0].batches[0].1));
    // Fenced on Produce: fatal; what is queued fails without being sent.
    s.append(later, &tp(0), record(3, 10)).unwrap();
    let refused = PartitionResponse::Refused {
        code: ResponseError::InvalidProducerEpoch,
        message: None,
    };
    s.handle_result(later, tx.requests[0].id, Ok(vec![(tp(0), refused)]));
    assert_eq!(
        s.transaction().unwrap().phase(),
        TransactionPhase::FatalError
    );
    assert!(s.poll_requests(later, &leader).requests.is_empty());
    let outcomes = s.take_outcomes();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|o| o.result.is_err()));
    assert!(s.is_idle());
}

/// The first sequence of the first batch in `bytes`.
fn base_sequence(bytes: &Bytes) -> i32 {
    BatchReader::new(bytes.clone())
        .next()
        .and_then(Result::ok)
        .map(|b| b.header.base_sequence)
        .expect("a batch")
}

#[test]
fn concurrent_transactions_on_produce_resends_the_same_sequence_without_failing() {
    // v2: the leader asks the coordinator whether the partition is in the transaction; while
    // the previous transaction still completes the answer is CONCURRENT_TRANSACTIONS.
    let t0 = Instant::now();
    let mut s = transactional_sender();
    s.transaction_mut().unwrap().set_v2(true);
    s.transaction_mut().unwrap().begin().unwrap();
    s.append(t0, &tp(0), record(1, 10)).unwrap();
    let later = t0 + LINGER * 10;
    let first = s.poll_requests(later, &leader);
    assert_eq!(first.requests.len(), 1);
    let sequence = base_sequence(&first.requests[0].batches[0].1);
    let refused = PartitionResponse::Refused {
        code: ResponseError::ConcurrentTransactions,
        message: None,
    };
    s.handle_result(later, first.requests[0].id, Ok(vec![(tp(0), refused)]));
    assert_eq!(
        s.transaction().unwrap().phase(),
        TransactionPhase::InTransaction,
        "not abortable"
    );
    assert!(
        s.take_outcomes().is_empty(),
        "the record has no outcome yet"
    );
    assert!(
        s.poll_requests(later, &leader).requests.is_empty(),
        "resent only after the retry backoff"
    );
    let retry_at = later + Duration::from_secs(2);
    let again = s.poll_requests(retry_at, &leader);
    assert_eq!(again.requests.len(), 1, "resent");
    assert_eq!(
        base_sequence(&again.requests[0].batches[0].1),
        sequence,
        "with the same sequence"
    );
    let written = PartitionResponse::Written {
        base_offset: 0,
        log_append_time: -1,
    };
    s.handle_result(retry_at, again.requests[0].id, Ok(vec![(tp(0), written)]));
    let outcomes = s.take_outcomes();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].result.is_ok());
    s.transaction_mut().unwrap().begin_commit().unwrap();
    assert!(s.transaction().unwrap().needs_end_txn());
}

// ---------------------------------------------------------------------------------------------
// Property test: random transactional scripts.

#[derive(Debug, Clone)]
enum Op {
    Begin,
    Append(i32),
    PollAdd,
    /// The pending AddPartitionsToTxn answers: 0 ok, 1 CONCURRENT_TRANSACTIONS, 2 topic
    /// authorization failed (abortable), 3 fenced.
    AddAnswer(u8),
    Poll,
    /// A Produce answer: ok, or refused with a non-retriable error.
    Respond {
        pick: usize,
        ok: bool,
    },
    Commit,
    Abort,
    /// EndTxn answered, if due.
    EndTxn,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Begin),
        4 => (0..3i32).prop_map(Op::Append),
        2 => Just(Op::PollAdd),
        2 => prop_oneof![8 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8), 2 => Just(4u8)].prop_map(Op::AddAnswer),
        3 => Just(Op::Poll),
        3 => (any::<usize>(), prop_oneof![9 => Just(true), 1 => Just(false)])
            .prop_map(|(pick, ok)| Op::Respond { pick, ok }),
        1 => Just(Op::Commit),
        1 => Just(Op::Abort),
        2 => Just(Op::EndTxn),
        2 => (1..200u64).prop_map(Op::Advance),
    ]
}

struct Sim {
    s: SenderState<u64>,
    now: Instant,
    next_record: u64,
    adding: Option<Vec<TopicPartition>>,
    in_flight: Vec<u64>,
    appended: u64,
    outcomes: HashSet<u64>,
    fatal_seen: bool,
}

impl Sim {
    fn txn(&mut self) -> &mut TransactionState {
        self.s.transaction_mut().unwrap()
    }

    fn run(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Begin => {
                let _ = self.txn().begin();
            }
            Op::Append(p) => {
                self.next_record += 1;
                if self
                    .s
                    .append(self.now, &tp(*p), record(self.next_record, 20))
                    .is_ok()
                {
                    self.appended += 1;
                }
            }
            Op::PollAdd => {
                if self.adding.is_none() {
                    self.adding = self.s.poll_add_partitions(self.now).map(|(_, p)| p);
                }
            }
            Op::AddAnswer(kind) => {
                if let Some(adding) = self.adding.take() {
                    let code = match kind {
                        0 => None,
                        1 => Some(ResponseError::ConcurrentTransactions),
                        2 => Some(ResponseError::TopicAuthorizationFailed),
                        3 => Some(ResponseError::ProducerFenced),
                        _ => {
                            // No answer: the partitions are in doubt.
                            let now = self.now;
                            self.txn()
                                .handle_add_partitions(now, Err(add_timed_out()), BACKOFF);
                            return self.check_after();
                        }
                    };
                    let answers = adding.into_iter().map(|tp| (tp, code)).collect();
                    let now = self.now;
                    self.txn().handle_add_partitions(now, Ok(answers), BACKOFF);
                }
            }
            Op::Poll => {
                let added: HashSet<TopicPartition> = self
                    .s
                    .transaction()
                    .map(|t| t.added_partitions().cloned().collect())
                    .unwrap_or_default();
                let tx = self.s.poll_requests(self.now, &leader);
                for plan in tx.requests {
                    for (tp, bytes) in &plan.batches {
                        if !added.contains(tp) {
                            return Err(format!("{tp:?} produced before it was added"));
                        }
                        if !is_transactional(bytes) {
                            return Err("a batch without the transactional flag".into());
                        }
                    }
                    self.in_flight.push(plan.id);
                }
            }
            Op::Respond { pick, ok } => {
                if !self.in_flight.is_empty() {
                    let id = self.in_flight.remove(pick % self.in_flight.len());
                    // Every partition answers the same way (the test cares about the
                    // transaction, not partial answers).
                    let answer = |tp: TopicPartition| {
                        let response = if *ok {
                            PartitionResponse::Written {
                                base_offset: 0,
                                log_append_time: -1,
                            }
                        } else {
                            PartitionResponse::Refused {
                                code: ResponseError::MessageTooLarge,
                                message: None,
                            }
                        };
                        (tp, response)
                    };
                    let answers = (0..3).map(|p| answer(tp(p))).collect();
                    self.s.handle_result(self.now, id, Ok(answers));
                }
            }
            Op::Commit => {
                let _ = self.txn().begin_commit();
            }
            Op::Abort => {
                let _ = self.txn().begin_abort();
            }
            Op::EndTxn => {
                // The producer polls once more (the abort fails queued batches) before looking.
                let idle = self.s.is_idle();
                let in_flight = self.s.requests_in_flight();
                let queued = !self.s.accumulator().is_empty();
                if let Some(_commit) = self.txn().end_txn_due(idle) {
                    if in_flight > 0 || queued {
                        return Err("EndTxn due with batches queued or in flight".into());
                    }
                    if !self.txn().adds_settled() || self.txn().partitions_in_doubt().count() > 0 {
                        return Err("EndTxn due with an AddPartitionsToTxn in doubt".into());
                    }
                    if self.txn().needs_end_txn() {
                        self.txn().end_txn_sending();
                    }
                    let _ = self.txn().handle_end_txn(Ok(()));
                }
            }
            Op::Advance(ms) => self.now += Duration::from_millis(*ms),
        }
        self.check_after()
    }

    /// What holds after every step: one outcome per record, a fatal state stays fatal.
    fn check_after(&mut self) -> Result<(), String> {
        for o in self.s.take_outcomes() {
            if !self.outcomes.insert(o.delivery) {
                return Err(format!("record {} got two outcomes", o.delivery));
            }
        }
        let phase = self.s.transaction().map(TransactionState::phase);
        if self.fatal_seen && phase != Some(TransactionPhase::FatalError) {
            return Err(format!("left the fatal state for {phase:?}"));
        }
        self.fatal_seen |= phase == Some(TransactionPhase::FatalError);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn transactions_never_produce_unadded_partitions_never_end_with_batches_in_flight(
        ops in prop::collection::vec(op(), 1..150),
        v2 in any::<bool>(),
    ) {
        let mut s = transactional_sender();
        s.transaction_mut().unwrap().set_v2(v2);
        let mut sim = Sim {
            s,
            now: Instant::now(),
            next_record: 0,
            adding: None,
            in_flight: Vec::new(),
            appended: 0,
            outcomes: HashSet::new(),
            fatal_seen: false,
        };
        for op in &ops {
            let checked = sim.run(op);
            prop_assert!(checked.is_ok(), "after {:?}: {:?}", op, checked);
        }
        // Drain: answer what is pending, then abort (or stay fatal) and answer everything.
        for _ in 0..20 {
            for op in [Op::AddAnswer(0), Op::Abort, Op::Poll, Op::Respond { pick: 0, ok: true }, Op::EndTxn, Op::PollAdd] {
                let checked = sim.run(&op);
                prop_assert!(checked.is_ok(), "draining {:?}: {:?}", op, checked);
            }
        }
        prop_assert!(sim.s.is_idle(), "still busy after draining");
        prop_assert_eq!(sim.outcomes.len() as u64, sim.appended);
    }
}

#[test]
fn v2_partitions_join_at_once_and_only_a_drained_batch_needs_end_txn() {
    let now = Instant::now();
    let mut t = ready();
    t.set_v2(true);
    t.begin().unwrap();
    t.note_partition(&tp(0));
    assert!(t.can_send(&tp(0)), "Produce v12 adds the partition itself");
    assert!(
        t.poll_add_partitions(now).is_none(),
        "no AddPartitionsToTxn in v2"
    );
    t.begin_commit().unwrap();
    assert!(
        !t.needs_end_txn(),
        "appended but never drained: nothing for the coordinator to end"
    );
    t.batch_drained();
    assert!(t.needs_end_txn());
    t.end_txn_sending();
    t.handle_end_txn(Ok(())).unwrap();
    assert!(t.is_v2(), "the protocol stays chosen");
    t.begin().unwrap();
    assert!(!t.needs_end_txn(), "each transaction starts empty");
}

/// An AddOffsetsToTxn that failed without an answer is asked again by an abort (only then:
/// a commit or further sends go on as before); an answer settles it either way.
#[test]
fn an_add_offsets_in_doubt_is_asked_again_by_an_abort_only() {
    let mut t = ready();
    t.begin().unwrap();
    t.offsets_outcome_unknown("g");
    assert_eq!(t.offsets_in_doubt(), None, "not aborting");
    assert!(!t.needs_end_txn());
    t.begin_abort().unwrap();
    assert_eq!(t.offsets_in_doubt(), Some("g"));
    t.offsets_added();
    assert_eq!(t.offsets_in_doubt(), None);
    assert!(
        t.needs_end_txn(),
        "EndTxn(abort) closes what the coordinator added"
    );
    t.end_txn_sending();
    t.handle_end_txn(Ok(())).unwrap();

    t.begin().unwrap();
    assert_eq!(t.offsets_in_doubt(), None, "a new transaction starts clean");
    t.offsets_outcome_unknown("g");
    t.begin_abort().unwrap();
    t.offsets_refused();
    assert_eq!(t.offsets_in_doubt(), None);
    assert!(!t.needs_end_txn(), "refused: the coordinator holds nothing");
    t.handle_end_txn(Ok(())).unwrap();

    // Added before: a later failure is not in doubt.
    t.begin().unwrap();
    t.offsets_added();
    t.offsets_outcome_unknown("g");
    t.begin_abort().unwrap();
    assert_eq!(t.offsets_in_doubt(), None);
}

/// How a failed transactional call ends: out of time, a timeout whatever the error (the state
/// is as it was: call again); else an abortable class is abortable (the application aborts
/// and goes on) and the rest fatal.
#[test]
fn a_failed_call_is_a_timeout_abortable_or_fatal_by_its_error() {
    let after = Duration::from_secs(1);
    let refused = broker(
        ApiKey::AddOffsetsToTxn,
        ResponseError::GroupAuthorizationFailed,
    );
    let e = call_error(refused.clone(), true, "send_offsets_to_transaction", after);
    assert!(matches!(
        e,
        TransactionError::Timeout {
            operation: "send_offsets_to_transaction",
            ..
        }
    ));
    let e = call_error(refused, false, "send_offsets_to_transaction", after);
    assert!(e.is_abortable(), "{e:?}");
    let e = call_error(
        broker(ApiKey::EndTxn, ResponseError::InvalidTxnState),
        false,
        "commit_transaction",
        after,
    );
    assert!(e.is_fatal(), "{e:?}");
}

/// OPERATION_NOT_ATTEMPTED names a partition the coordinator did not try because a sibling
/// failed: the transaction's cause is the sibling's error, whatever the order of the answers.
#[test]
fn a_refused_add_reports_the_failed_partition_not_the_one_not_attempted() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.note_partition(&tp(1));
    assert_eq!(t.poll_add_partitions(now).unwrap(), vec![tp(0), tp(1)]);
    t.handle_add_partitions(
        now,
        Ok(vec![
            (tp(0), Some(ResponseError::OperationNotAttempted)),
            (tp(1), Some(ResponseError::TopicAuthorizationFailed)),
        ]),
        BACKOFF,
    );
    assert_eq!(t.phase(), TransactionPhase::AbortableError);
    match t.begin_commit() {
        Err(TransactionError::Abortable { cause }) => assert!(
            matches!(
                *cause,
                ProduceError::Broker {
                    partition: 1,
                    code: ResponseError::TopicAuthorizationFailed,
                    ..
                }
            ),
            "{cause:?}"
        ),
        other => panic!("{other:?}"),
    }
}

/// An abortable error answering EndTxn (here TRANSACTION_ABORTABLE) fails a commit, which the
/// application may then abort; answering the EndTxn of an abort, it ends the producer (an
/// abort has no abort to fall back on).
#[test]
fn an_abortable_end_txn_error_fails_a_commit_and_ends_the_producer_during_an_abort() {
    let abortable = || broker(ApiKey::EndTxn, ResponseError::TransactionAbortable);
    let mut t = commit_sending();
    assert_eq!(
        t.handle_end_txn(Err(abortable())),
        Err(TxnErrorClass::Abortable)
    );
    assert_eq!(t.phase(), TransactionPhase::AbortableError);
    assert!(t.fatal_error().is_none());
    assert!(matches!(
        t.begin_commit(),
        Err(TransactionError::Abortable { .. })
    ));
    t.begin_abort().unwrap();
    t.end_txn_sending();
    assert_eq!(
        t.handle_end_txn(Err(abortable())),
        Err(TxnErrorClass::Abortable)
    );
    assert_eq!(t.phase(), TransactionPhase::FatalError);
    assert!(t.fatal_error().is_some_and(TransactionError::is_fatal));
}

/// No AddPartitionsToTxn without a partition to add: neither before the first record nor once
/// every partition was added (an empty request would be sent in a loop).
#[test]
fn nothing_pending_asks_for_no_add_partitions() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    assert_eq!(t.poll_add_partitions(now), None);
    t.note_partition(&tp(0));
    assert_eq!(t.poll_add_partitions(now), Some(vec![tp(0)]));
    t.handle_add_partitions(now, Ok(vec![(tp(0), None)]), BACKOFF);
    t.note_partition(&tp(0));
    assert_eq!(t.poll_add_partitions(now), None);
}

/// Failures that are not broker codes: an unknown node, a connection not made (retriable) and
/// a response that does not fit its request (outcome unknown) mean look the coordinator up
/// again; one that trying again cannot fix (authentication) is fatal. Broker codes outside the
/// named ones keep their retriability.
#[test]
fn transactional_failures_without_a_named_code_are_classified_by_retriability() {
    assert_eq!(
        classify(&Error::UnknownBroker { node_id: 3 }),
        TxnErrorClass::Rediscover
    );
    let refused = Error::ConnectTimeout {
        broker: "b".into(),
        after: BACKOFF,
    };
    assert!(refused.is_retriable() && !refused.is_outcome_unknown());
    assert_eq!(classify(&refused), TxnErrorClass::Rediscover);
    let garbled = Error::UnexpectedResponse {
        broker: "b".into(),
        correlation_id: 7,
    };
    assert!(!garbled.is_retriable() && garbled.is_outcome_unknown());
    assert_eq!(classify(&garbled), TxnErrorClass::Rediscover);
    let denied = Error::Authentication {
        broker: "b".into(),
        mechanism: "SCRAM-SHA-512".into(),
        message: "bad password".into(),
    };
    assert_eq!(classify(&denied), TxnErrorClass::Fatal);
    // NOT_ENOUGH_REPLICAS: retriable, not named; INVALID_TXN_STATE: neither.
    assert_eq!(
        classify_code(ResponseError::NotEnoughReplicas),
        TxnErrorClass::Retry
    );
    assert_eq!(
        classify_code(ResponseError::InvalidTxnState),
        TxnErrorClass::Fatal
    );
}

/// A new state carries its `transactional.id` (sent in every transactional request) and speaks
/// transactions v1 until `init_transactions` finds v2 finalized.
#[test]
fn a_new_state_names_its_transactional_id_and_speaks_v1() {
    let t = TransactionState::new("orders-tx");
    assert_eq!(t.transactional_id(), "orders-tx");
    assert!(!t.is_v2());
}

/// Once the transaction must abort, partitions appended but not asked for yet are not asked
/// for: nothing will be produced to them in this transaction.
#[test]
fn an_abortable_transaction_asks_for_no_partitions() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.note_partition(&tp(0));
    t.batch_failed(&ProduceError::Encode("bad".into()));
    assert_eq!(t.phase(), TransactionPhase::AbortableError);
    assert_eq!(t.poll_add_partitions(now), None);
    assert_eq!(t.next_add_at(), None);
    assert!(t.adds_settled());
}

/// `adding_partitions` says whether an AddPartitionsToTxn is in flight; offsets may be sent
/// inside a transaction, and once it must abort they fail with its cause.
#[test]
fn adds_in_flight_are_reported_and_offsets_follow_the_transaction() {
    let now = Instant::now();
    let mut t = ready();
    t.begin().unwrap();
    t.check_send_offsets().unwrap();
    t.note_partition(&tp(0));
    assert!(!t.adding_partitions());
    t.poll_add_partitions(now).unwrap();
    assert!(t.adding_partitions());
    t.handle_add_partitions(now, Ok(vec![(tp(0), None)]), BACKOFF);
    assert!(!t.adding_partitions());
    t.batch_failed(&ProduceError::Encode("bad".into()));
    assert!(matches!(
        t.check_send_offsets(),
        Err(TransactionError::Abortable { .. })
    ));
}

/// A batch refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED ends the producer (the id itself
/// is refused: no later transaction can succeed), not only the transaction.
#[test]
fn a_batch_refused_for_the_transactional_id_ends_the_producer() {
    let mut t = ready();
    t.begin().unwrap();
    t.batch_failed(&ProduceError::Broker {
        topic: "t".into(),
        partition: 0,
        code: ResponseError::TransactionalIdAuthorizationFailed,
        message: None,
    });
    assert_eq!(t.phase(), TransactionPhase::FatalError);
    assert!(t.fatal_error().is_some_and(TransactionError::is_fatal));
    assert!(matches!(t.begin_abort(), Err(TransactionError::Fatal(_))));
}

/// A fenced transactional call reports the broker's code (INVALID_PRODUCER_EPOCH here), not
/// PRODUCER_FENCED by default, and the transactional id.
#[test]
fn a_fenced_call_reports_the_brokers_code() {
    let mut t = commit_sending();
    let _ = t.handle_end_txn(Err(broker(
        ApiKey::EndTxn,
        ResponseError::InvalidProducerEpoch,
    )));
    assert!(
        matches!(
            t.fatal_error(),
            Some(TransactionError::Fenced {
                transactional_id,
                code: ResponseError::InvalidProducerEpoch,
            }) if transactional_id == "tx"
        ),
        "{:?}",
        t.fatal_error()
    );
}
