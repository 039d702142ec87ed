//! The ledger tools on a real event store: `history` shows every version of a row in order;
//! `replay --to-topic` re-publishes exactly the selection; an event store written without
//! headers is read from its values.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::agent::{read_topic, Agent, AgentConfig};
use common::{pg_connect, unique_name, FreshPgDb};

const WAIT: Duration = Duration::from_secs(90);

fn agent_cli(agent: &Agent, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
        .args(args)
        .arg("--config")
        .arg(agent.dir.path().join("cdc-agent.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `cdc-agent history` of one key of `public.items`.
fn history_of(agent: &Agent, cfg: &AgentConfig, key: &str) -> String {
    agent_cli(
        agent,
        &[
            "history",
            "--source",
            &cfg.source_name,
            "--table",
            "public.items",
            "--key",
            key,
        ],
    )
}

/// The op column of `history` lines.
fn ops(out: &str) -> Vec<&str> {
    out.lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect()
}

async fn started(what: &str) -> (FreshPgDb, AgentConfig, Agent, tokio_postgres::Client) {
    started_with(what, Vec::new()).await
}

async fn started_with(
    what: &str,
    env: Vec<(String, String)>,
) -> (FreshPgDb, AgentConfig, Agent, tokio_postgres::Client) {
    let db = FreshPgDb::create(what).await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name(what);
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    cfg.env = env;
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    (db, cfg, agent, admin)
}

#[tokio::test]
async fn history_of_a_row_updated_five_times_shows_six_versions_in_order() {
    let (_db, cfg, agent, admin) = started("hist").await;
    admin
        .execute("INSERT INTO items VALUES (7, 0)", &[])
        .await
        .unwrap();
    admin
        .execute("INSERT INTO items VALUES (8, 100)", &[])
        .await
        .unwrap();
    for q in 1..=5 {
        admin
            .execute("UPDATE items SET qty = $1 WHERE id = 7", &[&q])
            .await
            .unwrap();
    }
    read_topic(&cfg.event_store_topic, WAIT, |r| r.len() >= 7);

    let out = history_of(&agent, &cfg, r#"{"id": 7}"#);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "six versions:\n{out}");
    assert_eq!(ops(&out), ["c", "u", "u", "u", "u", "u"], "{out}");
    for (q, line) in lines.iter().enumerate() {
        assert!(
            line.contains(&format!("\"qty\":{q}")),
            "version {q} in order:\n{out}"
        );
        assert!(line.contains("txid="), "{line}");
        assert!(
            line.starts_with("20"),
            "starts with the commit time: {line}"
        );
    }
}

#[tokio::test]
async fn replay_to_topic_produces_exactly_the_selection() {
    let (_db, cfg, agent, admin) = started("replay").await;
    admin
        .batch_execute(
            "INSERT INTO items SELECT g, g FROM generate_series(1, 50) g;
             UPDATE items SET qty = qty + 1 WHERE id <= 10;
             DELETE FROM items WHERE id > 45;",
        )
        .await
        .unwrap();
    let ledger = read_topic(&cfg.event_store_topic, WAIT, |r| r.len() >= 65);
    assert_eq!(ledger.len(), 65);

    // The selection: everything of this source and table (the whole ledger here).
    let target = format!("{}.rebuilt", cfg.topic_prefix);
    let err = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
        .args([
            "replay",
            "--source",
            &cfg.source_name,
            "--table",
            "public.items",
        ])
        .args(["--to-topic", &target, "--config"])
        .arg(agent.dir.path().join("cdc-agent.toml"))
        .output()
        .unwrap();
    assert!(
        err.status.success(),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let copied = read_topic(&target, WAIT, |r| r.len() >= 65);
    assert_eq!(copied.len(), ledger.len());
    for (a, b) in ledger.iter().zip(&copied) {
        assert_eq!(a.key, b.key);
        assert_eq!(a.value, b.value);
        assert_eq!(a.headers, b.headers);
    }

    // A narrower selection: one key, as JSON lines.
    let out = agent_cli(
        &agent,
        &[
            "replay",
            "--source",
            &cfg.source_name,
            "--key",
            r#"{"id":3}"#,
        ],
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "insert and update of id 3:\n{out}");
    assert_eq!(lines[1]["value"]["op"], "u");
    assert_eq!(lines[1]["value"]["after"]["qty"], 4);
}

#[tokio::test]
async fn replay_prints_decimals_as_decimal_strings_and_bytes_as_base64() {
    let (_db, cfg, agent, admin) = started("replayjson").await;
    admin
        .batch_execute(
            "ALTER TABLE items ADD COLUMN price numeric(10,2), ADD COLUMN n numeric,
                               ADD COLUMN data bytea;
             INSERT INTO items VALUES (1, 1, -123.45, 0.000123, '\\x00ff'),
                                      (2, 2, NULL, NULL, NULL);",
        )
        .await
        .unwrap();
    read_topic(&cfg.event_store_topic, WAIT, |r| r.len() >= 2);
    let out = agent_cli(&agent, &["replay", "--source", &cfg.source_name]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    let after = |i: usize| lines[i]["value"]["after"].clone();
    assert_eq!(
        after(0),
        serde_json::json!({"id": 1, "qty": 1, "price": "-123.45", "n": "0.000123", "data": "AP8="}),
        "{out}"
    );
    assert_eq!(
        after(1),
        serde_json::json!({"id": 2, "qty": 2, "price": null, "n": null, "data": null}),
        "{out}"
    );
}

/// The database server's clock, in milliseconds since the epoch (commit times are its).
async fn db_now_ms(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn without_headers_history_and_a_time_replay_read_the_values_and_a_position_replay_is_refused_by_name(
) {
    let env = vec![("CDC_AGENT__EVENT_STORE__HEADERS".into(), "false".into())];
    let (_db, cfg, agent, admin) = started_with("nohdr", env).await;
    admin
        .batch_execute(
            "INSERT INTO items VALUES (7, 0);
             UPDATE items SET qty = 1 WHERE id = 7;",
        )
        .await
        .unwrap();
    // A start time after the first two commits: the server's clock past their millisecond.
    let from = db_now_ms(&admin).await + 1;
    let deadline = std::time::Instant::now() + WAIT;
    while db_now_ms(&admin).await <= from {
        assert!(
            std::time::Instant::now() < deadline,
            "the server's clock stands still"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    admin
        .batch_execute(
            "UPDATE items SET qty = 2 WHERE id = 7;
             INSERT INTO items VALUES (8, 80);",
        )
        .await
        .unwrap();
    let ledger = read_topic(&cfg.event_store_topic, WAIT, |r| r.len() >= 4);
    assert_eq!(ledger.len(), 4);
    for r in &ledger {
        assert!(r.headers.is_empty(), "no headers: {:?}", r.headers);
    }

    // history: ops, commit times and transactions from the values.
    let out = history_of(&agent, &cfg, r#"{"id":7}"#);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "three versions:\n{out}");
    assert_eq!(ops(&out), ["c", "u", "u"], "{out}");
    for line in &lines {
        assert!(
            line.starts_with("20"),
            "starts with the commit time: {line}"
        );
        assert!(!line.contains("txid=-"), "a transaction id: {line}");
        assert!(
            line.contains("position=-"),
            "no position without the header: {line}"
        );
    }

    // replay from a time: exactly the two later commits, judged by the values' commit times.
    let out = agent_cli(
        &agent,
        &[
            "replay",
            "--source",
            &cfg.source_name,
            "--from",
            &from.to_string(),
        ],
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["value"]["op"].as_str().unwrap().to_owned(),
                l["value"]["after"]["qty"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [("u".into(), 2), ("c".into(), 80)], "{out}");

    // replay from a position: refused, naming the header and the setting.
    let refused = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
        .args([
            "replay",
            "--source",
            &cfg.source_name,
            "--from",
            "0/1",
            "--config",
        ])
        .arg(agent.dir.path().join("cdc-agent.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "refused: {err}");
    assert!(
        err.contains("cdc.position") && err.contains("[event_store] headers = false"),
        "names the header and the setting: {err}"
    );
}
