//! Scripted tests of the producer state: virtual time, no sockets.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafkit_wire::compression::Compression;
use kafkit_wire::record::BatchReader;

use super::*;
use crate::error::Error;
use crate::producer::ProduceError;
use crate::state::backoff::ExponentialBackoff;

mod accumulator;
mod idempotence;
mod props;
mod split;

pub(super) const LINGER: Duration = Duration::from_millis(5);
pub(super) const DELIVERY: Duration = Duration::from_secs(120);

pub(super) fn config(idempotent: bool, batch_size: usize, max_request_size: usize) -> SenderConfig {
    SenderConfig {
        accumulator: AccumulatorConfig {
            batch_size,
            linger: LINGER,
            delivery_timeout: DELIVERY,
            max_request_size,
        },
        idempotent,
        max_in_flight: 5,
        retries: u32::MAX,
        retry_backoff: ExponentialBackoff::new(Duration::from_millis(100), Duration::from_secs(1)),
        compression: Compression::None,
        compression_level: None,
    }
}

pub(super) fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

pub(super) fn leader(_: &TopicPartition) -> Option<i32> {
    Some(1)
}

pub(super) fn record(id: u64, len: usize) -> BufferedRecord<u64> {
    BufferedRecord::new(1_000, None, Some(Bytes::from(vec![b'x'; len])), id)
}

/// (producer id, epoch, base sequence, record count) of an encoded batch.
pub(super) fn header(bytes: &Bytes) -> (i64, i16, i32, i32) {
    let batch = BatchReader::new(bytes.clone())
        .next()
        .and_then(Result::ok)
        .map(|b| b.header);
    batch.map_or((0, 0, 0, 0), |h| {
        (
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.record_count,
        )
    })
}

fn written(tp: TopicPartition, base_offset: i64) -> (TopicPartition, PartitionResponse) {
    (
        tp,
        PartitionResponse::Written {
            base_offset,
            log_append_time: -1,
        },
    )
}

fn refused(tp: TopicPartition, code: ResponseError) -> (TopicPartition, PartitionResponse) {
    (
        tp,
        PartitionResponse::Refused {
            code,
            message: None,
        },
    )
}

/// A Produce request whose response did not come in time (outcome unknown).
fn timed_out() -> Error {
    Error::RequestTimedOut {
        broker: "b".into(),
        api: ApiKey::Produce,
        after: Duration::from_secs(30),
    }
}

/// An idempotent state whose one record was sent at `t0 + LINGER` and whose response was
/// lost (the batch waits for its retry).
fn sent_and_lost(t0: Instant) -> SenderState<u64> {
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0 + LINGER, tx.requests[0].id, Err(timed_out()));
    s
}

fn idempotent_state() -> SenderState<u64> {
    let mut s = SenderState::new(config(true, 1_000, 100_000));
    assert_eq!(s.poll_init_producer_id(), Some((-1, -1)));
    s.handle_producer_id(42, 0);
    s
}

fn offsets(outcomes: &[Outcome<u64>]) -> Vec<(u64, i64)> {
    outcomes
        .iter()
        .map(|o| (o.delivery, o.result.as_ref().map_or(-2, |m| m.offset)))
        .collect()
}

#[test]
fn linger_then_batch_size_make_a_partition_ready() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let tx = s.poll_requests(t0, &leader);
    assert!(tx.requests.is_empty());
    assert_eq!(tx.next_check, Some(t0 + LINGER));
    let tx = s.poll_requests(t0 + LINGER, &leader);
    assert_eq!(tx.requests.len(), 1);

    // A full batch is ready at once.
    let mut s = idempotent_state();
    let mut id = 0;
    loop {
        id += 1;
        let appended = s.append(t0, &tp(0), record(id, 100)).ok();
        if appended.is_some_and(|a| a.batch_full) {
            break;
        }
    }
    let tx = s.poll_requests(t0, &leader);
    assert_eq!(tx.requests.len(), 1);
    assert!(tx.requests[0].batches.len() == 1);
}

#[test]
fn flush_ignores_linger() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let marker = s.begin_flush();
    let tx = s.poll_requests(t0, &leader);
    assert_eq!(tx.requests.len(), 1);
    assert!(!s.flushed(marker));
    s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), 0)]));
    assert!(s.flushed(marker));
    s.end_flush();
}

#[test]
fn drain_takes_one_batch_per_partition_and_respects_max_request_size() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    for id in 0..30 {
        s.append(t0, &tp(0), record(id, 100)).ok();
        s.append(t0, &tp(1), record(100 + id, 100)).ok();
    }
    let tx = s.poll_requests(t0, &leader);
    assert_eq!(tx.requests.len(), 1, "one request per node");
    let parts: Vec<i32> = tx.requests[0]
        .batches
        .iter()
        .map(|(t, _)| t.partition)
        .collect();
    assert_eq!(parts.len(), 2);
    assert!(parts.contains(&0) && parts.contains(&1));

    // max.request.size below two batches: one batch per request.
    let mut s = SenderState::new(config(false, 1_000, 1_200));
    for id in 0..30 {
        s.append(t0, &tp(0), record(id, 100)).ok();
        s.append(t0, &tp(1), record(100 + id, 100)).ok();
    }
    let tx = s.poll_requests(t0, &leader);
    assert_eq!(tx.requests[0].batches.len(), 1);
}

