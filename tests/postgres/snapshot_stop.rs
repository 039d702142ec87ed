//! How a snapshot ends when it does not run to its natural end: SIGTERM in the middle of a
//! large chunked snapshot stops the agent cleanly and quickly (systemd's stop timeout must
//! never be what ends it), and `snapshot.mode = initial_only` leaves no replication slot
//! behind to hold WAL once it is done.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::agent::{Agent, AgentConfig};
use common::cdc::{wait_log, StackCleanup};
use common::eos::check_table_and_ledger;
use common::sigterm;
use common::{pg_connect, pg_server_version_num, unique_name, FreshPgDb, PG_LOGICAL_MESSAGES};

async fn slot_exists(url: &str, slot: &str) -> bool {
    pg_connect(url)
        .await
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_snapshot_exits_cleanly_within_ten_seconds_and_the_next_run_finishes_it_exactly_once(
) {
    const ROWS: i64 = 300_000;
    let db = FreshPgDb::create("snapterm").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
             INSERT INTO t SELECT g, 0, repeat('x', 200) FROM generate_series(1, {ROWS}) g;
             ANALYZE t;
             CREATE PUBLICATION cdc_pub FOR TABLE t;"
        ))
        .await
        .unwrap();
    let name = unique_name("snapterm");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    // Large chunks keep the reader busy and the channels to Kafka full when the signal comes.
    cfg.extra_source_toml = format!(
        "[snapshot]\nchunk_size = 20000\n[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n"
    );
    let topic = format!("{name}.public.t");
    // Before 14 the snapshot is one piece, taken again by the next run (docs/snapshots.md).
    let resumable = pg_server_version_num(&admin).await >= PG_LOGICAL_MESSAGES;
    sigterm::stop_mid_snapshot_and_resume(&cfg, &topic, ROWS, "pg", resumable).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_only_snapshots_every_row_then_exits_and_leaves_no_replication_slot() {
    const ROWS: i64 = 5_000;
    let db = FreshPgDb::create("initonly").await;
    pg_connect(&db.url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO t SELECT g, 0 FROM generate_series(1, {ROWS}) g;
             CREATE PUBLICATION cdc_pub FOR TABLE t;"
        ))
        .await
        .unwrap();
    let name = unique_name("initonly");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = format!(
        "[snapshot]\nmode = \"initial_only\"\nchunk_size = 1000\n\
         [postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n"
    );
    let topic = format!("{name}.public.t");
    let mut agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| {
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(120))
    });
    let code = tokio::task::block_in_place(|| agent.wait_exit(Duration::from_secs(60)));
    assert_eq!(
        code,
        Some(0),
        "initial_only did not exit; log:\n{}",
        agent.log()
    );
    assert!(
        agent.log().contains("dropped the replication slot"),
        "no log line says the slot was dropped:\n{}",
        agent.log()
    );
    assert!(
        !slot_exists(&db.url, &name).await,
        "slot `{name}` is still there after initial_only finished"
    );
    let final_state: HashMap<i64, i64> = (1..=ROWS).map(|id| (id, 0)).collect();
    tokio::task::block_in_place(|| {
        check_table_and_ledger(
            " after initial_only",
            &topic,
            &cfg.event_store_topic,
            &final_state,
            Duration::from_secs(60),
        )
    });
}
