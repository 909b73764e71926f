//! One pipelined TCP connection to one broker.
//!
//! Opening it: TCP connect, then (`SSL`, `SASL_SSL`) the TLS handshake (`io::tls`), then
//! ApiVersions, then (`SASL_PLAINTEXT`, `SASL_SSL`) SASL authentication ([`super::sasl`]), with
//! re-authentication before the session expires when the broker limits it (KIP-368). The socket
//! tasks below work the same over a plain or a TLS stream.
//!
//! Callers encode their request (header and body, in their own task), hand the frame to the
//! connection's writer task and wait for the response frame, which they decode themselves. The
//! two tasks that own the socket only move frames:
//!
//! - the **writer** takes frames from a channel, records each one that expects a response in the
//!   in-flight queue *in the order it writes them*, and writes them;
//! - the **reader** cuts response frames out of the socket and hands each to the oldest entry of
//!   the in-flight queue, after checking that its correlation id is the one that entry expects.
//!
//! Kafka answers the requests of one connection in the order they were sent, so the queue needs
//! no lookup. When anything goes wrong (an I/O error, a frame we refuse, a correlation id out of
//! order, a request that timed out, [`Connection::close`]) the connection is poisoned: every
//! request still in flight fails with the same typed error, and every later one fails at once.
//! A request whose response was lost this way reports [`Error::is_outcome_unknown`].
//!
//! The connection counts its outstanding requests (queued for the writer or awaiting their
//! response) and remembers when it was last used, so that the cluster can close it when idle
//! ([`Connection::close_if_idle`]: only with nothing outstanding, atomically with respect to
//! new requests, so an idle close never fails a request already started). A graceful
//! [`Connection::shutdown`] refuses new requests, lets the outstanding ones finish (up to a
//! deadline), then closes and waits for both socket tasks to end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::{Request, StrBytes};
use kafkit_wire::api::{decode_api_versions, Versions};
use kafkit_wire::frame::{FrameDecoder, Next, SIZE_PREFIX_LEN};
use kafkit_wire::guard::GuardedResponse;
use kafkit_wire::header::{decode_response_frame, decode_response_header, encode_request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, Notify, RwLock};
use tokio::task::JoinHandle;
use tracing::{debug, trace};

use super::dns::{connect_tcp, Resolver};
use super::frame_pool::{pooled_bytes, FramePool, POOLED_FRAME_MIN};
use super::tls::TlsConnector;
use crate::config::SecurityConfig;
use crate::error::{Error, Result};
use crate::state::reconnect::IdlePolicy;

/// The ApiVersions request of the connection handshake (KIP-511 client name and version, sent
/// from v3).
pub(crate) fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kafkit"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")))
}

/// The ApiVersions version we ask for first; a broker that does not know it answers in v0 with
/// the versions it does know (KIP-511).
const API_VERSIONS_FIRST: i16 = 3;

/// How many frames may wait for the writer before `send` waits too.
const WRITE_QUEUE: usize = 256;

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `client.id`: sent in every request header. Default `"kafkit"`.
    pub client_id: Option<String>,
    /// `socket.connection.setup.timeout.ms`: how long connecting and the ApiVersions handshake
    /// may take. Default 10 s.
    pub connect_timeout: Duration,
    /// Largest response frame accepted. Default 100 MiB.
    pub max_response_size: usize,
    /// `security.protocol` and its TLS and SASL settings. Default PLAINTEXT.
    pub security: SecurityConfig,
    /// `send.buffer.bytes`: `SO_SNDBUF` of the socket, set before it connects; `None` keeps
    /// the OS default. Default `None` (`ClusterConfig::from_client_config` sets Java's).
    pub send_buffer_bytes: Option<u32>,
    /// `receive.buffer.bytes`: `SO_RCVBUF` of the socket, set before it connects (the TCP
    /// window scale is fixed by the handshake); `None` keeps the OS default and its autotuning.
    pub receive_buffer_bytes: Option<u32>,
    /// How the broker's host name becomes addresses, asked again on every connection
    /// attempt; every address is tried in turn (`client.dns.lookup=use_all_dns_ips`).
    /// Default: the system resolver.
    pub resolver: Resolver,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: Some("kafkit".to_owned()),
            connect_timeout: Duration::from_secs(10),
            max_response_size: kafkit_wire::frame::DEFAULT_MAX_FRAME_SIZE,
            security: SecurityConfig::default(),
            send_buffer_bytes: None,
            receive_buffer_bytes: None,
            resolver: Resolver::system(),
        }
    }
}

/// How long [`Connection::shutdown`] waits for the socket tasks after its deadline.
const TASK_GRACE: Duration = Duration::from_secs(1);

/// Room for a request frame's length prefix and header (client id included) beyond the body's
/// own size, when its buffer is sized up front.
const FRAME_HEADROOM: usize = 128;

