//! The accumulator's own decisions (drain rotation, byte budget, retry backoff, expiry), driven
//! directly, and the codec settings reaching the encoded batch. Each test here was written for a
//! mutant `scripts/mutants.sh producer` found alive.

use super::*;

/// An accumulator whose batches hold one 100-byte record each (`batch.size` 1).
fn one_record_batches(max_request_size: usize) -> Accumulator<u64> {
    Accumulator::new(AccumulatorConfig {
        batch_size: 1,
        linger: LINGER,
        delivery_timeout: DELIVERY,
        max_request_size,
    })
}

/// The partitions of one drain, in drain order.
fn drained(acc: &mut Accumulator<u64>, now: Instant) -> Vec<i32> {
    acc.drain(now, 1, &leader, &|_| true)
        .iter()
        .map(|b| b.tp.partition)
        .collect()
}

/// The size of one queued one-record batch.
fn batch_size() -> usize {
    let mut acc = one_record_batches(10_000);
    acc.append(Instant::now(), &tp(0), record(0, 100)).unwrap();
    let size = acc.batches(&tp(0)).next().map_or(0, ProducerBatch::size);
    size
}

#[test]
fn each_drain_starts_one_partition_further_so_none_starves() {
    let size = batch_size();
    let t0 = Instant::now();
    // Room for one batch per drain, three partitions with three batches each.
    let mut acc = one_record_batches(size + size / 2);
    for p in 0..3 {
        for id in 0..3 {
            acc.append(t0, &tp(p), record(id, 100)).unwrap();
        }
    }
    let order: Vec<Vec<i32>> = (0..3).map(|_| drained(&mut acc, t0)).collect();
    assert_eq!(order, [vec![0], vec![1], vec![2]]);
}

#[test]
fn a_drain_takes_batches_up_to_exactly_max_request_size() {
    let size = batch_size();
    let t0 = Instant::now();
    for (max, taken) in [(2 * size, 2), (2 * size - 1, 1)] {
        let mut acc = one_record_batches(max);
        acc.append(t0, &tp(0), record(0, 100)).unwrap();
        acc.append(t0, &tp(1), record(1, 100)).unwrap();
        assert_eq!(drained(&mut acc, t0).len(), taken, "max.request.size {max}");
    }
}

#[test]
fn a_batch_in_retry_backoff_is_drained_at_its_time_not_before() {
    let t0 = Instant::now();
    let mut acc = one_record_batches(10_000);
    acc.append(t0, &tp(0), record(0, 100)).unwrap();
    let mut batch = acc.drain(t0, 1, &leader, &|_| true).pop().unwrap();
    let due = t0 + Duration::from_millis(100);
    batch.retry_at = Some(due);
    acc.reenqueue(batch);
    assert!(drained(&mut acc, due - Duration::from_millis(1)).is_empty());
    assert_eq!(drained(&mut acc, due), [0]);
}

#[test]
fn expiry_takes_the_batches_past_their_delivery_timeout_only() {
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(10);
    let mut acc = one_record_batches(10_000);
    acc.append(t0, &tp(0), record(0, 100)).unwrap();
    acc.append(later, &tp(0), record(1, 100)).unwrap();
    assert!(acc
        .expire(t0 + DELIVERY - Duration::from_millis(1))
        .is_empty());
    let expired = acc.expire(t0 + DELIVERY);
    assert_eq!(expired.iter().map(|b| b.id).collect::<Vec<_>>(), [0]);
    assert_eq!(acc.batch_ids(), [1], "the batch created 10 s later stays");
}

/// The batch a sender built for 20 compressible records under `compression` at `level`.
fn encoded_with(compression: Compression, level: Option<i32>) -> Bytes {
    let t0 = Instant::now();
    let mut cfg = config(false, 16_384, 1 << 20);
    cfg.compression = compression;
    cfg.compression_level = level;
    let mut s = SenderState::new(cfg);
    for id in 0..20 {
        let value = format!("{{\"event\":\"click\",\"user\":\"u-{id}\",\"page\":\"/home\"}}");
        let r = BufferedRecord::new(1_000, None, Some(Bytes::from(value)), id);
        s.append(t0, &tp(0), r).unwrap();
    }
    let tx = s.poll_requests(t0 + LINGER, &leader);
    tx.requests[0].batches[0].1.clone()
}

// Found by cargo-mutants: `compression.type` and `compression.<codec>.level` reached the wire
// only in the integration suites.
#[test]
fn batches_are_compressed_with_the_configured_codec_and_level() {
    for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
        let bytes = encoded_with(codec, None);
        let batch = BatchReader::new(bytes).next().unwrap().unwrap();
        assert_eq!(batch.header.attributes.compression, codec);
        assert_eq!(batch.records().len(), 20);
    }
    // gzip level 1 and 9 write different bytes for the same records.
    let fast = encoded_with(Compression::Gzip, Some(1));
    let best = encoded_with(Compression::Gzip, Some(9));
    assert_ne!(fast[61..], best[61..], "the level reached the encoder");
}

#[test]
fn queued_batches_are_counted_for_the_one_topic_in_partition_order() {
    let t0 = Instant::now();
    let mut acc = one_record_batches(10_000);
    // Topics sorting just before and after "t" must not leak into its range.
    for (topic, partition, id) in [
        ("s", 0, 0),
        ("t", 2, 1),
        ("t", 2, 2),
        ("t", 0, 3),
        ("tt", 1, 4),
    ] {
        acc.append(t0, &TopicPartition::new(topic, partition), record(id, 100))
            .unwrap();
    }
    let counted: Vec<(i32, usize)> = acc.queued_batches("t").collect();
    assert_eq!(counted, [(0, 1), (2, 2)]);
    assert_eq!(acc.queued_batches("u").count(), 0);
}
