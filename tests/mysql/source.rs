//! The MySQL/MariaDB source end to end on the stack's MariaDB: database → cdc-agent → Kafka,
//! read back and decoded through the registry with a standard Avro reader.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::types::Value as Avro;
use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder, Record};
use common::mysql::{is_mysql, my_admin, FreshMyDb};
use common::unique_name;
use mysql_async::prelude::Queryable;

const WAIT: Duration = Duration::from_secs(120);

fn op(v: &Avro) -> String {
    match field(v, "op") {
        Avro::String(s) => s.clone(),
        other => panic!("op: {other:?}"),
    }
}

fn int(v: &Avro) -> i64 {
    match unwrap_union(v) {
        Avro::Int(i) => i64::from(*i),
        Avro::Long(l) => *l,
        other => panic!("not an int: {other:?}"),
    }
}

fn string(v: &Avro) -> String {
    match unwrap_union(v) {
        Avro::String(s) => s.clone(),
        Avro::Enum(_, s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn agent_config(db: &FreshMyDb, delivery: &str) -> AgentConfig {
    let name = unique_name("mysrc");
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.extra_source_toml = format!("delivery = \"{delivery}\"\n");
    cfg
}

#[tokio::test]
async fn snapshot_and_changes_arrive_as_debezium_events_with_the_mysql_source_block() {
    let db = FreshMyDb::create("mysrc").await;
    let mut admin = my_admin().await;
    let items = db.table("items");
    admin
        .query_drop(format!(
            "CREATE TABLE {items} (id INT PRIMARY KEY, name VARCHAR(40), qty INT);
             INSERT INTO {items} VALUES (1, 'existing', 1);"
        ))
        .await
        .unwrap();
    let cfg = agent_config(&db, "exactly-once");
    let agent = Agent::start(&cfg);
    let topic = format!("{}.{}.items", cfg.topic_prefix, db.name);
    let recs = read_topic(&topic, WAIT, |r| !r.is_empty());
    assert_eq!(recs.len(), 1, "snapshot row; agent log:\n{}", agent.log());
    agent.wait_streaming(WAIT);
    admin
        .query_drop(format!(
            "INSERT INTO {items} VALUES (2, 'two', 2);
             UPDATE {items} SET qty = 3 WHERE id = 2;
             UPDATE {items} SET id = 20 WHERE id = 2;
             DELETE FROM {items} WHERE id = 20;"
        ))
        .await
        .unwrap();
    // r, c, u, d(2)+tombstone, c(20), d(20)+tombstone
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 8);
    assert_eq!(recs.len(), 8, "agent log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let ops: Vec<String> = recs
        .iter()
        .map(|r| match &r.value {
            Some(v) => op(&dec.decode(v)),
            None => "tombstone".into(),
        })
        .collect();
    assert_eq!(
        ops,
        ["r", "c", "u", "d", "tombstone", "c", "d", "tombstone"]
    );

    let first = dec.decode(recs[0].value.as_ref().unwrap());
    let after = unwrap_union(field(&first, "after"));
    assert_eq!(string(field(after, "name")), "existing");
    let snap_src = unwrap_union(field(&first, "source"));
    // Debezium's markers, which the snapshot engine sets: `first`, `true`…, `last`; the only
    // row of the initial snapshot is its last.
    assert_eq!(string(field(snap_src, "snapshot")), "last");
    assert!(
        string(field(snap_src, "file")).contains("bin."),
        "{snap_src:?}"
    );

    let update = dec.decode(recs[2].value.as_ref().unwrap());
    assert_eq!(int(field(unwrap_union(field(&update, "after")), "qty")), 3);
    assert_eq!(int(field(unwrap_union(field(&update, "before")), "qty")), 2);
    let src = unwrap_union(field(&update, "source"));
    assert_eq!(string(field(src, "connector")), "mysql");
    assert_eq!(string(field(src, "name")), cfg.topic_prefix);
    assert_eq!(string(field(src, "db")), db.name);
    assert_eq!(string(field(src, "table")), "items");
    assert_eq!(string(field(src, "snapshot")), "false");
    assert_eq!(int(field(src, "server_id")), 1, "the stack's server_id");
    assert!(int(field(src, "pos")) > 4);
    assert_eq!(int(field(src, "row")), 0);
    let gtid = string(field(src, "gtid"));
    if is_mysql(&mut admin).await {
        // MySQL's GTID: the server's UUID and a transaction number.
        let (uuid, seq) = gtid.split_once(':').unwrap_or_default();
        assert!(
            uuid.len() == 36 && seq.parse::<u64>().is_ok_and(|n| n > 0),
            "MySQL GTID uuid:number: {gtid}"
        );
    } else {
        assert!(
            gtid.starts_with("0-1-"),
            "MariaDB GTID domain-server-seq: {gtid}"
        );
    }
    let tx = unwrap_union(field(&update, "transaction"));
    assert_eq!(string(field(tx, "id")), gtid, "transaction id = GTID");

    // The primary-key change: delete + tombstone on the old key, create on the new one.
    let old_key = dec.decode(recs[3].key.as_ref().unwrap());
    assert_eq!(int(field(&old_key, "id")), 2);
    assert_eq!(recs[4].key, recs[3].key);
    let new_key = dec.decode(recs[5].key.as_ref().unwrap());
    assert_eq!(int(field(&new_key, "id")), 20);

    // The ledger holds every event but no tombstone, with headers.
    let ledger = read_topic(&cfg.event_store_topic, WAIT, |r| r.len() >= 6);
    assert_eq!(ledger.len(), 6, "agent log:\n{}", agent.log());
    assert_eq!(
        ledger[1].headers.get("cdc.op").map(String::as_str),
        Some("c")
    );
    assert_eq!(
        String::from_utf8_lossy(ledger[1].key.as_ref().unwrap()),
        format!("{}/{}.items/{{\"id\":2}}", cfg.source_name, db.name)
    );
}

/// Folds a table topic into `id → v` (tombstones and deletes remove the key).
fn fold_into(recs: &[Record], dec: &mut AvroDecoder, state: &mut BTreeMap<i64, i64>) {
    for r in recs {
        let Some(k) = &r.key else { continue };
        let id = int(field(&dec.decode(k), "id"));
        match &r.value {
            None => {
                state.remove(&id);
            }
            Some(v) => {
                let v = dec.decode(v);
                match unwrap_union(field(&v, "after")) {
                    Avro::Null => {
                        state.remove(&id);
                    }
                    after => {
                        state.insert(id, int(field(after, "v")));
                    }
                }
            }
        }
    }
}

async fn snapshot_under_concurrent_writes(delivery: &str) {
    let db = FreshMyDb::create("myconc").await;
    let mut admin = my_admin().await;
    let t = db.table("t");
    admin
        .query_drop(format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, v BIGINT NOT NULL)"
        ))
        .await
        .unwrap();
    // 20,000 rows, so the snapshot is still reading while the writer runs.
    for chunk in 0..20 {
        let values: Vec<String> = (0..1000)
            .map(|i| format!("({}, 0)", chunk * 1000 + i))
            .collect();
        admin
            .query_drop(format!("INSERT INTO {t} VALUES {}", values.join(",")))
            .await
            .unwrap();
    }
    let cfg = agent_config(&db, delivery);
    let agent = Agent::start(&cfg);
    // Writes from before the agent starts until well after it streams.
    let writer = {
        let t = t.clone();
        tokio::spawn(async move {
            let mut conn = my_admin().await;
            let mut next_id = 100_000;
            for round in 0..600u64 {
                let id = (round * 7919) % 20_000;
                let sql = match round % 4 {
                    0 => format!("UPDATE {t} SET v = v + 1 WHERE id = {id}"),
                    1 => {
                        next_id += 1;
                        format!("INSERT INTO {t} VALUES ({next_id}, {round})")
                    }
                    2 => format!("DELETE FROM {t} WHERE id = {}", (id + 13) % 20_000),
                    _ => format!(
                        "UPDATE {t} SET v = v + 1 WHERE id BETWEEN {id} AND {}",
                        id + 50
                    ),
                };
                conn.query_drop(sql).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    writer.await.unwrap();
    let rows: Vec<(i64, i64)> = admin.query(format!("SELECT id, v FROM {t}")).await.unwrap();
    let expected: BTreeMap<i64, i64> = rows.into_iter().collect();
    let topic = format!("{}.{}.t", cfg.topic_prefix, db.name);
    let mut dec = AvroDecoder::new();
    let mut state = BTreeMap::new();
    let mut folded = 0;
    // Fold the records as they come until the topic's state equals the table.
    let recs = read_topic(&topic, WAIT, |recs| {
        fold_into(&recs[folded..], &mut dec, &mut state);
        folded = recs.len();
        state == expected
    });
    let seen = recs.len();
    let missing = expected.keys().filter(|k| !state.contains_key(k)).count();
    let extra = state.keys().filter(|k| !expected.contains_key(k)).count();
    let differ = expected
        .iter()
        .filter(|(k, v)| state.get(k).is_some_and(|s| s != *v))
        .count();
    println!(
        "{delivery}: table rows={} topic records={seen} missing={missing} extra={extra} differ={differ}",
        expected.len()
    );
    assert_eq!(
        (missing, extra, differ),
        (0, 0, 0),
        "final state in Kafka differs from the table; agent log:\n{}",
        agent.log()
    );
}

#[tokio::test]
async fn a_snapshot_under_concurrent_writes_ends_equal_to_the_table_exactly_once() {
    snapshot_under_concurrent_writes("exactly-once").await;
}

#[tokio::test]
async fn a_snapshot_under_concurrent_writes_ends_equal_to_the_table_at_least_once() {
    snapshot_under_concurrent_writes("at-least-once").await;
}

#[tokio::test]
async fn a_restart_resumes_where_the_checkpoint_says_without_a_new_snapshot() {
    let db = FreshMyDb::create("myrestart").await;
    let mut admin = my_admin().await;
    let t = db.table("t");
    admin
        .query_drop(format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, v BIGINT NOT NULL); INSERT INTO {t} VALUES (1, 0)"
        ))
        .await
        .unwrap();
    let cfg = agent_config(&db, "exactly-once");
    let topic = format!("{}.{}.t", cfg.topic_prefix, db.name);
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .query_drop(format!("INSERT INTO {t} VALUES (2, 0)"))
        .await
        .unwrap();
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 2);
    assert_eq!(recs.len(), 2, "agent log:\n{}", agent.log());
    agent.terminate();
    let mut agent = agent;
    assert_eq!(agent.wait_exit(WAIT), Some(0), "log:\n{}", agent.log());
    admin
        .query_drop(format!("INSERT INTO {t} VALUES (3, 0)"))
        .await
        .unwrap();
    let agent = agent.restart();
    // A sentinel written after the restart: once it is in, everything before it is, and any
    // replay would show as a duplicate.
    admin
        .query_drop(format!("INSERT INTO {t} VALUES (4, 0)"))
        .await
        .unwrap();
    let mut dec = AvroDecoder::new();
    let recs = read_topic(&topic, WAIT, |r| {
        r.last()
            .and_then(|x| x.key.as_ref())
            .is_some_and(|k| int(field(&AvroDecoder::new().decode(k), "id")) == 4)
    });
    let seen: Vec<(String, i64)> = recs
        .iter()
        .map(|r| {
            let v = dec.decode(r.value.as_ref().unwrap());
            (op(&v), int(field(unwrap_union(field(&v, "after")), "id")))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("r".into(), 1),
            ("c".into(), 2),
            ("c".into(), 3),
            ("c".into(), 4)
        ],
        "agent log:\n{}",
        agent.log()
    );
}

#[tokio::test]
async fn an_alter_table_mid_stream_changes_the_events_from_the_next_row_on() {
    let db = FreshMyDb::create("myalter").await;
    let mut admin = my_admin().await;
    let t = db.table("t");
    admin
        .query_drop(format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, v INT); INSERT INTO {t} VALUES (1, 1)"
        ))
        .await
        .unwrap();
    let cfg = agent_config(&db, "exactly-once");
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .query_drop(format!(
            "INSERT INTO {t} VALUES (2, 2);
             ALTER TABLE {t} ADD COLUMN note VARCHAR(10) NULL AFTER id;
             INSERT INTO {t} (id, note, v) VALUES (3, 'three', 3);"
        ))
        .await
        .unwrap();
    let topic = format!("{}.{}.t", cfg.topic_prefix, db.name);
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 3);
    assert_eq!(recs.len(), 3, "agent log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let before_alter = dec.decode(recs[1].value.as_ref().unwrap());
    let a = unwrap_union(field(&before_alter, "after"));
    assert_eq!(int(field(a, "v")), 2);
    assert!(
        matches!(a, Avro::Record(f) if !f.iter().any(|(n, _)| n == "note")),
        "{a:?}"
    );
    let after_alter = dec.decode(recs[2].value.as_ref().unwrap());
    let a = unwrap_union(field(&after_alter, "after"));
    assert_eq!(string(field(a, "note")), "three");
    assert_eq!(int(field(a, "v")), 3);
    // The history topic holds the snapshot and the ALTER.
    let history = read_topic(&format!("{}.schema-history", cfg.topic_prefix), WAIT, |r| {
        r.len() >= 2
    });
    assert_eq!(history.len(), 2, "agent log:\n{}", agent.log());
    let ddl: serde_json::Value =
        serde_json::from_slice(history[1].value.as_ref().unwrap()).unwrap();
    assert!(
        ddl["ddl"]
            .as_str()
            .is_some_and(|s| s.contains("ADD COLUMN note")),
        "{ddl}"
    );
}

