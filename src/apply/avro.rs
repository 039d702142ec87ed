//! Decoding a record's value: a Debezium envelope in Avro binary → its `op`, the names in its
//! `source` block, and a row image as [`Cell`]s in target column order.
//!
//! Why a decoder of our own: apache-avro's `from_avro_datum` resolves the writer schema's
//! names on every datum, then builds a `Value` tree (a `String` per field name, a `Box` per
//! union, a `Vec` per record) that `apply` walks once and throws away. A profile of `apply`
//! showed that work as more than half of its main thread. Here each writer schema is compiled
//! once into a [`Plan`]: names resolved, the envelope's top-level fields classified, `before`
//! and `after` located. Per record, [`Plan::scan`] walks the top-level fields in writer order,
//! reading `op` and `source.table/schema/db` and only noting where the row images lie; once
//! the caller knows the table, [`Plan::cells`] decodes the one image it needs straight into
//! cells, skipping the fields the target does not map.
//!
//! Exactness: every cell is what [`schema::cell`] gives for the `Value` apache-avro would
//! have decoded. Primitives go through the same helpers as `schema::cell`; a column of a
//! shape with no cheap rule of its own (arrays, maps, enums, fixed, records other than
//! VariableScaleDecimal) is decoded into a `Value` for that column alone and handed to
//! `schema::cell` itself, so its JSON text is apache-avro's. A writer schema using anything
//! the plan does not model (logical types other than `decimal`, recursive records) gets no
//! plan, and its records keep going through apache-avro ([`Envelope::decode`]).
//!
//! Malformed bytes are errors, never panics: every length is checked against the bytes left
//! before anything is taken or allocated, varints longer than 64 bits, negative lengths,
//! union indexes beyond the union and booleans other than 0/1 are refused. (apache-avro is
//! more lenient with a body cut short, reading some of it as nulls; this decoder refuses.)
//! Fields that are skipped are checked for structure but their strings are not checked to
//! be UTF-8: nothing reads them.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema::{Name, Namespace, RecordSchema, ResolvedSchema, Schema};
use apache_avro::types::Value;

use super::schema::{self, Cell, ColType, Column};

/// The most items of zero encoded bytes (nulls, empty records) an array decoded into a
/// `Value` may hold: such items cost nothing in the body, so their count alone could make a
/// few bytes ask for gigabytes.
const MAX_ZERO_WIDTH_ITEMS: usize = 1 << 16;

/// Why a writer schema has no [`Plan`] (its records are decoded by apache-avro instead).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(String);

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at byte {at} of the Avro body)")]
pub struct DecodeError {
    /// What was wrong, with the fields it was in.
    what: String,
    /// Offset in the body (after the Confluent header).
    at: usize,
}

impl DecodeError {
    /// The same error inside field `name`.
    fn within(self, name: &str) -> Self {
        Self {
            what: format!("field `{name}`: {}", self.what),
            ..self
        }
    }
}

/// One Avro type, as the decoder needs it (names resolved, properties dropped).
#[derive(Debug, Clone)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(Arc<[String]>),
    /// The `decimal` logical type over `bytes` (`None`) or a `fixed` of this size.
    Decimal(Option<usize>),
    Array(Box<Items>),
    /// Values of a map (keys are strings).
    Map(Box<Node>),
    Union(Box<[Node]>),
    Record(Arc<Record>),
}

/// The items of an array, and whether they take no bytes at all.
#[derive(Debug, Clone)]
struct Items {
    node: Node,
    zero_width: bool,
}

/// A record's fields in writer order.
#[derive(Debug)]
struct Record {
    fields: Vec<(String, Node)>,
}

impl Node {
    /// Whether every value of this type is encoded in zero bytes.
    fn zero_width(&self) -> bool {
        match self {
            Node::Null => true,
            Node::Fixed(n) | Node::Decimal(Some(n)) => *n == 0,
            Node::Record(r) => r.fields.iter().all(|(_, n)| n.zero_width()),
            _ => false,
        }
    }
}

