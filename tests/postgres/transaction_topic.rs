//! The transaction metadata topic (`provide_transaction_metadata`, Debezium's
//! `<prefix>.transaction`): one BEGIN and one END per source transaction, the END's counts
//! equal to the events the table topics hold for that transaction, in all and per table;
//! also for a transaction that spans many Kafka transactions and is interrupted by kill -9.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::types::Value as Avro;

use common::agent::{field, read_topic, unwrap_union, Agent, AvroDecoder, Record};
use common::pgcase::PgCase;

const WAIT: Duration = Duration::from_secs(180);
const BIG: usize = 200_000;

fn string(v: &Avro) -> String {
    match unwrap_union(v) {
        Avro::String(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn long(v: &Avro) -> i64 {
    match unwrap_union(v) {
        Avro::Long(n) => *n,
        other => panic!("not a long: {other:?}"),
    }
}

/// Events per transaction id and table, from table-topic records.
fn events_by_transaction(
    dec: &mut AvroDecoder,
    table: &str,
    records: &[Record],
    into: &mut BTreeMap<String, BTreeMap<String, i64>>,
) {
    for r in records {
        let Some(v) = r.value.as_deref() else {
            continue;
        };
        let ev = dec.decode(v);
        let id = string(field(unwrap_union(field(&ev, "transaction")), "id"));
        *into
            .entry(id)
            .or_default()
            .entry(table.to_string())
            .or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transaction_has_one_begin_and_one_end_whose_counts_match_its_events_even_across_a_kill(
) {
    let mut case = PgCase::new(
        "txtopic",
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE b (id int PRIMARY KEY, v text);
         CREATE PUBLICATION cdc_pub FOR TABLE a, b;",
        "provide_transaction_metadata = true\n[snapshot]\nmode = \"never\"\n",
    )
    .await;
    // Many Kafka transactions per big source transaction, so a kill lands inside one.
    case.cfg.extra_kafka_toml = "transaction_max_records = 1000\n".into();
    let agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    case.admin
        .batch_execute(
            "BEGIN;
             INSERT INTO a VALUES (1, 'x'), (2, 'x'), (3, 'x');
             INSERT INTO b VALUES (1, 'y'), (2, 'y');
             COMMIT;
             UPDATE a SET v = 'z' WHERE id = 1;",
        )
        .await
        .unwrap();
    case.admin
        .batch_execute(&format!(
            "INSERT INTO a SELECT g, 'big' FROM generate_series(100, {}) g",
            99 + BIG
        ))
        .await
        .unwrap();
    let topic_a = case.topic("a");
    // Kill -9 once part of the big transaction is committed in Kafka.
    let partial =
        tokio::task::block_in_place(|| read_topic(&topic_a, WAIT, |r| r.len() >= 4 + 2_000));
    assert!(
        partial.len() < 4 + BIG,
        "the kill came too late to land inside the transaction"
    );
    let agent = agent.restart();
    let all_a = tokio::task::block_in_place(|| read_topic(&topic_a, WAIT, |r| r.len() >= 4 + BIG));
    let all_b =
        tokio::task::block_in_place(|| read_topic(&case.topic("b"), WAIT, |r| r.len() >= 2));
    assert_eq!(all_a.len(), 4 + BIG, "log:\n{}", agent.log());
    assert!(
        agent
            .log()
            .contains("resuming inside a partly committed source transaction"),
        "the restart did not land inside the big transaction; log:\n{}",
        agent.log()
    );

    let mut dec = AvroDecoder::new();
    let mut expected = BTreeMap::new();
    events_by_transaction(&mut dec, "public.a", &all_a, &mut expected);
    events_by_transaction(&mut dec, "public.b", &all_b, &mut expected);
    assert_eq!(expected.len(), 3, "three source transactions");

    let txn_topic = format!("{}.transaction", case.name);
    let meta = tokio::task::block_in_place(|| {
        read_topic(&txn_topic, WAIT, |r| r.len() >= 2 * expected.len())
    });
    let mut begins: BTreeMap<String, usize> = BTreeMap::new();
    let mut ends: BTreeMap<String, (i64, BTreeMap<String, i64>)> = BTreeMap::new();
    for r in &meta {
        let key = dec.decode(r.key.as_deref().unwrap());
        let v = dec.decode(r.value.as_deref().unwrap());
        let id = string(field(&v, "id"));
        assert_eq!(string(field(&key, "id")), id);
        match string(field(&v, "status")).as_str() {
            "BEGIN" => *begins.entry(id).or_default() += 1,
            "END" => {
                let total = long(field(&v, "event_count"));
                let Avro::Array(items) = unwrap_union(field(&v, "data_collections")) else {
                    panic!("data_collections: {v:?}")
                };
                let per: BTreeMap<String, i64> = items
                    .iter()
                    .map(|c| {
                        (
                            string(field(c, "data_collection")),
                            long(field(c, "event_count")),
                        )
                    })
                    .collect();
                assert!(
                    ends.insert(id.clone(), (total, per)).is_none(),
                    "a second END of {id}"
                );
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(meta.len(), 2 * expected.len(), "log:\n{}", agent.log());
    for (id, per) in &expected {
        assert_eq!(begins.get(id), Some(&1), "one BEGIN of {id}");
        let (total, counted) = ends.get(id).unwrap_or_else(|| panic!("no END of {id}"));
        assert_eq!(
            counted,
            per,
            "per-table counts of {id}; log:\n{}",
            agent.log()
        );
        assert_eq!(*total, per.values().sum::<i64>(), "event_count of {id}");
    }
    assert!(
        expected
            .values()
            .any(|per| per.get("public.a") == Some(&(BIG as i64))),
        "the big transaction is counted whole"
    );
}
