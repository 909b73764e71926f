//! The registry client's errors: one typed variant per outcome a caller reacts to differently.

use std::time::Duration;

/// What a [`RegistryError::NotFound`] did not find (Confluent error codes 40401–40403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// The subject does not exist (40401).
    Subject,
    /// The subject has no such version (40402).
    Version,
    /// No schema with that id, or the schema is not registered under the subject (40403).
    Schema,
    /// Something else the registry did not find (another 404).
    Other,
}

/// An error from the schema registry client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The subject, version or schema does not exist.
    #[error("schema registry: {what} not found: {message}")]
    NotFound {
        /// Which kind of thing was missing.
        missing: Missing,
        /// What was asked for, e.g. ``subject `orders-value` `` or `schema id 42`.
        what: String,
        /// The registry's message.
        message: String,
    },
    /// The schema breaks the subject's compatibility level (HTTP 409).
    #[error("schema registry: schema incompatible with subject `{subject}`: {message}")]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's explanation.
        message: String,
    },
    /// The registry refused the schema, version or level as invalid (HTTP 422, e.g. 42201).
    #[error("schema registry: invalid ({code}): {message}")]
    Invalid {
        /// The Confluent error code (42201 invalid schema, 42202 invalid version, 42203 invalid
        /// compatibility level), or 422 when the registry gave none.
        code: i32,
        /// The registry's message.
        message: String,
    },
    /// The credentials were missing or wrong (HTTP 401).
    #[error("schema registry: unauthorized at {url}: {message}")]
    Unauthorized {
        /// The URL asked.
        url: String,
        /// The registry's message.
        message: String,
    },
    /// The credentials are not allowed to do this (HTTP 403).
    #[error("schema registry: forbidden at {url}: {message}")]
    Forbidden {
        /// The URL asked.
        url: String,
        /// The registry's message.
        message: String,
    },
    /// No registry URL could be reached (connection errors on every URL, after the retries).
    #[error("schema registry unreachable after {attempts} attempt(s) over {urls:?}: {message}")]
    Unreachable {
        /// The configured URLs.
        urls: Vec<String>,
        /// Requests tried.
        attempts: u32,
        /// The last connection error.
        message: String,
    },
    /// The overall deadline passed while the registry kept answering retriable errors.
    #[error("schema registry: {operation} gave up after {elapsed:?} (deadline): {last}")]
    Timeout {
        /// The call, e.g. `GET /schemas/ids/7`.
        operation: String,
        /// Time spent.
        elapsed: Duration,
        /// The last error seen.
        last: String,
    },
    /// Any other HTTP error status.
    #[error("schema registry: HTTP {status} at {url} (error code {code:?}): {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The Confluent `error_code`, when the body had one.
        code: Option<i32>,
        /// The URL asked.
        url: String,
        /// The registry's message or body.
        message: String,
    },
    /// The registry answered something this client cannot read.
    #[error("schema registry: unexpected response: {message}")]
    InvalidResponse {
        /// What was wrong.
        message: String,
    },
    /// A setting is unknown or has a bad value.
    #[error("schema registry configuration: `{key}`: {message}")]
    Config {
        /// The property (or field) name.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl RegistryError {
    /// Whether trying again later may succeed: unreachable registries, deadlines, and HTTP
    /// 408, 429 and 5xx.
    pub fn is_retriable(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } | RegistryError::Timeout { .. } => true,
            RegistryError::Http { status, .. } => is_retriable_status(*status),
            _ => false,
        }
    }

    /// Whether this is a [`RegistryError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        RegistryError::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// HTTP statuses worth retrying: 408, 429 and 5xx (as Confluent's clients do).
pub(crate) fn is_retriable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_classes() {
        let http = |status| RegistryError::Http {
            status,
            code: None,
            url: String::new(),
            message: String::new(),
        };
        assert!(http(503).is_retriable());
        assert!(http(429).is_retriable());
        assert!(http(408).is_retriable());
        assert!(!http(400).is_retriable());
        let forbidden = RegistryError::Forbidden {
            url: String::new(),
            message: String::new(),
        };
        assert!(!forbidden.is_retriable());
    }
}
