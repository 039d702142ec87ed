//! Our own client for PostgreSQL's streaming-replication protocol (`replication=database`).
//!
//! # Why a client of our own
//!
//! SQL work goes through `tokio-postgres`, but upstream `tokio-postgres` cannot enter the
//! CopyBoth mode that `START_REPLICATION` switches to (rust-postgres PR #1182 is still open),
//! so the replication stream needs a different client. We measured two third-party crates
//! against this one on the same WAL backlog (`bench/pg-replication-clients`, figures and
//! reasons in `docs/decisions/0002-postgres-replication-client.md`) and kept ours because it
//! is small (built on `postgres-protocol`, already in the tree), lets us own the read buffer
//! (each `CopyData` payload is handed out as a [`Bytes`] slice of one large buffer, with no
//! per-message allocation or copy), keeps [`ReplicationStream::recv`] cancel-safe for
//! `tokio::select!` with a status timer, and classifies errors the way the supervisor needs
//! ([`ReplError::is_transient`]). The rest of the agent talks to the stream only through
//! [`WalSource`], so the implementation can still be swapped.
//!
//! # Shape
//!
//! [`ReplicationClient::connect`] opens a replication connection and authenticates
//! (cleartext, MD5, SCRAM-SHA-256). In that command mode it runs replication commands
//! ([`ReplicationClient::simple_query`] and typed helpers such as
//! [`ReplicationClient::identify_system`] and [`ReplicationClient::create_logical_slot`]).
//! [`ReplicationClient::start_replication`] consumes the client and returns a
//! [`ReplicationStream`] that yields raw `CopyData` payloads; decoding them is the job of
//! the pure [`wire`] and [`pgoutput`](super::pgoutput) modules.
//!
//! Both types are generic over the byte stream ([`PgStream`]: plain TCP or TLS, by default)
//! so a test double can be plugged in through [`ReplicationClient::handshake`]. TLS follows
//! libpq: an `SSLRequest`, the server's one-byte answer, the TLS handshake, then startup over
//! the encrypted stream; what is verified is decided by [`PgTls`] (`sslmode`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod conn;

use std::fmt;
use std::future::Future;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::net::tls::{is_certificate_failure, PgStream, PgTls};

use super::wire::{self, Lsn};
use conn::{BackendMessage, Conn};

pub use conn::{MAX_BACKEND_MESSAGE_LEN, READ_BUFFER_SIZE};

/// Where and as whom to open a replication connection.
///
/// `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Role to log in as; it needs the `REPLICATION` attribute (or superuser).
    pub user: String,
    /// Password, if the server asks for one.
    pub password: Option<String>,
    /// Database whose changes are decoded (logical slots belong to one database).
    pub database: String,
    /// Shown in `pg_stat_replication` and `pg_stat_activity`, which is how an operator tells
    /// the agent's walsender from others.
    pub application_name: String,
    /// Upper bound for TCP connect plus startup and authentication.
    pub connect_timeout: Duration,
    /// The `options` startup parameter (e.g. `-c TimeZone=UTC`), when set.
    pub options: Option<String>,
    /// TLS: `sslmode` and certificate files.
    pub tls: PgTls,
    /// Send the password when the server asks for it in clear text over a connection without
    /// TLS ([`ReplError::CleartextRefused`] otherwise).
    pub allow_cleartext_password: bool,
    /// Open a `replication=database` connection (the default); `false` opens a plain SQL
    /// session, which [`probe_login`] uses to see how the SQL connection will authenticate.
    pub replication: bool,
}

impl fmt::Debug for ReplicationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.tls)
            .field("allow_cleartext_password", &self.allow_cleartext_password)
            .field("replication", &self.replication)
            .finish()
    }
}

impl ReplicationConfig {
    /// Default for [`ReplicationConfig::connect_timeout`].
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default for [`ReplicationConfig::application_name`].
    pub const DEFAULT_APPLICATION_NAME: &'static str = "cdc-agent";

