//! Where the Java client just works (issue #10, item 7), against the real broker
//! (`scripts/kafka.sh` leaves `auto.create.topics.enable` at Kafka's default, true):
//!
//! * a topic first written by a send is created by the broker (the producer's metadata
//!   requests ask for it); a consumer with `allow.auto.create.topics=false` and the admin
//!   client's metadata calls do not create topics, a default consumer does;
//! * a client constructed before its broker is reachable (connection refused, or closed during
//!   the handshake) succeeds once the broker answers, with default timeouts;
//! * an unresolvable bootstrap host fails at once, naming the host; a port nothing listens on
//!   fails once the timeout passed, naming the address;
//! * KIP-909: with `bootstrap.resolve.timeout.ms` set, an unresolvable list fails with
//!   `Error::BootstrapUnresolvable` once that timeout passed; a name that starts resolving
//!   meanwhile is used; an unresolvable name beside a real broker does not stop the client.
//!   (`*.invalid` names are refused by kafkit's resolver without a DNS query: no traffic
//!   leaves 127.0.0.0/8.)

use std::time::{Duration, Instant};

use kafkit::admin::Admin;
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::Consumer;
use kafkit::io::cluster::{Cluster, ClusterConfig};
use kafkit::io::dns::Resolver;
use kafkit::producer::{Producer, ProducerRecord};
use kafkit::{Error, TopicPartition};
use kafkit_tests::proxy::Proxy;
use kafkit_tests::{kafka, unique_name, verify};
use tokio::net::{TcpListener, TcpStream};

/// Whether `topic` exists, asked without creating it (the admin client never asks for
/// auto-creation).
async fn exists(admin: &Admin, topic: &str) -> bool {
    admin.describe_topics(&[topic]).await.is_ok()
}

#[tokio::test]
async fn a_send_creates_a_missing_topic_as_java_does() {
    let topic = unique_name("startup-autocreate");
    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([kafka().bootstrap.clone()])
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let delivery = producer
        .send(ProducerRecord::new(&topic).value(verify::value_of(7)))
        .await
        .unwrap_or_else(|e| panic!("send to a new topic: {e}"));
    let md = delivery.await.unwrap();
    let took = started.elapsed();
    // Without auto-creation this waited max.block.ms (60 s) and failed.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    producer.close(Duration::from_secs(10)).await.unwrap();
    let sent = [verify::Sent {
        id: 7,
        partition: md.partition,
        offset: Some(md.offset),
    }];
    let log = verify::read_back(
        &kafka().bootstrap,
        &topic,
        md.partition + 1,
        &sent,
        Duration::from_secs(30),
    )
    .await;
    let got: Vec<u64> = log.values().flatten().map(|(_, id)| *id).collect();
    assert_eq!(got, [7], "the record is readable");
}

async fn consumer(allow_auto_create: Option<bool>) -> Consumer {
    let mut builder = ConsumerConfig::builder().bootstrap_servers([kafka().bootstrap.clone()]);
    if let Some(allow) = allow_auto_create {
        builder = builder.allow_auto_create_topics(allow);
    }
    Consumer::new(builder.build().unwrap()).await.unwrap()
}

/// Assigns partition 0 of `topic` (which does not exist) and polls for `wait`; returns
/// whether the topic exists by then.
async fn assign_missing(consumer: &Consumer, admin: &Admin, topic: &str, wait: Duration) -> bool {
    consumer
        .assign([TopicPartition::new(topic.to_owned(), 0)])
        .unwrap();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(500)).await;
        if exists(admin, topic).await {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_consumer_creates_topics_only_when_allowed() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    // allow.auto.create.topics=false: its metadata requests never ask.
    let refused = unique_name("startup-consumer-no-create");
    let c = consumer(Some(false)).await;
    let created = assign_missing(&c, &admin, &refused, Duration::from_secs(4)).await;
    c.close(Duration::from_secs(5)).await.expect("close");
    assert!(
        !created,
        "a consumer with allow.auto.create.topics=false created {refused}"
    );
    // The default (true, as in Java): the broker creates it. The check above can fail.
    let allowed = unique_name("startup-consumer-create");
    let c = consumer(None).await;
    let created = assign_missing(&c, &admin, &allowed, Duration::from_secs(15)).await;
    c.close(Duration::from_secs(5)).await.expect("close");
    assert!(created, "a default consumer did not create {allowed}");
}

