//! The slot keeps up with the server even when nothing it publishes changes: writes only to
//! an unpublished table must still advance `confirmed_flush_lsn`, or the server keeps every
//! WAL segment since the agent's last event and its disk fills up.

use crate::common;

use std::time::{Duration, Instant};

use common::agent::{Agent, AgentConfig};
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

#[tokio::test]
async fn writes_only_to_an_unpublished_table_still_advance_the_slots_confirmed_flush_lsn() {
    let db = FreshPgDb::create("pgprog").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE a (id int PRIMARY KEY);
             CREATE TABLE b (id int PRIMARY KEY, v text);
             CREATE PUBLICATION cdc_pub FOR TABLE a;",
        )
        .await
        .unwrap();
    let name = unique_name("pgprog");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = format!(
        "[snapshot]\nmode = \"never\"\n[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n"
    );
    let agent = Agent::start(&cfg);

    // Streaming: the slot exists, the agent's walsender holds it, and it has reached its
    // consistent point (a slot being created is already active, without a confirmed LSN).
    wait_until(
        Duration::from_secs(90),
        "the agent streaming from its slot",
        || {
            let admin = &admin;
            let name = &name;
            async move {
                admin
                    .query_opt(
                        "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active \
                         AND confirmed_flush_lsn IS NOT NULL",
                        &[name],
                    )
                    .await
                    .unwrap()
                    .map(|_| ())
            }
        },
    )
    .await;
    let start: String = admin
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);

    // Only the unpublished table changes, one transaction each.
    for i in 0..50 {
        admin
            .execute("INSERT INTO b VALUES ($1, repeat('x', 1000))", &[&i])
            .await
            .unwrap();
    }
    let target: String = admin
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);

    let waited = Instant::now();
    let reached = wait_until(
        Duration::from_secs(60),
        "confirmed_flush_lsn to pass the writes to the unpublished table",
        || {
            let (admin, name, target) = (&admin, &name, &target);
            async move {
                let row = admin
                    .query_one(
                        "SELECT confirmed_flush_lsn::text, confirmed_flush_lsn >= $2::text::pg_lsn \
                         FROM pg_replication_slots WHERE slot_name = $1",
                        &[name, target],
                    )
                    .await
                    .unwrap();
                row.get::<_, bool>(1).then(|| row.get::<_, String>(0))
            }
        },
    )
    .await;
    println!(
        "confirmed_flush_lsn {start} -> {reached} (target {target}) after {:?}",
        waited.elapsed()
    );
    assert!(agent.log().contains("streaming"), "{}", agent.log());
}
