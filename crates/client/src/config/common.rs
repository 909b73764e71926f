//! Settings shared by every client kind (producer now; consumer and admin later).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::error::ConfigError;
use super::security::SecurityConfig;
use super::value::{check_ms, check_range, millis, parse_int, parse_list, parse_ms, INT_MAX};
use crate::state::backoff::ExponentialBackoff;

pub(crate) const BOOTSTRAP_SERVERS: &str = "bootstrap.servers";
pub(crate) const CLIENT_ID: &str = "client.id";
pub(crate) const REQUEST_TIMEOUT_MS: &str = "request.timeout.ms";
pub(crate) const RETRY_BACKOFF_MS: &str = "retry.backoff.ms";
pub(crate) const RETRY_BACKOFF_MAX_MS: &str = "retry.backoff.max.ms";
pub(crate) const RECONNECT_BACKOFF_MS: &str = "reconnect.backoff.ms";
pub(crate) const RECONNECT_BACKOFF_MAX_MS: &str = "reconnect.backoff.max.ms";
pub(crate) const METADATA_MAX_AGE_MS: &str = "metadata.max.age.ms";
pub(crate) const CONNECTIONS_MAX_IDLE_MS: &str = "connections.max.idle.ms";
pub(crate) const SOCKET_CONNECTION_SETUP_TIMEOUT_MS: &str = "socket.connection.setup.timeout.ms";
pub(crate) const SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS: &str =
    "socket.connection.setup.timeout.max.ms";
pub(crate) const SEND_BUFFER_BYTES: &str = "send.buffer.bytes";
pub(crate) const RECEIVE_BUFFER_BYTES: &str = "receive.buffer.bytes";
pub(crate) const CLIENT_DNS_LOOKUP: &str = "client.dns.lookup";
pub(crate) const BOOTSTRAP_RESOLVE_TIMEOUT_MS: &str = "bootstrap.resolve.timeout.ms";
pub(crate) const METADATA_RECOVERY_STRATEGY: &str = "metadata.recovery.strategy";
pub(crate) const METADATA_RECOVERY_REBOOTSTRAP_TRIGGER_MS: &str =
    "metadata.recovery.rebootstrap.trigger.ms";

/// `metadata.recovery.strategy` (KIP-899): what a client does when the brokers it knows from
/// the metadata stop answering. Read case-insensitively, as Java does.
///
/// ```
/// use kafkit::config::{MetadataRecoveryStrategy, ProducerConfig};
///
/// let producer = ProducerConfig::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("metadata.recovery.strategy", "NONE"),
/// ])?;
/// assert_eq!(
///     producer.client().metadata_recovery_strategy(),
///     MetadataRecoveryStrategy::None
/// );
/// assert_eq!(MetadataRecoveryStrategy::default(), MetadataRecoveryStrategy::Rebootstrap);
/// assert_eq!(MetadataRecoveryStrategy::None.to_string(), "none");
/// # Ok::<(), kafkit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MetadataRecoveryStrategy {
    /// Once brokers are known from the metadata, connect only to them: the bootstrap list is
    /// never used again (the Java client's behaviour before KIP-899).
    None,
    /// Go back to the bootstrap list when no known broker can be reached, when no metadata
    /// could be fetched for `metadata.recovery.rebootstrap.trigger.ms`, or when a broker
    /// answers `REBOOTSTRAP_REQUIRED` (KIP-1102). The Java 4.x default.
    #[default]
    Rebootstrap,
}

impl MetadataRecoveryStrategy {
    /// The property value: `none` or `rebootstrap`.
    ///
    /// ```
    /// use kafkit::config::MetadataRecoveryStrategy;
    ///
    /// assert_eq!(MetadataRecoveryStrategy::Rebootstrap.as_str(), "rebootstrap");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataRecoveryStrategy::None => "none",
            MetadataRecoveryStrategy::Rebootstrap => "rebootstrap",
        }
    }
}

impl fmt::Display for MetadataRecoveryStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetadataRecoveryStrategy {
    type Err = ConfigError;

