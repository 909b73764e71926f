#!/usr/bin/env bash
# run-commit.sh — consumer commits: (a) commit latency p50/p99 of a caught-up consumer that
# commits synchronously after every poll, kafkit vs the Java client (Kafka 4.2.0); (b) poll →
# process → commit throughput with a commit per poll, kafkit vs rust-rdkafka (librdkafka 2.12).
# Both with the Java defaults (fetch.max.wait.ms=500). See benches/README.md.
#
# Usage: bash benches/run-commit.sh [options]
#   --commits N        timed commits per latency run (default 200)
#   --records N        records each throughput run reads (default 200000)
#   --size S           payload bytes per record (default 100)
#   --rounds R         interleaved rounds (default 5)
#   --protocols LIST   group.protocol values (default classic,consumer)
#   --latency-clients LIST     default kafkit,java ("" skips the latency part)
#   --throughput-clients LIST  default kafkit,rdkafka (java may be added; "" skips)
#   --partitions P     partitions of the throughput topic (default 6; the latency topic has 3)
#   --pin              broker JVM on CPU 0 (taskset -c 0), clients on CPU 1 (taskset -c 1)
#   --bootstrap B      use a running broker instead of starting one
#   --pause S          seconds between runs (default 1)
#   --quick            smoke preset: 100 commits, 50000 records, 3 rounds
#   --out FILE         results JSON (default target/bench-results/commit-<UTC time>.json)
#   --summarize FILE   print (and store) the summary of an earlier results file, run nothing
#   --note TEXT        free text stored in the results' meta
#   --kafkit-bin PATH  use this kafkit-commit binary instead of building one (e.g. an older
#                      kafkit, for a before/after comparison in one run)
#
# What it does: builds kafkit-bench-tool, kafkit-produce (the filler) and kafkit-commit (main
# workspace), rdkafka-commit (benches/peers, its own workspace), compiles
# benches/java/CommitBench.java with javac against the Kafka jars (scripts/kafka.sh libs);
# starts a dedicated broker; writes a latency topic (3 partitions, 10 records each: read at
# once, then every Fetch long-polls) and a throughput topic (N records); then R rounds, each
# round every client once per protocol and part (the order rotating), each run in a fresh
# group; prints medians and ratios of the same run; writes every run and the summary as JSON.
# Stops the broker it started.
#
# Environment: KAFKIT_BENCH_RUN_TIMEOUT (seconds per client run, default 300),
# KAFKIT_TOOL_HEAP (Java client heap, default -Xmx512m).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

COMMITS=200 RECORDS=200000 SIZE=100 ROUNDS=5 PROTOCOLS=classic,consumer
LAT_CLIENTS=kafkit,java THR_CLIENTS=kafkit,rdkafka PARTITIONS=6 PIN=0 BOOTSTRAP="" PAUSE=1
OUT="" NOTE="" KAFKIT_BIN=""
RUN_TIMEOUT="${KAFKIT_BENCH_RUN_TIMEOUT:-300}"

say() { printf 'run-commit: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case "$1" in
    --commits) COMMITS="${2:?}"; shift 2 ;;
    --records) RECORDS="${2:?}"; shift 2 ;;
    --size) SIZE="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --protocols) PROTOCOLS="${2:?}"; shift 2 ;;
    --latency-clients) LAT_CLIENTS="${2?}"; shift 2 ;;
    --throughput-clients) THR_CLIENTS="${2?}"; shift 2 ;;
    --partitions) PARTITIONS="${2:?}"; shift 2 ;;
    --pin) PIN=1; shift ;;
    --bootstrap) BOOTSTRAP="${2:?}"; shift 2 ;;
    --pause) PAUSE="${2:?}"; shift 2 ;;
    --quick) COMMITS=100 RECORDS=50000 ROUNDS=3; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --note) NOTE="${2:?}"; shift 2 ;;
    --kafkit-bin) KAFKIT_BIN="$(realpath "${2:?}")"; shift 2 ;;
    --summarize) exec python3 "$ROOT/benches/commit_summary.py" "${2:?}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in COMMITS RECORDS SIZE ROUNDS PARTITIONS PAUSE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number"
