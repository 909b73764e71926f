//! Access control lists, with the Java AdminClient's model and names: create bindings
//! (CreateAcls), describe the bindings a filter matches (DescribeAcls) and delete them
//! (DeleteAcls). Each call is one request to any broker; with KRaft the broker hands
//! creations and deletions to the controller, and every broker applies them when it reads the
//! metadata log, so a binding just created may take a moment to show in `describe_acls` or to
//! take effect on another broker.
//!
//! A broker without an authorizer (`authorizer.class.name` unset) refuses every ACL call with
//! [`ResponseError::SecurityDisabled`]; a caller without `ALTER` (create, delete) or
//! `DESCRIBE` (describe) on the cluster gets [`ResponseError::ClusterAuthorizationFailed`].
//!
//! ```no_run
//! # async fn example() -> Result<(), kafkit::Error> {
//! use kafkit::admin::{
//!     AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermissionType, Admin,
//!     PatternType, ResourcePattern, ResourceType,
//! };
//!
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! let deny = AclBinding::new(
//!     ResourcePattern::new(ResourceType::Topic, "payments", PatternType::Literal),
//!     AccessControlEntry::new("User:bob", "*", AclOperation::Write, AclPermissionType::Deny),
//! );
//! for result in admin.create_acls(&[deny.clone()]).await? {
//!     result?;
//! }
//! let on_payments = admin.describe_acls(&deny.to_filter()).await?;
//! assert!(on_payments.contains(&deny));
//! let deleted = admin.delete_acls(&[deny.to_filter()]).await?;
//! println!("deleted {:?}", deleted[0]);
//! # Ok(())
//! # }
//! ```

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::Admin;
use crate::error::{Error, Result};
use crate::state::admin_retry::Route;

/// Declares a Kafka code enum: named variants with their protocol codes, and `Unknown(i8)` for
/// any other code a broker sends.
macro_rules! acl_code_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code kafkit does not name (a newer broker's, or Kafka's `UNKNOWN` = 0); sent
            /// back as is.
            Unknown(i8),
        }

        impl $name {
            /// The protocol code.
            ///
            /// ```
            #[doc = concat!("use kafkit::admin::", stringify!($name), ";")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::from_code(-7).code(), -7);")]
            /// ```
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                    $name::Unknown(code) => code,
                }
            }

            /// The value of a protocol code (any code: `Unknown` for one kafkit does not name).
            ///
            /// ```
            #[doc = concat!("use kafkit::admin::", stringify!($name), ";")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::from_code(1), ", stringify!($name), "::Any);")]
            /// ```
            pub fn from_code(code: i8) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }
        }
    };
}

acl_code_enum! {
    /// The kind of resource an ACL is about (Java's `ResourceType`).
    ResourceType {
        /// Any type (filters only).
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster (its name is `kafka-cluster`).
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user (for `CreateTokens` / `DescribeTokens` on behalf of it).
        User = 7,
    }
}

acl_code_enum! {
    /// How a resource name matches (Java's `PatternType`).
    PatternType {
        /// Any pattern type, each name taken literally (filters only).
        Any = 1,
        /// Every binding that applies to the named resource: literal, wildcard `*` and
        /// prefixes of the name (filters only).
        Match = 2,
        /// The name itself (`*`: every resource of the type).
        Literal = 3,
        /// Every resource whose name starts with the name.
        Prefixed = 4,
    }
}

acl_code_enum! {
    /// What an ACL allows or denies (Java's `AclOperation`).
    AclOperation {
        /// Any operation (filters only).
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read (fetch, join a group, commit offsets).
        Read = 3,
        /// Write (produce).
        Write = 4,
        /// Create (topics).
        Create = 5,
        /// Delete (topics, records, groups).
        Delete = 6,
        /// Alter (partitions, ACLs on the cluster).
        Alter = 7,
        /// Describe (metadata, offsets, groups).
        Describe = 8,
        /// Inter-broker and controller requests.
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent produce (cluster).
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
}

acl_code_enum! {
    /// Whether an ACL allows or denies (Java's `AclPermissionType`). A deny wins over an
    /// allow.
    AclPermissionType {
        /// Either (filters only).
        Any = 1,
        /// Denies the operation.
        Deny = 2,
        /// Allows the operation.
        Allow = 3,
    }
}

/// A resource, or a set of resources by prefix, that bindings apply to (Java's
/// `ResourcePattern`).
///
/// ```
/// use kafkit::admin::{PatternType, ResourcePattern, ResourceType};
///
/// let orders = ResourcePattern::new(ResourceType::Topic, "orders.", PatternType::Prefixed);
/// assert_eq!(orders.name, "orders.");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    /// The resource type (not `Any`).
    pub resource_type: ResourceType,
    /// The resource name (or prefix; `*` with `Literal`: every resource of the type).
    pub name: String,
    /// Literal or prefixed (not `Any` or `Match`).
    pub pattern_type: PatternType,
}

