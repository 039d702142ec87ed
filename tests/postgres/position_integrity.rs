//! Position integrity: the agent never takes a new slot or a new position without an explicit,
//! logged operator decision (`on_missing_position`). A checkpoint whose slot is gone, a slot
//! of another database system, a slot the server invalidated and an offsets topic the agent
//! cannot read all stop it with one line naming the fix; `on_missing_position = "snapshot"`
//! takes a new slot and snapshots again, and says so.
//!
//! The missing slot runs on the shared stack (its own database); the foreign system and the
//! invalidated slot need server settings or a second cluster, so they run on throwaway
//! clusters of their own ([`ScratchPostgres`]).

use crate::common;

use std::time::{Duration, Instant};

use cdc_agent::config::KafkaConfig;
use cdc_agent::ops::exit;
use cdc_agent::source::postgres::position::PgPosition;
use common::agent::{read_topic, Agent, AgentConfig, AvroDecoder};
use common::cdc::{decode_table_change, log_after, log_mark};
use common::scratch_pg::ScratchPostgres;
use common::{
    pg_connect, pg_server_version_num, snapshots_started, stack_env, unique_name, wait_until,
    FreshPgDb,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

use crate::bad_input::assert_exits_with;

/// Long enough for a cold broker; the agent usually gets there in seconds.
const WAIT: Duration = Duration::from_secs(90);

/// The decision line `on_missing_position = "snapshot"` logs.
const DECISION: &str = "on_missing_position = \"snapshot\" (operator decision): accepting a gap";

/// Waits until `topic` holds a change of row `id` with `op` (`r` snapshot, `c` insert).
fn wait_change(topic: &str, id: i64, op: &str) {
    let mut dec = AvroDecoder::new();
    let (mut decoded, mut found) = (0, false);
    read_topic(topic, WAIT, |records| {
        for r in &records[decoded..] {
            if r.value.is_some() {
                let c = decode_table_change(&mut dec, r, "id");
                found |= c.id == id && c.op.as_deref() == Some(op);
            }
        }
        decoded = records.len();
        found
    });
    assert!(found, "no `{op}` change of row {id} in {topic}");
}

/// Prints the line the agent stopped with (for the test's output).
fn show_stop(log: &str) {
    println!(
        "{}",
        log.lines()
            .find(|l| l.contains("source failed"))
            .unwrap_or("")
    );
}

/// Stops the agent cleanly (SIGTERM, exit 0): its position is committed.
fn stop(agent: &mut Agent) {
    agent.terminate();
    assert_eq!(agent.wait_exit(WAIT), Some(0), "log:\n{}", agent.log());
}

/// Whether the slot exists on the server behind `client`.
async fn slot_exists(client: &tokio_postgres::Client, slot: &str) -> bool {
    client
        .query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .is_some()
}

/// Drops the slot once the stopped agent's walsender has let go of it.
async fn drop_slot(client: &tokio_postgres::Client, slot: &str) {
    wait_until(WAIT, "the slot to be released", || async {
        let active: bool = client
            .query_one(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .unwrap()
            .get(0);
        (!active).then_some(())
    })
    .await;
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .unwrap();
}

/// The source's configuration with publication `cdc_pub` and, when given, the
/// `on_missing_position` setting (a top-level key: before the `[postgres]` table).
fn with_policy(mut cfg: AgentConfig, policy: Option<&str>) -> AgentConfig {
    let key = policy
        .map(|p| format!("on_missing_position = \"{p}\"\n"))
        .unwrap_or_default();
    cfg.extra_source_toml = format!("{key}[postgres]\npublication = \"cdc_pub\"\n");
    cfg
}

#[tokio::test]
async fn a_missing_slot_with_a_checkpoint_stops_naming_on_missing_position_and_snapshot_accepts_the_gap(
) {
    let db = FreshPgDb::create("posmiss").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t VALUES (1, 'a'), (2, 'b');
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("posmiss");
    let topic = format!("{name}.public.t");
    let cfg = with_policy(AgentConfig::postgres(&name, &db.name), None);
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .batch_execute("INSERT INTO t VALUES (3, 'c')")
        .await
        .unwrap();
    wait_change(&topic, 3, "c");
    stop(&mut agent);

    // A DBA drops the slot while the agent is down; row 4 is written with no slot to keep it.
    drop_slot(&admin, &name).await;
    admin
        .batch_execute("INSERT INTO t VALUES (4, 'd')")
        .await
        .unwrap();

    let mut agent = Agent::start(&cfg);
    let log = assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &[
            &format!("replication slot `{name}` is missing"),
            "has a checkpoint taken from it",
            "set on_missing_position = ",
        ],
    );
    show_stop(&log);
    assert!(
        !slot_exists(&admin, &name).await,
        "the stopped agent left a new slot behind"
    );

    // The operator accepts the gap: a new slot, a new snapshot (row 4 arrives as a read), and
    // the decision in the log.
    let mut agent = Agent::start(&with_policy(
        AgentConfig::postgres(&name, &db.name),
        Some("snapshot"),
    ));
    agent.wait_streaming(WAIT);
    wait_change(&topic, 4, "r");
    let log = agent.log();
    assert!(log.contains(DECISION), "no decision line:\n{log}");
    assert!(log.contains("the slot is missing"), "{log}");
    assert!(slot_exists(&admin, &name).await);
    // The new slot is the checkpoint's now: a restart resumes it without another decision.
    stop(&mut agent);
    let agent = agent.restart();
    agent.wait_streaming(WAIT);
    admin
        .batch_execute("INSERT INTO t VALUES (5, 'e')")
        .await
        .unwrap();
    wait_change(&topic, 5, "c");
    assert_eq!(
        agent.log().matches(DECISION).count(),
        1,
        "decided again:\n{}",
        agent.log()
    );
}

/// A checkpoint committed after an open transaction of a dead agent is hidden from
/// read_committed readers (they stop at the last stable offset) until that transaction is
/// fenced, which only the slot holder may do. The agent reads before it owns anything, finds
/// nothing, takes the slot, fences, reads again, finds the checkpoint of the lost slot, drops
/// the slot it just made and stops.
#[tokio::test]
async fn a_missing_slot_proven_only_after_fencing_an_open_transaction_drops_the_new_slot_and_stops()
{
    let db = FreshPgDb::create("posheld").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t VALUES (1, 'a');
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("posheld");
    let topic = format!("{name}.offsets");
    let kafka: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    for r in kafka
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap()
    {
        r.unwrap();
    }
    // The dead agent's transaction (its transactional id), still open...
    let zombie: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .set("transactional.id", format!("cdc-agent-{name}"))
        .create()
        .unwrap();
    zombie.init_transactions(Duration::from_secs(30)).unwrap();
    zombie.begin_transaction().unwrap();
    zombie
        .send(BaseRecord::to(&topic).key("other").payload("{}"))
        .map_err(|(e, _)| e)
        .unwrap();
    zombie.flush(Duration::from_secs(30)).unwrap();
    // ...and after it a committed checkpoint taken from this source's slot, which this
    // database does not have.
    let writer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    let checkpoint = format!(r#"{{"snapshot_done":true,"position":"0/10","slot":"{name}"}}"#);
    writer
        .send(BaseRecord::to(&topic).key(&name).payload(&checkpoint))
        .map_err(|(e, _)| e)
        .unwrap();
    writer.flush(Duration::from_secs(30)).unwrap();

    let cfg = with_policy(AgentConfig::postgres(&name, &db.name), None);
    let mut agent = Agent::start(&cfg);
    let log = assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &[
            &format!("replication slot `{name}` is missing"),
            "has a checkpoint taken from it at 0/10",
            "set on_missing_position = ",
        ],
    );
    show_stop(&log);
    assert!(log.contains("created replication slot"), "{log}");
    assert!(
        !slot_exists(&admin, &name).await,
        "the slot made before the decision was left behind"
    );
    drop(zombie);
    let _ = kafka
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await;
}

/// The stack's Kafka as the super user (PLAINTEXT listener).
fn kafka_plain() -> KafkaConfig {
    toml::from_str(&format!(
        "bootstrap_servers = \"{}\"",
        stack_env("KAFKA_BOOTSTRAP")
    ))
    .unwrap()
}

/// The newest checkpoint of source `name` (prefix = name).
async fn checkpoint_of(name: &str) -> cdc_agent::checkpoint::Checkpoint<PgPosition> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        cdc_agent::checkpoint::load::<PgPosition>(&kafka_plain(), &format!("{name}.offsets"), &name)
    })
    .await
    .unwrap()
    .unwrap()
    .expect("a checkpoint")
}

