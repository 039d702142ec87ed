//! Transport of the replication client: backend-message framing over one large read
//! buffer, frontend-message queueing, startup and authentication.
//!
//! Frontend messages and the password/SCRAM computations come from `postgres-protocol`.
//! Backend messages are framed here rather than with
//! `postgres_protocol::message::backend::Message::parse` for three reasons: that parser
//! does not know `CopyBothResponse` (`'W'`), the one message that opens a replication
//! stream; it reserves whatever length the server announces before looking at it, so one
//! corrupt header could ask for 4 GiB; and its error fields are only reachable through
//! `fallible-iterator`. The handful of messages a replication connection sees are simple,
//! and parsing them with checked reads means server bytes can never cause a panic.

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ReplError, ReplicationConfig, ServerError};

/// Largest backend message body accepted, in bytes (1 GiB, PostgreSQL's own `MaxAllocSize`
/// bound for a single value). A header announcing more is rejected before anything is
/// allocated for it.
pub const MAX_BACKEND_MESSAGE_LEN: usize = 1 << 30;

/// Size of each chunk of the read buffer. Large chunks let one `read` syscall take in many
/// `CopyData` messages, and every message handed out is a slice of a chunk, so the
/// allocation cost is paid once per chunk rather than once per message.
pub const READ_BUFFER_SIZE: usize = 256 * 1024;

// Below this much free space a read would be too small to be worth the syscall, so a new
// chunk is reserved first.
const MIN_READ_SPACE: usize = 16 * 1024;

/// One backend message; `body` excludes the tag and length and shares the read buffer.
pub(super) struct BackendMessage {
    pub(super) tag: u8,
    pub(super) body: Bytes,
}

enum Framed {
    Message(BackendMessage),
    /// The buffer holds part of a message whose complete size (header included) is `total`.
    Incomplete {
        total: usize,
    },
}

/// Cuts the first complete message off `buf`, without copying its body.
fn try_frame(buf: &mut BytesMut) -> Result<Framed, ReplError> {
    let Some(header) = buf.get(..5) else {
        return Ok(Framed::Incomplete { total: 5 });
    };
    let tag = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let body_len = len.checked_sub(4).ok_or_else(|| {
        ReplError::Protocol(format!(
            "backend message 0x{tag:02x} announces an invalid length of {len}"
        ))
    })?;
    if body_len > MAX_BACKEND_MESSAGE_LEN {
        return Err(ReplError::MessageTooLarge {
            len: body_len,
            max: MAX_BACKEND_MESSAGE_LEN,
        });
    }
    let total = 5 + body_len;
    if buf.len() < total {
        return Ok(Framed::Incomplete { total });
    }
    let mut frame = buf.split_to(total);
    frame.advance(5);
    Ok(Framed::Message(BackendMessage {
        tag,
        body: frame.freeze(),
    }))
}

