//! Typed errors for record batch decoding ([`RecordError`]) and encoding ([`EncodeError`]).
//!
//! Every decoding error carries the base offset of the batch (or legacy message) it was found
//! in, so a consumer can report and skip precisely.

use crate::compression::CompressionError;

/// A record batch (or legacy message set) that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A field or record runs past the end of its batch (not the benign truncated final batch
    /// of a fetch, which ends iteration cleanly).
    #[error(
        "batch at offset {base_offset}: truncated, needed {needed} bytes, {available} available"
    )]
    Truncated {
        /// Base offset of the batch.
        base_offset: i64,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The stored CRC does not match the bytes.
    #[error("batch at offset {base_offset}: CRC mismatch, stored {expected:#010x}, computed {actual:#010x}")]
    BadCrc {
        /// Base offset of the batch.
        base_offset: i64,
        /// The CRC stored in the batch.
        expected: u32,
        /// The CRC of the bytes.
        actual: u32,
    },
    /// A magic byte other than 0, 1 or 2.
    #[error("batch at offset {base_offset}: unsupported magic {magic}")]
    BadMagic {
        /// Base offset of the batch.
        base_offset: i64,
        /// The magic byte read.
        magic: i8,
    },
    /// A malformed varint or varlong.
    #[error("batch at offset {base_offset}: bad varint in {field}: {source}")]
    BadVarint {
        /// Base offset of the batch.
        base_offset: i64,
        /// The field being read.
        field: &'static str,
        /// What was wrong with it.
        source: super::varint::VarintError,
    },
    /// A compression codec id other than 0-4.
    #[error("batch at offset {base_offset}: unknown compression codec {id}")]
    UnknownCodec {
        /// Base offset of the batch.
        base_offset: i64,
        /// The codec id read from the attributes.
        id: u8,
    },
    /// A length or count that is negative (other than -1 where null is allowed), too small
    /// for its structure, or larger than the bytes that remain could hold.
    #[error("batch at offset {base_offset}: invalid {field} {value}")]
    InvalidLength {
        /// Base offset of the batch.
        base_offset: i64,
        /// The field being read.
        field: &'static str,
        /// The value read.
        value: i64,
    },
    /// The batch's record count disagrees with the records it holds.
    #[error("batch at offset {base_offset}: declares {declared} records, holds {decoded}")]
    CountMismatch {
        /// Base offset of the batch.
        base_offset: i64,
        /// The count in the batch header.
        declared: i32,
        /// The records actually found.
        decoded: usize,
    },
    /// A record's length prefix disagrees with the bytes its fields take.
    #[error(
        "batch at offset {base_offset}: record declares {declared} bytes, fields take {actual}"
    )]
    RecordLengthMismatch {
        /// Base offset of the batch.
        base_offset: i64,
        /// The record's length varint.
        declared: i32,
        /// The bytes its fields took.
        actual: usize,
    },
    /// Bytes left over inside a batch (or legacy message) after its last record.
    #[error("batch at offset {base_offset}: {count} trailing bytes")]
    TrailingBytes {
        /// Base offset of the batch.
        base_offset: i64,
        /// How many bytes were left.
        count: usize,
    },
    /// The decompressed records would exceed [`DecodeLimits::max_decompressed_size`](super::DecodeLimits).
    #[error("batch at offset {base_offset}: decompressed size exceeds the limit of {limit} bytes")]
    DecompressionLimit {
        /// Base offset of the batch.
        base_offset: i64,
        /// The limit in force.
        limit: usize,
    },
    /// The decoded records (or one record's headers) would take more memory than
    /// [`DecodeLimits::max_decoded_size`](super::DecodeLimits) allows.
    #[error("batch at offset {base_offset}: decoded records would take {size} bytes of memory, over the limit of {limit}")]
    DecodedTooLarge {
        /// Base offset of the batch.
        base_offset: i64,
        /// The in-memory size the records (or record) would take, as far as counted.
        size: usize,
        /// The budget in force.
        limit: usize,
    },
    /// The compressed records are corrupt.
    #[error("batch at offset {base_offset}: {source}")]
    Decompression {
        /// Base offset of the batch.
        base_offset: i64,
        /// The codec's error.
        source: CompressionError,
    },
    /// A control record whose key or value is malformed.
    #[error("batch at offset {base_offset}: invalid control record: {reason}")]
    InvalidControlRecord {
        /// Base offset of the batch.
        base_offset: i64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A legacy wrapper message whose inner messages are compressed again.
    #[error("message at offset {base_offset}: nested compression in a legacy wrapper")]
    NestedCompression {
        /// Offset of the wrapper message.
        base_offset: i64,
    },
}

impl RecordError {
    /// The base offset of the batch (or legacy message) the error was found in.
    pub fn base_offset(&self) -> i64 {
        match self {
            RecordError::Truncated { base_offset, .. }
            | RecordError::BadCrc { base_offset, .. }
            | RecordError::BadMagic { base_offset, .. }
            | RecordError::BadVarint { base_offset, .. }
            | RecordError::UnknownCodec { base_offset, .. }
            | RecordError::InvalidLength { base_offset, .. }
            | RecordError::CountMismatch { base_offset, .. }
            | RecordError::RecordLengthMismatch { base_offset, .. }
            | RecordError::TrailingBytes { base_offset, .. }
            | RecordError::DecompressionLimit { base_offset, .. }
            | RecordError::DecodedTooLarge { base_offset, .. }
            | RecordError::Decompression { base_offset, .. }
            | RecordError::InvalidControlRecord { base_offset, .. }
            | RecordError::NestedCompression { base_offset } => *base_offset,
        }
    }

    pub(crate) fn from_compression(base_offset: i64, error: CompressionError) -> Self {
        match error {
            CompressionError::LimitExceeded { limit, .. } => {
                RecordError::DecompressionLimit { base_offset, limit }
            }
            source => RecordError::Decompression {
                base_offset,
                source,
            },
        }
    }
}

/// A record or batch that could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A key, value, header, record or batch longer than Kafka's i32 lengths allow.
    #[error("{what} too large for the wire format")]
    TooLarge {
        /// What was too large.
        what: &'static str,
    },
    /// [`BatchBuilder::append_sized`](super::BatchBuilder::append_sized) was given a headers
    /// size that is not the headers' encoded size ([`headers_size`](super::encode::headers_size)).
    #[error("headers size given as {given} bytes, encoded they take {actual}")]
    HeadersSizeMismatch {
        /// The size given.
        given: usize,
        /// The headers' encoded size.
        actual: usize,
    },
    /// More records than a batch's i32 offset delta can number.
    #[error("too many records in one batch")]
    TooManyRecords,
    /// A timestamp so far from the batch's first that the delta overflows i64.
    #[error("timestamp {timestamp} too far from the batch base timestamp {base_timestamp}")]
    TimestampOverflow {
        /// The record's timestamp.
        timestamp: i64,
        /// The batch's base timestamp.
        base_timestamp: i64,
    },
    /// `finish` on a batch with no records (Kafka rejects empty produce batches).
    #[error("a record batch needs at least one record")]
    EmptyBatch,
    /// The compressor failed.
    #[error(transparent)]
    Compression(#[from] CompressionError),
}