    /// Reads `none` or `rebootstrap` in any case (surrounding whitespace trimmed); anything
    /// else is a [`ConfigError::InvalidValue`] naming `metadata.recovery.strategy`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(MetadataRecoveryStrategy::None),
            "rebootstrap" => Ok(MetadataRecoveryStrategy::Rebootstrap),
            _ => Err(ConfigError::invalid(
                METADATA_RECOVERY_STRATEGY,
                s,
                "expected `none` or `rebootstrap`",
            )),
        }
    }
}

/// Checks `client.dns.lookup`: `use_all_dns_ips` (Java's default since 2.6, what kafkit
/// always does: every address of a host name is tried in turn, resolved afresh on every
/// connection attempt) is accepted; the other values are refused naming the key.
fn check_dns_lookup(value: &str) -> Result<(), ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "use_all_dns_ips" => Ok(()),
        "resolve_canonical_bootstrap_servers_only" => Err(ConfigError::invalid(
            CLIENT_DNS_LOOKUP,
            value,
            "resolve_canonical_bootstrap_servers_only (replacing each bootstrap host by the \
             canonical names of its addresses, for Kerberos) is not supported: kafkit has no \
             GSSAPI; use use_all_dns_ips",
        )),
        "default" => Err(ConfigError::invalid(
            CLIENT_DNS_LOOKUP,
            value,
            "`default` (first address only) was removed in Kafka 3.0 (KIP-602); \
             use_all_dns_ips is the default",
        )),
        _ => Err(ConfigError::invalid(
            CLIENT_DNS_LOOKUP,
            value,
            "expected use_all_dns_ips",
        )),
    }
}

/// One entry of `bootstrap.servers`: a broker's host name or IP and port.
///
/// ```
/// use kafkit::config::BrokerAddress;
///
/// let a: BrokerAddress = "[::1]:9092".parse().unwrap();
/// assert_eq!((a.host(), a.port()), ("::1", 9092));
/// assert_eq!(a.to_string(), "[::1]:9092");
/// assert!("localhost".parse::<BrokerAddress>().is_err()); // the port is required
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddress {
    host: String,
    port: u16,
}

impl BrokerAddress {
    /// An address from its parts (an IPv6 host is given without brackets).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The host name or IP address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for BrokerAddress {
    type Err = ConfigError;

