//! [`ProducerBatch`]: the records bound for one partition that travel together.
//!
//! Records are buffered as they come (their `Bytes` are moved in, not copied) and encoded
//! into a v2 batch when the batch is drained, once its sequence number is known; the encoded
//! bytes are kept for retries and re-encoded only if the sequence changes (after an epoch bump).

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafkit_wire::compression::Compression;
use kafkit_wire::record::varint::MAX_VARINT_LEN;
use kafkit_wire::record::{
    headers_size, max_record_size, record_size, BatchBuilder, BatchOptions, HeaderBlock, RecordRef,
};

use super::idempotence::increment_sequence;
use crate::producer::{HeaderName, ProduceError, RecordMetadata};

/// The v2 batch header (offset, length, …, record count): what a batch costs before records.
pub const BATCH_OVERHEAD: usize = 61;

/// A topic-partition. Ordered by topic name, then partition; comparing two that share the
/// topic's `Arc` skips the name comparison.
#[derive(Debug, Clone)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl PartialEq for TopicPartition {
    fn eq(&self, other: &Self) -> bool {
        self.partition == other.partition
            && (Arc::ptr_eq(&self.topic, &other.topic) || self.topic == other.topic)
    }
}

impl Eq for TopicPartition {}

impl Hash for TopicPartition {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.topic.hash(state);
        self.partition.hash(state);
    }
}

impl PartialOrd for TopicPartition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TopicPartition {
    fn cmp(&self, other: &Self) -> Ordering {
        let topic = if Arc::ptr_eq(&self.topic, &other.topic) {
            Ordering::Equal
        } else {
            self.topic.cmp(&other.topic)
        };
        topic.then(self.partition.cmp(&other.partition))
    }
}

/// One record waiting in a batch, with the handle that will receive its outcome.
#[derive(Debug)]
pub struct BufferedRecord<D> {
    /// Create time (ms since the epoch).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub(crate) headers: Vec<(HeaderName, Option<Bytes>)>,
    /// The headers' encoded size ([`headers_size`] of `headers`), computed once when the
    /// record is made: every later sizing (reservation, batch fill, encode) takes it from
    /// here instead of walking the headers again.
    pub(crate) headers_size: usize,
    /// Headers encoded once and shared, written before `headers` (one copy).
    pub(crate) header_block: Option<HeaderBlock>,
    /// Where the outcome goes.
    pub delivery: D,
    /// `buffer.memory` bytes reserved for this record, released with its outcome. When not
    /// 0 it is the record's [`max_size`](BufferedRecord::max_size) (what the producer
    /// reserves), and the accumulator takes it as such.
    pub reserved: usize,
}

impl<D> BufferedRecord<D> {
    /// A record with no headers and nothing reserved.
    pub fn new(timestamp: i64, key: Option<Bytes>, value: Option<Bytes>, delivery: D) -> Self {
        BufferedRecord {
            timestamp,
            key,
            value,
            headers: Vec::new(),
            headers_size: 0,
            header_block: None,
            delivery,
            reserved: 0,
        }
    }

    /// The same record with `headers` (sized here, once).
    pub fn with_headers(self, headers: Vec<(HeaderName, Option<Bytes>)>) -> Self {
        let headers_size = headers_size(&headers);
        BufferedRecord {
            headers,
            headers_size,
            ..self
        }
    }

    /// The same record with `block`'s headers written before its own.
    pub fn with_header_block(self, block: HeaderBlock) -> Self {
        BufferedRecord {
            header_block: Some(block),
            ..self
        }
    }

    /// The headers (those of the [`header_block`](BufferedRecord::header_block) not
    /// included).
    pub fn headers(&self) -> &[(HeaderName, Option<Bytes>)] {
        &self.headers
    }

    /// The shared header block written before [`headers`](BufferedRecord::headers).
    pub fn header_block(&self) -> Option<&HeaderBlock> {
        self.header_block.as_ref()
    }

