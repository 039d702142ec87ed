//! Drains one WAL backlog with several PostgreSQL replication clients and compares them.
//!
//! Why: the agent needs its own replication client because upstream tokio-postgres has no
//! CopyBoth mode, and the choice between writing one and adopting a crate should rest on
//! figures measured here, on the same data, not on claims (see
//! `docs/decisions/0002-postgres-replication-client.md`).
//!
//! What it does: makes a database with one table and a publication, creates one logical slot
//! per reader and round *before* writing, writes the backlog (by default 500,000 rows in
//! 5-row transactions, then one 1,000,000-row transaction), marks the end with a
//! non-transactional logical message, and then lets each reader drain its own slot up to
//! that marker, one reader at a time:
//!
//! * `ours`: `cdc_agent::source::postgres::replication`;
//! * `pgwire-replication` 0.5 (raw `XLogData` events; it decodes Begin/Commit itself);
//! * `pg_walstream` 0.10 (`next_raw_event`, libpq backend: its rustls backend needs a
//!   `webpki-roots` release the registry does not serve here);
//! * `pg_recvlogical` writing to `/dev/null` with `--endpos`.
//!
//! The Rust readers decode every pgoutput payload with the agent's decoder and touch every
//! column, so they do comparable work. All use pgoutput protocol version 1 (the only one
//! `pgwire-replication` speaks) with `messages` on.
//!
//! Against the real server the walsender (one core decoding WAL) sets the pace, so a second
//! phase replays the same stream, recorded once, from a minimal in-process server: that
//! measures what each client costs per message (`--no-replay` skips it).
//!
//! Prints a table and appends a dated section to `bench/RESULTS.md`. Drops its slots and
//! database at the end, also when a step fails; a run killed from outside leaves
//! `repl_bench_<pid>` and its `bench_*` slots behind, to drop by hand.
//!
//! ```text
//! eval "$(scripts/stack env)"          # PG_URL (superuser), PG_BIN_DIR
//! cd bench/pg-replication-clients && cargo run --release -- [--rows N] [--txn-rows N]
//!     [--big-txn N] [--rounds N (default 2)] [--readers ours,pgwire,walstream,recvlogical]
//!     [--no-append] [--no-replay]
//! ```

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use cdc_agent::source::postgres::pgoutput::{self, LogicalMessage};
use cdc_agent::source::postgres::replication::{ReplicationClient, ReplicationConfig};
use cdc_agent::source::postgres::wire::{self, Lsn, ReplicationFrame};

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

const PUBLICATION: &str = "bench_pub";
const END_PREFIX: &str = "cdc-bench-end";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reader {
    Ours,
    Pgwire,
    Walstream,
    Recvlogical,
}

impl Reader {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "ours" => Self::Ours,
            "pgwire" | "pgwire-replication" => Self::Pgwire,
            "walstream" | "pg_walstream" => Self::Walstream,
            "recvlogical" | "pg_recvlogical" => Self::Recvlogical,
            other => return Err(format!("unknown reader {other:?}").into()),
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::Ours => "ours (postgres-protocol)",
            Self::Pgwire => "pgwire-replication 0.5",
            Self::Walstream => "pg_walstream 0.10",
            Self::Recvlogical => "pg_recvlogical (C, libpq)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Pgwire => "pgwire",
            Self::Walstream => "walstream",
            Self::Recvlogical => "recvlogical",
        }
    }
}

struct Args {
    rows: u64,
    txn_rows: u64,
    big_txn: u64,
    rounds: usize,
    readers: Vec<Reader>,
    append: bool,
    replay: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        rows: 500_000,
        txn_rows: 5,
        big_txn: 1_000_000,
        rounds: 2,
        readers: vec![
            Reader::Ours,
            Reader::Pgwire,
            Reader::Walstream,
            Reader::Recvlogical,
        ],
        append: true,
        replay: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => args.rows = value()?.parse()?,
            "--txn-rows" => args.txn_rows = value()?.parse()?,
            "--big-txn" => args.big_txn = value()?.parse()?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--readers" => {
                args.readers = value()?
                    .split(',')
                    .map(Reader::parse)
                    .collect::<Result<_>>()?
            }
            "--no-append" => args.append = false,
            "--no-replay" => args.replay = false,
            "-h" | "--help" => {
                println!(
                    "usage: pg-replication-clients [--rows N] [--txn-rows N] [--big-txn N] \
                     [--rounds N] [--readers ours,pgwire,walstream,recvlogical] [--no-append] [--no-replay]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?}").into()),
        }
    }
    if args.txn_rows == 0 || args.rounds == 0 || args.readers.is_empty() {
        return Err("--txn-rows, --rounds and --readers must be non-empty".into());
    }
    Ok(args)
}

