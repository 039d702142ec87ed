//! Resume by GTID on the server under test itself, MySQL's auto-positioning included: the
//! checkpoint is made to name another server (as after a failover to a replica), so the
//! agent cannot trust its binlog file and position and must ask by GTID — on MySQL with
//! `COM_BINLOG_DUMP_GTID` and the checkpoint's executed GTID set, on MariaDB with its connect
//! state. The failover tests (gtid_failover.rs) need scratch MariaDB servers; this one runs
//! on whatever server `MYSQL_URL` names, so scripts/test-matrix-mysql runs it on MySQL too.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::agent::{Agent, AgentConfig};
use common::eos::{check_table_and_ledger, read_committed_from_start};
use common::kafka;
use common::mysql::{is_mysql, my_admin, FreshMyDb};
use common::{stack_env, unique_name};
use mysql_async::prelude::Queryable;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

const WAIT: Duration = Duration::from_secs(120);

/// The newest checkpoint of `source` in `topic` that `done` accepts, read within `timeout`.
fn newest_checkpoint(
    topic: &str,
    source: &str,
    timeout: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let consumer = read_committed_from_start(topic, "gtid-resume");
    let start = Instant::now();
    let mut latest: Option<serde_json::Value> = None;
    while start.elapsed() < timeout {
        if let Some(Ok(m)) = kafka::poll(&consumer, Duration::from_millis(50)) {
            if m.key.as_deref() == Some(source.as_bytes()) {
                latest = m.value.and_then(|p| serde_json::from_slice(&p).ok());
            }
        } else if latest.as_ref().is_some_and(&done) {
            break;
        }
    }
    latest.filter(|cp| done(cp)).unwrap_or_else(|| {
        panic!("no accepted checkpoint of {source} in {topic} within {timeout:?}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_naming_another_server_resumes_by_gtid_and_every_change_arrives_exactly_once()
{
    let db = FreshMyDb::create("mygtidres").await;
    let mut admin = my_admin().await;
    let mysql = is_mysql(&mut admin).await;
    let t = db.table("t");
    admin
        .query_drop(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);
             INSERT INTO {t} VALUES (1, 0), (2, 0);"
        ))
        .await
        .unwrap();
    let mut state: HashMap<i64, i64> = HashMap::from([(1, 0), (2, 0)]);
    let name = unique_name("mygtidres");
    let cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    let topic = format!("{}.{}.t", cfg.topic_prefix, db.name);

    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    for id in 3..=20 {
        admin
            .query_drop(format!("INSERT INTO {t} VALUES ({id}, 0)"))
            .await
            .unwrap();
        state.insert(id, 0);
    }
    admin
        .query_drop(format!("UPDATE {t} SET v = 1 WHERE id <= 5"))
        .await
        .unwrap();
    for id in 1..=5 {
        state.insert(id, 1);
    }
    check_table_and_ledger(
        "before the restart",
        &topic,
        &cfg.event_store_topic,
        &state,
        WAIT,
    );
    agent.terminate();
    assert_eq!(agent.wait_exit(WAIT), Some(0), "{}", agent.log());

    // The checkpoint the clean stop wrote, past every change above and with a GTID state.
    let offsets = format!("{}.offsets", cfg.topic_prefix);
    let mut cp = newest_checkpoint(&offsets, &cfg.source_name, WAIT, |cp| {
        cp["mysql"]["gtid_state"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
            && cp["mysql"]["server"].is_string()
            && cp["mysql"]["partial_rows"].as_u64().unwrap_or(0) == 0
    });
    let server = cp["mysql"]["server"].as_str().unwrap().to_string();
    println!(
        "checkpoint: server={server} gtid_state={}",
        cp["mysql"]["gtid_state"]
    );
    cp["mysql"]["server"] = serde_json::Value::from("another-server");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    let payload = serde_json::to_vec(&cp).unwrap();
    producer
        .send(
            BaseRecord::to(&offsets)
                .key(cfg.source_name.as_str())
                .payload(&payload),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    // Changes while the agent is down, then more once it streams again (every update adds 1
    // to v, as the exactly-once checker counts versions).
    for id in 21..=30 {
        admin
            .query_drop(format!("INSERT INTO {t} VALUES ({id}, 0)"))
            .await
            .unwrap();
        state.insert(id, 0);
    }
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .query_drop(format!("UPDATE {t} SET v = v + 1 WHERE id >= 25"))
        .await
        .unwrap();
    for id in 25..=30 {
        state.insert(id, 1);
    }
    check_table_and_ledger(
        "after resuming by GTID",
        &topic,
        &cfg.event_store_topic,
        &state,
        WAIT,
    );
    let log = agent.log();
    let how = if mysql {
        "resuming on another server by GTID (auto-positioning)"
    } else {
        "resuming on another server by GTID"
    };
    assert!(
        log.contains(how) && log.contains("another-server"),
        "the agent did not resume by GTID; log:\n{log}"
    );
}
