//! Every Kafka topic the agent writes, named in one place, with the configs it creates them
//! with. The names are part of the agent's contract with consumers and with its own restarts:
//! each format here is fixed.
//!
//! | topic                          | rule                                              |
//! |--------------------------------|---------------------------------------------------|
//! | a table's changes              | `<prefix>.<schema>.<table>` sanitised ([`sanitize_topic_name`]), or its `topic_routes` entry |
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

/// Topic configs of the event store when the agent creates it: [`EVENT_STORE_TOPIC_CONFIGS`],
/// each replaced or completed by `[event_store.topic_config]`.
pub fn event_store_topic_config(cfg: &crate::config::EventStoreConfig) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = EVENT_STORE_TOPIC_CONFIGS
        .iter()
        .filter(|(k, _)| !cfg.topic_config.contains_key(*k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.extend(cfg.topic_config.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Topic configs of the schema-history topic: every record is kept forever. Compaction would
/// keep only the newest record of the source key, deleting exactly the past definitions a
/// restart at an old position needs.
pub const SCHEMA_HISTORY_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

/// Kafka's longest topic name (`Topic.MAX_NAME_LENGTH`): longer names are refused.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Hex digits of the hash that ends a shortened topic name.
const NAME_HASH_DIGITS: usize = 8;

/// The topic of `table`'s change events: its `topic_routes` entry (keyed `schema.table`) if
/// it has one (used as written: the operator chose it), else `<prefix>.<schema>.<table>`
/// made a valid Kafka name by [`sanitize_topic_name`].
pub fn table_topic(prefix: &str, routes: &BTreeMap<String, String>, table: &TableId) -> String {
    match routes.get(&table.to_string()) {
        Some(t) => t.clone(),
        None => sanitize_topic_name(&format!("{prefix}.{}.{}", table.schema, table.table)),
    }
}

/// `name` as a valid Kafka topic name, the way Debezium's topic naming strategy sanitises the
/// names it builds from identifiers: every character outside `[A-Za-z0-9._-]` becomes `_` (one
/// per UTF-16 unit, as Debezium's Java loop over `char`s does, so both agree on every name).
///
/// Debezium leaves a name longer than Kafka's 249 characters as it is, and Kafka refuses the
/// topic. Here such a name keeps its first 240 characters and ends in `_` and 8 hex digits of a
/// stable hash (FNV-1a, 32 bits) of the whole unsanitised name, so two long names that share
/// their start still get different topics and a restart picks the same one.
pub fn sanitize_topic_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else {
            out.extend(std::iter::repeat_n('_', c.len_utf16()));
        }
    }
    if out.len() > MAX_TOPIC_NAME_LEN {
        // Only ASCII is left: byte length is character length.
        out.truncate(MAX_TOPIC_NAME_LEN - NAME_HASH_DIGITS - 1);
        out.push_str(&format!("_{:08x}", fnv1a_32(name.as_bytes())));
    }
    out
}

/// FNV-1a, 32 bits: a hash whose value is fixed by its definition (topic names depend on it
/// across releases and restarts, which `std`'s hasher does not promise).
fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
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

/// Transaction metadata (`provide_transaction_metadata`): `<topic_prefix>.transaction`, as
/// Debezium names it.
pub fn transaction_topic(topic_prefix: &str) -> String {
    format!("{topic_prefix}.transaction")
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
    fn identifiers_kafka_refuses_become_underscores_as_debezium_makes_them() {
        let t = |schema: &str, table: &str| {
            table_topic("pg", &BTreeMap::new(), &TableId::new(schema, table))
        };
        assert_eq!(t("public", "Order Lines$"), "pg.public.Order_Lines_");
        assert_eq!(t("my schema", "a/b\\c"), "pg.my_schema.a_b_c");
        assert_eq!(t("public", "ok.name-1_X"), "pg.public.ok.name-1_X");
        // One `_` per UTF-16 unit, as Debezium's Java loop: `é` is one, an emoji two.
        assert_eq!(sanitize_topic_name("pg.public.café"), "pg.public.caf_");
        assert_eq!(sanitize_topic_name("pg.public.t\u{1F600}"), "pg.public.t__");
        // A route is the operator's choice: used as written.
        let routes = BTreeMap::from([("public.Order Lines$".to_string(), "orders".to_string())]);
        assert_eq!(
            table_topic("pg", &routes, &TableId::new("public", "Order Lines$")),
            "orders"
        );
    }

    #[test]
    fn a_name_longer_than_kafka_allows_is_shortened_with_a_hash_of_the_whole_name() {
        let fits = format!("pg.public.{}", "a".repeat(MAX_TOPIC_NAME_LEN - 10));
        assert_eq!(sanitize_topic_name(&fits), fits);
        let long_a = format!("pg.public.{}a", "x".repeat(300));
        let long_b = format!("pg.public.{}b", "x".repeat(300));
        let (a, b) = (sanitize_topic_name(&long_a), sanitize_topic_name(&long_b));
        assert_eq!(a.len(), MAX_TOPIC_NAME_LEN);
        assert_eq!(b.len(), MAX_TOPIC_NAME_LEN);
        assert_ne!(a, b, "names that share their start stay apart");
        assert_eq!(a, sanitize_topic_name(&long_a), "stable");
        assert!(a.starts_with("pg.public.xxx"));
        assert!(a[MAX_TOPIC_NAME_LEN - 9..].starts_with('_'));
        assert!(a[MAX_TOPIC_NAME_LEN - 8..]
            .chars()
            .all(|c| c.is_ascii_hexdigit()));
        // FNV-1a's published test vectors: the hash never changes under a name.
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
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
