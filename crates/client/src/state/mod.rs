//! Plain state types that make the client's decisions: no sockets, no clocks, no tasks.
//!
//! Everything here takes its inputs (responses, partition availability, attempt counts, the
//! current time, a random source) as arguments, so the I/O layer drives it and tests can replay
//! it exactly.

pub mod admin_retry;
pub mod backoff;
pub mod connections;
pub mod consumer;
pub mod dns;
pub mod group;
pub mod metadata;
pub mod murmur2;
mod name_hash;
pub mod partitioner;
pub mod pipeline;
pub mod producer;
pub mod rebootstrap;
pub mod reconnect;
pub mod rng;
pub mod sasl;
pub mod sticky;
