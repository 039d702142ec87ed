//! SIGTERM in the middle of a large chunked snapshot, the same check for every source: the
//! agent exits 0 within [`STOP_BOUND`] (systemd's stop timeout must never be what ends it),
//! and the next run resumes after the last committed chunk and ends with every row in the
//! table topic and the event store exactly once. A PostgreSQL server before 14 snapshots in
//! one piece, which is not resumable (docs/snapshots.md): there the next run takes the whole
//! snapshot again from a new slot, and every row arrives, in order, at least once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::agent::{Agent, AgentConfig};
use super::cdc::{log_mark, wait_log, wait_log_after, TopicTail};
use super::eos::{changes, check_table_and_ledger, tally};
use super::wait_until;

/// How long a clean stop may take: well inside systemd's default 90 s stop timeout, and the
/// bound the issue sets.
pub const STOP_BOUND: Duration = Duration::from_secs(10);

/// Starts the agent of `cfg` on a table of `rows` rows `(id, v = 0)` whose events go to
/// `topic`, sends SIGTERM once 30,000 of them are in Kafka (at its first progress line for a
/// one-piece snapshot), checks the clean stop, restarts
/// and checks the resumed snapshot's result. `label` names the source in the output;
/// `resumable` is false for a one-piece snapshot (PostgreSQL before 14), which the next run
/// takes again.
pub async fn stop_mid_snapshot_and_resume(
    cfg: &AgentConfig,
    topic: &str,
    rows: i64,
    label: &str,
    resumable: bool,
) {
    let mut agent = Agent::start(cfg);
    if resumable {
        let tail = tokio::task::block_in_place(|| TopicTail::open(topic, Duration::from_secs(60)));
        wait_until(
            Duration::from_secs(120),
            "part of the snapshot in Kafka",
            || {
                let end = tail.end();
                async move { (end >= 30_000).then_some(()) }
            },
        )
        .await;
    } else {
        // A one-piece snapshot is one Kafka transaction, invisible to a read_committed reader
        // until its end: the signal comes at its first progress line instead.
        tokio::task::block_in_place(|| {
            wait_log(&mut agent, "snapshot progress", Duration::from_secs(120))
        });
    }
    assert!(
        !agent.log().contains("snapshot complete"),
        "the snapshot finished before the signal; log:\n{}",
        agent.log()
    );
    let signalled = Instant::now();
    agent.terminate();
    let code = tokio::task::block_in_place(|| agent.wait_exit(STOP_BOUND));
    let took = signalled.elapsed();
    assert_eq!(
        code,
        Some(0),
        "no clean exit within {STOP_BOUND:?} of SIGTERM (waited {took:?}); log:\n{}",
        agent.log()
    );
    assert!(
        !agent.log().contains("snapshot complete"),
        "the snapshot finished before the signal took effect; the test proves nothing"
    );
    println!("{label}_snapshot_sigterm: exited in {took:?}");

    let mark = log_mark(&agent);
    let mut agent = agent.restart();
    tokio::task::block_in_place(|| {
        wait_log_after(
            &mut agent,
            mark,
            if resumable {
                "snapshot resuming"
            } else {
                "recreating the slot and snapshotting again"
            },
            Duration::from_secs(60),
        );
        wait_log_after(
            &mut agent,
            mark,
            "snapshot complete",
            Duration::from_secs(300),
        );
    });
    let final_state: HashMap<i64, i64> = (1..=rows).map(|id| (id, 0)).collect();
    if !resumable {
        // Taken again: the rows read before the signal come twice, none is lost or reordered.
        for (what, t) in [
            ("table topic", topic),
            ("event store", &cfg.event_store_topic),
        ] {
            let seen =
                tokio::task::block_in_place(|| changes(t, &final_state, Duration::from_secs(180)));
            let t = tally(&seen, &final_state);
            println!(
                "{label} {what} after SIGTERM mid one-piece snapshot: lost={} dup={} out_of_order={} unexpected_keys={}",
                t.lost, t.dup, t.out_of_order, t.unexpected
            );
            assert_eq!((t.lost, t.out_of_order, t.unexpected), (0, 0, 0), "{what}");
        }
        return;
    }
    tokio::task::block_in_place(|| {
        check_table_and_ledger(
            " after SIGTERM mid-snapshot",
            topic,
            &cfg.event_store_topic,
            &final_state,
            Duration::from_secs(180),
        )
    });
}
