//! `capsuledb::raftlog`: how a log's bounds move: purges past the end and below a late
//! start, purges and truncates across a gap, one handle per log, named logs side by
//! side.

mod raftlog_support;

use capsuledb::raftlog::{Entry, EntryId, RaftLog};
use capsuledb::storage::SimStorage;
use capsuledb::{Database, Error};
use raftlog_support::open_sim;

#[test]
fn purge_past_the_end_remembers_the_snapshot_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    {
        let db = Database::open(&path).unwrap();
        let log = RaftLog::open(&db).unwrap();
        log.append(&[Entry::new(1, 1, vec![1]), Entry::new(2, 1, vec![2])])
            .unwrap();
        assert!(matches!(log.purge(5), Err(Error::LogOrder { .. })));
        log.purge_to(EntryId { index: 20, term: 3 }).unwrap();
        db.close().unwrap();
    }
    let db = Database::open(&path).unwrap();
    let log = RaftLog::open(&db).unwrap();
    assert_eq!(log.first_index(), 21);
    assert_eq!(log.last_entry_id(), Some(EntryId { index: 20, term: 3 }));
    assert!(log.entries(..).unwrap().is_empty());
    assert!(matches!(
        log.append(&[Entry::new(22, 3, vec![])]),
        Err(Error::LogOrder { .. })
    ));
    log.append(&[Entry::new(21, 3, vec![])]).unwrap();
}

/// A snapshot of a committed prefix may end in a term below the log's last entry (a
/// deposed leader's uncommitted entries here, an older-term entry the current leader
/// committed past them): `purge_to` past the end takes it and drops the whole log.
/// It answered `LogOrder`, which openraft takes as fatal, and the node stopped.
#[test]
fn purge_past_the_end_takes_a_term_below_the_last_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    {
        let db = Database::open(&path).unwrap();
        let log = RaftLog::open(&db).unwrap();
        log.append(&[Entry::new(1, 5, vec![1]), Entry::new(2, 5, vec![2])])
            .unwrap();
        log.purge_to(EntryId { index: 9, term: 4 }).unwrap();
        assert!(log.entries(..).unwrap().is_empty());
        log.append(&[Entry::new(10, 6, vec![10])]).unwrap();
        db.close().unwrap();
    }
    let db = Database::open(&path).unwrap();
    let log = RaftLog::open(&db).unwrap();
    assert_eq!(log.last_purged(), Some(EntryId { index: 9, term: 4 }));
    assert_eq!(log.first_index(), 10);
    assert_eq!(log.last_entry_id(), Some(EntryId { index: 10, term: 6 }));
    // Purged entries were committed: a later committed index has no lower term.
    assert!(matches!(
        log.purge_to(EntryId { index: 30, term: 3 }),
        Err(Error::LogOrder { .. })
    ));
}

/// Two opens of one log in one process share one handle: with a handle each, the second
/// still believed the log empty and took an append at any index (a hole after the
/// first's entries, which a reopen did not notice and reads then came back short).
#[test]
fn a_log_opened_twice_is_one_log() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    let a = RaftLog::open(&db).unwrap();
    let b = RaftLog::open(&db).unwrap();
    a.append(&[Entry::new(1, 1, vec![1]), Entry::new(2, 1, vec![2])])
        .unwrap();
    assert_eq!(b.last_index(), Some(2));
    assert!(matches!(
        b.append(&[Entry::new(50, 1, vec![50])]),
        Err(Error::LogOrder { .. })
    ));
    b.append(&[Entry::new(3, 1, vec![3])]).unwrap();
    assert_eq!(a.entries(..).unwrap().len(), 3);
    // Another name is another log.
    let c = RaftLog::open_named(&db, "other").unwrap();
    assert_eq!(c.last_index(), None);
}

