//! Exactly once under SIGKILL: `apply` is killed mid-stream while the source keeps updating
//! rows, and restarted. Every update increments the row's `version`; a trigger on the target
//! table records each (id, version) applied in an append-only audit table, so an update
//! applied twice shows as a duplicate pair and one never applied as a gap.
//!
//! The COPY path has its own: the source writes runs of 200 inserts between updates and
//! deletes, so apply writes them with COPY (inside a savepoint, in the batch's transaction),
//! and a gate trigger on the target stops COPY rows while the test holds an advisory lock;
//! the test kills apply (or has the server drop its connection) while its session stands
//! inside a COPY, so the cut provably lands there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::agent::Agent;
use crate::common::pgcase::PgCase;
use crate::common::{pg_connect, FreshPgDb};
use crate::support::{apply_toml, wait_count, wait_equal, Apply, CATCH_UP};

/// Rows the writer inserts.
const ROWS: i64 = 200;
/// Update transactions the writer runs per kill (10 rows each): a restarted apply catches up
/// thousands of changes at once, so the writer must outlast every kill.
const UPDATE_TXS_PER_KILL: i64 = 500;

/// The target table as apply would create it, plus the audit trigger: every row version
/// written to `acc` and committed leaves one (id, version) in `applied`.
const AUDITED_TARGET: &str = "
    CREATE TABLE acc (id integer NOT NULL, version integer NOT NULL, payload text,
        PRIMARY KEY (id));
    CREATE TABLE applied (id int NOT NULL, version int NOT NULL);
    CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO applied VALUES (NEW.id, NEW.version); RETURN NEW; END $$;
    CREATE TRIGGER audit AFTER INSERT OR UPDATE ON acc
        FOR EACH ROW EXECUTE FUNCTION audit();";

/// Asserts from the audit table that no version of a row was applied twice, and that every
/// row still in `acc` had each of its versions 0..=version applied (none skipped).
async fn assert_every_version_applied_once(target: &tokio_postgres::Client) {
    let twice = crate::support::rows(
        target,
        "SELECT id::text, version::text, count(*)::text FROM applied
         GROUP BY id, version HAVING count(*) > 1 ORDER BY 1, 2 LIMIT 10",
    )
    .await;
    assert!(
        twice.is_empty(),
        "changes applied twice (id, version, times): {twice:?}"
    );
    let gaps = crate::support::rows(
        target,
        "SELECT a.id::text FROM acc a JOIN applied p USING (id)
         GROUP BY a.id, a.version HAVING count(*) <> a.version + 1 LIMIT 10",
    )
    .await;
    assert!(
        gaps.is_empty(),
        "rows with versions never applied: {gaps:?}"
    );
}

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
    target.batch_execute(AUDITED_TARGET).await.unwrap();
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
    assert_every_version_applied_once(&target).await;
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

/// New rows the writer inserts per transaction: one run of inserts of one table, well over
/// the 64 from which apply writes a run with COPY.
const BURST: i64 = 200;
/// Row versions the writer lets the target lag behind by at most, so a restarted apply
/// catches up in seconds however long the test runs.
const BACKLOG: i64 = 3_000;
/// The advisory lock of the COPY gate: whoever holds it stops every COPY into `acc` at
/// its next row.
const GATE: i64 = 4_242;

/// A gate in front of every row a COPY writes into `acc` (and nothing else: the trigger
/// looks at the statement): a row waits while the test holds advisory lock [`GATE`], so the
/// test finds apply's session stopped inside a COPY, at whichever row came next. A BEFORE
/// trigger, so the COPY stops row by row, as its data arrives.
fn copy_gate() -> String {
    format!(
        "CREATE FUNCTION copy_gate() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF current_query() LIKE 'COPY %' THEN
                     PERFORM pg_advisory_lock_shared({GATE});
                     PERFORM pg_advisory_unlock_shared({GATE});
                 END IF;
                 RETURN NEW;
             END $$;
         CREATE TRIGGER copy_gate BEFORE INSERT ON acc
             FOR EACH ROW EXECUTE FUNCTION copy_gate();"
    )
}

/// What ends apply's session inside a COPY.
#[derive(Clone, Copy)]
enum Cut {
    /// SIGKILL to apply, which is started again.
    KillApply,
    /// The server terminates the session (`pg_terminate_backend`): apply's connection
    /// drops mid-COPY, and apply, still running, starts over on a new one.
    DropConnection,
}

