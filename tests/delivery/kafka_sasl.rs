//! Kafka with SASL/SCRAM, on the stack's SASL listener as its ordinary user `cdc` (not a super
//! user: only the ACLs scripts/stack.d/kafka.sh grants, which docs/security.md lists), with the
//! password read from a `sasl_password_file`. A wrong password stops the agent with a definite
//! error naming the keys, instead of retrying forever, and the password never reaches the log.
//! The same over TLS on the stack's SASL_SSL listener: trusted through `ssl_ca_location`, and an
//! untrusted broker certificate is a definite error naming that key.

use crate::common;

use std::time::Duration;

use common::agent::{read_topic, Agent};
use common::{pg_connect, stack_env, unique_name, FreshPgDb};

const WAIT: Duration = Duration::from_secs(90);

struct Setup {
    db: FreshPgDb,
    name: String,
    dir: tempfile::TempDir,
}

/// A database with table `t` (2 rows) in publication `cdc_pub`, and a source name inside the
/// prefix the SASL user holds ACLs for.
async fn setup(what: &str) -> Setup {
    let db = FreshPgDb::create(what).await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY);
             INSERT INTO t VALUES (1), (2);
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    let name = unique_name(&format!("{}{what}", stack_env("KAFKA_SASL_USER_PREFIX")));
    Setup {
        db,
        name,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// How the agent reaches Kafka: the SASL listener in plaintext, or the SASL_SSL listener
/// trusting the named CA file.
enum Listener {
    SaslPlaintext,
    SaslSsl { ca: String },
}

fn start_agent(s: &Setup, password: &str) -> Agent {
    start_agent_on(s, password, Listener::SaslPlaintext)
}

fn start_agent_on(s: &Setup, password: &str, listener: Listener) -> Agent {
    let (bootstrap, protocol, tls) = match listener {
        Listener::SaslPlaintext => (
            stack_env("KAFKA_SASL_BOOTSTRAP"),
            "SASL_PLAINTEXT",
            String::new(),
        ),
        Listener::SaslSsl { ca } => (
            stack_env("KAFKA_SSL_BOOTSTRAP"),
            "SASL_SSL",
            format!("ssl_ca_location = \"{ca}\"\n"),
        ),
    };
    let file = s.dir.path().join("kafka-password");
    // A trailing newline, as `echo secret > file` leaves it: it is not part of the password.
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let main = format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\nsecurity_protocol = \"{protocol}\"\n\
         sasl_mechanism = \"{mechanism}\"\nsasl_username = \"{user}\"\n\
         sasl_password_file = \"{file}\"\n{tls}\
         [schema_registry]\nurl = \"{registry}\"\n[event_store]\ntopic = \"{name}.events\"\n",
        mechanism = stack_env("KAFKA_SASL_MECHANISM"),
        user = stack_env("KAFKA_SASL_USER_USERNAME"),
        file = file.display(),
        registry = stack_env("SCHEMA_REGISTRY_URL"),
        name = s.name,
    );
    let source = format!(
        "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nuser = \"cdc_agent\"\npassword = \"cdc_agent\"\ndatabase = \"{db}\"\n\
         [postgres]\npublication = \"cdc_pub\"\n",
        name = s.name,
        port = stack_env("PG_PORT"),
        db = s.db.name,
    );
    Agent::start_files(&main, &source)
}

/// Waits for the agent to stop on a refused Kafka connection (exit 1, the definite error in
/// the log) and returns its log.
fn refused_exit(agent: &mut Agent) -> String {
    let code = agent.wait_exit(WAIT);
    let log = agent.log();
    println!(
        "exit {code:?}: {}",
        log.lines()
            .find(|l| l.contains("kafka refused"))
            .unwrap_or("")
    );
    assert_eq!(code, Some(1), "log:\n{log}");
    assert!(log.contains("kafka refused the connection"), "{log}");
    log
}

