//! The initial snapshot of a large table while a writer keeps changing it: the table topic,
//! read back with a standard Avro reader, must converge to exactly what the table holds —
//! no row lost between the chunks and the stream, none resurrected, none doubled into a wrong
//! final value.
//!
//! The snapshot runs in chunks while the stream flows (DBLog watermarks, docs/snapshots.md),
//! so a key's history may start with a change streamed before its chunk was read; what holds
//! per key is: at most one snapshot read, and nothing after its delete (ids are never
//! reused, so an event after a delete would be a resurrected row).

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::agent::{field, Agent, AgentConfig, AvroDecoder};
use common::cdc::{as_i64, as_opt_string, decode_table_change, wait_log, StackCleanup, TopicTail};
use common::rng::Rng;
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

/// Rows in the table before the agent starts.
const ROWS: i64 = 100_000;
/// Writer transactions after the snapshot completed, before writing stops.
const TXS_AFTER_SNAPSHOT: u64 = 300;

/// `val`, `note` of a row.
type Row = (i64, Option<String>);

/// Random small transactions on table `t` of `rows` initial rows (1–20 statements: 50% updates, 25% inserts of new ids, 25%
/// deletes) until `stop`; counts committed transactions in `txs`.
pub async fn write_load(
    url: String,
    rows: i64,
    seed: u64,
    stop: Arc<AtomicBool>,
    txs: Arc<AtomicU64>,
) -> u64 {
    let client = pg_connect(&url).await;
    let mut rng = Rng::from_seed(seed);
    let mut next_id = rows + 1;
    let mut stmts = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut sql = String::from("BEGIN;");
        for _ in 0..rng.range(1, 21) {
            let pick = rng.range(0, 100);
            let id = rng.range(1, next_id as u64) as i64;
            if pick < 50 {
                sql.push_str(&format!(
                    "UPDATE t SET val = val + 1, note = 'u{stmts}' WHERE id = {id};"
                ));
            } else if pick < 75 {
                sql.push_str(&format!("INSERT INTO t VALUES ({next_id}, 0, 'n{stmts}');"));
                next_id += 1;
            } else {
                sql.push_str(&format!("DELETE FROM t WHERE id = {id};"));
            }
            stmts += 1;
        }
        sql.push_str("COMMIT;");
        client.batch_execute(&sql).await.unwrap();
        txs.fetch_add(1, Ordering::Relaxed);
        // Pacing, so the writer does not starve the agent on a 2-core machine.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stmts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_under_concurrent_writes_converges_to_exactly_the_table() {
    let t0 = Instant::now();
    let mut rng = Rng::seeded("pg_snapshot");
    let db = FreshPgDb::create("snap").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, val int NOT NULL, note text);
             INSERT INTO t SELECT g, 0, 'row ' || g FROM generate_series(1, {ROWS}) g;
             ANALYZE t;
             CREATE PUBLICATION cdc_pub FOR TABLE t;"
        ))
        .await
        .unwrap();
    let name = unique_name("snap");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let topic = format!("{name}.public.t");

    // The writer runs before, during and after the snapshot.
    let stop = Arc::new(AtomicBool::new(false));
    let txs = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_load(
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

    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot starting", Duration::from_secs(60))
    });
    let txs_at_start = txs.load(Ordering::Relaxed);
    let snap_t0 = Instant::now();
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(150))
    });
    let snapshot_secs = snap_t0.elapsed().as_secs_f64();
    let txs_at_end = txs.load(Ordering::Relaxed);
    assert!(
        txs_at_end > txs_at_start,
        "no write committed during the snapshot ({txs_at_start} → {txs_at_end})"
    );
    wait_until(Duration::from_secs(60), "writes after the snapshot", || {
        let n = txs.load(Ordering::Relaxed);
        async move { (n >= txs_at_end + TXS_AFTER_SNAPSHOT).then_some(()) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let stmts = writer.await.unwrap();
    let total_txs = txs.load(Ordering::Relaxed);

    let expected: BTreeMap<i64, Row> = admin
        .query("SELECT id, val, note FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                i64::from(r.get::<_, i32>(0)),
                (i64::from(r.get::<_, i32>(1)), r.get::<_, Option<String>>(2)),
            )
        })
        .collect();

    // Latest value per key; a delete or tombstone removes the key.
    let (state, (history, resurrected), records) = tokio::task::block_in_place(|| {
        let mut tail = TopicTail::open(&topic, Duration::from_secs(60));
        let mut dec = AvroDecoder::new();
        let mut state: BTreeMap<i64, Row> = BTreeMap::new();
        // Per key: snapshot reads seen, and whether a delete was seen.
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
                match (c.op.as_deref(), c.after) {
                    (None | Some("d"), _) => {
                        state.remove(&c.id);
                    }
                    (Some(_), Some(a)) => {
                        state.insert(
                            c.id,
                            (as_i64(field(&a, "val")), as_opt_string(field(&a, "note"))),
                        );
                    }
                    (Some(op), None) => panic!("op {op} without after for id {}", c.id),
                }
            }
            if state == expected || Instant::now() > deadline {
                break (state, (history, resurrected), tail.seen);
            }
        }
    });
    if state != expected {
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
            .map(|(k, v)| (k, v, &state[k]))
            .collect();
        panic!(
            "topic state differs from the table after 120 s: {} rows expected, {} in the topic; \
             missing (first 10) {missing:?}; extra {extra:?}; wrong (id, table, topic) {wrong:?}; \
             agent log:\n{}",
            expected.len(),
            state.len(),
            agent.log()
        );
    }

    // A deleted row never comes back; no key is read twice by the snapshot.
    assert!(
        resurrected.is_empty(),
        "events after a delete (id, op), first 10: {:?}",
        &resurrected[..resurrected.len().min(10)]
    );
    let twice: Vec<_> = history.iter().filter(|(_, h)| h.0 > 1).take(10).collect();
    assert!(
        twice.is_empty(),
        "keys read twice by the snapshot: {twice:?}"
    );
    let reads = history.values().filter(|h| h.0 > 0).count();
    println!(
        "pg_snapshot: rows={} topic_records={records} keys_read={reads} writer_txs={total_txs} \
         writer_stmts={stmts} txs_during_snapshot={} snapshot_s={snapshot_secs:.1} total_s={:.1}",
        expected.len(),
        txs_at_end - txs_at_start,
        t0.elapsed().as_secs_f64()
    );
    drop(agent);
}
