//! rust-rdkafka (bundled librdkafka) peer of `kafkit-rebalance` for `benches/run-rebalance.sh`:
//! consumer-group rebalance time (join, scale-up, scale-down). Same CLI and JSON as
//! `kafkit-rebalance`; what is measured: `benches/src/rebalance_common.rs`.
//!
//! Each member is a `BaseConsumer` of its own polled by a thread of its own. rust-rdkafka's
//! default rebalance callback assigns (eager) or incrementally assigns (cooperative, which
//! KIP-848 groups are); its `post_rebalance` hook then copies `assignment()` into the member's
//! slot, which the observer reads. Before t0 each member asks for the topic's metadata, so its
//! bootstrap connection is up, as `Consumer::new` has it for kafkit.

#[path = "../../../src/produce_common.rs"]
mod common;
#[path = "../../../src/rebalance_common.rs"]
mod rebalance;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
use rebalance::{Args, Outcome};

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("rdkafka-rebalance: {what}: {err}");
    std::process::exit(1)
}

/// A member's current assignment as the observer reads it, or why `assignment()` failed.
type Slot = Arc<Mutex<Result<Vec<Option<i32>>, String>>>;

/// Copies the assignment into the slot after each rebalance callback.
struct Context {
    topic: String,
    slot: Slot,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        // `assignment()` fails while the consumer is being destroyed (the revoke of its
        // close): the error is kept, and fails the run only if the observer still reads
        // this member.
        let owned = consumer
            .assignment()
            .map(|assigned| {
                assigned
                    .elements()
                    .iter()
                    .map(|e| (e.topic() == self.topic).then_some(e.partition()))
                    .collect()
            })
            .map_err(|e| e.to_string());
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = owned;
    }
}

/// One group member: its slot and the thread running its consumer.
struct Member {
    slot: Slot,
    stop: Arc<AtomicBool>,
    go: Sender<()>,
    paused: Receiver<()>,
    close: Sender<()>,
    thread: JoinHandle<()>,
}

impl Member {
    /// Starts a member's thread: it creates a consumer, fetches the topic's metadata, and
    /// waits for [`start`](Self::start).
    fn connect(args: &Args) -> Member {
        let slot: Slot = Arc::new(Mutex::new(Ok(Vec::new())));
        let stop = Arc::new(AtomicBool::new(false));
        let (go, go_rx) = channel();
        let (ready_tx, ready) = channel();
        let (paused_tx, paused) = channel();
        let (close, close_rx) = channel::<()>();
        let (args2, slot2, stop2) = (args.clone(), slot.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let args = args2;
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", &args.bootstrap)
                .set("group.id", &args.group)
                .set("group.protocol", &args.protocol)
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .set("enable.partition.eof", "false");
            if args.protocol == "classic" {
                config.set("partition.assignment.strategy", args.assignor());
            }
            let context = Context {
                topic: args.topic.clone(),
                slot: slot2,
            };
            let consumer: BaseConsumer<Context> = config
                .create_with_context(context)
                .unwrap_or_else(|e| fail("cannot create consumer", e));
            consumer
                .fetch_metadata(Some(&args.topic), Duration::from_secs(30))
                .unwrap_or_else(|e| fail("metadata", e));
            let _ = ready_tx.send(());
            if go_rx.recv().is_err() {
                return;
            }
            consumer
                .subscribe(&[args.topic.as_str()])
                .unwrap_or_else(|e| fail("subscribe", e));
            while !stop2.load(Ordering::Relaxed) {
                if let Some(Err(e)) = consumer.poll(rebalance::POLL) {
                    fail("poll", e);
                }
            }
            let _ = paused_tx.send(());
            let _ = close_rx.recv();
            // Drop closes the consumer: leaves the group, serving the revoke callback.
            drop(consumer);
        });
        if ready.recv().is_err() {
            fail("member", "thread ended before it connected");
        }
        Member {
            slot,
            stop,
            go,
            paused,
            close,
            thread,
        }
    }

    fn start(&self) {
        self.go.send(()).unwrap_or_else(|e| fail("start", e));
    }

    /// Stops the polling loop and waits until it has.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.paused.recv().unwrap_or_else(|e| fail("stop", e));
    }

    /// Stops polling (if not yet) and has the thread close the consumer.
    fn close(self) -> JoinHandle<()> {
        if !self.stop.swap(true, Ordering::Relaxed) {
            self.paused.recv().unwrap_or_else(|e| fail("stop", e));
        }
        self.close.send(()).unwrap_or_else(|e| fail("close", e));
        self.thread
    }
}

/// Waits until `members` are settled (see `rebalance::check`); the time since `t0`.
fn settle(phase: &str, members: &[Member], args: &Args, t0: Instant) -> Duration {
    loop {
        let assignments: Vec<Vec<Option<i32>>> = members
            .iter()
            .map(|m| m.slot.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| fail(phase, format!("assignment: {e}")));
        let state = rebalance::check(&assignments, args.partitions);
        let elapsed = t0.elapsed();
        match state {
            Ok(()) => return elapsed,
            Err(state) if elapsed > args.timeout => fail(
                phase,
                format!("not settled within {:?}: {state}", args.timeout),
            ),
            Err(_) => std::thread::sleep(rebalance::OBSERVE_EVERY),
        }
    }
}

fn main() {
    let args = rebalance::parse_args("rdkafka-rebalance");
    let mut members: Vec<Member> = (0..args.members).map(|_| Member::connect(&args)).collect();
    let mut outcome = Outcome {
        cpu_start: common::cpu_times(),
        ..Outcome::default()
    };

    let t0 = Instant::now();
    for m in &members {
        m.start();
    }
    outcome.join = settle("join", &members, &args, t0);

    let newcomer = Member::connect(&args);
    let t0 = Instant::now();
    newcomer.start();
    members.push(newcomer);
    outcome.scale_up = settle("scale-up", &members, &args, t0);

    let leaver = members.remove(0);
    leaver.stop();
    let t0 = Instant::now();
    let leaving = leaver.close();
    outcome.scale_down = settle("scale-down", &members, &args, t0);
    outcome.cpu_end = common::cpu_times();
    // The measurement is complete: printed before the (untimed) close, whose failure is
    // reported but does not void it.
    println!("{}", outcome.json("rdkafka", &args));

    let mut threads = vec![leaving];
    threads.extend(members.into_iter().map(Member::close));
    let deadline = Instant::now() + rebalance::CLOSE_TIMEOUT;
    for t in threads {
        while !t.is_finished() {
            if Instant::now() > deadline {
                fail("close", "consumers not closed in time");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if t.join().is_err() {
            fail("close", "a member thread panicked");
        }
    }
}
