//! ACL admin calls against real brokers: the secured broker of `scripts/kafka.sh start
//! --security` (StandardAuthorizer; its PLAINTEXT listener is the super user ANONYMOUS, the
//! SCRAM users alice and bob are not) and the plain broker without an authorizer.

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafkit::admin::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, Admin, NewTopic, PatternType, ResourcePattern, ResourcePatternFilter,
    ResourceType,
};
use kafkit::producer::ProduceError;
use kafkit::{Error, Producer, ProducerConfig, ProducerRecord};
use kafkit_tests::{kafka, kafka_secure, unique_name, SASL_PASSWORD, SASL_USER};

/// How long ACL changes may take to reach the broker's authorizer.
const PROPAGATION: Duration = Duration::from_secs(30);

fn binding(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    operation: AclOperation,
    permission: AclPermissionType,
) -> AclBinding {
    AclBinding::new(
        ResourcePattern::new(resource_type, name, pattern_type),
        AccessControlEntry::new(principal, "*", operation, permission),
    )
}

fn sorted(mut bindings: Vec<AclBinding>) -> Vec<AclBinding> {
    bindings.sort();
    bindings
}

/// Describes `filter` until the answer is `want` (sorted), or panics at the deadline.
async fn describe_until(admin: &Admin, filter: &AclBindingFilter, want: &[AclBinding]) {
    let want = sorted(want.to_vec());
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let got = sorted(admin.describe_acls(filter).await.expect("describe_acls"));
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{filter:?}: got {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A producer authenticated as `user` (SCRAM-SHA-256 over SASL_PLAINTEXT), default settings.
async fn producer_as(bootstrap: &str, user: &str, password: &str) -> Producer {
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", user),
        ("sasl.password", password),
    ])
    .expect("valid properties");
    Producer::new(config).await.expect("producer")
}

async fn produce(producer: &Producer, topic: &str) -> Result<(), ProduceError> {
    producer
        .send(ProducerRecord::new(topic).value("v"))
        .await?
        .await
        .map(|_| ())
}

