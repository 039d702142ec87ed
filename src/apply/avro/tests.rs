//! Differential tests of the direct decoder: for envelopes the agent writes (every column
//! type, nulls, placeholders, every op, both source kinds) and for hand-made writer schemas
//! (fields in another order, extra fields of every Avro type), the plan must give exactly the
//! op, source names and cells apache-avro's `Value` path gives. Then malformed bodies: every
//! prefix and many byte flips must come back as errors or values, never as a panic.

use std::borrow::Cow;
use std::collections::HashMap;

use apache_avro::types::Value;

use super::*;
use crate::apply::schema::{envelope_shape, Shape};
use crate::encode::{CodecOptions, ConnectorKind, TableCodec};
use crate::event::{
    ChangeEvent, Column as SrcColumn, ColumnType, Datum, MysqlSource, Op, PostgresSource,
    SourceBlock, TableId, TableSchema, TransactionInfo,
};

const PLACEHOLDER: &str = "__debezium_unavailable_value";

/// Both decoders of one writer schema.
struct Both {
    direct: Writer,
    tree: Writer,
}

impl Both {
    fn new(text: &str) -> Self {
        let direct = Writer::new(1, text).expect("schema parses");
        assert!(direct.plan.is_some(), "no plan for {text}");
        let tree = Writer {
            schema: apache_avro::Schema::parse_str(text).unwrap(),
            plan: None,
        };
        Self { direct, tree }
    }
}

/// A target: the shape's columns in a shuffled order, some left out.
struct Target {
    columns: Vec<Column>,
    by_source: HashMap<String, usize>,
}

impl Target {
    /// Every column of `shape`, in reverse order, without those named in `drop`.
    fn of(shape: &Shape, drop: &[&str]) -> Self {
        let mut columns = Vec::new();
        let mut by_source = HashMap::new();
        for c in shape.columns.iter().rev() {
            if drop.contains(&c.name.as_str()) {
                continue;
            }
            by_source.insert(c.name.clone(), columns.len());
            columns.push(c.clone());
        }
        Self { columns, by_source }
    }
}

/// What one decoder made of a body: op, names, and both images.
#[derive(Debug, PartialEq)]
struct Outcome {
    op: String,
    names: [Option<String>; 3],
    before: Option<Vec<Cell>>,
    after: Option<Vec<Cell>>,
}

fn outcome(writer: &Writer, body: &[u8], target: &Target) -> Result<Outcome, String> {
    let mut env = Envelope::decode(writer, body)?;
    let maps = match &writer.plan {
        Some(p) => p.row_maps(&target.by_source),
        None => Vec::new(),
    };
    let mut row = |after| {
        env.take_row(
            after,
            &maps,
            &target.by_source,
            &target.columns,
            PLACEHOLDER,
        )
    };
    let before = row(false)?;
    let after = row(true)?;
    Ok(Outcome {
        op: env.op().to_owned(),
        names: env.names().map(|n| n.map(str::to_owned)),
        before,
        after,
    })
}

/// Asserts both decoders agree on `body` and returns what they made of it.
fn same(both: &Both, body: &[u8], target: &Target) -> Outcome {
    let tree = outcome(&both.tree, body, target).expect("apache-avro decodes");
    let direct = outcome(&both.direct, body, target).expect("the plan decodes");
    assert_eq!(direct, tree);
    direct
}

fn col(name: &str, ty: ColumnType, optional: bool) -> SrcColumn {
    SrcColumn {
        name: name.to_owned(),
        ty,
        optional,
        source_type: String::new(),
        default: None,
    }
}

fn s(v: &str) -> Datum<'static> {
    Datum::Str(Cow::Owned(v.to_owned()))
}

fn b(v: &[u8]) -> Datum<'static> {
    Datum::Bytes(Cow::Owned(v.to_vec()))
}

fn dec(v: &[u8], scale: u32) -> Datum<'static> {
    Datum::Decimal {
        unscaled: Cow::Owned(v.to_vec()),
        scale,
    }
}

/// A little-endian WKB point.
fn wkb_point(x: f64, y: f64) -> Vec<u8> {
    let mut w = vec![1, 1, 0, 0, 0];
    w.extend_from_slice(&x.to_le_bytes());
    w.extend_from_slice(&y.to_le_bytes());
    w
}

