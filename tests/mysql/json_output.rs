//! JSON output on MariaDB, read back by Kafka Connect's own JsonConverter, without a
//! schema registry: the envelope, a decimal through the schema's scale, the key.

use crate::common;

use std::time::Duration;

use mysql_async::prelude::Queryable;

use common::agent::{read_topic, Agent, AgentConfig};
use common::cdc::StackCleanup;
use common::connect::connect_read;
use common::mysql::{my_admin, FreshMyDb};
use common::unique_name;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_json_with_schemas_is_read_by_kafka_connects_json_converter_without_a_registry() {
    let db = FreshMyDb::create("myjson").await;
    let t = db.table("t");
    let mut admin = my_admin().await;
    for sql in [
        format!("CREATE TABLE {t} (id INT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20))"),
        format!("INSERT INTO {t} VALUES (1, 12.34, 'snap')"),
    ] {
        admin.query_drop(sql).await.unwrap();
    }
    let name = unique_name("myjson");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.registry_url = String::new();
    cfg.extra_source_toml = "format = \"json\"\n".into();
    let agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    admin
        .query_drop(format!("UPDATE {t} SET amount = 99.90 WHERE id = 1"))
        .await
        .unwrap();
    let topic = format!("{name}.{}.t", db.name);
    let records = tokio::task::block_in_place(|| read_topic(&topic, WAIT, |r| r.len() >= 2));
    assert_eq!(records.len(), 2, "log:\n{}", agent.log());
    let values: Vec<&[u8]> = records.iter().filter_map(|r| r.value.as_deref()).collect();
    let keys: Vec<&[u8]> = records.iter().filter_map(|r| r.key.as_deref()).collect();
    let read = connect_read(&topic, true, "value", &values);
    assert_eq!(read[0]["value"]["op"], "r");
    assert_eq!(read[0]["value"]["after"]["amount"], "12.34");
    assert_eq!(read[1]["value"]["op"], "u");
    assert_eq!(read[1]["value"]["after"]["amount"], "99.90");
    assert_eq!(read[1]["value"]["source"]["db"], db.name.as_str());
    let read_keys = connect_read(&topic, true, "key", &keys);
    assert_eq!(read_keys[1]["value"]["id"], 1);
}
