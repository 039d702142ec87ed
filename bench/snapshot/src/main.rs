//! `snapshot-bench`: how fast the agent's initial snapshot is, next to what the database can
//! hand out at all, on the same machine and in the same run.
//!
//! For each database (`--dbs pg,my`):
//! 1. makes database `snapbench_<pid>` with table `t` (see src/lib.rs; default 10,000,000 rows
//!    ≈ 2.5 GB on PostgreSQL, 5,000,000 rows on MariaDB), filled server-side
//!    (`generate_series`; MariaDB's sequence engine in batches, without binary logging);
//! 2. the **ceiling**: `psql -c "COPY (SELECT * FROM t) TO STDOUT" > /dev/null`, resp.
//!    `mariadb --quick -e "SELECT * FROM db.t" > /dev/null`, wall time, best of two runs (the
//!    first also warms the page cache for the agent);
//! 3. the **agent** (release build, exactly-once, `[snapshot] mode = "initial_only"`, its own
//!    configuration in a temp dir): rows/s = rows / (agent process start → a read_committed
//!    consumer of the table topic has seen every row). The time of the agent's
//!    `snapshot complete` log line is reported beside it. Peak RSS = the agent's VmHWM
//!    (sampled every 100 ms, last value before exit), CPU = user + system seconds;
//! 4. prints the ratio to the ceiling (goal ≥ 0.7) and peak RSS (goal ≤ 128 MiB), appends a
//!    dated section to bench/RESULTS.md, drops the database, its slot and its topics.
//!
//! A run killed from outside leaves `snapbench_<pid>` (both databases), the slot and topics
//! `snapbench<pid>_*` behind: drop them by hand.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_common::{
    append_results, consumer_error_is_fatal, cpu_model, goals_table, kafka_version, key_value, load_1m, load_average,
    proc_cpu_secs, proc_kib, ram_gib, run_id, shell, Goal,
};
use snapshot::{
    assign_from_start, check_disk, committed_consumer, my_create, my_drop, partitions, pg_create, pg_drop, source_toml,
    AgentProc, Db, Env, Result, TableInfo,
};

const USAGE: &str = "usage: snapshot-bench [--pg-rows N (10000000)] [--my-rows N (5000000)] [--dbs pg,my]
    [--agent PATH (target/release/cdc-agent)] [--snapshot-setting KEY=VALUE (a [snapshot] key, e.g. chunk_size=10000; repeatable)]
    [--kafka-setting KEY=VALUE (a [kafka] key; repeatable)] [--keep-logs DIR] [--label TEXT] [--no-append]
    [--min-free-gib N (20: refuse to start a database below this)]
    [--agent-repo DIR (the checkout the agent was built from, for its commit in the report)]
environment (eval \"$(scripts/stack env)\"): PG_URL PG_AGENT_URL PG_BIN_DIR MYSQL_URL MYSQL_AGENT_URL
    KAFKA_BOOTSTRAP SCHEMA_REGISTRY_URL";

struct Args {
    pg_rows: u64,
    my_rows: u64,
    dbs: Vec<Db>,
    agent: PathBuf,
    snapshot_settings: Vec<(String, String)>,
    kafka_settings: Vec<(String, String)>,
    keep_logs: Option<PathBuf>,
    label: String,
    append: bool,
    min_free_gib: f64,
    agent_repo: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        pg_rows: 10_000_000,
        my_rows: 5_000_000,
        dbs: vec![Db::Pg, Db::My],
        agent: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/cdc-agent")),
        snapshot_settings: Vec::new(),
        kafka_settings: Vec::new(),
        keep_logs: None,
        label: String::new(),
        append: true,
        min_free_gib: 20.0,
        agent_repo: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--pg-rows" => a.pg_rows = value()?.parse()?,
            "--my-rows" => a.my_rows = value()?.parse()?,
            "--dbs" => a.dbs = Db::parse_list(&value()?)?,
            "--agent" => a.agent = PathBuf::from(value()?),
            "--snapshot-setting" => a.snapshot_settings.push(key_value(&flag, &value()?)?),
            "--kafka-setting" => a.kafka_settings.push(key_value(&flag, &value()?)?),
            "--keep-logs" => a.keep_logs = Some(PathBuf::from(value()?)),
            "--label" => a.label = value()?,
            "--min-free-gib" => a.min_free_gib = value()?.parse()?,
            "--agent-repo" => a.agent_repo = Some(PathBuf::from(value()?)),
            "--no-append" => a.append = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
        }
    }
    if !a.agent.exists() {
        return Err(format!("{} not found: build the agent first (cargo build --release)", a.agent.display()).into());
    }
    Ok(a)
}

