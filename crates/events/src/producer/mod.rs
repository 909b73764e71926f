//! [`EventProducer`]: publishes typed events through kafkit's idempotent [`Producer`].
//!
//! Each publish writes the configured service as the event's source (when the event has
//! none; the event itself is not copied or changed), encodes the payload (Avro through the schema registry when the type has an Avro
//! schema, JSON otherwise — validated against the type's JSON Schema before anything is
//! sent), writes the envelope as CloudEvents headers, sends with the payload's key (the
//! entity id) and waits for the broker's acknowledgement. Every outcome is counted
//! ([`ProducerStats`]) and, when enabled, reported through the `metrics` facade and a
//! `send <topic>` span (OpenTelemetry messaging conventions).
//!
//! ```no_run
//! # async fn example() -> Result<(), kafkit_events::error::EventsError> {
//! use kafkit_events::catalog::data::{data_ingestion, IngestionStatus};
//! use kafkit_events::config::EventsConfig;
//! use kafkit_events::producer::EventProducer;
//!
//! let config = EventsConfig::from_env().map_err(kafkit_events::error::EventsError::from)?;
//! let producer = EventProducer::new(&config).await?;
//! let event = data_ingestion("prices", 10_000, 1_024_000, "s3://bucket/prices.parquet", IngestionStatus::Success);
//! let delivered = producer.publish(event).await?;
//! println!("{}-{}@{}", delivered.topic, delivered.partition, delivered.offset);
//! producer.close().await?;
//! # Ok(())
//! # }
//! ```

pub(crate) mod errors;
pub(crate) mod publisher;
mod recording;
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit::producer::{
    DeliveryFuture, HeaderBlock, Producer, ProducerRecord, RecordMetadata, Topic,
};
use serde::Serialize;
use tracing::Instrument;

use crate::cloudevents::DefaultSource;
use crate::config::{EventsConfig, ObservabilitySettings, ServiceIdentity};
use crate::envelope::Event;
use crate::error::EventsError;
use crate::format::{
    encode_envelope_with_block, key_bytes, AvroCodec, JsonCodec, SerdeConfig, AVRO_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
};
use crate::registry::SchemaRegistry;
use crate::typed::EventPayload;

pub use publisher::Publisher;
pub use recording::{PublishedEvent, RecordingPublisher};
pub use stats::{Counts, ProducerStats};

use publisher::default_topic;
use stats::StatsRecorder;

/// Publishes typed events to Kafka. Cheap to clone (shared inside); every clone publishes
/// through the same producer and counts into the same stats.
#[derive(Clone)]
pub struct EventProducer {
    inner: Arc<Inner>,
}

struct Inner {
    producer: Producer,
    service: ServiceIdentity,
    /// The service's name and version as header values, made once.
    default_source: DefaultSource,
    json: JsonCodec,
    avro: Option<AvroCodec>,
    observability: ObservabilitySettings,
    close_timeout: Duration,
    stats: StatsRecorder,
}

impl std::fmt::Debug for EventProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer")
            .field("service", &self.inner.service.name)
            .field("avro", &self.inner.avro.is_some())
            .finish_non_exhaustive()
    }
}

/// One event encoded and queued, its delivery not yet awaited.
struct Pending {
    topic: Topic,
    event_type: &'static str,
    size: usize,
    started: Instant,
    span: tracing::Span,
}

impl EventProducer {
    /// Connects a producer with `config`; Avro needs a schema registry, taken from the
    /// config's `schema.registry.url` (without one, only JSON types can be published; see
    /// [`with_registry`](Self::with_registry)).
    pub async fn new(config: &EventsConfig) -> Result<Self, EventsError> {
        let registry = config.schema_registry()?;
        Self::build(config, registry).await
    }

    /// Connects a producer with `config` and `registry` (for example
    /// [`SchemaRegistry::in_memory`]), whatever the config says of the registry.
    pub async fn with_registry(
        config: &EventsConfig,
        registry: SchemaRegistry,
    ) -> Result<Self, EventsError> {
        Self::build(config, Some(registry)).await
    }

