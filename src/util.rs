//! Small helpers shared by several layers.

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
    std::ops::RangeBounds::contains(&(lo, hi), key)
}
