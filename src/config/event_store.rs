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
}

impl Default for EventStoreConfig {
    fn default() -> Self {
        Self {
            topic: default_event_store_topic(),
            enabled: true,
        }
    }
}
