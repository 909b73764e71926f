//! The hanging-transaction tools of KIP-664 on the partition side: what producers a
//! partition's leader knows (`describe_producers`, DescribeProducers) and ending a transaction
//! its coordinator forgot (`abort_transaction`, an abort marker written with WriteTxnMarkers
//! by the partition's leader), as Java's `Admin.describeProducers` / `abortTransaction`.
//!
//! A transaction is *hanging* when a partition holds its records but no coordinator will ever
//! end it: its last stable offset (LSO) stays at the transaction's first offset, and every
//! `read_committed` consumer of the partition stops there. `describe_producers` shows the
//! producer with its `current_txn_start_offset`; `abort_transaction` writes the abort marker
//! that moves the LSO on.
//!
//! ```no_run
//! # async fn example() -> Result<(), kafkit::admin::TxnAdminError> {
//! use kafkit::admin::Admin;
//! use kafkit::TopicPartition;
//!
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! let tp = TopicPartition::new("orders", 0);
//! let producers = admin.describe_producers(&[tp.clone()]).await?;
//! for p in &producers[&tp] {
//!     if let Some(spec) = p.abort_spec(&tp) {
//!         println!("producer {} holds {tp:?} open since offset {:?}", p.producer_id, p.current_txn_start_offset);
//!         admin.abort_transaction(&spec).await?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId, TopicName,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Admin;
use crate::error::Error;
use crate::state::admin_retry::Route;
use crate::state::backoff::ExponentialBackoff;
use crate::state::group::TopicPartition;

/// A producer a partition's leader knows, from DescribeProducers (Java's `ProducerState`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The last sequence number the partition accepted from it (-1: none).
    pub last_sequence: i32,
    /// The timestamp (ms) of its last write to the partition (-1: none).
    pub last_timestamp_ms: i64,
    /// The epoch of the transaction coordinator that wrote its last marker here (`None`: no
    /// marker yet).
    pub coordinator_epoch: Option<i32>,
    /// The first offset of its open transaction on this partition (`None`: no transaction
    /// open). The partition's last stable offset cannot pass it until the transaction ends.
    pub current_txn_start_offset: Option<i64>,
}

impl ProducerState {
    /// The spec that aborts this producer's open transaction on `partition` (the coordinator
    /// epoch of its last marker, or 0 when it has none, as Java's `kafka-transactions.sh
    /// abort` does); `None` when no transaction is open.
    ///
    /// ```
    /// use kafkit::admin::ProducerState;
    /// use kafkit::TopicPartition;
    ///
    /// fn abort_specs(tp: &TopicPartition, producers: &[ProducerState]) -> usize {
    ///     producers.iter().filter_map(|p| p.abort_spec(tp)).count()
    /// }
    /// assert_eq!(abort_specs(&TopicPartition::new("t", 0), &[]), 0);
    /// ```
    pub fn abort_spec(&self, partition: &TopicPartition) -> Option<AbortTransactionSpec> {
        self.current_txn_start_offset?;
        Some(AbortTransactionSpec {
            partition: partition.clone(),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            coordinator_epoch: self.coordinator_epoch.unwrap_or(0),
        })
    }
}

/// Which transaction [`Admin::abort_transaction`] ends (Java's `AbortTransactionSpec`): the
/// partition, the producer id and epoch that wrote the open transaction, and the coordinator
/// epoch to write the marker with (see [`ProducerState::abort_spec`]).
///
/// ```
/// use kafkit::admin::AbortTransactionSpec;
/// use kafkit::TopicPartition;
///
/// let spec = AbortTransactionSpec::new(TopicPartition::new("orders", 3), 4001, 0, 0);
/// assert_eq!(spec.producer_id, 4001);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortTransactionSpec {
    /// The partition that holds the open transaction.
    pub partition: TopicPartition,
    /// The producer id that wrote it.
    pub producer_id: i64,
    /// That producer's epoch (a marker with an older epoch than the partition's is refused).
    pub producer_epoch: i16,
    /// The coordinator epoch the marker carries (one older than the partition's last marker
    /// is refused).
    pub coordinator_epoch: i32,
}