    /// The encoded size of all the record's headers, its block's included.
    fn all_headers_size(&self) -> usize {
        self.headers_size
            .saturating_add(self.header_block.as_ref().map_or(0, HeaderBlock::size))
    }

    /// The same record with another delivery handle.
    pub fn with_delivery<E>(self, delivery: E) -> BufferedRecord<E> {
        BufferedRecord {
            timestamp: self.timestamp,
            key: self.key,
            value: self.value,
            headers: self.headers,
            headers_size: self.headers_size,
            header_block: self.header_block,
            delivery,
            reserved: self.reserved,
        }
    }

    /// An upper bound on this record's size in any batch, batch header included: what is
    /// checked against `max.request.size` and reserved from `buffer.memory`.
    pub fn max_size(&self) -> usize {
        max_buffered_size(
            self.key.as_deref(),
            self.value.as_deref(),
            self.all_headers_size(),
        )
    }

    fn size_at(&self, offset_delta: i32, timestamp_delta: i64) -> usize {
        let bare = RecordRef::new(self.timestamp, self.key.as_deref(), self.value.as_deref());
        // The length prefix may grow by a byte or two with headers: counted generously.
        record_size(offset_delta, timestamp_delta, &bare)
            .saturating_add(self.all_headers_size())
            .saturating_add(2)
    }
}

/// [`BufferedRecord::max_size`] of a record with this key and value and headers taking
/// `headers_size` bytes ([`headers_size`] of them), before it is one.
pub fn max_buffered_size(key: Option<&[u8]>, value: Option<&[u8]>, headers_size: usize) -> usize {
    max_record_size(&RecordRef::new(0, key, value))
        .saturating_add(headers_size)
        .saturating_add(MAX_VARINT_LEN)
        .saturating_add(BATCH_OVERHEAD)
}

/// The sequence a batch was given when first drained, under one producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record (wraps at `i32::MAX` to 0).
    pub base_sequence: i32,
    /// Position of the batch in its partition's send order (never wraps): orders batches
    /// whose `base_sequence` wrapped.
    pub order: u64,
}

/// Records for one partition that are sent, acknowledged or failed together.
#[derive(Debug)]
pub struct ProducerBatch<D> {
    pub(crate) tp: TopicPartition,
    pub(crate) id: u64,
    records: Vec<BufferedRecord<D>>,
    size: usize,
    base_timestamp: i64,
    pub(crate) created: Instant,
    pub(crate) attempts: u32,
    pub(crate) sequence: Option<Sequence>,
    pub(crate) retry_at: Option<Instant>,
    pub(crate) full: bool,
    /// Whether a request carrying the batch reached, or may have reached, a broker: set when
    /// a request's result is a response or a failure with an unknown outcome (the response
    /// was lost, the request timed out); a request that failed before it was written (no
    /// connection, backing off) leaves it as it was. Never cleared.
    pub(crate) sent: bool,
    /// Set once a broker refused the batch as too large (`MESSAGE_TOO_LARGE`,
    /// `RECORD_LIST_TOO_LARGE`): the estimated size pieces are cut to. A split batch is sent
    /// piece by piece from its front, each piece acknowledged before the next is sent.
    split_limit: Option<usize>,
    /// Records the next attempt carries, from the front (`None`: all of them).
    piece: Option<usize>,
    /// The encoding of the last attempt: under which sequence, how many records.
    encoded: Option<(Option<Sequence>, usize, Bytes)>,
}

