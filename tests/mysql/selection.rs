//! The capture selection on MariaDB: tables chosen by pattern inside a captured database,
//! excluded and masked columns never in clear anywhere in Kafka or the registry, not even in
//! `source.query` (the statement would show them: it is left out for such tables, and kept
//! for the others), and a message key of other columns than the primary key.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use mysql_async::prelude::Queryable;

use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder};
use common::cdc::{assert_never_in_clear, StackCleanup};
use common::mysql::{my_admin, FreshMyDb};
use common::unique_name;

const WAIT: Duration = Duration::from_secs(120);

fn text(v: &Avro) -> Option<String> {
    match unwrap_union(v) {
        Avro::String(s) => Some(s.clone()),
        Avro::Null => None,
        other => panic!("not a string: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_tables_columns_masks_keys_and_statements_follow_the_selection() {
    let db = FreshMyDb::create("myselect").await;
    let mut admin = my_admin().await;
    for sql in [
        format!(
            "CREATE TABLE {} (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL, ssn VARCHAR(20), name VARCHAR(50))",
            db.table("customers")
        ),
        format!("CREATE TABLE {} (id INT PRIMARY KEY, what VARCHAR(50))", db.table("audit_log")),
        format!(
            "CREATE TABLE {} (id INT PRIMARY KEY, customer_id INT NOT NULL, note VARCHAR(50))",
            db.table("orders")
        ),
        format!(
            "INSERT INTO {} VALUES (1, 'alice-secret@example.com', 'SSN-0001-SECRET', 'Alexandra')",
            db.table("customers")
        ),
        format!("INSERT INTO {} VALUES (1, 'AUDIT-SECRET-1')", db.table("audit_log")),
        format!("INSERT INTO {} VALUES (10, 1, 'first')", db.table("orders")),
    ] {
        admin.query_drop(sql).await.unwrap();
    }
    let name = unique_name("myselect");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    cfg.extra_source_toml =         "[tables]\ninclude = ['.*\\.(customers|orders)']\n\
         [columns]\nexclude = ['.*\\.customers\\.ssn']\n\
         [[columns.mask]]\ncolumns = ['.*\\.customers\\.email']\nwith = 'hash'\nsalt = 'salt-91c2'\n\
         [[columns.mask]]\ncolumns = ['.*\\.customers\\.name']\nwith = 'chars'\nlength = 3\n\
         [message_key_columns]\n'.*\\.orders' = ['customer_id', 'id']\n\
         [mysql]\ninclude_query = true\n"
        .to_string();
    let agent = Agent::start(&cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    let insert_order = format!(
        "INSERT INTO {} VALUES (11, 1, 'second')",
        db.table("orders")
    );
    for sql in [
        format!(
            "INSERT INTO {} VALUES (2, 'bob-secret@example.com', 'SSN-0002-SECRET', 'Bartholomew')",
            db.table("customers")
        ),
        format!(
            "UPDATE {} SET email = 'alice-new-secret@example.com' WHERE id = 1",
            db.table("customers")
        ),
        format!(
            "INSERT INTO {} VALUES (2, 'AUDIT-SECRET-2')",
            db.table("audit_log")
        ),
        insert_order.clone(),
    ] {
        admin.query_drop(sql).await.unwrap();
    }

    let topic = |t: &str| format!("{name}.{}.{t}", db.name);
    let customers =
        tokio::task::block_in_place(|| read_topic(&topic("customers"), WAIT, |r| r.len() >= 3));
    let orders =
        tokio::task::block_in_place(|| read_topic(&topic("orders"), WAIT, |r| r.len() >= 2));
    assert_eq!(customers.len(), 3, "log:\n{}", agent.log());
    assert_eq!(orders.len(), 2, "log:\n{}", agent.log());

    let mut dec = AvroDecoder::new();
    for r in &customers {
        let ev = dec.decode(r.value.as_deref().unwrap());
        let after = unwrap_union(field(&ev, "after"));
        let email = text(field(after, "email")).unwrap();
        assert_eq!(email.len(), 64, "a hex SHA-256: {email}");
        assert_eq!(text(field(after, "name")).as_deref(), Some("***"));
        let source = unwrap_union(field(&ev, "source"));
        assert_eq!(
            text(field(source, "query")),
            None,
            "the statement would show masked values"
        );
    }
    let streamed_order = orders
        .iter()
        .map(|r| dec.decode(r.value.as_deref().unwrap()))
        .find(|ev| matches!(field(ev, "op"), Avro::String(op) if op == "c"))
        .expect("the streamed order");
    assert_eq!(
        text(field(
            unwrap_union(field(&streamed_order, "source")),
            "query"
        )),
        Some(insert_order),
        "a table with nothing hidden keeps its statement"
    );
    for r in &orders {
        let key = dec.decode(r.key.as_deref().unwrap());
        let Avro::Record(fields) = &key else {
            panic!("key: {key:?}")
        };
        let names: Vec<_> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["customer_id", "id"]);
    }
    let topics: Vec<String> = common::kafka::every_record_under(&name)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert!(!topics.iter().any(|t| t.contains("audit")), "{topics:?}");
    tokio::task::block_in_place(|| {
        assert_never_in_clear(
            &name,
            &[
                "secret@example.com",
                "SSN-000",
                "Alexandra",
                "Bartholomew",
                "AUDIT-SECRET",
                "salt-91c2",
            ],
        )
    });
}