impl AbortTransactionSpec {
    /// A spec from its four parts.
    ///
    /// ```
    /// # use kafkit::admin::AbortTransactionSpec;
    /// # use kafkit::TopicPartition;
    /// let spec = AbortTransactionSpec::new(TopicPartition::new("t", 0), 7, 2, 1);
    /// assert_eq!((spec.producer_epoch, spec.coordinator_epoch), (2, 1));
    /// ```
    pub fn new(
        partition: TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> AbortTransactionSpec {
        AbortTransactionSpec {
            partition,
            producer_id,
            producer_epoch,
            coordinator_epoch,
        }
    }
}

/// Why [`Admin::describe_producers`] or [`Admin::abort_transaction`] failed; the
/// partition-level variants name the partition.
///
/// ```
/// use kafkit::admin::TxnAdminError;
/// use kafkit::TopicPartition;
///
/// let err = TxnAdminError::UnknownTopicOrPartition { partition: TopicPartition::new("gone", 0) };
/// assert!(!err.is_retriable());
/// assert_eq!(err.partition().map(|tp| tp.partition), Some(0));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TxnAdminError {
    /// The partition's producer has a newer epoch than the spec's (`INVALID_PRODUCER_EPOCH`
    /// or `PRODUCER_FENCED`): the transaction was ended, or the producer moved on, since the
    /// spec was made. Describe the producers again.
    #[error("{}-{}: producer {producer_id} has a newer epoch than {producer_epoch} ({code})", partition.topic, partition.partition)]
    ProducerEpoch {
        /// The partition.
        partition: TopicPartition,
        /// The producer id of the spec.
        producer_id: i64,
        /// The epoch of the spec.
        producer_epoch: i16,
        /// The broker's code.
        code: ResponseError,
    },
    /// The partition saw a marker from a newer coordinator epoch than the spec's
    /// (`TRANSACTION_COORDINATOR_FENCED`).
    #[error("{}-{}: coordinator epoch {coordinator_epoch} is older than the partition's last marker", partition.topic, partition.partition)]
    CoordinatorFenced {
        /// The partition.
        partition: TopicPartition,
        /// The coordinator epoch of the spec.
        coordinator_epoch: i32,
    },
    /// Not allowed (`CLUSTER_AUTHORIZATION_FAILED`: writing markers needs `ClusterAction`;
    /// `TOPIC_AUTHORIZATION_FAILED`: describing needs `Read` on the topic).
    #[error("{}-{}: not authorized ({code})", partition.topic, partition.partition)]
    NotAuthorized {
        /// The partition.
        partition: TopicPartition,
        /// The broker's code.
        code: ResponseError,
    },
    /// The topic, or this partition of it, does not exist.
    #[error("{}-{}: unknown topic or partition", partition.topic, partition.partition)]
    UnknownTopicOrPartition {
        /// The partition.
        partition: TopicPartition,
    },
    /// Any other failure of this partition: another broker error code, a bad answer, or a
    /// retriable error (leader moved, not ready) that lasted until `default.api.timeout.ms`.
    #[error("{}-{}: {source}", partition.topic, partition.partition)]
    Partition {
        /// The partition.
        partition: TopicPartition,
        /// What failed.
        #[source]
        source: Error,
    },
    /// A failure not tied to one partition (metadata, connection, the client closed).
    #[error(transparent)]
    Request(#[from] Error),
}

impl TxnAdminError {
    /// The partition the error is about (`None` for [`TxnAdminError::Request`]).
    ///
    /// ```
    /// # use kafkit::admin::TxnAdminError;
    /// let err = TxnAdminError::Request(kafkit::Error::NoBrokers);
    /// assert!(err.partition().is_none());
    /// ```
    pub fn partition(&self) -> Option<&TopicPartition> {
        match self {
            TxnAdminError::ProducerEpoch { partition, .. }
            | TxnAdminError::CoordinatorFenced { partition, .. }
            | TxnAdminError::NotAuthorized { partition, .. }
            | TxnAdminError::UnknownTopicOrPartition { partition }
            | TxnAdminError::Partition { partition, .. } => Some(partition),
            TxnAdminError::Request(_) => None,
        }
    }

