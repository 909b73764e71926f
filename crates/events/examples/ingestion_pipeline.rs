//! The platform producer library's data events, as a batch ingestion job would publish them
//! (the seed's "background job"): one `data.ingestion` event per file loaded (Avro, topic
//! `data-ingestion`), a failed load recorded with its error, then the data-quality checks of
//! every dataset (`data.quality`, topic `data-quality`) published as one batch with
//! `publish_batch` and a key function: the key is the dataset, so each dataset's checks land
//! on one partition, in order.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 SCHEMA_REGISTRY_URL=http://127.0.0.1:8081 \
//!   cargo run -p kafkit-events --example ingestion_pipeline
//! ```

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::BoxError;
use kafkit_events::catalog::data::{
    data_ingestion, data_quality, DataQuality, IngestionStatus, QualityResult,
};
use kafkit_events::producer::EventProducer;
use kafkit_events::Event;

/// Rows and bytes read from a file; `None`: the load failed.
type Loaded = Option<(i64, i64)>;

/// The files the job loads: dataset, location, what was read.
const FILES: [(&str, &str, Loaded); 4] = [
    (
        "commodity_prices",
        "s3://landing/prices/2026-12-04.parquet",
        Some((10_000, 1_024_000)),
    ),
    (
        "weather_stations",
        "s3://landing/weather/2026-12-04.parquet",
        Some((2_400, 310_000)),
    ),
    (
        "shipping_routes",
        "s3://landing/routes/2026-12-04.parquet",
        Some((880, 96_000)),
    ),
    (
        "vendor_invoices",
        "s3://landing/invoices/2026-12-04.csv",
        None,
    ),
];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    common::bounded("ingestion_pipeline", Duration::from_secs(60), run()).await
}

async fn run() -> Result<(), BoxError> {
    let config = common::config("ingestion-worker")?;
    let admin = common::ensure(&config, &["data-ingestion", "data-quality"]).await?;
    admin.close(Duration::from_secs(5)).await;
    let producer = EventProducer::new(&config).await?;
    let run_id = common::unique("ingestion-run");

    // 1. One ingestion event per file, as each load finishes. A failed load is an event too:
    //    status FAILURE, nothing counted, the error in the metadata.
    println!("ingestion events:");
    for (dataset, location, loaded) in FILES {
        let event = match loaded {
            Some((rows, bytes)) => {
                data_ingestion(dataset, rows, bytes, location, IngestionStatus::Success)
            }
            None => data_ingestion(dataset, 0, 0, location, IngestionStatus::Failure).map(|d| {
                d.with_format("csv")
                    .with_metadata("error", "header row missing")
            }),
        }
        .map(|d| d.with_metadata("source", "external_api"))
        .with_correlation_id(&run_id);
        let status = event.data.status;
        let at = producer.publish(event).await?;
        println!(
            "  {dataset:<17} {status:<8?} → {}-{}@{}",
            at.topic, at.partition, at.offset
        );
    }

    // 2. The quality checks of the datasets that loaded: three checks each, one batch. All
    //    are queued before any outcome is awaited; the key function keeps a dataset's checks
    //    on one partition.
    let checks: Vec<Event<DataQuality>> = FILES
        .iter()
        .filter_map(|(dataset, _, loaded)| loaded.map(|(rows, _)| (*dataset, rows)))
        .flat_map(|(dataset, rows)| {
            let bad = rows / 500; // a few null rows in every dataset
            [
                ("completeness", "null_check", bad),
                ("uniqueness", "primary_key_check", 0),
                ("freshness", "max_age_check", 0),
            ]
            .map(|(check_type, check_name, failed)| {
                let score = 1.0 - failed as f64 / rows as f64;
                let result = if failed == 0 {
                    QualityResult::Pass
                } else {
                    QualityResult::Warning
                };
                data_quality(dataset, check_type, check_name, result, score, failed, rows)
                    .with_correlation_id(&run_id)
            })
        })
        .collect();
    let sent = checks.len();
    let outcomes = producer
        .publish_batch(checks, |event: &Event<DataQuality>| {
            Some(event.data.dataset_name.clone())
        })
        .await;
    // Partition and offsets per dataset: one partition each, offsets rising (batch order).
    let mut by_dataset: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    let order: Vec<&str> = FILES
        .iter()
        .filter(|(_, _, loaded)| loaded.is_some())
        .flat_map(|(dataset, _, _)| [*dataset; 3])
        .collect();
    for (dataset, outcome) in order.iter().zip(outcomes) {
        let at = outcome?;
        by_dataset
            .entry((*dataset).to_owned())
            .or_default()
            .push((at.partition, at.offset));
    }
    println!("quality checks ({sent} in one batch, key = dataset):");
    for (dataset, placed) in &by_dataset {
        let partitions: Vec<i32> = placed.iter().map(|(p, _)| *p).collect();
        let offsets: Vec<i64> = placed.iter().map(|(_, o)| *o).collect();
        println!(
            "  {dataset:<17} → data-quality-{} at offsets {offsets:?}",
            partitions[0]
        );
        if partitions.iter().any(|p| *p != partitions[0])
            || !offsets.windows(2).all(|w| w[0] < w[1])
        {
            return Err(format!("{dataset}'s checks are not on one partition in order").into());
        }
    }

    // 3. Flush within a deadline (an error if something is still unsent), stats, close.
    producer.flush(Duration::from_secs(10)).await?;
    let stats = producer.stats();
    println!(
        "producer stats: delivered {}, errors {}, {} bytes",
        stats.delivered(),
        stats.errors(),
        stats.total_bytes_sent
    );
    for (topic, counts) in &stats.by_topic {
        println!("  {topic:<15} sent {}, {} bytes", counts.sent, counts.bytes);
    }
    producer.close().await?;
    Ok(())
}
