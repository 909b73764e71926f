#!/usr/bin/env bash
# The main job: produce typed events to Kafka and read them back.
# Uses the broker named by KAFKA_BOOTSTRAP_SERVERS; when none is named, starts a local one
# (scripts/kafka.sh: Apache Kafka from Maven Central, KRaft, 127.0.0.1) and stops it afterwards.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

state_dir=""
cleanup() { if [ -n "$state_dir" ]; then bash scripts/kafka.sh stop "$state_dir" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  echo "quickstart: no KAFKA_BOOTSTRAP_SERVERS; starting a local broker" >&2
  bash scripts/kafka.sh fetch
  out=$(bash scripts/kafka.sh start --watch-pid $$)
  KAFKA_BOOTSTRAP_SERVERS=$(echo "$out" | sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p')
  state_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
  export KAFKA_BOOTSTRAP_SERVERS
fi

cargo run --quiet --release --locked -p kafkit-events --example quickstart
