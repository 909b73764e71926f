//! Every request kafkit builds, encoded at every version of kafkit's range in
//! [`SUPPORTED`] (which covers what Kafka 3.9 and 4.x may negotiate: the broker picks the
//! highest version both sides speak, and 3.9 still accepts the oldest ones), so a field set
//! outside the versions that carry it fails here and not on a live connection.
//!
//! Each module that builds requests offers `encoding_samples(&mut Encoder)`: its builders
//! called the way the client calls them, in every variant (static and dynamic members, with
//! and without owned partitions, …). The test below checks that every API of [`SUPPORTED`]
//! is either covered by a sample or listed in [`NOT_SAMPLED`] with the reason.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Request;
use kafkit_wire::api::SUPPORTED;
use kafkit_wire::header::encode_request;

/// Encodes sample requests and collects what fails.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    failures: Vec<String>,
    covered: BTreeSet<i16>,
    encoded: usize,
}

impl Encoder {
    /// The versions of `api` kafkit may use (its row of [`SUPPORTED`]).
    pub(crate) fn versions(api: ApiKey) -> RangeInclusive<i16> {
        match SUPPORTED.iter().find(|s| s.key == api) {
            Some(s) => s.versions.min..=s.versions.max,
            None => panic!("{api:?} is not in kafkit_wire's SUPPORTED"),
        }
    }

    /// Encodes `request` (called `variant`) at `version` as [`crate::io::connection`] does.
    pub(crate) fn check<R: Request>(&mut self, variant: &str, version: i16, request: &R) {
        self.covered.insert(R::KEY);
        self.encoded += 1;
        let mut buf = BytesMut::new();
        if let Err(err) = encode_request(&mut buf, version, 1, Some("kafkit"), request) {
            self.failures.push(format!("{variant} v{version}: {err}"));
        }
    }

    /// Records that a builder refused `version` by design (a typed error, nothing sent).
    pub(crate) fn refused(&mut self, api: ApiKey) {
        self.covered.insert(api as i16);
    }
}

/// APIs of [`SUPPORTED`] without a sample yet, and why.
const NOT_SAMPLED: &[(ApiKey, &str)] = &[
    (ApiKey::AlterConfigs, "not built by kafkit"),
    (ApiKey::DescribeLogDirs, "not built by kafkit"),
    (ApiKey::ElectLeaders, "not built by kafkit"),
    (ApiKey::DescribeCluster, "not built by kafkit"),
    (ApiKey::DescribeTopicPartitions, "not built by kafkit"),
];

/// What every connection sends before anything else: ApiVersions, and with SASL the
/// handshake and the exchange.
fn connection_samples(enc: &mut Encoder) {
    for v in Encoder::versions(ApiKey::ApiVersions) {
        enc.check(
            "ApiVersions",
            v,
            &crate::io::connection::api_versions_request(),
        );
    }
    for v in Encoder::versions(ApiKey::SaslHandshake) {
        enc.check(
            "SaslHandshake",
            v,
            &crate::io::sasl::handshake_request("SCRAM-SHA-512"),
        );
    }
    for v in Encoder::versions(ApiKey::SaslAuthenticate) {
        let message = b"n,,n=alice,r=nonce".to_vec();
        enc.check(
            "SaslAuthenticate",
            v,
            &crate::io::sasl::authenticate_request(message),
        );
    }
}

#[test]
fn every_request_encodes_at_every_version_kafkit_may_negotiate() {
    let mut enc = Encoder::default();
    crate::state::group::member::encoding_samples(&mut enc);
    crate::state::group::commit::encoding_samples(&mut enc);
    crate::state::group::coordinator::encoding_samples(&mut enc);
    crate::state::group::consumer_member::encoding_samples(&mut enc);
    crate::admin::requests::encoding_samples(&mut enc);
    crate::state::consumer::encoding_samples(&mut enc);
    crate::io::producer::encoding_samples(&mut enc);
    crate::producer::transaction_coordinator::encoding_samples(&mut enc);
    crate::admin::transactions::encoding_samples(&mut enc);
    crate::admin::producers::encoding_samples(&mut enc);
    crate::io::cluster::encoding_samples(&mut enc);
    crate::admin::configs::encoding_samples(&mut enc);
    crate::admin::acls::encoding_samples(&mut enc);
    connection_samples(&mut enc);
    assert!(
        enc.failures.is_empty(),
        "{} of {} requests fail to encode:\n{}",
        enc.failures.len(),
        enc.encoded,
        enc.failures.join("\n")
    );
    let listed: BTreeSet<i16> = NOT_SAMPLED.iter().map(|(api, _)| *api as i16).collect();
    for api in SUPPORTED {
        let key = api.key as i16;
        assert!(
            enc.covered.contains(&key) != listed.contains(&key),
            "{:?}: needs exactly one of a sample or a NOT_SAMPLED row",
            api.key
        );
    }
}
