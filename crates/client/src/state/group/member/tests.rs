//! Scripted scenarios for the classic member: responses written by hand, a virtual clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::messages::ApiKey;

use super::*;
use crate::state::group::{
    Assignment, CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor, Subscription,
};

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

fn config(assignors: Vec<Arc<dyn Assignor>>) -> MemberConfig {
    MemberConfig {
        group_id: "g".into(),
        group_instance_id: None,
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(60),
        heartbeat_interval: Duration::from_secs(3),
        assignors,
        rack_id: None,
        retry_backoff: Duration::from_millis(100),
    }
}

fn eager() -> MemberConfig {
    config(vec![Arc::new(RangeAssignor), Arc::new(RoundRobinAssignor)])
}

fn cooperative() -> MemberConfig {
    config(vec![Arc::new(CooperativeStickyAssignor)])
}

struct Harness {
    now: Instant,
    m: ClassicMemberState,
}

impl Harness {
    fn new(config: MemberConfig, topics: &[&str]) -> Self {
        let now = Instant::now();
        let m =
            ClassicMemberState::new(config, topics.iter().map(|t| t.to_string()).collect(), now);
        Harness { now, m }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.m.poll_tick(self.now);
    }

    fn poll(&mut self) -> Option<MemberRequest> {
        self.m.poll_request(self.now)
    }

    fn events(&mut self) -> Vec<GroupEvent> {
        std::iter::from_fn(|| self.m.poll_event()).collect()
    }

    fn find(&mut self) {
        assert_eq!(self.poll(), Some(MemberRequest::FindCoordinator));
        self.m.handle_coordinator(self.now, Ok(1));
    }

    fn expect_join(&mut self) -> JoinGroupRequest {
        match self.poll() {
            Some(MemberRequest::JoinGroup(r)) => r,
            other => panic!("expected JoinGroup, got {other:?}"),
        }
    }

    fn expect_sync(&mut self) -> SyncGroupRequest {
        match self.poll() {
            Some(MemberRequest::SyncGroup(r)) => r,
            other => panic!("expected SyncGroup, got {other:?}"),
        }
    }

    /// Joins as a follower and receives `assigned`.
    fn join_follower(&mut self, generation: i32, assigned: &[TopicPartition]) {
        let _ = self.expect_join();
        self.m
            .handle_join(self.now, &join_ok("me", "leader", generation, "range"));
        let _ = self.expect_sync();
        self.m.handle_sync(self.now, &sync_ok(assigned));
    }
}

fn join_ok(member: &str, leader: &str, generation: i32, protocol: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_member_id(StrBytes::from_string(member.into()))
        .with_leader(StrBytes::from_string(leader.into()))
        .with_generation_id(generation)
        .with_protocol_name(Some(StrBytes::from_string(protocol.into())))
}

fn join_err(code: ResponseError, member: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code.code())
        .with_member_id(StrBytes::from_string(member.into()))
}

fn sync_ok(partitions: &[TopicPartition]) -> SyncGroupResponse {
    let bytes = Assignment::from_partitions(partitions)
        .encode(3)
        .unwrap_or_default();
    SyncGroupResponse::default().with_assignment(bytes)
}

fn hb(code: Option<ResponseError>) -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(code.map_or(0, |c| c.code()))
}

fn member(id: &str, topics: &[&str]) -> JoinGroupResponseMember {
    JoinGroupResponseMember::default()
        .with_member_id(StrBytes::from_string(id.into()))
        .with_metadata(
            Subscription::new(topics.iter().copied())
                .encode(3)
                .unwrap_or_default(),
        )
}

fn decode_assignments(sync: &SyncGroupRequest) -> BTreeMap<String, Vec<TopicPartition>> {
    sync.assignments
        .iter()
        .map(|a| {
            let (_, decoded) = Assignment::decode(&a.assignment).unwrap();
            (a.member_id.to_string(), decoded.partitions())
        })
        .collect()
}

