//! The PostgreSQL target's COPY fast path: a long run of inserts is written with `COPY … FROM
//! STDIN` inside a savepoint, and falls back to the upsert when the target already holds one
//! of its keys. Both must leave the target exactly as the upsert alone would.

use std::time::Duration;

use crate::common::agent::{read_topic, Agent};
use crate::common::pgcase::PgCase;
use crate::common::{pg_connect, FreshPgDb};
use crate::support::{apply_toml, rows, wait_equal, Apply};

/// A table with a column of every type the apply tests compare, the snapshot's rows in it.
const EVERY_DDL: &str = "
    CREATE TABLE every (id int PRIMARY KEY, t text, n numeric(12,3), vn numeric, b bytea,
        j jsonb, js json, ia int[], ta text[], ts timestamp, tstz timestamptz, d date,
        tm time, iv interval, f float8, r real, u uuid, flag boolean, big bigint,
        small smallint);
    CREATE PUBLICATION cdc_pub FOR TABLE every;";

/// Rows `lo..=hi` of `every`: text with COPY's special characters (and the texts `\.` and
/// `\N`, and the empty string), every nullable column NULL in one row of ten.
fn every_rows(lo: i32, hi: i32) -> String {
    format!(
        r#"INSERT INTO every SELECT i,
            CASE i % 10 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'\\.' WHEN 3 THEN E'\\N'
                ELSE E'tab\there\nnew line\rcr\\back ' || i END,
            CASE WHEN i % 10 <> 0 THEN i * 1.001 END,
            CASE WHEN i % 10 <> 0 THEN i::numeric / 7 END,
            CASE WHEN i % 10 <> 0 THEN decode(md5(i::text), 'hex') || '\x5c090a0d00'::bytea END,
            CASE WHEN i % 10 <> 0 THEN jsonb_build_object('s', E'quote " back \\ nl \n tab \t',
                'n', i, 'a', jsonb_build_array(1, NULL, 'x')) END,
            CASE WHEN i % 10 <> 0 THEN ('{{"k": "v\n' || i || '", "z": null}}')::json END,
            CASE WHEN i % 10 <> 0 THEN ARRAY[i, NULL, -i] END,
            CASE WHEN i % 10 <> 0 THEN ARRAY['a"b', E'c\\d', 'e,f', NULL, E'g\th', '{{}}'] END,
            CASE WHEN i % 10 <> 0 THEN timestamp '2024-01-01 10:00:00.123456' + i * interval '1 minute' END,
            CASE WHEN i % 10 <> 0 THEN timestamptz '2024-03-01 12:00:00.5+02' + i * interval '1 hour' END,
            CASE WHEN i % 10 <> 0 THEN date '2024-01-01' + i END,
            CASE WHEN i % 10 <> 0 THEN time '10:11:12.131415' + i * interval '1 second' END,
            CASE WHEN i % 10 <> 0 THEN i * interval '1 day 2 hours 3.5 seconds' END,
            CASE i % 10 WHEN 0 THEN NULL WHEN 4 THEN 'NaN' WHEN 5 THEN '-Infinity'
                ELSE i / 3.0 END::float8,
            CASE WHEN i % 10 <> 0 THEN (i / 7.0)::real END,
            CASE WHEN i % 10 <> 0 THEN md5(i::text)::uuid END,
            CASE WHEN i % 10 <> 0 THEN i % 2 = 0 END,
            CASE WHEN i % 10 <> 0 THEN i * 1000000000000 END,
            CASE WHEN i % 10 <> 0 THEN (i % 30000)::smallint END
        FROM generate_series({lo}, {hi}) i"#
    )
}

/// Every column of `every` as text, the same on both sides: arrays and `json` become `jsonb`
/// in the target, so both sides compare as `jsonb`; intervals compare by length (a target
/// interval holds microseconds); an unconstrained numeric loses its trailing zeros on the way
/// (docs/postgres-types.md).
const EVERY: &str = "SELECT id::text, t, n::text, trim_scale(vn)::text, encode(b, 'hex'), j::text,
    js::jsonb::text, to_jsonb(ia)::text, to_jsonb(ta)::text, ts::text, tstz::text, d::text,
    tm::text, extract(epoch FROM iv)::text, f::text, r::text, u::text, flag::text, big::text,
    small::text FROM every ORDER BY id";

