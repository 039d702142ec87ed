//! The MySQL/MariaDB schema history end to end, on a scratch MariaDB that writes
//! `binlog_row_metadata = MINIMAL`: table maps carry column types but no names, so every name
//! in Kafka comes from the history (snapshot + DDL seen in the binlog), never from
//! information_schema at decode time. Read back through the registry with a standard Avro
//! reader.
//!
//! Each test owns its scratch server (binlog_row_metadata is a server-wide setting) and uses
//! the shared stack's Kafka and registry with unique topic names.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder, Record};
use common::scratch::{ScratchMariadb, ADMIN, ADMIN_PASSWORD};
use common::{stack_env, unique_name, wait_until};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

const WAIT: Duration = Duration::from_secs(120);

/// A scratch server configured like the stack's MariaDB, except that row events carry only
/// minimal metadata.
fn minimal_metadata_server() -> ScratchMariadb {
    let s = ScratchMariadb::start(
        "binlog_row_metadata = MINIMAL\ngtid_strict_mode = ON\nlog_slave_updates = ON\n",
    );
    assert_eq!(
        s.sql("SELECT @@global.binlog_row_metadata").trim(),
        "MINIMAL"
    );
    s.sql("CREATE DATABASE shop");
    s
}

fn agent_config(s: &ScratchMariadb, delivery: &str) -> AgentConfig {
    let name = unique_name("myhist");
    let mut cfg = AgentConfig::mysql(&name, "shop", ADMIN, ADMIN_PASSWORD);
    cfg.port = s.port.to_string();
    cfg.extra_source_toml = format!("delivery = \"{delivery}\"\n");
    cfg
}

fn table_topic(cfg: &AgentConfig) -> String {
    format!("{}.shop.t", cfg.topic_prefix)
}

fn history_topic(cfg: &AgentConfig) -> String {
    format!("{}.schema-history", cfg.topic_prefix)
}

fn offsets_topic(cfg: &AgentConfig) -> String {
    format!("{}.offsets", cfg.topic_prefix)
}

