//! End-to-end benchmark of the `cdc-agent` binary (release build) on the local stack's
//! MariaDB: binlog → agent → Kafka, read back by a `read_committed` consumer, with
//! `mariadb-binlog -v` on the same binlog range as the reference.
//!
//! 1. **Backlog drain.** Makes a database with a narrow table. The MySQL source has no
//!    "start at this binlog position" setting (the position lives in its checkpoint, in the
//!    `<topic_prefix>.offsets` topic), so each agent that will drain the backlog is
//!    *positioned* first: started with `snapshot.mode = "never"` (it begins at the server's
//!    current position), a marker row is inserted and awaited on its topic (so a checkpoint
//!    has certainly been written), then it is stopped with SIGTERM (it checkpoints). Then the
//!    backlog is written (default 500,000 rows in 5-row transactions from 8 connections,
//!    then one 1,000,000-row transaction) between two `SHOW MASTER STATUS`. Each reader
//!    then reads that range, one at a time:
//!    * `mariadb-binlog --read-from-remote-server … --start-position --stop-position -v >
//!      /dev/null`: the reference, what the server hands out and the reference decoder turns
//!      into row images; and the same on the local binlog files when they are readable;
//!    * the agent restarted in exactly-once mode and in at-least-once mode (separate names,
//!      checkpoints, topics and transactional ids). Its rate is measured from the first
//!      event (the producer timestamp of the first table-topic record) to the moment the
//!      consumer has seen every row — for exactly-once that is the last commit, for
//!      at-least-once the last ack.
//!
//!    Also recorded: the agent's peak RSS (`VmHWM` just before it is stopped) and its CPU
//!    seconds. Other sessions' transactions in the shared server's binlog between the two
//!    positions are read by every reader alike.
//! 2. **Live.** The agent on a fresh name (snapshot never), a writer committing a fixed rate
//!    (default 10,000 rows/s in 100-row transactions) for a while, and a read_committed
//!    consumer. Latency of a row = consumer receive time − the row's `SYSDATE(6)` taken at
//!    insert (same machine clock; the insert precedes its commit by the commit's own
//!    duration, also reported, so the figure is slightly pessimistic). The first seconds are
//!    warm-up and not counted. Steady RSS = the agent's `VmRSS` sampled every 100 ms over the
//!    counted window.
//!
//! Prints a table and appends a dated section to `bench/RESULTS.md`. Drops its database,
//! the agent user's grant on it and its topics at the end, also when a step fails; a run
//! killed from outside leaves `my_e2e_bench_<pid>` and its `mye2e<pid>_*` topics behind, to
//! drop by hand.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_common::{
    agent_commit, append_results, assign_when_present, broker_pid, consumer, consumer_error_is_fatal,
    cpu_model, delete_topics, goals_table, kafka_version, key_value, live_goals, live_table, load_1m, load_average,
    cpu_goals, cpu_us_per_row, now_us, proc_cpu_secs, proc_kib, ram_gib, run_id, shell, tail, var, Agent, AgentSpec, Delivery, Goal, Live,
    LiveArgs, LiveWriter,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};