    /// Reads `host:port` or `[ipv6]:port`, as the Java client's bootstrap list.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| ConfigError::invalid(BOOTSTRAP_SERVERS, s, reason);
        let trimmed = s.trim();
        if trimmed.contains(',') {
            return Err(bad(
                "one `host:port` per entry: split a comma-separated list \
                 (the `bootstrap.servers` property is split at commas, a builder's list is not)",
            ));
        }
        let (host, port) = if let Some(rest) = trimmed.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("unclosed `[` in IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected `host:port`"))?;
            (host, port)
        } else {
            trimmed
                .rsplit_once(':')
                .ok_or_else(|| bad("expected `host:port`"))?
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if host.contains(':') && !trimmed.starts_with('[') {
            return Err(bad("an IPv6 host must be in brackets, as `[::1]:9092`"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
        Ok(BrokerAddress::new(host, port))
    }
}

/// Settings every Kafka client has, whatever its kind (the Java `CommonClientConfigs`).
///
/// Made by a client's config builder, e.g. [`ProducerConfig::builder`]; read through
/// [`ProducerConfig::client`].
///
/// [`ProducerConfig::builder`]: super::ProducerConfig::builder
/// [`ProducerConfig::client`]: super::ProducerConfig::client
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    bootstrap_servers: Vec<BrokerAddress>,
    client_id: Option<String>,
    request_timeout: Duration,
    retry_backoff: Duration,
    retry_backoff_max: Duration,
    reconnect_backoff: Duration,
    reconnect_backoff_max: Duration,
    metadata_max_age: Duration,
    connections_max_idle: Option<Duration>,
    socket_connection_setup_timeout: Duration,
    socket_connection_setup_timeout_max: Duration,
    send_buffer_bytes: Option<u32>,
    receive_buffer_bytes: Option<u32>,
    bootstrap_resolve_timeout: Duration,
    metadata_recovery_strategy: MetadataRecoveryStrategy,
    metadata_recovery_rebootstrap_trigger: Duration,
    security: SecurityConfig,
}

impl ClientConfig {
    /// `security.protocol`, `sasl.*`, `ssl.*`: how connections are secured.
    pub fn security(&self) -> &SecurityConfig {
        &self.security
    }

    /// `bootstrap.servers`: the brokers to ask for the cluster's metadata first (never
    /// empty).
    pub fn bootstrap_servers(&self) -> &[BrokerAddress] {
        &self.bootstrap_servers
    }

    /// `client.id`, if set. When it is not, the client names itself (the Java producer uses
    /// `producer-<n>`).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// `request.timeout.ms`: how long to wait for a response before failing or retrying.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// `retry.backoff.ms`: the first wait before retrying a failed request.
    pub fn retry_backoff(&self) -> Duration {
        self.retry_backoff
    }

    /// `retry.backoff.max.ms`: the cap of the retry backoff.
    pub fn retry_backoff_max(&self) -> Duration {
        self.retry_backoff_max
    }

    /// `reconnect.backoff.ms`: the first wait before reconnecting to a broker.
    pub fn reconnect_backoff(&self) -> Duration {
        self.reconnect_backoff
    }

    /// `reconnect.backoff.max.ms`: the cap of the reconnect backoff.
    pub fn reconnect_backoff_max(&self) -> Duration {
        self.reconnect_backoff_max
    }

    /// `metadata.max.age.ms`: refresh the metadata at least this often.
    pub fn metadata_max_age(&self) -> Duration {
        self.metadata_max_age
    }

    /// `connections.max.idle.ms`: close connections idle this long; `None` (a negative
    /// property value) keeps them open.
    pub fn connections_max_idle(&self) -> Option<Duration> {
        self.connections_max_idle
    }

    /// `socket.connection.setup.timeout.ms`: the first timeout for establishing a connection.
    pub fn socket_connection_setup_timeout(&self) -> Duration {
        self.socket_connection_setup_timeout
    }

    /// `socket.connection.setup.timeout.max.ms`: the cap of the growing setup timeout.
    pub fn socket_connection_setup_timeout_max(&self) -> Duration {
        self.socket_connection_setup_timeout_max
    }

    /// `send.buffer.bytes`: the `SO_SNDBUF` set on every socket before it connects (as Java
    /// does); `None` (-1) keeps the OS default.
    pub fn send_buffer_bytes(&self) -> Option<u32> {
        self.send_buffer_bytes
    }

    /// `receive.buffer.bytes`: the `SO_RCVBUF` set on every socket before it connects (as
    /// Java does); `None` (-1) keeps the OS default and its autotuning.
    pub fn receive_buffer_bytes(&self) -> Option<u32> {
        self.receive_buffer_bytes
    }

    /// `bootstrap.resolve.timeout.ms` (KIP-909; Java's default `0`): how long connecting
    /// keeps looking up a bootstrap list none of whose host names resolves, retrying with
    /// the reconnect backoff. `0` fails at once, as Java's constructor does by default.
    /// The wait is also bounded by the client's bootstrap wait (the producer's
    /// `max.block.ms`, the consumer's and admin's `default.api.timeout.ms`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kafkit::config::ProducerConfig;
    ///
    /// let producer = ProducerConfig::builder()
    ///     .set("bootstrap.servers", "kafka.invalid:9092")?
    ///     .set("bootstrap.resolve.timeout.ms", "5000")?
    ///     .build()?;
    /// assert_eq!(producer.client().bootstrap_resolve_timeout(), Duration::from_secs(5));
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn bootstrap_resolve_timeout(&self) -> Duration {
        self.bootstrap_resolve_timeout
    }

    /// `metadata.recovery.strategy` (KIP-899; Java 4.x's default `rebootstrap`): whether the
    /// client goes back to `bootstrap.servers` when the brokers it knows stop answering.
    /// See [`MetadataRecoveryStrategy`].
    pub fn metadata_recovery_strategy(&self) -> MetadataRecoveryStrategy {
        self.metadata_recovery_strategy
    }

    /// `metadata.recovery.rebootstrap.trigger.ms` (KIP-1102; default 300 000 ms): with the
    /// `rebootstrap` strategy, how long metadata may fail to be fetched before the client
    /// drops its connections and asks the bootstrap list again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kafkit::config::ConsumerConfig;
    ///
    /// let consumer = ConsumerConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("metadata.recovery.rebootstrap.trigger.ms", "10000"),
    /// ])?;
    /// assert_eq!(
    ///     consumer.client().metadata_recovery_rebootstrap_trigger(),
    ///     Duration::from_secs(10)
    /// );
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn metadata_recovery_rebootstrap_trigger(&self) -> Duration {
        self.metadata_recovery_rebootstrap_trigger
    }

    /// Appends these settings as Java properties (see [`ProducerConfig::to_properties`]).
    ///
    /// [`ProducerConfig::to_properties`]: super::ProducerConfig::to_properties
    pub(crate) fn append_properties(&self, out: &mut Vec<(&'static str, String)>) {
        let ms = |d: Duration| millis(d).to_string();
        let servers: Vec<String> = self
            .bootstrap_servers
            .iter()
            .map(ToString::to_string)
            .collect();
        out.push((BOOTSTRAP_SERVERS, servers.join(",")));
        if let Some(id) = &self.client_id {
            out.push((CLIENT_ID, id.clone()));
        }
        out.push((REQUEST_TIMEOUT_MS, ms(self.request_timeout)));
        out.push((RETRY_BACKOFF_MS, ms(self.retry_backoff)));
        out.push((RETRY_BACKOFF_MAX_MS, ms(self.retry_backoff_max)));
        out.push((RECONNECT_BACKOFF_MS, ms(self.reconnect_backoff)));
        out.push((RECONNECT_BACKOFF_MAX_MS, ms(self.reconnect_backoff_max)));
        out.push((METADATA_MAX_AGE_MS, ms(self.metadata_max_age)));
        out.push((
            CONNECTIONS_MAX_IDLE_MS,
            self.connections_max_idle
                .map_or_else(|| "-1".to_owned(), ms),
        ));
        out.push((
            SOCKET_CONNECTION_SETUP_TIMEOUT_MS,
            ms(self.socket_connection_setup_timeout),
        ));
        out.push((
            SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS,
            ms(self.socket_connection_setup_timeout_max),
        ));
        let buffer = |b: Option<u32>| b.map_or_else(|| "-1".to_owned(), |n| n.to_string());
        out.push((SEND_BUFFER_BYTES, buffer(self.send_buffer_bytes)));
        out.push((RECEIVE_BUFFER_BYTES, buffer(self.receive_buffer_bytes)));
        out.push((
            BOOTSTRAP_RESOLVE_TIMEOUT_MS,
            ms(self.bootstrap_resolve_timeout),
        ));
        out.push((
            METADATA_RECOVERY_STRATEGY,
            self.metadata_recovery_strategy.to_string(),
        ));
        out.push((
            METADATA_RECOVERY_REBOOTSTRAP_TRIGGER_MS,
            ms(self.metadata_recovery_rebootstrap_trigger),
        ));
        self.security.append_properties(out);
    }

    /// The retry backoff policy: `retry.backoff.ms` doubling up to `retry.backoff.max.ms`,
    /// ±20% jitter (static when the first is not below the second).
    pub(crate) fn retry_backoff_policy(&self) -> ExponentialBackoff {
        ExponentialBackoff::new(self.retry_backoff, self.retry_backoff_max)
    }

    /// The reconnect backoff policy: `reconnect.backoff.ms` doubling up to
    /// `reconnect.backoff.max.ms`, ±20% jitter.
    #[cfg(test)]
    pub(crate) fn reconnect_backoff_policy(&self) -> ExponentialBackoff {
        ExponentialBackoff::new(self.reconnect_backoff, self.reconnect_backoff_max)
    }

    /// The growing connection setup timeout: `socket.connection.setup.timeout.ms` doubling
    /// per failed attempt up to `socket.connection.setup.timeout.max.ms`, ±20% jitter.
    #[cfg(test)]
    pub(crate) fn connection_setup_timeout_policy(&self) -> ExponentialBackoff {
        ExponentialBackoff::new(
            self.socket_connection_setup_timeout,
            self.socket_connection_setup_timeout_max,
        )
    }
}

/// The defaults that differ between client kinds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientDefaults {
    pub(crate) request_timeout: Duration,
    pub(crate) send_buffer_bytes: Option<u32>,
    pub(crate) receive_buffer_bytes: Option<u32>,
}

/// The shared settings as given (explicitly set or not), before defaults and validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CommonSettings {
    pub(crate) bootstrap_servers: Option<Vec<String>>,
    pub(crate) client_id: Option<String>,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) retry_backoff: Option<Duration>,
    pub(crate) retry_backoff_max: Option<Duration>,
    pub(crate) reconnect_backoff: Option<Duration>,
    pub(crate) reconnect_backoff_max: Option<Duration>,
    pub(crate) metadata_max_age: Option<Duration>,
    pub(crate) connections_max_idle: Option<Option<Duration>>,
    pub(crate) socket_connection_setup_timeout: Option<Duration>,
    pub(crate) socket_connection_setup_timeout_max: Option<Duration>,
    pub(crate) send_buffer_bytes: Option<Option<u32>>,
    pub(crate) receive_buffer_bytes: Option<Option<u32>>,
    pub(crate) bootstrap_resolve_timeout: Option<Duration>,
    pub(crate) metadata_recovery_strategy: Option<MetadataRecoveryStrategy>,
    pub(crate) metadata_recovery_rebootstrap_trigger: Option<Duration>,
    pub(crate) security: SecurityConfig,
}

