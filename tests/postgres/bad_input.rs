//! Bad input on the PostgreSQL side: the agent exits (code 1, or 3 when another agent owns
//! the slot) and its log holds one clear error that names the fix, instead of retrying
//! forever or failing with a bare SQLSTATE.
//!
//! Each test uses its own database (or, for `wal_level`, its own throwaway cluster) and
//! cleans up the roles and slots it made, also when it fails.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cdc_agent::ops::exit;
use cdc_agent::source::postgres::replication::{ReplicationClient, ReplicationConfig};
use cdc_agent::source::postgres::wire::Lsn;
use common::agent::{read_topic, Agent, AgentConfig};
use common::ports::free_port;
use common::{
    pg_connect, pg_server_version_num, stack_env, unique_name, FreshPgDb, PG_LOGICAL_MESSAGES,
};

/// Long enough for Kafka topic creation on a cold broker; the agent usually exits in seconds.
const WAIT: Duration = Duration::from_secs(90);

/// Waits for the agent to exit with `code` and checks it failed once, definitely, saying
/// `needles`.
pub(crate) fn assert_exits_with(agent: &mut Agent, code: u8, needles: &[&str]) -> String {
    let exit = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(exit, Some(i32::from(code)), "exit code; log:\n{log}");
    for needle in needles {
        assert!(log.contains(needle), "log lacks `{needle}`:\n{log}");
    }
    // Definite, not transient: no retry loop of ours before giving up. librdkafka's own
    // "retrying" lines (a transaction coordinator still loading on a fresh broker) are not
    // the agent retrying the error, so only the supervisor's and the slot wait's lines count.
    assert!(
        !log.contains("source failed, retrying") && !log.contains("still active; retrying"),
        "the error was retried:\n{log}"
    );
    assert_eq!(
        log.matches("source failed").count(),
        1,
        "one error, logged once:\n{log}"
    );
    log
}

