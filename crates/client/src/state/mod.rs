//! Plain state types that make the client's decisions: no sockets, no timers, no tasks. The
//! I/O layer feeds them responses and the current time and acts on what they answer, so tests
//! drive them directly.

pub mod group;
pub mod metadata;
