//! Property tests for the assignors: exclusivity, coverage, balance, stickiness and the
//! cooperative two-phase rule.

use std::collections::{BTreeMap, HashMap, HashSet};

use kafkit::state::group::protocol::group_by_topic;
use kafkit::state::group::{
    Assignor, CooperativeStickyAssignor, GroupAssignment, Member, RangeAssignor,
    RoundRobinAssignor, Subscription, TopicPartition,
};
use proptest::prelude::*;

const TOPICS: [&str; 4] = ["a", "b", "c", "d"];

fn scenario() -> impl Strategy<Value = (BTreeMap<String, i32>, Vec<Member>)> {
    let counts = proptest::collection::vec(0i32..12, TOPICS.len());
    let members = proptest::collection::vec(
        (
            proptest::collection::vec(any::<bool>(), TOPICS.len()),
            proptest::option::of(0u8..4),
        ),
        1..7,
    );
    (counts, members).prop_map(|(counts, members)| {
        let counts = TOPICS
            .iter()
            .zip(counts)
            .map(|(t, c)| (t.to_string(), c))
            .collect();
        let members = members
            .into_iter()
            .enumerate()
            .map(|(i, (subs, instance))| {
                let topics: Vec<&str> = TOPICS
                    .iter()
                    .zip(subs)
                    .filter_map(|(t, s)| s.then_some(*t))
                    .collect();
                let m = Member::new(format!("m{i}"), Subscription::new(topics));
                match instance {
                    Some(x) => m.with_instance_id(format!("i{x}-{i}")),
                    None => m,
                }
            })
            .collect();
        (counts, members)
    })
}

fn subscribed_partitions(
    counts: &BTreeMap<String, i32>,
    members: &[Member],
) -> HashSet<TopicPartition> {
    counts
        .iter()
        .filter(|(t, _)| members.iter().any(|m| m.subscription.topics.contains(t)))
        .flat_map(|(t, c)| (0..*c).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect()
}

/// Every partition at most once, only to a subscriber, and only partitions that exist.
fn check_exclusive(counts: &BTreeMap<String, i32>, members: &[Member], a: &GroupAssignment) {
    let all = subscribed_partitions(counts, members);
    let mut seen = HashSet::new();
    assert_eq!(a.len(), members.len());
    for m in members {
        for tp in &a[&m.member_id] {
            assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
            assert!(all.contains(tp), "{tp:?} does not exist or is unsubscribed");
            assert!(m.subscription.topics.contains(&tp.topic));
        }
    }
}

fn assigned(a: &GroupAssignment) -> HashSet<TopicPartition> {
    a.values().flatten().cloned().collect()
}

fn equal_subscriptions(members: &[Member]) -> bool {
    let first: HashSet<_> = members[0].subscription.topics.iter().collect();
    members
        .iter()
        .all(|m| m.subscription.topics.iter().collect::<HashSet<_>>() == first)
}

fn spread(a: &GroupAssignment) -> usize {
    let sizes: Vec<usize> = a.values().map(Vec::len).collect();
    sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0)
}

/// No partition could move to an eligible member with two or more fewer partitions.
fn check_balanced(members: &[Member], a: &GroupAssignment) {
    for from in members {
        let mine = &a[&from.member_id];
        for tp in mine {
            for to in members {
                if to.subscription.topics.contains(&tp.topic) {
                    assert!(
                        a[&to.member_id].len() + 1 >= mine.len(),
                        "{tp:?} could move from {} to {}",
                        from.member_id,
                        to.member_id
                    );
                }
            }
        }
    }
}

/// The members with their owned partitions (from `a`) and generation set, as they rejoin.
fn rejoin(members: &[Member], a: &GroupAssignment, generation: i32) -> Vec<Member> {
    members
        .iter()
        .map(|m| {
            let mut m = m.clone();
            let owned = a.get(&m.member_id).cloned().unwrap_or_default();
            m.subscription.owned_partitions = group_by_topic(&owned);
            m.subscription.generation_id = Some(generation);
            m
        })
        .collect()
}

fn check_cooperative(before: &[Member], a: &GroupAssignment) {
    let owner: HashMap<&TopicPartition, &String> = a
        .iter()
        .flat_map(|(m, l)| l.iter().map(move |tp| (tp, m)))
        .collect();
    for m in before {
        for tp in m.subscription.owned() {
            if let Some(new) = owner.get(&tp) {
                assert_eq!(**new, m.member_id, "{tp:?} moved directly");
            }
        }
    }
}

