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
