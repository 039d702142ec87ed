//! Decoder for PostgreSQL's `pgoutput` logical replication messages.
//!
//! Each `XLogData` frame (see [`super::wire`]) carries exactly one message in
//! the format documented under "Logical Replication Message Formats" in the
//! PostgreSQL manual. This module covers protocol versions 1 to 4
//! (PostgreSQL 10 to 16 and later):
//!
//! * v1: begin/commit, origin, relation, type, insert/update/delete,
//!   truncate, logical decoding messages;
//! * v2: streaming of in-progress transactions (stream start/stop/commit/abort),
//!   during which data messages carry a leading (sub)transaction id;
//! * v3: two-phase commit (begin prepare, prepare, commit/rollback prepared,
//!   stream prepare);
//! * v4: stream abort carrying the abort LSN and timestamp when the
//!   subscription streams in `parallel` mode.
//!
//! The decoder is pure — bytes in, values out, no I/O or logging — so that
//! the code run on untrusted server bytes is the code that gets fuzzed, and it
//! never panics: every read is a checked slice access and lengths are
//! validated before use. Values borrow from the input buffer; row data in
//! particular is kept as a validated [`TupleData`] view rather than being
//! copied column by column, because insert/update/delete messages dominate
//! the stream and most consumers convert each column exactly once anyway.
//! Only the rare relation and truncate messages allocate.
//!
//! pgoutput messages are not self-describing with respect to streaming: the
//! same insert looks different inside a stream block, so the caller passes
//! that context to [`decode`], most conveniently via [`StreamTracker`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::iter::FusedIterator;

use super::wire::{DecodeError, Lsn};

/// One decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogicalMessage<'a> {
    /// `'B'`: start of a (non-streamed) transaction.
    Begin(Begin),
    /// `'C'`: end of a (non-streamed) transaction.
    Commit(Commit),
    /// `'O'`: the transaction originated on another node.
    Origin(Origin<'a>),
    /// `'R'`: describes a table; always precedes the first change to it.
    Relation(Relation<'a>),
    /// `'Y'`: describes a non-builtin column type.
    Type(Type<'a>),
    /// `'I'`: a row was inserted.
    Insert(Insert<'a>),
    /// `'U'`: a row was updated.
    Update(Update<'a>),
    /// `'D'`: a row was deleted.
    Delete(Delete<'a>),
    /// `'T'`: one or more tables were truncated.
    Truncate(Truncate),
    /// `'M'`: a `pg_logical_emit_message()` payload.
    Message(LogicalDecodingMessage<'a>),
    /// `'S'`: a block of a streamed in-progress transaction begins.
    StreamStart(StreamStart),
    /// `'E'`: the current stream block ends.
    StreamStop,
    /// `'c'`: a streamed transaction committed.
    StreamCommit(StreamCommit),
    /// `'A'`: a streamed (sub)transaction aborted.
    StreamAbort(StreamAbort),
    /// `'b'`: start of a prepared (two-phase) transaction.
    BeginPrepare(BeginPrepare<'a>),
    /// `'P'`: the transaction was prepared.
    Prepare(Prepare<'a>),
    /// `'K'`: a prepared transaction committed.
    CommitPrepared(CommitPrepared<'a>),
    /// `'r'`: a prepared transaction rolled back.
    RollbackPrepared(RollbackPrepared<'a>),
    /// `'p'`: a streamed transaction was prepared.
    StreamPrepare(Prepare<'a>),
}

impl LogicalMessage<'_> {
    /// A short lowercase name for the message kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Begin(_) => "begin",
            Self::Commit(_) => "commit",
            Self::Origin(_) => "origin",
            Self::Relation(_) => "relation",
            Self::Type(_) => "type",
            Self::Insert(_) => "insert",
            Self::Update(_) => "update",
            Self::Delete(_) => "delete",
            Self::Truncate(_) => "truncate",
            Self::Message(_) => "message",
            Self::StreamStart(_) => "stream start",
            Self::StreamStop => "stream stop",
            Self::StreamCommit(_) => "stream commit",
            Self::StreamAbort(_) => "stream abort",
            Self::BeginPrepare(_) => "begin prepare",
            Self::Prepare(_) => "prepare",
            Self::CommitPrepared(_) => "commit prepared",
            Self::RollbackPrepared(_) => "rollback prepared",
            Self::StreamPrepare(_) => "stream prepare",
        }
    }

    /// The transaction id the message carries, if any.
    ///
    /// For data messages this is only present inside a stream block, where it
    /// may name a subtransaction rather than the top-level transaction.
    pub fn xid(&self) -> Option<u32> {
        match self {
            Self::Begin(m) => Some(m.xid),
            Self::Commit(_) | Self::Origin(_) | Self::StreamStop => None,
            Self::Relation(m) => m.xid,
            Self::Type(m) => m.xid,
            Self::Insert(m) => m.xid,
            Self::Update(m) => m.xid,
            Self::Delete(m) => m.xid,
            Self::Truncate(m) => m.xid,
            Self::Message(m) => m.xid,
            Self::StreamStart(m) => Some(m.xid),
            Self::StreamCommit(m) => Some(m.xid),
            Self::StreamAbort(m) => Some(m.xid),
            Self::BeginPrepare(m) => Some(m.xid),
            Self::Prepare(m) | Self::StreamPrepare(m) => Some(m.xid),
            Self::CommitPrepared(m) => Some(m.xid),
            Self::RollbackPrepared(m) => Some(m.xid),
        }
    }
}

/// `'B'`: begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begin {
    /// LSN of the transaction's commit record.
    pub final_lsn: Lsn,
    /// Commit time, µs since 2000-01-01.
    pub commit_time: i64,
    /// Transaction id.
    pub xid: u32,
}

/// `'C'`: commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// Reserved; currently always 0.
    pub flags: u8,
    /// LSN of the commit record.
    pub commit_lsn: Lsn,
    /// End of the commit record: the position to confirm as flushed once
    /// the transaction is durably delivered.
    pub end_lsn: Lsn,
    /// Commit time, µs since 2000-01-01.
    pub commit_time: i64,
}

/// `'O'`: replication origin of the current transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Commit LSN on the origin server.
    pub commit_lsn: Lsn,
    /// Origin name.
    pub name: &'a str,
}

/// Replica identity of a relation, which decides what old-row data
/// updates and deletes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaIdentity {
    /// `'d'`: primary key columns.
    Default,
    /// `'n'`: nothing.
    Nothing,
    /// `'f'`: all columns.
    Full,
    /// `'i'`: columns of a chosen unique index.
    Index,
}

impl ReplicaIdentity {
    /// The protocol byte (`relreplident`).
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Default => b'd',
            Self::Nothing => b'n',
            Self::Full => b'f',
            Self::Index => b'i',
        }
    }
}

/// `'R'`: relation (table) description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation<'a> {
    /// Streamed (sub)transaction id; `Some` only inside a stream block.
    pub xid: Option<u32>,
    /// Relation OID, referenced by later data messages.
    pub oid: u32,
    /// Schema name as sent; empty means `pg_catalog` (see [`Relation::schema`]).
    pub namespace: &'a str,
    /// Table name.
    pub name: &'a str,
    /// Replica identity setting.
    pub replica_identity: ReplicaIdentity,
    /// Published columns, in the order tuples list them.
    pub columns: Vec<RelationColumn<'a>>,
}

impl<'a> Relation<'a> {
    /// The schema name, with the protocol's empty-string shorthand expanded.
    pub fn schema(&self) -> &'a str {
        expand_namespace(self.namespace)
    }
}

