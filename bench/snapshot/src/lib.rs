//! What `snapshot-bench` (src/main.rs) and `snapshot-suite` (src/bin/suite.rs) share: the
//! stack's addresses, the snapshot table (DDL, fast server-side fill, a per-row hash read back
//! from the database), an agent process that can be killed with SIGKILL and started again on
//! the same configuration, its `/metrics`, and the Kafka side (reading a topic to its end with
//! `read_committed`, decoding table-topic values through the registry).
//!
//! The table (the same columns on both databases):
//!
//! ```text
//! t (id bigint PK, grp int, amount numeric(12,2), name text(32), note text NULL,
//!    payload text(128), ver bigint)          ~250 bytes a row on disk in PostgreSQL
//! ```
//!
//! A row is compared between the database and Kafka through one canonical line,
//! `id|grp|amount×100|name|note or ~|payload|ver`, hashed: the database side selects the
//! amount as its unscaled integer, the Kafka side takes the Avro decimal's unscaled value.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apache_avro::types::Value;
use e2e_common::{consumer_error_is_fatal, run_id, var};
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

pub use e2e_common::{BoxError, Result};

/// The PostgreSQL publication the agent reads.
pub const PUBLICATION: &str = "snap_pub";
/// Rows written per fill statement.
const FILL_BATCH: u64 = 1_000_000;

// ---------------------------------------------------------------------------------------
// the stack

/// `scheme://user:password@host:port/db` of `scripts/stack env`.
#[derive(Debug, Clone)]
pub struct Url {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url> {
        let rest = s.split_once("://").ok_or_else(|| format!("not a URL: {s}"))?.1;
        let (auth, hostpart) = rest.split_once('@').ok_or_else(|| format!("no user in {s}"))?;
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let hostport = hostpart.split('/').next().unwrap_or("");
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| format!("no port in {s}"))?;
        Ok(Url {
            user: user.into(),
            password: password.into(),
            host: host.into(),
            port: port.parse()?,
        })
    }
}

/// Where the stack is (`eval "$(scripts/stack env)"`).
#[derive(Debug, Clone)]
pub struct Env {
    pub pg_admin: Url,
    pub pg_agent: Url,
    pub pg_bin_dir: PathBuf,
    pub my_admin: Url,
    pub my_agent: Url,
    pub kafka: String,
    pub registry: String,
}

impl Env {
    pub fn from_env() -> Result<Env> {
        Ok(Env {
            pg_admin: Url::parse(&var("PG_URL")?)?,
            pg_agent: Url::parse(&var("PG_AGENT_URL")?)?,
            pg_bin_dir: std::env::var("PG_BIN_DIR")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
                .into(),
            my_admin: Url::parse(&var("MYSQL_URL")?)?,
            my_agent: Url::parse(&var("MYSQL_AGENT_URL")?)?,
            kafka: var("KAFKA_BOOTSTRAP")?,
            registry: var("SCHEMA_REGISTRY_URL")?,
        })
    }

    pub fn pg_url(&self, db: &str) -> String {
        let a = &self.pg_admin;
        format!("postgres://{}:{}@{}:{}/{db}", a.user, a.password, a.host, a.port)
    }

    pub fn my_opts(&self, db: Option<&str>) -> mysql_async::Opts {
        let a = &self.my_admin;
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(a.host.clone())
            .tcp_port(a.port)
            .user(Some(a.user.clone()))
            .pass(Some(a.password.clone()))
            .db_name(db.map(str::to_owned))
            .into()
    }
}

pub async fn pg_connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The two databases a snapshot is taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Pg,
    My,
}

