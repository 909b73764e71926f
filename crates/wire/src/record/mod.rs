//! Kafka record batches: v2 (magic 2) encode and decode, control records, and decoding of
//! legacy message sets (magic 0 and 1).
//!
//! - Decoding: [`BatchReader`] iterates the `records` field of a Fetch partition, ending
//!   cleanly on the partial final batch brokers often send; [`BatchReader::next_streaming`]
//!   gives a [`StreamingBatch`] whose records are decoded one at a time (what a consumer
//!   should use), [`BatchReader::next_batch`] and [`decode_batch`] a whole [`RecordBatch`].
//!   Keys, values and headers are zero-copy [`bytes::Bytes`] slices; memory (decompressed
//!   bytes and decoded structures) is bounded by [`DecodeLimits`]. Errors are [`RecordError`].
//! - Encoding: [`BatchBuilder`] writes a v2 batch into a reusable `BytesMut`; [`record_size`]
//!   and [`BatchBuilder::size_with`] help an accumulator respect `batch.size`.
//!
//! ```
//! use bytes::BytesMut;
//! use kafkit_wire::compression::Compression;
//! use kafkit_wire::record::{BatchBuilder, BatchOptions, BatchReader, RecordRef};
//!
//! let mut buf = BytesMut::new();
//! let mut builder = BatchBuilder::new(&mut buf, 100);
//! builder.append(&RecordRef::new(1_000, Some(b"k1"), Some(b"v1")))?;
//! builder.append(&RecordRef::new(1_005, None, None))?;
//! let options = BatchOptions { compression: Compression::Snappy, ..BatchOptions::default() };
//! builder.finish(&options, &mut Vec::new())?;
//!
//! for batch in BatchReader::new(buf.freeze()) {
//!     let batch = batch?;
//!     assert_eq!(batch.header.max_timestamp, 1_005);
//!     let offsets: Vec<i64> = batch.records().iter().map(|r| r.offset).collect();
//!     assert_eq!(offsets, [100, 101]);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Wire input must never make decoding panic: no unchecked indexing or arithmetic.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

pub mod batch;
pub mod control;
pub mod decode;
pub mod encode;
pub mod error;
pub mod legacy;
mod open;
mod reader;
pub mod streaming;
pub mod varint;

#[cfg(test)]
mod crc_tests;

pub use batch::{
    BatchAttributes, BatchHeader, BatchRecords, Header, Record, RecordBatch, TimestampType,
};
pub use control::{ControlRecord, ControlRecordType};
pub use decode::{decode_batch, BatchReader, DecodeLimits};
pub use encode::{
    headers_size, max_record_size, record_size, BatchBuilder, BatchOptions, EncodeHeader,
    HeaderBlock, HeaderRef, RecordRef,
};
pub use error::{EncodeError, RecordError};
pub use open::OpenBatch;
pub use streaming::StreamingBatch;
