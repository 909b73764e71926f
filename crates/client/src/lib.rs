//! # kafkit
//!
//! The async half of kafkit: connections, metadata, producer, consumer groups and admin calls
//! over tokio, on top of the sans-IO [`kafkit_wire`].
//!
//! What a first program touches is at the crate root:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use kafkit::{Producer, ProducerConfig, ProducerRecord};
//!
//! let config = ProducerConfig::from_properties([("bootstrap.servers", "localhost:9092")])?;
//! let producer = Producer::new(config).await?;
//! let metadata = producer.send(ProducerRecord::new("events").value("hello")).await?.await?;
//! println!("{}-{}@{}", metadata.topic, metadata.partition, metadata.offset);
//! producer.close(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`config`]: typed client settings, readable from the Java client's property names;
//! - [`producer`]: the idempotent producer;
//! - [`consumer`]: the consumer (manual assignment, group subscription, seeks, pause/resume,
//!   `read_committed`);
//! - [`pipeline`]: exactly-once consume-transform-produce ([`TransactionalPipeline`]);
//! - [`admin`]: topics, cluster description, offsets, consumer groups;
//! - [`rng`] and, with TLS, [`tls`]: small helpers other kafkit crates share.
//!
//! The sans-IO decision types (`state`) and the socket-owning tasks (`io`) are internal: they
//! are compiled as public modules, hidden from the docs, only with the `unstable-internals`
//! feature, which carries no semver promise and exists for kafkit's own tests and benches.
#![deny(missing_docs)]
// A public signature that names a type of `state` or `io` (private without
// `unstable-internals`) would leave users a type they cannot name: give it a public home.
#![deny(unnameable_types)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod config;
pub mod consumer;
pub mod error;
pub mod pipeline;
pub mod producer;
#[cfg(test)]
mod request_versions;
#[cfg(test)]
mod sim;

/// The socket-owning tasks. No semver promise: `unstable-internals` only.
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod io;
#[cfg(not(feature = "unstable-internals"))]
#[allow(unreachable_pub, dead_code, unused_imports)]
mod io;

/// The sans-IO decision types. No semver promise: `unstable-internals` only.
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod state;
#[cfg(not(feature = "unstable-internals"))]
#[allow(unreachable_pub, dead_code, unused_imports)]
// cargo-mutants ignores `cfg`, so it would walk this twin of the module above too and test
// every mutant twice (`scripts/mutants.sh`); it reads `mutants::skip` inside this `cfg_attr`,
// which never applies (`cfg(proc_macro)` is set only when compiling a proc-macro crate).
#[cfg_attr(proc_macro, mutants::skip)]
mod state;

pub mod rng {
    //! Seedable random sources (what the partitioner and retry jitter draw from; tests fix the
    //! seed).
    pub use crate::state::rng::{RandomSource, XorShift64Star};
}

#[cfg(feature = "tls-core")]
pub mod tls {
    //! The rustls client configuration kafkit builds from a [`TlsConfig`](crate::config::TlsConfig)
    //! (other clients of the same application, such as a schema registry's HTTP client, can
    //! reuse it).
    pub use crate::io::tls::{client_config, graviola_cpu_supported};
}

pub use admin::{Admin, NewTopic};
pub use config::{
    Acks, AdminConfig, AutoOffsetReset, ClientConfig, Compression, ConfigError, ConsumerConfig,
    GroupProtocol, IsolationLevel, ProducerConfig, SecurityProtocol,
};
pub use consumer::{
    CommitError, ConsumeError, Consumer, ConsumerRecord, GroupSubscription, OffsetAndMetadata,
    RebalanceListener, TopicPartition,
};
pub use error::{Error, Result};
pub use pipeline::TransactionalPipeline;
pub use producer::{DeliveryFuture, ProduceError, Producer, ProducerRecord, RecordMetadata};
