//! `TransactionalPipeline` (exactly-once consume-transform-produce) against real brokers:
//! every input record's output is visible to `read_committed` readers exactly once and the
//! group's committed offsets reach the input's end (Kafka 4.x, transactions v2, and 3.9.1, v1);
//! a transform error aborts the batch (its outputs stay invisible) and the input is
//! transformed again; a second producer with the same `transactional.id` stops the pipeline
//! with the fenced error and its consumer leaves the group; a member joining while the first
//! holds an open transaction makes the first abort before its partitions are given up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafkit::admin::Admin;
use kafkit::config::{ConsumerConfig, ProducerConfig};
use kafkit::consumer::{Consumer, ListenerFuture, RebalanceListener};
use kafkit::pipeline::{AbortCause, BatchOutcome, PipelineError, TransactionalPipeline};
use kafkit::producer::{
    ProduceError, Producer, ProducerRecord, TransactionError, TransactionPhase,
};
use kafkit::state::group::TopicPartition;
use kafkit::GroupSubscription;
use kafkit_tests::{kafka, unique_name};

const WAIT: Duration = Duration::from_secs(60);
const CALL: Duration = Duration::from_secs(30);

/// The Kafka 3.9.1 broker of this process (`KAFKIT_KAFKA39_BOOTSTRAP` when one is running).
fn kafka_39() -> &'static str {
    static KAFKA: OnceLock<String> = OnceLock::new();
    KAFKA.get_or_init(|| match std::env::var("KAFKIT_KAFKA39_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => b.trim().to_owned(),
        _ => kafkit_tests::start_broker_version("3.9.1", 1).bootstrap,
    })
}

fn consumer_config(bootstrap: &str, group: &str) -> ConsumerConfig {
    ConsumerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        ("fetch.max.wait.ms", "100"),
    ])
    .expect("consumer config")
}

/// A pipeline over `input` for `group` with the producer `transactional_id` (not initialised:
/// `build` does it), with `commit_interval`.
async fn pipeline(
    bootstrap: &str,
    input: &str,
    group: &str,
    transactional_id: &str,
    commit_interval: Duration,
    listener: Option<Arc<dyn RebalanceListener>>,
) -> TransactionalPipeline {
    let consumer = Consumer::new(consumer_config(bootstrap, group))
        .await
        .expect("consumer");
    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([bootstrap.to_owned()])
            .transactional_id(transactional_id)
            .linger(Duration::from_millis(5))
            .build()
            .expect("producer config"),
    )
    .await
    .expect("producer");
    let mut builder = TransactionalPipeline::builder(
        consumer,
        producer,
        GroupSubscription::Topics(vec![input.to_owned()]),
    )
    .commit_interval(commit_interval)
    .poll_timeout(Duration::from_millis(300));
    if let Some(l) = listener {
        builder = builder.listener(l);
    }
    builder.build().await.expect("pipeline")
}

/// The transform of every test: each input value `v` becomes `out:v`, same key, to `output`.
async fn copy(
    output: &str,
    records: Vec<kafkit::ConsumerRecord>,
    sink: &kafkit::pipeline::TransactionSink,
) -> Result<(), ProduceError> {
    for r in records {
        let value = format!(
            "out:{}",
            String::from_utf8_lossy(&r.value.unwrap_or_default())
        );
        sink.send(ProducerRecord::new(output).value(value)).await?;
    }
    Ok(())
}

/// What every input value should become, sorted (each exactly once).
fn expected(input: &BTreeSet<String>) -> Vec<String> {
    input.iter().map(|v| format!("out:{v}")).collect()
}