#[test]
fn joins_with_member_id_required_then_leads_and_assigns() {
    let mut h = Harness::new(eager(), &["t"]);
    assert_eq!(h.poll(), Some(MemberRequest::FindCoordinator));
    assert_eq!(h.poll(), None, "one FindCoordinator at a time");
    h.m.handle_coordinator(h.now, Ok(1));
    let first = h.expect_join();
    assert_eq!(first.member_id.as_str(), "");
    assert_eq!(first.protocol_type.as_str(), "consumer");
    assert_eq!(first.rebalance_timeout_ms, 60_000);
    assert_eq!(first.session_timeout_ms, 10_000);
    let names: Vec<&str> = first.protocols.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["range", "roundrobin"],
        "assignors in preference order"
    );
    let (_, sub) = Subscription::decode(&first.protocols[0].metadata).unwrap();
    assert_eq!(sub.topics, ["t"]);

    h.m.handle_join(h.now, &join_err(ResponseError::MemberIdRequired, "me"));
    let second = h.expect_join();
    assert_eq!(second.member_id.as_str(), "me");

    let response = join_ok("me", "me", 1, "range")
        .with_members(vec![member("me", &["t"]), member("other", &["t"])]);
    h.m.handle_join(h.now, &response);
    assert!(h.m.is_leader());
    assert_eq!(
        h.poll(),
        Some(MemberRequest::PartitionCounts(vec!["t".into()]))
    );
    h.m.handle_partition_counts(h.now, BTreeMap::from([("t".into(), 4)]));
    let sync = h.expect_sync();
    assert_eq!(sync.generation_id, 1);
    assert_eq!(
        sync.protocol_name.as_ref().map(|p| p.as_str()),
        Some("range")
    );
    let assigned = decode_assignments(&sync);
    assert_eq!(assigned["me"], [tp("t", 0), tp("t", 1)]);
    assert_eq!(assigned["other"], [tp("t", 2), tp("t", 3)]);

    h.m.handle_sync(h.now, &sync_ok(&assigned["me"]));
    assert_eq!(
        h.events(),
        [GroupEvent::Assigned(vec![tp("t", 0), tp("t", 1)])]
    );
    assert!(h.m.is_stable());
    assert_eq!(
        h.m.generation(),
        Some(GroupGeneration {
            generation_id: 1,
            member_id: "me".into(),
            protocol: Some("range".into())
        })
    );
    assert_eq!(h.poll(), None, "no heartbeat before the interval");
    assert_eq!(h.m.poll_timeout(), Some(h.now + Duration::from_secs(3)));
    h.advance(Duration::from_secs(3));
    let Some(MemberRequest::Heartbeat(beat)) = h.poll() else {
        panic!("expected a heartbeat")
    };
    assert_eq!((beat.generation_id, beat.member_id.as_str()), (1, "me"));
    assert_eq!(h.poll(), None, "one heartbeat in flight");
    h.m.handle_heartbeat(h.now, &hb(None));
    h.advance(Duration::from_secs(2));
    assert_eq!(h.poll(), None);
    h.advance(Duration::from_secs(1));
    assert!(matches!(h.poll(), Some(MemberRequest::Heartbeat(_))));
}

