#!/usr/bin/env bash
# apply-bench: `cdc-agent apply` into PostgreSQL against COPY of the same rows, same run.
#
#   scripts/stack up; eval "$(scripts/stack env)"; cargo build --release
#   bench/apply/run.sh [--rows N] [--label TEXT] [--no-append] [--apply-setting K=V]...
#       [--kafka-property K=V]...   (AGENT=path picks another binary than target/release's)
#
# 1. A source database with table t (the snapshot bench's shape: id bigint PK, grp int,
#    amount numeric(12,2), name text, note text NULL, payload text, ver bigint; ~250 bytes a
#    row) filled with N rows; the agent (release build, `[snapshot] mode = "initial_only"`)
#    produces them into the table topic and exits. Not timed: it only prepares the topic.
# 2. The ceiling: the same rows as CSV (`\copy … TO`), then `\copy t_copy FROM` that file into
#    an empty table of the same definition (primary key included) in the target database,
#    timed by the client, twice (a fresh table each time); the better run counts.
# 3. `cdc-agent apply` (release build, defaults but `[http]`) from the topic's beginning into
#    an empty target database: process start → `/metrics` counts N applied upserts. The
#    target is then checked against the source (count and a hash of every row's text).
# 4. Prints the table, appends it to bench/RESULTS.md (unless --no-append), drops the
#    databases and the slot, deletes the bench's topics and subjects.
#
# Goal (issue 15): apply rows/s ≥ 0.5 of COPY rows/s.
set -euo pipefail

ROWS=1000000
LABEL=""
APPEND=1
APPLY_SETTINGS=()
KAFKA_PROPERTIES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --label) LABEL="$2"; shift 2 ;;
        --no-append) APPEND=0; shift ;;
        --apply-setting) APPLY_SETTINGS+=("$2"); shift 2 ;;
        --kafka-property) KAFKA_PROPERTIES+=("$2"); shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
AGENT="${AGENT:-$REPO/target/release/cdc-agent}"
: "${PG_URL:?run: eval \"\$(scripts/stack env)\"}" "${KAFKA_BOOTSTRAP:?}" "${SCHEMA_REGISTRY_URL:?}"
[ -x "$AGENT" ] || { echo "no agent at $AGENT: cargo build --release" >&2; exit 2; }

RUN="apply_bench_$$"
WORK="$(mktemp -d)"
PG_BASE="${PG_URL%/*}"
SRC_URL="$PG_BASE/${RUN}_src"
DST_URL="$PG_BASE/${RUN}_dst"
APPLY_PID=""

cleanup() {
    [ -n "$APPLY_PID" ] && kill "$APPLY_PID" 2>/dev/null && wait "$APPLY_PID" 2>/dev/null || true
    psql -q "$PG_BASE/postgres" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$RUN'" >/dev/null 2>&1 || true
    psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS ${RUN}_src WITH (FORCE)" >/dev/null 2>&1 || true
    psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS ${RUN}_dst WITH (FORCE)" >/dev/null 2>&1 || true
    if [ -n "${CDC_CONFLUENT_PYTHON:-}" ]; then
        "$CDC_CONFLUENT_PYTHON" - "$KAFKA_BOOTSTRAP" "$RUN" <<'PY' >/dev/null 2>&1 || true
import sys
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1]})
ts = [t for t in a.list_topics(timeout=10).topics if t.startswith(sys.argv[2])]
if ts:
    for f in a.delete_topics(ts).values():
        f.result()
PY
    fi
    for s in $(curl -fsS "$SCHEMA_REGISTRY_URL/subjects" 2>/dev/null | tr -d '[]"' | tr ',' '\n' | grep "^$RUN" || true); do
        curl -fsS -X DELETE "$SCHEMA_REGISTRY_URL/subjects/$s" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

LOAD_START="$(load)"
echo "== source: $ROWS rows"
DDL="(id bigint PRIMARY KEY, grp int NOT NULL, amount numeric(12,2) NOT NULL, name text NOT NULL,
      note text, payload text NOT NULL, ver bigint NOT NULL DEFAULT 0)"