/// A connection's byte stream with its read and write buffers.
pub(super) struct Conn<S> {
    stream: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Conn<S> {
    pub(super) fn new(stream: S) -> Self {
        Self {
            stream,
            rbuf: BytesMut::with_capacity(READ_BUFFER_SIZE),
            wbuf: BytesMut::with_capacity(1024),
        }
    }

    /// Reads the next backend message.
    ///
    /// Cancel-safe: framing is synchronous and all partial state stays in `self.rbuf`; the
    /// only await is `read_buf`, which appends to the buffer or does nothing.
    pub(super) async fn read_message(&mut self) -> Result<BackendMessage, ReplError> {
        loop {
            let total = match try_frame(&mut self.rbuf)? {
                Framed::Message(msg) => return Ok(msg),
                Framed::Incomplete { total } => total,
            };
            // Reserve room for the whole pending message at once so a large one is read
            // into a single allocation instead of growing the buffer step by step.
            let missing = total.saturating_sub(self.rbuf.len());
            let free = self.rbuf.capacity() - self.rbuf.len();
            if free < missing.max(MIN_READ_SPACE) {
                self.rbuf.reserve(missing.max(READ_BUFFER_SIZE));
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(ReplError::Closed);
            }
        }
    }

    pub(super) fn queue_query(&mut self, sql: &str) -> Result<(), ReplError> {
        frontend::query(sql, &mut self.wbuf).map_err(|e| invalid_input("query", &e))
    }

    pub(super) fn queue_copy_data(&mut self, payload: &[u8]) -> Result<(), ReplError> {
        frontend::CopyData::new(payload)
            .map_err(|e| invalid_input("copy data", &e))?
            .write(&mut self.wbuf);
        Ok(())
    }

    pub(super) fn queue_copy_done(&mut self) {
        frontend::copy_done(&mut self.wbuf);
    }

    pub(super) fn queue_terminate(&mut self) {
        frontend::terminate(&mut self.wbuf);
    }

    /// Writes everything queued.
    ///
    /// `write_buf` removes from the queue exactly what the socket accepted, so a dropped
    /// future leaves the unsent remainder queued (never a torn message) for the next flush.
    pub(super) async fn flush(&mut self) -> Result<(), ReplError> {
        while self.wbuf.has_remaining() {
            if self.stream.write_buf(&mut self.wbuf).await? == 0 {
                return Err(ReplError::Io(std::io::ErrorKind::WriteZero.into()));
            }
        }
        self.stream.flush().await?;
        Ok(())
    }

    pub(super) async fn shutdown(&mut self) -> Result<(), ReplError> {
        self.stream.shutdown().await?;
        Ok(())
    }
}

fn invalid_input(what: &str, e: &std::io::Error) -> ReplError {
    ReplError::InvalidInput(format!("{what}: {e}"))
}

/// What the server told us between authentication and the first `ReadyForQuery`.
#[derive(Default)]
pub(super) struct Startup {
    pub(super) parameters: Vec<(String, String)>,
    pub(super) backend_key: Option<(i32, i32)>,
}

/// Sends the startup message, authenticates and waits for the connection to be ready.
pub(super) async fn startup<S: AsyncRead + AsyncWrite + Unpin + Send>(
    conn: &mut Conn<S>,
    config: &ReplicationConfig,
    encrypted: bool,
) -> Result<Startup, ReplError> {
    let mut params = vec![
        ("user", config.user.as_str()),
        ("database", config.database.as_str()),
        ("application_name", config.application_name.as_str()),
        ("client_encoding", "UTF8"),
    ];
    if config.replication {
        // "database" (not "true") makes this a logical replication connection bound to one
        // database, which both logical slots and SQL-ish commands like SHOW need.
        params.push(("replication", "database"));
    }
    // pgoutput renders values with the walsender's output functions, so session settings
    // (DateStyle, TimeZone, …) decide the text the decoders parse.
    if let Some(options) = &config.options {
        params.push(("options", options.as_str()));
    }
    frontend::startup_message(params, &mut conn.wbuf)
        .map_err(|e| invalid_input("startup parameters", &e))?;
    conn.flush().await?;
    authenticate(conn, config, encrypted).await?;

    let mut out = Startup::default();
    loop {
        let msg = conn.read_message().await?;
        match msg.tag {
            b'S' => out.parameters.push(parse_parameter_status(&msg.body)?),
            b'K' => {
                let mut c = Cursor::new(&msg.body, "backend key data");
                out.backend_key = Some((c.i32()?, c.i32()?));
            }
            b'N' => log_notice(&msg.body),
            b'E' => return Err(parse_error_fields(&msg.body)?.into()),
            b'Z' => return Ok(out),
            other => return Err(super::unexpected(other, "connection startup")),
        }
    }
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin + Send>(
    conn: &mut Conn<S>,
    config: &ReplicationConfig,
    encrypted: bool,
) -> Result<(), ReplError> {
    let password = || {
        config
            .password
            .as_deref()
            .ok_or(ReplError::PasswordRequired)
    };
    let mut scram: Option<sasl::ScramSha256> = None;
    loop {
        let msg = conn.read_message().await?;
        match msg.tag {
            b'R' => {}
            b'E' => return Err(parse_error_fields(&msg.body)?.into()),
            b'N' => {
                log_notice(&msg.body);
                continue;
            }
            other => return Err(super::unexpected(other, "authentication")),
        }
        let mut c = Cursor::new(&msg.body, "authentication request");
        match c.i32()? {
            0 => return Ok(()),
            // Refused before the password is touched: on a plain connection anyone on the
            // path could read it.
            3 if !encrypted && !config.allow_cleartext_password => {
                return Err(ReplError::CleartextRefused)
            }
            3 => frontend::password_message(password()?.as_bytes(), &mut conn.wbuf)
                .map_err(|e| invalid_input("password", &e))?,
            5 => {
                let salt = c.array::<4>()?;
                let hash = md5_hash(config.user.as_bytes(), password()?.as_bytes(), salt);
                frontend::password_message(hash.as_bytes(), &mut conn.wbuf)
                    .map_err(|e| invalid_input("password", &e))?;
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    let m = c.cstr()?;
                    if m.is_empty() {
                        break;
                    }
                    mechanisms.push(String::from_utf8_lossy(m).into_owned());
                }
                if !mechanisms.iter().any(|m| m == sasl::SCRAM_SHA_256) {
                    return Err(ReplError::UnsupportedAuth(format!(
                        "sasl ({})",
                        mechanisms.join(", ")
                    )));
                }
                // Without TLS there is nothing to bind to; "unsupported" sends the `n,,`
                // header, which servers accept whether or not they offer -PLUS.
                let s = sasl::ScramSha256::new(
                    password()?.as_bytes(),
                    sasl::ChannelBinding::unsupported(),
                );
                frontend::sasl_initial_response(sasl::SCRAM_SHA_256, s.message(), &mut conn.wbuf)
                    .map_err(|e| invalid_input("sasl", &e))?;
                scram = Some(s);
            }
            11 => {
                let s = scram.as_mut().ok_or_else(|| {
                    ReplError::Protocol("sasl continue before sasl was started".into())
                })?;
                s.update(c.rest())
                    .map_err(|e| ReplError::Protocol(format!("scram server-first message: {e}")))?;
                frontend::sasl_response(s.message(), &mut conn.wbuf)
                    .map_err(|e| invalid_input("sasl", &e))?;
            }
            12 => {
                let s = scram.as_mut().ok_or_else(|| {
                    ReplError::Protocol("sasl final before sasl was started".into())
                })?;
                // A wrong server signature means the server could not prove it knows the
                // password: treat it as a protocol failure, never as success.
                s.finish(c.rest())
                    .map_err(|e| ReplError::Protocol(format!("scram server-final message: {e}")))?;
                continue;
            }
            2 => return Err(ReplError::UnsupportedAuth("kerberos v5".into())),
            6 => return Err(ReplError::UnsupportedAuth("scm credential".into())),
            7 | 8 => return Err(ReplError::UnsupportedAuth("gssapi".into())),
            9 => return Err(ReplError::UnsupportedAuth("sspi".into())),
            other => return Err(ReplError::UnsupportedAuth(format!("method code {other}"))),
        }
        conn.flush().await?;
    }
}

/// Checked reads over a message body; every failure is a protocol error naming `what`.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    fn truncated(&self) -> ReplError {
        ReplError::Protocol(format!("truncated {} at offset {}", self.what, self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ReplError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated())?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.truncated())?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReplError> {
        let s = self.take(N)?;
        <[u8; N]>::try_from(s).map_err(|_| self.truncated())
    }

