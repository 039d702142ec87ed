//! `source.query` (`[mysql] include_query`, Debezium's `include.query`) on the stack's
//! MariaDB: off by default, so row events carry null; switched on, the agent says at start why
//! MariaDB will not send the statements to it (see docs/mysql-source.md).

mod common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder};
use common::mysql::{my_admin, FreshMyDb};
use common::unique_name;
use mysql_async::prelude::Queryable;

const WAIT: Duration = Duration::from_secs(120);

/// Starts an agent on a fresh table, inserts a row while it streams and returns the source
/// block of its event, with the agent.
async fn insert_and_read_source(include_query: Option<bool>) -> (Avro, Agent) {
    let db = FreshMyDb::create("myquery").await;
    let t = db.table("t");
    let mut admin = my_admin().await;
    admin
        .query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)"))
        .await
        .unwrap();
    let mut cfg = AgentConfig::mysql(&unique_name("myquery"), &db.name, &db.name, &db.password);
    if let Some(on) = include_query {
        cfg.extra_source_toml = format!("[mysql]\ninclude_query = {on}\n");
    }
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .query_drop(format!("INSERT INTO {t} VALUES (1, 42) /* marker */"))
        .await
        .unwrap();
    let topic = format!("{}.{}.t", cfg.topic_prefix, db.name);
    let recs = tokio::task::spawn_blocking(move || read_topic(&topic, WAIT, |r| !r.is_empty()))
        .await
        .unwrap();
    assert_eq!(recs.len(), 1, "agent log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let ev = dec.decode(recs[0].value.as_ref().unwrap());
    (unwrap_union(field(&ev, "source")).clone(), agent)
}

#[tokio::test]
async fn by_default_row_events_carry_no_statement() {
    let (src, _agent) = insert_and_read_source(None).await;
    assert_eq!(unwrap_union(field(&src, "query")), &Avro::Null, "{src:?}");
}

#[tokio::test]
async fn include_query_on_mariadb_tells_the_operator_the_statement_cannot_be_requested() {
    let (src, agent) = insert_and_read_source(Some(true)).await;
    let log = agent.log();
    assert!(
        log.contains("include_query = true: MariaDB sends the statements")
            && log.contains("source.query stays null on this server"),
        "{log}"
    );
    println!("source.query = {:?}", unwrap_union(field(&src, "query")));
}
