//! MySQL/MariaDB TLS options against the stack's MariaDB, which offers TLS with a certificate
//! for `localhost` signed by a CA the stack made (`MYSQL_SSL_CA`): the options the MySQL source
//! gets from `net::mysql` for each `ssl_mode`, from a real source file.

use crate::common;

use cdc_agent::config::{self, SourceConfig};
use cdc_agent::net::mysql::{connect, mysql_opts_builder, ssl_mode, tls_failure};
use mysql_async::prelude::Queryable;

use common::stack_env;
use common::tls::new_ca;

/// Loads a MySQL source as the agent role with `host` and the given `[mysql]` keys.
fn source(host: &str, mysql_toml: &str) -> (SourceConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cdc-agent.toml"),
        "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n[schema_registry]\nurl = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("connectors")).unwrap();
    std::fs::write(
        dir.path().join("connectors/my.toml"),
        format!(
            "name = \"mytls\"\nkind = \"mysql\"\ntopic_prefix = \"mytls\"\nhost = \"{host}\"\n\
             port = {}\nuser = \"cdc_agent\"\npassword = \"cdc_agent\"\n[mysql]\n{mysql_toml}\n",
            stack_env("MYSQL_PORT")
        ),
    )
    .unwrap();
    let cfg = config::load_with_env(&dir.path().join("cdc-agent.toml"), std::iter::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    (cfg.sources.into_iter().next().unwrap(), dir)
}

/// The session's TLS cipher ("" when the connection is plain).
async fn cipher(src: &SourceConfig) -> Result<String, mysql_async::Error> {
    let mut conn = connect(mysql_opts_builder(src).unwrap(), ssl_mode(src)).await?;
    let row: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await?;
    conn.disconnect().await?;
    Ok(row.map(|(_, v)| v).unwrap_or_default())
}

fn require_tls_stack() {
    let ca = stack_env("MYSQL_SSL_CA");
    assert!(
        std::path::Path::new(&ca).exists(),
        "{ca} is missing: the stack's MariaDB was started before it offered TLS; restart it with \
         `scripts/stack stop mariadb && scripts/stack start mariadb`"
    );
}

#[tokio::test]
async fn verify_identity_with_the_stack_ca_connects_over_tls() {
    require_tls_stack();
    let (src, _d) = source(
        "localhost",
        &format!(
            "ssl_mode = \"verify_identity\"\nssl_ca = \"{}\"",
            stack_env("MYSQL_SSL_CA")
        ),
    );
    let c = cipher(&src).await.unwrap();
    println!("verify_identity to localhost: cipher {c}");
    assert!(!c.is_empty(), "the session is encrypted");
}

#[tokio::test]
async fn verify_identity_refuses_a_host_name_the_certificate_does_not_carry() {
    require_tls_stack();
    let (src, _d) = source(
        "127.0.0.1",
        &format!(
            "ssl_mode = \"verify_identity\"\nssl_ca = \"{}\"",
            stack_env("MYSQL_SSL_CA")
        ),
    );
    let err = cipher(&src).await.unwrap_err().to_string();
    println!("{}", tls_failure(ssl_mode(&src), "127.0.0.1", &err));
    assert!(cdc_agent::net::tls::is_certificate_failure(&err), "{err}");
}

#[tokio::test]
async fn verify_ca_refuses_a_certificate_signed_by_another_ca() {
    require_tls_stack();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, new_ca("another ca").cert.to_pem().unwrap()).unwrap();
    let (src, _d) = source(
        "127.0.0.1",
        &format!("ssl_mode = \"verify_ca\"\nssl_ca = \"{}\"", other.display()),
    );
    let err = cipher(&src).await.unwrap_err().to_string();
    println!("{err}");
    assert!(cdc_agent::net::tls::is_certificate_failure(&err), "{err}");
}

#[tokio::test]
async fn required_without_a_ca_encrypts_and_disabled_stays_plain() {
    require_tls_stack();
    let (src, _d) = source("127.0.0.1", "ssl_mode = \"required\"");
    let c = cipher(&src).await.unwrap();
    assert!(!c.is_empty(), "required encrypts");
    let (src, _d) = source("127.0.0.1", "ssl_mode = \"disabled\"");
    assert_eq!(cipher(&src).await.unwrap(), "", "disabled stays plain");
    let (src, _d) = source("127.0.0.1", "");
    let c = cipher(&src).await.unwrap();
    println!("preferred (default): cipher {c}");
    assert!(!c.is_empty(), "preferred takes TLS when offered");
}
