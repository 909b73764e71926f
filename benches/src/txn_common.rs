//! Shared by the transactional benchmark binaries: `kafkit-txn` (main workspace) and
//! `rdkafka-txn` (benches/peers). Included with `#[path]` by each (with `produce_common.rs`
//! for the payload file and `cpu_times`), so both parse the same CLI, time the same way and
//! print the same JSON as `benches/java/TxnBench.java`.
//!
//! CLI: --bootstrap HOST:PORT --topic T --payload-file F --txn-size S --transactions N
//!      --transactional-id ID [--warmup-txns W (default 2)]
//!
//! Each client: one transactional producer (`transactional.id` = ID, the Java client's
//! defaults spelled out: acks=all, idempotence, linger.ms=5, batch.size=16384, no
//! compression), `init_transactions`, W unrecorded warm-up transactions of S records (
//! coordinator found, partitions known, connections open), then N timed transactions, each
//! `begin` → S sends (no key: the sticky partitioner) → `commit` (which flushes and returns
//! once the coordinator acknowledged EndTxn). Delivery outcomes are not collected per record:
//! a commit that succeeds means every record of its transaction was acknowledged, so
//! `records` = committed transactions × S. Per transaction: the time from `begin` to the
//! commit's return. CPU (getrusage, all threads) and wall time cover the N transactions.
#![allow(dead_code)]

use std::time::Duration;

/// Command-line settings of a transactional run.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) bootstrap: String,
    pub(crate) topic: String,
    pub(crate) payload_file: String,
    pub(crate) txn_size: u64,
    pub(crate) transactions: u64,
    pub(crate) transactional_id: String,
    pub(crate) warmup_txns: u64,
}

pub(crate) fn usage(bin: &str) -> ! {
    eprintln!(
        "usage: {bin} --bootstrap HOST:PORT --topic T --payload-file F --txn-size S \
         --transactions N --transactional-id ID [--warmup-txns W]"
    );
    std::process::exit(2)
}

pub(crate) fn parse_args(bin: &str) -> Args {
    let mut args = Args {
        bootstrap: String::new(),
        topic: String::new(),
        payload_file: String::new(),
        txn_size: 0,
        transactions: 0,
        transactional_id: String::new(),
        warmup_txns: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(bin));
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value(),
            "--topic" => args.topic = value(),
            "--payload-file" => args.payload_file = value(),
            "--txn-size" => args.txn_size = value().parse().unwrap_or_else(|_| usage(bin)),
            "--transactions" => args.transactions = value().parse().unwrap_or_else(|_| usage(bin)),
            "--transactional-id" => args.transactional_id = value(),
            "--warmup-txns" => args.warmup_txns = value().parse().unwrap_or_else(|_| usage(bin)),
            _ => usage(bin),
        }
    }
    if args.bootstrap.is_empty()
        || args.topic.is_empty()
        || args.payload_file.is_empty()
        || args.transactional_id.is_empty()
        || args.txn_size == 0
        || args.transactions == 0
    {
        usage(bin);
    }
    args
}

/// The `q`-quantile (0..=1) of sorted `ms`, nearest rank.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What one transactional run measured (warm-up excluded).
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Each committed transaction's begin → commit-acknowledged time.
    pub(crate) transactions: Vec<Duration>,
    /// Transactions that failed (sent or committed with an error).
    pub(crate) failed: u64,
    pub(crate) wall: Duration,
    pub(crate) cpu_start: (f64, f64),
    pub(crate) cpu_end: (f64, f64),
}

impl Outcome {
    /// The JSON line the driver collects.
    pub(crate) fn json(&self, client: &str, args: &Args, payload_size: usize) -> String {
        let mut ms: Vec<f64> = self
            .transactions
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        ms.sort_by(f64::total_cmp);
        let mean = if ms.is_empty() {
            f64::NAN
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        let records = ms.len() as u64 * args.txn_size;
        let wall_s = self.wall.as_secs_f64();
        let user = self.cpu_end.0 - self.cpu_start.0;
        let sys = self.cpu_end.1 - self.cpu_start.1;
        let per_million = if records > 0 {
            (user + sys) * 1e6 / records as f64
        } else {
            f64::NAN
        };
        format!(
            concat!(
                "{{\"client\":\"{}\",\"topic\":\"{}\",\"size\":{},\"txn_size\":{},",
                "\"transactions\":{},\"failed\":{},\"records\":{},\"wall_s\":{:.6},",
                "\"records_per_s\":{:.1},\"txn_per_s\":{:.2},\"cpu_user_s\":{:.6},",
                "\"cpu_sys_s\":{:.6},\"cpu_s_per_million\":{:.6},\"txn_p50_ms\":{:.3},",
                "\"txn_p99_ms\":{:.3},\"txn_mean_ms\":{:.3},\"txn_max_ms\":{:.3}}}"
            ),
            client,
            args.topic,
            payload_size,
            args.txn_size,
            ms.len(),
            self.failed,
            records,
            wall_s,
            records as f64 / wall_s,
            ms.len() as f64 / wall_s,
            user,
            sys,
            per_million,
            quantile(&ms, 0.5),
            quantile(&ms, 0.99),
            mean,
            ms.last().copied().unwrap_or(f64::NAN)
        )
    }
}