#[test]
fn record_larger_than_max_request_size_is_refused() {
    let mut s = idempotent_state();
    let err = s.append(Instant::now(), &tp(0), record(1, 200_000));
    assert!(matches!(err, Err(ProduceError::RecordTooLarge { .. })));
    // Larger than batch.size but within max.request.size: a batch of its own.
    let a = s.append(Instant::now(), &tp(0), record(2, 5_000));
    assert!(a.is_ok_and(|a| a.new_batch && a.batch_full));
}

#[test]
fn sequences_advance_by_record_count_and_wrap() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.set_next_sequence(&tp(0), i32::MAX - 1);
    for id in 0..3 {
        s.append(t0, &tp(0), record(id, 1)).ok();
    }
    let tx = s.poll_requests(t0 + LINGER, &leader);
    let (pid, epoch, base, count) = header(&tx.requests[0].batches[0].1);
    assert_eq!((pid, epoch, base, count), (42, 0, i32::MAX - 1, 3));
    assert_eq!(s.next_sequence(&tp(0)), 1);
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(5, 3), 8);
}

/// Five batches of partition 0 in flight, one per request; returns the request ids and the
/// base sequences.
fn five_in_flight(s: &mut SenderState<u64>, t0: Instant) -> Vec<(u64, i32, Bytes)> {
    let mut out = Vec::new();
    // The partition's first batch is acknowledged alone (the first-batch rule).
    s.append(t0, &tp(0), record(100, 10)).ok();
    let first = s.poll_requests(t0 + LINGER, &leader);
    s.append(t0, &tp(0), record(101, 10)).ok();
    assert!(
        s.poll_requests(t0 + LINGER, &leader).requests.is_empty(),
        "first batch alone"
    );
    s.handle_result(t0, first.requests[0].id, Ok(vec![written(tp(0), 0)]));
    let second = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0, second.requests[0].id, Ok(vec![written(tp(0), 1)]));
    s.take_outcomes();
    for id in 0..5u64 {
        s.append(t0, &tp(0), record(id, 10)).ok();
        let tx = s.poll_requests(t0 + LINGER, &leader);
        assert_eq!(tx.requests.len(), 1, "request {id}");
        let (_, bytes) = tx.requests[0].batches[0].clone();
        out.push((tx.requests[0].id, header(&bytes).2, bytes));
    }
    assert_eq!(s.partition_in_flight(&tp(0)), 5);
    // A sixth batch waits: max.in.flight is 5.
    s.append(t0, &tp(0), record(5, 10)).ok();
    assert!(s.poll_requests(t0 + LINGER, &leader).requests.is_empty());
    out
}

#[test]
fn five_in_flight_apply_in_send_order() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    let reqs = five_in_flight(&mut s, t0);
    let seqs: Vec<i32> = reqs.iter().map(|r| r.1).collect();
    assert_eq!(seqs, [2, 3, 4, 5, 6]);
    assert_eq!(s.requests_in_flight(), 5);
    // Responses arriving out of order are applied in send order.
    for (i, (id, _, _)) in reqs.iter().enumerate().rev() {
        s.handle_result(t0, *id, Ok(vec![written(tp(0), 10 + i as i64)]));
    }
    assert_eq!(s.requests_in_flight(), 0);
    let got = offsets(&s.take_outcomes());
    assert_eq!(got, [(0, 10), (1, 11), (2, 12), (3, 13), (4, 14)]);
}

/// `max.in.flight` bounds a partition's batches in flight across leaders: with two in flight
/// to its old leader (the node limit would not stop it), nothing goes to the new leader until
/// one is answered.
#[test]
fn a_partition_full_at_its_old_leader_sends_nothing_to_its_new_one() {
    let t0 = Instant::now();
    let mut s = SenderState::new(SenderConfig {
        max_in_flight: 2,
        ..config(true, 1_000, 100_000)
    });
    assert_eq!(s.poll_init_producer_id(), Some((-1, -1)));
    s.handle_producer_id(42, 0);
    s.append(t0, &tp(0), record(0, 10)).ok();
    let first = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0, first.requests[0].id, Ok(vec![written(tp(0), 0)]));
    let mut sent = Vec::new();
    for id in 1..3 {
        s.append(t0, &tp(0), record(id, 10)).ok();
        let tx = s.poll_requests(t0 + LINGER, &leader);
        assert_eq!(tx.requests.len(), 1, "batch {id}");
        sent.push(tx.requests[0].id);
    }
    assert_eq!(s.partition_in_flight(&tp(0)), 2);
    s.append(t0, &tp(0), record(3, 10)).ok();
    let moved = |_: &TopicPartition| Some(2);
    assert!(s.poll_requests(t0 + LINGER, &moved).requests.is_empty());
    s.handle_result(t0, sent[0], Ok(vec![written(tp(0), 1)]));
    assert_eq!(s.poll_requests(t0 + LINGER, &moved).requests.len(), 1);
}

