# Sourced by the benches/run-*.sh drivers: the cargo profile kafkit's bench binaries are built
# with. `KAFKIT_BENCH_PROFILE=dev` (CI's smoke run of each driver) builds them unoptimized on
# top of the test build's dependencies: it checks that a driver runs and its results parse,
# and its figures mean nothing. The peers in benches/peers are always built in release.
BENCH_PROFILE="${KAFKIT_BENCH_PROFILE:-release}"
case "$BENCH_PROFILE" in
  release) BENCH_TARGET=release ;;
  dev) BENCH_TARGET=debug ;;
  *) printf 'KAFKIT_BENCH_PROFILE must be release or dev, not %s\n' "$BENCH_PROFILE" >&2; exit 1 ;;
esac

# warm_broker MAX FILE CODEC — the unrecorded broker warm-up of the throughput drivers: up to
# MAX passes, each running every client of the driver's CLIENT_LIST but java (a JVM per run,
# its own warm-up) once through the driver's `run_one CLIENT CODEC 0`, which appends its result
# line to FILE; passes stop once every client's records/s is within 5 % of its own in the pass
# before (on a fresh broker both clients got faster for 4-5 rounds: benches/README.md, "one
# completion per written batch"). Leaves each pass's records/s per client in WARMUP_RATES (JSON
# objects, comma-separated).
warm_broker() {
  local max="$1" file="$2" codec="$3" pass rates previous="" c
  WARMUP_RATES=""
  for ((pass = 1; pass <= max; pass++)); do
    : >"$file"
    for c in "${CLIENT_LIST[@]}"; do
      [[ "$c" == java ]] || run_one "$c" "$codec" 0
    done
    rates="$(python3 -c 'import json,sys; print(json.dumps({r["client"]: round(r["records_per_s"]) for r in map(json.loads, filter(str.strip, open(sys.argv[1])))}))' "$file")"
    printf 'broker warm-up pass %d (not recorded): records/s %s\n' "$pass" "$rates" >&2
    WARMUP_RATES="${WARMUP_RATES:+$WARMUP_RATES,}$rates"
    if [[ -n "$previous" ]] && python3 -c '
import json, sys
now, before = json.loads(sys.argv[1]), json.loads(sys.argv[2])
level = bool(now) and now.keys() == before.keys() and all(
    before[c] > 0 and abs(now[c] - before[c]) <= 0.05 * before[c] for c in now)
sys.exit(0 if level else 1)' "$rates" "$previous"; then
      return 0
    fi
    previous="$rates"
  done
}
