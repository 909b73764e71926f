#!/usr/bin/env bash
# Runs already-built integration test binaries against Apache Kafka 3.9.1 (a plain broker and one
# with secured listeners, both started here and stopped on exit), so that the suites proven on
# 4.x hold on the 3.x line most production clusters still run. scripts/test.sh calls it in the
# background beside the main `cargo test`, with the binaries of the suites whose every test
# applies to 3.9 (the KIP-848 suites need `group.protocol=consumer`, which a 3.9 broker does not
# enable by default; transactions and group_leave start their own 3.9.1 brokers).
#
#   scripts/test-kafka39.sh BINARY...
#
# Exits non-zero when a broker does not start or any binary fails; prints each binary's summary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ $# -ge 1 ] || { echo "usage: scripts/test-kafka39.sh BINARY..." >&2; exit 2; }

export KAFKIT_KAFKA_VERSION=3.9.1
plain_dir=""
secure_dir=""
stop_brokers() {
  if [ -n "$plain_dir" ]; then bash scripts/kafka.sh stop "$plain_dir" >/dev/null 2>&1 || true; fi
  if [ -n "$secure_dir" ]; then bash scripts/kafka.sh stop "$secure_dir" >/dev/null 2>&1 || true; fi
}
trap stop_brokers EXIT
# A signal (scripts/test.sh stopping early) still stops the brokers; the watchdog (--watch-pid)
# stops them too if this script is killed outright.
trap 'exit 143' TERM INT

out=$(bash scripts/kafka.sh start --watch-pid $$)
plain_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
KAFKA_BOOTSTRAP_SERVERS=$(echo "$out" | sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p')
[ -n "$KAFKA_BOOTSTRAP_SERVERS" ] || { echo "Kafka 3.9.1 did not start" >&2; exit 1; }
out=$(bash scripts/kafka.sh start --security --watch-pid $$)
secure_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
[ -n "$secure_dir" ] || { echo "Kafka 3.9.1 with security did not start" >&2; exit 1; }
export KAFKA_BOOTSTRAP_SERVERS KAFKIT_SECURE_STATE_DIR="$secure_dir"
echo "Kafka 3.9.1 at $KAFKA_BOOTSTRAP_SERVERS (secured: $secure_dir)"

status=0
for bin in "$@"; do
  name=$(basename "$bin")
  # cargo test runs a suite from its package's folder; so does this.
  if (cd tests && "$bin") >"$plain_dir/$name.log" 2>&1; then
    echo "kafka 3.9.1 ${name%-*}: $(grep '^test result' "$plain_dir/$name.log" | tail -n 1)"
  else
    echo "kafka 3.9.1 ${name%-*}: FAILED" >&2
    tail -n 80 "$plain_dir/$name.log" >&2
    status=1
  fi
done
exit "$status"
