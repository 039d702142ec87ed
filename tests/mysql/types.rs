//! Every MariaDB type the issue lists goes DB → agent → Kafka → a standard Avro reader, once
//! through the snapshot and once through the binlog stream: both paths must give the same
//! value, and that value is the one the Debezium MySQL mapping prescribes.

use crate::common;

use std::time::Duration;

use apache_avro::types::Value as Avro;
use common::agent::{field, read_topic, unwrap_union, Agent, AgentConfig, AvroDecoder};
use common::mysql::{my_admin, FreshMyDb};
use common::unique_name;
use mysql_async::prelude::Queryable;

const WAIT: Duration = Duration::from_secs(120);

/// Columns: name, declaration, a value literal.
const COLUMNS: &[(&str, &str, &str)] = &[
    ("c_tinyint", "TINYINT", "-128"),
    ("c_tinyint_u", "TINYINT UNSIGNED", "255"),
    ("c_smallint", "SMALLINT", "-32768"),
    ("c_smallint_u", "SMALLINT UNSIGNED", "65535"),
    ("c_mediumint", "MEDIUMINT", "-8388608"),
    ("c_mediumint_u", "MEDIUMINT UNSIGNED", "16777215"),
    ("c_int", "INT", "-2147483648"),
    ("c_int_u", "INT UNSIGNED", "4294967295"),
    ("c_bigint", "BIGINT", "-9223372036854775808"),
    ("c_bigint_u", "BIGINT UNSIGNED", "18446744073709551615"),
    ("c_decimal", "DECIMAL(10,3)", "-1234567.891"),
    ("c_float", "FLOAT", "1.5"),
    ("c_double", "DOUBLE", "-2.25e100"),
    ("c_date", "DATE", "'2024-01-02'"),
    ("c_time", "TIME(6)", "'-838:59:58.999999'"),
    ("c_datetime", "DATETIME(6)", "'2024-01-02 03:04:05.123456'"),
    ("c_datetime0", "DATETIME", "'1969-12-31 23:59:59'"),
    (
        "c_timestamp",
        "TIMESTAMP(3) NULL",
        "'2024-01-02 03:04:05.123'",
    ),
    ("c_year", "YEAR", "2155"),
    ("c_bit1", "BIT(1)", "b'1'"),
    ("c_bit10", "BIT(10)", "b'1000000001'"),
    ("c_enum", "ENUM('small','Large')", "'Large'"),
    ("c_set", "SET('a','b','c')", "'a,c'"),
    ("c_json", "JSON", "'{\"k\": [1, 2]}'"),
    ("c_char", "CHAR(5)", "'ab'"),
    (
        "c_varchar",
        "VARCHAR(20) CHARACTER SET utf8mb4",
        "'héllo 🎉'",
    ),
    (
        "c_latin1",
        "VARCHAR(20) CHARACTER SET latin1",
        "'caf\u{e9} \u{20ac}'",
    ),
    ("c_text", "TEXT", "'long text'"),
    ("c_binary", "BINARY(3)", "x'00ff01'"),
    ("c_varbinary", "VARBINARY(10)", "x'deadbeef'"),
    ("c_blob", "BLOB", "x'0102'"),
    ("c_point", "POINT", "ST_GeomFromText('POINT(1 2)')"),
];

fn create_sql(t: &str) -> String {
    let cols: Vec<String> = COLUMNS.iter().map(|(n, d, _)| format!("{n} {d}")).collect();
    format!("CREATE TABLE {t} (id INT PRIMARY KEY, {})", cols.join(", "))
}

fn insert_sql(t: &str, id: i64, nulls: bool) -> String {
    let vals: Vec<&str> = COLUMNS
        .iter()
        .map(|(_, _, v)| if nulls { "NULL" } else { *v })
        .collect();
    format!("INSERT INTO {t} VALUES ({id}, {})", vals.join(", "))
}

