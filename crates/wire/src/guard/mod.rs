//! The guard: proves an untrusted message body structurally sound before any decoder sees it.
//!
//! kafka-protocol's generated decoders reserve memory from counts read off the wire
//! (`Vec::with_capacity(n)` for every array), so four hostile bytes can ask for hundreds of
//! gigabytes and abort the process. The guard walks the body with Apache Kafka's own message
//! schemas (generated into `schemas.rs` from Kafka 4.1.0's JSON definitions), exactly as the
//! decoder will read it, without allocating:
//!
//! - every string and bytes length must fit in the bytes that remain;
//! - every array count must satisfy `count × smallest element ≤ remaining` before a single
//!   element is walked, and then every element is walked;
//! - nulls only where the field is nullable at that version; compact (varint `N + 1`) forms in
//!   flexible versions; known tagged fields walked by their schema and filling exactly their
//!   declared size, unknown ones skipped by size;
//! - nothing may trail the message;
//! - the decoded message's memory, estimated from the schema (kafka-protocol's structs, see
//!   `walk.rs`), stays under [`MAX_DECODED_RESPONSE_SIZE`]: sound bytes packed with minimal
//!   elements decode into up to ~10× their size, so a 100 MiB frame could take ~1 GB.
//!
//! Only then does [`decode_response`] hand the bytes to kafka-protocol, whose reservations are
//! now bounded by elements really present.
//!
//! ```
//! use kafkit_wire::guard::{self, Kind};
//! use kafka_protocol::messages::{ApiKey, MetadataResponse};
//!
//! // A MetadataResponse v0 claiming 2^31 - 1 brokers in four bytes.
//! let hostile = [0x7f, 0xff, 0xff, 0xff];
//! assert!(guard::check(ApiKey::Metadata, 0, Kind::Response, &hostile).is_err());
//! let decoded = guard::decode_response::<MetadataResponse>(0, hostile.to_vec().into());
//! assert!(decoded.is_err());
//! ```

mod decode;
mod error;
mod schema;
#[rustfmt::skip]
mod schemas;
mod walk;

#[cfg(test)]
mod fuzz_seeds;
#[cfg(test)]
mod tests;

pub(crate) use decode::sealed;
pub use decode::{decode_any_response, decode_response, DecodeError, GuardedResponse};
pub use error::{GuardError, Problem};

use kafka_protocol::messages::ApiKey;

/// The most memory a decoded message may be estimated to take: 256 MiB.
///
/// Real responses stay far below it: a Fetch's records are `Bytes` slices of the frame (not
/// counted again), and a MetadataResponse of 100,000 partitions with three replicas each
/// (4.3 MB on the wire) is estimated at 17 MB (14 MB really allocated), so only a single
/// response describing about 1.5 million partitions would reach it. A frame near the 100 MiB
/// cap packed with minimal elements (empty partitions, empty strings) would decode into ~1 GB:
/// it is refused with [`GuardError::DecodedTooLarge`] before anything is allocated.
pub const MAX_DECODED_RESPONSE_SIZE: usize = 256 << 20;

/// Which side of an API a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Sent by the client.
    Request,
    /// Sent by the broker.
    Response,
}

/// Walks `body` (a message without its header) as the `kind` message of `api` at `version`.
///
/// `Ok(())` means the bytes are structurally sound: every length and count fits, and nothing
/// trails. This is the dynamic entry for fuzzers and for callers that pick the API at run time.
///
/// ```
/// use kafkit_wire::guard::{self, Kind};
/// use kafka_protocol::messages::ApiKey;
///
/// // HeartbeatResponse v0: just an error code.
/// assert!(guard::check(ApiKey::Heartbeat, 0, Kind::Response, &[0, 0]).is_ok());
/// assert!(guard::check(ApiKey::Heartbeat, 0, Kind::Response, &[0]).is_err());
/// ```
pub fn check(api: ApiKey, version: i16, kind: Kind, body: &[u8]) -> Result<(), GuardError> {
    check_within(api, version, kind, body, MAX_DECODED_RESPONSE_SIZE).map(drop)
}

/// [`check`] with a decoded-memory budget of `max_decoded` bytes; returns the estimate of what
/// the decoded message will take in memory.
///
/// ```
/// use kafkit_wire::guard::{self, GuardError, Kind};
/// use kafka_protocol::messages::ApiKey;
///
/// // MetadataResponse v1: no brokers, controller 0, then 1,000 topics of 9 bytes each.
/// let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0];
/// body.extend_from_slice(&1_000i32.to_be_bytes());
/// for _ in 0..1_000 {
///     body.extend_from_slice(&[0; 9]); // error code, name "", not internal, no partitions
/// }
/// let estimate = guard::check_within(ApiKey::Metadata, 1, Kind::Response, &body, 1 << 20)?;
/// assert!(estimate > 10 * body.len());
/// let refused = guard::check_within(ApiKey::Metadata, 1, Kind::Response, &body, 50_000);
/// assert!(matches!(refused, Err(GuardError::DecodedTooLarge { .. })));
/// # Ok::<(), GuardError>(())
/// ```
pub fn check_within(
    api: ApiKey,
    version: i16,
    kind: Kind,
    body: &[u8],
    max_decoded: usize,
) -> Result<usize, GuardError> {
    let message = schema_for(api, kind).ok_or(GuardError::NoSchema { api, kind })?;
    walk::walk(message, version, body, max_decoded)
}

/// Whether the guard carries a schema for `api` in direction `kind`.
pub fn has_schema(api: ApiKey, kind: Kind) -> bool {
    schema_for(api, kind).is_some()
}

/// The versions the guard's schema for `api`/`kind` knows (Kafka's `validVersions`), as
/// `(min, max)`.
pub fn schema_versions(api: ApiKey, kind: Kind) -> Option<(i16, i16)> {
    schema_for(api, kind).map(|m| (m.valid.min, m.valid.max))
}

fn schema_for(api: ApiKey, kind: Kind) -> Option<&'static schema::Message> {
    let table = match kind {
        Kind::Request => schemas::REQUESTS,
        Kind::Response => schemas::RESPONSES,
    };
    let key = api as i16;
    table.iter().find(|m| m.api_key == key)
}
