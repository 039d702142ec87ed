//! PostgreSQL over TLS, against the stack's server with a CA and a server certificate this test
//! generates: `verify-full` streams snapshot and changes with both the SQL and the replication
//! connection encrypted; a host name the certificate does not carry, or a certificate from
//! another CA, stops the agent with an error naming the key to fix; `require` encrypts without
//! a CA.
//!
//! The test turns `ssl = on` on the shared server with `ALTER SYSTEM` and a reload (no restart):
//! pg_hba's `host` lines accept TLS and plain alike, so other tests' plain connections keep
//! working. It leaves TLS on; a rerun installs fresh files and reloads again.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serial_test::serial;

use common::agent::{read_topic, Agent};
use common::tls::{client_cert, new_ca, server_cert, Ca};
use common::{pg_connect, stack_env, unique_name, wait_until, FreshPgDb};

const WAIT: Duration = Duration::from_secs(90);

/// The host name the server certificate is issued for. `127.0.0.1` is deliberately not in it,
/// so connecting by address is the "wrong host name" case.
const CERT_HOST: &str = "localhost";

/// What the test installed: the CA that signed the server certificate, and another CA.
struct Installed {
    ca: Ca,
    ca_file: PathBuf,
    other_ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// Generates a CA and a server certificate for [`CERT_HOST`], installs them into the stack's
/// server (files in its data folder, owned by its OS user; `ALTER SYSTEM`; reload) and waits
/// until new connections get them.
async fn install_server_tls() -> Installed {
    let ca = new_ca("cdc-agent test ca");
    let other = new_ca("cdc-agent other ca");
    let (cert, key) = server_cert(&ca, CERT_HOST);

    let admin = pg_connect(&stack_env("PG_URL")).await;
    let data_dir: String = admin
        .query_one("SELECT current_setting('data_directory')", &[])
        .await
        .unwrap()
        .get(0);
    let owner = std::fs::metadata(&data_dir).unwrap();
    let tls_dir = Path::new(&data_dir).join("cdc-test-tls");
    std::fs::create_dir_all(&tls_dir).unwrap();
    // Fresh names per run: the reload is confirmed by the server reporting the new name.
    let tag = unique_name("tls");
    let cert_file = tls_dir.join(format!("{tag}.crt"));
    let key_file = tls_dir.join(format!("{tag}.key"));
    let server_ca_file = tls_dir.join(format!("{tag}-ca.crt"));
    std::fs::write(&server_ca_file, ca.cert.to_pem().unwrap()).unwrap();
    std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    for f in [&tls_dir, &cert_file, &key_file, &server_ca_file] {
        std::os::unix::fs::chown(f, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // One statement per call: a multi-statement string is one implicit transaction, where
    // ALTER SYSTEM is not allowed.
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert_file.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key_file.display()),
        // Client certificates signed by the test CA are accepted (asked for, not required:
        // clients without one are unaffected).
        format!(
            "ALTER SYSTEM SET ssl_ca_file = '{}'",
            server_ca_file.display()
        ),
        "ALTER SYSTEM SET ssl = on".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let expected = cert_file.display().to_string();
    wait_until(
        Duration::from_secs(30),
        "the server to reload its TLS files",
        || {
            let expected = expected.clone();
            async move {
                let c = pg_connect(&stack_env("PG_URL")).await;
                let row = c
                    .query_one(
                        "SELECT current_setting('ssl'), current_setting('ssl_cert_file')",
                        &[],
                    )
                    .await
                    .ok()?;
                (row.get::<_, String>(0) == "on" && row.get::<_, String>(1) == expected)
                    .then_some(())
            }
        },
    )
    .await;
    // Files of earlier runs are no longer referenced.
    for entry in std::fs::read_dir(&tls_dir).unwrap().flatten() {
        let p = entry.path();
        if p != cert_file && p != key_file && p != server_ca_file {
            let _ = std::fs::remove_file(p);
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let other_ca_file = dir.path().join("other-ca.pem");
    std::fs::write(&ca_file, ca.cert.to_pem().unwrap()).unwrap();
    std::fs::write(&other_ca_file, other.cert.to_pem().unwrap()).unwrap();
    Installed {
        ca,
        ca_file,
        other_ca_file,
        _dir: dir,
    }
}

/// A database with table `t` (3 rows, for the snapshot) in publication `cdc_pub`.
async fn fresh_db(what: &str) -> FreshPgDb {
    let db = FreshPgDb::create(what).await;
    pg_connect(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t SELECT g, 'snap' FROM generate_series(1, 3) g;
             CREATE PUBLICATION cdc_pub FOR TABLE t;",
        )
        .await
        .unwrap();
    db
}

fn start_agent(name: &str, db: &FreshPgDb, host: &str, postgres_toml: &str) -> Agent {
    let main = format!(
        "[kafka]\nbootstrap_servers = \"{}\"\n[schema_registry]\nurl = \"{}\"\n\
         [event_store]\ntopic = \"{name}.events\"\n",
        stack_env("KAFKA_BOOTSTRAP"),
        stack_env("SCHEMA_REGISTRY_URL"),
    );
    let source = format!(
        "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\nhost = \"{host}\"\n\
         port = {port}\nuser = \"cdc_agent\"\npassword = \"cdc_agent\"\ndatabase = \"{db}\"\n\
         [postgres]\npublication = \"cdc_pub\"\n{postgres_toml}\n",
        port = stack_env("PG_PORT"),
        db = db.name,
    );
    Agent::start_files(&main, &source)
}

/// (backend type, ssl) of every connection the agent holds on `db`.
async fn agent_connections(db: &FreshPgDb) -> Vec<(String, bool)> {
    let admin = pg_connect(&stack_env("PG_URL")).await;
    admin
        .query(
            "SELECT a.backend_type, s.ssl FROM pg_stat_activity a
             JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name = 'cdc-agent' AND a.datname = $1
             ORDER BY 1",
            &[&db.name],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Streams 3 snapshot rows and 2 changes, then returns the agent's connections.
async fn stream_and_inspect(agent: &Agent, db: &FreshPgDb, name: &str) -> Vec<(String, bool)> {
    agent.wait_streaming(WAIT);
    let conns = wait_until(
        WAIT,
        "the agent's SQL and replication connections",
        || async {
            let c = agent_connections(db).await;
            (c.iter().any(|(t, _)| t == "walsender")
                && c.iter().any(|(t, _)| t == "client backend"))
            .then_some(c)
        },
    )
    .await;
    pg_connect(&db.url)
        .await
        .batch_execute("INSERT INTO t VALUES (4, 'live'), (5, 'live')")
        .await
        .unwrap();
    let topic = format!("{name}.public.t");
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 5);
    println!(
        "{name}: {} events on {topic}, connections {conns:?}",
        recs.len()
    );
    assert_eq!(recs.len(), 5, "log:\n{}", agent.log());
    conns
}

#[tokio::test]
#[serial(pg_tls)]
async fn verify_full_with_the_test_ca_streams_snapshot_and_changes_over_tls_on_both_connections() {
    let tls = install_server_tls().await;
    let db = fresh_db("tlsfull").await;
    let name = unique_name("tlsfull");
    let agent = start_agent(
        &name,
        &db,
        CERT_HOST,
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{}\"",
            tls.ca_file.display()
        ),
    );
    let conns = stream_and_inspect(&agent, &db, &name).await;
    assert!(
        conns.iter().all(|(_, ssl)| *ssl),
        "every agent connection uses TLS: {conns:?}"
    );
}

#[tokio::test]
#[serial(pg_tls)]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_carry() {
    let tls = install_server_tls().await;
    let db = fresh_db("tlshost").await;
    let name = unique_name("tlshost");
    // The certificate names `localhost` only; the agent connects to 127.0.0.1.
    let mut agent = start_agent(
        &name,
        &db,
        "127.0.0.1",
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{}\"",
            tls.ca_file.display()
        ),
    );
    assert_eq!(agent.wait_exit(WAIT), Some(1), "log:\n{}", agent.log());
    let log = agent.log();
    println!(
        "{}",
        log.lines().find(|l| l.contains("tls to")).unwrap_or("")
    );
    assert!(log.contains("sslmode = verify-full"), "{log}");
    assert!(
        log.contains("sslrootcert") && log.contains("`host`"),
        "{log}"
    );
    assert!(log.to_ascii_lowercase().contains("mismatch"), "{log}");
}

#[tokio::test]
#[serial(pg_tls)]
async fn verify_full_refuses_a_server_certificate_signed_by_another_ca() {
    let tls = install_server_tls().await;
    let db = fresh_db("tlsca").await;
    let name = unique_name("tlsca");
    let mut agent = start_agent(
        &name,
        &db,
        CERT_HOST,
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{}\"",
            tls.other_ca_file.display()
        ),
    );
    assert_eq!(agent.wait_exit(WAIT), Some(1), "log:\n{}", agent.log());
    let log = agent.log();
    println!(
        "{}",
        log.lines().find(|l| l.contains("tls to")).unwrap_or("")
    );
    assert!(log.contains("sslrootcert"), "{log}");
    assert!(log.contains("certificate verify failed"), "{log}");
}

#[tokio::test]
#[serial(pg_tls)]
async fn require_without_a_ca_encrypts_both_connections_without_checking_the_certificate() {
    install_server_tls().await;
    let db = fresh_db("tlsreq").await;
    let name = unique_name("tlsreq");
    // By address, which the certificate does not name: require checks neither chain nor name.
    let agent = start_agent(&name, &db, "127.0.0.1", "sslmode = \"require\"");
    let conns = stream_and_inspect(&agent, &db, &name).await;
    assert!(conns.iter().all(|(_, ssl)| *ssl), "{conns:?}");
}

#[tokio::test]
#[serial(pg_tls)]
async fn the_replication_connection_alone_refuses_a_wrong_host_name_as_a_definite_error() {
    use cdc_agent::config::PgSslMode;
    use cdc_agent::net::tls::PgTls;
    use cdc_agent::source::postgres::replication::{ReplicationClient, ReplicationConfig};
    let tls = install_server_tls().await;
    let db = fresh_db("tlsrepl").await;
    let mut config = ReplicationConfig::from_url(&db.agent_url).unwrap();
    config.tls = PgTls {
        mode: PgSslMode::VerifyFull,
        root_cert: Some(tls.ca_file.clone()),
        ..PgTls::default()
    };
    let err = ReplicationClient::connect(&config).await.unwrap_err();
    println!("127.0.0.1: {err}");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("sslrootcert"), "{err}");

