//! System events: service health (the platform producer library's
//! `produce_service_health_event`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::envelope::Event;
use crate::typed::{AvroSchemaSource, EventPayload};

/// A service's health (Avro enum `HealthStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// Working normally.
    Healthy,
    /// Working, impaired.
    Degraded,
    /// Not working.
    Unhealthy,
    /// Not known.
    Unknown,
}

/// A service health status change (`system.service_health`, topic `system-health`, key the
/// service name; schema `schemas/service_health.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHealth {
    /// The service.
    pub service_name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its health.
    pub health_status: HealthStatus,
    /// Latency in milliseconds.
    pub latency_ms: i64,
    /// Error rate from 0 to 1.
    pub error_rate: f64,
    /// A human-readable message.
    pub message: Option<String>,
}

impl EventPayload for ServiceHealth {
    const EVENT_TYPE: &'static str = "system.service_health";
    const SCHEMA_VERSION: Option<&'static str> = Some("1");
    fn default_topic() -> Option<&'static str> {
        Some("system-health")
    }
    fn key(&self) -> Option<String> {
        Some(self.service_name.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(include_str!(
            "../../schemas/service_health.avsc"
        )))
    }
}

/// A service health event.
///
/// ```
/// use std::time::Duration;
/// use kafkit_events::catalog::system::{service_health, HealthStatus};
///
/// let event = service_health("my-service", "data-platform", HealthStatus::Healthy, Duration::from_millis(25), 0.001);
/// assert_eq!(event.data.latency_ms, 25);
/// ```
pub fn service_health(
    service_name: impl Into<String>,
    namespace: impl Into<String>,
    health_status: HealthStatus,
    latency: Duration,
    error_rate: f64,
) -> Event<ServiceHealth> {
    Event::new(ServiceHealth {
        service_name: service_name.into(),
        namespace: namespace.into(),
        health_status,
        latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
        error_rate,
        message: None,
    })
}
