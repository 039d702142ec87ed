//! The capture selection, for every source: which tables are captured, which columns their
//! events carry, masks, and the message key (`[tables]`, `[columns]`,
//! `[message_key_columns]` of a source file; see docs/configuration.md, "Choosing what is
//! captured").
//!
//! ```text
//! source schema ──▶ Selection::project ──▶ Projection { published schema, column map }
//! source row    ──▶ Projection::row    ──▶ published row (columns left out, masks applied)
//! ```
//!
//! It sits in the publisher, so every source, the snapshot and the stream alike, publishes
//! through it, and nothing excluded or unmasked can reach a table topic, the event store, a
//! schema or the dead-letter topic. Sources also ask [`Selection::captures`] so that they do
//! not snapshot a table nobody publishes.

use std::borrow::Cow;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use sha2::{Digest, Sha256};

use crate::config::{MaskKind, SourceConfig};
use crate::event::{Column, ColumnType, Datum, TableId, TableSchema};

/// Compiles one selection pattern as Debezium reads it: the whole name must match, case
/// ignored.
pub fn pattern(p: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&format!("^(?:{p})$"))
        .case_insensitive(true)
        .build()
}

/// A value mask.
#[derive(Clone)]
enum Mask {
    /// Always this many asterisks.
    Chars(Arc<str>),
    /// Hex SHA-256 of the salt and the value.
    Hash(Arc<[u8]>),
    /// The first N characters.
    Truncate(usize),
}

impl Mask {
    fn apply(&self, value: &str) -> String {
        match self {
            Mask::Chars(stars) => stars.to_string(),
            Mask::Hash(salt) => {
                let mut h = Sha256::new();
                h.update(salt);
                h.update(value.as_bytes());
                let digest = h.finalize();
                let mut out = String::with_capacity(64);
                for b in digest {
                    use std::fmt::Write;
                    let _ = write!(out, "{b:02x}");
                }
                out
            }
            Mask::Truncate(n) => match value.char_indices().nth(*n) {
                Some((cut, _)) => value[..cut].to_string(),
                None => value.to_string(),
            },
        }
    }

    fn key(&self) -> &'static str {
        match self {
            Mask::Chars(_) => "chars",
            Mask::Hash(_) => "hash",
            Mask::Truncate(_) => "truncate",
        }
    }
}

impl std::fmt::Debug for Mask {
    // The salt stays out of every log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// The compiled selection of one source.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    columns_exclude: Vec<Regex>,
    masks: Vec<(Vec<Regex>, Mask)>,
    keys: Vec<(String, Regex, Vec<String>)>,
}

impl Selection {
    /// Compiles a source's selection. The configuration checked every pattern when it was
    /// loaded; an error here names the pattern all the same.
    pub fn from_config(s: &SourceConfig) -> Result<Self, String> {
        let compile = |list: &[String]| -> Result<Vec<Regex>, String> {
            list.iter()
                .map(|p| pattern(p).map_err(|e| format!("pattern `{p}`: {e}")))
                .collect()
        };
        let mut masks = Vec::new();
        for m in &s.columns.mask {
            let mask = match m.with {
                MaskKind::Chars => Mask::Chars("*".repeat(m.length.unwrap_or(1)).into()),
                MaskKind::Truncate => Mask::Truncate(m.length.unwrap_or(1)),
                MaskKind::Hash => Mask::Hash(
                    m.salt
                        .as_ref()
                        .map(|s| s.expose().as_bytes().to_vec())
                        .unwrap_or_default()
                        .into(),
                ),
            };
            masks.push((compile(&m.columns)?, mask));
        }
        let mut keys = Vec::new();
        for (table, cols) in &s.message_key_columns {
            let re = pattern(table).map_err(|e| format!("pattern `{table}`: {e}"))?;
            keys.push((table.clone(), re, cols.clone()));
        }
        Ok(Self {
            include: compile(&s.tables.include)?,
            exclude: compile(&s.tables.exclude)?,
            columns_exclude: compile(&s.columns.exclude)?,
            masks,
            keys,
        })
    }

