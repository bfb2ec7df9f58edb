#![no_main]
//! See `capsuledb_fuzz::fuzz_history`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| capsuledb_fuzz::fuzz_history(data));
