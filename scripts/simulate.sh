#!/usr/bin/env bash
# Deterministic simulation, long run (issue #16): every scenario of crates/client/src/sim over
# many seeds, optimized build. CI runs a few dozen seeds per scenario inside the kafkit unit
# tests; this runs thousands.
#
#   bash scripts/simulate.sh [SEEDS] [FIRST_SEED] [FILTER]
#     SEEDS       seeds per scenario (default 2000)
#     FIRST_SEED  first seed (default 1): split a long run across machines
#     FILTER      a test-name filter inside sim:: (default: every scenario)
#
# A failure prints the seed, the invariant and the replay command; replay one seed with
#   KAFKIT_SIM_SEED=<seed> cargo test -p kafkit --lib sim:: -- <scenario>
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seeds="${1:-2000}"
first="${2:-1}"
filter="${3:-}"
cd "$root"
echo "simulation: $seeds seeds per scenario from seed $first"
start=$(date +%s)
KAFKIT_SIM_SEEDS="$seeds" KAFKIT_SIM_FIRST_SEED="$first" \
  cargo test -p kafkit --lib --release --locked "sim::${filter}" -- --test-threads "$(nproc)"
echo "simulation: done in $(( $(date +%s) - start ))s"
