#!/usr/bin/env bash
# run-events.sh — kafkit-events' publishing overhead: typed Avro and JSON events through
# EventProducer vs the raw kafkit Producer, in one process, against one broker, interleaved
# rounds (raw → raw_headers → avro → json, the order rotating per round). See benches/README.md.
#
# Usage: bash benches/run-events.sh [--records N] [--rounds R] [--bootstrap B] [--quick]
#   --records N     records per run after a 2,000-record warm-up (default 500000)
#   --rounds R      rounds; each runs every mode once (default 5)
#   --bootstrap B   use a running broker instead of starting one
#   --quick         smoke preset: 100000 records, 3 rounds
# Prints one JSON line per run and a summary (median CPU µs per record and the ratio to raw;
# records/s); writes them to target/bench-results/events-<UTC time>.txt. Target: Avro adds at
# most 30 % CPU per event over raw (200-byte Avro payload).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

RECORDS=500000 ROUNDS=5 BOOTSTRAP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    --quick) RECORDS=100000 ROUNDS=3; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-events.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --profile "$BENCH_PROFILE" --locked -p kafkit-benches --bin kafkit-events-produce
state_dir=""
cleanup() { if [ -n "$state_dir" ]; then bash scripts/kafka.sh stop "$state_dir" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
if [ -z "$BOOTSTRAP" ]; then
  out=$(KAFKIT_KAFKA_HEAP="${KAFKIT_KAFKA_HEAP:--Xms1g -Xmx1g}" bash scripts/kafka.sh start --watch-pid $$)
  BOOTSTRAP=$(echo "$out" | sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p')
  state_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
fi
mkdir -p target/bench-results
out_file="target/bench-results/events-$(date -u +%Y%m%dT%H%M%SZ).txt"
timeout "${KAFKIT_BENCH_RUN_TIMEOUT:-1800}" \
  target/$BENCH_TARGET/kafkit-events-produce "$BOOTSTRAP" "$RECORDS" "$ROUNDS" | tee "$out_file"
echo "results: $out_file"
