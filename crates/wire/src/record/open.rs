//! [`OpenBatch`]: a v2 batch that owns its buffer and takes records over time, up to a size
//! limit, the way a producer fills a partition's batch while it lingers (the Java client's
//! `MemoryRecordsBuilder`): each record is encoded once, when it is appended, and the batch is
//! finished (compressed, header and CRC32C written) when it is sent.

use bytes::{Bytes, BytesMut};

use super::batch::BATCH_HEADER_LEN;
use super::encode::{BatchOptions, Cursor, EncodeHeader, Fields, HeaderBlock};
use super::error::EncodeError;

/// A batch being filled: records are encoded into its own buffer as they are appended, and
/// [`finish`](OpenBatch::finish) turns it into the batch's bytes. A record that would take a
/// batch holding records past its `limit` bytes (uncompressed, header included) is refused
/// without being written, so that the caller opens the next batch; an empty batch takes any
/// record, however large.
///
/// ```
/// use kafkit_wire::compression::Compression;
/// use kafkit_wire::record::{decode_batch, BatchOptions, DecodeLimits, HeaderRef, OpenBatch};
///
/// let none: [HeaderRef<'_>; 0] = [];
/// let mut batch = OpenBatch::new(256, 220);
/// let mut appended = 0;
/// while batch.append(1_000 + appended, None, Some(&[b'v'; 40]), None, &none, 0)?.is_some() {
///     appended += 1;
/// }
/// assert_eq!(batch.record_count(), 3); // 61 + 3 × 47 bytes: a fourth would pass 220
/// assert_eq!(batch.size(), 202);
/// let options = BatchOptions { compression: Compression::Lz4, ..BatchOptions::default() };
/// let bytes = batch.finish(&options, &mut Vec::new())?;
/// let decoded = decode_batch(bytes, &DecodeLimits::default()).unwrap();
/// assert_eq!(decoded.records().len(), 3);
/// assert_eq!(decoded.records()[2].timestamp, 1_002);
/// # Ok::<(), kafkit_wire::record::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct OpenBatch {
    buf: BytesMut,
    cursor: Cursor,
    limit: usize,
}

impl OpenBatch {
    /// An empty batch with room for `capacity` bytes (header included) before its buffer
    /// grows, refusing records past `limit` bytes once it holds one.
    pub fn new(capacity: usize, limit: usize) -> Self {
        let mut buf = BytesMut::with_capacity(capacity.max(BATCH_HEADER_LEN));
        let cursor = Cursor::begin(&mut buf, 0);
        OpenBatch { buf, cursor, limit }
    }

    /// Records appended so far.
    pub fn record_count(&self) -> usize {
        self.cursor.record_count()
    }

    /// The uncompressed size of the batch so far, header included.
    pub fn size(&self) -> usize {
        self.cursor.size(&self.buf)
    }

    /// Bytes the buffer holds before it must grow (header included).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Grows the buffer, if needed, to hold `capacity` bytes in all without growing again.
    pub fn reserve_total(&mut self, capacity: usize) {
        let more = capacity.saturating_sub(self.buf.len());
        self.buf.reserve(more);
    }

