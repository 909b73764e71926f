#!/usr/bin/env bash
# run-producer.sh — producer throughput: kafkit vs rust-rdkafka (librdkafka 2.12), with the
# Java client's ProducerPerformance (Kafka 4.2.0) as a second reference. See benches/README.md.
#
# Usage: bash benches/run-producer.sh [options]
#   --records N        records per run, warm-up excluded (default 1000000)
#   --size S           payload bytes per record (default 100)
#   --rounds R         interleaved rounds per codec (default 5)
#   --codecs LIST      comma-separated compression types (default none,lz4)
#   --clients LIST     subset/order of kafkit,rdkafka,java (default all three)
#   --partitions P     partitions of each fresh topic (default 6)
#   --keys K           keyed records: record i carries key-<i % K>, placed by each client's
#                      murmur2 key partitioner (default 0: no key, the sticky partitioner);
#                      the Java tool cannot send keys, so java is left out then
#   --brokers N        start a cluster of N brokers (default 1); each topic's partitions are
#                      spread over them (replication factor 1)
#   --warmup W         warm-up records before timing, every client (default 2000)
#   --pin              broker JVM on CPU 0 (taskset -c 0), clients on CPU 1 (taskset -c 1)
#   --bootstrap B      use a running broker instead of starting one (no pinning of it then)
#   --no-broker-warmup skip the unrecorded warm-up passes before the rounds
#   --warmup-passes M  at most M warm-up passes (default 8, --quick 2): each pass runs every
#                      client but java once with the first codec (min(N, 1000000) records), and passes
#                      repeat until every client's records/s is within 5 % of its previous
#                      pass (the broker has warmed up; see benches/profile.sh warm_broker)
#   --pause S          seconds between runs, to let the broker settle (default 2)
#   --quick            smoke preset: 200000 records, 3 rounds
#   --out FILE         results JSON (default target/bench-results/producer-<UTC time>.json)
#   --summarize FILE   print (and store) the summary of an earlier results file, run nothing
#   --note TEXT        free text stored in the results' meta (e.g. which producer commit)
#   --kafkit-bin PATH  use this kafkit-produce binary instead of building one (e.g. one built
#                      from a tree with an unmerged producer branch; see benches/README.md)
#
# What it does: builds kafkit-bench-tool and kafkit-produce (main workspace, kafkit-produce
# needs the producer: skipped with a note when it does not build) and rdkafka-produce
# (benches/peers, its own workspace); writes ONE payload file (min(N, 200000, 20 MB/S) distinct
# JSON-like events of S bytes, seeded) that every client reads before timing; starts a
# dedicated broker (scripts/kafka.sh, heap ${KAFKIT_KAFKA_HEAP:--Xms1g -Xmx1g}); then per
# codec, R rounds, each round every client once (the order rotates each round) to a fresh
# topic; checks the broker's log end offsets against what the client reported; prints medians
# and kafkit/rdkafka ratios; writes every run and the summary as JSON. Stops the broker.
#
# Environment: KAFKIT_BENCH_RUN_TIMEOUT (seconds per client run, default 900),
# KAFKIT_TOOL_HEAP (Java client heap, default -Xmx512m, see scripts/kafka.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

RECORDS=1000000 SIZE=100 ROUNDS=5 CODECS=none,lz4 CLIENTS=kafkit,rdkafka,java
PARTITIONS=6 KEYS=0 BROKERS=1 WARMUP=2000 BROKER_WARMUP=1 WARMUP_PASSES=8 PIN=0 BOOTSTRAP="" PAUSE=2 OUT="" POOL_MAX=200000 KAFKIT_BIN="" NOTE=""
RUN_TIMEOUT="${KAFKIT_BENCH_RUN_TIMEOUT:-900}"

