//! The producer.

mod error;
mod record;

pub use error::ProduceError;
pub use record::{DeliveryFuture, ProducerRecord, RecordMetadata};
