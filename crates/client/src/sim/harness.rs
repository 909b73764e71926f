//! Seeds, traces, violations: how a simulation is run, judged and replayed.
//!
//! - `KAFKIT_SIM_SEEDS=N` runs N seeds per scenario (default: the scenario's CI count, a few
//!   dozen); `KAFKIT_SIM_FIRST_SEED=S` starts at S (default 1), so long runs can be split.
//! - `KAFKIT_SIM_SEED=S` runs that one seed only: the replay of a failure, which prints the
//!   whole trace (`KAFKIT_SIM_TRACE=N` keeps the last N lines otherwise; default 60).
//!
//! A scenario is a function `Fn(&mut Run) -> Result<(), Violation>`: it builds its world from
//! `run.rng`, drives it on `run.clock`, logs what happens into `run.trace` and returns the
//! checker's verdict. [`check_seeds`] runs it over the seeds and panics with the seed, the
//! invariant, the replay command and the end of the trace at the first violation;
//! [`expect_caught`] is the negative control (a deliberately broken world must be caught by
//! the named invariant within the seeds); [`assert_replays`] runs one seed twice and compares
//! the traces, so a run that depends on anything but its seed is found.

use std::fmt;
use std::time::Duration;

use super::clock::VirtualClock;
use crate::state::rng::{RandomSource, XorShift64Star};