use rdkafka::Message;

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Connections writing the small transactions of the backlog: one session commits a few
/// hundred transactions per second (a log flush each); several share group commits.
const WRITERS: u64 = 8;
const REFERENCE: &str = "mariadb-binlog -v (remote)";
const REFERENCE_LOCAL: &str = "mariadb-binlog -v (local files)";
const USAGE: &str = "usage: my-e2e [--rows N (500000)] [--txn-rows N (5)] [--big-txn N (1000000)]
    [--rounds N (2)] [--live-rate ROWS_PER_S (10000)] [--live-batch ROWS_PER_TXN (100)]
    [--live-secs N (60)] [--live-warmup N (10)] [--no-drain] [--no-live] [--no-append]
    [--no-agent (only the mariadb-binlog reference of the drain)] [--no-local (skip the
    local-file reference)] [--agent PATH (target/release/cdc-agent)] [--label TEXT]
    [--modes eos,alo] [--mariadb-binlog PATH (mariadb-binlog)]
    [--kafka-prop KEY=VALUE (agent's [kafka.properties]; repeatable; experiments only)]
    [--kafka-setting KEY=VALUE (a key of the agent's [kafka] section, e.g. transaction_max_records=50000)]
    [--keep-logs DIR (copies each agent's log there; RUST_LOG for the agent: E2E_AGENT_LOG)]
    [--dump-latency PREFIX (writes PREFIX-<mode>.csv: insert_us,produced_ms,visible_us per row)]
environment (eval \"$(scripts/stack env)\"): MYSQL_URL (an admin: creates the database, grants,
    reads the binlog remotely) MYSQL_AGENT_URL (the agent's user: REPLICATION SLAVE, BINLOG
    MONITOR; gets SELECT on the bench database) KAFKA_BOOTSTRAP SCHEMA_REGISTRY_URL";

#[derive(Debug, Clone)]
struct Args {
    rows: u64,
    txn_rows: u64,
    big_txn: u64,
    rounds: usize,
    live_rate: u64,
    live_batch: u64,
    live_secs: u64,
    live_warmup: u64,
    drain: bool,
    live: bool,
    append: bool,
    agent_drain: bool,
    local: bool,
    agent: PathBuf,
    binlog_tool: PathBuf,
    label: String,
    modes: Vec<Delivery>,
    dump_latency: Option<PathBuf>,
    kafka_props: Vec<(String, String)>,
    keep_logs: Option<PathBuf>,
    kafka_main: Vec<(String, String)>,
}

fn default_agent() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/cdc-agent"))
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        rows: 500_000,
        txn_rows: 5,
        big_txn: 1_000_000,
        rounds: 2,
        live_rate: 10_000,
        live_batch: 100,
        live_secs: 60,
        live_warmup: 10,
        drain: true,
        live: true,
        append: true,
        agent_drain: true,
        local: true,
        agent: default_agent(),
        binlog_tool: PathBuf::from("mariadb-binlog"),
        label: String::new(),
        modes: vec![Delivery::ExactlyOnce, Delivery::AtLeastOnce],
        dump_latency: None,
        kafka_props: Vec::new(),
        keep_logs: None,
        kafka_main: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--rows" => a.rows = value()?.parse()?,
            "--txn-rows" => a.txn_rows = value()?.parse()?,
            "--big-txn" => a.big_txn = value()?.parse()?,
            "--rounds" => a.rounds = value()?.parse()?,
            "--live-rate" => a.live_rate = value()?.parse()?,
            "--live-batch" => a.live_batch = value()?.parse()?,
            "--live-secs" => a.live_secs = value()?.parse()?,
            "--live-warmup" => a.live_warmup = value()?.parse()?,
            "--agent" => a.agent = PathBuf::from(value()?),
            "--mariadb-binlog" => a.binlog_tool = PathBuf::from(value()?),
            "--label" => a.label = value()?,
            "--modes" => a.modes = Delivery::parse_list(&value()?)?,
            "--kafka-prop" => a.kafka_props.push(key_value("--kafka-prop", &value()?)?),
            "--kafka-setting" => a.kafka_main.push(key_value("--kafka-setting", &value()?)?),
            "--keep-logs" => a.keep_logs = Some(PathBuf::from(value()?)),
            "--dump-latency" => a.dump_latency = Some(PathBuf::from(value()?)),
            "--no-drain" => a.drain = false,
            "--no-live" => a.live = false,
            "--no-append" => a.append = false,
            "--no-agent" => {
                a.agent_drain = false;
                a.live = false;
            }
            "--no-local" => a.local = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
        }
    }
    if a.txn_rows == 0 || a.rounds == 0 || a.live_batch == 0 || a.live_rate == 0 {
        return Err("--txn-rows, --rounds, --live-batch and --live-rate must be > 0".into());
    }
    if (a.agent_drain || a.live) && !a.agent.exists() {
        return Err(format!(
            "{} not found: build it first (cargo build --release in the repository root), or pass --agent",
            a.agent.display()
        )
        .into());
    }
    Ok(a)
}

/// Where the stack is: `scripts/stack env`.
#[derive(Debug, Clone)]
struct Env {
    host: String,
    port: u16,
    admin_user: String,
    admin_password: String,
    agent_user: String,
    agent_password: String,
    kafka: String,
    registry: String,
}

impl Env {
    fn from_env() -> Result<Env> {
        let admin = Opts::from_url(&var("MYSQL_URL")?)?;
        let agent = Opts::from_url(&var("MYSQL_AGENT_URL")?)?;
        Ok(Env {
            host: admin.ip_or_hostname().to_owned(),
            port: admin.tcp_port(),
            admin_user: admin.user().unwrap_or("root").to_owned(),
            admin_password: admin.pass().unwrap_or_default().to_owned(),
            agent_user: agent.user().unwrap_or("cdc_agent").to_owned(),
            agent_password: agent.pass().unwrap_or_default().to_owned(),
            kafka: var("KAFKA_BOOTSTRAP")?,
            registry: var("SCHEMA_REGISTRY_URL")?,
        })
    }

    fn admin_opts(&self, db: Option<&str>) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.admin_user.clone()))
            .pass(Some(self.admin_password.clone()))
            .db_name(db.map(str::to_owned))
            .prefer_socket(false)
            .into()
    }
}

/// An admin session in UTC (so `UNIX_TIMESTAMP(SYSDATE(6))` is plain epoch time).
async fn my_connect(env: &Env, db: Option<&str>) -> Result<Conn> {
    let mut c = Conn::new(env.admin_opts(db)).await?;
    c.query_drop("SET time_zone = '+00:00'").await?;
    Ok(c)
}

/// Every topic and source name of this run starts with this.
fn run_prefix() -> String {
    format!("mye2e{}_", run_id())
}

fn topic_prefix(tag: &str) -> String {
    format!("{}{tag}", run_prefix())
}

// ---------------------------------------------------------------------------------------
// /proc

