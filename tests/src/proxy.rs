//! A frame-aware loopback proxy between a client under test and a real broker, for fault
//! injection.
//!
//! Kafka clients bootstrap from one address and then connect to the addresses the brokers
//! *advertise*, so a plain port forward is bypassed after the first Metadata response. This
//! proxy keeps every connection on itself:
//!
//! - [`ProxyCluster::start`] asks the real cluster for its brokers and opens one loopback
//!   listener per broker (node id → listener); a broker that shows up later gets a listener the
//!   first time a response names it.
//! - Every response that carries broker addresses is decoded (with [`kafkit_wire`]'s guarded
//!   decoders), its addresses replaced by the matching listener's, and re-encoded with
//!   kafka-protocol at the same version, behind the original response header bytes: Metadata
//!   (`brokers`), FindCoordinator (`host`/`port` and `coordinators`), DescribeCluster
//!   (`brokers`), and the `node_endpoints` of Fetch and Produce responses.
//! - To know which response is which, the proxy reads the first 8 bytes of every request frame
//!   (api key, api version, correlation id) and matches responses by correlation id.
//!
//! [`Proxy::start`] is the single-broker variant: one listener, to which every advertised
//! address is rewritten.
//!
//! Faults are switched on and off at run time through [`ProxyControl`] (both proxies deref to
//! it, and [`Proxy::control`] / [`ProxyCluster::control`] hand out clones for other tasks):
//! [`cut_all`](ProxyControl::cut_all), [`set_refuse`](ProxyControl::set_refuse),
//! [`drop_response_of`](ProxyControl::drop_response_of),
//! [`delay_responses`](ProxyControl::delay_responses), [`stall`](ProxyControl::stall) /
//! [`resume`](ProxyControl::resume), [`corrupt_fetch_records`](ProxyControl::corrupt_fetch_records),
//! [`fail_metadata`](ProxyControl::fail_metadata), and counters in [`stats`](ProxyControl::stats).
//!
//! Dropping the proxy (or calling `shutdown`) closes its listeners and every connection and
//! aborts all of its tasks. Everything listens on 127.0.0.1 only.
//!
//! ```no_run
//! # async fn example() {
//! use kafka_protocol::messages::ApiKey;
//! use kafkit::admin::{Admin, NewTopic};
//! use kafkit_tests::proxy::{LostResponse, ProxyCluster};
//!
//! let proxy = ProxyCluster::start(&kafkit_tests::kafka().bootstrap).await;
//! let admin = Admin::connect(&proxy.bootstrap()).await.unwrap();
//!
//! // The broker creates the topic, but the client never hears back: the call's retry is
//! // told that the topic exists.
//! proxy.drop_response_of(ApiKey::CreateTopics, 1, LostResponse::Cut);
//! let err = admin.create_topics(&[NewTopic::new("t", 1, 1)]).await.unwrap_err();
//! assert!(err.to_string().contains("TopicAlreadyExists"));
//!
//! proxy.cut_all(); // every live connection, now
//! assert_eq!(proxy.stats().responses_dropped, 1);
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterResponse, FetchResponse, FindCoordinatorResponse, MetadataRequest,
    MetadataResponse, ProduceResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafkit::io::connection::{Connection, ConnectionConfig};
use kafkit_wire::frame::{FrameDecoder, Next};
use kafkit_wire::guard::{decode_response, GuardedResponse};
use kafkit_wire::header::decode_response_header;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long the proxy waits for the real broker to accept a connection.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`ProxyCluster::start`] waits for the real cluster's metadata.
const LEARN_TIMEOUT: Duration = Duration::from_secs(20);

/// What happens to the connection whose response [`ProxyControl::drop_response_of`] swallowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostResponse {
    /// The response is discarded and the connection is closed at once (both sides): the
    /// client sees the connection close with the request in flight, although the broker
    /// carried it out. The "written but the ack was lost" case.
    Cut,
    /// The response, and every later response on that connection, is discarded while the
    /// connection stays open: the client's request times out.
    Blackhole,
}

/// Counters of one proxy (all listeners together), as [`ProxyControl::stats`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted (including refused ones).
    pub connections_accepted: u64,
    /// Client connections accepted (including refused ones), by listener address.
    pub accepted_by_listener: BTreeMap<SocketAddr, u64>,
    /// Client connections closed at once because of [`ProxyControl::set_refuse`].
    pub connections_refused: u64,
    /// Client connections open now (with a broker connection behind them, or opening one).
    pub live_connections: u64,
    /// Request frames read from clients, by api key.
    pub requests: BTreeMap<i16, u64>,
    /// Request frames read from clients, by listener address (so by broker, with
    /// [`ProxyCluster::listener`]) and api key.
    pub requests_by_listener: BTreeMap<(SocketAddr, i16), u64>,
    /// Bytes read from clients (and written to brokers, unless a fault intervened).
    pub bytes_to_broker: u64,
    /// Bytes written to clients.
    pub bytes_to_client: u64,
    /// Responses swallowed by a [`ProxyControl::drop_response_of`] rule (the first of a
    /// blackholed connection only).
    pub responses_dropped: u64,
    /// Responses whose broker addresses were rewritten.
    pub responses_rewritten: u64,
    /// Responses that should have been rewritten but could not be decoded or re-encoded; they
    /// were forwarded as they came, so a test asserting "only proxy addresses" should check
    /// this is zero.
    pub rewrite_failures: u64,
    /// Fetch responses in which a record batch byte was flipped.
    pub fetch_records_corrupted: u64,
    /// Metadata responses given a top-level error by [`ProxyControl::fail_metadata`].
    pub metadata_errors_injected: u64,
}

