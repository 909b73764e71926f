#!/usr/bin/env bash
# kafka.sh — a real local Apache Kafka (KRaft) for kafkit's tests, started by the project itself.
#
# Usage:
#   scripts/kafka.sh fetch
#       Resolve the Kafka jars (kafka_2.13 + kafka-tools $KAFKA_VERSION, plus a log4j2 binding)
#       with Maven into ${KAFKIT_CACHE:-$HOME/.cache/kafkit}/kafka-<version>/libs.
#       Idempotent: does nothing when that folder is complete.
#   scripts/kafka.sh start [--brokers N] [--dir DIR] [--watch-pid PID] [--security] [--racks R1,R2,...]
#       Start N (default 1) combined broker+controller KRaft nodes on free 127.0.0.1 ports,
#       wait until every node logged "Kafka Server started", then print two lines on stdout:
#         KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:p1[,127.0.0.1:p2,...]
#         KAFKA_STATE_DIR=<DIR>
#       State goes to DIR (default: a new mktemp -d); see "State dir layout" below.
#       --watch-pid PID: a detached watchdog stops the cluster when PID exits.
#       --security: each node also listens on SASL_PLAINTEXT, SASL_SSL and SSL ports (TLS with
#         a throwaway CA and broker certificate for localhost/127.0.0.1 made with keytool; SASL
#         mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (unsecured JWTs, as
#         Kafka's test validator takes them); user alice / alice-secret for PLAIN and both SCRAM
#         mechanisms (SCRAM credentials added at format time), user bob / bob-secret for both
#         SCRAM mechanisms; SCRAM-SHA-512 sessions last 5 s (connections.max.reauth.ms), for
#         re-authentication tests). The SSL listener requires a client certificate when openssl
#         is there to write the client key as PEM. ACLs are enforced (StandardAuthorizer; super
#         users: User:ANONYMOUS — the PLAINTEXT and CONTROLLER listeners — and User:admin;
#         anything without an ACL is allowed). Extra lines:
#           KAFKA_SASL_PLAINTEXT=127.0.0.1:p[,...]
#           KAFKA_SASL_SSL=127.0.0.1:p[,...]
#           KAFKA_SSL=127.0.0.1:p[,...]
#           KAFKA_CA_PEM=<DIR>/security/ca.pem
#           KAFKA_CLIENT_CERT_PEM=<DIR>/security/client.pem   (only with openssl)
#           KAFKA_CLIENT_KEY_PEM=<DIR>/security/client.key    (only with openssl)
#       --racks R1,R2,...: one rack name per node (as many as --brokers; letters, digits, '.',
#         '_', '-'): node N gets broker.rack=RN, and every node
#         replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector, so a
#         consumer whose client.rack names a rack is told to fetch from the replica in that rack
#         (KIP-392 follower fetching). Default: $KAFKIT_KAFKA_RACKS, else no racks.
#   scripts/kafka.sh stop DIR              SIGTERM all nodes, wait (deadline), then SIGKILL. Idempotent.
#   scripts/kafka.sh kill-node DIR N       kill -9 node N (a crash).
#   scripts/kafka.sh restart-node DIR N    (stop if running, then) start node N again, no re-format,
#                                          with the Kafka version the cluster started with
#                                          (DIR/version); waits until it is ready.
#   scripts/kafka.sh freeze DIR N          SIGSTOP node N.
#   scripts/kafka.sh thaw DIR N            SIGCONT node N.
#   scripts/kafka.sh java MAIN [ARGS...]   Run a class from the cached jars with our log4j config,
#                                          e.g. org.apache.kafka.tools.TopicCommand,
#                                          org.apache.kafka.tools.ConsoleProducer,
#                                          org.apache.kafka.tools.consumer.ConsoleConsumer,
#                                          org.apache.kafka.tools.ProducerPerformance,
#                                          kafka.tools.DumpLogSegments.
#   scripts/kafka.sh libs                  Print the libs folder (fetching first if needed).
#
# Environment:
#   KAFKIT_CACHE              cache root (default $HOME/.cache/kafkit)
#   KAFKIT_KAFKA_VERSION      Kafka version (default 4.2.0; log4j is pinned to match in pom.xml;
#                             3.9.1 is used by the group_leave suite)
#   KAFKIT_KAFKA_HEAP         broker heap flags (default "-Xms256m -Xmx512m")
#   KAFKIT_KAFKA_LOG_LEVEL    broker/tool root log level (default WARN)
#   KAFKIT_START_TIMEOUT      seconds to wait for readiness (default 120)
#   KAFKIT_STOP_TIMEOUT       seconds to wait after SIGTERM before SIGKILL (default 60)
#   KAFKIT_JAVA               java binary (default: java on PATH)
#   KAFKIT_KAFKA_RACKS        start's --racks when the option is not given (e.g. r1,r2,r3)
#
# State dir layout (DIR):
#   bootstrap            the bootstrap list, e.g. 127.0.0.1:40123,127.0.0.1:40125
#   env                  KAFKA_BOOTSTRAP_SERVERS=... (same line start printed)
#   brokers              number of nodes
#   cluster-id           the KRaft cluster id used to format storage
#   racks                the --racks list (only when given; restart-node keeps each node's rack,
#                        which is in its server.properties)
#   watchdog.pid         pid of the --watch-pid watchdog (if any)
#   node-N/server.properties, node-N/data (log.dirs), node-N/server.log (stdout+stderr of the JVM),
#   node-N/pid, node-N/port (PLAINTEXT), node-N/controller-port
#   with --security: security/ (ca.pem, keystores, client.pem/client.key), security.env (the
#   extra lines), node-N/sasl-plaintext-port, node-N/sasl-ssl-port, node-N/ssl-port
#
# Facts confirmed on this machine with Kafka 4.2.0 (Java 17, 2 cores):
#   * The published POMs lack the logging binding: we add log4j-slf4j-impl (SLF4J 1.7 binding)
#     and pin log4j 2.25.3 + slf4j-api 1.7.36 (scripts/kafka/pom.xml).
#   * kafka-tools 4.2.0 exists on Maven Central; TopicCommand, ConsoleProducer, ConsoleConsumer
#     (org.apache.kafka.tools.consumer.ConsoleConsumer) and DumpLogSegments (kafka.tools, in
#     kafka_2.13) run from the same class path.
#   * With a static controller.quorum.voters, `StorageTool format -t ID -c props` (no
#     --standalone) is what works.
#   * Readiness = the log line "[KafkaRaftServer nodeId=N] Kafka Server started".
#   * auto.create.topics.enable is left at the broker default (true), as Java client users
#     expect; tests that need "unknown topic" behaviour must create/check topics explicitly or
#     pass their own setting. num.partitions is the default (1).
#   * group.initial.rebalance.delay.ms=0 so classic consumer groups form at once.
#   * Timings and more notes: scripts/kafka/README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
KAFKA_VERSION="${KAFKIT_KAFKA_VERSION:-4.2.0}"
CACHE_ROOT="${KAFKIT_CACHE:-$HOME/.cache/kafkit}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J_CONF="$SCRIPT_DIR/kafka/log4j2.properties"
JAVA="${KAFKIT_JAVA:-java}"
START_TIMEOUT="${KAFKIT_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKIT_STOP_TIMEOUT:-60}"
LOG_LEVEL="${KAFKIT_KAFKA_LOG_LEVEL:-WARN}"
READY_LINE='Kafka Server started'

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