    /// Whether calling again later can succeed (a retriable broker or connection error
    /// that outlasted the request timeout).
    ///
    /// ```
    /// # use kafkit::admin::TxnAdminError;
    /// assert!(!TxnAdminError::Request(kafkit::Error::NoBrokers).is_retriable());
    /// ```
    pub fn is_retriable(&self) -> bool {
        match self {
            TxnAdminError::Partition { source, .. } | TxnAdminError::Request(source) => {
                source.is_retriable()
            }
            _ => false,
        }
    }
}

/// What one partition's answer means.
#[derive(Debug, Clone, PartialEq)]
enum Outcome<T> {
    /// Answered.
    Done(T),
    /// Ask again (the leader's, after fresh metadata) until the deadline; the error is what
    /// the caller gets when the deadline passes.
    Retry(ErrorOf),
    /// Failed for good.
    Fail(ErrorOf),
}

/// A partition error without its partition (added by [`ErrorOf::of`]).
#[derive(Debug, Clone, PartialEq)]
enum ErrorOf {
    Code(ApiKey, ResponseError, Option<String>),
    ProducerEpoch(ResponseError),
    CoordinatorFenced,
    NotAuthorized(ResponseError),
    UnknownTopicOrPartition,
}

impl ErrorOf {
    fn of(self, partition: &TopicPartition, spec: Option<&AbortTransactionSpec>) -> TxnAdminError {
        let partition = partition.clone();
        match self {
            ErrorOf::Code(api, code, message) => TxnAdminError::Partition {
                partition,
                source: Error::Broker { api, code, message },
            },
            ErrorOf::ProducerEpoch(code) => TxnAdminError::ProducerEpoch {
                partition,
                producer_id: spec.map_or(-1, |s| s.producer_id),
                producer_epoch: spec.map_or(-1, |s| s.producer_epoch),
                code,
            },
            ErrorOf::CoordinatorFenced => TxnAdminError::CoordinatorFenced {
                partition,
                coordinator_epoch: spec.map_or(-1, |s| s.coordinator_epoch),
            },
            ErrorOf::NotAuthorized(code) => TxnAdminError::NotAuthorized { partition, code },
            ErrorOf::UnknownTopicOrPartition => {
                TxnAdminError::UnknownTopicOrPartition { partition }
            }
        }
    }
}

/// Classifies a partition's error code (not 0) for `api`: leader errors and retriable codes
/// are asked again; epochs, fencing and authorization fail with their own variant.
fn classify<T>(api: ApiKey, code: i16, message: Option<String>) -> Outcome<T> {
    let Some(err) = ResponseError::try_from_code(code) else {
        return Outcome::Fail(ErrorOf::Code(api, ResponseError::UnknownServerError, {
            Some(format!("unknown error code {code}"))
        }));
    };
    match err {
        ResponseError::NotLeaderOrFollower
        | ResponseError::LeaderNotAvailable
        | ResponseError::UnknownTopicOrPartition => Outcome::Retry(match err {
            ResponseError::UnknownTopicOrPartition => ErrorOf::UnknownTopicOrPartition,
            _ => ErrorOf::Code(api, err, message),
        }),
        ResponseError::InvalidProducerEpoch | ResponseError::ProducerFenced => {
            Outcome::Fail(ErrorOf::ProducerEpoch(err))
        }
        ResponseError::TransactionCoordinatorFenced => Outcome::Fail(ErrorOf::CoordinatorFenced),
        ResponseError::ClusterAuthorizationFailed | ResponseError::TopicAuthorizationFailed => {
            Outcome::Fail(ErrorOf::NotAuthorized(err))
        }
        _ if err.is_retriable() => Outcome::Retry(ErrorOf::Code(api, err, message)),
        _ => Outcome::Fail(ErrorOf::Code(api, err, message)),
    }
}

/// What the metadata says of `partition` of `topic` before its leader is asked: `Ok` when
/// it exists; an unknown topic or partition, or a retriable metadata error, is looked up
/// again until the deadline (as Java's admin does: a new topic may not have reached every
/// broker yet); authorization and other errors fail.
fn locate(
    topic: Option<&crate::state::metadata::TopicInfo>,
    partition: i32,
) -> Result<(), Outcome<()>> {
    let Some(info) = topic else {
        return Err(Outcome::Retry(ErrorOf::UnknownTopicOrPartition));
    };
    match info.error {
        None if info.partitions.iter().any(|p| p.partition == partition) => Ok(()),
        None | Some(ResponseError::UnknownTopicOrPartition) => {
            Err(Outcome::Retry(ErrorOf::UnknownTopicOrPartition))
        }
        Some(code @ ResponseError::TopicAuthorizationFailed) => {
            Err(Outcome::Fail(ErrorOf::NotAuthorized(code)))
        }
        Some(code) if code.is_retriable() => {
            Err(Outcome::Retry(ErrorOf::Code(ApiKey::Metadata, code, None)))
        }
        Some(code) => Err(Outcome::Fail(ErrorOf::Code(ApiKey::Metadata, code, None))),
    }
}

/// DescribeProducers for `partitions` (all on one leader).
fn describe_request(partitions: &[TopicPartition]) -> DescribeProducersRequest {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics
            .entry(tp.topic.as_str())
            .or_default()
            .push(tp.partition);
    }
    DescribeProducersRequest::default().with_topics(
        topics
            .into_iter()
            .map(|(name, partitions)| {
                TopicRequest::default()
                    .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                    .with_partition_indexes(partitions)
            })
            .collect(),
    )
}

