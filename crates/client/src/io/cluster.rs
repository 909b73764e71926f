//! The set of broker connections a client keeps, and the metadata that says which broker is
//! which.
//!
//! [`Cluster`] opens one [`Connection`] per broker on demand (the first from the bootstrap
//! list), replaces a connection that has closed the next time it is asked for, and refreshes
//! [`ClusterMetadata`] from any live broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Mutex as AsyncMutex;
use tracing::debug;

use super::connection::{Connection, ConnectionConfig};
use crate::error::{Error, Result};
use crate::state::metadata::ClusterMetadata;

/// Settings shared by every connection of a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `bootstrap.servers`: where to find the cluster first (`host:port` entries).
    pub bootstrap: Vec<String>,
    /// Settings of each broker connection.
    pub connection: ConnectionConfig,
    /// `request.timeout.ms`: how long one request may wait for its response. Default 30 s.
    pub request_timeout: Duration,
}

impl ClusterConfig {
    /// Settings with the given bootstrap list (comma-separated, as `bootstrap.servers` takes
    /// it) and defaults for the rest.
    ///
    /// ```
    /// use kafkit_client::io::cluster::ClusterConfig;
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
        }
    }
}

impl ClusterConfig {
    /// Settings from a client configuration: its bootstrap list, `client.id`,
    /// `request.timeout.ms`, `socket.connection.setup.timeout.ms` and security settings.
    ///
    /// ```
    /// use kafkit_client::config::{ProducerConfig, SecurityProtocol};
    /// use kafkit_client::io::cluster::ClusterConfig;
    ///
    /// let producer = ProducerConfig::from_properties([
    ///     ("bootstrap.servers", "127.0.0.1:9093"),
    ///     ("security.protocol", "SASL_SSL"),
    ///     ("sasl.mechanism", "SCRAM-SHA-512"),
    ///     ("sasl.username", "alice"),
    ///     ("sasl.password", "alice-secret"),
    /// ])?;
    /// let cluster = ClusterConfig::from_client_config(producer.client());
    /// assert_eq!(cluster.connection.security.protocol, SecurityProtocol::SaslSsl);
    /// assert!(!format!("{cluster:?}").contains("alice-secret"));
    /// # Ok::<(), kafkit_client::config::ConfigError>(())
    /// ```
    pub fn from_client_config(client: &crate::config::ClientConfig) -> ClusterConfig {
        let mut config = ClusterConfig {
            bootstrap: client
                .bootstrap_servers()
                .iter()
                .map(ToString::to_string)
                .collect(),
            connection: ConnectionConfig::default(),
            request_timeout: client.request_timeout(),
        };
        if let Some(id) = client.client_id() {
            config.connection.client_id = Some(id.to_owned());
        }
        config.connection.connect_timeout = client.socket_connection_setup_timeout();
        config.connection.security = client.security().clone();
        config
    }
}

/// Connections to the brokers of one cluster, and what is known of it.
///
/// ```no_run
/// # async fn example() -> Result<(), kafkit_client::Error> {
/// use kafkit_client::io::cluster::{Cluster, ClusterConfig};
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
    connections: Mutex<HashMap<i32, Connection>>,
    /// Serializes connecting to one node (by node id; -1 for bootstrap) so that concurrent
    /// callers share one connection, while a slow node does not hold up the others.
    connecting: Mutex<HashMap<i32, Arc<AsyncMutex<()>>>>,
    metadata: RwLock<ClusterMetadata>,
}

impl Cluster {
    /// Connects to the first reachable bootstrap broker and fetches the cluster's brokers.
    ///
    /// Fails with the last broker's error when none can be reached.
    pub async fn connect(config: ClusterConfig) -> Result<Cluster> {
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                bootstrap: Mutex::new(None),
                connections: Mutex::new(HashMap::new()),
                connecting: Mutex::new(HashMap::new()),
                metadata: RwLock::new(ClusterMetadata::default()),
            }),
        };
        cluster.refresh_metadata(Some(&[])).await?;
        Ok(cluster)
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
        change(&mut guard)
    }

    fn connect_lock(&self, node_id: i32) -> Arc<AsyncMutex<()>> {
        self.inner
            .connecting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(node_id)
            .or_default()
            .clone()
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<i32, Connection>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A live connection to any broker: one already open, else a bootstrap broker.
    pub async fn any_connection(&self) -> Result<Connection> {
        if let Some(conn) = self.connections().values().find(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let lock = self.connect_lock(-1);
        let _guard = lock.lock().await;
        {
            let bootstrap = self
                .inner
                .bootstrap
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(conn) = bootstrap.as_ref().filter(|c| !c.is_closed()) {
                return Ok(conn.clone());
            }
        }
        // Known brokers first (the bootstrap list may name a load balancer), then bootstrap.
        let mut candidates: Vec<String> = self.metadata().brokers().map(|b| b.address()).collect();
        candidates.extend(self.inner.config.bootstrap.iter().cloned());
        let mut last = None;
        for address in candidates {
            match Connection::connect(&address, &self.inner.config.connection).await {
                Ok(conn) => {
                    *self
                        .inner
                        .bootstrap
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(conn.clone());
                    return Ok(conn);
                }
                // Wrong credentials or settings fail the same way on every broker: stop here
                // rather than knock on each one.
                Err(err @ (Error::Authentication { .. } | Error::Config(_))) => return Err(err),
                Err(err) => {
                    debug!(broker = %address, error = %err, "bootstrap connection failed");
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or(Error::NoBrokers))
    }

    /// A live connection to broker `node_id`, opened if needed.
    pub async fn connection(&self, node_id: i32) -> Result<Connection> {
        if let Some(conn) = self.connections().get(&node_id).filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let lock = self.connect_lock(node_id);
        let _guard = lock.lock().await;
        if let Some(conn) = self.connections().get(&node_id).filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let address = self
            .metadata()
            .broker(node_id)
            .map(|b| b.address())
            .ok_or(Error::UnknownBroker { node_id })?;
        let conn = Connection::connect(&address, &self.inner.config.connection).await?;
        self.connections().insert(node_id, conn.clone());
        Ok(conn)
    }

    /// Fetches metadata for `topics` (`None`: every topic; `Some(&[])`: brokers only) from any
    /// broker, and merges it into [`Cluster::metadata`]. Topics are never auto-created.
    pub async fn refresh_metadata(&self, topics: Option<&[&str]>) -> Result<()> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|name| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string((*name).to_owned()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let response = conn
            .send(&request, version, self.inner.config.request_timeout)
            .await?;
        Error::check(ApiKey::Metadata, response.error_code, None)?;
        let now = Instant::now();
        self.update_metadata(|m| m.update(&response, now));
        Ok(())
    }

    /// Closes every connection.
    pub fn close(&self) {
        for conn in self.connections().drain().map(|(_, c)| c) {
            conn.close();
        }
        if let Some(conn) = self
            .inner
            .bootstrap
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        {
            conn.close();
        }
    }
}
