//! `apply` into PostgreSQL: after a mixed workload the target equals the source, column by
//! column, with the target tables created and evolved by `apply` itself.

use std::time::Duration;

use crate::common::agent::Agent;
use crate::common::pgcase::PgCase;
use crate::common::{pg_connect, FreshPgDb};
use crate::support::{apply_toml, wait_equal, Apply};
use crate::workload;

/// Every column of `items` as text, by key.
pub const ITEMS: &str = "SELECT id::text, name, price::text, qty::text, big, encode(data, 'hex'),
    created::text, at::text, flag::text, version::text, note FROM items ORDER BY id";

/// Every column of `tags` as text, by key.
pub const TAGS: &str = "SELECT id::text, label FROM tags ORDER BY id";

#[tokio::test(flavor = "multi_thread")]
async fn apply_keeps_a_postgres_read_model_equal_to_its_source_under_a_mixed_workload() {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new("apply_pg", workload::SOURCE_DDL, "").await;
    let target_db = FreshPgDb::create("apply_pg_target").await;
    let target = pg_connect(&target_db.url).await;
    let agent = Agent::start(&cfg);
    let mut apply = Apply::start(&apply_toml(
        &format!("topic_regex = \"{name}\\\\.public\\\\..*\""),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "schema_evolution = \"basic\"\ntopic_refresh_seconds = 1\nbatch_max_ms = 50",
    ));
    agent.wait_streaming(Duration::from_secs(60));
    workload::run(&admin).await;
    workload::assert_placeholder_published(&format!("{name}.public.items"));

    let items = wait_equal(&admin, &target, ITEMS, &mut apply).await;
    wait_equal(&admin, &target, TAGS, &mut apply).await;
    // What the comparison covered: the moved key, the re-inserted key, the large values kept
    // through updates that did not send them, and the added column.
    let id = |k: &str| items.iter().find(|r| r[0].as_deref() == Some(k));
    assert!(id("5").is_none() && id("1005").is_some(), "{items:?}");
    assert_eq!(id("8").unwrap()[1].as_deref(), Some("again"));
    let big10 = id("10").unwrap();
    assert_eq!(big10[4].as_ref().map(String::len), Some(16_000));
    assert_eq!(big10[10].as_deref(), Some("late"));

    // The target's types are the source's (numeric keeps its scale, timestamps their µs).
    let types = crate::support::rows(
        &target,
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
         WHERE a.attrelid = 'items'::regclass AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
    )
    .await;
    let types: Vec<String> = types
        .iter()
        .map(|r| format!("{} {}", r[0].as_deref().unwrap(), r[1].as_deref().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            "id integer",
            "name text",
            "price numeric(10,2)",
            "qty bigint",
            "big text",
            "data bytea",
            "created date",
            "at timestamp without time zone",
            "flag boolean",
            "version integer",
            "note text"
        ]
    );
    // The offsets sit in the target, one row per partition read.
    let stored = crate::support::rows(
        &target,
        "SELECT topic, next_offset::text FROM cdc_apply_offsets ORDER BY topic",
    )
    .await;
    assert_eq!(stored.len(), 2, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_refuses_a_column_type_change_with_the_fix() {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new(
        "apply_type",
        "CREATE TABLE t (id int PRIMARY KEY, n int);
         INSERT INTO t VALUES (1, 1);
         CREATE PUBLICATION cdc_pub FOR TABLE t;",
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_type_target").await;
    let target = pg_connect(&target_db.url).await;
    let agent = Agent::start(&cfg);
    let mut apply = Apply::start(&apply_toml(
        &format!("topics = [\"{name}.public.t\"]"),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "schema_evolution = \"basic\"\ntopic_refresh_seconds = 1\nbatch_max_ms = 50",
    ));
    agent.wait_streaming(Duration::from_secs(60));
    wait_equal(
        &admin,
        &target,
        "SELECT id::text, n::text FROM t ORDER BY id",
        &mut apply,
    )
    .await;

    admin
        .batch_execute("ALTER TABLE t ALTER COLUMN n TYPE bigint; INSERT INTO t VALUES (2, 2)")
        .await
        .unwrap();
    let code = apply.wait_exit(Duration::from_secs(120));
    let log = apply.log();
    assert_eq!(
        code,
        Some(1),
        "apply should stop on a type change; log:\n{log}"
    );
    assert!(
        log.contains("column `n` is `integer`")
            && log.contains("`bigint`")
            && log.contains("fix: change the target column (`ALTER TABLE"),
        "the error names the column, both types and the fix; log:\n{log}"
    );
    // Nothing of the refused batch was applied.
    let rows = crate::support::rows(&target, "SELECT id::text FROM t ORDER BY id").await;
    assert_eq!(rows, vec![vec![Some("1".to_string())]]);
}
