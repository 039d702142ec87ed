# kafka service module for scripts/stack: Apache Kafka 4.x, one KRaft node (broker+controller).
#
# The broker's jars come from Maven Central through scripts/stack.d/maven/kafka-pom.xml and stay
# in the local Maven repository (~/.m2/repository); the resolved classpath is kept in
# $CDC_STACK_DIR/kafka/classpath-<pom hash>.txt, so a later start runs no Maven at all.
#
# Listeners (all 127.0.0.1):
#   19092 PLAINTEXT       everyday tests; principal User:ANONYMOUS, a super user
#   19093 SASL_PLAINTEXT  SCRAM-SHA-256 and SCRAM-SHA-512: admin/admin-secret (super user),
#                         cdc/cdc-secret (ordinary user: only the ACLs below, for the tests
#                         that run the agent as a non-super user)
#   19094 CONTROLLER      KRaft quorum (this node alone)
#   19095 SASL_SSL        the same SCRAM users over TLS; server certificate for 127.0.0.1 and
#                         localhost from a test CA made on first start ($CDC_STACK_DIR/kafka/tls/ca.pem)
# StandardAuthorizer with allow.everyone.if.no.acl.found=false.
# ACLs of cdc (what docs/security.md lists for an agent whose source names start with
# $KAFKA_SASL_USER_PREFIX): topics prefixed cdc_sasl_ (Create, Describe, Read, Write),
# transactional ids prefixed cdc-agent-cdc_sasl_ (Describe, Write), consumer groups prefixed
# cdc-agent-offsets-cdc_sasl_ (Describe, Read). Everything else is denied to cdc.

# shellcheck shell=bash
STACK_APT_PACKAGES+=(openjdk-17-jre-headless maven)

KAFKA_PORT=${CDC_STACK_KAFKA_PORT:-19092}
KAFKA_SASL_PORT=${CDC_STACK_KAFKA_SASL_PORT:-19093}
KAFKA_CONTROLLER_PORT=${CDC_STACK_KAFKA_CONTROLLER_PORT:-19094}
KAFKA_SSL_PORT=${CDC_STACK_KAFKA_SSL_PORT:-19095}
# Source names (and so topic prefixes) the SASL user cdc may run an agent for.
KAFKA_SASL_USER_PREFIX=cdc_sasl_

_kafka_dir() { echo "$CDC_STACK_DIR/kafka"; }

# _kafka_ours: the pid file names a live (not zombie) broker started with our config, so a
# stale pid file whose number was reused by another process is never mistaken for, or stopped as, ours.
_kafka_ours() {
  local d pid cmd
  d=$(_kafka_dir)
  pid_alive "$d/kafka.pid" || return 1
  pid=$(cat "$d/kafka.pid")
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"kafka.Kafka $d/server.properties"* ]]
}
_kafka_pom() { echo "$STACK_ROOT/scripts/stack.d/maven/kafka-pom.xml"; }
_kafka_cp_file() {
  echo "$(_kafka_dir)/classpath-$(sha1sum "$(_kafka_pom)" | cut -c1-12).txt"
}

# Every jar named in the classpath file FILE exists.
_kafka_cp_ok() {
  local f=$1 jar
  [[ -s $f ]] || return 1
  while IFS= read -r -d: jar || [[ -n $jar ]]; do
    [[ -f $jar ]] || return 1
  done <"$f"
}

# kafka_classpath: print the broker+tools classpath, resolving it with Maven when needed
# (offline first: a warm ~/.m2 needs no network).
kafka_classpath() {
  local f tmp
  f=$(_kafka_cp_file)
  if ! _kafka_cp_ok "$f"; then
    command -v mvn >/dev/null || apt_install_missing maven
    command -v java >/dev/null || apt_install_missing openjdk-17-jre-headless
    mkdir -p "$(_kafka_dir)"
    tmp="$f.tmp"
    local mvn_args=(-B -q -f "$(_kafka_pom)" dependency:build-classpath
      -Dmdep.outputFile="$tmp" -Dmdep.includeScope=runtime)
    if ! mvn -o "${mvn_args[@]}" >/dev/null 2>&1; then
      log "kafka: resolving jars from Maven Central into the local Maven repository"
      mvn "${mvn_args[@]}" >&2 || die "kafka: maven could not resolve $(_kafka_pom)"
    fi
    _kafka_cp_ok "$tmp" || die "kafka: maven produced an incomplete classpath ($tmp)"
    rm -f "$(_kafka_dir)"/classpath-*.txt
    mv "$tmp" "$f"
  fi
  cat "$f"
}

