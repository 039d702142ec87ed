//! Exactly-once under a crash loop: the agent is killed with SIGKILL at random moments while
//! a writer produces unique changes — some inside source transactions larger than one Kafka
//! transaction — and restarted each time. A read_committed consumer must then find every
//! change exactly once, in order per key, in the table topic and in the event store.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::agent::{Agent, AgentConfig};
use common::eos::{check_table_and_ledger, Rng};
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

/// Kills of the agent; the issue asks for at least 50.
const KILLS: usize = 50;
/// Kills while the snapshot runs (the issue asks for at least 3).
const SNAPSHOT_KILLS: usize = 3;
/// Rows in the table before the agent first starts (the first kills may hit the snapshot).
const INITIAL_ROWS: i64 = 20_000;
/// Rows of each large source transaction: more records than one Kafka transaction holds
/// (the test sets `transaction_max_records = 5000`; each row is 2 records).
const LARGE_TX_ROWS: i64 = 12_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_arrives_exactly_once_through_fifty_kills() {
    let seed = std::env::var("CDC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("seed={seed} (rerun with CDC_TEST_SEED={seed})");
    let mut rng = Rng(seed);

    let db = FreshPgDb::create("eos").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL);
             INSERT INTO t SELECT g, 0 FROM generate_series(1, {INITIAL_ROWS}) g;
             CREATE PUBLICATION cdc_pub FOR TABLE t;"
        ))
        .await
        .unwrap();
    let name = unique_name("eos");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    cfg.extra_kafka_toml = "transaction_max_records = 5000\n".into();
    let mut agent = Agent::start(&cfg);

    // The writer: unique changes only. Inserts of new ids with v = 0 and updates v = v + 1,
    // in small transactions, with a large one now and then.
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU64::new(INITIAL_ROWS as u64 + 1));
    let writer = {
        let (stop, next_id, url) = (stop.clone(), next_id.clone(), db.url.clone());
        let mut wrng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        tokio::spawn(async move {
            let c = pg_connect(&url).await;
            let mut large = 0;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                if round % 40 == 0 && large < 4 {
                    large += 1;
                    let first = next_id.fetch_add(LARGE_TX_ROWS as u64, Ordering::Relaxed);
                    c.batch_execute(&format!(
                        "INSERT INTO t SELECT g, 0 FROM generate_series({first}, {}) g",
                        first + LARGE_TX_ROWS as u64 - 1
                    ))
                    .await
                    .unwrap();
                    continue;
                }
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                // Only rows the writer inserted are updated: initial rows keep v = 0, so the
                // snapshot's value of each is known and its loss would show.
                let upd = INITIAL_ROWS as u64 + 1 + wrng.below(id - INITIAL_ROWS as u64);
                c.batch_execute(&format!(
                    "BEGIN; INSERT INTO t VALUES ({id}, 0);
                     UPDATE t SET v = v + 1 WHERE id = {upd};
                     UPDATE t SET v = v + 1 WHERE id = {id}; COMMIT;"
                ))
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            large
        })
    };

    for kill in 0..KILLS {
        if kill == SNAPSHOT_KILLS {
            // The first kills hit the snapshot (it restarts from scratch on a new slot);
            // the rest need a snapshot that finished, so the stream runs between them.
            wait_until(Duration::from_secs(120), "a complete snapshot", || async {
                agent.log().contains("snapshot complete").then_some(())
            })
            .await;
        }
        let wait = 100 + rng.below(1_500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert!(
            agent.child.try_wait().unwrap().is_none(),
            "agent exited on its own before kill {kill}; log:\n{}",
            agent.log()
        );
        agent = agent.restart(); // SIGKILL, then start again on the same config
    }
    stop.store(true, Ordering::Relaxed);
    let large = writer.await.unwrap();
    assert!(large >= 3, "the writer made {large} large transactions");

    // The table's final state defines every version: each update added 1 to v.
    let rows = admin.query("SELECT id, v FROM t", &[]).await.unwrap();
    let final_state: HashMap<i64, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    check_table_and_ledger(
        "",
        &format!("{name}.public.t"),
        &cfg.event_store_topic,
        &final_state,
        Duration::from_secs(300),
    );
    let log = agent.log();
    println!(
        "lost=0 dup=0 kills={KILLS} replays_skipped={} snapshots_restarted={}",
        log.matches("skipping what a committed Kafka transaction already holds")
            .count(),
        log.matches("recreating the slot and snapshotting again")
            .count()
    );
    drop(agent);
}
