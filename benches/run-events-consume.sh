#!/usr/bin/env bash
# run-events-consume.sh — kafkit-events' consuming side: typed Avro events through EventConsumer
# handlers vs the raw kafkit Consumer, in one process, against one broker, interleaved rounds;
# then publish → handle latency at a fixed rate. See benches/README.md ("Events: consuming").
#
# Usage: bash benches/run-events-consume.sh [--records N] [--rounds R] [--rate E] [--seconds S]
#                                           [--bootstrap B] [--quick]
#   --records N     events read per throughput run (default 200000)
#   --rounds R      rounds; each runs both modes once per phase (default 3)
#   --rate E        events/s published in the latency phase (default 10000, the seeds' target)
#   --seconds S     seconds published per latency run (default 10)
#   --bootstrap B   use a running broker instead of starting one
#   --quick         smoke preset: 20000 events, 1 round, 2 s of latency (under a minute once built)
# Prints one JSON line per run and a summary (events/s, CPU µs per event and its ratio to raw;
# latency p50/p95/p99); writes them to target/bench-results/events-consume-<UTC time>.txt.
# Targets (the seeds'): 10,000 events/s, p95 publish → handle < 100 ms.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

RECORDS=200000 ROUNDS=3 RATE=10000 SECONDS_=10 BOOTSTRAP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --seconds) SECONDS_="$2"; shift 2 ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    --quick) RECORDS=20000 ROUNDS=1 SECONDS_=2; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-events-consume.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --profile "$BENCH_PROFILE" --locked -p kafkit-benches --bin kafkit-events-consume
state_dir=""
cleanup() { if [ -n "$state_dir" ]; then bash scripts/kafka.sh stop "$state_dir" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
if [ -z "$BOOTSTRAP" ]; then
  out=$(KAFKIT_KAFKA_HEAP="${KAFKIT_KAFKA_HEAP:--Xms1g -Xmx1g}" bash scripts/kafka.sh start --watch-pid $$)
  BOOTSTRAP=$(echo "$out" | sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p')
  state_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
fi
mkdir -p target/bench-results
out_file="target/bench-results/events-consume-$(date -u +%Y%m%dT%H%M%SZ).txt"
timeout "${KAFKIT_BENCH_RUN_TIMEOUT:-1800}" \
  target/$BENCH_TARGET/kafkit-events-consume "$BOOTSTRAP" "$RECORDS" "$ROUNDS" "$RATE" "$SECONDS_" | tee "$out_file"
echo "results: $out_file"
