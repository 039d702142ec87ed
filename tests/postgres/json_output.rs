//! JSON output (`format = "json"`), read back by Kafka Connect's own `JsonConverter`
//! (tests/connect/JsonRead.java, the jars resolved by scripts/stack.d/connect-json.sh), with
//! and without embedded schemas, from a configuration without any schema registry: keys and
//! values decode, decimals come back exact through the schema's scale, the envelope has
//! Debezium's shape, and the event store holds the same JSON.

use crate::common;

use std::time::Duration;

use serde_json::{json, Value};

use common::agent::{read_topic, Agent, Record};
use common::connect::connect_read;
use common::pgcase::PgCase;

const WAIT: Duration = Duration::from_secs(90);

async fn run(schemas: bool) {
    let mut case = PgCase::new(
        if schemas { "jsonsch" } else { "jsonraw" },
        "CREATE TABLE t (id int PRIMARY KEY, amount numeric(10,2), note text, small int2,
                         data bytea, at timestamp);
         INSERT INTO t VALUES (1, 12.34, 'snap', 7, '\\x0102', '2024-05-06 07:08:09.123456');
         CREATE PUBLICATION cdc_pub FOR TABLE t;",
        &format!("format = \"json\"\njson_schemas = {schemas}\n"),
    )
    .await;
    // No registry at all: JSON needs none.
    case.cfg.registry_url = String::new();
    let agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    case.admin
        .batch_execute(
            "INSERT INTO t VALUES (2, -0.5, 'new', NULL, NULL, NULL);
             UPDATE t SET note = 'changed' WHERE id = 1;
             DELETE FROM t WHERE id = 2;",
        )
        .await
        .unwrap();
    let topic = case.topic("t");
    // r, c, u, d and the tombstone.
    let records: Vec<Record> =
        tokio::task::block_in_place(|| read_topic(&topic, WAIT, |r| r.len() >= 5));
    assert_eq!(records.len(), 5, "log:\n{}", agent.log());
    let values: Vec<&[u8]> = records.iter().filter_map(|r| r.value.as_deref()).collect();
    let keys: Vec<&[u8]> = records.iter().filter_map(|r| r.key.as_deref()).collect();
    assert!(
        values.iter().all(|v| v.first() == Some(&b'{')),
        "JSON values"
    );
    let read = connect_read(&topic, schemas, "value", &values);
    let read_keys = connect_read(&topic, schemas, "key", &keys);
    for k in &read_keys {
        assert!(k["value"]["id"].is_i64(), "{k}");
    }
    let ops: Vec<&str> = read
        .iter()
        .map(|r| r["value"]["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["r", "c", "u", "d"]);
    let snap = &read[0]["value"]["after"];
    assert_eq!(snap["id"], 1);
    assert_eq!(snap["note"], "snap");
    assert_eq!(snap["small"], 7);
    assert_eq!(snap["data"], "AQI=");
    assert_eq!(snap["at"], 1_714_979_289_123_456_i64);
    assert_eq!(read[0]["value"]["source"]["table"], "t");
    assert_eq!(read[3]["value"]["before"]["id"], 2);
    assert_eq!(read[3]["value"]["after"], Value::Null);
    if schemas {
        // The schema's scale turns the bytes back into the exact decimal.
        assert_eq!(snap["amount"], "12.34");
        assert_eq!(read[1]["value"]["after"]["amount"], "-0.50");
        assert_eq!(
            read[0]["schema"],
            format!("{}.public.t.Envelope", case.name)
        );
        assert_eq!(
            read[0]["fields"],
            json!([
                "before",
                "after",
                "source",
                "transaction",
                "op",
                "ts_ms",
                "ts_us",
                "ts_ns"
            ])
        );
        assert_eq!(
            read_keys[0]["schema"],
            format!("{}.public.t.Key", case.name)
        );
    } else {
        // Without a schema a decimal stays the base64 of its unscaled bytes, as
        // JsonConverter writes it (0x04D2 = 1234).
        assert_eq!(snap["amount"], "BNI=");
        assert_eq!(read[0]["schema"], Value::Null);
    }
    let store = tokio::task::block_in_place(|| {
        read_topic(&case.cfg.event_store_topic, WAIT, |r| r.len() >= 4)
    });
    assert_eq!(store.len(), 4);
    assert!(store
        .iter()
        .all(|r| r.value.as_deref().and_then(|v| v.first()) == Some(&b'{')));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_with_schemas_is_read_by_kafka_connects_json_converter_without_a_registry() {
    run(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_without_schemas_is_read_by_kafka_connects_json_converter_without_a_registry() {
    run(false).await;
}

/// The agent's own topics follow the source's format: transaction metadata, heartbeats and
/// routed outbox events are Connect JSON too, still without a registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_heartbeat_and_outbox_records_are_json_too() {
    let mut case = PgCase::new(
        "jsonside",
        "CREATE TABLE t (id int PRIMARY KEY);
         CREATE TABLE outbox (id text PRIMARY KEY, aggregatetype text, aggregateid text,
                              payload text);
         CREATE PUBLICATION cdc_pub FOR TABLE t, outbox;",
        "format = \"json\"\nprovide_transaction_metadata = true\n[snapshot]\nmode = \"never\"\n\
         [heartbeat]\ninterval_ms = 500\ntopic = \"{name}.heartbeat\"\n\
         [outbox]\ntable = \"public.outbox\"\nroute_topic = \"{name}.outbox.${routedByValue}\"\n",
    )
    .await;
    case.cfg.extra_source_toml = case.cfg.extra_source_toml.replace("{name}", &case.name);
    case.cfg.registry_url = String::new();
    let agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    case.admin
        .batch_execute(
            "BEGIN; INSERT INTO t VALUES (1), (2);
             INSERT INTO outbox VALUES ('e1', 'Order', '42', '{\"total\": 3}'); COMMIT;",
        )
        .await
        .unwrap();
    let txn_topic = format!("{}.transaction", case.name);
    let txn = tokio::task::block_in_place(|| read_topic(&txn_topic, WAIT, |r| r.len() >= 2));
    let values: Vec<&[u8]> = txn.iter().filter_map(|r| r.value.as_deref()).collect();
    let read = connect_read(&txn_topic, true, "value", &values);
    assert_eq!(read[0]["value"]["status"], "BEGIN", "log:\n{}", agent.log());
    assert_eq!(read[1]["value"]["status"], "END");
    assert_eq!(read[1]["value"]["event_count"], 3);
    assert_eq!(
        read[1]["schema"],
        "io.debezium.connector.common.TransactionMetadataValue"
    );

    let hb_topic = format!("{}.heartbeat", case.name);
    let hb = tokio::task::block_in_place(|| read_topic(&hb_topic, WAIT, |r| !r.is_empty()));
    let keys: Vec<&[u8]> = hb.iter().filter_map(|r| r.key.as_deref()).collect();
    let read = connect_read(&hb_topic, true, "key", &keys);
    assert_eq!(read[0]["value"]["serverName"], case.name.as_str());

    let ob_topic = format!("{}.outbox.Order", case.name);
    let ob = tokio::task::block_in_place(|| read_topic(&ob_topic, WAIT, |r| !r.is_empty()));
    let keys: Vec<&[u8]> = ob.iter().filter_map(|r| r.key.as_deref()).collect();
    let values: Vec<&[u8]> = ob.iter().filter_map(|r| r.value.as_deref()).collect();
    assert_eq!(
        connect_read(&ob_topic, true, "key", &keys)[0]["value"],
        "42"
    );
    assert_eq!(
        connect_read(&ob_topic, true, "value", &values)[0]["value"],
        "{\"total\": 3}"
    );
}