done
((COMMITS > 0 && RECORDS > 0 && SIZE >= 16 && ROUNDS > 0)) || die "need positive counts, size >= 16"

STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="${OUT:-$ROOT/target/bench-results/commit-$STAMP.json}"
WORK="$(mktemp -d /tmp/kafkit-bench-commit.XXXXXX)"
RESULTS="$WORK/runs.jsonl"
: >"$RESULTS"
BROKER_DIR=""
TOPICS=()

cleanup() {
  if [[ -n "$BROKER_DIR" ]]; then
    say "stopping the broker ($BROKER_DIR)"
    bash "$ROOT/scripts/kafka.sh" stop "$BROKER_DIR" >/dev/null 2>&1 || true
    rm -rf "$BROKER_DIR"
  elif [[ -n "$BOOTSTRAP" && -x "${TOOL:-}" ]]; then
    local t
    for t in "${TOPICS[@]}"; do
      timeout 60 "$TOOL" delete --bootstrap "$BOOTSTRAP" --topic "$t" >/dev/null 2>&1 || true
    done
  fi
  rm -f "$WORK/payload.txt"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

IFS=, read -r -a PROTOCOL_LIST <<<"$PROTOCOLS"
IFS=, read -r -a LAT_LIST <<<"$LAT_CLIENTS"
IFS=, read -r -a THR_LIST <<<"$THR_CLIENTS"
for c in "${LAT_LIST[@]}"; do
  case "$c" in kafkit | java) ;; *) die "latency client $c: kafkit or java (librdkafka skips unchanged commits)" ;; esac
done
for c in "${THR_LIST[@]}"; do
  case "$c" in kafkit | rdkafka | java) ;; *) die "unknown throughput client $c" ;; esac
done
for p in "${PROTOCOL_LIST[@]}"; do
  case "$p" in classic | consumer) ;; *) die "unknown protocol $p" ;; esac
done
uses() { local c; for c in "${LAT_LIST[@]}" "${THR_LIST[@]}"; do [[ "$c" == "$1" ]] && return 0; done; return 1; }

# ---------------------------------------------------------------------------------------- build
say "building ($BENCH_PROFILE)"
cargo build --profile "$BENCH_PROFILE" --quiet -p kafkit-benches --bin kafkit-bench-tool --bin kafkit-produce \
  --bin kafkit-commit
TOOL="$ROOT/target/$BENCH_TARGET/kafkit-bench-tool"
FILLER="$ROOT/target/$BENCH_TARGET/kafkit-produce"
KAFKIT_NOTE=""
if [[ -n "$KAFKIT_BIN" ]]; then
  [[ -x "$KAFKIT_BIN" ]] || die "--kafkit-bin $KAFKIT_BIN: not an executable"
  KAFKIT_NOTE="kafkit-commit from --kafkit-bin $KAFKIT_BIN"
else
  KAFKIT_BIN="$ROOT/target/$BENCH_TARGET/kafkit-commit"
fi
RDKAFKA_BIN="$ROOT/benches/peers/target/release/rdkafka-commit"
if uses rdkafka; then
  (cd "$ROOT/benches/peers" && cargo build --release --quiet --bin rdkafka-commit) ||
    die "benches/peers (rust-rdkafka) did not build"
fi
JAVA_CP=""
if uses java; then
  LIBS="$(bash "$ROOT/scripts/kafka.sh" libs | tail -1)"
  mkdir -p "$WORK/java"
  javac -d "$WORK/java" -cp "$LIBS/*" "$ROOT/benches/java/CommitBench.java" ||
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