    config.host = CERT_HOST.into();
    let client = ReplicationClient::connect(&config).await.unwrap();
    let pid = client.backend_pid().unwrap();
    let admin = pg_connect(&db.url).await;
    let ssl: bool = admin
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = $1", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the walsender of pid {pid} uses TLS");
}

/// Role that logs in with a client certificate only (pg_hba `cert`), on TLS only.
const CERT_ROLE: &str = "cdc_tls_cert";

/// Creates `role` (LOGIN REPLICATION, plus `extra` such as a password) unless it exists,
/// puts `lines` (pg_hba lines that concern that role alone) first in pg_hba.conf once — the
/// first matching line wins, so they must come before the generic `scram-sha-256` ones — and
/// reloads. Returns the superuser connection.
async fn install_hba_role(role: &str, extra: &str, lines: &str) -> tokio_postgres::Client {
    let admin = pg_connect(&stack_env("PG_URL")).await;
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                 CREATE ROLE {role} LOGIN REPLICATION {extra};
               END IF;
             END $$;"
        ))
        .await
        .unwrap();
    let hba_file: String = admin
        .query_one("SELECT current_setting('hba_file')", &[])
        .await
        .unwrap()
        .get(0);
    let hba = std::fs::read_to_string(&hba_file).unwrap();
    if !hba.contains(lines) {
        std::fs::write(&hba_file, format!("{lines}{hba}")).unwrap();
    }
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    admin
}

