//! The producer's settings: [`ProducerConfig`] and its builder.

use std::time::Duration;

use super::acks::Acks;
use super::common::{ClientConfig, ClientDefaults, CommonSettings};
use super::compression::{parse_compression, Compression};
use super::error::ConfigError;
use super::value::{check_ms, check_range, millis, parse_bool, parse_int, parse_ms, INT_MAX};

const ACKS: &str = "acks";
const LINGER_MS: &str = "linger.ms";
const BATCH_SIZE: &str = "batch.size";
const COMPRESSION_TYPE: &str = "compression.type";
const COMPRESSION_GZIP_LEVEL: &str = "compression.gzip.level";
const COMPRESSION_LZ4_LEVEL: &str = "compression.lz4.level";
const COMPRESSION_ZSTD_LEVEL: &str = "compression.zstd.level";
/// KIP-390 defaults and ranges, as in the Java client: gzip -1 (zlib's default, 6) or 1-9, lz4
/// 1-17 (default 9), zstd -131072-22 (default 3).
const DEFAULT_GZIP_LEVEL: i32 = -1;
const DEFAULT_LZ4_LEVEL: i32 = 9;
const DEFAULT_ZSTD_LEVEL: i32 = 3;
const ENABLE_IDEMPOTENCE: &str = "enable.idempotence";
const MAX_IN_FLIGHT: &str = "max.in.flight.requests.per.connection";
const RETRIES: &str = "retries";
const DELIVERY_TIMEOUT_MS: &str = "delivery.timeout.ms";
const BUFFER_MEMORY: &str = "buffer.memory";
const MAX_BLOCK_MS: &str = "max.block.ms";
const MAX_REQUEST_SIZE: &str = "max.request.size";
const METADATA_MAX_IDLE_MS: &str = "metadata.max.idle.ms";
const PARTITIONER_IGNORE_KEYS: &str = "partitioner.ignore.keys";
const PARTITIONER_ADAPTIVE: &str = "partitioner.adaptive.partitioning.enable";
const PARTITIONER_AVAILABILITY_TIMEOUT_MS: &str = "partitioner.availability.timeout.ms";
const TRANSACTIONAL_ID: &str = "transactional.id";
const TRANSACTION_TIMEOUT_MS: &str = "transaction.timeout.ms";

/// The most requests in flight per connection that idempotence allows.
const MAX_IN_FLIGHT_FOR_IDEMPOTENCE: u32 = 5;

const DEFAULT_LINGER: Duration = Duration::from_millis(5);
const DEFAULT_BATCH_SIZE: usize = 16_384;
const DEFAULT_MAX_IN_FLIGHT: u32 = 5;
const DEFAULT_RETRIES: u32 = i32::MAX as u32;
const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_BUFFER_MEMORY: u64 = 32 * 1024 * 1024;
const DEFAULT_MAX_BLOCK: Duration = Duration::from_secs(60);
const DEFAULT_MAX_REQUEST_SIZE: usize = 1024 * 1024;
const DEFAULT_METADATA_MAX_IDLE: Duration = Duration::from_secs(300);
const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

const PRODUCER_DEFAULTS: ClientDefaults = ClientDefaults {
    request_timeout: Duration::from_secs(30),
    send_buffer_bytes: Some(128 * 1024),
    receive_buffer_bytes: Some(32 * 1024),
};

/// A validated producer configuration.
///
/// Make one with [`ProducerConfig::builder`] or, from the Java client's property names, with
/// [`ProducerConfig::from_properties`]. Unset settings take the Java client's 4.x defaults.
///
/// ```
/// use std::time::Duration;
/// use kafkit::config::{Acks, Compression, ProducerConfig};
///
/// let config = ProducerConfig::builder()
///     .bootstrap_servers(["broker-1:9092", "broker-2:9092"])
///     .compression(Compression::Zstd)
///     .linger(Duration::from_millis(20))
///     .build()?;
///
/// assert_eq!(config.acks(), Acks::All); // the default
/// assert!(config.enable_idempotence()); // the default
/// assert_eq!(config.batch_size(), 16_384);
/// assert_eq!(config.client().bootstrap_servers().len(), 2);
/// # Ok::<(), kafkit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    client: ClientConfig,
    acks: Acks,
    enable_idempotence: bool,
    linger: Duration,
    batch_size: usize,
    compression: Compression,
    compression_gzip_level: i32,
    compression_lz4_level: i32,
    compression_zstd_level: i32,
    max_in_flight_requests_per_connection: u32,
    retries: u32,
    delivery_timeout: Duration,
    buffer_memory: u64,
    max_block: Duration,
    max_request_size: usize,
    metadata_max_idle: Duration,
    partitioner_ignore_keys: bool,
    partitioner_adaptive_partitioning: bool,
    partitioner_availability_timeout: Duration,
    transactional_id: Option<String>,
    transaction_timeout: Duration,
}

