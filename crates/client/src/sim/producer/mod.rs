//! The producer world (issue #16): the real idempotent `SenderState` (accumulator, sequences,
//! retries, epoch bumps, request ordering) against a simulated three-broker cluster, judged by
//! a history checker.
//!
//! **What it models.** Brokers 0, 1, 2; one topic of 3–6 partitions, replication factor 3,
//! `min.insync.replicas` 2. Each partition has a leader, a leader epoch, an ISR and one log per
//! replica ([`cluster`]). A Produce with acks=all is appended to the leader's log and answered
//! once the high watermark (what every ISR member holds) covers it; followers copy the leader
//! every `replicate_every`, truncating a diverged tail first; a follower behind for longer than
//! `replica.lag.time.max.ms` leaves the ISR, one caught up joins again. A leader move elects
//! another ISR member that is up (no unclean election): what was not replicated to it is gone,
//! and the old leader truncates to it. The broker checks idempotent producers as Kafka does,
//! from the producer state read off its own log (so it moves with replication): a batch equal
//! to one of the producer's last five is a duplicate, answered with its first offset; an older
//! epoch is INVALID_PRODUCER_EPOCH; a gap (or a new epoch not starting at 0) is
//! OUT_OF_ORDER_SEQUENCE_NUMBER; an unknown producer may start anywhere (Kafka ≥ 2.5).
//! InitProducerId is answered by the driver (producer id 1, epoch + 1 for a bump). The client
//! side ([`world`]) is driven the way `io/producer.rs` drives it: expire, InitProducerId,
//! `poll_requests`, one connection per broker, `handle_result` per response or per failure
//! (`request.timeout.ms` closes the connection and fails everything in flight on it), metadata
//! refreshed when the state asks, close at the end of the workload.
//!
//! **The fault schedule**, drawn from the seed, in a first phase only: lost requests and lost
//! responses (the connection goes silent until its request times out; the request was, or was
//! not, written), network delays (responses reorder across connections, never within one),
//! connection cuts (an I/O error for everything in flight), leader moves, broker pauses (a
//! paused broker reads, answers and replicates nothing; followers behind it leave the ISR),
//! NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS (not written), REQUEST_TIMED_OUT (written, not
//! acknowledged), and at most two INVALID_RECORD (fatal) for a batch the log does not have;
//! in the `message_too_large_splits` scenario only, MESSAGE_TOO_LARGE (not written) for a
//! batch of two records or more that the log does not have, which the producer splits. Each
//! knob is drawn per seed (some at zero), as are `max.in.flight` (1–5), `linger.ms`,
//! `batch.size`, `request.timeout.ms`, `delivery.timeout.ms` and the retry backoff. Then a
//! quiet phase until a deadline by which the checker's `liveness` must hold.
//!
//! **Not modelled**: transactions v2 (KIP-890 part 2: Produce-adds, EndTxn epoch bumps),
//! AddOffsetsToTxn / TxnOffsetCommit, acks=0/1 producers (only as the broken broker of a
//! negative control), non-idempotent producers, several producers producing at once (the
//! zombie mode's two instances hand over), the partitioner (records name their
//! partition), compression, message size limits (MESSAGE_TOO_LARGE is drawn, not decided by
//! a batch's size; a record too large alone is not tried), metadata errors and
//! InitProducerId failures, broker crashes that lose unflushed data, log retention (a producer
//! is forgotten only when its batches are truncated away), a controller with its own delays,
//! `flush` (only `close`), retry jitter (`SenderState` draws none: its backoff is fixed).
//!
//! **Bugs it found** (fixed in `state/producer`, each with a unit test): an epoch bump
//! re-sequenced every partition, writing a batch of another partition twice; a batch that
//! failed bumped the epoch at once, re-sequencing a later batch of its partition that was
//! already written; a batch hanging on a former leader's connection fell out of the broker's
//! five-batch dedup window while later ones were acknowledged, and its resend failed "for
//! good" although it was written.
//!
//! **Invariants** ([`checker`]): `acknowledged-but-lost`, `reordered`, `duplicated`,
//! `outcome-mismatch`, `liveness`. Each has a negative control below: a broker without
//! de-duplication (`duplicated`), one that acknowledges at the leader while leaders move
//! (`acknowledged-but-lost`), one that ignores sequence gaps (`reordered`), one that writes a
//! batch it refuses as INVALID_RECORD (`outcome-mismatch`), a driver that drops one outcome
//! (`liveness`).
//!
//! **Transactional mode** ([`txn_scenario`], `world/txn.rs`, [`txn_coordinator`],
//! [`txn_checker`]): the REAL `TransactionState` inside the REAL `SenderState`, driven as
//! `producer/transaction.rs`, `producer/transaction_coordinator.rs` and `io/producer.rs` drive
//! it (those drivers are async code outside `state/`: `world/txn.rs` mirrors them). The
//! application runs 3–8 transactions in sequence (begin, 2–16 records to 2–4 partitions,
//! commit or abort drawn), keeping the API contract (abort after an abortable error, the same
//! call again after a timeout, stop after a fatal one). A simulated transaction coordinator
//! (transactions v1) on one broker: producer id and epoch, Empty → Ongoing → Prepare* →
//! Complete*, CONCURRENT_TRANSACTIONS while markers are written, idempotent EndTxn retries,
//! KIP-360 bumps (a retried bump gets the current pair), `transaction.timeout.ms` aborting
//! with an epoch bump, PRODUCER_FENCED for an older epoch. COMMIT/ABORT markers are control
//! batches appended at each partition's leader, replicated like data, written again at a new
//! leader if not replicated; a marker's epoch fences older batches at the leader, and the
//! leader checks a transactional batch with the coordinator (KIP-890 part 1:
//! INVALID_TXN_STATE for a partition outside the Ongoing transaction). Extra faults, drawn per
//! seed: coordinator moves (the old broker answers NOT_COORDINATOR, the new one
//! COORDINATOR_LOAD_IN_PROGRESS while loading), injected coordinator errors, lost coordinator
//! requests and responses (AddPartitionsToTxn, EndTxn, InitProducerId, FindCoordinator), short
//! transaction timeouts, plus every fault above. Not modelled there: transactions v2,
//! AddOffsetsToTxn / TxnOffsetCommit, a coordinator that loses its state, marker writes failing other than by a leader change, `__transaction_state`
//! replication, the coordinator's own request queue (requests are answered one by one as they
//! arrive). The application may idle between transactions (drawn, with a short transaction
//! timeout). Invariants: `torn-transaction`, `committed-lost`, `aborted-visible` (see
//! [`txn_checker`]), then the ones above (`outcome-mismatch` excuses records of aborted
//! transactions), then `phantom-transaction` (the coordinator timed out a transaction the
//! application did not hold open for `transaction.timeout.ms`), then `liveness` (every call ends; a commit begun once every fault is over,
//! with the client's leaders and coordinator current and a request timeout covering a round
//! trip, commits; in `transactions_coordinator_moves_only`, where moves are the only fault,
//! every commit commits). It reproduces transactions v1's delayed-EndTxn hazard (KIP-890): an
//! EndTxn(commit) read by a paused broker and answered after the client retried it elsewhere
//! commits the next transaction (same epoch); the client then reports a fatal
//! INVALID_TXN_STATE, so transactions ended by a fatal error are not judged by
//! `aborted-visible`. Negative controls: a coordinator that writes no marker to partition 0
//! (`committed-lost`), COMMIT for an abort (`aborted-visible`), ABORT on one partition of a
//! commit (`torn-transaction`), EndTxn(abort) acknowledged with the transaction left open
//! (`phantom-transaction`).
//!
//! **Zombie mode** ([`zombie_scenario`], `world/zombie.rs`, [`zombie_checker`]): a second
//! instance (B) of the application with the same `transactional.id` calls `init_transactions`
//! at a drawn time while the first (A) runs — mid-transaction, draining with Produce requests
//! in flight, lost or delayed, with an EndTxn in flight (or parked at a paused broker), or
//! bumping. B's InitProducerId carries no pair: the coordinator aborts A's open transaction
//! with an epoch bump (CONCURRENT_TRANSACTIONS until its markers are written), bumps again
//! on B's retry, and keeps no previous epoch (as Kafka), so A's later Produce is refused
//! INVALID_PRODUCER_EPOCH by the leader (KIP-890 check, or the marker's epoch in its log) and
//! its AddPartitionsToTxn / EndTxn / bump PRODUCER_FENCED. The REAL client A must report
//! `TransactionError::Fenced` and stop; once it has, B takes over with a fresh REAL
//! `SenderState` and runs its own transactions, judged by every transactional invariant.
//! Not modelled there: B producing while A still runs, faults on B's InitProducerId, B's
//! FindCoordinator, a new producer id when the epoch is exhausted. Invariants, checked
//! first: `zombie-committed` (no record of A becomes committed by a coordinator decision
//! taken after B's InitProducerId took effect, and A is never told a transaction begun after
//! it committed), `zombie-unfenced` (A, running when fenced, stops on the fenced error).
//! Negative controls: a coordinator that grants B's InitProducerId without a bump or abort
//! (`zombie-committed`), one that refuses an older epoch as INVALID_TXN_STATE
//! (`zombie-unfenced`).
//!
//! **Bugs the transactional mode found** (fixed, with unit tests in
//! `state/producer/transaction/tests.rs`): AddPartitionsToTxn v1–3 reports a coordinator move
//! per partition only, and the client kept asking the old broker (every commit after a move
//! stalled until its records expired, then aborted); an AddPartitionsToTxn that failed while
//! aborting left a past wake-up time that spun the sender loop until the abort ended; an
//! abort after an AddPartitionsToTxn whose answer was lost ended locally, leaving the
//! coordinator a transaction that timed out with an epoch bump and fenced the idle producer
//! (`transactions_lost_adds_then_idle`); AddPartitionsToTxn answered CONCURRENT_TRANSACTIONS
//! (the last transaction's markers still being written) was retried after the whole
//! `retry.backoff.ms`, longer than a short `delivery.timeout.ms`, so the first records of a
//! transaction begun right after the last expired (Java retries after 20 ms).
//!
//! **Adding an invariant**: record what it needs in `world::History` (the driver sees every
//! append, outcome and broker decision), add a check with a new kebab-case name to
//! `checker::check` (the order there is the order violations are named), and add a negative
//! control: a switch in `cluster::Broken` or in `world::Knobs` that breaks it on purpose, and
//! a test with `expect_caught("<name>", …)`.

