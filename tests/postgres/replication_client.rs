//! Our replication client against the stack's real PostgreSQL: authentication as the agent
//! role, replication commands, the exported snapshot, streaming and decoding pgoutput,
//! standby status feedback, and how server errors are classified.
//!
//! Each test makes its own database (dropped with its slots by [`FreshPgDb`]) and reads the
//! server through tokio-postgres as the superuser to check what the client claims.

use crate::common;

use std::time::Duration;

use cdc_agent::source::postgres::pgoutput::{self, Column, LogicalMessage};
use cdc_agent::source::postgres::replication::{
    ReplError, ReplicationClient, ReplicationConfig, ReplicationStream, WalSource,
};
use cdc_agent::source::postgres::wire::{self, Lsn, ReplicationFrame};
use common::{pg_connect, pg_server_version_num, wait_until, FreshPgDb, PG_LOGICAL_MESSAGES};

const WAIT: Duration = Duration::from_secs(30);

fn agent_config(db: &FreshPgDb) -> ReplicationConfig {
    ReplicationConfig::from_url(&db.agent_url).expect("PG_AGENT_URL is a valid connection URL")
}

async fn connect_agent(db: &FreshPgDb) -> ReplicationClient {
    ReplicationClient::connect(&agent_config(db))
        .await
        .unwrap_or_else(|e| panic!("replication connect as the agent role: {e}"))
}

/// A table `items` in a publication `pub_items`.
async fn items_table(db: &FreshPgDb) -> tokio_postgres::Client {
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text);
             CREATE PUBLICATION pub_items FOR TABLE items;",
        )
        .await
        .unwrap();
    admin
}

const PGOUTPUT_OPTIONS: &[(&str, &str)] = &[
    ("proto_version", "2"),
    ("publication_names", "\"pub_items\""),
    ("messages", "true"),
    ("streaming", "on"),
];

/// Before PostgreSQL 14 pgoutput knows neither `messages` nor `streaming` (and protocol 1
/// only): the server refuses them at START_REPLICATION.
const PGOUTPUT_OPTIONS_BEFORE_14: &[(&str, &str)] = &[
    ("proto_version", "1"),
    ("publication_names", "\"pub_items\""),
];

/// The pgoutput options the server of `db` takes: [`PGOUTPUT_OPTIONS`] on 14+.
async fn pgoutput_options(db: &FreshPgDb) -> &'static [(&'static str, &'static str)] {
    let admin = pg_connect(&db.url).await;
    if pg_server_version_num(&admin).await >= PG_LOGICAL_MESSAGES {
        PGOUTPUT_OPTIONS
    } else {
        PGOUTPUT_OPTIONS_BEFORE_14
    }
}

/// One decoded transaction: message kinds in order, inserted rows as text, commit end LSN.
struct Txn {
    kinds: Vec<&'static str>,
    inserted: Vec<Vec<Option<String>>>,
    end_lsn: Lsn,
}