impl ResourcePattern {
    /// A pattern.
    pub fn new(
        resource_type: ResourceType,
        name: impl Into<String>,
        pattern_type: PatternType,
    ) -> ResourcePattern {
        ResourcePattern {
            resource_type,
            name: name.into(),
            pattern_type,
        }
    }
}

/// Who may or may not do what, from where (Java's `AccessControlEntry`).
///
/// ```
/// use kafkit::admin::{AccessControlEntry, AclOperation, AclPermissionType};
///
/// let entry = AccessControlEntry::new("User:alice", "*", AclOperation::Read, AclPermissionType::Allow);
/// assert_eq!(entry.host, "*");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    /// The principal, `Type:name` (`User:alice`; `User:*`: every user).
    pub principal: String,
    /// The client host (an IP address; `*`: any host).
    pub host: String,
    /// The operation (not `Any`).
    pub operation: AclOperation,
    /// Allow or deny (not `Any`).
    pub permission_type: AclPermissionType,
}

impl AccessControlEntry {
    /// An entry.
    pub fn new(
        principal: impl Into<String>,
        host: impl Into<String>,
        operation: AclOperation,
        permission_type: AclPermissionType,
    ) -> AccessControlEntry {
        AccessControlEntry {
            principal: principal.into(),
            host: host.into(),
            operation,
            permission_type,
        }
    }
}

/// One ACL: an entry on a resource pattern (Java's `AclBinding`).
///
/// ```
/// use kafkit::admin::{
///     AccessControlEntry, AclBinding, AclOperation, AclPermissionType, PatternType,
///     ResourcePattern, ResourceType,
/// };
///
/// let binding = AclBinding::new(
///     ResourcePattern::new(ResourceType::Group, "billing", PatternType::Literal),
///     AccessControlEntry::new("User:alice", "*", AclOperation::Read, AclPermissionType::Allow),
/// );
/// assert_eq!(binding.to_filter().pattern.name.as_deref(), Some("billing"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The resources.
    pub pattern: ResourcePattern,
    /// The entry.
    pub entry: AccessControlEntry,
}

impl AclBinding {
    /// A binding.
    pub fn new(pattern: ResourcePattern, entry: AccessControlEntry) -> AclBinding {
        AclBinding { pattern, entry }
    }

    /// The filter that matches exactly this binding.
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            pattern: ResourcePatternFilter {
                resource_type: self.pattern.resource_type,
                name: Some(self.pattern.name.clone()),
                pattern_type: self.pattern.pattern_type,
            },
            entry: AccessControlEntryFilter {
                principal: Some(self.entry.principal.clone()),
                host: Some(self.entry.host.clone()),
                operation: self.entry.operation,
                permission_type: self.entry.permission_type,
            },
        }
    }
}

/// Which resource patterns a filter matches (Java's `ResourcePatternFilter`).
///
/// ```
/// use kafkit::admin::{PatternType, ResourcePatternFilter, ResourceType};
///
/// // Every binding that applies to topic `orders.eu`: literal, `*` and prefixes.
/// let f = ResourcePatternFilter::new(ResourceType::Topic, Some("orders.eu"), PatternType::Match);
/// assert_eq!(ResourcePatternFilter::ANY.name, None);
/// # let _ = f;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourcePatternFilter {
    /// The resource type (`Any`: every type).
    pub resource_type: ResourceType,
    /// The name (`None`: any name).
    pub name: Option<String>,
    /// The pattern type (`Any`: literal and prefixed patterns of exactly this name; `Match`:
    /// every pattern that applies to the named resource).
    pub pattern_type: PatternType,
}

impl ResourcePatternFilter {
    /// Matches every resource pattern.
    pub const ANY: ResourcePatternFilter = ResourcePatternFilter {
        resource_type: ResourceType::Any,
        name: None,
        pattern_type: PatternType::Any,
    };

