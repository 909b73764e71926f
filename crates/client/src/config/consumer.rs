//! The consumer's settings: [`ConsumerConfig`] and its builder.

use std::time::Duration;

use super::common::{ClientConfig, ClientDefaults, CommonSettings};
use super::error::ConfigError;
use super::value::{
    check_ms, check_range, millis, parse_bool, parse_int, parse_list, parse_ms, INT_MAX,
};

mod options;

pub use options::{AssignorName, AutoOffsetReset, GroupProtocol, IsolationLevel};

const GROUP_ID: &str = "group.id";
const GROUP_INSTANCE_ID: &str = "group.instance.id";
pub(crate) const GROUP_PROTOCOL: &str = "group.protocol";
const GROUP_REMOTE_ASSIGNOR: &str = "group.remote.assignor";
const CLIENT_RACK: &str = "client.rack";
pub(crate) const AUTO_OFFSET_RESET: &str = "auto.offset.reset";
const ENABLE_AUTO_COMMIT: &str = "enable.auto.commit";
const AUTO_COMMIT_INTERVAL_MS: &str = "auto.commit.interval.ms";
const SESSION_TIMEOUT_MS: &str = "session.timeout.ms";
const HEARTBEAT_INTERVAL_MS: &str = "heartbeat.interval.ms";
const MAX_POLL_INTERVAL_MS: &str = "max.poll.interval.ms";
const MAX_POLL_RECORDS: &str = "max.poll.records";
const PARTITION_ASSIGNMENT_STRATEGY: &str = "partition.assignment.strategy";
pub(crate) const ISOLATION_LEVEL: &str = "isolation.level";
const FETCH_MIN_BYTES: &str = "fetch.min.bytes";
const FETCH_MAX_WAIT_MS: &str = "fetch.max.wait.ms";
const FETCH_MAX_BYTES: &str = "fetch.max.bytes";
const MAX_PARTITION_FETCH_BYTES: &str = "max.partition.fetch.bytes";
const CHECK_CRCS: &str = "check.crcs";
const PREFETCH_MAX_BYTES: &str = "kafkit.prefetch.max.bytes";
const ALLOW_AUTO_CREATE_TOPICS: &str = "allow.auto.create.topics";
const DEFAULT_API_TIMEOUT_MS: &str = "default.api.timeout.ms";

const DEFAULT_AUTO_COMMIT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(45);
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);
const DEFAULT_MAX_POLL_RECORDS: usize = 500;
const DEFAULT_FETCH_MAX_WAIT: Duration = Duration::from_millis(500);
const DEFAULT_FETCH_MAX_BYTES: usize = 52_428_800;
const DEFAULT_MAX_PARTITION_FETCH_BYTES: usize = 1_048_576;
const DEFAULT_PREFETCH_MAX_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_ASSIGNORS: [AssignorName; 2] = [AssignorName::Range, AssignorName::CooperativeSticky];

const CONSUMER_DEFAULTS: ClientDefaults = ClientDefaults {
    request_timeout: Duration::from_secs(30),
    send_buffer_bytes: Some(128 * 1024),
    receive_buffer_bytes: Some(64 * 1024),
};

/// A validated consumer configuration.
///
/// Make one with [`ConsumerConfig::builder`] or, from the Java client's property names, with
/// [`ConsumerConfig::from_properties`]. Unset settings take the Java client's 4.x defaults, with
/// one difference: **`enable.auto.commit` is `false` unless set** (Java: `true` when a
/// `group.id` is set). kafkit commits only when asked to.
///
/// ```
/// use std::time::Duration;
/// use kafkit::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
///
/// let config = ConsumerConfig::from_properties([
///     ("bootstrap.servers", "localhost:9092"),
///     ("group.id", "billing"),
///     ("auto.offset.reset", "earliest"),
///     ("isolation.level", "read_committed"),
/// ])?;
/// assert_eq!(config.group_id(), Some("billing"));
/// assert_eq!(config.auto_offset_reset(), AutoOffsetReset::Earliest);
/// assert_eq!(config.isolation_level(), IsolationLevel::ReadCommitted);
/// assert!(!config.enable_auto_commit()); // kafkit's default
/// assert_eq!(config.fetch_max_wait(), Duration::from_millis(500));
///
/// let err = ConsumerConfig::from_properties([("bootstrap.servers", "b:9092"), ("fetch.min.byte", "1")])
///     .unwrap_err();
/// assert_eq!(err.key(), "fetch.min.byte");
/// # Ok::<(), kafkit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    client: ClientConfig,
    group_id: Option<String>,
    group_instance_id: Option<String>,
    group_protocol: GroupProtocol,
    group_remote_assignor: Option<String>,
    client_rack: Option<String>,
    auto_offset_reset: AutoOffsetReset,
    enable_auto_commit: bool,
    auto_commit_interval: Duration,
    session_timeout: Duration,
    heartbeat_interval: Duration,
    max_poll_interval: Duration,
    max_poll_records: usize,
    partition_assignment_strategy: Vec<AssignorName>,
    isolation_level: IsolationLevel,
    fetch_min_bytes: usize,
    fetch_max_wait: Duration,
    fetch_max_bytes: usize,
    max_partition_fetch_bytes: usize,
    check_crcs: bool,
    prefetch_max_bytes: usize,
    allow_auto_create_topics: bool,
    default_api_timeout: Duration,
}

