//! Why an [`EventsConfig`](super::EventsConfig) was refused.

use kafkit::config::ConfigError;

/// A configuration the events layer refused. Every variant names what was wrong: the
/// environment variable or property, and the value given, except for secrets (passwords,
/// tokens), whose value is never printed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EventsConfigError {
    /// An environment variable with a value that cannot be used.
    #[error("environment variable `{variable}` = `{value}`: {reason}")]
    InvalidVariable {
        /// The variable's name.
        variable: String,
        /// Its value, or `***` for a secret.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two environment variables that mean the same setting with different values
    /// (`SCHEMA_REGISTRY_URL` and `KAFKA_SCHEMA_REGISTRY_URL`).
    #[error(
        "environment variables `{first}` = `{first_value}` and `{second}` = `{second_value}` \
         disagree; set one, or both to the same value"
    )]
    ConflictingVariables {
        /// The first variable's name.
        first: &'static str,
        /// Its value.
        first_value: String,
        /// The second variable's name.
        second: &'static str,
        /// Its value.
        second_value: String,
    },
    /// An environment variable kafkit-events does not know under a prefix it reads
    /// (`KAFKA_PRODUCER_*`, `KAFKA_CONSUMER_*`): refused rather than silently ignored.
    #[error("unknown environment variable `{variable}` (kafkit-events reads: {known})")]
    UnknownVariable {
        /// The variable's name.
        variable: String,
        /// The names that prefix accepts.
        known: String,
    },
    /// A property (Java/Confluent name) no part of the configuration knows.
    #[error("unknown config `{key}` (value `{value}`)")]
    UnknownProperty {
        /// The property name.
        key: String,
        /// Its value, or `***` for a secret.
        value: String,
    },
    /// A property with a value that cannot be used.
    #[error("invalid value `{value}` for config `{key}`: {reason}")]
    InvalidProperty {
        /// The property name.
        key: String,
        /// Its value, or `***` for a secret.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client rejected the producer or consumer settings.
    #[error("{0}")]
    Client(#[from] ConfigError),
    /// The schema registry settings were rejected.
    #[error("schema registry config: {0}")]
    Registry(String),
    /// A required setting is missing.
    #[error("missing setting: {0}")]
    Missing(&'static str),
}

impl EventsConfigError {
    /// The property or environment variable the error is about.
    pub fn key(&self) -> &str {
        match self {
            EventsConfigError::InvalidVariable { variable, .. }
            | EventsConfigError::UnknownVariable { variable, .. } => variable,
            EventsConfigError::ConflictingVariables { first, .. } => first,
            EventsConfigError::UnknownProperty { key, .. }
            | EventsConfigError::InvalidProperty { key, .. } => key,
            EventsConfigError::Client(e) => e.key(),
            EventsConfigError::Registry(_) => "schema.registry.url",
            EventsConfigError::Missing(what) => what,
        }
    }
}

/// Whether a property or variable name holds a secret, whose value is never printed.
pub(crate) fn is_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "user.info",
        "user_info",
        "jaas",
        "key.password",
    ]
    .iter()
    .any(|s| lower.contains(s))
}

/// `value`, or `***` when `name` holds a secret.
pub(crate) fn shown(name: &str, value: &str) -> String {
    if is_secret(name) {
        "***".to_owned()
    } else {
        value.to_owned()
    }
}

impl From<EventsConfigError> for crate::error::EventsError {
    fn from(error: EventsConfigError) -> Self {
        crate::error::EventsError::configuration(error.key().to_owned(), error.to_string())
    }
}
