#!/usr/bin/env bash
# run-transactions.sh — transactional producer: throughput (records/s, CPU-seconds per million
# records) and per-transaction latency (begin → commit acknowledged, p50/p99) at several
# transaction sizes, kafkit vs rust-rdkafka (librdkafka 2.12) vs the Java client (Kafka
# 4.2.0), in the same run, against the same broker. See benches/README.md.
#
# Usage: bash benches/run-transactions.sh [options]
#   --txn-sizes LIST   records per transaction (default 100,1000,10000)
#   --records N        records per run (default 200000); a run is max(N / size, --min-txns)
#                      transactions
#   --min-txns M       transactions per run at least (default 20)
#   --size S           payload bytes per record (default 100)
#   --rounds R         interleaved rounds (default 5)
#   --clients LIST     default kafkit,rdkafka,java
#   --partitions P     partitions of each run's topic (default 6)
#   --pin              broker JVM on CPU 0 (taskset -c 0), clients on CPU 1 (taskset -c 1)
#   --bootstrap B      use a running broker instead of starting one
#   --pause S          seconds between runs (default 1)
#   --quick            smoke preset: 50000 records, at least 10 transactions, 3 rounds
#   --out FILE         results JSON (default target/bench-results/transactions-<UTC time>.json)
#   --summarize FILE   print (and store) the summary of an earlier results file, run nothing
#   --note TEXT        free text stored in the results' meta
#   --kafkit-bin PATH  use this kafkit-txn binary instead of building one
#
# What it does: builds kafkit-bench-tool and kafkit-txn (main workspace), rdkafka-txn
# (benches/peers, its own workspace), compiles benches/java/TxnBench.java with javac against
# the Kafka jars (scripts/kafka.sh libs); starts a dedicated broker; writes one payload file;
# one unrecorded warm-up pass (every client once, smallest size); then R rounds, each round
# every client once per transaction size (the order rotating), each run with a fresh
# transactional id to a fresh topic (deleted afterwards, its log end offsets counted first:
# records plus one marker per partition per transaction); prints medians and ratios of the
# same run; writes every run and the summary as JSON. Stops the broker it started.
#
# Environment: KAFKIT_BENCH_RUN_TIMEOUT (seconds per client run, default 300),
# KAFKIT_TOOL_HEAP (Java client heap, default -Xmx512m).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

SIZES=100,1000,10000 RECORDS=200000 MIN_TXNS=20 SIZE=100 ROUNDS=5 CLIENTS=kafkit,rdkafka,java
PARTITIONS=6 PIN=0 BOOTSTRAP="" PAUSE=1 OUT="" NOTE="" KAFKIT_BIN=""
RUN_TIMEOUT="${KAFKIT_BENCH_RUN_TIMEOUT:-300}"

say() { printf 'run-transactions: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case "$1" in
    --txn-sizes) SIZES="${2:?}"; shift 2 ;;
    --records) RECORDS="${2:?}"; shift 2 ;;
    --min-txns) MIN_TXNS="${2:?}"; shift 2 ;;
    --size) SIZE="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --partitions) PARTITIONS="${2:?}"; shift 2 ;;
    --pin) PIN=1; shift ;;
    --bootstrap) BOOTSTRAP="${2:?}"; shift 2 ;;
    --pause) PAUSE="${2:?}"; shift 2 ;;
    --quick) RECORDS=50000 MIN_TXNS=10 ROUNDS=3; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --note) NOTE="${2:?}"; shift 2 ;;
    --kafkit-bin) KAFKIT_BIN="$(realpath "${2:?}")"; shift 2 ;;
    --summarize) exec python3 "$ROOT/benches/transactions_summary.py" "${2:?}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in RECORDS MIN_TXNS SIZE ROUNDS PARTITIONS PAUSE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number"
done
((RECORDS > 0 && MIN_TXNS > 0 && SIZE >= 16 && ROUNDS > 0)) || die "need positive counts, size >= 16"
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"
for s in "${SIZE_LIST[@]}"; do [[ "$s" =~ ^[1-9][0-9]*$ ]] || die "transaction size $s"; done
for c in "${CLIENT_LIST[@]}"; do
  case "$c" in kafkit | rdkafka | java) ;; *) die "unknown client $c" ;; esac
done
uses() { local c; for c in "${CLIENT_LIST[@]}"; do [[ "$c" == "$1" ]] && return 0; done; return 1; }

STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="${OUT:-$ROOT/target/bench-results/transactions-$STAMP.json}"
WORK="$(mktemp -d /tmp/kafkit-bench-txn.XXXXXX)"
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
  rm -rf "$WORK/payload.txt" "$WORK/java"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------- build
say "building ($BENCH_PROFILE)"
cargo build --profile "$BENCH_PROFILE" --quiet -p kafkit-benches --bin kafkit-bench-tool --bin kafkit-txn
TOOL="$ROOT/target/$BENCH_TARGET/kafkit-bench-tool"
KAFKIT_NOTE=""
if [[ -n "$KAFKIT_BIN" ]]; then
  [[ -x "$KAFKIT_BIN" ]] || die "--kafkit-bin $KAFKIT_BIN: not an executable"
  KAFKIT_NOTE="kafkit-txn from --kafkit-bin $KAFKIT_BIN"
