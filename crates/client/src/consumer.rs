//! The consumer: fetches records of assigned partitions from their leaders.

mod error;
mod record;

pub use error::ConsumeError;
pub use record::{ConsumerRecord, Header, TimestampType};
