#![no_main]
//! See `capsuledb_fuzz::fuzz_open_bytes`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| capsuledb_fuzz::fuzz_open_bytes(data));