fn epoch_of(value: i32) -> Option<i16> {
    i16::try_from(value).ok()
}

/// Each asked partition's outcome in a DescribeProducers answer (an asked partition missing
/// from the answer is asked again).
fn describe_outcomes(
    response: &DescribeProducersResponse,
    asked: &[TopicPartition],
) -> Vec<(TopicPartition, Outcome<Vec<ProducerState>>)> {
    let api = ApiKey::DescribeProducers;
    let mut out: BTreeMap<&TopicPartition, Outcome<Vec<ProducerState>>> = asked
        .iter()
        .map(|tp| {
            let missing = ErrorOf::Code(
                api,
                ResponseError::UnknownServerError,
                Some("the partition is missing from the answer".to_owned()),
            );
            (tp, Outcome::Retry(missing))
        })
        .collect();
    for topic in &response.topics {
        for p in &topic.partitions {
            let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
            let Some(slot) = out.get_mut(&tp) else {
                continue;
            };
            if p.error_code != 0 {
                let message = p.error_message.as_ref().map(|m| m.as_str().to_owned());
                *slot = classify(api, p.error_code, message);
                continue;
            }
            let mut producers = Vec::with_capacity(p.active_producers.len());
            let mut bad = None;
            for s in &p.active_producers {
                let Some(producer_epoch) = epoch_of(s.producer_epoch) else {
                    bad = Some(s.producer_epoch);
                    break;
                };
                producers.push(ProducerState {
                    producer_id: s.producer_id.0,
                    producer_epoch,
                    last_sequence: s.last_sequence,
                    last_timestamp_ms: s.last_timestamp,
                    coordinator_epoch: (s.coordinator_epoch >= 0).then_some(s.coordinator_epoch),
                    current_txn_start_offset: (s.current_txn_start_offset >= 0)
                        .then_some(s.current_txn_start_offset),
                });
            }
            *slot = match bad {
                Some(epoch) => Outcome::Fail(ErrorOf::Code(
                    api,
                    ResponseError::UnknownServerError,
                    Some(format!("producer epoch {epoch} out of range")),
                )),
                None => Outcome::Done(producers),
            };
        }
    }
    out.into_iter().map(|(tp, o)| (tp.clone(), o)).collect()
}

/// The abort marker of `spec` (WriteTxnMarkers, `transaction_result` false = abort).
fn abort_request(spec: &AbortTransactionSpec) -> WriteTxnMarkersRequest {
    let topic = WritableTxnMarkerTopic::default()
        .with_name(TopicName(StrBytes::from_string(
            spec.partition.topic.clone(),
        )))
        .with_partition_indexes(vec![spec.partition.partition]);
    WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(spec.producer_id))
        .with_producer_epoch(spec.producer_epoch)
        .with_transaction_result(false)
        .with_topics(vec![topic])
        .with_coordinator_epoch(spec.coordinator_epoch)])
}

