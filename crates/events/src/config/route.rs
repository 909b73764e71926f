//! Routing one property to the part of [`EventsConfig`](super::EventsConfig) that owns it.

use std::fmt;
use std::time::Duration;

use kafkit::config::{ConfigError, ConsumerConfigBuilder, ProducerConfigBuilder};

use super::error::{is_secret, shown};
use super::{EventsConfigBuilder, EventsConfigError};

pub(crate) const BOOTSTRAP_SERVERS: &str = "bootstrap.servers";
pub(crate) const CLIENT_ID: &str = "client.id";
pub(crate) const SERVICE_NAME: &str = "service.name";
pub(crate) const SERVICE_VERSION: &str = "service.version";
pub(crate) const SERVICE_NAMESPACE: &str = "service.namespace";
pub(crate) const SERVICE_ENVIRONMENT: &str = "service.environment";
pub(crate) const MAX_RETRIES: &str = "events.max.retries";
pub(crate) const RETRY_BACKOFF_MS: &str = "events.retry.backoff.ms";
pub(crate) const RETRY_BACKOFF_MAX_MS: &str = "events.retry.backoff.max.ms";
pub(crate) const DLQ_ENABLED: &str = "events.dlq.enabled";
pub(crate) const DLQ_TOPIC_SUFFIX: &str = "events.dlq.topic.suffix";
pub(crate) const LOGGING_ENABLED: &str = "events.logging.enabled";
pub(crate) const METRICS_ENABLED: &str = "events.metrics.enabled";
pub(crate) const TRACING_ENABLED: &str = "events.tracing.enabled";

/// Which client a property may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Wherever it is known (a shared key goes to both clients).
    Any,
    /// The producer only.
    Producer,
    /// The consumer only.
    Consumer,
}

/// Properties as given, in order; `Debug` prints secrets as `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Properties(pub(crate) Vec<(String, String)>);

impl Properties {
    pub(crate) fn push(&mut self, key: &str, value: &str) {
        self.0.push((key.to_owned(), value.to_owned()));
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, shown(k, v))))
            .finish()
    }
}

/// Whether a client builder knows `key`: `Ok(true)` known and valid, `Ok(false)` unknown,
/// `Err` known with a bad value.
fn probe<B>(
    key: &str,
    value: &str,
    set: impl FnOnce(&str, &str) -> Result<B, ConfigError>,
) -> Result<bool, EventsConfigError> {
    match set(key, value) {
        Ok(_) => Ok(true),
        Err(ConfigError::UnknownKey { .. }) => Ok(false),
        Err(e) if is_secret(key) => Err(EventsConfigError::InvalidProperty {
            key: key.to_owned(),
            value: "***".to_owned(),
            reason: format!("rejected by the client ({})", variant_name(&e)),
        }),
        Err(e) => Err(e.into()),
    }
}

fn variant_name(e: &ConfigError) -> &'static str {
    match e {
        ConfigError::Conflict { .. } => "conflicts with other settings",
        _ => "not a valid value",
    }
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, EventsConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(key, value, "must be true or false")),
    }
}

fn parse_u32(key: &str, value: &str) -> Result<u32, EventsConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "must be a whole number from 0 to 4294967295"))
}

fn parse_ms(key: &str, value: &str) -> Result<Duration, EventsConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(key, value, "must be a whole number of milliseconds"))
}

fn invalid(key: &str, value: &str, reason: &str) -> EventsConfigError {
    EventsConfigError::InvalidProperty {
        key: key.to_owned(),
        value: shown(key, value),
        reason: reason.to_owned(),
    }
}

fn non_empty(key: &str, value: &str) -> Result<String, EventsConfigError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(key, value, "must not be empty"));
    }
    Ok(v.to_owned())
}

/// Whether `key` is a schema registry client property (Confluent names).
pub(crate) fn is_registry_key(key: &str) -> bool {
    crate::registry::RegistryConfig::owns_key(key)
}

/// A serde setting's error as a property error naming `key`.
fn from_events(key: &str, value: &str, error: crate::error::EventsError) -> EventsConfigError {
    let reason = match error {
        crate::error::EventsError::Configuration { message, .. } => message,
        other => other.to_string(),
    };
    EventsConfigError::InvalidProperty {
        key: key.to_owned(),
        value: shown(key, value),
        reason,
    }
}

/// Whether `key` is a serializer/deserializer property (Confluent names).
pub(crate) fn is_serde_key(key: &str) -> bool {
    matches!(
        key,
        "auto.register.schemas"
            | "use.latest.version"
            | "use.schema.id"
            | "latest.compatibility.strict"
            | "normalize.schemas"
            | "key.subject.name.strategy"
            | "value.subject.name.strategy"
            | "json.fail.invalid.schema"
            | "avro.max.allocation.bytes"
    )
}

/// Routes one property into `b`.
pub(crate) fn set(
    mut b: EventsConfigBuilder,
    key: &str,
    value: &str,
    target: Target,
) -> Result<EventsConfigBuilder, EventsConfigError> {
    match key {
        SERVICE_NAME => b.service.name = non_empty(key, value)?,
        SERVICE_VERSION => b.service.version = non_empty(key, value)?,
        SERVICE_NAMESPACE => b.service.namespace = Some(non_empty(key, value)?),
        SERVICE_ENVIRONMENT => b.service.environment = Some(non_empty(key, value)?),
        MAX_RETRIES => b.retry.max_retries = parse_u32(key, value)?,
        RETRY_BACKOFF_MS => b.retry.backoff = parse_ms(key, value)?,
        RETRY_BACKOFF_MAX_MS => b.retry.max_backoff = parse_ms(key, value)?,
        DLQ_ENABLED => b.dead_letter.enabled = parse_bool(key, value)?,
        DLQ_TOPIC_SUFFIX => b.dead_letter.topic_suffix = non_empty(key, value)?,
        LOGGING_ENABLED => b.observability.logging = parse_bool(key, value)?,
        METRICS_ENABLED => b.observability.metrics = parse_bool(key, value)?,
        TRACING_ENABLED => b.observability.tracing = parse_bool(key, value)?,
        _ if is_registry_key(key) => b.registry.push(key, value),
        _ if is_serde_key(key) => b
            .serde
            .set(key, value)
            .map_err(|e| from_events(key, value, e))?,
        _ => {
            let to_producer = target != Target::Consumer
                && probe(key, value, |k, v| ProducerConfigBuilder::new().set(k, v))?;
            let to_consumer = target != Target::Producer
                && probe(key, value, |k, v| ConsumerConfigBuilder::new().set(k, v))?;
            if !to_producer && !to_consumer {
                return Err(EventsConfigError::UnknownProperty {
                    key: key.to_owned(),
                    value: shown(key, value),
                });
            }
            if to_producer {
                b.producer.push(key, value);
            }
            if to_consumer {
                b.consumer.push(key, value);
            }
        }
    }
    Ok(b)
}
