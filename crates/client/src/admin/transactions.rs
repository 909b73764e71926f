//! Transactions seen from the admin side (KIP-664): list the transactions the coordinators
//! know (`list_transactions`, ListTransactions to every broker) and describe some
//! (`describe_transactions`, DescribeTransactions to each one's transaction coordinator).
//!
//! ```no_run
//! # async fn example() -> Result<(), kafkit::Error> {
//! use kafkit::admin::{Admin, ListTransactionsFilter};
//!
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! let ongoing = admin
//!     .list_transactions(&ListTransactionsFilter { states: vec!["Ongoing".into()], ..Default::default() })
//!     .await?;
//! for t in admin.describe_transactions(&["order-copier-1"]).await? {
//!     println!("{} {} since {} ms: {:?}", t.transactional_id, t.state, t.start_time_ms, t.partitions);
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::Admin;
use crate::error::{Error, Result};
use crate::io::coordinator::request_timeout;
use crate::producer::transaction::TxnCoordinator;
use crate::state::admin_retry::Route;

/// Which transactions `list_transactions` returns (empty lists: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTransactionsFilter {
    /// Coordinator states (`Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`,
    /// `CompleteCommit`, `CompleteAbort`, `Dead`, `PrepareEpochFence`).
    pub states: Vec<String>,
    /// Producer ids.
    pub producer_ids: Vec<i64>,
}

/// One transactional id a coordinator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// The coordinator's state of its transaction.
    pub state: String,
}

/// A transactional id's transaction, as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// The coordinator's state (`Ongoing`, `CompleteCommit`, …).
    pub state: String,
    /// The producer id and epoch.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// When the open transaction started (ms since the epoch; -1 when none is open).
    pub start_time_ms: i64,
    /// The partitions in the open transaction, by topic (in partition order).
    pub partitions: BTreeMap<String, Vec<i32>>,
}

fn list_request(filter: &ListTransactionsFilter) -> ListTransactionsRequest {
    ListTransactionsRequest::default()
        .with_state_filters(
            filter
                .states
                .iter()
                .map(|s| StrBytes::from_string(s.clone()))
                .collect(),
        )
        .with_producer_id_filters(filter.producer_ids.iter().map(|p| ProducerId(*p)).collect())
}

fn describe_request(id: &str) -> DescribeTransactionsRequest {
    DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.to_owned()))])
}

impl Admin {
    /// Every transaction the cluster's coordinators know, filtered by state and producer id
    /// (ListTransactions to every broker).
    pub async fn list_transactions(
        &self,
        filter: &ListTransactionsFilter,
    ) -> Result<Vec<TransactionListing>> {
        let request = &list_request(filter);
        let answers = self
            .retrying("list_transactions", Route::Broker, |at| async move {
                let answers = self.ask_every_broker(request, at.deadline).await?;
                for (broker, response) in &answers {
                    Error::check(ApiKey::ListTransactions, response.error_code, Some(broker))?;
                }
                Ok(answers)
            })
            .await?;
        let mut out: BTreeMap<String, TransactionListing> = BTreeMap::new();
        for (_, response) in answers {
            out.extend(response.transaction_states.iter().map(|t| {
                let id = t.transactional_id.0.as_str().to_owned();
                let listing = TransactionListing {
                    transactional_id: id.clone(),
                    producer_id: t.producer_id.0,
                    state: t.transaction_state.as_str().to_owned(),
                };
                (id, listing)
            }));
        }
        Ok(out.into_values().collect())
    }

