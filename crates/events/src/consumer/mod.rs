//! The consuming side: [`EventConsumer`] runs typed handlers in a consumer group, with retries,
//! dead letters, commits after processing, backpressure and graceful shutdown.
//!
//! - [`handler`]: [`Handler<E>`], async closures, [`RecordContext`], [`HandlerError`].
//! - `router`: routes on the `ce_type` header (only the routed type is decoded); the codec
//!   by `content-type` (`application/avro` through the registry, JSON otherwise).
//! - `driver`: the thin tokio loop — polls the [`kafkit::consumer::Consumer`], feeds
//!   [`crate::consume`]'s processing state and carries out its actions (dispatch in spawned
//!   tasks, dead letters, commits, pause/resume, retry timers).
//! - `transactional`: exactly-once mode ([`ProcessingGuarantee::ExactlyOnce`]) on a
//!   [`kafkit::TransactionalPipeline`] — one transaction per polled batch holding the outputs
//!   handlers publish with [`RecordContext::publish`], the batch's dead letters and its
//!   offsets; an abort re-reads the batch.
//! - `dead_letter_writer`: dead-letter topics created when missing, writes acknowledged.
//! - [`redrive()`]: dead letters back to their original topic.
//! - [`stats`]: [`ConsumerStats`] and the `metrics` facade.
//!
//! ```no_run
//! use kafkit_events::config::EventsConfig;
//! use kafkit_events::consumer::{EventConsumer, HandlerError, RecordContext};
//! use kafkit_events::Event;
//!
//! #[derive(serde::Deserialize)]
//! struct OrderPlaced { order_id: String }
//! impl kafkit_events::EventPayload for OrderPlaced { const EVENT_TYPE: &'static str = "shop.order.placed"; }
//!
//! # async fn demo() -> Result<(), kafkit_events::EventsError> {
//! let config = EventsConfig::from_env().map_err(|e| kafkit_events::EventsError::configuration(e.key(), e.to_string()))?;
//! let consumer = EventConsumer::builder(&config, "billing")
//!     .topics(["shop.orders"])
//!     .on::<OrderPlaced, _, _>(|event: Event<OrderPlaced>, ctx: RecordContext| async move {
//!         println!("{} at {}-{}@{}", event.data.order_id, ctx.topic, ctx.partition, ctx.offset);
//!         Ok::<(), HandlerError>(())
//!     })
//!     .build()
//!     .await?;
//! let shutdown = consumer.shutdown_handle();
//! tokio::spawn(async move {
//!     // In a service: on SIGTERM (`tokio::signal`). Here: after a minute.
//!     tokio::time::sleep(std::time::Duration::from_secs(60)).await;
//!     shutdown.shutdown();
//! });
//! consumer.run().await?;
//! # Ok(()) }
//! ```
//!
//! Exactly-once (consume-transform-produce): the handler publishes its outputs through its
//! [`RecordContext`]; they commit in one transaction with the input's offset, so a
//! `read_committed` reader sees each input's outputs once.
//!
//! ```no_run
//! # use kafkit_events::config::EventsConfig;
//! # use kafkit_events::consumer::{EventConsumer, HandlerError, ProcessingGuarantee, RecordContext};
//! # use kafkit_events::Event;
//! # #[derive(serde::Serialize, serde::Deserialize)]
//! # struct OrderPlaced { order_id: String }
//! # impl kafkit_events::EventPayload for OrderPlaced { const EVENT_TYPE: &'static str = "shop.order.placed"; }
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Invoiced { order_id: String }
//! impl kafkit_events::EventPayload for Invoiced { const EVENT_TYPE: &'static str = "billing.invoiced"; }
//!
//! # async fn demo(config: EventsConfig) -> Result<(), kafkit_events::EventsError> {
//! let consumer = EventConsumer::builder(&config, "billing")
//!     .topics(["shop.orders"])
//!     .guarantee(ProcessingGuarantee::ExactlyOnce)
//!     .transactional_id("billing-0") // one per instance, the same after a restart
//!     .on::<OrderPlaced, _, _>(|event: Event<OrderPlaced>, ctx: RecordContext| async move {
//!         let invoiced = Event::new(Invoiced { order_id: event.data.order_id.clone() }).caused_by(&event);
//!         ctx.publish_to("billing.invoices", invoiced).await?;
//!         Ok::<(), HandlerError>(())
//!     })
//!     .build()
//!     .await?;
//! consumer.run().await?;
//! # Ok(()) }
//! ```