/// An Avro value as text: enough to compare column values of any type used here.
fn text(v: &Avro) -> String {
    match unwrap_union(v) {
        Avro::Null => "NULL".into(),
        Avro::Int(i) => i.to_string(),
        Avro::Long(l) => l.to_string(),
        Avro::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// A row image: its columns in order, each with its value as text.
type Image = Vec<(String, String)>;

fn image(v: &Avro) -> Option<Image> {
    match unwrap_union(v) {
        Avro::Null => None,
        Avro::Record(fields) => Some(fields.iter().map(|(n, v)| (n.clone(), text(v))).collect()),
        other => panic!("not a row image: {other:?}"),
    }
}

/// What a change event says, decoded with the writer schema from the registry.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    op: String,
    before: Option<Image>,
    after: Option<Image>,
}

fn cols(pairs: &[(&str, &str)]) -> Option<Image> {
    Some(
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

fn change(op: &str, before: Option<Image>, after: Option<Image>) -> Change {
    Change {
        op: op.into(),
        before,
        after,
    }
}

/// The change events (tombstones left out) of a table topic.
fn changes(recs: &[Record], dec: &mut AvroDecoder) -> Vec<Change> {
    recs.iter()
        .filter_map(|r| r.value.as_ref())
        .map(|v| {
            let v = dec.decode(v);
            Change {
                op: text(field(&v, "op")),
                before: image(field(&v, "before")),
                after: image(field(&v, "after")),
            }
        })
        .collect()
}

/// Reads the table topic until it holds `n` change events; returns them all.
fn read_changes(topic: &str, n: usize, agent: &Agent) -> Vec<Change> {
    let recs = read_topic(topic, WAIT, |r| {
        r.iter().filter(|x| x.value.is_some()).count() >= n
    });
    let got = changes(&recs, &mut AvroDecoder::new());
    assert!(
        got.len() >= n,
        "{} of {n} change events in {topic}: {got:#?}\nagent log:\n{}",
        got.len(),
        agent.log()
    );
    got
}

/// Reads the table topic until the change whose `after.id` is `id` arrived; returns every
/// change up to and including it (a sentinel written last: once it is there, anything a
/// replay would duplicate is there too).
fn read_until_id(topic: &str, id: &str, agent: &Agent) -> Vec<Change> {
    let mut dec = AvroDecoder::new();
    let mut seen = 0;
    let mut found = false;
    let recs = read_topic(topic, WAIT, |r| {
        for c in changes(&r[seen..], &mut dec) {
            found |= c
                .after
                .as_ref()
                .is_some_and(|a| a.iter().any(|(n, v)| n == "id" && v == id));
        }
        seen = r.len();
        found
    });
    assert!(
        found,
        "no change with id {id} in {topic}; agent log:\n{}",
        agent.log()
    );
    changes(&recs, &mut AvroDecoder::new())
}

/// The values of the history topic's records of `source`, as JSON.
fn history_records(cfg: &AgentConfig, at_least: usize) -> Vec<serde_json::Value> {
    let key = cfg.source_name.as_bytes().to_vec();
    read_topic(&history_topic(cfg), WAIT, |r| {
        r.iter().filter(|x| x.key.as_deref() == Some(&key)).count() >= at_least
    })
    .into_iter()
    .filter(|r| r.key.as_deref() == Some(&key))
    .map(|r| serde_json::from_slice(r.value.as_ref().expect("history value")).unwrap())
    .collect()
}

/// The checkpoints of `source` in the offsets topic, newest last, as raw values.
fn checkpoints(cfg: &AgentConfig, done: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    let key = cfg.source_name.as_bytes().to_vec();
    let pick = |r: &[Record]| -> Vec<Vec<u8>> {
        r.iter()
            .filter(|x| x.key.as_deref() == Some(&key))
            .filter_map(|x| x.value.clone())
            .collect()
    };
    pick(&read_topic(&offsets_topic(cfg), WAIT, |r| done(&pick(r))))
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap()
}

/// Writes one record (`None` = a tombstone), as an operator's `kcat -P` would.
fn produce(topic: &str, key: &str, value: Option<&[u8]>) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    let mut rec = BaseRecord::<str, [u8]>::to(topic).key(key);
    if let Some(v) = value {
        rec = rec.payload(v);
    }
    p.send(rec).map_err(|(e, _)| e).unwrap();
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Deletes the topic and waits until the broker's metadata no longer lists it.
async fn delete_topic(topic: &str) {
    let a = admin();
    a.delete_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    wait_until(WAIT, "the topic to disappear", || async {
        let md = a
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()?;
        md.topics()
            .iter()
            .find(|t| t.name() == topic)
            .is_none_or(|t| t.error().is_some())
            .then_some(())
    })
    .await;
}

/// Waits until the agent logged `needle` after `mark` (its log is appended across restarts).
async fn wait_log_after(agent: &Agent, mark: usize, needle: &str) {
    wait_until(WAIT, needle, || async {
        agent
            .log()
            .get(mark..)
            .unwrap_or_default()
            .contains(needle)
            .then_some(())
    })
    .await;
}

/// Appends `[mysql] schema_history_recovery = "rebuild"` to the agent's source file.
fn configure_rebuild(agent: &Agent) {
    let path = agent.dir.path().join("connectors").join("source.toml");
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml.push_str("\n[mysql]\nschema_history_recovery = \"rebuild\"\n");
    std::fs::write(path, toml).unwrap();
}

/// The line of the log that holds `needle`.
fn log_line(log: &str, needle: &str) -> String {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with `{needle}`:\n{log}"))
        .to_string()
}

/// Stops the agent with SIGTERM (it records its position) and checks it exits cleanly.
fn stop(agent: &mut Agent) {
    agent.terminate();
    assert_eq!(agent.wait_exit(WAIT), Some(0), "log:\n{}", agent.log());
}

#[tokio::test]
async fn alter_table_mid_stream_decodes_each_row_with_the_columns_it_was_written_with() {
    let s = minimal_metadata_server();
    s.sql(
        "CREATE TABLE shop.t (id INT PRIMARY KEY, a VARCHAR(20), b INT, c INT);
         INSERT INTO shop.t VALUES (0, 'a0', 10, 100);",
    );
    let cfg = agent_config(&s, "exactly-once");
    let agent = Agent::start(&cfg);
    let topic = table_topic(&cfg);
    read_changes(&topic, 1, &agent);
    agent.wait_streaming(WAIT);
    // One batch: by the time the agent decodes the first row, information_schema already
    // shows the last definition, so only the history can give the right names.
    s.sql(
        "INSERT INTO shop.t VALUES (1, 'a1', 11, 101);
         ALTER TABLE shop.t ADD COLUMN d VARCHAR(10) DEFAULT 'dd';
         INSERT INTO shop.t VALUES (2, 'a2', 12, 102, 'd2');
         ALTER TABLE shop.t DROP COLUMN b;
         INSERT INTO shop.t VALUES (3, 'a3', 103, 'd3');
         ALTER TABLE shop.t MODIFY c BIGINT;
         INSERT INTO shop.t VALUES (4, 'a4', 1099511627776, 'd4');
         ALTER TABLE shop.t RENAME COLUMN a TO aa;
         INSERT INTO shop.t VALUES (5, 'a5', 105, 'd5');
         ALTER TABLE shop.t ADD COLUMN e INT AFTER id, ADD COLUMN f VARCHAR(5) FIRST;
         INSERT INTO shop.t (f, id, e, aa, c, d) VALUES ('f6', 6, 66, 'a6', 106, 'd6');
         ALTER TABLE shop.t CHANGE COLUMN d dd VARCHAR(30) AFTER f;
         UPDATE shop.t SET aa = 'a1x', e = 11 WHERE id = 1;
         DELETE FROM shop.t WHERE id = 3;",
    );
    let got = read_changes(&topic, 9, &agent);
    let expected = vec![
        change(
            "r",
            None,
            cols(&[("id", "0"), ("a", "a0"), ("b", "10"), ("c", "100")]),
        ),
        change(
            "c",
            None,
            cols(&[("id", "1"), ("a", "a1"), ("b", "11"), ("c", "101")]),
        ),
        change(
            "c",
            None,
            cols(&[
                ("id", "2"),
                ("a", "a2"),
                ("b", "12"),
                ("c", "102"),
                ("d", "d2"),
            ]),
        ),
        change(
            "c",
            None,
            cols(&[("id", "3"), ("a", "a3"), ("c", "103"), ("d", "d3")]),
        ),
        change(
            "c",
            None,
            cols(&[
                ("id", "4"),
                ("a", "a4"),
                ("c", "1099511627776"),
                ("d", "d4"),
            ]),
        ),
        change(
            "c",
            None,
            cols(&[("id", "5"), ("aa", "a5"), ("c", "105"), ("d", "d5")]),
        ),
        change(
            "c",
            None,
            cols(&[
                ("f", "f6"),
                ("id", "6"),
                ("e", "66"),
                ("aa", "a6"),
                ("c", "106"),
                ("d", "d6"),
            ]),
        ),
        change(
            "u",
            cols(&[
                ("f", "NULL"),
                ("dd", "dd"),
                ("id", "1"),
                ("e", "NULL"),
                ("aa", "a1"),
                ("c", "101"),
            ]),
            cols(&[
                ("f", "NULL"),
                ("dd", "dd"),
                ("id", "1"),
                ("e", "11"),
                ("aa", "a1x"),
                ("c", "101"),
            ]),
        ),
        change(
            "d",
            cols(&[
                ("f", "NULL"),
                ("dd", "d3"),
                ("id", "3"),
                ("e", "NULL"),
                ("aa", "a3"),
                ("c", "103"),
            ]),
            None,
        ),
    ];
    assert_eq!(got, expected, "agent log:\n{}", agent.log());

    // The history: the snapshot and one record per ALTER, numbered without gaps.
    let hist = history_records(&cfg, 7);
    let seqs: Vec<u64> = hist.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7], "{hist:#?}");
    assert_eq!(hist[0]["snapshot"], true);
    let ddl: Vec<&str> = hist[1..]
        .iter()
        .map(|r| r["ddl"].as_str().unwrap())
        .collect();
    assert!(ddl.iter().all(|d| d.starts_with("ALTER TABLE")), "{ddl:?}");
    println!(
        "{} change events decoded across {} ALTER TABLE statements with MINIMAL row metadata; \
         history records {seqs:?}",
        got.len(),
        ddl.len()
    );
}

#[tokio::test]
async fn a_restart_after_an_alter_made_while_stopped_decodes_older_rows_with_the_old_definition() {
    let s = minimal_metadata_server();
    s.sql(
        "CREATE TABLE shop.t (id INT PRIMARY KEY, a VARCHAR(20), b INT);
         INSERT INTO shop.t VALUES (0, 'a0', 10);",
    );
    let cfg = agent_config(&s, "exactly-once");
    let mut agent = Agent::start(&cfg);
    let topic = table_topic(&cfg);
    agent.wait_streaming(WAIT);
    s.sql("INSERT INTO shop.t VALUES (1, 'a1', 11)");
    read_changes(&topic, 2, &agent);
    stop(&mut agent);

    // While the agent is stopped: rows with the old definition, the ALTER, rows with the new.
    s.sql(
        "INSERT INTO shop.t VALUES (2, 'a2', 12);
         UPDATE shop.t SET b = 111 WHERE id = 1;
         ALTER TABLE shop.t CHANGE COLUMN b bb INT, ADD COLUMN z VARCHAR(10) AFTER id;
         INSERT INTO shop.t VALUES (3, 'z3', 'a3', 13);",
    );
    let now = s.sql(
        "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 't'",
    );
    assert_eq!(
        now.trim(),
        "id,z,a,bb",
        "information_schema knows only the new definition"
    );

    let mark = agent.log().len();
    let agent = agent.restart();
    wait_log_after(&agent, mark, "streaming").await;
    s.sql("INSERT INTO shop.t VALUES (4, 'z4', 'a4', 14)");
    let got = read_until_id(&topic, "4", &agent);
    let expected = vec![
        change("r", None, cols(&[("id", "0"), ("a", "a0"), ("b", "10")])),
        change("c", None, cols(&[("id", "1"), ("a", "a1"), ("b", "11")])),
        change("c", None, cols(&[("id", "2"), ("a", "a2"), ("b", "12")])),
        change(
            "u",
            cols(&[("id", "1"), ("a", "a1"), ("b", "11")]),
            cols(&[("id", "1"), ("a", "a1"), ("b", "111")]),
        ),
        change(
            "c",
            None,
            cols(&[("id", "3"), ("z", "z3"), ("a", "a3"), ("bb", "13")]),
        ),
        change(
            "c",
            None,
            cols(&[("id", "4"), ("z", "z4"), ("a", "a4"), ("bb", "14")]),
        ),
    ];
    assert_eq!(got, expected, "agent log:\n{}", agent.log());
    let hist = history_records(&cfg, 2);
    assert_eq!(hist.len(), 2, "snapshot + the ALTER: {hist:#?}");
    println!(
        "restart after a stop: {} events, rows before the ALTER decoded with (id,a,b), after \
         with (id,z,a,bb)",
        got.len()
    );
}

#[tokio::test]
async fn a_restart_at_an_older_checkpoint_after_kill_9_replays_with_the_definitions_of_that_position(
) {
    let s = minimal_metadata_server();
    s.sql(
        "CREATE TABLE shop.t (id INT PRIMARY KEY, a VARCHAR(20), b INT);
         INSERT INTO shop.t VALUES (0, 'a0', 10);",
    );
    let cfg = agent_config(&s, "at-least-once");
    let mut agent = Agent::start(&cfg);
    let topic = table_topic(&cfg);
    agent.wait_streaming(WAIT);
    s.sql(
        "ALTER TABLE shop.t ADD COLUMN c INT;
         INSERT INTO shop.t VALUES (1, 'a1', 11, 101);",
    );
    read_changes(&topic, 2, &agent);
    // The checkpoint that covers the first ALTER and the row after it: the "older position".
    let master = s.sql("SHOW MASTER STATUS");
    let mut parts = master.split_whitespace();
    let (file, pos) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
    );
    let want = format!("\"position\":\"{file}:{pos}\"");
    let cps = checkpoints(&cfg, |c| {
        c.last()
            .is_some_and(|v| String::from_utf8_lossy(v).contains(&want))
    });
    let older = cps.last().unwrap().clone();
    let older_json: serde_json::Value = serde_json::from_slice(&older).unwrap();
    assert!(
        String::from_utf8_lossy(&older).contains(&want),
        "no checkpoint at {file}:{pos}: {:?}; log:\n{}",
        cps.iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>(),
        agent.log()
    );
    assert_eq!(older_json["mysql"]["history_seq"], 2, "{older_json}");

    s.sql(
        "INSERT INTO shop.t VALUES (2, 'a2', 12, 102);
         ALTER TABLE shop.t DROP COLUMN a, RENAME COLUMN b TO bb;
         INSERT INTO shop.t VALUES (3, 13, 103);",
    );
    read_changes(&topic, 4, &agent);
    history_records(&cfg, 3);
    // kill -9, then put the older checkpoint back: the agent resumes before the second
    // ALTER, which its history already holds.
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    produce(&offsets_topic(&cfg), &cfg.source_name, Some(&older));
    let mark = agent.log().len();
    let agent = agent.restart();
    wait_log_after(&agent, mark, "streaming").await;
    s.sql("INSERT INTO shop.t VALUES (4, 14, 104)");
    let got = read_until_id(&topic, "4", &agent);
    let old = change(
        "c",
        None,
        cols(&[("id", "2"), ("a", "a2"), ("b", "12"), ("c", "102")]),
    );
    let new = change("c", None, cols(&[("id", "3"), ("bb", "13"), ("c", "103")]));
    let expected = vec![
        change("r", None, cols(&[("id", "0"), ("a", "a0"), ("b", "10")])),
        change(
            "c",
            None,
            cols(&[("id", "1"), ("a", "a1"), ("b", "11"), ("c", "101")]),
        ),
        old.clone(),
        new.clone(),
        // replayed from the older checkpoint, decoded as the first time
        old,
        new,
        change("c", None, cols(&[("id", "4"), ("bb", "14"), ("c", "104")])),
    ];
    assert_eq!(got, expected, "agent log:\n{}", agent.log());
    // The replayed ALTER was recognised, not recorded twice.
    let hist = history_records(&cfg, 3);
    let seqs: Vec<u64> = hist.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3], "{hist:#?}");
    assert!(
        agent.log()[mark..].contains("DDL already in the schema history (replayed)"),
        "log:\n{}",
        agent.log()
    );
    println!(
        "kill -9 + resume at {file}:{pos} (history_seq 2 of 3): replayed rows decoded with the \
         definitions of their positions, history still {seqs:?}"
    );
}

