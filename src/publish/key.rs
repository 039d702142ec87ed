//! Event-store keys: a row's key columns as JSON (`{"id":42}`), stable across schema ids and
//! readable in `history --key`.

use super::*;

/// The key columns of `row` as a JSON object in key order: `{"id":42}`. Stable across
/// schema ids and readable in `history --key`.
pub fn key_json(schema: &TableSchema, row: &[Datum<'_>], out: &mut Vec<u8>) {
    out.push(b'{');
    for (n, &i) in schema.key.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let name = schema.columns.get(i).map_or("", |c| c.name.as_str());
        let _ = serde_json::to_writer(&mut *out, name);
        out.push(b':');
        datum_json(row.get(i).unwrap_or(&Datum::Null), out);
    }
    out.push(b'}');
}

/// One datum as JSON, in the representation its column type prescribes (Debezium's: dates as
/// days, timestamps as epoch integers, bytes as hex, decimals as `{"unscaled","scale"}`;
/// unchanged TOAST as `null`). Shared by ledger keys and `cdc-agent tail`.
pub fn datum_json(d: &Datum<'_>, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = write_datum_json(d, out);
}

fn write_datum_json(d: &Datum<'_>, out: &mut Vec<u8>) -> std::io::Result<()> {
    match d {
        Datum::Null | Datum::Unchanged => out.write_all(b"null"),
        Datum::Bool(b) => write!(out, "{b}"),
        Datum::Int(i) => write!(out, "{i}"),
        Datum::Float(f) => serde_json::to_writer(&mut *out, f).map_err(std::io::Error::other),
        Datum::Str(s) => serde_json::to_writer(&mut *out, s).map_err(std::io::Error::other),
        Datum::Bytes(b) => {
            out.push(b'"');
            for byte in b.iter() {
                write!(out, "{byte:02x}")?;
            }
            out.write_all(b"\"")
        }
        Datum::Decimal { unscaled, scale } => {
            out.write_all(b"{\"unscaled\":\"")?;
            for byte in unscaled.iter() {
                write!(out, "{byte:02x}")?;
            }
            write!(out, "\",\"scale\":{scale}}}")
        }
        Datum::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_datum_json(item, out)?;
            }
            out.write_all(b"]")
        }
        Datum::Geometry { wkb, srid } => {
            out.write_all(b"{\"wkb\":\"")?;
            for byte in wkb.iter() {
                write!(out, "{byte:02x}")?;
            }
            match srid {
                Some(srid) => write!(out, "\",\"srid\":{srid}}}"),
                None => out.write_all(b"\",\"srid\":null}"),
            }
        }
    }
}