/// Creates [`CERT_ROLE`] with `hostssl … cert` lines for it first in pg_hba.conf, and
/// returns the admin connection.
async fn install_cert_role() -> tokio_postgres::Client {
    install_hba_role(
        CERT_ROLE,
        "",
        &format!(
            "hostssl all {CERT_ROLE} 127.0.0.1/32 cert\nhostssl replication {CERT_ROLE} 127.0.0.1/32 cert\n"
        ),
    )
    .await
}

#[tokio::test]
#[serial(pg_tls)]
async fn a_client_certificate_logs_the_agent_in_on_both_connections_without_a_password() {
    let tls = install_server_tls().await;
    let admin = install_cert_role().await;
    let db = fresh_db("tlscert").await;
    pg_connect(&db.url)
        .await
        .batch_execute(&format!("GRANT SELECT ON t TO {CERT_ROLE}"))
        .await
        .unwrap();
    let (cert, key) = client_cert(&tls.ca, CERT_ROLE);
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("client.crt"), dir.path().join("client.key"));
    std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    // The reload that enabled the hba lines is confirmed by a login that needs them.
    let tls_settings = cdc_agent::net::tls::PgTls {
        mode: cdc_agent::config::PgSslMode::VerifyFull,
        root_cert: Some(tls.ca_file.clone()),
        client_cert: Some(cert_file.clone()),
        client_key: Some(key_file.clone()),
    };
    let connector = tls_settings.connector().unwrap();
    let url = format!(
        "host={CERT_HOST} port={} user={CERT_ROLE} dbname={} sslmode=require",
        stack_env("PG_PORT"),
        db.name
    );
    wait_until(WAIT, "a certificate login", || {
        let (url, connector) = (url.clone(), connector.clone());
        async move {
            let (c, conn) = tokio_postgres::connect(
                &url,
                postgres_native_tls::MakeTlsConnector::new(connector),
            )
            .await
            .ok()?;
            tokio::spawn(conn);
            c.simple_query("SELECT 1").await.ok().map(drop)
        }
    })
    .await;
    drop(admin);

    let name = unique_name("tlscert");
    let main = format!(
        "[kafka]\nbootstrap_servers = \"{}\"\n[schema_registry]\nurl = \"{}\"\n\
         [event_store]\ntopic = \"{name}.events\"\n",
        stack_env("KAFKA_BOOTSTRAP"),
        stack_env("SCHEMA_REGISTRY_URL"),
    );
    let source = format!(
        "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\nhost = \"{CERT_HOST}\"\n\
         port = {port}\nuser = \"{CERT_ROLE}\"\ndatabase = \"{db}\"\n\
         [postgres]\npublication = \"cdc_pub\"\nsslmode = \"verify-full\"\nsslrootcert = \"{ca}\"\n\
         sslcert = \"{cert}\"\nsslkey = \"{key}\"\n",
        port = stack_env("PG_PORT"),
        db = db.name,
        ca = tls.ca_file.display(),
        cert = cert_file.display(),
        key = key_file.display(),
    );
    let agent = Agent::start_files(&main, &source);
    let conns = stream_and_inspect(&agent, &db, &name).await;
    assert!(conns.iter().all(|(_, ssl)| *ssl), "{conns:?}");
}

