//! The sticky assignor stays usable for groups of realistic size.

use std::collections::BTreeMap;
use std::time::Instant;

use kafkit::state::group::protocol::group_by_topic;
use kafkit::state::group::{Assignor, CooperativeStickyAssignor, Member, Subscription};

#[test]
fn mixed_subscriptions_of_a_large_group() {
    let topics: Vec<String> = (0..8).map(|t| format!("topic-{t}")).collect();
    let counts: BTreeMap<String, i32> = topics.iter().map(|t| (t.clone(), 48)).collect();
    let mut members: Vec<Member> = (0..40)
        .map(|i| {
            let subs: Vec<&String> = topics
                .iter()
                .enumerate()
                .filter(|(t, _)| (i + t) % 3 != 0)
                .map(|(_, t)| t)
                .collect();
            Member::new(format!("consumer-{i}"), Subscription::new(subs))
        })
        .collect();
    let start = Instant::now();
    let first = CooperativeStickyAssignor.assign(&members, &counts).unwrap();
    // A member leaves, the others rejoin with what they own.
    members.remove(7);
    for m in &mut members {
        m.subscription.owned_partitions = group_by_topic(&first[&m.member_id]);
        m.subscription.generation_id = Some(1);
    }
    let second = CooperativeStickyAssignor.assign(&members, &counts).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(second.len(), 39);
    eprintln!("two rebalances of 40 members x 384 partitions: {elapsed:?}");
}
