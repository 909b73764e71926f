//! [`FetchState`]: the consumer's decisions — the assignment and positions, which partitions
//! to fetch from which leader (one Fetch in flight per node, as the Java client), what a Fetch
//! or ListOffsets response does, and handing buffered records out.
//!
//! Call order (the fetcher task does this; the tests do it by hand):
//!
//! 1. the application changes the assignment and positions (`assign`, `add_assigned`,
//!    `seek`, `request_reset`, `pause`, …) at any time;
//! 2. `wants_metadata` → refresh metadata for `topics()`, then
//!    `poll_list_offsets(now, &metadata)` → send each request, then `handle_list_offsets`;
//! 3. `poll_fetches(now, &metadata)` → send each request to its node, then `handle_fetch`
//!    (or `handle_fetch_failure`) with the [`FetchToken`] it came with;
//! 4. the application takes records with `drain`.
//!
//! Invariants: a partition is in at most one Fetch in flight; a fetched response is used only
//! if the partition's generation (bumped by every seek and reset) is unchanged and its
//! position is still the fetch offset; a partition with buffered records is not fetched again
//! until they are taken (a paused one keeps them for `resume`); nothing is fetched while
//! `prefetch.max.bytes` are buffered for partitions not paused.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafkit_wire::record::DecodeLimits;

use super::completed::{CompletedFetch, Decoding};
use super::position::{FetchPosition, OffsetSpec, PartitionState, ReadReplica};
use super::session::{FetchSession, SessionPartition, SessionRequest};

mod drain;
mod resets;
mod validate;

use crate::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use crate::consumer::ConsumeError;
use crate::state::group::{OffsetAndMetadata, TopicPartition};
use crate::state::metadata::{BrokerInfo, ClusterMetadata};
pub use drain::Drained;
#[cfg(test)]
pub(crate) use drain::{record_memory, MIN_DRAIN_MEMORY};
pub use resets::ListOffsetsToken;
pub(crate) use resets::{answer_for, list_offsets_request};
pub use validate::ValidationToken;

/// The settings the fetch decisions use.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// `isolation.level`.
    pub isolation_level: IsolationLevel,
    /// `auto.offset.reset`.
    pub auto_offset_reset: AutoOffsetReset,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.wait.ms`.
    pub max_wait_ms: i32,
    /// `fetch.max.bytes`.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// `kafkit.prefetch.max.bytes`.
    pub prefetch_max_bytes: usize,
    /// `retry.backoff.ms`: the wait after a failed Fetch or ListOffsets.
    pub retry_backoff: Duration,
    /// `request.timeout.ms`, sent as ListOffsets' `timeout_ms`.
    pub request_timeout: Duration,
    /// `client.rack`, sent as Fetch's `rack_id` (v11+; empty when unset): a broker with a
    /// rack-aware `replica.selector.class` then names a replica in that rack as the
    /// partition's `preferred_read_replica` (KIP-392).
    pub rack_id: String,
    /// `metadata.max.age.ms`: how long a preferred read replica is used before fetching from
    /// the leader again (Java's rule).
    pub read_replica_max_age: Duration,
    /// `check.crcs`: whether fetched batches' CRCs are verified before they are parsed.
    pub check_crcs: bool,
}

fn int(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl FetchSettings {
    /// The settings of a consumer configuration.
    pub fn from_config(config: &ConsumerConfig) -> Self {
        FetchSettings {
            isolation_level: config.isolation_level(),
            auto_offset_reset: config.auto_offset_reset(),
            min_bytes: int(config.fetch_min_bytes()),
            max_wait_ms: i32::try_from(config.fetch_max_wait().as_millis()).unwrap_or(i32::MAX),
            max_bytes: int(config.fetch_max_bytes()),
            partition_max_bytes: int(config.max_partition_fetch_bytes()),
            prefetch_max_bytes: config.prefetch_max_bytes(),
            retry_backoff: config.client().retry_backoff(),
            request_timeout: config.client().request_timeout(),
            rack_id: config.client_rack().unwrap_or_default().to_owned(),
            read_replica_max_age: config.client().metadata_max_age(),
            check_crcs: config.check_crcs(),
        }
    }
}

/// Ties a response to the request it answers.
#[derive(Debug)]
pub struct FetchToken {
    node: i32,
    session: SessionRequest,
    /// Per partition sent or in the session: the generation and fetch offset at send time.
    sent: Vec<(TopicPartition, u64, i64)>,
    ids: HashMap<[u8; 16], String>,
}

impl FetchToken {
    /// The node the request goes to.
    pub fn node(&self) -> i32 {
        self.node
    }

    /// The KIP-951 leader hints of `response` (partitions refused with
    /// `NOT_LEADER_OR_FOLLOWER` or `FENCED_LEADER_EPOCH` that name their new leader), to apply
    /// to the metadata before [`FetchState::handle_fetch`]: `(topic, partition, leader,
    /// leader_epoch, the leader's endpoint if the response carries it)`.
    pub fn leader_hints(
        &self,
        response: &FetchResponse,
    ) -> Vec<(String, i32, i32, i32, Option<BrokerInfo>)> {
        let mut out = Vec::new();
        for topic in &response.responses {
            let name = if topic.topic.0.is_empty() {
                match self.ids.get(topic.topic_id.as_bytes()) {
                    Some(n) => n.clone(),
                    None => continue,
                }
            } else {
                topic.topic.0.as_str().to_owned()
            };
            for p in &topic.partitions {
                let refused = matches!(
                    error_of(p.error_code),
                    Some(ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch)
                );
                let leader = p.current_leader.leader_id.0;
                if !refused || leader < 0 {
                    continue;
                }
                let endpoint = response
                    .node_endpoints
                    .iter()
                    .find(|e| e.node_id.0 == leader)
                    .map(|e| BrokerInfo {
                        node_id: leader,
                        host: e.host.as_str().to_owned(),
                        port: e.port,
                        rack: e.rack.as_ref().map(|r| r.as_str().to_owned()),
                    });
                out.push((
                    name.clone(),
                    p.partition_index,
                    leader,
                    p.current_leader.leader_epoch,
                    endpoint,
                ));
            }
        }
        out
    }
}

