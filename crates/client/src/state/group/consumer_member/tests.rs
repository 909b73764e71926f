//! Scripted scenarios on a virtual clock: each test plays the broker's responses by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::ConsumerGroupHeartbeatResponse;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::*;
use crate::state::group::TopicPartition;

const V1: i16 = 1;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn orders() -> Uuid {
    Uuid::from_u128(0x0a)
}

fn payments() -> Uuid {
    Uuid::from_u128(0x0b)
}

fn names() -> BTreeMap<Uuid, String> {
    BTreeMap::from([
        (orders(), "orders".to_string()),
        (payments(), "payments".to_string()),
    ])
}

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn topics(names: &[&str]) -> SubscribedTopics {
    SubscribedTopics::Topics(names.iter().map(|n| n.to_string()).collect())
}

fn member(now: Instant) -> ConsumerMemberState {
    let config = ConsumerMemberConfig::new("g")
        .with_remote_assignor("uniform")
        .with_rack_id("rack-a")
        .with_rebalance_timeout(ms(60_000));
    ConsumerMemberState::new(config, topics(&["orders", "payments"]), "m-1".into(), now)
        .with_rng(XorShift64Star::new(7))
}

fn ok(epoch: i32) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_static_str("m-1")))
        .with_member_epoch(epoch)
        .with_heartbeat_interval_ms(5_000)
}

fn assigned(epoch: i32, parts: &[(Uuid, &[i32])]) -> ConsumerGroupHeartbeatResponse {
    ok(epoch).with_assignment(Some(
        Assignment::default().with_topic_partitions(
            parts
                .iter()
                .map(|(id, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_partitions(ps.to_vec())
                })
                .collect(),
        ),
    ))
}

fn error(code: ResponseError) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default().with_error_code(code.code())
}

/// The owned partitions a request acknowledges, by topic id.
fn acked(hb: &OutgoingHeartbeat) -> Option<Vec<(Uuid, Vec<i32>)>> {
    hb.request.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|t| (t.topic_id, t.partitions.clone()))
            .collect()
    })
}

fn events(m: &mut ConsumerMemberState) -> Vec<GroupEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

/// Joins and takes `parts` at epoch 1; returns the member with the acknowledgement answered.
fn joined(now: Instant, parts: &[(Uuid, &[i32])]) -> ConsumerMemberState {
    let mut m = member(now);
    let join = m.poll_heartbeat(now, V1).unwrap();
    m.handle_heartbeat_response(now, join.id, &assigned(1, parts), &names());
    events(&mut m);
    let ack = m.poll_heartbeat(now, V1).unwrap();
    m.handle_heartbeat_response(now, ack.id, &ok(1), &names());
    m
}

#[test]
fn join_sends_every_field_with_epoch_zero_and_the_client_member_id() {
    let now = Instant::now();
    let mut m = member(now);
    let join = m.poll_heartbeat(now, V1).unwrap();
    let r = &join.request;
    assert_eq!(r.group_id.as_str(), "g");
    assert_eq!(r.member_id.as_str(), "m-1");
    assert_eq!(r.member_epoch, 0);
    assert_eq!(r.rebalance_timeout_ms, 60_000);
    assert_eq!(r.rack_id.as_deref(), Some("rack-a"));
    assert_eq!(r.server_assignor.as_deref(), Some("uniform"));
    let subscribed: Vec<&str> = r
        .subscribed_topic_names
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(subscribed, ["orders", "payments"]);
    assert!(r.subscribed_topic_regex.is_none());
    assert_eq!(acked(&join), Some(vec![]));
    assert!(r.instance_id.is_none());
    // Only one heartbeat in flight.
    assert!(m.poll_heartbeat(now, V1).is_none());
    assert_eq!(m.state(), MemberState::Joining);
}

