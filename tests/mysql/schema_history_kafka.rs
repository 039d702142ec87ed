//! The MySQL schema history against the stack's real Kafka: records written in Kafka
//! transactions are loaded back read_committed (an aborted transaction leaves nothing), the
//! topic keeps every record forever, and a missing topic or a damaged record is detected with
//! an error that names the topic and the recovery.

use crate::common;

use std::time::Duration;

use cdc_agent::config::KafkaConfig;
use cdc_agent::source::mysql::catalog::{BinlogPosition, Catalog};
use cdc_agent::source::mysql::ddl;
use cdc_agent::source::mysql::history::{
    history_topic, HistoryError, HistoryRecord, SchemaHistory, HISTORY_TOPIC_CONFIGS,
};
use common::{stack_env, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

const TIMEOUT: Duration = Duration::from_secs(30);

fn kafka() -> KafkaConfig {
    toml::from_str(&format!(
        "bootstrap_servers = \"{}\"",
        stack_env("KAFKA_BOOTSTRAP")
    ))
    .unwrap()
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap()
}

async fn create_topic(topic: &str) {
    let mut t = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for (k, v) in HISTORY_TOPIC_CONFIGS {
        t = t.set(k, v);
    }
    let res = admin()
        .create_topics(&[t], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
        .await
        .unwrap();
    res[0].as_ref().unwrap();
}

fn producer(txid: &str) -> BaseProducer {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .set("transactional.id", txid)
        .create()
        .unwrap();
    p.init_transactions(TIMEOUT).unwrap();
    p
}

/// Sends `(key, value)` pairs in one transaction, committed or aborted.
fn send(p: &BaseProducer, topic: &str, records: &[(Vec<u8>, Vec<u8>)], commit: bool) {
    p.begin_transaction().unwrap();
    for (k, v) in records {
        p.send(BaseRecord::to(topic).key(k).payload(v)).unwrap();
    }
    p.flush(TIMEOUT).unwrap();
    if commit {
        p.commit_transaction(TIMEOUT).unwrap();
    } else {
        p.abort_transaction(TIMEOUT).unwrap();
    }
}

fn pos(p: u64) -> BinlogPosition {
    BinlogPosition {
        file: "mariadb-bin.000001".into(),
        pos: p,
    }
}

/// A snapshot and two DDL records of source `source`.
fn records(source: &str) -> (SchemaHistory, Vec<HistoryRecord>) {
    let mut h = SchemaHistory::empty(source);
    let mut cat = Catalog::default();
    cat.databases.insert("shop".into(), "utf8mb4".into());
    ddl::apply(
        &mut cat,
        Some("shop"),
        "CREATE TABLE t (id INT PRIMARY KEY, a TEXT)",
    )
    .unwrap();
    let mut recs = h.record_snapshot(pos(100), None, &cat);
    for (p, sql) in [
        (200, "ALTER TABLE t ADD b INT"),
        (300, "ALTER TABLE t DROP a"),
    ] {
        let out = ddl::apply(&mut cat, Some("shop"), sql).unwrap();
        recs.push(h.record(
            pos(p),
            None,
            Some(sql.into()),
            Some("shop".into()),
            &cat,
            &out,
            false,
        ));
    }
    (h, recs)
}

fn load(topic: &str, source: &str) -> SchemaHistory {
    let (kafka, topic, source) = (kafka(), topic.to_owned(), source.to_owned());
    SchemaHistory::load(&kafka, &topic, &source).unwrap()
}

#[tokio::test]
async fn committed_history_loads_back_read_committed_and_aborted_records_stay_invisible() {
    let prefix = unique_name("hist");
    let topic = history_topic(&prefix);
    create_topic(&topic).await;
    let (h, recs) = records("shop");
    let p = producer(&unique_name("hist-tx"));
    // Another source's records share the topic under their own key.
    let (oh, orecs) = records("billing");
    send(
        &p,
        &topic,
        &orecs.iter().map(|r| oh.encode(r)).collect::<Vec<_>>(),
        true,
    );
    send(
        &p,
        &topic,
        &recs[..2].iter().map(|r| h.encode(r)).collect::<Vec<_>>(),
        true,
    );
    // A crashed agent's transaction: its record must not count.
    send(&p, &topic, &[h.encode(&recs[2])], false);

    let loaded = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || load(&topic, "shop")
    })
    .await
    .unwrap();
    assert!(loaded.topic_existed());
    assert_eq!(loaded.records(), &recs[..2]);
    assert_eq!(loaded.last_seq(), Some(2));
    loaded.verify(Some(2), &topic).unwrap();
    let e = loaded.verify(Some(3), &topic).unwrap_err();
    assert!(
        matches!(
            e,
            HistoryError::Truncated {
                have: 2,
                expected: 3,
                ..
            }
        ),
        "{e}"
    );
    let at = loaded.catalog_at(&pos(250));
    let cols: Vec<_> = at
        .get("shop", "t")
        .unwrap()
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["id", "a", "b"]);

    // The record committed later is seen by the next load.
    send(&p, &topic, &[h.encode(&recs[2])], true);
    let loaded = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || load(&topic, "shop")
    })
    .await
    .unwrap();
    loaded.verify(Some(3), &topic).unwrap();
    println!(
        "history topic {topic}: {} committed records of `shop` loaded, 1 aborted record invisible",
        loaded.records().len()
    );

    // The topic keeps everything forever.
    let cfgs = admin()
        .describe_configs(&[ResourceSpecifier::Topic(&topic)], &AdminOptions::new())
        .await
        .unwrap();
    let cfg = cfgs[0].as_ref().unwrap();
    let get = |name: &str| cfg.get(name).and_then(|e| e.value.clone());
    assert_eq!(get("cleanup.policy").as_deref(), Some("delete"));
    assert_eq!(get("retention.ms").as_deref(), Some("-1"));
    assert_eq!(get("retention.bytes").as_deref(), Some("-1"));
}