/// A top-level field whose value is a record, or a union some of whose branches are records
/// (`T`: what the plan knows of such a record).
#[derive(Debug)]
enum Slot<T> {
    Whole(T),
    Union(Box<[(Node, Option<T>)]>),
}

impl<T> Slot<T> {
    /// The slot of a field of schema `node`, `know` saying what the plan keeps of each record
    /// in it; `None` when the field is neither a record nor a union.
    fn of(node: &Node, mut know: impl FnMut(&Arc<Record>) -> T) -> Option<Self> {
        match node {
            Node::Record(r) => Some(Slot::Whole(know(r))),
            Node::Union(branches) => Some(Slot::Union(
                branches
                    .iter()
                    .map(|b| match b {
                        Node::Record(r) => (b.clone(), Some(know(r))),
                        other => (other.clone(), None),
                    })
                    .collect(),
            )),
            _ => None,
        }
    }
}

/// Which of the `source` names a field is.
#[derive(Debug, Clone, Copy)]
enum SourceName {
    Table,
    Schema,
    Db,
}

/// The fields of a `source` record, those naming the table marked.
type SourceFields = Arc<[(Option<SourceName>, Node)]>;

/// What the plan does with one top-level field of the envelope.
#[derive(Debug)]
enum Top {
    /// `op` (a plain string; any other `op` is skipped, and the envelope has none).
    Op,
    /// `before` (`after: false`) or `after`: where the row image lies, by row record.
    Row { after: bool, slot: Slot<usize> },
    /// `source`: its fields, the names among them marked.
    Source(Slot<SourceFields>),
    /// Anything else (named, for errors).
    Skip(String, Node),
}

/// The decoder of one writer schema's envelopes, compiled once.
#[derive(Debug)]
pub struct Plan {
    top: Vec<Top>,
    /// The distinct records `before` and `after` hold (the agent's: one, `Value`).
    rows: Vec<Arc<Record>>,
}

/// Where one row image lies in a body.
#[derive(Debug, Clone, Copy)]
pub struct RowBytes<'a> {
    /// Which of the plan's row records.
    record: usize,
    /// Its encoding.
    bytes: &'a [u8],
    /// Its offset in the body.
    at: usize,
}

/// What [`Plan::scan`] read of an envelope (borrowed from the body).
#[derive(Debug, Default)]
pub struct Scanned<'a> {
    /// `op`, empty when the envelope has none.
    pub op: &'a str,
    /// `before`, when it holds a row.
    pub before: Option<RowBytes<'a>>,
    /// `after`, when it holds a row.
    pub after: Option<RowBytes<'a>>,
    /// `source.table`.
    pub table: Option<&'a str>,
    /// `source.schema` (PostgreSQL).
    pub schema: Option<&'a str>,
    /// `source.db`.
    pub db: Option<&'a str>,
}

/// Where each field of a row record goes: the index of its target column, or `None` when the
/// target does not have it (one per row record of a [`Plan`], built by [`Plan::row_maps`]).
pub type RowMap = Box<[Option<usize>]>;

