//! # kafkit
//!
//! The async half of kafkit: connections, metadata, producer, consumer groups and admin calls
//! over tokio, on top of the sans-IO [`kafkit_wire`].
//!
//! - [`config`]: typed client settings, readable from the Java client's property names;
//! - [`state`]: decisions without I/O, such as what is known of the cluster
//!   ([`state::metadata`]), which partition a record goes to ([`state::partitioner`]) and how
//!   long to wait before a retry ([`state::backoff`]);
//! - [`io`]: the thin tasks that own sockets ([`io::connection`], [`io::cluster`]);
//! - [`producer`]: the idempotent producer;
//! - [`consumer`]: the consumer (manual assignment, seeks, pause/resume, `read_committed`);
//! - [`admin`]: topics, cluster description, offsets.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod config;
pub mod consumer;
pub mod error;
pub mod io;
pub mod producer;
#[cfg(test)]
mod request_versions;
pub mod state;

pub use error::{Error, Result};