#[test]
fn v0_sends_an_empty_member_id_and_takes_the_brokers() {
    let now = Instant::now();
    let mut m = member(now);
    let join = m.poll_heartbeat(now, 0).unwrap();
    assert_eq!(join.request.member_id.as_str(), "");
    let response = ok(1).with_member_id(Some(StrBytes::from_static_str("broker-made")));
    m.handle_heartbeat_response(now, join.id, &response, &names());
    assert_eq!(m.member_id(), "broker-made");
    let next = m.poll_heartbeat(now + ms(5_000), 0).unwrap();
    assert_eq!(next.request.member_id.as_str(), "broker-made");
    assert_eq!(next.request.member_epoch, 1);
}

#[test]
fn later_heartbeats_send_only_what_changed_at_the_brokers_interval() {
    let now = Instant::now();
    let mut m = member(now);
    let join = m.poll_heartbeat(now, V1).unwrap();
    m.handle_heartbeat_response(now, join.id, &assigned(1, &[]), &names());
    // Empty assignment: acknowledged once, at once.
    let ack = m.poll_heartbeat(now, V1).unwrap();
    assert_eq!(acked(&ack), Some(vec![]));
    let t = now + ms(10);
    m.handle_heartbeat_response(t, ack.id, &ok(1), &names());
    assert_eq!(m.heartbeat_interval(), ms(5_000));
    assert!(m.is_joined());
    assert!(m.poll_heartbeat(now + ms(4_999), V1).is_none());
    assert_eq!(m.poll_timeout(), Some(now + ms(5_000)));
    let hb = m.poll_heartbeat(now + ms(5_000), V1).unwrap();
    let r = &hb.request;
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.rebalance_timeout_ms, -1);
    assert!(r.rack_id.is_none());
    assert!(r.server_assignor.is_none());
    assert!(r.subscribed_topic_names.is_none());
    assert!(r.topic_partitions.is_none());
}

#[test]
fn an_assignment_is_assigned_then_acknowledged_at_once() {
    let now = Instant::now();
    let mut m = member(now);
    let join = m.poll_heartbeat(now, V1).unwrap();
    let result = m.handle_heartbeat_response(
        now,
        join.id,
        &assigned(3, &[(orders(), &[0, 1]), (payments(), &[2])]),
        &names(),
    );
    assert!(matches!(result, HeartbeatResult::Ok));
    assert_eq!(
        events(&mut m),
        [GroupEvent::Assigned(vec![
            tp("orders", 0),
            tp("orders", 1),
            tp("payments", 2)
        ])]
    );
    assert_eq!(m.member_epoch(), 3);
    let ack = m.poll_heartbeat(now + ms(1), V1).unwrap();
    assert_eq!(
        acked(&ack),
        Some(vec![(orders(), vec![0, 1]), (payments(), vec![2])])
    );
    assert_eq!(m.assignment().len(), 3);
}

#[test]
fn revocation_comes_first_and_the_new_partitions_wait_for_it() {
    let now = Instant::now();
    let mut m = joined(now, &[(orders(), &[0, 1, 2])]);
    let t = now + ms(5_000);
    let hb = m.poll_heartbeat(t, V1).unwrap();
    // The broker moves orders-2 away and gives payments-0.
    m.handle_heartbeat_response(
        t,
        hb.id,
        &assigned(2, &[(orders(), &[0, 1]), (payments(), &[0])]),
        &names(),
    );
    assert_eq!(events(&mut m), [GroupEvent::Revoked(vec![tp("orders", 2)])]);
    // Nothing acknowledged before the revocation is done: a heartbeat at the interval carries
    // no partitions.
    assert!(m.poll_heartbeat(t + ms(1), V1).is_none());
    let hb = m.poll_heartbeat(t + ms(5_000), V1).unwrap();
    assert!(acked(&hb).is_none());
    m.handle_heartbeat_response(t + ms(5_000), hb.id, &ok(2), &names());
    // Commit epoch is the latest the broker gave.
    assert_eq!(m.member_epoch(), 2);
    let t = t + ms(6_000);
    m.revocation_done(t, &[tp("orders", 2)], &names());
    assert_eq!(
        events(&mut m),
        [GroupEvent::Assigned(vec![tp("payments", 0)])]
    );
    let ack = m.poll_heartbeat(t, V1).unwrap();
    assert_eq!(
        acked(&ack),
        Some(vec![(orders(), vec![0, 1]), (payments(), vec![0])])
    );
}