impl Plan {
    /// The plan of writer schema `schema`, or why it has none.
    pub fn compile(schema: &Schema) -> Result<Self, Unsupported> {
        let resolved = ResolvedSchema::try_from(schema)
            .map_err(|e| Unsupported(format!("names do not resolve: {e}")))?;
        let mut compiler = Compiler {
            names: resolved.get_names(),
            done: HashMap::new(),
            open: Vec::new(),
        };
        let Node::Record(envelope) = compiler.node(schema, &None)? else {
            return Err(Unsupported("the value schema is not a record".into()));
        };
        let mut rows: Vec<Arc<Record>> = Vec::new();
        let mut row_index = |r: &Arc<Record>| match rows.iter().position(|x| Arc::ptr_eq(x, r)) {
            Some(i) => i,
            None => {
                rows.push(r.clone());
                rows.len() - 1
            }
        };
        let source_fields = |r: &Record| -> SourceFields {
            r.fields
                .iter()
                .map(|(name, node)| {
                    let which = match name.as_str() {
                        "table" => Some(SourceName::Table),
                        "schema" => Some(SourceName::Schema),
                        "db" => Some(SourceName::Db),
                        _ => None,
                    };
                    (which, node.clone())
                })
                .collect()
        };
        let mut top = Vec::with_capacity(envelope.fields.len());
        for (name, node) in &envelope.fields {
            let row = match name.as_str() {
                "before" | "after" => Slot::of(node, &mut row_index),
                _ => None,
            };
            top.push(match (name.as_str(), row) {
                ("op", _) if matches!(node, Node::String) => Top::Op,
                ("before" | "after", Some(slot)) => Top::Row {
                    after: name == "after",
                    slot,
                },
                ("source", _) => match Slot::of(node, |r| source_fields(r)) {
                    Some(slot) => Top::Source(slot),
                    None => Top::Skip(name.to_owned(), node.clone()),
                },
                (name, _) => Top::Skip(name.to_owned(), node.clone()),
            });
        }
        Ok(Self { top, rows })
    }

    /// Reads `op` and the `source` names of an envelope body (after the Confluent header) and
    /// notes where its row images lie, without decoding them.
    pub fn scan<'a>(&self, body: &'a [u8]) -> Result<Scanned<'a>, DecodeError> {
        let mut cur = Cursor::new(body, 0);
        let mut out = Scanned::default();
        for top in &self.top {
            match top {
                Top::Op => out.op = cur.str().map_err(|e| e.within("op"))?,
                Top::Row { after, slot } => {
                    let field = if *after { "after" } else { "before" };
                    let row = self.row(&mut cur, slot).map_err(|e| e.within(field))?;
                    if *after {
                        out.after = row;
                    } else {
                        out.before = row;
                    }
                }
                Top::Source(slot) => {
                    scan_source(&mut cur, slot, &mut out).map_err(|e| e.within("source"))?
                }
                Top::Skip(name, node) => cur.skip(node).map_err(|e| e.within(name))?,
            }
        }
        Ok(out)
    }

    /// Skips one `before`/`after` value, noting where its row record lies.
    fn row<'a>(
        &self,
        cur: &mut Cursor<'a>,
        slot: &Slot<usize>,
    ) -> Result<Option<RowBytes<'a>>, DecodeError> {
        let record = match slot {
            Slot::Whole(r) => *r,
            Slot::Union(branches) => {
                let (node, row) = cur.branch(branches)?;
                match row {
                    Some(r) => *r,
                    None => {
                        cur.skip(node)?;
                        return Ok(None);
                    }
                }
            }
        };
        let start = cur.pos;
        let rec = self
            .rows
            .get(record)
            .ok_or_else(|| cur.err("row record missing from the plan".into()))?;
        cur.skip_record(rec)?;
        Ok(Some(RowBytes {
            record,
            bytes: &cur.buf[start..cur.pos],
            at: cur.base + start,
        }))
    }

    /// For each row record of the plan, where its fields go: `by_source` maps a source
    /// column name to its target column index.
    pub fn row_maps(&self, by_source: &HashMap<String, usize>) -> Vec<RowMap> {
        self.rows
            .iter()
            .map(|r| {
                r.fields
                    .iter()
                    .map(|(name, _)| by_source.get(name).copied())
                    .collect()
            })
            .collect()
    }

    /// The cells of a row image in target column order: `maps` from [`Plan::row_maps`],
    /// `columns` the target's (their types say how to read each value), `placeholder` the
    /// unchanged-TOAST text. Columns the row does not carry are null.
    pub fn cells(
        &self,
        row: RowBytes<'_>,
        maps: &[RowMap],
        columns: &[Column],
        placeholder: &str,
    ) -> Result<Vec<Cell>, DecodeError> {
        let mut cur = Cursor::new(row.bytes, row.at);
        let (Some(record), Some(map)) = (self.rows.get(row.record), maps.get(row.record)) else {
            return Err(cur.err("row record missing from the plan".into()));
        };
        let mut out = vec![Cell::Null; columns.len()];
        for ((name, node), target) in record.fields.iter().zip(map.iter()) {
            match target.and_then(|i| Some((out.get_mut(i)?, &columns.get(i)?.ty))) {
                Some((slot, ty)) => {
                    *slot = cur
                        .cell(node, ty, placeholder)
                        .map_err(|e| e.within(name))?
                }
                None => cur.skip(node).map_err(|e| e.within(name))?,
            }
        }
        Ok(out)
    }
}

