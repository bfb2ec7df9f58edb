//! Damage to the history leaves (the version lists time travel reads, through each
//! tree's in-memory history directory or its filter): bit flips end in the right past
//! state or a typed error, never another state and never a panic; edits with the
//! page's checksum made right again (a hostile file) end in some answer or an error,
//! never a panic.

use capsuledb::format::{PageKind, seal_page};
use capsuledb::rng::Rng;
use capsuledb::storage::SimStorage;
use capsuledb::{Database, Error, HistoryRetention, Options};
use std::collections::BTreeMap;
use std::sync::Arc;

const PAGE: usize = 4096;
const KEYS: u32 = 120;
const COMMITS: u64 = 24;

/// Every committed state of table `t`, by sequence.
type States = BTreeMap<u64, BTreeMap<Vec<u8>, Vec<u8>>>;

fn open(bytes: Vec<u8>, directory_keys: usize) -> capsuledb::Result<Database> {
    Options::new()
        .random_seed(1)
        .history_retention(HistoryRetention::Commits(1_000))
        .history_directory_keys(directory_keys)
        .open_storage(Arc::new(SimStorage::from_bytes(bytes)))
}

/// A database whose history lives only in the tree: a load, then [`COMMITS`] commits
/// updating or deleting a third of the keys each (a few values long enough that their
/// version lists go to overflow extents), with checkpoints between; and every state.
fn build() -> (Vec<u8>, States) {
    let sim = SimStorage::new();
    let db = Options::new()
        .random_seed(1)
        .history_retention(HistoryRetention::Commits(1_000))
        .open_storage(Arc::new(sim.clone()))
        .unwrap();
    let mut rng = Rng::new(7);
    let mut states = States::new();
    let mut now = BTreeMap::new();
    let mut c = db.connect();
    for round in 0..=COMMITS {
        let mut tx = c.begin().unwrap();
        if round == 0 {
            tx.create_table("t").unwrap();
        }
        for i in 0..KEYS {
            if round > 0 && rng.below(3) != 0 {
                continue;
            }
            let key = i.to_be_bytes().to_vec();
            if round > 0 && rng.below(6) == 0 {
                tx.delete("t", &key).unwrap();
                now.remove(&key);
                continue;
            }
            let len = if i % 40 == 0 {
                700
            } else {
                10 + rng.below(50) as usize
            };
            let v: Vec<u8> = (0..len).map(|j| (round as usize * 31 + j) as u8).collect();
            tx.put("t", &key, &v).unwrap();
            now.insert(key, v);
        }
        let seq = tx.commit().unwrap().seq;
        states.insert(seq, now.clone());
        if round % 6 == 5 {
            db.checkpoint().unwrap();
        }
    }
    db.checkpoint().unwrap();
    assert_eq!(db.stats().versions, 0, "everything is in the tree");
    assert!(
        db.stats().history_directory,
        "the tree has a history directory"
    );
    drop(c);
    db.close().unwrap();
    sim.crash_losing_unsynced();
    (sim.live_bytes(), states)
}

/// The history leaves of `bytes` (compact or uniform leaves whose prefix is the history
/// keys' `FF×8`): first page and byte length.
fn history_leaves(bytes: &[u8]) -> Vec<(usize, usize, PageKind)> {
    let mut out = Vec::new();
    for p in (2..bytes.len() / PAGE).map(|p| p * PAGE) {
        let kind = match bytes[p + 4] {
            8 => PageKind::CompactLeaf,
            9 => PageKind::UniformLeaf,
            _ => continue,
        };
        if bytes[p + 24..p + 32] == [0xFF; 8] {
            let pages = usize::from(bytes[p + 19]).max(1);
            out.push((p, pages * PAGE, kind));
        }
    }
    out
}

/// Reads table `t` at every fifth state (and the first and last) through `get` and a
/// scan, and checks what comes back.
fn read_past(db: &Database, states: &States) -> capsuledb::Result<()> {
    let seqs: Vec<u64> = states.keys().copied().collect();
    for (n, (&seq, state)) in states.iter().enumerate() {
        if n % 5 != 0 && Some(&seq) != seqs.last() {
            continue;
        }
        let tx = db.begin_read_at(seq)?;
        for i in 0..KEYS + 2 {
            let key = i.to_be_bytes();
            let got = tx.get("t", &key)?;
            assert_eq!(
                got.as_ref(),
                state.get(&key[..]),
                "key {i} at seq {seq}: a past read returned another state"
            );
        }
        let mut scanned = BTreeMap::new();
        for item in tx.iter("t")? {
            let (k, v) = item?;
            scanned.insert(k, v.to_vec());
        }
        assert_eq!(
            &scanned, state,
            "a past scan at seq {seq} returned another state"
        );
    }
    Ok(())
}

fn typed(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupted { .. }
            | Error::NotADatabase { .. }
            | Error::Truncated { .. }
            | Error::UnsupportedVersion { .. }
    )
}

