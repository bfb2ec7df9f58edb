//! The `raftlog` harness: the Raft log's decoders (`format-spec/raftlog.md`: log keys,
//! entry values, the hard state, the purge record) on arbitrary contents of its two
//! tables, then the log's calls on what opened.
//!
//! The input first fills `raft.log` and `raft.meta` with records shaped like the log's
//! own (8-byte big-endian keys near each other, values with a term in front, the meta
//! keys `hard_state`, `purged` and `user/...`), with lengths and bytes from the input,
//! so most inputs hold a nearly valid log and some damage. Then [`RaftLog::open`]:
//! it may refuse the contents, as [`Error::Corrupted`] only. What opened is driven by
//! the rest of the input: reads, appends, truncates, purges, hard-state and meta saves
//! and reopens. Every call may fail with `Corrupted` (stored damage) or
//! [`Error::LogOrder`] (a call out of order), nothing else; reads must agree with each
//! other (the cache, the database, one entry at a time, a batch, the terms), held
//! entries come contiguous and in index order, and a save reads back.

use super::input::Input;
use capsuledb::raftlog::{Entry, EntryId, HardState, RaftLog};
use capsuledb::storage::SimStorage;
use capsuledb::{Database, Error, Result};

/// Records written into the two tables before the log opens, at most.
const RECORDS_MAX: u8 = 24;
/// Calls made on the opened log, at most.
const CALLS_MAX: usize = 64;
/// Widest range read at once: reads on a damaged log stay small.
const RANGE_MAX: u64 = 96;

/// An error a call may give: stored damage, or a call out of order.
fn allowed<T>(call: &str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Error::Corrupted { .. } | Error::LogOrder { .. }) => None,
        Err(e) => panic!("{call} gave {e:?}"),
    }
}

/// A payload of up to 255 bytes from the input.
fn payload(input: &mut Input<'_>) -> Vec<u8> {
    short(input, 256)
}

/// Up to `max - 1` bytes from the input, their count first.
fn short(input: &mut Input<'_>, max: u16) -> Vec<u8> {
    let n = u16::from(input.u8()) % max;
    input.bytes(usize::from(n))
}

/// Writes records shaped like the log's own into its tables, in one commit.
fn fill(db: &Database, input: &mut Input<'_>) {
    let mut conn = db.connect();
    let mut tx = conn.begin().expect("a transaction on a new database");
    for t in ["raft.log", "raft.meta"] {
        tx.create_table(t).expect("a table of a new database");
    }
    let base = u64::from(input.u8() % 4);
    for _ in 0..input.u8() % RECORDS_MAX {
        let shape = input.u8();
        let (table, key, value) = match shape % 16 {
            // An entry: index near the others, a term, a payload.
            0..=9 => {
                let index = base + u64::from(input.u8() % 16);
                let mut value = u64::from(input.u8() % 4).to_le_bytes().to_vec();
                value.extend(short(input, 24));
                ("raft.log", index.to_be_bytes().to_vec(), value)
            }
            // A log record of any shape: a key not 8 bytes, a value shorter than a term.
            10 => {
                let key = short(input, 12);
                let value = short(input, 12);
                ("raft.log", key, value)
            }
            11 => ("raft.meta", b"hard_state".to_vec(), sized(input, 25)),
            12 => ("raft.meta", b"purged".to_vec(), sized(input, 16)),
            _ => {
                let name = short(input, 4);
                (
                    "raft.meta",
                    [b"user/".as_slice(), &name].concat(),
                    short(input, 8),
                )
            }
        };
        tx.put(table, &key, &value)
            .expect("a put of a small record");
    }
    tx.commit().expect("a commit on simulated storage");
}

/// Bytes of about `len` (often exactly): a record of the right length with any content,
/// or one a byte or two off.
fn sized(input: &mut Input<'_>, len: usize) -> Vec<u8> {
    let len = match input.u8() % 16 {
        0 => len.saturating_sub(1),
        1 => len + 1,
        2 => 0,
        _ => len,
    };
    let mut out = input.bytes(len);
    // Flag byte of a hard state, and small numbers: the valid shapes are common.
    if let Some(b) = out.get_mut(16) {
        *b %= 3;
    }
    out
}

/// The entries in `lo..=hi` read every way the log offers, checked against each other;
/// `None` when the range holds damage.
fn read_range(log: &RaftLog, lo: u64, hi: u64) -> Option<Vec<Entry>> {
    let cached = allowed("entries", log.entries(lo..=hi));
    let uncached = allowed("entries_uncached", log.entries_uncached(lo..=hi));
    let batch = allowed("entry_batch", log.entry_batch(lo..=hi)).map(|b| b.into_entries());
    let mut walked = Vec::new();
    let walk = allowed(
        "for_each_entry",
        log.for_each_entry(lo..=hi, |index, term, data| {
            walked.push(Entry::new(index, term, data.to_vec()));
            Ok(())
        }),
    );
    let found = cached.or(uncached.clone())?;
    for other in [uncached, batch, walk.map(|()| walked)].iter().flatten() {
        assert_eq!(&found, other, "two reads of {lo}..={hi} disagree");
    }
    for pair in found.windows(2) {
        assert_eq!(pair[0].index + 1, pair[1].index, "held entries with a gap");
    }
    for e in &found {
        assert!(
            (lo..=hi).contains(&e.index),
            "entry {} outside {lo}..={hi}",
            e.index
        );
        if let Some(one) = allowed("entry", log.entry(e.index)) {
            assert_eq!(
                one.as_ref(),
                Some(e),
                "entry({}) disagrees with a range",
                e.index
            );
        }
        if let Some(term) = allowed("term", log.term(e.index)) {
            assert_eq!(
                term,
                Some(e.term),
                "term({}) disagrees with the entry",
                e.index
            );
        }
    }
    Some(found)
}

