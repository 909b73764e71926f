//! Data events: ingestion and quality checks (the platform producer library's
//! `produce_data_ingestion_event` / `produce_data_quality_event`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::envelope::Event;
use crate::typed::{AvroSchemaSource, EventPayload};

/// Outcome of an ingestion (Avro enum `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IngestionStatus {
    /// Every record landed.
    Success,
    /// Nothing landed.
    Failure,
    /// Some records landed.
    Partial,
}

/// Data ingested into the platform (`data.ingestion`, topic `data-ingestion`, key the
/// dataset name; schema `schemas/data_ingestion.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataIngestion {
    /// The dataset.
    pub dataset_name: String,
    /// Records ingested.
    pub record_count: i64,
    /// Bytes ingested.
    pub size_bytes: i64,
    /// File format (`parquet`, …).
    pub format: String,
    /// Where the data is (`s3://…`).
    pub location: String,
    /// Outcome.
    pub status: IngestionStatus,
    /// Free-form details (`{"source": "external_api"}`, an error message, …).
    pub metadata: HashMap<String, String>,
}

impl DataIngestion {
    /// Sets the file format (default `parquet`).
    pub fn with_format(mut self, format: impl Into<String>) -> Self {
        self.format = format.into();
        self
    }

    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

impl EventPayload for DataIngestion {
    const EVENT_TYPE: &'static str = "data.ingestion";
    const SCHEMA_VERSION: Option<&'static str> = Some("1");
    fn default_topic() -> Option<&'static str> {
        Some("data-ingestion")
    }
    fn key(&self) -> Option<String> {
        Some(self.dataset_name.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(include_str!(
            "../../schemas/data_ingestion.avsc"
        )))
    }
}

/// A data ingestion event (format `parquet`, no metadata; see [`DataIngestion`]'s `with_*`
/// through [`Event::map`] or build the struct directly for more).
pub fn data_ingestion(
    dataset_name: impl Into<String>,
    record_count: i64,
    size_bytes: i64,
    location: impl Into<String>,
    status: IngestionStatus,
) -> Event<DataIngestion> {
    Event::new(DataIngestion {
        dataset_name: dataset_name.into(),
        record_count,
        size_bytes,
        format: "parquet".to_owned(),
        location: location.into(),
        status,
        metadata: HashMap::new(),
    })
}

/// Result of a quality check (Avro enum `QualityResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QualityResult {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
    /// Passed with a warning.
    Warning,
}

/// A data quality check result (`data.quality`, topic `data-quality`, key the dataset name;
/// schema `schemas/data_quality.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataQuality {
    /// The dataset checked.
    pub dataset_name: String,
    /// Kind of check (`completeness`, …).
    pub check_type: String,
    /// The check (`null_check`, …).
    pub check_name: String,
    /// Outcome.
    pub result: QualityResult,
    /// Score from 0 to 1.
    pub score: f64,
    /// Records that failed.
    pub failed_records: i64,
    /// Records checked.
    pub total_records: i64,
    /// A human-readable message.
    pub message: Option<String>,
}

impl EventPayload for DataQuality {
    const EVENT_TYPE: &'static str = "data.quality";
    const SCHEMA_VERSION: Option<&'static str> = Some("1");
    fn default_topic() -> Option<&'static str> {
        Some("data-quality")
    }
    fn key(&self) -> Option<String> {
        Some(self.dataset_name.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(include_str!(
            "../../schemas/data_quality.avsc"
        )))
    }
}

/// A data quality event.
///
/// ```
/// use kafkit_events::catalog::data::{data_quality, QualityResult};
///
/// let event = data_quality("prices", "completeness", "null_check", QualityResult::Pass, 0.99, 10, 10_000);
/// assert_eq!(event.data.failed_records, 10);
/// ```
pub fn data_quality(
    dataset_name: impl Into<String>,
    check_type: impl Into<String>,
    check_name: impl Into<String>,
    result: QualityResult,
    score: f64,
    failed_records: i64,
    total_records: i64,
) -> Event<DataQuality> {
    Event::new(DataQuality {
        dataset_name: dataset_name.into(),
        check_type: check_type.into(),
        check_name: check_name.into(),
        result,
        score,
        failed_records,
        total_records,
        message: None,
    })
}
