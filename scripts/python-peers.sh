#!/usr/bin/env bash
# python-peers.sh — Python peers for kafkit-events' interop suite: confluent-kafka's Confluent
# serdes (AvroSerializer, JSONSerializer, AvroDeserializer) from PyPI, in a venv in the cache.
#
# Usage:
#   scripts/python-peers.sh fetch          make the venv (idempotent) and print its python
#   scripts/python-peers.sh python         print the venv's python (making the venv if needed)
#   scripts/python-peers.sh run ARGS...    run scripts/python-peers/peer.py ARGS (see its doc)
#
# Environment:
#   KAFKIT_CACHE   cache root (default $HOME/.cache/kafkit); the venv is <cache>/python-peers-venv
#
# Notes (Dec 2026, first use): `confluent-kafka[avro,json,schemaregistry]` 2.16.1 (bundled
# librdkafka 2.16.0) installs in ~30 s; the `json` extra brings jsonschema, which
# JSONSerializer imports.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${KAFKIT_CACHE:-$HOME/.cache/kafkit}"
VENV="$CACHE_ROOT/python-peers-venv"

log() { printf 'python-peers.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ensure() {
  [[ -f "$VENV/.complete" ]] && return 0
  command -v python3 >/dev/null || die "python3 not found"
  log "installing confluent-kafka[avro,json,schemaregistry] into $VENV ..."
  local t0=$SECONDS
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed"
  "$VENV/bin/pip" install -q 'confluent-kafka[avro,json,schemaregistry]' >&2 \
    || die "pip install confluent-kafka failed"
  touch "$VENV/.complete"
  log "installed in $((SECONDS - t0))s"
}

case "${1:-}" in
  fetch|python) ensure; printf '%s\n' "$VENV/bin/python" ;;
  run) shift; ensure; exec "$VENV/bin/python" "$SCRIPT_DIR/python-peers/peer.py" "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