say() { printf 'run-producer: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case "$1" in
    --records) RECORDS="${2:?}"; shift 2 ;;
    --size) SIZE="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --codecs) CODECS="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --partitions) PARTITIONS="${2:?}"; shift 2 ;;
    --keys) KEYS="${2:?}"; shift 2 ;;
    --brokers) BROKERS="${2:?}"; shift 2 ;;
    --warmup) WARMUP="${2:?}"; shift 2 ;;
    --pin) PIN=1; shift ;;
    --no-broker-warmup) BROKER_WARMUP=0; shift ;;
    --warmup-passes) WARMUP_PASSES="${2:?}"; shift 2 ;;
    --bootstrap) BOOTSTRAP="${2:?}"; shift 2 ;;
    --pause) PAUSE="${2:?}"; shift 2 ;;
    --quick) RECORDS=200000 ROUNDS=3 WARMUP_PASSES=2; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --note) NOTE="${2:?}"; shift 2 ;;
    --summarize) exec python3 "$ROOT/benches/producer_summary.py" "${2:?}" ;;
    --kafkit-bin) KAFKIT_BIN="$(realpath "${2:?}")"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in RECORDS SIZE ROUNDS PARTITIONS KEYS BROKERS WARMUP WARMUP_PASSES PAUSE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number"
done
((RECORDS > 0 && SIZE >= 16 && ROUNDS > 0)) || die "need records > 0, size >= 16, rounds > 0"
((BROKERS > 0)) || die "--brokers must be at least 1"
[[ -z "$BOOTSTRAP" ]] || ((BROKERS == 1)) || die "--brokers starts a cluster: not with --bootstrap"

STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="${OUT:-$ROOT/target/bench-results/producer-$STAMP.json}"
WORK="$(mktemp -d /tmp/kafkit-bench-producer.XXXXXX)"
RESULTS="$WORK/runs.jsonl"
: >"$RESULTS"
BROKER_DIR=""

cleanup() {
  if [[ -n "$BROKER_DIR" ]]; then
    say "stopping the broker ($BROKER_DIR)"
    bash "$ROOT/scripts/kafka.sh" stop "$BROKER_DIR" >/dev/null 2>&1 || true
    rm -rf "$BROKER_DIR"
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
if ((KEYS > 0)) && has_client java; then
  say "--keys: the Java ProducerPerformance tool sends no keys; running without java"
  drop_client java
fi

say "building ($BENCH_PROFILE)"
cargo build --profile "$BENCH_PROFILE" --quiet -p kafkit-benches --bin kafkit-bench-tool
TOOL="$ROOT/target/$BENCH_TARGET/kafkit-bench-tool"
KAFKIT_NOTE=""
if [[ -n "$KAFKIT_BIN" ]]; then
  [[ -x "$KAFKIT_BIN" ]] || die "--kafkit-bin $KAFKIT_BIN: not an executable"
  KAFKIT_NOTE="kafkit-produce from --kafkit-bin $KAFKIT_BIN"
elif has_client kafkit; then
  KAFKIT_BIN="$ROOT/target/$BENCH_TARGET/kafkit-produce"
  if ! cargo build --profile "$BENCH_PROFILE" --quiet -p kafkit-benches --features producer --bin kafkit-produce \
    2>"$WORK/kafkit-build.log"; then
    KAFKIT_NOTE="kafkit-produce did not build (is kafkit::producer::Producer merged?); see $WORK/kafkit-build.log"
    say "$KAFKIT_NOTE — running without kafkit"
    drop_client kafkit
  fi
fi
if has_client rdkafka; then
  (cd "$ROOT/benches/peers" && cargo build --release --quiet) ||
    die "benches/peers (rust-rdkafka) did not build"
fi
for c in "${CLIENT_LIST[@]}"; do
  case "$c" in kafkit | rdkafka | java) ;; *) die "unknown client $c" ;; esac
