//! The transaction coordinator of one `transactional.id` ([`TxnCoordinator`]: FindCoordinator
//! with key type 1, cached, calls retried until their deadline; the transactions v2 check) and
//! the transactional requests the producer builds (InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit, EndTxn).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, EndTxnRequest, GroupId,
    InitProducerIdRequest, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::ConsumerGroupMetadata;
use crate::error::Error;
use crate::io::cluster::Cluster;
use crate::io::connection::Connection;
use crate::state::group::coordinator::{find_coordinator_request, lookup_results, Lookup};
use crate::state::group::{OffsetAndMetadata, TopicPartition as GroupPartition};
use crate::state::metadata::BrokerInfo;
use crate::state::producer::transaction::{add_partitions_lookup_again, classify, TxnErrorClass};
use crate::state::producer::TopicPartition;

/// `key_type` of a transaction coordinator lookup.
pub(super) const KEY_TYPE_TRANSACTION: i8 = 1;

/// Highest versions of the transactions v1 path (the next ones belong to transactions v2,
/// KIP-890: implicit partition adds and an epoch bump per transaction).
pub(crate) const PRODUCE_V1_MAX: i16 = 11;
pub(super) const ADD_PARTITIONS_MAX: i16 = 3; // v4+ are broker-to-broker
pub(super) const END_TXN_V1_MAX: i16 = 4;
pub(super) const TXN_OFFSET_COMMIT_V1_MAX: i16 = 4;
/// The lowest versions transactions v2 need (KIP-890).
pub(super) const PRODUCE_V2_MIN: i16 = 12;
pub(super) const END_TXN_V2_MIN: i16 = 5;
pub(super) const TXN_OFFSET_COMMIT_V2_MIN: i16 = 5;
/// The finalized feature that turns transactions v2 on, and its level.
pub(super) const TRANSACTION_VERSION: &str = "transaction.version";
pub(super) const TRANSACTION_VERSION_2: i16 = 2;

/// The transaction coordinator of one transactional id: lookup, cache, retries.
#[derive(Debug)]
pub(crate) struct TxnCoordinator {
    cluster: Cluster,
    pub(crate) id: String,
    node: Mutex<Option<i32>>,
    backoff: Duration,
    backoff_max: Duration,
    /// Transactions v2 in use (shared with the sender's dispatchers: Produce v12+).
    pub(crate) v2: Arc<AtomicBool>,
}

impl TxnCoordinator {
    pub(crate) fn new(
        cluster: Cluster,
        id: String,
        backoff: Duration,
        max: Duration,
        v2: Arc<AtomicBool>,
    ) -> Self {
        TxnCoordinator {
            cluster,
            id,
            node: Mutex::new(None),
            backoff,
            backoff_max: max.max(backoff),
            v2,
        }
    }

    /// Whether the coordinator's broker offers transactions v2 (KIP-890): the finalized
    /// feature `transaction.version` ≥ 2 in its ApiVersions answer, and Produce v12, EndTxn
    /// v5 and TxnOffsetCommit v5 negotiated. Any failure to tell means v1.
    pub(crate) async fn supports_v2(&self, deadline: Instant) -> bool {
        let asked = self
            .call(deadline, |conn, timeout| async move {
                let versions_ok = conn.version(ApiKey::Produce)? >= PRODUCE_V2_MIN
                    && conn.version(ApiKey::EndTxn)? >= END_TXN_V2_MIN
                    && conn.version(ApiKey::TxnOffsetCommit)? >= TXN_OFFSET_COMMIT_V2_MIN;
                let version = conn.version(ApiKey::ApiVersions)?;
                if !versions_ok || version < 3 {
                    return Ok(false);
                }
                let request = crate::io::connection::api_versions_request();
                let response = conn.send(&request, version, timeout).await?;
                Ok(response.finalized_features_epoch >= 0
                    && response.finalized_features.iter().any(|f| {
                        f.name.as_str() == TRANSACTION_VERSION
                            && f.max_version_level >= TRANSACTION_VERSION_2
                    }))
            })
            .await;
        match asked {
            Ok(v2) => v2,
            Err((error, _)) => {
                debug!(transactional_id = %self.id, %error, "cannot tell the transaction version; using v1");
                false
            }
        }
    }

