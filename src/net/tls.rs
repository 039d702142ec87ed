//! TLS for the connections the agent opens itself: PostgreSQL (SQL and replication) and
//! MySQL/MariaDB. Kafka's TLS is librdkafka's (see [`crate::sink::kafka::base_client_config`])
//! and the registry's is reqwest's ([`crate::registry`]).
//!
//! One rule for every database: the mode names what is *verified*, following the database's own
//! client (libpq's `sslmode`, MySQL's `--ssl-mode`), so an operator's existing settings mean the
//! same thing here.
//!
//! | mode                         | TLS                    | chain checked        | host name checked |
//! |------------------------------|------------------------|----------------------|-------------------|
//! | disable / disabled           | never                  | –                    | –                 |
//! | prefer / preferred           | if the server offers it| only with a CA file  | no                |
//! | require / required           | always                 | only with a CA file  | no                |
//! | verify-ca / verify_ca        | always                 | yes                  | no                |
//! | verify-full / verify_identity| always                 | yes                  | yes               |
//!
//! "Only with a CA file" is libpq's behaviour (a `require` connection with a root certificate
//! behaves like `verify-ca`). With a CA file, only that file's certificates are trusted, not the
//! system's roots: pinning the database's private CA is the point of giving one.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;

use crate::config::{PgSslMode, PostgresOptions, SYSTEM_ROOTS};

/// A TLS setting that cannot be used as given: names the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {problem}; fix: {fix}")]
pub struct TlsConfigError {
    /// Dotted key, e.g. `postgres.sslrootcert`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

fn config_error(key: &str, problem: String, fix: &str) -> TlsConfigError {
    TlsConfigError {
        key: key.to_string(),
        problem,
        fix: fix.to_string(),
    }
}

/// PostgreSQL TLS settings, shared by the SQL and the replication connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgTls {
    /// libpq's `sslmode`.
    pub mode: PgSslMode,
    /// CA file, or `system`.
    pub root_cert: Option<PathBuf>,
    /// Client certificate (PEM).
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM, PKCS#8).
    pub client_key: Option<PathBuf>,
}

impl PgTls {
    /// The settings of a source's `[postgres]` section (defaults when it has none).
    pub fn from_options(pg: Option<&PostgresOptions>) -> Self {
        match pg {
            None => Self::default(),
            Some(pg) => Self {
                mode: pg.sslmode,
                root_cert: pg.sslrootcert.clone(),
                client_cert: pg.sslcert.clone(),
                client_key: pg.sslkey.clone(),
            },
        }
    }

    /// Plain TCP only.
    pub fn disabled() -> Self {
        Self {
            mode: PgSslMode::Disable,
            ..Self::default()
        }
    }

    /// Whether the connection tries TLS at all.
    pub fn wants_tls(&self) -> bool {
        self.mode != PgSslMode::Disable
    }

    /// Whether a server that refuses TLS is refused in turn.
    pub fn requires_tls(&self) -> bool {
        !matches!(self.mode, PgSslMode::Disable | PgSslMode::Prefer)
    }

