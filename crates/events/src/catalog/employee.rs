//! Employee events of the Olive events bus (`create_employee_event`): one payload type per
//! event type, so handlers (#12) dispatch on `ce_type`: [`EmployeeCreated`]
//! (`employee.created`), [`EmployeeUpdated`] (`employee.updated`), [`EmployeeDeleted`]
//! (`employee.deleted`). JSON, checked against `schemas/employee.schema.json` before sending;
//! topic `employees.events`, key the employee id.

use serde::{Deserialize, Serialize};

use crate::envelope::Event;
use crate::typed::EventPayload;

/// What the three employee events carry. `action` is written by each event type (it is in
/// the JSON so that consumers without the CloudEvents headers can still tell them apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Employee {
    /// The employee's id.
    pub employee_id: String,
    /// E-mail address.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Department, if any.
    pub department: Option<String>,
}

macro_rules! employee_event {
    ($name:ident, $type:literal, $action:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "Tagged", into = "Tagged")]
        pub struct $name(pub Employee);

        impl EventPayload for $name {
            const EVENT_TYPE: &'static str = $type;
            const SCHEMA_VERSION: Option<&'static str> = Some("1");
            fn default_topic() -> Option<&'static str> {
                Some("employees.events")
            }
            fn key(&self) -> Option<String> {
                Some(self.0.employee_id.clone())
            }
            fn json_schema() -> Option<&'static str> {
                Some(include_str!("../../schemas/employee.schema.json"))
            }
        }

        impl From<$name> for Tagged {
            fn from(event: $name) -> Tagged {
                Tagged {
                    action: $action.to_owned(),
                    employee: event.0,
                }
            }
        }

        impl TryFrom<Tagged> for $name {
            type Error = String;
            fn try_from(tagged: Tagged) -> Result<Self, String> {
                if tagged.action == $action {
                    Ok($name(tagged.employee))
                } else {
                    Err(format!("action `{}` is not `{}`", tagged.action, $action))
                }
            }
        }
    };
}

/// The wire shape: the employee's fields plus `action`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[doc(hidden)]
pub struct Tagged {
    action: String,
    #[serde(flatten)]
    employee: Employee,
}

employee_event!(
    EmployeeCreated,
    "employee.created",
    "CREATED",
    "An employee was created (`employee.created`)."
);
employee_event!(
    EmployeeUpdated,
    "employee.updated",
    "UPDATED",
    "An employee was updated (`employee.updated`)."
);
employee_event!(
    EmployeeDeleted,
    "employee.deleted",
    "DELETED",
    "An employee was deleted (`employee.deleted`)."
);

/// An `employee.created` event published by `source_service` at `source_version`.
///
/// ```
/// use kafkit_events::catalog::employee::{employee_created, Employee};
///
/// let event = employee_created(Employee {
///     employee_id: "emp_123".into(),
///     email: "john@example.com".into(),
///     first_name: "John".into(),
///     last_name: "Doe".into(),
///     department: Some("Engineering".into()),
/// }, "hr-service", "1.0.0");
/// assert_eq!(event.envelope.event_type, "employee.created");
/// assert_eq!(event.envelope.source, "hr-service");
/// ```
pub fn employee_created(
    employee: Employee,
    source_service: &str,
    source_version: &str,
) -> Event<EmployeeCreated> {
    Event::new(EmployeeCreated(employee)).with_source(source_service, Some(source_version))
}

/// An `employee.updated` event.
pub fn employee_updated(
    employee: Employee,
    source_service: &str,
    source_version: &str,
) -> Event<EmployeeUpdated> {
    Event::new(EmployeeUpdated(employee)).with_source(source_service, Some(source_version))
}

/// An `employee.deleted` event.
pub fn employee_deleted(
    employee: Employee,
    source_service: &str,
    source_version: &str,
) -> Event<EmployeeDeleted> {
    Event::new(EmployeeDeleted(employee)).with_source(source_service, Some(source_version))
}
