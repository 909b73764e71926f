//! The set of broker connections a client keeps, and the metadata that says which broker is
//! which.
//!
//! [`Cluster`] opens one [`Connection`] per broker and [`ConnectionPurpose`] on demand (the
//! first from the bootstrap list), replaces a connection that has closed the next time it is
//! asked for, and refreshes [`ClusterMetadata`] from any live broker.
//!
//! The decisions are plain state ([`Reconnects`], [`IdlePolicy`]); this module only applies
//! them:
//!
//! - a broker whose last connection attempt failed is not tried again before its reconnect
//!   backoff passes: asking for it fails at once with [`Error::Backoff`] (retriable), so a dead
//!   broker is never hammered; each attempt's setup timeout grows the same way;
//! - a sweep task closes connections idle for `connections.max.idle.ms` (nothing outstanding);
//!   the next request reconnects;
//! - [`Cluster::shutdown`] lets outstanding requests finish before closing;
//! - group coordinator traffic has connections of its own
//!   ([`Cluster::coordinator_connection`]), so it never waits behind a Fetch long-poll;
//!   "any broker" requests take the least loaded open connection ([`least_loaded`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{watch, Mutex as AsyncMutex};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use super::connection::{Connection, ConnectionConfig};
use super::dns::Resolver;
use super::tls::TlsConnector;
use crate::config::{ClientConfig, MetadataRecoveryStrategy};
use crate::error::{Error, Result};
use crate::state::backoff::ExponentialBackoff;
use crate::state::connections::{least_loaded, Candidate, ConnectionKey, ConnectionPurpose};
use crate::state::dns::{BootstrapResolution, ResolveStep};
use crate::state::metadata::ClusterMetadata;
use crate::state::rebootstrap::{MetadataRecovery, Rebootstrap};
use crate::state::reconnect::{IdlePolicy, ReconnectPolicy, Reconnects};
use crate::state::rng::XorShift64Star;

/// Settings shared by every connection of a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `bootstrap.servers`: where to find the cluster first (`host:port` entries).
    pub bootstrap: Vec<String>,
    /// Settings of each broker connection.
    pub connection: ConnectionConfig,
    /// `request.timeout.ms`: how long one request may wait for its response. Default 30 s.
    pub request_timeout: Duration,
    /// `retry.backoff.ms`: the first wait before an admin call or a coordinator request is
    /// tried again, doubled per further failure (±20% jitter). Default 100 ms.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the cap of that wait. Default 1 s.
    pub retry_backoff_max: Duration,
    /// `reconnect.backoff.ms`: the wait after a first failed connection attempt to a broker,
    /// doubled per further failure (±20% jitter). Default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the cap of that wait. Default 1 s.
    pub reconnect_backoff_max: Duration,
    /// `socket.connection.setup.timeout.max.ms`: the cap of the connection setup timeout,
    /// which starts at [`ConnectionConfig::connect_timeout`] and doubles per consecutive
    /// failed attempt (±20% jitter). Default 30 s.
    pub connect_timeout_max: Duration,
    /// `connections.max.idle.ms`: connections with nothing outstanding unused this long are
    /// closed; `None` keeps them open. Default 9 minutes.
    pub connections_max_idle: Option<Duration>,
    /// Whether metadata requests for named topics ask the broker to create missing ones
    /// (it does when its `auto.create.topics.enable` is true, Kafka's default). The producer
    /// asks (as Java's does), the consumer by `allow.auto.create.topics`, the admin client
    /// never. Default `false`.
    pub allow_auto_topic_creation: bool,
    /// How long [`Cluster::connect`] keeps trying to reach a bootstrap broker (with the
    /// reconnect backoff between attempts) before it fails with the last attempt's error:
    /// a service may start before its brokers. The producer uses `max.block.ms`, the
    /// consumer and the admin client `default.api.timeout.ms`. A bootstrap list none of whose
    /// host names resolves is looked up again for [`ClusterConfig::bootstrap_resolve_timeout`]
    /// (also bounded by this). Default 60 s (Java's `default.api.timeout.ms`).
    pub bootstrap_timeout: Duration,
    /// `bootstrap.resolve.timeout.ms` (KIP-909): how long a bootstrap list none of whose host
    /// names resolves is looked up again (with the reconnect backoff) before
    /// [`Cluster::connect`] fails with [`Error::BootstrapUnresolvable`]. Default 0, Java's:
    /// fail at once.
    pub bootstrap_resolve_timeout: Duration,
    /// `metadata.recovery.strategy` (KIP-899): with `rebootstrap` (the default), connecting
    /// to "any broker" tries the bootstrap list after the known brokers, and goes back to it
    /// alone after [`ClusterConfig::metadata_recovery_rebootstrap_trigger`] without metadata
    /// or when a broker answers `REBOOTSTRAP_REQUIRED`; with `none`, the bootstrap list is not
    /// used once brokers are known. See [`MetadataRecovery`].
    pub metadata_recovery_strategy: MetadataRecoveryStrategy,
    /// `metadata.recovery.rebootstrap.trigger.ms` (KIP-1102): how long metadata refreshes may
    /// fail before the `rebootstrap` strategy drops every connection and asks the bootstrap
    /// list. Default 300 s.
    pub metadata_recovery_rebootstrap_trigger: Duration,
}

