//! GTID states and sets: what a resume by GTID asks the server for.
//!
//! * MariaDB: a *state* `domain-server-seq,…`, the newest GTID per replication domain. It is
//!   what `@slave_connect_state` takes and what `@@gtid_binlog_pos` reports; a server can
//!   serve a state when, in every domain, its binlog reaches at least that sequence number.
//! * MySQL: a *set* `uuid:1-5:7-9,uuid2:1-3` (`@@gtid_executed`), every transaction number
//!   executed per source UUID; COM_BINLOG_DUMP_GTID takes it as `Sid`s (built by the agent from
//!   [`MysqlGtidSet::intervals`]) and the server sends
//!   every transaction not in it.
//!
//! Both are parsed from checkpoint text and server variables, so bad input is an error, never
//! a panic.

use std::collections::BTreeMap;
use std::fmt;

/// Text that is not a GTID state or set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid GTID {what}: {why}")]
pub struct GtidError {
    /// `state` (MariaDB) or `set` (MySQL).
    pub what: &'static str,
    /// The offending text (a GTID carries no secret).
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

fn bad(what: &'static str, text: &str, why: &'static str) -> GtidError {
    GtidError {
        what,
        text: text.to_owned(),
        why,
    }
}

/// A MariaDB GTID state: per domain, the newest `(server_id, seq)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariadbState {
    domains: BTreeMap<u32, (u32, u64)>,
}

impl MariadbState {
    /// Parses `domain-server-seq,…` (whitespace around entries allowed; empty = no GTID).
    pub fn parse(text: &str) -> Result<Self, GtidError> {
        let mut domains = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let (Some(d), Some(s), Some(n), None) = (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(bad("state", text, "an entry is not domain-server-seq"));
            };
            let (Ok(d), Ok(s), Ok(n)) = (d.parse::<u32>(), s.parse::<u32>(), n.parse::<u64>())
            else {
                return Err(bad("state", text, "an entry has a non-numeric part"));
            };
            if domains.insert(d, (s, n)).is_some() {
                return Err(bad("state", text, "a domain appears twice"));
            }
        }
        Ok(MariadbState { domains })
    }

    /// No domain at all.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The first GTID of `self` the server whose binlog reaches `server` (its
    /// `@@gtid_binlog_pos`) has not written yet, if any: resuming there would wait for
    /// transactions the server does not have (or, in strict mode, fail).
    pub fn first_missing_on(&self, server: &MariadbState) -> Option<String> {
        self.domains.iter().find_map(|(d, (s, n))| {
            let have = server.domains.get(d).map_or(0, |(_, seq)| *seq);
            (have < *n).then(|| format!("{d}-{s}-{n}"))
        })
    }
}

impl fmt::Display for MariadbState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, (s, n))) in self.domains.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}-{s}-{n}")?;
        }
        Ok(())
    }
}

/// A MySQL GTID set: per source UUID, sorted disjoint inclusive intervals of transaction
/// numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlGtidSet {
    sids: BTreeMap<[u8; 16], Vec<(u64, u64)>>,
}