/// A request frame on its way to the writer.
struct Outgoing {
    frame: Bytes,
    /// `None` for requests that get no response (Produce with acks=0).
    waiter: Option<InFlight>,
    /// Counts a request without response as outstanding until it is written.
    guard: Option<UsageGuard>,
}

/// A request written (or about to be) whose response has not arrived.
struct InFlight {
    correlation_id: i32,
    api: ApiKey,
    reply: oneshot::Sender<Result<Bytes>>,
    /// Counts the request as outstanding until its response is handed over (or it fails).
    guard: Option<UsageGuard>,
}

/// How busy a connection is: requests outstanding, and when it was last used.
struct Usage {
    /// Requests queued for the writer or awaiting their response.
    outstanding: AtomicUsize,
    /// Microseconds after `base` of the last use (a request queued or a response in).
    last_used: AtomicU64,
    base: Instant,
    /// Woken whenever `outstanding` drops to zero.
    drained: Notify,
}

impl Usage {
    fn touch(&self) {
        let micros = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_used.fetch_max(micros, Ordering::Relaxed);
    }

    fn last_used(&self) -> Instant {
        let micros = self.last_used.load(Ordering::Relaxed);
        self.base
            .checked_add(Duration::from_micros(micros))
            .unwrap_or(self.base)
    }

    fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }
}

/// One outstanding request; dropping it (response delivered, request failed, frame written
/// without response expected) counts the request done.
struct UsageGuard(Arc<Usage>);

impl UsageGuard {
    fn new(usage: &Arc<Usage>) -> UsageGuard {
        usage.outstanding.fetch_add(1, Ordering::AcqRel);
        usage.touch();
        UsageGuard(usage.clone())
    }
}

