//! The fetcher world (issue #16): the real [`FetchState`](crate::state::consumer::FetchState)
//! (positions, KIP-227 fetch sessions, `read_committed` filtering in `CompletedFetch`,
//! ListOffsets resets, KIP-320 epoch validation, KIP-951 leader hints) against a simulated
//! three-broker cluster whose logs a scripted writer fills with transactions, judged by a
//! history checker.
//!
//! **What it models.** Brokers 0, 1, 2; one topic of 2–4 partitions ([`cluster`]). Each
//! partition has a leader, a leader epoch and its history, one log of record batches v2
//! ENCODED with kafkit-wire's `BatchBuilder` (the fetcher decodes them, CRC and all), a high
//! watermark and a last stable offset. The writer ([`world`]) appends plain batches and the
//! batches of 2–3 transactional producers whose transactions interleave across partitions and
//! end in COMMIT or ABORT markers (control batches as Kafka writes them) on every partition
//! they touched. An append is replicated (the high watermark moves over it) a drawn delay
//! later. The LSO is the first offset of the oldest transaction whose marker is not below the
//! high watermark. The broker answers a Fetch as Kafka does: leader and leader-epoch checks
//! (NOT_LEADER_OR_FOLLOWER with the new leader as a KIP-951 hint, FENCED_LEADER_EPOCH,
//! UNKNOWN_LEADER_EPOCH), the diverging epoch of a `last_fetched_epoch`, OFFSET_OUT_OF_RANGE,
//! batches up to the LSO (read_committed) or the high watermark, `partition_max_bytes` and
//! `max_bytes` with the first batch always whole (KIP-74) and the slice cut at the byte limit
//! (as Kafka reads a log by bytes: the last batch may be incomplete), the aborted transactions whose
//! first offset is below the end of the returned data and whose marker is at or after the
//! fetch offset; `fetch.min.bytes` / `fetch.max.wait.ms` long-polls; a session cache
//! (full requests open a session, incremental ones must carry its next epoch, else
//! FETCH_SESSION_ID_NOT_FOUND / INVALID_FETCH_SESSION_EPOCH; incremental answers leave out
//! partitions with nothing new). ListOffsets (earliest 0; latest the LSO or the high
//! watermark) and OffsetForLeaderEpoch (the end of the largest epoch ≤ the one asked) are
//! answered from the same state. The client side is driven as `io/fetcher.rs` drives it
//! (metadata refresh when the state asks, bounded by `retry.backoff.ms`; ListOffsets,
//! Fetch, OffsetForLeaderEpoch planned each round; hints applied before `handle_fetch`; a
//! failure reported per request), and an application drains records at a drawn pace,
//! sometimes pausing a partition for a while or seeking one back.
//!
//! **The fault schedule**, drawn from the seed, in a first phase only: lost requests and lost
//! responses (the connection goes silent until its request times out), network delays (responses reorder
//! across connections, never within one), connection cuts, broker pauses, leader moves (a new
//! leader, a bumped epoch, the log truncated to a drawn point between the high watermark and
//! its end: what was not replicated may vanish and decided markers that vanished are written
//! again, as the coordinator retries them), injected NOT_LEADER_OR_FOLLOWER /
//! FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH per partition, session evictions, failed
//! metadata refreshes and stale ones (a moved partition answered with its leader and epoch
//! from before the move), retention (whole batches below a drawn offset ≤ the LSO deleted:
//! the log start moves, a position below it gets OFFSET_OUT_OF_RANGE and is reset to the
//! earliest). Each knob is drawn per seed (some at zero), as are the fetch settings
//! (`fetch.min.bytes`, `fetch.max.wait.ms`, `fetch.max.bytes`, `max.partition.fetch.bytes`,
//! `kafkit.prefetch.max.bytes`, `retry.backoff.ms`, `request.timeout.ms`), the drain size and
//! pace, and whether the consumer starts from a committed offset or the earliest. Then a quiet
//! phase until a deadline by which the checker's `liveness` must hold.
//!
//! **Not modelled**: ISR changes and followers' own logs (replication is one delay; a leader
//! move may pick any other broker), unclean elections, DeleteRecords inside a batch,
//! compaction,
//! compression, preferred read replicas (KIP-392), throttling, the metadata request's own
//! faults beyond a failed refresh, producer epochs and fencing (every producer is at epoch 0),
//! transactions that time out (every one is decided by the writer), group membership and
//! commits (the consumer is `assign`ed every partition), `auto.offset.reset` other than
//! earliest.
//!
//! **Invariants** ([`checker`]): `read-uncommitted`, `read-of-aborted`, `duplicated-read`,
//! `reordered-read`, `stalled`, `liveness`, `skipped`. Each has a negative control below: a broker that
//! ignores the LSO (`read-uncommitted`), one that sends no aborted transactions
//! (`read-of-aborted`), a driver that seeks back without saying so (`duplicated-read`), one
//! that hands two records out swapped (`reordered-read`), a broker that never returns a
//! partition's records (`liveness`), a driver that drops one fetched batch (`skipped`), a
//! fetcher that long-polls caught-up partitions while their node's records are still being
//! taken (`stalled`, judged in the fault-free `quiet_backlog` worlds only).
//!
//! **Adding an invariant**: record what it needs in `world::History` (the driver sees every
//! append, transaction outcome, drain and seek, and the cluster at each moment), add a check
//! with a new kebab-case name to `checker::check` (the order there is the order violations
//! are named), and add a negative control: a switch in `cluster::Broken` or
//! `world::BrokenDriver` that breaks it on purpose, and a test with `expect_caught`.

mod checker;
mod cluster;
mod world;

