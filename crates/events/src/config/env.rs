//! The environment variables of the in-house SDKs, mapped to property names.

use super::error::{is_secret, shown};
use super::route::{self, Target};
use super::{EventsConfigBuilder, EventsConfigError};

/// Every environment variable [`EventsConfig::from_env`](super::EventsConfig::from_env) reads,
/// with the property it sets. `SCHEMA_REGISTRY_URL` and `KAFKA_SCHEMA_REGISTRY_URL` are both
/// accepted (the seeds disagree); if both are set they must agree. `KAFKA_AUTO_OFFSET_RESET`
/// and `KAFKA_CONSUMER_AUTO_OFFSET_RESET`, and `KAFKA_GROUP_ID` and `KAFKA_CONSUMER_GROUP_ID`,
/// likewise.
pub const ENV_VARIABLES: &[(&str, &str)] = &[
    ("KAFKA_BOOTSTRAP_SERVERS", "bootstrap.servers"),
    ("KAFKA_CLIENT_ID", "client.id"),
    ("KAFKA_SECURITY_PROTOCOL", "security.protocol"),
    ("KAFKA_SASL_MECHANISM", "sasl.mechanism"),
    ("KAFKA_SASL_USERNAME", "sasl.username"),
    ("KAFKA_SASL_PASSWORD", "sasl.password"),
    ("KAFKA_SSL_CA_LOCATION", "ssl.ca.location"),
    ("SCHEMA_REGISTRY_URL", "schema.registry.url"),
    ("KAFKA_SCHEMA_REGISTRY_URL", "schema.registry.url"),
    (
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        "basic.auth.user.info",
    ),
    ("SERVICE_NAME", route::SERVICE_NAME),
    ("SERVICE_VERSION", route::SERVICE_VERSION),
    ("SERVICE_NAMESPACE", route::SERVICE_NAMESPACE),
    ("ENVIRONMENT", route::SERVICE_ENVIRONMENT),
    ("KAFKA_PRODUCER_ACKS", "acks"),
    ("KAFKA_PRODUCER_RETRIES", "retries"),
    ("KAFKA_PRODUCER_COMPRESSION", "compression.type"),
    ("KAFKA_PRODUCER_COMPRESSION_TYPE", "compression.type"),
    ("KAFKA_PRODUCER_LINGER_MS", "linger.ms"),
    ("KAFKA_PRODUCER_BATCH_SIZE", "batch.size"),
    ("KAFKA_PRODUCER_ENABLE_IDEMPOTENCE", "enable.idempotence"),
    (
        "KAFKA_PRODUCER_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION",
        "max.in.flight.requests.per.connection",
    ),
    ("KAFKA_PRODUCER_REQUEST_TIMEOUT_MS", "request.timeout.ms"),
    ("KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS", "delivery.timeout.ms"),
    ("KAFKA_GROUP_ID", "group.id"),
    ("KAFKA_CONSUMER_GROUP_ID", "group.id"),
    ("KAFKA_AUTO_OFFSET_RESET", "auto.offset.reset"),
    ("KAFKA_CONSUMER_AUTO_OFFSET_RESET", "auto.offset.reset"),
    ("KAFKA_CONSUMER_ENABLE_AUTO_COMMIT", "enable.auto.commit"),
    (
        "KAFKA_CONSUMER_AUTO_COMMIT_INTERVAL_MS",
        "auto.commit.interval.ms",
    ),
    ("KAFKA_CONSUMER_SESSION_TIMEOUT_MS", "session.timeout.ms"),
    (
        "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS",
        "heartbeat.interval.ms",
    ),
    ("KAFKA_CONSUMER_MAX_POLL_RECORDS", "max.poll.records"),
    (
        "KAFKA_CONSUMER_MAX_POLL_INTERVAL_MS",
        "max.poll.interval.ms",
    ),
    ("KAFKA_CONSUMER_ISOLATION_LEVEL", "isolation.level"),
    ("KAFKA_CONSUMER_GROUP_PROTOCOL", "group.protocol"),
    ("KAFKA_CONSUMER_GROUP_INSTANCE_ID", "group.instance.id"),
    ("KAFKA_CONSUMER_FETCH_MIN_BYTES", "fetch.min.bytes"),
    ("KAFKA_CONSUMER_FETCH_MAX_WAIT_MS", "fetch.max.wait.ms"),
    ("KAFKA_CONSUMER_REQUEST_TIMEOUT_MS", "request.timeout.ms"),
    ("EVENTS_MAX_RETRIES", route::MAX_RETRIES),
    ("EVENTS_RETRY_BACKOFF_MS", route::RETRY_BACKOFF_MS),
    ("EVENTS_RETRY_MAX_BACKOFF_MS", route::RETRY_BACKOFF_MAX_MS),
    ("DLQ_ENABLED", route::DLQ_ENABLED),
    ("DLQ_TOPIC_SUFFIX", route::DLQ_TOPIC_SUFFIX),
    ("EVENTS_LOGGING_ENABLED", route::LOGGING_ENABLED),
    ("EVENTS_METRICS_ENABLED", route::METRICS_ENABLED),
    ("EVENTS_TRACING_ENABLED", route::TRACING_ENABLED),
];

