//! Batches refused as too large (`MESSAGE_TOO_LARGE`, `RECORD_LIST_TOO_LARGE`): split and sent
//! again in pieces, in order, under the sequence numbers they already had.

use super::*;
use bytes::Bytes;
use kafkit_wire::record::BatchReader;

/// A state whose `tp(0)` queue holds one batch of `n` records of 100 bytes (ids 0..n), drained
/// into one request (returned: id, base sequence, record count).
fn one_batch(s: &mut SenderState<u64>, t0: Instant, n: u64) -> (u64, i32, i32) {
    for id in 0..n {
        s.append(t0, &tp(0), record(id, 100)).ok();
    }
    let tx = s.poll_requests(t0 + LINGER, &leader);
    assert_eq!(tx.requests.len(), 1);
    let h = header(&tx.requests[0].batches[0].1);
    (tx.requests[0].id, h.2, h.3)
}

/// Polls one request and returns (id, epoch, base sequence, record count, transactional).
fn next_piece(s: &mut SenderState<u64>, now: Instant) -> (u64, i16, i32, i32) {
    let tx = s.poll_requests(now, &leader);
    assert_eq!(tx.requests.len(), 1, "one request");
    assert_eq!(tx.requests[0].batches.len(), 1);
    let h = header(&tx.requests[0].batches[0].1);
    (tx.requests[0].id, h.1, h.2, h.3)
}

fn too_large() -> RequestResult {
    Ok(vec![refused(tp(0), ResponseError::MessageTooLarge)])
}

#[test]
fn a_batch_refused_as_too_large_is_sent_in_halves_under_its_own_sequences() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(true, 100_000, 1_000_000));
    s.handle_producer_id(42, 0);
    let (id, base, count) = one_batch(&mut s, t0, 8);
    assert_eq!((base, count), (0, 8));
    assert_eq!(s.next_sequence(&tp(0)), 8);
    s.handle_result(t0, id, too_large());
    assert!(s.take_outcomes().is_empty(), "nothing fails: it is split");
    assert_eq!(s.stats().batch_splits, 1);
    s.check_invariants().unwrap();
    // Half the records, at once (no backoff), from the batch's own first sequence.
    let (id, _, base, count) = next_piece(&mut s, t0);
    assert_eq!((base, count), (0, 4));
    // Nothing else of the partition goes while a piece is in flight.
    assert!(s.poll_requests(t0, &leader).requests.is_empty());
    s.handle_result(t0, id, too_large());
    let (id, _, base, count) = next_piece(&mut s, t0);
    assert_eq!((base, count), (0, 2));
    s.handle_result(t0, id, Ok(vec![written(tp(0), 100)]));
    assert_eq!(offsets(&s.take_outcomes()), [(0, 100), (1, 101)]);
    // The rest goes in pieces of the size that got through.
    let mut next = 2;
    while !s.is_idle() {
        let (id, _, base, count) = next_piece(&mut s, t0);
        assert_eq!((base, count), (next, 2));
        s.handle_result(t0, id, Ok(vec![written(tp(0), 100 + i64::from(next))]));
        next += 2;
        s.check_invariants().unwrap();
    }
    let got = offsets(&s.take_outcomes());
    assert_eq!(
        got,
        [(2, 102), (3, 103), (4, 104), (5, 105), (6, 106), (7, 107)]
    );
    assert_eq!(
        s.next_sequence(&tp(0)),
        8,
        "the partition's sequence is unchanged"
    );
    assert_eq!(s.stats().records_sent, 8);
    assert_eq!(s.stats().epoch_bumps, 0);
}

#[test]
fn record_list_too_large_splits_too() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(false, 1_000, 1_000_000));
    let (id, _, count) = one_batch(&mut s, t0, 8);
    assert_eq!(count, 8);
    let refused = refused(tp(0), ResponseError::RecordListTooLarge);
    s.handle_result(t0, id, Ok(vec![refused]));
    let (_, _, seq, count) = next_piece(&mut s, t0);
    assert_eq!((seq, count), (-1, 4), "no sequences without idempotence");
}