impl Db {
    pub fn short(self) -> &'static str {
        match self {
            Db::Pg => "pg",
            Db::My => "my",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Db::Pg => "PostgreSQL",
            Db::My => "MariaDB",
        }
    }
    /// `--dbs pg,my`.
    pub fn parse_list(s: &str) -> Result<Vec<Db>> {
        s.split(',')
            .map(|d| match d {
                "pg" | "postgres" => Ok(Db::Pg),
                "my" | "mysql" | "mariadb" => Ok(Db::My),
                other => Err(format!("unknown database {other} (pg, my)").into()),
            })
            .collect()
    }
    /// The table topic of source `name` (topic prefix = name) on database `db`.
    pub fn table_topic(self, name: &str, db: &str) -> String {
        match self {
            Db::Pg => format!("{name}.public.t"),
            Db::My => format!("{name}.{db}.t"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// the table

/// What was made: rows and sizes.
#[derive(Debug, Clone, Default)]
pub struct TableInfo {
    pub rows: u64,
    /// Heap (PostgreSQL `pg_table_size`) / InnoDB data length, bytes.
    pub table_bytes: u64,
    /// With indexes (PostgreSQL `pg_total_relation_size`; InnoDB data + index length).
    pub total_bytes: u64,
    pub fill_secs: f64,
    pub server_version: String,
}

impl TableInfo {
    pub fn describe(&self) -> String {
        format!(
            "{} rows, table {:.2} GiB ({:.2} GiB with indexes), filled in {:.0} s",
            self.rows,
            self.table_bytes as f64 / 1073741824.0,
            self.total_bytes as f64 / 1073741824.0,
            self.fill_secs
        )
    }
}

/// Creates database `db` with table `t` of `rows` rows (PostgreSQL: and the publication, the
/// agent's grants; `VACUUM ANALYZE` so that neither reader pays for hint bits and the row
/// estimate is right).
pub async fn pg_create(env: &Env, db: &str, rows: u64) -> Result<TableInfo> {
    let admin = pg_connect(&env.pg_url("postgres")).await?;
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await?;
    let c = pg_connect(&env.pg_url(db)).await?;
    c.batch_execute(&format!(
        "CREATE TABLE t (id bigint PRIMARY KEY, grp int NOT NULL, amount numeric(12,2) NOT NULL,
                         name text NOT NULL, note text, payload text NOT NULL, ver bigint NOT NULL DEFAULT 0);
         CREATE PUBLICATION {PUBLICATION} FOR TABLE t;
         GRANT USAGE ON SCHEMA public TO {agent};
         GRANT SELECT ON t TO {agent};
         SET synchronous_commit = off;",
        agent = env.pg_agent.user
    ))
    .await?;
    let start = Instant::now();
    let mut from = 1;
    while from <= rows {
        let to = (from + FILL_BATCH - 1).min(rows);
        c.batch_execute(&format!(
            "INSERT INTO t SELECT g, g % 1000, (g % 100000) / 100.0, md5(g::text),
                    CASE WHEN g % 7 = 0 THEN NULL ELSE 'note ' || g END,
                    repeat(md5((g * 31)::text), 4), 0
             FROM generate_series({from}, {to}) g"
        ))
        .await?;
        eprint!("\r  filled {to} of {rows} rows");
        from = to + 1;
    }
    eprintln!();
    c.batch_execute("VACUUM ANALYZE t").await?;
    let fill_secs = start.elapsed().as_secs_f64();
    let r = c
        .query_one(
            "SELECT pg_table_size('t')::bigint, pg_total_relation_size('t')::bigint, current_setting('server_version')",
            &[],
        )
        .await?;
    Ok(TableInfo {
        rows,
        table_bytes: r.get::<_, i64>(0) as u64,
        total_bytes: r.get::<_, i64>(1) as u64,
        fill_secs,
        server_version: r.get(2),
    })
}

/// Drops the slots named `slot_prefix…` and the database.
pub async fn pg_drop(env: &Env, db: &str, slot_prefix: &str) {
    let Ok(admin) = pg_connect(&env.pg_url("postgres")).await else { return };
    let like = format!("{slot_prefix}%");
    for _ in 0..50 {
        let _ = admin
            .execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
                 WHERE slot_name LIKE $1 AND active_pid IS NOT NULL",
                &[&like],
            )
            .await;
        let slots = admin
            .query("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1", &[&like])
            .await
            .unwrap_or_default();
        if slots.is_empty() {
            break;
        }
        for row in slots {
            let _ = admin
                .execute("SELECT pg_drop_replication_slot($1)", &[&row.get::<_, String>(0)])
                .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
}

/// Creates database `db` with table `t` of `rows` rows, filled from the sequence engine in
/// batches without binary logging (the agent reads the table, not the load's binlog; nothing
/// fills the disk), and grants the agent SELECT on it and INSERT on the signal table.
pub async fn my_create(env: &Env, db: &str, rows: u64) -> Result<TableInfo> {
    let mut admin = mysql_async::Conn::new(env.my_opts(None)).await?;
    admin.query_drop(format!("CREATE DATABASE `{db}`")).await?;
    admin
        .query_drop(format!("GRANT SELECT ON `{db}`.* TO '{}'@'%'", env.my_agent.user))
        .await?;
    // The snapshot's signal table, as docs/mariadb-setup.md has a DBA make it.
    admin
        .query_drop(format!(
            "CREATE TABLE `{db}`.cdc_signal (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT NULL, data TEXT)"
        ))
        .await?;
    admin
        .query_drop(format!(
            "GRANT INSERT, SELECT ON `{db}`.cdc_signal TO '{}'@'%'",
            env.my_agent.user
        ))
        .await?;
    let mut c = mysql_async::Conn::new(env.my_opts(Some(db))).await?;
    c.query_drop(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, grp INT NOT NULL, amount DECIMAL(12,2) NOT NULL,
                         name VARCHAR(32) NOT NULL, note VARCHAR(64) NULL, payload VARCHAR(255) NOT NULL,
                         ver BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB",
    )
    .await?;
    if let Err(e) = c.query_drop("SET SESSION sql_log_bin = 0").await {
        eprintln!("  (cannot turn binary logging off for the load: {e}; the load goes to the binlog)");
    }
    let start = Instant::now();
    let mut from = 1;
    while from <= rows {
        let to = (from + FILL_BATCH / 2 - 1).min(rows);
        c.query_drop(format!(
            "INSERT INTO t SELECT seq, seq % 1000, (seq % 100000) / 100, md5(seq),
                    IF(seq % 7 = 0, NULL, CONCAT('note ', seq)), REPEAT(md5(seq * 31), 4), 0
             FROM seq_{from}_to_{to}"
        ))
        .await?;
        eprint!("\r  filled {to} of {rows} rows");
        from = to + 1;
    }
    eprintln!();
    c.query_drop("ANALYZE TABLE t").await?;
    let fill_secs = start.elapsed().as_secs_f64();
    let (data, index): (u64, u64) = c
        .query_first(format!(
            "SELECT data_length, index_length FROM information_schema.tables
             WHERE table_schema = '{db}' AND table_name = 't'"
        ))
        .await?
        .unwrap_or((0, 0));
    let version: Option<String> = c.query_first("SELECT version()").await?;
    Ok(TableInfo {
        rows,
        table_bytes: data,
        total_bytes: data + index,
        fill_secs,
        server_version: version.unwrap_or_default(),
    })
}

pub async fn my_drop(env: &Env, db: &str) {
    let Ok(mut admin) = mysql_async::Conn::new(env.my_opts(None)).await else { return };
    let _ = admin
        .query_drop(format!("REVOKE SELECT ON `{db}`.* FROM '{}'@'%'", env.my_agent.user))
        .await;
    let _ = admin.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).await;
}

/// The hash of one row's canonical line (see the module header).
pub fn row_hash(id: i64, grp: i64, amount_unscaled: i128, name: &str, note: Option<&str>, payload: &str, ver: i64) -> u64 {
    let mut h = DefaultHasher::new();
    (id, grp, amount_unscaled, name, note, payload, ver).hash(&mut h);
    // 0 means "no row" in the dense state vectors.
    h.finish().max(1)
}

/// Every row of `t` as `(id, hash)`, streamed from PostgreSQL with COPY.
pub async fn pg_table_hashes(env: &Env, db: &str, mut each: impl FnMut(i64, u64)) -> Result<u64> {
    let c = pg_connect(&env.pg_url(db)).await?;
    let stream = c
        .copy_out("COPY (SELECT id, grp, (amount * 100)::bigint, name, note, payload, ver FROM t) TO STDOUT")
        .await?;
    futures_util::pin_mut!(stream);
    let mut rest: Vec<u8> = Vec::new();
    let mut n = 0u64;
    let mut line = |l: &[u8]| -> Result<()> {
        let s = std::str::from_utf8(l)?;
        let f: Vec<&str> = s.split('\t').collect();
        if f.len() != 7 {
            return Err(format!("unexpected COPY line {s}").into());
        }
        let note = (f[4] != "\\N").then_some(f[4]);
        let id: i64 = f[0].parse()?;
        each(id, row_hash(id, f[1].parse()?, f[2].parse()?, f[3], note, f[5], f[6].parse()?));
        n += 1;
        Ok(())
    };
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk?);
        let mut start = 0;
        while let Some(i) = rest[start..].iter().position(|&b| b == b'\n') {
            line(&rest[start..start + i])?;
            start += i + 1;
        }
        rest.drain(..start);
    }
    Ok(n)
}