    /// Appends a record given by its fields, `block`'s headers written before `headers`, whose
    /// encoded size (without the block's) is `headers_size` (see
    /// [`BatchBuilder::append_with_block`](super::BatchBuilder::append_with_block)). Returns
    /// the bytes the record added, or `None` when it would take the batch past its limit (it
    /// holds records already; nothing is written). On error nothing is written.
    pub fn append<H: EncodeHeader>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        block: Option<&HeaderBlock>,
        headers: &[H],
        headers_size: usize,
    ) -> Result<Option<usize>, EncodeError> {
        let record = Fields {
            timestamp,
            key,
            value,
            block,
            headers,
            headers_size,
        };
        let written = self
            .cursor
            .append_within(&mut self.buf, &record, Some(self.limit))?;
        Ok(written.map(|w| w.size))
    }

    /// Compresses the records (through `scratch`, cleared first), writes the header and
    /// CRC32C, and returns the batch's bytes. An empty batch is [`EncodeError::EmptyBatch`].
    pub fn finish(
        mut self,
        options: &BatchOptions,
        scratch: &mut Vec<u8>,
    ) -> Result<Bytes, EncodeError> {
        self.cursor.finish(&mut self.buf, options, scratch)?;
        Ok(self.buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Compression;
    use crate::record::{decode_batch, BatchBuilder, DecodeLimits, HeaderRef};

    fn value(i: usize) -> Vec<u8> {
        vec![b'a' + (i % 26) as u8; 10 + i * 7 % 90]
    }

    /// An open batch writes the bytes a borrowed builder writes for the same records, under
    /// every codec, and stops at its limit exactly where the size says.
    #[test]
    fn encodes_like_the_builder_and_stops_at_its_limit() {
        let headers = [HeaderRef::new(b"h", Some(b"x"))];
        let block = HeaderBlock::new(&[HeaderRef::new(b"app", Some(b"a"))]).unwrap();
        for compression in [Compression::None, Compression::Gzip, Compression::Lz4] {
            let limit = 1_000;
            let mut open = OpenBatch::new(64, limit);
            let mut buf = BytesMut::new();
            let mut builder = BatchBuilder::new(&mut buf, 0);
            let mut i = 0;
            loop {
                let before = open.size();
                let v = value(i);
                let ts = 5_000 + i as i64 * 3;
                match open
                    .append(ts, Some(b"k"), Some(&v), Some(&block), &headers, 4)
                    .unwrap()
                {
                    Some(added) => assert_eq!(open.size(), before + added),
                    None => {
                        assert_eq!(open.size(), before, "nothing written");
                        let next = builder.size_with(
                            &crate::record::RecordRef::new(ts, Some(b"k"), Some(&v)).with_headers(
                                &[
                                    HeaderRef::new(b"app", Some(b"a")),
                                    HeaderRef::new(b"h", Some(b"x")),
                                ],
                            ),
                        );
                        assert!(next > limit, "{next} fits {limit}");
                        break;
                    }
                }
                builder
                    .append_with_block(ts, Some(b"k"), Some(&v), Some(&block), &headers, 4)
                    .unwrap();
                i += 1;
            }
            assert!(i > 3 && open.size() <= limit);
            let options = BatchOptions {
                compression,
                producer_id: 9,
                producer_epoch: 1,
                base_sequence: 40,
                ..BatchOptions::default()
            };
            builder.finish(&options, &mut Vec::new()).unwrap();
            let bytes = open.finish(&options, &mut Vec::new()).unwrap();
            assert_eq!(bytes, buf.freeze());
            let decoded = decode_batch(bytes, &DecodeLimits::default()).unwrap();
            assert_eq!(decoded.records().len(), i);
            assert_eq!(decoded.header.base_sequence, 40);
        }
    }

    /// An empty batch takes a record larger than its limit; the next is refused.
    #[test]
    fn an_empty_batch_takes_any_record() {
        let none: [HeaderRef<'_>; 0] = [];
        let mut open = OpenBatch::new(0, 100);
        let big = vec![0u8; 500];
        assert!(open
            .append(1, None, Some(&big), None, &none, 0)
            .unwrap()
            .is_some());
        assert!(open.size() > 500);
        assert_eq!(
            open.append(1, None, Some(b"v"), None, &none, 0).unwrap(),
            None
        );
        assert_eq!(open.record_count(), 1);
        open.reserve_total(4_096);
        assert!(open.capacity() >= 4_096);
    }

    /// A wrong headers size is an error, with nothing written; an empty batch cannot finish.
    #[test]
    fn errors_leave_the_batch_as_it_was() {
        let headers = [HeaderRef::new(b"h", Some(b"x"))];
        let mut open = OpenBatch::new(0, 1_000);
        let err = open.append(1, None, None, None, &headers, 5).unwrap_err();
        assert!(
            matches!(err, EncodeError::HeadersSizeMismatch { .. }),
            "{err:?}"
        );
        assert_eq!(open.size(), BATCH_HEADER_LEN);
        let err = open
            .finish(&BatchOptions::default(), &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, EncodeError::EmptyBatch), "{err:?}");
    }
}
