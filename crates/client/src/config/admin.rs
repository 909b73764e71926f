//! `AdminConfig`: the admin client's settings, readable from the Java `AdminClientConfig`
//! property names.

use std::time::Duration;

use super::common::{ClientConfig, ClientDefaults, CommonSettings, REQUEST_TIMEOUT_MS};
use super::error::ConfigError;
use super::value::{millis, parse_ms, INT_MAX};

const DEFAULT_API_TIMEOUT_MS: &str = "default.api.timeout.ms";

/// Java's `AdminClientConfig` default for `default.api.timeout.ms`.
const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(60);

/// Java's `AdminClientConfig` defaults for the shared settings.
const ADMIN_DEFAULTS: ClientDefaults = ClientDefaults {
    request_timeout: Duration::from_secs(30),
    send_buffer_bytes: Some(128 * 1024),
    receive_buffer_bytes: Some(64 * 1024),
};

/// The admin client's settings: the shared [`ClientConfig`] and `default.api.timeout.ms`, how
/// long each [`Admin`](crate::Admin) call retries before it fails with
/// [`Error::AdminTimeout`](crate::Error::AdminTimeout). Give it to
/// [`Admin::new`](crate::Admin::new).
///
/// ```
/// use std::time::Duration;
/// use kafkit::config::AdminConfig;
///
/// let config = AdminConfig::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("default.api.timeout.ms", "90000"),
/// ])?;
/// assert_eq!(config.default_api_timeout(), Duration::from_secs(90));
/// assert_eq!(config.client().request_timeout(), Duration::from_secs(30));
/// # Ok::<(), kafkit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    client: ClientConfig,
    default_api_timeout: Duration,
}

