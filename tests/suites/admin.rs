//! Admin calls against a real broker: topics, offsets, partitions added, records deleted,
//! broker configs described and changed, groups listed with per-broker failures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafkit::admin::{Admin, AlterConfigOp, ConfigSource, ListGroupsFilter, NewTopic, OffsetSpec};
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::state::group::{OffsetAndMetadata, TopicPartition};
use kafkit::Error;
use kafkit_tests::{kafka, unique_name};

#[tokio::test]
async fn create_describe_list_offsets_delete() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = unique_name("admin");
    admin
        .create_topics(&[NewTopic::new(&topic, 3, 1).config("retention.ms", "3600000")])
        .await
        .unwrap();

    let described = admin.describe_topics(&[&topic]).await.unwrap();
    assert_eq!(described[0].partitions.len(), 3);
    assert!(described[0].partitions.iter().all(|p| p.leader.is_some()));

    let brokers = admin.describe_cluster().await.unwrap();
    assert!(!brokers.is_empty());

    for spec in [OffsetSpec::Earliest, OffsetSpec::Latest] {
        let offsets = admin.list_offsets(&topic, &[0, 1, 2], spec).await.unwrap();
        assert_eq!(
            offsets.iter().map(|o| o.partition).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(
            offsets.iter().all(|o| o.offset == 0),
            "{spec:?}: {offsets:?}"
        );
    }
    // No record at or after a timestamp in an empty partition.
    let by_time = admin
        .list_offsets(&topic, &[0], OffsetSpec::Timestamp(0))
        .await
        .unwrap();
    assert_eq!(by_time[0].offset, -1);

    // Creating it again is a typed error; "if missing" accepts it.
    let err = admin
        .create_topics(&[NewTopic::new(&topic, 3, 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Broker {
                code: ResponseError::TopicAlreadyExists,
                ..
            }
        ),
        "{err:?}"
    );
    admin
        .create_topics_if_missing(&[NewTopic::new(&topic, 3, 1)])
        .await
        .unwrap();

    admin.delete_topics(&[&topic]).await.unwrap();
    let err = admin.delete_topics(&[&topic]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Broker {
                code: ResponseError::UnknownTopicOrPartition,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_topic_config_is_rejected_with_the_brokers_message() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let err = admin
        .create_topics(&[NewTopic::new(unique_name("bad"), 1, 1).config("retention.ms", "soon")])
        .await
        .unwrap_err();
    match err {
        Error::Broker { code, message, .. } => {
            assert_eq!(code, ResponseError::InvalidConfig);
            assert!(message.unwrap_or_default().contains("retention.ms"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unknown_topic_is_a_typed_error() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let err = admin
        .describe_topics(&[&unique_name("missing")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Broker {
                code: ResponseError::UnknownTopicOrPartition,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_broker_reachable_fails_after_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    // `Admin::connect` waits 60 s (default.api.timeout.ms) for a broker to come up; the
    // same bootstrap with a short wait.
    let mut config = kafkit::io::cluster::ClusterConfig::new(&addr);
    config.bootstrap_timeout = std::time::Duration::from_secs(1);
    let err = kafkit::io::cluster::Cluster::connect(config)
        .await
        .map(Admin::from_cluster)
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr), "{err}");
}

fn broker_code(err: &Error) -> Option<ResponseError> {
    match err {
        Error::Broker { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn create_partitions_then_delete_records_on_each_leader() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = unique_name("admin-partitions");
    admin
        .create_topics(&[NewTopic::new(&topic, 2, 1)])
        .await
        .unwrap();
    admin.create_partitions(&[(&topic, 4)]).await.unwrap();
    let described = admin.describe_topics(&[&topic]).await.unwrap();
    assert_eq!(described[0].partitions.len(), 4);
    assert!(described[0].partitions.iter().all(|p| p.leader.is_some()));
    // Shrinking (or staying) is the broker's INVALID_PARTITIONS, naming the topic.
    let err = admin.create_partitions(&[(&topic, 3)]).await.unwrap_err();
    assert_eq!(
        broker_code(&err),
        Some(ResponseError::InvalidPartitions),
        "{err:?}"
    );
    assert!(err.to_string().contains(&topic), "{err}");

    // Ten records in each of partitions 0 and 3 (3 is one of the new ones).
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka().bootstrap.clone()])
        .build()
        .unwrap();
    let producer = Producer::new(config).await.unwrap();
    let mut acks = Vec::new();
    for p in [0, 3] {
        for i in 0..10 {
            let record = ProducerRecord::new(&topic)
                .partition(p)
                .value(format!("v{i}"));
            acks.push(producer.send(record).await.unwrap());
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();

    let (p0, p1, p3) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
        TopicPartition::new(&topic, 3),
    );
    let low = admin
        .delete_records(&[(p0.clone(), 4), (p1.clone(), -1), (p3.clone(), -1)])
        .await
        .unwrap();
    assert_eq!(
        low,
        BTreeMap::from([(p0.clone(), 4), (p1.clone(), 0), (p3.clone(), 10)])
    );
    // The broker agrees: the log start offsets moved (ListOffsets earliest).
    let earliest = admin
        .list_offsets(&topic, &[0, 1, 2, 3], OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(
        earliest.iter().map(|o| o.offset).collect::<Vec<_>>(),
        [4, 0, 0, 10]
    );
    // And a consumer's beginning_offsets sees the same.
    let consumer = Consumer::new(
        ConsumerConfig::from_properties([("bootstrap.servers", kafka().bootstrap.as_str())])
            .unwrap(),
    )
    .await
    .unwrap();
    let begin = consumer
        .beginning_offsets(&[p0.clone(), p3.clone()], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(begin, BTreeMap::from([(p0.clone(), 4), (p3.clone(), 10)]));
    consumer.close(Duration::from_secs(5)).await.unwrap();

    // Past the high watermark: the broker's OFFSET_OUT_OF_RANGE, naming the partition.
    let err = admin.delete_records(&[(p0.clone(), 11)]).await.unwrap_err();
    assert_eq!(
        broker_code(&err),
        Some(ResponseError::OffsetOutOfRange),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!("{topic}-0")), "{err}");
    admin.delete_topics(&[&topic]).await.unwrap();
}

/// Polls `describe_broker_configs` until `key` of `broker` reads `expected` (dynamic changes
/// reach the broker through the metadata log).
async fn broker_config_becomes(
    admin: &Admin,
    broker: i32,
    key: &str,
    expected: &str,
) -> ConfigSource {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let configs = admin.describe_broker_configs(&[broker]).await.unwrap();
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].broker, broker);
        let entry = configs[0].entry(key).unwrap_or_else(|| panic!("no {key}"));
        if entry.value.as_deref() == Some(expected) {
            return entry.source;
        }
        assert!(
            Instant::now() < deadline,
            "{key} of broker {broker} is {:?}, not {expected}",
            entry.value
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn broker_configs_are_described_and_changed_per_broker_and_cluster_wide() {
    // A default for every log's flush policy: changing it touches no thread (a log.cleaner.*
    // change restarts the cleaner threads of the broker every suite shares), and flushing
    // every 21,000,000 messages instead of never changes nothing the other tests see.
    const KEY: &str = "log.flush.interval.messages";
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let broker = admin.describe_cluster().await.unwrap()[0].node_id;
    let configs = admin.describe_broker_configs(&[broker]).await.unwrap();
    let default = configs[0]
        .get(KEY)
        .expect("the broker reports it")
        .to_owned();
    assert_eq!(
        configs[0].entry(KEY).map(|e| e.source),
        Some(ConfigSource::Default)
    );
    // A static setting from the broker's own properties file, not changeable at runtime.
    let dirs = configs[0].entry("log.dirs").expect("log.dirs");
    assert_eq!(dirs.source, ConfigSource::Broker);
    assert!(dirs.read_only);
    assert!(dirs.value.is_some());

    // Per broker, then the cluster-wide default, then both removed.
    admin
        .incremental_alter_broker_configs(
            Some(broker),
            &[AlterConfigOp::Set(KEY.into(), "21000000".into())],
        )
        .await
        .unwrap();
    let source = broker_config_becomes(&admin, broker, KEY, "21000000").await;
    assert_eq!(source, ConfigSource::Broker);
    admin
        .incremental_alter_broker_configs(
            None,
            &[AlterConfigOp::Set(KEY.into(), "22000000".into())],
        )
        .await
        .unwrap();
    admin
        .incremental_alter_broker_configs(Some(broker), &[AlterConfigOp::Delete(KEY.into())])
        .await
        .unwrap();
    broker_config_becomes(&admin, broker, KEY, "22000000").await;
    admin
        .incremental_alter_broker_configs(None, &[AlterConfigOp::Delete(KEY.into())])
        .await
        .unwrap();
    broker_config_becomes(&admin, broker, KEY, &default).await;

    // A config that cannot change at runtime, and a broker that does not exist: typed errors.
    let err = admin
        .incremental_alter_broker_configs(
            Some(broker),
            &[AlterConfigOp::Set("log.dirs".into(), "/tmp/x".into())],
        )
        .await
        .unwrap_err();
    assert!(broker_code(&err).is_some(), "{err:?}");
    assert!(err.to_string().contains("log.dirs"), "{err}");
    let err = admin
        .describe_broker_configs(&[broker + 1000])
        .await
        .unwrap_err();
    assert_eq!(
        broker_code(&err),
        Some(ResponseError::BrokerNotAvailable),
        "{err:?}"
    );
}

#[tokio::test]
async fn list_groups_reports_a_failing_broker_beside_the_answers() {
    use kafkit::io::cluster::{Cluster, ClusterConfig};
    use kafkit_tests::proxy::{LostResponse, ProxyCluster};

    let proxy = ProxyCluster::start(&kafka().bootstrap).await;
    let mut config = ClusterConfig::new(&proxy.bootstrap());
    config.request_timeout = Duration::from_secs(10);
    let admin = Admin::from_cluster(Cluster::connect(config).await.unwrap());
    let control = proxy.control();
    let topic = unique_name("admin-list-groups");
    admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();
    let group = unique_name("admin-list-groups-group");
    let offsets = BTreeMap::from([(TopicPartition::new(&topic, 0), OffsetAndMetadata::new(0))]);
    admin.alter_group_offsets(&group, &offsets).await.unwrap();
    let all = ListGroupsFilter::default();
    let broker = admin.describe_cluster().await.unwrap()[0].node_id;

    // The broker's ListGroups answer is lost: asked again, answered.
    control.drop_response_of(ApiKey::ListGroups, 1, LostResponse::Cut);
    let listings = admin.list_groups_per_broker(&all).await.unwrap();
    assert!(listings.failures.is_empty(), "{:?}", listings.failures);
    assert!(listings.groups.iter().any(|g| g.group_id == group));
    assert_eq!(control.stats().responses_dropped, 1);
    // No answer within the whole (short) call deadline: reported for that broker, not as a
    // whole, as the typed timeout naming the request timeout.
    let hasty = admin
        .clone()
        .with_default_api_timeout(Duration::from_secs(1));
    control.drop_response_of(ApiKey::ListGroups, 1, LostResponse::Blackhole);
    let listings = hasty.list_groups_per_broker(&all).await.unwrap();
    assert!(listings.groups.iter().all(|g| g.group_id != group));
    let failure = listings
        .failures
        .get(&broker)
        .expect("the broker's failure");
    assert!(
        matches!(failure, Error::AdminTimeout { last, .. } if matches!(**last, Error::RequestTimedOut { .. })),
        "{failure:?}"
    );
    // list_groups fails with it (Java's all()).
    control.drop_response_of(ApiKey::ListGroups, 1, LostResponse::Blackhole);
    assert!(hasty.list_groups(&all).await.is_err());
    // Answered again: the group is listed, no failures.
    let listings = admin.list_groups_per_broker(&all).await.unwrap();
    assert!(listings.failures.is_empty(), "{:?}", listings.failures);
    assert!(listings.groups.iter().any(|g| g.group_id == group));
    assert_eq!(control.stats().responses_dropped, 3);
    admin.delete_groups(&[&group]).await.unwrap();
    admin.delete_topics(&[&topic]).await.unwrap();
    proxy.shutdown();
}

/// Refuses the next `n` client connections, then lets them through (in a task of its own).
fn refuse_next_connections(control: kafkit_tests::proxy::ProxyControl, n: u64) {
    let already = control.stats().connections_refused;
    control.cut_all();
    control.set_refuse(true);
    tokio::spawn(async move {
        control
            .wait_for(Duration::from_secs(30), |s| {
                s.connections_refused >= already + n
            })
            .await;
        control.set_refuse(false);
    });
}

/// Issue #14: with the default settings (`default.api.timeout.ms` = 60 s), calls whose only
/// bootstrap address is a proxy that refuses the first connections or loses the first answer
/// are retried and succeed: topics, configs, offsets and a group call.
#[tokio::test]
async fn admin_calls_retry_refused_connections_and_lost_answers() {
    use kafkit_tests::proxy::{LostResponse, Proxy};

    let upstream = kafka().bootstrap.parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let admin = Admin::connect(&proxy.bootstrap()).await.unwrap();
    let control = proxy.control();
    let topic = unique_name("admin-retry");

    // Connections refused (closed before ApiVersions is answered) three times.
    refuse_next_connections(control.clone(), 3);
    admin
        .create_topics(&[NewTopic::new(&topic, 2, 1)])
        .await
        .unwrap();
    assert!(control.stats().connections_refused >= 3);

    refuse_next_connections(control.clone(), 2);
    let configs = admin.describe_topic_configs(&[&topic]).await.unwrap();
    assert_eq!(configs[0].topic, topic);

    // The first answer lost with its connection: asked again.
    control.drop_response_of(ApiKey::DescribeConfigs, 1, LostResponse::Cut);
    admin.describe_topic_configs(&[&topic]).await.unwrap();
    control.drop_response_of(ApiKey::ListOffsets, 1, LostResponse::Cut);
    let ends = admin
        .list_offsets(&topic, &[0, 1], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(ends.len(), 2);
    let group = unique_name("admin-retry-group");
    // Two partitions committed, one deleted below: the group keeps an offset, so the retried
    // OffsetDelete finds it (a Kafka 3.9 coordinator drops an empty group whose last offset
    // the first, answered-but-lost, attempt deleted: the retry would be GROUP_ID_NOT_FOUND,
    // as Java's would).
    let offsets = BTreeMap::from([
        (TopicPartition::new(&topic, 0), OffsetAndMetadata::new(0)),
        (TopicPartition::new(&topic, 1), OffsetAndMetadata::new(0)),
    ]);
    admin.alter_group_offsets(&group, &offsets).await.unwrap();
    control.drop_response_of(ApiKey::ListGroups, 1, LostResponse::Cut);
    let listed = admin
        .list_groups(&ListGroupsFilter::default())
        .await
        .unwrap();
    assert!(listed.iter().any(|g| g.group_id == group));
    control.drop_response_of(ApiKey::OffsetDelete, 1, LostResponse::Cut);
    admin
        .delete_group_offsets(&group, &[TopicPartition::new(&topic, 0)])
        .await
        .unwrap();
    assert_eq!(control.stats().responses_dropped, 4);

    refuse_next_connections(control.clone(), 2);
    admin.delete_topics(&[&topic]).await.unwrap();
    proxy.shutdown();
}

/// A broker unreachable for the whole `default.api.timeout.ms` (short here): the typed
/// timeout naming the call and the last failure, after about that long, not at the first
/// refusal.
#[tokio::test]
async fn a_broker_down_for_the_whole_deadline_is_a_typed_timeout() {
    use kafkit_tests::proxy::Proxy;

    let upstream = kafka().bootstrap.parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let api_timeout = Duration::from_secs(2);
    let admin = Admin::connect(&proxy.bootstrap())
        .await
        .unwrap()
        .with_default_api_timeout(api_timeout);
    let control = proxy.control();
    control.cut_all();
    control.set_refuse(true);

    let started = Instant::now();
    let err = admin
        .create_topics(&[NewTopic::new(unique_name("admin-down"), 1, 1)])
        .await
        .unwrap_err();
    let took = started.elapsed();
    match &err {
        Error::AdminTimeout {
            call,
            attempts,
            last,
            ..
        } => {
            assert_eq!(*call, "create_topics");
            assert!(*attempts >= 2, "{err}");
            assert!(last.is_retriable(), "{last:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("create_topics"), "{err}");
    // Within one backoff (at most retry.backoff.max.ms = 1 s) of the deadline.
    assert!(took >= api_timeout - Duration::from_secs(1), "{took:?}");
    assert!(took < api_timeout + Duration::from_secs(3), "{took:?}");
    assert!(control.stats().connections_refused >= 2);
    proxy.shutdown();
}

/// `default.api.timeout.ms` read from properties (`AdminConfig`) is the deadline of every call
/// of an `Admin::new` client, and of its bootstrap wait.
#[tokio::test]
async fn admin_config_default_api_timeout_is_each_calls_deadline() {
    use kafkit::config::AdminConfig;
    use kafkit_tests::proxy::Proxy;

    let upstream = kafka().bootstrap.parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let config = AdminConfig::from_properties([
        ("bootstrap.servers", proxy.bootstrap().as_str()),
        ("request.timeout.ms", "1000"),
        ("default.api.timeout.ms", "2500"),
    ])
    .unwrap();
    let admin = Admin::new(config.clone()).await.unwrap();
    assert_eq!(admin.default_api_timeout(), Duration::from_millis(2500));
    let control = proxy.control();
    control.cut_all();
    control.set_refuse(true);
    let started = Instant::now();
    let err = admin
        .describe_topics(&[&unique_name("admin-config")])
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            &err,
            Error::AdminTimeout {
                call: "describe_topics",
                ..
            }
        ),
        "{err:?}"
    );
    // Within one backoff (at most retry.backoff.max.ms = 1 s) of the deadline, well before
    // the 60 s default.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");

    // The bootstrap wait: a broker that never answers fails `new` after that long.
    let started = Instant::now();
    let err = Admin::new(config).await.unwrap_err();
    // The last bootstrap attempt's failure (the proxy refuses or closes in the handshake).
    assert!(err.to_string().contains(&proxy.bootstrap()), "{err}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    proxy.shutdown();
}

/// Java's listOffsets fails a topic missing from metadata at once (KAFKA-15425); with the
/// default 60 s deadline the typed error comes well before it.
#[tokio::test]
async fn list_offsets_of_an_unknown_topic_fails_at_once() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let started = Instant::now();
    let err = admin
        .list_offsets(&unique_name("admin-missing"), &[0], OffsetSpec::Latest)
        .await
        .unwrap_err();
    assert_eq!(
        broker_code(&err),
        Some(ResponseError::UnknownTopicOrPartition),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// A non-retriable answer ends the call at once, with the default 60 s deadline.
#[tokio::test]
async fn non_retriable_errors_return_at_once() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = unique_name("admin-final");
    admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();
    let started = Instant::now();
    let exists = admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap_err();
    assert_eq!(
        broker_code(&exists),
        Some(ResponseError::TopicAlreadyExists)
    );
    let replicas = admin
        .create_topics(&[NewTopic::new(unique_name("admin-final-rf"), 1, 9)])
        .await
        .unwrap_err();
    assert_eq!(
        broker_code(&replicas),
        Some(ResponseError::InvalidReplicationFactor),
        "{replicas:?}"
    );
    // UNKNOWN_TOPIC_OR_PARTITION is retriable in Kafka's table, but from DeleteTopics it is
    // the answer (as in Java).
    let missing = admin
        .delete_topics(&[&unique_name("admin-final-missing")])
        .await
        .unwrap_err();
    assert_eq!(
        broker_code(&missing),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    admin.delete_topics(&[&topic]).await.unwrap();
}
