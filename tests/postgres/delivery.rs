//! Delivery edges of the PostgreSQL source: a graceful stop leaves nothing to replay, and a
//! record larger than Kafka allows stops the source loudly instead of vanishing.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::agent::{read_topic, Agent, AgentConfig, AvroDecoder};
use common::eos::int;
use common::{pg_connect, unique_name, FreshPgDb};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn sigterm_drains_acknowledges_and_exits_zero_so_the_restart_duplicates_nothing() {
    let db = FreshPgDb::create("pgterm").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("pgterm");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    // At-least-once: only the acknowledged position keeps a restart from replaying.
    cfg.extra_source_toml =
        "delivery = \"at-least-once\"\n[postgres]\npublication = \"cdc_pub\"\n".into();
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .execute("INSERT INTO t SELECT generate_series(1, 500)", &[])
        .await
        .unwrap();
    let topic = format!("{name}.public.t");
    read_topic(&topic, WAIT, |r| r.len() >= 500);

    agent.terminate();
    assert_eq!(agent.wait_exit(WAIT), Some(0), "log:\n{}", agent.log());
    let agent = agent.restart();
    agent.wait_streaming(WAIT);
    admin
        .execute("INSERT INTO t SELECT generate_series(501, 600)", &[])
        .await
        .unwrap();
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 600);
    // Give a replay, if there were one, time to show up behind the new rows.
    let recs = {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let n = recs.len();
        read_topic(&topic, Duration::from_secs(10), |r| r.len() > n)
    };
    let mut dec = AvroDecoder::new();
    let mut count: HashMap<i64, usize> = HashMap::new();
    for r in &recs {
        let v = dec.decode(r.value.as_ref().unwrap());
        let after = common::agent::unwrap_union(common::agent::field(&v, "after"));
        *count
            .entry(int(common::agent::field(after, "id")))
            .or_default() += 1;
    }
    let dup: usize = count.values().map(|n| n - 1).sum();
    assert_eq!((count.len(), dup), (600, 0), "log:\n{}", agent.log());
}

#[tokio::test]
async fn a_row_larger_than_kafka_allows_stops_the_source_with_the_fix() {
    let db = FreshPgDb::create("pgbig").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, blob text);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("pgbig");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .execute("INSERT INTO t VALUES (1, repeat('x', 3000000))", &[])
        .await
        .unwrap();
    assert_eq!(agent.wait_exit(WAIT), Some(1), "log:\n{}", agent.log());
    let log = agent.log();
    assert!(log.contains("too large"), "{log}");
    assert!(
        log.contains("message.max.bytes"),
        "names the setting: {log}"
    );
}
