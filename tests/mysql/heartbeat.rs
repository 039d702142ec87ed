//! Heartbeats on MariaDB: records keep coming while the captured tables are idle.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use mysql_async::prelude::Queryable;

use common::agent::{field, read_topic, Agent, AgentConfig, AvroDecoder};
use common::cdc::StackCleanup;
use common::mysql::{my_admin, FreshMyDb};
use common::unique_name;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_heartbeats_come_while_the_captured_tables_are_idle() {
    let db = FreshMyDb::create("myheartbeat").await;
    my_admin()
        .await
        .query_drop(format!(
            "CREATE TABLE {} (id INT PRIMARY KEY)",
            db.table("t")
        ))
        .await
        .unwrap();
    let name = unique_name("myheartbeat");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.extra_source_toml =
        format!("[heartbeat]\ninterval_ms = 500\ntopic = \"{name}.heartbeat\"\n");
    let agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    let beats = tokio::task::block_in_place(|| {
        read_topic(&format!("{name}.heartbeat"), WAIT, |r| r.len() >= 3)
    });
    assert!(beats.len() >= 3, "log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let key = dec.decode(beats[0].key.as_deref().unwrap());
    assert_eq!(field(&key, "serverName"), &Avro::String(name.clone()));
}