impl<D> ProducerBatch<D> {
    /// An empty batch for `tp`, created `now`; `id` orders batches of one producer.
    pub fn new(tp: TopicPartition, id: u64, now: Instant) -> Self {
        ProducerBatch {
            tp,
            id,
            records: Vec::new(),
            size: BATCH_OVERHEAD,
            base_timestamp: 0,
            created: now,
            attempts: 0,
            sequence: None,
            retry_at: None,
            full: false,
            sent: false,
            split_limit: None,
            piece: None,
            encoded: None,
        }
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// Records in the batch.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Uncompressed size estimate (an upper bound), header included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many times the batch was sent.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether a request carrying it reached, or may have reached, a broker (see
    /// [`ProduceError::DeliveryTimeout`]): once `true`, it may be in the log.
    pub fn was_sent(&self) -> bool {
        self.sent
    }

    /// Its sequence, once drained under an idempotent producer.
    pub fn sequence(&self) -> Option<Sequence> {
        self.sequence
    }

    /// Records the next attempt carries (from the front): all of them unless the batch was
    /// split.
    pub fn piece_len(&self) -> usize {
        self.piece
            .map_or(self.records.len(), |n| n.min(self.records.len()))
    }

    /// Whether a broker refused the batch as too large, so that it is sent in pieces.
    pub fn is_split(&self) -> bool {
        self.split_limit.is_some()
    }

    /// The estimated size of a batch of the first `count` records (header included).
    fn estimate(&self, count: usize) -> usize {
        let base = self.records.first().map_or(0, |r| r.timestamp);
        self.records
            .iter()
            .take(count)
            .enumerate()
            .fold(BATCH_OVERHEAD, |total, (i, r)| {
                let delta = i32::try_from(i).unwrap_or(i32::MAX);
                total.saturating_add(r.size_at(delta, r.timestamp.saturating_sub(base)))
            })
    }

    /// How many records from the front fit in an estimated `limit` bytes (at least one).
    fn fit(&self, limit: usize) -> usize {
        let base = self.records.first().map_or(0, |r| r.timestamp);
        let mut total = BATCH_OVERHEAD;
        for (i, r) in self.records.iter().enumerate() {
            let delta = i32::try_from(i).unwrap_or(i32::MAX);
            total = total.saturating_add(r.size_at(delta, r.timestamp.saturating_sub(base)));
            if total > limit {
                return i.max(1);
            }
        }
        self.records.len()
    }

    /// The broker refused the last attempt's records as too large: the next attempt carries
    /// fewer of them — pieces of at most half that attempt's records (by estimated size), and at most
    /// `batch_size` (Java splits to `batch.size`; halving also gets under a topic's
    /// `max.message.bytes` smaller than `batch.size`). The batch keeps its id, place, sequence
    /// and completion; it is closed to appends and its attempts start again (as Java's split
    /// batches do). Returns `false`, changing nothing, when that attempt carried one record.
    pub(crate) fn split(&mut self, batch_size: usize) -> bool {
        let sent = self.piece_len();
        if sent < 2 {
            return false;
        }
        // Half the records' bytes, and a batch header.
        let records = self.estimate(sent).saturating_sub(BATCH_OVERHEAD);
        let limit = batch_size.min(records / 2 + BATCH_OVERHEAD);
        self.split_limit = Some(limit);
        self.piece = Some(self.fit(limit).min(sent - 1));
        self.encoded = None;
        self.full = true;
        self.attempts = 0;
        self.retry_at = None;
        true
    }

    /// Removes the records of the last attempt when others remain (a piece of a split batch
    /// was acknowledged, or its one record refused for good) and returns them; `None` when that
    /// attempt carried the whole batch. The sequence moves past the piece's records (the rest
    /// keeps the numbers that follow, so later batches keep theirs); the next piece is cut to
    /// the split size; attempts start again.
    pub(crate) fn take_piece(&mut self) -> Option<Vec<BufferedRecord<D>>> {
        let n = self.piece_len();
        if n >= self.records.len() {
            return None;
        }
        let piece: Vec<BufferedRecord<D>> = self.records.drain(..n).collect();
        if let Some(s) = &mut self.sequence {
            let count = i32::try_from(n).unwrap_or(i32::MAX);
            s.base_sequence = increment_sequence(s.base_sequence, count);
        }
        self.base_timestamp = self.records.first().map_or(0, |r| r.timestamp);
        self.size = self.estimate(self.records.len());
        self.piece = Some(self.split_limit.map_or(self.records.len(), |l| self.fit(l)));
        // Other records now (without idempotence the sequence and count may not change).
        self.encoded = None;
        self.attempts = 0;
        self.retry_at = None;
        Some(piece)
    }

    /// Appends `record` unless that would take a non-empty batch past `batch_size`; gives
    /// the record back then (and marks the batch full).
    pub fn try_append(
        &mut self,
        record: BufferedRecord<D>,
        batch_size: usize,
    ) -> Result<(), BufferedRecord<D>> {
        match self.room_for(&record, batch_size) {
            Some(added) => {
                self.push(record, added, batch_size);
                Ok(())
            }
            None => Err(record),
        }
    }

    /// What `record` adds to the batch's size, if it fits (`None`: it does not, and the batch
    /// is now full). An empty batch takes any record.
    pub(crate) fn room_for<T>(
        &mut self,
        record: &BufferedRecord<T>,
        batch_size: usize,
    ) -> Option<usize> {
        let offset_delta = i32::try_from(self.records.len()).unwrap_or(i32::MAX);
        let ts_delta = if self.records.is_empty() {
            0
        } else {
            record.timestamp.saturating_sub(self.base_timestamp)
        };
        let added = record.size_at(offset_delta, ts_delta);
        if !self.records.is_empty() && self.size.saturating_add(added) > batch_size {
            self.full = true;
            return None;
        }
        Some(added)
    }

    /// Appends `record`, which adds `added` bytes (from [`ProducerBatch::room_for`]).
    pub(crate) fn push(&mut self, record: BufferedRecord<D>, added: usize, batch_size: usize) {
        if self.records.is_empty() {
            self.base_timestamp = record.timestamp;
            // Room for as many records like the first as the batch can take: no regrowth.
            let fits = batch_size.saturating_sub(self.size) / added.max(1);
            self.records.reserve_exact(fits.clamp(1, 4096));
        }
        self.size = self.size.saturating_add(added);
        if self.size >= batch_size {
            self.full = true;
        }
        self.records.push(record);
    }

    /// The delivery handle of the last record appended, if any.
    pub(crate) fn last_delivery(&self) -> Option<&D> {
        self.records.last().map(|r| &r.delivery)
    }

    /// The encoded v2 batch of the next attempt's records (all of them, or the next piece of a
    /// split batch) under the current sequence; cached until either changes.
    pub fn encode(
        &mut self,
        compression: Compression,
        compression_level: Option<i32>,
        transactional: bool,
        scratch: &mut Vec<u8>,
    ) -> Result<Bytes, ProduceError> {
        let count = self.piece_len();
        if let Some((seq, n, bytes)) = &self.encoded {
            if *seq == self.sequence && *n == count {
                return Ok(bytes.clone());
            }
        }
        let mut buf = BytesMut::with_capacity(self.size);
        let mut builder = BatchBuilder::new(&mut buf, 0);
        for r in self.records.iter().take(count) {
            builder
                .append_with_block(
                    r.timestamp,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    r.header_block.as_ref(),
                    &r.headers,
                    r.headers_size,
                )
                .map_err(|e| ProduceError::Encode(e.to_string()))?;
        }
        let options = BatchOptions {
            compression,
            compression_level,
            producer_id: self.sequence.map_or(-1, |s| s.producer_id),
            producer_epoch: self.sequence.map_or(-1, |s| s.producer_epoch),
            base_sequence: self.sequence.map_or(-1, |s| s.base_sequence),
            transactional,
            ..BatchOptions::default()
        };
        builder
            .finish(&options, scratch)
            .map_err(|e| ProduceError::Encode(e.to_string()))?;
        let bytes = buf.freeze();
        self.encoded = Some((self.sequence, count, bytes.clone()));
        Ok(bytes)
    }

    /// The batch written from `base_offset` (-1 when unknown), with the broker's
    /// `log_append_time` (-1: each record keeps its create time).
    pub fn written(self, base_offset: i64, log_append_time: i64) -> BatchWritten<D> {
        BatchWritten {
            tp: self.tp,
            records: self.records,
            base_offset,
            log_append_time,
        }
    }

    /// Every record's failure with `error`.
    pub fn fail(self, error: &ProduceError) -> impl Iterator<Item = Outcome<D>> {
        fail_records(self.records, error)
    }
}

/// The success of `records` of `tp` written from `base_offset`: offsets from `base_offset`
/// (-1 stays -1), timestamps from `log_append_time` when the broker set one (not -1).
pub(crate) fn succeed_records<D>(
    tp: TopicPartition,
    records: Vec<BufferedRecord<D>>,
    base_offset: i64,
    log_append_time: i64,
) -> impl Iterator<Item = Outcome<D>> {
    records.into_iter().enumerate().map(move |(i, r)| {
        let offset = if base_offset < 0 {
            -1
        } else {
            base_offset.saturating_add(i64::try_from(i).unwrap_or(i64::MAX))
        };
        let timestamp = if log_append_time >= 0 {
            log_append_time
        } else {
            r.timestamp
        };
        Outcome {
            delivery: r.delivery,
            reserved: r.reserved,
            result: Ok(RecordMetadata {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
                timestamp,
            }),
        }
    })
}

/// The failure of `records` with `error`.
pub(crate) fn fail_records<D>(
    records: Vec<BufferedRecord<D>>,
    error: &ProduceError,
) -> impl Iterator<Item = Outcome<D>> {
    let error = error.clone();
    records.into_iter().map(move |r| Outcome {
        delivery: r.delivery,
        reserved: r.reserved,
        result: Err(error.clone()),
    })
}

/// One record's outcome, for the I/O layer to hand to its delivery handle.
#[derive(Debug)]
pub struct Outcome<D> {
    /// The record's delivery handle.
    pub delivery: D,
    /// `buffer.memory` bytes to release.
    pub reserved: usize,
    /// Where it was written, or why not.
    pub result: Result<RecordMetadata, ProduceError>,
}

/// A batch (or a piece of a split batch) the broker wrote: every record of it succeeded, the
/// first at `base_offset` and each next one at the next offset.
///
/// The sender hands a written batch on whole rather than as one [`Outcome`] per record: the
/// I/O layer completes all its records at once (as the Java client completes a batch's
/// futures from one result), and [`BatchWritten::into_outcomes`] gives the per-record view.
#[derive(Debug)]
pub struct BatchWritten<D> {
    /// Where the batch was written.
    pub tp: TopicPartition,
    /// Its records, in offset order.
    pub records: Vec<BufferedRecord<D>>,
    /// The first record's offset; -1 when unknown (`acks=0`, a duplicate).
    pub base_offset: i64,
    /// The broker's log append time for every record, or -1 (create time).
    pub log_append_time: i64,
}

impl<D> BatchWritten<D> {
    /// Each record's success: its offset and timestamp (see [`BatchWritten`]).
    pub fn into_outcomes(self) -> impl Iterator<Item = Outcome<D>> {
        succeed_records(
            self.tp,
            self.records,
            self.base_offset,
            self.log_append_time,
        )
    }
}

/// What the sender decided for the records handed to it: one record's outcome, or a whole
/// batch written.
#[derive(Debug)]
pub enum Completion<D> {
    /// One record's outcome (failures, one at a time).
    Record(Outcome<D>),
    /// Every record of a batch written.
    Written(BatchWritten<D>),
}

impl<D> Completion<D> {
    /// The records' outcomes, one per record.
    pub fn into_outcomes(self) -> impl Iterator<Item = Outcome<D>> {
        let (one, written) = match self {
            Completion::Record(outcome) => (Some(outcome), None),
            Completion::Written(batch) => (None, Some(batch.into_outcomes())),
        };
        one.into_iter().chain(written.into_iter().flatten())
    }
}

#[cfg(test)]
mod header_size_tests {
    use super::*;
    use kafkit_wire::record::{BatchReader, DecodeLimits};