/// The I/O loop's view of the same decisions: a written batch is one `Completion::Written`
/// (base offset, records in order), a failed record its own `Completion::Record`;
/// `take_completions_into` swaps into an empty buffer and appends to a non-empty one.
#[test]
fn completions_hand_a_written_batch_over_whole_and_failures_record_by_record() {
    let t0 = Instant::now();
    // Without idempotence: a refused batch would otherwise hold the partitions for an epoch bump.
    let mut s = SenderState::new(config(false, 1_000, 100_000));
    for id in [1, 2, 3] {
        s.append(t0, &tp(0), record(id, 10)).ok();
    }
    s.append(t0, &tp(1), record(9, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    assert_eq!(tx.requests.len(), 1);
    s.handle_result(
        t0,
        tx.requests[0].id,
        Ok(vec![
            written(tp(0), 40),
            refused(tp(1), ResponseError::InvalidRecord),
        ]),
    );
    let completions = s.take_completions();
    assert!(s.take_completions().is_empty(), "taken once");
    let mut written_ids = Vec::new();
    let mut failed_ids = Vec::new();
    for c in completions {
        match c {
            Completion::Written(batch) => {
                assert_eq!((batch.tp.clone(), batch.base_offset), (tp(0), 40));
                written_ids.extend(batch.records.iter().map(|r| r.delivery));
            }
            Completion::Record(o) => {
                assert!(o.result.is_err());
                failed_ids.push(o.delivery);
            }
        }
    }
    assert_eq!((written_ids, failed_ids), (vec![1, 2, 3], vec![9]));

    // The same through take_completions_into: into an empty buffer, then appended.
    let mut out = Vec::new();
    for round in 0..2u64 {
        s.append(t0, &tp(0), record(10 + round, 10)).ok();
        let tx = s.poll_requests(t0 + LINGER, &leader);
        let base = 50 + round as i64;
        s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), base)]));
        s.take_completions_into(&mut out);
    }
    let got: Vec<(u64, i64)> = out
        .into_iter()
        .flat_map(Completion::into_outcomes)
        .map(|o| (o.delivery, o.result.map_or(-2, |m| m.offset)))
        .collect();
    assert_eq!(got, [(10, 50), (11, 51)]);
    assert!(s.take_outcomes().is_empty());
}

#[test]
fn retriable_error_on_second_of_five_requeues_in_order_and_mutes() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    let reqs = five_in_flight(&mut s, t0);
    s.handle_result(t0, reqs[0].0, Ok(vec![written(tp(0), 0)]));
    s.handle_result(
        t0,
        reqs[1].0,
        Ok(vec![refused(tp(0), ResponseError::NotLeaderOrFollower)]),
    );
    assert!(s.is_muted(&tp(0)), "muted while 3..5 are in flight");
    let later = t0 + Duration::from_secs(5);
    assert!(s.poll_requests(later, &leader).requests.is_empty());
    for r in &reqs[2..] {
        s.handle_result(
            t0,
            r.0,
            Ok(vec![refused(
                tp(0),
                ResponseError::OutOfOrderSequenceNumber,
            )]),
        );
    }
    assert_eq!(
        s.producer_id(),
        (42, 0),
        "no epoch bump: a predecessor is retried"
    );
    let queued: Vec<Option<i32>> = s
        .accumulator()
        .batches(&tp(0))
        .map(|b| b.sequence().map(|q| q.base_sequence))
        .collect();
    assert_eq!(queued, [Some(3), Some(4), Some(5), Some(6), None]);
    // Resent one at a time, same sequences and bytes, in order.
    let mut now = later;
    for (i, r) in reqs.iter().enumerate().skip(1) {
        let tx = s.poll_requests(now, &leader);
        assert_eq!(tx.requests.len(), 1);
        assert_eq!(tx.requests[0].batches.len(), 1);
        assert_eq!(tx.requests[0].batches[0].1, r.2, "batch {i} resent as is");
        if i < 4 {
            let again = s.poll_requests(now, &leader);
            assert!(
                again.requests.is_empty(),
                "next retry waits: {:?}",
                again.requests
            );
        }
        s.handle_result(now, tx.requests[0].id, Ok(vec![written(tp(0), i as i64)]));
        now += Duration::from_millis(1);
    }
    let tx = s.poll_requests(now, &leader);
    assert_eq!(header(&tx.requests[0].batches[0].1).2, 7);
    let got = offsets(&s.take_outcomes());
    assert_eq!(got, [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]);
}

