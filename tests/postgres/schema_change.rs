//! Schema changes in the middle of the stream: ADD COLUMN and DROP COLUMN each register a new
//! value-schema version under `<topic>-value`, and every event — before and after each
//! change — decodes with a standard Avro reader through its own writer schema.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use common::agent::{field, read_topic, Agent, AvroDecoder};
use common::cdc::{
    as_i64, as_opt_string, decode_table_change, has_field, latest_schema, subject_versions, Change,
};
use common::pgcase::PgCase;
use common::wait_until;

const WAIT: Duration = Duration::from_secs(90);

fn changes(topic: &str, n: usize, agent: &Agent) -> Vec<Change> {
    let recs = read_topic(topic, WAIT, |r| r.len() >= n);
    assert_eq!(
        recs.len(),
        n,
        "records on {topic}; agent log:\n{}",
        agent.log()
    );
    let mut dec = AvroDecoder::new();
    recs.iter()
        .map(|r| decode_table_change(&mut dec, r, "id"))
        .collect()
}

async fn versions_at_least(subject: &str, n: usize, agent: &Agent) -> Vec<i64> {
    let subject = subject.to_string();
    let v = wait_until(WAIT, &format!("{n} versions of {subject}"), || {
        let v = subject_versions(&subject);
        async move { (v.len() >= n).then_some(v) }
    })
    .await;
    assert_eq!(
        v.len(),
        n,
        "versions of {subject}; agent log:\n{}",
        agent.log()
    );
    v
}

fn after(c: &Change) -> &Avro {
    c.after
        .as_ref()
        .unwrap_or_else(|| panic!("no after in {c:?}"))
}

#[tokio::test]
async fn add_and_drop_column_mid_stream_register_new_versions_and_every_event_decodes() {
    let PgCase {
        db: _db,
        admin,
        name,
        cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "schema",
        "CREATE TABLE t (id int PRIMARY KEY, name text, qty int NOT NULL DEFAULT 0);
             INSERT INTO t VALUES (1, 'snap', 1);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        "",
    )
    .await;
    let agent = Agent::start(&cfg);
    let topic = format!("{name}.public.t");
    let subject = format!("{topic}-value");

    // Snapshot row, then a streamed row: the snapshot and the stream share one version.
    changes(&topic, 1, &agent);
    admin
        .batch_execute("INSERT INTO t VALUES (2, 'before', 2)")
        .await
        .unwrap();
    changes(&topic, 2, &agent);
    let v1 = versions_at_least(&subject, 1, &agent).await;

    // ADD COLUMN: rows written after it carry the column, with its values.
    admin
        .batch_execute(
            "ALTER TABLE t ADD COLUMN extra int;
             INSERT INTO t VALUES (3, 'added', 3, 33);
             UPDATE t SET extra = 11 WHERE id = 1;
             INSERT INTO t (id, name, qty) VALUES (4, 'added-null', 4);",
        )
        .await
        .unwrap();
    changes(&topic, 5, &agent);
    let v2 = versions_at_least(&subject, 2, &agent).await;

    // DROP COLUMN: the column disappears from later events.
    admin
        .batch_execute(
            "ALTER TABLE t DROP COLUMN name;
             INSERT INTO t (id, qty, extra) VALUES (5, 5, 55);
             UPDATE t SET qty = 20 WHERE id = 2;",
        )
        .await
        .unwrap();
    let all = changes(&topic, 7, &agent);
    let v3 = versions_at_least(&subject, 3, &agent).await;
    println!("pg_schema_change: versions {v1:?} → {v2:?} → {v3:?}");

    let ids: Vec<(i64, &str)> = all
        .iter()
        .map(|c| (c.id, c.op.as_deref().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            (1, "r"),
            (2, "c"),
            (3, "c"),
            (1, "u"),
            (4, "c"),
            (5, "c"),
            (2, "u")
        ]
    );
    // Version 1: name and qty, no extra.
    for c in &all[..2] {
        let a = after(c);
        assert!(has_field(a, "name") && !has_field(a, "extra"), "{c:?}");
    }
    assert_eq!(
        as_opt_string(field(after(&all[0]), "name")).as_deref(),
        Some("snap")
    );
    assert_eq!(
        as_opt_string(field(after(&all[1]), "name")).as_deref(),
        Some("before")
    );
    // Version 2: name, qty and extra.
    for c in &all[2..5] {
        assert!(
            has_field(after(c), "name") && has_field(after(c), "extra"),
            "{c:?}"
        );
    }
    assert_eq!(as_i64(field(after(&all[2]), "extra")), 33);
    assert_eq!(
        as_opt_string(field(after(&all[2]), "name")).as_deref(),
        Some("added")
    );
    assert_eq!(as_i64(field(after(&all[3]), "extra")), 11);
    assert_eq!(
        as_opt_string(field(after(&all[3]), "name")).as_deref(),
        Some("snap")
    );
    assert_eq!(
        field(after(&all[4]), "extra"),
        &Avro::Union(0, Box::new(Avro::Null))
    );
    // Version 3: qty and extra, no name.
    for c in &all[5..] {
        assert!(
            !has_field(after(c), "name") && has_field(after(c), "extra"),
            "{c:?}"
        );
    }
    assert_eq!(as_i64(field(after(&all[5]), "extra")), 55);
    assert_eq!(as_i64(field(after(&all[5]), "qty")), 5);
    assert_eq!(as_i64(field(after(&all[6]), "qty")), 20);
    assert_eq!(
        field(after(&all[6]), "extra"),
        &Avro::Union(0, Box::new(Avro::Null))
    );

    // The registry kept the old versions, each still resolvable: old events stay readable.
    assert_eq!(subject_versions(&subject).len(), 3);
}