mod dead_letter_writer;
mod driver;
pub mod handler;
pub mod redrive;
mod router;
pub mod stats;
mod transactional;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafkit::admin::Admin;
use kafkit::config::IsolationLevel;
use kafkit::config::{ConsumerConfig, ConsumerConfigBuilder, ProducerConfig};
use kafkit::consumer::{Consumer, GroupSubscription};
use kafkit::producer::Producer;
use kafkit::TransactionalPipeline;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

pub use handler::{
    DefaultHandler, Handler, HandlerError, HandlerFuture, RecordContext, UnhandledRecord,
};
pub use redrive::{redrive, RedriveOptions, RedriveReport};
pub use stats::ConsumerStats;

use crate::cloudevents::DefaultSource;
use crate::config::EventsConfig;
use crate::consume::transactional as budget_rules;
use crate::error::EventsError;
use crate::format::{AvroCodec, JsonCodec, SerdeConfig};
use crate::registry::SchemaRegistry;
use crate::typed::EventPayload;
use crate::Event;
use dead_letter_writer::DeadLetterWriter;
use handler::{FnHandler, OutputEncoder};
use router::{Codecs, Router};
use stats::StatsCell;
use transactional::ExactlyOnce;

/// What delivery the consumer promises.
///
/// ```
/// use kafkit_events::consumer::ProcessingGuarantee;
///
/// assert_eq!(ProcessingGuarantee::default(), ProcessingGuarantee::AtLeastOnce);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProcessingGuarantee {
    /// Every record handled at least once (the default): offsets committed only after the
    /// record and all before it in its partition were handled or dead-lettered.
    #[default]
    AtLeastOnce,
    /// Consume-transform-produce in Kafka transactions, on a
    /// [`kafkit::TransactionalPipeline`]: each polled batch is one transaction holding the
    /// outputs handlers published with [`RecordContext::publish`], the batch's dead letters
    /// and its offsets, so a `read_committed` reader sees every input's outputs (or its dead
    /// letter) exactly once, whatever crashes or aborts happen. Handlers themselves may run
    /// more than once (after an abort the batch is handled again): keep other side effects
    /// idempotent.
    ///
    /// Needs a `transactional.id` ([`EventConsumerBuilder::transactional_id`] or the
    /// producer config's), unique per running instance and stable across its restarts;
    /// [`EventConsumerBuilder::build`] refuses the mode without one
    /// ([`EventsError::Configuration`] naming `transactional.id`). The consumer reads
    /// `read_committed` (an explicit `isolation.level=read_uncommitted` is refused). Retries
    /// stay in place inside the transaction: their worst-case waits must fit in half of
    /// `min(transaction.timeout.ms, max.poll.interval.ms)` (else refused naming
    /// `events.max.retries`), and a batch that would outlive that budget is aborted and
    /// handled again with its attempts carried over. `commit_interval`, `commit_every_n` and
    /// `max_buffered_bytes_per_partition` do not apply (one transaction per polled batch; one
    /// batch buffered): values other than their defaults are refused, naming them.
    ExactlyOnce,
}

