//! Per-row cost of the hot path outside Kafka, per source (issue 16): the source's wire bytes
//! decoded into the event model, then the Confluent-framed Avro key and value
//! (`TableCodec::encode_key` / `encode_value`) and the event-store key (`<source>/<table>/`
//! + the key as JSON) the publisher builds for every row.
//!
//! The bytes are real server output, captured from the stack by `benches/fixtures/capture.sh`:
//! a pgoutput Relation, Insert and Update (REPLICA IDENTITY FULL, so the update carries the old
//! row) per table, and the MariaDB binlog of one INSERT and one UPDATE per table (binlog row
//! image FULL, metadata FULL). Two tables: `typical` (the e2e benches' row: id, grp, amount,
//! name, note, payload, ver) and `wide` (40 columns of mixed types: integers, floats,
//! decimals, booleans, text, varchar, char, dates and timestamps, JSON, bytes, uuid, nulls).
//!
//! Each table gets `decode`, `encode` and `whole` (both) for `insert` and `update`, with
//! `Throughput::Elements(1)`: criterion reports time and rows/s per row. An update is one row
//! with its before and after image. The decode mirrors the sources' stream loops
//! (src/source/postgres/stream.rs, src/source/mysql/stream.rs): buffers are reused, as there;
//! the binlog rows event is parsed per row here (the fixtures hold one row per event; a
//! multi-row event parses its header once). `encode` includes building the `ChangeEvent` with
//! its source block, as the sources' `emit` does.
//!
//! Run: `cargo bench --bench encode` (bench/README.md); a filter such as
//! `cargo bench --bench encode -- postgres/wide` runs part of it.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use cdc_agent::encode::{ConnectorKind, TableCodec};
use cdc_agent::event::{
    ChangeEvent, Column, Datum, MysqlSource, Op, PostgresSource, SourceBlock, TableId, TableSchema,
    TransactionInfo,
};
use cdc_agent::publish::key_json;
use cdc_agent::source::postgres::pgoutput::{self, LogicalMessage, OldTuple};
use cdc_agent::source::postgres::schema::RelationState;
use cdc_agent::source::postgres::types::{PgColumnDecoder, TypeCatalog};
use cdc_codec::mysql::events::{
    event_type, EventSplitter, Flavor, RowsEventView, RowsKind, TableMapInfo,
};
use cdc_codec::mysql::types::{table_def_from_map, table_schema, RowLayout, TypeOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const KEY_SCHEMA_ID: u32 = 1;
const VALUE_SCHEMA_ID: u32 = 2;
/// The source name the event-store key starts with.
const SOURCE: &str = "bench";

/// The publisher's per-row output buffers, reused as the publisher reuses its own.
#[derive(Default)]
struct Out {
    key: Vec<u8>,
    value: Vec<u8>,
    store_key: Vec<u8>,
}

/// What the publisher does with one event before handing records to Kafka: Avro key, Avro
/// envelope, event-store key (src/publish/mod.rs, `Pipeline::publish`).
fn encode(codec: &TableCodec, table_header: &str, ev: &ChangeEvent<'_>, out: &mut Out) {
    out.key.clear();
    out.value.clear();
    let row = match ev.op {
        Op::Delete => ev.before,
        _ => ev.after.or(ev.before),
    };
    let row = row.expect("row events carry a row");
    codec
        .encode_key(row, KEY_SCHEMA_ID, &mut out.key)
        .expect("key encodes");
    codec
        .encode_value(ev, VALUE_SCHEMA_ID, &mut out.value)
        .expect("value encodes");
    out.store_key.clear();
    out.store_key.extend_from_slice(SOURCE.as_bytes());
    out.store_key.push(b'/');
    out.store_key.extend_from_slice(table_header.as_bytes());
    out.store_key.push(b'/');
    key_json(ev.table, row, &mut out.store_key);
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

// ---- PostgreSQL -------------------------------------------------------------------------

struct PgTable {
    name: &'static str,
    rel: RelationState,
    codec: TableCodec,
    header: String,
    insert: &'static [u8],
    update: &'static [u8],
}

/// The table as the agent would load it: columns and types from the Relation message, the
/// primary key (`id`, the first column) from the catalog, only `id` NOT NULL (the fixtures'
/// DDL).
fn pg_table(
    name: &'static str,
    relation: &'static [u8],
    insert: &'static [u8],
    update: &'static [u8],
) -> PgTable {
    let LogicalMessage::Relation(rel) = pgoutput::decode(relation, false).expect("relation") else {
        panic!("{name}: not a Relation message");
    };
    let catalog = TypeCatalog::default();
    let mut columns = Vec::new();
    let mut decoders = Vec::new();
    for (i, c) in rel.columns.iter().enumerate() {
        let optional = i != 0;
        let dec = PgColumnDecoder::new(&catalog, c.type_oid, c.type_modifier, optional);
        columns.push(Column {
            name: c.name.to_string(),
            ty: dec.column_type().clone(),
            optional,
            source_type: dec.source_type().to_string(),
            default: None,
        });
        decoders.push(dec);
    }
    let schema = TableSchema {
        id: TableId::new("public", name),
        columns,
        key: vec![0],
    };
    let codec = TableCodec::new(SOURCE, &schema, ConnectorKind::Postgres).expect("codec");
    PgTable {
        name,
        header: schema.id.to_string(),
        rel: RelationState::new(schema, decoders),
        codec,
        insert,
        update,
    }
}

/// Decodes an Insert or Update into `before`/`after` (src/source/postgres/stream.rs); returns
/// the op and whether `before` holds the old row.
fn pg_decode<'a>(
    rel: &RelationState,
    msg: &'a [u8],
    before: &mut Vec<Datum<'a>>,
    after: &mut Vec<Datum<'a>>,
) -> (Op, bool) {
    match pgoutput::decode(msg, false).expect("message decodes") {
        LogicalMessage::Insert(ins) => {
            rel.decode(ins.new, after).expect("insert decodes");
            (Op::Create, false)
        }
        LogicalMessage::Update(up) => {
            rel.decode(up.new, after).expect("update decodes");
            let full = match &up.old {
                Some(o) => {
                    rel.decode(o.tuple(), before).expect("old row decodes");
                    matches!(o, OldTuple::Full(_))
                }
                None => false,
            };
            (Op::Update, full)
        }
        other => panic!("unexpected message {}", other.kind()),
    }
}

/// Per-transaction state the PostgreSQL stream formats into each event.
struct PgTx {
    id: String,
    sequence: String,
}

/// The event `emit` builds in src/source/postgres/stream.rs.
fn pg_event<'a>(
    table: &'a TableSchema,
    tx: &'a mut PgTx,
    op: Op,
    before: Option<&'a [Datum<'a>]>,
    after: Option<&'a [Datum<'a>]>,
) -> ChangeEvent<'a> {
    let (last_commit_lsn, lsn) = (0x1_6B37_4D48u64, 0x1_6B37_4E10u64);
    tx.sequence.clear();
    let _ = write!(tx.sequence, "[\"{last_commit_lsn}\",\"{lsn}\"]");
    ChangeEvent {
        table,
        op,
        before,
        after,
        source: SourceBlock::Postgres(PostgresSource {
            name: SOURCE,
            ts_us: 1_796_533_811_000_000,
            snapshot: "false",
            db: "demo",
            sequence: Some(tx.sequence.as_str().into()),
            schema: &table.id.schema,
            table: &table.id.table,
            tx_id: Some(775),
            lsn: Some(lsn as i64),
            xmin: None,
        }),
        processed_us: now_us(),
        transaction: Some(TransactionInfo {
            id: tx.id.as_str().into(),
            total_order: 1,
            data_collection_order: 1,
        }),
    }
}

