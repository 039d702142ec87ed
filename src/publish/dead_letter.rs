//! Records Kafka cannot take: the size check before sending and the dead-letter topic
//! (`[kafka] dead_letter_topic`, docs/delivery.md).

use super::*;

/// Kafka's framing plus the key, value and headers of `rec`: what its topic's limit is
/// compared with.
pub fn record_size(rec: &OutRecord<'_>) -> usize {
    rec.key.map_or(0, <[u8]>::len)
        + rec.value.map_or(0, <[u8]>::len)
        + rec
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + RECORD_FRAMING_BYTES
}

/// The event a record belongs to, for the dead-letter topic.
#[derive(Clone, Copy)]
pub(super) struct Diverted<'e, 'r> {
    pub(super) source: &'e str,
    pub(super) entry: &'e TableEntry,
    pub(super) ev: &'e ChangeEvent<'r>,
    pub(super) meta: EventMeta<'e>,
}

/// Sends `rec`; or, when it is larger than its topic takes and a dead-letter topic is set, the
/// event it belongs to to the dead-letter topic instead (`bufs`: the dead-letter key and value
/// buffers). Without a dead-letter topic such a record is a definite error.
pub(super) async fn send_or_divert<S: Sink>(
    sink: &mut S,
    dead_letter_topic: Option<&str>,
    rec: OutRecord<'_>,
    event: Diverted<'_, '_>,
    bufs: (&mut Vec<u8>, &mut Vec<u8>),
) -> Result<(), SourceError> {
    match too_large(sink, dead_letter_topic, &rec)? {
        Some(dead) => {
            dead.send(
                sink,
                event.source,
                event.entry,
                event.ev,
                event.meta,
                bufs.0,
                bufs.1,
            )
            .await
        }
        None => Ok(sink.send(rec).await?),
    }
}

/// Whether `rec` is larger than its topic takes (when the sink knows the limit): with a
/// dead-letter topic, where it goes instead; without, the definite error that stops the source
/// at once (rather than a delivery that fails after librdkafka's message timeout).
pub(super) fn too_large<'a, S: Sink>(
    sink: &S,
    dead_letter_topic: Option<&'a str>,
    rec: &OutRecord<'a>,
) -> Result<Option<DeadLetter<'a>>, SourceError> {
    let Some(limit) = sink.record_limit(rec.topic) else {
        return Ok(None);
    };
    let size = record_size(rec);
    if size <= limit {
        return Ok(None);
    }
    let what = format!(
        "record of {size} bytes (with {RECORD_FRAMING_BYTES} bytes of framing) is larger than \
         the {limit} bytes topic `{}` takes (its max.message.bytes or the producer's \
         message.max.bytes)",
        rec.topic
    );
    match dead_letter_topic {
        Some(topic) => Ok(Some(DeadLetter {
            topic,
            original_topic: rec.topic,
            error: format!(
                "{what}; fix: raise them, then replay this event from the dead-letter topic"
            ),
            reason: DeadReason::TooLarge,
            size,
        })),
        None => Err(SourceError::new(
            crate::error::ErrorKind::Definite,
            format!(
                "too large: {what}; fix: raise the topic's max.message.bytes (and \
                 message.max.bytes in [kafka.properties] if it is the smaller), or set [kafka] \
                 dead_letter_topic to divert such events"
            ),
            crate::error::Dependency::Kafka,
        )),
    }
}

/// An event on its way to the dead-letter topic instead of `original_topic`.
pub(super) struct DeadLetter<'a> {
    pub(super) topic: &'a str,
    pub(super) original_topic: &'a str,
    pub(super) error: String,
    pub(super) reason: DeadReason,
    /// The refused record's size (0 when it was not built: a rejected schema).
    pub(super) size: usize,
}