/// Reads the names of one `source` value.
fn scan_source<'a>(
    cur: &mut Cursor<'a>,
    slot: &Slot<SourceFields>,
    out: &mut Scanned<'a>,
) -> Result<(), DecodeError> {
    let fields = match slot {
        Slot::Whole(f) => f,
        Slot::Union(branches) => {
            let (node, fields) = cur.branch(branches)?;
            match fields {
                Some(f) => f,
                None => return cur.skip(node),
            }
        }
    };
    for (which, node) in fields.iter() {
        let Some(which) = which else {
            cur.skip(node)?;
            continue;
        };
        // A string, or a string branch of a union; anything else names nothing.
        let text = match node {
            Node::String => Some(cur.str()?),
            Node::Union(branches) => match &branches[cur.union(branches.len())?] {
                Node::String => Some(cur.str()?),
                other => {
                    cur.skip(other)?;
                    None
                }
            },
            other => {
                cur.skip(other)?;
                None
            }
        };
        match which {
            SourceName::Table => out.table = text,
            SourceName::Schema => out.schema = text,
            SourceName::Db => out.db = text,
        }
    }
    Ok(())
}

/// Compiles apache-avro's parsed schema into [`Node`]s, resolving named references the way
/// its decoder does (by full name, in the enclosing record's namespace).
struct Compiler<'s> {
    names: &'s HashMap<Name, &'s Schema>,
    /// Records compiled so far, by full name: a reference shares the definition's record.
    done: HashMap<Name, Arc<Record>>,
    /// Records being compiled (a reference to one of them is a recursive type).
    open: Vec<Name>,
}

impl Compiler<'_> {
    fn node(&mut self, schema: &Schema, ns: &Namespace) -> Result<Node, Unsupported> {
        Ok(match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int => Node::Int,
            Schema::Long => Node::Long,
            Schema::Float => Node::Float,
            Schema::Double => Node::Double,
            Schema::Bytes => Node::Bytes,
            Schema::String => Node::String,
            Schema::Fixed(f) => Node::Fixed(f.size),
            Schema::Enum(e) => Node::Enum(e.symbols.clone().into()),
            Schema::Decimal(d) => match &*d.inner {
                Schema::Bytes => Node::Decimal(None),
                Schema::Fixed(f) => Node::Decimal(Some(f.size)),
                _ => return Err(Unsupported("a decimal over neither bytes nor fixed".into())),
            },
            Schema::Array(a) => {
                let node = self.node(&a.items, ns)?;
                Node::Array(Box::new(Items {
                    zero_width: node.zero_width(),
                    node,
                }))
            }
            Schema::Map(m) => Node::Map(Box::new(self.node(&m.types, ns)?)),
            Schema::Union(u) => {
                let branches = u
                    .variants()
                    .iter()
                    .map(|v| self.node(v, ns))
                    .collect::<Result<Vec<_>, _>>()?;
                if branches.iter().any(|b| matches!(b, Node::Union(_))) {
                    return Err(Unsupported("a union inside a union".into()));
                }
                Node::Union(branches.into())
            }
            Schema::Record(r) => Node::Record(self.record(r, ns)?),
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(ns);
                let Some(target) = self.names.get(&full) else {
                    return Err(Unsupported(format!("unresolved name `{}`", full.name)));
                };
                self.node(target, &full.namespace)?
            }
            other => {
                return Err(Unsupported(format!(
                    "type {:?} (a logical type the direct decoder does not model)",
                    apache_avro::schema::SchemaKind::from(other)
                )))
            }
        })
    }

    fn record(&mut self, r: &RecordSchema, ns: &Namespace) -> Result<Arc<Record>, Unsupported> {
        let full = r.name.fully_qualified_name(ns);
        if let Some(done) = self.done.get(&full) {
            return Ok(done.clone());
        }
        if self.open.contains(&full) {
            return Err(Unsupported(format!("recursive record `{}`", full.name)));
        }
        self.open.push(full.clone());
        let fields = r
            .fields
            .iter()
            .map(|f| Ok((f.name.clone(), self.node(&f.schema, &full.namespace)?)))
            .collect::<Result<Vec<_>, Unsupported>>();
        self.open.pop();
        let record = Arc::new(Record { fields: fields? });
        self.done.insert(full, record.clone());
        Ok(record)
    }
}

