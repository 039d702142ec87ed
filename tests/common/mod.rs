//! Shared helpers of the integration tests. They run against the real local stack
//! (`scripts/stack up`), found through the variables `scripts/stack env` prints; `scripts/test`
//! sets them. Nothing here mocks a service.
#![allow(dead_code)]

pub mod agent;
pub mod cdc;
pub mod connect;
pub mod eos;
pub mod kafka;
pub mod minimal_root;
pub mod mysql;
pub mod ops;
pub mod pgcase;
pub mod ports;
pub mod rng;
pub mod scratch;
pub mod scratch_pg;
pub mod sigterm;
pub mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A stack variable, or a panic that says how to get it.
pub fn stack_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: integration tests run against the local stack; \
             use scripts/test, or `scripts/stack up && eval \"$(scripts/stack env)\"` first"
        )
    })
}

/// A name no other test (or earlier run) uses: `<prefix>_<pid>_<n>_<time>`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
/// Tests wait on conditions, never on fixed sleeps.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connects with tokio-postgres and drives the connection on the current runtime.
pub async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", redact(url)));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// `server_version_num` of the server `client` is connected to (e.g. 120022, 170012): tests
/// whose server features or documented agent behaviour depend on the major read it here, so
/// the same test runs on every major of scripts/test-matrix.
pub async fn pg_server_version_num(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0)
}

/// `server_version_num` of PostgreSQL 14, the first whose pgoutput carries logical decoding
/// messages (pgoutput options `messages`, `streaming`): from 14 the agent snapshots in key-ordered chunks while streaming (with watermark
/// messages) and takes on-demand snapshots; before it, the initial snapshot is one piece under
/// the slot's exported snapshot, and on-demand snapshots are refused naming 14.
pub const PG_LOGICAL_MESSAGES: i32 = 140000;

/// How many snapshots of a table the agent's `log` shows it started, for a server of
/// `version_num`: one `snapshot of table queued` per table when chunked (14+); one `snapshot
/// starting` per one-piece snapshot before 14, which reads every captured table (so a test
/// of one table counts the same either way).
pub fn snapshots_started(log: &str, version_num: i32) -> usize {
    if version_num >= PG_LOGICAL_MESSAGES {
        log.matches("snapshot of table queued").count()
    } else {
        log.matches("snapshot starting").count()
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// A database made for one test and dropped with it, together with every replication slot
/// on it (publications go with the database).
pub struct FreshPgDb {
    /// Database name.
    pub name: String,
    /// Superuser URL of this database.
    pub url: String,
    /// The agent role's URL of this database.
    pub agent_url: String,
}

impl FreshPgDb {
    /// Creates `test_<what>_…` owned by the test superuser, readable by the agent role.
    pub async fn create(what: &str) -> Self {
        let admin = pg_connect(&stack_env("PG_URL")).await;
        let name = unique_name(&format!("t_{what}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = replace_db(&stack_env("PG_URL"), &name);
        let agent_url = replace_db(&stack_env("PG_AGENT_URL"), &name);
        let db = pg_connect(&url).await;
        db.batch_execute(
            "GRANT USAGE ON SCHEMA public TO cdc_agent;
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO cdc_agent;",
        )
        .await
        .unwrap();
        FreshPgDb {
            name,
            url,
            agent_url,
        }
    }
}

impl Drop for FreshPgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = stack_env("PG_URL");
        // Drop may run inside a test's runtime, where blocking on another future is not
        // allowed; a short-lived thread with its own runtime sidesteps that.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let admin = pg_connect(&admin_url).await;
                // A slot left behind holds WAL forever (one leaked slot once held 8 GB). An
                // agent that outlived its test may take the slot again after its walsender is
                // terminated, so terminate and drop until none is left (15 s at most).
                for _ in 0..150 {
                    let _ = admin
                        .execute(
                            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
                             WHERE database = $1 AND active_pid IS NOT NULL",
                            &[&name],
                        )
                        .await;
                    let left = admin
                        .query(
                            "SELECT slot_name FROM pg_replication_slots WHERE database = $1",
                            &[&name],
                        )
                        .await
                        .unwrap_or_default();
                    if left.is_empty() {
                        break;
                    }
                    for row in left {
                        let slot: String = row.get(0);
                        let _ = admin
                            .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                            .await;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let cut = base.rfind('/').expect("database URL has a path");
    let mut out = format!("{}/{db}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}