    /// A filter.
    pub fn new(
        resource_type: ResourceType,
        name: Option<&str>,
        pattern_type: PatternType,
    ) -> ResourcePatternFilter {
        ResourcePatternFilter {
            resource_type,
            name: name.map(str::to_owned),
            pattern_type,
        }
    }
}

/// Which entries a filter matches (Java's `AccessControlEntryFilter`).
///
/// ```
/// use kafkit::admin::{AccessControlEntryFilter, AclOperation, AclPermissionType};
///
/// let bobs = AccessControlEntryFilter {
///     principal: Some("User:bob".into()),
///     ..AccessControlEntryFilter::ANY
/// };
/// assert_eq!(bobs.operation, AclOperation::Any);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessControlEntryFilter {
    /// The principal (`None`: any).
    pub principal: Option<String>,
    /// The host (`None`: any).
    pub host: Option<String>,
    /// The operation (`Any`: every operation).
    pub operation: AclOperation,
    /// The permission (`Any`: allow and deny).
    pub permission_type: AclPermissionType,
}

impl AccessControlEntryFilter {
    /// Matches every entry.
    pub const ANY: AccessControlEntryFilter = AccessControlEntryFilter {
        principal: None,
        host: None,
        operation: AclOperation::Any,
        permission_type: AclPermissionType::Any,
    };
}

/// Which bindings `describe_acls` returns and `delete_acls` deletes (Java's
/// `AclBindingFilter`).
///
/// ```
/// use kafkit::admin::{AccessControlEntryFilter, AclBindingFilter, PatternType, ResourcePatternFilter, ResourceType};
///
/// // Every prefixed binding on topics starting with `orders.`.
/// let filter = AclBindingFilter::new(
///     ResourcePatternFilter::new(ResourceType::Topic, Some("orders."), PatternType::Prefixed),
///     AccessControlEntryFilter::ANY,
/// );
/// assert_ne!(filter, AclBindingFilter::ANY);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    /// Which resource patterns.
    pub pattern: ResourcePatternFilter,
    /// Which entries.
    pub entry: AccessControlEntryFilter,
}

impl AclBindingFilter {
    /// Matches every binding.
    pub const ANY: AclBindingFilter = AclBindingFilter {
        pattern: ResourcePatternFilter::ANY,
        entry: AccessControlEntryFilter::ANY,
    };

    /// A filter.
    pub fn new(
        pattern: ResourcePatternFilter,
        entry: AccessControlEntryFilter,
    ) -> AclBindingFilter {
        AclBindingFilter { pattern, entry }
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn opt_str_bytes(s: Option<&String>) -> Option<StrBytes> {
    s.map(|s| str_bytes(s))
}

fn create_request(bindings: &[AclBinding]) -> CreateAclsRequest {
    CreateAclsRequest::default().with_creations(
        bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.pattern.resource_type.code())
                    .with_resource_name(str_bytes(&b.pattern.name))
                    .with_resource_pattern_type(b.pattern.pattern_type.code())
                    .with_principal(str_bytes(&b.entry.principal))
                    .with_host(str_bytes(&b.entry.host))
                    .with_operation(b.entry.operation.code())
                    .with_permission_type(b.entry.permission_type.code())
            })
            .collect(),
    )
}

fn describe_request(filter: &AclBindingFilter) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(filter.pattern.resource_type.code())
        .with_resource_name_filter(opt_str_bytes(filter.pattern.name.as_ref()))
        .with_pattern_type_filter(filter.pattern.pattern_type.code())
        .with_principal_filter(opt_str_bytes(filter.entry.principal.as_ref()))
        .with_host_filter(opt_str_bytes(filter.entry.host.as_ref()))
        .with_operation(filter.entry.operation.code())
        .with_permission_type(filter.entry.permission_type.code())
}

fn delete_request(filters: &[AclBindingFilter]) -> DeleteAclsRequest {
    DeleteAclsRequest::default().with_filters(
        filters
            .iter()
            .map(|f| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(f.pattern.resource_type.code())
                    .with_resource_name_filter(opt_str_bytes(f.pattern.name.as_ref()))
                    .with_pattern_type_filter(f.pattern.pattern_type.code())
                    .with_principal_filter(opt_str_bytes(f.entry.principal.as_ref()))
                    .with_host_filter(opt_str_bytes(f.entry.host.as_ref()))
                    .with_operation(f.entry.operation.code())
                    .with_permission_type(f.entry.permission_type.code())
            })
            .collect(),
    )
}