impl Drop for UsageGuard {
    fn drop(&mut self) {
        self.0.touch();
        if self.0.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// The state both socket tasks and all callers share.
struct Shared {
    broker: String,
    in_flight: Mutex<InFlightQueue>,
    usage: Arc<Usage>,
    /// `true` once the connection is poisoned: wakes both socket tasks so they end.
    closed_signal: watch::Sender<bool>,
    /// The writer and reader tasks.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct InFlightQueue {
    queue: VecDeque<InFlight>,
    /// Set once, when the connection is poisoned; every later request fails with it.
    closed: Option<Error>,
    /// Set by [`Connection::shutdown`]: new requests are refused, outstanding ones finish.
    draining: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, InFlightQueue> {
        // A panic while holding this lock cannot leave the queue half-updated (every critical
        // section is a single push, pop or drain), so a poisoned lock is still usable.
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn new(broker: String) -> Shared {
        Shared {
            broker,
            in_flight: Mutex::new(InFlightQueue::default()),
            usage: Arc::new(Usage {
                outstanding: AtomicUsize::new(0),
                last_used: AtomicU64::new(0),
                base: Instant::now(),
                drained: Notify::new(),
            }),
            closed_signal: watch::Sender::new(false),
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fails every request in flight and every later one, and stops the socket tasks. The
    /// first cause wins.
    fn poison(&self, cause: Error) {
        let (closed, drained) = {
            let mut state = self.lock();
            if state.closed.is_none() {
                debug!(broker = %self.broker, error = %cause, "connection closed");
                state.closed = Some(cause);
            }
            let drained: Vec<InFlight> = state.queue.drain(..).collect();
            (state.closed.clone(), drained)
        };
        self.closed_signal.send_replace(true);
        let Some(closed) = closed else { return };
        for entry in drained {
            // The others in flight did not time out themselves: their connection closed under
            // them (also when we closed it: they were written, their outcome is unknown). Any
            // other cause (an I/O error, a bad frame) is theirs as much as anyone's.
            let err = match &closed {
                Error::RequestTimedOut { .. }
                | Error::ShutDown { .. }
                | Error::IdleClosed { .. } => Error::ConnectionClosed {
                    broker: self.broker.clone(),
                    api: entry.api,
                },
                other => other.clone(),
            };
            let _ = entry.reply.send(Err(err));
        }
    }

    fn closed(&self) -> Option<Error> {
        self.lock().closed.clone()
    }
}

/// A pipelined connection to one broker, shareable between tasks (it is cheap to clone).
///
/// ```no_run
/// # async fn example() -> Result<(), kafkit::Error> {
/// use kafkit::io::connection::{Connection, ConnectionConfig};
/// use kafka_protocol::messages::MetadataRequest;
///
/// let conn = Connection::connect("127.0.0.1:9092", &ConnectionConfig::default()).await?;
/// let version = conn.version(kafka_protocol::messages::ApiKey::Metadata)?;
/// let metadata = conn
///     .send(&MetadataRequest::default(), version, std::time::Duration::from_secs(30))
///     .await?;
/// println!("{} brokers", metadata.brokers.len());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Connection {
    link: Link,
    versions: Arc<Versions>,
    /// The rustls configuration the TLS handshake used (shared by a client's connections).
    #[cfg(feature = "tls-core")]
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

/// The request/response path of a connection, before versions are known.
#[derive(Clone)]
pub(crate) struct Link {
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<Outgoing>,
    correlation: Arc<AtomicI32>,
    client_id: Option<StrBytes>,
    /// Held for writing during a SASL re-authentication, so no other request is written
    /// between its SaslHandshake and SaslAuthenticate requests; requests take it for reading
    /// only while they are queued.
    gate: Arc<RwLock<()>>,
    /// Set on the re-authentication's own link, which holds the gate already.
    bypass_gate: bool,
}

/// A [`Link`] that does not keep the connection open (for the re-authentication task).
pub(crate) struct WeakLink {
    shared: Arc<Shared>,
    outgoing: mpsc::WeakSender<Outgoing>,
    correlation: Arc<AtomicI32>,
    client_id: Option<StrBytes>,
    gate: Arc<RwLock<()>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.link.shared.broker)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Connects to `broker` (`host:port`), then asks it which API versions it speaks.
    ///
    /// Both steps together are bounded by [`ConnectionConfig::connect_timeout`].
    pub async fn connect(broker: &str, config: &ConnectionConfig) -> Result<Connection> {
        Self::connect_with(broker, config, None).await
    }

    /// [`Connection::connect`] with the TLS settings of a client, made once and shared by its
    /// connections (and so is their TLS session cache); `None` makes them for this connection.
    pub(crate) async fn connect_with(
        broker: &str,
        config: &ConnectionConfig,
        tls: Option<&TlsConnector>,
    ) -> Result<Connection> {
        let broker_name = broker.to_owned();
        let timeout = config.connect_timeout;
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(Instant::now);
        let attempt = Self::connect_inner(broker_name.clone(), config, tls, deadline);
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Error::ConnectTimeout {
                broker: broker_name,
                after: timeout,
            }),
        }
    }

    async fn connect_inner(
        broker: String,
        config: &ConnectionConfig,
        tls: Option<&TlsConnector>,
        deadline: Instant,
    ) -> Result<Connection> {
        let security = &config.security;
        security.validate()?;
        let stream = connect_tcp(&broker, config, deadline)
            .await
            .map_err(|e| Error::Connect {
                broker: broker.clone(),
                source: Arc::new(e),
            })?;
        // Kafka requests are whole frames written at once: Nagle only adds latency.
        let _ = stream.set_nodelay(true);
        let shared = Arc::new(Shared::new(broker.clone()));
        let (outgoing, rx) = mpsc::channel(WRITE_QUEUE);
        let decoder = FrameDecoder::with_max_frame_size(config.max_response_size);
        #[cfg(feature = "tls-core")]
        let mut tls_config = None;
        if security.protocol.uses_tls() {
            #[cfg(feature = "tls-core")]
            {
                let made;
                let connector = match tls {
                    Some(shared) => shared,
                    None => {
                        made = TlsConnector::new(&security.tls).map_err(|message| Error::Tls {
                            broker: broker.clone(),
                            message,
                        })?;
                        &made
                    }
                };
                let tls = connector.handshake(&broker, stream).await?;
                tls_config = Some(connector.config().clone());
                let (read, write) = tokio::io::split(tls);
                let writer = tokio::spawn(write_loop(shared.clone(), write, rx));
                let reader = tokio::spawn(read_loop(shared.clone(), read, decoder));
                shared.tasks().extend([writer, reader]);
            }
            #[cfg(not(feature = "tls-core"))]
            {
                drop((stream, rx, decoder, tls));
                return Err(Error::Tls {
                    broker,
                    message: "kafkit was built without TLS support".to_owned(),
                });
            }
        } else {
            let (read, write) = stream.into_split();
            let writer = tokio::spawn(write_loop(shared.clone(), write, rx));
            let reader = tokio::spawn(read_loop(shared.clone(), read, decoder));
            shared.tasks().extend([writer, reader]);
        }
        let link = Link {
            shared,
            outgoing,
            correlation: Arc::new(AtomicI32::new(0)),
            client_id: config.client_id.clone().map(StrBytes::from_string),
            gate: Arc::new(RwLock::new(())),
            bypass_gate: false,
        };
        let versions = match link.handshake().await {
            Ok(versions) => Arc::new(versions),
            Err(err) => {
                link.shared.poison(err.clone());
                return Err(err);
            }
        };
        if security.protocol.uses_sasl() {
            match super::sasl::authenticate(&link.ungated(), &versions, &security.sasl, None).await
            {
                Ok(Some(lifetime)) => {
                    tokio::spawn(super::sasl::reauthenticate(
                        link.downgrade(),
                        versions.clone(),
                        security.sasl.clone(),
                        lifetime,
                        config.connect_timeout,
                    ));
                }
                Ok(None) => {}
                Err(err) => {
                    link.shared.poison(err.clone());
                    return Err(err);
                }
            }
        }
        debug!(broker = %broker, protocol = %security.protocol, "connected");
        Ok(Connection {
            link,
            versions,
            #[cfg(feature = "tls-core")]
            tls_config,
        })
    }

    /// The rustls configuration this connection's TLS handshake used, `None` without TLS.
    /// The connections of one client share one (made once when the client starts).
    #[cfg(feature = "tls-core")]
    pub fn tls_config(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls_config.as_ref()
    }

    /// The broker's address, as given to [`Connection::connect`].
    pub fn broker(&self) -> &str {
        &self.link.shared.broker
    }

    /// The version of `api` to use with this broker.
    pub fn version(&self, api: ApiKey) -> Result<i16> {
        self.versions
            .version(api)
            .map_err(|source| Error::Negotiation {
                broker: self.link.shared.broker.clone(),
                source,
            })
    }

    /// Whether the connection has been closed (it cannot be used again).
    pub fn is_closed(&self) -> bool {
        self.link.shared.closed().is_some() || self.link.outgoing.is_closed()
    }

    /// Sends `request` at `version` and waits up to `timeout` for its response.
    ///
    /// On timeout the connection is closed (a later response could only be matched out of
    /// order), and every other request in flight on it fails too.
    pub async fn send<R>(&self, request: &R, version: i16, timeout: Duration) -> Result<R::Response>
    where
        R: Request,
        R::Response: GuardedResponse,
    {
        let (correlation_id, frame) = self
            .link
            .round_trip(request, version, Some(timeout))
            .await?;
        decode_response_frame(version, correlation_id, frame).map_err(|source| Error::Decode {
            broker: self.link.shared.broker.clone(),
            source,
        })
    }

    /// Queues `request` for writing and returns once it is queued: requests started one
    /// after the other from one task are written in that order (what a producer needs for
    /// its sequence numbers). Await the response with [`PendingResponse::wait`].
    pub async fn start_send<R>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<PendingResponse<R>>
    where
        R: Request,
        R::Response: GuardedResponse,
    {
        let waiter = self.link.submit(request, version).await?;
        Ok(PendingResponse {
            waiter,
            version,
            timeout,
            _request: std::marker::PhantomData,
        })
    }

    /// [`Connection::start_send`] without waiting, for a caller that must not block (the
    /// producer's sender task): `Ok(None)` when the request cannot be queued at once (a SASL
    /// re-authentication under way, the writer's queue full); nothing was queued then.
    pub(crate) fn try_start_send<R>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<Option<PendingResponse<R>>>
    where
        R: Request,
        R::Response: GuardedResponse,
    {
        Ok(self
            .link
            .try_submit(request, version)?
            .map(|waiter| PendingResponse {
                waiter,
                version,
                timeout,
                _request: std::marker::PhantomData,
            }))
    }

    /// Sends a request that gets no response (a Produce request with `acks=0`): done once the
    /// frame is handed to the writer.
    pub async fn send_without_response<R: Request>(&self, request: &R, version: i16) -> Result<()> {
        let (_, frame) = self.link.encode(request, version)?;
        self.link
            .enqueue(Outgoing {
                frame,
                waiter: None,
                guard: None,
            })
            .await
    }

    /// Closes the connection at once: requests in flight fail with
    /// [`Error::ConnectionClosed`], later ones with [`Error::ShutDown`]. The socket tasks end
    /// on their own right after; [`Connection::shutdown`] also waits for them.
    pub fn close(&self) {
        self.link.shared.poison(Error::ShutDown {
            broker: Some(self.link.shared.broker.clone()),
        });
    }

    /// Shuts the connection down gracefully: new requests fail at once with
    /// [`Error::ShutDown`], the outstanding ones (queued or awaiting their response) may
    /// finish until `deadline`; then the connection closes (what is still outstanding fails
    /// with [`Error::ConnectionClosed`]) and this waits (up to a second past `deadline`) for
    /// its socket tasks to end, aborting them if they do not.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), kafkit::Error> {
    /// use std::time::{Duration, Instant};
    /// use kafkit::io::connection::{Connection, ConnectionConfig};
    ///
    /// let conn = Connection::connect("127.0.0.1:9092", &ConnectionConfig::default()).await?;
    /// // ... requests started from other tasks ...
    /// conn.shutdown(Instant::now() + Duration::from_secs(5)).await;
    /// assert!(conn.is_closed() && conn.is_terminated());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(&self, deadline: Instant) {
        let shared = &self.link.shared;
        shared.lock().draining = true;
        loop {
            let drained = shared.usage.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if shared.usage.outstanding() == 0 || shared.closed().is_some() {
                break;
            }
            if tokio::time::timeout_at(deadline.into(), drained)
                .await
                .is_err()
            {
                debug!(broker = %shared.broker, outstanding = shared.usage.outstanding(), "shutdown deadline passed");
                break;
            }
        }
        self.close();
        let tasks: Vec<JoinHandle<()>> = shared.tasks().drain(..).collect();
        let until = deadline.max(Instant::now()) + TASK_GRACE;
        for mut task in tasks {
            if tokio::time::timeout_at(until.into(), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Whether both socket tasks (reader and writer) have ended: true some time after the
    /// connection closed, and right after [`Connection::shutdown`] returns.
    pub fn is_terminated(&self) -> bool {
        self.link.shared.tasks().iter().all(JoinHandle::is_finished)
    }

    /// Requests outstanding: queued for writing or awaiting their response.
    pub fn in_flight(&self) -> usize {
        self.link.shared.usage.outstanding()
    }

    /// When the connection was last used: a request queued, a response received, or handed
    /// out by the cluster ([`Connection::touch`]).
    pub fn last_used(&self) -> Instant {
        self.link.shared.usage.last_used()
    }

    /// Marks the connection used now (so an idle sweep leaves it open for another
    /// `connections.max.idle.ms`).
    pub fn touch(&self) {
        self.link.shared.usage.touch();
    }

    /// Closes the connection if `policy` says it is idle at `now` (nothing outstanding, unused
    /// for the limit); returns whether it did. Atomic with respect to new requests: a request
    /// started before this call keeps the connection open, one started after fails with
    /// [`Error::IdleClosed`] without being sent.
    pub fn close_if_idle(&self, policy: &IdlePolicy, now: Instant) -> bool {
        let shared = &self.link.shared;
        let cause = Error::IdleClosed {
            broker: shared.broker.clone(),
        };
        {
            let mut state = shared.lock();
            if state.closed.is_some()
                || state.draining
                || !policy.is_idle(shared.usage.last_used(), shared.usage.outstanding(), now)
            {
                return false;
            }
            state.closed = Some(cause.clone());
        }
        debug!(broker = %shared.broker, "closing idle connection");
        shared.poison(cause);
        true
    }
}

impl WeakLink {
    /// The link, while the connection is open and someone still holds it.
    pub(crate) fn upgrade(&self) -> Option<Link> {
        let outgoing = self.outgoing.upgrade()?;
        if self.shared.closed().is_some() {
            return None;
        }
        Some(Link {
            shared: self.shared.clone(),
            outgoing,
            correlation: self.correlation.clone(),
            client_id: self.client_id.clone(),
            gate: self.gate.clone(),
            bypass_gate: false,
        })
    }
}

impl Link {
    /// The broker's address.
    pub(crate) fn broker(&self) -> &str {
        &self.shared.broker
    }

    /// Fails every request in flight and every later one with `cause`.
    pub(crate) fn poison(&self, cause: Error) {
        self.shared.poison(cause);
    }

    /// A handle that does not keep the connection open.
    pub(crate) fn downgrade(&self) -> WeakLink {
        WeakLink {
            shared: self.shared.clone(),
            outgoing: self.outgoing.downgrade(),
            correlation: self.correlation.clone(),
            client_id: self.client_id.clone(),
            gate: self.gate.clone(),
        }
    }

    /// This link for a caller that holds the gate for writing (or needs none: the first
    /// authentication, before anyone else can send).
    pub(crate) fn ungated(&self) -> Link {
        Link {
            bypass_gate: true,
            ..self.clone()
        }
    }

    /// Waits until no re-authentication is under way, then holds others off until the
    /// returned guard drops.
    pub(crate) async fn exclusive(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.gate.clone().write_owned().await
    }

    /// Sends `request` and decodes its response.
    pub(crate) async fn request<R>(
        &self,
        request: &R,
        version: i16,
        timeout: Option<Duration>,
    ) -> Result<R::Response>
    where
        R: Request,
        R::Response: GuardedResponse,
    {
        let (correlation_id, frame) = self.round_trip(request, version, timeout).await?;
        decode_response_frame(version, correlation_id, frame).map_err(|source| Error::Decode {
            broker: self.shared.broker.clone(),
            source,
        })
    }

    /// ApiVersions: the version of every API this broker and kafkit both speak.
    async fn handshake(&self) -> Result<Versions> {
        let request = api_versions_request();
        let mut version = API_VERSIONS_FIRST;
        loop {
            let (correlation_id, frame) = self.round_trip(&request, version, None).await?;
            let mut frame = frame;
            let broker = self.shared.broker.clone();
            let decode = |source| Error::Decode {
                broker: broker.clone(),
                source,
            };
            decode_response_header(ApiKey::ApiVersions, version, &mut frame)
                .map_err(decode)
                .and_then(|header| {
                    if header.correlation_id == correlation_id {
                        Ok(())
                    } else {
                        Err(Error::UnexpectedResponse {
                            broker: broker.clone(),
                            correlation_id: header.correlation_id,
                        })
                    }
                })?;
            let response = decode_api_versions(version, frame).map_err(decode)?;
            // UNSUPPORTED_VERSION: retry with the highest version the broker offers.
            if response.error_code == 35 && version > 0 {
                let theirs = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                version = theirs.clamp(0, version - 1);
                continue;
            }
            Error::check(ApiKey::ApiVersions, response.error_code, None)?;
            return Versions::from_response(&response)
                .map_err(|source| Error::Negotiation { broker, source });
        }
    }

    fn encode<R: Request>(&self, request: &R, version: i16) -> Result<(i32, Bytes)> {
        let correlation_id = self.correlation.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        // Sized once (a Produce request's batches are most of it): no regrowth copies. The
        // size is only a hint; an error here is reported by the encoding below.
        let body = request.compute_size(version).unwrap_or(0);
        let mut buf = BytesMut::with_capacity(body.saturating_add(FRAME_HEADROOM));
        encode_request(
            &mut buf,
            version,
            correlation_id,
            self.client_id.as_deref(),
            request,
        )
        .map_err(|err| {
            // A request kafkit built that this version cannot carry: a client bug, said loudly.
            tracing::error!(broker = %self.shared.broker, error = %err, "client bug: a request cannot be encoded");
            Error::Encode(err)
        })?;
        Ok((correlation_id, buf.freeze()))
    }

    /// Counts `outgoing` as outstanding, unless the connection is closed or draining.
    fn admit(&self, outgoing: &mut Outgoing) -> Result<()> {
        // Checked and counted under the lock: an idle close sees this request, or this
        // request sees the close.
        let state = self.shared.lock();
        if let Some(err) = &state.closed {
            return Err(err.clone());
        }
        if state.draining {
            return Err(Error::ShutDown {
                broker: Some(self.shared.broker.clone()),
            });
        }
        let guard = Some(UsageGuard::new(&self.shared.usage));
        match outgoing.waiter.as_mut() {
            Some(waiter) => waiter.guard = guard,
            None => outgoing.guard = guard,
        }
        Ok(())
    }

    /// Why the writer's channel refused a frame.
    fn writer_gone(&self) -> Error {
        self.shared.closed().unwrap_or(Error::ConnectionClosed {
            broker: self.shared.broker.clone(),
            api: ApiKey::ApiVersions,
        })
    }

    async fn enqueue(&self, mut outgoing: Outgoing) -> Result<()> {
        self.admit(&mut outgoing)?;
        let _gate = if self.bypass_gate {
            None
        } else {
            Some(self.gate.read().await)
        };
        self.outgoing
            .send(outgoing)
            .await
            .map_err(|_| self.writer_gone())
    }

    /// [`Link::submit`] without waiting: `Ok(None)` (nothing queued, nothing encoded) when
    /// the request cannot be queued at once — a re-authentication holds the gate or the
    /// writer's queue is full.
    fn try_submit<R: Request>(&self, request: &R, version: i16) -> Result<Option<Waiter>> {
        let _gate = if self.bypass_gate {
            None
        } else {
            match self.gate.try_read() {
                Ok(gate) => Some(gate),
                Err(_) => return Ok(None),
            }
        };
        let permit = match self.outgoing.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => return Ok(None),
            Err(mpsc::error::TrySendError::Closed(())) => return Err(self.writer_gone()),
        };
        let (mut outgoing, waiter) = self.request_frame(request, version)?;
        self.admit(&mut outgoing)?;
        permit.send(outgoing);
        Ok(Some(waiter))
    }

    /// Writes one request and waits for its response frame (header still on).
    async fn round_trip<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Option<Duration>,
    ) -> Result<(i32, Bytes)> {
        self.submit(request, version).await?.wait(timeout).await
    }

    /// Queues one request for writing; the returned waiter gets its response frame.
    async fn submit<R: Request>(&self, request: &R, version: i16) -> Result<Waiter> {
        let (outgoing, waiter) = self.request_frame(request, version)?;
        self.enqueue(outgoing).await?;
        Ok(waiter)
    }

    /// Encodes `request` (a new correlation id) into the frame the writer sends and the
    /// [`Waiter`] its response will reach.
    fn request_frame<R: Request>(&self, request: &R, version: i16) -> Result<(Outgoing, Waiter)> {
        let api = ApiKey::try_from(R::KEY)
            .map_err(|()| kafkit_wire::header::EncodeError::UnknownApiKey(R::KEY))?;
        let (correlation_id, frame) = self.encode(request, version)?;
        let (reply, response) = oneshot::channel();
        let outgoing = Outgoing {
            frame,
            waiter: Some(InFlight {
                correlation_id,
                api,
                reply,
                guard: None,
            }),
            guard: None,
        };
        let waiter = Waiter {
            shared: self.shared.clone(),
            api,
            correlation_id,
            response,
        };
        Ok((outgoing, waiter))
    }
}

/// The response to come for one queued request.
struct Waiter {
    shared: Arc<Shared>,
    api: ApiKey,
    correlation_id: i32,
    response: oneshot::Receiver<Result<Bytes>>,
}

impl Waiter {
    async fn wait(self, timeout: Option<Duration>) -> Result<(i32, Bytes)> {
        let Waiter {
            shared,
            api,
            correlation_id,
            response,
        } = self;
        let closed = || Error::ConnectionClosed {
            broker: shared.broker.clone(),
            api,
        };
        let frame = match timeout {
            None => response.await.map_err(|_| closed())?,
            Some(after) => match tokio::time::timeout(after, response).await {
                Ok(result) => result.map_err(|_| closed())?,
                Err(_) => {
                    let err = Error::RequestTimedOut {
                        broker: shared.broker.clone(),
                        api,
                        after,
                    };
                    shared.poison(err.clone());
                    return Err(err);
                }
            },
        }?;
        Ok((correlation_id, frame))
    }
}

/// A request already queued on its connection (so requests queued one after the other are
/// written in that order), whose response is still to come: [`PendingResponse::wait`].
pub struct PendingResponse<R: Request> {
    waiter: Waiter,
    version: i16,
    timeout: Duration,
    _request: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> std::fmt::Debug for PendingResponse<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingResponse")
            .field("broker", &self.waiter.shared.broker)
            .field("correlation_id", &self.waiter.correlation_id)
            .finish()
    }
}

impl<R> PendingResponse<R>
where
    R: Request,
    R::Response: GuardedResponse,
{
    /// Waits up to the timeout given at [`Connection::start_send`] for the response, with the
    /// same failure rules as [`Connection::send`].
    pub async fn wait(self) -> Result<R::Response> {
        let broker = self.waiter.shared.broker.clone();
        let (correlation_id, frame) = self.waiter.wait(Some(self.timeout)).await?;
        decode_response_frame(self.version, correlation_id, frame)
            .map_err(|source| Error::Decode { broker, source })
    }
}

/// Takes frames from callers and writes them, in order; registers each expected response
/// before its request can reach the broker. Ends when the connection closes.
async fn write_loop<W: AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut socket: W,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let mut closed = shared.closed_signal.subscribe();
    'outer: loop {
        let first = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => break,
            next = rx.recv() => match next {
                Some(first) => first,
                None => break,
            },
        };
        let mut next = Some(first);
        while let Some(outgoing) = next.take() {
            let Outgoing {
                frame,
                waiter,
                guard,
            } = outgoing;
            if let Some(waiter) = waiter {
                let mut state = shared.lock();
                if state.closed.is_some() {
                    drop(state);
                    let err = Error::ConnectionClosed {
                        broker: shared.broker.clone(),
                        api: waiter.api,
                    };
                    let _ = waiter.reply.send(Err(err));
                    continue;
                }
                state.queue.push_back(waiter);
            }
            let written = tokio::select! {
                biased;
                _ = closed.wait_for(|c| *c) => break 'outer,
                written = socket.write_all(&frame) => written,
            };
            drop(guard);
            if let Err(e) = written {
                shared.poison(Error::Io {
                    broker: shared.broker.clone(),
                    source: Arc::new(e),
                });
                break 'outer;
            }
            // Write whatever else is queued before yielding back to the channel.
            next = rx.try_recv().ok();
        }
    }
    // Frames still queued are dropped: their callers see the connection closed.
    rx.close();
    while rx.try_recv().is_ok() {}
    let _ = tokio::time::timeout(TASK_GRACE, socket.shutdown()).await;
}

