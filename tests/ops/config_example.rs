//! The shipped examples document every configuration key. The keys are not listed by hand:
//! they are read from the serde structs themselves (serde-reflection records the field list
//! serde derives for each struct), so a key added to any config struct, by anyone, fails this
//! test until the example shows it.
//!
//! Examples may show optional keys commented out (`# password = "..."`); such lines count as
//! documented, and the examples with every such line switched on must still load (so a
//! commented key cannot be a stale or misspelt one either).

use std::collections::BTreeSet;
use std::path::Path;

use cdc_agent::apply::config::ApplyConfig;
use cdc_agent::config::{MainConfig, SourceConfig};
use serde_reflection::{ContainerFormat, Format, Registry, Tracer, TracerConfig};

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Switches on commented-out keys and sections: `# key = v`, `# "a.b" = v`, `# [section]`.
fn uncomment(text: &str) -> String {
    text.lines()
        .map(|line| {
            let Some(rest) = line.strip_prefix("# ") else {
                return line.to_string();
            };
            let is_section = rest.starts_with('[') && rest.ends_with(']') && !rest.contains(' ');
            let is_key = rest.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '"' | '.' | '-'))
            });
            if is_section || is_key {
                rest.to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every key path (`kafka.bootstrap_servers`, `postgres.slot_name`) serde accepts for `T`.
fn key_paths<T: for<'de> serde::Deserialize<'de>>() -> BTreeSet<String> {
    let mut tracer = Tracer::new(TracerConfig::default());
    let (root, _) = tracer
        .trace_simple_type::<T>()
        .unwrap_or_else(|e| panic!("cannot trace the config struct: {e}"));
    // Enum variants need not be complete: only struct fields matter here.
    let registry = tracer.registry_unchecked();
    let mut out = BTreeSet::new();
    walk(&registry, &root, "", &mut out);
    out
}

fn walk(registry: &Registry, format: &Format, path: &str, out: &mut BTreeSet<String>) {
    match format {
        Format::Option(inner) => walk(registry, inner, path, out),
        Format::TypeName(name) => match registry.get(name) {
            Some(ContainerFormat::Struct(fields)) => {
                for f in fields {
                    let p = if path.is_empty() {
                        f.name.clone()
                    } else {
                        format!("{path}.{}", f.name)
                    };
                    walk(registry, &f.value, &p, out);
                }
            }
            Some(ContainerFormat::NewTypeStruct(inner)) => walk(registry, inner, path, out),
            _ => {
                out.insert(path.to_string());
            }
        },
        _ => {
            out.insert(path.to_string());
        }
    }
}

fn has_path(table: &toml::Table, path: &str) -> bool {
    let mut cur = table;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        match cur.get(*part) {
            Some(toml::Value::Table(t)) if i + 1 < parts.len() => cur = t,
            Some(_) if i + 1 == parts.len() => return true,
            _ => return false,
        }
    }
    false
}

fn missing(paths: &BTreeSet<String>, tables: &[toml::Table]) -> Vec<String> {
    paths
        .iter()
        .filter(|p| !tables.iter().any(|t| has_path(t, p)))
        .cloned()
        .collect()
}

const MAIN_EXAMPLES: [&str; 1] = ["config.example.toml"];
const APPLY_EXAMPLE: &str = "apply.toml.example";
const SOURCE_EXAMPLES: [&str; 2] = [
    "connectors/postgres.toml.example",
    "connectors/mysql.toml.example",
];

#[test]
fn the_key_walk_sees_nested_and_optional_sections() {
    // Guards the walk itself: were it blind to nesting, every later check would pass vacuously.
    let main = key_paths::<MainConfig>();
    assert!(main.contains("kafka.bootstrap_servers"), "{main:?}");
    assert!(main.contains("schema_registry.password"), "{main:?}");
    let source = key_paths::<SourceConfig>();
    assert!(source.contains("postgres.slot_name"), "{source:?}");
    assert!(source.contains("mysql.server_id"), "{source:?}");
    assert!(source.contains("snapshot.mode"), "{source:?}");
    assert!(
        !source.contains("file"),
        "skipped fields are not keys: {source:?}"
    );
}

#[test]
fn the_main_example_shows_every_key_of_the_main_file() {
    let tables: Vec<toml::Table> = MAIN_EXAMPLES
        .iter()
        .map(|f| toml::from_str(&uncomment(&read(f))).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect();
    let gaps = missing(&key_paths::<MainConfig>(), &tables);
    assert!(
        gaps.is_empty(),
        "keys missing from {MAIN_EXAMPLES:?} (add each with its default and a comment): {gaps:?}"
    );
}

#[test]
fn the_source_examples_together_show_every_key_of_a_source_file() {
    let tables: Vec<toml::Table> = SOURCE_EXAMPLES
        .iter()
        .map(|f| toml::from_str(&uncomment(&read(f))).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect();
    let gaps = missing(&key_paths::<SourceConfig>(), &tables);
    assert!(
        gaps.is_empty(),
        "keys missing from {SOURCE_EXAMPLES:?} (add each with its default and a comment): {gaps:?}"
    );
}

#[test]
fn every_example_with_its_commented_keys_switched_on_still_loads() {
    for f in MAIN_EXAMPLES {
        if let Err(e) = toml::from_str::<MainConfig>(&uncomment(&read(f))) {
            panic!("{f} (commented keys on): {e}");
        }
    }
    for f in SOURCE_EXAMPLES {
        if let Err(e) = toml::from_str::<SourceConfig>(&uncomment(&read(f))) {
            panic!("{f} (commented keys on): {e}");
        }
    }
}

#[test]
fn the_apply_example_shows_every_key_of_apply_toml_and_loads_with_them_on() {
    let text = uncomment(&read(APPLY_EXAMPLE));
    let table: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{APPLY_EXAMPLE}: {e}"));
    let gaps = missing(&key_paths::<ApplyConfig>(), &[table]);
    assert!(
        gaps.is_empty(),
        "keys missing from {APPLY_EXAMPLE} (add each with its default and a comment): {gaps:?}"
    );
    // With every commented key on, `topics` and `topic_regex` are both set: the file must
    // still parse as the struct (the loader, not serde, refuses that pair).
    if let Err(e) = toml::from_str::<ApplyConfig>(&text) {
        panic!("{APPLY_EXAMPLE} (commented keys on): {e}");
    }
}