/// Starts `cdc-agent run` with the stack's Kafka and registry and a PostgreSQL source on
/// `port` (the common [`Agent::start`] always uses the stack's PostgreSQL).
fn start_agent_on_port(cfg: &AgentConfig, port: u16) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("connectors")).unwrap();
    std::fs::write(
        dir.path().join("cdc-agent.toml"),
        format!(
            "[agent]\nstate_dir = \"{state}\"\n[kafka]\nbootstrap_servers = \"{kafka}\"\n\
             [schema_registry]\nurl = \"{registry}\"\n[event_store]\ntopic = \"{store}\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n",
            state = dir.path().join("state").display(),
            kafka = stack_env("KAFKA_BOOTSTRAP"),
            registry = stack_env("SCHEMA_REGISTRY_URL"),
            store = cfg.event_store_topic,
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("connectors").join("source.toml"),
        format!(
            "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{prefix}\"\n\
             host = \"127.0.0.1\"\nport = {port}\nuser = \"{user}\"\npassword = \"{pw}\"\n\
             database = \"{db}\"\n{extra}\n",
            name = cfg.source_name,
            prefix = cfg.topic_prefix,
            user = cfg.user,
            pw = cfg.password,
            db = cfg.database,
            extra = cfg.extra_source_toml,
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let child = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
        .args(["run", "--config"])
        .arg(dir.path().join("cdc-agent.toml"))
        .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Agent {
        child,
        dir,
        log,
        env: Vec::new(),
    }
}

/// A PostgreSQL cluster of its own (initdb in a temporary folder, loopback only, a free
/// port), for settings the shared stack must not change. Stopped and deleted on drop, also
/// when the test panics.
struct ThrowawayCluster {
    dir: tempfile::TempDir,
    port: u16,
    superuser_password: String,
}

impl ThrowawayCluster {
    /// Creates and starts a cluster with `settings` (`-c name=value` server options) and a
    /// `cdc_agent` role (LOGIN REPLICATION, password `cdc_agent`) like the stack's.
    async fn start(settings: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cdc-pg-")
            .tempdir()
            .unwrap();
        let superuser_password = unique_name("pw");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &superuser_password).unwrap();
        if running_as_root() {
            // PostgreSQL refuses to run as root; the folder must belong to the OS user
            // postgres, as the stack's does (scripts/stack.d/statedir.sh).
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown the throwaway cluster's folder");
        }
        let mut me = ThrowawayCluster {
            port: free_port(),
            dir,
            superuser_password,
        };
        let data = me.data();
        as_postgres(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C.UTF-8".as_ref(),
                "--auth-local=peer".as_ref(),
                "--auth-host=scram-sha-256".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
            ],
        );
        let log = me.dir.path().join("postgres.log");
        // Another process may take the probed port before the server binds it: try a few.
        let mut started = false;
        for _ in 0..3 {
            let mut options = format!(
                "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={}",
                me.port,
                me.dir.path().display()
            );
            for s in settings {
                options.push_str(" -c ");
                options.push_str(s);
            }
            started = as_postgres_status(
                "pg_ctl",
                &[
                    "start".as_ref(),
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "-o".as_ref(),
                    options.as_ref(),
                ],
            );
            if started {
                break;
            }
            me.port = free_port();
        }
        assert!(
            started,
            "throwaway postgres did not start; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let admin = pg_connect(&me.url("postgres")).await;
        admin
            .batch_execute("CREATE ROLE cdc_agent LOGIN REPLICATION PASSWORD 'cdc_agent'")
            .await
            .unwrap();
        me
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Superuser URL of `database`.
    fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{database}",
            self.superuser_password, self.port
        )
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            // Immediate: nothing in it is worth a checkpoint.
            as_postgres_status(
                "pg_ctl",
                &[
                    "stop".as_ref(),
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                ],
            );
        }
        // The TempDir removes the folder (root may delete postgres-owned files).
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary as the OS user postgres when we are root (as
/// scripts/stack.d/statedir.sh does), otherwise as ourselves; from `/`, which that user can
/// always enter.
fn postgres_command(program: &str, args: &[&std::ffi::OsStr]) -> Command {
    let bin = Path::new(&stack_env("PG_BIN_DIR")).join(program);
    let mut cmd = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).current_dir("/");
    cmd
}

fn as_postgres(program: &str, args: &[&std::ffi::OsStr]) {
    let out = postgres_command(program, args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn as_postgres_status(program: &str, args: &[&std::ffi::OsStr]) -> bool {
    postgres_command(program, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A role of the shared stack made for one test, dropped with it. Declare it *before* the
/// [`FreshPgDb`] it gets privileges in: locals drop in reverse order, and a role cannot be
/// dropped while a database still grants it something.
struct TempRole {
    name: String,
}

impl TempRole {
    async fn create(what: &str, attributes: &str) -> Self {
        let name = unique_name(what);
        let admin = pg_connect(&stack_env("PG_URL")).await;
        admin
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN {attributes} PASSWORD '{name}'"
            ))
            .await
            .unwrap();
        TempRole { name }
    }
}

impl Drop for TempRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Same reason as FreshPgDb's drop: no blocking inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let admin = pg_connect(&stack_env("PG_URL")).await;
                let _ = admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                        &[&name],
                    )
                    .await;
                let _ = admin
                    .batch_execute(&format!("DROP ROLE IF EXISTS {name}"))
                    .await;
            });
        })
        .join();
    }
}

#[tokio::test]
async fn wal_level_replica_names_alter_system_set_wal_level_logical() {
    let cluster = ThrowawayCluster::start(&["wal_level=replica"]).await;
    let name = unique_name("pgwal");
    let cfg = AgentConfig::postgres(&name, "postgres");
    let mut agent = start_agent_on_port(&cfg, cluster.port);
    assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &["wal_level", "ALTER SYSTEM SET wal_level = 'logical'"],
    );
    drop(agent);
    drop(cluster);
}

#[tokio::test]
async fn a_role_without_replication_names_alter_role_replication() {
    let role = TempRole::create("norepl", "").await;
    let db = FreshPgDb::create("pgnorepl").await;
    let name = unique_name("pgnorepl");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.user = role.name.clone();
    cfg.password = role.name.clone();
    let mut agent = Agent::start(&cfg);
    assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &[&format!("ALTER ROLE {} REPLICATION", role.name)],
    );
}

