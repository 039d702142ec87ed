//! Inputs from the outside world that once made the agent stop for good or retry forever:
//! table names Kafka refuses as topic names, and single events Kafka cannot take (the
//! dead-letter topic).

use crate::common;

use std::time::Duration;

use common::agent::{field, read_topic, Agent, AgentConfig, AvroDecoder};
use common::cdc::{as_opt_string, decode_table_change, StackCleanup};
use common::pgcase::PgCase;
use common::{pg_connect, stack_env, unique_name, FreshPgDb};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn a_table_whose_name_kafka_refuses_lands_on_the_topic_debezium_would_name() {
    let PgCase {
        db: _db,
        admin,
        name,
        cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "topicname",
        r#"CREATE TABLE "Order Lines$" (id int PRIMARY KEY, item text);
               INSERT INTO "Order Lines$" VALUES (1, 'snapshot');
               CREATE PUBLICATION cdc_pub FOR TABLE "Order Lines$";"#,
        "",
    )
    .await;
    let agent = Agent::start(&cfg);
    // Space and `$` are not valid in a topic name: each becomes `_`.
    let topic = format!("{name}.public.Order_Lines_");
    agent.wait_streaming(WAIT);
    admin
        .batch_execute(r#"INSERT INTO "Order Lines$" VALUES (2, 'streamed')"#)
        .await
        .unwrap();
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 2);
    assert_eq!(recs.len(), 2, "records on {topic}; log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let items: Vec<(i64, Option<String>)> = recs
        .iter()
        .map(|r| {
            let c = decode_table_change(&mut dec, r, "id");
            (
                c.id,
                as_opt_string(field(c.after.as_ref().unwrap(), "item")),
            )
        })
        .collect();
    assert_eq!(
        items,
        [(1, Some("snapshot".into())), (2, Some("streamed".into()))]
    );
    // The event's own table name is unchanged: only the topic is sanitised.
    let v = dec.decode(recs[1].value.as_ref().unwrap());
    let source = field(&v, "source");
    assert_eq!(
        as_opt_string(field(source, "table")).as_deref(),
        Some("Order Lines$")
    );
}

#[tokio::test]
async fn a_topic_route_kafka_refuses_stops_the_source_naming_the_route_not_a_grant() {
    let case = PgCase::new(
        "badroute",
        "CREATE TABLE t (id int PRIMARY KEY);
             INSERT INTO t VALUES (1);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        "[topic_routes]\n\"public.t\" = \"bad topic!\"",
    )
    .await;
    // Routes are used as written (the operator chose them): this one is not a valid name.
    let mut agent = Agent::start(&case.cfg);
    let exit = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(exit, Some(1), "exit code; log:\n{log}");
    assert!(
        log.contains("kafka refused to create topic") && log.contains("topic_routes"),
        "no definite error naming the route; log:\n{log}"
    );
    assert!(!log.contains("grant CREATE"), "misleading fix; log:\n{log}");
    assert!(
        !log.contains("source failed, retrying"),
        "the refusal was retried; log:\n{log}"
    );
}

/// The limit of the table topic the dead-letter tests create themselves, as an operator who
/// keeps records small would.
const SMALL_TOPIC_BYTES: usize = 64 * 1024;

/// Creates `topic` (one partition) with `max.message.bytes = max_bytes` before the agent
/// starts, so the agent finds it and keeps its settings.
async fn create_topic_with_limit(topic: &str, max_bytes: usize) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .create()
        .unwrap();
    let max = max_bytes.to_string();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("max.message.bytes", &max);
    for r in admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// A database with table `big (id int PRIMARY KEY, payload text)` published, and an agent
/// configuration for it whose table topic exists already with a 64 KiB limit.
async fn big_table_setup(what: &str) -> (FreshPgDb, tokio_postgres::Client, AgentConfig, String) {
    let db = FreshPgDb::create(what).await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE big (id int PRIMARY KEY, payload text);
             CREATE PUBLICATION cdc_pub FOR TABLE big;",
        )
        .await
        .unwrap();
    let name = unique_name(what);
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    create_topic_with_limit(&format!("{name}.public.big"), SMALL_TOPIC_BYTES).await;
    (db, admin, cfg, name)
}