/// The consumer's fetch state. See the module documentation for the call order.
#[derive(Debug)]
pub struct FetchState {
    settings: FetchSettings,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    sessions: HashMap<i32, FetchSession>,
    in_flight: HashMap<i32, ()>,
    node_not_before: HashMap<i32, Instant>,
    completed: VecDeque<CompletedFetch>,
    buffered_bytes: usize,
    /// Per node, the partitions whose records its last response buffered, until the
    /// application next takes records: see [`FetchState::poll_fetches`].
    awaiting_take: HashMap<i32, Vec<TopicPartition>>,
    errors: VecDeque<ConsumeError>,
    /// Partitions stopped at a corrupt batch: reported by every drain until a seek.
    corrupt: BTreeMap<TopicPartition, ConsumeError>,
    wants_metadata: bool,
    /// Negative control of the fetcher world's `stalled` invariant (`sim::fetch`): fetches of
    /// caught-up partitions go out while their node's records are still being taken, as they
    /// did before the deferral in [`FetchState::poll_fetches`].
    #[cfg(test)]
    pub(crate) broken_send_caught_up_early: bool,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

pub(crate) fn error_of(code: i16) -> Option<ResponseError> {
    ResponseError::try_from_code(code)
}

impl FetchState {
    /// An empty state (nothing assigned).
    pub fn new(settings: FetchSettings) -> Self {
        FetchState {
            settings,
            partitions: BTreeMap::new(),
            sessions: HashMap::new(),
            in_flight: HashMap::new(),
            node_not_before: HashMap::new(),
            completed: VecDeque::new(),
            buffered_bytes: 0,
            awaiting_take: HashMap::new(),
            errors: VecDeque::new(),
            corrupt: BTreeMap::new(),
            wants_metadata: false,
            #[cfg(test)]
            broken_send_caught_up_early: false,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    // ---- assignment and positions ----

    /// Replaces the assignment: partitions no longer in it are dropped (with their buffered
    /// records); new ones start by `auto.offset.reset`; kept ones keep their position.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let wanted: Vec<TopicPartition> = partitions.into_iter().collect();
        let gone: Vec<TopicPartition> = self
            .partitions
            .keys()
            .filter(|tp| !wanted.contains(tp))
            .cloned()
            .collect();
        self.remove_assigned(&gone);
        let new = wanted
            .into_iter()
            .filter(|tp| !self.partitions.contains_key(tp))
            .map(|tp| (tp, None))
            .collect();
        self.add_assigned(new);
    }

    /// Adds partitions, each from its committed offset or by `auto.offset.reset`; partitions
    /// already assigned are left as they are.
    pub fn add_assigned(&mut self, partitions: Vec<(TopicPartition, Option<OffsetAndMetadata>)>) {
        for (tp, committed) in partitions {
            if self.partitions.contains_key(&tp) {
                continue;
            }
            let mut state = PartitionState::new(Arc::from(tp.topic.as_str()));
            match committed {
                Some(c) if c.offset >= 0 => state.seek(FetchPosition {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                }),
                _ => self.reset_by_policy(&tp, &mut state, None),
            }
            self.partitions.insert(tp, state);
            self.wants_metadata = true;
        }
    }

    /// Drops partitions with their positions and buffered records.
    pub fn remove_assigned(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.partitions.remove(tp);
            self.corrupt.remove(tp);
        }
        self.drop_completed(|c| partitions.contains(&c.tp));
        self.errors.retain(|e| {
            e.partition().is_none_or(|(t, p)| {
                !partitions
                    .iter()
                    .any(|tp| tp.topic == t && tp.partition == p)
            })
        });
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    /// Every assigned topic (for metadata refreshes).
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.partitions.keys().map(|tp| tp.topic.clone()).collect();
        topics.dedup();
        topics
    }