/// Why a binding cannot be created, when it cannot: `Any`, `Match` and unknown values are for
/// filters (a broker given one fails the whole request with `UNKNOWN_SERVER_ERROR`, so kafkit
/// refuses it before sending, as Java's client does).
fn binding_refusal(b: &AclBinding) -> Option<String> {
    let resource_type = b.pattern.resource_type;
    let pattern_type = b.pattern.pattern_type;
    let operation = b.entry.operation;
    let permission = b.entry.permission_type;
    let bad = match () {
        () if matches!(resource_type, ResourceType::Any | ResourceType::Unknown(_)) => {
            format!("resource type {resource_type:?}")
        }
        () if !matches!(pattern_type, PatternType::Literal | PatternType::Prefixed) => {
            format!("pattern type {pattern_type:?}")
        }
        () if matches!(operation, AclOperation::Any | AclOperation::Unknown(_)) => {
            format!("operation {operation:?}")
        }
        () if matches!(
            permission,
            AclPermissionType::Any | AclPermissionType::Unknown(_)
        ) =>
        {
            format!("permission type {permission:?}")
        }
        () => return None,
    };
    Some(format!("{b:?}: {bad} is for filters only; not sent"))
}

/// Why a filter cannot be sent, when it cannot: an unknown value (Java refuses it too).
fn filter_refusal(f: &AclBindingFilter) -> Option<String> {
    let bad = match () {
        () if matches!(f.pattern.resource_type, ResourceType::Unknown(_)) => "resource type",
        () if matches!(f.pattern.pattern_type, PatternType::Unknown(_)) => "pattern type",
        () if matches!(f.entry.operation, AclOperation::Unknown(_)) => "operation",
        () if matches!(f.entry.permission_type, AclPermissionType::Unknown(_)) => "permission type",
        () => return None,
    };
    Some(format!("{f:?}: unknown {bad}; not sent"))
}

fn invalid(api: ApiKey, message: String) -> Error {
    Error::Broker {
        api,
        code: ResponseError::InvalidRequest,
        message: Some(message),
    }
}

/// `Ok` for error code 0, else the typed error with the broker's message prefixed by `what`.
fn check(api: ApiKey, code: i16, message: Option<&StrBytes>, what: &str) -> Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(Error::Broker {
            api,
            code,
            message: Some(match message {
                Some(m) if !m.is_empty() => format!("{what}: {}", m.as_str()),
                _ => what.to_owned(),
            }),
        }),
    }
}

/// An answer that does not fit the request (a broker bug): typed, never a panic.
fn mismatch(api: ApiKey, what: String) -> Error {
    Error::Broker {
        api,
        code: ResponseError::UnknownServerError,
        message: Some(what),
    }
}

/// The per-binding results of a CreateAcls answer, in request order.
fn create_results(
    bindings: &[AclBinding],
    response: &kafka_protocol::messages::CreateAclsResponse,
) -> Result<Vec<Result<()>>> {
    if response.results.len() != bindings.len() {
        return Err(mismatch(
            ApiKey::CreateAcls,
            format!(
                "{} results for {} bindings",
                response.results.len(),
                bindings.len()
            ),
        ));
    }
    Ok(bindings
        .iter()
        .zip(&response.results)
        .map(|(b, r)| {
            check(
                ApiKey::CreateAcls,
                r.error_code,
                r.error_message.as_ref(),
                &format!("{b:?}"),
            )
        })
        .collect())
}

/// The bindings of a DescribeAcls answer.
fn described(response: &kafka_protocol::messages::DescribeAclsResponse) -> Result<Vec<AclBinding>> {
    check(
        ApiKey::DescribeAcls,
        response.error_code,
        response.error_message.as_ref(),
        "describe_acls",
    )?;
    let mut out = Vec::new();
    for resource in &response.resources {
        let pattern = ResourcePattern {
            resource_type: ResourceType::from_code(resource.resource_type),
            name: resource.resource_name.as_str().to_owned(),
            pattern_type: PatternType::from_code(resource.pattern_type),
        };
        out.extend(resource.acls.iter().map(|a| AclBinding {
            pattern: pattern.clone(),
            entry: AccessControlEntry {
                principal: a.principal.as_str().to_owned(),
                host: a.host.as_str().to_owned(),
                operation: AclOperation::from_code(a.operation),
                permission_type: AclPermissionType::from_code(a.permission_type),
            },
        }));
    }
    Ok(out)
}