    /// Sends `request` to every broker of the cluster (fresh metadata), one after the other
    /// before `deadline`; each answer with the broker's address.
    async fn ask_every_broker<R>(
        &self,
        request: &R,
        deadline: Instant,
    ) -> Result<Vec<(String, R::Response)>>
    where
        R: kafka_protocol::protocol::Request,
        R::Response: kafkit_wire::guard::GuardedResponse,
    {
        let api = <R::Response as kafkit_wire::guard::GuardedResponse>::API_KEY;
        self.cluster.refresh_metadata(Some(&[])).await?;
        let brokers: Vec<i32> = self
            .cluster
            .metadata()
            .brokers()
            .map(|b| b.node_id)
            .collect();
        let mut answers = Vec::with_capacity(brokers.len());
        for node in brokers {
            let Some(timeout) = request_timeout(&self.cluster, deadline) else {
                return Err(Error::Broker {
                    api,
                    code: ResponseError::RequestTimedOut,
                    message: Some(format!("broker {node}: deadline passed")),
                });
            };
            let conn = self.cluster.connection(node).await?;
            let version = conn.version(api)?;
            let answer = conn.send(request, version, timeout).await?;
            answers.push((conn.broker().to_owned(), answer));
        }
        Ok(answers)
    }

    /// Describes the transactions of `ids` (DescribeTransactions on each one's transaction
    /// coordinator, looked up and retried like the producer's). An id the coordinator does not
    /// know fails with `TRANSACTIONAL_ID_NOT_FOUND`.
    pub async fn describe_transactions(&self, ids: &[&str]) -> Result<Vec<TransactionDescription>> {
        let mut call = self.call("describe_transactions", Route::Coordinator);
        let mut out = Vec::with_capacity(ids.len());
        let config = self.cluster.config();
        for id in ids {
            let coordinator = TxnCoordinator::new(
                self.cluster.clone(),
                (*id).to_owned(),
                config.retry_backoff,
                config.retry_backoff_max,
                Arc::new(AtomicBool::new(false)),
            );
            let request = describe_request(id);
            let description = loop {
                let deadline = call.attempt().deadline;
                let answer = coordinator
                    .call(deadline, |conn, timeout| {
                        let request = request.clone();
                        async move {
                            let version = conn.version(ApiKey::DescribeTransactions)?;
                            let response = conn.send(&request, version, timeout).await?;
                            let state = response
                                .transaction_states
                                .into_iter()
                                .find(|t| t.transactional_id.0.as_str() == *id)
                                .ok_or(Error::Broker {
                                    api: ApiKey::DescribeTransactions,
                                    code: ResponseError::UnknownServerError,
                                    message: Some(format!("{id} missing from the answer")),
                                })?;
                            Error::check(ApiKey::DescribeTransactions, state.error_code, None)?;
                            let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                            for t in state.topics {
                                partitions
                                    .entry(t.topic.0.as_str().to_owned())
                                    .or_default()
                                    .extend(t.partitions);
                            }
                            for p in partitions.values_mut() {
                                p.sort_unstable();
                                p.dedup();
                            }
                            Ok(TransactionDescription {
                                transactional_id: (*id).to_owned(),
                                state: state.transaction_state.as_str().to_owned(),
                                producer_id: state.producer_id.0,
                                producer_epoch: state.producer_epoch,
                                timeout_ms: state.transaction_timeout_ms,
                                start_time_ms: state.transaction_start_time_ms,
                                partitions,
                            })
                        }
                    })
                    .await;
                match answer {
                    Ok(description) => break description,
                    Err((err, _)) => call.failed(err).await?,
                }
            };
            out.push(description);
        }
        Ok(out)
    }
}

/// ListTransactions and DescribeTransactions at every version, for `crate::request_versions`.
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    for v in Encoder::versions(ApiKey::ListTransactions) {
        enc.check(
            "ListTransactions (all)",
            v,
            &list_request(&ListTransactionsFilter::default()),
        );
        let filter = ListTransactionsFilter {
            states: vec!["Ongoing".to_owned()],
            producer_ids: vec![7],
        };
        enc.check("ListTransactions (filtered)", v, &list_request(&filter));
    }
    for v in Encoder::versions(ApiKey::DescribeTransactions) {
        enc.check("DescribeTransactions", v, &describe_request("tx"));
    }
}