/// Every column type the agent writes, each once required and once optional, with one
/// value per row.
fn all_types() -> Vec<(ColumnType, Vec<Datum<'static>>)> {
    let point = wkb_point(1.5, -2.25);
    vec![
        (
            ColumnType::Boolean,
            vec![Datum::Bool(true), Datum::Bool(false)],
        ),
        (ColumnType::Int16, vec![Datum::Int(-32768), Datum::Int(7)]),
        (
            ColumnType::Int32,
            vec![Datum::Int(i64::from(i32::MAX)), Datum::Int(-1)],
        ),
        (
            ColumnType::Int64,
            vec![Datum::Int(i64::MIN), Datum::Int(i64::MAX)],
        ),
        (
            ColumnType::Float32,
            vec![Datum::Float(1.5), Datum::Float(-0.0)],
        ),
        (
            ColumnType::Float64,
            vec![Datum::Float(1e300), Datum::Float(f64::MIN_POSITIVE)],
        ),
        (ColumnType::String, vec![s("héllo"), s("")]),
        (ColumnType::Bytes, vec![b(&[0, 1, 255]), b(&[])]),
        (
            ColumnType::Decimal {
                precision: Some(10),
                scale: 2,
            },
            vec![dec(&[0x04, 0x1a], 2), dec(&[0xcf, 0xc7], 2)],
        ),
        (
            ColumnType::Decimal {
                precision: None,
                scale: 0,
            },
            vec![
                dec(&[0x00, 0xff], 0),
                dec(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1], 0),
            ],
        ),
        (
            ColumnType::VariableScaleDecimal,
            vec![dec(&[0x30, 0x39], 3), dec(&[0xff], 0)],
        ),
        (ColumnType::Date, vec![Datum::Int(19_000), Datum::Int(-1)]),
        (ColumnType::Time, vec![Datum::Int(3_723_001), Datum::Int(0)]),
        (
            ColumnType::MicroTime,
            vec![Datum::Int(86_399_999_999), Datum::Int(1)],
        ),
        (
            ColumnType::Timestamp,
            vec![Datum::Int(1_700_000_000_123), Datum::Int(-5)],
        ),
        (
            ColumnType::MicroTimestamp,
            vec![Datum::Int(1_700_000_000_123_456), Datum::Int(i64::MAX)],
        ),
        (
            ColumnType::ZonedTimestamp,
            vec![s("2024-01-01T00:00:00Z"), s("1970-01-01T00:00:00.5Z")],
        ),
        (
            ColumnType::ZonedTime,
            vec![s("10:00:00Z"), s("00:00:00+01:00")],
        ),
        (
            ColumnType::MicroDuration,
            vec![Datum::Int(-3_600_000_000), Datum::Int(0)],
        ),
        (ColumnType::Year, vec![Datum::Int(2024), Datum::Int(0)]),
        (ColumnType::Json, vec![s(r#"{"a":[1,2]}"#), s("null")]),
        (
            ColumnType::Uuid,
            vec![s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), s("x")],
        ),
        (
            ColumnType::Enum(vec!["a".into(), "b".into()]),
            vec![s("a"), s("b")],
        ),
        (
            ColumnType::EnumSet(vec!["a".into(), "b".into()]),
            vec![s("a,b"), s("")],
        ),
        (ColumnType::Bits { length: 9 }, vec![b(&[1, 1]), b(&[0])]),
        (
            ColumnType::Array(Box::new(ColumnType::String)),
            vec![
                Datum::Array(vec![s("x"), Datum::Null, s("\"q\"")]),
                Datum::Array(vec![]),
            ],
        ),
        (
            ColumnType::Array(Box::new(ColumnType::Int32)),
            vec![
                Datum::Array(vec![Datum::Int(1), Datum::Int(-2)]),
                Datum::Array(vec![Datum::Null]),
            ],
        ),
        (
            ColumnType::Array(Box::new(ColumnType::Float64)),
            vec![
                Datum::Array(vec![Datum::Float(0.5)]),
                Datum::Array(vec![Datum::Float(f64::INFINITY)]),
            ],
        ),
        (ColumnType::Xml, vec![s("<a/>"), s("")]),
        (ColumnType::Ltree, vec![s("a.b.c"), s("")]),
        (ColumnType::TsVector, vec![s("'a':1"), s("")]),
        (
            ColumnType::Geometry,
            vec![
                Datum::Geometry {
                    wkb: Cow::Owned(point.clone()),
                    srid: Some(4326),
                },
                Datum::Geometry {
                    wkb: Cow::Owned(vec![1, 2, 3]),
                    srid: None,
                },
            ],
        ),
        (
            ColumnType::Point,
            vec![
                Datum::Geometry {
                    wkb: Cow::Owned(point.clone()),
                    srid: None,
                },
                Datum::Geometry {
                    wkb: Cow::Owned(wkb_point(0.0, 0.0)),
                    srid: Some(3857),
                },
            ],
        ),
    ]
}

/// The datum of an unchanged TOASTed value where the column type can carry the placeholder.
fn unchanged_fits(ty: &ColumnType, optional: bool) -> bool {
    optional
        || matches!(
            ty,
            ColumnType::String
                | ColumnType::Json
                | ColumnType::Xml
                | ColumnType::Bytes
                | ColumnType::Array(_)
        ) && !matches!(ty, ColumnType::Array(e) if **e == ColumnType::Float64)
}

/// A table of every type (required `id` key first), its codec, and rows to encode.
fn wide_table(kind: ConnectorKind) -> (TableSchema, TableCodec, Vec<Vec<Datum<'static>>>) {
    let types = all_types();
    let mut columns = vec![col("id", ColumnType::Int64, false)];
    for (i, (ty, _)) in types.iter().enumerate() {
        columns.push(col(&format!("r{i}"), ty.clone(), false));
        columns.push(col(&format!("o{i}"), ty.clone(), true));
    }
    let table = TableSchema {
        id: TableId::new("public", "wide"),
        columns,
        key: vec![0],
    };
    let codec = TableCodec::with_options("shop", &table, kind, &CodecOptions::default()).unwrap();
    let mut rows = Vec::new();
    // Row 0 and 1: the values; row 2: nulls in optional columns (zeros in required ones);
    // row 3: placeholders where they fit, nulls elsewhere.
    for v in 0..2 {
        let mut row = vec![Datum::Int(v as i64)];
        for (_, values) in &types {
            row.push(values[v].clone());
            row.push(values[1 - v].clone());
        }
        rows.push(row);
    }
    let mut nulls = vec![Datum::Int(2)];
    let mut unchanged = vec![Datum::Int(3)];
    for (ty, values) in &types {
        // A null in a required column is written as the type's zero, as Debezium does.
        nulls.push(Datum::Null);
        nulls.push(Datum::Null);
        unchanged.push(if unchanged_fits(ty, false) {
            Datum::Unchanged
        } else {
            values[0].clone()
        });
        unchanged.push(if unchanged_fits(ty, true) {
            Datum::Unchanged
        } else {
            Datum::Null
        });
    }
    rows.push(nulls);
    rows.push(unchanged);
    (table, codec, rows)
}

fn source(kind: ConnectorKind) -> SourceBlock<'static> {
    match kind {
        ConnectorKind::Postgres => SourceBlock::Postgres(PostgresSource {
            name: "shop",
            ts_us: 1_700_000_000_123_456,
            snapshot: "false",
            db: "shopdb",
            sequence: Some(Cow::Borrowed("[\"1\",\"2\"]")),
            schema: "public",
            table: "wide",
            tx_id: Some(7),
            lsn: Some(200),
            xmin: None,
        }),
        ConnectorKind::Mysql => SourceBlock::Mysql(MysqlSource {
            name: "shop",
            ts_us: 1_700_000_000_000_000,
            snapshot: "true",
            db: "shopdb",
            table: "wide",
            server_id: 1,
            gtid: Some("0-1-5"),
            file: "bin.000001",
            pos: 4,
            row: 0,
            thread: None,
            query: Some("insert …"),
        }),
    }
}

