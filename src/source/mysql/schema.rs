//! Table definitions from `information_schema`: COLUMNS for the columns, STATISTICS for the
//! primary key, of every base table in the captured databases.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::catalog::{
    charset_of_collation, default_from_information_schema, normalize_charset, Catalog, ColumnDef,
    TableDef,
};
use super::{my_error, MySourceSettings, SourceError, SYSTEM_DATABASES};

type ColumnRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
    Option<String>,
);

/// Loads every base table of the captured databases (all tables of `only` when given).
pub async fn load_catalog(
    conn: &mut Conn,
    settings: &MySourceSettings,
) -> Result<Catalog, SourceError> {
    load_tables(conn, settings, None).await
}

/// Loads the captured tables, or only `only` = `(database, table)`.
pub async fn load_tables(
    conn: &mut Conn,
    settings: &MySourceSettings,
    only: Option<(&str, &str)>,
) -> Result<Catalog, SourceError> {
    let mut filter = String::new();
    let mut params: Vec<mysql_async::Value> = Vec::new();
    if let Some((db, t)) = only {
        filter.push_str(" AND c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ?");
        params.push(db.into());
        params.push(t.into());
    } else if !settings.databases.is_empty() {
        filter.push_str(" AND c.TABLE_SCHEMA IN (");
        for (i, db) in settings.databases.iter().enumerate() {
            filter.push_str(if i == 0 { "?" } else { ",?" });
            params.push(db.as_str().into());
        }
        filter.push(')');
    } else {
        filter.push_str(" AND c.TABLE_SCHEMA NOT IN (");
        for (i, db) in SYSTEM_DATABASES.iter().enumerate() {
            filter.push_str(if i == 0 { "?" } else { ",?" });
            params.push((*db).into());
        }
        filter.push(')');
    }
    let columns: Vec<ColumnRow> = conn
        .exec(
            format!(
                "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, LOWER(c.DATA_TYPE), \
                 c.COLUMN_TYPE, c.IS_NULLABLE, c.CHARACTER_MAXIMUM_LENGTH, \
                 c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.DATETIME_PRECISION, \
                 c.CHARACTER_SET_NAME, c.COLUMN_DEFAULT \
                 FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
                 ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
                 WHERE t.TABLE_TYPE = 'BASE TABLE'{filter} \
                 ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
            ),
            params.clone(),
        )
        .await
        .map_err(my_error(
            "read table definitions from information_schema.COLUMNS",
        ))?;
    let keys: Vec<(String, String, String)> = conn
        .exec(
            format!(
                "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME \
                 FROM information_schema.STATISTICS c \
                 WHERE c.INDEX_NAME = 'PRIMARY'{filter} \
                 ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.SEQ_IN_INDEX"
            ),
            params,
        )
        .await
        .map_err(my_error(
            "read primary keys from information_schema.STATISTICS",
        ))?;

    let mut catalog = Catalog::default();
    let mut current: Option<TableDef> = None;
    for (db, table, name, data_type, column_type, nullable, len, prec, scale, dtp, cs, default) in
        columns
    {
        if current
            .as_ref()
            .is_some_and(|t| t.database != db || t.name != table)
        {
            if let Some(t) = current.take() {
                catalog.put(t);
            }
        }
        let t = current.get_or_insert_with(|| TableDef {
            database: db.clone(),
            name: table.clone(),
            columns: Vec::new(),
            primary_key: Vec::new(),
        });
        let enum_values = if data_type == "enum" || data_type == "set" {
            parse_enum_values(&column_type)
        } else {
            Vec::new()
        };
        // Labels keep their case; the rest of the type is compared in lower case.
        let column_type = column_type.to_ascii_lowercase();
        let default = default_from_information_schema(&data_type, default.as_deref());
        t.columns.push(ColumnDef {
            name,
            unsigned: column_type.contains("unsigned"),
            data_type,
            column_type,
            nullable: nullable.eq_ignore_ascii_case("YES"),
            char_max_length: len,
            numeric_precision: prec.map(|p| p as u32),
            numeric_scale: scale.map(|s| s as u32),
            datetime_precision: dtp.map(|d| d as u32),
            charset: cs.map(|c| normalize_charset(&c)),
            enum_values,
            default,
        });
    }
    if let Some(t) = current.take() {
        catalog.put(t);
    }
    for (db, table, column) in keys {
        if let Some(t) = catalog.tables.get_mut(&(db, table)) {
            t.primary_key.push(column);
        }
    }
    if only.is_none() {
        // The defaults a later CREATE/ALTER without a character set inherits (see ddl.rs).
        let dbs: Vec<(String, String)> = conn
            .query(
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA",
            )
            .await
            .map_err(my_error("read database character sets"))?;
        for (db, cs) in dbs {
            if settings.captures(&db) {
                catalog.databases.insert(db, normalize_charset(&cs));
            }
        }
        let tables: Vec<(String, String, Option<String>)> = conn
            .query(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES \
                 WHERE TABLE_TYPE = 'BASE TABLE'",
            )
            .await
            .map_err(my_error("read table character sets"))?;
        for (db, t, coll) in tables {
            if let Some(coll) = coll {
                if catalog.get(&db, &t).is_some() {
                    catalog
                        .table_charsets
                        .insert((db, t), charset_of_collation(&coll));
                }
            }
        }
        let server: Option<String> = conn
            .query_first("SELECT @@character_set_server")
            .await
            .map_err(my_error("read the server character set"))?;
        catalog.server_charset = server.map(|s| normalize_charset(&s));
    }
    Ok(catalog)
}

/// The labels of `enum('a','b''c')` / `set(…)`, unquoted, in declaration order.
pub fn parse_enum_values(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let body = &column_type[open + 1..];
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                other => label.push(other),
            }
        }
        out.push(label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_are_unquoted_with_doubled_quotes_and_commas_kept() {
        assert_eq!(
            parse_enum_values("enum('a','b''c','d,e')"),
            vec!["a", "b'c", "d,e"]
        );
        assert_eq!(parse_enum_values("set('x')"), vec!["x"]);
        assert!(parse_enum_values("int(11)").is_empty());
    }
}
