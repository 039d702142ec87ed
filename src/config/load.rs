//! Loading: the main file, the connector files and environment overrides; figment's errors
//! turned into one line each.

use std::path::Path;

use figment::providers::{Format, Toml};
use figment::Figment;

use super::*;

/// Loads the main file, every `*.toml` in the connectors directory, and the environment.
pub fn load(main_path: &Path) -> Result<Config, ConfigError> {
    load_with_env(main_path, std::env::vars())
}

/// [`load`] with an explicit environment, so tests need not mutate the process environment.
pub fn load_with_env(
    main_path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    load_selected(main_path, None, env)
}

/// Loads the main file and, when `source_file` is given, that one source file instead of the
/// connectors directory: the way one systemd instance (`cdc-agent@NAME`) runs one source while
/// sharing the main file with the others.
pub fn load_selected(
    main_path: &Path,
    source_file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    check_toml_file(main_path)?;
    let main_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| {
            !k[ENV_PREFIX.len()..]
                .to_ascii_uppercase()
                .starts_with("SOURCES__")
        })
        .cloned()
        .collect();
    let main: MainConfig = extract(
        Figment::from(Toml::file(main_path)).merge(env_provider(ENV_PREFIX, &main_env)),
        main_path,
        ENV_PREFIX,
    )?;
    let main = resolve_main(main, main_path)?;

    if let Some(file) = source_file {
        let source = load_source(file, &env)?;
        needs_registry(&main, main_path, &source)?;
        return Ok(Config {
            path: main_path.to_path_buf(),
            main,
            sources: vec![source],
        });
    }
    let dir = if main.agent.connectors_dir.is_absolute() {
        main.agent.connectors_dir.clone()
    } else {
        main_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&main.agent.connectors_dir)
    };
    let mut files = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
                    files.push(p);
                }
            }
        }
        Err(e) => {
            return Err(ConfigError::new(
                main_path.display(),
                Some("agent.connectors_dir".into()),
                format!("cannot read directory {}: {e}", dir.display()),
                "create the directory or point agent.connectors_dir at the folder of source files",
            ))
        }
    }
    files.sort();

    let mut sources: Vec<SourceConfig> = Vec::with_capacity(files.len());
    for file in files {
        let source = load_source(&file, &env)?;
        needs_registry(&main, main_path, &source)?;
        if let Some(other) = sources.iter().find(|s| s.name == source.name) {
            return Err(ConfigError::new(
                file.display(),
                Some("name".into()),
                format!(
                    "source name `{}` is already used by {}",
                    source.name,
                    other.file.display()
                ),
                "give every source a unique name",
            ));
        }
        sources.push(source);
    }
    Ok(Config {
        path: main_path.to_path_buf(),
        main,
        sources,
    })
}

/// An Avro source needs the registry the main file may leave out.
fn needs_registry(
    main: &MainConfig,
    main_path: &Path,
    s: &SourceConfig,
) -> Result<(), ConfigError> {
    if s.format == OutputFormat::Avro && main.schema_registry.url.is_empty() {
        return Err(ConfigError::new(
            main_path.display(),
            Some("schema_registry.url".into()),
            format!(
                "no schema registry, and source `{}` ({}) writes Avro",
                s.name,
                s.file.display()
            ),
            "set [schema_registry] url, or `format = \"json\"` in the source file",
        ));
    }
    Ok(())
}

pub(super) fn load_source(
    file: &Path,
    env: &[(String, String)],
) -> Result<SourceConfig, ConfigError> {
    let text = check_toml_file(file)?;
    // The name selects the environment overrides, so read it before the full extraction.
    let name = text
        .get("name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            ConfigError::new(
                file.display(),
                Some("name".into()),
                "missing string `name`",
                "add `name = \"<unique source name>\"` at the top of the file",
            )
        })?
        .to_owned();
    let prefix = source_env_prefix(&name);
    let mut source: SourceConfig = extract(
        Figment::from(Toml::file(file)).merge(env_provider(&prefix, env)),
        file,
        &prefix,
    )?;
    source.file = file.to_path_buf();
    validate_source(source)
}