# ---------------------------------------------------------------------------------------------
# fetch

# slf4j_bindings DIR: the SLF4J binding jars in DIR, one per line.
slf4j_bindings() {
  find "$1" -maxdepth 1 \( -name 'log4j-slf4j-impl-*.jar' -o -name 'log4j-slf4j2-impl-*.jar' \
    -o -name 'slf4j-reload4j-*.jar' -o -name 'slf4j-log4j12-*.jar' -o -name 'slf4j-simple-*.jar' \
    -o -name 'logback-classic-*.jar' \) -printf '%f\n' 2>/dev/null
}

fetch() {
  if [[ -f "$KAFKA_HOME/.complete" ]]; then
    # A cache fetched before the pom pinned one binding (Kafka 3.x brought slf4j-reload4j too):
    # fetch again.
    if [[ "$(slf4j_bindings "$LIBS" | wc -l)" -eq 1 ]]; then
      return 0
    fi
    log "cached Kafka $KAFKA_VERSION jars hold $(slf4j_bindings "$LIBS" | wc -l) SLF4J bindings; fetching again"
    rm -f "$KAFKA_HOME/.complete"
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka jars)"
  mkdir -p "$KAFKA_HOME"
  local tmp
  tmp="$(mktemp -d "$KAFKA_HOME/.libs.XXXXXX")"
  log "fetching Apache Kafka $KAFKA_VERSION jars into $LIBS (Maven) ..."
  local t0=$SECONDS
  # The pom pins maven-dependency-plugin in pluginManagement; name it fully anyway.
  if ! mvn -B -q -f "$POM" \
      "-Dkafka.version=$KAFKA_VERSION" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      "-DoutputDirectory=$tmp/libs" -DincludeScope=runtime >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed"
  fi
  [[ -f "$tmp/libs/kafka_2.13-$KAFKA_VERSION.jar" && -f "$tmp/libs/kafka-tools-$KAFKA_VERSION.jar" ]] \
    || { rm -rf "$tmp"; die "fetched libs lack kafka_2.13/kafka-tools $KAFKA_VERSION"; }
  [[ "$(slf4j_bindings "$tmp/libs" | wc -l)" -eq 1 ]] \
    || { log "SLF4J bindings: $(slf4j_bindings "$tmp/libs" | tr '\n' ' ')"; rm -rf "$tmp"; \
         die "fetched libs must hold exactly one SLF4J binding (see scripts/kafka/pom.xml)"; }
  # Publish atomically (another fetch may have raced us: then keep theirs).
  if [[ -f "$KAFKA_HOME/.complete" ]]; then
    rm -rf "$tmp"
    return 0
  fi
  rm -rf "$LIBS"
  mv "$tmp/libs" "$LIBS"
  rm -rf "$tmp"
  touch "$KAFKA_HOME/.complete"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------------------