impl ProxyStats {
    /// Request frames of `api` read from clients.
    pub fn requests_of(&self, api: ApiKey) -> u64 {
        self.requests.get(&(api as i16)).copied().unwrap_or(0)
    }

    /// Request frames of `api` read from clients on the listener `listener` (for a
    /// [`ProxyCluster`]: `proxy.listener(node_id)`, the requests to that broker).
    pub fn requests_to(&self, listener: SocketAddr, api: ApiKey) -> u64 {
        self.requests_by_listener
            .get(&(listener, api as i16))
            .copied()
            .unwrap_or(0)
    }
}

/// The run-time controls of a proxy: faults and counters. Cheap to clone, `Send + Sync`;
/// every method takes effect at once on every listener of the proxy.
///
/// A clone does not keep the proxy alive: once the [`Proxy`] or [`ProxyCluster`] is dropped,
/// the controls change nothing.
#[derive(Clone)]
pub struct ProxyControl {
    core: Arc<Core>,
}

impl std::fmt::Debug for ProxyControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyControl")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A single-broker proxy: one loopback listener in front of one real broker.
///
/// Every broker address in the responses it forwards is rewritten to its own listener, which
/// is right only when the real cluster has one broker; use [`ProxyCluster`] otherwise.
#[derive(Debug)]
pub struct Proxy {
    control: ProxyControl,
    addr: SocketAddr,
}

/// A proxy in front of a whole cluster: one loopback listener per broker, with every broker
/// address in responses rewritten to the listener of the same node id.
#[derive(Debug)]
pub struct ProxyCluster {
    control: ProxyControl,
}

/// The state shared by the handles and every task of one proxy.
struct Core {
    routing: Mutex<Routing>,
    faults: Mutex<Faults>,
    stats: Mutex<ProxyStats>,
    /// Topic name → topic id, learned from the Metadata responses that pass through (Fetch
    /// responses from v13 on name topics by id only).
    topic_ids: Mutex<HashMap<String, [u8; 16]>>,
    /// `true` while traffic is held.
    stalled: watch::Sender<bool>,
    /// Bumped by `cut_all`: connections accepted under an older value close.
    cut: watch::Sender<u64>,
    /// `true` once the proxy is shut down.
    shutdown: watch::Sender<bool>,
    /// Every task of the proxy (accept loops and connections); `None` once shut down.
    tasks: Mutex<Option<JoinSet<()>>>,
}

enum Routing {
    /// Every broker is reached through this one listener.
    Single(SocketAddr),
    /// Node id → (listener address, upstream `host:port`).
    ByNode(BTreeMap<i32, (SocketAddr, String)>),
}

#[derive(Default)]
struct Faults {
    refuse: bool,
    delay: Duration,
    drop_rules: Vec<DropRule>,
    corrupt_rules: Vec<CorruptRule>,
    /// Top-level error code to put in the next `metadata_errors.1` Metadata responses (v13+).
    metadata_errors: (i16, u32),
}

struct DropRule {
    api_key: i16,
    /// Requests of `api_key` still to let through before the one whose response is lost.
    skip: u32,
    mode: LostResponse,
}

struct CorruptRule {
    topic: String,
    partition: i32,
}

/// A request forwarded to the broker whose response has not come back yet.
struct Pending {
    api_key: i16,
    version: i16,
    correlation_id: i32,
    lose: Option<LostResponse>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Binds a loopback listener on a free port (synchronously, so that it can be done while
/// holding a lock). Must be called inside a tokio runtime.
fn bind_loopback() -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

impl Core {
    fn new(routing: Routing) -> Arc<Core> {
        Arc::new(Core {
            routing: Mutex::new(routing),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(ProxyStats::default()),
            topic_ids: Mutex::new(HashMap::new()),
            stalled: watch::Sender::new(false),
            cut: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            tasks: Mutex::new(Some(JoinSet::new())),
        })
    }

    fn stats(&self) -> MutexGuard<'_, ProxyStats> {
        lock(&self.stats)
    }

    /// Runs `task` as one of the proxy's tasks, unless the proxy is shut down.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = lock(&self.tasks);
        if let Some(set) = tasks.as_mut() {
            // Reap the finished ones so the set does not grow with every connection.
            while set.try_join_next().is_some() {}
            set.spawn(task);
        }
    }

    fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.stalled.send_replace(false);
        let tasks = lock(&self.tasks).take();
        if let Some(mut set) = tasks {
            set.abort_all();
            // Dropping the set detaches nothing: aborted tasks drop their sockets.
            drop(set);
        }
    }

    /// The listener clients should use for broker `node_id`, advertised by the real broker
    /// as `host:port`. In a cluster proxy, a node seen for the first time gets a listener.
    fn route(self: &Arc<Self>, node_id: i32, host: &str, port: i32) -> Option<SocketAddr> {
        let mut routing = lock(&self.routing);
        match &mut *routing {
            Routing::Single(addr) => Some(*addr),
            Routing::ByNode(nodes) => {
                if let Some((addr, _)) = nodes.get(&node_id) {
                    return Some(*addr);
                }
                if node_id < 0 || host.is_empty() {
                    return None;
                }
                let upstream = format!("{host}:{port}");
                match bind_loopback().and_then(|l| Ok((l.local_addr()?, l))) {
                    Ok((addr, listener)) => {
                        nodes.insert(node_id, (addr, upstream.clone()));
                        self.spawn(accept_loop(self.clone(), listener, upstream));
                        Some(addr)
                    }
                    Err(e) => {
                        eprintln!("proxy: cannot open a listener for broker {node_id}: {e}");
                        None
                    }
                }
            }
        }
    }

    /// Waits until traffic is not stalled (or the proxy shuts down).
    async fn unstalled(&self) {
        let mut stalled = self.stalled.subscribe();
        let _ = stalled.wait_for(|s| !*s).await;
    }
}

impl ProxyControl {
    /// Closes every live connection now (client and broker side); new connections are still
    /// accepted. Requests in flight on them get no response.
    pub fn cut_all(&self) {
        self.core.cut.send_modify(|generation| *generation += 1);
    }

    /// While `true`, new client connections are accepted and closed at once (the client sees
    /// the connection close before its ApiVersions answer); live connections are untouched.
    pub fn set_refuse(&self, refuse: bool) {
        lock(&self.core.faults).refuse = refuse;
    }

    /// Loses the response to one request of `api`: the `nth` one (1 = the next) read from
    /// any client from now on is forwarded to the broker, and its response is swallowed as
    /// `mode` says. Rules for the same API apply one after the other: a second rule starts
    /// counting with the request after the first rule's lost one.
    pub fn drop_response_of(&self, api: ApiKey, nth: u32, mode: LostResponse) {
        lock(&self.core.faults).drop_rules.push(DropRule {
            api_key: api as i16,
            skip: nth.saturating_sub(1),
            mode,
        });
    }

    /// Holds every response for `delay` before forwarding it (`Duration::ZERO`: no delay).
    /// Order is kept: a connection's responses queue behind each other.
    pub fn delay_responses(&self, delay: Duration) {
        lock(&self.core.faults).delay = delay;
    }

    /// Holds all traffic, both ways, on every connection, without closing anything: frames
    /// wait in the proxy (and the socket buffers) until [`ProxyControl::resume`].
    pub fn stall(&self) {
        self.core.stalled.send_replace(true);
    }

    /// Lets held traffic go on, in order.
    pub fn resume(&self) {
        self.core.stalled.send_replace(false);
    }

    /// Flips one byte inside the first record batch of the next Fetch response that carries
    /// records for `topic`/`partition`, after the batch's CRC field (the last byte of the
    /// batch), so its CRC no longer matches. One-shot.
    ///
    /// Fetch v13+ responses name topics by id: the proxy learns ids from the Metadata
    /// responses it forwards, so the client must have fetched the topic's metadata through it.
    pub fn corrupt_fetch_records(&self, topic: &str, partition: i32) {
        lock(&self.core.faults).corrupt_rules.push(CorruptRule {
            topic: topic.to_owned(),
            partition,
        });
    }

    /// Gives the next `count` Metadata responses of version 13 or later (the first with a
    /// top-level error code, KIP-1102) the top-level error `code`, e.g. 129
    /// `REBOOTSTRAP_REQUIRED`; brokers and topics are left as the broker sent them. Older
    /// versions pass unchanged.
    pub fn fail_metadata(&self, code: i16, count: u32) {
        lock(&self.core.faults).metadata_errors = (code, count);
    }

    /// Turns every fault off: no refusing, no delay, no stall, no pending drop or corruption
    /// rules. Connections already blackholed stay so until they close.
    pub fn clear_faults(&self) {
        *lock(&self.core.faults) = Faults::default();
        self.resume();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        self.core.stats().clone()
    }

    /// Waits until `condition` holds for the counters, polling every 10 ms; `false` if it
    /// still does not after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        condition: impl Fn(&ProxyStats) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(&self.core.stats()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Proxy {
    /// Starts a single-broker proxy in front of `upstream`, listening on `127.0.0.1:0`.
    ///
    /// # Panics
    /// When no loopback listener can be opened.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener =
            bind_loopback().unwrap_or_else(|e| panic!("proxy: cannot listen on 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy: no local address: {e}"));
        let core = Core::new(Routing::Single(addr));
        core.spawn(accept_loop(core.clone(), listener, upstream.to_string()));
        Proxy {
            control: ProxyControl { core },
            addr,
        }
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listener's address as `host:port`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// A handle on the faults and counters, for other tasks.
    pub fn control(&self) -> ProxyControl {
        self.control.clone()
    }

