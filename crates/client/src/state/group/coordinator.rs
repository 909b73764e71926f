//! Finding a group's coordinator without I/O: the FindCoordinator request for a negotiated
//! version, what each answer means, and the cache of known coordinators.
//!
//! FindCoordinator v4+ asks for many keys at once (`coordinator_keys`, one answer per key in
//! `coordinators`); v0–3 ask for one key (`key`) and answer at the top level. Both read into
//! the same [`Lookup`] per key. [`crate::io::coordinator`] drives it.
//!
//! ```
//! use kafkit::state::group::coordinator::{find_coordinator_request, CoordinatorCache};
//!
//! let request = find_coordinator_request(&["billing", "audit"], 4)?;
//! assert_eq!(request.coordinator_keys.len(), 2);
//! let request = find_coordinator_request(&["billing"], 3)?;
//! assert_eq!(request.key.as_str(), "billing");
//! assert!(find_coordinator_request(&["billing", "audit"], 3).is_err()); // one key below v4
//!
//! let mut cache = CoordinatorCache::default();
//! cache.insert("billing", 2);
//! assert_eq!(cache.get("billing"), Some(2));
//! cache.invalidate("billing");
//! assert_eq!(cache.get("billing"), None);
//! # Ok::<(), kafkit::state::group::coordinator::LookupError>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::error::Error;

/// `key_type` of a group coordinator lookup.
pub const KEY_TYPE_GROUP: i8 = 0;

/// A coordinator as FindCoordinator names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorInfo {
    /// The coordinator's node id.
    pub node_id: i32,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: i32,
}

/// What a FindCoordinator answer says about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The coordinator.
    Found(CoordinatorInfo),
    /// Not known yet (`COORDINATOR_NOT_AVAILABLE` while `__consumer_offsets` is being
    /// created, `COORDINATOR_LOAD_IN_PROGRESS`, `NOT_COORDINATOR`, …): ask again after a
    /// backoff.
    Retry(ResponseError),
    /// A failure that asking again will not fix (`GROUP_AUTHORIZATION_FAILED`,
    /// `INVALID_REQUEST`, …).
    Failed(ResponseError, Option<String>),
}

/// A FindCoordinator request that cannot be built at the negotiated version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// Several keys below v4.
    #[error("FindCoordinator v{version} takes one key, not {keys}")]
    OneKeyOnly {
        /// The negotiated version.
        version: i16,
        /// How many keys were asked for.
        keys: usize,
    },
    /// No key at all.
    #[error("FindCoordinator needs at least one key")]
    NoKeys,
}

/// The FindCoordinator request for group coordinators of `groups` at `version`: v4+ carries
/// every key in `coordinator_keys`; v0–3 carry one (`key`).
pub fn find_coordinator_request(
    groups: &[&str],
    version: i16,
) -> Result<FindCoordinatorRequest, LookupError> {
    if groups.is_empty() {
        return Err(LookupError::NoKeys);
    }
    let request = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_GROUP);
    if version >= 4 {
        return Ok(request.with_key(StrBytes::default()).with_coordinator_keys(
            groups
                .iter()
                .map(|g| StrBytes::from_string((*g).to_owned()))
                .collect(),
        ));
    }
    let [group] = groups else {
        return Err(LookupError::OneKeyOnly {
            version,
            keys: groups.len(),
        });
    };
    Ok(request.with_key(StrBytes::from_string((*group).to_owned())))
}

/// What the answer means for one error code (0 = found).
fn classify(
    error_code: i16,
    message: Option<&StrBytes>,
    node_id: i32,
    host: &StrBytes,
    port: i32,
) -> Lookup {
    match ResponseError::try_from_code(error_code) {
        None if node_id >= 0 => Lookup::Found(CoordinatorInfo {
            node_id,
            host: host.as_str().to_owned(),
            port,
        }),
        // "No error" with no node: treat as not available yet.
        None => Lookup::Retry(ResponseError::CoordinatorNotAvailable),
        Some(code) if is_coordinator_error(code) || code.is_retriable() => Lookup::Retry(code),
        Some(code) => Lookup::Failed(code, message.map(|m| m.as_str().to_owned())),
    }
}