    /// tokio-postgres' own mode: it knows only disable/prefer/require; what is verified on
    /// top of `require` is decided by the connector from [`PgTls::connector`].
    pub fn tokio_postgres_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode;
        match self.mode {
            PgSslMode::Disable => SslMode::Disable,
            PgSslMode::Prefer => SslMode::Prefer,
            PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
        }
    }

    /// The TLS connector implementing the mode's checks. Reads the certificate files, so an
    /// unreadable or malformed file is reported here, with its key.
    pub fn connector(&self) -> Result<native_tls::TlsConnector, TlsConfigError> {
        let mut b = native_tls::TlsConnector::builder();
        let (verify_chain, verify_host) = match self.mode {
            PgSslMode::Disable | PgSslMode::Prefer | PgSslMode::Require => {
                (self.root_cert.is_some(), false)
            }
            PgSslMode::VerifyCa => (true, false),
            PgSslMode::VerifyFull => (true, true),
        };
        if verify_chain {
            let root = self.root_cert.as_deref().ok_or_else(|| {
                config_error(
                    "postgres.sslrootcert",
                    format!("sslmode = {} needs a CA to check the server certificate", self.mode),
                    "set sslrootcert to the CA's PEM file (or \"system\"), or lower sslmode to require",
                )
            })?;
            if root != Path::new(SYSTEM_ROOTS) {
                b.disable_built_in_roots(true);
                for cert in read_certificates(root, "postgres.sslrootcert")? {
                    b.add_root_certificate(cert);
                }
            }
        } else {
            b.danger_accept_invalid_certs(true);
        }
        b.danger_accept_invalid_hostnames(!verify_host);
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            b.identity(read_identity(
                cert,
                key,
                "postgres.sslcert",
                "postgres.sslkey",
            )?);
        }
        b.build().map_err(|e| {
            config_error(
                "postgres.sslmode",
                format!("cannot set up TLS: {e}"),
                "check sslrootcert, sslcert and sslkey",
            )
        })
    }

    /// The definite error for a failed TLS negotiation, naming the keys that decide it.
    pub fn failure(&self, target: &str, cause: &str) -> String {
        let fix = match self.mode {
            PgSslMode::VerifyFull => {
                "check that [postgres] sslrootcert is the CA that signed the server certificate \
                 and that `host` is one of the certificate's names (verify-full checks both), or \
                 lower sslmode to verify-ca"
            }
            PgSslMode::VerifyCa => {
                "check that [postgres] sslrootcert is the CA that signed the server certificate, \
                 or lower sslmode to require"
            }
            _ if self.root_cert.is_some() => {
                "check that [postgres] sslrootcert is the CA that signed the server certificate \
                 (with a CA file the chain is checked), or remove sslrootcert"
            }
            _ => {
                "enable TLS on the server (ssl = on) or set [postgres] sslmode = \"prefer\" or \
                 \"disable\""
            }
        };
        format!(
            "tls to {target} failed (sslmode = {}): {cause}; fix: {fix}",
            self.mode
        )
    }
}

/// Warns, once per process and `target`, that a `prefer`/`preferred` connection went on
/// without TLS because the server offers none: the operator asked for TLS where possible and
/// should know it was not possible. `setting` names the key that would make TLS mandatory.
pub fn warn_unencrypted(target: &str, setting: &str) {
    static WARNED: super::once::Once = super::once::Once::new();
    if !WARNED.mark(target) {
        return;
    }
    tracing::warn!(
        target_addr = target,
        setting,
        "server offers no tls; connected without encryption, as the tls mode allows (set the named setting to refuse this)"
    );
}

/// Whether a TLS failure's text is about certificates or names (definite: an operator must
/// change a file or a setting) rather than the network dropping mid-handshake (transient).
pub fn is_certificate_failure(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "certificate",
        "verify failed",
        "hostname mismatch",
        "ip address mismatch",
        "does not support tls",
        "unknown ca",
        "handshake failure",
    ]
    .iter()
    .any(|needle| t.contains(needle))
}

