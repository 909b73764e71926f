//! # kafkit-client
//!
//! The async half of kafkit: connections, metadata, producer, consumer groups and admin calls
//! over tokio, on top of the sans-IO [`kafkit_wire`].
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod error;
pub mod io;
pub mod state;

pub use error::{Error, Result};
