//! # kafkit-client
//!
//! The async half of kafkit: connections, metadata, producer, consumer groups and admin calls
//! over tokio, on top of the sans-IO [`kafkit_wire`].
//!
//! Its pure (sans-IO) building blocks live in two modules:
//!
//! - [`config`]: typed client settings, readable from the Java client's property names;
//! - [`state`]: decisions without IO, such as which partition a record goes to
//!   ([`state::partitioner`]) and how long to wait before a retry ([`state::backoff`]).
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod state;
