//! Small helpers shared by several layers.

/// The little-endian `u16` at `at` in `b`, or `None` when it passes the end.
#[inline]
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The little-endian `u32` at `at` in `b`, or `None` when it passes the end.
#[inline]
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The little-endian `u64` at `at` in `b`, or `None` when it passes the end.
#[inline]
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Shows bytes as UTF-8 when printable, otherwise as hex, cut to a readable length.
pub fn show_bytes(bytes: &[u8]) -> String {
    const SHOW_LEN_MAX: usize = 64;
    let cut = bytes.get(..SHOW_LEN_MAX).unwrap_or(bytes);
    let more = if bytes.len() > SHOW_LEN_MAX {
        "…"
    } else {
        ""
    };
    match std::str::from_utf8(cut) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}{more}"),
        _ => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more}")
        }
    }
}

/// Borrows the key of an owned bound.
pub fn bound_slice(b: &std::ops::Bound<Vec<u8>>) -> std::ops::Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

/// Whether `key` lies inside `(lo, hi)`.
pub fn in_bounds(key: &[u8], lo: std::ops::Bound<&[u8]>, hi: std::ops::Bound<&[u8]>) -> bool {
    std::ops::RangeBounds::<[u8]>::contains(&(lo, hi), key)
}

/// Whether the lower bound `a` admits no key that `b` excludes and is not the same as
/// `b` (it is the tighter of the two).
pub fn bound_tighter_lo(a: &std::ops::Bound<Vec<u8>>, b: &std::ops::Bound<Vec<u8>>) -> bool {
    use std::ops::Bound::*;
    match (a, b) {
        (Unbounded, _) => false,
        (_, Unbounded) => true,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) if x != y => x > y,
        (Excluded(_), Included(_)) => true,
        _ => false,
    }
}

/// Whether the upper bound `a` is the tighter of `a` and `b`.
pub fn bound_tighter_hi(a: &std::ops::Bound<Vec<u8>>, b: &std::ops::Bound<Vec<u8>>) -> bool {
    use std::ops::Bound::*;
    match (a, b) {
        (Unbounded, _) => false,
        (_, Unbounded) => true,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) if x != y => x < y,
        (Excluded(_), Included(_)) => true,
        _ => false,
    }
}