impl ConsumerConfig {
    /// A builder with every setting at its default.
    pub fn builder() -> ConsumerConfigBuilder {
        ConsumerConfigBuilder::new()
    }

    /// A configuration from Java client properties (`key`, `value`), as in a
    /// `consumer.properties` file. Later duplicates win.
    ///
    /// Supported keys: the shared ones (`bootstrap.servers`, `client.id`, `request.timeout.ms`,
    /// `retry.backoff.ms`, `retry.backoff.max.ms`, `metadata.max.age.ms`,
    /// `reconnect.backoff.ms`, `reconnect.backoff.max.ms`, `connections.max.idle.ms`,
    /// `socket.connection.setup.timeout.ms`, `socket.connection.setup.timeout.max.ms`,
    /// `send.buffer.bytes`, `receive.buffer.bytes`, `metadata.recovery.strategy`,
    /// `metadata.recovery.rebootstrap.trigger.ms`, `security.protocol`, `sasl.*`, `ssl.*`)
    /// and `group.id`, `group.instance.id`, `group.protocol`, `group.remote.assignor`,
    /// `client.rack`, `auto.offset.reset`, `enable.auto.commit`, `auto.commit.interval.ms`,
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms`,
    /// `max.poll.records`, `partition.assignment.strategy`, `isolation.level`,
    /// `fetch.min.bytes`, `fetch.max.wait.ms`, `fetch.max.bytes`,
    /// `max.partition.fetch.bytes`, `check.crcs`, `allow.auto.create.topics`,
    /// `default.api.timeout.ms`, and kafkit's `kafkit.prefetch.max.bytes`.
    /// Any other key (including Java-only ones such as `key.deserializer`) is
    /// [`ConfigError::UnknownKey`]; a bad value is [`ConfigError::InvalidValue`].
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut builder = ConsumerConfigBuilder::new();
        for (key, value) in properties {
            builder = builder.set(key.as_ref(), value.as_ref())?;
        }
        builder.build()
    }

    /// Every setting as a Java property, in a stable order (effective values). Reading them
    /// back with [`from_properties`](Self::from_properties) gives an equal configuration.
    ///
    /// ```
    /// use kafkit::config::ConsumerConfig;
    ///
    /// let config = ConsumerConfig::from_properties([("bootstrap.servers", "b:9092")])?;
    /// let props = config.to_properties();
    /// assert!(props.contains(&("max.poll.records", "500".to_owned())));
    /// assert_eq!(ConsumerConfig::from_properties(props)?, config);
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn to_properties(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| millis(d).to_string();
        let mut out = Vec::with_capacity(40);
        self.client.append_properties(&mut out);
        if let Some(v) = &self.group_id {
            out.push((GROUP_ID, v.clone()));
        }
        if let Some(v) = &self.group_instance_id {
            out.push((GROUP_INSTANCE_ID, v.clone()));
        }
        out.push((GROUP_PROTOCOL, self.group_protocol.as_str().to_owned()));
        if let Some(v) = &self.group_remote_assignor {
            out.push((GROUP_REMOTE_ASSIGNOR, v.clone()));
        }
        if let Some(v) = &self.client_rack {
            out.push((CLIENT_RACK, v.clone()));
        }
        out.push((
            AUTO_OFFSET_RESET,
            self.auto_offset_reset.as_str().to_owned(),
        ));
        out.push((ENABLE_AUTO_COMMIT, self.enable_auto_commit.to_string()));
        out.push((AUTO_COMMIT_INTERVAL_MS, ms(self.auto_commit_interval)));
        if self.group_protocol == GroupProtocol::Classic {
            out.push((SESSION_TIMEOUT_MS, ms(self.session_timeout)));
            out.push((HEARTBEAT_INTERVAL_MS, ms(self.heartbeat_interval)));
            let names: Vec<&str> = self
                .partition_assignment_strategy
                .iter()
                .map(|a| a.class_name())
                .collect();
            out.push((PARTITION_ASSIGNMENT_STRATEGY, names.join(",")));
        }
        out.push((MAX_POLL_INTERVAL_MS, ms(self.max_poll_interval)));
        out.push((MAX_POLL_RECORDS, self.max_poll_records.to_string()));
        out.push((ISOLATION_LEVEL, self.isolation_level.as_str().to_owned()));
        out.push((FETCH_MIN_BYTES, self.fetch_min_bytes.to_string()));
        out.push((FETCH_MAX_WAIT_MS, ms(self.fetch_max_wait)));
        out.push((FETCH_MAX_BYTES, self.fetch_max_bytes.to_string()));
        out.push((
            MAX_PARTITION_FETCH_BYTES,
            self.max_partition_fetch_bytes.to_string(),
        ));
        out.push((CHECK_CRCS, self.check_crcs.to_string()));
        out.push((PREFETCH_MAX_BYTES, self.prefetch_max_bytes.to_string()));
        out.push((
            ALLOW_AUTO_CREATE_TOPICS,
            self.allow_auto_create_topics.to_string(),
        ));
        out.push((DEFAULT_API_TIMEOUT_MS, ms(self.default_api_timeout)));
        out
    }