#[tokio::test]
async fn a_deleted_history_topic_stops_the_source_and_rebuild_recovers_when_no_ddl_came_between() {
    let s = minimal_metadata_server();
    s.sql(
        "CREATE TABLE shop.t (id INT PRIMARY KEY, a VARCHAR(20));
         INSERT INTO shop.t VALUES (0, 'a0');",
    );
    let cfg = agent_config(&s, "exactly-once");
    let mut agent = Agent::start(&cfg);
    let topic = table_topic(&cfg);
    agent.wait_streaming(WAIT);
    s.sql("INSERT INTO shop.t VALUES (1, 'a1')");
    read_changes(&topic, 2, &agent);
    stop(&mut agent);
    let history = history_topic(&cfg);
    delete_topic(&history).await;
    s.sql("INSERT INTO shop.t VALUES (2, 'a2')");

    // Default recovery (`stop`): exit 1, the message names the topic and both ways out.
    let mark = agent.log().len();
    let mut agent = agent.restart();
    assert_eq!(agent.wait_exit(WAIT), Some(1), "log:\n{}", agent.log());
    let log = agent.log()[mark..].to_string();
    let line = log_line(&log, "is missing or holds no record");
    println!("stop: {line}");
    assert!(
        line.contains(&format!("schema history topic `{history}`")),
        "{line}"
    );
    assert!(
        line.contains(&format!("source `{}`", cfg.source_name)),
        "{line}"
    );
    assert!(line.contains("take a new snapshot"), "{line}");
    assert!(
        line.contains("schema_history_recovery = \\\"rebuild\\\"")
            || line.contains("schema_history_recovery = \"rebuild\""),
        "{line}"
    );
    assert!(line.contains("docs/mysql-schema-history.md"), "{line}");
    assert!(
        !log.contains("streaming"),
        "nothing decoded without the history:\n{log}"
    );

    // The documented way out when no DDL came between: `rebuild`.
    configure_rebuild(&agent);
    let mark = agent.log().len();
    let mut agent = agent.restart();
    wait_log_after(&agent, mark, "schema history rebuilt").await;
    wait_log_after(&agent, mark, "streaming").await;
    s.sql(
        "ALTER TABLE shop.t ADD COLUMN b INT FIRST;
         INSERT INTO shop.t VALUES (33, 3, 'a3');",
    );
    read_until_id(&topic, "3", &agent);
    let hist = history_records(&cfg, 2);
    let seqs: Vec<u64> = hist.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        [2, 3],
        "rebuilt snapshot numbered after the checkpoint's 1: {hist:#?}"
    );
    assert_eq!(hist[0]["snapshot"], true);
    stop(&mut agent);

    // The rebuilt history carries the next restart: verified, nothing rebuilt again.
    s.sql("INSERT INTO shop.t VALUES (44, 4, 'a4')");
    let mark = agent.log().len();
    let agent = agent.restart();
    wait_log_after(&agent, mark, "streaming").await;
    s.sql("INSERT INTO shop.t VALUES (55, 5, 'a5')");
    let got = read_until_id(&topic, "5", &agent);
    assert!(
        !agent.log()[mark..].contains("schema history rebuilt"),
        "{}",
        agent.log()
    );
    let expected = vec![
        change("r", None, cols(&[("id", "0"), ("a", "a0")])),
        change("c", None, cols(&[("id", "1"), ("a", "a1")])),
        change("c", None, cols(&[("id", "2"), ("a", "a2")])),
        change("c", None, cols(&[("b", "33"), ("id", "3"), ("a", "a3")])),
        change("c", None, cols(&[("b", "44"), ("id", "4"), ("a", "a4")])),
        change("c", None, cols(&[("b", "55"), ("id", "5"), ("a", "a5")])),
    ];
    assert_eq!(got, expected, "agent log:\n{}", agent.log());
    println!(
        "rebuilt history {seqs:?}; {} events, none lost or repeated",
        got.len()
    );
}