# helpers

java_cmd() {
  # $1 = heap flags; rest = main class and args.
  local heap="$1"
  shift
  # shellcheck disable=SC2086  # heap is a list of flags on purpose
  exec "$JAVA" $heap -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$LOG4J_CONF" "-Dkafkit.log.level=$LOG_LEVEL" \
    -cp "$LIBS/*" "$@"
}

run_java() {
  fetch
  java_cmd "${KAFKIT_TOOL_HEAP:--Xmx512m}" "$@"
}

# free_ports N: print N distinct free TCP ports on 127.0.0.1, one per line (the kernel picks them;
# all sockets are held open together so the N ports differ). Someone may still grab one before
# the broker binds it: start() retries with new ports when a bind fails.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
n = int(sys.argv[1])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
PY
}

node_dir() { printf '%s/node-%s' "$1" "$2"; }

# pid_of DIR N: print the pid of node N if that process is alive AND is our JVM (guards against
# pid reuse: its command line must name the node's server.properties). Returns 1 otherwise.
pid_of() {
  local nd pid
  nd="$(node_dir "$1" "$2")"
  [[ -f "$nd/pid" ]] || return 1
  pid="$(<"$nd/pid")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$nd/server.properties" || return 1
  fi
  printf '%s\n' "$pid"
}

write_props() {
  # write_props DIR N  (ports are read from node dirs, voters from DIR/voters)
  local dir="$1" n="$2" nd brokers port cport voters
  nd="$(node_dir "$dir" "$n")"
  brokers="$(<"$dir/brokers")"
  port="$(<"$nd/port")"
  cport="$(<"$nd/controller-port")"
  voters="$(<"$dir/voters")"
  {
    echo "# Written by scripts/kafka.sh: combined broker+controller KRaft node, static quorum."
    echo "process.roles=broker,controller"
    echo "node.id=$n"
    echo "controller.quorum.voters=$voters"
    if [[ -d "$dir/security" ]]; then
      security_props "$dir" "$n"
    else
      echo "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
      echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
    fi
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "controller.listener.names=CONTROLLER"
    echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL"
    echo "log.dirs=$nd/data"
    echo "group.initial.rebalance.delay.ms=0"
    echo "# auto.create.topics.enable: broker default (true) kept on purpose."
    echo "num.network.threads=2"
    echo "num.io.threads=4"
    echo "background.threads=4"
    echo "# The log cleaner's dedupe buffer is one 128 MiB heap array by default: a quarter of the"
    echo "# test heap, allocated again whole when a log.cleaner.* config changes at runtime."
    echo "log.cleaner.dedupe.buffer.size=16777216"
    if [[ -s "$dir/racks" ]]; then
      local -a racks
      IFS=, read -r -a racks <"$dir/racks"
      echo "# KIP-392: a rack per node; consumers fetch from the replica in their client.rack"
      echo "broker.rack=${racks[n - 1]}"
      echo "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"
    fi
    if [[ "$brokers" -eq 1 ]]; then
      echo "offsets.topic.replication.factor=1"
      echo "offsets.topic.num.partitions=1"
      echo "transaction.state.log.replication.factor=1"
      echo "transaction.state.log.min.isr=1"
      echo "transaction.state.log.num.partitions=1"
      echo "share.coordinator.state.topic.replication.factor=1"
      echo "share.coordinator.state.topic.min.isr=1"
      echo "default.replication.factor=1"
      echo "min.insync.replicas=1"
    else
      local rf=3 isr=2
      if [[ "$brokers" -lt 3 ]]; then rf="$brokers"; isr=1; fi
      echo "default.replication.factor=$rf"
      echo "min.insync.replicas=$isr"
      echo "offsets.topic.replication.factor=$rf"
      echo "offsets.topic.num.partitions=3"
      echo "transaction.state.log.replication.factor=$rf"
      echo "transaction.state.log.min.isr=$isr"
      echo "transaction.state.log.num.partitions=3"
      echo "share.coordinator.state.topic.replication.factor=$rf"
      echo "share.coordinator.state.topic.min.isr=$isr"
      echo "# fast fencing of a crashed node"
      echo "broker.heartbeat.interval.ms=500"
      echo "broker.session.timeout.ms=3000"
    fi
  } >"$nd/server.properties"
}

# make_security DIR: a throwaway CA, a broker keystore signed by it (SAN localhost, 127.0.0.1),
# a truststore, and (with openssl) a client certificate and PEM key for mutual TLS.
make_security() {
  local sd="$1/security" pw=kafkit-test-pw
  mkdir -p "$sd"
  local kt=(keytool -storetype PKCS12 -storepass "$pw" -keypass "$pw")
  command -v keytool >/dev/null || die "--security needs the JDK's keytool"
  "${kt[@]}" -genkeypair -alias ca -keyalg EC -groupname secp256r1 -dname CN=kafkit-test-ca \
    -ext bc:c -validity 30 -keystore "$sd/ca.p12" 2>>"$sd/keytool.log"
  "${kt[@]}" -exportcert -rfc -alias ca -keystore "$sd/ca.p12" >"$sd/ca.pem" 2>>"$sd/keytool.log"
  "${kt[@]}" -importcert -noprompt -alias ca -file "$sd/ca.pem" -keystore "$sd/truststore.p12" \
    >>"$sd/keytool.log" 2>&1
  local who
  for who in broker client; do
    "${kt[@]}" -genkeypair -alias "$who" -keyalg EC -groupname secp256r1 \
      -dname "CN=kafkit-test-$who" -validity 30 -keystore "$sd/$who.p12" 2>>"$sd/keytool.log"
    "${kt[@]}" -certreq -alias "$who" -keystore "$sd/$who.p12" 2>>"$sd/keytool.log" \
      | "${kt[@]}" -gencert -rfc -alias ca -keystore "$sd/ca.p12" -validity 30 \
          -ext SAN=dns:localhost,ip:127.0.0.1 >"$sd/$who.pem" 2>>"$sd/keytool.log"
    "${kt[@]}" -importcert -noprompt -alias ca -file "$sd/ca.pem" -keystore "$sd/$who.p12" \
      >>"$sd/keytool.log" 2>&1
    "${kt[@]}" -importcert -noprompt -alias "$who" -file "$sd/$who.pem" -keystore "$sd/$who.p12" \
      >>"$sd/keytool.log" 2>&1
  done
  if command -v openssl >/dev/null \
      && openssl pkcs12 -in "$sd/client.p12" -passin "pass:$pw" -nodes -nocerts 2>>"$sd/keytool.log" \
        | openssl pkey -out "$sd/client.key" 2>>"$sd/keytool.log" && [[ -s "$sd/client.key" ]]; then
    echo required >"$sd/client-auth"
  else
    rm -f "$sd/client.key"
    echo none >"$sd/client-auth"
  fi
  echo "$pw" >"$sd/password"
}

# security_props DIR N: the listener lines of a node started with --security.
security_props() {
  local dir="$1" n="$2" nd sd port cport sp ssp tp l m pw
  nd="$(node_dir "$dir" "$n")"
  sd="$dir/security"
  port="$(<"$nd/port")"
  cport="$(<"$nd/controller-port")"
  sp="$(<"$nd/sasl-plaintext-port")"
  ssp="$(<"$nd/sasl-ssl-port")"
  tp="$(<"$nd/ssl-port")"
  pw="$(<"$sd/password")"
  echo "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_PLAINTEXT://127.0.0.1:$sp,SASL_SSL://127.0.0.1:$ssp,SSL://127.0.0.1:$tp"
  echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sp,SASL_SSL://127.0.0.1:$ssp,SSL://127.0.0.1:$tp"
  echo "ssl.keystore.type=PKCS12"
  echo "ssl.keystore.location=$sd/broker.p12"
  echo "ssl.keystore.password=$pw"
  echo "ssl.key.password=$pw"
  echo "ssl.truststore.type=PKCS12"
  echo "ssl.truststore.location=$sd/truststore.p12"
  echo "ssl.truststore.password=$pw"
  echo "listener.name.ssl.ssl.client.auth=$(<"$sd/client-auth")"
  # ACLs (tests/suites/acls.rs): the PLAINTEXT and CONTROLLER listeners authenticate nobody, so
  # the brokers, the controllers and the tests' admin clients there are User:ANONYMOUS, a super
  # user; OAUTHBEARER's "admin" too. Everything without an ACL stays allowed.
  echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
  echo "super.users=User:ANONYMOUS;User:admin"
  echo "allow.everyone.if.no.acl.found=true"
  for l in sasl_plaintext sasl_ssl; do
    echo "listener.name.$l.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
    echo "listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";"
    for m in scram-sha-256 scram-sha-512; do
      echo "listener.name.$l.$m.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    done
    echo "listener.name.$l.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";"
    # KIP-368: SCRAM-SHA-512 sessions last 5 s, so clients must re-authenticate to go on.
    echo "listener.name.$l.scram-sha-512.connections.max.reauth.ms=5000"
  done
}

# launch DIR N: start node N's JVM in the background, detached (own session), output appended to
# node-N/server.log; records the pid and the log offset from which readiness is searched.
launch() {
  local dir="$1" n="$2" nd pid
  nd="$(node_dir "$dir" "$n")"
  touch "$nd/server.log"
  stat -c %s "$nd/server.log" >"$nd/log-offset"
  # shellcheck disable=SC2086
  setsid "$JAVA" ${KAFKIT_KAFKA_HEAP:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError "-XX:ErrorFile=$nd/hs_err_pid%p.log" -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$LOG4J_CONF" "-Dkafkit.log.level=$LOG_LEVEL" \
    "-Dkafka.logs.dir=$nd" -cp "$LIBS/*" kafka.Kafka "$nd/server.properties" \
    </dev/null >>"$nd/server.log" 2>&1 &
  pid=$!
  echo "$pid" >"$nd/pid"
  # Until the forked shell has exec'd java, /proc shows the shell's command line and pid_of would
  # take the node for dead: wait (10 s at most) for the exec.
  local i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$nd/server.properties" && break
    sleep 0.05
  done
}

# wait_ready DIR deadline_epoch N...: wait until each node logged READY_LINE since its launch.
# Returns 0 when all are ready, 1 on timeout, 2 if a JVM died (the start is tried again, up to
# three times in all), 3 if a port was already taken (likewise, with new ports).
wait_ready() {
  local dir="$1" deadline="$2"
  shift 2
  local pending=("$@") still n nd off
  while ((${#pending[@]})); do
    still=()
    for n in "${pending[@]}"; do
      nd="$(node_dir "$dir" "$n")"
      off="$(<"$nd/log-offset")"
      if tail -c "+$((off + 1))" "$nd/server.log" | grep -qF "$READY_LINE"; then
        continue
      fi
      if ! pid_of "$dir" "$n" >/dev/null; then
        if tail -c "+$((off + 1))" "$nd/server.log" | grep -qiE 'Address already in use|BindException'; then
          log "node $n: port already in use"
          return 3
        fi
        log "node $n: JVM exited before it was ready; log tail:"
        tail -n 40 "$nd/server.log" >&2 || true
        return 2
      fi
      still+=("$n")
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]})) || break
    if (($(date +%s) >= deadline)); then
      for n in "${pending[@]}"; do
        log "node $n: not ready after ${START_TIMEOUT}s; log tail:"
        tail -n 40 "$(node_dir "$dir" "$n")/server.log" >&2 || true
      done
      return 1
    fi
    sleep 0.2
  done
  return 0
}

# stop_node DIR N SIGNAL: send SIGNAL, wait up to STOP_TIMEOUT (SIGTERM) then SIGKILL.
stop_node() {
  local dir="$1" n="$2" sig="$3" pid i
  pid="$(pid_of "$dir" "$n")" || return 0
  kill -CONT "$pid" 2>/dev/null || true # a frozen JVM cannot handle SIGTERM
  kill "-$sig" "$pid" 2>/dev/null || true
  if [[ "$sig" != KILL ]]; then
    for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "node $n (pid $pid) still running after ${STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "node $n (pid $pid) did not exit"
}

check_state_dir() {
  [[ -n "${1:-}" ]] || die "missing DIR"
  [[ -f "$1/brokers" ]] || die "$1 is not a kafka.sh state dir"
}

check_node() {
  local brokers
  brokers="$(<"$1/brokers")"
  if ! [[ "${2:-}" =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > brokers)); then
    die "node must be 1..$brokers"
  fi
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_start() {
  local brokers=1 dir="" watch_pid="" security=0 racks="${KAFKIT_KAFKA_RACKS:-}"
  while (($#)); do
    case "$1" in
      --security) security=1; shift ;;
      --racks) racks="${2:?}"; shift 2 ;;
      --racks=*) racks="${1#*=}"; shift ;;
      --brokers) brokers="${2:?}"; shift 2 ;;
      --brokers=*) brokers="${1#*=}"; shift ;;
      --dir) dir="${2:?}"; shift 2 ;;
      --dir=*) dir="${1#*=}"; shift ;;
      --watch-pid) watch_pid="${2:?}"; shift 2 ;;
      --watch-pid=*) watch_pid="${1#*=}"; shift ;;
      -h | --help) usage 0 ;;
      *) die "start: unknown argument $1" ;;
    esac
  done
  [[ "$brokers" =~ ^[1-9][0-9]*$ ]] || die "--brokers must be a positive number"
  if [[ -n "$racks" ]]; then
    [[ "$racks" =~ ^[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*$ ]] \
      || die "--racks $racks: a comma-separated list of rack names (letters, digits, . _ -)"
    local -a rack_list
    IFS=, read -r -a rack_list <<<"$racks"
    ((${#rack_list[@]} == brokers)) \
      || die "--racks $racks: ${#rack_list[@]} rack(s) for $brokers node(s); give one per node"
  fi
  if [[ -n "$watch_pid" ]]; then
    if ! [[ "$watch_pid" =~ ^[0-9]+$ ]] || ! kill -0 "$watch_pid" 2>/dev/null; then
      die "--watch-pid $watch_pid: no such process"
    fi
  fi
  command -v python3 >/dev/null || die "python3 not found (used to pick free ports)"
  fetch
  if [[ -z "$dir" ]]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/kafkit-kafka.XXXXXX")"
  else
    mkdir -p "$dir"
    [[ -z "$(ls -A "$dir")" ]] || die "--dir $dir is not empty"
  fi
  dir="$(cd "$dir" && pwd)"
  echo "$brokers" >"$dir/brokers"
  if [[ -n "$racks" ]]; then echo "$racks" >"$dir/racks"; fi

  local t0=$SECONDS attempt rc n nd cid per=2
  local -a ports nodes scram=()
  if ((security)); then
    per=5
    make_security "$dir"
    scram=(--add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]'
      --add-scram 'SCRAM-SHA-512=[name=alice,password=alice-secret]'
      --add-scram 'SCRAM-SHA-256=[name=bob,password=bob-secret]'
      --add-scram 'SCRAM-SHA-512=[name=bob,password=bob-secret]')
  fi
  for ((n = 1; n <= brokers; n++)); do nodes+=("$n"); done
  # The watchdog goes first, so a caller that dies while we wait still leaks no broker; and if
  # this script itself is interrupted, it kills what it launched.
  if [[ -n "$watch_pid" ]]; then
    start_watchdog "$dir" "$watch_pid"
  fi
  # shellcheck disable=SC2064  # expand now
  trap "abort_start '$dir'" INT TERM HUP
  for attempt in 1 2 3; do
    mapfile -t ports < <(free_ports $((per * brokers)))
    ((${#ports[@]} == per * brokers)) || die "could not get free ports"
    local voters="" bootstrap="" sasl_plaintext="" sasl_ssl="" ssl=""
    for ((n = 1; n <= brokers; n++)); do
      nd="$(node_dir "$dir" "$n")"
      rm -rf "$nd"
      mkdir -p "$nd/data"
      echo "${ports[per * (n - 1)]}" >"$nd/port"
      echo "${ports[per * (n - 1) + 1]}" >"$nd/controller-port"
      voters+="${voters:+,}$n@127.0.0.1:${ports[per * (n - 1) + 1]}"
      bootstrap+="${bootstrap:+,}127.0.0.1:${ports[per * (n - 1)]}"
      if ((security)); then
        echo "${ports[per * (n - 1) + 2]}" >"$nd/sasl-plaintext-port"
        echo "${ports[per * (n - 1) + 3]}" >"$nd/sasl-ssl-port"
        echo "${ports[per * (n - 1) + 4]}" >"$nd/ssl-port"
        sasl_plaintext+="${sasl_plaintext:+,}127.0.0.1:${ports[per * (n - 1) + 2]}"
        sasl_ssl+="${sasl_ssl:+,}127.0.0.1:${ports[per * (n - 1) + 3]}"
        ssl+="${ssl:+,}127.0.0.1:${ports[per * (n - 1) + 4]}"
      fi
    done
    echo "$voters" >"$dir/voters"
    cid="$("$SELF" java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    [[ -n "$cid" ]] || die "StorageTool random-uuid failed"
    echo "$cid" >"$dir/cluster-id"
    for ((n = 1; n <= brokers; n++)); do
      write_props "$dir" "$n"
      nd="$(node_dir "$dir" "$n")"
      # Static quorum (controller.quorum.voters): format with neither --standalone nor
      # --initial-controllers (those are for controller.quorum.bootstrap.servers).
      if ! "$SELF" java kafka.tools.StorageTool format -t "$cid" -c "$nd/server.properties" \
          "${scram[@]+"${scram[@]}"}" >"$nd/format.log" 2>&1; then
        cat "$nd/format.log" >&2
        die "node $n: storage format failed"
      fi
    done
    for n in "${nodes[@]}"; do launch "$dir" "$n"; done
    rc=0
    wait_ready "$dir" $(($(date +%s) + START_TIMEOUT)) "${nodes[@]}" || rc=$?
    if ((rc == 0)); then
      echo "$bootstrap" >"$dir/bootstrap"
      # restart-node starts a node again with the same jars, whatever its own environment says.
      echo "$KAFKA_VERSION" >"$dir/version"
      echo "KAFKA_BOOTSTRAP_SERVERS=$bootstrap" >"$dir/env"
      trap - INT TERM HUP
      log "$brokers node(s) ready in $((SECONDS - t0)) s; state dir $dir"
      echo "KAFKA_BOOTSTRAP_SERVERS=$bootstrap"
      echo "KAFKA_STATE_DIR=$dir"
      if ((security)); then
        {
          echo "KAFKA_SASL_PLAINTEXT=$sasl_plaintext"
          echo "KAFKA_SASL_SSL=$sasl_ssl"
          echo "KAFKA_SSL=$ssl"
          echo "KAFKA_CA_PEM=$dir/security/ca.pem"
          if [[ -s "$dir/security/client.key" ]]; then
            echo "KAFKA_CLIENT_CERT_PEM=$dir/security/client.pem"
            echo "KAFKA_CLIENT_KEY_PEM=$dir/security/client.key"
          fi
        } | tee "$dir/security.env"
      fi
      return 0
    fi
    for n in "${nodes[@]}"; do stop_node "$dir" "$n" KILL; done
    if ((rc == 3 && attempt < 3)); then
      log "retrying with new ports (attempt $((attempt + 1)))"
      continue
    fi
    # A JVM that ends at once with nothing in its log (seen under heavy load: SIGQUIT'd or
    # killed before it wrote a line) is started again; a real configuration error fails three
    # times the same way and is reported below.
    if ((rc == 2 && attempt < 3)); then
      log "a JVM exited before it was ready; starting again (attempt $((attempt + 1)))"
      continue
    fi
    kill_watchdog "$dir"
    die "start failed; state dir kept for inspection: $dir"
  done
}

abort_start() {
  log "interrupted: stopping what was started"
  local n brokers
  brokers="$(<"$1/brokers")"
  for ((n = 1; n <= brokers; n++)); do stop_node "$1" "$n" KILL || true; done
  kill_watchdog "$1"
  exit 130
}

# The watchdog: a detached process (own session, no inherited stdout so a caller's $(...) does
# not hang) that waits for PID to exit (tail --pid polls once a second) and then stops the cluster.
start_watchdog() {
  local dir="$1" pid="$2"
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid bash -c 'tail --pid="$1" -f /dev/null; exec "$2" stop "$3"' kafkit-kafka-watchdog \
    "$pid" "$SELF" "$dir" </dev/null >>"$dir/watchdog.log" 2>&1 &
  echo $! >"$dir/watchdog.pid"
}

cmd_stop() {
  local dir="${1:-}"
  check_state_dir "$dir"
  local brokers n
  brokers="$(<"$dir/brokers")"
  # Stop all nodes in parallel: a 3-node cluster's controlled shutdowns go faster together.
  local -a jobs=()
  for ((n = 1; n <= brokers; n++)); do
    stop_node "$dir" "$n" TERM &
    jobs+=($!)
  done
  local rc=0 j
  for j in "${jobs[@]}"; do wait "$j" || rc=1; done
  kill_watchdog "$dir"
  return "$rc"
}

kill_watchdog() {
  local dir="$1" wpid
  [[ -f "$dir/watchdog.pid" ]] || return 0
  wpid="$(<"$dir/watchdog.pid")"
  # Not ourselves (the watchdog execs this script) and only if it still is the watchdog.
  if [[ "$wpid" != "$$" ]] && kill -0 "$wpid" 2>/dev/null \
      && tr '\0' ' ' <"/proc/$wpid/cmdline" 2>/dev/null | grep -qF "$dir"; then
    kill "$wpid" 2>/dev/null || true
  fi
  rm -f "$dir/watchdog.pid"
}

cmd_kill_node() {
  check_state_dir "${1:-}"
  check_node "$1" "${2:-}"
  stop_node "$1" "$2" KILL
}

cmd_restart_node() {
  local dir="${1:-}" n="${2:-}"
  check_state_dir "$dir"
  check_node "$dir" "$n"
  local version
  version="$(cat "$dir/version" 2>/dev/null || true)"
  if [[ -n "$version" && "$version" != "$KAFKA_VERSION" ]]; then
    # The cluster's own Kafka version (a 3.9.1 cluster restarted by a caller that did not set
    # KAFKIT_KAFKA_VERSION must not come back as 4.2.0).
    KAFKIT_KAFKA_VERSION="$version" exec "$SELF" restart-node "$dir" "$n"
  fi
  fetch
  local t0=$SECONDS
  stop_node "$dir" "$n" TERM
  launch "$dir" "$n"
  local rc=0
  wait_ready "$dir" $(($(date +%s) + START_TIMEOUT)) "$n" || rc=$?
  if ((rc != 0)); then
    stop_node "$dir" "$n" KILL
    die "node $n: restart failed"
  fi
  log "node $n ready again in $((SECONDS - t0)) s"
}

cmd_signal() {
  local sig="$1" dir="${2:-}" n="${3:-}" pid
  check_state_dir "$dir"
  check_node "$dir" "$n"
  pid="$(pid_of "$dir" "$n")" || die "node $n is not running"
  kill "-$sig" "$pid"
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    fetch) fetch ;;
    libs) fetch; echo "$LIBS" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill-node) cmd_kill_node "$@" ;;
    restart-node) cmd_restart_node "$@" ;;
    freeze) cmd_signal STOP "$@" ;;
    thaw) cmd_signal CONT "$@" ;;
    java) (($#)) || die "java: missing main class"; run_java "$@" ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
  esac
}

main "$@"