    fn u8(&mut self) -> Result<u8, ReplError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, ReplError> {
        self.array().map(u16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, ReplError> {
        self.array().map(i32::from_be_bytes)
    }

    /// A NUL-terminated string, without the NUL.
    fn cstr(&mut self) -> Result<&'a [u8], ReplError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.truncated())?;
        let s = self.take(nul)?;
        self.pos += 1;
        Ok(s)
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        s
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// Parses the fields of an `ErrorResponse` or `NoticeResponse`.
pub(super) fn parse_error_fields(body: &[u8]) -> Result<ServerError, ReplError> {
    let mut c = Cursor::new(body, "error response");
    let mut localized_severity = None;
    let mut err = ServerError {
        severity: String::new(),
        // Protocol 3 always sends a SQLSTATE; should one be missing, "internal error" keeps
        // the error definite rather than guessing that a retry helps.
        code: "XX000".to_owned(),
        message: String::new(),
        detail: None,
        hint: None,
    };
    loop {
        let field = c.u8()?;
        if field == 0 {
            break;
        }
        // Messages before `client_encoding` applies (e.g. during authentication) arrive in
        // the server encoding, so they are decoded lossily instead of being rejected.
        let value = String::from_utf8_lossy(c.cstr()?).into_owned();
        match field {
            b'V' => err.severity = value,
            b'S' => localized_severity = Some(value),
            b'C' => err.code = value,
            b'M' => err.message = value,
            b'D' => err.detail = Some(value),
            b'H' => err.hint = Some(value),
            _ => {}
        }
    }
    if err.severity.is_empty() {
        err.severity = localized_severity.unwrap_or_else(|| "ERROR".to_owned());
    }
    Ok(err)
}

/// Logs a `NoticeResponse` at debug level: notices on a replication connection are
/// informational (e.g. "slot does not exist, skipping") and never change control flow.
pub(super) fn log_notice(body: &[u8]) {
    match parse_error_fields(body) {
        Ok(n) => tracing::debug!(
            severity = %n.severity,
            code = %n.code,
            detail = n.detail.as_deref(),
            hint = n.hint.as_deref(),
            "postgres replication notice: {}",
            n.message
        ),
        Err(e) => tracing::debug!("malformed postgres notice: {e}"),
    }
}

/// Parses a `ParameterStatus` message into (name, value).
pub(super) fn parse_parameter_status(body: &[u8]) -> Result<(String, String), ReplError> {
    let mut c = Cursor::new(body, "parameter status");
    let name = String::from_utf8_lossy(c.cstr()?).into_owned();
    let value = String::from_utf8_lossy(c.cstr()?).into_owned();
    Ok((name, value))
}

/// Parses a `DataRow` in text format. The connection asks for UTF-8, so invalid UTF-8 is
/// a protocol error rather than something to paper over.
pub(super) fn parse_data_row(body: &[u8]) -> Result<Vec<Option<String>>, ReplError> {
    let mut c = Cursor::new(body, "data row");
    let n = c.u16()?;
    let mut row = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let len = c.i32()?;
        if len == -1 {
            row.push(None);
            continue;
        }
        let len = usize::try_from(len)
            .map_err(|_| ReplError::Protocol(format!("data row column length {len}")))?;
        let value = std::str::from_utf8(c.take(len)?)
            .map_err(|_| ReplError::Protocol("data row column is not valid utf-8".into()))?;
        row.push(Some(value.to_owned()));
    }
    if !c.is_empty() {
        return Err(ReplError::Protocol("trailing bytes after data row".into()));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BufMut;
    use tokio::io::{duplex, DuplexStream};

    use super::super::{ReplicationClient, ReplicationStream};
    use super::*;
    use crate::source::postgres::wire::Lsn;

    fn backend(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn auth(code: i32, extra: &[u8]) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(extra);
        backend(b'R', &body)
    }

    fn error_body(code: &str, message: &str) -> Vec<u8> {
        let mut b = Vec::new();
        for (f, v) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', code),
            (b'M', message),
        ] {
            b.push(f);
            b.extend_from_slice(v.as_bytes());
            b.push(0);
        }
        b.push(0);
        b
    }

    fn ready_sequence() -> Vec<u8> {
        let mut v = auth(0, b"");
        v.extend(backend(b'S', b"server_version\x0015.0\x00"));
        v.extend(backend(b'K', &[0, 0, 0, 42, 0, 0, 0, 7]));
        v.extend(backend(b'Z', b"I"));
        v
    }

    /// The startup packet (no tag) and its parameters.
    async fn read_startup(server: &mut DuplexStream) -> Vec<(String, String)> {
        let len = server.read_u32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        server.read_exact(&mut body).await.unwrap();
        assert_eq!(&body[..4], &0x0003_0000u32.to_be_bytes());
        let parts: Vec<String> = body[4..]
            .split(|&b| b == 0)
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect();
        parts
            .chunks(2)
            .filter(|c| c.len() == 2 && !c[0].is_empty())
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect()
    }

    async fn read_frontend(server: &mut DuplexStream) -> (u8, Vec<u8>) {
        let tag = server.read_u8().await.unwrap();
        let len = server.read_u32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        server.read_exact(&mut body).await.unwrap();
        (tag, body)
    }

    fn config(password: Option<&str>) -> ReplicationConfig {
        let mut c = ReplicationConfig::new("mock", 5432, "agent", "db");
        c.password = password.map(str::to_owned);
        c
    }

    #[test]
    fn framing_waits_for_a_complete_message_and_slices_without_copying() {
        let mut buf = BytesMut::new();
        assert!(matches!(
            try_frame(&mut buf).unwrap(),
            Framed::Incomplete { total: 5 }
        ));
        let wire = [backend(b'd', b"hello"), backend(b'c', b"")].concat();
        buf.extend_from_slice(&wire[..7]);
        assert!(matches!(
            try_frame(&mut buf).unwrap(),
            Framed::Incomplete { total: 10 }
        ));
        buf.extend_from_slice(&wire[7..]);
        let start = buf.as_ptr();
        let Framed::Message(m) = try_frame(&mut buf).unwrap() else {
            panic!("expected a message");
        };
        assert_eq!((m.tag, &m.body[..]), (b'd', &b"hello"[..]));
        assert!(std::ptr::eq(m.body.as_ptr(), start.wrapping_add(5)));
        let Framed::Message(m) = try_frame(&mut buf).unwrap() else {
            panic!("expected a message");
        };
        assert_eq!((m.tag, m.body.len()), (b'c', 0));
        assert!(buf.is_empty());
    }

    #[test]
    fn framing_rejects_short_and_oversized_lengths_before_allocating() {
        let mut buf = BytesMut::from(&[b'd', 0, 0, 0, 3][..]);
        assert!(matches!(try_frame(&mut buf), Err(ReplError::Protocol(_))));
        let mut buf = BytesMut::from(&[b'd', 0xFF, 0xFF, 0xFF, 0xFF][..]);
        let err = try_frame(&mut buf).err().unwrap();
        assert!(matches!(err, ReplError::MessageTooLarge { .. }));
        assert!(!err.is_transient());
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn error_fields_parse_into_a_lowercase_message_with_sqlstate_and_hint() {
        let mut body = error_body("42501", "permission denied to start WAL sender");
        body.pop();
        body.extend_from_slice(b"DMust have REPLICATION.\0HGrant it.\0\0");
        let e = parse_error_fields(&body).unwrap();
        assert_eq!(e.code, "42501");
        assert_eq!(
            ReplError::from(e).to_string(),
            "server error 42501 (fatal): permission denied to start WAL sender; \
             detail: Must have REPLICATION.; hint: Grant it."
        );
    }

    #[test]
    fn data_rows_parse_nulls_and_reject_truncation_and_trailing_bytes() {
        let mut body = vec![0, 2];
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"ab");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            parse_data_row(&body).unwrap(),
            vec![Some("ab".to_owned()), None]
        );
        assert!(parse_data_row(&body[..body.len() - 1]).is_err());
        body.push(0);
        assert!(parse_data_row(&body).is_err());
        assert!(parse_data_row(&[0, 1, 0x80, 0, 0, 0]).is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_parsers() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = parse_error_fields(&bytes);
            let _ = parse_data_row(&bytes);
            let _ = parse_parameter_status(&bytes);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Framed::Message(_)) = try_frame(&mut buf) {}
        }
    }

