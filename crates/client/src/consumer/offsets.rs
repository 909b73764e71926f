//! The consumer's offset queries (Java's `offsetsForTimes`, `beginningOffsets`, `endOffsets`,
//! the blocking `position`): [`OffsetLookup`] decides, this file only sends its ListOffsets
//! requests to the leaders and waits within the caller's timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;

use super::{ConsumeError, Consumer};
use crate::state::consumer::{OffsetAndTimestamp, OffsetLookup, OffsetSpec};
use crate::state::group::TopicPartition;

impl Consumer {
    /// For each partition, the first offset whose record's timestamp is at or after the
    /// given one (ms since the epoch), with that record's timestamp; `None` when the
    /// partition has no such record (Java's `offsetsForTimes`). Any partition may be asked,
    /// assigned or not; the consumer's positions do not move.
    ///
    /// Each partition is asked of its leader (one ListOffsets per leader); leader changes and
    /// other retriable errors are retried with fresh metadata within `timeout`, after which
    /// the call fails with [`ConsumeError::Timeout`]. An error the broker gives for good (e.g.
    /// an authorization error) is [`ConsumeError::Broker`] naming the partition; a negative
    /// timestamp is [`ConsumeError::NegativeTimestamp`], nothing sent.
    ///
    /// ```no_run
    /// # async fn example(consumer: &kafkit::consumer::Consumer) -> Result<(), kafkit::consumer::ConsumeError> {
    /// use std::time::Duration;
    /// use kafkit::state::group::TopicPartition;
    ///
    /// let tp = TopicPartition::new("events", 0);
    /// let an_hour_ago = 1_700_000_000_000;
    /// let found = consumer
    ///     .offsets_for_times(&[(tp.clone(), an_hour_ago)], Duration::from_secs(10))
    ///     .await?;
    /// match found.get(&tp).copied().flatten() {
    ///     Some(at) => consumer.seek(&tp, at.offset)?,
    ///     None => consumer.seek_to_end(&[tp])?,
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn offsets_for_times(
        &self,
        partitions: &[(TopicPartition, i64)],
        timeout: Duration,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, ConsumeError> {
        check_timestamps(partitions)?;
        let asked = partitions
            .iter()
            .map(|(tp, ts)| (tp.clone(), OffsetSpec::Timestamp(*ts)));
        self.look_up("offsets_for_times", asked, timeout).await
    }

    /// The log start offset of each partition (Java's `beginningOffsets`). Retries and
    /// errors as [`offsets_for_times`](Self::offsets_for_times).
    pub async fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumeError> {
        let asked = partitions
            .iter()
            .map(|tp| (tp.clone(), OffsetSpec::Earliest));
        let found = self.look_up("beginning_offsets", asked, timeout).await?;
        Ok(offsets_only(found))
    }

    /// The end offset of each partition (Java's `endOffsets`): the high watermark, or with
    /// `isolation.level=read_committed` the last stable offset (the first offset of a
    /// transaction still open). Retries and errors as
    /// [`offsets_for_times`](Self::offsets_for_times).
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumeError> {
        let asked = partitions.iter().map(|tp| (tp.clone(), OffsetSpec::Latest));
        let found = self.look_up("end_offsets", asked, timeout).await?;
        Ok(offsets_only(found))
    }

    /// The offset of the next record `recv`/`poll` will return for `tp`, waiting up to
    /// `timeout` for a pending lookup (`auto.offset.reset`, `seek_to_beginning`/`end`/
    /// `timestamp`) to give one (Java's `position(tp, timeout)`).
    ///
    /// Fails with [`ConsumeError::NotAssigned`] for a partition not assigned, with the
    /// partition's error when it stopped without a position (e.g. [`ConsumeError::NoOffset`]
    /// with `auto.offset.reset=none`), and with [`ConsumeError::Timeout`] after `timeout`.
    /// [`current_position`](Self::current_position) answers without waiting.
    pub async fn position(
        &self,
        tp: &TopicPartition,
        timeout: Duration,
    ) -> Result<i64, ConsumeError> {
        let deadline = Instant::now() + timeout;
        let mut ready = self.shared.ready.subscribe();
        loop {
            self.check_open()?;
            ready.borrow_and_update();
            {
                let state = self.state();
                if !state.assignment().contains(tp) {
                    return Err(ConsumeError::NotAssigned {
                        topic: tp.topic.as_str().into(),
                        partition: tp.partition,
                    });
                }
                if let Some(p) = state.position(tp) {
                    return Ok(p.offset);
                }
                if state.is_halted(tp) {
                    return Err(state.partition_error(tp).unwrap_or(ConsumeError::NoOffset {
                        topic: tp.topic.as_str().into(),
                        partition: tp.partition,
                    }));
                }
            }
            tokio::select! {
                changed = ready.changed() => if changed.is_err() { return Err(ConsumeError::Closed) },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return Err(ConsumeError::Timeout { operation: "position", after: timeout });
                }
            }
        }
    }

    /// Runs one [`OffsetLookup`] to its end or `timeout`.
    async fn look_up(
        &self,
        operation: &'static str,
        asked: impl IntoIterator<Item = (TopicPartition, OffsetSpec)>,
        timeout: Duration,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, ConsumeError> {
        self.check_open()?;
        let deadline = Instant::now() + timeout;
        let broker_timeout = timeout.min(self.config().client().request_timeout());
        let timeout_ms = i32::try_from(broker_timeout.as_millis()).unwrap_or(i32::MAX);
        let mut lookup = OffsetLookup::new(self.config().isolation_level(), timeout_ms, asked);
        let rounds = async {
            let cluster = self.cluster();
            let backoff = self.config().client().retry_backoff();
            let mut round = 0u32;
            while !lookup.is_done() {
                if round > 0 {
                    tokio::time::sleep(backoff).await;
                }
                round = round.saturating_add(1);
                if lookup.take_wants_metadata() {
                    let topics = lookup.topics();
                    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                    if let Err(err) = cluster.refresh_metadata(Some(&names)).await {
                        tracing::debug!(error = %err, operation, "metadata refresh failed");
                        lookup.request_metadata();
                        continue;
                    }
                }
                let requests = lookup.poll_requests(&cluster.metadata());
                for (token, request) in requests {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let result = async {
                        let conn = cluster.connection(token.node()).await?;
                        let version = conn.version(ApiKey::ListOffsets)?;
                        conn.send(&request, version, left).await
                    }
                    .await;
                    lookup.handle_response(token, result);
                }
            }
        };
        if tokio::time::timeout_at(deadline.into(), rounds)
            .await
            .is_err()
        {
            tracing::debug!(operation, pending = ?lookup.pending(), "offset lookup timed out");
            return Err(ConsumeError::Timeout {
                operation,
                after: timeout,
            });
        }
        lookup.finish()
    }
}

/// Refuses a negative timestamp (ListOffsets would read -1 and -2 as the end and the beginning).
pub(super) fn check_timestamps(partitions: &[(TopicPartition, i64)]) -> Result<(), ConsumeError> {
    match partitions.iter().find(|(_, ts)| *ts < 0) {
        Some((tp, ts)) => Err(ConsumeError::NegativeTimestamp {
            topic: tp.topic.as_str().into(),
            partition: tp.partition,
            timestamp: *ts,
        }),
        None => Ok(()),
    }
}

fn offsets_only(
    found: BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>,
) -> BTreeMap<TopicPartition, i64> {
    found
        .into_iter()
        .filter_map(|(tp, o)| Some((tp, o?.offset)))
        .collect()
}
