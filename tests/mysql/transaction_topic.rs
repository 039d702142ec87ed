//! The transaction metadata topic on MariaDB: one BEGIN and one END per transaction, the
//! END's counts per table equal to the events of that transaction in the table topics.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::types::Value as Avro;
use mysql_async::prelude::Queryable;

use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder};
use common::cdc::StackCleanup;
use common::mysql::{my_admin, FreshMyDb};
use common::unique_name;

const WAIT: Duration = Duration::from_secs(120);

fn string(v: &Avro) -> String {
    match unwrap_union(v) {
        Avro::String(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_transactions_get_one_begin_and_one_end_with_their_event_counts() {
    let db = FreshMyDb::create("mytxtopic").await;
    let (a, b) = (db.table("a"), db.table("b"));
    let mut admin = my_admin().await;
    for sql in [
        format!("CREATE TABLE {a} (id INT PRIMARY KEY, v INT)"),
        format!("CREATE TABLE {b} (id INT PRIMARY KEY, v INT)"),
    ] {
        admin.query_drop(sql).await.unwrap();
    }
    let name = unique_name("mytxtopic");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.extra_source_toml = "provide_transaction_metadata = true\n".into();
    let agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    for sql in [
        format!(
            "BEGIN; INSERT INTO {a} VALUES (1, 1), (2, 2), (3, 3); INSERT INTO {b} VALUES (1, 1); \
             UPDATE {a} SET v = 9 WHERE id = 1; COMMIT"
        ),
        format!("INSERT INTO {b} VALUES (2, 2)"),
    ] {
        admin.query_drop(sql).await.unwrap();
    }
    let topic = |t: &str| format!("{name}.{}.{t}", db.name);
    let mut dec = AvroDecoder::new();
    let mut expected: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (t, n) in [("a", 4), ("b", 2)] {
        let recs = tokio::task::block_in_place(|| read_topic(&topic(t), WAIT, |r| r.len() >= n));
        assert_eq!(recs.len(), n, "log:\n{}", agent.log());
        for r in recs {
            let ev = dec.decode(r.value.as_deref().unwrap());
            let id = string(field(unwrap_union(field(&ev, "transaction")), "id"));
            *expected
                .entry(id)
                .or_default()
                .entry(format!("{}.{t}", db.name))
                .or_default() += 1;
        }
    }
    assert_eq!(expected.len(), 2);
    let meta = tokio::task::block_in_place(|| {
        read_topic(&format!("{name}.transaction"), WAIT, |r| r.len() >= 4)
    });
    assert_eq!(meta.len(), 4, "log:\n{}", agent.log());
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &meta {
        let v = dec.decode(r.value.as_deref().unwrap());
        let id = string(field(&v, "id"));
        let status = string(field(&v, "status"));
        if status == "END" {
            let Avro::Array(items) = unwrap_union(field(&v, "data_collections")) else {
                panic!("{v:?}")
            };
            let per: BTreeMap<String, i64> = items
                .iter()
                .map(|c| {
                    let n = match field(c, "event_count") {
                        Avro::Long(n) => *n,
                        other => panic!("{other:?}"),
                    };
                    (string(field(c, "data_collection")), n)
                })
                .collect();
            assert_eq!(Some(&per), expected.get(&id), "counts of {id}");
        }
        seen.entry(id).or_default().push(status);
    }
    for id in expected.keys() {
        assert_eq!(
            seen.get(id).map(Vec::as_slice),
            Some(&["BEGIN".to_string(), "END".to_string()][..])
        );
    }
}
