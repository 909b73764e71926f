//! Registry client settings, in code or from Confluent's property names.

use std::path::PathBuf;
use std::time::Duration;

pub use kafkit::config::Secret;

use super::error::RegistryError;

/// How the client authenticates to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RegistryAuth {
    /// No credentials (unless a URL carries `user:pass@`).
    #[default]
    None,
    /// HTTP basic auth (`basic.auth.credentials.source=USER_INFO`, `basic.auth.user.info`).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A static bearer token (`bearer.auth.credentials.source=STATIC_TOKEN`, `bearer.auth.token`).
    Bearer {
        /// The token.
        token: Secret,
    },
}

/// Settings of a [`SchemaRegistry`](super::SchemaRegistry) client.
///
/// ```
/// use kafkit_events::registry::RegistryConfig;
/// let config = RegistryConfig::from_properties([
///     ("schema.registry.url", "http://r1:8081,http://r2:8081"),
///     ("basic.auth.credentials.source", "USER_INFO"),
///     ("basic.auth.user.info", "alice:secret"),
/// ])
/// .unwrap();
/// assert_eq!(config.urls.len(), 2);
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Base URLs (`schema.registry.url`, comma-separated), tried in order on connection errors,
    /// e.g. `http://127.0.0.1:8081` or Apicurio's `http://host:8080/apis/ccompat/v7`.
    pub urls: Vec<String>,
    /// Credentials.
    pub auth: RegistryAuth,
    /// A PEM file of CAs the registry's certificate must chain to
    /// (`schema.registry.ssl.ca.location`); the webpki roots when `None`.
    pub ca_location: Option<PathBuf>,
    /// The bound on one HTTP request (`schema.registry.request.timeout.ms`, default 30 s).
    pub request_timeout: Duration,
    /// The bound on one call, retries included (`schema.registry.deadline.ms`, default 60 s).
    pub deadline: Duration,
    /// Retries after the first attempt (`max.retries`, default 3).
    pub max_retries: u32,
    /// The first backoff (`retries.wait.ms`, default 1 s); attempt n waits a uniformly random
    /// time in `[0, min(base·2ⁿ, max)]` (full jitter).
    pub retry_backoff: Duration,
    /// The backoff cap (`retries.max.wait.ms`, default 20 s).
    pub retry_max_backoff: Duration,
    /// Entries per cache (schemas by id, ids by subject and schema; `max.schemas.per.subject`,
    /// default 1000).
    pub cache_capacity: usize,
    /// How long `latest` answers are reused (`latest.cache.ttl.sec`): `None` (the default, or
    /// `0`) asks the registry each time; `-1` reuses them forever.
    pub latest_cache_ttl: Option<Duration>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            urls: Vec::new(),
            auth: RegistryAuth::None,
            ca_location: None,
            request_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            max_retries: 3,
            retry_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(20),
            cache_capacity: 1000,
            latest_cache_ttl: None,
        }
    }
}

/// Property prefixes this module owns: an unknown key under one of them is refused.
const OWNED_PREFIXES: &[&str] = &["schema.registry.", "basic.auth.", "bearer.auth."];

/// Keys read by [`RegistryConfig::from_properties`] besides the owned prefixes.
const OTHER_KEYS: &[&str] = &[
    "max.retries",
    "retries.wait.ms",
    "retries.max.wait.ms",
    "max.schemas.per.subject",
    "latest.cache.ttl.sec",
];

