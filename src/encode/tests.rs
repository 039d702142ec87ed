//! Tests of the Avro codec: every schema parses with apache-avro, and everything encoded
//! decodes back, with apache-avro, to the values Debezium would have produced.

use std::borrow::Cow;

use apache_avro::types::Value;
use apache_avro::{from_avro_datum, Schema};

use super::avro::avro_name;
use super::*;
use crate::event::{
    ChangeEvent, Column, ColumnType, Datum, Op, PostgresSource, SourceBlock, TableId, TableSchema,
    TransactionInfo,
};

/// AvroData's rendering of Debezium's envelope for the chinook `employee` table, as a
/// Debezium 3.x + Confluent AvroConverter setup registers it (the source record carries
/// `connect.version` 1 since Debezium 3.1).
const EMPLOYEE_ENVELOPE: &str = r#"{"type":"record","name":"Envelope","namespace":"chinook.public.employee","fields":[{"name":"before","type":["null",{"type":"record","name":"Value","fields":[{"name":"employee_id","type":"int"},{"name":"last_name","type":"string"},{"name":"first_name","type":"string"},{"name":"title","type":["null","string"],"default":null},{"name":"reports_to","type":["null","int"],"default":null},{"name":"birth_date","type":["null",{"type":"long","connect.version":1,"connect.name":"io.debezium.time.MicroTimestamp"}],"default":null},{"name":"hire_date","type":["null",{"type":"long","connect.version":1,"connect.name":"io.debezium.time.MicroTimestamp"}],"default":null},{"name":"address","type":["null","string"],"default":null},{"name":"city","type":["null","string"],"default":null},{"name":"state","type":["null","string"],"default":null},{"name":"country","type":["null","string"],"default":null},{"name":"postal_code","type":["null","string"],"default":null},{"name":"phone","type":["null","string"],"default":null},{"name":"fax","type":["null","string"],"default":null},{"name":"email","type":["null","string"],"default":null}],"connect.name":"chinook.public.employee.Value"}],"default":null},{"name":"after","type":["null","Value"],"default":null},{"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[{"name":"version","type":"string"},{"name":"connector","type":"string"},{"name":"name","type":"string"},{"name":"ts_ms","type":"long"},{"name":"snapshot","type":[{"type":"string","connect.version":1,"connect.parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"connect.default":"false","connect.name":"io.debezium.data.Enum"},"null"],"default":"false"},{"name":"db","type":"string"},{"name":"sequence","type":["null","string"],"default":null},{"name":"ts_us","type":["null","long"],"default":null},{"name":"ts_ns","type":["null","long"],"default":null},{"name":"schema","type":"string"},{"name":"table","type":"string"},{"name":"txId","type":["null","long"],"default":null},{"name":"lsn","type":["null","long"],"default":null},{"name":"xmin","type":["null","long"],"default":null}],"connect.version":1,"connect.name":"io.debezium.connector.postgresql.Source"}},{"name":"transaction","type":["null",{"type":"record","name":"block","namespace":"event","fields":[{"name":"id","type":"string"},{"name":"total_order","type":"long"},{"name":"data_collection_order","type":"long"}],"connect.version":1,"connect.name":"event.block"}],"default":null},{"name":"op","type":"string"},{"name":"ts_ms","type":["null","long"],"default":null},{"name":"ts_us","type":["null","long"],"default":null},{"name":"ts_ns","type":["null","long"],"default":null}],"connect.version":2,"connect.name":"chinook.public.employee.Envelope"}"#;

fn col(name: &str, ty: ColumnType, optional: bool) -> Column {
    Column {
        name: name.to_owned(),
        ty,
        optional,
        source_type: String::new(),
        default: None,
    }
}

fn table(columns: Vec<Column>, key: Vec<usize>) -> TableSchema {
    TableSchema {
        id: TableId::new("public", "t"),
        columns,
        key,
    }
}

fn source() -> SourceBlock<'static> {
    SourceBlock::Postgres(PostgresSource {
        name: "srv",
        ts_us: 1_700_000_000_123_456,
        snapshot: "false",
        db: "shop",
        sequence: Some(Cow::Borrowed("[\"100\",\"200\"]")),
        schema: "public",
        table: "t",
        tx_id: Some(777),
        lsn: Some(200),
        xmin: None,
    })
}

fn event<'a>(
    table: &'a TableSchema,
    op: Op,
    before: Option<&'a [Datum<'a>]>,
    after: Option<&'a [Datum<'a>]>,
) -> ChangeEvent<'a> {
    ChangeEvent {
        table,
        op,
        before,
        after,
        source: source(),
        processed_us: 1_700_000_001_000_001,
        transaction: None,
    }
}

/// Checks the Confluent framing and decodes the Avro body with apache-avro.
fn decode(schema_json: &str, bytes: &[u8], schema_id: u32) -> Value {
    assert_eq!(bytes[0], 0, "magic byte");
    assert_eq!(&bytes[1..5], &schema_id.to_be_bytes(), "schema id");
    let schema = Schema::parse_str(schema_json).expect("schema parses");
    let mut body = &bytes[5..];
    let value = from_avro_datum(&schema, &mut body, None).expect("body decodes");
    assert!(body.is_empty(), "{} trailing bytes", body.len());
    value
}

fn field<'v>(record: &'v Value, name: &str) -> &'v Value {
    let Value::Record(fields) = record else {
        panic!("not a record: {record:?}")
    };
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no field {name}"))
}