/// Reads response frames and hands each to the request it answers.
async fn read_loop<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    mut socket: R,
    decoder: FrameDecoder,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let pool = Arc::new(FramePool::default());
    let mut closed = shared.closed_signal.subscribe();
    loop {
        // A large frame's body goes into a pooled buffer of its own (`io::frame_pool`).
        if let Ok(Some(size)) = decoder.frame_size(&buf) {
            if size >= POOLED_FRAME_MIN && buf.len() < SIZE_PREFIX_LEN + size {
                let frame = match read_pooled(&mut socket, &mut buf, size, &pool, &mut closed).await
                {
                    Ok(Some(frame)) => frame,
                    Ok(None) => return,
                    Err(source) => {
                        shared.poison(Error::Io {
                            broker: shared.broker.clone(),
                            source: Arc::new(source),
                        });
                        return;
                    }
                };
                if let Err(err) = deliver(&shared, frame) {
                    shared.poison(err);
                    return;
                }
                continue;
            }
        }
        match decoder.decode(&mut buf) {
            Ok(Next::Frame(frame)) => {
                if let Err(err) = deliver(&shared, frame) {
                    shared.poison(err);
                    return;
                }
                continue;
            }
            Ok(Next::Need(_)) => {}
            Err(source) => {
                shared.poison(Error::Frame {
                    broker: shared.broker.clone(),
                    source,
                });
                return;
            }
        }
        if shared.closed().is_some() {
            return;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        let read = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => return,
            read = socket.read_buf(&mut buf) => read,
        };
        match read {
            Ok(0) => {
                shared.poison(Error::Io {
                    broker: shared.broker.clone(),
                    source: Arc::new(std::io::ErrorKind::UnexpectedEof.into()),
                });
                return;
            }
            Ok(n) => trace!(broker = %shared.broker, bytes = n, "read"),
            Err(e) => {
                shared.poison(Error::Io {
                    broker: shared.broker.clone(),
                    source: Arc::new(e),
                });
                return;
            }
        }
    }
}

