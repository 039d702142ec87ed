# registry service module for scripts/stack: Apicurio Registry 3 (Confluent-compatible API).
#
# The registry's "all" assembly (io.apicurio:apicurio-registry-app:<version>:tar.gz:all) comes
# from Maven Central through `mvn dependency:get`, is cached in the local Maven repository
# (~/.m2/repository) and unpacked once into $CDC_STACK_DIR/registry/app.
# 3.0.x is the newest 3.x line that runs on Java 17 (3.3.x is compiled for Java 21).
#
# HTTP on 127.0.0.1:18081; storage is H2 in a file under $CDC_STACK_DIR/registry/db, so
# schemas survive a restart. ccompat ids are content ids (legacy-id-mode off), as Confluent's.
# Global compatibility rule: BACKWARD. No authentication. Deletion of groups, artifacts
# (subjects) and versions is enabled so tests can clean up.

# shellcheck shell=bash
STACK_APT_PACKAGES+=(openjdk-17-jre-headless maven curl)

REGISTRY_PORT=${CDC_STACK_REGISTRY_PORT:-18081}

_registry_dir() { echo "$CDC_STACK_DIR/registry"; }
APICURIO_VERSION=3.0.9
_registry_url() { echo "http://127.0.0.1:$REGISTRY_PORT"; }

# _registry_ours: the pid file names a live (not zombie) java running our unpacked registry.
_registry_ours() {
  local d pid cmd
  d=$(_registry_dir)
  pid_alive "$d/registry.pid" || return 1
  pid=$(cat "$d/registry.pid")
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"-jar $d/app/"* ]]
}

# The jar to run: a fast-jar tree (quarkus-run.jar) or a legacy runner jar.
_registry_jar() {
  local app
  app="$(_registry_dir)/app"
  if [[ -f $app/quarkus-run.jar ]]; then
    echo "$app/quarkus-run.jar"
  else
    compgen -G "$app/*-runner.jar" | head -n 1
  fi
}

# _registry_artifact: print the path of the assembly in the local Maven repository, fetching it
# when missing. dependency:get 2.8 (Maven 3.8's default) with transitive=false, because newer
# versions of the plugin read the artifact's POM, whose parent POM (io.apicurio:apicurio-registry)
# is not on Maven Central for every release (3.0.9's is not).
_registry_artifact() {
  local coords="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" repo f
  local get=(-B -q org.apache.maven.plugins:maven-dependency-plugin:2.8:get -Dtransitive=false -Dartifact="$coords")
  command -v mvn >/dev/null || apt_install_missing maven
  if ! mvn -o "${get[@]}" >/dev/null 2>&1; then
    log "registry: fetching $coords from Maven Central (about 110 MB)"
    mvn "${get[@]}" >&2 || die "registry: maven could not fetch $coords"
  fi
  repo=$HOME/.m2/repository
  f=io/apicurio/apicurio-registry-app/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz
  if [[ ! -f $repo/$f ]]; then # a non-default local repository
    repo=$(mvn -B -q help:evaluate -Dexpression=settings.localRepository -DforceStdout 2>/dev/null |
      sed 's/\x1b\[[0-9;]*m//g') || true
  fi
  [[ -f $repo/$f ]] || die "registry: cannot find $f in the local Maven repository"
  echo "$repo/$f"
}

registry_install() {
  local d app tgz
  d=$(_registry_dir)
  app="$d/app"
  if [[ -f $app/.version && $(cat "$app/.version") == "$APICURIO_VERSION" && -n $(_registry_jar) ]]; then
    return 0
  fi
  command -v java >/dev/null || apt_install_missing openjdk-17-jre-headless
  command -v curl >/dev/null || apt_install_missing curl
  tgz=$(_registry_artifact)
  log "registry: unpacking Apicurio Registry $APICURIO_VERSION into $app"
  rm -rf "$app"
  mkdir -p "$app"
  tar -xzf "$tgz" -C "$app" || die "registry: could not unpack $tgz"
  [[ -n $(_registry_jar) ]] || die "registry: no runnable jar in $app"
  echo "$APICURIO_VERSION" >"$app/.version"
}

