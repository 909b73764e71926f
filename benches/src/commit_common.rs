//! Shared by the commit benchmark binaries: `kafkit-commit` (main workspace) and
//! `rdkafka-commit` (benches/peers). Included with `#[path]` by each (with
//! `produce_common.rs` for `cpu_times`), so both parse the same CLI, time the same way and
//! print the same JSON as `benches/java/CommitBench.java`.
//!
//! CLI: --bootstrap HOST:PORT --topic T --group G --protocol classic|consumer
//!      --mode latency|throughput [--commits N] [--records N] [--timeout S]
//!
//! Both modes: a consumer subscribed to T in group G (`group.protocol` as given), the Java
//! client's defaults (`fetch.max.wait.ms`=500, `fetch.min.bytes`=1, `max.poll.records`=500),
//! auto-commit off, `auto.offset.reset`=earliest, and a synchronous commit of the consumed
//! positions after every poll.
//!
//! - `latency`: the topic holds a few records and nothing more is written: after reading them
//!   the consumer's Fetch long-polls, as in a caught-up consumer. 10 unrecorded warm-up rounds
//!   (joined, coordinator known), then N rounds of `poll(50 ms)` + timed `commit_sync`.
//! - `throughput`: the topic holds N records; poll (≤ 500 records) → process (sum key and value
//!   lengths) → commit, until all N are read. The timed span starts when the first poll that
//!   returns records returns (the join and the first fetch are not in it: they differ by
//!   protocol and client, and are not what is compared) and ends after the commit of the batch
//!   holding the N-th record; records/s counts the records after that first batch.
#![allow(dead_code)]

use std::time::Duration;

/// Command-line settings of a commit run.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) bootstrap: String,
    pub(crate) topic: String,
    pub(crate) group: String,
    pub(crate) protocol: String,
    pub(crate) mode: Mode,
    pub(crate) commits: usize,
    pub(crate) records: u64,
    pub(crate) timeout: Duration,
}

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Latency,
    Throughput,
}

/// Unrecorded rounds before a latency run's timed ones.
pub(crate) const WARMUP_COMMITS: usize = 10;
/// The poll timeout of a latency round.
pub(crate) const LATENCY_POLL: Duration = Duration::from_millis(50);
/// The batch a throughput round commits after (`max.poll.records`, Java's default).
pub(crate) const MAX_POLL_RECORDS: usize = 500;

pub(crate) fn usage(bin: &str) -> ! {
    eprintln!(
        "usage: {bin} --bootstrap HOST:PORT --topic T --group G --protocol classic|consumer \
         --mode latency|throughput [--commits N] [--records N] [--timeout SECONDS]"
    );
    std::process::exit(2)
}

pub(crate) fn parse_args(bin: &str) -> Args {
    let mut args = Args {
        bootstrap: String::new(),
        topic: String::new(),
        group: String::new(),
        protocol: "classic".to_owned(),
        mode: Mode::Latency,
        commits: 200,
        records: 0,
        timeout: Duration::from_secs(300),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(bin));
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value(),
            "--topic" => args.topic = value(),
            "--group" => args.group = value(),
            "--protocol" => args.protocol = value(),
            "--mode" => {
                args.mode = match value().as_str() {
                    "latency" => Mode::Latency,
                    "throughput" => Mode::Throughput,
                    _ => usage(bin),
                }
            }
            "--commits" => args.commits = value().parse().unwrap_or_else(|_| usage(bin)),
            "--records" => args.records = value().parse().unwrap_or_else(|_| usage(bin)),
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
        || (args.mode == Mode::Throughput && args.records == 0)
        || (args.mode == Mode::Latency && args.commits == 0);
    if bad {
        usage(bin);
    }
    args
}

/// What one commit run measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Each timed commit's duration.
    pub(crate) commits: Vec<Duration>,
    /// Records handed to the application (throughput mode).
    pub(crate) records: u64,
    /// Key and value bytes of those records.
    pub(crate) bytes: u64,
    /// Records read before the timed span began (throughput mode: the first batch).
    pub(crate) untimed_records: u64,
    /// The timed span (throughput mode: subscribe to the last commit; latency: the rounds).
    pub(crate) wall: Duration,
    pub(crate) cpu_start: (f64, f64),
    pub(crate) cpu_end: (f64, f64),
}

/// The `q`-quantile (0..=1) of sorted `ms`, nearest rank.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Outcome {
    /// The JSON line the driver collects.
    pub(crate) fn json(&self, client: &str, args: &Args) -> String {
        let mut ms: Vec<f64> = self.commits.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let mean = if ms.is_empty() {
            f64::NAN
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        let wall_s = self.wall.as_secs_f64();
        let cpu = (self.cpu_end.0 - self.cpu_start.0) + (self.cpu_end.1 - self.cpu_start.1);
        let mode = match args.mode {
            Mode::Latency => "latency",
            Mode::Throughput => "throughput",
        };
        format!(
            concat!(
                "{{\"client\":\"{}\",\"mode\":\"{}\",\"protocol\":\"{}\",\"topic\":\"{}\",",
                "\"commits\":{},\"commit_p50_ms\":{:.3},\"commit_p99_ms\":{:.3},",
                "\"commit_mean_ms\":{:.3},\"commit_max_ms\":{:.3},\"records\":{},\"bytes\":{},",
                "\"wall_s\":{:.6},\"records_per_s\":{:.1},\"commits_per_s\":{:.2},",
                "\"cpu_s\":{:.6}}}"
            ),
            client,
            mode,
            args.protocol,
            args.topic,
            ms.len(),
            quantile(&ms, 0.5),
            quantile(&ms, 0.99),
            mean,
            ms.last().copied().unwrap_or(f64::NAN),
            self.records,
            self.bytes,
            wall_s,
            (self.records - self.untimed_records) as f64 / wall_s,
            ms.len() as f64 / wall_s,
            cpu
        )
    }
}