fn encode(
    codec: &TableCodec,
    table: &TableSchema,
    kind: ConnectorKind,
    op: Op,
    before: Option<&[Datum<'_>]>,
    after: Option<&[Datum<'_>]>,
    tx: bool,
) -> Vec<u8> {
    let ev = ChangeEvent {
        table,
        op,
        before,
        after,
        source: source(kind),
        processed_us: 1_700_000_001_000_001,
        transaction: tx.then_some(TransactionInfo {
            id: Cow::Borrowed("7:200"),
            total_order: 1,
            data_collection_order: 1,
        }),
    };
    let mut out = Vec::new();
    codec.encode_value(&ev, 1, &mut out).expect("encodes");
    out.split_off(5)
}

/// Every envelope of the wide table: each op, each row, with and without transaction.
fn wide_bodies(kind: ConnectorKind) -> (String, Vec<Vec<u8>>) {
    let (table, codec, rows) = wide_table(kind);
    let mut bodies = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let other = &rows[(i + 1) % rows.len()];
        let tx = i % 2 == 0;
        bodies.push(encode(
            &codec,
            &table,
            kind,
            Op::Create,
            None,
            Some(row),
            tx,
        ));
        bodies.push(encode(&codec, &table, kind, Op::Read, None, Some(row), !tx));
        bodies.push(encode(
            &codec,
            &table,
            kind,
            Op::Update,
            Some(other),
            Some(row),
            tx,
        ));
        bodies.push(encode(
            &codec,
            &table,
            kind,
            Op::Delete,
            Some(row),
            None,
            tx,
        ));
    }
    bodies.push(encode(
        &codec,
        &table,
        kind,
        Op::Truncate,
        None,
        None,
        false,
    ));
    (codec.value_schema().to_owned(), bodies)
}

#[test]
fn agent_envelopes_of_every_column_type_decode_to_the_cells_of_the_value_path() {
    for kind in [ConnectorKind::Postgres, ConnectorKind::Mysql] {
        let (schema, bodies) = wide_bodies(kind);
        let both = Both::new(&schema);
        let shape = envelope_shape(&schema).unwrap();
        // Every column mapped, and a target that leaves some out (skipped, not decoded).
        let targets = [
            Target::of(&shape, &[]),
            Target::of(&shape, &["r0", "o6", "o10", "r26", "o31"]),
        ];
        let mut seen_unavailable = 0;
        for body in &bodies {
            for target in &targets {
                let got = same(&both, body, target);
                assert_eq!(got.names[0].as_deref(), Some("wide"));
                seen_unavailable += [&got.before, &got.after]
                    .iter()
                    .filter_map(|r| r.as_ref())
                    .flatten()
                    .filter(|c| **c == Cell::Unavailable)
                    .count();
            }
        }
        assert!(seen_unavailable > 0, "no placeholder came through");
        // The ops and both images are where they should be.
        let target = Target::of(&shape, &[]);
        let update = same(&both, &bodies[2], &target);
        assert_eq!(update.op, "u");
        assert!(update.before.is_some() && update.after.is_some());
        let delete = same(&both, &bodies[3], &target);
        assert_eq!((delete.op.as_str(), delete.after.is_none()), ("d", true));
        let truncate = same(&both, bodies.last().unwrap(), &target);
        assert_eq!(truncate.op, "t");
        assert_eq!((truncate.before, truncate.after), (None, None));
    }
}

#[test]
fn the_cells_keep_their_meaning() {
    let (schema, bodies) = wide_bodies(ConnectorKind::Postgres);
    let both = Both::new(&schema);
    let shape = envelope_shape(&schema).unwrap();
    let target = Target::of(&shape, &[]);
    let row = same(&both, &bodies[0], &target).after.unwrap();
    let cell = |name: &str| &row[target.by_source[name]];
    let types = all_types();
    let index = |ty: &ColumnType| types.iter().position(|(t, _)| t == ty).unwrap();
    assert_eq!(cell("id"), &Cell::Int(0));
    assert_eq!(
        cell(&format!(
            "r{}",
            index(&ColumnType::Decimal {
                precision: Some(10),
                scale: 2
            })
        )),
        &Cell::Decimal("10.50".into())
    );
    assert_eq!(
        cell(&format!("o{}", index(&ColumnType::VariableScaleDecimal))),
        &Cell::Decimal("-1".into())
    );
    assert_eq!(
        cell(&format!("r{}", index(&ColumnType::Time))),
        &Cell::Time(3_723_001_000)
    );
    assert_eq!(
        cell(&format!("r{}", index(&ColumnType::Date))),
        &Cell::Date(19_000)
    );
    let Cell::Text(array) = cell(&format!(
        "r{}",
        index(&ColumnType::Array(Box::new(ColumnType::String)))
    )) else {
        panic!("array is not text")
    };
    assert_eq!(array, r#"["x",null,"\"q\""]"#);
    // Placeholders (row 3) in a string, bytes and string array column.
    let row = same(&both, &bodies[12], &target).after.unwrap();
    let cell = |name: &str| &row[target.by_source[name]];
    for ty in [
        ColumnType::String,
        ColumnType::Bytes,
        ColumnType::Array(Box::new(ColumnType::String)),
        ColumnType::Array(Box::new(ColumnType::Int32)),
    ] {
        assert_eq!(
            cell(&format!("r{}", index(&ty))),
            &Cell::Unavailable,
            "{ty:?}"
        );
        assert_eq!(
            cell(&format!("o{}", index(&ty))),
            &Cell::Unavailable,
            "{ty:?}"
        );
    }
}

/// A hand-made envelope: fields in another order, extra fields of every Avro type, and a row
/// with enum, fixed, map, record, array and fixed-decimal columns.
const ODD_ENVELOPE: &str = r#"{"type":"record","name":"Envelope","namespace":"x.y","fields":[
  {"name":"op","type":"string"},
  {"name":"extra_map","type":{"type":"map","values":["null","long"]}},
  {"name":"source","type":["null",{"type":"record","name":"Src","fields":[
     {"name":"version","type":"string"},
     {"name":"db","type":["null","string"]},
     {"name":"blob","type":{"type":"array","items":{"type":"record","name":"Pair","fields":[
        {"name":"k","type":"string"},{"name":"v","type":"double"}]}}},
     {"name":"table","type":"string"},
     {"name":"schema","type":["null","long","string"]},
     {"name":"flag","type":"boolean"}]}]},
  {"name":"after","type":["null",{"type":"record","name":"Row","fields":[
     {"name":"id","type":"long"},
     {"name":"color","type":{"type":"enum","name":"Color","symbols":["red","green"]}},
     {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
     {"name":"money","type":{"type":"fixed","name":"Money","size":3,"logicalType":"decimal","precision":6,"scale":2}},
     {"name":"props","type":["null",{"type":"map","values":"string"}]},
     {"name":"pair","type":"Pair"},
     {"name":"nested","type":{"type":"array","items":{"type":"array","items":"int"}}},
     {"name":"nothing","type":"null"},
     {"name":"f","type":"float"},
     {"name":"ok","type":["boolean","null"]},
     {"name":"vsd","type":{"type":"record","name":"VariableScaleDecimal","namespace":"io.debezium.data",
        "fields":[{"name":"scale","type":"int"},{"name":"value","type":"bytes"}]}},
     {"name":"text","type":["null","string"]},
     {"name":"raw","type":"bytes"}]}]},
  {"name":"extra_fixed","type":"Hash"},
  {"name":"extra_enum","type":"Color"},
  {"name":"before","type":["null","Row"]},
  {"name":"extra_nulls","type":{"type":"array","items":"null"}},
  {"name":"ts_ms","type":["null","long"]}]}"#;

fn odd_row(id: i64, text: Option<&str>) -> Value {
    let mut props = HashMap::new();
    props.insert("a".to_string(), Value::String("1".into()));
    props.insert("b".to_string(), Value::String("\u{e9}".into()));
    Value::Record(vec![
        ("id".into(), Value::Long(id)),
        ("color".into(), Value::Enum(1, "green".into())),
        ("hash".into(), Value::Fixed(4, vec![1, 2, 3, 4])),
        (
            "money".into(),
            Value::Decimal(apache_avro::Decimal::from(vec![0xff, 0xfe, 0x0c])),
        ),
        ("props".into(), Value::Union(1, Box::new(Value::Map(props)))),
        (
            "pair".into(),
            Value::Record(vec![
                ("k".into(), Value::String("key".into())),
                ("v".into(), Value::Double(0.25)),
            ]),
        ),
        (
            "nested".into(),
            Value::Array(vec![
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
                Value::Array(vec![]),
            ]),
        ),
        ("nothing".into(), Value::Null),
        ("f".into(), Value::Float(2.5)),
        ("ok".into(), Value::Union(0, Box::new(Value::Boolean(true)))),
        (
            "vsd".into(),
            Value::Record(vec![
                ("scale".into(), Value::Int(1)),
                ("value".into(), Value::Bytes(vec![0x7b])),
            ]),
        ),
        (
            "text".into(),
            match text {
                Some(t) => Value::Union(1, Box::new(Value::String(t.into()))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
        ("raw".into(), Value::Bytes(PLACEHOLDER.as_bytes().to_vec())),
    ])
}

fn odd_envelope(op: &str, before: Option<Value>, after: Option<Value>) -> Value {
    let opt = |v: Option<Value>| match v {
        Some(v) => Value::Union(1, Box::new(v)),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    let mut extra = HashMap::new();
    extra.insert("n".to_string(), Value::Union(1, Box::new(Value::Long(-9))));
    extra.insert("z".to_string(), Value::Union(0, Box::new(Value::Null)));
    Value::Record(vec![
        ("op".into(), Value::String(op.into())),
        ("extra_map".into(), Value::Map(extra)),
        (
            "source".into(),
            opt(Some(Value::Record(vec![
                ("version".into(), Value::String("1".into())),
                (
                    "db".into(),
                    Value::Union(1, Box::new(Value::String("inventory".into()))),
                ),
                (
                    "blob".into(),
                    Value::Array(vec![Value::Record(vec![
                        ("k".into(), Value::String("k".into())),
                        ("v".into(), Value::Double(1.0)),
                    ])]),
                ),
                ("table".into(), Value::String("things".into())),
                // A long branch: no schema name.
                ("schema".into(), Value::Union(1, Box::new(Value::Long(5)))),
                ("flag".into(), Value::Boolean(true)),
            ]))),
        ),
        ("after".into(), opt(after)),
        ("extra_fixed".into(), Value::Fixed(4, vec![9, 9, 9, 9])),
        ("extra_enum".into(), Value::Enum(0, "red".into())),
        ("before".into(), opt(before)),
        (
            "extra_nulls".into(),
            Value::Array(vec![Value::Null, Value::Null]),
        ),
        ("ts_ms".into(), Value::Union(0, Box::new(Value::Null))),
    ])
}

/// A row shape for the odd envelope: the column types the agent's JSON reading gives, plus
/// a few read as other types than their Avro shape, to reach the JSON fallback.
fn odd_target(schema: &str) -> Vec<Target> {
    let shape = envelope_shape(schema).unwrap();
    let mut retyped = shape.clone();
    for c in &mut retyped.columns {
        c.ty = match c.name.as_str() {
            "id" => ColType::Timestamp {
                micros_per_unit: 1000,
            },
            "raw" => ColType::Decimal {
                precision: None,
                scale: 1,
            },
            "money" => ColType::Text,
            "vsd" => ColType::Json,
            "f" => ColType::Time { micros_per_unit: 1 },
            _ => c.ty.clone(),
        };
    }
    vec![
        Target::of(&shape, &[]),
        Target::of(&shape, &["pair", "hash"]),
        Target::of(&retyped, &[]),
    ]
}

#[test]
fn hand_made_envelopes_with_fields_in_another_order_and_extra_types_decode_alike() {
    let both = Both::new(ODD_ENVELOPE);
    let schema = &both.tree.schema;
    let targets = odd_target(ODD_ENVELOPE);
    let cases = [
        odd_envelope("c", None, Some(odd_row(1, Some("hi")))),
        odd_envelope(
            "u",
            Some(odd_row(1, None)),
            Some(odd_row(2, Some(PLACEHOLDER))),
        ),
        odd_envelope("d", Some(odd_row(2, Some("bye"))), None),
        odd_envelope("t", None, None),
    ];
    for value in cases {
        let body = apache_avro::to_avro_datum(schema, value).unwrap();
        for target in &targets {
            let got = same(&both, &body, target);
            assert_eq!(
                got.names,
                [
                    Some("things".to_string()),
                    None,
                    Some("inventory".to_string())
                ]
            );
        }
    }
}

#[test]
fn blocks_with_negative_counts_and_byte_sizes_decode_alike() {
    // apache-avro writes positive counts only; Java writers may write a negative count and
    // the block's byte size. The extra map and the row's array use both forms here.
    let schema = r#"{"type":"record","name":"E","fields":[
      {"name":"extra","type":{"type":"array","items":"string"}},
      {"name":"after","type":["null",{"type":"record","name":"R","fields":[
         {"name":"id","type":"int"},
         {"name":"tags","type":{"type":"array","items":["null","string"]}},
         {"name":"m","type":{"type":"map","values":"int"}}]}]},
      {"name":"source","type":{"type":"record","name":"S","fields":[{"name":"table","type":"string"}]}},
      {"name":"op","type":"string"}]}"#;
    let both = Both::new(schema);
    let target = Target::of(&envelope_shape(schema).unwrap(), &[]);
    let mut body = Vec::new();
    let long = |v: i64, out: &mut Vec<u8>| crate::encode::avro::write_long(v, out);
    let string = |s: &str, out: &mut Vec<u8>| {
        long(s.len() as i64, out);
        out.extend_from_slice(s.as_bytes());
    };
    // extra: one block of -2 items (6 bytes), then one plain block of 1, then the end.
    long(-2, &mut body);
    long(6, &mut body);
    string("ab", &mut body);
    string("cd", &mut body);
    long(1, &mut body);
    string("e", &mut body);
    long(0, &mut body);
    // after: branch 1, id 5, tags [-1 item (3 bytes): "x"], then [null], map {-1: "k"→3}.
    long(1, &mut body);
    long(5, &mut body);
    long(-1, &mut body);
    long(3, &mut body);
    long(1, &mut body);
    string("x", &mut body);
    long(1, &mut body);
    long(0, &mut body);
    long(0, &mut body);
    long(-1, &mut body);
    long(3, &mut body);
    string("k", &mut body);
    long(3, &mut body);
    long(0, &mut body);
    string("t", &mut body);
    string("c", &mut body);
    let got = same(&both, &body, &target);
    assert_eq!(got.op, "c");
    assert_eq!(
        got.after.unwrap(),
        vec![
            Cell::Text(r#"{"k":3}"#.into()),
            Cell::Text(r#"["x",null]"#.into()),
            Cell::Int(5),
        ]
    );
}

#[test]
fn schemas_the_plan_does_not_model_fall_back_to_the_value_path() {
    for ty in [
        r#"{"type":"long","logicalType":"timestamp-millis"}"#,
        r#"{"type":"string","logicalType":"uuid"}"#,
        r#"{"type":"int","logicalType":"date"}"#,
    ] {
        let text = format!(
            r#"{{"type":"record","name":"E","fields":[
              {{"name":"after","type":["null",{{"type":"record","name":"R","fields":[
                 {{"name":"c","type":{ty}}}]}}]}},
              {{"name":"op","type":"string"}}]}}"#
        );
        let w = Writer::new(1, &text).unwrap();
        assert!(w.plan.is_none(), "{ty}");
    }
    let recursive = r#"{"type":"record","name":"E","fields":[
      {"name":"after","type":["null",{"type":"record","name":"Node","fields":[
         {"name":"next","type":["null","Node"]}]}]},
      {"name":"op","type":"string"}]}"#;
    assert!(Writer::new(1, recursive).unwrap().plan.is_none());
}

