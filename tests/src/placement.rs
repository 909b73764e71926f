//! Where a topic's partitions live: the leader lookups the multi-broker suites share (which
//! node to stop, freeze or read from).

use kafkit::admin::Admin;

/// Fetches fresh metadata for `topics` through `admin` and returns the node leading
/// partition 0 of the first one.
///
/// # Panics
/// When the refresh fails or the partition has no leader (a test harness: the test stops).
pub async fn leader_of_partition_0(admin: &Admin, topics: &[&str]) -> i32 {
    admin
        .cluster()
        .refresh_metadata(Some(topics))
        .await
        .expect("metadata of the test's topics");
    leader(admin, topics[0], 0)
}

/// The node leading `topic`/`partition` in `admin`'s current metadata.
///
/// # Panics
/// When the partition has no known leader.
pub fn leader(admin: &Admin, topic: &str, partition: i32) -> i32 {
    admin
        .cluster()
        .metadata()
        .leader(topic, partition)
        .map(|b| b.node_id)
        .unwrap_or_else(|| panic!("no leader known for {topic}/{partition}"))
}

/// The partitions among `0..partitions` of `topic` that `node` leads in `admin`'s current
/// metadata.
pub fn led_by(admin: &Admin, topic: &str, partitions: i32, node: i32) -> Vec<i32> {
    let metadata = admin.cluster().metadata();
    (0..partitions)
        .filter(|&p| metadata.leader(topic, p).map(|b| b.node_id) == Some(node))
        .collect()
}
