//! Exactly-once across a crash *inside* a source transaction that spans several Kafka
//! transactions: the agent is killed right after Kafka committed part of a large PostgreSQL
//! transaction (the offsets topic says so), PostgreSQL replays the whole transaction on
//! restart, and the already-committed part must be skipped by its recorded message index —
//! neither lost nor written twice.
//!
//! The crash loop (tests/delivery/crash_loop.rs) kills at random moments and may or may not land
//! there; this test waits for that exact state before killing, twice.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::agent::{Agent, AgentConfig};
use common::eos::check_table_and_ledger;
use common::kafka;
use common::{pg_connect, unique_name, FreshPgDb};
use rdkafka::consumer::BaseConsumer;
use rdkafka::Offset;

/// Rows of the large source transaction: many Kafka transactions of
/// `transaction_max_records = 1000` (each row is a table record and a ledger record).
const LARGE_TX_ROWS: i64 = 150_000;

/// Waits until the newest committed checkpoint in `topic` records a partly committed source
/// transaction, and returns the number of its messages already in Kafka.
fn wait_for_partial(consumer: &BaseConsumer, timeout: Duration) -> u64 {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let Some(m) = kafka::poll(consumer, Duration::from_millis(20)) else {
            continue;
        };
        let Some(payload) = m.unwrap().value else {
            continue;
        };
        let cp: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        if let Some(n) = cp["partial"]["messages"].as_u64() {
            return n;
        }
    }
    panic!("no partly committed source transaction seen in {timeout:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_a_large_source_transaction_resumes_without_loss_or_duplicates() {
    let db = FreshPgDb::create("eos_partial").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("eos_partial");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    cfg.extra_kafka_toml = "transaction_max_records = 1000\n".into();
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(Duration::from_secs(60));

    let offsets = format!("{name}.offsets");
    let consumer = kafka::consumer("offsets-watch", &[]);
    kafka::assign(&consumer, &offsets, &[0], Offset::End);

    admin
        .batch_execute(&format!(
            "INSERT INTO t SELECT g, 0 FROM generate_series(1, {LARGE_TX_ROWS}) g;
             UPDATE t SET v = 1 WHERE id % 1000 = 0;"
        ))
        .await
        .unwrap();

    // Kill as soon as part of the transaction is committed; after the restart PostgreSQL
    // sends the transaction again from its first row. Kill once more inside the replay,
    // once the restarted agent committed further than the first incarnation.
    let first = wait_for_partial(&consumer, Duration::from_secs(120));
    agent = agent.restart();
    let mut second = wait_for_partial(&consumer, Duration::from_secs(120));
    while second <= first {
        second = wait_for_partial(&consumer, Duration::from_secs(120));
    }
    agent = agent.restart();

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
    let resumes = log
        .matches("resuming inside a partly committed source transaction")
        .count();
    println!("lost=0 dup=0 killed after {first} and {second} committed messages, partial resumes={resumes}");
    assert!(
        resumes >= 2,
        "expected two restarts that skip a partly committed transaction's first messages; log:\n{log}"
    );
    drop(agent);
}
