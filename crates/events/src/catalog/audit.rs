//! Audit events: API calls (the platform producer library's `produce_api_call_event`).

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::envelope::Event;
use crate::typed::{AvroSchemaSource, EventPayload};

/// An API call, for audit (`audit.api_call`, topic `audit-api-calls`, key the calling user,
/// else the service; schema `schemas/api_call.avsc`). The envelope's user context
/// (`ce_authid`) is set to the user too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiCall {
    /// The service called.
    pub service: String,
    /// The endpoint (`/api/data`).
    pub endpoint: String,
    /// The HTTP method.
    pub method: String,
    /// The response status.
    pub status_code: i32,
    /// Latency in milliseconds.
    pub latency_ms: i64,
    /// Request body size in bytes.
    pub request_size: i64,
    /// Response body size in bytes.
    pub response_size: i64,
    /// The calling user, if known.
    pub user_id: Option<String>,
    /// The caller's address, if known.
    pub ip_address: Option<String>,
}

impl ApiCall {
    /// Sets the request and response sizes.
    pub fn with_sizes(mut self, request_size: i64, response_size: i64) -> Self {
        self.request_size = request_size;
        self.response_size = response_size;
        self
    }
}

impl EventPayload for ApiCall {
    const EVENT_TYPE: &'static str = "audit.api_call";
    const SCHEMA_VERSION: Option<&'static str> = Some("1");
    fn default_topic() -> Option<&'static str> {
        Some("audit-api-calls")
    }
    fn key(&self) -> Option<String> {
        Some(self.user_id.clone().unwrap_or_else(|| self.service.clone()))
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(include_str!(
            "../../schemas/api_call.avsc"
        )))
    }
}

/// An API call event by `user_id` from `ip_address` (either may be unknown); the request
/// and response sizes start at 0 ([`ApiCall::with_sizes`] through [`Event::map`]).
///
/// ```
/// use std::time::Duration;
/// use kafkit_events::catalog::audit::api_call;
///
/// let event = api_call(Some("user-123"), Some("10.0.1.100".parse()?), "my-service", "/api/data", "GET", 200, Duration::from_millis(50))
///     .map(|call| call.with_sizes(256, 2048));
/// assert_eq!(event.envelope.user_id.as_deref(), Some("user-123"));
/// assert_eq!(event.data.ip_address.as_deref(), Some("10.0.1.100"));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn api_call(
    user_id: Option<&str>,
    ip_address: Option<IpAddr>,
    service: impl Into<String>,
    endpoint: impl Into<String>,
    method: impl Into<String>,
    status_code: u16,
    latency: Duration,
) -> Event<ApiCall> {
    Event::new(ApiCall {
        service: service.into(),
        endpoint: endpoint.into(),
        method: method.into(),
        status_code: i32::from(status_code),
        latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
        request_size: 0,
        response_size: 0,
        user_id: user_id.map(str::to_owned),
        ip_address: ip_address.map(|ip| ip.to_string()),
    })
    .with_user_context(user_id, None)
}
