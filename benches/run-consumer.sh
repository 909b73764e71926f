#!/usr/bin/env bash
# run-consumer.sh — consumer throughput: kafkit vs rust-rdkafka (librdkafka 2.12), with the
# Java client's ConsumerPerformance (Kafka 4.2.0) as a second reference. See benches/README.md.
#
# Usage: bash benches/run-consumer.sh [options]
#   --records N        records in each topic, every run reads them all (default 1000000)
#   --size S           payload bytes per record (default 100)
#   --rounds R         interleaved rounds per codec (default 5)
#   --codecs LIST      comma-separated compression types the topics are written with
#                      (default none,lz4)
#   --clients LIST     subset/order of kafkit,rdkafka,java (default all three)
#   --partitions P     partitions of each topic (default 6)
#   --brokers N        start a cluster of N brokers (default 1); the topic's partitions are
#                      spread over them (replication factor 1)
#   --keys K           fill the topic with keyed records (key-<i % K>, murmur2 placement; see
#                      run-producer.sh), so each record also carries a key to decode
#   --pin              broker JVM on CPU 0 (taskset -c 0), clients on CPU 1 (taskset -c 1)
#   --bootstrap B      use a running broker instead of starting one (no pinning of it then)
#   --pause S          seconds between runs, to let the broker settle (default 2)
#   --no-broker-warmup skip the unrecorded warm-up passes before the rounds
#   --warmup-passes M  at most M warm-up passes (default 6, --quick 2): each pass runs every
#                      client but java once on the first codec's topic, and passes repeat
#                      until every client's records/s is within 5 % of its previous pass
#   --quick            smoke preset: 200000 records, 3 rounds
#   --out FILE         results JSON (default target/bench-results/consumer-<UTC time>.json)
#   --summarize FILE   print (and store) the summary of an earlier results file, run nothing
#   --note TEXT        free text stored in the results' meta
#   --kafkit-bin PATH  use this kafkit-consume binary instead of building one
#
# What it does: builds kafkit-bench-tool, kafkit-produce (the filler), kafkit-consume (main
# workspace; needs kafkit::consumer) and rdkafka-consume (benches/peers, its own
# workspace); writes the producer benchmark's payload file (seeded JSON-like events of S
# bytes); starts a dedicated broker (scripts/kafka.sh, heap ${KAFKIT_KAFKA_HEAP:--Xms1g -Xmx1g});
# per codec fills ONE topic with N records written by kafkit-produce with that codec and checks
# the broker holds exactly N; then R rounds, each round every client once (the order rotates)
# reading all N records of that topic from the beginning (no group for kafkit and rdkafka:
# manual assign; Java's tool needs a group: a fresh one per run); prints medians and
# kafkit/rdkafka ratios of the same run; writes every run and the summary as JSON. Stops the
# broker.
#
# Environment: KAFKIT_BENCH_RUN_TIMEOUT (seconds per client run, default 600),
# KAFKIT_TOOL_HEAP (Java client heap, see scripts/kafka.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

RECORDS=1000000 SIZE=100 ROUNDS=5 CODECS=none,lz4 CLIENTS=kafkit,rdkafka,java
PARTITIONS=6 BROKERS=1 KEYS=0 BROKER_WARMUP=1 WARMUP_PASSES=6 PIN=0 BOOTSTRAP="" PAUSE=2 OUT="" POOL_MAX=200000 KAFKIT_BIN="" NOTE=""
RUN_TIMEOUT="${KAFKIT_BENCH_RUN_TIMEOUT:-600}"

say() { printf 'run-consumer: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case "$1" in
    --records) RECORDS="${2:?}"; shift 2 ;;
    --size) SIZE="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --codecs) CODECS="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --partitions) PARTITIONS="${2:?}"; shift 2 ;;
    --brokers) BROKERS="${2:?}"; shift 2 ;;
    --keys) KEYS="${2:?}"; shift 2 ;;
    --pin) PIN=1; shift ;;
    --bootstrap) BOOTSTRAP="${2:?}"; shift 2 ;;
    --pause) PAUSE="${2:?}"; shift 2 ;;
    --quick) RECORDS=200000 ROUNDS=3 WARMUP_PASSES=2; shift ;;
    --no-broker-warmup) BROKER_WARMUP=0; shift ;;
    --warmup-passes) WARMUP_PASSES="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --note) NOTE="${2:?}"; shift 2 ;;
    --summarize) exec python3 "$ROOT/benches/consumer_summary.py" "${2:?}" ;;
    --kafkit-bin) KAFKIT_BIN="$(realpath "${2:?}")"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in RECORDS SIZE ROUNDS PARTITIONS BROKERS KEYS WARMUP_PASSES PAUSE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number"
