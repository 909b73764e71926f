//! Configuration errors.

/// Why a configuration was rejected. Every variant names the offending property (by its Java
/// client name) and the value that was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A property name the client does not know (or does not support yet).
    #[error("unknown config `{key}` (value `{value}`)")]
    UnknownKey {
        /// The unknown property name.
        key: String,
        /// The value it was given.
        value: String,
    },
    /// A value that cannot be parsed or is out of range for its property.
    #[error("invalid value `{value}` for config `{key}`: {reason}")]
    InvalidValue {
        /// The property name.
        key: &'static str,
        /// The value as given (or, for typed setters, as the Java property would read).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value that is valid alone but conflicts with another setting.
    #[error("config `{key}` = `{value}` conflicts with other settings: {reason}")]
    Conflict {
        /// The property name.
        key: &'static str,
        /// Its value.
        value: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// `bootstrap.servers` lists no broker.
    #[error("config `bootstrap.servers` is empty: at least one `host:port` is required")]
    MissingBootstrapServers,
}

impl ConfigError {
    /// The property the error is about (`bootstrap.servers` for a missing bootstrap list).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::UnknownKey { key, .. } => key,
            ConfigError::InvalidValue { key, .. } | ConfigError::Conflict { key, .. } => key,
            ConfigError::MissingBootstrapServers => "bootstrap.servers",
        }
    }

    pub(crate) fn invalid(
        key: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::InvalidValue {
            key,
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn conflict(
        key: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Conflict {
            key,
            value: value.into(),
            reason: reason.into(),
        }
    }
}
