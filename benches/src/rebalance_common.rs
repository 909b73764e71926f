//! Shared by the rebalance benchmark binaries: `kafkit-rebalance` (main workspace) and
//! `rdkafka-rebalance` (benches/peers). Included with `#[path]` by each (with
//! `produce_common.rs` for `cpu_times`), so both parse the same CLI, decide "settled" the same
//! way and print the same JSON; `benches/run-rebalance.sh` drives them.
//!
//! CLI: --bootstrap HOST:PORT --topic T --partitions P --members M --group G
//!      --protocol classic|consumer [--timeout S (default 120, per phase)]
//!
//! What a run does, in one process (kafkit: one tokio task per member; rdkafka: one thread per
//! member), against an existing topic T of P partitions and a fresh group G:
//!
//! 1. **join**: M consumers are created and connected first (not timed); at t0 all M subscribe
//!    to T and keep polling. Timed until the group is *settled* (below).
//! 2. **scale-up**: one more consumer is created and connected (not timed); at t0 it
//!    subscribes. Timed until the M+1 members are settled.
//! 3. **scale-down**: the first member stops polling (not timed); at t0 it is closed
//!    (LeaveGroup / the KIP-848 leave heartbeat), off the timing thread. Timed until the M
//!    remaining members are settled.
//!
//! *Settled* (see [`check`]): the union of the live members' current assignments, as each
//! client's own API reports them, holds each of the P partitions exactly once and nothing
//! else, and every member owns ⌊P/M⌋ or ⌈P/M⌉ partitions (what the range and uniform
//! assignors give for one topic). The balance condition keeps a transient state from counting:
//! with KIP-848 the first member to join briefly owns every partition. An observer reads the
//! assignments every [`OBSERVE_EVERY`]. Each phase has a deadline (`--timeout`): past it the
//! run fails with what the assignments were. CPU is getrusage of the whole process from the
//! first t0 to the end of the scale-down phase. The JSON line is printed when the scale-down
//! phase ends, before the remaining consumers are closed (untimed; a close that fails or takes
//! longer than [`CLOSE_TIMEOUT`] is reported on stderr with exit status 1).
#![allow(dead_code)]

use std::time::Duration;

/// How often the observer reads the members' assignments.
pub(crate) const OBSERVE_EVERY: Duration = Duration::from_millis(2);

/// The poll timeout of each member's loop (members must keep polling: classic groups are
/// driven by it).
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// The time each client is given to close its consumers at the end of a run (not timed).
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Command-line settings of a rebalance run.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) bootstrap: String,
    pub(crate) topic: String,
    pub(crate) partitions: u32,
    pub(crate) members: usize,
    pub(crate) group: String,
    pub(crate) protocol: String,
    /// The deadline of each phase.
    pub(crate) timeout: Duration,
}

impl Args {
    /// The classic assignor both clients are configured with (`partition.assignment.strategy`);
    /// KIP-848 groups use the broker's default (`group.consumer.assignors`: uniform).
    pub(crate) fn assignor(&self) -> &'static str {
        if self.protocol == "classic" {
            "range"
        } else {
            "uniform"
        }
    }
}

pub(crate) fn usage(bin: &str) -> ! {
    eprintln!(
        "usage: {bin} --bootstrap HOST:PORT --topic T --partitions P --members M --group G \
         --protocol classic|consumer [--timeout SECONDS]"
    );
    std::process::exit(2)
}

pub(crate) fn parse_args(bin: &str) -> Args {
    let mut args = Args {
        bootstrap: String::new(),
        topic: String::new(),
        partitions: 0,
        members: 0,
        group: String::new(),
        protocol: String::new(),
        timeout: Duration::from_secs(120),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(bin));
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value(),
            "--topic" => args.topic = value(),
            "--partitions" => args.partitions = value().parse().unwrap_or_else(|_| usage(bin)),
            "--members" => args.members = value().parse().unwrap_or_else(|_| usage(bin)),
            "--group" => args.group = value(),
            "--protocol" => args.protocol = value(),
            "--timeout" => {
                args.timeout = Duration::from_secs(value().parse().unwrap_or_else(|_| usage(bin)))
            }
            _ => usage(bin),
        }
    }
    let bad = args.bootstrap.is_empty()
        || args.topic.is_empty()
        || args.group.is_empty()
        || !matches!(args.protocol.as_str(), "classic" | "consumer")
        || args.members == 0
        // Every member of the M+1 must be able to own a partition.
        || (args.partitions as usize) <= args.members;
    if bad {
        usage(bin);
    }
    args
}

