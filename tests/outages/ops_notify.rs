//! systemd notification against the real stack: the agent runs with a `NOTIFY_SOCKET` of the
//! test's own (a Unix datagram socket, as systemd provides) and `WATCHDOG_USEC` set. It sends
//! `READY=1`, `STATUS=` and periodic `WATCHDOG=1`; with the database stopped the pings go on
//! while `STATUS=` and `/readyz` say the source waits for its database, and both recover when
//! it returns.
//!
//! Stops and starts the stack's PostgreSQL: it must not run while another test binary uses
//! the stack, and it starts PostgreSQL again even when it fails.

use crate::common;

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::agent::{Agent, AgentConfig};
use common::ops::{readiness, stack, PostgresBack};
use common::{pg_connect, unique_name, wait_until, FreshPgDb};

const TIMEOUT: Duration = Duration::from_secs(120);
/// The watchdog interval the test gives the agent: it pings every half of it.
const WATCHDOG_USEC: u64 = 2_000_000;

/// What the agent sent to the notification socket, in order of arrival.
struct Notifications {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Notifications {
    fn listen() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        let mut seen = seen.lock().unwrap();
                        for line in text.lines() {
                            seen.push((Instant::now(), line.to_string()));
                        }
                    }
                }
            });
        }
        Self {
            seen,
            stop,
            path,
            _dir: dir,
        }
    }

    /// Messages received so far.
    fn all(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// Index just past the last message.
    fn mark(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// `WATCHDOG=1` pings received since `from`.
    fn pings_since(&self, from: usize) -> usize {
        self.all()[from..]
            .iter()
            .filter(|(_, m)| m == "WATCHDOG=1")
            .count()
    }

    /// The latest `STATUS=` text since `from`.
    fn status_since(&self, from: usize) -> Option<String> {
        self.all()[from..]
            .iter()
            .rev()
            .find_map(|(_, m)| m.strip_prefix("STATUS=").map(str::to_string))
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial_test::serial(stack)]
async fn systemd_sees_ready_status_and_a_watchdog_that_outlives_a_database_outage() {
    let db = FreshPgDb::create("ops_notify").await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let notes = Notifications::listen();
    let name = unique_name("ops_notify");
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml = "[postgres]\npublication = \"cdc_pub\"\n".into();
    cfg.env = vec![
        (
            "NOTIFY_SOCKET".into(),
            notes.path.to_string_lossy().into_owned(),
        ),
        ("WATCHDOG_USEC".into(), WATCHDOG_USEC.to_string()),
    ];
    let agent = Agent::start(&cfg);
    let addr = agent.http_addr(TIMEOUT);

    // Start-up: READY=1 with a STATUS= saying the source streams, then regular pings.
    wait_until(TIMEOUT, "READY=1", || async {
        notes
            .all()
            .iter()
            .any(|(_, m)| m == "READY=1")
            .then_some(())
    })
    .await;
    // READY=1 comes once every source streams *or snapshots* (docs/operations.md): the
    // status may still say "snapshotting" then, and must turn to "streaming".
    let at_ready = notes.status_since(0).unwrap_or_default();
    println!("at READY=1: STATUS={at_ready}");
    assert!(
        at_ready.starts_with(&format!("{name}: streaming"))
            || at_ready.starts_with(&format!("{name}: snapshotting")),
        "{at_ready}"
    );
    let ready_status = wait_until(TIMEOUT, "STATUS= streaming", || async {
        notes
            .status_since(0)
            .filter(|s| s.starts_with(&format!("{name}: streaming")))
    })
    .await;
    println!("then: STATUS={ready_status}");
    let start = notes.mark();
    wait_until(TIMEOUT, "three watchdog pings", || async {
        (notes.pings_since(start) >= 3).then_some(())
    })
    .await;

    // Outage: the status names the database, the pings go on.
    let back = PostgresBack;
    let outage = notes.mark();
    assert!(stack("stop", "postgres"), "stop postgres");
    let status = wait_until(TIMEOUT, "STATUS= waiting for database", || async {
        notes
            .status_since(outage)
            .filter(|s| s.starts_with(&format!("{name}: waiting for database")))
    })
    .await;
    println!("database stopped: STATUS={status}");
    let (ready, src) = readiness(addr, &name).await.expect("/readyz answers");
    assert!(!ready, "/readyz during the outage: {src}");
    assert_eq!(src["state"], "waiting_for_database");
    let waiting = notes.mark();
    wait_until(
        TIMEOUT,
        "three watchdog pings during the outage",
        || async { (notes.pings_since(waiting) >= 3).then_some(()) },
    )
    .await;
    let still = notes.status_since(outage).unwrap_or_default();
    assert!(
        still.contains("waiting for database"),
        "pings counted while the database was down, status: {still}"
    );
    println!(
        "watchdog pings during the outage: {} (every {} ms expected)",
        notes.pings_since(waiting),
        WATCHDOG_USEC / 2000
    );

    // Recovery: streaming again in STATUS= and /readyz, pings continue.
    drop(back);
    let recovered = notes.mark();
    let status = wait_until(TIMEOUT, "STATUS= streaming again", || async {
        notes
            .status_since(recovered)
            .filter(|s| s.starts_with(&format!("{name}: streaming")))
    })
    .await;
    println!("database back: STATUS={status}");
    wait_until(TIMEOUT, "/readyz 200 again", || async {
        readiness(addr, &name).await.filter(|(ok, _)| *ok)
    })
    .await;
    let after = notes.mark();
    wait_until(TIMEOUT, "pings after recovery", || async {
        (notes.pings_since(after) >= 2).then_some(())
    })
    .await;

    // Shutdown announces itself.
    agent.terminate();
    wait_until(TIMEOUT, "STOPPING=1", || async {
        notes
            .all()
            .iter()
            .any(|(_, m)| m == "STOPPING=1")
            .then_some(())
    })
    .await;
    let mut agent = agent;
    assert_eq!(agent.wait_exit(TIMEOUT), Some(0), "{}", agent.log());
    assert!(!agent.log().contains("pipeline stalled"), "{}", agent.log());
}