impl ProducerConfig {
    /// A builder with every setting at its default.
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfigBuilder::new()
    }

    /// A configuration from Java client properties (`key`, `value`), as in a
    /// `producer.properties` file. Later duplicates win.
    ///
    /// Supported keys: `bootstrap.servers`, `client.id`, `acks`, `linger.ms`, `batch.size`,
    /// `compression.type`, `compression.gzip.level`, `compression.lz4.level`,
    /// `compression.zstd.level`, `enable.idempotence`, `max.in.flight.requests.per.connection`,
    /// `retries`, `retry.backoff.ms`, `retry.backoff.max.ms`, `request.timeout.ms`,
    /// `delivery.timeout.ms`, `buffer.memory`, `max.block.ms`, `max.request.size`,
    /// `metadata.max.age.ms`, `metadata.max.idle.ms`, `reconnect.backoff.ms`,
    /// `reconnect.backoff.max.ms`, `connections.max.idle.ms`,
    /// `socket.connection.setup.timeout.ms`, `socket.connection.setup.timeout.max.ms`,
    /// `send.buffer.bytes`, `receive.buffer.bytes`, `metadata.recovery.strategy`,
    /// `metadata.recovery.rebootstrap.trigger.ms`, `partitioner.ignore.keys`,
    /// `partitioner.adaptive.partitioning.enable`, `partitioner.availability.timeout.ms`,
    /// `transactional.id`, `transaction.timeout.ms`. Any other key (including Java-only ones
    /// such as `key.serializer`) is [`ConfigError::UnknownKey`]; a bad value is
    /// [`ConfigError::InvalidValue`]; both name the key and the value.
    ///
    /// ```
    /// use kafkit::config::{Acks, ConfigError, ProducerConfig};
    ///
    /// let config = ProducerConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("acks", "1"),
    ///     ("linger.ms", "10"),
    /// ])?;
    /// assert_eq!(config.acks(), Acks::Leader);
    /// // acks=1 with idempotence only on by default: idempotence is turned off, as in Java.
    /// assert!(!config.enable_idempotence());
    ///
    /// let err = ProducerConfig::from_properties([("bootstrap.servers", "b:9092"), ("acks", "2")])
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "invalid value `2` for config `acks`: must be one of: all, -1, 0, 1");
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut builder = ProducerConfigBuilder::new();
        for (key, value) in properties {
            builder = builder.set(key.as_ref(), value.as_ref())?;
        }
        builder.build()
    }

    /// Every setting as a Java property, in a stable order: the effective values, after
    /// defaults and the cross-field rules (e.g. `enable.idempotence=false` when `acks=1`
    /// turned it off). Reading them back with [`from_properties`](Self::from_properties)
    /// gives an equal configuration. Handy for logging what a producer runs with.
    ///
    /// ```
    /// use kafkit::config::ProducerConfig;
    ///
    /// let config = ProducerConfig::from_properties([("bootstrap.servers", "b:9092")])?;
    /// let props = config.to_properties();
    /// assert!(props.contains(&("linger.ms", "5".to_owned())));
    /// assert_eq!(ProducerConfig::from_properties(props)?, config);
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn to_properties(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| millis(d).to_string();
        let mut out = Vec::with_capacity(32);
        self.client.append_properties(&mut out);
        out.push((ACKS, self.acks.as_str().to_owned()));
        out.push((ENABLE_IDEMPOTENCE, self.enable_idempotence.to_string()));
        out.push((LINGER_MS, ms(self.linger)));
        out.push((BATCH_SIZE, self.batch_size.to_string()));
        out.push((COMPRESSION_TYPE, self.compression.name().to_owned()));
        out.push((
            COMPRESSION_GZIP_LEVEL,
            self.compression_gzip_level.to_string(),
        ));
        out.push((
            COMPRESSION_LZ4_LEVEL,
            self.compression_lz4_level.to_string(),
        ));
        out.push((
            COMPRESSION_ZSTD_LEVEL,
            self.compression_zstd_level.to_string(),
        ));
        out.push((
            MAX_IN_FLIGHT,
            self.max_in_flight_requests_per_connection.to_string(),
        ));
        out.push((RETRIES, self.retries.to_string()));
        out.push((DELIVERY_TIMEOUT_MS, ms(self.delivery_timeout)));
        out.push((BUFFER_MEMORY, self.buffer_memory.to_string()));
        out.push((MAX_BLOCK_MS, ms(self.max_block)));
        out.push((MAX_REQUEST_SIZE, self.max_request_size.to_string()));
        out.push((METADATA_MAX_IDLE_MS, ms(self.metadata_max_idle)));
        out.push((
            PARTITIONER_IGNORE_KEYS,
            self.partitioner_ignore_keys.to_string(),
        ));
        out.push((
            PARTITIONER_ADAPTIVE,
            self.partitioner_adaptive_partitioning.to_string(),
        ));
        out.push((
            PARTITIONER_AVAILABILITY_TIMEOUT_MS,
            ms(self.partitioner_availability_timeout),
        ));
        if let Some(id) = &self.transactional_id {
            out.push((TRANSACTIONAL_ID, id.clone()));
        }
        out.push((TRANSACTION_TIMEOUT_MS, ms(self.transaction_timeout)));
        out
    }

    /// The settings shared with other clients: bootstrap servers, client id, timeouts,
    /// backoffs.
    pub fn client(&self) -> &ClientConfig {
        &self.client
    }

    /// `acks`.
    pub fn acks(&self) -> Acks {
        self.acks
    }

    /// Whether the producer is idempotent, after the Java client's rules: `true` unless
    /// disabled explicitly, or implicitly by `acks` other than `all` or `retries=0`.
    pub fn enable_idempotence(&self) -> bool {
        self.enable_idempotence
    }

    /// `linger.ms`: how long a batch may wait for more records before it is sent.
    pub fn linger(&self) -> Duration {
        self.linger
    }

    /// `batch.size`: the target size of a batch in bytes, and the sticky partitioner's switch
    /// point (0 disables batching).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// `compression.type`.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// `compression.gzip.level`: 1-9, or -1 for zlib's default (6).
    pub fn compression_gzip_level(&self) -> i32 {
        self.compression_gzip_level
    }

    /// `compression.lz4.level`: 1-17 (default 9). kafkit's pure-Rust LZ4 encoder has one
    /// compressor, LZ4's fast one, so a level would not change what is written:
    /// `Producer::new` refuses any value but the default with a config error naming the key.
    pub fn compression_lz4_level(&self) -> i32 {
        self.compression_lz4_level
    }

    /// `compression.zstd.level`: -131072-22 (0 means zstd's default, 3).
    pub fn compression_zstd_level(&self) -> i32 {
        self.compression_zstd_level
    }

    /// The level for the configured `compression.type` (`None` for none and snappy, which have
    /// no levels).
    ///
    /// ```
    /// use kafkit::config::{Compression, ProducerConfig};
    ///
    /// let config = ProducerConfig::builder()
    ///     .bootstrap_servers(["localhost:9092"])
    ///     .compression(Compression::Zstd)
    ///     .compression_zstd_level(9)
    ///     .build()?;
    /// assert_eq!(config.compression_level(), Some(9));
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn compression_level(&self) -> Option<i32> {
        match self.compression {
            Compression::None | Compression::Snappy => None,
            Compression::Gzip => Some(self.compression_gzip_level),
            Compression::Lz4 => Some(self.compression_lz4_level),
            Compression::Zstd => Some(self.compression_zstd_level),
        }
    }

    /// `max.in.flight.requests.per.connection`.
    pub fn max_in_flight_requests_per_connection(&self) -> u32 {
        self.max_in_flight_requests_per_connection
    }

    /// `retries`: how often a failed batch is retried (bounded by `delivery.timeout.ms`).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// `delivery.timeout.ms`, after the Java client's rule: at least `linger.ms` +
    /// `request.timeout.ms` (a default below that is raised to it). A record that reaches it
    /// fails with `ProduceError::DeliveryTimeout`, whose `sent` says whether it may have
    /// been written.
    pub fn delivery_timeout(&self) -> Duration {
        self.delivery_timeout
    }

    /// `buffer.memory`: bytes of records the producer may hold before `send` blocks.
    pub fn buffer_memory(&self) -> u64 {
        self.buffer_memory
    }

    /// `max.block.ms`: how long `send` may block on metadata or buffer space, and how long
    /// `Producer::new` waits for a bootstrap broker that is not reachable yet.
    pub fn max_block(&self) -> Duration {
        self.max_block
    }

    /// `max.request.size`: the largest Produce request (and record) in bytes.
    pub fn max_request_size(&self) -> usize {
        self.max_request_size
    }

    /// `metadata.max.idle.ms`: accepted for compatibility (validated, kept, written back by
    /// [`to_properties`](Self::to_properties)); kafkit does not forget the metadata of topics
    /// it produced to, so the refresh keeps asking for them: a little traffic, nothing lost.
    pub fn metadata_max_idle(&self) -> Duration {
        self.metadata_max_idle
    }

    /// `partitioner.ignore.keys`: route keyed records with the sticky partitioner too.
    pub fn partitioner_ignore_keys(&self) -> bool {
        self.partitioner_ignore_keys
    }

    /// `partitioner.adaptive.partitioning.enable`: weight sticky choices by queue size.
    pub fn partitioner_adaptive_partitioning(&self) -> bool {
        self.partitioner_adaptive_partitioning
    }

    /// `partitioner.availability.timeout.ms`: with adaptive partitioning on, a partition whose
    /// leader has had batches waiting (ready to send or in flight) but has not taken or
    /// answered one for longer than this is skipped when a new sticky partition is chosen for
    /// records without a key, until that broker makes progress again; when every partition is
    /// skipped the choice is among all. Keyed records and explicit partitions are never
    /// rerouted. Zero (the default) turns this off; it has no effect when
    /// `partitioner.adaptive.partitioning.enable` is false.
    pub fn partitioner_availability_timeout(&self) -> Duration {
        self.partitioner_availability_timeout
    }

    /// Refuses the settings this producer would accept but not honour (a typed error naming
    /// the key): a `compression.lz4.level` other than the default.
    pub(crate) fn refuse_unbuilt(&self) -> Result<(), ConfigError> {
        if self.compression_lz4_level != DEFAULT_LZ4_LEVEL {
            return Err(ConfigError::invalid(
                COMPRESSION_LZ4_LEVEL,
                self.compression_lz4_level.to_string(),
                "kafkit's pure-Rust LZ4 encoder has one compressor (LZ4's fast one), so a level \
                 would not change the output; only the default, 9, is accepted",
            ));
        }
        Ok(())
    }

    /// `transactional.id`, if the producer is transactional.
    pub fn transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }

    /// `transaction.timeout.ms`.
    pub fn transaction_timeout(&self) -> Duration {
        self.transaction_timeout
    }

    /// This configuration with `transactional.id` set to `id` (for a second, transactional
    /// producer made from an application's usual settings, secrets included). Refused with a
    /// [`ConfigError`] naming `transactional.id` when `id` is empty or idempotence is off.
    ///
    /// ```
    /// use kafkit::config::ProducerConfig;
    ///
    /// let config = ProducerConfig::from_properties([("bootstrap.servers", "b:9092")])?;
    /// let transactional = config.with_transactional_id("billing-1")?;
    /// assert_eq!(transactional.transactional_id(), Some("billing-1"));
    ///
    /// let no_idempotence = ProducerConfig::from_properties([
    ///     ("bootstrap.servers", "b:9092"),
    ///     ("enable.idempotence", "false"),
    /// ])?;
    /// let err = no_idempotence.with_transactional_id("billing-1").unwrap_err();
    /// assert!(err.to_string().contains("transactional.id"));
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn with_transactional_id(
        mut self,
        id: impl Into<String>,
    ) -> Result<ProducerConfig, ConfigError> {
        let id = id.into().trim().to_owned();
        if id.is_empty() {
            return Err(ConfigError::invalid(
                TRANSACTIONAL_ID,
                "",
                "a transactional id must not be empty",
            ));
        }
        if !self.enable_idempotence {
            return Err(ConfigError::conflict(
                TRANSACTIONAL_ID,
                id,
                "a transactional producer needs idempotence, which is disabled",
            ));
        }
        self.transactional_id = Some(id);
        Ok(self)
    }
}

