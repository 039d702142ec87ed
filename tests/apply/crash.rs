//! Exactly once under SIGKILL: `apply` is killed mid-stream while the source keeps updating
//! rows, and restarted. Every update increments the row's `version`; a trigger on the target
//! table records each (id, version) applied in an append-only audit table, so an update
//! applied twice shows as a duplicate pair and one never applied as a gap.

use std::time::Duration;

use crate::common::agent::Agent;
use crate::common::pgcase::PgCase;
use crate::common::{pg_connect, FreshPgDb};
use crate::support::{apply_toml, wait_count, wait_equal, Apply};

/// Rows the writer inserts.
const ROWS: i64 = 200;
/// Update transactions the writer runs per kill (10 rows each): a restarted apply catches up
/// thousands of changes at once, so the writer must outlast every kill.
const UPDATE_TXS_PER_KILL: i64 = 500;

async fn killed_mid_stream(kills: usize) {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new(
        "apply_kill",
        "CREATE TABLE acc (id int PRIMARY KEY, version int NOT NULL, payload text);
         CREATE PUBLICATION cdc_pub FOR TABLE acc;",
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_kill_target").await;
    let target = pg_connect(&target_db.url).await;
    // The target table as apply would create it, plus the audit trigger.
    target
        .batch_execute(
            "CREATE TABLE acc (id integer NOT NULL, version integer NOT NULL, payload text,
                 PRIMARY KEY (id));
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
    let mut apply = Apply::start(&apply_toml(
        &format!("topics = [\"{name}.public.acc\"]"),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        // Small transactions, so kills land between and inside many of them.
        "batch_max_events = 50\nbatch_max_ms = 20\ntopic_refresh_seconds = 1",
    ));

    let writer_url = _db.url.clone();
    let writer = tokio::spawn(async move {
        let w = pg_connect(&writer_url).await;
        w.batch_execute(&format!(
            "INSERT INTO acc SELECT i, 0, 'p' || i FROM generate_series(1, {ROWS}) i"
        ))
        .await
        .unwrap();
        for t in 0..UPDATE_TXS_PER_KILL * kills as i64 {
            let lo = (t * 7) % ROWS;
            w.batch_execute(&format!(
                "UPDATE acc SET version = version + 1, payload = 'u{t}'
                 WHERE id > {lo} AND id <= {lo} + 10"
            ))
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    // Kill whenever the target has taken more since the last start: mid-stream by design.
    let audit = "SELECT count(*) FROM applied";
    let mut seen = 0;
    for _ in 0..kills {
        seen = wait_count(&target, audit, seen + 100, &mut apply).await;
        apply = apply.kill_and_restart();
    }
    writer.await.unwrap();
    wait_equal(
        &admin,
        &target,
        "SELECT id::text, version::text, payload FROM acc ORDER BY id",
        &mut apply,
    )
    .await;
    let twice = crate::support::rows(
        &target,
        "SELECT id::text, version::text, count(*)::text FROM applied
         GROUP BY id, version HAVING count(*) > 1 ORDER BY 1, 2 LIMIT 10",
    )
    .await;
    assert!(
        twice.is_empty(),
        "changes applied twice (id, version, times): {twice:?}"
    );
    // Every version of every row applied once: 0..=final, nothing skipped.
    let gaps = crate::support::rows(
        &target,
        "SELECT a.id::text FROM acc a JOIN applied p USING (id)
         GROUP BY a.id, a.version HAVING count(*) <> a.version + 1 LIMIT 10",
    )
    .await;
    assert!(
        gaps.is_empty(),
        "rows with versions never applied: {gaps:?}"
    );
    let restarts = apply.log().matches("apply started").count();
    assert_eq!(restarts, kills + 1, "log:\n{}", apply.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_killed_three_times_mid_stream_applies_every_change_exactly_once() {
    killed_mid_stream(3).await;
}

/// The 20 kills under load (heavier; `cargo test --test apply -- --ignored`).
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn apply_killed_twenty_times_mid_stream_applies_every_change_exactly_once() {
    killed_mid_stream(20).await;
}

/// Two `apply` processes of one name on one target: the second waits on the first's claim
/// (it applies nothing, and says why), then takes over where the first stopped when the
/// first is killed; every row arrives once.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_apply_of_the_same_name_waits_for_the_first_and_takes_over_at_its_kill() {
    let PgCase {
        admin,
        name,
        cfg,
        db: _db,
        cleanup: _cleanup,
    } = PgCase::new(
        "apply_claim",
        "CREATE TABLE acc (id int PRIMARY KEY, version int NOT NULL, payload text);
         INSERT INTO acc SELECT i, 0, 'p' || i FROM generate_series(1, 100) i;
         CREATE PUBLICATION cdc_pub FOR TABLE acc;",
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_claim_target").await;
    let target = pg_connect(&target_db.url).await;
    let agent = Agent::start(&cfg);
    agent.wait_streaming(Duration::from_secs(60));
    let toml = apply_toml(
        &format!("topics = [\"{name}.public.acc\"]"),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "batch_max_ms = 20\ntopic_refresh_seconds = 1",
    );
    let select = "SELECT id::text, version::text, payload FROM acc ORDER BY id";
    let mut first = Apply::start(&toml);
    wait_equal(&admin, &target, select, &mut first).await;

    let mut second = Apply::start(&toml);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !second.log().contains("holds apply") {
        second.assert_alive();
        assert!(
            std::time::Instant::now() < deadline,
            "the second apply never said it waits for the claim; log:\n{}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !second.log().contains("apply started"),
        "the second apply started beside the first; log:\n{}",
        second.log()
    );

    admin
        .batch_execute("UPDATE acc SET version = version + 1, payload = 'after' WHERE id <= 50")
        .await
        .unwrap();
    drop(first); // SIGKILL
    wait_equal(&admin, &target, select, &mut second).await;
    assert!(
        second.log().contains("apply started"),
        "log:\n{}",
        second.log()
    );
}