fn expand_namespace(ns: &str) -> &str {
    // pgoutput saves bytes by sending pg_catalog as the empty string.
    if ns.is_empty() {
        "pg_catalog"
    } else {
        ns
    }
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelationColumn<'a> {
    /// Column flags; bit 0 marks replica-identity (key) columns.
    pub flags: u8,
    /// Column name.
    pub name: &'a str,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier (`atttypmod`), -1 when none.
    pub type_modifier: i32,
}

impl RelationColumn<'_> {
    /// Whether the column is part of the replica identity (the "key").
    pub fn is_key(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// `'Y'`: type description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Type<'a> {
    /// Streamed (sub)transaction id; `Some` only inside a stream block.
    pub xid: Option<u32>,
    /// Type OID.
    pub oid: u32,
    /// Schema name as sent; empty means `pg_catalog` (see [`Type::schema`]).
    pub namespace: &'a str,
    /// Type name.
    pub name: &'a str,
}

impl<'a> Type<'a> {
    /// The schema name, with the protocol's empty-string shorthand expanded.
    pub fn schema(&self) -> &'a str {
        expand_namespace(self.namespace)
    }
}

/// `'I'`: insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insert<'a> {
    /// Streamed (sub)transaction id; `Some` only inside a stream block.
    pub xid: Option<u32>,
    /// OID of a previously described [`Relation`].
    pub relation_oid: u32,
    /// The inserted row.
    pub new: TupleData<'a>,
}

/// Old-row data attached to an update or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldTuple<'a> {
    /// `'K'`: only replica-identity columns are meaningful; the others are null.
    Key(TupleData<'a>),
    /// `'O'`: the whole old row (replica identity full).
    Full(TupleData<'a>),
}

impl<'a> OldTuple<'a> {
    /// The tuple, whichever kind it is.
    pub fn tuple(&self) -> TupleData<'a> {
        match *self {
            Self::Key(t) | Self::Full(t) => t,
        }
    }

    /// Whether only the key columns were sent.
    pub fn is_key(&self) -> bool {
        matches!(self, Self::Key(_))
    }
}

/// `'U'`: update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    /// Streamed (sub)transaction id; `Some` only inside a stream block.
    pub xid: Option<u32>,
    /// OID of a previously described [`Relation`].
    pub relation_oid: u32,
    /// Present when the key changed (`K`) or the table has replica identity
    /// full (`O`).
    pub old: Option<OldTuple<'a>>,
    /// The new row; unchanged TOASTed values appear as [`Column::UnchangedToast`].
    pub new: TupleData<'a>,
}

/// `'D'`: delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delete<'a> {
    /// Streamed (sub)transaction id; `Some` only inside a stream block.
    pub xid: Option<u32>,
    /// OID of a previously described [`Relation`].
    pub relation_oid: u32,
    /// The identifying part (`K`) or all (`O`) of the deleted row.
    pub old: OldTuple<'a>,
}

/// `'T'`: truncate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// Streamed (sub)transaction id; `Some` only inside a stream block.
    pub xid: Option<u32>,
    /// Option bits: 1 = `CASCADE`, 2 = `RESTART IDENTITY`.
    pub options: u8,
    /// OIDs of the truncated relations.
    pub relation_oids: Vec<u32>,
}

impl Truncate {
    /// `TRUNCATE ... CASCADE`.
    pub fn cascade(&self) -> bool {
        self.options & 1 != 0
    }

    /// `TRUNCATE ... RESTART IDENTITY`.
    pub fn restart_identity(&self) -> bool {
        self.options & 2 != 0
    }
}

/// `'M'`: logical decoding message from `pg_logical_emit_message()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogicalDecodingMessage<'a> {
    /// Streamed (sub)transaction id; `Some` only inside a stream block.
    pub xid: Option<u32>,
    /// Bit 0 set when the message is transactional.
    pub flags: u8,
    /// LSN of the message.
    pub lsn: Lsn,
    /// Caller-chosen prefix identifying the message's purpose.
    pub prefix: &'a str,
    /// Opaque payload.
    pub content: &'a [u8],
}

impl LogicalDecodingMessage<'_> {
    /// Transactional messages are delivered with their transaction; the
    /// others are delivered immediately, even if that transaction aborts.
    pub fn transactional(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// `'S'`: stream start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStart {
    /// Top-level transaction id being streamed.
    pub xid: u32,
    /// Whether this is the transaction's first block.
    pub first_segment: bool,
}

/// `'c'`: stream commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCommit {
    /// Transaction id.
    pub xid: u32,
    /// Reserved; currently always 0.
    pub flags: u8,
    /// LSN of the commit record.
    pub commit_lsn: Lsn,
    /// End of the commit record.
    pub end_lsn: Lsn,
    /// Commit time, µs since 2000-01-01.
    pub commit_time: i64,
}

/// `'A'`: stream abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAbort {
    /// Top-level transaction id.
    pub xid: u32,
    /// Aborted subtransaction id; equal to `xid` when the whole transaction aborted.
    pub subxid: u32,
    /// Present in protocol v4 when streaming in `parallel` mode.
    pub abort: Option<AbortInfo>,
}

/// Where and when a streamed transaction aborted (protocol v4, parallel streaming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortInfo {
    /// LSN of the abort record.
    pub lsn: Lsn,
    /// Abort time, µs since 2000-01-01.
    pub time: i64,
}

/// `'b'`: begin prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeginPrepare<'a> {
    /// LSN of the prepare record.
    pub prepare_lsn: Lsn,
    /// End of the prepared transaction.
    pub end_lsn: Lsn,
    /// Prepare time, µs since 2000-01-01.
    pub prepare_time: i64,
    /// Transaction id.
    pub xid: u32,
    /// User-defined global transaction identifier.
    pub gid: &'a str,
}

/// `'P'` (prepare) and `'p'` (stream prepare), which share a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepare<'a> {
    /// Reserved; currently always 0.
    pub flags: u8,
    /// LSN of the prepare record.
    pub prepare_lsn: Lsn,
    /// End of the prepared transaction.
    pub end_lsn: Lsn,
    /// Prepare time, µs since 2000-01-01.
    pub prepare_time: i64,
    /// Transaction id.
    pub xid: u32,
    /// User-defined global transaction identifier.
    pub gid: &'a str,
}

/// `'K'`: commit prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPrepared<'a> {
    /// Reserved; currently always 0.
    pub flags: u8,
    /// LSN of the commit prepared record.
    pub commit_lsn: Lsn,
    /// End of the commit prepared transaction.
    pub end_lsn: Lsn,
    /// Commit time, µs since 2000-01-01.
    pub commit_time: i64,
    /// Transaction id.
    pub xid: u32,
    /// User-defined global transaction identifier.
    pub gid: &'a str,
}

/// `'r'`: rollback prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollbackPrepared<'a> {
    /// Reserved; currently always 0.
    pub flags: u8,
    /// End of the prepared transaction.
    pub prepare_end_lsn: Lsn,
    /// End of the rollback prepared transaction.
    pub rollback_end_lsn: Lsn,
    /// Prepare time, µs since 2000-01-01.
    pub prepare_time: i64,
    /// Rollback time, µs since 2000-01-01.
    pub rollback_time: i64,
    /// Transaction id.
    pub xid: u32,
    /// User-defined global transaction identifier.
    pub gid: &'a str,
}

/// One column value of a [`TupleData`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Column<'a> {
    /// `'n'`: SQL NULL.
    Null,
    /// `'u'`: a TOASTed value that did not change; the server omits it, so
    /// the consumer must reuse the previous value or mark it unavailable.
    UnchangedToast,
    /// `'t'`: the type's text output, in the connection's client encoding.
    Text(&'a [u8]),
    /// `'b'`: the type's binary send format (only with the `binary` option).
    Binary(&'a [u8]),
}

impl<'a> Column<'a> {
    /// The value bytes for text and binary columns.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Self::Text(b) | Self::Binary(b) => Some(b),
            Self::Null | Self::UnchangedToast => None,
        }
    }
}

