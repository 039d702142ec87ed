//! Snapshots in chunks while streaming (docs/snapshots.md): an on-demand snapshot of a table
//! under a concurrent update/delete load, tables that join the capture, and a snapshot killed
//! half way in exactly-once mode.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::agent::{field, read_topic, strip_ansi, Agent, AgentConfig, AvroDecoder};
use common::cdc::{
    as_i64, as_opt_string, decode_table_change, log_after, log_mark, reads_in, wait_log,
    wait_log_after, StackCleanup, TopicTail,
};
use common::eos::{changes, check_table_and_ledger, tally};
use common::pgcase::PgCase;
use common::rng::Rng;
use common::{
    pg_connect, pg_server_version_num, snapshots_started, unique_name, wait_until, FreshPgDb,
    PG_LOGICAL_MESSAGES,
};

/// `val`, `note` of a row.
type Row = (i64, Option<String>);

/// What a table topic says, read until it equals `expected` or `timeout` passes: the latest
/// row per key, the snapshot reads per key, and the events that came after a key's delete.
struct TopicState {
    rows: BTreeMap<i64, Row>,
    reads: HashMap<i64, u32>,
    after_delete: Vec<(i64, String)>,
}

fn converge(topic: &str, expected: &BTreeMap<i64, Row>, timeout: Duration) -> TopicState {
    let mut tail = TopicTail::open(topic, Duration::from_secs(60));
    let mut dec = AvroDecoder::new();
    let mut st = TopicState {
        rows: BTreeMap::new(),
        reads: HashMap::new(),
        after_delete: Vec::new(),
    };
    let mut deleted: HashMap<i64, bool> = HashMap::new();
    let deadline = Instant::now() + timeout;
    loop {
        for rec in tail.poll(Duration::from_secs(2)) {
            let c = decode_table_change(&mut dec, &rec, "id");
            if let Some(op) = &c.op {
                if deleted.get(&c.id).copied().unwrap_or(false) {
                    st.after_delete.push((c.id, op.clone()));
                }
                if op == "r" {
                    *st.reads.entry(c.id).or_default() += 1;
                }
                if op == "d" {
                    deleted.insert(c.id, true);
                }
            }
            match (c.op.as_deref(), c.after) {
                (None | Some("d"), _) => {
                    st.rows.remove(&c.id);
                }
                (Some(_), Some(a)) => {
                    st.rows.insert(
                        c.id,
                        (as_i64(field(&a, "val")), as_opt_string(field(&a, "note"))),
                    );
                }
                (Some(op), None) => panic!("op {op} without after for id {}", c.id),
            }
        }
        if st.rows == *expected || Instant::now() > deadline {
            return st;
        }
    }
}

async fn table_rows(url: &str, table: &str) -> BTreeMap<i64, Row> {
    pg_connect(url)
        .await
        .query(&format!("SELECT id, val, note FROM {table}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                i64::from(r.get::<_, i32>(0)),
                (i64::from(r.get::<_, i32>(1)), r.get::<_, Option<String>>(2)),
            )
        })
        .collect()
}

fn assert_converged(what: &str, st: &TopicState, expected: &BTreeMap<i64, Row>, log: &str) {
    if st.rows != *expected {
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !st.rows.contains_key(k))
            .take(10)
            .collect();
        let extra: Vec<_> = st
            .rows
            .keys()
            .filter(|k| !expected.contains_key(k))
            .take(10)
            .collect();
        let wrong: Vec<_> = expected
            .iter()
            .filter(|(k, v)| st.rows.get(k).is_some_and(|s| s != *v))
            .take(10)
            .collect();
        panic!(
            "{what}: topic differs from the table: {} rows expected, {} in the topic; missing \
             {missing:?}; extra {extra:?}; wrong {wrong:?}; log:\n{log}",
            expected.len(),
            st.rows.len()
        );
    }
    assert!(
        st.after_delete.is_empty(),
        "{what}: events after a delete (a deleted row came back), first 10: {:?}",
        &st.after_delete[..st.after_delete.len().min(10)]
    );
    let twice: Vec<_> = st.reads.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(
        twice.is_empty(),
        "{what}: keys read twice by the snapshot: {twice:?}"
    );
}