/// The stack's MariaDB server (`mariadbd`/`mysqld` with `--defaults-file=$CDC_STACK_DIR/…`),
/// for its CPU time while a reader drains (the binlog dump thread is inside it; the server
/// also serves other sessions, so the figure is an upper bound).
fn mariadb_pid() -> Option<u32> {
    let stack = std::env::var("CDC_STACK_DIR").unwrap_or_default();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let mut args = cmd.split(|&b| b == 0);
        let exe = args.next()?;
        if !(exe.ends_with(b"mariadbd") || exe.ends_with(b"mysqld")) {
            return None;
        }
        args.any(|a| a.starts_with(b"--defaults-file=") && a[16..].starts_with(stack.as_bytes()))
            .then_some(pid)
    })
}

// ---------------------------------------------------------------------------------------
// the agent process

/// Starts an agent with one MySQL source named `name` (also its topic prefix); `incarnation`
/// tells its kept log apart. Snapshots are off: without a checkpoint the agent begins at the
/// server's current binlog position, with one at the checkpoint.
fn start_agent(args: &Args, env: &Env, db: &str, name: &str, delivery: Delivery, incarnation: &str) -> Result<Agent> {
    let spec = AgentSpec {
        binary: &args.agent,
        tmp_prefix: "my-e2e-",
        kafka: &env.kafka,
        registry: &env.registry,
        kafka_main: &args.kafka_main,
        kafka_props: &args.kafka_props,
        keep_logs: args.keep_logs.as_deref(),
        http: false,
    };
    let source = format!(
        "name = \"{name}\"\nkind = \"mysql\"\ntopic_prefix = \"{name}\"\n\
         host = \"{host}\"\nport = {port}\nuser = \"{user}\"\npassword = \"{pw}\"\n\
         database = \"{db}\"\ndelivery = \"{delivery}\"\n\
         [snapshot]\nmode = \"never\"\n\
         [mysql]\ndatabases = [\"{db}\"]\n",
        host = env.host,
        port = env.port,
        user = env.agent_user,
        pw = env.agent_password,
        delivery = delivery.toml(),
    );
    Agent::start(&spec, name, format!("{name}-{incarnation}"), &source)
}

// ---------------------------------------------------------------------------------------
// Kafka

/// Reads `topic` from the beginning until `expected` records were seen; returns the producer
/// timestamp (ms) of the first, the time (µs) the last was seen, and the count.
fn count_records(env: &Env, topic: &str, expected: u64, timeout: Duration, stop: &AtomicBool) -> Result<(i64, i64, u64)> {
    let c = consumer(&env.kafka, "my-e2e")?;
    assign_when_present(&c, topic, timeout, stop)?;
    let (mut first_ms, mut records) = (None, 0u64);
    let start = Instant::now();
    while records < expected {
        if stop.load(Ordering::Relaxed) || start.elapsed() > timeout {
            return Err(format!("{topic}: stopped after {records} of {expected} records").into());
        }
        match c.poll(Duration::from_millis(100)) {
            None => {}
            // librdkafka reconnects by itself (a broker transport failure is reported, then
            // reading goes on); only stop on what it cannot fix.
            Some(Err(e)) if !consumer_error_is_fatal(&e) => {
                eprintln!("(reading {topic}: {e}; continuing)");
            }
            Some(Err(e)) => return Err(format!("reading {topic}: {e}").into()),
            Some(Ok(m)) => {
                if first_ms.is_none() {
                    first_ms = m.timestamp().to_millis();
                }
                records += 1;
            }
        }
    }
    Ok((first_ms.unwrap_or(0), now_us(), records))
}

// ---------------------------------------------------------------------------------------
// database

/// A binlog coordinate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BinlogPos {
    file: String,
    pos: u64,
}

impl std::fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

async fn master_status(c: &mut Conn) -> Result<BinlogPos> {
    let row: Row = c
        .query_first("SHOW MASTER STATUS")
        .await?
        .ok_or("SHOW MASTER STATUS returned no row: the server's binlog is off (log_bin)")?;
    Ok(BinlogPos {
        file: row.get::<String, _>(0).ok_or("SHOW MASTER STATUS: no File")?,
        pos: row.get::<u64, _>(1).ok_or("SHOW MASTER STATUS: no Position")?,
    })
}

#[derive(Debug, Clone)]
struct Backlog {
    start: BinlogPos,
    end: BinlogPos,
    /// The binlog files from `start` to `end`, in order.
    files: Vec<String>,
    rows: u64,
    commits: u64,
    binlog_mib: f64,
    load_secs: f64,
}

/// Source (and topic prefix) of the agent draining in `reader` mode in `round`; `attempt`
/// counts repositionings (see [`position_agent`]).
fn drain_name(reader: &str, round: usize, attempt: usize) -> String {
    topic_prefix(&format!("{reader}_r{round}{}", if attempt == 0 { String::new() } else { format!("_{attempt}") }))
}

/// How often an agent is positioned again under a fresh name when its recorded position is
/// not a binlog file of the server (see [`position_agent`]).
const POSITION_ATTEMPTS: usize = 4;