/// A column dropped and another renamed while the agent was down: the changes written before
/// replay with the column set they were written with (the Relation message's), those written
/// after with the new one, and the stream goes on — instead of waiting forever for the old
/// columns to show up in the live catalog.
#[tokio::test]
async fn rows_written_before_a_drop_and_a_rename_while_the_agent_was_down_replay_with_their_old_columns(
) {
    let PgCase {
        db: _db,
        admin,
        name,
        cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "replay_ddl",
        "CREATE TABLE t (id int PRIMARY KEY, gone text, old_name text, keep int NOT NULL);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        "",
    )
    .await;
    let mut agent = Agent::start(&cfg);
    let topic = format!("{name}.public.t");
    agent.wait_streaming(WAIT);
    admin
        .batch_execute("INSERT INTO t VALUES (1, 'g1', 'o1', 1)")
        .await
        .unwrap();
    changes(&topic, 1, &agent);

    // The agent stops; the slot keeps the changes made meanwhile.
    agent.terminate();
    assert_eq!(agent.wait_exit(WAIT), Some(0), "log:\n{}", agent.log());
    admin
        .batch_execute(
            "INSERT INTO t VALUES (2, 'g2', 'o2', 2);
             UPDATE t SET old_name = 'o1b' WHERE id = 1;
             ALTER TABLE t DROP COLUMN gone;
             ALTER TABLE t RENAME COLUMN old_name TO new_name;
             INSERT INTO t VALUES (3, 'n3', 3);",
        )
        .await
        .unwrap();

    let mark = common::cdc::log_mark(&agent);
    let mut agent = agent.restart();
    let all = changes(&topic, 4, &agent);
    let ops: Vec<(i64, &str)> = all
        .iter()
        .map(|c| (c.id, c.op.as_deref().unwrap()))
        .collect();
    assert_eq!(ops, [(1, "c"), (2, "c"), (1, "u"), (3, "c")]);
    // Written before the ALTERs: the old columns, with their values.
    for (c, gone, old) in [(&all[1], "g2", "o2"), (&all[2], "g1", "o1b")] {
        let a = after(c);
        assert!(!has_field(a, "new_name"), "{c:?}");
        assert_eq!(as_opt_string(field(a, "gone")).as_deref(), Some(gone));
        assert_eq!(as_opt_string(field(a, "old_name")).as_deref(), Some(old));
    }
    // Written after: the new column set.
    let a = after(&all[3]);
    assert!(!has_field(a, "gone") && !has_field(a, "old_name"), "{a:?}");
    assert_eq!(as_opt_string(field(a, "new_name")).as_deref(), Some("n3"));
    assert_eq!(as_i64(field(a, "keep")), 3);

    // The replay was not an error: no restart of the stream, one warning naming the columns.
    let log = common::cdc::log_after(&agent, mark);
    assert!(
        log.contains("table changed since these changes were written"),
        "no warning about the old column set; log:\n{log}"
    );
    assert!(
        !log.contains("source failed"),
        "the replay failed first; log:\n{log}"
    );
    // And the stream goes on.
    admin
        .batch_execute("INSERT INTO t VALUES (4, 'n4', 4)")
        .await
        .unwrap();
    changes(&topic, 5, &agent);
    common::cdc::assert_alive(&mut agent);
}

