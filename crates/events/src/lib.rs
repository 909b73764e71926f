//! # kafkit-events
//!
//! Typed domain events on top of [`kafkit`]: an envelope carried as CloudEvents headers, a
//! Confluent-compatible schema registry client, Avro and JSON payloads in the Confluent wire
//! format, and the producer and consumer layers built on them.
//!
//! The pieces, bottom up:
//! - [`envelope`]: [`Event<T>`](envelope::Event) = [`Envelope`] (id, type,
//!   time, source, correlation, causation, user, tenant, tags) + payload.
//! - [`typed`]: [`EventPayload`] ties a payload type to its event type,
//!   default topic, key (entity id) and schemas.
//! - [`cloudevents`]: the envelope ↔ CloudEvents binary-mode headers (pure); structured mode
//!   readable.
//! - [`trace_context`]: W3C `traceparent`/`tracestate` in headers.
//! - [`wire_format`]: the Confluent framing (magic byte + schema id).
//! - [`format`](mod@format): [`JsonCodec`](format::JsonCodec) and [`AvroCodec`](format::AvroCodec) behind
//!   [`EventCodec`](format::EventCodec).
//! - [`error`]: [`EventsError`], one enum in the seeds' categories.
//! - [`registry`]: the schema registry client (HTTP or in-memory).
//!
//! ```
//! use kafkit_events::envelope::Event;
//! use kafkit_events::format::{EventCodec, JsonCodec, SerdeConfig};
//! use kafkit_events::typed::EventPayload;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct OrderPlaced { order_id: String, total_cents: i64 }
//!
//! impl EventPayload for OrderPlaced {
//!     const EVENT_TYPE: &'static str = "shop.order.placed";
//!     fn default_topic() -> Option<&'static str> { Some("shop.orders") }
//!     fn key(&self) -> Option<String> { Some(self.order_id.clone()) }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let event = Event::new(OrderPlaced { order_id: "o-1".into(), total_cents: 1250 })
//!     .with_source("orders-service", Some("1.0.0"))
//!     .with_correlation_id("checkout-77");
//! let codec = JsonCodec::new(SerdeConfig::default());
//! let encoded = codec.encode("shop.orders", &event).await?;
//! assert_eq!(encoded.key.as_deref(), Some(&b"o-1"[..]));
//! // `ce_id`, `ce_type`, `ce_source`, `ce_time`, `ce_correlationid`, `content-type`, …
//! assert!(encoded.headers.iter().any(|(name, _)| name == "ce_correlationid"));
//! let record = encoded.into_record("shop.orders"); // a kafkit ProducerRecord, ready to send
//! # let _ = record;
//! # Ok::<(), kafkit_events::error::EventsError>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]
// `EventsError` is 136 bytes (it holds a `kafkit::Error`, 104 bytes, beside the topic); errors are
// the cold path, and boxing the sources would change the variants other modules construct.
#![allow(clippy::result_large_err)]

pub use kafkit as client;

mod arena;
pub mod catalog;
pub mod cloudevents;
pub mod config;
pub mod consume;
pub mod consumer;
pub mod envelope;
pub mod error;
mod event_id;
pub mod format;
pub mod producer;
pub mod registry;
pub mod topics;
pub mod trace_context;
pub mod typed;
pub mod wire_format;

pub use envelope::{Envelope, Event};
pub use error::EventsError;
pub use typed::EventPayload;

/// The README's examples (the client's and the events layer's), compiled as doc tests so they
/// stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