/// Builds a [`ProducerConfig`]; every setter names the Java property it mirrors and its
/// default. Remembers which settings were set explicitly, because the Java client's rules
/// treat an explicit setting differently from a default (see [`build`](Self::build)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerConfigBuilder {
    common: CommonSettings,
    acks: Option<Acks>,
    enable_idempotence: Option<bool>,
    linger: Option<Duration>,
    batch_size: Option<usize>,
    compression: Option<Compression>,
    compression_gzip_level: Option<i32>,
    compression_lz4_level: Option<i32>,
    compression_zstd_level: Option<i32>,
    max_in_flight_requests_per_connection: Option<u32>,
    retries: Option<u32>,
    delivery_timeout: Option<Duration>,
    buffer_memory: Option<u64>,
    max_block: Option<Duration>,
    max_request_size: Option<usize>,
    metadata_max_idle: Option<Duration>,
    partitioner_ignore_keys: Option<bool>,
    partitioner_adaptive_partitioning: Option<bool>,
    partitioner_availability_timeout: Option<Duration>,
    transactional_id: Option<String>,
    transaction_timeout: Option<Duration>,
}

impl ProducerConfigBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one setting by its Java property name and string value.
    ///
    /// ```
    /// use kafkit::config::{Compression, ProducerConfigBuilder};
    ///
    /// let config = ProducerConfigBuilder::new()
    ///     .set("bootstrap.servers", "localhost:9092")?
    ///     .set("compression.type", "lz4")?
    ///     .build()?;
    /// assert_eq!(config.compression(), Compression::Lz4);
    /// assert!(ProducerConfigBuilder::new().set("key.serializer", "x").is_err());
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn set(mut self, key: &str, value: &str) -> Result<Self, ConfigError> {
        if self.common.set(key, value)? {
            return Ok(self);
        }
        let long = i64::MAX;
        match key {
            ACKS => self.acks = Some(value.parse()?),
            LINGER_MS => self.linger = Some(parse_ms(LINGER_MS, value, 0, long)?),
            BATCH_SIZE => self.batch_size = Some(parse_usize(BATCH_SIZE, value)?),
            COMPRESSION_TYPE => {
                self.compression = Some(parse_compression(COMPRESSION_TYPE, value)?)
            }
            COMPRESSION_GZIP_LEVEL => {
                self.compression_gzip_level = Some(parse_level(COMPRESSION_GZIP_LEVEL, value)?)
            }
            COMPRESSION_LZ4_LEVEL => {
                self.compression_lz4_level = Some(parse_level(COMPRESSION_LZ4_LEVEL, value)?)
            }
            COMPRESSION_ZSTD_LEVEL => {
                self.compression_zstd_level = Some(parse_level(COMPRESSION_ZSTD_LEVEL, value)?)
            }
            ENABLE_IDEMPOTENCE => {
                self.enable_idempotence = Some(parse_bool(ENABLE_IDEMPOTENCE, value)?)
            }
            MAX_IN_FLIGHT => {
                let n = parse_int(MAX_IN_FLIGHT, value, 1, INT_MAX)?;
                self.max_in_flight_requests_per_connection = Some(n.unsigned_abs() as u32);
            }
            RETRIES => {
                let n = parse_int(RETRIES, value, 0, INT_MAX)?;
                self.retries = Some(n.unsigned_abs() as u32);
            }
            DELIVERY_TIMEOUT_MS => {
                self.delivery_timeout = Some(parse_ms(DELIVERY_TIMEOUT_MS, value, 0, INT_MAX)?)
            }
            BUFFER_MEMORY => {
                self.buffer_memory = Some(parse_int(BUFFER_MEMORY, value, 0, long)?.unsigned_abs())
            }
            MAX_BLOCK_MS => self.max_block = Some(parse_ms(MAX_BLOCK_MS, value, 0, long)?),
            MAX_REQUEST_SIZE => self.max_request_size = Some(parse_usize(MAX_REQUEST_SIZE, value)?),
            METADATA_MAX_IDLE_MS => {
                self.metadata_max_idle = Some(parse_ms(METADATA_MAX_IDLE_MS, value, 5_000, long)?)
            }
            PARTITIONER_IGNORE_KEYS => {
                self.partitioner_ignore_keys = Some(parse_bool(PARTITIONER_IGNORE_KEYS, value)?)
            }
            PARTITIONER_ADAPTIVE => {
                self.partitioner_adaptive_partitioning =
                    Some(parse_bool(PARTITIONER_ADAPTIVE, value)?)
            }
            PARTITIONER_AVAILABILITY_TIMEOUT_MS => {
                self.partitioner_availability_timeout = Some(parse_ms(
                    PARTITIONER_AVAILABILITY_TIMEOUT_MS,
                    value,
                    0,
                    long,
                )?)
            }
            TRANSACTIONAL_ID => self.transactional_id = Some(value.trim().to_owned()),
            TRANSACTION_TIMEOUT_MS => {
                self.transaction_timeout =
                    Some(parse_ms(TRANSACTION_TIMEOUT_MS, value, 0, INT_MAX)?)
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    key: key.to_owned(),
                    value: value.to_owned(),
                })
            }
        }
        Ok(self)
    }

    /// `bootstrap.servers`: `host:port` of one or more brokers to fetch metadata from.
    /// Required; no default.
    pub fn bootstrap_servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.common.bootstrap_servers = Some(servers.into_iter().map(Into::into).collect());
        self
    }

    /// `client.id`: the name sent to brokers in every request, for their logs and quotas.
    /// Default: unset, the producer names itself.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.common.client_id = Some(client_id.into());
        self
    }

    /// `acks`: which replicas must have a write before it counts. Default: [`Acks::All`].
    pub fn acks(mut self, acks: Acks) -> Self {
        self.acks = Some(acks);
        self
    }

    /// `enable.idempotence`: exactly-once delivery per partition through producer ids and
    /// sequence numbers. Default: `true` (see [`build`](Self::build) for when the default
    /// gives way).
    pub fn enable_idempotence(mut self, enable: bool) -> Self {
        self.enable_idempotence = Some(enable);
        self
    }

    /// `linger.ms`: how long a batch waits for more records. Default: 5 ms.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// `batch.size`: target batch size in bytes. Default: 16384.
    pub fn batch_size(mut self, bytes: usize) -> Self {
        self.batch_size = Some(bytes);
        self
    }

    /// `compression.type`: the batch codec. Default: [`Compression::None`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// `compression.gzip.level`: 1 (fastest) to 9 (smallest), or -1 for zlib's default (6).
    /// Default: -1. Checked by [`build`](Self::build).
    pub fn compression_gzip_level(mut self, level: i32) -> Self {
        self.compression_gzip_level = Some(level);
        self
    }

    /// `compression.lz4.level`: 1-17. Default: 9. Every level is encoded with LZ4's fast
    /// compressor, the one level kafkit's pure-Rust encoder has (see
    /// [`ProducerConfig::compression_lz4_level`]). Checked by [`build`](Self::build).
    pub fn compression_lz4_level(mut self, level: i32) -> Self {
        self.compression_lz4_level = Some(level);
        self
    }

    /// `compression.zstd.level`: -131072 (fastest) to 22 (smallest). Default: 3. Checked by
    /// [`build`](Self::build).
    pub fn compression_zstd_level(mut self, level: i32) -> Self {
        self.compression_zstd_level = Some(level);
        self
    }

    /// `max.in.flight.requests.per.connection`: unanswered requests per broker connection
    /// (at least 1, at most 5 with idempotence). Default: 5.
    pub fn max_in_flight_requests_per_connection(mut self, n: u32) -> Self {
        self.max_in_flight_requests_per_connection = Some(n);
        self
    }

    /// `retries`: retries of a failed batch (up to `i32::MAX`). Default: `i32::MAX`
    /// (bounded in practice by `delivery.timeout.ms`).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// `retry.backoff.ms`: the first wait before a retry. Default: 100 ms.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.common.retry_backoff = Some(backoff);
        self
    }

    /// `retry.backoff.max.ms`: the cap of the doubling retry wait. Default: 1 s.
    pub fn retry_backoff_max(mut self, max: Duration) -> Self {
        self.common.retry_backoff_max = Some(max);
        self
    }

    /// `request.timeout.ms`: how long to wait for a broker's response. Default: 30 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.common.request_timeout = Some(timeout);
        self
    }

    /// `delivery.timeout.ms`: the bound on reporting a record's success or failure after
    /// `send` returned, retries included. Default: 120 s. A record that expires after a
    /// request carried it may nevertheless be in the log (`ProduceError::DeliveryTimeout`
    /// with `sent: true`).
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = Some(timeout);
        self
    }

    /// `buffer.memory`: bytes of unsent records the producer may hold. Default: 32 MiB.
    pub fn buffer_memory(mut self, bytes: u64) -> Self {
        self.buffer_memory = Some(bytes);
        self
    }

    /// `max.block.ms`: how long `send` may wait for metadata or buffer space, and
    /// `Producer::new` for a bootstrap broker that is not up yet. Default: 60 s.
    pub fn max_block(mut self, timeout: Duration) -> Self {
        self.max_block = Some(timeout);
        self
    }

    /// `max.request.size`: the largest Produce request in bytes. Default: 1 MiB.
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = Some(bytes);
        self
    }

    /// `metadata.max.age.ms`: refresh metadata at least this often. Default: 5 min.
    pub fn metadata_max_age(mut self, age: Duration) -> Self {
        self.common.metadata_max_age = Some(age);
        self
    }

    /// `metadata.max.idle.ms`: drop an unused topic's metadata after this long (at least
    /// 5 s). Default: 5 min.
    pub fn metadata_max_idle(mut self, idle: Duration) -> Self {
        self.metadata_max_idle = Some(idle);
        self
    }

    /// `reconnect.backoff.ms`: the first wait before reconnecting to a broker. Default: 50 ms.
    /// Setting it without [`reconnect_backoff_max`](Self::reconnect_backoff_max) makes the
    /// maximum equal to it, as in the Java client.
    pub fn reconnect_backoff(mut self, backoff: Duration) -> Self {
        self.common.reconnect_backoff = Some(backoff);
        self
    }

    /// `reconnect.backoff.max.ms`: the cap of the doubling reconnect wait. Default: 1 s.
    pub fn reconnect_backoff_max(mut self, max: Duration) -> Self {
        self.common.reconnect_backoff_max = Some(max);
        self
    }

    /// `connections.max.idle.ms`: close connections idle this long; `None` never closes
    /// them (a negative Java value). Default: 9 min.
    pub fn connections_max_idle(mut self, idle: Option<Duration>) -> Self {
        self.common.connections_max_idle = Some(idle);
        self
    }

    /// `socket.connection.setup.timeout.ms`: the first timeout for a connection to be
    /// established. Default: 10 s.
    pub fn socket_connection_setup_timeout(mut self, timeout: Duration) -> Self {
        self.common.socket_connection_setup_timeout = Some(timeout);
        self
    }

    /// `socket.connection.setup.timeout.max.ms`: the cap of the doubling setup timeout.
    /// Default: 30 s.
    pub fn socket_connection_setup_timeout_max(mut self, timeout: Duration) -> Self {
        self.common.socket_connection_setup_timeout_max = Some(timeout);
        self
    }

    /// `send.buffer.bytes`: `SO_SNDBUF`; `None` keeps the OS default (Java -1).
    /// Default: 128 KiB.
    pub fn send_buffer_bytes(mut self, bytes: Option<u32>) -> Self {
        self.common.send_buffer_bytes = Some(bytes);
        self
    }

    /// `receive.buffer.bytes`: `SO_RCVBUF`; `None` keeps the OS default (Java -1).
    /// Default: 32 KiB.
    pub fn receive_buffer_bytes(mut self, bytes: Option<u32>) -> Self {
        self.common.receive_buffer_bytes = Some(bytes);
        self
    }

    /// `security.protocol`, `sasl.*`, `ssl.*`: how connections are secured (TLS, SASL).
    /// Default: PLAINTEXT.
    pub fn security(mut self, security: super::SecurityConfig) -> Self {
        self.common.security = security;
        self
    }

    /// `partitioner.ignore.keys`: partition keyed records like keyless ones. Default: `false`.
    pub fn partitioner_ignore_keys(mut self, ignore: bool) -> Self {
        self.partitioner_ignore_keys = Some(ignore);
        self
    }

    /// `partitioner.adaptive.partitioning.enable`: favour partitions with shorter queues when
    /// switching sticky partitions. Default: `true`.
    pub fn partitioner_adaptive_partitioning(mut self, enable: bool) -> Self {
        self.partitioner_adaptive_partitioning = Some(enable);
        self
    }

    /// `partitioner.availability.timeout.ms`: with adaptive partitioning, records without a
    /// key get no new sticky partition led by a broker that took or answered no batch for
    /// this long while it had some waiting; zero disables this. Default: 0.
    pub fn partitioner_availability_timeout(mut self, timeout: Duration) -> Self {
        self.partitioner_availability_timeout = Some(timeout);
        self
    }

    /// `transactional.id`: makes the producer transactional (requires idempotence).
    /// Default: unset.
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        self.transactional_id = Some(id.into());
        self
    }

    /// `transaction.timeout.ms`: how long a transaction may stay open. Default: 60 s.
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = Some(timeout);
        self
    }

    /// Applies defaults and validates, with the Java client's cross-field rules:
    ///
    /// - **Idempotence** needs `acks=all`, `retries` > 0 and
    ///   `max.in.flight.requests.per.connection` ≤ 5. When `enable.idempotence=true` was set
    ///   explicitly, breaking any of these is a [`ConfigError::Conflict`]. When idempotence is
    ///   only on by default, `acks` other than `all` or `retries=0` silently turn it off
    ///   (logged at info), but more than 5 requests in flight is still an error: set
    ///   `enable.idempotence=false` to allow it. (This is what kafka-clients 4.1 does.)
    /// - `transactional.id` requires idempotence.
    /// - `delivery.timeout.ms` must be at least `linger.ms + request.timeout.ms`: an error if
    ///   set explicitly, else the default is raised to that sum (logged as a warning).
    /// - `reconnect.backoff.max.ms` follows an explicit `reconnect.backoff.ms` when not set.
    /// - `bootstrap.servers` must list at least one valid `host:port`.
    /// - Integer settings keep the Java ranges (e.g. `batch.size` ≤ `i32::MAX`).
    pub fn build(&self) -> Result<ProducerConfig, ConfigError> {
        let client = self.common.build(&PRODUCER_DEFAULTS)?;

        let acks = self.acks.unwrap_or_default();
        let linger = self.linger.unwrap_or(DEFAULT_LINGER);
        let batch_size = check_usize(BATCH_SIZE, self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE))?;
        let max_in_flight = self
            .max_in_flight_requests_per_connection
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        check_range(MAX_IN_FLIGHT, i64::from(max_in_flight), 1, INT_MAX)?;
        let retries = self.retries.unwrap_or(DEFAULT_RETRIES);
        check_range(RETRIES, i64::from(retries), 0, INT_MAX)?;
        let buffer_memory = self.buffer_memory.unwrap_or(DEFAULT_BUFFER_MEMORY);
        check_range(
            BUFFER_MEMORY,
            i64::try_from(buffer_memory).unwrap_or(i64::MAX),
            0,
            i64::MAX - 1,
        )?;
        let max_request_size = check_usize(
            MAX_REQUEST_SIZE,
            self.max_request_size.unwrap_or(DEFAULT_MAX_REQUEST_SIZE),
        )?;
        let metadata_max_idle = check_ms(
            METADATA_MAX_IDLE_MS,
            self.metadata_max_idle.unwrap_or(DEFAULT_METADATA_MAX_IDLE),
            5_000,
            i64::MAX,
        )?;
        let transaction_timeout = check_ms(
            TRANSACTION_TIMEOUT_MS,
            self.transaction_timeout
                .unwrap_or(DEFAULT_TRANSACTION_TIMEOUT),
            0,
            INT_MAX,
        )?;

        let gzip_level = self.compression_gzip_level.unwrap_or(DEFAULT_GZIP_LEVEL);
        check_level(COMPRESSION_GZIP_LEVEL, gzip_level)?;
        let lz4_level = self.compression_lz4_level.unwrap_or(DEFAULT_LZ4_LEVEL);
        check_level(COMPRESSION_LZ4_LEVEL, lz4_level)?;
        let zstd_level = self.compression_zstd_level.unwrap_or(DEFAULT_ZSTD_LEVEL);
        check_level(COMPRESSION_ZSTD_LEVEL, zstd_level)?;

        let enable_idempotence = self.resolve_idempotence(acks, retries, max_in_flight)?;
        if let Some(id) = &self.transactional_id {
            if !enable_idempotence {
                return Err(ConfigError::conflict(
                    TRANSACTIONAL_ID,
                    id.clone(),
                    "a transactional producer needs idempotence, which is disabled",
                ));
            }
        }
        let delivery_timeout = self.resolve_delivery_timeout(linger, client.request_timeout())?;

        Ok(ProducerConfig {
            client,
            acks,
            enable_idempotence,
            linger,
            batch_size,
            compression: self.compression.unwrap_or_default(),
            compression_gzip_level: gzip_level,
            compression_lz4_level: lz4_level,
            compression_zstd_level: zstd_level,
            max_in_flight_requests_per_connection: max_in_flight,
            retries,
            delivery_timeout,
            buffer_memory,
            max_block: self.max_block.unwrap_or(DEFAULT_MAX_BLOCK),
            max_request_size,
            metadata_max_idle,
            partitioner_ignore_keys: self.partitioner_ignore_keys.unwrap_or(false),
            partitioner_adaptive_partitioning: self
                .partitioner_adaptive_partitioning
                .unwrap_or(true),
            partitioner_availability_timeout: self
                .partitioner_availability_timeout
                .unwrap_or(Duration::ZERO),
            transactional_id: self.transactional_id.clone(),
            transaction_timeout,
        })
    }

    /// The Java client's `postProcessAndValidateIdempotenceConfigs`.
    fn resolve_idempotence(
        &self,
        acks: Acks,
        retries: u32,
        max_in_flight: u32,
    ) -> Result<bool, ConfigError> {
        let explicit = self.enable_idempotence == Some(true);
        if !self.enable_idempotence.unwrap_or(true) {
            return Ok(false);
        }
        let mut disable = false;
        if retries == 0 {
            if explicit {
                return Err(ConfigError::conflict(
                    RETRIES,
                    "0",
                    "enable.idempotence=true requires retries > 0",
                ));
            }
            tracing::info!("idempotence disabled because {RETRIES} is 0");
            disable = true;
        }
        if acks != Acks::All {
            if explicit {
                return Err(ConfigError::conflict(
                    ACKS,
                    acks.as_str(),
                    "enable.idempotence=true requires acks=all",
                ));
            }
            tracing::info!("idempotence disabled because {ACKS} is {acks}, not all");
            disable = true;
        }
        if max_in_flight > MAX_IN_FLIGHT_FOR_IDEMPOTENCE {
            let reason = if explicit {
                "enable.idempotence=true allows at most 5".to_owned()
            } else {
                "idempotence (on by default) allows at most 5; \
                 set enable.idempotence=false to allow more"
                    .to_owned()
            };
            return Err(ConfigError::conflict(
                MAX_IN_FLIGHT,
                max_in_flight.to_string(),
                reason,
            ));
        }
        Ok(!disable)
    }

    /// The Java producer's `configureDeliveryTimeout`.
    fn resolve_delivery_timeout(
        &self,
        linger: Duration,
        request_timeout: Duration,
    ) -> Result<Duration, ConfigError> {
        let linger_ms = millis(linger).min(INT_MAX);
        let floor_ms = linger_ms
            .saturating_add(millis(request_timeout))
            .min(INT_MAX);
        match self.delivery_timeout {
            Some(explicit) => {
                let ms = millis(check_ms(DELIVERY_TIMEOUT_MS, explicit, 0, INT_MAX)?);
                if ms < floor_ms {
                    return Err(ConfigError::conflict(
                        DELIVERY_TIMEOUT_MS,
                        ms.to_string(),
                        format!(
                            "it must be at least linger.ms + request.timeout.ms = {floor_ms} ms"
                        ),
                    ));
                }
                Ok(explicit)
            }
            None if millis(DEFAULT_DELIVERY_TIMEOUT) < floor_ms => {
                tracing::warn!(
                    "{DELIVERY_TIMEOUT_MS} should be at least linger.ms + request.timeout.ms; \
                     setting it to {floor_ms} ms"
                );
                Ok(Duration::from_millis(floor_ms.unsigned_abs()))
            }
            None => Ok(DEFAULT_DELIVERY_TIMEOUT),
        }
    }
}

