//! The consumer's fetcher task: drives [`FetchState`] against the cluster.
//!
//! One task per consumer loops: refresh metadata when the state asks (bounded by
//! `retry.backoff.ms` between attempts), send the ListOffsets lookups and OffsetForLeaderEpoch
//! validations it plans, send the Fetch
//! requests it plans (one in flight per node; each response is awaited by a small task of
//! its own, which hands it back to the state and wakes the application), then sleep until
//! woken (assignment, seek, resume, records taken, a response) or until the next backoff ends.
//! Every decision is the state's; this module only moves requests.
//!
//! The connections with a Fetch in flight are kept in [`FetchShared`], so that closing the
//! consumer can abandon a long-poll ([`FetchShared::abandon_fetches`]) instead of waiting up to
//! `fetch.max.wait.ms` for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;
use tokio::sync::{watch, Notify};

use crate::error::Error;
use crate::io::cluster::Cluster;
use crate::io::connection::Connection;
use crate::state::consumer::FetchState;

/// What the consumer handle and the fetcher task share.
#[derive(Debug)]
pub(crate) struct FetchShared {
    pub(crate) cluster: Cluster,
    pub(crate) state: Mutex<FetchState>,
    /// Wakes the fetcher task: something it may act on changed.
    pub(crate) wake: Notify,
    /// Bumped whenever records, errors or positions may have changed (for waiters).
    pub(crate) ready: watch::Sender<u64>,
    /// Set once at close; the task ends.
    pub(crate) closed: watch::Sender<bool>,
    /// `request.timeout.ms` (+ `fetch.max.wait.ms` for Fetch).
    pub(crate) request_timeout: Duration,
    pub(crate) fetch_max_wait: Duration,
    pub(crate) retry_backoff: Duration,
    /// The connection each node's Fetch in flight was sent on (one per node).
    pub(crate) fetching: Mutex<HashMap<i32, Connection>>,
}

impl FetchShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, FetchState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the task and the waiters that the state changed.
    pub(crate) fn changed(&self) {
        self.wake.notify_one();
        self.ready.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Closes the connections a Fetch is in flight on (after the consumer closed: nothing
    /// waits for those answers). Only for a cluster the consumer owns: closing fails every
    /// request on those connections. A Fetch about to be sent is not sent (it checks
    /// `closed` after registering its connection here).
    pub(crate) fn abandon_fetches(&self) {
        let fetching: Vec<Connection> = lock(&self.fetching).drain().map(|(_, c)| c).collect();
        for conn in fetching {
            tracing::debug!(broker = conn.broker(), "closing: fetch long-poll abandoned");
            conn.close();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends a Fetch on `node`'s connection, registered in `fetching` while in flight.
async fn send_fetch(
    shared: &FetchShared,
    node: i32,
    request: &kafka_protocol::messages::FetchRequest,
) -> crate::error::Result<kafka_protocol::messages::FetchResponse> {
    let conn = shared.cluster.connection(node).await?;
    lock(&shared.fetching).insert(node, conn.clone());
    let result = async {
        if shared.is_closed() {
            return Err(Error::ShutDown {
                broker: Some(conn.broker().to_owned()),
            });
        }
        let version = conn.version(ApiKey::Fetch)?;
        conn.send(
            request,
            version,
            shared.request_timeout + shared.fetch_max_wait,
        )
        .await
    }
    .await;
    // One Fetch in flight per node: the next one for `node` is planned only after this one's
    // outcome is handled, after this.
    lock(&shared.fetching).remove(&node);
    result
}

/// The longest the task sleeps without being woken (it re-plans then).
const IDLE_TICK: Duration = Duration::from_millis(500);

/// Runs until the consumer closes.
pub(crate) async fn run(shared: Arc<FetchShared>) {
    let mut closed = shared.closed.subscribe();
    let mut metadata_not_before = Instant::now();
    loop {
        if shared.is_closed() {
            return;
        }
        let now = Instant::now();
        let (wants, topics) = {
            // Lock order everywhere: metadata, then state.
            let metadata = shared.cluster.metadata();
            let mut state = shared.lock();
            let missing = state.missing_leaders(&metadata);
            let wants = state.take_wants_metadata() || missing;
            (wants, state.topics())
        };
        if wants && !topics.is_empty() {
            if now >= metadata_not_before {
                metadata_not_before = now + shared.retry_backoff;
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                let refresh = shared.cluster.refresh_metadata(Some(&names));
                match tokio::time::timeout(shared.request_timeout, refresh).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::debug!(error = %err, "consumer metadata refresh failed");
                        shared.lock().request_metadata();
                    }
                    Err(_) => shared.lock().request_metadata(),
                }
            } else {
                shared.lock().request_metadata();
            }
        }
        let now = Instant::now();
        let (lookups, validations, fetches, timer) = {
            let metadata = shared.cluster.metadata();
            let mut state = shared.lock();
            let lookups = state.poll_list_offsets(now, &metadata);
            // Fetch planning marks the positions to validate; validations go out next round
            // at the latest (the loop runs again when anything changes).
            let fetches = state.poll_fetches(now, &metadata);
            let validations = state.poll_validations(now, &metadata);
            (lookups, validations, fetches, state.next_timer(now))
        };
        for (token, request) in validations {
            let shared = shared.clone();
            tokio::spawn(async move {
                let result = async {
                    let conn = shared.cluster.connection(token.node()).await?;
                    let version = conn.version(ApiKey::OffsetForLeaderEpoch)?;
                    conn.send(&request, version, shared.request_timeout).await
                }
                .await;
                shared
                    .lock()
                    .handle_validations(Instant::now(), token, result);
                shared.changed();
            });
        }
        for (token, request) in lookups {
            let shared = shared.clone();
            tokio::spawn(async move {
                let result = async {
                    let conn = shared.cluster.connection(token.node()).await?;
                    let version = conn.version(ApiKey::ListOffsets)?;
                    conn.send(&request, version, shared.request_timeout).await
                }
                .await;
                shared
                    .lock()
                    .handle_list_offsets(Instant::now(), token, result);
                shared.changed();
            });
        }
        for (token, request) in fetches {
            let shared = shared.clone();
            tokio::spawn(async move {
                let result = send_fetch(&shared, token.node(), &request).await;
                let now = Instant::now();
                match result {
                    Ok(response) => {
                        // KIP-951 hints first (metadata before state, as everywhere).
                        for (topic, partition, leader, epoch, endpoint) in
                            token.leader_hints(&response)
                        {
                            shared.cluster.update_metadata(|m| {
                                m.update_leader(&topic, partition, leader, epoch, endpoint)
                            });
                        }
                        shared.lock().handle_fetch(now, token, response)
                    }
                    Err(err) => {
                        tracing::debug!(node = token.node(), error = %err, "fetch failed");
                        shared.lock().handle_fetch_failure(now, token);
                    }
                }
                shared.changed();
            });
        }
        let mut sleep = IDLE_TICK;
        if let Some(at) = timer {
            sleep = sleep.min(at.saturating_duration_since(Instant::now()));
        }
        if wants {
            sleep = sleep.min(metadata_not_before.saturating_duration_since(Instant::now()));
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = closed.changed() => return,
        }
    }
}
