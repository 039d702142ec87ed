//! The mixed workload the equality tests run on the source: a snapshot, inserts, updates, a
//! primary-key change, deletes, a TOASTed value left unchanged by later updates (so its
//! events carry the placeholder), an ADD COLUMN mid-stream, and a TRUNCATE of a second table.

use std::time::Duration;

use crate::common::agent::read_topic;

/// The source tables (and publication) of a mixed-workload test, with rows for the snapshot.
/// `big` is stored out of line uncompressed, so updates that leave it alone do not send it.
pub const SOURCE_DDL: &str = "
    CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2),
        qty bigint, big text, data bytea, created date, at timestamp, flag boolean,
        version int NOT NULL DEFAULT 0);
    ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
    CREATE TABLE tags (id int PRIMARY KEY, label text);
    INSERT INTO items SELECT i, 'n' || i, i * 1.25, i, NULL, decode(md5(i::text), 'hex'),
        date '2024-01-01' + i, timestamp '2024-01-01 10:00:00.123456' + i * interval '1 minute',
        i % 2 = 0, 0 FROM generate_series(1, 50) i;
    INSERT INTO tags SELECT i, 't' || i FROM generate_series(1, 10) i;
    CREATE PUBLICATION cdc_pub FOR TABLE items, tags;";

/// Runs the streamed part of the workload on the source.
pub async fn run(admin: &tokio_postgres::Client) {
    let steps = [
        // Inserts.
        "INSERT INTO items SELECT i, 'n' || i, i * 1.25, i, NULL, decode(md5(i::text), 'hex'),
             date '2024-01-01' + i, timestamp '2024-01-01 10:00:00' + i * interval '1 second',
             i % 2 = 0, 0 FROM generate_series(51, 100) i",
        // Updates, several per transaction.
        "UPDATE items SET name = name || 'x', price = price + 0.01, version = version + 1
             WHERE id % 3 = 0",
        // A primary-key change: the agent emits a delete of 5 and a create of 1005.
        "UPDATE items SET id = 1005, version = version + 1 WHERE id = 5",
        // Deletes, and a key deleted then inserted again.
        "DELETE FROM items WHERE id % 7 = 0",
        "BEGIN; DELETE FROM items WHERE id = 8; INSERT INTO items (id, name) VALUES (8, 'again'); COMMIT",
        // A large value stored out of line, then updates that leave it alone.
        "UPDATE items SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 500) g),
             version = version + 1 WHERE id IN (10, 11)",
        "UPDATE items SET qty = qty + 100, version = version + 1 WHERE id IN (10, 11)",
        // A column added mid-stream, filled for some rows.
        "ALTER TABLE items ADD COLUMN note text",
        "UPDATE items SET note = 'noted ' || id, version = version + 1 WHERE id % 4 = 0",
        "INSERT INTO items (id, name, note) VALUES (200, 'with note', 'n200')",
        // The unchanged large value again, after the schema changed.
        "UPDATE items SET note = 'late', version = version + 1 WHERE id = 10",
        // A truncate of the other table, then new rows.
        "TRUNCATE tags",
        "INSERT INTO tags VALUES (100, 'after truncate'), (101, NULL)",
        "UPDATE tags SET label = 'relabelled' WHERE id = 101",
    ];
    for sql in steps {
        admin
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Asserts that the items topic carried the unchanged-TOAST placeholder, so the test did
/// exercise the path that must keep the stored value.
pub fn assert_placeholder_published(topic: &str) {
    let needle = b"__debezium_unavailable_value";
    let has = |v: &Option<Vec<u8>>| {
        v.as_ref()
            .is_some_and(|v| v.windows(needle.len()).any(|w| w == needle))
    };
    let records = read_topic(topic, Duration::from_secs(60), |rs| {
        rs.iter().any(|r| has(&r.value))
    });
    assert!(
        records.iter().any(|r| has(&r.value)),
        "no event of {topic} carries the TOAST placeholder ({} records read): the workload \
         did not exercise it",
        records.len()
    );
}
