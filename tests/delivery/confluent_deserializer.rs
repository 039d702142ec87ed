//! What the agent writes is read by Confluent's own client and Avro deserializer
//! (confluent-kafka for Python, `AvroDeserializer` on the registry's Confluent-compatible API,
//! `isolation.level=read_committed`) — the way a Debezium consumer reads it. Keys, values,
//! tombstones and event-store records of both sources decode, and carry the values
//! docs/postgres-types.md and docs/mysql-types.md promise.
//!
//! The reader is tests/confluent/read_topic.py, run with the virtualenv scripts/build-deps
//! installs (`CDC_CONFLUENT_PYTHON`, set by scripts/test).

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::agent::{Agent, AgentConfig};
use common::mysql::{my_admin, FreshMyDb};
use common::{pg_connect, stack_env, unique_name, FreshPgDb};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);

/// Reads `count` records of `topic` with Confluent's deserializer; `string_keys` for the
/// event store, whose keys are text.
fn confluent_read(topic: &str, count: usize, string_keys: bool) -> Vec<Value> {
    let python = std::env::var("CDC_CONFLUENT_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CDC_CONFLUENT_PYTHON is not set: scripts/build-deps installs Confluent's client \
             into a virtualenv and scripts/test sets it"
        )
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/confluent/read_topic.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--bootstrap", &stack_env("KAFKA_BOOTSTRAP")])
        .args(["--registry", &stack_env("SCHEMA_REGISTRY_URL")])
        .args(["--topic", topic])
        .args(["--count", &count.to_string()])
        .args(["--timeout", &WAIT.as_secs().to_string()])
        .args(["--key", if string_keys { "string" } else { "avro" }])
        .output()
        .expect("run the Confluent reader");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Confluent reader failed ({}) on {topic}: {}\nread:\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Table-topic records grouped by their decoded key, each key's records in offset order
/// (the reader sorts by partition and offset; one key lives in one partition).
fn by_key(records: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut keys: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in records {
        keys.entry(r["key"].to_string())
            .or_default()
            .push(r["value"].clone());
    }
    keys
}

/// Both tests' table topic: c(1), c(2), u(1), d(2) and the tombstone of 2, read with
/// Confluent's deserializer and grouped by key (row 1: two records, row 2: three).
fn read_rows_one_and_two(topic: &str, agent: &Agent) -> BTreeMap<String, Vec<Value>> {
    let records = confluent_read(topic, 5, false);
    let keys = by_key(&records);
    let count = |id: i64| {
        keys.get(&json!({ "id": id }).to_string())
            .map_or(0, Vec::len)
    };
    assert_eq!(
        (count(1), count(2)),
        (2, 3),
        "records per key: {records:#?}\nagent log:\n{}",
        agent.log()
    );
    keys
}

/// The event-store records of one source, grouped by the row part of their key
/// (`<source>/<schema>.<table>/<key JSON>`) and checked against the table topic: the same
/// values, in the same order, tombstones excepted.
fn assert_ledger_mirrors(
    ledger: &[Value],
    source: &str,
    table: &str,
    topic: &BTreeMap<String, Vec<Value>>,
) {
    let prefix = format!("{source}/{table}/");
    let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in ledger {
        let key = r["key"].as_str().expect("event-store keys are text");
        let row = key
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("event-store key {key} outside {prefix}"));
        let row: Value = serde_json::from_str(row).unwrap();
        assert_eq!(r["headers"]["cdc.source"], json!(source), "{r}");
        assert_eq!(r["headers"]["cdc.table"], json!(table), "{r}");
        assert_eq!(
            r["headers"]["cdc.op"], r["value"]["op"],
            "header and value agree on the op: {r}"
        );
        rows.entry(row.to_string())
            .or_default()
            .push(r["value"].clone());
    }
    let expected: BTreeMap<String, Vec<Value>> = topic
        .iter()
        .map(|(k, vs)| {
            (
                k.clone(),
                vs.iter().filter(|v| !v.is_null()).cloned().collect(),
            )
        })
        .collect();
    assert_eq!(
        rows, expected,
        "the event store holds the table topic's events"
    );
}