    /// The selection of a source whose configuration was loaded (and so checked): the
    /// patterns compile. Should one not, nothing is captured rather than everything, and the
    /// error is logged: a selection that cannot be read must not publish what it would hide.
    pub fn of(s: &SourceConfig) -> Self {
        Self::from_config(s).unwrap_or_else(|e| {
            tracing::error!(source = %s.name, error = %e, "invalid capture selection: capturing no table");
            Self {
                exclude: vec![pattern(".*").expect("a valid pattern")],
                ..Self::default()
            }
        })
    }

    /// Whether `schema.table` is captured: matched by `tables.include` (or no include list)
    /// and by no `tables.exclude` pattern.
    pub fn captures(&self, schema: &str, table: &str) -> bool {
        if self.include.is_empty() && self.exclude.is_empty() {
            return true;
        }
        let name = format!("{schema}.{table}");
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(&name)))
            && !self.exclude.iter().any(|r| r.is_match(&name))
    }

    /// Whether a table is captured, by id.
    pub fn captures_table(&self, id: &TableId) -> bool {
        self.captures(&id.schema, &id.table)
    }

    /// What a table's events look like once published: `None` when they are the source's
    /// own (no column left out, no mask, the primary key), the common case, which costs
    /// nothing per row. An error names the setting that cannot apply and its fix.
    pub fn project(&self, schema: &TableSchema) -> Result<Option<Projection>, String> {
        let id = &schema.id;
        let key_rule = self
            .keys
            .iter()
            .find(|(_, re, _)| re.is_match(&id.to_string()));
        if self.columns_exclude.is_empty() && self.masks.is_empty() && key_rule.is_none() {
            return Ok(None);
        }
        let mut columns = Vec::with_capacity(schema.columns.len());
        let mut out_columns: Vec<Column> = Vec::with_capacity(schema.columns.len());
        let mut hides_values = false;
        for (i, col) in schema.columns.iter().enumerate() {
            let name = format!("{id}.{}", col.name);
            if self.columns_exclude.iter().any(|r| r.is_match(&name)) {
                hides_values = true;
                if schema.key.contains(&i) && key_rule.is_none() {
                    return Err(format!(
                        "columns.exclude leaves out `{}`, a key column of table {id}; fix: give \
                         the table another key in [message_key_columns], or leave the column in",
                        col.name
                    ));
                }
                continue;
            }
            let mask = self
                .masks
                .iter()
                .find(|(res, _)| res.iter().any(|r| r.is_match(&name)))
                .map(|(_, m)| m.clone());
            let mut out = col.clone();
            if let Some(m) = &mask {
                hides_values = true;
                if !is_textual(&col.ty) {
                    return Err(format!(
                        "columns.mask ({}) matches `{}` of table {id}, a `{}` column; masks apply \
                         to string columns only; fix: leave it out with columns.exclude, or \
                         narrow the mask's pattern",
                        m.key(),
                        col.name,
                        col.source_type
                    ));
                }
                // A masked column is a plain string: the mask's output need not be one of an
                // enum's values or valid JSON.
                out.ty = ColumnType::String;
                out.default = col.default.as_deref().map(|d| mask_default(m, d));
            }
            columns.push((i, mask));
            out_columns.push(out);
        }
        let key = match key_rule {
            None => schema
                .key
                .iter()
                .filter_map(|k| columns.iter().position(|(i, _)| i == k))
                .collect(),
            Some((pattern, _, names)) => {
                let mut key = Vec::with_capacity(names.len());
                for n in names {
                    match out_columns.iter().position(|c| &c.name == n) {
                        Some(p) => key.push(p),
                        None => {
                            return Err(format!(
                                "message_key_columns.\"{pattern}\" names `{n}`, which table {id} \
                                 does not publish (columns: {}); fix: name one of its columns",
                                out_columns
                                    .iter()
                                    .map(|c| c.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        }
                    }
                }
                key
            }
        };
        let rows_unchanged =
            columns.len() == schema.columns.len() && columns.iter().all(|(_, m)| m.is_none());
        Ok(Some(Projection {
            schema: TableSchema {
                id: id.clone(),
                columns: out_columns,
                key,
            },
            columns,
            rows_unchanged,
            hides_values,
            key_overridden: key_rule.is_some(),
        }))
    }
}

/// Types whose values are strings the masks can work on.
fn is_textual(ty: &ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::String
            | ColumnType::Json
            | ColumnType::Xml
            | ColumnType::Uuid
            | ColumnType::Enum(_)
            | ColumnType::EnumSet(_)
            | ColumnType::Ltree
            | ColumnType::TsVector
    )
}

/// The Avro default (JSON text) of a masked column, masked too: a default is a value.
fn mask_default(m: &Mask, default: &str) -> String {
    match serde_json::from_str::<String>(default) {
        Ok(v) => serde_json::Value::String(m.apply(&v)).to_string(),
        // Not a JSON string: no default rather than one in clear.
        Err(_) => serde_json::Value::String(m.apply("")).to_string(),
    }
}

/// How one table's source rows become its published rows.
#[derive(Debug, Clone)]
pub struct Projection {
    /// The published schema: what the registry, the table topic and the event store see.
    pub schema: TableSchema,
    /// Per published column: its index in the source row, and its mask.
    columns: Vec<(usize, Option<Mask>)>,
    /// Only the key differs: rows are published as the source made them.
    rows_unchanged: bool,
    /// Columns are left out or masked: nothing that could show their values (the
    /// statement in `source.query`) may be published.
    pub hides_values: bool,
    /// The message key is not the primary key.
    pub key_overridden: bool,
}

impl Projection {
    /// Whether rows pass through as they are (only the key or nothing differs).
    pub fn rows_unchanged(&self) -> bool {
        self.rows_unchanged
    }

    /// The published row of a source row.
    pub fn row<'a>(&self, row: &[Datum<'a>]) -> Vec<Datum<'a>> {
        self.columns
            .iter()
            .map(|(i, mask)| {
                let d = row.get(*i).cloned().unwrap_or(Datum::Null);
                match (mask, d) {
                    (Some(m), Datum::Str(s)) => Datum::Str(Cow::Owned(m.apply(&s))),
                    (_, d) => d,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> SourceConfig {
        let base = "name = \"s\"\nkind = \"postgres\"\ntopic_prefix = \"p\"\nuser = \"u\"\ndatabase = \"d\"\n";
        toml::from_str(&format!("{base}{toml_text}")).unwrap()
    }

    fn col(name: &str, ty: ColumnType) -> Column {
        Column {
            name: name.into(),
            ty,
            optional: true,
            source_type: "text".into(),
            default: None,
        }
    }

    fn users() -> TableSchema {
        TableSchema {
            id: TableId::new("public", "users"),
            columns: vec![
                col("id", ColumnType::Int32),
                col("email", ColumnType::String),
                col("ssn", ColumnType::String),
                col("name", ColumnType::String),
            ],
            key: vec![0],
        }
    }

    #[test]
    fn table_patterns_match_whole_names_ignoring_case() {
        let s = Selection::from_config(&config(
            "[tables]\ninclude = ['public\\.orders', 'sales\\..*']\nexclude = ['sales\\.tmp_.*']\n",
        ))
        .unwrap();
        assert!(s.captures("public", "orders"));
        assert!(s.captures("PUBLIC", "Orders"));
        assert!(!s.captures("public", "orders_archive"));
        assert!(s.captures("sales", "invoices"));
        assert!(!s.captures("sales", "tmp_1"));
        assert!(!s.captures("other", "x"));
        let all = Selection::from_config(&config("")).unwrap();
        assert!(all.captures("any", "thing"));
    }

    #[test]
    fn a_table_without_column_rules_is_published_as_it_comes() {
        let s = Selection::from_config(&config("[tables]\ninclude = ['public\\..*']\n")).unwrap();
        assert!(s.project(&users()).unwrap().is_none());
    }

    #[test]
    fn excluded_and_masked_columns_never_reach_the_published_row() {
        let s = Selection::from_config(&config(
            "[columns]\nexclude = ['public\\.users\\.ssn']\n\
             [[columns.mask]]\ncolumns = ['.*\\.email']\nwith = 'hash'\nsalt = 'pepper'\n\
             [[columns.mask]]\ncolumns = ['public\\.users\\.name']\nwith = 'truncate'\nlength = 3\n",
        ))
        .unwrap();
        let p = s.project(&users()).unwrap().unwrap();
        let names: Vec<_> = p.schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "email", "name"]);
        assert_eq!(p.schema.key, [0]);
        assert!(p.hides_values);
        let row = [
            Datum::Int(1),
            Datum::Str("a@b.c".into()),
            Datum::Str("123-45-6789".into()),
            Datum::Str("Zoë Smith".into()),
        ];
        let out = p.row(&row);
        let mut h = Sha256::new();
        h.update(b"pepper");
        h.update(b"a@b.c");
        let want: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out[1], Datum::Str(want.into()));
        assert_eq!(out[2], Datum::Str("Zoë".into()));
        assert!(!format!("{out:?}").contains("123-45"));
    }

    #[test]
    fn a_chars_mask_replaces_any_value_and_keeps_null() {
        let s = Selection::from_config(&config(
            "[[columns.mask]]\ncolumns = ['.*\\.email']\nwith = 'chars'\nlength = 5\n",
        ))
        .unwrap();
        let p = s.project(&users()).unwrap().unwrap();
        let out = p.row(&[
            Datum::Int(1),
            Datum::Str("someone@example.com".into()),
            Datum::Null,
            Datum::Null,
        ]);
        assert_eq!(out[1], Datum::Str("*****".into()));
        let out = p.row(&[Datum::Int(1), Datum::Null, Datum::Null, Datum::Null]);
        assert_eq!(out[1], Datum::Null);
    }

    #[test]
    fn a_masked_default_is_masked_too() {
        let s = Selection::from_config(&config(
            "[[columns.mask]]\ncolumns = ['.*\\.email']\nwith = 'chars'\nlength = 2\n",
        ))
        .unwrap();
        let mut t = users();
        t.columns[1].default = Some("\"nobody@example.com\"".into());
        let p = s.project(&t).unwrap().unwrap();
        assert_eq!(p.schema.columns[1].default.as_deref(), Some("\"**\""));
    }

    #[test]
    fn a_message_key_override_changes_only_the_key() {
        let s = Selection::from_config(&config(
            "[message_key_columns]\n'public\\.users' = ['email', 'id']\n",
        ))
        .unwrap();
        let p = s.project(&users()).unwrap().unwrap();
        assert_eq!(p.schema.key, [1, 0]);
        assert!(p.rows_unchanged());
        assert!(!p.hides_values);
    }

    #[test]
    fn leaving_out_a_key_column_without_another_key_names_the_fix() {
        let s = Selection::from_config(&config("[columns]\nexclude = ['public\\.users\\.id']\n"))
            .unwrap();
        let e = s.project(&users()).unwrap_err();
        assert!(e.contains("message_key_columns"), "{e}");
        let s = Selection::from_config(&config(
            "[columns]\nexclude = ['public\\.users\\.id']\n\
             [message_key_columns]\n'public\\.users' = ['email']\n",
        ))
        .unwrap();
        let p = s.project(&users()).unwrap().unwrap();
        assert_eq!(p.schema.key, [0]);
        assert_eq!(p.schema.columns[0].name, "email");
    }

    #[test]
    fn a_key_column_that_is_not_published_names_the_columns_that_are() {
        let s = Selection::from_config(&config(
            "[message_key_columns]\n'public\\.users' = ['nope']\n",
        ))
        .unwrap();
        let e = s.project(&users()).unwrap_err();
        assert!(e.contains("`nope`") && e.contains("id, email"), "{e}");
    }

    #[test]
    fn a_mask_on_a_number_column_is_refused() {
        let s = Selection::from_config(&config(
            "[[columns.mask]]\ncolumns = ['public\\.users\\.id']\nwith = 'chars'\nlength = 1\n\
             [message_key_columns]\n'public\\.users' = ['email']\n",
        ))
        .unwrap();
        let e = s.project(&users()).unwrap_err();
        assert!(e.contains("string columns only"), "{e}");
    }

    #[test]
    fn the_salt_never_shows_in_debug_output() {
        let s = Selection::from_config(&config(
            "[[columns.mask]]\ncolumns = ['.*']\nwith = 'hash'\nsalt = 'very-secret-salt'\n",
        ))
        .unwrap();
        assert!(!format!("{s:?}").contains("very-secret"));
    }
}