/// Reads a FindCoordinator response for the `groups` it asked about, at `version`. A key the
/// answer leaves out reads as [`Lookup::Retry`].
///
/// ```
/// use kafka_protocol::messages::find_coordinator_response::Coordinator;
/// use kafka_protocol::messages::{BrokerId, FindCoordinatorResponse};
/// use kafka_protocol::protocol::StrBytes;
/// use kafkit::state::group::coordinator::{lookup_results, Lookup};
///
/// let response = FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
///     .with_key(StrBytes::from_static_str("billing"))
///     .with_node_id(BrokerId(1))
///     .with_host(StrBytes::from_static_str("127.0.0.1"))
///     .with_port(9092)]);
/// let results = lookup_results(&response, &["billing"], 4);
/// assert!(matches!(&results["billing"], Lookup::Found(c) if c.node_id == 1));
/// ```
pub fn lookup_results(
    response: &FindCoordinatorResponse,
    groups: &[&str],
    version: i16,
) -> BTreeMap<String, Lookup> {
    let mut out = BTreeMap::new();
    if version >= 4 {
        for c in &response.coordinators {
            out.insert(
                c.key.as_str().to_owned(),
                classify(
                    c.error_code,
                    c.error_message.as_ref(),
                    c.node_id.0,
                    &c.host,
                    c.port,
                ),
            );
        }
    } else if let [group] = groups {
        out.insert(
            (*group).to_owned(),
            classify(
                response.error_code,
                response.error_message.as_ref(),
                response.node_id.0,
                &response.host,
                response.port,
            ),
        );
    }
    for g in groups {
        out.entry((*g).to_owned())
            .or_insert(Lookup::Retry(ResponseError::CoordinatorNotAvailable));
    }
    out.retain(|k, _| groups.contains(&k.as_str()));
    out
}

/// Whether a response error code says the coordinator must be looked up again:
/// `NOT_COORDINATOR`, `COORDINATOR_NOT_AVAILABLE`. (`COORDINATOR_LOAD_IN_PROGRESS` means the
/// right broker is loading: retry it without a new lookup.)
pub fn is_coordinator_error(code: ResponseError) -> bool {
    matches!(
        code,
        ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable
    )
}

/// What to do after a request to a coordinator failed with `err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorAction {
    /// Forget the coordinator, look it up again, retry (it moved, or the connection failed).
    Rediscover,
    /// Retry on the same coordinator after a backoff (it is loading the group).
    Retry,
    /// Give up with this error.
    Fail,
}

/// The action for a failed coordinator request.
///
/// ```
/// use kafka_protocol::error::ResponseError;
/// use kafka_protocol::messages::ApiKey;
/// use kafkit::state::group::coordinator::{coordinator_action, CoordinatorAction};
/// use kafkit::Error;
///
/// let moved = Error::Broker { api: ApiKey::DescribeGroups, code: ResponseError::NotCoordinator, message: None };
/// assert_eq!(coordinator_action(&moved), CoordinatorAction::Rediscover);
/// let loading = Error::Broker { api: ApiKey::DescribeGroups, code: ResponseError::CoordinatorLoadInProgress, message: None };
/// assert_eq!(coordinator_action(&loading), CoordinatorAction::Retry);
/// let denied = Error::Broker { api: ApiKey::DescribeGroups, code: ResponseError::GroupAuthorizationFailed, message: None };
/// assert_eq!(coordinator_action(&denied), CoordinatorAction::Fail);
/// ```
pub fn coordinator_action(err: &Error) -> CoordinatorAction {
    match err {
        Error::Broker { code, .. } if is_coordinator_error(*code) => CoordinatorAction::Rediscover,
        Error::Broker {
            code: ResponseError::RequestTimedOut,
            ..
        } => CoordinatorAction::Rediscover,
        Error::Broker { code, .. } if code.is_retriable() => CoordinatorAction::Retry,
        // The broker named as coordinator is gone from the metadata.
        Error::UnknownBroker { .. } => CoordinatorAction::Rediscover,
        // Connection failures: the coordinator may have moved with its broker.
        err if err.is_retriable() => CoordinatorAction::Rediscover,
        _ => CoordinatorAction::Fail,
    }
}

/// Known coordinators by group id.
#[derive(Debug, Clone, Default)]
pub struct CoordinatorCache {
    by_group: HashMap<String, i32>,
}

impl CoordinatorCache {
    /// The cached coordinator of `group`.
    pub fn get(&self, group: &str) -> Option<i32> {
        self.by_group.get(group).copied()
    }

    /// Remembers `node_id` as the coordinator of `group`.
    pub fn insert(&mut self, group: &str, node_id: i32) {
        self.by_group.insert(group.to_owned(), node_id);
    }

    /// Forgets the coordinator of `group` (after NOT_COORDINATOR and the like).
    pub fn invalidate(&mut self, group: &str) {
        self.by_group.remove(group);
    }

    /// Forgets every group whose coordinator is `node_id` (its connection failed).
    pub fn invalidate_node(&mut self, node_id: i32) {
        self.by_group.retain(|_, n| *n != node_id);
    }
}