/// What one reader saw; every Rust reader decodes each payload with our decoder.
#[derive(Default, Debug)]
struct Counter {
    bytes: u64,
    messages: u64,
    rows: u64,
    commits: u64,
    column_bytes: u64,
    done: bool,
}

impl Counter {
    fn pgoutput(&mut self, data: &[u8]) -> Result<()> {
        self.bytes += data.len() as u64;
        self.messages += 1;
        match pgoutput::decode(data, false)? {
            LogicalMessage::Insert(ins) => {
                self.rows += 1;
                for col in ins.new.iter() {
                    self.column_bytes += col.bytes().map_or(0, |b| b.len() as u64);
                }
            }
            LogicalMessage::Commit(_) => self.commits += 1,
            LogicalMessage::Message(m) if m.prefix == END_PREFIX => self.done = true,
            _ => {}
        }
        Ok(())
    }
}

struct Run {
    reader: Reader,
    round: usize,
    secs: f64,
    cpu_secs: f64,
    counter: Option<Counter>,
}

/// Connection facts shared by the readers.
#[derive(Clone)]
struct Target {
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
}

impl Target {
    fn url(&self) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{}",
            self.user, self.password, self.host, self.port, self.database
        )
    }
}

/// CPU seconds (user + system) of this process and of its waited-for children, from
/// /proc/self/stat; clock ticks are 100 Hz on Linux unless the kernel says otherwise.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_comm
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let tick = |i: usize| fields.get(i).copied().unwrap_or(0.0) / 100.0;
    // After ")" the fields start at "state" (field 3), so utime (14) is index 11.
    (tick(11) + tick(12), tick(13) + tick(14))
}

/// Drains with our client; with `capture`, also records every `CopyData` message as it came
/// off the wire so [`replay`] can serve the identical stream again.
async fn drain_ours(t: &Target, slot: &str, mut capture: Option<&mut Vec<u8>>) -> Result<Counter> {
    let mut cfg = ReplicationConfig::from_url(&t.url())?;
    cfg.application_name = "bench-ours".into();
    let client = ReplicationClient::connect(&cfg).await?;
    let publications = format!("\"{PUBLICATION}\"");
    let mut stream = client
        .start_replication(
            slot,
            Lsn::INVALID,
            &[
                ("proto_version", "1"),
                ("publication_names", &publications),
                ("messages", "true"),
            ],
        )
        .await?;
    let mut c = Counter::default();
    let mut received = Lsn::INVALID;
    while !c.done {
        let frame = stream
            .recv()
            .await?
            .ok_or("server ended the stream before the end marker")?;
        if let Some(buf) = capture.as_deref_mut() {
            push_copy_data(buf, &frame);
        }
        match wire::decode_frame(&frame)? {
            ReplicationFrame::XLogData(x) => {
                received = received.max(x.wal_start);
                c.pgoutput(x.data)?;
            }
            ReplicationFrame::PrimaryKeepalive(k) => {
                if k.reply_requested {
                    // Report receipt only: flush stays 0/0 so the slot is not advanced.
                    stream
                        .send_status(received, Lsn::INVALID, Lsn::INVALID, false)
                        .await?;
                }
            }
        }
    }
    Ok(c)
}

async fn drain_pgwire(t: &Target, slot: &str) -> Result<Counter> {
    use pgwire_replication::{ReplicationEvent, TlsConfig};
    let cfg = pgwire_replication::ReplicationConfig::new(
        t.host.clone(),
        t.user.clone(),
        t.password.clone(),
        t.database.clone(),
        slot,
        PUBLICATION,
    )
    .with_port(t.port)
    .with_tls(TlsConfig::disabled())
    .with_application_name("bench-pgwire");
    let mut client = pgwire_replication::ReplicationClient::connect(cfg).await?;
    let mut c = Counter::default();
    while !c.done {
        match client.recv().await? {
            Some(ReplicationEvent::XLogData { data, .. }) => c.pgoutput(&data)?,
            // The crate decodes transaction boundaries itself and hands out only the result;
            // count the pgoutput bytes those messages had (fixed sizes in protocol 1).
            Some(ReplicationEvent::Begin { .. }) => {
                c.bytes += 21;
                c.messages += 1;
            }
            Some(ReplicationEvent::Commit { .. }) => {
                c.bytes += 26;
                c.messages += 1;
                c.commits += 1;
            }
            Some(ReplicationEvent::Message { prefix, .. }) => {
                c.messages += 1;
                c.done = prefix == END_PREFIX;
            }
            Some(ReplicationEvent::KeepAlive { .. }) => {}
            Some(ReplicationEvent::StoppedAt { .. }) | None => {
                return Err("pgwire-replication stopped before the end marker".into())
            }
        }
    }
    client.abort();
    Ok(c)
}

