//! SASL on a connection: SaslHandshake (v1), then SaslAuthenticate round trips that carry the
//! messages of a mechanism from `state::sasl`, and re-authentication before the session the
//! broker granted expires (KIP-368).
//!
//! Authentication runs after ApiVersions, before the connection is handed out. When the broker
//! limits the session (SaslAuthenticate v1+ `session_lifetime_ms`, set by the broker's
//! `connections.max.reauth.ms` and, for OAUTHBEARER, the token's expiry), a task re-runs the
//! whole exchange (a fresh token from the provider for OAUTHBEARER) at 85-95% of the
//! lifetime, on the live connection. While it does, other requests wait to be written, so no
//! request comes between its SaslHandshake and SaslAuthenticate; requests already in flight
//! complete normally. A failed re-authentication closes the connection with
//! [`Error::Authentication`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use kafkit_wire::api::Versions;
use tracing::{debug, warn};

use super::connection::{Link, WeakLink};
use crate::config::{SaslConfig, SaslMechanism};
use crate::error::{Error, Result};
use crate::state::sasl::oauthbearer::OAuthBearer;
use crate::state::sasl::plain::Plain;
use crate::state::sasl::scram::{Scram, ScramHash};
use crate::state::sasl::{reauthentication_delay, Authenticator, SaslError, Step};

/// A mechanism that needs more round trips than this is broken (SCRAM needs two).
const MAX_ROUNDS: usize = 8;
/// UNSUPPORTED_SASL_MECHANISM.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

fn auth_error(link: &Link, mechanism: SaslMechanism, message: impl Into<String>) -> Error {
    Error::Authentication {
        broker: link.broker().to_owned(),
        mechanism: mechanism.name().to_owned(),
        message: message.into(),
    }
}

/// A fresh exchange for the configured mechanism (asks the token provider for OAUTHBEARER).
async fn authenticator(link: &Link, config: &SaslConfig) -> Result<Box<dyn Authenticator>> {
    let mechanism = config.mechanism;
    let missing = |what: &str| auth_error(link, mechanism, format!("no {what} configured"));
    let password = || {
        config
            .password
            .clone()
            .ok_or_else(|| missing("sasl.password"))
    };
    let username = || {
        config
            .username
            .clone()
            .ok_or_else(|| missing("sasl.username"))
    };
    let sasl = |e: SaslError| auth_error(link, mechanism, e.to_string());
    Ok(match mechanism {
        SaslMechanism::Plain => Box::new(Plain::new(username()?, password()?)),
        SaslMechanism::ScramSha256 => {
            Box::new(Scram::new(ScramHash::Sha256, &username()?, password()?).map_err(sasl)?)
        }
        SaslMechanism::ScramSha512 => {
            Box::new(Scram::new(ScramHash::Sha512, &username()?, password()?).map_err(sasl)?)
        }
        SaslMechanism::OAuthBearer => {
            let provider = config
                .token_provider
                .as_ref()
                .ok_or_else(|| missing("token provider"))?;
            let token = provider
                .token()
                .await
                .map_err(|e| auth_error(link, mechanism, format!("no token: {e}")))?;
            Box::new(OAuthBearer::new(token))
        }
    })
}

/// Authenticates the connection; returns the session lifetime the broker granted, if it
/// limits it. `link` must be ungated (the caller holds the gate, or nobody else can send yet).
pub(crate) async fn authenticate(
    link: &Link,
    versions: &Versions,
    config: &SaslConfig,
    timeout: Option<Duration>,
) -> Result<Option<Duration>> {
    let exchange = authenticator(link, config).await?;
    run_exchange(link, versions, config.mechanism, exchange, timeout).await
}

