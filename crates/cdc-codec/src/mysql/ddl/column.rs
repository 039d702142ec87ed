//! Column definitions: a parsed column → a [`ColumnDef`] normalized as
//! `information_schema.COLUMNS` shows it (type text, lengths, precision, charset).

use sqlparser::ast::{
    CharacterLength, ColumnOption, DataType, EnumMember, ExactNumberInfo, Expr, ObjectName,
    TableConstraint, UnaryOperator, Value,
};

use crate::mysql::catalog::{
    canonical_default, charset_of_collation, normalize_charset, ColumnDef,
};

use super::{Ctx, DdlError, ZEROFILL_MARK};

/// Maximum bytes per character of a character set.
pub(super) fn mbmaxlen(charset: &str) -> u64 {
    match charset {
        "utf8mb4" | "utf16" | "utf16le" | "utf32" => 4,
        "utf8mb3" | "eucjpms" | "ujis" => 3,
        "big5" | "cp932" | "euckr" | "gb2312" | "gbk" | "sjis" | "ucs2" => 2,
        "gb18030" => 4,
        _ => 1,
    }
}

/// The text of a constant `DEFAULT` (a string, a number, possibly negated, a boolean as
/// MariaDB stores it: `1`/`0`); `None` for NULL and expressions (`CURRENT_TIMESTAMP`, `uuid()`).
pub(super) fn literal_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            Value::Boolean(b) => Some(if *b { "1" } else { "0" }.to_owned()),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => Some(format!("-{n}")),
                _ => None,
            },
            _ => None,
        },
        Expr::Nested(inner) => literal_text(inner),
        _ => None,
    }
}

