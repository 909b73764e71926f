//! Every catalogue type against its own schema.

use std::time::Duration;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{from_value, to_value};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::audit::api_call;
use super::data::{data_ingestion, data_quality, IngestionStatus, QualityResult};
use super::employee::{employee_created, Employee, EmployeeCreated, EmployeeDeleted};
use super::inspection::{inspection_completed, inspection_created, Defect};
use super::system::{service_health, HealthStatus};
use super::workflow::{workflow_event, EventSource, WorkflowEvent, WorkflowEventType};
use crate::typed::EventPayload;

/// Encodes with the type's `.avsc` and decodes back into the type.
fn avro_round_trip<T>(payload: &T)
where
    T: EventPayload + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    // apache-avro fixes its allocation cap at first use, process-wide: take the codecs' value
    // so the format tests in this process still get theirs.
    crate::format::set_max_allocation_bytes(crate::format::DEFAULT_MAX_ALLOCATION_BYTES)
        .expect("the codecs' cap");
    let schema = T::avro_schema()
        .expect("an avro schema")
        .parse()
        .expect("the .avsc parses");
    let value = to_value(payload).expect("to value");
    let writer = GenericDatumWriter::builder(&schema)
        .build()
        .expect("writer");
    let bytes = writer
        .write_value_to_vec(value)
        .expect("matches its schema");
    let reader = GenericDatumReader::builder(&schema)
        .build()
        .expect("reader");
    let back = reader
        .read_value(&mut bytes.as_slice())
        .expect("reads back");
    let decoded: T = from_value(&back).expect("into the struct");
    assert_eq!(&decoded, payload);
    assert!(T::default_topic().is_some());
    assert!(payload.key().is_some());
}

fn json_valid<T: EventPayload + Serialize>(payload: &T) -> bool {
    let schema: serde_json::Value =
        serde_json::from_str(T::json_schema().expect("a json schema")).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    validator.is_valid(&serde_json::to_value(payload).expect("to json"))
}

#[test]
fn avro_types_match_their_schemas() {
    let ingestion = data_ingestion("prices", 10, 1_000, "s3://b/p", IngestionStatus::Partial)
        .map(|d| d.with_metadata("source", "external_api"));
    avro_round_trip(&ingestion.data);
    let mut quality = data_quality(
        "prices",
        "completeness",
        "nulls",
        QualityResult::Warning,
        0.9,
        1,
        10,
    );
    quality.data.message = Some("ok-ish".into());
    avro_round_trip(&quality.data);
    avro_round_trip(
        &service_health(
            "svc",
            "ns",
            HealthStatus::Degraded,
            Duration::from_millis(25),
            0.01,
        )
        .data,
    );
    avro_round_trip(
        &api_call(
            None,
            None,
            "svc",
            "/api",
            "GET",
            200,
            Duration::from_millis(5),
        )
        .data,
    );
    let call = api_call(
        Some("u1"),
        Some("10.0.0.1".parse().expect("ip")),
        "svc",
        "/api",
        "POST",
        201,
        Duration::from_millis(5),
    );
    assert_eq!(call.key().as_deref(), Some("u1"));
    avro_round_trip(&call.data);
    avro_round_trip(&inspection_created("I1", "B1", "C1", "visual", [("station", "A1")]).data);
    let defects = vec![Defect {
        defect_type: "scratch".into(),
        severity: "minor".into(),
        confidence: 0.85,
        location: Some("corner".into()),
    }];
    avro_round_trip(&inspection_completed("I1", "B1", "C1", "visual", 0.95, defects).data);
}

#[test]
fn json_types_match_their_schemas() {
    let data = serde_json::json!({"status": "success"});
    let event = workflow_event(
        WorkflowEventType::WorkflowTriggered,
        EventSource::Fastapi,
        "dag",
        "run_1",
        data.as_object().cloned().unwrap_or_default(),
        "prod",
    )
    .expect("valid");
    assert!(json_valid(&event.data));
    assert_eq!(event.key().as_deref(), Some("dag"));
    let round: WorkflowEvent =
        serde_json::from_value(serde_json::to_value(&event.data).expect("json")).expect("back");
    assert_eq!(round, event.data);

    let employee = Employee {
        employee_id: "emp_1".into(),
        email: "a@b.c".into(),
        first_name: "A".into(),
        last_name: "B".into(),
        department: None,
    };
    let created = employee_created(employee.clone(), "hr", "1.0.0");
    assert!(json_valid(&created.data));
    let json = serde_json::to_value(&created.data).expect("json");
    assert_eq!(json["action"], "CREATED");
    let back: EmployeeCreated = serde_json::from_value(json.clone()).expect("same type");
    assert_eq!(back, created.data);
    assert!(serde_json::from_value::<EmployeeDeleted>(json).is_err());
    let bad = EmployeeCreated(Employee {
        email: "not an address".into(),
        ..employee
    });
    assert!(!json_valid(&bad));
}

#[test]
fn blank_workflow_fields_are_refused() {
    let err = workflow_event(
        WorkflowEventType::WorkflowFailed,
        EventSource::Airflow,
        " ",
        "",
        Default::default(),
        "dev",
    )
    .expect_err("blank ids");
    let text = err.to_string();
    assert!(
        text.contains("/workflow_id") && text.contains("/workflow_run_id"),
        "{text}"
    );
}