#[test]
fn eager_rebalance_revokes_everything_before_rejoining() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0), tp("t", 1)]);
    let _ = h.events();
    h.advance(Duration::from_secs(3));
    assert!(matches!(h.poll(), Some(MemberRequest::Heartbeat(_))));
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::RebalanceInProgress)));
    assert_eq!(h.poll(), None, "no JoinGroup until the revocation is done");
    assert_eq!(
        h.events(),
        [GroupEvent::Revoked(vec![tp("t", 0), tp("t", 1)])]
    );
    assert_eq!(h.poll(), None);
    // Heartbeats continue while the consumer's callback runs.
    h.advance(Duration::from_secs(3));
    assert!(matches!(h.poll(), Some(MemberRequest::Heartbeat(_))));
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::RebalanceInProgress)));
    h.m.revocation_done(h.now, &[tp("t", 0), tp("t", 1)]);
    let join = h.expect_join();
    assert_eq!(join.member_id.as_str(), "me");
    let (_, sub) = Subscription::decode(&join.protocols[0].metadata).unwrap();
    assert!(
        sub.owned_partitions.is_empty(),
        "eager members own nothing when they join"
    );
    assert_eq!(sub.generation_id, Some(1));
    h.m.handle_join(h.now, &join_ok("me", "leader", 2, "range"));
    let _ = h.expect_sync();
    h.m.handle_sync(h.now, &sync_ok(&[tp("t", 1)]));
    assert_eq!(h.events(), [GroupEvent::Assigned(vec![tp("t", 1)])]);
    assert_eq!(h.m.assignment(), [tp("t", 1)]);
}

#[test]
fn cooperative_keeps_partitions_and_revokes_only_what_moves() {
    let mut h = Harness::new(cooperative(), &["t"]);
    assert_eq!(h.m.rebalance_protocol(), RebalanceProtocol::Cooperative);
    h.find();
    let _ = h.expect_join();
    h.m.handle_join(h.now, &join_ok("me", "leader", 1, "cooperative-sticky"));
    let _ = h.expect_sync();
    h.m.handle_sync(h.now, &sync_ok(&[tp("t", 0), tp("t", 1)]));
    assert_eq!(
        h.events(),
        [GroupEvent::Assigned(vec![tp("t", 0), tp("t", 1)])]
    );
    // A new member joins: the coordinator asks us to rejoin; we keep what we own.
    h.advance(Duration::from_secs(3));
    let _ = h.poll();
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::RebalanceInProgress)));
    let join = h.expect_join();
    assert!(h.events().is_empty(), "nothing revoked before the join");
    let (_, sub) = Subscription::decode(&join.protocols[0].metadata).unwrap();
    assert_eq!(sub.owned(), [tp("t", 0), tp("t", 1)]);
    assert_eq!(sub.generation_id, Some(1));
    assert_eq!(sub.user_data, Some(CooperativeStickyAssignor::user_data(1)));
    h.m.handle_join(h.now, &join_ok("me", "leader", 2, "cooperative-sticky"));
    let _ = h.expect_sync();
    // The leader withholds t-1 (it moves to the newcomer in a follow-up rebalance).
    h.m.handle_sync(h.now, &sync_ok(&[tp("t", 0)]));
    assert_eq!(h.events(), [GroupEvent::Revoked(vec![tp("t", 1)])]);
    assert!(h.m.is_stable());
    assert_eq!(
        h.poll(),
        None,
        "the follow-up join waits for the revocation"
    );
    h.m.revocation_done(h.now, &[tp("t", 1)]);
    let join = h.expect_join();
    let (_, sub) = Subscription::decode(&join.protocols[0].metadata).unwrap();
    assert_eq!(sub.owned(), [tp("t", 0)]);
    h.m.handle_join(h.now, &join_ok("me", "leader", 3, "cooperative-sticky"));
    let _ = h.expect_sync();
    h.m.handle_sync(h.now, &sync_ok(&[tp("t", 0)]));
    assert!(
        h.events().is_empty(),
        "t-0 was kept: nothing new, nothing revoked"
    );
    assert_eq!(h.m.assignment(), [tp("t", 0)]);
}

#[test]
fn unknown_member_loses_partitions_and_rejoins_as_new() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(4, &[tp("t", 0)]);
    let _ = h.events();
    h.advance(Duration::from_secs(3));
    let _ = h.poll();
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::UnknownMemberId)));
    assert_eq!(h.events(), [GroupEvent::Lost(vec![tp("t", 0)])]);
    assert_eq!(h.m.generation(), None);
    let join = h.expect_join();
    assert_eq!(join.member_id.as_str(), "", "a new member id is asked for");
}

