//! [`ProducerBatch`]: the records bound for one partition that travel together.
//!
//! Records are encoded into the batch's buffer as they are appended (an [`OpenBatch`], as the
//! Java client's `MemoryRecordsBuilder` does): the batch keeps the bytes and, per record, only
//! its create time, delivery handle and reserved memory. When the batch is drained, once its
//! sequence number is known, it is finished (compressed, header and CRC32C written); those
//! bytes are kept for retries. A batch whose sequence changes (after an epoch bump) or that a
//! broker refused as too large (split) is decoded from its bytes once and encoded again from
//! those records.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafkit_wire::compression::Compression;
use kafkit_wire::record::varint::MAX_VARINT_LEN;
use kafkit_wire::record::{
    decode_batch, headers_size, max_record_size, BatchBuilder, BatchOptions, BatchRecords,
    DecodeLimits, EncodeError, HeaderBlock, OpenBatch, Record, RecordRef,
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

/// A record on its way into a batch (encoded there when appended), with the handle that
/// will receive its outcome.
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

    /// The record without its delivery handle, and the handle.
    pub fn into_parts(self) -> (BufferedRecord<()>, D) {
        let BufferedRecord {
            timestamp,
            key,
            value,
            headers,
            headers_size,
            header_block,
            delivery,
            reserved,
        } = self;
        let record = BufferedRecord {
            timestamp,
            key,
            value,
            headers,
            headers_size,
            header_block,
            delivery: (),
            reserved,
        };
        (record, delivery)
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
}

/// [`BufferedRecord::max_size`] of a record with this key and value and headers taking
/// `headers_size` bytes ([`headers_size`] of them), before it is one.
pub fn max_buffered_size(key: Option<&[u8]>, value: Option<&[u8]>, headers_size: usize) -> usize {
    max_record_size(&RecordRef::new(0, key, value))
        .saturating_add(headers_size)
        .saturating_add(MAX_VARINT_LEN)
        .saturating_add(BATCH_OVERHEAD)
}

/// What a batch keeps of a record once it is encoded into the batch's bytes: its create time,
/// the handle that receives its outcome and the `buffer.memory` bytes it holds.
#[derive(Debug)]
pub struct AppendedRecord<D> {
    /// Create time (ms since the epoch).
    pub timestamp: i64,
    /// Where the outcome goes.
    pub delivery: D,
    /// `buffer.memory` bytes reserved for the record, released with its outcome.
    pub reserved: usize,
}

/// An upper bound on a decoded record's size in a batch (what splitting cuts by).
fn decoded_size(record: &Record) -> usize {
    max_record_size(&RecordRef::new(
        0,
        record.key.as_deref(),
        record.value.as_deref(),
    ))
    .saturating_add(headers_size(&record.headers))
    .saturating_add(MAX_VARINT_LEN)
}

fn encode_error(error: EncodeError) -> ProduceError {
    ProduceError::Encode(error.to_string())
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
    records: Vec<AppendedRecord<D>>,
    /// The records encoded as they were appended, until the batch is first encoded for a send.
    open: Option<OpenBatch>,
    /// The records not yet acknowledged, decoded from the batch's last encoding when they
    /// must be encoded again (a new sequence, a split); `records` in the same order.
    decoded: Option<Vec<Record>>,
    size: usize,
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
            open: None,
            decoded: None,
            size: BATCH_OVERHEAD,
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

    /// The open buffer's capacity (tests).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.open.as_ref().map_or(0, OpenBatch::capacity)
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// Records in the batch.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Uncompressed size, header included: exact while records are appended, an estimate (an
    /// upper bound) of the records left in a split batch.
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

    /// The estimated size of a batch of the first `count` decoded records (header included).
    fn estimate(&self, count: usize) -> usize {
        self.decoded
            .iter()
            .flatten()
            .take(count)
            .fold(BATCH_OVERHEAD, |total, r| {
                total.saturating_add(decoded_size(r))
            })
    }

    /// How many decoded records from the front fit in an estimated `limit` bytes (at least
    /// one).
    fn fit(&self, limit: usize) -> usize {
        let mut total = BATCH_OVERHEAD;
        for (i, r) in self.decoded.iter().flatten().enumerate() {
            total = total.saturating_add(decoded_size(r));
            if total > limit {
                return i.max(1);
            }
        }
        self.records.len()
    }

    /// Decodes the records from the batch's last encoding, unless that was done already:
    /// what a split or a new sequence encodes again. Fails when there is no encoding or it
    /// does not hold exactly the batch's records (not expected: a batch is split or
    /// re-sequenced only once sent whole); never pairs outcomes with other records.
    fn decode(&mut self) -> Result<(), ProduceError> {
        if self.decoded.is_some() {
            return Ok(());
        }
        // Read back, the bytes must hold exactly the batch's records (checked below).
        let Some((_, _, bytes)) = &self.encoded else {
            return Err(ProduceError::Encode(
                "no encoding of the batch to read".into(),
            ));
        };
        let bytes = bytes.clone();
        // The producer's own bytes: no limit smaller than what it wrote.
        let limits =
            DecodeLimits::with_max_decompressed_size(usize::MAX).with_max_decoded_size(usize::MAX);
        let read = decode_batch(bytes, &limits)
            .map_err(|e| ProduceError::Encode(format!("reading the batch back: {e}")))?;
        match read.records {
            BatchRecords::Data(records) if records.len() == self.records.len() => {
                self.decoded = Some(records);
                Ok(())
            }
            _ => Err(ProduceError::Encode(
                "the batch read back holds other records".into(),
            )),
        }
    }

    /// The broker refused the last attempt's records as too large: the next attempt carries
    /// fewer of them — pieces of at most half that attempt's records (by estimated size), and at most
    /// `batch_size` (Java splits to `batch.size`; halving also gets under a topic's
    /// `max.message.bytes` smaller than `batch.size`). The batch keeps its id, place, sequence
    /// and completion; it is closed to appends and its attempts start again (as Java's split
    /// batches do). Returns `false`, changing nothing, when that attempt carried one record.
    pub(crate) fn split(&mut self, batch_size: usize) -> bool {
        let sent = self.piece_len();
        if sent < 2 || self.decode().is_err() {
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
    pub(crate) fn take_piece(&mut self) -> Option<Vec<AppendedRecord<D>>> {
        let n = self.piece_len();
        if n >= self.records.len() {
            return None;
        }
        let piece: Vec<AppendedRecord<D>> = self.records.drain(..n).collect();
        if let Some(decoded) = &mut self.decoded {
            decoded.drain(..n.min(decoded.len()));
        }
        if let Some(s) = &mut self.sequence {
            let count = i32::try_from(n).unwrap_or(i32::MAX);
            s.base_sequence = increment_sequence(s.base_sequence, count);
        }
        self.size = self.estimate(self.records.len());
        self.piece = Some(self.split_limit.map_or(self.records.len(), |l| self.fit(l)));
        // Other records now (without idempotence the sequence and count may not change).
        self.encoded = None;
        self.attempts = 0;
        self.retry_at = None;
        Some(piece)
    }

    /// Encodes `record` into the batch, unless that would take a batch holding records past
    /// `batch_size` bytes: then nothing is written, the batch is marked full and `delivery`
    /// comes back (`Ok(Err(delivery))`). Otherwise `delivery(previous, index)` makes the
    /// record's handle from the handle of the record before it (`None`: the first) and its
    /// index. A record the wire format cannot carry is an error, with nothing written. Only a
    /// batch never encoded for a send takes records.
    pub(crate) fn append<T, F>(
        &mut self,
        record: &BufferedRecord<T>,
        batch_size: usize,
        delivery: F,
    ) -> Result<Result<(), F>, ProduceError>
    where
        F: FnOnce(Option<&D>, usize) -> D,
    {
        // The producer reserves exactly `max_size()`: no need to size the record again.
        let bound = if record.reserved > 0 {
            record.reserved
        } else {
            record.max_size()
        };
        let open = match &mut self.open {
            Some(open) => open,
            None if self.records.is_empty() => {
                // Room for a few records like the first (at least for the first); grown to
                // `batch.size` at once when more come (a quiet partition's batch stays small).
                let capacity = bound.saturating_mul(4).min(batch_size).max(bound);
                self.open.insert(OpenBatch::new(capacity, batch_size))
            }
            None => return Err(ProduceError::Encode("the batch was sent already".into())),
        };
        if open.capacity().saturating_sub(open.size()) < bound && open.capacity() < batch_size {
            open.reserve_total(batch_size);
        }
        let appended = open
            .append(
                record.timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                record.header_block.as_ref(),
                &record.headers,
                record.headers_size,
            )
            .map_err(encode_error)?;
        let Some(added) = appended else {
            self.full = true;
            return Ok(Err(delivery));
        };
        let index = self.records.len();
        if index == 0 {
            // Room for as many records like the first as the batch can take: no regrowth.
            let fits = batch_size.saturating_sub(BATCH_OVERHEAD) / added.max(1);
            self.records.reserve_exact(fits.clamp(1, 4096));
        }
        let delivery = delivery(self.records.last().map(|r| &r.delivery), index);
        self.records.push(AppendedRecord {
            timestamp: record.timestamp,
            delivery,
            reserved: record.reserved,
        });
        self.size = open.size();
        if self.size >= batch_size {
            self.full = true;
        }
        Ok(Ok(()))
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
        let options = BatchOptions {
            compression,
            compression_level,
            producer_id: self.sequence.map_or(-1, |s| s.producer_id),
            producer_epoch: self.sequence.map_or(-1, |s| s.producer_epoch),
            base_sequence: self.sequence.map_or(-1, |s| s.base_sequence),
            transactional,
            ..BatchOptions::default()
        };
        let bytes = match self.open.take() {
            // The first send, of every record (a batch is split only once sent): the records
            // were encoded as they came.
            Some(open) => open.finish(&options, scratch).map_err(encode_error)?,
            None => {
                self.decode()?;
                let mut buf = BytesMut::with_capacity(self.estimate(count));
                let mut builder = BatchBuilder::new(&mut buf, 0);
                for r in self.decoded.iter().flatten().take(count) {
                    builder
                        .append_sized(
                            r.timestamp,
                            r.key.as_deref(),
                            r.value.as_deref(),
                            &r.headers,
                            headers_size(&r.headers),
                        )
                        .map_err(encode_error)?;
                }
                builder.finish(&options, scratch).map_err(encode_error)?;
                buf.freeze()
            }
        };
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
    records: Vec<AppendedRecord<D>>,
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
    records: Vec<AppendedRecord<D>>,
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
    pub records: Vec<AppendedRecord<D>>,
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
            let encode = |r: BufferedRecord<()>| {
                let mut batch = one_record_batch(&r);
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
            let mut batch = one_record_batch(&r);
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
    /// is refused when appended with a typed error, not wrong bytes or a panic, and the batch
    /// is left as it was.
    #[test]
    fn a_wrong_carried_size_is_an_encode_error() {
        let mut r = BufferedRecord::new(1_000, None, None, ()).with_headers(headers(7, 20));
        r.headers_size += 1;
        let mut batch = ProducerBatch::<u32>::new(TopicPartition::new("t", 0), 0, Instant::now());
        let Err(err) = batch.append(&r, usize::MAX, |_, _| 0) else {
            panic!("appended")
        };
        assert!(matches!(err, ProduceError::Encode(_)), "{err:?}");
        assert_eq!(batch.record_count(), 0);
        assert_eq!(batch.size(), BATCH_OVERHEAD);
    }

    /// A batch holding `record` alone.
    fn one_record_batch(record: &BufferedRecord<()>) -> ProducerBatch<()> {
        let mut batch = ProducerBatch::new(TopicPartition::new("t", 0), 0, Instant::now());
        assert!(matches!(
            batch.append(record, usize::MAX, |_, _| ()),
            Ok(Ok(()))
        ));
        batch
    }

    fn sequence(producer_id: i64, base_sequence: i32) -> Sequence {
        Sequence {
            producer_id,
            producer_epoch: 3,
            base_sequence,
            order: 0,
        }
    }

    /// A batch encoded under one sequence and then under another (after an epoch bump) is
    /// read back from its bytes and encoded again: the bytes are those of the same records
    /// encoded under the new sequence from the start, for every codec; headers, keys, nulls
    /// and timestamps survive.
    #[test]
    fn a_new_sequence_encodes_the_records_read_back() {
        let records: Vec<BufferedRecord<()>> = (0..50u8)
            .map(|i| {
                let key = (i % 3 != 0).then(|| Bytes::from(vec![i; usize::from(i % 7)]));
                let value = (i % 5 != 0).then(|| Bytes::from(vec![b'v'; usize::from(i) * 3]));
                BufferedRecord::new(1_000 + i64::from(i) * 11, key, value, ())
                    .with_headers(headers(usize::from(i % 4), 5))
            })
            .collect();
        let fill = |seq: Sequence| {
            let mut batch = ProducerBatch::new(TopicPartition::new("t", 0), 0, Instant::now());
            for r in &records {
                assert!(matches!(batch.append(r, 1 << 20, |_, _| ()), Ok(Ok(()))));
            }
            batch.sequence = Some(seq);
            batch
        };
        for compression in [Compression::None, Compression::Lz4, Compression::Gzip] {
            let mut scratch = Vec::new();
            let mut moved = fill(sequence(7, 100));
            let first = moved.encode(compression, None, true, &mut scratch).unwrap();
            moved.sequence = Some(sequence(8, 0));
            let again = moved.encode(compression, None, true, &mut scratch).unwrap();
            assert_ne!(first, again);
            let direct = fill(sequence(8, 0))
                .encode(compression, None, true, &mut scratch)
                .unwrap();
            assert_eq!(again, direct, "{compression:?}");
            let decoded = BatchReader::new(again).next_batch().unwrap().unwrap();
            assert_eq!(decoded.header.producer_id, 8);
            assert_eq!(decoded.records().len(), records.len());
            for (d, r) in decoded.records().iter().zip(&records) {
                assert_eq!(d.timestamp, r.timestamp);
                assert_eq!(d.key, r.key);
                assert_eq!(d.value, r.value);
                assert_eq!(d.headers.len(), r.headers().len());
            }
        }
    }

    /// A record of `len` value bytes, reserved as the producer reserves.
    fn sized(len: usize) -> BufferedRecord<()> {
        let mut r = BufferedRecord::new(1_000, None, Some(Bytes::from(vec![b'v'; len])), ());
        r.reserved = r.max_size();
        r
    }

    /// A quiet partition's batch keeps a small buffer (room for four records like its first);
    /// a busy one grows to `batch.size` in one step, then holds every record that fits
    /// without growing again.
    #[test]
    fn the_buffer_starts_small_and_grows_to_batch_size_once() {
        for reserved in [true, false] {
            let batch_size = 16_384;
            let mut batch =
                ProducerBatch::<()>::new(TopicPartition::new("t", 0), 0, Instant::now());
            let first = sized(100);
            let bound = first.max_size();
            let mut r = sized(100);
            if !reserved {
                r.reserved = 0;
            }
            assert!(matches!(
                batch.append(&r, batch_size, |_, _| ()),
                Ok(Ok(()))
            ));
            let small = batch.capacity();
            assert!(
                (4 * bound..4 * bound + 64).contains(&small),
                "{small} for {bound}"
            );
            let mut seen = vec![small];
            while matches!(batch.append(&r, batch_size, |_, _| ()), Ok(Ok(()))) {
                if seen.last() != Some(&batch.capacity()) {
                    seen.push(batch.capacity());
                }
            }
            assert_eq!(seen.len(), 2, "grown once: {seen:?}");
            assert!((batch_size..batch_size + 64).contains(&seen[1]), "{seen:?}");
            assert!(batch.full && batch.size() <= batch_size);
        }
    }

    /// Once encoded for a send, a batch takes no more records: one appended then would get an
    /// outcome without ever being in the bytes sent.
    #[test]
    fn a_sent_batch_takes_no_records() {
        let mut batch = one_record_batch(&sized(10));
        batch
            .encode(Compression::None, None, false, &mut Vec::new())
            .unwrap();
        let Err(err) = batch.append(&sized(10), 1 << 20, |_, _| ()) else {
            panic!("appended to a sent batch")
        };
        assert!(matches!(err, ProduceError::Encode(_)), "{err:?}");
        assert_eq!(batch.record_count(), 1);
    }

    /// A retry under the same sequence resends the bytes already encoded (the same buffer),
    /// not a new encoding of them.
    #[test]
    fn a_retry_resends_the_cached_bytes() {
        let mut batch = one_record_batch(&sized(10));
        batch.sequence = Some(sequence(1, 0));
        let first = batch
            .encode(Compression::Lz4, None, false, &mut Vec::new())
            .unwrap();
        let again = batch
            .encode(Compression::Lz4, None, false, &mut Vec::new())
            .unwrap();
        assert_eq!(first.as_ptr(), again.as_ptr());
    }

    /// Bytes that do not hold exactly the batch's records (only a bug could make them) fail
    /// the next encoding with a typed error rather than pair outcomes with other records.
    #[test]
    fn bytes_that_are_not_the_records_fail_the_encoding() {
        let mut two = ProducerBatch::<()>::new(TopicPartition::new("t", 0), 0, Instant::now());
        for _ in 0..2 {
            assert!(matches!(
                two.append(&sized(10), 1 << 20, |_, _| ()),
                Ok(Ok(()))
            ));
        }
        let other = one_record_batch(&sized(10))
            .encode(Compression::None, None, false, &mut Vec::new())
            .unwrap();
        two.encoded = Some((None, 2, other));
        two.open = None;
        two.sequence = Some(sequence(1, 0));
        let err = two
            .encode(Compression::None, None, false, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, ProduceError::Encode(_)), "{err:?}");
    }

    /// A record the wire format cannot carry in its batch (here: a timestamp whose delta from
    /// the batch's first overflows) is refused alone at append; the records before it are
    /// still sent (encoded at drain, one such record failed the whole batch).
    #[test]
    fn a_record_that_cannot_be_encoded_is_refused_alone() {
        let mut batch = ProducerBatch::<u32>::new(TopicPartition::new("t", 0), 0, Instant::now());
        let first = BufferedRecord::new(i64::MAX, None, Some(Bytes::from_static(b"a")), ());
        assert!(matches!(
            batch.append(&first, 1 << 20, |_, _| 1),
            Ok(Ok(()))
        ));
        let far = BufferedRecord::new(-2, None, Some(Bytes::from_static(b"b")), ());
        let Err(err) = batch.append(&far, 1 << 20, |_, _| 2) else {
            panic!("appended")
        };
        assert!(matches!(err, ProduceError::Encode(_)), "{err:?}");
        let bytes = batch
            .encode(Compression::None, None, false, &mut Vec::new())
            .unwrap();
        let decoded = BatchReader::new(bytes).next_batch().unwrap().unwrap();
        assert_eq!(decoded.records().len(), 1);
        assert_eq!(decoded.records()[0].timestamp, i64::MAX);
        let written = batch.written(10, -1);
        assert_eq!(written.records.len(), 1);
        assert_eq!(written.records[0].delivery, 1);
    }
}