fn bench_pg(c: &mut Criterion, t: &PgTable) {
    let mut g = c.benchmark_group(format!("postgres/{}", t.name));
    g.throughput(Throughput::Elements(1));
    let schema = t.rel.schema();
    let mut tx = PgTx {
        id: "775:6094801424".to_string(),
        sequence: String::with_capacity(48),
    };
    let mut out = Out::default();
    for (what, msg) in [("insert", t.insert), ("update", t.update)] {
        let (mut before, mut after) = (Vec::new(), Vec::new());
        g.bench_function(format!("{what}/decode"), |b| {
            b.iter(|| {
                black_box(pg_decode(&t.rel, black_box(msg), &mut before, &mut after));
                black_box(&after);
            })
        });
        let (op, full) = pg_decode(&t.rel, msg, &mut before, &mut after);
        g.bench_function(format!("{what}/encode"), |b| {
            b.iter(|| {
                let b4 = full.then_some(&before[..]);
                let ev = pg_event(schema, &mut tx, op, b4, Some(&after));
                encode(&t.codec, &t.header, black_box(&ev), &mut out);
                black_box(&out.value);
            })
        });
        g.bench_function(format!("{what}/whole"), |b| {
            b.iter(|| {
                let (op, full) = pg_decode(&t.rel, black_box(msg), &mut before, &mut after);
                let b4 = full.then_some(&before[..]);
                let ev = pg_event(schema, &mut tx, op, b4, Some(&after));
                encode(&t.codec, &t.header, &ev, &mut out);
                black_box(&out.value);
            })
        });
    }
    g.finish();
}

