//! [`Idempotence`] driven directly: which producer id and epoch a partition's sequences run
//! under. Written for the mutants of `Idempotence::assign` and `needs_producer_id` that
//! `scripts/mutants.sh producer` found alive (the sender never drains without a producer id,
//! and the scripted tests use producer ids above 0).

use super::*;

/// (producer id, epoch, base sequence) of a batch of `count` records of `tp` drained now.
fn drained(idem: &mut Idempotence, tp: &TopicPartition, count: usize) -> Option<(i64, i16, i32)> {
    idem.assign(tp, count)
        .map(|s| (s.producer_id, s.producer_epoch, s.base_sequence))
}

#[test]
fn a_partition_drained_first_runs_under_the_current_producer_id_and_epoch() {
    let (a, b, c) = (tp(0), tp(1), tp(2));
    let mut idem = Idempotence::new(true);
    assert_eq!(drained(&mut idem, &a, 1), None, "no producer id yet");
    assert_eq!(idem.partition_producer(&a), None);
    assert!(idem.needs_producer_id() && !idem.can_send());
    // Producer id 0: the first one a new cluster hands out.
    idem.set_producer_id(0, 0);
    assert!(!idem.needs_producer_id() && idem.can_send());
    assert_eq!(drained(&mut idem, &a, 2), Some((0, 0, 0)));
    assert_eq!(drained(&mut idem, &b, 1), Some((0, 0, 0)));
    assert_eq!(idem.partition_producer(&a), Some((0, 0)));
    // A bump for `b` only: `a` keeps epoch 0 and its sequences; `c`, never drained before,
    // starts under the new epoch.
    idem.request_epoch_bump_for(&b);
    idem.set_producer_id(0, 1);
    assert_eq!(drained(&mut idem, &a, 1), Some((0, 0, 2)));
    assert_eq!(drained(&mut idem, &b, 1), Some((0, 1, 0)));
    assert_eq!(drained(&mut idem, &c, 1), Some((0, 1, 0)));
    assert_eq!(idem.partition_producer(&c), Some((0, 1)));
}
