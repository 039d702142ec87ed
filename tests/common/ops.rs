//! Helpers of the operations tests: the agent's HTTP endpoint, its Prometheus text, and taking
//! the stack's PostgreSQL away and back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

/// Runs `scripts/stack <cmd> <svc>` (the stack of `CDC_STACK_DIR`); true on success.
pub fn stack(cmd: &str, svc: &str) -> bool {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Command::new(root.join("scripts/stack"))
        .args([cmd, svc])
        .current_dir(&root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts PostgreSQL again when dropped, whatever happened to the test.
pub struct PostgresBack;

impl Drop for PostgresBack {
    fn drop(&mut self) {
        if !stack("start", "postgres") {
            eprintln!("could not restart PostgreSQL; run `scripts/stack start postgres`");
        }
    }
}

/// GET `path` from the agent: status code and body; `None` when the endpoint does not answer.
pub async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let resp = reqwest::get(format!("http://{addr}{path}")).await.ok()?;
    let code = resp.status().as_u16();
    Some((code, resp.text().await.ok()?))
}

/// `/metrics`, parsed by a Prometheus text-format parser.
pub async fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let (code, body) = get(addr, "/metrics").await.expect("/metrics answers");
    assert_eq!(code, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

/// The value of the sample `name` whose labels include `labels`; `None` when absent.
pub fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .find_map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// The state of `source` in `/readyz`'s JSON body, and whether the endpoint said 200.
pub async fn readiness(addr: SocketAddr, source: &str) -> Option<(bool, serde_json::Value)> {
    let (code, body) = get(addr, "/readyz").await?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let src = json["sources"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == source)?
        .clone();
    Some((code == 200, src))
}

/// [`crate::common::wait_until`] that shows the agent's log when it times out.
pub async fn wait_logged<T, F, Fut>(
    agent: &crate::common::agent::Agent,
    timeout: std::time::Duration,
    what: &str,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; agent log:\n{}",
            agent.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