#[tokio::test]
async fn the_agent_streams_exactly_once_as_the_non_super_sasl_user_with_a_password_file() {
    let s = setup("eos").await;
    let password = stack_env("KAFKA_SASL_USER_PASSWORD");
    let agent = start_agent(&s, &password);
    agent.wait_streaming(WAIT);
    pg_connect(&s.db.url)
        .await
        .batch_execute("INSERT INTO t VALUES (3), (4), (5)")
        .await
        .unwrap();
    let topic = format!("{}.public.t", s.name);
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 5);
    let ledger = read_topic(&format!("{}.events", s.name), WAIT, |r| r.len() >= 5);
    println!(
        "{}: {} table events, {} ledger events through SASL/SCRAM as {}",
        s.name,
        recs.len(),
        ledger.len(),
        stack_env("KAFKA_SASL_USER_USERNAME")
    );
    assert_eq!((recs.len(), ledger.len()), (5, 5), "log:\n{}", agent.log());

    // A restart reads the source's offsets back (a consumer with the source's group id) as
    // the same user, and resumes without replaying.
    let agent = agent.restart();
    agent.wait_streaming(WAIT);
    pg_connect(&s.db.url)
        .await
        .batch_execute("INSERT INTO t VALUES (6)")
        .await
        .unwrap();
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 6);
    println!("after restart: {} table events", recs.len());
    assert_eq!(recs.len(), 6, "log:\n{}", agent.log());
    assert!(
        !agent.log().contains(&password),
        "the password is not logged"
    );
}

#[tokio::test]
async fn a_wrong_sasl_password_stops_the_agent_with_a_definite_error_naming_the_keys() {
    let s = setup("badpw").await;
    let wrong = "not-the-password-4711";
    let mut agent = start_agent(&s, wrong);
    let log = refused_exit(&mut agent);
    assert!(log.contains("sasl_password"), "names the key: {log}");
    assert!(!log.contains(wrong), "the password is not logged: {log}");
}

#[tokio::test]
async fn the_ledger_tools_stop_at_once_on_a_wrong_sasl_password_naming_the_keys() {
    let s = setup("badpwtools").await;
    let wrong = "not-the-password-4712";
    // The agent's files, used by the tools only: the agent itself is stopped at once.
    let mut agent = start_agent(&s, wrong);
    agent.wait_exit(WAIT);
    let config = agent.dir.path().join("cdc-agent.toml");
    let target = format!("{}.rebuilt", s.name);
    let runs: [&[&str]; 3] = [
        &["replay", "--from", "0/0"],
        &["replay", "--from", "0/0", "--to-topic", &target],
        &[
            "history", "--source", &s.name, "--table", "public.t", "--key", "1",
        ],
    ];
    for args in runs {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{args:?}: exit {:?}: {}", out.status.code(), stderr.trim());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("kafka refused the connection"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("sasl_password"), "names the key: {stderr}");
        assert!(
            !stderr.contains(wrong),
            "the password is not printed: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_agent_streams_exactly_once_over_sasl_ssl_trusting_the_brokers_ca() {
    let s = setup("tls").await;
    let password = stack_env("KAFKA_SASL_USER_PASSWORD");
    let agent = start_agent_on(
        &s,
        &password,
        Listener::SaslSsl {
            ca: stack_env("KAFKA_SSL_CA"),
        },
    );
    agent.wait_streaming(WAIT);
    pg_connect(&s.db.url)
        .await
        .batch_execute("INSERT INTO t VALUES (3), (4), (5)")
        .await
        .unwrap();
    let recs = read_topic(&format!("{}.public.t", s.name), WAIT, |r| r.len() >= 5);
    let ledger = read_topic(&format!("{}.events", s.name), WAIT, |r| r.len() >= 5);
    println!(
        "{}: {} table events, {} ledger events through SASL_SSL",
        s.name,
        recs.len(),
        ledger.len()
    );
    assert_eq!((recs.len(), ledger.len()), (5, 5), "log:\n{}", agent.log());
    assert!(
        !agent.log().contains(&password),
        "the password is not logged"
    );
}

#[tokio::test]
async fn an_untrusted_broker_certificate_stops_the_agent_naming_ssl_ca_location() {
    let s = setup("tlsca").await;
    // A CA that did not sign the broker's certificate: the stack's MariaDB test CA.
    let mut agent = start_agent_on(
        &s,
        &stack_env("KAFKA_SASL_USER_PASSWORD"),
        Listener::SaslSsl {
            ca: stack_env("MYSQL_SSL_CA"),
        },
    );
    let log = refused_exit(&mut agent);
    assert!(log.contains("ssl_ca_location"), "names the key: {log}");
}