    /// A config without password, with the default application name and timeout.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        database: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            user: user.into(),
            password: None,
            database: database.into(),
            application_name: Self::DEFAULT_APPLICATION_NAME.to_owned(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            options: None,
            tls: PgTls::default(),
            allow_cleartext_password: false,
            replication: true,
        }
    }

    /// Takes host, port, user, password, database, application name and connect timeout from
    /// a `tokio-postgres` config, so the replication connection is configured by the same URL
    /// or key-value string as the SQL connection.
    ///
    /// Only the first host is used; Unix-socket hosts are rejected (not supported yet). Missing
    /// values follow libpq: port 5432, database = user.
    pub fn from_pg_config(cfg: &tokio_postgres::Config) -> Result<Self, ReplError> {
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(_) => {
                return Err(ReplError::InvalidInput(
                    "unix-socket hosts are not supported for replication connections".into(),
                ))
            }
            None => match cfg.get_hostaddrs().first() {
                Some(addr) => addr.to_string(),
                None => return Err(ReplError::InvalidInput("no host configured".into())),
            },
        };
        let user = cfg
            .get_user()
            .ok_or_else(|| ReplError::InvalidInput("no user configured".into()))?
            .to_owned();
        let password = cfg
            .get_password()
            .map(|p| {
                String::from_utf8(p.to_vec())
                    .map_err(|_| ReplError::InvalidInput("password is not valid utf-8".into()))
            })
            .transpose()?;
        Ok(Self {
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            database: cfg.get_dbname().unwrap_or(&user).to_owned(),
            user,
            password,
            application_name: cfg
                .get_application_name()
                .unwrap_or(Self::DEFAULT_APPLICATION_NAME)
                .to_owned(),
            connect_timeout: cfg
                .get_connect_timeout()
                .copied()
                .unwrap_or(Self::DEFAULT_CONNECT_TIMEOUT),
            options: cfg.get_options().map(str::to_owned),
            tls: PgTls {
                mode: match cfg.get_ssl_mode() {
                    tokio_postgres::config::SslMode::Disable => crate::config::PgSslMode::Disable,
                    tokio_postgres::config::SslMode::Require => crate::config::PgSslMode::Require,
                    _ => crate::config::PgSslMode::Prefer,
                },
                ..PgTls::default()
            },
            allow_cleartext_password: false,
            replication: true,
        })
    }

    /// Parses a libpq-style URL or key-value string (see [`Self::from_pg_config`]).
    pub fn from_url(url: &str) -> Result<Self, ReplError> {
        let cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| ReplError::InvalidInput(format!("invalid connection string: {e}")))?;
        Self::from_pg_config(&cfg)
    }

    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// An `ErrorResponse` sent by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Non-localized severity (`ERROR`, `FATAL`, `PANIC`).
    pub severity: String,
    /// Five-character SQLSTATE, e.g. `28P01`.
    pub code: String,
    /// Primary message.
    pub message: String,
    /// Optional detail.
    pub detail: Option<String>,
    /// Optional hint.
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server error {} ({}): {}",
            self.code,
            self.severity.to_lowercase(),
            self.message
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl ServerError {
    /// Whether retrying later (on a new connection) can succeed without anyone changing
    /// configuration, grants or slots.
    ///
    /// Transient: connection exceptions (class 08), insufficient resources (53, e.g. too many
    /// connections), operator intervention that ends a session or refuses it for now
    /// (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57P05 idle
    /// session timeout, 57014 canceled), transaction rollback (40) and system errors (58,
    /// e.g. an I/O error on the server).
    ///
    /// Everything else is definite, notably 28P01/28000 (authentication), 42501 (privilege),
    /// 42704 (no such slot), 57P04 (database dropped) and 55006 (slot active for another
    /// PID): blindly retrying 55006 would let two consumers take turns on one slot, so the
    /// supervisor decides, e.g. by retrying a bounded number of times after its own
    /// reconnect while the old walsender is still exiting.
    pub fn is_transient(&self) -> bool {
        let class = self.code.get(..2).unwrap_or("");
        matches!(class, "08" | "53" | "40" | "58")
            || matches!(
                self.code.as_str(),
                "57P01" | "57P02" | "57P03" | "57P05" | "57014"
            )
    }
}