#[test]
fn a_target_arriving_during_a_revocation_replaces_the_pending_one() {
    let now = Instant::now();
    let mut m = joined(now, &[(orders(), &[0, 1])]);
    let t = now + ms(5_000);
    let hb = m.poll_heartbeat(t, V1).unwrap();
    m.handle_heartbeat_response(t, hb.id, &assigned(2, &[(orders(), &[0])]), &names());
    assert_eq!(events(&mut m), [GroupEvent::Revoked(vec![tp("orders", 1)])]);
    let t = t + ms(5_000);
    let hb = m.poll_heartbeat(t, V1).unwrap();
    m.handle_heartbeat_response(
        t,
        hb.id,
        &assigned(3, &[(orders(), &[1]), (payments(), &[4])]),
        &names(),
    );
    // Still waiting for the first revocation.
    assert!(events(&mut m).is_empty());
    m.revocation_done(t, &[tp("orders", 1)], &names());
    // Now orders-0 goes too; orders-1 comes back only after that.
    assert_eq!(events(&mut m), [GroupEvent::Revoked(vec![tp("orders", 0)])]);
    m.revocation_done(t, &[tp("orders", 0)], &names());
    assert_eq!(
        events(&mut m),
        [GroupEvent::Assigned(vec![
            tp("orders", 1),
            tp("payments", 4)
        ])]
    );
    let ack = m.poll_heartbeat(t, V1).unwrap();
    assert_eq!(
        acked(&ack),
        Some(vec![(orders(), vec![1]), (payments(), vec![4])])
    );
}

#[test]
fn unknown_topic_ids_wait_for_metadata() {
    let now = Instant::now();
    let mut m = member(now);
    let join = m.poll_heartbeat(now, V1).unwrap();
    let only_orders = BTreeMap::from([(orders(), "orders".to_string())]);
    m.handle_heartbeat_response(
        now,
        join.id,
        &assigned(1, &[(orders(), &[0]), (payments(), &[1])]),
        &only_orders,
    );
    assert_eq!(
        events(&mut m),
        [GroupEvent::Assigned(vec![tp("orders", 0)])]
    );
    assert!(m.poll_timeout().unwrap() <= now);
    assert!(m.poll_metadata(now));
    // Once per refresh.
    assert!(!m.poll_metadata(now));
    // The partial assignment is acknowledged.
    let ack = m.poll_heartbeat(now, V1).unwrap();
    assert_eq!(acked(&ack), Some(vec![(orders(), vec![0])]));
    // Still unknown after a refresh: the next refresh waits for the backoff.
    m.handle_metadata(now, &only_orders);
    assert!(!m.poll_metadata(now));
    assert!(m.poll_metadata(now + ms(1_000)));
    m.handle_metadata(now + ms(1_000), &names());
    assert!(!m.poll_metadata(now + ms(10_000)));
    assert!(m.poll_timeout().unwrap() > now + ms(1_000));
    assert_eq!(
        events(&mut m),
        [GroupEvent::Assigned(vec![tp("payments", 1)])]
    );
}