#[test]
fn a_partition_sends_one_batch_until_its_first_is_acknowledged() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let first = s.poll_requests(t0 + LINGER, &leader);
    s.append(t0, &tp(0), record(2, 10)).ok();
    assert!(s.poll_requests(t0 + LINGER, &leader).requests.is_empty());
    s.handle_result(
        t0,
        first.requests[0].id,
        Ok(vec![refused(tp(0), ResponseError::NotLeaderOrFollower)]),
    );
    // The retry goes first, alone; then the second batch may follow it.
    let t1 = t0 + Duration::from_secs(1);
    let retry = s.poll_requests(t1, &leader);
    assert_eq!(header(&retry.requests[0].batches[0].1).2, 0);
    assert!(s.poll_requests(t1, &leader).requests.is_empty());
    s.handle_result(t1, retry.requests[0].id, Ok(vec![written(tp(0), 0)]));
    let next = s.poll_requests(t1, &leader);
    assert_eq!(header(&next.requests[0].batches[0].1).2, 1);
}

#[test]
fn sequence_error_after_a_later_batch_was_written_fails_instead_of_reordering() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    let reqs = five_in_flight(&mut s, t0);
    // Batch 1 lost its response; batch 2 was written; the resent batch 1 is refused.
    s.handle_result(
        t0,
        reqs[0].0,
        Err(Error::ConnectionClosed {
            broker: "b".into(),
            api: ApiKey::Produce,
        }),
    );
    s.handle_result(t0, reqs[1].0, Ok(vec![written(tp(0), 10)]));
    for r in &reqs[2..] {
        s.handle_result(t0, r.0, Ok(vec![written(tp(0), 11)]));
    }
    s.take_outcomes();
    let retry = s.poll_requests(t0 + Duration::from_secs(1), &leader);
    assert_eq!(retry.requests[0].batches[0].1, reqs[0].2);
    s.handle_result(
        t0,
        retry.requests[0].id,
        Ok(vec![refused(
            tp(0),
            ResponseError::OutOfOrderSequenceNumber,
        )]),
    );
    let outcomes = s.take_outcomes();
    assert_eq!(outcomes.len(), 1);
    assert!(matches!(
        outcomes[0].result,
        Err(ProduceError::Broker {
            code: ResponseError::OutOfOrderSequenceNumber,
            ..
        })
    ));
    assert_eq!(s.poll_init_producer_id(), Some((42, 0)), "epoch bump");
}

#[test]
fn outcome_unknown_resends_the_same_sequence() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    let first = tx.requests[0].batches[0].1.clone();
    let lost = Error::ConnectionClosed {
        broker: "b".into(),
        api: ApiKey::Produce,
    };
    assert!(lost.is_outcome_unknown());
    s.handle_result(t0 + LINGER, tx.requests[0].id, Err(lost));
    assert!(s.take_outcomes().is_empty());
    assert!(
        s.poll_requests(t0 + LINGER, &leader).requests.is_empty(),
        "backoff"
    );
    let tx = s.poll_requests(t0 + Duration::from_secs(1), &leader);
    assert_eq!(
        tx.requests[0].batches[0].1, first,
        "same sequence, same bytes"
    );
    assert_eq!(header(&first).2, 0);
    assert_eq!(s.next_sequence(&tp(0)), 1);
}

/// `rounds` requests, each a one-record batch of partitions 0 and 1 (records `id` and
/// `10 + id`), all written: both partitions confirmed at sequence `rounds`.
fn write_on_both_partitions(s: &mut SenderState<u64>, t0: Instant, rounds: u64) {
    for id in 0..rounds {
        s.append(t0, &tp(0), record(id, 10)).ok();
        s.append(t0, &tp(1), record(10 + id, 10)).ok();
        let tx = s.poll_requests(t0 + LINGER, &leader);
        s.handle_result(
            t0,
            tx.requests[0].id,
            Ok(vec![written(tp(0), id as i64), written(tp(1), id as i64)]),
        );
    }
}

#[test]
fn sequence_errors_bump_the_epoch_and_reset_sequences() {
    for code in [
        ResponseError::OutOfOrderSequenceNumber,
        ResponseError::UnknownProducerId,
        ResponseError::InvalidProducerEpoch,
    ] {
        let t0 = Instant::now();
        let mut s = idempotent_state();
        write_on_both_partitions(&mut s, t0, 3);
        assert_eq!(s.next_sequence(&tp(0)), 3);
        assert_eq!(s.take_outcomes().len(), 6);
        s.append(t0, &tp(0), record(3, 10)).ok();
        let tx = s.poll_requests(t0 + LINGER, &leader);
        assert_eq!(header(&tx.requests[0].batches[0].1).2, 3);
        s.handle_result(t0, tx.requests[0].id, Ok(vec![refused(tp(0), code)]));
        assert!(
            s.take_outcomes().is_empty(),
            "{code:?}: retried, not failed"
        );
        assert_eq!(s.poll_init_producer_id(), Some((42, 0)), "{code:?}");
        assert!(s
            .poll_requests(t0 + DELIVERY / 2, &leader)
            .requests
            .is_empty());
        s.handle_producer_id(42, 1);
        let tx = s.poll_requests(t0 + Duration::from_secs(2), &leader);
        let (pid, epoch, base, _) = header(&tx.requests[0].batches[0].1);
        assert_eq!((pid, epoch, base), (42, 1, 0), "{code:?}");
        // Partition 1's sequences were never in doubt: it keeps its epoch until its next
        // batch, which (nothing of it in flight) moves to the new epoch at sequence 0.
        assert_eq!(s.next_sequence(&tp(1)), 3);
        s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), 3)]));
        s.append(t0, &tp(1), record(13, 10)).ok();
        let tx = s.poll_requests(t0 + Duration::from_secs(3), &leader);
        let (pid, epoch, base, _) = header(&tx.requests[0].batches[0].1);
        assert_eq!((pid, epoch, base), (42, 1, 0), "{code:?}");
    }
}

