//! Helpers the scenario examples share (not an example itself): configuration from the
//! environment, the catalogue's topics, a time budget for the whole run, bounded waits.
#![allow(dead_code)] // each example uses a part

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit::admin::Admin;
use kafkit::consumer::{Consumer, ConsumerRecord};
use kafkit::TopicPartition;
use kafkit_events::config::EventsConfig;
use kafkit_events::consumer::EventConsumer;
use kafkit_events::topics::{catalogue, ensure_topics, seed_topics, EnsureOptions, TopicSpec};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The settings from the environment (`EventsConfig::from_env`: `KAFKA_BOOTSTRAP_SERVERS`,
/// `SCHEMA_REGISTRY_URL`, `SERVICE_NAME`, …), with `service` as the service name unless
/// `SERVICE_NAME` says otherwise.
pub(crate) fn config(service: &str) -> Result<EventsConfig, BoxError> {
    Ok(EventsConfig::from_env_with(|name| match name {
        "SERVICE_NAME" => std::env::var(name).ok().or(Some(service.to_owned())),
        _ => std::env::var(name).ok(),
    })?)
}

/// `host:port,…` of the configured brokers.
pub(crate) fn bootstrap(config: &EventsConfig) -> String {
    config
        .producer()
        .client()
        .bootstrap_servers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Creates the named topics of the topic catalogue when missing (replication clamped to the
/// cluster's size); returns the admin client.
pub(crate) async fn ensure(config: &EventsConfig, names: &[&str]) -> Result<Admin, BoxError> {
    let admin = Admin::connect(&bootstrap(config)).await?;
    let specs: Vec<TopicSpec> = catalogue()
        .into_iter()
        .chain(seed_topics())
        .filter(|spec| names.contains(&spec.name.as_str()))
        .collect();
    ensure_topics(&admin, &specs, &EnsureOptions::default()).await?;
    Ok(admin)
}

/// A name no earlier run used (consumer groups, run ids).
pub(crate) fn unique(prefix: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{prefix}-{}-{ms}", std::process::id())
}

/// Runs the example's body within `budget`, or fails saying so (examples run in CI: they
/// must end on their own).
pub(crate) async fn bounded<F>(name: &str, budget: Duration, body: F) -> Result<(), BoxError>
where
    F: Future<Output = Result<(), BoxError>>,
{
    let started = Instant::now();
    let result = match tokio::time::timeout(budget, body).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{name}: not done after {} s (are the broker and registry up?)",
            budget.as_secs()
        )
        .into()),
    };
    if result.is_ok() {
        println!("{name}: done in {:.1} s", started.elapsed().as_secs_f64());
    }
    result
}

/// Runs `consumer` (joins its group, handles records) until `done` holds, then stops it
/// gracefully (handlers drain, final commit, leaves the group); fails after `timeout`
/// naming `what`, or when the consumer stops on its own.
pub(crate) async fn run_until(
    consumer: EventConsumer,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&EventConsumer) -> bool,
) -> Result<Arc<EventConsumer>, BoxError> {
    let consumer = Arc::new(consumer);
    let running = tokio::spawn({
        let consumer = consumer.clone();
        async move { consumer.run().await }
    });
    let deadline = Instant::now() + timeout;
    let waited = loop {
        if done(&consumer) {
            break Ok(());
        }
        if running.is_finished() {
            break Err(format!("the consumer stopped while waiting for {what}"));
        }
        if Instant::now() > deadline {
            let s = consumer.stats();
            break Err(format!(
                "gave up after {} s waiting for {what} (consumed {}, processed {}, dead-lettered {})",
                timeout.as_secs(),
                s.consumed,
                s.processed,
                s.dead_lettered
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    consumer.shutdown_handle().shutdown();
    running.await??;
    waited?;
    Ok(consumer)
}

/// The dead letter of the event `event_id`, read from `partition` of the dead-letter topic
/// (dead letters keep the source record's partition number, and its headers — `ce_id` among
/// them — byte for byte).
pub(crate) async fn find_dead_letter(
    config: &EventsConfig,
    topic: &str,
    partition: i32,
    event_id: &str,
) -> Result<ConsumerRecord, BoxError> {
    let consumer = Consumer::new(config.consumer()?).await?;
    let partition = TopicPartition::new(topic, partition);
    consumer.assign([partition.clone()])?;
    consumer.seek_to_beginning(&[partition])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let is_it = |r: &ConsumerRecord| {
        r.headers
            .iter()
            .any(|h| h.key.as_ref() == b"ce_id" && h.value.as_deref() == Some(event_id.as_bytes()))
    };
    let found = loop {
        if Instant::now() > deadline {
            break None;
        }
        let records = consumer.poll(Duration::from_millis(200)).await?;
        if let Some(record) = records.into_iter().find(is_it) {
            break Some(record);
        }
    };
    consumer.close(Duration::from_secs(5)).await?;
    found.ok_or_else(|| format!("no dead letter of event {event_id} on {topic}").into())
}
