//! Config loading against real files in a temporary directory, with an explicit environment.

use std::path::Path;

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(main: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cdc-agent.toml"), main).unwrap();
        std::fs::create_dir(dir.path().join("connectors")).unwrap();
        Self { dir }
    }

    fn source(self, file: &str, body: &str) -> Self {
        std::fs::write(self.dir.path().join("connectors").join(file), body).unwrap();
        self
    }

    fn main_path(&self) -> PathBuf {
        self.dir.path().join("cdc-agent.toml")
    }

    fn load(&self, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        load_with_env(
            &self.main_path(),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }
}

const MAIN: &str = r#"
[kafka]
bootstrap_servers = "127.0.0.1:19092"

[schema_registry]
url = "http://127.0.0.1:18081/apis/ccompat/v7"

[event_store]
topic = "demo.events"
"#;

const PG_SOURCE: &str = r#"
name = "demo-pg"
kind = "postgres"
topic_prefix = "demo"
host = "127.0.0.1"
port = 54315
user = "cdc_agent"
password = "pg-secret-pw"
database = "demo"

[postgres]
slot_name = "cdc_demo"
"#;

#[test]
fn a_good_config_loads_main_file_and_every_source() {
    let f = Fixture::new(MAIN).source("demo-pg.toml", PG_SOURCE).source(
        "shop.toml",
        "name = \"shop\"\nkind = \"mysql\"\ntopic_prefix = \"shop\"\nuser = \"cdc\"\n",
    );
    let cfg = f.load(&[]).unwrap();
    assert_eq!(cfg.main.kafka.bootstrap_servers, "127.0.0.1:19092");
    assert_eq!(cfg.main.kafka.compression, DEFAULT_COMPRESSION);
    assert_eq!(cfg.main.event_store.topic, "demo.events");
    assert!(cfg.main.event_store.headers, "headers on by default");
    assert_eq!(cfg.sources.len(), 2);
    let pg = &cfg.sources[0];
    assert_eq!(pg.name, "demo-pg");
    assert_eq!(pg.kind, SourceKind::Postgres);
    assert_eq!(pg.port(), 54315);
    assert_eq!(pg.snapshot.mode, SnapshotMode::Initial);
    assert_eq!(
        pg.postgres.as_ref().unwrap().slot_name.as_deref(),
        Some("cdc_demo")
    );
    assert_eq!(cfg.sources[1].port(), DEFAULT_MYSQL_PORT);
}

#[test]
fn an_unknown_key_in_the_main_file_names_file_and_key() {
    let f = Fixture::new(&MAIN.replace("bootstrap_servers", "bootstrap_server"));
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("cdc-agent.toml"), "{err}");
    assert_eq!(err.key.as_deref(), Some("kafka.bootstrap_server"), "{err}");
    assert!(err.to_string().contains("unknown key"), "{err}");
    assert!(err.fix.contains("bootstrap_servers"), "{err}");
}

#[test]
fn an_unknown_key_in_a_source_file_names_that_file_and_key() {
    let f = Fixture::new(MAIN).source("demo-pg.toml", &PG_SOURCE.replace("slot_name", "slot_nmae"));
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("connectors/demo-pg.toml"), "{err}");
    assert_eq!(err.key.as_deref(), Some("postgres.slot_nmae"), "{err}");
}

#[test]
fn a_wrong_type_names_file_key_and_expected_type() {
    let f = Fixture::new(MAIN).source(
        "demo-pg.toml",
        &PG_SOURCE.replace("port = 54315", "port = \"fifty\""),
    );
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("demo-pg.toml"), "{err}");
    assert_eq!(err.key.as_deref(), Some("port"), "{err}");
    assert!(err.problem.contains("wrong type"), "{err}");
    assert!(err.fix.contains("u16"), "{err}");
}

#[test]
fn a_missing_required_key_names_file_and_key() {
    let f = Fixture::new(&MAIN.replace("bootstrap_servers = ", "# bootstrap_servers = "));
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("cdc-agent.toml"), "{err}");
    assert_eq!(err.key.as_deref(), Some("kafka.bootstrap_servers"), "{err}");
    assert!(err.fix.contains("add `bootstrap_servers"), "{err}");

    let f = Fixture::new(MAIN).source("demo-pg.toml", &PG_SOURCE.replace("user = ", "# user = "));
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("demo-pg.toml"), "{err}");
    assert_eq!(err.key.as_deref(), Some("user"), "{err}");
}

