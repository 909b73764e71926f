//! Ready-made event types from the in-house SDKs kafkit-events replaces, each a documented
//! [`EventPayload`](crate::typed::EventPayload) with its event type name, default topic, key
//! (the entity's id, so one entity's events stay in order on one partition) and schema, and
//! a helper constructor like the SDK's.
//!
//! | module | SDK | format | default topic |
//! | --- | --- | --- | --- |
//! | [`data`] | platform producer library: data ingestion, data quality | Avro | `data-ingestion`, `data-quality` |
//! | [`system`] | platform producer library: service health | Avro | `system-health` |
//! | [`audit`] | platform producer library: API calls | Avro | `audit-api-calls` |
//! | [`workflow`] | workflow event producer | JSON (+ JSON Schema) | `workflow-events` |
//! | [`inspection`] | chip-quality streaming: inspection lifecycle | Avro | `chip-quality.inspection.events` |
//! | [`employee`] | Olive events bus: employee created/updated/deleted | JSON (+ JSON Schema) | `employees.events` |
//!
//! The Avro schemas are the `.avsc` files in the crate's `schemas/` directory. The envelope
//! fields some SDK schemas repeat inside the payload (`eventId`, `timestamp`, `source`) travel
//! as CloudEvents headers instead (`ce_id`, `ce_time`, `ce_source`), once per record.
//!
//! ```
//! use kafkit_events::catalog::data::{data_ingestion, IngestionStatus};
//! use kafkit_events::typed::EventPayload;
//!
//! let event = data_ingestion("commodity_prices", 10_000, 1_024_000, "s3://bucket/prices.parquet", IngestionStatus::Success);
//! assert_eq!(event.envelope.event_type, "data.ingestion");
//! assert_eq!(event.key().as_deref(), Some("commodity_prices"));
//! ```

pub mod audit;
pub mod data;
pub mod employee;
pub mod inspection;
pub mod system;
pub mod workflow;

#[cfg(test)]
mod tests;
