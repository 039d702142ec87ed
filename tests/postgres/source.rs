//! The PostgreSQL source end to end on the real stack: database → cdc-agent → Kafka, read
//! back and decoded through the registry with a standard Avro reader.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder};
use common::{pg_connect, pg_server_version_num, unique_name, FreshPgDb, PG_LOGICAL_MESSAGES};

use crate::bad_input::assert_exits_with;

const WAIT: Duration = Duration::from_secs(90);

fn op(v: &Avro) -> String {
    match field(v, "op") {
        Avro::String(s) => s.clone(),
        other => panic!("op: {other:?}"),
    }
}

fn after_field(v: &Avro, name: &str) -> Avro {
    unwrap_union(field(unwrap_union(field(v, "after")), name)).clone()
}

#[tokio::test]
async fn inserts_updates_deletes_and_truncates_arrive_as_debezium_events() {
    let db = FreshPgDb::create("pgsrc").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, qty int);
             INSERT INTO items VALUES (1, 'existing', 1);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name("pgsrc");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let agent = Agent::start(&cfg);
    let topic = format!("{name}.public.items");

    // The snapshot row arrives first; then live changes.
    let recs = read_topic(&topic, WAIT, |r| !r.is_empty());
    assert_eq!(recs.len(), 1, "snapshot row; agent log:\n{}", agent.log());
    admin
        .batch_execute(
            "INSERT INTO items VALUES (2, 'two', 2);
             UPDATE items SET qty = 3 WHERE id = 2;
             UPDATE items SET id = 20 WHERE id = 2;
             DELETE FROM items WHERE id = 20;
             TRUNCATE items;",
        )
        .await
        .unwrap();
    // r, c, u, d(2)+tombstone, c(20), d(20)+tombstone, t
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 9);
    assert_eq!(recs.len(), 9, "agent log:\n{}", agent.log());
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
        ["r", "c", "u", "d", "tombstone", "c", "d", "tombstone", "t"]
    );

    let first = dec.decode(recs[0].value.as_ref().unwrap());
    assert_eq!(after_field(&first, "name"), Avro::String("existing".into()));
    let update = dec.decode(recs[2].value.as_ref().unwrap());
    assert_eq!(after_field(&update, "qty"), Avro::Int(3));
    let source = unwrap_union(field(&update, "source"));
    assert_eq!(field(source, "table"), &Avro::String("items".into()));
    assert_eq!(
        field(source, "connector"),
        &Avro::String("postgresql".into())
    );
    let key = dec.decode(recs[5].key.as_ref().unwrap());
    assert_eq!(field(&key, "id"), &Avro::Int(20));

    // The ledger holds every event but no tombstone, with headers.
    let ledger = read_topic(&cfg.event_store_topic, WAIT, |r| r.len() >= 7);
    assert_eq!(ledger.len(), 7, "agent log:\n{}", agent.log());
    assert!(ledger.iter().all(|r| r.value.is_some()));
    assert_eq!(
        ledger[1].headers.get("cdc.op").map(String::as_str),
        Some("c")
    );
    assert_eq!(
        ledger[1].headers.get("cdc.table").map(String::as_str),
        Some("public.items")
    );
    assert_eq!(
        String::from_utf8_lossy(ledger[1].key.as_ref().unwrap()),
        format!("{name}/public.items/{{\"id\":2}}")
    );
}

#[tokio::test]
async fn a_wrong_password_stops_the_agent_with_one_clear_error() {
    let db = FreshPgDb::create("pgpw").await;
    let name = unique_name("pgpw");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.password = "wrong".into();
    let mut agent = Agent::start(&cfg);
    let code = agent.wait_exit(WAIT);
    assert_eq!(code, Some(1), "log:\n{}", agent.log());
    let log = agent.log();
    assert!(log.contains("password authentication failed"), "{log}");
}

#[tokio::test]
async fn a_table_without_key_or_replica_identity_names_the_fix() {
    let db = FreshPgDb::create("pgnokey").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE loose (a int, b text);
             CREATE PUBLICATION cdc_pub FOR TABLE loose;",
        )
        .await
        .unwrap();
    let name = unique_name("pgnokey");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    let mut agent = Agent::start(&cfg);
    assert_eq!(agent.wait_exit(WAIT), Some(1), "log:\n{}", agent.log());
    let log = agent.log();
    assert!(log.contains("REPLICA IDENTITY FULL"), "{log}");
    assert!(log.contains("public.loose"), "{log}");
}

