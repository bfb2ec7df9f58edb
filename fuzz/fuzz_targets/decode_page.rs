#![no_main]
//! Verifying arbitrary bytes as any page kind must never panic.
use capsuledb::format::{verify_log_page, verify_sealed_page, PageKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    let Some(kind) = PageKind::from_u8(k % 8) else { return };
    let _ = verify_sealed_page(rest, kind, 2);
    let _ = verify_log_page(rest, kind, 2);
});
