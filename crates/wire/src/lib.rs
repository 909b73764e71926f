//! # kafkit-wire
//!
//! The sans-IO half of kafkit: everything needed to put Kafka's protocol on the wire and read it
//! back, with no sockets, no timers and no async runtime.
//!
//! - [`frame`]: the 4-byte size prefix, with an incremental decoder that rejects oversize frames
//!   before allocating.
//! - [`header`] and [`api`]: request/response headers over the `kafka-protocol` crate's message
//!   types, and per-API version negotiation from an ApiVersions response.
//! - [`guard`]: a schema walk that checks every count and length of an untrusted message against
//!   the bytes that are really there, before any decoder reserves memory for it.
//! - [`record`]: record batch v2 encode/decode (CRC32C, control records) and legacy message sets.
//! - [`compression`]: gzip, snappy (raw and xerial), lz4 frame and zstd, all bounded.
//!
//! The types most programs use are re-exported at the root ([`Compression`], [`FrameDecoder`],
//! [`BatchBuilder`], [`decode_batch`], [`encode_request`], [`decode_response_frame`], ...).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod compression;
pub mod frame;
pub mod guard;
pub mod header;
pub mod record;

pub use compression::{Compression, CompressionError};
pub use frame::{FrameDecoder, FrameError};
pub use guard::{decode_response, DecodeError, GuardError};
pub use header::{decode_response_frame, encode_request};
pub use record::{decode_batch, BatchBuilder, BatchOptions, DecodeLimits, RecordError};