/// Whether the live members' assignments (partition numbers of the topic; `None` for a
/// partition of another topic) are settled over `partitions` partitions: `Ok`, or what is
/// still wrong, for the timeout message.
pub(crate) fn check(assignments: &[Vec<Option<i32>>], partitions: u32) -> Result<(), String> {
    let members = assignments.len();
    if members == 0 {
        return Err("no members".to_owned());
    }
    let p = partitions as usize;
    let (low, high) = (p / members, p.div_ceil(members));
    let mut owners = vec![0u32; p];
    let mut foreign = 0;
    for owned in assignments {
        for partition in owned {
            match partition.and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n < p => owners[n] += 1,
                _ => foreign += 1,
            }
        }
    }
    let missing = owners.iter().filter(|&&n| n == 0).count();
    let doubled = owners.iter().filter(|&&n| n > 1).count();
    let sizes: Vec<usize> = assignments.iter().map(Vec::len).collect();
    if missing == 0
        && doubled == 0
        && foreign == 0
        && sizes.iter().all(|n| (low..=high).contains(n))
    {
        Ok(())
    } else {
        Err(format!(
            "{missing} of {p} partitions unowned, {doubled} owned twice, {foreign} foreign; \
             partitions per member {sizes:?} (want {low}..={high})"
        ))
    }
}

/// What one rebalance run measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) join: Duration,
    pub(crate) scale_up: Duration,
    pub(crate) scale_down: Duration,
    pub(crate) cpu_start: (f64, f64),
    pub(crate) cpu_end: (f64, f64),
}

impl Outcome {
    /// The JSON line the driver collects.
    pub(crate) fn json(&self, client: &str, args: &Args) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let cpu = (self.cpu_end.0 - self.cpu_start.0) + (self.cpu_end.1 - self.cpu_start.1);
        format!(
            "{{\"client\":\"{client}\",\"protocol\":\"{}\",\"assignor\":\"{}\",\"members\":{},\
             \"partitions\":{},\"join_ms\":{:.3},\"scale_up_ms\":{:.3},\"scale_down_ms\":{:.3},\
             \"cpu_s\":{:.3}}}",
            args.protocol,
            args.assignor(),
            args.members,
            args.partitions,
            ms(self.join),
            ms(self.scale_up),
            ms(self.scale_down),
            cpu,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(parts: &[&[i32]]) -> Vec<Vec<Option<i32>>> {
        parts
            .iter()
            .map(|m| m.iter().map(|&p| Some(p)).collect())
            .collect()
    }

    #[test]
    fn settled_needs_exact_cover_and_balance() {
        assert_eq!(check(&of(&[&[0, 1, 2], &[3, 4]]), 5), Ok(()));
        // A partition missing, one owned twice, one out of range.
        assert!(check(&of(&[&[0, 1], &[3, 4]]), 5).is_err());
        assert!(check(&of(&[&[0, 1, 2], &[2, 3, 4]]), 5).is_err());
        assert!(check(&of(&[&[0, 1, 2], &[3, 4, 5]]), 5).is_err());
        // Exact cover, unbalanced (KIP-848's first member owning all; a newcomer with none).
        assert!(check(&of(&[&[0, 1, 2, 3, 4], &[]]), 5).is_err());
        assert!(check(&of(&[&[0, 1, 2, 3], &[4]]), 5).is_err());
        // Another topic's partition.
        let mut foreign = of(&[&[0, 1, 2], &[3, 4]]);
        foreign[1].push(None);
        assert!(check(&foreign, 5).is_err());
        assert!(check(&[], 5).is_err());
    }

    #[test]
    fn json_names_every_field() {
        let args = Args {
            bootstrap: "b:1".to_owned(),
            topic: "t".to_owned(),
            partitions: 60,
            members: 5,
            group: "g".to_owned(),
            protocol: "consumer".to_owned(),
            timeout: Duration::from_secs(1),
        };
        let outcome = Outcome {
            join: Duration::from_millis(1500),
            ..Outcome::default()
        };
        let line = outcome.json("kafkit", &args);
        assert!(line.starts_with("{\"client\":\"kafkit\",\"protocol\":\"consumer\""));
        assert!(line.contains("\"assignor\":\"uniform\",\"members\":5,\"partitions\":60"));
        assert!(line.contains("\"join_ms\":1500.000,\"scale_up_ms\":0.000"));
    }
}
