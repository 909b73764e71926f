//! [`EventsConfig`]: everything a service needs to publish (and, with #12, consume) events.
//!
//! Three ways in, one validation:
//! - in code, with [`EventsConfig::builder`];
//! - from Java/Confluent property names with [`EventsConfig::from_properties`]: producer
//!   settings go to [`kafkit::config::ProducerConfig`], consumer ones to
//!   [`kafkit::config::ConsumerConfig`], `schema.registry.url` and friends to the registry
//!   settings, the serde keys (`auto.register.schemas`, …) to the serde settings, and the
//!   events layer's own keys (`service.name`, `events.max.retries`, …) here;
//! - from the environment variables the in-house SDKs read, with [`EventsConfig::from_env`]
//!   (or [`EventsConfig::from_env_with`], which takes a lookup function so tests need not touch
//!   the process environment).
//!
//! A key no part knows is refused ([`EventsConfigError::UnknownProperty`]), so a typo does not
//! silently do nothing. Errors name the property or variable and the bad value; secrets
//! (passwords, tokens, `basic.auth.user.info`) are printed as `***`.

mod env;
mod error;
mod route;

use std::time::Duration;

use kafkit::config::{ConsumerConfig, ConsumerConfigBuilder, ProducerConfig};

use crate::error::EventsError;
use crate::format::SerdeConfig;
use crate::registry::{RegistryConfig, SchemaRegistry};

pub use env::ENV_VARIABLES;
pub use error::EventsConfigError;

/// The service that publishes: it fills the envelope's `source` and `source_version` and the
/// client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdentity {
    /// `service.name` / `SERVICE_NAME`. Default `kafkit-service`.
    pub name: String,
    /// `service.version` / `SERVICE_VERSION`. Default `0.0.0`.
    pub version: String,
    /// `service.namespace` / `SERVICE_NAMESPACE` (e.g. a Kubernetes namespace). Default none.
    pub namespace: Option<String>,
    /// `service.environment` / `ENVIRONMENT` (`dev`, `production`, …). Default none.
    pub environment: Option<String>,
}

impl Default for ServiceIdentity {
    fn default() -> Self {
        ServiceIdentity {
            name: "kafkit-service".to_owned(),
            version: "0.0.0".to_owned(),
            namespace: None,
            environment: None,
        }
    }
}

/// How handlers are retried (used by the consumer side, #12). Defaults are the Olive SDK's:
/// 3 retries, 1 s backoff doubling up to 32 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// `events.max.retries` / `EVENTS_MAX_RETRIES`. Default 3.
    pub max_retries: u32,
    /// `events.retry.backoff.ms` / `EVENTS_RETRY_BACKOFF_MS`. Default 1 s.
    pub backoff: Duration,
    /// `events.retry.backoff.max.ms` / `EVENTS_RETRY_MAX_BACKOFF_MS`. Default 32 s.
    pub max_backoff: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: 3,
            backoff: Duration::from_millis(1_000),
            max_backoff: Duration::from_millis(32_000),
        }
    }
}

/// Dead-letter topics (used by the consumer side, #12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSettings {
    /// `events.dlq.enabled` / `DLQ_ENABLED`. Default true.
    pub enabled: bool,
    /// `events.dlq.topic.suffix` / `DLQ_TOPIC_SUFFIX`: appended to the source topic's name.
    /// Default `.dlq` (the Olive SDK's; Spring Kafka uses `-dlt`).
    pub topic_suffix: String,
}

impl Default for DeadLetterSettings {
    fn default() -> Self {
        DeadLetterSettings {
            enabled: true,
            topic_suffix: ".dlq".to_owned(),
        }
    }
}

/// Which observability outputs the events layer emits. All on by default; the `metrics`
/// facade and `tracing` are no-ops until the application installs a recorder/subscriber. The
/// producer registers its `metrics` handles per (event type, topic) on the first publish of
/// each, so install the recorder before publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservabilitySettings {
    /// `events.logging.enabled` / `EVENTS_LOGGING_ENABLED`: `tracing` events per publish.
    pub logging: bool,
    /// `events.metrics.enabled` / `EVENTS_METRICS_ENABLED`: `metrics` facade counters and
    /// histograms with OpenTelemetry names.
    pub metrics: bool,
    /// `events.tracing.enabled` / `EVENTS_TRACING_ENABLED`: a `send <topic>` span per publish.
    pub tracing: bool,
}

impl Default for ObservabilitySettings {
    fn default() -> Self {
        ObservabilitySettings {
            logging: true,
            metrics: true,
            tracing: true,
        }
    }
}