done
((RECORDS > 0 && SIZE >= 16 && ROUNDS > 0)) || die "need records > 0, size >= 16, rounds > 0"
((BROKERS > 0)) || die "--brokers must be at least 1"
[[ -z "$BOOTSTRAP" ]] || ((BROKERS == 1)) || die "--brokers starts a cluster: not with --bootstrap"

STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="${OUT:-$ROOT/target/bench-results/consumer-$STAMP.json}"
WORK="$(mktemp -d /tmp/kafkit-bench-consumer.XXXXXX)"
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

# ---------------------------------------------------------------------------------------- build
IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"
IFS=, read -r -a CODEC_LIST <<<"$CODECS"
has_client() { local c; for c in "${CLIENT_LIST[@]}"; do [[ "$c" == "$1" ]] && return 0; done; return 1; }
drop_client() {
  local c keep=()
  for c in "${CLIENT_LIST[@]}"; do [[ "$c" == "$1" ]] || keep+=("$c"); done
  CLIENT_LIST=("${keep[@]}")
}
for c in "${CLIENT_LIST[@]}"; do
  case "$c" in kafkit | rdkafka | java) ;; *) die "unknown client $c" ;; esac
done

say "building ($BENCH_PROFILE)"
cargo build --profile "$BENCH_PROFILE" --quiet -p kafkit-benches --bin kafkit-bench-tool --bin kafkit-produce
TOOL="$ROOT/target/$BENCH_TARGET/kafkit-bench-tool"
FILLER="$ROOT/target/$BENCH_TARGET/kafkit-produce"
KAFKIT_NOTE=""
if [[ -n "$KAFKIT_BIN" ]]; then
  [[ -x "$KAFKIT_BIN" ]] || die "--kafkit-bin $KAFKIT_BIN: not an executable"
  KAFKIT_NOTE="kafkit-consume from --kafkit-bin $KAFKIT_BIN"
elif has_client kafkit; then
  KAFKIT_BIN="$ROOT/target/$BENCH_TARGET/kafkit-consume"
  if ! cargo build --profile "$BENCH_PROFILE" --quiet -p kafkit-benches --bin kafkit-consume \
    2>"$WORK/kafkit-build.log"; then
    KAFKIT_NOTE="kafkit-consume did not build (is kafkit::consumer::Consumer merged?); see $WORK/kafkit-build.log"
    say "$KAFKIT_NOTE — running without kafkit"
    drop_client kafkit
  fi
fi
if has_client rdkafka; then
  (cd "$ROOT/benches/peers" && cargo build --release --quiet --bin rdkafka-consume) ||
    die "benches/peers (rust-rdkafka) did not build"
