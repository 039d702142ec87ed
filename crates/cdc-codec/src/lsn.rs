//! [`Lsn`], a PostgreSQL WAL position: decoded from replication frames, stored in checkpoints
//! and printed by the ledger tools, so it lives beside the decoders rather than in one of them.

use std::fmt;
use std::str::FromStr;

/// A WAL position (PostgreSQL `XLogRecPtr` / `pg_lsn`).
///
/// Displayed and parsed in PostgreSQL's own `XXXXXXXX/XXXXXXXX` notation so
/// values can be copied to and from `psql` verbatim.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/0`, which PostgreSQL uses to mean "no position".
    pub const INVALID: Lsn = Lsn(0);

    /// The raw 64-bit position.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Whether this is a real position rather than [`Lsn::INVALID`].
    pub const fn is_valid(self) -> bool {
        self.0 != 0
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Self {
        Lsn(value)
    }
}

impl From<Lsn> for u64 {
    fn from(value: Lsn) -> Self {
        value.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

// Debug shows the PostgreSQL notation too: raw decimal LSNs in logs are
// impossible to correlate with server-side views.
impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lsn({self})")
    }
}

/// Error returned when a string is not an LSN in `X/X` hex notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid lsn: expected two hex numbers of 1-8 digits separated by '/'")]
pub struct ParseLsnError {
    _private: (),
}

impl FromStr for Lsn {
    type Err = ParseLsnError;

    /// Parses `16/B374D848` (case-insensitive), mirroring `pg_lsn_in`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = ParseLsnError { _private: () };
        let (hi, lo) = s.split_once('/').ok_or(err)?;
        let half = |part: &str| -> Result<u64, ParseLsnError> {
            // from_str_radix alone would accept a leading '+', which pg_lsn_in rejects.
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err);
            }
            u32::from_str_radix(part, 16)
                .map(u64::from)
                .map_err(|_| err)
        };
        Ok(Lsn((half(hi)? << 32) | half(lo)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_displays_in_postgres_upper_hex_notation() {
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert_eq!(Lsn(u64::MAX).to_string(), "FFFFFFFF/FFFFFFFF");
        assert_eq!(format!("{:?}", Lsn(0x1_0000_0001)), "Lsn(1/1)");
    }

    #[test]
    fn lsn_parses_postgres_notation_case_insensitively() {
        assert_eq!("16/B374D848".parse::<Lsn>(), Ok(Lsn(0x16_B374_D848)));
        assert_eq!("16/b374d848".parse::<Lsn>(), Ok(Lsn(0x16_B374_D848)));
        assert_eq!("0/0".parse::<Lsn>(), Ok(Lsn::INVALID));
        assert_eq!("FFFFFFFF/FFFFFFFF".parse::<Lsn>(), Ok(Lsn(u64::MAX)));
        assert_eq!("00000001/00000002".parse::<Lsn>(), Ok(Lsn(0x1_0000_0002)));
    }

    #[test]
    fn lsn_rejects_malformed_strings() {
        for bad in [
            "",
            "/",
            "1",
            "1/",
            "/1",
            "G/1",
            "+1/1",
            "1/+1",
            "-1/1",
            "123456789/1",
            "1/123456789",
            "1/2/3",
            " 1/2",
            "1/2 ",
        ] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn lsn_round_trips_through_display_and_orders_numerically() {
        for v in [
            0,
            1,
            0xFFFF_FFFF,
            0x1_0000_0000,
            0xDEAD_BEEF_0000_0001,
            u64::MAX,
        ] {
            let lsn = Lsn::from(v);
            assert_eq!(lsn.to_string().parse::<Lsn>(), Ok(lsn));
            assert_eq!(u64::from(lsn), v);
        }
        assert!(Lsn(0xFFFF_FFFF) < Lsn(0x1_0000_0000));
        assert!(!Lsn::INVALID.is_valid());
        assert!(Lsn(1).is_valid());
    }
}
