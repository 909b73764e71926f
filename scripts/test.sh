#!/usr/bin/env bash
# kafkit's whole test run, the one README.md gives and .ci/run calls. On a fresh machine it
# installs what it needs (Rust components and targets, kcat, the Kafka jars), checks formatting,
# lints and docs, proves the library crates need no C toolchain (dependency graph, a build with
# the C tools shadowed, static musl builds of the quickstart and of a TLS+SASL client that then
# run), starts a real Kafka broker on 127.0.0.1 and a second one with SASL/SSL listeners, runs
# every test against them, stops them, and exits non-zero on any failure.
#
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS  use this broker instead of starting one
#   KAFKIT_SECURE_STATE_DIR  use this `kafka.sh start --security` broker instead of starting one
#   SCHEMA_REGISTRY_URL      use this schema registry instead of starting one (Apicurio)
#   KAFKIT_SKIP_NOC=1        skip the no-C build checks (local iteration only; CI never sets it)
#   KAFKIT_FUZZ_SECONDS=N    seconds per fuzz target in the smoke run (default 10; 0 skips)
#   KAFKIT_PRUNE_TARGET=1    delete each build once its step is done (.ci/run sets it: CI's disk
#                            is finite; locally it would throw away the build cache)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
started=$(date +%s)
# Each step line also shows the disk's free space: a full disk is CI's likeliest silent killer.
step() {
  printf '\n==> [%4ss, %s free] %s\n' "$(( $(date +%s) - started ))" \
    "$(df -h . | awk 'NR == 2 { print $4 }')" "$*"
}

host=$(rustc -vV | sed -n 's/^host: //p')
host_env=$(echo "$host" | tr 'a-z-' 'A-Z_')
# One host linker for every cargo call below, the same one the no-C build names (it cannot say
# "cc", which it shadows): the shadowed build then *is* the debug build the tests reuse.
KAFKIT_HOST_LINKER=$(readlink -f "$(command -v gcc || command -v cc)")
export KAFKIT_HOST_LINKER "CARGO_TARGET_${host_env}_LINKER=$KAFKIT_HOST_LINKER"
prune() { if [ "${KAFKIT_PRUNE_TARGET:-0}" = 1 ]; then rm -rf "$@"; fi; }

step "toolchain: rustfmt, clippy, musl target"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add x86_64-unknown-linux-musl >/dev/null

step "tools: kcat; Kafka jars"
bash scripts/install-tools.sh
bash scripts/kafka.sh fetch
KAFKIT_KAFKA_VERSION=3.9.1 bash scripts/kafka.sh fetch   # group_leave: KIP-848 refused by a 3.9 broker; transactions: the v1 path
bash scripts/registry.sh fetch
bash scripts/python-peers.sh fetch >/dev/null

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo clippy of the library crates alone (kafkit without its unstable-internals feature)"
cargo clippy -p kafkit-wire -p kafkit -p kafkit-events --lib --locked -- -D warnings

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "public API listings (api/*.txt from nightly rustdoc JSON; update: scripts/public-api.sh --update)"
bash scripts/public-api.sh

step "semver gate (api/*.txt against the newest release tag; breaks only announced, in api/BREAKING.md)"
python3 scripts/semver_gate.py --self-test
python3 scripts/semver_gate.py

step "cargo package of the library crates (publish dry run; each tarball built on its own)"
# Cargo verifies kafkit against kafkit-wire's tarball through a local overlay registry that it
# extracts under $CARGO_HOME/registry/src/-<hash of this checkout's path>/, and it reuses an
# extraction already there (same name and version) without comparing contents; it also reuses
# a build of that "registry" kafkit-wire left in the target directory by an earlier run (a
# registry crate's version is its fingerprint). Either way a machine that packaged an older
# commit from the same path verifies kafkit against the old kafkit-wire and fails (CI did,
# after kafkit-wire gained append_sized). So: no old extractions of our crates (the overlay
# directories are the ones without a registry name), and a target directory of its own.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/kafkit-* target/package-verify
# The verify builds need no debug info (they only prove the tarballs compile; the tarball's
# manifest carries none of the workspace's profiles, so the setting comes from here).
CARGO_PROFILE_DEV_DEBUG=false \
  cargo package -p kafkit-wire -p kafkit -p kafkit-events --locked --target-dir target/package-verify

