//! `[snapshot] signal_table` on PostgreSQL: Debezium's signal table (`id`, `type`, `data`), so
//! an `INSERT` of an `execute-snapshot` signal works as it does with Debezium. Its rows travel
//! through the slot in commit order and are never published.

use crate::common;

use std::time::{Duration, Instant};

use common::agent::{Agent, AvroDecoder};
use common::cdc::{decode_table_change, reads_in, subject_versions, wait_log, TopicTail};
use common::pgcase::PgCase;
use common::{pg_server_version_num, PG_LOGICAL_MESSAGES};

use crate::bad_input::assert_exits_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execute_snapshot_row_in_the_signal_table_snapshots_its_table_and_is_never_published() {
    let PgCase {
        db: _db,
        admin,
        name,
        cfg,
        cleanup: _cleanup,
    } = PgCase::new(
        "sigtab",
        "CREATE TABLE a (id int PRIMARY KEY, val int NOT NULL, note text);
             INSERT INTO a SELECT g, 0, 'a' FROM generate_series(1, 800) g;
             CREATE TABLE debezium_signal (id varchar(64) PRIMARY KEY,
                                           type varchar(32) NOT NULL, data text);
             CREATE PUBLICATION cdc_pub FOR TABLE a, debezium_signal;",
        "[snapshot]\nmode = \"never\"\nchunk_size = 300\nsignal_table = \"public.debezium_signal\"",
    )
    .await;
    let mut agent = Agent::start(&cfg);
    if pg_server_version_num(&admin).await < PG_LOGICAL_MESSAGES {
        // On-demand snapshots ride on watermark messages, which pgoutput carries since 14:
        // before it signal_table is refused naming the version, never silently unread.
        tokio::task::block_in_place(|| {
            assert_exits_with(
                &mut agent,
                cdc_agent::ops::exit::FAILURE,
                &[
                    "signal_table = \"public.debezium_signal\" asks for on-demand snapshots",
                    "need PostgreSQL 14 or later",
                    "remove signal_table",
                ],
            )
        });
        return;
    }
    tokio::task::block_in_place(|| agent.wait_streaming(Duration::from_secs(90)));

    admin
        .batch_execute(
            "INSERT INTO debezium_signal VALUES ('ad-hoc-1', 'execute-snapshot',
               '{\"data-collections\": [\"public.a\"], \"type\": \"incremental\"}');",
        )
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        wait_log(
            &mut agent,
            "snapshot signal received",
            Duration::from_secs(60),
        );
        wait_log(&mut agent, "snapshot complete", Duration::from_secs(120));
    });
    let reads = tokio::task::block_in_place(|| reads_in(&format!("{name}.public.a"), 800));
    assert_eq!(
        reads,
        800,
        "every row of a read once; log:\n{}",
        agent.log()
    );

    // Clearing old signals (as Debezium users do) is no event and no error, and the stream
    // goes on.
    admin
        .batch_execute("DELETE FROM debezium_signal; UPDATE a SET val = 1 WHERE id = 1;")
        .await
        .unwrap();
    let mut tail = TopicTail::open(&format!("{name}.public.a"), Duration::from_secs(60));
    let mut dec = AvroDecoder::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut updated = false;
    while !updated && Instant::now() < deadline {
        updated = tokio::task::block_in_place(|| tail.poll(Duration::from_secs(1)))
            .iter()
            .any(|rec| decode_table_change(&mut dec, rec, "id").op.as_deref() == Some("u"));
    }
    assert!(
        updated,
        "the update after the signals' delete arrived; log:\n{}",
        agent.log()
    );
    assert!(
        subject_versions(&format!("{name}.public.debezium_signal-value")).is_empty(),
        "the signal table has no subject, so it was never published"
    );
    assert_eq!(
        agent.wait_exit(Duration::ZERO),
        None,
        "the agent runs on; log:\n{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_table_left_out_of_the_publication_stops_the_source_naming_alter_publication() {
    let case = PgCase::new(
        "sigpub",
        "CREATE TABLE a (id int PRIMARY KEY, val int NOT NULL);
             CREATE TABLE debezium_signal (id varchar(64) PRIMARY KEY,
                                           type varchar(32) NOT NULL, data text);
             CREATE PUBLICATION cdc_pub FOR TABLE a;",
        "[snapshot]\nsignal_table = \"public.debezium_signal\"",
    )
    .await;
    let mut agent = Agent::start(&case.cfg);
    tokio::task::block_in_place(|| {
        assert_exits_with(
            &mut agent,
            cdc_agent::ops::exit::FAILURE,
            &[
                "signal_table",
                "ALTER PUBLICATION \"cdc_pub\" ADD TABLE \"public\".\"debezium_signal\"",
            ],
        )
    });
}
