use super::*;

#[test]
fn default_topic_suffix() {
    assert_eq!(DeadLetterPolicy::default().topic_for("a"), "a.dlq");
}