#[test]
fn illegal_generation_loses_partitions_and_keeps_the_member_id() {
    let mut h = Harness::new(cooperative(), &["t"]);
    h.find();
    h.join_follower(4, &[tp("t", 0)]);
    let _ = h.events();
    h.advance(Duration::from_secs(3));
    let _ = h.poll();
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::IllegalGeneration)));
    assert_eq!(h.events(), [GroupEvent::Lost(vec![tp("t", 0)])]);
    let join = h.expect_join();
    assert_eq!(join.member_id.as_str(), "me");
    let (_, sub) = Subscription::decode(&join.protocols[0].metadata).unwrap();
    assert!(sub.owned().is_empty(), "lost partitions are not claimed");
}

#[test]
fn fenced_instance_is_fatal() {
    let mut cfg = eager();
    cfg.group_instance_id = Some("i-1".into());
    let mut h = Harness::new(cfg, &["t"]);
    h.find();
    let join = h.expect_join();
    assert_eq!(
        join.group_instance_id.as_ref().map(|s| s.as_str()),
        Some("i-1")
    );
    h.m.handle_join(h.now, &join_ok("me", "leader", 1, "range"));
    let _ = h.expect_sync();
    h.m.handle_sync(h.now, &sync_ok(&[tp("t", 0)]));
    let _ = h.events();
    h.advance(Duration::from_secs(3));
    let _ = h.poll();
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::FencedInstanceId)));
    assert_eq!(h.events(), [GroupEvent::Lost(vec![tp("t", 0)])]);
    assert!(matches!(
        h.m.fatal(),
        Some(Error::Broker {
            code: ResponseError::FencedInstanceId,
            ..
        })
    ));
    assert!(h.m.is_done());
    assert_eq!(h.poll(), None);
}

#[test]
fn join_errors_that_end_the_member() {
    for code in [
        ResponseError::GroupAuthorizationFailed,
        ResponseError::GroupMaxSizeReached,
        ResponseError::InconsistentGroupProtocol,
    ] {
        let mut h = Harness::new(eager(), &["t"]);
        h.find();
        let _ = h.expect_join();
        h.m.handle_join(h.now, &join_err(code, ""));
        assert!(h.m.is_done(), "{code:?}");
        assert!(h.m.fatal().is_some());
    }
}

#[test]
fn coordinator_errors_rediscover_after_the_backoff() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    let _ = h.expect_join();
    h.m.handle_join(h.now, &join_err(ResponseError::NotCoordinator, ""));
    assert_eq!(h.poll(), None, "backoff before FindCoordinator");
    assert_eq!(h.m.poll_timeout(), Some(h.now + Duration::from_millis(100)));
    h.advance(Duration::from_millis(100));
    h.find();
    let _ = h.expect_join();
    h.m.handle_join(h.now, &join_ok("me", "leader", 1, "range"));
    let _ = h.expect_sync();
    h.m.handle_sync(h.now, &sync_ok(&[tp("t", 0)]));
    // A heartbeat that finds the coordinator moved keeps the assignment.
    h.advance(Duration::from_secs(3));
    let _ = h.poll();
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::NotCoordinator)));
    h.advance(Duration::from_millis(100));
    h.find();
    assert!(h.m.is_stable());
    assert_eq!(h.m.assignment(), [tp("t", 0)]);
    // A lost connection on a JoinGroup rejoins after rediscovery.
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::RebalanceInProgress)));
    h.m.revocation_done(h.now, &[]);
    let _ = h.poll();
    let _ = h.events();
    h.m.revocation_done(h.now, &[tp("t", 0)]);
    let _ = h.expect_join();
    let cut = Error::ConnectionClosed {
        broker: "b".into(),
        api: ApiKey::JoinGroup,
    };
    h.m.handle_request_failed(h.now, RequestKind::JoinGroup, &cut);
    h.advance(Duration::from_millis(100));
    h.find();
    let _ = h.expect_join();
}