/// Every row of `t` as `(id, hash)`, streamed from MariaDB.
pub async fn my_table_hashes(env: &Env, db: &str, mut each: impl FnMut(i64, u64)) -> Result<u64> {
    let mut c = mysql_async::Conn::new(env.my_opts(Some(db))).await?;
    let mut res = c
        .query_iter("SELECT id, grp, CAST(amount * 100 AS SIGNED), name, note, payload, ver FROM t")
        .await?;
    let mut n = 0u64;
    let mut stream = res.stream::<(i64, i64, i64, String, Option<String>, String, i64)>().await?.ok_or("no result")?;
    while let Some(row) = stream.next().await {
        let (id, grp, amount, name, note, payload, ver) = row?;
        each(id, row_hash(id, grp, amount as i128, &name, note.as_deref(), &payload, ver));
        n += 1;
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------
// the agent

/// One agent configuration (a temp dir with the main file and one source file), run as a
/// process that can be started again after SIGKILL; every incarnation appends to one log
/// (`--log-format json`).
pub struct AgentProc {
    binary: PathBuf,
    dir: tempfile::TempDir,
    log: PathBuf,
    child: Option<Child>,
    pub metrics_port: u16,
    pub started: Instant,
    pub incarnations: u32,
}

/// The source file of an agent on database `db` of kind `kind`, named `name` (also its topic
/// prefix and slot); `mode` is the snapshot mode, `snapshot_extra` more `[snapshot]` lines.
pub fn source_toml(env: &Env, kind: Db, name: &str, db: &str, mode: &str, snapshot_extra: &[(String, String)]) -> String {
    let (agent, db_section) = match kind {
        Db::Pg => (
            &env.pg_agent,
            format!("[postgres]\nslot_name = \"{name}\"\npublication = \"{PUBLICATION}\"\nsslmode = \"disable\"\n"),
        ),
        Db::My => (&env.my_agent, format!("[mysql]\ndatabases = [\"{db}\"]\nssl_mode = \"disabled\"\n")),
    };
    let extra: String = snapshot_extra.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    format!(
        "name = \"{name}\"\nkind = \"{kind}\"\ntopic_prefix = \"{name}\"\n\
         host = \"{host}\"\nport = {port}\nuser = \"{user}\"\npassword = \"{pw}\"\n\
         database = \"{db}\"\ndelivery = \"exactly-once\"\n\
         [snapshot]\nmode = \"{mode}\"\n{extra}{db_section}",
        kind = match kind {
            Db::Pg => "postgres",
            Db::My => "mysql",
        },
        host = agent.host,
        port = agent.port,
        user = agent.user,
        pw = agent.password,
    )
}

impl AgentProc {
    /// Writes the configuration; the event store is `<name>.events`; `kafka_main` are extra
    /// `[kafka]` lines (values as TOML).
    pub fn new(binary: &Path, env: &Env, name: &str, source: &str, kafka_main: &[(String, String)]) -> Result<AgentProc> {
        let dir = tempfile::Builder::new().prefix("snapbench-").tempdir()?;
        std::fs::create_dir(dir.path().join("connectors"))?;
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let main: String = kafka_main.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        std::fs::write(
            dir.path().join("cdc-agent.toml"),
            format!(
                "[agent]\nstate_dir = \"{state}\"\n[kafka]\nbootstrap_servers = \"{kafka}\"\n{main}\
                 [schema_registry]\nurl = \"{registry}\"\n[event_store]\ntopic = \"{name}.events\"\n\
                 [http]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
                state = dir.path().join("state").display(),
                kafka = env.kafka,
                registry = env.registry,
            ),
        )?;
        std::fs::write(dir.path().join("connectors").join("source.toml"), source)?;
        let log = dir.path().join("agent.log");
        Ok(AgentProc {
            binary: binary.to_owned(),
            dir,
            log,
            child: None,
            metrics_port,
            started: Instant::now(),
            incarnations: 0,
        })
    }

    /// Starts (again), appending to the log.
    pub fn start(&mut self) -> Result<()> {
        let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        self.incarnations += 1;
        writeln!(out, "{{\"bench\":\"incarnation {} started\"}}", self.incarnations)?;
        let child = Command::new(&self.binary)
            .args(["--log-format", "json", "run", "--config"])
            .arg(self.dir.path().join("cdc-agent.toml"))
            .env(
                "RUST_LOG",
                std::env::var("E2E_AGENT_LOG").unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()?;
        self.child = Some(child);
        self.started = Instant::now();
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs; `Err` with the log tail when it exited.
    pub fn running(&mut self) -> Result<bool> {
        let Some(c) = self.child.as_mut() else { return Ok(false) };
        match c.try_wait()? {
            None => Ok(true),
            Some(s) if s.success() => Ok(false),
            Some(s) => Err(format!("agent exited ({s}); log tail:\n{}", self.log_tail(30)).into()),
        }
    }

    /// SIGKILL, and reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and waits for the drain (SIGKILL after two minutes); the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        e2e_common::tail(&self.log_text(), n)
    }

    /// Log lines containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log_text().lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
    }

    pub fn keep_log(&self, to: &Path) {
        let _ = std::fs::copy(&self.log, to);
    }

    /// `/metrics`, as `name{labels} value` lines (comments dropped).
    pub fn metrics(&self) -> Option<String> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "2", &format!("http://127.0.0.1:{}/metrics", self.metrics_port)])
            .output()
            .ok()?;
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
        })
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The sum of every series of metric `name` (`name` or `name{…}`) in a `/metrics` text.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for l in text.lines() {
        let Some(rest) = l.strip_prefix(name) else { continue };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// The value of a JSON log line's field (`--log-format json` flattens the fields).
pub fn log_field(line: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    match v.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Kafka

/// A read_committed consumer that reports partition ends.
pub fn committed_consumer(kafka: &str, group: &str) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", format!("{group}-{}", run_id()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.max.bytes", "52428800")
        .set("fetch.wait.max.ms", "10")
        .create()?)
}