pub(super) fn resolve_main(mut m: MainConfig, path: &Path) -> Result<MainConfig, ConfigError> {
    let origin = path.display().to_string();
    for (p, n) in &m.kafka.partitions_by_topic {
        let key = format!("kafka.partitions_by_topic.\"{p}\"");
        if let Err(e) = regex::Regex::new(&format!("^(?:{p})$")) {
            return Err(ConfigError::new(
                origin,
                Some(key),
                format!("`{p}` is not a valid regular expression: {e}"),
                "write a regular expression over topic names (escape dots: `shop\\\\.orders`)",
            ));
        }
        if *n < 1 {
            return Err(ConfigError::new(
                origin,
                Some(key),
                format!("{n} partitions"),
                "set at least 1",
            ));
        }
    }
    const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
    if !CODECS.contains(&m.kafka.compression.as_str()) {
        return Err(ConfigError::new(
            origin,
            Some("kafka.compression".into()),
            format!("unknown codec `{}`", m.kafka.compression),
            "use one of none, gzip, snappy, lz4, zstd",
        ));
    }
    if let Some(t) = &m.kafka.dead_letter_topic {
        let valid = !t.is_empty()
            && t.len() <= 249
            && t != "."
            && t != ".."
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(ConfigError::new(
                origin,
                Some("kafka.dead_letter_topic".into()),
                format!("`{t}` is not a valid Kafka topic name"),
                "use at most 249 letters, digits, `.`, `-` and `_`",
            ));
        }
    }
    if m.kafka.bootstrap_servers.trim().is_empty() {
        return Err(ConfigError::new(
            origin,
            Some("kafka.bootstrap_servers".into()),
            "empty bootstrap server list",
            "set it to `host:port[,host:port…]`",
        ));
    }
    let url = &m.schema_registry.url;
    if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(ConfigError::new(
            origin,
            Some("schema_registry.url".into()),
            format!("`{}` is not an http(s) URL", m.schema_registry.url),
            "set it to the registry's base URL, e.g. http://127.0.0.1:8081",
        ));
    }
    resolve_kafka_security(&mut m.kafka, &origin)?;
    if let Some(ca) = &m.schema_registry.ca_file {
        check_readable(ca, &origin, "schema_registry.ca_file")?;
    }
    if m.http.enabled && m.http.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(ConfigError::new(
            origin,
            Some("http.listen".into()),
            format!("`{}` is not an address with a port", m.http.listen),
            "set it to `host:port` with an IP address, e.g. 127.0.0.1:9745 (or [::1]:9745)",
        ));
    }
    if let Some(file) = &m.schema_registry.password_file {
        m.schema_registry.password = Some(read_secret_file(
            file,
            &origin,
            "schema_registry.password_file",
        )?);
    }
    Ok(m)
}

/// Reads and syntax-checks a TOML file, so a missing file or a syntax error is reported with
/// its line instead of being treated as an empty file.
pub(crate) fn check_toml_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path.display(),
            None,
            format!("cannot read config file: {e}"),
            "check the path given with --config (or the connectors directory)",
        )
    })?;
    text.parse::<toml::Table>().map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        ConfigError::new(
            format!("{}:{line}", path.display()),
            None,
            format!("TOML syntax error: {}", e.message().trim()),
            "correct the TOML syntax on that line",
        )
    })
}

/// Environment overrides as a figment provider. figment's own `Env` reads the process
/// environment; this one takes the variables as data so that loading is a pure function of
/// (files, environment) and tests need not mutate global state.
pub(crate) struct EnvOverrides {
    prefix: String,
    vars: Vec<(String, String)>,
}

