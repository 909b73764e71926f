//! Inspection lifecycle events of the chip-quality platform (its
//! `publish_inspection_created` / `publish_inspection_completed`): several event types on one
//! topic, `chip-quality.inspection.events`, Avro (`schemas/inspection.avsc`), keyed by the
//! inspection id.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::envelope::Event;
use crate::typed::{AvroSchemaSource, EventPayload};

/// What happened to the inspection (Avro enum `InspectionEventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InspectionEventType {
    /// New inspection initiated.
    InspectionCreated,
    /// Processing began.
    InspectionStarted,
    /// Finished successfully.
    InspectionCompleted,
    /// Encountered an error.
    InspectionFailed,
    /// Defects found.
    DefectDetected,
    /// Quality score calculated.
    QualityAssessed,
}

/// One defect found by an inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defect {
    /// Kind (`scratch`, …).
    pub defect_type: String,
    /// Severity (`minor`, …).
    pub severity: String,
    /// Detector confidence from 0 to 1.
    pub confidence: f64,
    /// Where on the chip.
    pub location: Option<String>,
}

/// An inspection event (`chip_quality.inspection`; the specific type is
/// [`InspectionEvent::event_type`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionEvent {
    /// What happened.
    pub event_type: InspectionEventType,
    /// The inspection.
    pub inspection_id: String,
    /// Its manufacturing batch.
    pub batch_id: String,
    /// The chip inspected.
    pub chip_id: String,
    /// Kind of inspection (`visual`, …).
    pub inspection_type: String,
    /// Quality score from 0 to 1, once assessed.
    pub quality_score: Option<f64>,
    /// Defects found.
    pub defects: Vec<Defect>,
    /// Why it failed, for `INSPECTION_FAILED`.
    pub error: Option<String>,
    /// Free-form details (`{"station": "A1"}`).
    pub metadata: HashMap<String, String>,
}

impl EventPayload for InspectionEvent {
    const EVENT_TYPE: &'static str = "chip_quality.inspection";
    const SCHEMA_VERSION: Option<&'static str> = Some("1");
    fn default_topic() -> Option<&'static str> {
        Some("chip-quality.inspection.events")
    }
    fn key(&self) -> Option<String> {
        Some(self.inspection_id.clone())
    }
    fn avro_schema() -> Option<AvroSchemaSource> {
        Some(AvroSchemaSource::avsc(include_str!(
            "../../schemas/inspection.avsc"
        )))
    }
}

fn inspection(
    event_type: InspectionEventType,
    inspection_id: impl Into<String>,
    batch_id: impl Into<String>,
    chip_id: impl Into<String>,
    inspection_type: impl Into<String>,
) -> InspectionEvent {
    InspectionEvent {
        event_type,
        inspection_id: inspection_id.into(),
        batch_id: batch_id.into(),
        chip_id: chip_id.into(),
        inspection_type: inspection_type.into(),
        quality_score: None,
        defects: Vec::new(),
        error: None,
        metadata: HashMap::new(),
    }
}

/// An `INSPECTION_CREATED` event.
///
/// ```
/// use kafkit_events::catalog::inspection::inspection_created;
///
/// let event = inspection_created("INS-001", "BATCH-001", "CHIP-001", "visual", [("station", "A1")]);
/// assert_eq!(event.data.metadata["station"], "A1");
/// ```
pub fn inspection_created<'a>(
    inspection_id: impl Into<String>,
    batch_id: impl Into<String>,
    chip_id: impl Into<String>,
    inspection_type: impl Into<String>,
    metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Event<InspectionEvent> {
    let mut event = inspection(
        InspectionEventType::InspectionCreated,
        inspection_id,
        batch_id,
        chip_id,
        inspection_type,
    );
    event.metadata = metadata
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Event::new(event)
}

/// An `INSPECTION_COMPLETED` event with its score and defects.
pub fn inspection_completed(
    inspection_id: impl Into<String>,
    batch_id: impl Into<String>,
    chip_id: impl Into<String>,
    inspection_type: impl Into<String>,
    quality_score: f64,
    defects: Vec<Defect>,
) -> Event<InspectionEvent> {
    let mut event = inspection(
        InspectionEventType::InspectionCompleted,
        inspection_id,
        batch_id,
        chip_id,
        inspection_type,
    );
    event.quality_score = Some(quality_score);
    event.defects = defects;
    Event::new(event)
}

/// An `INSPECTION_FAILED` event.
pub fn inspection_failed(
    inspection_id: impl Into<String>,
    batch_id: impl Into<String>,
    chip_id: impl Into<String>,
    inspection_type: impl Into<String>,
    error: impl Into<String>,
) -> Event<InspectionEvent> {
    let mut event = inspection(
        InspectionEventType::InspectionFailed,
        inspection_id,
        batch_id,
        chip_id,
        inspection_type,
    );
    event.error = Some(error.into());
    Event::new(event)
}