#[test]
fn find_coordinator_failures_are_retried() {
    let mut h = Harness::new(eager(), &["t"]);
    assert_eq!(h.poll(), Some(MemberRequest::FindCoordinator));
    h.m.handle_coordinator(
        h.now,
        Err(Error::Broker {
            api: ApiKey::FindCoordinator,
            code: ResponseError::CoordinatorNotAvailable,
            message: None,
        }),
    );
    assert_eq!(h.poll(), None);
    h.advance(Duration::from_millis(100));
    h.find();
    assert!(matches!(h.poll(), Some(MemberRequest::JoinGroup(_))));
}

#[test]
fn poll_interval_expiry_leaves_and_the_next_poll_rejoins() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0)]);
    let _ = h.events();
    // Heartbeats keep going, but nobody polls.
    let start = h.now;
    while h.now < start + Duration::from_secs(60) {
        h.now += Duration::from_secs(3);
        if let Some(MemberRequest::Heartbeat(_)) = h.poll() {
            h.m.handle_heartbeat(h.now, &hb(None));
        }
    }
    let events = h.events();
    assert_eq!(events, [GroupEvent::Lost(vec![tp("t", 0)])]);
    assert!(h.m.assignment().is_empty());
    assert_eq!(h.m.generation(), None);
    // It left (a LeaveGroup was sent at expiry) and stays out until polled again.
    assert_eq!(h.poll(), None);
    h.advance(Duration::from_millis(1));
    let join = h.expect_join();
    assert_eq!(join.member_id.as_str(), "");
}

#[test]
fn poll_interval_expiry_sends_leave_group() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0)]);
    h.now += Duration::from_secs(61);
    let Some(MemberRequest::LeaveGroup(leave)) = h.poll() else {
        panic!("expected LeaveGroup")
    };
    assert_eq!(leave.member_id, "me");
}

#[test]
fn no_heartbeat_answered_within_the_session_rediscovers() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0)]);
    h.advance(Duration::from_secs(3));
    assert!(matches!(h.poll(), Some(MemberRequest::Heartbeat(_))));
    // No answer (stuck connection) for the whole session timeout.
    h.advance(Duration::from_secs(10));
    assert_eq!(h.poll(), None);
    assert_eq!(h.m.coordinator(), None);
    h.advance(Duration::from_millis(100));
    assert_eq!(h.poll(), Some(MemberRequest::FindCoordinator));
}

#[test]
fn close_sends_leave_group_for_dynamic_members_only() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0)]);
    h.m.close(h.now);
    let Some(MemberRequest::LeaveGroup(leave)) = h.poll() else {
        panic!("expected LeaveGroup")
    };
    assert_eq!(leave.member_id, "me");
    assert!(!h.m.is_done());
    h.m.handle_leave(h.now);
    assert!(h.m.is_done());
    assert!(h.m.fatal().is_none());

    let mut cfg = eager();
    cfg.group_instance_id = Some("i".into());
    let mut h = Harness::new(cfg, &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0)]);
    h.m.close(h.now);
    assert_eq!(h.poll(), None);
    assert!(h.m.is_done(), "static members just stop");
}

#[test]
fn leader_rejoins_when_partition_counts_change() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    let _ = h.expect_join();
    h.m.handle_join(
        h.now,
        &join_ok("me", "me", 1, "range").with_members(vec![member("me", &["t"])]),
    );
    let _ = h.poll();
    h.m.handle_partition_counts(h.now, BTreeMap::from([("t".into(), 2)]));
    let _ = h.expect_sync();
    h.m.handle_sync(h.now, &sync_ok(&[tp("t", 0), tp("t", 1)]));
    let _ = h.events();
    h.m.handle_metadata(h.now, &BTreeMap::from([("t".into(), 2)]));
    assert!(h.m.is_stable(), "same counts: nothing to do");
    h.m.handle_metadata(h.now, &BTreeMap::from([("t".into(), 3)]));
    assert!(!h.m.is_stable());
    assert_eq!(h.poll(), None);
    assert_eq!(
        h.events(),
        [GroupEvent::Revoked(vec![tp("t", 0), tp("t", 1)])]
    );
}