/// How the consumer processes: concurrency, buffering, commits, retries, dead letters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// Partitions whose handlers may run at once. Default 16.
    pub max_concurrent_partitions: usize,
    /// Bytes of fetched records held per partition before fetching it pauses. Default 1 MiB.
    pub max_buffered_bytes_per_partition: usize,
    /// Commit at least this often when something was handled. Default 5 s.
    pub commit_interval: Duration,
    /// Commit after this many acknowledged records. Default 100.
    pub commit_every_n: usize,
    /// Retries after the first attempt (`events.max.retries`). Default 3.
    pub max_retries: u32,
    /// First backoff (`events.retry.backoff.ms`). Default 1 s.
    pub initial_backoff: Duration,
    /// Backoff cap (`events.retry.backoff.max.ms`). Default 32 s.
    pub max_backoff: Duration,
    /// Whether failed records go to a dead-letter topic. Default true.
    pub dead_letter_enabled: bool,
    /// Suffix of the dead-letter topic (`<topic><suffix>`). Default `.dlq`.
    pub dead_letter_suffix: String,
    /// Write a dead letter to the source record's partition number. Default true.
    pub dead_letter_keep_partition: bool,
    /// How long a graceful stop waits for running handlers. Default 30 s.
    pub shutdown_timeout: Duration,
    /// `metrics` facade on. Default true.
    pub metrics: bool,
    /// Log lines per failure/dead letter. Default true.
    pub logging: bool,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            max_concurrent_partitions: 16,
            max_buffered_bytes_per_partition: 1 << 20,
            commit_interval: Duration::from_secs(5),
            commit_every_n: 100,
            max_retries: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(32),
            dead_letter_enabled: true,
            dead_letter_suffix: ".dlq".to_owned(),
            dead_letter_keep_partition: true,
            shutdown_timeout: Duration::from_secs(30),
            metrics: true,
            logging: true,
        }
    }
}

impl ConsumerSettings {
    /// The settings an [`EventsConfig`] gives (retry, dead letters, observability).
    pub fn from_config(config: &EventsConfig) -> Self {
        let retry = config.retry();
        let dlq = config.dead_letter();
        let obs = config.observability();
        ConsumerSettings {
            max_retries: retry.max_retries,
            initial_backoff: retry.backoff,
            max_backoff: retry.max_backoff,
            dead_letter_enabled: dlq.enabled,
            dead_letter_suffix: dlq.topic_suffix.clone(),
            metrics: obs.metrics,
            logging: obs.logging,
            ..ConsumerSettings::default()
        }
    }

    /// Refuses what the processing state cannot honour (zero limits, backoffs out of order:
    /// [`ProcessingSettings::validate`](crate::consume::ProcessingSettings::validate)) and an
    /// empty dead-letter suffix.
    fn validate(&self) -> Result<(), EventsError> {
        if self.dead_letter_suffix.is_empty() {
            return Err(EventsError::configuration(
                "events.dlq.topic.suffix",
                "empty: the dead letters would go back to the source topic",
            ));
        }
        driver::processing_settings(self).map(|_| ())
    }
}

/// Stops a running [`EventConsumer::run`] gracefully (cloneable; any clone stops it).
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Asks `run` to stop: no new handler starts, running ones get up to the shutdown
    /// timeout, what is handled is committed, the member leaves the group.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// Builds an [`EventConsumer`].
pub struct EventConsumerBuilder {
    consumer: Result<ConsumerConfigBuilder, EventsError>,
    producer: ProducerConfig,
    group: String,
    topics: Vec<String>,
    registry: Option<SchemaRegistry>,
    serde: SerdeConfig,
    router: Router,
    error: Option<EventsError>,
    settings: ConsumerSettings,
    guarantee: ProcessingGuarantee,
    transactional_id: Option<String>,
    service: Option<crate::config::ServiceIdentity>,
}

impl EventConsumer {
    /// A builder from the events configuration (brokers, security, consumer properties such
    /// as `group.protocol`, registry, retry and dead-letter settings) for group `group_id`.
    pub fn builder(config: &EventsConfig, group_id: &str) -> EventConsumerBuilder {
        let registry = config.schema_registry();
        let (registry, error) = match registry {
            Ok(r) => (r, None),
            Err(e) => (None, Some(e)),
        };
        EventConsumerBuilder {
            consumer: Ok(config.consumer_builder().clone()),
            producer: config.producer().clone(),
            group: group_id.to_owned(),
            topics: Vec::new(),
            registry,
            serde: config.serde().clone(),
            router: Router::default(),
            error,
            settings: ConsumerSettings::from_config(config),
            guarantee: ProcessingGuarantee::AtLeastOnce,
            transactional_id: None,
            service: Some(config.service().clone()),
        }
    }