    /// The settings shared with other clients.
    pub fn client(&self) -> &ClientConfig {
        &self.client
    }

    /// `group.id`: the consumer group, if any (none: only manual assignment).
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// `group.instance.id`: static membership (KIP-345), if set.
    pub fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }

    /// `group.protocol`.
    pub fn group_protocol(&self) -> GroupProtocol {
        self.group_protocol
    }

    /// `group.remote.assignor`: the broker-side assignor (`group.protocol=consumer` only).
    pub fn group_remote_assignor(&self) -> Option<&str> {
        self.group_remote_assignor.as_deref()
    }

    /// `client.rack`, if set: sent as every Fetch's `rack_id` (KIP-392 follower fetching) and
    /// in the group join. See [`ConsumerConfigBuilder::client_rack`].
    pub fn client_rack(&self) -> Option<&str> {
        self.client_rack.as_deref()
    }

    /// `auto.offset.reset`.
    pub fn auto_offset_reset(&self) -> AutoOffsetReset {
        self.auto_offset_reset
    }

    /// `enable.auto.commit` (kafkit default `false`, unlike Java).
    pub fn enable_auto_commit(&self) -> bool {
        self.enable_auto_commit
    }

    /// `auto.commit.interval.ms`.
    pub fn auto_commit_interval(&self) -> Duration {
        self.auto_commit_interval
    }

    /// `session.timeout.ms` (classic protocol).
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// `heartbeat.interval.ms` (classic protocol).
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// `max.poll.interval.ms`: the longest gap between polls before the member leaves.
    pub fn max_poll_interval(&self) -> Duration {
        self.max_poll_interval
    }

    /// `max.poll.records`: the most records one `poll` returns.
    pub fn max_poll_records(&self) -> usize {
        self.max_poll_records
    }

    /// `partition.assignment.strategy`, in preference order (classic protocol).
    pub fn partition_assignment_strategy(&self) -> &[AssignorName] {
        &self.partition_assignment_strategy
    }

    /// `isolation.level`.
    pub fn isolation_level(&self) -> IsolationLevel {
        self.isolation_level
    }

    /// `fetch.min.bytes`: the broker waits for this many bytes (or `fetch.max.wait.ms`).
    pub fn fetch_min_bytes(&self) -> usize {
        self.fetch_min_bytes
    }

    /// `fetch.max.wait.ms`: the longest the broker holds a fetch for `fetch.min.bytes`.
    pub fn fetch_max_wait(&self) -> Duration {
        self.fetch_max_wait
    }

    /// `fetch.max.bytes`: the most bytes one Fetch response should carry.
    pub fn fetch_max_bytes(&self) -> usize {
        self.fetch_max_bytes
    }

    /// `max.partition.fetch.bytes`: the most bytes per partition in one Fetch response.
    pub fn max_partition_fetch_bytes(&self) -> usize {
        self.max_partition_fetch_bytes
    }

    /// `check.crcs`: whether each fetched batch's CRC32C (CRC32 for magic 0/1 messages) is
    /// verified before it is parsed (default `true`; a mismatch is
    /// [`ConsumeError::Corrupt`](crate::consumer::ConsumeError::Corrupt)). `false` skips the
    /// checksum, a CPU saving as in Java's consumer: a batch corrupted in transit or on disk
    /// then decodes as whatever its bytes hold (different keys, values or headers), or fails
    /// later in parsing with its own typed error. Parsing stays bounded either way.
    ///
    /// ```
    /// use kafkit::ConsumerConfig;
    /// let config = ConsumerConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("check.crcs", "false"),
    /// ])?;
    /// assert!(!config.check_crcs());
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn check_crcs(&self) -> bool {
        self.check_crcs
    }

    /// `kafkit.prefetch.max.bytes` (kafkit only): the most fetched record bytes buffered
    /// before the application takes them; no new Fetch is sent while the buffer holds this
    /// much. Default 64 MiB.
    pub fn prefetch_max_bytes(&self) -> usize {
        self.prefetch_max_bytes
    }

    /// `allow.auto.create.topics`: whether the consumer's metadata requests ask the broker to
    /// create a missing subscribed or assigned topic (the broker does only when its
    /// `auto.create.topics.enable` is true). Default `true`, as in Java.
    pub fn allow_auto_create_topics(&self) -> bool {
        self.allow_auto_create_topics
    }

    /// `default.api.timeout.ms`: here, how long `Consumer::new` keeps trying to reach a
    /// bootstrap broker that is not up yet. Default 60 s.
    pub fn default_api_timeout(&self) -> Duration {
        self.default_api_timeout
    }
}

