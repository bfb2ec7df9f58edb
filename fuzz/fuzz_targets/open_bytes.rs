#![no_main]
//! Opening arbitrary file bytes must give a database or a typed error, never a panic.
use capsuledb::storage::SimStorage;
use capsuledb::Options;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let storage = SimStorage::from_bytes(data.to_vec());
    if let Ok(db) = Options::new().random_seed(1).open_storage(Arc::new(storage)) {
        let _ = db.info();
    }
});
