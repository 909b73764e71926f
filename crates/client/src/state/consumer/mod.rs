//! The consumer's decisions, without I/O: positions per partition ([`position`]), KIP-227
//! fetch sessions per node ([`session`]), fetched records waiting for the application with
//! `read_committed` filtering (`completed`), and [`FetchState`], which ties them together
//! (what to fetch from whom, what a response does, handing records out); [`OffsetLookup`]
//! answers the consumer's offset queries.

pub(crate) mod completed;
pub mod fetcher;
pub mod lookup;
pub mod position;
pub mod session;

pub use fetcher::{
    Drained, FetchSettings, FetchState, FetchToken, ListOffsetsToken, ValidationToken,
};
pub use lookup::{LookupToken, OffsetAndTimestamp, OffsetLookup};
pub use position::{FetchPosition, OffsetSpec};
pub use session::{FetchSession, SessionPartition, SessionRequest};

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::encoding_samples;