step "no C: dependency graph of the library crates"
bash scripts/check-no-c.sh graph

if [ "${KAFKIT_SKIP_NOC:-0}" != 1 ]; then
  step "no C: build with the C toolchain shadowed, and a static musl quickstart"
  bash scripts/check-no-c.sh build
fi

broker_dir=""
secure_dir=""
registry_dir=""
pid39=""
cleanup() {
  if [ -n "$pid39" ]; then kill "$pid39" 2>/dev/null || true; wait "$pid39" 2>/dev/null || true; fi
  if [ -n "$registry_dir" ]; then bash scripts/registry.sh stop "$registry_dir" || true; fi
  if [ -n "$broker_dir" ]; then bash scripts/kafka.sh stop "$broker_dir" || true; fi
  if [ -n "$secure_dir" ]; then bash scripts/kafka.sh stop "$secure_dir" || true; fi
}
trap cleanup EXIT

# When a step fails: is each broker this run started still alive, and what did it log last? A
# broker that died mid-run fails every later test with "connection refused", and CI keeps only
# the end of the output, so the cause has to be printed here, next to the failure.
diagnose() {
  echo "--- diagnosis after a failure"
  df -h . "${TMPDIR:-/tmp}" | sed 's/^/  /'
  free -m | sed 's/^/  /'
  local dir nd pid
  for dir in "$broker_dir" "${KAFKIT_SECURE_STATE_DIR:-$secure_dir}"; do
    [ -n "$dir" ] && [ -d "$dir" ] || continue
    for nd in "$dir"/node-*; do
      pid=$(cat "$nd/pid" 2>/dev/null || true)
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "broker $nd (pid $pid): running"
      else
        echo "broker $nd (pid ${pid:-?}): NOT running; what it logged last:"
        grep -E 'FATAL|OutOfMemory|[Hh]alt|Shutdown broker|[Ss]hutting down|[Ee]xiting|log ?dir|No space|Terminating' \
          "$nd/server.log" 2>/dev/null | tail -n 12 | cut -c1-300 | sed 's/^/  /'
        echo "  last lines:"
        tail -n 8 "$nd/server.log" 2>/dev/null | cut -c1-300 | sed 's/^/  /'
        ls "$nd"/hs_err_pid*.log 2>/dev/null | sed 's/^/  JVM crash report: /'
      fi
    done
  done
}

