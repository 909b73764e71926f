//! Shared by the latency benchmark binaries: `kafkit-latency` (main workspace) and
//! `rdkafka-latency` (benches/peers). Included with `#[path]` by each (with `produce_common.rs`
//! for `cpu_times`), so both parse the same CLI, pace and time the same way and print the same
//! JSON; `benches/run-latency.sh` drives them.
//!
//! CLI: --bootstrap HOST:PORT --topic T --rate R --seconds S --linger-ms L
//!      [--size B (default 100)] [--warmup S (default 2)] [--timeout S (default 60)]
//!
//! What a run does: one producer (acks=all, idempotence, `linger.ms` = L, batch.size=16384, no
//! compression, no key: the sticky partitioner) and, in the same process, one consumer with
//! every partition of the (fresh) topic assigned from the log start (fetch.min.bytes=1,
//! fetch.max.wait.ms=500: the Java defaults). Records are sent on an open-loop schedule: record
//! i is due at `start + i / R`, whatever happened to the ones before (a sender that falls
//! behind sends the overdue records at once: no coordinated omission). Each payload carries its
//! index and its due time (µs since the Unix epoch, big-endian, bytes 0..16).
//!
//! Two latencies per record, both from the record's **due time** (so time a record spent
//! waiting to be sent counts): **ack** = due → its delivery report (acknowledged by the
//! broker), **e2e** = due → the consumer handing it to the application. The first W seconds
//! of records are sent but not recorded. Percentiles are nearest-rank over every recorded
//! record; CPU is getrusage of the whole process (producer and consumer) over the run.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Command-line settings of a latency run.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) bootstrap: String,
    pub(crate) topic: String,
    pub(crate) rate: u64,
    pub(crate) seconds: f64,
    pub(crate) linger_ms: u64,
    pub(crate) size: usize,
    pub(crate) warmup: f64,
    pub(crate) timeout: Duration,
}

impl Args {
    /// Records sent in all (warm-up included).
    pub(crate) fn total(&self) -> u64 {
        ((self.seconds + self.warmup) * self.rate as f64).ceil() as u64
    }

    /// Records of the warm-up (not recorded).
    pub(crate) fn warmup_records(&self) -> u64 {
        (self.warmup * self.rate as f64).ceil() as u64
    }

    /// Time from the run's start at which record `i` is due.
    pub(crate) fn due(&self, i: u64) -> Duration {
        Duration::from_nanos(i.saturating_mul(1_000_000_000) / self.rate)
    }
}

pub(crate) fn usage(bin: &str) -> ! {
    eprintln!(
        "usage: {bin} --bootstrap HOST:PORT --topic T --rate R --seconds S --linger-ms L \
         [--size B] [--warmup S] [--timeout S]"
    );
    std::process::exit(2)
}

pub(crate) fn parse_args(bin: &str) -> Args {
    let mut args = Args {
        bootstrap: String::new(),
        topic: String::new(),
        rate: 0,
        seconds: 0.0,
        linger_ms: 0,
        size: 100,
        warmup: 2.0,
        timeout: Duration::from_secs(60),
    };
    let mut linger = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(bin));
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value(),
            "--topic" => args.topic = value(),
            "--rate" => args.rate = value().parse().unwrap_or_else(|_| usage(bin)),
            "--seconds" => args.seconds = value().parse().unwrap_or_else(|_| usage(bin)),
            "--linger-ms" => linger = Some(value().parse().unwrap_or_else(|_| usage(bin))),
            "--size" => args.size = value().parse().unwrap_or_else(|_| usage(bin)),
            "--warmup" => args.warmup = value().parse().unwrap_or_else(|_| usage(bin)),
            "--timeout" => {
                args.timeout = Duration::from_secs(value().parse().unwrap_or_else(|_| usage(bin)))
            }
            _ => usage(bin),
        }
    }
    match linger {
        Some(l) => args.linger_ms = l,
        None => usage(bin),
    }
    let valid = |s: f64| s.is_finite() && s >= 0.0;
    if args.bootstrap.is_empty()
        || args.topic.is_empty()
        || args.rate == 0
        || !(valid(args.seconds) && args.seconds > 0.0)
        || !valid(args.warmup)
        || args.size < 16
    {
        usage(bin)
    }
    args
}