#[test]
fn fenced_or_unknown_member_loses_everything_and_rejoins_with_epoch_zero() {
    for code in [
        ResponseError::FencedMemberEpoch,
        ResponseError::UnknownMemberId,
    ] {
        let now = Instant::now();
        let mut m = joined(now, &[(orders(), &[0, 1])]);
        let t = now + ms(5_000);
        let hb = m.poll_heartbeat(t, V1).unwrap();
        let result = m.handle_heartbeat_response(t, hb.id, &error(code), &names());
        assert!(matches!(result, HeartbeatResult::Fenced), "{code:?}");
        assert_eq!(
            events(&mut m),
            [GroupEvent::Lost(vec![tp("orders", 0), tp("orders", 1)])]
        );
        assert!(m.assignment().is_empty());
        // Rejoin at once: epoch 0, the same member id, every field.
        let join = m.poll_heartbeat(t, V1).unwrap();
        assert_eq!(join.request.member_epoch, 0);
        assert_eq!(join.request.member_id.as_str(), "m-1");
        assert_eq!(join.request.rebalance_timeout_ms, 60_000);
        assert!(join.request.subscribed_topic_names.is_some());
        assert_eq!(acked(&join), Some(vec![]));
    }
}

#[test]
fn fatal_errors_stop_the_member() {
    for code in [
        ResponseError::UnreleasedInstanceId,
        ResponseError::FencedInstanceId,
        ResponseError::GroupMaxSizeReached,
        ResponseError::UnsupportedAssignor,
        ResponseError::InvalidRequest,
        ResponseError::GroupAuthorizationFailed,
        ResponseError::InvalidRegularExpression,
    ] {
        let now = Instant::now();
        let mut m = joined(now, &[(orders(), &[0])]);
        let t = now + ms(5_000);
        let hb = m.poll_heartbeat(t, V1).unwrap();
        let result = m.handle_heartbeat_response(t, hb.id, &error(code), &names());
        let HeartbeatResult::Fatal(Error::Broker { code: got, api, .. }) = result else {
            panic!("{code:?}: {result:?}");
        };
        assert_eq!(got, code);
        assert_eq!(api, ApiKey::ConsumerGroupHeartbeat);
        assert!(m.fatal_error().is_some());
        assert_eq!(m.state(), MemberState::Fatal);
        assert_eq!(events(&mut m), [GroupEvent::Lost(vec![tp("orders", 0)])]);
        assert!(m.poll_heartbeat(t + ms(60_000), V1).is_none());
        assert!(m.poll_timeout().is_none());
        assert!(m.leave().is_none());
    }
}

#[test]
fn coordinator_moved_retries_at_once_with_a_full_request() {
    for code in [
        ResponseError::NotCoordinator,
        ResponseError::CoordinatorNotAvailable,
    ] {
        let now = Instant::now();
        let mut m = joined(now, &[(orders(), &[0])]);
        let t = now + ms(5_000);
        let hb = m.poll_heartbeat(t, V1).unwrap();
        let result = m.handle_heartbeat_response(t, hb.id, &error(code), &names());
        assert!(matches!(result, HeartbeatResult::FindCoordinator));
        assert!(events(&mut m).is_empty());
        let retry = m.poll_heartbeat(t, V1).unwrap();
        assert_eq!(retry.request.member_epoch, 1);
        assert_eq!(retry.request.rebalance_timeout_ms, 60_000);
        assert_eq!(acked(&retry), Some(vec![(orders(), vec![0])]));
    }
}

#[test]
fn loading_coordinator_and_lost_connections_back_off() {
    let now = Instant::now();
    let mut m = joined(now, &[(orders(), &[0])]);
    let t = now + ms(5_000);
    let hb = m.poll_heartbeat(t, V1).unwrap();
    let result = m.handle_heartbeat_response(
        t,
        hb.id,
        &error(ResponseError::CoordinatorLoadInProgress),
        &names(),
    );
    assert!(matches!(result, HeartbeatResult::Retry));
    // retry.backoff.ms = 100 ± 20%.
    assert!(m.poll_heartbeat(t + ms(79), V1).is_none());
    let retry = m.poll_heartbeat(t + ms(120), V1).unwrap();
    assert_eq!(retry.request.rebalance_timeout_ms, 60_000);
    // A lost connection: backoff doubles, the coordinator is looked up again.
    let t = t + ms(120);
    let err = Error::ConnectionClosed {
        broker: "b:9092".into(),
        api: ApiKey::ConsumerGroupHeartbeat,
    };
    let result = m.handle_heartbeat_failure(t, retry.id, &err);
    assert!(matches!(result, HeartbeatResult::FindCoordinator));
    assert!(m.poll_heartbeat(t + ms(159), V1).is_none());
    let again = m.poll_heartbeat(t + ms(240), V1).unwrap();
    assert!(acked(&again).is_some());
    // A non-retriable failure is fatal.
    let err = Error::Authentication {
        broker: "b:9092".into(),
        mechanism: "PLAIN".into(),
        message: "no".into(),
    };
    let result = m.handle_heartbeat_failure(t + ms(240), again.id, &err);
    assert!(matches!(
        result,
        HeartbeatResult::Fatal(Error::Authentication { .. })
    ));
}