/// Partitions of `topic`, when it exists.
pub fn partitions(c: &BaseConsumer, topic: &str) -> Option<Vec<i32>> {
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().iter().map(|p| p.id()).collect())
}

pub fn assign_from_start(c: &BaseConsumer, topic: &str, parts: &[i32]) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    Ok(())
}

/// Reads `topic` (read_committed) from the beginning to its end — meant for when no
/// transaction is open any more — calling `each` for every record.
pub fn read_to_end(kafka: &str, topic: &str, mut each: impl FnMut(&BorrowedMessage<'_>) -> Result<()>) -> Result<u64> {
    let c = committed_consumer(kafka, "snapbench-read")?;
    let parts = partitions(&c, topic).ok_or_else(|| format!("topic {topic} does not exist"))?;
    assign_from_start(&c, topic, &parts)?;
    let mut at_end = std::collections::HashSet::new();
    let mut n = 0u64;
    let mut idle = Instant::now();
    while at_end.len() < parts.len() {
        match c.poll(Duration::from_millis(200)) {
            None => {
                if idle.elapsed() > Duration::from_secs(120) {
                    return Err(format!("no progress reading {topic} for 2 minutes").into());
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) if !consumer_error_is_fatal(&e) => eprintln!("(reading {topic}: {e}; continuing)"),
            Some(Err(e)) => return Err(format!("reading {topic}: {e}").into()),
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                idle = Instant::now();
                n += 1;
                each(&m)?;
            }
        }
    }
    Ok(n)
}

/// A record header's value as text.
pub fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    let h = m.headers()?;
    h.iter().find(|h| h.key == name).and_then(|h| std::str::from_utf8(h.value?).ok())
}