    fn state_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState, ConsumeError> {
        self.partitions
            .get_mut(tp)
            .ok_or_else(|| ConsumeError::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            })
    }

    /// Fetches `tp` from `offset` next (clears a halt after an error).
    pub fn seek(
        &mut self,
        tp: &TopicPartition,
        position: FetchPosition,
    ) -> Result<(), ConsumeError> {
        self.state_mut(tp)?.seek(position);
        self.forget_partition(tp);
        Ok(())
    }

    /// Looks the position of `tp` up with ListOffsets before fetching it again.
    pub fn request_reset(
        &mut self,
        tp: &TopicPartition,
        spec: OffsetSpec,
    ) -> Result<(), ConsumeError> {
        let state = self.state_mut(tp)?;
        state.request_reset(spec);
        state.position = None;
        self.forget_partition(tp);
        Ok(())
    }

    fn forget_partition(&mut self, tp: &TopicPartition) {
        self.drop_completed(|c| &c.tp == tp);
        self.corrupt.remove(tp);
        self.errors
            .retain(|e| e.partition() != Some((tp.topic.as_str(), tp.partition)));
    }

    fn drop_completed(&mut self, mut drop: impl FnMut(&CompletedFetch) -> bool) {
        let mut freed = 0;
        self.completed.retain(|c| {
            let gone = drop(c);
            if gone {
                freed += c.size;
            }
            !gone
        });
        self.buffered_bytes = self.buffered_bytes.saturating_sub(freed);
    }

    /// Stops fetching `tp` and handing its records out; records already buffered stay
    /// buffered and are handed out after [`resume`](Self::resume) without fetching them
    /// again (as Java). They do not count against `kafkit.prefetch.max.bytes`, so the other
    /// partitions go on being fetched.
    pub fn pause(&mut self, tp: &TopicPartition) -> Result<(), ConsumeError> {
        self.state_mut(tp)?.paused = true;
        Ok(())
    }