/// The decoded `after` record of a value.
fn after(value: &Value) -> &Value {
    match field(value, "after") {
        Value::Union(1, record) => record,
        other => panic!("after is {other:?}"),
    }
}

fn some(v: Value) -> Value {
    Value::Union(1, Box::new(v))
}

fn none() -> Value {
    Value::Union(0, Box::new(Value::Null))
}

fn dec(bytes: &[u8]) -> Value {
    Value::Decimal(apache_avro::Decimal::from(bytes.to_vec()))
}

fn s(v: &str) -> Datum<'static> {
    Datum::Str(Cow::Owned(v.to_owned()))
}

fn b(v: &[u8]) -> Datum<'static> {
    Datum::Bytes(Cow::Owned(v.to_vec()))
}

fn d(unscaled: &[u8], scale: u32) -> Datum<'static> {
    Datum::Decimal {
        unscaled: Cow::Owned(unscaled.to_vec()),
        scale,
    }
}

/// Every column type with a typical datum and the value apache-avro decodes it to.
fn all_types() -> Vec<(ColumnType, Datum<'static>, Value)> {
    let colors = vec!["red".to_owned(), "green".to_owned()];
    vec![
        (ColumnType::Boolean, Datum::Bool(true), Value::Boolean(true)),
        (ColumnType::Int16, Datum::Int(-32768), Value::Int(-32768)),
        (
            ColumnType::Int32,
            Datum::Int(2_147_483_647),
            Value::Int(i32::MAX),
        ),
        (
            ColumnType::Int64,
            Datum::Int(i64::MIN),
            Value::Long(i64::MIN),
        ),
        (ColumnType::Float32, Datum::Float(1.5), Value::Float(1.5)),
        (ColumnType::Float64, Datum::Float(-0.1), Value::Double(-0.1)),
        (
            ColumnType::String,
            s("héllo"),
            Value::String("héllo".into()),
        ),
        (ColumnType::Bytes, b(&[0, 255]), Value::Bytes(vec![0, 255])),
        (
            ColumnType::Decimal {
                precision: Some(10),
                scale: 2,
            },
            d(&[0xCF, 0xC7], 2),
            dec(&[0xCF, 0xC7]),
        ),
        (
            ColumnType::Decimal {
                precision: None,
                scale: 2,
            },
            d(&[0x01, 0xF4], 2),
            dec(&[0x01, 0xF4]),
        ),
        (
            ColumnType::VariableScaleDecimal,
            d(&[0x30, 0x39], 3),
            Value::Record(vec![
                ("scale".into(), Value::Int(3)),
                ("value".into(), Value::Bytes(vec![0x30, 0x39])),
            ]),
        ),
        (ColumnType::Date, Datum::Int(-719_528), Value::Int(-719_528)),
        (
            ColumnType::Time,
            Datum::Int(36_000_123),
            Value::Int(36_000_123),
        ),
        (
            ColumnType::MicroTime,
            Datum::Int(86_400_000_000),
            Value::Long(86_400_000_000),
        ),
        (
            ColumnType::Timestamp,
            Datum::Int(1_704_164_645_123),
            Value::Long(1_704_164_645_123),
        ),
        (
            ColumnType::MicroTimestamp,
            Datum::Int(-210_835_180_800_000_000),
            Value::Long(-210_835_180_800_000_000),
        ),
        (
            ColumnType::ZonedTimestamp,
            s("2024-01-02T03:04:05.123456Z"),
            Value::String("2024-01-02T03:04:05.123456Z".into()),
        ),
        (
            ColumnType::ZonedTime,
            s("04:45:30.123Z"),
            Value::String("04:45:30.123Z".into()),
        ),
        (
            ColumnType::MicroDuration,
            Datum::Int(2_629_800_000_000),
            Value::Long(2_629_800_000_000),
        ),
        (ColumnType::Year, Datum::Int(2024), Value::Int(2024)),
        (
            ColumnType::Json,
            s("{\"a\":1}"),
            Value::String("{\"a\":1}".into()),
        ),
        (
            ColumnType::Uuid,
            s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            Value::String("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
        ),
        (
            ColumnType::Enum(colors.clone()),
            s("green"),
            Value::String("green".into()),
        ),
        (
            ColumnType::EnumSet(colors),
            s("red,green"),
            Value::String("red,green".into()),
        ),
        (
            ColumnType::Bits { length: 10 },
            b(&[0x01, 0x02]),
            Value::Bytes(vec![0x01, 0x02]),
        ),
        (
            ColumnType::Array(Box::new(ColumnType::Int16)),
            Datum::Array(vec![Datum::Int(1), Datum::Null, Datum::Int(-3)]),
            Value::Array(vec![some(Value::Int(1)), none(), some(Value::Int(-3))]),
        ),
        (ColumnType::Xml, s("<a/>"), Value::String("<a/>".into())),
        (ColumnType::Ltree, s("a.b.c"), Value::String("a.b.c".into())),
        (
            ColumnType::TsVector,
            s("'a':1"),
            Value::String("'a':1".into()),
        ),
        (
            ColumnType::Geometry,
            Datum::Geometry {
                wkb: Cow::Owned(vec![1, 1, 0, 0, 0]),
                srid: Some(4326),
            },
            geometry(&[1, 1, 0, 0, 0], Some(4326)),
        ),
    ]
}

/// A Debezium Geometry record as apache-avro decodes it.
fn geometry(wkb: &[u8], srid: Option<i32>) -> Value {
    Value::Record(vec![
        ("wkb".into(), Value::Bytes(wkb.to_vec())),
        (
            "srid".into(),
            match srid {
                Some(srid) => some(Value::Int(srid)),
                None => none(),
            },
        ),
    ])
}

/// A table with a non-optional and an optional column of every type, key on the first.
fn all_types_table() -> TableSchema {
    let mut columns = Vec::new();
    for (i, (ty, _, _)) in all_types().into_iter().enumerate() {
        columns.push(col(&format!("c{i}"), ty.clone(), false));
        columns.push(col(&format!("o{i}"), ty, true));
    }
    table(columns, vec![0, 2])
}

#[test]
fn every_column_type_round_trips_through_apache_avro() {
    let t = all_types_table();
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let mut row = Vec::new();
    for (_, datum, _) in all_types() {
        row.push(datum.clone());
        row.push(datum);
    }
    let ev = event(&t, Op::Create, None, Some(&row));
    let mut out = Vec::new();
    codec.encode_value(&ev, 42, &mut out).unwrap();
    let value = decode(codec.value_schema(), &out, 42);
    assert_eq!(field(&value, "before"), &none());
    let after = after(&value);
    for (i, (ty, _, expected)) in all_types().into_iter().enumerate() {
        assert_eq!(field(after, &format!("c{i}")), &expected, "{ty:?}");
        assert_eq!(
            field(after, &format!("o{i}")),
            &some(expected),
            "optional {ty:?}"
        );
    }
}

#[test]
fn nulls_in_optional_columns_are_the_null_branch() {
    let t = all_types_table();
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let mut row = Vec::new();
    for (_, datum, _) in all_types() {
        row.push(datum);
        row.push(Datum::Null);
    }
    let ev = event(&t, Op::Update, Some(&row), Some(&row));
    let mut out = Vec::new();
    codec.encode_value(&ev, 1, &mut out).unwrap();
    let value = decode(codec.value_schema(), &out, 1);
    for i in 0..all_types().len() {
        assert_eq!(field(after(&value), &format!("o{i}")), &none());
    }
}

#[test]
fn nulls_in_non_optional_columns_are_debeziums_zero_values() {
    let t = all_types_table();
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let row = vec![Datum::Null; t.columns.len()];
    let ev = event(&t, Op::Delete, Some(&row), None);
    let mut out = Vec::new();
    codec.encode_value(&ev, 1, &mut out).unwrap();
    let value = decode(codec.value_schema(), &out, 1);
    let Value::Union(1, before) = field(&value, "before") else {
        panic!("no before")
    };
    let zero = |ty: &ColumnType| match ty {
        ColumnType::Boolean => Value::Boolean(false),
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Date | ColumnType::Time => {
            Value::Int(0)
        }
        ColumnType::Year => Value::Int(0),
        ColumnType::Int64
        | ColumnType::MicroTime
        | ColumnType::Timestamp
        | ColumnType::MicroTimestamp
        | ColumnType::MicroDuration => Value::Long(0),
        ColumnType::Float32 => Value::Float(0.0),
        ColumnType::Float64 => Value::Double(0.0),
        ColumnType::Bytes | ColumnType::Bits { .. } => Value::Bytes(vec![]),
        ColumnType::Decimal { .. } => dec(&[0]),
        ColumnType::VariableScaleDecimal => Value::Record(vec![
            ("scale".into(), Value::Int(0)),
            ("value".into(), Value::Bytes(vec![0])),
        ]),
        ColumnType::ZonedTimestamp => Value::String("1970-01-01T00:00:00Z".into()),
        ColumnType::ZonedTime => Value::String("00:00:00Z".into()),
        ColumnType::Array(_) => Value::Array(vec![]),
        ColumnType::Geometry => geometry(&[], None),
        _ => Value::String(String::new()),
    };
    for (i, (ty, _, _)) in all_types().into_iter().enumerate() {
        assert_eq!(field(before, &format!("c{i}")), &zero(&ty), "{ty:?}");
        assert_eq!(field(before, &format!("o{i}")), &none());
    }
}

#[test]
fn the_envelope_carries_source_transaction_op_and_timestamps() {
    let t = table(vec![col("id", ColumnType::Int32, false)], vec![0]);
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let row = [Datum::Int(7)];
    let mut ev = event(&t, Op::Create, None, Some(&row));
    ev.transaction = Some(TransactionInfo {
        id: Cow::Borrowed("777:200"),
        total_order: 3,
        data_collection_order: 2,
    });
    let mut out = Vec::new();
    codec.encode_value(&ev, 9, &mut out).unwrap();
    let value = decode(codec.value_schema(), &out, 9);
    assert_eq!(
        field(&value, "source"),
        &Value::Record(vec![
            (
                "version".into(),
                Value::String(DEFAULT_SOURCE_VERSION.into())
            ),
            ("connector".into(), Value::String("postgresql".into())),
            ("name".into(), Value::String("srv".into())),
            ("ts_ms".into(), Value::Long(1_700_000_000_123)),
            (
                "snapshot".into(),
                Value::Union(0, Box::new(Value::String("false".into())))
            ),
            ("db".into(), Value::String("shop".into())),
            (
                "sequence".into(),
                some(Value::String("[\"100\",\"200\"]".into()))
            ),
            ("ts_us".into(), some(Value::Long(1_700_000_000_123_456))),
            ("ts_ns".into(), some(Value::Long(1_700_000_000_123_456_000))),
            ("schema".into(), Value::String("public".into())),
            ("table".into(), Value::String("t".into())),
            ("txId".into(), some(Value::Long(777))),
            ("lsn".into(), some(Value::Long(200))),
            ("xmin".into(), none()),
        ])
    );
    assert_eq!(
        field(&value, "transaction"),
        &some(Value::Record(vec![
            ("id".into(), Value::String("777:200".into())),
            ("total_order".into(), Value::Long(3)),
            ("data_collection_order".into(), Value::Long(2)),
        ]))
    );
    assert_eq!(field(&value, "op"), &Value::String("c".into()));
    assert_eq!(
        field(&value, "ts_ms"),
        &some(Value::Long(1_700_000_001_000))
    );
    assert_eq!(
        field(&value, "ts_us"),
        &some(Value::Long(1_700_000_001_000_001))
    );
    assert_eq!(
        field(&value, "ts_ns"),
        &some(Value::Long(1_700_000_001_000_001_000))
    );
}

#[test]
fn truncate_events_have_neither_before_nor_after() {
    let t = table(vec![col("id", ColumnType::Int32, false)], vec![0]);
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Truncate, None, None), 1, &mut out)
        .unwrap();
    let value = decode(codec.value_schema(), &out, 1);
    assert_eq!(field(&value, "before"), &none());
    assert_eq!(field(&value, "after"), &none());
    assert_eq!(field(&value, "op"), &Value::String("t".into()));
}