# ----------------------------------------------------------------------------------------- fill
PAYLOAD="$WORK/payload.txt"
POOL=$((RECORDS < 200000 ? RECORDS : 200000))
PAYLOAD_INFO="$("$TOOL" payload --out "$PAYLOAD" --count "$POOL" --size "$SIZE")"
fill() { # TOPIC PARTITIONS RECORDS
  timeout 60 "$TOOL" create --bootstrap "$BOOTSTRAP" --topic "$1" --partitions "$2" ||
    die "cannot create topic $1"
  TOPICS+=("$1")
  timeout "$RUN_TIMEOUT" "$FILLER" --bootstrap "$BOOTSTRAP" --topic "$1" \
    --payload-file "$PAYLOAD" --records "$3" --compression none --warmup 0 \
    >"$WORK/fill.out" 2>"$WORK/fill.err" || { tail -20 "$WORK/fill.err" >&2; die "fill failed"; }
  local held
  held="$(timeout 60 "$TOOL" count --bootstrap "$BOOTSTRAP" --topic "$1")"
  [[ "$held" == "$3" ]] || die "$1 holds $held records, not $3"
  say "$1: $held records"
}
LAT_TOPIC="bench-commit-latency-$STAMP"
THR_TOPIC="bench-commit-throughput-$STAMP"
((${#LAT_LIST[@]} == 0)) || fill "$LAT_TOPIC" 3 30
((${#THR_LIST[@]} == 0)) || fill "$THR_TOPIC" "$PARTITIONS" "$RECORDS"

# ---------------------------------------------------------------------------------------- runs
run_one() { # CLIENT MODE PROTOCOL ROUND
  local client="$1" mode="$2" protocol="$3" round="$4" line="" topic="$LAT_TOPIC"
  [[ "$mode" == throughput ]] && topic="$THR_TOPIC"
  local args=(--bootstrap "$BOOTSTRAP" --topic "$topic"
    --group "bench-commit-$client-$mode-$protocol-r$round-$STAMP" --protocol "$protocol"
    --mode "$mode" --commits "$COMMITS" --records "$RECORDS" --timeout "$RUN_TIMEOUT")
  local cmd
  case "$client" in
    kafkit) cmd=("$KAFKIT_BIN") ;;
    rdkafka) cmd=("$RDKAFKA_BIN") ;;
    java) cmd=(java "${KAFKIT_TOOL_HEAP:--Xmx512m}" -cp "$JAVA_CP" CommitBench) ;;
  esac
  sleep "$PAUSE"
  line="$(timeout $((RUN_TIMEOUT + 30)) "${CLIENT_PIN[@]}" "${cmd[@]}" "${args[@]}" \
    2>"$WORK/$client.err" | grep '^{' | tail -1)" || true
  if [[ "$line" != \{* ]]; then
    say "$client $mode $protocol run failed (round $round):"
    tail -20 "$WORK/$client.err" >&2
    return 0
  fi
  line="${line%\}},\"round\":$round,\"size\":$SIZE}"
  echo "$line" >>"$RESULTS"
  say "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%-7s %-10s %-8s round %s: commit p50 %7.2f ms p99 %7.2f ms, %9.0f rec/s, %d commits" % (r["client"], r["mode"], r["protocol"], r["round"], r["commit_p50_ms"], r["commit_p99_ms"], r["records_per_s"], r["commits"]))' "$line")"
}

for ((round = 1; round <= ROUNDS; round++)); do
  for protocol in "${PROTOCOL_LIST[@]}"; do
    n=${#LAT_LIST[@]}
    for ((k = 0; k < n; k++)); do
      run_one "${LAT_LIST[$(((k + round - 1) % n))]}" latency "$protocol" "$round"
    done
    n=${#THR_LIST[@]}
    for ((k = 0; k < n; k++)); do
      run_one "${THR_LIST[$(((k + round - 1) % n))]}" throughput "$protocol" "$round"
    done
  done
done

# ------------------------------------------------------------------------------------- summary
mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$OUT" "$NOTE" <<PY
import json, os, sys, subprocess
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = {
    "commits": $COMMITS, "records": $RECORDS, "size": $SIZE, "rounds": $ROUNDS,
    "partitions": $PARTITIONS, "pinned": bool($PIN), "payload": json.loads('''$PAYLOAD_INFO'''),
    "protocols": "${PROTOCOL_LIST[*]}".split(), "latency_clients": "${LAT_LIST[*]}".split(),
    "throughput_clients": "${THR_LIST[*]}".split(),
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip(),
    "nproc": $(nproc), "loadavg_end": os.getloadavg(), "stamp": "$STAMP", "note": sys.argv[3],
    "kafkit_note": "$KAFKIT_NOTE",
}
json.dump({"meta": meta, "runs": runs}, open(sys.argv[2], "w"), indent=2)
PY
python3 "$ROOT/benches/commit_summary.py" "$OUT"