/// The events layer's configuration: service identity, the producer and consumer settings of
/// the client underneath, the schema registry and serde settings, retries, dead letters and
/// observability. Built once and validated in [`EventsConfigBuilder::build`].
///
/// ```
/// use kafkit_events::config::EventsConfig;
///
/// let config = EventsConfig::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("service.name", "billing"),
///     ("linger.ms", "10"),
///     ("group.id", "billing-projections"),
/// ])?;
/// assert_eq!(config.service().name, "billing");
/// assert_eq!(config.producer().linger().as_millis(), 10);
/// assert_eq!(config.consumer()?.group_id(), Some("billing-projections"));
/// # Ok::<(), kafkit_events::config::EventsConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventsConfig {
    service: ServiceIdentity,
    producer: ProducerConfig,
    consumer: ConsumerConfigBuilder,
    registry: Option<RegistryConfig>,
    serde: SerdeConfig,
    retry: RetrySettings,
    dead_letter: DeadLetterSettings,
    observability: ObservabilitySettings,
}

impl EventsConfig {
    /// A builder with every default.
    pub fn builder() -> EventsConfigBuilder {
        EventsConfigBuilder::default()
    }

    /// From Java/Confluent property names (see the module docs for where each goes).
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, EventsConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut builder = EventsConfigBuilder::default();
        for (key, value) in properties {
            builder = builder.set(key.as_ref(), value.as_ref())?;
        }
        builder.build()
    }

    /// From the process environment: the variables in [`ENV_VARIABLES`]. Unknown
    /// `KAFKA_PRODUCER_*` / `KAFKA_CONSUMER_*` variables are refused.
    pub fn from_env() -> Result<Self, EventsConfigError> {
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        env::check_unknown(names.iter().map(String::as_str))?;
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// From environment variables read through `lookup` (a test passes a map; the process
    /// environment is untouched).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use kafkit_events::config::{EventsConfig, EventsConfigError};
    ///
    /// let env = HashMap::from([
    ///     ("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092"),
    ///     ("SERVICE_NAME", "hr-service"),
    ///     ("KAFKA_PRODUCER_ACKS", "1"),
    /// ]);
    /// let config = EventsConfig::from_env_with(|name| env.get(name).map(|v| v.to_string()))?;
    /// assert_eq!(config.service().name, "hr-service");
    ///
    /// let env = HashMap::from([("EVENTS_MAX_RETRIES", "many")]);
    /// let err = EventsConfig::from_env_with(|name| env.get(name).map(|v| v.to_string()))
    ///     .unwrap_err();
    /// assert_eq!(err.key(), "EVENTS_MAX_RETRIES");
    /// assert!(err.to_string().contains("many"));
    /// # Ok::<(), EventsConfigError>(())
    /// ```
    pub fn from_env_with<F>(lookup: F) -> Result<Self, EventsConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        env::builder_from_env(&lookup)?.build()
    }

    /// The publishing service.
    pub fn service(&self) -> &ServiceIdentity {
        &self.service
    }

    /// The producer settings of the client underneath.
    pub fn producer(&self) -> &ProducerConfig {
        &self.producer
    }

    /// The consumer settings (same brokers and security as the producer), with the
    /// `group.id` given (`group.id` / `KAFKA_GROUP_ID`), if any — or use
    /// [`consumer_with_group`](Self::consumer_with_group).
    pub fn consumer(&self) -> Result<ConsumerConfig, EventsConfigError> {
        Ok(self.consumer.build()?)
    }

    /// The consumer settings with `group_id` as the group.
    pub fn consumer_with_group(&self, group_id: &str) -> Result<ConsumerConfig, EventsConfigError> {
        Ok(self.consumer.clone().group_id(group_id).build()?)
    }

    /// The consumer settings' builder, to adjust before building.
    pub fn consumer_builder(&self) -> &ConsumerConfigBuilder {
        &self.consumer
    }

    /// The schema registry settings (`schema.registry.url` / `SCHEMA_REGISTRY_URL` /
    /// `KAFKA_SCHEMA_REGISTRY_URL` and the other registry properties), if a registry is
    /// configured.
    pub fn registry(&self) -> Option<&RegistryConfig> {
        self.registry.as_ref()
    }

    /// A schema registry client for the configured registry, if any.
    pub fn schema_registry(&self) -> Result<Option<SchemaRegistry>, EventsError> {
        self.registry
            .clone()
            .map(SchemaRegistry::new)
            .transpose()
            .map_err(|e| EventsError::configuration("schema.registry.url", e.to_string()))
    }

    /// The serializers' settings (`auto.register.schemas`, `use.latest.version`, …).
    pub fn serde(&self) -> &SerdeConfig {
        &self.serde
    }

    /// Retry settings for handlers.
    pub fn retry(&self) -> &RetrySettings {
        &self.retry
    }

    /// Dead-letter settings.
    pub fn dead_letter(&self) -> &DeadLetterSettings {
        &self.dead_letter
    }

    /// Observability switches.
    pub fn observability(&self) -> &ObservabilitySettings {
        &self.observability
    }
}

/// Builds an [`EventsConfig`]. Typed setters for the events layer's own settings; [`set`]
/// for any property by its Java/Confluent name.
///
/// [`set`]: EventsConfigBuilder::set
#[derive(Debug, Clone, Default)]
pub struct EventsConfigBuilder {
    service: ServiceIdentity,
    producer: route::Properties,
    consumer: route::Properties,
    registry: route::Properties,
    serde: SerdeConfig,
    retry: RetrySettings,
    dead_letter: DeadLetterSettings,
    observability: ObservabilitySettings,
}

