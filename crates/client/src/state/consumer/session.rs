//! KIP-227 incremental fetch sessions: what a node's session holds, and what the next Fetch
//! to that node must add, change or forget.
//!
//! A session starts with a full request (`session_id` 0, epoch 0). If the broker answers with
//! a non-zero session id, later requests are incremental: they carry only the partitions that
//! are new or whose fetch fields changed, and list in `forgotten_topics_data` those to drop;
//! the epoch goes up by one per request (1, 2, …, wrapping to 1). Any failure — a session
//! error (`FETCH_SESSION_ID_NOT_FOUND`, `INVALID_FETCH_SESSION_EPOCH`), another top-level
//! error, a lost response — makes the next request full again.

use std::collections::BTreeMap;

use crate::state::group::TopicPartition;

/// The fetch fields of one partition, as a session caches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPartition {
    /// The topic id (zeros when unknown; Fetch v13+ needs it).
    pub topic_id: [u8; 16],
    /// `fetch_offset`.
    pub fetch_offset: i64,
    /// `current_leader_epoch` (-1: unknown).
    pub current_leader_epoch: i32,
    /// `last_fetched_epoch` (-1: unknown).
    pub last_fetched_epoch: i32,
    /// `partition_max_bytes`.
    pub max_bytes: i32,
}

/// What to send in the next Fetch to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    /// `session_id`.
    pub session_id: i32,
    /// `session_epoch`.
    pub epoch: i32,
    /// Whether this is a full request (every wanted partition sent).
    pub full: bool,
    /// The partitions to put in the request's `topics`.
    pub send: Vec<(TopicPartition, SessionPartition)>,
    /// The partitions to put in `forgotten_topics_data` (with their topic ids).
    pub forget: Vec<(TopicPartition, [u8; 16])>,
    /// Everything the session should hold once this request succeeds.
    pub wanted: BTreeMap<TopicPartition, SessionPartition>,
}

/// One node's fetch session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSession {
    id: i32,
    epoch: i32,
    partitions: BTreeMap<TopicPartition, SessionPartition>,
}

/// Kafka's `FETCH_SESSION_ID_NOT_FOUND`.
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// Kafka's `INVALID_FETCH_SESSION_EPOCH`.
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

impl FetchSession {
    /// The session id (0: none).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The epoch of the next request (0: full).
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// What the broker's session holds (as far as we know).
    pub fn partitions(&self) -> &BTreeMap<TopicPartition, SessionPartition> {
        &self.partitions
    }

    /// The next request for the partitions `wanted` now.
    pub fn build(&self, wanted: BTreeMap<TopicPartition, SessionPartition>) -> SessionRequest {
        if self.id == 0 || self.epoch == 0 {
            return SessionRequest {
                session_id: 0,
                epoch: 0,
                full: true,
                send: wanted.iter().map(|(tp, p)| (tp.clone(), *p)).collect(),
                forget: Vec::new(),
                wanted,
            };
        }
        let send = wanted
            .iter()
            .filter(|(tp, p)| self.partitions.get(*tp) != Some(*p))
            .map(|(tp, p)| (tp.clone(), *p))
            .collect();
        let forget = self
            .partitions
            .iter()
            .filter(|(tp, _)| !wanted.contains_key(*tp))
            .map(|(tp, p)| (tp.clone(), p.topic_id))
            .collect();
        SessionRequest {
            session_id: self.id,
            epoch: self.epoch,
            full: false,
            send,
            forget,
            wanted,
        }
    }

    /// Takes in the top-level outcome of `request`: the response's `error_code` and
    /// `session_id`. Returns `true` when the response's partitions may be used.
    pub fn handle_response(
        &mut self,
        request: SessionRequest,
        error_code: i16,
        session_id: i32,
    ) -> bool {
        if error_code != 0 {
            self.reset();
            return false;
        }
        if request.full {
            self.id = session_id;
            self.epoch = if session_id == 0 { 0 } else { 1 };
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        self.partitions = request.wanted;
        true
    }

    /// Forgets the session: the next request is full. For failed requests and session errors.
    pub fn reset(&mut self) {
        *self = FetchSession::default();
    }
}
