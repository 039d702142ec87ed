//! `cdc-agent tail`: a source's live changes as JSON lines on stdout, without Kafka or the
//! registry, for checking what the agent would capture before (or while) running it.
//!
//! ```text
//!  CREATE_REPLICATION_SLOT cdc_tail_… TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT
//!        │   (dropped by the server when this connection ends, also on kill -9)
//!        ▼
//!  START_REPLICATION ─▶ wire ─▶ pgoutput ─▶ SchemaLoader/RelationState ─▶ one JSON line per change
//! ```
//!
//! The temporary slot is why tail is safe next to a running agent: it never touches the
//! agent's slot or checkpoint, and it leaves nothing behind that would pin WAL. It starts at
//! the slot's creation point, so it shows changes committed after it started, not history.
//!
//! Each line is `{"op","schema","table","lsn","xid","commit_ts","before","after"}`: `op` is
//! Debezium's letter (`c`, `u`, `d`, `t`), `lsn` the change's WAL position (`X/X`), `xid` the
//! transaction id, `commit_ts` the commit time in UTC (ISO 8601), and `before`/`after` the rows
//! as objects of column → value, rendered by [`crate::publish::datum_json`] exactly as the
//! agent renders event-store keys (the Debezium representation: dates as days, timestamps as
//! epoch micro- or milliseconds, decimals as unscaled bytes). An update that changes the key
//! stays one `u` line with the old key in `before` (the agent itself splits it into `d` + `c`).
//! Unchanged TOASTed values are `null`.

use std::collections::HashMap;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::pgoutput::{self, LogicalMessage};
use super::replication::{ReplicationClient, ReplicationStream};
use super::schema::{RelationState, SchemaLoader};
use super::stream::{protocol_error, repl_error};
use super::wire::{self, Lsn, ReplicationFrame};
use super::{connect_sql, setup, PgSourceSettings, SourceError};
use crate::event::Datum;
use crate::pipeline::TICK as STATUS_INTERVAL;
use crate::publish::datum_json;
use crate::shutdown::Shutdown;

/// Application name of tail's connections, so `pg_stat_replication` tells it from the agent.
pub const APPLICATION_NAME: &str = "cdc-agent tail";

/// The transaction the current changes belong to.
struct Tx {
    xid: u32,
    commit_ts: String,
}