/// Errors of the replication client.
///
/// Messages are lowercase; server errors carry SQLSTATE, message, detail and hint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// Connect, startup and authentication together took longer than the configured timeout.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// `host:port`.
        addr: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// Reading from or writing to the established connection failed.
    #[error("i/o error on the replication connection: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection without saying why.
    #[error("the server closed the replication connection unexpectedly")]
    Closed,
    /// The server answered with an `ErrorResponse`.
    #[error("{0}")]
    Server(Box<ServerError>),
    /// The server sent something the protocol does not allow here.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A backend message announced a length above [`MAX_BACKEND_MESSAGE_LEN`].
    #[error("backend message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The announced body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The server asked for an authentication method this client does not implement.
    #[error("the server requests {0} authentication, which is not supported")]
    UnsupportedAuth(String),
    /// TLS could not be negotiated as `sslmode` demands.
    #[error("{message}")]
    Tls {
        /// What failed and which key fixes it.
        message: String,
        /// Whether only an operator can fix it (a certificate or name mismatch, a server
        /// without TLS) rather than the network.
        definite: bool,
    },
    /// The server asked for the password in clear text over a connection without TLS and
    /// [`ReplicationConfig::allow_cleartext_password`] is off: nothing was sent.
    #[error(
        "the server asks for the password in clear text over a connection without tls \
         (pg_hba.conf method `password`); not sent, anyone on the path could read it; fix: use \
         scram-sha-256 for this role in pg_hba.conf, or enable tls on the server and set \
         [postgres] sslmode = \"require\", or accept the risk with [postgres] \
         allow_cleartext_password = true"
    )]
    CleartextRefused,
    /// The server asked for a password and the config has none.
    #[error("the server requests a password but none is configured")]
    PasswordRequired,
    /// Configuration or arguments cannot be sent as given.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An earlier command's future was dropped before its reply was read, so replies can no
    /// longer be matched to commands; open a new connection.
    #[error("the replication connection is out of step after a cancelled command")]
    Desynchronized,
}

impl ReplError {
    /// Whether the same operation on a new connection may succeed later on its own.
    ///
    /// Network trouble and server shutdowns are transient; authentication and privilege
    /// failures, unknown or busy slots, protocol violations and bad input are definite
    /// (retrying cannot help until someone changes something). See
    /// [`ServerError::is_transient`] for the SQLSTATE split.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::ConnectTimeout { .. } | Self::Io(_) | Self::Closed => true,
            Self::Server(e) => e.is_transient(),
            Self::Tls { definite, .. } => !definite,
            Self::Protocol(_)
            | Self::MessageTooLarge { .. }
            | Self::UnsupportedAuth(_)
            | Self::PasswordRequired
            | Self::CleartextRefused
            | Self::InvalidInput(_)
            | Self::Desynchronized => false,
        }
    }

    /// The SQLSTATE of a server error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Server(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The server error, if this is one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Self::Server(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ServerError> for ReplError {
    fn from(e: ServerError) -> Self {
        Self::Server(Box::new(e))
    }
}

/// Result of `IDENTIFY_SYSTEM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    /// The cluster's unique system identifier (decimal text; it exceeds `i64` on purpose in
    /// some clusters, so it stays a string).
    pub system_id: String,
    /// Current timeline.
    pub timeline: u32,
    /// Current WAL flush position.
    pub xlog_pos: Lsn,
    /// Database connected to (`None` on a physical replication connection).
    pub database: Option<String>,
}

/// Result of `CREATE_REPLICATION_SLOT ... LOGICAL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotCreated {
    /// The slot name as the server reports it.
    pub slot_name: String,
    /// The first position the slot will decode; changes committed before it are in the
    /// exported snapshot, changes after it come through the stream.
    pub consistent_point: Lsn,
    /// Name of the exported snapshot, for `SET TRANSACTION SNAPSHOT`.
    pub snapshot_name: Option<String>,
    /// The output plugin (`pgoutput`).
    pub output_plugin: Option<String>,
}

/// A replication connection in command mode.
///
/// Generic over the byte stream so that TLS (or a test double) can be supplied through
/// [`ReplicationClient::handshake`].
pub struct ReplicationClient<S = PgStream> {
    conn: Conn<S>,
    parameters: Vec<(String, String)>,
    backend_key: Option<(i32, i32)>,
    // Set while a command's replies are outstanding; a dropped future leaves it set, which is
    // how later calls know the connection can no longer be trusted.
    in_flight: bool,
}

impl<S> fmt::Debug for ReplicationClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationClient")
            .field("backend_pid", &self.backend_pid())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl<S> ReplicationClient<S> {
    /// A run-time parameter the server reported (`server_version`, `client_encoding`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Process id of the walsender serving this connection, from `BackendKeyData`.
    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_key.map(|(pid, _)| pid)
    }
}