fn socket_buffer(key: &'static str, value: &str) -> Result<Option<u32>, ConfigError> {
    let n = parse_int(key, value, -1, INT_MAX)?;
    Ok(u32::try_from(n).ok())
}

impl CommonSettings {
    /// Applies one property if it is a shared one; `Ok(false)` when the key is not.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let long = i64::MAX;
        match key {
            BOOTSTRAP_SERVERS => self.bootstrap_servers = Some(parse_list(value)),
            CLIENT_ID => self.client_id = Some(value.trim().to_owned()),
            REQUEST_TIMEOUT_MS => {
                self.request_timeout = Some(parse_ms(REQUEST_TIMEOUT_MS, value, 0, INT_MAX)?)
            }
            RETRY_BACKOFF_MS => {
                self.retry_backoff = Some(parse_ms(RETRY_BACKOFF_MS, value, 0, long)?)
            }
            RETRY_BACKOFF_MAX_MS => {
                self.retry_backoff_max = Some(parse_ms(RETRY_BACKOFF_MAX_MS, value, 0, long)?)
            }
            RECONNECT_BACKOFF_MS => {
                self.reconnect_backoff = Some(parse_ms(RECONNECT_BACKOFF_MS, value, 0, long)?)
            }
            RECONNECT_BACKOFF_MAX_MS => {
                self.reconnect_backoff_max =
                    Some(parse_ms(RECONNECT_BACKOFF_MAX_MS, value, 0, long)?)
            }
            METADATA_MAX_AGE_MS => {
                self.metadata_max_age = Some(parse_ms(METADATA_MAX_AGE_MS, value, 0, long)?)
            }
            CONNECTIONS_MAX_IDLE_MS => {
                let ms = parse_int(CONNECTIONS_MAX_IDLE_MS, value, i64::MIN, long)?;
                self.connections_max_idle = Some(u64::try_from(ms).ok().map(Duration::from_millis));
            }
            SOCKET_CONNECTION_SETUP_TIMEOUT_MS => {
                self.socket_connection_setup_timeout = Some(parse_ms(
                    SOCKET_CONNECTION_SETUP_TIMEOUT_MS,
                    value,
                    0,
                    long,
                )?)
            }
            SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS => {
                self.socket_connection_setup_timeout_max = Some(parse_ms(
                    SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS,
                    value,
                    0,
                    long,
                )?)
            }
            SEND_BUFFER_BYTES => {
                self.send_buffer_bytes = Some(socket_buffer(SEND_BUFFER_BYTES, value)?)
            }
            RECEIVE_BUFFER_BYTES => {
                self.receive_buffer_bytes = Some(socket_buffer(RECEIVE_BUFFER_BYTES, value)?)
            }
            CLIENT_DNS_LOOKUP => check_dns_lookup(value)?,
            BOOTSTRAP_RESOLVE_TIMEOUT_MS => {
                self.bootstrap_resolve_timeout =
                    Some(parse_ms(BOOTSTRAP_RESOLVE_TIMEOUT_MS, value, 0, long)?)
            }
            METADATA_RECOVERY_STRATEGY => self.metadata_recovery_strategy = Some(value.parse()?),
            METADATA_RECOVERY_REBOOTSTRAP_TRIGGER_MS => {
                self.metadata_recovery_rebootstrap_trigger = Some(parse_ms(
                    METADATA_RECOVERY_REBOOTSTRAP_TRIGGER_MS,
                    value,
                    0,
                    long,
                )?)
            }
            _ => return self.security.set(key, value),
        }
        Ok(true)
    }

    /// Applies defaults and the Java client's rules:
    /// - `bootstrap.servers` must list at least one valid `host:port`;
    /// - when `reconnect.backoff.ms` is set but `reconnect.backoff.max.ms` is not, the maximum
    ///   follows it (exponential reconnect backoff off), as `postProcessReconnectBackoffConfigs`.
    pub(crate) fn build(&self, defaults: &ClientDefaults) -> Result<ClientConfig, ConfigError> {
        let servers = self.bootstrap_servers.as_deref().unwrap_or_default();
        if servers.is_empty() {
            return Err(ConfigError::MissingBootstrapServers);
        }
        let bootstrap_servers = servers
            .iter()
            .map(|s| s.parse::<BrokerAddress>())
            .collect::<Result<Vec<_>, _>>()?;

        self.security.validate()?;
        let request_timeout = check_ms(
            REQUEST_TIMEOUT_MS,
            self.request_timeout.unwrap_or(defaults.request_timeout),
            0,
            INT_MAX,
        )?;
        let reconnect_backoff = self.reconnect_backoff.unwrap_or(Duration::from_millis(50));
        let reconnect_backoff_max = match (self.reconnect_backoff_max, self.reconnect_backoff) {
            (Some(max), _) => max,
            (None, Some(explicit_initial)) => {
                tracing::warn!(
                    "{RECONNECT_BACKOFF_MS} is set but {RECONNECT_BACKOFF_MAX_MS} is not: \
                     exponential reconnect backoff is disabled"
                );
                explicit_initial
            }
            (None, None) => Duration::from_secs(1),
        };
        let check_buffer = |key, v: Option<u32>| -> Result<Option<u32>, ConfigError> {
            if let Some(n) = v {
                check_range(key, i64::from(n), -1, INT_MAX)?;
            }
            Ok(v)
        };
        let retry_backoff = self.retry_backoff.unwrap_or(Duration::from_millis(100));
        let retry_backoff_max = self.retry_backoff_max.unwrap_or(Duration::from_secs(1));
        if retry_backoff > retry_backoff_max {
            tracing::warn!(
                "{RETRY_BACKOFF_MS} ({} ms) is greater than {RETRY_BACKOFF_MAX_MS} ({} ms): \
                 a static backoff of {RETRY_BACKOFF_MAX_MS} applies",
                millis(retry_backoff),
                millis(retry_backoff_max)
            );
        }
        Ok(ClientConfig {
            bootstrap_servers,
            client_id: self.client_id.clone(),
            request_timeout,
            retry_backoff,
            retry_backoff_max,
            reconnect_backoff,
            reconnect_backoff_max,
            metadata_max_age: self.metadata_max_age.unwrap_or(Duration::from_secs(300)),
            connections_max_idle: self
                .connections_max_idle
                .unwrap_or(Some(Duration::from_secs(540))),
            socket_connection_setup_timeout: self
                .socket_connection_setup_timeout
                .unwrap_or(Duration::from_secs(10)),
            socket_connection_setup_timeout_max: self
                .socket_connection_setup_timeout_max
                .unwrap_or(Duration::from_secs(30)),
            send_buffer_bytes: check_buffer(
                SEND_BUFFER_BYTES,
                self.send_buffer_bytes.unwrap_or(defaults.send_buffer_bytes),
            )?,
            receive_buffer_bytes: check_buffer(
                RECEIVE_BUFFER_BYTES,
                self.receive_buffer_bytes
                    .unwrap_or(defaults.receive_buffer_bytes),
            )?,
            bootstrap_resolve_timeout: self.bootstrap_resolve_timeout.unwrap_or(Duration::ZERO),
            metadata_recovery_strategy: self.metadata_recovery_strategy.unwrap_or_default(),
            metadata_recovery_rebootstrap_trigger: self
                .metadata_recovery_rebootstrap_trigger
                .unwrap_or(Duration::from_secs(300)),
            security: self.security.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: ClientDefaults = ClientDefaults {
        request_timeout: Duration::from_secs(30),
        send_buffer_bytes: Some(131_072),
        receive_buffer_bytes: Some(32_768),
    };

    fn with_servers() -> CommonSettings {
        CommonSettings {
            bootstrap_servers: Some(vec!["localhost:9092".into()]),
            ..CommonSettings::default()
        }
    }

    #[test]
    fn defaults_are_the_java_clients() {
        let c = with_servers().build(&DEFAULTS).unwrap();
        assert_eq!(
            c.bootstrap_servers(),
            &[BrokerAddress::new("localhost", 9092)]
        );
        assert_eq!(c.client_id(), None);
        assert_eq!(c.request_timeout(), Duration::from_secs(30));
        assert_eq!(c.retry_backoff(), Duration::from_millis(100));
        assert_eq!(c.retry_backoff_max(), Duration::from_secs(1));
        assert_eq!(c.reconnect_backoff(), Duration::from_millis(50));
        assert_eq!(c.reconnect_backoff_max(), Duration::from_secs(1));
        assert_eq!(c.metadata_max_age(), Duration::from_secs(300));
        assert_eq!(c.connections_max_idle(), Some(Duration::from_secs(540)));
        assert_eq!(c.socket_connection_setup_timeout(), Duration::from_secs(10));
        assert_eq!(
            c.socket_connection_setup_timeout_max(),
            Duration::from_secs(30)
        );
        assert_eq!(c.send_buffer_bytes(), Some(131_072));
        assert_eq!(c.receive_buffer_bytes(), Some(32_768));
        assert_eq!(
            c.metadata_recovery_strategy(),
            MetadataRecoveryStrategy::Rebootstrap
        );
        assert_eq!(
            c.metadata_recovery_rebootstrap_trigger(),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn metadata_recovery_settings_are_read_as_java_reads_them() {
        let mut s = with_servers();
        assert_eq!(s.set(METADATA_RECOVERY_STRATEGY, " None "), Ok(true));
        assert_eq!(
            s.build(&DEFAULTS).unwrap().metadata_recovery_strategy(),
            MetadataRecoveryStrategy::None
        );
        assert_eq!(s.set(METADATA_RECOVERY_STRATEGY, "REBOOTSTRAP"), Ok(true));
        assert_eq!(
            s.build(&DEFAULTS).unwrap().metadata_recovery_strategy(),
            MetadataRecoveryStrategy::Rebootstrap
        );
        for refused in ["", "re-bootstrap", "always"] {
            let err = s.set(METADATA_RECOVERY_STRATEGY, refused).unwrap_err();
            assert_eq!(err.key(), METADATA_RECOVERY_STRATEGY);
            assert!(err.to_string().contains(&format!("`{refused}`")), "{err}");
        }
        assert_eq!(
            s.set(METADATA_RECOVERY_REBOOTSTRAP_TRIGGER_MS, "0"),
            Ok(true)
        );
        assert_eq!(
            s.build(&DEFAULTS)
                .unwrap()
                .metadata_recovery_rebootstrap_trigger(),
            Duration::ZERO
        );
        for refused in ["-1", "soon"] {
            let err = s
                .set(METADATA_RECOVERY_REBOOTSTRAP_TRIGGER_MS, refused)
                .unwrap_err();
            assert_eq!(err.key(), METADATA_RECOVERY_REBOOTSTRAP_TRIGGER_MS);
        }
    }

    #[test]
    fn bootstrap_servers_are_required_and_validated() {
        assert_eq!(
            CommonSettings::default().build(&DEFAULTS),
            Err(ConfigError::MissingBootstrapServers)
        );
        let mut s = CommonSettings::default();
        s.set(BOOTSTRAP_SERVERS, " , ").unwrap();
        assert_eq!(
            s.build(&DEFAULTS),
            Err(ConfigError::MissingBootstrapServers)
        );
        s.set(BOOTSTRAP_SERVERS, "a:1, broker-2:99999").unwrap();
        let err = s.build(&DEFAULTS).unwrap_err();
        assert_eq!(err.key(), BOOTSTRAP_SERVERS);
        assert!(err.to_string().contains("`broker-2:99999`"), "{err}");
        s.set(BOOTSTRAP_SERVERS, "a:1,[fe80::1]:9093").unwrap();
        let c = s.build(&DEFAULTS).unwrap();
        assert_eq!(
            c.bootstrap_servers(),
            &[
                BrokerAddress::new("a", 1),
                BrokerAddress::new("fe80::1", 9093)
            ]
        );
    }

    #[test]
    fn broker_address_forms() {
        for bad in [
            "",
            "host",
            ":9092",
            "host:",
            "host:x",
            "::1:9092",
            "[::1",
            "[::1]9092",
        ] {
            assert!(bad.parse::<BrokerAddress>().is_err(), "{bad:?} accepted");
        }
        let a: BrokerAddress = " kafka.example:9092 ".parse().unwrap();
        assert_eq!(a.to_string(), "kafka.example:9092");
    }

    #[test]
    fn a_list_given_as_one_address_says_so() {
        let err = "127.0.0.1:9092,127.0.0.1:9093"
            .parse::<BrokerAddress>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("one `host:port` per entry"), "{err}");
        assert!(!err.contains("IPv6"), "{err}");
    }

    #[test]
    fn reconnect_max_follows_an_explicit_initial() {
        let mut s = with_servers();
        s.set(RECONNECT_BACKOFF_MS, "5000").unwrap();
        let c = s.build(&DEFAULTS).unwrap();
        assert_eq!(c.reconnect_backoff_max(), Duration::from_secs(5));
        assert!(c.reconnect_backoff_policy().is_static());
        s.set(RECONNECT_BACKOFF_MAX_MS, "20000").unwrap();
        let c = s.build(&DEFAULTS).unwrap();
        assert_eq!(c.reconnect_backoff_max(), Duration::from_secs(20));
        assert!(!c.reconnect_backoff_policy().is_static());
    }

    #[test]
    fn negative_idle_and_buffers_mean_none() {
        let mut s = with_servers();
        s.set(CONNECTIONS_MAX_IDLE_MS, "-1").unwrap();
        s.set(SEND_BUFFER_BYTES, "-1").unwrap();
        s.set(RECEIVE_BUFFER_BYTES, "65536").unwrap();
        let c = s.build(&DEFAULTS).unwrap();
        assert_eq!(c.connections_max_idle(), None);
        assert_eq!(c.send_buffer_bytes(), None);
        assert_eq!(c.receive_buffer_bytes(), Some(65_536));
        assert!(s.set(SEND_BUFFER_BYTES, "-2").is_err());
    }

    #[test]
    fn only_use_all_dns_ips_is_accepted() {
        let mut s = with_servers();
        assert_eq!(s.set(CLIENT_DNS_LOOKUP, "use_all_dns_ips"), Ok(true));
        assert_eq!(s.set(CLIENT_DNS_LOOKUP, " USE_ALL_DNS_IPS "), Ok(true));
        for refused in ["resolve_canonical_bootstrap_servers_only", "default", "x"] {
            let err = s.set(CLIENT_DNS_LOOKUP, refused).unwrap_err();
            assert_eq!(err.key(), CLIENT_DNS_LOOKUP);
            assert!(err.to_string().contains(refused), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_not_claimed() {
        assert_eq!(with_servers().set("acks", "all"), Ok(false));
    }

    #[test]
    fn request_timeout_is_a_java_int() {
        let mut s = with_servers();
        assert!(s.set(REQUEST_TIMEOUT_MS, "2147483648").is_err());
        s.request_timeout = Some(Duration::from_millis(1 << 31));
        assert_eq!(s.build(&DEFAULTS).unwrap_err().key(), REQUEST_TIMEOUT_MS);
    }
}
