//! [`OffsetLookup`]: the consumer's offset queries (Java's `offsetsForTimes`,
//! `beginningOffsets`, `endOffsets`), any partition, assigned or not, without I/O.
//!
//! Call order (`consumer/offsets.rs` does this until `is_done` or its deadline):
//!
//! 1. `wants_metadata` → refresh metadata for `topics()`;
//! 2. `poll_requests(&metadata)` → one ListOffsets per leader (the same request the
//!    consumer's resets send, `fetcher/resets.rs`), each sent, then `handle_response` with its
//!    [`LookupToken`];
//! 3. `is_done` → `finish`.
//!
//! A partition without a known leader, or answered with a retriable or leader error, or a
//! request that got no answer, is asked again after a metadata refresh; any other error ends
//! the lookup with [`ConsumeError::Broker`] for that partition.

use std::collections::BTreeMap;

use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::fetcher::{answer_for, error_of, is_leader_error, leader_epoch, list_offsets_request};
use super::position::OffsetSpec;
use crate::config::IsolationLevel;
use crate::consumer::ConsumeError;
use crate::error::Error;
use crate::state::group::TopicPartition;
use crate::state::metadata::ClusterMetadata;

/// An offset found by a lookup, with the timestamp of its record (Java's
/// `OffsetAndTimestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffsetAndTimestamp {
    /// The offset.
    pub offset: i64,
    /// The timestamp of the record at `offset` (ms since the epoch) for a lookup by
    /// timestamp; `-1` for the beginning and the end of a log.
    pub timestamp: i64,
    /// The leader epoch of the record at `offset`, if the broker says.
    pub leader_epoch: Option<i32>,
}

/// Ties a ListOffsets response to what it asked.
#[derive(Debug)]
pub struct LookupToken {
    node: i32,
    sent: Vec<TopicPartition>,
}

impl LookupToken {
    /// The node the request goes to.
    pub fn node(&self) -> i32 {
        self.node
    }
}

/// One offset query over many partitions. See the module documentation for the call order.
#[derive(Debug)]
pub struct OffsetLookup {
    isolation: IsolationLevel,
    timeout_ms: i32,
    /// What is still to ask, and whether it is in flight.
    pending: BTreeMap<TopicPartition, (OffsetSpec, bool)>,
    found: BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>,
    error: Option<ConsumeError>,
    wants_metadata: bool,
}

impl OffsetLookup {
    /// A lookup of each partition's `spec`, read with `isolation` (`Latest` is the last
    /// stable offset with `read_committed`); `timeout_ms` is sent to the broker.
    pub fn new(
        isolation: IsolationLevel,
        timeout_ms: i32,
        asked: impl IntoIterator<Item = (TopicPartition, OffsetSpec)>,
    ) -> Self {
        OffsetLookup {
            isolation,
            timeout_ms,
            pending: asked.into_iter().map(|(tp, s)| (tp, (s, false))).collect(),
            found: BTreeMap::new(),
            error: None,
            wants_metadata: true,
        }
    }

    /// The topics still asked about (for metadata refreshes).
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.pending.keys().map(|tp| tp.topic.clone()).collect();
        topics.dedup();
        topics
    }

    /// Whether a metadata refresh is wanted before the next `poll_requests`. Cleared by the call.
    pub fn take_wants_metadata(&mut self) -> bool {
        std::mem::take(&mut self.wants_metadata)
    }

    /// Asks for a metadata refresh (after a failed one).
    pub fn request_metadata(&mut self) {
        self.wants_metadata = true;
    }

    /// Requests for every partition not in flight whose leader is known: one per leader.
    pub fn poll_requests(
        &mut self,
        metadata: &ClusterMetadata,
    ) -> Vec<(LookupToken, ListOffsetsRequest)> {
        let mut by_node: BTreeMap<i32, Vec<(TopicPartition, OffsetSpec, i32)>> = BTreeMap::new();
        for (tp, (spec, in_flight)) in &mut self.pending {
            if *in_flight {
                continue;
            }
            let Some(leader) = metadata.leader(&tp.topic, tp.partition).map(|b| b.node_id) else {
                self.wants_metadata = true;
                continue;
            };
            *in_flight = true;
            by_node.entry(leader).or_default().push((
                tp.clone(),
                *spec,
                leader_epoch(metadata, tp),
            ));
        }
        let isolation = self.isolation.as_i8();
        by_node
            .into_iter()
            .map(|(node, parts)| {
                let asked: Vec<(&TopicPartition, OffsetSpec, i32)> =
                    parts.iter().map(|(tp, s, e)| (tp, *s, *e)).collect();
                let request = list_offsets_request(isolation, self.timeout_ms, &asked);
                let sent = parts.into_iter().map(|(tp, _, _)| tp).collect();
                (LookupToken { node, sent }, request)
            })
            .collect()
    }

    /// Takes in the outcome of a request from `poll_requests`.
    pub fn handle_response(
        &mut self,
        token: LookupToken,
        response: Result<ListOffsetsResponse, Error>,
    ) {
        for tp in &token.sent {
            if let Some((_, in_flight)) = self.pending.get_mut(tp) {
                *in_flight = false;
            }
        }
        let response = match response {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!(node = token.node, error = %err, "offset lookup failed; retrying");
                self.wants_metadata = true;
                return;
            }
        };
        for tp in token.sent {
            let answer = answer_for(&response, &tp);
            let Some(answer) = answer else {
                self.wants_metadata = true;
                continue;
            };
            let Some(&(spec, _)) = self.pending.get(&tp) else {
                continue;
            };
            match error_of(answer.error_code) {
                None if answer.offset >= 0 => {
                    self.pending.remove(&tp);
                    let found = OffsetAndTimestamp {
                        offset: answer.offset,
                        timestamp: answer.timestamp,
                        leader_epoch: (answer.leader_epoch >= 0).then_some(answer.leader_epoch),
                    };
                    self.found.insert(tp, Some(found));
                }
                // No record at or after the timestamp.
                None if matches!(spec, OffsetSpec::Timestamp(_)) => {
                    self.pending.remove(&tp);
                    self.found.insert(tp, None);
                }
                // No offset for the beginning or end yet: ask again.
                None => self.wants_metadata = true,
                Some(code) if code.is_retriable() || is_leader_error(code) => {
                    self.wants_metadata = true;
                }
                Some(code) => {
                    self.pending.remove(&tp);
                    if self.error.is_none() {
                        self.error = Some(ConsumeError::Broker {
                            topic: tp.topic.as_str().into(),
                            partition: tp.partition,
                            code,
                        });
                    }
                }
            }
        }
    }

    /// Whether every partition is answered (or one failed for good).
    pub fn is_done(&self) -> bool {
        self.error.is_some() || self.pending.is_empty()
    }

    /// The partitions not answered yet.
    pub fn pending(&self) -> Vec<TopicPartition> {
        self.pending.keys().cloned().collect()
    }

    /// The answers (`None`: no record at or after the timestamp asked), or the first error
    /// that ended the lookup.
    pub fn finish(
        self,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, ConsumeError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.found),
        }
    }
}