#[test]
fn later_batches_keep_their_sequences_across_a_split() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(true, 1_000, 1_000_000));
    s.handle_producer_id(42, 0);
    // Confirm the partition so that batches pipeline.
    s.append(t0, &tp(0), record(100, 10)).ok();
    let first = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0, first.requests[0].id, Ok(vec![written(tp(0), 0)]));
    s.take_outcomes();
    // Two full batches (8 records each), both in flight.
    for id in 0..16 {
        s.append(t0, &tp(0), record(id, 100)).ok();
    }
    let a = next_piece(&mut s, t0 + LINGER);
    let b = next_piece(&mut s, t0 + LINGER);
    assert_eq!((a.2, a.3, b.2, b.3), (1, 8, 9, 8));
    // A is too large; B, behind it, is out of order (A's sequences are not in the log).
    s.handle_result(t0, a.0, too_large());
    let oos = refused(tp(0), ResponseError::OutOfOrderSequenceNumber);
    s.handle_result(t0, b.0, Ok(vec![oos]));
    assert_eq!(s.stats().epoch_bumps, 0, "a split is not a sequence error");
    s.check_invariants().unwrap();
    let mut offset = 1;
    let mut later = t0;
    let mut bases = Vec::new();
    while !s.is_idle() {
        later += Duration::from_secs(1); // past B's backoff
        let (id, epoch, base, count) = next_piece(&mut s, later);
        assert_eq!(epoch, 0);
        bases.push((base, count));
        s.handle_result(later, id, Ok(vec![written(tp(0), offset)]));
        offset += i64::from(count);
        s.check_invariants().unwrap();
    }
    // A in halves, then B whole under the sequence it was first given.
    assert_eq!(bases, [(1, 4), (5, 4), (9, 8)]);
    let got: Vec<u64> = offsets(&s.take_outcomes()).iter().map(|o| o.0).collect();
    assert_eq!(
        got,
        (0..16).collect::<Vec<_>>(),
        "every record once, in order"
    );
}

#[test]
fn a_single_record_too_large_fails_alone_and_the_rest_goes_on() {
    for idempotent in [true, false] {
        let t0 = Instant::now();
        let mut s = SenderState::new(config(idempotent, 100_000, 1_000_000));
        if idempotent {
            s.handle_producer_id(42, 0);
        }
        let (id, _, _) = one_batch(&mut s, t0, 2);
        s.handle_result(t0, id, too_large());
        let (id, _, _, count) = next_piece(&mut s, t0);
        assert_eq!(count, 1);
        s.handle_result(t0, id, too_large());
        let outcomes = s.take_outcomes();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].delivery, 0);
        assert!(matches!(
            &outcomes[0].result,
            Err(ProduceError::Broker {
                code: ResponseError::MessageTooLarge,
                ..
            })
        ));
        s.check_invariants().unwrap();
        if idempotent {
            // Its sequence is a gap now: a new epoch, and the rest starts it at 0.
            assert!(s.poll_requests(t0, &leader).requests.is_empty());
            assert_eq!(s.poll_init_producer_id(), Some((42, 0)));
            s.handle_producer_id(42, 1);
        }
        let (id, epoch, base, count) = next_piece(&mut s, t0);
        if idempotent {
            assert_eq!((epoch, base, count), (1, 0, 1));
        } else {
            assert_eq!((base, count), (-1, 1));
        }
        s.handle_result(t0, id, Ok(vec![written(tp(0), 7)]));
        assert_eq!(offsets(&s.take_outcomes()), [(1, 7)]);
        assert!(s.is_idle());
        assert_eq!(s.stats().records_failed, 1);
    }
}

#[test]
fn a_lost_piece_is_resent_with_the_same_records_and_sequence() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(true, 100_000, 1_000_000));
    s.handle_producer_id(42, 0);
    let (id, _, _) = one_batch(&mut s, t0, 4);
    s.handle_result(t0, id, too_large());
    let (id, _, base, count) = next_piece(&mut s, t0);
    s.handle_result(t0, id, Err(timed_out()));
    let resent = next_piece(&mut s, t0 + Duration::from_secs(1));
    assert_eq!((resent.2, resent.3), (base, count));
    s.handle_result(
        t0,
        resent.0,
        Ok(vec![refused(tp(0), ResponseError::DuplicateSequenceNumber)]),
    );
    assert_eq!(offsets(&s.take_outcomes()), [(0, -1), (1, -1)]);
    let (_, _, base, count) = next_piece(&mut s, t0 + Duration::from_secs(1));
    assert_eq!((base, count), (2, 2));
}

#[test]
fn a_split_batch_takes_no_more_records() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(true, 100_000, 1_000_000));
    s.handle_producer_id(42, 0);
    let (id, _, _) = one_batch(&mut s, t0, 4);
    s.handle_result(t0, id, too_large());
    let appended = s.append(t0, &tp(0), record(9, 100)).unwrap();
    assert!(appended.new_batch, "a new batch behind the split one");
    s.check_invariants().unwrap();
}

#[test]
fn a_split_batch_expires_whole() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(true, 100_000, 1_000_000));
    s.handle_producer_id(42, 0);
    let (id, _, _) = one_batch(&mut s, t0, 4);
    s.handle_result(t0, id, too_large());
    s.expire(t0 + DELIVERY + LINGER);
    let outcomes = s.take_outcomes();
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes.iter().all(|o| matches!(
        o.result,
        Err(ProduceError::DeliveryTimeout { sent: true, .. })
    )));
    assert!(s.is_idle());
}