done
((${#CLIENT_LIST[@]} > 0)) || die "no client left to run"

# -------------------------------------------------------------------------------------- payload
# At most 200,000 distinct payloads and ~20 MB of them (Java's tool holds the file as strings).
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

# ---------------------------------------------------------------------------------------- runs
JAVA_PROPS=(acks=all enable.idempotence=true linger.ms=5 batch.size=16384
  buffer.memory=33554432 max.in.flight.requests.per.connection=5)

# run_java CODEC TOPIC NUM WARM → prints "steady_records steady_rps elapsed user sys"
run_java() {
  local codec="$1" topic="$2" num="$3" warm="$4" log="$WORK/java.log" tfile="$WORK/java.time"
  local wargs=()
  ((warm > 0)) && wargs=(--warmup-records "$warm")
  timeout "$RUN_TIMEOUT" "${CLIENT_PIN[@]}" /usr/bin/time -f '%e %U %S' -o "$tfile" \
    bash "$ROOT/scripts/kafka.sh" java org.apache.kafka.tools.ProducerPerformance \
    --bootstrap-server "$BOOTSTRAP" --topic "$topic" --num-records "$num" "${wargs[@]}" \
    --throughput -1 --payload-file "$PAYLOAD" --reporting-interval 1000000 \
    --command-property "${JAVA_PROPS[@]}" "compression.type=$codec" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; return 1; }
  local line
  if ((warm > 0)); then
    line="$(grep 'steady state records sent' "$log" | tail -1)"
  else
    line="$(grep -E '^[0-9]+ records sent' "$log" | tail -1)"
  fi
  [[ -n "$line" ]] || { tail -20 "$log" >&2; return 1; }
  local n rps
  n="$(awk '{print $1}' <<<"$line")"
  rps="$(sed -E 's/.*sent, ([0-9.]+) records\/sec.*/\1/' <<<"$line")"
  echo "$n $rps $(tail -1 "$tfile")"
}

# Java's CPU is the whole process (/usr/bin/time): JVM start-up and class loading included.
# A baseline run (the warm-up records only) per codec is subtracted for the "net" figure.
declare -A JAVA_BASE
if has_client java; then
  for codec in "${CODEC_LIST[@]}"; do
    topic="bench-base-$codec-$STAMP"
    timeout 60 "$TOOL" create --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS"
    base_out="$(run_java "$codec" "$topic" "$((WARMUP > 0 ? WARMUP : 1000))" 0)" ||
      die "java baseline run failed"
    read -r _ _ _ bu bs <<<"$base_out"
    JAVA_BASE[$codec]="$(awk -v u="$bu" -v s="$bs" 'BEGIN{printf "%.3f", u+s}')"
    say "java start-up baseline ($codec): ${JAVA_BASE[$codec]} CPU-s"
    timeout 60 "$TOOL" delete --bootstrap "$BOOTSTRAP" --topic "$topic" || true
  done
fi

run_one() { # CLIENT CODEC ROUND
  local client="$1" codec="$2" round="$3" line=""
  local topic="bench-$codec-r$round-$client-$STAMP"
  timeout 60 "$TOOL" create --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" ||
    die "cannot create topic $topic"
  sleep "$PAUSE"
  case "$client" in
    kafkit | rdkafka)
      local bin="$KAFKIT_BIN"
      [[ "$client" == rdkafka ]] && bin="$ROOT/benches/peers/target/release/rdkafka-produce"
      line="$(timeout "$RUN_TIMEOUT" "${CLIENT_PIN[@]}" "$bin" --bootstrap "$BOOTSTRAP" \
        --topic "$topic" --payload-file "$PAYLOAD" --records "$RECORDS" \
        --compression "$codec" --warmup "$WARMUP" --keys "$KEYS" 2>"$WORK/$client.err" | tail -1)" || true
      if [[ "$line" != \{* ]]; then
        say "$client run failed (round $round, $codec):"
        tail -20 "$WORK/$client.err" >&2
        line=""
      fi
      ;;
    java)
      local out n rps el u s
      if out="$(run_java "$codec" "$topic" "$((RECORDS + WARMUP))" "$WARMUP")"; then
        read -r n rps el u s <<<"$out"
        line="$(awk -v n="$n" -v rps="$rps" -v el="$el" -v u="$u" -v s="$s" -v size="$SIZE" \
          -v base="${JAVA_BASE[$codec]}" -v topic="$topic" -v codec="$codec" -v recs="$RECORDS" 'BEGIN{
          wall = n / rps
          printf "{\"client\":\"java\",\"topic\":\"%s\",\"compression\":\"%s\",\"size\":%d,", topic, codec, size
          printf "\"records\":%d,\"acked\":%d,\"failed\":%d,\"bytes\":%d,\"wall_s\":%.6f,", recs, n, recs - n, n * size, wall
          printf "\"records_per_s\":%.1f,\"mb_per_s\":%.3f,", rps, rps * size / 1e6
          printf "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"process_elapsed_s\":%.3f,", u, s, el
          printf "\"cpu_s_per_million_raw\":%.6f,\"startup_cpu_s\":%.3f,", (u + s) * 1e6 / n, base
          printf "\"cpu_s_per_million\":%.6f}", (u + s - base) * 1e6 / n }')"
      else
        say "java run failed (round $round, $codec)"
      fi
      ;;
  esac
  if [[ -n "$line" ]]; then
    # The broker's word: records in the topic (warm-up included) must cover what was acked.
    local held
    held="$(timeout 60 "$TOOL" count --bootstrap "$BOOTSTRAP" --topic "$topic" || echo -1)"
    # Bytes the broker stored (the log segments): shows each client's batching/compression.
    local log_bytes=-1
    if [[ -n "$BROKER_DIR" ]]; then
      log_bytes="$(cat "$BROKER_DIR"/node-*/data/"$topic"-*/*.log 2>/dev/null | wc -c)"
    fi
    line="${line%\}},\"round\":$round,\"broker_records\":$held,\"broker_log_bytes\":$log_bytes,\"warmup\":$WARMUP}"
    echo "$line" >>"$RESULTS"
    say "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%-7s %-5s round %s: %9.0f rec/s %7.2f MB/s %7.3f CPU-s/M acked %d broker %d" % (r["client"], r["compression"], r["round"], r["records_per_s"], r["mb_per_s"], r["cpu_s_per_million"], r["acked"], r["broker_records"]))' "$line")"
  fi
  timeout 60 "$TOOL" delete --bootstrap "$BOOTSTRAP" --topic "$topic" >/dev/null 2>&1 || true
}