async fn setup_db(env: &Env, admin: &mut Conn, db: &str, args: &Args) -> Result<Conn> {
    admin.query_drop(format!("CREATE DATABASE `{db}`")).await?;
    let mut dbc = my_connect(env, Some(db)).await?;
    dbc.query_drop(
        "CREATE TABLE backlog (id BIGINT PRIMARY KEY, payload VARCHAR(32) NOT NULL, n INT NOT NULL,
                               at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
         CREATE TABLE live (id BIGINT AUTO_INCREMENT PRIMARY KEY, ts_us BIGINT NOT NULL,
                            n INT NOT NULL, payload VARCHAR(32) NOT NULL);
         CREATE TABLE marker (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64) NOT NULL)",
    )
    .await?;
    // Small transactions without a client round trip each: a loop committing per iteration
    // (MariaDB's sequence engine makes the rows). Ids are dense from 1 to --rows.
    dbc.query_drop(format!(
        "CREATE PROCEDURE fill(IN first_t BIGINT, IN last_t BIGINT)
         BEGIN
           DECLARE t BIGINT DEFAULT first_t;
           WHILE t <= last_t DO
             START TRANSACTION;
             INSERT INTO backlog (id, payload, n)
               SELECT t * {per} + seq, MD5(t * {per} + seq), seq FROM seq_1_to_{per}
               WHERE t * {per} + seq <= {rows};
             COMMIT;
             SET t = t + 1;
           END WHILE;
         END",
        per = args.txn_rows,
        rows = args.rows,
    ))
    .await?;
    admin
        .query_drop(format!("GRANT SELECT ON `{db}`.* TO '{}'@'%'", env.agent_user))
        .await?;
    // The agent's snapshot signal table ([snapshot] signal_table, default `<db>.cdc_signal`),
    // made by the administrator (docs/mysql-source.md, "The signal table"): the bench user may
    // not create tables.
    dbc.query_drop(
        "CREATE TABLE cdc_signal (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT NULL, data TEXT)",
    )
    .await?;
    admin
        .query_drop(format!(
            "GRANT INSERT, SELECT ON `{db}`.`cdc_signal` TO '{}'@'%'",
            env.agent_user
        ))
        .await?;
    Ok(dbc)
}

/// Writes the backlog between two `SHOW MASTER STATUS`.
async fn write_backlog(env: &Env, dbc: &mut Conn, db: &str, args: &Args) -> Result<Backlog> {
    let start = master_status(dbc).await?;
    let load = Instant::now();
    let txns = args.rows.div_ceil(args.txn_rows);
    let mut writers = Vec::new();
    let per_writer = txns.div_ceil(WRITERS);
    for w in 0..WRITERS {
        let (first, last) = (w * per_writer, ((w + 1) * per_writer).min(txns));
        if first >= last {
            continue;
        }
        let (env, db) = (env.clone(), db.to_owned());
        writers.push(tokio::spawn(async move {
            let mut c = my_connect(&env, Some(&db)).await?;
            c.query_drop(format!("CALL fill({first}, {})", last - 1)).await?;
            Ok::<_, BoxError>(())
        }));
    }
    for w in writers {
        w.await??;
    }
    if args.big_txn > 0 {
        dbc.query_drop(format!(
            "INSERT INTO backlog (id, payload, n)
               SELECT {rows} + seq, MD5({rows} + seq), 0 FROM seq_1_to_{big}",
            rows = args.rows,
            big = args.big_txn,
        ))
        .await?;
    }
    let end = master_status(dbc).await?;
    let load_secs = load.elapsed().as_secs_f64();
    let logs: Vec<Row> = dbc.query("SHOW BINARY LOGS").await?;
    let logs: Vec<(String, u64)> = logs
        .into_iter()
        .filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?)))
        .collect();
    let files: Vec<String> = logs
        .iter()
        .map(|(f, _)| f.clone())
        .filter(|f| *f >= start.file && *f <= end.file)
        .collect();
    let bytes: u64 = if start.file == end.file {
        end.pos - start.pos
    } else {
        logs.iter()
            .filter(|(f, _)| *f >= start.file && *f <= end.file)
            .map(|(f, size)| {
                if *f == start.file {
                    size - start.pos
                } else if *f == end.file {
                    end.pos
                } else {
                    *size
                }
            })
            .sum()
    };
    Ok(Backlog {
        start,
        end,
        files,
        rows: args.rows + args.big_txn,
        commits: txns + u64::from(args.big_txn > 0),
        binlog_mib: bytes as f64 / 1048576.0,
        load_secs,
    })
}

/// Where the server's binlog files are, when this process can read them.
async fn local_binlog_dir(c: &mut Conn, files: &[String]) -> Option<PathBuf> {
    let base: String = c.query_first("SELECT @@log_bin_basename").await.ok()??;
    let dir = Path::new(&base).parent()?.to_path_buf();
    files
        .iter()
        .all(|f| std::fs::File::open(dir.join(f)).is_ok())
        .then_some(dir)
}

async fn cleanup(env: &Env, admin: &mut Conn, db: &str) {
    let _ = admin.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).await;
    let _ = admin
        .query_drop(format!("REVOKE SELECT ON `{db}`.* FROM '{}'@'%'", env.agent_user))
        .await;
    delete_topics(&env.kafka, &run_prefix()).await;
}

// ---------------------------------------------------------------------------------------
// drains

#[derive(Debug, Clone)]
struct Drain {
    reader: String,
    round: usize,
    rows: u64,
    secs: f64,
    /// From process start (agent: includes connecting, registry, topic creation).
    wall_secs: f64,
    peak_rss_mib: Option<f64>,
    cpu_secs: f64,
    server_cpu: Option<f64>,
    broker_cpu: Option<f64>,
    records: u64,
    exit: Option<i32>,
    load: String,
}