// ---- MariaDB ----------------------------------------------------------------------------

struct MyTable {
    name: &'static str,
    layout: RowLayout,
    schema: TableSchema,
    codec: TableCodec,
    header: String,
    /// (event type, body) of the WRITE_ROWS and the UPDATE_ROWS event.
    write: (u8, &'static [u8]),
    update: (u8, &'static [u8]),
}

/// The table as the agent maps it from the binlog: the TABLE_MAP's full metadata gives the
/// definition (the agent prefers its catalog's, which says the same for these tables).
fn my_table(name: &'static str, binlog: &'static [u8]) -> MyTable {
    let opts = TypeOptions::default();
    let mut flavor = Flavor::MySql;
    let mut mapped = None;
    let (mut write, mut update) = (None, None);
    for ev in EventSplitter::new(binlog, true) {
        let ev = ev.expect("fixture event");
        match ev.event_type {
            event_type::FORMAT_DESCRIPTION => flavor = Flavor::from_format_description(ev.body),
            event_type::TABLE_MAP if mapped.is_none() => {
                let map = TableMapInfo::parse(ev.body, flavor).expect("table map");
                let def = table_def_from_map(&map.database, &map.table, &map)
                    .expect("the table map carries column names");
                let layout = RowLayout::new(&def, &map, &opts).expect("layout");
                mapped = Some((layout, table_schema(&def, &opts)));
            }
            t => match RowsEventView::kind_of(t) {
                Some((RowsKind::Write, _)) => write = Some((t, ev.body)),
                Some((RowsKind::Update, _)) => update = Some((t, ev.body)),
                _ => {}
            },
        }
    }
    let (layout, schema) = mapped.expect("a table map");
    assert_eq!(schema.key, vec![0], "{name}: id is the key");
    let codec = TableCodec::new(SOURCE, &schema, ConnectorKind::Mysql).expect("codec");
    MyTable {
        name,
        layout,
        header: schema.id.to_string(),
        schema,
        codec,
        write: write.expect("a WRITE_ROWS event"),
        update: update.expect("an UPDATE_ROWS event"),
    }
}

/// Decodes the rows event's one row into `buf` (src/source/mysql/stream.rs); returns the op
/// and where the after image starts.
fn my_decode<'a>(
    layout: &RowLayout,
    (ty, body): (u8, &'a [u8]),
    buf: &mut Vec<Datum<'a>>,
) -> (Op, usize) {
    let view = RowsEventView::parse(ty, body).expect("rows event");
    buf.clear();
    let mut pos = 0;
    match view.kind {
        RowsKind::Write => {
            layout
                .decode_row(view.rows, &mut pos, view.present_after, buf)
                .expect("row decodes");
            (Op::Create, 0)
        }
        RowsKind::Update => {
            layout
                .decode_row(view.rows, &mut pos, view.present_before, buf)
                .expect("before image decodes");
            let split = buf.len();
            layout
                .decode_row(view.rows, &mut pos, view.present_after, buf)
                .expect("after image decodes");
            (Op::Update, split)
        }
        RowsKind::Delete => unreachable!("the fixtures hold no delete"),
    }
}

/// The event `emit` builds in src/source/mysql/stream.rs.
fn my_event<'a>(
    table: &'a TableSchema,
    tx_id: &'a str,
    op: Op,
    buf: &'a [Datum<'a>],
    split: usize,
) -> ChangeEvent<'a> {
    let (before, after) = buf.split_at(split);
    ChangeEvent {
        table,
        op,
        before: (op == Op::Update).then_some(before),
        after: Some(after),
        source: SourceBlock::Mysql(MysqlSource {
            name: SOURCE,
            ts_us: 1_796_533_811_000_000,
            snapshot: "false",
            db: &table.id.schema,
            table: &table.id.table,
            server_id: 1,
            gtid: Some("0-1-508340"),
            file: "mariadb-bin.000007",
            pos: 158_672_911,
            row: 0,
            thread: Some(42),
            query: None,
        }),
        processed_us: now_us(),
        transaction: Some(TransactionInfo {
            id: tx_id.into(),
            total_order: 1,
            data_collection_order: 1,
        }),
    }
}

