//! Heartbeats (`[heartbeat]`, Debezium's `heartbeat.interval.ms` and
//! `heartbeat.action.query`): while the captured tables are idle, heartbeat records keep
//! coming, each with a later time, and the action query runs on the source database at each.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;

use common::agent::{field, read_topic, Agent, AvroDecoder};
use common::pgcase::PgCase;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_come_while_the_captured_tables_are_idle_and_run_the_action_query() {
    let mut case = PgCase::new(
        "heartbeat",
        "CREATE TABLE t (id int PRIMARY KEY);
         CREATE TABLE hb (id int PRIMARY KEY, beats int NOT NULL);
         INSERT INTO hb VALUES (1, 0);
         GRANT UPDATE ON hb TO cdc_agent;
         CREATE PUBLICATION cdc_pub FOR TABLE t;",
        "[snapshot]\nmode = \"never\"\n[heartbeat]\ninterval_ms = 500\n\
         topic = \"{name}.heartbeat\"\naction_query = \"UPDATE hb SET beats = beats + 1\"\n",
    )
    .await;
    // The source name is made by the case: put it into the topic now.
    case.cfg.extra_source_toml = case.cfg.extra_source_toml.replace("{name}", &case.name);
    let agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    let topic = format!("{}.heartbeat", case.name);
    let beats = tokio::task::block_in_place(|| read_topic(&topic, WAIT, |r| r.len() >= 4));
    assert!(beats.len() >= 4, "log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let mut last = 0;
    for r in &beats {
        let key = dec.decode(r.key.as_deref().unwrap());
        assert_eq!(field(&key, "serverName"), &Avro::String(case.name.clone()));
        let Avro::Long(ts) = field(&dec.decode(r.value.as_deref().unwrap()), "ts_ms").clone()
        else {
            panic!("ts_ms")
        };
        assert!(ts > last, "heartbeat times increase");
        last = ts;
    }
    let ran: i32 = case
        .admin
        .query_one("SELECT beats FROM hb", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        ran >= 3,
        "the action query ran {ran} times; log:\n{}",
        agent.log()
    );
}