#[tokio::test]
async fn a_deleted_history_topic_with_ddl_since_the_checkpoint_refuses_to_rebuild_and_a_new_snapshot_recovers(
) {
    let s = minimal_metadata_server();
    s.sql(
        "CREATE TABLE shop.t (id INT PRIMARY KEY, a VARCHAR(20));
         INSERT INTO shop.t VALUES (0, 'a0');",
    );
    let mut cfg = agent_config(&s, "exactly-once");
    cfg.extra_source_toml
        .push_str("[mysql]\nschema_history_recovery = \"rebuild\"\n");
    let mut agent = Agent::start(&cfg);
    let topic = table_topic(&cfg);
    agent.wait_streaming(WAIT);
    s.sql("INSERT INTO shop.t VALUES (1, 'a1')");
    read_changes(&topic, 2, &agent);
    stop(&mut agent);
    let history = history_topic(&cfg);
    delete_topic(&history).await;
    s.sql(
        "INSERT INTO shop.t VALUES (2, 'a2');
         ALTER TABLE shop.t ADD COLUMN b INT AFTER id;
         INSERT INTO shop.t VALUES (3, 33, 'a3');",
    );

    // information_schema no longer describes the rows at the resume position: no rebuild.
    let mark = agent.log().len();
    let mut agent = agent.restart();
    assert_eq!(agent.wait_exit(WAIT), Some(1), "log:\n{}", agent.log());
    let log = agent.log()[mark..].to_string();
    let line = log_line(&log, "cannot be rebuilt from information_schema");
    println!("refused: {line}");
    assert!(
        line.contains(&format!("schema history topic `{history}`")),
        "{line}"
    );
    assert!(
        line.contains("1 statement(s) changed captured tables"),
        "{line}"
    );
    assert!(
        line.contains("ALTER TABLE shop.t ADD COLUMN b INT AFTER id"),
        "{line}"
    );
    assert!(line.contains("take a new snapshot"), "{line}");
    assert!(
        line.contains(&format!("tombstone for key `{}`", cfg.source_name)),
        "{line}"
    );
    assert!(line.contains(&offsets_topic(&cfg)), "{line}");
    assert!(!log.contains("schema history rebuilt"), "{log}");

    // The documented way out: a tombstone for the source's key in the offsets topic.
    produce(&offsets_topic(&cfg), &cfg.source_name, None);
    let mark = agent.log().len();
    let agent = agent.restart();
    wait_log_after(&agent, mark, "snapshot complete").await;
    wait_log_after(&agent, mark, "streaming").await;
    s.sql("INSERT INTO shop.t VALUES (4, 44, 'a4')");
    let got = read_until_id(&topic, "4", &agent);
    let expected = vec![
        change("r", None, cols(&[("id", "0"), ("a", "a0")])),
        change("c", None, cols(&[("id", "1"), ("a", "a1")])),
        // the new snapshot, with today's definition
        change("r", None, cols(&[("id", "0"), ("b", "NULL"), ("a", "a0")])),
        change("r", None, cols(&[("id", "1"), ("b", "NULL"), ("a", "a1")])),
        change("r", None, cols(&[("id", "2"), ("b", "NULL"), ("a", "a2")])),
        change("r", None, cols(&[("id", "3"), ("b", "33"), ("a", "a3")])),
        change("c", None, cols(&[("id", "4"), ("b", "44"), ("a", "a4")])),
    ];
    assert_eq!(got, expected, "agent log:\n{}", agent.log());
    let hist = history_records(&cfg, 1);
    assert_eq!(hist.len(), 1, "a new epoch: one snapshot record {hist:#?}");
    assert_eq!(hist[0]["snapshot"], true);
    println!(
        "new snapshot after the refused rebuild: {} events",
        got.len()
    );
}