/// What a checker found wrong in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The invariant's short name (e.g. `acknowledged-but-lost`).
    pub invariant: &'static str,
    /// What exactly: partition, offsets, record ids.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant`.
    pub(crate) fn new(invariant: &'static str, detail: impl Into<String>) -> Self {
        Self {
            invariant,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// The log of one run: one line per thing that happened, stamped with virtual time.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    lines: Vec<String>,
}

impl Trace {
    /// Adds a line at virtual time `at`.
    pub(crate) fn log(&mut self, at: Duration, line: impl fmt::Display) {
        self.lines
            .push(format!("{:>10.3}ms {line}", at.as_secs_f64() * 1e3));
    }

    /// Every line so far.
    pub(crate) fn lines(&self) -> &[String] {
        &self.lines
    }

    /// An FNV-1a digest of the whole trace (the replay check compares these).
    pub(crate) fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for line in &self.lines {
            for b in line.bytes().chain(std::iter::once(b'\n')) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }
}

/// One run's context: its seed, the random source every choice draws from, virtual time and
/// the trace.
#[derive(Debug)]
pub(crate) struct Run {
    /// The seed this run is a function of.
    pub seed: u64,
    /// The only source of randomness a world may use (faults, timings, workloads; also the
    /// state machines' jitter).
    pub rng: XorShift64Star,
    /// Virtual time.
    pub clock: VirtualClock,
    /// What happened.
    pub trace: Trace,
}

impl Run {
    /// A fresh run for `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            rng: XorShift64Star::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151),
            clock: VirtualClock::new(),
            trace: Trace::default(),
        }
    }

    /// Logs a line at the current virtual time.
    pub(crate) fn log(&mut self, line: impl fmt::Display) {
        let at = self.clock.elapsed();
        self.trace.log(at, line);
    }

    /// True with probability `p` (0 never draws: a zero knob leaves the rest of the run as
    /// it would be without it).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.next_f64() < p
    }

    /// A uniform integer in `lo..hi` (`lo` when the range is empty).
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.rng.next_u64() % (hi - lo)
        }
    }

    /// A uniform duration in `lo..hi`, in whole microseconds.
    pub(crate) fn duration_between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_us = lo.as_micros() as u64;
        let hi_us = hi.as_micros() as u64;
        Duration::from_micros(self.between(lo_us, hi_us))
    }

    /// A uniform index below `len` (0 when `len` is 0).
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.between(0, len as u64) as usize
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The seeds a scenario runs: `KAFKIT_SIM_SEED` alone, else `KAFKIT_SIM_SEEDS` (or
/// `default_count`) seeds from `KAFKIT_SIM_FIRST_SEED` (or 1).
pub(crate) fn seeds(default_count: u64) -> std::ops::Range<u64> {
    if let Some(one) = env_u64("KAFKIT_SIM_SEED") {
        return one..one + 1;
    }
    let first = env_u64("KAFKIT_SIM_FIRST_SEED").unwrap_or(1);
    let count = env_u64("KAFKIT_SIM_SEEDS").unwrap_or(default_count);
    first..first.saturating_add(count)
}

fn trace_tail(trace: &Trace) -> String {
    let whole = std::env::var_os("KAFKIT_SIM_SEED").is_some();
    let keep = env_u64("KAFKIT_SIM_TRACE").unwrap_or(60) as usize;
    let lines = trace.lines();
    let from = if whole {
        0
    } else {
        lines.len().saturating_sub(keep)
    };
    let mut out = String::new();
    if from > 0 {
        out.push_str(&format!(
            "  … {from} earlier lines (KAFKIT_SIM_SEED shows them all)\n"
        ));
    }
    for line in &lines[from..] {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Runs `scenario` for every seed of [`seeds`]; panics at the first violation with the seed,
/// the invariant, how to replay it and the end of the trace. Returns the number of seeds run.
pub(crate) fn check_seeds<F>(name: &str, default_count: u64, scenario: F) -> u64
where
    F: Fn(&mut Run) -> Result<(), Violation>,
{
    let mut ran = 0;
    for seed in seeds(default_count) {
        let mut run = Run::new(seed);
        if let Err(violation) = scenario(&mut run) {
            panic!(
                "simulation {name}: seed {seed} violated {violation}\n\
                 replay: KAFKIT_SIM_SEED={seed} cargo test -p kafkit --lib sim:: -- {name}\n\
                 trace:\n{}",
                trace_tail(&run.trace)
            );
        }
        ran += 1;
    }
    ran
}

/// The negative control: `broken` (a world with one safeguard turned off) must violate
/// `invariant` for at least one seed in `1..=max_seeds`; returns the first seed that did.
/// Panics if no seed is caught, or if one is caught by another invariant (the checker named
/// the wrong thing).
pub(crate) fn expect_caught<F>(invariant: &'static str, max_seeds: u64, broken: F) -> u64
where
    F: Fn(&mut Run) -> Result<(), Violation>,
{
    for seed in 1..=max_seeds {
        let mut run = Run::new(seed);
        match broken(&mut run) {
            Ok(()) => {}
            Err(v) if v.invariant == invariant => return seed,
            Err(v) => panic!(
                "negative control for {invariant}: seed {seed} was caught by another invariant: \
                 {v}\ntrace:\n{}",
                trace_tail(&run.trace)
            ),
        }
    }
    panic!("negative control: no seed in 1..={max_seeds} was caught by {invariant}");
}

/// Runs `seed` twice and asserts both runs logged the same trace and reached the same verdict.
pub(crate) fn assert_replays<F>(seed: u64, scenario: F)
where
    F: Fn(&mut Run) -> Result<(), Violation>,
{
    let mut first = Run::new(seed);
    let a = scenario(&mut first);
    let mut second = Run::new(seed);
    let b = scenario(&mut second);
    assert_eq!(a, b, "seed {seed}: the verdict differs between two runs");
    assert_eq!(
        first.trace.lines().len(),
        second.trace.lines().len(),
        "seed {seed}: the trace length differs between two runs"
    );
    assert_eq!(
        first.trace.digest(),
        second.trace.digest(),
        "seed {seed}: the trace differs between two runs"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy world: draws numbers, "violates" when it draws a multiple of 7 and `strict`.
    fn toy(run: &mut Run, strict: bool) -> Result<(), Violation> {
        for step in 0..20 {
            let n = run.between(0, 100);
            run.clock.advance(Duration::from_millis(n));
            run.log(format_args!("step {step} drew {n}"));
            if strict && n.is_multiple_of(7) {
                return Err(Violation::new("no-sevens", format!("step {step} drew {n}")));
            }
        }
        Ok(())
    }

    #[test]
    fn same_seed_same_trace_and_the_control_is_caught() {
        assert_replays(3, |run| toy(run, false));
        assert_replays(3, |run| toy(run, true));
        let caught = expect_caught("no-sevens", 10, |run| toy(run, true));
        assert!(caught >= 1);
        // `seeds` comes from the environment in real runs; the default range here.
        if std::env::var_os("KAFKIT_SIM_SEED").is_none()
            && std::env::var_os("KAFKIT_SIM_SEEDS").is_none()
            && std::env::var_os("KAFKIT_SIM_FIRST_SEED").is_none()
        {
            assert_eq!(seeds(5), 1..6);
        }
    }

    #[test]
    #[should_panic(expected = "violated no-sevens")]
    fn a_violation_names_the_seed_and_the_invariant() {
        check_seeds("toy", 50, |run| toy(run, true));
    }

    #[test]
    fn different_seeds_differ() {
        let mut a = Run::new(1);
        let mut b = Run::new(2);
        toy(&mut a, false).unwrap();
        toy(&mut b, false).unwrap();
        assert_ne!(a.trace.digest(), b.trace.digest());
    }
}