/// Everything read from `topic` at `isolation` until caught up with at least `at_least`
/// records, sorted (duplicates kept).
async fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
    at_least: usize,
) -> Vec<String> {
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", isolation),
        ("fetch.max.wait.ms", "100"),
    ])
    .expect("config");
    let consumer = Consumer::new(config).await.expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic.to_owned(), p))
        .collect();
    consumer.assign(tps.clone()).expect("assign");
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        for r in consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
        {
            out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
        if out.len() >= at_least && tps.iter().all(|tp| consumer.lag(tp) == Some(0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{isolation} read of {topic} not caught up: {} records",
            out.len()
        );
    }
    let late = consumer
        .poll(Duration::from_millis(500))
        .await
        .expect("poll");
    assert!(late.is_empty(), "records after the end: {}", late.len());
    consumer.close(Duration::from_secs(5)).await.expect("close");
    out.sort();
    out
}

/// The group's committed offsets of `input` (asked as a group-less client) against the
/// input's end offsets.
async fn committed_and_end(
    bootstrap: &str,
    group: &str,
    input: &str,
    partitions: i32,
) -> (
    BTreeMap<TopicPartition, Option<i64>>,
    BTreeMap<TopicPartition, i64>,
) {
    let consumer = Consumer::new(consumer_config(bootstrap, group))
        .await
        .expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(input.to_owned(), p))
        .collect();
    let committed = consumer
        .committed_with_timeout(&tps, CALL)
        .await
        .expect("committed")
        .into_iter()
        .map(|(tp, o)| (tp, o.map(|o| o.offset)))
        .collect();
    let end = consumer.end_offsets(&tps, CALL).await.expect("end offsets");
    consumer.close(Duration::from_secs(5)).await.expect("close");
    (committed, end)
}

async fn assert_offsets_at_end(bootstrap: &str, group: &str, input: &str, partitions: i32) {
    let (committed, end) = committed_and_end(bootstrap, group, input, partitions).await;
    let end: BTreeMap<TopicPartition, Option<i64>> =
        end.into_iter().map(|(tp, o)| (tp, Some(o))).collect();
    assert_eq!(
        committed, end,
        "the group's committed offsets must be the input's end"
    );
}

