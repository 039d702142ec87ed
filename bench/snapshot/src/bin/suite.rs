//! `snapshot-suite` (run by scripts/test-snapshots): the heavy must-show checks of the initial
//! snapshot, exactly-once, default chunk size. Not run by CI.
//!
//! For each database (`--dbs pg,my`):
//! 1. makes `snapsuite_<pid>` with table `t` (src/lib.rs; default 10,000,000 PostgreSQL rows,
//!    ≥ 2 GB, and 5,000,000 MariaDB rows);
//! 2. starts a **writer**: one connection, `--ops-per-txn` changes per transaction (50 %
//!    updates of a random live row, 30 % inserts of new ids, 20 % deletes), paced at `--rate`
//!    rows/s; it records every transaction it committed (PostgreSQL xid, MariaDB
//!    `@@last_gtid`) and its changes, in commit order;
//! 3. starts the agent (`[snapshot] mode = "initial"`: snapshot, then streaming) and a
//!    **watcher**: a read_committed consumer of the event store from the beginning, recording
//!    when records become visible, their op, and visible time − producer timestamp;
//! 4. **kills** the agent with SIGKILL `--kills` times during the snapshot and starts it again
//!    at once: kill i when the snapshot has progressed to i/(kills+1) of the rows — progress =
//!    the largest of the snapshot rows committed to the event store (visible to the watcher),
//!    this incarnation's `cdc_agent_snapshot_rows` and its last `snapshot progress` log line
//!    (the MySQL snapshot reports no metric). When none of them moves (a snapshot in one
//!    transaction, shorter than its first progress line), the incarnation is killed
//!    `--kill-after-secs` after its start once its log shows the snapshot started; Collects the log lines that mention a
//!    snapshot resuming (`snapshot resuming`, matched loosely);
//! 5. after `snapshot complete`, lets the writer go on `--settle-secs`, stops it, waits until
//!    the watcher has seen its last transaction, stops the agent (SIGTERM);
//! 6. **verifies**, reading both topics to their end with read_committed:
//!    * final state: the latest value per key of the table topic (tombstone / op d = gone)
//!      equals the table, every row compared by hash;
//!    * exactly once: a writer change is (transaction, op, id). The changes Kafka must hold are
//!      those of every writer transaction from the first one seen on (one writer connection:
//!      commit order = its own order; the ones before are in the snapshot). Lost = such a
//!      change seen 0 times, duplicated = seen more than once, unexpected = a change no
//!      writer made; snapshot rows (op r) at most once per key. Table topic and event store
//!      each;
//!    * the event store showed new records *during* the snapshot (before `snapshot complete`);
//!    * the longest Kafka transaction, estimated from the watcher: max(visible time − producer
//!      timestamp) (the agent has no metric for it), and the longest pause in the watcher's
//!      progress while the snapshot ran (pauses around a kill shown apart).
//!
//! Appends a dated section to docs/snapshots-results.md; drops its databases, slots and topics
//! `snapsuite<pid>_*` (a run killed from outside leaves them: drop them by hand).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e_common::{consumer_error_is_fatal, key_value, load_average, run_id, shell};
use mysql_async::prelude::Queryable;
use rdkafka::Message;
use snapshot::{
    assign_from_start, check_disk, committed_consumer, header, key_id, log_field, metric_sum, my_create, my_drop,
    my_table_hashes, partitions, pg_connect, pg_create, pg_drop, pg_table_hashes, read_to_end, source_toml,
    store_key_id, txid_part, AgentProc, Db, Env, Result, Schemas, TableInfo,
};

const USAGE: &str = "usage: snapshot-suite [--pg-rows N (10000000)] [--my-rows N (5000000)] [--dbs pg,my]
    [--rate ROWS_PER_S (1000)] [--ops-per-txn N (10)] [--kills N (5)] [--settle-secs N (5)]
    [--kill-after-secs S (1.5: kill an incarnation whose progress nothing shows this long after it started)]
    [--agent PATH (target/release/cdc-agent)] [--agent-repo DIR (for the report)]
    [--snapshot-setting KEY=VALUE (a [snapshot] key, e.g. chunk_size=10000; repeatable)]
    [--kafka-setting KEY=VALUE (a [kafka] key; repeatable)]
    [--results FILE (docs/snapshots-results.md)] [--no-append] [--keep-logs DIR] [--label TEXT]
    [--min-free-gib N (20)]
