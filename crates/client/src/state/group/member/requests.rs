//! The requests the classic member builds: JoinGroup (with its subscription per assignor),
//! SyncGroup, Heartbeat, LeaveGroup.
//!
//! A request whose shape changes across versions is built for the version negotiated with the
//! coordinator ([`LeaveGroup::request`]): LeaveGroup v0–2 names one member at the top level,
//! v3+ lists members (and refuses the top-level field), so the member's state hands out what
//! to leave and the I/O task builds the request once it knows the version.

use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

use super::{ClassicMemberState, PROTOCOL_TYPE};
use crate::state::group::assignor::RebalanceProtocol;
use crate::state::group::cooperative_sticky::CooperativeStickyAssignor;
use crate::state::group::protocol::{
    group_by_topic, Subscription, TopicPartition, HIGHEST_VERSION,
};
use crate::state::group::Assignor;

pub(super) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl ClassicMemberState {
    pub(super) fn join_request(&self) -> JoinGroupRequest {
        let owned: Vec<TopicPartition> = match self.protocol {
            RebalanceProtocol::Cooperative => self.owned.iter().cloned().collect(),
            _ => Vec::new(),
        };
        let protocols = self
            .config
            .assignors
            .iter()
            .filter_map(|assignor| {
                let mut subscription = Subscription::new(self.topics.iter().cloned());
                subscription.owned_partitions = group_by_topic(&owned);
                subscription.generation_id = (self.generation_id >= 0).then_some(self.generation_id);
                subscription.rack_id = self.config.rack_id.clone();
                if assignor.name() == CooperativeStickyAssignor.name() {
                    subscription.user_data =
                        Some(CooperativeStickyAssignor::user_data(self.generation_id));
                }
                match subscription.encode(HIGHEST_VERSION) {
                    Ok(metadata) => Some(
                        JoinGroupRequestProtocol::default()
                            .with_name(str_bytes(assignor.name()))
                            .with_metadata(metadata),
                    ),
                    Err(err) => {
                        warn!(assignor = assignor.name(), error = %err, "cannot encode the subscription");
                        None
                    }
                }
            })
            .collect();
        JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.config.group_id)))
            .with_session_timeout_ms(millis(self.config.session_timeout))
            .with_rebalance_timeout_ms(millis(self.config.rebalance_timeout))
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(str_bytes))
            .with_protocol_type(str_bytes(PROTOCOL_TYPE))
            .with_protocols(protocols)
    }

    pub(super) fn leave_request(&self, reason: &str) -> LeaveGroup {
        LeaveGroup {
            group_id: self.config.group_id.clone(),
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            reason: reason.to_owned(),
        }
    }

    pub(super) fn heartbeat_request(&self) -> HeartbeatRequest {
        HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&self.config.group_id)))
            .with_generation_id(self.generation_id)
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(str_bytes))
    }

    pub(super) fn sync_request(
        &self,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> SyncGroupRequest {
        SyncGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.config.group_id)))
            .with_generation_id(self.generation_id)
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(str_bytes))
            .with_protocol_type(Some(str_bytes(PROTOCOL_TYPE)))
            .with_protocol_name(self.protocol_name.as_deref().map(str_bytes))
            .with_assignments(assignments)
    }
}

/// A member leaving its group: what [`MemberRequest::LeaveGroup`](super::MemberRequest) asks
/// for, made into a request for the negotiated version by [`LeaveGroup::request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroup {
    /// `group.id`.
    pub group_id: String,
    /// The member id the coordinator gave.
    pub member_id: String,
    /// `group.instance.id`, for a static member asked to leave.
    pub group_instance_id: Option<String>,
    /// Why (sent from v5, KIP-800).
    pub reason: String,
}

impl LeaveGroup {
    /// The LeaveGroup request for `version`: v0–2 carry the member id at the top level; v3+
    /// carry it (with the instance id, and from v5 the reason) in `members`.
    ///
    /// ```
    /// use kafkit::state::group::member::LeaveGroup;
    ///
    /// let leave = LeaveGroup {
    ///     group_id: "billing".into(),
    ///     member_id: "m-1".into(),
    ///     group_instance_id: None,
    ///     reason: "the consumer is closing".into(),
    /// };
    /// assert_eq!(leave.request(2).member_id.as_str(), "m-1");
    /// assert_eq!(leave.request(5).members[0].member_id.as_str(), "m-1");
    /// assert!(leave.request(5).member_id.is_empty());
    /// ```
    pub fn request(&self, version: i16) -> LeaveGroupRequest {
        let request =
            LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(&self.group_id)));
        if version <= 2 {
            return request.with_member_id(str_bytes(&self.member_id));
        }
        let member = MemberIdentity::default()
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.group_instance_id.as_deref().map(str_bytes))
            .with_reason((version >= 5).then(|| str_bytes(&self.reason)));
        request.with_members(vec![member])
    }
}