    /// Fetches `tp` again after [`pause`](Self::pause).
    pub fn resume(&mut self, tp: &TopicPartition) -> Result<(), ConsumeError> {
        self.state_mut(tp)?.paused = false;
        Ok(())
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The position of `tp`, if assigned and known.
    pub fn position(&self, tp: &TopicPartition) -> Option<FetchPosition> {
        self.partitions.get(tp).and_then(|s| s.position)
    }

    /// Whether `tp` is assigned and waits for an offset lookup.
    pub fn is_resetting(&self, tp: &TopicPartition) -> bool {
        self.partitions.get(tp).is_some_and(|s| s.reset.is_some())
    }

    /// Whether `tp` is stopped after a reported error.
    pub fn is_halted(&self, tp: &TopicPartition) -> bool {
        self.partitions.get(tp).is_some_and(|s| s.halted)
    }

    /// The error reported (or about to be) for `tp`, if one is waiting in the queue.
    pub fn partition_error(&self, tp: &TopicPartition) -> Option<ConsumeError> {
        self.errors
            .iter()
            .find(|e| e.partition() == Some((tp.topic.as_str(), tp.partition)))
            .cloned()
    }

    /// Records between the position of `tp` and the end of its log: the high watermark, or
    /// the last stable offset with `read_committed`, from the last fetch response.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let s = self.partitions.get(tp)?;
        let end = match self.settings.isolation_level {
            IsolationLevel::ReadUncommitted => s.high_watermark,
            IsolationLevel::ReadCommitted => s
                .last_stable_offset
                .filter(|&o| o >= 0)
                .or(s.high_watermark),
        }?;
        Some(end.saturating_sub(s.position?.offset).max(0))
    }

