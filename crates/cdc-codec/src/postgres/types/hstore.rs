//! `hstore` text as a JSON object (`hstore.handling.mode=json`).

use crate::json::json_string;

/// One double-quoted hstore token (`"a\"b"`), returning the unescaped text and the rest.
fn hstore_quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &body[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// hstore text (`"a"=>"1", "b"=>NULL`) to the JSON object Debezium's
/// `hstore.handling.mode=json` emits (`{"a":"1","b":null}`), in the text's key order.
pub(super) fn hstore_to_json(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('{');
    let mut rest = s.trim_start();
    let mut first = true;
    while !rest.is_empty() {
        if !first {
            rest = rest.strip_prefix(',')?.trim_start();
        }
        let (key, after) = hstore_quoted(rest)?;
        rest = after.trim_start().strip_prefix("=>")?.trim_start();
        if !first {
            out.push(',');
        }
        first = false;
        json_string(&mut out, &key);
        out.push(':');
        if let Some(after) = rest.strip_prefix("NULL") {
            out.push_str("null");
            rest = after.trim_start();
        } else {
            let (value, after) = hstore_quoted(rest)?;
            json_string(&mut out, &value);
            rest = after.trim_start();
        }
    }
    out.push('}');
    Some(out)
}