psql -q "$PG_BASE/postgres" -c "CREATE DATABASE ${RUN}_src" -c "CREATE DATABASE ${RUN}_dst"
psql -q "$SRC_URL" <<SQL
SET synchronous_commit = off;
CREATE TABLE t $DDL;
INSERT INTO t SELECT g, g % 1000, (g % 100000) / 100.0, md5(g::text),
    CASE WHEN g % 7 = 0 THEN NULL ELSE 'note ' || g END,
    repeat(md5((g * 31)::text), 4), g % 5 FROM generate_series(1, $ROWS) g;
CREATE PUBLICATION ${RUN} FOR TABLE t;
GRANT USAGE ON SCHEMA public TO cdc_agent;
GRANT SELECT ON t TO cdc_agent;
VACUUM ANALYZE t;
SQL

echo "== agent: produce the table topic (not timed)"
mkdir -p "$WORK/agent/connectors"
cat >"$WORK/agent/cdc-agent.toml" <<TOML
[agent]
state_dir = "$WORK/agent/state"
[kafka]
bootstrap_servers = "$KAFKA_BOOTSTRAP"
[schema_registry]
url = "$SCHEMA_REGISTRY_URL"
[event_store]
topic = "$RUN.events"
[http]
enabled = false
TOML
cat >"$WORK/agent/connectors/src.toml" <<TOML
name = "$RUN"
kind = "postgres"
topic_prefix = "$RUN"
host = "${PG_HOST:-127.0.0.1}"
port = ${PG_PORT:-5432}
user = "cdc_agent"
password = "cdc_agent"
database = "${RUN}_src"
[postgres]
slot_name = "$RUN"
publication = "$RUN"
[snapshot]
mode = "initial_only"
TOML
T0=$(now)
RUST_LOG=warn "$AGENT" run --config "$WORK/agent/cdc-agent.toml" >"$WORK/agent.log" 2>&1
echo "   produced in $(secs "$T0" "$(now)") s"

echo "== ceiling: COPY of the same rows"
psql -q "$SRC_URL" -c "\\copy (SELECT * FROM t ORDER BY id) TO '$WORK/t.csv' CSV"
COPY_RUNS=()
for i in 1 2; do
    psql -q "$DST_URL" -c "DROP TABLE IF EXISTS t_copy" -c "CREATE TABLE t_copy $DDL"
    T0=$(now)
    psql -q "$DST_URL" -c "\\copy t_copy FROM '$WORK/t.csv' CSV"
    COPY_RUNS+=("$(secs "$T0" "$(now)")")
done
psql -q "$DST_URL" -c "DROP TABLE t_copy"
COPY_BEST=$(printf '%s\n' "${COPY_RUNS[@]}" | sort -n | head -1)
echo "   COPY runs: ${COPY_RUNS[*]} s"