#[tokio::test]
async fn create_describe_enforce_and_delete() {
    let k = kafka_secure();
    let admin = Admin::connect(&k.kafka.bootstrap).await.expect("admin");
    let prefix = format!("{}.", unique_name("acls"));
    let topic = format!("{prefix}t");
    admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .expect("create topic");

    // Everyone may do anything on the prefix's topics; bob may not write this one (a deny
    // wins); alice may read the prefix's groups.
    let everyone = binding(
        ResourceType::Topic,
        &prefix,
        PatternType::Prefixed,
        "User:*",
        AclOperation::All,
        AclPermissionType::Allow,
    );
    let deny_bob = binding(
        ResourceType::Topic,
        &topic,
        PatternType::Literal,
        "User:bob",
        AclOperation::Write,
        AclPermissionType::Deny,
    );
    let alice_groups = binding(
        ResourceType::Group,
        &prefix,
        PatternType::Prefixed,
        "User:alice",
        AclOperation::Read,
        AclPermissionType::Allow,
    );
    // `Any` is for filters only: that binding fails alone, the other one is created.
    let invalid = binding(
        ResourceType::Any,
        &topic,
        PatternType::Literal,
        "User:carol",
        AclOperation::Read,
        AclPermissionType::Allow,
    );
    let carol = binding(
        ResourceType::Topic,
        &topic,
        PatternType::Literal,
        "User:carol",
        AclOperation::Describe,
        AclPermissionType::Allow,
    );
    let results = admin
        .create_acls(&[
            everyone.clone(),
            deny_bob.clone(),
            alice_groups.clone(),
            invalid,
            carol.clone(),
        ])
        .await
        .expect("create_acls");
    assert_eq!(results.len(), 5);
    for (i, r) in results.iter().enumerate() {
        if i == 3 {
            match r {
                Err(Error::Broker {
                    api: ApiKey::CreateAcls,
                    code: ResponseError::InvalidRequest,
                    message: Some(m),
                }) => assert!(m.contains("User:carol"), "{m}"),
                other => panic!("the invalid binding: {other:?}"),
            }
        } else {
            assert!(r.is_ok(), "binding {i}: {r:?}");
        }
    }

    // Literal: the bindings on exactly this topic name.
    let literal = AclBindingFilter::new(
        ResourcePatternFilter::new(ResourceType::Topic, Some(&topic), PatternType::Literal),
        AccessControlEntryFilter::ANY,
    );
    describe_until(&admin, &literal, &[deny_bob.clone(), carol.clone()]).await;
    // Prefixed: the prefixed bindings of exactly this prefix, any resource type.
    let prefixed = AclBindingFilter::new(
        ResourcePatternFilter::new(ResourceType::Any, Some(&prefix), PatternType::Prefixed),
        AccessControlEntryFilter::ANY,
    );
    describe_until(&admin, &prefixed, &[everyone.clone(), alice_groups.clone()]).await;
    // Match: everything that applies to the topic, its prefix's binding included.
    let matching = AclBindingFilter::new(
        ResourcePatternFilter::new(ResourceType::Topic, Some(&topic), PatternType::Match),
        AccessControlEntryFilter::ANY,
    );
    describe_until(
        &admin,
        &matching,
        &[everyone.clone(), deny_bob.clone(), carol.clone()],
    )
    .await;
    // One entry field: bob's bindings on this topic.
    let bobs = AclBindingFilter::new(
        literal.pattern.clone(),
        AccessControlEntryFilter {
            principal: Some("User:bob".to_owned()),
            ..AccessControlEntryFilter::ANY
        },
    );
    describe_until(&admin, &bobs, std::slice::from_ref(&deny_bob)).await;

    // The deny takes effect: bob's produce is refused, alice's is not.
    let alice = producer_as(&k.sasl_plaintext, SASL_USER, SASL_PASSWORD).await;
    produce(&alice, &topic).await.expect("alice may write");
    let bob = producer_as(&k.sasl_plaintext, "bob", "bob-secret").await;
    match produce(&bob, &topic).await {
        Err(ProduceError::Broker {
            code: ResponseError::TopicAuthorizationFailed,
            ..
        }) => {}
        other => panic!("bob's produce: {other:?}"),
    }
    bob.close(Duration::from_secs(10)).await.ok();

    // Delete bob's binding: exactly it is returned, and bob may write again.
    let deleted = admin
        .delete_acls(std::slice::from_ref(&bobs))
        .await
        .expect("delete_acls");
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0].as_ref().expect("deleted"),
        std::slice::from_ref(&deny_bob)
    );
    describe_until(&admin, &bobs, &[]).await;
    let bob = producer_as(&k.sasl_plaintext, "bob", "bob-secret").await;
    produce(&bob, &topic).await.expect("bob may write again");
    bob.close(Duration::from_secs(10)).await.ok();
    alice.close(Duration::from_secs(10)).await.ok();

    // Clean up with two filters: each returns what it matched, in order.
    let deleted = admin
        .delete_acls(&[literal.clone(), prefixed.clone()])
        .await
        .expect("delete_acls");
    assert_eq!(sorted(deleted[0].clone().expect("literal")), vec![carol]);
    assert_eq!(
        sorted(deleted[1].clone().expect("prefixed")),
        sorted(vec![everyone, alice_groups])
    );
    describe_until(&admin, &matching, &[]).await;

    // A caller without ALTER on the cluster (bob, once denied it) gets the typed refusal for
    // each binding. (Without any cluster ACL, allow.everyone.if.no.acl.found lets him.)
    let deny_bob_alter = binding(
        ResourceType::Cluster,
        "kafka-cluster",
        PatternType::Literal,
        "User:bob",
        AclOperation::Alter,
        AclPermissionType::Deny,
    );
    let created = admin
        .create_acls(std::slice::from_ref(&deny_bob_alter))
        .await
        .expect("create_acls");
    assert!(created[0].is_ok(), "{created:?}");
    describe_until(
        &admin,
        &deny_bob_alter.to_filter(),
        std::slice::from_ref(&deny_bob_alter),
    )
    .await;
    let bob_config = ProducerConfig::from_properties([
        ("bootstrap.servers", k.sasl_plaintext.as_str()),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "bob"),
        ("sasl.password", "bob-secret"),
    ])
    .expect("valid properties");
    let bob_admin = Admin::from_client_config(bob_config.client())
        .await
        .expect("bob's admin");
    let refused = bob_admin
        .create_acls(std::slice::from_ref(&deny_bob))
        .await
        .expect("an answer");
    let outcome = admin
        .delete_acls(&[deny_bob_alter.to_filter()])
        .await
        .expect("delete_acls");
    assert_eq!(
        outcome[0].as_ref().expect("deleted"),
        std::slice::from_ref(&deny_bob_alter)
    );
    assert!(
        matches!(
            refused[..],
            [Err(Error::Broker {
                api: ApiKey::CreateAcls,
                code: ResponseError::ClusterAuthorizationFailed,
                ..
            })]
        ),
        "{refused:?}"
    );
    describe_until(&admin, &deny_bob_alter.to_filter(), &[]).await;
    describe_until(&admin, &bobs, &[]).await;
    bob_admin.close(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_broker_without_an_authorizer_refuses_acl_calls_typed() {
    let admin = Admin::connect(&kafka().bootstrap).await.expect("admin");
    let topic = unique_name("acls-off");
    let b = binding(
        ResourceType::Topic,
        &topic,
        PatternType::Literal,
        "User:bob",
        AclOperation::Write,
        AclPermissionType::Deny,
    );
    let results = admin
        .create_acls(std::slice::from_ref(&b))
        .await
        .expect("an answer");
    assert!(
        matches!(
            results[..],
            [Err(Error::Broker {
                api: ApiKey::CreateAcls,
                code: ResponseError::SecurityDisabled,
                ..
            })]
        ),
        "{results:?}"
    );
    let err = admin.describe_acls(&b.to_filter()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Broker {
                api: ApiKey::DescribeAcls,
                code: ResponseError::SecurityDisabled,
                ..
            }
        ),
        "{err:?}"
    );
    let deleted = admin
        .delete_acls(&[b.to_filter()])
        .await
        .expect("an answer");
    assert!(
        matches!(
            deleted[..],
            [Err(Error::Broker {
                api: ApiKey::DeleteAcls,
                code: ResponseError::SecurityDisabled,
                ..
            })]
        ),
        "{deleted:?}"
    );
}
