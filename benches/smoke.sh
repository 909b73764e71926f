#!/usr/bin/env bash
# smoke.sh — every benchmark driver once, tiny, kafkit only, unoptimized: that each builds,
# runs against a real broker, and prints a summary that parses (issue #15 item 7). No figure
# is checked or worth reading. CI runs it (scripts/test.sh) against its local broker.
#
# Usage: bash benches/smoke.sh BOOTSTRAP
# Exit status: non-zero as soon as a driver fails (its name is printed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
B="${1:?usage: bash benches/smoke.sh BOOTSTRAP}"
export KAFKIT_BENCH_PROFILE=dev KAFKIT_BENCH_RUN_TIMEOUT=300
OUT="$(mktemp -d /tmp/kafkit-bench-smoke.XXXXXX)"
trap 'rm -rf "$OUT"' EXIT

run() { # NAME COMMAND...
  local name="$1" t0=$SECONDS
  shift
  if ! timeout 900 "$@" >"$OUT/$name.log" 2>&1; then
    printf 'bench smoke: %s FAILED; its last lines:\n' "$name" >&2
    tail -30 "$OUT/$name.log" >&2
    exit 1
  fi
  printf 'bench smoke: %s ok (%d s); its last lines:\n' "$name" $((SECONDS - t0))
  tail -4 "$OUT/$name.log" | sed 's/^/    /'
}

run producer bash benches/run-producer.sh --bootstrap "$B" --clients kafkit --codecs none \
  --records 20000 --rounds 1 --warmup-passes 2 --pause 0 --out "$OUT/producer.json"
run consumer bash benches/run-consumer.sh --bootstrap "$B" --clients kafkit --codecs none \
  --records 20000 --rounds 1 --warmup-passes 2 --pause 0 --out "$OUT/consumer.json"
run latency bash benches/run-latency.sh --bootstrap "$B" --clients kafkit --rates 1000 \
  --lingers 0 --seconds 2 --warmup 1 --rounds 1 --out "$OUT/latency.json"
run soak bash benches/run-soak.sh --bootstrap "$B" --minutes 1 --rate 500 --churn 20 --sample 5 \
  --partitions 3 --out "$OUT/soak.jsonl"
run commit bash benches/run-commit.sh --bootstrap "$B" --commits 20 --records 5000 --rounds 1 \
  --protocols classic --latency-clients kafkit --throughput-clients kafkit --pause 0 \
  --out "$OUT/commit.json"
run transactions bash benches/run-transactions.sh --bootstrap "$B" --clients kafkit \
  --txn-sizes 100 --records 2000 --min-txns 5 --rounds 1 --pause 0 --out "$OUT/txn.json"
run events bash benches/run-events.sh --bootstrap "$B" --records 5000 --rounds 1
run events-consume bash benches/run-events-consume.sh --bootstrap "$B" --records 5000 --rounds 1 \
  --rate 1000 --seconds 2
run scale bash benches/run-scale.sh --bootstrap "$B" --clients kafkit --sizes 100,1000 \
  --partitions 3,6 --mb 1 --rounds 1 --out "$OUT/scale"
run rebalance bash benches/run-rebalance.sh --bootstrap "$B" --clients kafkit --members 1,2 \
  --partitions 6 --protocols classic,consumer --rounds 1 --pause 0 --out "$OUT/rebalance.jsonl"
# The summaries draw their curves: the pictures must be there.
for picture in latency.svg soak.svg scale/scale.svg rebalance.svg; do
  [[ -s "$OUT/$picture" ]] || { echo "bench smoke: no picture $picture" >&2; exit 1; }
done
echo "bench smoke: pictures drawn (latency, soak, scale, rebalance)"
