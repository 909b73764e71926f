//! Errors of the client layer, with the broker and request they concern.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafkit_wire::api::NegotiationError;
use kafkit_wire::frame::FrameError;
use kafkit_wire::guard::DecodeError;
use kafkit_wire::header::EncodeError;

/// Everything that can go wrong between a request and its response.
///
/// Errors are `Clone` because one broken connection fails every request that was in flight on
/// it with the same cause.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection to a broker could not be opened.
    #[error("cannot connect to {broker}: {source}")]
    Connect {
        /// The broker's address.
        broker: String,
        /// What the operating system said.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// No host name of the bootstrap list resolved, at once (`bootstrap.resolve.timeout.ms`
    /// = 0, Java's default) or through every lookup until that timeout (KIP-909). Not
    /// retriable: the names, or the DNS, need mending. IP addresses never fail this way.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use kafkit::Error;
    ///
    /// let err = Error::BootstrapUnresolvable {
    ///     hosts: vec!["kafka.invalid:9092".into()],
    ///     after: Duration::from_secs(5),
    ///     source: Arc::new(std::io::Error::other("no such host")),
    /// };
    /// assert!(err.to_string().contains("kafka.invalid:9092"));
    /// assert!(!err.is_retriable());
    /// ```
    #[error("cannot resolve the bootstrap servers {} (looked up for {after:?}): {source}", hosts.join(","))]
    BootstrapUnresolvable {
        /// Every bootstrap `host:port` whose name did not resolve.
        hosts: Vec<String>,
        /// How long the lookups went on (zero with `bootstrap.resolve.timeout.ms` = 0).
        after: Duration,
        /// The last lookup's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Opening the connection took longer than `socket.connection.setup.timeout.ms`.
    #[error("connecting to {broker} timed out after {after:?}")]
    ConnectTimeout {
        /// The broker's address.
        broker: String,
        /// How long we waited.
        after: Duration,
    },
    /// Reading or writing the socket failed; the connection is closed.
    #[error("connection to {broker} failed: {source}")]
    Io {
        /// The broker's address.
        broker: String,
        /// What the operating system said.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The connection was closed (by the broker, by us, or after another failure) before the
    /// response arrived. For a produce request the outcome is unknown: the broker may have
    /// written the records.
    #[error("connection to {broker} closed before the response to {api:?} arrived")]
    ConnectionClosed {
        /// The broker's address.
        broker: String,
        /// The request that lost its response.
        api: ApiKey,
    },
    /// No response within `request.timeout.ms`; the connection is closed, as the Java client
    /// does, since responses on one connection arrive in order.
    #[error("{api:?} to {broker} timed out after {after:?}")]
    RequestTimedOut {
        /// The broker's address.
        broker: String,
        /// The request.
        api: ApiKey,
        /// The timeout that expired.
        after: Duration,
    },
    /// The request could not be encoded: a client bug (kafkit built a request the negotiated
    /// version cannot carry), not a broker or network problem. Not retriable; nothing was sent.
    /// Please report it with the message.
    #[error("client bug: {0}")]
    Encode(#[from] EncodeError),
    /// The broker's response could not be decoded.
    #[error("bad response from {broker}: {source}")]
    Decode {
        /// The broker's address.
        broker: String,
        /// Why decoding failed.
        #[source]
        source: DecodeError,
    },
    /// The broker sent a frame we refuse (too large, negative size).
    #[error("bad frame from {broker}: {source}")]
    Frame {
        /// The broker's address.
        broker: String,
        /// Why the frame was refused.
        #[source]
        source: FrameError,
    },
    /// The broker sent a response nobody asked for.
    #[error("unexpected response from {broker} (correlation id {correlation_id})")]
    UnexpectedResponse {
        /// The broker's address.
        broker: String,
        /// The correlation id it carried.
        correlation_id: i32,
    },
    /// The broker and kafkit share no version of an API.
    #[error("{broker}: {source}")]
    Negotiation {
        /// The broker's address.
        broker: String,
        /// Which API and why.
        #[source]
        source: NegotiationError,
    },
    /// No broker could be reached: the bootstrap list is empty.
    #[error("no brokers to connect to (bootstrap.servers is empty)")]
    NoBrokers,
    /// A node id that the cluster metadata does not list.
    #[error("broker {node_id} is not in the cluster metadata")]
    UnknownBroker {
        /// The node id asked for.
        node_id: i32,
    },
    /// SASL authentication failed: wrong credentials, a mechanism the broker does not enable,
    /// a server that could not prove it knows the password (SCRAM), no token (OAUTHBEARER).
    /// Not retriable: trying again with the same settings fails the same way.
    #[error("SASL {mechanism} authentication with {broker} failed: {message}")]
    Authentication {
        /// The broker's address.
        broker: String,
        /// The SASL mechanism, e.g. `SCRAM-SHA-512`.
        mechanism: String,
        /// Why: the broker's error message when it sent one.
        message: String,
    },
    /// TLS failed: bad settings (a CA or key file that cannot be read), a certificate that does
    /// not verify (unknown CA, wrong host name), a handshake the broker broke off (a plaintext
    /// port, often). Not retriable.
    #[error("TLS with {broker} failed: {message}")]
    Tls {
        /// The broker's address.
        broker: String,
        /// What went wrong.
        message: String,
    },
    /// The client's settings are invalid (checked when connecting).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The broker is backing off after failed connection attempts (`reconnect.backoff.ms`
    /// doubling up to `reconnect.backoff.max.ms`): no attempt is made before `until`.
    /// Nothing was sent; retry after `until` (or on another broker).
    #[error("not reconnecting to {broker} yet: {failures} failed attempt(s), next in {:?}", until.saturating_duration_since(std::time::Instant::now()))]
    Backoff {
        /// The broker's address.
        broker: String,
        /// The earliest next attempt.
        until: std::time::Instant,
        /// Consecutive failed attempts so far.
        failures: u32,
    },
    /// The connection was closed because it sat idle longer than `connections.max.idle.ms`
    /// while this request's caller held it. Nothing was sent; ask the cluster for a
    /// connection again.
    #[error("connection to {broker} was closed as idle; the request was not sent")]
    IdleClosed {
        /// The broker's address.
        broker: String,
    },
    /// The connection (`broker` set) or the whole client (`None`) was shut down or closed:
    /// the request was not sent.
    #[error("{} is shut down; the request was not sent", broker.as_deref().map_or_else(|| "the client".to_owned(), |b| format!("the connection to {b}")))]
    ShutDown {
        /// The broker's address, for one connection; `None` for the whole client.
        broker: Option<String>,
    },
    /// An admin call retried its retriable failures until `default.api.timeout.ms` passed
    /// (`state::admin_retry`, Java's `TimeoutException` from `KafkaAdminClient`); `last` is
    /// the last attempt's failure. Not retriable itself: the call already was.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use kafkit::Error;
    ///
    /// let err = Error::AdminTimeout {
    ///     call: "create_topics",
    ///     after: Duration::from_secs(60),
    ///     attempts: 12,
    ///     last: Box::new(Error::Connect {
    ///         broker: "127.0.0.1:9092".into(),
    ///         source: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
    ///     }),
    /// };
    /// assert!(err.to_string().contains("create_topics"));
    /// assert!(err.to_string().contains("cannot connect to 127.0.0.1:9092"));
    /// assert!(!err.is_retriable());
    /// ```
    #[error("admin call {call} gave up after {after:?} ({attempts} attempt(s), default.api.timeout.ms); last failure: {last}")]
    AdminTimeout {
        /// The admin call (its method's name).
        call: &'static str,
        /// How long it tried.
        after: Duration,
        /// How many attempts failed.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        last: Box<Error>,
    },
    /// The broker answered with an error code.
    #[error("{api:?} failed with {code} (error code {}){}", code.code(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The request.
        api: ApiKey,
        /// Kafka's error, by its protocol name.
        code: ResponseError,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
}

impl Error {
    /// Whether trying the same request again (after a backoff, maybe on a new connection or
    /// after refreshing metadata) can succeed.
    ///
    /// ```
    /// use kafkit::Error;
    /// use kafka_protocol::error::ResponseError;
    /// use kafka_protocol::messages::ApiKey;
    ///
    /// let stale = Error::Broker {
    ///     api: ApiKey::Produce,
    ///     code: ResponseError::NotLeaderOrFollower,
    ///     message: None,
    /// };
    /// assert!(stale.is_retriable());
    /// let fatal = Error::Broker {
    ///     api: ApiKey::Produce,
    ///     code: ResponseError::MessageTooLarge,
    ///     message: None,
    /// };
    /// assert!(!fatal.is_retriable());
    /// ```
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::Io { .. }
            | Error::ConnectionClosed { .. }
            | Error::RequestTimedOut { .. }
            | Error::Backoff { .. }
            | Error::IdleClosed { .. } => true,
            Error::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// Whether a request that failed with this error may nevertheless have been carried out by
    /// the broker (the response, not the request, was lost).
    pub fn is_outcome_unknown(&self) -> bool {
        if let Error::AdminTimeout { last, .. } = self {
            return last.is_outcome_unknown();
        }
        matches!(
            self,
            Error::Io { .. }
                | Error::ConnectionClosed { .. }
                | Error::RequestTimedOut { .. }
                | Error::Frame { .. }
                | Error::Decode { .. }
                | Error::UnexpectedResponse { .. }
        )
    }
}

impl Error {
    /// Whether this is a client bug (a request kafkit built that cannot be encoded at the
    /// negotiated version) rather than something the broker or the network did.
    pub fn is_client_bug(&self) -> bool {
        matches!(self, Error::Encode(_))
    }
}

/// A `Result` whose error is the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error for a non-zero error code in a response, or `Ok(())` for zero.
    ///
    /// ```
    /// use kafkit::Error;
    /// use kafka_protocol::messages::ApiKey;
    ///
    /// assert!(Error::check(ApiKey::Metadata, 0, None).is_ok());
    /// let err = Error::check(ApiKey::Metadata, 3, Some("no such topic")).unwrap_err();
    /// assert!(err.to_string().contains("UnknownTopicOrPartition"));
    /// ```
    pub fn check(api: ApiKey, error_code: i16, message: Option<&str>) -> Result<()> {
        match ResponseError::try_from_code(error_code) {
            None => Ok(()),
            Some(code) => Err(Error::Broker {
                api,
                code,
                message: message.map(str::to_owned),
            }),
        }
    }
}