impl ClusterConfig {
    /// Settings with the given bootstrap list (comma-separated, as `bootstrap.servers` takes
    /// it) and defaults for the rest.
    ///
    /// ```
    /// use kafkit::io::cluster::ClusterConfig;
    ///
    /// let config = ClusterConfig::new("127.0.0.1:9092, 127.0.0.1:9093");
    /// assert_eq!(config.bootstrap, ["127.0.0.1:9092", "127.0.0.1:9093"]);
    /// ```
    pub fn new(bootstrap_servers: &str) -> ClusterConfig {
        ClusterConfig {
            bootstrap: bootstrap_servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            connection: ConnectionConfig::default(),
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            connect_timeout_max: Duration::from_secs(30),
            connections_max_idle: Some(Duration::from_secs(9 * 60)),
            allow_auto_topic_creation: false,
            bootstrap_timeout: Duration::from_secs(60),
            bootstrap_resolve_timeout: Duration::ZERO,
            metadata_recovery_strategy: MetadataRecoveryStrategy::Rebootstrap,
            metadata_recovery_rebootstrap_trigger: Duration::from_secs(300),
        }
    }

    /// Settings from a client's shared configuration: bootstrap list, `client.id` (`"kafkit"`
    /// when unset), `request.timeout.ms`, the retry backoff, the reconnect backoff, the
    /// connection setup timeout and `connections.max.idle.ms`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kafkit::config::ProducerConfig;
    /// use kafkit::io::cluster::ClusterConfig;
    ///
    /// let producer = ProducerConfig::builder()
    ///     .set("bootstrap.servers", "127.0.0.1:9092")?
    ///     .set("reconnect.backoff.ms", "20")?
    ///     .set("connections.max.idle.ms", "300")?
    ///     .build()?;
    /// let config = ClusterConfig::from_client_config(producer.client());
    /// assert_eq!(config.bootstrap, ["127.0.0.1:9092"]);
    /// assert_eq!(config.reconnect_backoff, Duration::from_millis(20));
    /// assert_eq!(config.connections_max_idle, Some(Duration::from_millis(300)));
    /// # Ok::<(), kafkit::config::ConfigError>(())
    /// ```
    pub fn from_client_config(client: &ClientConfig) -> ClusterConfig {
        let servers: Vec<String> = client
            .bootstrap_servers()
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut config = ClusterConfig::new(&servers.join(","));
        config.connection.client_id = Some(client.client_id().unwrap_or("kafkit").to_owned());
        config.connection.connect_timeout = client.socket_connection_setup_timeout();
        config.connect_timeout_max = client.socket_connection_setup_timeout_max();
        config.request_timeout = client.request_timeout();
        config.retry_backoff = client.retry_backoff();
        config.retry_backoff_max = client.retry_backoff_max();
        config.reconnect_backoff = client.reconnect_backoff();
        config.reconnect_backoff_max = client.reconnect_backoff_max();
        config.connections_max_idle = client.connections_max_idle();
        config.connection.security = client.security().clone();
        config.connection.send_buffer_bytes = client.send_buffer_bytes();
        config.connection.receive_buffer_bytes = client.receive_buffer_bytes();
        config.bootstrap_resolve_timeout = client.bootstrap_resolve_timeout();
        config.metadata_recovery_strategy = client.metadata_recovery_strategy();
        config.metadata_recovery_rebootstrap_trigger =
            client.metadata_recovery_rebootstrap_trigger();
        config
    }

    /// The reconnect backoff and setup timeout schedules these settings describe.
    pub fn reconnect_policy(&self) -> ReconnectPolicy {
        ReconnectPolicy {
            backoff: ExponentialBackoff::new(self.reconnect_backoff, self.reconnect_backoff_max),
            setup_timeout: ExponentialBackoff::new(
                self.connection.connect_timeout,
                self.connect_timeout_max,
            ),
        }
    }

    /// The idle rule these settings describe.
    pub fn idle_policy(&self) -> IdlePolicy {
        IdlePolicy::new(self.connections_max_idle)
    }
}

impl ClusterConfig {}