#[test]
fn subscription_change_revokes_dropped_topics_and_rejoins() {
    let mut h = Harness::new(cooperative(), &["a", "b"]);
    h.find();
    let _ = h.expect_join();
    h.m.handle_join(h.now, &join_ok("me", "leader", 1, "cooperative-sticky"));
    let _ = h.expect_sync();
    h.m.handle_sync(h.now, &sync_ok(&[tp("a", 0), tp("b", 0)]));
    let _ = h.events();
    h.m.update_topics(h.now, vec!["a".into()]);
    assert_eq!(h.events(), [GroupEvent::Revoked(vec![tp("b", 0)])]);
    assert_eq!(h.poll(), None, "join waits for the revocation");
    h.m.revocation_done(h.now, &[tp("b", 0)]);
    let join = h.expect_join();
    let (_, sub) = Subscription::decode(&join.protocols[0].metadata).unwrap();
    assert_eq!(sub.topics, ["a"]);
    assert_eq!(sub.owned(), [tp("a", 0)]);
    // The same topics again change nothing.
    h.m.update_topics(h.now, vec!["a".into()]);
    assert_eq!(h.poll(), None);
}

#[test]
fn static_leader_with_skip_assignment_syncs_without_assigning() {
    let mut cfg = eager();
    cfg.group_instance_id = Some("i".into());
    let mut h = Harness::new(cfg, &["t"]);
    h.find();
    let _ = h.expect_join();
    h.m.handle_join(
        h.now,
        &join_ok("me", "me", 3, "range")
            .with_skip_assignment(true)
            .with_members(vec![member("me", &["t"])]),
    );
    let sync = h.expect_sync();
    assert!(sync.assignments.is_empty());
}

#[test]
fn undecodable_assignment_rejoins() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    let _ = h.expect_join();
    h.m.handle_join(h.now, &join_ok("me", "leader", 1, "range"));
    let _ = h.expect_sync();
    h.m.handle_sync(
        h.now,
        &SyncGroupResponse::default().with_assignment(Bytes::from_static(&[0, 1, 0x7f])),
    );
    assert!(h.events().is_empty());
    h.advance(Duration::from_millis(100));
    let _ = h.expect_join();
}

#[test]
fn sync_rebalance_in_progress_rejoins() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    let _ = h.expect_join();
    h.m.handle_join(h.now, &join_ok("me", "leader", 1, "range"));
    let _ = h.expect_sync();
    h.m.handle_sync(
        h.now,
        &SyncGroupResponse::default().with_error_code(ResponseError::RebalanceInProgress.code()),
    );
    let join = h.expect_join();
    assert_eq!(join.member_id.as_str(), "me");
}

#[test]
fn protocol_is_cooperative_only_when_every_assignor_supports_it() {
    assert_eq!(
        common_protocol(&eager().assignors),
        RebalanceProtocol::Eager
    );
    assert_eq!(
        common_protocol(&cooperative().assignors),
        RebalanceProtocol::Cooperative
    );
    let mixed: Vec<Arc<dyn Assignor>> =
        vec![Arc::new(CooperativeStickyAssignor), Arc::new(RangeAssignor)];
    assert_eq!(common_protocol(&mixed), RebalanceProtocol::Eager);
}

