//! Typed client configuration, readable from the Java client's property names.
//!
//! Build a [`ProducerConfig`] or a [`ConsumerConfig`] with its builder (an [`AdminConfig`] from
//! properties or another client's [`ClientConfig`]), or from `key=value` properties as a Java
//! application would write them ([`ProducerConfig::from_properties`]). Defaults are the Java
//! client's 4.x defaults; `build()` applies the same cross-field rules the Java client does.
//! Settings every client kind shares (bootstrap servers, timeouts, backoffs) live in
//! [`ClientConfig`].

mod acks;
mod admin;
mod common;
mod compression;
mod consumer;
mod error;
mod jaas;
mod producer;
mod secret;
mod security;
#[cfg(test)]
mod settings;
mod value;

pub use crate::state::sasl::oauthbearer::OAuthBearerToken;
pub use acks::Acks;
pub use admin::AdminConfig;
pub use common::{BrokerAddress, ClientConfig, MetadataRecoveryStrategy};
pub use compression::Compression;
pub use consumer::{
    AssignorName, AutoOffsetReset, ConsumerConfig, ConsumerConfigBuilder, GroupProtocol,
    IsolationLevel,
};
pub use error::ConfigError;
pub use producer::{ProducerConfig, ProducerConfigBuilder};
pub use secret::Secret;
pub use security::{
    SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol, TlsConfig, TokenFuture,
    TokenProvider, TrustAnchors,
};