    #[tokio::test]
    async fn cleartext_password_authentication_reaches_ready() {
        let (client, mut server) = duplex(64 * 1024);
        let srv = tokio::spawn(async move {
            let params = read_startup(&mut server).await;
            assert!(params.contains(&("replication".into(), "database".into())));
            assert!(params.contains(&("user".into(), "agent".into())));
            server.write_all(&auth(3, b"")).await.unwrap();
            let (tag, body) = read_frontend(&mut server).await;
            assert_eq!((tag, &body[..]), (b'p', &b"s3cret\0"[..]));
            server.write_all(&ready_sequence()).await.unwrap();
            server
        });
        // Encrypted (as over TLS): the password may go in clear inside it.
        let client = ReplicationClient::handshake_over(client, &config(Some("s3cret")), true)
            .await
            .unwrap();
        assert_eq!(client.backend_pid(), Some(42));
        assert_eq!(client.parameter("server_version"), Some("15.0"));
        drop(srv.await.unwrap());
    }

    #[tokio::test]
    async fn a_cleartext_password_request_over_a_plain_connection_is_refused_without_sending_it() {
        let (client, mut server) = duplex(64 * 1024);
        let srv = tokio::spawn(async move {
            read_startup(&mut server).await;
            server.write_all(&auth(3, b"")).await.unwrap();
            // The client must hang up, not answer: reading finds the end of the stream.
            let mut rest = Vec::new();
            server.read_to_end(&mut rest).await.unwrap();
            rest
        });
        let err = ReplicationClient::handshake_over(client, &config(Some("s3cret")), false)
            .await
            .unwrap_err();
        assert!(matches!(err, ReplError::CleartextRefused), "{err}");
        assert!(!err.is_transient());
        assert!(
            err.to_string().contains("allow_cleartext_password"),
            "{err}"
        );
        let sent = srv.await.unwrap();
        assert!(
            !String::from_utf8_lossy(&sent).contains("s3cret"),
            "the password was sent: {sent:?}"
        );
    }