#[tokio::test]
async fn confluents_avro_deserializer_reads_postgres_events_tombstones_and_the_event_store() {
    let db = FreshPgDb::create("confluent_pg").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                                 qty bigint, at timestamptz, data bytea, doc jsonb, ok boolean,
                                 tags text[]);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name("confluent_pg");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .batch_execute(
            "INSERT INTO items VALUES
               (1, 'apple', 1.50, 10, '2024-01-01 01:30:00+05:30', '\\x00ff', '{\"a\": 1}', true,
                '{x,y}'),
               (2, 'pear', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             UPDATE items SET name = 'green apple', price = 2.25 WHERE id = 1;
             DELETE FROM items WHERE id = 2;",
        )
        .await
        .unwrap();

    let keys = read_rows_one_and_two(&format!("{name}.public.items"), &agent);
    let (one, two) = (
        &keys[&json!({"id": 1}).to_string()],
        &keys[&json!({"id": 2}).to_string()],
    );

    assert_eq!(one[0]["op"], "c");
    assert_eq!(one[0]["before"], Value::Null);
    assert_eq!(
        one[0]["after"],
        json!({
            "id": 1, "name": "apple", "price": "1.50", "qty": 10,
            "at": "2023-12-31T20:00:00Z", "data": {"$bytes": "00ff"}, "doc": "{\"a\": 1}",
            "ok": true, "tags": ["x", "y"]
        })
    );
    let source = &one[0]["source"];
    assert_eq!(source["connector"], "postgresql", "{source}");
    assert_eq!(source["name"], json!(name), "{source}");
    assert_eq!(source["db"], json!(db.name), "{source}");
    assert_eq!(source["schema"], "public", "{source}");
    assert_eq!(source["table"], "items", "{source}");
    assert!(source["lsn"].as_i64().unwrap() > 0, "{source}");
    assert!(one[0]["ts_ms"].as_i64().unwrap() > 0);

    assert_eq!(one[1]["op"], "u");
    assert_eq!(one[1]["after"]["name"], "green apple");
    assert_eq!(one[1]["after"]["price"], "2.25");

    assert_eq!(two[0]["op"], "c");
    assert_eq!(
        two[0]["after"],
        json!({
            "id": 2, "name": "pear", "price": null, "qty": null, "at": null, "data": null,
            "doc": null, "ok": null, "tags": null
        })
    );
    assert_eq!(two[1]["op"], "d");
    assert_eq!(two[1]["before"]["id"], 2);
    assert_eq!(two[1]["after"], Value::Null);
    assert_eq!(two[2], Value::Null, "a tombstone follows the delete");

    let ledger = confluent_read(&cfg.event_store_topic, 4, true);
    assert_ledger_mirrors(&ledger, &name, "public.items", &keys);
    drop(agent);
}

#[tokio::test]
async fn confluents_avro_deserializer_reads_mariadb_events_tombstones_and_the_event_store() {
    let db = FreshMyDb::create("confluent_my").await;
    let mut admin = my_admin().await;
    let items = db.table("items");
    admin
        .query_drop(format!(
            "CREATE TABLE {items} (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL,
                                   price DECIMAL(10,2), at DATETIME(3), data BLOB,
                                   size ENUM('small','medium','large'), big BIGINT UNSIGNED,
                                   ok BOOLEAN)"
        ))
        .await
        .unwrap();
    let name = unique_name("confluent_my");
    let cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .query_drop(format!(
            "INSERT INTO {items} VALUES
               (1, 'apple', 1.50, '2024-01-02 03:04:05.678', X'00FF', 'medium',
                18446744073709551615, TRUE),
               (2, 'pear', NULL, NULL, NULL, NULL, NULL, NULL);
             UPDATE {items} SET name = 'green apple', price = 2.25 WHERE id = 1;
             DELETE FROM {items} WHERE id = 2;"
        ))
        .await
        .unwrap();

    let keys = read_rows_one_and_two(&format!("{name}.{}.items", db.name), &agent);
    let (one, two) = (
        &keys[&json!({"id": 1}).to_string()],
        &keys[&json!({"id": 2}).to_string()],
    );

    assert_eq!(one[0]["op"], "c");
    assert_eq!(
        one[0]["after"],
        json!({
            "id": 1, "name": "apple", "price": "1.50", "at": 1704164645678i64,
            "data": {"$bytes": "00ff"}, "size": "medium", "big": -1, "ok": 1
        })
    );
    let source = &one[0]["source"];
    assert_eq!(source["connector"], "mysql", "{source}");
    assert_eq!(source["name"], json!(name), "{source}");
    assert_eq!(source["db"], json!(db.name), "{source}");
    assert_eq!(source["table"], "items", "{source}");
    assert!(
        source["file"].as_str().is_some_and(|f| !f.is_empty()),
        "{source}"
    );
    assert!(source["pos"].as_i64().unwrap() > 0, "{source}");

    assert_eq!(one[1]["op"], "u");
    assert_eq!(one[1]["before"]["name"], "apple");
    assert_eq!(one[1]["after"]["name"], "green apple");
    assert_eq!(one[1]["after"]["price"], "2.25");

    assert_eq!(two[0]["op"], "c");
    assert_eq!(two[1]["op"], "d");
    assert_eq!(two[1]["before"]["name"], "pear");
    assert_eq!(two[1]["after"], Value::Null);
    assert_eq!(two[2], Value::Null, "a tombstone follows the delete");

    let ledger = confluent_read(&cfg.event_store_topic, 4, true);
    assert_ledger_mirrors(&ledger, &name, &format!("{}.items", db.name), &keys);
    drop(agent);
}