/// A position in a body; every read checks the bytes left first.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the body (for error positions).
    base: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    fn err(&self, what: String) -> DecodeError {
        DecodeError {
            what,
            at: self.base + self.pos,
        }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.left() {
            return Err(self.err(format!("truncated: {n} bytes needed, {} left", self.left())));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A zigzag varint of at most 64 bits.
    fn long(&mut self) -> Result<i64, DecodeError> {
        let mut z = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated: body ends inside a varint".into()));
            };
            // The tenth byte holds the 64th bit only.
            if i == 9 && b > 1 {
                return Err(self.err("varint longer than 64 bits".into()));
            }
            self.pos += 1;
            z |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(self.err("varint longer than 64 bits".into()))
    }

    fn int(&mut self) -> Result<i32, DecodeError> {
        let at = self.pos;
        let v = self.long()?;
        i32::try_from(v).map_err(|_| {
            self.pos = at;
            self.err(format!("int out of range: {v}"))
        })
    }

    /// A length (of bytes, of a string), checked against the bytes left.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.long()?;
        let left = self.left();
        match usize::try_from(n) {
            Ok(n) if n <= left => Ok(n),
            _ => {
                self.pos = at;
                Err(self.err(format!("length {n} beyond the {left} bytes left")))
            }
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len()?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|e| {
            self.pos = at;
            self.err(format!("string is not UTF-8: {e}"))
        })
    }

    fn boolean(&mut self) -> Result<bool, DecodeError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => {
                self.pos -= 1;
                Err(self.err(format!("boolean byte {b}")))
            }
        }
    }

    fn float(&mut self) -> Result<f32, DecodeError> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn double(&mut self) -> Result<f64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// A union's branch index, checked against its `n` branches.
    fn union(&mut self, n: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let i = self.long()?;
        match usize::try_from(i) {
            Ok(i) if i < n => Ok(i),
            _ => {
                self.pos = at;
                Err(self.err(format!("union branch {i} of a {n}-branch union")))
            }
        }
    }

    fn branch<'p, T>(&mut self, branches: &'p [T]) -> Result<&'p T, DecodeError> {
        let i = self.union(branches.len())?;
        Ok(&branches[i])
    }

    fn enum_index(&mut self, symbols: &[String]) -> Result<i32, DecodeError> {
        let at = self.pos;
        let i = self.int()?;
        match usize::try_from(i) {
            Ok(u) if u < symbols.len() => Ok(i),
            _ => {
                self.pos = at;
                Err(self.err(format!("enum index {i} of {} symbols", symbols.len())))
            }
        }
    }

    /// The item count of the next array or map block (0: the end) and, for a negative count,
    /// the block's byte size. A count the bytes left cannot hold is refused unless the items
    /// take no bytes (`zero_width`).
    fn block(&mut self, zero_width: bool) -> Result<(usize, Option<usize>), DecodeError> {
        let at = self.pos;
        let raw = self.long()?;
        let (count, size) = if raw < 0 {
            let size = self.len()?;
            (raw.unsigned_abs(), Some(size))
        } else {
            (raw as u64, None)
        };
        let left = self.left();
        match usize::try_from(count) {
            Ok(n) if zero_width || n <= left => Ok((n, size)),
            _ => {
                self.pos = at;
                Err(self.err(format!(
                    "block of {count} items beyond the {left} bytes left"
                )))
            }
        }
    }

    fn skip_record(&mut self, r: &Record) -> Result<(), DecodeError> {
        for (_, node) in &r.fields {
            self.skip(node)?;
        }
        Ok(())
    }

    /// Moves past one value of type `node`.
    fn skip(&mut self, node: &Node) -> Result<(), DecodeError> {
        match node {
            Node::Null => {}
            Node::Boolean => {
                self.boolean()?;
            }
            Node::Int => {
                self.int()?;
            }
            Node::Long => {
                self.long()?;
            }
            Node::Float => {
                self.take(4)?;
            }
            Node::Double => {
                self.take(8)?;
            }
            Node::Bytes | Node::String | Node::Decimal(None) => {
                self.bytes()?;
            }
            Node::Fixed(n) | Node::Decimal(Some(n)) => {
                self.take(*n)?;
            }
            Node::Enum(symbols) => {
                self.enum_index(symbols)?;
            }
            Node::Array(items) => loop {
                let (count, size) = self.block(items.zero_width)?;
                if count == 0 {
                    break;
                }
                match size {
                    // The writer said how long the block is: no need to walk it.
                    Some(size) => {
                        self.take(size)?;
                    }
                    None if items.zero_width => {}
                    None => {
                        for _ in 0..count {
                            self.skip(&items.node)?;
                        }
                    }
                }
            },
            Node::Map(values) => loop {
                let (count, size) = self.block(false)?;
                if count == 0 {
                    break;
                }
                match size {
                    Some(size) => {
                        self.take(size)?;
                    }
                    None => {
                        for _ in 0..count {
                            self.bytes()?;
                            self.skip(values)?;
                        }
                    }
                }
            },
            Node::Union(branches) => {
                let b = self.branch(branches)?;
                self.skip(b)?;
            }
            Node::Record(r) => self.skip_record(r)?,
        }
        Ok(())
    }

    /// One value as apache-avro's decoder builds it (for the columns [`Cursor::cell`] hands
    /// to [`schema::cell`]).
    fn value(&mut self, node: &Node) -> Result<Value, DecodeError> {
        Ok(match node {
            Node::Null => Value::Null,
            Node::Boolean => Value::Boolean(self.boolean()?),
            Node::Int => Value::Int(self.int()?),
            Node::Long => Value::Long(self.long()?),
            Node::Float => Value::Float(self.float()?),
            Node::Double => Value::Double(self.double()?),
            Node::Bytes => Value::Bytes(self.bytes()?.to_vec()),
            Node::String => Value::String(self.str()?.to_owned()),
            Node::Fixed(n) => Value::Fixed(*n, self.take(*n)?.to_vec()),
            Node::Enum(symbols) => {
                let i = self.enum_index(symbols)?;
                // enum_index checked the index.
                Value::Enum(i as u32, symbols[i as usize].clone())
            }
            Node::Decimal(None) => Value::Decimal(apache_avro::Decimal::from(self.bytes()?)),
            Node::Decimal(Some(n)) => Value::Decimal(apache_avro::Decimal::from(self.take(*n)?)),
            Node::Array(items) => {
                let mut out = Vec::new();
                loop {
                    let (count, _) = self.block(items.zero_width)?;
                    if count == 0 {
                        break;
                    }
                    if items.zero_width && out.len().saturating_add(count) > MAX_ZERO_WIDTH_ITEMS {
                        return Err(self.err(format!(
                            "array of more than {MAX_ZERO_WIDTH_ITEMS} zero-byte items"
                        )));
                    }
                    out.reserve(count);
                    for _ in 0..count {
                        out.push(self.value(&items.node)?);
                    }
                }
                Value::Array(out)
            }
            Node::Map(values) => {
                let mut out = HashMap::new();
                loop {
                    let (count, _) = self.block(false)?;
                    if count == 0 {
                        break;
                    }
                    out.reserve(count);
                    for _ in 0..count {
                        let key = self.str()?.to_owned();
                        let value = self.value(values)?;
                        out.insert(key, value);
                    }
                }
                Value::Map(out)
            }
            Node::Union(branches) => {
                let i = self.union(branches.len())?;
                Value::Union(i as u32, Box::new(self.value(&branches[i])?))
            }
            Node::Record(r) => Value::Record(
                r.fields
                    .iter()
                    .map(|(name, node)| Ok((name.clone(), self.value(node)?)))
                    .collect::<Result<_, DecodeError>>()?,
            ),
        })
    }

    /// One column's cell: what [`schema::cell`] gives for the value apache-avro decodes.
    fn cell(&mut self, node: &Node, ty: &ColType, placeholder: &str) -> Result<Cell, DecodeError> {
        // schema::cell looks through one union (and Avro has no union directly in a union).
        let node = match node {
            Node::Union(branches) => self.branch(branches)?,
            other => other,
        };
        Ok(match (node, ty) {
            (Node::Null, _) => Cell::Null,
            (Node::Boolean, _) => Cell::Bool(self.boolean()?),
            (Node::Int, ty) => schema::int_cell(self.int()?, ty),
            (Node::Long, ty) => schema::long_cell(self.long()?, ty),
            (Node::Float, _) => Cell::Float(f64::from(self.float()?)),
            (Node::Double, _) => Cell::Float(self.double()?),
            (Node::String, _) => schema::text_cell(self.str()?, placeholder),
            (Node::Bytes, ty) => schema::bytes_cell(self.bytes()?, ty, placeholder),
            // decimal_string reads the two's complement, so apache-avro's round trip
            // through a BigInt changes nothing.
            (Node::Decimal(size), ColType::Decimal { scale, .. }) => {
                let raw = match size {
                    None => self.bytes()?,
                    Some(n) => self.take(*n)?,
                };
                Cell::Decimal(crate::ledger::json::decimal_string(raw, *scale))
            }
            (Node::Record(r), ColType::VarDecimal) => {
                let (mut scale, mut bytes) = (None, None);
                for (name, node) in &r.fields {
                    match (name.as_str(), node) {
                        ("scale", Node::Int) => scale = u32::try_from(self.int()?).ok(),
                        ("value", Node::Bytes) => bytes = Some(self.bytes()?),
                        (_, node) => self.skip(node)?,
                    }
                }
                schema::var_decimal_cell(scale, bytes)
            }
            (node, ty) => schema::cell(self.value(node)?, ty, placeholder),
        })
    }
}

