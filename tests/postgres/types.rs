//! Every PostgreSQL column type the agent maps, end to end: a table with one column per type
//! gets typical rows, an all-NULL row and edge values (NaN/±Infinity, infinite and BC
//! dates/timestamps, integer limits, big numerics, empty arrays, arrays with NULLs and quoted
//! elements, unicode, empty strings, …). Rows present before the agent starts come through
//! the snapshot (COPY text), the same rows inserted afterwards through pgoutput; then an
//! update, a primary-key update, a delete and a truncate. Each event is read back from the
//! table topic, decoded with the standard Avro reader through the registry (writer schema by
//! id, as Confluent's deserializer does), and every column is compared with exactly what
//! `docs/postgres-types.md` promises — value and registered schema.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use apache_avro::Decimal;
use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder, Record};
use common::cdc::StackCleanup;
use common::{pg_connect, pg_server_version_num, stack_env, unique_name, FreshPgDb};
use serde_json::{json, Value as J};

const WAIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------
// Expected Avro values (what apache-avro decodes)

fn b(v: bool) -> Avro {
    Avro::Boolean(v)
}
fn int(v: i32) -> Avro {
    Avro::Int(v)
}
fn long(v: i64) -> Avro {
    Avro::Long(v)
}
fn s(v: &str) -> Avro {
    Avro::String(v.into())
}
fn bytes(v: &[u8]) -> Avro {
    Avro::Bytes(v.to_vec())
}
/// A Connect Decimal: the unscaled value's exact big-endian two's-complement bytes.
fn dec(unscaled: &[u8]) -> Avro {
    Avro::Decimal(Decimal::from(unscaled))
}
/// `io.debezium.data.VariableScaleDecimal`.
fn vsd(scale: i32, unscaled: &[u8]) -> Avro {
    Avro::Record(vec![
        ("scale".into(), Avro::Int(scale)),
        ("value".into(), Avro::Bytes(unscaled.to_vec())),
    ])
}
/// An array; its items are `["null", T]` unions.
fn arr(items: Vec<Avro>) -> Avro {
    Avro::Array(
        items
            .into_iter()
            .map(|v| match v {
                Avro::Null => Avro::Union(0, Box::new(Avro::Null)),
                v => Avro::Union(1, Box::new(v)),
            })
            .collect(),
    )
}
const NULL: Avro = Avro::Null;

/// Exact equality: floats bit for bit (any NaN equals any NaN), decimals byte for byte.
fn same(a: &Avro, b: &Avro) -> bool {
    match (a, b) {
        (Avro::Float(x), Avro::Float(y)) => x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan(),
        (Avro::Double(x), Avro::Double(y)) => {
            x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan()
        }
        (Avro::Decimal(x), Avro::Decimal(y)) => {
            Vec::<u8>::try_from(x).unwrap() == Vec::<u8>::try_from(y).unwrap()
        }
        (Avro::Array(x), Avro::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Avro::Union(i, x), Avro::Union(j, y)) => i == j && same(x, y),
        (Avro::Record(x), Avro::Record(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((n, x), (m, y))| n == m && same(x, y))
        }
        _ => a == b,
    }
}