impl Drain {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.secs
    }
}

/// `mariadb-binlog -v` over the backlog's range, output to /dev/null: remotely (as a replica
/// would read it) or, with `local_dir`, from the files.
fn drain_binlog_tool(args: &Args, env: &Env, b: &Backlog, local_dir: Option<&Path>, round: usize) -> Result<Drain> {
    let mut cmd = Command::new(&args.binlog_tool);
    // Only these options: no /etc/mysql/… defaults.
    cmd.arg("--no-defaults");
    match local_dir {
        Some(dir) => {
            cmd.args(b.files.iter().map(|f| dir.join(f)));
        }
        None => {
            cmd.args(["--read-from-remote-server", "--protocol=TCP", "--host", &env.host])
                .arg(format!("--port={}", env.port))
                .arg(format!("--user={}", env.admin_user))
                .env("MYSQL_PWD", &env.admin_password)
                .args(&b.files);
        }
    }
    // --start-position applies to the first file named, --stop-position to the last.
    cmd.arg(format!("--start-position={}", b.start.pos))
        .arg(format!("--stop-position={}", b.end.pos))
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let server = mariadb_pid();
    let server_cpu0 = server.map(proc_cpu_secs);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", args.binlog_tool.display()))?;
    let pid = child.id();
    let mut cpu = 0.0;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        cpu = proc_cpu_secs(pid);
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = start.elapsed().as_secs_f64();
    let server_cpu = server.zip(server_cpu0).map(|(p, c0)| proc_cpu_secs(p) - c0);
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        return Err(format!("{} failed ({status}): {err}", args.binlog_tool.display()).into());
    }
    Ok(Drain {
        reader: if local_dir.is_some() { REFERENCE_LOCAL } else { REFERENCE }.into(),
        round,
        rows: b.rows,
        secs,
        wall_secs: secs,
        peak_rss_mib: None,
        cpu_secs: cpu,
        server_cpu: if local_dir.is_some() { None } else { server_cpu },
        broker_cpu: None,
        records: 0,
        exit: status.code(),
        load: load_1m(),
    })
}

