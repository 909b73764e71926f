//! Version negotiation: per API, the highest version both kafkit and the broker speak.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::table::SUPPORTED;
use crate::guard::{decode_response, DecodeError};

/// Why no version of an API can be used with a broker.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// Both sides speak the API but their version ranges don't overlap.
    #[error("no common version of {api:?}: kafkit speaks {ours}, the broker {theirs}")]
    NoCommonVersion {
        /// The API.
        api: ApiKey,
        /// The versions kafkit speaks.
        ours: VersionRange,
        /// The versions the broker speaks.
        theirs: VersionRange,
    },
    /// The broker did not list the API in its ApiVersions response.
    #[error("the broker does not offer {api:?}")]
    NotOffered {
        /// The API.
        api: ApiKey,
    },
    /// kafkit does not speak the API at all (it is not in [`SUPPORTED`]).
    #[error("kafkit does not speak {api:?}")]
    NotSupported {
        /// The API.
        api: ApiKey,
    },
    /// The ApiVersions response carried an error code.
    #[error("ApiVersions failed with error code {error_code}")]
    Broker {
        /// Kafka's error code.
        error_code: i16,
    },
}

/// What negotiation settled for one API.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Use(i16),
    Disjoint { theirs: VersionRange },
    NotOffered,
}

/// The version to use for each API in [`SUPPORTED`] with one broker, built from its
/// ApiVersions response.
///
/// A broker that lacks some APIs is normal (older brokers have no ConsumerGroupHeartbeat, for
/// instance), so building never fails for one API; asking for that API's version does.
///
/// ```
/// use kafkit_wire::api::{NegotiationError, Versions};
/// use kafka_protocol::messages::{api_versions_response::ApiVersion, ApiKey, ApiVersionsResponse};
///
/// let response = ApiVersionsResponse::default().with_api_keys(vec![
///     ApiVersion::default().with_api_key(3).with_min_version(0).with_max_version(20),
///     ApiVersion::default().with_api_key(0).with_min_version(14).with_max_version(20),
/// ]);
/// let versions = Versions::from_response(&response).unwrap();
/// assert_eq!(versions.version(ApiKey::Metadata), Ok(13));
/// assert!(matches!(
///     versions.version(ApiKey::Produce),
///     Err(NegotiationError::NoCommonVersion { .. })
/// ));
/// assert_eq!(
///     versions.version(ApiKey::Fetch),
///     Err(NegotiationError::NotOffered { api: ApiKey::Fetch })
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Versions {
    /// One outcome per entry of [`SUPPORTED`], in the same order.
    outcomes: Vec<Outcome>,
}

impl Versions {
    /// Picks, per API, the highest version in both kafkit's range and the broker's.
    pub fn from_response(response: &ApiVersionsResponse) -> Result<Versions, NegotiationError> {
        if response.error_code != 0 {
            return Err(NegotiationError::Broker {
                error_code: response.error_code,
            });
        }
        let outcomes = SUPPORTED
            .iter()
            .map(|ours| {
                let key = ours.key as i16;
                let Some(theirs) = response.api_keys.iter().find(|a| a.api_key == key) else {
                    return Outcome::NotOffered;
                };
                let theirs = VersionRange {
                    min: theirs.min_version,
                    max: theirs.max_version,
                };
                let common = ours.versions.intersect(&theirs);
                if common.is_empty() {
                    Outcome::Disjoint { theirs }
                } else {
                    Outcome::Use(common.max)
                }
            })
            .collect();
        Ok(Versions { outcomes })
    }

    /// The version to use for `api`, or why there is none.
    pub fn version(&self, api: ApiKey) -> Result<i16, NegotiationError> {
        let (ours, outcome) = SUPPORTED
            .iter()
            .zip(&self.outcomes)
            .find(|(s, _)| s.key == api)
            .ok_or(NegotiationError::NotSupported { api })?;
        match *outcome {
            Outcome::Use(version) => Ok(version),
            Outcome::NotOffered => Err(NegotiationError::NotOffered { api }),
            Outcome::Disjoint { theirs } => Err(NegotiationError::NoCommonVersion {
                api,
                ours: ours.versions,
                theirs,
            }),
        }
    }

    /// Checks that every API in `apis` has a usable version, reporting the first that has none.
    pub fn require(&self, apis: &[ApiKey]) -> Result<(), NegotiationError> {
        apis.iter()
            .try_for_each(|&api| self.version(api).map(|_| ()))
    }

    /// Every API with a usable version, and that version.
    pub fn usable(&self) -> impl Iterator<Item = (ApiKey, i16)> + '_ {
        SUPPORTED
            .iter()
            .zip(&self.outcomes)
            .filter_map(|(s, o)| match o {
                Outcome::Use(v) => Some((s.key, *v)),
                _ => None,
            })
    }
}

/// The versions kafkit speaks of `api`, if it speaks it at all.
///
/// ```
/// use kafkit_wire::api::supported_versions;
/// use kafka_protocol::messages::ApiKey;
///
/// let fetch = supported_versions(ApiKey::Fetch).unwrap();
/// assert_eq!((fetch.min, fetch.max), (4, 17));
/// ```
pub fn supported_versions(api: ApiKey) -> Option<VersionRange> {
    SUPPORTED.iter().find(|s| s.key == api).map(|s| s.versions)
}