/// Builds a [`ConsumerConfig`]; every setter names the Java property it mirrors and its
/// default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerConfigBuilder {
    common: CommonSettings,
    group_id: Option<String>,
    group_instance_id: Option<String>,
    group_protocol: Option<GroupProtocol>,
    group_remote_assignor: Option<String>,
    client_rack: Option<String>,
    auto_offset_reset: Option<AutoOffsetReset>,
    enable_auto_commit: Option<bool>,
    auto_commit_interval: Option<Duration>,
    session_timeout: Option<Duration>,
    heartbeat_interval: Option<Duration>,
    max_poll_interval: Option<Duration>,
    max_poll_records: Option<usize>,
    partition_assignment_strategy: Option<Vec<AssignorName>>,
    isolation_level: Option<IsolationLevel>,
    fetch_min_bytes: Option<usize>,
    fetch_max_wait: Option<Duration>,
    fetch_max_bytes: Option<usize>,
    max_partition_fetch_bytes: Option<usize>,
    check_crcs: Option<bool>,
    prefetch_max_bytes: Option<usize>,
    allow_auto_create_topics: Option<bool>,
    default_api_timeout: Option<Duration>,
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn parse_size(key: &'static str, value: &str, min: i64) -> Result<usize, ConfigError> {
    let n = parse_int(key, value, min, INT_MAX)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

fn check_size(key: &'static str, n: usize, min: i64, max: i64) -> Result<usize, ConfigError> {
    check_range(key, i64::try_from(n).unwrap_or(i64::MAX), min, max).map(|_| n)
}

impl ConsumerConfigBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one setting by its Java property name and string value.
    ///
    /// ```
    /// use kafkit::config::{AssignorName, ConsumerConfigBuilder};
    ///
    /// let config = ConsumerConfigBuilder::new()
    ///     .set("bootstrap.servers", "localhost:9092")?
    ///     .set("partition.assignment.strategy",
    ///          "org.apache.kafka.clients.consumer.RoundRobinAssignor, cooperative-sticky")?
    ///     .build()?;
    /// assert_eq!(config.partition_assignment_strategy(),
    ///            [AssignorName::RoundRobin, AssignorName::CooperativeSticky]);
    /// assert!(ConsumerConfigBuilder::new().set("key.deserializer", "x").is_err());
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn set(mut self, key: &str, value: &str) -> Result<Self, ConfigError> {
        if self.common.set(key, value)? {
            return Ok(self);
        }
        match key {
            GROUP_ID => self.group_id = non_empty(value),
            GROUP_INSTANCE_ID => self.group_instance_id = non_empty(value),
            GROUP_PROTOCOL => self.group_protocol = Some(value.parse()?),
            GROUP_REMOTE_ASSIGNOR => self.group_remote_assignor = non_empty(value),
            CLIENT_RACK => self.client_rack = non_empty(value),
            AUTO_OFFSET_RESET => self.auto_offset_reset = Some(value.parse()?),
            ENABLE_AUTO_COMMIT => {
                self.enable_auto_commit = Some(parse_bool(ENABLE_AUTO_COMMIT, value)?)
            }
            AUTO_COMMIT_INTERVAL_MS => {
                self.auto_commit_interval =
                    Some(parse_ms(AUTO_COMMIT_INTERVAL_MS, value, 0, INT_MAX)?)
            }
            SESSION_TIMEOUT_MS => {
                self.session_timeout = Some(parse_ms(SESSION_TIMEOUT_MS, value, 0, INT_MAX)?)
            }
            HEARTBEAT_INTERVAL_MS => {
                self.heartbeat_interval = Some(parse_ms(HEARTBEAT_INTERVAL_MS, value, 0, INT_MAX)?)
            }
            MAX_POLL_INTERVAL_MS => {
                self.max_poll_interval = Some(parse_ms(MAX_POLL_INTERVAL_MS, value, 1, INT_MAX)?)
            }
            MAX_POLL_RECORDS => {
                self.max_poll_records = Some(parse_size(MAX_POLL_RECORDS, value, 1)?)
            }
            PARTITION_ASSIGNMENT_STRATEGY => {
                let mut names = Vec::new();
                for entry in parse_list(value) {
                    let name = AssignorName::parse(&entry).ok_or_else(|| {
                        ConfigError::invalid(
                            PARTITION_ASSIGNMENT_STRATEGY,
                            value,
                            format!(
                                "unknown assignor `{entry}`: kafkit has range, roundrobin \
                                 and cooperative-sticky"
                            ),
                        )
                    })?;
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                if names.is_empty() {
                    return Err(ConfigError::invalid(
                        PARTITION_ASSIGNMENT_STRATEGY,
                        value,
                        "at least one assignor is required",
                    ));
                }
                self.partition_assignment_strategy = Some(names);
            }
            ISOLATION_LEVEL => self.isolation_level = Some(value.parse()?),
            FETCH_MIN_BYTES => self.fetch_min_bytes = Some(parse_size(FETCH_MIN_BYTES, value, 0)?),
            FETCH_MAX_WAIT_MS => {
                self.fetch_max_wait = Some(parse_ms(FETCH_MAX_WAIT_MS, value, 0, INT_MAX)?)
            }
            FETCH_MAX_BYTES => self.fetch_max_bytes = Some(parse_size(FETCH_MAX_BYTES, value, 0)?),
            MAX_PARTITION_FETCH_BYTES => {
                self.max_partition_fetch_bytes =
                    Some(parse_size(MAX_PARTITION_FETCH_BYTES, value, 0)?)
            }
            CHECK_CRCS => self.check_crcs = Some(parse_bool(CHECK_CRCS, value)?),
            PREFETCH_MAX_BYTES => {
                self.prefetch_max_bytes = Some(parse_size(PREFETCH_MAX_BYTES, value, 1)?)
            }
            ALLOW_AUTO_CREATE_TOPICS => {
                self.allow_auto_create_topics = Some(parse_bool(ALLOW_AUTO_CREATE_TOPICS, value)?)
            }
            DEFAULT_API_TIMEOUT_MS => {
                self.default_api_timeout =
                    Some(parse_ms(DEFAULT_API_TIMEOUT_MS, value, 0, INT_MAX)?)
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

    /// `bootstrap.servers`: `host:port` of one or more brokers. Required; no default.
    pub fn bootstrap_servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.common.bootstrap_servers = Some(servers.into_iter().map(Into::into).collect());
        self
    }

    /// `client.id`. Default: unset.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.common.client_id = Some(client_id.into());
        self
    }

    /// `request.timeout.ms`. Default: 30 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.common.request_timeout = Some(timeout);
        self
    }

    /// `retry.backoff.ms`. Default: 100 ms.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.common.retry_backoff = Some(backoff);
        self
    }

    /// `security.protocol`, `sasl.*`, `ssl.*`. Default: PLAINTEXT.
    pub fn security(mut self, security: super::SecurityConfig) -> Self {
        self.common.security = security;
        self
    }

    /// `group.id`. Default: unset (manual assignment only).
    pub fn group_id(mut self, id: impl Into<String>) -> Self {
        self.group_id = Some(id.into());
        self
    }

    /// `group.instance.id`: static membership. Default: unset.
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// `group.protocol`. Default: [`GroupProtocol::Classic`].
    pub fn group_protocol(mut self, protocol: GroupProtocol) -> Self {
        self.group_protocol = Some(protocol);
        self
    }

    /// `group.remote.assignor` (`group.protocol=consumer` only). Default: unset (the
    /// broker's default assignor).
    pub fn group_remote_assignor(mut self, name: impl Into<String>) -> Self {
        self.group_remote_assignor = Some(name.into());
        self
    }

    /// `client.rack`: the rack (or availability zone) the consumer runs in. Default: unset.
    ///
    /// Every Fetch carries it as `rack_id` (Fetch v11+, KIP-392). When the brokers set
    /// `replica.selector.class` (e.g. `org.apache.kafka.common.replica.RackAwareReplicaSelector`
    /// with a `broker.rack` each), a partition's leader answers with a
    /// `preferred_read_replica`, and the consumer fetches that partition from that replica —
    /// a follower in the same rack — until the preference expires (`metadata.max.age.ms`
    /// after the leader named it), that replica drops out of the metadata, a fetch to it fails,
    /// or it answers with an error for the partition (`NOT_LEADER_OR_FOLLOWER`,
    /// `OFFSET_OUT_OF_RANGE`, …): then the leader again, as the Java client does. Without
    /// it (or without a selector on the brokers) every fetch goes to the leader. It is also
    /// sent in the group join (`rack` of the classic subscription, `rack_id` of KIP-848).
    ///
    /// ```
    /// use kafkit::config::ConsumerConfig;
    ///
    /// let config = ConsumerConfig::builder()
    ///     .bootstrap_servers(["127.0.0.1:9092"])
    ///     .client_rack("eu-west-1a")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.client_rack(), Some("eu-west-1a"));
    /// ```
    pub fn client_rack(mut self, rack: impl Into<String>) -> Self {
        self.client_rack = Some(rack.into());
        self
    }

    /// `auto.offset.reset`. Default: [`AutoOffsetReset::Latest`].
    pub fn auto_offset_reset(mut self, reset: AutoOffsetReset) -> Self {
        self.auto_offset_reset = Some(reset);
        self
    }

    /// `enable.auto.commit`. Default: `false` (Java: `true` with a group.id).
    pub fn enable_auto_commit(mut self, enable: bool) -> Self {
        self.enable_auto_commit = Some(enable);
        self
    }

    /// `auto.commit.interval.ms`. Default: 5 s.
    pub fn auto_commit_interval(mut self, interval: Duration) -> Self {
        self.auto_commit_interval = Some(interval);
        self
    }

    /// `session.timeout.ms` (classic). Default: 45 s.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = Some(timeout);
        self
    }

    /// `heartbeat.interval.ms` (classic). Default: 3 s.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// `max.poll.interval.ms`. Default: 5 min.
    pub fn max_poll_interval(mut self, interval: Duration) -> Self {
        self.max_poll_interval = Some(interval);
        self
    }

    /// `max.poll.records`. Default: 500.
    pub fn max_poll_records(mut self, n: usize) -> Self {
        self.max_poll_records = Some(n);
        self
    }

    /// `partition.assignment.strategy` (classic). Default: range, cooperative-sticky.
    pub fn partition_assignment_strategy(mut self, assignors: Vec<AssignorName>) -> Self {
        self.partition_assignment_strategy = Some(assignors);
        self
    }

    /// `isolation.level`. Default: [`IsolationLevel::ReadUncommitted`].
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = Some(level);
        self
    }

    /// `fetch.min.bytes`. Default: 1.
    pub fn fetch_min_bytes(mut self, bytes: usize) -> Self {
        self.fetch_min_bytes = Some(bytes);
        self
    }

    /// `fetch.max.wait.ms`. Default: 500 ms.
    pub fn fetch_max_wait(mut self, wait: Duration) -> Self {
        self.fetch_max_wait = Some(wait);
        self
    }

    /// `fetch.max.bytes`. Default: 50 MiB.
    pub fn fetch_max_bytes(mut self, bytes: usize) -> Self {
        self.fetch_max_bytes = Some(bytes);
        self
    }

    /// `max.partition.fetch.bytes`. Default: 1 MiB.
    pub fn max_partition_fetch_bytes(mut self, bytes: usize) -> Self {
        self.max_partition_fetch_bytes = Some(bytes);
        self
    }

    /// `check.crcs`: verify each fetched batch's CRC before parsing it. Default: `true`;
    /// `false` skips the checksum (see [`ConsumerConfig::check_crcs`]).
    pub fn check_crcs(mut self, check: bool) -> Self {
        self.check_crcs = Some(check);
        self
    }

    /// `kafkit.prefetch.max.bytes`: bound on buffered fetched bytes. Default: 64 MiB.
    pub fn prefetch_max_bytes(mut self, bytes: usize) -> Self {
        self.prefetch_max_bytes = Some(bytes);
        self
    }

    /// `allow.auto.create.topics`: ask the broker to create missing topics. Default: `true`.
    pub fn allow_auto_create_topics(mut self, allow: bool) -> Self {
        self.allow_auto_create_topics = Some(allow);
        self
    }

    /// `default.api.timeout.ms`: how long `Consumer::new` retries an unreachable bootstrap
    /// broker. Default: 60 s.
    pub fn default_api_timeout(mut self, timeout: Duration) -> Self {
        self.default_api_timeout = Some(timeout);
        self
    }

    /// Applies defaults and validates, with the Java client's cross-field rules:
    ///
    /// - `enable.auto.commit=true` needs a `group.id` ([`ConfigError::Conflict`]);
    ///   `group.instance.id` needs one too;
    /// - with `group.protocol=consumer`, an explicit `session.timeout.ms`,
    ///   `heartbeat.interval.ms` or `partition.assignment.strategy` is a conflict (the broker
    ///   owns them); with `classic`, so is `group.remote.assignor`;
    /// - `heartbeat.interval.ms` must be below `session.timeout.ms`;
    /// - integer settings keep the Java ranges (`max.poll.records` ≥ 1, sizes ≤ `i32::MAX`).
    pub fn build(&self) -> Result<ConsumerConfig, ConfigError> {
        let client = self.common.build(&CONSUMER_DEFAULTS)?;
        let group_protocol = self.group_protocol.unwrap_or_default();
        let enable_auto_commit = self.enable_auto_commit.unwrap_or(false);
        if self.group_id.is_none() {
            if enable_auto_commit {
                return Err(ConfigError::conflict(
                    ENABLE_AUTO_COMMIT,
                    "true",
                    "enable.auto.commit=true needs a group.id",
                ));
            }
            if let Some(id) = &self.group_instance_id {
                return Err(ConfigError::conflict(
                    GROUP_INSTANCE_ID,
                    id.clone(),
                    "group.instance.id needs a group.id",
                ));
            }
        }
        match group_protocol {
            GroupProtocol::Consumer => {
                let broker_owned = [
                    (
                        SESSION_TIMEOUT_MS,
                        self.session_timeout.map(|d| millis(d).to_string()),
                    ),
                    (
                        HEARTBEAT_INTERVAL_MS,
                        self.heartbeat_interval.map(|d| millis(d).to_string()),
                    ),
                    (
                        PARTITION_ASSIGNMENT_STRATEGY,
                        self.partition_assignment_strategy
                            .as_ref()
                            .map(|v| v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",")),
                    ),
                ];
                for (key, value) in broker_owned {
                    if let Some(value) = value {
                        return Err(ConfigError::conflict(
                            key,
                            value,
                            "not supported with group.protocol=consumer (the broker decides it)",
                        ));
                    }
                }
            }
            GroupProtocol::Classic => {
                if let Some(name) = &self.group_remote_assignor {
                    return Err(ConfigError::conflict(
                        GROUP_REMOTE_ASSIGNOR,
                        name.clone(),
                        "only used with group.protocol=consumer",
                    ));
                }
            }
        }
        let session_timeout = check_ms(
            SESSION_TIMEOUT_MS,
            self.session_timeout.unwrap_or(DEFAULT_SESSION_TIMEOUT),
            0,
            INT_MAX,
        )?;
        let heartbeat_interval = check_ms(
            HEARTBEAT_INTERVAL_MS,
            self.heartbeat_interval
                .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL),
            0,
            INT_MAX,
        )?;
        if group_protocol == GroupProtocol::Classic && heartbeat_interval >= session_timeout {
            return Err(ConfigError::conflict(
                HEARTBEAT_INTERVAL_MS,
                millis(heartbeat_interval).to_string(),
                format!(
                    "must be below session.timeout.ms ({} ms)",
                    millis(session_timeout)
                ),
            ));
        }
        let assignors = self
            .partition_assignment_strategy
            .clone()
            .unwrap_or_else(|| DEFAULT_ASSIGNORS.to_vec());
        if assignors.is_empty() {
            return Err(ConfigError::invalid(
                PARTITION_ASSIGNMENT_STRATEGY,
                "",
                "at least one assignor is required",
            ));
        }
        let int = INT_MAX;
        Ok(ConsumerConfig {
            client,
            group_id: self.group_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            group_protocol,
            group_remote_assignor: self.group_remote_assignor.clone(),
            client_rack: self.client_rack.clone(),
            auto_offset_reset: self.auto_offset_reset.unwrap_or_default(),
            enable_auto_commit,
            auto_commit_interval: check_ms(
                AUTO_COMMIT_INTERVAL_MS,
                self.auto_commit_interval
                    .unwrap_or(DEFAULT_AUTO_COMMIT_INTERVAL),
                0,
                int,
            )?,
            session_timeout,
            heartbeat_interval,
            max_poll_interval: check_ms(
                MAX_POLL_INTERVAL_MS,
                self.max_poll_interval.unwrap_or(DEFAULT_MAX_POLL_INTERVAL),
                1,
                int,
            )?,
            max_poll_records: check_size(
                MAX_POLL_RECORDS,
                self.max_poll_records.unwrap_or(DEFAULT_MAX_POLL_RECORDS),
                1,
                int,
            )?,
            partition_assignment_strategy: assignors,
            isolation_level: self.isolation_level.unwrap_or_default(),
            fetch_min_bytes: check_size(
                FETCH_MIN_BYTES,
                self.fetch_min_bytes.unwrap_or(1),
                0,
                int,
            )?,
            fetch_max_wait: check_ms(
                FETCH_MAX_WAIT_MS,
                self.fetch_max_wait.unwrap_or(DEFAULT_FETCH_MAX_WAIT),
                0,
                int,
            )?,
            fetch_max_bytes: check_size(
                FETCH_MAX_BYTES,
                self.fetch_max_bytes.unwrap_or(DEFAULT_FETCH_MAX_BYTES),
                0,
                int,
            )?,
            max_partition_fetch_bytes: check_size(
                MAX_PARTITION_FETCH_BYTES,
                self.max_partition_fetch_bytes
                    .unwrap_or(DEFAULT_MAX_PARTITION_FETCH_BYTES),
                0,
                int,
            )?,
            check_crcs: self.check_crcs.unwrap_or(true),
            prefetch_max_bytes: check_size(
                PREFETCH_MAX_BYTES,
                self.prefetch_max_bytes
                    .unwrap_or(DEFAULT_PREFETCH_MAX_BYTES),
                1,
                int,
            )?,
            allow_auto_create_topics: self.allow_auto_create_topics.unwrap_or(true),
            default_api_timeout: check_ms(
                DEFAULT_API_TIMEOUT_MS,
                self.default_api_timeout.unwrap_or(DEFAULT_API_TIMEOUT),
                0,
                int,
            )?,
        })
    }
}

#[cfg(test)]
mod tests;