/// Two partitions refused with a sequence error in one response ask for one epoch bump,
/// counted once.
#[test]
fn sequence_errors_of_two_partitions_make_one_epoch_bump() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    write_on_both_partitions(&mut s, t0, 2);
    s.append(t0, &tp(0), record(2, 10)).ok();
    s.append(t0, &tp(1), record(12, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    assert_eq!(tx.requests[0].batches.len(), 2);
    let code = ResponseError::OutOfOrderSequenceNumber;
    s.handle_result(
        t0,
        tx.requests[0].id,
        Ok(vec![refused(tp(0), code), refused(tp(1), code)]),
    );
    assert_eq!(s.stats().epoch_bumps, 1);
    assert_eq!(s.poll_init_producer_id(), Some((42, 0)));
    assert_eq!(s.stats().epoch_bumps, 1);
}

/// Found by the deterministic simulation (`sim::producer`, seed 1 of `idempotent_acks_all`):
/// a batch of partition 1 is written but its response is lost; before it is resent, a batch
/// of partition 0 fails for good and the epoch is bumped. Re-sequencing every partition sent
/// partition 1's batch again under the new epoch at sequence 0: the broker could not know it
/// was the same batch and wrote it twice. Only partition 0 restarts; partition 1's batch is
/// resent with its epoch and sequence, and the broker answers it as a duplicate.
#[test]
fn an_epoch_bump_for_one_partition_keeps_the_sequences_of_the_others() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    for id in 0..2 {
        s.append(t0, &tp(1), record(10 + id, 10)).ok();
        let tx = s.poll_requests(t0 + LINGER, &leader);
        s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(1), id as i64)]));
    }
    s.take_outcomes();
    s.append(t0, &tp(0), record(0, 10)).ok();
    s.append(t0, &tp(1), record(12, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    let sent = tx.requests[0].batches.clone();
    let p1 = sent
        .iter()
        .find(|(t, _)| *t == tp(1))
        .map(|(_, b)| header(b));
    assert_eq!(p1, Some((42, 0, 2, 1)));
    // Partition 0 refused for good; partition 1 written, but its answer is missing (outcome
    // unknown, as for a lost response).
    s.handle_result(
        t0,
        tx.requests[0].id,
        Ok(vec![refused(tp(0), ResponseError::InvalidRecord)]),
    );
    assert_eq!(s.take_outcomes().len(), 1, "partition 0's record failed");
    assert_eq!(s.poll_init_producer_id(), Some((42, 0)));
    s.handle_producer_id(42, 1);
    let tx = s.poll_requests(t0 + Duration::from_secs(2), &leader);
    let resent = tx.requests[0]
        .batches
        .iter()
        .find(|(t, _)| *t == tp(1))
        .map(|(_, b)| header(b));
    assert_eq!(
        resent,
        Some((42, 0, 2, 1)),
        "same epoch and sequence: deduplicated"
    );
    s.handle_result(
        t0,
        tx.requests[0].id,
        Ok(vec![refused(tp(1), ResponseError::DuplicateSequenceNumber)]),
    );
    let outcomes = s.take_outcomes();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].result.is_ok());
    // Then partition 1 moves to the new epoch.
    s.append(t0, &tp(1), record(13, 10)).ok();
    let tx = s.poll_requests(t0 + Duration::from_secs(3), &leader);
    assert_eq!(header(&tx.requests[0].batches[0].1), (42, 1, 0, 1));
}

#[test]
fn duplicate_sequence_is_success_with_unknown_offset() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(7, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(
        t0,
        tx.requests[0].id,
        Ok(vec![refused(tp(0), ResponseError::DuplicateSequenceNumber)]),
    );
    assert_eq!(offsets(&s.take_outcomes()), [(7, -1)]);
}

#[test]
fn non_retriable_errors_fail_the_records() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    s.append(t0, &tp(0), record(2, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(
        t0,
        tx.requests[0].id,
        Ok(vec![refused(tp(0), ResponseError::InvalidRecord)]),
    );
    let outcomes = s.take_outcomes();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|o| matches!(
        o.result,
        Err(ProduceError::Broker {
            code: ResponseError::InvalidRecord,
            ..
        })
    )));
}