/// Decodes an ApiVersions response body sent in answer to a request at `version`.
///
/// A broker that does not speak the requested ApiVersions version answers with a **v0** body
/// carrying `UNSUPPORTED_VERSION` (35) and the versions it does speak, so when the body does not
/// parse at `version` this retries at v0, as Kafka's own client does. The header is always v0
/// for ApiVersions, whatever the version.
///
/// ```
/// use kafkit_wire::api::decode_api_versions;
///
/// // A v0 body: error 35, one API (ApiVersions 0..=2).
/// let v0 = bytes::Bytes::from_static(&[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 2]);
/// let response = decode_api_versions(4, v0).unwrap();
/// assert_eq!(response.error_code, 35);
/// assert_eq!(response.api_keys[0].max_version, 2);
/// ```
pub fn decode_api_versions(version: i16, body: Bytes) -> Result<ApiVersionsResponse, DecodeError> {
    match decode_response::<ApiVersionsResponse>(version, body.clone()) {
        Err(err) if version > 0 => decode_response(0, body).map_err(|_| err),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn broker(apis: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(
            apis.iter()
                .map(|&(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
    }

    #[test]
    fn picks_the_highest_common_version() {
        let versions = Versions::from_response(&broker(&[
            (ApiKey::Metadata, 0, 13),
            (ApiKey::Fetch, 4, 18),
            (ApiKey::Produce, 3, 7),
            (ApiKey::ApiVersions, 0, 3),
        ]))
        .unwrap();
        assert_eq!(versions.version(ApiKey::Metadata), Ok(13));
        assert_eq!(
            versions.version(ApiKey::Fetch),
            Ok(17),
            "capped at kafkit's max"
        );
        assert_eq!(
            versions.version(ApiKey::Produce),
            Ok(7),
            "capped at the broker's max"
        );
        assert_eq!(versions.version(ApiKey::ApiVersions), Ok(3));
        assert_eq!(versions.usable().count(), 4);
        assert!(versions.require(&[ApiKey::Metadata, ApiKey::Fetch]).is_ok());
    }

    #[test]
    fn disjoint_ranges_are_no_common_version() {
        let versions =
            Versions::from_response(&broker(&[(ApiKey::Produce, 0, 2), (ApiKey::Fetch, 18, 20)]))
                .unwrap();
        assert_eq!(
            versions.version(ApiKey::Produce),
            Err(NegotiationError::NoCommonVersion {
                api: ApiKey::Produce,
                ours: VersionRange { min: 3, max: 12 },
                theirs: VersionRange { min: 0, max: 2 },
            })
        );
        assert!(matches!(
            versions.version(ApiKey::Fetch),
            Err(NegotiationError::NoCommonVersion { .. })
        ));
        assert_eq!(
            versions.require(&[ApiKey::Fetch]),
            versions.version(ApiKey::Fetch).map(|_| ())
        );
        let text = versions.version(ApiKey::Produce).unwrap_err().to_string();
        assert!(text.contains("3..12") && text.contains("0..2"), "{text}");
    }

    #[test]
    fn missing_and_unsupported_apis_are_told_apart() {
        let versions = Versions::from_response(&broker(&[(ApiKey::Vote, 0, 2)])).unwrap();
        assert_eq!(
            versions.version(ApiKey::Metadata),
            Err(NegotiationError::NotOffered {
                api: ApiKey::Metadata
            })
        );
        assert_eq!(
            versions.version(ApiKey::Vote),
            Err(NegotiationError::NotSupported { api: ApiKey::Vote })
        );
    }

    #[test]
    fn broker_errors_are_reported() {
        let response = broker(&[]).with_error_code(35);
        assert_eq!(
            Versions::from_response(&response),
            Err(NegotiationError::Broker { error_code: 35 })
        );
    }

    #[test]
    fn supported_ranges_are_within_kafka_protocol() {
        for api in SUPPORTED {
            let theirs = api.key.valid_versions();
            assert!(!api.versions.is_empty(), "{:?}", api.key);
            assert!(
                theirs.min <= api.versions.min && api.versions.max <= theirs.max,
                "{:?}",
                api.key
            );
        }
        assert_eq!(supported_versions(ApiKey::Vote), None);
    }

    #[test]
    fn api_versions_falls_back_to_v0() {
        use kafka_protocol::protocol::Encodable;
        let v0 = broker(&[(ApiKey::ApiVersions, 0, 2)]).with_error_code(35);
        let mut body = bytes::BytesMut::new();
        v0.encode(&mut body, 0).unwrap();
        assert_eq!(decode_api_versions(3, body.freeze()).unwrap(), v0);
        // Garbage is still an error, reported at the version asked for.
        let err = decode_api_versions(3, Bytes::from_static(&[0xff])).unwrap_err();
        assert!(err.to_string().contains("v3"), "{err}");
    }
}