/// Logs in once as the SQL connection would (no `replication` parameter), to learn how the
/// server authenticates it before `tokio-postgres`, which answers a cleartext password request
/// on any connection, gets to. Returns whether the connection was encrypted.
///
/// Only [`ReplError::CleartextRefused`] matters to callers; any other failure will show again,
/// with its own message, when the real connection is made.
pub async fn probe_login(config: &ReplicationConfig) -> Result<bool, ReplError> {
    let mut config = config.clone();
    config.replication = false;
    config.application_name = format!("{} (login check)", config.application_name);
    let addr = config.addr();
    let attempt = async {
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|source| ReplError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let stream = negotiate_tls(tcp, &config, &addr).await?;
        let encrypted = stream.is_tls();
        let mut client = ReplicationClient::handshake_over(stream, &config, encrypted).await?;
        client.conn.queue_terminate();
        let _ = client.conn.flush().await;
        Ok(encrypted)
    };
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| ReplError::ConnectTimeout {
            addr: addr.clone(),
            timeout: config.connect_timeout,
        })?
}

impl ReplicationClient<PgStream> {
    /// Opens a TCP connection, negotiates TLS as [`ReplicationConfig::tls`] says, and
    /// authenticates with `replication=database`, all within
    /// [`ReplicationConfig::connect_timeout`].
    pub async fn connect(config: &ReplicationConfig) -> Result<Self, ReplError> {
        let addr = config.addr();
        let attempt = async {
            let stream = TcpStream::connect(&addr)
                .await
                .map_err(|source| ReplError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
            // Standby status updates are tiny and latency matters for the server's view of
            // our position, so Nagle's delay buys nothing.
            stream.set_nodelay(true)?;
            let stream = negotiate_tls(stream, config, &addr).await?;
            let encrypted = stream.is_tls();
            Self::handshake_over(stream, config, encrypted).await
        };
        tokio::time::timeout(config.connect_timeout, attempt)
            .await
            .map_err(|_| ReplError::ConnectTimeout {
                addr: addr.clone(),
                timeout: config.connect_timeout,
            })?
    }
}

/// libpq's TLS negotiation: `SSLRequest`, the server's `S` or `N`, then the TLS handshake.
async fn negotiate_tls(
    mut tcp: TcpStream,
    config: &ReplicationConfig,
    addr: &str,
) -> Result<PgStream, ReplError> {
    if !config.tls.wants_tls() {
        return Ok(PgStream::Plain(tcp));
    }
    let connector = config.tls.connector().map_err(|e| ReplError::Tls {
        message: e.to_string(),
        definite: true,
    })?;
    let mut request = bytes::BytesMut::with_capacity(8);
    postgres_protocol::message::frontend::ssl_request(&mut request);
    tcp.write_all(&request).await?;
    let mut answer = [0u8; 1];
    if tcp.read_exact(&mut answer).await.is_err() {
        return Err(ReplError::Closed);
    }
    match answer[0] {
        b'S' => tokio_native_tls::TlsConnector::from(connector)
            .connect(&config.host, PgStream::tls_transport(tcp))
            .await
            .map(|s| PgStream::Tls(Box::new(s)))
            .map_err(|e| {
                let cause = e.to_string();
                ReplError::Tls {
                    definite: is_certificate_failure(&cause),
                    message: config.tls.failure(addr, &cause),
                }
            }),
        b'N' if !config.tls.requires_tls() => {
            crate::net::tls::warn_unencrypted(addr, "[postgres] sslmode = \"prefer\"");
            Ok(PgStream::Plain(tcp))
        }
        b'N' => Err(ReplError::Tls {
            message: config.tls.failure(addr, "server does not support TLS"),
            definite: true,
        }),
        other => Err(ReplError::Protocol(format!(
            "unexpected answer {other:#04x} to SSLRequest"
        ))),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ReplicationClient<S> {
    /// Runs startup and authentication over an already established stream: plain TCP
    /// today, a TLS stream (after the `SSLRequest` exchange) later.
    ///
    /// Applies no timeout of its own; [`ReplicationClient::connect`] wraps it in one.
    pub async fn handshake(stream: S, config: &ReplicationConfig) -> Result<Self, ReplError> {
        Self::handshake_over(stream, config, false).await
    }

    /// [`ReplicationClient::handshake`] over a stream that is `encrypted` (TLS) or not, which
    /// decides whether a cleartext password may be sent.
    pub async fn handshake_over(
        stream: S,
        config: &ReplicationConfig,
        encrypted: bool,
    ) -> Result<Self, ReplError> {
        let mut conn = Conn::new(stream);
        let startup = conn::startup(&mut conn, config, encrypted).await?;
        Ok(Self {
            conn,
            parameters: startup.parameters,
            backend_key: startup.backend_key,
            in_flight: false,
        })
    }

    fn note_parameter(&mut self, msg: &BackendMessage) -> Result<(), ReplError> {
        let (name, value) = conn::parse_parameter_status(&msg.body)?;
        if let Some(slot) = self.parameters.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            self.parameters.push((name, value));
        }
        Ok(())
    }

    async fn send_query(&mut self, sql: &str) -> Result<(), ReplError> {
        if self.in_flight {
            return Err(ReplError::Desynchronized);
        }
        self.conn.queue_query(sql)?;
        self.in_flight = true;
        self.conn.flush().await
    }

    /// Runs one command with the simple query protocol and returns its rows as text
    /// (`None` for SQL NULL), for replication commands such as `IDENTIFY_SYSTEM`,
    /// `CREATE_REPLICATION_SLOT`, `DROP_REPLICATION_SLOT` and `SHOW`.
    ///
    /// Not cancel-safe: if the future is dropped before the reply is complete, later calls
    /// fail with [`ReplError::Desynchronized`]. A server error is returned only after the
    /// connection is ready again, so the client stays usable.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, ReplError> {
        self.send_query(sql).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let msg = self.conn.read_message().await?;
            match msg.tag {
                b'T' | b'C' | b'I' => {}
                b'D' => {
                    if error.is_none() {
                        rows.push(conn::parse_data_row(&msg.body)?);
                    }
                }
                b'E' => error = Some(conn::parse_error_fields(&msg.body)?),
                b'N' => conn::log_notice(&msg.body),
                b'S' => self.note_parameter(&msg)?,
                b'Z' => {
                    self.in_flight = false;
                    return match error {
                        Some(e) => Err(e.into()),
                        None => Ok(rows),
                    };
                }
                b'W' | b'H' | b'G' => {
                    return Err(ReplError::Protocol(format!(
                        "command entered copy mode ('{}'); use start_replication",
                        char::from(msg.tag)
                    )))
                }
                other => return Err(unexpected(other, "a command reply")),
            }
        }
    }

