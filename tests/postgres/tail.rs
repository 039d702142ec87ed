//! `cdc-agent tail`: live changes as JSON lines on stdout through a temporary slot, with no
//! Kafka and no registry (the test points both at closed ports to prove it).

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{pg_connect, stack_env, unique_name, wait_until, FreshPgDb};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// A running `cdc-agent tail`, killed on drop; its stdout lines arrive on `lines`.
struct Tail {
    child: Child,
    lines: mpsc::Receiver<String>,
    dir: tempfile::TempDir,
}

/// A main file and one postgres source `name` on the stack's PostgreSQL, in a new folder.
/// Kafka and the registry point at port 1, where nothing listens: tail must not need them.
fn write_config(name: &str, database: &str, publication: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("connectors")).unwrap();
    std::fs::write(
        dir.path().join("cdc-agent.toml"),
        "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n\
         [schema_registry]\nurl = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("connectors").join("source.toml"),
        format!(
            "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\n\
             host = \"127.0.0.1\"\nport = {port}\nuser = \"cdc_agent\"\n\
             password = \"cdc_agent\"\ndatabase = \"{database}\"\n\
             [postgres]\npublication = \"{publication}\"\n",
            port = stack_env("PG_PORT"),
        ),
    )
    .unwrap();
    dir
}

impl Tail {
    fn start(name: &str, database: &str, publication: &str) -> Tail {
        let dir = write_config(name, database, publication);
        let mut child = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
            .args(["tail", "--source", name, "--config"])
            .arg(dir.path().join("cdc-agent.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("tail.log")).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tail { child, lines, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tail.log")).unwrap_or_default()
    }

    /// The next `n` lines, parsed; panics with tail's log after [`WAIT`].
    fn read(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        let mut out = Vec::new();
        while out.len() < n {
            let left = WAIT.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!(
                        "stdout line is not JSON ({e}): {line}\nlog:\n{}",
                        self.log()
                    )
                })),
                Err(_) => panic!(
                    "got {} of {n} lines: {out:?}\nlog:\n{}",
                    out.len(),
                    self.log()
                ),
            }
        }
        out
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The temporary slots of `database`, active ones only.
async fn temporary_slots(admin: &tokio_postgres::Client, database: &str) -> Vec<String> {
    admin
        .query(
            "SELECT slot_name::text FROM pg_replication_slots \
             WHERE database = $1 AND temporary AND active",
            &[&database],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn tail_prints_changes_as_json_lines_and_its_temporary_slot_goes_when_killed() {
    let db = FreshPgDb::create("pgtail").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, ok boolean);
             CREATE TABLE other (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_pub FOR TABLE items;",
        )
        .await
        .unwrap();
    let name = unique_name("pgtail");
    let mut tail = Tail::start(&name, &db.name, "cdc_pub");

    // Tail shows what commits after its slot exists; wait for it.
    let slot = wait_until(WAIT, "tail's temporary slot", || {
        let (admin, database) = (&admin, &db.name);
        async move { temporary_slots(admin, database).await.pop() }
    })
    .await;
    assert!(slot.starts_with("cdc_tail_"), "{slot}");
    // The slot is listed while it is still being created (it waits for the transactions
    // running then to end): only once tail says it streams is a commit sure to be decoded.
    wait_until(WAIT, "tail streaming from its slot", || {
        let log = tail.log();
        async move {
            log.contains("tailing changes on a temporary slot")
                .then_some(())
        }
    })
    .await;

    admin
        .batch_execute(
            "BEGIN;
             INSERT INTO items VALUES (1, 'one', true), (2, 'two', NULL);
             INSERT INTO other VALUES (1);
             COMMIT;
             UPDATE items SET name = 'uno' WHERE id = 1;
             DELETE FROM items WHERE id = 2;",
        )
        .await
        .unwrap();
    let lines = tail.read(4);

    let ops: Vec<&str> = lines.iter().map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["c", "c", "u", "d"], "{lines:?}");
    for l in &lines {
        assert_eq!(l["schema"], "public");
        assert_eq!(l["table"], "items", "the unpublished table stays out: {l}");
        assert!(l["lsn"].as_str().unwrap().contains('/'), "{l}");
        assert!(l["xid"].is_u64(), "{l}");
        let ts = l["commit_ts"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "{l}");
    }
    assert_eq!(
        lines[0]["after"],
        json!({"id": 1, "name": "one", "ok": true})
    );
    assert_eq!(lines[0]["before"], Value::Null);
    assert_eq!(
        lines[1]["after"],
        json!({"id": 2, "name": "two", "ok": null})
    );
    assert_eq!(lines[0]["xid"], lines[1]["xid"], "one transaction, one xid");
    assert_ne!(lines[1]["xid"], lines[2]["xid"]);
    assert_eq!(
        lines[2]["after"],
        json!({"id": 1, "name": "uno", "ok": true})
    );
    // Default replica identity: a delete carries the key only.
    assert_eq!(
        lines[3]["before"],
        json!({"id": 2, "name": null, "ok": null})
    );
    assert_eq!(lines[3]["after"], Value::Null);

    // Killed without a chance to clean up: the server drops the temporary slot itself.
    tail.child.kill().unwrap();
    tail.child.wait().unwrap();
    wait_until(WAIT, "the temporary slot to disappear", || {
        let (admin, slot) = (&admin, &slot);
        async move {
            let left: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
                    &[slot],
                )
                .await
                .unwrap()
                .get(0);
            (left == 0).then_some(())
        }
    })
    .await;
}

#[test]
fn tail_of_an_unknown_source_is_a_configuration_error_naming_the_sources() {
    let dir = write_config("known", "postgres", "cdc_pub");
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
        .args(["tail", "--source", "missing", "--config"])
        .arg(dir.path().join("cdc-agent.toml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "configuration error: nothing started"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no source named `missing`"), "{err}");
    assert!(err.contains("known"), "{err}");
}
