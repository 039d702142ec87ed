//! DECIMAL: MySQL's packed binary form and decimal text as unscaled two's-complement bytes.

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Bytes of a binary DECIMAL(precision, scale).
pub(super) fn decimal_bin_size(precision: u8, scale: u8) -> usize {
    let intg = usize::from(precision.saturating_sub(scale));
    let frac = usize::from(scale);
    (intg / 9) * 4 + DIG2BYTES[intg % 9] + (frac / 9) * 4 + DIG2BYTES[frac % 9]
}

/// A 256-bit magnitude as eight 32-bit limbs, least significant first: room for 65 digits.
#[derive(Default)]
struct Mag([u32; 8]);

impl Mag {
    /// `self = self * mul + add`; false on overflow.
    fn mul_add(&mut self, mul: u32, add: u32) -> bool {
        let mut carry = u64::from(add);
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(mul) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        carry == 0
    }

    /// Minimal big-endian two's complement bytes of `±self`, as Java's
    /// `BigInteger.toByteArray()` (what Connect's Decimal carries).
    fn to_twos_complement(&self, negative: bool) -> Vec<u8> {
        let mut be = [0u8; 33];
        for (i, limb) in self.0.iter().enumerate() {
            let at = 33 - 4 * (i + 1);
            be[at..at + 4].copy_from_slice(&limb.to_be_bytes());
        }
        if negative && self.0.iter().any(|&l| l != 0) {
            // two's complement: invert and add one
            let mut carry = true;
            for b in be.iter_mut().rev() {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
        minimal_twos_complement(&be)
    }
}

/// Drops redundant sign bytes.
fn minimal_twos_complement(b: &[u8]) -> Vec<u8> {
    let mut i = 0;
    while i + 1 < b.len()
        && ((b[i] == 0 && b[i + 1] & 0x80 == 0) || (b[i] == 0xff && b[i + 1] & 0x80 != 0))
    {
        i += 1;
    }
    b[i..].to_vec()
}

/// A u64 as Connect Decimal bytes (BIGINT UNSIGNED in `precise` mode).
pub(super) fn unsigned_decimal_bytes(v: u64) -> (Vec<u8>, u32) {
    let mut b = [0u8; 9];
    b[1..].copy_from_slice(&v.to_be_bytes());
    (minimal_twos_complement(&b), 0)
}

/// MySQL's binary DECIMAL → unscaled two's complement bytes. The format: groups of nine
/// digits in 4 big-endian bytes, a shorter leading integer group and trailing fraction group,
/// the sign in the top bit of the first byte (set = positive), negative values bit-inverted.
pub(super) fn decode_binary_decimal(b: &[u8], precision: u8, scale: u8) -> Option<Vec<u8>> {
    if b.is_empty() {
        return None;
    }
    let negative = b[0] & 0x80 == 0;
    let mask = if negative { 0xff } else { 0 };
    let intg = usize::from(precision.saturating_sub(scale));
    let frac = usize::from(scale);
    // (bytes, digits) of each group in order
    let mut groups: [(usize, u32); 16] = [(0, 0); 16];
    let mut ng = 0;
    let mut push = |bytes: usize, digits: u32| {
        if bytes > 0 && ng < groups.len() {
            groups[ng] = (bytes, digits);
            ng += 1;
        }
    };
    push(DIG2BYTES[intg % 9], (intg % 9) as u32);
    for _ in 0..intg / 9 {
        push(4, 9);
    }
    for _ in 0..frac / 9 {
        push(4, 9);
    }
    push(DIG2BYTES[frac % 9], (frac % 9) as u32);
    let mut mag = Mag::default();
    let mut at = 0;
    for (i, &(bytes, digits)) in groups[..ng].iter().enumerate() {
        let chunk = b.get(at..at + bytes)?;
        at += bytes;
        let mut v = 0u32;
        for (j, &byte) in chunk.iter().enumerate() {
            let mut byte = byte ^ mask;
            if i == 0 && j == 0 {
                byte ^= 0x80;
            }
            v = (v << 8) | u32::from(byte);
        }
        if v >= 10u32.pow(digits) {
            return None;
        }
        if !mag.mul_add(10u32.pow(digits), v) {
            return None;
        }
    }
    Some(mag.to_twos_complement(negative))
}

/// A decimal's text (`-123.4500`) → unscaled bytes at `scale` (rounding is never needed: the
/// server prints exactly `scale` fraction digits; extra digits are an error).
pub fn decimal_text_to_unscaled(s: &str, scale: u32) -> Option<Vec<u8>> {
    let s = s.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if frac.len() > scale as usize {
        return None;
    }
    let mut mag = Mag::default();
    let digits = int
        .bytes()
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', scale as usize - frac.len()));
    for c in digits {
        if !c.is_ascii_digit() || !mag.mul_add(10, u32::from(c - b'0')) {
            return None;
        }
    }
    Some(mag.to_twos_complement(negative))
}
