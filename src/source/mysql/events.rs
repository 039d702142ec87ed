//! Binlog events. The parsers are the codec's ([`cdc_codec::mysql::events`], re-exported
//! here); what stays in the agent is [`verify_checksum`], which reads an event as the client
//! library (`mysql_common`) split it.

pub use cdc_codec::mysql::events::*;

/// Verifies the CRC32 of an event mysql_common has split into header, body and checksum.
/// mysql_common 0.37 keeps the checksum but never compares it, so the source calls this for
/// every event when the stream has checksums (`binlog_checksum = CRC32`; mysql_async asks for
/// them with `@master_binlog_checksum`). Events without a checksum pass.
pub fn verify_checksum(event: &mysql_async::binlog::events::Event) -> Result<(), DecodeError> {
    let Some(stored) = event.checksum() else {
        return Ok(());
    };
    let Ok(Some(alg)) = event.footer().get_checksum_alg() else {
        return Ok(());
    };
    let stored = u32::from_le_bytes(stored);
    let computed = event.calc_checksum(alg);
    if stored == computed {
        Ok(())
    } else {
        Err(DecodeError::Checksum {
            event_type: event.header().event_type_raw(),
            stored,
            computed,
        })
    }
}