/// Reads the body of a frame of `size` bytes, whose start is in `buf` (and nothing after it),
/// into a buffer from `pool`; `None` when the connection closed meanwhile.
async fn read_pooled<R: AsyncRead + Unpin>(
    socket: &mut R,
    buf: &mut BytesMut,
    size: usize,
    pool: &Arc<FramePool>,
    closed: &mut watch::Receiver<bool>,
) -> std::io::Result<Option<Bytes>> {
    let mut body = pool.take(size);
    body.extend_from_slice(buf.get(SIZE_PREFIX_LEN..).unwrap_or_default());
    buf.clear();
    while body.len() < size {
        // Never past this frame: what follows it is read into `buf` as usual.
        let missing = size - body.len();
        let mut rest = (&mut body).limit(missing);
        let read = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => return Ok(None),
            read = socket.read_buf(&mut rest) => read?,
        };
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Some(pooled_bytes(body, pool)))
}

/// Gives one response frame to the oldest request in flight, if its correlation id matches.
fn deliver(shared: &Shared, frame: Bytes) -> Result<()> {
    let correlation_id = match frame.get(..4) {
        Some(b) => i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => {
            return Err(Error::UnexpectedResponse {
                broker: shared.broker.clone(),
                correlation_id: -1,
            })
        }
    };
    let entry = {
        let mut state = shared.lock();
        match state.queue.front() {
            Some(front) if front.correlation_id == correlation_id => state.queue.pop_front(),
            _ => None,
        }
    };
    match entry {
        Some(entry) => {
            // The caller may have given up (dropped its future): nothing to do then.
            let _ = entry.reply.send(Ok(frame));
            Ok(())
        }
        None => Err(Error::UnexpectedResponse {
            broker: shared.broker.clone(),
            correlation_id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large frame whose first bytes are already in the read buffer, sent in pieces and
    /// followed at once by a small frame: the pooled read takes exactly the large frame's body
    /// and leaves the small frame on the socket for the ordinary path.
    #[tokio::test]
    async fn a_pooled_read_takes_exactly_one_frame() {
        let size = POOLED_FRAME_MIN + 12_345;
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut wire = (size as i32).to_be_bytes().to_vec();
        wire.extend_from_slice(&body);
        wire.extend_from_slice(&[0, 0, 0, 3, b'a', b'b', b'c']);
        let (mut tx, mut rx) = tokio::io::duplex(8 * 1024);
        let writer = tokio::spawn(async move {
            for piece in wire.chunks(5_000) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let decoder = FrameDecoder::new();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        while decoder.frame_size(&buf).unwrap().is_none() || buf.len() < 100 {
            rx.read_buf(&mut buf).await.unwrap();
        }
        let pool = Arc::new(FramePool::default());
        let (_signal, mut closed) = watch::channel(false);
        let frame = read_pooled(&mut rx, &mut buf, size, &pool, &mut closed)
            .await
            .unwrap()
            .expect("not closed");
        assert!(frame[..] == body[..]);
        assert!(buf.is_empty());
        writer.await.unwrap();
        loop {
            match decoder.decode(&mut buf).unwrap() {
                Next::Frame(small) => {
                    assert_eq!(&small[..], b"abc");
                    break;
                }
                Next::Need(_) => assert!(rx.read_buf(&mut buf).await.unwrap() > 0),
            }
        }
    }

    /// The peer closing in the middle of a large frame is an error, not a short frame.
    #[tokio::test]
    async fn a_pooled_read_cut_short_is_unexpected_eof() {
        let size = POOLED_FRAME_MIN;
        let (mut tx, mut rx) = tokio::io::duplex(8 * 1024);
        let writer = tokio::spawn(async move {
            tx.write_all(&(size as i32).to_be_bytes()).await.unwrap();
            tx.write_all(&vec![1u8; 10_000]).await.unwrap();
        });
        let mut buf = BytesMut::new();
        rx.read_buf(&mut buf).await.unwrap();
        let pool = Arc::new(FramePool::default());
        let (_signal, mut closed) = watch::channel(false);
        let err = read_pooled(&mut rx, &mut buf, size, &pool, &mut closed)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        writer.await.unwrap();
    }
}