impl MysqlGtidSet {
    /// Parses `uuid:1-5:7-9,uuid2:1-3` as `@@gtid_executed` prints it (newlines after commas
    /// allowed; empty = no GTID). Tagged GTIDs (MySQL 8.3 `uuid:tag:1-5`) are refused.
    pub fn parse(text: &str) -> Result<Self, GtidError> {
        let mut set = MysqlGtidSet::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let uuid = parse_uuid(it.next().unwrap_or_default())
                .ok_or_else(|| bad("set", text, "an entry does not start with a UUID"))?;
            let mut any = false;
            for iv in it {
                any = true;
                let (a, b) = match iv.split_once('-') {
                    Some((a, b)) => (a.parse::<u64>(), b.parse::<u64>()),
                    None => (iv.parse::<u64>(), iv.parse::<u64>()),
                };
                let (Ok(a), Ok(b)) = (a, b) else {
                    return Err(bad(
                        "set",
                        text,
                        "an interval is not n or n-m (tagged GTIDs are not supported)",
                    ));
                };
                if a == 0 || b < a {
                    return Err(bad("set", text, "an interval is empty or starts at 0"));
                }
                set.insert(uuid, a, b);
            }
            if !any {
                return Err(bad("set", text, "a UUID has no interval"));
            }
        }
        Ok(set)
    }

    /// Adds transaction `gno` of `uuid` (a commit seen in the stream).
    pub fn add(&mut self, uuid: [u8; 16], gno: u64) {
        if gno > 0 {
            self.insert(uuid, gno, gno);
        }
    }

    /// Adds `uuid:gno` text as the stream's GTID events print it; false when it is not one.
    pub fn add_text(&mut self, gtid: &str) -> bool {
        let Some((u, n)) = gtid.rsplit_once(':') else {
            return false;
        };
        match (parse_uuid(u), n.parse::<u64>()) {
            (Some(u), Ok(n)) if n > 0 => {
                self.add(u, n);
                true
            }
            _ => false,
        }
    }

    fn insert(&mut self, uuid: [u8; 16], a: u64, b: u64) {
        let ivs = self.sids.entry(uuid).or_default();
        ivs.push((a, b));
        ivs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
        for &(a, b) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *ivs = merged;
    }

    /// Each source UUID with its closed, merged `(first, last)` transaction intervals, in
    /// UUID order.
    pub fn intervals(&self) -> impl Iterator<Item = (&[u8; 16], &[(u64, u64)])> {
        self.sids.iter().map(|(uuid, ivs)| (uuid, ivs.as_slice()))
    }

    /// No transaction at all.
    pub fn is_empty(&self) -> bool {
        self.sids.is_empty()
    }

    /// The first transaction of `self` that `server` (its `@@gtid_executed`) lacks, as
    /// `uuid:n`, if any: auto-positioning would wait for it forever.
    pub fn first_missing_on(&self, server: &MysqlGtidSet) -> Option<String> {
        for (uuid, ivs) in &self.sids {
            let have = server.sids.get(uuid).map(Vec::as_slice).unwrap_or_default();
            for &(a, b) in ivs {
                // Walk [a, b] through the server's sorted intervals.
                let mut next = a;
                for &(ha, hb) in have {
                    if hb < next {
                        continue;
                    }
                    if ha > next {
                        break;
                    }
                    next = hb.saturating_add(1);
                    if next > b {
                        break;
                    }
                }
                if next <= b {
                    let mut one = MysqlGtidSet::default();
                    one.add(*uuid, next);
                    return Some(one.to_string());
                }
            }
        }
        None
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (uuid, ivs)) in self.sids.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, b) in uuid.iter().enumerate() {
                if matches!(j, 4 | 6 | 8 | 10) {
                    f.write_str("-")?;
                }
                write!(f, "{b:02x}")?;
            }
            for &(a, b) in ivs {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
    let dashes_ok = text.len() == 36
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| (b == b'-') == matches!(i, 8 | 13 | 18 | 23));
    if hex.len() != 32 || !dashes_ok {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn a_mariadb_state_parses_prints_and_knows_what_a_server_lacks() {
        let want = MariadbState::parse(" 0-1-42, 5-2-7").unwrap();
        assert_eq!(want.to_string(), "0-1-42,5-2-7");
        let ahead = MariadbState::parse("0-2-50,5-2-7").unwrap();
        assert_eq!(want.first_missing_on(&ahead), None);
        let behind = MariadbState::parse("0-1-41,5-2-9").unwrap();
        assert_eq!(want.first_missing_on(&behind).as_deref(), Some("0-1-42"));
        let no_domain = MariadbState::parse("0-1-42").unwrap();
        assert_eq!(want.first_missing_on(&no_domain).as_deref(), Some("5-2-7"));
        assert!(MariadbState::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_mariadb_states_are_errors() {
        for text in ["0-1", "0-1-2-3", "a-1-2", "0-1-2,0-1-3", "0--1"] {
            assert!(MariadbState::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_mysql_set_parses_and_merges_into_closed_intervals() {
        let mut set = MysqlGtidSet::parse(&format!("{U2}:1-3,\n{U1}:1-5:7-9")).unwrap();
        assert_eq!(set.to_string(), format!("{U1}:1-5:7-9,{U2}:1-3"));
        set.add(parse_uuid(U1).unwrap(), 6);
        assert!(set.add_text(&format!("{U2}:4")));
        assert!(!set.add_text("nonsense"));
        assert_eq!(set.to_string(), format!("{U1}:1-9,{U2}:1-4"));
        let ivs: Vec<_> = set.intervals().collect();
        assert_eq!(ivs.len(), 2);
        assert_eq!(*ivs[0].0, parse_uuid(U1).unwrap());
        assert_eq!(ivs[0].1, &[(1, 9)]);
        assert_eq!(
            MysqlGtidSet::parse(&format!("{U1}:3")).unwrap().to_string(),
            format!("{U1}:3")
        );
    }

    #[test]
    fn a_mysql_server_lacking_a_transaction_of_the_set_is_found() {
        let want = MysqlGtidSet::parse(&format!("{U1}:1-9,{U2}:1-3")).unwrap();
        let all = MysqlGtidSet::parse(&format!("{U1}:1-20,{U2}:1-3:5")).unwrap();
        assert_eq!(want.first_missing_on(&all), None);
        let split = MysqlGtidSet::parse(&format!("{U1}:1-4:5-9,{U2}:1-3")).unwrap();
        assert_eq!(want.first_missing_on(&split), None);
        let hole = MysqlGtidSet::parse(&format!("{U1}:1-4:6-20,{U2}:1-3")).unwrap();
        assert_eq!(want.first_missing_on(&hole), Some(format!("{U1}:5")));
        let behind = MysqlGtidSet::parse(&format!("{U1}:1-9,{U2}:1-2")).unwrap();
        assert_eq!(want.first_missing_on(&behind), Some(format!("{U2}:3")));
        let other = MysqlGtidSet::parse(&format!("{U2}:1-3")).unwrap();
        assert_eq!(want.first_missing_on(&other), Some(format!("{U1}:1")));
    }

    #[test]
    fn bad_mysql_sets_are_errors_not_panics() {
        for text in [
            "nonsense".to_string(),
            U1.to_string(),
            format!("{U1}:"),
            format!("{U1}:0-3"),
            format!("{U1}:5-3"),
            format!("{U1}:a-b"),
            format!("{U1}:tag:1-3"),
            "3e11fa47-71ca-11e1-9e33-c80aa94295:1".to_string(),
            "zz11fa47-71ca-11e1-9e33-c80aa9429562:1".to_string(),
        ] {
            assert!(MysqlGtidSet::parse(&text).is_err(), "{text}");
        }
        assert!(MysqlGtidSet::parse("").unwrap().is_empty());
    }
}
