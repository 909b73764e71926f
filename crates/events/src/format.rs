//! Payload formats: how an [`Event`] becomes a Kafka record's key, value and headers, and back.
//!
//! Two codecs share one trait, [`EventCodec`]:
//! - [`JsonCodec`]: the payload as JSON (`content-type: application/json`), validated against
//!   the type's JSON Schema before it is sent when the type has one.
//! - [`AvroCodec`]: the payload as Avro binary in the Confluent wire format (magic byte, schema
//!   id, payload) with the schema from the registry (`content-type: application/avro`);
//!   decoding resolves the writer's schema to the reader's.
//!
//! Both write the envelope as CloudEvents headers ([`crate::cloudevents`]) and the key from
//! [`EventPayload::key`], and both keep the raw record in every decode error.

use std::future::Future;

use bytes::Bytes;
use kafkit::consumer::ConsumerRecord;
use kafkit::producer::{HeaderName, ProducerRecord};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::envelope::Event;
use crate::error::EventsError;
use crate::typed::EventPayload;

mod avro;
mod config;
mod datum_writers;
mod in_order;
mod json;
mod record;

pub(crate) use record::encode_envelope_with_block;

pub use avro::{decode_avro_datum, set_max_allocation_bytes, AvroCodec};

pub use config::{SerdeConfig, DEFAULT_MAX_ALLOCATION_BYTES};
pub use json::JsonCodec;

/// The media type of Avro payloads.
pub const AVRO_CONTENT_TYPE: &str = "application/avro";
/// The media type of JSON payloads.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// An event encoded for Kafka: what a [`ProducerRecord`] needs, without the topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedEvent {
    /// The key (the payload's entity id, UTF-8), or none.
    pub key: Option<Bytes>,
    /// The encoded payload.
    pub value: Bytes,
    /// The CloudEvents headers (and `content-type`), in order.
    pub headers: Vec<(HeaderName, Option<Bytes>)>,
}

impl EncodedEvent {
    /// A producer record for `topic` carrying this event.
    pub fn into_record(self, topic: impl Into<kafkit::producer::Topic>) -> ProducerRecord {
        let mut record = ProducerRecord::new(topic);
        record.key = self.key;
        record.value = Some(self.value);
        record.headers = self.headers;
        record
    }

    /// The record a consumer would read back for this event at `topic`/`partition`/`offset`
    /// (create time `timestamp`): for unit tests of code that decodes, without a broker.
    pub fn into_consumer_record(
        self,
        topic: &str,
        partition: i32,
        offset: i64,
        timestamp: i64,
    ) -> ConsumerRecord {
        ConsumerRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp,
            timestamp_type: kafkit::consumer::TimestampType::CreateTime,
            key: self.key,
            value: Some(self.value),
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| kafkit::consumer::Header {
                    key: Bytes::copy_from_slice(k.as_bytes()),
                    value: v,
                })
                .collect(),
            leader_epoch: None,
        }
    }

    /// The encoded size: key, value and headers (names and values), in bytes.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
                .sum::<usize>()
    }
}

/// A payload format: encodes events to records and decodes records to events.
///
/// `encode` is async because it may ask the schema registry (the first time a type is seen);
/// later calls hit the codec's caches.
pub trait EventCodec: Send + Sync {
    /// The media type written as `content-type`.
    fn content_type(&self) -> &'static str;

    /// Encodes `event` for `topic`: key from [`EventPayload::key`], value in this format,
    /// headers from the envelope.
    fn encode<T>(
        &self,
        topic: &str,
        event: &Event<T>,
    ) -> impl Future<Output = Result<EncodedEvent, EventsError>> + Send
    where
        T: EventPayload + Serialize;

    /// Decodes a consumed record into an event of type `T`. Every failure is
    /// [`EventsError::Deserialization`] (or `SchemaValidation`) carrying the raw record.
    fn decode<T>(
        &self,
        record: &ConsumerRecord,
    ) -> impl Future<Output = Result<Event<T>, EventsError>> + Send
    where
        T: EventPayload + DeserializeOwned;
}

#[cfg(test)]
mod cost_tests;
#[cfg(test)]
mod tests;

/// The key bytes of an event (its entity id).
pub(crate) fn key_bytes<T: EventPayload>(event: &Event<T>) -> Option<Bytes> {
    event.key().map(Bytes::from)
}