/// Microseconds since the Unix epoch (the clock both sides of a payload read).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Record `index`'s payload: index and due time (µs since the epoch) big-endian, then filler.
pub(crate) fn payload(index: u64, due_us: u64, size: usize) -> Vec<u8> {
    let mut p = vec![b'x'; size];
    p[..8].copy_from_slice(&index.to_be_bytes());
    p[8..16].copy_from_slice(&due_us.to_be_bytes());
    p
}

/// A payload's index and due time, if it is one of ours.
pub(crate) fn parse(payload: &[u8]) -> Option<(u64, u64)> {
    let index = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let due = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    Some((index, due))
}

/// Latencies of the recorded records, in µs.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    values: Vec<u64>,
}

impl Samples {
    pub(crate) fn with_capacity(n: u64) -> Samples {
        Samples {
            values: Vec::with_capacity(usize::try_from(n).unwrap_or(0)),
        }
    }

    pub(crate) fn push(&mut self, us: u64) {
        self.values.push(us);
    }

    pub(crate) fn len(&self) -> u64 {
        self.values.len() as u64
    }

    /// Nearest-rank percentiles p50, p99, p99.9 and the maximum, in ms (NaN when empty).
    pub(crate) fn summary(&mut self) -> [f64; 4] {
        if self.values.is_empty() {
            return [f64::NAN; 4];
        }
        self.values.sort_unstable();
        let n = self.values.len();
        let rank = |q: f64| {
            let r = (q * n as f64).ceil() as usize;
            self.values[r.clamp(1, n) - 1] as f64 / 1000.0
        };
        [
            rank(0.50),
            rank(0.99),
            rank(0.999),
            self.values[n - 1] as f64 / 1000.0,
        ]
    }
}

/// What one latency run measured.
pub(crate) struct Outcome {
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    pub(crate) failed: u64,
    pub(crate) consumed: u64,
    pub(crate) ack: Samples,
    pub(crate) e2e: Samples,
    /// Wall time from the first due time to the last record's acknowledgement.
    pub(crate) wall: Duration,
    pub(crate) cpu_start: (f64, f64),
    pub(crate) cpu_end: (f64, f64),
}

impl Outcome {
    pub(crate) fn new(args: &Args) -> Outcome {
        let n = args.total() - args.warmup_records();
        Outcome {
            sent: 0,
            acked: 0,
            failed: 0,
            consumed: 0,
            ack: Samples::with_capacity(n),
            e2e: Samples::with_capacity(n),
            wall: Duration::ZERO,
            cpu_start: (0.0, 0.0),
            cpu_end: (0.0, 0.0),
        }
    }

    /// The JSON line the driver collects.
    pub(crate) fn json(&mut self, client: &str, args: &Args) -> String {
        let [a50, a99, a999, amax] = self.ack.summary();
        let [e50, e99, e999, emax] = self.e2e.summary();
        let cpu = (self.cpu_end.0 - self.cpu_start.0) + (self.cpu_end.1 - self.cpu_start.1);
        let num = |v: f64| {
            if v.is_finite() {
                format!("{v:.3}")
            } else {
                "null".to_owned()
            }
        };
        format!(
            "{{\"client\":\"{client}\",\"rate\":{},\"seconds\":{},\"linger_ms\":{},\"size\":{},\
             \"sent\":{},\"acked\":{},\"failed\":{},\"consumed\":{},\"recorded_ack\":{},\
             \"recorded_e2e\":{},\"ack_p50_ms\":{},\"ack_p99_ms\":{},\"ack_p999_ms\":{},\
             \"ack_max_ms\":{},\"e2e_p50_ms\":{},\"e2e_p99_ms\":{},\"e2e_p999_ms\":{},\
             \"e2e_max_ms\":{},\"wall_s\":{:.3},\"cpu_s\":{:.3}}}",
            args.rate,
            args.seconds,
            args.linger_ms,
            args.size,
            self.sent,
            self.acked,
            self.failed,
            self.consumed,
            self.ack.len(),
            self.e2e.len(),
            num(a50),
            num(a99),
            num(a999),
            num(amax),
            num(e50),
            num(e99),
            num(e999),
            num(emax),
            self.wall.as_secs_f64(),
            cpu,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_percentiles_are_nearest_rank() {
        let p = payload(7, 1_700_000_000_000_000, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(parse(&p), Some((7, 1_700_000_000_000_000)));
        assert_eq!(parse(&p[..15]), None);
        let mut s = Samples::default();
        for us in (1..=1000).rev() {
            s.push(us * 1000);
        }
        assert_eq!(s.summary(), [500.0, 990.0, 999.0, 1000.0]);
    }
}
