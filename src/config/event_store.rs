//! `[event_store]`: the ledger topic every event is mirrored into.

use serde::Deserialize;

use super::*;

/// `[event_store]`: the ledger topic every event is mirrored into.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventStoreConfig {
    /// Topic name. Default: `cdc.events`.
    #[serde(default = "default_event_store_topic")]
    pub topic: String,
    /// Mirror events into the event store at all. Default: true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Topic configs of the event store when the agent creates it (`[event_store.topic_config]`),
    /// over its defaults `retention.ms = -1` and `retention.bytes = -1` (kept forever), e.g.
    /// `"min.insync.replicas" = "2"`. Default: none.
    #[serde(default)]
    pub topic_config: std::collections::BTreeMap<String, String>,
    /// Put the six `cdc.*` headers (source, table, op, position, txid, commit time) on every
    /// event-store record (docs/event-store.md). `false` leaves them off: librdkafka spends
    /// about 0.5–0.8 CPU-µs a row less (bench/RESULTS.md); all but the commit position is also
    /// in the record's key and value, and the ledger tools then read the commit time, op and
    /// transaction from the value (`replay --from <LSN>` needs the position header and says
    /// so). Default: true.
    #[serde(default = "default_true")]
    pub headers: bool,
}

impl Default for EventStoreConfig {
    fn default() -> Self {
        Self {
            topic: default_event_store_topic(),
            enabled: true,
            topic_config: Default::default(),
            headers: true,
        }
    }
}
