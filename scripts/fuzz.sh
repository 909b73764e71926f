#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for N seconds (default 60), seeded with the committed
# seeds (fuzz/seeds/<target>, made from the interop vectors) and a scratch corpus.
# Installs a nightly toolchain and cargo-fuzz when missing. libFuzzer's -malloc_limit_mb turns any
# single allocation above 256 MiB into a crash, so "a decoder reserved memory from a hostile count"
# fails the run just like a panic does; -rss_limit_mb=512 does the same for a process that grows
# past 512 MiB, which a record decoder materialising ~30x the 16 MiB limits of `record_limits`
# would (fuzz/src/lib.rs `bomb_limits`; bounded decoding peaks near 48 MiB). `record_limits`
# holds the decompression-bomb seeds and checks decoded memory exactly (a counting allocator);
# the other record targets run at 256 KiB/1 MiB (`limits`) for depth. ASan's quarantine of
# freed memory is kept small so it does not count towards that.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]
#   scripts/fuzz.sh --long SECONDS [TARGET…]
#   scripts/fuzz.sh --long --fast SECONDS [TARGET…]
#
# --long: a long run per target (e.g. 3600): the same memory limits, a table of executions,
# executions per second and peak RSS per target at the end (the figures issue 16 asks for), and
# the scratch corpus kept between runs in target/fuzz-corpus so a long run resumes where the last
# one stopped. The seeds (fuzz/seeds/<target>) hold one input per (API, version) for the response
# targets, written by `cargo test -p kafkit-wire --lib guard::fuzz_seeds -- --ignored`.
#
# --fast: no AddressSanitizer (`cargo fuzz -s none`; debug assertions stay on). The targets run
# 10-40x more inputs per second (the frame target ~310k/s against ~8k/s), which is what makes
# 10^7 executions per target a minutes-long run on 2 cores (all but `record_limits`, whose
# bomb-derived inputs each inflate 16 MiB: it checks memory, not depth). Without ASan libFuzzer cannot see
# single allocations, so -malloc_limit_mb does nothing; -rss_limit_mb=512 still stops a decoder
# that materialises a bomb. kafkit-wire forbids `unsafe`, but the codec crates under it use it:
# keep running without --fast too. The two modes share fuzz/target: each rebuilds it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/fuzz"
long=no
sanitizer=address
if [ "${1:-}" = "--long" ]; then
  long=yes
  shift
  if [ "${1:-}" = "--fast" ]; then
    sanitizer=none
    shift
  fi
  [ $# -ge 1 ] || { echo "usage: scripts/fuzz.sh --long [--fast] SECONDS [TARGET…]" >&2; exit 2; }
fi
secs=${1:-60}
shift || true
summary=()

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
# Debug assertions on: an arithmetic overflow on hostile input is a crash too.
cargo +nightly fuzz build -a -s "$sanitizer"

export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
status=0
for t in "${targets[@]}"; do
  corpus="$root/target/fuzz-corpus/$t"
  mkdir -p "$corpus" "seeds/$t"
  log=$(mktemp)
  if cargo +nightly fuzz run -a -s "$sanitizer" "$t" "$corpus" "seeds/$t" -- \
       -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=256 -timeout=10 \
       -print_final_stats=1 >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    echo "fuzz $t: ${secs}s, ${execs:-?} executions (${rate:-?}/s, peak RSS ${rss:-?} MB), no crash"
    summary+=("$(printf '%-22s %12s %10s %8s' "$t" "${execs:-?}" "${rate:-?}" "${rss:-?}")")
  else
    echo "fuzz $t: FAILED" >&2
    tail -n 60 "$log" >&2
    status=1
  fi
  rm -f "$log"
done
if [ $long = yes ] && [ ${#summary[@]} -gt 0 ]; then
  echo "fuzz --long ${secs}s per target (sanitizer: $sanitizer; -rss_limit_mb=512 -malloc_limit_mb=256):"
  printf '%-22s %12s %10s %8s\n' target executions exec/s rss_mb
  printf '%s\n' "${summary[@]}"
fi
exit $status
