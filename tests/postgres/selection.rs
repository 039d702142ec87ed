//! The capture selection on PostgreSQL (`[tables]`, `[columns]`, `[message_key_columns]`):
//! tables left out by pattern are never read or published, excluded columns are in no event
//! and no schema, masked and hashed values never appear in clear anywhere in Kafka or the
//! registry, and a table can be keyed by other columns than its primary key; in the
//! snapshot and in the stream alike.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use sha2::{Digest, Sha256};

use common::agent::{field, read_topic, unwrap_union, Agent, AvroDecoder, Record};
use common::cdc::{assert_never_in_clear, latest_schema};
use common::pgcase::PgCase;

const WAIT: Duration = Duration::from_secs(90);
const SALT: &str = "pepper-7f3a";

fn text(v: &Avro) -> Option<String> {
    match unwrap_union(v) {
        Avro::String(s) => Some(s.clone()),
        Avro::Null => None,
        other => panic!("not a string: {other:?}"),
    }
}

fn int(v: &Avro) -> i64 {
    match unwrap_union(v) {
        Avro::Int(i) => i64::from(*i),
        Avro::Long(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

fn sha256_hex(salt: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(value.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The values of records with a value (tombstones left out), decoded.
fn values(dec: &mut AvroDecoder, records: &[Record]) -> Vec<Avro> {
    records
        .iter()
        .filter_map(|r| r.value.as_deref())
        .map(|v| dec.decode(v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_columns_masks_and_keys_are_published_as_the_selection_says() {
    let case = PgCase::new(
        "select",
        "CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, ssn text, name text, phone text);
         CREATE TABLE customers_archive (id int PRIMARY KEY, email text);
         CREATE TABLE audit_log (id int PRIMARY KEY, what text);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, note text);
         ALTER TABLE orders REPLICA IDENTITY FULL;
         INSERT INTO customers VALUES
           (1, 'alice-secret@example.com', 'SSN-0001-SECRET', 'Alexandra', '555-SECRET-01'),
           (2, 'bob-secret@example.com', 'SSN-0002-SECRET', 'Bartholomew', '555-SECRET-02');
         INSERT INTO customers_archive VALUES (1, 'archived-secret@example.com');
         INSERT INTO audit_log VALUES (1, 'AUDIT-SECRET-1');
         INSERT INTO orders VALUES (10, 1, 'first'), (11, 2, 'second');
         CREATE PUBLICATION cdc_pub FOR ALL TABLES;",
        &format!(
            "[tables]\ninclude = ['public\\.orders', 'PUBLIC\\.customers.*']\n\
             exclude = ['public\\.customers_archive']\n\
             [columns]\nexclude = ['public\\.customers\\.ssn']\n\
             [[columns.mask]]\ncolumns = ['.*\\.email']\nwith = 'hash'\nsalt = '{SALT}'\n\
             [[columns.mask]]\ncolumns = ['public\\.customers\\.phone']\nwith = 'chars'\nlength = 4\n\
             [[columns.mask]]\ncolumns = ['public\\.customers\\.name']\nwith = 'truncate'\nlength = 3\n\
             [message_key_columns]\n'public\\.orders' = ['customer_id', 'id']\n"
        ),
    )
    .await;
    let agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
    case.admin
        .batch_execute(
            "INSERT INTO customers VALUES (3, 'carol-secret@example.com', 'SSN-0003-SECRET', 'Caroline', '555-SECRET-03');
             UPDATE customers SET email = 'alice-new-secret@example.com' WHERE id = 1;
             INSERT INTO customers_archive VALUES (2, 'archived2-secret@example.com');
             INSERT INTO audit_log VALUES (2, 'AUDIT-SECRET-2');
             DELETE FROM orders WHERE id = 10;",
        )
        .await
        .unwrap();

    let customers = tokio::task::block_in_place(|| {
        read_topic(&case.topic("customers"), WAIT, |r| r.len() >= 4)
    });
    // Snapshot 2 + stream 2, plus the delete and its tombstone.
    let orders =
        tokio::task::block_in_place(|| read_topic(&case.topic("orders"), WAIT, |r| r.len() >= 4));
    assert_eq!(customers.len(), 4, "customers; log:\n{}", agent.log());
    assert_eq!(orders.len(), 4, "orders; log:\n{}", agent.log());

    let mut dec = AvroDecoder::new();
    let mut seen = Vec::new();
    for ev in values(&mut dec, &customers) {
        let after = unwrap_union(field(&ev, "after"));
        let id = int(field(after, "id"));
        let email = text(field(after, "email")).unwrap();
        let phone = text(field(after, "phone"));
        let name = text(field(after, "name"));
        assert!(
            !matches!(after, Avro::Record(fields) if fields.iter().any(|(n, _)| n == "ssn")),
            "ssn is left out"
        );
        seen.push((id, email, phone, name));
    }
    seen.sort();
    let mut expected = vec![
        (
            1,
            sha256_hex(SALT, "alice-secret@example.com"),
            Some("****".into()),
            Some("Ale".into()),
        ),
        (
            1,
            sha256_hex(SALT, "alice-new-secret@example.com"),
            Some("****".into()),
            Some("Ale".into()),
        ),
        (
            2,
            sha256_hex(SALT, "bob-secret@example.com"),
            Some("****".into()),
            Some("Bar".into()),
        ),
        (
            3,
            sha256_hex(SALT, "carol-secret@example.com"),
            Some("****".into()),
            Some("Car".into()),
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    let value_schema = latest_schema(&format!("{}-value", case.topic("customers")));
    assert!(!value_schema.contains("\"ssn\""), "{value_schema}");

    // Orders are keyed by (customer_id, id), the delete and its tombstone too.
    let mut keys = Vec::new();
    for r in &orders {
        let key = dec.decode(r.key.as_deref().expect("keyed"));
        let Avro::Record(fields) = &key else {
            panic!("key: {key:?}")
        };
        let names: Vec<_> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["customer_id", "id"]);
        keys.push((int(field(&key, "customer_id")), int(field(&key, "id"))));
    }
    keys.sort();
    assert_eq!(keys, [(1, 10), (1, 10), (1, 10), (2, 11)]);

    // Left-out tables: no topic, no event-store record.
    let store = tokio::task::block_in_place(|| {
        read_topic(&case.cfg.event_store_topic, WAIT, |r| r.len() >= 7)
    });
    let tables: std::collections::BTreeSet<_> = store
        .iter()
        .map(|r| r.headers.get("cdc.table").cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        tables.into_iter().collect::<Vec<_>>(),
        ["public.customers", "public.orders"]
    );
    let topics: Vec<String> = common::kafka::every_record_under(&case.name)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert!(
        !topics
            .iter()
            .any(|t| t.contains("audit") || t.contains("archive")),
        "{topics:?}"
    );
    assert!(agent
        .log()
        .contains("table not captured: [tables] leaves it out"));

    tokio::task::block_in_place(|| {
        assert_never_in_clear(
            &case.name,
            &[
                "secret@example.com",
                "SSN-000",
                "Alexandra",
                "Bartholomew",
                "Caroline",
                "555-SECRET",
                "AUDIT-SECRET",
                SALT,
            ],
        )
    });
}

/// Changing `[tables]` between two runs: the table newly included is snapshotted alone (its
/// rows as reads), the one captured before is not read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_newly_included_is_snapshotted_alone_at_the_next_start() {
    let mut case = PgCase::new(
        "selgrow",
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE b (id int PRIMARY KEY, v text);
         INSERT INTO a SELECT g, 'a' FROM generate_series(1, 50) g;
         INSERT INTO b SELECT g, 'b' FROM generate_series(1, 40) g;
         CREATE PUBLICATION cdc_pub FOR TABLE a, b;",
        "[tables]\ninclude = ['public\\.a']\n",
    )
    .await;
    let mut agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| {
        common::cdc::wait_log(&mut agent, "snapshot complete", WAIT);
    });
    case.admin
        .batch_execute("INSERT INTO a VALUES (51, 'a'); INSERT INTO b VALUES (41, 'b');")
        .await
        .unwrap();
    let a_first =
        tokio::task::block_in_place(|| read_topic(&case.topic("a"), WAIT, |r| r.len() >= 51));
    assert_eq!(a_first.len(), 51, "log:\n{}", agent.log());
    agent.terminate();
    assert_eq!(
        tokio::task::block_in_place(|| agent.wait_exit(WAIT)),
        Some(0)
    );
    drop(agent);

    case.cfg.extra_source_toml = case
        .cfg
        .extra_source_toml
        .replace("include = ['public\\.a']", "include = ['public\\.(a|b)']");
    let mut agent = Agent::start(&case.cfg);
    if common::pg_server_version_num(&case.admin).await < common::PG_LOGICAL_MESSAGES {
        // Before 14 a table newly captured is not snapshotted by itself (that needs on-demand
        // snapshots, docs/compatibility.md): b's changes stream from this start, a is not
        // read again.
        tokio::task::block_in_place(|| agent.wait_streaming(WAIT));
        case.admin
            .batch_execute("INSERT INTO b VALUES (42, 'b'); INSERT INTO a VALUES (52, 'a');")
            .await
            .unwrap();
        let b =
            tokio::task::block_in_place(|| read_topic(&case.topic("b"), WAIT, |r| !r.is_empty()));
        let mut dec = AvroDecoder::new();
        let ops: Vec<String> = values(&mut dec, &b)
            .iter()
            .map(|ev| match field(ev, "op") {
                Avro::String(op) => op.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            ops,
            ["c"],
            "b: only the change after the start; log:\n{}",
            agent.log()
        );
        let a_all =
            tokio::task::block_in_place(|| read_topic(&case.topic("a"), WAIT, |r| r.len() >= 52));
        assert_eq!(
            a_all.len(),
            52,
            "a is not read again; log:\n{}",
            agent.log()
        );
        return;
    }
    tokio::task::block_in_place(|| {
        common::cdc::wait_log(&mut agent, "snapshot complete", WAIT);
    });
    let b = tokio::task::block_in_place(|| read_topic(&case.topic("b"), WAIT, |r| r.len() >= 41));
    assert_eq!(b.len(), 41, "every row of b, once; log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    assert!(values(&mut dec, &b)
        .iter()
        .all(|ev| matches!(field(ev, "op"), Avro::String(op) if op == "r")));
    case.admin
        .batch_execute("INSERT INTO a VALUES (52, 'a');")
        .await
        .unwrap();
    let a_all =
        tokio::task::block_in_place(|| read_topic(&case.topic("a"), WAIT, |r| r.len() >= 52));
    assert_eq!(
        a_all.len(),
        52,
        "a is not read again; log:\n{}",
        agent.log()
    );
}
