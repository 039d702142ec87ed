//! SIGTERM in the middle of a large chunked snapshot, the same check for every source: the
//! agent exits 0 within [`STOP_BOUND`] (systemd's stop timeout must never be what ends it),
//! and the next run resumes after the last committed chunk and ends with every row in the
//! table topic and the event store exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::agent::{Agent, AgentConfig};
use super::cdc::{log_mark, wait_log_after, TopicTail};
use super::eos::check_table_and_ledger;
use super::wait_until;

/// How long a clean stop may take: well inside systemd's default 90 s stop timeout, and the
/// bound the issue sets.
pub const STOP_BOUND: Duration = Duration::from_secs(10);

/// Starts the agent of `cfg` on a table of `rows` rows `(id, v = 0)` whose events go to
/// `topic`, sends SIGTERM once 30,000 of them are in Kafka, checks the clean stop, restarts
/// and checks the resumed snapshot's result. `label` names the source in the output.
pub async fn stop_mid_snapshot_and_resume(cfg: &AgentConfig, topic: &str, rows: i64, label: &str) {
    let mut agent = Agent::start(cfg);
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
    assert!(
        !agent.log().contains("snapshot complete"),
        "the snapshot finished before the signal"
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
            "snapshot resuming",
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
