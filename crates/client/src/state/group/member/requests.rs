//! The requests the classic member builds: JoinGroup (with its subscription per assignor),
//! SyncGroup, LeaveGroup.

use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{GroupId, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest};
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

    pub(super) fn leave_request(&self, reason: &str) -> LeaveGroupRequest {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.config.group_id)))
            .with_member_id(str_bytes(&self.member_id))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(str_bytes(&self.member_id))
                .with_group_instance_id(self.config.group_instance_id.as_deref().map(str_bytes))
                .with_reason(Some(str_bytes(reason)))])
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
