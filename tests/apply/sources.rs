//! Where `apply` reads from: the event store instead of table topics, and `--from` for
//! partitions the target holds no offset for (stored offsets win on every later start).

use std::time::Duration;

use crate::common::agent::{read_topic, Agent};
use crate::common::pgcase::PgCase;
use crate::common::{pg_connect, wait_until, FreshPgDb};
use crate::support::{apply_toml, rows, wait_count, wait_equal, Apply};

#[tokio::test(flavor = "multi_thread")]
async fn apply_reads_the_event_store_into_one_table_per_source_table() {
    let PgCase {
        admin,
        cfg,
        db: _db,
        cleanup: _cleanup,
        ..
    } = PgCase::new(
        "apply_store",
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(6,2));
         CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (b, a));
         CREATE TABLE skipped (id int PRIMARY KEY);
         INSERT INTO items SELECT i, 'n' || i, i FROM generate_series(1, 30) i;
         INSERT INTO pairs SELECT i, 'k' || (i % 3), i FROM generate_series(1, 12) i;
         INSERT INTO skipped VALUES (1);
         CREATE PUBLICATION cdc_pub FOR TABLE items, pairs, skipped;",
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_store_target").await;
    let target = pg_connect(&target_db.url).await;
    let agent = Agent::start(&cfg);
    let mut apply = Apply::start(&apply_toml(
        &format!(
            "event_store = \"{}\"\ninclude_tables = [\"public\\\\.(items|pairs)\"]",
            cfg.event_store_topic
        ),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "batch_max_ms = 50\ntopic_refresh_seconds = 1",
    ));
    agent.wait_streaming(Duration::from_secs(60));
    admin
        .batch_execute(
            "UPDATE items SET name = name || '!', price = price + 0.5 WHERE id % 3 = 0;
             DELETE FROM items WHERE id % 5 = 0;
             UPDATE pairs SET v = v * 10 WHERE a % 2 = 0;
             DELETE FROM pairs WHERE a = 7;
             INSERT INTO skipped VALUES (2);",
        )
        .await
        .unwrap();
    wait_equal(
        &admin,
        &target,
        "SELECT id::text, name, price::text FROM items ORDER BY id",
        &mut apply,
    )
    .await;
    wait_equal(
        &admin,
        &target,
        "SELECT a::text, b, v::text FROM pairs ORDER BY b, a",
        &mut apply,
    )
    .await;
    // The key comes from the ledger key's JSON, in the source's key order.
    let pk = rows(
        &target,
        "SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = 'pairs'::regclass AND i.indisprimary",
    )
    .await;
    assert_eq!(pk[0][0].as_deref(), Some("b,a"));
    let skipped = rows(&target, "SELECT to_regclass('skipped')::text").await;
    assert_eq!(
        skipped[0][0], None,
        "a table outside include_tables is not applied"
    );
    let stored = rows(&target, "SELECT DISTINCT topic FROM cdc_apply_offsets").await;
    assert_eq!(
        stored,
        vec![vec![Some(cfg.event_store_topic.clone())]],
        "offsets are the event store's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_from_latest_skips_the_backlog_and_a_restart_keeps_the_stored_offsets() {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new(
        "apply_from",
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT i, 'old' FROM generate_series(1, 10) i;
         CREATE PUBLICATION cdc_pub FOR TABLE t;",
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_from_target").await;
    let target = pg_connect(&target_db.url).await;
    let agent = Agent::start(&cfg);
    agent.wait_streaming(Duration::from_secs(60));
    let topic = format!("{name}.public.t");
    let backlog = read_topic(&topic, Duration::from_secs(60), |r| r.len() >= 10);
    assert_eq!(
        backlog.len(),
        10,
        "the snapshot is in the topic before apply starts"
    );

    let mut apply = Apply::start_with(
        &apply_toml(
            &format!("topics = [\"{topic}\"]"),
            &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
            "batch_max_ms = 50",
        ),
        &["--from", "latest"],
    );
    wait_until(Duration::from_secs(60), "the --from offsets stored", || {
        let log = apply.log();
        async move { log.contains("--from start offset stored").then_some(()) }
    })
    .await;
    admin
        .batch_execute("INSERT INTO t SELECT i, 'new' FROM generate_series(11, 15) i")
        .await
        .unwrap();
    wait_count(&target, "SELECT count(*) FROM t", 5, &mut apply).await;
    let have = rows(
        &target,
        "SELECT min(id)::text, max(id)::text, count(*)::text FROM t",
    )
    .await;
    assert_eq!(
        have,
        vec![vec![Some("11".into()), Some("15".into()), Some("5".into())]],
        "only what was produced after the start"
    );

    // Restarted with the same --from latest: the stored offsets win, nothing is skipped.
    let mut apply = apply.kill_and_restart();
    wait_until(Duration::from_secs(60), "the restart's log line", || {
        let log = apply.log();
        async move { log.contains("wins over --from").then_some(()) }
    })
    .await;
    admin
        .batch_execute("INSERT INTO t VALUES (16, 'after restart')")
        .await
        .unwrap();
    wait_count(&target, "SELECT count(*) FROM t", 6, &mut apply).await;
    let ids = rows(
        &target,
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM t",
    )
    .await;
    assert_eq!(ids[0][0].as_deref(), Some("11,12,13,14,15,16"));
}