#[test]
fn snapshot_markers_and_overflowing_nanoseconds_are_written_as_debezium_would() {
    let t = table(vec![col("id", ColumnType::Int32, false)], vec![0]);
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let row = [Datum::Int(1)];
    let mut ev = event(&t, Op::Read, None, Some(&row));
    ev.processed_us = i64::MAX;
    let SourceBlock::Postgres(src) = &mut ev.source else {
        unreachable!("a postgres event")
    };
    src.snapshot = "first_in_data_collection";
    src.ts_us = -1;
    let mut out = Vec::new();
    codec.encode_value(&ev, 1, &mut out).unwrap();
    let value = decode(codec.value_schema(), &out, 1);
    let src = field(&value, "source");
    assert_eq!(
        field(src, "snapshot"),
        &Value::Union(
            0,
            Box::new(Value::String("first_in_data_collection".into()))
        )
    );
    assert_eq!(field(src, "ts_ms"), &Value::Long(-1));
    assert_eq!(field(&value, "ts_ns"), &none());
    assert_eq!(field(&value, "op"), &Value::String("r".into()));
}

#[test]
fn key_records_hold_the_key_columns_in_key_order() {
    let t = table(
        vec![
            col("a", ColumnType::Int32, false),
            col("b", ColumnType::String, false),
            col("c", ColumnType::Uuid, true),
        ],
        vec![2, 0],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    assert_eq!(
        codec.key_schema(),
        Some(
            "{\"type\":\"record\",\"name\":\"Key\",\"namespace\":\"srv.public.t\",\"fields\":[{\"name\":\"c\",\"type\":[\"null\",{\"type\":\"string\",\"connect.version\":1,\"connect.name\":\"io.debezium.data.Uuid\"}],\"default\":null},{\"name\":\"a\",\"type\":\"int\"}],\"connect.name\":\"srv.public.t.Key\"}"
        )
    );
    let row = [Datum::Int(5), s("x"), s("u-1")];
    let mut out = Vec::new();
    codec.encode_key(&row, 0x0102_0304, &mut out).unwrap();
    assert_eq!(&out[..5], &[0, 1, 2, 3, 4]);
    let key = decode(codec.key_schema().unwrap(), &out, 0x0102_0304);
    assert_eq!(
        key,
        Value::Record(vec![
            ("c".into(), some(Value::String("u-1".into()))),
            ("a".into(), Value::Int(5)),
        ])
    );
}

#[test]
fn keyless_tables_have_no_key_schema_and_refuse_to_encode_keys() {
    let t = table(vec![col("a", ColumnType::Int32, true)], vec![]);
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    assert_eq!(codec.key_schema(), None);
    let mut out = vec![9];
    assert!(matches!(
        codec.encode_key(&[Datum::Int(1)], 1, &mut out),
        Err(EncodeError::NoKey { .. })
    ));
    assert_eq!(out, vec![9]);
}

#[test]
fn framing_is_the_magic_byte_and_a_big_endian_schema_id_appended_to_the_buffer() {
    let t = table(vec![col("id", ColumnType::Int64, false)], vec![0]);
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let mut out = b"prefix".to_vec();
    codec
        .encode_key(&[Datum::Int(-1)], u32::MAX, &mut out)
        .unwrap();
    assert_eq!(
        out,
        [b"prefix".as_slice(), &[0, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]].concat()
    );
}

#[test]
fn the_envelope_schema_is_exactly_what_debezium_and_avrodata_register() {
    let columns = vec![
        col("employee_id", ColumnType::Int32, false),
        col("last_name", ColumnType::String, false),
        col("first_name", ColumnType::String, false),
        col("title", ColumnType::String, true),
        col("reports_to", ColumnType::Int32, true),
        col("birth_date", ColumnType::MicroTimestamp, true),
        col("hire_date", ColumnType::MicroTimestamp, true),
    ]
    .into_iter()
    .chain(
        [
            "address",
            "city",
            "state",
            "country",
            "postal_code",
            "phone",
            "fax",
            "email",
        ]
        .iter()
        .map(|n| col(n, ColumnType::String, true)),
    )
    .collect();
    let t = TableSchema {
        id: TableId::new("public", "employee"),
        columns,
        key: vec![0],
    };
    let codec = TableCodec::new("chinook", &t, ConnectorKind::Postgres).unwrap();
    assert_eq!(codec.value_schema(), EMPLOYEE_ENVELOPE);
    assert_eq!(
        codec.key_schema(),
        Some(
            "{\"type\":\"record\",\"name\":\"Key\",\"namespace\":\"chinook.public.employee\",\"fields\":[{\"name\":\"employee_id\",\"type\":\"int\"}],\"connect.name\":\"chinook.public.employee.Key\"}"
        )
    );
}

#[test]
fn semantic_types_carry_connect_names_versions_and_parameters() {
    let t = table(
        vec![
            col(
                "price",
                ColumnType::Decimal {
                    precision: Some(10),
                    scale: 2,
                },
                false,
            ),
            col(
                "cash",
                ColumnType::Decimal {
                    precision: None,
                    scale: 2,
                },
                false,
            ),
            col("small", ColumnType::Int16, false),
            col(
                "color",
                ColumnType::Enum(vec!["red".into(), "gr\"een".into()]),
                false,
            ),
            col("flags", ColumnType::Bits { length: 12 }, false),
            col("day", ColumnType::Date, false),
        ],
        vec![],
    );
    let schema = TableCodec::new("srv", &t, ConnectorKind::Postgres)
        .unwrap()
        .value_schema()
        .to_owned();
    for expected in [
        "{\"name\":\"price\",\"type\":{\"type\":\"bytes\",\"scale\":2,\"precision\":10,\"connect.version\":1,\"connect.parameters\":{\"scale\":\"2\",\"connect.decimal.precision\":\"10\"},\"connect.name\":\"org.apache.kafka.connect.data.Decimal\",\"logicalType\":\"decimal\"}}",
        "{\"name\":\"cash\",\"type\":{\"type\":\"bytes\",\"scale\":2,\"precision\":64,\"connect.version\":1,\"connect.parameters\":{\"scale\":\"2\"},\"connect.name\":\"org.apache.kafka.connect.data.Decimal\",\"logicalType\":\"decimal\"}}",
        "{\"name\":\"small\",\"type\":{\"type\":\"int\",\"connect.type\":\"int16\"}}",
        "{\"name\":\"color\",\"type\":{\"type\":\"string\",\"connect.version\":1,\"connect.parameters\":{\"allowed\":\"red,gr\\\"een\"},\"connect.name\":\"io.debezium.data.Enum\"}}",
        "{\"name\":\"flags\",\"type\":{\"type\":\"bytes\",\"connect.version\":1,\"connect.parameters\":{\"length\":\"12\"},\"connect.name\":\"io.debezium.data.Bits\"}}",
        "{\"name\":\"day\",\"type\":{\"type\":\"int\",\"connect.version\":1,\"connect.name\":\"io.debezium.time.Date\"}}",
    ] {
        assert!(schema.contains(expected), "missing {expected}\nin {schema}");
    }
    Schema::parse_str(&schema).unwrap();
}

#[test]
fn geometry_is_debeziums_record_defined_once_and_referenced_afterwards() {
    let t = table(
        vec![
            col("id", ColumnType::Int32, false),
            col("a", ColumnType::Geometry, false),
            col("b", ColumnType::Geometry, true),
        ],
        vec![0],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let schema = codec.value_schema();
    assert_eq!(schema.matches("\"name\":\"Geometry\"").count(), 1);
    assert!(schema.contains(
        "{\"type\":\"record\",\"name\":\"Geometry\",\"namespace\":\"io.debezium.data.geometry\",\"fields\":[{\"name\":\"wkb\",\"type\":\"bytes\"},{\"name\":\"srid\",\"type\":[\"null\",\"int\"],\"default\":null}],\"connect.doc\":\"Geometry\",\"connect.version\":1,\"connect.name\":\"io.debezium.data.geometry.Geometry\"}"
    ));
    assert!(schema.contains("[\"null\",\"io.debezium.data.geometry.Geometry\"]"));
    let row = [
        Datum::Int(1),
        Datum::Geometry {
            wkb: Cow::Owned(vec![1, 2, 3]),
            srid: None,
        },
        Datum::Geometry {
            wkb: Cow::Owned(vec![4]),
            srid: Some(0),
        },
    ];
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Create, None, Some(&row)), 3, &mut out)
        .unwrap();
    let value = decode(codec.value_schema(), &out, 3);
    assert_eq!(field(after(&value), "a"), &geometry(&[1, 2, 3], None));
    assert_eq!(field(after(&value), "b"), &some(geometry(&[4], Some(0))));
}

