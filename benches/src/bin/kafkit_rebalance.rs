//! kafkit consumer-group rebalance time (join, scale-up, scale-down), the kafkit side of
//! `benches/run-rebalance.sh`. Same CLI and JSON as `rdkafka-rebalance` (benches/peers); what
//! is measured: `benches/src/rebalance_common.rs`. Each member is a `Consumer` of its own
//! (its own connections), polled by a tokio task; the observer reads `Consumer::assignment`.

#[path = "../produce_common.rs"]
mod common;
#[path = "../rebalance_common.rs"]
mod rebalance;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit::config::ConsumerConfig;
use kafkit::consumer::Consumer;
use rebalance::{Args, Outcome};
use tokio::task::JoinHandle;

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("kafkit-rebalance: {what}: {err}");
    std::process::exit(1)
}

/// One group member: its consumer and the task polling it.
struct Member {
    consumer: Arc<Consumer>,
    stop: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl Member {
    /// A connected consumer, not subscribed yet.
    async fn connect(args: &Args) -> Member {
        let mut props = vec![
            ("bootstrap.servers", args.bootstrap.as_str()),
            ("group.id", args.group.as_str()),
            ("group.protocol", args.protocol.as_str()),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ];
        if args.protocol == "classic" {
            props.push(("partition.assignment.strategy", args.assignor()));
        }
        let config = ConsumerConfig::from_properties(props).unwrap_or_else(|e| fail("config", e));
        let consumer = Consumer::new(config)
            .await
            .unwrap_or_else(|e| fail("connect", e));
        Member {
            consumer: Arc::new(consumer),
            stop: Arc::new(AtomicBool::new(false)),
            task: None,
        }
    }

    /// Subscribes (in the member's task) and polls until stopped.
    fn start(&mut self, topic: &str) {
        let (consumer, stop, topic) = (self.consumer.clone(), self.stop.clone(), topic.to_owned());
        self.task = Some(tokio::spawn(async move {
            consumer
                .subscribe([topic])
                .await
                .unwrap_or_else(|e| fail("subscribe", e));
            while !stop.load(Ordering::Relaxed) {
                consumer
                    .poll(rebalance::POLL)
                    .await
                    .unwrap_or_else(|e| fail("poll", e));
            }
        }));
    }

    /// Stops the polling task (the consumer stays in the group until closed).
    async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            task.await.unwrap_or_else(|e| fail("member task", e));
        }
    }

    /// Stops polling and closes the consumer (leaving the group).
    async fn close(mut self) {
        self.stop().await;
        self.consumer
            .close(rebalance::CLOSE_TIMEOUT)
            .await
            .unwrap_or_else(|e| fail("close", e));
    }
}

/// Waits until `members` are settled (see `rebalance::check`); the time since `t0`.
async fn settle(phase: &str, members: &[Member], args: &Args, t0: Instant) -> Duration {
    loop {
        let assignments: Vec<Vec<Option<i32>>> = members
            .iter()
            .map(|m| {
                m.consumer
                    .assignment()
                    .into_iter()
                    .map(|tp| (tp.topic == args.topic).then_some(tp.partition))
                    .collect()
            })
            .collect();
        let state = rebalance::check(&assignments, args.partitions);
        let elapsed = t0.elapsed();
        match state {
            Ok(()) => return elapsed,
            Err(state) if elapsed > args.timeout => fail(
                phase,
                format!("not settled within {:?}: {state}", args.timeout),
            ),
            Err(_) => tokio::time::sleep(rebalance::OBSERVE_EVERY).await,
        }
    }
}

#[tokio::main]
async fn main() {
    let args = rebalance::parse_args("kafkit-rebalance");
    let mut members = Vec::with_capacity(args.members + 1);
    for _ in 0..args.members {
        members.push(Member::connect(&args).await);
    }
    let mut outcome = Outcome {
        cpu_start: common::cpu_times(),
        ..Outcome::default()
    };

    let t0 = Instant::now();
    for m in &mut members {
        m.start(&args.topic);
    }
    outcome.join = settle("join", &members, &args, t0).await;

    let mut newcomer = Member::connect(&args).await;
    let t0 = Instant::now();
    newcomer.start(&args.topic);
    members.push(newcomer);
    outcome.scale_up = settle("scale-up", &members, &args, t0).await;

    let mut leaver = members.remove(0);
    leaver.stop().await;
    let t0 = Instant::now();
    let leaving = tokio::spawn(leaver.close());
    outcome.scale_down = settle("scale-down", &members, &args, t0).await;
    outcome.cpu_end = common::cpu_times();
    // The measurement is complete: printed before the (untimed) close, whose failure is
    // reported but does not void it.
    println!("{}", outcome.json("kafkit", &args));

    leaving.await.unwrap_or_else(|e| fail("leave", e));
    let closing: Vec<_> = members
        .into_iter()
        .map(|m| tokio::spawn(m.close()))
        .collect();
    for c in closing {
        c.await.unwrap_or_else(|e| fail("close", e));
    }
}
