#!/usr/bin/env bash
# Proves that kafkit's library crates build with no C toolchain (see DEPENDENCIES.md in shared/).
#
#   check-no-c.sh graph   the normal+build dependency graph of the library crates, for every
#                         target, names no crate that compiles or links C
#   check-no-c.sh build   the whole workspace builds with cc/gcc/clang/cmake/pkg-config/as shadowed
#                         by /bin/false (CC=CXX=AR=/bin/false), and the quickstart and the
#                         `metadata` example (TLS on, graviola) build as static
#                         x86_64-unknown-linux-musl binaries linked by rust-lld
#
# Crates that do need C (the fuzz crate, benchmark peers) live in their own workspaces outside
# the main one, so they are outside what this checks.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

forbidden='cc|cmake|pkg-config|bindgen|vcpkg|openssl-src|openssl-sys|ring|aws-lc-sys|aws-lc-fips-sys|zstd-sys|lz4-sys|libz-sys|libz-ng-sys|bzip2-sys|liblzma-sys|libfuzzer-sys|rdkafka-sys'

graph() {
  local bad tree
  # Into a variable first: a failing `cargo tree` (say, a stale lock file with --locked) must
  # fail the check, not feed an empty list to grep.
  tree=$(cargo tree --locked -e normal,build --target all \
          -p kafkit-wire -p kafkit -p kafkit-events --prefix none --format '{p}')
  [ -n "$tree" ] || { echo "cargo tree printed nothing" >&2; exit 1; }
  bad=$(echo "$tree" | awk '{print $1}' | sort -u | grep -xE "$forbidden" || true)
  if [ -n "$bad" ]; then
    echo "library crates depend on crates that build C: $bad" >&2
    exit 1
  fi
  echo "graph: no C-building crate in kafkit-wire, kafkit, kafkit-events"
}

build() {
  local shadow host host_env
  shadow=$(mktemp -d)
  for t in cc gcc c++ g++ clang clang++ cpp as ld.gold cmake pkg-config; do
    ln -s /bin/false "$shadow/$t"
  done
  host=$(rustc -vV | sed -n 's/^host: //p')
  host_env=$(echo "$host" | tr 'a-z-' 'A-Z_')
  # Build scripts and proc macros still link for the host: name a linker that is not "cc".
  # rustc drives the link through a C compiler driver by default, so give it gcc's real path
  # only as the linker; any crate that tries to *compile* C hits the shadowed tools and fails.
  local linker
  linker=${KAFKIT_HOST_LINKER:-$(readlink -f "$(command -v gcc || command -v cc)")}
  (
    export PATH="$shadow:$PATH" CC=/bin/false CXX=/bin/false AR=/bin/false
    export "CARGO_TARGET_${host_env}_LINKER=$linker"
    # Into the caller's target directory (scripts/test.sh: the one `cargo test` then reuses, so
    # CI holds one debug build, not two).
    cargo build --workspace --all-targets --locked --quiet
    echo "build: workspace built with the C toolchain shadowed"
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C linker-flavor=ld.lld -C target-feature=+crt-static"
    # The dev profile: these binaries prove the static link and run once each, so an optimised
    # build of every dependency for a second target (~25 min on 2 cores) buys nothing here.
    # TLS (graviola) and SASL in a static binary: kafkit's `metadata` example.
    cargo build --locked --quiet --target x86_64-unknown-linux-musl \
      -p kafkit-events --example quickstart -p kafkit --example metadata
  )
  rm -rf "$shadow"
  local name bin kind
  for name in quickstart metadata; do
    bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/debug/examples/$name
    kind=$(file -b "$bin" 2>/dev/null || true)
    echo "musl $name: $kind"
    case "$kind" in
      *"static-pie linked"*|*"statically linked"*) ;;
      "") # no `file` command: ldd says "not a dynamic executable" (or similar) for static binaries
          if ldd "$bin" 2>&1 | grep -q '=>'; then echo "$name is dynamically linked" >&2; exit 1; fi ;;
      *) echo "$name is not statically linked" >&2; exit 1 ;;
    esac
  done
}

case "${1:-}" in
  graph) graph ;;
  build) build ;;
  *) echo "usage: $0 graph|build" >&2; exit 2 ;;
esac
