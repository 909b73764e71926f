//! The client's view of the cluster: brokers, topics, partitions and their leaders.
//!
//! [`ClusterMetadata`] is plain state: it is updated from Metadata responses (and from the
//! current-leader hints of KIP-951 in Produce and Fetch responses) and read by the producer,
//! the consumer and the admin client. Two invariants keep it from going backwards:
//!
//! - a partition's leader is only replaced by information carrying a leader epoch at least as
//!   high as the one cached (a lagging broker's older view is ignored, as the Java client does);
//! - a topic the response reports with an error keeps its last good partitions, flagged by the
//!   error, so one bad refresh does not make records lose their leader.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::MetadataResponse;

/// One broker, as Metadata responses describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerInfo {
    /// The broker's node id.
    pub node_id: i32,
    /// Its advertised host.
    pub host: String,
    /// Its advertised port.
    pub port: i32,
    /// Its rack, when configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, as a socket address string.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id, or `None` while there is no leader (an election is under way).
    pub leader: Option<i32>,
    /// The leader epoch (KIP-320), or -1 when unknown.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// The error the broker reported for this partition, if any (e.g. LEADER_NOT_AVAILABLE).
    pub error: Option<ResponseError>,
}

/// One topic and its partitions, ordered by partition index.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The topic id (all zeros when the broker did not send one).
    pub topic_id: [u8; 16],
    /// Whether the topic is internal (`__consumer_offsets`, …).
    pub is_internal: bool,
    /// The partitions, index `i` at position `i`.
    pub partitions: Vec<PartitionInfo>,
    /// The error the broker reported for the whole topic, if any (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub error: Option<ResponseError>,
}

/// What the client knows of the cluster.
///
/// ```
/// use kafka_protocol::messages::metadata_response::{
///     MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
/// };
/// use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
/// use kafka_protocol::protocol::StrBytes;
/// use kafkit::state::metadata::ClusterMetadata;
///
/// let response = MetadataResponse::default()
///     .with_brokers(vec![MetadataResponseBroker::default()
///         .with_node_id(BrokerId(1))
///         .with_host(StrBytes::from_static_str("127.0.0.1"))
///         .with_port(9092)])
///     .with_topics(vec![MetadataResponseTopic::default()
///         .with_name(Some(TopicName(StrBytes::from_static_str("events"))))
///         .with_partitions(vec![MetadataResponsePartition::default()
///             .with_partition_index(0)
///             .with_leader_id(BrokerId(1))
///             .with_leader_epoch(3)])]);
/// let mut metadata = ClusterMetadata::default();
/// metadata.update(&response, std::time::Instant::now());
/// assert_eq!(metadata.partition_count("events"), Some(1));
/// assert_eq!(metadata.leader("events", 0).unwrap().address(), "127.0.0.1:9092");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    cluster_id: Option<String>,
    controller_id: Option<i32>,
    brokers: BTreeMap<i32, BrokerInfo>,
    topics: HashMap<String, TopicInfo>,
    updated_at: Option<Instant>,
}

