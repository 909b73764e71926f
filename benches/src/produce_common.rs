//! Shared by the producer benchmark binaries: `kafkit-produce` (main workspace),
//! `rdkafka-produce` (benches/peers, its own workspace) and `kafkit-bench-tool`. Included with
//! `#[path]` by each, so both clients parse the same CLI, read the same payload file the same
//! way, measure CPU the same way and print the same JSON.
//!
//! CLI of the produce binaries:
//!   --bootstrap HOST:PORT  --topic T  --payload-file F  --records N
//!   [--compression none|lz4] [--warmup W (default 2000)] [--max-in-flight 5] [--keys K]
//!
//! `--keys K` (default 0: no key): record `i` carries the key `key-<i % K>` (see [`keys`]),
//! so each client's default key partitioner (murmur2, Java's; the rdkafka peer sets
//! `partitioner=murmur2_random`) spreads the records over the topic's partitions the same way.
//!
//! Payload file: one payload per line (`\n`-separated, payloads never contain `\n`), all lines
//! the same size. Record `i` (0-based, after the warm-up) carries line `i % lines`. Java's
//! ProducerPerformance reads the same file (`--payload-file`) and picks lines at random.
#![allow(dead_code)]

use std::time::Duration;

/// Command-line settings of a produce run.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) bootstrap: String,
    pub(crate) topic: String,
    pub(crate) payload_file: String,
    pub(crate) records: u64,
    pub(crate) compression: String,
    pub(crate) warmup: u64,
    pub(crate) max_in_flight: u32,
    /// Distinct record keys; 0 for keyless records.
    pub(crate) keys: u64,
}

pub(crate) fn usage(bin: &str) -> ! {
    eprintln!(
        "usage: {bin} --bootstrap HOST:PORT --topic T --payload-file F --records N \
         [--compression none|lz4|gzip|snappy|zstd] [--warmup W] [--max-in-flight K] [--keys K]"
    );
    std::process::exit(2)
}

pub(crate) fn parse_args(bin: &str) -> Args {
    let mut args = Args {
        bootstrap: String::new(),
        topic: String::new(),
        payload_file: String::new(),
        records: 0,
        compression: "none".to_owned(),
        warmup: 2000,
        max_in_flight: 5,
        keys: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(bin));
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value(),
            "--topic" => args.topic = value(),
            "--payload-file" => args.payload_file = value(),
            "--records" => args.records = value().parse().unwrap_or_else(|_| usage(bin)),
            "--compression" => args.compression = value(),
            "--warmup" => args.warmup = value().parse().unwrap_or_else(|_| usage(bin)),
            "--keys" => args.keys = value().parse().unwrap_or_else(|_| usage(bin)),
            "--max-in-flight" => {
                args.max_in_flight = value().parse().unwrap_or_else(|_| usage(bin))
            }
            _ => usage(bin),
        }
    }
    if args.bootstrap.is_empty()
        || args.topic.is_empty()
        || args.payload_file.is_empty()
        || args.records == 0
    {
        usage(bin);
    }
    args
}

/// The record keys of a run with `--keys count`: `key-0` … `key-<count - 1>`, each record
/// `i` taking `keys[i % count]` (none when `count` is 0).
pub(crate) fn keys(count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|k| format!("key-{k}").into_bytes())
        .collect()
}

/// The payloads of a payload file, one per line.
pub(crate) fn load_payloads(path: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("cannot read payload file {path}: {e}");
        std::process::exit(1)
    });
    let payloads: Vec<Vec<u8>> = data
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    if payloads.is_empty() {
        eprintln!("payload file {path} has no payloads");
        std::process::exit(1)
    }
    payloads
}

/// CPU time of this process (all threads) so far: (user, system) seconds.
#[allow(unsafe_code)]
pub(crate) fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct we pass; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return (f64::NAN, f64::NAN);
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// Resident memory of this process in bytes: (now, peak so far), from `VmRSS` and `VmHWM` in
/// /proc/self/status; zeros where that file is not readable (not Linux).
pub(crate) fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The resident memory now, in bytes, taken as a run's base: the peak is reset to it first
/// (`5` into /proc/self/clear_refs), so that `rss_peak_mb` covers what follows and not the
/// loading of the payload file (read whole, then split: twice its size at once).
pub(crate) fn memory_base() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    memory().0
}

/// The memory fields of a result line: resident memory before the client was created
/// (`rss_base_mb`: the process with its payloads loaded), the peak since then
/// ([`memory_base`]; warm-up included: `rss_peak_mb`) and the difference (`rss_growth_mb`: what the client
/// itself took at its most), in MiB.
pub(crate) fn memory_json(rss_base: u64) -> String {
    let peak = memory().1;
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    format!(
        "\"rss_base_mb\":{:.2},\"rss_peak_mb\":{:.2},\"rss_growth_mb\":{:.2}",
        mib(rss_base),
        mib(peak),
        mib(peak.saturating_sub(rss_base))
    )
}