mod checker;
mod cluster;
mod txn_checker;
mod txn_coordinator;
mod world;
mod zombie_checker;

use crate::sim::harness::{Run, Violation};
use world::{Knobs, TxnKnobs, World, ZombieKnobs};

/// Runs one world with the seed's knobs, changed by `adjust`, and judges it.
fn scenario(run: &mut Run, adjust: impl FnOnce(&mut Knobs)) -> Result<(), Violation> {
    let mut knobs = Knobs::draw(run);
    adjust(&mut knobs);
    let mut world = World::new(run, knobs);
    world.simulate();
    let logs = world.cluster.leader_logs();
    checker::check(&world.history, &logs, &Default::default())
}

/// Runs one idempotent world where brokers answer MESSAGE_TOO_LARGE for some batches of two
/// records or more (the producer splits them), among the seed's other faults; `split` counts
/// the runs that split at least one batch.
fn split_scenario(run: &mut Run, split: &std::cell::Cell<u64>) -> Result<(), Violation> {
    let mut knobs = Knobs::draw(run);
    knobs.p_too_large = 0.15;
    // Room for a few records per batch (the draw goes down to 60 bytes).
    knobs.batch_size = knobs.batch_size.max(400);
    let mut world = World::new(run, knobs);
    world.simulate();
    if world.too_large > 0 {
        split.set(split.get() + 1);
    }
    let logs = world.cluster.leader_logs();
    checker::check(&world.history, &logs, &Default::default())
}