/// Pairs of variables that mean one setting: both may be set only to the same value.
const SYNONYMS: &[(&str, &str)] = &[
    ("SCHEMA_REGISTRY_URL", "KAFKA_SCHEMA_REGISTRY_URL"),
    (
        "KAFKA_AUTO_OFFSET_RESET",
        "KAFKA_CONSUMER_AUTO_OFFSET_RESET",
    ),
    ("KAFKA_GROUP_ID", "KAFKA_CONSUMER_GROUP_ID"),
    (
        "KAFKA_PRODUCER_COMPRESSION",
        "KAFKA_PRODUCER_COMPRESSION_TYPE",
    ),
];

const CHECKED_PREFIXES: &[&str] = &["KAFKA_PRODUCER_", "KAFKA_CONSUMER_"];

fn target(variable: &str) -> Target {
    if variable.starts_with("KAFKA_PRODUCER_") {
        Target::Producer
    } else if variable.starts_with("KAFKA_CONSUMER_")
        || variable == "KAFKA_GROUP_ID"
        || variable == "KAFKA_AUTO_OFFSET_RESET"
    {
        Target::Consumer
    } else {
        Target::Any
    }
}

/// Refuses variables under the prefixes kafkit-events reads that it does not know.
pub(crate) fn check_unknown<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), EventsConfigError> {
    for name in names {
        let Some(prefix) = CHECKED_PREFIXES.iter().find(|p| name.starts_with(**p)) else {
            continue;
        };
        if !ENV_VARIABLES.iter().any(|(v, _)| *v == name) {
            let known: Vec<&str> = ENV_VARIABLES
                .iter()
                .map(|(v, _)| *v)
                .filter(|v| v.starts_with(prefix))
                .collect();
            return Err(EventsConfigError::UnknownVariable {
                variable: name.to_owned(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

/// A builder from the variables `lookup` returns.
pub(crate) fn builder_from_env(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<EventsConfigBuilder, EventsConfigError> {
    for (first, second) in SYNONYMS {
        if let (Some(a), Some(b)) = (lookup(first), lookup(second)) {
            if a.trim() != b.trim() {
                return Err(EventsConfigError::ConflictingVariables {
                    first,
                    first_value: shown(first, &a),
                    second,
                    second_value: shown(second, &b),
                });
            }
        }
    }
    let mut builder = EventsConfigBuilder::default();
    for (variable, property) in ENV_VARIABLES {
        let Some(value) = lookup(variable) else {
            continue;
        };
        // The second of two synonyms set to the same value adds nothing.
        if SYNONYMS
            .iter()
            .any(|(first, second)| second == variable && lookup(first).is_some())
        {
            continue;
        }
        builder = route::set(builder, property, &value, target(variable))
            .map_err(|e| name_variable(variable, &value, e))?;
    }
    Ok(builder)
}

/// Re-labels a property error with the variable it came from.
fn name_variable(variable: &str, value: &str, error: EventsConfigError) -> EventsConfigError {
    let reason = if is_secret(variable) {
        "rejected".to_owned()
    } else {
        error.to_string()
    };
    EventsConfigError::InvalidVariable {
        variable: variable.to_owned(),
        value: shown(variable, value),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use kafkit::config::{Acks, AutoOffsetReset, Compression, SecurityProtocol};

    use super::*;
    use crate::config::EventsConfig;

    fn from(vars: &[(&str, &str)]) -> Result<EventsConfig, EventsConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EventsConfig::from_env_with(|name| map.get(name).cloned())
    }

    #[test]
    fn every_seed_variable_is_read() {
        let config = from(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092"),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
            ("KAFKA_SASL_USERNAME", "svc"),
            ("KAFKA_SASL_PASSWORD", "hunter2"),
            ("SCHEMA_REGISTRY_URL", "http://registry:8081"),
            ("SERVICE_NAME", "hr-service"),
            ("SERVICE_VERSION", "1.2.3"),
            ("SERVICE_NAMESPACE", "olive"),
            ("ENVIRONMENT", "production"),
            ("KAFKA_PRODUCER_ACKS", "1"),
            ("KAFKA_PRODUCER_RETRIES", "5"),
            ("KAFKA_PRODUCER_COMPRESSION", "gzip"),
            ("KAFKA_GROUP_ID", "notifications"),
            ("KAFKA_CONSUMER_AUTO_OFFSET_RESET", "latest"),
            ("KAFKA_CONSUMER_ENABLE_AUTO_COMMIT", "false"),
            ("EVENTS_MAX_RETRIES", "7"),
            ("EVENTS_RETRY_BACKOFF_MS", "250"),
            ("DLQ_ENABLED", "false"),
            ("EVENTS_LOGGING_ENABLED", "true"),
            ("EVENTS_METRICS_ENABLED", "false"),
            ("EVENTS_TRACING_ENABLED", "0"),
        ])
        .unwrap();
        assert_eq!(config.service().name, "hr-service");
        assert_eq!(config.service().version, "1.2.3");
        assert_eq!(config.service().namespace.as_deref(), Some("olive"));
        assert_eq!(config.service().environment.as_deref(), Some("production"));
        let producer = config.producer();
        assert_eq!(producer.acks(), Acks::Leader);
        assert_eq!(producer.retries(), 5);
        assert_eq!(producer.compression(), Compression::Gzip);
        assert_eq!(producer.client().bootstrap_servers().len(), 2);
        assert_eq!(producer.client().client_id(), Some("hr-service"));
        let security = producer.client().security();
        assert_eq!(security.protocol, SecurityProtocol::SaslPlaintext);
        let consumer = config.consumer().unwrap();
        assert_eq!(consumer.group_id(), Some("notifications"));
        assert_eq!(consumer.auto_offset_reset(), AutoOffsetReset::Latest);
        assert!(!consumer.enable_auto_commit());
        assert_eq!(
            consumer.client().security().protocol,
            SecurityProtocol::SaslPlaintext
        );
        assert_eq!(config.retry().max_retries, 7);
        assert_eq!(config.retry().backoff.as_millis(), 250);
        assert!(!config.dead_letter().enabled);
        assert!(config.observability().logging);
        assert!(!config.observability().metrics);
        assert!(!config.observability().tracing);
        assert!(!format!("{config:?}").contains("hunter2"));
        let registry = config.registry().expect("a registry");
        assert!(format!("{registry:?}").contains("registry:8081"));
    }

    #[test]
    fn both_registry_variables_must_agree() {
        let url = "http://registry:8081";
        assert!(from(&[
            ("SCHEMA_REGISTRY_URL", url),
            ("KAFKA_SCHEMA_REGISTRY_URL", url)
        ])
        .is_ok());
        assert!(from(&[("KAFKA_SCHEMA_REGISTRY_URL", url)]).is_ok());
        let err = from(&[
            ("SCHEMA_REGISTRY_URL", url),
            ("KAFKA_SCHEMA_REGISTRY_URL", "http://other:8081"),
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            EventsConfigError::ConflictingVariables { .. }
        ));
        let text = err.to_string();
        assert!(text.contains("SCHEMA_REGISTRY_URL") && text.contains("http://other:8081"));
    }

    #[test]
    fn errors_name_the_variable_and_value() {
        let err = from(&[("KAFKA_PRODUCER_ACKS", "2")]).unwrap_err();
        assert_eq!(err.key(), "KAFKA_PRODUCER_ACKS");
        assert!(err.to_string().contains("`2`"), "{err}");
        let err = from(&[("DLQ_ENABLED", "maybe")]).unwrap_err();
        assert_eq!(err.key(), "DLQ_ENABLED");
        assert!(err.to_string().contains("maybe"), "{err}");
        let err = from(&[("KAFKA_SECURITY_PROTOCOL", "SSH")]).unwrap_err();
        assert_eq!(err.key(), "KAFKA_SECURITY_PROTOCOL");
        let err = from(&[("SERVICE_NAME", "  ")]).unwrap_err();
        assert_eq!(err.key(), "SERVICE_NAME");
    }

    #[test]
    fn secrets_are_never_printed() {
        let err = from(&[
            ("KAFKA_SASL_PASSWORD", "hunter2"),
            ("KAFKA_SASL_MECHANISM", "NOPE"),
        ])
        .unwrap_err();
        assert_eq!(err.key(), "KAFKA_SASL_MECHANISM");
        let conflict = from(&[
            ("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "u:hunter2"),
            ("KAFKA_SASL_PASSWORD", "hunter2"),
        ]);
        assert!(!format!("{conflict:?}").contains("hunter2"));
        let err = route::set(
            EventsConfigBuilder::default(),
            "sasl.jaas.config",
            "hunter2 broken",
            Target::Any,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn producer_prefixed_variables_apply_to_the_producer_only() {
        let config = from(&[("KAFKA_PRODUCER_REQUEST_TIMEOUT_MS", "12345")]).unwrap();
        assert_eq!(
            config.producer().client().request_timeout().as_millis(),
            12345
        );
        let consumer = config.consumer_with_group("g").unwrap();
        assert_ne!(consumer.client().request_timeout().as_millis(), 12345);
    }

    #[test]
    fn unknown_prefixed_variables_are_refused() {
        assert!(check_unknown(["KAFKA_PRODUCER_ACKS", "PATH", "KAFKA_OTHER"]).is_ok());
        let err = check_unknown(["KAFKA_PRODUCER_LINGER"]).unwrap_err();
        assert_eq!(err.key(), "KAFKA_PRODUCER_LINGER");
        assert!(err.to_string().contains("KAFKA_PRODUCER_LINGER_MS"));
    }

    #[test]
    fn defaults_without_any_variable() {
        let config = from(&[]).unwrap();
        let servers = config.producer().client().bootstrap_servers();
        assert_eq!(servers[0].host(), "localhost");
        assert_eq!(config.retry().max_retries, 3);
        assert_eq!(config.dead_letter().topic_suffix, ".dlq");
        assert_eq!(config.consumer().unwrap().group_id(), None);
        assert!(config.consumer_with_group("g").is_ok());
    }
}