/// Every certificate of a PEM file (a CA bundle may hold several).
pub fn read_certificates(
    path: &Path,
    key: &str,
) -> Result<Vec<native_tls::Certificate>, TlsConfigError> {
    let pem = std::fs::read(path).map_err(|e| {
        config_error(
            key,
            format!("cannot read {}: {e}", path.display()),
            "point it at a readable PEM file",
        )
    })?;
    let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
        config_error(
            key,
            format!("{} is not a PEM certificate file: {e}", path.display()),
            "give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)",
        )
    })?;
    if certs.is_empty() {
        return Err(config_error(
            key,
            format!("{} holds no certificate", path.display()),
            "give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

fn read_identity(
    cert: &Path,
    key: &Path,
    cert_key: &str,
    key_key: &str,
) -> Result<native_tls::Identity, TlsConfigError> {
    let read = |p: &Path, k: &str| {
        std::fs::read(p).map_err(|e| {
            config_error(
                k,
                format!("cannot read {}: {e}", p.display()),
                "point it at a readable PEM file",
            )
        })
    };
    let (c, k) = (read(cert, cert_key)?, read(key, key_key)?);
    native_tls::Identity::from_pkcs8(&c, &k).map_err(|e| {
        config_error(
            key_key,
            format!(
                "client certificate {} / key {}: {e}",
                cert.display(),
                key.display()
            ),
            "give a PEM certificate and an unencrypted PKCS#8 PEM key (convert with `openssl \
             pkcs8 -topk8 -nocrypt -in key.pem -out key.pk8.pem`)",
        )
    })
}

/// The replication connection's byte stream: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum PgStream {
    /// No TLS (`sslmode = disable`, or `prefer` against a server without TLS).
    Plain(TcpStream),
    /// TLS, over a read-buffered socket (see [`PgStream::tls_transport`]).
    Tls(Box<tokio_native_tls::TlsStream<BufReader<TcpStream>>>),
}

/// Read-ahead under TLS: how much of the socket one `recv` may take in.
const TLS_READ_AHEAD: usize = 128 * 1024;

impl PgStream {
    /// The socket as TLS should see it. OpenSSL reads each record in two steps (the 5-byte
    /// header, then the body), each one `recv` on a bare socket: two system calls per 16 KiB
    /// of WAL instead of one per read buffer in plain text. Buffered, both are served from
    /// memory.
    pub fn tls_transport(tcp: TcpStream) -> BufReader<TcpStream> {
        BufReader::with_capacity(TLS_READ_AHEAD, tcp)
    }

    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, PgStream::Tls(_))
    }
}

impl AsyncRead for PgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PgStream::Tls(s) => {
                // tokio-native-tls zeroes the whole unfilled part of `buf` before every
                // SSL_read, and the replication client offers up to 256 KiB of it while one
                // SSL_read returns at most one TLS record (16 KiB): measured, that memset was
                // most of the agent's CPU on a TLS replication stream (bench/pg-e2e). Offer
                // it one record's worth, initialised once here.
                let want = buf.remaining().min(TLS_RECORD_MAX);
                let mut record = ReadBuf::new(buf.initialize_unfilled_to(want));
                std::task::ready!(Pin::new(s.as_mut()).poll_read(cx, &mut record))?;
                let n = record.filled().len();
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// Largest plaintext of one TLS record (RFC 8446 §5.1): what one SSL_read can return.
const TLS_RECORD_MAX: usize = 16 * 1024;

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_without_a_ca_name_the_sslrootcert_key() {
        for mode in [PgSslMode::VerifyCa, PgSslMode::VerifyFull] {
            let err = PgTls {
                mode,
                ..PgTls::default()
            }
            .connector()
            .unwrap_err();
            assert_eq!(err.key, "postgres.sslrootcert");
        }
    }

    #[test]
    fn require_and_prefer_without_a_ca_build_a_connector() {
        for mode in [PgSslMode::Prefer, PgSslMode::Require, PgSslMode::Disable] {
            PgTls {
                mode,
                ..PgTls::default()
            }
            .connector()
            .unwrap();
        }
    }

    #[test]
    fn a_file_that_is_not_pem_is_reported_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a certificate").unwrap();
        let err = PgTls {
            mode: PgSslMode::VerifyFull,
            root_cert: Some(f),
            ..PgTls::default()
        }
        .connector()
        .unwrap_err();
        assert_eq!(err.key, "postgres.sslrootcert");
    }

    #[test]
    fn tokio_postgres_only_sees_require_for_the_verify_modes() {
        use tokio_postgres::config::SslMode;
        let mode = |m| {
            PgTls {
                mode: m,
                ..PgTls::default()
            }
            .tokio_postgres_mode()
        };
        assert_eq!(mode(PgSslMode::VerifyFull), SslMode::Require);
        assert_eq!(mode(PgSslMode::VerifyCa), SslMode::Require);
        assert_eq!(mode(PgSslMode::Prefer), SslMode::Prefer);
        assert_eq!(mode(PgSslMode::Disable), SslMode::Disable);
    }

    #[test]
    fn certificate_failures_are_told_from_network_failures() {
        assert!(is_certificate_failure(
            "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed"
        ));
        assert!(is_certificate_failure("server does not support TLS"));
        assert!(!is_certificate_failure("connection reset by peer"));
    }
}