async fn drain_walstream(t: &Target, slot: &str) -> Result<Counter> {
    use pg_walstream::{
        CancellationToken, LogicalReplicationStream, ReplicationStreamConfig, RetryConfig,
        StreamingMode,
    };
    use std::time::Duration;
    let config = ReplicationStreamConfig::new(
        slot.to_owned(),
        PUBLICATION.to_owned(),
        1,
        StreamingMode::Off,
        Duration::from_secs(10),
        Duration::from_secs(30),
        Duration::from_secs(60),
        RetryConfig::default(),
    )
    .with_messages(true)
    .with_existing_slot_required(true);
    let url = format!(
        "{}?replication=database&sslmode=disable&application_name=bench-walstream",
        t.url()
    );
    let mut stream = LogicalReplicationStream::new(&url, config).await?;
    stream.start(None).await?;
    let cancel = CancellationToken::new();
    let mut c = Counter::default();
    while !c.done {
        let raw = stream.next_raw_event(&cancel).await?;
        c.pgoutput(&raw.data)?;
    }
    Ok(c)
}

fn drain_recvlogical(t: &Target, slot: &str, end: Lsn) -> Result<()> {
    let bin_dir =
        std::env::var("PG_BIN_DIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let status = Command::new(PathBuf::from(bin_dir).join("pg_recvlogical"))
        .args([
            "-d",
            &format!(
                "host={} port={} user={} dbname={} application_name=bench-recvlogical \
                 sslmode=disable gssencmode=disable",
                t.host, t.port, t.user, t.database
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
            "-o",
            "messages=true",
            "--endpos",
            &end.to_string(),
        ])
        .env("PGPASSWORD", &t.password)
        .status()?;
    if !status.success() {
        return Err(format!("pg_recvlogical failed: {status}").into());
    }
    Ok(())
}

async fn drain(reader: Reader, t: &Target, slot: &str, end: Lsn) -> Result<Option<Counter>> {
    Ok(match reader {
        Reader::Ours => Some(drain_ours(t, slot, None).await?),
        Reader::Pgwire => Some(drain_pgwire(t, slot).await?),
        Reader::Walstream => Some(drain_walstream(t, slot).await?),
        Reader::Recvlogical => {
            let (t, slot) = (t.clone(), slot.to_owned());
            tokio::task::spawn_blocking(move || drain_recvlogical(&t, &slot, end)).await??;
            None
        }
    })
}

async fn pg_connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn capture_slot() -> String {
    format!("bench_capture_{}", std::process::id())
}

fn slot_name(reader: Reader, round: usize) -> String {
    format!("bench_{}_{}_{}", reader.key(), round, std::process::id())
}

struct Setup {
    target: Target,
    load_secs: f64,
    end: Lsn,
    wal_bytes: i64,
    expected_rows: u64,
    expected_commits: u64,
    server_version: String,
}

async fn setup(
    admin: &tokio_postgres::Client,
    admin_url: &str,
    db: &str,
    args: &Args,
) -> Result<Setup> {
    let base = ReplicationConfig::from_url(admin_url)?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let db_url = format!(
        "postgres://{}:{}@{}:{}/{db}",
        base.user,
        base.password.clone().unwrap_or_default(),
        base.host,
        base.port
    );
    let dbc = pg_connect(&db_url).await?;
    dbc.batch_execute(&format!(
        "CREATE TABLE bench (id bigint PRIMARY KEY, payload text NOT NULL, n int NOT NULL,
                             at timestamptz NOT NULL DEFAULT now());
         CREATE PUBLICATION {PUBLICATION} FOR TABLE bench;"
    ))
    .await?;
    for round in 0..args.rounds {
        for &reader in &args.readers {
            dbc.execute(
                "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                &[&slot_name(reader, round)],
            )
            .await?;
        }
    }
    if args.replay {
        dbc.execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&capture_slot()],
        )
        .await?;
    }
    let start_lsn: String = dbc
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);

    let load = Instant::now();
    let txns = args.rows.div_ceil(args.txn_rows);
    // One DO block with COMMIT per iteration gives exactly `txns` small transactions without
    // a client round trip each; synchronous_commit off keeps the load from waiting on fsync.
    // A multi-statement string runs as one implicit transaction, where a DO block may not
    // COMMIT, hence two calls.
    dbc.batch_execute("SET synchronous_commit = off").await?;
    dbc.batch_execute(&format!(
        "DO $$ BEGIN
           FOR t IN 0..{last} LOOP
             INSERT INTO bench (id, payload, n)
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
    if args.big_txn > 0 {
        dbc.batch_execute(&format!(
            "INSERT INTO bench (id, payload, n)
               SELECT g, md5(g::text), 0 FROM generate_series({from}, {to}) g",
            from = args.rows + 1,
            to = args.rows + args.big_txn,
        ))
        .await?;
    }
    let end: String = dbc
        .query_one(
            "SELECT pg_logical_emit_message(false, $1, 'end')::text",
            &[&END_PREFIX],
        )
        .await?
        .get(0);
    let load_secs = load.elapsed().as_secs_f64();
    let wal_bytes: i64 = dbc
        .query_one(
            "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::bigint",
            &[&end, &start_lsn],
        )
        .await?
        .get(0);
    let server_version: String = dbc.query_one("SHOW server_version", &[]).await?.get(0);
    Ok(Setup {
        target: Target {
            host: base.host,
            port: base.port,
            user: base.user,
            password: base.password.unwrap_or_default(),
            database: db.to_owned(),
        },
        load_secs,
        end: end.parse().map_err(|_| format!("bad end lsn {end}"))?,
        wal_bytes,
        expected_rows: args.rows + args.big_txn,
        expected_commits: txns + u64::from(args.big_txn > 0),
        server_version,
    })
}

async fn cleanup(admin: &tokio_postgres::Client, db: &str) {
    let _ = admin
        .execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
             WHERE database = $1 AND active_pid IS NOT NULL",
            &[&db],
        )
        .await;
    for _ in 0..100 {
        let slots = admin
            .query(
                "SELECT slot_name FROM pg_replication_slots WHERE database = $1",
                &[&db],
            )
            .await
            .unwrap_or_default();
        if slots.is_empty() {
            break;
        }
        for row in slots {
            let _ = admin
                .execute(
                    "SELECT pg_drop_replication_slot($1)",
                    &[&row.get::<_, String>(0)],
                )
                .await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// 1-minute load average: the machine is shared, and figures taken under load say so.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
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

fn report(
    args: &Args,
    s: &Setup,
    runs: &[Run],
    replays: &[(Reader, Result<f64, String>)],
    load_at_start: &str,
) -> String {
    let reference = runs
        .iter()
        .find_map(|r| r.counter.as_ref())
        .map(|c| (c.bytes, c.messages));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## {} — pg-replication-clients\n",
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        out,
        "- machine: `{}`, {}, {} cores; PostgreSQL {} on loopback (TCP, no TLS, SCRAM)",
        shell("uname", &["-m"]),
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        s.server_version
    );
    let _ = writeln!(
        out,
        "- 1-minute load average: {load_at_start} at the start, {} at the end (other work \
         shares the machine; compare rounds of one reader to judge the noise)",
        load_average()
    );
    let _ = writeln!(
        out,
        "- backlog: {} rows in {}-row transactions + one {}-row transaction = {} rows, {} \
         commits; {:.1} MiB of WAL; written in {:.1} s",
        args.rows,
        args.txn_rows,
        args.big_txn,
        s.expected_rows,
        s.expected_commits,
        s.wal_bytes as f64 / 1048576.0,
        s.load_secs
    );
    if let Some((bytes, messages)) = reference {
        let _ = writeln!(
            out,
            "- stream: pgoutput proto_version 1, messages on; {:.1} MiB of pgoutput payload in {} \
             messages as counted by the first reader (a relation message may repeat after a cache \
             invalidation; rows and commits are checked for every reader)",
            bytes as f64 / 1048576.0,
            messages
        );
    }
    let _ = writeln!(
        out,
        "- time: connect + START_REPLICATION + drain to the end marker; client CPU: user+system \
         of the reader (this process, or pg_recvlogical); Rust readers decode every message \
         with our pgoutput decoder\n"
    );
    let _ = writeln!(
        out,
        "| reader | round | drain s | MiB/s | messages/s | client CPU s | rows | commits |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for r in runs {
        let (bytes, messages) = r
            .counter
            .as_ref()
            .map(|c| (c.bytes, c.messages))
            .or(reference)
            .unwrap_or((0, 0));
        let (rows, commits) = r.counter.as_ref().map_or_else(
            || ("(not decoded)".to_owned(), "-".to_owned()),
            |c| (c.rows.to_string(), c.commits.to_string()),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.1} | {:.0} | {:.2} | {} | {} |",
            r.reader.label(),
            r.round + 1,
            r.secs,
            bytes as f64 / 1048576.0 / r.secs,
            messages as f64 / r.secs,
            r.cpu_secs,
            rows,
            commits
        );
    }
    if args.rounds > 1 {
        let _ = writeln!(
            out,
            "\nBest of {} rounds (fastest drain per reader):\n\n\
             | reader | drain s | MiB/s | messages/s | client CPU s (same run) |\n|---|---|---|---|---|",
            args.rounds
        );
        for reader in &args.readers {
            let best = runs
                .iter()
                .filter(|r| r.reader == *reader)
                .min_by(|a, b| a.secs.total_cmp(&b.secs));
            if let Some(r) = best {
                let (bytes, messages) = reference.unwrap_or((0, 0));
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {:.1} | {:.0} | {:.2} |",
                    r.reader.label(),
                    r.secs,
                    bytes as f64 / 1048576.0 / r.secs,
                    messages as f64 / r.secs,
                    r.cpu_secs
                );
            }
        }
    }
    if !replays.is_empty() {
        let (bytes, messages) = reference.unwrap_or((0, 0));
        let _ = writeln!(
            out,
            "\nReplay (client-bound): the same recorded stream served from memory by a minimal \
             in-process server over loopback; best of {} rounds:\n\n\
             | reader | drain s | MiB/s | messages/s |\n|---|---|---|---|",
            args.rounds
        );
        for reader in &args.readers {
            let times: Vec<&Result<f64, String>> = replays
                .iter()
                .filter(|(r, _)| r == reader)
                .map(|(_, t)| t)
                .collect();
            let best = times
                .iter()
                .filter_map(|t| t.as_ref().ok())
                .copied()
                .min_by(f64::total_cmp);
            match best {
                Some(secs) => {
                    let _ = writeln!(
                        out,
                        "| {} | {secs:.2} | {:.1} | {:.0} |",
                        reader.label(),
                        bytes as f64 / 1048576.0 / secs,
                        messages as f64 / secs
                    );
                }
                None => {
                    let why = times
                        .iter()
                        .find_map(|t| t.as_ref().err())
                        .map_or("not run", |e| e.as_str());
                    let _ = writeln!(out, "| {} | n/a: {why} | | |", reader.label());
                }
            }
        }
    }
    out
}

