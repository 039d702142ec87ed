//! The stack's MariaDB is real and usable by the agent's libraries: row binlog is on, the
//! agent user reads binlog status and streams a row event with mysql_async.

use crate::common;

use std::time::Duration;

use common::{stack_env, unique_name};
use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, Opts};

async fn connect(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap())
        .await
        .unwrap_or_else(|e| panic!("connect to MariaDB: {e}"))
}

#[tokio::test]
async fn the_agent_user_sees_binlog_status_and_streams_a_row_event() {
    let mut admin = connect(&stack_env("MYSQL_URL")).await;
    let mut agent = connect(&stack_env("MYSQL_AGENT_URL")).await;

    let (format, image): (String, String) = agent
        .query_first("SELECT @@binlog_format, @@binlog_row_image")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((format.as_str(), image.as_str()), ("ROW", "FULL"));
    let status: Option<(String, u64, String, String)> =
        agent.query_first("SHOW MASTER STATUS").await.unwrap();
    let (file, pos, _, _) = status.expect("binary logging is on and visible to the agent");

    let table = unique_name("stack_rows");
    admin
        .query_drop(format!(
            "CREATE TABLE demo.{table} (id INT PRIMARY KEY, name VARCHAR(20))"
        ))
        .await
        .unwrap();

    // MariaDB sends its own GTID events only to replicas that announce the capability.
    agent
        .query_drop("SET @mariadb_slave_capability = 4")
        .await
        .unwrap();
    let server_id = 1000 + (std::process::id() % 50_000);
    let mut stream = agent
        .get_binlog_stream(
            BinlogStreamRequest::new(server_id)
                .with_filename(file.as_bytes())
                .with_pos(pos),
        )
        .await
        .expect("the agent user may stream the binlog");

    admin
        .query_drop(format!("INSERT INTO demo.{table} VALUES (7, 'seven')"))
        .await
        .unwrap();

    let mut table_id = None;
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = stream.next().await {
            let event = event.expect("a well-formed binlog event");
            match event.read_data().expect("event decodes") {
                Some(EventData::TableMapEvent(tme)) if tme.table_name() == table.as_str() => {
                    table_id = Some(tme.table_id());
                }
                Some(EventData::RowsEvent(
                    rows @ (RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_)),
                )) if Some(rows.table_id()) == table_id => return true,
                _ => {}
            }
        }
        false
    })
    .await
    .expect("a write-rows event within 30s");
    assert!(found, "the binlog stream ended before the row event");

    admin
        .query_drop(format!("DROP TABLE demo.{table}"))
        .await
        .unwrap();
}