kafka_install() {
  kafka_classpath >/dev/null
  _kafka_write_log_configs
}

_kafka_write_log_configs() {
  local d
  d=$(_kafka_dir)
  mkdir -p "$d"
  cat >"$d/log4j2.properties" <<'EOF'
# broker logging (stdout goes to kafka.log)
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
  cat >"$d/tools-log4j2.properties" <<'EOF'
# command-line tools (scripts/kafka-run-class): warnings only, on stderr
status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
}

_kafka_write_config() {
  local d=$1
  cat >"$d/server.properties" <<EOF
# Written by scripts/stack.d/kafka.sh on every start; edit that file, not this one.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SSL_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SSL_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT

sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# PEM keystore: the unencrypted PKCS#8 key followed by the certificate (no ssl.key.password).
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$d/tls/server-keystore.pem

# Broker-to-broker and broker-to-controller traffic is PLAINTEXT, i.e. User:ANONYMOUS, which
# is therefore a super user; so everything on the PLAINTEXT listener is allowed. On the SASL
# listener admin is a super user and cdc gets only what ACLs grant it.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:admin
allow.everyone.if.no.acl.found=false

log.dirs=$d/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# small machine: few threads, small cleaner buffer
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
EOF
}

# _kafka_tls DIR: a test CA and a server certificate for 127.0.0.1/localhost, made when missing
# (kept across restarts, so clients keep trusting the same CA).
_kafka_tls() {
  local t=$1/tls
  [[ -s $t/server-keystore.pem ]] && return 0
  command -v openssl >/dev/null || apt_install_missing openssl
  log "kafka: making a test CA and a server certificate for 127.0.0.1 in $t"
  mkdir -p "$t"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$t/server.ext"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=cdc-stack kafka test ca" -keyout "$t/ca-key.pem" -out "$t/ca.pem" 2>/dev/null \
    && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=127.0.0.1" -keyout "$t/server-key.pem" -out "$t/server.csr" 2>/dev/null \
    && openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" \
      -CAcreateserial -days 3650 -extfile "$t/server.ext" -out "$t/server-cert.pem" 2>/dev/null \
    || die "kafka: making the TLS certificates in $t failed"
  cat "$t/server-key.pem" "$t/server-cert.pem" >"$t/server-keystore.pem.tmp"
  chmod 0600 "$t/ca-key.pem" "$t/server-key.pem" "$t/server-keystore.pem.tmp"
  mv "$t/server-keystore.pem.tmp" "$t/server-keystore.pem"
}

_kafka_java_opts() {
  echo "-Xms256m -Xmx512m -XX:MaxMetaspaceSize=256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20" \
    "-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent" \
    "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true"
}

_kafka_format() {
  local d=$1 cp=$2 id
  # A URL-safe base64 id may begin with '-', which the tool's argument parser reads as an option
  # (one format in 64 failed that way): draw again, as Kafka's own Uuid.randomUuid does, and pass
  # it as --cluster-id=ID so an id kept from an older stack cannot trip it either.
  while [[ ! -s $d/cluster-id || $(head -c1 "$d/cluster-id") == - ]]; do
    head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$d/cluster-id"
  done
  id=$(cat "$d/cluster-id")
  log "kafka: formatting storage (cluster id $id)"
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile="$d/tools-log4j2.properties" \
    -cp "$cp" kafka.tools.StorageTool format --standalone --cluster-id="$id" -c "$d/server.properties" \
    --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]' \
    --add-scram 'SCRAM-SHA-256=[name=admin,password=admin-secret]' \
    --add-scram 'SCRAM-SHA-512=[name=cdc,password=cdc-secret]' \
    --add-scram 'SCRAM-SHA-256=[name=cdc,password=cdc-secret]' \
    >>"$d/format.log" 2>&1 || { tail -n 20 "$d/format.log" >&2; die "kafka: storage format failed"; }
}

# One real request: list topics through the PLAINTEXT listener.
_kafka_probe() {
  local d=$1 cp=$2
  timeout 60 java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$d/tools-log4j2.properties" -cp "$cp" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null
}

