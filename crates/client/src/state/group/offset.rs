//! A committed (or to-be-committed) consumer position, as OffsetCommit and OffsetFetch carry it.

/// An offset a group commits for a partition: the next record to read, the leader epoch of the
/// last record read (KIP-320, used to detect log truncation on resume) and free-form metadata.
///
/// ```
/// use kafkit::state::group::OffsetAndMetadata;
///
/// let committed = OffsetAndMetadata::new(42).with_leader_epoch(3).with_metadata("batch-7");
/// assert_eq!(committed.offset, 42);
/// assert_eq!(committed.leader_epoch, Some(3));
/// assert_eq!(committed.metadata.as_deref(), Some("batch-7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetAndMetadata {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, when known.
    pub leader_epoch: Option<i32>,
    /// Metadata stored with the commit (`None` is sent as null).
    pub metadata: Option<String>,
}

impl OffsetAndMetadata {
    /// An offset with no leader epoch and no metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: None,
        }
    }

    /// Sets the leader epoch of the last consumed record.
    pub fn with_leader_epoch(mut self, epoch: i32) -> Self {
        self.leader_epoch = Some(epoch);
        self
    }

    /// Sets the commit's metadata string.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }
}