    /// `IDENTIFY_SYSTEM`: system id, timeline, current WAL position and database.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity, ReplError> {
        let rows = self.simple_query("IDENTIFY_SYSTEM").await?;
        let row = single_row(&rows, 4, "identify_system")?;
        let timeline = required(row, 1, "timeline")?
            .parse()
            .map_err(|_| ReplError::Protocol("identify_system: timeline is not a u32".into()))?;
        Ok(SystemIdentity {
            system_id: required(row, 0, "systemid")?.to_owned(),
            timeline,
            xlog_pos: parse_lsn(required(row, 2, "xlogpos")?, "identify_system xlogpos")?,
            database: row[3].clone(),
        })
    }

    /// `CREATE_REPLICATION_SLOT name [TEMPORARY] LOGICAL pgoutput (NO)EXPORT_SNAPSHOT`.
    ///
    /// With `export_snapshot`, [`SlotCreated::snapshot_name`] names a snapshot that sees
    /// exactly the data committed before [`SlotCreated::consistent_point`]; other sessions
    /// import it with `SET TRANSACTION SNAPSHOT` to copy the tables without gap or overlap
    /// with the stream. **The snapshot is valid only while this connection stays open and
    /// idle**: the next command on it (including `start_replication`) or closing it
    /// releases the snapshot, so import it in a `REPEATABLE READ` transaction first, and
    /// only then continue here.
    ///
    /// A `temporary` slot is dropped by the server when this connection ends.
    pub async fn create_logical_slot(
        &mut self,
        name: &str,
        export_snapshot: bool,
        temporary: bool,
    ) -> Result<SlotCreated, ReplError> {
        self.create_logical_slot_with(name, export_snapshot, temporary, false)
            .await
    }

    /// As [`Self::create_logical_slot`]; with `failover`, a failover slot (PostgreSQL 17+:
    /// the option list form, `(SNAPSHOT '…', FAILOVER true)`, which older servers reject).
    pub async fn create_logical_slot_with(
        &mut self,
        name: &str,
        export_snapshot: bool,
        temporary: bool,
        failover: bool,
    ) -> Result<SlotCreated, ReplError> {
        let snapshot = if failover {
            format!(
                "(SNAPSHOT '{}', FAILOVER true)",
                if export_snapshot { "export" } else { "nothing" }
            )
        } else if export_snapshot {
            "EXPORT_SNAPSHOT".to_string()
        } else {
            "NOEXPORT_SNAPSHOT".to_string()
        };
        let sql = format!(
            "CREATE_REPLICATION_SLOT {}{} LOGICAL pgoutput {snapshot}",
            quote_ident(name)?,
            if temporary { " TEMPORARY" } else { "" },
        );
        let rows = self.simple_query(&sql).await?;
        let row = single_row(&rows, 4, "create_replication_slot")?;
        Ok(SlotCreated {
            slot_name: required(row, 0, "slot_name")?.to_owned(),
            consistent_point: parse_lsn(
                required(row, 1, "consistent_point")?,
                "create_replication_slot consistent_point",
            )?,
            snapshot_name: row[2].clone(),
            output_plugin: row[3].clone(),
        })
    }

    /// `DROP_REPLICATION_SLOT name [WAIT]`; with `wait`, waits for an active slot to be
    /// released instead of failing with 55006.
    pub async fn drop_slot(&mut self, name: &str, wait: bool) -> Result<(), ReplError> {
        let sql = format!(
            "DROP_REPLICATION_SLOT {}{}",
            quote_ident(name)?,
            if wait { " WAIT" } else { "" }
        );
        self.simple_query(&sql).await.map(drop)
    }

    /// `SHOW name`: the current value of a server setting, e.g. `wal_sender_timeout`.
    pub async fn show(&mut self, name: &str) -> Result<String, ReplError> {
        let rows = self
            .simple_query(&format!("SHOW {}", quote_ident(name)?))
            .await?;
        let row = single_row(&rows, 1, "show")?;
        Ok(required(row, 0, "value")?.to_owned())
    }

    /// Sends `START_REPLICATION SLOT slot LOGICAL start_lsn (options)` and switches to
    /// streaming (CopyBoth). Option names are quoted as identifiers and values as literals,
    /// e.g. `[("proto_version", "2"), ("publication_names", "\"p\""), ("streaming", "on")]`.
    ///
    /// `start_lsn` of [`Lsn::INVALID`] lets the server start at the slot's
    /// `confirmed_flush_lsn`. Fails with SQLSTATE 55006 if another connection streams
    /// from the slot.
    pub async fn start_replication(
        mut self,
        slot: &str,
        start_lsn: Lsn,
        options: &[(&str, &str)],
    ) -> Result<ReplicationStream<S>, ReplError> {
        let mut sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {start_lsn}",
            quote_ident(slot)?
        );
        if !options.is_empty() {
            let mut parts = Vec::with_capacity(options.len());
            for (name, value) in options {
                parts.push(format!("{} {}", quote_ident(name)?, quote_literal(value)?));
            }
            sql.push_str(" (");
            sql.push_str(&parts.join(", "));
            sql.push(')');
        }
        self.send_query(&sql).await?;
        let mut error = None;
        loop {
            let msg = self.conn.read_message().await?;
            match msg.tag {
                b'W' if error.is_none() => {
                    return Ok(ReplicationStream {
                        client: self,
                        status: Vec::with_capacity(wire::STANDBY_STATUS_LEN),
                        server_done: false,
                        client_done: false,
                    })
                }
                b'E' => error = Some(conn::parse_error_fields(&msg.body)?),
                b'N' => conn::log_notice(&msg.body),
                b'S' => self.note_parameter(&msg)?,
                b'Z' => {
                    self.in_flight = false;
                    return Err(match error {
                        Some(e) => e.into(),
                        None => {
                            ReplError::Protocol("start_replication ended without streaming".into())
                        }
                    });
                }
                other => return Err(unexpected(other, "the reply to start_replication")),
            }
        }
    }

    /// Sends `Terminate` and closes the connection.
    pub async fn close(mut self) -> Result<(), ReplError> {
        self.conn.queue_terminate();
        self.conn.flush().await?;
        self.conn.shutdown().await
    }
}