# _kafka_acls DIR CLASSPATH: grant cdc what an agent needs on its prefixed resources, once per
# storage format (the marker lives in the data folder, which a new format empties).
_kafka_acls() {
  local d=$1 cp=$2 marker=$1/data/.cdc-acls-v1 p=$KAFKA_SASL_USER_PREFIX
  [[ -f $marker ]] && return 0
  log "kafka: granting ACLs to User:cdc on ${p}* resources"
  local acl=(timeout 120 java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
    -Dlog4j2.configurationFile="$d/tools-log4j2.properties" -cp "$cp"
    org.apache.kafka.tools.AclCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --add --force
    --allow-principal User:cdc --resource-pattern-type prefixed)
  "${acl[@]}" --topic "$p" --operation Create --operation Describe --operation Read \
    --operation Write >>"$d/acls.log" 2>&1 \
    && "${acl[@]}" --transactional-id "cdc-agent-$p" --operation Describe --operation Write \
      >>"$d/acls.log" 2>&1 \
    && "${acl[@]}" --group "cdc-agent-offsets-$p" --operation Describe --operation Read \
      >>"$d/acls.log" 2>&1 \
    || { tail -n 20 "$d/acls.log" >&2; die "kafka: granting ACLs failed (log: $d/acls.log)"; }
  touch "$marker"
}

kafka_start() {
  local d cp pid p i
  d=$(_kafka_dir)
  if _kafka_ours; then
    log "kafka: already running (pid $(cat "$d/kafka.pid"))"
    _kafka_acls "$d" "$(kafka_classpath)"
    return 0
  fi
  for p in $KAFKA_PORT $KAFKA_SASL_PORT $KAFKA_SSL_PORT $KAFKA_CONTROLLER_PORT; do
    port_open "$p" && die "kafka: port $p is taken by another process (not ours: no live pid in $d/kafka.pid)"
  done
  cp=$(kafka_classpath)
  _kafka_write_log_configs
  _kafka_tls "$d"
  _kafka_write_config "$d"
  [[ -f $d/data/meta.properties ]] || _kafka_format "$d" "$cp"
  [[ -f $d/kafka.log ]] && mv -f "$d/kafka.log" "$d/kafka.log.1"
  log "kafka: starting"
  # shellcheck disable=SC2046
  nohup java $(_kafka_java_opts) -Dlog4j2.configurationFile="$d/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$d/server.properties" >"$d/kafka.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$d/kafka.pid"
  for ((i = 0; i < 90 * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$d/kafka.log" >&2; rm -f "$d/kafka.pid"; die "kafka: exited during startup (log: $d/kafka.log)"; }
    port_open "$KAFKA_PORT" && port_open "$KAFKA_SASL_PORT" && port_open "$KAFKA_SSL_PORT" && break
    sleep 0.25
  done
  port_open "$KAFKA_PORT" || die "kafka: not listening on $KAFKA_PORT after 90s (log: $d/kafka.log)"
  _kafka_probe "$d" "$cp" || die "kafka: listening but does not answer a metadata request (log: $d/kafka.log)"
  _kafka_acls "$d" "$cp"
  log "kafka: up (pid $pid)"
}

kafka_stop() {
  local f
  f="$(_kafka_dir)/kafka.pid"
  if _kafka_ours; then
    stop_pidfile "$f" kafka 60
  else
    rm -f "$f"
  fi
}

kafka_status() {
  local f
  f="$(_kafka_dir)/kafka.pid"
  if _kafka_ours; then
    echo "kafka: running (pid $(cat "$f")) on 127.0.0.1:$KAFKA_PORT (sasl $KAFKA_SASL_PORT, sasl_ssl $KAFKA_SSL_PORT)"
  else
    echo "kafka: stopped"
    return 1
  fi
}

kafka_env() {
  cat <<EOF
export KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
export KAFKA_SASL_BOOTSTRAP=127.0.0.1:$KAFKA_SASL_PORT
export KAFKA_SSL_BOOTSTRAP=127.0.0.1:$KAFKA_SSL_PORT
export KAFKA_SSL_CA=$(_kafka_dir)/tls/ca.pem
export KAFKA_SASL_MECHANISM=SCRAM-SHA-512
export KAFKA_SASL_USERNAME=admin
export KAFKA_SASL_PASSWORD=admin-secret
export KAFKA_SASL_USER_USERNAME=cdc
export KAFKA_SASL_USER_PASSWORD=cdc-secret
export KAFKA_SASL_USER_PREFIX=$KAFKA_SASL_USER_PREFIX
EOF
}