use crate::config::IsolationLevel;
use crate::sim::harness::{Run, Violation};
use world::{Knobs, World};

/// Runs one world with the seed's knobs, changed by `adjust`, and judges it.
fn scenario(run: &mut Run, adjust: impl FnOnce(&mut Knobs)) -> Result<(), Violation> {
    scenario_with(run, adjust, |_| {})
}

/// [`scenario`], with `prepare` applied to the world before it runs.
fn scenario_with(
    run: &mut Run,
    adjust: impl FnOnce(&mut Knobs),
    prepare: impl FnOnce(&mut World<'_>),
) -> Result<(), Violation> {
    let mut knobs = Knobs::draw(run);
    adjust(&mut knobs);
    let mut world = World::new(run, knobs);
    prepare(&mut world);
    world.simulate();
    checker::check(&world.history)
}

/// A world without faults whose partitions hold a backlog when the consumer starts, read
/// with the default `fetch.max.wait.ms` (500 ms) and `fetch.min.bytes` (1) over a fast
/// network, a prefetch budget the application often empties, and a pace that keeps up: the
/// application may find nothing to take for a few round trips, never for most of a long-poll
/// (`stalled`, limit 250 ms).
fn quiet_backlog(k: &mut Knobs) {
    use std::time::Duration;
    let ms = Duration::from_millis;
    k.p_lose_request = 0.0;
    k.p_lose_response = 0.0;
    k.p_stale_metadata = 0.0;
    k.retentions = 0;
    k.p_partition_error = 0.0;
    k.p_evict_session = 0.0;
    k.p_metadata_fails = 0.0;
    k.cuts = 0;
    k.pauses = 0;
    k.leader_moves = 0;
    k.p_pause_partition = 0.0;
    k.p_seek_back = 0.0;
    k.partitions = 6; // two per broker: a node holds caught-up and unfinished partitions
    k.prefill = 200 + k.prefill * 20;
    k.writes = k.prefill + 3; // the prefill, then a few writes while the backlog is read
    k.settings.min_bytes = 1;
    k.settings.max_wait_ms = 500;
    k.settings.request_timeout = ms(30_000);
    k.settings.prefetch_max_bytes = k.settings.prefetch_max_bytes.min(4_000);
    k.net_delay.1 = k.net_delay.1.min(ms(5));
    k.replication_delay.1 = k.replication_delay.1.min(ms(5));
    k.poll_every.1 = k.poll_every.1.min(ms(5));
    k.stall_limit = Some(ms(250));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::harness::{assert_replays, check_seeds, expect_caught};

    #[test]
    fn read_committed() {
        check_seeds("read_committed", 60, |run| scenario(run, |_| {}));
    }

    #[test]
    fn read_committed_leader_moves() {
        check_seeds("read_committed_leader_moves", 50, |run| {
            scenario(run, |k| {
                k.leader_moves = 6 + k.leader_moves * 2;
                k.pauses += 1;
                // Slow replication: a move truncates an unreplicated tail more often.
                k.replication_delay.1 =
                    k.replication_delay.1 * 4 + std::time::Duration::from_millis(40);
                k.p_partition_error = k.p_partition_error.max(0.03);
            })
        });
    }

    #[test]
    fn read_committed_lossy_sessions() {
        check_seeds("read_committed_lossy_sessions", 50, |run| {
            scenario(run, |k| {
                k.p_lose_response = k.p_lose_response.max(0.05);
                k.p_evict_session = k.p_evict_session.max(0.1);
                k.cuts += 3;
            })
        });
    }

    #[test]
    fn read_uncommitted() {
        check_seeds("read_uncommitted", 40, |run| {
            scenario(run, |k| k.isolation = IsolationLevel::ReadUncommitted)
        });
    }

    #[test]
    fn quiet_backlog_without_stalls() {
        check_seeds("quiet_backlog_without_stalls", 40, |run| {
            scenario(run, quiet_backlog)
        });
    }

    #[test]
    fn a_seed_replays() {
        assert_replays(5, |run| scenario(run, |_| {}));
        assert_replays(6, |run| scenario(run, |k| k.leader_moves += 5));
    }

    #[test]
    fn negative_control_ignoring_the_lso_is_read_uncommitted() {
        expect_caught("read-uncommitted", 30, |run| {
            scenario(run, |k| k.broken.ignore_lso = true)
        });
    }

    #[test]
    fn negative_control_no_aborted_list_is_read_of_aborted() {
        expect_caught("read-of-aborted", 30, |run| {
            scenario(run, |k| {
                k.broken.omit_aborted = true;
                k.p_abort = 0.8;
            })
        });
    }

    #[test]
    fn negative_control_silent_seek_back_is_duplicated_read() {
        expect_caught("duplicated-read", 30, |run| {
            scenario(run, |k| k.driver.silent_seek_back = true)
        });
    }

    #[test]
    fn negative_control_swapped_records_are_reordered_read() {
        expect_caught("reordered-read", 30, |run| {
            scenario(run, |k| k.driver.reverse_one_drain = true)
        });
    }

    #[test]
    fn negative_control_muted_partition_is_liveness() {
        expect_caught("liveness", 10, |run| {
            scenario(run, |k| k.broken.mute_partition_0 = true)
        });
    }

    #[test]
    fn negative_control_caught_up_fetch_sent_early_is_stalled() {
        expect_caught("stalled", 20, |run| {
            scenario_with(run, quiet_backlog, |w| {
                w.state.broken_send_caught_up_early = true;
            })
        });
    }

    #[test]
    fn negative_control_dropped_batch_is_skipped() {
        expect_caught("skipped", 30, |run| {
            scenario(run, |k| k.driver.drop_batch = true)
        });
    }
}
