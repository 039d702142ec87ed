//! Chunked snapshots while streaming on MariaDB (DBLog watermarks through the signal table,
//! docs/mysql-source.md): small chunks under a concurrent update/delete load converge to
//! exactly the table; a kill -9 in the middle of the snapshot resumes after the last
//! committed chunk, with nothing lost or duplicated.
//!
//! A key's history may start with a change streamed before its chunk was read (by design);
//! what holds per key: at most one snapshot read, and nothing after its delete (ids are never
//! reused, so an event after a delete would be a resurrected row).

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use common::agent::{Agent, AgentConfig, AvroDecoder};
use common::cdc::{
    as_i64, decode_table_change, log_after, log_mark, wait_log, wait_log_after, TopicTail,
};
use common::eos::check_table_and_ledger;
use common::mysql::{my_admin, seq_rows, FreshMyDb};
use common::rng::Rng;
use common::sigterm;
use common::{unique_name, wait_until};

/// Rows in the table before the agent starts.
const ROWS: i64 = 20_000;
/// Rows per snapshot chunk: forty chunks, so writes fall inside many windows.
const CHUNK: usize = 500;

/// `(id, v)` with ROWS rows of v = 0.
async fn make_table(db: &FreshMyDb) -> String {
    let t = db.table("t");
    my_admin()
        .await
        .query_drop(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);
             INSERT INTO {t} SELECT seq, 0 FROM {seq};",
            seq = seq_rows(1, ROWS)
        ))
        .await
        .unwrap();
    t
}

fn config(db: &FreshMyDb, delivery: &str) -> (AgentConfig, String) {
    let name = unique_name("mychunk");
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.extra_source_toml =
        format!("delivery = \"{delivery}\"\n[snapshot]\nchunk_size = {CHUNK}\n");
    let topic = format!("{name}.{}.t", db.name);
    (cfg, topic)
}

/// Small transactions of updates, inserts of new ids and deletes over the whole key range
/// until `stop`; counts transactions in `txs`.
async fn update_delete_load(t: String, seed: u64, stop: Arc<AtomicBool>, txs: Arc<AtomicU64>) {
    let mut conn = my_admin().await;
    let mut rng = Rng::from_seed(seed);
    let mut next_id = ROWS + 1;
    while !stop.load(Ordering::Relaxed) {
        let mut sql = String::from("BEGIN;");
        for _ in 0..rng.range(1, 6) {
            let id = rng.range(1, next_id as u64) as i64;
            match rng.below(100) {
                0..50 => sql.push_str(&format!("UPDATE {t} SET v = v + 1 WHERE id = {id};")),
                50..75 => {
                    sql.push_str(&format!("INSERT INTO {t} VALUES ({next_id}, 0);"));
                    next_id += 1;
                }
                _ => sql.push_str(&format!("DELETE FROM {t} WHERE id = {id};")),
            }
        }
        sql.push_str("COMMIT;");
        conn.query_drop(sql).await.unwrap();
        txs.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_chunks_under_updates_and_deletes_converge_to_exactly_the_table() {
    let db = FreshMyDb::create("mychunk").await;
    let t = make_table(&db).await;
    let (cfg, topic) = config(&db, "exactly-once");
    let stop = Arc::new(AtomicBool::new(false));
    let txs = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(update_delete_load(
        t.clone(),
        Rng::seeded("mychunk").next_u64(),
        stop.clone(),
        txs.clone(),
    ));
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot starting", Duration::from_secs(60))
    });
    let at_start = txs.load(Ordering::Relaxed);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(180))
    });
    let at_end = txs.load(Ordering::Relaxed);
    assert!(at_end > at_start, "no write committed during the snapshot");
    // Some more writes after the snapshot, then the table's final state.
    wait_until(Duration::from_secs(60), "writes after the snapshot", || {
        let n = txs.load(Ordering::Relaxed);
        async move { (n >= at_end + 100).then_some(()) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let rows: Vec<(i64, i64)> = my_admin()
        .await
        .query(format!("SELECT id, v FROM {t}"))
        .await
        .unwrap();
    let expected: BTreeMap<i64, i64> = rows.into_iter().collect();

    let (state, reads, resurrected) = tokio::task::block_in_place(|| {
        let mut tail = TopicTail::open(&topic, Duration::from_secs(60));
        let mut dec = AvroDecoder::new();
        let mut state: BTreeMap<i64, i64> = BTreeMap::new();
        // Per key: snapshot reads, and whether a delete was seen.
        let mut history: HashMap<i64, (u32, bool)> = HashMap::new();
        let mut resurrected: Vec<(i64, String)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            for rec in tail.poll(Duration::from_secs(2)) {
                let c = decode_table_change(&mut dec, &rec, "id");
                if let Some(op) = &c.op {
                    let h = history.entry(c.id).or_default();
                    if h.1 {
                        resurrected.push((c.id, op.clone()));
                    }
                    h.0 += u32::from(op == "r");
                    h.1 |= op == "d";
                }
                match (c.op.as_deref(), &c.after) {
                    (None | Some("d"), _) | (_, None) => {
                        state.remove(&c.id);
                    }
                    (_, Some(after)) => {
                        state.insert(c.id, as_i64(common::agent::field(after, "v")));
                    }
                }
            }
            if state == expected || Instant::now() > deadline {
                break (state, history, resurrected);
            }
        }
    });
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !state.contains_key(k))
        .take(10)
        .collect();
    let extra: Vec<_> = state
        .keys()
        .filter(|k| !expected.contains_key(k))
        .take(10)
        .collect();
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, v)| state.get(k).is_some_and(|s| s != *v))
        .take(10)
        .collect();
    assert!(
        state == expected,
        "topic differs from the table: missing {missing:?}, extra {extra:?}, wrong {wrong:?}; \
         agent log:\n{}",
        agent.log()
    );
    assert!(
        resurrected.is_empty(),
        "events after a delete (id, op), first 10: {:?}",
        &resurrected[..resurrected.len().min(10)]
    );
    let twice: Vec<_> = reads.iter().filter(|(_, h)| h.0 > 1).take(10).collect();
    assert!(
        twice.is_empty(),
        "keys read twice by the snapshot: {twice:?}"
    );
    let read = reads.values().filter(|h| h.0 > 0).count();
    println!(
        "my_chunks: rows={} keys_read={read} writer_txs={} txs_during_snapshot={}",
        expected.len(),
        txs.load(Ordering::Relaxed),
        at_end - at_start
    );
}

