//! Workflow events (the workflow event producer's `WorkflowEvent`): a workflow run was
//! triggered, started, completed or failed, from an orchestrator, with a free-form payload.
//!
//! JSON, validated twice: [`workflow_event`] refuses empty ids and environment with a typed
//! error before anything is built, and the JSON Schema (`schemas/workflow_event.schema.json`)
//! is checked by the JSON codec before the event is sent.

use serde::{Deserialize, Serialize};

use crate::envelope::Event;
use crate::error::{EventsError, ValidationIssue};
use crate::typed::EventPayload;

/// What happened to the workflow run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum WorkflowEventType {
    /// The run was requested.
    WorkflowTriggered,
    /// The run began.
    WorkflowStarted,
    /// The run finished successfully.
    WorkflowCompleted,
    /// The run failed.
    WorkflowFailed,
    /// A task of the run began.
    TaskStarted,
    /// A task of the run finished.
    TaskCompleted,
    /// A task of the run failed.
    TaskFailed,
}

/// Who emitted the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum EventSource {
    /// Apache Airflow.
    Airflow,
    /// Apache DolphinScheduler.
    Dolphinscheduler,
    /// A FastAPI (or other HTTP) service.
    Fastapi,
    /// A command-line tool.
    Cli,
    /// A person.
    Manual,
    /// Anything else.
    Other,
}

/// The event's free-form data (`payload.data`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowEventPayload {
    /// Any JSON object.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Where the event comes from (`metadata.environment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowEventMetadata {
    /// `dev`, `staging`, `prod`, ….
    pub environment: String,
}

/// A workflow event (`workflow.event`, topic `workflow-events`, key the workflow id, so a
/// workflow's runs stay in order). The specific type is [`WorkflowEvent::event_type`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowEvent {
    /// What happened.
    pub event_type: WorkflowEventType,
    /// Who says so.
    pub source: EventSource,
    /// The workflow (DAG) id.
    pub workflow_id: String,
    /// The run id.
    pub workflow_run_id: String,
    /// Free-form data.
    pub payload: WorkflowEventPayload,
    /// Environment.
    pub metadata: WorkflowEventMetadata,
}

impl EventPayload for WorkflowEvent {
    const EVENT_TYPE: &'static str = "workflow.event";
    const SCHEMA_VERSION: Option<&'static str> = Some("1");
    fn default_topic() -> Option<&'static str> {
        Some("workflow-events")
    }
    fn key(&self) -> Option<String> {
        Some(self.workflow_id.clone())
    }
    fn json_schema() -> Option<&'static str> {
        Some(include_str!("../../schemas/workflow_event.schema.json"))
    }
}

/// A validated workflow event: `workflow_id`, `workflow_run_id` and `environment` must not be
/// blank ([`EventsError::SchemaValidation`] listing each blank field otherwise).
///
/// ```
/// use kafkit_events::catalog::workflow::{workflow_event, EventSource, WorkflowEventType};
///
/// let data = serde_json::json!({"status": "success", "count": 100});
/// let event = workflow_event(WorkflowEventType::WorkflowCompleted, EventSource::Airflow, "example_dag", "run_123", data.as_object().cloned().unwrap_or_default(), "dev")?;
/// assert_eq!(event.data.payload.data["count"], 100);
/// assert!(workflow_event(WorkflowEventType::WorkflowCompleted, EventSource::Airflow, "", "run_1", Default::default(), "dev").is_err());
/// # Ok::<(), kafkit_events::error::EventsError>(())
/// ```
pub fn workflow_event(
    event_type: WorkflowEventType,
    source: EventSource,
    workflow_id: impl Into<String>,
    workflow_run_id: impl Into<String>,
    data: serde_json::Map<String, serde_json::Value>,
    environment: impl Into<String>,
) -> Result<Event<WorkflowEvent>, EventsError> {
    let event = WorkflowEvent {
        event_type,
        source,
        workflow_id: workflow_id.into(),
        workflow_run_id: workflow_run_id.into(),
        payload: WorkflowEventPayload { data },
        metadata: WorkflowEventMetadata {
            environment: environment.into(),
        },
    };
    let issues: Vec<ValidationIssue> = [
        ("/workflow_id", &event.workflow_id),
        ("/workflow_run_id", &event.workflow_run_id),
        ("/metadata/environment", &event.metadata.environment),
    ]
    .into_iter()
    .filter(|(_, value)| value.trim().is_empty())
    .map(|(path, _)| ValidationIssue {
        instance_path: path.to_owned(),
        schema_path: String::new(),
        message: "must not be blank".to_owned(),
    })
    .collect();
    if !issues.is_empty() {
        return Err(EventsError::SchemaValidation {
            topic: WorkflowEvent::default_topic()
                .unwrap_or_default()
                .to_owned(),
            event_type: WorkflowEvent::EVENT_TYPE.to_owned(),
            issues,
            record: None,
        });
    }
    Ok(Event::new(event))
}
