//! `cdc-agent check` against real servers: every check passes on a correct setup, and each
//! broken prerequisite — set up by the test on a fresh database, a fresh role/user, or a
//! scratch server of its own for server-wide settings — fails with the statement that fixes it.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::ports::free_port;
use common::scratch::ScratchMariadb;
use common::scratch_pg::ScratchPostgres;
use common::{pg_connect, stack_env, unique_name, FreshPgDb};
use mysql_async::prelude::Queryable;

/// One row of the report.
#[derive(Debug)]
struct Row {
    status: String,
    line: String,
    fix: String,
}

struct Report {
    code: Option<i32>,
    text: String,
    rows: Vec<Row>,
}

impl Report {
    /// The row of `check` for `target`, or a panic showing the whole report.
    fn row(&self, target: &str, check: &str) -> &Row {
        self.rows
            .iter()
            .find(|r| {
                r.line.contains(&format!(" {target} ")) && r.line.contains(&format!("  {check}  "))
            })
            .unwrap_or_else(|| panic!("no `{check}` row for `{target}` in:\n{}", self.text))
    }

    /// Asserts `check` of `target` failed with a fix containing every one of `fix_parts`.
    fn assert_fails(&self, target: &str, check: &str, fix_parts: &[&str]) {
        let row = self.row(target, check);
        assert_eq!(row.status, "FAIL", "{check} should fail:\n{}", self.text);
        for part in fix_parts {
            assert!(
                row.fix.contains(part),
                "fix of {check} lacks `{part}`:\n{}",
                self.text
            );
        }
        assert_eq!(self.code, Some(1), "a FAIL exits 1:\n{}", self.text);
    }
}

fn main_toml(bootstrap: &str) -> String {
    format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\n[schema_registry]\nurl = \"{}\"\n",
        stack_env("SCHEMA_REGISTRY_URL")
    )
}

/// Writes the configuration into a temp dir and runs `cdc-agent check` on it.
fn check(main: &str, sources: &[(&str, String)]) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let main_path = dir.path().join("cdc-agent.toml");
    std::fs::write(&main_path, main).unwrap();
    std::fs::create_dir(dir.path().join("connectors")).unwrap();
    for (name, body) in sources {
        std::fs::write(
            dir.path().join("connectors").join(format!("{name}.toml")),
            body,
        )
        .unwrap();
    }
    run_check(&main_path)
}

fn run_check(main_path: &Path) -> Report {
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
        .args(["check", "--config"])
        .arg(main_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let mut rows = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let status = &line[..4.min(line.len())];
        if matches!(status, "PASS" | "WARN" | "FAIL") {
            let fix = lines
                .get(i + 1)
                .and_then(|n| n.trim_start().strip_prefix("fix: "))
                .unwrap_or("")
                .to_string();
            rows.push(Row {
                status: status.to_string(),
                line: line.to_string(),
                fix,
            });
        }
    }
    Report {
        code: out.status.code(),
        text,
        rows,
    }
}

fn pg_source(
    name: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    publication: &str,
) -> String {
    format!(
        "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\nport = {port}\n\
         user = \"{user}\"\npassword = \"{password}\"\ndatabase = \"{database}\"\n\
         [postgres]\npublication = \"{publication}\"\nslot_name = \"{name}\"\n"
    )
}

fn stack_pg_port() -> u16 {
    stack_env("PG_PORT").parse().unwrap()
}

/// user, password of a `mysql://user:password@host:port/db` URL.
fn url_credentials(url: &str) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (cred, _) = rest.rsplit_once('@').unwrap();
    let (u, p) = cred.split_once(':').unwrap();
    (u.to_string(), p.to_string())
}