#[test]
fn points_are_debeziums_point_record_with_x_and_y_from_the_wkb() {
    let t = table(
        vec![
            col("id", ColumnType::Int32, false),
            col("p", ColumnType::Point, true),
            col("q", ColumnType::Point, false),
        ],
        vec![0],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let schema = codec.value_schema();
    assert!(schema.contains(
        "{\"type\":\"record\",\"name\":\"Point\",\"namespace\":\"io.debezium.data.geometry\",\"fields\":[{\"name\":\"x\",\"type\":\"double\"},{\"name\":\"y\",\"type\":\"double\"},{\"name\":\"wkb\",\"type\":[\"null\",\"bytes\"],\"default\":null},{\"name\":\"srid\",\"type\":[\"null\",\"int\"],\"default\":null}],\"connect.doc\":\"Geometry (POINT)\",\"connect.version\":1,\"connect.name\":\"io.debezium.data.geometry.Point\"}"
    ));
    assert_eq!(schema.matches("\"name\":\"Point\"").count(), 1);
    // POINT(1 2), little-endian WKB, and the same point big-endian
    let le =
        b"\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\x00\x40";
    let be =
        b"\x00\x00\x00\x00\x01\x3f\xf0\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00";
    let row = [
        Datum::Int(1),
        Datum::Geometry {
            wkb: Cow::Owned(le.to_vec()),
            srid: Some(4326),
        },
        Datum::Geometry {
            wkb: Cow::Owned(be.to_vec()),
            srid: None,
        },
    ];
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Create, None, Some(&row)), 3, &mut out)
        .unwrap();
    let value = decode(codec.value_schema(), &out, 3);
    let point = |x: f64, y: f64, wkb: &[u8], srid: Option<i32>| {
        Value::Record(vec![
            ("x".into(), Value::Double(x)),
            ("y".into(), Value::Double(y)),
            ("wkb".into(), some(Value::Bytes(wkb.to_vec()))),
            (
                "srid".into(),
                srid.map_or_else(none, |s| some(Value::Int(s))),
            ),
        ])
    };
    assert_eq!(
        field(after(&value), "p"),
        &some(point(1.0, 2.0, le, Some(4326)))
    );
    assert_eq!(field(after(&value), "q"), &point(1.0, 2.0, be, None));
    // a linestring in a POINT column is refused, not mislabelled
    let bad = [
        Datum::Int(1),
        Datum::Null,
        Datum::Geometry {
            wkb: Cow::Owned(vec![1, 2, 0, 0, 0, 0, 0, 0, 0]),
            srid: None,
        },
    ];
    assert!(codec
        .encode_value(&event(&t, Op::Create, None, Some(&bad)), 3, &mut Vec::new())
        .is_err());
}