/// The values (record ids) of an encoded batch.
fn ids(bytes: &Bytes) -> Vec<u64> {
    BatchReader::new(bytes.clone())
        .flatten()
        .flat_map(|b| {
            b.records()
                .iter()
                .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn without_idempotence_each_piece_carries_the_next_records() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(false, 100_000, 1_000_000));
    // Records told apart by their length: 100..=105 bytes.
    for id in 0..6u64 {
        let len = 100 + usize::try_from(id).unwrap();
        s.append(t0, &tp(0), record(id, len)).ok();
    }
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0, tx.requests[0].id, too_large());
    let mut seen = Vec::new();
    while !s.is_idle() {
        let tx = s.poll_requests(t0, &leader);
        let (id, bytes) = (tx.requests[0].id, tx.requests[0].batches[0].1.clone());
        seen.extend(ids(&bytes));
        s.handle_result(t0, id, Ok(vec![written(tp(0), 0)]));
    }
    assert_eq!(seen, [100, 101, 102, 103, 104, 105]);
}

#[test]
fn concurrent_transactions_on_produce_is_retried() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(true, 100_000, 1_000_000));
    s.handle_producer_id(42, 0);
    let (id, _, _) = one_batch(&mut s, t0, 2);
    let refused = refused(tp(0), ResponseError::ConcurrentTransactions);
    s.handle_result(t0, id, Ok(vec![refused]));
    assert!(s.take_outcomes().is_empty());
    let (_, _, base, count) = next_piece(&mut s, t0 + Duration::from_secs(1));
    assert_eq!((base, count), (0, 2), "the same batch, same sequence");
}

/// A split cuts by bytes, not by record count: a batch whose first record holds most of its
/// bytes sends that record alone first, then the small ones together (pieces are sized from
/// the records read back from the batch's bytes).
#[test]
fn a_split_halves_the_bytes_not_the_count() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(true, 100_000, 1_000_000));
    s.handle_producer_id(42, 0);
    s.append(t0, &tp(0), record(0, 2_000)).ok();
    for id in 1..10 {
        s.append(t0, &tp(0), record(id, 100)).ok();
    }
    let tx = s.poll_requests(t0 + LINGER, &leader);
    let id = tx.requests[0].id;
    assert_eq!(header(&tx.requests[0].batches[0].1).3, 10);
    s.handle_result(t0, id, too_large());
    let (id, _, base, count) = next_piece(&mut s, t0);
    assert_eq!((base, count), (0, 1), "the large record is half the bytes");
    s.handle_result(t0, id, Ok(vec![written(tp(0), 500)]));
    let (id, _, base, count) = next_piece(&mut s, t0);
    assert_eq!(
        (base, count),
        (1, 9),
        "the small ones fit the split size together"
    );
    s.handle_result(t0, id, Ok(vec![written(tp(0), 501)]));
    let got = offsets(&s.take_outcomes());
    assert_eq!(got.len(), 10);
    assert!(got
        .iter()
        .zip(0..)
        .all(|(&(rid, off), i)| rid == i && off == 500 + i as i64));
    assert!(s.is_idle());
}

/// While a piece of a split batch is in flight, a newer batch of its partition waits, even
/// once the partition has had a batch acknowledged (pipelining is otherwise allowed): a piece
/// is the only batch of its partition in flight.
#[test]
fn a_piece_in_flight_holds_back_newer_batches() {
    let t0 = Instant::now();
    let mut s = SenderState::new(config(true, 100_000, 1_000_000));
    s.handle_producer_id(42, 0);
    s.append(t0, &tp(0), record(100, 100)).ok();
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), 0)]));
    assert_eq!(offsets(&s.take_outcomes()), [(100, 0)]);
    let mut first = Vec::new();
    for id in 0..8 {
        s.append(t0, &tp(0), record(id, 100)).ok();
    }
    let tx = s.poll_requests(t0 + LINGER, &leader);
    s.handle_result(t0, tx.requests[0].id, too_large());
    let (id, _, base, count) = next_piece(&mut s, t0);
    assert_eq!((base, count), (1, 4));
    s.append(t0, &tp(0), record(200, 100)).ok();
    assert!(
        s.poll_requests(t0 + LINGER, &leader).requests.is_empty(),
        "the newer batch waits for the piece"
    );
    s.handle_result(t0, id, Ok(vec![written(tp(0), 1)]));
    first.extend(offsets(&s.take_outcomes()));
    while !s.is_idle() {
        let tx = s.poll_requests(t0 + LINGER, &leader);
        assert_eq!(tx.requests.len(), 1, "one batch at a time");
        let h = header(&tx.requests[0].batches[0].1);
        let base = i64::from(h.2);
        s.handle_result(t0, tx.requests[0].id, Ok(vec![written(tp(0), base)]));
        first.extend(offsets(&s.take_outcomes()));
    }
    let ids: Vec<u64> = first.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6, 7, 200]);
    assert!(first.iter().zip(1..).all(|(&(_, off), i)| off == i));
}
