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