_registry_write_config() {
  local d=$1
  mkdir -p "$d/config" "$d/db" "$d/tmp"
  # Quarkus reads config/application.properties from the working directory ($d).
  cat >"$d/config/application.properties" <<EOF
# Written by scripts/stack.d/registry.sh on every start; edit that file, not this one.
quarkus.http.host=127.0.0.1
quarkus.http.port=$REGISTRY_PORT
quarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n

# storage: H2 in a file, so data survives restarts
apicurio.storage.kind=sql
apicurio.storage.sql.kind=h2
apicurio.datasource.url=jdbc:h2:file:$d/db/registry
apicurio.datasource.username=sa
apicurio.datasource.password=sa
apicurio.datasource.jdbc.initial-size=2
apicurio.datasource.jdbc.min-size=2
apicurio.datasource.jdbc.max-size=20
apicurio.storage.snapshot.location=$d/tmp
apicurio.import.work-dir=$d/tmp

# no authentication
quarkus.oidc.tenant-enabled=false
apicurio.authn.basic-client-credentials.enabled=false
apicurio.auth.role-based-authorization=false
apicurio.auth.owner-only-authorization=false

# Confluent-compatible API: ids are content ids (what GET /schemas/ids/{id} resolves)
apicurio.ccompat.legacy-id-mode.enabled=false
# default global rule; registry_start also stores it through ccompat PUT /config
apicurio.rules.global.compatibility=BACKWARD

# tests clean up after themselves
apicurio.rest.deletion.group.enabled=true
apicurio.rest.deletion.artifact.enabled=true
apicurio.rest.deletion.artifact-version.enabled=true
apicurio.rest.artifact.deletion.enabled=true
EOF
}

_registry_java_opts() {
  echo "-Xms64m -Xmx384m -XX:MaxMetaspaceSize=256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1" \
    "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true"
}

_registry_answers() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$(_registry_url)/apis/ccompat/v7/subjects") == 200 ]]
}

registry_start() {
  local d jar pid i
  d=$(_registry_dir)
  if _registry_ours; then
    log "registry: already running (pid $(cat "$d/registry.pid"))"
    return 0
  fi
  port_open "$REGISTRY_PORT" && die "registry: port $REGISTRY_PORT is taken by another process (not ours: no live pid in $d/registry.pid)"
  registry_install
  jar=$(_registry_jar)
  _registry_write_config "$d"
  [[ -f $d/registry.log ]] && mv -f "$d/registry.log" "$d/registry.log.1"
  log "registry: starting Apicurio Registry $(cat "$d/app/.version")"
  # shellcheck disable=SC2046
  (cd "$d" && exec nohup java $(_registry_java_opts) -Djava.io.tmpdir="$d/tmp" -jar "$jar" \
    >"$d/registry.log" 2>&1 </dev/null) &
  pid=$!
  echo "$pid" >"$d/registry.pid"
  for ((i = 0; i < 180 * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$d/registry.log" >&2; rm -f "$d/registry.pid"; die "registry: exited during startup (log: $d/registry.log)"; }
    _registry_answers && break
    sleep 0.25
  done
  _registry_answers || die "registry: no answer on $(_registry_url) after 180s (log: $d/registry.log)"
  # ccompat GET /config reports only a stored global rule, not the configured default: store it.
  if ! curl -s --max-time 5 "$(_registry_url)/apis/ccompat/v7/config" | grep -q '"BACKWARD"'; then
    curl -sf --max-time 10 -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
      -d '{"compatibility":"BACKWARD"}' "$(_registry_url)/apis/ccompat/v7/config" >/dev/null ||
      die "registry: could not set the global compatibility to BACKWARD"
  fi
  log "registry: up (pid $pid)"
}

registry_stop() {
  local f
  f="$(_registry_dir)/registry.pid"
  if _registry_ours; then
    stop_pidfile "$f" registry 30
  else
    rm -f "$f"
  fi
}

registry_status() {
  local f
  f="$(_registry_dir)/registry.pid"
  if _registry_ours; then
    echo "registry: running (pid $(cat "$f")) on $(_registry_url) (ccompat /apis/ccompat/v7)"
  else
    echo "registry: stopped"
    return 1
  fi
}

registry_env() {
  echo "export SCHEMA_REGISTRY_URL=$(_registry_url)/apis/ccompat/v7"
  echo "export APICURIO_URL=$(_registry_url)"
}
