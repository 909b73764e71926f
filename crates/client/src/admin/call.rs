//! The one retry loop every admin call goes through: the decisions are
//! [`crate::state::admin_retry`]'s, this module sleeps and refreshes.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::debug;

use super::Admin;
use crate::error::Result;
use crate::state::admin_retry::{AdminRetry, NextStep, Route};
use crate::state::backoff::ExponentialBackoff;

/// One attempt of a call: when the whole call ends, and how long this attempt's request may
/// wait (`request.timeout.ms`, cut to the time left).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    /// The call's deadline (`default.api.timeout.ms` after it started).
    pub(crate) deadline: Instant,
    /// This attempt's request timeout.
    pub(crate) timeout: Duration,
}

/// A running admin call: [`Call::attempt`] before each attempt, [`Call::failed`] after each
/// failed one.
pub(crate) struct Call<'a> {
    admin: &'a Admin,
    retry: AdminRetry,
    route: Route,
}

impl Call<'_> {
    /// The next attempt's deadline and request timeout.
    pub(crate) fn attempt(&self) -> Attempt {
        let timeout = self
            .retry
            .request_timeout(Instant::now(), self.admin.timeout())
            // Past the deadline (a sleep overshot): the attempt fails fast and ends the call.
            .unwrap_or(Duration::from_millis(1));
        Attempt {
            deadline: self.retry.deadline(),
            timeout,
        }
    }

    /// The call's deadline.
    pub(crate) fn deadline(&self) -> Instant {
        self.retry.deadline()
    }

    /// The error that ends the call now after `last` (the deadline passed while waiting for
    /// something other than a failed request, such as leaders of new partitions).
    pub(crate) fn timed_out(&self, last: crate::Error) -> crate::Error {
        self.retry.timed_out(Instant::now(), last)
    }

    /// The error a call ends with after `err`, when it is not tried again as a whole: a
    /// retriable one (inner loops ran until the deadline) becomes the timeout naming it.
    pub(crate) fn finish(&self, err: crate::Error) -> crate::Error {
        if self.retry.is_retriable(&err) {
            self.timed_out(err)
        } else {
            err
        }
    }

    /// After a failed attempt: `Ok(())` once it is time to try again (after the backoff, and
    /// a metadata refresh where the route needs one), or the error that ends the call.
    pub(crate) async fn failed(&mut self, err: crate::Error) -> Result<()> {
        let step = {
            let mut rng = self.admin.rng();
            self.retry.failed(err.clone(), Instant::now(), &mut *rng)
        };
        match step {
            NextStep::Fail(err) => Err(err),
            NextStep::Retry {
                after,
                refresh_metadata,
            } => {
                debug!(error = %err, ?after, failures = self.retry.failures(), "admin call retried");
                tokio::time::sleep(after).await;
                // Leader calls look their leaders up in each attempt; others learn the new
                // brokers (a controller that moved, a broker that left).
                if refresh_metadata && self.route != Route::Leader {
                    let _ = self.admin.cluster.refresh_metadata(Some(&[])).await;
                }
                Ok(())
            }
        }
    }
}

impl Admin {
    /// Starts the call named `name` (the user-facing method) going to `route`.
    pub(crate) fn call(&self, name: &'static str, route: Route) -> Call<'_> {
        let config = self.cluster.config();
        Call {
            admin: self,
            retry: AdminRetry::new(
                name,
                route,
                Instant::now(),
                self.api_timeout,
                ExponentialBackoff::new(config.retry_backoff, config.retry_backoff_max),
            ),
            route,
        }
    }

    /// Runs `attempt` until it succeeds, fails with a non-retriable error, or the call's
    /// deadline passes ([`crate::Error::AdminTimeout`]).
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        name: &'static str,
        route: Route,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut call = self.call(name, route);
        loop {
            match attempt(call.attempt()).await {
                Ok(value) => return Ok(value),
                Err(err) => call.failed(err).await?,
            }
        }
    }
}