#[test]
fn queued_batches_expire_with_delivery_timeout() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let tx = s.poll_requests(t0, &|_| None);
    assert!(tx.unknown_leaders.contains("t"));
    assert_eq!(tx.next_check, Some(t0 + DELIVERY));
    s.expire(t0 + DELIVERY - Duration::from_millis(1));
    assert!(s.take_outcomes().is_empty());
    s.expire(t0 + DELIVERY);
    let outcomes = s.take_outcomes();
    assert!(matches!(
        outcomes[0].result,
        Err(ProduceError::DeliveryTimeout { sent: false, .. })
    ));
    assert!(s.is_idle());
    assert_eq!(s.stats().records_expired_unsent, 1);
    assert_eq!(s.stats().records_expired_unknown, 0);
}

/// The expiry outcome of one batch whose only request ended with `result`.
fn expired_after(result: RequestResult) -> (ProduceError, SenderStats) {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    s.append(t0, &tp(0), record(2, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    assert_eq!(tx.requests.len(), 1);
    s.handle_result(t0 + LINGER, tx.requests[0].id, result);
    assert!(s.take_outcomes().is_empty(), "retried, not failed");
    // The leader is gone: the retry waits in the queue until it expires.
    s.poll_requests(t0 + DELIVERY - LINGER, &|_| None);
    s.expire(t0 + DELIVERY);
    let outcomes = s.take_outcomes();
    assert_eq!(outcomes.len(), 2);
    let errors: Vec<ProduceError> = outcomes
        .into_iter()
        .filter_map(|o| o.result.err())
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(s.check_invariants().is_ok());
    (errors[0].clone(), s.stats())
}

#[test]
fn a_batch_whose_requests_never_left_expires_as_not_written() {
    // Failures before the request was written: nothing reached a broker.
    let not_written = [
        Error::Connect {
            broker: "b".into(),
            source: std::sync::Arc::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )),
        },
        Error::ConnectTimeout {
            broker: "b".into(),
            after: Duration::from_secs(10),
        },
        Error::UnknownBroker { node_id: 1 },
    ];
    for error in not_written {
        let (outcome, stats) = expired_after(Err(error.clone()));
        assert!(
            matches!(outcome, ProduceError::DeliveryTimeout { sent: false, .. }),
            "{error}: {outcome}"
        );
        assert!(!outcome.is_outcome_unknown());
        assert!(outcome.to_string().contains("never sent"), "{outcome}");
        assert_eq!(
            (stats.records_expired_unsent, stats.records_expired_unknown),
            (2, 0)
        );
    }
}

#[test]
fn a_batch_that_was_sent_expires_with_an_unknown_outcome() {
    let lost = [
        // The response was lost: the broker may have written it.
        Err(timed_out()),
        Err(Error::ConnectionClosed {
            broker: "b".into(),
            api: ApiKey::Produce,
        }),
        // The broker answered (a retriable refusal): the request reached it.
        Ok(vec![refused(tp(0), ResponseError::NotLeaderOrFollower)]),
        Ok(vec![refused(tp(0), ResponseError::RequestTimedOut)]),
    ];
    for result in lost {
        let (outcome, stats) = expired_after(result.clone());
        assert!(
            matches!(outcome, ProduceError::DeliveryTimeout { sent: true, .. }),
            "{result:?}: {outcome}"
        );
        assert!(outcome.is_outcome_unknown());
        assert!(outcome.to_string().contains("may have been written"));
        assert_eq!(
            (stats.records_expired_unsent, stats.records_expired_unknown),
            (0, 2)
        );
    }
}

#[test]
fn once_sent_a_batch_stays_sent_across_later_unsent_attempts() {
    let t0 = Instant::now();
    let mut s = sent_and_lost(t0);
    // The retry cannot reach the leader: it was never written, but the first attempt may
    // have been.
    let retry_at = t0 + Duration::from_secs(2);
    let tx = s.poll_requests(retry_at, &leader);
    assert_eq!(tx.requests.len(), 1);
    let refused_connect = Error::ConnectTimeout {
        broker: "b".into(),
        after: Duration::from_secs(10),
    };
    s.handle_result(retry_at, tx.requests[0].id, Err(refused_connect));
    s.expire(t0 + DELIVERY);
    assert!(matches!(
        s.take_outcomes()[0].result,
        Err(ProduceError::DeliveryTimeout { sent: true, .. })
    ));
}

#[test]
fn without_idempotence_no_sequences_are_written() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(false, 1_000, 100_000));
    assert_eq!(s.poll_init_producer_id(), None);
    s.append(t0, &tp(0), record(1, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    assert_eq!(header(&tx.requests[0].batches[0].1), (-1, -1, -1, 1));
}

#[test]
fn abort_fails_everything_once() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.append(t0, &tp(0), record(2, 10)).ok();
    s.abort(&ProduceError::Closed);
    // A late response changes nothing.
    s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), 0)]));
    let mut ids: Vec<u64> = s.take_outcomes().iter().map(|o| o.delivery).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    assert!(matches!(
        s.append(t0, &tp(0), record(3, 1)),
        Err(ProduceError::Closed)
    ));
}