    async fn build(
        config: &EventsConfig,
        registry: Option<SchemaRegistry>,
    ) -> Result<Self, EventsError> {
        let serde: SerdeConfig = config.serde().clone();
        let producer = Producer::new(config.producer().clone())
            .await
            .map_err(|source| EventsError::Producer {
                topic: String::new(),
                source,
            })?;
        let avro = registry
            .map(|r| AvroCodec::new(r, serde.clone()))
            .transpose()?;
        Ok(EventProducer {
            inner: Arc::new(Inner {
                producer,
                service: config.service().clone(),
                default_source: DefaultSource::new(
                    Bytes::from(config.service().name.clone()),
                    Bytes::from(config.service().version.clone()),
                ),
                json: JsonCodec::new(serde),
                avro,
                observability: *config.observability(),
                close_timeout: config.producer().delivery_timeout(),
                stats: StatsRecorder::new(config.observability().metrics),
            }),
        })
    }

    /// The kafkit producer underneath (for raw records next to events).
    pub fn producer(&self) -> &Producer {
        &self.inner.producer
    }

    /// Publishes `event` to its type's default topic and waits for the broker's
    /// acknowledgement (bounded by `delivery.timeout.ms`).
    pub async fn publish<T>(&self, event: Event<T>) -> Result<RecordMetadata, EventsError>
    where
        T: EventPayload + Serialize,
    {
        let topic = default_topic::<T>()?;
        self.publish_to(topic, event).await
    }

    /// [`publish`](Self::publish), giving up after `timeout` with [`EventsError::Timeout`].
    /// The event may still be delivered after that (the outcome is unknown, not failed).
    pub async fn publish_timeout<T>(
        &self,
        event: Event<T>,
        timeout: Duration,
    ) -> Result<RecordMetadata, EventsError>
    where
        T: EventPayload + Serialize,
    {
        let topic = default_topic::<T>()?;
        match tokio::time::timeout(timeout, self.publish_to(topic, event)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(EventsError::Timeout {
                operation: format!("publish to {topic}"),
                after: timeout,
            }),
        }
    }

    /// Publishes `event` to `topic` and waits for the broker's acknowledgement.
    pub async fn publish_to<T>(
        &self,
        topic: &str,
        event: Event<T>,
    ) -> Result<RecordMetadata, EventsError>
    where
        T: EventPayload + Serialize,
    {
        let (pending, delivery) = self.enqueue(&Topic::from(topic), event, None).await?;
        self.settle(pending, delivery.await)
    }

    /// Publishes `events` to their type's default topic, keyed by `key_fn` (the payload's own
    /// key when it returns `None`): all are encoded and queued before any outcome is awaited,
    /// so they travel in as few batches as the producer makes; one outcome per event, in the
    /// order given. Events with the same key go to one partition in the order given.
    pub async fn publish_batch<T, I, K>(
        &self,
        events: I,
        key_fn: K,
    ) -> Vec<Result<RecordMetadata, EventsError>>
    where
        T: EventPayload + Serialize,
        I: IntoIterator<Item = Event<T>>,
        K: Fn(&Event<T>) -> Option<String>,
    {
        match default_topic::<T>() {
            Ok(topic) => self.publish_batch_to(topic, events, key_fn).await,
            Err(e) => events
                .into_iter()
                .map(|_| Err(clone_config_error(&e)))
                .collect(),
        }
    }

    /// [`publish_batch`](Self::publish_batch) to `topic`.
    pub async fn publish_batch_to<T, I, K>(
        &self,
        topic: &str,
        events: I,
        key_fn: K,
    ) -> Vec<Result<RecordMetadata, EventsError>>
    where
        T: EventPayload + Serialize,
        I: IntoIterator<Item = Event<T>>,
        K: Fn(&Event<T>) -> Option<String>,
    {
        let topic = Topic::from(topic);
        let events = events.into_iter();
        let mut queued = Vec::with_capacity(events.size_hint().0);
        for event in events {
            let key = key_fn(&event).map(Bytes::from);
            queued.push(self.enqueue(&topic, event, Some(key)).await);
        }
        // The deliveries are counted into the stats once for the batch (not a lock each).
        let handles = self.inner.stats.sent_handles(T::EVENT_TYPE, &topic);
        let mut sent = Counts::default();
        let mut outcomes = Vec::with_capacity(queued.len());
        for entry in queued {
            outcomes.push(match entry {
                Ok((pending, delivery)) => match delivery.await {
                    Ok(metadata) => {
                        sent.sent += 1;
                        sent.bytes += pending.size as u64;
                        if let Some(handles) = &handles {
                            handles.record_duration(pending.started.elapsed());
                        }
                        Ok(self.report_sent(&pending, metadata))
                    }
                    Err(e) => self.settle(pending, Err(e)),
                },
                Err(e) => Err(e),
            });
        }
        self.inner
            .stats
            .add_sent(T::EVENT_TYPE, &topic, sent, handles.as_ref());
        outcomes
    }

