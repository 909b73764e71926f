//! The hook through which a consumer group member is driven from `recv`/`poll`
//! (see `docs/consumer-plan.md`). The group member implements [`GroupDriver`] and installs it
//! with `Consumer::set_group_driver`; `recv` and `poll` call [`GroupDriver::drive`] before
//! taking records and again whenever [`GroupDriver::ready`] resolves while they wait.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::{ConsumeError, Consumer};

/// A boxed, sendable future (the driver is a trait object).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A group member as the consumer sees it.
#[allow(dead_code)] // implemented by the group member (consumer/group.rs)
pub(crate) trait GroupDriver: Send + Sync + 'static {
    /// Runs at the start of every `recv`/`poll` and whenever `ready` resolves while they wait:
    /// apply pending group events (rebalance callbacks, `remove_assigned`, `add_assigned`),
    /// auto-commit when due. An `Err` is returned to the application.
    fn drive<'a>(&'a self, consumer: &'a Consumer) -> BoxFuture<'a, Result<(), ConsumeError>>;

    /// Resolves when `drive` has work to do. Cancel-safe (raced against records arriving and
    /// the poll timeout).
    fn ready(&self) -> BoxFuture<'_, ()>;

    /// At `Consumer::close`: final commit if enabled, leave the group, within `deadline`.
    /// Every step is tried; the first failure is returned (and logged).
    fn close<'a>(
        &'a self,
        consumer: &'a Consumer,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), ConsumeError>>;

    /// The driver as `Any`, so the group code can reach its own type (commits, subscription
    /// changes).
    fn as_any(&self) -> &dyn std::any::Any;
}
