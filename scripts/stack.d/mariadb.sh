# mariadb service module for scripts/stack: MariaDB 10.11 on 127.0.0.1:33106, row-based
# binlog with GTIDs, its own datadir under $CDC_STACK_DIR/mariadb. Sourced, not run.
#
#   $CDC_STACK_DIR/mariadb/           state folder, owned by the OS user mysql (see statedir.sh)
#     my.cnf                          the only config the server and our clients read
#     data/                           the datadir (mariadb-install-db), binlogs mariadb-bin.*
#     mariadb.pid  mariadb.sock  mariadb.err
#     tls/ca.pem  tls/server-cert.pem  tls/server-key.pem
#                                     TLS: a CA made once by this script and a server
#                                     certificate it signed for the DNS name localhost only
#                                     (so verify_identity to 127.0.0.1 is the wrong-name case)
#
# mariadbd is started by root (through sudo for a developer) with user=mysql, so it drops to
# the OS user mysql itself; our pid file names mariadbd, nothing in between. Users: root via
# the socket (unix_socket auth), cdc_admin@'%' (everything, for tests), cdc_agent@'%'
# (REPLICATION SLAVE, BINLOG MONITOR, SELECT on demo.*); database demo.
# docs/mariadb-setup.md is the same setup for a DBA.

# shellcheck source=statedir.sh
source "$STACK_ROOT/scripts/stack.d/statedir.sh"

MARIADB_STACK_PORT=${CDC_STACK_MARIADB_PORT:-33106}
STACK_APT_PACKAGES+=(mariadb-server mariadb-client openssl)

_my_pid() {
  local dir pid
  dir=$(stack_state_path mariadb)
  [[ -r $dir/mariadb.pid ]] || return 1
  pid=$(head -n1 "$dir/mariadb.pid" 2>/dev/null) || return 1
  proc_is "$pid" mariadbd || return 1
  printf '%s\n' "$pid"
}

# _my_sql SQL on stdin, as root@localhost over the socket (unix_socket authentication).
_my_sql() {
  as_root mariadb --defaults-file="$(stack_state_path mariadb)/my.cnf" -uroot "$@"
}

mariadb_install() {
  apt_install_missing mariadb-server mariadb-client
  command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || die "mariadb: mariadbd missing after install"
}

# _my_tls DIR: the CA and server certificate, made when missing (kept across restarts).
_my_tls() {
  local t=$1/tls
  as_root test -s "$t/server-cert.pem" && return 0
  command -v openssl >/dev/null || apt_install_missing openssl
  log "mariadb: making a test CA and a server certificate for localhost in $t"
  as_root mkdir -p "$t"
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' | as_root tee "$t/server.ext" >/dev/null
  as_root openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=cdc-stack mariadb test ca" -keyout "$t/ca-key.pem" -out "$t/ca.pem" 2>/dev/null \
    && as_root openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout "$t/server-key.pem" -out "$t/server.csr" 2>/dev/null \
    && as_root openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" \
      -CAcreateserial -days 3650 -extfile "$t/server.ext" -out "$t/server-cert.pem" 2>/dev/null \
    || die "mariadb: making the TLS certificates in $t failed"
  as_root chown -R mysql:mysql "$t"
  as_root chmod 0600 "$t/ca-key.pem" "$t/server-key.pem"
  as_root chmod 0644 "$t/ca.pem" "$t/server-cert.pem"
}

_my_write_config() {
  local dir=$1
  _my_tls "$dir"
  as_root tee "$dir/my.cnf" >/dev/null <<EOF
# Written by scripts/stack on every start; edit scripts/stack.d/mariadb.sh instead.
# Passed as --defaults-file, so /etc/mysql is never read.
[client]
socket = $dir/mariadb.sock
port = $MARIADB_STACK_PORT

[mysqld]
user = mysql
datadir = $dir/data
socket = $dir/mariadb.sock
pid-file = $dir/mariadb.pid
log-error = $dir/mariadb.err
port = $MARIADB_STACK_PORT
bind-address = 127.0.0.1
skip-name-resolve
character-set-server = utf8mb4
innodb_buffer_pool_size = 128M
server_id = 1
log_bin = $dir/data/mariadb-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
binlog_expire_logs_seconds = 604800
gtid_domain_id = 0
gtid_strict_mode = ON
log_slave_updates = ON
# TLS offered, not required: clients choose (the agent's [mysql] ssl_mode).
ssl_ca = $dir/tls/ca.pem
ssl_cert = $dir/tls/server-cert.pem
ssl_key = $dir/tls/server-key.pem
EOF
  as_root chmod 0644 "$dir/my.cnf"
}

