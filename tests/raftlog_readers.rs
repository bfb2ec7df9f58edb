//! `capsuledb::raftlog` read by threads while another changes the log: what a reader
//! is served agrees with the bounds it has seen.

mod raftlog_support;

use capsuledb::raftlog::{Entry, RaftLog};
use capsuledb::storage::SimStorage;
use raftlog_support::open_sim;

/// Once a reader sees a truncate's new bounds, no removed entry is served to it: a
/// truncate that dropped the entries from the cache only after setting the bounds let
/// a reader in between get an entry past `last_index` from the cache (nothing is
/// appended, so an index past the last can never be held again). The `entry` read is
/// the one that meets the cache; the range read is clamped to the bounds first.
#[test]
fn a_reader_that_saw_a_truncate_is_never_served_a_removed_entry() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    let log = RaftLog::open(&db).unwrap();
    let n = 1_500u64;
    let es: Vec<Entry> = (1..=n).map(|i| Entry::new(i, 1, vec![1; 8])).collect();
    log.append(&es).unwrap();
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let reads = std::sync::Arc::new(AtomicU64::new(0));
    let started = std::sync::Arc::new(std::sync::Barrier::new(3));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, done, reads, started) =
                (log.clone(), done.clone(), reads.clone(), started.clone());
            std::thread::spawn(move || {
                started.wait();
                loop {
                    let last = log.last_index().unwrap_or(0);
                    let past = log.entry(last + 1).unwrap();
                    assert!(
                        past.is_none(),
                        "entry {} served after last_index {last}",
                        last + 1
                    );
                    assert!(log.entries(last + 1..=last + 1).unwrap().is_empty());
                    reads.fetch_add(1, Ordering::Relaxed);
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                }
            })
        })
        .collect();
    started.wait();
    // The truncates wait every 50 steps until the readers have read again, so reads
    // interleave with them however the threads are scheduled (a CI machine of two
    // cores once ran every truncate before a reader's first read). A reader that
    // panicked ends the wait; its join below reports the panic.
    let mut seen = 0;
    for from in (2..=n).rev() {
        log.truncate(from).unwrap();
        if from % 50 == 0 {
            while reads.load(Ordering::Relaxed) == seen && !readers.iter().any(|r| r.is_finished())
            {
                std::thread::yield_now();
            }
            seen = reads.load(Ordering::Relaxed);
        }
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(log.last_index(), Some(1));
}
