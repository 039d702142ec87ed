//! `[outbox]` of a source file: one table whose inserts are routed as events, the shape of
//! Debezium's outbox event router (`io.debezium.transforms.outbox.EventRouter`), with its
//! default column names.

use serde::Deserialize;

/// `[outbox]`: the outbox table and its columns.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// The outbox table, `schema.table` (PostgreSQL) or `database.table` (MySQL). Required.
    pub table: String,
    /// Column with the event's unique id, sent as the `id` header. Default: `id`.
    #[serde(default = "default_id")]
    pub id_field: String,
    /// Column whose value is the message key (Debezium's `table.field.event.key`). Default:
    /// `aggregateid`.
    #[serde(default = "default_key")]
    pub key_field: String,
    /// Column whose value names the topic (Debezium's `route.by.field`). Default:
    /// `aggregatetype`.
    #[serde(default = "default_route_by")]
    pub route_by_field: String,
    /// Column whose value is the message value (Debezium's `table.field.event.payload`).
    /// Default: `payload`.
    #[serde(default = "default_payload")]
    pub payload_field: String,
    /// The topic of an event, `${routedByValue}` replaced by the route column's value
    /// (Debezium's `route.topic.replacement`). Default: `outbox.event.${routedByValue}`.
    #[serde(default = "default_route_topic")]
    pub route_topic: String,
    /// Delete each outbox row once its event is durable in Kafka (the agent's user needs
    /// DELETE on the table). A crash between the Kafka commit and the delete leaves those
    /// rows in the table (never routed again). Default: false (the service deletes them,
    /// e.g. in the same transaction as the insert).
    #[serde(default)]
    pub delete_after_capture: bool,
}

/// Default `[outbox] route_topic`.
pub const DEFAULT_OUTBOX_ROUTE_TOPIC: &str = "outbox.event.${routedByValue}";

fn default_id() -> String {
    "id".into()
}
fn default_key() -> String {
    "aggregateid".into()
}
fn default_route_by() -> String {
    "aggregatetype".into()
}
fn default_payload() -> String {
    "payload".into()
}
fn default_route_topic() -> String {
    DEFAULT_OUTBOX_ROUTE_TOPIC.into()
}
