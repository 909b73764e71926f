#!/usr/bin/env bash
# The main job: publish typed events (Avro through a schema registry, and JSON) to Kafka and
# handle them in a consumer group with typed handlers; one handler fails on purpose (retried,
# then dead-lettered); prints the dead letter's headers and the stats. Ends within a minute.
# Uses the broker named by KAFKA_BOOTSTRAP_SERVERS and the registry named by
# SCHEMA_REGISTRY_URL (or KAFKA_SCHEMA_REGISTRY_URL); when none is named, starts a local one
# (scripts/kafka.sh: Apache Kafka from Maven Central, KRaft, 127.0.0.1; scripts/registry.sh:
# Apicurio Registry, in-memory, Confluent-compatible API) and stops it afterwards.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

state_dir=""
registry_dir=""
cleanup() {
  if [ -n "$state_dir" ]; then bash scripts/kafka.sh stop "$state_dir" >/dev/null 2>&1 || true; fi
  if [ -n "$registry_dir" ]; then bash scripts/registry.sh stop "$registry_dir" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  echo "quickstart: no KAFKA_BOOTSTRAP_SERVERS; starting a local broker" >&2
  bash scripts/kafka.sh fetch
  out=$(bash scripts/kafka.sh start --watch-pid $$)
  KAFKA_BOOTSTRAP_SERVERS=$(echo "$out" | sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p')
  state_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
  export KAFKA_BOOTSTRAP_SERVERS
fi

if [ -z "${SCHEMA_REGISTRY_URL:-}" ] && [ -z "${KAFKA_SCHEMA_REGISTRY_URL:-}" ]; then
  echo "quickstart: no SCHEMA_REGISTRY_URL; starting a local schema registry" >&2
  bash scripts/registry.sh fetch
  out=$(bash scripts/registry.sh start --watch-pid $$)
  SCHEMA_REGISTRY_URL=$(echo "$out" | sed -n 's/^SCHEMA_REGISTRY_URL=//p')
  registry_dir=$(echo "$out" | sed -n 's/^REGISTRY_STATE_DIR=//p')
  [ -n "$SCHEMA_REGISTRY_URL" ] || { echo "quickstart: the registry did not start" >&2; exit 1; }
  export SCHEMA_REGISTRY_URL
fi

cargo run --quiet --release --locked -p kafkit-events --example quickstart
