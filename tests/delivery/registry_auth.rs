//! Registry basic auth and TLS. Apicurio in the stack has no authentication, so a small
//! listener in the test stands in for the registry's front door: it records the request's
//! `Authorization` header and answers as a registry would (an id, or 401). It checks what the
//! client sends, not how a registry behaves.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdc_agent::config::{SchemaRegistryConfig, Secret};
use cdc_agent::registry::Registry;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use common::agent::Agent;
use common::tls::{new_ca, server_cert};
use common::{pg_connect, stack_env, unique_name, FreshPgDb};

const USER: &str = "registry-user";

/// Reads one HTTP/1.1 request (headers and a Content-Length body) and returns its headers.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Vec<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed before sending a request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    headers
}

async fn answer<S: AsyncWrite + Unpin>(s: &mut S, status: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(resp.as_bytes()).await.unwrap();
    s.shutdown().await.ok();
}

type Seen = Arc<Mutex<Vec<Option<String>>>>;

fn authorization(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone())
}

fn expected_header(password: &str) -> String {
    format!(
        "Basic {}",
        openssl::base64::encode_block(format!("{USER}:{password}").as_bytes())
    )
}

#[tokio::test]
async fn the_client_sends_basic_auth_over_https_to_a_registry_signed_by_the_configured_ca() {
    let ca = new_ca("registry test ca");
    let (cert, key) = server_cert(&ca, "localhost");
    let identity = native_tls::Identity::from_pkcs8(
        &cert.to_pem().unwrap(),
        &key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    let acceptor =
        tokio_native_tls::TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let server_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                // A client that does not trust the certificate hangs up mid-handshake.
                server_seen.lock().unwrap().push(None);
                continue;
            };
            let headers = read_request(&mut tls).await;
            server_seen.lock().unwrap().push(authorization(&headers));
            answer(&mut tls, "200 OK", r#"{"id":42}"#).await;
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.to_pem().unwrap()).unwrap();
    let password = "registry-pass-7c1f";
    let cfg = SchemaRegistryConfig {
        url: format!("https://localhost:{port}"),
        username: Some(USER.into()),
        password: Some(Secret::new(password)),
        password_file: None,
        ca_file: Some(ca_file),
    };
    let registry = Registry::new(&cfg).unwrap();
    let id = registry
        .register("t-value", r#"{"type":"string"}"#)
        .await
        .unwrap();
    assert_eq!(id, 42);
    let headers = seen.lock().unwrap().clone();
    println!("authorization headers seen: {}", headers.len());
    assert_eq!(headers, vec![Some(expected_header(password))]);
    assert!(!format!("{registry:?}").contains(password));

    // Without the CA the registry's certificate is refused: a definite error naming the key.
    let untrusting = Registry::new(&SchemaRegistryConfig {
        ca_file: None,
        ..cfg
    })
    .unwrap();
    let err = untrusting
        .register("t-value", r#"{"type":"string"}"#)
        .await
        .unwrap_err();
    println!("without ca_file: {err}");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("schema_registry.ca_file"), "{err}");
}

// Multi-threaded: the listener must answer while the test thread waits for the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registry_login_stops_the_agent_and_the_password_is_not_logged() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let server_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let headers = read_request(&mut tcp).await;
            server_seen.lock().unwrap().push(authorization(&headers));
            answer(
                &mut tcp,
                "401 Unauthorized",
                r#"{"error_code":40101,"message":"Unauthorized"}"#,
            )
            .await;
        }
    });

    let db = FreshPgDb::create("regauth").await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY);
             INSERT INTO t VALUES (1);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name("regauth");
    let dir = tempfile::tempdir().unwrap();
    let password = "registry-pass-from-file-93ab";
    let pw_file = dir.path().join("registry-password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let main = format!(
        "[kafka]\nbootstrap_servers = \"{}\"\n[schema_registry]\nurl = \"http://127.0.0.1:{port}\"\n\
         username = \"{USER}\"\npassword_file = \"{}\"\n[event_store]\ntopic = \"{name}.events\"\n",
        stack_env("KAFKA_BOOTSTRAP"),
        pw_file.display(),
    );
    let source = format!(
        "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\nhost = \"127.0.0.1\"\n\
         port = {}\nuser = \"cdc_agent\"\npassword = \"cdc_agent\"\ndatabase = \"{}\"\n\
         [postgres]\npublication = \"cdc_pub\"\n",
        stack_env("PG_PORT"),
        db.name,
    );
    let mut agent = Agent::start_files(&main, &source);
    let code = agent.wait_exit(Duration::from_secs(90));
    let log = agent.log();
    println!(
        "exit {code:?}: {}",
        log.lines().find(|l| l.contains("http 401")).unwrap_or("")
    );
    assert_eq!(code, Some(1), "log:\n{log}");
    assert!(
        log.contains("username and password"),
        "names the keys: {log}"
    );
    assert!(!log.contains(password), "the password is not logged: {log}");
    let headers = seen.lock().unwrap().clone();
    assert!(!headers.is_empty());
    assert!(
        headers
            .iter()
            .all(|h| h.as_deref() == Some(expected_header(password).as_str())),
        "{headers:?}"
    );
}