/// Connections to the brokers of one cluster, and what is known of it.
///
/// ```no_run
/// # async fn example() -> Result<(), kafkit::Error> {
/// use kafkit::io::cluster::{Cluster, ClusterConfig};
///
/// let cluster = Cluster::connect(ClusterConfig::new("127.0.0.1:9092")).await?;
/// cluster.refresh_metadata(Some(&["events"])).await?;
/// let leader = cluster.metadata().leader("events", 0).map(|b| b.node_id);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClusterConfig,
    bootstrap: Mutex<Option<Connection>>,
    /// Open connections by node id and purpose.
    connections: Mutex<HashMap<ConnectionKey, Connection>>,
    /// Serializes connecting to one node for one purpose (node id -1 for bootstrap) so that
    /// concurrent callers share one connection, while a slow node does not hold up the others.
    connecting: Mutex<HashMap<ConnectionKey, Arc<AsyncMutex<()>>>>,
    metadata: RwLock<ClusterMetadata>,
    /// Bumped after every change to `metadata` (see [`Cluster::metadata_generation`]).
    metadata_generation: AtomicU64,
    /// The TLS settings every connection of this client shares (made once, in
    /// [`Cluster::connect`]), when the protocol uses TLS.
    tls: Option<TlsConnector>,
    /// Reconnect backoff per broker address, with its random source for the jitter.
    reconnects: Mutex<(Reconnects<String>, XorShift64Star)>,
    /// Which addresses "any broker" connections try, and when to rebootstrap.
    recovery: Mutex<MetadataRecovery>,
    idle: IdlePolicy,
    /// `true` once closed or shut down: no new connections; stops the idle sweep.
    closed: watch::Sender<bool>,
    sweep: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Cluster {
    /// Connects to the first reachable bootstrap broker and fetches the cluster's brokers.
    ///
    /// A broker that is not up yet (connection refused, setup timed out, closed during the
    /// handshake) is tried again after the reconnect backoff until
    /// [`ClusterConfig::bootstrap_timeout`]; then this fails with the last attempt's error,
    /// which names the address. When no bootstrap host name resolves, the names are looked up
    /// again with the reconnect backoff until [`ClusterConfig::bootstrap_resolve_timeout`]
    /// (0 by default: at once) and then this fails with [`Error::BootstrapUnresolvable`]
    /// naming them; a name that resolves meanwhile is used. Fails at once on errors no retry
    /// mends (authentication, settings). The TLS settings are read here, once for every connection of the cluster
    /// (a CA or key file that cannot be read or decrypted fails with [`Error::Tls`] before any
    /// connection).
    pub async fn connect(config: ClusterConfig) -> Result<Cluster> {
        let reconnects = Reconnects::new(config.reconnect_policy());
        let idle = config.idle_policy();
        let tls = tls_connector(&config)?;
        let recovery = MetadataRecovery::new(
            config.metadata_recovery_strategy,
            config.metadata_recovery_rebootstrap_trigger,
        );
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                tls,
                bootstrap: Mutex::new(None),
                connections: Mutex::new(HashMap::new()),
                connecting: Mutex::new(HashMap::new()),
                metadata: RwLock::new(ClusterMetadata::default()),
                metadata_generation: AtomicU64::new(0),
                reconnects: Mutex::new((reconnects, XorShift64Star::from_entropy())),
                recovery: Mutex::new(recovery),
                idle,
                closed: watch::Sender::new(false),
                sweep: Mutex::new(None),
            }),
        };
        if let Some(period) = idle.sweep_interval() {
            let task = tokio::spawn(sweep(Arc::downgrade(&cluster.inner), period));
            *lock(&cluster.inner.sweep) = Some(task);
        }
        if let Err(err) = cluster.bootstrap().await {
            cluster.close();
            return Err(err);
        }
        Ok(cluster)
    }

    /// The first metadata request, retried until the bootstrap deadline.
    async fn bootstrap(&self) -> Result<()> {
        let started = Instant::now();
        let deadline = started + self.inner.config.bootstrap_timeout;
        let resolution =
            BootstrapResolution::new(started, self.inner.config.bootstrap_resolve_timeout);
        let mut last: Option<Error> = None;
        loop {
            let attempt =
                tokio::time::timeout_at(deadline.into(), self.refresh_metadata(Some(&[])));
            let err = match attempt.await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(err)) => err,
                Err(_) => break,
            };
            // Retriable: the broker may not be up yet.
            if !err.is_retriable() {
                return Err(err);
            }
            let mut wake = match &err {
                Error::Backoff { until, .. } => *until,
                _ => Instant::now() + self.inner.config.reconnect_backoff,
            };
            let mut err = err;
            if matches!(err, Error::Connect { .. } | Error::Backoff { .. }) {
                if let Some(unresolved) = unresolvable(
                    &self.inner.config.bootstrap,
                    &self.inner.config.connection.resolver,
                    resolution.elapsed(Instant::now()),
                )
                .await
                {
                    let now = Instant::now();
                    match resolution.on_unresolved(now, wake.saturating_duration_since(now)) {
                        ResolveStep::GiveUp => return Err(unresolved),
                        ResolveStep::RetryAt(at) => wake = at,
                    }
                    // The names, not a backoff, are what fails.
                    err = unresolved;
                }
            }
            debug!(error = %err, "bootstrap broker not reachable yet; retrying");
            // A real failure says more than "backing off".
            if !matches!(err, Error::Backoff { .. }) || last.is_none() {
                last = Some(err);
            }
            // No attempt is allowed before the deadline: fail when it passes, not earlier.
            tokio::time::sleep_until(wake.min(deadline).into()).await;
            if wake >= deadline {
                break;
            }
        }
        Err(last.unwrap_or_else(|| Error::ConnectTimeout {
            broker: self.inner.config.bootstrap.join(","),
            after: started.elapsed(),
        }))
    }

    /// The settings this cluster was made with.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// What is known of the cluster now.
    pub fn metadata(&self) -> RwLockReadGuard<'_, ClusterMetadata> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the metadata in place (leader hints, invalidations).
    pub fn update_metadata<T>(&self, change: impl FnOnce(&mut ClusterMetadata) -> T) -> T {
        let mut guard = self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = change(&mut guard);
        // After the change: a reader that saw the old generation reads again.
        self.inner
            .metadata_generation
            .fetch_add(1, Ordering::Release);
        out
    }

    /// A number that changes after every metadata change: something derived from
    /// [`Cluster::metadata`] while this read `g` (read before) is current while it still
    /// reads `g`.
    pub fn metadata_generation(&self) -> u64 {
        self.inner.metadata_generation.load(Ordering::Acquire)
    }

    fn connect_lock(&self, key: ConnectionKey) -> Arc<AsyncMutex<()>> {
        self.inner
            .connecting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<ConnectionKey, Connection>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_open(&self) -> Result<()> {
        if *self.inner.closed.borrow() {
            return Err(Error::ShutDown { broker: None });
        }
        Ok(())
    }

    /// A live connection to any broker: the open one with the fewest requests outstanding
    /// (so a metadata request does not queue behind a Fetch long-poll while another
    /// connection is idle), else a known broker or a bootstrap broker, skipping those backing
    /// off after failed attempts.
    ///
    /// Fails with [`Error::Backoff`] (retriable) when every candidate is backing off, with the
    /// last attempt's error when every attempt failed.
    ///
    /// Which addresses are tried follows `metadata.recovery.strategy` ([`MetadataRecovery`]):
    /// with `none` the bootstrap list is left out once brokers are known; after a rebootstrap
    /// only the bootstrap list is tried (and open connections to known brokers are not used)
    /// until a metadata refresh succeeds.
    pub async fn any_connection(&self) -> Result<Connection> {
        self.check_open()?;
        let bootstrap_only = lock_recovery(&self.inner).is_bootstrap_only();
        if !bootstrap_only {
            if let Some(conn) = self.least_loaded_open() {
                conn.touch();
                return Ok(conn);
            }
        }
        let lock = self.connect_lock((-1, ConnectionPurpose::Broker));
        let _guard = lock.lock().await;
        self.check_open()?;
        if let Some(conn) = lock_bootstrap(&self.inner)
            .as_ref()
            .filter(|c| !c.is_closed())
        {
            conn.touch();
            return Ok(conn.clone());
        }
        // Known brokers first (the bootstrap list may name a load balancer), then bootstrap,
        // as the metadata recovery strategy says.
        let known: Vec<String> = self.metadata().brokers().map(|b| b.address()).collect();
        let candidates =
            lock_recovery(&self.inner).candidates(&known, &self.inner.config.bootstrap);
        let mut last = None;
        for address in &candidates {
            match self.attempt(address).await {
                Ok(conn) => {
                    *lock_bootstrap(&self.inner) = Some(conn.clone());
                    return Ok(conn);
                }
                // Wrong credentials or settings fail the same way on every broker: stop here
                // rather than knock on each one.
                Err(err @ (Error::Authentication { .. } | Error::Config(_))) => return Err(err),
                Err(err) => {
                    debug!(broker = %address, error = %err, "bootstrap connection failed");
                    // A real failure says more than "backing off".
                    if !matches!(err, Error::Backoff { .. })
                        || last
                            .as_ref()
                            .is_none_or(|l| matches!(l, Error::Backoff { .. }))
                    {
                        last = Some(err);
                    }
                }
            }
        }
        Err(last.unwrap_or(Error::NoBrokers))
    }

    /// The open connection (node connections of every purpose, then the bootstrap one) with
    /// the fewest requests outstanding, if any is open.
    fn least_loaded_open(&self) -> Option<Connection> {
        let connections = self.connections();
        let bootstrap = lock_bootstrap(&self.inner);
        let open: Vec<&Connection> = connections
            .values()
            .chain(bootstrap.as_ref())
            .filter(|c| !c.is_closed())
            .collect();
        let chosen = least_loaded(open.iter().enumerate().map(|(i, c)| Candidate {
            key: i,
            in_flight: c.in_flight(),
        }))?;
        open.get(chosen).map(|c| (*c).clone())
    }

    /// A live connection to broker `node_id` for everything but group coordinator traffic,
    /// opened if needed; fails at once with [`Error::Backoff`] (retriable) while the broker is
    /// backing off after failed attempts.
    pub async fn connection(&self, node_id: i32) -> Result<Connection> {
        self.connection_for(node_id, ConnectionPurpose::Broker)
            .await
    }

    /// A live connection to broker `node_id` for group coordinator requests only (commits,
    /// offset fetches, heartbeats, joins, leaves): a socket of its own beside
    /// [`Cluster::connection`]'s, so these never wait behind a Fetch long-poll. Same reconnect
    /// backoff (per broker address) and idle close as every connection.
    ///
    /// A coordinator that has left the metadata (its broker crashed and was fenced) is
    /// COORDINATOR_NOT_AVAILABLE, retriable: the caller looks the coordinator up again, as
    /// Java marks it unknown. (Plain [`Error::UnknownBroker`] is not retriable, so a commit or a
    /// group member would otherwise fail for good while the group simply moved.)
    pub async fn coordinator_connection(&self, node_id: i32) -> Result<Connection> {
        self.connection_for(node_id, ConnectionPurpose::Coordinator)
            .await
            .map_err(coordinator_gone)
    }

    /// A live connection to broker `node_id` for `purpose`, opened if needed.
    pub async fn connection_for(
        &self,
        node_id: i32,
        purpose: ConnectionPurpose,
    ) -> Result<Connection> {
        let key = (node_id, purpose);
        self.check_open()?;
        if let Some(conn) = self.live(key) {
            return Ok(conn);
        }
        let lock = self.connect_lock(key);
        let _guard = lock.lock().await;
        self.check_open()?;
        if let Some(conn) = self.live(key) {
            return Ok(conn);
        }
        let address = self
            .metadata()
            .broker(node_id)
            .map(|b| b.address())
            .ok_or(Error::UnknownBroker { node_id })?;
        let conn = self.attempt(&address).await?;
        self.connections().insert(key, conn.clone());
        if *self.inner.closed.borrow() {
            // Closed while connecting: do not leave this one open.
            conn.close();
            return Err(Error::ShutDown { broker: None });
        }
        Ok(conn)
    }

    /// The open connection to broker `node_id` ([`Cluster::connection`]'s), if there is one
    /// now: never connects, never waits.
    pub(crate) fn live_connection(&self, node_id: i32) -> Option<Connection> {
        if self.check_open().is_err() {
            return None;
        }
        self.live((node_id, ConnectionPurpose::Broker))
    }

    /// The open connection `key` names, marked used, if there is one.
    fn live(&self, key: ConnectionKey) -> Option<Connection> {
        let connections = self.connections();
        let conn = connections.get(&key).filter(|c| !c.is_closed())?;
        conn.touch();
        Some(conn.clone())
    }

    /// One connection attempt to `address`, unless it is backing off; records the outcome.
    async fn attempt(&self, address: &str) -> Result<Connection> {
        let key = address.to_owned();
        let timeout = {
            let mut guard = lock(&self.inner.reconnects);
            let (reconnects, rng) = &mut *guard;
            if let Err(backing_off) = reconnects.check(&key, Instant::now()) {
                return Err(Error::Backoff {
                    broker: key,
                    until: backing_off.until,
                    failures: backing_off.failures,
                });
            }
            reconnects.setup_timeout(&key, rng)
        };
        let config = ConnectionConfig {
            connect_timeout: timeout,
            ..self.inner.config.connection.clone()
        };
        let result = Connection::connect_with(address, &config, self.inner.tls.as_ref()).await;
        let mut guard = lock(&self.inner.reconnects);
        let (reconnects, rng) = &mut *guard;
        match &result {
            Ok(_) => reconnects.succeeded(&key),
            Err(err) => {
                let until = reconnects.failed(key, Instant::now(), rng);
                debug!(broker = %address, error = %err, backoff = ?until.saturating_duration_since(Instant::now()), "connection attempt failed");
            }
        }
        result
    }

    /// Fetches metadata for `topics` (`None`: every topic; `Some(&[])`: brokers only) from any
    /// broker, and merges it into [`Cluster::metadata`]. Missing named topics are created by
    /// the broker only when [`ClusterConfig::allow_auto_topic_creation`] is set and the
    /// broker allows it.
    ///
    /// Metadata recovery (`metadata.recovery.strategy`, see [`MetadataRecovery`]): with
    /// `rebootstrap`, when refreshes have failed for
    /// [`ClusterConfig::metadata_recovery_rebootstrap_trigger`], every connection is closed
    /// and this one goes to the bootstrap list; when the broker answers
    /// `REBOOTSTRAP_REQUIRED` (error code 129), the same happens at once and the request is
    /// sent once more, through the bootstrap list. With `none`, code 129 fails the refresh.
    pub async fn refresh_metadata(&self, topics: Option<&[&str]>) -> Result<()> {
        let request = metadata_request(topics, self.inner.config.allow_auto_topic_creation);
        let knows_brokers = self.metadata().brokers().next().is_some();
        let due = lock_recovery(&self.inner).on_metadata_attempt(Instant::now(), knows_brokers);
        if let Some(reason) = due {
            self.rebootstrap(reason);
        }
        match self.fetch_metadata(&request).await {
            Err(err) if is_rebootstrap_required(&err) => {
                let required = lock_recovery(&self.inner).on_rebootstrap_required(Instant::now());
                match required {
                    Some(reason) => {
                        self.rebootstrap(reason);
                        self.fetch_metadata(&request).await
                    }
                    None => Err(err),
                }
            }
            other => other,
        }
    }

    /// Drops every connection, so that the next "any broker" connection goes to the
    /// bootstrap list ([`MetadataRecovery`] now says so); requests in flight fail with
    /// [`Error::ConnectionClosed`].
    fn rebootstrap(&self, reason: Rebootstrap) {
        let why = match reason {
            Rebootstrap::Timeout => "no metadata for metadata.recovery.rebootstrap.trigger.ms",
            _ => "a broker answered REBOOTSTRAP_REQUIRED",
        };
        info!(
            bootstrap = %self.inner.config.bootstrap.join(","),
            "rebootstrapping ({why}): closing every connection, connecting through \
             bootstrap.servers"
        );
        for conn in self.take_connections() {
            conn.close();
        }
    }

    /// One Metadata request on any connection, merged into [`Cluster::metadata`].
    async fn fetch_metadata(&self, request: &MetadataRequest) -> Result<()> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let response = conn
            .send(request, version, self.inner.config.request_timeout)
            .await?;
        Error::check(ApiKey::Metadata, response.error_code, None)?;
        let now = Instant::now();
        self.update_metadata(|m| m.update(&response, now));
        lock_recovery(&self.inner).on_metadata_success();
        Ok(())
    }

    /// Every connection open now (by node id, and the bootstrap one), taken out of the
    /// cluster.
    fn take_connections(&self) -> Vec<Connection> {
        let mut all: Vec<Connection> = self.connections().drain().map(|(_, c)| c).collect();
        all.extend(lock_bootstrap(&self.inner).take());
        all
    }

    /// Closes every connection at once (requests in flight fail with
    /// [`Error::ConnectionClosed`]) and stops the idle sweep. Later calls for a connection fail
    /// with [`Error::ShutDown`].
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
        for conn in self.take_connections() {
            conn.close();
        }
        if let Some(task) = lock(&self.inner.sweep).take() {
            task.abort();
        }
    }

    /// Shuts down gracefully: no new connections or requests (they fail with
    /// [`Error::ShutDown`]), outstanding requests may finish until `deadline`, then every
    /// connection closes; returns once their socket tasks and the idle sweep have ended.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), kafkit::Error> {
    /// use std::time::{Duration, Instant};
    /// use kafkit::io::cluster::{Cluster, ClusterConfig};
    ///
    /// let cluster = Cluster::connect(ClusterConfig::new("127.0.0.1:9092")).await?;
    /// // ... requests in flight from other tasks ...
    /// cluster.shutdown(Instant::now() + Duration::from_secs(10)).await;
    /// assert!(cluster.any_connection().await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(&self, deadline: Instant) {
        self.inner.closed.send_replace(true);
        let connections = self.take_connections();
        let mut tasks = tokio::task::JoinSet::new();
        for conn in connections {
            tasks.spawn(async move { conn.shutdown(deadline).await });
        }
        while tasks.join_next().await.is_some() {}
        let sweep = lock(&self.inner.sweep).take();
        if let Some(mut task) = sweep {
            // The sweep sees `closed` at once; bounded all the same.
            if tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Whether the idle sweep task is running (it is while the cluster is open and
    /// `connections.max.idle.ms` is set).
    pub fn is_sweeping(&self) -> bool {
        lock(&self.inner.sweep)
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Closes the connections that are idle at `now` (see [`IdlePolicy`]); returns how many.
    /// The idle sweep calls this periodically.
    pub fn close_idle(&self, now: Instant) -> usize {
        close_idle(&self.inner, now)
    }
}

/// Whether `err` is a broker's `REBOOTSTRAP_REQUIRED` (code 129: the Metadata response's
/// top-level error, or the ApiVersions answer of the handshake when that is the error the
/// connection attempts ended with).
fn is_rebootstrap_required(err: &Error) -> bool {
    matches!(
        err,
        Error::Broker {
            code: kafka_protocol::error::ResponseError::RebootstrapRequired,
            ..
        }
    )
}

/// [`Error::BootstrapUnresolvable`] naming every host when no bootstrap address resolves
/// (looked up for `after` so far); `None` when one does, or when one is an IP address.
async fn unresolvable(bootstrap: &[String], resolver: &Resolver, after: Duration) -> Option<Error> {
    let mut last = None;
    for address in bootstrap {
        match resolver.resolve(address).await {
            Ok(_) => return None,
            Err(err) => last = Some(err),
        }
    }
    last.map(|err| Error::BootstrapUnresolvable {
        hosts: bootstrap.to_vec(),
        after,
        source: Arc::new(err),
    })
}

/// The TLS settings of every connection, made once (files read, rustls configuration built)
/// when the protocol uses TLS; bad settings fail here, before any connection.
fn tls_connector(config: &ClusterConfig) -> Result<Option<TlsConnector>> {
    let security = &config.connection.security;
    if !security.protocol.uses_tls() {
        return Ok(None);
    }
    security.validate()?;
    #[cfg(feature = "tls-core")]
    {
        TlsConnector::new(&security.tls)
            .map(Some)
            .map_err(|message| Error::Tls {
                broker: config.bootstrap.join(","),
                message,
            })
    }
    #[cfg(not(feature = "tls-core"))]
    {
        Ok(None)
    }
}

fn lock_recovery(inner: &Inner) -> MutexGuard<'_, MetadataRecovery> {
    lock(&inner.recovery)
}

fn lock_bootstrap(inner: &Inner) -> MutexGuard<'_, Option<Connection>> {
    lock(&inner.bootstrap)
}