    /// A builder from explicit client settings: the consumer's (its `group.id` is the
    /// group) and the producer's for dead letters.
    pub fn builder_with(
        consumer: ConsumerConfigBuilder,
        producer: ProducerConfig,
    ) -> EventConsumerBuilder {
        let group = consumer
            .build()
            .ok()
            .and_then(|c| c.group_id().map(str::to_owned))
            .unwrap_or_default();
        EventConsumerBuilder {
            consumer: Ok(consumer),
            producer,
            group,
            topics: Vec::new(),
            registry: None,
            serde: SerdeConfig::default(),
            router: Router::default(),
            error: None,
            settings: ConsumerSettings::default(),
            guarantee: ProcessingGuarantee::AtLeastOnce,
            transactional_id: None,
            service: None,
        }
    }
}

impl EventConsumerBuilder {
    /// The topics to subscribe to.
    pub fn topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics.extend(topics.into_iter().map(Into::into));
        self
    }

    /// The schema registry for Avro records (instead of the configured one).
    pub fn registry(mut self, registry: SchemaRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The serde settings (subject strategies, allocation cap, JSON validation).
    pub fn serde(mut self, serde: SerdeConfig) -> Self {
        self.serde = serde;
        self
    }

    /// Processing settings.
    pub fn settings(mut self, settings: ConsumerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Changes the processing settings in place.
    pub fn configure(mut self, f: impl FnOnce(&mut ConsumerSettings)) -> Self {
        f(&mut self.settings);
        self
    }

    /// The delivery guarantee (default [`ProcessingGuarantee::AtLeastOnce`]).
    pub fn guarantee(mut self, guarantee: ProcessingGuarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// The `transactional.id` of [`ProcessingGuarantee::ExactlyOnce`] (instead of the
    /// producer config's): one per running instance, the same after its restart (the restart
    /// fences the old instance and aborts what it left open). Refused in at-least-once mode.
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        self.transactional_id = Some(id.into());
        self
    }

    /// Any consumer property by its Java name (`group.protocol`, `max.poll.records`, …).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.consumer = match self.consumer {
            Ok(b) => b
                .set(key, value)
                .map_err(|e| EventsError::configuration(key, e.to_string())),
            Err(e) => Err(e),
        };
        self
    }

    /// Handles events of type `E` with an async closure.
    pub fn on<E, F, Fut>(self, handler: F) -> Self
    where
        E: EventPayload + DeserializeOwned,
        F: Fn(Event<E>, RecordContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on_handler::<E>(Arc::new(FnHandler(handler)))
    }

    /// Handles events of type `E` with a [`Handler`].
    pub fn on_handler<E>(mut self, handler: Arc<dyn Handler<E>>) -> Self
    where
        E: EventPayload + DeserializeOwned,
    {
        if let Err(e) = self.router.add::<E>(handler) {
            self.error.get_or_insert(e);
        }
        self
    }

    /// Handles records of every type with no handler of its own (without one they are
    /// acknowledged and counted as skipped).
    pub fn on_default<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(UnhandledRecord, RecordContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.router.set_default(Arc::new(FnHandler(handler)));
        self
    }

    /// Connects: the consumer (auto-commit off: commits follow processing; an explicit
    /// `enable.auto.commit=true` is refused), the dead-letter producer and an admin client.
    /// Exactly-once: the transactional producer instead of the dead-letter one, its
    /// `init_transactions` (fencing an older instance with the same `transactional.id`), the
    /// subscription. Refuses settings that cannot be honoured, naming them.
    pub async fn build(self) -> Result<EventConsumer, EventsError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.settings.validate()?;
        if self.topics.is_empty() {
            return Err(EventsError::configuration("topics", "no topic to consume"));
        }
        if self.router.is_empty() {
            return Err(EventsError::configuration(
                "handlers",
                "no handler registered",
            ));
        }
        if self.group.is_empty() {
            return Err(EventsError::configuration(
                "group.id",
                "a consumer group is needed",
            ));
        }
        let mut builder = self.consumer?;
        // Asked for explicitly (the field is set to true, not left at its default)?
        if builder.clone().enable_auto_commit(true) == builder {
            return Err(EventsError::configuration(
                "enable.auto.commit",
                "true is refused: the event consumer commits an offset only after its record was \
                 handled or dead-lettered (auto-commit would commit records not yet handled)",
            ));
        }
        let exactly_once = self.guarantee == ProcessingGuarantee::ExactlyOnce;
        let transactional_id = self
            .transactional_id
            .clone()
            .or_else(|| self.producer.transactional_id().map(str::to_owned));
        let mut producer_config = self.producer.clone();
        if exactly_once {
            let Some(id) = transactional_id else {
                return Err(EventsError::configuration(
                    "transactional.id",
                    "ProcessingGuarantee::ExactlyOnce commits outputs and offsets in Kafka \
                     transactions, which need a transactional.id (one per running instance, \
                     stable across its restarts): set it with \
                     EventConsumerBuilder::transactional_id",
                ));
            };
            check_exactly_once_settings(&self.settings)?;
            producer_config = producer_config
                .with_transactional_id(id)
                .map_err(|e| EventsError::configuration("transactional.id", e.to_string()))?;
            let read_uncommitted = IsolationLevel::ReadUncommitted;
            if builder.clone().isolation_level(read_uncommitted) == builder {
                return Err(EventsError::configuration(
                    "isolation.level",
                    "read_uncommitted is refused in exactly-once mode: outputs would be made \
                     from input whose own transaction may abort",
                ));
            }
            builder = builder.isolation_level(IsolationLevel::ReadCommitted);
        } else if let Some(id) = transactional_id {
            return Err(EventsError::configuration(
                "transactional.id",
                format!(
                    "{id:?} is set but the guarantee is at-least-once, whose dead-letter \
                     producer sends outside transactions: choose ProcessingGuarantee::ExactlyOnce \
                     or remove it"
                ),
            ));
        }
        builder = builder.group_id(&self.group).enable_auto_commit(false);
        let config: ConsumerConfig = builder
            .build()
            .map_err(|e| EventsError::configuration("consumer", e.to_string()))?;
        let budget = budget_rules::TransactionBudget::new(
            producer_config.transaction_timeout(),
            config.max_poll_interval(),
        );
        if exactly_once {
            let policy = driver::processing_settings(&self.settings)?.retry;
            if !budget.fits(&policy) {
                return Err(EventsError::configuration(
                    "events.max.retries",
                    format!(
                        "in exactly-once mode a record's retries wait inside its transaction: \
                         {:?} at worst, more than the {:?} a batch may take (half of \
                         min(transaction.timeout.ms, max.poll.interval.ms)); lower the \
                         retries or backoffs, or raise transaction.timeout.ms",
                        budget_rules::worst_case_waits(&policy),
                        budget.per_batch
                    ),
                ));
            }
        }
        let client_err = |context: &str| {
            let context = context.to_owned();
            move |source: kafkit::Error| EventsError::Consumer { context, source }
        };
        let consumer = Consumer::new(config.clone())
            .await
            .map_err(client_err("connecting the consumer"))?;
        let producer =
            Producer::new(producer_config)
                .await
                .map_err(client_err(if exactly_once {
                    "connecting the transactional producer"
                } else {
                    "connecting the dead-letter producer"
                }))?;
        let admin = Admin::from_client_config(config.client())
            .await
            .map_err(client_err("connecting the admin client"))?;
        let avro = match &self.registry {
            Some(r) => Some(AvroCodec::new(r.clone(), self.serde.clone())?),
            None => None,
        };
        let codecs = Arc::new(Codecs {
            json: JsonCodec::new(self.serde.clone()),
            avro,
        });
        let suffix = self.settings.dead_letter_suffix.clone();
        let (engine, dlq) = if exactly_once {
            let subscription = GroupSubscription::Topics(self.topics.clone());
            let pipeline = TransactionalPipeline::builder(consumer, producer, subscription)
                .poll_timeout(EXACTLY_ONCE_POLL)
                .build()
                .await
                .map_err(|source| EventsError::Transaction {
                    context: "starting (init_transactions, subscribe)".to_owned(),
                    source,
                })?;
            // The service is the outputs' default `ce_source` (the group without a config).
            let (name, version) = match &self.service {
                Some(s) if !s.name.is_empty() => (s.name.clone(), s.version.clone()),
                _ => (self.group.clone(), String::new()),
            };
            let encoder = Arc::new(OutputEncoder {
                codecs: codecs.clone(),
                source: DefaultSource::new(Bytes::from(name), Bytes::from(version)),
            });
            let eos = ExactlyOnce {
                pipeline: tokio::sync::Mutex::new(Some(pipeline)),
                encoder,
                budget,
            };
            (
                Engine::ExactlyOnce(Box::new(eos)),
                DeadLetterWriter::new(None, admin, suffix),
            )
        } else {
            (
                Engine::AtLeastOnce(Box::new(consumer)),
                DeadLetterWriter::new(Some(producer), admin, suffix),
            )
        };
        let (tx, _) = watch::channel(false);
        Ok(EventConsumer {
            engine,
            dlq,
            group: Arc::from(self.group.as_str()),
            topics: self.topics,
            router: Arc::new(self.router),
            codecs,
            settings: self.settings,
            stats: Arc::new(StatsCell::default()),
            shutdown: Arc::new(tx),
        })
    }
}