    fn headers(count: usize, value_len: usize) -> Vec<(HeaderName, Option<Bytes>)> {
        (0..count)
            .map(|i| {
                let name = HeaderName::from("h".repeat(i * 9 % 70));
                let value = (i % 3 != 0).then(|| Bytes::from(vec![b'x'; value_len + i]));
                (name, value)
            })
            .collect()
    }

    /// A record whose first headers come as a shared block encodes to the same batch as the
    /// record with them all in its list, and is sized (reserved, batch fill) the same.
    #[test]
    fn a_header_block_encodes_like_the_plain_list() {
        for (count, value_len) in [(1, 0), (7, 20), (40, 60), (3, 8_200)] {
            let hs = headers(count, value_len);
            let split = count / 2 + 1;
            let Ok(block) = HeaderBlock::new(&hs[..split]) else {
                panic!("block encodes")
            };
            let key = Some(Bytes::from_static(b"k"));
            let plain = BufferedRecord::new(1_000, key.clone(), None, ()).with_headers(hs.clone());
            let blocked = BufferedRecord::new(1_000, key, None, ())
                .with_headers(hs[split..].to_vec())
                .with_header_block(block.clone());
            assert_eq!(blocked.max_size(), plain.max_size());
            assert_eq!(blocked.size_at(3, 5), plain.size_at(3, 5));
            let encode = |r: BufferedRecord<()>| {
                let mut batch = ProducerBatch::new(TopicPartition::new("t", 0), 0, Instant::now());
                let added = batch.room_for(&r, usize::MAX).unwrap();
                batch.push(r, added, usize::MAX);
                batch
                    .encode(Compression::None, None, false, &mut Vec::new())
                    .unwrap()
            };
            assert_eq!(encode(blocked), encode(plain));
        }
    }