fi
((${#CLIENT_LIST[@]} > 0)) || die "no client left to run"

# -------------------------------------------------------------------------------------- payload
POOL_MAX=$((POOL_MAX < 20000000 / SIZE ? POOL_MAX : 20000000 / SIZE))
POOL_MAX=$((POOL_MAX > 1000 ? POOL_MAX : 1000))
POOL=$((RECORDS < POOL_MAX ? RECORDS : POOL_MAX))
PAYLOAD="$WORK/payload.txt"
PAYLOAD_INFO="$("$TOOL" payload --out "$PAYLOAD" --count "$POOL" --size "$SIZE")"
say "payload file: $POOL distinct records of $SIZE bytes: $PAYLOAD_INFO"

# --------------------------------------------------------------------------------------- broker
CLIENT_PIN=()
if [[ -z "$BOOTSTRAP" ]]; then
  BROKER_PIN=()
  if ((PIN)); then
    BROKER_PIN=(taskset -c 0)
    CLIENT_PIN=(taskset -c 1)
  fi
  BROKER_DIR="$WORK/broker"
  if ((PIN)); then say "starting $BROKERS broker(s) (JVMs pinned to CPU 0, clients to CPU 1)"; else say "starting $BROKERS broker(s)"; fi
  START_OUT="$(KAFKIT_KAFKA_HEAP="${KAFKIT_KAFKA_HEAP:--Xms1g -Xmx1g}" \
    "${BROKER_PIN[@]}" bash "$ROOT/scripts/kafka.sh" start --dir "$BROKER_DIR" \
    --brokers "$BROKERS" --watch-pid $$)"
  BOOTSTRAP="$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p' <<<"$START_OUT")"
  [[ -n "$BOOTSTRAP" ]] || die "no bootstrap address from kafka.sh start"
elif ((PIN)); then
  CLIENT_PIN=(taskset -c 1)
fi
say "broker: $BOOTSTRAP"

# ----------------------------------------------------------------------------------------- fill
declare -A TOPIC LOG_BYTES
for codec in "${CODEC_LIST[@]}"; do
  topic="bench-consume-$codec-$STAMP"
  TOPIC[$codec]="$topic"
  TOPICS+=("$topic")
  timeout 60 "$TOOL" create --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" ||
    die "cannot create topic $topic"
  say "filling $topic: $RECORDS records, compression $codec (kafkit-produce)"
  fill="$(timeout "$RUN_TIMEOUT" "$FILLER" --bootstrap "$BOOTSTRAP" --topic "$topic" \
    --payload-file "$PAYLOAD" --records "$RECORDS" --compression "$codec" --warmup 0 \
    --keys "$KEYS" 2>"$WORK/fill.err" | tail -1)" || { tail -20 "$WORK/fill.err" >&2; die "fill failed"; }
  held="$(timeout 60 "$TOOL" count --bootstrap "$BOOTSTRAP" --topic "$topic")"
  [[ "$held" == "$RECORDS" ]] || die "$topic holds $held records, not $RECORDS ($fill)"
  LOG_BYTES[$codec]=-1
  if [[ -n "$BROKER_DIR" ]]; then
    LOG_BYTES[$codec]="$(cat "$BROKER_DIR"/node-*/data/"$topic"-*/*.log 2>/dev/null | wc -c)"
  fi
  say "$topic: $held records, ${LOG_BYTES[$codec]} log bytes"
done

# ---------------------------------------------------------------------------------------- runs
# run_java TOPIC NUM GROUP → prints "nmsg fetch_ms fetch_mb_s fetch_nmsg_s elapsed user sys"
run_java() {
  local topic="$1" num="$2" group="$3" log="$WORK/java.log" tfile="$WORK/java.time"
  timeout "$RUN_TIMEOUT" "${CLIENT_PIN[@]}" /usr/bin/time -f '%e %U %S' -o "$tfile" \
    bash "$ROOT/scripts/kafka.sh" java org.apache.kafka.tools.ConsumerPerformance \
    --bootstrap-server "$BOOTSTRAP" --topic "$topic" --num-records "$num" --group "$group" \
    --timeout 30000 --hide-header \
    --command-property check.crcs=true fetch.min.bytes=1 fetch.max.wait.ms=500 \
    fetch.max.bytes=52428800 max.partition.fetch.bytes=1048576 >"$log" 2>&1 ||
    { tail -20 "$log" >&2; return 1; }
  # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
  # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  local line
  line="$(grep -E '^[0-9]{4}-' "$log" | tail -1)"
  [[ -n "$line" ]] || { tail -20 "$log" >&2; return 1; }
  awk -F', *' '{printf "%s %s %s %s ", $5, $8, $9, $10}' <<<"$line"
  tail -1 "$tfile"
}

# Java's CPU is the whole process (/usr/bin/time): JVM start-up, class loading and the group
# join included; a baseline run (1000 records) per codec is subtracted for the "net" figure.
declare -A JAVA_BASE
if has_client java; then
  for codec in "${CODEC_LIST[@]}"; do
    base_out="$(run_java "${TOPIC[$codec]}" 1000 "bench-base-$codec-$STAMP")" ||
      die "java baseline run failed"
    read -r _ _ _ _ _ bu bs <<<"$base_out"
    JAVA_BASE[$codec]="$(awk -v u="$bu" -v s="$bs" 'BEGIN{printf "%.3f", u+s}')"
    say "java start-up baseline ($codec): ${JAVA_BASE[$codec]} CPU-s"
  done
fi

run_one() { # CLIENT CODEC ROUND
  local client="$1" codec="$2" round="$3" line="" topic="${TOPIC[$2]}"
  sleep "$PAUSE"
  case "$client" in
    kafkit | rdkafka)
      local bin="$KAFKIT_BIN"
      [[ "$client" == rdkafka ]] && bin="$ROOT/benches/peers/target/release/rdkafka-consume"
      line="$(timeout "$RUN_TIMEOUT" "${CLIENT_PIN[@]}" "$bin" --bootstrap "$BOOTSTRAP" \
        --topic "$topic" --records "$RECORDS" --compression "$codec" \
        --timeout "$RUN_TIMEOUT" 2>"$WORK/$client.err" | tail -1)" || true
      if [[ "$line" != \{* ]]; then
        say "$client run failed (round $round, $codec):"
        tail -20 "$WORK/$client.err" >&2
        line=""
      fi
      ;;
    java)
      local out n fms fmb fn el u s
      if out="$(run_java "$topic" "$RECORDS" "bench-java-$codec-r$round-$STAMP")"; then
        read -r n fms fmb fn el u s <<<"$out"
        line="$(awk -v n="$n" -v fms="$fms" -v fmb="$fmb" -v fn="$fn" -v el="$el" -v u="$u" \
          -v s="$s" -v base="${JAVA_BASE[$codec]}" -v topic="$topic" -v codec="$codec" \
          -v recs="$RECORDS" 'BEGIN{
          printf "{\"client\":\"java\",\"topic\":\"%s\",\"compression\":\"%s\",", topic, codec
          printf "\"records\":%d,\"consumed\":%d,\"bytes\":%d,\"out_of_order\":0,", recs, n, fmb * 1048576 * fms / 1000
          printf "\"offsets_covered\":-1,\"wall_s\":%.6f,", fms / 1000
          printf "\"records_per_s\":%.1f,\"mb_per_s\":%.3f,", fn, fmb * 1048576 / 1e6
          printf "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"process_elapsed_s\":%.3f,", u, s, el
          printf "\"cpu_s_per_million_raw\":%.6f,\"startup_cpu_s\":%.3f,", (u + s) * 1e6 / n, base
          printf "\"cpu_s_per_million\":%.6f}", (u + s - base) * 1e6 / n }')"
      else
        say "java run failed (round $round, $codec)"
      fi
      ;;
  esac
  if [[ -n "$line" ]]; then
    line="${line%\}},\"round\":$round,\"size\":$SIZE,\"partitions\":$PARTITIONS,\"broker_log_bytes\":${LOG_BYTES[$codec]}}"
    echo "$line" >>"$RESULTS"
    say "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%-7s %-5s round %s: %9.0f rec/s %7.2f MB/s %7.3f CPU-s/M consumed %d" % (r["client"], r["compression"], r["round"], r["records_per_s"], r["mb_per_s"], r["cpu_s_per_million"], r["consumed"]))' "$line")"
  fi
}