    /// The high watermark of `tp` from the last fetch response.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp).and_then(|s| s.high_watermark)
    }

    /// Next offset + leader epoch of every partition with a position (for commits).
    pub fn consumed_positions(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.partitions
            .iter()
            .filter_map(|(tp, s)| {
                let p = s.position?;
                Some((
                    tp.clone(),
                    OffsetAndMetadata {
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                        metadata: None,
                    },
                ))
            })
            .collect()
    }

    /// Bytes of fetched records buffered now.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Buffered bytes of partitions not paused (what the prefetch limit applies to).
    fn active_buffered_bytes(&self) -> usize {
        let paused: usize = self
            .completed
            .iter()
            .filter(|c| self.partitions.get(&c.tp).is_some_and(|s| s.paused))
            .map(|c| c.size)
            .sum();
        self.buffered_bytes.saturating_sub(paused)
    }

    fn reset_by_policy(
        &mut self,
        tp: &TopicPartition,
        state: &mut PartitionState,
        out_of_range: Option<i64>,
    ) {
        let spec = match self.settings.auto_offset_reset {
            AutoOffsetReset::Earliest => OffsetSpec::Earliest,
            AutoOffsetReset::Latest => OffsetSpec::Latest,
            AutoOffsetReset::None => {
                state.halted = true;
                self.errors.push_back(match out_of_range {
                    Some(offset) => ConsumeError::OffsetOutOfRange {
                        topic: state.topic.clone(),
                        partition: tp.partition,
                        offset,
                    },
                    None => ConsumeError::NoOffset {
                        topic: state.topic.clone(),
                        partition: tp.partition,
                    },
                });
                return;
            }
        };
        state.request_reset(spec);
        state.position = None;
    }

    // ---- metadata ----

    /// Whether a metadata refresh for [`topics`](Self::topics) is wanted (new partitions,
    /// leader errors). Cleared by the call.
    pub fn take_wants_metadata(&mut self) -> bool {
        std::mem::take(&mut self.wants_metadata)
    }

    /// Asks for a metadata refresh (after a failed one).
    pub fn request_metadata(&mut self) {
        self.wants_metadata = true;
    }

    /// Whether some assigned partition has no known leader in `metadata`.
    pub fn missing_leaders(&self, metadata: &ClusterMetadata) -> bool {
        self.partitions
            .keys()
            .any(|tp| metadata.leader(&tp.topic, tp.partition).is_none())
    }

    // ---- fetching ----

    /// Fetch requests to send now: at most one per node, none to a node with one in flight
    /// or backing off, none at all while the prefetch buffer is full.
    pub fn poll_fetches(
        &mut self,
        now: Instant,
        metadata: &ClusterMetadata,
    ) -> Vec<(FetchToken, FetchRequest)> {
        if self.active_buffered_bytes() >= self.settings.prefetch_max_bytes {
            return Vec::new();
        }
        let buffered: Vec<TopicPartition> = self.completed.iter().map(|c| c.tp.clone()).collect();
        // A node whose last response buffered records the application has not started taking
        // is not fetched from yet (Java sends its next fetches from `poll`, after it took the
        // records). Fetching at once would leave those partitions out of the node's next
        // long-poll (a buffered partition is not fetched again): new records for them would
        // wait up to `fetch.max.wait.ms` for that fetch to end. Paused partitions hold no node.
        let waiting_for_take: Vec<i32> = self
            .awaiting_take
            .iter()
            .filter(|(_, tps)| {
                tps.iter().any(|tp| {
                    buffered.contains(tp) && self.partitions.get(tp).is_some_and(|s| !s.paused)
                })
            })
            .map(|(node, _)| *node)
            .collect();
        let mut by_node: BTreeMap<i32, BTreeMap<TopicPartition, SessionPartition>> =
            BTreeMap::new();
        let mut ids: HashMap<[u8; 16], String> = HashMap::new();
        for (tp, s) in &mut self.partitions {
            if s.needs_validation(leader_epoch(metadata, tp)) {
                continue; // OffsetForLeaderEpoch first (see `poll_validations`)
            }
            if !s.is_fetchable() || buffered.contains(tp) {
                continue;
            }
            let (Some(leader), Some(topic)) = (
                metadata.leader(&tp.topic, tp.partition).map(|b| b.node_id),
                metadata.topic(&tp.topic),
            ) else {
                self.wants_metadata = true;
                continue;
            };
            let node = read_replica(tp, s, leader, now, metadata, &mut self.wants_metadata);
            if self.in_flight.contains_key(&node)
                || self.node_not_before.get(&node).is_some_and(|t| now < *t)
                || waiting_for_take.contains(&node)
            {
                continue;
            }
            let Some(position) = s.position else { continue };
            ids.insert(topic.topic_id, tp.topic.clone());
            by_node.entry(node).or_default().insert(
                tp.clone(),
                SessionPartition {
                    topic_id: topic.topic_id,
                    fetch_offset: position.offset,
                    current_leader_epoch: leader_epoch(metadata, tp),
                    last_fetched_epoch: position.leader_epoch.unwrap_or(-1),
                    max_bytes: self.settings.partition_max_bytes,
                },
            );
        }
        // A fetch that would hold only partitions at the end of their log (the broker keeps it
        // up to `fetch.max.wait.ms`) waits while the application is still taking the node's
        // buffered records: sent now, it would keep every partition the application finishes
        // meanwhile from being fetched until the long-poll ends (at the end of a backlog, a
        // stall of `fetch.max.wait.ms` with records waiting on the broker); sent once one of
        // them is taken, it carries that partition too and comes back as soon as it has records.
        let taking = self.nodes_being_taken(now, metadata);
        #[cfg(test)]
        let taking = if self.broken_send_caught_up_early {
            Vec::new()
        } else {
            taking
        };
        by_node.retain(|node, wanted| {
            !taking.contains(node) || wanted.keys().any(|tp| self.lag(tp) != Some(0))
        });
        let mut out = Vec::new();
        for (node, wanted) in by_node {
            let session = self.sessions.entry(node).or_default().build(wanted);
            let sent: Vec<(TopicPartition, u64, i64)> = session
                .wanted
                .iter()
                .filter_map(|(tp, p)| {
                    let s = self.partitions.get(tp)?;
                    Some((tp.clone(), s.generation, p.fetch_offset))
                })
                .collect();
            for (tp, _, _) in &sent {
                if let Some(s) = self.partitions.get_mut(tp) {
                    s.fetch_in_flight = true;
                }
            }
            let request = self.fetch_request(&session);
            self.in_flight.insert(node, ());
            out.push((
                FetchToken {
                    node,
                    session,
                    sent,
                    ids: ids.clone(),
                },
                request,
            ));
        }
        out
    }

    /// The nodes with buffered records the application will take (of partitions still
    /// assigned at that position and not paused): each partition's read replica or leader.
    fn nodes_being_taken(&self, now: Instant, metadata: &ClusterMetadata) -> Vec<i32> {
        let mut nodes: Vec<i32> = self
            .completed
            .iter()
            .filter_map(|c| {
                let s = self.partitions.get(&c.tp)?;
                let current = !s.paused
                    && !s.halted
                    && s.generation == c.generation
                    && s.position.map(|p| p.offset) == Some(c.position.offset);
                if !current {
                    return None;
                }
                s.read_replica
                    .filter(|r| now <= r.expires)
                    .map(|r| r.node)
                    .or_else(|| {
                        metadata
                            .leader(&c.tp.topic, c.tp.partition)
                            .map(|b| b.node_id)
                    })
            })
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    fn fetch_request(&self, session: &SessionRequest) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (tp, p) in &session.send {
            let partition = FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(p.current_leader_epoch)
                .with_fetch_offset(p.fetch_offset)
                .with_last_fetched_epoch(p.last_fetched_epoch)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(p.max_bytes);
            match topics.last_mut() {
                Some(t) if t.topic.0.as_str() == tp.topic => t.partitions.push(partition),
                _ => topics.push(
                    FetchTopic::default()
                        .with_topic(topic_name(&tp.topic))
                        .with_topic_id(uuid_of(p.topic_id))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        for (tp, id) in &session.forget {
            match forgotten.last_mut() {
                Some(t) if t.topic.0.as_str() == tp.topic => t.partitions.push(tp.partition),
                _ => forgotten.push(
                    ForgottenTopic::default()
                        .with_topic(topic_name(&tp.topic))
                        .with_topic_id(uuid_of(*id))
                        .with_partitions(vec![tp.partition]),
                ),
            }
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.settings.max_wait_ms)
            .with_min_bytes(self.settings.min_bytes)
            .with_max_bytes(self.settings.max_bytes)
            .with_isolation_level(self.settings.isolation_level.as_i8())
            .with_rack_id(StrBytes::from_string(self.settings.rack_id.clone()))
            .with_session_id(session.session_id)
            .with_session_epoch(session.epoch)
            .with_topics(topics)
            .with_forgotten_topics_data(forgotten)
    }

    fn release(&mut self, token: &FetchToken) {
        self.in_flight.remove(&token.node);
        for (tp, _, _) in &token.sent {
            if let Some(s) = self.partitions.get_mut(tp) {
                s.fetch_in_flight = false;
            }
        }
    }

    /// A Fetch that got no response (connection failure, timeout): the session starts over,
    /// the node backs off, metadata is refreshed, and partitions that were sent to it as
    /// their preferred read replica go back to their leader (as Java).
    pub fn handle_fetch_failure(&mut self, now: Instant, token: FetchToken) {
        self.release(&token);
        for (tp, s) in &mut self.partitions {
            if s.read_replica.is_some_and(|r| r.node == token.node) {
                tracing::debug!(topic = %tp.topic, partition = tp.partition, node = token.node, "fetch from the preferred read replica failed; back to the leader");
                s.read_replica = None;
            }
        }
        if let Some(session) = self.sessions.get_mut(&token.node) {
            session.reset();
        }
        self.node_not_before
            .insert(token.node, now + self.settings.retry_backoff);
        self.wants_metadata = true;
    }

    /// Takes in a Fetch response.
    pub fn handle_fetch(&mut self, now: Instant, token: FetchToken, response: FetchResponse) {
        self.release(&token);
        let FetchToken {
            node,
            session,
            sent,
            ids,
        } = token;
        let ok = self.sessions.entry(node).or_default().handle_response(
            session,
            response.error_code,
            response.session_id,
        );
        if !ok {
            tracing::debug!(
                node,
                error_code = response.error_code,
                "fetch failed; next fetch is full"
            );
            if error_of(response.error_code).is_some_and(|e| !is_session_error(e)) {
                self.node_not_before
                    .insert(node, now + self.settings.retry_backoff);
                self.wants_metadata = true;
            }
            return;
        }
        if let Ok(ms) = u64::try_from(response.throttle_time_ms) {
            if ms > 0 {
                // KIP-219: the broker throttles us; do not fetch from it before the time is up.
                self.node_not_before
                    .insert(node, now + Duration::from_millis(ms));
            }
        }
        let read_committed = self.settings.isolation_level == IsolationLevel::ReadCommitted;
        for topic in response.responses {
            let id = *topic.topic_id.as_bytes();
            let name = if topic.topic.0.is_empty() {
                match ids.get(&id) {
                    Some(n) => n.clone(),
                    None => continue,
                }
            } else {
                topic.topic.0.as_str().to_owned()
            };
            for p in topic.partitions {
                let tp = TopicPartition::new(name.clone(), p.partition_index);
                let Some(&(_, generation, fetch_offset)) = sent.iter().find(|(t, _, _)| *t == tp)
                else {
                    continue;
                };
                let Some(s) = self.partitions.get_mut(&tp) else {
                    continue;
                };
                if s.generation != generation || s.position.map(|p| p.offset) != Some(fetch_offset)
                {
                    continue; // sought or reset since: stale
                }
                match error_of(p.error_code) {
                    None => {}
                    Some(ResponseError::OffsetOutOfRange) if s.read_replica.is_some() => {
                        // KIP-392: a follower may not have the offset yet (or any more); the
                        // leader decides whether it is out of range (Java's rule).
                        tracing::debug!(topic = %tp.topic, partition = tp.partition, node, fetch_offset, "out of range on the preferred read replica; back to the leader");
                        s.read_replica = None;
                        continue;
                    }
                    Some(ResponseError::OffsetOutOfRange) => {
                        let mut state = s.clone();
                        self.reset_by_policy(&tp, &mut state, Some(fetch_offset));
                        self.partitions.insert(tp, state);
                        continue;
                    }
                    Some(code) if code.is_retriable() || is_leader_error(code) => {
                        tracing::debug!(topic = %tp.topic, partition = tp.partition, %code, "fetch: refreshing metadata");
                        // Java keeps the preferred read replica on UNKNOWN_LEADER_EPOCH (the
                        // replica has not caught up with the epoch yet; asking it again
                        // works) and drops it on every error that asks for new metadata.
                        if code != ResponseError::UnknownLeaderEpoch {
                            s.read_replica = None;
                        }
                        self.wants_metadata = true;
                        self.node_not_before
                            .insert(node, now + self.settings.retry_backoff);
                        continue;
                    }
                    Some(code) => {
                        s.halted = true;
                        self.errors.push_back(ConsumeError::Broker {
                            topic: s.topic.clone(),
                            partition: tp.partition,
                            code,
                        });
                        continue;
                    }
                }
                if p.preferred_read_replica.0 >= 0 {
                    set_read_replica(&tp, s, p.preferred_read_replica.0, now, &self.settings);
                }
                s.high_watermark = Some(p.high_watermark);
                s.last_stable_offset = (p.last_stable_offset >= 0).then_some(p.last_stable_offset);
                s.log_start_offset = (p.log_start_offset >= 0).then_some(p.log_start_offset);
                if p.diverging_epoch.epoch >= 0 && p.diverging_epoch.end_offset >= 0 {
                    // KIP-320: our last fetched epoch ended earlier on the leader (truncation).
                    let end = p.diverging_epoch.end_offset;
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, from = fetch_offset, to = end, "log truncation detected");
                    if end < fetch_offset {
                        if self.settings.auto_offset_reset == AutoOffsetReset::None {
                            // As Java's LogTruncationException: the application decides.
                            s.halted = true;
                            self.errors.push_back(ConsumeError::LogTruncation {
                                topic: s.topic.clone(),
                                partition: tp.partition,
                                offset: fetch_offset,
                                divergent_offset: end,
                            });
                        } else {
                            s.seek(FetchPosition {
                                offset: end,
                                leader_epoch: Some(p.diverging_epoch.epoch),
                            });
                        }
                    }
                    continue;
                }
                let Some(records) = p.records.filter(|r| !r.is_empty()) else {
                    continue;
                };
                let position = s.position.unwrap_or(FetchPosition::new(fetch_offset));
                let aborted = p
                    .aborted_transactions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| (a.producer_id.0, a.first_offset));
                let completed = CompletedFetch::new(
                    tp,
                    s.topic.clone(),
                    generation,
                    position,
                    records,
                    Decoding {
                        read_committed,
                        limits: DecodeLimits::default().with_crc_check(self.settings.check_crcs),
                    },
                    aborted,
                );
                self.buffered_bytes = self.buffered_bytes.saturating_add(completed.size);
                self.awaiting_take
                    .entry(node)
                    .or_default()
                    .push(completed.tp.clone());
                self.completed.push_back(completed);
            }
        }
    }

    /// The node `tp` is fetched from next if its preferred read replica (KIP-392) still holds
    /// at `now`: `None` means its leader.
    pub fn read_replica(&self, tp: &TopicPartition, now: Instant) -> Option<i32> {
        self.partitions
            .get(tp)?
            .read_replica
            .filter(|r| now <= r.expires)
            .map(|r| r.node)
    }

    /// The earliest time a backoff ends (for the fetcher task's timer).
    pub fn next_timer(&self, now: Instant) -> Option<Instant> {
        let nodes = self.node_not_before.values().copied().filter(|t| *t > now);
        let resets = self
            .partitions
            .values()
            .flat_map(|s| [s.reset_not_before, s.validate_not_before])
            .flatten()
            .filter(|t| *t > now);
        nodes.chain(resets).min()
    }
}