#[tokio::test]
async fn admin_metadata_calls_do_not_create_topics() {
    let admin = Admin::connect(&kafka().bootstrap).await.unwrap();
    let topic = unique_name("startup-admin-no-create");
    assert!(admin.describe_topics(&[&topic]).await.is_err());
    admin
        .cluster()
        .refresh_metadata(Some(&[&topic]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!exists(&admin, &topic).await, "admin created {topic}");
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// From `after` on, `addr` forwards every connection to the real broker.
async fn listen_later(addr: std::net::SocketAddr, after: Duration) {
    tokio::time::sleep(after).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let upstream = kafka().bootstrap.split(',').next().unwrap().to_owned();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut broker) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_constructed_before_their_broker_listens_wait_for_it() {
    let addr = free_port();
    let bootstrap = addr.to_string();
    let started = Instant::now();
    let late = tokio::spawn(listen_later(addr, Duration::from_secs(3)));
    // Default timeouts: max.block.ms and default.api.timeout.ms are 60 s.
    let producer_config = ProducerConfig::builder()
        .bootstrap_servers([bootstrap.clone()])
        .build()
        .unwrap();
    let consumer_config = ConsumerConfig::builder()
        .bootstrap_servers([bootstrap.clone()])
        .build()
        .unwrap();
    let (producer, consumer, admin) = tokio::join!(
        Producer::new(producer_config),
        Consumer::new(consumer_config),
        Admin::connect(&bootstrap),
    );
    let took = started.elapsed();
    late.await.unwrap();
    let producer = producer.unwrap_or_else(|e| panic!("producer: {e}"));
    let consumer = consumer.unwrap_or_else(|e| panic!("consumer: {e}"));
    let admin = admin.unwrap_or_else(|e| panic!("admin: {e}"));
    assert!(
        took >= Duration::from_secs(3),
        "connected before the broker listened"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(!admin.describe_cluster().await.unwrap().is_empty());
    let topic = unique_name("startup-late");
    producer
        .send(ProducerRecord::new(&topic).value("v"))
        .await
        .unwrap()
        .await
        .unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
    consumer.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_closing_connections_during_the_handshake_is_waited_for() {
    let upstream = kafka()
        .bootstrap
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    let control = proxy.control();
    control.set_refuse(true);
    let started = Instant::now();
    let reopen = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        control.set_refuse(false);
    });
    let admin = Admin::connect(&proxy.bootstrap()).await;
    reopen.await.unwrap();
    let admin = admin.unwrap_or_else(|e| panic!("admin: {e}"));
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(
        proxy.stats().connections_refused >= 2,
        "{:?}",
        proxy.stats()
    );
    assert!(!admin.describe_cluster().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unresolvable_bootstrap_host_fails_at_once_naming_it() {
    let host = "kafkit-no-such-broker.invalid:9092";
    let started = Instant::now();
    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([host])
            .build()
            .unwrap(),
    )
    .await;
    let consumer = Consumer::new(
        ConsumerConfig::builder()
            .bootstrap_servers([host])
            .build()
            .unwrap(),
    )
    .await;
    let admin = Admin::connect(host).await;
    let took = started.elapsed();
    for err in [
        producer.err().map(|e| e.to_string()),
        consumer.err().map(|e| e.to_string()),
        admin.err().map(|e| e.to_string()),
    ] {
        let err = err.expect("an unresolvable host fails");
        assert!(err.contains("kafkit-no-such-broker.invalid"), "{err}");
    }
    // Not the 60 s of max.block.ms / default.api.timeout.ms.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[tokio::test]
async fn a_port_nothing_listens_on_fails_after_the_timeout_naming_it() {
    let addr = free_port().to_string();
    let started = Instant::now();
    let err = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([addr.clone()])
            .max_block(Duration::from_secs(2))
            .build()
            .unwrap(),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(err.to_string().contains(&addr), "{err}");
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = Consumer::new(
        ConsumerConfig::builder()
            .bootstrap_servers([addr.clone()])
            .default_api_timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains(&addr), "{err}");
}

#[tokio::test]
async fn an_unresolvable_bootstrap_host_is_looked_up_until_the_resolve_timeout() {
    let host = "kafkit-no-such-broker.invalid:9092";
    let started = Instant::now();
    let Err(err) = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([host])
            .set("bootstrap.resolve.timeout.ms", "1500")
            .unwrap()
            .build()
            .unwrap(),
    )
    .await
    else {
        panic!("an unresolvable host fails");
    };
    let took = started.elapsed();
    match &err {
        Error::BootstrapUnresolvable { hosts, after, .. } => {
            assert_eq!(hosts, &[host]);
            assert!(*after >= Duration::from_millis(1500), "{after:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(host), "{err}");
    assert!(
        took >= Duration::from_millis(1500),
        "gave up after {took:?}"
    );
    // Not the 60 s of max.block.ms.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[tokio::test]
async fn the_default_resolve_timeout_fails_at_once_with_the_typed_error() {
    let host = "kafkit-default.invalid:9092";
    let started = Instant::now();
    let consumer = Consumer::new(
        ConsumerConfig::builder()
            .bootstrap_servers([host])
            .build()
            .unwrap(),
    )
    .await;
    let Err(err) = consumer else {
        panic!("an unresolvable host fails");
    };
    assert!(
        matches!(&err, Error::BootstrapUnresolvable { hosts, .. } if hosts == &[host]),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_bootstrap_name_that_resolves_later_is_used() {
    let port = kafka()
        .bootstrap
        .split(',')
        .next()
        .and_then(|a| a.rsplit_once(':'))
        .map(|(_, p)| p.to_owned())
        .expect("host:port");
    let name = format!("{}.invalid", unique_name("kafkit-later"));
    let resolver = Resolver::system();
    let mut config = ClusterConfig::new(&format!("{name}:{port}"));
    config.connection.resolver = resolver.clone();
    config.bootstrap_resolve_timeout = Duration::from_secs(20);
    config.bootstrap_timeout = Duration::from_secs(30);
    let pin = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        resolver.pin(&name, ["127.0.0.1".parse().unwrap()]);
    });
    let started = Instant::now();
    let cluster = Cluster::connect(config)
        .await
        .expect("resolves after 0.8 s");
    let took = started.elapsed();
    pin.await.unwrap();
    assert!(
        took >= Duration::from_millis(800),
        "connected after {took:?}"
    );
    assert!(cluster.metadata().brokers().next().is_some());
    cluster.close();
}

#[tokio::test]
async fn an_unresolvable_name_beside_a_real_broker_is_skipped_with_defaults() {
    let topic = unique_name("startup-mixed-bootstrap");
    let bootstrap = format!("kafkit-gone.invalid:9092,{}", kafka().bootstrap);
    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers(bootstrap.split(','))
            .build()
            .unwrap(),
    )
    .await
    .expect("the real broker answers");
    producer
        .send(ProducerRecord::new(&topic).value("v"))
        .await
        .unwrap()
        .await
        .unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
}
