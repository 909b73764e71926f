//! The guard against kafka-protocol: schema-valid bytes must decode (and only consume what the
//! walk consumed), kafka-protocol's own encodings must pass, broken bytes must be refused.

use bytes::{BufMut, Bytes};
use kafka_protocol::messages::{ApiKey, MetadataResponse};
use kafka_protocol::protocol::{Decodable, Encodable, Request};

use super::schema::{Field, Message, Type};
use super::walk;
use super::{check, decode_any_response, decode_response, schema_for, GuardError, Kind, Problem};
use crate::api::{visit_requests, visit_responses, RequestVisitor, ResponseVisitor, SUPPORTED};

/// Seeds per API version for the schema-driven generator.
const SEEDS: u64 = 24;

/// Tags unknown to the schema that [`Gen`] adds to flexible structs.
#[derive(Clone, Copy)]
enum Unknown {
    /// None: kafka-protocol must then report no unknown tagged fields either.
    None,
    /// Random contents under tags 1000-1002.
    High,
    /// Garbage under every low tag number the schema does not know.
    Probe,
}

/// No unknown tagged fields anywhere in a decoded message (checked through its `Debug` form,
/// the one view every message type shares).
fn assert_no_unknown_tags(value: &impl std::fmt::Debug, what: &str) {
    let debug = format!("{value:?}");
    assert_eq!(
        debug.matches("unknown_tagged_fields: {").count(),
        debug.matches("unknown_tagged_fields: {}").count(),
        "{what}: kafka-protocol saw tags the schema knows as unknown: {debug}"
    );
}

/// Writes random but schema-valid message bodies, straight from Kafka's definitions: arrays of
/// several elements, nulls where nullable, known and unknown tagged fields.
pub(crate) struct Gen {
    state: u64,
    /// Which tags the schema does not know to add.
    unknown: Unknown,
    version: i16,
    flexible: bool,
}

impl Gen {
    pub(crate) fn new(seed: u64, message: &Message, version: i16) -> Gen {
        Gen {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03,
            unknown: match seed % 3 {
                0 => Unknown::High,
                1 => Unknown::None,
                _ => Unknown::Probe,
            },
            version,
            flexible: message.flexible.contains(version),
        }
    }