/// Role whose logins pg_hba answers with a cleartext password request (`password` method).
const CLEARTEXT_ROLE: &str = "cdc_cleartext";

/// Creates [`CLEARTEXT_ROLE`] (password = its name) and puts `host … password` lines for it
/// first in pg_hba.conf (once; they concern that role alone), then reloads and waits until a
/// login sees them.
async fn install_cleartext_role(db: &FreshPgDb) {
    install_hba_role(
        CLEARTEXT_ROLE,
        &format!("PASSWORD '{CLEARTEXT_ROLE}'"),
        &format!(
            "host all {CLEARTEXT_ROLE} 127.0.0.1/32 password\nhost replication {CLEARTEXT_ROLE} 127.0.0.1/32 password\n"
        ),
    )
    .await;
    pg_connect(&db.url)
        .await
        .batch_execute(&format!("GRANT SELECT ON t TO {CLEARTEXT_ROLE}"))
        .await
        .unwrap();
    // The reload is confirmed by the server's own view of the file.
    wait_until(WAIT, "the `password` lines in effect", || {
        let url = stack_env("PG_URL");
        async move {
            let n: i64 = pg_connect(&url)
                .await
                .query_one(
                    "SELECT count(*) FROM pg_hba_file_rules WHERE $1 = ANY(user_name) AND auth_method = 'password'",
                    &[&CLEARTEXT_ROLE],
                )
                .await
                .ok()?
                .get(0);
            (n > 0).then_some(())
        }
    })
    .await;
}

fn start_cleartext_agent(name: &str, db: &FreshPgDb, postgres_toml: &str) -> Agent {
    let main = format!(
        "[kafka]\nbootstrap_servers = \"{}\"\n[schema_registry]\nurl = \"{}\"\n\
         [event_store]\ntopic = \"{name}.events\"\n",
        stack_env("KAFKA_BOOTSTRAP"),
        stack_env("SCHEMA_REGISTRY_URL"),
    );
    let source = format!(
        "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nuser = \"{CLEARTEXT_ROLE}\"\npassword = \"{CLEARTEXT_ROLE}\"\n\
         database = \"{db}\"\n[postgres]\npublication = \"cdc_pub\"\nslot_name = \"{name}\"\n\
         sslmode = \"disable\"\n{postgres_toml}\n",
        port = stack_env("PG_PORT"),
        db = db.name,
    );
    Agent::start_files(&main, &source)
}

#[tokio::test]
async fn a_cleartext_password_request_over_a_plain_connection_stops_the_agent_unless_allowed() {
    let db = fresh_db("cleartext").await;
    install_cleartext_role(&db).await;

    let name = unique_name("cleartext");
    let mut agent = start_cleartext_agent(&name, &db, "");
    let code = agent.wait_exit(WAIT);
    let log = agent.log();
    assert_eq!(code, Some(1), "log:\n{log}");
    assert!(log.contains("allow_cleartext_password"), "{log}");
    assert!(log.contains("scram-sha-256"), "{log}");
    assert!(!log.contains("source failed, retrying"), "{log}");

    // Allowed explicitly: the agent logs in and streams the snapshot.
    let name = unique_name("cleartext");
    let agent = start_cleartext_agent(&name, &db, "allow_cleartext_password = true");
    agent.wait_streaming(WAIT);
    let topic = format!("{name}.public.t");
    let records = read_topic(&topic, WAIT, |r| r.len() >= 3);
    assert_eq!(
        records.len(),
        3,
        "snapshot of 3 rows; log:\n{}",
        agent.log()
    );
}
