#!/usr/bin/env bash
# run-latency.sh — latency at fixed rates: send → acknowledgement and produce → consume
# percentiles (p50, p99, p99.9, max) and CPU, kafkit vs rust-rdkafka (librdkafka 2.12) in the
# same run, against the same broker. What a run does: benches/src/latency_common.rs; see
# benches/README.md ("Latency").
#
# Usage: bash benches/run-latency.sh [options]
#   --rates LIST       records/s (default 1000,10000,100000)
#   --lingers LIST     linger.ms values (default 0,5)
#   --seconds S        recorded seconds per run (default 10), after --warmup
#   --warmup S         unrecorded seconds at the start of each run (default 2)
#   --size B           payload bytes per record (default 100)
#   --rounds R         interleaved rounds (default 3)
#   --clients LIST     default kafkit,rdkafka
#   --partitions P     partitions of each run's topic (default 6)
#   --pin              broker JVM on CPU 0 (taskset -c 0), clients on CPU 1 (taskset -c 1)
#   --bootstrap B      use a running broker instead of starting one
#   --quick            smoke preset: rates 1000,10000, 3 s, 1 s warm-up, 1 round
#   --out FILE         results JSON (default target/bench-results/latency-<UTC time>.json)
#   --summarize FILE   print the summary of an earlier results file, run nothing
#   --note TEXT        free text stored in the results' meta
#
# Each run: a fresh topic (deleted afterwards), one client process producing at the rate for
# warm-up + S seconds and consuming the same topic; the order of the clients rotates per round.
# Prints medians over rounds and kafkit/rdkafka ratios of the same run; writes every run and
# the summary as JSON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

RATES=1000,10000,100000 LINGERS=0,5 SECONDS_=10 WARMUP=2 SIZE=100 ROUNDS=3
CLIENTS=kafkit,rdkafka PARTITIONS=6 PIN=0 BOOTSTRAP="" OUT="" NOTE=""

say() { printf 'run-latency: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case "$1" in
    --rates) RATES="${2:?}"; shift 2 ;;
    --lingers) LINGERS="${2:?}"; shift 2 ;;
    --seconds) SECONDS_="${2:?}"; shift 2 ;;
    --warmup) WARMUP="${2:?}"; shift 2 ;;
    --size) SIZE="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --partitions) PARTITIONS="${2:?}"; shift 2 ;;
    --pin) PIN=1; shift ;;
    --bootstrap) BOOTSTRAP="${2:?}"; shift 2 ;;
    --quick) RATES=1000,10000 SECONDS_=3 WARMUP=1 ROUNDS=1; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --note) NOTE="${2:?}"; shift 2 ;;
    --summarize) exec python3 "$ROOT/benches/latency_summary.py" "${2:?}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in SECONDS_ WARMUP SIZE ROUNDS PARTITIONS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "${v%_} must be a whole number"
done
((SECONDS_ > 0 && ROUNDS > 0 && SIZE >= 16)) || die "need positive seconds and rounds, size >= 16"
IFS=, read -r -a RATE_LIST <<<"$RATES"
IFS=, read -r -a LINGER_LIST <<<"$LINGERS"
IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"
for r in "${RATE_LIST[@]}"; do [[ "$r" =~ ^[1-9][0-9]*$ ]] || die "rate $r"; done
for l in "${LINGER_LIST[@]}"; do [[ "$l" =~ ^[0-9]+$ ]] || die "linger $l"; done
for c in "${CLIENT_LIST[@]}"; do
  case "$c" in kafkit | rdkafka) ;; *) die "unknown client $c" ;; esac
done
uses() { local c; for c in "${CLIENT_LIST[@]}"; do [[ "$c" == "$1" ]] && return 0; done; return 1; }

STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="${OUT:-$ROOT/target/bench-results/latency-$STAMP.json}"
WORK="$(mktemp -d /tmp/kafkit-bench-latency.XXXXXX)"
RESULTS="$WORK/runs.jsonl"
: >"$RESULTS"
BROKER_DIR=""
TOPIC=""