/// The log's bounds: (first index, last entry, last purged).
fn bounds(log: &RaftLog) -> (u64, Option<EntryId>, Option<EntryId>) {
    (log.first_index(), log.last_entry_id(), log.last_purged())
}

/// The `raftlog` target: `[base, count, records..., calls...]`.
pub fn fuzz_raftlog(data: &[u8]) {
    let mut input = Input::new(data);
    let sim = SimStorage::new();
    let db = super::open_bytes::open_sim(&sim).expect("a new simulated database opens");
    fill(&db, &mut input);
    let mut log = match RaftLog::open(&db) {
        Ok(log) => log,
        // The contents may be damage; nothing else may stop the open.
        Err(Error::Corrupted { .. }) => return,
        Err(e) => panic!("open gave {e:?}"),
    };
    for _ in 0..CALLS_MAX {
        if input.is_empty() {
            break;
        }
        let first = log.first_index();
        let next = log.last_index().map_or(first, |l| l + 1);
        match input.u8() % 9 {
            0 => {
                let lo = first.saturating_sub(2) + u64::from(input.u8() % 8);
                let hi = lo.saturating_add(u64::from(input.u8()) % RANGE_MAX);
                read_range(&log, lo, hi);
            }
            1 => {
                // Mostly a valid continuation; sometimes a gap or an overlap.
                let start = match input.u8() % 4 {
                    0 => next.saturating_sub(1),
                    1 => next + 1,
                    _ => next,
                };
                let mut term = log.last_entry_id().map_or(0, |e| e.term);
                let entries: Vec<Entry> = (0..u64::from(input.u8() % 5))
                    .map(|i| {
                        term += u64::from(input.u8() % 2);
                        Entry::new(start + i, term, payload(&mut input))
                    })
                    .collect();
                let before = bounds(&log);
                if allowed("append", log.append(&entries)).is_some() {
                    if let Some(last) = entries.last() {
                        assert_eq!(log.last_entry_id(), Some(last.id()), "append's last");
                        let got = read_range(&log, entries[0].index, last.index);
                        if let Some(got) = got {
                            assert_eq!(got, entries, "appended entries read back");
                        }
                    }
                } else {
                    assert_eq!(bounds(&log), before, "a refused append changed the bounds");
                }
            }
            2 => {
                let from = first.saturating_sub(1) + u64::from(input.u8() % 12);
                let last = log.last_index();
                if allowed("truncate", log.truncate(from)).is_some() {
                    assert!(log.last_index().is_none_or(|l| l < from), "truncated");
                    // Exactly the entries from `from` on go: the one before it stays.
                    if last.is_some_and(|l| from <= l) && from > first {
                        assert_eq!(log.last_index(), Some(from - 1), "truncated past `from`");
                    } else if last.is_some_and(|l| from > l) {
                        assert_eq!(log.last_index(), last, "a truncate past the end");
                    }
                }
            }
            3 => {
                let upto = first.saturating_sub(1) + u64::from(input.u8() % 12);
                let last = log.last_index();
                if allowed("purge", log.purge(upto)).is_some() {
                    assert!(log.first_index() > upto, "purged");
                    // Exactly the entries up to `upto` go: the one after it stays.
                    if last.is_some_and(|l| upto < l) {
                        assert_eq!(
                            log.first_index(),
                            (upto + 1).max(first),
                            "purged past `upto`"
                        );
                    }
                }
            }
            4 => {
                let index = first + u64::from(input.u8() % 16);
                let term = u64::from(input.u8() % 6);
                if allowed("purge_to", log.purge_to(EntryId { index, term })).is_some() {
                    assert!(log.first_index() > index, "purged to");
                }
            }
            5 => {
                let hard = HardState {
                    term: u64::from(input.u8()),
                    vote: input.u8().is_multiple_of(2).then(|| u64::from(input.u8())),
                    commit: u64::from(input.u8()),
                };
                if allowed("save_hard_state", log.save_hard_state(&hard)).is_some() {
                    assert_eq!(log.hard_state(), hard, "a saved hard state reads back");
                }
            }
            6 => {
                let value = payload(&mut input);
                if allowed("save_meta", log.save_meta("m", &value)).is_some() {
                    let read = allowed("meta", log.meta("m"));
                    assert_eq!(read, Some(Some(value)), "saved meta reads back");
                }
            }
            7 => {
                let index = first.saturating_sub(1) + u64::from(input.u8() % 16);
                let _ = allowed("entry", log.entry(index));
                let _ = allowed("term", log.term(index));
            }
            _ => {
                // Reopened from the database alone: the same bounds and hard state.
                let (before, hard) = (bounds(&log), log.hard_state());
                drop(log);
                // Refused only for stored damage the calls since uncovered (a record
                // of the wrong shape now first or last).
                let Some(again) = allowed("reopen", RaftLog::open(&db)) else {
                    return;
                };
                log = again;
                assert_eq!(bounds(&log), before, "bounds after a reopen");
                assert_eq!(log.hard_state(), hard, "hard state after a reopen");
            }
        }
    }
}
