//! End-to-end benchmark of the `cdc-agent` binary (release build) on the local stack:
//! PostgreSQL → agent → Kafka, read back by a `read_committed` consumer.
//!
//! 1. **Backlog drain.** Makes a database with a narrow table and a publication, creates one
//!    logical slot per reader and round *before* writing, then writes the backlog (default
//!    500,000 rows in 5-row transactions, then one 1,000,000-row transaction) and marks its
//!    end with a non-transactional logical message. Each reader then drains its own slot, one
//!    at a time:
//!    * `pg_recvlogical --start --endpos=<end> -f /dev/null` (pgoutput proto_version 1): the
//!      ceiling, what the walsender can hand out at all;
//!    * the agent in exactly-once mode and in at-least-once mode (separate topics, separate
//!      transactional ids). Its rate is measured from the first event (the producer timestamp
//!      of the first table-topic record) to the moment the consumer has seen every row — for
//!      exactly-once that is the last commit, for at-least-once the last ack.
//!
//!    Also recorded: the agent's peak RSS (`VmHWM` just before it is stopped) and its CPU
//!    seconds.
//! 2. **Live.** The agent on a fresh slot, a writer committing a fixed rate (default 10,000
//!    rows/s in 100-row transactions) for a while, and a read_committed consumer. Latency of a
//!    row = consumer receive time − the row's `clock_timestamp()` taken at insert (same machine
//!    clock; the insert precedes its commit by the commit's own duration, also reported, so
//!    the figure is slightly pessimistic). The first seconds are warm-up and not counted.
//!    Steady RSS = the agent's `VmRSS` sampled every 100 ms over the counted window.
//!
//! Prints a table and appends a dated section to `bench/RESULTS.md`. Drops its database,
//! slots and topics at the end, also when a step fails; a run killed from outside leaves
//! `e2e_bench_<pid>`, its slots and its `e2e<pid>_*` topics behind, to drop by hand.

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

