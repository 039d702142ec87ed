//! The HTTP endpoint against the real stack: `/metrics` is Prometheus text whose counters
//! follow the load, `/readyz` turns 503 (saying why) while the database is away and 200 when it
//! is back, and `/healthz` stays 200 throughout — an outage is not a dead agent.
//!
//! The outage test stops and starts the stack's PostgreSQL: it must not run while another test
//! binary uses the stack (cargo runs test binaries one after another; the tests of this binary
//! are serialised), and it starts PostgreSQL again even when it fails.

use crate::common;

use std::time::Duration;

use common::agent::{Agent, AgentConfig};
use common::ops::{get, readiness, scrape, stack, value, wait_logged, PostgresBack};
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial_test::serial(stack)]
async fn metrics_parse_as_prometheus_text_and_their_counters_follow_the_load() {
    let db = FreshPgDb::create("ops_metrics").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL);
             INSERT INTO t SELECT g, 'snap' FROM generate_series(1, 300) g;
             ANALYZE t;
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("ops_metrics");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    let agent = Agent::start(&cfg);
    let addr = agent.http_addr(TIMEOUT);
    agent.wait_streaming(TIMEOUT);

    let src = name.as_str();
    let table = [("source", src), ("table", "public.t")];
    let before = wait_until(TIMEOUT, "snapshot rows in /metrics", || async {
        let s = scrape(addr).await;
        (value(&s, "cdc_agent_snapshot_rows_total", &[("source", src)]) == Some(300.0)).then_some(s)
    })
    .await;
    let reads = value(
        &before,
        "cdc_agent_events_total",
        &[table[0], table[1], ("op", "r")],
    );
    assert_eq!(reads, Some(300.0), "snapshot events by op r");
    for family in [
        "cdc_agent_event_bytes_total",
        "cdc_agent_produce_latency_seconds_count",
        "cdc_agent_in_flight_records",
        "cdc_agent_kafka_acked_records_total",
        "cdc_agent_kafka_wait_seconds_total",
        "cdc_agent_registry_requests_total",
        "cdc_agent_process_resident_memory_bytes",
        "cdc_agent_snapshot_progress_ratio",
        "cdc_agent_source_state",
        "cdc_agent_source_lag_seconds",
    ] {
        assert!(
            before.samples.iter().any(|s| s.metric == family),
            "{family} missing from /metrics"
        );
    }
    let creates_before = value(
        &before,
        "cdc_agent_events_total",
        &[table[0], table[1], ("op", "c")],
    )
    .unwrap_or(0.0);
    let bytes_before = value(&before, "cdc_agent_event_bytes_total", &table).unwrap();
    let produced_before = value(
        &before,
        "cdc_agent_kafka_acked_records_total",
        &[("source", src)],
    )
    .unwrap();
    let commits_before = value(
        &before,
        "cdc_agent_kafka_transactions_total",
        &[("source", src), ("outcome", "committed")],
    )
    .unwrap();

    // Load: 20 transactions of 50 inserts, then updates and deletes.
    for k in 0..20 {
        admin
            .batch_execute(&format!(
                "INSERT INTO t SELECT g, 'live' FROM generate_series({}, {}) g",
                1000 + k * 50,
                1000 + k * 50 + 49
            ))
            .await
            .unwrap();
    }
    admin
        .batch_execute("UPDATE t SET v = 'upd' WHERE id <= 100; DELETE FROM t WHERE id >= 1900")
        .await
        .unwrap();

    // Events are counted when handed to Kafka, records when Kafka acknowledged them: wait
    // for both. Each event is a table record plus its ledger copy (deletes add a tombstone).
    let after = wait_until(
        TIMEOUT,
        "live events and their acknowledgements in /metrics",
        || async {
            let s = scrape(addr).await;
            let c = value(
                &s,
                "cdc_agent_events_total",
                &[table[0], table[1], ("op", "c")],
            );
            let u = value(
                &s,
                "cdc_agent_events_total",
                &[table[0], table[1], ("op", "u")],
            );
            let d = value(
                &s,
                "cdc_agent_events_total",
                &[table[0], table[1], ("op", "d")],
            );
            let acked = value(
                &s,
                "cdc_agent_kafka_acked_records_total",
                &[("source", src)],
            )
            .unwrap_or(0.0);
            (c == Some(creates_before + 1000.0)
                && u == Some(100.0)
                && d == Some(100.0)
                && acked >= produced_before + 2500.0)
                .then_some(s)
        },
    )
    .await;
    let bytes_after = value(&after, "cdc_agent_event_bytes_total", &table).unwrap();
    let produced_after = value(
        &after,
        "cdc_agent_kafka_acked_records_total",
        &[("source", src)],
    )
    .unwrap();
    let commits_after = value(
        &after,
        "cdc_agent_kafka_transactions_total",
        &[("source", src), ("outcome", "committed")],
    )
    .unwrap();
    let rss = value(&after, "cdc_agent_process_resident_memory_bytes", &[]).unwrap();
    let registry = value(
        &after,
        "cdc_agent_registry_requests_total",
        &[("operation", "register")],
    )
    .unwrap();
    println!(
        "event bytes {bytes_before} -> {bytes_after}; records acknowledged {produced_before} -> \
         {produced_after}; kafka transactions committed {commits_before} -> {commits_after}; \
         registry registrations {registry}; rss {:.1} MiB",
        rss / 1048576.0
    );
    assert!(bytes_after > bytes_before);
    // The latency histogram samples one record in 64: 2,500 records give it new samples.
    let latencies = |m: &prometheus_parse::Scrape| {
        value(
            m,
            "cdc_agent_produce_latency_seconds_count",
            &[("source", src)],
        )
    };
    assert!(latencies(&after).unwrap() > latencies(&before).unwrap());
    assert!(commits_after > commits_before);
    assert!(registry >= 2.0, "key and value schema registered");
    assert!(rss > 0.0);
    assert_eq!(
        value(
            &after,
            "cdc_agent_source_state",
            &[("source", src), ("state", "streaming")]
        ),
        Some(1.0)
    );
    let (ok, body) = get(addr, "/healthz").await.unwrap();
    assert_eq!((ok, body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial_test::serial(stack)]
async fn readyz_turns_503_with_the_reason_while_the_database_is_down_and_200_when_it_returns() {
    let db = FreshPgDb::create("ops_readyz").await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("ops_readyz");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    let agent = Agent::start(&cfg);
    let addr = agent.http_addr(TIMEOUT);
    let up = wait_until(TIMEOUT, "/readyz 200", || async {
        readiness(addr, &name).await.filter(|(ok, _)| *ok)
    })
    .await;
    println!("ready: {}", up.1);

    let back = PostgresBack;
    assert!(stack("stop", "postgres"), "stop postgres");
    let down = wait_logged(
        &agent,
        TIMEOUT,
        "/readyz 503 naming the database",
        || async {
            readiness(addr, &name)
                .await
                .filter(|(ok, s)| !ok && s["state"] == "waiting_for_database")
        },
    )
    .await;
    println!("database stopped: {}", down.1);
    assert!(
        down.1["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("waiting for database")),
        "{}",
        down.1
    );
    let (health, _) = get(addr, "/healthz").await.unwrap();
    assert_eq!(health, 200, "an outage is not a dead agent");
    let s = scrape(addr).await;
    assert_eq!(
        value(
            &s,
            "cdc_agent_source_state",
            &[("source", name.as_str()), ("state", "waiting_for_database")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "cdc_agent_source_ready", &[("source", name.as_str())]),
        Some(0.0)
    );

    drop(back); // starts PostgreSQL again
    let again = wait_logged(&agent, TIMEOUT, "/readyz 200 again", || async {
        readiness(addr, &name).await.filter(|(ok, _)| *ok)
    })
    .await;
    println!("database back: {}", again.1);
    assert_eq!(again.1["state"], "streaming");
    assert!(
        agent.child.id() > 0 && agent.log().contains("source failed, retrying"),
        "{}",
        agent.log()
    );
}
