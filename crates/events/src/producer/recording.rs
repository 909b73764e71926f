//! [`RecordingPublisher`]: a [`Publisher`] that keeps what is published instead of sending
//! it (the seeds' mockable producer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kafkit::producer::RecordMetadata;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::publisher::{default_topic, Publisher};
use crate::envelope::{Envelope, Event};
use crate::error::EventsError;
use crate::format::{EventCodec, JsonCodec, SerdeConfig};
use crate::typed::EventPayload;

/// One event a [`RecordingPublisher`] kept.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    /// The topic it was published to.
    pub topic: String,
    /// Its key (the payload's, unless overridden).
    pub key: Option<String>,
    /// Its envelope, with the source filled in as the real producer fills it.
    pub envelope: Envelope,
    /// Its payload as JSON.
    pub payload: serde_json::Value,
}

impl PublishedEvent {
    /// The payload as `T`, when this event is of `T`'s type.
    pub fn data<T: EventPayload + DeserializeOwned>(&self) -> Option<T> {
        if self.envelope.event_type != T::EVENT_TYPE {
            return None;
        }
        serde_json::from_value(self.payload.clone()).ok()
    }
}

#[derive(Debug, Default)]
struct State {
    events: Vec<PublishedEvent>,
    offsets: HashMap<String, i64>,
    failures: Vec<EventsError>,
}

/// A [`Publisher`] for unit tests: keeps every published event (envelope and payload),
/// fills the envelope's source like [`EventProducer`](super::EventProducer) does, runs the
/// JSON codec's checks (JSON Schema, envelope) as a publish would, and can be told to fail
/// the next publishes.
/// Clones share the same record.
#[derive(Debug, Clone)]
pub struct RecordingPublisher {
    service: String,
    version: Option<String>,
    json: Arc<JsonCodec>,
    state: Arc<Mutex<State>>,
}

impl RecordingPublisher {
    /// A recorder publishing as `service`.
    pub fn new(service: impl Into<String>) -> Self {
        RecordingPublisher {
            service: service.into(),
            version: None,
            json: Arc::new(JsonCodec::new(SerdeConfig::default())),
            state: Arc::default(),
        }
    }

    /// Sets the service version written as `source_version`.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Everything published so far, in order.
    pub fn published(&self) -> Vec<PublishedEvent> {
        self.state().events.clone()
    }

    /// The published events of type `T`, decoded.
    pub fn events<T: EventPayload + DeserializeOwned>(&self) -> Vec<Event<T>> {
        self.state()
            .events
            .iter()
            .filter_map(|p| {
                p.data::<T>()
                    .map(|d| Event::from_parts(p.envelope.clone(), d))
            })
            .collect()
    }

    /// Forgets what was published.
    pub fn clear(&self) {
        let mut state = self.state();
        state.events.clear();
        state.offsets.clear();
    }

    /// Makes the next publish fail with `error` (queued: several calls fail several
    /// publishes, in order).
    pub fn fail_next(&self, error: EventsError) {
        self.state().failures.push(error);
    }

    async fn record<T: EventPayload + Serialize>(
        &self,
        topic: &str,
        mut event: Event<T>,
    ) -> Result<RecordMetadata, EventsError> {
        {
            let mut state = self.state();
            if !state.failures.is_empty() {
                return Err(state.failures.remove(0));
            }
        }
        if event.envelope.source.is_empty() {
            event.envelope.source = self.service.clone();
            if event.envelope.source_version.is_none() {
                event.envelope.source_version = self.version.clone();
            }
        }
        let payload =
            serde_json::to_value(&event.data).map_err(|e| EventsError::Serialization {
                topic: topic.to_owned(),
                event_type: T::EVENT_TYPE.to_owned(),
                message: e.to_string(),
                source: Some(Box::new(e)),
            })?;
        // The JSON codec's checks (JSON Schema, envelope headers), as a real publish would.
        self.json.encode(topic, &event).await?;
        let mut state = self.state();
        let offset = state.offsets.entry(topic.to_owned()).or_insert(0);
        let metadata = RecordMetadata {
            topic: Arc::from(topic),
            partition: 0,
            offset: *offset,
            timestamp: event.envelope.time.unwrap_or(0),
        };
        *offset += 1;
        state.events.push(PublishedEvent {
            topic: topic.to_owned(),
            key: event.key(),
            envelope: event.envelope,
            payload,
        });
        Ok(metadata)
    }
}

impl Publisher for RecordingPublisher {
    async fn publish<T>(&self, event: Event<T>) -> Result<RecordMetadata, EventsError>
    where
        T: EventPayload + Serialize,
    {
        let topic = default_topic::<T>()?;
        self.record(topic, event).await
    }

    async fn publish_to<T>(
        &self,
        topic: &str,
        event: Event<T>,
    ) -> Result<RecordMetadata, EventsError>
    where
        T: EventPayload + Serialize,
    {
        self.record(topic, event).await
    }
}