/// Runs `cdc-agent snapshot` on the agent's configuration.
fn snapshot_cli(agent: &Agent, source: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
        .arg("snapshot")
        .arg("--config")
        .arg(agent.dir.path().join("cdc-agent.toml"))
        .args(["--source", source])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cdc-agent snapshot {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Before PostgreSQL 14 on-demand snapshots do not exist (their signal and watermarks are
/// logical decoding messages, which pgoutput carries since 14; docs/snapshots.md): there
/// `cdc-agent snapshot` is refused naming 14 and the running agent goes on untouched, and this
/// returns true (the test has nothing else to check on that server). False on 14+.
async fn on_demand_refused_before_14(
    admin: &tokio_postgres::Client,
    agent: &mut Agent,
    source: &str,
) -> bool {
    if pg_server_version_num(admin).await >= PG_LOGICAL_MESSAGES {
        return false;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
        .arg("snapshot")
        .arg("--config")
        .arg(agent.dir.path().join("cdc-agent.toml"))
        .args(["--source", source, "--table", "public.t"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "cdc-agent snapshot succeeded: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "source `{source}`: on-demand snapshots need PostgreSQL 14 or later"
        )),
        "{stderr}"
    );
    assert_eq!(
        agent.wait_exit(Duration::ZERO),
        None,
        "the agent runs on; log:\n{}",
        agent.log()
    );
    true
}

/// Sum of `replaced=N` over the agent's "snapshot chunk emitted" lines: selected rows that a
/// change inside their chunk's watermark window replaced.
fn replaced_in_windows(log: &str) -> u64 {
    strip_ansi(log)
        .lines()
        .filter(|l| l.contains("snapshot chunk emitted"))
        .filter_map(|l| l.split("replaced=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_snapshot_under_updates_and_deletes_converges_and_never_brings_back_a_deleted_row(
) {
    const ROWS: i64 = 30_000;
    let mut rng = Rng::seeded("pg_incremental");
    let db = FreshPgDb::create("incr").await;
    pg_connect(&db.url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, val int NOT NULL, note text);
             INSERT INTO t SELECT g, 0, 'row ' || g FROM generate_series(1, {ROWS}) g;
             ANALYZE t;
             CREATE PUBLICATION cdc_pub FOR TABLE t;"
        ))
        .await
        .unwrap();
    let name = unique_name("incr");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    // No initial snapshot: the table is read only on request, in small chunks, so that many
    // watermark windows see the writer's changes.
    cfg.extra_source_toml = format!(
        "[snapshot]\nmode = \"never\"\nchunk_size = 300\n\
         [postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n"
    );
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(Duration::from_secs(60)));
    if on_demand_refused_before_14(&pg_connect(&db.url).await, &mut agent, &name).await {
        return;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let txs = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(crate::snapshot::write_load(
        db.url.clone(),
        ROWS,
        rng.next_u64(),
        stop.clone(),
        txs.clone(),
    ));
    wait_until(
        Duration::from_secs(30),
        "the writer's first transactions",
        || {
            let n = txs.load(Ordering::Relaxed);
            async move { (n >= 10).then_some(()) }
        },
    )
    .await;

    let out = snapshot_cli(&agent, &name, &["--table", "public.t"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("execute-snapshot"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::task::block_in_place(|| {
        wait_log(
            &mut agent,
            "snapshot signal received",
            Duration::from_secs(30),
        );
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(240));
    });
    let during = txs.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(60), "writes after the snapshot", || {
        let n = txs.load(Ordering::Relaxed);
        async move { (n >= during + 100).then_some(()) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let expected = table_rows(&db.url, "t").await;
    let topic = format!("{name}.public.t");
    let st = tokio::task::block_in_place(|| converge(&topic, &expected, Duration::from_secs(120)));
    assert_converged("on-demand snapshot", &st, &expected, &agent.log());
    // The case the watermarks exist for did happen: changes inside a window replaced rows
    // the chunk had selected.
    let replaced = replaced_in_windows(&agent.log());
    assert!(
        replaced > 0,
        "no change fell inside a watermark window; the test did not exercise the window"
    );
    let status = snapshot_cli(&agent, &name, &["--status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("no snapshot in progress"), "{status}");
    println!(
        "pg_incremental: rows={} reads={} replaced_in_windows={replaced} writer_txs={}",
        expected.len(),
        st.reads.len(),
        txs.load(Ordering::Relaxed)
    );
}

/// Counts the snapshot reads in a table topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_added_to_the_capture_is_snapshotted_alone() {
    let PgCase {
        db,
        admin,
        name,
        cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "addtab",
        "CREATE TABLE a (id int PRIMARY KEY, val int NOT NULL, note text);
             CREATE TABLE b (id int PRIMARY KEY, val int NOT NULL, note text);
             CREATE TABLE c (id int PRIMARY KEY, val int NOT NULL, note text);
             INSERT INTO a SELECT g, 0, 'a' FROM generate_series(1, 1000) g;
             INSERT INTO b SELECT g, 0, 'b' FROM generate_series(1, 700) g;
             INSERT INTO c SELECT g, 0, 'c' FROM generate_series(1, 500) g;
             CREATE PUBLICATION cdc_pub FOR TABLE a;",
        "[snapshot]\nchunk_size = 300",
    )
    .await;
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(120))
    });
    if pg_server_version_num(&admin).await < PG_LOGICAL_MESSAGES {
        return tables_added_later_stream_only_before_14(&admin, agent, &name).await;
    }

    // While the agent runs: b joins the publication; its first change shows it to the agent.
    let mark = log_mark(&agent);
    admin
        .batch_execute(
            "ALTER PUBLICATION cdc_pub ADD TABLE b; INSERT INTO b VALUES (701, 0, 'new');",
        )
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        wait_log_after(
            &mut agent,
            mark,
            "table newly captured",
            Duration::from_secs(60),
        );
        wait_log_after(
            &mut agent,
            mark,
            "snapshot complete",
            Duration::from_secs(120),
        );
    });
    let expected_b = table_rows(&db.url, "b").await;
    let st = tokio::task::block_in_place(|| {
        converge(
            &format!("{name}.public.b"),
            &expected_b,
            Duration::from_secs(60),
        )
    });
    assert_converged(
        "table b added while running",
        &st,
        &expected_b,
        &agent.log(),
    );

    // Between two runs: c joins the publication while the agent is stopped.
    agent.terminate();
    assert_eq!(agent.wait_exit(Duration::from_secs(60)), Some(0));
    admin
        .batch_execute("ALTER PUBLICATION cdc_pub ADD TABLE c;")
        .await
        .unwrap();
    let mut agent = agent.restart();
    let mark = 0;
    tokio::task::block_in_place(|| {
        wait_log_after(
            &mut agent,
            mark,
            "snapshot of table queued",
            Duration::from_secs(60),
        );
    });
    let expected_c = table_rows(&db.url, "c").await;
    let st = tokio::task::block_in_place(|| {
        converge(
            &format!("{name}.public.c"),
            &expected_c,
            Duration::from_secs(120),
        )
    });
    assert_converged("table c added between runs", &st, &expected_c, &agent.log());

    // Only the new tables were read: a's rows once (the initial snapshot), b's once.
    let log = log_after(&agent, 0);
    assert!(
        !log.contains("table=public.a kind=\"incremental\""),
        "table a was queued again; log:\n{log}"
    );
    let a_reads = tokio::task::block_in_place(|| reads_in(&format!("{name}.public.a"), 1000));
    assert_eq!(a_reads, 1000, "table a's rows were read again");
    let b_reads = tokio::task::block_in_place(|| reads_in(&format!("{name}.public.b"), 701));
    assert_eq!(
        b_reads, 701,
        "table b's rows (700 + the new one) read once each"
    );
}

/// The (id, op) of the first `n` table changes in `topic`.
fn ops_in(topic: &str, n: usize) -> Vec<(i64, String)> {
    let recs = read_topic(topic, Duration::from_secs(60), |r| r.len() >= n);
    let mut dec = AvroDecoder::new();
    recs.iter()
        .filter(|r| r.value.is_some())
        .map(|r| {
            let c = decode_table_change(&mut dec, r, "id");
            (c.id, c.op.unwrap_or_default())
        })
        .collect()
}

/// Before PostgreSQL 14 a table added to the capture later is not snapshotted by itself (that
/// needs on-demand snapshots; docs/compatibility.md): its changes stream from the moment it
/// joins, while the agent runs and between two runs, and nothing is read again.
async fn tables_added_later_stream_only_before_14(
    admin: &tokio_postgres::Client,
    mut agent: Agent,
    name: &str,
) {
    admin
        .batch_execute(
            "ALTER PUBLICATION cdc_pub ADD TABLE b; INSERT INTO b VALUES (701, 0, 'new');",
        )
        .await
        .unwrap();
    let b = tokio::task::block_in_place(|| ops_in(&format!("{name}.public.b"), 1));
    assert_eq!(b, [(701, "c".to_string())], "log:\n{}", agent.log());
    agent.terminate();
    assert_eq!(agent.wait_exit(Duration::from_secs(60)), Some(0));
    admin
        .batch_execute(
            "ALTER PUBLICATION cdc_pub ADD TABLE c; INSERT INTO c VALUES (501, 0, 'new');",
        )
        .await
        .unwrap();
    let agent = agent.restart();
    let c = tokio::task::block_in_place(|| ops_in(&format!("{name}.public.c"), 1));
    assert_eq!(c, [(501, "c".to_string())], "log:\n{}", agent.log());
    let log = agent.log();
    assert_eq!(
        snapshots_started(&log, pg_server_version_num(admin).await),
        1,
        "a table added later was snapshotted:\n{log}"
    );
    let a_reads = tokio::task::block_in_place(|| reads_in(&format!("{name}.public.a"), 1000));
    assert_eq!(a_reads, 1000, "table a's rows were read again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_killed_half_way_resumes_after_its_last_committed_chunk_exactly_once() {
    const ROWS: i64 = 40_000;
    const CHUNK: i64 = 1_000;
    let db = FreshPgDb::create("snapkill").await;
    pg_connect(&db.url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO t SELECT g, 0 FROM generate_series(1, {ROWS}) g;
             ANALYZE t;
             CREATE PUBLICATION cdc_pub FOR TABLE t;"
        ))
        .await
        .unwrap();
    let name = unique_name("snapkill");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = format!(
        "[snapshot]\nchunk_size = {CHUNK}\n[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n"
    );
    // Small Kafka transactions, so that several commit before the kill.
    cfg.extra_kafka_toml = "transaction_max_records = 2000\n".into();
    let topic = format!("{name}.public.t");
    let mut agent = Agent::start(&cfg);
    if pg_server_version_num(&pg_connect(&db.url).await).await < PG_LOGICAL_MESSAGES {
        // One piece, one Kafka transaction: killed as soon as it starts.
        tokio::task::block_in_place(|| {
            wait_log(&mut agent, "snapshot starting", Duration::from_secs(120))
        });
        let mark = log_mark(&agent);
        let agent = agent.restart(); // SIGKILL, then the same configuration again
        return one_piece_snapshot_killed_is_taken_again(agent, mark, &topic, &cfg, ROWS);
    }
    let tail = tokio::task::block_in_place(|| TopicTail::open(&topic, Duration::from_secs(60)));
    wait_until(
        Duration::from_secs(120),
        "a third of the snapshot in Kafka",
        || {
            let end = tail.end();
            async move { (end >= ROWS / 3).then_some(()) }
        },
    )
    .await;
    assert!(
        !agent.log().contains("snapshot complete"),
        "the snapshot finished before the kill"
    );
    let mark = log_mark(&agent);
    let mut agent = agent.restart(); // SIGKILL, then the same configuration again
    tokio::task::block_in_place(|| {
        wait_log_after(
            &mut agent,
            mark,
            "snapshot resuming",
            Duration::from_secs(60),
        );
        wait_log_after(
            &mut agent,
            mark,
            "snapshot complete",
            Duration::from_secs(180),
        );
    });
    let resumed = strip_ansi(&log_after(&agent, mark));
    let line = resumed
        .lines()
        .find(|l| l.contains("snapshot resuming"))
        .unwrap()
        .to_string();
    let after_key: i64 = line
        .split("after_key=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric after_key in `{line}`"));
    let rows_done: i64 = line
        .split("rows_done=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rows_done in `{line}`"));
    // It resumed at a chunk boundary, after everything committed before the kill.
    assert!(after_key > 0, "{line}");
    assert_eq!(after_key % CHUNK, 0, "not a chunk boundary: {line}");
    assert_eq!(rows_done, after_key, "{line}");

    // Every row exactly once in the table topic and the event store: nothing lost, nothing
    // read twice.
    let final_state: HashMap<i64, i64> = (1..=ROWS).map(|id| (id, 0)).collect();
    tokio::task::block_in_place(|| {
        check_table_and_ledger(
            " after a kill mid-snapshot",
            &topic,
            &cfg.event_store_topic,
            &final_state,
            Duration::from_secs(120),
        )
    });
    println!("pg_snapshot_kill: resumed after key {after_key} ({rows_done} rows committed before the kill)");
}

/// Before PostgreSQL 14 the initial snapshot is one piece under the slot's exported snapshot,
/// which is gone with the killed agent (docs/snapshots.md): the next run drops the slot and
/// takes the whole snapshot again from a new one. Rows committed before the kill may come
/// twice; none is lost or out of order, in the table topic and in the event store.
fn one_piece_snapshot_killed_is_taken_again(
    mut agent: Agent,
    mark: usize,
    topic: &str,
    cfg: &AgentConfig,
    rows: i64,
) {
    tokio::task::block_in_place(|| {
        wait_log_after(
            &mut agent,
            mark,
            "recreating the slot and snapshotting again",
            Duration::from_secs(60),
        );
        wait_log_after(
            &mut agent,
            mark,
            "snapshot complete",
            Duration::from_secs(180),
        );
        let final_state: HashMap<i64, i64> = (1..=rows).map(|id| (id, 0)).collect();
        for (what, t) in [
            ("table topic", topic),
            ("event store", &cfg.event_store_topic),
        ] {
            let seen = changes(t, &final_state, Duration::from_secs(120));
            let t = tally(&seen, &final_state);
            println!(
                "pg_snapshot_kill (one piece) {what}: lost={} dup={} out_of_order={} unexpected_keys={}",
                t.lost, t.dup, t.out_of_order, t.unexpected
            );
            assert_eq!((t.lost, t.out_of_order, t.unexpected), (0, 0, 0), "{what}");
        }
    });
}

/// A pause (or stop) arrives as a logical decoding message in a transaction of its own, which
/// holds no row: on an idle source no Kafka transaction is open to carry the new state. It is
/// committed when that transaction ends, so `--status` shows it without waiting for the next
/// change (it did not before: the matrix runs on 16 and 17 caught the stop's status waiting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_sent_to_an_idle_source_shows_in_its_status_without_a_change() {
    let db = FreshPgDb::create("idlepause").await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, val int NOT NULL);
             INSERT INTO t VALUES (1, 0);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("idlepause");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = format!(
        "[snapshot]\nmode = \"never\"\n\
         [postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n"
    );
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(Duration::from_secs(60)));
    if on_demand_refused_before_14(&pg_connect(&db.url).await, &mut agent, &name).await {
        return;
    }
    snapshot_cli(&agent, &name, &["--pause"]);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot paused", Duration::from_secs(30))
    });
    // No row changes from here on: only the pause's own transaction can carry it.
    let status = wait_until(
        Duration::from_secs(60),
        "--status showing the pause of an idle source",
        || {
            let out = snapshot_cli(&agent, &name, &["--status"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            async move { text.contains("snapshots paused").then_some(text) }
        },
    )
    .await;
    assert!(status.contains("no snapshot in progress"), "{status}");
    common::cdc::assert_alive(&mut agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_snapshot_pauses_resumes_stops_and_shows_its_status() {
    const ROWS: i64 = 100_000;
    let db = FreshPgDb::create("snapctl").await;
    pg_connect(&db.url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, val int NOT NULL, note text);
             INSERT INTO t SELECT g, 0, 'row ' || g FROM generate_series(1, {ROWS}) g;
             ANALYZE t;
             CREATE PUBLICATION cdc_pub FOR TABLE t;"
        ))
        .await
        .unwrap();
    let name = unique_name("snapctl");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    // Small chunks: the snapshot takes long enough to be paused and stopped half way.
    cfg.extra_source_toml = format!(
        "[snapshot]\nmode = \"never\"\nchunk_size = 100\n\
         [postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n"
    );
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(Duration::from_secs(60)));
    if on_demand_refused_before_14(&pg_connect(&db.url).await, &mut agent, &name).await {
        return;
    }

    snapshot_cli(&agent, &name, &["--table", "public.t"]);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot starting", Duration::from_secs(30))
    });
    snapshot_cli(&agent, &name, &["--pause"]);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot paused", Duration::from_secs(30))
    });
    assert!(
        !agent.log().contains("snapshot complete"),
        "the snapshot finished before the pause"
    );
    // The pause is in the checkpoint: `--status` (which reads it from Kafka) shows it.
    let status = wait_until(
        Duration::from_secs(30),
        "--status showing the pause",
        || {
            let out = snapshot_cli(&agent, &name, &["--status"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            async move { text.contains("snapshots paused").then_some(text) }
        },
    )
    .await;
    assert!(
        status.contains("public.t") && status.contains("pending"),
        "{status}"
    );

    snapshot_cli(&agent, &name, &["--resume"]);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot resumed", Duration::from_secs(30));
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(240));
    });

    // Every row read once, marked as an incremental snapshot read.
    let topic = format!("{name}.public.t");
    let markers = tokio::task::block_in_place(|| {
        let mut tail = TopicTail::open(&topic, Duration::from_secs(60));
        let mut dec = AvroDecoder::new();
        let mut markers: HashMap<String, usize> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while markers.values().sum::<usize>() < ROWS as usize && Instant::now() < deadline {
            for rec in tail.poll(Duration::from_secs(1)) {
                let v = dec.decode(rec.value.as_deref().unwrap());
                let source = field(&v, "source");
                let marker = as_opt_string(field(source, "snapshot")).unwrap_or_default();
                *markers.entry(marker).or_default() += 1;
            }
        }
        markers
    });
    assert_eq!(
        markers,
        HashMap::from([("incremental".to_string(), ROWS as usize)]),
        "source.snapshot of the reads"
    );

    // A second request, stopped half way.
    let mark = log_mark(&agent);
    snapshot_cli(
        &agent,
        &name,
        &["--table", "public.t", "--where", "id > 50000"],
    );
    tokio::task::block_in_place(|| {
        wait_log_after(
            &mut agent,
            mark,
            "snapshot starting",
            Duration::from_secs(30),
        )
    });
    snapshot_cli(&agent, &name, &["--stop"]);
    tokio::task::block_in_place(|| {
        wait_log_after(
            &mut agent,
            mark,
            "snapshot of table stopped",
            Duration::from_secs(30),
        );
    });
    let after = log_after(&agent, mark);
    assert!(
        !after.contains("snapshot of table complete"),
        "the filtered snapshot finished before the stop; log:\n{after}"
    );
    let status = wait_until(Duration::from_secs(30), "--status after the stop", || {
        let out = snapshot_cli(&agent, &name, &["--status"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        async move { text.contains("no snapshot in progress").then_some(text) }
    })
    .await;
    println!("pg_snapshot_control: {status}");
}

/// PostgreSQL writes a transaction's commit record before the transaction becomes visible to
/// new snapshots. A synchronous standby that never answers holds a committing transaction in
/// exactly that state for as long as the test wants: its delete is in the WAL (and goes by in
/// the stream) but a chunk read does not see it. That chunk must not be emitted: the row it
/// holds was deleted before the window opened, and nothing in the window would replace it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_committed_before_a_chunk_but_not_yet_visible_to_its_read_never_comes_back() {
    use common::scratch_pg::ScratchPostgres;
    const ROWS: i64 = 100;
    const VICTIM: i64 = 50;
    let pg = tokio::task::block_in_place(|| {
        ScratchPostgres::start(
            "wal_level = logical\nmax_wal_senders = 5\nmax_replication_slots = 5",
        )
    });
    let url = pg.url("postgres", "postgres");
    let admin = pg_connect(&url).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, val int NOT NULL, note text);
             INSERT INTO t SELECT g, 0, 'row ' || g FROM generate_series(1, {ROWS}) g;
             CREATE PUBLICATION cdc_pub FOR TABLE t;
             -- Everyone but the test's racing session commits without waiting for a standby.
             ALTER DATABASE postgres SET synchronous_commit = local;"
        ))
        .await
        .unwrap();
    let name = unique_name("invisible");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let main = format!(
        "[kafka]\nbootstrap_servers = \"{}\"\n[schema_registry]\nurl = \"{}\"\n\
         [event_store]\ntopic = \"{name}.events\"\n",
        common::stack_env("KAFKA_BOOTSTRAP"),
        common::stack_env("SCHEMA_REGISTRY_URL"),
    );
    let source = format!(
        "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nuser = \"postgres\"\ndatabase = \"postgres\"\n\
         [snapshot]\nmode = \"never\"\n\
         [postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n",
        port = pg.port,
    );
    let mut agent = Agent::start_files(&main, &source);
    tokio::task::block_in_place(|| agent.wait_streaming(Duration::from_secs(60)));
    if on_demand_refused_before_14(&admin, &mut agent, &name).await {
        return;
    }

    // From now on a commit that waits for the standby is written but not visible.
    for sql in [
        "ALTER SYSTEM SET synchronous_standby_names = 'nobody'",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    let racer_url = url.clone();
    let racer = tokio::spawn(async move {
        let c = pg_connect(&racer_url).await;
        // pg_reload_conf() only signals: the postmaster, and through it this new backend,
        // may take the new setting a moment later. Deleting before that would commit
        // without waiting for the standby, visible at once.
        wait_until(
            Duration::from_secs(30),
            "the standby requirement in force",
            || {
                let c = &c;
                async move {
                    let v: String = c
                        .query_one("SHOW synchronous_standby_names", &[])
                        .await
                        .unwrap()
                        .get(0);
                    (v == "nobody").then_some(())
                }
            },
        )
        .await;
        c.batch_execute(&format!(
            "SET synchronous_commit = on; DELETE FROM t WHERE id = {VICTIM};"
        ))
        .await
        .unwrap();
    });
    let topic = format!("{name}.public.t");
    // The delete went by in the stream…
    let tail = tokio::task::block_in_place(|| TopicTail::open(&topic, Duration::from_secs(60)));
    wait_until(Duration::from_secs(60), "the delete in Kafka", || {
        let end = tail.end();
        async move { (end >= 1).then_some(()) }
    })
    .await;
    // …while the row is still there for every snapshot.
    let visible: i64 = admin
        .query_one(&format!("SELECT count(*) FROM t WHERE id = {VICTIM}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        visible, 1,
        "the delete became visible before the chunk read"
    );

    snapshot_cli(&agent, &name, &["--table", "public.t"]);
    // Either the chunk is refused (read again) or, wrongly, emitted (complete).
    wait_until(
        Duration::from_secs(60),
        "the chunk refused or emitted",
        || {
            let log = agent.log();
            async move {
                (log.contains("snapshot chunk read again") || log.contains("snapshot complete"))
                    .then_some(())
            }
        },
    )
    .await;
    // While the delete stays invisible the chunk is refused again and again, each time
    // after a longer wait (not in a tight loop against the database).
    if !agent.log().contains("snapshot complete") {
        wait_until(
            Duration::from_secs(60),
            "the fifth read of the chunk",
            || {
                let log = strip_ansi(&agent.log());
                async move { log.contains("attempt=5").then_some(()) }
            },
        )
        .await;
        let log = strip_ansi(&agent.log());
        assert!(
            log.contains("attempt=1 wait_ms=10") && log.contains("attempt=5 wait_ms=160"),
            "re-reads without a growing wait; log:\n{log}"
        );
    }
    // The standby requirement goes away: the delete becomes visible, the chunk can be read.
    for sql in [
        "ALTER SYSTEM RESET synchronous_standby_names",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    racer.await.unwrap();
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(60))
    });
    let expected = table_rows(&url, "t").await;
    assert!(!expected.contains_key(&VICTIM));
    let st = tokio::task::block_in_place(|| converge(&topic, &expected, Duration::from_secs(60)));
    assert_converged(
        "chunk after an invisible delete",
        &st,
        &expected,
        &agent.log(),
    );
    assert!(
        agent.log().contains("snapshot chunk read again"),
        "the chunk was not refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_dropped_before_its_snapshot_ends_is_left_out_and_the_next_table_is_snapshotted() {
    let PgCase {
        db: _db,
        admin,
        name,
        cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "droptab",
        "CREATE TABLE a (id int PRIMARY KEY, val int NOT NULL, note text);
             CREATE TABLE b (id int PRIMARY KEY, val int NOT NULL, note text);
             INSERT INTO a SELECT g, 0, 'a' FROM generate_series(1, 1000) g;
             INSERT INTO b SELECT g, 0, 'b' FROM generate_series(1, 500) g;
             CREATE PUBLICATION cdc_pub FOR TABLE a, b;",
        "[snapshot]\nmode = \"never\"\nchunk_size = 100",
    )
    .await;
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(Duration::from_secs(90)));
    if on_demand_refused_before_14(&admin, &mut agent, &name).await {
        return;
    }
    tokio::task::block_in_place(|| {
        // Paused, the snapshot of a is queued but not started: the drop comes before its
        // first chunk, whatever the machine's speed.
        snapshot_cli(&agent, &name, &["--pause"]);
        wait_log(&mut agent, "snapshot paused", Duration::from_secs(60));
        snapshot_cli(&agent, &name, &["--table", "public.a"]);
        snapshot_cli(&agent, &name, &["--table", "public.b"]);
    });
    wait_until(Duration::from_secs(60), "both tables queued", || {
        let queued = agent.log().matches("snapshot of table queued").count();
        async move { (queued >= 2).then_some(()) }
    })
    .await;
    admin.batch_execute("DROP TABLE a;").await.unwrap();
    tokio::task::block_in_place(|| {
        snapshot_cli(&agent, &name, &["--resume"]);
        wait_log(
            &mut agent,
            "snapshot of table ended: the table no longer exists",
            Duration::from_secs(60),
        );
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(120));
    });
    let b_reads = tokio::task::block_in_place(|| reads_in(&format!("{name}.public.b"), 500));
    assert_eq!(
        b_reads,
        500,
        "every row of b read once; log:\n{}",
        agent.log()
    );
    assert_eq!(
        agent.wait_exit(Duration::ZERO),
        None,
        "the agent runs on; log:\n{}",
        agent.log()
    );
}