#[test]
fn variable_scale_decimal_is_defined_once_and_referenced_afterwards() {
    let t = table(
        vec![
            col("a", ColumnType::VariableScaleDecimal, false),
            col("b", ColumnType::VariableScaleDecimal, true),
            col(
                "c",
                ColumnType::Array(Box::new(ColumnType::VariableScaleDecimal)),
                true,
            ),
        ],
        vec![0],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    for schema in [codec.value_schema(), codec.key_schema().unwrap()] {
        assert_eq!(
            schema.matches("\"name\":\"VariableScaleDecimal\"").count(),
            1
        );
        assert!(schema.contains(
            "{\"type\":\"record\",\"name\":\"VariableScaleDecimal\",\"namespace\":\"io.debezium.data\",\"fields\":[{\"name\":\"scale\",\"type\":\"int\"},{\"name\":\"value\",\"type\":\"bytes\"}],\"connect.doc\":\"Variable scaled decimal\",\"connect.version\":1,\"connect.name\":\"io.debezium.data.VariableScaleDecimal\"}"
        ));
    }
    assert!(codec
        .value_schema()
        .contains("[\"null\",\"io.debezium.data.VariableScaleDecimal\"]"));
    let row = [
        d(&[1], 0),
        d(&[0xFF], 5),
        Datum::Array(vec![d(&[2], 1), Datum::Null]),
    ];
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Create, None, Some(&row)), 3, &mut out)
        .unwrap();
    let value = decode(codec.value_schema(), &out, 3);
    let vsd = |scale, bytes: &[u8]| {
        Value::Record(vec![
            ("scale".into(), Value::Int(scale)),
            ("value".into(), Value::Bytes(bytes.to_vec())),
        ])
    };
    assert_eq!(field(after(&value), "b"), &some(vsd(5, &[0xFF])));
    assert_eq!(
        field(after(&value), "c"),
        &some(Value::Array(vec![some(vsd(1, &[2])), none()]))
    );
}

