//! Shared by the consumer benchmark binaries: `kafkit-consume` (main workspace) and
//! `rdkafka-consume` (benches/peers, its own workspace). Included with `#[path]` by each (with
//! `produce_common.rs` for `cpu_times`), so both parse the same CLI, count the same way and
//! print the same JSON.
//!
//! CLI: --bootstrap HOST:PORT --topic T --records N [--compression LABEL] [--timeout S]
//!
//! Both consumers: no group, every partition of the topic assigned by hand from the log
//! start; fetch.min.bytes=1, fetch.max.wait.ms=500, fetch.max.bytes=52428800,
//! max.partition.fetch.bytes=1048576 (the Java client's defaults), check.crcs=true. The
//! timed span starts right before `assign` (consumer created, metadata known) and ends when
//! the N-th record has been handed to the application (key and value lengths summed, offsets
//! checked to be in order per partition).
#![allow(dead_code)]

use std::time::Duration;

/// Command-line settings of a consume run.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) bootstrap: String,
    pub(crate) topic: String,
    pub(crate) records: u64,
    pub(crate) compression: String,
    pub(crate) timeout: Duration,
}

pub(crate) fn usage(bin: &str) -> ! {
    eprintln!(
        "usage: {bin} --bootstrap HOST:PORT --topic T --records N [--compression LABEL] \
         [--timeout SECONDS]"
    );
    std::process::exit(2)
}

pub(crate) fn parse_args(bin: &str) -> Args {
    let mut args = Args {
        bootstrap: String::new(),
        topic: String::new(),
        records: 0,
        compression: "none".to_owned(),
        timeout: Duration::from_secs(300),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(bin));
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value(),
            "--topic" => args.topic = value(),
            "--records" => args.records = value().parse().unwrap_or_else(|_| usage(bin)),
            "--compression" => args.compression = value(),
            "--timeout" => {
                args.timeout = Duration::from_secs(value().parse().unwrap_or_else(|_| usage(bin)))
            }
            _ => usage(bin),
        }
    }
    if args.bootstrap.is_empty() || args.topic.is_empty() || args.records == 0 {
        usage(bin);
    }
    args
}

/// Counts what the application received; checks offsets rise per partition.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// Records whose offset was not above the previous one of their partition.
    pub(crate) out_of_order: u64,
    /// The last offset seen per partition (index), -1 before the first: a vector, not a hash
    /// map, so that the check costs both clients a few instructions per record rather than a
    /// SipHash (~110 instructions: ~10 % of kafkit's whole per-record cost was this check).
    last: Vec<i64>,
}

impl Tally {
    /// Counts one record.
    #[inline]
    pub(crate) fn add(&mut self, partition: i32, offset: i64, key_len: usize, value_len: usize) {
        self.records += 1;
        self.bytes += (key_len + value_len) as u64;
        let Ok(index) = usize::try_from(partition) else {
            self.out_of_order += 1; // no partition is negative
            return;
        };
        if index >= self.last.len() {
            self.last.resize(index + 1, -1);
        }
        let last = &mut self.last[index];
        if offset <= *last {
            self.out_of_order += 1;
        }
        *last = offset;
    }

    /// Sum over partitions of (last offset + 1): equals `records` for a complete read from
    /// offset 0 of topics without gaps.
    pub(crate) fn offsets_covered(&self) -> i64 {
        self.last.iter().map(|o| o + 1).sum()
    }
}

/// What one consume run measured.
pub(crate) struct Outcome {
    pub(crate) client: &'static str,
    pub(crate) tally: Tally,
    pub(crate) wall: Duration,
    pub(crate) cpu_start: (f64, f64),
    pub(crate) cpu_end: (f64, f64),
    /// Resident memory before the client was created (`memory()` of produce_common), in bytes.
    pub(crate) rss_base: u64,
}

impl Outcome {
    /// The JSON line the driver collects.
    pub(crate) fn json(&self, args: &Args) -> String {
        let wall_s = self.wall.as_secs_f64();
        let user = self.cpu_end.0 - self.cpu_start.0;
        let sys = self.cpu_end.1 - self.cpu_start.1;
        let n = self.tally.records;
        let per_million = if n > 0 {
            (user + sys) * 1e6 / n as f64
        } else {
            f64::NAN
        };
        format!(
            concat!(
                "{{\"client\":\"{}\",\"topic\":\"{}\",\"compression\":\"{}\",",
                "\"records\":{},\"consumed\":{},\"bytes\":{},\"out_of_order\":{},",
                "\"offsets_covered\":{},\"wall_s\":{:.6},",
                "\"records_per_s\":{:.1},\"mb_per_s\":{:.3},\"cpu_user_s\":{:.6},",
                "\"cpu_sys_s\":{:.6},\"cpu_s_per_million\":{:.6},{}}}"
            ),
            self.client,
            args.topic,
            args.compression,
            args.records,
            n,
            self.tally.bytes,
            self.tally.out_of_order,
            self.tally.offsets_covered(),
            wall_s,
            n as f64 / wall_s,
            self.tally.bytes as f64 / wall_s / 1e6,
            user,
            sys,
            per_million,
            super::common::memory_json(self.rss_base)
        )
    }
}