#[tokio::test]
async fn a_role_without_select_on_a_published_table_names_the_grant() {
    let role = TempRole::create("nosel", "REPLICATION").await;
    let db = FreshPgDb::create("pgnosel").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text);
             INSERT INTO items VALUES (1, 'one');
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name("pgnosel");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.user = role.name.clone();
    cfg.password = role.name.clone();
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let mut agent = Agent::start(&cfg);
    assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &[
            &format!("grant SELECT on public.items to {}", role.name),
            &format!("GRANT SELECT ON \"public\".\"items\" TO \"{}\";", role.name),
        ],
    );
    // The slot the agent created before the snapshot failed goes with the database.
}

#[tokio::test]
async fn a_publication_for_all_tables_without_superuser_names_the_statement_to_run() {
    let db = FreshPgDb::create("pgnopub").await;
    let name = unique_name("pgnopub");
    // The stack's cdc_agent has REPLICATION but is no superuser; no publication exists and
    // no tables are configured, so the agent tries FOR ALL TABLES.
    let cfg = AgentConfig::postgres(&name, &db.name);
    let mut agent = Agent::start(&cfg);
    assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &[
            &format!("CREATE PUBLICATION \"cdc_{name}\" FOR ALL TABLES"),
            "superuser",
        ],
    );
}

#[tokio::test]
async fn a_slot_active_in_another_process_names_the_slot_pid_and_pg_terminate_backend() {
    let db = FreshPgDb::create("pgbusy").await;
    let admin = pg_connect(&db.url).await;
    let name = unique_name("pgbusy");
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    // Its own statement: a slot cannot be created in a transaction that has written.
    admin
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&name],
        )
        .await
        .unwrap();
    // Another consumer streams from the slot: a second replication connection of our own
    // client, as the superuser.
    let other = ReplicationClient::connect(&ReplicationConfig::from_url(&db.url).unwrap())
        .await
        .unwrap();
    let pid = other.backend_pid().expect("backend pid");
    let _stream = other
        .start_replication(
            &name,
            Lsn(0),
            &[("proto_version", "1"), ("publication_names", "\"cdc_pub\"")],
        )
        .await
        .unwrap();
    let active: Option<i32> = admin
        .query_one(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(active, Some(pid));

    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let mut agent = Agent::start(&cfg);
    // Not a plain failure: another agent owns the source, and restarting would only fight
    // it, so the agent exits with its own code (systemd's RestartPreventExitStatus).
    assert_exits_with(
        &mut agent,
        exit::SOURCE_TAKEN,
        &[
            &format!("`{name}`"),
            &format!("pid {pid}"),
            &format!("pg_terminate_backend({pid})"),
        ],
    );
    // The slot is not ours to keep: FreshPgDb's drop ends the other stream and drops it.
}

#[tokio::test]
async fn a_table_without_a_primary_key_stops_its_snapshot_naming_the_fix() {
    let db = FreshPgDb::create("pgnopk").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE logs (at timestamptz NOT NULL, line text);
             ALTER TABLE logs REPLICA IDENTITY FULL;
             INSERT INTO logs VALUES (now(), 'one');
             CREATE PUBLICATION cdc_pub FOR TABLE logs;",
        )
        .await
        .unwrap();
    let name = unique_name("pgnopk");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let mut agent = Agent::start(&cfg);
    if pg_server_version_num(&admin).await < PG_LOGICAL_MESSAGES {
        // Before 14 the snapshot is one COPY per table under the slot's exported snapshot,
        // which needs no key (docs/snapshots.md): the row is read and streaming goes on.
        let topic = format!("{name}.public.logs");
        let recs = read_topic(&topic, WAIT, |r| !r.is_empty());
        assert_eq!(recs.len(), 1, "agent log:\n{}", agent.log());
        agent.wait_streaming(WAIT);
        return;
    }
    // Chunks are read and matched by key: without one the table cannot be chunked, and the
    // operator is told the ways out rather than getting a silently partial snapshot.
    assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &[
            "snapshot of public.logs: the table has no primary key",
            "ALTER TABLE \"public\".\"logs\" ADD PRIMARY KEY",
            "or set [snapshot] mode",
        ],
    );
}