    fn cached(&self) -> Option<i32> {
        *self
            .node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set(&self, node: Option<i32>) {
        *self
            .node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = node;
    }

    /// FindCoordinator(TRANSACTION) once, on any broker.
    async fn find(&self, timeout: Duration) -> Result<i32, Error> {
        if let Some(node) = self.cached() {
            return Ok(node);
        }
        let conn = self.cluster.any_connection().await?;
        let version = conn.version(ApiKey::FindCoordinator)?;
        let keys = [self.id.as_str()];
        let request = find_coordinator_request(&keys, version)
            .map_err(|e| Error::Broker {
                api: ApiKey::FindCoordinator,
                code: ResponseError::InvalidRequest,
                message: Some(e.to_string()),
            })?
            .with_key_type(KEY_TYPE_TRANSACTION);
        let response = conn.send(&request, version, timeout).await?;
        let found = lookup_results(&response, &keys, version);
        match found.get(self.id.as_str()) {
            Some(Lookup::Found(info)) => {
                self.cluster.update_metadata(|m| {
                    m.add_broker(BrokerInfo {
                        node_id: info.node_id,
                        host: info.host.clone(),
                        port: info.port,
                        rack: None,
                    })
                });
                self.set(Some(info.node_id));
                debug!(transactional_id = %self.id, node = info.node_id, "transaction coordinator");
                Ok(info.node_id)
            }
            Some(Lookup::Failed(code, message)) => Err(Error::Broker {
                api: ApiKey::FindCoordinator,
                code: *code,
                message: message.clone(),
            }),
            Some(Lookup::Retry(code)) => Err(Error::Broker {
                api: ApiKey::FindCoordinator,
                code: *code,
                message: None,
            }),
            None => Err(Error::Broker {
                api: ApiKey::FindCoordinator,
                code: ResponseError::CoordinatorNotAvailable,
                message: None,
            }),
        }
    }

    /// Runs `call` on the coordinator's connection, looking it up again when it moved and
    /// retrying retriable errors (`CONCURRENT_TRANSACTIONS`, loading, connection failures)
    /// with backoff until `deadline`. Returns the last error at the deadline
    /// (`Err((error, true))`) or a non-retriable one at once (`Err((error, false))`).
    pub(crate) async fn call<T, F, Fut>(
        &self,
        deadline: Instant,
        mut call: F,
    ) -> Result<T, (Error, bool)>
    where
        F: FnMut(Connection, Duration) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempts = 0u32;
        loop {
            let timeout = self
                .cluster
                .config()
                .request_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let result = async {
                let node = self.find(timeout).await?;
                let conn = match self.cluster.coordinator_connection(node).await {
                    Ok(conn) => conn,
                    Err(err) => {
                        self.set(None);
                        return Err(err);
                    }
                };
                call(conn, timeout).await
            };
            let err = match tokio::time::timeout_at(deadline.into(), result).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => err,
                Err(_) => {
                    return Err((
                        Error::Broker {
                            api: ApiKey::FindCoordinator,
                            code: ResponseError::RequestTimedOut,
                            message: Some("transactional call deadline passed".to_owned()),
                        },
                        true,
                    ))
                }
            };
            match classify(&err) {
                TxnErrorClass::Rediscover => self.set(None),
                TxnErrorClass::Retry => {}
                _ => return Err((err, false)),
            }
            let pause = self
                .backoff
                .saturating_mul(1u32 << attempts.min(10))
                .min(self.backoff_max);
            debug!(transactional_id = %self.id, error = %err, attempts, "transactional call retried");
            if Instant::now() + pause >= deadline {
                return Err((err, true));
            }
            tokio::time::sleep(pause).await;
            attempts = attempts.saturating_add(1);
        }
    }

    /// AddOffsetsToTxn for `group` (transactions v1), retried until `deadline`; the error
    /// comes with whether the deadline passed (the request may then have been applied).
    pub(crate) async fn add_offsets(
        &self,
        pair: (i64, i16),
        group: &str,
        deadline: Instant,
    ) -> Result<(), (Error, bool)> {
        let request = add_offsets_request(&self.id, pair, group);
        self.call(deadline, |conn, timeout| {
            let request = request.clone();
            async move {
                let version = conn.version(ApiKey::AddOffsetsToTxn)?;
                let response = conn.send(&request, version, timeout).await?;
                Error::check(ApiKey::AddOffsetsToTxn, response.error_code, None)
            }
        })
        .await
    }

    /// AddPartitionsToTxn for `partitions`, once: per-partition answers.
    pub(crate) async fn add_partitions(
        &self,
        pair: (i64, i16),
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> Result<Vec<(TopicPartition, Option<ResponseError>)>, Error> {
        let deadline = Instant::now() + timeout;
        let request = add_partitions_request(&self.id, pair, partitions);
        let response = self
            .call(deadline, |conn, timeout| {
                let request = request.clone();
                async move {
                    let version = conn.version(ApiKey::AddPartitionsToTxn)?;
                    conn.send(&request, version.min(ADD_PARTITIONS_MAX), timeout)
                        .await
                }
            })
            .await
            .map_err(|(e, _)| e)?;
        let mut out = Vec::new();
        for topic in &response.results_by_topic_v3_and_below {
            for p in &topic.results_by_partition {
                out.push((
                    TopicPartition::new(&*topic.name.0, p.partition_index),
                    ResponseError::try_from_code(p.partition_error_code),
                ));
            }
        }
        if add_partitions_lookup_again(&out) {
            // The coordinator moved: the next AddPartitionsToTxn looks it up again.
            self.set(None);
        }
        Ok(out)
    }
}