#[tokio::test]
async fn columns_added_not_null_with_a_constant_default_stay_backward_compatible_and_the_stream_goes_on(
) {
    let PgCase {
        db: _db,
        admin,
        name,
        cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "defaults",
        "CREATE TABLE t (id int PRIMARY KEY, name text);
         INSERT INTO t VALUES (1, 'snap');
         CREATE PUBLICATION cdc_pub FOR TABLE t;",
        "",
    )
    .await;
    let agent = Agent::start(&cfg);
    let topic = format!("{name}.public.t");
    let subject = format!("{topic}-value");
    changes(&topic, 1, &agent);
    versions_at_least(&subject, 1, &agent).await;

    // The stack's registry checks BACKWARD compatibility: a new required field without a
    // default would be refused and stop the source.
    admin
        .batch_execute(
            "ALTER TABLE t ADD COLUMN status text NOT NULL DEFAULT 'open',
                           ADD COLUMN qty int NOT NULL DEFAULT 0,
                           ADD COLUMN flag boolean NOT NULL DEFAULT true,
                           ADD COLUMN seen timestamptz DEFAULT now();
             INSERT INTO t (id, name) VALUES (2, 'after');",
        )
        .await
        .unwrap();
    let all = changes(&topic, 2, &agent);
    versions_at_least(&subject, 2, &agent).await;
    let row = after(&all[1]);
    assert_eq!(as_opt_string(field(row, "status")).as_deref(), Some("open"));
    assert_eq!(as_i64(field(row, "qty")), 0);
    let schema = latest_schema(&subject);
    for default in [
        r#""name":"status","type":"string","default":"open""#,
        r#""name":"qty","type":"int","default":0"#,
        r#""name":"flag","type":"boolean","default":true"#,
    ] {
        assert!(schema.contains(default), "no `{default}` in {schema}");
    }
    assert!(
        !agent.log().contains("source failed"),
        "log:\n{}",
        agent.log()
    );
}

/// The evolution cases Debezium's documentation walks through, against the stack's registry
/// (BACKWARD): a widened type (int → bigint, Avro int → long) and a renamed nullable column
/// (a field dropped, an optional one added) are accepted and every event decodes with its own
/// writer schema; a column added `NOT NULL DEFAULT now()` has no constant default to give
/// old readers, so the registry refuses it and the source stops naming the fixes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widening_and_renaming_stay_backward_compatible_and_a_required_column_without_a_constant_default_stops_naming_the_fix(
) {
    let PgCase {
        db: _db,
        admin,
        name,
        cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "evolve",
        "CREATE TABLE t (id int PRIMARY KEY, name text, qty int NOT NULL);
         INSERT INTO t VALUES (1, 'snap', 1);
         CREATE PUBLICATION cdc_pub FOR TABLE t;",
        "",
    )
    .await;
    let mut agent = Agent::start(&cfg);
    let topic = format!("{name}.public.t");
    let subject = format!("{topic}-value");
    changes(&topic, 1, &agent);

    admin
        .batch_execute(
            "ALTER TABLE t ALTER COLUMN qty TYPE bigint;
             INSERT INTO t VALUES (2, 'wide', 5000000000);",
        )
        .await
        .unwrap();
    let all = changes(&topic, 2, &agent);
    versions_at_least(&subject, 2, &agent).await;
    assert_eq!(as_i64(field(after(&all[0]), "qty")), 1);
    assert_eq!(as_i64(field(after(&all[1]), "qty")), 5_000_000_000);

    admin
        .batch_execute(
            "ALTER TABLE t RENAME COLUMN name TO title;
             INSERT INTO t VALUES (3, 'renamed', 3);",
        )
        .await
        .unwrap();
    let all = changes(&topic, 3, &agent);
    versions_at_least(&subject, 3, &agent).await;
    assert!(has_field(after(&all[1]), "name") && !has_field(after(&all[1]), "title"));
    assert_eq!(
        as_opt_string(field(after(&all[2]), "title")).as_deref(),
        Some("renamed")
    );

    admin
        .batch_execute(
            "ALTER TABLE t ADD COLUMN created timestamptz NOT NULL DEFAULT now();
             INSERT INTO t (id, title, qty) VALUES (4, 'stops', 4);",
        )
        .await
        .unwrap();
    let code = tokio::task::block_in_place(|| agent.wait_exit(WAIT));
    let log = agent.log();
    assert_eq!(code, Some(1), "log:\n{log}");
    assert!(
        log.contains("rejected the schema")
            && log.contains("fix: make the change backward compatible"),
        "log:\n{log}"
    );
    assert_eq!(subject_versions(&subject).len(), 3, "nothing registered");
}
