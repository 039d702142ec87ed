//! The offsets topic deleted under a MySQL/MariaDB source (issue 13): the binlog position
//! lives only in the checkpoint, so a start that found no checkpoint would begin at a new
//! position and leave a gap. The schema history (written only after the offsets topic exists)
//! proves the source ran before: the start stops naming `on_missing_position`, creates nothing,
//! and `"snapshot"` is the explicit way on.

use crate::common;

use std::time::Duration;

use common::agent::{read_topic, Agent, AgentConfig};
use common::mysql::{my_admin, FreshMyDb};
use common::{stack_env, unique_name, wait_until};
use mysql_async::prelude::Queryable;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

const WAIT: Duration = Duration::from_secs(120);

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap()
}

/// Whether the brokers list `topic`.
fn topic_exists(topic: &str) -> bool {
    let md = admin()
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    md.topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
}

fn config(db: &FreshMyDb, name: &str, policy: Option<&str>) -> AgentConfig {
    let mut cfg = AgentConfig::mysql(name, &db.name, &db.name, &db.password);
    let policy = policy
        .map(|p| format!("on_missing_position = \"{p}\"\n"))
        .unwrap_or_default();
    cfg.extra_source_toml = format!("delivery = \"exactly-once\"\n{policy}");
    cfg
}

#[tokio::test]
async fn a_deleted_offsets_topic_stops_the_next_start_naming_on_missing_position_instead_of_a_new_position(
) {
    let db = FreshMyDb::create("myoffdel").await;
    let mut sql = my_admin().await;
    let t = db.table("t");
    sql.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, v INT); INSERT INTO {t} VALUES (1, 0)"
    ))
    .await
    .unwrap();
    let name = unique_name("myoffdel");
    let topic = format!("{name}.{}.t", db.name);
    let offsets = format!("{name}.offsets");
    let cfg = config(&db, &name, None);
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    assert_eq!(read_topic(&topic, WAIT, |r| !r.is_empty()).len(), 1);
    agent.terminate();
    assert_eq!(agent.wait_exit(WAIT), Some(0), "{}", agent.log());

    admin()
        .delete_topics(&[offsets.as_str()], &AdminOptions::new())
        .await
        .unwrap();
    wait_until(WAIT, "the offsets topic to be gone", || async {
        (!topic_exists(&offsets)).then_some(())
    })
    .await;
    // A change while the agent is down: a new position would skip it.
    sql.query_drop(format!("INSERT INTO {t} VALUES (2, 0)"))
        .await
        .unwrap();

    let mut agent = agent.restart();
    let code = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(code, Some(1), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("source failed") && !l.contains("retrying"))
        .unwrap_or("");
    println!("{line}");
    for needle in [
        format!("source `{name}` has a schema history"),
        format!("its offsets topic `{offsets}` does not exist"),
        "set on_missing_position = \"snapshot\"".to_string(),
    ] {
        assert!(line.contains(&needle), "the stop lacks `{needle}`: {line}");
    }
    assert!(
        !topic_exists(&offsets),
        "the stopped agent created the offsets topic again"
    );

    // The operator's decision: a new snapshot (row 2 arrives as a read), logged.
    let agent = Agent::start(&config(&db, &name, Some("snapshot")));
    agent.wait_streaming(WAIT);
    let log = agent.log();
    assert!(
        log.contains("the offsets topic with the checkpoint was deleted; on_missing_position = \"snapshot\" (operator decision)"),
        "no decision line:\n{log}"
    );
    assert!(
        read_topic(&topic, WAIT, |r| r.len() >= 3).len() >= 3,
        "{log}"
    );
}
