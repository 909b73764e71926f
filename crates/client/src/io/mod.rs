//! The thin tasks that own sockets: they move frames, arm timers and wake waiters. Decisions
//! (batching, sequence numbers, assignment, offsets) live in plain state types elsewhere.

pub mod cluster;
pub mod connection;
pub mod coordinator;
pub mod dns;
pub(crate) mod fetcher;
pub(crate) mod frame_pool;
pub mod group;
pub mod producer;
pub mod sasl;
#[cfg(feature = "tls-core")]
pub mod tls;
/// Without TLS support there is no connector (`SSL` and `SASL_SSL` are refused by
/// `SecurityConfig::validate`).
#[cfg(not(feature = "tls-core"))]
pub(crate) mod tls {
    /// Never made.
    #[derive(Debug, Clone)]
    pub(crate) enum TlsConnector {}
}