#[tokio::test]
async fn a_checkpoint_written_before_system_ids_were_recorded_resumes_and_gets_them() {
    let db = FreshPgDb::create("posupg").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t VALUES (1, 'a');
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("posupg");
    let topic = format!("{name}.public.t");
    let cfg = with_policy(AgentConfig::postgres(&name, &db.name), None);
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    wait_change(&topic, 1, "r");
    stop(&mut agent);
    let now = checkpoint_of(&name).await;
    let system = now.source.system_id.clone().expect("system id recorded");
    assert_eq!(system, {
        let id: String = admin
            .query_one(
                "SELECT system_identifier::text FROM pg_control_system()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        id
    });
    assert!(now.source.timeline.is_some());

    // The same checkpoint as an earlier version wrote it: no system id, no timeline.
    let mut old = serde_json::to_value(&now).unwrap();
    old.as_object_mut().unwrap().remove("system_id");
    old.as_object_mut().unwrap().remove("timeline");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    producer
        .send(
            BaseRecord::to(&format!("{name}.offsets"))
                .key(&name)
                .payload(&old.to_string()),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(checkpoint_of(&name).await.source.system_id, None);

    // It resumes (no decision, no new snapshot) and records the identity again.
    let mut agent = agent.restart();
    agent.wait_streaming(WAIT);
    admin
        .batch_execute("INSERT INTO t VALUES (2, 'b')")
        .await
        .unwrap();
    wait_change(&topic, 2, "c");
    stop(&mut agent);
    let log = agent.log();
    assert!(!log.contains("position lost"), "{log}");
    assert_eq!(
        snapshots_started(&log, pg_server_version_num(&admin).await),
        1,
        "snapshotted again:\n{log}"
    );
    assert_eq!(checkpoint_of(&name).await.source.system_id, Some(system));
}

/// PostgreSQL 12's side of the invalidation test: the WAL written and checkpointed away while
/// the agent is down is kept for the slot, so the next start resumes (the change made while it
/// was down arrives as an insert, nothing is read again, no position is lost).
async fn wal_churn_while_stopped_resumes_from_the_slot(name: &str, topic: &str) {
    let (pg, client) = scratch_cluster("").await;
    let mut agent = Agent::start(&scratch_config(name, &pg, None));
    agent.wait_streaming(WAIT);
    wait_change(topic, 2, "r");
    stop(&mut agent);
    client
        .batch_execute("CREATE TABLE filler (x text); INSERT INTO t VALUES (3, 'c')")
        .await
        .unwrap();
    for _ in 0..4 {
        client
            .batch_execute(
                "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000);
                 SELECT pg_switch_wal();
                 CHECKPOINT;",
            )
            .await
            .unwrap();
    }
    let mut agent = agent.restart();
    agent.wait_streaming(WAIT);
    wait_change(topic, 3, "c");
    stop(&mut agent);
    let log = agent.log();
    assert!(!log.contains("position lost"), "{log}");
    assert!(!log.contains("was invalidated"), "{log}");
    assert_eq!(
        snapshots_started(&log, pg_server_version_num(&client).await),
        1,
        "snapshotted again:\n{log}"
    );
    drop(pg);
}

/// A throwaway cluster with logical replication, table `t` (rows 1, 2) in publication
/// `cdc_pub` of database `postgres`, and a superuser client.
async fn scratch_cluster(extra_conf: &str) -> (ScratchPostgres, tokio_postgres::Client) {
    let pg = ScratchPostgres::start(&format!(
        "wal_level = logical\nmax_replication_slots = 4\nmax_wal_senders = 4\n{extra_conf}"
    ));
    let client = pg_connect(&pg.url("postgres", "postgres")).await;
    client
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t VALUES (1, 'a'), (2, 'b');
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    (pg, client)
}

/// The agent's configuration for source `name` on a scratch cluster (trusted superuser).
fn scratch_config(name: &str, pg: &ScratchPostgres, policy: Option<&str>) -> AgentConfig {
    let mut cfg = AgentConfig::postgres(name, "postgres");
    cfg.port = pg.port.to_string();
    cfg.user = "postgres".into();
    cfg.password = "unused".into();
    with_policy(cfg, policy)
}

async fn system_id(client: &tokio_postgres::Client) -> String {
    client
        .query_one(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_slot_of_the_same_name_on_another_database_system_stops_naming_both_system_ids() {
    let name = unique_name("posforeign");
    let topic = format!("{name}.public.t");
    let (first, _first_client) = scratch_cluster("").await;
    let mut agent = Agent::start(&scratch_config(&name, &first, None));
    agent.wait_streaming(WAIT);
    wait_change(&topic, 2, "r");
    stop(&mut agent);

    // Another cluster (a restored or new one) that has a slot of that name: same tables, a
    // different history.
    let (second, second_client) = scratch_cluster("").await;
    second_client
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&name],
        )
        .await
        .unwrap();
    let (was, now) = (
        system_id(&_first_client).await,
        system_id(&second_client).await,
    );
    assert_ne!(was, now);
    let mut agent = Agent::start(&scratch_config(&name, &second, None));
    let log = assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &[
            &format!("is on database system {now}"),
            &format!("taken on system {was}"),
            "set on_missing_position = ",
        ],
    );
    show_stop(&log);

    // Accepting the gap snapshots the other cluster's rows again and streams from its slot.
    second_client
        .batch_execute("INSERT INTO t VALUES (30, 'other')")
        .await
        .unwrap();
    let agent = Agent::start(&scratch_config(&name, &second, Some("snapshot")));
    agent.wait_streaming(WAIT);
    wait_change(&topic, 30, "r");
    let log = agent.log();
    assert!(log.contains(DECISION), "no decision line:\n{log}");
    assert!(
        log.contains(&format!("the checkpoint was taken on system {was}")),
        "{log}"
    );
    drop(agent);
    drop(second);
    drop(first);
}

#[tokio::test]
async fn a_slot_invalidated_by_max_slot_wal_keep_size_stops_naming_the_slot_the_cause_and_the_fix()
{
    let name = unique_name("poslost");
    let topic = format!("{name}.public.t");
    // max_slot_wal_keep_size is new in 13: a PostgreSQL 12 server keeps every WAL segment a
    // slot needs, so its slots are never invalidated; there the same WAL churn while the
    // agent is down must end in a plain resume.
    // (The scratch clusters run PG_BIN_DIR's major, the same as the server under test.)
    let version = pg_server_version_num(&pg_connect(&stack_env("PG_URL")).await).await;
    if version < 130000 {
        return wal_churn_while_stopped_resumes_from_the_slot(&name, &topic).await;
    }
    let (pg, client) = scratch_cluster("max_slot_wal_keep_size = 1MB").await;
    let mut agent = Agent::start(&scratch_config(&name, &pg, None));
    agent.wait_streaming(WAIT);
    wait_change(&topic, 2, "r");
    stop(&mut agent);

    // While the agent is down, more WAL than max_slot_wal_keep_size is written and removed
    // at checkpoints: the server invalidates the slot.
    client
        .batch_execute("CREATE TABLE filler (x text)")
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let status: Option<String> = client
            .query_one(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        if status.as_deref() == Some("lost") {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "slot not invalidated; wal_status {status:?}"
        );
        client
            .batch_execute(
                "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000);
                 SELECT pg_switch_wal();
                 CHECKPOINT;",
            )
            .await
            .unwrap();
    }

    let mut agent = Agent::start(&scratch_config(&name, &pg, None));
    let log = assert_exits_with(
        &mut agent,
        exit::FAILURE,
        &[
            &format!("replication slot `{name}` was invalidated"),
            "max_slot_wal_keep_size",
            "set on_missing_position = ",
            &format!("pg_drop_replication_slot('{name}')"),
        ],
    );
    show_stop(&log);

    // Accepting the gap drops the invalidated slot, takes a new one and snapshots again.
    client
        .batch_execute("INSERT INTO t VALUES (3, 'c')")
        .await
        .unwrap();
    let agent = Agent::start(&scratch_config(&name, &pg, Some("snapshot")));
    agent.wait_streaming(WAIT);
    wait_change(&topic, 3, "r");
    let log = agent.log();
    assert!(log.contains(DECISION), "no decision line:\n{log}");
    assert!(log.contains("the slot was invalidated"), "{log}");
    drop(agent);
    drop(pg);
}

/// The agent's Kafka settings as the stack's ordinary SASL user `cdc`, which holds ACLs only
/// on resources prefixed `cdc_sasl_`.
fn kafka_as_sasl_user() -> KafkaConfig {
    toml::from_str(&format!(
        "bootstrap_servers = \"{}\"\nsecurity_protocol = \"SASL_PLAINTEXT\"\n\
         sasl_mechanism = \"{}\"\nsasl_username = \"{}\"\nsasl_password = \"{}\"\n",
        stack_env("KAFKA_SASL_BOOTSTRAP"),
        stack_env("KAFKA_SASL_MECHANISM"),
        stack_env("KAFKA_SASL_USER_USERNAME"),
        stack_env("KAFKA_SASL_USER_PASSWORD"),
    ))
    .unwrap()
}

/// An offsets topic that exists and holds a checkpoint, but that the agent's principal may
/// not describe: the broker answers its metadata request with TOPIC_AUTHORIZATION_FAILED.
/// (Of the metadata errors a test can cause on the shared broker without stopping it, this is
/// the one; the transient ones are covered by the unit tests of `sink::read`.) That is an
/// error naming the grant, never "no checkpoint", which would make the source start over.
#[tokio::test]
async fn a_checkpoint_in_an_offsets_topic_the_agent_may_not_describe_is_an_error_not_no_checkpoint()
{
    // Outside the `cdc_sasl_` prefix: user cdc holds no ACL on this topic.
    let name = unique_name("posdeny");
    let topic = format!("{name}.offsets");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap()
        .into_iter()
        .for_each(|r| {
            r.unwrap();
        });
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    let checkpoint = br#"{"snapshot_done":true,"position":"0/10","slot":"s"}"#;
    producer
        .send(BaseRecord::to(&topic).key(&name).payload(&checkpoint[..]))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    let super_user: KafkaConfig = toml::from_str(&format!(
        "bootstrap_servers = \"{}\"",
        stack_env("KAFKA_BOOTSTRAP")
    ))
    .unwrap();
    let (t, n) = (topic.clone(), name.clone());
    let found = tokio::task::spawn_blocking(move || {
        cdc_agent::checkpoint::load::<PgPosition>(&super_user, &t, &n)
    })
    .await
    .unwrap()
    .unwrap()
    .expect("the checkpoint, read by a principal that may");
    assert!(found.snapshot_done);

    let (t, n) = (topic.clone(), name.clone());
    let denied = tokio::task::spawn_blocking(move || {
        cdc_agent::checkpoint::load::<PgPosition>(&kafka_as_sasl_user(), &t, &n)
    })
    .await
    .unwrap();
    let err = match denied {
        Ok(cp) => panic!("read as {cp:?} instead of an error"),
        Err(e) => e,
    };
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("grant Describe and Read on topic `{topic}`")),
        "{err}"
    );
    let _ = admin
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await;
}