/// The writer of the kill test: new ids inserted with v = 0 and updated v = v + 1, never the
/// initial rows (so each initial row's one snapshot read is known, and its loss or
/// duplicate would show), as tests/delivery/crash_loop.rs does.
async fn insert_update_load(t: String, seed: u64, stop: Arc<AtomicBool>) {
    let mut conn = my_admin().await;
    let mut rng = Rng::from_seed(seed);
    let mut next_id = ROWS as u64 + 1;
    while !stop.load(Ordering::Relaxed) {
        let id = next_id;
        next_id += 1;
        let upd = ROWS as u64 + 1 + rng.below(id - ROWS as u64);
        conn.query_drop(format!(
            "BEGIN; INSERT INTO {t} VALUES ({id}, 0);
             UPDATE {t} SET v = v + 1 WHERE id = {upd};
             UPDATE {t} SET v = v + 1 WHERE id = {id}; COMMIT;"
        ))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_the_snapshot_resumes_after_the_last_committed_chunk_exactly_once() {
    let db = FreshMyDb::create("mykill").await;
    let t = make_table(&db).await;
    let (mut cfg, topic) = config(&db, "exactly-once");
    cfg.extra_kafka_toml = "transaction_max_records = 2000\n".into();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(insert_update_load(
        t.clone(),
        Rng::seeded("mykill").next_u64(),
        stop.clone(),
    ));
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot starting", Duration::from_secs(60))
    });
    // Kill once a few chunks are committed, well before the snapshot ends.
    tokio::task::block_in_place(|| {
        let ends = TopicTail::open(&topic, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(120);
        while ends.end() < 3 * CHUNK as i64 {
            assert!(
                Instant::now() < deadline,
                "no snapshot rows; log:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert!(
        !agent.log().contains("snapshot complete"),
        "the snapshot finished before the kill; log:\n{}",
        agent.log()
    );
    let mark = log_mark(&agent);
    let mut agent = agent.restart(); // SIGKILL, then start again on the same config
    tokio::task::block_in_place(|| {
        wait_log_after(
            &mut agent,
            mark,
            "snapshot complete",
            Duration::from_secs(180),
        )
    });
    let after = log_after(&agent, mark);
    let resuming = after
        .lines()
        .find(|l| l.contains("snapshot resuming"))
        .unwrap_or_else(|| panic!("no `snapshot resuming` after the kill; log:\n{after}"));
    let resuming = strip_ansi(resuming);
    let key = resuming
        .split("after_key=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("");
    assert!(
        !key.is_empty() && !key.starts_with("rows_done"),
        "resumed without a key: {resuming}"
    );
    // The resume key is a chunk boundary: a multiple of the chunk size (no row of the
    // initial range is deleted).
    let key: i64 = key.trim_matches('"').parse().unwrap_or(-1);
    assert!(
        key > 0 && key % CHUNK as i64 == 0,
        "resume key {key} is not a chunk boundary: {resuming}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let rows: Vec<(i64, i64)> = my_admin()
        .await
        .query(format!("SELECT id, v FROM {t}"))
        .await
        .unwrap();
    let final_state: HashMap<i64, i64> = rows.into_iter().collect();
    tokio::task::block_in_place(|| {
        check_table_and_ledger(
            "",
            &topic,
            &cfg.event_store_topic,
            &final_state,
            Duration::from_secs(180),
        )
    });
    drop(agent);
}

/// A log line without its terminal colour codes (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_snapshot_exits_cleanly_within_ten_seconds_and_the_next_run_finishes_it_exactly_once(
) {
    const BIG: i64 = 300_000;
    let db = FreshMyDb::create("myterm").await;
    let t = db.table("t");
    my_admin()
        .await
        .query_drop(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(255) NOT NULL);
             INSERT INTO {t} SELECT seq, 0, REPEAT('x', 200) FROM {seq};",
            seq = seq_rows(1, BIG)
        ))
        .await
        .unwrap();
    let name = unique_name("myterm");
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    // Large chunks keep the reader busy and the channels to Kafka full when the signal comes.
    cfg.extra_source_toml = "[snapshot]\nchunk_size = 20000\n".into();
    let topic = format!("{name}.{}.t", db.name);
    sigterm::stop_mid_snapshot_and_resume(&cfg, &topic, BIG, "my", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_starting_with_an_enum_whose_labels_are_not_in_alphabetical_order_is_read_once_per_row(
) {
    const N: i64 = 300;
    let db = FreshMyDb::create("myenum").await;
    let t = db.table("t");
    // MariaDB orders an ENUM by declaration index (zebra < apple < mango), not by label:
    // chunk boundaries fall inside and between kinds, so every resume crosses that order.
    my_admin()
        .await
        .query_drop(format!(
            "CREATE TABLE {t} (kind ENUM('zebra', 'apple', 'mango') NOT NULL, id BIGINT NOT NULL,
                               v BIGINT NOT NULL, PRIMARY KEY (kind, id));
             INSERT INTO {t} SELECT ELT(1 + seq % 3, 'zebra', 'apple', 'mango'), seq, 0
               FROM {seq};",
            seq = seq_rows(1, N)
        ))
        .await
        .unwrap();
    let name = unique_name("myenum");
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.extra_source_toml = "[snapshot]\nchunk_size = 35\n".into();
    let topic = format!("{name}.{}.t", db.name);
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(120))
    });
    let reads: HashMap<i64, u32> = tokio::task::block_in_place(|| {
        let mut tail = TopicTail::open(&topic, Duration::from_secs(60));
        let mut dec = AvroDecoder::new();
        let mut reads = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(reads.len() as i64 >= N && tail.caught_up()) && Instant::now() < deadline {
            for rec in tail.poll(Duration::from_secs(1)) {
                let c = decode_table_change(&mut dec, &rec, "id");
                if c.op.as_deref() == Some("r") {
                    *reads.entry(c.id).or_default() += 1;
                }
            }
        }
        reads
    });
    let missing: Vec<i64> = (1..=N).filter(|id| !reads.contains_key(id)).collect();
    let repeated: Vec<(&i64, &u32)> = reads.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && repeated.is_empty(),
        "missing {missing:?}, read more than once {repeated:?}; log:\n{}",
        agent.log()
    );
}
