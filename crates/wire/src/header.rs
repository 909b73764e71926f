//! Request and response headers, and whole frames built around them.
//!
//! A request frame is `size`, request header (v1, or v2 with tagged fields in flexible
//! versions), body. A response frame is `size`, response header (v0: correlation id; v1: plus
//! tagged fields), body. ApiVersions responses always use header v0, so that a client can read
//! the broker's answer whatever version it asked for.
//!
//! ```
//! use bytes::BytesMut;
//! use kafkit_wire::header::encode_request;
//! use kafka_protocol::messages::HeartbeatRequest;
//!
//! let mut buf = BytesMut::new();
//! let request = HeartbeatRequest::default().with_generation_id(7);
//! encode_request(&mut buf, 4, 42, Some("kafkit"), &request).unwrap();
//! // size, then api key 12, version 4, correlation id 42 ...
//! assert_eq!(&buf[4..12], &[0, 12, 0, 4, 0, 0, 0, 42]);
//! ```

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};

use crate::api::AnyResponse;
use crate::frame::{write_frame, FrameError};
use crate::guard::{decode_any_response, decode_response, DecodeError, GuardedResponse};

/// Why a request could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The version is outside what kafka-protocol can encode for this request.
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
    /// kafka-protocol refused the message (e.g. a field set that this version cannot carry).
    #[error("cannot encode {api:?} v{version}: {reason}")]
    Invalid {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
        /// The encoder's explanation.
        reason: String,
    },
    /// The API key is not one kafka-protocol knows.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// The frame would not fit the size prefix.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Appends a whole request frame to `buf`: size, request header, body.
///
/// The header version follows the API version (`request_header_version`), so flexible versions
/// get header v2 with its tagged fields. On error `buf` is left as it was.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    request: &R,
) -> Result<(), EncodeError> {
    let api = ApiKey::try_from(R::KEY).map_err(|()| EncodeError::UnknownApiKey(R::KEY))?;
    if version < R::VERSIONS.min || version > R::VERSIONS.max {
        return Err(EncodeError::UnsupportedVersion {
            api,
            version,
            min: R::VERSIONS.min,
            max: R::VERSIONS.max,
        });
    }
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|id| StrBytes::from_string(id.to_owned())));
    let header_version = api.request_header_version(version);
    // kafka-protocol reports with `anyhow`; its errors become text at this boundary.
    let invalid = |reason: String| EncodeError::Invalid {
        api,
        version,
        reason,
    };
    write_frame(buf, |buf| {
        header
            .encode(buf, header_version)
            .map_err(|e| invalid(e.to_string()))?;
        request
            .encode(buf, version)
            .map_err(|e| invalid(e.to_string()))
    })
}

/// The response header: just the correlation id (tagged fields in v1 are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The correlation id of the request this answers.
    pub correlation_id: i32,
}

/// Reads the response header of an `api`/`version` response off the front of `frame`, leaving
/// the body. Decoded by hand, with every read bounded.
pub fn decode_response_header(
    api: ApiKey,
    version: i16,
    frame: &mut Bytes,
) -> Result<ResponseHeader, DecodeError> {
    let fail = |reason| DecodeError::Header {
        api,
        version,
        reason,
    };
    if frame.remaining() < 4 {
        return Err(fail("shorter than a correlation id"));
    }
    let correlation_id = frame.get_i32();
    if api.response_header_version(version) >= 1 {
        let count = read_uvarint(frame).ok_or(fail("bad tagged field count"))?;
        for _ in 0..count {
            let _tag = read_uvarint(frame).ok_or(fail("bad tag"))?;
            let size = read_uvarint(frame).ok_or(fail("bad tagged field size"))? as usize;
            if frame.remaining() < size {
                return Err(fail("tagged field longer than the frame"));
            }
            frame.advance(size);
        }
    }
    Ok(ResponseHeader { correlation_id })
}

/// An unsigned varint of at most 5 bytes that fits in 32 bits, or `None`.
fn read_uvarint(buf: &mut Bytes) -> Option<u32> {
    let mut value = 0u32;
    for i in 0..5 {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        if i == 4 && b > 0x0f {
            return None;
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

fn check_correlation(header: ResponseHeader, expected: i32) -> Result<(), DecodeError> {
    if header.correlation_id == expected {
        Ok(())
    } else {
        Err(DecodeError::CorrelationMismatch {
            expected,
            actual: header.correlation_id,
        })
    }
}

/// Decodes a whole response frame (as [`crate::frame::FrameDecoder`] yields it, without the
/// size prefix): header, correlation id check, then the guarded body.
///
/// ```
/// use kafkit_wire::header::decode_response_frame;
/// use kafka_protocol::messages::HeartbeatResponse;
///
/// // Correlation id 9, then HeartbeatResponse v0 (error code 0).
/// let frame = bytes::Bytes::from_static(&[0, 0, 0, 9, 0, 0]);
/// let response: HeartbeatResponse = decode_response_frame(0, 9, frame.clone()).unwrap();
/// assert_eq!(response.error_code, 0);
/// assert!(decode_response_frame::<HeartbeatResponse>(0, 10, frame).is_err());
/// ```
pub fn decode_response_frame<R: GuardedResponse>(
    version: i16,
    correlation_id: i32,
    mut frame: Bytes,
) -> Result<R, DecodeError> {
    let header = decode_response_header(R::API_KEY, version, &mut frame)?;
    check_correlation(header, correlation_id)?;
    decode_response(version, frame)
}

/// [`decode_response_frame`] for an API picked at run time.
pub fn decode_any_response_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    mut frame: Bytes,
) -> Result<AnyResponse, DecodeError> {
    let header = decode_response_header(api, version, &mut frame)?;
    check_correlation(header, correlation_id)?;
    decode_any_response(api, version, frame)
}
