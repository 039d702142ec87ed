//! Topics deleted while the agent runs (issue 13): the agent never carries on as if nothing
//! happened.
//!
//! - **A table topic**: the events already published to it are gone for its consumers. The
//!   agent stops (exit 1) naming the topic instead of letting it be recreated unseen (by itself
//!   or by a broker's `auto.create.topics.enable`); a restart is the operator's decision: it
//!   creates the topic again and goes on from the checkpoint.
//! - **The offsets topic**: the checkpoint went with it. The agent stops naming the topic; a
//!   restart finds the slot but no offsets topic and stops naming `on_missing_position` (it
//!   does not snapshot again or take a new slot on its own); with `"snapshot"` it resumes from
//!   the slot (no change lost) and reads every table again.
//!
//! Each test deletes only its own topics on the shared broker (whose
//! `auto.create.topics.enable` is off; the agent's producer asks for no auto-creation either).

use crate::common;

use std::time::Duration;

use cdc_agent::ops::exit;
use common::agent::{read_topic, Agent, AgentConfig, AvroDecoder, Record};
use common::cdc::decode_table_change;
use common::{pg_connect, stack_env, unique_name, wait_until, FreshPgDb};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

/// Long enough for a cold broker; the agent usually gets there in seconds.
const WAIT: Duration = Duration::from_secs(90);
/// How long a deleted topic may take to stop the agent: librdkafka holds the records of a
/// topic that vanished until its metadata says so for good (up to `message.timeout.ms`, 2 min)
/// before it fails them.
const EXIT_WAIT: Duration = Duration::from_secs(180);

/// The ids and ops (`r` snapshot read, `c` insert) of the changes in `topic` once `done` says
/// enough arrived (or [`WAIT`] passed).
fn changes(topic: &str, done: impl Fn(&[(i64, String)]) -> bool) -> Vec<(i64, String)> {
    let mut dec = AvroDecoder::new();
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut decoded = 0;
    read_topic(topic, WAIT, |records| {
        for r in &records[decoded..] {
            if r.value.is_some() {
                let c = decode_table_change(&mut dec, r, "id");
                seen.push((c.id, c.op.unwrap_or_default()));
            }
        }
        decoded = records.len();
        done(&seen)
    });
    seen
}

/// Every change in `topic` now (read_committed, from its start to the end it has when the
/// read begins).
async fn all_changes(topic: &str) -> Vec<(i64, String)> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let kafka: cdc_agent::config::KafkaConfig = toml::from_str(&format!(
            "bootstrap_servers = \"{}\"",
            stack_env("KAFKA_BOOTSTRAP")
        ))
        .unwrap();
        let mut dec = AvroDecoder::new();
        let mut seen = Vec::new();
        cdc_agent::sink::read::read_to_end(
            &kafka,
            &topic,
            &unique_name("reader"),
            "table",
            WAIT,
            |m| {
                use rdkafka::Message;
                if m.payload().is_some() {
                    let r = Record {
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        headers: Default::default(),
                        partition: m.partition(),
                        offset: m.offset(),
                    };
                    let c = decode_table_change(&mut dec, &r, "id");
                    seen.push((c.id, c.op.unwrap_or_default()));
                }
                Ok(())
            },
        )
        .unwrap();
        seen
    })
    .await
    .unwrap()
}

/// Whether `topic` holds a change of row `id` with `op`.
fn has(seen: &[(i64, String)], id: i64, op: &str) -> bool {
    seen.iter().any(|(i, o)| *i == id && o == op)
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap()
}

/// Deletes `topic` and waits until the brokers no longer list it.
async fn delete_topic(topic: &str) {
    let admin = admin();
    let res = admin
        .delete_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap();
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("delete topic {t}: {e}"));
    }
    wait_until(WAIT, "the topic to be gone", || async {
        (!topic_exists(topic).await).then_some(())
    })
    .await;
}

/// Whether the brokers list `topic`.
async fn topic_exists(topic: &str) -> bool {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let md = admin()
            .inner()
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        md.topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    })
    .await
    .unwrap()
}