#[tokio::test]
async fn a_new_timeline_of_the_same_system_with_the_slot_present_resumes_and_says_so() {
    let name = unique_name("postimeline");
    let topic = format!("{name}.public.t");
    let (mut pg, client) = scratch_cluster("").await;
    let timeline = |client: tokio_postgres::Client| async move {
        let t: i32 = client
            .query_one("SELECT timeline_id FROM pg_control_checkpoint()", &[])
            .await
            .unwrap()
            .get(0);
        t
    };
    let system = system_id(&client).await;
    let before = timeline(client).await;
    let mut agent = Agent::start(&scratch_config(&name, &pg, None));
    agent.wait_streaming(WAIT);
    wait_change(&topic, 2, "r");
    stop(&mut agent);

    // A promotion (or a point-in-time recovery) of the same system keeps the slot.
    pg.restart_on_new_timeline();
    let client = pg_connect(&pg.url("postgres", "postgres")).await;
    assert_eq!(system_id(&client).await, system);
    assert!(
        slot_exists(&client, &name).await,
        "the slot went with the promotion"
    );
    client
        .batch_execute("INSERT INTO t VALUES (3, 'after the promotion')")
        .await
        .unwrap();
    let after = timeline(pg_connect(&pg.url("postgres", "postgres")).await).await;
    assert!(after > before, "timeline {before} -> {after}");

    let mark = log_mark(&agent);
    let agent = agent.restart();
    agent.wait_streaming(WAIT);
    wait_change(&topic, 3, "c");
    let log = log_after(&agent, mark);
    assert!(
        log.contains("the server's timeline changed since the checkpoint"),
        "no line about the timeline:\n{log}"
    );
    assert_eq!(
        snapshots_started(&log, pg_server_version_num(&client).await),
        0,
        "the rows were read again after the promotion:\n{log}"
    );
    assert_eq!(
        checkpoint_of(&name).await.source.timeline,
        Some(after as u32),
        "the checkpoint records the new timeline"
    );
    drop(agent);
    drop(pg);
}
