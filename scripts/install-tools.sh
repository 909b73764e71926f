#!/usr/bin/env bash
# install-tools.sh — install the Debian packages kafkit's tests use, when missing.
#   kcat   (kcat 1.7.1 with librdkafka 2.0.2 on Debian bookworm: gzip, snappy, lz4, zstd,
#           SASL PLAIN/SCRAM, SSL) — the librdkafka interop peer (scripts/make-vectors.sh).
# Idempotent and fast when everything is present (no apt-get at all then). Needs root (or sudo)
# to install. Java 17, Maven and python3 are expected on the machine already (scripts/kafka.sh).
set -euo pipefail

# command -> Debian package
declare -A WANT=([kcat]=kcat)

missing=()
for cmd in "${!WANT[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${WANT[$cmd]}")
done
((${#missing[@]})) || exit 0

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-tools.sh: need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-tools.sh: installing ${missing[*]}" >&2
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for cmd in "${!WANT[@]}"; do
  command -v "$cmd" >/dev/null || { echo "install-tools.sh: $cmd still missing" >&2; exit 1; }
done