fn bench_my(c: &mut Criterion, t: &MyTable) {
    let mut g = c.benchmark_group(format!("mariadb/{}", t.name));
    g.throughput(Throughput::Elements(1));
    let tx_id = "file=mariadb-bin.000007,pos=158672911";
    let mut out = Out::default();
    for (what, ev) in [("insert", t.write), ("update", t.update)] {
        let mut buf = Vec::new();
        g.bench_function(format!("{what}/decode"), |b| {
            b.iter(|| {
                black_box(my_decode(&t.layout, black_box(ev), &mut buf));
                black_box(&buf);
            })
        });
        let (op, split) = my_decode(&t.layout, ev, &mut buf);
        g.bench_function(format!("{what}/encode"), |b| {
            b.iter(|| {
                let e = my_event(&t.schema, tx_id, op, &buf, split);
                encode(&t.codec, &t.header, black_box(&e), &mut out);
                black_box(&out.value);
            })
        });
        g.bench_function(format!("{what}/whole"), |b| {
            b.iter(|| {
                let (op, split) = my_decode(&t.layout, black_box(ev), &mut buf);
                let e = my_event(&t.schema, tx_id, op, &buf, split);
                encode(&t.codec, &t.header, &e, &mut out);
                black_box(&out.value);
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let pg = [
        pg_table(
            "typical",
            include_bytes!("fixtures/pg/typical_relation"),
            include_bytes!("fixtures/pg/typical_insert"),
            include_bytes!("fixtures/pg/typical_update"),
        ),
        pg_table(
            "wide",
            include_bytes!("fixtures/pg/wide_relation"),
            include_bytes!("fixtures/pg/wide_insert"),
            include_bytes!("fixtures/pg/wide_update"),
        ),
    ];
    let my = [
        my_table("typical", include_bytes!("fixtures/mariadb/typical.binlog")),
        my_table("wide", include_bytes!("fixtures/mariadb/wide.binlog")),
    ];
    for t in &pg {
        bench_pg(c, t);
    }
    for t in &my {
        bench_my(c, t);
    }
}

criterion_group! {
    name = encode_benches;
    // Short runs: 24 benchmarks; a row costs microseconds, so 3 s gives millions of samples.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(encode_benches);