/// Runs a consumer task on its own thread while watching the agent; stops the consumer if
/// the agent dies.
async fn watch<T: Send + 'static>(
    agent: &mut Agent,
    stop: Arc<AtomicBool>,
    task: std::thread::JoinHandle<Result<T>>,
) -> Result<T> {
    while !task.is_finished() {
        if let Err(e) = agent.alive() {
            stop.store(true, Ordering::Relaxed);
            let _ = task.join();
            return Err(e);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.join().map_err(|_| "consumer thread panicked")?
}

/// Gives the source `name` a checkpoint at the server's current position: starts the agent
/// (snapshot never, no checkpoint yet: it starts at SHOW MASTER STATUS), makes it carry one
/// marker row to Kafka, and stops it with SIGTERM, which records the acknowledged position.
/// Returns that position's file name as the agent logged it (`stream stopped, position
/// acknowledged file=… pos=…`).
async fn position_agent(args: &Args, env: &Env, dbc: &mut Conn, db: &str, name: &str, delivery: Delivery) -> Result<String> {
    let mut agent = start_agent(args, env, db, name, delivery, "position")?;
    agent.wait_log("streaming", Duration::from_secs(120)).await?;
    dbc.exec_drop("INSERT INTO marker (note) VALUES (?)", (name,)).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let topic = format!("{name}.{db}.marker");
    let task = {
        let (env, stop) = (env.clone(), stop.clone());
        std::thread::spawn(move || count_records(&env, &topic, 1, Duration::from_secs(120), &stop))
    };
    watch(&mut agent, stop, task).await?;
    let (exit, log) = agent.stop();
    let plain = tail(&log, 1000);
    let file = plain
        .split_once("position acknowledged file=")
        .and_then(|(_, rest)| Some(rest.split_once(" pos=")?.0.to_owned()));
    file.ok_or_else(|| {
        format!("agent {name} stopped (exit {exit:?}) without recording its position; log tail:\n{}", tail(&log, 20)).into()
    })
}

/// Positions the agent of `delivery` in `round`, under a fresh name as long as the recorded
/// file is not one of the server's binlogs: the agent at bcc2a6b sometimes keeps bytes of the
/// first (artificial) ROTATE event's checksum in the file name, and a restart at such a
/// position fails ("no longer on the server"). Returns the positioned source's name.
async fn position_drain_agent(args: &Args, env: &Env, dbc: &mut Conn, db: &str, delivery: Delivery, round: usize) -> Result<String> {
    for attempt in 0..POSITION_ATTEMPTS {
        let name = drain_name(delivery.short(), round, attempt);
        eprintln!("positioning {name} ({})…", delivery.toml());
        let file = position_agent(args, env, dbc, db, &name, delivery).await?;
        let logs: Vec<Row> = dbc.query("SHOW BINARY LOGS").await?;
        if logs.iter().any(|r| r.get::<String, _>(0).as_deref() == Some(file.as_str())) {
            return Ok(name);
        }
        eprintln!("  {name} recorded file {file:?}, which the server does not have (agent bug); positioning again");
    }
    Err(format!("no valid position for the {} agent of round {} in {POSITION_ATTEMPTS} attempts", delivery.toml(), round + 1).into())
}

async fn drain_agent(args: &Args, env: &Env, db: &str, name: &str, delivery: Delivery, round: usize, backlog: &Backlog) -> Result<Drain> {
    let topic = format!("{name}.{db}.backlog");
    let broker = broker_pid();
    let broker_cpu0 = broker.map(proc_cpu_secs);
    let server = mariadb_pid();
    let server_cpu0 = server.map(proc_cpu_secs);
    let mut agent = start_agent(args, env, db, name, delivery, "drain")?;
    let pid = agent.pid();
    let expected = backlog.rows;
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let (env, stop) = (env.clone(), stop.clone());
        std::thread::spawn(move || count_records(&env, &topic, expected, Duration::from_secs(3600), &stop))
    };
    let (first_ms, done_us, records) = watch(&mut agent, stop, task).await?;
    let wall_secs = agent.started.elapsed().as_secs_f64();
    let peak = proc_kib(pid, "VmHWM:").map(|k| k as f64 / 1024.0);
    let cpu = proc_cpu_secs(pid);
    let broker_cpu = broker.zip(broker_cpu0).map(|(b, c0)| proc_cpu_secs(b) - c0);
    let server_cpu = server.zip(server_cpu0).map(|(p, c0)| proc_cpu_secs(p) - c0);
    let load = load_1m();
    let (exit, _) = agent.stop();
    let secs = (done_us - first_ms * 1000) as f64 / 1e6;
    Ok(Drain {
        reader: format!("cdc-agent {}", delivery.toml()),
        round,
        rows: expected,
        secs,
        wall_secs,
        peak_rss_mib: peak,
        cpu_secs: cpu,
        server_cpu,
        broker_cpu,
        records,
        exit,
        load,
    })
}

// ---------------------------------------------------------------------------------------
// live

/// The live table's writer: `live_batch` rows per transaction (autocommit); each row's
/// SYSDATE(6) is read at its insert (NOW(6) would be the statement's).
struct MyLiveWriter {
    dbc: Conn,
    insert: mysql_async::Statement,
}

impl LiveWriter for MyLiveWriter {
    async fn insert_batch(&mut self) -> Result<u64> {
        self.dbc.exec_drop(&self.insert, ()).await?;
        Ok(self.dbc.affected_rows())
    }
}

async fn live_run(args: &Args, env: &Env, db: &str, delivery: Delivery) -> Result<Live> {
    let name = topic_prefix(&format!("live_{}", delivery.short()));
    let topic = format!("{name}.{db}.live");
    let agent = start_agent(args, env, db, &name, delivery, "live")?;
    let mut dbc = my_connect(env, Some(db)).await?;
    let insert = dbc
        .prep(format!(
            "INSERT INTO live (ts_us, n, payload)
             SELECT CAST(UNIX_TIMESTAMP(SYSDATE(6)) * 1000000 AS SIGNED), seq, 'payload-0123456789'
             FROM seq_1_to_{}",
            args.live_batch
        ))
        .await?;
    let live = LiveArgs {
        rate: args.live_rate,
        batch: args.live_batch,
        secs: args.live_secs,
        warmup: args.live_warmup,
        dump_latency: args.dump_latency.as_deref(),
        kafka: &env.kafka,
        group: "my-e2e",
    };
    e2e_common::live_run(&live, delivery, agent, topic, MyLiveWriter { dbc, insert }).await
}

// ---------------------------------------------------------------------------------------
// report

struct Context<'a> {
    load_start: &'a str,
    load_end: &'a str,
    server_version: &'a str,
    local: Option<&'a Path>,
}

