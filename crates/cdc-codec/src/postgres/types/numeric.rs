//! `numeric` and `money` text as unscaled two's-complement decimals.

use super::{malformed, TypeError};

/// Decimal text (`-123.4500`) to the unscaled big-endian two's-complement bytes Connect's
/// Decimal uses (Java `BigInteger.toByteArray`: minimal, at least one byte) and the scale.
/// `Some(scale)` pads or checks the fraction to that scale; `None` drops trailing fraction
/// zeros as Debezium does for VariableScaleDecimal.
pub(super) fn parse_decimal(text: &[u8], scale: Option<u32>) -> Result<(Vec<u8>, u32), TypeError> {
    let (negative, body) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &body[body.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.iter().all(u8::is_ascii_digit)
        || !frac_part.iter().all(u8::is_ascii_digit)
    {
        return Err(malformed("numeric", text, "expected [-]digits[.digits]"));
    }
    let (frac, pad, scale) = match scale {
        Some(scale) => {
            let wanted = usize::try_from(scale).unwrap_or(usize::MAX);
            if frac_part.len() > wanted {
                let (kept, dropped) = frac_part.split_at(wanted);
                if dropped.iter().any(|&d| d != b'0') {
                    return Err(malformed(
                        "numeric",
                        text,
                        "more fraction digits than the scale",
                    ));
                }
                (kept, 0, scale)
            } else {
                (frac_part, wanted - frac_part.len(), scale)
            }
        }
        None => {
            let kept = frac_part.len() - frac_part.iter().rev().take_while(|&&d| d == b'0').count();
            let scale =
                u32::try_from(kept).map_err(|_| malformed("numeric", text, "scale too large"))?;
            (&frac_part[..kept], 0, scale)
        }
    };
    let digits = int_part
        .iter()
        .chain(frac.iter())
        .copied()
        .chain(std::iter::repeat_n(b'0', pad));
    Ok((
        unscaled_bytes(negative, digits, int_part.len() + frac.len() + pad),
        scale,
    ))
}

/// Two's-complement bytes of ±(decimal digits), minimal as Java's `BigInteger.toByteArray`.
fn unscaled_bytes(negative: bool, digits: impl Iterator<Item = u8>, count: usize) -> Vec<u8> {
    if count <= 38 {
        // Fast path: fits an i128 (10^38 - 1 < 2^127).
        let mut v: i128 = 0;
        for d in digits {
            v = v * 10 + i128::from(d - b'0');
        }
        if negative {
            v = -v;
        }
        return minimal_twos_complement(&v.to_be_bytes());
    }
    // Little-endian base-2^32 limbs, multiplied up nine digits at a time.
    let mut limbs: Vec<u32> = Vec::with_capacity(count / 9 + 1);
    let mut chunk: u64 = 0;
    let mut chunk_len = 0u32;
    let push = |limbs: &mut Vec<u32>, chunk: u64, len: u32| {
        let mut carry = chunk;
        let mul = 10u64.pow(len);
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * mul + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        while carry > 0 {
            limbs.push(carry as u32);
            carry >>= 32;
        }
    };
    for d in digits {
        chunk = chunk * 10 + u64::from(d - b'0');
        chunk_len += 1;
        if chunk_len == 9 {
            push(&mut limbs, chunk, 9);
            chunk = 0;
            chunk_len = 0;
        }
    }
    if chunk_len > 0 {
        push(&mut limbs, chunk, chunk_len);
    }
    // Big-endian magnitude with a spare sign byte, then negate in place if needed.
    let mut bytes = Vec::with_capacity(limbs.len() * 4 + 1);
    bytes.push(0);
    for limb in limbs.iter().rev() {
        bytes.extend_from_slice(&limb.to_be_bytes());
    }
    if negative {
        let mut carry = true;
        for b in bytes.iter_mut().rev() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    minimal_twos_complement(&bytes)
}

/// Drops redundant sign bytes, keeping at least one byte.
pub(super) fn minimal_twos_complement(bytes: &[u8]) -> Vec<u8> {
    let mut start = 0;
    while start + 1 < bytes.len() {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// Money text in any `lc_monetary` that uses `.` as decimal point (`$1,234.56`,
/// `-$1,234.56`, `($1,234.56)`): digits are kept, grouping and currency symbols dropped, and
/// the value is rounded half-up to 2 digits (Debezium's `money.fraction.digits`).
pub(super) fn parse_money(text: &[u8]) -> Result<Vec<u8>, TypeError> {
    let negative = text.iter().any(|&b| b == b'-' || b == b'(');
    let mut value: i128 = 0;
    let mut digits = 0usize;
    let mut fraction: Option<usize> = None;
    let mut round_up = false;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                match fraction {
                    Some(n) if n >= 2 => {
                        // Half-up on the first dropped digit (BigDecimal.setScale HALF_UP).
                        if n == 2 && b >= b'5' {
                            round_up = true;
                        }
                        fraction = Some(n + 1);
                        continue;
                    }
                    Some(n) => fraction = Some(n + 1),
                    None => {}
                }
                digits += 1;
                if digits > 36 {
                    return Err(malformed("money", text, "too many digits"));
                }
                value = value * 10 + i128::from(b - b'0');
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            b'.' => return Err(malformed("money", text, "two decimal points")),
            _ => {}
        }
    }
    if digits == 0 {
        return Err(malformed("money", text, "no digits"));
    }
    let kept = fraction.unwrap_or(0).min(2);
    for _ in kept..2 {
        value *= 10;
    }
    if round_up {
        value += 1;
    }
    if negative {
        value = -value;
    }
    Ok(minimal_twos_complement(&value.to_be_bytes()))
}