/// The id of an Avro key record `{id: long}` in Confluent framing.
pub fn key_id(key: &[u8]) -> Option<i64> {
    let mut p = 5;
    e2e_common::varint(key, &mut p)
}

/// The id in an event-store key `<source>/<schema>.<table>/{"id":N}`.
pub fn store_key_id(key: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(key).ok()?;
    let i = s.find("{\"id\":")? + 6;
    s[i..].trim_end_matches('}').parse().ok()
}

/// The source transaction of a change: PostgreSQL's xid (of `<xid>:<lsn>`), MySQL's GTID.
pub fn txid_part(txid: &str) -> &str {
    txid.split(':').next().unwrap_or(txid)
}

/// Writer schemas by id, fetched from the registry.
pub struct Schemas {
    registry: String,
    by_id: HashMap<u32, apache_avro::Schema>,
}

/// One decoded table-topic value.
pub struct Decoded {
    pub op: String,
    /// Hash of `after` (None when there is no `after`).
    pub after_hash: Option<u64>,
    pub after_id: Option<i64>,
    /// `transaction.id`.
    pub txid: Option<String>,
}

impl Schemas {
    pub fn new(registry: &str) -> Schemas {
        Schemas { registry: registry.trim_end_matches('/').to_owned(), by_id: HashMap::new() }
    }

