//! The usual start of a PostgreSQL test of the agent, in one place: a fresh database with the
//! test's tables and publication `cdc_pub`, a unique source name whose topics and subjects
//! are deleted at the end, and the agent's configuration for slot `<name>` on `cdc_pub`.

use super::agent::AgentConfig;
use super::cdc::StackCleanup;
use super::{pg_connect, unique_name, FreshPgDb};

/// One test's database, source name and agent configuration.
pub struct PgCase {
    /// The test's database (dropped with its slots at the end).
    pub db: FreshPgDb,
    /// A superuser connection to it.
    pub admin: tokio_postgres::Client,
    /// Source name and topic prefix.
    pub name: String,
    /// The agent's configuration; tests add to it before [`super::agent::Agent::start`].
    pub cfg: AgentConfig,
    /// Deletes the test's topics and subjects when the case is dropped, after the agent
    /// (declared later in the test, so dropped first).
    pub cleanup: StackCleanup,
}

impl PgCase {
    /// Creates database `t_<what>_…`, runs `ddl` in it (which creates the publication
    /// `cdc_pub`), and configures a source `<what>_…` with `source_toml` (source keys and
    /// sections other than `[postgres]`) followed by the slot and publication.
    pub async fn new(what: &str, ddl: &str, source_toml: &str) -> Self {
        let db = FreshPgDb::create(what).await;
        let admin = pg_connect(&db.url).await;
        admin.batch_execute(ddl).await.unwrap();
        let name = unique_name(what);
        let mut cfg = AgentConfig::postgres(&name, &db.name);
        cfg.extra_source_toml = format!(
            "{source_toml}\n[postgres]\nslot_name = \"{name}\"\npublication = \"cdc_pub\"\n"
        );
        PgCase {
            db,
            admin,
            cleanup: StackCleanup {
                prefix: name.clone(),
            },
            name,
            cfg,
        }
    }

    /// The table topic of `public.<table>`.
    pub fn topic(&self, table: &str) -> String {
        format!("{}.public.{table}", self.name)
    }
}
