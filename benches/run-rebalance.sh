#!/usr/bin/env bash
# run-rebalance.sh — consumer-group rebalance time (issue #15 item 4): join, scale-up and
# scale-down times as members and partitions grow, group.protocol classic and consumer
# (KIP-848), kafkit vs rust-rdkafka (librdkafka 2.12) in the same run, against the same broker.
# What a run does and what "settled" means: benches/src/rebalance_common.rs; see
# benches/README.md ("Rebalance time").
#
# Usage: bash benches/run-rebalance.sh [options]
#   --members LIST     member counts, at the first partition count (default 1,2,5,10)
#   --partitions LIST  partition counts, at --at-members members (default 60,300,1000)
#   --at-members M     members of the partition-count points (default 5)
#   --protocols LIST   group.protocol values (default classic,consumer)
#   --rounds R         interleaved rounds (default 3)
#   --clients LIST     default kafkit,rdkafka
#   --timeout S        deadline of each phase of a run, seconds (default 120)
#   --bootstrap B      use a running broker instead of starting one
#   --pause S          seconds between runs (default 1)
#   --quick            smoke preset: members 1,5, partitions 60,300, 1 round
#   --out FILE         results, one JSON line per run after a meta line (default
#                      target/bench-results/rebalance-<UTC time>.jsonl)
#   --summarize FILE   print the summary of an earlier results file, run nothing
#   --note TEXT        free text stored in the results' meta line
#
# The points: every member count at the first partition count, every other partition count at
# --at-members members. One topic per partition count (created at the start, deleted at the
# end); every run uses a fresh group. One unrecorded warm-up run first (a fresh broker creates
# __consumer_offsets at the first group's FindCoordinator). Each round runs every point ×
# protocol × client once, the clients' order rotating per round. Prints medians and
# kafkit/rdkafka ratios (benches/rebalance_summary.py) and draws FILE's .svg next to it.
# Stops the broker it started.
#
# Environment: KAFKIT_BENCH_RUN_TIMEOUT (seconds per client run, default 600).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/profile.sh
source "$ROOT/benches/profile.sh"

MEMBERS=1,2,5,10 PARTS=60,300,1000 AT_MEMBERS=5 PROTOCOLS=classic,consumer ROUNDS=3
CLIENTS=kafkit,rdkafka PHASE_TIMEOUT=120 BOOTSTRAP="" PAUSE=1 OUT="" NOTE=""
RUN_TIMEOUT="${KAFKIT_BENCH_RUN_TIMEOUT:-600}"

say() { printf 'run-rebalance: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case "$1" in
    --members) MEMBERS="${2:?}"; shift 2 ;;
    --partitions) PARTS="${2:?}"; shift 2 ;;
    --at-members) AT_MEMBERS="${2:?}"; shift 2 ;;
    --protocols) PROTOCOLS="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --timeout) PHASE_TIMEOUT="${2:?}"; shift 2 ;;
    --bootstrap) BOOTSTRAP="${2:?}"; shift 2 ;;
    --pause) PAUSE="${2:?}"; shift 2 ;;
    --quick) MEMBERS=1,5 PARTS=60,300 ROUNDS=1; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --note) NOTE="${2:?}"; shift 2 ;;
    --summarize) exec python3 "$ROOT/benches/rebalance_summary.py" "${2:?}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in AT_MEMBERS ROUNDS PHASE_TIMEOUT PAUSE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "${v,,} must be a whole number"
done
((ROUNDS > 0 && AT_MEMBERS > 0 && PHASE_TIMEOUT > 0)) || die "need positive rounds, members, timeout"
IFS=, read -r -a MEMBER_LIST <<<"$MEMBERS"
IFS=, read -r -a PART_LIST <<<"$PARTS"
IFS=, read -r -a PROTOCOL_LIST <<<"$PROTOCOLS"
IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"
for m in "${MEMBER_LIST[@]}"; do [[ "$m" =~ ^[1-9][0-9]*$ ]] || die "members $m"; done
for p in "${PART_LIST[@]}"; do [[ "$p" =~ ^[1-9][0-9]*$ ]] || die "partitions $p"; done
for p in "${PROTOCOL_LIST[@]}"; do
  case "$p" in classic | consumer) ;; *) die "unknown protocol $p" ;; esac
done
for c in "${CLIENT_LIST[@]}"; do
  case "$c" in kafkit | rdkafka) ;; *) die "unknown client $c" ;; esac
done
uses() { local c; for c in "${CLIENT_LIST[@]}"; do [[ "$c" == "$1" ]] && return 0; done; return 1; }