#[test]
fn an_unknown_enum_value_lists_the_allowed_ones() {
    let f = Fixture::new(MAIN).source(
        "demo-pg.toml",
        &PG_SOURCE.replace("kind = \"postgres\"", "kind = \"oracle\""),
    );
    let err = f.load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("kind"), "{err}");
    assert!(
        err.fix.contains("postgres") && err.fix.contains("mysql"),
        "{err}"
    );
}

#[test]
fn environment_overrides_main_and_source_keys() {
    let f = Fixture::new(MAIN).source("demo-pg.toml", PG_SOURCE);
    let cfg = f
        .load(&[
            ("CDC_AGENT__KAFKA__BOOTSTRAP_SERVERS", "broker:9092"),
            ("CDC_AGENT__EVENT_STORE__ENABLED", "false"),
            ("CDC_AGENT__EVENT_STORE__HEADERS", "false"),
            ("CDC_AGENT__SOURCES__DEMO_PG__PASSWORD", "from-env"),
            (
                "CDC_AGENT__SOURCES__DEMO_PG__POSTGRES__SLOT_NAME",
                "other_slot",
            ),
            ("CDC_AGENT__SOURCES__DEMO_PG__PORT", "6000"),
            ("UNRELATED", "x"),
        ])
        .unwrap();
    assert_eq!(cfg.main.kafka.bootstrap_servers, "broker:9092");
    assert!(!cfg.main.event_store.enabled);
    assert!(!cfg.main.event_store.headers);
    let pg = &cfg.sources[0];
    assert_eq!(pg.password.as_ref().unwrap().expose(), "from-env");
    assert_eq!(pg.port(), 6000);
    assert_eq!(
        pg.postgres.as_ref().unwrap().slot_name.as_deref(),
        Some("other_slot")
    );
}

#[test]
fn a_bad_environment_override_names_the_variable() {
    let f = Fixture::new(MAIN).source("demo-pg.toml", PG_SOURCE);
    let err = f
        .load(&[("CDC_AGENT__SOURCES__DEMO_PG__PORT", "not-a-port")])
        .unwrap_err();
    assert_eq!(
        err.origin, "environment variable CDC_AGENT__SOURCES__DEMO_PG__PORT",
        "{err}"
    );
    assert_eq!(err.key.as_deref(), Some("port"), "{err}");

    let err = f.load(&[("CDC_AGENT__KAFKA__NOPE", "1")]).unwrap_err();
    assert!(err.origin.starts_with("environment variable"), "{err}");
    assert_eq!(err.key.as_deref(), Some("kafka.nope"), "{err}");
}

#[test]
fn a_toml_syntax_error_names_file_and_line() {
    let f = Fixture::new("[kafka]\nbootstrap_servers = \n");
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("cdc-agent.toml:2"), "{err}");
    assert!(err.problem.contains("syntax"), "{err}");
}

#[test]
fn a_missing_main_file_is_reported_not_treated_as_empty() {
    let f = Fixture::new(MAIN);
    let err = load_with_env(&f.dir.path().join("nope.toml"), std::iter::empty()).unwrap_err();
    assert!(err.origin.ends_with("nope.toml"), "{err}");
    assert!(err.problem.contains("cannot read"), "{err}");
}

#[test]
fn duplicate_source_names_are_rejected() {
    let f = Fixture::new(MAIN)
        .source("a.toml", PG_SOURCE)
        .source("b.toml", PG_SOURCE);
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("b.toml"), "{err}");
    assert_eq!(err.key.as_deref(), Some("name"));
}

#[test]
fn a_section_of_the_other_kind_is_rejected() {
    let f = Fixture::new(MAIN).source(
        "demo-pg.toml",
        &format!("{PG_SOURCE}\n[mysql]\nserver_id = 7\n"),
    );
    let err = f.load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("mysql"), "{err}");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let f = Fixture::new(MAIN).source("demo-pg.toml", PG_SOURCE);
    let cfg = f.load(&[]).unwrap();
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("pg-secret-pw"), "{dbg}");
    assert!(dbg.contains("***"));
}

#[test]
fn password_file_wins_over_password() {
    let f = Fixture::new(MAIN);
    let secret = f.dir.path().join("pw");
    std::fs::write(&secret, "s3cret\nignored\n").unwrap();
    let body = PG_SOURCE.replace(
        "database = \"demo\"",
        &format!(
            "database = \"demo\"\npassword_file = \"{}\"",
            secret.display()
        ),
    );
    let f = f.source("demo-pg.toml", &body);
    let cfg = f.load(&[]).unwrap();
    assert_eq!(cfg.sources[0].password.as_ref().unwrap().expose(), "s3cret");
}

