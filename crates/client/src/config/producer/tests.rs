use super::*;

fn props(extra: &[(&str, &str)]) -> Result<ProducerConfig, ConfigError> {
    let mut all = vec![("bootstrap.servers", "localhost:9092")];
    all.extend_from_slice(extra);
    ProducerConfig::from_properties(all)
}

fn ok(extra: &[(&str, &str)]) -> ProducerConfig {
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
fn defaults_are_the_java_4x_defaults() {
    let c = ok(&[]);
    assert_eq!(c.acks(), Acks::All);
    assert!(c.enable_idempotence());
    assert_eq!(c.linger(), Duration::from_millis(5));
    assert_eq!(c.batch_size(), 16_384);
    assert_eq!(c.compression(), Compression::None);
    assert_eq!(c.max_in_flight_requests_per_connection(), 5);
    assert_eq!(c.retries(), 2_147_483_647);
    assert_eq!(c.delivery_timeout(), Duration::from_millis(120_000));
    assert_eq!(c.buffer_memory(), 33_554_432);
    assert_eq!(c.max_block(), Duration::from_millis(60_000));
    assert_eq!(c.max_request_size(), 1_048_576);
    assert_eq!(c.metadata_max_idle(), Duration::from_millis(300_000));
    assert!(!c.partitioner_ignore_keys());
    assert!(c.partitioner_adaptive_partitioning());
    assert_eq!(c.partitioner_availability_timeout(), Duration::ZERO);
    assert_eq!(c.transactional_id(), None);
    assert_eq!(c.transaction_timeout(), Duration::from_millis(60_000));
    let client = c.client();
    assert_eq!(client.request_timeout(), Duration::from_millis(30_000));
    assert_eq!(client.metadata_max_age(), Duration::from_millis(300_000));
    assert_eq!(client.retry_backoff(), Duration::from_millis(100));
    assert_eq!(client.retry_backoff_max(), Duration::from_millis(1_000));
    assert_eq!(client.reconnect_backoff(), Duration::from_millis(50));
    assert_eq!(client.reconnect_backoff_max(), Duration::from_millis(1_000));
    assert_eq!(
        client.connections_max_idle(),
        Some(Duration::from_millis(540_000))
    );
    assert_eq!(client.send_buffer_bytes(), Some(131_072));
    assert_eq!(client.receive_buffer_bytes(), Some(32_768));
    // The typed builder gives the same.
    assert_eq!(
        ProducerConfig::builder()
            .bootstrap_servers(["localhost:9092"])
            .build(),
        Ok(c)
    );
}

#[test]
fn every_supported_property_is_read() {
    let c = ok(&[
        ("bootstrap.servers", "a:1,b:2"),
        ("client.id", "billing"),
        ("acks", "-1"),
        ("linger.ms", "25"),
        ("batch.size", "65536"),
        ("compression.type", "zstd"),
        ("enable.idempotence", "true"),
        ("max.in.flight.requests.per.connection", "3"),
        ("retries", "10"),
        ("retry.backoff.ms", "200"),
        ("retry.backoff.max.ms", "5000"),
        ("request.timeout.ms", "40000"),
        ("delivery.timeout.ms", "200000"),
        ("buffer.memory", "1000000"),
        ("max.block.ms", "1000"),
        ("max.request.size", "2000000"),
        ("metadata.max.age.ms", "60000"),
        ("metadata.max.idle.ms", "10000"),
        ("reconnect.backoff.ms", "20"),
        ("reconnect.backoff.max.ms", "2000"),
        ("connections.max.idle.ms", "-1"),
        ("socket.connection.setup.timeout.ms", "3000"),
        ("socket.connection.setup.timeout.max.ms", "9000"),
        ("send.buffer.bytes", "-1"),
        ("receive.buffer.bytes", "65536"),
        ("partitioner.ignore.keys", "true"),
        ("partitioner.adaptive.partitioning.enable", "false"),
        ("partitioner.availability.timeout.ms", "100"),
        ("transactional.id", "tx-1"),
        ("transaction.timeout.ms", "30000"),
    ]);
    let ms = Duration::from_millis;
    assert_eq!(c.client().bootstrap_servers().len(), 2);
    assert_eq!(c.client().client_id(), Some("billing"));
    assert_eq!(c.acks(), Acks::All);
    assert_eq!(c.linger(), ms(25));
    assert_eq!(c.batch_size(), 65_536);
    assert_eq!(c.compression(), Compression::Zstd);
    assert!(c.enable_idempotence());
    assert_eq!(c.max_in_flight_requests_per_connection(), 3);
    assert_eq!(c.retries(), 10);
    assert_eq!(c.client().retry_backoff(), ms(200));
    assert_eq!(c.client().retry_backoff_max(), ms(5_000));
    assert_eq!(c.client().request_timeout(), ms(40_000));
    assert_eq!(c.delivery_timeout(), ms(200_000));
    assert_eq!(c.buffer_memory(), 1_000_000);
    assert_eq!(c.max_block(), ms(1_000));
    assert_eq!(c.max_request_size(), 2_000_000);
    assert_eq!(c.client().metadata_max_age(), ms(60_000));
    assert_eq!(c.metadata_max_idle(), ms(10_000));
    assert_eq!(c.client().reconnect_backoff(), ms(20));
    assert_eq!(c.client().reconnect_backoff_max(), ms(2_000));
    assert_eq!(c.client().connections_max_idle(), None);
    assert_eq!(c.client().socket_connection_setup_timeout(), ms(3_000));
    assert_eq!(c.client().socket_connection_setup_timeout_max(), ms(9_000));
    assert_eq!(c.client().send_buffer_bytes(), None);
    assert_eq!(c.client().receive_buffer_bytes(), Some(65_536));
    assert!(c.partitioner_ignore_keys());
    assert!(!c.partitioner_adaptive_partitioning());
    assert_eq!(c.partitioner_availability_timeout(), ms(100));
    assert_eq!(c.transactional_id(), Some("tx-1"));
    assert_eq!(c.transaction_timeout(), ms(30_000));
}

#[test]
fn unknown_keys_name_key_and_value() {
    let err = props(&[("key.serializer", "org.Foo")]).unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownKey {
            key: "key.serializer".into(),
            value: "org.Foo".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown config `key.serializer` (value `org.Foo`)"
    );
    // Keys are case-sensitive, as in Java.
    assert!(matches!(
        props(&[("ACKS", "all")]),
        Err(ConfigError::UnknownKey { .. })
    ));
}

#[test]
fn invalid_values_name_key_and_value() {
    let cases: &[(&str, &str)] = &[
        ("acks", "ALL"),
        ("acks", "2"),
        ("compression.type", "GZIP"),
        ("compression.type", "brotli"),
        ("enable.idempotence", "yes"),
        ("partitioner.ignore.keys", "1"),
        ("linger.ms", "-1"),
        ("linger.ms", "5ms"),
        ("batch.size", "-1"),
        ("batch.size", "2147483648"),
        ("max.in.flight.requests.per.connection", "0"),
        ("retries", "-1"),
        ("retries", "2147483648"),
        ("request.timeout.ms", "-5"),
        ("delivery.timeout.ms", "2147483648"),
        ("buffer.memory", "-1"),
        ("max.block.ms", "soon"),
        ("max.request.size", "-1"),
        ("metadata.max.age.ms", "-1"),
        ("metadata.max.idle.ms", "4999"),
        ("retry.backoff.ms", "-1"),
        ("reconnect.backoff.max.ms", "x"),
        ("socket.connection.setup.timeout.ms", "-5"),
        ("send.buffer.bytes", "-2"),
        ("transaction.timeout.ms", "-1"),
    ];
    for (key, value) in cases {
        match props(&[(key, value)]) {
            Err(err @ ConfigError::InvalidValue { .. }) => {
                assert_eq!(err.key(), *key);
                let text = err.to_string();
                assert!(text.contains(&format!("`{value}`")), "{text}");
                assert!(text.contains(&format!("`{key}`")), "{text}");
            }
            other => panic!("{key}={value}: expected InvalidValue, got {other:?}"),
        }
    }
}

#[test]
fn values_are_trimmed_and_booleans_case_insensitive_like_java() {
    let c = ok(&[
        ("acks", " all "),
        ("enable.idempotence", "TRUE"),
        ("linger.ms", "+5"),
        ("compression.type", " lz4"),
    ]);
    assert_eq!(c.acks(), Acks::All);
    assert!(c.enable_idempotence());
    assert_eq!(c.linger(), Duration::from_millis(5));
    assert_eq!(c.compression(), Compression::Lz4);
}

#[test]
fn later_duplicates_win() {
    let c = ok(&[
        ("acks", "0"),
        ("enable.idempotence", "false"),
        ("acks", "1"),
    ]);
    assert_eq!(c.acks(), Acks::Leader);
}

#[test]
fn missing_bootstrap_servers_is_an_error() {
    assert_eq!(
        ProducerConfig::builder().build(),
        Err(ConfigError::MissingBootstrapServers)
    );
}

// The idempotence cases below are those of tests/data/producer_config_java.txt, produced by
// running kafka-clients 4.1.0.

#[test]
fn default_idempotence_gives_way_to_acks_or_zero_retries() {
    let c = ok(&[("acks", "1")]);
    assert!(!c.enable_idempotence());
    assert_eq!(c.acks(), Acks::Leader);
    let c = ok(&[("acks", "0")]);
    assert!(!c.enable_idempotence());
    let c = ok(&[("retries", "0")]);
    assert!(!c.enable_idempotence());
    assert_eq!(c.acks(), Acks::All);
}

#[test]
fn explicit_idempotence_conflicts_are_errors() {
    let t = ("enable.idempotence", "true");
    assert_eq!(conflict_key(&[t, ("acks", "1")]), "acks");
    assert_eq!(conflict_key(&[t, ("acks", "0")]), "acks");
    assert_eq!(conflict_key(&[t, ("retries", "0")]), "retries");
    assert_eq!(
        conflict_key(&[t, ("max.in.flight.requests.per.connection", "6")]),
        "max.in.flight.requests.per.connection"
    );
    let err = props(&[t, ("acks", "1")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config `acks` = `1` conflicts with other settings: \
         enable.idempotence=true requires acks=all"
    );
}

#[test]
fn more_than_five_in_flight_needs_idempotence_off_even_by_default() {
    let in_flight = ("max.in.flight.requests.per.connection", "6");
    assert_eq!(
        conflict_key(&[in_flight]),
        "max.in.flight.requests.per.connection"
    );
    // As in kafka-clients 4.1: acks=1 does not lift it, only enable.idempotence=false.
    assert_eq!(
        conflict_key(&[
            ("acks", "1"),
            ("max.in.flight.requests.per.connection", "10")
        ]),
        "max.in.flight.requests.per.connection"
    );
    let c = ok(&[("enable.idempotence", "false"), in_flight]);
    assert!(!c.enable_idempotence());
    assert_eq!(c.max_in_flight_requests_per_connection(), 6);
    assert!(ok(&[("max.in.flight.requests.per.connection", "5")]).enable_idempotence());
}

#[test]
fn transactional_id_requires_idempotence() {
    assert_eq!(
        conflict_key(&[("transactional.id", "x"), ("acks", "1")]),
        "transactional.id"
    );
    assert_eq!(
        conflict_key(&[("transactional.id", "x"), ("enable.idempotence", "false")]),
        "transactional.id"
    );
    assert_eq!(
        ok(&[("transactional.id", "x")]).transactional_id(),
        Some("x")
    );
}

#[test]
fn delivery_timeout_floor_is_linger_plus_request_timeout() {
    // Explicit and too small: error naming delivery.timeout.ms and its value.
    let err = props(&[
        ("delivery.timeout.ms", "30004"),
        ("linger.ms", "5"),
        ("request.timeout.ms", "30000"),
    ])
    .unwrap_err();
    assert_eq!(err.key(), "delivery.timeout.ms");
    assert!(err.to_string().contains("`30004`"), "{err}");
    assert!(err.to_string().contains("30005 ms"), "{err}");
    // Exactly the floor is fine.
    let c = ok(&[("delivery.timeout.ms", "30005")]);
    assert_eq!(c.delivery_timeout(), Duration::from_millis(30_005));
    // The default is raised instead of failing.
    let c = ok(&[("request.timeout.ms", "200000"), ("linger.ms", "1000")]);
    assert_eq!(c.delivery_timeout(), Duration::from_millis(201_000));
    // Huge linger: the floor saturates at i32::MAX ms like Java's int arithmetic.
    let c = ok(&[("linger.ms", "9223372036854775807")]);
    assert_eq!(c.delivery_timeout(), Duration::from_millis(2_147_483_647));
}

#[test]
fn typed_setters_are_range_checked_at_build() {
    let base = || ProducerConfig::builder().bootstrap_servers(["b:1"]);
    let key = |r: Result<ProducerConfig, ConfigError>| r.unwrap_err().key().to_owned();
    assert_eq!(key(base().retries(u32::MAX).build()), "retries");
    assert_eq!(
        key(base().max_in_flight_requests_per_connection(0).build()),
        "max.in.flight.requests.per.connection"
    );
    assert_eq!(key(base().batch_size(1 << 31).build()), "batch.size");
    assert_eq!(
        key(base().max_request_size(1 << 31).build()),
        "max.request.size"
    );
    assert_eq!(
        key(base().metadata_max_idle(Duration::from_secs(1)).build()),
        "metadata.max.idle.ms"
    );
    assert_eq!(
        key(base()
            .delivery_timeout(Duration::from_millis(1 << 31))
            .build()),
        "delivery.timeout.ms"
    );
    assert_eq!(key(base().buffer_memory(u64::MAX).build()), "buffer.memory");
    assert_eq!(
        key(base().enable_idempotence(true).acks(Acks::Leader).build()),
        "acks"
    );
    let c = base()
        .acks(Acks::None)
        .enable_idempotence(false)
        .retries(0)
        .batch_size(0)
        .build()
        .unwrap();
    assert_eq!((c.acks(), c.retries(), c.batch_size()), (Acks::None, 0, 0));
}

#[test]
fn backoff_policies_come_from_the_settings() {
    let c = ok(&[("retry.backoff.ms", "200"), ("retry.backoff.max.ms", "100")]);
    let policy = c.client().retry_backoff_policy();
    assert!(policy.is_static());
    assert_eq!(policy.initial(), Duration::from_millis(100));
    let c = ok(&[]);
    assert_eq!(
        c.client().reconnect_backoff_policy().max(),
        Duration::from_secs(1)
    );
    assert_eq!(
        c.client().connection_setup_timeout_policy().initial(),
        Duration::from_secs(10)
    );
}

#[test]
fn to_properties_round_trips_and_lists_every_key_once() {
    let c = ok(&[
        ("acks", "1"),
        ("connections.max.idle.ms", "-1"),
        ("client.id", "x"),
    ]);
    let props = c.to_properties();
    let mut keys: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate keys");
    assert!(props.contains(&("enable.idempotence", "false".to_owned())));
    assert!(props.contains(&("connections.max.idle.ms", "-1".to_owned())));
    assert_eq!(ProducerConfig::from_properties(props), Ok(c));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_config() -> impl Strategy<Value = ProducerConfigBuilder> {
        (
            (
                prop_oneof![Just(Acks::All), Just(Acks::Leader), Just(Acks::None)],
                proptest::option::of(any::<bool>()),
                0u64..100_000,
                0usize..1_000_000,
                0usize..5,
                1u32..8,
                0u32..10,
            ),
            (
                1u64..200_000,
                proptest::option::of(0u64..400_000),
                proptest::option::of(0u64..10_000),
                proptest::option::of(0u64..10_000),
                any::<bool>(),
                proptest::option::of("[a-z]{1,8}"),
            ),
        )
            .prop_map(
                |(
                    (acks, idempotence, linger, batch, codec, in_flight, retries),
                    (request, delivery, reconnect, reconnect_max, ignore_keys, tx),
                )| {
                    let ms = Duration::from_millis;
                    let mut b = ProducerConfig::builder()
                        .bootstrap_servers(["a:1", "[::1]:2"])
                        .acks(acks)
                        .linger(ms(linger))
                        .batch_size(batch)
                        .compression(Compression::ALL[codec])
                        .max_in_flight_requests_per_connection(in_flight)
                        .retries(retries)
                        .request_timeout(ms(request))
                        .partitioner_ignore_keys(ignore_keys);
                    if let Some(i) = idempotence {
                        b = b.enable_idempotence(i);
                    }
                    if let Some(d) = delivery {
                        b = b.delivery_timeout(ms(d));
                    }
                    if let Some(r) = reconnect {
                        b = b.reconnect_backoff(ms(r));
                    }
                    if let Some(r) = reconnect_max {
                        b = b.reconnect_backoff_max(ms(r));
                    }
                    if let Some(id) = tx {
                        b = b.transactional_id(id);
                    }
                    b
                },
            )
    }

    proptest! {
        /// Whatever the builder accepts survives a trip through Java properties, and the
        /// invariants the Java client enforces hold on every accepted configuration.
        #[test]
        fn accepted_configs_round_trip_and_keep_the_java_invariants(builder in any_config()) {
            if let Ok(config) = builder.build() {
                let again = ProducerConfig::from_properties(config.to_properties());
                prop_assert_eq!(again.as_ref(), Ok(&config));
                if config.enable_idempotence() {
                    prop_assert_eq!(config.acks(), Acks::All);
                    prop_assert!(config.retries() > 0);
                    prop_assert!(config.max_in_flight_requests_per_connection() <= 5);
                }
                prop_assert!(config.delivery_timeout()
                    >= config.linger() + config.client().request_timeout());
                if config.transactional_id().is_some() {
                    prop_assert!(config.enable_idempotence());
                }
            }
        }

        /// Any integer string for a millisecond setting is either read as that many
        /// milliseconds or rejected with an error naming the key and the exact value.
        #[test]
        fn ms_values_are_read_or_rejected_by_name(n in any::<i64>()) {
            let value = n.to_string();
            match props(&[("max.block.ms", value.as_str())]) {
                Ok(c) => {
                    prop_assert!(n >= 0);
                    prop_assert_eq!(c.max_block(), Duration::from_millis(n.unsigned_abs()));
                }
                Err(ConfigError::InvalidValue { key, value: v, .. }) => {
                    prop_assert!(n < 0);
                    prop_assert_eq!(key, "max.block.ms");
                    prop_assert_eq!(v, value);
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        /// Arbitrary strings never panic the parser, and errors name a real key.
        #[test]
        fn arbitrary_values_never_panic(key_index in 0usize..8, value in ".{0,12}") {
            let keys = ["acks", "linger.ms", "batch.size", "compression.type",
                "enable.idempotence", "retries", "bootstrap.servers", "buffer.memory"];
            let key = keys[key_index];
            if let Err(err) = props(&[(key, value.as_str())]) {
                let named = err.key() == key || err.key() == "max.in.flight.requests.per.connection";
                prop_assert!(named, "{err}");
            }
        }
    }
}

#[test]
fn compression_levels_have_the_kip_390_defaults_ranges_and_keys() {
    let c = ok(&[]);
    assert_eq!(c.compression_gzip_level(), -1);
    assert_eq!(c.compression_lz4_level(), 9);
    assert_eq!(c.compression_zstd_level(), 3);
    assert_eq!(c.compression_level(), None);
    let c = ok(&[
        ("compression.type", "zstd"),
        ("compression.gzip.level", "9"),
        ("compression.lz4.level", "17"),
        ("compression.zstd.level", "-131072"),
    ]);
    assert_eq!(c.compression_gzip_level(), 9);
    assert_eq!(c.compression_lz4_level(), 17);
    assert_eq!(c.compression_level(), Some(-131_072));
    assert_eq!(
        ok(&[("compression.type", "gzip")]).compression_level(),
        Some(-1)
    );
    assert_eq!(
        ok(&[("compression.type", "snappy")]).compression_level(),
        None
    );
    for (key, value) in [
        ("compression.gzip.level", "0"),
        ("compression.gzip.level", "-2"),
        ("compression.gzip.level", "10"),
        ("compression.lz4.level", "0"),
        ("compression.lz4.level", "18"),
        ("compression.zstd.level", "23"),
        ("compression.zstd.level", "-131073"),
        ("compression.zstd.level", "three"),
        ("compression.zstd.level", "99999999999"),
    ] {
        match props(&[(key, value)]) {
            Err(ConfigError::InvalidValue {
                key: k, value: v, ..
            }) => {
                assert_eq!((k, v.as_str()), (key, value))
            }
            other => panic!("{key}={value}: {other:?}"),
        }
    }
    let built = |b: ProducerConfigBuilder| b.bootstrap_servers(["localhost:9092"]).build();
    for (builder, key) in [
        (
            ProducerConfig::builder().compression_gzip_level(0),
            "compression.gzip.level",
        ),
        (
            ProducerConfig::builder().compression_lz4_level(18),
            "compression.lz4.level",
        ),
        (
            ProducerConfig::builder().compression_zstd_level(23),
            "compression.zstd.level",
        ),
    ] {
        let err = built(builder).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
        assert_eq!(err.key(), key);
    }
    let c = built(
        ProducerConfig::builder()
            .compression(Compression::Lz4)
            .compression_lz4_level(1),
    )
    .unwrap();
    assert_eq!(c.compression_level(), Some(1));
    let round = ProducerConfig::from_properties(c.to_properties()).unwrap();
    assert_eq!(round, c);
}
