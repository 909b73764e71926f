#!/usr/bin/env bash
# Checks the public API of each library crate against its checked-in listing in api/, so that
# an API change is deliberate and shows in review. The listing is made from rustdoc's JSON
# output (nightly-only: `-Z unstable-options --output-format json`) by scripts/public-api.py.
#
#   bash scripts/public-api.sh           # fails with a diff when the API differs from api/
#   bash scripts/public-api.sh --update  # rewrites api/*.txt (commit them with the change)
#
# Builds into target/api (its own directory: the nightly build never invalidates the stable one).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
update=0
[ "${1:-}" = --update ] && update=1

if ! rustup run nightly rustdoc -V >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi

failed=0
mkdir -p api target/api
deps=()
for pkg in kafkit-wire kafkit kafkit-events; do
  crate=${pkg//-/_}
  RUSTDOCFLAGS="" cargo +nightly rustdoc -p "$pkg" --lib --locked --quiet --target-dir target/api \
    -- -Z unstable-options --output-format json
  # Types of the crates before it show under their public path.
  python3 scripts/public-api.py "target/api/doc/$crate.json" "${deps[@]}" >"target/api/$pkg.txt"
  deps+=("target/api/doc/$crate.json")
  if [ "$update" = 1 ]; then
    cp "target/api/$pkg.txt" "api/$pkg.txt"
    echo "api/$pkg.txt: $(wc -l <"api/$pkg.txt") lines"
  elif ! diff -u "api/$pkg.txt" "target/api/$pkg.txt"; then
    echo "public API of $pkg differs from api/$pkg.txt (above). If the change is deliberate," >&2
    echo "run \`bash scripts/public-api.sh --update\` and commit api/$pkg.txt." >&2
    failed=1
  fi
done
exit "$failed"