#[test]
fn flipped_bits_in_history_leaves_read_right_or_fail_typed() {
    let (bytes, states) = build();
    let leaves = history_leaves(&bytes);
    assert!(!leaves.is_empty(), "the database has history leaves");
    // The undamaged file reads every state right, with a directory and with a filter.
    for directory_keys in [usize::MAX, 0] {
        read_past(&open(bytes.clone(), directory_keys).unwrap(), &states).unwrap();
    }
    // A leaf the current tree reaches refuses every flip (its checksum); a page left
    // from an older tree (free, not yet reused) reads right whatever it holds.
    let (mut reached, mut stale) = (0u32, 0u32);
    for &(start, len, _) in &leaves {
        let (mut right, mut refused) = (0u32, 0u32);
        // Every 61st bit of the leaf: its header, offsets, keys and version lists.
        for bit in (0..len * 8).step_by(61) {
            let mut copy = bytes.clone();
            copy[start + bit / 8] ^= 1 << (bit % 8);
            let directory_keys = if bit % 2 == 0 { usize::MAX } else { 0 };
            let outcome = open(copy, directory_keys).and_then(|db| read_past(&db, &states));
            match outcome {
                Ok(()) => right += 1,
                Err(e) if typed(&e) => refused += 1,
                Err(e) => panic!("page at {start}, bit {bit}: untyped error {e}"),
            }
        }
        assert!(
            right == 0 || refused == 0,
            "the history leaf at {start} refused {refused} flips and read right after {right}"
        );
        if refused > 0 {
            reached += 1;
        } else {
            stale += 1;
        }
    }
    assert!(reached > 0, "no flip was noticed");
    eprintln!("history leaves: {reached} in the tree (every flip refused), {stale} left over");
}

#[test]
fn hostile_edits_of_history_leaves_never_panic() {
    let (bytes, states) = build();
    let mut rng = Rng::new(11);
    let (mut answered, mut named_list_damage) = (0u32, 0u32);
    for &(start, len, kind) in &history_leaves(&bytes) {
        for _ in 0..40 {
            let mut copy = bytes.clone();
            // One to three bytes of the leaf past its page header changed, and the
            // checksum made right again: only the leaf's own checks stand in the way.
            for _ in 0..=rng.below(2) {
                let at = start + 16 + rng.below((len - 16) as u64) as usize;
                copy[at] ^= 1 + rng.below(255) as u8;
            }
            seal_page(&mut copy[start..start + len], kind, (start / PAGE) as u64).unwrap();
            let Ok(db) = open(copy, if rng.below(2) == 0 { usize::MAX } else { 0 }) else {
                continue;
            };
            let _ = db.check_integrity();
            for (&seq, _) in states.iter().step_by(4) {
                let Ok(tx) = db.begin_read_at(seq) else {
                    continue;
                };
                for i in 0..KEYS {
                    match tx.get("t", &i.to_be_bytes()) {
                        Ok(_) => answered += 1,
                        Err(e) => named_list_damage += names_its_page(&e),
                    }
                }
                if let Ok(it) = tx.iter("t") {
                    for item in it.take(10_000) {
                        if let Err(e) = item {
                            named_list_damage += names_its_page(&e);
                            break;
                        }
                    }
                }
            }
        }
    }
    assert!(answered > 0, "no past read answered at all");
    assert!(
        named_list_damage > 0,
        "no edit reached a version list's own checks"
    );
}

/// Checks that a damaged version list's error names the page its bytes lie on (a data
/// page, never page 0: the decoder alone cannot know it); 1 for such an error.
fn names_its_page(e: &Error) -> u32 {
    match e {
        Error::Corrupted { page, what } if what.starts_with("history entry") => {
            assert!(*page >= 2, "a damaged version list named page {page}: {e}");
            1
        }
        _ => 0,
    }
}