impl figment::Provider for EnvOverrides {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("environment variables {}*", self.prefix))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        fn merge(into: &mut Dict, from: Dict) {
            for (k, v) in from {
                match (into.get_mut(&k), v) {
                    (Some(Value::Dict(_, a)), Value::Dict(_, b)) => merge(a, b),
                    (_, v) => {
                        into.insert(k, v);
                    }
                }
            }
        }
        let mut dict = Dict::new();
        for (k, v) in &self.vars {
            let Some(rest) = strip_prefix_ci(k, &self.prefix) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if key.is_empty() {
                continue;
            }
            let value: Value = match v.parse::<Value>() {
                // "0123" is text (a PIN, a password), not the number 123.
                Ok(Value::Num(..)) if keeps_text(v) => Value::from(v.clone()),
                Ok(parsed) => parsed,
                Err(_) => Value::from(v.clone()),
            };
            if let Some(nested) = figment::util::nest(&key, value).into_dict() {
                merge(&mut dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Whether a numeric-looking environment value would lose characters as a number (a leading
/// zero or sign).
fn keeps_text(v: &str) -> bool {
    let digits = v.trim_start_matches('-');
    v.starts_with('+') || (digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0."))
}

fn strip_prefix_ci<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    (key.len() >= prefix.len() && key[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &key[prefix.len()..])
}

pub(crate) fn env_provider(prefix: &str, env: &[(String, String)]) -> EnvOverrides {
    EnvOverrides {
        prefix: prefix.to_string(),
        vars: env.to_vec(),
    }
}

pub(crate) fn extract<T: serde::de::DeserializeOwned>(
    figment: Figment,
    file: &Path,
    env_prefix: &str,
) -> Result<T, ConfigError> {
    figment.extract().map_err(|e| explain(e, file, env_prefix))
}

/// Turns a figment error into one line with origin, key and fix.
fn explain(e: figment::Error, file: &Path, env_prefix: &str) -> ConfigError {
    use figment::error::Kind;
    let origin = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
        Some(figment::Source::File(p)) => p.display().to_string(),
        _ => match &e.metadata {
            Some(m) if m.name.starts_with("environment") => {
                format!(
                    "environment variable {env_prefix}{}",
                    e.path.join("__").to_ascii_uppercase()
                )
            }
            _ => file.display().to_string(),
        },
    };
    let key = (!e.path.is_empty()).then(|| e.path.join("."));
    let (problem, fix) = match &e.kind {
        Kind::UnknownField(field, expected) => (
            format!("unknown key `{field}`"),
            if expected.is_empty() {
                "remove it: this section takes no keys".to_string()
            } else {
                format!("remove it or use one of: {}", expected.join(", "))
            },
        ),
        Kind::MissingField(field) => (
            format!("missing required key `{field}`"),
            format!("add `{field} = …` to this section"),
        ),
        Kind::InvalidType(actual, expected) => (
            format!("wrong type: found {actual}, expected {expected}"),
            format!("set it to {expected}"),
        ),
        Kind::InvalidValue(actual, expected) => (
            format!("invalid value {actual}, expected {expected}"),
            format!("set it to {expected}"),
        ),
        Kind::UnknownVariant(v, expected) => (
            format!("unknown value `{v}`"),
            format!("use one of: {}", expected.join(", ")),
        ),
        other => (other.to_string(), "see config.example.toml".to_string()),
    };
    // For a missing field the path names the section; put the field into the key.
    let key = match (&e.kind, key) {
        (Kind::MissingField(f), Some(k)) => Some(format!("{k}.{f}")),
        (Kind::MissingField(f), None) => Some(f.to_string()),
        (Kind::UnknownField(f, _), Some(k)) if !k.ends_with(f.as_str()) => Some(format!("{k}.{f}")),
        (Kind::UnknownField(f, _), None) => Some(f.clone()),
        (_, k) => k,
    };
    ConfigError::new(origin, key, problem, fix)
}

/// `CDC_AGENT__SOURCES__<NAME>__` with the name upper-cased and `-` turned into `_`.
pub fn source_env_prefix(name: &str) -> String {
    let norm: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{ENV_PREFIX}SOURCES__{norm}__")
}
