//! Running `cdc-agent apply` for a test, and reading tables back as text for comparison.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::stack_env;

/// How long a test waits for the target to catch up with its source.
pub const CATCH_UP: Duration = Duration::from_secs(180);

/// A running `cdc-agent apply`; killed (SIGKILL) when dropped, its log kept.
pub struct Apply {
    child: Child,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    /// Extra command-line arguments (`--from …`), kept across restarts.
    args: Vec<String>,
}

/// The `apply.toml` of a test: the stack's Kafka and registry, the given source, target and
/// `[apply]` keys.
pub fn apply_toml(source: &str, target: &str, apply: &str) -> String {
    format!(
        "[kafka]\nbootstrap_servers = \"{kafka}\"\n\
         [schema_registry]\nurl = \"{registry}\"\n\
         [source]\n{source}\n[target]\n{target}\n[apply]\n{apply}\n",
        kafka = stack_env("KAFKA_BOOTSTRAP"),
        registry = stack_env("SCHEMA_REGISTRY_URL"),
    )
}

impl Apply {
    /// Writes `toml` and starts `cdc-agent apply`.
    pub fn start(toml: &str) -> Apply {
        Self::start_with(toml, &[])
    }

    /// [`Apply::start`] with extra arguments after `--config FILE`.
    pub fn start_with(toml: &str, args: &[&str]) -> Apply {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("apply.toml"), toml).unwrap();
        Self::spawn(dir, args.iter().map(|a| a.to_string()).collect())
    }

    fn spawn(dir: tempfile::TempDir, args: Vec<String>) -> Apply {
        let log = dir.path().join("apply.log");
        // Appended across restarts: the log tells what every incarnation did.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
            .args(["apply", "--config"])
            .arg(dir.path().join("apply.toml"))
            .args(&args)
            .env(
                "RUST_LOG",
                "info,cdc_agent=debug,librdkafka=warn,rdkafka=warn",
            )
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        Apply {
            child,
            dir,
            log,
            args,
        }
    }

    /// SIGKILL, then the same configuration started again.
    pub fn kill_and_restart(mut self) -> Apply {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let args = std::mem::take(&mut self.args);
        drop(self);
        Self::spawn(dir, args)
    }

    /// The address of the `[http]` endpoint, from the newest `http endpoint listening` line
    /// (tests listen on port 0). Waits up to `timeout`.
    pub fn http_addr(&mut self, timeout: Duration) -> std::net::SocketAddr {
        const LINE: &str = "http endpoint listening";
        let start = std::time::Instant::now();
        loop {
            self.assert_alive();
            let log = crate::common::agent::strip_ansi(&self.log());
            if let Some(addr) = log
                .lines()
                .rev()
                .find(|l| l.contains(LINE))
                .and_then(|l| l.split("addr=").nth(1))
                .and_then(|a| a.split_whitespace().next())
                .and_then(|a| a.parse().ok())
            {
                return addr;
            }
            assert!(
                start.elapsed() < timeout,
                "no `{LINE}` line after {timeout:?}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log when the process has exited.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("apply exited ({status}); log:\n{}", self.log());
        }
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Apply {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rows of `select` (every column cast to text by the caller) in the order it gives.
pub async fn rows(client: &tokio_postgres::Client, select: &str) -> Vec<Vec<Option<String>>> {
    client
        .query(select, &[])
        .await
        .unwrap_or_else(|e| panic!("{select}: {e}"))
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect()
}

/// Waits until `select` returns the same rows on both sides (the target may lack the table
/// at first), then returns them; on timeout, panics with both sides' difference and the log.
pub async fn wait_equal(
    source: &tokio_postgres::Client,
    target: &tokio_postgres::Client,
    select: &str,
    apply: &mut Apply,
) -> Vec<Vec<Option<String>>> {
    let want = rows(source, select).await;
    let start = std::time::Instant::now();
    loop {
        apply.assert_alive();
        let have: Vec<Vec<Option<String>>> = match target.query(select, &[]).await {
            Ok(rs) => rs
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.get::<_, Option<String>>(i))
                        .collect()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if have == want {
            return want;
        }
        if start.elapsed() > CATCH_UP {
            let missing: Vec<_> = want.iter().filter(|r| !have.contains(r)).take(5).collect();
            let extra: Vec<_> = have.iter().filter(|r| !want.contains(r)).take(5).collect();
            panic!(
                "target differs from source after {CATCH_UP:?} ({select}): {} vs {} rows; \
                 missing (first 5): {missing:?}; unexpected (first 5): {extra:?}; log:\n{}",
                want.len(),
                have.len(),
                apply.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `sql` (one bigint) on `client` reaches at least `n`; returns the value.
pub async fn wait_count(
    client: &tokio_postgres::Client,
    sql: &str,
    n: i64,
    apply: &mut Apply,
) -> i64 {
    let start = std::time::Instant::now();
    loop {
        apply.assert_alive();
        let got: i64 = match client.query_one(sql, &[]).await {
            Ok(r) => r.get::<_, Option<i64>>(0).unwrap_or(0),
            Err(_) => 0,
        };
        if got >= n {
            return got;
        }
        assert!(
            start.elapsed() < CATCH_UP,
            "timed out after {CATCH_UP:?} waiting for `{sql}` to reach {n} (at {got}); log:\n{}",
            apply.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