// Values are usually text, so show them as escaped strings rather than the
// default list of byte numbers.
impl fmt::Debug for Column<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("Null"),
            Self::UnchangedToast => f.write_str("UnchangedToast"),
            Self::Text(b) => write!(f, "Text(\"{}\")", b.escape_ascii()),
            Self::Binary(b) => write!(f, "Binary(\"{}\")", b.escape_ascii()),
        }
    }
}

/// A row as sent on the wire: the raw column bytes plus the column count.
///
/// Validated in full when the enclosing message is decoded, so iterating it
/// cannot fail and needs no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TupleData<'a> {
    // Invariant: `raw` holds exactly `len` well-formed columns.
    raw: &'a [u8],
    len: u16,
}

impl<'a> TupleData<'a> {
    /// Number of columns.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the tuple has no columns.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded columns, excluding the leading column count.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Iterates over the columns in relation order.
    pub fn iter(&self) -> Columns<'a> {
        Columns {
            rest: self.raw,
            remaining: self.len,
        }
    }
}

impl fmt::Debug for TupleData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for TupleData<'a> {
    type Item = Column<'a>;
    type IntoIter = Columns<'a>;

    fn into_iter(self) -> Columns<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &TupleData<'a> {
    type Item = Column<'a>;
    type IntoIter = Columns<'a>;

    fn into_iter(self) -> Columns<'a> {
        self.iter()
    }
}

/// Iterator over the columns of a [`TupleData`].
#[derive(Debug, Clone)]
pub struct Columns<'a> {
    rest: &'a [u8],
    remaining: u16,
}

impl<'a> Columns<'a> {
    fn parse_next(&mut self) -> Option<Column<'a>> {
        let (&kind, rest) = self.rest.split_first()?;
        let (column, rest) = match kind {
            b'n' => (Column::Null, rest),
            b'u' => (Column::UnchangedToast, rest),
            b't' | b'b' => {
                let len_bytes = rest.get(..4)?;
                let len = usize::try_from(u32::from_be_bytes(len_bytes.try_into().ok()?)).ok()?;
                let end = len.checked_add(4)?;
                let value = rest.get(4..end)?;
                let column = if kind == b't' {
                    Column::Text(value)
                } else {
                    Column::Binary(value)
                };
                (column, rest.get(end..)?)
            }
            _ => return None,
        };
        self.rest = rest;
        Some(column)
    }
}

impl<'a> Iterator for Columns<'a> {
    type Item = Column<'a>;

    fn next(&mut self) -> Option<Column<'a>> {
        self.remaining = self.remaining.checked_sub(1)?;
        let column = self.parse_next();
        if column.is_none() {
            // Unreachable given the TupleData invariant; stop rather than
            // yield garbage if it were ever broken.
            self.remaining = 0;
        }
        column
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.remaining);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Columns<'_> {}
impl FusedIterator for Columns<'_> {}

/// Tracks whether the connection is inside a stream block, so each message
/// can be decoded with the right context.
///
/// Feed it every message in order ([`StreamTracker::decode`] does both steps).
/// It also rejects impossible sequences, such as nested stream starts or a
/// transaction boundary inside a stream block, which would otherwise show up
/// later as baffling decode errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamTracker {
    stream_xid: Option<u32>,
}

impl StreamTracker {
    /// A tracker for a fresh connection (not inside a stream).
    pub const fn new() -> Self {
        Self { stream_xid: None }
    }

    /// Whether the next message is inside a stream block.
    pub fn in_stream(&self) -> bool {
        self.stream_xid.is_some()
    }

    /// The top-level transaction being streamed, if inside a stream block.
    pub fn stream_xid(&self) -> Option<u32> {
        self.stream_xid
    }

    /// Forgets any stream state, e.g. after reconnecting.
    pub fn reset(&mut self) {
        self.stream_xid = None;
    }

    /// Updates the state with a message decoded using [`Self::in_stream`].
    ///
    /// On error the state is left unchanged.
    pub fn observe(&mut self, msg: &LogicalMessage<'_>) -> Result<(), DecodeError> {
        let out_of_sequence = |what| Err(DecodeError::OutOfSequence { what });
        match (msg, self.stream_xid) {
            (LogicalMessage::StreamStart(s), None) => {
                self.stream_xid = Some(s.xid);
                Ok(())
            }
            (LogicalMessage::StreamStart(_), Some(_)) => {
                out_of_sequence("stream start inside a stream block")
            }
            (LogicalMessage::StreamStop, Some(_)) => {
                self.stream_xid = None;
                Ok(())
            }
            (LogicalMessage::StreamStop, None) => {
                out_of_sequence("stream stop outside a stream block")
            }
            (
                LogicalMessage::Begin(_)
                | LogicalMessage::Commit(_)
                | LogicalMessage::StreamCommit(_)
                | LogicalMessage::StreamAbort(_)
                | LogicalMessage::BeginPrepare(_)
                | LogicalMessage::Prepare(_)
                | LogicalMessage::CommitPrepared(_)
                | LogicalMessage::RollbackPrepared(_)
                | LogicalMessage::StreamPrepare(_),
                Some(_),
            ) => out_of_sequence("transaction boundary inside a stream block"),
            _ => Ok(()),
        }
    }

    /// Decodes `buf` in the current stream context and updates the state.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<LogicalMessage<'a>, DecodeError> {
        let msg = decode(buf, self.in_stream())?;
        self.observe(&msg)?;
        Ok(msg)
    }
}

/// Bounds-checked big-endian cursor; every failure names the field and offset.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let offset = self.pos;
        let end = offset
            .checked_add(len)
            .ok_or(DecodeError::Truncated { what, offset })?;
        let bytes = self
            .buf
            .get(offset..end)
            .ok_or(DecodeError::Truncated { what, offset })?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let offset = self.pos;
        let bytes = self.take(N, what)?;
        <[u8; N]>::try_from(bytes).map_err(|_| DecodeError::Truncated { what, offset })
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(what).map(|[b]| b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_be_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_be_bytes)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        self.array(what).map(i32::from_be_bytes)
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        self.array(what).map(i64::from_be_bytes)
    }

    fn lsn(&mut self, what: &'static str) -> Result<Lsn, DecodeError> {
        self.array(what).map(|b| Lsn(u64::from_be_bytes(b)))
    }

    /// An `Int32` byte count; the server never sends negative ones.
    fn len32(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let len = self.i32(what)?;
        usize::try_from(len).map_err(|_| DecodeError::Invalid { what, offset })
    }

    fn cstr(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let offset = self.pos;
        let rest = self.buf.get(offset..).unwrap_or_default();
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Truncated { what, offset })?;
        let bytes = self.take(nul, what)?;
        self.take(1, what)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8 { what, offset })
    }

    /// The leading (sub)transaction id that protocol v2+ adds to data
    /// messages inside a stream block.
    fn stream_xid(&mut self, in_stream: bool) -> Result<Option<u32>, DecodeError> {
        if in_stream {
            self.u32("stream xid").map(Some)
        } else {
            Ok(None)
        }
    }

    fn tuple(&mut self) -> Result<TupleData<'a>, DecodeError> {
        let len = self.u16("tuple column count")?;
        let start = self.pos;
        for _ in 0..len {
            let offset = self.pos;
            match self.u8("tuple column kind")? {
                b'n' | b'u' => {}
                b't' | b'b' => {
                    let n = self.len32("tuple column length")?;
                    self.take(n, "tuple column value")?;
                }
                tag => {
                    return Err(DecodeError::UnknownTag {
                        what: "tuple column kind",
                        tag,
                        offset,
                    })
                }
            }
        }
        let raw = self.buf.get(start..self.pos).unwrap_or_default();
        Ok(TupleData { raw, len })
    }

    fn expect_new_tuple(&mut self) -> Result<TupleData<'a>, DecodeError> {
        let offset = self.pos;
        match self.u8("new tuple marker")? {
            b'N' => self.tuple(),
            tag => Err(DecodeError::UnknownTag {
                what: "new tuple marker",
                tag,
                offset,
            }),
        }
    }

    fn old_tuple(&mut self, tag: u8, offset: usize) -> Result<OldTuple<'a>, DecodeError> {
        match tag {
            b'K' => self.tuple().map(OldTuple::Key),
            b'O' => self.tuple().map(OldTuple::Full),
            tag => Err(DecodeError::UnknownTag {
                what: "old tuple marker",
                tag,
                offset,
            }),
        }
    }

    fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes {
                what,
                offset: self.pos,
                count,
            }),
        }
    }
}

