//! `source.query` (`[mysql] include_query`, Debezium's `include.query`) on the stack's
//! MariaDB (`binlog_annotate_row_events = ON`, its default): switched on, every row event
//! carries the exact statement that made it (the agent asks MariaDB for its annotate rows
//! events, see docs/mysql-source.md); snapshot rows and, by default, every event carry null.
//! A server that writes no statements (a scratch server with the setting off) is named in a
//! start-up warning.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder};
use common::mysql::{my_admin, FreshMyDb};
use common::scratch::{ScratchMariadb, ADMIN, ADMIN_PASSWORD};
use common::unique_name;
use mysql_async::prelude::Queryable;

const WAIT: Duration = Duration::from_secs(120);

/// One change event as the test compares it: `op`, primary key and `source.query`.
#[derive(Debug, PartialEq)]
struct Seen {
    op: String,
    id: i32,
    query: Option<String>,
}

fn seen(ev: &Avro) -> Seen {
    let op = match field(ev, "op") {
        Avro::String(s) => s.clone(),
        other => panic!("op: {other:?}"),
    };
    let image = if op == "d" { "before" } else { "after" };
    let id = match field(unwrap_union(field(ev, image)), "id") {
        Avro::Int(i) => *i,
        other => panic!("id: {other:?}"),
    };
    let query = match unwrap_union(field(unwrap_union(field(ev, "source")), "query")) {
        Avro::Null => None,
        Avro::String(s) => Some(s.clone()),
        other => panic!("source.query: {other:?}"),
    };
    Seen { op, id, query }
}

/// The statements the scenario runs while the agent streams, in order.
struct Statements {
    insert: String,
    update: String,
    delete: String,
}

/// Snapshots one row, then runs an INSERT of two rows, an UPDATE of both and a DELETE of one
/// while the agent streams; returns the statements and the events in topic order.
async fn run_scenario(include_query: Option<bool>) -> (Statements, Vec<Seen>) {
    let db = FreshMyDb::create("myquery").await;
    let t = db.table("t");
    let mut admin = my_admin().await;
    admin
        .query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)"))
        .await
        .unwrap();
    admin
        .query_drop(format!("INSERT INTO {t} VALUES (1, 10)"))
        .await
        .unwrap();
    let mut cfg = AgentConfig::mysql(&unique_name("myquery"), &db.name, &db.name, &db.password);
    if let Some(on) = include_query {
        cfg.extra_source_toml = format!("[mysql]\ninclude_query = {on}\n");
    }
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    let statements = Statements {
        insert: format!("INSERT INTO {t} (id, v) VALUES (2, 20), (3, 30)"),
        update: format!("UPDATE {t} SET v = v + 1 WHERE id >= 2"),
        delete: format!("DELETE FROM {t} WHERE id = 3"),
    };
    for sql in [&statements.insert, &statements.update, &statements.delete] {
        admin.query_drop(sql.as_str()).await.unwrap();
    }
    let topic = format!("{}.{}.t", cfg.topic_prefix, db.name);
    // Snapshot row, two inserts, two updates, one delete (tombstones carry no event).
    let recs = tokio::task::spawn_blocking(move || {
        read_topic(&topic, WAIT, |r| {
            r.iter().filter(|r| r.value.is_some()).count() >= 6
        })
    })
    .await
    .unwrap();
    let mut dec = AvroDecoder::new();
    let events: Vec<Seen> = recs
        .iter()
        .filter_map(|r| r.value.as_ref())
        .map(|v| seen(&dec.decode(v)))
        .collect();
    assert_eq!(events.len(), 6, "{events:?}\nagent log:\n{}", agent.log());
    (statements, events)
}

fn ev(op: &str, id: i32, query: Option<&str>) -> Seen {
    Seen {
        op: op.into(),
        id,
        query: query.map(str::to_string),
    }
}

#[tokio::test]
async fn by_default_row_events_carry_no_statement() {
    let (_, events) = run_scenario(None).await;
    assert_eq!(
        events,
        [
            ev("r", 1, None),
            ev("c", 2, None),
            ev("c", 3, None),
            ev("u", 2, None),
            ev("u", 3, None),
            ev("d", 3, None),
        ]
    );
}

#[tokio::test]
async fn with_include_query_every_row_event_on_mariadb_carries_its_exact_statement() {
    let (s, events) = run_scenario(Some(true)).await;
    for e in &events {
        println!("{} id={} source.query={:?}", e.op, e.id, e.query);
    }
    assert_eq!(
        events,
        [
            ev("r", 1, None),
            ev("c", 2, Some(&s.insert)),
            ev("c", 3, Some(&s.insert)),
            ev("u", 2, Some(&s.update)),
            ev("u", 3, Some(&s.update)),
            ev("d", 3, Some(&s.delete)),
        ]
    );
}

#[test]
fn include_query_on_a_server_writing_no_statements_warns_naming_the_setting_and_the_fix() {
    let server = ScratchMariadb::start("binlog_annotate_row_events = OFF");
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v INT)");
    let mut cfg = AgentConfig::mysql(&unique_name("myquery"), "app", ADMIN, ADMIN_PASSWORD);
    cfg.port = server.port.to_string();
    cfg.extra_source_toml = "[mysql]\ninclude_query = true\n".into();
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    server.sql("INSERT INTO app.t VALUES (1, 10)");
    let topic = format!("{}.app.t", cfg.topic_prefix);
    let recs = read_topic(&topic, WAIT, |r| !r.is_empty());
    let log = agent.log();
    assert_eq!(recs.len(), 1, "agent log:\n{log}");
    let mut dec = AvroDecoder::new();
    let event = seen(&dec.decode(recs[0].value.as_ref().unwrap()));
    assert_eq!(event, ev("c", 1, None));
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("include_query = true"))
        .unwrap_or_else(|| panic!("no include_query warning in:\n{log}"));
    println!("{warning}");
    assert!(
        warning.contains("binlog_annotate_row_events is OFF")
            && warning.contains("SET GLOBAL binlog_annotate_row_events = ON"),
        "{warning}"
    );
}
