//! A property test: random targets, errors, fencing, metadata gaps and late confirmations
//! against one member, checking what the application sees after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::ConsumerGroupHeartbeatResponse;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;

const TOPICS: u128 = 3;

fn id(t: u128) -> Uuid {
    Uuid::from_u128(t + 1)
}

fn name(t: u128) -> String {
    format!("t{t}")
}

#[derive(Debug, Clone)]
enum Op {
    /// The broker's next response carries this target (topic, partition) set.
    Target(BTreeSet<(u8, u8)>),
    /// Time passes and the due heartbeat (if any) is answered.
    Tick,
    /// The application confirms every revocation it was given.
    Confirm,
    /// The next response is FENCED_MEMBER_EPOCH.
    Fence,
    /// The next heartbeat fails (NOT_COORDINATOR or a lost connection).
    Fail(bool),
    /// The metadata learns the last topic's name.
    LearnLastTopic,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::collection::btree_set((0u8..3, 0u8..2), 0..5).prop_map(Op::Target),
        6 => Just(Op::Tick),
        3 => Just(Op::Confirm),
        1 => Just(Op::Fence),
        1 => any::<bool>().prop_map(Op::Fail),
        1 => Just(Op::LearnLastTopic),
    ]
}

/// The application's side: what it fetches and what it was asked to give up.
///
/// Like the consumer, it reads events one at a time: after a `Revoked` it reads nothing more
/// until it has confirmed (its callback runs in between).
#[derive(Debug, Default)]
struct App {
    fetching: BTreeSet<TopicPartition>,
    revoking: BTreeSet<TopicPartition>,
}

impl App {
    fn apply(&mut self, event: GroupEvent) -> Result<(), TestCaseError> {
        match event {
            GroupEvent::Assigned(tps) => {
                for tp in tps {
                    prop_assert!(self.fetching.insert(tp.clone()), "assigned twice: {tp:?}");
                }
            }
            GroupEvent::Revoked(tps) => {
                for tp in tps {
                    prop_assert!(self.fetching.remove(&tp), "revoked, not owned: {tp:?}");
                    self.revoking.insert(tp);
                }
            }
            GroupEvent::Lost(tps) => {
                for tp in tps {
                    prop_assert!(self.fetching.remove(&tp), "lost, not owned: {tp:?}");
                }
            }
        }
        Ok(())
    }

    /// Reads and handles events until a revocation needs confirming.
    fn read(&mut self, m: &mut ConsumerMemberState) -> Result<(), TestCaseError> {
        while self.revoking.is_empty() {
            let Some(event) = m.poll_event() else {
                break;
            };
            self.apply(event)?;
        }
        Ok(())
    }

    fn confirm(&mut self, m: &mut ConsumerMemberState, now: Instant, names: &dyn TopicNames) {
        let done: Vec<TopicPartition> = self.revoking.iter().cloned().collect();
        self.revoking.clear();
        m.revocation_done(now, &done, names);
    }
}