/// A writer schema as `apply` keeps it: parsed, and compiled when it can be.
#[derive(Debug)]
pub struct Writer {
    /// apache-avro's parse (the fallback decoder's schema).
    pub schema: apache_avro::Schema,
    /// The direct decoder, `None` when the schema uses what it does not model.
    pub plan: Option<Plan>,
}

impl Writer {
    /// Parses and compiles a writer schema; a schema without a plan is logged once here.
    pub fn new(id: u32, text: &str) -> Result<Self, String> {
        let schema = apache_avro::Schema::parse_str(text).map_err(|e| e.to_string())?;
        let plan = match Plan::compile(&schema) {
            Ok(p) => Some(p),
            Err(why) => {
                tracing::info!(schema_id = id, %why,
                    "writer schema decoded through apache-avro's Value tree (slower)");
                None
            }
        };
        Ok(Self { schema, plan })
    }
}

/// The rows of an envelope decoded by apache-avro: fields by name.
type TreeRow = Vec<(String, Value)>;

/// One record's envelope, decoded by the writer's plan or (without one) by apache-avro.
pub enum Envelope<'a> {
    /// By the plan: names borrowed from the body, rows not decoded yet.
    Direct(&'a Plan, Scanned<'a>),
    /// By apache-avro.
    Tree {
        /// `op`, empty when absent.
        op: String,
        /// `before`.
        before: Option<TreeRow>,
        /// `after`.
        after: Option<TreeRow>,
        /// `source.table`, `source.schema`, `source.db`.
        names: [Option<String>; 3],
    },
}

