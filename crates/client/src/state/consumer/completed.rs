//! A partition's fetched records waiting for the application ([`CompletedFetch`]), decoded
//! record by record as they are taken, with `read_committed` filtering.
//!
//! Memory: only the batch being handed out is open ([`StreamingBatch`]): its decompressed
//! records section (at most [`DecodeLimits::max_decompressed_size`], 64 MiB) and the record
//! being decoded (at most [`DecodeLimits::max_decoded_size`], 64 MiB, else a typed error).
//! Keys, values and headers are slices of the fetched or decompressed bytes. What the
//! application is handed per drain is bounded in `fetcher/drain.rs`.
//!
//! Filtering follows the Java client: the response's aborted-transactions list (producer id,
//! first offset) is walked in offset order; a transactional batch from a producer whose aborted
//! transaction has started by the batch's last offset is skipped, until that producer's ABORT
//! marker is reached. Control batches (transaction markers) are never returned, at either
//! isolation level. Skipped batches still move the position past them, so a fetch that holds
//! only skipped batches makes progress.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use kafkit_wire::record::batch::TimestampType;
use kafkit_wire::record::{
    BatchReader, ControlRecordType, DecodeLimits, RecordError, StreamingBatch,
};

use super::position::FetchPosition;
use crate::consumer::ConsumerRecord;
use crate::state::group::TopicPartition;

/// The current batch being handed out.
#[derive(Debug)]
struct OpenBatch {
    records: StreamingBatch,
    next_offset: i64,
    leader_epoch: Option<i32>,
    log_append_time: Option<i64>,
}

/// How a fetch's records are decoded and filtered.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Decoding {
    /// `isolation.level=read_committed`: aborted transactions' batches are skipped.
    pub(crate) read_committed: bool,
    /// Decoding bounds and the CRC check (`check.crcs`).
    pub(crate) limits: DecodeLimits,
}

/// Fetched, not yet returned records of one partition.
#[derive(Debug)]
pub(crate) struct CompletedFetch {
    pub(crate) tp: TopicPartition,
    pub(crate) topic: Arc<str>,
    /// The partition's generation when fetched: stale once it changes.
    pub(crate) generation: u64,
    /// The position this fetch continues from (the partition's position must equal it).
    pub(crate) position: FetchPosition,
    /// Bytes of the response's `records`, counted against the prefetch bound.
    pub(crate) size: usize,
    reader: BatchReader,
    open: Option<OpenBatch>,
    read_committed: bool,
    /// Aborted transactions not reached yet, by first offset, latest first (popped from the
    /// end).
    aborted: Vec<(i64, i64)>,
    aborting: HashSet<i64>,
    /// An error was returned: nothing more is handed out.
    failed: bool,
}

impl CompletedFetch {
    pub(crate) fn new(
        tp: TopicPartition,
        topic: Arc<str>,
        generation: u64,
        position: FetchPosition,
        records: Bytes,
        decoding: Decoding,
        aborted_transactions: impl IntoIterator<Item = (i64, i64)>,
    ) -> Self {
        let mut aborted: Vec<(i64, i64)> = aborted_transactions
            .into_iter()
            .map(|(producer_id, first_offset)| (first_offset, producer_id))
            .collect();
        aborted.sort_unstable_by(|a, b| b.cmp(a));
        CompletedFetch {
            tp,
            topic,
            generation,
            position,
            size: records.len(),
            reader: BatchReader::with_limits(records, decoding.limits),
            open: None,
            read_committed: decoding.read_committed,
            aborted,
            aborting: HashSet::new(),
            failed: false,
        }
    }

    /// The next record at or after the position, advancing the position; `Ok(None)` when the
    /// fetch is used up. After an error the fetch yields nothing more.
    #[cfg(test)]
    pub(crate) fn next_record(&mut self) -> Result<Option<ConsumerRecord>, RecordError> {
        let mut out = Vec::new();
        self.next_record_into(&mut out, 1)?;
        Ok(out.pop())
    }

    /// Pushes the next record at or after the position onto `out`, advancing the position:
    /// `Ok(true)` when one was pushed, `Ok(false)` when the fetch is used up. After an error
    /// the fetch yields nothing more. A vector without capacity first makes room for
    /// `presize` records (at least one). (Pushed in place: a returned record would be copied
    /// twice more on its way into the drain's vector.)
    pub(crate) fn next_record_into(
        &mut self,
        out: &mut Vec<ConsumerRecord>,
        presize: usize,
    ) -> Result<bool, RecordError> {
        if self.failed {
            return Ok(false);
        }
        let result = self.next_record_inner(out, presize);
        self.failed = result.is_err();
        result
    }

