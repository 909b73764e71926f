#!/usr/bin/env bash
# Planted defects: applies each known-bad patch of scripts/planted/*.patch, one at a time, to a
# scratch worktree of HEAD (a `git worktree add` in a temp dir: the caller's tree is never
# touched) and runs the fast unit/property tests its `# test:` header names. A patch whose tests
# still pass "survived": the checks missed a defect they exist to catch, and the script fails.
#
#   scripts/planted.sh [PATCH_NAME…]     (default: every patch; names without .patch)
#
# PLANTED_TIMEOUT (seconds per patch, default 600) bounds each test run; a run that times out
# counts as a survivor. Builds go to PLANTED_TARGET_DIR (default: target/planted, kept between
# runs so its dependencies build once). Not the repository's own target/: the scratch crates
# compile to the same artifact names there, and a later `cargo test` in the checkout would take
# the patched binary for fresh (its sources are older) and run it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
limit=${PLANTED_TIMEOUT:-600}
export CARGO_TARGET_DIR=${PLANTED_TARGET_DIR:-$root/target/planted}
export CARGO_INCREMENTAL=0

patches=()
if [ $# -eq 0 ]; then
  patches=("$root"/scripts/planted/*.patch)
else
  for name in "$@"; do patches+=("$root/scripts/planted/${name%.patch}.patch"); done
fi

scratch=$(mktemp -d)
cleanup() {
  git -C "$root" worktree remove --force "$scratch/tree" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
git -C "$root" worktree add --detach --quiet "$scratch/tree" HEAD
tree=$scratch/tree

survivors=()
start=$(date +%s)
for patch in "${patches[@]}"; do
  name=$(basename "$patch" .patch)
  mapfile -t tests < <(sed -n 's/^# test: //p' "$patch")
  if [ ${#tests[@]} -eq 0 ]; then
    echo "planted $name: no '# test:' line" >&2
    survivors+=("$name (no test named)")
    continue
  fi
  git -C "$tree" checkout --quiet --force HEAD -- .
  if ! git -C "$tree" apply "$patch"; then
    echo "planted $name: does not apply to HEAD any more: refresh it" >&2
    survivors+=("$name (stale patch)")
    continue
  fi
  caught=no
  t0=$(date +%s)
  for cmd in "${tests[@]}"; do
    log="$scratch/$name.log"
    # shellcheck disable=SC2086 # the header's command is split into words on purpose
    if (cd "$tree" && timeout "$limit" $cmd) >"$log" 2>&1; then
      :
    else
      rc=$?
      if [ $rc -eq 124 ]; then
        echo "planted $name: '$cmd' timed out after ${limit}s" >&2
      elif grep -q '^test result: FAILED\|panicked at' "$log"; then
        caught=yes
        failed=$(grep -m 3 -- '^---- .* stdout ----$' "$log" | sed 's/^---- \(.*\) stdout ----$/\1/' | paste -sd, -)
        echo "planted $name: caught by '$cmd' (${failed:-see log})"
        break
      else
        echo "planted $name: '$cmd' failed to build or run:" >&2
        tail -n 20 "$log" >&2
      fi
    fi
  done
  git -C "$tree" checkout --quiet --force HEAD -- .
  if [ $caught = yes ]; then
    echo "  ($(( $(date +%s) - t0 ))s)"
  else
    echo "planted $name: SURVIVED ($(( $(date +%s) - t0 ))s): add the test that should catch it" >&2
    survivors+=("$name")
  fi
done
echo "planted: ${#patches[@]} patches, ${#survivors[@]} survived, $(( $(date +%s) - start ))s"
if [ ${#survivors[@]} -gt 0 ]; then
  printf 'survived: %s\n' "${survivors[@]}" >&2
  exit 1
fi
