//! Position validation after a leader change (KIP-320): before fetching a partition whose
//! position carries a leader epoch under a new leader epoch, ask the leader with
//! OffsetForLeaderEpoch where that epoch ends. An end below the position means the log was
//! truncated: the position moves back to it (or, with `auto.offset.reset=none`, a
//! `LogTruncation` error). An epoch the leader does not know is handled as out of range.

use std::collections::BTreeMap;
use std::time::Instant;

use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use super::{error_of, is_leader_error, leader_epoch, topic_name, FetchState};
use crate::config::AutoOffsetReset;
use crate::consumer::ConsumeError;
use crate::error::Error;
use crate::state::consumer::position::FetchPosition;
use crate::state::group::TopicPartition;
use crate::state::metadata::ClusterMetadata;

/// Ties an OffsetForLeaderEpoch response to its request.
#[derive(Debug)]
pub struct ValidationToken {
    node: i32,
    /// (partition, generation, position checked, current leader epoch sent)
    sent: Vec<(TopicPartition, u64, FetchPosition, i32)>,
}

impl ValidationToken {
    /// The node the request goes to.
    pub fn node(&self) -> i32 {
        self.node
    }
}

impl FetchState {
    /// OffsetForLeaderEpoch requests for the positions to validate, one per leader.
    pub fn poll_validations(
        &mut self,
        now: Instant,
        metadata: &ClusterMetadata,
    ) -> Vec<(ValidationToken, OffsetForLeaderEpochRequest)> {
        let mut by_node: BTreeMap<i32, Vec<(TopicPartition, u64, FetchPosition, i32)>> =
            BTreeMap::new();
        for (tp, s) in &mut self.partitions {
            if !s.validate || s.validate_in_flight || s.halted || s.reset.is_some() {
                continue;
            }
            if s.validate_not_before.is_some_and(|t| now < t) {
                continue;
            }
            let Some(position) = s.position else { continue };
            let Some(leader) = metadata.leader(&tp.topic, tp.partition).map(|b| b.node_id) else {
                self.wants_metadata = true;
                continue;
            };
            s.validate_in_flight = true;
            by_node.entry(leader).or_default().push((
                tp.clone(),
                s.generation,
                position,
                leader_epoch(metadata, tp),
            ));
        }
        by_node
            .into_iter()
            .map(|(node, sent)| {
                let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
                for (tp, _, position, current) in &sent {
                    let partition = OffsetForLeaderPartition::default()
                        .with_partition(tp.partition)
                        .with_current_leader_epoch(*current)
                        .with_leader_epoch(position.leader_epoch.unwrap_or(-1));
                    match topics.last_mut() {
                        Some(t) if t.topic.0.as_str() == tp.topic => t.partitions.push(partition),
                        _ => topics.push(
                            OffsetForLeaderTopic::default()
                                .with_topic(topic_name(&tp.topic))
                                .with_partitions(vec![partition]),
                        ),
                    }
                }
                let request = OffsetForLeaderEpochRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(topics);
                (ValidationToken { node, sent }, request)
            })
            .collect()
    }

    /// Takes in an OffsetForLeaderEpoch outcome.
    pub fn handle_validations(
        &mut self,
        now: Instant,
        token: ValidationToken,
        response: Result<OffsetForLeaderEpochResponse, Error>,
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
                        s.validate_in_flight = false;
                        s.validate_not_before = Some(retry_at);
                    }
                }
                self.wants_metadata = true;
                return;
            }
        };
        for (tp, generation, position, current) in token.sent {
            let answer = response
                .topics
                .iter()
                .filter(|t| t.topic.0.as_str() == tp.topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition == tp.partition);
            let reset = self.settings.auto_offset_reset;
            let Some(s) = self
                .partitions
                .get_mut(&tp)
                .filter(|s| s.generation == generation)
            else {
                continue;
            };
            s.validate_in_flight = false;
            let Some(answer) = answer else {
                s.validate_not_before = Some(retry_at);
                continue;
            };
            match error_of(answer.error_code) {
                None if answer.end_offset < 0 || answer.leader_epoch < 0 => {
                    // The leader does not know the epoch: as Java, treat it as out of range.
                    if reset == AutoOffsetReset::None {
                        s.halted = true;
                        self.errors.push_back(ConsumeError::OffsetOutOfRange {
                            topic: s.topic.clone(),
                            partition: tp.partition,
                            offset: position.offset,
                        });
                    } else {
                        let spec = match reset {
                            AutoOffsetReset::Earliest => super::OffsetSpec::Earliest,
                            _ => super::OffsetSpec::Latest,
                        };
                        s.request_reset(spec);
                        s.position = None;
                    }
                }
                None if answer.end_offset < position.offset => {
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, position = position.offset, end = answer.end_offset, "log truncation found by validation");
                    if reset == AutoOffsetReset::None {
                        s.halted = true;
                        s.validate = false;
                        self.errors.push_back(ConsumeError::LogTruncation {
                            topic: s.topic.clone(),
                            partition: tp.partition,
                            offset: position.offset,
                            divergent_offset: answer.end_offset,
                        });
                    } else {
                        s.seek(FetchPosition {
                            offset: answer.end_offset,
                            leader_epoch: Some(answer.leader_epoch),
                        });
                        s.validated_leader_epoch = Some(current);
                    }
                }
                None => {
                    s.validate = false;
                    s.validate_not_before = None;
                    s.validated_leader_epoch = Some(current);
                }
                Some(code) if code.is_retriable() || is_leader_error(code) => {
                    s.validate_not_before = Some(retry_at);
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
