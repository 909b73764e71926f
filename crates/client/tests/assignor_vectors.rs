//! Checks the assignors against vectors produced by the Java client's own assignors
//! (see `tests/data/assignors/README.md`).

use std::collections::{BTreeMap, HashMap, HashSet};

use kafkit::state::group::{
    Assignor, CooperativeStickyAssignor, GroupAssignment, Member, RangeAssignor,
    RoundRobinAssignor, Subscription, TopicPartition,
};
use serde_json::Value;

struct Vector {
    name: String,
    assignor: String,
    partitions: BTreeMap<String, i32>,
    members: Vec<Member>,
    expected: GroupAssignment,
}

fn tps(v: &Value) -> Vec<TopicPartition> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| TopicPartition::new(p[0].as_str().unwrap(), p[1].as_i64().unwrap() as i32))
        .collect()
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("data/assignors/vectors.json");
    let all: Value = serde_json::from_str(text).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let members = v["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let mut s = Subscription::new(
                        m["topics"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|t| t.as_str().unwrap()),
                    );
                    let owned = tps(&m["owned"]);
                    s.owned_partitions = kafkit::state::group::protocol::group_by_topic(&owned);
                    let generation = m["generation"].as_i64().unwrap() as i32;
                    s.generation_id = (generation != -1).then_some(generation);
                    let mut member = Member::new(m["id"].as_str().unwrap(), s);
                    if let Some(i) = m["instance"].as_str() {
                        member = member.with_instance_id(i);
                    }
                    member
                })
                .collect();
            Vector {
                name: v["name"].as_str().unwrap().to_string(),
                assignor: v["assignor"].as_str().unwrap().to_string(),
                partitions: v["partitions"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, c)| (k.clone(), c.as_i64().unwrap() as i32))
                    .collect(),
                members,
                expected: v["expected"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, l)| (k.clone(), tps(l)))
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn range_matches_java_exactly() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v.assignor == "range") {
        let got = RangeAssignor.assign(&v.members, &v.partitions).unwrap();
        assert_eq!(got, v.expected, "{}", v.name);
        n += 1;
    }
    assert!(n > 60);
}

#[test]
fn round_robin_matches_java_exactly() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v.assignor == "roundrobin") {
        let got = RoundRobinAssignor
            .assign(&v.members, &v.partitions)
            .unwrap();
        assert_eq!(got, v.expected, "{}", v.name);
        n += 1;
    }
    assert!(n > 60);
}

/// Checks what any cooperative-sticky result must satisfy, ours or Java's.
fn check_cooperative(v: &Vector, got: &GroupAssignment) {
    let subscribed: HashMap<&str, HashSet<&str>> = v
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.as_str(),
                m.subscription.topics.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let mut owner: HashMap<&TopicPartition, &str> = HashMap::new();
    for (m, list) in got {
        for tp in list {
            assert!(owner.insert(tp, m).is_none(), "{}: {tp:?} twice", v.name);
            assert!(
                subscribed[m.as_str()].contains(tp.topic.as_str()),
                "{}",
                v.name
            );
        }
    }
    // Cooperative: nothing owned by one member goes straight to another. A claim counts only
    // if no other member claims the partition in a later generation (stale claims are void).
    let generation = |m: &Member| m.subscription.generation_id.unwrap_or(-1);
    let mut latest: HashMap<TopicPartition, i32> = HashMap::new();
    for m in &v.members {
        for tp in m.subscription.owned() {
            let g = latest.entry(tp).or_insert(i32::MIN);
            *g = (*g).max(generation(m));
        }
    }
    for m in &v.members {
        for tp in m.subscription.owned() {
            if latest[&tp] > generation(m) {
                continue;
            }
            if let Some(new) = owner.get(&tp) {
                assert_eq!(*new, m.member_id, "{}: {tp:?} moved directly", v.name);
            }
        }
    }
}

#[test]
fn cooperative_sticky_matches_java_exactly() {
    let mut n = 0;
    for v in vectors()
        .iter()
        .filter(|v| v.assignor == "cooperative-sticky")
    {
        let got = CooperativeStickyAssignor
            .assign(&v.members, &v.partitions)
            .unwrap();
        check_cooperative(v, &v.expected);
        check_cooperative(v, &got);
        assert_eq!(got, v.expected, "{}", v.name);
        n += 1;
    }
    assert!(n > 200);
}
