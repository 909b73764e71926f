//! Test harness for kafkit's integration suites: a real Kafka broker, found or started.
//!
//! Every suite that needs a broker calls [`kafka`]. When `KAFKA_BOOTSTRAP_SERVERS` is set (as
//! `scripts/test.sh` does after starting one broker for the whole run), that broker is used;
//! otherwise the first call in a process starts one with `scripts/kafka.sh start`, watched by the
//! test process so it stops when the process exits.
//!
//! Suites stay parallel-safe by naming their topics with [`unique_name`].
//!
//! Fault injection sits between the client and the real broker: [`proxy::ProxyCluster`] is a
//! loopback proxy that rewrites the broker addresses in responses so that every connection of
//! the client goes through it, and cuts, refuses, stalls, delays, loses responses or corrupts
//! fetched records on demand.
//!
//! Suites of kafkit-events that need a schema registry call [`registry()`] (Apicurio, found
//! through `SCHEMA_REGISTRY_URL` or started once per process).
//!
//! Producer suites check what they wrote with [`verify`]: an independent read-back with raw
//! Fetch requests, and an exactly-once, in-order check against the records sent.

pub mod fill;
pub mod java;
pub mod placement;
pub mod proxy;
pub mod registry;
pub mod verify;

pub use registry::registry;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A running broker (or cluster) the suites can reach.
#[derive(Debug, Clone)]
pub struct Kafka {
    /// `host:port[,host:port…]`, as `bootstrap.servers` takes it.
    pub bootstrap: String,
    /// The state directory of a broker this process started (`None` when one was given).
    pub state_dir: Option<PathBuf>,
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The shared broker for this test process: from `KAFKA_BOOTSTRAP_SERVERS`, or started once.
///
/// # Panics
/// When no broker is configured and none can be started: a test that needs a broker cannot go on.
pub fn kafka() -> &'static Kafka {
    static KAFKA: OnceLock<Kafka> = OnceLock::new();
    KAFKA.get_or_init(|| match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
        Ok(bootstrap) if !bootstrap.trim().is_empty() => Kafka {
            bootstrap: bootstrap.trim().to_owned(),
            state_dir: None,
        },
        _ => start_broker(1),
    })
}

/// Starts a broker (or a cluster of `brokers` nodes) owned by this process.
///
/// The broker is stopped by a watchdog when this process exits; call [`Kafka::stop`] to stop it
/// sooner.
///
/// # Panics
/// When the broker does not start; the script prints its log tail to stderr.
pub fn start_broker(brokers: u32) -> Kafka {
    start_broker_with(brokers, None, &[])
}

/// A cluster of one node per rack (`racks[i]` is node `i + 1`'s `broker.rack`) whose brokers
/// name a replica in the consumer's `client.rack` as the preferred read replica
/// (`replica.selector.class=RackAwareReplicaSelector`, KIP-392): `scripts/kafka.sh start
/// --racks`. Owned by this process, as [`start_broker`].
///
/// # Panics
/// When `racks` is empty or the cluster does not start.
pub fn start_broker_racks(racks: &[&str]) -> Kafka {
    assert!(!racks.is_empty(), "one rack per node, at least one");
    let brokers = u32::try_from(racks.len()).unwrap_or(u32::MAX);
    start_broker_with(brokers, None, racks)
}

/// [`start_broker`] with Kafka `version` (e.g. `"3.9.1"`: `KAFKIT_KAFKA_VERSION`), whose jars
/// `scripts/kafka.sh fetch` brings (`scripts/test.sh` fetches the versions the suites use).
///
/// # Panics
/// When the broker does not start.
pub fn start_broker_version(version: &str, brokers: u32) -> Kafka {
    start_broker_with(brokers, Some(version), &[])
}

