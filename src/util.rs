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
