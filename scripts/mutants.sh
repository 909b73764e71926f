#!/usr/bin/env bash
# Mutation testing of the client's sans-IO decisions (issue 16) with cargo-mutants: each mutant
# (an operator flipped, a body replaced by a default, a condition negated…) is built and the
# kafkit unit tests — state machine tests plus the deterministic simulation (`sim::`) — must
# fail on it. Integration suites (a real broker) are not run per mutant: too slow here.
#
#   scripts/mutants.sh [SCOPE] [cargo-mutants options…]
#
# SCOPE: all (default: state/producer, state/consumer, state/group/commit.rs), commit,
# consumer or producer. Options go to cargo-mutants, e.g. `--shard 3/32` (shards are
# round-robin here, so each is a uniform sample of the scope; `--sharding slice` for
# consecutive ranges), `-f FILE` (only that file: the scope's own file list is then left out,
# and SCOPE only names the output directory), `--in-place` (mutate this checkout: faster, but it must not be used
# while the run lasts), `--list`. Results land in target/mutants-<scope>/mutants.out:
# caught.txt, missed.txt (mutants no test noticed), timeout.txt, unviable.txt. A missed mutant is
# either killed by a new test or listed with its reason in docs/mutants.md.
#
# Proptest failure seeds that the mutants leave under crates/client/proptest-regressions/
# (new, untracked files; an `--in-place` run writes them into this checkout) are removed at
# the end: they record mutants' failures, not the code's.
#
# The `mutants` profile (Cargo.toml) is the test profile without debug info; incremental builds
# keep a rebuild per mutant at a few seconds. Installs cargo-mutants when missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scope=${1:-all}
case "$scope" in
  all | commit | consumer | producer) shift || true ;;
  -*) scope=all ;;
  *) echo "usage: scripts/mutants.sh [all|commit|consumer|producer] [cargo-mutants options…]" >&2; exit 2 ;;
esac
files=()
case "$scope" in
  all) files=(-f 'crates/client/src/state/producer/**' -f 'crates/client/src/state/consumer/**'
              -f crates/client/src/state/group/commit.rs) ;;
  commit) files=(-f crates/client/src/state/group/commit.rs) ;;
  consumer) files=(-f 'crates/client/src/state/consumer/**') ;;
  producer) files=(-f 'crates/client/src/state/producer/**') ;;
esac
command -v cargo-mutants >/dev/null 2>&1 || cargo install cargo-mutants --locked
export CARGO_INCREMENTAL=1
# cargo-mutants (27) refuses `--sharding` without `--shard`: pass it only with a shard.
# A `-f`/`--file` of the caller's narrows the run: the scope's list would widen it again.
sharding=()
for arg in "$@"; do
  case "$arg" in
    --shard | --shard=*) sharding=(--sharding round-robin) ;;
    -f | --file | --file=*) files=() ;;
  esac
done
seeds=crates/client/proptest-regressions
untracked_seeds() { git ls-files --others --exclude-standard -- "$seeds" 2>/dev/null | sort; }
seeds_before=$(untracked_seeds)
# cargo-mutants creates the output directory but not its parent (no target/ on a fresh clone).
mkdir -p "target/mutants-$scope"
status=0
cargo mutants -p kafkit "${files[@]}" --profile mutants --cargo-test-arg=--lib \
  --minimum-test-timeout 60 "${sharding[@]}" -o "target/mutants-$scope" "$@" || status=$?
comm -13 <(printf '%s\n' "$seeds_before") <(untracked_seeds) | while read -r f; do
  [ -n "$f" ] && rm -f -- "$f"
done
out="target/mutants-$scope/mutants.out"
if [ -d "$out" ]; then
  for kind in caught missed timeout unviable; do
    printf '%-9s %5s\n' "$kind" "$(wc -l <"$out/$kind.txt" 2>/dev/null || echo 0)"
  done
fi
# cargo-mutants exits 2 when a mutant was missed, 3 on a timeout: the lists above say which.
exit $status