fn close_idle(inner: &Inner, now: Instant) -> usize {
    let mut closed = 0;
    {
        let mut connections = lock(&inner.connections);
        connections.retain(|(node_id, purpose), conn| {
            if conn.close_if_idle(&inner.idle, now) {
                debug!(
                    node_id,
                    ?purpose,
                    broker = conn.broker(),
                    "closed idle connection"
                );
                closed += 1;
                false
            } else {
                !conn.is_closed()
            }
        });
    }
    let mut bootstrap = lock_bootstrap(inner);
    if let Some(conn) = bootstrap.as_ref() {
        if conn.close_if_idle(&inner.idle, now) {
            closed += 1;
            *bootstrap = None;
        } else if conn.is_closed() {
            *bootstrap = None;
        }
    }
    closed
}

/// The idle sweep: every `period`, closes idle connections. Holds the cluster weakly: ends
/// when it is dropped, closed or shut down.
async fn sweep(inner: Weak<Inner>, period: Duration) {
    let mut closed = match inner.upgrade() {
        Some(inner) => inner.closed.subscribe(),
        None => return,
    };
    loop {
        tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => return,
            () = tokio::time::sleep(period) => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        close_idle(&inner, Instant::now());
    }
}

/// A Metadata request for `topics` (`None`: every topic; `Some(&[])`: brokers only), asking the
/// broker to create missing topics only when `allow_auto_topic_creation` is set.
fn metadata_request(topics: Option<&[&str]>, allow_auto_topic_creation: bool) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(topics.map(|names| {
            names
                .iter()
                .map(|name| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string((*name).to_owned()))))
                })
                .collect()
        }))
        .with_allow_auto_topic_creation(allow_auto_topic_creation)
}

