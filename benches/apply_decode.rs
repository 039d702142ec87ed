//! Per-record decode cost of `cdc-agent apply` (src/apply/avro.rs): the direct decoder
//! against apache-avro's `Value` path it replaces, from the Avro body of an insert envelope
//! to its `after` row as cells in target column order (what `Reader::change` does per record
//! besides routing). Two tables: `typical`, the row of bench/apply (id, grp, amount, name,
//! note, payload, ver), and `wide`, 40 columns of mixed types.
//!
//! Run: `cargo bench --bench apply_decode`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hint::black_box;

use cdc_agent::apply::avro::{Envelope, Writer};
use cdc_agent::apply::schema::envelope_shape;
use cdc_agent::encode::{ConnectorKind, TableCodec};
use cdc_agent::event::{
    ChangeEvent, Column, ColumnType, Datum, Op, PostgresSource, SourceBlock, TableId, TableSchema,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PLACEHOLDER: &str = "__debezium_unavailable_value";

fn col(name: &str, ty: ColumnType, optional: bool) -> Column {
    Column {
        name: name.into(),
        ty,
        optional,
        source_type: String::new(),
        default: None,
    }
}

/// bench/apply's table and one of its rows.
fn typical() -> (Vec<Column>, Vec<Datum<'static>>) {
    let columns = vec![
        col("id", ColumnType::Int64, false),
        col("grp", ColumnType::Int32, false),
        col(
            "amount",
            ColumnType::Decimal {
                precision: Some(12),
                scale: 2,
            },
            false,
        ),
        col("name", ColumnType::String, false),
        col("note", ColumnType::String, true),
        col("payload", ColumnType::String, false),
        col("ver", ColumnType::Int64, false),
    ];
    let row = vec![
        Datum::Int(123_456),
        Datum::Int(456),
        Datum::Decimal {
            unscaled: Cow::Owned(vec![0x30, 0x39]),
            scale: 2,
        },
        Datum::Str("e10adc3949ba59abbe56e057f20f883e".into()),
        Datum::Str("note 123456".into()),
        Datum::Str("0123456789abcdef".repeat(8).into()),
        Datum::Int(1),
    ];
    (columns, row)
}

/// 40 columns of mixed types, a few of them null.
fn wide() -> (Vec<Column>, Vec<Datum<'static>>) {
    let kinds: [(ColumnType, Datum<'static>); 10] = [
        (ColumnType::Int64, Datum::Int(9_876_543_210)),
        (ColumnType::Int32, Datum::Int(-42)),
        (ColumnType::Float64, Datum::Float(3.25)),
        (ColumnType::Boolean, Datum::Bool(true)),
        (ColumnType::String, Datum::Str("some text value".into())),
        (
            ColumnType::Decimal {
                precision: Some(10),
                scale: 2,
            },
            Datum::Decimal {
                unscaled: Cow::Owned(vec![0x04, 0x1a]),
                scale: 2,
            },
        ),
        (ColumnType::Date, Datum::Int(19_000)),
        (
            ColumnType::MicroTimestamp,
            Datum::Int(1_700_000_000_123_456),
        ),
        (ColumnType::Json, Datum::Str(r#"{"a":1,"b":[1,2]}"#.into())),
        (
            ColumnType::Bytes,
            Datum::Bytes(Cow::Owned(vec![1, 2, 3, 4])),
        ),
    ];
    let mut columns = vec![col("id", ColumnType::Int64, false)];
    let mut row = vec![Datum::Int(1)];
    for i in 1..40 {
        let (ty, datum) = &kinds[i % kinds.len()];
        columns.push(col(&format!("c{i}"), ty.clone(), true));
        row.push(if i % 9 == 0 {
            Datum::Null
        } else {
            datum.clone()
        });
    }
    (columns, row)
}

/// The Avro body of an insert of `row` and the writer schema's text.
fn body(columns: Vec<Column>, row: &[Datum<'_>]) -> (String, Vec<u8>) {
    let table = TableSchema {
        id: TableId::new("public", "t"),
        columns,
        key: vec![0],
    };
    let codec = TableCodec::new("bench", &table, ConnectorKind::Postgres).unwrap();
    let ev = ChangeEvent {
        table: &table,
        op: Op::Create,
        before: None,
        after: Some(row),
        source: SourceBlock::Postgres(PostgresSource {
            name: "bench",
            ts_us: 1_700_000_000_000_000,
            snapshot: "false",
            db: "bench",
            sequence: Some("[\"1\",\"2\"]".into()),
            schema: "public",
            table: "t",
            tx_id: Some(1),
            lsn: Some(2),
            xmin: None,
        }),
        processed_us: 1_700_000_000_000_001,
        transaction: None,
    };
    let mut out = Vec::new();
    codec.encode_value(&ev, 1, &mut out).unwrap();
    (codec.value_schema().to_owned(), out.split_off(5))
}

fn bench(c: &mut Criterion) {
    for (name, (columns, row)) in [("typical", typical()), ("wide", wide())] {
        let (schema, body) = body(columns, &row);
        let shape = envelope_shape(&schema).unwrap();
        let by_source: HashMap<String, usize> = shape
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let direct = Writer::new(1, &schema).unwrap();
        let maps = direct.plan.as_ref().unwrap().row_maps(&by_source);
        let tree = Writer {
            schema: apache_avro::Schema::parse_str(&schema).unwrap(),
            plan: None,
        };
        let mut g = c.benchmark_group(format!("apply_decode/{name}"));
        g.throughput(Throughput::Elements(1));
        for (path, writer, maps) in [("value_tree", &tree, &[][..]), ("direct", &direct, &maps)] {
            g.bench_function(path, |b| {
                b.iter(|| {
                    let mut env = Envelope::decode(writer, black_box(&body)).unwrap();
                    let names = env.names().map(|n| n.map(str::len));
                    let row = env
                        .take_row(true, maps, &by_source, &shape.columns, PLACEHOLDER)
                        .unwrap();
                    black_box((names, row))
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
