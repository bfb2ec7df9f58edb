//! The `history` harness: the records a database keeps for time travel, damaged with a
//! valid checksum. One tree page of [`history_database`] (input flag bit 0: one of its
//! history leaves, which hold the version lists, the floor and the kept drops; else any
//! tree, run or free-list page) is overwritten as `decode`'s in-database modes do, then
//! the file is opened keeping history, read at every state of its window (gets, scans
//! both ways, `versions`), checked, salvaged, committed to and checkpointed (which
//! reads every kept version list and writes them again), and reopened; then it goes
//! through the `open_bytes` exercise with the default retention. Errors are fine; a
//! panic, a scan out of key order or disagreeing with `get` at the same state, or a
//! commit that does not read back is not.

use super::decode::SEALED_KINDS;
use super::decode_in_db::{SAMPLE_PAGE_SIZE, pages_of_kind, replace_page};
use super::open_bytes::exercise_bytes;
use super::sample::{HISTORY_SAMPLE_COMMITS, history_database};
use capsuledb::format::PageKind;
use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, HistoryRetention, Options, Transaction};
use std::sync::{Arc, OnceLock};

/// Keys of table `h` in the sample (read by `get` and `versions` at every state).
const KEYS: u32 = 62;
/// Entries one scan reads, at most.
const SCAN_MAX: usize = 10_000;

fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(history_database)
}

/// The history leaves of `file`: leaves whose keys all begin with the history prefix
/// `FF×8` (the byte after the page header starts a compact or uniform leaf's prefix).
fn history_leaves(file: &[u8]) -> Vec<(u64, PageKind)> {
    let ps = SAMPLE_PAGE_SIZE;
    pages_of_kind(file, ps, &[PageKind::CompactLeaf, PageKind::UniformLeaf])
        .into_iter()
        .filter(|&(p, _)| {
            let at = p as usize * ps + 24;
            file.get(at..at + 8) == Some(&[0xFF; 8][..])
        })
        .collect()
}

/// `[page index, flags, offset / 16, bytes...]`, as `decode`'s mode 7 reads it; flag bit
/// 0 picks among the history leaves (and then no kind byte is rewritten).
pub fn fuzz_history(data: &[u8]) {
    let mut file = base().to_vec();
    let history = data.get(1).is_some_and(|f| f & 1 == 1);
    let pages = if history {
        history_leaves(&file)
    } else {
        pages_of_kind(&file, SAMPLE_PAGE_SIZE, &SEALED_KINDS)
    };
    let mut input = data.to_vec();
    if history && let Some(f) = input.get_mut(1) {
        // Bit 0 of the flags is `replace_page`'s kind rewrite: not for these.
        *f &= !1;
    }
    if !replace_page(&mut file, &pages, &SEALED_KINDS, &input) {
        return;
    }
    exercise_history(file.clone());
    exercise_bytes(file);
}

fn options() -> Options {
    Options::new()
        .random_seed(1)
        .history_retention(HistoryRetention::Commits(HISTORY_SAMPLE_COMMITS))
}

fn exercise_history(file: Vec<u8>) {
    if let Ok(db) = options()
        .read_only(true)
        .open_storage(Arc::new(SimStorage::from_bytes(file.clone())))
    {
        read_window(&db);
        let _ = db.check_integrity();
        if let Ok(tx) = db.connect().begin_read() {
            let _ = tx.salvage_table("h", |_, _| Ok(()));
        }
    }
    let sim = SimStorage::from_bytes(file);
    let Ok(db) = options().open_storage(Arc::new(sim.clone())) else {
        return;
    };
    read_window(&db);
    // A commit over whatever the file held reads back, at its own state too.
    let mut conn = db.connect();
    let committed = conn.begin().ok().and_then(|mut tx| {
        tx.put("h", b"fuzz", b"fuzz-value").ok()?;
        tx.commit_with(Durability::Durable).ok()
    });
    if let Some(info) = committed {
        for tx in [conn.begin_read(), db.begin_read_at(info.seq)] {
            if let Ok(v) = tx.and_then(|tx| tx.get("h", b"fuzz")) {
                assert_eq!(
                    v.as_deref(),
                    Some(&b"fuzz-value"[..]),
                    "a commit did not read back"
                );
            }
        }
    }
    drop(conn);
    let _ = db.checkpoint();
    read_window(&db);
    let _ = db.check_integrity();
    let _ = db.drop_history_before(db.history_window().1);
    let _ = db.checkpoint();
    if db.close().is_ok()
        && let Ok(db) = options().open_storage(Arc::new(sim))
    {
        read_window(&db);
    }
}

/// Reads table `h` at states across the history window: every key by `get` and
/// `versions` at a few, whole scans both ways at each.
fn read_window(db: &Database) {
    let (floor, tip) = db.history_window();
    let step = ((tip.saturating_sub(floor)) / 8).max(1);
    let mut seq = floor;
    while seq <= tip {
        if let Ok(tx) = db.begin_read_at(seq) {
            read_state(&tx);
        }
        seq = match seq.checked_add(step) {
            Some(s) => s,
            None => break,
        };
    }
}

fn read_state(tx: &Transaction<'_>) {
    // What `get` gave, to be compared with the scans, which read the same records at
    // the same state: where both answer they agree (a list read at the wrong element by
    // one path, or the tree's current value served below its checkpoint by one of them,
    // differs).
    let mut got = std::collections::BTreeMap::new();
    for i in 0..KEYS {
        let key = i.to_be_bytes();
        let value = tx.get("h", &key).ok();
        if let Some(v) = &value {
            got.insert(key.to_vec(), v.clone());
        }
        // `versions` reads the key's version list, whose newest element a crafted
        // page (its checksum right) can make differ from the ordinary entry `get`
        // reads at the newest states: called, not compared.
        if i % 7 == 0 {
            let _ = tx.versions("h", &key);
        }
    }
    for reverse in [false, true] {
        let Ok(range) = tx.iter("h") else {
            return;
        };
        let mut last: Option<Vec<u8>> = None;
        let mut seen = std::collections::BTreeMap::new();
        let mut whole = true;
        let mut check = |k: &[u8], v: &[u8]| {
            if let Some(l) = &last {
                assert!(
                    if reverse {
                        k < l.as_slice()
                    } else {
                        k > l.as_slice()
                    },
                    "a time-travel scan out of key order"
                );
            }
            last = Some(k.to_vec());
            seen.insert(k.to_vec(), v.to_vec());
        };
        let items: Box<dyn Iterator<Item = _>> = if reverse {
            Box::new(range.rev().take(SCAN_MAX))
        } else {
            Box::new(range.take(SCAN_MAX))
        };
        for item in items {
            match item {
                Ok((k, v)) => check(&k, &v),
                Err(_) => {
                    whole = false;
                    break;
                }
            }
        }
        // A scan that read the whole table agrees with every `get` that answered.
        if whole && seen.len() < SCAN_MAX {
            for (key, value) in &got {
                assert_eq!(
                    seen.get(key),
                    value.as_ref(),
                    "a time-travel scan and get disagree on {key:?}"
                );
            }
        }
    }
}