#[test]
fn poll_expiry_without_a_coordinator_sends_no_leave_and_does_not_spin() {
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0)]);
    let _ = h.events();
    // The coordinator is lost, then the poll interval passes.
    h.advance(Duration::from_secs(3));
    let _ = h.poll();
    h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::NotCoordinator)));
    h.now += Duration::from_secs(61);
    assert_eq!(h.poll(), Some(MemberRequest::FindCoordinator));
    assert_eq!(h.poll(), None);
    assert!(
        h.m.poll_timeout().is_none_or(|t| t > h.now),
        "nothing is due until the coordinator is found"
    );
    // As Java: no LeaveGroup without a known coordinator; the session expires us instead.
    h.m.handle_coordinator(h.now, Ok(1));
    assert_eq!(h.poll(), None);
    assert_eq!(h.events(), [GroupEvent::Lost(vec![tp("t", 0)])]);
    h.advance(Duration::from_millis(1));
    assert!(matches!(h.poll(), Some(MemberRequest::JoinGroup(_))));
}

/// Every request the classic member builds, in every variant, for
/// [`crate::request_versions`]: dynamic and static members, eager and cooperative (owned
/// partitions and user data in the subscription), first join and rejoin, leader and follower
/// SyncGroup, heartbeats, the LeaveGroup of a close and of a `max.poll.interval.ms` expiry.
/// Static members are encoded from the versions that carry `group.instance.id` (JoinGroup v5,
/// SyncGroup/Heartbeat/LeaveGroup v3, KIP-345): Kafka 3.9 and 4.x negotiate higher ones.
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    let statics = |mut c: MemberConfig| {
        c.group_instance_id = Some("instance-1".into());
        c.rack_id = Some("rack-a".into());
        c
    };
    let configs = [
        ("eager", eager(), false),
        ("cooperative", cooperative(), false),
        ("static eager", statics(eager()), true),
        ("static cooperative", statics(cooperative()), true),
    ];
    for (name, config, is_static) in configs {
        let mut requests: Vec<(String, MemberRequest)> = Vec::new();
        // First join (no member id), MEMBER_ID_REQUIRED rejoin, leader's SyncGroup.
        let mut h = Harness::new(config.clone(), &["t", "u"]);
        h.find();
        requests.push((
            "first JoinGroup".into(),
            MemberRequest::JoinGroup(h.expect_join()),
        ));
        h.m.handle_join(h.now, &join_err(ResponseError::MemberIdRequired, "me"));
        requests.push((
            "JoinGroup with member id".into(),
            MemberRequest::JoinGroup(h.expect_join()),
        ));
        let protocol = if name.contains("cooperative") {
            "cooperative-sticky"
        } else {
            "range"
        };
        let response = join_ok("me", "me", 1, protocol)
            .with_members(vec![member("me", &["t", "u"]), member("other", &["t"])]);
        h.m.handle_join(h.now, &response);
        if let Some(MemberRequest::PartitionCounts(_)) = h.poll() {
            h.m.handle_partition_counts(h.now, BTreeMap::from([("t".into(), 4), ("u".into(), 2)]));
        }
        requests.push((
            "leader SyncGroup".into(),
            MemberRequest::SyncGroup(h.expect_sync()),
        ));
        h.m.handle_sync(h.now, &sync_ok(&[tp("t", 0), tp("u", 0)]));
        let _ = h.events();
        h.advance(Duration::from_secs(3));
        if let Some(beat @ MemberRequest::Heartbeat(_)) = h.poll() {
            requests.push(("Heartbeat".into(), beat));
        }
        // A rebalance: the rejoin carries the owned partitions (cooperative) and generation.
        h.m.handle_heartbeat(h.now, &hb(Some(ResponseError::RebalanceInProgress)));
        // Eager revokes everything first (at the next poll); cooperative keeps its partitions.
        let rejoin = (0..3).find_map(|_| match h.poll() {
            Some(join @ MemberRequest::JoinGroup(_)) => Some(join),
            _ => {
                for event in h.events() {
                    if let GroupEvent::Revoked(partitions) = event {
                        h.m.revocation_done(h.now, &partitions);
                    }
                }
                None
            }
        });
        let Some(rejoin) = rejoin else {
            panic!("{name}: no rejoin after REBALANCE_IN_PROGRESS")
        };
        requests.push(("rejoin JoinGroup".into(), rejoin));
        h.m.handle_join(h.now, &join_ok("me", "leader", 2, protocol));
        requests.push((
            "follower SyncGroup".into(),
            MemberRequest::SyncGroup(h.expect_sync()),
        ));
        h.m.handle_sync(h.now, &sync_ok(&[tp("t", 1)]));
        // The leave of a close (sent by dynamic members only; built for both here).
        requests.push((
            "LeaveGroup at close".into(),
            MemberRequest::LeaveGroup(h.m.leave_request("the consumer is closing")),
        ));
        h.now += Duration::from_secs(61);
        match h.poll() {
            Some(leave @ MemberRequest::LeaveGroup(_)) => {
                requests.push(("LeaveGroup at poll expiry".into(), leave))
            }
            other => assert!(
                is_static,
                "{name}: expected the poll-expiry leave, got {other:?}"
            ),
        }
        for (what, request) in requests {
            let variant = format!("{name} {what}");
            let from = |api, static_from| {
                let versions = Encoder::versions(api);
                let min = if is_static {
                    static_from
                } else {
                    *versions.start()
                };
                min.max(*versions.start())..=*versions.end()
            };
            match &request {
                MemberRequest::JoinGroup(r) => {
                    for v in from(ApiKey::JoinGroup, 5) {
                        enc.check(&variant, v, r);
                    }
                }
                MemberRequest::SyncGroup(r) => {
                    for v in from(ApiKey::SyncGroup, 3) {
                        enc.check(&variant, v, r);
                    }
                }
                MemberRequest::Heartbeat(r) => {
                    for v in from(ApiKey::Heartbeat, 3) {
                        enc.check(&variant, v, r);
                    }
                }
                MemberRequest::LeaveGroup(leave) => {
                    for v in from(ApiKey::LeaveGroup, 3) {
                        enc.check(&variant, v, &leave.request(v));
                    }
                }
                MemberRequest::FindCoordinator | MemberRequest::PartitionCounts(_) => {}
            }
        }
    }
}