#[tokio::test]
async fn a_table_created_renamed_and_recreated_mid_stream_decodes_with_the_names_of_its_create() {
    let s = minimal_metadata_server();
    s.sql("CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let cfg = agent_config(&s, "exactly-once");
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    s.sql(
        "CREATE TABLE shop.n (k INT PRIMARY KEY, label VARCHAR(10), qty SMALLINT UNSIGNED);
         INSERT INTO shop.n VALUES (1, 'one', 65535);
         RENAME TABLE shop.n TO shop.m;
         INSERT INTO shop.m VALUES (2, 'two', 2);
         DROP TABLE shop.m;
         CREATE TABLE shop.m (k BIGINT PRIMARY KEY, other VARCHAR(5));
         INSERT INTO shop.m VALUES (3, 'x');",
    );
    let prefix = &cfg.topic_prefix;
    let n = read_changes(&format!("{prefix}.shop.n"), 1, &agent);
    assert_eq!(
        n,
        [change(
            "c",
            None,
            cols(&[("k", "1"), ("label", "one"), ("qty", "65535")])
        )],
        "agent log:\n{}",
        agent.log()
    );
    let m = read_changes(&format!("{prefix}.shop.m"), 2, &agent);
    assert_eq!(
        m,
        [
            change(
                "c",
                None,
                cols(&[("k", "2"), ("label", "two"), ("qty", "2")])
            ),
            change("c", None, cols(&[("k", "3"), ("other", "x")])),
        ],
        "agent log:\n{}",
        agent.log()
    );
    let hist = history_records(&cfg, 5);
    let ddl: Vec<String> = hist[1..]
        .iter()
        .map(|r| {
            r["ddl"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        ddl,
        ["CREATE TABLE", "RENAME TABLE", "DROP TABLE", "CREATE TABLE"],
        "{hist:#?}"
    );
    println!("tables created/renamed/recreated mid-stream: history {ddl:?}");
}