environment (eval \"$(scripts/stack env)\"): PG_URL PG_AGENT_URL MYSQL_URL MYSQL_AGENT_URL
    KAFKA_BOOTSTRAP SCHEMA_REGISTRY_URL";

struct Args {
    pg_rows: u64,
    my_rows: u64,
    dbs: Vec<Db>,
    rate: u64,
    ops_per_txn: usize,
    kills: u32,
    settle_secs: u64,
    kill_after_secs: f64,
    agent: PathBuf,
    agent_repo: Option<PathBuf>,
    snapshot_settings: Vec<(String, String)>,
    kafka_settings: Vec<(String, String)>,
    results: PathBuf,
    append: bool,
    keep_logs: Option<PathBuf>,
    label: String,
    min_free_gib: f64,
}

fn parse_args() -> Result<Args> {
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut a = Args {
        pg_rows: 10_000_000,
        my_rows: 5_000_000,
        dbs: vec![Db::Pg, Db::My],
        rate: 1000,
        ops_per_txn: 10,
        kills: 5,
        settle_secs: 5,
        kill_after_secs: 1.5,
        agent: repo.join("target/release/cdc-agent"),
        agent_repo: None,
        snapshot_settings: Vec::new(),
        kafka_settings: Vec::new(),
        results: repo.join("docs/snapshots-results.md"),
        append: true,
        keep_logs: None,
        label: String::new(),
        min_free_gib: 20.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--pg-rows" => a.pg_rows = value()?.parse()?,
            "--my-rows" => a.my_rows = value()?.parse()?,
            "--dbs" => a.dbs = Db::parse_list(&value()?)?,
            "--rate" => a.rate = value()?.parse()?,
            "--ops-per-txn" => a.ops_per_txn = value()?.parse()?,
            "--kills" => a.kills = value()?.parse()?,
            "--settle-secs" => a.settle_secs = value()?.parse()?,
            "--kill-after-secs" => a.kill_after_secs = value()?.parse()?,
            "--agent" => a.agent = PathBuf::from(value()?),
            "--agent-repo" => a.agent_repo = Some(PathBuf::from(value()?)),
            "--snapshot-setting" => a.snapshot_settings.push(key_value(&flag, &value()?)?),
            "--kafka-setting" => a.kafka_settings.push(key_value(&flag, &value()?)?),
            "--results" => a.results = PathBuf::from(value()?),
            "--no-append" => a.append = false,
            "--keep-logs" => a.keep_logs = Some(PathBuf::from(value()?)),
            "--label" => a.label = value()?,
            "--min-free-gib" => a.min_free_gib = value()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
        }
    }
    if a.rate == 0 || a.ops_per_txn == 0 {
        return Err("--rate and --ops-per-txn must be > 0".into());
    }
    if !a.agent.exists() {
        return Err(format!("{} not found: build the agent first (cargo build --release)", a.agent.display()).into());
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------
// the writer

/// One committed writer transaction: its source id (PostgreSQL xid, MariaDB GTID) and its
/// changes `(op, id)`, op `c`/`u`/`d`.
struct WriterTx {
    txid: String,
    ops: Vec<(char, i64)>,
    /// Seconds since the agent's first start (negative: before it).
    at: f64,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Chooses the next transaction's changes: distinct ids, updates and deletes of live rows,
/// inserts of new ids.
struct Plan {
    rng: Rng,
    deleted: Vec<bool>,
    next_id: i64,
}

impl Plan {
    fn new(rows: u64) -> Plan {
        Plan { rng: Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(run_id())), deleted: vec![false; rows as usize + 1], next_id: rows as i64 + 1 }
    }
    fn txn(&mut self, n: usize) -> Vec<(char, i64)> {
        let bound = self.next_id;
        let mut ops: Vec<(char, i64)> = Vec::with_capacity(n);
        for _ in 0..n {
            let r = self.rng.next() % 100;
            if r >= 50 && r < 80 || bound <= 1 {
                ops.push(('c', self.next_id));
                self.next_id += 1;
                self.deleted.push(false);
                continue;
            }
            let mut id = None;
            for _ in 0..100 {
                let cand = 1 + (self.rng.next() % (bound as u64 - 1)) as i64;
                if !self.deleted[cand as usize] && !ops.iter().any(|(_, i)| *i == cand) {
                    id = Some(cand);
                    break;
                }
            }
            let Some(id) = id else { continue };
            if r < 50 {
                ops.push(('u', id));
            } else {
                ops.push(('d', id));
                self.deleted[id as usize] = true;
            }
        }
        ops
    }
}

struct Writer {
    log: Arc<Mutex<Vec<WriterTx>>>,
    stop: Arc<AtomicBool>,
    /// Seconds since the agent's first start are counted from this.
    t0: Arc<Mutex<Instant>>,
}

impl Writer {
    fn at(&self) -> f64 {
        let t0 = *self.t0.lock().unwrap();
        let now = Instant::now();
        if now >= t0 {
            now.duration_since(t0).as_secs_f64()
        } else {
            -t0.duration_since(now).as_secs_f64()
        }
    }
}

async fn pg_writer(env: Env, db: String, rows: u64, rate: u64, per_txn: usize, w: Arc<Writer>) -> Result<()> {
    let mut c = pg_connect(&env.pg_url(&db)).await?;
    let ins = c
        .prepare(
            "INSERT INTO t VALUES ($1::bigint, $1::bigint % 1000, ($1::bigint % 100000) / 100.0, md5($1::bigint::text), 'w', \
             repeat(md5(($1::bigint * 31)::text), 4), 0)",
        )
        .await?;
    let upd = c
        .prepare(
            "UPDATE t SET ver = ver + 1, amount = amount + 1, note = CASE WHEN note IS NULL THEN 'u' ELSE NULL END WHERE id = $1",
        )
        .await?;
    let del = c.prepare("DELETE FROM t WHERE id = $1").await?;
    let mut plan = Plan::new(rows);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(per_txn as f64 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !w.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let ops = plan.txn(per_txn);
        let tx = c.transaction().await?;
        for (op, id) in &ops {
            let st = match op {
                'c' => &ins,
                'u' => &upd,
                _ => &del,
            };
            let n = tx.execute(st, &[id]).await?;
            if n != 1 {
                return Err(format!("writer: {op} {id} changed {n} rows").into());
            }
        }
        let xid: i64 = tx.query_one("SELECT (txid_current() % 4294967296)::bigint", &[]).await?.get(0);
        tx.commit().await?;
        let at = w.at();
        w.log.lock().unwrap().push(WriterTx { txid: xid.to_string(), ops, at });
    }
    Ok(())
}

async fn my_writer(env: Env, db: String, rows: u64, rate: u64, per_txn: usize, w: Arc<Writer>) -> Result<()> {
    let mut c = mysql_async::Conn::new(env.my_opts(Some(&db))).await?;
    let mut plan = Plan::new(rows);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(per_txn as f64 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !w.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let ops = plan.txn(per_txn);
        let mut tx = c.start_transaction(mysql_async::TxOpts::default()).await?;
        for (op, id) in &ops {
            match op {
                'c' => {
                    tx.exec_drop(
                        "INSERT INTO t VALUES (?, ? % 1000, (? % 100000) / 100, md5(?), 'w', REPEAT(md5(? * 31), 4), 0)",
                        (id, id, id, id, id),
                    )
                    .await?
                }
                'u' => {
                    tx.exec_drop(
                        "UPDATE t SET ver = ver + 1, amount = amount + 1, note = IF(note IS NULL, 'u', NULL) WHERE id = ?",
                        (id,),
                    )
                    .await?
                }
                _ => tx.exec_drop("DELETE FROM t WHERE id = ?", (id,)).await?,
            }
            if tx.affected_rows() != 1 {
                return Err(format!("writer: {op} {id} changed {} rows", tx.affected_rows()).into());
            }
        }
        tx.commit().await?;
        let gtid: Option<String> = c.query_first("SELECT @@last_gtid").await?;
        let at = w.at();
        w.log.lock().unwrap().push(WriterTx { txid: gtid.unwrap_or_default(), ops, at });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// the watcher

#[derive(Default)]
struct Watch {
    /// Per second since the agent's first start: (snapshot rows, changes) that became visible.
    per_sec: Vec<(u64, u64)>,
    /// Moments (ms since the first start) at which records became visible, at most one per 10 ms.
    moments: Vec<u64>,
    /// max(visible − producer timestamp), ms, and when (s since the first start).
    max_lag_ms: i64,
    max_lag_at: f64,
    /// Source transactions of the changes seen.
    txids: HashSet<String>,
    snapshot_rows: u64,
    changes: u64,
}

fn watcher(kafka: String, topic: String, t0: Instant, w: Arc<Mutex<Watch>>, stop: Arc<AtomicBool>) -> Result<()> {
    let c = committed_consumer(&kafka, "snapsuite-watch")?;
    let parts = loop {
        if let Some(p) = partitions(&c, &topic) {
            break p;
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assign_from_start(&c, &topic, &parts)?;
    while !stop.load(Ordering::Relaxed) {
        match c.poll(Duration::from_millis(50)) {
            None | Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) if !consumer_error_is_fatal(&e) => eprintln!("(watching {topic}: {e}; continuing)"),
            Some(Err(e)) => return Err(format!("watching {topic}: {e}").into()),
            Some(Ok(m)) => {
                let now = t0.elapsed();
                let now_ms = now.as_millis() as u64;
                let lag = e2e_common::now_us() / 1000 - m.timestamp().to_millis().unwrap_or(0);
                let op = header(&m, "cdc.op").unwrap_or("?");
                let mut w = w.lock().unwrap();
                let sec = now.as_secs() as usize;
                if w.per_sec.len() <= sec {
                    w.per_sec.resize(sec + 1, (0, 0));
                }
                if op == "r" {
                    w.per_sec[sec].0 += 1;
                    w.snapshot_rows += 1;
                } else {
                    w.per_sec[sec].1 += 1;
                    w.changes += 1;
                    if let Some(t) = header(&m, "cdc.txid") {
                        let t = txid_part(t).to_owned();
                        w.txids.insert(t);
                    }
                }
                if w.moments.last().is_none_or(|&l| now_ms >= l + 10) {
                    w.moments.push(now_ms);
                }
                if lag > w.max_lag_ms {
                    w.max_lag_ms = lag;
                    w.max_lag_at = now.as_secs_f64();
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// one database

#[derive(Default)]
struct Kill {
    at: f64,
    progress: u64,
    metric_rows: Option<f64>,
    committed_rows: u64,
    logged_rows: u64,
    by_time: bool,
}

#[derive(Default)]
struct Count {
    expected: u64,
    lost: u64,
    duplicated: u64,
    unexpected: u64,
    snapshot_rows: u64,
    snapshot_dup_keys: u64,
    records: u64,
    examples: Vec<String>,
}

#[derive(Default)]
struct Outcome {
    db: Option<Db>,
    table: TableInfo,
    writer_txns: usize,
    writer_ops: usize,
    writer_secs: f64,
    first_streamed: Option<(usize, f64)>,
    snapshot_secs: Option<f64>,
    kills: Vec<Kill>,
    incarnations: u32,
    resume_lines: Vec<String>,
    before_complete: (u64, u64),
    first_visible: Option<f64>,
    timeline: Vec<(f64, u64, u64)>,
    max_lag_ms: i64,
    max_lag_at: f64,
    max_gap: (f64, f64),
    max_gap_kill: (f64, f64),
    rows_compared: u64,
    mismatched: u64,
    missing: u64,
    extra: u64,
    state_examples: Vec<String>,
    table_topic: Count,
    store: Count,
    txn_metrics: String,
    exit: Option<i32>,
}

async fn one_db(args: &Args, env: &Env, kind: Db) -> Result<Outcome> {
    check_disk(args.min_free_gib)?;
    let db = format!("snapsuite_{}", run_id());
    let name = format!("snapsuite{}_{}", run_id(), kind.short());
    let rows = match kind {
        Db::Pg => args.pg_rows,
        Db::My => args.my_rows,
    };
    eprintln!("{}: making table t with {rows} rows…", kind.title());
    let result = run_db(args, env, kind, &db, &name, rows).await;
    e2e_common::delete_topics(&env.kafka, &name).await;
    match kind {
        Db::Pg => pg_drop(env, &db, &name).await,
        Db::My => my_drop(env, &db).await,
    }
    result
}

async fn run_db(args: &Args, env: &Env, kind: Db, db: &str, name: &str, rows: u64) -> Result<Outcome> {
    let mut out = Outcome { db: Some(kind), ..Default::default() };
    out.table = match kind {
        Db::Pg => pg_create(env, db, rows).await?,
        Db::My => my_create(env, db, rows).await?,
    };
    eprintln!("  {}", out.table.describe());
    check_disk(args.min_free_gib)?;

    // Writer first, so that it writes from before the snapshot starts to after it ends.
    let writer = Arc::new(Writer {
        log: Arc::new(Mutex::new(Vec::new())),
        stop: Arc::new(AtomicBool::new(false)),
        t0: Arc::new(Mutex::new(Instant::now() + Duration::from_secs(2))),
    });
    let writer_started = Instant::now();
    let writer_task = {
        let (env, db, w) = (env.clone(), db.to_owned(), writer.clone());
        let (rate, per) = (args.rate, args.ops_per_txn);
        match kind {
            Db::Pg => tokio::spawn(pg_writer(env, db, rows, rate, per, w)),
            Db::My => tokio::spawn(my_writer(env, db, rows, rate, per, w)),
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    let source = source_toml(env, kind, name, db, "initial", &args.snapshot_settings);
    let mut agent = AgentProc::new(&args.agent, env, name, &source, &args.kafka_settings)?;
    agent.start()?;
    let t0 = agent.started;
    *writer.t0.lock().unwrap() = t0;
    let watch = Arc::new(Mutex::new(Watch::default()));
    let watch_stop = Arc::new(AtomicBool::new(false));
    let watch_thread = {
        let (kafka, topic, w, s) = (env.kafka.clone(), format!("{name}.events"), watch.clone(), watch_stop.clone());
        std::thread::spawn(move || watcher(kafka, topic, t0, w, s))
    };
    let result = drive(args, env, kind, db, name, rows, &mut agent, &mut out, &writer, writer_task, &watch, writer_started).await;
    out.incarnations = agent.incarnations;
    if result.is_err() {
        agent.kill9();
    }
    watch_stop.store(true, Ordering::Relaxed);
    let watched = watch_thread.join().map_err(|_| "watcher panicked")?;
    if let Some(dir) = &args.keep_logs {
        let _ = std::fs::create_dir_all(dir);
        agent.keep_log(&dir.join(format!("{name}.log")));
    }
    result?;
    watched?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &Args,
    env: &Env,
    kind: Db,
    db: &str,
    name: &str,
    rows: u64,
    agent: &mut AgentProc,
    out: &mut Outcome,
    writer: &Arc<Writer>,
    writer_task: tokio::task::JoinHandle<Result<()>>,
    watch: &Arc<Mutex<Watch>>,
    writer_started: Instant,
) -> Result<()> {
    let t0 = agent.started;
    let complete = |a: &AgentProc| a.log_text().contains("snapshot complete");
    // Kills during the snapshot.
    let mut next_kill = 1;
    let mut last_print = Instant::now();
    let mut kill_windows: Vec<(f64, f64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(6 * 3600);
    loop {
        if writer_task.is_finished() {
            return Err(format!("the writer stopped: {:?}", writer_task.await).into());
        }
        if !agent.running()? {
            return Err(format!("the agent exited during the snapshot; log tail:\n{}", agent.log_tail(20)).into());
        }
        if complete(agent) {
            out.snapshot_secs = Some(t0.elapsed().as_secs_f64());
            break;
        }
        if Instant::now() > deadline {
            return Err("the snapshot did not complete within 6 hours".into());
        }
        let committed = watch.lock().unwrap().snapshot_rows;
        let metric = agent.metrics().and_then(|m| metric_sum(&m, "cdc_agent_snapshot_rows_total").or_else(|| metric_sum(&m, "cdc_agent_snapshot_rows")));
        // The MySQL snapshot reports no cdc_agent_snapshot_rows: its `snapshot progress` log
        // lines (every 5 s) of this incarnation are the third source.
        let logged = {
            let text = agent.log_text();
            let marker = format!("incarnation {} started", agent.incarnations);
            let mine = text.rfind(&marker).map_or("", |i| &text[i..]);
            mine.lines()
                .filter(|l| l.contains("snapshot progress"))
                .filter_map(|l| log_field(l, "rows")?.parse::<u64>().ok())
                .next_back()
                .unwrap_or(0)
        };
        let progress = committed.max(metric.unwrap_or(0.0) as u64).max(logged);
        // Nothing tells how far this incarnation is (a snapshot in one transaction, without
        // metric, faster than its first progress line): kill it a while after it started.
        let silent = progress <= committed && agent.started.elapsed() >= Duration::from_secs_f64(args.kill_after_secs);
        // Only once a chunk is committed: before that a restart has no resume point to show
        // (a busy machine can take longer than kill_after_secs for the first chunk).
        let silent_kill = silent && committed > 0 && committed < rows * u64::from(next_kill) / u64::from(args.kills + 1) && {
            let text = agent.log_text();
            let marker = format!("incarnation {} started", agent.incarnations);
            text.rfind(&marker).is_some_and(|i| text[i..].contains("snapshot starting") || text[i..].contains("snapshot resuming"))
        };
        if next_kill <= args.kills && (silent_kill || progress >= rows * u64::from(next_kill) / u64::from(args.kills + 1)) {
            let at = t0.elapsed().as_secs_f64();
            agent.kill9();
            eprintln!(
                "  kill -9 #{next_kill} at {at:.1} s: progress {progress} (committed snapshot rows {committed}, this incarnation's cdc_agent_snapshot_rows {metric:?}, logged {logged})"
            );
            out.kills.push(Kill { at, progress, metric_rows: metric, committed_rows: committed, logged_rows: logged, by_time: silent_kill });
            agent.start()?;
            kill_windows.push((at, t0.elapsed().as_secs_f64()));
            next_kill += 1;
            continue;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {:.0} s: snapshot progress {progress} of ~{rows} (committed {committed}), writer {} txns",
                t0.elapsed().as_secs_f64(),
                writer.log.lock().unwrap().len()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("  snapshot complete at {:.1} s after {} kills", out.snapshot_secs.unwrap_or(0.0), out.kills.len());
    out.txn_metrics = agent
        .metrics()
        .map(|m| m.lines().filter(|l| l.contains("transaction")).collect::<Vec<_>>().join("; "))
        .unwrap_or_default();

    // Streaming for a while, then the writer stops and the agent catches up.
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    writer.stop.store(true, Ordering::Relaxed);
    writer_task.await??;
    out.writer_secs = writer_started.elapsed().as_secs_f64();
    let last = writer.log.lock().unwrap().last().map(|t| t.txid.clone());
    if let Some(last) = last {
        let wait = Instant::now();
        while !watch.lock().unwrap().txids.contains(&last) {
            agent.running()?;
            if wait.elapsed() > Duration::from_secs(600) {
                return Err(format!("the writer's last transaction {last} did not reach the event store within 10 minutes").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let m = agent.metrics();
    if let Some(m) = m {
        let t: Vec<&str> = m.lines().filter(|l| l.contains("transaction")).collect();
        out.txn_metrics = t.join("; ");
    }
    out.exit = agent.stop();
    eprintln!("  caught up; agent stopped (exit {:?}); verifying…", out.exit);

    // What the watcher saw.
    {
        let w = watch.lock().unwrap();
        let done = out.snapshot_secs.unwrap_or(f64::INFINITY);
        for (s, (r, ch)) in w.per_sec.iter().enumerate() {
            // At least a second before the log line: the commit of a one-transaction snapshot
            // lands just before it and is not "during".
            if (s as f64) + 2.0 <= done {
                out.before_complete.0 += r;
                out.before_complete.1 += ch;
            }
            if out.first_visible.is_none() && r + ch > 0 {
                out.first_visible = Some(s as f64);
            }
        }
        // Cumulative visible records at 25/50/75/100 % of the snapshot's duration.
        if done.is_finite() {
            for q in [0.25, 0.5, 0.75, 1.0] {
                let until = (done * q).round() as usize;
                let (r, ch) = w.per_sec.iter().take(until).fold((0, 0), |a, x| (a.0 + x.0, a.1 + x.1));
                out.timeline.push((done * q, r, ch));
            }
        }
        out.max_lag_ms = w.max_lag_ms;
        out.max_lag_at = w.max_lag_at;
        // Longest pause in progress during the snapshot (from the agent's start), apart from
        // pauses that contain a kill.
        let done_ms = (done * 1000.0) as u64;
        let mut prev = 0u64;
        for &m in w.moments.iter().filter(|&&m| m <= done_ms).chain(std::iter::once(&done_ms)) {
            let gap = (m - prev) as f64 / 1000.0;
            let (a, b) = (prev as f64 / 1000.0, m as f64 / 1000.0);
            let with_kill = kill_windows.iter().any(|(k, _)| *k >= a && *k <= b);
            let slot = if with_kill { &mut out.max_gap_kill } else { &mut out.max_gap };
            if gap > slot.0 {
                *slot = (gap, a);
            }
            prev = m;
            if m >= done_ms {
                break;
            }
        }
    }
    out.resume_lines = agent
        .log_text()
        .lines()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("snapshot") && l.contains("resum")
        })
        .map(|l| {
            let fields: Vec<String> = ["table", "after_key", "rows_done"]
                .iter()
                .filter_map(|f| log_field(l, f).map(|v| format!("{f}={v}")))
                .collect();
            if fields.is_empty() { l.to_owned() } else { format!("{} {}", log_field(l, "message").unwrap_or_default(), fields.join(" ")) }
        })
        .collect();

    verify(env, kind, db, name, out, &writer.log.lock().unwrap())?;
    let _ = rows;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// verification

fn verify(env: &Env, kind: Db, db: &str, name: &str, out: &mut Outcome, wlog: &[WriterTx]) -> Result<()> {
    out.writer_txns = wlog.len();
    out.writer_ops = wlog.iter().map(|t| t.ops.len()).sum();
    // (txid, op, id) → count, per topic.
    let mut table_changes: HashMap<(String, char, i64), u32> = HashMap::new();
    let mut store_changes: HashMap<(String, char, i64), u32> = HashMap::new();
    let mut state: Vec<u64> = Vec::new();
    let mut r_table: Vec<u8> = Vec::new();
    let mut r_store: Vec<u8> = Vec::new();
    fn slot<T: Default + Clone>(v: &mut Vec<T>, id: i64) -> &mut T {
        let i = id.max(0) as usize;
        if v.len() <= i {
            v.resize(i + 1, T::default());
        }
        &mut v[i]
    }
    let mut schemas = Schemas::new(&env.registry);
    let topic = kind.table_topic(name, db);
    let mut table_records = 0;
    let mut undecodable = 0u64;
    let n = read_to_end(&env.kafka, &topic, |m| {
        table_records += 1;
        let Some(id) = m.key().and_then(key_id) else {
            undecodable += 1;
            return Ok(());
        };
        let Some(v) = m.payload() else {
            *slot(&mut state, id) = 0;
            return Ok(());
        };
        let d = schemas.decode(v)?;
        let op = d.op.chars().next().unwrap_or('?');
        if op == 'r' {
            let c = slot(&mut r_table, id);
            *c = c.saturating_add(1);
        } else {
            let t = txid_part(d.txid.as_deref().unwrap_or("")).to_owned();
            *table_changes.entry((t, op, id)).or_default() += 1;
        }
        *slot(&mut state, id) = if op == 'd' { 0 } else { d.after_hash.unwrap_or(0) };
        if d.after_id.is_some_and(|a| a != id) {
            return Err(format!("record key {id} but after.id {:?}", d.after_id).into());
        }
        Ok(())
    })?;
    eprintln!("  table topic: {n} records");
    let store_topic = format!("{name}.events");
    let n = read_to_end(&env.kafka, &store_topic, |m| {
        let Some(id) = m.key().and_then(store_key_id) else {
            undecodable += 1;
            return Ok(());
        };
        let op = header(m, "cdc.op").and_then(|o| o.chars().next()).unwrap_or('?');
        if op == 'r' {
            let c = slot(&mut r_store, id);
            *c = c.saturating_add(1);
        } else {
            let t = txid_part(header(m, "cdc.txid").unwrap_or("")).to_owned();
            *store_changes.entry((t, op, id)).or_default() += 1;
        }
        Ok(())
    })?;
    eprintln!("  event store: {n} records");
    out.store.records = n;
    out.table_topic.records = table_records;
    if undecodable > 0 {
        out.state_examples.push(format!("{undecodable} records without a readable key"));
    }

    // Final state against the table.
    let rt = tokio::runtime::Handle::current();
    let mut visited: Vec<bool> = vec![false; state.len()];
    let (mut compared, mut mismatched, mut missing) = (0u64, 0u64, 0u64);
    let mut examples = Vec::new();
    let each = |id: i64, h: u64| {
        compared += 1;
        let i = id as usize;
        let k = state.get(i).copied().unwrap_or(0);
        if i < visited.len() {
            visited[i] = true;
        }
        if k == 0 {
            missing += 1;
            if examples.len() < 5 {
                examples.push(format!("id {id}: in the table, not (or deleted) in Kafka"));
            }
        } else if k != h {
            mismatched += 1;
            if examples.len() < 5 {
                examples.push(format!("id {id}: Kafka's latest value differs from the row"));
            }
        }
    };
    tokio::task::block_in_place(|| {
        rt.block_on(async {
            match kind {
                Db::Pg => pg_table_hashes(env, db, each).await,
                Db::My => my_table_hashes(env, db, each).await,
            }
        })
    })?;
    let mut extra = 0;
    for (i, &h) in state.iter().enumerate() {
        if h != 0 && !visited[i] {
            extra += 1;
            if examples.len() < 10 {
                examples.push(format!("id {i}: live in Kafka, not in the table"));
            }
        }
    }
    out.rows_compared = compared;
    out.mismatched = mismatched;
    out.missing = missing;
    out.extra = extra;
    out.state_examples.extend(examples);

    // Exactly once, against the writer's own record.
    let expected: HashSet<(String, char, i64)> =
        wlog.iter().flat_map(|t| t.ops.iter().map(|(op, id)| (t.txid.clone(), *op, *id))).collect();
    let first_seen = wlog.iter().position(|t| t.ops.iter().any(|(op, id)| table_changes.contains_key(&(t.txid.clone(), *op, *id))));
    out.first_streamed = first_seen.map(|i| (i, wlog[i].at));
    for (changes, r, count) in [(&table_changes, &r_table, &mut out.table_topic), (&store_changes, &r_store, &mut out.store)] {
        let first = wlog.iter().position(|t| t.ops.iter().any(|(op, id)| changes.contains_key(&(t.txid.clone(), *op, *id))));
        for t in wlog.iter().skip(first.unwrap_or(wlog.len())) {
            for (op, id) in &t.ops {
                count.expected += 1;
                match changes.get(&(t.txid.clone(), *op, *id)).copied().unwrap_or(0) {
                    0 => {
                        count.lost += 1;
                        if count.examples.len() < 5 {
                            count.examples.push(format!("lost: txn {} {op} id {id} (at {:.1} s)", t.txid, t.at));
                        }
                    }
                    1 => {}
                    n => {
                        count.duplicated += u64::from(n - 1);
                        if count.examples.len() < 5 {
                            count.examples.push(format!("{n}×: txn {} {op} id {id}", t.txid));
                        }
                    }
                }
            }
        }
        for (k, n) in changes.iter() {
            if !expected.contains(k) {
                count.unexpected += u64::from(*n);
                if count.examples.len() < 8 {
                    count.examples.push(format!("unexpected: txn {} {} id {} ({n}×)", k.0, k.1, k.2));
                }
            }
        }
        count.snapshot_rows = r.iter().map(|&c| u64::from(c)).sum();
        count.snapshot_dup_keys = r.iter().filter(|&&c| c > 1).count() as u64;
        if let Some(i) = r.iter().position(|&c| c > 1) {
            count.examples.push(format!("snapshot row of id {i} {}×", r[i]));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// report

fn check(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "**FAIL**"
    }
}

fn report_db(args: &Args, o: &mut String, r: &Outcome) {
    let kind = r.db.unwrap_or(Db::Pg);
    let _ = writeln!(o, "### {}\n", kind.title());
    let _ = writeln!(o, "- table: {} ({})", r.table.describe(), r.table.server_version);
    let _ = writeln!(
        o,
        "- writer: {} transactions, {} changes in {:.0} s ({:.0} changes/s; target {} rows/s in {}-change transactions)",
        r.writer_txns,
        r.writer_ops,
        r.writer_secs,
        r.writer_ops as f64 / r.writer_secs.max(1e-9),
        args.rate,
        args.ops_per_txn
    );
    let _ = writeln!(
        o,
        "- snapshot: `snapshot complete` {} s after the first agent start; agent incarnations {}; final exit {:?}",
        r.snapshot_secs.map_or("-".into(), |s| format!("{s:.1}")),
        r.incarnations,
        r.exit
    );
    if let Some((i, at)) = r.first_streamed {
        let _ = writeln!(
            o,
            "- first writer transaction streamed (table topic): #{i} of {}, committed at {at:.1} s (the ones before are in the snapshot)",
            r.writer_txns
        );
    }
    let _ = writeln!(o, "- agent transaction metrics at the end: `{}`\n", if r.txn_metrics.is_empty() { "none" } else { &r.txn_metrics });
    let _ = writeln!(o, "| check | result | |\n|---|---|---|");
    let state_ok = r.mismatched == 0 && r.missing == 0 && r.extra == 0 && r.rows_compared > 0;
    let _ = writeln!(
        o,
        "| final state: latest value per key in the table topic = the table | {} rows compared, {} differ, {} missing in Kafka, {} only in Kafka | {} |",
        r.rows_compared,
        r.mismatched,
        r.missing,
        r.extra,
        check(state_ok)
    );
    for (what, c) in [("table topic", &r.table_topic), ("event store", &r.store)] {
        let _ = writeln!(
            o,
            "| exactly once, {what}: writer changes from the first streamed one | {} expected, {} lost, {} duplicates, {} unexpected ({} records) | {} |",
            c.expected,
            c.lost,
            c.duplicated,
            c.unexpected,
            c.records,
            check(c.lost == 0 && c.duplicated == 0 && c.unexpected == 0 && c.expected > 0)
        );
        let _ = writeln!(
            o,
            "| snapshot rows once per key, {what} | {} snapshot rows, {} keys more than once | {} |",
            c.snapshot_rows,
            c.snapshot_dup_keys,
            check(c.snapshot_dup_keys == 0)
        );
    }
    let during = r.before_complete.0 + r.before_complete.1 > 0;
    let _ = writeln!(
        o,
        "| event store: new records visible (read_committed) during the snapshot | {} snapshot rows + {} changes visible ≥ 1 s before `snapshot complete`; first visible at {} | {} |",
        r.before_complete.0,
        r.before_complete.1,
        r.first_visible.map_or("never".into(), |s| format!("{s:.0} s")),
        check(during)
    );
    let kills_done = r.kills.len();
    let _ = writeln!(
        o,
        "| kill -9 during the snapshot, restart each time | {kills_done} of {} done | {} |",
        args.kills,
        check(kills_done as u32 == args.kills)
    );
    let _ = writeln!(
        o,
        "| `snapshot resuming` log line after each kill | {} found | {} |",
        r.resume_lines.len(),
        check(r.resume_lines.len() >= kills_done && (kills_done == 0 || !r.resume_lines.is_empty()))
    );
    let _ = writeln!(
        o,
        "| longest Kafka transaction (estimate: max visible − producer timestamp on the event store) | {:.1} s (visible at {:.0} s) | measured |",
        r.max_lag_ms as f64 / 1000.0,
        r.max_lag_at
    );
    let _ = writeln!(
        o,
        "| longest pause in the event store's read_committed progress during the snapshot | {:.1} s from {:.0} s; with a kill in it: {:.1} s from {:.0} s | measured |\n",
        r.max_gap.0,
        r.max_gap.1,
        r.max_gap_kill.0,
        r.max_gap_kill.1
    );
    if !r.timeline.is_empty() {
        let _ = writeln!(o, "Event store, read_committed, cumulative records visible:\n\n| at s | snapshot rows | changes |\n|---|---|---|");
        for (t, a, b) in &r.timeline {
            let _ = writeln!(o, "| {t:.1} | {a} | {b} |");
        }
        let _ = writeln!(o);
    }
    if !r.kills.is_empty() {
        let _ = writeln!(o, "Kills:\n\n| # | at s | progress | committed snapshot rows | this incarnation's cdc_agent_snapshot_rows | its last `snapshot progress` rows | why |\n|---|---|---|---|---|---|---|");
        for (i, k) in r.kills.iter().enumerate() {
            let _ = writeln!(
                o,
                "| {} | {:.1} | {} | {} | {} | {} | {} |",
                i + 1,
                k.at,
                k.progress,
                k.committed_rows,
                k.metric_rows.map_or("-".into(), |m| format!("{m:.0}")),
                k.logged_rows,
                if k.by_time { "no progress shown: time" } else { "progress threshold" }
            );
        }
        let _ = writeln!(o);
    }
    if r.resume_lines.is_empty() {
        let _ = writeln!(o, "Resume lines: none in the agent's log.\n");
    } else {
        let _ = writeln!(o, "Resume lines:\n\n```text\n{}\n```\n", r.resume_lines.iter().take(10).cloned().collect::<Vec<_>>().join("\n"));
    }
    let ex: Vec<&String> = r.state_examples.iter().chain(&r.table_topic.examples).chain(&r.store.examples).collect();
    if !ex.is_empty() {
        let _ = writeln!(o, "Examples:\n\n```text\n{}\n```\n", ex.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"));
    }
}

fn agent_commit(args: &Args) -> String {
    if let Some(repo) = &args.agent_repo {
        let c = shell("git", &["-C", &repo.display().to_string(), "log", "-1", "--format=%h %s (%cd)", "--date=format:%Y-%m-%d %H:%M"]);
        if !c.is_empty() {
            return format!("built from {} at {c}", repo.display());
        }
    }
    e2e_common::agent_commit(&args.agent).unwrap_or_else(|| "commit unknown".into())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let env = Env::from_env()?;
    let load_start = load_average();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## {} — snapshot suite{}\n",
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        if args.label.is_empty() { String::new() } else { format!(" ({})", args.label) }
    );
    let _ = writeln!(
        o,
        "- machine: `{}`, {}, {} cores, {:.1} GiB RAM",
        shell("uname", &["-m"]),
        e2e_common::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        e2e_common::ram_gib()
    );
    let _ = writeln!(
        o,
        "- cdc-agent `{}` ({}), exactly-once, `[snapshot] mode = \"initial\"`{}",
        args.agent.display(),
        agent_commit(&args),
        if args.snapshot_settings.is_empty() && args.kafka_settings.is_empty() {
            ", default chunk size".to_string()
        } else {
            format!("; set: {:?} {:?}", args.snapshot_settings, args.kafka_settings)
        }
    );
    let _ = writeln!(
        o,
        "- `snapshot-suite --pg-rows {} --my-rows {} --rate {} --ops-per-txn {} --kills {} --settle-secs {}`",
        args.pg_rows, args.my_rows, args.rate, args.ops_per_txn, args.kills, args.settle_secs
    );
    let mut failed = false;
    let mut sections = String::new();
    for &kind in &args.dbs {
        match one_db(&args, &env, kind).await {
            Ok(r) => report_db(&args, &mut sections, &r),
            Err(e) => {
                failed = true;
                eprintln!("{}: {e}", kind.title());
                let _ = writeln!(sections, "### {}\n\nThe run failed: {e}\n", kind.title());
            }
        }
    }
    let _ = writeln!(o, "- load average (1/5/15 min): {load_start} at the start, {} at the end\n", load_average());
    o.push_str(&sections);
    println!("\n{o}");
    if args.append {
        let fresh = !args.results.exists();
        let mut text = String::new();
        if fresh {
            text.push_str(
                "# Snapshot suite results\n\nAppended by `scripts/test-snapshots` (bench/snapshot, `snapshot-suite`); newest last.\n\
                 What each check means: the header of bench/snapshot/src/bin/suite.rs.\n",
            );
        }
        text.push('\n');
        text.push_str(&o);
        use std::io::Write as _;
        std::fs::OpenOptions::new().create(true).append(true).open(&args.results)?.write_all(text.as_bytes())?;
        eprintln!("appended to {}", args.results.display());
    }
    if failed || o.contains("**FAIL**") {
        std::process::exit(1);
    }
    Ok(())
}