#[test]
fn schemas_are_deterministic_for_identical_tables() {
    let t = all_types_table();
    let a = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let b = TableCodec::new("srv", &t.clone(), ConnectorKind::Postgres).unwrap();
    assert_eq!(a.value_schema(), b.value_schema());
    assert_eq!(a.key_schema(), b.key_schema());
    let other = TableCodec::new("srv2", &t, ConnectorKind::Postgres).unwrap();
    assert_ne!(a.value_schema(), other.value_schema());
    // Valid JSON whose canonical form apache-avro accepts.
    let parsed = Schema::parse_str(a.value_schema()).unwrap();
    assert_eq!(
        parsed.canonical_form(),
        Schema::parse_str(b.value_schema())
            .unwrap()
            .canonical_form()
    );
    serde_json::from_str::<serde_json::Value>(a.value_schema()).unwrap();
}

#[test]
fn unchanged_toast_values_become_debeziums_placeholder() {
    let t = table(
        vec![
            col("id", ColumnType::Int32, false),
            col("text", ColumnType::String, false),
            col("doc", ColumnType::Json, true),
            col("blob", ColumnType::Bytes, false),
            col(
                "tags",
                ColumnType::Array(Box::new(ColumnType::String)),
                false,
            ),
            col("nums", ColumnType::Array(Box::new(ColumnType::Int32)), true),
            col("big", ColumnType::Array(Box::new(ColumnType::Int64)), false),
            col("amount", ColumnType::VariableScaleDecimal, true),
        ],
        vec![0],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let mut row = vec![Datum::Unchanged; t.columns.len()];
    row[0] = Datum::Int(1);
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Update, None, Some(&row)), 1, &mut out)
        .unwrap();
    let value = decode(codec.value_schema(), &out, 1);
    let after = after(&value);
    let placeholder = "__debezium_unavailable_value";
    let as_ints = |long: bool| {
        placeholder
            .bytes()
            .map(|b| {
                let v = if long {
                    Value::Long(i64::from(b))
                } else {
                    Value::Int(i32::from(b))
                };
                some(v)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(field(after, "text"), &Value::String(placeholder.into()));
    assert_eq!(
        field(after, "doc"),
        &some(Value::String(placeholder.into()))
    );
    assert_eq!(
        field(after, "blob"),
        &Value::Bytes(placeholder.as_bytes().to_vec())
    );
    assert_eq!(
        field(after, "tags"),
        &Value::Array(vec![some(Value::String(placeholder.into()))])
    );
    assert_eq!(field(after, "nums"), &some(Value::Array(as_ints(false))));
    assert_eq!(field(after, "big"), &Value::Array(as_ints(true)));
    assert_eq!(field(after, "amount"), &none());
}

#[test]
fn a_custom_placeholder_and_source_version_are_used() {
    let t = table(vec![col("text", ColumnType::String, false)], vec![]);
    let options = CodecOptions {
        source_version: "3.3.1.Final".into(),
        unavailable_value_placeholder: b"??".to_vec(),
    };
    let codec = TableCodec::with_options("srv", &t, ConnectorKind::Postgres, &options).unwrap();
    let row = [Datum::Unchanged];
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Update, None, Some(&row)), 1, &mut out)
        .unwrap();
    let value = decode(codec.value_schema(), &out, 1);
    assert_eq!(field(after(&value), "text"), &Value::String("??".into()));
    assert_eq!(
        field(field(&value, "source"), "version"),
        &Value::String("3.3.1.Final".into())
    );
}

