//! Kafka Connect's own JsonConverter as an independent reader of the agent's JSON output
//! (tests/connect/JsonRead.java; its jars resolved by scripts/stack.d/connect-json.sh, the
//! classpath exported by scripts/test as `CDC_CONNECT_JSON_CLASSPATH`).

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;

/// What Connect's JsonConverter makes of each record (key or value, by `side`).
pub fn connect_read(topic: &str, schemas: bool, side: &str, records: &[&[u8]]) -> Vec<Value> {
    let cp = std::env::var("CDC_CONNECT_JSON_CLASSPATH").expect(
        "CDC_CONNECT_JSON_CLASSPATH unset: run the tests through scripts/test, which resolves \
         Kafka Connect's JsonConverter (scripts/stack.d/connect-json.sh)",
    );
    let reader = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/connect/JsonRead.java");
    let mut child = Command::new("java")
        .args(["-cp", &cp, reader])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java");
    {
        let mut stdin = child.stdin.take().unwrap();
        for r in records {
            let b64 = base64::engine::general_purpose::STANDARD.encode(r);
            writeln!(stdin, "{topic}\t{schemas}\t{side}\t{b64}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "JsonRead failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
