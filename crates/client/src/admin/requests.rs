//! The requests [`Admin`](super::Admin) builds, as pure functions of what is asked (and of
//! the negotiated version where the shape changes), so every one of them is encoded at every
//! version in the unit tests (`crate::request_versions`).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    BrokerId, ConsumerGroupDescribeRequest, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, OffsetDeleteRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{ListGroupsFilter, NewTopic, OffsetSpec};
use crate::state::group::TopicPartition;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn topic_name(name: &str) -> TopicName {
    TopicName(str_bytes(name))
}

/// CreateTopics for `topics`, the broker waiting up to `timeout_ms`.
pub(crate) fn create_topics(topics: &[NewTopic], timeout_ms: i32) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    CreatableTopic::default()
                        .with_name(topic_name(&t.name))
                        .with_num_partitions(t.partitions)
                        .with_replication_factor(t.replication_factor)
                        .with_configs(
                            t.configs
                                .iter()
                                .map(|(k, v)| {
                                    CreatableTopicConfig::default()
                                        .with_name(str_bytes(k))
                                        .with_value(Some(str_bytes(v)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// DeleteTopics by name at `version`: v6+ lists topic states, older versions names.
pub(crate) fn delete_topics(topics: &[&str], timeout_ms: i32, version: i16) -> DeleteTopicsRequest {
    let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    if version >= 6 {
        request.with_topics(
            topics
                .iter()
                .map(|t| DeleteTopicState::default().with_name(Some(topic_name(t))))
                .collect(),
        )
    } else {
        request.with_topic_names(topics.iter().map(|t| topic_name(t)).collect())
    }
}

/// CreatePartitions: each topic grows to its new total partition count (the broker places the
/// new replicas).
pub(crate) fn create_partitions(
    topics: &[(&str, i32)],
    timeout_ms: i32,
) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_validate_only(false)
        .with_topics(
            topics
                .iter()
                .map(|(name, count)| {
                    CreatePartitionsTopic::default()
                        .with_name(topic_name(name))
                        .with_count(*count)
                        .with_assignments(None)
                })
                .collect(),
        )
}

/// DeleteRecords of one leader's share: every record of each partition before its offset
/// (`-1`: the high watermark) is deleted.
pub(crate) fn delete_records(
    partitions: &[(&TopicPartition, i64)],
    timeout_ms: i32,
) -> DeleteRecordsRequest {
    let mut by_topic: BTreeMap<&str, Vec<DeleteRecordsPartition>> = BTreeMap::new();
    for (tp, offset) in partitions {
        by_topic.entry(tp.topic.as_str()).or_default().push(
            DeleteRecordsPartition::default()
                .with_partition_index(tp.partition)
                .with_offset(*offset),
        );
    }
    DeleteRecordsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    DeleteRecordsTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// ListOffsets of `partitions` of `topic` (one leader's share) for `spec`.
pub(crate) fn list_offsets(
    topic: &str,
    partitions: &[i32],
    spec: OffsetSpec,
    timeout_ms: i32,
) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_timeout_ms(timeout_ms)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(spec.timestamp())
                    })
                    .collect(),
            )])
}

/// ListGroups at `version`: the state filter from v4, the type filter from v5 (older
/// versions are filtered by the caller).
pub(crate) fn list_groups(filter: &ListGroupsFilter, version: i16) -> ListGroupsRequest {
    let mut request = ListGroupsRequest::default();
    if version >= 4 {
        request.states_filter = filter.states.iter().map(|s| str_bytes(s)).collect();
    }
    if version >= 5 {
        request.types_filter = filter.types.iter().map(|s| str_bytes(s)).collect();
    }
    request
}

/// DescribeGroups of `groups` (all on one coordinator).
pub(crate) fn describe_groups(groups: &[&str]) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default()
        .with_groups(groups.iter().map(|g| GroupId(str_bytes(g))).collect())
}