impl DeadLetter<'_> {
    /// Sends the event as JSON to the dead-letter topic through `sink` (in exactly-once mode
    /// inside the open Kafka transaction, like the event's other records). Key:
    /// `<source>/<schema.table>/<key JSON>` as in the event store. When even the JSON is too
    /// large for the dead-letter topic, its `before`/`after` rows are left out (`"truncated":
    /// true`): the key and position still say which change it was.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send<S: Sink>(
        &self,
        sink: &mut S,
        source: &str,
        entry: &TableEntry,
        ev: &ChangeEvent<'_>,
        meta: EventMeta<'_>,
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Result<(), SourceError> {
        let row = match ev.op {
            Op::Delete => ev.before,
            _ => ev.after.or(ev.before),
        };
        key.clear();
        key.extend_from_slice(source.as_bytes());
        key.push(KEY_SEP);
        key.extend_from_slice(entry.table_header.as_bytes());
        key.push(KEY_SEP);
        if let (false, Some(row)) = (entry.schema.key.is_empty(), row) {
            key_json(&entry.schema, row, key);
        }
        let size = self.size.to_string();
        let headers: [(&str, &[u8]); 7] = [
            ("cdc.error", self.error.as_bytes()),
            ("cdc.reason", self.reason.label().as_bytes()),
            ("cdc.source", source.as_bytes()),
            ("cdc.table", entry.table_header.as_bytes()),
            ("cdc.position", meta.position.as_bytes()),
            ("cdc.topic", self.original_topic.as_bytes()),
            ("cdc.size", size.as_bytes()),
        ];
        value.clear();
        event_json(source, entry, ev, meta, true, value);
        let limit = sink.record_limit(self.topic);
        let truncated = limit.is_some_and(|l| {
            let rec = OutRecord {
                topic: self.topic,
                key: Some(key),
                value: Some(value),
                headers: &headers,
            };
            record_size(&rec) > l
        });
        if truncated {
            value.clear();
            event_json(source, entry, ev, meta, false, value);
        }
        let rec = OutRecord {
            topic: self.topic,
            key: Some(key),
            value: Some(value),
            headers: &headers,
        };
        tracing::warn!(
            source,
            table = %entry.table_header,
            topic = self.original_topic,
            position = meta.position,
            reason = self.reason.label(),
            size = self.size,
            dead_letter_topic = self.topic,
            truncated,
            "event sent to the dead-letter topic: {}",
            self.error
        );
        sink.send(rec).await?;
        entry.metrics.dead_letter(self.reason);
        Ok(())
    }
}

/// The event as one JSON object for the dead-letter topic: `source`, `table`, `op`,
/// `position`, `txid`, `commit_ts_ms`, `key`, and with `rows` its `before` and `after` (column
/// → value, as [`datum_json`] renders them); without, `"truncated": true` instead.
pub(super) fn event_json(
    source: &str,
    entry: &TableEntry,
    ev: &ChangeEvent<'_>,
    meta: EventMeta<'_>,
    rows: bool,
    out: &mut Vec<u8>,
) {
    let string = |s: &str, out: &mut Vec<u8>| {
        let _ = serde_json::to_writer(&mut *out, s);
    };
    let row_json = |row: Option<&[Datum<'_>]>, out: &mut Vec<u8>| match row {
        None => out.extend_from_slice(b"null"),
        Some(row) => {
            out.push(b'{');
            for (i, col) in entry.schema.columns.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, &col.name);
                out.push(b':');
                datum_json(row.get(i).unwrap_or(&Datum::Null), out);
            }
            out.push(b'}');
        }
    };
    out.extend_from_slice(b"{\"source\":");
    string(source, out);
    out.extend_from_slice(b",\"table\":");
    string(&entry.table_header, out);
    out.extend_from_slice(b",\"op\":");
    string(ev.op.code(), out);
    out.extend_from_slice(b",\"position\":");
    string(meta.position, out);
    out.extend_from_slice(b",\"txid\":");
    match meta.txid {
        Some(t) => string(t, out),
        None => out.extend_from_slice(b"null"),
    }
    let _ = write!(out, ",\"commit_ts_ms\":{}", meta.commit_ms);
    out.extend_from_slice(b",\"key\":");
    let row = match ev.op {
        Op::Delete => ev.before,
        _ => ev.after.or(ev.before),
    };
    match row {
        Some(row) if !entry.schema.key.is_empty() => key_json(&entry.schema, row, out),
        _ => out.extend_from_slice(b"null"),
    }
    if rows {
        out.extend_from_slice(b",\"before\":");
        row_json(ev.before, out);
        out.extend_from_slice(b",\"after\":");
        row_json(ev.after, out);
    } else {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.push(b'}');
}