async fn run(
    admin: &tokio_postgres::Client,
    admin_url: &str,
    db: &str,
    args: &Args,
) -> Result<String> {
    let load_at_start = load_average();
    eprintln!("setting up {db} and writing the backlog...");
    let s = setup(admin, admin_url, db, args).await?;
    eprintln!(
        "backlog written in {:.1} s: {:.1} MiB of WAL, end marker at {}",
        s.load_secs,
        s.wal_bytes as f64 / 1048576.0,
        s.end
    );
    let mut runs = Vec::new();
    for round in 0..args.rounds {
        // Rotate the order so no reader always goes first (cold caches) or last.
        let n = args.readers.len();
        for i in 0..n {
            let reader = args.readers[(i + round) % n];
            let slot = slot_name(reader, round);
            let (own0, child0) = cpu_seconds();
            let start = Instant::now();
            let counter = drain(reader, &s.target, &slot, s.end).await?;
            let secs = start.elapsed().as_secs_f64();
            let (own1, child1) = cpu_seconds();
            let cpu_secs = if reader == Reader::Recvlogical {
                child1 - child0
            } else {
                own1 - own0
            };
            if let Some(c) = &counter {
                if c.rows != s.expected_rows || c.commits != s.expected_commits {
                    return Err(format!(
                        "{} saw {} rows and {} commits, expected {} and {}",
                        reader.label(),
                        c.rows,
                        c.commits,
                        s.expected_rows,
                        s.expected_commits
                    )
                    .into());
                }
            }
            eprintln!(
                "{:<28} round {} {:>8.2} s  cpu {:.2} s",
                reader.label(),
                round + 1,
                secs,
                cpu_secs
            );
            runs.push(Run {
                reader,
                round,
                secs,
                cpu_secs,
                counter,
            });
        }
    }
    let mut replays = Vec::new();
    if args.replay {
        eprintln!("recording the stream for the replay...");
        let recording = std::sync::Arc::new(record(&s.target, &capture_slot(), s.end).await?);
        for round in 0..args.rounds {
            let n = args.readers.len();
            for i in 0..n {
                let reader = args.readers[(i + round) % n];
                let outcome = replay(reader, &recording, s.end).await;
                if let Ok((_, Some(c))) = &outcome {
                    if c.rows != s.expected_rows || c.commits != s.expected_commits {
                        return Err(format!("{} replay saw {} rows", reader.label(), c.rows).into());
                    }
                }
                match &outcome {
                    Ok((secs, _)) => eprintln!(
                        "replay {:<21} round {} {secs:>8.2} s",
                        reader.label(),
                        round + 1
                    ),
                    Err(e) => eprintln!(
                        "replay {:<21} round {} failed: {e}",
                        reader.label(),
                        round + 1
                    ),
                }
                replays.push((reader, outcome.map(|(secs, _)| secs)));
            }
        }
    }
    Ok(report(args, &s, &runs, &replays, &load_at_start))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let admin_url = std::env::var("PG_URL").map_err(|_| {
        "PG_URL is not set: run `eval \"$(scripts/stack env)\"` in the repository first \
         (a superuser URL of a server with wal_level=logical)"
    })?;
    let admin = pg_connect(&admin_url).await?;
    let db = format!("repl_bench_{}", std::process::id());
    let result = run(&admin, &admin_url, &db, &args).await;
    cleanup(&admin, &db).await;
    let section = result?;
    println!("\n{section}");
    if args.append {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../RESULTS.md"));
        let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            "# Benchmark results\n\nAppended by the programs under `bench/`; newest last.\n".into()
        });
        text.push('\n');
        text.push_str(&section);
        std::fs::write(&path, text)?;
        eprintln!("appended to {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Replay: the same stream served from memory, so the client is the bottleneck.
//
// Against the real server every reader waits on the walsender, which decodes WAL on one
// core; the figures above then mostly measure PostgreSQL. Serving the recorded bytes from a
// minimal in-process server (trust auth, START_REPLICATION answered with the recording)
// measures what each client costs per message.
// ---------------------------------------------------------------------------------------

fn push_copy_data(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.push(b'd');
    buf.extend_from_slice(&(payload.len() as u32 + 4).to_be_bytes());
    buf.extend_from_slice(payload);
}

fn backend(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
}

fn one_row(names: &[&str], values: &[&str], tag: &str) -> Vec<u8> {
    let mut desc = (names.len() as u16).to_be_bytes().to_vec();
    for name in names {
        desc.extend_from_slice(name.as_bytes());
        desc.push(0);
        desc.extend_from_slice(&0u32.to_be_bytes()); // table oid
        desc.extend_from_slice(&0u16.to_be_bytes()); // column number
        desc.extend_from_slice(&25u32.to_be_bytes()); // text
        desc.extend_from_slice(&(-1i16).to_be_bytes());
        desc.extend_from_slice(&(-1i32).to_be_bytes());
        desc.extend_from_slice(&0u16.to_be_bytes());
    }
    let mut row = (values.len() as u16).to_be_bytes().to_vec();
    for v in values {
        row.extend_from_slice(&(v.len() as u32).to_be_bytes());
        row.extend_from_slice(v.as_bytes());
    }
    let mut out = Vec::new();
    backend(&mut out, b'T', &desc);
    backend(&mut out, b'D', &row);
    backend(&mut out, b'C', format!("{tag}\0").as_bytes());
    backend(&mut out, b'Z', b"I");
    out
}

/// Serves one connection: startup without password, canned answers to the few queries the
/// clients send before streaming, then the recording, then reads until the client leaves.
async fn replay_server(
    listener: tokio::net::TcpListener,
    recording: std::sync::Arc<Vec<u8>>,
) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut sock, _) = listener.accept().await?;
    sock.set_nodelay(true)?;
    loop {
        let len = sock.read_u32().await? as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        sock.read_exact(&mut body).await?;
        // SSLRequest / GSSENCRequest: refuse, the client then sends the real startup.
        if body.len() == 4 && body[..2] == [0x04, 0xd2] {
            sock.write_all(b"N").await?;
            continue;
        }
        break;
    }
    let mut hello = Vec::new();
    backend(&mut hello, b'R', &0i32.to_be_bytes());
    for (k, v) in [
        ("server_version", "15.18"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("DateStyle", "ISO, MDY"),
    ] {
        backend(&mut hello, b'S', format!("{k}\0{v}\0").as_bytes());
    }
    backend(&mut hello, b'K', &[0, 0, 0, 1, 0, 0, 0, 1]);
    backend(&mut hello, b'Z', b"I");
    sock.write_all(&hello).await?;
    loop {
        let tag = sock.read_u8().await?;
        let len = sock.read_u32().await? as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        sock.read_exact(&mut body).await?;
        if tag == b'X' {
            return Ok(());
        }
        if tag != b'Q' {
            continue;
        }
        let sql = String::from_utf8_lossy(&body).to_ascii_uppercase();
        let reply = if sql.starts_with("START_REPLICATION") {
            let mut w = Vec::new();
            backend(&mut w, b'W', &[0, 0, 0]);
            sock.write_all(&w).await?;
            sock.write_all(&recording).await?;
            // Status updates are ignored; a client that ends the copy (pg_recvlogical at
            // --endpos) waits for the server to end it too.
            loop {
                let tag = match sock.read_u8().await {
                    Ok(tag) => tag,
                    Err(_) => return Ok(()),
                };
                let len = sock.read_u32().await? as usize;
                let mut body = vec![0; len.saturating_sub(4)];
                sock.read_exact(&mut body).await?;
                match tag {
                    b'c' => {
                        let mut end = Vec::new();
                        backend(&mut end, b'c', b"");
                        backend(&mut end, b'C', b"COPY 0\0");
                        backend(&mut end, b'Z', b"I");
                        sock.write_all(&end).await?;
                    }
                    b'X' => return Ok(()),
                    _ => {}
                }
            }
        } else if sql.starts_with("IDENTIFY_SYSTEM") {
            one_row(
                &["systemid", "timeline", "xlogpos", "dbname"],
                &["7000000000000000001", "1", "0/1000000", "bench"],
                "IDENTIFY_SYSTEM",
            )
        } else if sql.contains("DATA_DIRECTORY_MODE") {
            // pg_recvlogical parses this one.
            one_row(&["data_directory_mode"], &["0700"], "SHOW")
        } else {
            one_row(&["value"], &[""], "SELECT 1")
        };
        sock.write_all(&reply).await?;
    }
}

/// Records the stream once with our client (untimed) and appends a keepalive at `end`, which
/// is what lets `pg_recvlogical --endpos` stop on the recording.
async fn record(t: &Target, slot: &str, end: Lsn) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    drain_ours(t, slot, Some(&mut buf)).await?;
    let mut keepalive = vec![b'k'];
    keepalive.extend_from_slice(&end.as_u64().to_be_bytes());
    keepalive.extend_from_slice(&0i64.to_be_bytes());
    keepalive.push(0);
    push_copy_data(&mut buf, &keepalive);
    Ok(buf)
}

/// One reader against a fresh replay server; `None` when the client cannot run against the
/// minimal server (it asks for something the replay does not imitate).
async fn replay(
    reader: Reader,
    recording: &std::sync::Arc<Vec<u8>>,
    end: Lsn,
) -> Result<(f64, Option<Counter>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let server = tokio::spawn(replay_server(listener, recording.clone()));
    let target = Target {
        host: "127.0.0.1".into(),
        port,
        user: "bench".into(),
        password: "unused".into(),
        database: "bench".into(),
    };
    let start = Instant::now();
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        drain(reader, &target, "replay", end),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    server.abort();
    match result {
        Ok(Ok(counter)) => Ok((secs, counter)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}
