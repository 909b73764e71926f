//! Offset lookups: ListOffsets requests for partitions awaiting a reset (`auto.offset.reset`,
//! seeks to the beginning, the end or a timestamp) and what their answers do.

use std::collections::BTreeMap;
use std::time::Instant;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse};

use super::{error_of, leader_epoch, topic_name, FetchState};
use crate::consumer::ConsumeError;
use crate::error::Error;
use crate::state::consumer::position::{FetchPosition, OffsetSpec};
use crate::state::group::TopicPartition;
use crate::state::metadata::ClusterMetadata;

/// Ties a ListOffsets response to its request.
#[derive(Debug)]
pub struct ListOffsetsToken {
    node: i32,
    /// (partition, generation, what was asked, the leader epoch it was asked under)
    sent: Vec<(TopicPartition, u64, OffsetSpec, i32)>,
}

impl ListOffsetsToken {
    /// The node the request goes to.
    pub fn node(&self) -> i32 {
        self.node
    }
}

/// The answer for `tp` in a ListOffsets response, if it has one.
pub(crate) fn answer_for<'a>(
    response: &'a ListOffsetsResponse,
    tp: &TopicPartition,
) -> Option<&'a ListOffsetsPartitionResponse> {
    response
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == tp.topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == tp.partition)
}

/// One leader's ListOffsets request: each partition with what is asked of it and the leader
/// epoch it is asked under (`-1`: none), read with `isolation` (`isolation.level` as sent).
/// Used by the resets below and by the consumer's offset queries (`lookup.rs`).
pub(crate) fn list_offsets_request(
    isolation: i8,
    timeout_ms: i32,
    parts: &[(&TopicPartition, OffsetSpec, i32)],
) -> ListOffsetsRequest {
    let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for (tp, spec, epoch) in parts {
        topics.entry(tp.topic.as_str()).or_default().push(
            ListOffsetsPartition::default()
                .with_partition_index(tp.partition)
                .with_current_leader_epoch(*epoch)
                .with_timestamp(spec.timestamp()),
        );
    }
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_timeout_ms(timeout_ms)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

impl FetchState {
    // ---- offset lookups ----

    /// ListOffsets requests for the partitions awaiting a reset, one per leader.
    pub fn poll_list_offsets(
        &mut self,
        now: Instant,
        metadata: &ClusterMetadata,
    ) -> Vec<(ListOffsetsToken, ListOffsetsRequest)> {
        let mut by_node: BTreeMap<i32, Vec<(TopicPartition, u64, OffsetSpec, i32)>> =
            BTreeMap::new();
        for (tp, s) in &mut self.partitions {
            let Some(spec) = s.reset else { continue };
            if s.reset_in_flight || s.halted || s.reset_not_before.is_some_and(|t| now < t) {
                continue;
            }
            let Some(leader) = metadata.leader(&tp.topic, tp.partition).map(|b| b.node_id) else {
                self.wants_metadata = true;
                continue;
            };
            let epoch = leader_epoch(metadata, tp);
            s.reset_in_flight = true;
            by_node
                .entry(leader)
                .or_default()
                .push((tp.clone(), s.generation, spec, epoch));
        }
        let timeout_ms =
            i32::try_from(self.settings.request_timeout.as_millis()).unwrap_or(i32::MAX);
        let isolation = self.settings.isolation_level.as_i8();
        by_node
            .into_iter()
            .map(|(node, parts)| {
                let asked: Vec<(&TopicPartition, OffsetSpec, i32)> = parts
                    .iter()
                    .map(|(tp, _, spec, epoch)| (tp, *spec, *epoch))
                    .collect();
                let request = list_offsets_request(isolation, timeout_ms, &asked);
                (ListOffsetsToken { node, sent: parts }, request)
            })
            .collect()
    }

    /// Takes in a ListOffsets outcome.
    pub fn handle_list_offsets(
        &mut self,
        now: Instant,
        token: ListOffsetsToken,
        response: Result<ListOffsetsResponse, Error>,
    ) {
        let retry_at = now + self.settings.retry_backoff;
        let response = match response {
            Ok(r) => r,
            Err(_) => {
                for (tp, generation, _, _) in &token.sent {
                    if let Some(s) = self
                        .partitions
                        .get_mut(tp)
                        .filter(|s| s.generation == *generation)
                    {
                        s.reset_in_flight = false;
                        s.reset_not_before = Some(retry_at);
                    }
                }
                self.wants_metadata = true;
                return;
            }
        };
        for (tp, generation, spec, epoch) in token.sent {
            let answer = answer_for(&response, &tp);
            let Some(s) = self
                .partitions
                .get_mut(&tp)
                .filter(|s| s.generation == generation)
            else {
                continue;
            };
            s.reset_in_flight = false;
            let Some(answer) = answer else {
                s.reset_not_before = Some(retry_at);
                continue;
            };
            match error_of(answer.error_code) {
                None if answer.offset >= 0 => {
                    s.seek(FetchPosition {
                        offset: answer.offset,
                        leader_epoch: (answer.leader_epoch >= 0).then_some(answer.leader_epoch),
                    });
                    // Fresh from the leader: nothing to validate under the epoch it was asked.
                    s.validated_leader_epoch = (epoch >= 0).then_some(epoch);
                }
                // No record at or after the timestamp: the end of the log, as `seek_to_end`.
                None if matches!(spec, OffsetSpec::Timestamp(_)) => {
                    s.reset = Some(OffsetSpec::Latest);
                }
                None => s.reset_not_before = Some(retry_at),
                Some(code) if code.is_retriable() => {
                    s.reset_not_before = Some(retry_at);
                    self.wants_metadata = true;
                }
                Some(code) => {
                    s.halted = true;
                    self.errors.push_back(ConsumeError::Broker {
                        topic: s.topic.clone(),
                        partition: tp.partition,
                        code,
                    });
                }
            }
        }
    }
}