# A warm broker for everyone: unrecorded passes (every client but java once, first codec) until the
# throughput levels out, so that neither the broker's JIT warm-up nor its first log segments
# land on the recorded rounds (on a fresh broker both clients got faster every round for 4-5
# rounds: benches/README.md, "one completion per written batch").
WARMUP_RATES=""
if ((BROKER_WARMUP)); then
  SAVED_RESULTS="$RESULTS" SAVED_RECORDS="$RECORDS"
  RESULTS="$WORK/warmup.jsonl" RECORDS=$((RECORDS < 1000000 ? RECORDS : 1000000))
  warm_broker "$WARMUP_PASSES" "$RESULTS" "${CODEC_LIST[0]}"
  RESULTS="$SAVED_RESULTS" RECORDS="$SAVED_RECORDS"
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
    "keys": $KEYS, "brokers": $BROKERS,
    "warmup": $WARMUP, "broker_warmup_rates": [${WARMUP_RATES:-}], "pinned": bool($PIN), "payload": json.loads('''$PAYLOAD_INFO'''),
    "clients": "${CLIENT_LIST[*]}".split(), "kafkit_note": "$KAFKIT_NOTE",
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip(),
    "nproc": $(nproc), "stamp": "$STAMP", "note": sys.argv[3],
}
json.dump({"meta": meta, "runs": runs}, open(sys.argv[2], "w"), indent=2)
PY
python3 "$ROOT/benches/producer_summary.py" "$OUT"