/// Decodes one pgoutput message.
///
/// `in_stream` must be true between a Stream Start and the matching Stream
/// Stop (protocol v2+), because data messages there carry a leading xid that
/// nothing in the message itself announces; [`StreamTracker`] maintains it.
/// The whole buffer must be consumed, so leftover bytes are an error — this
/// also catches most wrong `in_stream` guesses.
pub fn decode(buf: &[u8], in_stream: bool) -> Result<LogicalMessage<'_>, DecodeError> {
    let mut r = Reader::new(buf);
    let msg = match r.u8("message tag")? {
        b'B' => LogicalMessage::Begin(Begin {
            final_lsn: r.lsn("begin final lsn")?,
            commit_time: r.i64("begin commit time")?,
            xid: r.u32("begin xid")?,
        }),
        b'C' => LogicalMessage::Commit(Commit {
            flags: r.u8("commit flags")?,
            commit_lsn: r.lsn("commit lsn")?,
            end_lsn: r.lsn("commit end lsn")?,
            commit_time: r.i64("commit time")?,
        }),
        b'O' => LogicalMessage::Origin(Origin {
            commit_lsn: r.lsn("origin commit lsn")?,
            name: r.cstr("origin name")?,
        }),
        b'R' => LogicalMessage::Relation(relation(&mut r, in_stream)?),
        b'Y' => LogicalMessage::Type(Type {
            xid: r.stream_xid(in_stream)?,
            oid: r.u32("type oid")?,
            namespace: r.cstr("type namespace")?,
            name: r.cstr("type name")?,
        }),
        b'I' => LogicalMessage::Insert(Insert {
            xid: r.stream_xid(in_stream)?,
            relation_oid: r.u32("insert relation oid")?,
            new: r.expect_new_tuple()?,
        }),
        b'U' => {
            let xid = r.stream_xid(in_stream)?;
            let relation_oid = r.u32("update relation oid")?;
            let offset = r.pos;
            let old = match r.u8("update tuple marker")? {
                b'N' => None,
                tag => {
                    let old = r.old_tuple(tag, offset)?;
                    Some(old)
                }
            };
            let new = match old {
                None => r.tuple()?,
                Some(_) => r.expect_new_tuple()?,
            };
            LogicalMessage::Update(Update {
                xid,
                relation_oid,
                old,
                new,
            })
        }
        b'D' => {
            let xid = r.stream_xid(in_stream)?;
            let relation_oid = r.u32("delete relation oid")?;
            let offset = r.pos;
            let tag = r.u8("old tuple marker")?;
            LogicalMessage::Delete(Delete {
                xid,
                relation_oid,
                old: r.old_tuple(tag, offset)?,
            })
        }
        b'T' => LogicalMessage::Truncate(truncate(&mut r, in_stream)?),
        b'M' => LogicalMessage::Message(LogicalDecodingMessage {
            xid: r.stream_xid(in_stream)?,
            flags: r.u8("message flags")?,
            lsn: r.lsn("message lsn")?,
            prefix: r.cstr("message prefix")?,
            content: {
                let len = r.len32("message content length")?;
                r.take(len, "message content")?
            },
        }),
        b'S' => LogicalMessage::StreamStart(StreamStart {
            xid: r.u32("stream start xid")?,
            // Mirrors the server's own reader, which only treats 1 as true.
            first_segment: r.u8("stream start first segment")? == 1,
        }),
        b'E' => LogicalMessage::StreamStop,
        b'c' => LogicalMessage::StreamCommit(StreamCommit {
            xid: r.u32("stream commit xid")?,
            flags: r.u8("stream commit flags")?,
            commit_lsn: r.lsn("stream commit lsn")?,
            end_lsn: r.lsn("stream commit end lsn")?,
            commit_time: r.i64("stream commit time")?,
        }),
        b'A' => LogicalMessage::StreamAbort(StreamAbort {
            xid: r.u32("stream abort xid")?,
            subxid: r.u32("stream abort subxid")?,
            // Whether the abort position follows depends on the subscription's
            // streaming mode, not on anything in the message; since the frame
            // delimits the message exactly, its presence is read off the length.
            abort: if r.remaining() == 0 {
                None
            } else {
                Some(AbortInfo {
                    lsn: r.lsn("stream abort lsn")?,
                    time: r.i64("stream abort time")?,
                })
            },
        }),
        b'b' => LogicalMessage::BeginPrepare(BeginPrepare {
            prepare_lsn: r.lsn("begin prepare lsn")?,
            end_lsn: r.lsn("begin prepare end lsn")?,
            prepare_time: r.i64("begin prepare time")?,
            xid: r.u32("begin prepare xid")?,
            gid: r.cstr("begin prepare gid")?,
        }),
        b'P' => LogicalMessage::Prepare(prepare(&mut r)?),
        b'K' => LogicalMessage::CommitPrepared(CommitPrepared {
            flags: r.u8("commit prepared flags")?,
            commit_lsn: r.lsn("commit prepared lsn")?,
            end_lsn: r.lsn("commit prepared end lsn")?,
            commit_time: r.i64("commit prepared time")?,
            xid: r.u32("commit prepared xid")?,
            gid: r.cstr("commit prepared gid")?,
        }),
        b'r' => LogicalMessage::RollbackPrepared(RollbackPrepared {
            flags: r.u8("rollback prepared flags")?,
            prepare_end_lsn: r.lsn("rollback prepared prepare end lsn")?,
            rollback_end_lsn: r.lsn("rollback prepared end lsn")?,
            prepare_time: r.i64("rollback prepared prepare time")?,
            rollback_time: r.i64("rollback prepared time")?,
            xid: r.u32("rollback prepared xid")?,
            gid: r.cstr("rollback prepared gid")?,
        }),
        b'p' => LogicalMessage::StreamPrepare(prepare(&mut r)?),
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "message",
                tag,
                offset: 0,
            })
        }
    };
    r.finish(msg.kind())?;
    Ok(msg)
}

