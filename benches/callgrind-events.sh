#!/usr/bin/env bash
# callgrind-events.sh — instructions per published event for each mode of
# kafkit-events-produce (raw, raw_headers, raw_block, avro, json), counted by valgrind's
# callgrind: immune to the machine's load, unlike the CPU times of run-events.sh. See benches/README.md
# ("Events overhead", callgrind).
#
# Usage: bash benches/callgrind-events.sh [--bin PATH] [--bootstrap B] [--modes "raw avro ..."]
#   --bin PATH      a built kafkit-events-produce (default: build this checkout's, release)
#   --bootstrap B   use a running broker instead of starting one
# Each mode runs twice, one process each, 2,000 and 22,000 records after the binary's own
# 2,000-record warm-up; Ir per event = (Ir(22,000) − Ir(2,000)) / 20,000, so start-up, topic
# creation, the warm-up and shutdown cancel out. The callgrind files stay in
# target/callgrind-events/ (callgrind_annotate --inclusive=yes FILE for the profile).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="" BOOTSTRAP="" MODES="raw raw_headers raw_block avro json"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN="$2"; shift 2 ;;
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    --modes) MODES="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "callgrind-events.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "callgrind-events.sh: valgrind is not installed" >&2; exit 2; }
if [ -z "$BIN" ]; then
  cargo build --release --locked -p kafkit-benches --bin kafkit-events-produce
  BIN=target/release/kafkit-events-produce
fi
state_dir=""
cleanup() { if [ -n "$state_dir" ]; then bash scripts/kafka.sh stop "$state_dir" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
if [ -z "$BOOTSTRAP" ]; then
  out=$(bash scripts/kafka.sh start --watch-pid $$)
  BOOTSTRAP=$(echo "$out" | sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p')
  state_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
fi
dir=target/callgrind-events
mkdir -p "$dir"
ir_of() { sed -n 's/^totals: *\([0-9]*\).*/\1/p;s/^summary: *\([0-9]*\).*/\1/p' "$1" | head -1; }
raw_ir=""
for mode in $MODES; do
  for n in 2000 22000; do
    KAFKIT_BENCH_MODES=$mode timeout "${KAFKIT_BENCH_RUN_TIMEOUT:-900}" valgrind --tool=callgrind \
      --callgrind-out-file="$dir/$mode.$n.cg" "$BIN" "$BOOTSTRAP" "$n" 1 >"$dir/$mode.$n.log" 2>&1
  done
  per=$(( ($(ir_of "$dir/$mode.22000.cg") - $(ir_of "$dir/$mode.2000.cg")) / 20000 ))
  [ "$mode" = raw ] && raw_ir=$per
  if [ -n "$raw_ir" ] && [ "$mode" != raw ]; then
    echo "$mode: $per Ir/event ($(( (per * 100 + raw_ir / 2) / raw_ir - 100 )) % vs raw)"
  else
    echo "$mode: $per Ir/event"
  fi
done
