//! SASL mechanisms as plain state machines: bytes from the server in, bytes to send out.
//!
//! The connection (`io::sasl`) carries each message in a SaslAuthenticate request and feeds the
//! broker's answer back in; nothing here does I/O, so every mechanism is tested against
//! published vectors and hand-made servers.
//!
//! - [`plain`]: PLAIN (RFC 4616), one message;
//! - [`scram`]: SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), with the server's
//!   signature verified in constant time;
//! - [`oauthbearer`]: OAUTHBEARER (RFC 7628) with a token from the application.

pub mod oauthbearer;
pub mod plain;
pub mod scram;

/// What a mechanism wants after reading the server's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes in another SaslAuthenticate request.
    Send(Vec<u8>),
    /// The exchange is complete and the server proved what it had to.
    Done,
}

/// One authentication exchange of a SASL mechanism (a fresh one per attempt).
pub trait Authenticator: Send {
    /// The mechanism's name as Kafka spells it, e.g. `SCRAM-SHA-512`.
    fn mechanism(&self) -> &'static str;

    /// The client's first message.
    fn initial(&mut self) -> Result<Vec<u8>, SaslError>;

    /// Reads the server's answer to the last message sent.
    fn step(&mut self, server: &[u8]) -> Result<Step, SaslError>;
}

/// Why a SASL exchange failed on the client's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The server's message does not follow the mechanism's grammar.
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    /// The server's message is longer than any legitimate one.
    #[error("server message of {0} bytes is too long")]
    TooLong(usize),
    /// SCRAM: the server's nonce does not extend ours.
    #[error("the server's nonce does not start with the client's nonce")]
    NonceMismatch,
    /// SCRAM: an iteration count outside what Kafka allows.
    #[error("iteration count {0} is outside 4096..=16384")]
    Iterations(u32),
    /// SCRAM: the server could not prove it knows the password (a man in the middle, or a
    /// server with other credentials).
    #[error("the server's signature is wrong")]
    ServerSignature,
    /// The server reported an error inside the mechanism (SCRAM `e=`, an OAUTHBEARER JSON
    /// status).
    #[error("server error: {0}")]
    Server(String),
    /// A message was sent after the exchange was over, or before it began.
    #[error("unexpected server message at this stage of the exchange")]
    OutOfOrder,
    /// The operating system's random generator failed (for the SCRAM nonce).
    #[error("no randomness for the nonce: {0}")]
    Random(String),
}

/// When to re-authenticate a session the broker limits to `lifetime` (KIP-368): at 85% to 95%
/// of it, by `jitter` in `0.0..1.0`, as the Java client does, so that many connections opened
/// together do not re-authenticate together.
///
/// ```
/// use std::time::Duration;
/// use kafkit::state::sasl::reauthentication_delay;
///
/// let lifetime = Duration::from_secs(100);
/// assert_eq!(reauthentication_delay(lifetime, 0.0), Duration::from_secs(85));
/// assert_eq!(reauthentication_delay(lifetime, 0.5), Duration::from_secs(90));
/// assert!(reauthentication_delay(lifetime, 0.999) < Duration::from_secs(95));
/// ```
pub fn reauthentication_delay(lifetime: std::time::Duration, jitter: f64) -> std::time::Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    lifetime.mul_f64(0.85 + 0.10 * jitter)
}