else
  KAFKIT_BIN="$ROOT/target/$BENCH_TARGET/kafkit-txn"
fi
RDKAFKA_BIN="$ROOT/benches/peers/target/release/rdkafka-txn"
if uses rdkafka; then
  (cd "$ROOT/benches/peers" && cargo build --release --quiet --bin rdkafka-txn) ||
    die "benches/peers (rust-rdkafka) did not build"
fi
JAVA_CP=""
if uses java; then
  LIBS="$(bash "$ROOT/scripts/kafka.sh" libs | tail -1)"
  mkdir -p "$WORK/java"
  javac -d "$WORK/java" -cp "$LIBS/*" "$ROOT/benches/java/TxnBench.java" ||
    die "javac failed (a JDK is needed)"
  JAVA_CP="$LIBS/*:$WORK/java"
fi

# --------------------------------------------------------------------------------------- broker
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

PAYLOAD="$WORK/payload.txt"
POOL=$((RECORDS < 200000 ? RECORDS : 200000))
PAYLOAD_INFO="$("$TOOL" payload --out "$PAYLOAD" --count "$POOL" --size "$SIZE")"

# ---------------------------------------------------------------------------------------- runs
RUN_NO=0
run_one() { # CLIENT TXN_SIZE ROUND (ROUND 0: warm-up, not recorded)
  local client="$1" txn_size="$2" round="$3" line=""
  local txns=$(((RECORDS + txn_size - 1) / txn_size))
  ((txns >= MIN_TXNS)) || txns=$MIN_TXNS
  ((round > 0)) || txns=$(((txns + 4) / 5))
  RUN_NO=$((RUN_NO + 1))
  TOPIC="bench-txn-$STAMP-$RUN_NO"
  timeout 60 "$TOOL" create --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --partitions "$PARTITIONS" ||
    die "cannot create topic $TOPIC"
  local args=(--bootstrap "$BOOTSTRAP" --topic "$TOPIC" --payload-file "$PAYLOAD"
    --txn-size "$txn_size" --transactions "$txns" --transactional-id "bench-txn-$STAMP-$RUN_NO")
  local cmd
  case "$client" in
    kafkit) cmd=("$KAFKIT_BIN") ;;
    rdkafka) cmd=("$RDKAFKA_BIN") ;;
    java) cmd=(java "${KAFKIT_TOOL_HEAP:--Xmx512m}" -cp "$JAVA_CP" TxnBench) ;;
  esac
  sleep "$PAUSE"
  line="$(timeout $((RUN_TIMEOUT + 30)) "${CLIENT_PIN[@]}" "${cmd[@]}" "${args[@]}" \
    2>"$WORK/$client.err" | grep '^{' | tail -1)" || true
  local held
  held="$(timeout 60 "$TOOL" count --bootstrap "$BOOTSTRAP" --topic "$TOPIC" || echo -1)"
  timeout 60 "$TOOL" delete --bootstrap "$BOOTSTRAP" --topic "$TOPIC" >/dev/null 2>&1 || true
  TOPIC=""
  if [[ "$line" != \{* ]]; then
    say "$client size $txn_size run failed (round $round):"
    tail -20 "$WORK/$client.err" >&2
    return 0
  fi
  ((round > 0)) || { say "warm-up $client size $txn_size done"; return 0; }
  line="${line%\}},\"round\":$round,\"broker_offsets\":$held}"
  echo "$line" >>"$RESULTS"
  say "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%-7s txn %6d round %s: %9.0f rec/s, %7.3f CPU-s/M, txn p50 %8.2f ms p99 %8.2f ms, %d txns, %d failed" % (r["client"], r["txn_size"], r["round"], r["records_per_s"], r["cpu_s_per_million"], r["txn_p50_ms"], r["txn_p99_ms"], r["transactions"], r["failed"]))' "$line")"
}

n=${#CLIENT_LIST[@]}
for c in "${CLIENT_LIST[@]}"; do run_one "$c" "${SIZE_LIST[0]}" 0; done
for ((round = 1; round <= ROUNDS; round++)); do
  for txn_size in "${SIZE_LIST[@]}"; do
    for ((k = 0; k < n; k++)); do
      run_one "${CLIENT_LIST[$(((k + round - 1) % n))]}" "$txn_size" "$round"
    done
  done
done

# ------------------------------------------------------------------------------------- summary
mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$OUT" "$NOTE" <<PY
import json, os, sys, subprocess
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = {
    "txn_sizes": [int(s) for s in "${SIZE_LIST[*]}".split()], "records": $RECORDS,
    "min_txns": $MIN_TXNS, "size": $SIZE, "rounds": $ROUNDS, "partitions": $PARTITIONS,
    "pinned": bool($PIN), "payload": json.loads('''$PAYLOAD_INFO'''),
    "clients": "${CLIENT_LIST[*]}".split(),
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip(),
    "nproc": $(nproc), "loadavg_end": os.getloadavg(), "stamp": "$STAMP", "note": sys.argv[3],
    "kafkit_note": "$KAFKIT_NOTE",
}
json.dump({"meta": meta, "runs": runs}, open(sys.argv[2], "w"), indent=2)
PY
python3 "$ROOT/benches/transactions_summary.py" "$OUT"