#[test]
fn the_shipped_example_config_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = load_with_env(&root.join("config.example.toml"), std::iter::empty()).unwrap();
    assert!(!cfg.sources.is_empty());
}

#[test]
fn the_shipped_source_examples_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let f = Fixture::new(MAIN)
        .source(
            "pg.toml",
            &std::fs::read_to_string(root.join("connectors/postgres.toml.example")).unwrap(),
        )
        .source(
            "my.toml",
            &std::fs::read_to_string(root.join("connectors/mysql.toml.example")).unwrap(),
        );
    let cfg = f.load(&[]).unwrap();
    assert_eq!(cfg.sources.len(), 2);
}

#[test]
fn schema_history_recovery_defaults_to_stop_and_accepts_rebuild() {
    let base = "name = \"shop\"\nkind = \"mysql\"\ntopic_prefix = \"shop\"\nuser = \"cdc\"\n";
    let f = Fixture::new(MAIN).source("shop.toml", &format!("{base}[mysql]\n"));
    let cfg = f.load(&[]).unwrap();
    let my = cfg.sources[0].mysql.as_ref().unwrap();
    assert_eq!(my.schema_history_recovery, SchemaHistoryRecovery::Stop);

    let f = Fixture::new(MAIN).source(
        "shop.toml",
        &format!("{base}[mysql]\nschema_history_recovery = \"rebuild\"\n"),
    );
    let cfg = f.load(&[]).unwrap();
    let my = cfg.sources[0].mysql.as_ref().unwrap();
    assert_eq!(my.schema_history_recovery, SchemaHistoryRecovery::Rebuild);
}

#[test]
fn an_unknown_schema_history_recovery_names_the_key() {
    let f = Fixture::new(MAIN).source(
        "shop.toml",
        "name = \"shop\"\nkind = \"mysql\"\ntopic_prefix = \"shop\"\nuser = \"cdc\"\n\
         [mysql]\nschema_history_recovery = \"ignore\"\n",
    );
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("shop.toml"), "{err}");
    assert!(err.to_string().contains("schema_history_recovery"), "{err}");
}

/// A main file with every secret-bearing key set, each to a distinct value.
fn main_with_secrets(dir: &Path) -> String {
    let pw = dir.join("kafka-pw");
    std::fs::write(&pw, "kafka-file-secret\n").unwrap();
    let reg = dir.join("registry-pw");
    std::fs::write(&reg, "registry-file-secret\r\n").unwrap();
    format!(
        r#"
[kafka]
bootstrap_servers = "127.0.0.1:19093"
security_protocol = "SASL_PLAINTEXT"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "cdc"
sasl_password_file = "{}"

[kafka.properties]
"sasl.oauthbearer.client.secret" = "property-secret"

[schema_registry]
url = "https://registry.example:8081"
username = "reg"
password_file = "{}"
"#,
        pw.display(),
        reg.display()
    )
}

#[test]
fn no_secret_of_any_kind_appears_when_the_whole_config_is_debug_formatted() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new(&main_with_secrets(dir.path())).source("demo-pg.toml", PG_SOURCE);
    let cfg = f
        .load(&[("CDC_AGENT__SOURCES__DEMO_PG__PASSWORD", "env-secret")])
        .unwrap();
    assert_eq!(
        cfg.sources[0].password.as_ref().unwrap().expose(),
        "env-secret"
    );
    assert_eq!(
        cfg.main.kafka.sasl_password.as_ref().unwrap().expose(),
        "kafka-file-secret",
        "the trailing newline is not part of the secret"
    );
    assert_eq!(
        cfg.main.schema_registry.password.as_ref().unwrap().expose(),
        "registry-file-secret"
    );
    let dbg = format!("{cfg:?} {:#?}", cfg);
    for secret in [
        "env-secret",
        "pg-secret-pw",
        "kafka-file-secret",
        "registry-file-secret",
        "property-secret",
    ] {
        assert!(!dbg.contains(secret), "{secret} leaked: {dbg}");
    }
}

#[test]
fn a_numeric_secret_from_the_environment_is_a_string() {
    let f = Fixture::new(MAIN).source("demo-pg.toml", PG_SOURCE);
    let cfg = f
        .load(&[("CDC_AGENT__SOURCES__DEMO_PG__PASSWORD", "0123")])
        .unwrap();
    assert_eq!(cfg.sources[0].password.as_ref().unwrap().expose(), "0123");
}

#[test]
fn a_missing_secret_file_names_the_key_and_the_file() {
    let main = MAIN.replace(
        "[schema_registry]",
        "security_protocol = \"SASL_SSL\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\n\
         sasl_password_file = \"/nonexistent/kafka-pw\"\n[schema_registry]",
    );
    let err = Fixture::new(&main).load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("kafka.sasl_password_file"));
    assert!(err.problem.contains("/nonexistent/kafka-pw"), "{err}");
}