#[test]
fn outcomes_of_requests_no_longer_awaited_are_ignored() {
    let now = Instant::now();
    let mut m = joined(now, &[(orders(), &[0])]);
    let t = now + ms(5_000);
    let hb = m.poll_heartbeat(t, V1).unwrap();
    let stale = hb.id.wrapping_sub(1);
    let result =
        m.handle_heartbeat_response(t, stale, &error(ResponseError::FencedMemberEpoch), &names());
    assert!(matches!(result, HeartbeatResult::Ignored));
    assert_eq!(m.member_epoch(), 1);
    assert!(events(&mut m).is_empty());
}

#[test]
fn leaving_uses_epoch_minus_one_or_minus_two_for_static_members() {
    let now = Instant::now();
    let mut m = joined(now, &[(orders(), &[0])]);
    let leave = m.leave().unwrap();
    assert_eq!(leave.member_epoch, LEAVE_GROUP_MEMBER_EPOCH);
    assert_eq!(leave.member_id.as_str(), "m-1");
    assert_eq!(m.state(), MemberState::Left);
    assert!(m.poll_heartbeat(now + ms(60_000), V1).is_none());

    let config = ConsumerMemberConfig::new("g").with_group_instance_id("instance-1");
    let mut s = ConsumerMemberState::new(config, topics(&["orders"]), "m-2".into(), now);
    // Nothing sent yet: nothing to leave.
    assert!(ConsumerMemberState::new(
        ConsumerMemberConfig::new("g"),
        topics(&["orders"]),
        "m-3".into(),
        now
    )
    .leave()
    .is_none());
    let join = s.poll_heartbeat(now, V1).unwrap();
    assert_eq!(join.request.instance_id.as_deref(), Some("instance-1"));
    s.handle_heartbeat_response(now, join.id, &assigned(1, &[]), &names());
    let ack = s.poll_heartbeat(now, V1).unwrap();
    // The instance id is in every request.
    assert_eq!(ack.request.instance_id.as_deref(), Some("instance-1"));
    let leave = s.leave().unwrap();
    assert_eq!(leave.member_epoch, LEAVE_GROUP_STATIC_MEMBER_EPOCH);
    assert_eq!(leave.instance_id.as_deref(), Some("instance-1"));
}

#[test]
fn no_poll_within_the_rebalance_timeout_leaves_and_the_next_tick_rejoins() {
    let now = Instant::now();
    let mut m = joined(now, &[(orders(), &[0, 1])]);
    // Heartbeats go on while the application polls.
    let mut t = now;
    for _ in 0..5 {
        t += ms(5_000);
        m.poll_tick(t);
        let hb = m.poll_heartbeat(t, V1).unwrap();
        m.handle_heartbeat_response(t, hb.id, &ok(1), &names());
    }
    let last_poll = t;
    assert_eq!(m.poll_timeout(), Some(t + ms(5_000)));
    while t + ms(5_000) < last_poll + ms(60_000) {
        t += ms(5_000);
        let hb = m.poll_heartbeat(t, V1).unwrap();
        m.handle_heartbeat_response(t, hb.id, &ok(1), &names());
    }
    let expiry = last_poll + ms(60_000);
    assert!(m.poll_timeout().unwrap() <= expiry);
    let leave = m.poll_heartbeat(expiry, V1).unwrap();
    assert_eq!(leave.request.member_epoch, LEAVE_GROUP_MEMBER_EPOCH);
    assert_eq!(m.state(), MemberState::Stale);
    assert_eq!(
        events(&mut m),
        [GroupEvent::Lost(vec![tp("orders", 0), tp("orders", 1)])]
    );
    assert!(m.poll_heartbeat(expiry + ms(10_000), V1).is_none());
    m.poll_tick(expiry + ms(10_000));
    let join = m.poll_heartbeat(expiry + ms(10_000), V1).unwrap();
    assert_eq!(join.request.member_epoch, 0);
    assert!(join.request.subscribed_topic_names.is_some());
}

