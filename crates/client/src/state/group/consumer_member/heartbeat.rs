//! Building ConsumerGroupHeartbeat requests: every field the protocol makes optional is sent
//! only when it changed since the last request, or in a full request (joining, and the first
//! request after any error, since the broker may have missed what was sent before).

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::reconcile::IdPartitions;

/// What a member subscribes to in a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribedTopics {
    /// These topic names (sent as `SubscribedTopicNames`).
    Topics(BTreeSet<String>),
    /// Topics matching this RE2/J regular expression, resolved by the broker (sent as
    /// `SubscribedTopicRegex`; ConsumerGroupHeartbeat v1).
    Pattern(String),
}

/// The member-wide values a heartbeat carries.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a> {
    pub(crate) group_id: &'a str,
    pub(crate) member_id: &'a str,
    pub(crate) member_epoch: i32,
    pub(crate) instance_id: Option<&'a str>,
    pub(crate) rack_id: Option<&'a str>,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) server_assignor: Option<&'a str>,
    pub(crate) subscription: &'a SubscribedTopics,
    pub(crate) owned: &'a IdPartitions,
}

/// What the last requests sent, field by field (`None`: not sent since the last reset, so
/// the next request carries it).
#[derive(Debug, Clone, Default)]
pub(crate) struct SentFields {
    rebalance_timeout_ms: Option<i32>,
    rack_id: Option<Option<String>>,
    subscription: Option<SubscribedTopics>,
    server_assignor: Option<Option<String>>,
    owned: Option<IdPartitions>,
}

impl SentFields {
    /// Forgets what was sent: the next request is a full one.
    pub(crate) fn reset(&mut self) {
        *self = SentFields::default();
    }

    /// Forgets the owned partitions sent, so the next request acknowledges them again.
    pub(crate) fn resend_owned(&mut self) {
        self.owned = None;
    }

    /// Whether nothing was sent since the last reset.
    pub(crate) fn is_reset(&self) -> bool {
        self.rebalance_timeout_ms.is_none()
    }

    /// The next heartbeat: the changed fields (all after a reset), and records them as sent.
    pub(crate) fn build(&mut self, f: &Fields<'_>) -> ConsumerGroupHeartbeatRequest {
        let mut request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(f.group_id)))
            .with_member_id(str_bytes(f.member_id))
            .with_member_epoch(f.member_epoch)
            .with_instance_id(f.instance_id.map(str_bytes))
            .with_rebalance_timeout_ms(-1);
        if self.rebalance_timeout_ms != Some(f.rebalance_timeout_ms) {
            request.rebalance_timeout_ms = f.rebalance_timeout_ms;
            self.rebalance_timeout_ms = Some(f.rebalance_timeout_ms);
        }
        let rack = f.rack_id.map(str::to_owned);
        if self.rack_id.as_ref() != Some(&rack) {
            request.rack_id = rack.as_deref().map(str_bytes);
            self.rack_id = Some(rack);
        }
        if self.subscription.as_ref() != Some(f.subscription) {
            match f.subscription {
                SubscribedTopics::Topics(topics) => {
                    request.subscribed_topic_names =
                        Some(topics.iter().map(|t| TopicName(str_bytes(t))).collect());
                }
                SubscribedTopics::Pattern(regex) => {
                    request.subscribed_topic_regex = Some(str_bytes(regex));
                }
            }
            self.subscription = Some(f.subscription.clone());
        }
        let assignor = f.server_assignor.map(str::to_owned);
        if self.server_assignor.as_ref() != Some(&assignor) {
            request.server_assignor = assignor.as_deref().map(str_bytes);
            self.server_assignor = Some(assignor);
        }
        if self.owned.as_ref() != Some(f.owned) {
            request.topic_partitions = Some(
                f.owned
                    .iter()
                    .map(|(id, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(*id)
                            .with_partitions(ps.iter().copied().collect())
                    })
                    .collect(),
            );
            self.owned = Some(f.owned.clone());
        }
        request
    }
}

/// A leave request: the member id and the leave epoch (-1 dynamic, -2 static), nothing else.
pub(crate) fn leave(
    group_id: &str,
    member_id: &str,
    epoch: i32,
    instance_id: Option<&str>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(str_bytes(group_id)))
        .with_member_id(str_bytes(member_id))
        .with_member_epoch(epoch)
        .with_instance_id(instance_id.map(str_bytes))
        .with_rebalance_timeout_ms(-1)
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}
