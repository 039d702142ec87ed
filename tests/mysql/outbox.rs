//! The outbox event router on MariaDB: an insert into the outbox table becomes an event on
//! the topic its aggregate type names, keyed by the aggregate id, the payload as the value.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use mysql_async::prelude::Queryable;

use common::agent::{read_topic, Agent, AgentConfig, AvroDecoder};
use common::cdc::StackCleanup;
use common::mysql::{my_admin, FreshMyDb};
use common::unique_name;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outbox_inserts_are_routed_by_aggregate_type_and_keyed_by_aggregate_id() {
    let db = FreshMyDb::create("myoutbox").await;
    let outbox = db.table("outbox");
    let mut admin = my_admin().await;
    admin
        .query_drop(format!(
            "CREATE TABLE {outbox} (id CHAR(36) PRIMARY KEY, aggregatetype VARCHAR(64) NOT NULL, \
             aggregateid VARCHAR(64) NOT NULL, type VARCHAR(64) NOT NULL, payload JSON)"
        ))
        .await
        .unwrap();
    let name = unique_name("myoutbox");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.extra_source_toml = format!(
        "[outbox]\ntable = \"{}.outbox\"\nroute_topic = \"{name}.outbox.${{routedByValue}}\"\n",
        db.name
    );
    let agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    admin
        .query_drop(format!(
            "BEGIN; INSERT INTO {outbox} VALUES ('e-1', 'Order', '42', 'OrderCreated', '{{\"total\": 10}}'); \
             DELETE FROM {outbox} WHERE id = 'e-1'; COMMIT"
        ))
        .await
        .unwrap();
    let recs = tokio::task::block_in_place(|| {
        read_topic(&format!("{name}.outbox.Order"), WAIT, |r| !r.is_empty())
    });
    assert_eq!(recs.len(), 1, "log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    assert_eq!(
        dec.decode(recs[0].key.as_deref().unwrap()),
        Avro::String("42".into())
    );
    let Avro::String(payload) = dec.decode(recs[0].value.as_deref().unwrap()) else {
        panic!("payload")
    };
    let json: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(json, serde_json::json!({"total": 10}));
    assert_eq!(recs[0].headers.get("id").map(String::as_str), Some("e-1"));
}

/// `delete_after_capture` on MariaDB: the agent deletes each routed row once durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outbox_rows_are_deleted_once_their_events_are_in_kafka() {
    let db = FreshMyDb::create("myoutdel").await;
    let outbox = db.table("outbox");
    let mut admin = my_admin().await;
    for sql in [
        format!(
            "CREATE TABLE {outbox} (id CHAR(36) PRIMARY KEY, aggregatetype VARCHAR(64) NOT NULL, \
             aggregateid VARCHAR(64) NOT NULL, payload TEXT)"
        ),
        format!("GRANT DELETE ON {outbox} TO '{}'@'%'", db.name),
    ] {
        admin.query_drop(sql).await.unwrap();
    }
    let name = unique_name("myoutdel");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.extra_source_toml = format!(
        "[outbox]\ntable = \"{}.outbox\"\nroute_topic = \"{name}.outbox.${{routedByValue}}\"\n\
         delete_after_capture = true\n",
        db.name
    );
    let agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    admin
        .query_drop(format!(
            "INSERT INTO {outbox} VALUES ('e-1', 'Order', '1', 'a'), ('e-2', 'Order', '2', 'b')"
        ))
        .await
        .unwrap();
    let recs = tokio::task::block_in_place(|| {
        read_topic(&format!("{name}.outbox.Order"), WAIT, |r| r.len() >= 2)
    });
    assert_eq!(recs.len(), 2, "log:\n{}", agent.log());
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let n: Option<i64> = admin
            .query_first(format!("SELECT COUNT(*) FROM {outbox}"))
            .await
            .unwrap();
        if n == Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n:?} rows left; log:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