#[tokio::test]
async fn a_deleted_history_topic_is_detected_before_decoding() {
    let prefix = unique_name("hist");
    let topic = history_topic(&prefix);
    create_topic(&topic).await;
    let (h, recs) = records("shop");
    let p = producer(&unique_name("hist-tx"));
    send(
        &p,
        &topic,
        &recs.iter().map(|r| h.encode(r)).collect::<Vec<_>>(),
        true,
    );
    admin()
        .delete_topics(
            &[topic.as_str()],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    // Topic deletion is asynchronous in the broker: wait until the metadata says it is gone.
    let loaded = common::wait_until(TIMEOUT, "the topic to disappear", || {
        let topic = topic.clone();
        async move {
            let h = tokio::task::spawn_blocking(move || load(&topic, "shop"))
                .await
                .unwrap();
            (!h.topic_existed()).then_some(h)
        }
    })
    .await;
    assert!(loaded.records().is_empty());
    // Without a checkpoint there is nothing to lose (a fresh source snapshots anyway) …
    loaded.verify(None, &topic).unwrap();
    // … with one that says 3 records were committed, decoding must not start.
    let e = loaded.verify(Some(3), &topic).unwrap_err();
    assert!(
        matches!(e, HistoryError::Missing { expected: 3, .. }),
        "{e}"
    );
    let msg = e.to_string();
    println!("missing history: {msg}");
    assert!(msg.contains(&topic), "{msg}");
    assert!(
        msg.contains("schema_history_recovery = \"rebuild\""),
        "{msg}"
    );
}

#[tokio::test]
async fn a_damaged_record_is_reported_with_its_offset() {
    let prefix = unique_name("hist");
    let topic = history_topic(&prefix);
    create_topic(&topic).await;
    let (h, recs) = records("shop");
    let p = producer(&unique_name("hist-tx"));
    send(&p, &topic, &[h.encode(&recs[0])], true);
    send(
        &p,
        &topic,
        &[(b"shop".to_vec(), b"{\"seq\": \"garbage".to_vec())],
        true,
    );
    let loaded = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || load(&topic, "shop")
    })
    .await
    .unwrap();
    let e = loaded.verify(Some(1), &topic).unwrap_err();
    println!("damaged history: {e}");
    assert!(
        matches!(&e, HistoryError::Damaged { detail, .. } if detail.contains("partition 0 offset")),
        "{e}"
    );
}
