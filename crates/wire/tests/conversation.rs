//! A client's first exchanges with a broker, through the public API only: frame a request,
//! cut the broker's answer out of a read buffer fed in small pieces, decode it behind the
//! guard, negotiate versions, then a Metadata round trip at the negotiated version.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafkit_wire::api::{AnyResponse, Versions};
use kafkit_wire::frame::{FrameDecoder, Next};
use kafkit_wire::guard::DecodeError;
use kafkit_wire::header::{decode_any_response_frame, decode_response_frame, encode_request};

/// What a broker would put on the wire: size, response header, body.
fn broker_frame<T: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &T) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i32(0);
    out.put_i32(correlation_id);
    if api.response_header_version(version) >= 1 {
        out.put_u8(0); // no tagged fields
    }
    body.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.freeze()
}

/// Feeds `wire` to a frame decoder three bytes at a time, as short reads would.
fn receive(wire: &[u8]) -> Bytes {
    let decoder = FrameDecoder::new();
    let mut read_buf = BytesMut::new();
    for chunk in wire.chunks(3) {
        read_buf.extend_from_slice(chunk);
        match decoder.decode(&mut read_buf).unwrap() {
            Next::Frame(frame) => {
                assert!(read_buf.is_empty());
                return frame;
            }
            Next::Need(n) => assert!(n > 0),
        }
    }
    panic!("the frame never completed");
}

#[test]
fn api_versions_then_metadata() {
    let mut out = BytesMut::new();

    // ApiVersions v3 request: header v2 (flexible).
    encode_request(
        &mut out,
        3,
        1,
        Some("kafkit"),
        &ApiVersionsRequest::default(),
    )
    .unwrap();
    let mut sent = receive(&out);
    let header = RequestHeader::decode(&mut sent, 2).unwrap();
    assert_eq!((header.request_api_key, header.correlation_id), (18, 1));

    let offered = ApiVersionsResponse::default().with_api_keys(vec![
        ApiVersion::default().with_api_key(18).with_max_version(4),
        ApiVersion::default().with_api_key(3).with_max_version(12),
    ]);
    let frame = receive(&broker_frame(ApiKey::ApiVersions, 3, 1, &offered));
    let AnyResponse::ApiVersions(answer) =
        decode_any_response_frame(ApiKey::ApiVersions, 3, 1, frame).unwrap()
    else {
        panic!("not an ApiVersions response");
    };
    let versions = Versions::from_response(&answer).unwrap();
    let metadata_version = versions.version(ApiKey::Metadata).unwrap();
    assert_eq!(metadata_version, 12);

    // Metadata at the negotiated version, into the same (reused) buffer.
    out.clear();
    encode_request(
        &mut out,
        metadata_version,
        2,
        None,
        &MetadataRequest::default(),
    )
    .unwrap();
    let cluster = MetadataResponse::default()
        .with_cluster_id(Some(StrBytes::from_static_str("c1")))
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(1.into())
            .with_host(StrBytes::from_static_str("localhost"))
            .with_port(9092)]);
    let frame = receive(&broker_frame(
        ApiKey::Metadata,
        metadata_version,
        2,
        &cluster,
    ));
    let decoded: MetadataResponse = decode_response_frame(metadata_version, 2, frame).unwrap();
    assert_eq!(decoded, cluster);
}

#[test]
fn hostile_broker_cannot_make_the_client_reserve_memory() {
    // Correlation id, then a MetadataResponse v0 claiming 2^31 - 1 brokers.
    let frame = Bytes::from_static(&[0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]);
    let err = decode_response_frame::<MetadataResponse>(0, 1, frame).unwrap_err();
    assert!(matches!(err, DecodeError::Guard(_)), "{err}");
    assert!(err.to_string().contains("MetadataResponse"), "{err}");
}