#[test]
fn a_subscription_change_is_sent_at_once_and_only_once() {
    let now = Instant::now();
    let mut m = joined(now, &[]);
    m.update_subscription(topics(&["orders"]));
    let hb = m.poll_heartbeat(now + ms(1), V1).unwrap();
    let subscribed: Vec<&str> = hb
        .request
        .subscribed_topic_names
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(subscribed, ["orders"]);
    m.handle_heartbeat_response(now + ms(1), hb.id, &ok(1), &names());
    // The same subscription again changes nothing.
    m.update_subscription(topics(&["orders"]));
    assert!(m.poll_heartbeat(now + ms(2), V1).is_none());
    let hb = m.poll_heartbeat(now + ms(5_001), V1).unwrap();
    assert!(hb.request.subscribed_topic_names.is_none());
    m.handle_heartbeat_response(now + ms(5_001), hb.id, &ok(1), &names());
    m.update_subscription(SubscribedTopics::Pattern("ord.*".into()));
    let hb = m.poll_heartbeat(now + ms(5_002), V1).unwrap();
    assert_eq!(hb.request.subscribed_topic_regex.as_deref(), Some("ord.*"));
    assert!(hb.request.subscribed_topic_names.is_none());
}

#[test]
fn a_regex_needs_version_one() {
    let now = Instant::now();
    let mut m = ConsumerMemberState::new(
        ConsumerMemberConfig::new("g"),
        SubscribedTopics::Pattern("a.*".into()),
        "m".into(),
        now,
    );
    assert!(m.poll_heartbeat(now, 0).is_none());
    assert!(matches!(
        m.fatal_error(),
        Some(Error::Broker {
            code: ResponseError::UnsupportedVersion,
            ..
        })
    ));
}

#[test]
fn member_ids_are_uuid_v4() {
    let a = new_member_id();
    let b = new_member_id();
    assert_ne!(a, b);
    let parsed = Uuid::parse_str(&a).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
    assert_eq!(a.len(), 36);
    let _: BTreeSet<String> = [a, b].into();
}