/// [`Cluster::coordinator_connection`]'s error for a coordinator no longer in the metadata.
fn coordinator_gone(err: Error) -> Error {
    match err {
        Error::UnknownBroker { node_id } => Error::Broker {
            api: ApiKey::FindCoordinator,
            code: kafka_protocol::error::ResponseError::CoordinatorNotAvailable,
            message: Some(format!(
                "coordinator {node_id} is not in the cluster metadata (it left the cluster)"
            )),
        },
        other => other,
    }
}

/// Metadata requests at every version, for `crate::request_versions`: every topic, none, some;
/// with and without auto-creation. kafkit speaks Metadata from v4 (`kafkit_wire`'s `SUPPORTED`):
/// below it the request has no `allow_auto_topic_creation` and the broker would create topics
/// by its own setting, which a consumer or admin must not ask for (Java refuses too).
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    for v in Encoder::versions(ApiKey::Metadata) {
        for topics in [None, Some(&[][..]), Some(&["a", "b"][..])] {
            enc.check("Metadata", v, &metadata_request(topics, false));
            enc.check("Metadata (auto-create)", v, &metadata_request(topics, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProducerConfig;

    #[test]
    fn client_settings_flow_into_the_cluster_config() {
        let producer = ProducerConfig::builder()
            .set("bootstrap.servers", "127.0.0.1:1, 127.0.0.1:2")
            .and_then(|b| b.set("client.id", "app"))
            .and_then(|b| b.set("request.timeout.ms", "7000"))
            .and_then(|b| b.set("reconnect.backoff.ms", "20"))
            .and_then(|b| b.set("reconnect.backoff.max.ms", "700"))
            .and_then(|b| b.set("socket.connection.setup.timeout.ms", "3000"))
            .and_then(|b| b.set("socket.connection.setup.timeout.max.ms", "9000"))
            .and_then(|b| b.set("connections.max.idle.ms", "-1"))
            .and_then(|b| b.build())
            .expect("a valid config");
        let config = ClusterConfig::from_client_config(producer.client());
        assert_eq!(config.bootstrap, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(config.connection.client_id.as_deref(), Some("app"));
        assert_eq!(config.request_timeout, Duration::from_secs(7));
        assert_eq!(config.connection.connect_timeout, Duration::from_secs(3));
        assert_eq!(config.connect_timeout_max, Duration::from_secs(9));
        assert_eq!(config.connections_max_idle, None);
        assert_eq!(config.idle_policy().sweep_interval(), None);
        let policy = config.reconnect_policy();
        assert_eq!(policy.backoff.initial(), Duration::from_millis(20));
        assert_eq!(policy.backoff.max(), Duration::from_millis(700));
        assert_eq!(policy.setup_timeout.initial(), Duration::from_secs(3));
        assert_eq!(policy.setup_timeout.max(), Duration::from_secs(9));
    }

    #[test]
    fn a_coordinator_gone_from_the_metadata_is_retriable_and_looked_up_again() {
        use crate::state::group::commit::CommitError;
        use crate::state::group::coordinator::{coordinator_action, CoordinatorAction};
        use crate::state::producer::transaction::{classify, TxnErrorClass};
        let err = coordinator_gone(Error::UnknownBroker { node_id: 3 });
        assert!(err.is_retriable(), "{err:?}");
        assert!(err.to_string().contains("coordinator 3"), "{err}");
        assert_eq!(coordinator_action(&err), CoordinatorAction::Rediscover);
        assert_eq!(classify(&err), TxnErrorClass::Rediscover);
        let Error::Broker { code, .. } = err else {
            unreachable!()
        };
        let commit = CommitError::from_code(code, None);
        assert!(commit.is_retriable() && commit.needs_coordinator_lookup());
        // Anything else passes through unchanged.
        let other = coordinator_gone(Error::NoBrokers);
        assert!(matches!(other, Error::NoBrokers));
    }

    #[test]
    fn defaults_are_the_java_clients() {
        let config = ClusterConfig::new("127.0.0.1:9092");
        assert_eq!(config.reconnect_policy(), ReconnectPolicy::default());
        assert_eq!(
            config.connections_max_idle,
            Some(Duration::from_secs(9 * 60))
        );
        assert_eq!(config.connection.client_id.as_deref(), Some("kafkit"));
        // The admin client's: never ask for auto-creation; wait default.api.timeout.ms.
        assert!(!config.allow_auto_topic_creation);
        assert_eq!(config.bootstrap_timeout, Duration::from_secs(60));
    }

    #[test]
    fn the_bootstrap_resolve_timeout_flows_into_the_cluster_config() {
        let producer = ProducerConfig::builder()
            .set("bootstrap.servers", "kafka.invalid:9092")
            .and_then(|b| b.set("bootstrap.resolve.timeout.ms", "1500"))
            .and_then(|b| b.build())
            .expect("a valid config");
        let config = ClusterConfig::from_client_config(producer.client());
        assert_eq!(
            config.bootstrap_resolve_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(
            ClusterConfig::new("127.0.0.1:9092").bootstrap_resolve_timeout,
            Duration::ZERO
        );
    }

    #[test]
    fn metadata_recovery_settings_flow_into_the_cluster_config() {
        let defaults = ClusterConfig::new("127.0.0.1:9092");
        assert_eq!(
            defaults.metadata_recovery_strategy,
            MetadataRecoveryStrategy::Rebootstrap
        );
        assert_eq!(
            defaults.metadata_recovery_rebootstrap_trigger,
            Duration::from_secs(300)
        );
        let producer = ProducerConfig::builder()
            .set("bootstrap.servers", "127.0.0.1:9092")
            .and_then(|b| b.set("metadata.recovery.strategy", "none"))
            .and_then(|b| b.set("metadata.recovery.rebootstrap.trigger.ms", "1500"))
            .and_then(|b| b.build())
            .expect("a valid config");
        let config = ClusterConfig::from_client_config(producer.client());
        assert_eq!(
            config.metadata_recovery_strategy,
            MetadataRecoveryStrategy::None
        );
        assert_eq!(
            config.metadata_recovery_rebootstrap_trigger,
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn code_129_is_recognised_whatever_the_api() {
        for api in [ApiKey::Metadata, ApiKey::ApiVersions] {
            let err = Error::check(api, 129, None).unwrap_err();
            assert!(is_rebootstrap_required(&err), "{err:?}");
        }
        let other = Error::check(ApiKey::Metadata, 3, None).unwrap_err();
        assert!(!is_rebootstrap_required(&other));
        assert!(!is_rebootstrap_required(&Error::NoBrokers));
    }

    #[tokio::test]
    async fn unresolvable_bootstrap_names_fail_at_once_by_default() {
        let config = ClusterConfig::new("a.invalid:9092,b.invalid:9093");
        let started = Instant::now();
        let err = Cluster::connect(config)
            .await
            .expect_err("nothing resolves");
        match &err {
            Error::BootstrapUnresolvable { hosts, after, .. } => {
                assert_eq!(hosts, &["a.invalid:9092", "b.invalid:9093"]);
                assert!(*after < Duration::from_secs(1), "{after:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_retriable());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn unresolvable_bootstrap_names_are_looked_up_until_the_resolve_timeout() {
        let mut config = ClusterConfig::new("kafkit-nowhere.invalid:9092");
        config.bootstrap_resolve_timeout = Duration::from_millis(700);
        let started = Instant::now();
        let err = Cluster::connect(config)
            .await
            .expect_err("nothing resolves");
        let took = started.elapsed();
        match &err {
            Error::BootstrapUnresolvable { hosts, after, .. } => {
                assert_eq!(hosts, &["kafkit-nowhere.invalid:9092"]);
                assert!(*after >= Duration::from_millis(700), "{after:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(took >= Duration::from_millis(700), "gave up after {took:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }

    #[tokio::test]
    async fn the_bootstrap_wait_bounds_the_resolve_timeout() {
        let mut config = ClusterConfig::new("kafkit-nowhere.invalid:9092");
        config.bootstrap_resolve_timeout = Duration::from_secs(120);
        config.bootstrap_timeout = Duration::from_millis(500);
        let started = Instant::now();
        let err = Cluster::connect(config)
            .await
            .expect_err("nothing resolves");
        let took = started.elapsed();
        assert!(
            matches!(err, Error::BootstrapUnresolvable { .. }),
            "{err:?}"
        );
        assert!(took >= Duration::from_millis(500), "gave up after {took:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }

    #[tokio::test]
    async fn a_dead_bootstrap_port_is_retried_until_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        drop(listener);
        let mut config = ClusterConfig::new(&addr);
        config.bootstrap_timeout = Duration::from_millis(600);
        let started = Instant::now();
        let err = Cluster::connect(config).await.err().map(|e| e.to_string());
        let took = started.elapsed();
        let err = err.expect("nothing listens there");
        assert!(err.contains(&addr), "{err}");
        assert!(took >= Duration::from_millis(600), "gave up after {took:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
}