/// Asserts the plan refuses `body` (scan or either image) without panicking.
fn refused(plan: &Plan, body: &[u8], target: &Target) -> bool {
    let maps = plan.row_maps(&target.by_source);
    match plan.scan(body) {
        Err(_) => true,
        Ok(s) => [s.before, s.after].into_iter().flatten().any(|row| {
            plan.cells(row, &maps, &target.columns, PLACEHOLDER)
                .is_err()
        }),
    }
}

#[test]
fn every_truncation_is_an_error_and_byte_flips_never_panic() {
    let (schema, bodies) = wide_bodies(ConnectorKind::Postgres);
    let direct = Writer::new(1, &schema).unwrap();
    let plan = direct.plan.as_ref().unwrap();
    let target = Target::of(&envelope_shape(&schema).unwrap(), &[]);
    for body in bodies.iter().step_by(3) {
        assert!(!refused(plan, body, &target));
        for len in 0..body.len() {
            assert!(
                refused(plan, &body[..len], &target),
                "a body cut at {len} of {} bytes was accepted",
                body.len()
            );
        }
        for i in 0..body.len() {
            for flip in [0x01, 0x80, 0xff, 0x7f] {
                let mut bad = body.clone();
                bad[i] ^= flip;
                let _ = refused(plan, &bad, &target);
            }
        }
    }
    // The odd envelope too: maps, enums, fixed, nested arrays under flips.
    let both = Both::new(ODD_ENVELOPE);
    let plan = both.direct.plan.as_ref().unwrap();
    let body = apache_avro::to_avro_datum(
        &both.tree.schema,
        odd_envelope("u", Some(odd_row(1, None)), Some(odd_row(2, Some("x")))),
    )
    .unwrap();
    for target in odd_target(ODD_ENVELOPE) {
        for len in 0..body.len() {
            assert!(refused(plan, &body[..len], &target), "cut at {len}");
        }
        for i in 0..body.len() {
            for flip in [0x01, 0x80, 0xff, 0x7f, 0x40] {
                let mut bad = body.clone();
                bad[i] ^= flip;
                if let Ok(s) = plan.scan(&bad) {
                    // Whatever decodes, decodes to cells or an error.
                    let maps = plan.row_maps(&target.by_source);
                    for row in [s.before, s.after].into_iter().flatten() {
                        let _ = plan.cells(row, &maps, &target.columns, PLACEHOLDER);
                    }
                }
            }
        }
    }
}

