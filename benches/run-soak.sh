#!/usr/bin/env bash
# run-soak.sh — a long steady run of produce + group consume with a member joining and leaving
# on a schedule (issue #15 item 3): samples kafkit's resident memory, open file descriptors,
# sockets and threads over time, counts every record (none may be missing), and prints whether
# memory and sockets stayed flat. What the process does: benches/src/bin/kafkit_soak.rs; see
# benches/README.md ("Soak").
#
# Usage: bash benches/run-soak.sh [options]
#   --minutes M        produce for M minutes (default 30)
#   --rate R           records/s (default 2000)
#   --size B           value bytes (default 200)
#   --churn S          a third member joins for S/2 s of every S s (default 180: a rebalance
#                      every 90 s)
#   --sample S         seconds between samples (default 10)
#   --partitions P     partitions of the topic (default 12)
#   --protocol P       classic (default) or consumer (KIP-848)
#   --bootstrap B      use a running broker instead of starting one
#   --quick            smoke preset: 1 minute, churn 20 s, samples every 5 s
#   --out FILE         samples (JSON lines; default target/bench-results/soak-<UTC time>.jsonl)
#   --summarize FILE   print the summary of an earlier samples file, run nothing
#
# Exit status: non-zero when a record was acknowledged but never consumed, a delivery failed,
# or the process did not finish.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

MINUTES=30 RATE=2000 SIZE=200 CHURN=180 SAMPLE=10 PARTITIONS=12 PROTOCOL=classic BOOTSTRAP=""
OUT=""

say() { printf 'run-soak: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case "$1" in
    --minutes) MINUTES="${2:?}"; shift 2 ;;
    --rate) RATE="${2:?}"; shift 2 ;;
    --size) SIZE="${2:?}"; shift 2 ;;
    --churn) CHURN="${2:?}"; shift 2 ;;
    --sample) SAMPLE="${2:?}"; shift 2 ;;
    --partitions) PARTITIONS="${2:?}"; shift 2 ;;
    --protocol) PROTOCOL="${2:?}"; shift 2 ;;
    --bootstrap) BOOTSTRAP="${2:?}"; shift 2 ;;
    --quick) MINUTES=1 CHURN=20 SAMPLE=5; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --summarize) exec python3 "$ROOT/benches/soak_summary.py" "${2:?}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in MINUTES RATE SIZE CHURN SAMPLE PARTITIONS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive whole number"
done
case "$PROTOCOL" in classic | consumer) ;; *) die "protocol: classic or consumer" ;; esac

STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="${OUT:-$ROOT/target/bench-results/soak-$STAMP.jsonl}"
mkdir -p "$(dirname "$OUT")"
WORK="$(mktemp -d /tmp/kafkit-bench-soak.XXXXXX)"
BROKER_DIR=""
TOPIC=""

cleanup() {
  if [[ -n "$TOPIC" && -n "$BOOTSTRAP" && -x "${TOOL:-}" ]]; then
    timeout 60 "$TOOL" delete --bootstrap "$BOOTSTRAP" --topic "$TOPIC" >/dev/null 2>&1 || true
  fi
  if [[ -n "$BROKER_DIR" ]]; then
    say "stopping the broker ($BROKER_DIR)"
    bash "$ROOT/scripts/kafka.sh" stop "$BROKER_DIR" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building ($BENCH_PROFILE)"
cargo build --profile "$BENCH_PROFILE" --quiet --locked -p kafkit-benches --bin kafkit-bench-tool --bin kafkit-soak
TOOL="$ROOT/target/$BENCH_TARGET/kafkit-bench-tool"

if [[ -z "$BOOTSTRAP" ]]; then
  BROKER_DIR="$WORK/broker"
  say "starting a broker"
  START_OUT="$(KAFKIT_KAFKA_HEAP="${KAFKIT_KAFKA_HEAP:--Xms1g -Xmx1g}" \
    bash "$ROOT/scripts/kafka.sh" start --dir "$BROKER_DIR" --watch-pid $$)"
  BOOTSTRAP="$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p' <<<"$START_OUT")"
  [[ -n "$BOOTSTRAP" ]] || die "no bootstrap address from kafka.sh start"
fi
say "broker: $BOOTSTRAP"

TOPIC="bench-soak-$STAMP"
timeout 60 "$TOOL" create --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --partitions "$PARTITIONS" ||
  die "cannot create topic $TOPIC"
SECS=$((MINUTES * 60))
say "soaking for $MINUTES min at $RATE records/s, $SIZE B, a member in and out every $CHURN s ($PROTOCOL)"
status=0
timeout $((SECS + 600)) "$ROOT/target/$BENCH_TARGET/kafkit-soak" "$BOOTSTRAP" "$TOPIC" "$SECS" "$RATE" \
  "$SIZE" "$CHURN" "$SAMPLE" "$PROTOCOL" >"$OUT" 2>"$WORK/soak.err" || status=$?
if ((status != 0)); then
  say "kafkit-soak exited with $status; its last lines:"
  tail -20 "$WORK/soak.err" >&2 || true
fi
python3 "$ROOT/benches/soak_summary.py" "$OUT" --svg "${OUT%.jsonl}.svg" || status=1
say "samples: $OUT (picture: ${OUT%.jsonl}.svg)"
exit "$status"