#[test]
fn retries_run_out_with_the_last_error() {
    let t0 = Instant::now();
    let mut cfg = config(true, 1_000, 100_000);
    cfg.retries = 1;
    let mut s = SenderState::new(cfg);
    s.handle_producer_id(42, 0);
    s.append(t0, &tp(0), record(1, 10)).ok();
    let mut now = t0 + LINGER;
    for attempt in 1..=2 {
        let tx = s.poll_requests(now, &leader);
        assert_eq!(tx.requests.len(), 1, "attempt {attempt}");
        s.handle_result(
            now,
            tx.requests[0].id,
            Ok(vec![refused(tp(0), ResponseError::NotLeaderOrFollower)]),
        );
        now += Duration::from_secs(2);
    }
    let outcomes = s.take_outcomes();
    assert!(matches!(
        outcomes[0].result,
        Err(ProduceError::Broker {
            code: ResponseError::NotLeaderOrFollower,
            ..
        })
    ));
    // Its sequence is unresolved: the epoch is bumped before anything else is sent.
    assert_eq!(s.poll_init_producer_id(), Some((42, 0)));
}

#[test]
fn an_expired_retry_bumps_the_epoch() {
    let t0 = Instant::now();
    let mut s = sent_and_lost(t0);
    s.expire(t0 + DELIVERY);
    assert!(matches!(
        s.take_outcomes()[0].result,
        Err(ProduceError::DeliveryTimeout { sent: true, .. })
    ));
    assert_eq!(s.poll_init_producer_id(), Some((42, 0)));
    s.handle_producer_id(42, 1);
    s.append(t0 + DELIVERY, &tp(0), record(2, 10)).ok();
    let tx = s.poll_requests(t0 + DELIVERY + LINGER, &leader);
    assert_eq!(header(&tx.requests[0].batches[0].1), (42, 1, 0, 1));
}

#[test]
fn a_refused_epoch_bump_asks_for_a_new_producer_id() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(
        t0,
        tx.requests[0].id,
        Ok(vec![refused(tp(0), ResponseError::UnknownProducerId)]),
    );
    assert_eq!(s.poll_init_producer_id(), Some((42, 0)));
    let refused_bump = ProduceError::Closed;
    assert!(s.handle_producer_id_error(&refused_bump));
    assert_eq!(s.poll_init_producer_id(), Some((-1, -1)));
    assert!(
        s.take_outcomes().is_empty(),
        "the batch waits for the new id"
    );
    // A first InitProducerId refused for good fails everything.
    assert!(!s.handle_producer_id_error(&refused_bump));
    assert_eq!(s.take_outcomes().len(), 1);
}

#[test]
fn request_failures_retry_unless_permanent() {
    let t0 = Instant::now();
    let cases = [
        (Error::UnknownBroker { node_id: 3 }, true),
        (
            Error::ConnectTimeout {
                broker: "b".into(),
                after: Duration::from_secs(10),
            },
            true,
        ),
        (Error::NoBrokers, false),
    ];
    for (error, retried) in cases {
        let mut s = idempotent_state();
        s.append(t0, &tp(0), record(1, 10)).ok();
        let tx = s.poll_requests(t0 + LINGER, &leader);
        s.handle_result(t0, tx.requests[0].id, Err(error.clone()));
        assert_eq!(s.take_outcomes().is_empty(), retried, "{error}");
    }
}

#[test]
fn a_leader_with_batches_waiting_and_no_answer_becomes_unavailable_until_it_answers() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut s = idempotent_state();
    let mut ids = Vec::new();
    // Five requests in flight to node 1 (max.in.flight), one partition each, none answered.
    for p in 0..5u64 {
        let at = t0 + ms(p);
        s.append(at, &tp(p as i32), record(p, 10)).ok();
        let tx = s.poll_requests(at + LINGER, &leader);
        assert_eq!(tx.requests.len(), 1);
        ids.push((tx.requests[0].id, p as i32));
    }
    let drained = t0 + ms(4) + LINGER;
    assert!(!s.node_latency().is_unavailable(1, ms(100)));
    // A sixth partition's batch waits: nothing is taken for node 1.
    s.append(t0 + ms(10), &tp(5), record(5, 10)).ok();
    let later = drained + ms(300);
    assert!(s.poll_requests(later, &leader).requests.is_empty());
    assert_eq!(s.node_latency().stalled_for(1), ms(300));
    assert!(s.node_latency().is_unavailable(1, ms(250)));
    assert!(!s.node_latency().is_unavailable(1, ms(300)));
    assert!(!s.node_latency().is_unavailable(1, Duration::ZERO));
    // A lost connection is no progress; an answer is.
    let (first, _) = ids[0];
    s.handle_result(later + ms(1), first, Err(timed_out()));
    assert!(s.node_latency().is_unavailable(1, ms(250)));
    let (second, p2) = ids[1];
    s.handle_result(later + ms(2), second, Ok(vec![written(tp(p2), 0)]));
    assert!(!s.node_latency().is_unavailable(1, ms(1)));
}