macro_rules! on_4x_and_39 {
    ($body:ident: $latest:ident, $v39:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $latest() {
            $body(&kafka().bootstrap, 2).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $v39() {
            $body(kafka_39(), 1).await;
        }
    };
}

on_4x_and_39!(happy_path: every_input_record_is_copied_exactly_once, every_input_record_is_copied_exactly_once_on_kafka_39);

/// Input → transform → output with the defaults (one transaction per polled batch): the
/// output read `read_committed` holds every input exactly once; the group's offsets are at
/// the input's end.
async fn happy_path(bootstrap: &str, protocol: u8) {
    let input = kafkit_tests::fill::topic(bootstrap, "ctp-in", 3).await;
    let output = kafkit_tests::fill::topic(bootstrap, "ctp-out", 3).await;
    let values = kafkit_tests::fill::produce_tagged(bootstrap, &input, 3, "a", 20).await;
    let group = unique_name("ctp-group");
    let mut pipeline = pipeline(
        bootstrap,
        &input,
        &group,
        &unique_name("ctp-txn"),
        Duration::ZERO,
        None,
    )
    .await;
    assert_eq!(pipeline.producer().transaction_version(), Some(protocol));
    let deadline = Instant::now() + WAIT;
    while pipeline.stats().records_committed < 60 {
        assert!(Instant::now() < deadline, "stats: {:?}", pipeline.stats());
        let out = output.clone();
        let outcome = pipeline
            .process_batch(|records, sink| async move { copy(&out, records, &sink).await })
            .await
            .expect("process_batch");
        assert!(
            !matches!(
                outcome,
                BatchOutcome::Aborted { .. } | BatchOutcome::Pending { .. }
            ),
            "{outcome:?}"
        );
    }
    let stats = pipeline.stats();
    assert_eq!(stats.records_committed, 60, "{stats:?}");
    assert_eq!(stats.transactions_aborted, 0, "{stats:?}");
    assert_offsets_at_end(bootstrap, &group, &input, 3).await;
    pipeline.close(CALL).await.expect("close");
    assert_eq!(
        read_all(bootstrap, &output, 3, "read_committed", 60).await,
        expected(&values)
    );
}

/// A transform error in the middle of a batch (after some of its outputs were sent): the
/// batch aborts, its outputs are in the log but invisible to `read_committed`, the input is
/// read again, and the output is still exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_error_aborts_the_batch_and_its_input_is_processed_again() {
    let bootstrap = &kafka().bootstrap;
    let input = kafkit_tests::fill::topic(bootstrap, "ctp-err-in", 1).await;
    let output = kafkit_tests::fill::topic(bootstrap, "ctp-err-out", 1).await;
    let values = kafkit_tests::fill::produce_tagged(bootstrap, &input, 1, "e", 20).await;
    let poison = "e-0-7".to_owned();
    let group = unique_name("ctp-err");
    let mut pipeline = pipeline(
        bootstrap,
        &input,
        &group,
        &unique_name("ctp-err-txn"),
        Duration::ZERO,
        None,
    )
    .await;
    let failed = Arc::new(AtomicBool::new(false));
    // How many outputs the failing batch had sent (and seen acknowledged) before the error.
    let sent_before_error = Arc::new(AtomicUsize::new(0));
    let mut seen_aborts = 0;
    let deadline = Instant::now() + WAIT;
    while pipeline.stats().records_committed < 20 {
        assert!(Instant::now() < deadline, "stats: {:?}", pipeline.stats());
        let (out, poison, failed) = (output.clone(), poison.clone(), failed.clone());
        let sent_before_error = sent_before_error.clone();
        let outcome = pipeline
            .process_batch(|records, sink| async move {
                for (sent, r) in records.into_iter().enumerate() {
                    let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                        .into_owned();
                    // The first time the poison record comes, fail after the outputs of the
                    // records before it in the batch were sent.
                    if value == poison && !failed.swap(true, Ordering::SeqCst) {
                        sent_before_error.store(sent, Ordering::SeqCst);
                        return Err(format!("cannot transform {value}"));
                    }
                    // Each output acknowledged: the aborted ones are in the log.
                    sink.send(ProducerRecord::new(out.as_str()).value(format!("out:{value}")))
                        .await
                        .map_err(|e| e.to_string())?
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
            .await
            .expect("process_batch");
        if let BatchOutcome::Aborted { cause } = outcome {
            assert!(
                matches!(&cause, AbortCause::Transform(e) if e.to_string().contains("e-0-7")),
                "{cause}"
            );
            seen_aborts += 1;
        }
    }
    assert_eq!(seen_aborts, 1);
    let stats = pipeline.stats();
    assert_eq!(
        (stats.transactions_aborted, stats.records_committed),
        (1, 20),
        "{stats:?}"
    );
    assert_offsets_at_end(bootstrap, &group, &input, 1).await;
    pipeline.close(CALL).await.expect("close");
    assert_eq!(
        read_all(bootstrap, &output, 1, "read_committed", 20).await,
        expected(&values)
    );
    // Negative control: the aborted batch's outputs were written (read_uncommitted sees them).
    let uncommitted = read_all(bootstrap, &output, 1, "read_uncommitted", 21).await;
    assert!(
        uncommitted.len() > 20,
        "the aborted outputs were never sent"
    );
}

/// A second producer with the pipeline's `transactional.id` fences it: the pipeline stops
/// with the fenced error (fatal), later calls say it is closed, and its consumer left the
/// group (no member remains).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_id_stops_the_pipeline_fenced() {
    let bootstrap = &kafka().bootstrap;
    let input = kafkit_tests::fill::topic(bootstrap, "ctp-fence-in", 1).await;
    let output = kafkit_tests::fill::topic(bootstrap, "ctp-fence-out", 1).await;
    let first = kafkit_tests::fill::produce_tagged(bootstrap, &input, 1, "f", 10).await;
    let group = unique_name("ctp-fence");
    let id = unique_name("ctp-fence-txn");
    let mut pipeline = pipeline(bootstrap, &input, &group, &id, Duration::ZERO, None).await;
    let deadline = Instant::now() + WAIT;
    while pipeline.stats().records_committed < 10 {
        assert!(Instant::now() < deadline, "stats: {:?}", pipeline.stats());
        let out = output.clone();
        pipeline
            .process_batch(|records, sink| async move { copy(&out, records, &sink).await })
            .await
            .expect("process_batch");
    }

    let successor = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([bootstrap.clone()])
            .transactional_id(&id)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    successor
        .init_transactions(WAIT)
        .await
        .expect("successor init");
    kafkit_tests::fill::produce_tagged(bootstrap, &input, 1, "g", 5).await;

    let stopped = loop {
        assert!(Instant::now() < deadline, "the fenced pipeline went on");
        let out = output.clone();
        match pipeline
            .process_batch(|records, sink| async move { copy(&out, records, &sink).await })
            .await
        {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            &stopped,
            PipelineError::Transaction(TransactionError::Fenced { .. })
        ),
        "{stopped}"
    );
    assert!(stopped.is_fatal());
    let again = pipeline
        .process_batch(|records, sink| async move { copy("x", records, &sink).await })
        .await;
    assert!(matches!(again, Err(PipelineError::Closed)), "{again:?}");
    let admin = Admin::connect(bootstrap).await.unwrap();
    let groups = admin.describe_groups(&[group.as_str()]).await.unwrap();
    assert!(
        groups[0].members.is_empty(),
        "the consumer did not leave: {groups:?}"
    );
    pipeline.close(CALL).await.expect("close after stop");
    successor.close(CALL).await.unwrap();
    // Only the first ten made it.
    assert_eq!(
        read_all(bootstrap, &output, 1, "read_committed", 10).await,
        expected(&first)
    );
}

/// Records what the producer's transaction phase was when the application's listener heard
/// of a revocation (after the pipeline's own part).
struct PhaseAtRevoke {
    producer: Producer,
    phases: Mutex<Vec<Option<TransactionPhase>>>,
}

impl RebalanceListener for PhaseAtRevoke {
    fn on_partitions_revoked<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            if !partitions.is_empty() {
                self.phases
                    .lock()
                    .unwrap()
                    .push(self.producer.transaction_phase());
            }
        })
    }
}

