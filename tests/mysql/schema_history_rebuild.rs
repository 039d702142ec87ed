//! `schema_history_recovery = "rebuild"` is only as safe as its binlog scan: against the
//! stack's MariaDB, a scan from a resume position finds the DDL on captured databases written
//! after it (and none on other databases), and a rebuild is refused when there is such DDL and
//! granted — one snapshot record numbered after the checkpoint's — when there is none.

use crate::common;

use cdc_agent::source::mysql::catalog::{BinlogPosition, Catalog};
use cdc_agent::source::mysql::history::{ddl_since, rebuild_if_safe};
use cdc_agent::source::SourceError;
use common::{stack_env, unique_name};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

async fn connect(var: &str) -> Conn {
    Conn::new(Opts::from_url(&stack_env(var)).unwrap())
        .await
        .unwrap_or_else(|e| panic!("connect to MariaDB: {e}"))
}

async fn position(conn: &mut Conn) -> BinlogPosition {
    // By name: MySQL adds a fifth column (Executed_Gtid_Set) to MariaDB's four.
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .unwrap();
    BinlogPosition {
        file: row.get("File").unwrap(),
        pos: row.get("Position").unwrap(),
    }
}

/// A replica id no other test uses at the same time.
fn server_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    200_000 + (std::process::id() % 10_000) * 100 + nanos % 100
}

#[tokio::test]
async fn a_rebuild_is_granted_without_ddl_since_the_resume_position_and_refused_with_it() {
    let mut admin = connect("MYSQL_URL").await;
    let db = unique_name("hist_rb");
    let other = unique_name("hist_rb_other");
    admin
        .query_drop(format!(
            "CREATE DATABASE `{db}`; CREATE DATABASE `{other}`; \
             CREATE TABLE `{db}`.t (id INT PRIMARY KEY, a INT)"
        ))
        .await
        .unwrap();
    let resume = position(&mut admin).await;
    // Rows and DDL elsewhere do not make the captured tables differ.
    admin
        .query_drop(format!(
            "INSERT INTO `{db}`.t VALUES (1, 1), (2, 2); UPDATE `{db}`.t SET a = 3; \
             CREATE TABLE `{other}`.u (x INT); ALTER TABLE `{other}`.u ADD y INT"
        ))
        .await
        .unwrap();
    let captures = |d: &str| d == db;
    let found = ddl_since(
        connect("MYSQL_AGENT_URL").await,
        server_id(),
        &resume,
        captures,
    )
    .await
    .unwrap();
    assert!(found.is_empty(), "{found:?}");

    let mut cat = Catalog::default();
    cdc_agent::source::mysql::ddl::apply(
        &mut cat,
        Some(&db),
        "CREATE TABLE t (id INT PRIMARY KEY, a INT)",
    )
    .unwrap();
    let (h, recs) = rebuild_if_safe(
        connect("MYSQL_AGENT_URL").await,
        server_id(),
        "shop",
        "shop.schema-history",
        &resume,
        None,
        &cat,
        Some(7),
        captures,
    )
    .await
    .unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].seq, 8);
    assert!(recs[0].snapshot);
    assert_eq!(recs[0].position, resume);
    h.verify(Some(7), "shop.schema-history").unwrap();
    assert_eq!(h.catalog_at(&resume), cat);

    // Now an ALTER on a captured table: the scan finds it where the binlog has it.
    let before_alter = position(&mut admin).await;
    admin
        .query_drop(format!("ALTER TABLE `{db}`.t ADD b INT"))
        .await
        .unwrap();
    let found = ddl_since(
        connect("MYSQL_AGENT_URL").await,
        server_id(),
        &resume,
        captures,
    )
    .await
    .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].statement.contains("ADD b INT"), "{found:?}");
    assert!(
        found[0].position >= before_alter,
        "{found:?} before {before_alter}"
    );
    let e = rebuild_if_safe(
        connect("MYSQL_AGENT_URL").await,
        server_id(),
        "shop",
        "shop.schema-history",
        &resume,
        None,
        &cat,
        Some(7),
        captures,
    )
    .await
    .unwrap_err();
    let SourceError::Definite(msg) = e else {
        panic!("{e}")
    };
    println!("refused rebuild: {msg}");
    assert!(
        msg.contains("shop.schema-history") && msg.contains("ADD b INT"),
        "{msg}"
    );
    assert!(msg.contains("snapshot"), "{msg}");
    admin
        .query_drop(format!("DROP DATABASE `{db}`; DROP DATABASE `{other}`"))
        .await
        .unwrap();
}
