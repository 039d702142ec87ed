//! ALTER TABLE: add, change, modify, drop and rename columns, primary keys, charset
//! conversion, and table renames, applied in statement order.

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnOption, DataType, MySQLColumnPosition,
    Statement,
};
use sqlparser::tokenizer::Token;

use crate::mysql::catalog::{canonical_default, Catalog, ColumnDef, TableDef};

use super::column::{column_def, mbmaxlen, pk_columns};
use super::create::set_pk;
use super::tokens::{
    fix_column_tokens, parse_statement, read_charset_option, read_name, skip_parens, split_commas,
    to_sql,
};
use super::{is_kw, kw_at, word, Ctx, DdlError, DdlOutcome};

fn col_index(def: &TableDef, name: &str) -> Option<usize> {
    def.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

pub(super) fn place(
    def: &mut TableDef,
    col: ColumnDef,
    pos: Option<&MySQLColumnPosition>,
    ctx: &Ctx<'_>,
) -> Result<(), DdlError> {
    match pos {
        None => def.columns.push(col),
        Some(MySQLColumnPosition::First) => def.columns.insert(0, col),
        Some(MySQLColumnPosition::After(a)) => {
            let i = col_index(def, &a.value).ok_or_else(|| {
                ctx.parse_err(format!("AFTER names unknown column `{}`", a.value))
            })?;
            def.columns.insert(i + 1, col);
        }
    }
    Ok(())
}

/// An ALTER TABLE specification our token pass classified.
enum Spec<'a> {
    /// Give to sqlparser, with the `IF [NOT] EXISTS` flag we removed.
    Parse(Vec<Token>, bool),
    /// `ADD (a INT, b INT)`.
    AddMany(Vec<Vec<Token>>, bool),
    ConvertCharset(String),
    DefaultCharset(String),
    Rename(&'a [Token]),
    DropPrimary,
    Ignore,
}

/// The index name `PRIMARY` (quoted or not): the primary key.
pub(super) fn names_primary(t: Option<&Token>) -> bool {
    t.and_then(word)
        .is_some_and(|w| w.value.eq_ignore_ascii_case("PRIMARY"))
}

fn classify_spec<'a>(ctx: &Ctx<'_>, spec: &'a [Token]) -> Result<Spec<'a>, DdlError> {
    let k = |i: usize, w: &str| kw_at(spec, i, w);
    let first = spec
        .first()
        .ok_or_else(|| ctx.parse_err("empty ALTER TABLE specification"))?;
    let strip_if = |from: usize| -> (Vec<Token>, bool) {
        // Removes `IF [NOT] EXISTS` right after the verb (and its COLUMN keyword).
        let mut j = from;
        if kw_at(spec, j, "COLUMN") {
            j += 1;
        }
        if kw_at(spec, j, "IF") && kw_at(spec, j + 1, "NOT") && kw_at(spec, j + 2, "EXISTS") {
            let mut v = spec[..j].to_vec();
            v.extend_from_slice(&spec[j + 3..]);
            (v, true)
        } else if kw_at(spec, j, "IF") && kw_at(spec, j + 1, "EXISTS") {
            let mut v = spec[..j].to_vec();
            v.extend_from_slice(&spec[j + 2..]);
            (v, true)
        } else {
            (spec.to_vec(), false)
        }
    };
    if is_kw(first, "ADD") {
        let mut j = 1;
        if k(j, "COLUMN") {
            j += 1;
        }
        let mut iff = false;
        if k(j, "IF") && k(j + 1, "NOT") && k(j + 2, "EXISTS") {
            iff = true;
            j += 3;
        }
        if matches!(spec.get(j), Some(Token::LParen)) {
            let close =
                skip_parens(spec, j).ok_or_else(|| ctx.parse_err("unbalanced parentheses"))?;
            let inner = &spec[j + 1..close - 1];
            let mut cols = Vec::new();
            for el in split_commas(inner) {
                let mut v = vec![Token::make_keyword("ADD"), Token::make_keyword("COLUMN")];
                v.extend(fix_column_tokens(el).map_err(|e| ctx.parse_err(e))?);
                cols.push(v);
            }
            return Ok(Spec::AddMany(cols, iff));
        }
        if j == 1 {
            // ADD <constraint or index>?
            let mut c = 1;
            if k(c, "CONSTRAINT") {
                c += 1;
                if !k(c, "PRIMARY") && !k(c, "UNIQUE") && !k(c, "FOREIGN") && !k(c, "CHECK") {
                    c += 1; // the symbol
                }
            }
            if k(c, "PRIMARY") {
                let mut v = vec![Token::make_keyword("ADD")];
                v.extend_from_slice(&spec[c..]);
                return Ok(Spec::Parse(v, false));
            }
            if c > 1
                || [
                    "INDEX",
                    "KEY",
                    "UNIQUE",
                    "FULLTEXT",
                    "SPATIAL",
                    "FOREIGN",
                    "CHECK",
                    "PARTITION",
                    "PERIOD",
                    "SYSTEM",
                    "VECTOR",
                ]
                .iter()
                .any(|w| k(1, w))
            {
                if k(1, "SYSTEM") {
                    return Err(ctx.unsupported(None, "ADD SYSTEM VERSIONING"));
                }
                return Ok(Spec::Ignore);
            }
        }
        let mut v = vec![Token::make_keyword("ADD"), Token::make_keyword("COLUMN")];
        v.extend(fix_column_tokens(&spec[j..]).map_err(|e| ctx.parse_err(e))?);
        return Ok(Spec::Parse(v, iff));
    }
    if is_kw(first, "DROP") {
        if k(1, "PRIMARY") {
            return Ok(Spec::Parse(spec.to_vec(), false));
        }
        // `DROP INDEX|KEY|CONSTRAINT [IF EXISTS] `PRIMARY`` drops the primary key too.
        if k(1, "INDEX") || k(1, "KEY") || k(1, "CONSTRAINT") {
            let mut j = 2;
            if k(j, "IF") && k(j + 1, "EXISTS") {
                j += 2;
            }
            if names_primary(spec.get(j)) {
                return Ok(Spec::DropPrimary);
            }
        }
        if [
            "INDEX",
            "KEY",
            "FOREIGN",
            "CONSTRAINT",
            "CHECK",
            "PARTITION",
            "PERIOD",
        ]
        .iter()
        .any(|w| k(1, w))
        {
            return Ok(Spec::Ignore);
        }
        if k(1, "SYSTEM") {
            return Err(ctx.unsupported(None, "DROP SYSTEM VERSIONING"));
        }
        let (v, iff) = strip_if(1);
        return Ok(Spec::Parse(v, iff));
    }
    if is_kw(first, "MODIFY") || is_kw(first, "CHANGE") {
        let (v, iff) = strip_if(1);
        let fixed = fix_column_tokens(&v).map_err(|e| ctx.parse_err(e))?;
        return Ok(Spec::Parse(fixed, iff));
    }
    if is_kw(first, "RENAME") {
        if k(1, "COLUMN") {
            let (v, iff) = strip_if(1);
            return Ok(Spec::Parse(v, iff));
        }
        if k(1, "INDEX") || k(1, "KEY") {
            return Ok(Spec::Ignore);
        }
        let j = if k(1, "TO") || k(1, "AS") { 2 } else { 1 };
        return Ok(Spec::Rename(&spec[j..]));
    }
    if is_kw(first, "CONVERT") {
        if k(1, "TO") {
            if let Some((cs, _, _)) = read_charset_option(spec, 2) {
                return Ok(Spec::ConvertCharset(cs));
            }
        }
        return Err(ctx.parse_err("CONVERT without TO CHARACTER SET"));
    }
    if let Some((cs, _, _)) = read_charset_option(spec, 0) {
        return Ok(Spec::DefaultCharset(cs));
    }
    // ALTER [COLUMN] c SET DEFAULT v / DROP DEFAULT: the default is part of the column's
    // definition (the event schema's field default).
    if is_kw(first, "ALTER") && !k(1, "INDEX") && spec.iter().any(|t| is_kw(t, "DEFAULT")) {
        let mut v = spec.to_vec();
        if !k(1, "COLUMN") {
            v.insert(1, Token::make_keyword("COLUMN"));
        }
        return Ok(Spec::Parse(v, false));
    }
    // ALTER INDEX, ENGINE=, ALGORITHM=, LOCK=, FORCE,
    // ORDER BY, AUTO_INCREMENT=, COMMENT=, partition maintenance, ENABLE/DISABLE KEYS, …:
    // none changes the columns, their types or the key.
    Ok(Spec::Ignore)
}

pub(super) fn alter_table(
    cat: &mut Catalog,
    ctx: &Ctx<'_>,
    toks: &[Token],
    mut i: usize,
) -> Result<DdlOutcome, DdlError> {
    if kw_at(toks, i, "IF") && kw_at(toks, i + 1, "EXISTS") {
        i += 2;
    }
    let (name, after) = read_name(toks, i).ok_or_else(|| ctx.parse_err("no table name"))?;
    let mut key = ctx.qualify(&name)?;
    let orig = key.clone();
    let mut def = cat
        .get(&key.0, &key.1)
        .cloned()
        .ok_or_else(|| ctx.unknown(key.clone()))?;
    let mut table_cs = cat.default_charset(&key.0, &key.1).map(str::to_owned);
    // Some specs change the table (and its default charset) and are applied in order.
    let specs = split_commas(&toks[after..]);
    let mut changed = false;
    for spec in specs {
        if spec.is_empty() {
            continue;
        }
        match classify_spec(ctx, spec).map_err(|e| with_table(e, &key))? {
            Spec::Ignore => {}
            Spec::DropPrimary => {
                def.primary_key.clear();
                changed = true;
            }
            Spec::DefaultCharset(cs) => {
                table_cs = Some(cs);
                changed = true;
            }
            Spec::ConvertCharset(cs) => {
                convert_charset(&mut def, &cs);
                table_cs = Some(cs);
                changed = true;
            }
            Spec::Rename(rest) => {
                let (n, _) =
                    read_name(rest, 0).ok_or_else(|| ctx.parse_err("RENAME without a name"))?;
                key = ctx.qualify(&n)?;
                changed = true;
            }
            Spec::AddMany(cols, iff) => {
                for v in cols {
                    apply_parsed(ctx, &mut def, &v, iff, table_cs.as_deref())?;
                }
                changed = true;
            }
            Spec::Parse(v, iff) => {
                apply_parsed(ctx, &mut def, &v, iff, table_cs.as_deref())?;
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(DdlOutcome::NotSchema);
    }
    def.database = key.0.clone();
    def.name = key.1.clone();
    let mut dropped = Vec::new();
    if key != orig {
        if cat.get(&key.0, &key.1).is_some() {
            return Err(ctx.unsupported(Some(key), "RENAME onto an existing table"));
        }
        cat.remove(&orig.0, &orig.1);
        cat.table_charsets.remove(&orig);
        dropped.push(orig);
    }
    cat.put(def);
    if let Some(cs) = table_cs {
        cat.table_charsets.insert(key.clone(), cs);
    }
    Ok(DdlOutcome::Changed {
        tables: vec![key],
        dropped,
    })
}

fn with_table(e: DdlError, key: &(String, String)) -> DdlError {
    match e {
        DdlError::Unsupported {
            table: None,
            what,
            statement,
        } => DdlError::Unsupported {
            table: Some(key.clone()),
            what,
            statement,
        },
        other => other,
    }
}

/// `CONVERT TO CHARACTER SET`: every text column takes the new character set; TEXT types grow
/// when the new set needs more bytes per character, as the server does.
fn convert_charset(def: &mut TableDef, cs: &str) {
    for c in &mut def.columns {
        let Some(old) = c.charset.clone() else {
            continue;
        };
        if old == "binary" {
            continue;
        }
        let is_text = matches!(
            c.data_type.as_str(),
            "tinytext" | "text" | "mediumtext" | "longtext"
        );
        if is_text {
            // The column keeps room for as many characters as before: the server picks the
            // smallest TEXT type that holds them in the new set, never a smaller one.
            const TYPES: [(&str, u64); 4] = [
                ("tinytext", 255),
                ("text", 65_535),
                ("mediumtext", 16_777_215),
                ("longtext", 4_294_967_295),
            ];
            let old_max = c.char_max_length.unwrap_or(0);
            let chars = old_max / mbmaxlen(&old);
            let bytes = chars.saturating_mul(mbmaxlen(cs));
            let rank_old = TYPES
                .iter()
                .position(|(t, _)| *t == c.data_type)
                .unwrap_or(0);
            let fit = TYPES.iter().position(|(_, m)| bytes <= *m).unwrap_or(3);
            let (ty, max) = TYPES[fit.max(rank_old)];
            c.data_type = ty.into();
            c.column_type = ty.into();
            c.char_max_length = Some(max);
        }
        c.charset = Some(cs.to_owned());
    }
}

/// Applies one ALTER specification parsed by sqlparser.
fn apply_parsed(
    ctx: &Ctx<'_>,
    def: &mut TableDef,
    spec: &[Token],
    if_flag: bool,
    table_cs: Option<&str>,
) -> Result<(), DdlError> {
    let sql = format!("ALTER TABLE t {}", to_sql(spec));
    let Statement::AlterTable(at) = parse_statement(ctx, &sql)? else {
        return Err(ctx.parse_err("not an ALTER TABLE"));
    };
    for op in &at.operations {
        match op {
            AlterTableOperation::AddColumn {
                column_def,
                column_position,
                if_not_exists,
                ..
            } => {
                if col_index(def, &column_def.name.value).is_some() && (if_flag || *if_not_exists) {
                    continue;
                }
                let opts: Vec<ColumnOption> = column_def
                    .options
                    .iter()
                    .map(|o| o.option.clone())
                    .collect();
                let (c, pk) = column_def_of(
                    ctx,
                    &column_def.name.value,
                    &column_def.data_type,
                    &opts,
                    table_cs,
                )?;
                place(def, c, column_position.as_ref(), ctx)?;
                if pk {
                    set_pk(ctx, def, vec![column_def.name.value.clone()])?;
                }
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for n in column_names {
                    match col_index(def, &n.value) {
                        Some(i) => {
                            let removed = def.columns.remove(i);
                            def.primary_key
                                .retain(|k| !k.eq_ignore_ascii_case(&removed.name));
                        }
                        None if *if_exists || if_flag => {}
                        None => {
                            return Err(
                                ctx.parse_err(format!("DROP of unknown column `{}`", n.value))
                            )
                        }
                    }
                }
            }
            AlterTableOperation::ModifyColumn {
                col_name,
                data_type,
                options,
                column_position,
            } => replace_column(
                ctx,
                def,
                &col_name.value,
                &col_name.value,
                data_type,
                options,
                column_position.as_ref(),
                if_flag,
                table_cs,
            )?,
            AlterTableOperation::ChangeColumn {
                old_name,
                new_name,
                data_type,
                options,
                column_position,
            } => replace_column(
                ctx,
                def,
                &old_name.value,
                &new_name.value,
                data_type,
                options,
                column_position.as_ref(),
                if_flag,
                table_cs,
            )?,
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => match col_index(def, &old_column_name.value) {
                Some(i) => {
                    let old =
                        std::mem::replace(&mut def.columns[i].name, new_column_name.value.clone());
                    for k in &mut def.primary_key {
                        if k.eq_ignore_ascii_case(&old) {
                            *k = new_column_name.value.clone();
                        }
                    }
                }
                None if if_flag => {}
                None => {
                    return Err(ctx.parse_err(format!(
                        "RENAME of unknown column `{}`",
                        old_column_name.value
                    )))
                }
            },
            AlterTableOperation::AddConstraint { constraint, .. } => {
                if let Some(cols) = pk_columns(constraint) {
                    set_pk(ctx, def, cols)?;
                }
            }
            AlterTableOperation::DropPrimaryKey { .. } => def.primary_key.clear(),
            AlterTableOperation::AlterColumn { column_name, op } => {
                if let Some(c) = col_index(def, &column_name.value).map(|i| &mut def.columns[i]) {
                    match op {
                        AlterColumnOperation::SetDefault { value } => {
                            c.default = super::column::literal_text(value)
                                .and_then(|t| canonical_default(&c.data_type, &t));
                        }
                        AlterColumnOperation::DropDefault => c.default = None,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn column_def_of(
    ctx: &Ctx<'_>,
    name: &str,
    dt: &DataType,
    opts: &[ColumnOption],
    table_cs: Option<&str>,
) -> Result<(ColumnDef, bool), DdlError> {
    column_def(ctx, name, dt, opts, table_cs)
}

#[allow(clippy::too_many_arguments)]
fn replace_column(
    ctx: &Ctx<'_>,
    def: &mut TableDef,
    old: &str,
    new: &str,
    dt: &DataType,
    options: &[ColumnOption],
    pos: Option<&MySQLColumnPosition>,
    if_flag: bool,
    table_cs: Option<&str>,
) -> Result<(), DdlError> {
    let Some(i) = col_index(def, old) else {
        if if_flag {
            return Ok(());
        }
        return Err(ctx.parse_err(format!("MODIFY/CHANGE of unknown column `{old}`")));
    };
    let (mut c, pk) = column_def(ctx, new, dt, options, table_cs)?;
    let old_name = def.columns[i].name.clone();
    let in_pk = def
        .primary_key
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&old_name));
    if in_pk {
        c.nullable = false;
        for k in &mut def.primary_key {
            if k.eq_ignore_ascii_case(&old_name) {
                *k = new.to_owned();
            }
        }
    }
    match pos {
        None => def.columns[i] = c,
        Some(p) => {
            def.columns.remove(i);
            place(def, c, Some(p), ctx)?;
        }
    }
    if pk {
        set_pk(ctx, def, vec![new.to_owned()])?;
    }
    Ok(())
}
