//! Admin calls on a topic's partitions: add partitions (CreatePartitions) and delete the
//! records before an offset (DeleteRecords, sent to each partition's leader).
//!
//! ```no_run
//! # async fn example() -> Result<(), kafkit::Error> {
//! use kafkit::admin::Admin;
//! use kafkit::state::group::TopicPartition;
//!
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! admin.create_partitions(&[("events", 12)]).await?;
//! let low = admin
//!     .delete_records(&[(TopicPartition::new("events", 0), 1_000)])
//!     .await?;
//! println!("partition 0 now starts at {:?}", low.values().next());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::{duration_ms, requests, Admin};
use crate::error::{Error, Result};
use crate::state::admin_retry::Route;
use crate::state::group::TopicPartition;

impl Admin {
    /// Grows each topic to the given total partition count (Java's `createPartitions` with
    /// `NewPartitions.increaseTo`), then waits (within the request timeout) until the
    /// metadata shows that many partitions, each with a leader. A count not above the current
    /// one is the broker's `INVALID_PARTITIONS` error, naming the topic.
    pub async fn create_partitions(&self, topics: &[(&str, i32)]) -> Result<()> {
        let mut call = self.call("create_partitions", Route::AnyBroker);
        loop {
            match self
                .create_partitions_once(topics, call.attempt().timeout)
                .await
            {
                Ok(()) => break,
                Err(err) => call.failed(err).await?,
            }
        }
        self.wait_for_leaders(topics, &call).await
    }

    async fn create_partitions_once(
        &self,
        topics: &[(&str, i32)],
        timeout: Duration,
    ) -> Result<()> {
        let request = requests::create_partitions(topics, duration_ms(timeout));
        let conn = self.cluster.any_connection().await?;
        let version = conn.version(ApiKey::CreatePartitions)?;
        let response = conn.send(&request, version, timeout).await?;
        for result in &response.results {
            Error::check(
                ApiKey::CreatePartitions,
                result.error_code,
                Some(&format!(
                    "{}: {}",
                    result.name.0.as_str(),
                    result.error_message.as_deref().unwrap_or("")
                )),
            )?;
        }
        Ok(())
    }

    /// Deletes every record before the given offset of each partition (`-1`: before the high
    /// watermark, i.e. all of them) and returns each partition's new log start offset (its
    /// low watermark). Each partition is asked of its leader (Java's `deleteRecords`); a
    /// leader that moved or is not ready, or a lost connection, is asked again with fresh
    /// metadata (partitions already answered are not), as every admin call retries. An offset past the high watermark is the broker's `OFFSET_OUT_OF_RANGE`.
    pub async fn delete_records(
        &self,
        partitions: &[(TopicPartition, i64)],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let mut call = self.call("delete_records", Route::Leader);
        let mut pending: BTreeMap<TopicPartition, i64> = partitions.iter().cloned().collect();
        let mut out = BTreeMap::new();
        loop {
            let timeout = call.attempt().timeout;
            match self
                .delete_records_once(&mut pending, &mut out, timeout)
                .await
            {
                Ok(None) => return Ok(out),
                Ok(Some(err)) | Err(err) => call.failed(err).await?,
            }
        }
    }

    /// One round of DeleteRecords: answered partitions move from `pending` to `out`; returns
    /// the last retriable error (`None`: nothing left), fails on any other.
    async fn delete_records_once(
        &self,
        pending: &mut BTreeMap<TopicPartition, i64>,
        out: &mut BTreeMap<TopicPartition, i64>,
        timeout: Duration,
    ) -> Result<Option<Error>> {
        let mut topics: Vec<&str> = pending.keys().map(|tp| tp.topic.as_str()).collect();
        topics.dedup();
        self.cluster.refresh_metadata(Some(&topics)).await?;
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        let mut retry = None;
        for (tp, offset) in pending.iter() {
            let metadata = self.cluster.metadata();
            if let Some(info) = metadata.topic(&tp.topic) {
                if let Some(code) = info.error.filter(|c| !c.is_retriable()) {
                    return Err(Error::Broker {
                        api: ApiKey::DeleteRecords,
                        code,
                        message: Some(tp.topic.clone()),
                    });
                }
            }
            match metadata.leader(&tp.topic, tp.partition) {
                Some(leader) => by_leader
                    .entry(leader.node_id)
                    .or_default()
                    .push((tp.clone(), *offset)),
                None => {
                    retry = Some(Error::Broker {
                        api: ApiKey::DeleteRecords,
                        code: ResponseError::LeaderNotAvailable,
                        message: Some(format!("{}-{}", tp.topic, tp.partition)),
                    })
                }
            }
        }
        for (leader, parts) in by_leader {
            let asked: Vec<(&TopicPartition, i64)> = parts.iter().map(|(tp, o)| (tp, *o)).collect();
            let request = requests::delete_records(&asked, duration_ms(timeout));
            let sent = async {
                let conn = self.cluster.connection(leader).await?;
                let version = conn.version(ApiKey::DeleteRecords)?;
                conn.send(&request, version, timeout).await
            }
            .await;
            let response = match sent {
                Ok(r) => r,
                Err(err) if err.is_retriable() => {
                    retry = Some(err);
                    continue;
                }
                Err(err) => return Err(err),
            };
            for topic in &response.topics {
                for p in &topic.partitions {
                    let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
                    if !pending.contains_key(&tp) {
                        continue;
                    }
                    let context = format!("{}-{}", tp.topic, tp.partition);
                    match Error::check(ApiKey::DeleteRecords, p.error_code, Some(&context)) {
                        Ok(()) => {
                            pending.remove(&tp);
                            out.insert(tp, p.low_watermark);
                        }
                        Err(err) if err.is_retriable() || is_leader_error(p.error_code) => {
                            retry = Some(err);
                        }
                        Err(err) => return Err(err),
                    }
                }
            }
        }
        if pending.is_empty() {
            return Ok(None);
        }
        Ok(Some(retry.unwrap_or(Error::Broker {
            api: ApiKey::DeleteRecords,
            code: ResponseError::UnknownServerError,
            message: Some(format!("no answer for {:?}", pending.keys())),
        })))
    }
}

fn is_leader_error(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::NotLeaderOrFollower
                | ResponseError::LeaderNotAvailable
                | ResponseError::UnknownTopicOrPartition
        )
    )
}
