//! Sample databases written by the engine: the base the in-database `decode` modes
//! damage, and the seeds `examples/gen_corpus.rs` writes.

use capsuledb::format::Header;
use capsuledb::storage::SimStorage;
use capsuledb::{Durability, Options};
use std::sync::Arc;

/// A small database with four tables, values inline and in overflow extents.
/// `checkpointed`: folded into the tree twice (so a free list exists); `tail`: more
/// commits after the last checkpoint, left in the log. Closed cleanly.
pub fn sample_database(page_size: u32, checkpointed: bool, tail: bool) -> Vec<u8> {
    let sim = SimStorage::new();
    let db = Options::new()
        .page_size(page_size)
        .random_seed(7)
        .open_storage(Arc::new(sim.clone()))
        .expect("create the sample database");
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("begin");
    tx.create_table("a").expect("create a");
    tx.create_table("b").expect("create b");
    for i in 0..120u32 {
        let len = if i % 40 == 7 {
            3000
        } else {
            8 + (i as usize % 30)
        };
        let v: Vec<u8> = (0..len).map(|j| (i as usize * 7 + j) as u8).collect();
        tx.put("a", format!("key{i:04}").as_bytes(), &v)
            .expect("put");
    }
    for i in 0..10u32 {
        tx.put("b", &i.to_be_bytes(), b"b-value").expect("put");
    }
    // Values of about a quarter page: once checkpointed, leaves of several pages.
    tx.create_table("d").expect("create d");
    for i in 0..12u32 {
        let v = vec![i as u8; page_size as usize / 4 - 4];
        tx.put("d", &i.to_be_bytes(), &v).expect("put");
    }
    tx.commit().expect("commit");
    if checkpointed {
        db.checkpoint().expect("checkpoint");
        let mut tx = conn.begin().expect("begin");
        for i in (0..120u32).step_by(3) {
            tx.delete("a", format!("key{i:04}").as_bytes())
                .expect("delete");
        }
        tx.put("a", b"key0007", b"now short").expect("put");
        tx.commit().expect("commit");
        db.checkpoint().expect("checkpoint");
    }
    if tail {
        let mut tx = conn.begin().expect("begin");
        tx.put("b", b"tail", &[9u8; 2000]).expect("put");
        tx.delete("a", b"key0001").expect("delete");
        tx.commit_with(Durability::Written).expect("commit");
        let mut tx = conn.begin().expect("begin");
        tx.create_table("c").expect("create c");
        tx.put("c", b"", b"empty key").expect("put");
        tx.drop_table("b").expect("drop b");
        tx.commit().expect("commit");
    }
    drop(conn);
    db.close().expect("close");
    sim.crash_losing_unsynced();
    trim_database(sim.live_bytes())
}

/// Cuts the zero pages at the end of a database file that its header does not count
/// (the engine grows files in large steps), so samples and seeds stay small.
pub fn trim_database(mut file: Vec<u8>) -> Vec<u8> {
    let Ok(header) = Header::decode(&file, 0) else {
        return file;
    };
    let ps = header.page_size as usize;
    let counted = usize::try_from(header.page_count)
        .unwrap_or(usize::MAX)
        .saturating_mul(ps);
    let used = file
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| (i / ps + 1) * ps);
    file.truncate(counted.max(used));
    file
}