fn report(args: &Args, backlog: Option<&Backlog>, drains: &[Drain], lives: &[Live], cx: &Context) -> String {
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let repo_s = repo.display().to_string();
    let commit = shell("git", &["-C", &repo_s, "rev-parse", "--short", "HEAD"]);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## {} — my-e2e{}\n",
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        if args.label.is_empty() { String::new() } else { format!(" ({})", args.label) }
    );
    let _ = writeln!(
        o,
        "- machine: `{}`, {}, {} cores, {:.1} GiB RAM; MariaDB {}, Kafka {} (KRaft, one broker), all on loopback",
        shell("uname", &["-m"]),
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ram_gib(),
        cx.server_version,
        kafka_version(&repo),
    );
    if args.agent_drain || args.live {
        let built = agent_commit(&args.agent).map_or(String::new(), |c| format!(", built from {c}"));
        let _ = writeln!(
            o,
            "- cdc-agent binary `{}`{built} (release build; bench at {commit}), default settings (lz4, linger 5 ms at-least-once / 1 ms exactly-once, \
             event-store mirror on, transaction bounds 50000 records / 250 ms){}",
            args.agent.display(),
            if args.kafka_props.is_empty() && args.kafka_main.is_empty() {
                String::new()
            } else {
                format!("; overridden: {:?} {:?}", args.kafka_main, args.kafka_props)
            }
        );
    }
    let _ = writeln!(
        o,
        "- load average (1/5/15 min): {} at the start, {} at the end; other builds and tests shared \
         the 2 cores and the MariaDB server, so figures are noisy (per-run 1-min load in the tables)",
        cx.load_start, cx.load_end
    );
    if let Some(b) = backlog {
        let _ = writeln!(
            o,
            "- backlog: {} rows in {}-row transactions (from {WRITERS} connections) + one {}-row transaction \
             = {} rows, {} commits, {:.1} MiB of binlog ({} → {}, also holding other sessions' transactions), \
             written in {:.1} s; table `(id BIGINT PK, payload VARCHAR(32), n INT, at TIMESTAMP(6))`, ROW / FULL image / FULL metadata",
            args.rows, args.txn_rows, args.big_txn, b.rows, b.commits, b.binlog_mib, b.start, b.end, b.load_secs
        );
        let _ = writeln!(
            o,
            "- drain: mariadb-binlog = `mariadb-binlog [--read-from-remote-server] --start-position \
             --stop-position -v … > /dev/null`, process start to exit{}; agent = positioned at the start \
             beforehand (snapshot never, one marker row, SIGTERM), then restarted: producer timestamp of \
             the first table-topic record to the moment a read_committed consumer has seen all rows (last \
             commit / last ack). Peak RSS = agent VmHWM before SIGTERM. Server CPU = the whole mariadbd \
             during the reader (it also serves the other sessions)\n",
            match cx.local {
                Some(d) => format!("; local = the files in `{}`", d.display()),
                None if args.local => "; the local binlog files were not readable".into(),
                None => String::new(),
            }
        );
        let _ = writeln!(o, "| reader | round | drain s | rows/s | vs {REFERENCE} (same round) | agent wall s | peak RSS MiB | reader CPU s | reader CPU µs/row | server CPU s | broker CPU s | records read | load 1m |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for d in drains {
            let reference = drains
                .iter()
                .find(|r| r.round == d.round && r.reader == REFERENCE)
                .map(|r| r.rate());
            let tool = d.reader.starts_with("mariadb-binlog");
            let _ = writeln!(
                o,
                "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} |",
                d.reader,
                d.round + 1,
                d.secs,
                d.rate(),
                reference.map_or("-".into(), |c| format!("{:.2}", d.rate() / c)),
                if tool { "-".into() } else { format!("{:.1}", d.wall_secs) },
                d.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}")),
                d.cpu_secs,
                cpu_us_per_row(d.cpu_secs, d.rows as f64),
                d.server_cpu.map_or("-".into(), |c| format!("{c:.1}")),
                d.broker_cpu.map_or("-".into(), |c| format!("{c:.1}")),
                if tool { "-".into() } else { d.records.to_string() },
                d.load,
            );
        }
        let _ = writeln!(o);
    }
    if !lives.is_empty() {
        let _ = writeln!(
            o,
            "- live: {} rows/s in {}-row transactions for {} s after {} s warm-up; latency = read_committed \
             consumer receive time − row's SYSDATE(6) at insert (includes the commit itself: writer commit \
             round trip p50/p99 shown); steady RSS = agent VmRSS every 100 ms over the window\n",
            args.live_rate, args.live_batch, args.live_secs, args.live_warmup
        );
        live_table(&mut o, lives);
        let _ = writeln!(o);
    }
    // Issue 5 sets no figures of its own; these are the PostgreSQL bench's targets, so the two
    // sources read side by side. Outside load only ever slows a run down: the best round
    // counts, every round is listed.
    let mut goals: Vec<Goal> = Vec::new();
    let rounds = drains.iter().map(|d| d.round).max().map_or(0, |r| r + 1);
    let rate = |reader: &str, round: usize| {
        drains
            .iter()
            .find(|d| d.round == round && d.reader == reader)
            .map(Drain::rate)
    };
    let per_round = |f: &dyn Fn(usize) -> Option<f64>| -> Vec<f64> { (0..rounds).filter_map(f).collect() };
    let list = |v: &[f64], pct: bool| {
        v.iter()
            .map(|x| if pct { format!("{:.1}%", x * 100.0) } else { format!("{x:.2}") })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (reader, what) in [
        ("cdc-agent at-least-once", "drain rate / mariadb-binlog -v remote, at-least-once (best round; all rounds)"),
        ("cdc-agent exactly-once", "drain rate / mariadb-binlog -v remote, exactly-once (best round; all rounds)"),
    ] {
        let ratios = per_round(&|r| Some(rate(reader, r)? / rate(REFERENCE, r)?));
        if let Some(best) = ratios.iter().copied().reduce(f64::max) {
            goals.push((what, "≥ 0.80".into(), format!("{best:.2} ({})", list(&ratios, false)), best >= 0.8));
        }
    }
    let costs = per_round(&|r| Some(1.0 - rate("cdc-agent exactly-once", r)? / rate("cdc-agent at-least-once", r)?));
    if let Some(best) = costs.iter().copied().reduce(f64::min) {
        goals.push((
            "exactly-once throughput cost vs at-least-once (best round; all rounds)",
            "≤ 15%".into(),
            format!("{:.1}% ({})", best * 100.0, list(&costs, true)),
            best <= 0.15,
        ));
    }
    cpu_goals(drains.iter().map(|d| (d.reader.as_ref(), d.cpu_secs, d.rows)), &mut goals);
    live_goals(lives, &mut goals);
    goals_table(&mut o, "Goals (issue 5 names none; these are pg-e2e's, for comparison):", goals);
    o
}

