//! Where a key should sit among a page's cells, from the separators around the page
//! ([`super::page::NodeRef::search_near`] starts its search there).

use crate::types::first_word;

/// Pages with fewer cells are searched from the middle, unless their cells are large
/// ([`NodeRef::search_near`]).
pub(super) const HINT_MIN_CELLS: usize = 16;

/// Where `key` falls among `count` keys spread evenly over `[lo, hi)`, reading the bytes
/// after the bounds' common prefix as a number: as decimal digits when both bounds have
/// a digit there (keys such as `user:0000123456`, whose bytes use ten values of 256), else
/// as 8 bytes big-endian. Either reading keeps the keys' order, so a poor estimate costs
/// probes, never a wrong answer. `None` when the key is not strictly inside the range.
#[inline]
pub(super) fn interpolate(key: &[u8], lo: &[u8], hi: &[u8], count: usize) -> Option<usize> {
    let common = common_prefix(lo, hi);
    let decimal = lo.get(common).is_some_and(u8::is_ascii_digit)
        && hi.get(common).is_some_and(u8::is_ascii_digit);
    let number = |k: &[u8]| key_number(k.get(common..).unwrap_or(&[]), decimal);
    let (a, b, x) = (number(lo), number(hi), number(key));
    if !(a <= x && x < b) {
        return None;
    }
    Some(((x - a) / (b - a) * count as f64) as usize)
}

/// The bytes `rest` as a number of the same order: their first [`DECIMAL_DIGITS`] decimal
/// digits (`decimal`), or their first 8 bytes big-endian.
#[inline(always)]
fn key_number(rest: &[u8], decimal: bool) -> f64 {
    if decimal {
        let mut n = 0u64;
        let mut digits = rest.iter().take_while(|b| b.is_ascii_digit());
        for _ in 0..DECIMAL_DIGITS {
            n = n * 10 + digits.next().map_or(0, |b| u64::from(b - b'0'));
        }
        n as f64
    } else {
        first_word(rest) as f64
    }
}

/// Bytes `a` and `b` share at their start, compared 8 at a time.
#[inline]
pub(super) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut at = 0;
    while let (Some(x), Some(y)) = (a.get(at..at + 8), b.get(at..at + 8)) {
        let diff = first_word(x) ^ first_word(y);
        if diff != 0 {
            return at + diff.leading_zeros() as usize / 8;
        }
        at += 8;
    }
    at + a
        .get(at..)
        .unwrap_or(&[])
        .iter()
        .zip(b.get(at..).unwrap_or(&[]))
        .take_while(|(x, y)| x == y)
        .count()
}

/// Decimal digits [`interpolate`] reads: enough to place a key among the cells of a page.
const DECIMAL_DIGITS: usize = 8;
