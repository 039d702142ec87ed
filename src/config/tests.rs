//! Config loading against real files in a temporary directory, with an explicit environment.

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
    let f = Fixture::new(&MAIN.replace("url = ", "# url = "));
    let err = f.load(&[]).unwrap_err();
    assert!(err.origin.ends_with("cdc-agent.toml"), "{err}");
    assert_eq!(err.key.as_deref(), Some("schema_registry.url"), "{err}");
    assert!(err.fix.contains("add `url"), "{err}");

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