/// Closes the gate, waits until apply's session stands at it inside a COPY, ends that
/// session there (`cut`), opens the gate, and waits until the server has ended the session
/// (its transaction rolled back). Returns apply, started again after a kill.
async fn cut_inside_a_copy(target: &tokio_postgres::Client, mut apply: Apply, cut: Cut) -> Apply {
    target
        .execute("SELECT pg_advisory_lock($1)", &[&GATE])
        .await
        .unwrap();
    let at_gate = "SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE 'COPY %'";
    let start = std::time::Instant::now();
    let pid: i32 = loop {
        apply.assert_alive();
        if let Some(row) = target.query(at_gate, &[]).await.unwrap().first() {
            break row.get(0);
        }
        assert!(
            start.elapsed() < CATCH_UP,
            "apply never stood inside a COPY in {CATCH_UP:?}; log:\n{}",
            apply.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let apply = match cut {
        Cut::KillApply => apply.kill_and_restart(),
        Cut::DropConnection => {
            let ended: bool = target
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap()
                .get(0);
            assert!(
                ended,
                "session {pid} was gone before it could be terminated"
            );
            apply
        }
    };
    target
        .execute("SELECT pg_advisory_unlock($1)", &[&GATE])
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while target
        .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            start.elapsed() < CATCH_UP,
            "apply's cut session {pid} still runs after {CATCH_UP:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    apply
}

/// The writer of the COPY crash test until `stop`: a run of [`BURST`] new rows, then an
/// update (a new version of ten rows of any burst so far) and a delete of two rows, each
/// its own transaction; ids are never used again. Waits (with a deadline) whenever the target
/// lags more than [`BACKLOG`] row versions behind.
async fn write_bursts(source_url: String, target_url: String, stop: Arc<AtomicBool>) {
    let w = pg_connect(&source_url).await;
    let target = pg_connect(&target_url).await;
    let mut written = 0i64;
    let mut round = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let first = round * BURST + 1;
        written += w
            .execute(
                "INSERT INTO acc SELECT i, 0, 'p' || i FROM generate_series($1::int, $2::int) i",
                &[&(first as i32), &((first + BURST - 1) as i32)],
            )
            .await
            .unwrap() as i64;
        // Older rows, from every burst so far, so updates meet rows copied long ago.
        let lo = (round * 37) % (first + BURST - 10);
        written += w
            .execute(
                "UPDATE acc SET version = version + 1, payload = 'u' || $3::text
                 WHERE id > $1::int AND id <= $2::int",
                &[&(lo as i32), &((lo + 10) as i32), &round.to_string()],
            )
            .await
            .unwrap() as i64;
        w.execute(
            "DELETE FROM acc WHERE id IN ($1::int, $2::int)",
            &[&((lo + 3) as i32), &((first + 7) as i32)],
        )
        .await
        .unwrap();
        round += 1;
        let start = std::time::Instant::now();
        loop {
            let applied: i64 = target
                .query_one("SELECT count(*) FROM applied", &[])
                .await
                .unwrap()
                .get(0);
            if written - applied <= BACKLOG || stop.load(Ordering::Relaxed) {
                break;
            }
            assert!(
                start.elapsed() < CATCH_UP,
                "the target stayed {} row versions behind for {CATCH_UP:?}",
                written - applied
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Exactly once through the COPY path: the source writes long runs of inserts between
/// updates and deletes, apply (batches of up to 1000 events) writes them with COPY, and
/// `cuts` times apply's session is ended (`cut`) while it stands inside a COPY.
async fn cut_inside_copies(cuts: usize, cut: Cut) {
    let PgCase {
        admin,
        name,
        cfg,
        db,
        cleanup: _cleanup,
    } = PgCase::new(
        "apply_kill_copy",
        "CREATE TABLE acc (id int PRIMARY KEY, version int NOT NULL, payload text);
         CREATE PUBLICATION cdc_pub FOR TABLE acc;",
        "",
    )
    .await;
    let target_db = FreshPgDb::create("apply_kill_copy_target").await;
    let target = pg_connect(&target_db.url).await;
    target
        .batch_execute(&format!("{AUDITED_TARGET};\n{}", copy_gate()))
        .await
        .unwrap();
    let agent = Agent::start(&cfg);
    agent.wait_streaming(Duration::from_secs(60));
    let mut apply = Apply::start(&apply_toml(
        &format!("topics = [\"{name}.public.acc\"]"),
        &format!("kind = \"postgres\"\nurl = \"{}\"", target_db.url),
        "batch_max_events = 1000\nbatch_max_ms = 100\ntopic_refresh_seconds = 1",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_bursts(
        db.url.clone(),
        target_db.url.clone(),
        stop.clone(),
    ));

    let audit = "SELECT count(*) FROM applied";
    let mut seen = 0;
    for _ in 0..cuts {
        // Progress since the last start first: each cut lands in a later stretch.
        seen = wait_count(&target, audit, seen + 1_000, &mut apply).await;
        apply = cut_inside_a_copy(&target, apply, cut).await;
    }
    wait_count(&target, audit, seen + 1_000, &mut apply).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    wait_equal(
        &admin,
        &target,
        "SELECT id::text, version::text, payload FROM acc ORDER BY id",
        &mut apply,
    )
    .await;
    assert_every_version_applied_once(&target).await;

    let log = apply.log();
    let runs: Vec<&str> = log.split("apply started").skip(1).collect();
    assert_eq!(runs.len(), cuts + 1, "log:\n{log}");
    // Each start copied again (the killed COPY's rows went with its transaction, so their
    // replay copies too), and no COPY ever met a key the target held: a conflict would be
    // rows committed without the offsets that cover them.
    assert!(
        runs.iter().all(|r| r.contains("rows copied")),
        "a start of apply copied nothing; log:\n{log}"
    );
    assert!(
        !log.contains("copy met a key the target holds"),
        "a COPY met rows already there; log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_killed_five_times_inside_a_copy_applies_every_change_exactly_once() {
    cut_inside_copies(5, Cut::KillApply).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_three_times_inside_a_copy_is_started_over_and_every_change_applied_once(
) {
    cut_inside_copies(3, Cut::DropConnection).await;
}