/// What one produce run measured (warm-up excluded).
pub(crate) struct Outcome {
    pub(crate) client: &'static str,
    pub(crate) records: u64,
    pub(crate) acked: u64,
    pub(crate) failed: u64,
    pub(crate) bytes: u64,
    pub(crate) wall: Duration,
    pub(crate) cpu_start: (f64, f64),
    pub(crate) cpu_end: (f64, f64),
    /// Resident memory before the client was created ([`memory`]), in bytes.
    pub(crate) rss_base: u64,
}

impl Outcome {
    /// The JSON line the driver collects.
    pub(crate) fn json(&self, args: &Args, payload_size: usize) -> String {
        let wall_s = self.wall.as_secs_f64();
        let user = self.cpu_end.0 - self.cpu_start.0;
        let sys = self.cpu_end.1 - self.cpu_start.1;
        let per_million = if self.acked > 0 {
            (user + sys) * 1e6 / self.acked as f64
        } else {
            f64::NAN
        };
        format!(
            concat!(
                "{{\"client\":\"{}\",\"topic\":\"{}\",\"compression\":\"{}\",\"size\":{},",
                "\"records\":{},\"acked\":{},\"failed\":{},\"bytes\":{},\"wall_s\":{:.6},",
                "\"records_per_s\":{:.1},\"mb_per_s\":{:.3},\"cpu_user_s\":{:.6},",
                "\"cpu_sys_s\":{:.6},\"cpu_s_per_million\":{:.6},\"keys\":{},{}}}"
            ),
            self.client,
            args.topic,
            args.compression,
            payload_size,
            self.records,
            self.acked,
            self.failed,
            self.bytes,
            wall_s,
            self.acked as f64 / wall_s,
            self.bytes as f64 / wall_s / 1e6,
            user,
            sys,
            per_million,
            args.keys,
            memory_json(self.rss_base)
        )
    }
}

/// A small seeded PRNG (splitmix64): the same payloads on every machine.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const EVENTS: &[&str] = &[
    "page_view",
    "add_to_cart",
    "checkout",
    "login",
    "logout",
    "search",
    "click",
    "purchase",
    "refund",
    "signup",
    "rating",
    "share",
];
const WORDS: &[&str] = &[
    "alpha", "garden", "chair", "orange", "river", "market", "silver", "window", "coffee",
    "planet", "yellow", "winter", "bridge", "forest", "ticket", "rocket", "pencil", "guitar",
    "summer", "castle", "butter", "candle", "dragon", "engine", "falcon", "harbor", "island",
    "jacket", "kettle", "ladder", "marble", "needle", "oyster", "pepper", "quartz", "saddle",
    "tunnel", "velvet", "walnut", "zipper", "blue", "green", "fast", "slow", "new", "used",
];
const COUNTRIES: &[&str] = &[
    "DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "JP", "BR",
];
const DEVICES: &[&str] = &["ios", "android", "web", "desktop"];

/// One JSON-like event of exactly `size` bytes (no `\n`): field names and words repeat across
/// records, ids, numbers and timestamps vary — lz4 gets roughly 2× on a batch of them, like
/// real event traffic (not a repeated pattern, not random letters).
pub(crate) fn event(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut s = format!(
        concat!(
            "{{\"event\":\"{}\",\"id\":{},\"user\":\"u-{}\",\"ts\":{},\"country\":\"{}\",",
            "\"device\":\"{}\",\"session\":\"{:08x}\",\"path\":\"/{}/{}/{}-{}\",",
            "\"price\":{}.{:02},\"qty\":{},\"tags\":[\"{}\",\"{}\"],\"note\":\""
        ),
        rng.pick(EVENTS),
        rng.below(1_000_000_000_000),
        rng.below(10_000_000),
        1_760_000_000_000u64 + rng.below(100_000_000_000),
        rng.pick(COUNTRIES),
        rng.pick(DEVICES),
        rng.next_u64() as u32,
        rng.pick(WORDS),
        rng.pick(WORDS),
        rng.pick(WORDS),
        rng.below(100_000),
        rng.below(1000),
        rng.below(100),
        1 + rng.below(9),
        rng.pick(WORDS),
        rng.pick(WORDS),
    );
    while s.len() < size {
        s.push_str(rng.pick(WORDS));
        s.push(' ');
        if rng.below(4) == 0 {
            s.push_str(&rng.below(100_000).to_string());
            s.push(' ');
        }
    }
    let mut bytes = s.into_bytes();
    bytes.truncate(size.saturating_sub(2));
    bytes.extend_from_slice(b"\"}");
    bytes.truncate(size);
    bytes
}

/// `count` payloads of `size` bytes from `seed`.
pub(crate) fn generate(count: usize, size: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| event(&mut rng, size)).collect()
}