fn mysql_source(name: &str, port: u16, user: &str, password: &str, databases: &str) -> String {
    format!(
        "name = \"{name}\"\nkind = \"mysql\"\ntopic_prefix = \"{name}\"\nport = {port}\n\
         user = \"{user}\"\npassword = \"{password}\"\n[mysql]\ndatabases = [{databases}]\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correct_setup_passes_every_check() {
    // PostgreSQL: a scratch server so that server-wide settings can be the recommended ones
    // (the shared stack leaves max_slot_wal_keep_size unbounded, which check warns about).
    let pg = ScratchPostgres::start(
        "wal_level = logical\nmax_replication_slots = 4\nmax_wal_senders = 4\nmax_slot_wal_keep_size = 1GB",
    );
    let admin = pg_connect(&pg.url("postgres", "postgres")).await;
    admin
        .batch_execute("CREATE ROLE agent LOGIN REPLICATION")
        .await
        .unwrap();
    admin.batch_execute("CREATE DATABASE app").await.unwrap();
    let app = pg_connect(&pg.url("postgres", "app")).await;
    app.batch_execute(
        "CREATE TABLE orders (id int PRIMARY KEY, qty bigint, at timestamptz);
         CREATE TABLE notes (id int PRIMARY KEY, body text);
         ALTER TABLE notes REPLICA IDENTITY FULL;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO agent;
         CREATE PUBLICATION cdc_app FOR ALL TABLES;",
    )
    .await
    .unwrap();

    let (my_user, my_password) = url_credentials(&stack_env("MYSQL_AGENT_URL"));
    let report = check(
        &main_toml(&stack_env("KAFKA_BOOTSTRAP")),
        &[
            (
                "app",
                pg_source("app", pg.port, "agent", "", "app", "cdc_app"),
            ),
            (
                "shop",
                mysql_source(
                    "shop",
                    stack_env("MYSQL_PORT").parse().unwrap(),
                    &my_user,
                    &my_password,
                    "\"demo\"",
                ),
            ),
        ],
    );
    let not_passed: Vec<&Row> = report.rows.iter().filter(|r| r.status != "PASS").collect();
    assert!(
        not_passed.is_empty(),
        "non-PASS rows: {not_passed:#?}\n{}",
        report.text
    );
    assert_eq!(report.code, Some(0), "{}", report.text);
    for check in [
        "wal_level",
        "publication",
        "replica identity",
        "binlog_format",
        "privileges",
    ] {
        report.row("source", check);
    }
    for check in ["connect", "topic creation", "transactions"] {
        report.row("kafka", check);
    }
    report.row("schema registry", "connect");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_with_wal_level_replica_fails_naming_alter_system_and_a_restart() {
    let pg = ScratchPostgres::start("wal_level = replica");
    let report = check(
        &main_toml(&stack_env("KAFKA_BOOTSTRAP")),
        &[(
            "old",
            pg_source("old", pg.port, "postgres", "", "postgres", "cdc_old"),
        )],
    );
    report.assert_fails(
        "source old",
        "wal_level",
        &[
            "ALTER SYSTEM SET wal_level = 'logical'",
            "restart PostgreSQL",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_without_replication_or_select_fails_with_alter_role_and_grant() {
    let db = FreshPgDb::create("check_role").await;
    let admin = pg_connect(&db.url).await;
    let role = unique_name("norepl");
    admin
        .batch_execute(&format!(
            "CREATE TABLE items (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_items FOR TABLE items;
             CREATE ROLE {role} LOGIN PASSWORD 'pw';"
        ))
        .await
        .unwrap();
    let report = check(
        &main_toml(&stack_env("KAFKA_BOOTSTRAP")),
        &[(
            "r",
            pg_source("r", stack_pg_port(), &role, "pw", &db.name, "cdc_items"),
        )],
    );
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
    report.assert_fails(
        "source r",
        "REPLICATION attribute",
        &[&format!("ALTER ROLE \"{role}\" REPLICATION;")],
    );
    report.assert_fails(
        "source r",
        "SELECT privilege",
        &[&format!("GRANT SELECT ON public.items TO \"{role}\";")],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_publication_the_agent_may_not_create_fails_with_the_create_statement() {
    let db = FreshPgDb::create("check_pub").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY)")
        .await
        .unwrap();
    let publication = unique_name("cdc_missing");
    let report = check(
        &main_toml(&stack_env("KAFKA_BOOTSTRAP")),
        &[(
            "p",
            pg_source(
                "p",
                stack_pg_port(),
                "cdc_agent",
                "cdc_agent",
                &db.name,
                &publication,
            ),
        )],
    );
    report.assert_fails(
        "source p",
        "publication",
        &[
            "superuser",
            &format!("CREATE PUBLICATION \"{publication}\" FOR ALL TABLES;"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_table_without_key_or_identity_fails_with_replica_identity_full() {
    let db = FreshPgDb::create("check_ident").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE keyless (a int, b int);
             CREATE TABLE keyed (id int PRIMARY KEY);
             CREATE PUBLICATION cdc_ident FOR TABLE keyless, keyed;",
        )
        .await
        .unwrap();
    let report = check(
        &main_toml(&stack_env("KAFKA_BOOTSTRAP")),
        &[(
            "i",
            pg_source(
                "i",
                stack_pg_port(),
                "cdc_agent",
                "cdc_agent",
                &db.name,
                "cdc_ident",
            ),
        )],
    );
    report.assert_fails(
        "source i",
        "replica identity",
        &["ALTER TABLE public.keyless REPLICA IDENTITY FULL;"],
    );
    assert!(
        !report
            .row("source i", "replica identity")
            .line
            .contains("keyed"),
        "{}",
        report.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_with_statement_binlogs_and_minimal_images_fails_with_set_global() {
    let server = ScratchMariadb::start("binlog_format = STATEMENT\nbinlog_row_image = MINIMAL");
    server.sql(
        "CREATE USER 'agent'@'%' IDENTIFIED BY 'pw';
         GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'agent'@'%';",
    );
    let report = check(
        &main_toml(&stack_env("KAFKA_BOOTSTRAP")),
        &[("m", mysql_source("m", server.port, "agent", "pw", ""))],
    );
    report.assert_fails(
        "source m",
        "binlog_format",
        &["SET GLOBAL binlog_format = 'ROW';", "my.cnf"],
    );
    report.assert_fails(
        "source m",
        "binlog_row_image",
        &["SET GLOBAL binlog_row_image = 'FULL';", "my.cnf"],
    );
    assert_eq!(
        report.row("source m", "privileges").status,
        "PASS",
        "{}",
        report.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mariadb_user_without_replication_grants_fails_with_the_grant_statement() {
    let mut admin = mysql_async::Conn::from_url(stack_env("MYSQL_URL"))
        .await
        .unwrap();
    let user = unique_name("sel");
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON demo.* TO '{user}'@'%'"
        ))
        .await
        .unwrap();
    let report = check(
        &main_toml(&stack_env("KAFKA_BOOTSTRAP")),
        &[(
            "u",
            mysql_source(
                "u",
                stack_env("MYSQL_PORT").parse().unwrap(),
                &user,
                "pw",
                "\"demo\"",
            ),
        )],
    );
    admin
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .unwrap();
    report.assert_fails(
        "source u",
        "privileges",
        &[&format!(
            "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%';"
        )],
    );
}

#[test]
fn an_unreachable_kafka_fails_naming_the_bootstrap_servers_and_the_setting() {
    let closed = format!("127.0.0.1:{}", free_port());
    let report = check(&main_toml(&closed), &[]);
    report.assert_fails("kafka", "connect", &["kafka.bootstrap_servers"]);
    assert!(
        report.row("kafka", "connect").line.contains(&closed),
        "{}",
        report.text
    );
}

fn sasl_main(user: &str, password: &str) -> String {
    format!(
        "[kafka]\nbootstrap_servers = \"{}\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
         \"sasl.mechanism\" = \"{}\"\n\"sasl.username\" = \"{user}\"\n\"sasl.password\" = \"{password}\"\n\
         [schema_registry]\nurl = \"{}\"\n",
        stack_env("KAFKA_SASL_BOOTSTRAP"),
        stack_env("KAFKA_SASL_MECHANISM"),
        stack_env("SCHEMA_REGISTRY_URL")
    )
}

#[test]
fn a_wrong_kafka_password_fails_as_authentication_naming_the_sasl_keys() {
    let report = check(
        &sasl_main(&stack_env("KAFKA_SASL_USERNAME"), "not-the-password"),
        &[],
    );
    report.assert_fails(
        "kafka",
        "authentication",
        &["sasl.username", "sasl.password"],
    );
}

#[test]
fn an_untrusted_kafka_certificate_fails_as_tls_naming_ssl_ca_location() {
    // The SASL_SSL listener with a CA that did not sign its certificate (MariaDB's test CA).
    let main = format!(
        "[kafka]\nbootstrap_servers = \"{}\"\nsecurity_protocol = \"SASL_SSL\"\n\
         sasl_mechanism = \"{}\"\nsasl_username = \"{}\"\nsasl_password = \"{}\"\n\
         ssl_ca_location = \"{}\"\n[schema_registry]\nurl = \"{}\"\n",
        stack_env("KAFKA_SSL_BOOTSTRAP"),
        stack_env("KAFKA_SASL_MECHANISM"),
        stack_env("KAFKA_SASL_USERNAME"),
        stack_env("KAFKA_SASL_PASSWORD"),
        stack_env("MYSQL_SSL_CA"),
        stack_env("SCHEMA_REGISTRY_URL")
    );
    let report = check(&main, &[]);
    report.assert_fails("kafka", "TLS", &["ssl_ca_location", "security_protocol"]);
}

#[test]
fn a_kafka_user_without_create_rights_fails_topic_creation_with_the_acl_to_grant() {
    let report = check(
        &sasl_main(
            &stack_env("KAFKA_SASL_USER_USERNAME"),
            &stack_env("KAFKA_SASL_USER_PASSWORD"),
        ),
        &[],
    );
    assert_eq!(
        report.row("kafka", "connect").status,
        "PASS",
        "{}",
        report.text
    );
    report.assert_fails(
        "kafka",
        "topic creation",
        &[
            "--operation Create --cluster",
            "kafka.create_topics = false",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_table_outside_the_publication_fails_with_alter_publication() {
    let db = FreshPgDb::create("check_signal").await;
    let admin = pg_connect(&db.url).await;
    admin
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY);
             CREATE TABLE debezium_signal (id varchar(64) PRIMARY KEY,
                                           type varchar(32) NOT NULL, data text);
             CREATE PUBLICATION cdc_signal FOR TABLE items;",
        )
        .await
        .unwrap();
    let source = pg_source(
        "s",
        stack_pg_port(),
        "cdc_agent",
        "cdc_agent",
        &db.name,
        "cdc_signal",
    ) + "[snapshot]\nsignal_table = \"public.debezium_signal\"\n";
    let report = check(&main_toml(&stack_env("KAFKA_BOOTSTRAP")), &[("s", source)]);
    report.assert_fails(
        "source s",
        "signal table",
        &["ALTER PUBLICATION \"cdc_signal\" ADD TABLE \"public\".\"debezium_signal\";"],
    );
}