/// The source of raw replication `CopyData` payloads the rest of the agent codes against,
/// so the client behind it can be replaced without touching the pipeline.
///
/// The futures are `Send` so a generic caller can run them in `tokio::spawn`.
pub trait WalSource {
    /// The next server `CopyData` payload (an `XLogData` or keepalive frame for
    /// [`wire::decode_frame`]), or `None` once the server ended the stream.
    ///
    /// Must be cancel-safe: dropping the future (e.g. when another `tokio::select!` branch
    /// wins) loses no data.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Bytes>, ReplError>> + Send;

    /// Reports positions to the server. `flush` lets the server recycle WAL and advances
    /// the slot's `confirmed_flush_lsn`, so it must cover only changes durably delivered
    /// downstream; `reply` asks the server for an immediate keepalive.
    fn send_status(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        reply: bool,
    ) -> impl Future<Output = Result<(), ReplError>> + Send;
}

/// A replication connection in streaming (CopyBoth) mode.
pub struct ReplicationStream<S = PgStream> {
    client: ReplicationClient<S>,
    status: Vec<u8>,
    server_done: bool,
    client_done: bool,
}

impl<S> fmt::Debug for ReplicationStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationStream")
            .field("client", &self.client)
            .field("server_done", &self.server_done)
            .field("client_done", &self.client_done)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ReplicationStream<S> {
    /// The next `CopyData` payload from the server, or `None` after the server's `CopyDone`.
    ///
    /// The payload is a [`Bytes`] slice of the connection's read buffer: no copy and no
    /// allocation per message. Reads go into one buffer of at least
    /// [`READ_BUFFER_SIZE`] bytes; holding on to payloads only keeps their chunk of
    /// that buffer alive, and the next read then starts a fresh chunk.
    ///
    /// Keepalives arrive here too; answering a keepalive whose `reply_requested` is set is
    /// the caller's job (with [`Self::send_status`]), or the server ends the connection after
    /// `wal_sender_timeout`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe. All state lives in `self`: complete messages are cut from the buffer
    /// synchronously, and the only await point is `AsyncReadExt::read_buf`, which either
    /// appends bytes to the buffer or does nothing. A future dropped in `tokio::select!`
    /// therefore leaves any partial message in the buffer for the next call.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, ReplError> {
        if self.server_done {
            return Ok(None);
        }
        loop {
            let msg = self.client.conn.read_message().await?;
            match msg.tag {
                b'd' => return Ok(Some(msg.body)),
                b'c' => {
                    self.server_done = true;
                    return Ok(None);
                }
                // A walsender that shuts down (server stop, fast or smart) ends streaming
                // with CommandComplete and no CopyDone (PostgreSQL's WalSndDone), then closes
                // the connection: the end of the stream, not a protocol violation.
                b'C' => {
                    self.server_done = true;
                    return Ok(None);
                }
                b'E' => return Err(conn::parse_error_fields(&msg.body)?.into()),
                b'N' => conn::log_notice(&msg.body),
                b'S' => self.client.note_parameter(&msg)?,
                other => return Err(unexpected(other, "the replication stream")),
            }
        }
    }

    /// Sends a standby status update stamped with the current time.
    ///
    /// Cancel safety: the encoded message is queued in `self` before the first await, and
    /// the socket write only ever removes what the kernel accepted, so a dropped future
    /// leaves the rest queued; the next `send_status` or [`Self::finish`] writes it before
    /// anything else. Nothing is lost or torn, but a dropped update is sent late.
    pub async fn send_status(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        reply: bool,
    ) -> Result<(), ReplError> {
        if self.client_done {
            return Err(ReplError::InvalidInput(
                "send_status after the stream was finished".into(),
            ));
        }
        self.status.clear();
        wire::encode_standby_status(write, flush, apply, now_pg_us(), reply, &mut self.status);
        self.client.conn.queue_copy_data(&self.status)?;
        self.client.conn.flush().await
    }

    /// Ends streaming (`CopyDone`), discards data the server sent in the meantime and
    /// returns the connection to command mode.
    ///
    /// With a large backlog the server may send a lot before it notices; closing the
    /// connection (dropping the stream) is cheaper when it is not needed any more.
    pub async fn finish(mut self) -> Result<ReplicationClient<S>, ReplError> {
        if !self.client_done {
            self.client.conn.queue_copy_done();
            self.client_done = true;
        }
        self.client.conn.flush().await?;
        let mut error = None;
        loop {
            let msg = self.client.conn.read_message().await?;
            match msg.tag {
                b'd' | b'C' => {}
                b'c' => self.server_done = true,
                b'E' => error = Some(conn::parse_error_fields(&msg.body)?),
                b'N' => conn::log_notice(&msg.body),
                b'S' => self.client.note_parameter(&msg)?,
                b'Z' => {
                    self.client.in_flight = false;
                    return match error {
                        Some(e) => Err(e.into()),
                        None => Ok(self.client),
                    };
                }
                other => return Err(unexpected(other, "the end of the replication stream")),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> WalSource for ReplicationStream<S> {
    async fn recv(&mut self) -> Result<Option<Bytes>, ReplError> {
        ReplicationStream::recv(self).await
    }

    async fn send_status(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        reply: bool,
    ) -> Result<(), ReplError> {
        ReplicationStream::send_status(self, write, flush, apply, reply).await
    }
}

fn now_pg_us() -> i64 {
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    // The server only logs this value, so a clock outside the representable range must not
    // stop replication; 0 (2000-01-01) is harmless.
    wire::unix_us_to_pg_us(unix_us).unwrap_or(0)
}

fn unexpected(tag: u8, context: &str) -> ReplError {
    ReplError::Protocol(format!(
        "unexpected message '{}' (0x{tag:02x}) in {context}",
        char::from(tag).escape_default()
    ))
}

fn single_row<'a>(
    rows: &'a [Vec<Option<String>>],
    columns: usize,
    what: &str,
) -> Result<&'a [Option<String>], ReplError> {
    match rows {
        [row] if row.len() >= columns => Ok(row),
        _ => Err(ReplError::Protocol(format!(
            "{what}: expected one row of {columns} columns, got {} rows",
            rows.len()
        ))),
    }
}

fn required<'a>(row: &'a [Option<String>], idx: usize, what: &str) -> Result<&'a str, ReplError> {
    row.get(idx)
        .and_then(|v| v.as_deref())
        .ok_or_else(|| ReplError::Protocol(format!("{what} is null")))
}