/// The node to fetch `tp` from (Java's `selectReadReplica`): its preferred read replica while
/// that has not expired and the metadata lists that broker as a replica of the partition;
/// otherwise (the preference dropped) its leader. A replica the metadata does not list also
/// asks for fresh metadata: a leader names only replicas it can reach and answers a consumer
/// it redirects without records, so stale metadata must not send us back to it for long.
fn read_replica(
    tp: &TopicPartition,
    s: &mut PartitionState,
    leader: i32,
    now: Instant,
    metadata: &ClusterMetadata,
    wants_metadata: &mut bool,
) -> i32 {
    let Some(r) = s.read_replica else {
        return leader;
    };
    if now > r.expires {
        tracing::debug!(topic = %tp.topic, partition = tp.partition, node = r.node, "preferred read replica expired; fetching from the leader");
        s.read_replica = None;
        return leader;
    }
    let listed = metadata.broker(r.node).is_some()
        && metadata
            .topic(&tp.topic)
            .and_then(|t| t.partitions.get(usize::try_from(tp.partition).ok()?))
            .is_some_and(|p| p.replicas.is_empty() || p.replicas.contains(&r.node));
    if !listed {
        tracing::debug!(topic = %tp.topic, partition = tp.partition, node = r.node, "preferred read replica not in the metadata; fetching from the leader");
        s.read_replica = None;
        *wants_metadata = true;
        return leader;
    }
    r.node
}

