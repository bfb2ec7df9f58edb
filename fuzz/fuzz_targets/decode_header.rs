#![no_main]
//! Decoding arbitrary bytes as either header copy must never panic.
use capsuledb::format::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for copy in 0..2 {
        if let Ok(h) = Header::decode(data, copy) {
            // What decodes must re-encode to the same bytes.
            assert_eq!(&h.encode(copy)[..], &data[..capsuledb::format::HEADER_LEN]);
        }
    }
});
