//! The outbox event router (`[outbox]`, Debezium's EventRouter): an insert into the outbox
//! table becomes an event on the topic its aggregate type names, keyed by the aggregate id,
//! its payload as the value and its id as a header; the usual insert-then-delete in one
//! transaction publishes the insert only; the outbox table has no topic of its own.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;

use common::agent::{read_topic, Agent, AvroDecoder};
use common::pgcase::PgCase;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_inserts_are_routed_by_aggregate_type_and_keyed_by_aggregate_id() {
    let mut case = PgCase::new(
        "outbox",
        "CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL,
                              aggregateid text NOT NULL, type text NOT NULL, payload jsonb);
         CREATE TABLE orders (id int PRIMARY KEY, total int);
         CREATE PUBLICATION cdc_pub FOR TABLE outbox, orders;",
        "[snapshot]\nmode = \"never\"\n[outbox]\ntable = \"public.outbox\"\n\
         route_topic = \"{name}.outbox.${routedByValue}\"\n",
    )
    .await;
    case.cfg.extra_source_toml = case.cfg.extra_source_toml.replace("{name}", &case.name);
    let agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    case.admin
        .batch_execute(
            "BEGIN;
             INSERT INTO orders VALUES (42, 10);
             INSERT INTO outbox VALUES ('6f1c0f5e-6a53-4a2e-9d55-0a4b1c0e0001', 'Order', '42',
                                        'OrderCreated', '{\"id\": 42, \"total\": 10}');
             DELETE FROM outbox WHERE id = '6f1c0f5e-6a53-4a2e-9d55-0a4b1c0e0001';
             COMMIT;
             INSERT INTO outbox VALUES ('6f1c0f5e-6a53-4a2e-9d55-0a4b1c0e0002', 'Customer', '7',
                                        'CustomerMoved', '{\"id\": 7}');",
        )
        .await
        .unwrap();
    let orders = tokio::task::block_in_place(|| {
        read_topic(&format!("{}.outbox.Order", case.name), WAIT, |r| {
            !r.is_empty()
        })
    });
    let customers = tokio::task::block_in_place(|| {
        read_topic(&format!("{}.outbox.Customer", case.name), WAIT, |r| {
            !r.is_empty()
        })
    });
    assert_eq!(orders.len(), 1, "log:\n{}", agent.log());
    assert_eq!(customers.len(), 1, "log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let r = &orders[0];
    assert_eq!(
        dec.decode(r.key.as_deref().unwrap()),
        Avro::String("42".into())
    );
    let Avro::String(payload) = dec.decode(r.value.as_deref().unwrap()) else {
        panic!("payload")
    };
    let json: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(json, serde_json::json!({"id": 42, "total": 10}));
    assert_eq!(
        r.headers.get("id").map(String::as_str),
        Some("6f1c0f5e-6a53-4a2e-9d55-0a4b1c0e0001")
    );
    assert_eq!(
        dec.decode(customers[0].key.as_deref().unwrap()),
        Avro::String("7".into())
    );
    // The order's own change is published as usual, the outbox table gets no topic.
    let table =
        tokio::task::block_in_place(|| read_topic(&case.topic("orders"), WAIT, |r| !r.is_empty()));
    assert_eq!(table.len(), 1);
    let topics: Vec<String> = common::kafka::every_record_under(&case.name)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert!(!topics.contains(&case.topic("outbox")), "{topics:?}");
}

/// `delete_after_capture`: the agent deletes each outbox row once its event is in Kafka; the
/// deletes it causes are not routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rows_are_deleted_once_their_events_are_in_kafka() {
    let mut case = PgCase::new(
        "outboxdel",
        "CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL,
                              aggregateid text NOT NULL, payload text);
         GRANT DELETE ON outbox TO cdc_agent;
         CREATE PUBLICATION cdc_pub FOR TABLE outbox;",
        "[snapshot]\nmode = \"never\"\n[outbox]\ntable = \"public.outbox\"\n\
         route_topic = \"{name}.outbox.${routedByValue}\"\ndelete_after_capture = true\n",
    )
    .await;
    case.cfg.extra_source_toml = case.cfg.extra_source_toml.replace("{name}", &case.name);
    let agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    case.admin
        // md5(…)::uuid, not gen_random_uuid(): that is core only from PostgreSQL 13 on.
        .batch_execute(
            "INSERT INTO outbox SELECT md5(random()::text || g)::uuid, 'Order', g::text, 'p' || g
             FROM generate_series(1, 3) g;
             INSERT INTO outbox VALUES (md5(random()::text)::uuid, 'Order', '4', 'p4');",
        )
        .await
        .unwrap();
    let topic = format!("{}.outbox.Order", case.name);
    let routed = tokio::task::block_in_place(|| read_topic(&topic, WAIT, |r| r.len() >= 4));
    assert_eq!(routed.len(), 4, "log:\n{}", agent.log());
    let admin = &case.admin;
    common::wait_until(WAIT, "the outbox emptied by the agent", || async move {
        let n: i64 = admin
            .query_one("SELECT count(*) FROM outbox", &[])
            .await
            .unwrap()
            .get(0);
        (n == 0).then_some(())
    })
    .await;
    // The deletes came through the stream and were not routed.
    let again =
        tokio::task::block_in_place(|| read_topic(&topic, Duration::from_secs(3), |r| r.len() > 4));
    assert_eq!(again.len(), 4);
}
