//! The Kafka broker is stopped in the middle of a write load and started again: with
//! exactly-once delivery, a read_committed consumer then finds every change exactly once.
//!
//! This test stops and starts the shared broker of the local stack: it must not run while
//! another test uses the stack (cargo runs test binaries one after another; within this binary
//! it is `#[serial(stack)]`), and it starts the broker again even when it fails.

use crate::common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::agent::{Agent, AgentConfig};
use common::eos::check_table_and_ledger;
use common::{pg_connect, unique_name, FreshPgDb};

fn stack(cmd: &str, svc: &str) -> bool {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Command::new(root.join("scripts/stack"))
        .args([cmd, svc])
        .current_dir(&root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts the broker again when dropped, whatever happened to the test.
struct KafkaBack;

impl Drop for KafkaBack {
    fn drop(&mut self) {
        if !stack("start", "kafka") {
            eprintln!("kafka_outage: could not restart Kafka; run `scripts/stack start kafka`");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial_test::serial(stack)]
async fn a_broker_restart_mid_load_loses_and_doubles_nothing() {
    let db = FreshPgDb::create("kafka_outage").await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("kafka_outage");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    let agent = Agent::start(&cfg);
    agent.wait_streaming(Duration::from_secs(120));

    // Inserts and updates (v counts updates of a row) until stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicI64::new(0));
    let writer = {
        let (stop, last, url) = (stop.clone(), last.clone(), db.url.clone());
        tokio::spawn(async move {
            let c = pg_connect(&url).await;
            let mut id = 0i64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                c.batch_execute(&format!(
                    "BEGIN; INSERT INTO t VALUES ({id}, 0);
                     UPDATE t SET v = v + 1 WHERE id = {};
                     COMMIT;",
                    (id + 1) / 2
                ))
                .await
                .unwrap();
                last.store(id, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    let back = KafkaBack;
    assert!(stack("stop", "kafka"), "stop kafka");
    tokio::time::sleep(Duration::from_secs(5)).await; // writes go on while the broker is away
    drop(back); // starts Kafka again
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    println!("rows written: {}", last.load(Ordering::Relaxed));

    let admin = pg_connect(&db.url).await;
    let rows = admin.query("SELECT id, v FROM t", &[]).await.unwrap();
    let final_state: HashMap<i64, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    check_table_and_ledger(
        " across a broker restart",
        &format!("{name}.public.t"),
        &cfg.event_store_topic,
        &final_state,
        Duration::from_secs(240),
    );
    assert!(
        agent.child.id() > 0 && agent.log().contains("streaming"),
        "agent log:\n{}",
        agent.log()
    );
}
