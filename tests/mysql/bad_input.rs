//! Bad MariaDB setups are answered with one clear error naming the setting and its fix. The
//! server-wide ones run on a private scratch server (tests/common/scratch.rs), never on the
//! shared stack server.

use crate::common;

use std::time::Duration;

use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder};
use common::mysql::{is_mysql, my_admin, FreshMyDb};
use common::scratch::{ScratchMariadb, ADMIN, ADMIN_PASSWORD};
use common::{stack_env, unique_name};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

const WAIT: Duration = Duration::from_secs(120);

fn scratch_config(server: &ScratchMariadb, db: &str) -> AgentConfig {
    let name = unique_name("mybad");
    let mut cfg = AgentConfig::mysql(&name, db, ADMIN, ADMIN_PASSWORD);
    cfg.port = server.port.to_string();
    cfg
}

/// Starts the agent, expects exit code 1, returns its log.
fn failing_agent(cfg: &AgentConfig) -> String {
    let mut agent = Agent::start(cfg);
    let code = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(
        code,
        Some(1),
        "the agent should stop with exit code 1; log:\n{log}"
    );
    log
}

fn error_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("ERROR") || l.starts_with("error"))
        .collect()
}

#[test]
fn binlog_format_statement_stops_the_agent_naming_the_setting_and_the_fix() {
    let server = ScratchMariadb::start("");
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)");
    // Set globally on the scratch server only: the check reads the global value.
    server.sql("SET GLOBAL binlog_format = 'STATEMENT'");
    let log = failing_agent(&scratch_config(&server, "app"));
    assert!(
        log.contains("binlog_format is STATEMENT, the agent needs ROW")
            && log.contains("SET GLOBAL binlog_format = 'ROW'"),
        "{log}"
    );
    assert!(!error_lines(&log).is_empty(), "{log}");
}

#[test]
fn binlog_row_image_minimal_stops_the_agent_naming_the_setting_and_the_fix() {
    let server = ScratchMariadb::start("binlog_row_image = MINIMAL");
    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)");
    let log = failing_agent(&scratch_config(&server, "app"));
    assert!(
        log.contains("binlog_row_image is MINIMAL, the agent needs FULL")
            && log.contains("SET GLOBAL binlog_row_image = 'FULL'"),
        "{log}"
    );
}

#[tokio::test]
async fn a_user_without_replication_privileges_is_told_which_grant_is_missing() {
    // Only SELECT on its database: no REPLICATION SLAVE, no BINLOG MONITOR (on MySQL: no
    // REPLICATION CLIENT, which reads the binlog state there).
    let db = FreshMyDb::create_with_grants("mynopriv", "").await;
    let state_privilege = if is_mysql(&mut my_admin().await).await {
        "privilege REPLICATION CLIENT"
    } else {
        "privilege BINLOG MONITOR"
    };
    let name = unique_name("mynopriv");
    let cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    let log = tokio::task::spawn_blocking(move || failing_agent(&cfg))
        .await
        .unwrap();
    assert!(
        log.contains("privilege REPLICATION SLAVE is not granted")
            && log.contains(&format!(
                "GRANT REPLICATION SLAVE ON *.* TO '{}'@'%';",
                db.name
            ))
            && log.contains(state_privilege),
        "{log}"
    );
}

fn delete_checkpoint(prefix: &str, source: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    producer
        .send(BaseRecord::<str, [u8]>::to(&format!("{prefix}.offsets")).key(source))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn a_purged_resume_position_stops_with_the_way_out_and_the_way_out_works() {
    let server = ScratchMariadb::start("");
    server.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v INT);
         INSERT INTO app.t VALUES (1, 0)",
    );
    let cfg = scratch_config(&server, "app");
    let topic = format!("{}.app.t", cfg.topic_prefix);
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    server.sql("INSERT INTO app.t VALUES (2, 0)");
    assert_eq!(
        read_topic(&topic, WAIT, |r| r.len() >= 2).len(),
        2,
        "{}",
        agent.log()
    );
    agent.terminate();
    assert_eq!(agent.wait_exit(WAIT), Some(0), "{}", agent.log());

    // While the agent is down: changes, then their binlogs are purged.
    server.sql("INSERT INTO app.t VALUES (3, 0); FLUSH BINARY LOGS; INSERT INTO app.t VALUES (4, 0); FLUSH BINARY LOGS");
    let newest = server
        .sql("SHOW MASTER STATUS")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    server.sql(&format!("PURGE BINARY LOGS TO '{newest}'"));

    let mut agent = agent.restart();
    let code = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("is no longer on the server") && log.contains("take a new snapshot"),
        "{log}"
    );

    // The documented way out: delete the checkpoint; the agent snapshots again.
    delete_checkpoint(&cfg.topic_prefix, &cfg.source_name);
    let agent = agent.restart();
    let mut dec = AvroDecoder::new();
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 6);
    let reads: Vec<i64> = recs[2..]
        .iter()
        .filter_map(|r| r.value.as_ref())
        .map(|v| dec.decode(v))
        .filter(|v| matches!(field(v, "op"), apache_avro::types::Value::String(s) if s == "r"))
        .map(
            |v| match unwrap_union(field(unwrap_union(field(&v, "after")), "id")) {
                apache_avro::types::Value::Int(i) => i64::from(*i),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(
        reads,
        [1, 2, 3, 4],
        "a new snapshot of every row; log:\n{}",
        agent.log()
    );
}

#[test]
fn with_on_missing_position_snapshot_a_purged_resume_position_is_snapshotted_again_and_logged() {
    let server = ScratchMariadb::start("");
    server.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v INT);
         INSERT INTO app.t VALUES (1, 0)",
    );
    let mut cfg = scratch_config(&server, "app");
    // A top-level key: before any table the configuration may already carry.
    cfg.extra_source_toml = format!(
        "on_missing_position = \"snapshot\"\n{}",
        cfg.extra_source_toml
    );
    let topic = format!("{}.app.t", cfg.topic_prefix);
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    server.sql("INSERT INTO app.t VALUES (2, 0)");
    assert_eq!(
        read_topic(&topic, WAIT, |r| r.len() >= 2).len(),
        2,
        "{}",
        agent.log()
    );
    agent.terminate();
    assert_eq!(agent.wait_exit(WAIT), Some(0), "{}", agent.log());

    server.sql("INSERT INTO app.t VALUES (3, 0); FLUSH BINARY LOGS; INSERT INTO app.t VALUES (4, 0); FLUSH BINARY LOGS");
    let newest = server
        .sql("SHOW MASTER STATUS")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    server.sql(&format!("PURGE BINARY LOGS TO '{newest}'"));

    // No stop, no manual tombstone: the decision is in the configuration and in the log.
    let agent = agent.restart();
    let mut dec = AvroDecoder::new();
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 6);
    let reads: Vec<i64> = recs[2..]
        .iter()
        .filter_map(|r| r.value.as_ref())
        .map(|v| dec.decode(v))
        .filter(|v| matches!(field(v, "op"), apache_avro::types::Value::String(s) if s == "r"))
        .map(
            |v| match unwrap_union(field(unwrap_union(field(&v, "after")), "id")) {
                apache_avro::types::Value::Int(i) => i64::from(*i),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    let log = agent.log();
    assert_eq!(
        reads,
        [1, 2, 3, 4],
        "a new snapshot of every row; log:\n{log}"
    );
    assert!(
        log.contains("on_missing_position = \"snapshot\" (operator decision): accepting a gap"),
        "{log}"
    );
}