/// Streams the source's changes to `out` until `stop` (or until `out` is closed, e.g. by
/// `| head`). Returns how many changes were printed.
///
/// Like `run`, it checks the prerequisites and creates the configured publication when it is
/// missing; unlike `run`, it uses a temporary slot of its own and publishes nothing.
pub async fn run(
    settings: &PgSourceSettings,
    mut stop: Shutdown,
    out: &mut (impl Write + Send),
) -> Result<u64, SourceError> {
    let sql = connect_sql(settings).await?;
    setup::check_prerequisites(&sql).await?;
    let tables = settings
        .source
        .postgres
        .as_ref()
        .map(|p| p.tables.clone())
        .unwrap_or_default();
    let via_root = settings
        .source
        .postgres
        .as_ref()
        .is_some_and(|p| p.publish_via_partition_root);
    setup::ensure_publication(&sql, &settings.publication, &tables, via_root).await?;

    let mut config = settings.replication_config();
    config.application_name = APPLICATION_NAME.to_string();
    let mut repl = ReplicationClient::connect(&config)
        .await
        .map_err(repl_error)?;
    let server_version = repl
        .parameter("server_version")
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(10);
    let slot = temporary_slot_name();
    let created = repl
        .create_logical_slot(&slot, false, true)
        .await
        .map_err(repl_error)?;
    let publications = format!("\"{}\"", settings.publication.replace('"', "\"\""));
    // Protocol 1 carries everything tail prints (no streaming, no two-phase), and every
    // server with pgoutput speaks it.
    let options = [
        ("proto_version", "1"),
        ("publication_names", publications.as_str()),
    ];
    let mut stream = repl
        .start_replication(&slot, Lsn(0), &options)
        .await
        .map_err(repl_error)?;
    tracing::info!(
        source = %settings.source.name,
        slot = %slot,
        publication = %settings.publication,
        start_lsn = %created.consistent_point,
        server_version,
        "tailing changes on a temporary slot"
    );

    let mut loader = SchemaLoader::new(&sql);
    let mut relations: HashMap<u32, RelationState> = HashMap::new();
    let mut tx: Option<Tx> = None;
    let mut received = Lsn(0);
    let mut printed = 0u64;
    let mut before_buf: Vec<Datum<'static>> = Vec::new();
    let mut after_buf: Vec<Datum<'static>> = Vec::new();
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    let mut timer = tokio::time::interval(STATUS_INTERVAL);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.wait() => break,
            _ = timer.tick() => {
                // Everything received is printed: a temporary slot may let the server
                // recycle WAL up to it at once.
                send_status(&mut stream, received).await?;
                continue;
            }
            f = stream.recv() => f.map_err(repl_error)?,
        };
        let Some(frame) = frame else {
            return Err(SourceError::transient(
                "server ended the replication stream".into(),
            ));
        };
        let (wal_start, data) = match wire::decode_frame(&frame)
            .map_err(|e| protocol_error(e, received, "replication frame"))?
        {
            ReplicationFrame::XLogData(x) => {
                received = received.max(x.wal_end);
                (x.wal_start, x.data)
            }
            ReplicationFrame::PrimaryKeepalive(k) => {
                received = received.max(k.wal_end);
                if k.reply_requested {
                    send_status(&mut stream, received).await?;
                }
                continue;
            }
        };
        let msg = pgoutput::decode(data, false)
            .map_err(|e| protocol_error(e, wal_start, "pgoutput message"))?;
        // Rows borrow from `frame`: reuse the buffers' allocations under this frame's
        // lifetime and hand them back emptied at the end of the iteration.
        let mut before = recycle(std::mem::take(&mut before_buf));
        let mut after = recycle(std::mem::take(&mut after_buf));
        let written = match msg {
            LogicalMessage::Begin(b) => {
                tx = Some(Tx {
                    xid: b.xid,
                    commit_ts: wire::pg_us_to_unix_us(b.commit_time)
                        .map(format_utc_micros)
                        .unwrap_or_default(),
                });
                Ok(())
            }
            LogicalMessage::Commit(_) => {
                tx = None;
                // One flush per transaction: its lines arrive in a burst.
                out.flush()
            }
            LogicalMessage::Relation(rel) => {
                let state = loader.load(&rel, tx.as_ref().map(|t| t.xid)).await?;
                relations.insert(rel.oid, state);
                Ok(())
            }
            LogicalMessage::Insert(ins) => {
                let rel = relation(&relations, ins.relation_oid)?;
                rel.decode(ins.new, &mut after)?;
                change_line(
                    &mut line,
                    "c",
                    rel,
                    wal_start,
                    tx.as_ref(),
                    None,
                    Some(&after),
                );
                printed += 1;
                out.write_all(&line)
            }
            LogicalMessage::Update(up) => {
                let rel = relation(&relations, up.relation_oid)?;
                rel.decode(up.new, &mut after)?;
                let old = match &up.old {
                    Some(o) => {
                        rel.decode(o.tuple(), &mut before)?;
                        Some(&before[..])
                    }
                    None => None,
                };
                change_line(
                    &mut line,
                    "u",
                    rel,
                    wal_start,
                    tx.as_ref(),
                    old,
                    Some(&after),
                );
                printed += 1;
                out.write_all(&line)
            }
            LogicalMessage::Delete(del) => {
                let rel = relation(&relations, del.relation_oid)?;
                rel.decode(del.old.tuple(), &mut before)?;
                change_line(
                    &mut line,
                    "d",
                    rel,
                    wal_start,
                    tx.as_ref(),
                    Some(&before),
                    None,
                );
                printed += 1;
                out.write_all(&line)
            }
            LogicalMessage::Truncate(tr) => {
                let mut result = Ok(());
                for oid in &tr.relation_oids {
                    let rel = relation(&relations, *oid)?;
                    change_line(&mut line, "t", rel, wal_start, tx.as_ref(), None, None);
                    printed += 1;
                    result = result.and_then(|()| out.write_all(&line));
                }
                result
            }
            LogicalMessage::Origin(_) | LogicalMessage::Type(_) | LogicalMessage::Message(_) => {
                Ok(())
            }
            other => {
                return Err(SourceError::definite(format!(
                    "unexpected pgoutput message `{}` (streaming and two-phase are not requested)",
                    other.kind()
                )))
            }
        };
        before_buf = recycle(before);
        after_buf = recycle(after);
        match written {
            Ok(()) => {}
            // The reader went away (`| head`, a closed pager): that is how tail ends there.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(SourceError::definite(format!("write to stdout: {e}"))),
        }
    }
    let _ = out.flush();
    // Best effort: the server drops the temporary slot when the connection closes anyway.
    let _ = send_status(&mut stream, received).await;
    tracing::info!(changes = printed, slot = %slot, "tail stopped");
    Ok(printed)
}