#[test]
fn unchanged_toast_in_a_non_optional_column_without_placeholder_names_table_and_column() {
    let t = table(
        vec![col("amount", ColumnType::VariableScaleDecimal, false)],
        vec![],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let row = [Datum::Unchanged];
    let mut out = vec![1, 2, 3];
    let err = codec
        .encode_value(&event(&t, Op::Update, None, Some(&row)), 1, &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        EncodeError::Unchanged {
            table: "public.t".into(),
            column: "amount".into(),
            expected: "io.debezium.data.VariableScaleDecimal",
        }
    );
    assert!(err.to_string().contains("public.t.amount"));
    assert_eq!(out, vec![1, 2, 3], "buffer restored");
}

#[test]
fn datums_that_do_not_fit_their_column_are_errors_naming_table_and_column() {
    let t = table(
        vec![
            col("small", ColumnType::Int16, false),
            col("day", ColumnType::Date, true),
            col(
                "price",
                ColumnType::Decimal {
                    precision: Some(5),
                    scale: 2,
                },
                false,
            ),
            col("name", ColumnType::String, false),
            col(
                "list",
                ColumnType::Array(Box::new(ColumnType::Int32)),
                false,
            ),
        ],
        vec![0],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let good = vec![
        Datum::Int(1),
        Datum::Int(1),
        d(&[1], 2),
        s("x"),
        Datum::Array(vec![]),
    ];
    let cases: Vec<(usize, Datum<'static>, &str)> = vec![
        (0, Datum::Int(40_000), "out of range for int16"),
        (
            1,
            Datum::Int(i64::from(i32::MAX) + 1),
            "out of range for io.debezium.time.Date",
        ),
        (2, d(&[1], 3), "scale 3"),
        (2, d(&[], 2), "scale 2"),
        (
            3,
            Datum::Int(1),
            "a int datum does not fit column type string",
        ),
        (
            4,
            Datum::Array(vec![s("x")]),
            "a string datum does not fit column type int32",
        ),
        (
            0,
            Datum::Float(1.0),
            "a float datum does not fit column type int16",
        ),
    ];
    for (index, bad, message) in cases {
        let mut row = good.clone();
        row[index] = bad;
        let mut out = Vec::new();
        let err = codec
            .encode_value(&event(&t, Op::Create, None, Some(&row)), 1, &mut out)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("public.t.{}", t.columns[index].name)),
            "{text}"
        );
        assert!(text.contains(message), "{text} lacks {message}");
        assert!(out.is_empty());
    }
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Create, None, Some(&good)), 1, &mut out)
        .unwrap();
}