/// Runs one transactional world (the seed's knobs and transactional knobs, changed by
/// `adjust`) and judges it with the transactional checker.
fn txn_scenario(
    run: &mut Run,
    adjust: impl FnOnce(&mut Knobs, &mut TxnKnobs),
) -> Result<(), Violation> {
    let mut knobs = Knobs::draw(run);
    let mut txn = TxnKnobs::draw(run, &knobs);
    adjust(&mut knobs, &mut txn);
    let mut world = World::new_txn(run, knobs, txn);
    world.simulate();
    let logs = world.cluster.leader_logs();
    txn_checker::check(&world.history, &logs)
}

/// Runs one transactional world with a second instance of the application (the seed's
/// knobs, changed by `adjust`; no injected INVALID_RECORD, so the first instance's fatal
/// error after the fence can only be the fence) and judges it with the zombie checker, then
/// the transactional one. `fenced` counts runs where the second instance fenced a running
/// first one.
fn zombie_scenario(
    run: &mut Run,
    fenced: &std::cell::Cell<u64>,
    adjust: impl FnOnce(&mut Knobs, &mut TxnKnobs, &mut ZombieKnobs),
) -> Result<(), Violation> {
    let mut knobs = Knobs::draw(run);
    let mut txn = TxnKnobs::draw(run, &knobs);
    let mut zombie = ZombieKnobs::draw(run, &knobs, &txn);
    knobs.p_fatal = 0.0;
    adjust(&mut knobs, &mut txn, &mut zombie);
    let mut world = World::new_zombie(run, knobs, txn, zombie);
    world.simulate();
    let logs = world.cluster.leader_logs();
    if let Some(z) = &world.history.zombie {
        if z.fenced_at.is_some() && !z.a_stopped_first {
            fenced.set(fenced.get() + 1);
        }
    }
    zombie_checker::check(&world.history, &logs)?;
    txn_checker::check(&world.history, &logs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::harness::{assert_replays, check_seeds, expect_caught};

    #[test]
    fn idempotent_acks_all() {
        check_seeds("idempotent_acks_all", 40, |run| scenario(run, |_| {}));
    }

    #[test]
    fn leader_moves() {
        check_seeds("leader_moves", 30, |run| {
            scenario(run, |k| {
                k.leader_moves = 10 + k.leader_moves * 3;
                k.pauses += 1;
            })
        });
    }

    #[test]
    fn one_in_flight() {
        check_seeds("one_in_flight", 30, |run| {
            scenario(run, |k| k.max_in_flight = 1)
        });
    }

    #[test]
    fn five_in_flight_lossy() {
        check_seeds("five_in_flight_lossy", 30, |run| {
            scenario(run, |k| {
                k.max_in_flight = 5;
                k.p_lose_response = k.p_lose_response.max(0.05);
                k.p_retriable = k.p_retriable.max(0.05);
                k.cuts += 3;
            })
        });
    }

    /// MESSAGE_TOO_LARGE for batches of two records or more, among the other faults: the
    /// producer splits each and sends the pieces with new sequences (newer batches of the
    /// partition held back meanwhile); nothing acknowledged is lost, duplicated or reordered.
    #[test]
    fn message_too_large_splits() {
        let split = std::cell::Cell::new(0);
        let ran = check_seeds("message_too_large_splits", 30, |run| {
            split_scenario(run, &split)
        });
        // (Not for one replayed seed: a run may form no batch of two records.)
        assert!(
            ran < 10 || split.get() * 2 >= ran,
            "only {} of {ran} runs split a batch",
            split.get()
        );
    }

    #[test]
    fn a_seed_replays() {
        assert_replays(7, |run| scenario(run, |_| {}));
        assert_replays(8, |run| scenario(run, |k| k.leader_moves += 5));
    }

    #[test]
    fn negative_control_no_dedup_is_duplicated() {
        expect_caught("duplicated", 60, |run| {
            scenario(run, |k| {
                k.broken.no_dedup = true;
                k.p_lose_response = k.p_lose_response.max(0.05);
            })
        });
    }

    #[test]
    fn negative_control_ack_on_leader_is_acknowledged_but_lost() {
        expect_caught("acknowledged-but-lost", 60, |run| {
            scenario(run, |k| {
                k.broken.ack_on_leader = true;
                k.leader_moves += 10;
            })
        });
    }

    #[test]
    fn negative_control_ignoring_gaps_is_reordered() {
        expect_caught("reordered", 60, |run| {
            scenario(run, |k| {
                k.broken.ignore_gaps = true;
                k.max_in_flight = 5;
                k.p_not_leader = k.p_not_leader.max(0.05);
            })
        });
    }

    #[test]
    fn negative_control_write_then_refuse_is_outcome_mismatch() {
        expect_caught("outcome-mismatch", 60, |run| {
            scenario(run, |k| {
                k.broken.write_then_refuse = true;
                k.p_fatal = 0.05;
                // No outcome-unknown faults: nothing else may be written twice.
                (k.p_lose_request, k.p_lose_response, k.p_retriable, k.cuts) = (0.0, 0.0, 0.0, 0);
            })
        });
    }

    #[test]
    fn negative_control_dropped_outcome_is_liveness() {
        expect_caught("liveness", 10, |run| {
            scenario(run, |k| k.drop_one_outcome = true)
        });
    }

    #[test]
    fn transactions() {
        check_seeds("transactions", 30, |run| txn_scenario(run, |_, _| {}));
    }

    #[test]
    fn transactions_coordinator_moves() {
        check_seeds("transactions_coordinator_moves", 25, |run| {
            txn_scenario(run, |k, t| {
                t.coordinator_moves += 4;
                t.p_coord_error = t.p_coord_error.max(0.05);
                t.p_lose_txn_response = t.p_lose_txn_response.max(0.05);
                k.pauses += 1;
            })
        });
    }

    #[test]
    fn transactions_timeouts_and_faults() {
        check_seeds("transactions_timeouts_and_faults", 25, |run| {
            txn_scenario(run, |k, t| {
                t.txn_timeout = t.txn_timeout.min(std::time::Duration::from_millis(400));
                k.leader_moves += 4;
                k.p_fatal = k.p_fatal.max(0.02);
                k.p_lose_response = k.p_lose_response.max(0.03);
            })
        });
    }

    /// Lost coordinator responses, then an idle producer: an AddPartitionsToTxn whose answer
    /// was lost may have opened a transaction on the coordinator; an abort that ended locally
    /// would leave it open, to time out (epoch bump) while the producer idles, fencing it.
    #[test]
    fn transactions_lost_adds_then_idle() {
        check_seeds("transactions_lost_adds_then_idle", 30, |run| {
            txn_scenario(run, |k, t| {
                (k.p_lose_request, k.p_lose_response) = (0.0, 0.0);
                t.p_lose_txn_response = t.p_lose_txn_response.max(0.15);
                t.p_commit = 0.5;
                t.txn_timeout = t.txn_timeout.min(std::time::Duration::from_millis(800));
                t.idle = (0.5, t.txn_timeout * 2);
            })
        });
    }

    /// Coordinator moves alone (the broker, the network and the leaders are fine): a correct
    /// client finds the coordinator again every time, so every commit commits.
    #[test]
    fn transactions_coordinator_moves_only() {
        check_seeds("transactions_coordinator_moves_only", 30, |run| {
            txn_scenario(run, |k, t| {
                (k.p_lose_request, k.p_lose_response, k.p_not_leader) = (0.0, 0.0, 0.0);
                (k.p_retriable, k.p_fatal) = (0.0, 0.0);
                (k.cuts, k.leader_moves, k.pauses) = (0, 0, 0);
                k.delivery_timeout = std::time::Duration::from_secs(120);
                t.txn_timeout = std::time::Duration::from_secs(60);
                (t.p_coord_error, t.p_lose_txn_response) = (0.0, 0.0);
                t.coordinator_moves += 6;
                t.strict_commits = true;
            })
        });
    }

    #[test]
    fn a_transactional_seed_replays() {
        assert_replays(11, |run| txn_scenario(run, |_, _| {}));
        assert_replays(12, |run| txn_scenario(run, |_, t| t.coordinator_moves += 3));
    }

    /// A second instance of the transactional id starts while the first runs: the first is
    /// fenced (nothing of it commits after), learns it, stops; the second runs its own
    /// transactions. Most seeds must fence a running first instance (else the scenario tests
    /// nothing).
    #[test]
    fn transactions_zombie() {
        let fenced = std::cell::Cell::new(0);
        let ran = check_seeds("transactions_zombie", 30, |run| {
            zombie_scenario(run, &fenced, |_, _, _| {})
        });
        // (Not for one replayed seed: the first instance may have ended before the second
        // started.)
        assert!(
            ran < 10 || fenced.get() * 2 >= ran,
            "only {} of {ran} runs fenced a running first instance",
            fenced.get()
        );
    }

    /// The zombie with the transactional faults turned up: coordinator moves and errors, lost
    /// coordinator responses, paused brokers (an EndTxn of the first instance parked at a
    /// paused coordinator is read after the fence).
    #[test]
    fn transactions_zombie_faults() {
        let fenced = std::cell::Cell::new(0);
        let ran = check_seeds("transactions_zombie_faults", 25, |run| {
            zombie_scenario(run, &fenced, |k, t, _| {
                t.coordinator_moves += 2;
                t.p_coord_error = t.p_coord_error.max(0.05);
                t.p_lose_txn_response = t.p_lose_txn_response.max(0.05);
                k.pauses += 1;
                k.p_lose_response = k.p_lose_response.max(0.03);
            })
        });
        assert!(
            ran < 10 || fenced.get() * 2 >= ran,
            "only {} of {ran} fenced",
            fenced.get()
        );
    }

    /// Prints the whole trace of one zombie run (`KAFKIT_SIM_SEED`, default 1) and its
    /// verdict, and where the first instance stood when fenced over `KAFKIT_SIM_SEEDS` seeds.
    #[test]
    #[ignore]
    fn show_zombie_trace() {
        let fenced = std::cell::Cell::new(0);
        let mut phases = std::collections::BTreeMap::<String, u64>::new();
        for seed in crate::sim::harness::seeds(1) {
            let mut run = Run::new(seed);
            let verdict = zombie_scenario(&mut run, &fenced, |_, _, _| {});
            for line in run.trace.lines() {
                if std::env::var_os("KAFKIT_SIM_SEED").is_some() {
                    println!("{line}");
                }
                if let Some((_, phase)) = line.split_once("while A is ") {
                    let name = phase.split([' ', '{']).next().unwrap_or("");
                    *phases.entry(name.to_owned()).or_default() += 1;
                }
            }
            println!("seed {seed}: {verdict:?}");
        }
        println!(
            "A fenced while running: {}; A's phase then: {phases:?}",
            fenced.get()
        );
    }

    #[test]
    fn a_zombie_seed_replays() {
        let fenced = std::cell::Cell::new(0);
        assert_replays(13, |run| zombie_scenario(run, &fenced, |_, _, _| {}));
    }

    #[test]
    fn negative_control_no_fence_is_zombie_committed() {
        let fenced = std::cell::Cell::new(0);
        expect_caught("zombie-committed", 30, |run| {
            zombie_scenario(run, &fenced, |_, t, _| {
                t.broken.no_fence = true;
                t.p_commit = 1.0;
            })
        });
    }

    #[test]
    fn negative_control_fence_as_invalid_state_is_zombie_unfenced() {
        let fenced = std::cell::Cell::new(0);
        expect_caught("zombie-unfenced", 30, |run| {
            zombie_scenario(run, &fenced, |k, t, _| {
                t.broken.fence_as_invalid_state = true;
                // The leaders' epoch checks would tell the first instance instead.
                (k.p_lose_request, k.p_lose_response) = (0.0, 0.0);
            })
        });
    }

    #[test]
    fn negative_control_missing_marker_is_committed_lost() {
        expect_caught("committed-lost", 30, |run| {
            txn_scenario(run, |_, t| {
                t.broken.skip_partition_zero = true;
                t.p_commit = 1.0;
            })
        });
    }

    #[test]
    fn negative_control_commit_for_abort_is_aborted_visible() {
        expect_caught("aborted-visible", 30, |run| {
            txn_scenario(run, |_, t| {
                t.broken.commit_aborts = true;
                t.p_commit = 0.0;
            })
        });
    }

    #[test]
    fn negative_control_abort_kept_open_is_phantom_transaction() {
        expect_caught("phantom-transaction", 30, |run| {
            txn_scenario(run, |_, t| {
                t.broken.keep_aborted_open = true;
                t.p_commit = 0.0;
                t.txn_timeout = std::time::Duration::from_millis(500);
                t.idle = (1.0, std::time::Duration::from_secs(1));
            })
        });
    }

    #[test]
    fn negative_control_abort_on_one_partition_is_torn_transaction() {
        expect_caught("torn-transaction", 30, |run| {
            txn_scenario(run, |_, t| {
                t.broken.tear_commits = true;
                t.p_commit = 1.0;
            })
        });
    }
}