/// A second member joins while the first holds an open transaction (a long commit interval):
/// the first aborts it inside the rebalance, before its partitions are given up; at the end
/// the output is exactly once and the offsets at the input's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_makes_the_first_abort_its_open_transaction_before_giving_up_partitions() {
    let bootstrap = &kafka().bootstrap;
    let input = kafkit_tests::fill::topic(bootstrap, "ctp-reb-in", 2).await;
    let output = kafkit_tests::fill::topic(bootstrap, "ctp-reb-out", 2).await;
    let values = kafkit_tests::fill::produce_tagged(bootstrap, &input, 2, "r", 20).await;
    let group = unique_name("ctp-reb");

    // The first member's producer, shared with its listener to see the phase at revocation.
    let first_id = unique_name("ctp-reb-a");
    let consumer = Consumer::new(consumer_config(bootstrap, &group))
        .await
        .unwrap();
    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([bootstrap.clone()])
            .transactional_id(&first_id)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let spy = Arc::new(PhaseAtRevoke {
        producer: producer.clone(),
        phases: Mutex::new(Vec::new()),
    });
    let mut first = TransactionalPipeline::builder(
        consumer,
        producer,
        GroupSubscription::Topics(vec![input.clone()]),
    )
    .commit_interval(Duration::from_secs(40))
    .poll_timeout(Duration::from_millis(300))
    .listener(spy.clone())
    .build()
    .await
    .unwrap();

    // The first member holds every input record in its open transaction.
    let deadline = Instant::now() + WAIT;
    let mut pending = 0;
    while pending < 40 {
        assert!(Instant::now() < deadline, "only {pending} records pending");
        let out = output.clone();
        match first
            .process_batch(|records, sink| async move { copy(&out, records, &sink).await })
            .await
            .unwrap()
        {
            BatchOutcome::Pending { records } => pending += records,
            BatchOutcome::Idle => {}
            other => panic!("nothing should commit or abort yet: {other:?}"),
        }
    }

    // The second member joins and processes with the defaults until told to stop.
    let second = pipeline(
        bootstrap,
        &input,
        &group,
        &unique_name("ctp-reb-b"),
        Duration::ZERO,
        None,
    )
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let out = output.clone();
    let second = tokio::spawn(second.run_until(
        async {
            let _ = stopped.await;
        },
        move |records, sink| {
            let out = out.clone();
            async move { copy(&out, records, &sink).await }
        },
    ));

    // The first member sees the rebalance in one of its polls and aborts there.
    while first.stats().aborted_by_rebalance == 0 {
        assert!(Instant::now() < deadline, "no abort: {:?}", first.stats());
        let out = output.clone();
        first
            .process_batch(|records, sink| async move { copy(&out, records, &sink).await })
            .await
            .unwrap();
    }
    let phases = spy.phases.lock().unwrap().clone();
    assert_eq!(
        phases.first(),
        Some(&Some(TransactionPhase::Ready)),
        "the transaction must be over when the partitions are given up: {phases:?}"
    );
    // Keep going a little (the first re-reads what it still owns), then leave: close commits
    // what the first holds and hands everything to the second.
    for _ in 0..5 {
        let out = output.clone();
        first
            .process_batch(|records, sink| async move { copy(&out, records, &sink).await })
            .await
            .unwrap();
    }
    first.close(CALL).await.expect("close the first");

    // The second member finishes the input.
    loop {
        let (committed, end) = committed_and_end(bootstrap, &group, &input, 2).await;
        if end
            .iter()
            .all(|(tp, e)| committed.get(tp) == Some(&Some(*e)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "committed {committed:?}, end {end:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(WAIT, second)
        .await
        .expect("the second stops")
        .unwrap()
        .expect("the second ran cleanly");
    assert_eq!(
        read_all(bootstrap, &output, 2, "read_committed", 40).await,
        expected(&values)
    );
}

/// Settings that would break exactly-once are refused, naming the property.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_and_a_missing_group_are_refused_naming_the_setting() {
    let bootstrap = &kafka().bootstrap;
    let producer = || async {
        Producer::new(
            ProducerConfig::builder()
                .bootstrap_servers([bootstrap.clone()])
                .transactional_id(unique_name("ctp-refused"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
    };
    let subscription = || GroupSubscription::Topics(vec!["never".into()]);
    for (props, key) in [
        (
            vec![("group.id", "g"), ("enable.auto.commit", "true")],
            "enable.auto.commit",
        ),
        (vec![], "group.id"),
    ] {
        let mut props = props;
        props.push(("bootstrap.servers", bootstrap.as_str()));
        let consumer = Consumer::new(ConsumerConfig::from_properties(props).unwrap())
            .await
            .unwrap();
        let refused = TransactionalPipeline::builder(consumer, producer().await, subscription())
            .build()
            .await;
        match refused {
            Err(PipelineError::Config(e)) => assert_eq!(e.key(), key),
            other => panic!("{key}: expected a config error, got {other:?}"),
        }
    }
    // A producer without transactional.id.
    let consumer = Consumer::new(consumer_config(bootstrap, "g"))
        .await
        .unwrap();
    let plain = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers([bootstrap.clone()])
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let refused = TransactionalPipeline::builder(consumer, plain, subscription())
        .build()
        .await;
    assert!(
        matches!(
            refused,
            Err(PipelineError::Transaction(
                TransactionError::NotTransactional
            ))
        ),
        "{refused:?}"
    );
}