#[tokio::test]
async fn deletes_can_go_without_tombstones() {
    let db = FreshPgDb::create("pgtomb").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name("pgtomb");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        "tombstones_on_delete = false\n[postgres]\npublication = \"cdc_pub\"\n".into();
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .batch_execute("INSERT INTO items VALUES (1, 'a'); DELETE FROM items WHERE id = 1; INSERT INTO items VALUES (2, 'b');")
        .await
        .unwrap();
    let recs = read_topic(&format!("{name}.public.items"), WAIT, |r| r.len() >= 3);
    let mut dec = AvroDecoder::new();
    let ops: Vec<String> = recs
        .iter()
        .map(|r| {
            r.value
                .as_ref()
                .map_or("tombstone".into(), |v| op(&dec.decode(v)))
        })
        .collect();
    assert_eq!(ops, ["c", "d", "c"], "log:\n{}", agent.log());
}

#[tokio::test]
async fn a_missing_topic_stops_the_source_when_topics_must_exist() {
    let db = FreshPgDb::create("pgnotopic").await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name("pgnotopic");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    cfg.extra_kafka_toml = "create_topics = false\n".into();
    let mut agent = Agent::start(&cfg);
    assert_eq!(agent.wait_exit(WAIT), Some(1), "log:\n{}", agent.log());
    let log = agent.log();
    assert!(
        log.contains("does not exist and [kafka] create_topics = false"),
        "{log}"
    );
}

#[tokio::test]
async fn logical_decoding_messages_are_routed_to_their_topic() {
    let db = FreshPgDb::create("pgmsg").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name("pgmsg");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\npublication = \"cdc_pub\"\nmessages_topic = \"{name}.messages\"\n");
    let mut agent = Agent::start(&cfg);
    if pg_server_version_num(&admin).await < PG_LOGICAL_MESSAGES {
        // pgoutput carries logical decoding messages since 14: before it the setting is
        // refused, naming the version, rather than a topic that would stay empty.
        assert_exits_with(
            &mut agent,
            cdc_agent::ops::exit::FAILURE,
            &[
                &format!("postgres.messages_topic = \"{name}.messages\" needs PostgreSQL 14"),
                "remove messages_topic",
            ],
        );
        return;
    }
    agent.wait_streaming(WAIT);
    admin
        .batch_execute(
            "BEGIN; INSERT INTO items VALUES (1);
             SELECT pg_logical_emit_message(true, 'audit', 'inserted 1'); COMMIT;
             SELECT pg_logical_emit_message(false, 'ping', 'now');",
        )
        .await
        .unwrap();
    let recs = read_topic(&format!("{name}.messages"), WAIT, |r| r.len() >= 2);
    assert_eq!(recs.len(), 2, "log:\n{}", agent.log());
    assert_eq!(recs[0].key.as_deref(), Some(&b"audit"[..]));
    assert_eq!(recs[0].value.as_deref(), Some(&b"inserted 1"[..]));
    assert_eq!(
        recs[0].headers.get("cdc.transactional").map(String::as_str),
        Some("true")
    );
    assert_eq!(recs[1].key.as_deref(), Some(&b"ping"[..]));
    assert_eq!(
        recs[1].headers.get("cdc.transactional").map(String::as_str),
        Some("false")
    );
}

#[tokio::test]
async fn a_table_can_be_routed_to_a_topic_of_its_own() {
    let db = FreshPgDb::create("pgroute").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name("pgroute");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = format!(
        "topic_routes = {{ \"public.items\" = \"{name}-items\" }}\n[postgres]\npublication = \"cdc_pub\"\n"
    );
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .execute("INSERT INTO items VALUES (1)", &[])
        .await
        .unwrap();
    let recs = read_topic(&format!("{name}-items"), WAIT, |r| !r.is_empty());
    assert_eq!(recs.len(), 1, "log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    assert_eq!(op(&dec.decode(recs[0].value.as_ref().unwrap())), "c");
}