    /// Closes the listener and every connection, and ends every task (also done on drop).
    pub fn shutdown(&self) {
        self.control.core.shutdown();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Deref for Proxy {
    type Target = ProxyControl;

    fn deref(&self) -> &ProxyControl {
        &self.control
    }
}

impl ProxyCluster {
    /// Learns the brokers of the cluster at `bootstrap` (`host:port[,host:port…]`) from a
    /// Metadata request, and opens one loopback listener per broker.
    ///
    /// # Panics
    /// When the cluster cannot be reached within 20 s or no listener can be opened.
    pub async fn start(bootstrap: &str) -> ProxyCluster {
        let brokers = tokio::time::timeout(LEARN_TIMEOUT, learn_brokers(bootstrap))
            .await
            .unwrap_or_else(|_| panic!("proxy: no metadata from {bootstrap} in {LEARN_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("proxy: cannot learn the brokers of {bootstrap}: {e}"));
        assert!(!brokers.is_empty(), "proxy: {bootstrap} lists no brokers");
        // Owned before any listener exists, so that a panic below shuts those down.
        let proxy = ProxyCluster {
            control: ProxyControl {
                core: Core::new(Routing::ByNode(BTreeMap::new())),
            },
        };
        for (node_id, host, port) in brokers {
            proxy
                .control
                .core
                .route(node_id, &host, port)
                .unwrap_or_else(|| panic!("proxy: no listener for broker {node_id}"));
        }
        proxy
    }

    /// The listeners, by node id of the broker each one fronts.
    pub fn listeners(&self) -> BTreeMap<i32, SocketAddr> {
        match &*lock(&self.control.core.routing) {
            Routing::Single(addr) => BTreeMap::from([(-1, *addr)]),
            Routing::ByNode(nodes) => nodes.iter().map(|(id, (addr, _))| (*id, *addr)).collect(),
        }
    }

    /// The listener in front of broker `node_id`, if the proxy knows that broker.
    pub fn listener(&self, node_id: i32) -> Option<SocketAddr> {
        self.listeners().get(&node_id).copied()
    }

    /// Every listener as `host:port`, comma-separated, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.listeners()
            .values()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A handle on the faults and counters, for other tasks.
    pub fn control(&self) -> ProxyControl {
        self.control.clone()
    }

    /// Closes every listener and connection, and ends every task (also done on drop).
    pub fn shutdown(&self) {
        self.control.core.shutdown();
    }
}

impl Drop for ProxyCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Deref for ProxyCluster {
    type Target = ProxyControl;

    fn deref(&self) -> &ProxyControl {
        &self.control
    }
}

/// The brokers of the cluster at `bootstrap` as (node id, host, port), asked of the first
/// bootstrap server that answers.
async fn learn_brokers(bootstrap: &str) -> Result<Vec<(i32, String, i32)>, kafkit::Error> {
    let mut last = kafkit::Error::NoBrokers;
    for server in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let conn = match Connection::connect(server, &ConnectionConfig::default()).await {
            Ok(conn) => conn,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let version = conn.version(ApiKey::Metadata)?;
        let request = MetadataRequest::default().with_topics(Some(Vec::new()));
        let response = conn.send(&request, version, LEARN_TIMEOUT).await;
        conn.close();
        return Ok(response?
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), b.port))
            .collect());
    }
    Err(last)
}

async fn accept_loop(core: Arc<Core>, listener: TcpListener, upstream: String) {
    let mut shutdown = core.shutdown.subscribe();
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of descriptors or a connection reset before accept: try again soon.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let refuse = lock(&core.faults).refuse;
        {
            let mut stats = core.stats();
            stats.connections_accepted += 1;
            *stats.accepted_by_listener.entry(local).or_default() += 1;
            if refuse {
                stats.connections_refused += 1;
            }
        }
        if refuse {
            drop(client);
            continue;
        }
        let generation = *core.cut.borrow();
        core.spawn(connection(
            core.clone(),
            client,
            upstream.clone(),
            generation,
        ));
    }
}

/// Counts a live connection for as long as it exists.
struct Live<'a>(&'a Core);