/// Found by the deterministic simulation (`sim::producer`, seed 1096 of `leader_moves` in a
/// long run): a batch's response hangs on the connection to a former leader while later
/// batches are acknowledged by the new one. A broker recognises a resend among the producer's
/// last 5 batches of a partition only: once 5 later batches were written, the hanging batch's
/// resend was refused as out of order although it was written, and its records failed "for
/// good". No more than 5 batches of a partition are sent from its oldest unanswered one on.
#[test]
fn no_more_than_five_batches_from_the_oldest_unanswered_one() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(0, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), 0)]));
    // Batch 1 to node 1: its response hangs.
    s.append(t0, &tp(0), record(1, 10)).ok();
    let hanging = s.poll_requests(t0 + LINGER, &leader).requests[0].id;
    // The leader moved to node 2: batches 2.. are sent there and acknowledged.
    let moved = |_: &TopicPartition| Some(2);
    let mut sent = 0;
    for id in 2..10u64 {
        s.append(t0, &tp(0), record(id, 10)).ok();
        let tx = s.poll_requests(t0 + LINGER * 2, &moved);
        for r in tx.requests {
            sent += 1;
            s.handle_result(t0, r.id, Ok(vec![written(tp(0), id as i64)]));
        }
    }
    assert_eq!(
        sent, 4,
        "batches 2..=5 only: 6 would push batch 1 out of the window"
    );
    // Batch 1's connection fails: it is resent alone, then the rest follows.
    s.handle_result(
        t0,
        hanging,
        Err(Error::ConnectionClosed {
            broker: "b".into(),
            api: ApiKey::Produce,
        }),
    );
    let tx = s.poll_requests(t0 + Duration::from_secs(2), &moved);
    assert_eq!(tx.requests.len(), 1);
    assert_eq!(
        header(&tx.requests[0].batches[0].1).2,
        1,
        "batch 1's sequence"
    );
    s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), 1)]));
    assert!(
        s.poll_requests(t0 + Duration::from_secs(3), &moved)
            .requests
            .len()
            == 1
    );
}

/// Found by the deterministic simulation (`sim::producer`, seed 161 of `idempotent_acks_all`
/// in a long run): a batch failed (it expired) while a later batch of its partition, already
/// written, waited for a resend; the epoch was bumped at once and the later batch re-sequenced
/// under the new epoch: written twice. The later batches resolve the failed one's sequence
/// first: only their refusal as out of order (nothing of them written) bumps the epoch.
#[test]
fn a_failed_batch_lets_later_batches_resolve_its_sequence_before_a_bump() {
    let t0 = Instant::now();
    let mut s = idempotent_state();
    s.append(t0, &tp(0), record(0, 10)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), 0)]));
    s.take_outcomes();
    s.append(t0, &tp(0), record(1, 10)).ok();
    let first = s.poll_requests(t0 + LINGER, &leader).requests[0].id;
    s.append(t0, &tp(0), record(2, 10)).ok();
    let second = s.poll_requests(t0 + LINGER, &leader).requests[0].id;
    s.handle_result(
        t0,
        first,
        Ok(vec![refused(tp(0), ResponseError::InvalidRecord)]),
    );
    assert_eq!(s.take_outcomes().len(), 1, "record 1 failed");
    assert_eq!(
        s.poll_init_producer_id(),
        None,
        "the later batch is in flight"
    );
    assert!(
        !s.needs_epoch_bump(),
        "no bump while the later batch may resolve it"
    );
    // Record 1 was not written: the broker refuses record 2's batch as out of order.
    s.handle_result(
        t0,
        second,
        Ok(vec![refused(
            tp(0),
            ResponseError::OutOfOrderSequenceNumber,
        )]),
    );
    assert_eq!(s.poll_init_producer_id(), Some((42, 0)));
    s.handle_producer_id(42, 1);
    let tx = s.poll_requests(t0 + Duration::from_secs(2), &leader);
    assert_eq!(header(&tx.requests[0].batches[0].1), (42, 1, 0, 1));
}

/// A retry waits `retry.backoff.ms`, doubling per attempt up to `retry.backoff.max.ms`, with
/// no jitter: the state is deterministic (the jitter-free source sits at the middle of the
/// ±20 % range, factor 1).
#[test]
fn retry_backoff_doubles_per_attempt_without_jitter() {
    let s = SenderState::<u64>::new(config(true, 1 << 14, 1 << 20));
    let ms = Duration::from_millis;
    assert_eq!(s.retry_backoff(1), ms(100));
    assert_eq!(s.retry_backoff(2), ms(200));
    assert_eq!(s.retry_backoff(3), ms(400));
    assert_eq!(s.retry_backoff(10), ms(1_000));
}