/// SaslHandshake, then SaslAuthenticate round trips until `exchange` is done.
async fn run_exchange(
    link: &Link,
    versions: &Versions,
    mechanism: SaslMechanism,
    mut exchange: Box<dyn Authenticator>,
    timeout: Option<Duration>,
) -> Result<Option<Duration>> {
    let negotiation = |source| Error::Negotiation {
        broker: link.broker().to_owned(),
        source,
    };
    let handshake_version = versions
        .version(ApiKey::SaslHandshake)
        .map_err(negotiation)?;
    let authenticate_version = versions
        .version(ApiKey::SaslAuthenticate)
        .map_err(negotiation)?;
    if handshake_version < 1 {
        return Err(auth_error(
            link,
            mechanism,
            "the broker does not speak SaslHandshake v1 (Kafka 1.0 or newer needed)",
        ));
    }
    let handshake = handshake_request(mechanism.name());
    let response = link.request(&handshake, handshake_version, timeout).await?;
    if response.error_code == UNSUPPORTED_SASL_MECHANISM {
        let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(auth_error(
            link,
            mechanism,
            format!(
                "the broker does not enable {mechanism} on this listener (it enables: {})",
                enabled.join(", ")
            ),
        ));
    }
    if let Err(e) = Error::check(ApiKey::SaslHandshake, response.error_code, None) {
        return Err(auth_error(link, mechanism, e.to_string()));
    }

    let sasl = |e: SaslError| auth_error(link, mechanism, e.to_string());
    let mut message = exchange.initial().map_err(sasl)?;
    for _ in 0..MAX_ROUNDS {
        let request = authenticate_request(message);
        let response = link
            .request(&request, authenticate_version, timeout)
            .await?;
        if response.error_code != 0 {
            let text = response
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .filter(|m| !m.is_empty())
                .or_else(|| {
                    Error::check(ApiKey::SaslAuthenticate, response.error_code, None)
                        .err()
                        .map(|e| e.to_string())
                })
                .unwrap_or_else(|| format!("error code {}", response.error_code));
            return Err(auth_error(link, mechanism, text));
        }
        match exchange.step(&response.auth_bytes).map_err(sasl)? {
            Step::Send(next) => message = next,
            Step::Done => {
                let lifetime = u64::try_from(response.session_lifetime_ms)
                    .ok()
                    .filter(|&ms| ms > 0)
                    .map(Duration::from_millis);
                debug!(broker = %link.broker(), %mechanism, ?lifetime, "authenticated");
                return Ok(lifetime);
            }
        }
    }
    Err(auth_error(link, mechanism, "too many SASL round trips"))
}

/// Re-authenticates the connection before each session expires, until the connection closes
/// or the broker stops limiting the session.
pub(crate) async fn reauthenticate(
    link: WeakLink,
    versions: Arc<Versions>,
    config: SaslConfig,
    mut lifetime: Duration,
    timeout: Duration,
) {
    loop {
        let jitter = getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
        tokio::time::sleep(reauthentication_delay(lifetime, jitter)).await;
        let Some(live) = link.upgrade() else { return };
        // The token (OAUTHBEARER) is fetched before other requests are held off: a slow
        // identity provider must not stall the connection.
        let outcome = match authenticator(&live, &config).await {
            Ok(exchange) => {
                let _exclusive = live.exclusive().await;
                let ungated = live.ungated();
                run_exchange(
                    &ungated,
                    &versions,
                    config.mechanism,
                    exchange,
                    Some(timeout),
                )
                .await
            }
            Err(err) => Err(err),
        };
        match outcome {
            Ok(Some(next)) => {
                debug!(broker = %live.broker(), ?next, "re-authenticated");
                lifetime = next;
            }
            Ok(None) => return,
            Err(err) => {
                warn!(broker = %live.broker(), error = %err, "re-authentication failed");
                live.poison(err);
                return;
            }
        }
    }
}

/// SaslHandshake naming `mechanism` (e.g. `SCRAM-SHA-512`).
pub(crate) fn handshake_request(mechanism: &'static str) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism))
}

/// SaslAuthenticate carrying one message of the mechanism's exchange.
pub(crate) fn authenticate_request(message: Vec<u8>) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message))
}