    /// Waits until every event published so far has its outcome, at most `timeout`
    /// ([`EventsError::Timeout`] then; nothing is lost: the events are still in flight).
    pub async fn flush(&self, timeout: Duration) -> Result<(), EventsError> {
        match tokio::time::timeout(timeout, self.inner.producer.flush()).await {
            Ok(result) => result.map_err(|source| EventsError::Producer {
                topic: String::new(),
                source,
            }),
            Err(_) => Err(EventsError::Timeout {
                operation: "flush".to_owned(),
                after: timeout,
            }),
        }
    }

    /// Flushes and closes the producer (within `delivery.timeout.ms`); later publishes fail.
    pub async fn close(&self) -> Result<(), EventsError> {
        self.close_within(self.inner.close_timeout).await
    }

    /// [`close`](Self::close) within `timeout`.
    pub async fn close_within(&self, timeout: Duration) -> Result<(), EventsError> {
        self.inner.stats.set_started(false);
        self.inner
            .producer
            .close(timeout)
            .await
            .map_err(|source| EventsError::Producer {
                topic: String::new(),
                source,
            })
    }

    /// Whether the producer is open (not closed).
    pub fn is_started(&self) -> bool {
        self.inner.stats.is_started()
    }

    /// The counters so far.
    pub fn stats(&self) -> ProducerStats {
        self.inner.stats.snapshot()
    }

    /// Encodes `event` and hands it to the producer; `key` overrides the payload's key.
    ///
    /// The event is not copied or changed: an empty source is written as the service's (made
    /// once per producer), header names are `'static`, and the record is built directly.
    async fn enqueue<T>(
        &self,
        topic: &Topic,
        event: Event<T>,
        key: Option<Option<Bytes>>,
    ) -> Result<(Pending, DeliveryFuture), EventsError>
    where
        T: EventPayload + Serialize,
    {
        let started = Instant::now();
        let span = if self.inner.observability.tracing {
            send_span(topic, &event)
        } else {
            tracing::Span::none()
        };
        let mut pending = Pending {
            topic: topic.clone(),
            event_type: T::EVENT_TYPE,
            size: 0,
            started,
            span,
        };
        let record = if pending.span.is_none() {
            self.encode(topic, &event).await
        } else {
            self.encode(topic, &event)
                .instrument(pending.span.clone())
                .await
        };
        let mut record = match record {
            Ok(record) => record,
            Err(e) => return Err(self.fail(&pending, e)),
        };
        if let Some(Some(key)) = key {
            record.key = Some(key);
        } else {
            record.key = key_bytes(&event);
        }
        // The trace crosses to the consumer: the `send` span (or the caller's, when tracing is
        // off) as `traceparent`, replacing any the codec left.
        #[cfg(feature = "opentelemetry")]
        {
            let _entered = pending.span.enter();
            crate::trace_context::inject_current(&mut record.headers);
        }
        pending.size = record_size(&record);
        if !pending.span.is_none() {
            if let Some(key) = &record.key {
                pending.span.record(
                    "messaging.kafka.message.key",
                    String::from_utf8_lossy(key).as_ref(),
                );
            }
        }
        match self.inner.producer.send(record).await {
            Ok(delivery) => Ok((pending, delivery)),
            Err(e) => Err(self.fail(&pending, errors::from_produce(topic, T::EVENT_TYPE, e))),
        }
    }

    /// The record of `event` for `topic`, without its key.
    async fn encode<T>(
        &self,
        topic: &Topic,
        event: &Event<T>,
    ) -> Result<ProducerRecord, EventsError>
    where
        T: EventPayload + Serialize,
    {
        let inner = &*self.inner;
        encode_record(
            &inner.json,
            inner.avro.as_ref(),
            &inner.default_source,
            topic,
            event,
        )
        .await
    }

    fn settle(
        &self,
        pending: Pending,
        outcome: Result<RecordMetadata, kafkit::producer::ProduceError>,
    ) -> Result<RecordMetadata, EventsError> {
        match outcome {
            Ok(metadata) => {
                self.inner.stats.record(
                    pending.event_type,
                    &pending.topic,
                    Ok(pending.size),
                    pending.started.elapsed(),
                );
                Ok(self.report_sent(&pending, metadata))
            }
            Err(e) => {
                let error = errors::from_produce(&pending.topic, pending.event_type, e);
                Err(self.fail(&pending, error))
            }
        }
    }

