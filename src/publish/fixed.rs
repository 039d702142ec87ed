//! The agent's own fixed-schema topics of a source: transaction metadata
//! (`provide_transaction_metadata`) and heartbeats, registered like table subjects, or Connect
//! JSON with `format = "json"`.

use super::*;

/// The heartbeat topic of a source: its name, the key (the same for every heartbeat) and the
/// value's schema id.
pub(super) struct HeartbeatTopic {
    pub(super) topic: String,
    pub(super) key: Vec<u8>,
    pub(super) value_id: u32,
    /// `format = "json"`: the records as Connect JSON.
    pub(super) json: Option<JsonCodec>,
}

/// The transaction metadata topic of a source: its codec, schema ids and the transaction
/// being published.
pub(super) struct TxnTopic {
    pub(super) topic: String,
    pub(super) codec: crate::encode::txn::TxnCodec,
    pub(super) key_id: u32,
    pub(super) value_id: u32,
    pub(super) open: Option<OpenTransaction>,
    /// `format = "json"`: the records as Connect JSON.
    pub(super) json: Option<JsonCodec>,
}

impl TxnTopic {
    /// Counts an event of transaction `id` in `table`, sending the BEGIN first when it is the
    /// transaction's first.
    pub(super) async fn event<S: Sink>(
        &mut self,
        sink: &mut S,
        id: &str,
        table: &str,
        ts_ms: i64,
    ) -> Result<(), SourceError> {
        if self.open.as_ref().is_some_and(|o| o.id != id) {
            // A source ends every transaction before the next begins (`Pipeline::mark`);
            // one left open here had no commit the stream could see.
            let stale = self.open.take().map(|o| o.id);
            tracing::warn!(
                transaction = stale.as_deref(),
                next = id,
                "transaction without an end: its END record is not written"
            );
        }
        if self.open.is_none() {
            self.send(sink, crate::encode::txn::Status::Begin, id, ts_ms, &[])
                .await?;
            self.open = Some(OpenTransaction {
                id: id.to_string(),
                ts_ms,
                counts: Vec::new(),
            });
        }
        if let Some(open) = self.open.as_mut() {
            match open.counts.iter_mut().find(|(t, _)| t == table) {
                Some((_, n)) => *n += 1,
                None => open.counts.push((table.to_string(), 1)),
            }
        }
        Ok(())
    }

    pub(super) async fn send<S: Sink>(
        &self,
        sink: &mut S,
        status: crate::encode::txn::Status,
        id: &str,
        ts_ms: i64,
        counts: &[(String, i64)],
    ) -> Result<(), SourceError> {
        let encoded = self.codec.key(id, self.key_id).and_then(|k| {
            self.codec
                .value(status, id, ts_ms, counts, self.value_id)
                .map(|v| (k, v))
        });
        let (key, value) = encoded
            .map_err(|e| e.to_string())
            .and_then(|(k, v)| as_json(self.json.as_ref(), k, v))
            .map_err(|e| SourceError::definite(format!("transaction metadata of {id}: {e}")))?;
        sink.send(OutRecord {
            topic: &self.topic,
            key: Some(&key),
            value: Some(&value),
            headers: &[],
        })
        .await?;
        Ok(())
    }
}

/// A framed Avro key and value as Connect JSON when `json` is set, else as they are.
pub(super) fn as_json(
    json: Option<&JsonCodec>,
    key: Vec<u8>,
    value: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let Some(j) = json else {
        return Ok((key, value));
    };
    let (mut k, mut v) = (Vec::with_capacity(64), Vec::with_capacity(128));
    j.key(&key, &mut k)?;
    j.value(&value, &mut v)?;
    Ok((k, v))
}

/// Registers one of the agent's fixed schemas under `<topic>-<suffix>`.
pub(super) async fn register_fixed(
    registry: &Registry,
    topic: &str,
    suffix: &str,
    schema: &str,
) -> Result<u32, SourceError> {
    let subject = format!("{topic}-{suffix}");
    registry.register(&subject, schema).await.map_err(|e| {
        let msg = format!("subject {subject}: {e}");
        if e.is_transient() {
            SourceError::transient(msg)
        } else {
            SourceError::definite(msg)
        }
    })
}