// ---------------------------------------------------------------------------------------

struct Outcome {
    backlog: Option<Backlog>,
    drains: Vec<Drain>,
    lives: Vec<Live>,
    server_version: String,
    local: Option<PathBuf>,
}

async fn run(args: &Args, env: &Env, admin: &mut Conn, db: &str) -> Result<Outcome> {
    let mut dbc = setup_db(env, admin, db, args).await?;
    let server_version: String = dbc.query_first("SELECT VERSION()").await?.unwrap_or_default();
    let mut out = Outcome {
        backlog: None,
        drains: Vec::new(),
        lives: Vec::new(),
        server_version,
        local: None,
    };
    if args.drain {
        let mut positioned = std::collections::HashMap::new();
        if args.agent_drain {
            for round in 0..args.rounds {
                for &delivery in &args.modes {
                    let name = position_drain_agent(args, env, &mut dbc, db, delivery, round).await?;
                    positioned.insert((round, delivery.short()), name);
                }
            }
        }
        eprintln!("writing the backlog ({} + {} rows)…", args.rows, args.big_txn);
        let b = write_backlog(env, &mut dbc, db, args).await?;
        eprintln!(
            "backlog: {} rows, {} commits, {:.1} MiB binlog in {:.1} s; {} → {}",
            b.rows, b.commits, b.binlog_mib, b.load_secs, b.start, b.end
        );
        out.local = if args.local { local_binlog_dir(&mut dbc, &b.files).await } else { None };
        for round in 0..args.rounds {
            // The references first in each round; the two agent modes alternate their order
            // between rounds so neither always gets the warmer cache.
            let mut readers: Vec<Option<PathBuf>> = vec![None];
            if let Some(dir) = &out.local {
                readers.push(Some(dir.clone()));
            }
            for local in readers {
                let (a2, e2, b2) = (args.clone(), env.clone(), b.clone());
                let d = tokio::task::spawn_blocking(move || drain_binlog_tool(&a2, &e2, &b2, local.as_deref(), round)).await??;
                eprintln!(
                    "round {}: {} {:.2} s, {:.0} rows/s, CPU {:.1} s (server {:.1}) (load {})",
                    round + 1,
                    d.reader,
                    d.secs,
                    d.rate(),
                    d.cpu_secs,
                    d.server_cpu.unwrap_or(f64::NAN),
                    d.load
                );
                out.drains.push(d);
            }
            if !args.agent_drain {
                continue;
            }
            let mut order = args.modes.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for delivery in order {
                let name = &positioned[&(round, delivery.short())];
                let d = drain_agent(args, env, db, name, delivery, round, &b).await?;
                eprintln!(
                    "round {}: cdc-agent {} {:.2} s, {:.0} rows/s, peak RSS {:.1} MiB, CPU {:.1} s (server {:.1}, broker {:.1}), exit {:?} (load {})",
                    round + 1,
                    delivery.toml(),
                    d.secs,
                    d.rate(),
                    d.peak_rss_mib.unwrap_or(f64::NAN),
                    d.cpu_secs,
                    d.server_cpu.unwrap_or(f64::NAN),
                    d.broker_cpu.unwrap_or(f64::NAN),
                    d.exit,
                    d.load
                );
                out.drains.push(d);
            }
        }
        out.backlog = Some(b);
    }
    if args.live {
        let mut order = args.modes.clone();
        order.sort_by_key(|d| *d == Delivery::ExactlyOnce);
        for delivery in order {
            eprintln!("live {} at {} rows/s for {}+{} s…", delivery.toml(), args.live_rate, args.live_warmup, args.live_secs);
            let l = live_run(args, env, db, delivery).await?;
            eprintln!(
                "live {}: {:.0} rows/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, RSS {:.1}/{:.1} MiB (load {})",
                delivery.toml(),
                l.achieved_rate,
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                l.rss_p50_mib,
                l.rss_max_mib,
                l.load
            );
            out.lives.push(l);
        }
    }
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Display, not Debug: agent log tails in errors keep their line breaks.
    if let Err(e) = bench().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn bench() -> Result<()> {
    let args = parse_args()?;
    let env = Env::from_env()?;
    let load_start = load_average();
    let mut admin = my_connect(&env, None).await?;
    let db = format!("my_e2e_bench_{}", run_id());
    let result = run(&args, &env, &mut admin, &db).await;
    cleanup(&env, &mut admin, &db).await;
    let out = result?;
    let text = report(
        &args,
        out.backlog.as_ref(),
        &out.drains,
        &out.lives,
        &Context {
            load_start: &load_start,
            load_end: &load_average(),
            server_version: &out.server_version,
            local: out.local.as_deref(),
        },
    );
    println!("\n{text}");
    if args.append {
        append_results(&PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../RESULTS.md")), &text)?;
    }
    Ok(())
}