# Users, grants and database: created when missing, on every start. Not written to the
# binlog (sql_log_bin=0), so a CDC reader never sees the stack's own bookkeeping.
_my_bootstrap() {
  _my_sql <<'SQL'
SET SESSION sql_log_bin = 0;
-- anonymous users, and the grants mariadb-install-db made for this machine's host name
-- (never matched under skip-name-resolve, only warned about)
DELETE FROM mysql.global_priv WHERE User = '';
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS demo CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'cdc_admin'@'%' IDENTIFIED BY 'cdc_admin';
GRANT ALL PRIVILEGES ON *.* TO 'cdc_admin'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'cdc_agent'@'%' IDENTIFIED BY 'cdc_agent';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cdc_agent'@'%';
GRANT SELECT ON demo.* TO 'cdc_agent'@'%';
-- the snapshot signal table of sources on demo (docs/mariadb-setup.md)
GRANT CREATE, INSERT ON demo.cdc_signal TO 'cdc_agent'@'%';
SQL
}

mariadb_start() {
  local dir pid out i bg
  stack_state_dir dir mariadb mysql
  _my_write_config "$dir"
  if pid=$(_my_pid); then
    log "mariadb: already running (pid $pid)"
  else
    if ! as_root test -d "$dir/data/mysql"; then
      log "mariadb: mariadb-install-db in $dir/data"
      out=$(as_root mariadb-install-db --defaults-file="$dir/my.cnf" --user=mysql \
        --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve 2>&1) \
        || { printf '%s\n' "$out" | tail -n 20 >&2; die "mariadb: mariadb-install-db failed"; }
    fi
    ! port_open "$MARIADB_STACK_PORT" || die "mariadb: 127.0.0.1:$MARIADB_STACK_PORT is taken by another process"
    log "mariadb: starting on 127.0.0.1:$MARIADB_STACK_PORT"
    as_root rm -f "$dir/mariadb.pid"
    # --defaults-file must come first. setsid: not tied to the caller's terminal or session.
    # UMASK: the pid file and error log readable by the invoking user (the datadir stays 0700).
    # A plain command (not the as_root function), so the background child execs into it and
    # keeps none of our file descriptors: $! is mariadbd itself when root, sudo otherwise.
    if [[ $(id -u) -eq 0 ]]; then
      UMASK=0644 setsid nohup mariadbd --defaults-file="$dir/my.cnf" </dev/null >/dev/null 2>&1 &
    else
      sudo env UMASK=0644 setsid nohup mariadbd --defaults-file="$dir/my.cnf" </dev/null >/dev/null 2>&1 &
    fi
    bg=$!
    for ((i = 0; ; i++)); do
      if pid=$(_my_pid) && as_root mariadb-admin --defaults-file="$dir/my.cnf" -uroot ping >/dev/null 2>&1; then
        break
      fi
      if [[ $(ps -o stat= -p "$bg" 2>/dev/null) != [^Z]* ]]; then
        as_root tail -n 20 "$dir/mariadb.err" >&2 || true
        die "mariadb: mariadbd exited (see $dir/mariadb.err)"
      fi
      ((i < 240)) || die "mariadb: did not answer within 60s (see $dir/mariadb.err)"
      sleep 0.25
    done
  fi
  wait_for 60 "mariadb" as_root mariadb-admin --defaults-file="$dir/my.cnf" -uroot ping
  _my_bootstrap
}

mariadb_stop() {
  local pid i
  pid=$(_my_pid) || return 0
  log "mariadb: stopping (pid $pid)"
  as_root kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    proc_is "$pid" mariadbd || return 0
    sleep 0.1
  done
  log "mariadb: pid $pid did not stop in 60s, killing"
  as_root kill -KILL "$pid" 2>/dev/null || true
}

mariadb_status() {
  local pid
  if pid=$(_my_pid); then
    echo "mariadb: running (pid $pid) on 127.0.0.1:$MARIADB_STACK_PORT"
  else
    echo "mariadb: stopped"
    return 1
  fi
}

mariadb_env() {
  cat <<EOF
export MYSQL_HOST=127.0.0.1
export MYSQL_PORT=$MARIADB_STACK_PORT
export MYSQL_URL=mysql://cdc_admin:cdc_admin@127.0.0.1:$MARIADB_STACK_PORT/demo
export MYSQL_AGENT_URL=mysql://cdc_agent:cdc_agent@127.0.0.1:$MARIADB_STACK_PORT/demo
export MYSQL_SOCKET=$(stack_state_path mariadb)/mariadb.sock
export MYSQL_SSL_CA=$(stack_state_path mariadb)/tls/ca.pem
EOF
}