    fn next_record_inner(
        &mut self,
        out: &mut Vec<ConsumerRecord>,
        presize: usize,
    ) -> Result<bool, RecordError> {
        loop {
            if let Some(open) = &mut self.open {
                while let Some(record) = open.records.next_record()? {
                    if record.offset < self.position.offset {
                        continue;
                    }
                    self.position = FetchPosition {
                        offset: record.offset.saturating_add(1),
                        leader_epoch: open.leader_epoch,
                    };
                    let (timestamp, timestamp_type) = match open.log_append_time {
                        Some(ts) => (ts, TimestampType::LogAppendTime),
                        None => (record.timestamp, TimestampType::CreateTime),
                    };
                    if out.capacity() == 0 {
                        out.reserve_exact(presize);
                    }
                    out.push(ConsumerRecord {
                        topic: self.topic.clone(),
                        partition: self.tp.partition,
                        offset: record.offset,
                        timestamp,
                        timestamp_type,
                        key: record.key,
                        value: record.value,
                        headers: record.headers,
                        leader_epoch: open.leader_epoch,
                    });
                    return Ok(true);
                }
                let next = open.next_offset;
                let epoch = open.leader_epoch;
                self.open = None;
                self.skip_to(next, epoch);
            }
            let Some(mut batch) = self.reader.next_streaming()? else {
                return Ok(false);
            };
            let header = batch.header;
            let next_offset = header.next_offset();
            if next_offset <= self.position.offset {
                continue; // wholly before the position (a compressed batch fetched again)
            }
            let leader_epoch =
                (header.partition_leader_epoch >= 0).then_some(header.partition_leader_epoch);
            if self.read_committed && header.attributes.transactional {
                while let Some(&(first_offset, producer_id)) = self.aborted.last() {
                    if first_offset > header.last_offset() {
                        break;
                    }
                    self.aborted.pop();
                    self.aborting.insert(producer_id);
                }
            }
            if batch.is_control() {
                let mut aborts = false;
                while let Some(control) = batch.next_control_record()? {
                    aborts |= control.kind == ControlRecordType::Abort;
                }
                if aborts {
                    self.aborting.remove(&header.producer_id);
                }
                self.skip_to(next_offset, leader_epoch);
            } else if self.read_committed
                && header.attributes.transactional
                && self.aborting.contains(&header.producer_id)
            {
                self.skip_to(next_offset, leader_epoch); // aborted: not even decoded
            } else {
                let log_append_time = (header.attributes.timestamp_type
                    == TimestampType::LogAppendTime)
                    .then_some(header.max_timestamp);
                self.open = Some(OpenBatch {
                    records: batch,
                    next_offset,
                    leader_epoch,
                    log_append_time,
                });
            }
        }
    }

    /// Whether nothing is left to hand out (checked without decoding further): the open batch
    /// is used up (the position then moves past it) and no whole batch remains. Lets a drain
    /// that stopped at its limit free the buffer, so the partition is fetched again at once.
    pub(crate) fn finish_if_used_up(&mut self) -> bool {
        if let Some(open) = &self.open {
            if !open.records.is_used_up() {
                return false;
            }
            let (next, epoch) = (open.next_offset, open.leader_epoch);
            self.open = None;
            self.skip_to(next, epoch);
        }
        self.reader.position() >= self.size
    }

    /// Moves the position past a batch that is used up or skipped.
    fn skip_to(&mut self, next_offset: i64, leader_epoch: Option<i32>) {
        if next_offset > self.position.offset {
            self.position = FetchPosition {
                offset: next_offset,
                leader_epoch: leader_epoch.or(self.position.leader_epoch),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafkit_wire::record::{
        BatchBuilder, BatchOptions, DecodeLimits, Header, HeaderRef, RecordRef,
    };

    use super::*;

    fn fetch(records: Bytes) -> CompletedFetch {
        CompletedFetch::new(
            TopicPartition::new("t", 0),
            Arc::from("t"),
            0,
            FetchPosition::new(0),
            records,
            Decoding::default(),
            [],
        )
    }

    fn batch(records: &[RecordRef<'_>]) -> Bytes {
        let mut buf = BytesMut::new();
        let mut b = BatchBuilder::new(&mut buf, 0);
        for r in records {
            b.append(r).unwrap();
        }
        b.finish(&BatchOptions::default(), &mut Vec::new()).unwrap();
        buf.freeze()
    }

    #[test]
    fn a_record_with_too_many_headers_is_refused_typed_after_the_ones_before() {
        // 1.1 million empty headers: 2.2 MB on the wire, 70 MB as `Header`s.
        let count = 1_100_000usize;
        assert!(count * std::mem::size_of::<Header>() > DecodeLimits::DEFAULT_MAX_DECODED_SIZE);
        let headers = vec![HeaderRef::new(b"", None); count];
        let mut f = fetch(batch(&[
            RecordRef::new(1, None, Some(b"fine")),
            RecordRef::new(1, None, None).with_headers(&headers),
        ]));
        let first = f.next_record().unwrap().unwrap();
        assert_eq!(first.value.as_deref(), Some(&b"fine"[..]));
        assert!(matches!(
            f.next_record(),
            Err(RecordError::DecodedTooLarge { base_offset: 0, .. })
        ));
        assert_eq!(f.position.offset, 1);
        assert!(f.next_record().unwrap().is_none());
    }

    #[test]
    fn used_up_only_after_the_last_record() {
        let mut f = fetch(batch(&[
            RecordRef::new(1, None, Some(b"a")),
            RecordRef::new(1, None, Some(b"b")),
        ]));
        assert!(f.next_record().unwrap().is_some());
        assert!(!f.finish_if_used_up());
        assert!(f.next_record().unwrap().is_some());
        assert!(f.finish_if_used_up());
        assert_eq!(f.position.offset, 2);
    }
}
