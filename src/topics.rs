//! Every Kafka topic the agent writes, named in one place, with the configs it creates them
//! with. The names are part of the agent's contract with consumers and with its own restarts:
//! each format here is fixed.
//!
//! | topic                          | rule                                              |
//! |--------------------------------|---------------------------------------------------|
//! | a table's changes              | `<prefix>.<schema>.<table>`, or its `topic_routes` entry |
//! | the event store (ledger)       | `[event_store] topic` (default `cdc.events`)       |
//! | a source's checkpoints         | `<prefix>.offsets`                                |
//! | a MySQL source's schema history | `<prefix>.schema-history`                        |
//! | PostgreSQL logical messages    | `[postgres] messages_topic`, when set             |

use std::collections::BTreeMap;

use crate::config::{EventStoreConfig, SourceConfig};
use crate::event::TableId;

pub use crate::config::DEFAULT_EVENT_STORE_TOPIC;

/// Topic configs of the offsets topic: compacted, only the newest value per key matters.
pub const OFFSETS_TOPIC_CONFIGS: &[(&str, &str)] = &[("cleanup.policy", "compact")];

/// Topic configs of the event store: history is kept forever.
pub const EVENT_STORE_TOPIC_CONFIGS: &[(&str, &str)] =
    &[("retention.ms", "-1"), ("retention.bytes", "-1")];

/// Topic configs of the schema-history topic: every record is kept forever. Compaction would
/// keep only the newest record of the source key, deleting exactly the past definitions a
/// restart at an old position needs.
pub const SCHEMA_HISTORY_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

/// The topic of `table`'s change events: its `topic_routes` entry (keyed `schema.table`) if
/// it has one, else `<prefix>.<schema>.<table>`.
pub fn table_topic(prefix: &str, routes: &BTreeMap<String, String>, table: &TableId) -> String {
    match routes.get(&table.to_string()) {
        Some(t) => t.clone(),
        None => format!("{prefix}.{}.{}", table.schema, table.table),
    }
}

/// The event store's topic, as configured, whether or not mirroring is enabled (the ledger
/// reads it either way).
pub fn event_store_topic(cfg: &EventStoreConfig) -> &str {
    &cfg.topic
}

/// The topic sources mirror every event to: the event store's, or none when it is disabled.
pub fn event_store_mirror(cfg: &EventStoreConfig) -> Option<&str> {
    cfg.enabled.then_some(cfg.topic.as_str())
}

/// The offsets topic of a source: its checkpoints, keyed by source name.
pub fn offsets_topic(topic_prefix: &str) -> String {
    format!("{topic_prefix}.offsets")
}

/// The schema-history topic of a MySQL source.
pub fn schema_history_topic(topic_prefix: &str) -> String {
    format!("{topic_prefix}.schema-history")
}

/// The topic of a PostgreSQL source's logical decoding messages, when it publishes them.
pub fn messages_topic(source: &SourceConfig) -> Option<&str> {
    source.postgres.as_ref()?.messages_topic.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_topic_is_prefix_schema_table_unless_routed() {
        let routes = BTreeMap::from([("public.orders".to_string(), "orders-v2".to_string())]);
        assert_eq!(
            table_topic("pg", &routes, &TableId::new("public", "customers")),
            "pg.public.customers"
        );
        assert_eq!(
            table_topic("pg", &routes, &TableId::new("public", "orders")),
            "orders-v2"
        );
        assert_eq!(
            table_topic(
                "shop",
                &BTreeMap::new(),
                &TableId::new("inventory", "items")
            ),
            "shop.inventory.items"
        );
    }

    #[test]
    fn the_event_store_topic_is_configured_and_mirrored_to_only_when_enabled() {
        let mut cfg = EventStoreConfig::default();
        assert_eq!(event_store_topic(&cfg), "cdc.events");
        assert_eq!(event_store_mirror(&cfg), Some("cdc.events"));
        cfg.topic = "ledger".into();
        cfg.enabled = false;
        assert_eq!(event_store_topic(&cfg), "ledger");
        assert_eq!(event_store_mirror(&cfg), None);
    }

    #[test]
    fn a_source_has_one_offsets_and_one_schema_history_topic_under_its_prefix() {
        assert_eq!(offsets_topic("pg"), "pg.offsets");
        assert_eq!(schema_history_topic("shop"), "shop.schema-history");
    }

    #[test]
    fn a_postgres_source_has_a_messages_topic_only_when_configured() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("cdc-agent.toml");
        std::fs::write(
            &main,
            "[kafka]\nbootstrap_servers = \"k:9092\"\n[schema_registry]\nurl = \"http://r\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("connectors")).unwrap();
        let source = |name: &str, extra: &str| {
            let body = format!(
                "name = \"{name}\"\nkind = \"postgres\"\ntopic_prefix = \"{name}\"\n\
                 host = \"h\"\nuser = \"u\"\ndatabase = \"d\"\n\
                 [postgres]\nslot_name = \"s_{name}\"\n{extra}"
            );
            std::fs::write(
                dir.path().join("connectors").join(format!("{name}.toml")),
                body,
            )
            .unwrap();
        };
        source("plain", "");
        source("msgs", "messages_topic = \"pg.messages\"\n");
        let cfg = crate::config::load_with_env(&main, std::iter::empty()).unwrap();
        let topic = |name: &str| {
            let src = cfg.sources.iter().find(|s| s.name == name).unwrap();
            messages_topic(src).map(str::to_string)
        };
        assert_eq!(topic("plain"), None);
        assert_eq!(topic("msgs").as_deref(), Some("pg.messages"));
    }

    #[test]
    fn offsets_are_compacted_and_the_event_store_and_schema_history_kept_forever() {
        assert!(OFFSETS_TOPIC_CONFIGS.contains(&("cleanup.policy", "compact")));
        assert!(EVENT_STORE_TOPIC_CONFIGS.contains(&("retention.ms", "-1")));
        assert!(EVENT_STORE_TOPIC_CONFIGS.contains(&("retention.bytes", "-1")));
        assert!(SCHEMA_HISTORY_TOPIC_CONFIGS.contains(&("retention.ms", "-1")));
    }
}