/// ConsumerGroupDescribe of `groups` (KIP-848 groups, all on one coordinator).
pub(crate) fn consumer_group_describe(groups: &[&str]) -> ConsumerGroupDescribeRequest {
    ConsumerGroupDescribeRequest::default()
        .with_group_ids(groups.iter().map(|g| GroupId(str_bytes(g))).collect())
}

/// DeleteGroups of `groups` (all on one coordinator).
pub(crate) fn delete_groups(groups: &[&str]) -> DeleteGroupsRequest {
    DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| GroupId(str_bytes(g))).collect())
}

/// OffsetDelete of `group`'s offsets of `partitions`.
pub(crate) fn offset_delete(group: &str, partitions: &[TopicPartition]) -> OffsetDeleteRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(tp.topic.as_str())
            .or_default()
            .push(tp.partition);
    }
    let topics = by_topic
        .iter()
        .map(|(topic, parts)| {
            OffsetDeleteRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| OffsetDeleteRequestPartition::default().with_partition_index(p))
                        .collect(),
                )
        })
        .collect();
    OffsetDeleteRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_topics(topics)
}

/// Every admin request at every version, for `crate::request_versions`.
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    use kafka_protocol::messages::ApiKey;
    let topics = [
        NewTopic::new("a", 3, 1),
        NewTopic::new("b", 1, 3).config("retention.ms", "1000"),
    ];
    for v in Encoder::versions(ApiKey::CreateTopics) {
        enc.check("CreateTopics", v, &create_topics(&topics, 30_000));
    }
    for v in Encoder::versions(ApiKey::DeleteTopics) {
        enc.check("DeleteTopics", v, &delete_topics(&["a", "b"], 30_000, v));
    }
    for v in Encoder::versions(ApiKey::ListOffsets) {
        for spec in [
            OffsetSpec::Earliest,
            OffsetSpec::Latest,
            OffsetSpec::Timestamp(1_700_000_000_000),
        ] {
            enc.check(
                &format!("admin ListOffsets {spec:?}"),
                v,
                &list_offsets("a", &[0, 2], spec, 30_000),
            );
        }
    }
    let filters = [
        ListGroupsFilter::default(),
        ListGroupsFilter {
            states: vec!["Stable".into()],
            types: vec!["consumer".into(), "classic".into()],
        },
    ];
    for v in Encoder::versions(ApiKey::ListGroups) {
        for filter in &filters {
            enc.check("ListGroups", v, &list_groups(filter, v));
        }
    }
    for v in Encoder::versions(ApiKey::DescribeGroups) {
        enc.check("DescribeGroups", v, &describe_groups(&["g"]));
        enc.check("DescribeGroups (batch)", v, &describe_groups(&["g", "h"]));
    }
    for v in Encoder::versions(ApiKey::ConsumerGroupDescribe) {
        enc.check("ConsumerGroupDescribe", v, &consumer_group_describe(&["g"]));
        enc.check(
            "ConsumerGroupDescribe (batch)",
            v,
            &consumer_group_describe(&["g", "h"]),
        );
    }
    for v in Encoder::versions(ApiKey::DeleteGroups) {
        enc.check("DeleteGroups", v, &delete_groups(&["g", "h"]));
    }
    for v in Encoder::versions(ApiKey::CreatePartitions) {
        enc.check(
            "CreatePartitions",
            v,
            &create_partitions(&[("a", 6), ("b", 2)], 30_000),
        );
    }
    let partitions = [TopicPartition::new("a", 0), TopicPartition::new("a", 1)];
    for v in Encoder::versions(ApiKey::DeleteRecords) {
        let asked = [(&partitions[0], 10), (&partitions[1], -1)];
        enc.check("DeleteRecords", v, &delete_records(&asked, 30_000));
    }
    for v in Encoder::versions(ApiKey::OffsetDelete) {
        enc.check("OffsetDelete", v, &offset_delete("g", &partitions));
    }
}
