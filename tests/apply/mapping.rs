//! `[tables]` mapping, include/exclude, and the `[http]` endpoint of `apply`: a renamed target
//! table with a renamed and a left-out column, an excluded table that never reaches the
//! target, and the metrics and probes telling what was applied and whether apply caught up.

use std::time::Duration;

use crate::common::agent::Agent;
use crate::common::ops::{get, scrape, value};
use crate::common::pgcase::PgCase;
use crate::common::{pg_connect, wait_until, FreshPgDb};
use crate::support::{apply_toml, rows, wait_equal, Apply, CATCH_UP};

const DDL: &str = "
    CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, note text, amount numeric(8,2));
    CREATE TABLE audit (id int PRIMARY KEY, what text);
    CREATE TABLE tags (id int PRIMARY KEY, label text);
    INSERT INTO orders SELECT i, i % 7, 'secret ' || i, i * 2.5 FROM generate_series(1, 40) i;
    INSERT INTO audit SELECT i, 'a' || i FROM generate_series(1, 5) i;
    INSERT INTO tags SELECT i, 't' || i FROM generate_series(1, 5) i;
    CREATE PUBLICATION cdc_pub FOR TABLE orders, audit, tags;";

#[tokio::test(flavor = "multi_thread")]
async fn apply_maps_tables_and_columns_skips_excluded_tables_and_reports_it_in_metrics_and_probes()
{
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new("apply_map", DDL, "").await;
    let target_db = FreshPgDb::create("apply_map_target").await;
    let target = pg_connect(&target_db.url).await;
    let agent = Agent::start(&cfg);
    let mut apply = Apply::start(&apply_toml(
        &format!(
            "topic_regex = \"{name}\\\\.public\\\\..*\"\nexclude_tables = [\"public\\\\.audit\"]"
        ),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "topic_refresh_seconds = 1\nbatch_max_ms = 50\n\
         [http]\nlisten = \"127.0.0.1:0\"\nready_max_lag_records = 0\n\
         [tables.\"public.orders\"]\ntarget = \"orders_view\"\n\
         columns = { customer_id = \"customer\" }\nexclude_columns = [\"note\"]",
    ));
    let addr = apply.http_addr(Duration::from_secs(30));
    agent.wait_streaming(Duration::from_secs(60));
    admin
        .batch_execute(
            "UPDATE orders SET amount = amount + 1, note = 'changed' WHERE id % 4 = 0;
             DELETE FROM orders WHERE id % 9 = 0;
             INSERT INTO audit VALUES (6, 'a6');
             INSERT INTO tags VALUES (6, 't6');",
        )
        .await
        .unwrap();

    // The source's orders, under the target's names, without the left-out column.
    tokio::time::timeout(CATCH_UP, async {
        loop {
            let want = rows(
                &admin,
                "SELECT id::text, customer_id::text, amount::text FROM orders ORDER BY id",
            )
            .await;
            let have = target
                .query(
                    "SELECT id::text, customer::text, amount::text FROM orders_view ORDER BY id",
                    &[],
                )
                .await
                .map(|rs| {
                    rs.iter()
                        .map(|r| (0..3).map(|i| r.get::<_, Option<String>>(i)).collect())
                        .collect::<Vec<Vec<Option<String>>>>()
                })
                .unwrap_or_default();
            if have == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("orders_view never equalled orders; log:\n{}", apply.log()));
    wait_equal(
        &admin,
        &target,
        "SELECT id::text, label FROM tags ORDER BY id",
        &mut apply,
    )
    .await;
    let columns = rows(
        &target,
        "SELECT string_agg(attname::text, ',' ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = 'orders_view'::regclass AND attnum > 0 AND NOT attisdropped",
    )
    .await;
    assert_eq!(columns[0][0].as_deref(), Some("id,customer,amount"));
    let tables = rows(
        &target,
        "SELECT string_agg(relname::text, ',' ORDER BY relname) FROM pg_class
         WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
    )
    .await;
    assert_eq!(
        tables[0][0].as_deref(),
        Some("cdc_apply_offsets,orders_view,tags"),
        "the excluded table is not created and no table keeps its source name"
    );
    // The excluded table's offsets moved all the same: nothing of it is read again.
    let audit_offset = rows(
        &target,
        &format!(
            "SELECT next_offset::text FROM cdc_apply_offsets WHERE topic = '{name}.public.audit'"
        ),
    )
    .await;
    assert_eq!(audit_offset.len(), 1, "{audit_offset:?}");

    // The metrics count what was applied, by target table and op.
    let s = scrape(addr).await;
    let upserts = value(
        &s,
        "cdc_agent_apply_events_total",
        &[("table", "orders_view"), ("op", "upsert")],
    );
    assert_eq!(upserts, Some(50.0), "40 snapshot rows + 10 updates");
    let deletes = value(
        &s,
        "cdc_agent_apply_events_total",
        &[("table", "orders_view"), ("op", "delete")],
    );
    assert_eq!(deletes, Some(4.0));
    assert!(
        value(&s, "cdc_agent_apply_events_total", &[("table", "audit")]).is_none(),
        "nothing of the excluded table is applied"
    );
    assert!(value(&s, "cdc_agent_apply_batches_total", &[]).unwrap_or(0.0) >= 1.0);
    assert!(s
        .samples
        .iter()
        .any(|x| x.metric == "cdc_agent_apply_batch_duration_seconds_count"));
    // Caught up: every partition's lag is 0 and /readyz says so (the bound is 0 records).
    let ready = wait_until(Duration::from_secs(30), "/readyz 200", || async {
        let (code, body) = get(addr, "/readyz").await?;
        (code == 200).then_some(body)
    })
    .await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["phase"], "applying", "{ready}");
    assert_eq!(ready["waiting_for"], serde_json::Value::Null, "{ready}");
    let s = scrape(addr).await;
    let lag = value(
        &s,
        "cdc_agent_apply_lag_records",
        &[("topic", &format!("{name}.public.orders"))],
    );
    assert_eq!(lag, Some(0.0));
    assert_eq!(
        get(addr, "/healthz").await.map(|(c, _)| c),
        Some(200),
        "the loop beats"
    );

    drop(apply);

    // Not ready, and saying why: an apply whose target database does not answer.
    let mut away = Apply::start(&apply_toml(
        &format!("topics = [\"{name}.public.tags\"]"),
        "kind = \"postgres\"\nurl = \"postgres://nobody@127.0.0.1:1/none\"",
        "[http]\nlisten = \"127.0.0.1:0\"",
    ));
    let addr = away.http_addr(Duration::from_secs(30));
    let body = wait_until(
        Duration::from_secs(30),
        "/readyz naming the retry",
        || async {
            let (code, body) = get(addr, "/readyz").await?;
            (code == 503 && body.contains("retry")).then_some(body)
        },
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["phase"], "retrying", "{json}");
    assert!(
        json["waiting_for"]
            .as_str()
            .is_some_and(|w| w.contains("connect to the target database")),
        "{json}"
    );
    assert_eq!(get(addr, "/healthz").await.map(|(c, _)| c), Some(200));
    away.assert_alive();
}