fn client_bug(api: ApiKey) -> Error {
    Error::Encode(kafkit_wire::header::EncodeError::Invalid {
        api,
        version: 5,
        reason: "A field is set that is not available on the selected protocol version".into(),
    })
}

#[test]
fn a_request_that_cannot_be_encoded_ends_the_member_and_a_failed_leave_is_reported() {
    // A heartbeat kafkit cannot encode: retrying would send the same bytes, so the member
    // stops with the error (the consumer returns it from recv/poll).
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0)]);
    h.advance(Duration::from_secs(3));
    assert!(matches!(h.poll(), Some(MemberRequest::Heartbeat(_))));
    h.m.handle_request_failed(
        h.now,
        RequestKind::Heartbeat,
        &client_bug(ApiKey::Heartbeat),
    );
    assert!(h.m.is_done());
    let fatal = h.m.fatal().expect("fatal");
    assert!(fatal.is_client_bug() && !fatal.is_retriable());
    assert!(fatal
        .to_string()
        .starts_with("client bug: cannot encode Heartbeat v5"));

    // The LeaveGroup of a close fails: the member is done, not fatal, and the close reports it.
    let mut h = Harness::new(eager(), &["t"]);
    h.find();
    h.join_follower(1, &[tp("t", 0)]);
    h.m.close(h.now);
    assert!(matches!(h.poll(), Some(MemberRequest::LeaveGroup(_))));
    h.m.handle_request_failed(
        h.now,
        RequestKind::LeaveGroup,
        &client_bug(ApiKey::LeaveGroup),
    );
    assert!(h.m.is_done());
    assert!(h.m.fatal().is_none());
    assert!(h.m.leave_error().is_some_and(Error::is_client_bug));
}