/// A database with table `t` (rows 1, 2) in publication `cdc_pub`, and the agent's
/// configuration for it in `delivery` mode with `on_missing_position` when given.
async fn setup(what: &str) -> (FreshPgDb, tokio_postgres::Client, String) {
    let db = FreshPgDb::create(what).await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t VALUES (1, 'a'), (2, 'b');
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    (db, admin, unique_name(what))
}

fn config(name: &str, db: &str, delivery: &str, policy: Option<&str>) -> AgentConfig {
    let mut cfg = AgentConfig::postgres(name, db);
    let policy = policy
        .map(|p| format!("on_missing_position = \"{p}\"\n"))
        .unwrap_or_default();
    cfg.extra_source_toml =
        format!("delivery = \"{delivery}\"\n{policy}[postgres]\npublication = \"cdc_pub\"\n");
    cfg
}

/// Inserts rows from `next` on, one every 200 ms, until the agent exits; returns its exit code
/// and the first id not inserted. Rows keep the source writing (checkpoints and events), so a
/// deleted topic is written to.
async fn insert_until_exit(
    admin: &tokio_postgres::Client,
    agent: &mut Agent,
    mut next: i64,
) -> (Option<i32>, i64) {
    let start = std::time::Instant::now();
    while start.elapsed() < EXIT_WAIT {
        if let Some(status) = agent.child.try_wait().unwrap() {
            return (status.code(), next);
        }
        admin
            .execute("INSERT INTO t VALUES ($1, 'x')", &[&(next as i32)])
            .await
            .unwrap();
        next += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (None, next)
}

/// The line the agent stopped with (not a retried failure's).
fn stop_line(log: &str) -> String {
    log.lines()
        .find(|l| l.contains("source failed") && !l.contains("retrying"))
        .unwrap_or("")
        .to_string()
}

async fn the_offsets_topic_deleted_mid_run_stops_and_never_starts_over_unasked(delivery: &str) {
    let (db, admin, name) = setup("deloffs").await;
    let topic = format!("{name}.public.t");
    let offsets = format!("{name}.offsets");
    let cfg = config(&name, &db.name, delivery, None);
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .batch_execute("INSERT INTO t VALUES (3, 'c')")
        .await
        .unwrap();
    changes(&topic, |s| has(s, 3, "c"));

    delete_topic(&offsets).await;
    let next = if delivery == "exactly-once" {
        // Every transaction carries the checkpoint: the next one fails, and the agent stops
        // naming the topic (the retry after the aborted transaction finds it gone).
        let (code, next) = insert_until_exit(&admin, &mut agent, 100).await;
        let log = agent.log();
        println!("{}", stop_line(&log));
        assert_eq!(
            code,
            Some(i32::from(exit::FAILURE)),
            "the agent went on after its offsets topic was deleted; log:\n{log}"
        );
        assert!(
            stop_line(&log).contains(&format!("kafka topic `{offsets}` no longer exists")),
            "the stop does not name the deleted offsets topic:\n{log}"
        );
        next
    } else {
        // At least once, a PostgreSQL source writes checkpoints only for snapshots (the slot
        // keeps the streaming position): streaming goes on, the loss shows at the next start.
        admin
            .batch_execute("INSERT INTO t VALUES (100, 'x')")
            .await
            .unwrap();
        changes(&topic, |s| has(s, 100, "c"));
        agent.terminate();
        assert_eq!(agent.wait_exit(WAIT), Some(0), "log:\n{}", agent.log());
        101
    };

    // A restart as it was: the slot is there, the offsets topic is not. It stops naming the
    // decision, and neither snapshots again nor recreates the topic (the next start must find
    // the same evidence).
    let mut agent = Agent::start(&cfg);
    let exit_code = agent.wait_exit(WAIT);
    let log = agent.log();
    println!("{}", stop_line(&log));
    assert_eq!(exit_code, Some(i32::from(exit::FAILURE)), "log:\n{log}");
    let line = stop_line(&log);
    for needle in [
        format!("replication slot `{name}` exists"),
        format!("the offsets topic `{offsets}` does not"),
        "set on_missing_position = \"snapshot\"".to_string(),
    ] {
        assert!(line.contains(&needle), "the stop lacks `{needle}`: {line}");
    }
    assert!(
        !topic_exists(&offsets).await,
        "the stopped agent created the offsets topic again"
    );
    let seen = all_changes(&topic).await;
    assert_eq!(
        seen.iter().filter(|(_, op)| op == "r").count(),
        2,
        "the tables were read again without a decision: {seen:?}"
    );

    // The operator decides: the agent resumes from the slot (the rows inserted while it was
    // stopped arrive as inserts: nothing is skipped) and reads the table again.
    admin
        .batch_execute("INSERT INTO t VALUES (9999, 'after')")
        .await
        .unwrap();
    let agent = Agent::start(&config(&name, &db.name, delivery, Some("snapshot")));
    agent.wait_streaming(WAIT);
    let seen = changes(&topic, |s| {
        has(s, 9999, "c") && s.iter().filter(|(_, op)| op == "r").count() >= 2 + 3
    });
    assert!(
        has(&seen, 9999, "c"),
        "a change made while stopped was lost: {seen:?}"
    );
    for id in 100..next {
        assert!(
            has(&seen, id, "c") || has(&seen, id, "r"),
            "row {id} never arrived: {seen:?}"
        );
    }
    assert!(
        seen.iter().filter(|(_, op)| op == "r").count() >= 2 + 3,
        "no new snapshot: {seen:?}"
    );
    let log = agent.log();
    assert!(
        log.contains("resuming from the slot and snapshotting every table again"),
        "no decision line:\n{log}"
    );
    assert!(
        topic_exists(&offsets).await,
        "the offsets topic was not created again"
    );
}

#[tokio::test]
async fn the_offsets_topic_deleted_mid_run_stops_exactly_once_and_a_restart_waits_for_on_missing_position(
) {
    the_offsets_topic_deleted_mid_run_stops_and_never_starts_over_unasked("exactly-once").await;
}

#[tokio::test]
async fn the_offsets_topic_deleted_mid_run_stops_at_least_once_and_a_restart_waits_for_on_missing_position(
) {
    the_offsets_topic_deleted_mid_run_stops_and_never_starts_over_unasked("at-least-once").await;
}

async fn a_table_topic_deleted_mid_run_stops_naming_it_and_a_restart_recreates_it(delivery: &str) {
    let (db, admin, name) = setup("deltable").await;
    let topic = format!("{name}.public.t");
    let cfg = config(&name, &db.name, delivery, None);
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .batch_execute("INSERT INTO t VALUES (3, 'c')")
        .await
        .unwrap();
    changes(&topic, |s| has(s, 3, "c"));

    delete_topic(&topic).await;
    let (code, _) = insert_until_exit(&admin, &mut agent, 100).await;
    let log = agent.log();
    println!("{}", stop_line(&log));
    assert_eq!(
        code,
        Some(i32::from(exit::FAILURE)),
        "the agent went on after its table topic was deleted; log:\n{log}"
    );
    assert!(
        stop_line(&log).contains(&format!("kafka topic `{topic}` no longer exists")),
        "the stop does not name the deleted topic:\n{log}"
    );
    // Exactly once, the first failure is the aborted transaction (librdkafka reports the
    // missing topic only in its log): the retry finds the topic gone and stops.
    assert!(
        !log.contains("created topic topic=")
            || log
                .matches(&format!("created topic topic=\"{topic}\""))
                .count()
                == 1,
        "the deleted topic was created again unseen:\n{log}"
    );

    // The restart is the operator's decision: the topic is created again and the changes
    // from the checkpoint on arrive in it.
    let agent = agent.restart();
    agent.wait_streaming(WAIT);
    admin
        .batch_execute("INSERT INTO t VALUES (9999, 'after')")
        .await
        .unwrap();
    let seen = changes(&topic, |s| has(s, 9999, "c"));
    assert!(has(&seen, 9999, "c"), "{seen:?}");
}

#[tokio::test]
async fn a_table_topic_deleted_mid_run_stops_exactly_once_naming_it_and_a_restart_recreates_it() {
    a_table_topic_deleted_mid_run_stops_naming_it_and_a_restart_recreates_it("exactly-once").await;
}

#[tokio::test]
async fn a_table_topic_deleted_mid_run_stops_at_least_once_naming_it_and_a_restart_recreates_it() {
    a_table_topic_deleted_mid_run_stops_naming_it_and_a_restart_recreates_it("at-least-once").await;
}