impl RegistryConfig {
    /// A config for these URLs with default settings.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        RegistryConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            ..RegistryConfig::default()
        }
    }

    /// Whether [`RegistryConfig::from_properties`] reads (or refuses) `key`: keys under
    /// `schema.registry.`, `basic.auth.`, `bearer.auth.`, and `max.retries`, `retries.wait.ms`,
    /// `retries.max.wait.ms`, `max.schemas.per.subject`, `latest.cache.ttl.sec`.
    pub fn owns_key(key: &str) -> bool {
        OWNED_PREFIXES.iter().any(|p| key.starts_with(p)) || OTHER_KEYS.contains(&key)
    }

    /// Reads Confluent's property names; keys it does not own ([`RegistryConfig::owns_key`])
    /// are ignored, unknown keys it owns are refused with [`RegistryError::Config`] naming them.
    ///
    /// Keys: `schema.registry.url` (comma-separated); `basic.auth.credentials.source`
    /// (`USER_INFO`, or `URL` for `user:pass@` in the URL) with `basic.auth.user.info`;
    /// `bearer.auth.credentials.source` (`STATIC_TOKEN`) with `bearer.auth.token`; each auth
    /// key also with a `schema.registry.` prefix; `schema.registry.ssl.ca.location` or
    /// `schema.registry.ssl.truststore.location` (a PEM file; `…truststore.type` must be `PEM`);
    /// `schema.registry.request.timeout.ms`, `schema.registry.deadline.ms`, `max.retries`,
    /// `retries.wait.ms`, `retries.max.wait.ms`, `max.schemas.per.subject`,
    /// `latest.cache.ttl.sec`.
    pub fn from_properties<K, V>(
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, RegistryError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = RegistryConfig::default();
        let mut basic_source: Option<String> = None;
        let mut user_info: Option<String> = None;
        let mut bearer_source: Option<String> = None;
        let mut token: Option<String> = None;
        for (key, value) in properties {
            let (key, value) = (key.as_ref(), value.as_ref().trim());
            if !RegistryConfig::owns_key(key) {
                continue;
            }
            let auth_key = key.strip_prefix("schema.registry.").unwrap_or(key);
            match auth_key {
                "basic.auth.credentials.source" => {
                    basic_source = Some(value.to_ascii_uppercase());
                    continue;
                }
                "basic.auth.user.info" => {
                    user_info = Some(value.to_owned());
                    continue;
                }
                "bearer.auth.credentials.source" => {
                    bearer_source = Some(value.to_ascii_uppercase());
                    continue;
                }
                "bearer.auth.token" => {
                    token = Some(value.to_owned());
                    continue;
                }
                _ => {}
            }
            match key {
                "schema.registry.url" => {
                    config.urls = value
                        .split(',')
                        .map(str::trim)
                        .filter(|u| !u.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "schema.registry.ssl.ca.location" | "schema.registry.ssl.truststore.location" => {
                    config.ca_location = Some(PathBuf::from(value));
                }
                "schema.registry.ssl.truststore.type" => {
                    if !value.eq_ignore_ascii_case("PEM") {
                        return Err(RegistryError::config(
                            key,
                            format!("`{value}` is not supported: only PEM files"),
                        ));
                    }
                }
                "schema.registry.request.timeout.ms" => {
                    config.request_timeout = Duration::from_millis(positive(key, value)?);
                }
                "schema.registry.deadline.ms" => {
                    config.deadline = Duration::from_millis(positive(key, value)?);
                }
                "max.retries" => {
                    config.max_retries = u32::try_from(number(key, value)?)
                        .map_err(|_| RegistryError::config(key, "too large"))?;
                }
                "retries.wait.ms" => {
                    config.retry_backoff = Duration::from_millis(number(key, value)?)
                }
                "retries.max.wait.ms" => {
                    config.retry_max_backoff = Duration::from_millis(number(key, value)?);
                }
                "max.schemas.per.subject" => {
                    config.cache_capacity = usize::try_from(positive(key, value)?)
                        .map_err(|_| RegistryError::config(key, "too large"))?;
                }
                "latest.cache.ttl.sec" => {
                    let secs: i64 = value.parse().map_err(|_| {
                        RegistryError::config(key, format!("`{value}` is not a number"))
                    })?;
                    config.latest_cache_ttl = match secs {
                        0 => None,
                        s if s < 0 => Some(Duration::MAX),
                        s => Some(Duration::from_secs(s.unsigned_abs())),
                    };
                }
                _ => {
                    return Err(RegistryError::config(
                        key,
                        "unknown schema registry property",
                    ))
                }
            }
        }
        config.auth = match (basic_source.as_deref(), bearer_source.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(RegistryError::config(
                    "bearer.auth.credentials.source",
                    "set either basic or bearer auth, not both",
                ))
            }
            (Some("USER_INFO"), None) => {
                let info = user_info.ok_or_else(|| {
                    RegistryError::config("basic.auth.user.info", "missing (USER_INFO source)")
                })?;
                let (username, password) = info.split_once(':').ok_or_else(|| {
                    RegistryError::config("basic.auth.user.info", "expected `user:password`")
                })?;
                RegistryAuth::Basic {
                    username: username.to_owned(),
                    password: Secret::new(password),
                }
            }
            (Some("URL"), None) => RegistryAuth::None,
            (Some(other), None) => {
                return Err(RegistryError::config(
                    "basic.auth.credentials.source",
                    format!("`{other}` is not supported (USER_INFO or URL)"),
                ))
            }
            (None, Some("STATIC_TOKEN")) => RegistryAuth::Bearer {
                token: Secret::new(token.ok_or_else(|| {
                    RegistryError::config("bearer.auth.token", "missing (STATIC_TOKEN source)")
                })?),
            },
            (None, Some(other)) => {
                return Err(RegistryError::config(
                    "bearer.auth.credentials.source",
                    format!("`{other}` is not supported (STATIC_TOKEN)"),
                ))
            }
            (None, None) => match (user_info, token) {
                // Confluent's default source is URL; a lone user info or token still means it.
                (Some(info), None) => match info.split_once(':') {
                    Some((u, p)) => RegistryAuth::Basic {
                        username: u.to_owned(),
                        password: Secret::new(p),
                    },
                    None => {
                        return Err(RegistryError::config(
                            "basic.auth.user.info",
                            "expected `user:password`",
                        ))
                    }
                },
                (None, Some(t)) => RegistryAuth::Bearer {
                    token: Secret::new(t),
                },
                (Some(_), Some(_)) => {
                    return Err(RegistryError::config(
                        "bearer.auth.token",
                        "set either basic or bearer auth, not both",
                    ))
                }
                (None, None) => RegistryAuth::None,
            },
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks cross-field rules: at least one URL, each `http(s)://`; backoffs ordered.
    pub fn validate(&self) -> Result<(), RegistryError> {
        if self.urls.is_empty() {
            return Err(RegistryError::config("schema.registry.url", "no URL given"));
        }
        for url in &self.urls {
            let parsed = reqwest::Url::parse(url).map_err(|e| {
                RegistryError::config("schema.registry.url", format!("`{}`: {e}", redact(url)))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(RegistryError::config(
                    "schema.registry.url",
                    format!("`{}`: only http and https", redact(url)),
                ));
            }
        }
        if self.retry_backoff > self.retry_max_backoff {
            return Err(RegistryError::config(
                "retries.wait.ms",
                "larger than retries.max.wait.ms",
            ));
        }
        if self.cache_capacity == 0 {
            return Err(RegistryError::config(
                "max.schemas.per.subject",
                "must be > 0",
            ));
        }
        Ok(())
    }
}

/// `url` with any `user:pass@` replaced by `***@`, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn number(key: &str, value: &str) -> Result<u64, RegistryError> {
    value
        .parse()
        .map_err(|_| RegistryError::config(key, format!("`{value}` is not a non-negative number")))
}

fn positive(key: &str, value: &str) -> Result<u64, RegistryError> {
    match number(key, value)? {
        0 => Err(RegistryError::config(key, "must be > 0")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties() {
        let c = RegistryConfig::from_properties([
            ("schema.registry.url", "http://a:1, http://b:2"),
            ("bearer.auth.credentials.source", "STATIC_TOKEN"),
            ("bearer.auth.token", "tok3n"),
            ("max.retries", "5"),
            ("latest.cache.ttl.sec", "30"),
            ("bootstrap.servers", "ignored:9092"),
        ])
        .unwrap();
        assert_eq!(c.urls, ["http://a:1", "http://b:2"]);
        assert_eq!(c.max_retries, 5);
        assert_eq!(c.latest_cache_ttl, Some(Duration::from_secs(30)));
        assert!(!format!("{c:?}").contains("tok3n"));
    }

    #[test]
    fn refuses_unknown_and_bad() {
        let err = RegistryConfig::from_properties([
            ("schema.registry.url", "http://a:1"),
            ("schema.registry.frobnicate", "1"),
        ])
        .unwrap_err();
        assert!(
            matches!(err, RegistryError::Config { ref key, .. } if key == "schema.registry.frobnicate")
        );
        let err = RegistryConfig::from_properties([
            ("schema.registry.url", "http://a:1"),
            ("basic.auth.credentials.source", "SASL_INHERIT"),
        ])
        .unwrap_err();
        assert!(
            matches!(err, RegistryError::Config { ref key, .. } if key == "basic.auth.credentials.source")
        );
        assert!(RegistryConfig::from_properties([("schema.registry.url", "ftp://x")]).is_err());
        assert!(RegistryConfig::from_properties([("max.retries", "2")]).is_err());
    }

    #[test]
    fn redacts_user_info() {
        assert_eq!(redact("http://u:p@h:1/x"), "http://***@h:1/x");
        assert_eq!(redact("http://h:1"), "http://h:1");
    }
}