impl<'a> Live<'a> {
    fn new(core: &'a Core) -> Live<'a> {
        core.stats().live_connections += 1;
        Live(core)
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        let mut stats = self.0.stats();
        stats.live_connections = stats.live_connections.saturating_sub(1);
    }
}

/// One client connection: opens its broker connection and moves frames both ways until
/// either side closes, [`ProxyControl::cut_all`] or shutdown.
async fn connection(core: Arc<Core>, client: TcpStream, upstream: String, generation: u64) {
    let _live = Live::new(&core);
    let listener = client.local_addr().ok();
    let mut cut = core.cut.subscribe();
    let mut shutdown = core.shutdown.subscribe();
    let broker = tokio::select! {
        broker = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(&upstream)) => {
            match broker {
                Ok(Ok(broker)) => broker,
                Ok(Err(e)) => {
                    eprintln!("proxy: cannot connect to {upstream}: {e}");
                    return;
                }
                Err(_) => {
                    eprintln!("proxy: connecting to {upstream} timed out");
                    return;
                }
            }
        }
        _ = cut.wait_for(|g| *g != generation) => return,
        _ = shutdown.wait_for(|s| *s) => return,
    };
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let pending = Mutex::new(VecDeque::new());
    let (client_read, client_write) = client.into_split();
    let (broker_read, broker_write) = broker.into_split();
    tokio::select! {
        () = requests(&core, listener, client_read, broker_write, &pending) => {}
        () = responses(&core, broker_read, client_write, &pending) => {}
        _ = cut.wait_for(|g| *g != generation) => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
    // Both sockets close here, as the halves are dropped.
}

/// Client → broker: records what each request is, applies the drop rules, forwards.
async fn requests(
    core: &Arc<Core>,
    listener: Option<SocketAddr>,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    pending: &Mutex<VecDeque<Pending>>,
) {
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::new();
    loop {
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Next::Frame(frame)) => frame,
                Ok(Next::Need(_)) => break,
                Err(e) => {
                    eprintln!("proxy: bad request frame from a client: {e}");
                    return;
                }
            };
            if let Some(entry) = classify_request(core, &frame) {
                if let Some(listener) = listener {
                    *core
                        .stats()
                        .requests_by_listener
                        .entry((listener, entry.api_key))
                        .or_default() += 1;
                }
                lock(pending).push_back(entry);
            }
            core.unstalled().await;
            out.clear();
            put_frame(&mut out, &frame);
            if to.write_all(&out).await.is_err() {
                return;
            }
        }
        match from.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => core.stats().bytes_to_broker += n as u64,
        }
    }
}

/// Reads api key, version and correlation id off a request frame, counts it, and decides
/// whether its response is to be lost.
fn classify_request(core: &Core, frame: &[u8]) -> Option<Pending> {
    let header = frame.get(..8)?;
    let api_key = i16::from_be_bytes([header[0], header[1]]);
    let version = i16::from_be_bytes([header[2], header[3]]);
    let correlation_id = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    *core.stats().requests.entry(api_key).or_default() += 1;
    let mut lose = None;
    let mut faults = lock(&core.faults);
    if let Some(i) = faults.drop_rules.iter().position(|r| r.api_key == api_key) {
        let rule = &mut faults.drop_rules[i];
        if rule.skip == 0 {
            lose = Some(rule.mode);
            faults.drop_rules.remove(i);
        } else {
            rule.skip -= 1;
        }
    }
    Some(Pending {
        api_key,
        version,
        correlation_id,
        lose,
    })
}

fn put_frame(out: &mut BytesMut, frame: &[u8]) {
    // Frames come out of a FrameDecoder, so their size fits the prefix.
    out.put_u32(frame.len() as u32);
    out.extend_from_slice(frame);
}

/// Broker → client: matches each response to its request, loses, rewrites, corrupts, delays
/// or holds it as the faults say, forwards.
async fn responses(
    core: &Arc<Core>,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    pending: &Mutex<VecDeque<Pending>>,
) {
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::new();
    let mut blackholed = false;
    loop {
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Next::Frame(frame)) => frame,
                Ok(Next::Need(_)) => break,
                Err(e) => {
                    eprintln!("proxy: bad response frame from a broker: {e}");
                    return;
                }
            };
            let request = frame.get(..4).and_then(|id| {
                let id = i32::from_be_bytes([id[0], id[1], id[2], id[3]]);
                let mut pending = lock(pending);
                // Requests that get no response (Produce with acks=0) never match: skip them.
                while let Some(entry) = pending.pop_front() {
                    if entry.correlation_id == id {
                        return Some(entry);
                    }
                }
                None
            });
            if blackholed {
                continue;
            }
            let frame = match &request {
                Some(request) => match request.lose {
                    Some(mode) => {
                        core.stats().responses_dropped += 1;
                        match mode {
                            LostResponse::Cut => return,
                            LostResponse::Blackhole => {
                                blackholed = true;
                                continue;
                            }
                        }
                    }
                    None => transform(core, request, frame),
                },
                None => frame,
            };
            let delay = lock(&core.faults).delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            core.unstalled().await;
            out.clear();
            put_frame(&mut out, &frame);
            if to.write_all(&out).await.is_err() {
                return;
            }
            core.stats().bytes_to_client += out.len() as u64;
        }
        if from.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    }
}

