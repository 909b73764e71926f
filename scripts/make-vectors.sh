#!/usr/bin/env bash
# make-vectors.sh — regenerate tests/vectors/*.bin and tests/vectors/manifest.json.
#
# Starts its own single-node broker (scripts/kafka.sh, stopped on exit and watched by the
# broker's watchdog), produces the record set of scripts/vectors/make_vectors.py with the Java
# client (scripts/vectors/Vectors.java, kafka-clients from the cached Kafka jars) and with kcat
# (librdkafka), once per codec (none gzip snappy lz4 zstd), and captures the partition's log
# segment file for each. Every file is checked three ways: read back through the Java consumer
# (records equal the intended ones), parsed by our own batch-header parser (codec id in the
# attributes), and by kafka.tools.DumpLogSegments --print-data-log (codec, crc valid).
#
# Usage: scripts/make-vectors.sh [OUT_DIR]    (default tests/vectors)
# Needs: Java 17, Maven (first run only), python3, kcat (scripts/install-tools.sh installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/tests/vectors}"
KAFKA="$ROOT/scripts/kafka.sh"

"$ROOT/scripts/install-tools.sh"
"$KAFKA" fetch
STATE="$(mktemp -d "${TMPDIR:-/tmp}/kafkit-vectors-kafka.XXXXXX")"
trap '"$KAFKA" stop "$STATE" || true; rm -rf "$STATE"' EXIT
"$KAFKA" start --dir "$STATE" --watch-pid $$ >/dev/null
BOOTSTRAP="$(<"$STATE/bootstrap")"
python3 "$ROOT/scripts/vectors/make_vectors.py" \
  --kafka-sh "$KAFKA" \
  --vectors-java "$ROOT/scripts/vectors/Vectors.java" \
  --bootstrap "$BOOTSTRAP" \
  --log-dir "$STATE/node-1/data" \
  --kafka-version "${KAFKIT_KAFKA_VERSION:-4.2.0}" \
  --out "$OUT"
echo "make-vectors.sh: wrote $OUT" >&2
