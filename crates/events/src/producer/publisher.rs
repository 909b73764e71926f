//! [`Publisher`]: what code that publishes events depends on, so it can be unit-tested with
//! a [`RecordingPublisher`](super::RecordingPublisher) instead of a broker.

use std::future::Future;

use kafkit::producer::RecordMetadata;
use serde::Serialize;

use crate::envelope::Event;
use crate::error::EventsError;
use crate::typed::EventPayload;

/// Publishes typed events. Implemented by [`EventProducer`](super::EventProducer) (Kafka)
/// and [`RecordingPublisher`](super::RecordingPublisher) (keeps them, for tests).
///
/// ```
/// use kafkit_events::catalog::system::{service_health, HealthStatus};
/// use kafkit_events::producer::{Publisher, RecordingPublisher};
///
/// async fn report(publisher: &impl Publisher) -> Result<(), kafkit_events::error::EventsError> {
///     let event = service_health("svc", "ns", HealthStatus::Healthy, std::time::Duration::from_millis(3), 0.0);
///     publisher.publish(event).await?;
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let recorder = RecordingPublisher::new("test-service");
/// report(&recorder).await.unwrap();
/// assert_eq!(recorder.published().len(), 1);
/// assert_eq!(recorder.published()[0].topic, "system-health");
/// # });
/// ```
pub trait Publisher: Send + Sync {
    /// Publishes `event` to its type's default topic and waits for the outcome.
    fn publish<T>(
        &self,
        event: Event<T>,
    ) -> impl Future<Output = Result<RecordMetadata, EventsError>> + Send
    where
        T: EventPayload + Serialize;

    /// Publishes `event` to `topic` and waits for the outcome.
    fn publish_to<T>(
        &self,
        topic: &str,
        event: Event<T>,
    ) -> impl Future<Output = Result<RecordMetadata, EventsError>> + Send
    where
        T: EventPayload + Serialize;
}

/// The default topic of `T`, or a configuration error naming the type.
pub(crate) fn default_topic<T: EventPayload>() -> Result<&'static str, EventsError> {
    T::default_topic().ok_or_else(|| {
        EventsError::configuration(
            "topic",
            format!(
                "event type {} has no default topic: use publish_to",
                T::EVENT_TYPE
            ),
        )
    })
}