/// The response frame as the client should see it: broker addresses rewritten, Fetch records
/// corrupted when a rule says so.
fn transform(core: &Arc<Core>, request: &Pending, frame: Bytes) -> Bytes {
    let Ok(api) = ApiKey::try_from(request.api_key) else {
        return frame;
    };
    let version = request.version;
    match api {
        ApiKey::Metadata => edit::<MetadataResponse>(core, version, frame, |core, r| {
            let mut ids = lock(&core.topic_ids);
            for topic in &r.topics {
                if let Some(name) = &topic.name {
                    if !topic.topic_id.is_nil() {
                        ids.insert(name.0.to_string(), *topic.topic_id.as_bytes());
                    }
                }
            }
            drop(ids);
            let mut changed = false;
            if version >= 13 {
                let mut faults = lock(&core.faults);
                let (code, left) = &mut faults.metadata_errors;
                if *left > 0 {
                    *left -= 1;
                    r.error_code = *code;
                    changed = true;
                    drop(faults);
                    core.stats().metadata_errors_injected += 1;
                }
            }
            for b in &mut r.brokers {
                changed |= rewrite(core, b.node_id.0, &mut b.host, &mut b.port);
            }
            changed
        }),
        ApiKey::FindCoordinator => {
            edit::<FindCoordinatorResponse>(core, version, frame, |core, r| {
                let mut changed = false;
                if r.node_id.0 >= 0 && !r.host.is_empty() {
                    changed |= rewrite(core, r.node_id.0, &mut r.host, &mut r.port);
                }
                for c in &mut r.coordinators {
                    if c.node_id.0 >= 0 && !c.host.is_empty() {
                        changed |= rewrite(core, c.node_id.0, &mut c.host, &mut c.port);
                    }
                }
                changed
            })
        }
        ApiKey::DescribeCluster => {
            edit::<DescribeClusterResponse>(core, version, frame, |core, r| {
                let mut changed = false;
                for b in &mut r.brokers {
                    changed |= rewrite(core, b.broker_id.0, &mut b.host, &mut b.port);
                }
                changed
            })
        }
        ApiKey::Produce if version >= 10 => {
            edit::<ProduceResponse>(core, version, frame, |core, r| {
                let mut changed = false;
                for e in &mut r.node_endpoints {
                    changed |= rewrite(core, e.node_id.0, &mut e.host, &mut e.port);
                }
                changed
            })
        }
        ApiKey::Fetch => {
            let wants_corruption = !lock(&core.faults).corrupt_rules.is_empty();
            if version < 16 && !wants_corruption {
                return frame;
            }
            edit::<FetchResponse>(core, version, frame, |core, r| {
                let mut changed = false;
                for e in &mut r.node_endpoints {
                    changed |= rewrite(core, e.node_id.0, &mut e.host, &mut e.port);
                }
                if wants_corruption && corrupt(core, r) {
                    core.stats().fetch_records_corrupted += 1;
                    changed = true;
                }
                changed
            })
        }
        _ => frame,
    }
}

/// Points one advertised address at its listener; whether anything changed.
fn rewrite(core: &Arc<Core>, node_id: i32, host: &mut StrBytes, port: &mut i32) -> bool {
    let Some(addr) = core.route(node_id, host.as_str(), *port) else {
        return false;
    };
    let new_host = addr.ip().to_string();
    let new_port = i32::from(addr.port());
    if host.as_str() == new_host && *port == new_port {
        return false;
    }
    *host = StrBytes::from_string(new_host);
    *port = new_port;
    true
}

/// Applies the first matching corruption rule to `response`; whether a byte was flipped.
fn corrupt(core: &Core, response: &mut FetchResponse) -> bool {
    let mut faults = lock(&core.faults);
    let ids = lock(&core.topic_ids);
    let mut hit = None;
    'rules: for (i, rule) in faults.corrupt_rules.iter().enumerate() {
        let id = ids.get(&rule.topic);
        for topic in &mut response.responses {
            let named = topic.topic.0.as_str() == rule.topic
                || id.is_some_and(|id| topic.topic_id.as_bytes() == id);
            if !named {
                continue;
            }
            for p in &mut topic.partitions {
                if p.partition_index != rule.partition {
                    continue;
                }
                let Some(records) = p.records.as_mut() else {
                    continue;
                };
                if let Some(flipped) = flip_in_first_batch(records) {
                    *records = flipped;
                    hit = Some(i);
                    break 'rules;
                }
            }
        }
    }
    match hit {
        Some(i) => {
            faults.corrupt_rules.remove(i);
            true
        }
        None => false,
    }
}

/// The records with the last byte of their first v2 batch flipped, or `None` when there is no
/// whole batch.
fn flip_in_first_batch(records: &Bytes) -> Option<Bytes> {
    // baseOffset i64, batchLength i32, partitionLeaderEpoch i32, magic i8, crc u32: 21 bytes,
    // then the CRC-covered part, which is never empty in a valid batch.
    const CRC_END: usize = 21;
    let length = records.get(8..12)?;
    let length = usize::try_from(i32::from_be_bytes([
        length[0], length[1], length[2], length[3],
    ]))
    .ok()?;
    let end = 12usize.checked_add(length)?;
    if end <= CRC_END || end > records.len() {
        return None;
    }
    let mut copy = BytesMut::from(&records[..]);
    copy[end - 1] ^= 0xff;
    Some(copy.freeze())
}