    #[tokio::test]
    async fn a_cleartext_password_over_a_plain_connection_is_sent_only_when_allowed() {
        let (client, mut server) = duplex(64 * 1024);
        let srv = tokio::spawn(async move {
            read_startup(&mut server).await;
            server.write_all(&auth(3, b"")).await.unwrap();
            let (tag, body) = read_frontend(&mut server).await;
            assert_eq!((tag, &body[..]), (b'p', &b"s3cret\0"[..]));
            server.write_all(&ready_sequence()).await.unwrap();
            server
        });
        let mut cfg = config(Some("s3cret"));
        cfg.allow_cleartext_password = true;
        ReplicationClient::handshake_over(client, &cfg, false)
            .await
            .unwrap();
        drop(srv.await.unwrap());
    }

    #[tokio::test]
    async fn md5_password_authentication_sends_the_salted_hash() {
        let (client, mut server) = duplex(64 * 1024);
        let srv = tokio::spawn(async move {
            read_startup(&mut server).await;
            server.write_all(&auth(5, &[1, 2, 3, 4])).await.unwrap();
            let (tag, body) = read_frontend(&mut server).await;
            assert_eq!(tag, b'p');
            let expected = md5_hash(b"agent", b"pw", [1, 2, 3, 4]);
            assert_eq!(&body[..body.len() - 1], expected.as_bytes());
            server.write_all(&ready_sequence()).await.unwrap();
            server
        });
        ReplicationClient::handshake(client, &config(Some("pw")))
            .await
            .unwrap();
        drop(srv.await.unwrap());
    }