#[test]
fn malformed_lengths_varints_and_unions_are_named_errors() {
    let schema = r#"{"type":"record","name":"E","fields":[
      {"name":"extra","type":{"type":"array","items":"null"}},
      {"name":"after","type":["null",{"type":"record","name":"R","fields":[
         {"name":"s","type":"string"}]}]},
      {"name":"op","type":"string"}]}"#;
    let w = Writer::new(1, schema).unwrap();
    let plan = w.plan.as_ref().unwrap();
    let err = |body: &[u8]| plan.scan(body).unwrap_err().to_string();
    // Eleven continuation bytes.
    let e = err(&[0xff; 11]);
    assert!(
        e.contains("varint longer than 64 bits") && e.contains("`extra`"),
        "{e}"
    );
    // A ten-byte varint whose last byte carries more than the 64th bit.
    let e = err(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
    assert!(e.contains("varint longer than 64 bits"), "{e}");
    // Arrays of nulls may claim any count: they take no bytes (and are skipped at once).
    let mut body = vec![
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00,
    ];
    // after: branch 7 of 2.
    body.push(14);
    let e = err(&body);
    assert!(e.contains("union branch 7 of a 2-branch union"), "{e}");
    assert!(e.contains("`after`") && e.contains("at byte 11"), "{e}");
    // A string longer than the body, and a negative one.
    for (len, what) in [(100u8, "length 50 beyond"), (1, "length -1 beyond")] {
        let body = [0x00, 0x02, len, b'a'];
        let e = err(&body);
        assert!(e.contains(what), "{e}");
    }
    // The string is not UTF-8.
    let mut body = vec![0x00, 0x02, 0x02, 0xff];
    body.extend_from_slice(&[0x02, b'c']);
    let w2 = Writer::new(1, schema).unwrap();
    let p2 = w2.plan.as_ref().unwrap();
    let s = p2.scan(&body).unwrap();
    let target = Target::of(&envelope_shape(schema).unwrap(), &[]);
    let maps = p2.row_maps(&target.by_source);
    let e = p2
        .cells(s.after.unwrap(), &maps, &target.columns, PLACEHOLDER)
        .unwrap_err()
        .to_string();
    assert!(e.contains("field `s`: string is not UTF-8"), "{e}");
}

