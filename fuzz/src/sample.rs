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

/// Retention of the history sample (and of the opens that read it): every state kept.
pub const HISTORY_SAMPLE_COMMITS: u64 = 1_000;

/// A small database that keeps its history (`HistoryRetention::Commits`): 60 keys of
/// table `h` updated and deleted over 16 commits with checkpoints between, so its tree
/// holds version lists (a few in overflow extents), the persisted floor and the kept
/// drops (table `gone` dropped inside the window), and a history directory is built
/// from it at open; the last commits left in the log. Closed cleanly.
pub fn history_database() -> Vec<u8> {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(5)
        .history_retention(capsuledb::HistoryRetention::Commits(HISTORY_SAMPLE_COMMITS))
        .open_storage(Arc::new(sim.clone()))
        .expect("create the history sample");
    let mut conn = db.connect();
    for round in 0..16u32 {
        let mut tx = conn.begin().expect("begin");
        if round == 0 {
            tx.create_table("h").expect("create h");
            tx.create_table("gone").expect("create gone");
            tx.put("gone", b"g", b"dropped later").expect("put");
        }
        if round == 5 {
            tx.drop_table("gone").expect("drop gone");
        }
        for i in 0..60u32 {
            if round > 0 && (i * 7 + round) % 3 != 0 {
                continue;
            }
            let key = i.to_be_bytes();
            if round > 0 && (i + round) % 5 == 0 {
                tx.delete("h", &key).expect("delete");
                continue;
            }
            let len = if i % 20 == 3 {
                900
            } else {
                6 + (i + round) as usize % 20
            };
            let v: Vec<u8> = (0..len).map(|j| (round as usize * 13 + j) as u8).collect();
            tx.put("h", &key, &v).expect("put");
        }
        tx.commit().expect("commit");
        if round % 4 == 3 {
            db.checkpoint().expect("checkpoint");
        }
    }
    drop(conn);
    db.close().expect("close");
    sim.crash_losing_unsynced();
    trim_database(sim.live_bytes())
}