/// How long an exactly-once poll waits (the shutdown is seen between polls).
const EXACTLY_ONCE_POLL: Duration = Duration::from_millis(200);

/// Refuses the settings exactly-once mode cannot honour (set to anything but their default).
fn check_exactly_once_settings(settings: &ConsumerSettings) -> Result<(), EventsError> {
    let defaults = ConsumerSettings::default();
    let reason = "does not apply in exactly-once mode (one transaction per polled batch, one \
                  batch buffered): leave it at its default";
    if settings.commit_interval != defaults.commit_interval {
        return Err(EventsError::configuration("commit_interval", reason));
    }
    if settings.commit_every_n != defaults.commit_every_n {
        return Err(EventsError::configuration("commit_every_n", reason));
    }
    if settings.max_buffered_bytes_per_partition != defaults.max_buffered_bytes_per_partition {
        return Err(EventsError::configuration(
            "max_buffered_bytes_per_partition",
            reason,
        ));
    }
    Ok(())
}

/// What runs the records: the at-least-once driver's consumer, or the exactly-once pipeline.
enum Engine {
    AtLeastOnce(Box<Consumer>),
    ExactlyOnce(Box<ExactlyOnce>),
}

/// Typed handlers in a consumer group; see the [module docs](self).
pub struct EventConsumer {
    engine: Engine,
    dlq: Arc<DeadLetterWriter>,
    group: Arc<str>,
    topics: Vec<String>,
    router: Arc<Router>,
    codecs: Arc<Codecs>,
    settings: ConsumerSettings,
    stats: Arc<StatsCell>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl EventConsumer {
    /// A handle that stops [`run`](Self::run) gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// The counters.
    pub fn stats(&self) -> ConsumerStats {
        self.stats.snapshot()
    }

    /// The consumer group.
    pub fn group_id(&self) -> &str {
        &self.group
    }

    /// The client consumer underneath (for `position`, `lag`, `committed`); `None` in
    /// exactly-once mode, where the transactional pipeline owns it (read the lag from
    /// [`stats`](Self::stats)).
    pub fn client(&self) -> Option<&Consumer> {
        match &self.engine {
            Engine::AtLeastOnce(consumer) => Some(&**consumer),
            Engine::ExactlyOnce(_) => None,
        }
    }

    /// The delivery guarantee it runs with.
    pub fn guarantee(&self) -> ProcessingGuarantee {
        match &self.engine {
            Engine::AtLeastOnce(_) => ProcessingGuarantee::AtLeastOnce,
            Engine::ExactlyOnce(_) => ProcessingGuarantee::ExactlyOnce,
        }
    }

    /// Joins the group and handles records until the [`ShutdownHandle`] fires, then stops
    /// gracefully: running handlers drain (up to the shutdown timeout), what was handled is
    /// committed, the member leaves the group. Runs once.
    ///
    /// Exactly-once: one transaction per polled batch; the stop comes between batches (the
    /// last one committed), then the member leaves the group and the transactional producer
    /// closes. A fatal transactional error (fenced by a newer instance with the same
    /// `transactional.id`) stops it with [`EventsError::Transaction`].
    pub async fn run(&self) -> Result<(), EventsError> {
        match &self.engine {
            Engine::AtLeastOnce(consumer) => driver::run(self, consumer).await,
            Engine::ExactlyOnce(eos) => transactional::run(self, eos).await,
        }
    }
}

#[cfg(test)]
mod tests;
