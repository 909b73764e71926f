//! Guarded decoding: walk first, then hand the bytes to kafka-protocol.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Message};

use super::{check, GuardError, Kind};
use crate::api::AnyResponse;

/// A response type the guard has a schema for: every response of [`crate::api::SUPPORTED`].
///
/// Sealed: the schema walked is chosen by [`GuardedResponse::API_KEY`], so an implementation
/// with the wrong key would let unchecked bytes through.
pub trait GuardedResponse: Decodable + Message + sealed::Sealed {
    /// The API this message answers.
    const API_KEY: ApiKey;
}

pub(crate) mod sealed {
    /// Keeps [`super::GuardedResponse`] to the types of kafkit's API table.
    pub trait Sealed {}
}

/// Why a response could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes failed the guard's structural walk (malformed, truncated, trailing bytes...).
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// The version is outside what kafka-protocol can decode for this API.
    #[error("{api:?} v{version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
        /// Lowest supported version.
        min: i16,
        /// Highest supported version.
        max: i16,
    },
    /// The structure was sound but kafka-protocol refused a value (e.g. a string that is not
    /// UTF-8).
    #[error("malformed {api:?} v{version}: {reason}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// The version decoded.
        version: i16,
        /// The decoder's explanation.
        reason: String,
    },
    /// The response header was cut short or malformed.
    #[error("malformed response header for {api:?} v{version}: {reason}")]
    Header {
        /// The API.
        api: ApiKey,
        /// The version of the API (not of the header).
        version: i16,
        /// What was wrong.
        reason: &'static str,
    },
    /// The response answers another request.
    #[error("correlation id mismatch: expected {expected}, got {actual}")]
    CorrelationMismatch {
        /// The correlation id of the request.
        expected: i32,
        /// The correlation id in the response header.
        actual: i32,
    },
}

/// Decodes the body of an `R` response at `version`, after the guard has proven it sound.
///
/// `body` is the message without its response header (see
/// [`crate::header::decode_response_frame`] for whole frames).
///
/// ```
/// use kafkit_wire::guard::decode_response;
/// use kafka_protocol::messages::HeartbeatResponse;
///
/// // HeartbeatResponse v1: throttle time 5 ms, error code 0.
/// let body = bytes::Bytes::from_static(&[0, 0, 0, 5, 0, 0]);
/// let response: HeartbeatResponse = decode_response(1, body).unwrap();
/// assert_eq!(response.throttle_time_ms, 5);
/// ```
pub fn decode_response<R: GuardedResponse>(version: i16, body: Bytes) -> Result<R, DecodeError> {
    let api = R::API_KEY;
    if version < R::VERSIONS.min || version > R::VERSIONS.max {
        return Err(DecodeError::UnsupportedVersion {
            api,
            version,
            min: R::VERSIONS.min,
            max: R::VERSIONS.max,
        });
    }
    check(api, version, Kind::Response, &body)?;
    let mut body = body;
    let decoded = R::decode(&mut body, version).map_err(|e| DecodeError::Malformed {
        api,
        version,
        reason: e.to_string(),
    })?;
    // The walk ended exactly at the end; a decoder that stops early reads another layout.
    if !body.is_empty() {
        return Err(DecodeError::Malformed {
            api,
            version,
            reason: format!("decoder left {} bytes the guard walked", body.len()),
        });
    }
    Ok(decoded)
}

/// Decodes the body of a response of `api` at `version`, picked at run time.
///
/// ```
/// use kafkit_wire::api::AnyResponse;
/// use kafkit_wire::guard::decode_any_response;
/// use kafka_protocol::messages::ApiKey;
///
/// let body = bytes::Bytes::from_static(&[0, 0]);
/// let response = decode_any_response(ApiKey::Heartbeat, 0, body).unwrap();
/// assert!(matches!(response, AnyResponse::Heartbeat(_)));
/// ```
pub fn decode_any_response(
    api: ApiKey,
    version: i16,
    body: Bytes,
) -> Result<AnyResponse, DecodeError> {
    AnyResponse::decode(api, version, body)
}
