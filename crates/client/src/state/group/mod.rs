//! The classic consumer group protocol's pure parts: the embedded consumer protocol carried in
//! JoinGroup and SyncGroup (subscriptions and assignments, [`protocol`]) and the partition
//! assignors a group leader runs ([`range`], [`round_robin`], [`cooperative_sticky`]).
//!
//! Everything here is plain data in and plain data out, so a kafkit member can lead a group of
//! Java and librdkafka members (and be led by them): the wire format is byte-compatible with the
//! Java client's `ConsumerProtocol`, and the assignors decide as the Java assignors of the same
//! name do (see each module for how exactly).
//!
//! ```
//! use std::collections::BTreeMap;
//! use kafkit::state::group::{Assignor, Member, RangeAssignor, Subscription};
//!
//! let members = vec![
//!     Member::new("m-1", Subscription::new(["orders"])),
//!     Member::new("m-2", Subscription::new(["orders"])),
//! ];
//! let partitions = BTreeMap::from([("orders".to_string(), 3)]);
//! let assignment = RangeAssignor.assign(&members, &partitions).unwrap();
//! assert_eq!(assignment["m-1"].len(), 2);
//! assert_eq!(assignment["m-2"].len(), 1);
//! ```

pub mod assignor;
pub mod commit;
pub mod consumer_member;
pub mod cooperative_sticky;
pub mod coordinator;
pub mod event;
mod general;
pub mod member;
pub mod offset;
pub mod protocol;
pub mod range;
pub mod round_robin;

pub use assignor::{
    encode_group_assignment, AssignError, Assignor, GroupAssignment, Member, RebalanceProtocol,
};
pub use cooperative_sticky::CooperativeStickyAssignor;
pub use offset::OffsetAndMetadata;
pub use protocol::{Assignment, ProtocolError, Subscription, TopicPartition, TopicPartitions};
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