fn relation<'a>(r: &mut Reader<'a>, in_stream: bool) -> Result<Relation<'a>, DecodeError> {
    let xid = r.stream_xid(in_stream)?;
    let oid = r.u32("relation oid")?;
    let namespace = r.cstr("relation namespace")?;
    let name = r.cstr("relation name")?;
    let offset = r.pos;
    let replica_identity = match r.u8("replica identity")? {
        b'd' => ReplicaIdentity::Default,
        b'n' => ReplicaIdentity::Nothing,
        b'f' => ReplicaIdentity::Full,
        b'i' => ReplicaIdentity::Index,
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "replica identity",
                tag,
                offset,
            })
        }
    };
    let count = r.u16("relation column count")?;
    // A column needs at least 10 bytes (flags, empty name, two Int32s), so a
    // lying count cannot make us reserve more than the input could hold.
    let mut columns = Vec::with_capacity(usize::from(count).min(r.remaining() / 10));
    for _ in 0..count {
        columns.push(RelationColumn {
            flags: r.u8("relation column flags")?,
            name: r.cstr("relation column name")?,
            type_oid: r.u32("relation column type oid")?,
            type_modifier: r.i32("relation column type modifier")?,
        });
    }
    Ok(Relation {
        xid,
        oid,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn truncate(r: &mut Reader<'_>, in_stream: bool) -> Result<Truncate, DecodeError> {
    let xid = r.stream_xid(in_stream)?;
    let count = r.u32("truncate relation count")?;
    let options = r.u8("truncate options")?;
    let offset = r.pos;
    // Check the whole list up front so a bogus count cannot drive a huge allocation.
    let needed = usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(4))
        .filter(|&n| n <= r.remaining())
        .ok_or(DecodeError::Truncated {
            what: "truncate relation oids",
            offset,
        })?;
    let mut relation_oids = Vec::with_capacity(needed / 4);
    for _ in 0..count {
        relation_oids.push(r.u32("truncate relation oid")?);
    }
    Ok(Truncate {
        xid,
        options,
        relation_oids,
    })
}

fn prepare<'a>(r: &mut Reader<'a>) -> Result<Prepare<'a>, DecodeError> {
    Ok(Prepare {
        flags: r.u8("prepare flags")?,
        prepare_lsn: r.lsn("prepare lsn")?,
        end_lsn: r.lsn("prepare end lsn")?,
        prepare_time: r.i64("prepare time")?,
        xid: r.u32("prepare xid")?,
        gid: r.cstr("prepare gid")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test-only message assembler so cases read like the protocol docs.
    struct Msg(Vec<u8>);

    impl Msg {
        fn new(tag: u8) -> Self {
            Msg(vec![tag])
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn u16(mut self, v: u16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i64(mut self, v: i64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn str(mut self, s: &str) -> Self {
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            self
        }
        fn bytes(mut self, b: &[u8]) -> Self {
            self.0.extend_from_slice(b);
            self
        }
        fn xid(self, xid: Option<u32>) -> Self {
            match xid {
                Some(x) => self.u32(x),
                None => self,
            }
        }
        fn tuple(mut self, cols: &[Column<'_>]) -> Self {
            self.0
                .extend_from_slice(&u16::try_from(cols.len()).unwrap().to_be_bytes());
            for col in cols {
                match col {
                    Column::Null => self.0.push(b'n'),
                    Column::UnchangedToast => self.0.push(b'u'),
                    Column::Text(v) | Column::Binary(v) => {
                        self.0.push(if matches!(col, Column::Text(_)) {
                            b't'
                        } else {
                            b'b'
                        });
                        self.0
                            .extend_from_slice(&u32::try_from(v.len()).unwrap().to_be_bytes());
                        self.0.extend_from_slice(v);
                    }
                }
            }
            self
        }
        fn build(self) -> Vec<u8> {
            self.0
        }
    }

    const ALL_KINDS: [Column<'static>; 4] = [
        Column::Text(b"42"),
        Column::Null,
        Column::UnchangedToast,
        Column::Binary(&[0, 0, 0, 7]),
    ];

    fn xids() -> [(bool, Option<u32>); 2] {
        [(false, None), (true, Some(901))]
    }

    fn insert(xid: Option<u32>) -> Vec<u8> {
        Msg::new(b'I')
            .xid(xid)
            .u32(16384)
            .u8(b'N')
            .tuple(&ALL_KINDS)
            .build()
    }

    fn relation_msg(xid: Option<u32>) -> Vec<u8> {
        Msg::new(b'R')
            .xid(xid)
            .u32(16384)
            .str("public")
            .str("users")
            .u8(b'd')
            .u16(2)
            .u8(1)
            .str("id")
            .u32(23)
            .i32(-1)
            .u8(0)
            .str("name")
            .u32(1043)
            .i32(68)
            .build()
    }

    /// One valid encoding of every message kind, with the stream context it needs.
    fn samples() -> Vec<(Vec<u8>, bool)> {
        let mut v = vec![
            (Msg::new(b'B').u64(0x10).i64(5).u32(7).build(), false),
            (Msg::new(b'C').u8(0).u64(1).u64(2).i64(3).build(), false),
            (Msg::new(b'O').u64(9).str("node_a").build(), false),
            (Msg::new(b'S').u32(7).u8(1).build(), false),
            (Msg::new(b'E').build(), true),
            (
                Msg::new(b'c').u32(7).u8(0).u64(1).u64(2).i64(3).build(),
                false,
            ),
            (Msg::new(b'A').u32(7).u32(8).build(), false),
            (
                Msg::new(b'b')
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(7)
                    .str("gid-1")
                    .build(),
                false,
            ),
            (
                Msg::new(b'P')
                    .u8(0)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(7)
                    .str("gid-1")
                    .build(),
                false,
            ),
            (
                Msg::new(b'K')
                    .u8(0)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(7)
                    .str("gid-1")
                    .build(),
                false,
            ),
            (
                Msg::new(b'r')
                    .u8(0)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .i64(4)
                    .u32(7)
                    .str("gid-1")
                    .build(),
                false,
            ),
            (
                Msg::new(b'p')
                    .u8(0)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(7)
                    .str("gid-1")
                    .build(),
                false,
            ),
        ];
        for (in_stream, xid) in xids() {
            v.extend([
                (relation_msg(xid), in_stream),
                (
                    Msg::new(b'Y')
                        .xid(xid)
                        .u32(600)
                        .str("")
                        .str("point")
                        .build(),
                    in_stream,
                ),
                (insert(xid), in_stream),
                (
                    Msg::new(b'U')
                        .xid(xid)
                        .u32(1)
                        .u8(b'N')
                        .tuple(&ALL_KINDS)
                        .build(),
                    in_stream,
                ),
                (
                    Msg::new(b'U')
                        .xid(xid)
                        .u32(1)
                        .u8(b'K')
                        .tuple(&[Column::Text(b"1")])
                        .u8(b'N')
                        .tuple(&ALL_KINDS)
                        .build(),
                    in_stream,
                ),
                (
                    Msg::new(b'U')
                        .xid(xid)
                        .u32(1)
                        .u8(b'O')
                        .tuple(&ALL_KINDS)
                        .u8(b'N')
                        .tuple(&ALL_KINDS)
                        .build(),
                    in_stream,
                ),
                (
                    Msg::new(b'D')
                        .xid(xid)
                        .u32(1)
                        .u8(b'K')
                        .tuple(&[Column::Text(b"1")])
                        .build(),
                    in_stream,
                ),
                (
                    Msg::new(b'D')
                        .xid(xid)
                        .u32(1)
                        .u8(b'O')
                        .tuple(&ALL_KINDS)
                        .build(),
                    in_stream,
                ),
                (
                    Msg::new(b'T').xid(xid).u32(2).u8(3).u32(10).u32(11).build(),
                    in_stream,
                ),
                (
                    Msg::new(b'M')
                        .xid(xid)
                        .u8(1)
                        .u64(5)
                        .str("app")
                        .u32(3)
                        .bytes(b"hey")
                        .build(),
                    in_stream,
                ),
            ]);
        }
        v
    }

    #[test]
    fn begin_decodes_final_lsn_commit_time_and_xid() {
        let buf = Msg::new(b'B').u64(0x16_B374_D848).i64(-1).u32(1234).build();
        assert_eq!(
            decode(&buf, false).unwrap(),
            LogicalMessage::Begin(Begin {
                final_lsn: Lsn(0x16_B374_D848),
                commit_time: -1,
                xid: 1234
            })
        );
    }

    #[test]
    fn commit_decodes_flags_lsns_and_timestamp_in_order() {
        let buf = Msg::new(b'C').u8(0).u64(10).u64(20).i64(30).build();
        assert_eq!(
            decode(&buf, false).unwrap(),
            LogicalMessage::Commit(Commit {
                flags: 0,
                commit_lsn: Lsn(10),
                end_lsn: Lsn(20),
                commit_time: 30
            })
        );
    }

    #[test]
    fn origin_decodes_lsn_and_name() {
        let buf = Msg::new(b'O').u64(77).str("node_a").build();
        assert_eq!(
            decode(&buf, false).unwrap(),
            LogicalMessage::Origin(Origin {
                commit_lsn: Lsn(77),
                name: "node_a"
            })
        );
    }

    #[test]
    fn relation_decodes_columns_key_flags_and_replica_identity() {
        for (in_stream, xid) in xids() {
            let buf = relation_msg(xid);
            let LogicalMessage::Relation(rel) = decode(&buf, in_stream).unwrap() else {
                panic!("expected relation");
            };
            assert_eq!(rel.xid, xid);
            assert_eq!(rel.oid, 16384);
            assert_eq!((rel.namespace, rel.name), ("public", "users"));
            assert_eq!(rel.replica_identity, ReplicaIdentity::Default);
            assert_eq!(rel.replica_identity.as_byte(), b'd');
            assert_eq!(
                rel.columns,
                vec![
                    RelationColumn {
                        flags: 1,
                        name: "id",
                        type_oid: 23,
                        type_modifier: -1
                    },
                    RelationColumn {
                        flags: 0,
                        name: "name",
                        type_oid: 1043,
                        type_modifier: 68
                    },
                ]
            );
            assert!(rel.columns[0].is_key());
            assert!(!rel.columns[1].is_key());
        }
    }

    #[test]
    fn relation_accepts_every_replica_identity_and_rejects_others() {
        for (byte, ident) in [
            (b'd', ReplicaIdentity::Default),
            (b'n', ReplicaIdentity::Nothing),
            (b'f', ReplicaIdentity::Full),
            (b'i', ReplicaIdentity::Index),
        ] {
            let buf = Msg::new(b'R')
                .u32(1)
                .str("")
                .str("t")
                .u8(byte)
                .u16(0)
                .build();
            let LogicalMessage::Relation(rel) = decode(&buf, false).unwrap() else {
                panic!("expected relation");
            };
            assert_eq!(rel.replica_identity, ident);
            assert_eq!(rel.schema(), "pg_catalog");
        }
        let bad = Msg::new(b'R')
            .u32(1)
            .str("")
            .str("t")
            .u8(b'x')
            .u16(0)
            .build();
        assert_eq!(
            decode(&bad, false),
            Err(DecodeError::UnknownTag {
                what: "replica identity",
                tag: b'x',
                offset: 8
            })
        );
    }

    #[test]
    fn type_decodes_in_and_out_of_stream() {
        for (in_stream, xid) in xids() {
            let buf = Msg::new(b'Y')
                .xid(xid)
                .u32(600)
                .str("")
                .str("point")
                .build();
            let expected = Type {
                xid,
                oid: 600,
                namespace: "",
                name: "point",
            };
            assert_eq!(
                decode(&buf, in_stream).unwrap(),
                LogicalMessage::Type(expected)
            );
            assert_eq!(expected.schema(), "pg_catalog");
        }
    }

    #[test]
    fn insert_tuple_iterates_all_four_column_kinds() {
        for (in_stream, xid) in xids() {
            let buf = insert(xid);
            let LogicalMessage::Insert(ins) = decode(&buf, in_stream).unwrap() else {
                panic!("expected insert");
            };
            assert_eq!(ins.xid, xid);
            assert_eq!(ins.relation_oid, 16384);
            assert_eq!(ins.new.len(), 4);
            assert!(!ins.new.is_empty());
            let cols: Vec<Column<'_>> = ins.new.iter().collect();
            assert_eq!(cols, ALL_KINDS);
            assert_eq!(ins.new.iter().len(), 4);
            assert_eq!(cols[0].bytes(), Some(&b"42"[..]));
            assert_eq!(cols[1].bytes(), None);
            assert_eq!((&ins.new).into_iter().count(), 4);
        }
    }

    #[test]
    fn tuple_values_borrow_from_the_input_buffer() {
        let buf = insert(None);
        let LogicalMessage::Insert(ins) = decode(&buf, false).unwrap() else {
            panic!("expected insert");
        };
        let Some(Column::Text(v)) = ins.new.iter().next() else {
            panic!("expected text");
        };
        let range = buf.as_ptr_range();
        assert!(range.contains(&v.as_ptr()));
        assert_eq!(ins.new.raw().len(), buf.len() - 1 - 4 - 1 - 2);
    }

    #[test]
    fn empty_tuple_yields_no_columns() {
        let buf = Msg::new(b'I').u32(1).u8(b'N').tuple(&[]).build();
        let LogicalMessage::Insert(ins) = decode(&buf, false).unwrap() else {
            panic!("expected insert");
        };
        assert!(ins.new.is_empty());
        assert_eq!(ins.new.iter().next(), None);
        assert_eq!(format!("{:?}", ins.new), "[]");
    }

    #[test]
    fn insert_without_new_tuple_marker_is_rejected() {
        let buf = Msg::new(b'I').u32(1).u8(b'K').tuple(&[]).build();
        assert_eq!(
            decode(&buf, false),
            Err(DecodeError::UnknownTag {
                what: "new tuple marker",
                tag: b'K',
                offset: 5
            })
        );
    }

    #[test]
    fn update_without_old_tuple_exposes_only_the_new_tuple() {
        for (in_stream, xid) in xids() {
            let buf = Msg::new(b'U')
                .xid(xid)
                .u32(5)
                .u8(b'N')
                .tuple(&ALL_KINDS)
                .build();
            let LogicalMessage::Update(up) = decode(&buf, in_stream).unwrap() else {
                panic!("expected update");
            };
            assert_eq!(up.xid, xid);
            assert_eq!(up.relation_oid, 5);
            assert_eq!(up.old, None);
            assert!(up.new.iter().eq(ALL_KINDS));
        }
    }

    #[test]
    fn update_with_old_key_tuple_exposes_both_tuples() {
        for (in_stream, xid) in xids() {
            let buf = Msg::new(b'U')
                .xid(xid)
                .u32(5)
                .u8(b'K')
                .tuple(&[Column::Text(b"1"), Column::Null])
                .u8(b'N')
                .tuple(&[Column::Text(b"2"), Column::Text(b"bob")])
                .build();
            let LogicalMessage::Update(up) = decode(&buf, in_stream).unwrap() else {
                panic!("expected update");
            };
            assert_eq!(up.xid, xid);
            let old = up.old.unwrap();
            assert!(old.is_key());
            assert!(matches!(old, OldTuple::Key(_)));
            assert!(old.tuple().iter().eq([Column::Text(b"1"), Column::Null]));
            assert!(up.new.iter().eq([Column::Text(b"2"), Column::Text(b"bob")]));
        }
    }

    #[test]
    fn update_with_full_old_tuple_exposes_both_tuples() {
        for (in_stream, xid) in xids() {
            let buf = Msg::new(b'U')
                .xid(xid)
                .u32(5)
                .u8(b'O')
                .tuple(&ALL_KINDS)
                .u8(b'N')
                .tuple(&[Column::UnchangedToast])
                .build();
            let LogicalMessage::Update(up) = decode(&buf, in_stream).unwrap() else {
                panic!("expected update");
            };
            let old = up.old.unwrap();
            assert!(!old.is_key());
            assert!(old.tuple().iter().eq(ALL_KINDS));
            assert!(up.new.iter().eq([Column::UnchangedToast]));
        }
    }

    #[test]
    fn update_with_old_tuple_but_no_new_tuple_marker_is_rejected() {
        let buf = Msg::new(b'U')
            .u32(5)
            .u8(b'K')
            .tuple(&[])
            .u8(b'K')
            .tuple(&[])
            .build();
        assert!(matches!(
            decode(&buf, false),
            Err(DecodeError::UnknownTag {
                what: "new tuple marker",
                tag: b'K',
                ..
            })
        ));
        let bad_marker = Msg::new(b'U').u32(5).u8(b'X').tuple(&[]).build();
        assert!(matches!(
            decode(&bad_marker, false),
            Err(DecodeError::UnknownTag {
                what: "old tuple marker",
                tag: b'X',
                offset: 5
            })
        ));
    }

    #[test]
    fn delete_exposes_key_or_full_old_tuple() {
        for (in_stream, xid) in xids() {
            let key = Msg::new(b'D')
                .xid(xid)
                .u32(9)
                .u8(b'K')
                .tuple(&[Column::Text(b"1")])
                .build();
            assert_eq!(
                decode(&key, in_stream).unwrap(),
                LogicalMessage::Delete(Delete {
                    xid,
                    relation_oid: 9,
                    old: OldTuple::Key(TupleData {
                        raw: &[b't', 0, 0, 0, 1, b'1'],
                        len: 1
                    }),
                })
            );
            let full = Msg::new(b'D')
                .xid(xid)
                .u32(9)
                .u8(b'O')
                .tuple(&ALL_KINDS)
                .build();
            let LogicalMessage::Delete(del) = decode(&full, in_stream).unwrap() else {
                panic!("expected delete");
            };
            assert!(matches!(del.old, OldTuple::Full(_)));
            assert!(del.old.tuple().iter().eq(ALL_KINDS));
        }
        let newtuple = Msg::new(b'D').u32(9).u8(b'N').tuple(&[]).build();
        assert!(decode(&newtuple, false).is_err());
    }

    #[test]
    fn truncate_decodes_option_bits_and_relation_oids() {
        for (in_stream, xid) in xids() {
            let buf = Msg::new(b'T').xid(xid).u32(2).u8(3).u32(10).u32(11).build();
            let LogicalMessage::Truncate(t) = decode(&buf, in_stream).unwrap() else {
                panic!("expected truncate");
            };
            assert_eq!(t.xid, xid);
            assert_eq!(t.relation_oids, vec![10, 11]);
            assert!(t.cascade());
            assert!(t.restart_identity());
        }
        let plain = Msg::new(b'T').u32(0).u8(0).build();
        let LogicalMessage::Truncate(t) = decode(&plain, false).unwrap() else {
            panic!("expected truncate");
        };
        assert!(!t.cascade() && !t.restart_identity() && t.relation_oids.is_empty());
    }

    #[test]
    fn truncate_with_huge_relation_count_fails_without_allocating() {
        let buf = Msg::new(b'T').u32(u32::MAX).u8(0).u32(1).build();
        assert_eq!(
            decode(&buf, false),
            Err(DecodeError::Truncated {
                what: "truncate relation oids",
                offset: 6
            })
        );
    }

    #[test]
    fn logical_decoding_message_decodes_flags_prefix_and_content() {
        for (in_stream, xid) in xids() {
            let buf = Msg::new(b'M')
                .xid(xid)
                .u8(1)
                .u64(0x55)
                .str("app")
                .u32(5)
                .bytes(b"a\0b\xffc")
                .build();
            let LogicalMessage::Message(m) = decode(&buf, in_stream).unwrap() else {
                panic!("expected message");
            };
            assert_eq!(m.xid, xid);
            assert!(m.transactional());
            assert_eq!(m.lsn, Lsn(0x55));
            assert_eq!(m.prefix, "app");
            assert_eq!(m.content, b"a\0b\xffc");
        }
        let non_tx = Msg::new(b'M').u8(0).u64(1).str("p").u32(0).build();
        let LogicalMessage::Message(m) = decode(&non_tx, false).unwrap() else {
            panic!("expected message");
        };
        assert!(!m.transactional());
        assert!(m.content.is_empty());
    }

    #[test]
    fn negative_lengths_are_rejected() {
        let msg = Msg::new(b'M').u8(0).u64(1).str("p").i32(-1).build();
        assert_eq!(
            decode(&msg, false),
            Err(DecodeError::Invalid {
                what: "message content length",
                offset: 12
            })
        );
        let col = Msg::new(b'I')
            .u32(1)
            .u8(b'N')
            .u16(1)
            .u8(b't')
            .i32(-1)
            .build();
        assert_eq!(
            decode(&col, false),
            Err(DecodeError::Invalid {
                what: "tuple column length",
                offset: 9
            })
        );
    }

    #[test]
    fn unknown_tuple_column_kind_is_rejected() {
        let buf = Msg::new(b'I').u32(1).u8(b'N').u16(1).u8(b'x').build();
        assert_eq!(
            decode(&buf, false),
            Err(DecodeError::UnknownTag {
                what: "tuple column kind",
                tag: b'x',
                offset: 8
            })
        );
    }

    #[test]
    fn stream_control_messages_decode() {
        let start = Msg::new(b'S').u32(7).u8(1).build();
        assert_eq!(
            decode(&start, false).unwrap(),
            LogicalMessage::StreamStart(StreamStart {
                xid: 7,
                first_segment: true
            })
        );
        let later = Msg::new(b'S').u32(7).u8(0).build();
        assert_eq!(
            decode(&later, false).unwrap(),
            LogicalMessage::StreamStart(StreamStart {
                xid: 7,
                first_segment: false
            })
        );
        assert_eq!(decode(b"E", true).unwrap(), LogicalMessage::StreamStop);
        let commit = Msg::new(b'c').u32(7).u8(0).u64(1).u64(2).i64(3).build();
        assert_eq!(
            decode(&commit, false).unwrap(),
            LogicalMessage::StreamCommit(StreamCommit {
                xid: 7,
                flags: 0,
                commit_lsn: Lsn(1),
                end_lsn: Lsn(2),
                commit_time: 3
            })
        );
    }

    #[test]
    fn stream_abort_carries_abort_position_only_when_sent() {
        let v2 = Msg::new(b'A').u32(7).u32(8).build();
        assert_eq!(
            decode(&v2, false).unwrap(),
            LogicalMessage::StreamAbort(StreamAbort {
                xid: 7,
                subxid: 8,
                abort: None
            })
        );
        let parallel = Msg::new(b'A').u32(7).u32(7).u64(0x99).i64(12).build();
        assert_eq!(
            decode(&parallel, false).unwrap(),
            LogicalMessage::StreamAbort(StreamAbort {
                xid: 7,
                subxid: 7,
                abort: Some(AbortInfo {
                    lsn: Lsn(0x99),
                    time: 12
                })
            })
        );
        // The short v2 form is the only valid prefix of the v4 form.
        for len in 0..parallel.len() {
            assert_eq!(
                decode(&parallel[..len], false).is_ok(),
                len == 9,
                "prefix {len}"
            );
        }
    }

    #[test]
    fn two_phase_messages_decode_fields_in_protocol_order() {
        let bp = Msg::new(b'b').u64(1).u64(2).i64(3).u32(4).str("g").build();
        assert_eq!(
            decode(&bp, false).unwrap(),
            LogicalMessage::BeginPrepare(BeginPrepare {
                prepare_lsn: Lsn(1),
                end_lsn: Lsn(2),
                prepare_time: 3,
                xid: 4,
                gid: "g"
            })
        );
        let expected = Prepare {
            flags: 0,
            prepare_lsn: Lsn(1),
            end_lsn: Lsn(2),
            prepare_time: 3,
            xid: 4,
            gid: "g",
        };
        let p = Msg::new(b'P')
            .u8(0)
            .u64(1)
            .u64(2)
            .i64(3)
            .u32(4)
            .str("g")
            .build();
        assert_eq!(
            decode(&p, false).unwrap(),
            LogicalMessage::Prepare(expected)
        );
        let sp = Msg::new(b'p')
            .u8(0)
            .u64(1)
            .u64(2)
            .i64(3)
            .u32(4)
            .str("g")
            .build();
        assert_eq!(
            decode(&sp, false).unwrap(),
            LogicalMessage::StreamPrepare(expected)
        );
        let cp = Msg::new(b'K')
            .u8(0)
            .u64(1)
            .u64(2)
            .i64(3)
            .u32(4)
            .str("g")
            .build();
        assert_eq!(
            decode(&cp, false).unwrap(),
            LogicalMessage::CommitPrepared(CommitPrepared {
                flags: 0,
                commit_lsn: Lsn(1),
                end_lsn: Lsn(2),
                commit_time: 3,
                xid: 4,
                gid: "g"
            })
        );
        let rp = Msg::new(b'r')
            .u8(0)
            .u64(1)
            .u64(2)
            .i64(3)
            .i64(4)
            .u32(5)
            .str("g")
            .build();
        assert_eq!(
            decode(&rp, false).unwrap(),
            LogicalMessage::RollbackPrepared(RollbackPrepared {
                flags: 0,
                prepare_end_lsn: Lsn(1),
                rollback_end_lsn: Lsn(2),
                prepare_time: 3,
                rollback_time: 4,
                xid: 5,
                gid: "g"
            })
        );
    }

    #[test]
    fn every_sample_decodes_and_reports_kind_and_xid() {
        for (buf, in_stream) in samples() {
            let msg = decode(&buf, in_stream).unwrap_or_else(|e| panic!("{buf:?}: {e}"));
            assert!(!msg.kind().is_empty());
            let data_xid_expected = in_stream && !matches!(msg, LogicalMessage::StreamStop);
            if data_xid_expected {
                assert_eq!(msg.xid(), Some(901), "{}", msg.kind());
            }
        }
    }

    #[test]
    fn every_truncated_prefix_of_a_valid_message_is_an_error() {
        for (buf, in_stream) in samples() {
            for len in 0..buf.len() {
                assert!(
                    decode(&buf[..len], in_stream).is_err(),
                    "prefix {len} of {buf:?} decoded"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut buf = Msg::new(b'B').u64(1).i64(2).u32(3).build();
        buf.push(0);
        assert_eq!(
            decode(&buf, false),
            Err(DecodeError::TrailingBytes {
                what: "begin",
                offset: 21,
                count: 1
            })
        );
    }

    #[test]
    fn unknown_message_tag_is_rejected() {
        assert_eq!(
            decode(b"Z", false),
            Err(DecodeError::UnknownTag {
                what: "message",
                tag: b'Z',
                offset: 0
            })
        );
        assert_eq!(
            decode(b"", false),
            Err(DecodeError::Truncated {
                what: "message tag",
                offset: 0
            })
        );
    }

    #[test]
    fn strings_must_be_nul_terminated_utf8() {
        let unterminated = Msg::new(b'O').u64(1).bytes(b"abc").build();
        assert_eq!(
            decode(&unterminated, false),
            Err(DecodeError::Truncated {
                what: "origin name",
                offset: 9
            })
        );
        let bad = Msg::new(b'O').u64(1).bytes(b"\xff\0").build();
        assert_eq!(
            decode(&bad, false),
            Err(DecodeError::BadUtf8 {
                what: "origin name",
                offset: 9
            })
        );
    }

    #[test]
    fn decode_errors_render_as_lowercase_sentences() {
        let err = decode(b"B\0", false).unwrap_err();
        assert_eq!(err.to_string(), "truncated begin final lsn at offset 1");
        let err = decode(b"\x01", false).unwrap_err();
        assert_eq!(err.to_string(), "unknown message tag 0x01 at offset 0");
    }

    #[test]
    fn column_debug_output_shows_escaped_text() {
        assert_eq!(
            format!("{:?}", Column::Text(b"a\"\n")),
            "Text(\"a\\\"\\n\")"
        );
        let buf = insert(None);
        let LogicalMessage::Insert(ins) = decode(&buf, false).unwrap() else {
            panic!("expected insert");
        };
        assert_eq!(
            format!("{:?}", ins.new),
            "[Text(\"42\"), Null, UnchangedToast, Binary(\"\\x00\\x00\\x00\\x07\")]"
        );
    }

    #[test]
    fn stream_tracker_switches_context_at_start_and_stop() {
        let mut t = StreamTracker::new();
        assert!(!t.in_stream());
        let start = Msg::new(b'S').u32(7).u8(1).build();
        t.decode(&start).unwrap();
        assert!(t.in_stream());
        assert_eq!(t.stream_xid(), Some(7));
        // Inside the block the insert carries a subtransaction xid.
        let streamed = insert(Some(8));
        let LogicalMessage::Insert(ins) = t.decode(&streamed).unwrap() else {
            panic!("expected insert");
        };
        assert_eq!(ins.xid, Some(8));
        t.decode(b"E").unwrap();
        assert!(!t.in_stream());
        let plain = insert(None);
        let LogicalMessage::Insert(ins) = t.decode(&plain).unwrap() else {
            panic!("expected insert");
        };
        assert_eq!(ins.xid, None);
        t.decode(&start).unwrap();
        t.reset();
        assert_eq!(t, StreamTracker::default());
    }

    #[test]
    fn stream_tracker_rejects_impossible_sequences() {
        let start = Msg::new(b'S').u32(7).u8(1).build();
        let mut t = StreamTracker::new();
        assert!(matches!(
            t.decode(b"E"),
            Err(DecodeError::OutOfSequence { .. })
        ));
        t.decode(&start).unwrap();
        assert!(matches!(
            t.decode(&start),
            Err(DecodeError::OutOfSequence { .. })
        ));
        let begin = Msg::new(b'B').u64(1).i64(2).u32(3).build();
        assert!(matches!(
            t.decode(&begin),
            Err(DecodeError::OutOfSequence { .. })
        ));
        // Errors leave the state alone, so the stream can still be closed.
        assert_eq!(t.stream_xid(), Some(7));
        t.decode(b"E").unwrap();
        t.decode(&begin).unwrap();
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    const TAGS: &[u8] = b"BCORYIUDTMSEcAbPKrp";

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let mut tracker = StreamTracker::new();
        for _ in 0..5000 {
            let len = (rng.next() % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Mostly valid tags, so the per-message decoders actually run.
            if let Some(first) = buf.first_mut() {
                if rng.next() % 4 != 0 {
                    *first = TAGS[(rng.next() as usize) % TAGS.len()];
                }
            }
            for in_stream in [false, true] {
                if let Ok(msg) = decode(&buf, in_stream) {
                    let _ = format!("{msg:?}");
                }
            }
            let _ = tracker.decode(&buf);
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic() {
        let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
        let samples = samples();
        for _ in 0..5000 {
            let (mut buf, in_stream) = samples[(rng.next() as usize) % samples.len()].clone();
            for _ in 0..1 + rng.next() % 3 {
                let len = buf.len();
                match rng.next() % 3 {
                    0 if len > 0 => buf[(rng.next() as usize) % len] = rng.next() as u8,
                    1 if len > 0 => buf.truncate((rng.next() as usize) % len),
                    _ => buf.push(rng.next() as u8),
                }
            }
            if let Ok(msg) = decode(&buf, in_stream) {
                let _ = format!("{msg:?}");
            }
        }
    }

    #[test]
    fn every_pgoutput_corpus_file_decodes_without_panicking() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/pgoutput");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {dir}: {e}")) {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| {
                for in_stream in [false, true] {
                    if let Ok(msg) = decode(&bytes, in_stream) {
                        let _ = format!("{msg:?}");
                    }
                }
            });
            assert!(result.is_ok(), "decoder panicked on {}", path.display());
            seen += 1;
        }
        assert!(seen > 0, "corpus {dir} is empty");
    }
}