const PUBLICATION: &str = "e2e_pub";
const END_PREFIX: &str = "cdc-e2e-end";
const USAGE: &str = "usage: pg-e2e [--rows N (500000)] [--txn-rows N (5)] [--big-txn N (1000000)]
    [--rounds N (2)] [--live-rate ROWS_PER_S (10000)] [--live-batch ROWS_PER_TXN (100)]
    [--live-secs N (60)] [--live-warmup N (10)] [--no-drain] [--no-live] [--no-append]
    [--agent PATH (target/release/cdc-agent)] [--label TEXT] [--modes eos,alo]
    [--kafka-prop KEY=VALUE (agent's [kafka.properties]; repeatable; experiments only)]
    [--kafka-setting KEY=VALUE (a key of the agent's [kafka] section, e.g. transaction_max_records=50000)]
    [--keep-logs DIR (copies each agent's log there; RUST_LOG for the agent: E2E_AGENT_LOG)]
    [--dump-latency PREFIX (writes PREFIX-<mode>.csv: insert_us,produced_ms,visible_us per row)]
    [--pg-sslmode MODE (disable; both pg_recvlogical and the agent, e.g. require to measure TLS)]
environment (eval \"$(scripts/stack env)\"): PG_URL PG_AGENT_URL PG_BIN_DIR KAFKA_BOOTSTRAP
    SCHEMA_REGISTRY_URL";

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
    agent: PathBuf,
    label: String,
    modes: Vec<Delivery>,
    dump_latency: Option<PathBuf>,
    kafka_props: Vec<(String, String)>,
    keep_logs: Option<PathBuf>,
    kafka_main: Vec<(String, String)>,
    pg_sslmode: String,
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
        agent: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/cdc-agent")),
        label: String::new(),
        modes: vec![Delivery::ExactlyOnce, Delivery::AtLeastOnce],
        dump_latency: None,
        kafka_props: Vec::new(),
        keep_logs: None,
        kafka_main: Vec::new(),
        pg_sslmode: "disable".into(),
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
            "--label" => a.label = value()?,
            "--modes" => {
                a.modes = value()?
                    .split(',')
                    .map(|m| match m {
                        "eos" | "exactly-once" => Ok(Delivery::ExactlyOnce),
                        "alo" | "at-least-once" => Ok(Delivery::AtLeastOnce),
                        other => Err(format!("unknown mode {other}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--kafka-prop" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').ok_or("--kafka-prop needs KEY=VALUE")?;
                a.kafka_props.push((k.to_owned(), v.to_owned()));
            }
            "--kafka-setting" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').ok_or("--kafka-setting needs KEY=VALUE")?;
                a.kafka_main.push((k.to_owned(), v.to_owned()));
            }
            "--pg-sslmode" => a.pg_sslmode = value()?,
            "--keep-logs" => a.keep_logs = Some(PathBuf::from(value()?)),
            "--dump-latency" => a.dump_latency = Some(PathBuf::from(value()?)),
            "--no-drain" => a.drain = false,
            "--no-live" => a.live = false,
            "--no-append" => a.append = false,
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
    if !a.agent.exists() {
        return Err(format!(
            "{} not found: build it first (cargo build --release in the repository root)",
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
    pg_bin_dir: PathBuf,
    kafka: String,
    registry: String,
}

fn var(name: &str) -> Result<String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set: run `eval \"$(scripts/stack env)\"` first").into())
}

impl Env {
    fn from_env() -> Result<Env> {
        let admin: tokio_postgres::Config = var("PG_URL")?.parse()?;
        let agent: tokio_postgres::Config = var("PG_AGENT_URL")?.parse()?;
        let host = match admin.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let pw = |c: &tokio_postgres::Config| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default()
        };
        Ok(Env {
            host,
            port: admin.get_ports().first().copied().unwrap_or(5432),
            admin_user: admin.get_user().unwrap_or("postgres").to_owned(),
            admin_password: pw(&admin),
            agent_user: agent.get_user().unwrap_or("cdc_agent").to_owned(),
            agent_password: pw(&agent),
            pg_bin_dir: std::env::var("PG_BIN_DIR")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
                .into(),
            kafka: var("KAFKA_BOOTSTRAP")?,
            registry: var("SCHEMA_REGISTRY_URL")?,
        })
    }

    fn admin_url(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{db}",
            self.admin_user, self.admin_password, self.host, self.port
        )
    }
}

async fn pg_connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn run_id() -> u32 {
    std::process::id()
}

fn topic_prefix(tag: &str) -> String {
    format!("e2e{}_{tag}", run_id())
}

// ---------------------------------------------------------------------------------------
// /proc

/// One `Vm…:` line of /proc/<pid>/status, in KiB.
fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// user + system CPU seconds of a process (clock ticks at 100 Hz).
fn proc_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

fn load_1m() -> String {
    load_average()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// The pid of the stack's Kafka broker (`java … kafka.Kafka $CDC_STACK_DIR/kafka/…`; other
/// stacks may run on the same machine), for its CPU time.
fn broker_pid() -> Option<u32> {
    let stack = std::env::var("CDC_STACK_DIR").unwrap_or_default();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let mut args = cmd.split(|&b| b == 0);
        if !args.next().is_some_and(|a| a.ends_with(b"java")) {
            return None;
        }
        args.position(|a| a == b"kafka.Kafka")?;
        let props = args.next().unwrap_or_default();
        props.starts_with(stack.as_bytes()).then_some(pid)
    })
}

/// CPU seconds of the walsender serving `slot`, sampled until `stop`: the server-side cost
/// of a reader (decoding WAL), next to the reader's own.
fn track_walsender(
    env: &Env,
    db: &str,
    slot: &str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Option<f64>> {
    let (url, slot) = (env.admin_url(db), slot.to_owned());
    tokio::spawn(async move {
        let c = pg_connect(&url).await.ok()?;
        let mut cpu: Option<f64> = None;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(Some(row)) = c
                .query_opt(
                    "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL",
                    &[&slot],
                )
                .await
            {
                let pid: i32 = row.get(0);
                let now = proc_cpu_secs(pid as u32);
                cpu = Some(cpu.map_or(now, |c: f64| c.max(now)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cpu
    })
}

// ---------------------------------------------------------------------------------------
// the agent process

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Delivery {
    ExactlyOnce,
    AtLeastOnce,
}

impl Delivery {
    fn toml(self) -> &'static str {
        match self {
            Delivery::ExactlyOnce => "exactly-once",
            Delivery::AtLeastOnce => "at-least-once",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Delivery::ExactlyOnce => "eos",
            Delivery::AtLeastOnce => "alo",
        }
    }
}

struct Agent {
    name: String,
    keep_logs: Option<PathBuf>,
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
    started: Instant,
}

impl Agent {
    /// Writes a configuration for one source named `name` (also its topic prefix and slot)
    /// and starts `cdc-agent run`. Snapshots are off: the slot (made beforehand, or by the
    /// agent when missing) is where the agent starts.
    fn start(args: &Args, env: &Env, db: &str, name: &str, delivery: Delivery) -> Result<Agent> {
        let dir = tempfile::Builder::new().prefix("pg-e2e-").tempdir()?;
        std::fs::create_dir(dir.path().join("connectors"))?;
        std::fs::write(
            dir.path().join("cdc-agent.toml"),
            format!(
                "[agent]\nstate_dir = \"{state}\"\n[kafka]\nbootstrap_servers = \"{kafka}\"\n{main}\
                 [schema_registry]\nurl = \"{registry}\"\n[event_store]\ntopic = \"{name}.events\"\n\
                 [http]\nlisten = \"127.0.0.1:0\"\n[kafka.properties]\n{props}",
                state = dir.path().join("state").display(),
                main = args
                    .kafka_main
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}\n"))
                    .collect::<String>(),
                props = args
                    .kafka_props
                    .iter()
                    .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
                    .collect::<String>(),
                kafka = env.kafka,
                registry = env.registry,
            ),
        )?;
        std::fs::write(
            dir.path().join("connectors").join("source.toml"),
            format!(
                "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\n\
                 host = \"{host}\"\nport = {port}\nuser = \"{user}\"\npassword = \"{pw}\"\n\
                 database = \"{db}\"\ndelivery = \"{delivery}\"\n\
                 [snapshot]\nmode = \"never\"\n\
                 [postgres]\nslot_name = \"{name}\"\npublication = \"{PUBLICATION}\"\n\
                 sslmode = \"{sslmode}\"\n",
                sslmode = args.pg_sslmode,
                host = env.host,
                port = env.port,
                user = env.agent_user,
                pw = env.agent_password,
                delivery = delivery.toml(),
            ),
        )?;
        let log = dir.path().join("agent.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(&args.agent)
            .args(["run", "--config"])
            .arg(dir.path().join("cdc-agent.toml"))
            .env(
                "RUST_LOG",
                std::env::var("E2E_AGENT_LOG")
                    .unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()?;
        Ok(Agent {
            name: name.to_owned(),
            keep_logs: args.keep_logs.clone(),
            child,
            _dir: dir,
            log,
            started: Instant::now(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log_text();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!(
                "agent exited ({status}); log tail:\n{}",
                self.log_tail()
            )
            .into()),
        }
    }

    async fn wait_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.log_text().contains(needle) {
            self.alive()?;
            if start.elapsed() > timeout {
                return Err(format!(
                    "no `{needle}` in the agent log after {timeout:?}; log tail:\n{}",
                    self.log_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// SIGTERM, then waits for the drain; SIGKILL after a minute. Returns the exit code.
    fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(dir) = &self.keep_logs {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::copy(&self.log, dir.join(format!("{}.log", self.name)));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Kafka

fn consumer(env: &Env) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .set("group.id", format!("pg-e2e-{}", run_id()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.max.bytes", "52428800")
        // The consumer's own fetch cadence should not show in the latency: a fetch that finds
        // nothing returns after 10 ms instead of librdkafka's 500.
        .set("fetch.wait.max.ms", "10")
        .create()?)
}

/// Waits for `topic` (the agent creates it at the table's first change) and assigns every
/// partition from the beginning.
fn assign_when_present(c: &BaseConsumer, topic: &str, timeout: Duration, stop: &AtomicBool) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if t.error().is_none() && !t.partitions().is_empty() {
                    let mut tpl = TopicPartitionList::new();
                    for p in t.partitions() {
                        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
                    }
                    c.assign(&tpl)?;
                    return Ok(());
                }
            }
        }
        if start.elapsed() > timeout || stop.load(Ordering::Relaxed) {
            return Err(format!("topic {topic} did not appear within {timeout:?}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Consumer errors that do not heal by themselves.
fn consumer_error_is_fatal(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    !matches!(
        e.rdkafka_error_code(),
        Some(C::BrokerTransportFailure | C::AllBrokersDown | C::PartitionEOF | C::RequestTimedOut | C::OperationTimedOut)
    )
}

/// Deletes every topic whose name starts with this run's prefix.
async fn delete_topics(env: &Env) {
    let prefix = format!("e2e{}_", run_id());
    let Ok(admin) = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .create::<AdminClient<DefaultClientContext>>()
    else {
        return;
    };
    let Ok(md) = admin.inner().fetch_metadata(None, Duration::from_secs(10)) else {
        return;
    };
    let topics: Vec<String> = md
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    if !topics.is_empty() {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        let _ = admin.delete_topics(&refs, &AdminOptions::new()).await;
    }
}

/// One zigzag varint at `*pos`.
fn varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let (mut n, mut shift) = (0u64, 0u32);
    loop {
        let byte = *b.get(*pos)?;
        *pos += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((n >> 1) as i64) ^ -((n & 1) as i64));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// `(id, ts_us)` of a live-table insert event without a schema round trip: Confluent framing
/// (5 bytes), `before` = null (union branch 0), `after` = record (branch 1) whose first
/// columns are `id bigint` and `ts_us bigint`, both NOT NULL (no union). Cross-checked
/// against the key, so a layout change fails loudly instead of measuring garbage.
fn live_row(key: &[u8], value: &[u8]) -> Result<(i64, i64)> {
    let mut k = 5;
    let key_id = varint(key, &mut k).ok_or("short key")?;
    let mut p = 5;
    let (before, after) = (varint(value, &mut p), varint(value, &mut p));
    let (id, ts) = (varint(value, &mut p), varint(value, &mut p));
    match (before, after, id, ts) {
        (Some(0), Some(1), Some(id), Some(ts)) if id == key_id => Ok((id, ts)),
        _ => Err(format!("unexpected event layout (key id {key_id}): {:?}", &value[..value.len().min(32)]).into()),
    }
}

// ---------------------------------------------------------------------------------------
// database

#[derive(Debug, Clone)]
struct Backlog {
    end: String,
    rows: u64,
    commits: u64,
    wal_mib: f64,
    load_secs: f64,
}

fn drain_slot(reader: &str, round: usize) -> String {
    format!("e2e{}_{reader}_r{round}", run_id())
}

async fn setup_db(env: &Env, admin: &tokio_postgres::Client, db: &str) -> Result<tokio_postgres::Client> {
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await?;
    let dbc = pg_connect(&env.admin_url(db)).await?;
    dbc.batch_execute(&format!(
        "CREATE TABLE backlog (id bigint PRIMARY KEY, payload text NOT NULL, n int NOT NULL,
                               at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE live (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                            ts_us bigint NOT NULL, n int NOT NULL, payload text NOT NULL);
         CREATE PUBLICATION {PUBLICATION} FOR TABLE backlog, live;
         GRANT USAGE ON SCHEMA public TO {agent};
         GRANT SELECT ON backlog, live TO {agent};",
        agent = env.agent_user
    ))
    .await?;
    Ok(dbc)
}

/// Creates the drain slots, then writes the backlog and its end marker.
async fn write_backlog(dbc: &tokio_postgres::Client, args: &Args) -> Result<Backlog> {
    for round in 0..args.rounds {
        for reader in ["recv", "eos", "alo"] {
            dbc.execute(
                "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                &[&drain_slot(reader, round)],
            )
            .await?;
        }
    }
    let start_lsn: String = dbc.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0);
    let load = Instant::now();
    let txns = args.rows.div_ceil(args.txn_rows);
    // One DO block committing per iteration: `txns` small transactions without a client
    // round trip each (the same load as bench/pg-replication-clients).
    dbc.batch_execute("SET synchronous_commit = off").await?;
    if args.rows > 0 {
        dbc.batch_execute(&format!(
            "DO $$ BEGIN
               FOR t IN 0..{last} LOOP
                 INSERT INTO backlog (id, payload, n)
                   SELECT t * {per} + g, md5((t * {per} + g)::text), g
                   FROM generate_series(1, least({per}, {rows} - t * {per})) g;
                 COMMIT;
               END LOOP;
             END $$;",
            last = txns as i64 - 1,
            per = args.txn_rows,
            rows = args.rows,
        ))
        .await?;
    }
    if args.big_txn > 0 {
        dbc.batch_execute(&format!(
            "INSERT INTO backlog (id, payload, n)
               SELECT g, md5(g::text), 0 FROM generate_series({from}, {to}) g",
            from = args.rows + 1,
            to = args.rows + args.big_txn,
        ))
        .await?;
    }
    let end: String = dbc
        .query_one("SELECT pg_logical_emit_message(false, $1, 'end')::text", &[&END_PREFIX])
        .await?
        .get(0);
    let load_secs = load.elapsed().as_secs_f64();
    let wal: i64 = dbc
        .query_one(
            "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::bigint",
            &[&end, &start_lsn],
        )
        .await?
        .get(0);
    Ok(Backlog {
        end,
        rows: args.rows + args.big_txn,
        commits: txns + u64::from(args.big_txn > 0),
        wal_mib: wal as f64 / 1048576.0,
        load_secs,
    })
}

async fn drop_slots(admin: &tokio_postgres::Client, db: &str, like: &str) {
    for _ in 0..100 {
        let _ = admin
            .execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
                 WHERE database = $1 AND slot_name LIKE $2 AND active_pid IS NOT NULL",
                &[&db, &like],
            )
            .await;
        let slots = admin
            .query(
                "SELECT slot_name FROM pg_replication_slots WHERE database = $1 AND slot_name LIKE $2",
                &[&db, &like],
            )
            .await
            .unwrap_or_default();
        if slots.is_empty() {
            return;
        }
        for row in slots {
            let _ = admin
                .execute("SELECT pg_drop_replication_slot($1)", &[&row.get::<_, String>(0)])
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cleanup(env: &Env, admin: &tokio_postgres::Client, db: &str) {
    drop_slots(admin, db, "%").await;
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
    delete_topics(env).await;
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
    walsender_cpu: Option<f64>,
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

fn drain_recvlogical(
    env: &Env,
    db: &str,
    slot: &str,
    backlog: &Backlog,
    round: usize,
    sslmode: &str,
) -> Result<Drain> {
    let start = Instant::now();
    let mut child = Command::new(env.pg_bin_dir.join("pg_recvlogical"))
        .args([
            "-d",
            &format!(
                "host={} port={} user={} dbname={db} application_name=e2e-recvlogical \
                 sslmode={} gssencmode=disable",
                env.host, env.port, env.admin_user, sslmode
            ),
            "--slot",
            slot,
            "--start",
            "--no-loop",
            "-f",
            "/dev/null",
            // /dev/null cannot be fsynced; 0 turns the periodic fsync off.
            "-F",
            "0",
            "-o",
            "proto_version=1",
            "-o",
            &format!("publication_names={PUBLICATION}"),
            "--endpos",
            &backlog.end,
        ])
        .env("PGPASSWORD", &env.admin_password)
        .spawn()?;
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
    if !status.success() {
        return Err(format!("pg_recvlogical failed: {status}").into());
    }
    Ok(Drain {
        reader: "pg_recvlogical".into(),
        round,
        rows: backlog.rows,
        secs,
        wall_secs: secs,
        peak_rss_mib: None,
        cpu_secs: cpu,
        walsender_cpu: None,
        broker_cpu: None,
        records: 0,
        exit: status.code(),
        load: load_1m(),
    })
}

async fn drain_agent(
    args: &Args,
    env: &Env,
    db: &str,
    delivery: Delivery,
    round: usize,
    backlog: &Backlog,
) -> Result<Drain> {
    let name = drain_slot(delivery.short(), round);
    let topic = format!("{name}.public.backlog");
    let broker = broker_pid();
    let broker_cpu0 = broker.map(proc_cpu_secs);
    let ws_stop = Arc::new(AtomicBool::new(false));
    let walsender = track_walsender(env, db, &name, ws_stop.clone());
    let mut agent = Agent::start(args, env, db, &name, delivery)?;
    let pid = agent.pid();
    let expected = backlog.rows;
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let (env, stop) = (env.clone(), stop.clone());
        std::thread::spawn(move || -> Result<(i64, i64, u64)> {
            let c = consumer(&env)?;
            assign_when_present(&c, &topic, Duration::from_secs(300), &stop)?;
            let (mut first_ms, mut records) = (None, 0u64);
            while records < expected {
                if stop.load(Ordering::Relaxed) {
                    return Err(format!("stopped after {records} of {expected} records").into());
                }
                match c.poll(Duration::from_millis(100)) {
                    None => {}
                    // librdkafka reconnects by itself (a broker transport failure is
                    // reported, then reading goes on); only stop on what it cannot fix.
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
        })
    };
    // Watch the agent while the consumer counts.
    let deadline = Instant::now() + Duration::from_secs(3600);
    while !counter.is_finished() {
        if let Err(e) = agent.alive() {
            stop.store(true, Ordering::Relaxed);
            let _ = counter.join();
            return Err(e);
        }
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (first_ms, done_us, records) = counter.join().map_err(|_| "counter panicked")??;
    let wall_secs = agent.started.elapsed().as_secs_f64();
    let peak = proc_kib(pid, "VmHWM:").map(|k| k as f64 / 1024.0);
    let cpu = proc_cpu_secs(pid);
    let broker_cpu = broker.zip(broker_cpu0).map(|(b, c0)| proc_cpu_secs(b) - c0);
    ws_stop.store(true, Ordering::Relaxed);
    let walsender_cpu = walsender.await.ok().flatten();
    let load = load_1m();
    let exit = agent.stop();
    let secs = (done_us - first_ms * 1000) as f64 / 1e6;
    Ok(Drain {
        reader: format!("cdc-agent {}", delivery.toml()),
        round,
        rows: expected,
        secs,
        wall_secs,
        peak_rss_mib: peak,
        cpu_secs: cpu,
        walsender_cpu,
        broker_cpu,
        records,
        exit,
        load,
    })
}

// ---------------------------------------------------------------------------------------
// live

#[derive(Debug, Clone)]
struct Live {
    delivery: Delivery,
    target_rate: u64,
    achieved_rate: f64,
    rows: usize,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    rss_p50_mib: f64,
    rss_max_mib: f64,
    peak_rss_mib: f64,
    commit_p50_ms: f64,
    commit_p99_ms: f64,
    cpu_per_s: f64,
    load: String,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn live_run(args: &Args, env: &Env, db: &str, delivery: Delivery) -> Result<Live> {
    let name = topic_prefix(&format!("live_{}", delivery.short()));
    let topic = format!("{name}.public.live");
    let mut agent = Agent::start(args, env, db, &name, delivery)?;
    agent.wait_log("streaming", Duration::from_secs(120)).await?;
    let pid = agent.pid();

    let t0 = now_us();
    let window = (
        t0 + args.live_warmup as i64 * 1_000_000,
        t0 + (args.live_warmup + args.live_secs) as i64 * 1_000_000,
    );
    let written = Arc::new(AtomicU64::new(0));
    let writing = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));

    // Consumer: every row's (insert time, receive time).
    let reader = {
        let (env, written, writing, stop) = (env.clone(), written.clone(), writing.clone(), stop.clone());
        std::thread::spawn(move || -> Result<Vec<(i64, i64, i64)>> {
            let c = consumer(&env)?;
            assign_when_present(&c, &topic, Duration::from_secs(120), &stop)?;
            let mut rows = Vec::with_capacity(1 << 20);
            loop {
                if stop.load(Ordering::Relaxed)
                    || (!writing.load(Ordering::Relaxed)
                        && rows.len() as u64 >= written.load(Ordering::Relaxed))
                {
                    return Ok(rows);
                }
                match c.poll(Duration::from_millis(50)) {
                    None => {}
                    // librdkafka reconnects by itself (a broker transport failure is
                    // reported, then reading goes on); only stop on what it cannot fix.
                    Some(Err(e)) if !consumer_error_is_fatal(&e) => {
                        eprintln!("(reading {topic}: {e}; continuing)");
                    }
                    Some(Err(e)) => return Err(format!("reading {topic}: {e}").into()),
                    Some(Ok(m)) => {
                        let seen = now_us();
                        let (Some(k), Some(v)) = (m.key(), m.payload()) else { continue };
                        let (_, ts) = live_row(k, v)?;
                        let produced_ms = m.timestamp().to_millis().unwrap_or(0);
                        rows.push((ts, produced_ms, seen));
                    }
                }
            }
        })
    };

    // Agent memory over the counted window.
    let rss = {
        let writing = writing.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while writing.load(Ordering::Relaxed) {
                tick.tick().await;
                let now = now_us();
                if now >= window.0 && now < window.1 {
                    if let Some(k) = proc_kib(pid, "VmRSS:") {
                        samples.push(k as f64 / 1024.0);
                    }
                }
            }
            samples
        })
    };

    // Paced writer: `live_batch` rows per transaction, `live_rate` rows per second.
    let dbc = pg_connect(&env.admin_url(db)).await?;
    let insert = dbc
        .prepare(
            "INSERT INTO live (ts_us, n, payload)
             SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, g, 'payload-0123456789'
             FROM generate_series(1, $1::int) g",
        )
        .await?;
    let period = Duration::from_secs_f64(args.live_batch as f64 / args.live_rate as f64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let batch = args.live_batch as i32;
    let mut commit_ms = Vec::new();
    let mut in_window = 0u64;
    let mut cpu_window = (None, None);
    let mut next_check = Instant::now();
    loop {
        tick.tick().await;
        let now = now_us();
        if now >= window.1 {
            break;
        }
        if now >= window.0 && cpu_window.0.is_none() {
            cpu_window.0 = Some((proc_cpu_secs(pid), Instant::now()));
        }
        let s = Instant::now();
        let n = dbc.execute(&insert, &[&batch]).await?;
        let took = s.elapsed().as_secs_f64() * 1000.0;
        written.fetch_add(n, Ordering::Relaxed);
        if now >= window.0 {
            in_window += n;
            commit_ms.push(took);
        }
        if next_check <= Instant::now() {
            agent.alive()?;
            next_check = Instant::now() + Duration::from_secs(1);
        }
    }
    cpu_window.1 = Some((proc_cpu_secs(pid), Instant::now()));
    writing.store(false, Ordering::Relaxed);
    let rss = rss.await?;

    // Let the consumer catch up with the last rows (bounded).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reader.is_finished() {
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
        }
        agent.alive()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = reader.join().map_err(|_| "reader panicked")??;
    let peak = proc_kib(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    let load = load_1m();
    agent.stop();

    if let Some(prefix) = &args.dump_latency {
        let path = format!("{}-{}.csv", prefix.display(), delivery.short());
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(f, "insert_us,produced_ms,visible_us")?;
        for (ts, produced, seen) in &rows {
            writeln!(f, "{ts},{produced},{seen}")?;
        }
        eprintln!("wrote {path}");
    }
    let mut lat: Vec<f64> = rows
        .iter()
        .filter(|(ts, _, _)| *ts >= window.0 && *ts < window.1)
        .map(|(ts, _, seen)| (seen - ts) as f64 / 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    let mut rss_sorted = rss.clone();
    rss_sorted.sort_by(f64::total_cmp);
    commit_ms.sort_by(f64::total_cmp);
    let cpu_per_s = match cpu_window {
        (Some((c0, t0)), Some((c1, t1))) => (c1 - c0) / (t1 - t0).as_secs_f64(),
        _ => f64::NAN,
    };
    Ok(Live {
        delivery,
        target_rate: args.live_rate,
        achieved_rate: in_window as f64 / args.live_secs as f64,
        rows: lat.len(),
        p50_ms: pct(&lat, 0.50),
        p99_ms: pct(&lat, 0.99),
        p999_ms: pct(&lat, 0.999),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        rss_p50_mib: pct(&rss_sorted, 0.5),
        rss_max_mib: rss_sorted.last().copied().unwrap_or(f64::NAN),
        peak_rss_mib: peak,
        commit_p50_ms: pct(&commit_ms, 0.5),
        commit_p99_ms: pct(&commit_ms, 0.99),
        cpu_per_s,
        load,
    })
}

// ---------------------------------------------------------------------------------------
// report

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn ram_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1048576.0)
}

fn kafka_version(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("scripts/stack.d/maven/kafka-pom.xml"))
        .ok()
        .and_then(|p| {
            let s = p.split_once("<kafka.version>")?.1;
            Some(s.split_once('<')?.0.to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &Args,
    backlog: Option<&Backlog>,
    drains: &[Drain],
    lives: &[Live],
    load_start: &str,
    load_end: &str,
    server_version: &str,
) -> String {
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let repo_s = repo.display().to_string();
    let commit = shell("git", &["-C", &repo_s, "rev-parse", "--short", "HEAD"]);
    let dirty = !shell("git", &["-C", &repo_s, "status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml", "Cargo.lock"]).is_empty();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## {} — pg-e2e{}\n",
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        if args.label.is_empty() { String::new() } else { format!(" ({})", args.label) }
    );
    let _ = writeln!(
        o,
        "- machine: `{}`, {}, {} cores, {:.1} GiB RAM; PostgreSQL {server_version}, Kafka {} (KRaft, one broker), all on loopback",
        shell("uname", &["-m"]),
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ram_gib(),
        kafka_version(&repo),
    );
    let default_agent = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/cdc-agent"));
    let which = if args.agent == default_agent {
        format!("{commit}{}", if dirty { " + uncommitted changes in src/" } else { "" })
    } else {
        format!("binary `{}` (the repository is at {commit})", args.agent.display())
    };
    let _ = writeln!(
        o,
        "- cdc-agent {which} (release build), default settings (zstd, linger 5 ms, event-store mirror on, \
         transaction bounds 50000 records / 250 ms); PostgreSQL connections of both readers with \
         sslmode={}{}",
        args.pg_sslmode,
        if args.kafka_props.is_empty() && args.kafka_main.is_empty() {
            String::new()
        } else {
            format!("; overridden: {:?} {:?}", args.kafka_main, args.kafka_props)
        }
    );
    let _ = writeln!(
        o,
        "- load average (1/5/15 min): {load_start} at the start, {load_end} at the end; other \
         builds and tests shared the 2 cores, so figures are noisy (per-run 1-min load in the tables)"
    );
    if let Some(b) = backlog {
        let _ = writeln!(
            o,
            "- backlog: {} rows in {}-row transactions + one {}-row transaction = {} rows, {} commits, \
             {:.1} MiB of WAL, written in {:.1} s; table `(id bigint PK, payload text(32), n int, at timestamptz)`",
            args.rows, args.txn_rows, args.big_txn, b.rows, b.commits, b.wal_mib, b.load_secs
        );
        let _ = writeln!(
            o,
            "- drain: pg_recvlogical = process start to exit at the end LSN; agent = producer timestamp \
             of the first table-topic record to the moment a read_committed consumer has seen all \
             rows (last commit / last ack). Peak RSS = agent VmHWM before SIGTERM\n"
        );
        let _ = writeln!(o, "| reader | round | drain s | rows/s | vs pg_recvlogical (same round) | agent wall s | peak RSS MiB | reader CPU s | walsender CPU s | broker CPU s | records read | load 1m |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for d in drains {
            let ceiling = drains
                .iter()
                .find(|r| r.round == d.round && r.reader == "pg_recvlogical")
                .map(|r| r.rate());
            let _ = writeln!(
                o,
                "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
                d.reader,
                d.round + 1,
                d.secs,
                d.rate(),
                ceiling.map_or("-".into(), |c| format!("{:.2}", d.rate() / c)),
                if d.reader == "pg_recvlogical" { "-".into() } else { format!("{:.1}", d.wall_secs) },
                d.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}")),
                d.cpu_secs,
                d.walsender_cpu.map_or("-".into(), |c| format!("{c:.1}")),
                d.broker_cpu.map_or("-".into(), |c| format!("{c:.1}")),
                if d.reader == "pg_recvlogical" { "-".into() } else { d.records.to_string() },
                d.load,
            );
        }
        let _ = writeln!(o);
    }
    if !lives.is_empty() {
        let _ = writeln!(
            o,
            "- live: {} rows/s in {}-row transactions for {} s after {} s warm-up; latency = read_committed \
             consumer receive time − row's clock_timestamp() at insert (includes the commit itself: \
             writer commit round trip p50/p99 shown); steady RSS = agent VmRSS every 100 ms over the window\n",
            args.live_rate, args.live_batch, args.live_secs, args.live_warmup
        );
        let _ = writeln!(o, "| mode | target rows/s | achieved rows/s | rows | p50 ms | p99 ms | p99.9 ms | max ms | steady RSS p50 / max MiB | peak RSS MiB | agent CPU (cores) | writer commit p50/p99 ms | load 1m |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for l in lives {
            let _ = writeln!(
                o,
                "| {} | {} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.1} | {:.2} | {:.1} / {:.1} | {} |",
                l.delivery.toml(),
                l.target_rate,
                l.achieved_rate,
                l.rows,
                l.p50_ms,
                l.p99_ms,
                l.p999_ms,
                l.max_ms,
                l.rss_p50_mib,
                l.rss_max_mib,
                l.peak_rss_mib,
                l.cpu_per_s,
                l.commit_p50_ms,
                l.commit_p99_ms,
                l.load,
            );
        }
        let _ = writeln!(o);
    }
    // Goals (from the issues). Throughput is compared within a round (same backlog, minutes
    // apart); outside load only ever slows a run down, so the best round counts, and every
    // round is listed.
    let mut goals: Vec<(&str, String, String, bool)> = Vec::new();
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
        ("cdc-agent at-least-once", "drain rate / pg_recvlogical, at-least-once (best round; all rounds)"),
        ("cdc-agent exactly-once", "drain rate / pg_recvlogical, exactly-once (best round; all rounds)"),
    ] {
        let ratios = per_round(&|r| Some(rate(reader, r)? / rate("pg_recvlogical", r)?));
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
    for l in lives {
        let (bound, what) = match l.delivery {
            Delivery::AtLeastOnce => (25.0, "p99 commit→visible, at-least-once"),
            Delivery::ExactlyOnce => (50.0, "p99 commit→visible, exactly-once"),
        };
        goals.push((what, format!("≤ {bound:.0} ms"), format!("{:.1} ms", l.p99_ms), l.p99_ms <= bound));
        let what = match l.delivery {
            Delivery::AtLeastOnce => "steady RSS (max over window), at-least-once",
            Delivery::ExactlyOnce => "steady RSS (max over window), exactly-once",
        };
        goals.push((what, "≤ 64 MiB".to_string(), format!("{:.1} MiB", l.rss_max_mib), l.rss_max_mib <= 64.0));
    }
    if !goals.is_empty() {
        let _ = writeln!(o, "Goals:\n\n| goal | target | measured | |\n|---|---|---|---|");
        for (g, t, m, ok) in goals {
            let _ = writeln!(o, "| {g} | {t} | {m} | {} |", verdict(ok));
        }
        let _ = writeln!(o);
    }
    o
}

// ---------------------------------------------------------------------------------------

async fn run(
    args: &Args,
    env: &Env,
    admin: &tokio_postgres::Client,
    db: &str,
) -> Result<(Option<Backlog>, Vec<Drain>, Vec<Live>, String)> {
    let dbc = setup_db(env, admin, db).await?;
    let server_version: String = dbc.query_one("SHOW server_version", &[]).await?.get(0);
    let mut drains = Vec::new();
    let mut backlog = None;
    if args.drain {
        eprintln!("writing the backlog ({} + {} rows)…", args.rows, args.big_txn);
        let b = write_backlog(&dbc, args).await?;
        eprintln!(
            "backlog: {} rows, {} commits, {:.1} MiB WAL in {:.1} s; end {}",
            b.rows, b.commits, b.wal_mib, b.load_secs, b.end
        );
        for round in 0..args.rounds {
            // pg_recvlogical first in each round; the two agent modes alternate their order
            // between rounds so neither always gets the warmer cache.
            let mut order = args.modes.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            let (env2, db2, slot) = (env.clone(), db.to_owned(), drain_slot("recv", round));
            let b2 = b.clone();
            let sslmode = args.pg_sslmode.clone();
            let ws_stop = Arc::new(AtomicBool::new(false));
            let walsender = track_walsender(env, db, &slot, ws_stop.clone());
            let mut d = tokio::task::spawn_blocking(move || drain_recvlogical(&env2, &db2, &slot, &b2, round, &sslmode)).await??;
            ws_stop.store(true, Ordering::Relaxed);
            d.walsender_cpu = walsender.await.ok().flatten();
            eprintln!(
                "round {}: pg_recvlogical {:.2} s, {:.0} rows/s, CPU {:.1} s (walsender {:.1}) (load {})",
                round + 1,
                d.secs,
                d.rate(),
                d.cpu_secs,
                d.walsender_cpu.unwrap_or(f64::NAN),
                d.load
            );
            drains.push(d);
            for delivery in order {
                let d = drain_agent(args, env, db, delivery, round, &b).await?;
                eprintln!(
                    "round {}: cdc-agent {} {:.2} s, {:.0} rows/s, peak RSS {:.1} MiB, CPU {:.1} s (walsender {:.1}, broker {:.1}), exit {:?} (load {})",
                    round + 1,
                    delivery.toml(),
                    d.secs,
                    d.rate(),
                    d.peak_rss_mib.unwrap_or(f64::NAN),
                    d.cpu_secs,
                    d.walsender_cpu.unwrap_or(f64::NAN),
                    d.broker_cpu.unwrap_or(f64::NAN),
                    d.exit,
                    d.load
                );
                drains.push(d);
            }
        }
        drop_slots(admin, db, &format!("e2e{}\\_%\\_r%", run_id())).await;
        backlog = Some(b);
    }
    let mut lives = Vec::new();
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
            lives.push(l);
            drop_slots(admin, db, &format!("{}%", topic_prefix("live_"))).await;
        }
    }
    Ok((backlog, drains, lives, server_version))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let env = Env::from_env()?;
    let load_start = load_average();
    let admin = pg_connect(&env.admin_url("postgres")).await?;
    let db = format!("e2e_bench_{}", run_id());
    let result = run(&args, &env, &admin, &db).await;
    cleanup(&env, &admin, &db).await;
    let (backlog, drains, lives, server_version) = result?;
    let text = report(&args, backlog.as_ref(), &drains, &lives, &load_start, &load_average(), &server_version);
    println!("\n{text}");
    if args.append {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../RESULTS.md"));
        let fresh = !path.exists();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        if fresh {
            writeln!(f, "# Benchmark results\n\nAppended by the programs under `bench/`; newest last.\n")?;
        }
        write!(f, "\n{text}")?;
        eprintln!("appended to {}", path.display());
    }
    Ok(())
}