# The points (members:partitions): every member count at the first partition count, every
# other partition count at AT_MEMBERS. Each member of the M+1 must be able to own a partition.
POINTS=()
for m in "${MEMBER_LIST[@]}"; do POINTS+=("$m:${PART_LIST[0]}"); done
for p in "${PART_LIST[@]:1}"; do POINTS+=("$AT_MEMBERS:$p"); done
for point in "${POINTS[@]}"; do
  ((${point%%:*} < ${point##*:})) || die "point $point: need more partitions than members"
done

STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="${OUT:-$ROOT/target/bench-results/rebalance-$STAMP.jsonl}"
WORK="$(mktemp -d /tmp/kafkit-bench-rebalance.XXXXXX)"
RESULTS="$WORK/runs.jsonl"
: >"$RESULTS"
BROKER_DIR=""
TOPICS=()

cleanup() {
  if ((${#TOPICS[@]})) && [[ -n "$BOOTSTRAP" && -x "${TOOL:-}" ]]; then
    for t in "${TOPICS[@]}"; do
      timeout 60 "$TOOL" delete --bootstrap "$BOOTSTRAP" --topic "$t" >/dev/null 2>&1 || true
    done
  fi
  if [[ -n "$BROKER_DIR" ]]; then
    say "stopping the broker ($BROKER_DIR)"
    bash "$ROOT/scripts/kafka.sh" stop "$BROKER_DIR" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building ($BENCH_PROFILE)"
cargo build --profile "$BENCH_PROFILE" --quiet --locked -p kafkit-benches \
  --bin kafkit-bench-tool --bin kafkit-rebalance
TOOL="$ROOT/target/$BENCH_TARGET/kafkit-bench-tool"
KAFKIT_BIN="$ROOT/target/$BENCH_TARGET/kafkit-rebalance"
RDKAFKA_BIN="$ROOT/benches/peers/target/release/rdkafka-rebalance"
if uses rdkafka; then
  (cd "$ROOT/benches/peers" && cargo build --release --quiet --locked --bin rdkafka-rebalance) ||
    die "benches/peers (rust-rdkafka) did not build"
fi

if [[ -z "$BOOTSTRAP" ]]; then
  BROKER_DIR="$WORK/broker"
  say "starting a broker"
  START_OUT="$(bash "$ROOT/scripts/kafka.sh" start --dir "$BROKER_DIR" --watch-pid $$)"
  BOOTSTRAP="$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p' <<<"$START_OUT")"
  [[ -n "$BOOTSTRAP" ]] || die "no bootstrap address from kafka.sh start"
fi
say "broker: $BOOTSTRAP"

declare -A TOPIC_OF
for p in "${PART_LIST[@]}"; do
  TOPIC_OF[$p]="bench-rebalance-$STAMP-p$p"
  timeout 120 "$TOOL" create --bootstrap "$BOOTSTRAP" --topic "${TOPIC_OF[$p]}" --partitions "$p" ||
    die "cannot create topic ${TOPIC_OF[$p]}"
  TOPICS+=("${TOPIC_OF[$p]}")
done
sleep 1

bin_of() { # CLIENT
  case "$1" in
    kafkit) echo "$KAFKIT_BIN" ;;
    rdkafka) echo "$RDKAFKA_BIN" ;;
  esac
}

RUN_NO=0
run_one() { # CLIENT PROTOCOL MEMBERS PARTITIONS ROUND
  local client="$1" protocol="$2" members="$3" parts="$4" round="$5" line="" bin
  RUN_NO=$((RUN_NO + 1))
  bin="$(bin_of "$client")"
  line="$(timeout "$RUN_TIMEOUT" "$bin" --bootstrap "$BOOTSTRAP" --topic "${TOPIC_OF[$parts]}" \
    --partitions "$parts" --members "$members" --group "bench-rebalance-$STAMP-$RUN_NO" \
    --protocol "$protocol" --timeout "$PHASE_TIMEOUT" 2>"$WORK/$client.err" |
    grep '^{' | tail -1)" || true
  if [[ "$line" != \{* ]]; then
    say "$client $protocol $members members / $parts partitions failed (round $round):"
    tail -20 "$WORK/$client.err" >&2
    return 0
  fi
  if [[ -s "$WORK/$client.err" ]]; then # e.g. the untimed close after the result failed
    say "$client $protocol $members members / $parts partitions (round $round), its stderr:"
    tail -5 "$WORK/$client.err" >&2
  fi
  line="${line%\}},\"round\":$round}"
  echo "$line" >>"$RESULTS"
  say "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%-7s %-8s %2d members %4d partitions round %s: join %8.1f  scale-up %8.1f  scale-down %8.1f ms, %.2f CPU-s" % (r["client"], r["protocol"], r["members"], r["partitions"], r["round"], r["join_ms"], r["scale_up_ms"], r["scale_down_ms"], r["cpu_s"]))' "$line")"
  sleep "$PAUSE"
}

# Warm-up, not recorded: a fresh broker creates __consumer_offsets at the first group's
# FindCoordinator (seconds), which the first recorded run would otherwise pay.
say "warm-up run (not recorded)"
timeout "$RUN_TIMEOUT" "$(bin_of "${CLIENT_LIST[0]}")" --bootstrap "$BOOTSTRAP" \
  --topic "${TOPIC_OF[${PART_LIST[0]}]}" --partitions "${PART_LIST[0]}" --members 1 \
  --group "bench-rebalance-$STAMP-warmup" --protocol "${PROTOCOL_LIST[0]}" \
  --timeout "$PHASE_TIMEOUT" >/dev/null 2>"$WORK/warmup.err" ||
  { say "the warm-up run failed:"; tail -20 "$WORK/warmup.err" >&2; }
n=${#CLIENT_LIST[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  for point in "${POINTS[@]}"; do
    for protocol in "${PROTOCOL_LIST[@]}"; do
      for ((k = 0; k < n; k++)); do
        run_one "${CLIENT_LIST[$(((k + round - 1) % n))]}" "$protocol" "${point%%:*}" \
          "${point##*:}" "$round"
      done
    done
  done
done

mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$OUT" "$NOTE" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, subprocess, sys, time
meta = {"note": sys.argv[3], "cpus": int(sys.argv[4]), "loadavg_at_end": sys.argv[5],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()}
with open(sys.argv[2], "w") as out:
    out.write(json.dumps({"meta": meta}) + "\n")
    out.write(open(sys.argv[1]).read())
PY
python3 "$ROOT/benches/rebalance_summary.py" "$OUT" --svg "${OUT%.jsonl}.svg"
say "results: $OUT (picture: ${OUT%.jsonl}.svg)"