    fn next(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn random_bytes(&mut self, n: usize, out: &mut Vec<u8>) {
        for _ in 0..n {
            out.push(self.next() as u8);
        }
    }

    pub(crate) fn message(&mut self, message: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        self.fields(message.fields, &mut out);
        out
    }

    fn fields(&mut self, fields: &[Field], out: &mut Vec<u8>) {
        for f in fields {
            if f.in_line(self.version, self.flexible) {
                self.value(&f.ty, f.nullable.contains(self.version), out);
            }
        }
        if !self.flexible {
            return;
        }
        let mut tagged = Vec::new();
        for f in fields {
            if f.is_tagged_at(self.version) && self.below(3) > 0 {
                let mut value = Vec::new();
                self.value(&f.ty, f.nullable.contains(self.version), &mut value);
                tagged.push((f.tag, value));
            }
        }
        let unknown = self.unknown;
        match unknown {
            Unknown::High if self.below(4) == 0 => {
                let mut value = Vec::new();
                let len = self.below(4) as usize;
                self.random_bytes(len, &mut value);
                tagged.push((1000 + self.below(3) as u32, value));
            }
            Unknown::Probe => {
                // Low tag numbers the schema does not know at this level: if kafka-protocol
                // knew one, it would decode it from these bytes, ignoring the size, and trip.
                let known = |tag| {
                    fields
                        .iter()
                        .any(|f| f.tagged.min <= f.tagged.max && f.tag == tag)
                };
                for tag in (0..6).filter(|&t| !known(t)) {
                    tagged.push((tag, vec![0xff, 0xff, 0xff]));
                }
            }
            _ => {}
        }
        tagged.sort_by_key(|(tag, _)| *tag);
        tagged.dedup_by_key(|(tag, _)| *tag);
        uvarint(tagged.len() as u32, out);
        for (tag, value) in tagged {
            uvarint(tag, out);
            uvarint(value.len() as u32, out);
            out.extend_from_slice(&value);
        }
    }

    fn length(&mut self, len: Option<usize>, wide: bool, out: &mut Vec<u8>) {
        match (self.flexible, len) {
            (true, None) => uvarint(0, out),
            (true, Some(n)) => uvarint(n as u32 + 1, out),
            (false, None) if wide => out.put_i32(-1),
            (false, None) => out.put_i16(-1),
            (false, Some(n)) if wide => out.put_i32(n as i32),
            (false, Some(n)) => out.put_i16(n as i16),
        }
    }

    fn value(&mut self, ty: &Type, nullable: bool, out: &mut Vec<u8>) {
        let null = nullable && self.below(4) == 0;
        match ty {
            Type::Bool => out.push(self.below(2) as u8),
            Type::Int8 => self.random_bytes(1, out),
            Type::Int16 | Type::UInt16 => self.random_bytes(2, out),
            Type::Int32 | Type::UInt32 => self.random_bytes(4, out),
            Type::Int64 => self.random_bytes(8, out),
            // Finite, so the round trip can compare with `==`.
            Type::Float64 => out.put_f64(self.below(1 << 20) as f64 / 8.0),
            Type::Uuid => self.random_bytes(16, out),
            Type::String => {
                let len = (!null).then(|| self.below(6) as usize);
                self.length(len, false, out);
                for _ in 0..len.unwrap_or(0) {
                    out.push(b'a' + self.below(26) as u8);
                }
            }
            Type::Bytes | Type::Records => {
                let len = (!null).then(|| self.below(9) as usize);
                self.length(len, true, out);
                self.random_bytes(len.unwrap_or(0), out);
            }
            Type::Struct(fields) => {
                if nullable {
                    if null {
                        out.push(0xff);
                        return;
                    }
                    out.push(1);
                }
                self.fields(fields, out);
            }
            Type::Array(element) => {
                let count = (!null).then(|| self.below(4) as usize);
                self.length(count, true, out);
                for _ in 0..count.unwrap_or(0) {
                    self.value(element, false, out);
                }
            }
        }
    }
}

fn uvarint(mut value: u32, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decodes with kafka-protocol directly and insists it consumed the whole body, like the walk.
fn raw_decode<T: Decodable>(body: &[u8], version: i16, what: &str) -> T {
    let mut buf = Bytes::copy_from_slice(body);
    let value = T::decode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{what}: kafka-protocol refused schema-valid bytes: {e}"));
    assert!(
        buf.is_empty(),
        "{what}: kafka-protocol left {} bytes the guard walked",
        buf.len()
    );
    value
}

fn encode<T: Encodable>(value: &T, version: i16, what: &str) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    value
        .encode(&mut out, version)
        .unwrap_or_else(|e| panic!("{what}: encode failed: {e}"));
    out.to_vec()
}

struct RoundTrip {
    messages: usize,
}

impl ResponseVisitor for RoundTrip {
    fn visit<R>(&mut self)
    where
        R: super::GuardedResponse + Encodable + Default + PartialEq + std::fmt::Debug,
    {
        let api = R::API_KEY;
        let schema = schema_for(api, Kind::Response).expect("every API in the table has a schema");
        assert_eq!(
            (schema.valid.min, schema.valid.max),
            (R::VERSIONS.min, R::VERSIONS.max),
            "{api:?}: Kafka's validVersions vs kafka-protocol's"
        );
        for version in R::VERSIONS.min..=R::VERSIONS.max {
            let what = format!("{} v{version}", schema.name);
            // kafka-protocol's own encoding of the default message.
            let bytes = encode(&R::default(), version, &what);
            check(api, version, Kind::Response, &bytes)
                .unwrap_or_else(|e| panic!("{what}: guard refused the default encoding: {e}"));
            let decoded: R = decode_response(version, Bytes::from(bytes)).expect(&what);
            assert_eq!(decoded, R::default(), "{what}");
            self.messages += 1;

            // Schema-driven random messages.
            for seed in 0..SEEDS {
                let bytes = Gen::new(seed, schema, version).message(schema);
                check(api, version, Kind::Response, &bytes)
                    .unwrap_or_else(|e| panic!("{what} seed {seed}: guard refused: {e}"));
                let raw: R = raw_decode(&bytes, version, &what);
                let guarded: R = decode_response(version, Bytes::from(bytes)).expect(&what);
                assert_eq!(raw, guarded);
                let again = encode(&guarded, version, &what);
                check(api, version, Kind::Response, &again).unwrap_or_else(|e| {
                    panic!("{what} seed {seed}: guard refused re-encoding: {e}")
                });
                if seed % 3 == 1 {
                    // No unknown tags went in, so none may come out: kafka-protocol's tag
                    // numbers are the schema's.
                    assert_no_unknown_tags(&guarded, &what);
                    walk::walk_known_tags_only(schema, version, &again)
                        .unwrap_or_else(|e| panic!("{what} seed {seed}: tags differ: {e}"));
                }
                let twice: R = decode_response(version, Bytes::from(again)).expect(&what);
                assert_eq!(twice, guarded, "{what} seed {seed}");
                self.messages += 1;
            }
        }
    }
}

#[test]
fn every_response_version_round_trips_through_the_guard() {
    let mut visitor = RoundTrip { messages: 0 };
    visit_responses(&mut visitor);
    assert!(visitor.messages > 1000, "{} messages", visitor.messages);
}

struct RequestRoundTrip;

impl RequestVisitor for RequestRoundTrip {
    fn visit<R>(&mut self)
    where
        R: Request + Default + PartialEq + std::fmt::Debug,
    {
        let api = ApiKey::try_from(R::KEY).expect("known key");
        let schema = schema_for(api, Kind::Request).expect("every API in the table has a schema");
        // kafka-protocol leaves out a request's latest version when Kafka marks it unstable
        // (`latestVersionUnstable`); the responses keep it.
        let unstable_latest = matches!(
            api,
            ApiKey::OffsetCommit | ApiKey::OffsetFetch | ApiKey::InitProducerId
        );
        assert_eq!(
            (
                schema.valid.min,
                schema.valid.max - i16::from(unstable_latest)
            ),
            (R::VERSIONS.min, R::VERSIONS.max),
            "{api:?}: Kafka's validVersions vs kafka-protocol's"
        );
        for version in R::VERSIONS.min..=R::VERSIONS.max {
            let what = format!("{} v{version}", schema.name);
            let bytes = encode(&R::default(), version, &what);
            check(api, version, Kind::Request, &bytes)
                .unwrap_or_else(|e| panic!("{what}: guard refused the default encoding: {e}"));
            for seed in 0..SEEDS {
                let bytes = Gen::new(seed, schema, version).message(schema);
                check(api, version, Kind::Request, &bytes)
                    .unwrap_or_else(|e| panic!("{what} seed {seed}: guard refused: {e}"));
                let decoded: R = raw_decode(&bytes, version, &what);
                let again = encode(&decoded, version, &what);
                check(api, version, Kind::Request, &again).unwrap_or_else(|e| {
                    panic!("{what} seed {seed}: guard refused re-encoding: {e}")
                });
                if seed % 3 == 1 {
                    assert_no_unknown_tags(&decoded, &what);
                    walk::walk_known_tags_only(schema, version, &again)
                        .unwrap_or_else(|e| panic!("{what} seed {seed}: tags differ: {e}"));
                }
                let twice: R = raw_decode(&again, version, &what);
                assert_eq!(twice, decoded, "{what} seed {seed}");
            }
        }
    }
}

#[test]
fn every_request_version_round_trips_through_the_guard() {
    visit_requests(&mut RequestRoundTrip);
}

#[test]
fn supported_ranges_lie_within_the_schemas() {
    for api in SUPPORTED {
        for kind in [Kind::Request, Kind::Response] {
            let (min, max) = super::schema_versions(api.key, kind).expect("schema");
            assert!(
                min <= api.versions.min && api.versions.max <= max,
                "{:?}",
                api.key
            );
        }
    }
}

#[test]
fn four_hostile_bytes_of_metadata_are_refused() {
    // v0: brokers array count 0x7fffffff; kafka-protocol alone would reserve ~200 GB and abort.
    let hostile = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    let err = decode_response::<MetadataResponse>(0, hostile.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            super::DecodeError::Guard(GuardError::Malformed {
                problem: Problem::TooManyElements {
                    count: 0x7fff_ffff,
                    ..
                },
                ..
            })
        ),
        "{err:?}"
    );
    // Flexible v12: throttle time, then a compact count of u32::MAX - 1.
    let compact = Bytes::from_static(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(decode_response::<MetadataResponse>(12, compact).is_err());
    // A varint that runs past five bytes.
    let long = Bytes::from_static(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert!(matches!(
        check(ApiKey::Metadata, 12, Kind::Response, &long),
        Err(GuardError::Malformed {
            problem: Problem::BadVarint,
            ..
        })
    ));
}

#[test]
fn lengths_below_minus_one_and_unexpected_nulls_are_refused() {
    // HeartbeatResponse has no strings; use FindCoordinator v0: error code, node id, host, port.
    let negative = [0, 0, 0, 0, 0, 1, 0xff, 0xfe, 0, 0, 0, 0];
    assert!(matches!(
        check(ApiKey::FindCoordinator, 0, Kind::Response, &negative),
        Err(GuardError::Malformed {
            problem: Problem::NegativeLength(-2),
            field: "Host",
            ..
        })
    ));
    let null = [0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0];
    assert!(matches!(
        check(ApiKey::FindCoordinator, 0, Kind::Response, &null),
        Err(GuardError::Malformed {
            problem: Problem::UnexpectedNull,
            ..
        })
    ));
}

#[test]
fn trailing_bytes_and_unknown_versions_are_refused() {
    assert_eq!(
        check(ApiKey::Heartbeat, 0, Kind::Response, &[0, 0, 9]),
        Err(GuardError::TrailingBytes {
            message: "HeartbeatResponse",
            version: 0,
            trailing: 1
        })
    );
    assert_eq!(
        check(ApiKey::Heartbeat, 5, Kind::Response, &[0, 0]),
        Err(GuardError::UnsupportedVersion {
            message: "HeartbeatResponse",
            version: 5
        })
    );
    assert!(matches!(
        decode_any_response(ApiKey::Vote, 0, Bytes::new()),
        Err(super::DecodeError::Guard(GuardError::NoSchema {
            api: ApiKey::Vote,
            ..
        }))
    ));
}

#[test]
fn known_tagged_fields_must_fill_their_declared_size() {
    // ApiVersionsResponse v3: error code, empty compact api keys, throttle time, then tag 1
    // (FinalizedFeaturesEpoch, an int64) declared 9 bytes but the schema walks 8.
    let mut body = vec![0, 0, 1, 0, 0, 0, 0, 1, 1, 9];
    body.extend_from_slice(&[0; 9]);
    assert!(matches!(
        check(ApiKey::ApiVersions, 3, Kind::Response, &body),
        Err(GuardError::Malformed {
            problem: Problem::TaggedFieldSize {
                tag: 1,
                declared: 9,
                used: 8
            },
            ..
        })
    ));
    // Declared 8: fine.
    let mut ok = vec![0, 0, 1, 0, 0, 0, 0, 1, 1, 8];
    ok.extend_from_slice(&[0; 8]);
    assert!(check(ApiKey::ApiVersions, 3, Kind::Response, &ok).is_ok());
    // A tagged array inside the tag whose count exceeds the tag's own size.
    let inner = vec![0, 0, 1, 0, 0, 0, 0, 1, 0, 2, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(check(ApiKey::ApiVersions, 3, Kind::Response, &inner).is_err());
}

#[test]
fn tags_valid_only_in_later_versions_are_refused() {
    // FetchResponse v12 top level: throttle, error code, session id, empty responses, then tag 0
    // (NodeEndpoints, tagged from v16 only). kafka-protocol bails on it; so must the guard.
    let body = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1];
    assert!(matches!(
        check(ApiKey::Fetch, 12, Kind::Response, &body),
        Err(GuardError::Malformed {
            problem: Problem::TagNotInVersion(0),
            ..
        })
    ));
}

/// Every API, version and a few generated messages: every strict prefix must be refused by the
/// guard with an error, never a panic.
#[test]
fn every_truncation_is_refused() {
    for api in SUPPORTED {
        let schema = schema_for(api.key, Kind::Response).expect("schema");
        for version in schema.valid.min..=schema.valid.max {
            for seed in 0..4 {
                let bytes = Gen::new(seed, schema, version).message(schema);
                for cut in 0..bytes.len() {
                    let prefix = Bytes::copy_from_slice(&bytes[..cut]);
                    assert!(
                        check(api.key, version, Kind::Response, &prefix).is_err(),
                        "{} v{version} seed {seed} cut {cut}",
                        schema.name
                    );
                    assert!(decode_any_response(api.key, version, prefix).is_err());
                }
            }
        }
    }
}

/// Replaces each byte of generated messages (for `seeds`) with each of `replacements` and
/// decodes the result: whatever the guard lets through must decode without panicking or
/// aborting (a huge reservation would abort the test process). Returns how many got through.
fn corrupt_and_decode(seeds: std::ops::Range<u64>, replacements: &[u8]) -> usize {
    let mut passed = 0;
    for api in SUPPORTED {
        let schema = schema_for(api.key, Kind::Response).expect("schema");
        for version in schema.valid.min..=schema.valid.max {
            for seed in seeds.clone() {
                let bytes = Gen::new(seed, schema, version).message(schema);
                for at in 0..bytes.len() {
                    for &replacement in replacements {
                        let mut corrupt = bytes.clone();
                        corrupt[at] = replacement;
                        let body = Bytes::from(corrupt);
                        passed += usize::from(decode_any_response(api.key, version, body).is_ok());
                    }
                }
            }
        }
    }
    passed
}

#[test]
fn corrupted_messages_never_reach_the_decoder_unsound() {
    let passed = corrupt_and_decode(7..8, &[0x00, 0x01, 0x7f, 0x80, 0xff]);
    assert!(
        passed > 0,
        "some corruptions are still valid messages and must decode"
    );
}

/// The same over every byte value and more seeds; minutes in a debug build, so run it on
/// demand: `cargo test -p kafkit-wire --release -- --ignored`.
#[test]
#[ignore]
fn every_single_byte_corruption() {
    let all: Vec<u8> = (0..=255).collect();
    corrupt_and_decode(0..6, &all);
}

mod random_bytes {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary bytes for any API and version: an error or a value, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            index in 0..SUPPORTED.len(),
            version_offset in 0i16..20,
            body in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let api = SUPPORTED[index].key;
            let (min, max) = super::super::schema_versions(api, Kind::Response).expect("schema");
            let version = min + version_offset % (max - min + 1);
            let guarded = check(api, version, Kind::Response, &body);
            let decoded = decode_any_response(api, version, Bytes::from(body));
            prop_assert!(guarded.is_ok() || decoded.is_err());
        }

        /// Arbitrary counts and lengths at the front of a flexible message.
        #[test]
        fn hostile_varints_never_panic(head in proptest::collection::vec(0x80u8..=0xff, 0..6), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut body = vec![0, 0, 0, 0];
            body.extend_from_slice(&head);
            body.extend_from_slice(&tail);
            for version in 9..=13 {
                let _ = decode_any_response(ApiKey::Metadata, version, Bytes::from(body.clone()));
            }
        }
    }
}
