#!/usr/bin/env bash
# kafka-selftest.sh — exercise scripts/kafka.sh end to end and print timings:
#   1. single node: start -> TopicCommand --create -> ConsoleProducer -> ConsoleConsumer -> stop
#   2. three nodes: start --brokers 3 -> RF 3 topic -> kill-node 2 -> produce/consume with
#      acks=all (min.insync.replicas=2 still met) -> restart-node 2 -> freeze/thaw 3 -> stop
#   3. --watch-pid: the cluster stops by itself when the watched process exits
# Prints "N passed, 0 failed" at the end; exits non-zero on the first failure.
set -euo pipefail
K="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka.sh"
passed=0
STATES=()
cleanup() { for s in "${STATES[@]+"${STATES[@]}"}"; do "$K" stop "$s" >/dev/null 2>&1 || true; rm -rf "$s"; done; }
trap cleanup EXIT
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { echo "FAIL - $*" >&2; echo "$passed passed, 1 failed"; exit 1; }
ms() { date +%s%3N; }

roundtrip() { # bootstrap topic n extra-producer-args...
  local bs="$1" topic="$2" n="$3"
  shift 3
  seq 1 "$n" | sed 's/^/k\t/' | "$K" java org.apache.kafka.tools.ConsoleProducer \
    --bootstrap-server "$bs" --topic "$topic" --reader-property parse.key=true "$@" 2>/dev/null
  local got
  got="$("$K" java org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bs" \
    --topic "$topic" --from-beginning --max-messages "$n" --timeout-ms 30000 2>/dev/null | wc -l)"
  [[ "$got" -eq "$n" ]] || fail "$topic: consumed $got of $n"
}

t=$(ms); "$K" fetch; ok "fetch ($(($(ms) - t)) ms)"

# 1. single node
S1="$(mktemp -d)"; STATES+=("$S1")
t=$(ms); out="$("$K" start --dir "$S1")"; t1=$(($(ms) - t))
[[ "$out" == "KAFKA_BOOTSTRAP_SERVERS=$(<"$S1/bootstrap")"$'\n'"KAFKA_STATE_DIR=$S1" ]] || fail "start printed: $out"
ok "single-node start ($t1 ms): $out"
bs="$(<"$S1/bootstrap")"
"$K" java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --topic selftest \
  --partitions 1 --replication-factor 1 >/dev/null
ok "TopicCommand --create"
roundtrip "$bs" selftest 100 --compression-codec lz4
ok "ConsoleProducer/ConsoleConsumer 100 records"
t=$(ms); "$K" stop "$S1"; ok "stop ($(($(ms) - t)) ms)"
"$K" stop "$S1"; ok "stop again (idempotent)"

# 2. three nodes
S3="$(mktemp -d)"; STATES+=("$S3")
t=$(ms); out="$("$K" start --brokers 3 --dir "$S3")"; t3=$(($(ms) - t))
ok "3-node start ($t3 ms): $out"
bs="$(<"$S3/bootstrap")"
"$K" java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --topic r3 \
  --partitions 3 --replication-factor 3 >/dev/null
ok "RF 3 topic"
t=$(ms); "$K" kill-node "$S3" 2; ok "kill-node 2 ($(($(ms) - t)) ms)"
roundtrip "$bs" r3 50 --command-property acks=all
ok "produce acks=all / consume with node 2 down"
t=$(ms); "$K" restart-node "$S3" 2; ok "restart-node 2 ($(($(ms) - t)) ms)"
# SIGSTOP/SIGCONT reach every thread of the JVM asynchronously: poll the state with a deadline.
stopped() { grep -q 'State:.*T' "/proc/$(<"$S3/node-3/pid")/status"; }
settles() { # settles WANT: waits up to 10 s for stopped() to answer WANT (0 stopped, 1 running)
  local i
  for ((i = 0; i < 100; i++)); do
    if stopped; then (($1 == 0)) && return 0; else (($1 == 1)) && return 0; fi
    sleep 0.1
  done
  return 1
}
"$K" freeze "$S3" 3
settles 0 || fail "freeze"
"$K" thaw "$S3" 3
settles 1 || fail "thaw"
ok "freeze/thaw node 3"
t=$(ms); "$K" stop "$S3"; ok "3-node stop ($(($(ms) - t)) ms)"

# 3. watchdog
SW="$(mktemp -d)"; STATES+=("$SW")
sleep 600 &
sp=$!
"$K" start --dir "$SW" --watch-pid "$sp" >/dev/null
pid="$(<"$SW/node-1/pid")"
kill "$sp"
for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$pid" 2>/dev/null && fail "watchdog did not stop the broker"
ok "--watch-pid stops the broker when the watched process exits"

echo "$passed passed, 0 failed"