cleanup() {
  if [[ -n "$TOPIC" && -n "$BOOTSTRAP" && -x "${TOOL:-}" ]]; then
    timeout 60 "$TOOL" delete --bootstrap "$BOOTSTRAP" --topic "$TOPIC" >/dev/null 2>&1 || true
  fi
  if [[ -n "$BROKER_DIR" ]]; then
    say "stopping the broker ($BROKER_DIR)"
    bash "$ROOT/scripts/kafka.sh" stop "$BROKER_DIR" >/dev/null 2>&1 || true
    rm -rf "$BROKER_DIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building ($BENCH_PROFILE)"
cargo build --profile "$BENCH_PROFILE" --quiet --locked -p kafkit-benches --bin kafkit-bench-tool --bin kafkit-latency
TOOL="$ROOT/target/$BENCH_TARGET/kafkit-bench-tool"
KAFKIT_BIN="$ROOT/target/$BENCH_TARGET/kafkit-latency"
RDKAFKA_BIN="$ROOT/benches/peers/target/release/rdkafka-latency"
if uses rdkafka; then
  (cd "$ROOT/benches/peers" && cargo build --release --quiet --locked --bin rdkafka-latency) ||
    die "benches/peers (rust-rdkafka) did not build"
fi

CLIENT_PIN=()
if [[ -z "$BOOTSTRAP" ]]; then
  BROKER_PIN=()
  if ((PIN)); then
    BROKER_PIN=(taskset -c 0)
    CLIENT_PIN=(taskset -c 1)
  fi
  BROKER_DIR="$WORK/broker"
  say "starting a broker"
  START_OUT="$(KAFKIT_KAFKA_HEAP="${KAFKIT_KAFKA_HEAP:--Xms1g -Xmx1g}" \
    "${BROKER_PIN[@]}" bash "$ROOT/scripts/kafka.sh" start --dir "$BROKER_DIR" --watch-pid $$)"
  BOOTSTRAP="$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p' <<<"$START_OUT")"
  [[ -n "$BOOTSTRAP" ]] || die "no bootstrap address from kafka.sh start"
elif ((PIN)); then
  CLIENT_PIN=(taskset -c 1)
fi
say "broker: $BOOTSTRAP"

RUN_NO=0
run_one() { # CLIENT RATE LINGER ROUND
  local client="$1" rate="$2" linger="$3" round="$4" line="" bin
  RUN_NO=$((RUN_NO + 1))
  TOPIC="bench-latency-$STAMP-$RUN_NO"
  timeout 60 "$TOOL" create --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --partitions "$PARTITIONS" ||
    die "cannot create topic $TOPIC"
  case "$client" in
    kafkit) bin="$KAFKIT_BIN" ;;
    rdkafka) bin="$RDKAFKA_BIN" ;;
  esac
  sleep 1
  line="$(timeout $((SECONDS_ + WARMUP + 120)) "${CLIENT_PIN[@]}" "$bin" --bootstrap "$BOOTSTRAP" \
    --topic "$TOPIC" --rate "$rate" --seconds "$SECONDS_" --warmup "$WARMUP" \
    --linger-ms "$linger" --size "$SIZE" 2>"$WORK/$client.err" | grep '^{' | tail -1)" || true
  timeout 60 "$TOOL" delete --bootstrap "$BOOTSTRAP" --topic "$TOPIC" >/dev/null 2>&1 || true
  TOPIC=""
  if [[ "$line" != \{* ]]; then
    say "$client rate $rate linger $linger run failed (round $round):"
    tail -20 "$WORK/$client.err" >&2
    return 0
  fi
  line="${line%\}},\"round\":$round}"
  echo "$line" >>"$RESULTS"
  say "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%-7s %6d/s linger %s round %s: ack p50 %7.2f p99 %7.2f p99.9 %7.2f ms | e2e p50 %7.2f p99 %7.2f p99.9 %7.2f ms | %d sent %d acked %d consumed, %.2f CPU-s" % (r["client"], r["rate"], r["linger_ms"], r["round"], r["ack_p50_ms"], r["ack_p99_ms"], r["ack_p999_ms"], r["e2e_p50_ms"], r["e2e_p99_ms"], r["e2e_p999_ms"], r["sent"], r["acked"], r["consumed"], r["cpu_s"]))' "$line")"
}

n=${#CLIENT_LIST[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  for rate in "${RATE_LIST[@]}"; do
    for linger in "${LINGER_LIST[@]}"; do
      for ((k = 0; k < n; k++)); do
        run_one "${CLIENT_LIST[$(((k + round - 1) % n))]}" "$rate" "$linger" "$round"
      done
    done
  done
done

mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$OUT" "$NOTE" "$PIN" <<'PY'
import json, subprocess, sys, time
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = {"note": sys.argv[3], "pinned": sys.argv[4] == "1",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()}
json.dump({"meta": meta, "runs": runs}, open(sys.argv[2], "w"), indent=1)
PY
python3 "$ROOT/benches/latency_summary.py" "$OUT" --svg "${OUT%.json}.svg"
say "results: $OUT (picture: ${OUT%.json}.svg)"
