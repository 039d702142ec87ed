//! An HTTP-level fault in front of the schema registry: a `mitmdump` (mitmproxy) of the test's
//! own in reverse-proxy mode with the addon `http_fault.py`, which answers every request with
//! HTTP 500 while a flag file exists. Toxiproxy works on TCP and cannot make a registry that
//! answers but fails.
//!
//! `mitmdump` is installed from PyPI by `scripts/stack.d/mitmproxy.sh` (`scripts/test-faults`
//! passes its path in `CDC_MITMDUMP`). It listens on a free loopback port and is killed when
//! dropped: nothing of the shared stack is changed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::ports::free_port;

/// How long mitmdump may take to listen (it creates its certificate authority first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `mitmdump` in front of one HTTP service; killed when dropped.
pub struct HttpFault {
    child: Child,
    /// Clients connect here instead of to the service.
    pub listen_port: u16,
    /// While this file exists, every request is answered with HTTP 500.
    flag: PathBuf,
    /// Its configuration folder (certificate authority), its flag and its log.
    dir: tempfile::TempDir,
}

impl HttpFault {
    /// Starts `mitmdump` (the path in `CDC_MITMDUMP`) as a reverse proxy to `upstream`
    /// (`http://host:port`) and waits until it accepts connections. Panics (with how to get
    /// the binary) when the variable is missing.
    pub async fn start(upstream: &str) -> HttpFault {
        let bin = std::env::var("CDC_MITMDUMP").unwrap_or_else(|_| {
            panic!(
                "CDC_MITMDUMP is not set: the registry's HTTP 500 case needs mitmproxy's \
                 mitmdump; run it with scripts/test-faults, which installs it \
                 (scripts/stack.d/mitmproxy.sh) and sets CDC_MITMDUMP"
            )
        });
        let addon = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/faults/http_fault.py");
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("fail");
        let log_path = dir.path().join("mitmdump.log");
        let mut last = String::new();
        // A port race (another listener took it between probe and bind) is retried.
        for _ in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&bin)
                .args([
                    "--mode",
                    &format!("reverse:{upstream}"),
                    "--listen-host",
                    "127.0.0.1",
                    "--listen-port",
                    &port.to_string(),
                    "--set",
                    &format!("confdir={}", dir.path().display()),
                    "--set",
                    &format!("fault_flag={}", flag.display()),
                    "--quiet",
                    "-s",
                    addon,
                ])
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("start {bin}: {e}"));
            let start = Instant::now();
            while start.elapsed() < START_TIMEOUT {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return HttpFault {
                        child,
                        listen_port: port,
                        flag,
                        dir,
                    };
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            last = std::fs::read_to_string(&log_path).unwrap_or_default();
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("mitmdump did not listen; its log:\n{last}");
    }

    /// Makes every request answer HTTP 500 (`true`) or pass through again (`false`).
    pub fn fail(&self, on: bool) {
        if on {
            std::fs::write(&self.flag, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(&self.flag);
        }
    }

    /// mitmdump's output so far, for failure messages.
    #[allow(dead_code)]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mitmdump.log")).unwrap_or_default()
    }
}

impl Drop for HttpFault {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