#[derive(Debug, Clone)]
struct Run {
    db: Db,
    table: TableInfo,
    ceiling_secs: Vec<f64>,
    /// Agent start → consumer saw every row.
    agent_secs: f64,
    /// Agent start → `snapshot complete` in its log.
    log_secs: Option<f64>,
    peak_rss_mib: f64,
    cpu_secs: f64,
    records: u64,
    exit: Option<i32>,
    load: String,
}

impl Run {
    fn ceiling_rate(&self) -> f64 {
        let best = self.ceiling_secs.iter().copied().fold(f64::INFINITY, f64::min);
        self.table.rows as f64 / best
    }
    fn agent_rate(&self) -> f64 {
        self.table.rows as f64 / self.agent_secs
    }
}

/// Wall time of a reader that writes the whole table to /dev/null.
fn ceiling(env: &Env, kind: Db, db: &str) -> Result<f64> {
    let mut cmd = match kind {
        Db::Pg => {
            let mut c = Command::new(env.pg_bin_dir.join("psql"));
            c.args(["-X", "-q", "-d", &env.pg_url(db), "-c", "COPY (SELECT * FROM t) TO STDOUT"]);
            c
        }
        Db::My => {
            let a = &env.my_admin;
            let mut c = Command::new("mariadb");
            c.args([
                "--quick",
                "-h",
                &a.host,
                "-P",
                &a.port.to_string(),
                "-u",
                &a.user,
                &format!("-p{}", a.password),
                "-e",
                &format!("SELECT * FROM `{db}`.t"),
            ]);
            c
        }
    };
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).status()?;
    if !status.success() {
        return Err(format!("ceiling reader failed: {status}").into());
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn agent_run(args: &Args, env: &Env, kind: Db, db: &str, rows: u64) -> Result<(f64, Option<f64>, f64, f64, u64, Option<i32>)> {
    let name = format!("snapbench{}_{}", run_id(), kind.short());
    let source = source_toml(env, kind, &name, db, "initial_only", &args.snapshot_settings);
    let mut agent = AgentProc::new(&args.agent, env, &name, &source, &args.kafka_settings)?;
    let topic = kind.table_topic(&name, db);
    let seen = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    agent.start()?;
    let counter = {
        let (kafka, seen, stop) = (env.kafka.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || -> Result<Instant> {
            let c = committed_consumer(&kafka, "snapbench")?;
            let parts = loop {
                if let Some(p) = partitions(&c, &topic) {
                    break p;
                }
                if stop.load(Ordering::Relaxed) {
                    return Err(format!("topic {topic} never appeared").into());
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            assign_from_start(&c, &topic, &parts)?;
            let mut n = 0;
            while n < rows {
                if stop.load(Ordering::Relaxed) {
                    return Err(format!("stopped after {n} of {rows} rows").into());
                }
                match c.poll(Duration::from_millis(100)) {
                    None | Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) if !consumer_error_is_fatal(&e) => eprintln!("(reading {topic}: {e}; continuing)"),
                    Some(Err(e)) => return Err(format!("reading {topic}: {e}").into()),
                    Some(Ok(_)) => {
                        n += 1;
                        seen.store(n, Ordering::Relaxed);
                    }
                }
            }
            Ok(Instant::now())
        })
    };
    let pid = agent.pid().ok_or("agent did not start")?;
    let (mut peak, mut cpu, mut log_secs) = (0u64, 0.0f64, None);
    let mut exit = None;
    let mut last_print = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(4 * 3600);
    let mut exited = false;
    while !counter.is_finished() {
        if !exited {
            if let Some(k) = proc_kib(pid, "VmHWM:") {
                peak = peak.max(k);
                cpu = proc_cpu_secs(pid);
            }
            match agent.running() {
                Ok(true) => {}
                Ok(false) => exited = true,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    let _ = counter.join();
                    return Err(e);
                }
            }
        }
        if log_secs.is_none() && agent.log_text().contains("snapshot complete") {
            log_secs = Some(agent.started.elapsed().as_secs_f64());
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {:.0} s: {} of {rows} rows committed, RSS peak {:.1} MiB",
                agent.started.elapsed().as_secs_f64(),
                seen.load(Ordering::Relaxed),
                peak as f64 / 1024.0
            );
            last_print = Instant::now();
        }
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = counter.join().map_err(|_| "counter panicked")??;
    let secs = done.duration_since(agent.started).as_secs_f64();
    // The log line may come a moment after the last commit is visible.
    let wait = Instant::now();
    while log_secs.is_none() && wait.elapsed() < Duration::from_secs(30) {
        if agent.log_text().contains("snapshot complete") {
            log_secs = Some(agent.started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(k) = proc_kib(pid, "VmHWM:") {
        peak = peak.max(k);
        cpu = proc_cpu_secs(pid);
    }
    if !exited {
        exit = agent.stop();
    }
    if let Some(dir) = &args.keep_logs {
        let _ = std::fs::create_dir_all(dir);
        agent.keep_log(&dir.join(format!("{name}.log")));
    }
    Ok((secs, log_secs, peak as f64 / 1024.0, cpu, seen.load(Ordering::Relaxed), exit))
}

async fn one_db(args: &Args, env: &Env, kind: Db) -> Result<Run> {
    check_disk(args.min_free_gib)?;
    let db = format!("snapbench_{}", run_id());
    let rows = match kind {
        Db::Pg => args.pg_rows,
        Db::My => args.my_rows,
    };
    eprintln!("{}: making table t with {rows} rows…", kind.title());
    let result = async {
        let table = match kind {
            Db::Pg => pg_create(env, &db, rows).await?,
            Db::My => my_create(env, &db, rows).await?,
        };
        eprintln!("  {}", table.describe());
        check_disk(args.min_free_gib)?;
        let mut ceiling_secs = Vec::new();
        for _ in 0..2 {
            let (env2, db2) = (env.clone(), db.clone());
            let s = tokio::task::spawn_blocking(move || ceiling(&env2, kind, &db2)).await??;
            eprintln!("  ceiling: {s:.2} s, {:.0} rows/s", rows as f64 / s);
            ceiling_secs.push(s);
        }
        eprintln!("  agent snapshot (exactly-once, initial_only)…");
        let (agent_secs, log_secs, peak_rss_mib, cpu_secs, records, exit) = agent_run(args, env, kind, &db, rows).await?;
        let run = Run {
            db: kind,
            table,
            ceiling_secs,
            agent_secs,
            log_secs,
            peak_rss_mib,
            cpu_secs,
            records,
            exit,
            load: load_1m(),
        };
        eprintln!(
            "  agent: {:.1} s, {:.0} rows/s ({:.2} of the ceiling), `snapshot complete` at {}, peak RSS {:.1} MiB, CPU {:.1} s",
            run.agent_secs,
            run.agent_rate(),
            run.agent_rate() / run.ceiling_rate(),
            run.log_secs.map_or("-".into(), |s| format!("{s:.1} s")),
            run.peak_rss_mib,
            run.cpu_secs
        );
        Ok::<_, snapshot::BoxError>(run)
    }
    .await;
    let prefix = format!("snapbench{}_{}", run_id(), kind.short());
    e2e_common::delete_topics(&env.kafka, &prefix).await;
    match kind {
        Db::Pg => pg_drop(env, &db, &prefix).await,
        Db::My => my_drop(env, &db).await,
    }
    result
}

/// The commit the agent was built from: `--agent-repo`'s HEAD, else the checkout around the binary.
fn agent_commit(args: &Args) -> String {
    if let Some(repo) = &args.agent_repo {
        let c = shell("git", &["-C", &repo.display().to_string(), "log", "-1", "--format=%h (%cd)", "--date=format:%Y-%m-%d %H:%M"]);
        if !c.is_empty() {
            return format!("built from {} at {c}", repo.display());
        }
    }
    e2e_common::agent_commit(&args.agent).unwrap_or_else(|| "commit unknown".into())
}

fn report(args: &Args, runs: &[Run], load_start: &str, load_end: &str) -> String {
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## {} — snapshot{}\n",
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        if args.label.is_empty() { String::new() } else { format!(" ({})", args.label) }
    );
    let _ = writeln!(
        o,
        "- machine: `{}`, {}, {} cores, {:.1} GiB RAM; Kafka {} (KRaft, one broker), all on loopback",
        shell("uname", &["-m"]),
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ram_gib(),
        kafka_version(&repo),
    );
    let _ = writeln!(
        o,
        "- cdc-agent `{}` ({}), exactly-once, `[snapshot] mode = \"initial_only\"`{}",
        args.agent.display(),
        agent_commit(args),
        if args.snapshot_settings.is_empty() && args.kafka_settings.is_empty() {
            ", other settings default".to_string()
        } else {
            format!("; set: {:?} {:?}", args.snapshot_settings, args.kafka_settings)
        }
    );
    let _ = writeln!(o, "- load average (1/5/15 min): {load_start} at the start, {load_end} at the end");
    let _ = writeln!(
        o,
        "- ceiling = `psql -c \"COPY (SELECT * FROM t) TO STDOUT\"` / `mariadb --quick -e \"SELECT * FROM db.t\"` \
         to /dev/null, best of 2; agent = process start → a read_committed consumer has seen every row \
         (`snapshot complete` log line shown beside); peak RSS = VmHWM\n"
    );
    let _ = writeln!(o, "| database | server | table | ceiling s (runs) | ceiling rows/s | agent s | agent rows/s | ratio | `snapshot complete` at s | peak RSS MiB | agent CPU s | records | exit | load 1m |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.0} | {:.2} | {} | {:.1} | {:.1} | {} | {:?} | {} |",
            r.db.title(),
            r.table.server_version.split_whitespace().next().unwrap_or(""),
            r.table.describe(),
            r.ceiling_secs.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", "),
            r.ceiling_rate(),
            r.agent_secs,
            r.agent_rate(),
            r.agent_rate() / r.ceiling_rate(),
            r.log_secs.map_or("-".into(), |s| format!("{s:.1}")),
            r.peak_rss_mib,
            r.cpu_secs,
            r.records,
            r.exit,
            r.load,
        );
    }
    let _ = writeln!(o);
    let mut goals: Vec<Goal> = Vec::new();
    for r in runs {
        let ratio = r.agent_rate() / r.ceiling_rate();
        goals.push((
            if r.db == Db::Pg { "snapshot rate / COPY to /dev/null, PostgreSQL" } else { "snapshot rate / mariadb --quick, MariaDB" },
            "≥ 0.70".into(),
            format!("{ratio:.2}"),
            ratio >= 0.7,
        ));
        goals.push((
            if r.db == Db::Pg { "peak RSS, PostgreSQL snapshot" } else { "peak RSS, MariaDB snapshot" },
            "≤ 128 MiB".into(),
            format!("{:.1} MiB", r.peak_rss_mib),
            r.peak_rss_mib <= 128.0,
        ));
    }
    goals_table(&mut o, "Goals:", goals);
    o
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let env = Env::from_env()?;
    let load_start = load_average();
    let mut runs = Vec::new();
    for &kind in &args.dbs {
        runs.push(one_db(&args, &env, kind).await?);
    }
    let text = report(&args, &runs, &load_start, &load_average());
    println!("\n{text}");
    if args.append {
        append_results(&PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../RESULTS.md")), &text)?;
    }
    Ok(())
}