pub(super) fn init_producer_id_request(
    id: &str,
    timeout: Duration,
    current: (i64, i16),
) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id.to_owned()))))
        .with_transaction_timeout_ms(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
        .with_producer_id(ProducerId(current.0))
        .with_producer_epoch(current.1)
}

fn add_partitions_request(
    id: &str,
    pair: (i64, i16),
    partitions: &[TopicPartition],
) -> AddPartitionsToTxnRequest {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for tp in partitions {
        match topics.iter_mut().find(|t| *t.name.0 == *tp.topic) {
            Some(t) => t.partitions.push(tp.partition),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.to_string())))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_string(id.to_owned())))
        .with_v3_and_below_producer_id(ProducerId(pair.0))
        .with_v3_and_below_producer_epoch(pair.1)
        .with_v3_and_below_topics(topics)
}

fn add_offsets_request(id: &str, pair: (i64, i16), group: &str) -> AddOffsetsToTxnRequest {
    AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_owned())))
        .with_producer_id(ProducerId(pair.0))
        .with_producer_epoch(pair.1)
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
}

pub(super) fn txn_offset_commit_request(
    id: &str,
    pair: (i64, i16),
    offsets: &BTreeMap<GroupPartition, OffsetAndMetadata>,
    group: &ConsumerGroupMetadata,
) -> TxnOffsetCommitRequest {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for (tp, offset) in offsets {
        let partition = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(tp.partition)
            .with_committed_offset(offset.offset)
            .with_committed_leader_epoch(offset.leader_epoch.unwrap_or(-1))
            .with_committed_metadata(
                offset
                    .metadata
                    .as_ref()
                    .map(|m| StrBytes::from_string(m.clone())),
            );
        match topics.iter_mut().find(|t| *t.name.0 == *tp.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_owned())))
        .with_group_id(GroupId(StrBytes::from_string(group.group_id.clone())))
        .with_producer_id(ProducerId(pair.0))
        .with_producer_epoch(pair.1)
        .with_generation_id(group.generation_id)
        .with_member_id(StrBytes::from_string(group.member_id.clone()))
        .with_group_instance_id(
            group
                .group_instance_id
                .as_ref()
                .map(|i| StrBytes::from_string(i.clone())),
        )
        .with_topics(topics)
}

pub(super) fn end_txn_request(id: &str, pair: (i64, i16), commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_owned())))
        .with_producer_id(ProducerId(pair.0))
        .with_producer_epoch(pair.1)
        .with_committed(commit)
}

/// The transactional requests at every version, for `crate::request_versions`.
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    let partitions = [
        TopicPartition::new("a", 0),
        TopicPartition::new("a", 1),
        TopicPartition::new("b", 0),
    ];
    for v in Encoder::versions(ApiKey::AddPartitionsToTxn) {
        if v <= ADD_PARTITIONS_MAX {
            enc.check(
                "AddPartitionsToTxn",
                v,
                &add_partitions_request("tx", (7, 1), &partitions),
            );
        }
    }
    for v in Encoder::versions(ApiKey::AddOffsetsToTxn) {
        enc.check(
            "AddOffsetsToTxn",
            v,
            &add_offsets_request("tx", (7, 1), "g"),
        );
    }
    for v in Encoder::versions(ApiKey::EndTxn) {
        for commit in [true, false] {
            enc.check("EndTxn", v, &end_txn_request("tx", (7, 1), commit));
        }
    }
    let mut offsets = BTreeMap::new();
    offsets.insert(
        GroupPartition {
            topic: "a".to_owned(),
            partition: 0,
        },
        OffsetAndMetadata::new(5),
    );
    let mut member = ConsumerGroupMetadata::new("g");
    for v in Encoder::versions(ApiKey::TxnOffsetCommit) {
        enc.check(
            "TxnOffsetCommit (no member)",
            v,
            &txn_offset_commit_request("tx", (7, 1), &offsets, &member),
        );
    }
    member.generation_id = 3;
    member.member_id = "m-1".to_owned();
    member.group_instance_id = Some("i-1".to_owned());
    for v in Encoder::versions(ApiKey::TxnOffsetCommit) {
        if v >= 3 {
            enc.check(
                "TxnOffsetCommit (member, KIP-447)",
                v,
                &txn_offset_commit_request("tx", (7, 1), &offsets, &member),
            );
        }
    }
    for v in Encoder::versions(ApiKey::InitProducerId) {
        enc.check(
            "InitProducerId (transactional)",
            v,
            &init_producer_id_request("tx", Duration::from_secs(60), (-1, -1)),
        );
    }
}