/// Decodes a response frame, lets `change` edit it, and re-encodes it behind the original
/// header bytes at the same version; the frame unchanged when `change` changed nothing.
fn edit<R>(
    core: &Arc<Core>,
    version: i16,
    frame: Bytes,
    change: impl FnOnce(&Arc<Core>, &mut R) -> bool,
) -> Bytes
where
    R: GuardedResponse + Encodable,
{
    let mut body = frame.clone();
    if decode_response_header(R::API_KEY, version, &mut body).is_err() {
        core.stats().rewrite_failures += 1;
        return frame;
    }
    let header_len = frame.len() - body.len();
    let mut response = match decode_response::<R>(version, body) {
        Ok(response) => response,
        Err(e) => {
            eprintln!("proxy: cannot decode {:?} v{version}: {e}", R::API_KEY);
            core.stats().rewrite_failures += 1;
            return frame;
        }
    };
    if !change(core, &mut response) {
        return frame;
    }
    let mut out = BytesMut::with_capacity(frame.len() + 64);
    out.extend_from_slice(&frame[..header_len]);
    if let Err(e) = response.encode(&mut out, version) {
        eprintln!("proxy: cannot re-encode {:?} v{version}: {e}", R::API_KEY);
        core.stats().rewrite_failures += 1;
        return frame;
    }
    core.stats().responses_rewritten += 1;
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(len_field: i32, total: usize) -> Bytes {
        let mut b = BytesMut::zeroed(total);
        b[8..12].copy_from_slice(&len_field.to_be_bytes());
        b.freeze()
    }

    #[test]
    fn flips_the_last_byte_of_the_first_batch_only() {
        // A 70-byte batch (length field 58) followed by a second one.
        let records = batch(58, 140);
        let flipped = flip_in_first_batch(&records).unwrap();
        let diff: Vec<usize> = (0..records.len())
            .filter(|&i| records[i] != flipped[i])
            .collect();
        assert_eq!(diff, [69]);
    }

    #[test]
    fn refuses_partial_or_bogus_batches() {
        assert!(flip_in_first_batch(&Bytes::new()).is_none());
        assert!(flip_in_first_batch(&batch(58, 60)).is_none()); // truncated
        assert!(flip_in_first_batch(&batch(-1, 80)).is_none());
        assert!(flip_in_first_batch(&batch(5, 80)).is_none()); // ends inside the CRC
    }

    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::fetch_response::{
        FetchableTopicResponse, NodeEndpoint, PartitionData,
    };
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::Decodable;

    /// A cluster proxy whose nodes 1 and 2 listen on ports 1111 and 2222 (nothing is bound).
    fn two_node_core() -> Arc<Core> {
        let listener = |port| (SocketAddr::from(([127, 0, 0, 1], port)), String::new());
        Core::new(Routing::ByNode(BTreeMap::from([
            (1, listener(1111)),
            (2, listener(2222)),
        ])))
    }

    /// A response frame: correlation id 7, then `header_tags` (raw, for header v1), then the body.
    fn frame<R: Encodable>(header_tags: &[u8], response: &R, version: i16) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i32(7);
        out.extend_from_slice(header_tags);
        response.encode(&mut out, version).unwrap();
        out.freeze()
    }

    fn pending(api: ApiKey, version: i16) -> Pending {
        Pending {
            api_key: api as i16,
            version,
            correlation_id: 7,
            lose: None,
        }
    }

    fn body<R: Decodable>(frame: &Bytes, header_len: usize, version: i16) -> R {
        let mut body = frame.slice(header_len..);
        let decoded = R::decode(&mut body, version).unwrap();
        assert!(body.is_empty());
        decoded
    }

    fn host(s: &'static str) -> StrBytes {
        StrBytes::from_static_str(s)
    }

    #[test]
    fn metadata_brokers_point_at_their_listeners_and_header_bytes_survive() {
        let core = two_node_core();
        let topic_id = [9u8; 16];
        let response = MetadataResponse::default()
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(host("broker-a.example"))
                    .with_port(9092),
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(2))
                    .with_host(host("broker-b.example"))
                    .with_port(9093)
                    .with_rack(Some(host("r1"))),
            ])
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(host("events"))))
                .with_topic_id(uuid_from(topic_id))]);
        // Header v1 with one tagged field (tag 3, two bytes), which must come through as is.
        let tags = [1, 3, 2, 0xab, 0xcd];
        let original = frame(&tags, &response, 12);
        let out = transform(&core, &pending(ApiKey::Metadata, 12), original.clone());
        assert_eq!(&out[..9], &original[..9]);
        let rewritten: MetadataResponse = body(&out, 9, 12);
        let addresses: Vec<(i32, String, i32)> = rewritten
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), b.port))
            .collect();
        assert_eq!(
            addresses,
            [
                (1, "127.0.0.1".to_owned(), 1111),
                (2, "127.0.0.1".to_owned(), 2222)
            ]
        );
        assert_eq!(rewritten.brokers[1].rack.as_deref(), Some("r1"));
        assert_eq!(rewritten.topics, response.topics);
        assert_eq!(lock(&core.topic_ids).get("events"), Some(&topic_id));
        let stats = ProxyControl { core }.stats();
        assert_eq!((stats.responses_rewritten, stats.rewrite_failures), (1, 0));

        // Already pointing at the listeners: forwarded byte for byte.
        let core = two_node_core();
        let again = transform(&core, &pending(ApiKey::Metadata, 12), out.clone());
        assert_eq!(again, out);
    }

    fn uuid_from(bytes: [u8; 16]) -> uuid::Uuid {
        uuid::Uuid::from_bytes(bytes)
    }

    #[test]
    fn coordinators_and_cluster_brokers_are_rewritten() {
        let core = two_node_core();
        // FindCoordinator v3: one coordinator at the top level (header v1, no tags).
        let old = FindCoordinatorResponse::default()
            .with_node_id(BrokerId(2))
            .with_host(host("broker-b.example"))
            .with_port(9093);
        let out = transform(
            &core,
            &pending(ApiKey::FindCoordinator, 3),
            frame(&[0], &old, 3),
        );
        let r: FindCoordinatorResponse = body(&out, 5, 3);
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 2222));
        // v4: a list; an error entry (node -1, no host) is left alone.
        let new = FindCoordinatorResponse::default().with_coordinators(vec![
            Coordinator::default()
                .with_key(host("g"))
                .with_node_id(BrokerId(1))
                .with_host(host("broker-a.example"))
                .with_port(9092),
            Coordinator::default()
                .with_key(host("h"))
                .with_node_id(BrokerId(-1))
                .with_error_code(15),
        ]);
        let out = transform(
            &core,
            &pending(ApiKey::FindCoordinator, 4),
            frame(&[0], &new, 4),
        );
        let r: FindCoordinatorResponse = body(&out, 5, 4);
        assert_eq!(
            (r.coordinators[0].host.as_str(), r.coordinators[0].port),
            ("127.0.0.1", 1111)
        );
        assert_eq!(
            (r.coordinators[1].host.as_str(), r.coordinators[1].port),
            ("", 0)
        );
        // DescribeCluster v1.
        let cluster =
            DescribeClusterResponse::default().with_brokers(vec![DescribeClusterBroker::default()
                .with_broker_id(BrokerId(2))
                .with_host(host("broker-b.example"))
                .with_port(9093)]);
        let out = transform(
            &core,
            &pending(ApiKey::DescribeCluster, 1),
            frame(&[0], &cluster, 1),
        );
        let r: DescribeClusterResponse = body(&out, 5, 1);
        assert_eq!(
            (r.brokers[0].host.as_str(), r.brokers[0].port),
            ("127.0.0.1", 2222)
        );
        assert_eq!(ProxyControl { core }.stats().rewrite_failures, 0);
    }

    #[test]
    fn fetch_node_endpoints_and_records_by_topic_id() {
        let core = two_node_core();
        let topic_id = [5u8; 16];
        lock(&core.topic_ids).insert("events".to_owned(), topic_id);
        let records = batch(58, 70);
        let response = FetchResponse::default()
            .with_node_endpoints(vec![NodeEndpoint::default()
                .with_node_id(BrokerId(1))
                .with_host(host("broker-a.example"))
                .with_port(9092)])
            .with_responses(vec![FetchableTopicResponse::default()
                .with_topic_id(uuid_from(topic_id))
                .with_partitions(vec![
                    PartitionData::default()
                        .with_partition_index(0)
                        .with_records(Some(records.clone())),
                    PartitionData::default()
                        .with_partition_index(1)
                        .with_records(Some(records.clone())),
                ])]);
        let control = ProxyControl { core: core.clone() };
        control.corrupt_fetch_records("events", 1);
        let original = frame(&[0], &response, 16);
        let out = transform(&core, &pending(ApiKey::Fetch, 16), original.clone());
        let r: FetchResponse = body(&out, 5, 16);
        assert_eq!(r.node_endpoints[0].port, 1111);
        let parts = &r.responses[0].partitions;
        assert_eq!(parts[0].records.as_ref(), Some(&records));
        let corrupted = parts[1].records.as_ref().unwrap();
        assert_eq!(corrupted[69], records[69] ^ 0xff);
        assert_eq!(&corrupted[..69], &records[..69]);
        assert_eq!(control.stats().fetch_records_corrupted, 1);
        // One-shot: the same response now only gets its endpoints rewritten.
        let out = transform(&core, &pending(ApiKey::Fetch, 16), original);
        let r: FetchResponse = body(&out, 5, 16);
        assert_eq!(
            r.responses[0].partitions[1].records.as_ref(),
            Some(&records)
        );
    }

    #[test]
    fn undecodable_responses_are_forwarded_and_counted() {
        let core = two_node_core();
        let garbage = Bytes::from_static(&[0, 0, 0, 7, 0, 0xff, 0xff]);
        let out = transform(&core, &pending(ApiKey::Metadata, 12), garbage.clone());
        assert_eq!(out, garbage);
        assert_eq!(ProxyControl { core }.stats().rewrite_failures, 1);
    }

    #[test]
    fn request_headers_are_read_at_fixed_offsets() {
        let core = Core::new(Routing::Single(SocketAddr::from(([127, 0, 0, 1], 1))));
        let control = ProxyControl { core: core.clone() };
        control.drop_response_of(ApiKey::Produce, 2, LostResponse::Cut);
        let frame = |corr: i32| {
            let mut f = vec![0, 0, 0, 9];
            f.extend_from_slice(&corr.to_be_bytes());
            f
        };
        let first = classify_request(&core, &frame(1)).unwrap();
        assert_eq!(
            (first.api_key, first.version, first.correlation_id),
            (0, 9, 1)
        );
        assert_eq!(first.lose, None);
        assert_eq!(
            classify_request(&core, &frame(2)).unwrap().lose,
            Some(LostResponse::Cut)
        );
        assert_eq!(classify_request(&core, &frame(3)).unwrap().lose, None);
        assert!(classify_request(&core, &[0, 0, 0]).is_none());
        assert_eq!(control.stats().requests_of(ApiKey::Produce), 3);
    }
}