    fn schema(&mut self, id: u32) -> Result<&apache_avro::Schema> {
        if !self.by_id.contains_key(&id) {
            let out = Command::new("curl")
                .args(["-sf", "--max-time", "10", &format!("{}/schemas/ids/{id}", self.registry)])
                .output()?;
            if !out.status.success() {
                return Err(format!("registry: schema {id} not found").into());
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let text = v.get("schema").and_then(|s| s.as_str()).ok_or("registry: no schema field")?;
            self.by_id.insert(id, apache_avro::Schema::parse_str(text)?);
        }
        Ok(&self.by_id[&id])
    }

    /// Decodes a Confluent-framed envelope value of table `t`.
    pub fn decode(&mut self, value: &[u8]) -> Result<Decoded> {
        if value.len() < 5 || value[0] != 0 {
            return Err("not Confluent wire format".into());
        }
        let id = u32::from_be_bytes(value[1..5].try_into()?);
        let schema = self.schema(id)?;
        let v = apache_avro::from_avro_datum(schema, &mut &value[5..], None)?;
        let Value::Record(fields) = v else { return Err("value is not a record".into()) };
        let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| unwrap_union(v));
        let op = match field("op") {
            Some(Value::String(s)) => s.clone(),
            other => return Err(format!("op: {other:?}").into()),
        };
        let txid = match field("transaction") {
            Some(Value::Record(t)) => t.iter().find(|(n, _)| n == "id").and_then(|(_, v)| match unwrap_union(v) {
                Value::String(s) => Some(s.clone()),
                _ => None,
            }),
            _ => None,
        };
        let (after_hash, after_id) = match field("after") {
            Some(Value::Record(cols)) => {
                let (id, h) = hash_after(cols)?;
                (Some(h), Some(id))
            }
            _ => (None, None),
        };
        Ok(Decoded { op, after_hash, after_id, txid })
    }
}