impl EventsConfigBuilder {
    /// `bootstrap.servers` for the producer and the consumer. Default `localhost:9092`.
    pub fn bootstrap_servers(self, servers: &str) -> Self {
        self.both(route::BOOTSTRAP_SERVERS, servers)
    }

    /// The service name (envelope `source`, default client id).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service.name = name.into();
        self
    }

    /// The service version (envelope `source_version`).
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service.version = version.into();
        self
    }

    /// The service namespace.
    pub fn service_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.service.namespace = Some(namespace.into());
        self
    }

    /// The deployment environment (`dev`, `production`, …).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.service.environment = Some(environment.into());
        self
    }

    /// `schema.registry.url`: one or more comma-separated registry URLs.
    pub fn schema_registry_url(mut self, urls: &str) -> Self {
        self.registry.push("schema.registry.url", urls);
        self
    }

    /// The serializers' settings.
    pub fn serde(mut self, serde: SerdeConfig) -> Self {
        self.serde = serde;
        self
    }

    /// Handler retry settings.
    pub fn retry(mut self, retry: RetrySettings) -> Self {
        self.retry = retry;
        self
    }

    /// Dead-letter settings.
    pub fn dead_letter(mut self, dead_letter: DeadLetterSettings) -> Self {
        self.dead_letter = dead_letter;
        self
    }

    /// Observability switches.
    pub fn observability(mut self, observability: ObservabilitySettings) -> Self {
        self.observability = observability;
        self
    }

    /// Sets one property by its Java/Confluent name (see the module docs for the routing).
    ///
    /// ```
    /// use kafkit_events::config::EventsConfig;
    ///
    /// let err = EventsConfig::builder().set("linger.msec", "5").unwrap_err();
    /// assert_eq!(err.key(), "linger.msec");
    /// let err = EventsConfig::builder().set("sasl.jaas.config", "garbage").unwrap_err();
    /// assert!(!err.to_string().contains("garbage"), "secrets are never printed");
    /// ```
    pub fn set(self, key: &str, value: &str) -> Result<Self, EventsConfigError> {
        route::set(self, key, value, route::Target::Any)
    }

    /// Sets a producer-only property (a common key such as `request.timeout.ms` then applies
    /// to the producer alone).
    pub fn set_producer(self, key: &str, value: &str) -> Result<Self, EventsConfigError> {
        route::set(self, key, value, route::Target::Producer)
    }

    /// Sets a consumer-only property.
    pub fn set_consumer(self, key: &str, value: &str) -> Result<Self, EventsConfigError> {
        route::set(self, key, value, route::Target::Consumer)
    }

    fn both(mut self, key: &str, value: &str) -> Self {
        self.producer.push(key, value);
        self.consumer.push(key, value);
        self
    }

    /// Validates everything and builds the configuration.
    pub fn build(&self) -> Result<EventsConfig, EventsConfigError> {
        let defaults = [
            (route::BOOTSTRAP_SERVERS, "localhost:9092".to_owned()),
            (route::CLIENT_ID, self.service.name.clone()),
        ];
        let with_defaults = |props: &route::Properties| {
            let props = &props.0;
            let mut all: Vec<(String, String)> = defaults
                .iter()
                .filter(|(k, _)| !props.iter().any(|(p, _)| p == k))
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            all.extend(props.iter().cloned());
            all
        };
        let producer = ProducerConfig::from_properties(with_defaults(&self.producer))?;
        let mut consumer = ConsumerConfigBuilder::new();
        for (key, value) in with_defaults(&self.consumer) {
            consumer = consumer.set(&key, &value)?;
        }
        self.serde.validate().map_err(|e| match e {
            crate::error::EventsError::Configuration { setting, message } => {
                EventsConfigError::InvalidProperty {
                    key: setting,
                    value: String::new(),
                    reason: message,
                }
            }
            other => EventsConfigError::Registry(other.to_string()),
        })?;
        if self.retry.backoff > self.retry.max_backoff {
            return Err(EventsConfigError::InvalidProperty {
                key: route::RETRY_BACKOFF_MS.to_owned(),
                value: self.retry.backoff.as_millis().to_string(),
                reason: format!(
                    "greater than {} ({} ms)",
                    route::RETRY_BACKOFF_MAX_MS,
                    self.retry.max_backoff.as_millis()
                ),
            });
        }
        let registry = if self.registry.0.is_empty() {
            None
        } else {
            Some(
                RegistryConfig::from_properties(self.registry.0.iter().cloned())
                    .map_err(|e| EventsConfigError::Registry(e.to_string()))?,
            )
        };
        Ok(EventsConfig {
            service: self.service.clone(),
            producer,
            consumer,
            registry,
            serde: self.serde.clone(),
            retry: self.retry,
            dead_letter: self.dead_letter.clone(),
            observability: self.observability,
        })
    }
}