/// Takes in a response's `preferred_read_replica` (≥ 0). A new node starts a new expiry; the
/// same node again keeps the old one (Java's rule: the leader is asked again every
/// `metadata.max.age.ms`).
fn set_read_replica(
    tp: &TopicPartition,
    s: &mut PartitionState,
    node: i32,
    now: Instant,
    settings: &FetchSettings,
) {
    if s.read_replica
        .is_some_and(|r| r.node == node && now <= r.expires)
    {
        return;
    }
    // `metadata.max.age.ms` may be as large as a Java long: an expiry past what `Instant`
    // holds means "never" (no overflow panic).
    let expires = now
        .checked_add(settings.read_replica_max_age)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now);
    tracing::debug!(topic = %tp.topic, partition = tp.partition, node, "fetching from the preferred read replica (KIP-392)");
    s.read_replica = Some(ReadReplica { node, expires });
}

fn uuid_of(id: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(id)
}

pub(crate) fn leader_epoch(metadata: &ClusterMetadata, tp: &TopicPartition) -> i32 {
    metadata
        .topic(&tp.topic)
        .and_then(|t| t.partitions.get(usize::try_from(tp.partition).ok()?))
        .map_or(-1, |p| p.leader_epoch)
}

fn is_session_error(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::FetchSessionIdNotFound | ResponseError::InvalidFetchSessionEpoch
    )
}

/// Errors that mean "ask the metadata who leads now" even if not flagged retriable.
pub(crate) fn is_leader_error(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::NotLeaderOrFollower
            | ResponseError::FencedLeaderEpoch
            | ResponseError::UnknownLeaderEpoch
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::UnknownTopicId
            | ResponseError::InconsistentTopicId
            | ResponseError::OffsetNotAvailable
            | ResponseError::KafkaStorageError
            | ResponseError::ReplicaNotAvailable
            | ResponseError::LeaderNotAvailable
    )
}