/// The per-filter results of a DeleteAcls answer, in request order.
fn delete_results(
    filters: &[AclBindingFilter],
    response: &kafka_protocol::messages::DeleteAclsResponse,
) -> Result<Vec<Result<Vec<AclBinding>>>> {
    if response.filter_results.len() != filters.len() {
        return Err(mismatch(
            ApiKey::DeleteAcls,
            format!(
                "{} results for {} filters",
                response.filter_results.len(),
                filters.len()
            ),
        ));
    }
    Ok(filters
        .iter()
        .zip(&response.filter_results)
        .map(|(f, r)| {
            check(
                ApiKey::DeleteAcls,
                r.error_code,
                r.error_message.as_ref(),
                &format!("{f:?}"),
            )?;
            let mut deleted = Vec::with_capacity(r.matching_acls.len());
            for m in &r.matching_acls {
                let binding = AclBinding {
                    pattern: ResourcePattern {
                        resource_type: ResourceType::from_code(m.resource_type),
                        name: m.resource_name.as_str().to_owned(),
                        pattern_type: PatternType::from_code(m.pattern_type),
                    },
                    entry: AccessControlEntry {
                        principal: m.principal.as_str().to_owned(),
                        host: m.host.as_str().to_owned(),
                        operation: AclOperation::from_code(m.operation),
                        permission_type: AclPermissionType::from_code(m.permission_type),
                    },
                };
                check(
                    ApiKey::DeleteAcls,
                    m.error_code,
                    m.error_message.as_ref(),
                    &format!("{binding:?}"),
                )?;
                deleted.push(binding);
            }
            Ok(deleted)
        })
        .collect())
}

impl Admin {
    /// Creates ACL bindings (CreateAcls to any broker). The outer `Result` is the request's
    /// (connection, timeout, an answer that does not fit); the inner ones are each binding's,
    /// in the order given: a binding the broker refuses (no permission:
    /// `CLUSTER_AUTHORIZATION_FAILED`; no authorizer: `SECURITY_DISABLED`) fails alone, with
    /// the broker's message, and the others are still created (Java's per-binding futures).
    /// A binding with a filter-only value (`Any`, `Match`, `Unknown`) fails alone with
    /// `INVALID_REQUEST` without being sent, as in Java. Creating a binding that exists
    /// already succeeds.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit::admin::Admin, binding: kafkit::admin::AclBinding) -> kafkit::Result<()> {
    /// let results = admin.create_acls(&[binding]).await?;
    /// results.into_iter().collect::<kafkit::Result<Vec<()>>>()?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<Vec<Result<()>>> {
        let refusals: Vec<Option<String>> = bindings.iter().map(binding_refusal).collect();
        let valid: Vec<AclBinding> = bindings
            .iter()
            .zip(&refusals)
            .filter(|(_, r)| r.is_none())
            .map(|(b, _)| b.clone())
            .collect();
        let mut answers = if valid.is_empty() {
            Vec::new()
        } else {
            let request = &create_request(&valid);
            let valid = &valid;
            self.retrying("create_acls", Route::AnyBroker, |at| async move {
                let conn = self.cluster.any_connection().await?;
                let version = conn.version(ApiKey::CreateAcls)?;
                let response = conn.send(request, version, at.timeout).await?;
                create_results(valid, &response)
            })
            .await?
        }
        .into_iter();
        Ok(refusals
            .into_iter()
            .map(|refusal| match refusal {
                Some(why) => Err(invalid(ApiKey::CreateAcls, why)),
                // As many answers as valid bindings (`create_results` checked).
                None => answers.next().unwrap_or(Ok(())),
            })
            .collect())
    }

    /// The bindings `filter` matches (DescribeAcls to any broker), as that broker knows them.
    /// A filter with an `Unknown` value is refused (`INVALID_REQUEST`) without being sent.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit::admin::Admin) -> kafkit::Result<()> {
    /// use kafkit::admin::AclBindingFilter;
    ///
    /// for binding in admin.describe_acls(&AclBindingFilter::ANY).await? {
    ///     println!("{binding:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        if let Some(why) = filter_refusal(filter) {
            return Err(invalid(ApiKey::DescribeAcls, why));
        }
        let request = &describe_request(filter);
        self.retrying("describe_acls", Route::AnyBroker, |at| async move {
            let conn = self.cluster.any_connection().await?;
            let version = conn.version(ApiKey::DescribeAcls)?;
            let response = conn.send(request, version, at.timeout).await?;
            described(&response)
        })
        .await
    }

    /// Deletes the bindings each filter matches (DeleteAcls to any broker): per filter, in
    /// the order given, the bindings it deleted, or its typed error with the broker's message
    /// (a filter with an `Unknown` value: `INVALID_REQUEST`, not sent; the others are).
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit::admin::Admin, filter: kafkit::admin::AclBindingFilter) -> kafkit::Result<()> {
    /// for deleted in admin.delete_acls(&[filter]).await? {
    ///     println!("deleted {:?}", deleted?);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>>>> {
        let refusals: Vec<Option<String>> = filters.iter().map(filter_refusal).collect();
        let valid: Vec<AclBindingFilter> = filters
            .iter()
            .zip(&refusals)
            .filter(|(_, r)| r.is_none())
            .map(|(f, _)| f.clone())
            .collect();
        let mut answers = if valid.is_empty() {
            Vec::new()
        } else {
            let request = &delete_request(&valid);
            let valid = &valid;
            self.retrying("delete_acls", Route::AnyBroker, |at| async move {
                let conn = self.cluster.any_connection().await?;
                let version = conn.version(ApiKey::DeleteAcls)?;
                let response = conn.send(request, version, at.timeout).await?;
                delete_results(valid, &response)
            })
            .await?
        }
        .into_iter();
        Ok(refusals
            .into_iter()
            .map(|refusal| match refusal {
                Some(why) => Err(invalid(ApiKey::DeleteAcls, why)),
                // As many answers as valid filters (`delete_results` checked).
                None => answers.next().unwrap_or_else(|| Ok(Vec::new())),
            })
            .collect())
    }
}

