//! Features that depend on the server's major version, checked against whatever major runs
//! (the stack's 15; scripts/test-matrix runs every major 12-17): on a server that has the
//! feature the agent uses it, on one that lacks it the agent stops with an error naming the
//! version it needs.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use cdc_agent::ops::exit;
use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder};
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

use crate::bad_input::assert_exits_with;

const WAIT: Duration = Duration::from_secs(90);

/// `server_version_num` of the server under test.
async fn server_version_num(admin: &tokio_postgres::Client) -> i32 {
    admin
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn failover_slot_creates_a_failover_slot_on_17_and_is_refused_naming_17_before() {
    let db = FreshPgDb::create("pgfailover").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY);
             INSERT INTO t VALUES (1);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("pgfailover");
    let slot = name.replace('-', "_");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\nfailover_slot = true\n".into();
    let mut agent = Agent::start(&cfg);
    if server_version_num(&admin).await >= 170000 {
        agent.wait_streaming(WAIT);
        let failover: bool = wait_until(WAIT, "the agent's slot", || async {
            admin
                .query_opt(
                    "SELECT to_jsonb(s)->>'failover' = 'true' FROM pg_replication_slots s \
                     WHERE slot_name = $1",
                    &[&slot],
                )
                .await
                .unwrap()
                .map(|r| r.get::<_, bool>(0))
        })
        .await;
        assert!(
            failover,
            "the slot is a failover slot; log:\n{}",
            agent.log()
        );
    } else {
        assert_exits_with(
            &mut agent,
            exit::FAILURE,
            &[
                "failover_slot = true needs PostgreSQL 17 or later",
                "fix: set failover_slot = false",
            ],
        );
        let slots: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(slots, 0, "no slot was created");
    }
}

#[tokio::test]
async fn publish_via_partition_root_puts_every_partitions_events_on_the_parents_topic_or_is_refused_naming_13(
) {
    let db = FreshPgDb::create("pgparts").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE m (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
             CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');
             CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us');
             INSERT INTO m VALUES (1, 'eu'), (2, 'us');",
        )
        .await
        .unwrap();
    let modern = server_version_num(&admin).await >= 130000;
    // The DBA's publication (the agent's role may not create one), with the option where the
    // server has it.
    admin
        .batch_execute(if modern {
            "CREATE PUBLICATION cdc_parts FOR TABLE m WITH (publish_via_partition_root = true);"
        } else {
            // 12 publishes partitions only, never a partitioned table itself.
            "CREATE PUBLICATION cdc_parts FOR TABLE m_eu, m_us;"
        })
        .await
        .unwrap();
    let name = unique_name("pgparts");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        "[postgres]\npublication = \"cdc_parts\"\npublish_via_partition_root = true\n".into();
    let mut agent = Agent::start(&cfg);
    if !modern {
        assert_exits_with(
            &mut agent,
            exit::FAILURE,
            &[
                "publish_via_partition_root = true needs PostgreSQL 13 or later",
                "fix: set publish_via_partition_root = false",
            ],
        );
        return;
    }
    agent.wait_streaming(WAIT);
    let topic = format!("{name}.public.m");
    // The snapshot first, so the inserts below are stream events, not snapshot rows.
    let snap = read_topic(&topic, WAIT, |r| r.len() >= 2);
    assert_eq!(
        snap.len(),
        2,
        "snapshot of both partitions; log:\n{}",
        agent.log()
    );
    admin
        .batch_execute("INSERT INTO m VALUES (3, 'eu'), (4, 'us');")
        .await
        .unwrap();
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 4);
    let mut dec = AvroDecoder::new();
    let mut seen: Vec<(String, i32, String)> = recs
        .iter()
        .map(|r| {
            let v = dec.decode(r.value.as_ref().expect("no tombstone"));
            let op = match field(&v, "op") {
                Avro::String(s) => s.clone(),
                other => panic!("op: {other:?}"),
            };
            let after = unwrap_union(field(&v, "after"));
            let id = match unwrap_union(field(after, "id")) {
                Avro::Int(i) => *i,
                other => panic!("id: {other:?}"),
            };
            let region = match unwrap_union(field(after, "region")) {
                Avro::String(s) => s.clone(),
                other => panic!("region: {other:?}"),
            };
            (op, id, region)
        })
        .collect();
    seen.sort_by_key(|(_, id, _)| *id);
    assert_eq!(
        seen,
        [
            ("r".to_string(), 1, "eu".to_string()),
            ("r".to_string(), 2, "us".to_string()),
            ("c".to_string(), 3, "eu".to_string()),
            ("c".to_string(), 4, "us".to_string()),
        ],
        "the snapshot and the stream of both partitions on the parent's topic; log:\n{}",
        agent.log()
    );
    // No topic of a partition's own was made.
    for part in ["m_eu", "m_us"] {
        let none = read_topic(
            &format!("{name}.public.{part}"),
            Duration::from_secs(3),
            |r| !r.is_empty(),
        );
        assert!(none.is_empty(), "records on the topic of partition {part}");
    }
}

#[tokio::test]
async fn publish_via_partition_root_on_a_publication_without_it_stops_naming_the_alter_publication()
{
    let db = FreshPgDb::create("pgpartsalter").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE m (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_parts FOR TABLE m;",
        )
        .await
        .unwrap();
    let name = unique_name("pgpartsalter");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        "[postgres]\npublication = \"cdc_parts\"\npublish_via_partition_root = true\n".into();
    let mut agent = Agent::start(&cfg);
    // On 12 the option does not exist: the agent names the version instead.
    let needle = if server_version_num(&admin).await >= 130000 {
        "ALTER PUBLICATION \"cdc_parts\" SET (publish_via_partition_root = true)"
    } else {
        "publish_via_partition_root = true needs PostgreSQL 13 or later"
    };
    assert_exits_with(&mut agent, exit::FAILURE, &[needle]);
}