/// The log line of a COPY that went through, and of one that met a key the target held.
const COPIED: &str = "rows copied";
const CONFLICTED: &str = "copy met a key the target holds";

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_inserts_into_an_empty_target_is_copied_complete_and_equal() {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new(
        "apply_copy",
        &format!("{EVERY_DDL};\n{};", every_rows(1, 150)),
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_copy_target").await;
    let target = pg_connect(&target_db.url).await;
    let agent = Agent::start(&cfg);
    agent.wait_streaming(Duration::from_secs(60));
    admin.batch_execute(&every_rows(151, 300)).await.unwrap();
    // Snapshot reads and inserts all in the topic first, so apply meets them as long runs.
    let topic = format!("{name}.public.every");
    read_topic(&topic, Duration::from_secs(60), |r| r.len() >= 300);

    let mut apply = Apply::start(&apply_toml(
        &format!("topics = [\"{topic}\"]"),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "batch_max_ms = 1000",
    ));
    let rows = wait_equal(&admin, &target, EVERY, &mut apply).await;
    assert_eq!(rows.len(), 300);
    // What the comparison covered: the COPY's special characters, the texts that would read
    // as COPY's end marker and NULL, the empty text and NULLs.
    let t = |id: &str| {
        let row = rows.iter().find(|r| r[0].as_deref() == Some(id));
        row.and_then(|r| r[1].as_deref())
    };
    assert_eq!(t("4"), Some("tab\there\nnew line\rcr\\back 4"));
    assert_eq!(
        (t("2"), t("3"), t("1"), t("10")),
        (Some("\\."), Some("\\N"), Some(""), None)
    );
    let log = apply.log();
    assert!(
        log.contains(COPIED) && !log.contains(CONFLICTED),
        "the inserts went through COPY, without a conflict; log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn inserts_of_keys_the_target_already_holds_are_upserted_and_nothing_is_lost_or_doubled() {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new(
        "apply_copy_conflict",
        "CREATE TABLE acc (id int PRIMARY KEY, version int NOT NULL, payload text);
         INSERT INTO acc SELECT i, 0, 'p' || i FROM generate_series(1, 300) i;
         CREATE PUBLICATION cdc_pub FOR TABLE acc;",
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_copy_conflict_target").await;
    let target = pg_connect(&target_db.url).await;
    // The target table as apply would create it, one row in ten already there with other
    // values, and an audit trigger recording every row write that commits.
    target
        .batch_execute(
            "CREATE TABLE acc (id integer NOT NULL, version integer NOT NULL, payload text,
                 PRIMARY KEY (id));
             INSERT INTO acc SELECT i, -1, 'stale' FROM generate_series(10, 300, 10) i;
             CREATE TABLE applied (id int NOT NULL, version int NOT NULL);
             CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN INSERT INTO applied VALUES (NEW.id, NEW.version); RETURN NEW; END $$;
             CREATE TRIGGER audit AFTER INSERT OR UPDATE ON acc
                 FOR EACH ROW EXECUTE FUNCTION audit();",
        )
        .await
        .unwrap();
    let agent = Agent::start(&cfg);
    agent.wait_streaming(Duration::from_secs(60));
    let topic = format!("{name}.public.acc");
    read_topic(&topic, Duration::from_secs(60), |r| r.len() >= 300);

    let mut apply = Apply::start(&apply_toml(
        &format!("topics = [\"{topic}\"]"),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "batch_max_ms = 1000",
    ));
    let select = "SELECT id::text, version::text, payload FROM acc ORDER BY id";
    wait_equal(&admin, &target, select, &mut apply).await;
    let log = apply.log();
    assert!(
        log.contains(CONFLICTED),
        "the snapshot's COPY met the rows already there; log:\n{log}"
    );
    // Each row written once: the failed COPY's rows went with its savepoint.
    let once = "SELECT count(*)::text, count(DISTINCT id)::text FROM applied";
    assert_eq!(
        rows(&target, once).await,
        vec![vec![Some("300".to_string()), Some("300".to_string())]]
    );

    // More inserts and updates, then a replay of the whole topic over a damaged target (no
    // stored offsets: apply starts from the topics' beginning), every insert a conflict.
    admin
        .batch_execute(
            "INSERT INTO acc SELECT i, 0, 'p' || i FROM generate_series(301, 400) i;
             UPDATE acc SET version = version + 1, payload = 'u' || id WHERE id % 3 = 0;",
        )
        .await
        .unwrap();
    wait_equal(&admin, &target, select, &mut apply).await;
    drop(apply);
    target
        .batch_execute(
            "DELETE FROM cdc_apply_offsets;
             UPDATE acc SET payload = 'damaged';
             TRUNCATE applied;",
        )
        .await
        .unwrap();
    let mut apply = Apply::start(&apply_toml(
        &format!("topics = [\"{topic}\"]"),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "batch_max_ms = 1000",
    ));
    // Every row was damaged, so equal means every row's last event was applied again: the
    // whole topic was replayed.
    wait_equal(&admin, &target, select, &mut apply).await;
    let log = apply.log();
    assert!(
        log.contains(CONFLICTED),
        "the replay's COPY met the rows already there; log:\n{log}"
    );
    // Each event applied once more: an insert or snapshot read per row, one update per
    // third row.
    let doubled = rows(
        &target,
        "SELECT a.id::text, count(*)::text FROM acc a JOIN applied p USING (id)
         GROUP BY a.id HAVING count(*) <> 1 + (a.id % 3 = 0)::int ORDER BY 1 LIMIT 10",
    )
    .await;
    assert!(
        doubled.is_empty(),
        "rows written other than once per event: {doubled:?}"
    );
    let total = rows(&target, "SELECT count(DISTINCT id)::text FROM applied").await;
    assert_eq!(total, vec![vec![Some("400".to_string())]]);
}

/// The log line of a table whose inserts are never copied: the server would refuse it.
const REFUSED: &str = "row-level security applies to the target table";

#[tokio::test(flavor = "multi_thread")]
async fn inserts_into_a_target_table_under_row_level_security_are_upserted_as_copy_refuses_it() {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new(
        "apply_copy_rls",
        "CREATE TABLE acc (id int PRIMARY KEY, version int NOT NULL, payload text);
         INSERT INTO acc SELECT i, 0, 'p' || i FROM generate_series(1, 300) i;
         CREATE PUBLICATION cdc_pub FOR TABLE acc;",
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_copy_rls_target").await;
    let target = pg_connect(&target_db.url).await;
    // Apply writes as a role that is neither the table's owner nor exempt from row-level
    // security: the server refuses it COPY FROM on the table ("COPY FROM not supported with
    // row-level security", 0A000), and lets the upsert through under the policy.
    target
        .batch_execute(&format!(
            "CREATE TABLE acc (id integer NOT NULL, version integer NOT NULL, payload text,
                 PRIMARY KEY (id));
             ALTER TABLE acc ENABLE ROW LEVEL SECURITY;
             CREATE POLICY apply_writes ON acc USING (true) WITH CHECK (true);
             GRANT SELECT, INSERT, UPDATE, DELETE ON acc TO cdc_agent;
             GRANT CREATE ON DATABASE {} TO cdc_agent;
             GRANT CREATE ON SCHEMA public TO cdc_agent;",
            target_db.name
        ))
        .await
        .unwrap();
    let agent = Agent::start(&cfg);
    agent.wait_streaming(Duration::from_secs(60));
    let topic = format!("{name}.public.acc");
    read_topic(&topic, Duration::from_secs(60), |r| r.len() >= 300);

    let mut apply = Apply::start(&apply_toml(
        &format!("topics = [\"{topic}\"]"),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.agent_url),
        "batch_max_ms = 1000",
    ));
    let select = "SELECT id::text, version::text, payload FROM acc ORDER BY id";
    wait_equal(&admin, &target, select, &mut apply).await;
    admin
        .batch_execute("INSERT INTO acc SELECT i, 0, 'p' || i FROM generate_series(301, 600) i")
        .await
        .unwrap();
    wait_equal(&admin, &target, select, &mut apply).await;
    let log = apply.log();
    assert!(
        log.contains(REFUSED) && !log.contains(COPIED),
        "apply saw the table's row-level security and upserted every insert; log:\n{log}"
    );
}
