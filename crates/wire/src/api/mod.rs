//! The APIs kafkit speaks and the versions it negotiates with each broker.
//!
//! [`SUPPORTED`] is the single table of APIs: it bounds version negotiation ([`Versions`]),
//! decides which responses have guarded decoders ([`crate::guard::GuardedResponse`]) and
//! which variants [`AnyResponse`] has.

mod table;

/// kafka-protocol's API keys and version ranges, re-exported so callers of this module need not
/// name kafka-protocol themselves.
pub use kafka_protocol::messages::ApiKey;
pub use kafka_protocol::protocol::VersionRange;

mod versions;

pub use table::{AnyResponse, SupportedApi, SUPPORTED};
pub use versions::{decode_api_versions, supported_versions, NegotiationError, Versions};

#[cfg(test)]
pub(crate) use table::{visit_requests, visit_responses, RequestVisitor, ResponseVisitor};
#[cfg(test)]
mod parity;