/// A slot name of this process that no other tail on the server uses: slot names are
/// server-wide, and two operators may tail the same database at once.
fn temporary_slot_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("cdc_tail_{}_{nanos:x}", std::process::id())
}

/// Writes one change as a JSON line (with its newline) into `line`, replacing its content.
fn change_line(
    line: &mut Vec<u8>,
    op: &str,
    rel: &RelationState,
    lsn: Lsn,
    tx: Option<&Tx>,
    before: Option<&[Datum<'_>]>,
    after: Option<&[Datum<'_>]>,
) {
    let schema = rel.schema();
    line.clear();
    line.extend_from_slice(b"{\"op\":\"");
    line.extend_from_slice(op.as_bytes());
    line.extend_from_slice(b"\",\"schema\":");
    json_string(line, &schema.id.schema);
    line.extend_from_slice(b",\"table\":");
    json_string(line, &schema.id.table);
    line.extend_from_slice(b",\"lsn\":");
    json_string(line, &lsn.to_string());
    line.extend_from_slice(b",\"xid\":");
    match tx {
        Some(t) => line.extend_from_slice(t.xid.to_string().as_bytes()),
        None => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b",\"commit_ts\":");
    match tx {
        Some(t) if !t.commit_ts.is_empty() => json_string(line, &t.commit_ts),
        _ => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b",\"before\":");
    row_json(line, rel, before);
    line.extend_from_slice(b",\"after\":");
    row_json(line, rel, after);
    line.extend_from_slice(b"}\n");
}

/// `{"column":value,…}` in table order, or `null` without a row.
fn row_json(out: &mut Vec<u8>, rel: &RelationState, row: Option<&[Datum<'_>]>) {
    let Some(row) = row else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'{');
    for (i, column) in rel.schema().columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(out, &column.name);
        out.push(b':');
        datum_json(row.get(i).unwrap_or(&Datum::Null), out);
    }
    out.push(b'}');
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Serializing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Microseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Commit times are
/// always within years 0001..9999, which is all this needs to handle.
fn format_utc_micros(us: i64) -> String {
    let days = us.div_euclid(86_400_000_000);
    let of_day = us.rem_euclid(86_400_000_000);
    let (y, m, d) = cdc_codec::civil::civil_from_days(days);
    let secs = of_day / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        of_day % 1_000_000
    )
}

fn relation(map: &HashMap<u32, RelationState>, oid: u32) -> Result<&RelationState, SourceError> {
    map.get(&oid).ok_or_else(|| {
        SourceError::transient(format!(
            "row for relation {oid} arrived before its Relation message"
        ))
    })
}

/// Empties a row buffer and gives it a fresh lifetime, keeping its allocation (the same
/// trick as the stream loop's: no datum outlives the frame it borrowed from).
fn recycle<'b>(mut v: Vec<Datum<'_>>) -> Vec<Datum<'b>> {
    v.clear();
    v.into_iter().map(|_| Datum::Null).collect()
}

async fn send_status(stream: &mut ReplicationStream, received: Lsn) -> Result<(), SourceError> {
    stream
        .send_status(received, received, received, false)
        .await
        .map_err(repl_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_times_print_as_utc_iso_8601_with_microseconds() {
        assert_eq!(format_utc_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_utc_micros(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn temporary_slot_names_are_valid_slot_names() {
        let name = temporary_slot_name();
        assert!(name.len() <= 63);
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    }
}