#[test]
fn a_late_confirmation_of_an_older_revocation_does_not_release_a_newer_one() {
    let now = Instant::now();
    let mut m = joined(now, &[(orders(), &[0])]);
    let t = now + ms(5_000);
    let hb = m.poll_heartbeat(t, V1).unwrap();
    m.handle_heartbeat_response(t, hb.id, &assigned(2, &[(orders(), &[1])]), &names());
    // The application reads the revocation of orders-0 and runs its callback (slowly)…
    assert_eq!(
        m.poll_event(),
        Some(GroupEvent::Revoked(vec![tp("orders", 0)]))
    );
    // …meanwhile the member is fenced (nothing more to lose), rejoins, gets orders-0 again
    // and is asked to give it up again: two events the application has not read.
    let t = t + ms(5_000);
    let hb = m.poll_heartbeat(t, V1).unwrap();
    m.handle_heartbeat_response(t, hb.id, &error(ResponseError::FencedMemberEpoch), &names());
    let join = m.poll_heartbeat(t, V1).unwrap();
    m.handle_heartbeat_response(t, join.id, &assigned(4, &[(orders(), &[0])]), &names());
    let ack = m.poll_heartbeat(t, V1).unwrap();
    m.handle_heartbeat_response(t, ack.id, &assigned(5, &[]), &names());
    // The callback of the first revocation ends: it must not release the second one, which
    // the application has not seen (it will fetch orders-0 after reading `Assigned`).
    m.revocation_done(t, &[tp("orders", 0)], &names());
    assert_eq!(m.assignment(), [tp("orders", 0)]);
    let next = m.poll_heartbeat(t + ms(5_000), V1).unwrap();
    assert!(
        acked(&next).is_none(),
        "released too early: {:?}",
        acked(&next)
    );
    m.handle_heartbeat_response(t + ms(5_000), next.id, &ok(5), &names());
    assert_eq!(
        events(&mut m),
        [
            GroupEvent::Assigned(vec![tp("orders", 0)]),
            GroupEvent::Revoked(vec![tp("orders", 0)])
        ]
    );
    m.revocation_done(t + ms(5_000), &[tp("orders", 0)], &names());
    assert!(m.assignment().is_empty());
    let release = m.poll_heartbeat(t + ms(5_000), V1).unwrap();
    assert_eq!(acked(&release), Some(vec![]));
}

/// Every ConsumerGroupHeartbeat the KIP-848 member builds, for [`crate::request_versions`]:
/// dynamic and static, topic names and a regex (v1+; refused by the member below), the full
/// joining heartbeat, the one acknowledging an assignment, the leave at close and at poll
/// expiry.
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    use kafka_protocol::messages::ApiKey;
    for v in Encoder::versions(ApiKey::ConsumerGroupHeartbeat) {
        for is_static in [false, true] {
            for subscription in [
                topics(&["orders", "payments"]),
                SubscribedTopics::Pattern("ord.*".into()),
            ] {
                let name = format!("static={is_static} {subscription:?}");
                let now = Instant::now();
                let mut config = ConsumerMemberConfig::new("g")
                    .with_remote_assignor("uniform")
                    .with_rack_id("rack-a");
                if is_static {
                    config = config.with_group_instance_id("instance-1");
                }
                let mut m =
                    ConsumerMemberState::new(config, subscription.clone(), "m-1".into(), now);
                let Some(join) = m.poll_heartbeat(now, v) else {
                    assert!(
                        v < 1 && matches!(subscription, SubscribedTopics::Pattern(_)),
                        "{name} v{v}: no heartbeat"
                    );
                    enc.refused(ApiKey::ConsumerGroupHeartbeat);
                    continue;
                };
                enc.check(&format!("{name} join"), v, &join.request);
                m.handle_heartbeat_response(
                    now,
                    join.id,
                    &assigned(1, &[(orders(), &[0, 1])]),
                    &names(),
                );
                while let Some(event) = m.poll_event() {
                    if let GroupEvent::Revoked(p) = event {
                        m.revocation_done(now, &p, &names());
                    }
                }
                if let Some(ack) = m.poll_heartbeat(now, v) {
                    enc.check(&format!("{name} acknowledgement"), v, &ack.request);
                    m.handle_heartbeat_response(now, ack.id, &ok(1), &names());
                }
                let later = now + ms(400_000);
                if let Some(leave) = m.poll_heartbeat(later, v) {
                    enc.check(&format!("{name} poll-expiry leave"), v, &leave.request);
                }
                m.poll_tick(later);
                let mut m2 = ConsumerMemberState::new(
                    ConsumerMemberConfig::new("g"),
                    subscription.clone(),
                    "m-2".into(),
                    now,
                );
                if let Some(first) = m2.poll_heartbeat(now, v) {
                    m2.handle_heartbeat_response(now, first.id, &ok(3), &names());
                }
                if let Some(leave) = m2.leave() {
                    enc.check(&format!("{name} leave at close"), v, &leave);
                }
            }
        }
    }
}