fn unwrap_union(v: &Value) -> &Value {
    match v {
        Value::Union(_, inner) => inner,
        v => v,
    }
}

fn hash_after(cols: &[(String, Value)]) -> Result<(i64, u64)> {
    let col = |name: &str| -> Result<&Value> {
        cols.iter().find(|(n, _)| n == name).map(|(_, v)| unwrap_union(v)).ok_or_else(|| format!("no column {name}").into())
    };
    let int = |name: &str| -> Result<i64> {
        match col(name)? {
            Value::Long(x) => Ok(*x),
            Value::Int(x) => Ok(i64::from(*x)),
            other => Err(format!("{name}: {other:?}").into()),
        }
    };
    let text = |name: &str| -> Result<Option<&str>> {
        match col(name)? {
            Value::String(s) => Ok(Some(s.as_str())),
            Value::Null => Ok(None),
            other => Err(format!("{name}: {other:?}").into()),
        }
    };
    let amount = match col("amount")? {
        Value::Decimal(d) => unscaled(&Vec::<u8>::try_from(d)?),
        Value::Bytes(b) => unscaled(b),
        other => return Err(format!("amount: {other:?}").into()),
    };
    let id = int("id")?;
    let h = row_hash(
        id,
        int("grp")?,
        amount,
        text("name")?.unwrap_or_default(),
        text("note")?,
        text("payload")?.unwrap_or_default(),
        int("ver")?,
    );
    Ok((id, h))
}

/// A big-endian two's complement integer.
fn unscaled(b: &[u8]) -> i128 {
    let mut v: i128 = if b.first().is_some_and(|x| x & 0x80 != 0) { -1 } else { 0 };
    for x in b {
        v = (v << 8) | i128::from(*x);
    }
    v
}

// ---------------------------------------------------------------------------------------
// disk

/// Free bytes on the file system of `path`.
pub fn free_bytes(path: &str) -> Option<u64> {
    let out = Command::new("df").args(["-B1", "--output=avail", path]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().nth(1)?.trim().parse().ok()
}

/// Refuses to go on when less than `min_gib` GiB are free on `/`.
pub fn check_disk(min_gib: f64) -> Result<()> {
    if let Some(free) = free_bytes("/") {
        let gib = free as f64 / 1073741824.0;
        if gib < min_gib {
            return Err(format!("only {gib:.1} GiB free on /, need {min_gib:.0}: stopping").into());
        }
    }
    Ok(())
}

/// Seconds, for reports.
pub fn secs(d: Duration) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:.1}", d.as_secs_f64());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unscaled_is_twos_complement() {
        assert_eq!(unscaled(&[0xCF, 0xC7]), -12345);
        assert_eq!(unscaled(&[0x30, 0x39]), 12345);
        assert_eq!(unscaled(&[]), 0);
    }

    #[test]
    fn store_keys_and_urls_parse() {
        assert_eq!(store_key_id(br#"s/public.t/{"id":42}"#), Some(42));
        assert_eq!(txid_part("1234:0/16B3748"), "1234");
        assert_eq!(txid_part("0-1-99"), "0-1-99");
        let u = Url::parse("mysql://a:b@127.0.0.1:33106/demo").unwrap();
        assert_eq!((u.user.as_str(), u.port), ("a", 33106));
    }
}