/// Reads the stream until the next commit, through the [`WalSource`] trait the pipeline uses.
async fn next_transaction(stream: &mut impl WalSource) -> Txn {
    let mut txn = Txn {
        kinds: Vec::new(),
        inserted: Vec::new(),
        end_lsn: Lsn::INVALID,
    };
    loop {
        let payload = tokio::time::timeout(WAIT, stream.recv())
            .await
            .expect("replication data within the timeout")
            .expect("recv succeeds")
            .expect("the stream is still open");
        let ReplicationFrame::XLogData(x) = wire::decode_frame(&payload).expect("frame decodes")
        else {
            continue;
        };
        let msg = pgoutput::decode(x.data, false).expect("pgoutput message decodes");
        txn.kinds.push(msg.kind());
        match msg {
            LogicalMessage::Insert(ins) => txn.inserted.push(
                ins.new
                    .iter()
                    .map(|c| match c {
                        Column::Text(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
                        _ => None,
                    })
                    .collect(),
            ),
            LogicalMessage::Commit(c) => {
                txn.end_lsn = c.end_lsn;
                return txn;
            }
            _ => {}
        }
    }
}

async fn confirmed_flush(admin: &tokio_postgres::Client, slot: &str) -> Lsn {
    let row = admin
        .query_one(
            "SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots
             WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap();
    row.get::<_, String>(0).parse().unwrap()
}

async fn streaming_slot(db: &FreshPgDb, slot: &str) -> ReplicationStream {
    let mut repl = connect_agent(db).await;
    repl.create_logical_slot(slot, false, false)
        .await
        .expect("create slot");
    repl.start_replication(slot, Lsn::INVALID, pgoutput_options(db).await)
        .await
        .expect("start replication")
}

#[tokio::test]
async fn the_agent_role_connects_with_scram_and_is_seen_as_a_walsender() {
    let db = FreshPgDb::create("repl_scram").await;
    let admin = pg_connect(&db.url).await;
    let scram: bool = admin
        .query_one(
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'cdc_agent'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(scram, "the agent's password is stored as a SCRAM verifier");

    let mut config = agent_config(&db);
    config.application_name = format!("{}_app", db.name);
    let mut repl = ReplicationClient::connect(&config).await.unwrap();
    // Whatever major runs (scripts/test-matrix runs 12-17): the one the SQL session reports.
    let version: String = admin
        .query_one("SELECT current_setting('server_version')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(repl.parameter("server_version"), Some(version.as_str()));
    let pid = repl.backend_pid().expect("backend key data");
    let seen: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE pid = $1 AND backend_type = 'walsender' AND application_name = $2",
            &[&pid, &config.application_name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 1);
    assert_eq!(repl.show("wal_level").await.unwrap(), "logical");
    // SQL session settings work on a replication=database connection and shape the text
    // output of pgoutput values, which is why the pipeline sets them here too.
    repl.simple_query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'")
        .await
        .unwrap();
    assert_eq!(repl.show("TimeZone").await.unwrap(), "UTC");
    assert_eq!(repl.parameter("TimeZone"), Some("UTC"));
    repl.close().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_a_definite_error_with_sqlstate_28p01() {
    let db = FreshPgDb::create("repl_badpw").await;
    let mut config = agent_config(&db);
    config.password = Some("not-the-password".into());
    let err = ReplicationClient::connect(&config).await.unwrap_err();
    assert_eq!(err.sqlstate(), Some("28P01"), "{err}");
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(
        text.starts_with("server error 28P01") && text.contains("password authentication failed"),
        "{text}"
    );
}

#[tokio::test]
async fn identify_system_reports_the_cluster_timeline_position_and_database() {
    let db = FreshPgDb::create("repl_ident").await;
    let admin = pg_connect(&db.url).await;
    let mut repl = connect_agent(&db).await;
    let id = repl.identify_system().await.unwrap();
    let row = admin
        .query_one(
            "SELECT system_identifier::text, pg_current_wal_lsn()::text FROM pg_control_system()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(id.system_id, row.get::<_, String>(0));
    assert!(id.timeline >= 1);
    assert!(id.xlog_pos.is_valid());
    assert!(id.xlog_pos <= row.get::<_, String>(1).parse::<Lsn>().unwrap());
    assert_eq!(id.database.as_deref(), Some(db.name.as_str()));
}

#[tokio::test]
async fn an_exported_snapshot_sees_exactly_the_rows_before_the_consistent_point() {
    let db = FreshPgDb::create("repl_snap").await;
    let admin = items_table(&db).await;
    admin
        .batch_execute("INSERT INTO items SELECT g, 'before' FROM generate_series(1, 100) g")
        .await
        .unwrap();

    let slot = format!("{}_slot", db.name);
    let mut repl = connect_agent(&db).await;
    let created = repl.create_logical_slot(&slot, true, false).await.unwrap();
    assert_eq!(created.slot_name, slot);
    assert_eq!(created.output_plugin.as_deref(), Some("pgoutput"));
    let snapshot = created.snapshot_name.expect("exported snapshot name");

    admin
        .batch_execute("INSERT INTO items SELECT g, 'after' FROM generate_series(101, 150) g")
        .await
        .unwrap();

    // The replication connection stays idle while the snapshot is imported.
    let reader = pg_connect(&db.agent_url).await;
    reader
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '{snapshot}'"
        ))
        .await
        .expect("import the exported snapshot");
    let in_snapshot: i64 = reader
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    reader.batch_execute("COMMIT").await.unwrap();
    assert_eq!(in_snapshot, 100);

    // What the snapshot misses, the stream delivers: no gap and no overlap.
    let mut stream = repl
        .start_replication(&slot, created.consistent_point, pgoutput_options(&db).await)
        .await
        .unwrap();
    let txn = next_transaction(&mut stream).await;
    assert_eq!(txn.inserted.len(), 50);
    assert_eq!(txn.inserted[0][0].as_deref(), Some("101"));
    assert!(txn.end_lsn > created.consistent_point);
}

#[tokio::test]
async fn inserted_rows_arrive_as_decoded_begin_relation_insert_commit() {
    let db = FreshPgDb::create("repl_stream").await;
    let admin = items_table(&db).await;
    let mut stream = streaming_slot(&db, &format!("{}_slot", db.name)).await;

    admin
        .batch_execute("INSERT INTO items VALUES (1, 'one'), (2, NULL)")
        .await
        .unwrap();
    let txn = next_transaction(&mut stream).await;
    assert_eq!(
        txn.kinds,
        ["begin", "relation", "insert", "insert", "commit"]
    );
    assert_eq!(
        txn.inserted,
        [
            vec![Some("1".to_owned()), Some("one".to_owned())],
            vec![Some("2".to_owned()), None]
        ]
    );
    assert!(txn.end_lsn.is_valid());
}

#[tokio::test]
async fn a_status_update_with_a_flush_lsn_advances_the_slots_confirmed_flush_lsn() {
    let db = FreshPgDb::create("repl_flush").await;
    let admin = items_table(&db).await;
    let slot = format!("{}_slot", db.name);
    let mut stream = streaming_slot(&db, &slot).await;

    admin
        .batch_execute("INSERT INTO items VALUES (1, 'one')")
        .await
        .unwrap();
    let txn = next_transaction(&mut stream).await;
    assert!(confirmed_flush(&admin, &slot).await < txn.end_lsn);

    stream
        .send_status(txn.end_lsn, txn.end_lsn, txn.end_lsn, false)
        .await
        .unwrap();
    let reached = wait_until(WAIT, "confirmed_flush_lsn to reach the commit", || async {
        let lsn = confirmed_flush(&admin, &slot).await;
        (lsn >= txn.end_lsn).then_some(lsn)
    })
    .await;
    assert_eq!(reached, txn.end_lsn);
}

#[tokio::test]
async fn a_second_start_replication_on_an_active_slot_fails_definitely_with_55006() {
    let db = FreshPgDb::create("repl_busy").await;
    items_table(&db).await;
    let slot = format!("{}_slot", db.name);
    let _active = streaming_slot(&db, &slot).await;

    let second = connect_agent(&db).await;
    let err = second
        .start_replication(&slot, Lsn::INVALID, pgoutput_options(&db).await)
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("55006"), "{err}");
    assert!(!err.is_transient());
    assert!(matches!(err, ReplError::Server(_)));
    assert!(err.to_string().contains("is active for PID"), "{err}");
}