    #[tokio::test]
    async fn missing_password_and_unsupported_methods_are_definite_errors() {
        for (request, want_password_error) in [(auth(3, b""), true), (auth(7, b""), false)] {
            let (client, mut server) = duplex(64 * 1024);
            let srv = tokio::spawn(async move {
                read_startup(&mut server).await;
                server.write_all(&request).await.unwrap();
                server
            });
            let err = ReplicationClient::handshake_over(client, &config(None), true)
                .await
                .unwrap_err();
            assert_eq!(
                matches!(err, ReplError::PasswordRequired),
                want_password_error,
                "{err}"
            );
            assert!(!err.is_transient(), "{err}");
            drop(srv.await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_connection_closed_mid_message_is_a_transient_error() {
        let (client, mut server) = duplex(64 * 1024);
        let srv = tokio::spawn(async move {
            read_startup(&mut server).await;
            server.write_all(&auth(3, b"")[..4]).await.unwrap();
        });
        let err = ReplicationClient::handshake(client, &config(Some("x")))
            .await
            .unwrap_err();
        assert!(matches!(err, ReplError::Closed), "{err}");
        assert!(err.is_transient());
        srv.await.unwrap();
    }

    async fn streaming_pair() -> (ReplicationStream<DuplexStream>, DuplexStream) {
        let (client, mut server) = duplex(1024 * 1024);
        let srv = tokio::spawn(async move {
            read_startup(&mut server).await;
            server.write_all(&ready_sequence()).await.unwrap();
            let (tag, body) = read_frontend(&mut server).await;
            assert_eq!(tag, b'Q');
            let sql = String::from_utf8(body).unwrap();
            assert_eq!(
                sql,
                "START_REPLICATION SLOT \"s\" LOGICAL 0/10 (\"proto_version\" '2', \
                 \"publication_names\" '\"p\"''x')\0"
            );
            server.write_all(&backend(b'W', &[0, 0, 0])).await.unwrap();
            server
        });
        let client = ReplicationClient::handshake(client, &config(None))
            .await
            .unwrap();
        let stream = client
            .start_replication(
                "s",
                Lsn(0x10),
                &[("proto_version", "2"), ("publication_names", "\"p\"'x")],
            )
            .await
            .unwrap();
        (stream, srv.await.unwrap())
    }

    #[tokio::test]
    async fn recv_dropped_mid_message_by_select_loses_nothing() {
        let (mut stream, mut server) = streaming_pair().await;
        let msg = backend(b'd', b"w-payload");
        server.write_all(&msg[..6]).await.unwrap();
        tokio::select! {
            r = stream.recv() => panic!("recv returned early: {:?}", r.map(|b| b.map(|b| b.len()))),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        server.write_all(&msg[6..]).await.unwrap();
        let mut tail = backend(b'N', &error_body("00000", "just saying"));
        tail.extend(backend(b'c', b""));
        server.write_all(&tail).await.unwrap();
        assert_eq!(
            stream.recv().await.unwrap().as_deref(),
            Some(&b"w-payload"[..])
        );
        assert_eq!(stream.recv().await.unwrap(), None);
        assert_eq!(stream.recv().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_walsender_shutting_down_ends_the_stream_with_command_complete() {
        let (mut stream, mut server) = streaming_pair().await;
        let mut wire = backend(b'd', b"last");
        wire.extend(backend(b'C', b"COPY 0\0"));
        server.write_all(&wire).await.unwrap();
        drop(server);
        assert_eq!(stream.recv().await.unwrap().as_deref(), Some(&b"last"[..]));
        assert_eq!(stream.recv().await.unwrap(), None);
        assert_eq!(stream.recv().await.unwrap(), None);
    }

    #[tokio::test]
    async fn status_updates_are_framed_as_copy_data_and_errors_end_the_stream() {
        let (mut stream, mut server) = streaming_pair().await;
        stream
            .send_status(Lsn(1), Lsn(2), Lsn(3), true)
            .await
            .unwrap();
        let (tag, body) = read_frontend(&mut server).await;
        assert_eq!(tag, b'd');
        assert_eq!(body.len(), 34);
        assert_eq!(body[0], b'r');
        assert_eq!(&body[9..17], &2u64.to_be_bytes());
        assert_eq!(body[33], 1);

        let mut out = BytesMut::new();
        out.put_slice(&backend(
            b'E',
            &error_body("57P01", "terminating connection"),
        ));
        server.write_all(&out).await.unwrap();
        let err = stream.recv().await.unwrap_err();
        assert_eq!(err.sqlstate(), Some("57P01"));
        assert!(err.is_transient());
    }
}
