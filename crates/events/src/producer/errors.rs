//! Mapping the client's [`ProduceError`] into [`EventsError`]'s categories.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafkit::producer::ProduceError;

use crate::error::EventsError;

/// The events layer's error for a failed send to `topic`.
pub(crate) fn from_produce(topic: &str, event_type: &str, error: ProduceError) -> EventsError {
    let producer = |source| EventsError::Producer {
        topic: topic.to_owned(),
        source,
    };
    let broker = |code, message: String| {
        producer(kafkit::Error::Broker {
            api: ApiKey::Produce,
            code,
            message: Some(message),
        })
    };
    match error {
        ProduceError::Client(source) => producer(source),
        ProduceError::Broker {
            topic: t,
            partition,
            code,
            message,
        } => broker(
            code,
            format!("{t}-{partition}: {}", message.unwrap_or_default()),
        ),
        ProduceError::DeliveryTimeout {
            topic: t,
            partition,
            after,
            ..
        } => EventsError::Timeout {
            operation: format!("delivery to {t}-{partition} (delivery.timeout.ms)"),
            after,
        },
        ProduceError::BufferExhausted { waited } => EventsError::Timeout {
            operation: "waiting for producer buffer memory (max.block.ms)".to_owned(),
            after: waited,
        },
        ProduceError::UnknownTopic { topic: t, waited } => EventsError::Timeout {
            operation: format!("waiting for metadata of topic {t} (max.block.ms)"),
            after: waited,
        },
        ProduceError::RecordTooLarge { size, max } => broker(
            ResponseError::MessageTooLarge,
            format!("record of {size} bytes is larger than {max} bytes"),
        ),
        ProduceError::InvalidPartition {
            topic: t,
            partition,
            partition_count,
        } => broker(
            ResponseError::UnknownTopicOrPartition,
            format!("{t} has {partition_count} partitions, not partition {partition}"),
        ),
        ProduceError::Closed => producer(kafkit::Error::ShutDown { broker: None }),
        ProduceError::Encode(message) => EventsError::Serialization {
            topic: topic.to_owned(),
            event_type: event_type.to_owned(),
            message,
            source: None,
        },
        other => EventsError::Serialization {
            topic: topic.to_owned(),
            event_type: event_type.to_owned(),
            message: other.to_string(),
            source: None,
        },
    }
}

/// The `error.type` attribute for an error (OpenTelemetry: a low-cardinality class name).
pub(crate) fn error_type(error: &EventsError) -> &'static str {
    match error {
        EventsError::Configuration { .. } => "configuration",
        EventsError::Producer { .. } => "producer",
        EventsError::Serialization { .. } => "serialization",
        EventsError::SchemaValidation { .. } => "schema_validation",
        EventsError::Timeout { .. } => "timeout",
        EventsError::Registry { .. } => "registry",
        _ => "_OTHER",
    }
}