impl ClusterMetadata {
    /// Takes in a Metadata response received at `now`.
    ///
    /// Brokers are replaced by the response's list (it is always complete); topics in the
    /// response are merged in, subject to the leader-epoch rule; topics not in it are kept.
    pub fn update(&mut self, response: &MetadataResponse, now: Instant) {
        self.cluster_id = response.cluster_id.as_ref().map(|c| c.as_str().to_owned());
        self.controller_id = (response.controller_id.0 >= 0).then_some(response.controller_id.0);
        if !response.brokers.is_empty() {
            self.brokers = response
                .brokers
                .iter()
                .map(|b| {
                    let info = BrokerInfo {
                        node_id: b.node_id.0,
                        host: b.host.as_str().to_owned(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.as_str().to_owned()),
                    };
                    (info.node_id, info)
                })
                .collect();
        }
        for topic in &response.topics {
            let Some(name) = topic.name.as_ref().map(|n| n.0.as_str().to_owned()) else {
                continue;
            };
            let error = ResponseError::try_from_code(topic.error_code);
            let mut partitions: Vec<PartitionInfo> = topic
                .partitions
                .iter()
                .filter(|p| p.partition_index >= 0)
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                    isr: p.isr_nodes.iter().map(|r| r.0).collect(),
                    error: ResponseError::try_from_code(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            // Partition indexes must be 0..n without gaps to index by position.
            let dense = partitions
                .iter()
                .enumerate()
                .all(|(i, p)| usize::try_from(p.partition).ok() == Some(i));
            match self.topics.get_mut(&name) {
                Some(known) if error.is_some() && partitions.is_empty() => known.error = error,
                Some(known) if dense => {
                    known.error = error;
                    known.is_internal = topic.is_internal;
                    known.topic_id = *topic.topic_id.as_bytes();
                    merge_partitions(&mut known.partitions, partitions);
                }
                Some(_) => {}
                None => {
                    let partitions = if dense { partitions } else { Vec::new() };
                    self.topics.insert(
                        name.clone(),
                        TopicInfo {
                            name,
                            topic_id: *topic.topic_id.as_bytes(),
                            is_internal: topic.is_internal,
                            partitions,
                            error,
                        },
                    );
                }
            }
        }
        self.updated_at = Some(now);
    }

    /// Applies a leader hint (KIP-951: `current_leader` and `node_endpoints` in Produce/Fetch
    /// responses). Ignored unless `leader_epoch` is newer than what is cached.
    pub fn update_leader(
        &mut self,
        topic: &str,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        endpoint: Option<BrokerInfo>,
    ) -> bool {
        if let Some(endpoint) = endpoint {
            self.brokers.insert(endpoint.node_id, endpoint);
        }
        let Some(known) = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
        else {
            return false;
        };
        if leader < 0 || leader_epoch <= known.leader_epoch {
            return false;
        }
        known.leader = Some(leader);
        known.leader_epoch = leader_epoch;
        known.error = None;
        true
    }

    /// Forgets a partition's leader (after NOT_LEADER_OR_FOLLOWER and similar), so that the
    /// next send waits for fresh metadata.
    pub fn invalidate_leader(&mut self, topic: &str, partition: i32) {
        if let Some(known) = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
        {
            known.leader = None;
        }
    }

    /// The cluster id, once known.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The controller's node id, once known.
    pub fn controller_id(&self) -> Option<i32> {
        self.controller_id
    }

    /// All known brokers, by node id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.values()
    }

    /// One broker by node id.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&node_id)
    }

    /// Adds a broker learnt from elsewhere than a Metadata response (a FindCoordinator
    /// answer naming a node the metadata does not list yet); a broker already known is kept
    /// as it is. The next Metadata response replaces the list as usual.
    pub fn add_broker(&mut self, broker: BrokerInfo) {
        self.brokers.entry(broker.node_id).or_insert(broker);
    }

    /// The names of every known topic.
    pub fn topic_names(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }

    /// One topic, if known.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// The number of partitions of a topic that exists, `None` when unknown or in error.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        self.topics
            .get(topic)
            .filter(|t| !t.partitions.is_empty())
            .map(|t| t.partitions.len())
    }

    /// The leader broker of a partition, when there is one and it is a known broker.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<&BrokerInfo> {
        let p = self
            .topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)?;
        self.brokers.get(&p.leader?)
    }

    /// Whether the metadata is older than `max_age` (`metadata.max.age.ms`) or was never
    /// fetched.
    pub fn is_stale(&self, now: Instant, max_age: Duration) -> bool {
        match self.updated_at {
            None => true,
            Some(at) => now.saturating_duration_since(at) >= max_age,
        }
    }
}

