# postgres service module for scripts/stack: PostgreSQL 15 on 127.0.0.1:54315, logical
# decoding enabled, its own cluster under $CDC_STACK_DIR/postgres. Sourced, not run.
#
#   $CDC_STACK_DIR/postgres/          state folder, owned by the OS user postgres (see statedir.sh)
#     data/                           the cluster (initdb)
#     postgres.pid                    pid file (external_pid_file; pg_ctl uses data/postmaster.pid)
#     data/stack.conf                 our settings, included from data/postgresql.conf
#     postgres.log                    server log
#     .s.PGSQL.54315                  unix socket
#
# The server always runs as the OS user postgres (root cannot run it). Roles: cdc_admin
# (superuser, for tests), cdc_agent (LOGIN REPLICATION, reads public in demo); database
# demo owned by cdc_admin; publication cdc_demo FOR ALL TABLES. docs/postgres-setup.md is
# the same setup for a DBA.

# shellcheck source=statedir.sh
source "$STACK_ROOT/scripts/stack.d/statedir.sh"

PG_STACK_PORT=${CDC_STACK_PG_PORT:-54315}
PG_STACK_BIN=/usr/lib/postgresql/15/bin
# postgresql-15 also provides postgresql-contrib-15 (a virtual package in Debian 12).
STACK_APT_PACKAGES+=(postgresql-15 postgresql-client-15)

_pg_pid() {
  local dir pid
  dir=$(stack_state_path postgres)
  [[ -r $dir/postgres.pid ]] || return 1
  pid=$(head -n1 "$dir/postgres.pid" 2>/dev/null) || return 1
  proc_is "$pid" postgres || return 1
  printf '%s\n' "$pid"
}

# _pg_psql DB SQL...: run SQL as the bootstrap superuser over the unix socket. The socket
# folder and port are the stack's unless PG_PSQL_SOCKET_DIR / PG_PSQL_PORT name another
# cluster (scripts/stack.d/pg-versions.sh bootstraps its servers with the same SQL).
_pg_psql() {
  local db=$1
  shift
  as_svc_user postgres "$PG_STACK_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "${PG_PSQL_SOCKET_DIR:-$(stack_state_path postgres)}" -p "${PG_PSQL_PORT:-$PG_STACK_PORT}" \
    -U postgres -d "$db" "$@"
}

postgres_install() {
  apt_install_missing postgresql-15 postgresql-client-15
  [[ -x $PG_STACK_BIN/postgres ]] || die "postgres: $PG_STACK_BIN/postgres missing after install"
}

# _pg_write_config DIR [PORT]: stack.conf and pg_hba.conf of the cluster in DIR/data (the
# stack's port unless PORT is given).
_pg_write_config() {
  local dir=$1 port=${2:-$PG_STACK_PORT} conf=$1/data/stack.conf
  as_svc_user postgres tee "$conf" >/dev/null <<EOF
# Written by scripts/stack on every start; edit scripts/stack.d/postgres.sh instead.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
external_pid_file = '$dir/postgres.pid'
max_connections = 200
shared_buffers = 128MB
wal_level = logical
max_replication_slots = 64
max_wal_senders = 64
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  as_svc_user postgres grep -qx "include = 'stack.conf'" "$dir/data/postgresql.conf" \
    || printf "\ninclude = 'stack.conf'\n" | as_svc_user postgres tee -a "$dir/data/postgresql.conf" >/dev/null
  as_svc_user postgres tee "$dir/data/pg_hba.conf" >/dev/null <<'EOF'
# Written by scripts/stack on every start; edit scripts/stack.d/postgres.sh instead.
# TYPE  DATABASE     USER      ADDRESS        METHOD
local   all          postgres                 peer
local   replication  postgres                 peer
local   all          all                      scram-sha-256
local   replication  all                      scram-sha-256
host    all          all       127.0.0.1/32   scram-sha-256
host    replication  all       127.0.0.1/32   scram-sha-256
EOF
}

# Roles, database, grants and publication: created when missing, on every start.
_pg_bootstrap() {
  _pg_psql postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdc_admin') THEN
    CREATE ROLE cdc_admin LOGIN SUPERUSER PASSWORD 'cdc_admin';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdc_agent') THEN
    CREATE ROLE cdc_agent LOGIN REPLICATION PASSWORD 'cdc_agent';
  END IF;
END $$;
SELECT 'CREATE DATABASE demo OWNER cdc_admin'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'demo') \gexec
SQL
  _pg_psql demo <<'SQL'
GRANT CONNECT ON DATABASE demo TO cdc_agent;
GRANT USAGE ON SCHEMA public TO cdc_agent;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO cdc_agent;
ALTER DEFAULT PRIVILEGES FOR ROLE cdc_admin IN SCHEMA public GRANT SELECT ON TABLES TO cdc_agent;
SET ROLE cdc_admin;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'cdc_demo') THEN
    CREATE PUBLICATION cdc_demo FOR ALL TABLES;
  END IF;
END $$;
RESET ROLE;
SQL
}

postgres_start() {
  local dir pid out
  stack_state_dir dir postgres postgres
  if pid=$(_pg_pid); then
    log "postgres: already running (pid $pid)"
  else
    if ! as_svc_user postgres test -s "$dir/data/PG_VERSION"; then
      log "postgres: initdb in $dir/data"
      out=$(as_svc_user postgres "$PG_STACK_BIN/initdb" -D "$dir/data" -U postgres -E UTF8 \
        --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 2>&1) \
        || { printf '%s\n' "$out" | tail -n 20 >&2; die "postgres: initdb failed"; }
    fi
    _pg_write_config "$dir"
    ! port_open "$PG_STACK_PORT" || die "postgres: 127.0.0.1:$PG_STACK_PORT is taken by another process"
    log "postgres: starting on 127.0.0.1:$PG_STACK_PORT"
    as_svc_user postgres "$PG_STACK_BIN/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 60 >/dev/null \
      || { as_root tail -n 20 "$dir/postgres.log" >&2 || true; die "postgres: did not start (see $dir/postgres.log)"; }
  fi
  wait_for 60 "postgres" "$PG_STACK_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_STACK_PORT"
  _pg_bootstrap
}

postgres_stop() {
  local dir pid
  dir=$(stack_state_path postgres)
  pid=$(_pg_pid) || return 0
  log "postgres: stopping (pid $pid)"
  as_svc_user postgres "$PG_STACK_BIN/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 >/dev/null \
    || as_svc_user postgres "$PG_STACK_BIN/pg_ctl" stop -D "$dir/data" -m immediate -w -t 30 >/dev/null \
    || die "postgres: pid $pid did not stop"
}

postgres_status() {
  local pid
  if pid=$(_pg_pid); then
    echo "postgres: running (pid $pid) on 127.0.0.1:$PG_STACK_PORT"
  else
    echo "postgres: stopped"
    return 1
  fi
}

postgres_env() {
  cat <<EOF
export PG_HOST=127.0.0.1
export PG_PORT=$PG_STACK_PORT
export PG_URL=postgres://cdc_admin:cdc_admin@127.0.0.1:$PG_STACK_PORT/demo
export PG_AGENT_URL=postgres://cdc_agent:cdc_agent@127.0.0.1:$PG_STACK_PORT/demo
export PG_BIN_DIR=$PG_STACK_BIN
export PG_SUPERUSER=cdc_admin
export PG_SUPERPASSWORD=cdc_admin
EOF
}
