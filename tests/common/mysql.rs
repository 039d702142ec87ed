//! MariaDB helpers: a database and an agent user made for one test.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use super::{stack_env, unique_name};

/// Connects to `url` (mysql://…).
pub async fn my_connect(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap())
        .await
        .unwrap_or_else(|e| panic!("connect to MariaDB: {e}"))
}

/// The admin connection to the stack's MariaDB.
pub async fn my_admin() -> Conn {
    my_connect(&stack_env("MYSQL_URL")).await
}

/// Whether the server behind `conn` is Oracle's MySQL rather than MariaDB (its version string
/// has no "MariaDB"), as the agent tells them apart.
pub async fn is_mysql(conn: &mut Conn) -> bool {
    let version: String = conn
        .query_first("SELECT VERSION()")
        .await
        .unwrap()
        .unwrap_or_default();
    !version.to_ascii_lowercase().contains("mariadb")
}

/// A derived table `(…) AS seq_rows` of one column `seq`, the integers `first..=last`, for
/// `INSERT … SELECT seq … FROM {seq_rows(1, n)}`. MariaDB's `seq_1_to_N` tables (its SEQUENCE
/// engine) do not exist on MySQL, and a recursive CTE stops at MySQL's
/// `cte_max_recursion_depth` (1000); a cross join of digits needs neither.
pub fn seq_rows(first: i64, last: i64) -> String {
    assert!(0 <= first && first <= last, "seq_rows({first}, {last})");
    let digits = last.to_string().len();
    let ten = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
               UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
               UNION ALL SELECT 8 UNION ALL SELECT 9)";
    let value = (0..digits)
        .map(|i| format!("d{i}.d * {}", 10_i64.pow(i as u32)))
        .collect::<Vec<_>>()
        .join(" + ");
    let from = (0..digits)
        .map(|i| format!("{ten} AS d{i}"))
        .collect::<Vec<_>>()
        .join(" CROSS JOIN ");
    format!(
        "(SELECT seq FROM (SELECT {value} AS seq FROM {from}) AS n \
          WHERE seq BETWEEN {first} AND {last}) AS seq_rows"
    )
}

/// A database and an agent user (REPLICATION SLAVE, BINLOG MONITOR, SELECT on the database,
/// CREATE and INSERT on its snapshot signal table `cdc_signal`, as docs/mariadb-setup.md
/// asks) made for one test; both dropped with it.
pub struct FreshMyDb {
    /// Database (and user) name.
    pub name: String,
    /// The agent user's password.
    pub password: String,
}

impl FreshMyDb {
    /// Creates `t_<what>_…` and a user of the same name with the agent's privileges.
    pub async fn create(what: &str) -> Self {
        Self::create_with_grants(what, "REPLICATION SLAVE, BINLOG MONITOR").await
    }

    /// Same, with only `grants` on `*.*` (besides SELECT on the database and the signal
    /// table's privileges).
    pub async fn create_with_grants(what: &str, grants: &str) -> Self {
        // MariaDB user names are at most 80 characters, database names 64.
        let mut name = unique_name(&format!("t_{what}"));
        name.truncate(60);
        let password = "pw_agent".to_string();
        let mut admin = my_admin().await;
        admin
            .query_drop(format!(
                "CREATE DATABASE `{name}`; \
                 CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'; \
                 GRANT SELECT ON `{name}`.* TO '{name}'@'%'; \
                 GRANT CREATE, INSERT ON `{name}`.`cdc_signal` TO '{name}'@'%';"
            ))
            .await
            .unwrap();
        // MySQL has no BINLOG MONITOR: REPLICATION CLIENT reads the binlog state there, and
        // RELOAD allows the FLUSH TABLES WITH READ LOCK of its snapshot start
        // (docs/mysql-source.md), so a test asking for the agent's privileges gets MySQL's.
        let grants = if is_mysql(&mut admin).await {
            grants.replace("BINLOG MONITOR", "REPLICATION CLIENT, RELOAD")
        } else {
            grants.to_string()
        };
        if !grants.is_empty() {
            admin
                .query_drop(format!("GRANT {grants} ON *.* TO '{name}'@'%'"))
                .await
                .unwrap();
        }
        FreshMyDb { name, password }
    }

    /// A qualified table name in this database.
    pub fn table(&self, t: &str) -> String {
        format!("`{}`.`{t}`", self.name)
    }
}

impl Drop for FreshMyDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = stack_env("MYSQL_URL");
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = Conn::new(Opts::from_url(&url).unwrap()).await {
                    let _ = admin
                        .query_drop(format!(
                            "DROP DATABASE IF EXISTS `{name}`; DROP USER IF EXISTS '{name}'@'%'"
                        ))
                        .await;
                }
            });
        })
        .join();
    }
}