#[test]
fn rows_of_the_wrong_length_and_events_of_other_tables_are_errors() {
    let t = table(vec![col("id", ColumnType::Int32, false)], vec![0]);
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let row = [Datum::Int(1), Datum::Int(2)];
    let mut out = Vec::new();
    assert_eq!(
        codec.encode_value(&event(&t, Op::Create, None, Some(&row)), 1, &mut out),
        Err(EncodeError::RowLength {
            table: "public.t".into(),
            expected: 1,
            got: 2
        })
    );
    assert!(matches!(
        codec.encode_key(&row, 1, &mut out),
        Err(EncodeError::RowLength { .. })
    ));
    let mut other = t.clone();
    other.id = TableId::new("public", "u");
    let one = [Datum::Int(1)];
    assert!(matches!(
        codec.encode_value(&event(&other, Op::Create, None, Some(&one)), 1, &mut out),
        Err(EncodeError::WrongTable { .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn bad_key_indexes_are_rejected_when_the_codec_is_built() {
    let t = table(vec![col("id", ColumnType::Int32, false)], vec![1]);
    assert!(matches!(
        TableCodec::new("srv", &t, ConnectorKind::Postgres),
        Err(EncodeError::BadKeyIndex { index: 1, .. })
    ));
}

#[test]
fn invalid_avro_names_are_adjusted_like_debeziums_avro_mode_and_collisions_rejected() {
    assert_eq!(avro_name("ok_Name1"), "ok_Name1");
    assert_eq!(avro_name("my-col"), "my_col");
    assert_eq!(avro_name("1st"), "_st");
    assert_eq!(avro_name("größe"), "gr__e");
    assert_eq!(avro_name(""), "_");
    let t = TableSchema {
        id: TableId::new("my-schema", "2024 orders"),
        columns: vec![col("order-id", ColumnType::Int32, false)],
        key: vec![0],
    };
    let codec = TableCodec::new("prod-eu.cdc", &t, ConnectorKind::Postgres).unwrap();
    assert!(codec
        .value_schema()
        .contains("\"namespace\":\"prod_eu.cdc.my_schema._024_orders\""));
    assert!(codec
        .value_schema()
        .contains("{\"name\":\"order_id\",\"type\":\"int\"}"));
    Schema::parse_str(codec.value_schema()).unwrap();
    let clash = table(
        vec![
            col("a-b", ColumnType::Int32, false),
            col("a_b", ColumnType::Int32, false),
        ],
        vec![],
    );
    assert_eq!(
        TableCodec::new("srv", &clash, ConnectorKind::Postgres).unwrap_err(),
        EncodeError::NameCollision {
            table: "public.t".into(),
            first: "a-b".into(),
            second: "a_b".into(),
            field: "a_b".into(),
        }
    );
}

#[test]
fn special_floats_and_nested_arrays_encode() {
    let t = table(
        vec![
            col("f", ColumnType::Float64, false),
            col("g", ColumnType::Float32, false),
            col(
                "grid",
                ColumnType::Array(Box::new(ColumnType::Array(Box::new(ColumnType::String)))),
                false,
            ),
        ],
        vec![],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let row = [
        Datum::Float(f64::NEG_INFINITY),
        Datum::Float(f64::NAN),
        Datum::Array(vec![
            Datum::Array(vec![s("a"), Datum::Null]),
            Datum::Null,
            Datum::Array(vec![]),
        ]),
    ];
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Create, None, Some(&row)), 1, &mut out)
        .unwrap();
    let value = decode(codec.value_schema(), &out, 1);
    assert_eq!(field(after(&value), "f"), &Value::Double(f64::NEG_INFINITY));
    assert!(matches!(field(after(&value), "g"), Value::Float(v) if v.is_nan()));
    assert_eq!(
        field(after(&value), "grid"),
        &Value::Array(vec![
            some(Value::Array(vec![some(Value::String("a".into())), none()])),
            none(),
            some(Value::Array(vec![])),
        ])
    );
}

#[test]
fn long_arrays_and_strings_use_multi_byte_lengths() {
    let t = table(
        vec![
            col("big", ColumnType::Array(Box::new(ColumnType::Int64)), false),
            col("text", ColumnType::String, false),
        ],
        vec![],
    );
    let codec = TableCodec::new("srv", &t, ConnectorKind::Postgres).unwrap();
    let items: Vec<Datum<'static>> = (0..1000).map(|i| Datum::Int(i * 1_000_003)).collect();
    let text = "x".repeat(100_000);
    let row = [Datum::Array(items), Datum::Str(Cow::Borrowed(&text))];
    let mut out = Vec::new();
    codec
        .encode_value(&event(&t, Op::Create, None, Some(&row)), 1, &mut out)
        .unwrap();
    let value = decode(codec.value_schema(), &out, 1);
    let Value::Array(items) = field(after(&value), "big") else {
        panic!("not an array")
    };
    assert_eq!(items.len(), 1000);
    assert_eq!(items[999], some(Value::Long(999 * 1_000_003)));
    assert_eq!(field(after(&value), "text"), &Value::String(text));
}

#[test]
fn constant_defaults_become_avro_json_of_their_type_and_others_none() {
    use crate::encode::avro::avro_default;
    use std::borrow::Cow;
    assert_eq!(
        avro_default(&ColumnType::Int32, &Datum::Int(5)).as_deref(),
        Some("5")
    );
    assert_eq!(
        avro_default(&ColumnType::Boolean, &Datum::Bool(true)).as_deref(),
        Some("true")
    );
    assert_eq!(
        avro_default(&ColumnType::Float64, &Datum::Float(1.0)).as_deref(),
        Some("1.0")
    );
    assert_eq!(
        avro_default(&ColumnType::Float64, &Datum::Float(f64::NAN)),
        None
    );
    assert_eq!(
        avro_default(
            &ColumnType::String,
            &Datum::Str(Cow::Borrowed("say \"hi\""))
        )
        .as_deref(),
        Some(r#""say \"hi\"""#)
    );
    assert_eq!(
        avro_default(&ColumnType::Bytes, &Datum::Bytes(Cow::Borrowed(b"x"))),
        None
    );
}
