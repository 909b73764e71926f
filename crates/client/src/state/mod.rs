//! Pure producer decisions: no sockets, no clocks, no tasks.
//!
//! Everything here takes its inputs (partition availability, attempt counts, a random source)
//! as arguments, so the IO layer drives it and tests can replay it exactly.

pub mod backoff;
pub mod murmur2;
pub mod partitioner;
pub mod rng;
pub mod sticky;