# A warm broker for everyone: unrecorded passes (every client but java once, first codec) until
# the throughput levels out, so that the broker's warm-up does not land on the recorded rounds.
WARMUP_RATES=""
if ((BROKER_WARMUP)); then
  SAVED_RESULTS="$RESULTS"
  RESULTS="$WORK/warmup.jsonl"
  warm_broker "$WARMUP_PASSES" "$RESULTS" "${CODEC_LIST[0]}"
  RESULTS="$SAVED_RESULTS"
fi

for codec in "${CODEC_LIST[@]}"; do
  for ((round = 1; round <= ROUNDS; round++)); do
    nclients=${#CLIENT_LIST[@]}
    for ((k = 0; k < nclients; k++)); do
      run_one "${CLIENT_LIST[$(((k + round - 1) % nclients))]}" "$codec" "$round"
    done
  done
done

# ------------------------------------------------------------------------------------- summary
mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$OUT" "$NOTE" <<PY
import json, sys, subprocess
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = {
    "records": $RECORDS, "size": $SIZE, "rounds": $ROUNDS, "partitions": $PARTITIONS,
    "brokers": $BROKERS, "keys": $KEYS,
    "broker_warmup_rates": [${WARMUP_RATES:-}], "pinned": bool($PIN), "payload": json.loads('''$PAYLOAD_INFO'''),
    "clients": "${CLIENT_LIST[*]}".split(), "kafkit_note": "$KAFKIT_NOTE",
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip(),
    "nproc": $(nproc), "stamp": "$STAMP", "note": sys.argv[3],
}
json.dump({"meta": meta, "runs": runs}, open(sys.argv[2], "w"), indent=2)
PY
python3 "$ROOT/benches/consumer_summary.py" "$OUT"