echo "== apply"
{
    echo "[kafka]"
    echo "bootstrap_servers = \"$KAFKA_BOOTSTRAP\""
    echo "[schema_registry]"
    echo "url = \"$SCHEMA_REGISTRY_URL\""
    echo "[source]"
    echo "topics = [\"$RUN.public.t\"]"
    echo "[target]"
    echo "kind = \"postgres\""
    echo "url = \"$DST_URL\""
    echo "[apply]"
    echo "name = \"bench\""
    for kv in "${APPLY_SETTINGS[@]}"; do echo "${kv%%=*} = ${kv#*=}"; done
    echo "[http]"
    echo "listen = \"127.0.0.1:0\""
    if [ ${#KAFKA_PROPERTIES[@]} -gt 0 ]; then
        echo "[kafka.properties]"
        for kv in "${KAFKA_PROPERTIES[@]}"; do echo "\"${kv%%=*}\" = \"${kv#*=}\""; done
    fi
} >"$WORK/apply.toml"
T0=$(now)
RUST_LOG="${APPLY_LOG:-info}" "$AGENT" apply --config "$WORK/apply.toml" >"$WORK/apply.log" 2>&1 &
APPLY_PID=$!
ADDR=""
while [ -z "$ADDR" ]; do
    kill -0 "$APPLY_PID" 2>/dev/null || { cat "$WORK/apply.log"; exit 1; }
    ADDR=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/apply.log" | grep -o 'addr=[0-9.:]*' | head -1 | cut -d= -f2 || true)
    sleep 0.05
done
applied() {
    curl -fsS "http://$ADDR/metrics" 2>/dev/null |
        awk '/^cdc_agent_apply_events_total\{.*op="upsert"/ {s += $NF} END {printf "%d", s}'
}
while [ "$(applied)" -lt "$ROWS" ]; do
    kill -0 "$APPLY_PID" 2>/dev/null || { cat "$WORK/apply.log"; exit 1; }
    sleep 0.1
done
APPLY_S=$(secs "$T0" "$(now)")
read -r UT ST < <(awk '{print $14, $15}' "/proc/$APPLY_PID/stat")
APPLY_CPU=$(echo "($UT + $ST) / $(getconf CLK_TCK)" | bc -l | xargs printf '%.1f')
APPLY_RSS=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$APPLY_PID/status")
BATCHES=$(curl -fsS "http://$ADDR/metrics" | awk '/^cdc_agent_apply_batches_total/ {print $NF}')
kill "$APPLY_PID"; wait "$APPLY_PID" || true; APPLY_PID=""
[ -n "${KEEP_LOG:-}" ] && cp "$WORK/apply.log" "$KEEP_LOG"

echo "== check"
CHECK="SELECT count(*) || ' ' || sum(hashtext(t::text)::bigint) FROM t"
WANT=$(psql -qtA "$SRC_URL" -c "$CHECK")
HAVE=$(psql -qtA "$DST_URL" -c "$CHECK")
[ "$WANT" = "$HAVE" ] && SAME="yes" || SAME="**no** ($HAVE vs $WANT)"
LOAD_END="$(load)"

rate() { echo "$ROWS / $1" | bc -l | xargs printf '%.0f'; }
COPY_RATE=$(rate "$COPY_BEST")
APPLY_RATE=$(rate "$APPLY_S")
RATIO=$(echo "$APPLY_RATE / $COPY_RATE" | bc -l | xargs printf '%.2f')
GOAL=$(echo "$RATIO >= 0.5" | bc -l | sed 's/1/met/; s/0/**missed**/')
COMMIT="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
CPU_MODEL="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
SECTION="$(cat <<MD
## $(date -u '+%Y-%m-%d %H:%M UTC') — apply${LABEL:+ ($LABEL)}

- machine: \`$(uname -m)\`, $CPU_MODEL, $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo) GiB RAM; PostgreSQL $(psql -qtA "$PG_BASE/postgres" -c 'SHOW server_version' | cut -d' ' -f1), Kafka on loopback
- cdc-agent \`$AGENT\` (tree at $COMMIT), \`apply\` with default settings${APPLY_SETTINGS:+ but ${APPLY_SETTINGS[*]}}${KAFKA_PROPERTIES:+ and librdkafka ${KAFKA_PROPERTIES[*]}} into an empty database of the same server
- load average (1/5/15 min): $LOAD_START at the start, $LOAD_END at the end
- ceiling = \`psql \\copy t_copy FROM\` a CSV of the same rows into an empty table with the same definition (primary key), best of 2; apply = process start → \`/metrics\` counts every row applied (one read_committed consumer, batches in one transaction each with the offsets)

| rows | COPY s (runs) | COPY rows/s | apply s | apply rows/s | ratio | batches | apply CPU s | apply peak RSS MiB | target = source |
|---|---|---|---|---|---|---|---|---|---|
| $ROWS | ${COPY_RUNS[*]} | $COPY_RATE | $APPLY_S | $APPLY_RATE | $RATIO | $BATCHES | $APPLY_CPU | $APPLY_RSS | $SAME |

Goal: apply rows/s / COPY rows/s ≥ 0.5: $RATIO, $GOAL.
MD
)"
echo
echo "$SECTION"
if [ "$APPEND" = 1 ]; then
    printf '\n%s\n' "$SECTION" >>"$REPO/bench/RESULTS.md"
    echo "(appended to bench/RESULTS.md)"
fi
