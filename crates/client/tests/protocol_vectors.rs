//! Byte-compatibility of the consumer protocol codec with the Java client's `ConsumerProtocol`
//! (vectors from `tests/data/assignors/GenProtocolVectors.java`).

use bytes::Bytes;
use kafkit::state::group::{Assignment, Subscription, TopicPartition, TopicPartitions};
use serde_json::Value;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn tps(list: &[(&str, i32)]) -> Vec<TopicPartitions> {
    list.iter()
        .map(|(t, p)| TopicPartitions {
            topic: t.to_string(),
            partitions: vec![*p],
        })
        .collect()
}

/// The same subscriptions the Java generator serializes, case by case.
fn subscriptions() -> Vec<Subscription> {
    vec![
        Subscription::new(["t"]),
        Subscription {
            topics: vec!["zeta".into(), "alpha".into(), "mid".into()],
            user_data: Some(Bytes::from_static(&[0, 0, 0, 9])),
            owned_partitions: tps(&[("zeta", 2), ("alpha", 5), ("zeta", 0), ("alpha", 1)]),
            generation_id: Some(7),
            rack_id: Some("rack-1".into()),
        },
        Subscription::default(),
        Subscription {
            topics: vec!["x".into()],
            user_data: Some(Bytes::new()),
            owned_partitions: tps(&[("x", 3)]),
            generation_id: Some(0),
            rack_id: None,
        },
    ]
}

fn assignments() -> Vec<Assignment> {
    vec![
        Assignment::default(),
        Assignment {
            user_data: Some(Bytes::from_static(&[0, 0, 0, 9])),
            ..Assignment::from_partitions(&[
                TopicPartition::new("b", 1),
                TopicPartition::new("a", 0),
                TopicPartition::new("b", 0),
            ])
        },
    ]
}

fn vectors(kind: &str) -> Vec<(usize, i16, Vec<u8>)> {
    let all: Value = serde_json::from_str(include_str!("data/assignors/protocol.json")).unwrap();
    all[kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["case"].as_u64().unwrap() as usize,
                v["version"].as_i64().unwrap() as i16,
                unhex(v["hex"].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn subscriptions_are_byte_equal_to_java() {
    let cases = subscriptions();
    let vs = vectors("subscriptions");
    assert_eq!(vs.len(), cases.len() * 4);
    for (case, version, java) in vs {
        let ours = cases[case].encode(version).unwrap();
        assert_eq!(&ours[..], &java[..], "case {case} v{version}");
        let (v, decoded) = Subscription::decode(&java).unwrap();
        assert_eq!(v, version);
        assert_eq!(decoded.encode(version).unwrap(), ours);
        let mut topics = cases[case].topics.clone();
        topics.sort();
        assert_eq!(decoded.topics, topics);
        assert_eq!(decoded.user_data, cases[case].user_data);
        if version >= 2 {
            assert_eq!(decoded.generation_id, cases[case].generation_id);
        }
        if version >= 3 {
            assert_eq!(decoded.rack_id, cases[case].rack_id);
        }
    }
}

#[test]
fn assignments_are_byte_equal_to_java() {
    let cases = assignments();
    let vs = vectors("assignments");
    assert_eq!(vs.len(), cases.len() * 4);
    for (case, version, java) in vs {
        let ours = cases[case].encode(version).unwrap();
        assert_eq!(&ours[..], &java[..], "case {case} v{version}");
        assert_eq!(
            Assignment::decode(&java).unwrap(),
            (version, cases[case].clone())
        );
    }
}