fn parse_lsn(s: &str, what: &str) -> Result<Lsn, ReplError> {
    s.parse()
        .map_err(|_| ReplError::Protocol(format!("{what}: {s:?} is not an lsn")))
}

/// Quotes a name for the replication grammar, which accepts `"..."` identifiers with `""`
/// escapes. Quoting (rather than validating against the slot-name alphabet) keeps option
/// names such as `proto_version` and future ones working unchanged.
fn quote_ident(name: &str) -> Result<String, ReplError> {
    if name.is_empty() || name.contains('\0') {
        return Err(ReplError::InvalidInput(format!(
            "{name:?} cannot be used as an identifier"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// Quotes a value as a string literal. The replication scanner treats backslashes
/// literally, so doubling single quotes is the only escape needed.
fn quote_literal(value: &str) -> Result<String, ReplError> {
    if value.contains('\0') {
        return Err(ReplError::InvalidInput(
            "option values cannot contain nul bytes".into(),
        ));
    }
    Ok(format!("'{}'", value.replace('\'', "''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> ReplError {
        ServerError {
            severity: "FATAL".into(),
            code: code.into(),
            message: "m".into(),
            detail: None,
            hint: None,
        }
        .into()
    }

    #[test]
    fn sqlstates_split_into_transient_and_definite() {
        for code in [
            "57P01", "57P02", "57P03", "08006", "53300", "40001", "58030",
        ] {
            assert!(server(code).is_transient(), "{code}");
        }
        for code in [
            "28P01", "28000", "42501", "42704", "55006", "57P04", "XX000", "0",
        ] {
            assert!(!server(code).is_transient(), "{code}");
        }
        assert!(ReplError::Closed.is_transient());
        assert!(!ReplError::Protocol("x".into()).is_transient());
        assert_eq!(server("55006").sqlstate(), Some("55006"));
    }

    #[test]
    fn identifiers_and_literals_are_quoted_for_the_replication_grammar() {
        assert_eq!(quote_ident("slot_1").unwrap(), "\"slot_1\"");
        assert_eq!(quote_ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert!(quote_ident("").is_err());
        assert!(quote_ident("a\0").is_err());
        assert_eq!(quote_literal("it's").unwrap(), "'it''s'");
        assert_eq!(quote_literal("a\\b").unwrap(), "'a\\b'");
        assert!(quote_literal("\0").is_err());
    }

    #[test]
    fn config_comes_from_a_url_and_debug_hides_the_password() {
        let c = ReplicationConfig::from_url(
            "postgres://agent:s3cret@db.example:6543/sales?application_name=x&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.user.as_str(),
                c.database.as_str()
            ),
            ("db.example", 6543, "agent", "sales")
        );
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert_eq!(c.application_name, "x");
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
        assert!(!format!("{c:?}").contains("s3cret"));
        let d = ReplicationConfig::from_url("postgres://agent@h").unwrap();
        assert_eq!((d.port, d.database.as_str()), (5432, "agent"));
        assert!(ReplicationConfig::from_url("postgres:///db?host=/tmp").is_err());
    }
}