    /// The size carried with a record is its headers' encoded size, and what a record
    /// reserves, adds to a batch and takes in the encoded batch agree with it.
    #[test]
    fn headers_are_sized_once_and_encoded_as_sized() {
        for (count, value_len) in [(0, 0), (1, 0), (7, 20), (40, 60), (3, 8_200)] {
            let hs = headers(count, value_len);
            let walked = headers_size(&hs);
            let r = BufferedRecord::new(1_000, Some(Bytes::from_static(b"k")), None, ())
                .with_headers(hs.clone());
            assert_eq!(r.headers_size, walked);
            assert_eq!(r.headers(), &hs[..]);
            let mut batch = ProducerBatch::new(TopicPartition::new("t", 0), 0, Instant::now());
            let added = batch.room_for(&r, usize::MAX).unwrap();
            batch.push(r, added, usize::MAX);
            let encoded = batch
                .encode(Compression::None, None, false, &mut Vec::new())
                .unwrap();
            assert!(
                encoded.len() <= batch.size(),
                "the estimate is an upper bound"
            );
            let max = max_buffered_size(Some(b"k"), None, walked);
            assert!(encoded.len() <= max, "{} > {max}", encoded.len());
            let mut reader = BatchReader::with_limits(encoded, DecodeLimits::default());
            let decoded = reader.next_batch().unwrap().unwrap();
            let got = &decoded.records()[0].headers;
            assert_eq!(got.len(), hs.len());
            for (g, (k, v)) in got.iter().zip(&hs) {
                assert_eq!(g.key.as_ref(), k.as_bytes());
                assert_eq!(g.value.as_deref(), v.as_deref());
            }
        }
    }

    /// A record whose carried size is not its headers' (only a bug in kafkit could make one)
    /// fails the batch's encoding with a typed error, not wrong bytes or a panic.
    #[test]
    fn a_wrong_carried_size_is_an_encode_error() {
        let mut r = BufferedRecord::new(1_000, None, None, ()).with_headers(headers(7, 20));
        r.headers_size += 1;
        let mut batch = ProducerBatch::new(TopicPartition::new("t", 0), 0, Instant::now());
        let added = batch.room_for(&r, usize::MAX).unwrap();
        batch.push(r, added, usize::MAX);
        let err = batch
            .encode(Compression::None, None, false, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, ProduceError::Encode(_)), "{err:?}");
    }
}