/// What a WriteTxnMarkers answer says about `spec`'s partition: exactly one marker result
/// for the producer, naming the partition.
fn abort_outcome(response: &WriteTxnMarkersResponse, spec: &AbortTransactionSpec) -> Outcome<()> {
    let api = ApiKey::WriteTxnMarkers;
    let bad = |what: String| {
        Outcome::Fail(ErrorOf::Code(
            api,
            ResponseError::UnknownServerError,
            Some(what),
        ))
    };
    let [marker] = response.markers.as_slice() else {
        return bad(format!(
            "{} marker results for one marker",
            response.markers.len()
        ));
    };
    if marker.producer_id.0 != spec.producer_id {
        return bad(format!(
            "a result for producer {}, not {}",
            marker.producer_id.0, spec.producer_id
        ));
    }
    let mut found = None;
    for t in &marker.topics {
        for p in &t.partitions {
            if t.name.0.as_str() == spec.partition.topic
                && p.partition_index == spec.partition.partition
            {
                if found.is_some() {
                    return bad("the partition answered twice".to_owned());
                }
                found = Some(p.error_code);
            } else {
                return bad(format!(
                    "a result for {}-{}, which was not asked",
                    t.name.0.as_str(),
                    p.partition_index
                ));
            }
        }
    }
    match found {
        None => bad("no result for the partition".to_owned()),
        Some(0) => Outcome::Done(()),
        Some(code) => classify(api, code, None),
    }
}

impl Admin {
    /// The producers each partition's leader knows, with their open transactions (Java's
    /// `describeProducers`): DescribeProducers to each partition's leader, leader errors asked
    /// again with fresh metadata until `default.api.timeout.ms`. The first partition that fails
    /// fails the call, named in the error (as Java's `all()`).
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Vec<ProducerState>>, TxnAdminError> {
        let mut pending: Vec<TopicPartition> = partitions.to_vec();
        pending.sort();
        pending.dedup();
        self.per_leader(
            "describe_producers",
            pending,
            None,
            |admin, leader, asked, timeout| async move {
                let conn = admin.cluster.connection(leader).await?;
                let version = conn.version(ApiKey::DescribeProducers)?;
                let response = conn
                    .send(&describe_request(&asked), version, timeout)
                    .await?;
                Ok(describe_outcomes(&response, &asked))
            },
        )
        .await
    }

    /// Aborts a hanging transaction (Java's `abortTransaction`): the partition's leader
    /// writes an abort marker for `spec`'s producer (WriteTxnMarkers), which ends the
    /// producer's open transaction on that partition and lets its last stable offset move on.
    /// Only for transactions their coordinator will not end (see [`ProducerState::abort_spec`]);
    /// an epoch older than the partition's is refused
    /// ([`TxnAdminError::ProducerEpoch`], [`TxnAdminError::CoordinatorFenced`]). Leader
    /// errors are asked again with fresh metadata until `default.api.timeout.ms`.
    pub async fn abort_transaction(
        &self,
        spec: &AbortTransactionSpec,
    ) -> Result<(), TxnAdminError> {
        let request = abort_request(spec);
        let request = &request;
        self.per_leader(
            "abort_transaction",
            vec![spec.partition.clone()],
            Some(spec),
            |admin, leader, asked, timeout| async move {
                let conn = admin.cluster.connection(leader).await?;
                let version = conn.version(ApiKey::WriteTxnMarkers)?;
                let response = conn.send(request, version, timeout).await?;
                Ok(asked
                    .into_iter()
                    .map(|tp| (tp, abort_outcome(&response, spec)))
                    .collect())
            },
        )
        .await
        .map(|_| ())
    }