/// The safety property: the member never gives up (acknowledges away) a partition the
/// application still fetches, unless it was fenced and told so (a `Lost` not read yet).
fn check_owned(m: &ConsumerMemberState, app: &App) -> Result<(), TestCaseError> {
    let owned: BTreeSet<TopicPartition> = m.assignment().into_iter().collect();
    let lost_unread: BTreeSet<TopicPartition> = m
        .events
        .iter()
        .filter_map(|e| match e {
            GroupEvent::Lost(tps) => Some(tps.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    for tp in &app.fetching {
        prop_assert!(
            owned.contains(tp) || lost_unread.contains(tp),
            "the application fetches {:?}, the member does not own it: {:?}",
            tp,
            owned
        );
    }
    Ok(())
}

fn respond(epoch: i32, target: Option<&BTreeSet<(u8, u8)>>) -> ConsumerGroupHeartbeatResponse {
    let mut r = ConsumerGroupHeartbeatResponse::default()
        .with_member_epoch(epoch)
        .with_heartbeat_interval_ms(1_000);
    if let Some(target) = target {
        let mut by_topic: BTreeMap<u8, Vec<i32>> = BTreeMap::new();
        for (t, p) in target {
            by_topic.entry(*t).or_default().push(i32::from(*p));
        }
        r.assignment = Some(
            Assignment::default().with_topic_partitions(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(id(u128::from(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            ),
        );
    }
    r
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let mut now = start;
    let config = ConsumerMemberConfig::new("g").with_rebalance_timeout(Duration::from_secs(3_600));
    let subscription = SubscribedTopics::Topics(BTreeSet::from(["t0".to_string()]));
    let mut m = ConsumerMemberState::new(config, subscription, "m".into(), now)
        .with_rng(XorShift64Star::new(1));
    let mut names: BTreeMap<Uuid, String> = (0..TOPICS - 1).map(|t| (id(t), name(t))).collect();
    let mut app = App::default();
    let mut epoch = 0;
    let mut target: BTreeSet<(u8, u8)> = BTreeSet::new();
    let mut send_target = false;
    let mut fence_next = false;
    let mut fail_next: Option<bool> = None;
    for op in ops {
        match op {
            Op::Target(t) => {
                target = t;
                send_target = true;
            }
            Op::Confirm => app.confirm(&mut m, now, &names),
            Op::Fence => fence_next = true,
            Op::Fail(coordinator) => fail_next = Some(coordinator),
            Op::LearnLastTopic => {
                names.insert(id(TOPICS - 1), name(TOPICS - 1));
            }
            Op::Tick => {
                now += Duration::from_millis(1_000);
                m.poll_tick(now);
                if m.poll_metadata(now) {
                    m.handle_metadata(now, &names);
                }
                if let Some(hb) = m.poll_heartbeat(now, 1) {
                    // Acknowledged partitions are always what the member owns.
                    if let Some(acked) = &hb.request.topic_partitions {
                        let acked: IdPartitions = acked
                            .iter()
                            .map(|t| (t.topic_id, t.partitions.iter().copied().collect()))
                            .collect();
                        prop_assert_eq!(acked, m.reconciler.owned_ids());
                    }
                    if hb.request.member_epoch == 0 {
                        // A (re)join: the broker sends the full assignment again.
                        send_target = true;
                    }
                    if fence_next {
                        fence_next = false;
                        let r = ConsumerGroupHeartbeatResponse::default()
                            .with_error_code(ResponseError::FencedMemberEpoch.code());
                        m.handle_heartbeat_response(now, hb.id, &r, &names);
                    } else if let Some(coordinator) = fail_next.take() {
                        if coordinator {
                            let r = ConsumerGroupHeartbeatResponse::default()
                                .with_error_code(ResponseError::NotCoordinator.code());
                            m.handle_heartbeat_response(now, hb.id, &r, &names);
                        } else {
                            let err = Error::ConnectionClosed {
                                broker: "b".into(),
                                api: ApiKey::ConsumerGroupHeartbeat,
                            };
                            m.handle_heartbeat_failure(now, hb.id, &err);
                        }
                        // The broker may have missed it: a full request follows.
                        send_target = true;
                    } else {
                        epoch += 1;
                        let carry = send_target || hb.request.topic_partitions.is_some();
                        send_target = false;
                        let r = respond(epoch, carry.then_some(&target));
                        m.handle_heartbeat_response(now, hb.id, &r, &names);
                    }
                }
            }
        }
        app.read(&mut m)?;
        check_owned(&m, &app)?;
        prop_assert!(m.fatal_error().is_none());
    }
    // Settle: confirm, learn every name, heartbeat until quiet. The member then owns the
    // latest target.
    names.insert(id(TOPICS - 1), name(TOPICS - 1));
    for _ in 0..10 {
        app.confirm(&mut m, now, &names);
        app.read(&mut m)?;
        app.confirm(&mut m, now, &names);
        now += Duration::from_millis(1_000);
        if m.poll_metadata(now) {
            m.handle_metadata(now, &names);
        }
        if let Some(hb) = m.poll_heartbeat(now, 1) {
            epoch += 1;
            let r = respond(epoch, Some(&target));
            m.handle_heartbeat_response(now, hb.id, &r, &names);
        }
        app.read(&mut m)?;
        check_owned(&m, &app)?;
    }
    let expected: BTreeSet<TopicPartition> = target
        .iter()
        .map(|(t, p)| TopicPartition::new(name(u128::from(*t)), i32::from(*p)))
        .collect();
    prop_assert_eq!(&app.fetching, &expected);
    prop_assert_eq!(
        m.assignment().into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_application_always_sees_what_the_member_owns(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
