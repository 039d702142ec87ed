//! GTID states and sets. Parsing and comparison are the codec's
//! ([`cdc_codec::mysql::gtid`], re-exported here); what stays in the agent is [`ToSids`], the
//! conversion into the client library's request type.

use mysql_async::{GnoInterval, Sid};

pub use cdc_codec::mysql::gtid::*;

/// A GTID set as COM_BINLOG_DUMP_GTID takes it.
pub trait ToSids {
    /// The set as `mysql_async` sends it (intervals are half-open there: `end` is one past the
    /// last transaction).
    fn to_sids(&self) -> Vec<Sid<'static>>;
}

impl ToSids for MysqlGtidSet {
    fn to_sids(&self) -> Vec<Sid<'static>> {
        self.intervals()
            .map(|(uuid, ivs)| {
                Sid::new(*uuid).with_intervals(
                    ivs.iter()
                        .map(|&(a, b)| GnoInterval::new(a, b.saturating_add(1)))
                        .collect(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn a_mysql_set_becomes_half_open_sids() {
        let set = MysqlGtidSet::parse(&format!("{U2}:1-4,\n{U1}:1-9")).unwrap();
        let sids = set.to_sids();
        assert_eq!(sids.len(), 2);
        assert_eq!(
            sids[0].uuid(),
            [
                0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
                0x95, 0x62
            ]
        );
        let iv = &sids[0].intervals()[0];
        // Half-open on the wire: 1..10 is 1-9.
        assert_eq!((iv.start(), iv.end()), (1, 10));
    }
}
