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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{visit_requests, RequestVisitor, SUPPORTED};
    use crate::frame::{FrameDecoder, Next};
    use crate::guard::{check, Kind};
    use bytes::BufMut;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse};
    use kafka_protocol::protocol::Decodable;

    /// Every request type at every version kafkit negotiates: one frame, whose header
    /// kafka-protocol reads back at the right header version and whose body passes the guard.
    struct Frames;

    impl RequestVisitor for Frames {
        fn visit<R>(&mut self)
        where
            R: Request + Default + PartialEq + std::fmt::Debug,
        {
            let api = ApiKey::try_from(R::KEY).unwrap();
            let ours = SUPPORTED.iter().find(|s| s.key == api).unwrap().versions;
            let mut buf = BytesMut::new();
            for version in ours.min..=ours.max {
                for (correlation_id, client_id) in [(7, Some("kafkit")), (-3, None)] {
                    buf.clear();
                    encode_request(&mut buf, version, correlation_id, client_id, &R::default())
                        .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
                    let Ok(Next::Frame(mut frame)) = FrameDecoder::new().decode(&mut buf) else {
                        panic!("{api:?} v{version}: not exactly one frame");
                    };
                    assert!(buf.is_empty());
                    let header_version = api.request_header_version(version);
                    let header = RequestHeader::decode(&mut frame, header_version).unwrap();
                    assert_eq!(header.request_api_key, R::KEY);
                    assert_eq!(header.request_api_version, version);
                    assert_eq!(header.correlation_id, correlation_id);
                    assert_eq!(header.client_id.as_deref(), client_id);
                    check(api, version, Kind::Request, &frame)
                        .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
                    assert_eq!(R::decode(&mut frame, version).unwrap(), R::default());
                    assert!(frame.is_empty());
                }
            }
        }
    }

    #[test]
    fn every_request_encodes_as_one_frame_with_the_right_header() {
        visit_requests(&mut Frames);
    }

    #[test]
    fn unsupported_request_versions_leave_the_buffer_alone() {
        let mut buf = BytesMut::from(&b"prior"[..]);
        let request = kafka_protocol::messages::HeartbeatRequest::default();
        let err = encode_request(&mut buf, 99, 1, None, &request).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::UnsupportedVersion { version: 99, .. }
        ));
        // A field the chosen version cannot carry.
        let request = request.with_group_instance_id(Some(StrBytes::from_static_str("x")));
        let err = encode_request(&mut buf, 0, 1, None, &request).unwrap_err();
        assert!(
            matches!(err, EncodeError::Invalid { version: 0, .. }),
            "{err:?}"
        );
        assert_eq!(&buf[..], b"prior");
    }

    fn response_frame(correlation_id: i32, header_tags: Option<&[u8]>, body: &[u8]) -> Bytes {
        let mut frame = BytesMut::new();
        frame.put_i32(correlation_id);
        if let Some(tags) = header_tags {
            frame.extend_from_slice(tags);
        }
        frame.extend_from_slice(body);
        frame.freeze()
    }

    fn encoded<T: Encodable>(value: &T, version: i16) -> Vec<u8> {
        let mut out = BytesMut::new();
        value.encode(&mut out, version).unwrap();
        out.to_vec()
    }

    #[test]
    fn flexible_response_headers_skip_their_tagged_fields() {
        let metadata = MetadataResponse::default().with_controller_id(3.into());
        let body = encoded(&metadata, 12);
        // Header v1: two tagged fields (tag 0, 2 bytes; tag 5, 0 bytes).
        let frame = response_frame(11, Some(&[2, 0, 2, 0xaa, 0xbb, 5, 0]), &body);
        let decoded: MetadataResponse = decode_response_frame(12, 11, frame).unwrap();
        assert_eq!(decoded, metadata);
        // Classic header v0 at version 8: no tagged fields.
        let frame = response_frame(12, None, &encoded(&metadata, 8));
        assert_eq!(
            decode_response_frame::<MetadataResponse>(8, 12, frame).unwrap(),
            metadata
        );
    }

    #[test]
    fn api_versions_responses_use_header_v0_even_when_flexible() {
        let response = ApiVersionsResponse::default().with_throttle_time_ms(4);
        let frame = response_frame(1, None, &encoded(&response, 3));
        let decoded = decode_any_response_frame(ApiKey::ApiVersions, 3, 1, frame).unwrap();
        assert_eq!(decoded, AnyResponse::ApiVersions(response));
    }

    #[test]
    fn correlation_mismatch_is_reported() {
        let frame = response_frame(5, None, &[0, 0]);
        assert_eq!(
            decode_any_response_frame(ApiKey::Heartbeat, 0, 6, frame),
            Err(DecodeError::CorrelationMismatch {
                expected: 6,
                actual: 5
            })
        );
    }

    #[test]
    fn broken_headers_are_typed_errors() {
        for frame in [
            &[0, 0, 1][..],                              // short correlation id
            &[0, 0, 0, 1],                               // v1 header with no tag count
            &[0, 0, 0, 1, 1, 0, 9, 0],                   // tagged field longer than the frame
            &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff], // runaway varint
        ] {
            let err =
                decode_any_response_frame(ApiKey::Metadata, 12, 1, Bytes::copy_from_slice(frame))
                    .unwrap_err();
            assert!(
                matches!(err, DecodeError::Header { .. }),
                "{frame:?}: {err:?}"
            );
        }
    }
}
