//! `apply` into SQLite (the embedded read model): after the mixed workload the SQLite file
//! equals the source, column by column.

use std::time::Duration;

use crate::common::agent::Agent;
use crate::common::pgcase::PgCase;
use crate::support::{apply_toml, rows, Apply, CATCH_UP};
use crate::workload;

/// The source's `items` in the text forms the SQLite target stores.
const SOURCE_ITEMS: &str = "SELECT id::text, name, price::text, qty::text, big,
    encode(data, 'hex'), created::text, to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'),
    flag::int::text, version::text, note FROM items ORDER BY items.id";

const TARGET_ITEMS: &str = "SELECT CAST(id AS TEXT), name, price, CAST(qty AS TEXT), big,
    CASE WHEN data IS NULL THEN NULL ELSE lower(hex(data)) END, created, at, CAST(flag AS TEXT), CAST(version AS TEXT), note
    FROM items ORDER BY id";

fn sqlite_rows(path: &std::path::Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let Ok(conn) = rusqlite::Connection::open(path) else {
        return Vec::new();
    };
    let Ok(mut st) = conn.prepare(sql) else {
        return Vec::new(); // the table is not there yet
    };
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Blob(b) => Some(format!("{b:?}")),
                    v => Some(
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|_| format!("{v:?}")),
                    ),
                })
            })
            .collect()
    })
    .and_then(|rs| rs.collect())
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_keeps_an_sqlite_read_model_equal_to_its_source_under_a_mixed_workload() {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new("apply_sqlite", workload::SOURCE_DDL, "").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("read-model.db");
    let agent = Agent::start(&cfg);
    let mut apply = Apply::start(&apply_toml(
        &format!("topic_regex = \"{name}\\\\.public\\\\..*\""),
        &format!("kind = \"sqlite\"\npath = \"{}\"", file.display()),
        "schema_evolution = \"basic\"\ntopic_refresh_seconds = 1\nbatch_max_ms = 50",
    ));
    agent.wait_streaming(Duration::from_secs(60));
    workload::run(&admin).await;

    for (source_sql, target_sql) in [
        (SOURCE_ITEMS, TARGET_ITEMS),
        (
            "SELECT id::text, label FROM tags ORDER BY tags.id",
            "SELECT CAST(id AS TEXT), label FROM tags ORDER BY id",
        ),
    ] {
        let want = rows(&admin, source_sql).await;
        let start = std::time::Instant::now();
        loop {
            apply.assert_alive();
            let have = sqlite_rows(&file, target_sql);
            if have == want {
                break;
            }
            assert!(
                start.elapsed() < CATCH_UP,
                "sqlite target differs from source: {} vs {} rows; first differing: {:?} vs \
                 {:?}; log:\n{}",
                want.len(),
                have.len(),
                want.iter().find(|r| !have.contains(r)),
                have.iter().find(|r| !want.contains(r)),
                apply.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let offsets = sqlite_rows(&file, "SELECT topic FROM cdc_apply_offsets");
    assert_eq!(offsets.len(), 2, "{offsets:?}");
}