#[tokio::test]
async fn columns_added_not_null_with_a_constant_default_stay_backward_compatible_and_the_stream_goes_on(
) {
    let db = FreshMyDb::create("mydefs").await;
    let mut admin = my_admin().await;
    let t = db.table("t");
    admin
        .query_drop(format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, name VARCHAR(40));
             INSERT INTO {t} VALUES (1, 'snap');"
        ))
        .await
        .unwrap();
    let cfg = agent_config(&db, "exactly-once");
    let agent = Agent::start(&cfg);
    let topic = format!("{}.{}.t", cfg.topic_prefix, db.name);
    let subject = format!("{topic}-value");
    read_topic(&topic, WAIT, |r| !r.is_empty());
    agent.wait_streaming(WAIT);

    // The stack's registry checks BACKWARD compatibility: a new required field without a
    // default would be refused and stop the source.
    admin
        .query_drop(format!(
            "ALTER TABLE {t} ADD COLUMN status VARCHAR(10) NOT NULL DEFAULT 'open',
                            ADD COLUMN qty INT NOT NULL DEFAULT -1;
             INSERT INTO {t} (id, name) VALUES (2, 'after');"
        ))
        .await
        .unwrap();
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 2);
    assert_eq!(recs.len(), 2, "agent log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let second = dec.decode(recs[1].value.as_ref().unwrap());
    let after = unwrap_union(field(&second, "after"));
    assert_eq!(string(field(after, "status")), "open");
    assert_eq!(int(field(after, "qty")), -1);
    let schema = common::cdc::latest_schema(&subject);
    for default in [
        r#""name":"status","type":"string","default":"open""#,
        r#""name":"qty","type":"int","default":-1"#,
    ] {
        assert!(schema.contains(default), "no `{default}` in {schema}");
    }
    assert!(
        !agent.log().contains("source failed"),
        "log:\n{}",
        agent.log()
    );
}