#[test]
fn sasl_without_a_mechanism_or_sasl_keys_without_sasl_are_refused_with_the_key() {
    let main = MAIN.replace(
        "[schema_registry]",
        "security_protocol = \"SASL_SSL\"\nsasl_username = \"u\"\nsasl_password = \"p\"\n[schema_registry]",
    );
    let err = Fixture::new(&main).load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("kafka.sasl_mechanism"), "{err}");

    let main = MAIN.replace(
        "[schema_registry]",
        "sasl_username = \"u\"\n[schema_registry]",
    );
    let err = Fixture::new(&main).load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("kafka.sasl_username"), "{err}");
    assert!(err.fix.contains("SASL_SSL"), "{err}");

    let main = MAIN.replace(
        "[schema_registry]",
        "security_protocol = \"SASL_SSL\"\nsasl_mechanism = \"GSSAPI\"\n[schema_registry]",
    );
    let err = Fixture::new(&main).load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("kafka.sasl_mechanism"), "{err}");
}

#[test]
fn verify_full_without_a_root_certificate_names_sslrootcert() {
    let body = PG_SOURCE.replace(
        "slot_name = \"cdc_demo\"",
        "slot_name = \"cdc_demo\"\nsslmode = \"verify-full\"",
    );
    let err = Fixture::new(MAIN)
        .source("demo-pg.toml", &body)
        .load(&[])
        .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("postgres.sslrootcert"), "{err}");

    let body = PG_SOURCE.replace(
        "slot_name = \"cdc_demo\"",
        "sslmode = \"verify-full\"\nsslrootcert = \"/nonexistent/ca.pem\"",
    );
    let err = Fixture::new(MAIN)
        .source("demo-pg.toml", &body)
        .load(&[])
        .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("postgres.sslrootcert"), "{err}");
    assert!(err.problem.contains("/nonexistent/ca.pem"), "{err}");

    let body = PG_SOURCE.replace("slot_name = \"cdc_demo\"", "sslmode = \"verify_full\"");
    let err = Fixture::new(MAIN)
        .source("demo-pg.toml", &body)
        .load(&[])
        .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("postgres.sslmode"), "{err}");
    assert!(err.fix.contains("verify-full"), "lists the modes: {err}");
}

#[test]
fn the_system_roots_need_no_file_and_sslmode_defaults_to_prefer() {
    let body = PG_SOURCE.replace(
        "slot_name = \"cdc_demo\"",
        "sslmode = \"verify-full\"\nsslrootcert = \"system\"",
    );
    let cfg = Fixture::new(MAIN)
        .source("demo-pg.toml", &body)
        .load(&[])
        .unwrap();
    assert_eq!(
        cfg.sources[0].postgres.as_ref().unwrap().sslmode,
        PgSslMode::VerifyFull
    );
    let cfg = Fixture::new(MAIN)
        .source("demo-pg.toml", PG_SOURCE)
        .load(&[])
        .unwrap();
    assert_eq!(
        cfg.sources[0].postgres.as_ref().unwrap().sslmode,
        PgSslMode::Prefer
    );
}

#[test]
fn mysql_verify_identity_without_a_ca_names_ssl_ca() {
    let err = Fixture::new(MAIN)
        .source(
            "shop.toml",
            "name = \"shop\"\nkind = \"mysql\"\ntopic_prefix = \"shop\"\nuser = \"cdc\"\n\
             [mysql]\nssl_mode = \"verify_identity\"\n",
        )
        .load(&[])
        .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("mysql.ssl_ca"), "{err}");
}

#[test]
fn kafka_security_keys_reach_every_client_config_and_properties_win() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "pem").unwrap();
    let main = MAIN.replace(
        "[schema_registry]",
        &format!(
            "security_protocol = \"SASL_SSL\"\nsasl_mechanism = \"SCRAM-SHA-256\"\n\
             sasl_username = \"cdc\"\nsasl_password = \"pw\"\nssl_ca_location = \"{}\"\n\
             [kafka.properties]\n\"sasl.username\" = \"override\"\n[schema_registry]",
            ca.display()
        ),
    );
    let cfg = Fixture::new(&main).load(&[]).unwrap();
    let c = crate::sink::kafka::base_client_config(&cfg.main.kafka);
    assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
    assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
    assert_eq!(c.get("sasl.password"), Some("pw"));
    assert_eq!(c.get("ssl.ca.location"), ca.to_str());
    assert_eq!(c.get("sasl.username"), Some("override"));
}