/// A `sqlparser` column definition turned into what `information_schema.COLUMNS` says.
pub(super) fn column_def(
    ctx: &Ctx<'_>,
    name: &str,
    data_type: &DataType,
    options: &[ColumnOption],
    default_charset: Option<&str>,
) -> Result<(ColumnDef, bool), DdlError> {
    let mut nullable = true;
    let mut primary = false;
    let mut charset: Option<String> = None;
    let mut collation_charset: Option<String> = None;
    let mut zerofill = false;
    let mut default: Option<String> = None;
    for o in options {
        match o {
            ColumnOption::NotNull => nullable = false,
            ColumnOption::Null => nullable = true,
            ColumnOption::PrimaryKey(_) => {
                primary = true;
                nullable = false;
            }
            ColumnOption::CharacterSet(cs) => charset = Some(normalize_charset(&obj_last(cs))),
            ColumnOption::Collation(c) => {
                collation_charset = Some(charset_of_collation(&obj_last(c)))
            }
            ColumnOption::Comment(c) if c == ZEROFILL_MARK => zerofill = true,
            ColumnOption::Default(e) => default = literal_text(e),
            _ => {}
        }
    }
    let mut dt = data_type;
    while let DataType::Collate(inner, c) = dt {
        collation_charset = Some(charset_of_collation(&obj_last(c)));
        dt = inner;
    }
    if let DataType::Zerofill(inner) = dt {
        zerofill = true;
        dt = inner;
    }
    let charset = charset
        .or(collation_charset)
        .or_else(|| default_charset.map(normalize_charset));
    let mut c = ColumnDef {
        name: name.to_owned(),
        data_type: String::new(),
        column_type: String::new(),
        unsigned: false,
        nullable,
        char_max_length: None,
        numeric_precision: None,
        numeric_scale: None,
        datetime_precision: None,
        charset: None,
        enum_values: Vec::new(),
        default: None,
    };
    let int = |c: &mut ColumnDef, ty: &str, width: Option<u64>, unsigned: bool| {
        let (signed_w, unsigned_w, prec) = match ty {
            "tinyint" => (4, 3, 3),
            "smallint" => (6, 5, 5),
            "mediumint" => (9, 8, if unsigned { 8 } else { 7 }),
            "int" => (11, 10, 10),
            _ => (20, 20, if unsigned { 20 } else { 19 }),
        };
        let w = width.unwrap_or(if unsigned || zerofill {
            unsigned_w
        } else {
            signed_w
        });
        c.data_type = ty.into();
        c.column_type = format!("{ty}({w})");
        c.unsigned = unsigned || zerofill;
        c.numeric_precision = Some(prec);
        c.numeric_scale = Some(0);
    };
    // MariaDB reports the byte maximum of TEXT types as CHARACTER_MAXIMUM_LENGTH.
    let text = |c: &mut ColumnDef, ty: &str, max: u64, cs: &Option<String>| {
        c.data_type = ty.into();
        c.column_type = ty.into();
        c.char_max_length = Some(max);
        c.charset = Some(cs.clone().unwrap_or_else(|| "latin1".into()));
    };
    let sized_text = |c: &mut ColumnDef, chars: Option<u64>, blob: bool, cs: &Option<String>| {
        let cs = cs.clone().unwrap_or_else(|| "latin1".into());
        let bytes = chars.map(|n| {
            if blob {
                n
            } else {
                n.saturating_mul(mbmaxlen(&cs))
            }
        });
        let (ty, max) = match bytes {
            Some(b) if b < 256 => ("tiny", 255u64),
            None => ("", 65_535),
            Some(b) if b < 65_536 => ("", 65_535),
            Some(b) if b < 16_777_216 => ("medium", 16_777_215),
            Some(_) => ("long", 4_294_967_295),
        };
        let ty = format!("{ty}{}", if blob { "blob" } else { "text" });
        c.data_type = ty.clone();
        c.column_type = ty;
        c.char_max_length = Some(max);
        if !blob {
            c.charset = Some(cs);
        }
    };
    let char_len = |l: &Option<CharacterLength>| match l {
        Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
        _ => None,
    };
    let chars = |c: &mut ColumnDef, ty: &str, len: u64, cs: Option<String>| {
        c.data_type = ty.into();
        c.column_type = format!("{ty}({len})");
        c.char_max_length = Some(len);
        c.charset = Some(cs.unwrap_or_else(|| "latin1".into()));
    };
    let decimal = |c: &mut ColumnDef, info: &ExactNumberInfo, unsigned: bool| {
        let (p, s) = match info {
            ExactNumberInfo::None => (10, 0),
            ExactNumberInfo::Precision(p) => (*p, 0),
            ExactNumberInfo::PrecisionAndScale(p, s) => (*p, (*s).max(0) as u64),
        };
        c.data_type = "decimal".into();
        c.column_type = format!("decimal({p},{s})");
        c.unsigned = unsigned || zerofill;
        c.numeric_precision = Some(p as u32);
        c.numeric_scale = Some(s as u32);
    };
    let float = |c: &mut ColumnDef, info: &ExactNumberInfo, double: bool, unsigned: bool| {
        let mut double = double;
        match info {
            ExactNumberInfo::PrecisionAndScale(p, s) => {
                c.column_type = format!("{}({p},{s})", if double { "double" } else { "float" });
                c.numeric_precision = Some(*p as u32);
                c.numeric_scale = Some((*s).max(0) as u32);
            }
            ExactNumberInfo::Precision(p) if !double => {
                // FLOAT(p): single precision up to 24 bits, double above.
                double = *p > 24;
                c.column_type = if double { "double" } else { "float" }.into();
                c.numeric_precision = Some(if double { 22 } else { 12 });
            }
            _ => {
                c.column_type = if double { "double" } else { "float" }.into();
                c.numeric_precision = Some(if double { 22 } else { 12 });
            }
        }
        c.data_type = if double { "double" } else { "float" }.into();
        c.unsigned = unsigned || zerofill;
    };
    let temporal = |c: &mut ColumnDef, ty: &str, fsp: Option<u64>| {
        let f = fsp.unwrap_or(0);
        c.data_type = ty.into();
        c.column_type = if f > 0 {
            format!("{ty}({f})")
        } else {
            ty.into()
        };
        c.datetime_precision = Some(f as u32);
    };
    match dt {
        DataType::TinyInt(w) => int(&mut c, "tinyint", *w, false),
        DataType::TinyIntUnsigned(w) => int(&mut c, "tinyint", *w, true),
        DataType::Bool | DataType::Boolean => int(&mut c, "tinyint", Some(1), false),
        DataType::SmallInt(w) | DataType::Int2(w) => int(&mut c, "smallint", *w, false),
        DataType::SmallIntUnsigned(w) | DataType::Int2Unsigned(w) => {
            int(&mut c, "smallint", *w, true)
        }
        DataType::MediumInt(w) => int(&mut c, "mediumint", *w, false),
        DataType::MediumIntUnsigned(w) => int(&mut c, "mediumint", *w, true),
        DataType::Int(w) | DataType::Integer(w) | DataType::Int4(w) => {
            int(&mut c, "int", *w, false)
        }
        DataType::IntUnsigned(w) | DataType::IntegerUnsigned(w) | DataType::Int4Unsigned(w) => {
            int(&mut c, "int", *w, true)
        }
        DataType::BigInt(w) | DataType::Int8(w) => int(&mut c, "bigint", *w, false),
        DataType::BigIntUnsigned(w) | DataType::Int8Unsigned(w) => int(&mut c, "bigint", *w, true),
        DataType::Decimal(i) | DataType::Dec(i) | DataType::Numeric(i) => decimal(&mut c, i, false),
        DataType::DecimalUnsigned(i) | DataType::DecUnsigned(i) => decimal(&mut c, i, true),
        DataType::Float(i) => float(&mut c, i, false, false),
        DataType::FloatUnsigned(i) => float(&mut c, i, false, true),
        DataType::Float4 => float(&mut c, &ExactNumberInfo::None, false, false),
        DataType::Double(i) => float(&mut c, i, true, false),
        DataType::DoubleUnsigned(i) => float(&mut c, i, true, true),
        DataType::DoublePrecision | DataType::Real | DataType::Float8 => {
            float(&mut c, &ExactNumberInfo::None, true, false)
        }
        DataType::DoublePrecisionUnsigned | DataType::RealUnsigned => {
            float(&mut c, &ExactNumberInfo::None, true, true)
        }
        DataType::Bit(n) => {
            let n = n.unwrap_or(1);
            c.data_type = "bit".into();
            c.column_type = format!("bit({n})");
            c.numeric_precision = Some(n as u32);
        }
        DataType::Date => {
            c.data_type = "date".into();
            c.column_type = "date".into();
        }
        DataType::Time(fsp, _) => temporal(&mut c, "time", *fsp),
        DataType::Datetime(fsp) => temporal(&mut c, "datetime", *fsp),
        DataType::Timestamp(fsp, _) => temporal(&mut c, "timestamp", *fsp),
        DataType::Char(l) | DataType::Character(l) => {
            if charset.as_deref() == Some("binary") {
                let n = char_len(l).unwrap_or(1);
                c.data_type = "binary".into();
                c.column_type = format!("binary({n})");
                c.char_max_length = Some(n);
            } else {
                chars(&mut c, "char", char_len(l).unwrap_or(1), charset)
            }
        }
        DataType::Varchar(l) | DataType::CharVarying(l) | DataType::CharacterVarying(l) => {
            let n = char_len(l).ok_or_else(|| {
                ctx.parse_err(format!("VARCHAR without a length in column `{name}`"))
            })?;
            if charset.as_deref() == Some("binary") {
                c.data_type = "varbinary".into();
                c.column_type = format!("varbinary({n})");
                c.char_max_length = Some(n);
            } else {
                chars(&mut c, "varchar", n, charset)
            }
        }
        DataType::Nvarchar(l) => {
            let n = char_len(l).ok_or_else(|| {
                ctx.parse_err(format!("NVARCHAR without a length in column `{name}`"))
            })?;
            chars(&mut c, "varchar", n, Some("utf8mb3".into()))
        }
        DataType::Binary(n) => {
            let n = n.unwrap_or(1);
            c.data_type = "binary".into();
            c.column_type = format!("binary({n})");
            c.char_max_length = Some(n);
        }
        DataType::Varbinary(l) => {
            let n = match l {
                Some(sqlparser::ast::BinaryLength::IntegerLength { length }) => *length,
                _ => {
                    return Err(
                        ctx.parse_err(format!("VARBINARY without a length in column `{name}`"))
                    )
                }
            };
            c.data_type = "varbinary".into();
            c.column_type = format!("varbinary({n})");
            c.char_max_length = Some(n);
        }
        DataType::TinyText => text(&mut c, "tinytext", 255, &charset),
        DataType::Text => sized_text(&mut c, None, false, &charset),
        DataType::MediumText => text(&mut c, "mediumtext", 16_777_215, &charset),
        DataType::LongText => text(&mut c, "longtext", 4_294_967_295, &charset),
        DataType::TinyBlob => {
            c.data_type = "tinyblob".into();
            c.column_type = "tinyblob".into();
            c.char_max_length = Some(255);
        }
        DataType::Blob(n) => sized_text(&mut c, *n, true, &None),
        DataType::MediumBlob => {
            c.data_type = "mediumblob".into();
            c.column_type = "mediumblob".into();
            c.char_max_length = Some(16_777_215);
        }
        DataType::LongBlob => {
            c.data_type = "longblob".into();
            c.column_type = "longblob".into();
            c.char_max_length = Some(4_294_967_295);
        }
        DataType::JSON => {
            // MariaDB's JSON is an alias of LONGTEXT (utf8mb4, binary collation).
            text(&mut c, "longtext", 4_294_967_295, &Some("utf8mb4".into()))
        }
        DataType::Enum(members, _) => {
            let ls: Vec<String> = members
                .iter()
                .map(|m| match m {
                    EnumMember::Name(n) | EnumMember::NamedValue(n, _) => n.clone(),
                })
                .collect();
            set_labels(&mut c, "enum", ls, charset);
        }
        DataType::Set(members) => set_labels(&mut c, "set", members.clone(), charset),
        DataType::Uuid => {
            c.data_type = "uuid".into();
            c.column_type = "uuid".into();
        }
        DataType::Custom(n, mods) => {
            let custom_name = obj_last(n).to_ascii_lowercase();
            let arg = mods.first().map(|m| m.to_string());
            let num = arg.as_deref().and_then(|a| a.parse::<u64>().ok());
            match custom_name.as_str() {
                "serial" => {
                    int(&mut c, "bigint", None, true);
                    c.nullable = false;
                }
                "text" => sized_text(&mut c, num, false, &charset),
                "int1" => int(&mut c, "tinyint", num, false),
                "int3" | "middleint" => int(&mut c, "mediumint", num, false),
                "fixed" => decimal(&mut c, &ExactNumberInfo::None, false),
                "nchar" => chars(&mut c, "char", num.unwrap_or(1), Some("utf8mb3".into())),
                "year" => {
                    c.data_type = "year".into();
                    c.column_type = "year(4)".into();
                }
                "inet4" | "inet6" | "geometry" | "point" | "linestring" | "polygon"
                | "multipoint" | "multilinestring" | "multipolygon" | "geometrycollection" => {
                    c.data_type = custom_name.clone();
                    c.column_type = custom_name.clone();
                }
                other => {
                    return Err(ctx
                        .unsupported(None, format!("column `{name}` has unknown type `{other}`")))
                }
            }
        }
        other => {
            return Err(ctx.unsupported(
                None,
                format!("column `{name}` has unsupported type `{other}`"),
            ))
        }
    }
    if zerofill {
        c.column_type.push_str(" unsigned zerofill");
    } else if c.unsigned {
        c.column_type.push_str(" unsigned");
    }
    c.default = default.and_then(|t| canonical_default(&c.data_type, &t));
    Ok((c, primary))
}