/// Replaces cached partitions with fresh ones, except where the cached leader epoch is newer.
fn merge_partitions(known: &mut Vec<PartitionInfo>, fresh: Vec<PartitionInfo>) {
    let old = std::mem::take(known);
    let mut old = old.into_iter();
    for p in fresh {
        match old.next() {
            Some(cached) if cached.leader_epoch > p.leader_epoch && p.leader_epoch >= 0 => {
                known.push(cached)
            }
            _ => known.push(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn response(topic: &str, leaders: &[(i32, i32)], topic_error: i16) -> MetadataResponse {
        MetadataResponse::default()
            .with_controller_id(BrokerId(2))
            .with_brokers(
                (1..=3)
                    .map(|id| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(id))
                            .with_host(StrBytes::from_static_str("127.0.0.1"))
                            .with_port(9000 + id)
                    })
                    .collect(),
            )
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(topic.to_owned()))))
                .with_error_code(topic_error)
                .with_partitions(
                    leaders
                        .iter()
                        .enumerate()
                        .map(|(i, &(leader, epoch))| {
                            MetadataResponsePartition::default()
                                .with_partition_index(i as i32)
                                .with_leader_id(BrokerId(leader))
                                .with_leader_epoch(epoch)
                        })
                        .collect(),
                )])
    }

    #[test]
    fn leaders_and_counts() {
        let mut m = ClusterMetadata::default();
        let now = Instant::now();
        assert!(m.is_stale(now, Duration::from_secs(300)));
        m.update(&response("t", &[(1, 0), (2, 0), (-1, 0)], 0), now);
        assert_eq!(m.partition_count("t"), Some(3));
        assert_eq!(m.leader("t", 0).map(|b| b.port), Some(9001));
        assert_eq!(m.leader("t", 1).map(|b| b.port), Some(9002));
        assert_eq!(m.leader("t", 2), None, "no leader during an election");
        assert_eq!(m.leader("t", 3), None);
        assert_eq!(m.leader("t", -1), None);
        assert_eq!(m.controller_id(), Some(2));
        assert!(!m.is_stale(now, Duration::from_secs(300)));
        assert!(m.is_stale(now + Duration::from_secs(300), Duration::from_secs(300)));
    }

    #[test]
    fn older_leader_epoch_never_wins() {
        let mut m = ClusterMetadata::default();
        let now = Instant::now();
        m.update(&response("t", &[(1, 5)], 0), now);
        // A lagging broker still thinks node 2 leads at epoch 4.
        m.update(&response("t", &[(2, 4)], 0), now);
        assert_eq!(m.leader("t", 0).map(|b| b.node_id), Some(1));
        m.update(&response("t", &[(3, 6)], 0), now);
        assert_eq!(m.leader("t", 0).map(|b| b.node_id), Some(3));
    }

    #[test]
    fn leader_hints_apply_only_when_newer() {
        let mut m = ClusterMetadata::default();
        m.update(&response("t", &[(1, 5)], 0), Instant::now());
        assert!(!m.update_leader("t", 0, 2, 5, None));
        assert_eq!(m.leader("t", 0).map(|b| b.node_id), Some(1));
        let endpoint = BrokerInfo {
            node_id: 7,
            host: "127.0.0.1".into(),
            port: 9700,
            rack: None,
        };
        assert!(m.update_leader("t", 0, 7, 6, Some(endpoint)));
        assert_eq!(
            m.leader("t", 0).map(|b| b.address()),
            Some("127.0.0.1:9700".into())
        );
        assert!(!m.update_leader("nope", 0, 7, 9, None));
    }

    #[test]
    fn invalidated_leader_is_gone_until_refreshed() {
        let mut m = ClusterMetadata::default();
        m.update(&response("t", &[(1, 5)], 0), Instant::now());
        m.invalidate_leader("t", 0);
        assert_eq!(m.leader("t", 0), None);
        m.update(&response("t", &[(1, 5)], 0), Instant::now());
        assert_eq!(m.leader("t", 0).map(|b| b.node_id), Some(1));
    }

    #[test]
    fn topic_error_keeps_last_good_partitions() {
        let mut m = ClusterMetadata::default();
        m.update(&response("t", &[(1, 5), (2, 5)], 0), Instant::now());
        // LEADER_NOT_AVAILABLE for the whole topic, no partitions listed.
        m.update(&response("t", &[], 5), Instant::now());
        assert_eq!(m.partition_count("t"), Some(2));
        assert_eq!(
            m.topic("t").and_then(|t| t.error),
            Some(ResponseError::LeaderNotAvailable)
        );
    }

    #[test]
    fn unknown_topic_has_no_partitions() {
        let mut m = ClusterMetadata::default();
        m.update(&response("missing", &[], 3), Instant::now());
        assert_eq!(m.partition_count("missing"), None);
        assert_eq!(
            m.topic("missing").and_then(|t| t.error),
            Some(ResponseError::UnknownTopicOrPartition)
        );
    }
}