#[test]
fn the_http_endpoint_defaults_to_loopback_and_a_lag_threshold() {
    let cfg = Fixture::new(MAIN).load(&[]).unwrap();
    assert!(cfg.main.http.enabled);
    assert_eq!(cfg.main.http.listen, DEFAULT_HTTP_LISTEN);
    assert!(cfg.main.http.listen.starts_with("127.0.0.1:"));
    assert_eq!(
        cfg.main.http.ready_max_lag_seconds,
        DEFAULT_READY_MAX_LAG_SECONDS
    );
}

#[test]
fn http_settings_are_read_from_the_main_file() {
    let main = format!("{MAIN}\n[http]\nlisten = \"0.0.0.0:9999\"\nready_max_lag_seconds = 5\n");
    let cfg = Fixture::new(&main).load(&[]).unwrap();
    assert_eq!(cfg.main.http.listen, "0.0.0.0:9999");
    assert_eq!(cfg.main.http.ready_max_lag_seconds, 5);
}

#[test]
fn an_http_listen_address_without_port_names_the_key_and_the_fix() {
    let main = format!("{MAIN}\n[http]\nlisten = \"localhost\"\n");
    let err = Fixture::new(&main).load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("http.listen"));
    assert!(err.fix.contains("127.0.0.1:9745"), "{err}");
}

#[test]
fn an_unknown_key_in_the_http_section_is_an_error() {
    let main = format!("{MAIN}\n[http]\nport = 9000\n");
    let err = Fixture::new(&main).load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("http.port"));
    assert!(err.fix.contains("listen"), "{err}");
}

#[test]
fn a_bad_table_pattern_names_the_file_the_key_and_the_pattern() {
    let f = Fixture::new(MAIN).source(
        "demo-pg.toml",
        &format!("{PG_SOURCE}\n[tables]\ninclude = ['public\\.(orders']\n"),
    );
    let err = f.load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("tables.include"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("demo-pg.toml") && text.contains("public\\.(orders"),
        "{text}"
    );
}

#[test]
fn a_hash_mask_without_salt_and_a_chars_mask_without_length_name_the_missing_key() {
    let f = Fixture::new(MAIN).source(
        "demo-pg.toml",
        &format!("{PG_SOURCE}\n[[columns.mask]]\ncolumns = ['.*\\.email']\nwith = 'hash'\n"),
    );
    let err = f.load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("columns.mask[0].salt"), "{err}");
    let f = Fixture::new(MAIN).source(
        "demo-pg.toml",
        &format!("{PG_SOURCE}\n[[columns.mask]]\ncolumns = ['.*\\.email']\nwith = 'chars'\n"),
    );
    let err = f.load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("columns.mask[0].length"), "{err}");
}

#[test]
fn a_mask_salt_never_appears_in_debug_output() {
    let f = Fixture::new(MAIN).source(
        "demo-pg.toml",
        &format!(
            "{PG_SOURCE}\n[[columns.mask]]\ncolumns = ['.*\\.email']\nwith = 'hash'\nsalt = 'salty-secret-4711'\n"
        ),
    );
    let cfg = f.load(&[]).unwrap();
    assert!(!format!("{cfg:?}").contains("salty-secret-4711"));
}

#[test]
fn a_heartbeat_action_query_without_an_interval_names_the_key_and_the_fix() {
    let f = Fixture::new(MAIN).source(
        "demo-pg.toml",
        &format!("{PG_SOURCE}\n[heartbeat]\naction_query = \"UPDATE hb SET n = n + 1\"\n"),
    );
    let err = f.load(&[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("heartbeat.action_query"), "{err}");
    assert!(err.to_string().contains("interval_ms"), "{err}");
}

#[test]
fn the_registry_is_required_by_an_avro_source_and_not_by_a_json_one() {
    let no_registry = MAIN.replace("url = ", "# url = ");
    let f = Fixture::new(&no_registry).source("demo-pg.toml", PG_SOURCE);
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("cdc-agent.toml"), "{err}");
    assert_eq!(err.key.as_deref(), Some("schema_registry.url"), "{err}");
    assert!(err.to_string().contains("demo-pg"), "{err}");
    assert!(err.fix.contains("format = \"json\""), "{err}");
    let json_source = PG_SOURCE.replace(
        "database = \"demo\"",
        "database = \"demo\"\nformat = \"json\"",
    );
    let f = Fixture::new(&no_registry).source("demo-pg.toml", &json_source);
    f.load(&[]).unwrap();
}
