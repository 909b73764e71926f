//! The thin tasks that own sockets: they move frames, arm timers and wake waiters. Decisions
//! (batching, sequence numbers, assignment, offsets) live in plain state types elsewhere.

pub mod cluster;
pub mod connection;
pub mod coordinator;
pub(crate) mod fetcher;
pub mod group;
pub mod producer;
pub mod sasl;
#[cfg(feature = "tls-core")]
pub mod tls;
