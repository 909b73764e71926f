#!/usr/bin/env bash
# run-scale.sh — how cost grows with work (issue #15 item 4): run-producer.sh and
# run-consumer.sh (kafkit vs rust-rdkafka, interleaved rounds, each run with its own broker)
# over a range of record sizes at the first partition count, and over a range of partition
# counts at the first size; then scale_summary.py prints the medians and ratios per point and
# draws the curves. See benches/README.md ("Scale").
#
# Usage: bash benches/run-scale.sh [options]
#   --sizes LIST       record sizes in bytes (default 100,1000,10000,100000)
#   --partitions LIST  partition counts (default 6,100,1000)
#   --mb M             payload MB per run; records = M MB / size, within 2,000..1,000,000
#                      (default 100)
#   --rounds R         interleaved rounds per point (default 3)
#   --kinds LIST       producer,consumer (default both)
#   --clients LIST     kafkit,rdkafka (default both; ratios need both)
#   --brokers N        every point on a cluster of N brokers (default 1; partitions spread)
#   --keys K           keyed records (K distinct keys, murmur2 placement; default 0: keyless)
#   --pin              pass --pin to every run (broker on CPU 0, clients on CPU 1)
#   --bootstrap B      use a running broker for every run instead of one per run
#   --quick            10 MB per run, 2 rounds, sizes 100,10000, partitions 6,100
#   --out DIR          results directory (default target/bench-results/scale-<UTC time>)
#   --summarize DIR    summary and picture of an earlier run's directory, run nothing
#
# Writes DIR/<kind>-s<size>-p<partitions>.json per point, DIR/summary.txt and DIR/scale.svg.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SIZES=100,1000,10000,100000 PARTS=6,100,1000 MB=100 ROUNDS=3 KINDS=producer,consumer PIN=()
OUT="" CLIENTS=kafkit,rdkafka BOOT=() BROKERS=1 KEYS=0

say() { printf 'run-scale: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
summarize() {
  local dir="$1"
  shopt -s nullglob
  local files=("$dir"/producer-s*-p*.json "$dir"/consumer-s*-p*.json)
  ((${#files[@]})) || die "no results in $dir"
  python3 "$ROOT/benches/scale_summary.py" "${files[@]}" --svg "$dir/scale.svg" | tee "$dir/summary.txt"
}

while (($#)); do
  case "$1" in
    --sizes) SIZES="${2:?}"; shift 2 ;;
    --partitions) PARTS="${2:?}"; shift 2 ;;
    --mb) MB="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --kinds) KINDS="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --brokers) BROKERS="${2:?}"; shift 2 ;;
    --keys) KEYS="${2:?}"; shift 2 ;;
    --pin) PIN=(--pin); shift ;;
    --bootstrap) BOOT=(--bootstrap "${2:?}"); shift 2 ;;
    --quick) MB=10 ROUNDS=2 SIZES=100,10000 PARTS=6,100; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --summarize) summarize "${2:?}"; exit 0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$MB" =~ ^[0-9]+$ && "$ROUNDS" =~ ^[0-9]+$ ]] || die "--mb and --rounds must be numbers"
[[ "$BROKERS" =~ ^[1-9][0-9]*$ && "$KEYS" =~ ^[0-9]+$ ]] || die "--brokers and --keys must be numbers"
CLUSTER=()
((BROKERS == 1)) || CLUSTER=(--brokers "$BROKERS")
IFS=, read -r -a sizes <<<"$SIZES"
IFS=, read -r -a parts <<<"$PARTS"
IFS=, read -r -a kinds <<<"$KINDS"
OUT="${OUT:-$ROOT/target/bench-results/scale-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"

# The points: every size at the first partition count, every partition count at the first size.
points=()
for s in "${sizes[@]}"; do points+=("$s:${parts[0]}"); done
for p in "${parts[@]:1}"; do points+=("${sizes[0]}:$p"); done

for kind in "${kinds[@]}"; do
  case "$kind" in producer | consumer) ;; *) die "unknown kind $kind" ;; esac
  for point in "${points[@]}"; do
    size="${point%%:*}" part="${point##*:}"
    [[ "$size" =~ ^[0-9]+$ && "$part" =~ ^[0-9]+$ ]] || die "bad point $point"
    records=$((MB * 1000000 / size))
    ((records < 2000)) && records=2000
    ((records > 1000000)) && records=1000000
    say "$kind: $records records of $size B over $part partitions, $ROUNDS rounds"
    bash "$ROOT/benches/run-$kind.sh" --clients "$CLIENTS" --codecs none \
      --size "$size" --partitions "$part" --records "$records" --rounds "$ROUNDS" \
      --keys "$KEYS" "${PIN[@]}" "${BOOT[@]}" "${CLUSTER[@]}" --note "scale point" --out "$OUT/$kind-s$size-p$part.json" \
      >"$OUT/$kind-s$size-p$part.log" 2>&1 || die "$kind at $size B / $part partitions failed: see $OUT/$kind-s$size-p$part.log"
  done
done
summarize "$OUT"