fn after(dec: &mut AvroDecoder, bytes: &[u8]) -> (String, Avro) {
    let v = dec.decode(bytes);
    let op = match field(&v, "op") {
        Avro::String(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    (op, unwrap_union(field(&v, "after")).clone())
}

fn col(row: &Avro, name: &str) -> Avro {
    unwrap_union(field(row, name)).clone()
}

#[tokio::test]
async fn every_type_round_trips_the_same_through_snapshot_and_stream() {
    let db = FreshMyDb::create("mytypes").await;
    let mut admin = my_admin().await;
    let t = db.table("types");
    admin
        .query_drop(format!(
            "SET time_zone = '+00:00'; {}; {}; {}",
            create_sql(&t),
            insert_sql(&t, 1, false),
            insert_sql(&t, 2, true)
        ))
        .await
        .unwrap();
    let name = unique_name("mytypes");
    let cfg = AgentConfig::mysql(&name, &db.name, &db.name, &db.password);
    let agent = Agent::start(&cfg);
    agent.wait_streaming(WAIT);
    admin
        .query_drop(format!(
            "SET time_zone = '+00:00'; {}; {}",
            insert_sql(&t, 101, false),
            insert_sql(&t, 102, true)
        ))
        .await
        .unwrap();
    let topic = format!("{}.{}.types", cfg.topic_prefix, db.name);
    let recs = read_topic(&topic, WAIT, |r| r.len() >= 4);
    assert_eq!(recs.len(), 4, "agent log:\n{}", agent.log());
    let mut dec = AvroDecoder::new();
    let rows: Vec<(String, Avro)> = recs
        .iter()
        .map(|r| after(&mut dec, r.value.as_ref().unwrap()))
        .collect();
    let ops: Vec<&str> = rows.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(ops, ["r", "r", "c", "c"]);

    // The same values through both paths.
    let mut differ = Vec::new();
    for (snap, stream) in [(&rows[0].1, &rows[2].1), (&rows[1].1, &rows[3].1)] {
        for (n, _, _) in COLUMNS {
            let (a, b) = (col(snap, n), col(stream, n));
            if a != b {
                differ.push(format!("{n}: snapshot {a:?} stream {b:?}"));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "snapshot and stream differ:\n{}",
        differ.join("\n")
    );

    // The Debezium representation of each value.
    let r = &rows[2].1;
    assert_eq!(col(r, "c_tinyint"), Avro::Int(-128));
    assert_eq!(col(r, "c_tinyint_u"), Avro::Int(255));
    assert_eq!(col(r, "c_smallint_u"), Avro::Int(65535));
    assert_eq!(col(r, "c_mediumint_u"), Avro::Int(16_777_215));
    assert_eq!(col(r, "c_int"), Avro::Int(i32::MIN));
    assert_eq!(col(r, "c_int_u"), Avro::Long(4_294_967_295));
    assert_eq!(col(r, "c_bigint"), Avro::Long(i64::MIN));
    // BIGINT UNSIGNED as a long (Debezium's default): 2^64 - 1 wraps to -1.
    assert_eq!(col(r, "c_bigint_u"), Avro::Long(-1));
    match col(r, "c_decimal") {
        Avro::Decimal(d) => {
            let bytes: Vec<u8> = d.try_into().unwrap();
            let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for b in bytes {
                v = (v << 8) | i64::from(b);
            }
            assert_eq!(v, -1_234_567_891);
        }
        Avro::Bytes(b) => {
            let mut v: i64 = if b[0] & 0x80 != 0 { -1 } else { 0 };
            for x in b {
                v = (v << 8) | i64::from(x);
            }
            assert_eq!(v, -1_234_567_891);
        }
        other => panic!("decimal: {other:?}"),
    }
    assert_eq!(col(r, "c_float"), Avro::Float(1.5));
    assert_eq!(col(r, "c_double"), Avro::Double(-2.25e100));
    assert_eq!(col(r, "c_date"), Avro::Int(19_724));
    assert_eq!(
        col(r, "c_time"),
        Avro::Long(-((838 * 3600 + 59 * 60 + 58) * 1_000_000 + 999_999))
    );
    assert_eq!(col(r, "c_datetime"), Avro::Long(1_704_164_645_123_456));
    assert_eq!(col(r, "c_datetime0"), Avro::Long(-1000));
    assert_eq!(
        col(r, "c_timestamp"),
        Avro::String("2024-01-02T03:04:05.123Z".into())
    );
    assert_eq!(col(r, "c_year"), Avro::Int(2155));
    assert_eq!(col(r, "c_bit1"), Avro::Boolean(true));
    assert_eq!(col(r, "c_bit10"), Avro::Bytes(vec![0x01, 0x02]));
    assert_eq!(col(r, "c_enum"), Avro::String("Large".into()));
    assert_eq!(col(r, "c_set"), Avro::String("a,c".into()));
    match col(r, "c_json") {
        Avro::String(s) => assert_eq!(
            serde_json::from_str::<serde_json::Value>(&s).unwrap(),
            serde_json::json!({"k": [1, 2]})
        ),
        other => panic!("json: {other:?}"),
    }
    assert_eq!(col(r, "c_char"), Avro::String("ab".into()));
    assert_eq!(col(r, "c_varchar"), Avro::String("héllo 🎉".into()));
    assert_eq!(col(r, "c_latin1"), Avro::String("café €".into()));
    assert_eq!(col(r, "c_text"), Avro::String("long text".into()));
    assert_eq!(col(r, "c_binary"), Avro::Bytes(vec![0, 0xff, 1]));
    assert_eq!(
        col(r, "c_varbinary"),
        Avro::Bytes(vec![0xde, 0xad, 0xbe, 0xef])
    );
    assert_eq!(col(r, "c_blob"), Avro::Bytes(vec![1, 2]));
    // Spatial: POINT is Debezium's Point record (x, y, optional wkb and srid; see
    // docs/mysql-types.md), its WKB without MySQL's SRID prefix.
    let point = col(r, "c_point");
    assert_eq!(unwrap_union(field(&point, "x")), &Avro::Double(1.0));
    assert_eq!(unwrap_union(field(&point, "y")), &Avro::Double(2.0));
    let wkb = match unwrap_union(field(&point, "wkb")) {
        Avro::Bytes(b) => b.clone(),
        other => panic!("wkb: {other:?}"),
    };
    assert_eq!(wkb.len(), 21, "WKB of a point: {wkb:?}");
    assert_eq!(&wkb[..5], &[1, 1, 0, 0, 0]);
    assert_eq!(f64::from_le_bytes(wkb[5..13].try_into().unwrap()), 1.0);
    assert_eq!(f64::from_le_bytes(wkb[13..21].try_into().unwrap()), 2.0);

    // NULLs stay NULL everywhere.
    for (n, _, _) in COLUMNS {
        assert_eq!(col(&rows[3].1, n), Avro::Null, "{n}");
    }
}