impl<'a> Envelope<'a> {
    /// Decodes the body (after the Confluent header) of a value written with `writer`.
    pub fn decode(writer: &'a Writer, body: &'a [u8]) -> Result<Self, String> {
        if let Some(plan) = &writer.plan {
            return plan
                .scan(body)
                .map(|s| Envelope::Direct(plan, s))
                .map_err(|e| e.to_string());
        }
        let decoded = apache_avro::from_avro_datum(&writer.schema, &mut &body[..], None)
            .map_err(|e| e.to_string())?;
        let Some(fields) = schema::record_fields(decoded) else {
            return Err("value is not an Avro record".into());
        };
        let mut op = String::new();
        let (mut before, mut after) = (None, None);
        let mut names: [Option<String>; 3] = [None, None, None];
        for (name, v) in fields {
            match name.as_str() {
                "op" => {
                    if let Value::String(s) = v {
                        op = s;
                    }
                }
                "before" => before = schema::record_fields(v),
                "after" => after = schema::record_fields(v),
                "source" => {
                    for (k, v) in schema::record_fields(v).unwrap_or_default() {
                        let text = match v {
                            Value::String(t) => Some(t),
                            Value::Union(_, inner) => match *inner {
                                Value::String(t) => Some(t),
                                _ => None,
                            },
                            _ => None,
                        };
                        match k.as_str() {
                            "table" => names[0] = text,
                            "schema" => names[1] = text,
                            "db" => names[2] = text,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Envelope::Tree {
            op,
            before,
            after,
            names,
        })
    }

    /// `op` (empty when the envelope has none).
    pub fn op(&self) -> &str {
        match self {
            Envelope::Direct(_, s) => s.op,
            Envelope::Tree { op, .. } => op,
        }
    }

    /// `source.table`, `source.schema`, `source.db`.
    pub fn names(&self) -> [Option<&str>; 3] {
        match self {
            Envelope::Direct(_, s) => [s.table, s.schema, s.db],
            Envelope::Tree { names, .. } => [
                names[0].as_deref(),
                names[1].as_deref(),
                names[2].as_deref(),
            ],
        }
    }

    /// The cells of the `after` (or `before`) image in target column order, `None` when the
    /// envelope has no such row. `maps` are the plan's row maps for this target (unused by
    /// the tree), `by_source` maps source column names to target columns (unused by the
    /// plan). A tree row is moved out, so each image is taken once.
    pub fn take_row(
        &mut self,
        after: bool,
        maps: &[RowMap],
        by_source: &HashMap<String, usize>,
        columns: &[Column],
        placeholder: &str,
    ) -> Result<Option<Vec<Cell>>, String> {
        match self {
            Envelope::Direct(plan, s) => {
                let row = if after { s.after } else { s.before };
                match row {
                    None => Ok(None),
                    Some(row) => plan
                        .cells(row, maps, columns, placeholder)
                        .map(Some)
                        .map_err(|e| e.to_string()),
                }
            }
            Envelope::Tree {
                before, after: a, ..
            } => {
                let row = if after { a.take() } else { before.take() };
                Ok(row.map(|row| {
                    let mut out = vec![Cell::Null; columns.len()];
                    for (name, v) in row {
                        if let Some(&i) = by_source.get(&name) {
                            out[i] = schema::cell(v, &columns[i].ty, placeholder);
                        }
                    }
                    out
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests;