#[test]
fn a_huge_block_count_is_refused_before_anything_is_allocated() {
    let schema = r#"{"type":"record","name":"E","fields":[
      {"name":"after","type":["null",{"type":"record","name":"R","fields":[
         {"name":"a","type":{"type":"array","items":"long"}},
         {"name":"n","type":{"type":"array","items":"null"}}]}]},
      {"name":"op","type":"string"}]}"#;
    let both = Both::new(schema);
    let plan = both.direct.plan.as_ref().unwrap();
    let target = Target::of(&envelope_shape(schema).unwrap(), &[]);
    let maps = plan.row_maps(&target.by_source);
    let mut body = vec![0x02];
    crate::encode::avro::write_long(i64::MAX, &mut body);
    // The scan refuses a count the body cannot hold.
    let e = plan.scan(&body).unwrap_err().to_string();
    assert!(
        e.contains("block of 9223372036854775807 items beyond the 0 bytes left"),
        "{e}"
    );
    // Zero-byte items: a huge count is skipped by the scan, refused when decoded to a value.
    let mut body = vec![0x02, 0x00];
    crate::encode::avro::write_long(i64::MAX, &mut body);
    body.extend_from_slice(&[0x00, 0x02, b'c']);
    let s = plan.scan(&body).unwrap();
    let e = plan
        .cells(s.after.unwrap(), &maps, &target.columns, PLACEHOLDER)
        .unwrap_err()
        .to_string();
    assert!(e.contains("zero-byte items"), "{e}");
}
