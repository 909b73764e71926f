//! What the guard reports when untrusted bytes don't hold up.

use kafka_protocol::messages::ApiKey;

use super::Kind;

/// Why a message body was refused before reaching a decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// kafkit carries no schema for this API and direction.
    #[error("no {kind:?} schema for {api:?}")]
    NoSchema {
        /// The API asked for.
        api: ApiKey,
        /// Request or response.
        kind: Kind,
    },
    /// The version is outside the message's `validVersions`.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// The message, as Kafka names it (e.g. `MetadataResponse`).
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// The bytes don't fit the schema.
    #[error("malformed {message} v{version}: field {field} at byte {offset}: {problem}")]
    Malformed {
        /// The message, as Kafka names it.
        message: &'static str,
        /// The version walked.
        version: i16,
        /// The innermost field being read (empty before the first field).
        field: &'static str,
        /// Offset in the body where the walk stopped.
        offset: usize,
        /// What was wrong.
        problem: Problem,
    },
    /// The decoded message would take more memory than the guard's budget (see
    /// [`MAX_DECODED_RESPONSE_SIZE`](super::MAX_DECODED_RESPONSE_SIZE)), though its bytes are
    /// sound: a frame packed with minimal elements.
    #[error("{message} v{version}: decoding would take about {estimate} bytes of memory (at {field}), over the limit of {limit}")]
    DecodedTooLarge {
        /// The message, as Kafka names it.
        message: &'static str,
        /// The version walked.
        version: i16,
        /// The field being walked when the estimate passed the limit.
        field: &'static str,
        /// The estimate so far, in bytes.
        estimate: usize,
        /// The budget, in bytes.
        limit: usize,
    },
    /// The message ended before the body did.
    #[error("{message} v{version}: {trailing} trailing bytes after the message")]
    TrailingBytes {
        /// The message, as Kafka names it.
        message: &'static str,
        /// The version walked.
        version: i16,
        /// How many bytes were left over.
        trailing: usize,
    },
}

/// The structural fault the guard found.
///
/// (`DecodedTooLarge` is reported as [`GuardError::DecodedTooLarge`], never inside
/// [`GuardError::Malformed`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A read needed more bytes than remain.
    #[error("needs {needed} bytes, {remaining} remain")]
    Truncated {
        /// Bytes the read needs.
        needed: usize,
        /// Bytes left in the current scope.
        remaining: usize,
    },
    /// A string, bytes or array length below -1.
    #[error("negative length {0}")]
    NegativeLength(i64),
    /// A null where the field is not nullable at this version.
    #[error("null in a field that is not nullable at this version")]
    UnexpectedNull,
    /// An array count that the remaining bytes cannot hold.
    #[error("{count} elements of at least {min_element_size} bytes, {remaining} bytes remain")]
    TooManyElements {
        /// The count read off the wire.
        count: usize,
        /// The fewest bytes one element can take.
        min_element_size: usize,
        /// Bytes left in the current scope.
        remaining: usize,
    },
    /// An unsigned varint longer than 5 bytes or wider than 32 bits.
    #[error("malformed varint")]
    BadVarint,
    /// A nullable struct's presence byte was neither -1 nor 1.
    #[error("presence marker {0} is neither -1 nor 1")]
    BadPresenceMarker(i8),
    /// A known tagged field did not fill exactly its declared size.
    #[error("tagged field {tag} declares {declared} bytes but its value takes {used}")]
    TaggedFieldSize {
        /// The tag.
        tag: u32,
        /// The size on the wire.
        declared: usize,
        /// The bytes its schema walked.
        used: usize,
    },
    /// A known tag that is not a tagged field at this version (the decoder refuses it too).
    #[error("tag {0} is not valid at this version")]
    TagNotInVersion(u32),
    /// The decoded message's estimated memory passed the budget.
    #[error("decoding would take about {estimate} bytes of memory, over the limit of {limit}")]
    DecodedTooLarge {
        /// The estimate so far, in bytes.
        estimate: usize,
        /// The budget, in bytes.
        limit: usize,
    },
}