/// CreateAcls, DescribeAcls and DeleteAcls at every version, for `crate::request_versions`.
#[cfg(test)]
pub(crate) fn encoding_samples(enc: &mut crate::request_versions::Encoder) {
    use crate::request_versions::Encoder;
    let bindings = tests::bindings();
    let filters = [bindings[0].to_filter(), AclBindingFilter::ANY];
    for v in Encoder::versions(ApiKey::CreateAcls) {
        enc.check("CreateAcls", v, &create_request(&bindings));
    }
    for v in Encoder::versions(ApiKey::DescribeAcls) {
        for f in &filters {
            enc.check("DescribeAcls", v, &describe_request(f));
        }
    }
    for v in Encoder::versions(ApiKey::DeleteAcls) {
        enc.check("DeleteAcls", v, &delete_request(&filters));
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::create_acls_response::AclCreationResult;
    use kafka_protocol::messages::delete_acls_response::{
        DeleteAclsFilterResult, DeleteAclsMatchingAcl,
    };
    use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
    use kafka_protocol::messages::{CreateAclsResponse, DeleteAclsResponse, DescribeAclsResponse};

    use super::*;

    pub(super) fn bindings() -> Vec<AclBinding> {
        vec![
            AclBinding::new(
                ResourcePattern::new(ResourceType::Topic, "t", PatternType::Literal),
                AccessControlEntry::new(
                    "User:bob",
                    "*",
                    AclOperation::Write,
                    AclPermissionType::Deny,
                ),
            ),
            AclBinding::new(
                ResourcePattern::new(ResourceType::Group, "p.", PatternType::Prefixed),
                AccessControlEntry::new(
                    "User:alice",
                    "10.0.0.1",
                    AclOperation::Read,
                    AclPermissionType::Allow,
                ),
            ),
        ]
    }

    #[test]
    fn codes_are_javas_and_unknown_ones_round_trip() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(ResourceType::User.code(), 7);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::DescribeTokens.code(), 14);
        assert_eq!(AclPermissionType::Allow.code(), 3);
        for code in i8::MIN..=i8::MAX {
            assert_eq!(ResourceType::from_code(code).code(), code);
            assert_eq!(PatternType::from_code(code).code(), code);
            assert_eq!(AclOperation::from_code(code).code(), code);
            assert_eq!(AclPermissionType::from_code(code).code(), code);
        }
        assert_eq!(AclOperation::from_code(0), AclOperation::Unknown(0));
        assert_eq!(ResourceType::from_code(99), ResourceType::Unknown(99));
    }

    #[test]
    fn one_refused_binding_fails_alone_with_the_brokers_message() {
        let bindings = bindings();
        let response = CreateAclsResponse::default().with_results(vec![
            AclCreationResult::default(),
            AclCreationResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes("Invalid resourceType ANY"))),
        ]);
        let results = create_results(&bindings, &response).expect("matching answer");
        assert!(results[0].is_ok());
        match &results[1] {
            Err(Error::Broker {
                api: ApiKey::CreateAcls,
                code: ResponseError::InvalidRequest,
                message: Some(m),
            }) => assert!(m.contains("Invalid resourceType ANY"), "{m}"),
            other => panic!("{other:?}"),
        }
        let short = CreateAclsResponse::default().with_results(vec![]);
        assert!(create_results(&bindings, &short).is_err());
    }

    #[test]
    fn filter_only_values_are_refused_before_sending() {
        let good = &bindings()[0];
        assert_eq!(binding_refusal(good), None);
        let mut any_type = good.clone();
        any_type.pattern.resource_type = ResourceType::Any;
        let mut matching = good.clone();
        matching.pattern.pattern_type = PatternType::Match;
        let mut unknown_op = good.clone();
        unknown_op.entry.operation = AclOperation::Unknown(0);
        let mut any_permission = good.clone();
        any_permission.entry.permission_type = AclPermissionType::Any;
        for (b, what) in [
            (any_type, "resource type Any"),
            (matching, "pattern type Match"),
            (unknown_op, "operation Unknown(0)"),
            (any_permission, "permission type Any"),
        ] {
            let why = binding_refusal(&b).expect("refused");
            assert!(why.contains(what), "{why}");
        }
        assert_eq!(filter_refusal(&AclBindingFilter::ANY), None);
        let mut f = AclBindingFilter::ANY;
        f.entry.permission_type = AclPermissionType::Unknown(9);
        assert!(filter_refusal(&f).is_some());
    }

    #[test]
    fn described_bindings_keep_unknown_codes() {
        let response =
            DescribeAclsResponse::default().with_resources(vec![DescribeAclsResource::default()
                .with_resource_type(2)
                .with_resource_name(str_bytes("t"))
                .with_pattern_type(3)
                .with_acls(vec![
                    AclDescription::default()
                        .with_principal(str_bytes("User:bob"))
                        .with_host(str_bytes("*"))
                        .with_operation(4)
                        .with_permission_type(2),
                    AclDescription::default()
                        .with_principal(str_bytes("User:eve"))
                        .with_host(str_bytes("*"))
                        .with_operation(42)
                        .with_permission_type(-1),
                ])]);
        let out = described(&response).expect("no error");
        assert_eq!(out[0], bindings()[0]);
        assert_eq!(out[1].entry.operation, AclOperation::Unknown(42));
        assert_eq!(out[1].entry.permission_type, AclPermissionType::Unknown(-1));
        let refused = DescribeAclsResponse::default()
            .with_error_code(ResponseError::SecurityDisabled.code())
            .with_error_message(Some(str_bytes("No Authorizer is configured.")));
        assert!(matches!(
            described(&refused),
            Err(Error::Broker {
                code: ResponseError::SecurityDisabled,
                ..
            })
        ));
    }

    #[test]
    fn deletions_per_filter_in_order() {
        let filters = [bindings()[0].to_filter(), AclBindingFilter::ANY];
        let b = &bindings()[0];
        let response = DeleteAclsResponse::default().with_filter_results(vec![
            DeleteAclsFilterResult::default().with_matching_acls(vec![
                DeleteAclsMatchingAcl::default()
                    .with_resource_type(b.pattern.resource_type.code())
                    .with_resource_name(str_bytes(&b.pattern.name))
                    .with_pattern_type(b.pattern.pattern_type.code())
                    .with_principal(str_bytes(&b.entry.principal))
                    .with_host(str_bytes(&b.entry.host))
                    .with_operation(b.entry.operation.code())
                    .with_permission_type(b.entry.permission_type.code()),
            ]),
            DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        ]);
        let results = delete_results(&filters, &response).expect("matching answer");
        assert_eq!(results[0].as_ref().expect("deleted"), &vec![b.clone()]);
        assert!(matches!(
            results[1],
            Err(Error::Broker {
                code: ResponseError::ClusterAuthorizationFailed,
                ..
            })
        ));
    }
}
