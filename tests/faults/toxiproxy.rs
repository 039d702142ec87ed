//! A Toxiproxy server of the test's own, driven through its HTTP API.
//!
//! The server binary is built from Toxiproxy's Go module by `scripts/stack.d/toxiproxy.sh`
//! (`scripts/test-faults` passes its path in `CDC_TOXIPROXY`). Each test starts one server on a
//! free loopback port, creates a proxy per service on further free ports, and kills the server
//! when dropped: nothing of the shared stack is changed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::ports::free_port;

/// How long the server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `toxiproxy-server`; killed when dropped.
pub struct Toxiproxy {
    child: Child,
    api: String,
    http: reqwest::Client,
    /// The server's log (stdout and stderr), kept for failure messages.
    pub log: tempfile::NamedTempFile,
}

/// One proxy: clients connect to `listen`, the proxy connects to `upstream`.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub name: String,
    pub listen_port: u16,
}

impl Toxiproxy {
    /// Starts the server named by `CDC_TOXIPROXY` on a free loopback port and waits until its
    /// API answers. Panics (with how to get the binary) when the variable is missing.
    pub async fn start() -> Toxiproxy {
        let bin = std::env::var("CDC_TOXIPROXY").unwrap_or_else(|_| {
            panic!(
                "CDC_TOXIPROXY is not set: the fault suite needs toxiproxy-server; run it with \
                 scripts/test-faults, which builds the server (scripts/stack.d/toxiproxy.sh) \
                 and sets CDC_TOXIPROXY"
            )
        });
        let mut log = tempfile::NamedTempFile::new().unwrap();
        let mut last = String::new();
        // A port race (another listener took it between probe and bind) is retried.
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args(["-host", "127.0.0.1", "-port", &port.to_string()])
                .stdout(Stdio::from(log.reopen().unwrap()))
                .stderr(Stdio::from(log.reopen().unwrap()))
                .spawn()
                .unwrap_or_else(|e| panic!("start {bin}: {e}"));
            let mut me = Toxiproxy {
                child,
                api: format!("http://127.0.0.1:{port}"),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap(),
                log,
            };
            let start = Instant::now();
            while start.elapsed() < START_TIMEOUT {
                if me.child.try_wait().unwrap().is_some() {
                    break;
                }
                if let Ok(r) = me.http.get(format!("{}/version", me.api)).send().await {
                    if r.status().is_success() {
                        return me;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            last = std::fs::read_to_string(me.log.path()).unwrap_or_default();
            let _ = me.child.kill();
            let _ = me.child.wait();
            log = tempfile::NamedTempFile::new().unwrap();
            // `me` is dropped here; its log file with it (its text is in `last`).
        }
        panic!("toxiproxy-server did not answer on its API; its log:\n{last}");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.api);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("toxiproxy {method} {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "toxiproxy {method} {path} {body:?}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A proxy `name` from a free loopback port to `upstream` (`host:port`), enabled.
    pub async fn proxy(&self, name: &str, upstream: &str) -> Proxy {
        let port = free_port();
        self.call(
            reqwest::Method::POST,
            "/proxies",
            Some(json!({
                "name": name,
                "listen": format!("127.0.0.1:{port}"),
                "upstream": upstream,
                "enabled": true,
            })),
        )
        .await;
        Proxy {
            name: name.to_string(),
            listen_port: port,
        }
    }

    /// Enables or disables `proxy`. Disabled, it closes every connection and listens no more
    /// (a client gets "connection refused"): a cut.
    pub async fn set_enabled(&self, proxy: &Proxy, enabled: bool) {
        self.call(
            reqwest::Method::POST,
            &format!("/proxies/{}", proxy.name),
            Some(json!({ "enabled": enabled })),
        )
        .await;
    }

    /// Adds the toxic `kind` (latency, bandwidth, reset_peer, timeout, …) with `attributes` to
    /// one direction of `proxy`: `downstream` (service → agent) or `upstream` (agent →
    /// service). Returns its name.
    pub async fn add_toxic(
        &self,
        proxy: &Proxy,
        kind: &str,
        stream: &str,
        attributes: Value,
    ) -> String {
        let name = format!("{kind}_{stream}");
        self.call(
            reqwest::Method::POST,
            &format!("/proxies/{}/toxics", proxy.name),
            Some(json!({
                "name": name,
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            })),
        )
        .await;
        name
    }

    /// Removes the toxic `toxic` from `proxy`.
    pub async fn remove_toxic(&self, proxy: &Proxy, toxic: &str) {
        self.call(
            reqwest::Method::DELETE,
            &format!("/proxies/{}/toxics/{toxic}", proxy.name),
            None,
        )
        .await;
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