/// A log whose tables hold two entries 2^62 indexes apart (a damaged or hostile file: an
/// append never leaves a gap): a purge or a truncate deletes the entries that are there,
/// in one commit, instead of visiting every index between them.
#[test]
fn a_purge_or_truncate_across_a_gap_deletes_only_what_is_there() {
    let far = 1u64 << 62;
    let entry = |term: u64| {
        let mut v = term.to_le_bytes().to_vec();
        v.push(7);
        v
    };
    for purge in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("gap.db")).unwrap();
        {
            let log = RaftLog::open(&db).unwrap();
            drop(log);
            let mut c = db.connect();
            let mut tx = c.begin().unwrap();
            tx.put("raft.log", &1u64.to_be_bytes(), &entry(1)).unwrap();
            tx.put("raft.log", &far.to_be_bytes(), &entry(2)).unwrap();
            tx.commit().unwrap();
        }
        let log = RaftLog::open(&db).unwrap();
        assert_eq!(log.first_index(), 1);
        assert_eq!(
            log.last_entry_id(),
            Some(EntryId {
                index: far,
                term: 2
            })
        );
        if purge {
            log.purge(far).unwrap();
            assert_eq!(log.first_index(), far + 1);
        } else {
            log.truncate(2).unwrap();
            assert_eq!(log.last_entry_id(), Some(EntryId { index: 1, term: 1 }));
        }
        let mut c = db.connect();
        let tx = c.begin_read().unwrap();
        assert_eq!(tx.len("raft.log").unwrap(), u64::from(!purge));
    }
}

/// A log that starts past index 1 without a purge (a node that appends from its
/// snapshot's index on): `purge_to` below its first entry removes nothing and records
/// nothing, except the index right before it. Before, it recorded a purged index that left a gap before the first entry:
/// the bounds counted entries that do not exist, a truncate in the gap failed, and the
/// log could not be opened again.
#[test]
fn purge_to_below_the_first_entry_of_a_log_that_starts_late() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    let log = RaftLog::open(&db).unwrap();
    log.append(&[
        Entry::new(5, 1, b"a".to_vec()),
        Entry::new(6, 1, b"b".to_vec()),
        Entry::new(7, 1, b"c".to_vec()),
    ])
    .unwrap();
    log.purge_to(EntryId { index: 2, term: 1 }).unwrap();
    assert_eq!(log.first_index(), 5);
    assert_eq!(log.len(), 3);
    log.purge_to(EntryId { index: 4, term: 1 }).unwrap();
    assert_eq!(log.first_index(), 5);
    assert_eq!(log.len(), 3);
    drop(log);
    let log = RaftLog::open(&db).expect("the log opens again");
    assert_eq!(log.first_index(), 5);
    assert_eq!(log.last_index(), Some(7));
    log.truncate(6).unwrap();
    assert_eq!(log.last_index(), Some(5));
}

#[test]
fn named_logs_are_independent_and_meta_round_trips() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    let a = RaftLog::open_named(&db, "a").unwrap();
    let b = RaftLog::open_named(&db, "b").unwrap();
    a.append(&[Entry::new(1, 1, b"a".to_vec())]).unwrap();
    b.append(&[Entry::new(7, 2, b"b".to_vec())]).unwrap();
    a.save_meta("vote", b"v1").unwrap();
    assert_eq!(a.meta("vote").unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(b.meta("vote").unwrap(), None);
    assert_eq!(a.last_index(), Some(1));
    assert_eq!(b.first_index(), 7);
}