/// FindCoordinator as kafkit builds it, for [`crate::request_versions`]: one group at every
/// version, several (v4+; below, the builder refuses and the caller asks one by one).
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use kafka_protocol::messages::ApiKey;
    for v in crate::request_versions::Encoder::versions(ApiKey::FindCoordinator) {
        match find_coordinator_request(&["g"], v) {
            Ok(r) => enc.check("FindCoordinator one group", v, &r),
            Err(e) => panic!("FindCoordinator one group v{v} refused: {e}"),
        }
        match find_coordinator_request(&["g", "h"], v) {
            Ok(r) => enc.check("FindCoordinator two groups", v, &r),
            Err(LookupError::OneKeyOnly { .. }) if v < 4 => enc.refused(ApiKey::FindCoordinator),
            Err(e) => panic!("FindCoordinator two groups v{v} refused: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::{ApiKey, BrokerId};
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn requests_encode_at_every_version() {
        for version in 0..=6 {
            let req = find_coordinator_request(&["g"], version).unwrap();
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, version).unwrap();
        }
        assert_eq!(
            find_coordinator_request(&["g", "h"], 2),
            Err(LookupError::OneKeyOnly {
                version: 2,
                keys: 2
            })
        );
        assert_eq!(find_coordinator_request(&[], 4), Err(LookupError::NoKeys));
    }

    fn coordinator(key: &str, node: i32, code: i16) -> Coordinator {
        Coordinator::default()
            .with_key(StrBytes::from_string(key.into()))
            .with_node_id(BrokerId(node))
            .with_host(StrBytes::from_static_str("h"))
            .with_port(9)
            .with_error_code(code)
    }

    #[test]
    fn batched_answers_classify_per_key() {
        let response = FindCoordinatorResponse::default().with_coordinators(vec![
            coordinator("a", 1, 0),
            coordinator("b", -1, 15),
            coordinator("c", -1, 14),
            coordinator("d", -1, 30),
            coordinator("e", -1, 0),
            coordinator("not-asked", 2, 0),
        ]);
        let r = lookup_results(&response, &["a", "b", "c", "d", "e", "f"], 4);
        assert_eq!(
            r["a"],
            Lookup::Found(CoordinatorInfo {
                node_id: 1,
                host: "h".into(),
                port: 9
            })
        );
        assert_eq!(
            r["b"],
            Lookup::Retry(ResponseError::CoordinatorNotAvailable)
        );
        assert_eq!(
            r["c"],
            Lookup::Retry(ResponseError::CoordinatorLoadInProgress)
        );
        assert!(matches!(
            r["d"],
            Lookup::Failed(ResponseError::GroupAuthorizationFailed, _)
        ));
        assert_eq!(
            r["e"],
            Lookup::Retry(ResponseError::CoordinatorNotAvailable)
        );
        assert_eq!(
            r["f"],
            Lookup::Retry(ResponseError::CoordinatorNotAvailable)
        );
        assert!(!r.contains_key("not-asked"));
    }

    #[test]
    fn single_key_answers() {
        let response = FindCoordinatorResponse::default()
            .with_node_id(BrokerId(3))
            .with_host(StrBytes::from_static_str("x"))
            .with_port(1);
        let r = lookup_results(&response, &["g"], 2);
        assert!(matches!(&r["g"], Lookup::Found(c) if c.node_id == 3 && c.host == "x"));
        let response = FindCoordinatorResponse::default()
            .with_node_id(BrokerId(-1))
            .with_error_code(16);
        let r = lookup_results(&response, &["g"], 0);
        assert_eq!(r["g"], Lookup::Retry(ResponseError::NotCoordinator));
    }

    #[test]
    fn actions() {
        let broker = |code| Error::Broker {
            api: ApiKey::OffsetCommit,
            code,
            message: None,
        };
        use CoordinatorAction::*;
        assert_eq!(
            coordinator_action(&broker(ResponseError::NotCoordinator)),
            Rediscover
        );
        assert_eq!(
            coordinator_action(&broker(ResponseError::CoordinatorNotAvailable)),
            Rediscover
        );
        assert_eq!(
            coordinator_action(&broker(ResponseError::CoordinatorLoadInProgress)),
            Retry
        );
        assert_eq!(
            coordinator_action(&broker(ResponseError::GroupIdNotFound)),
            Fail
        );
        assert_eq!(
            coordinator_action(&broker(ResponseError::NonEmptyGroup)),
            Fail
        );
        assert_eq!(
            coordinator_action(&Error::UnknownBroker { node_id: 3 }),
            Rediscover
        );
        assert_eq!(
            coordinator_action(&Error::ConnectionClosed {
                broker: "b".into(),
                api: ApiKey::OffsetCommit
            }),
            Rediscover
        );
        assert_eq!(coordinator_action(&Error::NoBrokers), Fail);
    }

    #[test]
    fn cache_invalidation() {
        let mut cache = CoordinatorCache::default();
        cache.insert("a", 1);
        cache.insert("b", 1);
        cache.insert("c", 2);
        cache.invalidate_node(1);
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("c"), Some(2));
    }
}
