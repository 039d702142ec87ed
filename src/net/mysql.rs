//! MySQL/MariaDB connection options with TLS, for the MySQL source: one place that turns a
//! source file into `mysql_async` options, so the binlog and the SQL connections agree.
//!
//! `mysql_async` has no "preferred" mode of its own (with TLS options it refuses a server
//! without TLS), so [`connect`] implements it: TLS first, plain when the server has no TLS.

use mysql_async::{Conn, OptsBuilder, SslOpts};

use crate::config::{MysqlSslMode, SourceConfig};
use crate::net::tls::TlsConfigError;

/// The source's TLS mode (`preferred` when the file has no `[mysql]` section).
pub fn ssl_mode(source: &SourceConfig) -> MysqlSslMode {
    source
        .mysql
        .as_ref()
        .map(|m| m.ssl_mode)
        .unwrap_or_default()
}

/// `mysql_async` TLS options for a mode and CA file; `None` means plain TCP.
pub fn ssl_opts(
    mode: MysqlSslMode,
    ca: Option<&std::path::Path>,
) -> Result<Option<SslOpts>, TlsConfigError> {
    let (verify_chain, verify_host) = match mode {
        MysqlSslMode::Disabled => return Ok(None),
        MysqlSslMode::Preferred | MysqlSslMode::Required => (ca.is_some(), false),
        MysqlSslMode::VerifyCa => (true, false),
        MysqlSslMode::VerifyIdentity => (true, true),
    };
    let mut opts = SslOpts::default()
        .with_danger_accept_invalid_certs(!verify_chain)
        .with_danger_skip_domain_validation(!verify_host);
    if verify_chain {
        let ca = ca.ok_or_else(|| TlsConfigError {
            key: "mysql.ssl_ca".into(),
            problem: format!("ssl_mode = {mode} needs a CA to check the server certificate"),
            fix: "set ssl_ca to the CA's PEM file, or lower ssl_mode to required".into(),
        })?;
        // Checked here so a bad file is a configuration error, not a failed handshake later.
        crate::net::tls::read_certificates(ca, "mysql.ssl_ca")?;
        opts = opts
            .with_root_certs(vec![ca.to_path_buf().into()])
            .with_disable_built_in_roots(true);
    }
    Ok(Some(opts))
}

/// Host, port, user, password, database and TLS of a MySQL source.
pub fn mysql_opts_builder(source: &SourceConfig) -> Result<OptsBuilder, TlsConfigError> {
    let my = source.mysql.as_ref();
    let ssl = ssl_opts(ssl_mode(source), my.and_then(|m| m.ssl_ca.as_deref()))?;
    Ok(OptsBuilder::default()
        .ip_or_hostname(source.host.clone())
        .tcp_port(source.port())
        .user(Some(source.user.clone()))
        .pass(source.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(source.database.clone())
        .prefer_socket(false)
        .ssl_opts(ssl))
}

/// Whether a connection failed because TLS was asked for and the server has none.
pub fn is_tls_unsupported(e: &mysql_async::Error) -> bool {
    matches!(
        e,
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
    )
}

fn opts_host(opts: &OptsBuilder) -> String {
    mysql_async::Opts::from(opts.clone())
        .ip_or_hostname()
        .to_string()
}

/// Connects with `opts`; in `preferred` mode a server without TLS is connected to in plain.
pub async fn connect(opts: OptsBuilder, mode: MysqlSslMode) -> Result<Conn, mysql_async::Error> {
    match Conn::new(opts.clone()).await {
        Err(e) if mode == MysqlSslMode::Preferred && is_tls_unsupported(&e) => {
            let target = format!(
                "{}:{}",
                opts_host(&opts),
                mysql_async::Opts::from(opts.clone()).tcp_port()
            );
            crate::net::tls::warn_unencrypted(&target, "[mysql] ssl_mode = \"required\"");
            Conn::new(opts.ssl_opts(None::<SslOpts>)).await
        }
        other => other,
    }
}

/// The operator-facing text of a TLS failure, naming the keys that decide it.
pub fn tls_failure(mode: MysqlSslMode, target: &str, cause: &str) -> String {
    let fix = match mode {
        MysqlSslMode::VerifyIdentity => {
            "check that [mysql] ssl_ca is the CA that signed the server certificate and that \
             `host` is one of its names, or lower ssl_mode to verify_ca"
        }
        MysqlSslMode::VerifyCa => {
            "check that [mysql] ssl_ca is the CA that signed the server certificate, or lower \
             ssl_mode to required"
        }
        _ => "enable TLS on the server (ssl_cert, ssl_key) or set [mysql] ssl_mode = \"preferred\"",
    };
    format!("tls to {target} failed (ssl_mode = {mode}): {cause}; fix: {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_map_to_what_mysql_async_verifies() {
        assert!(ssl_opts(MysqlSslMode::Disabled, None).unwrap().is_none());
        for mode in [MysqlSslMode::Preferred, MysqlSslMode::Required] {
            let o = ssl_opts(mode, None).unwrap().unwrap();
            assert!(o.accept_invalid_certs() && o.skip_domain_validation());
        }
        let err = ssl_opts(MysqlSslMode::VerifyIdentity, None).unwrap_err();
        assert_eq!(err.key, "mysql.ssl_ca");
    }

    #[test]
    fn verify_identity_with_a_ca_checks_chain_and_host_and_trusts_only_that_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, TEST_CA).unwrap();
        let o = ssl_opts(MysqlSslMode::VerifyIdentity, Some(&ca))
            .unwrap()
            .unwrap();
        assert!(!o.accept_invalid_certs() && !o.skip_domain_validation());
        assert!(o.disable_built_in_roots());
        assert_eq!(o.root_certs().len(), 1);
        let o = ssl_opts(MysqlSslMode::VerifyCa, Some(&ca))
            .unwrap()
            .unwrap();
        assert!(!o.accept_invalid_certs() && o.skip_domain_validation());
    }

    /// A throwaway self-signed certificate (no key kept anywhere).
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUGDKCLfCwCAiXGqA4NYTbKwxtgXcwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRY2RjLWFnZW50LXRlc3QtY2EwHhcNMjYxMTI2MTgzODM1WhcN
MzYxMTIzMTgzODM1WjAcMRowGAYDVQQDDBFjZGMtYWdlbnQtdGVzdC1jYTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABCuveXSsHy1BxV8z6RP/ypRr5Y4gxf0dbir/
icnZSKQ4CW4M9/KxVWe+/5AqekBAA+W1F5KmOyhn959l7nIXFwSjUzBRMB0GA1Ud
DgQWBBQVzt5/egW2BFNzENArr8dlDNz3FDAfBgNVHSMEGDAWgBQVzt5/egW2BFNz
ENArr8dlDNz3FDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIENf
y6FGofghg5OC97fGAeI8Su5OsFrZAD8iO3Pvua/SAiEA7Hs0fy70IUoJmWr8cKAh
fnRolM0c+qVGKJMqOQwvlkI=
-----END CERTIFICATE-----
";
}