    /// Asks each partition of `pending` of its leader (`ask`: one request per leader) until
    /// every one is answered, one fails, or the request timeout passes (then the last
    /// retriable error of a partition still pending).
    async fn per_leader<'a, T, F, Fut>(
        &'a self,
        name: &'static str,
        mut pending: Vec<TopicPartition>,
        spec: Option<&AbortTransactionSpec>,
        ask: F,
    ) -> Result<BTreeMap<TopicPartition, T>, TxnAdminError>
    where
        F: Fn(&'a Admin, i32, Vec<TopicPartition>, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(TopicPartition, Outcome<T>)>, Error>>,
    {
        // The call's deadline and request timeouts as every admin call's; the per-partition
        // outcomes are this module's (typed `TxnAdminError`s).
        let call = self.call(name, Route::Leader);
        let deadline = call.deadline();
        let config = self.cluster.config();
        let backoff = ExponentialBackoff::new(config.retry_backoff, config.retry_backoff_max);
        let mut failures = 0;
        let mut out = BTreeMap::new();
        loop {
            let mut last: Option<TxnAdminError> = None;
            let mut topics: Vec<&str> = pending.iter().map(|tp| tp.topic.as_str()).collect();
            topics.dedup();
            if let Err(err) = self.cluster.refresh_metadata(Some(&topics)).await {
                if !err.is_retriable() {
                    return Err(err.into());
                }
            }
            let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
            {
                let metadata = self.cluster.metadata();
                for tp in &pending {
                    match locate(metadata.topic(&tp.topic), tp.partition) {
                        Ok(()) => {}
                        Err(Outcome::Fail(e)) => return Err(e.of(tp, spec)),
                        Err(Outcome::Retry(e)) => {
                            last = Some(e.of(tp, spec));
                            continue;
                        }
                        Err(Outcome::Done(())) => {}
                    }
                    match metadata.leader(&tp.topic, tp.partition) {
                        Some(leader) => by_leader
                            .entry(leader.node_id)
                            .or_default()
                            .push(tp.clone()),
                        None => {
                            let e = ErrorOf::Code(
                                ApiKey::Metadata,
                                ResponseError::LeaderNotAvailable,
                                None,
                            );
                            last = Some(e.of(tp, spec));
                        }
                    }
                }
            }
            for (leader, asked) in by_leader {
                let timeout = call.attempt().timeout;
                match ask(self, leader, asked.clone(), timeout).await {
                    Ok(outcomes) => {
                        for (tp, outcome) in outcomes {
                            match outcome {
                                Outcome::Done(value) => {
                                    pending.retain(|p| *p != tp);
                                    out.insert(tp, value);
                                }
                                Outcome::Retry(e) => last = Some(e.of(&tp, spec)),
                                Outcome::Fail(e) => return Err(e.of(&tp, spec)),
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        last = Some(TxnAdminError::Partition {
                            partition: asked[0].clone(),
                            source: e,
                        })
                    }
                    Err(e) => return Err(TxnAdminError::Request(e)),
                }
            }
            if pending.is_empty() {
                return Ok(out);
            }
            let pause = backoff.backoff(failures, &mut *self.rng());
            failures += 1;
            if Instant::now() + pause > deadline {
                return Err(last.unwrap_or_else(|| TxnAdminError::Partition {
                    partition: pending[0].clone(),
                    source: Error::Broker {
                        api: ApiKey::Metadata,
                        code: ResponseError::RequestTimedOut,
                        message: None,
                    },
                }));
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// DescribeProducers and WriteTxnMarkers at every version, for `crate::request_versions`.
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    let tps = [
        TopicPartition::new("a", 0),
        TopicPartition::new("a", 2),
        TopicPartition::new("b", 1),
    ];
    for v in Encoder::versions(ApiKey::DescribeProducers) {
        enc.check("DescribeProducers", v, &describe_request(&tps));
    }
    let spec = AbortTransactionSpec::new(TopicPartition::new("a", 0), 9, 3, 0);
    for v in Encoder::versions(ApiKey::WriteTxnMarkers) {
        enc.check("WriteTxnMarkers (abort)", v, &abort_request(&spec));
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_producers_response::{
        PartitionResponse, ProducerState as WireProducer, TopicResponse,
    };
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };

    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn name(t: &str) -> TopicName {
        TopicName(StrBytes::from_string(t.to_owned()))
    }

    #[test]
    fn describe_request_groups_partitions_by_topic() {
        let r = describe_request(&[tp("b", 1), tp("a", 0), tp("a", 2)]);
        let topics: Vec<(&str, &[i32])> = r
            .topics
            .iter()
            .map(|t| (t.name.0.as_str(), t.partition_indexes.as_slice()))
            .collect();
        assert_eq!(topics, [("a", &[0, 2][..]), ("b", &[1][..])]);
    }

    #[test]
    fn abort_request_is_one_abort_marker_for_the_spec() {
        let spec = AbortTransactionSpec::new(tp("t", 4), 77, 5, 2);
        let r = abort_request(&spec);
        assert_eq!(r.markers.len(), 1);
        let m = &r.markers[0];
        assert_eq!(
            (m.producer_id.0, m.producer_epoch, m.coordinator_epoch),
            (77, 5, 2)
        );
        assert!(!m.transaction_result, "false is abort");
        assert_eq!(m.topics.len(), 1);
        assert_eq!(m.topics[0].name.0.as_str(), "t");
        assert_eq!(m.topics[0].partition_indexes, [4]);
    }

    fn wire_producer(id: i64, coordinator_epoch: i32, start: i64) -> WireProducer {
        WireProducer::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(3)
            .with_last_sequence(9)
            .with_last_timestamp(1_000)
            .with_coordinator_epoch(coordinator_epoch)
            .with_current_txn_start_offset(start)
    }

    #[test]
    fn describe_answer_maps_states_errors_and_missing_partitions() {
        let response =
            DescribeProducersResponse::default().with_topics(vec![TopicResponse::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    PartitionResponse::default()
                        .with_partition_index(0)
                        .with_active_producers(vec![
                            wire_producer(5, -1, 42),
                            wire_producer(6, 3, -1),
                        ]),
                    PartitionResponse::default()
                        .with_partition_index(1)
                        .with_error_code(ResponseError::NotLeaderOrFollower.code()),
                    PartitionResponse::default()
                        .with_partition_index(2)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                    // Not asked: ignored.
                    PartitionResponse::default().with_partition_index(9),
                ])]);
        let asked = [tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3)];
        let out: BTreeMap<_, _> = describe_outcomes(&response, &asked).into_iter().collect();
        assert_eq!(out.len(), 4);
        let Outcome::Done(states) = &out[&tp("t", 0)] else {
            panic!("{:?}", out[&tp("t", 0)]);
        };
        assert_eq!(
            states[0],
            ProducerState {
                producer_id: 5,
                producer_epoch: 3,
                last_sequence: 9,
                last_timestamp_ms: 1_000,
                coordinator_epoch: None,
                current_txn_start_offset: Some(42),
            }
        );
        assert_eq!(
            (
                states[1].coordinator_epoch,
                states[1].current_txn_start_offset
            ),
            (Some(3), None)
        );
        // The spec of an open transaction: coordinator epoch 0 when no marker was written.
        assert_eq!(
            states[0].abort_spec(&tp("t", 0)),
            Some(AbortTransactionSpec::new(tp("t", 0), 5, 3, 0))
        );
        assert_eq!(states[1].abort_spec(&tp("t", 0)), None);
        assert!(matches!(
            out[&tp("t", 1)],
            Outcome::Retry(ErrorOf::Code(_, ResponseError::NotLeaderOrFollower, _))
        ));
        assert!(matches!(
            out[&tp("t", 2)],
            Outcome::Fail(ErrorOf::NotAuthorized(_))
        ));
        assert!(
            matches!(out[&tp("t", 3)], Outcome::Retry(_)),
            "missing: asked again"
        );
    }

    #[test]
    fn an_epoch_out_of_range_is_a_bad_answer_not_a_truncation() {
        let response =
            DescribeProducersResponse::default().with_topics(vec![TopicResponse::default()
                .with_name(name("t"))
                .with_partitions(vec![PartitionResponse::default().with_active_producers(
                    vec![wire_producer(1, 0, 0).with_producer_epoch(70_000)],
                )])]);
        let out = describe_outcomes(&response, &[tp("t", 0)]);
        assert!(matches!(
            out[0].1,
            Outcome::Fail(ErrorOf::Code(_, ResponseError::UnknownServerError, _))
        ));
    }

    fn markers(producer: i64, results: &[(&str, i32, i16)]) -> WriteTxnMarkersResponse {
        let topics = results
            .iter()
            .map(|(t, p, code)| {
                WritableTxnMarkerTopicResult::default()
                    .with_name(name(t))
                    .with_partitions(vec![WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(*p)
                        .with_error_code(*code)])
            })
            .collect();
        WriteTxnMarkersResponse::default().with_markers(vec![WritableTxnMarkerResult::default()
            .with_producer_id(ProducerId(producer))
            .with_topics(topics)])
    }

    #[test]
    fn abort_answer_is_classified_per_error_code() {
        let spec = AbortTransactionSpec::new(tp("t", 0), 8, 1, 0);
        assert_eq!(
            abort_outcome(&markers(8, &[("t", 0, 0)]), &spec),
            Outcome::Done(())
        );
        let code = |e: ResponseError| abort_outcome(&markers(8, &[("t", 0, e.code())]), &spec);
        assert!(matches!(
            code(ResponseError::InvalidProducerEpoch),
            Outcome::Fail(ErrorOf::ProducerEpoch(_))
        ));
        assert!(matches!(
            code(ResponseError::ProducerFenced),
            Outcome::Fail(ErrorOf::ProducerEpoch(_))
        ));
        assert!(matches!(
            code(ResponseError::TransactionCoordinatorFenced),
            Outcome::Fail(ErrorOf::CoordinatorFenced)
        ));
        assert!(matches!(
            code(ResponseError::ClusterAuthorizationFailed),
            Outcome::Fail(ErrorOf::NotAuthorized(_))
        ));
        assert!(matches!(
            code(ResponseError::NotLeaderOrFollower),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            code(ResponseError::CoordinatorLoadInProgress),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            code(ResponseError::UnknownTopicOrPartition),
            Outcome::Retry(ErrorOf::UnknownTopicOrPartition)
        ));
        assert!(matches!(
            code(ResponseError::InvalidRequest),
            Outcome::Fail(ErrorOf::Code(..))
        ));
        // The typed error names the spec.
        let Outcome::Fail(e) = code(ResponseError::InvalidProducerEpoch) else {
            unreachable!()
        };
        let err = e.of(&spec.partition, Some(&spec));
        assert!(
            matches!(
                err,
                TxnAdminError::ProducerEpoch {
                    producer_id: 8,
                    producer_epoch: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.partition(), Some(&tp("t", 0)));
        assert!(err.to_string().starts_with("t-0: producer 8"), "{err}");
    }

    #[test]
    fn abort_answers_that_do_not_match_the_marker_are_refused() {
        let spec = AbortTransactionSpec::new(tp("t", 0), 8, 1, 0);
        let refused = |r: &WriteTxnMarkersResponse| {
            matches!(
                abort_outcome(r, &spec),
                Outcome::Fail(ErrorOf::Code(_, ResponseError::UnknownServerError, _))
            )
        };
        assert!(refused(&WriteTxnMarkersResponse::default()), "no marker");
        assert!(refused(&markers(9, &[("t", 0, 0)])), "another producer");
        assert!(refused(&markers(8, &[])), "no partition");
        assert!(refused(&markers(8, &[("t", 1, 0)])), "another partition");
        assert!(refused(&markers(8, &[("t", 0, 0), ("t", 0, 0)])), "twice");
        let mut two = markers(8, &[("t", 0, 0)]);
        two.markers.push(two.markers[0].clone());
        assert!(refused(&two), "two markers");
    }

    #[test]
    fn metadata_lookups_retry_unknown_topics_and_fail_authorization() {
        use crate::state::metadata::{PartitionInfo, TopicInfo};
        let topic = |error, partitions: i32| TopicInfo {
            name: "t".to_owned(),
            topic_id: [0; 16],
            is_internal: false,
            partitions: (0..partitions)
                .map(|p| PartitionInfo {
                    partition: p,
                    leader: Some(1),
                    leader_epoch: 0,
                    replicas: vec![1],
                    isr: vec![1],
                    error: None,
                })
                .collect(),
            error,
        };
        assert_eq!(locate(Some(&topic(None, 2)), 1), Ok(()));
        assert_eq!(
            locate(Some(&topic(None, 2)), 2),
            Err(Outcome::Retry(ErrorOf::UnknownTopicOrPartition))
        );
        assert_eq!(
            locate(None, 0),
            Err(Outcome::Retry(ErrorOf::UnknownTopicOrPartition))
        );
        assert_eq!(
            locate(
                Some(&topic(Some(ResponseError::TopicAuthorizationFailed), 0)),
                0
            ),
            Err(Outcome::Fail(ErrorOf::NotAuthorized(
                ResponseError::TopicAuthorizationFailed
            )))
        );
        assert!(matches!(
            locate(Some(&topic(Some(ResponseError::LeaderNotAvailable), 0)), 0),
            Err(Outcome::Retry(_))
        ));
        assert!(matches!(
            locate(
                Some(&topic(Some(ResponseError::InvalidTopicException), 0)),
                0
            ),
            Err(Outcome::Fail(_))
        ));
    }
}