/// 100 KiB of hex (incompressible enough: md5 of consecutive numbers), over the 64 KiB limit.
const BIG_PAYLOAD_SQL: &str =
    "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 3200) AS i)";
const BIG_PAYLOAD_LEN: usize = 3200 * 32;

#[tokio::test]
async fn a_row_too_large_for_its_topic_goes_to_the_dead_letter_topic_with_why_and_the_stream_goes_on(
) {
    let (_db, admin, mut cfg, name) = big_table_setup("deadletter").await;
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let dead_topic = format!("{name}.dead-letter");
    cfg.extra_kafka_toml = format!("dead_letter_topic = \"{dead_topic}\"\n");
    let agent = Agent::start(&cfg);
    let topic = format!("{name}.public.big");
    agent.wait_streaming(WAIT);
    admin
        .batch_execute(&format!(
            "INSERT INTO big VALUES (1, 'small');
             INSERT INTO big VALUES (2, {BIG_PAYLOAD_SQL});
             INSERT INTO big VALUES (3, 'after');"
        ))
        .await
        .unwrap();

    // The table topic has the rows that fit; the stream went on past the large one.
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 2);
    let mut dec = AvroDecoder::new();
    let ids: Vec<i64> = recs
        .iter()
        .map(|r| decode_table_change(&mut dec, r, "id").id)
        .collect();
    assert_eq!(ids, [1, 3], "table topic; log:\n{}", agent.log());

    // The large one is in the dead-letter topic, as JSON, with headers saying why.
    let dead = read_topic(&dead_topic, WAIT, |r| !r.is_empty());
    assert_eq!(dead.len(), 1, "dead-letter records; log:\n{}", agent.log());
    let d = &dead[0];
    let h = |k: &str| {
        d.headers
            .get(k)
            .unwrap_or_else(|| panic!("no header {k} in {:?}", d.headers))
            .as_str()
    };
    assert_eq!(h("cdc.reason"), "too_large");
    assert_eq!(h("cdc.source"), name);
    assert_eq!(h("cdc.table"), "public.big");
    assert_eq!(h("cdc.topic"), topic);
    assert!(!h("cdc.position").is_empty());
    assert!(h("cdc.error").contains("larger than"), "{}", h("cdc.error"));
    assert!(h("cdc.size").parse::<usize>().unwrap() > SMALL_TOPIC_BYTES);
    assert_eq!(
        d.key.as_deref(),
        Some(format!("{name}/public.big/{{\"id\":2}}").as_bytes())
    );
    let v: serde_json::Value = serde_json::from_slice(d.value.as_ref().unwrap()).unwrap();
    assert_eq!(v["op"], "c");
    assert_eq!(v["table"], "public.big");
    assert_eq!(v["key"]["id"], 2);
    assert_eq!(v["after"]["id"], 2);
    assert_eq!(
        v["after"]["payload"].as_str().map(str::len),
        Some(BIG_PAYLOAD_LEN)
    );

    // Counted, and logged as a warning naming the topic.
    let addr = agent.http_addr(WAIT);
    let s = common::ops::scrape(addr).await;
    assert_eq!(
        common::ops::value(
            &s,
            "cdc_agent_dead_letter_records_total",
            &[
                ("source", name.as_str()),
                ("table", "public.big"),
                ("reason", "too_large")
            ]
        ),
        Some(1.0)
    );
    assert!(
        agent.log().contains("event sent to the dead-letter topic"),
        "no warning; log:\n{}",
        agent.log()
    );
}

#[tokio::test]
async fn without_a_dead_letter_topic_a_row_too_large_stops_the_source_naming_the_fix() {
    let (_db, admin, cfg, name) = big_table_setup("toolarge").await;
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .batch_execute(&format!("INSERT INTO big VALUES (1, {BIG_PAYLOAD_SQL})"))
        .await
        .unwrap();
    let exit = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(exit, Some(1), "exit code; log:\n{log}");
    assert!(
        log.contains("too large") && log.contains("max.message.bytes"),
        "the error does not name the fix; log:\n{log}"
    );
    assert!(
        !log.contains("source failed, retrying"),
        "the error was retried; log:\n{log}"
    );
}
