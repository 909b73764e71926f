use super::*;

fn props(extra: &[(&str, &str)]) -> Result<ConsumerConfig, ConfigError> {
    let mut all = vec![("bootstrap.servers", "localhost:9092")];
    all.extend_from_slice(extra);
    ConsumerConfig::from_properties(all)
}

fn ok(extra: &[(&str, &str)]) -> ConsumerConfig {
    match props(extra) {
        Ok(c) => c,
        Err(e) => panic!("{extra:?} rejected: {e}"),
    }
}

fn conflict_key(extra: &[(&str, &str)]) -> &'static str {
    match props(extra) {
        Err(ConfigError::Conflict { key, .. }) => key,
        other => panic!("{extra:?}: expected a conflict, got {other:?}"),
    }
}

#[test]
fn defaults_are_the_java_4x_defaults_except_auto_commit() {
    let c = ok(&[]);
    assert_eq!(c.group_id(), None);
    assert_eq!(c.group_instance_id(), None);
    assert_eq!(c.group_protocol(), GroupProtocol::Classic);
    assert_eq!(c.group_remote_assignor(), None);
    assert_eq!(c.client_rack(), None);
    assert_eq!(c.auto_offset_reset(), AutoOffsetReset::Latest);
    assert!(!c.enable_auto_commit());
    assert_eq!(c.auto_commit_interval(), Duration::from_millis(5_000));
    assert_eq!(c.session_timeout(), Duration::from_millis(45_000));
    assert_eq!(c.heartbeat_interval(), Duration::from_millis(3_000));
    assert_eq!(c.max_poll_interval(), Duration::from_millis(300_000));
    assert_eq!(c.max_poll_records(), 500);
    assert_eq!(
        c.partition_assignment_strategy(),
        [AssignorName::Range, AssignorName::CooperativeSticky]
    );
    assert_eq!(c.isolation_level(), IsolationLevel::ReadUncommitted);
    assert_eq!(c.fetch_min_bytes(), 1);
    assert_eq!(c.fetch_max_wait(), Duration::from_millis(500));
    assert_eq!(c.fetch_max_bytes(), 52_428_800);
    assert_eq!(c.max_partition_fetch_bytes(), 1_048_576);
    assert!(c.check_crcs());
    assert_eq!(c.prefetch_max_bytes(), 64 << 20);
    assert!(c.allow_auto_create_topics());
    assert_eq!(c.default_api_timeout(), Duration::from_secs(60));
    assert_eq!(c.client().request_timeout(), Duration::from_secs(30));
    assert_eq!(c.client().receive_buffer_bytes(), Some(65_536));
}

#[test]
fn every_key_parses_and_round_trips() {
    let c = ok(&[
        ("group.id", "g"),
        ("group.instance.id", "i-1"),
        ("client.rack", "r1"),
        ("auto.offset.reset", "EARLIEST"),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
        ("max.poll.interval.ms", "60000"),
        ("max.poll.records", "10"),
        ("partition.assignment.strategy", "roundrobin,RangeAssignor"),
        ("isolation.level", "read_committed"),
        ("fetch.min.bytes", "1024"),
        ("fetch.max.wait.ms", "100"),
        ("fetch.max.bytes", "1000000"),
        ("max.partition.fetch.bytes", "2000"),
        ("check.crcs", "false"),
        ("kafkit.prefetch.max.bytes", "4096"),
        ("allow.auto.create.topics", "false"),
        ("default.api.timeout.ms", "5000"),
    ]);
    assert!(!c.allow_auto_create_topics());
    assert_eq!(c.default_api_timeout(), Duration::from_secs(5));
    assert_eq!(c.group_instance_id(), Some("i-1"));
    assert_eq!(c.auto_offset_reset(), AutoOffsetReset::Earliest);
    assert!(c.enable_auto_commit());
    assert_eq!(c.max_poll_records(), 10);
    assert_eq!(
        c.partition_assignment_strategy(),
        [AssignorName::RoundRobin, AssignorName::Range]
    );
    assert_eq!(c.isolation_level(), IsolationLevel::ReadCommitted);
    assert_eq!(c.fetch_min_bytes(), 1024);
    assert_eq!(c.fetch_max_wait(), Duration::from_millis(100));
    assert_eq!(c.max_partition_fetch_bytes(), 2000);
    assert!(!c.check_crcs());
    assert_eq!(c.prefetch_max_bytes(), 4096);
    assert_eq!(ConsumerConfig::from_properties(c.to_properties()), Ok(c));

    let k = ok(&[
        ("group.id", "g"),
        ("group.protocol", "consumer"),
        ("group.remote.assignor", "uniform"),
    ]);
    assert_eq!(k.group_protocol(), GroupProtocol::Consumer);
    assert_eq!(k.group_remote_assignor(), Some("uniform"));
    assert_eq!(ConsumerConfig::from_properties(k.to_properties()), Ok(k));
}

#[test]
fn bad_entries_are_named() {
    for (key, value) in [
        ("auto.offset.reset", "smallest"),
        ("isolation.level", "serializable"),
        ("group.protocol", "eager"),
        ("partition.assignment.strategy", "sticky-ish"),
        ("partition.assignment.strategy", " , "),
        ("max.poll.records", "0"),
        ("fetch.max.bytes", "-1"),
        ("fetch.max.wait.ms", "2147483648"),
        ("check.crcs", "yes"),
        ("kafkit.prefetch.max.bytes", "0"),
    ] {
        match props(&[(key, value)]) {
            Err(ConfigError::InvalidValue { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}={value}: {other:?}"),
        }
    }
    match props(&[("key.deserializer", "x")]) {
        Err(ConfigError::UnknownKey { key, .. }) => assert_eq!(key, "key.deserializer"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cross_field_rules() {
    assert_eq!(
        conflict_key(&[("enable.auto.commit", "true")]),
        ENABLE_AUTO_COMMIT
    );
    assert_eq!(
        conflict_key(&[("group.instance.id", "i")]),
        GROUP_INSTANCE_ID
    );
    assert_eq!(
        conflict_key(&[("group.id", "g"), ("heartbeat.interval.ms", "45000")]),
        HEARTBEAT_INTERVAL_MS
    );
    for key in [SESSION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS] {
        assert_eq!(
            conflict_key(&[
                ("group.id", "g"),
                ("group.protocol", "consumer"),
                (key, "1000")
            ]),
            key
        );
    }
    assert_eq!(
        conflict_key(&[
            ("group.id", "g"),
            ("group.protocol", "consumer"),
            ("partition.assignment.strategy", "range")
        ]),
        PARTITION_ASSIGNMENT_STRATEGY
    );
    assert_eq!(
        conflict_key(&[("group.id", "g"), ("group.remote.assignor", "uniform")]),
        GROUP_REMOTE_ASSIGNOR
    );
    assert_eq!(
        ConsumerConfig::builder()
            .bootstrap_servers(["b:1"])
            .max_poll_records(0)
            .build()
            .unwrap_err()
            .key(),
        MAX_POLL_RECORDS
    );
}