step "scripts/kafka.sh self-test (1 node and 3 nodes, node faults, watchdog)"
bash scripts/kafka-selftest.sh

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  step "start a local Kafka broker"
  out=$(bash scripts/kafka.sh start)
  echo "$out"
  KAFKA_BOOTSTRAP_SERVERS=$(echo "$out" | sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p')
  broker_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
  [ -n "$KAFKA_BOOTSTRAP_SERVERS" ] || { echo "broker did not start" >&2; exit 1; }
  export KAFKA_BOOTSTRAP_SERVERS
fi

if [ -z "${SCHEMA_REGISTRY_URL:-}" ]; then
  step "start a local schema registry (Apicurio, in-memory)"
  out=$(bash scripts/registry.sh start)
  echo "$out"
  SCHEMA_REGISTRY_URL=$(echo "$out" | sed -n 's/^SCHEMA_REGISTRY_URL=//p')
  registry_dir=$(echo "$out" | sed -n 's/^REGISTRY_STATE_DIR=//p')
  [ -n "$SCHEMA_REGISTRY_URL" ] || { echo "registry did not start" >&2; exit 1; }
  export SCHEMA_REGISTRY_URL
fi

if [ "${KAFKIT_SKIP_NOC:-0}" != 1 ]; then
  step "run the static musl quickstart against the broker and the registry (Avro through it)"
  target/x86_64-unknown-linux-musl/debug/examples/quickstart
fi

if [ -z "${KAFKIT_SECURE_STATE_DIR:-}" ]; then
  step "start a broker with SASL_PLAINTEXT, SASL_SSL and SSL listeners (the security suite uses it)"
  out=$(bash scripts/kafka.sh start --security)
  echo "$out"
  secure_dir=$(echo "$out" | sed -n 's/^KAFKA_STATE_DIR=//p')
  [ -n "$secure_dir" ] || { echo "secured broker did not start" >&2; exit 1; }
  export KAFKIT_SECURE_STATE_DIR="$secure_dir"
fi
if [ "${KAFKIT_SKIP_NOC:-0}" != 1 ]; then
  step "run the static musl metadata example over SASL_SSL (TLS with graviola, SCRAM-SHA-512)"
  target/x86_64-unknown-linux-musl/debug/examples/metadata \
    "bootstrap.servers=$(sed -n 's/^KAFKA_SASL_SSL=//p' "$KAFKIT_SECURE_STATE_DIR/security.env")" \
    security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-512 \
    sasl.username=alice sasl.password=alice-secret \
    "ssl.ca.location=$KAFKIT_SECURE_STATE_DIR/security/ca.pem"
fi
prune target/x86_64-unknown-linux-musl target/release target/package target/package-verify target/doc target/api

step "cargo test: build every test target"
artifacts=$(mktemp)
cargo test --workspace --locked --all-targets --no-run --message-format=json-render-diagnostics \
  >"$artifacts"

# Kafka 3.9.1 beside 4.x: these suites' binaries (from the build above, so nothing is built
# twice) run against a 3.9.1 broker and a secured one in the background, while the whole
# workspace runs against the 4.x broker below.
suites39=(producer producer_faults producer_levels consumer group security acls admin events_eos)
mapfile -t bins39 < <(python3 - "$artifacts" "${suites39[@]}" <<'PY'
import json, sys
wanted = set(sys.argv[2:])
for line in open(sys.argv[1]):
    msg = json.loads(line)
    if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
            and msg["target"]["kind"] == ["test"] and msg["target"]["name"] in wanted
            and "kafkit-tests" in msg["package_id"]):
        print(msg["executable"])
PY
)
[ ${#bins39[@]} -eq ${#suites39[@]} ] ||
  { echo "expected ${#suites39[@]} suite binaries for Kafka 3.9.1, found ${#bins39[@]}" >&2; exit 1; }
log39=$(mktemp)
bash scripts/test-kafka39.sh "${bins39[@]}" >"$log39" 2>&1 &
pid39=$!

step "cargo test (workspace, against $KAFKA_BOOTSTRAP_SERVERS; Kafka 3.9.1 suites in the background)"
cargo test --workspace --locked --all-targets || { diagnose; exit 1; }
cargo test --workspace --locked --doc

step "Kafka 3.9.1: ${suites39[*]}"
status39=0
wait "$pid39" || status39=$?
pid39=""
cat "$log39"
[ "$status39" = 0 ] || { echo "suites against Kafka 3.9.1 failed (status $status39)" >&2; exit 1; }

step "kafkit-events examples against the broker and the registry (each bounded)"
# Debug builds (cargo test --all-targets built them); each must end on its own with status 0.
for example in quickstart ingestion_pipeline api_audit workflow inspection employee_bus \
               cqrs_replay "redrive -- data-ingestion.dlq"; do
  echo "--- example $example"
  # shellcheck disable=SC2086 # "redrive -- topic" splits into the example and its argument
  timeout 120 cargo run --quiet --locked -p kafkit-events --example $example ||
    { echo "example $example failed (status $?)" >&2; exit 1; }
done

step "benchmark drivers, each once (tiny, kafkit only, unoptimized: they run and their summaries parse)"
bash benches/smoke.sh "$KAFKA_BOOTSTRAP_SERVERS"

prune target/debug
if [ "${KAFKIT_FUZZ_SECONDS:-10}" != 0 ]; then
  step "fuzz smoke run (${KAFKIT_FUZZ_SECONDS:-10}s per target)"
  bash scripts/fuzz.sh "${KAFKIT_FUZZ_SECONDS:-10}"
fi

step "all checks passed"