proptest! {
    #[test]
    fn range_is_exclusive_complete_and_balanced_per_topic((counts, members) in scenario()) {
        let a = RangeAssignor.assign(&members, &counts).unwrap();
        check_exclusive(&counts, &members, &a);
        prop_assert_eq!(assigned(&a), subscribed_partitions(&counts, &members));
        for topic in counts.keys() {
            let sizes: Vec<usize> = members
                .iter()
                .filter(|m| m.subscription.topics.contains(topic))
                .map(|m| a[&m.member_id].iter().filter(|tp| &tp.topic == topic).count())
                .collect();
            if let (Some(max), Some(min)) = (sizes.iter().max(), sizes.iter().min()) {
                prop_assert!(max - min <= 1);
            }
        }
    }

    #[test]
    fn round_robin_is_exclusive_complete_and_balanced((counts, members) in scenario()) {
        let a = RoundRobinAssignor.assign(&members, &counts).unwrap();
        check_exclusive(&counts, &members, &a);
        prop_assert_eq!(assigned(&a), subscribed_partitions(&counts, &members));
        if equal_subscriptions(&members) {
            prop_assert!(spread(&a) <= 1);
        }
    }

    #[test]
    fn cooperative_sticky_rounds((counts, members) in scenario(), leave in 0usize..7, join in any::<bool>()) {
        // Round 1: from nothing, everything is assigned and balanced.
        let first = CooperativeStickyAssignor.assign(&members, &counts).unwrap();
        check_exclusive(&counts, &members, &first);
        prop_assert_eq!(assigned(&first), subscribed_partitions(&counts, &members));
        check_balanced(&members, &first);
        if equal_subscriptions(&members) {
            prop_assert!(spread(&first) <= 1);
        }

        // Round 2: membership changes; nothing moves directly between members.
        let mut next = rejoin(&members, &first, 1);
        if next.len() > 1 && leave < next.len() {
            next.remove(leave);
        }
        if join {
            next.push(Member::new("new", members[0].subscription.clone()));
        }
        let second = CooperativeStickyAssignor.assign(&next, &counts).unwrap();
        check_exclusive(&counts, &next, &second);
        check_cooperative(&next, &second);
        // Sticky: with equal subscriptions, everyone keeps its owned partitions up to the
        // lower quota.
        if equal_subscriptions(&next) {
            let total = subscribed_partitions(&counts, &next).len();
            let min_quota = total / next.len();
            for m in &next {
                let kept = second[&m.member_id].iter().filter(|tp| m.subscription.owned().contains(tp)).count();
                prop_assert!(kept >= m.subscription.owned().len().min(min_quota));
            }
        }

        // Round 3: the follow-up rebalance completes the moves: all assigned, balanced.
        let third_members = rejoin(&next, &second, 2);
        let third = CooperativeStickyAssignor.assign(&third_members, &counts).unwrap();
        check_exclusive(&counts, &third_members, &third);
        check_cooperative(&third_members, &third);
        prop_assert_eq!(assigned(&third), subscribed_partitions(&counts, &third_members));
        check_balanced(&third_members, &third);
        if equal_subscriptions(&third_members) {
            prop_assert!(spread(&third) <= 1);
        }
    }
}

#[test]
fn errors_are_typed() {
    use kafkit::state::group::AssignError;
    let m = Member::new("x", Subscription::new(["a"]));
    let dup = [m.clone(), m];
    assert_eq!(
        RangeAssignor.assign(&dup, &BTreeMap::new()),
        Err(AssignError::DuplicateMember("x".into()))
    );
    let counts = BTreeMap::from([("a".to_string(), -1)]);
    assert!(matches!(
        CooperativeStickyAssignor.assign(&dup[..1], &counts),
        Err(AssignError::NegativePartitionCount { .. })
    ));
}

/// Owned-partition claims come from other clients: any mix of duplicates, unknown topics,
/// nonexistent partitions and generations must still give an exclusive, valid assignment.
fn arbitrary_claims() -> impl Strategy<Value = (BTreeMap<String, i32>, Vec<Member>)> {
    let member = (
        proptest::collection::vec(any::<bool>(), TOPICS.len()),
        proptest::collection::vec((0usize..5, -2i32..14), 0..10),
        proptest::option::of(-3i32..4),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
    );
    (
        proptest::collection::vec(0i32..10, TOPICS.len()),
        proptest::collection::vec(member, 1..8),
    )
        .prop_map(|(counts, members)| {
            let counts = TOPICS
                .iter()
                .zip(counts)
                .map(|(t, c)| (t.to_string(), c))
                .collect();
            let members = members
                .into_iter()
                .enumerate()
                .map(|(i, (subs, owned, generation, user_data))| {
                    let topics: Vec<&str> = TOPICS
                        .iter()
                        .zip(subs)
                        .filter_map(|(t, s)| s.then_some(*t))
                        .collect();
                    let mut s = Subscription::new(topics);
                    let owned: Vec<TopicPartition> = owned
                        .into_iter()
                        .map(|(t, p)| {
                            TopicPartition::new(TOPICS.get(t).copied().unwrap_or("zz"), p)
                        })
                        .collect();
                    s.owned_partitions = group_by_topic(&owned);
                    s.generation_id = generation;
                    s.user_data = user_data.map(Into::into);
                    Member::new(format!("m{i}"), s)
                })
                .collect();
            (counts, members)
        })
}

proptest! {
    #[test]
    fn cooperative_sticky_survives_arbitrary_claims((counts, members) in arbitrary_claims()) {
        let a = CooperativeStickyAssignor.assign(&members, &counts).unwrap();
        check_exclusive(&counts, &members, &a);
    }
}
