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
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_common::{
    append_results, assign_when_present, broker_pid, consumer, consumer_error_is_fatal, cpu_model,
    delete_topics, goals_table, kafka_version, key_value, live_goals, live_table, load_1m, load_average, now_us,
    cpu_goals, cpu_us_per_row, proc_cpu_secs, proc_kib, ram_gib, run_id, shell, var, Agent, AgentSpec, Delivery, Goal, Live, LiveArgs,
    LiveWriter,
};
use rdkafka::Message;

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
            "--modes" => a.modes = Delivery::parse_list(&value()?)?,
            "--kafka-prop" => a.kafka_props.push(key_value("--kafka-prop", &value()?)?),
            "--kafka-setting" => a.kafka_main.push(key_value("--kafka-setting", &value()?)?),
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

fn topic_prefix(tag: &str) -> String {
    format!("e2e{}_{tag}", run_id())
}

// ---------------------------------------------------------------------------------------
// /proc

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

/// Starts an agent with one PostgreSQL source named `name` (also its topic prefix and slot).
/// Snapshots are off: the slot (made beforehand, or by the agent when missing) is where the
/// agent starts.
fn start_agent(args: &Args, env: &Env, db: &str, name: &str, delivery: Delivery) -> Result<Agent> {
    let spec = AgentSpec {
        binary: &args.agent,
        tmp_prefix: "pg-e2e-",
        kafka: &env.kafka,
        registry: &env.registry,
        kafka_main: &args.kafka_main,
        kafka_props: &args.kafka_props,
        keep_logs: args.keep_logs.as_deref(),
        http: true,
    };
    // The slot is made before the backlog is written, so the agent's first start finds a slot
    // without an offsets topic, which it refuses by default (a deleted topic looks the same);
    // `on_missing_position = "snapshot"` with `snapshot.mode = "never"` resumes from the slot.
    let source = format!(
        "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\n\
         on_missing_position = \"snapshot\"\n\
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
    );
    Agent::start(&spec, name, name.to_owned(), &source)
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
    delete_topics(&env.kafka, &format!("e2e{}_", run_id())).await;
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
    let mut agent = start_agent(args, env, db, &name, delivery)?;
    let pid = agent.pid();
    let expected = backlog.rows;
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let (env, stop) = (env.clone(), stop.clone());
        std::thread::spawn(move || -> Result<(i64, i64, u64)> {
            let c = consumer(&env.kafka, "pg-e2e")?;
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
        walsender_cpu,
        broker_cpu,
        records,
        exit,
        load,
    })
}

// ---------------------------------------------------------------------------------------
// live

/// The live table's writer: `live_batch` rows per transaction, each row's
/// `clock_timestamp()` read at its insert.
struct PgLiveWriter {
    dbc: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
    batch: i32,
}

impl LiveWriter for PgLiveWriter {
    async fn insert_batch(&mut self) -> Result<u64> {
        Ok(self.dbc.execute(&self.insert, &[&self.batch]).await?)
    }
}

async fn live_run(args: &Args, env: &Env, db: &str, delivery: Delivery) -> Result<Live> {
    let name = topic_prefix(&format!("live_{}", delivery.short()));
    let topic = format!("{name}.public.live");
    let agent = start_agent(args, env, db, &name, delivery)?;
    let dbc = pg_connect(&env.admin_url(db)).await?;
    let insert = dbc
        .prepare(
            "INSERT INTO live (ts_us, n, payload)
             SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, g, 'payload-0123456789'
             FROM generate_series(1, $1::int) g",
        )
        .await?;
    let writer = PgLiveWriter { dbc, insert, batch: args.live_batch as i32 };
    let live = LiveArgs {
        rate: args.live_rate,
        batch: args.live_batch,
        secs: args.live_secs,
        warmup: args.live_warmup,
        dump_latency: args.dump_latency.as_deref(),
        kafka: &env.kafka,
        group: "pg-e2e",
    };
    e2e_common::live_run(&live, delivery, agent, topic, writer).await
}

// ---------------------------------------------------------------------------------------
// report






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
        "- cdc-agent {which} (release build), default settings (lz4, linger 5 ms at-least-once / 1 ms exactly-once, event-store mirror on, \
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
        let _ = writeln!(o, "| reader | round | drain s | rows/s | vs pg_recvlogical (same round) | agent wall s | peak RSS MiB | reader CPU s | reader CPU µs/row | walsender CPU s | broker CPU s | records read | load 1m |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for d in drains {
            let ceiling = drains
                .iter()
                .find(|r| r.round == d.round && r.reader == "pg_recvlogical")
                .map(|r| r.rate());
            let _ = writeln!(
                o,
                "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} |",
                d.reader,
                d.round + 1,
                d.secs,
                d.rate(),
                ceiling.map_or("-".into(), |c| format!("{:.2}", d.rate() / c)),
                if d.reader == "pg_recvlogical" { "-".into() } else { format!("{:.1}", d.wall_secs) },
                d.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}")),
                d.cpu_secs,
                cpu_us_per_row(d.cpu_secs, d.rows as f64),
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
        live_table(&mut o, lives);
        let _ = writeln!(o);
    }
    // Goals (from the issues). Throughput is compared within a round (same backlog, minutes
    // apart); outside load only ever slows a run down, so the best round counts, and every
    // round is listed.
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
    cpu_goals(drains.iter().map(|d| (d.reader.as_ref(), d.cpu_secs, d.rows)), &mut goals);
    live_goals(lives, &mut goals);
    goals_table(&mut o, "Goals:", goals);
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
        append_results(&PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../RESULTS.md")), &text)?;
    }
    Ok(())
}
