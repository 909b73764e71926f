//! # kafkit-client
//!
//! The async half of kafkit: connections, metadata, producer, consumer groups and admin calls
//! over tokio, on top of the sans-IO [`kafkit_wire`].
#![deny(missing_docs)]