impl AdminConfig {
    /// Reads Java admin properties: the shared client keys (`bootstrap.servers`,
    /// `client.id`, `request.timeout.ms`, the backoffs, socket and security settings) and
    /// `default.api.timeout.ms` (default 60000). As Java's `KafkaAdminClient`, an explicit
    /// `default.api.timeout.ms` below `request.timeout.ms` is refused
    /// ([`ConfigError::Conflict`]), and without one the default grows to
    /// `request.timeout.ms` when that is longer. Any other key is
    /// [`ConfigError::UnknownKey`]; a bad value is [`ConfigError::InvalidValue`].
    ///
    /// ```
    /// use kafkit::config::{AdminConfig, ConfigError};
    ///
    /// let err = AdminConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("request.timeout.ms", "30000"),
    ///     ("default.api.timeout.ms", "10000"),
    /// ])
    /// .unwrap_err();
    /// assert_eq!(err.key(), "default.api.timeout.ms");
    /// ```
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut common = CommonSettings::default();
        let mut default_api_timeout = None;
        for (key, value) in properties {
            let (key, value) = (key.as_ref(), value.as_ref());
            if key == DEFAULT_API_TIMEOUT_MS {
                default_api_timeout = Some(parse_ms(DEFAULT_API_TIMEOUT_MS, value, 0, INT_MAX)?);
            } else if !common.set(key, value)? {
                return Err(ConfigError::UnknownKey {
                    key: key.to_owned(),
                    value: value.to_owned(),
                });
            }
        }
        let client = common.build(&ADMIN_DEFAULTS)?;
        let request_timeout = client.request_timeout();
        let default_api_timeout = match default_api_timeout {
            Some(t) if t < request_timeout => {
                return Err(ConfigError::conflict(
                    DEFAULT_API_TIMEOUT_MS,
                    millis(t).to_string(),
                    format!(
                        "must be no smaller than {REQUEST_TIMEOUT_MS} ({} ms)",
                        millis(request_timeout)
                    ),
                ))
            }
            Some(t) => t,
            None => DEFAULT_API_TIMEOUT.max(request_timeout),
        };
        Ok(AdminConfig {
            client,
            default_api_timeout,
        })
    }

    /// Admin settings over the shared settings of another client's config (a producer's or
    /// consumer's [`ClientConfig`]), with the default `default.api.timeout.ms` (60 s, or
    /// `request.timeout.ms` when longer); change it with
    /// [`with_default_api_timeout`](Self::with_default_api_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kafkit::config::{AdminConfig, ConsumerConfig};
    ///
    /// let consumer = ConsumerConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("default.api.timeout.ms", "5000"),
    /// ])?;
    /// let admin = AdminConfig::from_client_config(consumer.client())
    ///     .with_default_api_timeout(consumer.default_api_timeout());
    /// assert_eq!(admin.default_api_timeout(), Duration::from_secs(5));
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn from_client_config(client: &ClientConfig) -> Self {
        AdminConfig {
            default_api_timeout: DEFAULT_API_TIMEOUT.max(client.request_timeout()),
            client: client.clone(),
        }
    }

    /// The same settings with another `default.api.timeout.ms`. Unlike
    /// [`from_properties`](Self::from_properties) any value is taken: each attempt's request
    /// timeout is cut to the time left before the deadline.
    pub fn with_default_api_timeout(mut self, timeout: Duration) -> Self {
        self.default_api_timeout = timeout;
        self
    }

    /// The shared settings (bootstrap servers, timeouts, backoffs, security).
    pub fn client(&self) -> &ClientConfig {
        &self.client
    }

    /// `default.api.timeout.ms`: how long each admin call (and the bootstrap wait of
    /// [`Admin::new`](crate::Admin::new)) retries. Default: 60 s.
    pub fn default_api_timeout(&self) -> Duration {
        self.default_api_timeout
    }

    /// Every setting as a Java property, in a stable order (effective values). Reading them
    /// back with [`from_properties`](Self::from_properties) gives an equal configuration.
    ///
    /// ```
    /// use kafkit::config::AdminConfig;
    ///
    /// let config = AdminConfig::from_properties([("bootstrap.servers", "b:9092")])?;
    /// let props = config.to_properties();
    /// assert!(props.contains(&("default.api.timeout.ms", "60000".to_owned())));
    /// assert_eq!(AdminConfig::from_properties(props)?, config);
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn to_properties(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(24);
        self.client.append_properties(&mut out);
        out.push((
            DEFAULT_API_TIMEOUT_MS,
            millis(self.default_api_timeout).to_string(),
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(props: &[(&str, &str)]) -> Result<AdminConfig, ConfigError> {
        let mut all = vec![("bootstrap.servers", "localhost:9092")];
        all.extend_from_slice(props);
        AdminConfig::from_properties(all)
    }

    #[test]
    fn defaults_are_java_admin_client_config() {
        let c = from(&[]).unwrap();
        assert_eq!(c.default_api_timeout(), Duration::from_secs(60));
        assert_eq!(c.client().request_timeout(), Duration::from_secs(30));
        assert_eq!(c.client().receive_buffer_bytes(), Some(64 * 1024));
    }

    #[test]
    fn default_api_timeout_is_read_and_checked_against_the_request_timeout() {
        let c = from(&[("default.api.timeout.ms", "45000")]).unwrap();
        assert_eq!(c.default_api_timeout(), Duration::from_secs(45));
        let err = from(&[("default.api.timeout.ms", "29999")]).unwrap_err();
        assert!(matches!(err, ConfigError::Conflict { .. }), "{err:?}");
        assert_eq!(err.key(), DEFAULT_API_TIMEOUT_MS);
        let c = from(&[
            ("request.timeout.ms", "1000"),
            ("default.api.timeout.ms", "1000"),
        ])
        .unwrap();
        assert_eq!(c.default_api_timeout(), Duration::from_secs(1));
        // Not given: the default follows a longer request timeout (Java warns and does so).
        let c = from(&[("request.timeout.ms", "90000")]).unwrap();
        assert_eq!(c.default_api_timeout(), Duration::from_secs(90));
        let err = from(&[("default.api.timeout.ms", "soon")]).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err:?}");
    }

    #[test]
    fn other_keys_are_unknown_and_properties_round_trip() {
        let err = from(&[("group.id", "g")]).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
        let c = from(&[("default.api.timeout.ms", "120000"), ("client.id", "a")]).unwrap();
        assert_eq!(AdminConfig::from_properties(c.to_properties()).unwrap(), c);
    }
}