fn set_labels(c: &mut ColumnDef, ty: &str, labels: Vec<String>, cs: Option<String>) {
    let quoted: Vec<String> = labels
        .iter()
        .map(|l| format!("'{}'", l.replace('\'', "''")))
        .collect();
    c.data_type = ty.into();
    c.column_type = format!("{ty}({})", quoted.join(","));
    let lens = labels.iter().map(|l| l.chars().count() as u64);
    c.char_max_length = Some(if ty == "enum" {
        lens.max().unwrap_or(0)
    } else {
        lens.sum::<u64>() + labels.len().saturating_sub(1) as u64
    });
    c.charset = Some(cs.unwrap_or_else(|| "latin1".into()));
    c.enum_values = labels;
}

fn obj_last(n: &ObjectName) -> String {
    n.0.last()
        .map(|p| {
            p.as_ident()
                .map(|i| i.value.clone())
                .unwrap_or_else(|| p.to_string())
        })
        .unwrap_or_default()
}

/// Primary-key column names of a table constraint, if it is one.
pub(super) fn pk_columns(c: &TableConstraint) -> Option<Vec<String>> {
    match c {
        TableConstraint::PrimaryKey(pk) => Some(
            pk.columns
                .iter()
                .map(|ic| index_column_name(&ic.column.expr))
                .collect(),
        ),
        _ => None,
    }
}

/// `col` or `col(10)` (a prefix length) → `col`.
fn index_column_name(e: &sqlparser::ast::Expr) -> String {
    use sqlparser::ast::Expr;
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::Function(f) => obj_last(&f.name),
        other => other.to_string(),
    }
}
