//! # kafkit-events
//!
//! Typed domain events on top of [`kafkit`]: envelopes, a Confluent-compatible schema
//! registry client, Avro and JSON payloads, handlers, retries, dead-letter topics and metrics.
//!
//! This crate is being built; today it re-exports the client it stands on.
#![deny(missing_docs)]

pub use kafkit as client;
pub mod config;
pub mod topics;