/// A log whose table lost an entry between two others, or holds a term lower than the
/// entry before it (damage: every committed state of a log is contiguous, its terms
/// never go down): reads that cross the damage fail as corrupted instead of answering
/// without the entry (a caller indexing the answer by position got the wrong entries)
/// or reading the index as never appended. Past the log's ends, reads stay empty.
#[test]
fn a_gap_or_a_lower_term_inside_the_log_is_damage_not_absence() {
    let entry = |term: u64| {
        let mut v = term.to_le_bytes().to_vec();
        v.push(7);
        v
    };
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("gap.db")).unwrap();
    drop(RaftLog::open(&db).unwrap());
    let mut c = db.connect();
    let mut tx = c.begin().unwrap();
    for i in [1u64, 2, 4, 5] {
        tx.put("raft.log", &i.to_be_bytes(), &entry(1)).unwrap();
    }
    tx.commit().unwrap();
    let log = RaftLog::open(&db).unwrap();
    let corrupted = |r: capsuledb::Result<()>| {
        assert!(
            matches!(r, Err(Error::Corrupted { ref what, .. }) if what.contains("entry 3 is missing")),
            "{r:?}"
        )
    };
    corrupted(log.entries(1..=5).map(drop));
    corrupted(log.entries(3..).map(drop));
    corrupted(log.entries_uncached(..).map(drop));
    corrupted(log.entry_batch(2..=4).map(drop));
    corrupted(log.for_each_entry(.., |_, _, _| Ok(())));
    corrupted(log.entry(3).map(drop));
    corrupted(log.term(3).map(drop));
    // A range whose top, or whole, lies in the gap: its reads found entries (or none)
    // and checked nothing past the last one, answering `[1, 2]` or `[]`.
    corrupted(log.entries(3..=3).map(drop));
    corrupted(log.entries(1..=3).map(drop));
    corrupted(log.entries(1..4).map(drop));
    corrupted(log.entries_uncached(2..=3).map(drop));
    corrupted(log.entry_batch(3..=3).map(drop));
    corrupted(log.for_each_entry(1..=3, |_, _, _| Ok(())));
    assert_eq!(log.entries(0..=2).unwrap().len(), 2);
    assert_eq!(log.entries(5..=9).unwrap().len(), 1);
    assert_eq!(log.entries(6..=9).unwrap().len(), 0);
    assert_eq!(log.entries(4..=5).unwrap().len(), 2);
    assert_eq!(log.entry(0).unwrap(), None);
    assert_eq!(log.entry(6).unwrap(), None);
    drop(log);

    let mut tx = c.begin().unwrap();
    tx.put("raft.log", &3u64.to_be_bytes(), &entry(1)).unwrap();
    tx.put("raft.log", &4u64.to_be_bytes(), &entry(0)).unwrap();
    tx.commit().unwrap();
    let log = RaftLog::open(&db).unwrap();
    let r = log.entries(1..=5);
    assert!(
        matches!(r, Err(Error::Corrupted { ref what, .. }) if what.contains("term 0, below 1")),
        "{r:?}"
    );
    assert_eq!(log.entries(1..=3).unwrap().len(), 3);
}

/// `purge_to` the index right before the first entry of a log that starts late records
/// that index with the term it is given, which openraft's storage suite sets above the
/// first entry's: the record was written, then the next open refused the log as
/// corrupted (its bounds check compared the purged term with the last entry's).
#[test]
fn purge_to_right_below_the_first_entry_with_a_higher_term_opens_again() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    let log = RaftLog::open(&db).unwrap();
    log.append(&[Entry::new(5, 1, b"a".to_vec())]).unwrap();
    log.purge_to(EntryId { index: 4, term: 3 }).unwrap();
    assert_eq!(log.first_index(), 5);
    drop(log);
    let log = RaftLog::open(&db).expect("the log opens again");
    assert_eq!(log.first_index(), 5);
    assert_eq!(log.term(4).unwrap(), Some(3));
    assert_eq!(log.entries(..).unwrap().len(), 1);
}

/// A held entry is purged with its own term by `purge_to` as by `purge`, even when
/// an earlier purge recorded a higher term (the state the test above reaches): the
/// purged term's rule is for entries past the last, whose terms are unknown.
#[test]
fn purge_to_of_a_held_entry_takes_its_term_as_purge_does() {
    let sim = SimStorage::new();
    let db = open_sim(&sim).unwrap();
    let log = RaftLog::open(&db).unwrap();
    log.append(&[Entry::new(5, 1, b"a".to_vec())]).unwrap();
    log.purge_to(EntryId { index: 4, term: 3 }).unwrap();
    log.append(&[Entry::new(6, 1, b"b".to_vec())]).unwrap();
    log.purge_to(EntryId { index: 5, term: 1 })
        .expect("the held entry's own term");
    assert_eq!(log.first_index(), 6);
    assert_eq!(log.term(5).unwrap(), Some(1));
    // Past the last entry the purged term's rule stands.
    assert!(matches!(
        log.purge_to(EntryId { index: 9, term: 0 }),
        Err(Error::LogOrder { .. })
    ));
}

/// A live reader's log is refused (as the docs say): its bounds, read once and kept in
/// memory, would stay those of its open while the writer purged and appended.
#[test]
fn a_log_on_a_read_only_handle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let db = Database::open(&path).unwrap();
    let log = RaftLog::open(&db).unwrap();
    log.append(&[Entry::new(1, 1, vec![1])]).unwrap();
    let reader = capsuledb::Options::new()
        .read_only(true)
        .open(&path)
        .unwrap();
    assert!(matches!(
        RaftLog::open(&reader),
        Err(Error::ReadOnlyDatabase)
    ));
}
