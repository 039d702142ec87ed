//! The stack's PostgreSQL is real and usable by the agent's libraries: logical decoding is on,
//! the agent role may create a slot, and pgoutput changes can be read.

use crate::common;

use cdc_agent::source::postgres::pgoutput::{self, Column, LogicalMessage};
use common::{pg_connect, FreshPgDb};

#[tokio::test]
async fn the_agent_role_creates_a_logical_slot_and_reads_an_inserted_row() {
    let db = FreshPgDb::create("stack").await;
    let admin = pg_connect(&db.url).await;
    let wal_level: String = admin.query_one("SHOW wal_level", &[]).await.unwrap().get(0);
    assert_eq!(wal_level, "logical");
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text);
             CREATE PUBLICATION stack_pub FOR TABLE items;",
        )
        .await
        .unwrap();

    let agent = pg_connect(&db.agent_url).await;
    agent
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&format!("{}_slot", db.name)],
        )
        .await
        .expect("the agent role (REPLICATION) creates a logical slot");

    admin
        .execute("INSERT INTO items VALUES (1, 'first')", &[])
        .await
        .unwrap();

    let rows = agent
        .query(
            "SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL,
                 'proto_version', '1', 'publication_names', 'stack_pub')",
            &[&format!("{}_slot", db.name)],
        )
        .await
        .unwrap();
    let messages: Vec<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
    let tags: String = messages.iter().map(|m| m[0] as char).collect();
    assert_eq!(tags, "BRIC", "begin, relation, insert, commit");
    match pgoutput::decode(&messages[1], false).expect("relation decodes") {
        LogicalMessage::Relation(rel) => {
            assert_eq!((rel.namespace, rel.name), ("public", "items"));
            assert!(rel.columns[0].is_key());
        }
        other => panic!("expected a relation, got {}", other.kind()),
    }
    match pgoutput::decode(&messages[2], false).expect("insert decodes") {
        LogicalMessage::Insert(ins) => {
            let cols: Vec<Column> = ins.new.iter().collect();
            assert_eq!(cols, [Column::Text(b"1"), Column::Text(b"first")]);
        }
        other => panic!("expected an insert, got {}", other.kind()),
    }
}
