//! Admin calls against a real broker.

use kafka_protocol::error::ResponseError;
use kafkit::admin::{Admin, NewTopic, OffsetSpec};
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