/// A version list whose oldest element is above the floor (a hostile edit, checksum made
/// right) leaves a read at the floor nothing to take: `check` names it, where it passed
/// it before.
#[test]
fn check_names_a_version_list_whose_oldest_element_is_above_the_floor() {
    let (bytes, _) = build();
    let floor = open(bytes.clone(), usize::MAX).unwrap().history_window().0;
    // An indexed list (tag 0, a count, index entries newest first, the first record
    // right after the index) of three or more elements whose oldest is at or below the
    // floor, with room to move its two oldest above the floor, still newest first.
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let mut found = None;
    'leaves: for &(start, len, kind) in &history_leaves(&bytes) {
        for at in start + 24..start + len - 32 {
            let count = u32_at(&bytes, at + 4) as usize;
            if u32_at(&bytes, at) != 0 || !(3..=40).contains(&count) {
                continue;
            }
            if at + 8 + 12 * count > start + len
                || u32_at(&bytes, at + 16) as usize != 8 + 12 * count
            {
                continue;
            }
            let seqs: Vec<u64> = (0..count)
                .map(|i| u64_at(&bytes, at + 8 + 12 * i))
                .collect();
            let second = seqs[count - 2].max(floor + 2);
            if seqs.windows(2).all(|w| w[0] > w[1])
                && seqs[count - 1] <= floor
                && seqs[count - 3] > second
            {
                found = Some((start, len, kind, at + 8 + 12 * (count - 2), second));
                break 'leaves;
            }
        }
    }
    let (start, len, kind, seq_at, second) = found.expect("an indexed list to move");
    assert!(
        open(bytes.clone(), usize::MAX)
            .unwrap()
            .check_integrity()
            .unwrap()
            .is_ok()
    );
    let mut copy = bytes.clone();
    copy[seq_at..seq_at + 8].copy_from_slice(&second.to_le_bytes());
    copy[seq_at + 12..seq_at + 20].copy_from_slice(&(floor + 1).to_le_bytes());
    seal_page(&mut copy[start..start + len], kind, (start / PAGE) as u64).unwrap();
    let report = open(copy, usize::MAX).unwrap().check_integrity().unwrap();
    let named = format!("above the floor {floor}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&named) && p.contains(&format!("page {}", start / PAGE))),
        "{:?}",
        report.problems
    );
}

/// A version list whose newest element is not the key's ordinary entry (a hostile edit
/// of its value, checksum made right): `versions` read it while `get` read the entry at
/// the newest states, and `check` said nothing. It names the list's page now.
#[test]
fn check_names_a_version_list_whose_newest_element_is_not_the_keys_entry() {
    let (bytes, _) = build();
    let db = open(bytes.clone(), usize::MAX).unwrap();
    assert!(db.check_integrity().unwrap().is_ok());
    // A key with a history whose newest version is a value: that value's record (its
    // flag, `1`, then its bytes) in a history leaf.
    let mut c = db.connect();
    let tx = c.begin_read().unwrap();
    let leaves = history_leaves(&bytes);
    let found = (0..KEYS).find_map(|i| {
        let versions = tx.versions("t", &i.to_be_bytes()).unwrap();
        let newest = versions
            .first()
            .filter(|_| versions.len() >= 2)?
            .1
            .clone()?;
        let record = [&[1u8][..], &newest].concat();
        leaves.iter().find_map(|&(start, len, kind)| {
            let at = bytes[start..start + len]
                .windows(record.len())
                .position(|w| w == record.as_slice())?;
            Some((start, len, kind, start + at + 1))
        })
    });
    drop(tx);
    drop(c);
    drop(db);
    let (start, len, kind, value_at) = found.expect("a newest value in a history leaf");
    let mut copy = bytes.clone();
    copy[value_at] ^= 0x20;
    seal_page(&mut copy[start..start + len], kind, (start / PAGE) as u64).unwrap();
    let report = open(copy, usize::MAX).unwrap().check_integrity().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("newest version") && p.contains(&format!("page {}", start / PAGE))),
        "{:?}",
        report.problems
    );
}

/// Under the floor's and kept drops' prefix (`FF×8 ‖ FF×8`) no other key may lie: a
/// checkpoint reads one as a history entry and fails at every try, so the log and the
/// store grow without a fold. `check` said the file was sound.
#[test]
fn check_names_a_key_beside_the_floor_under_its_prefix() {
    let (bytes, _) = build();
    let floor = [&[0xFFu8; 16][..], b"floor"].concat();
    let (start, len, kind, at) = history_leaves(&bytes)
        .into_iter()
        .find_map(|(start, len, kind)| {
            let page = &bytes[start..start + len];
            // The key whole, or its last bytes after a prefix the leaf keeps once.
            let at = page
                .windows(floor.len())
                .position(|w| w == floor.as_slice())
                .map(|i| i + floor.len() - 1)
                .or_else(|| page.windows(5).position(|w| w == b"floor").map(|i| i + 4))?;
            Some((start, len, kind, start + at))
        })
        .expect("the floor's key in a history leaf");
    let mut copy = bytes.clone();
    // "floor" becomes "floos": still after "drops", no longer the floor.
    copy[at] = b's';
    seal_page(&mut copy[start..start + len], kind, (start / PAGE) as u64).unwrap();
    let db = open(copy, usize::MAX).unwrap();
    let report = db.check_integrity().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("neither the history floor nor the kept drops")),
        "{:?}",
        report.problems
    );
    // A checkpoint refuses it by name (read as an entry, a key there would come after
    // the floor's and kept drops' records the changes end with).
    db.connect()
        .run(|tx| tx.put("t", &0u32.to_be_bytes(), b"new"))
        .unwrap();
    let e = db.checkpoint().unwrap_err();
    assert!(
        e.to_string()
            .contains("neither the history floor nor the kept drops"),
        "{e}"
    );
}