/// Readable form of a value for failure messages (decimals as their bytes).
fn show(v: &Avro) -> String {
    match v {
        Avro::Decimal(d) => format!("Decimal({:02X?})", Vec::<u8>::try_from(d).unwrap()),
        Avro::Union(i, v) => format!("Union({i}, {})", show(v)),
        Avro::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        other => format!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Expected Avro schemas (docs/postgres-types.md, "Avro form")

fn semantic(avro: &str, name: &str) -> J {
    json!({"type": avro, "connect.version": 1, "connect.name": name})
}
fn decimal(precision: Option<u32>, scale: u32) -> J {
    let mut params = json!({"scale": scale.to_string()});
    if let Some(p) = precision {
        params["connect.decimal.precision"] = json!(p.to_string());
    }
    json!({
        "type": "bytes", "scale": scale, "precision": precision.unwrap_or(64),
        "connect.version": 1, "connect.parameters": params,
        "connect.name": "org.apache.kafka.connect.data.Decimal", "logicalType": "decimal"
    })
}
fn array(items: J) -> J {
    json!({"type": "array", "items": ["null", items]})
}
fn bits(length: u32) -> J {
    json!({"type": "bytes", "connect.version": 1,
           "connect.parameters": {"length": length.to_string()},
           "connect.name": "io.debezium.data.Bits"})
}
fn mood() -> J {
    json!({"type": "string", "connect.version": 1,
           "connect.parameters": {"allowed": "sad,ok,happy,très bien"},
           "connect.name": "io.debezium.data.Enum"})
}
fn variable_scale_decimal() -> J {
    json!({"type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
           "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
           "connect.doc": "Variable scaled decimal", "connect.version": 1,
           "connect.name": "io.debezium.data.VariableScaleDecimal"})
}

// ---------------------------------------------------------------------------------------
// The table: one nullable column per type, with the SQL literal and the expected event value
// of each value set.

/// Which values a row holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Set {
    Typical,
    /// Every nullable column NULL.
    Nulls,
    Edge,
    /// More edge values, written by an UPDATE (streamed only).
    Edge2,
}

struct Col {
    name: &'static str,
    sql_type: &'static str,
    schema: J,
    /// (SQL literal, expected value) for Typical, Edge, Edge2.
    values: [(&'static str, Avro); 3],
}

fn col(
    name: &'static str,
    sql_type: &'static str,
    schema: J,
    typical: (&'static str, Avro),
    edge: (&'static str, Avro),
    edge2: (&'static str, Avro),
) -> Col {
    Col {
        name,
        sql_type,
        schema,
        values: [typical, edge, edge2],
    }
}

impl Col {
    fn value(&self, set: Set) -> (&'static str, Avro) {
        match set {
            Set::Typical => self.values[0].clone(),
            Set::Nulls => ("NULL", NULL),
            Set::Edge => self.values[1].clone(),
            Set::Edge2 => self.values[2].clone(),
        }
    }
}

/// The NOT NULL text column `c_label` (a plain `string`, not a union): `\N` in the edge row
/// checks that the snapshot does not take the text `\N` for COPY's NULL marker.
fn label(set: Set) -> (&'static str, &'static str) {
    match set {
        Set::Typical => ("'typical'", "typical"),
        Set::Nulls => ("'nulls'", "nulls"),
        Set::Edge => ("'\\N'", "\\N"),
        Set::Edge2 => ("''", ""),
    }
}

#[rustfmt::skip]
fn columns() -> Vec<Col> {
    let zoned_ts = || semantic("string", "io.debezium.time.ZonedTimestamp");
    vec![
        col("c_bool", "bool", json!("boolean"),
            ("true", b(true)), ("false", b(false)), ("false", b(false))),
        col("c_int2", "int2", json!({"type": "int", "connect.type": "int16"}),
            ("'12'", int(12)), ("'-32768'", int(-32768)), ("'32767'", int(32767))),
        col("c_int4", "int4", json!("int"),
            ("42", int(42)), ("'-2147483648'", int(i32::MIN)), ("'2147483647'", int(i32::MAX))),
        col("c_int8", "int8", json!("long"),
            ("9000000000", long(9_000_000_000)),
            ("'9223372036854775807'", long(i64::MAX)),
            ("'-9223372036854775808'", long(i64::MIN))),
        col("c_float4", "float4", json!("float"),
            ("'1.1'", Avro::Float(1.1)), ("'NaN'", Avro::Float(f32::NAN)),
            ("'-Infinity'", Avro::Float(f32::NEG_INFINITY))),
        col("c_float8", "float8", json!("double"),
            ("'3.141592653589793'", Avro::Double(std::f64::consts::PI)),
            ("'Infinity'", Avro::Double(f64::INFINITY)), ("'NaN'", Avro::Double(f64::NAN))),
        col("c_numeric_p", "numeric(10,2)", decimal(Some(10), 2),
            ("'-123.45'", dec(&[0xCF, 0xC7])),
            // NaN cannot be a precise decimal: null in a nullable column.
            ("'NaN'", NULL),
            ("'99999999.99'", dec(&[0x02, 0x54, 0x0B, 0xE3, 0xFF]))),
        col("c_numeric_neg", "numeric(5,-2)", decimal(Some(7), 0),
            ("'12345'", dec(&[0x30, 0x0C])), // stored as 12300
            ("'-9999900'", dec(&[0xFF, 0x67, 0x69, 0xE4])),
            ("'0'", dec(&[0x00]))),
        col("c_numeric_wide", "numeric(40,5)", decimal(Some(40), 5),
            ("'1.5'", dec(&[0x02, 0x49, 0xF0])), // 150000 at scale 5
            ("'-99999999999999999999999999999999999.99999'",
             dec(&[0xE2, 0x9C, 0xD6, 0x0E, 0x3C, 0xA3, 0x5B, 0x40, 0x54, 0x46, 0x0A, 0x9F,
                   0x00, 0x00, 0x00, 0x00, 0x01])),
            ("'12345678901234567890123456789012345.12345'",
             dec(&[0x03, 0xA0, 0xC9, 0x20, 0x75, 0xC0, 0xDB, 0xF3, 0xB8, 0xAC, 0xBC, 0x5F,
                   0x96, 0xCE, 0x3E, 0x31, 0xD9]))),
        col("c_numeric", "numeric", variable_scale_decimal(),
            ("'123.4500'", vsd(2, &[0x30, 0x39])),
            ("'-123456789012345678901234567890123456789012345.678900'",
             vsd(4, &[0xFF, 0x27, 0xC0, 0x0F, 0xA8, 0xA2, 0x1A, 0x60, 0x56, 0x44, 0xC8, 0xF4,
                      0x5A, 0x1A, 0x52, 0x67, 0xD7, 0x51, 0xC6, 0x7E, 0xEB])),
            ("'-Infinity'", NULL)),
        col("c_text", "text", json!("string"),
            ("'héllo wörld ✓ 🦀'", s("héllo wörld ✓ 🦀")),
            // Every character COPY escapes, and a \N inside a longer value.
            ("E'tab\\there\\nnewline\\rcr\\\\back \\\\N \"dq\" ''sq'' \\x01\\x0b\\x08\\x0c end'",
             s("tab\there\nnewline\rcr\\back \\N \"dq\" 'sq' \u{1}\u{b}\u{8}\u{c} end")),
            ("''", s(""))),
        col("c_varchar", "varchar(50)", json!("string"),
            ("'varchar value'", s("varchar value")), ("''", s("")), ("'ünï'", s("ünï"))),
        col("c_char", "char(4)", json!("string"),
            ("'ab'", s("ab  ")), ("''", s("    ")), ("'abcd'", s("abcd"))),
        col("c_bytea", "bytea", json!("bytes"),
            ("'\\x00ff5c'", bytes(&[0x00, 0xFF, 0x5C])), ("'\\x'", bytes(&[])),
            ("'\\x5c0a0d09'", bytes(&[0x5C, 0x0A, 0x0D, 0x09]))),
        col("c_uuid", "uuid", semantic("string", "io.debezium.data.Uuid"),
            ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
            ("'00000000-0000-0000-0000-000000000000'", s("00000000-0000-0000-0000-000000000000")),
            ("'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))),
        col("c_date", "date", semantic("int", "io.debezium.time.Date"),
            ("'2024-02-29'", int(19782)), ("'infinity'", int(2_146_033_979)),
            ("'-infinity'", int(-2_147_472_691))),
        col("c_time", "time", semantic("long", "io.debezium.time.MicroTime"),
            ("'12:00:00.5'", long(43_200_500_000)), ("'24:00:00'", long(86_400_000_000)),
            ("'00:00:00'", long(0))),
        col("c_time3", "time(3)", semantic("int", "io.debezium.time.Time"),
            ("'10:00:00.123'", int(36_000_123)), ("'23:59:59.999'", int(86_399_999)),
            ("'24:00:00'", int(86_400_000))),
        col("c_timetz", "timetz", semantic("string", "io.debezium.time.ZonedTime"),
            ("'10:15:30.123+05:30'", s("04:45:30.123Z")), ("'24:00:00+00'", s("00:00:00Z")),
            ("'23:00:00-02'", s("01:00:00Z"))),
        col("c_timestamp", "timestamp", semantic("long", "io.debezium.time.MicroTimestamp"),
            ("'2024-01-02 03:04:05.123456'", long(1_704_164_645_123_456)),
            ("'0044-03-15 12:00:00.000001 BC'", long(-63_517_780_799_999_999)),
            ("'infinity'", long(9_223_372_036_825_200_000))),
        col("c_timestamp3", "timestamp(3)", semantic("long", "io.debezium.time.Timestamp"),
            ("'2024-01-02 03:04:05.123'", long(1_704_164_645_123)),
            ("'-infinity'", long(-9_223_372_036_832_400)),
            ("'infinity'", long(9_223_372_036_825_200))),
        col("c_timestamptz", "timestamptz", zoned_ts(),
            ("'2024-01-01 01:30:00+05:30'", s("2023-12-31T20:00:00Z")),
            ("'infinity'", s("infinity")), ("'-infinity'", s("-infinity"))),
        col("c_interval", "interval", semantic("long", "io.debezium.time.MicroDuration"),
            // 14 months of 365.25/12 days + 3 days + 4:05:06.5
            ("'1 year 2 mons 3 days 04:05:06.5'", long(37_091_106_500_000)),
            // beyond ±292271 years: saturated
            ("'-178000000 years'", long(i64::MIN)),
            ("'1 mon -1 days -00:00:00.000001'", long(2_543_399_999_999))),
        col("c_json", "json", semantic("string", "io.debezium.data.Json"),
            (r#"'{"b": 1, "a": [1, 2]}'"#, s(r#"{"b": 1, "a": [1, 2]}"#)),
            (r#"'{"k": "v\u00e9", "n": null}'"#, s(r#"{"k": "v\u00e9", "n": null}"#)),
            ("'[]'", s("[]"))),
        col("c_jsonb", "jsonb", semantic("string", "io.debezium.data.Json"),
            (r#"'{"b": 1, "a": [1, 2]}'"#, s(r#"{"a": [1, 2], "b": 1}"#)),
            (r#"'{"k": "v\u00e9", "n": null}'"#, s(r#"{"k": "vé", "n": null}"#)),
            (r#"'"str"'"#, s(r#""str""#))),
        col("c_int_arr", "int4[]", array(json!("int")),
            ("'{1,NULL,3}'", arr(vec![int(1), NULL, int(3)])),
            ("'{}'", arr(vec![])),
            ("'{-2147483648,2147483647}'", arr(vec![int(i32::MIN), int(i32::MAX)]))),
        col("c_text_arr", "text[]", array(json!("string")),
            ("'{alpha,beta}'", arr(vec![s("alpha"), s("beta")])),
            (r#"'{"a,b","with \"quote\"",NULL,"NULL",""," spaced ","back\\slash","\\N",ü,"{x}"}'"#,
             arr(vec![s("a,b"), s("with \"quote\""), NULL, s("NULL"), s(""), s(" spaced "),
                      s("back\\slash"), s("\\N"), s("ü"), s("{x}")])),
            ("'{}'", arr(vec![]))),
        col("c_int_2d", "int4[][]", array(json!("int")),
            ("'{{1,2},{3,4}}'", arr(vec![int(1), int(2), int(3), int(4)])),
            ("'[0:1][1:2]={{5,6},{7,NULL}}'", arr(vec![int(5), int(6), int(7), NULL])),
            ("'{{{1}},{{2}}}'", arr(vec![int(1), int(2)]))),
        col("c_enum", "mood", mood(),
            ("'happy'", s("happy")), ("'très bien'", s("très bien")), ("'sad'", s("sad"))),
        col("c_enum_arr", "mood[]", array(mood()),
            ("'{sad,happy}'", arr(vec![s("sad"), s("happy")])),
            (r#"'{"très bien",NULL}'"#, arr(vec![s("très bien"), NULL])),
            ("'{}'", arr(vec![]))),
        col("c_domain", "price", decimal(Some(10), 2),
            ("'19.99'", dec(&[0x07, 0xCF])),
            ("'-99999999.99'", dec(&[0xFD, 0xAB, 0xF4, 0x1C, 0x01])),
            ("'NaN'", NULL)),
        col("c_domain_arr", "price[]", array(decimal(Some(10), 2)),
            ("'{1.5,NULL}'", arr(vec![dec(&[0x00, 0x96]), NULL])),
            ("'{}'", arr(vec![])),
            ("'{0}'", arr(vec![dec(&[0x00])]))),
        col("c_num_arr", "numeric(6,2)[]", array(decimal(Some(6), 2)),
            ("'{1.5,NaN}'", arr(vec![dec(&[0x00, 0x96]), NULL])),
            ("'{9999.99,-9999.99}'", arr(vec![dec(&[0x0F, 0x42, 0x3F]), dec(&[0xF0, 0xBD, 0xC1])])),
            ("'{}'", arr(vec![]))),
        col("c_float_arr", "float8[]", array(json!("double")),
            ("'{1.5,-2.25}'", arr(vec![Avro::Double(1.5), Avro::Double(-2.25)])),
            ("'{NaN,Infinity,-Infinity,-0,1e-300}'",
             arr(vec![Avro::Double(f64::NAN), Avro::Double(f64::INFINITY),
                      Avro::Double(f64::NEG_INFINITY), Avro::Double(-0.0), Avro::Double(1e-300)])),
            ("'{}'", arr(vec![]))),
        col("c_date_arr", "date[]", array(semantic("int", "io.debezium.time.Date")),
            ("'{2024-02-29}'", arr(vec![int(19782)])),
            (r#"'{infinity,-infinity,"0001-01-01 BC",NULL}'"#,
             arr(vec![int(2_146_033_979), int(-2_147_472_691), int(-719_528), NULL])),
            ("'{}'", arr(vec![]))),
        col("c_ts_arr", "timestamp[]", array(semantic("long", "io.debezium.time.MicroTimestamp")),
            (r#"'{"2024-01-02 03:04:05.123456"}'"#, arr(vec![long(1_704_164_645_123_456)])),
            ("'{infinity,-infinity}'",
             arr(vec![long(9_223_372_036_825_200_000), long(-9_223_372_036_832_400_000)])),
            ("'{}'", arr(vec![]))),
        col("c_tstz_arr", "timestamptz[]", array(zoned_ts()),
            (r#"'{"2024-06-30 23:59:59.999999+02"}'"#, arr(vec![s("2024-06-30T21:59:59.999999Z")])),
            (r#"'{-infinity,"0044-03-15 10:00:00+00 BC","10000-01-01 00:00:00+00"}'"#,
             arr(vec![s("-infinity"), s("-0043-03-15T10:00:00Z"), s("+10000-01-01T00:00:00Z")])),
            ("'{}'", arr(vec![]))),
        col("c_inet", "inet", json!("string"),
            ("'192.168.1.10'", s("192.168.1.10")), ("'2001:db8::1/64'", s("2001:db8::1/64")),
            ("'10.0.0.1/32'", s("10.0.0.1"))),
        col("c_cidr", "cidr", json!("string"),
            ("'192.168.0.0/24'", s("192.168.0.0/24")), ("'::/0'", s("::/0")),
            ("'10.0.0.1/32'", s("10.0.0.1/32"))),
        col("c_macaddr", "macaddr", json!("string"),
            ("'08:00:2b:01:02:03'", s("08:00:2b:01:02:03")),
            ("'08-00-2B-01-02-FF'", s("08:00:2b:01:02:ff")),
            ("'ff:ff:ff:ff:ff:ff'", s("ff:ff:ff:ff:ff:ff"))),
        col("c_money", "money", decimal(None, 2),
            ("'12345.678'", dec(&[0x12, 0xD6, 0x88])), // $12,345.68
            ("'-92233720368547758.08'", dec(&[0x80, 0, 0, 0, 0, 0, 0, 0])),
            ("'0'", dec(&[0x00]))),
        col("c_oid", "oid", json!("long"),
            ("'4294967295'", long(4_294_967_295)), ("'0'", long(0)), ("'1'", long(1))),
        col("c_xml", "xml", semantic("string", "io.debezium.data.Xml"),
            (r#"'<a x="1">ü</a>'"#, s(r#"<a x="1">ü</a>"#)), ("'<e/>'", s("<e/>")),
            ("'text'", s("text"))),
        col("c_tsvector", "tsvector", semantic("string", "io.debezium.data.Tsvector"),
            ("'b:2 a:1'", s("'a':1 'b':2")), ("''", s("")), ("'x'", s("'x'"))),
        col("c_int4range", "int4range", json!("string"),
            ("'[1,5)'", s("[1,5)")), ("'empty'", s("empty")), ("'(,3]'", s("(,4)"))),
        col("c_point", "point", json!("string"), // not mapped: PostgreSQL's text form
            ("'(1.5,2)'", s("(1.5,2)")), ("'(-0,1e-300)'", s("(-0,1e-300)")),
            ("'(0,0)'", s("(0,0)"))),
        col("c_macaddr8", "macaddr8", json!("string"),
            ("'08-00-2b-01-02-03-04-05'", s("08:00:2b:01:02:03:04:05")),
            ("'ff:ff:ff:ff:ff:ff:ff:ff'", s("ff:ff:ff:ff:ff:ff:ff:ff")),
            ("'00:00:00:00:00:00:00:00'", s("00:00:00:00:00:00:00:00"))),
        col("c_bit1", "bit(1)", json!("boolean"),
            ("B'1'", b(true)), ("B'0'", b(false)), ("B'1'", b(true))),
        col("c_bit10", "bit(10)", bits(10),
            ("B'1000000001'", bytes(&[0x01, 0x02])), ("B'0000000000'", bytes(&[])),
            ("B'1111111111'", bytes(&[0xFF, 0x03]))),
        col("c_varbit", "varbit", bits(2_147_483_647),
            ("B'101'", bytes(&[0x05])), ("B''", bytes(&[])),
            ("B'100000000'", bytes(&[0x00, 0x01]))),
    ]
}

fn insert_sql(cols: &[Col], id: i32, set: Set) -> String {
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    let values: Vec<&str> = cols.iter().map(|c| c.value(set).0).collect();
    format!(
        "INSERT INTO all_types (id, c_label, {}) VALUES ({id}, {}, {});",
        names.join(", "),
        label(set).0,
        values.join(", ")
    )
}

fn update_sql(cols: &[Col], id: i32, set: Set) -> String {
    let assignments: Vec<String> = cols
        .iter()
        .map(|c| format!("{} = {}", c.name, c.value(set).0))
        .collect();
    format!(
        "UPDATE all_types SET c_label = {}, {} WHERE id = {id};",
        label(set).0,
        assignments.join(", ")
    )
}

// ---------------------------------------------------------------------------------------
// Reading events back

/// Blocking GET from a test thread inside a runtime.
fn get_json(url: &str) -> J {
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { reqwest::get(&url).await.unwrap().json().await.unwrap() })
    })
    .join()
    .unwrap()
}

fn schema_id(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[1..5].try_into().unwrap())
}

/// The writer schema registered under `id`, as JSON.
fn registered_schema(id: u32) -> J {
    let body = get_json(&format!(
        "{}/schemas/ids/{id}",
        stack_env("SCHEMA_REGISTRY_URL")
    ));
    serde_json::from_str(body["schema"].as_str().expect("schema text")).unwrap()
}

/// One decoded table-topic record.
struct Event {
    key: i32,
    /// `None` for a tombstone.
    value: Option<Avro>,
}

impl Event {
    fn op(&self) -> &str {
        match self.value.as_ref().map(|v| field(v, "op")) {
            Some(Avro::String(s)) => s,
            None => "tombstone",
            Some(other) => panic!("op: {other:?}"),
        }
    }

    /// `before` or `after`: `None` when null.
    fn image(&self, which: &str) -> Option<&Avro> {
        match unwrap_union(field(self.value.as_ref().unwrap(), which)) {
            Avro::Null => None,
            row => Some(row),
        }
    }
}

fn decode(dec: &mut AvroDecoder, r: &Record) -> Event {
    let key = match &r.key {
        Some(k) => match field(&dec.decode(k), "id") {
            Avro::Int(i) => *i,
            other => panic!("key id: {other:?}"),
        },
        None => -1,
    };
    Event {
        key,
        value: r.value.as_ref().map(|v| dec.decode(v)),
    }
}

/// Compares every column of a decoded row image with the expected values of `set`; panics
/// listing every mismatch.
fn check_row(what: &str, row: Option<&Avro>, cols: &[Col], id: i32, set: Set) {
    let row = row.unwrap_or_else(|| panic!("{what}: row image is null"));
    let mut bad = Vec::new();
    if field(row, "id") != &Avro::Int(id) {
        bad.push(format!("id: {:?}, expected {id}", field(row, "id")));
    }
    // NOT NULL: a plain string, no union.
    let want_label = Avro::String(label(set).1.into());
    if field(row, "c_label") != &want_label {
        bad.push(format!(
            "c_label: {:?}, expected {want_label:?}",
            field(row, "c_label")
        ));
    }
    for c in cols {
        let actual = field(row, c.name);
        let expected = match c.value(set).1 {
            Avro::Null => Avro::Union(0, Box::new(Avro::Null)),
            v => Avro::Union(1, Box::new(v)),
        };
        if !same(actual, &expected) {
            bad.push(format!(
                "{} ({}): got {}, expected {}",
                c.name,
                c.sql_type,
                show(actual),
                show(&expected)
            ));
        }
    }
    if let Avro::Record(fields) = row {
        assert_eq!(
            fields.len(),
            cols.len() + 2,
            "{what}: unexpected columns in {fields:?}"
        );
    }
    assert!(
        bad.is_empty(),
        "{what} ({set:?} values): {} column(s) differ from docs/postgres-types.md:\n  {}",
        bad.len(),
        bad.join("\n  ")
    );
}

/// The registered value schema: every column's Avro form as the doc gives it.
fn check_value_schema(schema: &J, cols: &[Col]) {
    assert_eq!(schema["name"], "Envelope");
    let value = &schema["fields"][0]["type"][1];
    assert_eq!(value["name"], "Value", "before is [null, Value]: {schema}");
    let fields = value["fields"].as_array().unwrap();
    assert_eq!(fields.len(), cols.len() + 2);
    assert_eq!(fields[0], json!({"name": "id", "type": "int"}));
    assert_eq!(fields[1], json!({"name": "c_label", "type": "string"}));
    let mut bad = Vec::new();
    for (c, f) in cols.iter().zip(&fields[2..]) {
        let expected = json!({"name": c.name, "type": ["null", c.schema], "default": null});
        if f != &expected {
            bad.push(format!(
                "{} ({}):\n    got      {f}\n    expected {expected}",
                c.name, c.sql_type
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "registered schema differs from docs/postgres-types.md:\n  {}",
        bad.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_type_arrives_as_documented_in_snapshot_and_change_events() {
    let db = FreshPgDb::create("pgtypes").await;
    let admin = pg_connect(&db.url).await;
    let mut cols = columns();
    let version = pg_server_version_num(&admin).await;
    if version < 150000 {
        // A negative numeric scale is new in PostgreSQL 15; every other type exists on 12+.
        cols.retain(|c| c.name != "c_numeric_neg");
    }
    if version < 140000 {
        // numeric ±Infinity is new in 14; NaN, the value before it that a precise decimal
        // cannot hold either, takes its place (null in a nullable column, docs/postgres-types.md).
        for c in cols.iter_mut().filter(|c| c.name == "c_numeric") {
            assert_eq!(c.values[2].0, "'-Infinity'");
            c.values[2].0 = "'NaN'";
        }
    }
    let defs: Vec<String> = cols
        .iter()
        .map(|c| format!("{} {}", c.name, c.sql_type))
        .collect();
    admin
        .batch_execute(&format!(
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très bien');
             CREATE DOMAIN price AS numeric(10,2);
             CREATE TABLE all_types (id int PRIMARY KEY, c_label text NOT NULL, {});
             ALTER TABLE all_types REPLICA IDENTITY FULL;
             {} {} {}
             CREATE PUBLICATION cdc_pub FOR TABLE all_types;",
            defs.join(", "),
            insert_sql(&cols, 1, Set::Typical),
            insert_sql(&cols, 2, Set::Nulls),
            insert_sql(&cols, 3, Set::Edge),
        ))
        .await
        .unwrap();

    let name = unique_name("pgtypes");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let agent = Agent::start(&cfg);
    let topic = format!("{name}.public.all_types");

    // The three rows already there come from the snapshot (COPY), …
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 3);
    assert_eq!(recs.len(), 3, "snapshot rows; agent log:\n{}", agent.log());
    agent.wait_streaming(WAIT);
    // … the same values inserted now from pgoutput; then update, key update, delete, truncate.
    admin
        .batch_execute(&format!(
            "{} {} {} {}
             UPDATE all_types SET id = 22 WHERE id = 12;
             DELETE FROM all_types WHERE id = 13;
             TRUNCATE all_types;",
            insert_sql(&cols, 11, Set::Typical),
            insert_sql(&cols, 12, Set::Nulls),
            insert_sql(&cols, 13, Set::Edge),
            update_sql(&cols, 11, Set::Edge2),
        ))
        .await
        .unwrap();
    // r×3, c×3, u, d(12)+tombstone, c(22), d(13)+tombstone, t
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 13);
    assert_eq!(recs.len(), 13, "agent log:\n{}", agent.log());

    let mut dec = AvroDecoder::new();
    let events: Vec<Event> = recs.iter().map(|r| decode(&mut dec, r)).collect();
    let summary: Vec<(&str, i32)> = events.iter().map(|e| (e.op(), e.key)).collect();
    #[rustfmt::skip]
    let expected: [(&str, i32); 13] = [
        ("r", 1), ("r", 2), ("r", 3),
        ("c", 11), ("c", 12), ("c", 13),
        ("u", 11),
        ("d", 12), ("tombstone", 12), ("c", 22),
        ("d", 13), ("tombstone", 13),
        ("t", -1), // truncate: no key
    ];
    assert_eq!(summary, expected, "(op, key) of every record");

    // One writer schema for all events: the snapshot and the stream build the same schema.
    let ids: Vec<u32> = recs
        .iter()
        .filter_map(|r| r.value.as_deref().map(schema_id))
        .collect();
    assert!(ids.iter().all(|&i| i == ids[0]), "value schema ids {ids:?}");
    check_value_schema(&registered_schema(ids[0]), &cols);
    let key_schema = registered_schema(schema_id(recs[0].key.as_deref().unwrap()));
    assert_eq!(key_schema["name"], "Key");
    assert_eq!(key_schema["fields"], json!([{"name": "id", "type": "int"}]));

    let snapshot_flag = |e: &Event| {
        let source = unwrap_union(field(e.value.as_ref().unwrap(), "source"));
        match unwrap_union(field(source, "snapshot")) {
            Avro::String(s) => s.clone(),
            other => panic!("source.snapshot: {other:?}"),
        }
    };

    // Snapshot (COPY text) and stream (pgoutput text) give identical values.
    for (i, set) in [Set::Typical, Set::Nulls, Set::Edge]
        .into_iter()
        .enumerate()
    {
        let (snap, live) = (&events[i], &events[3 + i]);
        assert!(snap.image("before").is_none() && live.image("before").is_none());
        assert_ne!(snapshot_flag(snap), "false", "snapshot event");
        assert_eq!(snapshot_flag(live), "false", "change event");
        check_row("snapshot r", snap.image("after"), &cols, snap.key, set);
        check_row("insert c", live.image("after"), &cols, live.key, set);
    }
    // Update under REPLICA IDENTITY FULL: before is the old row, after the new one.
    let update = &events[6];
    check_row(
        "update before",
        update.image("before"),
        &cols,
        11,
        Set::Typical,
    );
    check_row("update after", update.image("after"), &cols, 11, Set::Edge2);
    // Primary-key change: delete on the old key (+ tombstone), create on the new one.
    check_row(
        "key-change delete",
        events[7].image("before"),
        &cols,
        12,
        Set::Nulls,
    );
    assert!(events[7].image("after").is_none());
    assert!(events[8].value.is_none(), "tombstone after the delete");
    assert!(events[9].image("before").is_none());
    check_row(
        "key-change create",
        events[9].image("after"),
        &cols,
        22,
        Set::Nulls,
    );
    // Delete: the full old row, then a tombstone.
    check_row(
        "delete before",
        events[10].image("before"),
        &cols,
        13,
        Set::Edge,
    );
    assert!(events[10].image("after").is_none());
    assert!(events[11].value.is_none());
    // Truncate: no row images.
    assert!(events[12].image("before").is_none() && events[12].image("after").is_none());
    assert!(recs[12].key.is_none(), "truncate events have no key");
}

/// `NOT NULL` columns under `REPLICA IDENTITY DEFAULT`: an update has no before-image, and
/// the before-image of a delete (also of the delete half of a key change) carries only the
/// key, so every other NOT NULL column holds the type's zero value, as Debezium's converters
/// write it (docs/postgres-types.md, "NULL in a NOT NULL column").
#[tokio::test]
async fn not_null_columns_missing_from_a_default_identity_before_image_hold_zero_values() {
    #[rustfmt::skip]
    let cols: Vec<(&str, &str, &str, Avro, J, Avro)> = vec![
        // (column, type, SQL literal, value, Avro type, zero value)
        ("n_bool", "bool", "true", b(true), json!("boolean"), b(false)),
        ("n_int2", "int2", "'7'", int(7), json!({"type": "int", "connect.type": "int16"}), int(0)),
        ("n_int8", "int8", "'-5'", long(-5), json!("long"), long(0)),
        ("n_float4", "float4", "'2.5'", Avro::Float(2.5), json!("float"), Avro::Float(0.0)),
        ("n_float8", "float8", "'-0.5'", Avro::Double(-0.5), json!("double"), Avro::Double(0.0)),
        ("n_text", "text", "'x'", s("x"), json!("string"), s("")),
        ("n_bytea", "bytea", "'\\x01'", bytes(&[1]), json!("bytes"), bytes(&[])),
        ("n_numeric", "numeric(10,2)", "'1.25'", dec(&[0x7D]), decimal(Some(10), 2), dec(&[0])),
        ("n_varnum", "numeric", "'-1.5'", vsd(1, &[0xF1]), variable_scale_decimal(), vsd(0, &[0])),
        ("n_money", "money", "'1'", dec(&[0x64]), decimal(None, 2), dec(&[0])),
        ("n_date", "date", "'1970-01-02'", int(1), semantic("int", "io.debezium.time.Date"), int(0)),
        ("n_tstz", "timestamptz", "'2024-01-01 00:00:00+00'", s("2024-01-01T00:00:00Z"),
         semantic("string", "io.debezium.time.ZonedTimestamp"), s("1970-01-01T00:00:00Z")),
        ("n_timetz", "timetz", "'12:00:00+00'", s("12:00:00Z"),
         semantic("string", "io.debezium.time.ZonedTime"), s("00:00:00Z")),
        ("n_interval", "interval", "'1 day'", long(86_400_000_000),
         semantic("long", "io.debezium.time.MicroDuration"), long(0)),
        ("n_uuid", "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
         s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), semantic("string", "io.debezium.data.Uuid"),
         s("")),
        ("n_bits", "bit(3)", "B'101'", bytes(&[5]), bits(3), bytes(&[])),
        ("n_arr", "int4[]", "'{1}'", arr(vec![int(1)]), array(json!("int")), arr(vec![])),
    ];
    let db = FreshPgDb::create("pgtypesnn").await;
    let admin = pg_connect(&db.url).await;
    let defs: Vec<String> = cols
        .iter()
        .map(|c| format!("{} {} NOT NULL", c.0, c.1))
        .collect();
    admin
        .batch_execute(&format!(
            "CREATE TABLE required (id int PRIMARY KEY, {}, n_opt text);
             CREATE PUBLICATION cdc_pub FOR TABLE required;",
            defs.join(", ")
        ))
        .await
        .unwrap();
    let name = unique_name("pgtypesnn");
    let _cleanup = StackCleanup {
        prefix: name.clone(),
    };
    let mut cfg = AgentConfig::postgres(&name, &db.name);
    cfg.extra_source_toml =
        format!("[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n");
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let values: Vec<&str> = cols.iter().map(|c| c.2).collect();
    admin
        .batch_execute(&format!(
            "INSERT INTO required (id, {}, n_opt) VALUES (1, {}, 'opt');
             UPDATE required SET n_opt = 'changed' WHERE id = 1;
             UPDATE required SET id = 2 WHERE id = 1;
             DELETE FROM required WHERE id = 2;",
            names.join(", "),
            values.join(", ")
        ))
        .await
        .unwrap();
    let topic = format!("{name}.public.required");
    // c, u, d(1)+tombstone, c(2), d(2)+tombstone
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 7);
    assert_eq!(recs.len(), 7, "agent log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let events: Vec<Event> = recs.iter().map(|r| decode(&mut dec, r)).collect();
    let summary: Vec<(&str, i32)> = events.iter().map(|e| (e.op(), e.key)).collect();
    assert_eq!(
        summary,
        [
            ("c", 1),
            ("u", 1),
            ("d", 1),
            ("tombstone", 1),
            ("c", 2),
            ("d", 2),
            ("tombstone", 2)
        ]
    );

    // NOT NULL columns are plain types in the schema, not unions.
    let schema = registered_schema(schema_id(recs[0].value.as_deref().unwrap()));
    let fields = schema["fields"][0]["type"][1]["fields"]
        .as_array()
        .unwrap()
        .clone();
    for (c, f) in cols.iter().zip(&fields[1..]) {
        assert_eq!(f, &json!({"name": c.0, "type": c.4}), "schema of {}", c.1);
    }

    let check = |what: &str, row: Option<&Avro>, id: i32, zero: bool, opt: Option<&str>| {
        let row = row.unwrap_or_else(|| panic!("{what}: no row image"));
        assert_eq!(field(row, "id"), &Avro::Int(id), "{what}");
        let mut bad = Vec::new();
        for c in &cols {
            let want = if zero { &c.5 } else { &c.3 };
            let got = field(row, c.0);
            if !same(got, want) {
                bad.push(format!(
                    "{} ({}): got {}, expected {}",
                    c.0,
                    c.1,
                    show(got),
                    show(want)
                ));
            }
        }
        assert!(bad.is_empty(), "{what}:\n  {}", bad.join("\n  "));
        let want_opt = match opt {
            Some(v) => Avro::Union(1, Box::new(s(v))),
            None => Avro::Union(0, Box::new(Avro::Null)),
        };
        assert_eq!(field(row, "n_opt"), &want_opt, "{what}: n_opt");
    };
    check(
        "insert after",
        events[0].image("after"),
        1,
        false,
        Some("opt"),
    );
    assert!(
        events[1].image("before").is_none(),
        "update before under DEFAULT identity"
    );
    check(
        "update after",
        events[1].image("after"),
        1,
        false,
        Some("changed"),
    );
    check(
        "key-change delete before",
        events[2].image("before"),
        1,
        true,
        None,
    );
    check(
        "key-change create after",
        events[4].image("after"),
        2,
        false,
        Some("changed"),
    );
    check("delete before", events[5].image("before"), 2, true, None);
}
