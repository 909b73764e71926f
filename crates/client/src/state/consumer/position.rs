//! What the consumer knows of one assigned partition: its position, whether it is paused,
//! waiting for an offset reset or stopped after an error, and the log's end offsets.

use std::sync::Arc;
use std::time::Instant;

/// The next offset to fetch and the leader epoch of the last record consumed before it
/// (KIP-320; sent as `last_fetched_epoch` and committed with the offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record (or of the committed offset), if known.
    pub leader_epoch: Option<i32>,
}

impl FetchPosition {
    /// A position with no known epoch.
    pub fn new(offset: i64) -> Self {
        FetchPosition {
            offset,
            leader_epoch: None,
        }
    }
}

/// Which offset a ListOffsets lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (`auto.offset.reset=earliest`, `seek_to_beginning`).
    Earliest,
    /// The log end offset, or the last stable offset with `read_committed`
    /// (`auto.offset.reset=latest`, `seek_to_end`).
    Latest,
    /// The first offset whose timestamp is at or after this one (ms); the end of the log
    /// when there is none.
    Timestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets `timestamp` field.
    pub fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// The state of one assigned partition.
#[derive(Debug, Clone)]
pub(crate) struct PartitionState {
    /// The topic name, shared with every record returned for the partition.
    pub(crate) topic: Arc<str>,
    /// Where to fetch from; `None` until an offset is known.
    pub(crate) position: Option<FetchPosition>,
    /// A ListOffsets lookup to make before fetching.
    pub(crate) reset: Option<OffsetSpec>,
    /// Whether that lookup is in flight.
    pub(crate) reset_in_flight: bool,
    /// No reset attempt before this (after a failed one).
    pub(crate) reset_not_before: Option<Instant>,
    /// The position must be checked with OffsetForLeaderEpoch before fetching (KIP-320).
    pub(crate) validate: bool,
    /// That check is in flight.
    pub(crate) validate_in_flight: bool,
    /// No validation attempt before this (after a failed one).
    pub(crate) validate_not_before: Option<Instant>,
    /// The leader epoch (from metadata) the position is known to be good under; `None` after
    /// a seek, until fetching starts or a validation succeeds.
    pub(crate) validated_leader_epoch: Option<i32>,
    /// Paused by the application.
    pub(crate) paused: bool,
    /// Stopped after an error was reported; a seek clears it.
    pub(crate) halted: bool,
    /// A Fetch including the partition is in flight.
    pub(crate) fetch_in_flight: bool,
    /// Bumped by every seek and reset: a response or buffered fetch from an older one is
    /// stale.
    pub(crate) generation: u64,
    /// The high watermark from the last fetch response.
    pub(crate) high_watermark: Option<i64>,
    /// The last stable offset from the last fetch response.
    pub(crate) last_stable_offset: Option<i64>,
    /// The log start offset from the last fetch response.
    pub(crate) log_start_offset: Option<i64>,
    /// KIP-392: the replica a leader told us to fetch from instead (`preferred_read_replica`),
    /// until when.
    pub(crate) read_replica: Option<ReadReplica>,
}

/// A preferred read replica (KIP-392) and the time it expires (`metadata.max.age.ms` after the
/// leader named it, as Java).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadReplica {
    /// The node to fetch from.
    pub(crate) node: i32,
    /// After this, fetches go to the leader again (which may name it anew).
    pub(crate) expires: Instant,
}

impl PartitionState {
    pub(crate) fn new(topic: Arc<str>) -> Self {
        PartitionState {
            topic,
            position: None,
            reset: None,
            reset_in_flight: false,
            reset_not_before: None,
            validate: false,
            validate_in_flight: false,
            validate_not_before: None,
            validated_leader_epoch: None,
            paused: false,
            halted: false,
            fetch_in_flight: false,
            generation: 0,
            high_watermark: None,
            last_stable_offset: None,
            log_start_offset: None,
            read_replica: None,
        }
    }

    /// Moves to `position` (a seek or a completed reset): clears a pending reset and a halt,
    /// and makes every older response and buffered fetch stale.
    pub(crate) fn seek(&mut self, position: FetchPosition) {
        self.position = Some(position);
        self.reset = None;
        self.reset_in_flight = false;
        self.reset_not_before = None;
        self.clear_validation();
        self.halted = false;
        self.generation = self.generation.wrapping_add(1);
    }

    pub(crate) fn clear_validation(&mut self) {
        self.validate = false;
        self.validate_in_flight = false;
        self.validate_not_before = None;
        self.validated_leader_epoch = None;
    }

    /// Whether the position must be validated under the leader epoch `current` (from metadata)
    /// before fetching: it carries an epoch and was not checked under `current` yet. A position
    /// without an epoch takes `current` as its baseline instead (nothing to check against).
    pub(crate) fn needs_validation(&mut self, current: i32) -> bool {
        if self.validate {
            return true;
        }
        if current < 0 || self.validated_leader_epoch == Some(current) {
            return false;
        }
        match self.position.and_then(|p| p.leader_epoch) {
            Some(_) => {
                self.validate = true;
                true
            }
            None => {
                self.validated_leader_epoch = Some(current);
                false
            }
        }
    }

    /// Asks for an offset lookup before fetching again.
    pub(crate) fn request_reset(&mut self, spec: OffsetSpec) {
        self.reset = Some(spec);
        self.reset_in_flight = false;
        self.reset_not_before = None;
        self.clear_validation();
        self.halted = false;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Whether a Fetch may include the partition now (buffered data is checked by the caller).
    pub(crate) fn is_fetchable(&self) -> bool {
        self.position.is_some()
            && self.reset.is_none()
            && !self.validate
            && !self.paused
            && !self.halted
            && !self.fetch_in_flight
    }
}
