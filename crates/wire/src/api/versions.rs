//! Version negotiation: per API, the highest version both kafkit and the broker speak.

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::table::SUPPORTED;

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