fn start_broker_with(brokers: u32, version: Option<&str>, racks: &[&str]) -> Kafka {
    let script = repo_root().join("scripts/kafka.sh");
    let mut command = Command::new("bash");
    if let Some(version) = version {
        command.env("KAFKIT_KAFKA_VERSION", version);
    }
    // Racks only when asked for here: a KAFKIT_KAFKA_RACKS of the caller's environment does
    // not reach the other suites' clusters.
    command.env_remove("KAFKIT_KAFKA_RACKS");
    command.arg(&script).arg("start");
    if !racks.is_empty() {
        command.arg("--racks").arg(racks.join(","));
    }
    let output = command
        .arg("--brokers")
        .arg(brokers.to_string())
        .arg("--watch-pid")
        .arg(std::process::id().to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} start failed: {}",
        script.display(),
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut bootstrap = None;
    let mut state_dir = None;
    for line in stdout.lines() {
        if let Some(v) = line.strip_prefix("KAFKA_BOOTSTRAP_SERVERS=") {
            bootstrap = Some(v.trim().to_owned());
        }
        if let Some(v) = line.strip_prefix("KAFKA_STATE_DIR=") {
            state_dir = Some(PathBuf::from(v.trim()));
        }
    }
    Kafka {
        bootstrap: bootstrap
            .unwrap_or_else(|| panic!("no KAFKA_BOOTSTRAP_SERVERS line in: {stdout}")),
        state_dir,
    }
}

impl Kafka {
    /// Stops a broker this process started; does nothing for one that was given.
    pub fn stop(&self) {
        if let Some(dir) = &self.state_dir {
            let _ = Command::new("bash")
                .arg(repo_root().join("scripts/kafka.sh"))
                .arg("stop")
                .arg(dir)
                .status();
        }
    }
}

/// A name no other test, process or earlier run uses: `prefix-<pid>-<n>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A broker with secured listeners, started by [`kafka_secure`].
#[derive(Debug, Clone)]
pub struct SecureKafka {
    /// The broker itself (its PLAINTEXT listener).
    pub kafka: Kafka,
    /// `host:port` list of the SASL_PLAINTEXT listener.
    pub sasl_plaintext: String,
    /// `host:port` list of the SASL_SSL listener.
    pub sasl_ssl: String,
    /// `host:port` list of the SSL listener (it requires a client certificate when
    /// [`SecureKafka::client_cert`] is set).
    pub ssl: String,
    /// The PEM file of the CA that signed the broker's certificate.
    pub ca_pem: PathBuf,
    /// A client certificate (PEM) the SSL listener accepts, when the script could write one.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub client_key: Option<PathBuf>,
}

/// The user every SASL mechanism of [`kafka_secure`] knows.
pub const SASL_USER: &str = "alice";
/// [`SASL_USER`]'s password.
pub const SASL_PASSWORD: &str = "alice-secret";

/// A broker with SASL_PLAINTEXT, SASL_SSL and SSL listeners (`scripts/kafka.sh start
/// --security`), started once per test process and stopped when it exits.
///
/// With `KAFKIT_SECURE_STATE_DIR` set to the state dir of such a broker already running, that
/// one is used (its `env` and `security.env` files are read).
///
/// # Panics
/// When the broker does not start.
pub fn kafka_secure() -> &'static SecureKafka {
    static SECURE: OnceLock<SecureKafka> = OnceLock::new();
    SECURE.get_or_init(|| {
        if let Ok(dir) = std::env::var("KAFKIT_SECURE_STATE_DIR") {
            let dir = PathBuf::from(dir);
            let read = |name: &str| {
                std::fs::read_to_string(dir.join(name))
                    .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
            };
            let text = format!("{}{}", read("env"), read("security.env"));
            return parse_secure(&text, None);
        }
        let script = repo_root().join("scripts/kafka.sh");
        let output = Command::new("bash")
            .arg(&script)
            .args(["start", "--security", "--watch-pid"])
            .arg(std::process::id().to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "{} start --security failed: {}",
            script.display(),
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        parse_secure(&stdout, None)
    })
}

fn parse_secure(stdout: &str, state_dir: Option<PathBuf>) -> SecureKafka {
    {
        let get = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().to_owned())
        };
        let need = |key: &str| get(key).unwrap_or_else(|| panic!("no {key} line in: {stdout}"));
        SecureKafka {
            kafka: Kafka {
                bootstrap: need("KAFKA_BOOTSTRAP_SERVERS"),
                state_dir: state_dir.or_else(|| get("KAFKA_STATE_DIR").map(PathBuf::from)),
            },
            sasl_plaintext: need("KAFKA_SASL_PLAINTEXT"),
            sasl_ssl: need("KAFKA_SASL_SSL"),
            ssl: need("KAFKA_SSL"),
            ca_pem: PathBuf::from(need("KAFKA_CA_PEM")),
            client_cert: get("KAFKA_CLIENT_CERT_PEM").map(PathBuf::from),
            client_key: get("KAFKA_CLIENT_KEY_PEM").map(PathBuf::from),
        }
    }
}