    /// The span and log of a delivered event (counted by the caller).
    fn report_sent(&self, pending: &Pending, metadata: RecordMetadata) -> RecordMetadata {
        if !pending.span.is_none() {
            pending.span.record(
                "messaging.destination.partition.id",
                metadata.partition.to_string().as_str(),
            );
            pending
                .span
                .record("messaging.kafka.offset", metadata.offset);
        }
        if self.inner.observability.logging {
            tracing::debug!(
                parent: &pending.span,
                topic = %pending.topic,
                partition = metadata.partition,
                offset = metadata.offset,
                event_type = pending.event_type,
                "event published"
            );
        }
        metadata
    }

    fn fail(&self, pending: &Pending, error: EventsError) -> EventsError {
        let kind = errors::error_type(&error);
        self.inner.stats.record(
            pending.event_type,
            &pending.topic,
            Err(kind),
            pending.started.elapsed(),
        );
        if !pending.span.is_none() {
            pending.span.record("error.type", kind);
        }
        if self.inner.observability.logging {
            tracing::warn!(
                parent: &pending.span,
                topic = %pending.topic,
                event_type = pending.event_type,
                error = %error,
                "event not published"
            );
        }
        error
    }
}

/// The record of `event` for `topic`, without its key: the payload in Avro (types with an Avro
/// schema; needs `avro`) or JSON (validated against the type's JSON Schema), the envelope as
/// CloudEvents headers with `source` written when the event has none. Shared by
/// [`EventProducer`] and the exactly-once consumer's outputs.
pub(crate) async fn encode_record<T>(
    json: &JsonCodec,
    avro: Option<&AvroCodec>,
    source: &DefaultSource,
    topic: &Topic,
    event: &Event<T>,
) -> Result<ProducerRecord, EventsError>
where
    T: EventPayload + Serialize,
{
    let (value, content_type) = if T::avro_schema().is_some() {
        let Some(avro) = avro else {
            return Err(EventsError::configuration(
                "schema.registry.url",
                format!(
                    "{} is an Avro type and no schema registry is configured",
                    T::EVENT_TYPE
                ),
            ));
        };
        (
            avro.encode_value(topic, event, true).await?,
            AVRO_CONTENT_TYPE,
        )
    } else {
        (
            json.encode_value(topic, event, true).await?,
            JSON_CONTENT_TYPE,
        )
    };
    let (headers, block) = encode_envelope_with_block(topic, event, content_type, source)?;
    let mut record = ProducerRecord::new(topic.clone());
    record.value = Some(value);
    record.headers = headers;
    record.header_block = block;
    Ok(record)
}

/// The `send <topic>` span (OpenTelemetry messaging conventions; `otel.name` and
/// `otel.kind` are read by tracing-opentelemetry).
fn send_span<T: EventPayload>(topic: &str, event: &Event<T>) -> tracing::Span {
    tracing::info_span!(
        "send",
        otel.name = %format!("send {topic}"),
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.name = "send",
        messaging.operation.r#type = "send",
        messaging.destination.name = %topic,
        messaging.message.id = %event.envelope.id,
        cloudevents.event_type = T::EVENT_TYPE,
        messaging.kafka.message.key = tracing::field::Empty,
        messaging.destination.partition.id = tracing::field::Empty,
        messaging.kafka.offset = tracing::field::Empty,
        error.r#type = tracing::field::Empty,
    )
}

/// The bytes an event takes on the record: key, value, header names and values (its header
/// block's included).
fn record_size(record: &ProducerRecord) -> usize {
    record.key.as_ref().map_or(0, Bytes::len)
        + record.value.as_ref().map_or(0, Bytes::len)
        + record
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
            .sum::<usize>()
        + record
            .header_block
            .as_ref()
            .map_or(0, HeaderBlock::data_len)
}

fn clone_config_error(e: &EventsError) -> EventsError {
    match e {
        EventsError::Configuration { setting, message } => {
            EventsError::configuration(setting.clone(), message.clone())
        }
        other => EventsError::configuration("topic", other.to_string()),
    }
}

impl Publisher for EventProducer {
    async fn publish<T>(&self, event: Event<T>) -> Result<RecordMetadata, EventsError>
    where
        T: EventPayload + Serialize,
    {
        EventProducer::publish(self, event).await
    }

    async fn publish_to<T>(
        &self,
        topic: &str,
        event: Event<T>,
    ) -> Result<RecordMetadata, EventsError>
    where
        T: EventPayload + Serialize,
    {
        EventProducer::publish_to(self, topic, event).await
    }
}