fn parse_usize(key: &'static str, value: &str) -> Result<usize, ConfigError> {
    let n = parse_int(key, value, 0, INT_MAX)?;
    usize::try_from(n).map_err(|_| ConfigError::invalid(key, value, "too large for this platform"))
}

fn check_usize(key: &'static str, n: usize) -> Result<usize, ConfigError> {
    check_range(key, i64::try_from(n).unwrap_or(i64::MAX), 0, INT_MAX).map(|_| n)
}

/// Parses a `compression.<codec>.level` value and checks its range.
fn parse_level(key: &'static str, value: &str) -> Result<i32, ConfigError> {
    let n = parse_int(key, value, i64::from(i32::MIN), i64::from(i32::MAX))?;
    let level = i32::try_from(n).map_err(|_| ConfigError::invalid(key, value, "not an int"))?;
    check_level(key, level)?;
    Ok(level)
}

/// The KIP-390 range of each `compression.<codec>.level` key.
fn check_level(key: &'static str, level: i32) -> Result<(), ConfigError> {
    let ok = match key {
        COMPRESSION_GZIP_LEVEL => level == -1 || (1..=9).contains(&level),
        COMPRESSION_LZ4_LEVEL => (1..=17).contains(&level),
        _ => (-131_072..=22).contains(&level),
    };
    if ok {
        return Ok(());
    }
    let range = match key {
        COMPRESSION_GZIP_LEVEL => "must be 1-9, or -1 for the default",
        COMPRESSION_LZ4_LEVEL => "must be 1-17",
        _ => "must be -131072-22",
    };
    Err(ConfigError::invalid(key, level.to_string(), range))
}

#[cfg(test)]
mod tests;
